"""Command builder: exact bytes against the captures, and injection payloads at every entry point."""
import re

import pytest

from esl import commands as c
from esl.errors import UnsafeValue
from tests.esl.captures import c2s

U = "184e74ca-0aeb-4d72-b753-74223c0a57c7"
GW = "vb_gw_" + "0123456789abcdef" * 2

PAYLOADS = [
    "1555\r\nevent plain ALL", "1555\nexit", "x\n\nauth x", "\x00", "a\x00b", "${system(id)}", "$${x}", "{a=b}",
    "a,b", "a[b]", "<x>", "a^b", "a'b", 'a"b', "a\\b", "a b", "`id`", "a$b", "a;b", "a|b", "",
    "\u0661\u0662\u0663",  # Arabic-Indic digits
    "１２３４５６",  # full-width digits
    "a\u2028b", "a\u0085b", "caf\u00e9", "\ufeff155512", "+1555\u200b1234", "x" * 500, None, 123, b"15551234567",
    "../../etc/passwd", "vb_gw_" + "0" * 31 + "\n", "15551234567\n", "sip:a@b", "127.0.0.1:80 async full)'",
]


def _single_line(cmd: c.Command) -> None:
    wire = cmd.wire()
    assert wire.endswith(b"\n\n") and wire.count(b"\n\n") == 1 and b"\r" not in wire and b"\x00" not in wire
    assert b"${" not in wire and wire.isascii()


BUILDERS = {
    "originate.to_gateway": lambda v: c.originate(c.gateway_dial(GW, v), c.park_app(), origination_uuid=U),
    "originate.gateway": lambda v: c.originate(c.gateway_dial(v, "15551234567"), c.park_app(), origination_uuid=U),
    "originate.loopback_number": lambda v: c.originate(c.loopback_dial(v, "default"), c.park_app(), origination_uuid=U),
    "originate.context": lambda v: c.originate(c.loopback_dial("9196", v), c.park_app(), origination_uuid=U),
    "originate.uuid": lambda v: c.originate(c.loopback_dial("9196", "d"), c.park_app(), origination_uuid=v),
    "originate.from": lambda v: c.originate(c.loopback_dial("9196", "d"), c.park_app(), origination_uuid=U,
                                            caller_id_number=v),
    "originate.call_id": lambda v: c.originate(c.loopback_dial("9196", "d"), c.park_app(), origination_uuid=U,
                                               call_id=v),
    "originate.timeout": lambda v: c.originate(c.loopback_dial("9196", "d"), c.park_app(), origination_uuid=U,
                                               timeout_s=v),
    "originate.socket": lambda v: c.originate(c.loopback_dial("9196", "d"), c.socket_app(v), origination_uuid=U),
    "originate.sofia_host": lambda v: c.originate(c.sofia_dial("external", "1555", v), c.park_app(),
                                                  origination_uuid=U),
    "originate.extension": lambda v: c.originate(c.loopback_dial("9196", "d"), c.extension_target(v, "default"),
                                                 origination_uuid=U),
    "uuid_kill.uuid": lambda v: c.uuid_kill(v),
    "uuid_kill.cause": lambda v: c.uuid_kill(U, v),
    "uuid_answer": lambda v: c.uuid_answer(v),
    "uuid_exists": lambda v: c.uuid_exists(v),
    "uuid_break": lambda v: c.uuid_break(v),
    "uuid_broadcast.path": lambda v: c.uuid_broadcast(U, v),
    "uuid_broadcast.leg": lambda v: c.uuid_broadcast(U, "/tmp/a.wav", v),
    "uuid_transfer.extension": lambda v: c.uuid_transfer(U, v, "transfer"),
    "uuid_transfer.context": lambda v: c.uuid_transfer(U, "15551234567", v),
    "uuid_deflect.user": lambda v: c.uuid_deflect(U, v, "pbx.example.com"),
    "uuid_deflect.host": lambda v: c.uuid_deflect(U, "15551234567", v),
    "audio_fork.url": lambda v: c.audio_fork_start(U, v),
    "audio_fork.meta_value": lambda v: c.audio_fork_start(U, "ws://127.0.0.1:9/a", metadata={"k": v}),
    "audio_fork.meta_key": lambda v: c.audio_fork_start(U, "ws://127.0.0.1:9/a", metadata={v: 1}),
    "audio_fork.bug": lambda v: c.audio_fork_start(U, "ws://127.0.0.1:9/a", bug_name=v, bidirectional=True),
    "audio_fork.mix": lambda v: c.audio_fork_start(U, "ws://127.0.0.1:9/a", mix=v),
    "audio_fork_stop": lambda v: c.audio_fork_stop(U, {"final": v}),
    "sofia_rescan": lambda v: c.sofia_profile_rescan(v),
    "sofia_killgw": lambda v: c.sofia_killgw("external", v),
    "sofia_xmlstatus": lambda v: c.sofia_xmlstatus_gateway(v),
    "acl_check.ip": lambda v: c.acl_check(v, "vb_acl_" + "0" * 32),
    "acl_check.list": lambda v: c.acl_check("203.0.113.7", v),
    "user_exists.user": lambda v: c.user_exists(v, "voxbridge"),
    "user_exists.domain": lambda v: c.user_exists("vb_user_" + "0" * 32, v),
    "auth": lambda v: c.auth(v),
    "event_json.name": lambda v: c.event_json([v]),
    "event_json.subclass": lambda v: c.event_json(["HEARTBEAT"], [v]),
    "filter.header": lambda v: c.event_filter(v, U),
    "filter.value": lambda v: c.event_filter("Unique-ID", v),
    "myevents": lambda v: c.myevents(v),
    "linger": lambda v: c.linger(v),
    "sendmsg.app": lambda v: c.sendmsg_execute(v),
    "sendmsg.arg": lambda v: c.sendmsg_execute("park", v),
    "sendmsg.playback": lambda v: c.execute_playback(v),
    "sendmsg.uuid": lambda v: c.execute_answer(v),
    "sendmsg.hangup": lambda v: c.sendmsg_hangup(v),
}


