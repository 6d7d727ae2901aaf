"""A night's drop folder: every register's extract, read through its adapter.

``arena/arena.sqlite`` (or a database URL in production), ``infotrygd/infotrygd_YYYYMMDD.dat``
and ``kommune/{sosio,flyt}_KKKK_YYYYMMDD.*``. A source that is refused (a cut-short Infotrygd
file) or missing is recorded as a refusal, and the rest of the drop is still read, so the steward
sees everything that went wrong in one run; the caller decides whether the night may publish.

Beside them, ``folkeregister/folkeregister_YYYYMMDD.jsonl`` is the Folkeregister feed's
snapshot. It is not a register of cards: a night without it (or with one that cannot be read)
is noted in ``Extract.feed_refusal``, never in ``refusals``, and the night goes on with the
feed's last state (shared/spec/folkeregister.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import logging
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack
from multiprocessing import get_context
from pathlib import Path

from adapters.arena import read_arena
from adapters.boundary import RefusedSource
from adapters.flyt import read_flyt
from adapters.folkeregister import read_snapshot
from adapters.infotrygd import FILE_PATTERN as INFOTRYGD_FILE
from adapters.infotrygd import read_infotrygd
from adapters.municipal import FILE_PATTERN as MUNICIPAL_FILE
from adapters.sosio import read_sosio
from personkort import collector
from personkort.fingerprint import fingerprints
from personkort.records import REGISTERS, Extract, Refusal, Register

Progress = Callable[[str], None]
log = logging.getLogger(__name__)


def sources(drop: Path) -> list[tuple[Register, str, Path]]:
    """The sources a drop folder holds, in reading order: (register, name, path)."""
    found: list[tuple[Register, str, Path]] = []
    arena = drop / "arena" / "arena.sqlite"
    if arena.exists():
        found.append((Register.ARENA, "arena", arena))
    for path in sorted((drop / "infotrygd").glob("*")):
        found.append((Register.INFOTRYGD, path.name, path))
    for path in sorted((drop / "kommune").glob("*")):
        found.append((Register.KOMMUNE, path.name, path))
    for path in sorted((drop / "folkeregister").glob("folkeregister_*.jsonl")):
        found.append((Register.FOLKEREGISTER, path.name, path))
    return found


def read_feed(drop: Path, known: Mapping[str, str] | None = None) -> Extract:
    """Only the drop's Folkeregister snapshot, into ``feed`` or ``feed_refusal`` (the DAG
    reads it in a task of its own). ``known``: the line digests the store holds (digest →
    person key), whose lines are not parsed again (``personkort.store.feed.known_digests``)."""
    found = [s for s in sources(drop) if s[0] is Register.FOLKEREGISTER]
    return _read_feed(drop, found, known)


def _read_feed(
    drop: Path, found: list[tuple[Register, str, Path]], known: Mapping[str, str] | None = None
) -> Extract:
    if not found:
        reason = "no folkeregister snapshot delivered"
        return Extract(feed_refusal=Refusal(Register.FOLKEREGISTER, str(drop), reason))
    if len(found) > 1:
        names = ", ".join(name for _, name, _ in found)
        reason = f"{len(found)} folkeregister snapshots ({names}); one expected"
        return Extract(feed_refusal=Refusal(Register.FOLKEREGISTER, str(drop), reason))
    path = found[0][2]
    try:
        with collector.paused():
            return read_snapshot(path, known)
    except RefusedSource as exc:
        return Extract(feed_refusal=Refusal(exc.register, exc.source, exc.reason))
    except Exception as exc:
        return Extract(feed_refusal=crashed(Register.FOLKEREGISTER, path.name, exc))


def fingerprint(drop: Path) -> str:
    """A digest of every file in the drop folder (names and contents): the same drop, the same
    fingerprint, so a rerun of a served night is recognised and changes nothing."""
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(p for p in drop.rglob("*") if p.is_file() and "truth" not in p.parts):
        digest.update(str(path.relative_to(drop)).encode() + b"\x00")
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def read_drop(
    drop: Path,
    *,
    arena_url: str | None = None,
    progress: Progress | None = None,
    parallel: bool = False,
    feed_known: Mapping[str, str] | None = None,
) -> Extract:
    """Read every source in ``drop``; ``arena_url`` overrides the folder's SQLite file;
    ``feed_known``: the Folkeregister line digests the store holds (not parsed again).

    ``parallel`` reads Arena in a second process while this one reads the files (a night's
    batch run on a machine with cores to spare: at a million persons 21 s became 14 s). The
    extract is the same either way, in the same order."""
    if not drop.is_dir():
        raise FileNotFoundError(f"drop folder {drop} does not exist")
    out = Extract()
    found = sources(drop)
    feed = [s for s in found if s[0] is Register.FOLKEREGISTER]
    found = [s for s in found if s[0] is not Register.FOLKEREGISTER]
    if arena_url is not None:
        found = [s for s in found if s[0] != Register.ARENA]
        found.insert(0, (Register.ARENA, "arena", Path(arena_url)))
    registers = {register for register, _, _ in found}
    for register in REGISTERS:
        if register not in registers:
            out.refusals.append(Refusal(register, str(drop), f"no {register} extract delivered"))
    infotrygd_files = sum(1 for s in found if s[0] == Register.INFOTRYGD)
    aside: Future[Extract] | None = None
    with ExitStack() as stack:
        if (
            parallel
            and len(found) > 1
            and found[0][0] is Register.ARENA
            and (os.cpu_count() or 1) > 1
        ):
            pool = stack.enter_context(
                ProcessPoolExecutor(
                    1,
                    mp_context=get_context("spawn"),
                    initializer=die_with_parent,
                    initargs=(os.getpid(),),
                )
            )
            register, name, path = found.pop(0)
            if progress:
                progress(name)
            aside = pool.submit(read_or_refuse, register, name, path, arena_url, infotrygd_files)
        parts = []
        for register, name, path in found:
            if progress:
                progress(name)
            parts.append(read_or_refuse(register, name, path, arena_url, infotrygd_files))
        if progress:
            for _, name, _ in feed:
                progress(name)
        # after the files, in this process, beside Arena
        parts.append(_read_feed(drop, feed, feed_known))
        if aside is not None:
            with collector.paused():
                parts.insert(0, aside.result())
    for part in parts:
        out.extend(part)
    return out


def die_with_parent(parent: int) -> None:
    """In the Arena reader process: end when the night that started it ends, however it ended.
    A SIGKILLed night used to leave its reader blocked for ever (160 MB each). On Linux the
    kernel kills it with its parent (PR_SET_PDEATHSIG); everywhere, a watcher thread ends it
    within a second of the parent being gone."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def read_or_refuse(
    register: Register, name: str, path: Path, arena_url: str | None, infotrygd_files: int
) -> Extract:
    """``read_source``, with a refused source recorded as the extract's refusal, not raised:
    the rest of the drop is still read, and bad data is for the gates. A refused feed
    snapshot is the extract's ``feed_refusal``: it must not stop the night."""
    try:
        return read_source(register, name, path, arena_url, infotrygd_files)
    except RefusedSource as exc:
        refusal = Refusal(exc.register, exc.source, exc.reason)
    except Exception as exc:  # an adapter's bug: the source is refused, the night says why
        refusal = crashed(register, name, exc)
    if register is Register.FOLKEREGISTER:
        return Extract(feed_refusal=refusal)
    return Extract(refusals=[refusal])


