"""Gateways, ACL lists and directory users, loaded the way FreeSWITCH loads them (issue 6).

reloadxml preprocesses <conf>/freeswitch.xml (fssim.xmlconf: includes relative to the including
file, `$${var}` globals from vars.xml's set / env-set) and keeps the parsed document; a document
that does not parse leaves the previous one in place. From that document:
  - `sofia profile external rescan` starts gateways that appeared, `killgw` stops one;
  - `reloadacl` rebuilds the network lists from acl.conf (`reloadacl reloadxml` re-reads the XML
    first; plain `reloadacl` uses the XML already loaded, as mod_commands does);
  - `user_exists` and `user/<id>` dial strings look users up in the directory section.
Built-in lists (loopback.auto, rfc1918.auto, localnet.auto) always exist, as in FreeSWITCH.
A conf dir without freeswitch.xml configures nothing but those lists.
"""
from __future__ import annotations

import ipaddress
import logging
import pathlib
import xml.etree.ElementTree as ET  # noqa: S405 - the conf dir is our own generated XML
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from fssim.xmlconf import ConfError, Preprocessor

log = logging.getLogger(__name__)
MAX_CIDRS = 32  # FreeSWITCH splits a cidr attribute on commas into at most 32 entries


@dataclass
class Gateway:
    name: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def proxy(self) -> str:
        return self.params.get("proxy") or self.params.get("realm") or "127.0.0.1"


@dataclass
class AclList:
    name: str
    default: str = "deny"
    nodes: list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]] = field(default_factory=list)

    def allows(self, ip: str) -> bool:
        # switch_network_list_validate_ip: the longest matching prefix decides (a later node
        # wins a tie); no match -> the list's default.
        addr = ipaddress.ip_address(ip)
        verdict, best = self.default == "allow", -1
        for kind, net in self.nodes:
            if addr.version == net.version and addr in net and net.prefixlen >= best:
                verdict, best = kind == "allow", net.prefixlen
        return verdict


@dataclass
class User:
    id: str
    domain: str
    attrs: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


BUILTIN_ACLS = {
    "loopback.auto": ["127.0.0.0/8", "::1/128"],
    "rfc1918.auto": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
    "localnet.auto": ["192.0.2.0/24"],
}


