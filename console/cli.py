"""`app.py create-org --email` and `app.py add-user`: console users made from the command line."""
from __future__ import annotations

import argparse
import re

from config import Config
from models import ConsoleUser, Organization


def check_user_args(args: argparse.Namespace) -> str | None:
    """Why --email/--password cannot make a console user, or None."""
    from models.console_user import MIN_PASSWORD, normalize_email

    if args.email is None:
        return "--password needs --email" if args.password is not None else None
    email = normalize_email(args.email)
    if not re.fullmatch(r"[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{1,60}", email):
        return f"--email {args.email!r} is not an email address"
    if ConsoleUser.select().where(ConsoleUser.email == email).exists():
        return f"--email: a console user {email} already exists"
    if args.password is not None and len(args.password) < MIN_PASSWORD:
        return f"--password must be at least {MIN_PASSWORD} characters"
    return None


def create_user(config: Config, org: Organization, args: argparse.Namespace) -> None:
    from models.console_user import normalize_email

    user = ConsoleUser(organization=org, email=normalize_email(args.email))
    if args.password is not None:
        user.set_password(args.password)
        user.save(force_insert=True)
        print(f"console user {user.email}: sign in at {console_url(config)}/console/sign-in")
        return
    user.save(force_insert=True)
    token = user.issue_sign_in_token()
    print(f"console user {user.email}: one-time sign-in link (valid 24 h, then choose a password):")
    print(f"  {console_url(config)}/console/sign-in/link/{token}")


def console_url(config: Config) -> str:
    if config.api_public_url:
        return config.api_public_url.rstrip("/")
    host = "127.0.0.1" if config.api_host in ("0.0.0.0", "::") else config.api_host
    return f"http://{host}:{config.api_port}"
