"""The reliability suite's two scenarios (issue 12, item 9), shared by their short form in
tests/reliability/ and their full form in bench/reliability.py:

- **lookups during a publish**: a steady load of lookups over real HTTP while the next night
  is staged and published in a process of its own; every answer must be the person's card of
  the old night or of the new one, never a mix, and every lookup audited exactly once;
- **the database restarted under load**: a private PostgreSQL cluster (initdb, pg_ctl), never
  the shared server, stopped and started again while lookups run; lookups must answer 503
  while it is down, never a card without its audit event, and recover on their own.

What is measured lives here, what is asserted in the tests, what is printed in the bench, so
both forms check the same things. Nothing here imports from tests/ (not an installed package).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bench.api.client import lookup_request

PERSONKORT = str(Path(sys.executable).parent / "personkort")
PROBLEM_JSON = "application/problem+json"
# What differs between two answers of the same card in the same night: nothing else may.
PER_REQUEST = frozenset({"trace_id"})
CLAIMS = {"sub": "Z1", "employer": "stat", "office": "nav-oslo", "roles": ["veileder"]}
ANSWERED = frozenset({200, 403, 404})  # a lookup that was decided, so audited


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the load --------------------------------------------------------------------------------


@dataclass(slots=True)
class Answer:
    """One lookup as the client saw it. ``due`` is when the steady rate wanted it sent (its
    latency counts from then, so a stalled server shows: no coordinated omission)."""

    conn: int
    ident: str
    due: float
    sent: float
    done: float
    status: int
    content_type: str
    body: bytes

    @property
    def latency(self) -> float:
        return self.done - self.due

    @property
    def service(self) -> float:
        """From the request leaving the client to its answer, without queueing at the client."""
        return self.done - self.sent

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def trace_id(self) -> str | None:
        try:
            body = self.json()
        except ValueError:
            return None
        return body.get("trace_id") if isinstance(body, dict) else None


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, str, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, kind = 0, ""
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
        elif name.lower() == b"content-type":
            kind = value.strip().decode()
    return status, kind, await reader.readexactly(length)


class Load:
    """Lookups at a steady offered rate over ``connections`` keep-alive HTTP/1.1 connections
    (bench/api/client.py's prepared requests), from an event loop in a thread of its own, until
    ``stop()`` or ``max_seconds``. Answers are kept whole (the body is compared and its trace id
    looked up in the audit log); a failed connection counts as status 599 and is reopened."""

    def __init__(
        self,
        url: str,
        token: str,
        idents: Sequence[str],
        *,
        rate: float,
        connections: int = 4,
        max_seconds: float = 600.0,
    ) -> None:
        if not idents:
            raise ValueError("no identity numbers to look up")
        parsed = httpx.URL(url)
        self.host, self.port = parsed.host, parsed.port or 80
        self.requests = [(i, lookup_request(self.host, self.port, token, i)) for i in idents]
        self.rate, self.connections, self.max_seconds = rate, connections, max_seconds
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reliability-load", daemon=True)
        self.started = self.ended = 0.0
        self.failure: BaseException | None = None

    def __enter__(self) -> Load:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.started = time.monotonic()
        self._thread.start()

    def stop(self) -> list[Answer]:
        self._stop.set()
        self._thread.join(timeout=60)
        if self.failure is not None:
            raise RuntimeError("the load generator failed") from self.failure
        return self.answers

    def so_far(self) -> list[Answer]:
        return list(self.answers)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # re-raised by stop() in the caller's thread
            self.failure = exc
        self.ended = time.monotonic()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            return await asyncio.open_connection(self.host, self.port)
        except OSError:
            return None

    async def _main(self) -> None:
        pool: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        for n in range(self.connections):
            pool.put_nowait((n, await self._connect()))
        tasks: set[asyncio.Task[None]] = set()

        async def one(number: int, due: float) -> None:
            ident, request = self.requests[number % len(self.requests)]
            conn, pair = await pool.get()
            sent = time.monotonic()
            status, kind, body = 599, "", b""
            try:
                if pair is None:
                    raise OSError("not connected")
                status, kind, body = await _exchange(*pair, request)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                if pair is not None:
                    pair[1].close()
                pair = await self._connect()
            finally:
                pool.put_nowait((conn, pair))
            self.answers.append(
                Answer(conn, ident, due, sent, time.monotonic(), status, kind, body)
            )

        begin = time.monotonic()
        n = 0
        while not self._stop.is_set() and time.monotonic() - begin < self.max_seconds:
            due = begin + n / self.rate
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            task = asyncio.create_task(one(n, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        if tasks:
            await asyncio.wait(tasks, timeout=60)
        while not pool.empty():
            _, pair = pool.get_nowait()
            if pair is not None:
                pair[1].close()


class Probe:
    """``GET`` a path every ``every`` seconds in a thread of its own: (sent, status)."""

    def __init__(self, url: str, every: float = 0.25, timeout: float = 10.0) -> None:
        self.url, self.every, self.timeout = url, every, timeout
        self.seen: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reliability-probe", daemon=True)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    status = client.get(self.url).status_code
                except httpx.HTTPError:
                    status = 599
                self.seen.append((sent, status))
                self._stop.wait(self.every)


def lookup_once(client: httpx.Client, ident: str) -> tuple[int, Any]:
    """One lookup with ``client`` (base URL and token set): status and parsed body."""
    response = client.post("/api/v1/personkort", json={"ident": ident})
    return response.status_code, response.json()


def card_of(body: Any) -> dict[str, Any]:
    """The answer without what differs per request: what two lookups of one card must share."""
    return {k: v for k, v in body.items() if k not in PER_REQUEST}


# -- latency figures -------------------------------------------------------------------------

Window = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Figures:
    """The lookups that arrived (were due) in a phase, over the phase's ``seconds``:
    ``offered`` per second; ``answered`` per second, the answers that came back in the phase
    (below ``offered`` when the server falls behind); latency from when each was due."""

    lookups: int
    seconds: float
    offered: float
    answered: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[int, int]

    def line(self) -> str:
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (
            f"{self.seconds:>6.1f} s {self.lookups:>6} lookups, offered {self.offered:>6.1f}/s "
            f"answered {self.answered:>6.1f}/s, p50 {self.p50_ms:>7.1f} ms p99 "
            f"{self.p99_ms:>7.1f} ms max {self.max_ms:>7.1f} ms [{statuses}]"
        )


def _within(t: float, windows: Sequence[Window]) -> bool:
    return any(lo <= t <= hi for lo, hi in windows)


def figures(answers: Sequence[Answer], windows: Sequence[Window]) -> Figures:
    """The figures of the lookups due inside ``windows``."""
    seconds = sum(hi - lo for lo, hi in windows)
    mine = [a for a in answers if _within(a.due, windows)]
    answered = sum(1 for a in answers if _within(a.done, windows))
    latencies = sorted(a.latency * 1000 for a in mine) or [0.0]
    per = (lambda n: n / seconds) if seconds > 0 else (lambda n: 0.0)
    return Figures(
        lookups=len(mine),
        seconds=seconds,
        offered=per(len(mine)),
        answered=per(answered),
        p50_ms=statistics.median(latencies),
        p99_ms=latencies[max(0, -(-len(latencies) * 99 // 100) - 1)],
        max_ms=latencies[-1],
        statuses=dict(Counter(a.status for a in mine)),
    )


def gaps(span: Window, windows: Sequence[Window]) -> list[Window]:
    """The parts of ``span`` outside ``windows`` (sorted, not overlapping)."""
    out, at = [], span[0]
    for lo, hi in sorted(windows):
        if lo > at:
            out.append((at, lo))
        at = max(at, hi)
    if span[1] > at:
        out.append((at, span[1]))
    return out


# -- the audit log ---------------------------------------------------------------------------


def lookup_events(engine: sa.Engine) -> Counter[str | None]:
    """How many ``lookup`` events the audit log holds for each trace id."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT trace_id, count(*) FROM audit_event WHERE kind = 'lookup' GROUP BY trace_id"
            )
        ).all()
    return Counter({trace: int(n) for trace, n in rows})


