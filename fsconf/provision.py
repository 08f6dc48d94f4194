"""XML for one customer SIP account: its gateway, its ACL list, its directory user.

Pure functions: validated values in, XML text out (plus where each file goes under the
FreeSWITCH configuration directory, and the ESL commands that apply it without a restart).
Names are derived from the account id only (vb_gw_<hex>, vb_acl_<hex>, vb_user_<hex>);
user text (hosts, usernames, passwords, CIDRs) is validated against strict patterns *and*
XML-escaped. Two extra rules come from FreeSWITCH's line-based preprocessor, which reads
these files before any XML parser does: "$$" followed by "{" would be expanded, and a line
mentioning "X-PRE-PROCESS" is dropped whole, so both are refused.

Inbound modes (directory user in the "voxbridge" domain):
  digest    id vb_user_<hex>, number-alias = the inbound username the PBX authenticates
            with, its password, auth-acl = vb_acl_<hex> when allowed IPs are set;
  IP-trust  no credentials: a `cidr` attribute lists the allowed IPs, which the
            vb_accounts ACL list admits without a challenge. The user still gets a random
            password nobody knows, because sofia accepts any Digest answer for a user
            without one, and the same auth-acl.
"""
from __future__ import annotations

import ipaddress
import os
import re
import secrets
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

TRANSPORTS = ("auto", "udp", "tcp", "tls")
DIRECTORY_DOMAIN = "voxbridge"
# The list that admits IP-trust PBXs: acl.conf.xml builds it from the users' cidr attributes.
IP_TRUST_ACL = "vb_accounts"
GATEWAY_DIR = "sip_profiles/external"
ACL_DIR = "acl.d"
USER_DIR = "directory/voxbridge"
# Placeholder credentials for IP-trust gateways: sofia wants both params; a PBX that
# challenges anyway answers 403, which is the right diagnosis (auth mismatch).
IP_TRUST_USERNAME = "voxbridge"
IP_TRUST_PASSWORD = "ip-trust-no-auth"  # noqa: S105 - a placeholder, not a secret (see above)

_USERNAME = re.compile(r"[A-Za-z0-9._~+-]{1,64}")
_PASSWORD = re.compile(r"[A-Za-z0-9._~!*+=@#%^:/?-]{1,128}")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_MAX_CIDRS = 32  # FreeSWITCH splits a cidr attribute into at most 32 entries


class ProvisionError(ValueError):
    """A value cannot be written into FreeSWITCH configuration."""


@dataclass(frozen=True)
class GeneratedFile:
    path: str      # relative to the FreeSWITCH configuration directory
    content: str


# -- names --------------------------------------------------------------------------------
def account_hex(account_id: str | uuid.UUID) -> str:
    """The 32 lowercase hex digits of a UUID account id."""
    try:
        return (account_id if isinstance(account_id, uuid.UUID) else uuid.UUID(str(account_id))).hex
    except ValueError as exc:
        raise ProvisionError(f"account id must be a UUID, got {account_id!r}") from exc


def gateway_name(account_id: str | uuid.UUID) -> str:
    return f"vb_gw_{account_hex(account_id)}"


def acl_name(account_id: str | uuid.UUID) -> str:
    return f"vb_acl_{account_hex(account_id)}"


def user_id(account_id: str | uuid.UUID) -> str:
    return f"vb_user_{account_hex(account_id)}"


# -- validation ---------------------------------------------------------------------------
def _safe(value: str, what: str) -> str:
    if "$${" in value or "x-pre-process" in value.lower():
        raise ProvisionError(f"{what}: contains text the FreeSWITCH preprocessor would interpret")
    return value


def validate_username(value: str) -> str:
    if not isinstance(value, str) or not _USERNAME.fullmatch(value):
        raise ProvisionError("username: 1-64 characters among letters, digits and . _ ~ + -")
    return _safe(value, "username")


def validate_password(value: str) -> str:
    if not isinstance(value, str) or not _PASSWORD.fullmatch(value):
        raise ProvisionError("password: 1-128 characters among letters, digits and . _ ~ ! * + = @ # % ^ : / ? -")
    return _safe(value, "password")


