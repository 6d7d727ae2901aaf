"""The audit keys: an HMAC key (identity numbers findable, not readable), a sealing key derived
from it (identity numbers readable with the key), and the Ed25519 key that signs checkpoints.

From ``PERSONKORT_AUDIT_KEY`` (base64, 32 bytes) and ``PERSONKORT_AUDIT_SIGNING_KEY`` (base64 raw
Ed25519 private key, 32 bytes). Without them, and only in development mode
(``PERSONKORT_DEV_MODE=1``), a development pair is made once under ``<data dir>/dev-keys/``
(shared by every process, see personkort/devkeys.py); otherwise a missing key is refused.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from personkort import devkeys


@dataclass(frozen=True)
class AuditKeys:
    secret: bytes
    signing: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.signing.public_key()

    @property
    def key_id(self) -> str:
        raw = self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return hashlib.sha256(raw).hexdigest()[:16]

    def ident_hmac(self, ident: str) -> str:
        return hmac.new(self.secret, ident.encode(), hashlib.sha256).hexdigest()

    @functools.cached_property
    def _sealer(self) -> AESGCM:
        """Derived once per key: every audited lookup seals its identity number."""
        key = HKDF(hashes.SHA256(), 32, salt=None, info=b"personkort audit seal").derive(
            self.secret
        )
        return AESGCM(key)

    def seal(self, ident: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._sealer.encrypt(nonce, ident.encode(), b"audit-ident")
        return base64.b64encode(nonce + sealed).decode()

    def unseal(self, sealed: str) -> str:
        raw = base64.b64decode(sealed)
        return self._sealer.decrypt(raw[:12], raw[12:], b"audit-ident").decode()


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _key(setting: str, dev_name: str, data_dir: str | None) -> bytes:
    """A 32-byte key from ``setting`` (base64), or the development key outside production."""
    text = os.environ.get(setting, "").strip()
    if not text:
        text = devkeys.dev_key(data_dir, dev_name, _new_key, setting)
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError:
        raise devkeys.MissingKeyError(f"{setting} is not base64") from None
    if len(key) != 32:
        raise devkeys.MissingKeyError(f"{setting} must be 32 bytes (base64), not {len(key)}")
    return key


def audit_keys(data_dir: str | None = None) -> AuditKeys:
    """The configured audit keys; development keys only in development mode."""
    secret = _key("PERSONKORT_AUDIT_KEY", "audit-key", data_dir)
    signing = _key("PERSONKORT_AUDIT_SIGNING_KEY", "audit-signing", data_dir)
    return AuditKeys(secret, Ed25519PrivateKey.from_private_bytes(signing))
