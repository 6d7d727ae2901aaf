"""Development keys: the one place that creates them, and only in development mode.

Outside ``PERSONKORT_DEV_MODE=1`` every key must be configured, and a missing one is a
:class:`MissingKeyError` naming the setting: a server or a night that silently made up its own
keys would encrypt, sign and hash with keys nobody else has.

In development mode a key that is not configured is read from ``<data dir>/dev-keys/<name>``, or
created there. Several processes starting together (uvicorn workers, the DAG's tasks) must end
with the same key, so the file is written in full to a temporary name and then hard-linked to
its final name: ``os.link`` fails if the name exists, so the first writer wins, the others drop
their candidate and read the winner's file. A reader never sees a half-written file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("personkort.devkeys")
DEV_MODE = "PERSONKORT_DEV_MODE"
_TRUE = {"1", "true", "t", "yes", "y", "on"}  # as pydantic reads Settings.dev_mode
_warned: set[str] = set()


class MissingKeyError(RuntimeError):
    """A key setting is unset (or unusable) outside development mode."""


def dev_mode() -> bool:
    """Whether ``PERSONKORT_DEV_MODE`` allows development keys in this process."""
    return os.environ.get(DEV_MODE, "").strip().lower() in _TRUE


def folder(data_dir: str | os.PathLike[str] | None) -> Path:
    """Where development keys live: ``<data dir>/dev-keys``."""
    return Path(data_dir or os.environ.get("PERSONKORT_DATA_DIR") or "data") / "dev-keys"


def dev_key(
    data_dir: str | os.PathLike[str] | None,
    name: str,
    make: Callable[[], str],
    setting: str,
    dev: bool | None = None,
) -> str:
    """The development key ``name`` (created by ``make`` if no process made it yet), or a
    MissingKeyError naming ``setting`` outside development mode (``dev``; default: the
    environment's PERSONKORT_DEV_MODE)."""
    if not (dev_mode() if dev is None else dev):
        raise MissingKeyError(
            f"{setting} is not set: configure it (see .env.example), or set {DEV_MODE}=1 "
            "to use development keys"
        )
    path = folder(data_dir) / name
    value = read_or_create(path, make)
    if str(path) not in _warned:
        _warned.add(str(path))
        log.warning("development mode: %s is a development key from %s", setting, path)
    return value


def read_or_create(path: Path, make: Callable[[], str]) -> str:
    """The file's text; if it does not exist, the first of any concurrent creators wins."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    candidate = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}")
    fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(make())
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # someone else was first: theirs wins
            os.link(candidate, path)  # atomic, and never replaces an existing file
    finally:
        candidate.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> str:
    value = path.read_text(encoding="ascii").strip()
    if not value:
        raise MissingKeyError(f"development key file {path} is empty: delete it to recreate it")
    return value
