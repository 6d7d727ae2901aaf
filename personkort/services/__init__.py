"""Application services: one module per use case.

Each service owns the whole order of a use case: check the caller, evaluate the gate, make the
change and its audit event in one transaction (or nothing at all), answer. Routes and CLI
commands only parse, call a service and render; every statement lives in a store repository.
See docs/architecture.md.
"""

from personkort.services.errors import (
    Conflict,
    Denied,
    Invalid,
    NotFound,
    RateLimited,
    ServiceError,
    Unavailable,
)

__all__ = [
    "Conflict",
    "Denied",
    "Invalid",
    "NotFound",
    "RateLimited",
    "ServiceError",
    "Unavailable",
]
