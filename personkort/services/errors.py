"""What a use case can answer besides its result; the edge maps each kind to a status code."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator

import sqlalchemy as sa

# A run of this many decimal digits could be read as (part of) an identity number by a scan
# of the logs, which carry trace ids: eleven digits is a number, two spare.
_DIGIT_RUN = re.compile(r"[0-9]{9}")


def new_trace() -> str:
    """A request's trace id (32 hex characters) with no run of nine decimal digits: a random
    hex id held one of eleven in about one of fifty, and a log line with it looked like an
    identity number to the tests' scan, as it would to an auditor's."""
    while _DIGIT_RUN.search(trace := uuid.uuid4().hex):
        pass
    return trace


class ServiceError(Exception):
    """A use case refused or could not be carried out. ``code`` is a stable reason code,
    ``message`` says why in plain words, ``trace_id`` finds the audit event where there is one."""

    def __init__(self, code: str, message: str, trace_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.trace_id = trace_id


class Denied(ServiceError):
    """The caller may not do this (a missing role, the gate)."""


class NotFound(ServiceError):
    """No such thing, or one this caller may not know exists: the answers are the same."""


class Invalid(ServiceError):
    """The request cannot be carried out as given."""


class Conflict(ServiceError):
    """Someone else changed the thing first (e.g. a steward ruled on the pair): nothing done."""


class Unavailable(ServiceError):
    """The store, the policy or the audit log cannot be used: fail closed, nothing was done."""


class RateLimited(ServiceError):
    """Too many lookups in a short time; ``retry_after`` seconds until the next is allowed."""

    def __init__(self, code: str, message: str, trace_id: str | None, retry_after: int) -> None:
        super().__init__(code, message, trace_id)
        self.retry_after = retry_after


def store_unavailable(trace_id: str | None = None) -> Unavailable:
    return Unavailable("lager_utilgjengelig", "The card store is unavailable.", trace_id)


@contextlib.contextmanager
def store_errors(trace_id: str | None = None) -> Iterator[None]:
    """A store failure inside is the use case's 503: nothing was done (a transaction opened
    inside has rolled back)."""
    try:
        yield
    except sa.exc.SQLAlchemyError:
        raise store_unavailable(trace_id) from None


def audit_unavailable(trace_id: str | None = None) -> Unavailable:
    return Unavailable(
        "revisjonslogg_utilgjengelig",
        "The audit log cannot be written; nothing was done.",
        trace_id,
    )


def too_many(trace_id: str, wait: int) -> RateLimited:
    return RateLimited(
        "for_mange_oppslag",
        "Too many lookups in a short time; wait a little and try again.",
        trace_id,
        wait,
    )


def missing_role(role: str, trace_id: str | None = None) -> Denied:
    return Denied("mangler_rolle", f"This needs the role {role}.", trace_id)
