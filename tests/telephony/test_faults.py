"""Faults: FreeSWITCH restarting mid-traffic, calls the app lost track of, the watchdog."""
import datetime as dt

import gevent

from calls.dispatcher import Dispatcher
from models import Call, CallEvent, WebhookDelivery, utcnow

from .conftest import wait_for
from .test_outbound_calls import queue_call


def test_simulator_restart_reconnects_fast_and_closes_vanished_calls(controller, sim, caller_org, outbound_agent,
                                                                      auth):
    from api import create_app

    client = create_app(controller.config, call_control=controller).test_client()
    ids = [queue_call(client, auth, f"+1415555{n:04d}") for n in range(200, 205)]
    Dispatcher(controller).run_once()
    wait_for(lambda: all(Call.get_by_id(i).status == "in-progress" for i in ids))
    supervisor = next(iter(controller.pool.nodes.values())).supervisor
    connects = supervisor.connects
    sim.stop()  # FreeSWITCH dies with five calls up; it stays down for a second
    wait_for(lambda: not supervisor.alive, timeout=5)
    during = queue_call(client, auth, "+14155550299")  # the API keeps queueing while the switch is gone
    assert Dispatcher(controller).run_once().claimed == 0  # nothing is dialed without a live node
    gevent.sleep(1.0)
    sim.start()
    wait_for(lambda: supervisor.connects > connects and supervisor.alive, timeout=5)
    wait_for(lambda: all(Call.get_by_id(i).status == "completed" for i in ids))
    for call_id in ids:
        reasons = [e.reason for e in CallEvent.select().where(CallEvent.call == call_id)]
        assert any("vanished" in (r or "") for r in reasons), reasons
        assert WebhookDelivery.select().where(WebhookDelivery.call_id == call_id,
                                              WebhookDelivery.event_type == "call.ended").count() == 1
    assert Call.get_by_id(during).status == "queued"  # kept, not lost or failed
    assert Dispatcher(controller).run_once().claimed == 1  # and dialed once the node is back
    assert wait_for(lambda: Call.get_by_id(during).status == "in-progress")
    assert set(controller.live) == {during}


def test_calls_freeswitch_still_has_are_adopted_after_a_reconnect(controller, sim, caller_org, outbound_agent,
                                                                   auth):
    from api import create_app

    client = create_app(controller.config, call_control=controller).test_client()
    call_id = queue_call(client, auth, "+14155550300")
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
    controller.live.clear()  # as after an app restart: the process remembers nothing
    node = next(iter(controller.pool.nodes.values()))
    assert controller.reconcile(node) == {"adopted": 1, "closed": 0, "orphans_killed": 0, "in_flight": 0}
    sim.hangup_far_end(call_id)
    assert wait_for(lambda: Call.get_by_id(call_id).status == "completed")


def test_a_call_hung_up_while_reconciliation_asks_about_it_is_ended_not_adopted(controller, sim, caller_org,
                                                                                   outbound_agent, auth):
    # After a restart: uuid_exists says "true", and the channel's hang-up event arrives before reconciliation
    # goes on. The call ends (its event) and must not be adopted after it, holding its slot for good.
    from api import create_app

    client = create_app(controller.config, call_control=controller).test_client()
    call_id = queue_call(client, auth, "+14155550302")
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
    for known in list(controller.live):
        controller.live.forget(known)  # as after an app restart: the process remembers nothing
    node = _node(controller)
    handled = []
    handle = controller.events.handle

    def handle_and_note(node_name, event):
        handle(node_name, event)
        if event.name == "CHANNEL_HANGUP_COMPLETE" and event.unique_id == call_id:
            handled.append(event)

    def api_then_hang_up(command, timeout=None):
        reply = real_api(command, timeout)
        if "uuid_exists" in str(command) and call_id in str(command):
            sim.hangup_far_end(call_id)  # the far end hangs up as the answer leaves the switch
            wait_for(lambda: handled)  # and its event is handled before reconciliation goes on
        return reply

    real_api = node.api
    controller.events.handle = handle_and_note
    node.api = api_then_hang_up
    try:
        controller.reconcile(node)
    finally:
        node.api = real_api
        controller.events.handle = handle
    assert Call.get_by_id(call_id).status == "completed"
    assert call_id not in controller.live and controller.live.limits.live == {}  # its slot is free


