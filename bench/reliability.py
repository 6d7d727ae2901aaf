"""The reliability suite's full form (issue 12, item 9): the two scenarios of
tests/reliability/test_publish_under_lookups.py and test_store_restart.py, longer, larger and
under a steady offered load, with the figures docs/reliability.md reports.

    .venv/bin/python -m bench.reliability [--persons 20000] [--seconds 20] [--rate 150]
        [--publishes 2] [--restarts 4] [--down 2]

1. **Lookups during a publish**, on PostgreSQL (a schema of the shared test server) and on
   SQLite: nights 2, 3, ... of a simulated drop are staged and published by ``personkort
   night``, each in a process of its own, while lookups arrive at ``--rate`` per second
   (``--seconds`` / 2 before and after each night). Every answer must be the person's card
   of the old night or the new one (mixed: 0), and every lookup has exactly one audit event.
2. **The database restarted under load**, on a private PostgreSQL cluster (initdb, pg_ctl; never
   the shared server): ``--restarts`` times stopped (clean and crash-like in turn), left down
   ``--down`` seconds and started again, while lookups arrive at ``--rate`` per second. Lookups
   must answer 503 while it is down and 200 again after, from the same API process; lost (a
   200 without its audit event) must be 0 and the audit chain must verify.

The API runs as one uvicorn worker in a process of its own (the load and the nights in
others); latency counts from when the steady rate wanted each lookup sent. The fault window
is the night's run (publish) or from the stop to the first 200 after the start (restart).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from bench.api.run import start as start_server
from bench.api.run import stop as stop_server
from bench.reliability_scenarios import (
    CLAIMS,
    PERSONKORT,
    PROBLEM_JSON,
    Answer,
    AuditTally,
    PrivateCluster,
    Window,
    figures,
    free_port,
    gaps,
    publish_under_lookups,
    restart_under_lookups,
    tally,
    verify_audit,
)

PG = os.environ.get("PERSONKORT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SCHEMA = "bench_reliability"
CONNECTIONS = 8


def _fresh_schema() -> str:
    admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
    admin.dispose()
    return f"{PG}?options=-csearch_path%3D{SCHEMA}"


def _drop_schema() -> None:
    admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    admin.dispose()


def _night(drop: Path, store: str) -> list[str]:
    return [PERSONKORT, "night", str(drop), "--store", store]


def _run_night(drop: Path, store: str) -> None:
    done = subprocess.run(_night(drop, store), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"night {drop.name} failed: {done.stderr[-2000:]}")


def _idents(drop: Path, people: int) -> list[str]:
    import csv

    with (drop / "truth" / "persons.csv").open(encoding="utf-8", newline="") as f:
        numbers = [r["fnr"] or r["dnr"] for r in csv.DictReader(f) if r["fnr"] or r["dnr"]]
    random.Random(7).shuffle(numbers)
    return numbers[:people]


def _serve(store: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PERSONKORT_STORE_URL": store}
    return start_server(
        ["api.app:create_app", "--factory"], env, port, 1
    ), f"http://127.0.0.1:{port}"


def _token() -> str:
    from api.auth import mint
    from api.settings import Settings

    return mint(Settings(), CLAIMS)


def _print_phases(answers: list[Answer], phases: dict[str, list[Window]]) -> None:
    for name, windows in phases.items():
        print(f"  {name:<22}{figures(answers, windows).line()}")


def _print_audit(audit: AuditTally) -> None:
    print(f"  audit: {audit.line()}")
    print(f"  lost (200 without its audit event): {audit.lost}")


def _dump(
    args: argparse.Namespace, name: str, answers: list[Answer], phases: dict[str, list[Window]]
) -> None:
    """With ``--dump``: every lookup's times and status, and the fault windows, as JSON lines."""
    if not args.dump:
        return
    with open(args.dump, "a", encoding="utf-8") as f:
        f.write(json.dumps({"scenario": name, "phases": phases}) + "\n")
        for a in answers:
            row = {"due": a.due, "sent": a.sent, "done": a.done, "status": a.status}
            f.write(json.dumps({"scenario": name, **row}) + "\n")


