"""Smart end of turn, early LLM and the first clause, on a scripted clock (pipeline/turn_end.py, speculation.py)."""
import pytest

from pipeline.clauses import ClauseAggregator
from pipeline.fakes import CallScript, say
from pipeline.frames import SpeechStopped
from pipeline.turn_end import Evidence, TurnEndSettings, classify, silence_needed
from tests.pipeline.test_session import GREETING, Harness

INTERIMS = {"interims": 0.0}


def caller_stop(h):
    """When each caller turn was decided over (SpeechStopped events that ended a turn), session ms."""
    return [t for t, e in h.events if isinstance(e, SpeechStopped) and e.end_of_turn]


@pytest.mark.parametrize(("text", "kind"), [
    ("I would like a table", "complete"), ("Yes.", "complete"), ("a table for two and", "open"),
    ("I want to um", "open"), ("so", "open"), ("book it for the", "open"), ("Uh, um", "open"),
    ("well, I think,", "open"), ("", "unknown"), ("...", "open"), ("I think so", "complete"),
    ("Yes I can", "complete"), ("That's what I want", "complete"), ("So do I", "complete"),
    ("I'd like it for", "open"), ("and I'm", "open"),
])
def test_classify(text, kind):
    assert classify(text) == kind


def test_silence_needed_uses_the_evidence_only_when_it_covers_the_end():
    settings = TurnEndSettings(default_ms=600, short_ms=300, long_ms=1200)
    assert silence_needed(settings, None) == 600
    assert silence_needed(settings, Evidence("I would like a table", True, 900)) == 300
    assert silence_needed(settings, Evidence("I would like a table", False, 900)) == 600  # the STT lags
    assert silence_needed(settings, Evidence("yes", True, 200)) == 600  # a short burst: could be a false start
    assert silence_needed(settings, Evidence("a table and", True, 900)) == 1200
    assert silence_needed(settings, Evidence("a table and", False, 900)) == 1200
    assert silence_needed(TurnEndSettings(enabled=False), Evidence("a table and", True, 900)) == 600


def test_complete_utterance_ends_the_turn_after_the_short_silence():
    script = CallScript().say(2.0, "I would like a table", duration=1.0)
    h = Harness([say("Sure. For how many people?")], script, stt_options=INTERIMS, early_llm=False)
    h.run(7.0)
    assert h.said()[1:] == [("caller", "I would like a table"), ("agent", "Sure. For how many people?")]
    assert caller_stop(h) == [pytest.approx(3000 + 300, abs=20)]
    reply = h.turns[2]
    # 300 ms quiet + STT 50 + LLM 100 + TTS 50 (no early LLM here)
    assert h.timeline.audio()[1].t_ms - 3000 == pytest.approx(500, abs=20)
    assert reply.latency["eou_ms"] == pytest.approx(300, abs=20)


def test_without_interims_the_fixed_silence_still_decides():
    script = CallScript().say(2.0, "I would like a table", duration=1.0)
    h = Harness([say("Sure.")], script)
    h.run(7.0)
    assert caller_stop(h) == [pytest.approx(3000 + 600, abs=20)]


def test_trailing_and_waits_the_long_silence_and_keeps_one_turn():
    # 800 ms pause after "and": past the fixed 600 ms, within the long 1200 ms.
    script = CallScript().say(2.0, "I want a table and", duration=1.0).say(3.8, "for two people", duration=0.8)
    h = Harness([say("Sure.")], script, stt_options=INTERIMS)
    h.run(8.0)
    assert h.said()[1:] == [("caller", "I want a table and for two people"), ("agent", "Sure.")]
    assert len(h.llm.calls) == 1  # nothing answered "I want a table and"
    assert caller_stop(h) == [pytest.approx(4600 + 300, abs=20)]


def test_trailing_filler_waits_the_long_silence():
    script = CallScript().say(2.0, "I would like um", duration=1.0).say(3.9, "a table", duration=0.6)
    h = Harness([say("Sure.")], script, stt_options=INTERIMS)
    h.run(7.0)
    assert h.said()[1] == ("caller", "I would like um a table")


def test_open_phrase_still_ends_after_the_long_silence():
    script = CallScript().say(2.0, "I want a table and", duration=1.0)
    h = Harness([say("Sure.")], script, stt_options=INTERIMS)
    h.run(8.0)
    assert caller_stop(h) == [pytest.approx(3000 + 1200, abs=20)]
    assert h.said()[1:] == [("caller", "I want a table and"), ("agent", "Sure.")]


