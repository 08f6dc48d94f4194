"""The voice pipeline's whole path: mod_audio_fork-shaped WebSocket clients -> AudioForkServer -> sessions.

    .venv/bin/python bench/bench_pipeline_ws.py [--levels 50,100,150,200,250,300] [--runs 3] [--seconds 20]

The server (AudioForkServer, one production Session per call: webrtcvad, endpointer, fixed-latency fake
cloud providers: STT final 100 ms after the turn ends, LLM first token 200 ms, TTS first audio 100 ms)
runs in this process, pinned to core 0. The callers (bench/ws_callers.py) run in their own process on
core 1, as FreeSWITCH would: each sends 20 ms frames of 16 kHz recorded speech (espeak-ng, made at start)
on a real-time schedule, one utterance every 5 s, and receives the agent's playAudio replies.

A level is clean when every spoken turn got a reply and no frame waited more than 100 ms: the server's
event loop never stalled over 100 ms (a frame arriving in a stall waits that long), and the callers'
own sending stayed on time (else the figure measures the load generator; its lateness is shown as max and p99
after each caller's first second, and its CPU share of core 1 shows its headroom). Each figure is min / median /
max over --runs runs. Turn latency: caller's last voiced frame sent -> first reply message received; it
includes the 600 ms end-of-turn silence and the 400 ms of injected provider latency.
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
import wave  # noqa: E402

import gevent  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spread import spread  # noqa: E402

from pipeline.clock import REAL_CLOCK  # noqa: E402
from pipeline.fakes import FakeLLM, FakeSTT, FakeTTS, Utterance, say  # noqa: E402
from pipeline.server import AudioForkServer  # noqa: E402
from pipeline.session import Session, SessionCallbacks, SessionConfig  # noqa: E402
from pipeline.tokens import audio_fork_url  # noqa: E402
from startup_heap import freeze_startup_heap  # noqa: E402

SECRET = "bench-audio-token-secret"
CYCLE_S, SPEAK_AT_S = 5.0, 0.5
STT_S, LLM_S, TTS_S = 0.1, 0.2, 0.1


def make_speech(path: str) -> float:
    """A sentence of espeak-ng speech as raw 16 kHz PCM; returns its length in seconds."""
    wav = path + ".wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "170", "-w", wav + ".raw.wav",
                    "I would like to move my appointment to Tuesday morning."], check=True)
    # Trim espeak's leading and trailing silence: the last frame sent must be the last voiced one.
    subprocess.run(["sox", wav + ".raw.wav", "-r", "16000", "-c", "1", "-b", "16", wav, "silence", "1", "0.02", "1%",
                    "reverse", "silence", "1", "0.02", "1%", "reverse"], check=True)
    with wave.open(wav) as w:
        pcm = w.readframes(w.getnframes())
    pathlib.Path(path).write_bytes(pcm)
    return len(pcm) / 2 / 16000


class Server:
    def __init__(self, speech_s: float, seconds: float):
        self.speech_s, self.seconds = speech_s, seconds
        self.turns = 0
        self.server = AudioForkServer(self._session, lambda call_id: True, SECRET, idle_timeout=120)

    def _session(self, info, send) -> Session:
        stt = FakeSTT(REAL_CLOCK, latency=STT_S)
        stt.utterances = [Utterance("I would like to move my appointment", k * CYCLE_S + SPEAK_AT_S,
                                    k * CYCLE_S + SPEAK_AT_S + self.speech_s)
                          for k in range(int(self.seconds // CYCLE_S) + 1)]
        llm = FakeLLM(REAL_CLOCK, lambda turns: say("Okay, done."), latency=LLM_S)
        tts = FakeTTS(REAL_CLOCK, latency=TTS_S, ms_per_word=300)
        callbacks = SessionCallbacks(on_turn=self._on_turn)
        config = SessionConfig(greeting=None, reprompt_after=600.0)
        return Session(config, stt, llm, tts, send, callbacks, sample_rate=info.sample_rate)

    def _on_turn(self, turn) -> None:
        if turn.speaker == "agent":
            self.turns += 1


def loop_lag(samples: list[float], stop: gevent.event.Event) -> None:
    """How late the event loop wakes a 10 ms sleeper: a frame arriving then waits as long."""
    while not stop.is_set():
        before = time.monotonic()
        gevent.sleep(0.01)
        samples.append(time.monotonic() - before - 0.01)


def run_level(server: Server, calls: int, seconds: float, speech_path: str, tmp: str) -> dict:
    host, port = server.server.address
    base = f"ws://{host}:{port}"
    urls = [audio_fork_url(base, f"bench-{calls}-{i}-{time.monotonic_ns()}", SECRET, 600) for i in range(calls)]
    urls_path = f"{tmp}/urls.json"
    pathlib.Path(urls_path).write_text(json.dumps(urls))
    lag: list[float] = []
    stop = gevent.event.Event()
    monitor = gevent.spawn(loop_lag, lag, stop)
    server.turns = 0
    cpu0, wall0 = time.process_time(), time.monotonic()
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "ws_callers.py"), urls_path, speech_path,
                             str(seconds), str(CYCLE_S), str(SPEAK_AT_S)], stdout=subprocess.PIPE, cwd=ROOT,
                            preexec_fn=lambda: os.sched_setaffinity(0, {1}))
    out, _ = proc.communicate(timeout=seconds + 120)
    cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    stop.set()
    monitor.join()
    gevent.sleep(1.0)  # sessions close
    result = json.loads(out.decode().strip().splitlines()[-1])
    lat = sorted(result["latencies"])
    return {"spoken": result["turns_spoken"], "answered": len(lat), "agent_turns": server.turns,
            "p50": statistics.median(lat) if lat else float("nan"),
            "p95": lat[max(0, round(0.95 * len(lat)) - 1)] if lat else float("nan"),
            "lag_max": max(lag[10:] or [0.0]), "send_late_max": result["send_late_max"],
            "send_late_p99": result["send_late_p99"], "send_blocked": result["send_blocked"], "cpu": cpu,
            "caller_cpu": result["cpu"],
            "errors": result["error_count"], "error_sample": result["errors"][:3]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", default="50,100,150,200,250,300")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    with tempfile.TemporaryDirectory() as tmp:
        speech_path = f"{tmp}/speech.pcm"
        speech_s = make_speech(speech_path)
        server = Server(speech_s, args.seconds)
        server.server.start()
        freeze_startup_heap()  # as app.py does once its services are up
        print(f"server on core 0, callers on core 1; {speech_s:.1f} s utterance every {CYCLE_S:.0f} s; "
              f"{args.seconds:.0f} s per run, {args.runs} runs per level (min / median / max)")
        print(f"{'calls':>6} {'replied/spoken':>15} {'turn p50 ms':>20} {'turn p95 ms':>20} "
              f"{'loop stall max ms':>20} {'caller late max ms':>20} {'caller late p99 ms':>20} {'server CPU %':>16} "
              f"{'caller CPU %':>16} clean")
        for calls in (int(x) for x in args.levels.split(",")):
            runs = [run_level(server, calls, args.seconds, speech_path, tmp) for _ in range(args.runs)]
            clean = all(r["answered"] == r["spoken"] and r["errors"] == 0 and r["lag_max"] < 0.1
                        and r["send_late_max"] < 0.1 for r in runs)
            replied = f"{sum(r['answered'] for r in runs)}/{sum(r['spoken'] for r in runs)}"
            print(f"{calls:>6} {replied:>15} {spread([r['p50'] * 1000 for r in runs]):>20} "
                  f"{spread([r['p95'] * 1000 for r in runs]):>20} {spread([r['lag_max'] * 1000 for r in runs]):>20} "
                  f"{spread([r['send_late_max'] * 1000 for r in runs]):>20} "
                  f"{spread([r['send_late_p99'] * 1000 for r in runs]):>20} "
                  f"{spread([r['cpu'] * 100 for r in runs]):>16} {spread([r['caller_cpu'] * 100 for r in runs]):>16} "
                  f"{'yes' if clean else 'NO'}")
            for r in runs:
                if r["send_blocked"]:
                    print(f"        {r['send_blocked']} frames waited for the server to read (send_blocked)")
                if r["errors"]:
                    print(f"        {r['errors']} caller errors, e.g. {r['error_sample']}")
        server.server.stop()


if __name__ == "__main__":
    main()
