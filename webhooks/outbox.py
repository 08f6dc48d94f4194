"""Writing webhook events to the outbox, inside the caller's transaction."""
from __future__ import annotations

import json
from typing import Any

from models import Call, Organization, WebhookDelivery, new_id, utcnow

EVENT_TYPES = ("call.queued", "call.ended", "call.analyzed", "webhook.test")  # test: POST /v1/webhook-deliveries/test


def envelope(event_id: str, event_type: str, data: dict[str, Any]) -> str:
    body = {"id": event_id, "type": event_type, "created_at": utcnow().isoformat() + "Z", "data": data}
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


def target_url(call: Call | None, organization: Organization) -> str | None:
    return (call.webhook_url if call is not None and call.webhook_url else None) or organization.webhook_url


def delivery_row(organization: Organization, event_type: str, data: dict[str, Any],
                 call: Call | None = None) -> dict[str, Any] | None:
    """The outbox row for one event, or None when nobody asked for webhooks."""
    url = target_url(call, organization)
    if not url:
        return None
    event_id = new_id()
    return {"id": event_id, "organization": organization.id, "call_id": call.id if call else None,
            "event_type": event_type, "url": url, "payload": envelope(event_id, event_type, data),
            "next_attempt_at": utcnow()}


def enqueue(organization: Organization, event_type: str, data: dict[str, Any],
            call: Call | None = None) -> str | None:
    """Record one event for delivery; returns its id. Call inside the transaction of the change."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    row = delivery_row(organization, event_type, data, call)
    if row is None:
        return None
    WebhookDelivery.insert(**row).execute()
    return row["id"]
