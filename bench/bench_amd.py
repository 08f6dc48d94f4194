"""Answering-machine detection on the labelled set (tests/data/amd): accuracy and decision time.

    .venv/bin/python bench/bench_amd.py [--runs 3]

Feeds every clip, 20 ms frame by frame from the moment of answer, through pipeline.amd.MachineDetector at
8 kHz and at 16 kHz (resampled, as mod_audio_fork's 16k stream of an 8 kHz leg is), audio only (no
transcript: the words rule is not credited here). The held-out part was never used to tune thresholds.
Decision time is audio time from answer; CPU per second of audio is min/median/max of --runs runs.
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
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


if __name__ == "__main__":
    main()
