"""Errors as RFC 9457 problem details, with stable reason codes a client can act on."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from personkort.services import (
    Conflict,
    Denied,
    Invalid,
    NotFound,
    RateLimited,
    ServiceError,
    Unavailable,
)

PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    """RFC 9457 problem details; ``code`` is a stable reason code, ``trace_id`` finds the audit
    event where there is one."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    trace_id: str | None = None


class ProblemError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        trace_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.problem = Problem(
            type=f"https://personkort.nav.no/problems/{code}",
            title=title,
            status=status,
            detail=detail,
            code=code,
            trace_id=trace_id,
        )
        self.headers = headers


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        problem.model_dump(), status_code=problem.status, media_type=PROBLEM_JSON, headers=headers
    )


async def handle_problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(exc.problem, exc.headers)


# How each kind of refusal of an application service reads over HTTP.
_STATUS: dict[type[ServiceError], tuple[int, str]] = {
    Denied: (403, "Forbidden"),
    NotFound: (404, "Not Found"),
    Invalid: (422, "Unprocessable"),
    Conflict: (409, "Conflict"),
    RateLimited: (429, "Too Many Requests"),
    Unavailable: (503, "Service Unavailable"),
}


def status_of(exc: ServiceError) -> tuple[int, str]:
    """The HTTP status and title of a service's refusal (the web pages use the same)."""
    return next(
        (v for kind, v in _STATUS.items() if isinstance(exc, kind)), (500, "Internal Error")
    )


async def handle_service_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    status, title = status_of(exc)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    problem = Problem(
        type=f"https://personkort.nav.no/problems/{exc.code}",
        title=title,
        status=status,
        detail=exc.message,
        code=exc.code,
        trace_id=exc.trace_id,
    )
    return problem_response(problem, headers)


Id = Annotated[int, Path(ge=1, le=2**31 - 1)]  # a database id in a path


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the problem responses a route can give."""
    return {
        status: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": "Problem details"}
        for status in statuses
    }
