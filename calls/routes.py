"""Which way a call leaves: the organization's SIP account gateway or the platform trunk, the variables
dialplan/outbound.xml reads, the caller name, and where a REFER sends the call. Shared by the dialer and
call control (a bridge transfer leaves the same way an outbound call does)."""
from __future__ import annotations

from calls import dialing
from calls.control_context import ControlContext
from models import Call, Organization, SipAccount


class AccountNotProvisioned(Exception):
    """The organization has a SIP account for outbound calls, but FreeSWITCH has no gateway for it yet.

    Dialing through the platform trunk instead would send the customer's calls out under the wrong
    caller and bill; the attempt fails retryable, so a Reprovision before the next attempt saves it."""

    def __init__(self, account_id: str) -> None:
        super().__init__(f"SIP account {account_id} is not provisioned in FreeSWITCH; run Reprovision")
        self.account_id = account_id


class OutboundRoutes:
    def __init__(self, ctx: ControlContext, dial_rules: dialing.DialRules) -> None:
        self.ctx = ctx
        self.dial_rules = dial_rules

    def dialplan_vars(self, call: Call) -> dict[str, str]:
        """What dialplan/outbound.xml reads: caller ID, home country code, the international gate."""
        return {"vb_caller_id": call.from_number or "",
                "vb_country_code": self.dial_rules.country_code,
                "vb_international_enabled": "true" if self.dial_rules.international_enabled else "false"}

    @staticmethod
    def caller_name(call: Call) -> str | None:
        org = Organization.get_or_none(Organization.id == call.organization_id)
        return org.name if org else None

    def gateway(self, call: Call) -> str | None:
        """The organization's first provisioned outbound account's gateway, else the platform trunk.

        Raises AccountNotProvisioned when the organization has outbound accounts but none is provisioned:
        its calls must not leave through the platform trunk unnoticed."""
        accounts = list(SipAccount.select().where(SipAccount.organization == call.organization_id,
                                                  SipAccount.deleted_at.is_null(),
                                                  SipAccount.sip_server.is_null(False))
                        .order_by(SipAccount.created_at, SipAccount.id))
        provisioned = [a for a in accounts if a.provisioned]
        if provisioned:
            return provisioned[0].gateway_name
        if accounts:
            raise AccountNotProvisioned(accounts[0].id)
        return self.ctx.config.outbound_gateway or None

    def refer_host(self, call: Call) -> str:
        """Where a REFER sends the call: the organization's PBX when it has one, else the platform's domain."""
        account = (SipAccount.select().where(SipAccount.organization == call.organization_id,
                                             SipAccount.deleted_at.is_null(), SipAccount.sip_server.is_null(False))
                   .order_by(SipAccount.created_at).first())
        return account.sip_server if account is not None else self.ctx.config.sip_domain
