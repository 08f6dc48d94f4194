"""Validation and normalization of SIP account fields.

Everything here may end up inside FreeSWITCH XML or an ESL command, so values are checked
against allow-lists and refused otherwise: `$${...}` is expanded by FreeSWITCH's pre-processor
and `${...}` at run time, so neither can be allowed to appear in a password or a host.
"""
from __future__ import annotations

import ipaddress

import phonenumbers

from fsconf import provision

MIN_PASSWORD = 8


class FieldInvalid(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def sip_server(value: str | None) -> str | None:
    """host[:port] of the customer's PBX, or None for 'outbound disabled'.

    fsconf.provision's own validator decides, so the API refuses (422) exactly what provisioning
    would refuse later (999.1.1.1 looks like a hostname to a label check, not to FreeSWITCH)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise FieldInvalid("sip_server", "sip_server must be a string host[:port]")
    try:
        host, port = provision.parse_sip_server(value.strip())
    except provision.ProvisionError as exc:
        raise FieldInvalid("sip_server", f"sip_server: {exc}") from None
    if "." not in host:  # a bare name (localhost, an internal alias) is no customer PBX
        raise FieldInvalid("sip_server", f"sip_server {value!r}: use a fully qualified hostname or an IPv4 address")
    return f"{host}:{port}" if port is not None else host


def allowed_ips(value: str | list | None) -> str:
    """Comma-separated IPv4 addresses and CIDR blocks, normalized ("10.0.0.7/32" -> "10.0.0.7"),
    within fsconf.provision's limits (at most 32: FreeSWITCH splits a cidr attribute into 32)."""
    if value is None or value == "":
        return ""
    items = value if isinstance(value, list) else str(value).split(",")
    if not all(isinstance(i, str) for i in items):
        raise FieldInvalid("allowed_ips", "allowed_ips must be a comma-separated string or a list of strings")
    try:
        networks = provision.normalize_cidrs(items)
    except provision.ProvisionError as exc:
        raise FieldInvalid("allowed_ips", f"allowed_ips: {exc}") from None
    normalized: list[str] = []
    for text in networks:
        network = ipaddress.IPv4Network(text)
        if network.prefixlen < 8:
            raise FieldInvalid("allowed_ips", f"{text} would admit too much of the internet (prefix under /8)")
        normalized.append(str(network.network_address) if network.prefixlen == 32 else text)
    return ",".join(normalized)


def country(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    code = str(value).strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise FieldInvalid("country", f"country {value!r} is not an ISO 3166 alpha-2 code")
    return code


def username(value: str | None, field: str) -> str | None:
    """The same allow-list the XML generator enforces, so a bad value is a 422, never a failed provision."""
    if value is None or value == "":
        return None
    try:
        return provision.validate_username(value)
    except provision.ProvisionError as exc:
        raise FieldInvalid(field, f"{field}: {exc}") from None


# Ids the directory already uses: an inbound username is the PBX's number-alias in the same
# domain, so one equal to another user's id would authenticate as that user.
RESERVED_INBOUND_USERNAMES = frozenset({"softphone"})   # freeswitch/optional/softphone-user.xml
RESERVED_INBOUND_PREFIX = "vb_"                         # vb_user_<hex> and every generated name


def inbound_username(value: str | None) -> str | None:
    name = username(value, "inbound_username")
    if name is not None and (name.lower() in RESERVED_INBOUND_USERNAMES
                             or name.lower().startswith(RESERVED_INBOUND_PREFIX)):
        raise FieldInvalid("inbound_username", f"inbound_username {name!r} is reserved (it names a FreeSWITCH "
                                               "directory user); choose another")
    return name


def password(value: str | None, field: str) -> str | None:
    if value is None or value == "":
        return None
    try:
        provision.validate_password(value)
    except provision.ProvisionError as exc:
        raise FieldInvalid(field, f"{field}: {exc}") from None
    if len(value) < MIN_PASSWORD:
        raise FieldInvalid(field, f"{field} must be at least {MIN_PASSWORD} characters")
    return value
