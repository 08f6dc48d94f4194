"""How calls end, end to end through the simulator: what call.ended says, retries, limits, the watchdog."""

from models import Call

from .conftest import wait_for
from .test_voice_pipeline_calls import Providers, finished, place_call, webhook

LONG_GREETING = " ".join(["This greeting goes on and on"] * 20)  # 120 words: about 7 s of agent audio


def test_call_ended_carries_the_agent_turn_the_caller_hung_up_on(controller, sim, caller_org):
    from pipeline.fakes import say

    controller.media.build_providers = Providers(replies=[say(LONG_GREETING)])
    call, _ = place_call(controller, caller_org, {"silence_reprompt_s": 60})
    session = controller.media.sessions[call.id]
    # The agent is talking and some of its words have been heard; its turn is not recorded yet.
    wait_for(lambda: (agent := session._agent) is not None and agent.segments
             and agent.segments.played_text(session.now_ms()))
    assert Call.get_by_id(call.id).transcript in (None, [])
    sim.hangup_far_end(call.channel_uuid)
    assert finished(call.id).status == "completed"
    turns = webhook(call.id, "call.ended")["transcript"]
    assert [t["speaker"] for t in turns] == ["agent"]
    assert turns[0]["interrupted"] is True and turns[0]["text"]
    assert LONG_GREETING.startswith(turns[0]["text"]) and turns[0]["text"] != LONG_GREETING
