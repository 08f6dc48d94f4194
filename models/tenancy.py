"""Organizations (tenants) and the API keys that act for them."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable

import peewee

from models.base import BaseModel, new_id, utcnow

KEY_PREFIX = "vb_live_"


def name_key(name: str) -> str:
    """What makes two organization names the same: case (Unicode casefold) and runs of spaces ignored."""
    return " ".join(name.casefold().split())


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


class Organization(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=36, default=new_id)
    name = peewee.CharField(max_length=200)
    # Unique (migration 4): `issue-key "Acme"` must name one organization. Kept by save().
    name_key = peewee.CharField(max_length=200, null=True, unique=True)
    minutes_included = peewee.IntegerField(default=1000)
    minutes_used = peewee.IntegerField(default=0)
    webhook_url = peewee.CharField(max_length=2000, null=True)
    webhook_secret = peewee.CharField(max_length=100, default=new_webhook_secret)
    # After a rotation the replaced secret still signs deliveries until it expires (migration 5).
    previous_webhook_secret = peewee.CharField(max_length=100, null=True)
    previous_secret_expires_at = peewee.DateTimeField(null=True)
    default_caller_id = peewee.CharField(max_length=20, null=True)
    # Asked before an inbound call is answered for variables, another agent or a rejection (migration 8).
    inbound_webhook_url = peewee.CharField(max_length=2000, null=True)
    max_concurrent_calls = peewee.IntegerField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)

    def save(self, *args, **kwargs):
        self.name_key = name_key(self.name)
        return super().save(*args, **kwargs)

    def signing_secrets(self, now: dt.datetime | None = None) -> list[str]:
        """The secrets deliveries are signed with: the current one, and the replaced one until it expires."""
        now = now or utcnow()
        live = self.previous_webhook_secret and self.previous_secret_expires_at and \
            self.previous_secret_expires_at > now
        return [self.webhook_secret, self.previous_webhook_secret] if live else [self.webhook_secret]

    @property
    def minutes_exhausted(self) -> bool:
        return self.minutes_used >= self.minutes_included


def drop_expired_signing_secrets(now: dt.datetime | None = None) -> int:
    """Forget secrets whose rotation overlap is over (signing already ignores them); how many went."""
    return (Organization.update(previous_webhook_secret=None, previous_secret_expires_at=None)
            .where(Organization.previous_secret_expires_at <= (now or utcnow())).execute())


# Called with the key's id after a revocation commits. The API's key caches subscribe so that a
# revoked key stops working at once in this process (other processes: within their cache TTL).
REVOCATION_LISTENERS: list[Callable[[str], None]] = []


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKey(BaseModel):
    """Only a hash is stored; the prefix finds the row without scanning every hash."""

    id = peewee.CharField(primary_key=True, max_length=36, default=new_id)
    organization = peewee.ForeignKeyField(Organization, backref="api_keys", on_delete="CASCADE")
    name = peewee.CharField(max_length=200, default="default")
    prefix = peewee.CharField(max_length=32, unique=True)
    key_hash = peewee.CharField(max_length=64)
    created_at = peewee.DateTimeField(default=utcnow)
    revoked_at = peewee.DateTimeField(null=True)
    last_used_at = peewee.DateTimeField(null=True)  # to the minute (api.auth), migration 5

    @classmethod
    def issue(cls, organization: Organization, name: str = "default") -> tuple[ApiKey, str]:
        """Create a key; the plaintext is returned once and never stored."""
        prefix = secrets.token_hex(6)
        plaintext = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        key = cls.create(organization=organization, name=name, prefix=prefix, key_hash=hash_key(plaintext))
        return key, plaintext

    @classmethod
    def authenticate(cls, plaintext: str) -> ApiKey | None:
        if not plaintext.startswith(KEY_PREFIX):
            return None
        prefix = plaintext[len(KEY_PREFIX):].split("_", 1)[0]
        key = (cls.select(cls, Organization).join(Organization)
               .where(cls.prefix == prefix, cls.revoked_at.is_null()).first())
        if key is None or not hmac.compare_digest(key.key_hash, hash_key(plaintext)):
            return None
        return key

    def revoke(self) -> None:
        self.revoked_at = utcnow()
        self.save()
        for listener in list(REVOCATION_LISTENERS):
            listener(self.id)