def publish_scenario(
    name: str, store: str, drops: list[Path], idents: list[str], args: argparse.Namespace
) -> bool:
    """Nights 2.. published under lookups on one store; True when nothing failed."""
    _run_night(drops[0], store)
    server, url = _serve(store)
    token = _token()
    answers: list[Answer] = []
    traces: list[tuple[int, str | None]] = []
    phases: dict[str, list[Window]] = {
        "before the night": [],
        "during the night": [],
        "after the publish": [],
    }
    kinds: Counter[str] = Counter()
    mixed = backwards = 0
    nights: list[str] = []
    try:
        for drop in drops[1:]:
            run = publish_under_lookups(
                url,
                token,
                idents,
                _night(drop, store),
                dict(os.environ),
                rate=args.rate,
                connections=CONNECTIONS,
                lead=args.seconds / 2,
                tail=args.seconds / 2,
            )
            if run.night_returncode != 0:
                print(f"  {drop.name} failed: {run.night_stderr[-1000:]}")
            nights.append(
                f"{drop.name} in {run.night_ended - run.night_began:.1f} s "
                f"(exit {run.night_returncode}; of the {len(run.old)} asked persons with a card, "
                f"{run.content_changed} changed beyond the night's number)"
            )
            answers += run.answers
            traces += run.trace_ids()
            phases["before the night"].append((run.load_began, run.night_began))
            phases["during the night"].append((run.night_began, run.night_ended))
            phases["after the publish"].append((run.night_ended, run.load_ended))
            kinds += run.kinds
            mixed += len(run.mixed)
            backwards += len(run.old_after_new)
        alive = server.poll() is None
    finally:
        stop_server(server)
    engine = sa.create_engine(store)
    try:
        audit = tally(engine, traces)
    finally:
        engine.dispose()
    print(
        f"\n== lookups during a publish: {name}, {args.persons:,} persons, {len(idents):,} asked, "
        f"offered {args.rate:g}/s on {CONNECTIONS} connections"
    )
    print(f"  faults injected: {len(nights)} publishes: " + "; ".join(nights))
    _print_phases(answers, phases)
    _dump(args, f"publish {name}", answers, phases)
    shown = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
    print(f"  answers: {shown}; mixed {mixed}; old after new {backwards}")
    _print_audit(audit)
    fivexx = sum(1 for a in answers if a.status >= 500)
    print(f"  5xx or dropped: {fivexx}; API process alive throughout: {alive}")
    return mixed == 0 and backwards == 0 and audit.lost == 0 and fivexx == 0 and alive


def _records(store: str) -> dict[str, int]:
    engine = sa.create_engine(store)
    try:
        with engine.connect() as conn:
            return {
                table: int(conn.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)
                for table in ("card", "source_record", "consent", "night")
            }
    finally:
        engine.dispose()


