"""A hung database (issue 12, item 7): lookups answer 503 within a bound, readiness says not
ready while liveness stays up, and both recover on their own when the database answers again.
A read-only store starts the API, and lookups answer 503 with a clear reason.

On the main before the deadline, a frozen database hung lookups for 25 s and more with no 503
while /api/v1/health answered 200.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

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
from tests.conftest import PG_URL, pg_schema, read_csv
from tests.reliability.proxy import FreezableProxy, proxy

pytestmark = pytest.mark.postgres
CLAIMS = {"sub": "Z1", "employer": "stat", "office": "nav-oslo", "roles": ["veileder"]}


@pytest.fixture
def schema() -> Iterator[str]:
    yield from pg_schema("pkhung")


def _url(schema: str, port: int | None = None, extra: str = "") -> str:
    url = sa.make_url(PG_URL)
    if port is not None:
        url = url.set(port=port)
    rendered = url.render_as_string(hide_password=False)
    return f"{rendered}?options=-csearch_path%3D{schema}{extra}"


def _persons(sample: Path) -> list[str]:
    rows = read_csv(sample / "night1" / "truth" / "persons.csv")
    return [
        r["fnr"] for r in rows if r["fnr"] and not r["adressebeskyttelse"] and r["skjermet"] == "0"
    ][:40]


def _lookup(url: str, token: str, ident: str) -> tuple[int, float]:
    started = time.monotonic()
    response = httpx.post(
        f"{url}/api/v1/personkort",
        json={"ident": ident},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    return response.status_code, time.monotonic() - started


def test_lookups_answer_503_in_bounded_time_while_the_database_hangs(
    schema: str, sample: Path, tmp_path: Path
) -> None:
    direct = open_engine(_url(schema))
    drop = sample / "night1"
    run_night(direct, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    upstream = sa.make_url(PG_URL)
    with proxy((upstream.host or "127.0.0.1", upstream.port or 5432)) as db:
        assert isinstance(db, FreezableProxy)
        settings = Settings(
            store_url=_url(schema, db.port),
            data_dir=str(tmp_path / "data"),
            dev_mode=True,
            store_timeout_seconds=1.0,
        )
        with serve(create_app(settings)) as url:
            token = mint(settings, CLAIMS)
            people = _persons(sample)
            assert _lookup(url, token, people[0])[0] in (200, 404)
            assert httpx.get(f"{url}/api/v1/ready").status_code == 200
            db.freeze()
            answers = [_lookup(url, token, ident) for ident in people[1:6]]
            assert {status for status, _ in answers} == {503}, answers
            assert max(seconds for _, seconds in answers) < 3.0, answers
            not_ready = httpx.get(f"{url}/api/v1/ready", timeout=10)
            assert not_ready.status_code == 503
            assert not_ready.json()["checks"]["store"].startswith("unavailable")
            assert httpx.get(f"{url}/api/v1/health", timeout=10).status_code == 200  # alive
            db.thaw()
            deadline = time.monotonic() + 30
            while _lookup(url, token, people[7])[0] == 503:
                assert time.monotonic() < deadline, "lookups did not recover"
                time.sleep(0.2)
            assert httpx.get(f"{url}/api/v1/ready", timeout=10).status_code == 200
    direct.dispose()


def test_a_read_only_store_starts_and_answers_503_with_a_reason(
    schema: str, sample: Path, tmp_path: Path
) -> None:
    direct = open_engine(_url(schema))
    drop = sample / "night1"
    run_night(direct, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    direct.dispose()
    settings = Settings(
        store_url=_url(schema, extra="%20-cdefault_transaction_read_only%3Don"),
        data_dir=str(tmp_path / "data"),
        dev_mode=True,
    )
    with serve(create_app(settings)) as url:
        token = mint(settings, CLAIMS)
        status, _ = _lookup(url, token, _persons(sample)[0])
        assert status == 503
        ready = httpx.get(f"{url}/api/v1/ready").json()
        assert ready["status"] == "not_ready"
        assert ready["checks"]["policy"] != "ok"
