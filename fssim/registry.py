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
Dialplan: the contexts of the document's dialplan section; without a conf dir, the repository's
engineer-owned dialplan/*.xml (what the shipped freeswitch.xml includes), so voxbridge_outbound,
voxbridge_transfer and public exist as they do in production. `hunt` runs mod_dialplan_xml's
extension search for one destination; no extension -> None (the switch then hangs up the call
with NO_ROUTE_DESTINATION, switch_core_state_machine.c standard_on_routing "No Route, Aborting").
"""
from __future__ import annotations

import ipaddress
import logging
import pathlib
import re
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
    # (allow|deny, network, token): a node added for a directory user (domain= node) carries the token
    # "<user id>@<domain>", which sofia uses to set that user's variables on the channel.
    nodes: list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network, str | None]] = field(default_factory=list)

    def allows(self, ip: str) -> bool:
        return self.lookup(ip)[0]

    def lookup(self, ip: str) -> tuple[bool, str | None]:
        """switch_network_list_validate_ip_token: the longest matching prefix decides; nodes are prepended
        and a node must be strictly longer to replace the current match, so among equal prefixes the node
        added last wins (its token too). No match -> the list's default and no token."""
        addr = ipaddress.ip_address(ip)
        verdict, best, token = self.default == "allow", -1, None
        for kind, net, node_token in self.nodes:
            if addr.version == net.version and addr in net and net.prefixlen >= best:
                verdict, best, token = kind == "allow", net.prefixlen, node_token
        return verdict, token


@dataclass
class User:
    id: str
    domain: str
    attrs: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    # What switch_ivr_set_user puts on a channel: the domain's <variables>, then the user's own.
    variables: dict[str, str] = field(default_factory=dict)


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
        self.contexts: dict[str, ET.Element] = {}
        self.reloadxml()
        self.rescan()
        self.reloadacl()

    # XML -------------------------------------------------------------------------------------------
    def reloadxml(self) -> str | None:
        """Re-read the tree; returns an error text (the old document stays loaded) or None."""
        if not self.conf:
            self.contexts = _shipped_contexts(self.env)
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
        self.contexts = _contexts(root)
        return None

    # dialplan ------------------------------------------------------------------------------------
    def hunt(self, context: str, dest: str, variables: Mapping[str, str]) -> list[tuple[str, str]] | None:
        """mod_dialplan_xml: the applications the first matching extension(s) of `context` queue for
        `dest`, or None when the context is missing or nothing matches (NO_ROUTE_DESTINATION)."""
        ctx = self.contexts.get(context)
        if ctx is None:
            return None
        vars_ = dict(variables, destination_number=dest)
        apps: list[tuple[str, str]] = []
        for ext in ctx.findall("extension"):
            if _extension(ext, vars_, apps) and ext.get("continue", "false") != "true":
                break
        return apps or None

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
        acls = {n: AclList(n, "deny", [("allow", ipaddress.ip_network(c), None) for c in cidrs])
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
        for cidr in cidrs:
            try:
                acl.nodes.append((kind, ipaddress.ip_network(cidr.strip(), strict=False), None))
            except ValueError:
                log.error("Error Adding %s (%s) to list %s", cidr, kind, acl.name)
        if node.get("domain") is not None:
            # switch_load_network_lists: every user of that domain with a cidr attribute, token id@domain
            for user in self.users:
                if user.domain != node.get("domain") or not user.attrs.get("cidr"):
                    continue
                for cidr in user.attrs["cidr"].split(",")[:MAX_CIDRS]:
                    try:
                        network = ipaddress.ip_network(cidr.strip(), strict=False)
                    except ValueError:
                        log.error("Error Adding %s (%s) [%s@%s] to list %s", cidr, kind, user.id, user.domain,
                                  acl.name)
                        continue
                    acl.nodes.append((kind, network, f"{user.id}@{user.domain}"))

    def user(self, token: str) -> User | None:
        """The directory user an ACL token or a Digest username names: id@domain (or a number-alias)."""
        user_id, _, domain = token.partition("@")
        for user in self.users:
            if user.domain == domain and user_id in (user.id, user.attrs.get("number-alias")):
                return user
        return None

    def profile_params(self, profile: str) -> list[tuple[str, str]]:
        """A sofia profile's <settings> params in order (a name may repeat: apply-inbound-acl)."""
        return [(p.get("name", ""), p.get("value", "")) for conf in _configuration(self.root, "sofia.conf")
                for prof in conf.iter("profile") if prof.get("name") == profile
                for settings in prof.findall("settings") for p in settings.findall("param")]

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


def _variables(element: ET.Element) -> dict[str, str]:
    return {v.get("name", ""): v.get("value", "") for v in element.findall("variables/variable")}


def _users(root: ET.Element) -> Iterator[User]:
    for section in _section(root, "directory"):
        for domain in section.findall("domain"):
            # users directly under the domain, and inside groups (<groups><group><users>)
            holders = domain.findall("users") + domain.findall("groups/group/users")
            for users in holders:
                for user in users.findall("user"):
                    if user.get("id") and user.get("type") != "pointer":
                        params = {p.get("name", ""): p.get("value", "") for p in user.findall("params/param")}
                        yield User(user.get("id", ""), domain.get("name", ""), dict(user.attrib), params,
                                   {**_variables(domain), **_variables(user)})


def _contexts(root: ET.Element | None) -> dict[str, ET.Element]:
    return {c.get("name", ""): c for section in _section(root, "dialplan") for c in section.findall("context")}


def _shipped_contexts(env: Mapping[str, str] | None) -> dict[str, ET.Element]:
    """The repository's dialplan/*.xml, preprocessed as freeswitch.xml's dialplan section includes it."""
    from fssim.xmlconf import Preprocessor

    shipped = pathlib.Path(__file__).resolve().parents[1] / "dialplan"
    if not shipped.is_dir():
        return {}
    pre = Preprocessor(env)
    lines: list[str] = ['<document type="freeswitch/xml"><section name="dialplan">']
    for path in sorted(shipped.glob("*.xml")):
        pre._file(path, lines, 1)
    lines.append("</section></document>")
    try:
        return _contexts(ET.fromstring("\n".join(lines)))  # noqa: S314 - our own dialplan
    except ET.ParseError as exc:
        log.error("shipped dialplan does not parse: %s", exc)
        return {}


_VAR = re.compile(r"\$\{([^}]*)\}")


def _expand(text: str, vars_: Mapping[str, str]) -> str:
    """${var} from the channel (unset: empty)."""
    return _VAR.sub(lambda m: vars_.get(m.group(1), ""), text)


def _groups(text: str, groups: tuple[str, ...]) -> str:
    """$1..$9: the captures of the condition the action belongs to."""
    def one(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return (groups[n - 1] or "") if 0 < n <= len(groups) else ""

    return re.sub(r"\$(\d)", one, text)


def _extension(ext: ET.Element, vars_: dict[str, str], apps: list[tuple[str, str]]) -> bool:
    """parse_exten(): conditions in order; a failed one queues its anti-actions and, with the default
    break="on-false", ends the extension; inline actions run at once (they change later conditions).
    True when the extension matched (all its conditions that count passed)."""
    matched = True
    for cond in ext.findall("condition"):
        field, expr = cond.get("field"), cond.get("expression")
        ok, groups = True, ()
        if field is not None and expr is not None:
            value = _expand(field, vars_) if "${" in field else vars_.get(field, "")
            try:
                m = re.search(expr, value)
            except re.error:
                m = None
            ok, groups = m is not None, (m.groups() if m else ())
        brk = cond.get("break", "on-false")
        tag = "action" if ok else "anti-action"
        for act in cond.findall(tag):
            app, data = act.get("application", ""), _groups(act.get("data", ""), groups)
            if act.get("inline") == "true" and app == "set" and "=" in data:
                k, _, v = _expand(data, vars_).partition("=")  # inline: runs now, so ${} expands now
                vars_[k] = v
            else:
                apps.append((app, data))  # ${} expands when the application runs, not while hunting
        if not ok:
            matched = False
        if (not ok and brk == "on-false") or (ok and brk == "on-true") or brk == "always":
            break
    return matched
