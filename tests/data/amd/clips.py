"""The answering-machine test set (made by make.py here): labelled clips as PCM16 at 8 or 16 kHz."""
from __future__ import annotations

import csv
import pathlib
from dataclasses import dataclass

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent


@dataclass(frozen=True)
class Clip:
    file: str
    label: str  # human / machine
    split: str  # tune / heldout
    beep_hz: int
    text: str


def clips(split: str | None = None) -> list[Clip]:
    with open(HERE / "labels.csv", newline="") as f:
        rows = [Clip(r["file"], r["label"], r["split"], int(r["beep_hz"]), r["text"]) for r in csv.DictReader(f)]
    return [c for c in rows if split is None or c.split == split]


def pcm(clip: Clip, rate: int) -> bytes:
    """The clip's audio at `rate` (16 kHz: resampled from the 8 kHz leg, as mod_audio_fork's 16k stream is)."""
    from fssim.g711 import ulaw_decode
    from pipeline.audio import resample

    codes = np.frombuffer((HERE / clip.file).read_bytes(), dtype=np.uint8)
    audio = ulaw_decode(codes).astype("<i2").tobytes()
    return audio if rate == 8000 else resample(audio, 8000, rate)


def frames(audio: bytes, rate: int, frame_ms: int = 20) -> list[bytes]:
    size = rate * frame_ms // 1000 * 2
    return [audio[i:i + size] for i in range(0, len(audio) - size + 1, size)]
