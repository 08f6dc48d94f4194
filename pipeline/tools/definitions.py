"""What an agent declares as tools, checked once at save and turned into the LLM's tool schemas.

Agent.tools is a list of HTTP tools: {name, description, parameters (a JSON Schema object), method, url,
timeout_s, headers}. Agent.keypad is {"send_dtmf": bool}: whether the agent may press keys on the call
(navigating an IVR). `problems()` returns (field, message) pairs naming the exact field, for 422 errors.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhooks.targets import UnsafeTarget, validate_url_syntax

NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_]{0,63}")  # what OpenAI accepts as a function name, minus "-"
RESERVED = frozenset({"end_call", "transfer_call", "send_dtmf"})
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
# Headers the platform sets itself, or that carry credentials (the body is signed with the organization's
# webhook secret instead: secrets stored here would be returned by the API).
FORBIDDEN_HEADERS = frozenset({"host", "content-length", "content-type", "transfer-encoding", "connection",
                               "authorization", "proxy-authorization", "cookie", "user-agent", "te", "upgrade",
                               "voxbridge-signature"})
MAX_TOOLS = 16
TIMEOUT_RANGE = (0.5, 30.0)
DEFAULT_TIMEOUT_S = 5.0
SCHEMA_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")
# A keypad string for uuid_send_dtmf: digits, * # A-D, and w / W (a 0.5 s / 1 s pause).
DTMF_STRING = re.compile(r"[0-9*#A-Da-dwW]{1,32}")
KEYPAD_KEYS = {"send_dtmf": bool}


@dataclass(frozen=True)
class HttpTool:
    name: str
    description: str
    url: str
    method: str = "POST"
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    timeout_s: float = DEFAULT_TIMEOUT_S
    headers: dict[str, str] = field(default_factory=dict)

    def schema(self) -> dict[str, Any]:
        """The OpenAI function-tool schema the LLM sees."""
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}


SEND_DTMF = {
    "type": "function",
    "function": {
        "name": "send_dtmf",
        "description": "Press keys on the phone keypad (to navigate a phone menu). Digits 0-9, * and #; "
                       "w is a half-second pause.",
        "parameters": {"type": "object", "properties": {
            "digits": {"type": "string", "description": "The keys to press, e.g. \"1\" or \"1234#\"."}},
            "required": ["digits"]},
    },
}


def parse_tools(raw: Any) -> list[HttpTool]:
    """The HttpTools of an agent's stored (already validated) list; anything malformed is skipped."""
    tools = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict) or tool_problems(item, "tools"):
            continue
        tools.append(HttpTool(name=item["name"], description=item.get("description", ""), url=item["url"],
                              method=item.get("method", "POST").upper(),
                              parameters=item.get("parameters") or {"type": "object", "properties": {}},
                              timeout_s=float(item.get("timeout_s", DEFAULT_TIMEOUT_S)),
                              headers=dict(item.get("headers") or {})))
    return tools


def keypad_enabled(keypad: Any) -> bool:
    return isinstance(keypad, dict) and keypad.get("send_dtmf") is True


def valid_dtmf(digits: Any) -> str | None:
    """The digits as uuid_send_dtmf takes them, or None when they are not a plain keypad string."""
    if not isinstance(digits, str) or not DTMF_STRING.fullmatch(digits):
        return None
    return "".join(c if c in "wW" else c.upper() for c in digits)


def tools_problems(raw: Any) -> list[tuple[str, str]]:
    if not isinstance(raw, list):
        return [("tools", "tools must be a list of tool objects")]
    if len(raw) > MAX_TOOLS:
        return [("tools", f"at most {MAX_TOOLS} tools")]
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"tools[{i}]"
        problems += tool_problems(item, where)
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str):
            if name in seen:
                problems.append((f"{where}.name", f"duplicate tool name {name!r}"))
            seen.add(name)
    return problems


