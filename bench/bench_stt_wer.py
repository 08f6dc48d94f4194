"""Word error rate of the offline recognizer (pocketsphinx) on telephone answers, with and without the band fill.

    .venv/bin/python bench/bench_stt_wer.py

The clips: SENTENCES (what callees answer an appointment, delivery or support call with) spoken by espeak-ng in
three voices and speeds, made here at run time, put through the 8 kHz G.711 leg a call carries (fssim.g711's
PCMU round trip). Each is decoded as a call's stream is, 20 ms at a time through
pipeline.providers.pocketsphinx_recognizer, at 8 kHz (the stream of an 8 kHz leg) and as the 16 kHz stream
mod_audio_fork makes of the same leg (resampled, still empty above 4 kHz), without the fill (before) and with
it (band_fill.py). A wideband row (espeak at 16 kHz, no telephone leg) shows what the fill does to audio that
is not narrowband (what a G.722 or Opus leg, or a browser, would lose if the fill were applied to it: it is
not, since the controller hints only 8 kHz legs).
WER = (substitutions + deletions + insertions) / reference words, lower-cased, punctuation removed.
Deterministic: one run is the figure (no timing here).

Final passes (issue 14): the second table decodes the same clips with each `rescore_final` policy, as a
stream's first utterance and as a later one (after a warm-up sentence in the same voice, as a caller's second
answer is): "always" re-decodes every utterance after the turn ends (the recognizer before issue 14),
"first" only a stream's first one (the default now: later utterances use the stream's own cepstral mean and
are final when the live search ends), "never" none. `--quick` prints only that table.
"""
from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fssim.g711 import pcmu_round_trip  # noqa: E402
from pipeline.providers.audio import resample  # noqa: E402
from pipeline.providers.pocketsphinx_recognizer import RESCORE, DecoderSet, Recognizer, RecognizerOptions  # noqa: E402
from pipeline.providers.stt import Transcript  # noqa: E402

SENTENCES = [
    "Yes, I will be there tomorrow at ten.", "No, I can't make it on Tuesday.", "Yes, that's fine.",
    "I would like to book an appointment for Friday morning.", "Sorry, who is this?", "Yes please.",
    "Can you call me back later?", "That works for me, thank you.", "No thanks, I'm not interested.",
    "Yes, I can hear you.", "My order number is four five six seven.", "I need to change my address.",
    "Hello?", "I'm calling about my bill.", "Can I speak to a person please?", "The package never arrived.",
]
VOICES = (("en-us", 150), ("en-us+f3", 170), ("en", 130))


def espeak(text: str, voice: str, speed: int, rate: int) -> bytes:
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
                         capture_output=True, check=True).stdout
    return subprocess.run(["sox", "-t", "wav", "-", "-r", str(rate), "-b", "16", "-c", "1", "-t", "raw", "-"],
                          input=wav, capture_output=True, check=True).stdout


def corpus() -> list[tuple[str, bytes, bytes, bytes]]:
    """(text, the 8 kHz leg, the 16 kHz stream of that leg, wideband 16 kHz) for every sentence and voice."""
    out = []
    for text in SENTENCES:
        for voice, speed in VOICES:
            leg = pcmu_round_trip(np.frombuffer(espeak(text, voice, speed, 8000), dtype="<i2"))
            leg_pcm = np.asarray(leg, dtype="<i2").tobytes()
            out.append((text, leg_pcm, resample(leg_pcm, 8000, 16000), espeak(text, voice, speed, 16000)))
    return out


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


# --search narrow: the pool's cheaper decoder settings (pocketsphinx_recognizer.SEARCHES).
SEARCH = sys.argv[sys.argv.index("--search") + 1] if "--search" in sys.argv else "bounded"
WARM_UP = "Hello, who is calling please?"  # not one of SENTENCES: the caller's first words on the line


def _decode(recognizer: Recognizer, audio: bytes, rate: int) -> list:
    events = []
    size = rate // 50 * 2
    for at in range(0, len(audio) - size + 1, size):
        events += recognizer.feed(audio[at:at + size])
    return events + recognizer.finalize()


