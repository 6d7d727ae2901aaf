"""Issue 10 item 6: quarantined raw lines (diagnoses, free text, addresses, identity numbers) are
sealed at rest like the card's sensitive fields, shown only to whoever asks with ``with_raw``,
and kept out of the pipeline's work files and the quarantine reasons."""

from __future__ import annotations

import base64
import re
import secrets
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from typer.testing import CliRunner

from adapters import read_drop
from adapters.boundary import Boundary, schema_failures
from adapters.drop import fingerprint
from adapters.schemas import InfotrygdBenefit
from personkort.nightly import run_night
from personkort.records import Extract, Register
from personkort.store import models as m
from personkort.store import open_engine
from personkort.store.crypto import KeyRing, KeyRingError
from personkort.store.quarantine import (
    QuarantineItem,
    iter_quarantine,
    quarantine_rows,
    raw_context,
    rekey_quarantine,
)

ELEVEN_DIGITS = re.compile(r"(?<!\d)\d{11}(?!\d)")


def _ring(kid: str = "k1") -> KeyRing:
    return KeyRing.parse(f"{kid}:{base64.b64encode(secrets.token_bytes(32)).decode()}")


def _use(monkeypatch: pytest.MonkeyPatch, ring: KeyRing) -> None:
    monkeypatch.setenv(
        "PERSONKORT_STORE_KEYS",
        ",".join(f"{k}:{base64.b64encode(v).decode()}" for k, v in ring.keys),
    )


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> KeyRing:
    ring = _ring()
    _use(monkeypatch, ring)
    return ring


def _run(engine: sa.Engine, drop: Path) -> Extract:
    extract = read_drop(drop)
    outcome = run_night(engine, extract, drop_dir=str(drop), fingerprint=fingerprint(drop))
    assert outcome.status == "published", outcome.message
    return extract


def _stored(engine: sa.Engine) -> list[sa.Row]:
    q = m.QuarantineRow
    with engine.connect() as conn:
        return conn.execute(
            sa.select(q.id, q.night_id, q.register, q.location, q.raw).order_by(q.id)
        ).all()


def test_a_nights_quarantine_is_sealed_and_reads_back(
    sample: Path, store_url: str, keys: KeyRing
) -> None:
    engine = open_engine(store_url)
    extract = _run(engine, sample / "night1")
    originals = [q.raw for q in extract.quarantine]
    assert len(originals) > 20, "the sample quarantines records"
    stored = _stored(engine)
    assert len(stored) == len(originals)
    for row in stored:
        assert row.raw.startswith("enc:v1:k1:"), row.raw[:60]
        # no quarantined line, nor any identity number in one, is in the column in clear
        assert not any(raw in row.raw for raw in originals)
        assert not ELEVEN_DIGITS.search(row.raw)
    # every sealed value opens, in place, to exactly the line the adapter quarantined
    opened = [keys.decrypt(r.raw, raw_context(r.night_id, r.register, r.location)) for r in stored]
    assert Counter(opened) == Counter(originals)
    assert any("Storgata 17" in raw for raw in opened)  # an address, the kind of thing sealed


def test_a_sealed_line_moved_to_another_row_does_not_decrypt(
    sample: Path, store_url: str, keys: KeyRing
) -> None:
    engine = open_engine(store_url)
    _run(engine, sample / "night1")
    first, second = _stored(engine)[:2]
    with pytest.raises(InvalidTag):
        keys.decrypt(first.raw, raw_context(second.night_id, second.register, second.location))
    with pytest.raises(InvalidTag):  # nor to the same place in another night
        keys.decrypt(first.raw, raw_context(first.night_id + 1, first.register, first.location))
    with engine.begin() as conn:
        q = m.QuarantineRow
        conn.execute(sa.update(q).where(q.id == second.id).values(raw=first.raw))
    with pytest.raises(InvalidTag):
        quarantine_rows(engine, None, limit=100, offset=0, with_raw=True, keys=keys)


def test_quarantine_rows_shows_raw_only_when_asked(
    sample: Path, store_url: str, keys: KeyRing
) -> None:
    engine = open_engine(store_url)
    assert quarantine_rows(engine, None, limit=10, offset=0, with_raw=True, keys=keys) == []
    first = _run(engine, sample / "night1").quarantine
    second = _run(engine, sample / "night2").quarantine
    plain = quarantine_rows(engine, None, limit=1000, offset=0, with_raw=False, keys=keys)
    assert plain == [QuarantineItem(q.register.value, q.location, q.reason) for q in second]
    assert all(i.raw is None for i in plain)
    full = quarantine_rows(engine, 1, limit=1000, offset=0, with_raw=True, keys=keys)
    assert [(i.location, i.reason, i.raw) for i in full] == [
        (q.location, q.reason, q.raw) for q in first
    ]
    page = quarantine_rows(engine, 1, limit=5, offset=3, with_raw=True, keys=keys)
    assert page == full[3:8]
    assert quarantine_rows(engine, 99, limit=10, offset=0, with_raw=True, keys=keys) == []
    assert list(iter_quarantine(engine, 1, with_raw=True, keys=keys, page=7)) == full
    with pytest.raises(ValueError):
        quarantine_rows(engine, 1, limit=-1, offset=0, with_raw=False)


