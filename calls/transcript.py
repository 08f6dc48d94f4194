"""A call's transcript and its post-call analysis: turns appended to Call.transcript as they happen (one
UPDATE each, so concurrent writers never lose one), and call.analyzed written once per answered call."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from peewee import Cast, Expression, Value, fn

from calls.call_variables import rendered_agent
from calls.tools import record_tool_event
from models import Agent, Call, CallEvent, Organization, WebhookDelivery, database, is_postgres
from pipeline.frames import TurnRecord
from pipeline.providers import LLM, analyze_call
from webhooks.outbox import enqueue

log = logging.getLogger(__name__)


def _appended(column: Any, item_json: str) -> Any:
    """SQL for `column` (a JSON array as text) with one item appended, evaluated by the database itself."""
    empty, item = Value("[]", converter=False), Value(item_json, converter=False)
    if is_postgres():
        as_jsonb = Cast(fn.COALESCE(column, empty), "jsonb")
        return Cast(Expression(as_jsonb, "||", fn.jsonb_build_array(Cast(item, "jsonb"))), "text")
    return fn.json_insert(fn.COALESCE(column, empty), "$[#]", fn.json(item))


def record_turn(call_id: str, turn: TurnRecord) -> None:
    """Append one turn to Call.transcript in a single UPDATE, so concurrent writers never lose a turn."""
    entry = {"speaker": turn.speaker, "text": turn.text, "start_ms": int(turn.start_ms),
             "end_ms": int(turn.end_ms), "interrupted": bool(turn.interrupted)}
    if turn.source != "speech":
        entry["source"] = turn.source
    if turn.data:
        entry["tool"] = turn.data
    if turn.latency is not None:
        entry["latency"] = dict(turn.latency)
    Call.update(transcript=_appended(Call.transcript, json.dumps(entry))).where(Call.id == call_id).execute()
    record_tool_event(call_id, turn)


def analyze(call_id: str, analysis_llm: Callable[[Agent], LLM], streamed: bool = True) -> dict | None:
    """Fill the agent's analysis schema, store Call.answers and enqueue call.analyzed in one transaction.

    Runs for answered calls (or ones that streamed audio here), once per call. An agent without an
    analysis schema still gets call.analyzed, with "answers": null and Call.answers left null: receivers
    get one predictable event per answered call carrying the final transcript (when the caller hangs up,
    call.ended is written before the session records the agent's cut-off last turn). Only answers that
    validate against the schema are stored and sent; otherwise "answers" is null and "errors" says why
    (provider errors, validation errors), also kept as a CallEvent on the call.
    Returns the webhook data, or None when nothing was analysed.
    """
    call = Call.get_or_none(Call.id == call_id)
    if call is None or call.agent_id is None or not (streamed or call.answered_at is not None):
        return None
    agent = Agent.get_or_none(Agent.id == call.agent_id)
    if agent is None:
        return None
    agent = rendered_agent(agent, call)  # the analysis prompt is the call's, {{variables}} filled in
    schema = agent.analysis_schema if isinstance(agent.analysis_schema, dict) and agent.analysis_schema else None
    turns = list(call.transcript or [])
    answers, errors, source = None, [], "none"
    if schema is not None:
        try:
            result = analyze_call(schema, turns, analysis_llm(agent), agent.prompt or "")
            answers, errors, source = result.data, list(result.errors), result.source
        except Exception as exc:  # e.g. the agent's LLM is not configured on this deployment
            log.warning("call %s: analysis could not run: %s", call_id, exc)
            answers, errors, source = None, [f"analysis failed: {type(exc).__name__}"], "none"
        if errors:
            answers = None  # never store answers that break the agent's schema
    data = {"call_id": call.id, "agent_id": call.agent_id, "answers": answers, "errors": errors,
            "source": source, "transcript": turns}
    with database.atomic():
        already = WebhookDelivery.select().where(WebhookDelivery.call_id == call.id,
                                                 WebhookDelivery.event_type == "call.analyzed").exists()
        if already:
            return None
        Call.update(answers=answers).where(Call.id == call.id).execute()
        if errors:
            CallEvent.create(call=call.id, from_status=call.status, to_status=call.status,
                             reason="analysis rejected", data={"errors": errors[:20]})
        organization = Organization.get_or_none(Organization.id == call.organization_id)
        if organization is not None:
            enqueue(organization, "call.analyzed", data, call=call)
    return data