def transcribe(audio: bytes, rate: int, fill: float, rescore: str = "always", warm_up: bytes = b"") -> str:
    # narrowband=True: the hint the controller gives for a G.711 leg; at 8 kHz the stream says so itself.
    recognizer = Recognizer(RecognizerOptions(input_rate=rate, interim_results=False, narrowband_fill=fill,
                                              narrowband=fill > 0, rescore_final=rescore), DecoderSet(1, search=SEARCH))
    if warm_up:
        _decode(recognizer, warm_up + bytes(rate), rate)
    events = _decode(recognizer, audio, rate)
    return " ".join(e.text for e in events if isinstance(e, Transcript) and e.is_final and e.text)


def wer(clips: list[tuple[str, bytes]], rate: int, fill: float, rescore: str = "always",
        warm_ups: dict | None = None) -> tuple[float, int]:
    errors = total = 0
    for i, (text, audio) in enumerate(clips):
        ref = words(text)
        warm_up = warm_ups[i % len(VOICES)] if warm_ups else b""
        errors += edit_distance(ref, words(transcribe(audio, rate, fill, rescore, warm_up)))
        total += len(ref)
    return errors / total, total


def final_passes(clips: list, only: set[str] | None = None) -> None:
    """WER of each final-pass policy, first and later utterance, on the two no-fill 16 kHz columns. A
    stream's first utterance gets the same batch pass under "first" as under "always": not decoded twice.
    `only`: "leg"/"wide" and policy names to limit the rows (a slow machine)."""
    warm = [(espeak(WARM_UP, v, s, 8000), espeak(WARM_UP, v, s, 16000)) for v, s in VOICES]
    leg16 = [resample(np.asarray(pcmu_round_trip(np.frombuffer(w8, dtype="<i2")), dtype="<i2").tobytes(),
                      8000, 16000) for w8, _ in warm]
    print("\n| audio | final pass (rescore_final) | WER, first utterance | WER, later utterance |")
    print("|---|---|---|---|")
    for key, audio, column, warm_ups in (("leg", "8 kHz leg, 16 kHz stream", 2, leg16),
                                         ("wide", "wideband 16 kHz", 3, [w16 for _, w16 in warm])):
        for rescore, how in (("always", "always (before issue 14)"), ("first", "first (default now)"),
                             ("never", "never")):
            if only and not ({key, rescore} <= only):
                continue
            pairs = [(c[0], c[column]) for c in clips]
            first = "= always" if rescore == "first" else f"{wer(pairs, 16000, 0.0, rescore)[0]:.1%}"
            later, _ = wer(pairs, 16000, 0.0, rescore, warm_ups)
            print(f"| {audio} | {how} | {first} | {later:.1%} |", flush=True)


def main() -> None:
    clips = corpus()
    if "--quick" in sys.argv:  # --quick [leg|wide ...] [always|first|never ...]: that table only
        print(f"{len(clips)} clips ({len(SENTENCES)} sentences x {len(VOICES)} espeak-ng voices)")
        only = set(sys.argv[sys.argv.index("--quick") + 1:]) - {"--search", SEARCH}
        print(f"decoder search: {SEARCH}")
        final_passes(clips, (only | ({"leg", "wide"} if not only & {"leg", "wide"} else set())
                             | (set(RESCORE) if not only & set(RESCORE) else set())) if only else None)
        return
    cases = (("8 kHz leg, 8 kHz stream", 8000, 1, "no fill (before)", 0.0),
             ("8 kHz leg, 8 kHz stream", 8000, 1, "narrowband_fill 1000", 1000.0),
             ("8 kHz leg, 16 kHz stream (mod_audio_fork's default)", 16000, 2, "no fill (before)", 0.0),
             ("8 kHz leg, 16 kHz stream (mod_audio_fork's default)", 16000, 2, "narrowband_fill 1000", 1000.0),
             ("wideband 16 kHz (no phone leg)", 16000, 3, "no fill", 0.0),
             ("wideband 16 kHz (no phone leg)", 16000, 3, "fill 1000 forced", 1000.0))
    print(f"{len(clips)} clips ({len(SENTENCES)} sentences x {len(VOICES)} espeak-ng voices)\n")
    print("| audio | recognizer | WER | reference words |")
    print("|---|---|---|---|")
    for audio, rate, column, how, fill in cases:
        value, total = wer([(c[0], c[column]) for c in clips], rate, fill)
        print(f"| {audio} | {how} | {value:.1%} | {total} |", flush=True)
    final_passes(clips)


if __name__ == "__main__":
    main()
