"""Checking an agent's variables and time zone at save, and a call's context against them at queue time.

The rules (pipeline/variables.py fills the placeholders per call):
  - every `{{name}}` in prompt, greeting, settings.questions[].text and settings.closing is a built-in or a
    declared variable, else 422 naming the field (`unknown_variable`);
  - `variables` is {name: {"default": text|null, "description": text}}; a built-in cannot be declared;
  - an inbound agent's variables all need defaults: nobody queues an inbound call, so nothing could supply a
    required one (the inbound webhook may, but it may also be down);
  - a queued call must fill each declared variable without a default from its context, else 422 on
    `context` (`missing_variable`), per item in a batch.
"""
from __future__ import annotations

from typing import Any

from api.errors import invalid
from pipeline.variables import (
    BUILT_INS,
    MAX_VALUE_CHARS,
    MAX_VARIABLES,
    NAME,
    declared,
    is_value,
    missing_required,
    unknown_placeholders,
    valid_timezone,
)

SPEC_KEYS = {"default", "description"}


def check_variables(value: Any) -> dict[str, Any]:
    """The agent's `variables` as stored, or 422 on `variables`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid("variables", 'variables must be an object such as {"name": {"default": "there"}}')
    if len(value) > MAX_VARIABLES:
        raise invalid("variables", f"an agent declares at most {MAX_VARIABLES} variables")
    out: dict[str, Any] = {}
    for name, spec in value.items():
        if not NAME.match(name):
            raise invalid("variables", f"variable name {name[:70]!r} must be letters, digits and _ "
                          "(not starting with a digit), at most 64 characters")
        if name in BUILT_INS:
            raise invalid("variables", f"{name!r} is a built-in variable; it cannot be declared")
        if not isinstance(spec, dict) or set(spec) - SPEC_KEYS:
            raise invalid("variables", f"variables.{name} must be an object with default and/or description")
        default = spec.get("default")
        if default is not None and (not is_value(default) or len(str(default)) > MAX_VALUE_CHARS):
            raise invalid("variables", f"variables.{name}.default must be text or a number of at most "
                          f"{MAX_VALUE_CHARS} characters, or null (each call must then supply it)")
        description = spec.get("description", "")
        if not isinstance(description, str) or len(description) > 500:
            raise invalid("variables", f"variables.{name}.description must be a string of at most 500 characters")
        out[name] = {"default": default, **({"description": description} if description else {})}
    return out


def check_timezone(value: Any) -> str:
    if not valid_timezone(value):
        raise invalid("timezone", "timezone must be an IANA time zone name such as Europe/Berlin or UTC",
                      "invalid_timezone")
    return value


def agent_texts(prompt: str, greeting: str, settings: Any, tools: Any = None) -> dict[str, str]:
    """The agent's texts that may hold placeholders, by the field name a 422 names."""
    texts = {"prompt": prompt or "", "greeting": greeting or ""}
    settings = settings if isinstance(settings, dict) else {}
    for index, question in enumerate(settings.get("questions") or []):
        text = question if isinstance(question, str) else \
            (question.get("text") or question.get("question")) if isinstance(question, dict) else None
        if isinstance(text, str):
            texts[f"settings.questions[{index}].text"] = text
    if isinstance(settings.get("closing"), str):
        texts["settings.closing"] = settings["closing"]
    for index, tool in enumerate(tools if isinstance(tools, list) else []):
        if isinstance(tool, dict) and isinstance(tool.get("url"), str):
            texts[f"tools[{index}].url"] = tool["url"]
    return texts


def check_agent(agent: Any) -> None:
    """422 when the agent's texts name an unknown variable, or an inbound agent has a required variable."""
    spec = declared(agent.variables)
    unknown = unknown_placeholders(agent_texts(agent.prompt, agent.greeting, agent.settings,
                                               getattr(agent, "tools", None)), spec)
    if unknown:
        field_name, names = next(iter(unknown.items()))
        raise invalid(field_name, f"{field_name} uses {', '.join('{{' + n + '}}' for n in names)}, which is "
                      f"neither a built-in ({', '.join(BUILT_INS)}) nor declared in variables", "unknown_variable")
    if agent.direction == "inbound":
        required = [name for name, item in spec.items() if item.required]
        if required:
            raise invalid("variables", f"an inbound agent's variables need defaults ({', '.join(required)} has "
                          "none): no API request supplies an inbound call's context", "missing_default")


def check_context(agent: Any, context: dict[str, Any]) -> None:
    """422 on `context` when the call leaves a declared variable without a default unfilled."""
    missing = missing_required(agent.variables, context)
    if missing:
        raise invalid("context", f"context must supply {', '.join(missing)} (text or a number): agent "
                      f"{agent.name!r} uses it and declares no default", "missing_variable")
