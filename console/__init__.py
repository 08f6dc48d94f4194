"""The web console: server-rendered pages for the people of an organization, signed in with a password.

Pages are Jinja templates; what they change goes through the same /v1 API the keys use (a signed-in session
is accepted there, with its CSRF token on every write), so the console and the API share one validation and
one organization scope.
"""
from __future__ import annotations

import datetime as dt
import secrets

from flask import Flask, Response, request

from config import Config

# Drawn once per start, before `serve` forks its API workers, so every worker signs cookies alike.
_START_KEY = secrets.token_hex(32)


def init_app(app: Flask, config: Config) -> None:
    from console import agents, auth, calls, csrf, docs, numbers, openapi30, settings

    app.secret_key = config.console_secret_key or _START_KEY
    app.config.update(SESSION_COOKIE_NAME="voxbridge_session", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=config.console_cookies_secure,
                      PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=config.console_session_hours))
    app.extensions["voxbridge.sign_in_limiter"] = auth.SignInLimiter(config.console_sign_in_attempts)
    csrf.init_app(app)
    app.after_request(_page_headers)
    for blueprint in (auth.bp, agents.bp, numbers.bp, calls.bp, settings.bp, docs.bp, openapi30.bp):
        app.register_blueprint(blueprint)


# Console pages load nothing but this app's own scripts and styles (no CDN, no inline script), so the policy
# can forbid everything else; /docs runs Swagger UI, which sets inline styles and data: images.
_CONSOLE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
                "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
_DOCS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
             "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def _page_headers(response: Response) -> Response:
    if request.path.startswith(("/console", "/docs")):
        response.headers.setdefault("Content-Security-Policy",
                                    _DOCS_CSP if request.path.startswith("/docs") else _CONSOLE_CSP)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # A one-time sign-in link is in the URL: it must not leave in a Referer.
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype == "text/html":
            response.headers["Cache-Control"] = "no-store"  # signed-in pages stay out of shared caches
    return response
