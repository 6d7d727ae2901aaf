"""The steps of one night: extract each source, stage (gate, reconcile, write aside), publish."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path
from typing import Any

from adapters.drop import fingerprint, read_feed, read_or_refuse, sources
from personkort import collector
from personkort.gates import GateConfig, SourceAcceptance
from personkort.nightly import NightOutcome, publish_staged, stage_night
from personkort.records import Extract, Refusal, Register
from personkort.store import open_engine
from personkort.store.crypto import key_ring, open_bytes, seal_bytes
from personkort.store.feed import known_digests
from personkort.store.queries import nights

REGISTERS = ("arena", "infotrygd")


class NightStopped(RuntimeError):
    """A quality gate stopped the night; the message says why, for the steward."""


STILL_SERVED = "stopped, yesterday's cards still served"


def check_drop(drop_dir: str) -> list[tuple[Register, str, Path]]:
    """The drop folder's sources, or a stop with a message for the steward when there is no
    folder or nothing in it: nothing to read is not a night (and not worth a retry). A drop
    missing one register is read, and the gates refuse it (``kilde_avvist``) on the record."""
    drop = Path(drop_dir)
    if not drop.is_dir():
        raise NightStopped(
            f"{STILL_SERVED}: ingen_leveranse: the drop folder {drop_dir} does not exist (nothing"
            " delivered tonight, or the run's drop_dir / PERSONKORT_DROP_DIR names another"
            " folder). Leveransemappen finnes ikke; ingen natt er kjørt."
        )
    found = sources(drop)
    if not found:
        raise NightStopped(
            f"{STILL_SERVED}: ingen_leveranse: the drop folder {drop_dir} holds no register"
            " extract (expected arena/arena.sqlite, infotrygd/ and kommune/ files). Leveransemappen"
            " er tom; ingen natt er kjørt."
        )
    return found


def municipal_files(drop_dir: str) -> list[str]:
    """The municipal files of a drop folder: one extract task each (after ``check_drop``)."""
    return [name for register, name, _ in check_drop(drop_dir) if register is Register.KOMMUNE]


def extract(
    drop_dir: str,
    register: str,
    work_dir: str,
    name: str | None = None,
    store_url: str | None = None,
) -> dict[str, Any]:
    """Read one register's extract (or one municipal file) and keep it for the stage step.
    A refused source is recorded, not raised: bad data is for the gates, not for retries.
    ``folkeregister`` is the feed's snapshot: one that is missing or refused is the extract's
    ``feed_refusal``, a note for the stewards and the cards, never a reason to stop the night;
    its lines the store already holds (``store_url``) are not parsed again."""
    if register == Register.FOLKEREGISTER:
        return _extract_feed(Path(drop_dir), work_dir, store_url)
    drop = Path(drop_dir)
    found = [s for s in sources(drop) if s[0].value == register and (name is None or s[1] == name)]
    out = Extract()
    if not found:  # located at the drop folder, as ``adapters.drop.read_drop`` does
        out.refusals.append(
            Refusal(Register(register), name or drop_dir, f"no {register} extract delivered")
        )
    infotrygd_files = sum(1 for s in sources(drop) if s[0] is Register.INFOTRYGD)
    started = time.perf_counter()
    for reg, source_name, path in found:
        out.extend(read_or_refuse(reg, source_name, path, None, infotrygd_files))
    _keep(out, work_dir, f"{register}-{name or 'all'}")
    return {
        "source": name or register,
        "read": sum(c.read for c in out.counts),
        "quarantined": sum(c.quarantined for c in out.counts),
        "refused": [r.reason for r in out.refusals],
        "seconds": round(time.perf_counter() - started, 2),
    }


def _extract_feed(drop: Path, work_dir: str, store_url: str | None) -> dict[str, Any]:
    started = time.perf_counter()
    out = read_feed(drop, known_digests(open_engine(store_url)).keys)
    _keep(out, work_dir, "folkeregister-all")
    return {
        "source": Register.FOLKEREGISTER.value,
        "feed": "read" if out.feed is not None else "missing",
        "file": out.feed.file if out.feed is not None else None,
        "read": sum(c.read for c in out.counts),
        "quarantined": sum(c.quarantined for c in out.counts),
        "refused": [],  # never: the feed does not stop a night
        "feed_refusal": out.feed_refusal.reason if out.feed_refusal else None,
        "seconds": round(time.perf_counter() - started, 2),
    }


def _keep(out: Extract, work_dir: str, stem: str) -> None:
    """An extract for the stage step, sealed in the run's work folder."""
    target = Path(work_dir) / f"{stem}.pickle"
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_sealed(target, pickle.dumps(out))


