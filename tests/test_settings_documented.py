"""Every setting the code reads is named in .env.example."""

from __future__ import annotations

import re
from pathlib import Path

from api.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TEST_ONLY = {"PERSONKORT_TEST_PG_URL", "PERSONKORT_REQUIRE_PG", "PERSONKORT_SHARED"}


def test_env_example_names_every_setting() -> None:
    documented = set(re.findall(r"^(PERSONKORT_\w+)=", (ROOT / ".env.example").read_text(), re.M))
    read = {f"PERSONKORT_{name.upper()}" for name in Settings.model_fields}
    for folder in ("personkort", "api", "adapters", "cli", "dags", "web"):
        for path in (ROOT / folder).rglob("*.py"):
            read |= set(re.findall(r"PERSONKORT_[A-Z_]+[A-Z]", path.read_text(encoding="utf-8")))
    assert read - TEST_ONLY <= documented, sorted(read - TEST_ONLY - documented)
