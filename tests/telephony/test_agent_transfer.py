"""The agent's transfer_call tool through the simulator: the LLM asks, FreeSWITCH is told, the agent leaves.

The real controller, MediaBridge and the simulator's mod_audio_fork, with fake providers (a loud tone is
speech, the fake STT says what was heard), as in test_voice_pipeline_calls.py."""
import pytest

from models import CallEvent
from pipeline.fakes import say, voice
from pipeline.interfaces import ToolCall

from .conftest import running_controller, wait_for
from .test_voice_pipeline_calls import Providers, place_call, transcript


@pytest.fixture
def voice_controller(db, telephony_config):
    with running_controller(telephony_config) as control:
        yield control


def test_the_agent_transfers_a_caller_who_asks_for_a_human(received, voice_controller, sim, caller_org):
    voice_controller.media.build_providers = Providers(
        heard=["a human please"],
        replies=[say("Hello there."),
                 say("Transferring you now.", ToolCall("transfer_call", {"destination": "+14155550199",
                                                                          "reason": "caller asked"}))])
    call, _ = place_call(voice_controller, caller_org, {"silence_reprompt_s": 60})
    wait_for(lambda: transcript(call.id) == [("agent", "Hello there.")])
    sim.say(call.channel_uuid, voice(400))
    sent = wait_for(lambda: [c for c in b"".join(received).decode().split("\n\n") if "uuid_transfer" in c])
    # The number the model gave, into the dialplan's transfer context: one command.
    assert sent == [f"api uuid_transfer {call.channel_uuid} +14155550199 XML voxbridge_transfer"]
    wait_for(lambda: voice_controller.media.sessions[call.id].ended)  # the agent left the call
    assert transcript(call.id)[:3] == [("agent", "Hello there."), ("caller", "a human please"),
                                       ("agent", "Transferring you now.")]
    reasons = [e.reason for e in CallEvent.select().where(CallEvent.call == call.id)]
    assert any("transfer" in (r or "") and "+14155550199" in (r or "") for r in reasons), reasons


def test_an_agent_transfer_to_something_that_is_not_a_number_sends_nothing(received, voice_controller, sim,
                                                                         caller_org):
    voice_controller.media.build_providers = Providers(
        heard=["a human please"],
        replies=[say("Hello there."),
                 say("One moment.", ToolCall("transfer_call", {"destination": "1000 XML default"}))])
    call, _ = place_call(voice_controller, caller_org, {"silence_reprompt_s": 60})
    wait_for(lambda: transcript(call.id) == [("agent", "Hello there.")])
    sim.say(call.channel_uuid, voice(400))
    wait_for(lambda: len(transcript(call.id)) >= 3)
    # The session refuses it and apologises in the same turn; the call goes on with the agent.
    assert transcript(call.id)[1:] == [("caller", "a human please"),
                                       ("agent", "One moment. Sorry, I couldn't transfer you right now.")]
    assert not voice_controller.media.sessions[call.id].ended  # still on the call, apologising
    assert "uuid_transfer" not in b"".join(received).decode()