def test_rows_written_before_sealing_still_read(store_url: str, keys: KeyRing) -> None:
    engine = open_engine(store_url)
    m.Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(m.Night).values(
                id=1, drop_dir="d", fingerprint="f", status="published", started_at=sa.func.now()
            )
        )
        conn.execute(
            sa.insert(m.QuarantineRow).values(
                night_id=1, register="kommune", location="sosio_0301:line:2", reason="r", raw="x;y"
            )
        )
    (item,) = quarantine_rows(engine, 1, limit=10, offset=0, with_raw=True, keys=keys)
    assert item.raw == "x;y"
    assert rekey_quarantine(engine, keys) == 1  # an old store's plain lines get sealed
    with engine.connect() as conn:
        assert conn.scalar(sa.select(m.QuarantineRow.raw)).startswith("enc:v1:k1:")
    assert quarantine_rows(engine, 1, limit=10, offset=0, with_raw=True, keys=keys) == [item]


def test_cli_export_has_no_raw_unless_asked(
    sample: Path, store_url: str, keys: KeyRing, tmp_path: Path
) -> None:
    from cli.main import app

    engine = open_engine(store_url)
    extract = _run(engine, sample / "night1")
    runner = CliRunner()
    out = tmp_path / "q.csv"
    result = runner.invoke(app, ["quarantine", "--store", store_url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "register,location,reason"
    assert not any(q.raw in text for q in extract.quarantine)
    assert not ELEVEN_DIGITS.search(text)
    raw_out = tmp_path / "raw.csv"
    result = runner.invoke(
        app, ["quarantine", "--store", store_url, "--out", str(raw_out), "--raw"]
    )
    assert result.exit_code == 0, result.output
    assert "warning" in result.output
    assert raw_out.stat().st_mode & 0o077 == 0
    lines = raw_out.read_text(encoding="utf-8")
    assert lines.splitlines()[0] == "register,location,reason,raw"
    assert "Storgata 17" in lines  # decrypted


# -- the pipeline's work directory --------------------------------------------------------


def test_extracts_between_tasks_are_sealed(
    sample: Path, store_url: str, keys: KeyRing, tmp_path: Path
) -> None:
    from pipeline import steps

    drop = sample / "night1"
    work = tmp_path / "run"
    steps.extract(str(drop), "arena", str(work))
    steps.extract(str(drop), "infotrygd", str(work))
    for name in steps.municipal_files(str(drop)):
        steps.extract(str(drop), "kommune", str(work), name)
    extract = read_drop(drop)
    files = sorted(work.glob("*.pickle"))
    assert files
    for path in files:
        data = path.read_bytes()
        assert data.startswith(b"enc:v1:k1:")
        assert path.stat().st_mode & 0o077 == 0
        for p in extract.persons[:200]:
            # A short surname ("Ng") turns up in any base64 text by chance; eight letters do not.
            if len(p.surname) >= 8:
                assert p.surname.encode() not in data
            if p.ident:
                assert p.ident.encode() not in data
        for q in extract.quarantine:
            assert q.raw.encode() not in data
    staged = steps.stage(store_url, str(drop), str(work))
    assert staged["status"] == "staged", staged["message"]


def test_a_changed_or_swapped_work_file_is_never_unpickled(
    sample: Path, store_url: str, keys: KeyRing, tmp_path: Path
) -> None:
    from pipeline import steps

    drop = sample / "night1"
    work = tmp_path / "run"
    steps.extract(str(drop), "arena", str(work))
    steps.extract(str(drop), "infotrygd", str(work))
    arena, infotrygd = work / "arena-all.pickle", work / "infotrygd-all.pickle"
    swapped = arena.read_bytes()
    arena.write_bytes(infotrygd.read_bytes())  # one sealed extract standing in for another
    with pytest.raises(InvalidTag):
        steps.stage(store_url, str(drop), str(work))
    arena.write_bytes(swapped[:-1] + bytes([swapped[-1] ^ 1]))
    with pytest.raises(InvalidTag):
        steps.stage(store_url, str(drop), str(work))
    import pickle

    arena.write_bytes(pickle.dumps(Extract()))  # unsealed: refused, not loaded
    with pytest.raises(KeyRingError):
        steps.stage(store_url, str(drop), str(work))


# -- reasons stay in clear, so they carry no identity number ------------------------------


def test_quarantine_reasons_withhold_identity_numbers() -> None:
    b = Boundary(Register.KOMMUNE, "flyt_0301")
    b.reject("flyt_0301:line:2", "ident is not text: 15928011418", "{...}")
    b.reject("flyt_0301:line:3", "ident is not text: '159280 11418'", "{...}")
    b.reject("flyt_0301:line:4", "invalid fra date: '2024-02-31'", "{...}")
    reasons = [q.reason for q in b.quarantine]
    assert not any(re.search(r"\d{5}", r.replace("2024-02-31", "")) for r in reasons), reasons
    assert reasons[2] == "invalid fra date: '2024-02-31'"  # dates stay, for the steward


def test_schema_reasons_do_not_quote_a_malformed_number() -> None:
    row = {
        "FNR": "1592801141",  # ten of eleven digits: most of a person's number
        "STONADSKODE": "XX",
        "FOM": None,
        "TOM": None,
        "GRAD": 150,
        "BELOP": 100.0,
        "KOMMUNENR": None,
    }
    (reason,) = schema_failures(InfotrygdBenefit, [row]).values()
    assert "1592801141" not in reason and "FNR" in reason
    assert "'XX'" in reason and "'150'" in reason  # codes and out-of-range numbers stay


def test_findings_do_not_quote_a_mistyped_number() -> None:
    """``ident.parse`` quotes a number with a non-digit; the finding must not carry it on."""
    b = Boundary(Register.ARENA, "PERSON")
    b.check_ident("PERSON:7", "1592801141O")
    (finding,) = b.findings
    assert finding.kind == "invalid_ident" and "non-digits" in finding.detail
    assert "1592801141" not in finding.detail
