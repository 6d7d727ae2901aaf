"""The audit log: append-only, hash-chained under a key, with signed Merkle checkpoints.

Every event's ``hash`` is HMAC-SHA256, under a key derived from the audit secret, over the
previous event's hash and the event's canonical serialisation (JSON, sorted keys, no spaces,
UTF-8), so changing, deleting or reordering any stored event breaks the chain at that event,
and someone who can write to the database but does not hold the audit key cannot recompute it.
Every ``checkpoint_every`` events, every ``checkpoint_interval`` seconds with at least one new
event, and at ``close()``, an Ed25519 signature is made over the RFC 6962 Merkle root of all
events so far and the chain head, so one event's inclusion can be proven without the rest.

An event is committed before ``append`` returns; anything that prevents that raises
``AuditUnavailable`` (``AuditRefused`` for an event that can never be stored), and the caller
must then fail closed. One bad event never fails the others: it is refused at the edge, and a
batch whose insert fails anyway is retried one event at a time. Identity numbers are never
stored in clear: keyed hashes make them findable (every number on a card, in an index table), a
sealed copy makes the typed one readable with the audit key, and every number in free text is
replaced by its hash (``personkort.audit.scrub``).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import queue
import re
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from personkort.audit import merkle, scrub
from personkort.audit.keys import AuditKeys, audit_keys
from personkort.audit.models import AuditCheckpointRow as C
from personkort.audit.models import AuditEventIdentRow as I
from personkort.audit.models import AuditEventRow as E

log = logging.getLogger("personkort.audit")
GENESIS = "0" * 64
LOCK_KEY = 0x706B617564  # "pkaud": the audit writers' advisory lock on PostgreSQL
_EVENT_COLUMNS = (
    "seq", "kind", "at", "body", "prev_hash", "hash", "leaf", "trace_id", "caseworker",
    "card_id", "ident_hmac", "decision", "privileged",
)  # fmt: skip
# The writer thread's statements on PostgreSQL (_insert_pipelined), in psycopg's own syntax.
_PG_LOCK_AND_HEAD = (
    f"BEGIN; SELECT pg_advisory_xact_lock({LOCK_KEY}); "
    f"SELECT seq, hash FROM {E.__tablename__} ORDER BY seq DESC LIMIT 1"
)
_PG_INSERT_EVENT = (
    f"INSERT INTO {E.__tablename__} ({', '.join(_EVENT_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(_EVENT_COLUMNS))})"
)
_PG_INSERT_INDEX = f"INSERT INTO {I.__tablename__} (seq, ident_hmac) VALUES (%s, %s)"
OPAQUE = scrub.OPAQUE

# The event kinds the log accepts: a misspelt kind would hide events from auditors' searches.
KINDS = frozenset(
    {
        "lookup",
        "consent_registered",
        "consent_withdrawn",
        "consent_search",
        "consent_refused",
        "policy_activated",
        "steward_decision",
        "audit_search",
        "rate_limited",
        "source_accepted",
        "session_ended",
        "feed_events",
    }
)
# Column widths (personkort/audit/models.py): what does not fit is refused, never truncated.
MAX_KIND, MAX_SUB, MAX_CARD_ID, MAX_TRACE_ID, MAX_DECISION = 32, 40, 24, 40, 16
MAX_IDENT = 64  # a typed number before normalising
MAX_IDENTS = 200  # numbers on one card
MAX_DATA = 256 * 1024  # bytes of one event's serialised data
RESERVED = frozenset({"ident_hmac", "ident_hmacs", "ident_sealed"})  # set by the log itself
_KIND = re.compile(r"[a-z][a-z0-9_]*")
_TOKEN = re.compile(r"[A-Za-z0-9._:/+=-]+")  # card ids, trace ids
_DECISION = re.compile(r"[a-z_]+")


class AuditUnavailable(RuntimeError):
    """The audit log cannot be written: nothing that needs an audit event may proceed."""


class AuditRefused(AuditUnavailable):
    """This one event can never be stored (a field too long, of the wrong type, not JSON): it
    is refused before it reaches the store, so it cannot fail anyone else's event."""


