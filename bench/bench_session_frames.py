"""CPU a production Session spends per 20 ms caller frame and per call-second (issue 14: >= 250 calls per core).

(a) per frame: N sessions (fake STT/LLM/TTS, the production webrtcvad) are pushed the same 16 kHz input frame by
    frame in a tight loop, with no pacing, so only the session's own work is timed (no ticker, no socket):
    'speech' is recorded speech (tests/data/amd clips, resampled to 16 kHz as mod_audio_fork's 16k stream is)
    with the digital-zero gaps a quiet wire is filled with; 'zeros' is digital silence only (the wire-gap fill).
(b) per call-second: N sessions fed that input on a real-time schedule (one greenlet per call, as the socket
    reader is) for D seconds; the process CPU over N * D call-seconds, ticker and greenlet switches included.
    'idle' adds nothing but the sessions' tickers' cost: N started sessions fed no audio on a wire-gap
    setting that never fills (what the ticker costs with nothing to do); 'feeding only' is the same schedule
    pushing into a no-op (the bench's own pacing, to subtract: the server's socket reader has its equivalent).
(a) also times an outbound call's answering-machine detector per frame while it decides (the first seconds).

Each figure is min / median / max of --runs runs, CPU time (time.process_time).
Usage: nice -n 10 .venv/bin/python -m gevent.monkey bench/bench_session_frames.py [--runs 3] [--quick]
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "data" / "amd"))

import clips as amd_set  # noqa: E402
import gevent  # noqa: E402

from pipeline.amd import AmdConfig, MachineDetector  # noqa: E402
from pipeline.clock import REAL_CLOCK  # noqa: E402
from pipeline.fakes import FakeLLM, FakeSTT, FakeTTS, say  # noqa: E402
from pipeline.session import Session, SessionConfig  # noqa: E402

RATE = 16000
FRAME_BYTES = RATE // 50 * 2


def recorded_input(clip_count: int = 8) -> list[bytes]:
    """Recorded clips, each followed by 0.5 s of digital zeros, cut into 20 ms frames."""
    audio = b""
    for clip in amd_set.clips()[:clip_count]:
        audio += amd_set.pcm(clip, RATE) + bytes(RATE)
    return amd_set.frames(audio, RATE)


def new_session(wire_gap_ms: int = 100) -> Session:
    config = SessionConfig(greeting="Hi.", end_silence_ms=600, reprompt_after=3600.0, max_duration=36000,
                           wire_gap_ms=wire_gap_ms)
    stt, llm = FakeSTT(REAL_CLOCK), FakeLLM(REAL_CLOCK, lambda turns: say("Okay."), latency=0.1)
    return Session(config, stt, llm, FakeTTS(REAL_CLOCK, latency=0.05), lambda frame: None, clock=REAL_CLOCK)


def per_frame(frames: list[bytes], sessions: int) -> float:
    """Microseconds of CPU per pushed frame, sessions driven round-robin without yielding."""
    group = [new_session() for _ in range(sessions)]
    for s in group:
        s.start()
    gc.collect()
    begin = time.process_time()
    for frame in frames:
        for s in group:
            s.push_audio(frame)
    spent = time.process_time() - begin
    for s in group:
        s.stop("bench over")
    gevent.sleep(0.01)
    return spent / (len(frames) * sessions) * 1e6


def per_detection_frame(frames: list[bytes], detectors: int) -> float:
    """Microseconds of CPU per frame an answering-machine detector (pipeline/amd.py) is pushed while it has not
    decided yet (thresholds out of reach, so every frame does the full work: webrtcvad, level floor, beep)."""
    never = 10**9
    config = AmdConfig(machine_speech_ms=never, human_silence_ms=never, beep_ms=never, timeout_ms=never)
    group = [MachineDetector(config) for _ in range(detectors)]
    gc.collect()
    begin = time.process_time()
    for frame in frames:
        for detector in group:
            detector.push(frame, RATE)
    return (time.process_time() - begin) / (len(frames) * detectors) * 1e6


def feed(session: Session, frames: list[bytes], duration: float, start: float, offset: int) -> None:
    for n in range(int(duration / 0.02)):
        wait = start + n * 0.02 - time.monotonic()
        if wait > 0:
            gevent.sleep(wait)
        session.push_audio(frames[(offset + n) % len(frames)])


class NoSession:
    """Takes frames and does nothing: what the real-time feeding alone costs."""

    def start(self) -> None: ...

    def push_audio(self, pcm: bytes) -> None: ...

    def stop(self, reason: str) -> None: ...


def per_call_second(frames: list[bytes] | None, sessions: int, duration: float, bare: bool = False) -> float:
    """Microseconds of process CPU per call-second, real-time fed (frames None: no audio, an idle ticker;
    bare: the feeding greenlets alone, into a no-op)."""
    group = [NoSession() if bare else new_session(wire_gap_ms=100 if frames else 10**9) for _ in range(sessions)]
    for s in group:
        s.start()
    gevent.sleep(0.2)  # greetings out of the way
    gc.collect()
    begin_wall, begin = time.monotonic(), time.process_time()
    if frames:
        start = time.monotonic()
        # Each call starts elsewhere in the input, so together they hear all of it (speech, pauses, zeros).
        workers = [gevent.spawn(feed, s, frames, duration, start + i * 0.02 / sessions, i * len(frames) // sessions)
                   for i, s in enumerate(group)]
        gevent.joinall(workers, raise_error=True)
    else:
        gevent.sleep(duration)
    spent, wall = time.process_time() - begin, time.monotonic() - begin_wall
    for s in group:
        s.stop("bench over")
    gevent.sleep(0.05)
    return spent / (sessions * wall) * 1e6


def spread(values: list[float]) -> str:
    return f"{min(values):8.1f} {statistics.median(values):8.1f} {max(values):8.1f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer sessions, shorter real-time runs")
    args = parser.parse_args()
    frames = recorded_input()
    zeros = [bytes(FRAME_BYTES)] * len(frames)
    n_frame, n_live, duration = (10, 100, 2.0) if args.quick else (20, 200, 3.0)
    print(f"input: {len(frames)} frames ({len(frames) * 0.02:.1f} s) of recorded speech + digital-zero gaps, 16 kHz")
    print(f"{'measure':<52} {'min':>8} {'median':>8} {'max':>8}")
    for name, source in (("speech", frames), ("zeros", zeros)):
        values = [per_frame(source, n_frame) for _ in range(args.runs)]
        print(f"{f'(a) us CPU per frame, {name}, {n_frame} sessions':<52} {spread(values)}")
    values = [per_detection_frame(frames, 2) for _ in range(args.runs)]
    print(f"{'(a) us CPU per frame, machine detection':<52} {spread(values)}")
    for name, source, bare in (("speech", frames, False), ("idle", None, False), ("feeding only", frames, True)):
        values = [per_call_second(source, n_live, duration, bare) for _ in range(args.runs)]
        print(f"{f'(b) us CPU per call-second, {name}, {n_live} calls':<52} {spread(values)}")


if __name__ == "__main__":
    main()
