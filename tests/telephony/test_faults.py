"""Faults: FreeSWITCH restarting mid-traffic, calls the app lost track of, the watchdog."""
import datetime as dt

from calls.dispatcher import Dispatcher
from esl.supervisor import backoff_delay
from models import Call, CallEvent, utcnow

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
    sim.restart()
    wait_for(lambda: supervisor.connects > connects and supervisor.alive, timeout=5)
    # Reconnecting within 2 s is the backoff schedule's doing: its first retries add up to well under it.
    assert sum(backoff_delay(n, supervisor.backoff_initial, supervisor.backoff_max) for n in range(4)) < 2.0
    wait_for(lambda: all(Call.get_by_id(i).status == "completed" for i in ids))
    for call_id in ids:
        reasons = [e.reason for e in CallEvent.select().where(CallEvent.call == call_id)]
        assert any("vanished" in (r or "") for r in reasons), reasons
    assert not controller.live and controller.limits.free() == controller.limits.global_max


def test_calls_freeswitch_still_has_are_adopted_after_a_reconnect(controller, sim, caller_org, outbound_agent,
                                                                   auth):
    from api import create_app

    client = create_app(controller.config, call_control=controller).test_client()
    call_id = queue_call(client, auth, "+14155550300")
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
    controller.live.clear()  # as after an app restart: the process remembers nothing
    node = next(iter(controller.pool.nodes.values()))
    assert controller.reconcile(node) == {"adopted": 1, "closed": 0}
    sim.hangup_far_end(call_id)
    assert wait_for(lambda: Call.get_by_id(call_id).status == "completed")


def test_watchdog_closes_calls_stuck_past_their_limits(controller, caller_org, outbound_agent, auth):
    from api import create_app

    client = create_app(controller.config, call_control=controller).test_client()
    call_id = queue_call(client, auth, "+14155550301")
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
    Call.update(answered_at=utcnow() - dt.timedelta(hours=2)).where(Call.id == call_id).execute()
    assert controller.watchdog_pass() == 1
    call = Call.get_by_id(call_id)
    assert (call.status, call.hangup_cause) == ("completed", "ALLOTTED_TIMEOUT")
    assert "watchdog" in CallEvent.select().where(CallEvent.call == call_id).order_by(CallEvent.id.desc()).get().reason
