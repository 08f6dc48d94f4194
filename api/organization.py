"""/v1/organization: the caller's organization, its usage and settings, and its webhook signing secret."""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, current_app, g, jsonify

from api.errors import invalid
from api.validation import e164, json_body, reject_unknown
from calls.representation import iso
from models import Organization, PhoneNumber, database, utcnow
from models.tenancy import new_webhook_secret
from webhooks.targets import UnsafeTarget, check_target

bp = Blueprint("organization", __name__, url_prefix="/v1/organization")

SETTINGS = {"webhook_url", "default_caller_id", "inbound_webhook_url"}


def _to_dict(org: Organization) -> dict[str, Any]:
    """Never the signing secret: it is shown once, by the rotation that made it."""
    now = utcnow()
    overlap = org.previous_secret_expires_at if org.signing_secrets(now)[1:] else None
    return {"id": org.id, "object": "organization", "name": org.name,
            "webhook_url": org.webhook_url, "default_caller_id": org.default_caller_id,
            "inbound_webhook_url": org.inbound_webhook_url,
            "previous_signing_secret_expires_at": iso(overlap),
            "usage": {"minutes_included": org.minutes_included, "minutes_used": org.minutes_used,
                      "minutes_remaining": max(org.minutes_included - org.minutes_used, 0)},
            "created_at": iso(org.created_at)}


@bp.get("")
def read():
    org = Organization.get_by_id(g.org.id)  # fresh usage, not the key cache's copy
    return jsonify(_to_dict(org))


def _webhook_url(value: Any, field: str = "webhook_url") -> str | None:
    """The same rules a delivery applies (http/https, no credentials, public addresses unless
    WEBHOOK_ALLOW_PRIVATE), checked now so a bad URL is a 422 rather than failed deliveries later."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise invalid(field, f"{field} must be a string or null")
    try:
        check_target(value, current_app.config["VOXBRIDGE"].webhook_allow_private)
    except (UnsafeTarget, OSError) as exc:  # OSError: a host that does not resolve
        raise invalid(field, str(exc).replace("webhook_url", field), "invalid_webhook_url") from None
    return value


def _caller_id(value: Any, org: Organization) -> str | None:
    """A caller ID is trusted by POST /v1/calls/outbound without an ownership check, so the API only
    sets one of the organization's own numbers (the operator's `create-org --caller-id` may set any)."""
    if value is None or value == "":
        return None
    number = e164(value, "default_caller_id", current_app.config["VOXBRIDGE"].default_region)
    owned = PhoneNumber.select().where(PhoneNumber.organization == org.id, PhoneNumber.number == number).exists()
    if not owned and number != org.default_caller_id:
        raise invalid("default_caller_id", f"{number} is not one of this organization's numbers "
                      "(add it with POST /v1/numbers first)", "caller_id_not_owned")
    return number


@bp.patch("")
def update():
    body = json_body()
    reject_unknown(body, SETTINGS)
    org = Organization.get_by_id(g.org.id)
    changes: dict[str, Any] = {}
    if "webhook_url" in body:
        changes["webhook_url"] = _webhook_url(body["webhook_url"])
    if "default_caller_id" in body:
        changes["default_caller_id"] = _caller_id(body["default_caller_id"], org)
    if "inbound_webhook_url" in body:  # asked before an inbound call is answered (webhooks/inbound_hook.py)
        changes["inbound_webhook_url"] = _webhook_url(body["inbound_webhook_url"], "inbound_webhook_url")
    if changes:
        Organization.update(**changes).where(Organization.id == org.id).execute()
    return jsonify(_to_dict(Organization.get_by_id(org.id)))


@bp.post("/signing-secret/rotate")
def rotate_signing_secret():
    """A new secret, returned once. The replaced one keeps signing deliveries (a second v1= in the
    header) for WEBHOOK_SECRET_OVERLAP_SECONDS, so receivers can switch without losing events; a
    secret replaced earlier and still in its window is dropped at once."""
    overlap_s = current_app.config["VOXBRIDGE"].webhook_secret_overlap_s
    secret = new_webhook_secret()
    expires = utcnow() + dt.timedelta(seconds=overlap_s) if overlap_s else None
    with database.atomic():
        # One statement: the old secret moves to `previous` even if another rotation races this one.
        Organization.update(previous_webhook_secret=Organization.webhook_secret if overlap_s else None,
                            previous_secret_expires_at=expires, webhook_secret=secret
                            ).where(Organization.id == g.org.id).execute()
    body = _to_dict(Organization.get_by_id(g.org.id))
    response = jsonify({**body, "signing_secret": secret})
    response.headers["Cache-Control"] = "no-store"
    return response