def _as_command(built) -> c.Command:
    return c.api(built) if isinstance(built, c.ApiCall) else built


@pytest.mark.parametrize("entry", sorted(BUILDERS))
def test_injection_payloads_rejected_or_single_command(entry):
    rejected = 0
    for payload in PAYLOADS:
        try:
            cmd = _as_command(BUILDERS[entry](payload))
        except UnsafeValue as exc:
            assert isinstance(exc, ValueError)
            rejected += 1
            continue
        _single_line(cmd)
        if cmd.verb != "sendmsg":
            assert "\n" not in cmd.text
        # Anything accepted is free of every character that changes FreeSWITCH syntax.
        assert payload is None or isinstance(payload, int) or re.fullmatch(r"[A-Za-z0-9+_./:@=&?#-]*", payload), payload
    assert rejected >= len(PAYLOADS) - 6  # the few accepted ones passed the charset check above


def test_caller_id_name_is_reduced_not_rejected():
    built = c.originate(c.loopback_dial("9196", "default"), c.park_app(), origination_uuid=U,
                        caller_id_name_="Zoë's ${system(rm -rf /)}\r\n{x=y},'Acme'\x00 Inc.")
    text = c.bgapi(built).text
    name = text.split("origination_caller_id_name=", 1)[1].split(",", 1)[0].split("}", 1)[0]
    assert name == "'Zoe s system rm -rf x y Acme Inc.'"
    assert c.caller_id_name("x" * 100) == "x" * 40
    assert c.caller_id_name("\u202eevil") == "evil"
    with pytest.raises(UnsafeValue):
        c.caller_id_name(None)
    _single_line(c.bgapi(built))


def test_originate_matches_the_captured_bytes():
    built = c.originate(c.loopback_dial("9196", "default"), c.park_app(), origination_uuid=U,
                        caller_id_number="15551230000", caller_id_name_="VoxBridge", timeout_s=10, call_id="call-123")
    captured = c2s("call-events-json")[2]
    assert c.bgapi(built).wire().decode() == captured


def test_socket_originate_is_quoted_like_the_capture():
    built = c.originate(c.loopback_dial("9196", "default"), c.socket_app("127.0.0.1:37159"),
                        origination_uuid="d8123317-13da-4643-a918-f1b46f32de19")
    assert c.bgapi(built).text.endswith(" '&socket(127.0.0.1:37159 async full)'")


def test_gateway_dial_and_configured_pattern():
    assert c.gateway_dial(GW, "+15551234567").text == f"sofia/gateway/{GW}/+15551234567"
    with pytest.raises(UnsafeValue):
        c.gateway_dial("carrier_a", "15551234567")
    assert c.gateway_dial("carrier_a", "1555", re.compile(r"\Acarrier_[a-z]+\Z")).text == "sofia/gateway/carrier_a/1555"
    # A lax configured pattern still cannot let syntax characters through.
    with pytest.raises(UnsafeValue):
        c.gateway_dial("a}b", "1555", re.compile(r".*"))


