"""SSRF guard: webhooks go only to public http(s) addresses unless explicitly allowed."""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlparse


class UnsafeTarget(ValueError):
    """The webhook URL is malformed or points at a private, loopback or link-local address."""


def validate_url_syntax(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UnsafeTarget("webhook_url must be an absolute http:// or https:// URL")
    if parsed.username or parsed.password:
        raise UnsafeTarget("webhook_url must not carry credentials")
    if len(url) > 2000:
        raise UnsafeTarget("webhook_url is longer than 2000 characters")
    return url


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_target(url: str, allow_private: bool = False) -> None:
    """Raise UnsafeTarget unless every address `url`'s host resolves to is public."""
    validate_url_syntax(url)
    if allow_private:
        return
    parsed = urlparse(url)
    try:
        infos = socket.getaddrinfo(parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80),
                                   proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise UnsafeTarget(f"webhook host {parsed.hostname!r} does not resolve: {exc}") from None
    for info in infos:
        address = info[4][0]
        if not _is_public(address):
            raise UnsafeTarget(f"webhook host {parsed.hostname!r} resolves to non-public address {address}")
