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
from personkort.store.crypto import KeyRing, KeyRingError, context, service_context
from personkort.store.quarantine import quarantine_rows, rekey_quarantine
from personkort.store.rekey import rekey


def ring(*kids: str) -> KeyRing:
    return KeyRing.parse(
        ",".join(f"{k}:{base64.b64encode(secrets.token_bytes(32)).decode()}" for k in kids)
    )


def _night_with(
    keys: KeyRing, sample: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> sa.Engine:
    """The sample's first night, published with ``keys`` as the store's key ring."""
    monkeypatch.setenv(
        "PERSONKORT_STORE_KEYS",
        ",".join(f"{k}:{base64.b64encode(v).decode()}" for k, v in keys.keys),
    )
    engine = open_engine(store_url)
    drop = sample / "night1"
    run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    return engine


def test_sealed_columns_hold_no_plain_text(
    sample: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = ring("k1")
    engine = _night_with(keys, sample, store_url, monkeypatch)
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
    assert all(t.startswith("enc:v2:k1:") for t in texts)  # bound to their line
    assert all(t.startswith("enc:v1:k1:") for t in diagnoses)
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
    assert all(s.startswith("enc:v2:new:") for s in stored)
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


# ---- a municipal service's free text is bound to its line (threat model: the DBA) ---------


def _two_lines_of_one_record(engine: sa.Engine) -> tuple[sa.Row, sa.Row]:
    t = m.MunicipalServiceRow
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t).where(t.free_text.is_not(None)).order_by(t.id)).all()
    by_record: dict[str, list[sa.Row]] = {}
    for row in rows:
        by_record.setdefault(row.record_key, []).append(row)
    pairs = [lines for lines in by_record.values() if len(lines) > 1]
    assert pairs, "the sample has a record with two services that hold free text"
    return pairs[0][0], pairs[0][1]


def _card_of(engine: sa.Engine, record_key: str) -> str:
    with engine.connect() as conn:
        return conn.scalar(
            sa.select(m.CardLink.card_id).where(
                m.CardLink.record_key == record_key, m.CardLink.valid_to.is_(None)
            )
        )


@pytest.mark.parametrize("change", ["text moved to the other line", "service changed"])
def test_free_text_moved_between_lines_of_one_record_or_relabelled_does_not_open(
    sample: Path, store_url: str, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """A RUS text copied over an OKSOS line of the same record was shown as that line's text
    (the associated data named only the record); so was one whose line's clear service a
    database administrator changed. Now the card read fails closed."""
    keys = ring("k1")
    engine = _night_with(keys, sample, store_url, monkeypatch)
    first, second = _two_lines_of_one_record(engine)
    card_id = _card_of(engine, first.record_key)
    assert load_card(engine, card_id, keys=keys) is not None  # reads before the change
    t = m.MunicipalServiceRow
    with engine.begin() as conn:
        if change == "text moved to the other line":
            conn.execute(sa.update(t).where(t.id == second.id).values(free_text=first.free_text))
        else:
            other = "RUS" if first.service != "RUS" else "OKSOS"
            conn.execute(sa.update(t).where(t.id == first.id).values(service=other))
    with pytest.raises(InvalidTag):
        load_card(engine, card_id, keys=keys)


def test_free_text_sealed_before_lines_were_bound_reads_and_rekey_binds_it(
    sample: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = ring("k1")
    engine = _night_with(keys, sample, store_url, monkeypatch)
    first, _ = _two_lines_of_one_record(engine)
    card_id = _card_of(engine, first.record_key)
    before = load_card(engine, card_id, keys=keys)
    # as an earlier version sealed it: bound to the record only
    where = context("municipal_service", "free_text", first.record_key)
    line = service_context(first.record_key, first.location, first.service, first.owner_kommune)
    legacy = keys.encrypt(keys.decrypt(first.free_text, line), where)
    assert legacy is not None and legacy.startswith("enc:v1:")
    t = m.MunicipalServiceRow
    with engine.begin() as conn:
        conn.execute(sa.update(t).where(t.id == first.id).values(free_text=legacy))
    assert load_card(engine, card_id, keys=keys) == before  # still reads
    assert rekey(engine, keys) == 1  # the one legacy value, though under the active key
    with engine.connect() as conn:
        stored = conn.scalar(sa.select(t.free_text).where(t.id == first.id))
    assert stored.startswith("enc:v2:k1:")
    assert load_card(engine, card_id, keys=keys) == before
