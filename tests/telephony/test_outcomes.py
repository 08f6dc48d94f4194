"""How calls end, end to end through the simulator: what call.ended says, retries, limits, the watchdog."""

import json

from calls.dispatcher import Dispatcher
from models import Call, CallEvent, Organization, WebhookDelivery

from .conftest import wait_for
from .test_outbound_calls import final, queue_call, timeline
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


# ---- outbound outcomes: API POST -> dispatcher -> originate -> events -> call.ended ------------------------


def _client(controller):
    from api import create_app

    return create_app(controller.config, call_control=controller).test_client()


def _originates_for(received, call_id):
    """The originate commands the switch read for this call (origination_uuid = the call id)."""
    from .conftest import commands_received

    return [c for c in commands_received(received) if "originate" in c and f"origination_uuid={call_id}" in c]


def _claims(call_id):
    return [e.reason for e in CallEvent.select().where(CallEvent.call == call_id).order_by(CallEvent.id)
            if e.to_status == "calling"]


def _ended(call_id):
    """The one call.ended webhook of the call (its payload's data)."""
    rows = list(WebhookDelivery.select().where(WebhookDelivery.call_id == call_id,
                                               WebhookDelivery.event_type == "call.ended"))
    assert len(rows) == 1
    return json.loads(rows[0].payload)["data"]


def _ended_fields(data):
    return {k: data[k] for k in ("status", "hangup_cause", "sip_code", "attempt", "billed_minutes",
                                 "duration_seconds")}


def _retried_then_ended(received, controller, call_id):
    dispatcher = Dispatcher(controller)
    assert dispatcher.run_once().claimed == 1
    requeued = wait_for(lambda: (c := Call.get_by_id(call_id)).status == "queued" and c.attempt == 1 and c)
    assert requeued.ended_at is None and not _webhooks(call_id, "call.ended")  # not over yet
    assert dispatcher.run_once().claimed == 1   # RETRY_BACKOFF=0: due again at once
    call = final(call_id)
    assert len(_originates_for(received, call_id)) == 2
    assert _claims(call_id) == ["claimed for attempt 1", "claimed for attempt 2"]
    return call


def _retries(call_id):
    """Attempts given back to the queue to be dialed again (not the creation's None -> queued)."""
    return [e for e in CallEvent.select().where(CallEvent.call == call_id).order_by(CallEvent.id)
            if e.to_status == "queued" and e.from_status in ("calling", "ringing")]


def _webhooks(call_id, event_type):
    return list(WebhookDelivery.select().where(WebhookDelivery.call_id == call_id,
                                               WebhookDelivery.event_type == event_type))


def test_a_no_answer_call_is_retried_and_then_ends_no_answer(received, controller, sim, caller_org,
                                                             outbound_agent, auth):
    call_id = queue_call(_client(controller), auth, "+14155550408", max_attempts=2)
    call = _retried_then_ended(received, controller, call_id)
    assert (call.status, call.attempt) == ("no-answer", 2)
    [retry] = _retries(call_id)
    assert retry.from_status == "ringing" and "no-answer" in retry.reason and "attempt 1 of 2" in retry.reason
    # The simulator ends an unanswered ring NO_ANSWER with SIP 487 (the canceled INVITE).
    assert _ended_fields(_ended(call_id)) == {"status": "no-answer", "hangup_cause": "NO_ANSWER", "sip_code": 487,
                                              "attempt": 2, "billed_minutes": 0, "duration_seconds": 0}
    assert Organization.get_by_id(caller_org.id).minutes_used == 0


def test_a_temporary_failure_is_retried_and_then_ends_failed(received, controller, sim, caller_org,
                                                             outbound_agent, auth):
    call_id = queue_call(_client(controller), auth, "+14155550503", max_attempts=2)
    call = _retried_then_ended(received, controller, call_id)
    assert (call.status, call.attempt) == ("failed", 2)
    [retry] = _retries(call_id)
    assert "failed" in retry.reason and "attempt 1 of 2" in retry.reason
    data = _ended(call_id)
    assert _ended_fields(data) == {"status": "failed", "hangup_cause": "NORMAL_TEMPORARY_FAILURE", "sip_code": 503,
                                   "attempt": 2, "billed_minutes": 0, "duration_seconds": 0}
    assert data["answered_at"] is None and data["ended_at"] is not None


def test_an_unallocated_number_fails_without_a_retry(received, controller, sim, caller_org, outbound_agent, auth):
    call_id = queue_call(_client(controller), auth, "+14155550404", max_attempts=3)
    assert Dispatcher(controller).run_once().claimed == 1
    call = final(call_id)
    assert (call.status, call.attempt) == ("failed", 1)
    assert _ended_fields(_ended(call_id)) == {"status": "failed", "hangup_cause": "UNALLOCATED_NUMBER",
                                              "sip_code": 404, "attempt": 1, "billed_minutes": 0,
                                              "duration_seconds": 0}
    assert _retries(call_id) == []
    assert Dispatcher(controller).run_once().claimed == 0
    assert len(_originates_for(received, call_id)) == 1


