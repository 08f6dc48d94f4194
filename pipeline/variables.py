"""Call variables: `{{name}}` placeholders in an agent's texts, filled per call.

An agent's prompt, greeting, questions and closing may say `Hi {{name}}`. Each call fills them from
(lowest first) the agent's declared defaults, the call's `context` (outbound: the API request; inbound: the
allowed SIP headers and the inbound webhook's reply) and the built-ins below, which nothing overrides. The API
refuses a placeholder that is neither built-in nor declared (at save) and a call that leaves a declared
variable without a default unfilled (at queue), so a caller never hears braces; render() still drops any
placeholder it cannot fill rather than speak it.

Values are text for speech and the prompt only. They never reach an ESL command, SQL or a shell; even so
each is made plain text here: control characters removed, whitespace collapsed, length bounded.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# A name as in `{{ name }}`: spaces inside the braces are allowed, the name itself is an identifier.
NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]{0,63}"
NAME = re.compile(rf"\A{NAME_PATTERN}\Z")
PLACEHOLDER = re.compile(r"\{\{\s*(" + NAME_PATTERN + r")\s*\}\}")
MAX_VALUE_CHARS = 500  # a value is a name, a date, an order number: not a document
MAX_VARIABLES = 50  # declared per agent

BUILT_INS: dict[str, str] = {
    "caller_number": "the calling number (inbound: the caller; outbound: the caller ID the call is placed from)",
    "called_number": "the called number (inbound: the number dialled; outbound: the callee)",
    "organization_name": "the organization's name",
    "agent_name": "the agent's name",
    "call_id": "the call's id",
    "current_date": "today's date in the agent's time zone, e.g. Monday 7 December 2026",
    "current_time": "the time of day in the agent's time zone, e.g. 14:05",
    "current_weekday": "the day of the week in the agent's time zone, e.g. Monday",
    "timezone": "the agent's time zone, e.g. Europe/Berlin",
}
DEFAULT_TIMEZONE = "UTC"


def placeholders(text: str | None) -> list[str]:
    """The variable names `text` uses, each once, in order of first use."""
    seen: dict[str, None] = {}
    for match in PLACEHOLDER.finditer(text or ""):
        seen.setdefault(match.group(1), None)
    return list(seen)


def sanitize(value: Any) -> str:
    """A value as plain speakable text: numbers and booleans as text, control characters (and other
    non-printing ones) and braces dropped, whitespace runs collapsed to one space, at most MAX_VALUE_CHARS."""
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif value is None:
        text = ""
    else:
        text = str(value)
    # Braces go too: they are never spoken, and a value must not read as a placeholder to a later render.
    text = "".join(ch if unicodedata.category(ch)[0] != "C" and ch not in "{}" else " "
                   for ch in text[:MAX_VALUE_CHARS * 4])
    return " ".join(text.split())[:MAX_VALUE_CHARS]


def is_value(value: Any) -> bool:
    """Whether a context entry can fill a placeholder: text or a number (objects and lists cannot)."""
    return isinstance(value, str | int | float | bool)


def render(text: str | None, values: Mapping[str, Any]) -> str:
    """`text` with each `{{name}}` replaced by the sanitized value; a name without a value becomes nothing
    (never braces), and the spaces around it are tidied."""
    if not text or "{{" not in text:
        return text or ""
    missing = False

    def fill(match: re.Match[str]) -> str:
        nonlocal missing
        value = values.get(match.group(1))
        if value is None or not is_value(value):
            missing = True
            return ""
        return sanitize(value)

    rendered = PLACEHOLDER.sub(fill, text)
    if missing:  # "Hi {{name}}, ..." without a name: "Hi, ..." rather than "Hi , ..."
        rendered = re.sub(r"[ \t]+([,.!?;:])", r"\1", re.sub(r"[ \t]{2,}", " ", rendered)).strip()
    return rendered


@dataclass(frozen=True)
class Declared:
    """One variable an agent declares: its default (None: each call must supply it) and what it is."""

    name: str
    default: str | None = None
    description: str = ""

    @property
    def required(self) -> bool:
        return self.default is None


def declared(variables: Any) -> dict[str, Declared]:
    """An agent's `variables` column ({name: {"default": ..., "description": ...}}) as Declared entries;
    entries that are not well formed are skipped (the API refuses them at save)."""
    out: dict[str, Declared] = {}
    if not isinstance(variables, Mapping):
        return out
    for name, spec in variables.items():
        if not isinstance(name, str) or not NAME.match(name) or not isinstance(spec, Mapping):
            continue
        default = spec.get("default")
        out[name] = Declared(name, None if default is None else sanitize(default),
                             str(spec.get("description") or ""))
    return out


def zone(name: str | None) -> ZoneInfo:
    """The agent's time zone; an unknown name (the API refuses those) falls back to UTC."""
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def valid_timezone(name: Any) -> bool:
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or ".." in name or name.startswith("/"):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def built_in_values(*, caller: str | None, called: str | None, organization: str | None, agent: str | None,
                    call_id: str | None, timezone: str | None, now: dt.datetime | None = None) -> dict[str, str]:
    """The built-ins' values for one call; `now` is an aware datetime (default: the current time)."""
    tz = zone(timezone)
    local = (now or dt.datetime.now(dt.UTC)).astimezone(tz)
    return {"caller_number": caller or "", "called_number": called or "", "organization_name": organization or "",
            "agent_name": agent or "", "call_id": call_id or "",
            "current_date": f"{local:%A} {local.day} {local:%B %Y}", "current_time": f"{local:%H:%M}",
            "current_weekday": f"{local:%A}", "timezone": tz.key}


def context_values(context: Any) -> dict[str, str]:
    """The entries of a call's context that can fill placeholders (top-level text and numbers), sanitized."""
    if not isinstance(context, Mapping):
        return {}
    return {key: sanitize(value) for key, value in context.items()
            if isinstance(key, str) and NAME.match(key) and is_value(value)}


def call_values(declared_variables: Any, context: Any, built_ins: Mapping[str, str]) -> dict[str, str]:
    """Every value one call's texts are rendered with: declared defaults < context < built-ins."""
    values = {name: spec.default for name, spec in declared(declared_variables).items() if spec.default is not None}
    values.update(context_values(context))
    values.update(built_ins)
    return values


def unknown_placeholders(texts: Mapping[str, str | None], declared_names: Iterable[str]) -> dict[str, list[str]]:
    """{field: [names]} for the placeholders in `texts` that are neither built-in nor declared."""
    known = set(BUILT_INS) | set(declared_names)
    out: dict[str, list[str]] = {}
    for field_name, text in texts.items():
        unknown = [name for name in placeholders(text) if name not in known]
        if unknown:
            out[field_name] = unknown
    return out


def missing_required(declared_variables: Any, context: Any) -> list[str]:
    """The declared variables without a default that `context` does not fill (with text or a number)."""
    values = context if isinstance(context, Mapping) else {}
    return [name for name, spec in declared(declared_variables).items()
            if spec.required and not (is_value(values.get(name)) and sanitize(values.get(name)))]