def stage(
    store_url: str | None,
    drop_dir: str,
    work_dir: str,
    accepted: SourceAcceptance | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Put the extracts together, gate them, reconcile and write the night aside. ``accepted``:
    sources a steward accepted as missing or short for this night (audited)."""
    extract_all = Extract()
    parts = sorted(Path(work_dir).glob("*.pickle"))
    with collector.paused():
        for part in parts:
            extract_all.extend(pickle.loads(_read_sealed(part)))
    if not any(p.name.startswith("kommune-") for p in parts):
        extract_all.refusals.append(
            Refusal(Register.KOMMUNE, drop_dir, "no kommune extract delivered")
        )
    # No feed part (a run of a DAG without the feed's task): the night goes on with the feed's
    # last state, and says why. Never a refusal: the feed does not stop a night.
    if extract_all.feed is None and extract_all.feed_refusal is None:
        extract_all.feed_refusal = Refusal(
            Register.FOLKEREGISTER,
            drop_dir,
            "no folkeregister snapshot read this run (no feed task)",
        )
    engine = open_engine(store_url)
    outcome = stage_night(
        engine,
        extract_all,
        drop_dir=drop_dir,
        fingerprint=fingerprint(Path(drop_dir)),
        gates=GateConfig(accepted=accepted),
        airflow_run_id=run_id,
        # the store's digest map, loaded again (two stored values, not a million rows): the
        # night checks the lines the feed's task skipped against it
        feed_digests=known_digests(engine),
    )
    return _summary(outcome)


def acceptance(sources: list[str] | None, steward: str, reason: str) -> SourceAcceptance | None:
    """The DAG run's acceptance parameters, checked (a steward and a reason are required)."""
    if not sources:
        return None
    return SourceAcceptance(frozenset(s.strip() for s in sources), steward.strip(), reason.strip())


def _write_sealed(path: Path, data: bytes) -> None:
    """An extract between tasks holds whole records and quarantined raw lines: sealed with the
    store's key ring (bound to the file's name), written owner-only, renamed into place."""
    partial = path.with_name(path.name + ".partial")
    partial.touch(mode=0o600)
    partial.chmod(0o600)
    partial.write_bytes(seal_bytes(key_ring(), data, _work_context(path)))
    partial.replace(path)


def _read_sealed(path: Path) -> bytes:
    """Fails closed: an extract that is not sealed, was changed or renamed is never unpickled."""
    return open_bytes(key_ring(), path.read_bytes(), _work_context(path))


def _work_context(path: Path) -> str:
    return f"work.extract:{path.name}"


def publish(store_url: str | None, staged: dict[str, Any]) -> dict[str, Any]:
    """Make the staged night the served one; stop the run if a gate stopped the night."""
    if staged["status"] == "unchanged":
        return staged
    if staged["status"] != "staged":
        raise NightStopped(staged["message"])
    outcome = NightOutcome(staged["night"], "staged", staged["counts"], "", staged["report"])
    return _summary(publish_staged(open_engine(store_url), outcome))


def report(
    store_url: str | None, staged: dict[str, Any] | None, path: str, stopped: str | None = None
) -> dict[str, Any]:
    """The run's report whatever happened, as a file and a summary for the Airflow UI: the
    staged night's, or (no night staged: no drop, or a task that failed) why there is none;
    ``stopped`` is the steward message of the task that stopped the run, when one did."""
    if staged is None:
        message = stopped or (
            f"{STILL_SERVED}: the night was not staged: a task before it failed (the red task's"
            " log says why)."
        )
        summary = {"night": None, "status": "not_staged", "message": message, "report_file": path}
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(summary, ensure_ascii=False, indent=1))
        return summary
    return {**write_report(store_url, staged["night"], path), "message": staged["message"]}


def report_text(summary: dict[str, Any]) -> str:
    """The summary as lines a steward reads in the task log."""
    return "\n".join(f"{key}: {value}" for key, value in summary.items() if value is not None)


def write_report(store_url: str | None, night: int, path: str) -> dict[str, Any]:
    """The night's run report as a file, and a short summary for the Airflow UI."""
    row = next(n for n in nights(open_engine(store_url)) if n["id"] == night)
    report = row["report"] or {}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, ensure_ascii=False, indent=1, default=str))
    findings = report.get("findings", {})
    return {
        "night": night,
        "status": row["status"],
        "cards": (row["counts"] or {}).get("cards"),
        "review_queue": (row["counts"] or {}).get("review_queue"),
        # Sources a steward accepted as missing or short for this night: who, and why.
        "sources_accepted": (row["counts"] or {}).get("sources_accepted"),
        "possible_double_payments": findings.get("possible_double_payments", {}).get("count"),
        "protection_disagreements": findings.get("protection_disagreements", {}).get("count"),
        # The Folkeregister snapshot: read (file, persons, new/changed/removed) or missing (why).
        "feed": (row["counts"] or {}).get("feed"),
        "report_file": path,
    }


def _summary(outcome: NightOutcome) -> dict[str, Any]:
    return {
        "night": outcome.night,
        "status": outcome.status,
        "message": outcome.message,
        "counts": outcome.counts,
        "report": outcome.report,
    }


def notify_failure(context: dict[str, Any]) -> None:
    """A task failed: say so in the log, and to ``PERSONKORT_ALERT_WEBHOOK`` when it is set
    (a JSON POST; a webhook that does not answer is logged, never raised)."""
    import logging
    import os
    import urllib.request

    task = context.get("task_instance") or context.get("ti")
    run = context.get("dag_run")
    exception = context.get("exception")
    message = {
        "dag": getattr(run, "dag_id", "personkort_nightly"),
        "run": getattr(run, "run_id", None),
        "task": getattr(task, "task_id", None),
        "error": f"{type(exception).__name__}: {exception}" if exception else "failed",
    }
    log = logging.getLogger("personkort.nightly")
    log.error("nightly run task failed: %s", json.dumps(message, ensure_ascii=False))
    url = os.environ.get("PERSONKORT_ALERT_WEBHOOK")
    if not url:
        return
    request = urllib.request.Request(
        url,
        data=json.dumps(message, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except OSError as exc:
        log.error("alert webhook %s did not answer: %s", url, exc)
