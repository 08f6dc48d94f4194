"""/v1/webhook-deliveries: the organization's webhook outbox, newest first, each with its attempts."""
from __future__ import annotations

import base64
import datetime as dt
import json
from collections import defaultdict
from typing import Any

from flask import Blueprint, g, jsonify, request

from api.errors import ApiError, invalid
from api.validation import int_in
from calls.representation import iso
from models import Organization, WebhookAttempt, WebhookDelivery
from models.webhook import DELIVERED, FAILED, PENDING
from webhooks.outbox import EVENT_TYPES, enqueue

bp = Blueprint("webhook_deliveries", __name__, url_prefix="/v1/webhook-deliveries")

DELIVERY_STATUSES = (PENDING, DELIVERED, FAILED)


def _attempt(attempt: WebhookAttempt) -> dict[str, Any]:
    return {"attempted_at": iso(attempt.attempted_at), "status_code": attempt.status_code,
            "error": attempt.error, "duration_ms": attempt.duration_ms}


def _attempts_of(ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every attempt of the page's deliveries in one query, oldest first."""
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if ids:
        for attempt in (WebhookAttempt.select().where(WebhookAttempt.delivery.in_(ids))
                        .order_by(WebhookAttempt.attempted_at, WebhookAttempt.id)):
            found[attempt.delivery_id].append(_attempt(attempt))
    return found


def _to_dict(row: WebhookDelivery, attempts: list[dict[str, Any]], payload: bool = False) -> dict[str, Any]:
    out = {"id": row.id, "object": "webhook_delivery", "event_type": row.event_type, "call_id": row.call_id,
           "url": row.url, "status": row.status, "attempt_count": row.attempts,
           "next_attempt_at": iso(row.next_attempt_at) if row.status == PENDING else None,
           "last_status_code": row.last_status_code, "last_error": row.last_error,
           "created_at": iso(row.created_at), "delivered_at": iso(row.delivered_at), "attempts": attempts}
    if payload:
        out["payload"] = json.loads(row.payload)
    return out


def _cursor_decode(value: str) -> tuple[dt.datetime, str]:
    try:
        created, row_id = base64.urlsafe_b64decode(value.encode()).decode().split("|", 1)
        return dt.datetime.fromisoformat(created), row_id
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned") from None


def _cursor_encode(row: WebhookDelivery) -> str:
    return base64.urlsafe_b64encode(f"{row.created_at.isoformat()}|{row.id}".encode()).decode()


def _filtered(args) -> Any:
    query = WebhookDelivery.select().where(WebhookDelivery.organization == g.org.id)
    if "event" in args:
        if args["event"] not in EVENT_TYPES:
            raise invalid("event", f"event must be one of {', '.join(EVENT_TYPES)}")
        query = query.where(WebhookDelivery.event_type == args["event"])
    if "status" in args:
        if args["status"] not in DELIVERY_STATUSES:
            raise invalid("status", f"status must be one of {', '.join(DELIVERY_STATUSES)}")
        query = query.where(WebhookDelivery.status == args["status"])
    if "call_id" in args:
        if not args["call_id"]:
            raise invalid("call_id", "call_id must not be empty")
        query = query.where(WebhookDelivery.call_id == args["call_id"])
    return query


@bp.get("")
def list_deliveries():
    args = request.args
    query = _filtered(args)
    try:
        limit = int_in(int(args.get("limit", 50)), "limit", 1, 200)
    except ValueError:
        raise invalid("limit", "limit must be an integer from 1 to 200") from None
    if "cursor" in args:
        created, row_id = _cursor_decode(args["cursor"])
        query = query.where((WebhookDelivery.created_at < created)
                            | ((WebhookDelivery.created_at == created) & (WebhookDelivery.id < row_id)))
    page = list(query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(limit + 1))
    has_more = len(page) > limit
    page = page[:limit]
    attempts = _attempts_of([row.id for row in page])
    return jsonify({"object": "list", "data": [_to_dict(row, attempts[row.id]) for row in page],
                    "has_more": has_more, "next_cursor": _cursor_encode(page[-1]) if has_more else None})


@bp.post("/test")
def send_test():
    """Queue a `webhook.test` event to the organization's webhook URL, signed and retried like any
    other; its delivery (and attempts, once sent) is read back by id."""
    org = Organization.get_by_id(g.org.id)  # the current URL, not the key cache's copy
    if not org.webhook_url:
        raise ApiError(409, "no_webhook_url", "the organization has no webhook_url; set it with PATCH /v1/organization")
    event_id = enqueue(org, "webhook.test", {"organization_id": org.id, "message": "test event from VoxBridge"})
    response = jsonify(_to_dict(WebhookDelivery.get_by_id(event_id), []))
    response.status_code = 202
    return response


@bp.get("/<delivery_id>")
def read(delivery_id: str):
    row = WebhookDelivery.get_or_none(WebhookDelivery.id == delivery_id, WebhookDelivery.organization == g.org.id)
    if row is None:
        raise ApiError(404, "not_found", f"webhook delivery {delivery_id!r} not found")
    return jsonify(_to_dict(row, _attempts_of([row.id])[row.id], payload=True))
