"""The pages' part of the app: static assets, the sign-in, the three faces and the API docs.

``install_web`` is called by the app factory (``api/app.py``), the one place that knows both
the API and the pages; the pages reach the store only through the application services.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.services import Services
from web import routes_audit, routes_caseworker, routes_signin, routes_steward
from web.context import NotSignedIn, Web
from web.rendering import Pages
from web.session import Sessions

STATIC = Path(__file__).parent / "static"
DOCS_PATH = "/api/v1/docs"


def install_web(app: FastAPI, services: Services) -> None:
    pages = Pages()
    app.state.web = Web(
        services=services,
        pages=pages,
        sessions=Sessions(services.settings, services.tokens, services.sessions.ended),
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (routes_signin, routes_caseworker, routes_steward, routes_audit):
        app.include_router(module.router)
    app.add_exception_handler(NotSignedIn, _to_signin)

    @app.get(DOCS_PATH, include_in_schema=False, response_class=HTMLResponse)
    def docs(request: Request) -> Response:
        """The API reference, rendered with the vendored Swagger UI."""
        return pages.render(request, "docs.html")


async def _to_signin(request: Request, _exc: Exception) -> Response:
    """A page without a session goes to the sign-in; an htmx request is told to go there."""
    if request.headers.get("hx-request") or request.method != "GET":
        return Response(status_code=401, headers={"HX-Redirect": "/logg-inn"})
    return RedirectResponse("/logg-inn", status_code=303)
