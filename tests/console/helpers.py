"""Signing in to the console from a Flask test client, and the page's CSRF token."""
import re

PASSWORD = "correct horse battery"


def form_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def page_token(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


def sign_in(client, email: str, password: str = PASSWORD, **kwargs):
    token = form_token(client.get("/console/sign-in").text)
    return client.post("/console/sign-in", data={"email": email, "password": password, "csrf_token": token},
                       **kwargs)


def signed_in(client, email: str, password: str = PASSWORD) -> str:
    """Sign in and return the CSRF token the pages carry for their JSON calls."""
    response = sign_in(client, email, password)
    assert response.status_code == 302, response.text
    return page_token(client.get("/console/agents").text)


def make_user(org, email: str, password: str = PASSWORD):
    from models import ConsoleUser

    user = ConsoleUser(organization=org, email=email)
    user.set_password(password)
    user.save(force_insert=True)
    return user
