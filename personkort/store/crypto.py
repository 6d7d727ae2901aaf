"""Encryption at rest of the most sensitive fields: health and the social worker's free text.

AES-256-GCM with a key ring: the first key encrypts, every key decrypts, so a new key is rolled
out by putting it first (new writes use it at once, old rows still read) and ``rekey`` re-encrypts
old rows while the API keeps serving. Each ciphertext is bound to its column and record (GCM
associated data), so a value cannot be moved to another person's row unnoticed.

Keys: ``PERSONKORT_STORE_KEYS`` = ``kid:base64key[,kid:base64key...]`` (32-byte keys, active
first). Without it a development key is generated once under ``<data dir>/dev-keys/``; production
must set the variable.
"""

from __future__ import annotations

import base64
import functools
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "enc:v1:"


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

    def encrypt(self, plaintext: str | None, context: str) -> str | None:
        if plaintext is None:
            return None
        kid, key = self.keys[0]
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), context.encode())
        return f"{PREFIX}{kid}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, stored: str | None, context: str) -> str | None:
        if stored is None or not stored.startswith(PREFIX):
            return stored  # written before encryption was on: plain text
        kid, _, b64 = stored.removeprefix(PREFIX).partition(":")
        key = dict(self.keys).get(kid)
        if key is None:
            raise KeyRingError(f"store key {kid!r} is not in the key ring")
        raw = base64.b64decode(b64)
        return AESGCM(key).decrypt(raw[:12], raw[12:], context.encode()).decode()

    def key_id_of(self, stored: str | None) -> str | None:
        if stored is None or not stored.startswith(PREFIX):
            return None
        return stored.removeprefix(PREFIX).partition(":")[0]


def key_ring(data_dir: str | None = None) -> KeyRing:
    """The store's key ring from ``PERSONKORT_STORE_KEYS``, or the development key."""
    configured = os.environ.get("PERSONKORT_STORE_KEYS")
    return _key_ring(configured, data_dir or os.environ.get("PERSONKORT_DATA_DIR") or "data")


@functools.lru_cache(maxsize=8)
def _key_ring(configured: str | None, folder: str) -> KeyRing:
    """Read once per setting: every card read needs the ring."""
    if configured:
        return KeyRing.parse(configured)
    path = Path(folder) / "dev-keys" / "store-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"dev:{base64.b64encode(secrets.token_bytes(32)).decode()}")
        path.chmod(0o600)
    return KeyRing.parse(path.read_text().strip())


def context(table: str, column: str, record_key: str) -> str:
    return f"{table}.{column}:{record_key}"
