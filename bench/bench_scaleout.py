"""Scale-out: one app instance vs two on the same two FreeSWITCH simulators (every process its own), and the
takeover time after the owner of the nodes is SIGKILLed. Prints tables; asserts nothing about timing.

    .venv/bin/python bench/bench_scaleout.py [--calls 300] [--runs 3] [--takeovers 5] [--postgres URL]

- dialed/s: calls queued at once (half through each instance's API), first to last `dialed_at` (the originate
  leaving), from the database.
- live tracked: the calls answered and held in-progress at once (they stay up until the end of the run), and the
  seconds from queueing to the last one in-progress.
- takeover: SIGKILL the instance owning both nodes while `--live` calls are up; seconds until the survivor's
  /health says it owns both and every call is re-adopted (still in-progress) or closed.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from tests.telephony.scaleout_kit import (  # noqa: E402
    Api,
    Database,
    Instance,
    Switch,
    base_env,
    create_org,
    statuses,
    wait,
)


class Cluster:
    def __init__(self, admin_url: str, instances: int, tmp: pathlib.Path):
        self.db = Database(admin_url)
        self.switches = [Switch(tmp), Switch(tmp)]
        env = base_env(self.db, self.switches, CALLS_PER_SECOND="1000", DISPATCH_INTERVAL="0.05")
        self.instances: list[Instance] = []
        try:
            key = create_org(env)
            self.instances = [Instance(env, tmp / f"app-{i}-{time.monotonic_ns()}.log") for i in range(instances)]
            names = {s.name for s in self.switches}
            wait(lambda: sorted(n for i in self.instances for n in i.owned()) == sorted(names), 60)
            self.apis = [Api(i.url, key) for i in self.instances]
            self.apis[0].post("/v1/agents", {"name": "A", "direction": "outbound"})
        except BaseException:
            self.close()
            raise

    def queue(self, count: int) -> None:
        numbers = [f"+1415555{n % 10000:04d}" for n in range(count)]
        share = -(-count // len(self.apis))
        for index, api in enumerate(self.apis):
            chunk = numbers[index * share:(index + 1) * share]
            for start in range(0, len(chunk), 500):
                api.batch(chunk[start:start + 500])

    def in_progress(self) -> int:
        return sum(s == "in-progress" for s in statuses(self.db).values())

    def close(self) -> None:
        for instance in self.instances:
            instance.stop()
        for switch in self.switches:
            switch.stop()
        self.db.drop()


def dial_run(admin_url: str, instances: int, calls: int, tmp: pathlib.Path) -> tuple[float, int, float]:
    cluster = Cluster(admin_url, instances, tmp)
    try:
        started = time.monotonic()
        cluster.queue(calls)
        wait(lambda: cluster.in_progress() == calls, 600, 0.1, "all calls in progress")
        settled = time.monotonic() - started
        first, last = cluster.db.query("SELECT MIN(dialed_at), MAX(dialed_at) FROM call")[0]
        span = max((last - first).total_seconds(), 1e-3)
        return (calls - 1) / span, cluster.in_progress(), settled
    finally:
        cluster.close()


def takeover_run(admin_url: str, live: int, tmp: pathlib.Path) -> float:
    cluster = Cluster(admin_url, 2, tmp)
    try:
        cluster.queue(live)
        wait(lambda: cluster.in_progress() == live, 300, 0.1, "live calls up")
        victim = next(i for i, inst in enumerate(cluster.instances) if inst.owned())
        survivor = cluster.instances[1 - victim]
        every = {s.name for s in cluster.switches}
        killed_at = time.monotonic()
        cluster.instances[victim].kill()
        wait(lambda: survivor.owned() == every, 120, 0.05, "survivor owns every node")
        wait(lambda: all(s in ("in-progress", "completed", "failed", "canceled", "queued")
                         for s in statuses(cluster.db).values()), 120, 0.05, "calls settled")
        return time.monotonic() - killed_at
    finally:
        cluster.close()


def _stats(values: list[float]) -> str:
    return f"{min(values):8.1f} {statistics.median(values):8.1f} {max(values):8.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--takeovers", type=int, default=5)
    parser.add_argument("--live", type=int, default=50, help="live calls while the owner is killed")
    parser.add_argument("--postgres", default=os.environ.get("TEST_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = pathlib.Path(tmpdir)
        print(f"calls per run: {args.calls}, runs: {args.runs}, nodes: 2 simulators (own processes), "
              f"cpu count: {os.cpu_count()}")
        print(f"{'instances':>9} | {'dialed/s min':>12} {'median':>8} {'max':>8} | {'live tracked':>12} | "
              f"{'s to all live min':>17} {'median':>8} {'max':>8}")
        for instances in (1, 2):
            rates, tracked, settle = [], [], []
            for _ in range(args.runs):
                rate, live, seconds = dial_run(args.postgres, instances, args.calls, tmp)
                rates.append(rate)
                tracked.append(live)
                settle.append(seconds)
            print(f"{instances:>9} | {_stats(rates):>30} | {min(tracked):>12} | {_stats(settle):>35}")
        if args.takeovers:
            times = [takeover_run(args.postgres, args.live, tmp) for _ in range(args.takeovers)]
            print()
            print(f"takeover after SIGKILL of the owner ({args.live} live calls, {args.takeovers} runs), seconds")
            print(f"{'min':>8} {'median':>8} {'worst':>8}")
            print(f"{min(times):8.2f} {statistics.median(times):8.2f} {max(times):8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
