"""Console pages for calls: the list with filters and live statuses, a form queueing an outbound call, and
one call's page whose status, transcript and timeline follow the call (console.js polls /v1/calls/<id>)."""
from __future__ import annotations

from flask import Blueprint, g, render_template, request

from api.calls import get_call
from console.auth import login_required
from console.errors import html_errors
from models import FINAL_STATUSES, STATUSES, Agent, Call, CallEvent

bp = html_errors(Blueprint("console_calls", __name__, template_folder="templates"))

PAGE = 100


@bp.get("/console/calls")
@login_required
def list_calls():
    agents = list(Agent.select().where(Agent.organization == g.org).order_by(Agent.name))
    query = Call.select().where(Call.organization == g.org)
    shown = {k: request.args.get(k, "") for k in ("status", "direction", "agent_id")}
    # Unknown filter values match nothing rather than erroring: the filters come from the page's own menus.
    if shown["status"]:
        query = query.where(Call.status == shown["status"])
    if shown["direction"]:
        query = query.where(Call.direction == shown["direction"])
    if shown["agent_id"]:
        query = query.where(Call.agent == shown["agent_id"])
    calls = list(query.order_by(Call.created_at.desc(), Call.id.desc()).limit(PAGE))
    outbound = [a for a in agents if a.direction == "outbound" and a.active and a.deleted_at is None]
    return render_template("calls.html", calls=calls, agents=agents, outbound=outbound, shown=shown,
                           statuses=STATUSES, final=FINAL_STATUSES, page=PAGE)


@bp.get("/console/calls/<call_id>")
@login_required
def call_page(call_id: str):
    call = get_call(call_id)  # 404 unless the call is the user's organization's
    events = list(CallEvent.select().where(CallEvent.call == call).order_by(CallEvent.id))
    return render_template("call.html", call=call, events=events, final=call.status in FINAL_STATUSES)
