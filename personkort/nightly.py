"""One night: reconcile what the adapters read, write it beside the served night, publish.

The same steps the Airflow DAG runs one task at a time. Reading the registers is the caller's
job (the CLI or the DAG wire the adapters in), so this module knows records, not file formats.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from personkort import collector, report
from personkort.feed import evidence
from personkort.gates import (
    GateConfig,
    GateFailure,
    SourceAcceptance,
    check_cards,
    check_extract,
    check_feed,
    waived,
)
from personkort.reconcile import MatchConfig, Reconciliation, reconcile
from personkort.reconcile.incremental import Incremental, reconcile_changes
from personkort.records import Extract
from personkort.store import begin_night, finish_night, lease, prior, write_night
from personkort.store import models as m
from personkort.store.feed import (
    SnapshotChanges,
    StaleRead,
    StoredDigests,
    digests_in_force,
    groups_tonight,
    last_snapshot_persons,
    snapshot_changes,
    snapshot_in_force,
    write_snapshot,
)
from personkort.store.nights import Delta, compare_with_served, published_night
from personkort.store.queries import decisions


@dataclass(slots=True)
class NightOutcome:
    night: int | None  # None: nothing was run (the same drop is already served)
    status: str  # published | refused | failed | unchanged
    counts: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    report: dict[str, Any] | None = None


def served_counts(engine: sa.Engine) -> dict[str, Any] | None:
    """The served night's counts, which the gates compare tonight against."""
    with engine.connect() as conn:
        served = published_night(conn)
        if served is None:
            return None
        return conn.scalar(sa.select(m.Night.counts).where(m.Night.id == served))


def already_served(engine: sa.Engine, fingerprint: str) -> int | None:
    """The served night, if it was made from exactly this drop."""
    with engine.connect() as conn:
        served = published_night(conn)
        if served is None:
            return None
        served_print = conn.scalar(sa.select(m.Night.fingerprint).where(m.Night.id == served))
        return served if served_print == fingerprint else None


def extract_counts(extract: Extract) -> dict[str, Any]:
    per_source = {
        f"{c.register.value}:{c.source}": {
            "read": c.read,
            "accepted": c.accepted,
            "quarantined": c.quarantined,
            "findings": c.findings,
        }
        for c in extract.counts
    }
    return {
        "sources": per_source,
        "read": sum(c.read for c in extract.counts),
        "accepted": sum(c.accepted for c in extract.counts),
        "quarantined": sum(c.quarantined for c in extract.counts),
        "findings": len(extract.findings),
        "person_records": len(extract.persons),
    }


def run_night(
    engine: sa.Engine,
    extract: Extract,
    *,
    drop_dir: str,
    fingerprint: str,
    config: MatchConfig | None = None,
    gates: GateConfig | None = None,
    read_seconds: float | None = None,
    feed_digests: StoredDigests | None = None,
) -> NightOutcome:
    """Reconcile and publish one night, or leave yesterday's cards served and say why not.
    ``feed_digests``: the store's snapshot digests the feed was read against, if at hand."""
    staged = stage_night(
        engine,
        extract,
        drop_dir=drop_dir,
        fingerprint=fingerprint,
        config=config,
        gates=gates,
        read_seconds=read_seconds,
        feed_digests=feed_digests,
    )
    return publish_staged(engine, staged) if staged.status == "staged" else staged


def publish_staged(engine: sa.Engine, staged: NightOutcome) -> NightOutcome:
    """Make a staged night the served one, in one step."""
    assert staged.night is not None and staged.status == "staged"
    finish_night(engine, staged.night, "published", counts=staged.counts, report=staged.report)
    return NightOutcome(
        staged.night, "published", staged.counts, f"night {staged.night} published", staged.report
    )


