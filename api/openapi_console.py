"""The OpenAPI entries of what the console does (organization settings, API keys, webhook deliveries,
recordings), added to api.openapi's document at import: kept apart so that module stays one concept."""
from __future__ import annotations

from typing import Any

from api.openapi import DATE_TIME, E164, PATHS, SCHEMAS, _op, _path_param

NULLABLE_E164 = {**E164, "type": ["string", "null"]}

CONSOLE_SCHEMAS: dict[str, Any] = {
    "Organization": {"type": "object", "properties": {
        "id": {"type": "string", "readOnly": True}, "object": {"type": "string", "const": "organization"},
        "name": {"type": "string", "readOnly": True},
        "webhook_url": {"type": ["string", "null"], "format": "uri",
                        "description": "http(s), public address unless WEBHOOK_ALLOW_PRIVATE"},
        "default_caller_id": {**NULLABLE_E164, "description": "one of the organization's numbers"},
        "inbound_webhook_url": {"type": ["string", "null"], "format": "uri",
                                "description": "asked (signed) before an inbound call is answered: variables, "
                                               "another agent or a rejection (see README, Inbound webhook)"},
        "previous_signing_secret_expires_at": {**DATE_TIME, "readOnly": True,
                                               "description": "end of the rotation overlap, null outside one"},
        "usage": {"type": "object", "readOnly": True, "properties": {
            "minutes_included": {"type": "integer"}, "minutes_used": {"type": "integer"},
            "minutes_remaining": {"type": "integer"}}},
        "created_at": {"type": "string", "format": "date-time", "readOnly": True}}},
    "OrganizationSettings": {"type": "object", "additionalProperties": False, "properties": {
        "webhook_url": {"type": ["string", "null"], "format": "uri", "description": "null or empty clears"},
        # No pattern here: "" is accepted (it clears, as null does); anything else must be E.164.
        "default_caller_id": {"type": ["string", "null"], "maxLength": 16,
                              "description": "E.164 (+ and up to 15 digits), one of the organization's numbers; "
                                             "null or empty clears"},
        "inbound_webhook_url": {"type": ["string", "null"], "format": "uri",
                                "description": "same rules as webhook_url; null or empty clears"}}},
    "SigningSecretRotation": {"allOf": [{"$ref": "#/components/schemas/Organization"}, {
        "type": "object", "required": ["signing_secret"], "properties": {
            "signing_secret": {"type": "string", "description": "shown once, never again"}}}]},
}

ORGANIZATION_PATHS: dict[str, dict[str, Any]] = {
    "/v1/organization": {
        "get": _op("The organization, its settings and minutes usage", result="Organization",
                   errors=(401, 429)),
        "patch": _op("Change the webhook URL or default caller ID", 200, "OrganizationSettings", "Organization",
                     (400, 401, 415, 422, 429))},
    "/v1/organization/signing-secret/rotate": {"post": _op(
        "New webhook signing secret, returned once; the old one also signs deliveries during "
        "WEBHOOK_SECRET_OVERLAP_SECONDS", result="SigningSecretRotation", errors=(401, 429))},
}