def restart_scenario(drop: Path, idents: list[str], args: argparse.Namespace) -> bool:
    cluster = PrivateCluster()
    try:
        store = cluster.url()
        _run_night(drop, store)
        before = _records(store)
        server, url = _serve(store)
        pid = server.pid
        alive: list[bool] = []
        try:
            quiet = args.seconds / (args.restarts + 1)
            run = restart_under_lookups(
                url,
                _token(),
                idents,
                cluster,
                rate=args.rate,
                connections=CONNECTIONS,
                restarts=args.restarts,
                down_seconds=args.down,
                warmup=quiet,
                between=quiet,
                modes=("fast", "immediate"),
                on_restart=lambda _: alive.append(server.poll() is None),
            )
            alive.append(server.poll() is None)
        finally:
            stop_server(server)  # its audit log closes: a last checkpoint is signed
        after = _records(store)
        engine = sa.create_engine(store)
        try:
            audit = tally(engine, run.trace_ids())
            verified, events, problem = verify_audit(engine, os.environ["PERSONKORT_DATA_DIR"])
        finally:
            engine.dispose()
    finally:
        cluster.close()
    recovered = [o for o in run.outages if o.recovered is not None]
    modes = Counter(o.mode for o in run.outages)
    down = run.down()
    down_ok = all(a.status == 503 and a.content_type == PROBLEM_JSON for a in down)
    timeout = float(os.environ.get("PERSONKORT_STORE_TIMEOUT_SECONDS", "3"))
    ready = [s for t, s in run.ready for o in run.outages if o.down[0] <= t < o.down[1] - 0.5]
    ready_after = [s for t, s in run.ready if t > run.outages[-1].window[1] + 1.0]
    lost_records = {k: before[k] - after[k] for k in before if after[k] < before[k]}
    print(
        f"\n== the database restarted under load: private PostgreSQL cluster, {args.persons:,} "
        f"persons, {len(idents):,} asked, offered {args.rate:g}/s on {CONNECTIONS} connections, "
        f"store timeout {timeout:g} s"
    )
    print(
        f"  faults injected: {len(run.outages)} restarts ("
        + ", ".join(f"{m} stop {n}" for m, n in sorted(modes.items()))
        + f"), down {args.down:g} s each; survived {len(recovered)}; recovered "
        + ", ".join(f"{o.recovered - o.started:.2f}" for o in recovered)
        + " s after each start"
    )
    print(f"  API process {pid} alive throughout: {all(alive)} (never restarted)")
    windows = run.windows()
    outside = gaps((run.began, run.ended), windows)
    _print_phases(run.answers, {"during the outages": windows, "outside them": outside})
    _dump(args, "restart", run.answers, {"outages": windows})
    slowest = max((a.service for a in down), default=0.0)
    print(
        f"  while down: {len(down)} lookups, all 503 problem+json: {down_ok}; slowest answer "
        f"{slowest * 1000:.1f} ms (store timeout {timeout:g} s)"
    )
    print(
        f"  readiness while down: {dict(Counter(ready))}; after the last recovery: "
        f"{dict(Counter(ready_after))}"
    )
    _print_audit(audit)
    print(f"  audit verify: {'ok' if verified else 'FAILED: ' + str(problem)} ({events} events)")
    print(f"  records before/after: {before} / {after}; lost {sum(lost_records.values())}")
    return (
        len(recovered) == len(run.outages)
        and all(alive)
        and down_ok
        and audit.lost == 0
        and verified
        and not lost_records
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--people", type=int, default=1_000, help="persons looked up")
    parser.add_argument("--seconds", type=float, default=20.0, help="quiet load per scenario")
    parser.add_argument("--rate", type=float, default=150.0, help="lookups offered per second")
    parser.add_argument("--publishes", type=int, default=2)
    parser.add_argument("--restarts", type=int, default=4)
    parser.add_argument("--down", type=float, default=2.0, help="seconds the database is down")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--only",
        choices=("publish-postgres", "publish-sqlite", "restart"),
        action="append",
        help="run only these scenarios (repeatable; default: all three)",
    )
    parser.add_argument("--dump", help="append every lookup's times and status to this file")
    args = parser.parse_args()
    from simulator import simulate

    began = time.monotonic()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["PERSONKORT_DATA_DIR"] = str(folder / "data")  # one key ring for all
        os.environ["PERSONKORT_DEV_MODE"] = "1"
        os.environ["PERSONKORT_LOOKUPS_PER_MINUTE"] = "100000000"
        simulate(args.persons, args.seed, args.publishes + 1, folder / "registers")
        drops = [folder / "registers" / f"night{n}" for n in range(1, args.publishes + 2)]
        idents = _idents(drops[0], args.people)
        print(
            f"{args.persons:,} persons simulated ({args.publishes + 1} nights); {os.cpu_count()} "
            f"cores, load average {os.getloadavg()[0]:.1f}; python {sys.version.split()[0]}"
        )
        only = set(args.only or ("publish-postgres", "publish-sqlite", "restart"))
        if "publish-postgres" in only:
            try:
                ok &= publish_scenario("PostgreSQL", _fresh_schema(), drops, idents, args)
            finally:
                _drop_schema()
        if "publish-sqlite" in only:
            sqlite = f"sqlite:///{folder / 'store.sqlite'}"
            ok &= publish_scenario("SQLite", sqlite, drops, idents, args)
        if "restart" in only:
            ok &= restart_scenario(drops[0], idents, args)
    print(
        f"\n{'all held' if ok else 'FAILED'} in {time.monotonic() - began:.0f} s; load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
