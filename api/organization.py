"""/v1/organization: the caller's organization and its usage."""
from __future__ import annotations

from flask import Blueprint, g, jsonify

from calls.representation import iso
from models import Organization

bp = Blueprint("organization", __name__, url_prefix="/v1/organization")


@bp.get("")
def read():
    org = Organization.get_by_id(g.org.id)  # fresh usage, not the key cache's copy
    return jsonify({"id": org.id, "object": "organization", "name": org.name,
                    "webhook_url": org.webhook_url, "default_caller_id": org.default_caller_id,
                    "usage": {"minutes_included": org.minutes_included, "minutes_used": org.minutes_used,
                              "minutes_remaining": max(org.minutes_included - org.minutes_used, 0)},
                    "created_at": iso(org.created_at)})