KEY_SCHEMAS: dict[str, Any] = {
    "ApiKey": {"type": "object", "properties": {
        "id": {"type": "string", "format": "uuid"}, "object": {"type": "string", "const": "api_key"},
        "name": {"type": "string"},
        "prefix": {"type": "string", "description": "vb_live_<12 hex>: how the key starts; the rest is secret"},
        "created_at": {"type": "string", "format": "date-time"},
        "last_used_at": {**DATE_TIME, "description": "to the minute"},
        "revoked_at": DATE_TIME,
        "current": {"type": "boolean", "description": "the key making this request"}}},
    "ApiKeyList": {"type": "object", "properties": {"object": {"type": "string", "const": "list"}, "data": {
        "type": "array", "items": {"$ref": "#/components/schemas/ApiKey"}}}},
    "IssueApiKey": {"type": "object", "additionalProperties": False, "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 200, "default": "api"}}},
    "IssuedApiKey": {"allOf": [{"$ref": "#/components/schemas/ApiKey"}, {
        "type": "object", "required": ["secret"], "properties": {
            "secret": {"type": "string", "description": "the whole key, shown once: only its hash is stored"}}}]},
}

KEY_PATHS: dict[str, dict[str, Any]] = {
    "/v1/api-keys": {
        "get": _op("The organization's API keys (never a secret)", result="ApiKeyList", errors=(401, 429)),
        "post": _op("Issue a key; its secret is in this response only", 201, "IssueApiKey", "IssuedApiKey",
                    (400, 401, 415, 422, 429))},
    "/v1/api-keys/{key_id}": {"delete": _op(
        "Revoke a key (the key making the request needs ?force=true: 409 otherwise)", result="ApiKey",
        errors=(401, 404, 409, 429),
        params=[_path_param("key_id"), {"name": "force", "in": "query", "required": False,
                                        "schema": {"type": "string", "enum": ["true"]}}])},
}

ATTEMPT = {"type": "object", "properties": {
    "attempted_at": {"type": "string", "format": "date-time"},
    "status_code": {"type": ["integer", "null"], "description": "the receiver's HTTP status; null when none"},
    "error": {"type": ["string", "null"], "description": "why it failed: HTTP status, refusal, network error"},
    "duration_ms": {"type": ["integer", "null"]}}}

DELIVERY_SCHEMAS: dict[str, Any] = {
    "WebhookDelivery": {"type": "object", "properties": {
        "id": {"type": "string", "description": "the event id (VoxBridge-Event-Id)"},
        "object": {"type": "string", "const": "webhook_delivery"},
        "event_type": {"type": "string", "enum": ["call.queued", "call.ended", "call.analyzed", "webhook.test"]},
        "call_id": {"type": ["string", "null"]}, "url": {"type": "string"},
        "status": {"type": "string", "enum": ["pending", "delivered", "failed"]},
        "attempt_count": {"type": "integer"}, "next_attempt_at": {**DATE_TIME, "description": "while pending"},
        "last_status_code": {"type": ["integer", "null"]}, "last_error": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"}, "delivered_at": DATE_TIME,
        "attempts": {"type": "array", "items": ATTEMPT, "description": "oldest first"},
        "payload": {"type": "object", "description": "the event as sent; only when read by id"}}},
    "WebhookDeliveryList": {"type": "object", "properties": {
        "object": {"type": "string", "const": "list"},
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/WebhookDelivery"}},
        "has_more": {"type": "boolean"}, "next_cursor": {"type": ["string", "null"]}}},
}


def _query(name: str, description: str, enum: list[str] | None = None,
           schema: dict[str, Any] | None = None) -> dict[str, Any]:
    schema = schema or {"type": "string", "minLength": 1, **({"enum": enum} if enum else {})}
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


DELIVERY_PATHS: dict[str, dict[str, Any]] = {
    "/v1/webhook-deliveries": {"get": _op(
        "Webhook deliveries, newest first, with their attempts; cursor pagination", result="WebhookDeliveryList",
        errors=(400, 401, 422, 429), params=[
            _query("event", "event type", ["call.queued", "call.ended", "call.analyzed", "webhook.test"]),
            _query("status", "delivery status", ["pending", "delivered", "failed"]),
            _query("call_id", "the call the event is about"), _query("limit", "1..200, default 50",
                                                                    schema={"type": "integer", "minimum": 1,
                                                                            "maximum": 200, "default": 50}),
            _query("cursor", "next_cursor of the previous page")])},
    "/v1/webhook-deliveries/test": {"post": _op(
        "Queue a signed webhook.test event to the organization's webhook URL (409 without one)", 202,
        result="WebhookDelivery", errors=(401, 409, 429))},
    "/v1/webhook-deliveries/{delivery_id}": {"get": _op(
        "One delivery with its attempts and payload", result="WebhookDelivery",
        params=[_path_param("delivery_id")])},
}

def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/Error"}}}}


WAV = {"content": {"audio/wav": {"schema": {"type": "string", "contentEncoding": "binary"}}}}

RECORDING_PATHS: dict[str, dict[str, Any]] = {
    "/v1/calls/{call_id}/recording": {"get": {
        "summary": "The call's recording (stereo WAV: caller left, agent right), streamed from RECORDINGS_DIR "
                   "or object storage; Range honoured",
        "parameters": [_path_param("call_id"),
                       {"name": "Range", "in": "header", "required": False,
                        "schema": {"type": "string", "pattern": r"^bytes=[0-9]*-[0-9]*$"},
                        "description": "bytes=<first>-<last>"}],
        "responses": {
            "200": {"description": "The whole file", **WAV},
            "206": {"description": "The requested byte range", **WAV},
            "304": {"description": "Not modified (If-None-Match / If-Modified-Since)"},
            "401": _error("Unauthorized"),
            "404": _error("No such call in this organization (not_found), not recorded (no_recording), or the "
                          "file is not in RECORDINGS_DIR (recording_missing)"),
            "409": _error("The call is still live (recording_in_progress)"),
            "416": _error("The range lies outside the file"),
            "429": _error("Rate limited"),
            "502": _error("Object storage answered with an error (storage_error)"),
            "503": _error("Object storage cannot be reached (storage_unavailable)")}}},
}

SCHEMAS.update(CONSOLE_SCHEMAS)
PATHS.update(RECORDING_PATHS)
SCHEMAS.update(DELIVERY_SCHEMAS)
PATHS.update(DELIVERY_PATHS)
SCHEMAS.update(KEY_SCHEMAS)
PATHS.update(KEY_PATHS)
PATHS.update(ORGANIZATION_PATHS)  # replaces api.openapi's read-only /v1/organization entry
