"""The pages' part of the app: static assets, the sign-in, the three faces and the API docs.

``install_web`` is called by the app factory (``api/app.py``), the one place that knows both
the API and the pages; the pages reach the store only through the application services.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.problems import ProblemError, handle_problem
from api.services import Services
from web import routes_audit, routes_caseworker, routes_signin, routes_steward
from web.context import NotSignedIn, Web
from web.rendering import Pages
from web.session import Sessions

STATIC = Path(__file__).parent / "static"
DOCS_PATH = "/api/v1/docs"


def install_web(app: FastAPI, services: Services) -> None:
    pages = Pages()
    sessions = Sessions(services.settings, services.tokens, services.sessions.ended)
    app.state.web = Web(services=services, pages=pages, sessions=sessions)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (routes_signin, routes_caseworker, routes_steward, routes_audit):
        app.include_router(module.router)
    app.add_exception_handler(NotSignedIn, _to_signin)

    async def problem(request: Request, exc: Exception) -> Response:
        """A refusal before a page route ran (a CSRF refusal): in words on a page, not JSON
        that htmx would put on the screen. Under /api/ it stays problem+json."""
        assert isinstance(exc, ProblemError)
        if request.url.path.startswith("/api/"):
            return await handle_problem(request, exc)
        user = sessions.user(request)
        name = "_problem.html" if request.headers.get("hx-request") else "problem_page.html"
        response = pages.error(request, exc, user=user, template=name)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    app.add_exception_handler(ProblemError, problem)

    @app.get(DOCS_PATH, include_in_schema=False, response_class=HTMLResponse)
    def docs(request: Request) -> Response:
        """The API reference, rendered with the vendored Swagger UI."""
        return pages.render(request, "docs.html")


async def _to_signin(request: Request, _exc: Exception) -> Response:
    """A page without a session goes to the sign-in; an htmx request is told to go there."""
    if request.headers.get("hx-request") or request.method != "GET":
        return Response(status_code=401, headers={"HX-Redirect": "/logg-inn"})
    return RedirectResponse("/logg-inn", status_code=303)
