"""SSRF guard: webhooks go only to public http(s) addresses unless explicitly allowed.

The host is resolved once, every address is checked, and the POST connects to a checked address
(`post_pinned`): resolving again at connect time would let a DNS server answer "public" to the
check and "127.0.0.1" to the connection (DNS rebinding). The Host header, TLS SNI and the
certificate check still use the URL's host name.

Only a destination the guard refuses (`UnsafeTarget`: bad URL, forbidden address) is final. A host
that does not resolve right now (`UnreachableTarget`) is a DNS failure like a connect error:
the delivery is retried on its schedule, because a DNS blip must not lose events.
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import certifi
import urllib3

# A host with both IPv6 and IPv4 addresses gets a second chance when the first address refuses;
# more would stretch the worst-case time of one delivery (and so the worker's lease).
MAX_ADDRESSES_TRIED = 2


# socket.getaddrinfo's signature: (host, port, family, type, proto, flags) -> [(..., sockaddr)].
Resolver = Callable[..., list[tuple[Any, ...]]]


class UnsafeTarget(ValueError):
    """The webhook URL is malformed or points at a private, loopback or link-local address: final."""


class UnreachableTarget(OSError):
    """The webhook host does not resolve (or has no address) right now: transient, retried."""


@dataclass(frozen=True)
class Target:
    """A checked webhook URL and the addresses a delivery may connect to."""

    url: str
    scheme: str
    host: str
    port: int
    host_header: str
    path: str
    addresses: tuple[str, ...]


def validate_url_syntax(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UnsafeTarget("webhook_url must be an absolute http:// or https:// URL")
    if parsed.username or parsed.password:
        raise UnsafeTarget("webhook_url must not carry credentials")
    if len(url) > 2000:
        raise UnsafeTarget("webhook_url is longer than 2000 characters")
    try:
        parsed.port  # noqa: B018 - raises on a non-numeric or out-of-range port
    except ValueError:
        raise UnsafeTarget("webhook_url has an invalid port") from None
    return url


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_target(url: str, allow_private: bool = False, resolve: Resolver | None = None) -> Target:
    """Resolve `url`'s host once; raise UnsafeTarget unless every address is public (or allowed).

    Raises UnreachableTarget when the host does not resolve now. `resolve` stands for
    socket.getaddrinfo (looked up at call time, so tests can inject a resolver).
    """
    validate_url_syntax(url)
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = (resolve or socket.getaddrinfo)(parsed.hostname, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnreachableTarget(f"webhook host {parsed.hostname!r} does not resolve: {exc}") from None
    addresses: list[str] = []
    for info in infos:
        address = info[4][0]
        if not allow_private and not _is_public(address):
            raise UnsafeTarget(f"webhook host {parsed.hostname!r} resolves to non-public address {address}")
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnreachableTarget(f"webhook host {parsed.hostname!r} has no address")
    path = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
    return Target(url, parsed.scheme, parsed.hostname, port, parsed.netloc, path, tuple(addresses))


def _pool(target: Target, address: str, timeout_s: float) -> urllib3.HTTPConnectionPool:
    timeout = urllib3.Timeout(connect=timeout_s, read=timeout_s)
    if target.scheme == "https":
        # Connect to the checked address, but speak TLS to the URL's host: SNI and the
        # certificate's name are checked against it, exactly as an unpinned client would.
        return urllib3.HTTPSConnectionPool(address, target.port, timeout=timeout, retries=False, maxsize=1,
                                           cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(),
                                           server_hostname=target.host, assert_hostname=target.host)
    return urllib3.HTTPConnectionPool(address, target.port, timeout=timeout, retries=False, maxsize=1)


def post_pinned(target: Target, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    """POST `body` to a checked target, connecting only to its checked addresses; the status code.

    Raises urllib3.exceptions.HTTPError when no address answers. Redirects are never followed.
    """
    last_error: Exception | None = None
    for address in target.addresses[:MAX_ADDRESSES_TRIED]:
        pool = _pool(target, address, timeout_s)
        try:
            response = pool.urlopen("POST", target.path, body=body, headers={**headers, "Host": target.host_header},
                                    redirect=False, assert_same_host=False, preload_content=True)
            return response.status
        except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError) as exc:
            last_error = exc  # nothing was sent: the next address may answer
        finally:
            pool.close()
    assert last_error is not None
    raise last_error


def request_pinned(target: Target, method: str, body: bytes | None, headers: dict[str, str], timeout_s: float,
                   max_bytes: int) -> tuple[int, bytes, bool]:
    """Any method to a checked target, like post_pinned; (status, body read, whether the body was cut).

    At most max_bytes of the response are read: a customer endpoint cannot flood the process.
    """
    last_error: Exception | None = None
    for address in target.addresses[:MAX_ADDRESSES_TRIED]:
        pool = _pool(target, address, timeout_s)
        try:
            response = pool.urlopen(method, target.path, body=body, headers={**headers, "Host": target.host_header},
                                    redirect=False, assert_same_host=False, preload_content=False)
            try:
                data = response.read(max_bytes + 1)
            finally:
                response.release_conn()
            return response.status, data[:max_bytes], len(data) > max_bytes
        except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError) as exc:
            last_error = exc
        finally:
            pool.close()
    assert last_error is not None
    raise last_error
