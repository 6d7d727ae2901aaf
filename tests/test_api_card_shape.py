"""Every card the API answers has exactly the shape of the published response model."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from api.schemas import CardResponse
from personkort.store import models as m
from tests.security.server import start

PROFILES = [
    {"employer": "stat", "office": "nav-oslo", "roles": ["veileder"]},
    {"employer": "kommune:0301", "office": "nav-oslo", "roles": ["veileder", "kode7"]},
    {"employer": "kommune:5001", "office": "nav-lerkendal", "roles": ["veileder"]},
    {"employer": "stat", "office": "nav-bergen", "roles": ["veileder", "kode6", "skjermet"]},
]


def test_every_card_matches_the_response_model(
    store_url: str, tmp_path: Path, sample: Path
) -> None:
    for server in start(store_url, tmp_path, sample, lookups_per_minute=0):
        with server.engine.connect() as conn:
            idents = sorted(
                conn.scalars(
                    sa.select(m.SourceRecord.ident)
                    .distinct()
                    .where(m.SourceRecord.ident.is_not(None), m.SourceRecord.valid_to.is_(None))
                )
            )
        assert len(idents) > 100
        shown = 0
        for profile in PROFILES:
            for ident in idents:
                response = server.post(
                    "/api/v1/personkort", {"ident": ident, "purpose": "oppfølging"}, **profile
                )
                assert response.status_code in (200, 403, 404), response.text
                if response.status_code == 200:
                    card = CardResponse.model_validate(response.json())
                    assert card.model_dump(by_alias=True, mode="json") == response.json()
                    shown += 1
        assert shown > 2 * len(idents)