def tool_problems(item: Any, where: str) -> list[tuple[str, str]]:
    if not isinstance(item, dict):
        return [(where, "a tool must be an object")]
    unknown = sorted(set(item) - {"name", "description", "parameters", "method", "url", "timeout_s", "headers"})
    if unknown:
        return [(f"{where}.{str(unknown[0])[:40]}", f"unknown tool field {str(unknown[0])[:40]!r}")]
    problems = []
    name = item.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        problems.append((f"{where}.name", "name must be 1-64 letters, digits or _ and start with a letter"))
    elif name in RESERVED:
        problems.append((f"{where}.name", f"{name!r} is a built-in tool name"))
    description = item.get("description", "")
    if not isinstance(description, str) or not description.strip() or len(description) > 1000:
        problems.append((f"{where}.description", "description must be a non-empty string of at most 1000 "
                                                 "characters (the model reads it to decide when to call)"))
    method = item.get("method", "POST")
    if not isinstance(method, str) or method.upper() not in METHODS:
        problems.append((f"{where}.method", f"method must be one of {', '.join(METHODS)}"))
    url = item.get("url")
    try:
        if not isinstance(url, str):
            raise UnsafeTarget("url is required")
        validate_url_syntax(url)
    except UnsafeTarget as exc:
        problems.append((f"{where}.url", str(exc).replace("webhook_url", "url")))
    timeout = item.get("timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) \
            or not TIMEOUT_RANGE[0] <= timeout <= TIMEOUT_RANGE[1]:
        problems.append((f"{where}.timeout_s", f"timeout_s must be a number from {TIMEOUT_RANGE[0]:g} to "
                                               f"{TIMEOUT_RANGE[1]:g}"))
    problems += _header_problems(item.get("headers", {}), f"{where}.headers")
    if "parameters" in item:
        problems += [(f"{where}.parameters{path}", message)
                     for path, message in schema_problems(item["parameters"], top=True)]
    return problems


def _header_problems(headers: Any, where: str) -> list[tuple[str, str]]:
    if not isinstance(headers, dict):
        return [(where, "headers must be an object of name: value strings")]
    if len(headers) > 10:
        return [(where, "at most 10 headers")]
    for name, value in headers.items():
        if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
            return [(where, f"header name {str(name)[:40]!r} is not a valid HTTP header name")]
        if name.lower() in FORBIDDEN_HEADERS or name.lower().startswith("voxbridge-"):
            return [(f"{where}.{name}", f"header {name!r} is set by VoxBridge or carries credentials; requests "
                                        "are signed with the organization's webhook secret instead")]
        if not isinstance(value, str) or len(value) > 500 or any(c in value for c in "\r\n\0"):
            return [(f"{where}.{name}", "a header value must be a string of at most 500 characters on one line")]
    return []


def schema_problems(schema: Any, top: bool = False, depth: int = 0) -> list[tuple[str, str]]:
    """A small, strict JSON Schema subset the models understand: typed properties, required, enum, items."""
    if not isinstance(schema, dict):
        return [("", "must be a JSON Schema object")]
    if depth > 5:
        return [("", "nests too deeply")]
    kind = schema.get("type")
    if top and kind != "object":
        return [(".type", "parameters must be a JSON Schema with type \"object\"")]
    if kind not in SCHEMA_TYPES:
        return [(".type", f"type must be one of {', '.join(SCHEMA_TYPES)}")]
    problems: list[tuple[str, str]] = []
    if kind == "object":
        properties = schema.get("properties", {})
        if not isinstance(properties, dict):
            return [(".properties", "properties must be an object")]
        for name, sub in properties.items():
            if not NAME.fullmatch(str(name)):
                problems.append((".properties", f"property name {str(name)[:40]!r} is not a plain identifier"))
                continue
            problems += [(f".properties.{name}{p}", m) for p, m in schema_problems(sub, depth=depth + 1)]
        required = schema.get("required", [])
        if not isinstance(required, list) or any(r not in properties for r in required):
            problems.append((".required", "required must list names from properties"))
    if kind == "array" and "items" in schema:
        problems += [(f".items{p}", m) for p, m in schema_problems(schema["items"], depth=depth + 1)]
    if "enum" in schema and (not isinstance(schema["enum"], list) or not schema["enum"]):
        problems.append((".enum", "enum must be a non-empty list"))
    if "description" in schema and not isinstance(schema["description"], str):
        problems.append((".description", "description must be a string"))
    return problems


def keypad_problems(raw: Any) -> list[tuple[str, str]]:
    if not isinstance(raw, dict):
        return [("keypad", "keypad must be an object such as {\"send_dtmf\": true}")]
    for key, value in raw.items():
        if key not in KEYPAD_KEYS:
            return [(f"keypad.{str(key)[:40]}", f"unknown keypad option {str(key)[:40]!r} (known: send_dtmf)")]
        if not isinstance(value, KEYPAD_KEYS[key]):
            return [(f"keypad.{key}", f"keypad.{key} must be true or false")]
    return []


def agent_tool_schemas(tools: Sequence[HttpTool], keypad: Mapping[str, Any] | None,
                       defaults: Sequence[dict]) -> tuple[dict, ...]:
    """Everything the LLM may call on this agent: the built-ins, the keypad when enabled, the HTTP tools."""
    schemas = list(defaults)
    if keypad_enabled(keypad):
        schemas.append(SEND_DTMF)
    schemas += [t.schema() for t in tools]
    return tuple(schemas)
