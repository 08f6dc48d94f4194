"""The REST API: a Flask app factory with one blueprint per resource."""
from __future__ import annotations

from typing import Any

from flask import Flask, request

from api import agents, calls, errors, health, numbers, openapi, organization
from api.auth import KeyCache, RateLimiter, authenticate
from config import Config
from models import database

BLUEPRINTS = (calls.bp, agents.bp, organization.bp, numbers.bp, health.bp, openapi.bp)


def create_app(config: Config, call_control: Any = None, extra_blueprints: tuple = ()) -> Flask:
    """Build the API. `call_control` (hang up, transfer) is present when telephony is configured."""
    app = Flask(__name__)
    app.config["VOXBRIDGE"] = config
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.sort_keys = False
    if call_control is not None:
        app.extensions["voxbridge.call_control"] = call_control
    limiter = RateLimiter(config.rate_limit_per_minute)
    keys = KeyCache(ttl_s=config.api_key_cache_s)

    @app.before_request
    def _open_and_authenticate():
        database.connect(reuse_if_open=True)
        if request.path.startswith("/v1/"):
            authenticate(limiter, keys)

    @app.teardown_request
    def _close(_exc):
        if not database.is_closed():
            database.close()

    for blueprint in BLUEPRINTS + tuple(extra_blueprints):
        app.register_blueprint(blueprint)
    errors.register(app)
    return app
