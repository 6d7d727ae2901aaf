"""A real server over a real store (SQLite and PostgreSQL) for the security tests: import it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from adapters import read_drop
from adapters.drop import fingerprint
from api.app import create_app
from api.auth import mint
from api.settings import Settings
from personkort.nightly import run_night
from personkort.store import open_engine
from tests.api_server import serve


@dataclass
class Server:
    url: str
    settings: Settings
    engine: sa.Engine
    app: Any

    def token(self, **claims: object) -> str:
        base: dict[str, object] = {
            "sub": "Z111111",
            "employer": "stat",
            "office": "nav-oslo",
            "roles": ["veileder"],
        }
        return mint(self.settings, {**base, **claims})

    def post(self, path: str, body: object, **claims: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(**claims)}"}
        return httpx.post(f"{self.url}{path}", json=body, headers=headers, timeout=30)

    def get(self, path: str, **claims: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(**claims)}"}
        return httpx.get(f"{self.url}{path}", headers=headers, timeout=30)

    def events(self, **search: object) -> list[dict[str, Any]]:
        response = self.post("/api/v1/audit/events", search, roles=["revisor"], sub="R1")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


def start(store_url: str, tmp_path: Path, sample: Path, **overrides: Any) -> Iterator[Server]:
    settings = Settings(store_url=store_url, data_dir=str(tmp_path / "data"), **overrides)
    engine = open_engine(store_url)
    drop = sample / "night1"
    run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    app = create_app(settings)
    with serve(app) as url:
        yield Server(url, settings, engine, app)
    engine.dispose()


@pytest.fixture
def server(store_url: str, tmp_path: Path, sample: Path) -> Iterator[Server]:
    yield from start(store_url, tmp_path, sample)
