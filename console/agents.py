"""Console pages for agents: the list, and one form for create and edit that posts to /v1/agents (the API's
own validation; its 422 names the field the page shows the error beside)."""
from __future__ import annotations

import json

from flask import Blueprint, g, render_template

from api.agents import PROVIDERS, agent_to_dict, get_agent
from console.auth import login_required
from console.errors import html_errors
from models import DIRECTIONS, Agent

bp = html_errors(Blueprint("console_agents", __name__, template_folder="templates"))


@bp.get("/console/agents")
@login_required
def list_agents():
    rows = (Agent.select().where(Agent.organization == g.org, Agent.deleted_at.is_null())
            .order_by(Agent.created_at, Agent.id))
    return render_template("agents.html", agents=list(rows))


def _form(agent: dict | None) -> dict:
    defaults = {kind: {"provider": names[0]} for kind, names in PROVIDERS.items()}
    agent = agent or {"name": "", "direction": "outbound", "prompt": "", "greeting": "", "voice": "",
                      "language": "en-US", **defaults, "settings": {}, "analysis_schema": None, "active": True}
    shown = dict(agent)
    for name in ("stt", "llm", "tts", "settings", "analysis_schema"):
        value = agent.get(name)
        shown[name] = "" if value is None else json.dumps(value, indent=2)
    return shown


@bp.get("/console/agents/new")
@login_required
def new_agent():
    return render_template("agent.html", agent=_form(None), creating=True, directions=DIRECTIONS,
                           providers=PROVIDERS)


@bp.get("/console/agents/<agent_id>")
@login_required
def edit_agent(agent_id: str):
    agent = agent_to_dict(get_agent(agent_id))  # 404 unless the agent is the user's organization's
    return render_template("agent.html", agent=_form(agent), agent_id=agent["id"], creating=False,
                           directions=DIRECTIONS, providers=PROVIDERS)
