"""Lookup latency and throughput of the real API on PostgreSQL with auditing on, beside two
yardsticks on this machine in the same run: a plain endpoint doing one indexed read and one
committed insert per request (bench/api/yardstick.py), and a bare endpoint returning a static
card of the same size (bench/api/bare.py).

    .venv/bin/python -m bench.api.run [--persons 20000] [--rate 500] [--seconds 20]

Each server runs under uvicorn with the same number of workers (2); the load comes from this
process over loopback (bench/api/client.py: prepared requests on keep-alive connections),
first at a fixed arrival rate for latency, then as fast as the server answers for throughput.
The personkort server is measured three ways: lookups of persons not yet looked up this night
(every card read from the store), then, after a warm-up, the same fixed-rate and flat-out runs
as the yardsticks. Each row carries the 1-minute load average when it ended: the machine's
cores are shared with the database and the load generator, and often with others.

Each row also gives the CPU time spent per answered request by the server's processes (the
uvicorn parent and its workers) and by PostgreSQL's (every ``postgres`` process), read from
``/proc`` before and after the run: on a shared machine those move less than the rates do,
and they say which side a gap is on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import sqlalchemy as sa

from bench.api.client import Result, lookup_request, run_load


class Row(NamedTuple):
    """One load run as printed."""

    result: Result
    load: float  # the 1-minute load average when it ended
    server_ms: float  # CPU ms per answered request: the server's processes
    db_ms: float  # and PostgreSQL's


PORT = 18731
PG = os.environ.get("PERSONKORT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SCHEMA, YARD_SCHEMA = "bench_api", "bench_yard"
WORKERS = 2
# Lookups are spread over this many caseworkers' tokens, as in an office: each token is
# verified once per process and each caseworker has a window in the rate limiter.
CASEWORKERS = 200
# The per-caseworker limit stays on (its bookkeeping is part of a lookup), set where the bench
# never reaches it: the warm-up alone asks 250 cards per caseworker in a minute or two.
LOOKUPS_PER_MINUTE = "1000000"


def _schema_url(schema: str) -> str:
    return f"{PG}?options=-csearch_path%3D{schema}"


def _fresh_schema(schema: str) -> str:
    admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    return _schema_url(schema)


def prepare(persons: int, folder: Path) -> tuple[str, list[str], int]:
    """Simulate and run one night into a fresh schema: (store URL, idents to ask, cards)."""
    from adapters import read_drop
    from adapters.drop import fingerprint
    from personkort.nightly import run_night
    from personkort.store import open_engine
    from simulator import simulate

    url = _fresh_schema(SCHEMA)
    simulate(persons, 7, 1, folder / "registers")
    drop = folder / "registers" / "night1"
    engine = open_engine(url)
    run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    with engine.connect() as conn:
        idents = [
            i
            for (i,) in conn.execute(
                sa.text(
                    "SELECT DISTINCT ident FROM source_record WHERE ident IS NOT NULL "
                    "AND register <> 'kommune' LIMIT 10000"
                )
            )
        ]
        cards = conn.scalar(sa.text("SELECT count(DISTINCT card_id) FROM card")) or 0
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE"))  # as autovacuum would soon after a night
    engine.dispose()
    return url, idents, cards


def fill_yard(idents: list[str], cards: int, card: str) -> str:
    """The plain endpoint's tables: as many cards as personkort serves, each the size of a
    real card, every asked identity number among them; an empty audit table."""
    url = _fresh_schema(YARD_SCHEMA)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE yard_card (ident text PRIMARY KEY, body text)"))
        conn.execute(
            sa.text(
                "CREATE TABLE yard_audit (id bigserial PRIMARY KEY, at timestamptz, "
                "ident_hmac text, body text)"
            )
        )
        keys = idents + [f"Y{n:010d}" for n in range(max(0, cards - len(idents)))]
        for start in range(0, len(keys), 5000):
            conn.execute(
                sa.text("INSERT INTO yard_card (ident, body) VALUES (:ident, :body)"),
                [{"ident": k, "body": card} for k in keys[start : start + 5000]],
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()
    return url


def start(
    args: list[str], env: dict[str, str], port: int, workers: int = WORKERS
) -> subprocess.Popen[bytes]:
    """A uvicorn server in a process of its own, once it answers (any status) on ``port``."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            *args,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait()