def canonical(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def chain_key(secret: bytes) -> bytes:
    """The chain's HMAC key, derived from the audit secret (a key of its own, not the one that
    hashes identity numbers)."""
    return HKDF(hashes.SHA256(), 32, salt=None, info=b"personkort audit chain").derive(secret)


def chain_hash(key: bytes, prev: str, body: bytes) -> str:
    return hmac.digest(key, bytes.fromhex(prev) + body, "sha256").hex()


def _unkeyed_hash(prev: str, body: bytes) -> str:
    """The chain before migration 0006: only to say why an old event fails."""
    return hashlib.sha256(bytes.fromhex(prev) + body).hexdigest()


def caseworker_column(sub: str | None) -> str | None:
    """The indexed ``caseworker`` column for a (scrubbed) sub: the sub itself, or, when
    scrubbing made it longer than the column (an 11-digit sub becomes ``ident:<HMAC>``), a
    fixed-width digest of the scrubbed form, so the column always fits and never holds a
    number in clear. ``events(caseworker=...)`` maps its argument the same way."""
    if sub is None or len(sub) <= MAX_SUB:
        return sub
    return "sha256:" + hashlib.sha256(sub.encode()).hexdigest()[: MAX_SUB - 7]


def now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    kind: str
    at: str
    hash: str
    trace_id: str | None


@dataclass(slots=True)
class _Pending:
    """An event validated and serialised at the edge, waiting for a commit, then its outcome."""

    kind: str
    data_json: str  # canonical JSON of the scrubbed data
    caseworker: str | None
    card_id: str | None
    decision: str | None
    privileged: bool
    ident_hmac: str | None
    ident_hmacs: list[str]
    trace_id: str | None
    stored: StoredEvent | None = None
    error: Exception | None = None
    done: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    events: int
    checkpoints: int
    first_bad_seq: int | None = None
    problem: str | None = None
    keyed: bool = True  # whether the keyed chain was checked (False: public key only)


def _refuse(reason: str) -> AuditRefused:
    return AuditRefused(f"audit event refused: {reason}")


def _token(value: Any, limit: int, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= limit or not _TOKEN.fullmatch(value):
        raise _refuse(f"{what} is not an id of 1-{limit} plain characters")
    return value


SQLITE_LOCK_WAIT = 5.0  # seconds, as long as pysqlite's own busy timeout
SQLITE_LOCK_POLL = 0.001  # seconds between tries for SQLite's write lock


def begin_immediate(conn: sa.Connection, wait: float = SQLITE_LOCK_WAIT) -> None:
    """Open a SQLite transaction that holds the write lock, trying every millisecond.

    SQLite's own busy wait backs off to sleeps of 100 ms, and a night that commits every
    0.1 s and writes again a few milliseconds later leaves gaps such a sleeper keeps
    missing: a lookup's audit event waited 1.4 s beside a 60,000-person night whose longest
    hold was 0.3 s. Trying every millisecond finds the gap the night leaves
    (``nights.SQLITE_GAP``). After ``wait`` the last "database is locked" is raised."""
    raw = conn.connection.dbapi_connection
    deadline = time.monotonic() + wait
    raw.execute("PRAGMA busy_timeout = 0")  # type: ignore[union-attr]
    try:
        while True:
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except sa.exc.OperationalError as exc:
                if "locked" not in str(exc.orig).lower() or time.monotonic() >= deadline:
                    raise
            time.sleep(SQLITE_LOCK_POLL)
    finally:
        raw.execute(f"PRAGMA busy_timeout = {int(SQLITE_LOCK_WAIT * 1000)}")  # type: ignore[union-attr]


@contextlib.contextmanager
def begin_write(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction that holds the store's write lock from its start (SQLite ``BEGIN
    IMMEDIATE``; on PostgreSQL a plain transaction): for a change and its ``append_in`` event,
    so nothing can take the next sequence number between them."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            begin_immediate(conn)
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


@contextlib.contextmanager
def _snapshot(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One read transaction, so events and checkpoints are read as of one moment."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn
            return
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")  # pysqlite would run each SELECT on its own
        try:
            yield conn
        finally:
            conn.rollback()


def _writer_loop(ref: weakref.ref[AuditLog], q: queue.SimpleQueue[_Pending | None]) -> None:
    """The writer thread: take what is queued, commit it, wake its callers. It holds its log
    only while committing, so a log nobody uses any more is collected and the thread ends."""
    while True:
        try:
            first = q.get(timeout=1.0)
        except queue.Empty:
            if ref() is None:
                return
            continue
        batch: list[_Pending] = []
        stop = first is None
        if first is not None:
            batch.append(first)
        while not stop and len(batch) < 500:
            try:
                item = q.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop = True
            else:
                batch.append(item)
        owner = ref()
        if batch:
            if owner is None:
                for p in batch:
                    p.error = AuditUnavailable("the audit log is gone")
            else:
                try:
                    owner._commit_batch(batch)
                except Exception as exc:  # never leave a caller waiting on a dead writer
                    for p in batch:
                        p.error = p.error or exc
            for p in batch:
                p.done.set()
        del owner
        if stop:
            return


def _timer_loop(ref: weakref.ref[AuditLog], stop: threading.Event, interval: float) -> None:
    """Sign a checkpoint every ``interval`` seconds when events were written since the last."""
    while not stop.wait(interval):
        owner = ref()
        if owner is None:
            return
        owner._timed_checkpoint()
        del owner


class AuditLog:
    def __init__(
        self,
        engine: sa.Engine,
        keys: AuditKeys,
        checkpoint_every: int = 1000,
        checkpoint_interval: float = 60.0,
    ) -> None:
        self.engine = engine
        self.keys = keys
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval = checkpoint_interval
        self.timeout = 10.0  # seconds a caller waits for its commit before failing closed
        self._chain_key = chain_key(keys.secret)
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._timer: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False
        self._writer_lock = threading.Lock()
        self._checkpoint_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._failures = 0  # events failed since the last success: for the recovery message
        self._dirty = False  # events written since the last timed checkpoint
        self._checkpoints: list[threading.Thread] = []
        self._frontier = merkle.Frontier()
        self._head = GENESIS

    @property
    def closed(self) -> bool:
        return self._closed

    def last_seq(self) -> int | None:
        """The newest stored event's number (readiness: the log's table can be read)."""
        with self.engine.connect() as conn:
            return conn.scalar(sa.select(sa.func.max(E.seq)))

    @classmethod
    def from_settings(cls, engine: sa.Engine, data_dir: str | None = None) -> AuditLog:
        return cls(engine, audit_keys(data_dir))

    # -- the edge: validate, scrub, serialise ----------------------------------------------

    def ident_hmac(self, ident: str) -> str:
        """The keyed hash the index holds for one number, whatever shape it was typed in."""
        return self.keys.ident_hmac(scrub.canonical_ident(ident))

    def _prepare(
        self,
        kind: str,
        data: dict[str, Any],
        ident: str | None,
        idents: Iterable[str],
        trace_id: str | None,
    ) -> _Pending:
        """Everything that can be known about an event before it is stored, checked here so a
        bad event is refused alone (never joins a batch). Logged without its content."""
        if self._closed:
            raise AuditUnavailable("the audit log is closed")
        try:
            return self._build(kind, data, ident, idents, trace_id)
        except AuditRefused as exc:
            log.error("%s (kind %s)", exc, kind if kind in KINDS else "unknown")
            raise

    def _build(
        self,
        kind: str,
        data: dict[str, Any],
        ident: str | None,
        idents: Iterable[str],
        trace_id: str | None,
    ) -> _Pending:
        if not isinstance(kind, str) or len(kind) > MAX_KIND or not _KIND.fullmatch(kind):
            raise _refuse("the kind is not a short lower-case name")
        if kind not in KINDS:
            raise _refuse("unknown event kind")
        if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
            raise _refuse("the event is not an object with text keys")
        if RESERVED & data.keys():
            raise _refuse("the event sets a field only the log may set")
        worker = data.get("caseworker")
        if worker is not None and not isinstance(worker, dict):
            raise _refuse("caseworker is not an object")
        sub = (worker or {}).get("sub")
        if sub is not None and (
            not isinstance(sub, str) or not 0 < len(sub) <= MAX_SUB or not sub.isprintable()
        ):
            raise _refuse(f"the caseworker's sub is not text of 1-{MAX_SUB} characters")
        trace_id = _token(trace_id, MAX_TRACE_ID, "trace id")
        in_data = _token(data.get("trace_id"), MAX_TRACE_ID, "trace id")
        if trace_id is not None and in_data not in (None, trace_id):
            raise _refuse("two trace ids for one event")
        trace_id = trace_id or in_data
        if trace_id is not None:
            data = {**data, "trace_id": trace_id}  # in the body, so its column is checked too
        card_id = _token(data.get("card_id"), MAX_CARD_ID, "card id")
        decision = data.get("decision")
        if decision is not None and (
            not isinstance(decision, str)
            or len(decision) > MAX_DECISION
            or not _DECISION.fullmatch(decision)
        ):
            raise _refuse("the decision is not a short name")
        if isinstance(idents, str):
            raise _refuse("idents is one text, not a collection of numbers")
        numbers = [ident] if ident is not None else []
        numbers += list(idents)
        if len(numbers) > MAX_IDENTS or not all(
            isinstance(n, str) and 0 < len(n) <= MAX_IDENT for n in numbers
        ):
            raise _refuse("an identity number is not short text")
        found: set[str] = set()
        try:
            clean = scrub.scrub(data, self.keys.ident_hmac, found)
        except RecursionError:
            raise _refuse("the event is nested too deeply") from None
        typed = None
        if ident is not None:
            typed = self.ident_hmac(ident)
            found.add(typed)
            clean["ident_hmac"] = typed
            clean["ident_sealed"] = self.keys.seal(ident)
        found.update(self.ident_hmac(n) for n in set(numbers[1:] if typed else numbers))
        if found:
            clean["ident_hmacs"] = sorted(found)
        try:
            data_bytes = canonical(clean)
        except (TypeError, ValueError, RecursionError, UnicodeError):
            raise _refuse("the event is not JSON-serialisable text") from None
        if len(data_bytes) > MAX_DATA:
            raise _refuse(f"the event is over {MAX_DATA} bytes")
        clean_sub = (clean.get("caseworker") or {}).get("sub")
        return _Pending(
            kind=kind,
            data_json=data_bytes.decode(),
            caseworker=caseworker_column(clean_sub),
            card_id=card_id,
            decision=decision,
            privileged=bool(clean.get("privileged_use")),
            ident_hmac=typed,
            ident_hmacs=sorted(found),
            trace_id=trace_id,
        )

    # -- writing ---------------------------------------------------------------------------

    def append(
        self,
        kind: str,
        data: dict[str, Any],
        *,
        ident: str | None = None,
        idents: Iterable[str] = (),
        trace_id: str | None = None,
    ) -> StoredEvent:
        """Store one event durably, chained to the one before; raise AuditUnavailable if not
        (AuditRefused, before anything is queued, for an event that can never be stored).
        ``ident`` is the number typed; ``idents`` every number on the card: each is recorded
        as a keyed hash, so a search by any of them finds the event.

        Concurrent callers share commits (group commit): each queues its event and waits; one
        writer thread commits everything queued in one transaction, so a burst of lookups
        costs one disk flush, not one each. No caller returns before its own event is
        committed; one that waits longer than ``timeout`` gets AuditUnavailable."""
        mine = self._prepare(kind, data, ident, idents, trace_id)
        self._running()
        self._queue.put(mine)
        if not mine.done.wait(self.timeout):
            self._failed(1, TimeoutError(), f"not committed within {self.timeout:g} s")
            raise AuditUnavailable("the audit log cannot be written")
        if mine.stored is None:
            raise AuditUnavailable("the audit log cannot be written") from None
        if mine.stored.seq % self.checkpoint_every == 0:
            self._checkpoint_later(mine.stored.seq)
        return mine.stored

    def append_in(
        self,
        conn: sa.Connection,
        kind: str,
        data: dict[str, Any],
        *,
        ident: str | None = None,
        idents: Iterable[str] = (),
        trace_id: str | None = None,
    ) -> StoredEvent:
        """Write one event inside the caller's open transaction: the caller's commit stores its
        change and the event together, and its rollback (any exception from here included)
        neither. Serialised against the group-commit writer and other processes: on
        PostgreSQL by the writers' advisory lock, held until the caller's commit (keep the
        transaction short, READ COMMITTED); on SQLite by the write lock, which the caller's
        transaction must hold already (it wrote first) or is taken here when no transaction
        has begun yet (``begin_write`` takes it at the start). Never call ``append`` while
        such a transaction is open: the writer would wait for its lock until the timeout."""
        mine = self._prepare(kind, data, ident, idents, trace_id)
        self._running()
        try:
            if conn.dialect.name == "sqlite":
                raw = conn.connection.dbapi_connection
                if not getattr(raw, "in_transaction", True):
                    begin_immediate(conn)
            stored = self._insert(conn, [mine])[0]
        except Exception as exc:
            self._failed(1, exc, "in the caller's transaction")
            raise AuditUnavailable("the audit log cannot be written") from None
        self._succeeded(1)
        return stored

    def _running(self) -> None:
        """Start the writer and the checkpoint timer on first use (and after a crash)."""
        with self._writer_lock:
            if self._closed:
                raise AuditUnavailable("the audit log is closed")
            me = weakref.ref(self)
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(
                    target=_writer_loop, args=(me, self._queue), name="audit", daemon=True
                )
                self._writer.start()
            if self.checkpoint_interval > 0 and (self._timer is None or not self._timer.is_alive()):
                self._timer = threading.Thread(
                    target=_timer_loop,
                    args=(me, self._stop, self.checkpoint_interval),
                    name="audit-timer",
                    daemon=True,
                )
                self._timer.start()

    def _commit_batch(self, batch: list[_Pending]) -> None:
        """Commit a batch; if that fails for a reason that may be one event's, write its events
        one at a time, so only the failing event's caller gets AuditUnavailable."""
        error = self._commit(batch)
        if error is None:
            self._succeeded(len(batch))
            return
        if len(batch) == 1 or _is_outage(error):
            for p in batch:
                p.error = error
            self._failed(len(batch), error, "")
            return
        failed = 0
        first: Exception | None = None
        for p in batch:
            one = self._commit([p])
            if one is not None:
                p.error = one
                failed += 1
                first = first or one
        if failed:
            self._failed(failed, first or error, f"of a batch of {len(batch)}, written one by one")
        if failed < len(batch):
            self._succeeded(len(batch) - failed)

    def _commit(self, batch: list[_Pending]) -> Exception | None:
        """Commit a batch (its events' ``stored`` set), retrying while another process holds
        the next sequence numbers; the error if it cannot."""
        for attempt in range(50):
            try:
                if self.engine.dialect.name == "postgresql" and self.engine.driver == "psycopg":
                    stored = self._insert_pipelined(batch)
                else:
                    with begin_write(self.engine) as conn:
                        stored = self._insert(conn, batch)
            except (sa.exc.IntegrityError, sa.exc.OperationalError) as exc:
                if _is_conflict(exc) and attempt < 49:
                    time.sleep(0.001 * (attempt + 1))
                    continue
                return exc
            except Exception as exc:
                return exc
            for pending, event in zip(batch, stored, strict=True):
                pending.stored = event
            return None
        return AuditUnavailable("no attempt left")  # pragma: no cover - the loop returns

    def _insert(self, conn: sa.Connection, batch: list[_Pending]) -> list[StoredEvent]:
        """The events and their ident index rows, chained on the head, on ``conn``."""
        if conn.dialect.name == "postgresql":
            # Writers in other processes (and append_in callers) queue here instead of
            # colliding on the sequence number and retrying.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        head = conn.execute(sa.select(E.seq, E.hash).order_by(E.seq.desc()).limit(1)).first()
        rows, index, stored = self._rows(batch, *((head.seq, head.hash) if head else (0, GENESIS)))
        conn.execute(sa.insert(E), rows)
        if index:
            conn.execute(sa.insert(I), index)
        return stored

    def _insert_pipelined(self, batch: list[_Pending]) -> list[StoredEvent]:
        """The writer thread's commit on PostgreSQL in two round trips instead of six (BEGIN,
        lock, head, insert, index insert, COMMIT, each a wait for the server and for the GIL
        again): the BEGIN, the lock and the head go as one simple query, then the inserts and
        the COMMIT as one pipeline. The same lock as ``_insert``, so both still queue on it."""
        import psycopg  # the PostgreSQL driver; SQLite stores never get here

        fairy = self.engine.raw_connection()
        pg = fairy.driver_connection
        try:
            pg.autocommit = True  # the transaction is opened by the BEGIN below
            with pg.cursor() as cur:
                cur.execute(_PG_LOCK_AND_HEAD)  # no parameters: one simple-protocol message
                cur.nextset()
                cur.nextset()
                head = cur.fetchone()
                rows, index, stored = self._rows(batch, *(head or (0, GENESIS)))
                with pg.pipeline():
                    cur.executemany(
                        _PG_INSERT_EVENT, [[r[c] for c in _EVENT_COLUMNS] for r in rows]
                    )
                    if index:
                        cur.executemany(
                            _PG_INSERT_INDEX, [[i["seq"], i["ident_hmac"]] for i in index]
                        )
                    cur.execute("COMMIT")
            return stored
        except psycopg.Error as exc:
            with contextlib.suppress(psycopg.Error):
                pg.execute("ROLLBACK")
            if isinstance(exc, psycopg.IntegrityError):
                raise sa.exc.IntegrityError("audit append", None, exc) from exc
            if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
                fairy.invalidate()
                raise sa.exc.OperationalError("audit append", None, exc) from exc
            raise sa.exc.DatabaseError("audit append", None, exc) from exc
        finally:
            with contextlib.suppress(psycopg.Error):
                pg.autocommit = False
            fairy.close()

    def _rows(
        self, batch: list[_Pending], seq: int, prev: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[StoredEvent]]:
        """The batch's event rows and ident index rows, chained on the head (seq, hash)."""
        rows: list[dict[str, Any]] = []
        index: list[dict[str, Any]] = []
        stored: list[StoredEvent] = []
        for p in batch:
            seq += 1
            at = now_text()
            # canonical({"at", "data", "kind", "prev", "seq"}), with the data serialised once
            # at the edge (kind and at are plain ASCII).
            text = (
                f'{{"at":"{at}","data":{p.data_json},"kind":"{p.kind}",'
                f'"prev":"{prev}","seq":{seq}}}'
            )
            body = text.encode()
            digest = chain_hash(self._chain_key, prev, body)
            rows.append(
                {
                    "seq": seq,
                    "kind": p.kind,
                    "at": at,
                    "body": text,
                    "prev_hash": prev,
                    "hash": digest,
                    "leaf": merkle.leaf_hash(body).hex(),
                    "trace_id": p.trace_id,
                    "caseworker": p.caseworker,
                    "card_id": p.card_id,
                    "ident_hmac": p.ident_hmac,
                    "decision": p.decision,
                    "privileged": p.privileged,
                }
            )
            index.extend({"seq": seq, "ident_hmac": h} for h in p.ident_hmacs)
            stored.append(StoredEvent(seq, p.kind, at, digest, p.trace_id))
            prev = digest
        return rows, index, stored

    def _failed(self, count: int, exc: BaseException, where: str) -> None:
        """Log a write failure: how many events and the error's type, never an event's content
        (a database error's text carries the statement's parameters)."""
        with self._state_lock:
            self._failures += count
        log.error(
            "audit log write failed: %d event(s) not stored (%s)%s; their requests fail closed",
            count,
            type(exc).__name__,
            f", {where}" if where else "",
        )

    def _succeeded(self, count: int) -> None:
        with self._state_lock:
            failures, self._failures = self._failures, 0
            self._dirty = True
        if failures:
            log.warning("audit log writable again after %d failed event(s)", failures)

    # -- checkpoints -----------------------------------------------------------------------

    def _checkpoint_later(self, upto: int) -> None:
        """Sign a checkpoint of the first ``upto`` events off the caller's path: a lookup
        never waits for one."""

        def run() -> None:
            try:
                self.checkpoint(upto)
            except Exception as exc:
                log.error(
                    "audit checkpoint failed (%s); the next one covers it", type(exc).__name__
                )

        thread = threading.Thread(target=run, name="audit-checkpoint", daemon=True)
        # Keep only the running ones: a server signs one per 1,000 events for months.
        self._checkpoints = [t for t in self._checkpoints if t.is_alive()]
        self._checkpoints.append(thread)
        thread.start()

    def _timed_checkpoint(self) -> None:
        """The timer's tick: a checkpoint when anything was written since the last tick."""
        with self._state_lock:
            dirty, self._dirty = self._dirty, False
        if not dirty:
            return
        try:
            self.checkpoint()
        except Exception as exc:
            with self._state_lock:
                self._dirty = True
            log.error("audit checkpoint failed (%s); the next one covers it", type(exc).__name__)

    def wait_for_checkpoints(self) -> None:
        """Join checkpoints started by appends (tests, shutdown)."""
        while self._checkpoints:
            self._checkpoints.pop().join()

    def close(self, timeout: float = 10.0) -> None:
        """Shut down: refuse new events while closing, commit what is queued, stop the timer,
        and sign a last checkpoint over everything written, so the tail is covered too. A
        later ``append`` starts the log again (tests reuse one log across app lifespans)."""
        with self._writer_lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        writer = self._writer
        if writer is not None and writer.is_alive():
            self._queue.put(None)
            writer.join(timeout)
        if self._timer is not None:
            self._timer.join(timeout)
        self.wait_for_checkpoints()
        try:
            self.checkpoint()
        except Exception as exc:
            log.error("audit checkpoint at shutdown failed (%s)", type(exc).__name__)
        with self._writer_lock:
            self._writer = self._timer = None
            self._stop = threading.Event()
            self._closed = False

    def checkpoint(self, upto: int | None = None) -> dict[str, Any] | None:
        """Sign the Merkle root of every event so far (or of the first ``upto``), and the
        chain head. Another process signing the same tree size first is no failure."""
        try:
            return self._checkpoint(upto)
        except sa.exc.IntegrityError:
            return None  # that checkpoint exists: signed by another worker a moment ago

    def _checkpoint(self, upto: int | None = None) -> dict[str, Any] | None:
        """``checkpoint``'s work.

        The tree is kept as a frontier between checkpoints, so each one reads only the events
        added since; if the log no longer ends where the frontier left it, it starts over."""
        with self._checkpoint_lock, self.engine.begin() as conn:
            frontier = self._frontier
            if frontier.size and (
                conn.scalar(sa.select(E.hash).where(E.seq == frontier.size)) != self._head
            ):
                frontier = self._frontier = merkle.Frontier()
            if upto is not None and frontier.size > upto:
                return None  # a later checkpoint has been signed already
            query = sa.select(E.seq, E.leaf, E.hash).where(E.seq > frontier.size)
            if upto is not None:
                query = query.where(E.seq <= upto)
            rows = conn.execute(query.order_by(E.seq)).all()
            for r in rows:
                if r.seq != frontier.size + 1:
                    break  # a gap: sign only the unbroken prefix
                frontier.add(bytes.fromhex(r.leaf))
                self._head = r.hash
            size = frontier.size
            if not size or conn.scalar(sa.select(C.id).where(C.tree_size == size)):
                return None
            root = frontier.root().hex()
            statement = {
                "tree_size": size,
                "root": root,
                "head": self._head,
                "signed_at": now_text(),
                "key_id": self.keys.key_id,
            }
            signature = self.keys.signing.sign(canonical(statement))
            conn.execute(
                sa.insert(C).values(
                    tree_size=size,
                    root_hash=root,
                    head_hash=statement["head"],
                    signed_at=statement["signed_at"],
                    key_id=statement["key_id"],
                    signature=signature,
                )
            )
        return {**statement, "signature": base64.b64encode(signature).decode()}

    # -- reading ---------------------------------------------------------------------------

    def prove(self, seq: int) -> dict[str, Any]:
        """Everything needed to prove one event is in the log: the event, its audit path and
        the newest signed checkpoint that covers it."""
        with _snapshot(self.engine) as conn:
            cp = conn.execute(
                sa.select(C).where(C.tree_size >= seq).order_by(C.tree_size.desc()).limit(1)
            ).first()
            if cp is None:
                raise LookupError(f"no checkpoint covers event {seq} yet")
            rows = conn.execute(
                sa.select(E.leaf).where(E.seq <= cp.tree_size).order_by(E.seq)
            ).all()
            body = conn.scalar(sa.select(E.body).where(E.seq == seq))
        leaves = [bytes.fromhex(r.leaf) for r in rows]
        return {
            "seq": seq,
            "body": body,
            "path": [h.hex() for h in merkle.inclusion_path(seq - 1, leaves)],
            "checkpoint": _checkpoint_dict(cp),
        }

    def reveal(self, event_body: str) -> str | None:
        """The identity number of an event, in clear: needs the audit key."""
        sealed = json.loads(event_body)["data"].get("ident_sealed")
        return self.keys.unseal(sealed) if sealed else None

    def events(
        self,
        *,
        ident: str | None = None,
        card_id: str | None = None,
        caseworker: str | None = None,
        kind: str | None = None,
        decision: str | None = None,
        privileged: bool | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Events by filter. ``ident`` finds every event that names the number: typed, on the
        card looked up (by card id or by another of its numbers), or in the event's text."""
        query = sa.select(E.seq, E.hash, E.prev_hash, E.body).order_by(E.seq)
        if ident:
            hashed = self.ident_hmac(ident)
            query = query.where(E.seq.in_(sa.select(I.seq).where(I.ident_hmac == hashed)))
        if caseworker is not None:
            caseworker = caseworker_column(scrub.scrub_text(caseworker, self.keys.ident_hmac))
        for column, value in (
            (E.card_id, card_id),
            (E.caseworker, caseworker),
            (E.kind, kind),
            (E.decision, decision),
            (E.privileged, privileged),
        ):
            if value is not None:
                query = query.where(column == value)
        if since:
            query = query.where(E.at >= since)
        if until:
            query = query.where(E.at < until)
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(limit).offset(offset)).all()
        return [
            {"seq": r.seq, "hash": r.hash, "prev_hash": r.prev_hash, **json.loads(r.body)}
            for r in rows
        ]


def _checkpoint_dict(cp: Any) -> dict[str, Any]:
    return {
        "tree_size": cp.tree_size,
        "root": cp.root_hash,
        "head": cp.head_hash,
        "signed_at": cp.signed_at,
        "key_id": cp.key_id,
        "signature": base64.b64encode(cp.signature).decode(),
    }


def _is_conflict(exc: sa.exc.DBAPIError) -> bool:
    """Another writer took the same sequence number, or holds SQLite's write lock: retry."""
    text = str(exc.orig).lower()
    return isinstance(exc, sa.exc.IntegrityError) or "locked" in text or "busy" in text


def _is_outage(exc: BaseException) -> bool:
    """The store itself failed (connection, lock, missing table), not one event: writing the
    events one at a time would only fail each again."""
    return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) or bool(
        getattr(exc, "connection_invalidated", False)
    )


def _signed_ok(statement: dict[str, Any], signature: bytes, public: Ed25519PublicKey) -> bool:
    try:
        public.verify(signature, canonical(statement))
    except InvalidSignature:
        return False
    return True


def verify_inclusion(proof: dict[str, Any], public: Ed25519PublicKey) -> bool:
    """Check one event's proof: the checkpoint's signature and the event's audit path."""
    cp = proof["checkpoint"]
    statement = {k: cp[k] for k in ("tree_size", "root", "head", "signed_at", "key_id")}
    if not _signed_ok(statement, base64.b64decode(cp["signature"]), public):
        return False
    leaf = merkle.leaf_hash(proof["body"].encode())
    return merkle.verify_path(
        proof["seq"] - 1,
        cp["tree_size"],
        leaf,
        [bytes.fromhex(h) for h in proof["path"]],
        bytes.fromhex(cp["root"]),
    )


def _stream(conn: sa.Connection, query: sa.Select[Any]) -> Iterator[Any]:
    yield from conn.execution_options(yield_per=5000).execute(query)


def _event_query() -> sa.Select[Any]:
    return sa.select(
        E.seq,
        E.kind,
        E.at,
        E.trace_id,
        E.body,
        E.prev_hash,
        E.hash,
        E.leaf,
        E.decision,
        E.card_id,
        E.caseworker,
        E.ident_hmac,
        E.privileged,
    ).order_by(E.seq)


def _expected_index(data: dict[str, Any]) -> list[str]:
    """The ident index rows an event's body calls for (before 0006: only the typed number)."""
    listed = set(data.get("ident_hmacs") or [])
    if data.get("ident_hmac"):
        listed.add(data["ident_hmac"])
    return sorted(listed)


def verify(engine: sa.Engine, keys: AuditKeys | Ed25519PublicKey) -> VerifyResult:
    """Recompute the whole chain, the ident index and every checkpoint, in one snapshot of the
    log; name the first event that breaks it.

    With the ``AuditKeys`` every event's keyed hash is checked, so any change to any event is
    found at that event, after the newest checkpoint too. With only the public key, the
    checkpoints' signatures, Merkle roots and heads and the log's structure are checked, not
    the keyed hashes: a rewrite after the newest checkpoint is then not visible."""
    if isinstance(keys, AuditKeys):
        public, key = keys.public, chain_key(keys.secret)
    else:
        public, key = keys, None
    frontier = merkle.Frontier()
    roots: dict[int, tuple[str, str]] = {}  # tree size -> (Merkle root, chain head)
    prev = GENESIS
    count = 0

    def bad(seq: int, problem: str) -> VerifyResult:
        return VerifyResult(False, count, 0, seq, problem, key is not None)

    with _snapshot(engine) as conn:
        checkpoints = conn.execute(sa.select(C).order_by(C.tree_size)).all()
        sizes = {cp.tree_size for cp in checkpoints}
        index = _stream(conn, sa.select(I.seq, I.ident_hmac).order_by(I.seq, I.ident_hmac))
        pending = next(index, None)
        for row in _stream(conn, _event_query()):
            expected = count + 1
            if row.seq != expected:
                return bad(expected, f"event {expected} is missing (next stored is {row.seq})")
            body = row.body.encode()
            try:
                parsed = json.loads(body)
            except ValueError:
                return bad(row.seq, "the event is not valid JSON")
            if not isinstance(parsed, dict) or parsed.get("seq") != row.seq:
                return bad(row.seq, "the event names another sequence number: moved or reordered")
            if row.prev_hash != prev or parsed.get("prev") != prev:
                return bad(row.seq, "the link to the previous event is broken")
            if key is not None and not hmac.compare_digest(chain_hash(key, prev, body), row.hash):
                if _unkeyed_hash(prev, body) == row.hash:
                    return bad(
                        row.seq,
                        "the event is chained without the audit key (written before migration"
                        " 0006, or rewritten by someone without the key)",
                    )
                return bad(row.seq, "the event's content does not match its hash")
            leaf = merkle.leaf_hash(body)
            if row.leaf != leaf.hex():
                return bad(row.seq, "the event's leaf hash does not match its content")
            data = parsed.get("data")
            if not isinstance(data, dict):
                return bad(row.seq, "the event has no data")
            worker = data.get("caseworker") or {}
            if (
                row.kind != parsed.get("kind")
                or row.at != parsed.get("at")
                or row.trace_id != data.get("trace_id")
                or row.ident_hmac != data.get("ident_hmac")
                or row.decision != data.get("decision")
                or row.card_id != data.get("card_id")
                or row.caseworker
                != caseworker_column(worker.get("sub") if isinstance(worker, dict) else None)
                or bool(row.privileged) != bool(data.get("privileged_use"))
            ):
                return bad(row.seq, "an index column disagrees with the event")
            got: list[str] = []
            while pending is not None and pending.seq <= row.seq:
                if pending.seq < row.seq:
                    return bad(pending.seq, "an ident index row names no event")
                got.append(pending.ident_hmac)
                pending = next(index, None)
            if sorted(got) != _expected_index(data):
                return bad(row.seq, "the ident index disagrees with the event")
            frontier.add(leaf)
            prev = row.hash
            count += 1
            if count in sizes:
                roots[count] = (frontier.root().hex(), row.hash)
        if pending is not None:
            return bad(pending.seq, "an ident index row names an event that is not in the log")
    good = 0  # the newest checkpoint that holds: a changed event lies after it
    for cp in checkpoints:
        if cp.tree_size > count:
            return VerifyResult(
                False,
                count,
                0,
                count + 1,
                f"checkpoint covers {cp.tree_size} events, the log has {count}",
                key is not None,
            )
        statement = _checkpoint_dict(cp)
        signature = base64.b64decode(statement.pop("signature"))
        if not _signed_ok(statement, signature, public):
            return VerifyResult(
                False,
                count,
                0,
                cp.tree_size,
                f"checkpoint at {cp.tree_size} has a bad signature",
                key is not None,
            )
        root, head = roots[cp.tree_size]
        if root != cp.root_hash or head != cp.head_hash:
            return VerifyResult(
                False,
                count,
                0,
                good + 1,
                f"checkpoint at {cp.tree_size}: Merkle root or chain head mismatch (an event"
                f" from {good + 1} to {cp.tree_size} was changed)",
                key is not None,
            )
        good = cp.tree_size
    return VerifyResult(True, count, len(checkpoints), keyed=key is not None)
