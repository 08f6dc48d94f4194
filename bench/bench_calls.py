"""Call control at scale, through the FreeSWITCH simulator (issue 3 targets).

    .venv/bin/python bench/bench_calls.py [--cps 100] [--calls 2000] [--concurrent 500]

1. Dispatcher CPS: 2,000 queued calls dialed under a CPS limit; the measured originate rate must
   stay within 5% of the limit.
2. Concurrency: 500 simultaneous calls; every call must show its whole timeline
   (queued, calling, ringing, in-progress, completed): no lost transition.
3. Reconnect: the simulator killed (SIGKILL) and back after 3 s, five times; the worst time from its
   port accepting again to the node being connected and subscribed (target: within 2 s).
The simulator runs in its own process, as FreeSWITCH does. Runs on a throwaway PostgreSQL database.
Prints one table.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import gevent  # noqa: E402
from bench_api import drop_database, make_database  # noqa: E402

from calls.controller import build_telephony  # noqa: E402
from calls.dispatcher import Dispatcher  # noqa: E402
from config import load_config  # noqa: E402
from fssim import Rule, Rules  # noqa: E402
from models import Agent, Call, CallEvent, Organization, database, migrate, new_id, open_database, utcnow  # noqa: E402
from models.bulk import insert_rows  # noqa: E402


def queue(org, agent, count: int) -> list[str]:
    now = utcnow()
    rows = [{"id": new_id(), "organization": org.id, "agent": agent.id, "direction": "outbound",
             "to_number": f"+1415555{n % 10000:04d}", "from_number": "+14155550000", "status": "queued",
             "next_attempt_at": now, "queued_at": now, "created_at": now, "updated_at": now} for n in range(count)]
    insert_rows(Call, rows)
    return [r["id"] for r in rows]


class SimulatorProcess:
    """The FreeSWITCH simulator in its own process, as FreeSWITCH is: its CPU is not the app's."""

    def __init__(self, rules: Rules | None = None):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._rules = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump({"rules": [], "default": dataclasses.asdict((rules or Rules()).default)}, self._rules)
        self._rules.close()
        self.proc: subprocess.Popen | None = None

    def start(self) -> "SimulatorProcess":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fssim", "--port", str(self.port), "--password", "bench-pw",
             "--rules", self._rules.name, "--heartbeat", "1"], cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                gevent.sleep(0.05)
        raise RuntimeError("the simulator did not start")

    def stop(self) -> None:
        """Like a killed FreeSWITCH (SIGKILL)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def close(self) -> None:
        self.stop()
        os.unlink(self._rules.name)


def run(sim_rules: Rules, env: dict, count: int, until, timeout: float):
    sim = SimulatorProcess(sim_rules).start()
    config = load_config({**env, "FREESWITCH_ESL_HOST": f"127.0.0.1:{sim.port}", "FREESWITCH_ESL_PASSWORD": "bench-pw",
                          "VOXBRIDGE_SOCKET_ADDRESS": "127.0.0.1:0", "VOICE_PIPELINE": "false",
                          "OUTBOUND_GATEWAY": ""})
    controller, _ = build_telephony(config)
    controller.start()
    controller.pool.wait_ready(5)
    while not controller.reconciled:
        gevent.sleep(0.05)
    org = Organization.create(name="bench", minutes_included=10**9)
    agent = Agent.create(organization=org, name="bench", direction="outbound")
    ids = queue(org, agent, count)
    dispatcher = Dispatcher(controller, interval_s=0.01, batch=50)
    dispatcher.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(ids):
            gevent.sleep(0.2)
    finally:
        dispatcher.stop()
        controller.stop()
        sim.close()
    return ids


def cps_run(cps: float, count: int) -> tuple[float, int]:
    rules = Rules(default=Rule(".*", "answer", after=0.05, hangup_after=0.3))
    env = {"CALLS_PER_SECOND": str(cps), "MAX_CONCURRENT_CALLS": "1000", "ORG_MAX_CONCURRENT_CALLS": "1000"}

    def done(ids):
        return Call.select().where(Call.id.in_(ids), Call.status == "completed").count() == len(ids)

    ids = run(rules, env, count, done, timeout=count / cps * 2 + 30)
    dialed = sorted(t for (t,) in Call.select(Call.dialed_at).where(Call.id.in_(ids)).tuples() if t)
    # The bucket starts full (a tenth of a second of calls); measure the steady state after it.
    steady = dialed[int(cps / 10):]
    rate = (len(steady) - 1) / (steady[-1] - steady[0]).total_seconds()
    completed = Call.select().where(Call.id.in_(ids), Call.status == "completed").count()
    return rate, worst_window(steady, cps), completed


def worst_window(times, cps: float, window_s: float = 1.0) -> float:
    """Largest relative gap between the limit and the originates counted in any whole 1-second window."""
    start, end = times[0], times[-1]
    span = (end - start).total_seconds()
    worst, t = 0.0, 0.0
    while t + window_s <= span:
        lo, hi = start + dt.timedelta(seconds=t), start + dt.timedelta(seconds=t + window_s)
        count = sum(1 for x in times if lo <= x < hi)
        worst = max(worst, abs(count / window_s - cps) / cps)
        t += window_s
    return worst


def concurrency_run(count: int) -> tuple[int, int, int]:
    rules = Rules(default=Rule(".*", "answer", after=0.2, hangup_after=count / 100 + 5))
    env = {"CALLS_PER_SECOND": "200", "MAX_CONCURRENT_CALLS": str(count), "ORG_MAX_CONCURRENT_CALLS": str(count)}
    peak = [0]

    def done(ids):
        live = Call.select().where(Call.id.in_(ids), Call.status == "in-progress").count()
        peak[0] = max(peak[0], live)
        return Call.select().where(Call.id.in_(ids), Call.status == "completed").count() == len(ids)

    ids = run(rules, env, count, done, timeout=120)
    expected = ["calling", "ringing", "in-progress", "completed"]
    complete = 0
    for call_id in ids:
        steps = [e for (e,) in CallEvent.select(CallEvent.to_status).where(CallEvent.call == call_id)
                 .order_by(CallEvent.id).tuples()]
        complete += steps == expected
    return peak[0], complete, len(ids)


def reconnect_run(outages: int = 5, downtime_s: float = 3.0) -> list[float]:
    """FreeSWITCH killed and back after `downtime_s`: seconds from its port answering again to the
    controller's node being connected, authenticated and subscribed again."""
    sim = SimulatorProcess().start()
    config = load_config({"FREESWITCH_ESL_HOST": f"127.0.0.1:{sim.port}", "FREESWITCH_ESL_PASSWORD": "bench-pw",
                          "VOXBRIDGE_SOCKET_ADDRESS": "127.0.0.1:0", "VOICE_PIPELINE": "false"})
    controller, _ = build_telephony(config)
    controller.start()
    controller.pool.wait_ready(5)
    supervisor = next(iter(controller.pool.nodes.values())).supervisor
    gaps = []
    try:
        for _ in range(outages):
            connects = supervisor.connects
            sim.stop()
            gevent.sleep(downtime_s)  # long enough for the backoff to reach its cap
            sim.start()  # returns once the port accepts connections again
            back = time.monotonic()
            while not (supervisor.connects > connects and supervisor.alive) and time.monotonic() - back < 30:
                gevent.sleep(0.005)
            gaps.append(time.monotonic() - back)
    finally:
        controller.stop()
        sim.close()
    return gaps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cps", type=float, default=100)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrent", type=int, default=500)
    parser.add_argument("--postgres", default=os.environ.get("TEST_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    name, url = make_database(args.postgres)
    try:
        open_database(url)
        migrate()
        rate, worst, completed = cps_run(args.cps, args.calls)
        peak, whole, total = concurrency_run(args.concurrent)
        gaps = reconnect_run()
        print(f"PostgreSQL, {os.cpu_count()} cores, FreeSWITCH simulator in its own process")
        print(f"{'measure':52} {'value':>10} {'target':>10} {'ratio':>7}")
        print(f"{f'originate rate over {args.calls} calls (calls/s)':52} {rate:10.1f} {args.cps:10.1f} "
              f"{rate / args.cps:7.3f}")
        print(f"{'worst 1-second window, deviation from the limit':52} {worst:10.3f} {0.05:10.3f} "
              f"{worst / 0.05:7.3f}")
        print(f"{'calls completed in the CPS run':52} {completed:10d} {args.calls:10d} {completed / args.calls:7.3f}")
        print(f"{'peak simultaneous in-progress calls':52} {peak:10d} {args.concurrent:10d} {peak / total:7.3f}")
        print(f"{'calls with every transition recorded':52} {whole:10d} {total:10d} {whole / total:7.3f}")
        print(f"{f'reconnect after a 3 s outage, worst of {len(gaps)} (s)':52} {max(gaps):10.2f} {2.0:10.2f} "
              f"{max(gaps) / 2.0:7.3f}")
    finally:
        database.close_all() if hasattr(database, "close_all") else None
        drop_database(args.postgres, name)


if __name__ == "__main__":
    main()
