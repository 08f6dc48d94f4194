"""Concurrent offline calls: pocketsphinx (shared pool) + scripted agent + espeak-ng, through the real server.

    .venv/bin/python bench/bench_offline_calls.py [--levels 10,24] [--runs 3] [--seconds 30]

The server (AudioForkServer, one production Session per call with the offline providers a keyless agent
gets: PocketsphinxSTT on the shared recognizer pool, pre-started, one worker per core; ScriptedAgent with
one question per turn; EspeakTTS) runs in this process. The callers (bench/ws_callers.py) run in their own
process, as FreeSWITCH would: each sends 20 ms frames of 16 kHz recorded speech (espeak-ng, made at start)
on a real-time schedule, one answer every CYCLE_S seconds, and receives the agent's playAudio replies. The
calls start spread over one cycle, so their answers are too (calls answered at different times); --burst
starts them together, so every caller speaks at the same moment (the worst case, printed as its own table).
By default nothing is pinned: the callers, the server, the pool and espeak-ng share every core, and the callers'
own sending takes part of it (its lateness is printed). --pin measures one core's capacity instead: this process,
its recognizer pool (one worker, sized to the cores it may use) and espeak-ng on core 0, everything VoxBridge
runs for the calls; the callers, standing in for FreeSWITCH, on core 1. "per core" is then the calls on core 0.

Per level, each figure is min / median / max over --runs runs:
- replied/spoken: the callers' answers that got an agent reply (every turn completed when equal);
- frame late max: how late the server handled a call's audio frame against that call's 20 ms schedule
  (measured in Session.push_audio; includes the callers' own lateness, shown too); a stalled audio loop
  shows here;
- turn p50: caller's last voiced frame sent -> first reply message received (600 ms end-of-turn silence,
  the STT final, the script, espeak-ng, the socket);
- MiB per call: (server + pool workers' PSS at peak - the same with the pool started and no call) / calls;
  the pool's own fixed cost is printed once;
- pool: audio dropped because a recognizer fell behind (counted, never blocking), worker crashes.
Timing is printed, never asserted.
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
import gevent.event  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spread import spread  # noqa: E402

from pipeline.providers.espeak_tts import EspeakTTS  # noqa: E402
from pipeline.providers.pocketsphinx_pool import shared_pool  # noqa: E402
from pipeline.providers.pocketsphinx_stt import PocketsphinxSTT  # noqa: E402
from pipeline.providers.scripted import ScriptedAgent  # noqa: E402
from pipeline.server import AudioForkServer  # noqa: E402
from pipeline.session import Session, SessionCallbacks, SessionConfig  # noqa: E402
from pipeline.tokens import audio_fork_url  # noqa: E402

SECRET = "bench-offline-token-secret"
SERVER_CORE, CALLERS_CORE = 0, 1  # --pin
CYCLE_S, SPEAK_AT_S = 7.0, 3.0  # the agent opens the call (~2 s) before the first answer
ANSWER = "Yes, tomorrow morning is fine."
QUESTIONS = [{"key": f"q{i}", "text": "Thanks. And the next one?", "type": "string"} for i in range(40)]


def make_speech(path: str) -> float:
    """The caller's answer as raw 16 kHz PCM, leading and trailing silence trimmed; returns its seconds."""
    wav = path + ".wav"
    subprocess.run(["espeak-ng", "-v", "en-us+f2", "-s", "150", "-w", wav + ".raw.wav", ANSWER], check=True)
    subprocess.run(["sox", wav + ".raw.wav", "-r", "16000", "-c", "1", "-b", "16", wav, "silence", "1", "0.02", "1%",
                    "reverse", "silence", "1", "0.02", "1%", "reverse"], check=True)
    with wave.open(wav) as w:
        pcm = w.readframes(w.getnframes())
    pathlib.Path(path).write_bytes(pcm)
    return len(pcm) / 2 / 16000


def pss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration):
            pass
    return total / 1024


