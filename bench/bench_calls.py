"""Call control at scale, through the FreeSWITCH simulator (issue 3 and issue 12 targets).

    .venv/bin/python bench/bench_calls.py [--cps 100] [--calls 2000] [--concurrent 500] [--backlog 1000] [--runs 3]

The dispatcher runs as app.py composes it: DISPATCH_INTERVAL and its batch at their defaults.
1. Dispatcher CPS: 2,000 queued calls dialed under a CPS limit; the measured originate rate must
   stay within 5% of the limit, and so should every 1-second window: counted in whole seconds (where one
   originate either side of an edge is a whole call: 10 % at 10 calls/s) and as the rate over every run of
   limit x 1 s consecutive originates, wherever it starts.
2. Fairness, at the default settings (CALLS_PER_SECOND=10, ORG_MAX_CONCURRENT_CALLS=50): one
   organization at its limit with a backlog of 1,000 due calls; seconds from another organization
   queueing a call to that call being claimed for dialing (target: within 2 s).
3. Concurrency: 500 simultaneous calls; every call must show its whole timeline
   (queued, calling, ringing, in-progress, completed): no lost transition.
4. Reconnect: the simulator killed (SIGKILL) and back after 3 s, five times; the worst time from its
   port accepting again to the node being connected and subscribed (target: within 2 s).
The simulator runs in its own process, as FreeSWITCH does. Runs on a throwaway PostgreSQL database,
emptied between runs. Prints one table: min / median / max over the runs.
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
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import gevent  # noqa: E402
from bench_api import drop_database, make_database  # noqa: E402

from calls.controller import build_telephony  # noqa: E402
from calls.dispatcher import Dispatcher  # noqa: E402
from config import load_config  # noqa: E402
from fssim import Rule, Rules  # noqa: E402
from models import (  # noqa: E402
    LIVE_STATUSES,
    Agent,
    Call,
    CallEvent,
    Organization,
    WebhookDelivery,
    migrate,
    new_id,
    open_database,
    utcnow,
)
from models.bulk import insert_rows  # noqa: E402

DEFAULT_CPS = load_config({}).calls_per_second  # the rate a user who sets nothing gets


def queue(org, agent, count: int) -> list[str]:
    now = utcnow()
    rows = [{"id": new_id(), "organization": org.id, "agent": agent.id, "direction": "outbound",
             "to_number": f"+1415556{n % 10000:04d}", "from_number": "+14155550000", "status": "queued",
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
        rules = rules or Rules()
        json.dump({"rules": [dataclasses.asdict(r) for r in rules.rules], "default": dataclasses.asdict(rules.default)},
                  self._rules)
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


class Dialing:
    """The simulator in its own process, a controller connected to it and a dispatcher as app.py builds one
    (DISPATCH_INTERVAL from the configuration, the default batch)."""

    def __init__(self, sim_rules: Rules, env: dict):
        self.sim = SimulatorProcess(sim_rules).start()
        self.config = load_config({**env, "FREESWITCH_ESL_HOST": f"127.0.0.1:{self.sim.port}",
                                   "FREESWITCH_ESL_PASSWORD": "bench-pw", "VOXBRIDGE_SOCKET_ADDRESS": "127.0.0.1:0",
                                   "VOICE_PIPELINE": "false", "OUTBOUND_GATEWAY": ""})
        self.controller, _ = build_telephony(self.config)
        self.controller.start()
        self.controller.pool.wait_ready(5)
        while not self.controller.reconciled:
            gevent.sleep(0.05)
        self.dispatcher = Dispatcher(self.controller, interval_s=self.config.dispatch_interval_s)
        self.dispatcher.start()

    def close(self) -> None:
        self.dispatcher.stop()
        self.controller.stop()
        self.sim.close()


AGENT_SETTINGS: dict = {}  # --audio-return sets audio_return; empty: the product's default (streamed voice)


def organization(name: str) -> tuple[Organization, Agent]:
    # Names are unique: each run's organizations get their own.
    org = Organization.create(name=f"{name} {new_id()[:8]}", minutes_included=10**9)
    return org, Agent.create(organization=org, name=name, direction="outbound", settings=dict(AGENT_SETTINGS))


def wait(predicate, timeout: float, every: float = 0.5) -> bool:
    """Poll `predicate`: it runs in the app's process, so it is cheap (organization-scoped) and not too often."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        gevent.sleep(every)
    return False


def run(sim_rules: Rules, env: dict, count: int, until, timeout: float):
    dialing = Dialing(sim_rules, env)
    try:
        org, agent = organization("bench")
        ids = queue(org, agent, count)
        wait(lambda: until(org, count), timeout)
    finally:
        dialing.close()
    return ids


def fairness_run(backlog: int) -> float:
    """Seconds from a call queued by an organization with nothing live to its claim, while another
    organization is at ORG_MAX_CONCURRENT_CALLS with `backlog` due calls behind. Default settings."""
    dialing = Dialing(Rules(default=Rule(".*", "answer", after=0.05)), {})  # answered calls stay up
    try:
        limit = dialing.config.org_max_concurrent_calls
        busy, busy_agent = organization("at its limit")
        queue(busy, busy_agent, limit + backlog)
        live = Call.select().where(Call.organization == busy, Call.status.in_(LIVE_STATUSES))
        if not wait(lambda: live.count() >= limit, 60, every=0.05):
            raise RuntimeError("the first organization never reached its limit")
        other, other_agent = organization("other")
        [theirs] = queue(other, other_agent, 1)
        wait(lambda: Call.get_by_id(theirs).dialed_at is not None, 600, every=0.05)
        call = Call.get_by_id(theirs)
        if call.dialed_at is None:
            return float("inf")
        return (call.dialed_at - call.created_at).total_seconds()
    finally:
        dialing.close()


