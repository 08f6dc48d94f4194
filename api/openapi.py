"""GET /openapi.json: an OpenAPI 3.1 document describing every route (tests hold it to the url map)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from api.agent_tools import KEYPAD_SCHEMA, TOOLS_SCHEMA
from models import CALL_DIRECTIONS, STATUSES

bp = Blueprint("openapi", __name__)

ERROR = {"$ref": "#/components/schemas/Error"}
E164 = {"type": "string", "minLength": 1, "maxLength": 40, "description": "Phone number; normalized to E.164",
        "examples": ["+14155550123"]}
DATE_TIME = {"type": ["string", "null"], "format": "date-time"}
LATENCY_MS = {"type": ["number", "null"], "minimum": 0}
ID = {"type": "string", "minLength": 1}
# Set by the server and returned in responses. Request bodies must not carry them: a request that does is a
# 422 read_only_field naming the field (api.validation.reject_unknown), never silently ignored.
RO_ID = {"type": "string", "readOnly": True}
RO_TIME = {"type": "string", "format": "date-time", "readOnly": True}


def _const(value: str) -> dict[str, Any]:
    return {"type": "string", "const": value, "readOnly": True}

# {{name}} placeholders (pipeline/variables.py): declared here, filled per call from its context.
VARIABLES: dict[str, Any] = {
    "type": "object", "maxProperties": 50,
    "description": "Variables the agent's prompt, greeting, settings.questions[].text and settings.closing may use "
                   "as {{name}}, beyond the built-ins caller_number, called_number, organization_name, agent_name, "
                   "call_id, current_date, current_time, current_weekday, timezone. Each call fills them from its "
                   "context; default null means every outbound call must supply it (else 422 on context); an "
                   "inbound agent's variables need defaults. A placeholder neither built-in nor declared is a 422 "
                   "naming the field.",
    "additionalProperties": {"type": "object", "additionalProperties": False, "properties": {
        "default": {"type": ["string", "number", "boolean", "null"]},
        "description": {"type": "string", "maxLength": 500}}},
    "example": {"name": {"default": "there", "description": "the callee's first name"},
                "order_id": {"default": None}}}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}}}},
    "OutboundCallRequest": {"type": "object", "required": ["to"], "additionalProperties": False, "properties": {
        "to": E164, "from": E164, "agent_id": ID,
        "context": {"type": "object", "description": "At most 16 KB; never sent to FreeSWITCH. Top-level text and "
                    "number entries fill the agent's {{variables}}; each variable it declares without a default "
                    "must be here (else 422 missing_variable on context)", "example": {"name": "Ada"}},
        "webhook_url": {"type": "string", "format": "uri"},
        "schedule_at": {"type": "string", "format": "date-time", "minLength": 1},
        "max_attempts": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
        "machine_detection": {"$ref": "#/components/schemas/MachineDetection"}}},
    "MachineDetection": {
        "type": "object", "additionalProperties": False,
        "description": "Answering-machine detection on an outbound call; on a call it replaces the agent's "
                       "settings.machine_detection",
        "properties": {
            "mode": {"type": "string", "enum": ["off", "hangup", "leave_message", "continue"], "default": "off"},
            "message": {"type": "string", "minLength": 1, "maxLength": 1000,
                        "description": "leave_message: said once after the beep or the greeting's end"},
            "timeout_ms": {"type": "integer", "minimum": 2000, "maximum": 15000, "default": 5000,
                           "description": "no decision by then: treated as a person (answered_by unknown)"},
            "retry": {"type": "boolean", "default": False,
                      "description": "retry a call a machine answered (attempts permitting)"}}},
    "BatchRequest": {"type": "object", "required": ["calls"], "additionalProperties": False, "properties": {"calls": {
        "type": "array", "maxItems": 1000, "items": {"$ref": "#/components/schemas/OutboundCallRequest"}}}},
    "Call": {"type": "object", "properties": {
        "id": {"type": "string", "format": "uuid"}, "object": {"type": "string", "const": "call"},
        "organization_id": {"type": "string"}, "agent_id": {"type": ["string", "null"]},
        "direction": {"type": "string", "enum": list(CALL_DIRECTIONS),
                      "description": "web: a browser talking to the agent (POST /v1/agents/{agent_id}/web-calls)"},
        "to": {**E164, "type": ["string", "null"], "description": "the number dialed; null for a web call"},
        "from": {**E164, "type": ["string", "null"]},
        "status": {"type": "string", "enum": [
            "queued", "scheduled", "calling", "ringing", "in-progress", "completed", "failed", "no-answer",
            "busy", "canceled"]},
        "context": {"type": "object"}, "webhook_url": {"type": ["string", "null"]},
        "schedule_at": DATE_TIME, "attempt": {"type": "integer"}, "max_attempts": {"type": "integer"},
        "next_attempt_at": {**DATE_TIME, "description": "set while queued or scheduled"},
        "hangup_cause": {"type": ["string", "null"]}, "sip_code": {"type": ["integer", "null"]},
        "failure_reason": {"type": ["string", "null"]},
        "queued_at": DATE_TIME, "dialed_at": DATE_TIME, "answered_at": DATE_TIME, "ended_at": DATE_TIME,
        "duration_seconds": {"type": ["integer", "null"]}, "billed_minutes": {"type": "integer"},
        "answers": {"type": ["object", "null"]}, "recording_path": {"type": ["string", "null"]},
        "machine_detection": {"type": ["object", "null"]},
        "answered_by": {"type": ["string", "null"], "enum": ["human", "machine", "unknown", None],
                        "description": "set when answering-machine detection ran"},
        "answered_by_ms": {"type": ["integer", "null"], "description": "from answer to that decision"},
        "created_at": {"type": "string", "format": "date-time"},
        "latency": {"$ref": "#/components/schemas/CallLatency"},
        "transcript": {"type": "array", "description": "absent in lists and batch results; lines {speaker: agent | "
                       "caller | tool, text, start_ms, end_ms, interrupted, source?: dtmf | voicemail | tool, tool?: "
                       "{name, id, status, duration_ms, arguments, result} (a tool call, arguments and result cut to "
                       "1,000 characters), latency?: an agent turn's breakdown (TurnLatency)}", "items": {
                       "type": "object", "properties": {"latency": {"$ref": "#/components/schemas/TurnLatency"}}}}}},
    "TurnLatency": {"type": "object", "description": "where one agent turn's time went, in ms (null: the turn had "
                    "no such step)", "properties": {
        "eou_ms": {**LATENCY_MS, "description": "caller's last voiced frame to the end of the turn being decided"},
        "stt_final_ms": {**LATENCY_MS, "description": "caller's last voiced frame to the final transcript"},
        "llm_first_token_ms": {**LATENCY_MS, "description": "reply started to the LLM's first token"},
        "tts_first_audio_ms": {**LATENCY_MS, "description": "first sentence sent to the TTS to its first audio"},
        "delivery_ms": {**LATENCY_MS, "description": "first TTS audio to the first agent audio handed to the switch"},
        "total_ms": {**LATENCY_MS, "description": "caller's last voiced frame to the first agent audio out"}}},
    "CallLatency": {"type": "object", "description": "per component of TurnLatency, over the call's agent turns",
                    "properties": {name: {"$ref": "#/components/schemas/LatencySummary"} for name in (
                        "eou_ms", "stt_final_ms", "llm_first_token_ms", "tts_first_audio_ms", "delivery_ms",
                        "total_ms")}},
    "LatencySummary": {"type": "object", "required": ["p50", "max", "count"], "properties": {
        "p50": LATENCY_MS, "max": LATENCY_MS, "count": {"type": "integer", "minimum": 0}}},
    "CallEventList": {"type": "object", "properties": {"object": {"type": "string", "const": "list"}, "data": {
        "type": "array", "items": {"type": "object", "properties": {
            "from": {"type": ["string", "null"]}, "to": {"type": "string"}, "reason": {"type": ["string", "null"]},
            "data": {"type": ["object", "null"]}, "at": {"type": "string", "format": "date-time"}}}}}},
    "BatchResult": {"type": "object", "properties": {
        "object": {"type": "string", "const": "batch"}, "created": {"type": "integer"},
        "failed": {"type": "integer"},
        "error": {"$ref": "#/components/schemas/Error/properties/error",
                  "description": "present (with status 422) only when every item was rejected"},
        "results": {"type": "array", "items": {"type": "object", "properties": {
            "index": {"type": "integer"}, "call": {"$ref": "#/components/schemas/Call"},
            "error": {"$ref": "#/components/schemas/Error/properties/error"}}}}}},
    "Agent": {"type": "object", "additionalProperties": False, "properties": {
        "id": RO_ID, "object": _const("agent"),
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "direction": {"type": "string", "enum": ["inbound", "outbound"]},
        "prompt": {"type": "string", "maxLength": 20_000}, "greeting": {"type": "string", "maxLength": 2_000},
        "variables": VARIABLES,
        "timezone": {"type": "string", "minLength": 1, "maxLength": 64, "default": "UTC",
                     "description": "IANA name (Europe/Berlin): current_date and current_time are local to it"},
        "voice": {"type": "string", "maxLength": 100,
                  "description": "espeak: <language>[+<variant>] installed here; elevenlabs: a 20-character voice id"},
        "language": {"type": "string", "maxLength": 20}, "stt": {"type": "object"}, "llm": {"type": "object"},
        "tts": {"type": "object"}, "settings": {"type": "object"}, "analysis_schema": {"type": ["object", "null"]},
        "tools": TOOLS_SCHEMA, "keypad": KEYPAD_SCHEMA,
        "active": {"type": "boolean"}, "created_at": RO_TIME, "updated_at": RO_TIME}},
    "AgentCreate": {"allOf": [{"$ref": "#/components/schemas/Agent"}], "required": ["name", "direction"]},
    "PhoneNumber": {"type": "object", "required": ["number"], "additionalProperties": False, "properties": {
        "id": RO_ID, "object": _const("phone_number"), "number": E164,
        "agent_id": {"type": ["string", "null"], "minLength": 1},
        "label": {"type": ["string", "null"], "maxLength": 200}, "created_at": RO_TIME}},
    "PhoneNumberUpdate": {"type": "object", "additionalProperties": False, "properties": {
        "agent_id": {"type": ["string", "null"], "minLength": 1},
        "label": {"type": ["string", "null"], "maxLength": 200}}},
    "SipAccount": {"type": "object", "additionalProperties": False, "properties": {
        "id": RO_ID, "object": _const("sip_account"), "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "sip_server": {"type": ["string", "null"], "description": "host[:port] of the PBX; empty = outbound off"},
        "transport": {"type": "string", "enum": ["auto", "udp", "tcp", "tls"]},
        "country": {"type": ["string", "null"], "description": "ISO 3166 alpha-2"},
        "allowed_ips": {"type": ["string", "array"], "description": "IPv4 addresses and CIDR blocks"},
        "outbound_username": {"type": ["string", "null"]},
        "outbound_password": {"type": ["string", "null"], "writeOnly": True,
                              "description": "absent keeps, null or empty clears, a value replaces"},
        "inbound_username": {"type": ["string", "null"]},
        "inbound_password": {"type": ["string", "null"], "writeOnly": True},
        "outbound_auth": {"type": "string", "enum": ["digest", "ip"], "readOnly": True},
        "outbound_enabled": {"type": "boolean", "readOnly": True},
        "inbound_auth": {"type": "string", "enum": ["digest", "ip_allow_list"], "readOnly": True},
        "provisioned": {"type": "boolean", "readOnly": True},
        "provision_error": {"type": ["string", "null"], "readOnly": True},
        "provisioned_at": {**DATE_TIME, "readOnly": True},
        "platform": {"type": "object", "readOnly": True}, "created_at": RO_TIME, "updated_at": RO_TIME}},
    "SipAccountCreate": {"allOf": [{"$ref": "#/components/schemas/SipAccount"}], "required": ["name"]},
    "BindNumber": {"type": "object", "required": ["number"], "additionalProperties": False, "properties": {
        "number": E164, "label": {"type": ["string", "null"], "maxLength": 200}}},
    "WebCall": {"type": "object", "properties": {
        "object": {"type": "string", "const": "web_call"}, "call": {"$ref": "#/components/schemas/Call"},
        "token": {"type": "string", "description": "single-use; opens the call's audio WebSocket once"},
        "websocket_url": {"type": "string", "format": "uri",
                          "description": "ws(s)://.../talk/{call_id}?token=...: the page opens it with an allowed "
                                         "Origin (WEB_CALL_ALLOWED_ORIGINS); protocol in webcall/server.py"},
        "expires_at": {"type": "string", "format": "date-time",
                       "description": "the token's end; a call no browser opened by then ends failed"}}},
    "TransferRequest": {"type": "object", "required": ["to"], "additionalProperties": False, "properties": {
        "to": E164, "mode": {"type": "string", "enum": ["bridge", "refer"], "default": "bridge"}}},
}


def read_only(schema: str) -> frozenset[str]:
    """The properties of a component schema that only responses carry (readOnly)."""
    properties = SCHEMAS[schema].get("properties", {})
    return frozenset(name for name, prop in properties.items() if prop.get("readOnly"))


def _ref(name: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}


def _op(summary: str, ok: int = 200, body: str | None = None, result: str | None = None,
        errors: tuple[int, ...] = (401, 404, 429), params: list[dict] | None = None,
        auth: bool = True, also: dict[int, str] | None = None) -> dict[str, Any]:
    """One operation; `also` adds further success statuses (status -> description), same result."""
    responses: dict[str, Any] = {str(ok): {"description": "OK", **(_ref(result) if result else {})}}
    for status, description in (also or {}).items():
        responses[str(status)] = {"description": description, **(_ref(result) if result else {})}
    for status in errors:
        responses[str(status)] = {"description": "Error", "content": {"application/json": {"schema": ERROR}}}
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if body:
        op["requestBody"] = {"required": True, **_ref(body)}
    if params:
        op["parameters"] = params
    if not auth:
        op["security"] = []
    return op


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    """A query filter. Present means used: an empty value is refused (minLength 1), never read as 'no filter'."""
    return {"name": name, "in": "query", "required": False,
            "schema": schema or {"type": "string", "minLength": 1}, "description": description}


HEALTH = {"type": "object", "required": ["status"], "properties": {
    "status": {"type": "string", "enum": ["ok", "degraded"]},
    "database": {"type": "string", "enum": ["ok", "unreachable"]},
    "telephony": {"type": "string", "enum": ["configured", "not_configured"]},
    "freeswitch": {"description": "each node (node, alive, sessions, max_sessions), or \"unknown\"",
                   "oneOf": [{"type": "array", "items": {"type": "object"}}, {"type": "string"}]},
    "down": {"type": "array", "items": {"type": "string", "enum": ["database", "freeswitch", "call_control"]}},
    "worker": {"type": "integer", "description": "liveness only: which API process answered (0 dispatches)"}}}


def _health_op(summary: str, ready: bool = False) -> dict[str, Any]:
    body = {"content": {"application/json": {"schema": HEALTH}}}
    responses = {"200": {"description": "OK", **body}}
    if ready:
        responses["503"] = {"description": "Degraded: `down` names what is down", **body}
    return {"summary": summary, "responses": responses, "security": []}


CALL_ID = [_path_param("call_id")]
AGENT_ID = [_path_param("agent_id")]
NUMBER_ID = [_path_param("number_id")]
ACCOUNT_ID = [_path_param("account_id")]
WRITE_ERRORS = (400, 401, 402, 409, 413, 415, 422, 429)

PATHS: dict[str, dict[str, Any]] = {
    "/health": {"get": _health_op("Readiness: 200 when the database and, with telephony configured, at least one "
                                  "FreeSWITCH node are up; 503 `degraded` with `down` naming what is not", ready=True)},
    "/health/live": {"get": _health_op("Liveness: the process answers; no dependency is asked (restart decisions)")},
    "/openapi.json": {"get": _op("This document", auth=False, errors=())},
    "/metrics": {"get": {"summary": "Prometheus metrics (docs/observability.md): a METRICS_TOKEN bearer token, or "
                                    "without one a client in METRICS_ALLOW_FROM", "security": [],
                         "responses": {"200": {"description": "Prometheus text exposition",
                                               "content": {"text/plain": {"schema": {"type": "string"}}}},
                                       "401": {"description": "METRICS_TOKEN is set and was not sent",
                                               "content": {"application/json": {"schema": ERROR}}},
                                       "403": {"description": "no token is set and the client is not allowed",
                                               "content": {"application/json": {"schema": ERROR}}}}}},
    "/v1/calls/outbound": {"post": _op("Queue an outbound call (Idempotency-Key honoured)", 201,
                                       "OutboundCallRequest", "Call", WRITE_ERRORS,
                                       [{"name": "Idempotency-Key", "in": "header", "required": False,
                                         "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                                                    "pattern": "\\S"}}])},
    "/v1/calls/outbound/batch": {"post": _op("Queue up to 1,000 calls in one transaction", 200, "BatchRequest",
                                             "BatchResult", WRITE_ERRORS)},
    "/v1/calls": {"get": _op("List calls, newest first, with cursor pagination", params=[
        _query("status", "comma-separated statuses", type="string", minLength=1,
               pattern=f"^({'|'.join(STATUSES)})(,({'|'.join(STATUSES)}))*$"),
        _query("direction", "inbound, outbound or web", type="string", enum=list(CALL_DIRECTIONS)),
        _query("agent_id", "agent"), _query("created_after", "ISO 8601 with a zone", type="string", minLength=1,
                                            format="date-time"),
        _query("created_before", "ISO 8601 with a zone", type="string", minLength=1, format="date-time"),
        _query("limit", "page size", type="integer", minimum=1, maximum=200, default=50),
        _query("cursor", "next_cursor of the previous page")],
        errors=(400, 401, 422, 429))},
    "/v1/calls/{call_id}": {"get": _op("Read a call with its transcript", result="Call", params=CALL_ID)},
    "/v1/calls/{call_id}/events": {"get": _op("The call's timeline of transitions", result="CallEventList",
                                              params=CALL_ID)},
    "/v1/calls/{call_id}/cancel": {"post": _op("Cancel a queued or scheduled call (200); hang up a live one (202)",
                                               result="Call", params=CALL_ID, errors=(401, 404, 409, 429, 503),
                                               also={202: "A live call: hang-up requested"})},
    "/v1/calls/{call_id}/hangup": {"post": _op("Hang up a live call", 202, result="Call", params=CALL_ID,
                                               errors=(401, 404, 409, 429, 503))},
    "/v1/calls/{call_id}/transfer": {"post": _op("Transfer a live call (bridge or SIP REFER)", 202,
                                                 "TransferRequest", params=CALL_ID,
                                                 errors=(400, 401, 404, 409, 415, 422, 429, 503))},
    "/v1/agents": {"get": _op("List agents"),
                   "post": _op("Create an agent", 201, "AgentCreate", "Agent", (400, 401, 415, 422, 429))},
    "/v1/agents/{agent_id}": {"get": _op("Read an agent", result="Agent", params=AGENT_ID),
                              "patch": _op("Update an agent", 200, "Agent", "Agent",
                                           (400, 401, 404, 415, 422, 429), AGENT_ID),
                              "delete": _op("Delete (deactivate) an agent", 204, params=AGENT_ID)},
    "/v1/agents/{agent_id}/web-calls": {"post": _op(
        "Talk to the agent from a browser: a live call (direction web) and the single-use token of its audio "
        "WebSocket", 201, result="WebCall", params=AGENT_ID, errors=(401, 402, 404, 409, 429, 503))},
    "/talk/{agent_id}": {"get": {
        "summary": "The talk page (HTML): microphone to the agent, its voice back; ?call=&token= from a web call, "
                   "or an API key typed into it", "security": [], "parameters": AGENT_ID,
        "responses": {"200": {"description": "OK", "content": {"text/html": {"schema": {"type": "string"}}}},
                      "404": {"description": "Error", "content": {"application/json": {"schema": ERROR}}},
                      "503": {"description": "Error", "content": {"application/json": {"schema": ERROR}}}}}},
    "/v1/organization": {"get": _op("The organization and its minutes usage")},
    "/v1/numbers": {"get": _op("List the organization's phone numbers"),
                    "post": _op("Assign a number to the organization", 201, "PhoneNumber", "PhoneNumber",
                                (400, 401, 409, 415, 422, 429))},
    "/v1/numbers/{number_id}": {"patch": _op("Change a number's inbound agent or label", 200, "PhoneNumberUpdate",
                                             "PhoneNumber", (400, 401, 404, 415, 422, 429), NUMBER_ID),
                                "delete": _op("Release a number", 204, params=NUMBER_ID)},
    "/v1/sip-accounts": {"get": _op("List SIP accounts"),
                         "post": _op("Create a SIP account (provisions FreeSWITCH)", 201, "SipAccountCreate",
                                     "SipAccount",
                                     (400, 401, 415, 422, 429))},
    "/v1/sip-accounts/{account_id}": {
        "get": _op("The account card, with the platform parameters for the PBX", result="SipAccount",
                   params=ACCOUNT_ID),
        "patch": _op("Edit a SIP account", 200, "SipAccount", "SipAccount", (400, 401, 404, 415, 422, 429),
                     ACCOUNT_ID),
        "delete": _op("Delete: unbinds numbers, removes FreeSWITCH objects", params=ACCOUNT_ID)},
    "/v1/sip-accounts/{account_id}/numbers": {
        "get": _op("Numbers bound to the account", params=ACCOUNT_ID),
        "post": _op("Bind a number to the account", 201, "BindNumber", "PhoneNumber",
                    (400, 401, 404, 409, 415, 422, 429), ACCOUNT_ID)},
    "/v1/sip-accounts/{account_id}/numbers/{number_id}": {
        "delete": _op("Unbind a number", 204, params=ACCOUNT_ID + NUMBER_ID)},
    "/v1/sip-accounts/{account_id}/verify": {"post": _op("Four checks, each ok, failed or skipped",
                                                         params=ACCOUNT_ID)},
    "/v1/sip-accounts/{account_id}/reprovision": {"post": _op(
        "Delete and recreate the account's FreeSWITCH objects (drops live calls on its gateway)",
        result="SipAccount", params=ACCOUNT_ID)},
}


# OpenAPI 3.1 `webhooks`: requests VoxBridge makes that a customer answers (api/openapi_inbound.py fills it).
WEBHOOKS: dict[str, Any] = {}


def document(extra_paths: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "VoxBridge API", "version": "1.0.0",
                 "description": "AI voice agents on phone lines. Authenticate with 'Authorization: Bearer <key>'."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {**PATHS, **(extra_paths or {})},
        "webhooks": WEBHOOKS,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


@bp.get("/openapi.json")
def openapi():
    from flask import current_app

    return jsonify(document(current_app.config.get("OPENAPI_EXTRA_PATHS")))
