"""Putting a SIP account into FreeSWITCH, and checking it is there.

The Provisioner used when telephony is configured lives in sip/freeswitch.py; OfflineProvisioner
keeps the API fully usable without FreeSWITCH: accounts are saved and reported as not provisioned,
to be pushed later with Reprovision.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from models import SipAccount
from sip.secrets_box import SecretBox, SecretsUnavailable

OK, FAILED, SKIPPED = "ok", "failed", "skipped"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    reason: str | None = None

    def as_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "reason": self.reason}


@dataclass
class ProvisionResult:
    ok: bool
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


class Provisioner(Protocol):
    def provision(self, account: SipAccount) -> ProvisionResult: ...

    def deprovision(self, account: SipAccount) -> ProvisionResult: ...

    def verify(self, account: SipAccount) -> list[Check]: ...

    def live_calls(self, account: SipAccount) -> int: ...


def local_check(account: SipAccount, box: SecretBox) -> Check:
    """Required fields set, pairs complete, stored passwords readable."""
    problems = []
    inbound = bool(account.allowed_ips or account.inbound_username)
    if not account.sip_server and not inbound:
        problems.append("neither outbound (sip_server) nor inbound (allowed_ips or credentials) is configured")
    for direction in ("outbound", "inbound"):
        user = getattr(account, f"{direction}_username")
        secret = getattr(account, f"{direction}_password_enc")
        if bool(user) != bool(secret):
            problems.append(f"{direction} username and password must be set together")
    if account.inbound_username and not account.allowed_ips:
        pass  # Digest alone is allowed: the PBX may come from changing addresses.
    try:
        box.decrypt(account.outbound_password_enc)
        box.decrypt(account.inbound_password_enc)
    except SecretsUnavailable as exc:
        problems.append(str(exc))
    return Check("local_config", FAILED, "; ".join(problems)) if problems else Check("local_config", OK)


class OfflineProvisioner:
    """Telephony is not configured: nothing can be pushed, and Verify says why."""

    REASON = "telephony is not configured (set FREESWITCH_ESL_HOST); use reprovision once it is"

    def __init__(self, box: SecretBox):
        self.box = box

    def provision(self, account: SipAccount) -> ProvisionResult:
        return ProvisionResult(False, self.REASON)

    def deprovision(self, account: SipAccount) -> ProvisionResult:
        return ProvisionResult(True)

    def verify(self, account: SipAccount) -> list[Check]:
        return [local_check(account, self.box)] + [
            Check(name, SKIPPED, self.REASON) for name in ("inbound_trunk", "outbound_trunk", "numbers_in_sync")]

    def live_calls(self, account: SipAccount) -> int:
        return 0
