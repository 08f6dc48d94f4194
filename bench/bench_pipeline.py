"""Pipeline benchmark with fixed-latency fake providers, on the real clock, in one process.

(a) overhead: from the last voiced caller frame of a turn to the first reply audio frame handed to the socket,
    minus the configured end-of-turn silence and the providers' injected latencies (STT final, LLM first token,
    TTS first chunk). Target p95 < 30 ms.
(b) capacity: N simultaneous 16 kHz streams, each fed a 20 ms frame on a real-time schedule through rechunking,
    webrtcvad, the endpointer and the session (turns and replies happen), counting frames delivered more than
    100 ms late. Target >= 200 streams per core. Memory per session from RSS.

Usage: .venv/bin/python -m gevent.monkey bench/bench_pipeline.py [--quick]
"""
from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gevent  # noqa: E402
import gevent.event  # noqa: E402

from pipeline.clock import REAL_CLOCK  # noqa: E402
from pipeline.fakes import EnergyVAD, FakeLLM, FakeSTT, FakeTTS, Utterance, say, silence, voice  # noqa: E402
from pipeline.frames import TTSAudio  # noqa: E402
from pipeline.session import Session, SessionConfig  # noqa: E402
from pipeline.vad import WebRtcVad  # noqa: E402

STT_LATENCY, LLM_LATENCY, TTS_LATENCY = 0.05, 0.10, 0.05
END_SILENCE_MS = 600
FRAME = 0.02


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Caller:
    """One simulated call: speaks `speech_s`, then stays silent until the agent's reply has played."""

    def __init__(self, use_webrtc: bool, speech_s: float = 0.4):
        self.stt = FakeSTT(REAL_CLOCK, latency=STT_LATENCY)
        llm = FakeLLM(REAL_CLOCK, lambda turns: say("Okay."), latency=LLM_LATENCY)
        tts = FakeTTS(REAL_CLOCK, latency=TTS_LATENCY, ms_per_word=300)
        config = SessionConfig(greeting="Hi.", end_silence_ms=END_SILENCE_MS, reprompt_after=60.0)
        self.session = Session(config, self.stt, llm, tts, self.on_frame, clock=REAL_CLOCK,
                               vad=WebRtcVad(2) if use_webrtc else EnergyVAD())
        self.speech_s = speech_s
        self.last_voiced_at: float | None = None
        self.overheads: list[float] = []
        self.late: list[float] = []
        self.replied = gevent.event.Event()

    def on_frame(self, frame) -> None:
        if isinstance(frame, TTSAudio) and self.last_voiced_at is not None:
            elapsed = time.monotonic() - self.last_voiced_at
            injected = END_SILENCE_MS / 1000 + STT_LATENCY + LLM_LATENCY + TTS_LATENCY
            self.overheads.append((elapsed - injected) * 1000)
            self.last_voiced_at = None
            self.replied.set()

    def run(self, duration: float) -> None:
        speech, quiet = voice(20), silence(20)
        self.session.start()
        start = time.monotonic() + random.random() * FRAME
        n, audio_s, next_turn = 0, 0.0, 0.8
        speaking_until = -1.0
        while n * FRAME < duration and not self.session.ended:
            due = start + n * FRAME
            wait = due - time.monotonic()
            if wait > 0:
                gevent.sleep(wait)
            self.late.append(time.monotonic() - due)
            if audio_s >= next_turn and speaking_until < 0:
                speaking_until = audio_s + self.speech_s
                self.stt.utterances.append(Utterance("hello there", audio_s, speaking_until))
                self.replied.clear()
            voiced = audio_s < speaking_until
            self.session.push_audio(speech if voiced else quiet)
            if voiced and audio_s + FRAME >= speaking_until:
                self.last_voiced_at = time.monotonic()
                speaking_until, next_turn = -1.0, audio_s + END_SILENCE_MS / 1000 + 1.2
            n += 1
            audio_s += FRAME
        self.session.stop("bench over")


def overhead(sessions: int, duration: float, use_webrtc: bool) -> list[float]:
    callers = [Caller(use_webrtc=use_webrtc) for _ in range(sessions)]
    gevent.joinall([gevent.spawn(c.run, duration) for c in callers], raise_error=True)
    return [o for c in callers for o in c.overheads]


def capacity(sessions: int, duration: float) -> tuple[float, float, int, float]:
    gc.collect()
    before = rss_kb()
    callers = [Caller(use_webrtc=True, speech_s=1.0) for _ in range(sessions)]
    workers = [gevent.spawn(c.run, duration) for c in callers]
    gevent.sleep(1.0)
    during = rss_kb()
    gevent.joinall(workers, raise_error=True)
    late = sorted(x for c in callers for x in c.late[25:])  # skip the start-up second
    over = sum(1 for x in late if x > 0.1)
    p99 = late[int(len(late) * 0.99)] * 1000 if late else 0.0
    return max(late) * 1000 if late else 0.0, p99, over, (during - before) / sessions


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    args = parser.parse_args()
    duration = 6.0 if args.quick else 12.0
    print(f"(a) overhead: end-of-turn silence {END_SILENCE_MS} ms, STT {STT_LATENCY * 1000:.0f} ms, "
          f"LLM {LLM_LATENCY * 1000:.0f} ms, TTS {TTS_LATENCY * 1000:.0f} ms subtracted")
    print("    'energy' VAD = pure pipeline overhead; 'webrtcvad' = the production VAD (hangover trimmed)")
    print(f"{'VAD':>10} {'sessions':>8} {'turns':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for use_webrtc in (False, True):
        for n in (1, 4, 20):
            values = overhead(n, duration, use_webrtc)
            print(f"{'webrtcvad' if use_webrtc else 'energy':>10} {n:>8} {len(values):>6} {pct(values, .5):>8.1f} "
                  f"{pct(values, .95):>8.1f} {max(values):>8.1f}")
    print()
    print(f"(b) capacity: 16 kHz streams, webrtcvad + endpointer + session, {duration:.0f} s each")
    print(f"{'streams':>8} {'max late ms':>12} {'p99 late ms':>12} {'frames >100ms':>14} {'KiB/session':>12}")
    for n in (100, 200, 300, 400) if args.quick else (100, 200, 300, 400, 500):
        worst, p99, over, kib = capacity(n, duration)
        print(f"{n:>8} {worst:>12.1f} {p99:>12.1f} {over:>14} {kib:>12.0f}")


if __name__ == "__main__":
    main()
