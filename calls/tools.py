"""The call side of agent tools: which tools a call's session offers, running a customer tool for a call,
pressing keys on it, and keeping each tool call as a call event. Used by calls/media.py (MediaBridge)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from calls.call_variables import rendered_agent
from calls.media_hooks import CallCommands
from models import LIVE_STATUSES, Agent, Call, CallEvent, Organization
from pipeline.frames import TurnRecord
from pipeline.providers.llm import DEFAULT_TOOLS
from pipeline.tools.definitions import HttpTool, agent_tool_schemas, keypad_enabled, parse_tools, valid_dtmf
from pipeline.tools.http import ToolResult, call_http_tool, failure

log = logging.getLogger(__name__)


def session_tools(agent: Agent) -> tuple[dict, ...]:
    """The tool schemas a call's model is offered; () (the providers' defaults) for an agent with none."""
    tools = parse_tools(agent.tools)
    if not tools and not keypad_enabled(agent.keypad):
        return ()
    return agent_tool_schemas(tools, agent.keypad, DEFAULT_TOOLS)


@dataclass(frozen=True)
class PreparedTool:
    tool: HttpTool
    secrets: list[str]
    call_id: str
    agent_id: str


def prepare_customer_tool(call_id: str, name: str) -> PreparedTool | None:
    """What calling the call's agent's tool `name` needs, read from the database in one go (the request itself
    then runs with no database connection held while the endpoint thinks)."""
    call = Call.get_or_none(Call.id == call_id)
    agent = Agent.get_or_none(Agent.id == call.agent_id) if call is not None else None
    org = Organization.get_or_none(Organization.id == call.organization_id) if call is not None else None
    if agent is not None:
        agent = rendered_agent(agent, call)  # {{variables}} in the tool's URL filled for this call
    tool = next((t for t in parse_tools(agent.tools if agent else None) if t.name == name), None)
    if tool is None or org is None or agent is None:
        return None
    return PreparedTool(tool, org.signing_secrets(), call_id, agent.id)


def run_customer_tool(prepared: PreparedTool | None, name: str, arguments: dict[str, Any],
                      allow_private: bool = False) -> ToolResult:
    """The signed request (organization's webhook secret(s)), or a refusal the model can read."""
    if prepared is None:
        return failure("refused", f"there is no tool called {name[:64]}")
    return call_http_tool(prepared.tool, arguments, prepared.secrets, call_id=prepared.call_id,
                          agent_id=prepared.agent_id, allow_private=allow_private)


def press_keys(controller: CallCommands | None, call_id: str, digits: str) -> bool:
    """send_dtmf for a live call whose agent has the keypad on; digits re-checked here (never trust the model)."""
    checked = valid_dtmf(digits)
    call = Call.get_or_none(Call.id == call_id)
    if checked is None or controller is None or call is None or call.status not in LIVE_STATUSES:
        return False
    agent = Agent.get_or_none(Agent.id == call.agent_id)
    if agent is None or not keypad_enabled(agent.keypad):
        return False
    try:
        return bool(controller.send_dtmf(call_id, checked))
    except Exception as exc:
        log.warning("call %s: send_dtmf failed: %s", call_id, exc)
        return False


def record_tool_event(call_id: str, turn: TurnRecord) -> None:
    """A tool line of the transcript is also a call event (name, status, arguments and result, truncated)."""
    if turn.source != "tool" or not turn.data:
        return
    call = Call.get_or_none(Call.id == call_id)
    if call is not None:
        CallEvent.create(call=call.id, from_status=call.status, to_status=call.status,
                         reason=f"tool {str(turn.data.get('name'))[:64]}: {turn.data.get('status')}", data=turn.data)
