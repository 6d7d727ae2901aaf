"""Health and municipal free text are encrypted at rest; keys rotate without downtime."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag

from adapters import read_drop
from adapters.drop import fingerprint
from personkort.nightly import run_night
from personkort.store import models as m
from personkort.store import open_engine, queries
from personkort.store.cards import load_card
from personkort.store.crypto import KeyRing, KeyRingError, context
from personkort.store.quarantine import quarantine_rows, rekey_quarantine
from personkort.store.rekey import rekey


def ring(*kids: str) -> KeyRing:
    return KeyRing.parse(
        ",".join(f"{k}:{base64.b64encode(secrets.token_bytes(32)).decode()}" for k in kids)
    )


def test_sealed_columns_hold_no_plain_text(
    sample: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = ring("k1")
    monkeypatch.setenv(
        "PERSONKORT_STORE_KEYS",
        ",".join(f"{k}:{base64.b64encode(v).decode()}" for k, v in keys.keys),
    )
    engine = open_engine(store_url)
    drop = sample / "night1"
    run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    with engine.connect() as conn:
        texts = conn.scalars(
            sa.select(m.MunicipalServiceRow.free_text).where(
                m.MunicipalServiceRow.free_text.is_not(None)
            )
        ).all()
        diagnoses = conn.scalars(
            sa.select(m.StateBenefitRow.diagnosis).where(m.StateBenefitRow.diagnosis.is_not(None))
        ).all()
    assert texts and diagnoses
    assert all(t.startswith("enc:v1:k1:") for t in [*texts, *diagnoses])
    assert not any("Husleie" in t or "matkort" in t for t in texts)
    # ...and the card reads them back in clear.
    card_id = queries.card_for_ident(engine, "27905340064")  # Britt Marit Lund, Flyt OKSOS
    card = load_card(engine, card_id)  # type: ignore[arg-type]
    assert card is not None
    assert any(s.free_text and not s.free_text.startswith("enc:") for s in card.municipal_services)


def test_rotation_without_downtime(
    sample: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = ring("old")
    env = lambda r: ",".join(f"{k}:{base64.b64encode(v).decode()}" for k, v in r.keys)  # noqa: E731
    monkeypatch.setenv("PERSONKORT_STORE_KEYS", env(old))
    engine = open_engine(store_url)
    drop = sample / "night1"
    run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    card_id = queries.card_for_ident(engine, "27905340064")
    before = load_card(engine, card_id, keys=old)  # type: ignore[arg-type]
    new_key = ring("new")
    rotated = KeyRing((*new_key.keys, *old.keys))  # new first, old still reads
    assert load_card(engine, card_id, keys=rotated) == before  # type: ignore[arg-type]
    assert rekey(engine, rotated) > 0
    with engine.connect() as conn:
        stored = conn.scalars(
            sa.select(m.MunicipalServiceRow.free_text).where(
                m.MunicipalServiceRow.free_text.is_not(None)
            )
        ).all()
    assert all(s.startswith("enc:v1:new:") for s in stored)
    assert load_card(engine, card_id, keys=new_key) == before  # type: ignore[arg-type]
    assert rekey(engine, rotated) == 0


def test_a_value_moved_to_another_row_does_not_decrypt() -> None:
    keys = ring("k1")
    sealed = keys.encrypt("F32 depresjon", context("state_benefit", "diagnosis", "arena:1"))
    assert keys.decrypt(sealed, context("state_benefit", "diagnosis", "arena:1")) == "F32 depresjon"
    with pytest.raises(InvalidTag):
        keys.decrypt(sealed, context("state_benefit", "diagnosis", "arena:2"))


def test_quarantined_raw_lines_rotate_with_the_ring(
    sample: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Raw lines are sealed like the card's fields, so a key can leave the ring only after
    ``rekey_quarantine`` re-sealed them; until then old and new keys both read."""
    old = ring("old")
    env = lambda r: ",".join(f"{k}:{base64.b64encode(v).decode()}" for k, v in r.keys)  # noqa: E731
    monkeypatch.setenv("PERSONKORT_STORE_KEYS", env(old))
    engine = open_engine(store_url)
    drop = sample / "night1"
    extract = read_drop(drop)
    run_night(engine, extract, drop_dir=str(drop), fingerprint=fingerprint(drop))
    before = quarantine_rows(engine, None, limit=1000, offset=0, with_raw=True, keys=old)
    assert [i.raw for i in before] == [q.raw for q in extract.quarantine]
    rotated = KeyRing((*ring("new").keys, *old.keys))
    assert rekey_quarantine(engine, rotated) == len(before)
    with engine.connect() as conn:
        stored = conn.scalars(sa.select(m.QuarantineRow.raw)).all()
    assert stored and all(s.startswith("enc:v1:new:") for s in stored)
    new_only = KeyRing(rotated.keys[:1])
    after = quarantine_rows(engine, None, limit=1000, offset=0, with_raw=True, keys=new_only)
    assert after == before
    assert rekey_quarantine(engine, rotated) == 0
    with pytest.raises(KeyRingError):  # the old ring alone no longer reads them
        quarantine_rows(engine, None, limit=1000, offset=0, with_raw=True, keys=old)