def test_watchdog_closes_calls_stuck_past_their_limits(controller, caller_org, outbound_agent, auth):
    from api import create_app

    client = create_app(controller.config, call_control=controller).test_client()
    call_id = queue_call(client, auth, "+14155550301")
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
    # A call up for two hours had its audio stream long ago: wait for it (its event lands asynchronously).
    wait_for(lambda: "media connect" in _reasons(call_id))
    Call.update(answered_at=utcnow() - dt.timedelta(hours=2)).where(Call.id == call_id).execute()
    assert controller.watchdog_pass() == 1
    call = Call.get_by_id(call_id)
    assert (call.status, call.hangup_cause) == ("completed", "ALLOTTED_TIMEOUT")
    assert any("watchdog" in (r or "") for r in _reasons(call_id)), _reasons(call_id)


def _node(controller):
    return next(iter(controller.pool.nodes.values()))


def test_reconcile_leaves_a_call_being_originated_right_now_alone(controller, caller_org, outbound_agent):
    from calls.live_call import LiveCall
    from tests.calls.factories import queued_calls

    # Claimed by this process, originate not sent yet (node is set with the bgapi): no channel exists yet.
    call_id = queued_calls(caller_org, outbound_agent, 1, status="calling", attempt=1)[0]
    controller.live[call_id] = LiveCall(call_id, caller_org.id, 1, _node(controller).name)
    assert controller.reconcile(_node(controller))["closed"] == 0
    call = Call.get_by_id(call_id)
    assert (call.status, call.attempt) == ("calling", 1)  # not requeued: it would be dialed twice


def test_a_call_claimed_by_a_dead_process_before_dialing_is_requeued(controller, caller_org, outbound_agent):
    from tests.calls.factories import queued_calls

    # Claimed 20 s ago: past IN_FLIGHT_S, no instance can still be about to dial it.
    call_id = queued_calls(caller_org, outbound_agent, 1, status="calling", attempt=1,
                           updated_at=utcnow() - dt.timedelta(seconds=20))[0]
    # Claimed just now: maybe by a live instance about to dial it; looked at again IN_FLIGHT_S later.
    recent = queued_calls(caller_org, outbound_agent, 1, status="calling", attempt=1)[0]
    counts = controller.reconcile(_node(controller))
    assert (counts["closed"], counts["in_flight"]) == (1, 1)
    call = Call.get_by_id(call_id)
    assert (call.status, call.attempt) == ("queued", 0)
    assert Call.get_by_id(recent).status == "calling"


def test_an_answered_call_that_vanished_is_billed_from_its_answer(controller, sim, caller_org, outbound_agent,
                                                                   auth):
    from api import create_app
    from models import Organization

    client = create_app(controller.config, call_control=controller).test_client()
    call_id = queue_call(client, auth, "+14155550302")
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
    Call.update(answered_at=utcnow() - dt.timedelta(seconds=150)).where(Call.id == call_id).execute()
    sim.switch.crash()  # the channel is gone without a HANGUP_COMPLETE
    counts = controller.reconcile(_node(controller))
    assert counts["closed"] == 1, (counts, Call.get_by_id(call_id).status, _reasons(call_id))
    call = Call.get_by_id(call_id)
    assert (call.status, call.billed_minutes) == ("completed", 3) and 150 <= call.duration_s < 160
    assert Organization.get_by_id(caller_org.id).minutes_used == 3


def test_orphan_channels_of_closed_calls_are_killed(controller, sim, caller_org, outbound_agent, auth):
    from api import create_app

    client = create_app(controller.config, call_control=controller).test_client()
    call_id = queue_call(client, auth, "+14155550303")
    other = queue_call(client, auth, "+14155550304")
    Dispatcher(controller).run_once()
    wait_for(lambda: all(Call.get_by_id(i).status == "in-progress" for i in (call_id, other)))
    # The database closed it (e.g. the app died between closing and hanging up); FreeSWITCH still has it.
    controller.live.pop(call_id)
    Call.update(status="completed", ended_at=utcnow()).where(Call.id == call_id).execute()
    assert controller.reconcile(_node(controller)) == {"adopted": 1, "closed": 0, "orphans_killed": 1, "in_flight": 0}
    wait_for(lambda: sim.channel(call_id) is None)
    assert sim.channel(other) is not None and Call.get_by_id(other).status == "in-progress"


def test_a_ghost_row_in_show_channels_is_not_killed(controller, sim, caller_org, outbound_agent, monkeypatch):
    import json

    from tests.calls.factories import queued_calls

    closed = queued_calls(caller_org, outbound_agent, 1, status="completed")[0]
    ghost = json.dumps({"row_count": 1, "rows": [{"uuid": closed}]}) + "\n"
    monkeypatch.setitem(sim.api.table, "show", lambda arg: ghost)
    assert controller.reconcile(_node(controller))["orphans_killed"] == 0  # uuid_exists said false


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed when the block ends: nothing listens there