def test_audio_fork_matches_captures_and_bidi_needs_bug_name():
    cmd = c.api(c.audio_fork_start("cc3fe3f5-c8e0-468f-b7f1-80fc1786708c",
                                   "ws://127.0.0.1:34323/audio/call-123?token=abc",
                                   metadata={"callId": "call-123", "sampleRate": 16000}))
    assert cmd.wire().decode() in c2s("audio-fork-esl")
    bidi = c.api(c.audio_fork_start("d8123317-13da-4643-a918-f1b46f32de19", "ws://127.0.0.1:34697/audio/call-123",
                                    metadata={"callId": "call-123"}, bug_name="audio_fork", bidirectional=True))
    assert bidi.wire().decode() in c2s("audio-fork-bidi-control")
    assert len(bidi.text.split(" ")) == 12  # "api uuid_audio_fork" + ten arguments
    with pytest.raises(UnsafeValue):
        c.audio_fork_start(U, "ws://127.0.0.1:9/a", bidirectional=True)
    stop = c.api(c.audio_fork_stop("cc3fe3f5-c8e0-468f-b7f1-80fc1786708c", {"final": True}))
    assert stop.wire().decode() in c2s("audio-fork-esl")


def test_the_bidirectional_pattern_matches_its_captures():
    """Silence playback through the socket session, the quoted socket target, and only 8k/16k streamed back."""
    assert c.execute_playback("silence_stream://-1").wire().decode() in c2s("audio-fork-bidi-socket")
    [originate] = [line for line in c2s("audio-fork-bidi-control") if "originate" in line]
    assert originate.endswith(" " + c.socket_app("127.0.0.1:37159").text + "\n\n")
    eight = c.audio_fork_start(U, "ws://127.0.0.1:9/a", rate="8k", bug_name="b", bidirectional=True,
                               playback_rate=8000)
    assert eight.line.endswith(" mono 8k b {} true true 8000")
    for rate in (44100, "16000", True, 0):
        with pytest.raises(UnsafeValue):
            c.audio_fork_start(U, "ws://127.0.0.1:9/a", bug_name="b", bidirectional=True, playback_rate=rate)


def test_other_builders_match_captured_lines():
    seen = set(c2s("audio-fork-esl")) | set(c2s("api-commands")) | set(c2s("call-events-json")) \
        | set(c2s("outbound-socket")) | set(c2s("heartbeat-filter-log"))
    fork = "cc3fe3f5-c8e0-468f-b7f1-80fc1786708c"
    built = [
        c.api(c.uuid_broadcast(fork, f"/tmp/{fork}_2.tmp.r16")), c.api(c.uuid_break(fork)),
        c.api(c.uuid_exists(fork)), c.api(c.show_channels_json()), c.api(c.reloadacl()),
        c.api(c.sofia_xmlstatus_gateway()), c.auth("ClueCon"), c.myevents(), c.linger(), c.connect(), c.exit_(),
        c.event_json(["CHANNEL_EXECUTE_COMPLETE", "DTMF"]), c.execute_answer(),
        c.execute_playback("tone_stream://%(300,0,440)", event_lock=True), c.sendmsg_hangup(),
        c.event_filter("Unique-ID", "00000000-0000-4000-8000-000000000000"),
        c.event_filter("Unique-ID", "00000000-0000-4000-8000-000000000000", delete=True),
        c.api(c.audio_fork_send_text(fork, {"note": "mid-call"})), c.api(c.audio_fork_pause(fork)),
        c.api(c.audio_fork_pause(fork, resume=True)), c.api(c.acl_check("127.0.0.1", "loopback.auto")),
        c.api(c.acl_check("192.0.2.1", "loopback.auto")),
    ]
    for cmd in built:
        assert cmd.wire().decode() in seen, cmd.text


def test_remaining_builders_shape():
    assert c.uuid_kill(U).line == f"uuid_kill {U} NORMAL_CLEARING"
    assert c.uuid_answer(U).line == f"uuid_answer {U}"
    assert c.uuid_transfer(U, "+15551234567", "transfer").line == f"uuid_transfer {U} +15551234567 XML transfer"
    assert c.uuid_deflect(U, "+15551234567", "pbx.example.com:5060").line == \
        f"uuid_deflect {U} sip:+15551234567@pbx.example.com:5060"
    assert c.sofia_profile_rescan("external").line == "sofia profile external rescan"
    assert c.sofia_killgw("external", GW).line == f"sofia profile external killgw {GW}"
    assert c.reloadxml().line == "reloadxml"
    assert c.user_exists("vb_user_" + "a" * 32, "voxbridge").line == f"user_exists id vb_user_{'a' * 32} voxbridge"
    assert c.event_json(["HEARTBEAT"], ["mod_audio_fork::connect"]).text == \
        "event json HEARTBEAT CUSTOM mod_audio_fork::connect"
    assert c.uuid(U.upper()) == U


