"""The audit keys: an HMAC key (identity numbers findable, not readable), a sealing key derived
from it (identity numbers readable with the key), and the Ed25519 key that signs checkpoints.

From ``PERSONKORT_AUDIT_KEY`` (base64, 32 bytes) and ``PERSONKORT_AUDIT_SIGNING_KEY`` (base64 raw
Ed25519 private key, 32 bytes). Without them a development pair is generated once under
``<data dir>/dev-keys/``; production must set both.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


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


def _dev_file(path: Path, size: int) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(base64.b64encode(secrets.token_bytes(size)).decode())
        path.chmod(0o600)
    return base64.b64decode(path.read_text().strip())


def audit_keys(data_dir: str | None = None) -> AuditKeys:
    folder = Path(data_dir or os.environ.get("PERSONKORT_DATA_DIR") or "data") / "dev-keys"
    secret_text = os.environ.get("PERSONKORT_AUDIT_KEY")
    signing_text = os.environ.get("PERSONKORT_AUDIT_SIGNING_KEY")
    secret = base64.b64decode(secret_text) if secret_text else _dev_file(folder / "audit-key", 32)
    signing = (
        base64.b64decode(signing_text) if signing_text else _dev_file(folder / "audit-signing", 32)
    )
    if len(secret) != 32 or len(signing) != 32:
        raise ValueError("audit keys must be 32 bytes each (base64)")
    return AuditKeys(secret, Ed25519PrivateKey.from_private_bytes(signing))
