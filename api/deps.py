"""Request dependencies: the services, and the caseworker behind the bearer token."""

from __future__ import annotations

from fastapi import Request

from api.services import Services
from personkort.policy.engine import Caseworker


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def caseworker(request: Request) -> Caseworker:
    return services(request).tokens.caseworker(request)
