"""The audit log: append-only, hash-chained, with signed Merkle checkpoints.

Every event's ``hash`` is SHA-256 over the previous event's hash and the event's canonical
serialisation (JSON, sorted keys, no spaces, UTF-8), so changing, deleting or reordering any
stored event breaks the chain at that event. Every ``checkpoint_every`` events an Ed25519
signature is made over the RFC 6962 Merkle root of all events so far and the chain head, so one
event's inclusion can be proven without the rest. An event is committed before ``append``
returns; anything that prevents that raises ``AuditUnavailable``, and the caller must then fail
closed. Identity numbers are never stored in clear: an HMAC makes them findable, a sealed copy
makes them readable with the audit key.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from personkort.audit import merkle
from personkort.audit.keys import AuditKeys, audit_keys
from personkort.audit.models import AuditCheckpointRow as C
from personkort.audit.models import AuditEventRow as E

log = logging.getLogger("personkort.audit")
GENESIS = "0" * 64
IDENT_LIKE = re.compile(r"(?<!\d)(\d{6}) ?(\d{5})(?!\d)")
LOCK_KEY = 0x706B617564  # "pkaud": the audit writers' advisory lock on PostgreSQL
OPAQUE = {"card_id", "trace_id", "policy_version", "ident_hmac", "ident_sealed", "files"}


class AuditUnavailable(RuntimeError):
    """The audit log cannot be written: nothing that needs an audit event may proceed."""


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev: str, body: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev) + body).hexdigest()


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
    """An event waiting for a group commit, then its outcome."""

    kind: str
    data: dict[str, Any]
    ident_hmac: str | None
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


class AuditLog:
    def __init__(self, engine: sa.Engine, keys: AuditKeys, checkpoint_every: int = 1000) -> None:
        self.engine = engine
        self.keys = keys
        self.checkpoint_every = checkpoint_every
        self.timeout = 10.0  # seconds a caller waits for its commit before failing closed
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._checkpoint_lock = threading.Lock()
        self._checkpoints: list[threading.Thread] = []
        self._frontier = merkle.Frontier()
        self._head = GENESIS

    @classmethod
    def from_settings(cls, engine: sa.Engine, data_dir: str | None = None) -> AuditLog:
        return cls(engine, audit_keys(data_dir))

    # -- writing ---------------------------------------------------------------------------

    def append(
        self,
        kind: str,
        data: dict[str, Any],
        *,
        ident: str | None = None,
        trace_id: str | None = None,
    ) -> StoredEvent:
        """Store one event durably, chained to the one before; raise AuditUnavailable if not.
        Auditors' index columns are taken from the event itself, so they cannot disagree.

        Concurrent callers share commits (group commit): each queues its event and waits; one
        writer thread commits everything queued in one transaction, so a burst of lookups
        costs one disk flush, not one each. No caller returns before its own event is
        committed; one that waits longer than ``timeout`` gets AuditUnavailable."""
        data = self._scrub(data)
        ident_hmac = None
        if ident:
            ident_hmac = self.keys.ident_hmac(ident)
            data["ident_hmac"] = ident_hmac
            data["ident_sealed"] = self.keys.seal(ident)
        mine = _Pending(kind, data, ident_hmac, trace_id)
        self._writer_running()
        self._queue.put(mine)
        if not mine.done.wait(self.timeout) or mine.stored is None:
            raise AuditUnavailable("the audit log cannot be written") from mine.error
        if mine.stored.seq % self.checkpoint_every == 0:
            self._checkpoint_later(mine.stored.seq)
        return mine.stored

    def _writer_running(self) -> None:
        with self._writer_lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write, name="audit", daemon=True)
                self._writer.start()

    def _write(self) -> None:
        """The writer thread: take what is queued, commit it, wake its callers."""
        while True:
            batch = [self._queue.get()]
            while len(batch) < 500:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._commit(batch)
            except Exception as exc:  # never leave a caller waiting on a dead writer
                for pending in batch:
                    pending.error = exc
            for pending in batch:
                pending.done.set()

    def _commit(self, batch: list[_Pending]) -> None:
        """Commit a batch, retrying while another process holds the next sequence numbers."""
        for attempt in range(50):
            try:
                stored = self._append_batch(batch)
            except (sa.exc.IntegrityError, sa.exc.OperationalError) as exc:
                if _is_conflict(exc) and attempt < 49:
                    time.sleep(0.001 * (attempt + 1))
                    continue
                error: Exception = exc
                break
            except sa.exc.SQLAlchemyError as exc:
                error = exc
                break
            for pending, event in zip(batch, stored, strict=True):
                pending.stored = event
            return
        for pending in batch:
            pending.error = error

    def _scrub(self, value: Any, key: str = "") -> Any:
        """Replace every identity number inside an event (a record key like
        ``infotrygd:15928011418`` in a steward decision) with its HMAC: findable, not readable."""
        if isinstance(value, dict):
            return {k: self._scrub(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrub(v, key) for v in value]
        if isinstance(value, str) and key not in OPAQUE:
            return IDENT_LIKE.sub(
                lambda m: "ident:" + self.keys.ident_hmac(m.group(1) + m.group(2)), value
            )
        return value

    def _append_batch(self, batch: list[_Pending]) -> list[StoredEvent]:
        rows: list[dict[str, Any]] = []
        stored: list[StoredEvent] = []
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Writers in other processes queue here instead of colliding on the sequence
                # number and retrying; SQLite has a single writer anyway.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            head = conn.execute(sa.select(E.seq, E.hash).order_by(E.seq.desc()).limit(1)).first()
            seq, prev = (head.seq, head.hash) if head else (0, GENESIS)
            for p in batch:
                seq += 1
                at = now_text()
                body = canonical(
                    {"seq": seq, "kind": p.kind, "at": at, "prev": prev, "data": p.data}
                )
                digest = chain_hash(prev, body)
                rows.append(
                    {
                        "seq": seq,
                        "kind": p.kind,
                        "at": at,
                        "body": body.decode(),
                        "prev_hash": prev,
                        "hash": digest,
                        "leaf": merkle.leaf_hash(body).hex(),
                        "trace_id": p.trace_id,
                        "caseworker": (p.data.get("caseworker") or {}).get("sub"),
                        "card_id": p.data.get("card_id"),
                        "ident_hmac": p.ident_hmac,
                        "decision": p.data.get("decision"),
                        "privileged": bool(p.data.get("privileged_use")),
                    }
                )
                stored.append(StoredEvent(seq, p.kind, at, digest, p.trace_id))
                prev = digest
            conn.execute(sa.insert(E), rows)
        return stored

    def _checkpoint_later(self, upto: int) -> None:
        """Sign a checkpoint of the first ``upto`` events off the caller's path: a lookup
        never waits for one."""

        def run() -> None:
            try:
                self.checkpoint(upto)
            except sa.exc.SQLAlchemyError:
                log.exception("checkpoint failed; the next one will cover it")

        thread = threading.Thread(target=run, name="audit-checkpoint", daemon=True)
        # Keep only the running ones: a server signs one per 1,000 events for months.
        self._checkpoints = [t for t in self._checkpoints if t.is_alive()]
        self._checkpoints.append(thread)
        thread.start()

    def wait_for_checkpoints(self) -> None:
        """Join checkpoints started by appends (tests, shutdown)."""
        while self._checkpoints:
            self._checkpoints.pop().join()

    def checkpoint(self, upto: int | None = None) -> dict[str, Any] | None:
        """Sign the Merkle root of every event so far (or of the first ``upto``), and the
        chain head.

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
        with self.engine.connect() as conn:
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
        query = sa.select(E.seq, E.hash, E.prev_hash, E.body).order_by(E.seq)
        if ident:
            query = query.where(E.ident_hmac == self.keys.ident_hmac(ident))
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


