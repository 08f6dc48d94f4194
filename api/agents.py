"""/v1/agents: the organization's voice agents."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, jsonify

from api.agent_tools import check_questions, checked_keypad, checked_tools
from api.agent_variables import check_agent, check_timezone, check_variables
from api.errors import ApiError, invalid
from api.validation import json_body, reject_unknown
from calls.representation import iso
from models import DIRECTIONS, Agent, utcnow

bp = Blueprint("agents", __name__, url_prefix="/v1/agents")

PROVIDERS = {"stt": ("pocketsphinx", "deepgram"), "llm": ("scripted", "openai"), "tts": ("espeak", "elevenlabs")}
TEXT_LIMITS = {"name": 200, "prompt": 20_000, "greeting": 2_000, "voice": 100, "language": 20}
FIELDS = set(TEXT_LIMITS) | set(PROVIDERS) | {"direction", "settings", "analysis_schema", "active", "variables",
                                               "timezone", "tools", "keypad"}


def agent_to_dict(agent: Agent) -> dict[str, Any]:
    return {"id": agent.id, "object": "agent", "name": agent.name, "direction": agent.direction,
            "prompt": agent.prompt, "greeting": agent.greeting, "voice": agent.voice, "language": agent.language,
            "variables": agent.variables or {}, "timezone": agent.timezone or "UTC",
            "stt": agent.stt, "llm": agent.llm, "tts": agent.tts, "settings": agent.settings,
            "analysis_schema": agent.analysis_schema, "active": agent.active,
            "tools": agent.tools or [], "keypad": agent.keypad or {},
            "created_at": iso(agent.created_at), "updated_at": iso(agent.updated_at)}


def _provider_block(kind: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(kind, f"{kind} must be an object such as {{\"provider\": \"{PROVIDERS[kind][0]}\"}}")
    provider = value.get("provider", PROVIDERS[kind][0])
    if provider not in PROVIDERS[kind]:
        raise invalid(kind, f"{kind}.provider must be one of {', '.join(PROVIDERS[kind])}")
    if any(not isinstance(k, str) or "key" in k.lower() for k in value):
        # Provider keys come from the environment, never from the API (they would be stored and returned).
        raise invalid(kind, f"{kind} must not carry API keys; set them in the environment")
    return {**value, "provider": provider}


def _schema(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") != "object" or not isinstance(value.get("properties"), dict):
        raise invalid("analysis_schema", "analysis_schema must be a JSON Schema object with properties")
    for name, prop in value["properties"].items():
        if not isinstance(prop, dict) or prop.get("type") not in ("string", "boolean", "integer", "number"):
            raise invalid("analysis_schema", f"property {name!r} needs a type of string, boolean, integer or number")
    return value


def _apply(agent_fields: dict[str, Any], body: dict[str, Any]) -> None:
    for name, limit in TEXT_LIMITS.items():
        if name in body:
            value = body[name]
            if not isinstance(value, str) or len(value) > limit or (name == "name" and not value.strip()):
                raise invalid(name, f"{name} must be a non-empty string of at most {limit} characters"
                              if name == "name" else f"{name} must be a string of at most {limit} characters")
            agent_fields[name] = value
    if "direction" in body:
        if body["direction"] not in DIRECTIONS:
            raise invalid("direction", "direction must be inbound or outbound")
        agent_fields["direction"] = body["direction"]
    for kind in PROVIDERS:
        if kind in body:
            agent_fields[kind] = _provider_block(kind, body[kind])
    if "settings" in body:
        from calls.agent_settings import check_agent_settings  # the pipeline's own list of the keys it reads

        problems = check_agent_settings(body["settings"])
        if problems:
            raise invalid("settings", "; ".join(problems))
        agent_fields["settings"] = body["settings"]
    if "tools" in body:
        agent_fields["tools"] = checked_tools(body["tools"], current_app.config["VOXBRIDGE"].webhook_allow_private)
    if "keypad" in body:
        agent_fields["keypad"] = checked_keypad(body["keypad"])
    if "analysis_schema" in body:
        agent_fields["analysis_schema"] = _schema(body["analysis_schema"])
    if "variables" in body:
        agent_fields["variables"] = check_variables(body["variables"])
    if "timezone" in body:
        agent_fields["timezone"] = check_timezone(body["timezone"])
    if "active" in body:
        if not isinstance(body["active"], bool):
            raise invalid("active", "active must be true or false")
        agent_fields["active"] = body["active"]


def _require_voice(agent: Agent) -> None:
    """422 invalid_voice, naming the field, when the agent's TTS provider cannot speak with its voice: the call's
    voice session would otherwise fail to start when the call is answered."""
    from pipeline.providers.voices import voice_problem

    problem = voice_problem(agent.voice, agent.tts)
    if problem is not None:
        raise invalid(problem[0], problem[1], "invalid_voice")


def _require_buildable(agent: Agent) -> None:
    """422 when a provider the agent names cannot be built on this deployment (no key, no SDK): a call would
    otherwise learn it at answer time. The same check runs at start (app.py serve)."""
    from pipeline.providers.registry import unavailable_providers

    problems = unavailable_providers(agent, current_app.config["VOXBRIDGE"])
    if problems:
        kind = next(iter(problems))
        raise ApiError(422, "provider_unavailable", "; ".join(problems.values()), kind)


def get_agent(agent_id: str) -> Agent:
    agent = Agent.get_or_none(Agent.id == agent_id, Agent.organization == g.org, Agent.deleted_at.is_null())
    if agent is None:
        raise ApiError(404, "not_found", f"agent {agent_id} not found")
    return agent


@bp.get("")
def list_agents():
    rows = (Agent.select().where(Agent.organization == g.org, Agent.deleted_at.is_null())
            .order_by(Agent.created_at, Agent.id))
    return jsonify({"object": "list", "data": [agent_to_dict(a) for a in rows]})


@bp.post("")
def create():
    body = json_body()
    reject_unknown(body, FIELDS, "Agent")
    for required in ("name", "direction"):
        if required not in body:
            raise invalid(required, f"{required} is required", "missing_field")
    fields: dict[str, Any] = {}
    _apply(fields, body)
    agent = Agent(organization=g.org, **fields)
    check_questions(agent.settings, agent.tools)
    _require_voice(agent)
    _require_buildable(agent)
    check_agent(agent)  # placeholders: built-in or declared (api/agent_variables.py)
    agent.save(force_insert=True)
    return jsonify(agent_to_dict(agent)), 201


@bp.get("/<agent_id>")
def read(agent_id: str):
    return jsonify(agent_to_dict(get_agent(agent_id)))


@bp.patch("/<agent_id>")
def update(agent_id: str):
    agent = get_agent(agent_id)
    body = json_body()
    reject_unknown(body, FIELDS, "Agent")
    fields: dict[str, Any] = {}
    _apply(fields, body)
    for name, value in fields.items():
        setattr(agent, name, value)
    if "settings" in body or "tools" in body:  # an agent saved before these checks keeps its other edits
        check_questions(agent.settings, agent.tools)
    _require_voice(agent)
    _require_buildable(agent)
    check_agent(agent)  # placeholders: built-in or declared (api/agent_variables.py)
    agent.updated_at = utcnow()
    agent.save()
    return jsonify(agent_to_dict(agent))


@bp.delete("/<agent_id>")
def delete(agent_id: str):
    agent = get_agent(agent_id)
    # Soft delete: past calls keep pointing at the agent that handled them.
    agent.deleted_at = utcnow()
    agent.active = False
    agent.save()
    return "", 204