def crashed(register: Register, name: str, exc: Exception) -> Refusal:
    """An adapter that failed with an error it does not expect refuses its source, as a
    garbage file would, so the night stops at its gate with the source named (the feed's
    snapshot is refused alone) instead of ending in a traceback. Neither the refusal nor the
    log carries the error's message, which may quote a line: only its kind and where."""
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    kind = type(exc).__name__
    log.error("the %s adapter failed on %s: %s%s", register, name, kind, where)
    return Refusal(
        register, name, f"the adapter failed unexpectedly ({kind}{where}); a fault to report"
    )


def read_source(
    register: Register, name: str, path: Path, arena_url: str | None, infotrygd_files: int
) -> Extract:
    """Read one source of a drop folder through its adapter; raise RefusedSource if refused."""
    if register is Register.FOLKEREGISTER:  # the feed digests its lines itself
        with collector.paused():
            return read_snapshot(path)
    with collector.paused():
        extract = _read_source(register, name, path, arena_url, infotrygd_files)
        if not extract.fingerprints:  # the adapter did not fingerprint its lines itself
            extract.fingerprints = fingerprints(extract)
        return extract


def _read_source(
    register: Register, name: str, path: Path, arena_url: str | None, infotrygd_files: int
) -> Extract:
    if register is Register.ARENA:
        return read_arena(arena_url or f"sqlite:///{path.resolve()}")
    if register is Register.INFOTRYGD:
        if not INFOTRYGD_FILE.match(name):
            raise RefusedSource(
                register, name, "not an Infotrygd file name (infotrygd_YYYYMMDD.dat)"
            )
        if infotrygd_files > 1:
            raise RefusedSource(register, name, f"{infotrygd_files} Infotrygd files; one expected")
        return read_infotrygd(path)
    match = MUNICIPAL_FILE.match(name)
    if not match:
        raise RefusedSource(register, name, "not a municipal file name (sosio|flyt_KKKK_YYYYMMDD)")
    return read_sosio(path) if match.group(1) == "sosio" else read_flyt(path)
