"""CSRF protection for the console: one random token per session, required on every state-changing console
request (a form's hidden csrf_token field, or the X-CSRF-Token header of the pages' JSON calls to /v1).

SameSite=Lax cookies already keep most cross-site posts out; the token also covers older browsers and
same-site attackers (another app on a sibling subdomain)."""
from __future__ import annotations

import hmac
import secrets

from flask import Flask, request, session

from api.errors import ApiError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HEADER = "X-CSRF-Token"
FIELD = "csrf_token"


def token() -> str:
    """This session's token, made on first use (the sign-in form gets one before anyone is signed in)."""
    value = session.get(FIELD)
    if not isinstance(value, str):
        value = session[FIELD] = secrets.token_urlsafe(32)
    return value


def check(sent: str | None) -> None:
    expected = session.get(FIELD)
    if not isinstance(expected, str) or not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise ApiError(403, "csrf_failed", "the request lacks this session's CSRF token; reload the page and retry")


def init_app(app: Flask) -> None:
    app.jinja_env.globals["csrf_token"] = token

    @app.before_request
    def _check_console_writes():
        if request.method in SAFE_METHODS or not request.path.startswith("/console"):
            return
        check(request.form.get(FIELD) or request.headers.get(HEADER))
