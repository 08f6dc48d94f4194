"""The REST API: a Flask app factory with one blueprint per resource."""
from __future__ import annotations

from typing import Any

from flask import Flask, request

import console
from api import (
    agents,
    calls,
    deliveries,
    errors,
    health,
    keys,
    metrics,
    numbers,
    openapi,
    organization,
    recordings,
    sip_accounts,
    web_calls,
)
from api.auth import KeyCache, RateLimiter, authenticate
from api.openapi_console import CONSOLE_SCHEMAS  # noqa: F401 - importing it adds the console API's entries
from api.openapi_inbound import INBOUND_SCHEMAS  # noqa: F401 - importing it adds the inbound webhook's entries
from config import Config
from console import auth as console_auth
from models import database
from sip.provisioning import OfflineProvisioner
from sip.secrets_box import SecretBox

BLUEPRINTS = (calls.bp, agents.bp, organization.bp, numbers.bp, sip_accounts.bp, health.bp, openapi.bp,
              keys.bp, deliveries.bp, recordings.bp, metrics.bp, web_calls.bp)


def create_app(config: Config, call_control: Any = None, provisioner: Any = None,
               extra_blueprints: tuple = (), web_call_issuer: Any = None, web_call_control: Any = None) -> Flask:
    """Build the API. `call_control` (hang up, transfer) and a FreeSWITCH `provisioner` are present
    when telephony is configured; without them calls stay queued and SIP accounts unprovisioned.
    `web_call_issuer` signs web calls' tokens (webcall/bridge.py; by default with MEDIA_TOKEN_SECRET, else a
    secret of this app's own); `web_call_control` is present in the process serving the browsers' streams."""
    app = Flask(__name__)
    app.config["VOXBRIDGE"] = config
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.sort_keys = False
    if call_control is not None:
        app.extensions["voxbridge.call_control"] = call_control
    box = SecretBox(config.sip_secret_key)
    app.extensions["voxbridge.secret_box"] = box
    app.extensions["voxbridge.provisioner"] = provisioner or OfflineProvisioner(box)
    if config.web_calls:
        from webcall.bridge import WebCallIssuer, token_secret

        app.extensions["voxbridge.web_call_issuer"] = web_call_issuer or WebCallIssuer(
            token_secret(config), config.web_call_public_url, float(config.web_call_token_ttl_s))
    if web_call_control is not None:
        app.extensions["voxbridge.web_call_control"] = web_call_control
    limiter = RateLimiter(config.rate_limit_per_minute)
    app.extensions["voxbridge.api_rate_limiter"] = limiter
    keys = KeyCache(ttl_s=config.api_key_cache_s)

    @app.before_request
    def _open_and_authenticate():
        if request.path in health.PATHS or request.path == metrics.PATH:
            return  # health opens the database itself (an unreachable one is its 503, not a 500); live never does;
            # /metrics too (an unreachable one is voxbridge_database_up 0, the rest still scraped)
        database.connect(reuse_if_open=True)
        if request.path.startswith("/v1/") and not console_auth.api_session():
            authenticate(limiter, keys)

    @app.teardown_request
    def _close(_exc):
        if not database.is_closed():
            database.close()

    for blueprint in BLUEPRINTS + tuple(extra_blueprints):
        app.register_blueprint(blueprint)
    console.init_app(app, config)
    errors.register(app)
    return app