@dataclass(frozen=True, slots=True)
class AuditTally:
    """How the answers a client got line up with the audit log's lookup events."""

    answered: int  # 200, 403 and 404: decided, so audited
    ok: int  # 200: a card left the server
    events_for_ok: int
    lost: int  # a 200 with no event: a card without its audit event
    doubled: int  # an answered lookup with more than one event
    unanswered_with_event: int  # a 503 whose event was stored (the answer failed after it)
    events: int  # every lookup event in the log
    events_unaccounted: int  # events whose trace id no answer named

    def line(self) -> str:
        return (
            f"200s {self.ok}, audit events for them {self.events_for_ok}, lost {self.lost}, "
            f"doubled {self.doubled}; answered (200/403/404) {self.answered}; lookup events "
            f"{self.events} ({self.unanswered_with_event} for 503s whose event was stored, "
            f"{self.events_unaccounted} unaccounted)"
        )


def tally(engine: sa.Engine, answers: Iterable[tuple[int, str | None]]) -> AuditTally:
    """``answers``: (status, trace id) of every lookup this run made, load and checks alike."""
    events = lookup_events(engine)
    answered = ok = events_for_ok = lost = doubled = failed_with_event = 0
    named: set[str] = set()
    for status, trace in answers:
        n = events.get(trace, 0) if trace else 0
        if trace:
            named.add(trace)
        if status in ANSWERED:
            answered += 1
            doubled += n > 1
        if status == 200:
            ok += 1
            events_for_ok += n
            lost += n == 0
        elif status >= 500 and n:
            failed_with_event += 1
    unaccounted = sum(n for trace, n in events.items() if trace not in named)
    return AuditTally(
        answered,
        ok,
        events_for_ok,
        lost,
        doubled,
        failed_with_event,
        sum(events.values()),
        unaccounted,
    )


