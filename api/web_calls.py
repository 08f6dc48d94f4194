"""Web calls: POST /v1/agents/{id}/web-calls (a live call and its single-use token) and the /talk page.

The page (webcall/templates/talk.html, webcall/static/) is public like any static asset: it holds no data and
can do nothing without a token, which only an authenticated POST gives. It takes a call and token from its
query (?call=...&token=..., what the console hands it) or fetches them with an API key typed into it.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, jsonify, make_response, render_template

from api.calls import _check_allowance
from api.errors import ApiError
from calls.representation import call_to_dict, iso
from models import LIVE_STATUSES, Agent, Call, Organization
from webcall import calls as web_calls

PACKAGE = Path(__file__).resolve().parent.parent / "webcall"
bp = Blueprint("web_calls", __name__, template_folder=str(PACKAGE / "templates"),
               static_folder=str(PACKAGE / "static"), static_url_path="/talk/static")

AGENT_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,79}\Z")


def _issuer():
    issuer = current_app.extensions.get("voxbridge.web_call_issuer")
    if issuer is None:
        raise ApiError(503, "web_calls_unavailable", "web calls are not served by this deployment (WEB_CALLS=false)")
    return issuer


def _check_room(org: Organization) -> None:
    """A web call is a live call: it counts against the organization's concurrent-call limit like any other."""
    config = current_app.config["VOXBRIDGE"]
    own = Organization.select(Organization.max_concurrent_calls).where(Organization.id == org.id).scalar()
    limit = min(own or config.org_max_concurrent_calls, config.org_max_concurrent_calls)
    live = Call.select().where(Call.organization == org.id, Call.status.in_(LIVE_STATUSES)).count()
    if live >= limit:
        raise ApiError(429, "concurrency_limit", f"the organization has {live} live calls (limit {limit})")


@bp.post("/v1/agents/<agent_id>/web-calls")
def create_web_call(agent_id: str):
    issuer = _issuer()
    agent = Agent.get_or_none(Agent.id == agent_id, Agent.organization == g.org, Agent.deleted_at.is_null())
    if agent is None:
        raise ApiError(404, "not_found", f"agent {agent_id} not found")
    if not agent.active:
        raise ApiError(409, "agent_inactive", "the agent is inactive; activate it to talk to it")
    _check_allowance(g.org)
    _check_room(g.org)
    call = web_calls.create(g.org, agent)
    token, url = issuer.issue(call.id)
    return jsonify({"object": "web_call", "call": call_to_dict(call), "token": token.token,
                    "websocket_url": url, "expires_at": iso_unix(token.expires_at)}), 201


def iso_unix(seconds: float) -> str | None:
    return iso(dt.datetime.fromtimestamp(seconds, dt.UTC).replace(tzinfo=None))


@bp.get("/talk/<agent_id>")
def talk_page(agent_id: str):
    if not AGENT_ID.match(agent_id):
        raise ApiError(404, "not_found", "no such page")
    issuer = _issuer()
    ws = urlsplit(issuer.public_url)
    response = make_response(render_template("talk.html", agent_id=agent_id, ws_base=issuer.public_url))
    # Scripts only from here (no inline code, no CDN); the page may reach the API and the audio WebSocket.
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self'; connect-src 'self' {ws.scheme}://{ws.netloc}; "
        "img-src 'self' data:; style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
    response.headers["Referrer-Policy"] = "no-referrer"  # the token may sit in this page's query
    response.headers["Cache-Control"] = "no-store"
    return response
