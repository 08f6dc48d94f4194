"""Stopping the dispatcher in the middle of a paced claim: it stops between originate slots, never inside a dial,
and gives back what it claimed but did not dial."""
import gevent

from calls.dispatcher import Dispatcher
from models import CALLING, QUEUED, Call

from .factories import queued_calls
from .fake_dialer import RecordingDialer


class SlowDialer(RecordingDialer):
    """A dialer at 2 calls/s whose dial marks the call calling, as the controller's does."""

    def __init__(self):
        super().__init__(capacity=10)
        self.first = gevent.event.Event()

    def wait_time(self) -> float:
        return 0.5 if self.dialed else 0.0

    def dial(self, call: Call, prepared: object | None = None) -> None:
        super().dial(call, prepared)
        self.first.set()


def test_a_stop_mid_claim_dials_nothing_more_and_requeues_the_rest(db, org, outbound_agent):
    ids = queued_calls(org, outbound_agent, 10)
    dialer = SlowDialer()
    dispatcher = Dispatcher(dialer, interval_s=0.5)
    dispatcher.start()
    assert dialer.first.wait(30)
    dispatcher.stop(timeout=30)  # returns at the next slot boundary: the pass is never killed
    assert 1 <= len(dialer.dialed) < 10
    rest = Call.select().where(Call.id.in_(ids), Call.id.not_in(dialer.dialed))
    assert {c.status for c in rest} == {QUEUED} and {c.attempt for c in rest} == {0}
    assert Call.select().where(Call.id.in_(dialer.dialed), Call.status == CALLING).count() == len(dialer.dialed)
