"""The Folkeregister feed's bench targets (issue 13) through the real API over loopback.

    .venv/bin/python -m bench.feed events [--persons 20000] [--latency-persons 300]

One night of a simulated population (with the feed) is published into a PostgreSQL schema of
its own (``bench_feed``, dropped and made again), then uvicorn serves it with two workers and
the card cache on, as in production. The command prints:

- events applied per second, posted in batches of 1, 100 and 1000 (each a fresh kode 6 raise,
  ``ADRESSEBESKYTTELSE_V1 OPPRETTET STRENGT_FORTROLIG``, for a real person's number, a unique
  ``hendelseId`` each), one batch at a time as the register would push them;
- arrival to visible: for each of N persons whose card both workers have cached, one raise is
  posted, then the person is looked up in turn through a connection held by each worker until
  the answer is 403 ``strengt_fortrolig_adresse``; timed from the moment the POST is sent (its
  own time included) to the first lookup that sees it, and to the moment both workers do; a
  raise some worker has not applied after 5 s is listed, with whether a register holds its
  number (or only the feed does);
- plain lookup latency at a fixed rate, before any event, while events stream in (one a POST,
  at ``--stream-rate`` per second), and after, with every event stored.

Which worker answers a connection is read from the server's sockets (psutil), so "both
workers" is known, not hoped for. The 1-minute load average is printed with each figure. The
server's pool is 8 (+8) connections per worker: the local PostgreSQL is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import sqlalchemy as sa

from bench.api.client import Result, lookup_request, run_load
from bench.api.run import _fresh_schema, start, stop

PORT = 18741
SCHEMA = "bench_feed"
WORKERS = 2
SEED = 13
CASEWORKERS = 20
# A caseworker with no kode 6 / kode 7 rights, so a raise turns 200 into 403. "skjermet" opens
# NAV employees' cards, which would otherwise be refused before the raise.
CASEWORKER_ROLES = ["veileder", "skjermet"]
FEED_CLAIMS = {
    "sub": "folkeregister",
    "employer": "stat",
    "office": "folkeregister",
    "roles": ["folkeregister"],
}
OSLO = dt.timezone(dt.timedelta(hours=1))
KODE6 = "strengt_fortrolig_adresse"


def prepare(persons: int, folder: Path) -> tuple[str, list[str]]:
    """Simulate and publish night 1 into a fresh schema: (store URL, every true person's
    number in use, in the simulator's order)."""
    from adapters import read_drop
    from adapters.drop import fingerprint
    from personkort.nightly import run_night
    from personkort.store import open_engine
    from simulator import simulate

    url = _fresh_schema(SCHEMA)
    simulate(persons, SEED, 1, folder / "sim", feed=True)
    drop = folder / "sim" / "night1"
    engine = open_engine(url)
    outcome = run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    if outcome.status != "published" or outcome.counts["feed"]["status"] != "read":
        raise SystemExit(f"night 1 not published with its feed: {outcome.message}")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE"))  # as autovacuum would soon after a night
    engine.dispose()
    with (drop / "truth" / "feed_protection.csv").open(newline="") as f:
        marked = {row["person_key"] for row in csv.DictReader(f)}
    with (drop / "truth" / "persons.csv").open(newline="") as f:
        # A state register's person with no marker: a state caseworker's lookup is a 200
        # until a raise, and the number in use leads to the card.
        numbers = [
            row["fnr"] or row["dnr"]
            for row in csv.DictReader(f)
            if (row["in_arena"] == "1" or row["in_infotrygd"] == "1")
            and not row["adressebeskyttelse"]
            and row["person_key"] not in marked
        ]
    return url, [n for n in numbers if n]


def raise_event(number: str) -> dict[str, object]:
    """A kode 6 raise for ``number``, created now (after the snapshot, so it counts today)."""
    return {
        "hendelseId": str(uuid.uuid4()),
        "opprettet": dt.datetime.now(OSLO).isoformat(timespec="seconds"),
        "personidenter": [number],
        "opplysningstype": "ADRESSEBESKYTTELSE_V1",
        "endringstype": "OPPRETTET",
        "tidligereHendelseId": None,
        "adressebeskyttelse": {"gradering": "STRENGT_FORTROLIG"},
    }


def quantile(values: list[float], q: float) -> float:
    """The nearest-rank quantile: the value at or below which ``q`` of them lie."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(len(ordered) * q + 0.999999) - 1))]


def load() -> float:
    return os.getloadavg()[0]


class Api:
    """The server under test: a feed client, and caseworker clients whose connections are each
    known to be held by one of the worker processes."""

    def __init__(self, base: str, feed_token: str, tokens: list[str]) -> None:
        self.base = base
        self.feed_headers = {
            "Authorization": f"Bearer {feed_token}",
            "Content-Type": "application/json",
        }
        self.tokens = tokens
        self.feed = httpx.Client(base_url=base, timeout=60)

    def post(self, events: list[dict[str, object]]) -> dict[str, int]:
        response = self.feed.post(
            "/api/v1/folkeregister/hendelser", content=json.dumps(events), headers=self.feed_headers
        )
        if response.status_code != 200:
            raise SystemExit(f"events refused: {response.status_code} {response.text[:300]}")
        return response.json()

    def lookup(self, client: httpx.Client, number: str, token: str) -> httpx.Response:
        return client.post(
            "/api/v1/personkort",
            json={"ident": number, "purpose": "bench"},
            headers={"Authorization": f"Bearer {token}"},
        )


def server_workers(server: psutil.Process) -> list[psutil.Process]:
    """The uvicorn worker processes: the server's children holding sockets."""
    workers = [w for w in server.children(recursive=True) if w.net_connections("tcp")]
    if len(workers) != WORKERS:
        raise SystemExit(f"expected {WORKERS} workers, found {[w.pid for w in workers]}")
    return workers


def one_client_per_worker(
    api: Api, workers: list[psutil.Process], probe: str
) -> list[httpx.Client]:
    """One keep-alive client per worker process: connections are opened until each worker
    holds one (the kernel hands each to whichever worker accepts first)."""
    held: dict[int, httpx.Client] = {}
    for _ in range(50):
        client = httpx.Client(
            base_url=api.base,
            timeout=30,
            limits=httpx.Limits(max_connections=1, keepalive_expiry=None),
        )
        api.lookup(client, probe, api.tokens[0])
        pid = _worker_of(client, workers)
        if pid is not None and pid not in held:
            held[pid] = client
        else:
            client.close()
        if len(held) == WORKERS:
            return list(held.values())
    raise SystemExit(f"could not reach {WORKERS} workers; held {sorted(held)}")


def _local_port(client: httpx.Client) -> int | None:
    """The local port of a client's single pooled connection (httpcore internals)."""
    pool = client._transport._pool  # type: ignore[attr-defined]
    for connection in pool.connections:
        stream = connection._connection._network_stream  # type: ignore[union-attr]
        return stream.get_extra_info("socket").getsockname()[1]
    return None


def _worker_of(client: httpx.Client, workers: list[psutil.Process]) -> int | None:
    """The pid of the worker process at the other end of this client's connection."""
    port = _local_port(client)
    for worker in workers:
        for c in worker.net_connections("tcp"):
            if c.raddr and c.raddr.port == port and c.laddr.port == PORT:
                return worker.pid
    return None


def events_per_second(
    api: Api, numbers: list[str], plan: list[tuple[int, int]]
) -> list[tuple[int, int, float, float, float, float, float]]:
    """For each (batch size, batches): events stored, seconds, events/s, the POST's p50 and
    max milliseconds, and the load average; one POST at a time."""
    rng = random.Random(SEED)
    rows = []
    for size, batches in plan:
        bodies = [[raise_event(rng.choice(numbers)) for _ in range(size)] for _ in range(batches)]
        took: list[float] = []
        stored = 0
        began = time.perf_counter()
        for body in bodies:
            sent = time.perf_counter()
            receipt = api.post(body)
            took.append(time.perf_counter() - sent)
            stored += receipt["stored"]
            if receipt["stored"] != size:
                raise SystemExit(f"batch of {size}: {receipt}")
        seconds = time.perf_counter() - began
        rows.append(
            (
                size,
                stored,
                seconds,
                stored / seconds,
                statistics.median(took) * 1000,
                max(took) * 1000,
                load(),
            )
        )
    return rows


@dataclass
class Visible:
    first_ms: float  # POST sent -> the first lookup (either worker) answered 403
    both_ms: float  # POST sent -> lookups through both workers have answered 403
    post_ms: float  # the POST's own time
    lookups: int  # lookups after the POST until both saw it


@dataclass
class Unseen:
    """A raise that some worker still did not apply ``GIVE_UP`` seconds after it was sent."""

    number: str
    saw: list[bool]  # per worker
    last: list[str]  # each worker's last answer: status and problem code


GIVE_UP = 5.0


def arrival_to_visible(
    api: Api, server: psutil.Process, numbers: list[str], warm: int
) -> tuple[list[Visible], list[Unseen], Counter[str]]:
    """One raise per person whose card both workers have cached (``warm`` lookups in each),
    then lookups through each worker in turn until both answer 403 strengt fortrolig."""
    seen: list[Visible] = []
    unseen: list[Unseen] = []
    skipped: Counter[str] = Counter()
    tokens = api.tokens
    workers = server_workers(server)
    pids = {w.pid for w in workers}
    pair = one_client_per_worker(api, workers, numbers[0])
    for n, number in enumerate(numbers):
        token = tokens[n % len(tokens)]
        answers = [api.lookup(c, number, token).status_code for c in pair for _ in range(warm)]
        if {_worker_of(c, workers) for c in pair} != pids:  # a connection was closed, reopened
            skipped["pair rebuilt (warm-up repeated)"] += 1
            for client in pair:
                client.close()
            pair = one_client_per_worker(api, workers, numbers[0])
            answers = [api.lookup(c, number, token).status_code for c in pair for _ in range(warm)]
        if set(answers) != {200}:
            skipped[f"not 200 before the raise: {sorted(set(answers))}"] += 1
            continue
        body = [raise_event(number)]
        sent = time.perf_counter()
        if api.post(body)["stored"] != 1:
            raise SystemExit(f"{number}: the raise was not stored")
        posted = time.perf_counter()
        first: float | None = None
        saw = [False] * len(pair)
        last = [""] * len(pair)
        lookups = 0
        while not all(saw) and time.perf_counter() - sent < GIVE_UP:
            for i, client in enumerate(pair):
                if saw[i]:
                    continue
                response = api.lookup(client, number, token)
                lookups += 1
                code = response.json().get("code") if response.status_code != 200 else ""
                last[i] = f"{response.status_code} {code}".strip()
                if response.status_code == 403 and code == KODE6:
                    saw[i] = True
                    first = first if first is not None else time.perf_counter()
        if not all(saw):
            unseen.append(Unseen(number, saw, last))
            continue
        both = time.perf_counter()
        assert first is not None
        seen.append(
            Visible((first - sent) * 1000, (both - sent) * 1000, (posted - sent) * 1000, lookups)
        )
    for client in pair:
        client.close()
    return seen, unseen, skipped


def _measure(requests: list[bytes], rate: float, seconds: float) -> tuple[Result, float]:
    result = asyncio.run(run_load("127.0.0.1", PORT, requests, rate=rate, seconds=seconds))
    return result, load()


def _stream(api: Api, numbers: list[str], rate: float, stop_at: threading.Event) -> list[int]:
    """One raise per POST at ``rate`` per second until told to stop; the stored counts."""
    rng = random.Random(SEED + 1)
    stored: list[int] = []
    begin = time.perf_counter()
    n = 0
    while not stop_at.is_set():
        due = begin + n / rate
        if (wait := due - time.perf_counter()) > 0:
            time.sleep(wait)
        stored.append(api.post([raise_event(rng.choice(numbers))])["stored"])
        n += 1
    return stored


def plain_lookups_while_streaming(
    api: Api,
    requests: list[bytes],
    numbers: list[str],
    rate: float,
    stream_rate: float,
    seconds: float,
) -> tuple[tuple[Result, float], int, float]:
    """Lookups at ``rate`` while raises for other persons arrive at ``stream_rate``."""
    stop_at = threading.Event()
    out: list[list[int]] = []
    poster = threading.Thread(
        target=lambda: out.append(_stream(api, numbers, stream_rate, stop_at))
    )
    began = time.perf_counter()
    poster.start()
    result = _measure(requests, rate, seconds)
    stop_at.set()
    poster.join()
    elapsed = time.perf_counter() - began
    return result, sum(out[0]), sum(out[0]) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    events = sub.add_parser("events", help="events/s, arrival to visible, lookups while streaming")
    events.add_argument("--persons", type=int, default=20_000)
    events.add_argument("--latency-persons", type=int, default=300)
    events.add_argument("--warm", type=int, default=3, help="lookups per worker before a raise")
    events.add_argument("--rate", type=float, default=100, help="plain lookups per second")
    events.add_argument("--stream-rate", type=float, default=20, help="events per second")
    events.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    run_events(args)


def run_events(args: argparse.Namespace) -> None:
    from api.auth import mint
    from api.settings import Settings

    started = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["PERSONKORT_DATA_DIR"] = str(folder / "data")
        os.environ["PERSONKORT_DEV_MODE"] = "1"
        os.environ["PERSONKORT_LOOKUPS_PER_MINUTE"] = "1000000"
        t = time.perf_counter()
        store, numbers = prepare(args.persons, folder)
        print(f"night 1 of {args.persons:,} persons published in {time.perf_counter() - t:.1f} s")
        settings = Settings(data_dir=str(folder / "data"))
        tokens = [
            mint(
                settings,
                {
                    "sub": f"Z{n:06d}",
                    "employer": "stat",
                    "office": "nav-oslo",
                    "roles": CASEWORKER_ROLES,
                },
            )
            for n in range(CASEWORKERS)
        ]
        feed_token = mint(settings, FEED_CLAIMS)
        rng = random.Random(SEED)
        rng.shuffle(numbers)
        # Three pools that never share a person: raised in bulk, raised one at a time while
        # timed, and never raised (the plain lookups).
        held_out = args.latency_persons * 2  # room for persons skipped as not 200
        plain = min(3000, (len(numbers) - held_out) // 2)
        latency_pool = numbers[:held_out]
        plain_pool = numbers[held_out : held_out + plain]
        bulk_pool = numbers[held_out + plain :]
        # A smaller pool than the default 20 (+20) per worker: the PostgreSQL is shared.
        env = {**os.environ, "PERSONKORT_STORE_URL": store, "PERSONKORT_POOL_SIZE": "8"}
        server = start(["api.app:create_app", "--factory"], env, PORT, workers=WORKERS)
        try:
            report(
                args,
                server,
                store,
                feed_token,
                tokens,
                latency_pool,
                plain_pool,
                bulk_pool,
                started,
            )
        finally:
            stop(server)


def report(
    args: argparse.Namespace,
    server: object,
    store: str,
    feed_token: str,
    tokens: list[str],
    latency_pool: list[str],
    plain_pool: list[str],
    bulk_pool: list[str],
    started: dt.datetime,
) -> None:
    """Measure and print each part as soon as it is done (a later failure keeps the rest)."""
    base = f"http://127.0.0.1:{PORT}"
    api = Api(base, feed_token, tokens)
    proc = psutil.Process(server.pid)  # type: ignore[attr-defined]
    print(
        f"\n{args.persons:,} persons; PostgreSQL schema {SCHEMA}; {WORKERS} uvicorn workers, card "
        f"cache on; {os.cpu_count()} cores; began {started:%Y-%m-%d %H:%M} UTC",
        flush=True,
    )
    requests = [
        lookup_request("127.0.0.1", PORT, tokens[n % len(tokens)], number)
        for n, number in enumerate(plain_pool)
    ]

    def warm_plain() -> None:
        """Not counted: every plain card into (almost surely) both workers' caches."""
        for _ in range(4):
            asyncio.run(
                run_load(
                    "127.0.0.1", PORT, requests, rate=None, seconds=60, connections=8, in_order=True
                )
            )

    warm_plain()
    plain: dict[str, tuple[Result, float]] = {}
    plain["before any event"] = _measure(requests, args.rate, args.seconds)

    applied = events_per_second(api, bulk_pool, [(1, 300), (100, 30), (1000, 10)])
    print("\n(a) events applied per second (one POST at a time)")
    print(
        f"{'batch':>6}{'events':>8}{'seconds':>9}{'events/s':>10}{'POST p50 ms':>13}"
        f"{'max ms':>9}{'load':>6}"
    )
    for size, stored, seconds, per_s, p50, worst, ld in applied:
        print(
            f"{size:>6}{stored:>8}{seconds:>9.2f}{per_s:>10.1f}{p50:>13.1f}{worst:>9.1f}{ld:>6.1f}"
        )
    sys.stdout.flush()

    visible, unseen, skipped = arrival_to_visible(
        api, proc, latency_pool[: args.latency_persons], args.warm
    )
    print_visible(args, store, visible, unseen, skipped)

    warm_plain()  # the plain cards again, then quiet
    plain["after, no events arriving"] = _measure(requests, args.rate, args.seconds)
    streamed_result, streamed, stream_per_s = plain_lookups_while_streaming(
        api, requests, bulk_pool, args.rate, args.stream_rate, args.seconds
    )
    plain[f"while {args.stream_rate:g} events/s arrive"] = streamed_result
    plain["after, quiet again"] = _measure(requests, args.rate, args.seconds)
    print(
        f"\n(c) plain lookups at {args.rate:g}/s, {args.seconds:g} s each, "
        f"{len(plain_pool):,} warm cards (never raised)"
    )
    print(f"{'run':<32}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-200':>9}{'load':>6}")
    for name, (r, ld) in plain.items():
        other = sum(n for s, n in r.statuses.items() if s != 200)
        print(f"{name:<32}{r.requests:>9}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{other:>9}{ld:>6.1f}")
        if other:
            print(f"{'':<32}answers: {dict(sorted(r.statuses.items()))}")
    print(f"    streamed {streamed} events at {stream_per_s:.1f}/s during the run")
    before, during = plain["before any event"][0], streamed_result[0]
    print(
        f"    while streaming / before: p50 {during.p50_ms / before.p50_ms:.2f}x, "
        f"p99 {during.p99_ms / before.p99_ms:.2f}x"
    )
    with _engine(store) as conn:
        stored_events = conn.scalar(sa.text("SELECT count(*) FROM feed_event"))
        generation = conn.scalar(sa.text("SELECT generation FROM feed_state WHERE id = 1"))
    print(f"feed_event rows at the end: {stored_events:,}; feed generation {generation:,}")


@contextlib.contextmanager
def _engine(store: str) -> Iterator[sa.Connection]:
    """A connection of our own for a few counts (one, so a busy shared server is spared)."""
    engine = sa.create_engine(store, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def print_visible(
    args: argparse.Namespace,
    store: str,
    visible: list[Visible],
    unseen: list[Unseen],
    skipped: Counter[str],
) -> None:
    print(
        f"\n(b) arrival to visible, {len(visible) + len(unseen)} persons, warm in both workers "
        f"({args.warm} lookups each)"
    )
    if skipped:
        print(f"    skipped or repeated: {dict(skipped)}")
    for label, values in (
        ("POST alone", [v.post_ms for v in visible]),
        ("first lookup sees it", [v.first_ms for v in visible]),
        ("both workers see it", [v.both_ms for v in visible]),
    ):
        print(
            f"    {label:<22} p50 {quantile(values, 0.5):7.1f} ms"
            f"  p95 {quantile(values, 0.95):7.1f} ms"
            f"  p99 {quantile(values, 0.99):7.1f} ms  max {max(values):7.1f} ms"
        )
    extra = Counter(v.lookups for v in visible)
    print(f"    lookups after the POST until both saw it: {dict(sorted(extra.items()))}")
    if unseen:
        with _engine(store) as conn:
            # Is an unseen raise's number one a register holds, or one only the feed knows?
            held = {
                u.number: bool(
                    conn.scalar(
                        sa.text("SELECT count(*) FROM source_record WHERE ident = :n"),
                        {"n": u.number},
                    )
                )
                for u in unseen
            }
        print(
            f"    NOT SEEN within {GIVE_UP:g} s in some worker: {len(unseen)} of "
            f"{len(unseen) + len(visible)} raises"
        )
        for u in unseen:
            where = "a register holds it" if held[u.number] else "only the feed knows it"
            print(f"      {u.number} ({where}): seen per worker {u.saw}, last answers {u.last}")
    # An unseen raise counts as never seen.
    p99 = quantile([v.both_ms for v in visible] + [float("inf")] * len(unseen), 0.99)
    print(
        f"    target p99 < 1000 ms (both workers, unseen counted as never): "
        f"{'met' if p99 < 1000 else 'MISSED'} ({p99:.1f} ms)",
        flush=True,
    )


if __name__ == "__main__":
    main()
