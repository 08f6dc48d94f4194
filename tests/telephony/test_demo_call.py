"""The demo as a new user runs it: a whole offline call through the simulator, pocketsphinx and
espeak-ng, with a scripted caller that answers the agent's questions."""
import json
import pathlib
import subprocess
import sys
from types import SimpleNamespace

import demo

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run_demo(tmp_path, mode: str) -> dict:
    done = subprocess.run([sys.executable, str(ROOT / "tests/telephony/demo_runner.py"), str(tmp_path), mode],
                          capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["printed"] = (tmp_path / "printed.txt").read_text()
    return result


def test_demo_call_holds_a_conversation_and_reports_it(tmp_path):
    result = run_demo(tmp_path, "conversation")
    # each answer heard and captured, each reply heard whole by the caller (else: what was said and heard)
    assert result["problems"] == [], (result["problems"], result["caller_heard"],
                                      [(t["speaker"], t["text"]) for t in result["transcript"]])
    assert (result["status"], result["hangup_cause"]) == ("completed", "NORMAL_CLEARING")
    transcript = result["transcript"]
    assert [t["speaker"] for t in transcript][:4] == ["agent", "caller", "agent", "caller"]
    assert "confirm your appointment" in transcript[0]["text"]
    assert "morning" in transcript[3]["text"]  # transcribed by pocketsphinx from espeak-ng's voice
    analyzed = next(e for e in result["events"] if e["type"] == "call.analyzed")
    assert analyzed["data"]["answers"]["confirmed"] is True
    assert "morning" in analyzed["data"]["answers"]["callback_time"]
    ended = next(e for e in result["events"] if e["type"] == "call.ended")
    assert ended["data"]["status"] == "completed" and ended["data"]["billed_minutes"] == 1
    assert result["heard_bytes"] > 16000 * 2 * 3  # seconds of the agent's voice reached the far end
    assert "caller: " in result["printed"] and "call.analyzed webhook body" in result["printed"]
    # The scripted agent's tool step: the clinic's endpoint was called, signed, and its answer spoken.
    assert [c["tool"] for c in result["tool_calls"]] == ["next_slot"]
    assert [t["tool"]["status"] for t in transcript if t["speaker"] == "tool"] == ["ok"]
    assert any(f"next cleaning could be {demo.DEMO_SLOT}" in t["text"] for t in transcript if t["speaker"] == "agent")
    assert result["caller_heard"][:2] == ["Hello, this is the VoxBridge demo assistant calling about your appointment.",
                                          "Can you confirm your appointment tomorrow at ten?"]  # in turn, whole


def test_barge_in_then_silence_through_the_simulator(tmp_path):
    """The caller talks over the greeting, then says nothing more: the greeting is cut (killAudio and
    uuid_break), the agent goes on from the caller's words, re-prompts, and hangs up politely."""
    result = run_demo(tmp_path, "barge-in")
    transcript = result["transcript"]
    assert demo.AGENT["greeting"] not in result["caller_heard"]  # the greeting was cut
    first, reply = transcript[0], transcript[1]
    assert first["speaker"] == "agent" and first["interrupted"] is True
    assert len(first["text"]) < len(demo.AGENT["greeting"])  # cut to what was played
    assert reply["speaker"] == "caller"
    agent_lines = [t["text"] for t in transcript if t["speaker"] == "agent"]
    assert any("call you back" in t.lower() for t in agent_lines)  # went on from the caller's words
    assert sum("still there" in t for t in agent_lines) >= 1  # silence re-prompt
    assert result["status"] == "completed"
    analyzed = next(e for e in result["events"] if e["type"] == "call.analyzed")
    assert analyzed["data"]["answers"].get("confirmed") is True


def test_the_demo_agents_settings_are_all_known_and_its_reprompt_delay_is_applied():
    from calls.agent_settings import check_agent_settings, session_config
    from models import Agent, Call

    assert check_agent_settings(demo.AGENT["settings"]) == []
    agent = Agent(**{key: value for key, value in demo.AGENT.items() if key != "name"})
    config = session_config(agent, Call(context={}), 16000, max_call_s=3600)
    assert config.reprompt_after == demo.AGENT["settings"]["silence_reprompt_s"] == 8


GREETING, Q1 = demo.AGENT["greeting"], demo.AGENT["settings"]["questions"][0]["text"]
Q2 = demo.AGENT["settings"]["questions"][1]["text"]
CLOSING = "Thank you. " + demo.AGENT["settings"]["closing"]


def demo_result(turns, answers=None, heard=None, status="completed", events=("call.ended", "call.analyzed")):
    transcript = [{"speaker": who, "text": text} for who, text in turns]
    call = SimpleNamespace(transcript=transcript, answers=answers, status=status, hangup_cause="NORMAL_CLEARING")
    if heard is None:
        heard = [GREETING, Q1, "Thank you.", Q2, "Thank you.", demo.AGENT["settings"]["closing"]]
    return {"call": call, "caller_heard": heard, "events": [{"type": kind} for kind in events]}


def test_the_demo_names_what_of_the_conversation_did_not_happen():
    whole = [("agent", f"{GREETING} {Q1}"), ("caller", "yes i will be there"), ("agent", f"Thank you. {Q2}"),
             ("caller", "tomorrow morning please"), ("agent", CLOSING)]
    answers = {"confirmed": True, "callback_time": "tomorrow morning please"}
    assert demo.conversation_problems(demo_result(whole, answers)) == []
    # The run: the second answer never became a caller turn ("agent, caller, agent, agent").
    late = demo_result(whole[:3] + whole[4:], {"confirmed": True})
    assert demo.conversation_problems(late) == ["the caller's second answer was never heard",
                                                "the answer 'callback_time' was not captured"]
    unheard = demo_result(whole, answers, heard=[GREETING, Q1, "Thank you.", Q2, "Thank you."], events=["call.ended"])
    assert demo.conversation_problems(unheard) == [
        f"the agent's reply '{CLOSING}' was never heard whole by the caller", "no call.analyzed webhook arrived"]
    never_asked = demo_result(whole[:2], {"confirmed": True}, heard=[GREETING, Q1], status="failed")
    assert demo.conversation_problems(never_asked) == [
        "the agent's second question ('call you back') was never heard by the caller",
        "the answer 'callback_time' was not captured", "the call ended failed (NORMAL_CLEARING), not completed"]


def test_the_demo_exits_non_zero_saying_what_was_not_heard(monkeypatch, capsys):
    turns = [("agent", f"{GREETING} {Q1}"), ("caller", "yes"), ("agent", f"Thank you. {Q2}"), ("agent", CLOSING)]
    monkeypatch.setattr(demo, "run", lambda workdir: demo_result(turns, {"confirmed": True}))
    assert demo.main() == 1
    assert "demo failed: the caller's second answer was never heard" in capsys.readouterr().err
    whole = turns[:3] + [("caller", "tomorrow morning"), turns[3]]
    monkeypatch.setattr(demo, "run", lambda workdir: demo_result(whole, {"confirmed": True, "callback_time": "x"}))
    assert demo.main() == 0
    assert "the whole conversation was held" in capsys.readouterr().out


class FakeSwitch:
    """The simulator as the demo's caller sees it: events in, speech out."""

    def __init__(self):
        self.listeners, self.said = [], []

    def on_event(self, fn):
        self.listeners.append(fn)

    def say(self, uuid, pcm):
        self.said.append((uuid, pcm))

    def fire(self, name, uuid, body=None, subclass="", **headers):
        from fssim.events import Event

        event = Event(name, [(k.replace("_", "-"), v) for k, v in headers.items()], body, subclass, uuid)
        for fn in self.listeners:
            fn(event)


def test_the_demo_caller_answers_a_question_once_it_has_heard_it_end(tmp_path):
    import gevent

    switch = FakeSwitch()
    caller = demo.ScriptedCaller(switch, "call-1", [("confirm", "Yes.")])
    voice = b"\x00\x10" * 8000  # 0.5 s of voice at 16 kHz
    question, other = tmp_path / "q.r16", tmp_path / "other.r16"
    question.write_bytes(voice)
    other.write_bytes(voice)
    for path, text in ((other, "Hello."), (question, "Can you confirm?")):
        switch.fire("CUSTOM", "call-1", json.dumps({"sampleRate": 16000, "textContent": text, "file": str(path)}),
                    subclass="mod_audio_fork::play_audio")
    switch.fire("CUSTOM", "call-2", json.dumps({"sampleRate": 16000, "textContent": "Can you confirm?",
                                                 "file": str(question)}), subclass="mod_audio_fork::play_audio")
    switch.fire("CHANNEL_EXECUTE", "call-1", Application="playback", Application_Data=str(question))
    switch.fire("CHANNEL_EXECUTE_COMPLETE", "call-1", Application="playback", Application_Data=str(question))
    # cut at once (uuid_break): its voice was not heard, so it is not answered
    assert caller.heard_whole() == [] and not caller.answers[0].said
    switch.fire("CHANNEL_EXECUTE", "call-1", Application="playback", Application_Data=str(question))
    gevent.sleep(0.6)  # the file plays for its length
    switch.fire("CHANNEL_EXECUTE_COMPLETE", "call-1", Application="playback", Application_Data=str(question))
    deadline = 30.0
    while not switch.said and deadline > 0:
        gevent.sleep(0.05)
        deadline -= 0.05
    assert [uuid for uuid, _ in switch.said] == ["call-1"] and caller.heard_whole() == ["Can you confirm?"]
    switch.fire("CHANNEL_EXECUTE", "call-1", Application="playback", Application_Data=str(question))
    gevent.sleep(0.6)
    switch.fire("CHANNEL_EXECUTE_COMPLETE", "call-1", Application="playback", Application_Data=str(question))
    assert caller.playbacks[str(question)].whole
    gevent.sleep(demo.HUMAN_PAUSE_S + 0.5)
    assert len(switch.said) == 1  # each answer once, however often the question is heard