def test_a_gateway_the_switch_does_not_have_fails_the_call_from_the_background_job_alone(
        received, db, sim, telephony_env, caller_org, outbound_agent, auth):
    from config import load_config

    from .conftest import running_controller

    config = load_config({**telephony_env, "OUTBOUND_GATEWAY": "carrier2"}, webhook_allow_private=True)
    with running_controller(config) as control:
        call_id = queue_call(_client(control), auth, "+14155550123", max_attempts=3)
        assert Dispatcher(control).run_once().claimed == 1
        call = final(call_id)
        # No channel was ever created: the BACKGROUND_JOB's "-ERR INVALID_GATEWAY" is the only signal.
        assert sim.channel(call_id) is None
        assert (call.status, call.attempt, call.hangup_cause, call.sip_code) == ("failed", 1, "INVALID_GATEWAY",
                                                                                 None)
        assert "originate failed: -ERR INVALID_GATEWAY" in call.failure_reason
        assert _ended_fields(_ended(call_id)) == {"status": "failed", "hangup_cause": "INVALID_GATEWAY",
                                                  "sip_code": None, "attempt": 1, "billed_minutes": 0,
                                                  "duration_seconds": 0}
        assert Dispatcher(control).run_once().claimed == 0
        originates = _originates_for(received, call_id)
        assert len(originates) == 1 and "sofia/gateway/carrier2/" in originates[0]


def test_an_answered_call_the_far_end_hangs_up_is_completed_and_billed_by_the_started_minute(
        controller, sim, caller_org, outbound_agent, auth):
    before = Organization.get_by_id(caller_org.id).minutes_used
    call_id = queue_call(_client(controller), auth, "+14155550123")
    assert Dispatcher(controller).run_once().claimed == 1
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
    # The far end's clock says the call was answered two minutes and a bit ago: billsec is 125 or more.
    sim.channel(call_id).answered_us -= 125_000_000
    assert sim.hangup_far_end(call_id)
    call = final(call_id)
    assert (call.status, call.hangup_cause, call.sip_code) == ("completed", "NORMAL_CLEARING", 200)
    assert 125 <= call.duration_s < 180 and call.billed_minutes == 3   # 2 min 5 s and more: three started minutes
    assert Organization.get_by_id(caller_org.id).minutes_used == before + 3
    data = _ended(call_id)
    assert _ended_fields(data) == {"status": "completed", "hangup_cause": "NORMAL_CLEARING", "sip_code": 200,
                                   "attempt": 1, "billed_minutes": 3, "duration_seconds": call.duration_s}
    assert data["answered_at"] is not None
    assert timeline(call_id)[-1] == ("in-progress", "completed")


# ---- inbound: an owned number's call is answered and its agent's stream started ------------------------------


def test_an_inbound_call_to_an_owned_number_is_answered_and_its_audio_stream_started(received, controller, sim,
                                                                                   org):
    from models import Agent, PhoneNumber

    from .conftest import commands_received

    desk = Agent.create(organization=org, name="Desk", direction="inbound", greeting="Hello")
    PhoneNumber.create(organization=org, number="+14155550111", agent=desk)
    channel = sim.inbound_call("+14155550111", f"127.0.0.1:{controller.socket_server.port}", caller="+442071838750")
    call = wait_for(lambda: (c := Call.get_or_none(Call.id == channel.uuid)) and c.status == "in-progress" and c)
    assert (call.direction, call.organization_id, call.agent_id) == ("inbound", org.id, desk.id)
    forks = wait_for(lambda: [c for c in commands_received(received)
                              if c.startswith(f"api uuid_audio_fork {channel.uuid} start ")])
    words = forks[0].split(" ")
    # The URL is the bridge's for this call (its signed token carries a time, so only the path is compared).
    assert len(forks) == 1 and words[4].split("?")[0] == controller.media.media_url(call).split("?")[0]
    assert words[4].split("?")[0].endswith(f"/audio/{call.id}") and words[5:7] == ["mono", "16k"]
    # The default agent streams its voice back: the bidirectional form (bug name, metadata, true true 16000).
    assert words[7] == "audio_fork" and words[9:] == ["true", "true", "16000"]
    assert json.loads(words[8]) == {"call_id": call.id, "direction": "inbound", "narrowband": True}  # a PCMU leg
    # The simulator's mod_audio_fork opened the WebSocket and said so (mod_audio_fork::connect).
    wait_for(lambda: CallEvent.get_or_none(CallEvent.call == call.id, CallEvent.reason == "media connect"))
    assert Call.get_by_id(call.id).status == "in-progress"
    sim.hangup_far_end(channel.uuid)
    assert final(call.id).status == "completed"


# ---- per-organization concurrency ---------------------------------------------------------------------------


def _queued_call(org, agent, number):
    from models import utcnow

    return Call.create(organization=org, agent=agent, direction="outbound", to_number=number,
                       from_number="+14155550000", max_attempts=1, next_attempt_at=utcnow()).id