def stage_night(
    engine: sa.Engine,
    extract: Extract,
    *,
    drop_dir: str,
    fingerprint: str,
    config: MatchConfig | None = None,
    gates: GateConfig | None = None,
    read_seconds: float | None = None,
    airflow_run_id: str | None = None,
    feed_digests: StoredDigests | None = None,
) -> NightOutcome:
    """Gate, reconcile and write one night beside the served one, not yet visible: status
    ``staged``, or ``refused`` (a gate stopped it) or ``unchanged`` (already served).
    ``feed_digests``: the store's snapshot digests the feed was read against, if at hand (read
    again when another night was published since)."""
    if (served := already_served(engine, fingerprint)) is not None:
        return NightOutcome(served, "unchanged", message="this drop is already the served night")
    gates = gates or GateConfig()
    previous = served_counts(engine)
    night = begin_night(engine, drop_dir, fingerprint)
    counts = extract_counts(extract)
    if read_seconds is not None:
        counts["seconds_read"] = round(read_seconds, 2)
    if airflow_run_id:
        counts["airflow_run_id"] = airflow_run_id  # the stewards' page links the night's run
    stopped = check_extract(extract, previous, gates)
    if stopped:
        return _stop(engine, night, counts, stopped)
    if accepted := waived(extract, previous, gates):
        assert gates.accepted is not None
        counts["sources_accepted"] = [
            {**f.as_dict(), "steward": gates.accepted.steward, "reason": gates.accepted.reason}
            for f in accepted
        ]
        try:
            _audit_acceptance(engine, night, gates.accepted, accepted)
        except Exception as exc:  # no unaudited acceptance: the night stops
            finish_night(engine, night, "failed", counts=counts, error=failure_text(exc))
            raise
    try:
        started = time.perf_counter()
        config = config or MatchConfig()
        with collector.paused():
            counts["feed"], feed_groups, feed_seconds = _feed_first(
                engine, night, extract, gates, feed_digests
            )
            result, delta, incremental = _reconcile(engine, extract, config, previous, feed_groups)
            reconciled = time.perf_counter()
            lease.renew(engine, night)
            written = write_night(
                engine, night, extract, result, delta=delta, incremental=incremental
            )
        counts.update(
            reconciled="incremental" if incremental else "full",
            records_reconciled=len(incremental.recomputed if incremental else result.keys),
            match_state=prior.match_state_tag(config),
            cards=written.cards,
            cards_new=written.cards_new,
            records_new=written.records_new,
            records_changed=written.records_changed,
            records_removed=written.records_removed,
            links_changed=written.links_changed,
            merged=sum(1 for c in written.changes if "merge" in c.kind),
            split=sum(1 for c in written.changes if "split" in c.kind),
            retired=sum(1 for c in written.changes if c.kind == "retired"),
            review_queue=len(result.reviews),
            protected_cards=len(result.protection),
            seconds_reconcile=round(reconciled - started - feed_seconds, 2),
            seconds_write=round(time.perf_counter() - reconciled + feed_seconds, 2),
        )
        stopped = check_cards(written.cards, previous, gates)
        with collector.paused():
            night_report = report.build(
                extract, result, written.card_ids, counts, [g.as_dict() for g in stopped]
            )
        if stopped:
            return _stop(engine, night, counts, stopped, night_report)
        lease.renew(engine, night, staged=True)  # the publish step may run in another process
    except Exception as exc:
        finish_night(engine, night, "failed", counts=counts, error=failure_text(exc))
        raise
    return NightOutcome(night, "staged", counts, f"night {night} staged", night_report)


FeedGroups = tuple[dict[str, evidence.Group], set[str]]


def _feed_first(
    engine: sa.Engine,
    night: int,
    extract: Extract,
    gates: GateConfig,
    stored: StoredDigests | None,
) -> tuple[dict[str, Any], FeedGroups, float]:
    """Tonight's snapshot, if accepted, written beside the served night before reconciliation,
    then its persons and the store's digest map let go: a full night held a million persons
    through reconciliation, which needs only the multi-number groups (taken first), and an
    incremental night the map. Also the write's seconds."""
    changes, refused = _feed_verdict(engine, extract, gates, stored)
    with engine.connect() as conn:
        groups = groups_tonight(conn, changes)
    started = time.perf_counter()
    feed = refused or _write_feed(engine, night, extract, changes)
    seconds = time.perf_counter() - started
    if extract.feed is not None:
        extract.feed.release()
    if stored is not None:
        stored.release()
    return feed, groups, seconds


