"""Untrusted values never become ESL commands; media and transfer commands reach FreeSWITCH."""
import pytest

from calls.dispatcher import Dispatcher
from calls.media_hooks import MediaHooks
from models import Call, CallEvent, Organization
from tests.calls.factories import queued_calls

from .conftest import wait_for
from .test_outbound_calls import queue_call

PAYLOADS = ["+1415555\n\napi system rm -rf /", "+14155550123 &system(id)", "${system(touch /tmp/x)}",
            "+1415{5550}123", "'+14155550123'", "+14155550123\r\nevent plain ALL"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_injected_numbers_are_never_dialed(controller, sim, caller_org, outbound_agent, payload):
    # Straight into the database, past the API's validation, as a compromised writer would.
    call_id = queued_calls(caller_org, outbound_agent, 1, to_number=payload[:20], max_attempts=3)[0]
    Dispatcher(controller).run_once()
    call = wait_for(lambda: (c := Call.get_by_id(call_id)).status == "failed" and c)
    assert call.failure_reason.startswith("not dialed") and call.attempt == 1
    assert not sim.switch.channels


def test_injected_caller_id_name_is_reduced_to_a_safe_name(controller, sim, caller_org, outbound_agent, auth):
    from api import create_app

    Organization.update(name="Evil}{origination_uuid=x}${system(id)}'\n").where(
        Organization.id == caller_org.id).execute()
    client = create_app(controller.config, call_control=controller).test_client()
    call_id = queue_call(client, auth, "+14155550123")
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
    name = sim.channel(call_id).cid_name
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-_")


class UnreachableMedia(MediaHooks):
    def media_url(self, call):
        return "ws://127.0.0.1:1/audio/" + call.id


def test_media_stream_started_on_answer_and_its_failure_recorded(controller, caller_org, outbound_agent, auth):
    from api import create_app

    controller.media.stop()
    controller.media = UnreachableMedia()
    client = create_app(controller.config, call_control=controller).test_client()
    call_id = queue_call(client, auth, "+14155550123")
    Dispatcher(controller).run_once()
    reasons = wait_for(lambda: (r := [e.reason for e in CallEvent.select().where(CallEvent.call == call_id)])
                       and "media connect_failed" in r and r)
    assert "media stream requested" in reasons


def test_transfer_modes_send_their_commands(controller, caller_org, outbound_agent, auth):
    from api import create_app

    client = create_app(controller.config, call_control=controller).test_client()
    call_id = queue_call(client, auth, "+14155550123")
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
    bad = client.post(f"/v1/calls/{call_id}/transfer", json={"to": "+1415${x}"}, headers=auth)
    assert bad.status_code == 422
    response = client.post(f"/v1/calls/{call_id}/transfer", json={"to": "+14155550999", "mode": "bridge"},
                           headers=auth)
    assert response.status_code == 202
    reasons = [e.reason for e in CallEvent.select().where(CallEvent.call == call_id)]
    assert any(r and r.startswith("transfer (bridge) to +14155550999") for r in reasons)


def test_agents_with_record_get_a_stereo_recording_on_the_call(controller, caller_org, outbound_agent, auth,
                                                              tmp_path, sim):
    import wave

    from api import create_app

    controller.config = controller.config.__class__(**{**controller.config.__dict__,
                                                       "recordings_dir": str(tmp_path)})
    outbound_agent.settings = {"record": True}
    outbound_agent.save()
    client = create_app(controller.config, call_control=controller).test_client()
    call_id = queue_call(client, auth, "+14155550123")
    Dispatcher(controller).run_once()
    path = wait_for(lambda: Call.get_by_id(call_id).recording_path)
    assert path == str(tmp_path / f"{call_id}.wav")
    sim.hangup_far_end(call_id)
    wait_for(lambda: Call.get_by_id(call_id).status == "completed")
    with wave.open(path) as recording:
        assert (recording.getnchannels(), recording.getframerate()) == (2, 16000)


def test_recording_paths_and_variables_are_allow_listed():
    from esl import commands
    from esl.errors import UnsafeValue

    channel = "3f43e154-fca1-4fb2-a121-64b6e5d0691e"
    line = commands.uuid_record(channel, "start", "/var/rec/a.wav").line
    assert line == f"uuid_record {channel} start /var/rec/a.wav"
    for bad in ("/var/../etc/x.wav", "rel.wav", "/x.wav ${system(id)}", "/x.mp3", "/a b.wav"):
        with pytest.raises(UnsafeValue):
            commands.uuid_record(channel, "start", bad)
    with pytest.raises(UnsafeValue):
        commands.uuid_setvar(channel, "RECORD_STEREO", "true}{x")


def test_refer_transfer_goes_back_to_the_customers_pbx(controller, sim, caller_org, outbound_agent, auth):
    from api import create_app
    from models import SipAccount

    # Provisioned (its gateway is in the switch): an account FreeSWITCH lacks fails the attempt instead.
    account = SipAccount.create(organization=caller_org, name="PBX", sip_server="pbx.example.com:5060",
                                provisioned=True)
    sim.registry.add_gateway(account.gateway_name, proxy="pbx.example.com:5060")
    client = create_app(controller.config, call_control=controller).test_client()
    call_id = queue_call(client, auth, "+14155550123")
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
    response = client.post(f"/v1/calls/{call_id}/transfer", json={"to": "+14155550999", "mode": "refer"},
                           headers=auth)
    assert response.status_code == 202
    reasons = [e.reason or "" for e in CallEvent.select().where(CallEvent.call == call_id)]
    assert any(r.startswith("transfer (refer) to +14155550999") for r in reasons), reasons


@pytest.mark.parametrize("name, value", [("vb_gateway", "gw,origination_uuid=x"), ("vb_x", "a b"),
                                         ("vb_x", "${system(id)}"), ("origination_uuid", "x"), ("vb_x", "a}b")])
def test_dialplan_variables_are_allow_listed(name, value):
    from esl import commands
    from esl.errors import UnsafeValue

    with pytest.raises(UnsafeValue):
        commands.originate(commands.loopback_dial("+14155550123", "voxbridge_outbound"), commands.park_app(),
                           origination_uuid="3f43e154-fca1-4fb2-a121-64b6e5d0691e", dialplan_vars={name: value})


HOSTILE = "${system(touch /tmp/pwned)}\r\nevent plain ALL\n\napi system id 'q\"uote"
# "connect": the outbound socket's first word (a streaming agent's call is controlled through the app's socket).
VERBS = ("auth ", "event json ", "api ", "bgapi ", "exit", "filter ", "sendmsg", "linger", "myevents", "noevents",
         "connect")


def _well_formed(commands_sent):
    for command in commands_sent:
        assert command.isascii() and "\r" not in command and "${" not in command, command
        assert command.startswith(VERBS), command
        if not command.startswith("sendmsg"):
            assert "\n" not in command, command


def test_caller_supplied_context_never_reaches_freeswitch(received, controller, sim, caller_org, outbound_agent,
                                                          auth):
    from api import create_app

    from .conftest import commands_received

    client = create_app(controller.config, call_control=controller).test_client()
    call_id = queue_call(client, auth, "+14155550123", context={"note": HOSTILE, HOSTILE[:20]: [HOSTILE]})
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
    assert client.post(f"/v1/calls/{call_id}/hangup", headers=auth).status_code == 202
    wait_for(lambda: Call.get_by_id(call_id).status == "completed")
    raw = b"".join(received)
    for piece in ("system", "pwned", "uote", "plain ALL", "note"):
        assert piece.encode() not in raw, piece
    sent = commands_received(received)
    assert any(c.startswith("bgapi originate") and call_id in c for c in sent)
    _well_formed(sent)


def test_injection_through_the_dialer_sends_no_command_or_single_safe_ones(received, controller, sim, caller_org,
                                                                          outbound_agent):
    from models import SipAccount

    from .conftest import commands_received

    # Past the API's validation, straight into the database, as a compromised writer would.
    bad_from = queued_calls(caller_org, outbound_agent, 1, to_number="+14155550123", max_attempts=1,
                            from_number="+1415}{x=y}$")[0]
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(bad_from).status == "failed")
    outbound_agent.settings = {"record": True, "voice": HOSTILE, "greeting": HOSTILE}
    outbound_agent.save()
    SipAccount.create(id="x,origination_uuid=1}${system(id)}", organization=caller_org, name="evil",
                      sip_server="198.51.100.9", provisioned=True)
    bad_gateway = queued_calls(caller_org, outbound_agent, 1, to_number="+14155550123", max_attempts=1)[0]
    Dispatcher(controller).run_once()
    call = wait_for(lambda: (c := Call.get_by_id(bad_gateway)).status == "failed" and c)
    assert call.failure_reason.startswith("not dialed")
    sent = commands_received(received)
    assert not [c for c in sent if c.startswith("bgapi originate")]  # neither call produced an originate
    assert b"system" not in b"".join(received) and b"x=y" not in b"".join(received)
    _well_formed(sent)
