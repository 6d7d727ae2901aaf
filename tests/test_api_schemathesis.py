"""Property-based API testing against the published OpenAPI document: no 5xx, no response
that breaks the schema, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from adapters import read_drop
from adapters.drop import fingerprint
from api.app import create_app
from api.auth import mint
from api.settings import Settings
from personkort.nightly import run_night
from personkort.store import open_engine
from tests.api_server import serve
from tests.conftest import SAMPLE

ALL_ROLES = ["veileder", "kode6", "kode7", "skjermet", "forvalter", "revisor"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings, dict]]:
    folder = tmp_path_factory.mktemp("schemathesis")
    settings = Settings(store_url=f"sqlite:///{folder / 'store.sqlite'}", data_dir=str(folder))
    engine = open_engine(settings.store_url)
    drop = SAMPLE / "night1"
    run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    app = create_app(settings)
    with serve(app) as url:
        yield url, settings, app.openapi()


def test_api_conforms(served: tuple[str, Settings, dict]) -> None:
    """Every operation, with generated bodies and parameters: no 5xx, status codes, content
    types and bodies as published."""
    url, settings_, document = served
    token = mint(
        settings_,
        {"sub": "Z000001", "employer": "kommune:0301", "office": "nav-oslo", "roles": ALL_ROLES},
    )
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=20,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=url,
                headers={"Authorization": f"Bearer {token}"},
                checks=[
                    not_a_server_error,
                    status_code_conformance,
                    content_type_conformance,
                    response_schema_conformance,
                ],
            )

        check()


def test_schema_is_published(served: tuple[str, Settings, dict]) -> None:
    paths = served[2]["paths"]
    assert "/api/v1/personkort" in paths
    assert all("{ident}" not in p for p in paths), "an identity number must never be in a URL"