class TimedSession(Session):
    """A production Session that notes when each caller frame reached it (for frame lateness)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.worst = 0.0
        self._base: float | None = None
        self._frames = 0

    def push_audio(self, pcm: bytes) -> None:
        # Lateness against the call's own 20 ms schedule, anchored at its earliest frame.
        offset = time.monotonic() - self._frames * 0.02
        self._frames += 1
        if self._base is None or offset < self._base:
            self._base = offset
        elif self._frames > 50:  # the first second: connection set-up, not steady state
            self.worst = max(self.worst, offset - self._base)
        super().push_audio(pcm)


class Server:
    def __init__(self, pinned: bool = False):
        self.pinned = pinned
        self.agent_turns = 0
        self.sessions: list[TimedSession] = []
        self.server = AudioForkServer(self._session, lambda call_id: True, SECRET, idle_timeout=120)
        self.stt = PocketsphinxSTT()
        self.tts = EspeakTTS(voice="en-us", words_per_minute=180)

    def _session(self, info, send) -> Session:
        llm = ScriptedAgent.from_settings({"greeting": "", "questions": QUESTIONS, "closing": "Goodbye."})
        config = SessionConfig(greeting=None, reprompt_after=600.0)
        session = TimedSession(config, self.stt, llm, self.tts, send, SessionCallbacks(on_turn=self._on_turn),
                               sample_rate=info.sample_rate)
        self.sessions.append(session)
        return session

    def _on_turn(self, turn) -> None:
        if turn.speaker == "agent":
            self.agent_turns += 1


def run_level(server: Server, calls: int, seconds: float, speech_path: str, tmp: str, idle_mib: float,
              stagger_s: float) -> dict:
    host, port = server.server.address
    urls = [audio_fork_url(f"ws://{host}:{port}", f"offline-{calls}-{i}-{time.monotonic_ns()}", SECRET, 600)
            for i in range(calls)]
    urls_path = f"{tmp}/urls.json"
    pathlib.Path(urls_path).write_text(json.dumps(urls))
    pool = shared_pool()
    stats0 = (pool.stats.bytes_dropped, pool.stats.worker_crashes)
    server.sessions, server.agent_turns = [], 0
    peak = [0.0]
    stop = gevent.event.Event()

    def sample_memory():
        # Read in an OS thread: walking the big processes' smaps takes tens of ms, and done on the event loop it
        # delayed the calls' audio frames it measures (it showed as frame lateness).
        threads = gevent.get_hub().threadpool
        while not stop.wait(1.0):
            peak[0] = max(peak[0], threads.apply(pss_mib, ([os.getpid(), *pool.pids()],)))

    sampler = gevent.spawn(sample_memory)
    callers_core = CALLERS_CORE if server.pinned else None
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "ws_callers.py"), urls_path, speech_path,
                             str(seconds), str(CYCLE_S), str(SPEAK_AT_S), str(stagger_s)], stdout=subprocess.PIPE,
                            cwd=ROOT, preexec_fn=None if callers_core is None
                            else lambda: os.sched_setaffinity(0, {callers_core}))
    out, _ = proc.communicate(timeout=seconds + 180)
    stop.set()
    sampler.join()
    gevent.sleep(2.0)  # sessions close
    result = json.loads(out.decode().strip().splitlines()[-1])
    lat = sorted(result["latencies"])
    return {"spoken": result["turns_spoken"], "answered": len(lat), "agent_turns": server.agent_turns,
            "p50": statistics.median(lat) if lat else float("nan"),
            "frame_late": max((s.worst for s in server.sessions), default=0.0),
            "send_late_max": result["send_late_max"], "errors": result["error_count"],
            "error_sample": result["errors"][:3], "mib_per_call": (peak[0] - idle_mib) / calls,
            "dropped_s": (pool.stats.bytes_dropped - stats0[0]) / 32000,
            "crashes": pool.stats.worker_crashes - stats0[1]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", default="10,24")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--search", default="bounded", help="the pool's decoder search: wide, bounded or narrow")
    parser.add_argument("--burst", action="store_true",
                        help="every caller speaks at the same moment (the worst case); default: the calls' answers "
                             "spread over the cycle, as calls answered at different times speak")
    parser.add_argument("--pin", action="store_true",
                        help="VoxBridge (server, pool, espeak-ng) on core 0, the callers on core 1: "
                             "one core's capacity")
    args = parser.parse_args()
    stagger_s = 0.02 if args.burst else CYCLE_S
    if args.pin:
        if len(os.sched_getaffinity(0)) < 2:
            parser.error("--pin needs two cores")
        os.sched_setaffinity(0, {SERVER_CORE})  # before the pool starts: its workers and espeak-ng inherit it
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        speech_path = f"{tmp}/speech.pcm"
        speech_s = make_speech(speech_path)
        bare = pss_mib([os.getpid()])
        server = Server(pinned=args.pin)
        pool = shared_pool(search=args.search).start()  # pre-started, as `serve` does
        server.server.start()
        gevent.sleep(1.0)
        idle = pss_mib([os.getpid(), *pool.pids()])
        where = "VoxBridge on core 0, callers on core 1" if args.pin else f"{cores} cores shared with the callers"
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"{where} (load average {load}); recognizer pool ({pool.search} search): {pool.size} workers "
              f"x {pool.decoders} decoders, {idle - bare:.0f} MiB PSS with no call; caller says a {speech_s:.1f} s "
              f"answer every {CYCLE_S:.0f} s, {'all at once (--burst)' if args.burst else 'spread over the cycle'}; "
              f"{args.seconds:.0f} s per run, {args.runs} runs per level "
              "(min / median / max)")
        print(f"{'calls':>5} {'per core':>8} {'replied/spoken':>15} {'turn p50 ms':>20} {'frame late max ms':>20} "
              f"{'caller late max ms':>19} {'MiB per call':>16} {'dropped s':>10} {'crashes':>7}")
        for calls in (int(x) for x in args.levels.split(",")):
            runs = [run_level(server, calls, args.seconds, speech_path, tmp, idle, stagger_s)
                    for _ in range(args.runs)]
            replied = f"{sum(r['answered'] for r in runs)}/{sum(r['spoken'] for r in runs)}"
            print(f"{calls:>5} {calls / cores:>8.1f} {replied:>15} {spread([r['p50'] * 1000 for r in runs]):>20} "
                  f"{spread([r['frame_late'] * 1000 for r in runs]):>20} "
                  f"{spread([r['send_late_max'] * 1000 for r in runs]):>19} "
                  f"{spread([r['mib_per_call'] for r in runs], '{:.1f}'):>16} "
                  f"{sum(r['dropped_s'] for r in runs):>10.1f} {sum(r['crashes'] for r in runs):>7}", flush=True)
            for r in runs:
                if r["errors"]:
                    print(f"        {r['errors']} caller errors, e.g. {r['error_sample']}")
        server.server.stop()
        pool.close()


if __name__ == "__main__":
    main()