def _feed_verdict(
    engine: sa.Engine, extract: Extract, gates: GateConfig, stored: StoredDigests | None
) -> tuple[SnapshotChanges | None, dict[str, Any] | None]:
    """What tonight's Folkeregister snapshot changes, if it may replace the one in force, else
    why not (it is missing, or refused by its gate). Decided before reconciliation, which takes
    the feed's numbers as evidence; either way the night goes on."""
    if extract.feed is None:
        refusal = extract.feed_refusal
        missing = refusal is None or refusal.reason.startswith("no folkeregister")
        return None, {
            "status": "missing" if missing else "refused",
            "reason": refusal.reason if refusal else "no snapshot read",
        }
    changes = None
    with engine.connect() as conn:
        served = published_night(conn)
        in_force = snapshot_in_force(conn, served) if served is not None else None
        refused = check_feed(
            extract,
            last_snapshot_persons(conn),
            gates,
            in_force=in_force[1] if in_force else None,
            now=dt.datetime.now(dt.UTC),
        )
        if refused is None:
            try:
                changes = snapshot_changes(extract.feed, digests_in_force(conn, stored))
            except StaleRead as exc:
                refused = str(exc)
    if refused:
        return None, {"status": "refused", "file": extract.feed.file, "reason": refused}
    return changes, None


def _write_feed(
    engine: sa.Engine, night: int, extract: Extract, changes: SnapshotChanges | None
) -> dict[str, Any]:
    """Tonight's accepted snapshot beside the served one (the last one stays in force until
    the night is published)."""
    assert extract.feed is not None and changes is not None
    with engine.connect() as conn:
        feed = write_snapshot(conn, night, extract.feed, changes)
        conn.commit()
    return {
        "status": "read",
        "file": extract.feed.file,
        "as_of": extract.feed.as_of.isoformat(),
        "persons": feed.persons,
        "persons_new": feed.new,
        "persons_changed": feed.changed,
        "persons_removed": feed.removed,
    }


def _audit_acceptance(
    engine: sa.Engine, night: int, acceptance: SourceAcceptance, failures: list[GateFailure]
) -> None:
    """One audit event per accepted source, stored before the night goes on."""
    from personkort.audit import AuditLog, audit_keys

    audit = AuditLog(engine, audit_keys())
    try:
        for failure in failures:
            audit.append(
                "source_accepted",
                {
                    "caseworker": {
                        "sub": acceptance.steward,
                        "employer": "stat",
                        "office": "forvaltning",
                        "roles": ["forvalter"],
                    },
                    "night": night,
                    "source": failure.source,
                    "gate": failure.code,
                    "reason": acceptance.reason,
                },
            )
    finally:
        audit.close()


def failure_text(exc: BaseException) -> str:
    """What a failed night records for the stewards: the kind of failure, never its message
    (a database error quotes the row it failed on: names and identity numbers)."""
    if isinstance(exc, lease.NightBusy):
        return f"NightBusy: {exc}"  # our own words, no personal data
    return f"{type(exc).__name__} (the night's log has the place; no personal data is stored)"


def _reconcile(
    engine: sa.Engine,
    extract: Extract,
    config: MatchConfig,
    served: dict[str, Any] | None,
    feed_groups: FeedGroups | None = None,
) -> tuple[Reconciliation, Delta, Incremental | None]:
    """Tonight's reconciliation: incremental from the served night (``served``: its counts)
    when the store holds its match keys made with this configuration, otherwise in full. The
    Folkeregister's numbers (``feed_groups``: the multi-number persons of the snapshot in
    force with tonight's over it, and the numbers whose group changed) are evidence: the
    state records get them as history."""
    groups, regrouped = feed_groups or ({}, set())
    with engine.connect() as conn:
        rulings = decisions(conn)
        delta = compare_with_served(conn, extract)
        history = [*extract.ident_history, *evidence.history(extract.persons, groups)]
        if prior.usable(served, config):
            incremental = reconcile_changes(
                extract.persons,
                history,
                rulings,
                config,
                changed={
                    *delta.changed,
                    *delta.new,
                    *evidence.touched(extract.persons, regrouped),
                },
                removed=set(delta.removed),
                prior=prior.StoredNight(conn),
            )
            if incremental is not None:
                return incremental.result, delta, incremental
    result = reconcile(extract.persons, history, rulings, config, with_keys=True)
    return result, delta, None


def _stop(
    engine: sa.Engine,
    night: int,
    counts: dict[str, Any],
    failures: list[GateFailure],
    night_report: dict[str, Any] | None = None,
) -> NightOutcome:
    """A gate stopped the night: nothing of it is published, and the report says why."""
    reasons = "; ".join(f.message for f in failures)
    night_report = night_report or {"counts": counts, "gates": [f.as_dict() for f in failures]}
    finish_night(engine, night, "refused", counts=counts, report=night_report, error=reasons)
    return NightOutcome(
        night,
        "refused",
        counts,
        f"stopped, yesterday's cards still served: {reasons}",
        night_report,
    )
