"""Answering-machine detection on the labelled set (tests/data/amd): accuracy and decision time.

    .venv/bin/python bench/bench_amd.py [--runs 3] [--words] [--words-rates 8000]

Feeds every clip, 20 ms frame by frame from the moment of answer, through pipeline.amd.MachineDetector at
8 kHz and at 16 kHz (resampled, as mod_audio_fork's 16k stream of an 8 kHz leg is), audio only (no
transcript). The held-out part was never used to tune thresholds (nor the phrase list).
Decision time is audio time from answer; CPU per second of audio is min/median/max of --runs runs.

--words adds rows "with words": the production path (pipeline.machine_detection.MachineDetectionGate with the
offline recognizer, pocketsphinx in its worker process, as AMD_WORDS=true runs it), the clip paced in real
time (the recognizer's lag counts, as on a call), one clip at a time, silence after the clip up to the
timeout. Slow: about the clips' length in wall time per rate.
Goals (issue 16): >= 95% of machines, >= 98% of people, median decision <= 2.5 s.
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "data" / "amd"))

import clips as amd_set  # noqa: E402

from pipeline.amd import HUMAN, MACHINE, MachineDetector  # noqa: E402


def evaluate(split: str, rate: int) -> dict:
    correct = {HUMAN: 0, MACHINE: 0}
    total = {HUMAN: 0, MACHINE: 0}
    times, wrong = [], []
    for clip in amd_set.clips(split):
        detector = MachineDetector()
        decision = None
        for frame in amd_set.frames(amd_set.pcm(clip, rate), rate):
            if decision := detector.push(frame, rate):
                break
        total[clip.label] += 1
        if decision is not None and decision.answered_by == clip.label:
            correct[clip.label] += 1
        else:
            wrong.append(f"{clip.file} ({clip.label}): {decision.answered_by if decision else 'none'}"
                         f" - {decision.reason if decision else ''}")
        times.append(decision.at_ms / 1000 if decision else float("nan"))
    times.sort()
    return {"correct": correct, "total": total, "median": statistics.median(times),
            "p95": times[max(0, round(0.95 * len(times)) - 1)], "wrong": wrong}


def cpu_per_audio_second(rate: int) -> float:
    """CPU seconds per second of audio: every frame of every clip, no early stop."""
    audio = [amd_set.pcm(clip, rate) for clip in amd_set.clips()]
    seconds = sum(len(a) / 2 / rate for a in audio)
    start = time.process_time()
    for pcm in audio:
        detector = MachineDetector()
        for frame in amd_set.frames(pcm, rate):
            detector.decision = None  # keep it working through the whole clip
            detector.push(frame, rate)
    return (time.process_time() - start) / seconds


class _NoSession:
    """What the gate hands a person to: nothing (and no adopt_stt, so the gate closes the recognizer)."""

    ended = False

    def start(self) -> None:
        pass

    def push_audio(self, pcm: bytes) -> None:
        pass

    def push_dtmf(self, digit: str) -> None:
        pass

    def stop(self, reason: str = "") -> None:
        pass


def decide_with_words(clip, rate: int, stt) -> tuple:
    """The gate's decision on one clip, with the recognizer listening; fed at the pace of a phone line."""
    import gevent

    from pipeline.clock import VirtualClock
    from pipeline.machine_detection import MachineDetectionGate, MachinePolicy

    decisions = []
    policy = MachinePolicy("hangup")
    # A clock that never moves: the gate's gap filler stays idle (frames come paced, none are missing).
    gate = MachineDetectionGate(policy, rate, lambda answered_by: _NoSession(), lambda frame: None,
                                decisions.append, clock=VirtualClock(), stt=stt)
    gate.start()
    audio = amd_set.pcm(clip, rate)
    audio += bytes(max(0, policy.timeout_ms * rate // 1000 * 2 - len(audio)) + rate // 5)
    start = time.monotonic()
    for k, frame in enumerate(amd_set.frames(audio, rate)):
        gate.push_audio(frame)
        if decisions:
            break
        gevent.sleep(max(0.0, start + (k + 1) * 0.02 - time.monotonic()))
    gate.stop("bench")
    if gate.listener is not None and gate.listener.closer is not None:
        gate.listener.closer.join(timeout=10)
    return decisions[0] if decisions else None


def evaluate_words(split: str, rate: int) -> dict:
    from pipeline.providers.registry import build_stt

    stt = build_stt(None)  # the offline default a call gets: pocketsphinx, worker process
    correct, total = {HUMAN: 0, MACHINE: 0}, {HUMAN: 0, MACHINE: 0}
    times, wrong, by_words = [], [], 0
    for clip in amd_set.clips(split):
        decision = decide_with_words(clip, rate, stt)
        total[clip.label] += 1
        if decision is not None and decision.answered_by == clip.label:
            correct[clip.label] += 1
        else:
            wrong.append(f"{clip.file} ({clip.label}): {decision.answered_by if decision else 'none'}"
                         f" - {decision.reason if decision else ''}")
        by_words += bool(decision and decision.reason.startswith("said"))
        times.append(decision.at_ms / 1000 if decision else float("nan"))
    times.sort()
    return {"correct": correct, "total": total, "median": statistics.median(times),
            "p95": times[max(0, round(0.95 * len(times)) - 1)], "wrong": wrong, "by_words": by_words}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--words", action="store_true", help="also the words path (pocketsphinx), in real time")
    parser.add_argument("--words-rates", default="8000", help="comma-separated rates for --words")
    args = parser.parse_args()
    print(f"{'set':8} {'rate':>6} {'machines':>10} {'people':>10} {'median s':>9} {'p95 s':>7}  cpu ms per audio s "
          f"(min/median/max of {args.runs})")
    for rate in (8000, 16000):
        cpu = [cpu_per_audio_second(rate) * 1000 for _ in range(args.runs)]
        for split in ("tune", "heldout"):
            r = evaluate(split, rate)
            c, t = r["correct"], r["total"]
            print(f"{split:8} {rate:6d} {c[MACHINE]:>4}/{t[MACHINE]:<3} {100 * c[MACHINE] / t[MACHINE]:3.0f}% "
                  f"{c[HUMAN]:>3}/{t[HUMAN]:<3}{100 * c[HUMAN] / t[HUMAN]:3.0f}% {r['median']:9.2f} {r['p95']:7.2f}  "
                  f"{min(cpu):.2f} / {statistics.median(cpu):.2f} / {max(cpu):.2f}")
            for line in r["wrong"]:
                print(f"    wrong: {line}")
    if not args.words:
        return
    print(f"\nwith words (pocketsphinx, real-time pacing):\n{'set':8} {'rate':>6} {'machines':>10} {'people':>10} "
          f"{'median s':>9} {'p95 s':>7}  decided by words")
    for rate in (int(r) for r in args.words_rates.split(",")):
        for split in ("tune", "heldout"):
            r = evaluate_words(split, rate)
            c, t = r["correct"], r["total"]
            print(f"{split:8} {rate:6d} {c[MACHINE]:>4}/{t[MACHINE]:<3} {100 * c[MACHINE] / t[MACHINE]:3.0f}% "
                  f"{c[HUMAN]:>3}/{t[HUMAN]:<3}{100 * c[HUMAN] / t[HUMAN]:3.0f}% {r['median']:9.2f} {r['p95']:7.2f}  "
                  f"{r['by_words']}/{sum(t.values())}", flush=True)
            for line in r["wrong"]:
                print(f"    wrong: {line}")


if __name__ == "__main__":
    main()
