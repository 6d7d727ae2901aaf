"""Templates and the filters they share: Norwegian dates, ages, and errors as HTML.

A service error on a page is rendered as a fragment (status kept), never as JSON: htmx swaps
it into the page where the answer would have gone, and a screen reader announces it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.problems import ProblemError, status_of
from personkort.services import ServiceError
from web.messages import MESSAGES

TEMPLATES = Path(__file__).parent / "templates"
MONTHS = [
    "januar",
    "februar",
    "mars",
    "april",
    "mai",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "desember",
]


def norwegian_date(value: str | dt.date | dt.datetime | None) -> str:
    """``2026-03-01`` as ``1. mars 2026``; empty stays empty."""
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value[:10])
        except ValueError:
            return value
    return f"{value.day}. {MONTHS[value.month - 1]} {value.year}"


def stamp(value: str | dt.datetime | None) -> str:
    """A moment as ``1. mars 2026 kl. 14.05`` (Oslo time is what people read)."""
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    local = value.astimezone(_oslo())
    return f"{norwegian_date(local)} kl. {local:%H.%M}"


def _oslo() -> dt.tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("Europe/Oslo")
    except Exception:  # no tz database: UTC is still right, only not local
        return dt.UTC


def age(birth: str | None, death: str | None = None, today: dt.date | None = None) -> int | None:
    """Whole years from birth to death or today."""
    if not birth:
        return None
    try:
        born = dt.date.fromisoformat(birth[:10])
        end = dt.date.fromisoformat(death[:10]) if death else (today or dt.date.today())
    except ValueError:
        return None
    return end.year - born.year - ((end.month, end.day) < (born.month, born.day))


def grouped_ident(value: str | None) -> str:
    """An identity number as people read it: ``010190 12345``."""
    if not value or len(value) != 11:
        return value or ""
    return f"{value[:6]} {value[6:]}"


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    env = templates.env
    env.filters.update(dato=norwegian_date, tid=stamp, fnr=grouped_ident)
    env.globals.update(age=age)
    env.trim_blocks = True
    env.lstrip_blocks = True
    return templates


class Pages:
    """Renders pages and fragments with the signed-in user and CSRF token in every context."""

    def __init__(self) -> None:
        self.templates = make_templates()

    def render(
        self, request: Request, name: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    def error(
        self,
        request: Request,
        exc: ServiceError | ProblemError,
        template: str = "_problem.html",
        **context: Any,
    ) -> HTMLResponse:
        """A service's refusal as an HTML fragment: its plain-words message and trace id."""
        if isinstance(exc, ProblemError):
            problem = exc.problem
            status, code, message, trace = (
                problem.status,
                problem.code,
                problem.detail,
                problem.trace_id,
            )
        else:
            status, code, message, trace = status_of(exc)[0], exc.code, exc.message, exc.trace_id
        return self.render(
            request,
            template,
            status=status,
            status_code=status,
            code=code,
            message=MESSAGES.get(code, message),
            trace_id=trace,
            **context,
        )
