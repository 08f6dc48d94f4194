"""Queue throughput on PostgreSQL: single POSTs/s over HTTP, calls/s through batch, claims/s.

    .venv/bin/python bench/bench_api.py [--runs 3] [--seconds 5] [--clients 64] [--workers 2] [--postgres URL]

Starts `app.py serve` against a throwaway database. The HTTP load comes from bench/http_load.py in its
own process (a generator sharing the server's process would bill its CPU to the server), after a warm-up
that is not counted. The batch row is one uploader posting 1,000-call batches back to back, so it measures
the server's batch path, not client concurrency. Claims drain the same freshly queued 10,000 calls each
run (not whatever rows the HTTP runs left). Each figure is min / median / max of --runs runs.
Prints one table; targets from issue 2.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from urllib.parse import urlparse  # noqa: E402

import psycopg2  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from calls.queue import claim_due  # noqa: E402
from models import Agent, ApiKey, Call, CallEvent, Organization, migrate, new_id, open_database, utcnow  # noqa: E402
from models.bulk import insert_rows  # noqa: E402


def make_database(admin_url: str) -> tuple[str, str]:
    name = f"voxbridge_bench_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    conn.cursor().execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return name, urlparse(admin_url)._replace(path=f"/{name}").geturl()


def drop_database(admin_url: str, name: str) -> None:
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def start_server(url: str, log_path: str, workers: int = 1) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "DATABASE_URL": url, "API_PORT": "0", "RATE_LIMIT_PER_MINUTE": "10000000",
           "LOG_LEVEL": "WARNING", "DISPATCH_INTERVAL": "60",
           "API_WORKERS": str(workers)}
    env.pop("FREESWITCH_ESL_HOST", None)
    out = open(log_path, "w")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([sys.executable, "app.py", "serve"], cwd=ROOT, env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = pathlib.Path(log_path).read_text()
        if "listening on" in text:
            return proc, text.split("listening on ")[1].split()[0]
        time.sleep(0.1)
    raise RuntimeError("server did not start: " + pathlib.Path(log_path).read_text())


LOAD = ROOT / "bench" / "http_load.py"


def load(mode: str, base: str, key: str, *args: str) -> dict:
    """One run of the load generator in its own process; every reply must have been a success."""
    env = {**os.environ, "VOXBRIDGE_BENCH_KEY": key}
    out = subprocess.run([sys.executable, str(LOAD), mode, base, *args], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=600, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    bad = {code: n for code, n in result["statuses"].items() if code not in ("200", "201")}
    if bad:
        raise SystemExit(f"bench_api: the server answered {bad} during a {mode} run: the figure would be wrong")
    return result


def clear_calls() -> None:
    CallEvent.delete().execute()
    Call.delete().execute()


def queue_calls(org: Organization, agent: Agent, count: int) -> None:
    now = utcnow()
    insert_rows(Call, [{"id": new_id(), "organization": org.id, "agent": agent.id, "direction": "outbound",
                        "to_number": f"+1415555{n % 10000:04d}", "from_number": "+14155550000", "status": "queued",
                        "next_attempt_at": now, "queued_at": now, "created_at": now, "updated_at": now}
                       for n in range(count)])


def claim_all(batch: int) -> tuple[float, int]:
    start = time.monotonic()
    total = 0
    while got := claim_due(batch, "bench"):
        total += len(got)
    return total / (time.monotonic() - start), total


def spread(values: list[float]) -> str:
    return f"{min(values):,.0f} / {statistics.median(values):,.0f} / {max(values):,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-rounds", type=int, default=10)
    parser.add_argument("--claims", type=int, default=10_000)
    parser.add_argument("--postgres", default=os.environ.get("TEST_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    name, url = make_database(args.postgres)
    single, batch, claims = [], [], []
    try:
        open_database(url)
        migrate()
        org = Organization.create(name="bench", minutes_included=10**9)
        agent = Agent.create(organization=org, name="bench", direction="outbound")
        key = ApiKey.issue(org)[1]
        with tempfile.TemporaryDirectory() as tmp:
            proc, base = start_server(url, f"{tmp}/server.log", args.workers)
            try:
                for _ in range(args.runs):
                    clear_calls()
                    run = load("single", base, key, "--clients", str(args.clients), "--seconds", str(args.seconds))
                    single.append(run["calls"] / run["seconds"])
                    clear_calls()
                    run = load("batch", base, key, "--uploaders", "1", "--rounds", str(args.batch_rounds))
                    batch.append(run["calls"] / run["seconds"])
            finally:
                proc.terminate()
                proc.wait(timeout=10)
        for _ in range(args.runs):
            clear_calls()
            queue_calls(org, agent, args.claims)
            rate, claimed = claim_all(100)
            assert claimed == args.claims, (claimed, args.claims)
            claims.append(rate)
        rows = [(f"single POST /v1/calls/outbound ({args.clients} keep-alive clients)", single, 500),
                ("calls through batch (1,000 per POST, 1 uploader)", batch, 5000),
                (f"queue claims (100 per claim, {args.claims:,} queued)", claims, 2000)]
        print(f"PostgreSQL, {os.cpu_count()} cores, API_WORKERS={args.workers}, load generator in its own "
              f"process, {args.runs} runs each")
        print(f"{'measure':58} {'per second, min / median / max':>32} {'target':>8} {'median/target':>14}")
        for label, rates, target in rows:
            print(f"{label:58} {spread(rates):>32} {target:8d} {statistics.median(rates) / target:14.2f}")
    finally:
        from models import database

        database.close_all() if hasattr(database, "close_all") else None
        drop_database(args.postgres, name)


if __name__ == "__main__":
    main()