def test_an_organization_at_its_concurrent_call_limit_waits_while_another_organization_is_dialed(
        db, sim, telephony_env, caller_org, outbound_agent):
    from config import load_config
    from models import Agent

    from .conftest import running_controller

    other = Organization.create(name="Globex", minutes_included=100, default_caller_id="+14155550001")
    other_agent = Agent.create(organization=other, name="Sales", direction="outbound", greeting="Hi")
    config = load_config({**telephony_env, "ORG_MAX_CONCURRENT_CALLS": "1"}, webhook_allow_private=True)
    with running_controller(config) as control:
        first_pair = [_queued_call(caller_org, outbound_agent, "+14155550201"),
                      _queued_call(caller_org, outbound_agent, "+14155550202")]
        elsewhere = _queued_call(other, other_agent, "+14155550203")
        dispatcher = Dispatcher(control)
        # One call of each organization: the second of the first one is left in the queue, not claimed.
        assert dispatcher.run_once().claimed == 2
        wait_for(lambda: Call.get_by_id(elsewhere).status == "in-progress")
        wait_for(lambda: sorted(Call.get_by_id(i).status for i in first_pair) == ["in-progress", "queued"])
        dialed, waiting = sorted(first_pair, key=lambda i: Call.get_by_id(i).status)
        held = Call.get_by_id(waiting)
        assert held.attempt == 0 and _claims(waiting) == [] and sim.channel(waiting) is None
        assert sim.channel(dialed) is not None and _webhooks(waiting, "call.ended") == []
        assert dispatcher.run_once().claimed == 0  # still full: nothing claimed, nothing recorded
        assert CallEvent.select().where(CallEvent.call == waiting).count() <= 1  # at most its one wait note
        sim.hangup_far_end(dialed)
        assert final(dialed).status == "completed"
        wait_for(lambda: dispatcher.run_once().claimed == 1 or Call.get_by_id(waiting).status != "queued")
        later = wait_for(lambda: (c := Call.get_by_id(waiting)).status == "in-progress" and c)
        assert later.attempt == 1 and _claims(waiting) == ["claimed for attempt 1"]
        for call_id in (waiting, elsewhere):
            sim.hangup_far_end(call_id)
            assert final(call_id).status == "completed"


# ---- the watchdog: calls that never got past ringing or calling ----------------------------------------------


def _watchdog_event(call_id):
    return CallEvent.select().where(CallEvent.call == call_id).order_by(CallEvent.id.desc()).get()


def test_the_watchdog_closes_a_call_ringing_past_its_limit_and_hangs_its_channel_up(controller, sim, caller_org,
                                                                                    outbound_agent, auth):
    import datetime as dt

    from models import utcnow

    call_id = queue_call(_client(controller), auth, "+14155550777", max_attempts=1)   # rings and rings
    assert Dispatcher(controller).run_once().claimed == 1
    wait_for(lambda: Call.get_by_id(call_id).status == "ringing")
    assert controller.watchdog_pass() == 0   # within its limit: left alone
    limit = controller.config.originate_timeout_s + 60
    Call.update(dialed_at=utcnow() - dt.timedelta(seconds=limit + 1)).where(Call.id == call_id).execute()
    assert controller.watchdog_pass() == 1
    call = final(call_id)
    assert (call.status, call.hangup_cause, call.billed_minutes) == ("no-answer", "ALLOTTED_TIMEOUT", 0)
    assert _watchdog_event(call_id).reason == "watchdog: the call outlived its limit"
    wait_for(lambda: sim.channel(call_id) is None)   # its channel was killed, not left ringing
    assert call_id not in controller.live
    assert _ended(call_id)["status"] == "no-answer"


def test_the_watchdog_closes_a_call_stuck_calling_whose_originate_never_answered(controller, caller_org,
                                                                               outbound_agent):
    import datetime as dt

    from calls.live_call import LiveCall
    from models import utcnow
    from tests.calls.factories import queued_calls

    node = next(iter(controller.pool.nodes.values()))
    limit = controller.config.originate_timeout_s + 60
    # Claimed and sent to the switch, but no event and no BACKGROUND_JOB ever came back.
    stuck, fresh = queued_calls(caller_org, outbound_agent, 2, status="calling", attempt=1, max_attempts=1,
                                node=node.name, dialed_at=utcnow())
    Call.update(dialed_at=utcnow() - dt.timedelta(seconds=limit + 1)).where(Call.id == stuck).execute()
    for call_id in (stuck, fresh):
        controller.live[call_id] = LiveCall(call_id, caller_org.id, 1, node.name)
        controller.limits.add(call_id, caller_org.id)
    assert controller.watchdog_pass() == 1
    call = Call.get_by_id(stuck)
    assert (call.status, call.hangup_cause) == ("no-answer", "ALLOTTED_TIMEOUT")
    assert (_watchdog_event(stuck).from_status, _watchdog_event(stuck).reason) == (
        "calling", "watchdog: the call outlived its limit")
    assert stuck not in controller.live and stuck not in controller.limits.live   # its slot is free again
    assert Call.get_by_id(fresh).status == "calling" and fresh in controller.live
    assert _ended(stuck)["status"] == "no-answer"