def verify_audit(engine: sa.Engine, data_dir: str) -> tuple[bool, int, str | None]:
    """``personkort audit verify``: the whole chain and every checkpoint, with the keys."""
    from personkort.audit import audit_keys, verify

    result = verify(engine, audit_keys(data_dir))
    return result.ok, result.events, result.problem


# -- scenario (a): lookups during a publish --------------------------------------------------


@dataclass(slots=True)
class PublishRun:
    answers: list[Answer]
    old: dict[str, dict[str, Any]]
    new: dict[str, dict[str, Any]]
    checks: list[tuple[int, str | None]]  # the before/after lookups (audited too)
    night_began: float
    night_ended: float
    night_returncode: int
    night_stderr: str
    load_began: float
    load_ended: float
    kinds: Counter[str] = field(default_factory=Counter)  # old / new / mixed / other
    mixed: list[Answer] = field(default_factory=list)
    old_after_new: list[Answer] = field(default_factory=list)
    content_changed: int = 0  # persons whose card differs in more than its night number

    def trace_ids(self) -> list[tuple[int, str | None]]:
        return self.checks + [(a.status, a.trace_id) for a in self.answers]


def cards_now(
    client: httpx.Client, idents: Iterable[str]
) -> tuple[dict[str, dict[str, Any]], list[tuple[int, str | None]]]:
    """Each person's card as served now (200 only), and every lookup's status and trace id."""
    cards: dict[str, dict[str, Any]] = {}
    made: list[tuple[int, str | None]] = []
    for ident in idents:
        status, body = lookup_once(client, ident)
        made.append((status, body.get("trace_id") if isinstance(body, dict) else None))
        if status == 200:
            cards[ident] = card_of(body)
    return cards, made


