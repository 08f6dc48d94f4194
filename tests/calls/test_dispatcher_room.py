"""A call ending wakes a dispatcher that left due calls for want of room, instead of its next idle poll."""
import gevent

from calls.dispatcher import Dispatcher
from calls.limits import ConcurrencyLimits

from .factories import queued_calls
from .fake_dialer import RecordingDialer

IDLE_POLL_S = 3600.0  # far longer than any wait below: only the wake-up can start the second pass


def test_room_freed_while_calls_wait_starts_a_pass_at_once(db, org, outbound_agent):
    queued_calls(org, outbound_agent, 3)
    dialer = RecordingDialer(capacity=0)  # the concurrent-call limit is reached
    dispatcher = Dispatcher(dialer, interval_s=IDLE_POLL_S)
    passes = []
    run_once = dispatcher.run_once
    dispatcher.run_once = lambda: passes.append(run_once()) or passes[-1]
    dispatcher.start()
    try:
        with gevent.Timeout(30):
            while not passes:
                gevent.sleep(0.01)
        assert passes[0].claimed == 0 and dialer.dialed == []
        dialer.slots = 3
        dialer.room_freed(org.id)  # a live call ended
        with gevent.Timeout(30):
            while len(dialer.dialed) < 3:
                gevent.sleep(0.01)
    finally:
        dispatcher.stop(timeout=30)


def test_an_idle_dispatcher_is_not_woken_by_calls_ending(db, org, outbound_agent):
    dialer = RecordingDialer(capacity=3)
    dispatcher = Dispatcher(dialer, interval_s=IDLE_POLL_S)
    assert dispatcher.run_once().claimed == 0  # nothing due: nothing wants room
    dialer.room_freed(org.id)
    assert not dispatcher._wake.is_set()


def test_the_limits_tell_which_organization_has_room_again():
    told = []
    limits = ConcurrencyLimits(global_max=3, per_org_max=2)
    limits.on_room = told.append
    limits.add("c1", "a")
    limits.remove("c1")
    assert told == []  # not yet: the call's row still counts it live until its end is written
    limits.room_made("a")
    assert told == ["a"]
