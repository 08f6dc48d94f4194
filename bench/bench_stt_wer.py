"""Word error rate of the offline recognizer (pocketsphinx) on the project's own labelled speech.

    .venv/bin/python bench/bench_stt_wer.py

The clips are tests/data/amd's 80 espeak-ng utterances (people's short answers and voicemail greetings, several
voices, speeds and pauses, line noise, some with a beep), stored as the 8 kHz G.711 leg a call carries. Each is
decoded as a call's stream would be, 20 ms at a time through pipeline.providers.pocketsphinx_recognizer:
  8 kHz, no fill      the narrowband stream upsampled for the 16 kHz model (what shipped before)
  8 kHz, fill N       the same with the band above 4 kHz filled with noise of level N (band_fill.py)
  16 kHz stream       the 16k stream mod_audio_fork sends for an 8 kHz leg (resampled, still narrowband),
                      without and with the fill
WER = (substitutions + deletions + insertions) / reference words, over all clips, words lower-cased with
punctuation removed. Deterministic: one run is the figure (no timing here).
"""
from __future__ import annotations

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "data" / "amd"))

import clips as speech_set  # noqa: E402

from pipeline.providers.pocketsphinx_recognizer import Recognizer, RecognizerOptions  # noqa: E402
from pipeline.providers.stt import Transcript  # noqa: E402


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def transcribe(audio: bytes, rate: int, fill: float) -> str:
    recognizer = Recognizer(RecognizerOptions(input_rate=rate, interim_results=False, narrowband_fill=fill))
    events = []
    for frame in speech_set.frames(audio, rate):
        events += recognizer.feed(frame)
    events += recognizer.finalize()
    return " ".join(e.text for e in events if isinstance(e, Transcript) and e.is_final and e.text)


def wer(rate: int, fill: float) -> tuple[float, int]:
    errors = total = 0
    for clip in speech_set.clips():
        ref = words(clip.text)
        errors += edit_distance(ref, words(transcribe(speech_set.pcm(clip, rate), rate, fill)))
        total += len(ref)
    return errors / total, total


def main() -> None:
    print("| stream | recognizer input | WER | reference words |")
    print("|---|---|---|---|")
    cases = (("8 kHz", 8000, "upsampled, no fill (before)", 0.0),
             ("8 kHz", 8000, "upsampled + fill 300 (default)", 300.0),
             ("8 kHz", 8000, "upsampled + fill 1000", 1000.0),
             ("16 kHz from an 8 kHz leg", 16000, "as sent, no fill (before)", 0.0),
             ("16 kHz from an 8 kHz leg", 16000, "as sent + fill 300 (default)", 300.0))
    for stream, rate, how, fill in cases:
        value, total = wer(rate, fill)
        print(f"| {stream} | {how} | {value:.1%} | {total} |")


if __name__ == "__main__":
    main()
