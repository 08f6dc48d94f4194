"""The OpenAPI entries of the inbound webhook (calls/inbound_context.py, webhooks/inbound_hook.py): the request
VoxBridge sends before an inbound call is answered and the reply it reads, as an OpenAPI 3.1 `webhooks` entry."""
from __future__ import annotations

from typing import Any

from api.openapi import SCHEMAS, WEBHOOKS

INBOUND_SCHEMAS: dict[str, Any] = {
    "InboundWebhookEvent": {
        "type": "object", "description": "POSTed to the organization's inbound_webhook_url, signed with "
                                         "VoxBridge-Signature like every webhook, before the call is answered",
        "properties": {
            "id": {"type": "string"}, "type": {"type": "string", "const": "call.inbound"},
            "created_at": {"type": "string", "format": "date-time"},
            "data": {"type": "object", "properties": {
                "call_id": {"type": "string"}, "from": {"type": ["string", "null"], "description": "the caller"},
                "to": {"type": "string", "description": "the number dialled"},
                "agent_id": {"type": "string", "description": "the agent that answers unless the reply names another"},
                "sip_headers": {"type": "object", "additionalProperties": {"type": "string"},
                                "description": "the INVITE's X- headers INBOUND_SIP_HEADERS allows"}}}},
        "example": {"id": "5f0c...", "type": "call.inbound", "created_at": "2026-12-07T09:30:00Z",
                    "data": {"call_id": "1b2d...", "from": "+442071838750", "to": "+14155550100",
                             "agent_id": "9a1e...", "sip_headers": {"X-Customer-Id": "C-42"}}}},
    "InboundWebhookReply": {
        "type": "object", "additionalProperties": False,
        "description": "Every key optional; an empty body goes on unchanged. No answer within "
                       "INBOUND_WEBHOOK_TIMEOUT, a non-2xx status or another shape: the call goes on with the "
                       "agent's defaults and its timeline says why",
        "properties": {
            "variables": {"type": "object", "maxProperties": 50,
                          "additionalProperties": {"type": ["string", "number", "boolean"]},
                          "description": "fill the agent's {{placeholders}}; become the call's context"},
            "agent_id": {"type": "string", "description": "another active inbound agent of the organization"},
            "reject": {"type": "boolean", "description": "true: the call is refused (failed, CALL_REJECTED)"},
            "reason": {"type": "string", "description": "why, with reject: kept as the call's failure_reason"}},
        "example": {"variables": {"name": "Ada"}}},
}

INBOUND_WEBHOOKS: dict[str, Any] = {
    "call.inbound": {"post": {
        "summary": "Before an inbound call is answered: variables, another agent, or a rejection",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/InboundWebhookEvent"}}}},
        "responses": {"200": {"description": "What the agent should know", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/InboundWebhookReply"}}}}}}},
}

SCHEMAS.update(INBOUND_SCHEMAS)
WEBHOOKS.update(INBOUND_WEBHOOKS)