def cps_run(cps: float, count: int) -> tuple[float, float, float, int]:
    rules = Rules(default=Rule(".*", "answer", after=0.05, hangup_after=0.3))
    env = {"CALLS_PER_SECOND": str(cps), "MAX_CONCURRENT_CALLS": "1000", "ORG_MAX_CONCURRENT_CALLS": "1000"}

    def done(org, count):
        return Call.select().where(Call.organization == org, Call.status == "completed").count() == count

    ids = run(rules, env, count, done, timeout=count / cps * 2 + 30)
    # dialed_at: when each originate was sent (the controller stamps it as the bgapi leaves).
    dialed = sorted(t for (t,) in Call.select(Call.dialed_at).where(Call.id.in_(ids)).tuples() if t)
    # Every originate counts, the first included: the pacer starts its schedule at the first call, with no burst.
    steady = dialed
    rate = (len(steady) - 1) / (steady[-1] - steady[0]).total_seconds()
    completed = Call.select().where(Call.id.in_(ids), Call.status == "completed").count()
    return rate, worst_window(steady, cps), worst_stretch(steady, cps), completed


def worst_stretch(times, cps: float, window_s: float = 1.0) -> float:
    """Largest relative gap between the limit and the rate over any 1 second's worth of consecutive originates
    (cps x 1 s intervals, wherever they start): the window's rate without whole-second edges, where an originate
    a millisecond either side of an edge counts a whole call (10 % at 10 calls/s)."""
    n = max(1, round(cps * window_s))
    worst = 0.0
    for i in range(len(times) - n):
        span = (times[i + n] - times[i]).total_seconds()
        if span > 0:
            worst = max(worst, abs(n / span - cps) / cps)
    return worst


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

    def done(org, count):
        live = Call.select().where(Call.organization == org, Call.status == "in-progress").count()
        peak[0] = max(peak[0], live)
        return Call.select().where(Call.organization == org, Call.status == "completed").count() == count

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


def reset() -> None:
    """Empty the call tables between runs (each run creates its own organizations)."""
    for model in (WebhookDelivery, CallEvent, Call):
        model.delete().execute()


def summary(values: list[float]) -> str:
    return f"{min(values):10.3f} {statistics.median(values):10.3f} {max(values):10.3f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cps", type=float, default=100)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrent", type=int, default=500)
    parser.add_argument("--backlog", type=int, default=1000)
    parser.add_argument("--default-calls", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--audio-return", choices=("stream", "playaudio"),
                        help="the agents' audio_return (default: unset, the product's default, stream)")
    parser.add_argument("--postgres", default=os.environ.get("TEST_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    if args.audio_return:
        AGENT_SETTINGS["audio_return"] = args.audio_return
    name, url = make_database(args.postgres)
    results: dict[str, list[float]] = {}
    try:
        open_database(url)
        migrate()
        for _ in range(args.runs):
            rate, worst, stretch, completed = cps_run(args.cps, args.calls)
            reset()
            default_rate, default_worst, default_stretch, _ = cps_run(DEFAULT_CPS, args.default_calls)
            reset()
            fair = fairness_run(args.backlog)
            reset()
            peak, whole, total = concurrency_run(args.concurrent)
            reset()
            gaps = reconnect_run()
            for key, value in (("rate", rate), ("worst", worst * 100), ("stretch", stretch * 100),
                               ("completed", completed), ("default_rate", default_rate),
                               ("default_worst", default_worst * 100), ("default_stretch", default_stretch * 100),
                               ("fair", fair),
                               ("peak", peak), ("whole", whole), ("reconnect", max(gaps))):
                results.setdefault(key, []).append(value)
        print(f"PostgreSQL, {os.cpu_count()} cores, FreeSWITCH simulator in its own process, "
              f"default DISPATCH_INTERVAL and batch; agents' audio_return {args.audio_return or 'default'}; "
              f"{args.runs} runs")
        print(f"{'measure':60} {'min':>10} {'median':>10} {'max':>10} {'target':>10}")
        rows = [
            (f"originate rate over {args.calls} calls at CALLS_PER_SECOND={args.cps:g} (calls/s)", "rate",
             f"{args.cps:g}"),
            ("worst whole 1-second window, deviation from the limit (%)", "worst", "5"),
            ("worst 1 s of consecutive originates, rate deviation (%)", "stretch", "5"),
            ("calls completed in the CPS run", "completed", str(args.calls)),
            (f"originate rate over {args.default_calls} calls at the default CALLS_PER_SECOND={DEFAULT_CPS:g}",
             "default_rate", f"{DEFAULT_CPS:g}"),
            ("worst whole 1-second window at the default rate, deviation (%)", "default_worst", "5"),
            ("worst 1 s of consecutive originates at the default rate (%)", "default_stretch", "5"),
            (f"fairness: s until a 2nd org's call is claimed, {args.backlog:,} backlog", "fair", "2"),
            ("peak simultaneous in-progress calls", "peak", str(args.concurrent)),
            ("calls with every transition recorded", "whole", str(args.concurrent)),
            ("reconnect after a 3 s outage, worst of 5 (s)", "reconnect", "2"),
        ]
        for label, key, target in rows:
            print(f"{label:60} {summary(results[key])} {target:>10}")
    finally:
        drop_database(args.postgres, name)  # WITH (FORCE): this process's connections end server-side too


if __name__ == "__main__":
    status = 0
    try:
        main()
    except BaseException:
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # Not a normal exit: a greenlet of the last run can still hold a pooled psycopg2 connection's lock, and
    # closing that connection from here (close_all, or the interpreter's cleanup) blocked the process forever.
    os._exit(status)