def _stat(pid: int) -> tuple[str, list[str]] | None:
    """A process's command name and the fields of /proc/PID/stat after it (None: gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    end = text.rindex(")")  # the name may hold spaces and parentheses
    return text[text.index("(") + 1 : end], text[end + 2 :].split()


def _processes() -> dict[int, tuple[int, str]]:
    """Every process: its parent and its command name."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            name, fields = stat
            out[int(entry.name)] = (int(fields[1]), name)
    return out


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User and system CPU time of each of these processes that is still there."""
    out = {}
    for pid in pids:
        stat = _stat(pid)
        if stat is not None:
            utime, stime = stat[1][11:13]
            out[pid] = (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")
    return out


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between the readings by processes there at the second one (one that
    ended in between is left out: its time cannot be read any more)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def _server_and_database(server: subprocess.Popen[bytes]) -> tuple[list[int], list[int]]:
    everyone = _processes()
    tree, grew = {server.pid}, True
    while grew:
        more = {pid for pid, (parent, _) in everyone.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    database = [pid for pid, (_, name) in everyone.items() if name == "postgres"]
    return sorted(tree), database


def measure(requests: list[bytes], server: subprocess.Popen[bytes], **how: Any) -> Row:
    """One load run: its result, the 1-minute load average when it ended, and the server's and
    the database's CPU milliseconds per answered request."""
    ours, database = _server_and_database(server)
    before = _cpu_seconds(ours), _cpu_seconds(database)
    result = asyncio.run(run_load("127.0.0.1", PORT, requests, **how))
    ours, database = _server_and_database(server)  # backends opened during the run count too
    after = _cpu_seconds(ours), _cpu_seconds(database)
    per = 1000 / max(1, result.requests)
    return Row(
        result,
        os.getloadavg()[0],
        _spent(before[0], after[0]) * per,
        _spent(before[1], after[1]) * per,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warm-passes", type=int, default=10)
    args = parser.parse_args()
    from api.auth import mint
    from api.settings import Settings

    results: dict[str, Row] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["PERSONKORT_DATA_DIR"] = str(folder / "data")  # one key ring for all
        os.environ["PERSONKORT_DEV_MODE"] = "1"  # development keys, made once under data/
        os.environ["PERSONKORT_LOOKUPS_PER_MINUTE"] = LOOKUPS_PER_MINUTE
        store, idents, cards = prepare(args.persons, folder)
        env = {**os.environ, "PERSONKORT_STORE_URL": store}
        settings = Settings(data_dir=str(folder / "data"))
        tokens = [
            mint(
                settings,
                {
                    "sub": f"Z{n:06d}",
                    "employer": "stat",
                    "office": "nav-oslo",
                    "roles": ["veileder", "kode6", "skjermet"],
                },
            )
            for n in range(CASEWORKERS)
        ]
        token = tokens[0]
        asked = [
            lookup_request("127.0.0.1", PORT, tokens[n % CASEWORKERS], i)
            for n, i in enumerate(idents)
        ]
        seen, fresh = asked[:5000], asked[5000:]
        server = start(["api.app:create_app", "--factory"], env, PORT)
        try:
            card = httpx.post(
                f"http://127.0.0.1:{PORT}/api/v1/personkort",
                json={"ident": idents[0], "purpose": "bench"},
                headers={"Authorization": f"Bearer {token}"},
            ).text
            (folder / "card.json").write_text(card)
            # Never looked up before in this night: every card is read from the store.
            results["personkort first sight"] = measure(
                fresh, server, rate=None, seconds=args.seconds, connections=8, in_order=True
            )
            # Warm-up, not counted: connections land on either worker process at random, so
            # after ten passes each process has about 1 card in 1,000 of `seen` still to read.
            for _ in range(args.warm_passes):
                measure(seen, server, rate=None, seconds=60, connections=8, in_order=True)
            results[f"personkort at {args.rate:g}/s"] = measure(
                seen, server, rate=args.rate, seconds=args.seconds
            )
            results["personkort flat out"] = measure(seen, server, rate=None, seconds=args.seconds)
        finally:
            stop(server)
        yard_url = fill_yard(idents, cards, card)
        yard = start(["bench.api.yardstick:app"], {**env, "BENCH_YARD_URL": yard_url}, PORT)
        try:
            measure(seen, yard, rate=None, seconds=5)  # warm-up: connections and the table's pages
            results[f"yardstick at {args.rate:g}/s"] = measure(
                seen, yard, rate=args.rate, seconds=args.seconds
            )
            results["yardstick flat out"] = measure(seen, yard, rate=None, seconds=args.seconds)
        finally:
            stop(yard)
        bare = start(
            ["bench.api.bare:app"], {**env, "BENCH_CARD_FILE": str(folder / "card.json")}, PORT
        )
        try:
            results[f"bare at {args.rate:g}/s"] = measure(
                seen, bare, rate=args.rate, seconds=args.seconds
            )
            results["bare flat out"] = measure(seen, bare, rate=None, seconds=args.seconds)
        finally:
            stop(bare)
    print(
        f"card size {len(card.encode())} bytes; {args.persons:,} persons ({cards:,} cards) on "
        f"PostgreSQL; audit on; {WORKERS} uvicorn workers per server; {os.cpu_count()} cores"
    )
    print("CPU ms/req: CPU time per answered request of the server's processes and of PostgreSQL's")
    print(
        f"{'run':<28}{'requests':>9}{'per s':>9}{'p50 ms':>9}{'p99 ms':>9}{'5xx':>6}{'load':>6}"
        f"{'server CPU':>12}{'db CPU':>8}"
    )
    for name, (r, load, server_ms, db_ms) in results.items():
        print(
            f"{name:<28}{r.requests:>9}{r.per_second:>9.1f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}"
            f"{r.errors_5xx:>6}{load:>6.1f}{server_ms:>12.2f}{db_ms:>8.2f}"
        )
        other = {s: n for s, n in r.statuses.items() if s != 200}
        if other:
            print(f"{'':<28}answers other than 200: {other}")
    ours, yardstick = results["personkort flat out"], results["yardstick flat out"]
    cpu = ours.server_ms / max(1e-9, yardstick.server_ms)
    flat = ours.result.per_second
    yard_flat = yardstick.result.per_second
    bare_flat = results["bare flat out"].result.per_second
    print(
        f"flat out: personkort/yardstick = {flat / yard_flat:.2f} (target >= 1.00); "
        f"personkort/bare = {flat / bare_flat:.0%}; server CPU per request, flat out: "
        f"personkort/yardstick = {cpu:.2f}"
    )


if __name__ == "__main__":
    main()
