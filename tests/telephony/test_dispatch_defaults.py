"""Dialing at the DEFAULT dispatch settings, through the simulator, with several organizations.

No dispatch setting is overridden (CALLS_PER_SECOND=10, ORG_MAX_CONCURRENT_CALLS=50,
MAX_CONCURRENT_CALLS=200, DISPATCH_INTERVAL=0.5), calls take the default route (loopback into
voxbridge_outbound), and the dispatcher is composed as app.py composes it. Only the voice pipeline
is off: these calls have no agent audio to carry.
"""
import time

import pytest

from calls import queue
from calls.dispatcher import Dispatcher
from calls.queue import WAITING_FOR_CAPACITY
from calls.reconcile import INBOUND_VANISHED
from config import load_config
from models import Agent, Call, CallEvent, Organization

from ..calls.factories import queued_calls
from .conftest import running_controller, wait_for

BACKLOG = 300


@pytest.fixture
def default_config(sim):
    return load_config({"FREESWITCH_ESL_HOST": f"127.0.0.1:{sim.port}", "FREESWITCH_ESL_PASSWORD": "s3cret-esl",
                        "VOXBRIDGE_SOCKET_ADDRESS": "127.0.0.1:0", "AUDIO_WS_LISTEN": "127.0.0.1:0",
                        "VOICE_PIPELINE": "false"})


@pytest.fixture
def dispatching(db, default_config):
    with running_controller(default_config) as control:
        dispatcher = Dispatcher(control, interval_s=default_config.dispatch_interval_s)
        dispatcher.start()
        try:
            yield control
        finally:
            dispatcher.stop()


def test_the_defaults_are_what_this_file_tests(default_config):
    assert (default_config.calls_per_second, default_config.org_max_concurrent_calls,
            default_config.dispatch_interval_s, default_config.outbound_gateway) == (10, 50, 0.5, "")


def test_an_organization_at_its_limit_with_a_backlog_does_not_hold_back_another(
        dispatching, default_config, caller_org, outbound_agent, sim, monkeypatch):
    notes = []
    original = queue.note_waiting
    monkeypatch.setattr(queue, "note_waiting", lambda orgs: notes.append(orgs) or original(orgs))
    limit = default_config.org_max_concurrent_calls
    # Org D: its first 50 calls answer and stay up (the simulator's default rule), 300 more wait behind them.
    busy_org = queued_calls(caller_org, outbound_agent, limit + BACKLOG, from_number="+14155550000",
                            to_number="+14155551234")
    wait_for(lambda: Call.select().where(Call.id.in_(busy_org), Call.status == "in-progress").count() == limit,
             timeout=60)
    other = Organization.create(name="Other", minutes_included=100, default_caller_id="+14155550001")
    agent = Agent.create(organization=other, name="Sales", direction="outbound", greeting="Hi")
    [theirs] = queued_calls(other, agent, 1, from_number="+14155550001", to_number="+14155550100")
    claimed = wait_for(lambda: CallEvent.get_or_none(CallEvent.call == theirs, CallEvent.to_status == "calling"),
                       timeout=30)
    created = Call.get_by_id(theirs).created_at
    assert (claimed.created_at - created).total_seconds() < 2.0, "the other organization's call waited"
    # Its backlog stayed queued: never claimed, deferred and re-claimed; each call noted its wait once.
    wait_for(lambda: len(notes) >= 3, timeout=30)  # several dispatcher passes saw the organization full
    backlog = Call.select(Call.id).where(Call.id.in_(busy_org), Call.status == "queued")
    assert backlog.count() == BACKLOG and Call.select().where(Call.id.in_(busy_org), Call.attempt > 1).count() == 0
    reasons = [e.reason for e in CallEvent.select().where(CallEvent.call.in_(backlog))]
    assert reasons == [WAITING_FOR_CAPACITY] * BACKLOG
    assert CallEvent.select().where(CallEvent.reason.contains("deferred")).count() == 0


class _RecordedSleeps:
    """Stands in for the dispatcher module's `gevent`: records every pause the dispatcher asks for."""

    def __init__(self, real):
        self._real = real
        self.pauses: list[float] = []

    def sleep(self, seconds=0):
        self.pauses.append(seconds)
        return self._real.sleep(seconds)

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_100_queued_calls_go_out_at_the_configured_10_per_second(
        dispatching, caller_org, outbound_agent, sim, monkeypatch):
    # Decided from the dispatcher's own decisions, not from a wall-clock rate (which a loaded machine
    # lowers whatever the code does): while calls are due it never pauses longer than one originate slot
    # (the defect was a 0.5 s DISPATCH_INTERVAL sleep after each single-call claim, 2 calls/s), the
    # slots it uses are 1/CALLS_PER_SECOND apart, and no second ever holds more dials than the rate
    # plus the pacer's one slot of catch-up (a carrier's per-second limit).
    import gevent

    from calls import dispatcher as dispatcher_module
    sleeps = _RecordedSleeps(gevent)
    monkeypatch.setattr(dispatcher_module, "gevent", sleeps)
    dials: list[tuple[float, int]] = []  # (clock at the dial, pauses requested before it)
    real_dial = dispatching.dial
    monkeypatch.setattr(dispatching, "dial", lambda call, prepared=None: dials.append(
        (time.monotonic(), len(sleeps.pauses))) or real_dial(call, prepared))
    assert dispatching.pacer.interval == pytest.approx(0.1)
    ids = queued_calls(caller_org, outbound_agent, 100, from_number="+14155550000", to_number="+14155550100")
    wait_for(lambda: len(sim.switch.originated) >= 100, timeout=120)
    assert len(dials) == 100
    between = sleeps.pauses[dials[0][1]:dials[-1][1]]
    assert between and max(between) <= 0.1 + 1e-6, f"paused {max(between):.3f} s while calls were due"
    times = [t for t, _ in dials]
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= 11, f"{busiest} dials in one second"
    assert Call.select().where(Call.id.in_(ids), Call.attempt == 1, Call.status != "queued").count() == 100


def test_an_inbound_call_killed_mid_ring_is_never_dialed_after_the_restart(db, sim, default_config, org,
                                                                           outbound_agent):
    # What the killed app left behind: the inbound call admitted and ringing (calling, attempt 1, its node),
    # its channel gone with the app's socket.
    [call_id] = queued_calls(org, outbound_agent, 1, direction="inbound", status="calling", attempt=1,
                             max_attempts=1, node=f"esl 127.0.0.1:{sim.port}", from_number="+442071838750",
                             to_number="+14155550100")
    with running_controller(default_config) as control:  # the restart: reconciled on connecting
        dispatcher = Dispatcher(control, interval_s=default_config.dispatch_interval_s)
        for _ in range(3):
            dispatcher.run_once()
        call = Call.get_by_id(call_id)
        assert call.status == "failed" and call.failure_reason.startswith(INBOUND_VANISHED)
        assert list(sim.switch.originated) == []
        assert CallEvent.select().where(CallEvent.call == call_id, CallEvent.to_status.in_(("queued", "calling")))\
            .count() == 0
