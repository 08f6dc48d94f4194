"""/v1/organization: the caller's organization and its usage."""
from __future__ import annotations

from flask import Blueprint, g, jsonify

from calls.representation import iso

bp = Blueprint("organization", __name__, url_prefix="/v1/organization")


@bp.get("")
def read():
    org = g.org
    return jsonify({"id": org.id, "object": "organization", "name": org.name,
                    "webhook_url": org.webhook_url, "default_caller_id": org.default_caller_id,
                    "usage": {"minutes_included": org.minutes_included, "minutes_used": org.minutes_used,
                              "minutes_remaining": max(org.minutes_included - org.minutes_used, 0)},
                    "created_at": iso(org.created_at)})
