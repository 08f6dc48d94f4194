"""Validation of an agent's tools, keypad options and keypad questions at save: 422 naming the exact field.

The rules live in pipeline/tools/definitions.py (the pipeline reads the same definitions); this module turns
their problems into API errors and checks the keypad options of the script's questions (settings.questions).
"""
from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlparse

from api.errors import invalid
from pipeline.tools.definitions import keypad_problems, tools_problems
from pipeline.tools.digits import question_problems


def checked_tools(value: Any, allow_private: bool = False) -> list[dict[str, Any]]:
    problems = tools_problems(value)
    if problems:
        field, message = problems[0]
        raise invalid(field, message)
    if not allow_private:
        for i, tool in enumerate(value):
            if not _public_host(urlparse(tool["url"]).hostname or ""):
                raise invalid(f"tools[{i}].url", "url must point at a public address (WEBHOOK_ALLOW_PRIVATE is off)")
    # Methods are stored upper-case: what is returned is what runs.
    return [{**tool, "method": str(tool.get("method", "POST")).upper()} for tool in value]


def _public_host(host: str) -> bool:
    """False for a literal private, loopback or link-local address (or localhost). A name is resolved and
    checked by the SSRF guard at each call (webhooks/targets.py): what it resolves to may change."""
    if host.lower().rstrip(".") == "localhost" or host.lower().endswith(".localhost"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True
    return address.is_global and not address.is_multicast


def checked_keypad(value: Any) -> dict[str, Any]:
    problems = keypad_problems(value)
    if problems:
        raise invalid(*problems[0])
    return value


def check_questions(settings: Any, tools: list[dict[str, Any]] | None) -> None:
    """settings.questions' keypad and tool steps: a tool step must name one of the agent's tools."""
    questions = settings.get("questions") if isinstance(settings, dict) else None
    if not isinstance(questions, list):
        return
    names = {t.get("name") for t in tools or [] if isinstance(t, dict)}
    for i, question in enumerate(questions):
        for field, message in question_problems(question, f"settings.questions[{i}]", names):
            raise invalid(field, message)


# OpenAPI (api/openapi.py): the Agent's tools and keypad, with one worked example each.
TOOL_EXAMPLE = {"name": "check_slot", "description": "Find the next free appointment slot for a kind of visit.",
                "parameters": {"type": "object", "properties": {"kind": {"type": "string",
                                                                         "enum": ["cleaning", "checkup"]}},
                               "required": ["kind"]},
                "method": "POST", "url": "https://api.example.com/voxbridge/slots", "timeout_s": 4,
                "headers": {"X-Clinic": "downtown"}}
TOOLS_SCHEMA = {
    "type": "array", "maxItems": 16, "example": [TOOL_EXAMPLE],
    "description": "HTTP tools the agent's LLM may call. VoxBridge sends {tool, arguments, call_id, agent_id} as "
                   "JSON (GET: the arguments as the query) signed with the organization's webhook secret in "
                   "VoxBridge-Signature (verify it like a webhook); the JSON answer (at most 16 KB read, 4000 "
                   "characters kept) goes back to the model, which speaks it. Past 1 s the agent says a filler "
                   "line; a timeout or an error reaches the model as {\"ok\": false, \"error\"} to apologise "
                   "about. Each call is a \"tool\" line of the transcript and a call event. A scripted agent "
                   "calls one at a step: settings.questions[i] = {\"key\", \"tool\", \"arguments\", \"say\": "
                   "\"The next free slot is {slot}.\"}.",
    "items": {"type": "object", "required": ["name", "description", "url"], "additionalProperties": False,
              "properties": {
                  "name": {"type": "string", "pattern": "^[a-zA-Z][a-zA-Z0-9_]{0,63}$",
                           "description": "not end_call, transfer_call or send_dtmf; unique per agent"},
                  "description": {"type": "string", "minLength": 1, "maxLength": 1000},
                  "parameters": {"type": "object", "description": "a JSON Schema with type \"object\""},
                  "method": {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"],
                             "default": "POST"},
                  "url": {"type": "string", "format": "uri", "description": "public http(s) address only"},
                  "timeout_s": {"type": "number", "minimum": 0.5, "maximum": 30, "default": 5},
                  "headers": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 500},
                              "description": "static extra headers (no Authorization/Cookie: the body is signed)"},
              }},
}
KEYPAD_SCHEMA = {
    "type": "object", "additionalProperties": False, "example": {"send_dtmf": True},
    "description": "send_dtmf: the model may press keys (0-9 * # A-D, w/W pauses) to navigate a phone menu "
                   "(uuid_send_dtmf). Keypad answers: a question in settings.questions with \"input\": \"dtmf\", "
                   "e.g. {\"key\": \"account\", \"text\": \"Enter your account number, then pound.\", \"input\": "
                   "\"dtmf\", \"max_digits\": 8, \"terminator\": \"#\", \"timeout_s\": 5}; the digits are its answer "
                   "in call.analyzed.",
    "properties": {"send_dtmf": {"type": "boolean", "default": False}},
}
