"""Which customer SIP account an inbound call came through, decided by the dialed number.

FreeSWITCH admits an IP-trust PBX through the `vb_accounts` ACL list, built from the `cidr` attribute of
each account's directory user. When several accounts allow the same address (a cloud PBX such as seed
002's Mango Office serves many customers from a few IPs), sofia attributes the INVITE to the one user
whose ACL node wins the lookup (switch_network_list_validate_ip_token: the longest prefix, and among
equal prefixes the node added last) and sets *that* user's variables, vb_account_id among them. That
user says nothing about which customer the call is for: the dialed number does. So for calls admitted
by `vb_accounts` the account is chosen among those that allow the source address, by the number:

  - a number bound to an account: that account, if it allows the address;
  - a number bound to no account: any account of the number's organization that allows the address;
  - otherwise the call is rejected, and the reason names the number and the address.

Digest-authenticated calls keep the account their credentials name (one account per username), and calls
admitted by the platform's own lists (carriers, pbx) carry no account and may reach any number.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from models import PhoneNumber, SipAccount

IP_TRUST_LIST = "vb_accounts"  # fsconf.provision.IP_TRUST_ACL: the list sofia admitted the INVITE by


@dataclass(frozen=True)
class InboundOrigin:
    """How FreeSWITCH admitted the call, from the channel variables the socket `connect` carries."""

    account: str | None = None     # vb_account_id (account id without dashes) of the directory user
    acl_list: str | None = None    # sip_acl_authed_by: the ACL list that admitted the source address
    source_ip: str | None = None   # sip_network_ip: the address the INVITE came from
    proxied_ip: str | None = None  # X-AUTH-IP: the caller's address as a Kamailio front end saw it

    @classmethod
    def from_channel(cls, channel: Any) -> InboundOrigin:
        """`channel`: anything with .get(header) (esl's channel data, a dict)."""
        get = channel.get if channel is not None else {}.get
        return cls(account=get("variable_vb_account_id") or None,
                   acl_list=get("variable_sip_acl_authed_by") or None,
                   source_ip=get("variable_sip_network_ip") or get("Caller-Network-Addr") or None,
                   proxied_ip=get("variable_sip_h_X-AUTH-IP") or None)

    @property
    def ip_trusted(self) -> bool:
        return self.acl_list == IP_TRUST_LIST


@dataclass(frozen=True)
class Attribution:
    account_id: str | None      # the SipAccount the call belongs to (None: a platform trunk)
    rejection: str | None = None  # why the call may not reach the number, when it may not


def _allows(account: SipAccount, ip: ipaddress.IPv4Address) -> bool:
    for item in (account.allowed_ips or "").split(","):
        try:
            if item.strip() and ip in ipaddress.IPv4Network(item.strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


def _ip_trust_accounts():
    return SipAccount.select().where(SipAccount.deleted_at.is_null(), SipAccount.inbound_username.is_null())


def _address(text: str | None) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(text or "")
    except ValueError:
        return None


def admitted_address(origin: InboundOrigin) -> ipaddress.IPv4Address | None:
    """The address sofia checked against vb_accounts. It tries the packet's source first; only when no list
    admits that (a Kamailio front end, in sip_proxies) does it check the X-AUTH-IP the proxy added. So the
    header counts only when no customer account allows the packet's source: a caller that adds its own
    X-AUTH-IP while sending from an allowed PBX address cannot choose another customer's account."""
    direct = _address(origin.source_ip)
    if direct is not None and any(_allows(account, direct) for account in _ip_trust_accounts()):
        return direct
    return _address(origin.proxied_ip) or direct


def _by_source_address(number: PhoneNumber, did: str, origin: InboundOrigin) -> Attribution:
    ip = admitted_address(origin)
    if ip is None:
        return Attribution(None, f"{did}: the call was admitted by IP but carries no usable source address "
                                 f"({(origin.source_ip or 'none')[:45]!r})")
    query = _ip_trust_accounts()
    if number.sip_account_id:
        query = query.where(SipAccount.id == number.sip_account_id)
    else:
        query = query.where(SipAccount.organization == number.organization_id)
    for account in query.order_by(SipAccount.created_at, SipAccount.id):
        if _allows(account, ip):
            return Attribution(account.id)
    return Attribution(None, f"{did} is not a number of any SIP account that allows calls from {ip}")


def _by_account(number: PhoneNumber, did: str, account_hex: str) -> Attribution:
    """The call names its account (Digest credentials): it may reach that account's numbers, or its
    organization's numbers bound to no account."""
    if number.sip_account_id:
        if number.sip_account_id.replace("-", "") == account_hex:
            return Attribution(number.sip_account_id)
    else:
        owners = SipAccount.select(SipAccount.id).where(SipAccount.organization == number.organization_id)
        for account in owners:
            if account.id.replace("-", "") == account_hex:
                return Attribution(account.id)
    return Attribution(None, f"{did} is not a number of the SIP account the call came from")


def attribute(number: PhoneNumber, did: str, origin: InboundOrigin) -> Attribution:
    """The account a call to `number` belongs to, or why it may not reach it."""
    if origin.ip_trusted:
        return _by_source_address(number, did, origin)
    if origin.account:
        return _by_account(number, did, origin.account)
    return Attribution(None)
