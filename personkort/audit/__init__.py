"""The tamper-evident audit log (hash chain, RFC 6962 Merkle checkpoints signed with Ed25519)."""

from personkort.audit.keys import AuditKeys, audit_keys
from personkort.audit.log import (
    AuditLog,
    AuditRefused,
    AuditUnavailable,
    StoredEvent,
    VerifyResult,
    begin_write,
    verify,
    verify_inclusion,
)

__all__ = [
    "AuditKeys",
    "AuditLog",
    "AuditRefused",
    "AuditUnavailable",
    "StoredEvent",
    "VerifyResult",
    "audit_keys",
    "begin_write",
    "verify",
    "verify_inclusion",
]
