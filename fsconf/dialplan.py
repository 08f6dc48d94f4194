"""Evaluate mod_dialplan_xml contexts the way FreeSWITCH 1.10 hunts them.

Follows dialplan_hunt() / parse_exten() in mod_dialplan_xml.c for the features VoxBridge uses:
  - extensions are tried in order; the hunt stops at the first one whose last evaluated
    condition passed, unless it has continue="true";
  - a condition's field is a caller-profile field (destination_number, network_addr, ...) or,
    when it contains "$", an expansion of channel variables; its expression may contain
    ${var} too (expanded before compiling); a condition without field is always true;
  - a passing condition queues its actions (with $1..$N from its own captures), a failing one
    its anti-actions; both are queued as they are met, even when a later condition of the
    same extension fails, and they accumulate across extensions;
  - break="on-false" (default) | "on-true" | "always" | "never" decides whether the next
    condition of the extension is looked at;
  - inline="true" actions run during the hunt (set / unset / export change the variables the
    next conditions see); the others run afterwards, in order;
  - api-expansion is off in switch.conf.xml, so ${func(args)} expands to
    "<API execute Permission Denied>", as FreeSWITCH does.
Not modelled (check-config reports them as unsupported where it matters): nested conditions,
<regex> children, time-of-day conditions, ${var:offset:length}.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fsconf.pcre import compile_pcre
from fsconf.xmltree import Node, Preprocessor, parse_lines

API_DENIED = "<API execute Permission Denied>"
# switch_caller_get_field_by_name(): the fields a condition can name without "${}".
PROFILE_FIELDS = frozenset({
    "dialplan", "username", "caller_id_name", "ani", "aniii", "caller_id_number", "network_addr",
    "rdnis", "destination_number", "uuid", "source", "context", "chan_name", "profile_index",
    "callee_id_name", "callee_id_number", "transfer_source",
})
_SUBST = re.compile(r"[$\\](\d+)")


@dataclass
class Action:
    application: str
    data: str
    extension: str
    anti: bool = False
    inline: bool = False
    expanded: str = ""  # data with ${var} expanded when it ran


@dataclass
class HuntResult:
    context: str
    destination_number: str
    matched: list[str] = field(default_factory=list)   # extensions that stopped or continued the hunt
    actions: list[Action] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)  # after every queued action ran
    extension: str | None = None  # the matching extension that ended the hunt; None: it ran off the end

    def apps(self) -> list[tuple[str, str]]:
        """(application, expanded data) in execution order; inline ones where they ran."""
        return [(a.application, a.expanded) for a in self.actions]

    def app_names(self) -> list[str]:
        return [a.application for a in self.actions]


def expand(text: str, variables: Mapping[str, str]) -> str:
    """switch_channel_expand_variables for ${name} and ${func(args)} (denied), nested innermost first."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("${", i):
            depth, j = 1, i + 2
            while j < len(text) and depth:
                if text.startswith("${", j):
                    depth += 1
                    j += 2
                    continue
                if text[j] == "}":
                    depth -= 1
                j += 1
            if depth:
                out.append(text[i:])
                break
            inner = expand(text[i + 2:j - 1], variables)
            if "(" in inner and inner.endswith(")"):
                out.append(API_DENIED)
            else:
                out.append(variables.get(inner, ""))
            i = j
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def substitute(data: str, match: re.Match[str]) -> str:
    """switch_perform_substitution: $N (or \\N) becomes capture N, "" when it did not take part."""
    def sub(m: re.Match[str]) -> str:
        index = int(m.group(1))
        if index > (match.re.groups or 0):
            return ""
        return match.group(index) or ""
    return _SUBST.sub(sub, data)


class Dialplan:
    """The contexts of a parsed configuration (the <section name="dialplan">)."""

    def __init__(self, contexts: dict[str, Node]) -> None:
        self.contexts = contexts

    @classmethod
    def load(cls, conf_dir: str | Path = "freeswitch", dialplan_dir: str | Path | None = None,
             env: Mapping[str, str] | None = None, generated_dir: str | Path | None = None) -> Dialplan:
        """Preprocess <conf_dir>/freeswitch.xml (dialplan/ read from dialplan_dir, the app's generated
        folders from generated_dir, as FreeSWITCH sees its volumes) and keep its contexts."""
        from fsconf.check import GENERATED

        conf = Path(conf_dir)
        mounts = {conf / "dialplan": Path(dialplan_dir)} if dialplan_dir else {}
        if generated_dir is not None and Path(generated_dir).resolve() != conf.resolve():
            mounts.update({conf / folder: Path(generated_dir) / folder for folder in GENERATED.values()})
        root, problem = parse_lines(Preprocessor(env, mounts=mounts).run(conf / "freeswitch.xml"))
        if problem or root is None:
            raise ValueError(str(problem or "empty configuration"))
        return cls.from_root(root)

    @classmethod
    def from_root(cls, root: Node) -> Dialplan:
        contexts: dict[str, Node] = {}
        for section in root.findall("section"):
            if section.get("name") == "dialplan":
                for context in section.findall("context"):
                    contexts.setdefault(context.get("name") or "", context)
        return cls(contexts)

    def hunt(self, context: str, destination_number: str, variables: Mapping[str, str] | None = None
             ) -> HuntResult:
        """Which extensions match and which actions run for a call entering `context`."""
        if context not in self.contexts:
            raise KeyError(f"no context {context!r}")
        chan = {"context": context, "dialplan": "XML", **(variables or {})}
        chan["destination_number"] = destination_number
        result = HuntResult(context, destination_number)
        for extension in self.contexts[context].findall("extension"):
            name = extension.get("name") or "_anon_"
            proceed = self._extension(extension, name, chan, result)
            if proceed:
                result.matched.append(name)
                if (extension.get("continue") or "").lower() != "true":
                    result.extension = name
                    break
        self._run_queued(result, chan)
        return result

    def _extension(self, extension: Node, name: str, chan: dict[str, str], result: HuntResult) -> bool:
        proceed = False
        for condition in extension.findall("condition"):
            if condition.findall("condition") or condition.findall("regex"):
                raise NotImplementedError(f"{condition.file}:{condition.line}: nested conditions / <regex>")
            brk = (condition.get("break") or "on-false").lower()
            passed, match = self._condition(condition, chan)
            proceed = passed
            wanted = "action" if passed else "anti-action"
            for node in condition.findall(wanted):
                data = node.get("data")
                if data is None:
                    data = node.text.strip()
                if passed and match is not None:
                    data = substitute(data, match)
                action = Action(node.get("application") or "", data, name, anti=not passed,
                                inline=(node.get("inline") or "").lower() == "true")
                if action.inline:
                    action.expanded = expand(action.data, chan)
                    _apply(action, chan)
                result.actions.append(action)
            if (passed and brk == "on-true") or (not passed and brk == "on-false") or brk == "always":
                break
        return proceed

    def _condition(self, condition: Node, chan: dict[str, str]) -> tuple[bool, re.Match[str] | None]:
        field_name = condition.get("field")
        if field_name is None:
            return True, None  # "Absolute Condition"
        expression = expand(condition.get("expression") or "", chan)
        if "$" in field_name:
            value = expand(field_name, chan)
        else:
            value = chan.get(field_name, "")
        match = compile_pcre(expression).search(value)
        # captures are only substituted when the expression has a group, like FreeSWITCH
        return match is not None, (match if match is not None and "(" in expression else None)

    @staticmethod
    def _run_queued(result: HuntResult, chan: dict[str, str]) -> None:
        for action in result.actions:
            if action.inline:
                continue
            action.expanded = expand(action.data, chan)
            _apply(action, chan)
        result.variables = dict(chan)


def _apply(action: Action, chan: dict[str, str]) -> None:
    """The effect of the variable-setting applications on the channel."""
    if action.application in ("set", "export"):
        name, _, value = action.expanded.partition("=")
        if value == "" and name:
            chan.pop(name, None)  # set with an empty value unsets
        elif name:
            chan[name] = value
    elif action.application == "unset":
        chan.pop(action.expanded.strip(), None)
