"""Console sign-in: email and password (werkzeug scrypt hashes), signed session cookies, sign-out,
one-time sign-in links (`app.py create-org --email`), a limit on failed sign-ins per email and client
address, and the session as a credential for the /v1 API the pages call."""
from __future__ import annotations

import functools
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for

from api.errors import ApiError
from console import csrf
from models import ConsoleUser, Organization, utcnow

bp = Blueprint("console_auth", __name__, template_folder="templates", static_folder="static",
               static_url_path="/console/static")

WINDOW_S = 15 * 60


class SignInLimiter:
    """Failed sign-ins per (email, client address) in a sliding 15-minute window. Keyed on both so that
    one address guessing many accounts, and many addresses guessing one account, are each slowed
    without letting an attacker lock a user out from everywhere."""

    def __init__(self, attempts: int, window_s: float = WINDOW_S):
        self.attempts = attempts
        self.window_s = window_s
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures

    def retry_after(self, key: tuple[str, str], now: float | None = None) -> float:
        """0 when a sign-in may be tried, else the seconds until one may."""
        now = time.monotonic() if now is None else now
        with self._lock:
            failures = self._recent(key, now)
            if len(failures) < self.attempts:
                return 0.0
            return failures[-self.attempts] + self.window_s - now

    def failed(self, key: tuple[str, str], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._failures) > 100_000:  # bounded memory under a spray of addresses
                self._failures.clear()
            failures = self._recent(key, now)
            failures.append(now)
            self._failures[key] = failures

    def succeeded(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._failures.pop(key, None)


def current_user() -> ConsoleUser | None:
    """The signed-in user, or None (no session, or one ended by a sign-out or a new password)."""
    if "console_user" in g:
        return g.console_user
    user = None
    uid, version = session.get("uid"), session.get("ver")
    if isinstance(uid, str) and isinstance(version, int):
        found = (ConsoleUser.select(ConsoleUser, Organization).join(Organization)
                 .where(ConsoleUser.id == uid).first())
        if found is not None and found.session_version == version:
            user = found
    g.console_user = user
    return user


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user = current_user()
        if user is None:
            return redirect(url_for("console_auth.sign_in", next=request.full_path.rstrip("?")))
        g.org = user.organization
        return view(*args, **kwargs)

    return wrapper


def api_session() -> bool:
    """Authenticate a /v1 request made by a console page: no Authorization header, a valid session, and on
    a write the session's CSRF token in X-CSRF-Token. False leaves the request to the API-key check."""
    if "Authorization" in request.headers or "uid" not in session:
        return False
    user = current_user()
    if user is None:
        return False
    if request.method not in csrf.SAFE_METHODS:
        csrf.check(request.headers.get(csrf.HEADER))
    wait = current_app.extensions["voxbridge.api_rate_limiter"].take(f"console:{user.id}")
    if wait:
        raise ApiError(429, "rate_limited", "too many requests from this console session; retry later",
                       headers={"Retry-After": str(max(1, math.ceil(wait)))})
    g.org = user.organization
    return True


def _safe_next(target: str | None) -> str:
    """Only a path on this site: an absolute or scheme-relative URL would make sign-in an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("console_calls.list_calls")


def _start_session(user: ConsoleUser) -> None:
    session.clear()  # a fresh session (and CSRF token) at sign-in: no fixation of a pre-sign-in one
    session.permanent = True
    session["uid"] = user.id
    session["ver"] = user.session_version
    ConsoleUser.update(last_sign_in_at=utcnow()).where(ConsoleUser.id == user.id).execute()


@bp.get("/console/sign-in")
def sign_in():
    if current_user() is not None:
        return redirect(_safe_next(request.args.get("next")))
    return render_template("sign_in.html", email="", error=None, next=request.args.get("next", ""))


@bp.post("/console/sign-in")
def sign_in_post():
    email = request.form.get("email", "").strip()[:254]
    password = request.form.get("password", "")[:1000]
    target = request.form.get("next", "")
    limiter: SignInLimiter = current_app.extensions["voxbridge.sign_in_limiter"]
    key = (email.lower(), request.remote_addr or "")
    wait = limiter.retry_after(key)
    if wait:
        minutes = max(1, math.ceil(wait / 60))
        return render_template("sign_in.html", email=email, next=target,
                               error=f"Too many failed sign-ins. Try again in {minutes} minute(s)."), 429, \
            {"Retry-After": str(math.ceil(wait))}
    user = ConsoleUser.authenticate(email, password) if email and password else None
    if user is None:
        limiter.failed(key)
        return render_template("sign_in.html", email=email, next=target,
                               error="Email or password is not right."), 401
    limiter.succeeded(key)
    _start_session(user)
    return redirect(_safe_next(target))


@bp.get("/console/sign-in/link/<token>")
def sign_in_link(token: str):
    """A one-time link shows a button; the POST spends it (a link scanner's GET must not)."""
    return render_template("sign_in_link.html", token=token)


@bp.post("/console/sign-in/link/<token>")
def sign_in_link_post(token: str):
    user = ConsoleUser.redeem_sign_in_token(token[:200])
    if user is None:
        return render_template("sign_in.html", email="", next="",
                               error="That sign-in link was used already or has expired."), 400
    _start_session(user)
    return redirect(url_for("console_auth.password"))


@bp.post("/console/sign-out")
def sign_out():
    user = current_user()
    if user is not None:
        # Every session of the user ends, including any copy of this cookie.
        ConsoleUser.update(session_version=ConsoleUser.session_version + 1).where(ConsoleUser.id == user.id).execute()
    session.clear()
    return redirect(url_for("console_auth.sign_in"))


@bp.route("/console/password", methods=["GET", "POST"])
@login_required
def password():
    user: ConsoleUser = g.console_user
    error = None
    if request.method == "POST":
        current, new, again = (request.form.get(k, "")[:1000] for k in ("current", "new", "again"))
        if user.password_hash and not user.check_password(current):
            error = "The current password is not right."
        elif new != again:
            error = "The two new passwords differ."
        else:
            try:
                user.set_password(new)
            except ValueError as exc:
                error = str(exc)
            else:
                user.save()
                _start_session(user)
                return redirect(url_for("console_calls.list_calls"))
    return render_template("password.html", needs_current=bool(user.password_hash), error=error), \
        (422 if error else 200)


@bp.get("/")
@bp.get("/console")
def home():
    return redirect(url_for("console_calls.list_calls"))