def test_the_stt_endpoint_is_not_the_end_of_an_open_phrase():
    script = CallScript().say(2.0, "I want a table and", duration=1.0).say(3.8, "for two", duration=0.6)
    h = Harness([say("Sure.")], script, stt_options={"interims": 0.0, "endpointing": 0.1}, stt_latency=0.0)
    h.run(7.0)
    assert h.said()[1] == ("caller", "I want a table and for two")


def test_smart_turn_off_is_the_fixed_silence():
    script = CallScript().say(2.0, "I would like a table", duration=1.0)
    h = Harness([say("Sure.")], script, stt_options=INTERIMS, smart_turn=False, early_llm=False)
    h.run(7.0)
    assert caller_stop(h) == [pytest.approx(3000 + 600, abs=20)]


def test_early_llm_answers_before_the_turn_ends_and_saves_its_latency():
    script = CallScript().say(2.0, "I would like a table", duration=1.0)
    h = Harness([say("Sure. For how many people?")], script, stt_options=INTERIMS)
    h.run(7.0)
    assert h.said()[1:] == [("caller", "I would like a table"), ("agent", "Sure. For how many people?")]
    assert len(h.llm.calls) == 1 and h.llm.calls[0][-1].text == "I would like a table"
    # The LLM (100 ms) and the first piece's TTS (50 ms) ran from 60 ms of quiet, inside the 300 ms end of turn
    # and the STT's 50 ms final: the first audio goes out as the turn is committed.
    first = h.timeline.audio()[1]
    assert first.frame.text == "Sure."
    assert first.t_ms - 3000 == pytest.approx(350, abs=20)
    assert h.tts.spoken.count("Sure.") == 1  # the early audio was used, not synthesised again


def test_early_llm_is_discarded_when_the_caller_goes_on():
    # 200 ms of quiet after a complete-sounding phrase: the early answer starts (at 60 ms), then the caller goes
    # on before the 300 ms end of turn.
    def answer(turns):
        return say("Sure, for two.") if "two" in turns[-1].text else say("Just a table?")

    script = CallScript().say(2.0, "I would like a table", duration=1.0).say(3.2, "for two please", duration=0.8)
    h = Harness(answer, script, stt_options=INTERIMS)
    h.run(7.0)
    assert h.said()[1:] == [("caller", "I would like a table for two please"), ("agent", "Sure, for two.")]
    # The early answer to "I would like a table" was asked for and thrown away: never heard, never recorded.
    assert [c[-1].text for c in h.llm.calls] == ["I would like a table", "I would like a table for two please"]
    assert "Just a table?" not in h.audio_texts()
    assert h.tts.spoken.count("Sure, for two.") == 1  # the adopted early answer's audio was used
    assert [t.speaker for t in h.turns] == ["agent", "caller", "agent"]


def test_early_llm_is_discarded_when_the_final_words_differ():
    script = CallScript().say(2.0, "I would like a table", duration=1.0)
    h = Harness([say("Wrong answer."), say("Right answer.")], script, stt_options=INTERIMS)
    h.stt.utterances[0].text = "I would like a table"
    h.run(3.1)
    # The recognizer's final differs from its interim (it revised a word).
    h.stt.utterances[0].text = "I would like a cable"
    h.run(7.0)
    assert h.said()[1:] == [("caller", "I would like a cable"), ("agent", "Right answer.")]
    assert "Wrong answer." not in h.audio_texts()


def test_first_clause_goes_out_before_the_sentence_is_done():
    script = CallScript().say(2.0, "I would like a table", duration=1.0)
    h = Harness([say("Sure thing, I can book that for you tonight.")], script, stt_options=INTERIMS)
    h.run(8.0)
    assert h.audio_texts()[1:] == ["Sure thing,", "I can book that for you tonight."]
    assert h.said()[2] == ("agent", "Sure thing, I can book that for you tonight.")


def test_clause_aggregator():
    agg = ClauseAggregator(first_clause_words=3)
    assert agg.push("Well, ") == []  # one word: not a clause worth its own request
    assert agg.push("I think so, but") == ["Well, I think so,"]
    assert agg.push(" not today. Then, we go.") == ["but not today."]
    assert agg.flush() == ["Then, we go."]
    assert ClauseAggregator(first_clause_words=0).push("Sure thing, I can. ") == ["Sure thing, I can."]


def test_barge_in_still_truncates_with_interims_and_early_llm():
    script = CallScript().say(2.0, "I would like a table", 1.0).say(4.0, "two people", 0.8)
    h = Harness([say("Sure. For how many people tonight?"), say("Great, a table for two.")], script,
                stt_options=INTERIMS)
    h.run(8.0)
    reply = h.turns[2]
    assert reply.speaker == "agent" and reply.interrupted
    assert h.said()[3][0] == "caller" and h.said()[3][1] == "two people"
    assert h.said()[0] == ("agent", GREETING)
