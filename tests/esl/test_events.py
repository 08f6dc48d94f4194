"""Event parsing: every captured event in json and plain, CUSTOM bodies, and the forged-header attack."""
import json
from urllib.parse import unquote

import pytest

from esl.events import Event, from_frame, parse_json, parse_plain
from esl.framing import FrameParser
from tests.esl.captures import all_names, s2c


def _events(name):
    parser = FrameParser()
    out = []
    for raw in s2c(name):
        for frame in parser.feed(raw.encode()):
            event = from_frame(frame)
            if event is not None:
                out.append((frame, event))
    return out


@pytest.mark.parametrize("name", all_names())
def test_every_captured_event_decodes_with_its_name_and_headers(name):
    for frame, event in _events(name):
        assert isinstance(event, Event)
        if frame.content_type == "text/event-json":
            raw = json.loads(frame.body)
            body = raw.pop("_body", None)
            assert event.headers == raw and event.body == body
        else:
            block = frame.body.decode().partition("\n\n")[0]
            expected = {k: unquote(v) for k, v in (ln.split(": ", 1) for ln in block.split("\n"))}
            assert event.headers == expected
        assert event.name == event.headers["Event-Name"] and event.name
        assert event.unique_id == event.headers.get("Unique-ID")


def test_json_and_plain_captures_of_the_same_call_agree():
    json_names = [e.name for _, e in _events("call-events-json")]
    plain_names = [e.name for _, e in _events("call-events-plain")]
    assert sorted(json_names) == sorted(plain_names)
    assert json_names[:1] == ["CHANNEL_CREATE"] and "CHANNEL_HANGUP_COMPLETE" in json_names
    for fmt in ("json", "plain"):
        hc = [e for _, e in _events(f"call-events-{fmt}") if e.name == "CHANNEL_HANGUP_COMPLETE"]
        assert {e.hangup_cause for e in hc} == {"NORMAL_CLEARING"}
        assert all(e.billsec is not None for e in hc)
        assert hc[0].call_id == "call-123" or hc[1].call_id == "call-123"


def test_custom_audio_fork_bodies_are_intact():
    custom = {e.subclass: e for _, e in _events("audio-fork-esl") if e.name == "CUSTOM"}
    assert custom["mod_audio_fork::play_audio"].json_body() == {
        "audioContentType": "raw", "sampleRate": 16000, "textContent": "hello there",
        "file": "/tmp/cc3fe3f5-c8e0-468f-b7f1-80fc1786708c_2.tmp.r16"}
    assert custom["mod_audio_fork::connect_failed"].json_body() == {"reason": "Unable to connect"}
    assert custom["mod_audio_fork::json"].json_body() == {"type": "json", "data": {"hello": "world"}}
    assert custom["mod_audio_fork::play_audio"].key == "mod_audio_fork::play_audio"
    assert "_body" not in custom["mod_audio_fork::json"].headers


def test_background_job_plain_body_kept_and_helpers():
    jobs = [e for _, e in _events("call-events-plain") if e.name == "BACKGROUND_JOB"]
    assert jobs[0].body == "+OK c8b826fb-512c-44f2-b66c-44636b02492e\n"
    assert jobs[0].job_ok and jobs[0].job_result == "c8b826fb-512c-44f2-b66c-44636b02492e"
    assert jobs[0].job_uuid == "41b82538-4c80-4fa7-9a40-3a5ab3d2340a"
    assert jobs[0].headers["Job-Command-Arg"].startswith("{origination_uuid=c8b826fb")


def test_failed_originate_background_jobs_carry_causes():
    jobs = [e for _, e in _events("originate-failures") if e.name == "BACKGROUND_JOB"]
    causes = {e.job_result for e in jobs if not e.job_ok}
    assert {"USER_BUSY", "NO_ANSWER", "CALL_REJECTED", "UNALLOCATED_NUMBER"} <= causes