class Registry:
    def __init__(self, conf_dir: str | None, env: Mapping[str, str] | None = None):
        self.conf = pathlib.Path(conf_dir) if conf_dir else None
        self.env = env
        self.root: ET.Element | None = None  # the document loaded by the last good reloadxml
        self.defined: dict[str, Gateway] = {}  # the external profile's gateways in that document
        self.active: dict[str, Gateway] = {}  # running in the external profile
        self.acls: dict[str, AclList] = {}
        self.users: list[User] = []
        self.reloadxml()
        self.rescan()
        self.reloadacl()

    # XML -------------------------------------------------------------------------------------------
    def reloadxml(self) -> str | None:
        """Re-read the tree; returns an error text (the old document stays loaded) or None."""
        if not self.conf:
            return None
        if not (self.conf / "freeswitch.xml").exists():
            log.warning("%s has no freeswitch.xml: no gateways, ACL lists or users loaded", self.conf)
            return None
        try:
            root = Preprocessor(self.env).document(self.conf / "freeswitch.xml")
        except ConfError as exc:
            log.error("reloadxml failed, keeping the previous XML: %s", exc)
            return str(exc)
        self.root = root
        self.defined = {g.name: g for g in _gateways(root, "external")}
        self.users = list(_users(root))
        return None

    def add_gateway(self, name: str, **params: str) -> None:
        """For tests and the demo without a conf dir: a gateway that is defined and running."""
        self.defined[name] = self.active[name] = Gateway(name, dict(params))

    # gateways ------------------------------------------------------------------------------------
    def rescan(self) -> list[str]:
        added = [n for n in self.defined if n not in self.active]
        for n in added:
            self.active[n] = self.defined[n]
        return added

    def killgw(self, name: str) -> bool:
        return self.active.pop(name, None) is not None

    def gateway_active(self, name: str) -> bool:
        return name in self.active

    def gateway_proxy(self, name: str) -> str:
        gw = self.active.get(name)
        return gw.proxy if gw else "127.0.0.1"

    def profile_exists(self, name: str) -> bool:
        return name in ("external", "internal")

    # directory -----------------------------------------------------------------------------------
    def user_exists(self, user: str, domain: str | None = None, key: str = "id") -> bool:
        """A user whose `key` attribute is `user` (in `domain`, or in any domain when None)."""
        return any(u.attrs.get(key) == user and (domain is None or u.domain == domain) for u in self.users)

    # ACLs ---------------------------------------------------------------------------------------
    def reloadacl(self) -> None:
        acls = {n: AclList(n, "deny", [("allow", ipaddress.ip_network(c)) for c in cidrs])
                for n, cidrs in BUILTIN_ACLS.items()}
        for lst in _acl_lists(self.root):
            name = lst.get("name", "")
            acl = AclList(name, lst.get("default", "deny"))
            for node in lst.findall("node"):
                self._add_node(acl, node)
            acls[name] = acl
        self.acls = acls

    def _add_node(self, acl: AclList, node: ET.Element) -> None:
        kind = "allow" if node.get("type", "allow") == "allow" else "deny"
        cidrs = (node.get("cidr") or "").split(",")[:MAX_CIDRS] if node.get("cidr") is not None else []
        if node.get("domain") is not None:
            # switch_load_network_lists: every user of that domain with a cidr attribute
            cidrs += [c for u in self.users if u.domain == node.get("domain") and u.attrs.get("cidr")
                      for c in u.attrs["cidr"].split(",")[:MAX_CIDRS]]
        for cidr in cidrs:
            try:
                acl.nodes.append((kind, ipaddress.ip_network(cidr.strip(), strict=False)))
            except ValueError:
                log.error("Error Adding %s (%s) to list %s", cidr, kind, acl.name)

    def acl_check(self, ip: str, name: str) -> bool:
        lst = self.acls.get(name)
        try:
            return bool(lst and lst.allows(ip))
        except ValueError:
            return False


def _section(root: ET.Element | None, name: str) -> Iterator[ET.Element]:
    if root is not None:
        yield from (s for s in root.findall("section") if s.get("name") == name)


def _configuration(root: ET.Element | None, name: str) -> Iterator[ET.Element]:
    for section in _section(root, "configuration"):
        yield from (c for c in section.findall("configuration") if c.get("name") == name)


def _acl_lists(root: ET.Element | None) -> Iterator[ET.Element]:
    for conf in _configuration(root, "acl.conf"):
        for lists in conf.findall("network-lists"):
            yield from lists.findall("list")


def _gateways(root: ET.Element, profile: str) -> Iterator[Gateway]:
    for conf in _configuration(root, "sofia.conf"):
        for prof in conf.iter("profile"):
            if prof.get("name") != profile:
                continue
            for gws in prof.findall("gateways"):
                for gw in gws.findall("gateway"):
                    if gw.get("name"):
                        yield Gateway(gw.get("name", ""), {p.get("name", ""): p.get("value", "")
                                                           for p in gw.findall("param")})


def _users(root: ET.Element) -> Iterator[User]:
    for section in _section(root, "directory"):
        for domain in section.findall("domain"):
            # users directly under the domain, and inside groups (<groups><group><users>)
            holders = domain.findall("users") + domain.findall("groups/group/users")
            for users in holders:
                for user in users.findall("user"):
                    if user.get("id") and user.get("type") != "pointer":
                        params = {p.get("name", ""): p.get("value", "") for p in user.findall("params/param")}
                        yield User(user.get("id", ""), domain.get("name", ""), dict(user.attrib), params)
