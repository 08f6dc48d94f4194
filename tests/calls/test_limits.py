"""Admission limits with a virtual clock."""
from calls.limits import ConcurrencyLimits, Pacer


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_pacer_spaces_originates_one_interval_apart():
    clock = Clock()
    pacer = Pacer(10, clock=clock)
    assert pacer.due() == 1 and pacer.wait_time() == 0
    pacer.take()
    clock.now += pacer.wait_time()
    assert pacer.due() == 1
    pacer.take()
    assert pacer.due() == 0 and abs(pacer.wait_time() - 0.1) < 1e-9
    clock.now += 0.1
    assert pacer.due() == 1


def test_a_late_pass_catches_up_so_the_rate_holds_but_a_stall_is_no_burst():
    clock = Clock()
    pacer = Pacer(100, clock=clock)  # catch-up of a tenth of a second: 10 calls
    assert pacer.due() == 1  # a fresh pacer has no slots in hand: its schedule starts at the first call
    assert pacer.due(within=0.1) == 11
    pacer.take(10)
    clock.now += pacer.wait_time()
    pacer.take()
    clock.now += 0.045  # the dispatcher woke 35 ms late: the slots it missed are due now
    assert pacer.due() == 4  # the slots at 10, 20, 30 and 40 ms
    pacer.take(4)
    assert abs(pacer.wait_time() - 0.005) < 1e-9
    clock.now += 60  # stalled for a minute with calls due: at most a tenth of a second's worth at once
    assert pacer.due() == 10


def test_after_a_rest_the_schedule_starts_again_with_nothing_in_hand():
    clock = Clock()
    fast, slow = Pacer(100, clock=clock), Pacer(10, clock=clock)
    for pacer in (fast, slow):
        pacer.take()
        pacer.rest()  # nothing more was due
    clock.now += 60
    assert fast.due() == 1 and slow.due() == 1
    slow.take()
    assert slow.due() == 0 and abs(slow.wait_time() - 0.1) < 1e-9  # a whole slot to the second call, not half
    fast.take()
    assert abs(fast.wait_time() - 0.01) < 1e-9


def test_a_rest_right_after_a_call_keeps_its_slot_ahead():
    clock = Clock()
    pacer = Pacer(10, clock=clock)
    pacer.take()
    pacer.rest()  # the queue emptied; a call queued 20 ms later still waits for the next slot
    clock.now += 0.02
    assert pacer.due() == 0 and abs(pacer.wait_time() - 0.08) < 1e-9
    clock.now += 0.08
    assert pacer.due() == 1


def test_slots_follow_the_schedule_not_the_wake_up_time():
    clock = Clock()
    pacer = Pacer(10, clock=clock)
    started = []
    for _ in range(100):  # every wake-up 7 ms late, a call per slot
        clock.now += pacer.wait_time() + 0.007
        n = pacer.due()
        started += [clock.now] * n
        pacer.take(n)
    rate = (len(started) - 1) / (started[-1] - started[0])
    assert abs(rate - 10) / 10 < 0.01


def test_concurrency_limits_global_and_per_org():
    limits = ConcurrencyLimits(global_max=3, per_org_max=2)
    limits.add("c1", "a")
    limits.add("c2", "a")
    assert not limits.admits("a") and limits.admits("b")
    limits.add("c3", "b")
    assert not limits.admits("b") and limits.free() == 0
    limits.remove("c1")
    limits.remove("c1")
    assert limits.admits("a") and limits.free() == 1
    assert not limits.admits("a", org_max=1)
