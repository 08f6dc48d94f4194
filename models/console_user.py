"""People who sign in to the web console; each belongs to one organization (API keys stay for machines)."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

import peewee
from werkzeug.security import check_password_hash, generate_password_hash

from models.base import BaseModel, new_id, utcnow
from models.tenancy import Organization

SIGN_IN_LINK_TTL = dt.timedelta(hours=24)
MIN_PASSWORD = 10
# Checked against when the email is unknown, so a sign-in costs the same whether or not the account exists.
_DUMMY_HASH = generate_password_hash("voxbridge-no-such-user", method="scrypt")


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ConsoleUser(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=36, default=new_id)
    organization = peewee.ForeignKeyField(Organization, backref="console_users", on_delete="CASCADE")
    email = peewee.CharField(max_length=254, unique=True)  # normalized (normalize_email)
    password_hash = peewee.CharField(max_length=300, null=True)  # werkzeug scrypt; null until a password is set
    # Part of every session cookie: signing out bumps it, which ends every session of the user (a copied
    # cookie included); so does a new password.
    session_version = peewee.IntegerField(default=1)
    sign_in_token_hash = peewee.CharField(max_length=64, null=True)  # one-time link; only its hash is stored
    sign_in_token_expires_at = peewee.DateTimeField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    last_sign_in_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "console_user"

    def set_password(self, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"the password must be at least {MIN_PASSWORD} characters")
        self.password_hash = generate_password_hash(password, method="scrypt")
        self.session_version += 1

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    def issue_sign_in_token(self) -> str:
        """A one-time sign-in secret, valid SIGN_IN_LINK_TTL; returned once, stored hashed."""
        token = secrets.token_urlsafe(32)
        self.sign_in_token_hash = _token_hash(token)
        self.sign_in_token_expires_at = utcnow() + SIGN_IN_LINK_TTL
        self.save()
        return token

    @classmethod
    def authenticate(cls, email: str, password: str) -> ConsoleUser | None:
        user = cls.get_or_none(cls.email == normalize_email(email))
        if user is None:
            check_password_hash(_DUMMY_HASH, password)
            return None
        return user if user.check_password(password) else None

    @classmethod
    def redeem_sign_in_token(cls, token: str) -> ConsoleUser | None:
        """The user the link was issued to, once: the token is cleared in the same conditional update."""
        digest = _token_hash(token)
        user = cls.get_or_none(cls.sign_in_token_hash == digest)
        if user is None or not hmac.compare_digest(user.sign_in_token_hash, digest):
            return None
        taken = (cls.update(sign_in_token_hash=None, sign_in_token_expires_at=None)
                 .where(cls.id == user.id, cls.sign_in_token_hash == digest,
                        cls.sign_in_token_expires_at > utcnow()).execute())
        return user if taken == 1 else None