def test_sip_term_status_and_heartbeat_helpers():
    busy = [e for _, e in _events("sip-outbound-originate")
            if e.name == "CHANNEL_HANGUP_COMPLETE" and e.hangup_cause == "USER_BUSY"]
    assert busy and busy[0].sip_term_status == "486"
    beat = [e for _, e in _events("heartbeat-filter-log") if e.name == "HEARTBEAT"][0]
    assert (beat.session_count, beat.max_sessions) == (2, 1000)


def test_encoded_newline_cannot_forge_a_header():
    # A caller ID name carrying an encoded newline and a fake header, as FreeSWITCH would encode it.
    block = ("Event-Name: CHANNEL_CREATE\nUnique-ID: 184e74ca-0aeb-4d72-b753-74223c0a57c7\n"
             "Caller-Caller-ID-Name: Bob%0AEvent-Name: CHANNEL_HANGUP_COMPLETE%0AHangup-Cause: NORMAL_CLEARING\n"
             "Content-Length: 5\n\nhello")
    event = parse_plain(block.encode())
    assert event.name == "CHANNEL_CREATE"
    assert "Hangup-Cause" not in event.headers
    assert event.headers["Caller-Caller-ID-Name"] == \
        "Bob\nEvent-Name: CHANNEL_HANGUP_COMPLETE\nHangup-Cause: NORMAL_CLEARING"
    assert event.body == "hello"
    # greenswitch's parser falls for it: the forged header wins.
    from greenswitch.esl import ESLEvent
    assert ESLEvent(block).headers["Event-Name"] == "CHANNEL_HANGUP_COMPLETE"


def test_plain_body_with_blank_lines_and_header_like_text_kept_whole():
    body = "line1\n\nFake: header\n"
    event = parse_plain(f"Event-Name: CUSTOM\nEvent-Subclass: x::y\nContent-Length: {len(body)}\n\n{body}".encode())
    assert event.body == body and "Fake" not in event.headers and event.key == "x::y"


def test_json_non_object_rejected():
    with pytest.raises(ValueError):
        parse_json(b"[1,2]")


@pytest.mark.parametrize("text", ["a%20b", "%C3%A9t%C3%A9", "100%", "%zz", "a\\nb", "\\x41%41", "%25%32%30", "é%20x",
                                  "%E9", "%0A%0d", "%%41", "%4", "\\\\%5C"])
def test_url_decode_equals_unquote(text):
    from esl.events import url_decode
    assert url_decode(text) == unquote(text)


def test_lazy_get_agrees_with_parsed_headers_on_every_plain_capture():
    for name in ("call-events-plain", "sip-call-events-plain"):
        for _, event in _events(name):
            lazy = {key: event.get(key) for key in ("Event-Name", "Unique-ID", "Caller-Caller-ID-Name",
                                                     "variable_sip_term_status", "Hangup-Cause", "Missing")}
            assert lazy == {key: event.headers.get(key) for key in lazy}


def test_slow_path_used_when_a_value_holds_a_raw_colon_space_or_decodes_to_newline():
    from esl.events import parse_plain_headers
    assert parse_plain_headers("A: x: y\nB: 1") == {"A": "x: y", "B": "1"}
    assert parse_plain_headers("A: x%0AB: 2\nB: 1") == {"A": "x\nB: 2", "B": "1"}


def test_q850_and_application_helpers():
    done = [e for _, e in _events("sip-outbound-originate") if e.name == "CHANNEL_HANGUP_COMPLETE"]
    assert {(e.hangup_cause, e.hangup_cause_q850) for e in done} >= {("USER_BUSY", 17), ("NORMAL_CLEARING", 16)}
    played = [e for _, e in _events("outbound-socket")
              if e.name == "CHANNEL_EXECUTE_COMPLETE" and e.application == "playback"]
    assert played[0].application_response == "FILE PLAYED"
    dtmf = parse_plain(b"Event-Name: DTMF\nUnique-ID: 184e74ca-0aeb-4d72-b753-74223c0a57c7\nDTMF-Digit: %23\n\n")
    assert dtmf.dtmf_digit == "#" and dtmf.hangup_cause_q850 is None
