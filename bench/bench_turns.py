"""Turn latency through the whole path: the caller's last voiced frame -> the first agent audio at the switch.

    .venv/bin/python bench/bench_turns.py [--calls 20] [--turns 50] [--runs 3] [--mode stream|playaudio]
                                          [--interim-ms 50] [--no-early] [--no-smart]

The real AudioForkServer and production Sessions (webrtcvad, the smart end of turn, early generation) run in
this process on core 0; the callers (bench/ws_callers.py: mod_audio_fork-shaped WebSocket clients sending 20 ms
frames of recorded espeak-ng speech on a real-time schedule) run in their own process on core 1, as FreeSWITCH
would. Fixed-latency fake cloud providers: STT final 100 ms after speech ends (and, as streaming recognizers do,
interim words --interim-ms behind the audio), LLM first token 200 ms, TTS first audio 100 ms.

A turn is measured by the caller: from sending its last voiced frame to receiving the first agent audio (a
binary frame in stream mode, the playAudio message in playaudio mode). While it runs, the observability
exposition (observability/metrics.py, what GET /metrics serves) is scraped once a second over HTTP; the
voxbridge_turn_latency_seconds{component="total"} histogram's p50 over the run (Prometheus' histogram_quantile
interpolation between buckets) is printed beside the bench's own. Nothing is asserted: figures are printed as
min / median / max over --runs runs.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_pipeline_ws import loop_lag, make_speech  # noqa: E402
from spread import spread  # noqa: E402

from observability.metrics import exposition, observe_turn, provider_labels  # noqa: E402
from pipeline.clock import REAL_CLOCK  # noqa: E402
from pipeline.fakes import FakeLLM, FakeSTT, FakeTTS, Utterance, say  # noqa: E402
from pipeline.server import AudioForkServer  # noqa: E402
from pipeline.session import Session, SessionCallbacks, SessionConfig  # noqa: E402
from pipeline.tokens import audio_fork_url  # noqa: E402

SECRET = "bench-audio-token-secret"
CYCLE_S, SPEAK_AT_S = 5.0, 1.5  # the short greeting is over before the caller first speaks
STT_S, LLM_S, TTS_S = 0.1, 0.2, 0.1
WORDS = "I would like to move my appointment to Tuesday morning"


class Server:
    def __init__(self, speech_s: float, seconds: float, args: argparse.Namespace):
        self.speech_s, self.seconds, self.args = speech_s, seconds, args
        self.server = AudioForkServer(self._session, lambda call_id: True, SECRET, idle_timeout=120)

    def _session(self, info, send) -> Session:
        # The provider ends the utterance itself STT_S after the words (Deepgram's endpointing), with the final.
        stt = FakeSTT(REAL_CLOCK, latency=0.0, endpointing=STT_S, interims=self.args.interim_ms / 1000.0)
        stt.utterances = [Utterance(WORDS, k * CYCLE_S + SPEAK_AT_S, k * CYCLE_S + SPEAK_AT_S + self.speech_s)
                          for k in range(int(self.seconds // CYCLE_S) + 1)]
        # A reply that has finished playing before the caller's next line (no barge-in in this bench).
        llm = FakeLLM(REAL_CLOCK, lambda turns: say("Sure, Tuesday at nine works."), latency=LLM_S)
        tts = FakeTTS(REAL_CLOCK, latency=TTS_S, ms_per_word=300)
        labels = provider_labels(stt, llm, tts)
        callbacks = SessionCallbacks(on_turn=lambda turn: observe_turn(turn.latency, labels)
                                     if turn.speaker == "agent" else None)
        config = SessionConfig(greeting="Hello.", reprompt_after=600.0, bidirectional=self.args.mode == "stream",
                               early_llm=not self.args.no_early, smart_turn=not self.args.no_smart)
        return Session(config, stt, llm, tts, send, callbacks, sample_rate=info.sample_rate)


def metrics_app(environ, start_response):
    if environ.get("PATH_INFO") != "/metrics":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    body, content_type = exposition()
    start_response("200 OK", [("Content-Type", content_type)])
    return [body]


def total_buckets(text: str) -> dict[float, float]:
    """le -> cumulative count of voxbridge_turn_latency_seconds{component="total"}, summed over label sets."""
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if not line.startswith("voxbridge_turn_latency_seconds_bucket{") or 'component="total"' not in line:
            continue
        labels, value = line.rsplit(" ", 1)
        le = labels.split('le="', 1)[1].split('"', 1)[0]
        bound = float("inf") if le == "+Inf" else float(le)
        buckets[bound] = buckets.get(bound, 0.0) + float(value)
    return buckets


def histogram_p50(before: dict[float, float], after: dict[float, float]) -> tuple[float, int]:
    """Prometheus' histogram_quantile(0.5) over the observations between two scrapes; (seconds, count)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return float("nan"), 0
    rank, lower, below = 0.5 * total, 0.0, 0.0
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= rank:
            if bound == float("inf"):
                return lower, int(total)
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 0.0), int(total)
        lower, below = bound, cumulative
    return lower, int(total)


def scrape(url: str) -> dict[float, float]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own loopback endpoint
        return total_buckets(response.read().decode())


def scraper(url: str, results: list, stop: gevent.event.Event) -> None:
    while not stop.wait(1.0):
        try:
            results.append(scrape(url))
        except OSError as exc:
            print(f"  scrape failed: {exc}")


