"""check-config: static checks of the FreeSWITCH tree and the dialplan, as file:line: problem.

    python -m fsconf.check [--conf freeswitch/] [--dialplan dialplan/] [--socket-address host:port]
                           [--generated DIR] [--runtime-env]

--generated points at the directory the app writes account XML to (FREESWITCH_CONF_DIR) when it
is not the configuration tree itself (the compose deployment shares only the three generated
folders): those folders are then read from there, as FreeSWITCH sees them through its volumes.

Exit status 1 when anything is wrong. What is checked:
  - every XML file is well-formed on its own, and the preprocessed document parses;
  - X-PRE-PROCESS instructions: plain includes exist (globs may match nothing), every $${var}
    is set before use, nothing is silently dropped by the line-based preprocessor, no exec;
  - modules.conf loads every module VoxBridge needs and no name FreeSWITCH 1.10 lacks
    (fsconf/modules.py); switch.conf has api-expansion off;
  - security settings: the external profile has auth-calls true and an apply-inbound-acl, the
    event socket an apply-inbound-acl;
  - no vanilla default secret (ClueCon, 1234) anywhere; the ESL password is present and not empty
    (mod_event_socket takes a missing or empty one as ClueCon; with --runtime-env also not unset);
  - ACL lists referenced by profiles, event socket, users and check_acl exist, CIDRs parse;
  - every dialplan condition regex compiles (PCRE translated to Python); no ${func(...)}
    (api-expansion is off: it would expand to an error string);
  - contexts named by profiles and transfer actions exist; gateways named in dial strings exist,
    and so does a literal vb_gateway (OUTBOUND_GATEWAY, the default trunk);
    gateway, user and list names are unique;
  - every `socket` application points at the app's address (VOXBRIDGE_SOCKET_ADDRESS).
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from fsconf.modules import KNOWN_MODULES
from fsconf.pcre import PcreError, compile_pcre
from fsconf.xmltree import Node, Preprocessor, Problem, check_well_formed, parse_lines

REQUIRED_MODULES = (
    "mod_console", "mod_logfile", "mod_event_socket", "mod_sofia", "mod_commands", "mod_dptools",
    "mod_dialplan_xml", "mod_sndfile", "mod_native_file", "mod_tone_stream", "mod_loopback",
    "mod_spandsp", "mod_opus", "mod_audio_fork",
)
DEFAULT_SOCKET_ADDRESS = "127.0.0.1:8084"
BUILTIN_ACLS = frozenset({"rfc1918.auto", "nat.auto", "localnet.auto", "loopback.auto", "wan.auto",
                          "wan_v4.auto", "wan_v6.auto", "any_v4.auto", "any_v6.auto"})
DEFAULT_SECRETS = frozenset({"ClueCon", "1234"})
_FUNC = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\(")
# Directories the app writes (fsconf.provision): one object per file, named after the file.
GENERATED = {"gateway": "sip_profiles/external", "list": "acl.d", "user": "directory/voxbridge"}
_GATEWAY_DIAL = re.compile(r"sofia/gateway/([^/\s]+)/")
_PLACEHOLDER = re.compile(r"^(env|exec-set|stun-set):")


def _node_problem(node: Node, message: str) -> Problem:
    return Problem(node.file, node.line, message)


class ConfigChecker:
    def __init__(self, conf_dir: Path, dialplan_dir: Path | None = None, socket_address: str | None = None,
                 env: Mapping[str, str] | None = None, generated_dir: Path | None = None,
                 runtime_env: bool = False) -> None:
        self.conf_dir = Path(conf_dir)
        # runtime_env: env is the one FreeSWITCH will start with, so an unset variable is a problem
        # where FreeSWITCH would take "" (the ESL password); otherwise it is filled in at deploy time.
        self.runtime_env = runtime_env
        self.generated_dir = Path(generated_dir) if generated_dir else self.conf_dir
        self.dialplan_dir = Path(dialplan_dir) if dialplan_dir else self.conf_dir / "dialplan"
        self.env = dict(os.environ if env is None else env)
        self.socket_address = (socket_address or self.env.get("VOXBRIDGE_SOCKET_ADDRESS")
                               or DEFAULT_SOCKET_ADDRESS)
        # FreeSWITCH receives the app's address through the same variable (vars.xml env-set).
        self.env["VOXBRIDGE_SOCKET_ADDRESS"] = self.socket_address
        self.problems: list[Problem] = []
        self.root: Node | None = None

    # -- driver ---------------------------------------------------------------------------
    def run(self) -> list[Problem]:
        display = Path(os.path.commonpath([os.path.abspath(self.conf_dir), os.path.abspath(self.dialplan_dir)]))
        mounts = {self.conf_dir / "dialplan": self.dialplan_dir}
        if self.generated_dir != self.conf_dir:
            mounts.update({self.conf_dir / folder: self.generated_dir / folder for folder in GENERATED.values()})
        pre = Preprocessor(self.env, mounts=mounts, display_root=display)
        self._well_formed(pre)
        if self.problems:
            return self.problems  # a broken file makes everything after it noise
        main = self.conf_dir / "freeswitch.xml"
        if not main.is_file():
            return [Problem(pre.name(main), 1, "freeswitch.xml not found")]
        lines = pre.run(main)
        self.problems.extend(pre.problems)
        root, problem = parse_lines(lines)
        if problem or root is None:
            self.problems.append(problem or Problem(pre.name(main), 1, "empty document"))
            return self.problems
        self.root = root
        for check in (self._modules, self._switch, self._secrets, self._acls, self._dialplan_regexes,
                      self._contexts, self._gateways, self._directory, self._socket, self._generated):
            check(root)
        self._generated_raw()
        return self.problems

    def _well_formed(self, pre: Preprocessor) -> None:
        seen: set[Path] = set()
        for base in (self.conf_dir, self.dialplan_dir, self.generated_dir):
            for path in sorted(Path(base).rglob("*.xml")):
                real = path.resolve()
                if real in seen or not path.is_file():
                    continue
                seen.add(real)
                problem = check_well_formed(path, pre.name(path))
                if problem:
                    self.problems.append(problem)

    # -- helpers --------------------------------------------------------------------------
    def _configuration(self, root: Node, name: str) -> Node | None:
        for section in root.findall("section"):
            if section.get("name") == "configuration":
                for conf in section.findall("configuration"):
                    if conf.get("name") == name:
                        return conf
        return None

    def _section(self, root: Node, name: str) -> Node | None:
        return next((s for s in root.findall("section") if s.get("name") == name), None)

    def _params(self, node: Node, name: str) -> Iterable[Node]:
        return (p for p in node.iter("param") if p.get("name") == name)

    def _acl_names(self, root: Node) -> set[str]:
        acl = self._configuration(root, "acl.conf")
        names = set(BUILTIN_ACLS)
        if acl:
            names.update(lst.get("name") or "" for lst in acl.iter("list"))
        return names

    # -- checks ---------------------------------------------------------------------------
    def _modules(self, root: Node) -> None:
        conf = self._configuration(root, "modules.conf")
        if conf is None:
            self.problems.append(Problem(root.file, root.line, "modules.conf is missing from the configuration"))
            return
        loaded = {n.get("module") for n in conf.iter("load")}
        for load in conf.iter("load"):
            name = load.get("module") or ""
            if name not in KNOWN_MODULES:
                self.problems.append(_node_problem(load, f"unknown module {name!r}: FreeSWITCH 1.10 has no such "
                                                         "module (fsconf/modules.py lists them)"))
        for module in REQUIRED_MODULES:
            if module not in loaded:
                self.problems.append(_node_problem(conf, f"required module {module} is not loaded in modules.conf"))

    def _switch(self, root: Node) -> None:
        conf = self._configuration(root, "switch.conf")
        if conf is None:
            self.problems.append(Problem(root.file, root.line, "switch.conf is missing from the configuration"))
            return
        values = [p.get("value", "") for p in self._params(conf, "api-expansion")]
        if not values or values[-1].lower() not in ("false", "no", "off"):
            self.problems.append(_node_problem(conf, 'switch.conf must set api-expansion to "false" so '
                                                     "${api(...)} in a variable can never run a command"))
        for name in ("max-sessions", "sessions-per-second", "rtp-start-port", "rtp-end-port"):
            if not any(self._params(conf, name)):
                self.problems.append(_node_problem(conf, f"switch.conf: {name} is not set"))

    def _secrets(self, root: Node) -> None:
        for param in root.iter("param"):
            if "password" in (param.get("name") or "") and param.get("value") in DEFAULT_SECRETS:
                self.problems.append(_node_problem(param, f"default secret {param.get('value')!r}: take it from "
                                                          "the environment (vars.xml env-set)"))
        esl = self._configuration(root, "event_socket.conf")
        if esl is None:
            self.problems.append(Problem(root.file, root.line, "event_socket.conf is missing from the configuration"))
        else:
            self._esl_password(esl)
            if not any(p.get("value") for p in self._params(esl, "apply-inbound-acl")):
                self.problems.append(_node_problem(esl, "event_socket.conf has no apply-inbound-acl: any address "
                                                        "could try the ESL password"))
        self._external_profile(root)

    def _external_profile(self, root: Node) -> None:
        """The carrier/PBX profile: ACL first, then Digest for whoever the ACL does not admit."""
        sofia = self._configuration(root, "sofia.conf")
        profile = next((p for p in (sofia.iter("profile") if sofia else ()) if p.get("name") == "external"), None)
        if profile is None:
            self.problems.append(Problem(root.file, root.line, "sofia.conf has no 'external' profile"))
            return
        block = profile.find("settings")
        settings = list(block.iter("param")) if block is not None else []
        auth = [p.get("value", "") for p in settings if p.get("name") == "auth-calls"]
        if not auth or auth[-1].lower() != "true":
            self.problems.append(_node_problem(profile, 'external profile must set auth-calls "true" (else '
                                                        "anyone outside the ACLs may call in unauthenticated)"))
        if not any(p.get("value") for p in settings if p.get("name") == "apply-inbound-acl"):
            self.problems.append(_node_problem(profile, "external profile has no apply-inbound-acl"))
        for each in sofia.iter("profile"):
            self._rtp_timer(each)

    def _rtp_timer(self, profile: Node) -> None:
        """Without an RTP timer a channel's audio is clocked by the far end's packets: while the far end sends
        none (silence suppression, a callee who waits), our playback stalls and mod_audio_fork sends nothing
        (seen on FreeSWITCH 1.10.12: the greeting cut, 5 s gaps in the fork; docs/live-runs.md)."""
        block = profile.find("settings")
        timers = [p.get("value", "") for p in (block.iter("param") if block is not None else ())
                  if p.get("name") == "rtp-timer-name"]
        if not timers or timers[-1] in ("", "none"):
            self.problems.append(_node_problem(profile, f"profile {profile.get('name')!r} must set rtp-timer-name "
                                                        '"soft" (else audio to and from the call stalls while '
                                                        "the far end sends no RTP)"))

    def _esl_password(self, esl: Node) -> None:
        """mod_event_socket takes a missing or empty password as the vanilla ClueCon."""
        params = list(self._params(esl, "password"))
        if not params:
            self.problems.append(_node_problem(esl, "event_socket.conf has no password param: mod_event_socket "
                                                    "falls back to ClueCon"))
            return
        value = params[-1].get("value") or ""
        unset = re.fullmatch(r"env:([A-Za-z_][A-Za-z0-9_]*)", value)
        if unset and self.runtime_env:
            self.problems.append(_node_problem(params[-1], f"ESL password comes from ${unset.group(1)}, which is not "
                                                           "set: mod_event_socket would fall back to ClueCon"))
        elif not value.strip():
            self.problems.append(_node_problem(params[-1], "ESL password is empty (an unset environment variable "
                                                           "or global?): mod_event_socket falls back to ClueCon"))
        elif value.lower() == "cluecon" and value not in DEFAULT_SECRETS:
            self.problems.append(_node_problem(params[-1], "default secret 'ClueCon' as ESL password"))

    def _acls(self, root: Node) -> None:
        names = self._acl_names(root)
        acl = self._configuration(root, "acl.conf")
        seen: dict[str, Node] = {}
        for lst in (acl.iter("list") if acl else ()):
            name = lst.get("name") or ""
            if name in seen:
                self.problems.append(_node_problem(lst, f"ACL list {name!r} defined twice "
                                                        f"(first at {seen[name].file}:{seen[name].line})"))
            seen[name] = lst
            for node in lst.iter("node"):
                self._cidr(node)
        refs: list[tuple[Node, str]] = []
        for param in root.iter("param"):
            if param.get("name") in ("apply-inbound-acl", "apply-register-acl", "auth-acl", "apply-proxy-acl"):
                refs.append((param, param.get("value") or ""))
        for action in root.iter("action"):
            if action.get("application") == "check_acl":
                parts = (action.get("data") or "").split()
                if len(parts) > 1 and "${" not in parts[1]:
                    refs.append((action, parts[1]))
        for node, name in refs:
            for item in name.split(","):
                if item and "/" not in item and item not in names:
                    self.problems.append(_node_problem(node, f"ACL list {item!r} is not defined in acl.conf"))

    def _cidr(self, node: Node) -> None:
        cidr = node.get("cidr")
        if cidr is None or _PLACEHOLDER.match(cidr):
            return
        for item in cidr.split(","):
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                self.problems.append(_node_problem(node, f"ACL node: {item.strip()!r} is not a CIDR"))

    def _dialplan_regexes(self, root: Node) -> None:
        section = self._section(root, "dialplan")
        if section is None:
            self.problems.append(Problem(root.file, root.line, 'no <section name="dialplan">'))
            return
        for condition in section.iter("condition"):
            expression = condition.get("expression")
            if expression is not None:
                # ${vars} are expanded before FreeSWITCH compiles the pattern; check the empty case
                try:
                    compile_pcre(re.sub(r"\$\{[^{}]*\}", "", expression))
                except PcreError as exc:
                    self.problems.append(_node_problem(condition, f"regex {expression!r} does not compile: {exc}"))
        for node in section.iter():
            for attr in ("field", "expression", "data"):
                value = node.get(attr) or ""
                if _FUNC.search(value):
                    self.problems.append(_node_problem(node, f"{attr}={value!r}: ${{function(...)}} expands to an "
                                                             "error because api-expansion is off"))

    def _contexts(self, root: Node) -> None:
        section = self._section(root, "dialplan")
        contexts: dict[str, Node] = {}
        for context in (section.findall("context") if section else ()):
            name = context.get("name") or ""
            if name in contexts:
                self.problems.append(_node_problem(context, f"context {name!r} defined twice"))
            contexts[name] = context
        for param in root.iter("param"):
            if param.get("name") == "context" and param.get("value") not in contexts:
                self.problems.append(_node_problem(param, f"profile context {param.get('value')!r} does not exist"))
        for action in root.iter("action"):
            app, data = action.get("application"), (action.get("data") or "").split()
            if app in ("transfer", "execute_extension") and len(data) >= 3 and "${" not in data[2]:
                if data[2] not in contexts:
                    self.problems.append(_node_problem(action, f"{app} to unknown context {data[2]!r}"))

    def _gateways(self, root: Node) -> None:
        gateways: dict[str, Node] = {}
        for gateway in root.iter("gateway"):
            name = gateway.get("name") or ""
            if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", name):
                self.problems.append(_node_problem(gateway, f"gateway name {name!r}: letters, digits, _ . - only"))
            if name in gateways:
                self.problems.append(_node_problem(gateway, f"gateway {name!r} defined twice"))
            gateways[name] = gateway
            params = {p.get("name"): p.get("value") for p in gateway.iter("param")}
            if not params.get("proxy") and not params.get("realm"):
                self.problems.append(_node_problem(gateway, f"gateway {name!r} has no proxy"))
            if not params.get("username"):
                self.problems.append(_node_problem(gateway, f"gateway {name!r}: sofia requires a username param"))
        for action in root.iter("action"):
            for name in _GATEWAY_DIAL.findall(action.get("data") or ""):
                if "${" not in name and "$" not in name and name not in gateways:
                    self.problems.append(_node_problem(action, f"dial string uses unknown gateway {name!r}"))
        self._gateway_variables(root, gateways)

    def _gateway_variables(self, root: Node, gateways: Mapping[str, Node]) -> None:
        """A literal vb_gateway (the dialplan's default trunk, from OUTBOUND_GATEWAY) must exist:
        the dial string only names it through ${vb_gateway}, which the check above cannot see."""
        for action in root.iter("action"):
            if action.get("application") != "set":
                continue
            name, _, value = (action.get("data") or "").partition("=")
            if name != "vb_gateway" or not value or "$" in value or _PLACEHOLDER.match(value):
                continue
            if value not in gateways:
                self.problems.append(_node_problem(action, f"vb_gateway {value!r} (OUTBOUND_GATEWAY, the default "
                                                           "trunk) is not a gateway of the external profile"))

    def _directory(self, root: Node) -> None:
        section = self._section(root, "directory")
        for domain in (section.iter("domain") if section else ()):
            names: dict[str, Node] = {}
            for user in domain.iter("user"):
                for key in (user.get("id"), user.get("number-alias")):
                    if not key:
                        continue
                    if key in names:
                        other = names[key]
                        self.problems.append(_node_problem(user, f"user name {key!r} already used at "
                                                                 f"{other.file}:{other.line}"))
                    names[key] = user
                if user.get("cidr"):
                    self._cidr(user)

    def _socket(self, root: Node) -> None:
        section = self._section(root, "dialplan")
        found = False
        for action in (section.iter("action") if section else ()):
            if action.get("application") != "socket":
                continue
            found = True
            parts = (action.get("data") or "").split()
            address = parts[0] if parts else ""
            if address != self.socket_address:
                self.problems.append(_node_problem(action, f"socket goes to {address!r} but the app listens on "
                                                           f"{self.socket_address!r} (VOXBRIDGE_SOCKET_ADDRESS)"))
            if parts[1:3] != ["async", "full"]:
                self.problems.append(_node_problem(action, "socket must run 'async full' (the app needs "
                                                           "linger, event and api on the session)"))
        if not found:
            self.problems.append(Problem(root.file, root.line,
                                         "no dialplan `socket` action: calls never reach the app"))


    def _generated(self, root: Node) -> None:
        """A generated file holds exactly one object named after the file, and no repeated
        param: anything else means a value broke out of its attribute (injection)."""
        for tag, folder in GENERATED.items():
            per_file: dict[str, list[Node]] = {}
            for node in root.iter(tag):
                parent = os.path.dirname(node.file).replace(os.sep, "/")
                if parent.endswith(folder):
                    per_file.setdefault(node.file, []).append(node)
            for file, nodes in per_file.items():
                stem = Path(file).stem
                for node in nodes:
                    name = node.get("name") if tag != "user" else node.get("id")
                    if name != stem:
                        self.problems.append(_node_problem(node, f"generated file defines {tag} {name!r}; it may "
                                                                 f"only define {stem!r} (injected markup?)"))
        for holder in list(root.iter("gateway")) + list(root.iter("user")):
            seen: set[str] = set()
            for param in holder.iter("param"):
                name = param.get("name") or ""
                if name in seen:
                    self.problems.append(_node_problem(param, f"param {name!r} repeated (injected markup?)"))
                seen.add(name)

    def _generated_raw(self) -> None:
        """Global variables in generated files would copy secrets (the ESL password...) into them."""
        for folder in GENERATED.values():
            for path in sorted((self.generated_dir / folder).glob("*.xml")):
                for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
                    if "$${" in line:
                        rel = os.path.relpath(path, self.generated_dir.parent)
                        self.problems.append(Problem(rel, number, "generated file uses a global variable "
                                                                  "(only fixed, validated values belong here)"))


def check_config(conf_dir: str | Path = "freeswitch", dialplan_dir: str | Path | None = None,
                 socket_address: str | None = None, env: Mapping[str, str] | None = None,
                 generated_dir: str | Path | None = None, runtime_env: bool = False) -> list[Problem]:
    """Every problem found in the tree; an empty list means it is fine."""
    return ConfigChecker(Path(conf_dir), Path(dialplan_dir) if dialplan_dir else None, socket_address, env,
                         Path(generated_dir) if generated_dir else None, runtime_env).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="check-config", description=__doc__.splitlines()[0])
    parser.add_argument("--conf", default="freeswitch", help="FreeSWITCH configuration directory")
    parser.add_argument("--dialplan", default=None, help="dialplan directory (default: <conf>/dialplan)")
    parser.add_argument("--socket-address", default=None,
                        help="app's socket address (default: $VOXBRIDGE_SOCKET_ADDRESS or 127.0.0.1:8084)")
    parser.add_argument("--generated", default=None,
                        help="where the app writes account XML (FREESWITCH_CONF_DIR), if not --conf")
    parser.add_argument("--runtime-env", action="store_true",
                        help="this environment is the one FreeSWITCH starts with: unset secrets are errors")
    args = parser.parse_args(argv)
    problems = check_config(args.conf, args.dialplan, args.socket_address, generated_dir=args.generated,
                            runtime_env=args.runtime_env)
    for problem in problems:
        print(problem)
    if problems:
        print(f"check-config: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("check-config: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
