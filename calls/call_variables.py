"""One call's view of its agent: the agent's texts with the call's variables filled in.

The voice pipeline builds a call's session from this copy (calls/media.py), so the greeting the cloud LLM's
session speaks, the system prompt it is sent and the scripted agent's greeting, questions and closing all say
"Hi Ada" rather than "Hi {{name}}". The copy is never saved; the stored agent keeps its placeholders.
"""
from __future__ import annotations

import copy
import datetime as dt
from typing import Any
from urllib.parse import quote

from models import Agent, Call, Organization
from pipeline.variables import built_in_values, call_values, render


def values_for(agent: Agent, call: Call, now: dt.datetime | None = None) -> dict[str, str]:
    """Every value `call`'s texts are rendered with (declared defaults < context < built-ins)."""
    org = Organization.get_or_none(Organization.id == call.organization_id) if call.organization_id else None
    built_ins = built_in_values(caller=call.from_number, called=call.to_number, organization=org.name if org else "",
                                agent=agent.name, call_id=call.id, timezone=agent.timezone, now=now)
    return call_values(agent.variables, call.context, built_ins)


def _render_question(question: Any, values: dict[str, str]) -> Any:
    if isinstance(question, str):
        return render(question, values)
    if isinstance(question, dict):
        rendered = dict(question)
        for key in ("text", "question"):
            if isinstance(rendered.get(key), str):
                rendered[key] = render(rendered[key], values)
        return rendered
    return question


def rendered_agent(agent: Agent, call: Call, now: dt.datetime | None = None) -> Agent:
    """An unsaved copy of `agent` whose prompt, greeting, settings.questions, settings.closing and tool URLs are
    rendered with `call`'s variables."""
    values = values_for(agent, call, now)
    view = Agent(**copy.deepcopy(agent.__data__))
    view.prompt = render(agent.prompt, values)
    view.greeting = render(agent.greeting, values)
    settings = view.settings if isinstance(view.settings, dict) else {}
    if isinstance(settings.get("questions"), list):
        settings["questions"] = [_render_question(q, values) for q in settings["questions"]]
    if isinstance(settings.get("closing"), str):
        settings["closing"] = render(settings["closing"], values)
    if isinstance(view.tools, list):
        view.tools = [_render_tool_url(tool, values) for tool in view.tools]
    return view


def _render_tool_url(tool: Any, values: dict[str, str]) -> Any:
    # In a URL a value is data, never structure: percent-encoded whole, so "1/../admin?x=" stays one segment
    # or parameter. The SSRF guard still checks the address the rendered URL resolves to when it is called.
    if not isinstance(tool, dict) or not isinstance(tool.get("url"), str):
        return tool
    encoded = {name: quote(str(value), safe="") for name, value in values.items()}
    return {**tool, "url": render(tool["url"], encoded)}