def test_command_objects_refuse_raw_injection():
    for text in ["api status\n\nexit", "api status\r", "api ${x}", "api status\n", "api st\x00atus", "api é"]:
        with pytest.raises(UnsafeValue):
            c.Command(text)
    with pytest.raises(UnsafeValue):
        c.ApiCall("status\nexit")


@pytest.mark.parametrize("url", ["ws://127.0.0.1:9/a b", "http://x/a", "ws://x/a?b=${c}", "ws://user@host/x",
                                 "ws://[::1]:9/a", "ws://x:99999/a", "ws:///a", "ws://x/a'b", "ws://x/%0a"])
def test_ws_url_rejections(url):
    with pytest.raises(UnsafeValue):
        c.ws_url(url)


def test_ws_url_accepts_normal_urls():
    for url in ["ws://127.0.0.1:8080/audio/call-1?token=abc_DEF-1", "wss://media.example.com/audio", "ws://host"]:
        assert c.ws_url(url) == url


@pytest.mark.parametrize("call", [
    lambda: c.acl_check("203.0.113.7 loopback.auto", "x"), lambda: c.acl_check("::1", "loopback.auto"),
    lambda: c.acl_check("203.0.113.256", "x"), lambda: c.acl_check("203.0.113.7", "a b"),
    lambda: c.acl_check("203.0.113.7", "x\nexit"), lambda: c.acl_check("203.0.113.7", "$${vb_acl}"),
    lambda: c.user_exists("1001 voxbridge", "x"), lambda: c.user_exists("1001", "voxbridge x"),
    lambda: c.user_exists("${system(id)}", "voxbridge"), lambda: c.user_exists("1001", "a_b"),
    lambda: c.user_exists("1001\n\napi status", "voxbridge"), lambda: c.user_exists("1001", "")])
def test_acl_and_user_exists_refuse_extra_arguments(call):
    with pytest.raises(UnsafeValue):
        call()


@pytest.mark.parametrize("app", ["system", "bgsystem", "eval", "set", "export", "bridge", "transfer", "socket"])
def test_sendmsg_runs_only_allow_listed_applications(app):
    with pytest.raises(UnsafeValue):
        c.sendmsg_execute(app, "id")
    with pytest.raises(UnsafeValue):
        c.sendmsg_execute(app)


def test_sendmsg_allowed_applications_still_build():
    assert c.sendmsg_execute("answer").text == "sendmsg\ncall-command: execute\nexecute-app-name: answer"
    assert c.sendmsg_execute("hangup", "USER_BUSY").text.endswith("execute-app-arg: USER_BUSY")


@pytest.mark.parametrize("extension", ["-bleg", "-both", "-1234", "--x"])
def test_transfer_and_deflect_targets_cannot_be_options(extension):
    with pytest.raises(UnsafeValue):
        c.uuid_transfer(U, extension, "voxbridge_transfer")
    with pytest.raises(UnsafeValue):
        c.uuid_deflect(U, extension, "pbx.example.com")


def test_dialplan_setvar_is_allow_listed_and_empty_unsets():
    assert c.uuid_setvar_dialplan(U, "vb_caller_id", "+14155550000").line == \
        f"uuid_setvar {U} vb_caller_id +14155550000"
    assert c.uuid_setvar_dialplan(U, "vb_gateway", "").line == f"uuid_setvar {U} vb_gateway"
    for name, value in (("vb_gateway", "gw ${system(id)}"), ("vb_x", "a\nb"), ("RECORD_STEREO", "true"),
                        ("vb_x", "'x'"), ("vb_gateway", "-bleg x")):
        with pytest.raises(UnsafeValue):
            c.uuid_setvar_dialplan(U, name, value)


def test_uuid_send_dtmf_takes_only_keypad_keys_and_pauses():
    channel = "184e74ca-0aeb-4d72-b753-74223c0a57c7"
    # Byte for byte what a real FreeSWITCH was sent in the capture.
    assert c.api(c.uuid_send_dtmf(channel, "12#")).wire().decode() in c2s("call-events-json")
    assert c.uuid_send_dtmf(channel, "w1W*ABCD").line == f"uuid_send_dtmf {channel} w1W*ABCD"
    for bad in ("", "1 2", "1\n\napi uuid_kill all", "12@500", "1;", "E", "1" * 33, None):
        with pytest.raises(c.UnsafeValue):
            c.uuid_send_dtmf(channel, bad)
