"""Post-call analysis: fill the agent's analysis schema from the call, then validate it against that schema.

The schema is a JSON-Schema subset: type (incl. a list of types), properties, required, enum, items,
additionalProperties: false, minimum/maximum, minLength/maxLength. Unsupported keywords are ignored.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.providers.errors import ProviderError
from pipeline.providers.llm import LLM, turn_fields

log = logging.getLogger(__name__)

_CHECKS = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "null": lambda v: v is None,
}


def validate(schema: Mapping[str, Any], value: Any, path: str = "$") -> list[str]:
    """Every way `value` breaks `schema`, as readable "path: problem" lines (empty when valid)."""
    errors: list[str] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        unknown = [n for n in names if n not in _CHECKS]
        if unknown:
            return [f"{path}: schema uses unknown type {unknown[0]!r}"]
        if not any(_CHECKS[n](value) for n in names):
            return [f"{path}: expected {' or '.join(names)}, got {_type_name(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {list(schema['enum'])!r}")
    if isinstance(value, dict):
        errors += _validate_object(schema, value, path)
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            errors += validate(schema["items"], item, f"{path}[{i}]")
    errors += _validate_bounds(schema, value, path)
    return errors


def _validate_object(schema: Mapping[str, Any], value: dict, path: str) -> list[str]:
    errors = [f"{path}: missing required property {key!r}" for key in schema.get("required", []) if key not in value]
    properties = schema.get("properties") or {}
    for key, item in value.items():
        if key in properties:
            errors += validate(properties[key], item, f"{path}.{key}")
        elif schema.get("additionalProperties") is False:
            errors.append(f"{path}: unexpected property {key!r}")
    return errors


def _validate_bounds(schema: Mapping[str, Any], value: Any, path: str) -> list[str]:
    errors = []
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: {value} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: {value} is above the maximum {schema['maximum']}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{path}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']} characters")
    return errors


def _type_name(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _CHECKS[name](value):
            return name
    return type(value).__name__


@dataclass
class AnalysisResult:
    """data: the filled schema (possibly partial); errors: validation or provider problems; source: llm|scripted."""

    data: dict[str, Any]
    source: str
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def transcript_text(turns: Sequence[Any]) -> str:
    lines = []
    for turn in turns:
        speaker, text = turn_fields(turn)
        if text.strip():
            who = "Caller" if speaker in ("caller", "user") else "Tool" if speaker == "tool" else "Agent"
            lines.append(f"{who}: {text.strip()}")
    return "\n".join(lines)


def analysis_prompt(schema: Mapping[str, Any], agent_prompt: str = "") -> str:
    return (
        "You analyse a finished phone call. Reply with one JSON object only, matching this JSON schema; "
        "use null or leave out what the call did not establish.\n"
        f"Schema: {json.dumps(schema)}"
        + (f"\nThe agent's instructions were: {agent_prompt}" if agent_prompt else "")
    )


def analyze_call(schema: Mapping[str, Any] | None, turns: Sequence[Any], llm: LLM,
                 agent_prompt: str = "") -> AnalysisResult:
    """Fill `schema` from the call: the scripted agent's captured answers offline, otherwise the LLM's JSON.

    Never raises for provider or validation problems: they are returned in `errors` so the caller can still store
    what there is and send call.analyzed.
    """
    if not schema:
        return AnalysisResult(data={}, source="none")
    answers = getattr(llm, "answers", None)
    if callable(answers):
        data = _only_schema_keys(schema, dict(answers(turns)))
        return AnalysisResult(data=data, source="scripted", errors=validate(schema, data))
    try:
        data = llm.complete_json(analysis_prompt(schema, agent_prompt), transcript_text(turns) or "(no speech)")
    except ProviderError as exc:
        log.warning("post-call analysis failed: %s", exc)
        return AnalysisResult(data={}, source="llm", errors=[f"provider error: {exc}"])
    if not isinstance(data, dict):
        return AnalysisResult(data={}, source="llm", errors=[f"$: expected object, got {_type_name(data)}"])
    data = _drop_nulls_for_non_null(schema, data)
    return AnalysisResult(data=data, source="llm", errors=validate(schema, data))


def _only_schema_keys(schema: Mapping[str, Any], data: dict) -> dict:
    properties = schema.get("properties")
    return {k: v for k, v in data.items() if k in properties} if properties else data


def _drop_nulls_for_non_null(schema: Mapping[str, Any], data: dict) -> dict:
    """Models write null for "unknown" even where the type has no null; treat that as absent, not a type error."""
    properties = schema.get("properties") or {}
    out = {}
    for key, value in data.items():
        declared = (properties.get(key) or {}).get("type")
        allows_null = declared is None or declared == "null" or (isinstance(declared, list) and "null" in declared)
        if value is None and not allows_null:
            continue
        out[key] = value
    return out
