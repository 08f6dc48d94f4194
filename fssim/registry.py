"""Gateways, ACL lists and directory users read from a FreeSWITCH conf directory (issue 6).

reloadxml re-reads the files; `sofia profile external rescan` starts gateways that appeared;
`killgw` stops one; `reloadacl` reloads the lists. Built-in lists (loopback.auto, rfc1918.auto,
localnet.auto) always exist, as in FreeSWITCH.
"""
from __future__ import annotations

import ipaddress
import pathlib
import xml.etree.ElementTree as ET  # noqa: S405 - the conf dir is our own generated XML
from dataclasses import dataclass, field


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
    nodes: list[tuple[str, ipaddress._BaseNetwork]] = field(default_factory=list)

    def allows(self, ip: str) -> bool:
        addr = ipaddress.ip_address(ip)
        for kind, net in self.nodes:
            if addr.version == net.version and addr in net:
                return kind == "allow"
        return self.default == "allow"


BUILTIN_ACLS = {
    "loopback.auto": ["127.0.0.0/8", "::1/128"],
    "rfc1918.auto": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
    "localnet.auto": ["192.0.2.0/24"],
}


class Registry:
    def __init__(self, conf_dir: str | None):
        self.conf = pathlib.Path(conf_dir) if conf_dir else None
        self.defined: dict[str, Gateway] = {}  # parsed from XML at the last reloadxml
        self.active: dict[str, Gateway] = {}  # running in the external profile
        self.acls: dict[str, AclList] = {}
        self.users: dict[str, dict[str, str]] = {}
        self.reloadxml()
        self.rescan()
        self.reloadacl()

    # gateways ------------------------------------------------------------------------------------
    def reloadxml(self) -> None:
        self.defined = {}
        self.users = {}
        if not self.conf:
            return
        for path in sorted((self.conf / "sip_profiles" / "external").glob("*.xml")):
            for gw in _parse(path).iter("gateway"):
                name = gw.get("name", "")
                if name:
                    params = {p.get("name", ""): p.get("value", "") for p in gw.iter("param")}
                    self.defined[name] = Gateway(name, params)
        for path in sorted((self.conf / "directory").glob("*/*.xml")):
            for user in _parse(path).iter("user"):
                if user.get("id"):
                    self.users[user.get("id")] = {p.get("name", ""): p.get("value", "") for p in user.iter("param")}

    def add_gateway(self, name: str, **params: str) -> None:
        """For tests and the demo without a conf dir: a gateway that is defined and running."""
        self.defined[name] = self.active[name] = Gateway(name, dict(params))

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

    def user_exists(self, user_id: str) -> bool:
        return user_id in self.users

    # ACLs ---------------------------------------------------------------------------------------
    def reloadacl(self) -> None:
        acls = {n: AclList(n, "deny", [("allow", ipaddress.ip_network(c)) for c in cidrs])
                for n, cidrs in BUILTIN_ACLS.items()}
        files: list[pathlib.Path] = []
        if self.conf:
            main = self.conf / "autoload_configs" / "acl.conf.xml"
            files = ([main] if main.exists() else []) + sorted((self.conf / "autoload_configs" / "acl.d").glob("*.xml"))
        for path in files:
            for lst in _parse(path).iter("list"):
                name = lst.get("name", "")
                nodes = []
                for node in lst.iter("node"):
                    cidr = node.get("cidr")
                    if cidr:
                        nodes.append((node.get("type", "allow"), ipaddress.ip_network(cidr, strict=False)))
                acls[name] = AclList(name, lst.get("default", "deny"), nodes)
        self.acls = acls

    def acl_check(self, ip: str, name: str) -> bool:
        lst = self.acls.get(name)
        try:
            return bool(lst and lst.allows(ip))
        except ValueError:
            return False


def _parse(path: pathlib.Path) -> ET.Element:
    try:
        return ET.parse(path).getroot()  # noqa: S314
    except ET.ParseError:
        return ET.Element("empty")  # FreeSWITCH logs and skips a broken include; so do we