def _stream(conn: sa.Connection) -> Iterator[Any]:
    yield from conn.execution_options(yield_per=5000).execute(
        sa.select(
            E.seq,
            E.kind,
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
    )


def verify(engine: sa.Engine, public: Ed25519PublicKey) -> VerifyResult:
    """Recompute the whole chain and every checkpoint; name the first event that breaks it."""
    leaves: list[bytes] = []
    prev = GENESIS
    count = 0

    def bad(seq: int, problem: str) -> VerifyResult:
        return VerifyResult(False, count, 0, seq, problem)

    with engine.connect() as conn:
        for row in _stream(conn):
            expected = count + 1
            if row.seq != expected:
                return bad(expected, f"event {expected} is missing (next stored is {row.seq})")
            body = row.body.encode()
            try:
                parsed = json.loads(body)
            except ValueError:
                return bad(row.seq, "the event is not valid JSON")
            if parsed.get("seq") != row.seq:
                return bad(row.seq, f"the event says it is {parsed.get('seq')}: moved or reordered")
            if row.prev_hash != prev or parsed.get("prev") != prev:
                return bad(row.seq, "the link to the previous event is broken")
            if chain_hash(prev, body) != row.hash:
                return bad(row.seq, "the event's content does not match its hash")
            data = parsed.get("data", {})
            if (
                row.kind != parsed.get("kind")
                or row.ident_hmac != data.get("ident_hmac")
                or row.decision != data.get("decision")
                or row.card_id != data.get("card_id")
                or row.caseworker != (data.get("caseworker") or {}).get("sub")
                or bool(row.privileged) != bool(data.get("privileged_use"))
            ):
                return bad(row.seq, "an index column disagrees with the event")
            leaves.append(merkle.leaf_hash(body))
            prev = row.hash
            count += 1
        checkpoints = conn.execute(sa.select(C).order_by(C.tree_size)).all()
    for cp in checkpoints:
        if cp.tree_size > count:
            return VerifyResult(
                False,
                count,
                0,
                count + 1,
                f"checkpoint covers {cp.tree_size} events, the log has {count}",
            )
        statement = _checkpoint_dict(cp)
        signature = base64.b64decode(statement.pop("signature"))
        if not _signed_ok(statement, signature, public):
            return VerifyResult(
                False, count, 0, cp.tree_size, f"checkpoint at {cp.tree_size} has a bad signature"
            )
        if merkle.root(leaves[: cp.tree_size]).hex() != cp.root_hash:
            return VerifyResult(
                False, count, 0, cp.tree_size, f"checkpoint at {cp.tree_size}: Merkle root mismatch"
            )
    return VerifyResult(True, count, len(checkpoints))
