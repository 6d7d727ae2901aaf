"""Policy files: versioned by content, refused with file, line and problem when broken."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from personkort.audit import AuditLog, audit_keys
from personkort.policy.load import DEFAULT_DIR, PolicyError, load_policy
from personkort.services.policies import PolicyHolder
from personkort.store import open_engine


def copy_policy(tmp_path: Path) -> Path:
    folder = tmp_path / "policy"
    shutil.copytree(DEFAULT_DIR, folder)
    return folder


def test_version_is_the_content_hash(tmp_path: Path) -> None:
    folder = copy_policy(tmp_path)
    assert load_policy(folder).version == load_policy().version
    rules = folder / "rules.yaml"
    rules.write_text(rules.read_text() + "\n# a reviewed comment\n")
    assert load_policy(folder).version != load_policy().version


@pytest.mark.parametrize(
    ("file", "old", "new", "offset", "problem"),
    [
        (
            "offices.yaml",
            "services: [OKSOS, KVP, BOLIG, RUS, GJELD]",
            "services: [OKSOS, KVP, BARNEVERN]",
            0,
            "unknown service 'BARNEVERN'",
        ),
        ("offices.yaml", 'host: "3451"', 'host: "0301"', 0, "host 0301 is not among"),
        (
            "rules.yaml",
            "require_roles_any: [kode6]",
            "require_roles_any: [kode9]",
            0,
            "unknown role 'kode9'",
        ),
        (
            "rules.yaml",
            "        consent: okonomi",
            "        consent: alt",
            0,
            "unknown consent scope 'alt'",
        ),
        ("rules.yaml", "  contact:\n", "  contact:\n  contact:\n", 1, "duplicate key 'contact'"),
        ("rules.yaml", "gate:  #", "gate: [ #", None, "not valid YAML"),
    ],
)
def test_a_broken_file_is_refused_with_file_line_and_problem(
    tmp_path: Path, file: str, old: str, new: str, offset: int | None, problem: str
) -> None:
    folder = copy_policy(tmp_path)
    path = folder / file
    text = path.read_text()
    assert old in text
    broken = text.replace(old, new, 1)
    path.write_text(broken)
    with pytest.raises(PolicyError) as info:
        load_policy(folder)
    assert info.value.file == str(path)
    assert problem in info.value.problem
    assert info.value.line is not None
    if offset is not None:  # the line of the change itself
        assert info.value.line == broken[: broken.index(new)].count("\n") + 1 + offset
    assert f"{path}:{info.value.line}: " in str(info.value)


def test_a_broken_reload_keeps_the_running_version(tmp_path: Path) -> None:
    folder = copy_policy(tmp_path)
    engine = open_engine(f"sqlite:///{tmp_path / 'store.sqlite'}")
    audit = AuditLog(engine, audit_keys(str(tmp_path)))
    holder = PolicyHolder(str(folder), engine, audit)

    def activations() -> int:
        return len(audit.events(kind="policy_activated"))

    running = holder.reload()
    assert running is not None and activations() == 1
    (folder / "offices.yaml").write_text("offices: [")
    assert holder.reload() is running
    assert holder.error and "offices.yaml" in holder.error
    assert activations() == 1
