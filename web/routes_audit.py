"""Placeholder: replaced by the audit face."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from web.context import signed_in, web

router = APIRouter(include_in_schema=False)


@router.get("/revisor", response_class=HTMLResponse)
def home(request: Request) -> Response:
    user = signed_in(request)
    return web(request).pages.render(
        request, "placeholder.html", user=user, active="revisor", title="Revisjon"
    )
