"""/metrics after a scripted call through the simulator: the dial, the live call on its node and organization,
and each agent turn's latency under the call's provider names, equal to what the call's transcript stores and
what call.ended summarises."""
import io
import json
import logging

import pytest

from api import create_app
from models import Call
from observability.logs import configure_logging
from observability.metrics import COMPONENT_LABELS
from pipeline.fakes import say
from tests.observability.metrics_helpers import scrape, value

from .conftest import running_controller, wait_for
from .test_voice_pipeline_calls import Providers, finished, place_call, transcript, webhook

PROVIDERS = {"stt": "fixed", "llm": "fake-llm", "tts": "fake-tts"}  # the names of Providers' fakes


@pytest.fixture
def voice_controller(db, telephony_config):
    with running_controller(telephony_config) as control:
        yield control


def _histogram(text, component, what):
    return value(text, f"voxbridge_turn_latency_seconds_{what}", component=component, **PROVIDERS) or 0.0


def test_a_call_through_the_simulator_is_counted_and_its_turn_latencies_observed(voice_controller, sim, caller_org,
                                                                                 auth):
    metrics = create_app(voice_controller.config, call_control=voice_controller).test_client()
    before = scrape(metrics)
    voice_controller.media.build_providers = Providers(replies=[say("Hello, press a key."),
                                                                say("You pressed four two.")])
    call, _ = place_call(voice_controller, caller_org, {"silence_reprompt_s": 60})
    wait_for(lambda: transcript(call.id) == [("agent", "Hello, press a key.")])
    node = Call.get_by_id(call.id).node
    during = scrape(metrics)
    assert value(during, "voxbridge_active_calls", node=node, organization=caller_org.id) == 1
    assert value(during, "voxbridge_esl_node_up", node=node) == 1
    dialed = (value(during, "voxbridge_dial_attempts_total", result="ok") or 0) - (
        value(before, "voxbridge_dial_attempts_total", result="ok") or 0)
    assert dialed == 1

    sim.send_dtmf(call.channel_uuid, "42#")
    wait_for(lambda: len(transcript(call.id)) == 3)
    sim.hangup_far_end(call.channel_uuid)
    assert finished(call.id).status == "completed"
    after = scrape(metrics)
    assert value(after, "voxbridge_active_calls", node=node, organization=caller_org.id) is None

    agent_turns = [t["latency"] for t in Call.get_by_id(call.id).transcript if t["speaker"] == "agent"]
    assert len(agent_turns) == 2
    for key, component in COMPONENT_LABELS.items():
        stored = [turn[key] for turn in agent_turns if turn[key] is not None]
        count = _histogram(after, component, "count") - _histogram(before, component, "count")
        total = _histogram(after, component, "sum") - _histogram(before, component, "sum")
        assert count == len(stored), component
        assert abs(total - sum(stored) / 1000.0) < 1e-6, component
    # Both replies came from the LLM and were synthesised; a keypad turn has no voiced end, so no total.
    assert _histogram(after, "llm_first_token", "count") - _histogram(before, "llm_first_token", "count") == 2
    assert _histogram(after, "total", "count") == _histogram(before, "total", "count")
    # call.ended summarises the same turns: p50 and max per component.
    summary = webhook(call.id, "call.ended")["latency"]
    first_tokens = sorted(turn["llm_first_token_ms"] for turn in agent_turns)
    assert summary["llm_first_token_ms"] == {"p50": round(sum(first_tokens) / 2, 1), "max": first_tokens[-1],
                                             "count": 2}
    assert summary["total_ms"] == {"p50": None, "max": None, "count": 0}
    shown = metrics.get(f"/v1/calls/{call.id}", headers=auth).get_json()
    assert shown["latency"] == summary and [t.get("latency") for t in shown["transcript"]][0] == agent_turns[0]


def test_json_log_lines_of_a_simulated_call_carry_its_call_id(voice_controller, sim, caller_org):
    """Everything logged about the call - by the controller, the audio socket, the session - says which call."""
    stream = io.StringIO()
    levels = {name: logging.getLogger(name).level for name in ("", "peewee")}
    handler = configure_logging("INFO", "json", stream)
    try:
        voice_controller.media.build_providers = Providers(replies=[say("Hello there."), say("Bye.")])
        call, _ = place_call(voice_controller, caller_org, {"silence_reprompt_s": 60})
        wait_for(lambda: transcript(call.id) == [("agent", "Hello there.")])
        sim.hangup_far_end(call.channel_uuid)
        finished(call.id)
    finally:
        logging.getLogger().removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    about_the_call = [line for line in lines if call.id in line["message"]]
    assert about_the_call, lines
    assert [line for line in about_the_call if line["call_id"] != call.id] == []
