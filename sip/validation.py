"""Validation and normalization of SIP account fields.

Everything here may end up inside FreeSWITCH XML or an ESL command, so values are checked
against allow-lists and refused otherwise: `$${...}` is expanded by FreeSWITCH's pre-processor
and `${...}` at run time, so neither can be allowed to appear in a password or a host.
"""
from __future__ import annotations

import ipaddress
import re

import phonenumbers

from fsconf import provision

HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
MIN_PASSWORD = 8


class FieldInvalid(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def sip_server(value: str | None) -> str | None:
    """host[:port] of the customer's PBX, or None for 'outbound disabled'."""
    if value is None or not str(value).strip():
        return None
    if not isinstance(value, str):
        raise FieldInvalid("sip_server", "sip_server must be a string host[:port]")
    host, _, port = value.strip().partition(":")
    if port:
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise FieldInvalid("sip_server", "sip_server port must be 1-65535")
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        labels = host.rstrip(".").split(".")
        if len(host) > 253 or len(labels) < 2 or not all(HOST_LABEL.match(label) for label in labels):
            raise FieldInvalid("sip_server", f"sip_server {value!r} is not a hostname or IPv4 address") from None
    return f"{host.lower().rstrip('.')}{':' + str(int(port)) if port else ''}"


def allowed_ips(value: str | list | None) -> str:
    """Comma-separated IPv4 addresses and CIDR blocks, normalized ("10.0.0.7/32" -> "10.0.0.7")."""
    if value is None or value == "":
        return ""
    items = value if isinstance(value, list) else str(value).split(",")
    normalized: list[str] = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        try:
            network = ipaddress.IPv4Network(item, strict=False)
        except ValueError:
            raise FieldInvalid("allowed_ips", f"{item!r} is not an IPv4 address or CIDR block") from None
        if network.prefixlen < 8:
            raise FieldInvalid("allowed_ips", f"{item} would admit too much of the internet (prefix under /8)")
        text = str(network.network_address) if network.prefixlen == 32 else str(network)
        if text not in normalized:
            normalized.append(text)
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
