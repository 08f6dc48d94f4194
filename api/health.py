"""GET /health: database reachable, telephony configured or not. No authentication."""
from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify

from models import database

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/health")
def health():
    config = current_app.config["VOXBRIDGE"]
    try:
        database.connect(reuse_if_open=True)
        database.execute_sql("SELECT 1")
        db_state = "ok"
    except Exception as exc:  # any driver error means the same thing to a load balancer
        log.warning("health: database unreachable: %s", type(exc).__name__)
        db_state = "unreachable"
    body = {"status": "ok" if db_state == "ok" else "degraded", "database": db_state,
            "telephony": "configured" if config.telephony_configured else "not_configured"}
    control = current_app.extensions.get("voxbridge.call_control")
    if control is not None and hasattr(control, "health"):
        body["freeswitch"] = control.health()
    return jsonify(body), 200 if db_state == "ok" else 503
