"""Encryption at rest of the most sensitive fields: health and the social worker's free text.

AES-256-GCM with a key ring: the first key encrypts, every key decrypts, so a new key is rolled
out by putting it first (new writes use it at once, old rows still read) and ``rekey`` re-encrypts
old rows while the API keeps serving. Each ciphertext is bound to its column and record (GCM
associated data), so a value cannot be moved to another person's row unnoticed.

Keys: ``PERSONKORT_STORE_KEYS`` = ``kid:base64key[,kid:base64key...]`` (32-byte keys, active
first). Without it, and only in development mode (``PERSONKORT_DEV_MODE=1``), a development key
is made once under ``<data dir>/dev-keys/`` (shared by every process, see personkort/devkeys.py);
otherwise a missing key is refused, for the API and the night alike.
"""

from __future__ import annotations

import base64
import functools
import os
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from personkort import devkeys

PREFIX = "enc:v1:"  # bound to its table, column and record
LINE_PREFIX = "enc:v2:"  # bound to its line as well (``service_context``)


class KeyRingError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class KeyRing:
    keys: tuple[tuple[str, bytes], ...]  # (key id, key); the first encrypts

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        keys = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            kid, _, b64 = part.partition(":")
            try:
                key = base64.b64decode(b64, validate=True)
            except ValueError:
                raise KeyRingError(f"store key {kid!r} is not base64") from None
            if not kid or len(key) != 32:
                raise KeyRingError(f"store key {kid!r} must be an id and 32 bytes of base64")
            keys.append((kid, key))
        if not keys:
            raise KeyRingError("no store keys given")
        return cls(tuple(keys))

    @property
    def active(self) -> str:
        return self.keys[0][0]

    def encrypt(self, plaintext: str | None, context: str, prefix: str = PREFIX) -> str | None:
        """``prefix``: ``LINE_PREFIX`` when ``context`` binds the value to its line."""
        if plaintext is None:
            return None
        kid, key = self.keys[0]
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), context.encode())
        return f"{prefix}{kid}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(
        self, stored: str | None, context: str, record_context: str | None = None
    ) -> str | None:
        """The value in clear; InvalidTag if it was sealed for another place. A value sealed
        before lines were bound (``PREFIX``) opens with ``record_context`` when given: until
        ``rekey`` has sealed it again, such a value can still be moved between the lines of
        one record (docs/threat-model.md)."""
        if stored is None:
            return None
        if stored.startswith(LINE_PREFIX):
            body = stored.removeprefix(LINE_PREFIX)
        elif stored.startswith(PREFIX):
            body, context = stored.removeprefix(PREFIX), record_context or context
        else:
            return stored  # written before encryption was on: plain text
        kid, _, b64 = body.partition(":")
        key = dict(self.keys).get(kid)
        if key is None:
            raise KeyRingError(f"store key {kid!r} is not in the key ring")
        raw = base64.b64decode(b64)
        return AESGCM(key).decrypt(raw[:12], raw[12:], context.encode()).decode()

    def key_id_of(self, stored: str | None) -> str | None:
        for prefix in (LINE_PREFIX, PREFIX):
            if stored is not None and stored.startswith(prefix):
                return stored.removeprefix(prefix).partition(":")[0]
        return None


STORE_KEYS = "PERSONKORT_STORE_KEYS"


def key_ring(data_dir: str | None = None) -> KeyRing:
    """The store's key ring from ``PERSONKORT_STORE_KEYS``; the development key only in
    development mode, else a MissingKeyError (never a key made up on the spot)."""
    configured = os.environ.get(STORE_KEYS, "").strip() or None
    folder = data_dir or os.environ.get("PERSONKORT_DATA_DIR") or "data"
    return _key_ring(configured, folder, devkeys.dev_mode())


@functools.lru_cache(maxsize=8)
def _key_ring(configured: str | None, data_dir: str, dev: bool) -> KeyRing:
    """Read once per setting (``dev`` is part of the key: a ring made in development mode is
    never handed out after it is turned off): every card read needs the ring."""
    if configured:
        return KeyRing.parse(configured)
    return KeyRing.parse(devkeys.dev_key(data_dir, "store-key", _new_key, STORE_KEYS))


def _new_key() -> str:
    return f"dev:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def context(table: str, column: str, record_key: str) -> str:
    return f"{table}.{column}:{record_key}"


def service_context(record_key: str, location: str, service: str, owner_kommune: str) -> str:
    """A municipal service's free text bound to its line, and to the line's clear service and
    municipality: copied over another line of the same record (a RUS text over an OKSOS line),
    or with the line's service or municipality changed in the database, it no longer opens,
    and the card read fails closed. Sealed with ``LINE_PREFIX``."""
    return f"municipal_service.free_text:{record_key}:{location}:{service}:{owner_kommune}"


BYTES_PREFIX = b"enc:v1:"


def seal_bytes(ring: KeyRing, data: bytes, context: str) -> bytes:
    """Seal a blob (a night's extract between pipeline tasks) under the active key, bound to
    ``context`` (e.g. its file name) so that one sealed blob cannot stand in for another."""
    kid, key = ring.keys[0]
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(key).encrypt(nonce, data, context.encode())
    return BYTES_PREFIX + kid.encode() + b":" + nonce + sealed


def open_bytes(ring: KeyRing, stored: bytes, context: str) -> bytes:
    """The blob ``seal_bytes`` sealed. Fails closed: a blob that is not sealed, or was changed,
    or belongs elsewhere, raises (an unauthenticated pickle must never be loaded)."""
    if not stored.startswith(BYTES_PREFIX):
        raise KeyRingError("not a sealed blob")
    kid, sep, rest = stored.removeprefix(BYTES_PREFIX).partition(b":")
    key = dict(ring.keys).get(kid.decode(errors="replace"))
    if not sep or key is None:
        raise KeyRingError(f"store key {kid.decode(errors='replace')!r} is not in the key ring")
    return AESGCM(key).decrypt(rest[:12], rest[12:], context.encode())
