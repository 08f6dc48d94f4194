"""What a customer tool round trip adds on top of the customer's endpoint: p50/p95 and min/median/max.

    .venv/bin/python bench/bench_tools.py [--runs 200] [--work-ms 0,20] [--method POST]

The endpoint runs in its own process (a plain http.server that verifies the VoxBridge signature, waits
--work-ms, and reports in its JSON answer how long it spent on the request). Each run is one
pipeline.tools.http.call_http_tool: serialising and signing the request, the SSRF guard's resolution and
checks, a new pinned connection, the request, the bounded read and the parse of the answer. "added" is the
round trip minus the endpoint's own time: what VoxBridge and the local network cost. Prints a table; asserts
nothing about times.
"""
from __future__ import annotations

import argparse
import http.server
import json
import multiprocessing
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.tools.definitions import HttpTool  # noqa: E402
from pipeline.tools.http import call_http_tool  # noqa: E402
from webhooks.signing import SIGNATURE_HEADER, verify  # noqa: E402

SECRET = "whsec_bench_0123456789abcdef"


def serve(port_queue: multiprocessing.Queue, work_ms: float) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            started = time.perf_counter()
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            verify(SECRET, self.headers.get(SIGNATURE_HEADER, ""), body)
            time.sleep(work_ms / 1000.0)
            spent = (time.perf_counter() - started) * 1000.0
            data = json.dumps({"slot": "Tuesday at 3 pm", "endpoint_ms": spent}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer  # noqa: N815 - http.server's naming

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(work_ms: float, runs: int, method: str) -> dict[str, list[float]]:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    process = multiprocessing.Process(target=serve, args=(queue, work_ms), daemon=True)
    process.start()
    try:
        port = queue.get(timeout=10)
        tool = HttpTool("check_slot", "bench", f"http://127.0.0.1:{port}/slot", method=method, timeout_s=10)
        totals, endpoint, added = [], [], []
        for i in range(runs + 5):
            started = time.perf_counter()
            result = call_http_tool(tool, {"kind": "cleaning"}, SECRET, call_id="bench", allow_private=True)
            total = (time.perf_counter() - started) * 1000.0
            if not result.ok:
                raise SystemExit(f"the endpoint failed: {result.content}")
            if i < 5:
                continue  # warm-up: imports, first resolution
            spent = json.loads(result.content)["endpoint_ms"]
            totals.append(total)
            endpoint.append(spent)
            added.append(total - spent)
        return {"round trip": totals, "endpoint": endpoint, "added": added}
    finally:
        process.terminate()
        process.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--work-ms", default="0,20", help="the endpoint's own work per request, comma-separated")
    parser.add_argument("--method", default="POST", choices=("GET", "POST"))
    args = parser.parse_args()
    print(f"customer tool round trips, {args.runs} runs each, {args.method}, endpoint in its own process (ms)")
    print(f"{'endpoint work':>13} {'measure':>10} {'p50':>8} {'p95':>8} {'min':>8} {'median':>8} {'max':>8}")
    for work in (float(w) for w in args.work_ms.split(",")):
        for name, values in run(work, args.runs, args.method).items():
            print(f"{work:>13g} {name:>10} {percentile(values, 0.5):>8.2f} {percentile(values, 0.95):>8.2f} "
                  f"{min(values):>8.2f} {statistics.median(values):>8.2f} {max(values):>8.2f}")


if __name__ == "__main__":
    main()