def publish_under_lookups(
    url: str,
    token: str,
    idents: Sequence[str],
    night: Sequence[str],
    env: dict[str, str],
    *,
    rate: float,
    connections: int = 4,
    lead: float = 0.5,
    tail: float = 0.5,
) -> PublishRun:
    """Read every person's card (the old night), then run lookups at ``rate`` while ``night``
    (a ``personkort night`` command line) stages and publishes the next night in a process of
    its own, ``lead`` seconds before it starts to ``tail`` seconds after it ends; then read
    every card again (the new night) and sort each answer: old, new, or a mix."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        old, checks = cards_now(client, idents)
        asked = [i for i in idents if i in old]
        with Load(url, token, asked, rate=rate, connections=connections) as load:
            time.sleep(lead)
            began = time.monotonic()
            proc = subprocess.run(list(night), env=env, capture_output=True, text=True)
            ended = time.monotonic()
            time.sleep(tail)
        new, after = cards_now(client, asked)
    run = PublishRun(
        load.answers,
        old,
        new,
        checks + after,
        began,
        ended,
        proc.returncode,
        proc.stderr,
        load.started,
        load.ended,
    )
    run.content_changed = sum(
        1
        for i in asked
        if i in new and {**old[i], "night": 0} != {**new[i], "night": 0}  # beyond the number
    )
    first_new = min(
        (a.done for a in run.answers if a.status == 200 and _kind(a, old, new) == "new"),
        default=float("inf"),
    )
    for a in run.answers:
        kind = _kind(a, old, new)
        run.kinds[kind] += 1
        if kind == "mixed":
            run.mixed.append(a)
        if kind == "old" and a.sent > first_new:
            run.old_after_new.append(a)  # the pointer seen moving backwards
    return run


def _kind(a: Answer, old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> str:
    """old, new, unchanged (both nights' cards are equal), mixed (neither), or the status."""
    if a.status != 200:
        # A person the new night no longer shows this caseworker: a refusal is the new answer.
        return "new" if a.ident not in new and a.status in ANSWERED else f"status {a.status}"
    card = card_of(a.json())
    if card == old.get(a.ident) and card == new.get(a.ident):
        return "unchanged"
    if card == old.get(a.ident):
        return "old"
    if card == new.get(a.ident):
        return "new"
    return "mixed"


# -- scenario (b): the database restarted under load -----------------------------------------


class ClusterUnavailable(RuntimeError):
    """A private PostgreSQL cluster cannot be made here (no initdb, no ``postgres`` user)."""


def pg_bindir() -> Path:
    """Where PostgreSQL's server programs are: Debian's newest, else initdb on the PATH."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise ClusterUnavailable("no initdb: PostgreSQL's server programs are not installed")


class PrivateCluster:
    """A PostgreSQL cluster of the caller's own on a free loopback port, made with initdb,
    started, stopped and restarted with pg_ctl: a real restart, never the shared server's.
    As root the programs run as the ``postgres`` user (initdb refuses root)."""

    def __init__(self) -> None:
        self.bindir = pg_bindir()
        self.runas: list[str] = []
        owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise ClusterUnavailable("running as root and no postgres user") from None
            self.runas = ["runuser", "-u", "postgres", "--"]
        # Not under pytest's tmp_path: its folders are private to root.
        self.root = Path(tempfile.mkdtemp(prefix="pkpg-", dir="/tmp"))
        self.data, self.sockets, self.log = self.root / "data", self.root / "s", self.root / "log"
        self.sockets.mkdir()
        if owner is not None:
            for path in (self.root, self.sockets):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self.port = free_port()
        self.stops: list[str] = []  # the stop mode of each stop
        try:
            self._pg(
                "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync",
                "-E", "UTF8",
            )  # fmt: skip
            self.start()
        except BaseException:
            self.close()
            raise

    def _pg(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [*self.runas, str(self.bindir / program), *args], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise ClusterUnavailable(
                f"{program} failed ({done.returncode}): {(done.stderr or done.stdout)[-500:]}"
            )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1"
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: a clean shutdown (open sessions ended); ``immediate``: as a crash, with
        recovery from the WAL at the next start."""
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        self.stops.append(mode)

    def close(self) -> None:
        with contextlib.suppress(ClusterUnavailable):
            if (self.data / "postmaster.pid").exists():
                self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass(slots=True)
class Outage:
    mode: str
    stop_began: float
    stopped: float  # pg_ctl stop returned: the server is gone
    start_began: float  # the server is about to start
    started: float  # pg_ctl start returned: the server accepts connections
    recovered: float | None = None  # the first 200 sent after ``started`` came back

    @property
    def window(self) -> Window:
        """From the stop's start to the first good answer after it (the fault window)."""
        return self.stop_began, self.recovered or self.started

    @property
    def down(self) -> Window:
        """When the server surely was not there."""
        return self.stopped, self.start_began


@dataclass(slots=True)
class RestartRun:
    answers: list[Answer]
    outages: list[Outage]
    ready: list[tuple[float, int]]
    began: float
    ended: float
    checks: list[tuple[int, str | None]]  # the warm-up lookups (audited too)

    def trace_ids(self) -> list[tuple[int, str | None]]:
        return self.checks + [(a.status, a.trace_id) for a in self.answers]

    def down(self) -> list[Answer]:
        """Lookups sent and answered while the server was surely not there."""
        return [
            a
            for a in self.answers
            for o in self.outages
            if o.down[0] <= a.sent and a.done <= o.down[1]
        ]

    def windows(self) -> list[Window]:
        return [o.window for o in self.outages]


def restart_under_lookups(
    url: str,
    token: str,
    idents: Sequence[str],
    cluster: PrivateCluster,
    *,
    rate: float,
    connections: int = 4,
    restarts: int = 1,
    down_seconds: float = 2.0,
    warmup: float = 1.5,
    between: float = 2.0,
    recover_within: float = 15.0,
    modes: Sequence[str] = ("fast",),
    on_restart: Callable[[Outage], None] | None = None,
) -> RestartRun:
    """Lookups at ``rate`` while the cluster is stopped (``modes`` in turn), left down for
    ``down_seconds`` and started again, ``restarts`` times; readiness probed all along. Each
    outage ends at the first 200 of a lookup sent after the start (at most
    ``recover_within`` seconds later). Each person is looked up once first, so the load
    starts on a warm card cache, as a server that has run for a while."""
    outages: list[Outage] = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        _, checks = cards_now(client, idents)
    with (
        Probe(f"{url}/api/v1/ready") as probe,
        Load(url, token, idents, rate=rate, connections=connections) as load,
    ):
        time.sleep(warmup)
        for n in range(restarts):
            mode = modes[n % len(modes)]
            stop_began = time.monotonic()
            cluster.stop(mode)
            stopped = time.monotonic()
            time.sleep(down_seconds)
            start_began = time.monotonic()
            cluster.start()
            outage = Outage(mode, stop_began, stopped, start_began, time.monotonic())
            deadline = outage.started + recover_within
            while outage.recovered is None and time.monotonic() < deadline:
                good = [
                    a.done for a in load.so_far() if a.status == 200 and a.sent > outage.started
                ]
                if good:
                    outage.recovered = min(good)
                else:
                    time.sleep(0.05)
            outages.append(outage)
            if on_restart is not None:
                on_restart(outage)
            time.sleep(between)
    return RestartRun(load.answers, outages, probe.seen, load.started, load.ended, checks)
