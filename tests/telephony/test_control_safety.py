"""Untrusted values never become ESL commands; media and transfer commands reach FreeSWITCH."""
import pytest

from calls.controller import MediaHooks
from calls.dispatcher import Dispatcher
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


def test_refer_transfer_goes_back_to_the_customers_pbx(controller, caller_org, outbound_agent, auth):
    from api import create_app
    from models import SipAccount

    SipAccount.create(organization=caller_org, name="PBX", sip_server="pbx.example.com:5060")
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
