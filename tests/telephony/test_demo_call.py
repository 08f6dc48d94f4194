"""The demo as a new user runs it: a whole offline call through the simulator, pocketsphinx and
espeak-ng, with a scripted caller that answers the agent's questions."""
import io

import demo
from models import database


def test_demo_call_holds_a_conversation_and_reports_it(tmp_path):
    out = io.StringIO()
    result = demo.run(tmp_path, out=out, timeout_s=90)
    database.close()
    call = result["call"]
    assert call.status == "completed" and call.hangup_cause == "NORMAL_CLEARING"
    speakers = [t["speaker"] for t in call.transcript]
    assert speakers[:4] == ["agent", "caller", "agent", "caller"]
    assert "confirm your appointment" in call.transcript[0]["text"]
    assert "morning" in call.transcript[3]["text"]  # transcribed by pocketsphinx from espeak-ng's voice
    analyzed = next(e for e in result["events"] if e["type"] == "call.analyzed")
    assert analyzed["data"]["answers"]["confirmed"] is True
    assert "morning" in analyzed["data"]["answers"]["callback_time"]
    ended = next(e for e in result["events"] if e["type"] == "call.ended")
    assert ended["data"]["status"] == "completed" and ended["data"]["billed_minutes"] == 1
    assert len(result["heard"]) > 16000 * 2 * 3  # seconds of the agent's voice reached the far end
    printed = out.getvalue()
    assert "caller: " in printed and "call.analyzed webhook body" in printed


def test_barge_in_then_silence_through_the_simulator(tmp_path):
    """The caller talks over the greeting, then says nothing more: the greeting is cut (killAudio and
    uuid_break), the agent goes on from the caller's words, re-prompts, and hangs up politely."""
    result = demo.run(tmp_path, out=io.StringIO(), timeout_s=90, caller_lines=[],
                      interrupt=(2.5, "Yes, I will be there."))
    database.close()
    call = result["call"]
    first, reply = call.transcript[0], call.transcript[1]
    assert first["speaker"] == "agent" and first["interrupted"] is True
    assert len(first["text"]) < len(demo.AGENT["greeting"])  # cut to what was played
    assert reply["speaker"] == "caller"
    agent_lines = [t["text"] for t in call.transcript if t["speaker"] == "agent"]
    assert any("callback" in t.lower() or "call you back" in t.lower() for t in agent_lines)  # went on
    assert sum("still there" in t for t in agent_lines) >= 1  # silence re-prompt
    assert call.status == "completed"
    analyzed = next(e for e in result["events"] if e["type"] == "call.analyzed")
    assert analyzed["data"]["answers"].get("confirmed") is True