def validate_transport(value: str) -> str:
    if value not in TRANSPORTS:
        raise ProvisionError(f"transport must be one of {', '.join(TRANSPORTS)}")
    return value


def validate_host(host: str) -> str:
    """An IPv4 address or a DNS hostname (RFC 1123 labels)."""
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", host or ""):
        raise ProvisionError(f"host {host!r} is not a valid IPv4 address")
    labels = (host or "").rstrip(".").split(".")
    if not host or len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ProvisionError(f"host {host!r} is not a hostname or IPv4 address")
    return host.rstrip(".").lower()


def parse_sip_server(value: str) -> tuple[str, int | None]:
    """'host[:port]' -> (host, port or None)."""
    host, sep, port_text = (value or "").strip().rpartition(":")
    if not sep:
        host, port_text = port_text, ""
    port = None
    if sep:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ProvisionError(f"port in {value!r} must be 1-65535")
        port = int(port_text)
    return validate_host(host), port


def normalize_cidrs(value: str | Iterable[str]) -> list[str]:
    """'1.2.3.4, 10.0.0.0/24' -> ['1.2.3.4/32', '10.0.0.0/24']; IPv4 only, host bits cleared."""
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        try:
            network = ipaddress.IPv4Network(item, strict=False)
        except ValueError as exc:
            raise ProvisionError(f"{item!r} is not an IPv4 address or CIDR") from exc
        if str(network) not in out:
            out.append(str(network))
    if len(out) > _MAX_CIDRS:
        raise ProvisionError(f"at most {_MAX_CIDRS} allowed addresses per account")
    return out


def _pair(username: str | None, password: str | None, direction: str) -> tuple[str, str] | None:
    if bool(username) != bool(password):
        raise ProvisionError(f"{direction} username and password are set together or both left empty")
    if not username:
        return None
    return validate_username(username), validate_password(password or "")


# -- XML ----------------------------------------------------------------------------------
def _param(name: str, value: str, indent: int = 4) -> str:
    return f"{' ' * indent}<param name={quoteattr(name)} value={quoteattr(value)}/>"


def _header(kind: str, account: str) -> str:
    return f"  <!-- Generated by VoxBridge: {kind} of SIP account {account}. Reprovision rewrites it. -->"


def gateway_xml(account_id: str | uuid.UUID, sip_server: str, transport: str = "auto",
                username: str | None = None, password: str | None = None,
                caller_id_in_from: bool | None = None) -> str:
    """The account's outbound gateway for the external profile (register=false).

    Digest mode when username/password are given (From user = username, caller ID in
    P-Asserted-Identity); IP-trust otherwise (caller ID in the From user)."""
    account = account_hex(account_id)
    host, port = parse_sip_server(sip_server)
    validate_transport(transport)
    credentials = _pair(username, password, "outbound")
    if caller_id_in_from is None:
        caller_id_in_from = credentials is None
    lines = ["<include>", _header("outbound gateway", account),
             f"  <gateway name={quoteattr(gateway_name(account))}>",
             _param("proxy", f"{host}:{port}" if port else host),
             _param("register", "false")]
    if transport != "auto":
        lines.append(_param("register-transport", transport))
    if credentials:
        lines += [_param("username", credentials[0]), _param("password", credentials[1]),
                  _param("from-user", credentials[0])]
    else:
        lines += [_param("username", IP_TRUST_USERNAME), _param("password", IP_TRUST_PASSWORD)]
    lines += [_param("caller-id-in-from", "true" if caller_id_in_from else "false"),
              _param("ping", "30"), _param("retry-seconds", "30"),
              "    <variables>",
              f'      <variable name="vb_account_id" value="{account}" direction="outbound"/>',
              "    </variables>",
              "  </gateway>", "</include>", ""]
    return "\n".join(lines)


def acl_list_xml(account_id: str | uuid.UUID, cidrs: str | Iterable[str]) -> str:
    """The account's allow-list (default deny); an empty list denies everything."""
    account = account_hex(account_id)
    nodes = [f"    <node type=\"allow\" cidr={quoteattr(c)}/>" for c in normalize_cidrs(cidrs)]
    return "\n".join(["<include>", _header("inbound allow-list", account),
                      f"  <list name={quoteattr(acl_name(account))} default=\"deny\">", *nodes,
                      "  </list>", "</include>", ""])