def _answered_agent_call(controller, org, agent):
    call = Call.create(organization=org, agent=agent, direction="outbound", to_number="+14155550123",
                       from_number=org.default_caller_id, max_attempts=1, next_attempt_at=utcnow())
    assert Dispatcher(controller).run_once().claimed == 1
    wait_for(lambda: Call.get_by_id(call.id).status == "in-progress")
    return call.id


def _forks_started(received, channel):
    from .conftest import commands_received

    return [c for c in commands_received(received) if f"uuid_audio_fork {channel} start " in c]


def _reasons(call_id):
    return [e.reason for e in CallEvent.select().where(CallEvent.call == call_id).order_by(CallEvent.id)]


def test_an_unreachable_pipeline_is_retried_once_then_the_call_is_hung_up_with_the_reason(
        received, controller, sim, caller_org, outbound_agent):
    controller.media.public_url = f"ws://127.0.0.1:{_closed_port()}"
    call_id = _answered_agent_call(controller, caller_org, outbound_agent)
    call = wait_for(lambda: (c := Call.get_by_id(call_id)).status not in ("ringing", "in-progress") and c)
    assert len(_forks_started(received, call_id)) == 2              # the first try and one retry
    reasons = _reasons(call_id)
    assert reasons.count("media connect_failed") == 2 and "media stream retried" in reasons
    reason = "the agent's audio stream could not connect again after a retry (no agent on the call)"
    assert f"hangup requested: {reason}" in reasons
    # Nobody was spoken to: unserved, not a completed (billed) conversation.
    assert (call.status, call.failure_reason, call.billed_minutes) == ("failed", reason, 0)
    assert sim.channel(call_id) is None


def test_a_pipeline_reachable_on_the_retry_gets_the_call(received, controller, sim, caller_org, outbound_agent):
    from .test_voice_pipeline_calls import Providers

    controller.media.build_providers = Providers()
    real_url, bad_url = controller.media.media_url, f"ws://127.0.0.1:{_closed_port()}/x"
    urls = iter([bad_url])
    controller.media.media_url = lambda call: next(urls, None) or real_url(call)   # only the first try fails
    call_id = _answered_agent_call(controller, caller_org, outbound_agent)
    wait_for(lambda: call_id in controller.media.sessions)
    assert len(_forks_started(received, call_id)) == 2
    assert Call.get_by_id(call_id).status == "in-progress"
    assert "media connect" in _reasons(call_id)
    controller.hangup(Call.get_by_id(call_id))
    wait_for(lambda: Call.get_by_id(call_id).status == "completed")


def test_a_dropped_stream_is_restarted_once_and_a_second_drop_hangs_up(received, controller, sim, caller_org,
                                                                       outbound_agent):
    from .test_voice_pipeline_calls import Providers

    controller.media.build_providers = Providers()
    call_id = _answered_agent_call(controller, caller_org, outbound_agent)
    first = wait_for(lambda: controller.media.sessions.get(call_id))

    def drop_stream():
        for connection in list(controller.media.server.connections):
            if connection.call_id == call_id:
                connection.shutdown("test: the pipeline drops the stream")

    drop_stream()
    wait_for(lambda: (s := controller.media.sessions.get(call_id)) is not None and s is not first)
    assert len(_forks_started(received, call_id)) == 2 and Call.get_by_id(call_id).status == "in-progress"
    drop_stream()
    call = wait_for(lambda: (c := Call.get_by_id(call_id)).status == "completed" and c)
    assert len(_forks_started(received, call_id)) == 2                # no second retry
    reasons = _reasons(call_id)
    assert reasons.count("media disconnect") == 2
    assert ("hangup requested: the agent's audio stream was dropped again after a retry "
            "(no agent on the call)") in reasons
    assert call.status == "completed"


def test_a_stream_dropped_after_a_hangup_was_asked_for_is_not_restarted(received, controller, sim, caller_org,
                                                                          outbound_agent):
    from .test_voice_pipeline_calls import Providers

    controller.media.build_providers = Providers()
    call_id = _answered_agent_call(controller, caller_org, outbound_agent)
    wait_for(lambda: call_id in controller.media.sessions)
    live = controller.live[call_id]
    live.hangup_requested = True      # what hangup() sets before its uuid_kill: the stream ends with the call
    for connection in list(controller.media.server.connections):
        if connection.call_id == call_id:
            connection.shutdown("test: the agent ended the call")
    wait_for(lambda: "media disconnect" in _reasons(call_id))
    assert live.fork_retries == 0 and "media stream retried" not in _reasons(call_id)
    live.hangup_requested = False
    controller.hangup(Call.get_by_id(call_id))
    wait_for(lambda: Call.get_by_id(call_id).status == "completed")
    assert len(_forks_started(received, call_id)) == 1
