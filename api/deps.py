"""Request dependencies: the services, and the caseworker behind the bearer token."""

from __future__ import annotations

from fastapi import Request

from api.problems import ProblemError
from api.services import Services
from personkort.policy.engine import Caseworker
from personkort.policy.model import Policy


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def caseworker(request: Request) -> Caseworker:
    return services(request).tokens.caseworker(request)


def require_role(worker: Caseworker, role: str) -> None:
    if role not in worker.roles:
        raise ProblemError(403, "mangler_rolle", "Forbidden", f"This needs the role {role}.")


def policy(svc: Services) -> Policy:
    """The running policy; no policy means no decision can be made: fail closed."""
    current = svc.policies.policy or svc.policies.reload()
    if current is None:
        raise ProblemError(
            503, "policy_utilgjengelig", "Service Unavailable", "No valid policy is loaded."
        )
    return current