def directory_user_xml(account_id: str | uuid.UUID, username: str | None = None, password: str | None = None,
                       cidrs: str | Iterable[str] = ()) -> str:
    """The account's user in the voxbridge domain (digest mode, or IP-trust with `cidr`)."""
    account = account_hex(account_id)
    credentials = _pair(username, password, "inbound")
    allowed = normalize_cidrs(cidrs)
    if credentials is None and not allowed:
        raise ProvisionError("inbound needs a username/password or allowed IPs")
    attrs = f"id={quoteattr(user_id(account))}"
    if credentials:
        attrs += f" number-alias={quoteattr(credentials[0])}"
        secret = credentials[1]
    else:
        attrs += f" cidr={quoteattr(','.join(allowed))}"
        secret = secrets.token_hex(24)  # never used: IP-trust users are admitted by the ACL
    params = [_param("password", secret, 6)]
    if allowed:
        params.append(_param("auth-acl", acl_name(account), 6))
    return "\n".join(["<include>", _header("inbound user", account), f"  <user {attrs}>",
                      "    <params>", *params, "    </params>",
                      "    <variables>",
                      f'      <variable name="vb_account_id" value="{account}"/>',
                      '      <variable name="user_context" value="public"/>',
                      "    </variables>", "  </user>", "</include>", ""])


# -- files and commands -------------------------------------------------------------------
def account_paths(account_id: str | uuid.UUID) -> dict[str, str]:
    """Where each object of the account lives, relative to the configuration directory."""
    return {"gateway": f"{GATEWAY_DIR}/{gateway_name(account_id)}.xml",
            "acl": f"{ACL_DIR}/{acl_name(account_id)}.xml",
            "user": f"{USER_DIR}/{user_id(account_id)}.xml"}


def account_files(account_id: str | uuid.UUID, *, sip_server: str | None, transport: str = "auto",
                  allowed_ips: str | Iterable[str] = "", outbound_username: str | None = None,
                  outbound_password: str | None = None, inbound_username: str | None = None,
                  inbound_password: str | None = None) -> list[GeneratedFile]:
    """Every file the account needs: a gateway when sip_server is set, an ACL list when
    allowed IPs are set, a directory user when inbound is possible (credentials or IPs)."""
    paths = account_paths(account_id)
    allowed = normalize_cidrs(allowed_ips)
    files = []
    if sip_server:
        files.append(GeneratedFile(paths["gateway"], gateway_xml(account_id, sip_server, transport,
                                                                 outbound_username, outbound_password)))
    if allowed:
        files.append(GeneratedFile(paths["acl"], acl_list_xml(account_id, allowed)))
    if inbound_username or inbound_password or allowed:
        files.append(GeneratedFile(paths["user"], directory_user_xml(account_id, inbound_username,
                                                                     inbound_password, allowed)))
    return files


def write_files(conf_dir: str | Path, files: Iterable[GeneratedFile]) -> list[Path]:
    """Write atomically (temp file + rename) with mode 0640: FreeSWITCH never reads half a file."""
    written = []
    for generated in files:
        target = Path(conf_dir) / generated.path
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".vb-", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(generated.content)
            os.chmod(tmp, 0o640)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(target)
    return written


def remove_account_files(conf_dir: str | Path, account_id: str | uuid.UUID) -> list[Path]:
    removed = []
    for relative in account_paths(account_id).values():
        target = Path(conf_dir) / relative
        if target.exists():
            target.unlink()
            removed.append(target)
    return removed


def apply_commands(account_id: str | uuid.UUID, *, removed_gateway: bool = False) -> list[str]:
    """ESL api commands that make FreeSWITCH pick the files up without a restart, in order.
    killgw first when the gateway changed or went away (rescan only adds new gateways)."""
    commands = ["reloadxml"]
    if removed_gateway:
        commands.append(f"sofia profile external killgw {gateway_name(account_id)}")
    commands += ["sofia profile external rescan", "reloadacl"]
    return commands
