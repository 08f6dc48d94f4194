"""Console sign-in: password hashes, session cookies, the failed sign-in limit, sign-out, one-time links."""
import pytest

from config import load_config
from console.auth import SignInLimiter
from models import ConsoleUser
from tests.console.helpers import PASSWORD, form_token, make_user, sign_in, signed_in


@pytest.fixture
def user(org):
    return make_user(org, "ana@acme.test")


def test_pages_need_a_sign_in_and_the_api_still_needs_a_key(client, user):
    page = client.get("/console/calls")
    assert page.status_code == 302 and page.headers["Location"].startswith("/console/sign-in?next=/console/calls")
    assert client.get("/v1/calls").status_code == 401


def test_the_password_is_stored_as_a_scrypt_hash(user):
    stored = ConsoleUser.get_by_id(user.id).password_hash
    assert stored.startswith("scrypt:") and PASSWORD not in stored


def test_signing_in_sets_an_http_only_lax_cookie_and_opens_the_pages(client, user):
    response = sign_in(client, "ANA@acme.test ")
    assert response.status_code == 302 and response.headers["Location"] == "/console/calls"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    page = client.get("/console/calls")
    assert page.status_code == 200 and "ana@acme.test" in page.text and "Acme" in page.text


def test_cookies_are_secure_when_configured_or_served_over_https(db, org, user):
    from cryptography.fernet import Fernet

    from api import create_app

    for env in ({"CONSOLE_SECURE_COOKIES": "true"}, {"API_PUBLIC_URL": "https://voice.example.com"}):
        app = create_app(load_config(env, sip_secret_key=Fernet.generate_key().decode()))
        response = sign_in(app.test_client(), "ana@acme.test")
        assert response.status_code == 302 and "Secure" in response.headers["Set-Cookie"]


def test_a_wrong_password_or_unknown_email_is_the_same_refusal(client, user):
    wrong = sign_in(client, "ana@acme.test", "not the password")
    unknown = sign_in(client, "nobody@acme.test", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "Email or password is not right." in wrong.text and "Email or password is not right." in unknown.text
    assert client.get("/console/calls").status_code == 302


def test_failed_sign_ins_are_limited_per_email_and_address(db, org, user):
    from cryptography.fernet import Fernet

    from api import create_app

    app = create_app(load_config({"CONSOLE_SIGN_IN_ATTEMPTS": "3"}, sip_secret_key=Fernet.generate_key().decode()))
    client = app.test_client()
    for _ in range(3):
        assert sign_in(client, "ana@acme.test", "guess").status_code == 401
    # The right password is refused too while the limit holds: the limit is what stops the guessing.
    blocked = sign_in(client, "ana@acme.test", PASSWORD)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins" in blocked.text
    # Another client address, or another email from this one, is not blocked by it.
    elsewhere = sign_in(app.test_client(), "ana@acme.test", PASSWORD, environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert elsewhere.status_code == 302
    assert sign_in(client, "other@acme.test", "guess").status_code == 401


def test_the_limiter_window_slides():
    limiter = SignInLimiter(2, window_s=900)
    key = ("ana@acme.test", "192.0.2.1")
    limiter.failed(key, now=0)
    limiter.failed(key, now=100)
    assert limiter.retry_after(key, now=101) == pytest.approx(799)
    assert limiter.retry_after(key, now=900) == 0  # the first failure has left the window
    limiter.succeeded(key)
    assert limiter.retry_after(key, now=901) == 0


def test_signing_out_ends_the_session_and_any_copy_of_its_cookie(client, user):
    signed_in(client, "ana@acme.test")
    copied = client.get_cookie("voxbridge_session").value
    token = form_token(client.get("/console/agents").text)
    out = client.post("/console/sign-out", data={"csrf_token": token})
    assert out.status_code == 302 and out.headers["Location"] == "/console/sign-in"
    assert client.get("/console/calls").status_code == 302
    client.set_cookie("voxbridge_session", copied)
    assert client.get("/console/calls").status_code == 302
    assert client.get("/v1/calls").status_code == 401


def test_sign_in_redirects_only_to_this_site(client, user):
    token = form_token(client.get("/console/sign-in").text)
    for target, landing in (("//evil.example/x", "/console/calls"), ("https://evil.example/", "/console/calls"),
                            ("/console/numbers", "/console/numbers")):
        client.post("/console/sign-out", data={"csrf_token": token})
        token = form_token(client.get("/console/sign-in").text)
        response = client.post("/console/sign-in", data={"email": "ana@acme.test", "password": PASSWORD,
                                                         "csrf_token": token, "next": target})
        assert response.headers["Location"] == landing
        token = form_token(client.get("/console/agents").text)


def test_a_one_time_link_signs_in_once_then_a_password_is_chosen(client, org):
    user = ConsoleUser.create(organization=org, email="new@acme.test")
    link = f"/console/sign-in/link/{user.issue_sign_in_token()}"
    assert ConsoleUser.get_by_id(user.id).sign_in_token_hash not in link  # only its hash is stored
    page = client.get(link)
    assert page.status_code == 200 and client.get("/console/calls").status_code == 302  # a GET spends nothing
    used = client.post(link, data={"csrf_token": form_token(page.text)})
    assert used.status_code == 302 and used.headers["Location"] == "/console/password"
    choose = client.get("/console/password")
    short = client.post("/console/password", data={"csrf_token": form_token(choose.text), "new": "short",
                                                   "again": "short"})
    assert short.status_code == 422 and "at least 10 characters" in short.text
    saved = client.post("/console/password", data={"csrf_token": form_token(choose.text),
                                                   "new": "a long new password", "again": "a long new password"})
    assert saved.status_code == 302
    other = client.application.test_client()
    again = other.post(link, data={"csrf_token": form_token(other.get(link).text)})
    assert again.status_code == 400 and "used already or has expired" in again.text
    assert sign_in(other, "new@acme.test", "a long new password").status_code == 302


def test_an_expired_link_does_not_sign_in(client, org):
    import datetime as dt

    user = ConsoleUser.create(organization=org, email="late@acme.test")
    link = f"/console/sign-in/link/{user.issue_sign_in_token()}"
    ConsoleUser.update(sign_in_token_expires_at=dt.datetime(2020, 1, 1)).where(ConsoleUser.id == user.id).execute()
    response = client.post(link, data={"csrf_token": form_token(client.get(link).text)})
    assert response.status_code == 400 and client.get("/console/calls").status_code == 302


def test_a_bad_console_secret_key_is_refused():
    from config import ConfigError

    with pytest.raises(ConfigError, match="CONSOLE_SECRET_KEY") as raised:
        load_config({"CONSOLE_SECRET_KEY": "too-short"})
    assert "too-short" not in str(raised.value)  # a secret is never echoed
    assert load_config({"CONSOLE_SECRET_KEY": "k" * 40}).console_secret_key == "k" * 40
