"""/v1/api-keys: the organization's API keys. A key's secret is shown once, when it is issued; only
its hash is stored, so no route can show it again."""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, g, jsonify, request

from api.errors import ApiError, invalid
from api.validation import json_body, reject_unknown
from calls.representation import iso
from models import ApiKey, utcnow
from models.tenancy import KEY_PREFIX

bp = Blueprint("api_keys", __name__, url_prefix="/v1/api-keys")

# last_used_at is written at most this often per key: a write per request would double the cost
# of every GET, and "used in the last minute" is what an operator deciding to revoke needs.
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)


def touch_last_used(key: ApiKey) -> None:
    """Record that `key` authenticated a request now (to the minute); also on the cached copy."""
    now = utcnow()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiKey.update(last_used_at=now).where(ApiKey.id == key.id).execute()
    key.last_used_at = now


def _to_dict(key: ApiKey) -> dict[str, Any]:
    return {"id": key.id, "object": "api_key", "name": key.name, "prefix": f"{KEY_PREFIX}{key.prefix}",
            "created_at": iso(key.created_at), "last_used_at": iso(key.last_used_at),
            "revoked_at": iso(key.revoked_at), "current": key.id == _current_key_id()}


def _current_key_id() -> str | None:
    """The key making the request; None when a signed-in console user makes it."""
    current = g.get("api_key")
    return None if current is None else current.id


def _key_or_404(key_id: str) -> ApiKey:
    key = ApiKey.get_or_none(ApiKey.id == key_id, ApiKey.organization == g.org.id)
    if key is None:
        raise ApiError(404, "not_found", f"API key {key_id!r} not found")
    return key


@bp.get("")
def list_keys():
    keys = ApiKey.select().where(ApiKey.organization == g.org.id).order_by(ApiKey.created_at, ApiKey.id)
    return jsonify({"object": "list", "data": [_to_dict(k) for k in keys]})


@bp.post("")
def issue():
    body = json_body()
    reject_unknown(body, {"name"})
    name = body.get("name", "api")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise invalid("name", "name must be a string of 1 to 200 characters")
    key, plaintext = ApiKey.issue(g.org, name=name.strip())
    response = jsonify({**_to_dict(key), "secret": plaintext})
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.delete("/<key_id>")
def revoke(key_id: str):
    """Revoking the key that makes the request would lock a script out mid-task by accident: it needs
    ?force=true. Revoking a revoked key is a no-op that answers the key as it is."""
    key = _key_or_404(key_id)
    if key.revoked_at is None:
        if key.id == _current_key_id() and request.args.get("force") != "true":
            raise ApiError(409, "revoking_current_key",
                           "this is the key making the request; revoke it with another key, or add ?force=true")
        key.revoke()
    return jsonify(_to_dict(key))
