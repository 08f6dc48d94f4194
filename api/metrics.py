"""GET /metrics: Prometheus text exposition (observability/metrics.py), never open to the world by default.

With METRICS_TOKEN set, a scrape must send `Authorization: Bearer <token>` (from any address). Without it, only
clients in METRICS_ALLOW_FROM (loopback by default) are answered. Behind a reverse proxy every request comes from
the proxy's address: set a token there. The exposition holds organization ids, node names and counts, no secret.
"""
from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, Response, current_app, request

from api.errors import ApiError
from observability.metrics import exposition

bp = Blueprint("metrics", __name__)
PATH = "/metrics"


def _check_access() -> None:
    config = current_app.config["VOXBRIDGE"]
    if config.metrics_token:
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), config.metrics_token.encode()):
            raise ApiError(401, "unauthorized", "a valid metrics bearer token is required",
                           headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        return
    try:
        address = ipaddress.ip_address((request.remote_addr or "").split("%", 1)[0])
    except ValueError:
        address = None
    if address is None or not any(address in network for network in config.metrics_allow_from):
        raise ApiError(403, "forbidden", "metrics are served to METRICS_ALLOW_FROM only (or set METRICS_TOKEN)")


@bp.get(PATH)
def scrape() -> Response:
    _check_access()
    body, content_type = exposition(current_app.extensions.get("voxbridge.call_control"))
    return Response(body, content_type=content_type)