def run_once(server: Server, calls: int, seconds: float, speech_path: str, tmp: str, metrics_url: str) -> dict:
    host, port = server.server.address
    urls = [audio_fork_url(f"ws://{host}:{port}", f"turns-{i}-{time.monotonic_ns()}", SECRET, 600)
            for i in range(calls)]
    urls_path = f"{tmp}/urls.json"
    pathlib.Path(urls_path).write_text(json.dumps(urls))
    lag: list[float] = []
    stop = gevent.event.Event()
    monitor = gevent.spawn(loop_lag, lag, stop)
    before = scrape(metrics_url)
    scrapes: list[dict[float, float]] = []
    scraping = gevent.spawn(scraper, metrics_url, scrapes, stop)
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "ws_callers.py"), urls_path, speech_path,
                             str(seconds), str(CYCLE_S), str(SPEAK_AT_S)], stdout=subprocess.PIPE, cwd=ROOT,
                            preexec_fn=lambda: os.sched_setaffinity(0, {1}))
    out, _ = proc.communicate(timeout=seconds + 120)
    gevent.sleep(1.5)  # the last agent turns finish playing and are recorded (and observed)
    stop.set()
    monitor.join()
    scraping.join()
    scrapes.append(scrape(metrics_url))
    result = json.loads(out.decode().strip().splitlines()[-1])
    lat = sorted(result["latencies"])
    metrics_p50, observed = histogram_p50(before, scrapes[-1])
    return {"spoken": result["turns_spoken"], "answered": len(lat),
            "p50": statistics.median(lat) if lat else float("nan"),
            "p95": lat[max(0, round(0.95 * len(lat)) - 1)] if lat else float("nan"),
            "min": lat[0] if lat else float("nan"), "max": lat[-1] if lat else float("nan"),
            "metrics_p50": metrics_p50, "observed": observed, "scrapes": len(scrapes),
            "lag_max": max(lag[10:] or [0.0]), "send_late_max": result["send_late_max"],
            "errors": result["error_count"], "error_sample": result["errors"][:3]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--turns", type=int, default=50, help="at least this many turns per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mode", choices=("stream", "playaudio"), default="stream")
    parser.add_argument("--interim-ms", type=float, default=50.0)
    parser.add_argument("--no-early", action="store_true", help="no early LLM on the interim")
    parser.add_argument("--no-smart", action="store_true", help="the fixed 600 ms end-of-turn silence")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    os.sched_setaffinity(0, {0})
    cycles = -(-args.turns // args.calls)  # each call speaks once per cycle
    seconds = cycles * CYCLE_S + 1.0
    with tempfile.TemporaryDirectory() as tmp:
        speech_path = f"{tmp}/speech.pcm"
        speech_s = make_speech(speech_path)
        server = Server(speech_s, seconds, args)
        server.server.start()
        http = WSGIServer(("127.0.0.1", 0), metrics_app, log=None)
        http.start()
        metrics_url = f"http://127.0.0.1:{http.server_port}/metrics"
        print(f"{os.cpu_count()} cores (load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}); server on "
              f"core 0, callers on core 1; {args.calls} calls, a {speech_s:.1f} s utterance every {CYCLE_S:.0f} s "
              f"per call, {cycles * args.calls} turns per run; mode {args.mode}; STT final {STT_S * 1000:.0f} ms, "
              f"interims {args.interim_ms:.0f} ms behind, LLM {LLM_S * 1000:.0f} ms, TTS {TTS_S * 1000:.0f} ms; "
              f"smart end of turn {'off' if args.no_smart else 'on'}, early LLM {'off' if args.no_early else 'on'}")
        runs = []
        for n in range(args.runs):
            r = run_once(server, args.calls, seconds, speech_path, tmp, metrics_url)
            runs.append(r)
            print(f"  run {n + 1}: {r['answered']}/{r['spoken']} turns answered; bench p50 {r['p50'] * 1000:.0f} ms "
                  f"p95 {r['p95'] * 1000:.0f} ms (min {r['min'] * 1000:.0f}, max {r['max'] * 1000:.0f}); /metrics "
                  f"p50 {r['metrics_p50'] * 1000:.0f} ms over {r['observed']} turns ({r['scrapes']} scrapes); "
                  f"loop stall max {r['lag_max'] * 1000:.0f} ms, caller late max {r['send_late_max'] * 1000:.0f} ms"
                  + (f"; {r['errors']} caller errors, e.g. {r['error_sample']}" if r["errors"] else ""))
        print()
        print(f"{'figure (ms), min / median / max of runs':<42} {'value':>22}")
        rows = [("turn p50 (bench: caller's view)", [r["p50"] for r in runs]),
                ("turn p95 (bench: caller's view)", [r["p95"] for r in runs]),
                ("turn p50 (/metrics total histogram)", [r["metrics_p50"] for r in runs]),
                ("event-loop stall max", [r["lag_max"] for r in runs]),
                ("caller frame late max", [r["send_late_max"] for r in runs])]
        for name, values in rows:
            print(f"{name:<42} {spread([v * 1000 for v in values]):>22}")
        print("targets (issue 14): p50 <= 450 ms, p95 <= 600 ms; /metrics p50 within 10% of the bench's")
        http.stop()
        server.server.stop()


if __name__ == "__main__":
    main()
