"""Health, unauthenticated, in two kinds.

GET /health/live is liveness: the process answers HTTP, nothing else is asked (restart decisions:
a database or FreeSWITCH outage must not get the app restarted in a loop).
GET /health is readiness: 200 {"status": "ok"} only when the database answers and, when telephony
is configured, at least one FreeSWITCH node is connected; otherwise 503 {"status": "degraded"}
with `down` naming what is down (load balancers stop sending traffic here).
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, jsonify

from models import database

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

PATHS = ("/health", "/health/live")


@bp.get("/health/live")
def live():
    return jsonify({"status": "ok", "worker": current_app.config.get("VOXBRIDGE_WORKER", 0)})


def _database_state() -> str:
    try:
        database.connect(reuse_if_open=True)
        database.execute_sql("SELECT 1")
        return "ok"
    except Exception as exc:  # any driver error means the same thing to a load balancer
        log.warning("health: database unreachable: %s", type(exc).__name__)
        return "unreachable"


def _freeswitch_state() -> tuple[Any, str | None]:
    """The nodes as call control sees them, and what is down (None when a node is up)."""
    control = current_app.extensions.get("voxbridge.call_control")
    if control is None or not hasattr(control, "health"):
        return "unknown", "freeswitch"
    try:
        nodes = control.health()
    except Exception as exc:  # a failing health() must not fail the scrape or the probe
        log.warning("health: call control unavailable: %s", exc)
        return "unknown", "call_control"
    return nodes, None if any(node.get("alive") for node in nodes) else "freeswitch"


@bp.get("/health")
def health():
    config = current_app.config["VOXBRIDGE"]
    db_state = _database_state()
    down = [] if db_state == "ok" else ["database"]
    body: dict[str, Any] = {"status": "ok", "database": db_state,
                            "telephony": "configured" if config.telephony_configured else "not_configured"}
    if config.telephony_configured:
        body["freeswitch"], what = _freeswitch_state()
        down += [what] if what else []
    if down:
        body.update(status="degraded", down=down)
    return jsonify(body), 503 if down else 200
