"""What the page routes need, built once by the app factory, and the signed-in user."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from api.services import Services
from web.rendering import Pages
from web.session import Sessions, WebUser


class NotSignedIn(Exception):
    """No valid session: a page redirects to the sign-in, a fragment asks htmx to."""


@dataclass
class Web:
    services: Services
    pages: Pages
    sessions: Sessions


def web(request: Request) -> Web:
    return request.app.state.web  # type: ignore[no-any-return]


def signed_in(request: Request) -> WebUser:
    user = web(request).sessions.user(request)
    if user is None:
        raise NotSignedIn()
    return user


async def checked_form(request: Request, user: WebUser) -> dict[str, str]:
    """The posted form's text fields, after the origin and CSRF checks."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    web(request).sessions.check_form(request, user, fields.get("csrf"))
    return fields
