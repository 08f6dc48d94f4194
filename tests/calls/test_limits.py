"""Admission limits with a virtual clock."""
from calls.limits import ConcurrencyLimits, TokenBucket


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_token_bucket_holds_the_rate():
    clock = Clock()
    bucket = TokenBucket(10, burst=10, clock=clock)
    assert sum(bucket.take() for _ in range(20)) == 10
    clock.now += 0.5
    assert bucket.available() == 5
    assert abs(bucket.wait_time()) < 1e-9
    while bucket.take():
        pass
    assert 0 < bucket.wait_time() <= 0.1


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
