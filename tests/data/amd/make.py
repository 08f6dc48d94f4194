"""Generates the answering-machine-detection test set in this folder (labels.csv and one .ulaw per clip).

    .venv/bin/python tests/data/amd/make.py        # needs espeak-ng (bin/setup installs it)

Each clip is what the far end sends from the moment the call is answered, as an 8 kHz G.711 u-law leg
carries it: a person's short answer followed by waiting silence, or a voicemail/call-screener greeting,
with or without a beep, with line noise. Voices, speeds, pitches, pauses, beep frequencies and noise
levels vary; the random seed is fixed, so the set is reproducible on a machine with the same espeak-ng
(Debian 12's 1.51). One clip in four (a person and a machine in every eight) is held out: it is never used
to tune the detector's thresholds (bench/bench_amd.py reports the two parts separately). The 16 kHz runs
resample these clips, as mod_audio_fork's 16k stream of an 8 kHz leg does.
"""
from __future__ import annotations

import csv
import pathlib
import random
import subprocess
import sys
import tempfile
import wave

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3]))
from fssim.g711 import ulaw_encode  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
RATE = 8000
SEED = 16

VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
VARIANTS = ["", "+f2", "+f3", "+m3", "+f4", "+m2"]

HUMAN = ["Hello?", "Hello.", "Yes?", "Yeah, hello?", "Hi, this is Ada.", "Hello, who's this?", "Speaking.",
         "Good morning, Dana speaking.", "Hi there.", "Hello, yes?", "Yep?", "Hello, Smith residence.",
         "This is Tom.", "Uh, hello?"]
HUMAN_REPEAT = ["Hello?", "Hello? Anyone there?", "Hello?"]
MACHINE = [
    "Hi, you've reached Sam. I can't come to the phone right now. Please leave a message after the tone.",
    "The person you are trying to reach is not available. At the tone, please record your message.",
    "Hey, it's Jordan, leave me a message and I'll call you back.",
    "Thank you for calling Green Valley Dental. Our office is currently closed. Please leave your name and number.",
    "You have reached the voicemail box of 4 1 5, 5 5 5, 0 1 2 3. Please leave a message.",
    "Hello, this is Maria. Sorry I missed your call. Leave a message and I will get back to you.",
    "Your call has been forwarded to an automated voice messaging system. 4 1 5 5 5 5 0 1 9 9 is not available.",
    "Hi, if you record your name and reason for calling, I'll see if this person is available.",
    "Hi, it's Max. Leave a message.",
    "You've reached the Johnsons. We're not home right now, so leave a message after the beep.",
    "Please leave a message for Alex Chen.",
    "The subscriber you have dialed is not available. Please try again later or leave a message.",
]
BEEP_HZ = [440, 600, 850, 1000, 1400, 1800]


def speak(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng's speech as float samples at 8 kHz (sox resamples its 22.05 kHz output)."""
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = f"{tmp}/raw.wav", f"{tmp}/8k.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", raw, text], check=True)
        subprocess.run(["sox", raw, "-r", str(RATE), "-c", "1", "-b", "16", out], check=True)
        with wave.open(out) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float64) / 32768.0


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE))


def beep(hz: int, seconds: float, level: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.005)  # 5 ms edges: no click
    return level * ramp * np.sin(2 * np.pi * hz * t)


def ulaw(samples: np.ndarray) -> bytes:
    """Float samples as the carrier's G.711 u-law bytes (the simulator's FreeSWITCH-exact encoder)."""
    return ulaw_encode(np.clip(samples * 32768.0, -32768, 32767).astype(np.int16)).tobytes()


def voice(rng: random.Random) -> tuple[str, int, int]:
    return rng.choice(VOICES) + rng.choice(VARIANTS), rng.randint(140, 205), rng.randint(30, 70)


def human_clip(rng: random.Random) -> tuple[np.ndarray, str]:
    name, speed, pitch = voice(rng)
    parts = [silence(rng.uniform(0.1, 1.0))]
    if rng.random() < 0.2:  # "Hello? ... Hello?": no answer heard yet, the person says it again
        first, again = rng.sample(HUMAN_REPEAT, 2)
        parts += [speak(first, name, speed, pitch), silence(rng.uniform(1.4, 2.2)), speak(again, name, speed, pitch)]
        text = f"{first} / {again}"
    else:
        text = rng.choice(HUMAN)
        parts.append(speak(text, name, speed, pitch))
    parts.append(silence(3.0))
    return np.concatenate(parts) * rng.uniform(0.5, 1.0), text


def machine_clip(rng: random.Random) -> tuple[np.ndarray, str, int]:
    name, speed, pitch = voice(rng)
    text = rng.choice(MACHINE)
    parts = [silence(rng.uniform(0.1, 0.8)), speak(text, name, speed, pitch)]
    hz = 0
    if rng.random() < 0.5:
        hz = rng.choice(BEEP_HZ)
        parts += [silence(rng.uniform(0.2, 0.6)), beep(hz, rng.uniform(0.15, 0.9), rng.uniform(0.15, 0.5))]
    parts.append(silence(1.0))
    return np.concatenate(parts) * rng.uniform(0.5, 1.0), text, hz


def line_noise(rng: random.Random, n: int) -> np.ndarray:
    level = 10 ** (rng.uniform(-55, -38) / 20)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0.0, level, n)
    if rng.random() < 0.3:  # mains hum on an analogue line
        noise += level * 2 * np.sin(2 * np.pi * rng.choice([50, 60]) * np.arange(n) / RATE)
    return noise


def main(count: int = 80) -> None:
    rng = random.Random(SEED)
    for old in HERE.glob("*.ulaw"):
        old.unlink()
    rows = []
    for index in range(count):
        kind = "human" if index % 2 == 0 else "machine"
        if kind == "human":
            samples, text = human_clip(rng)
            hz = 0
        else:
            samples, text, hz = machine_clip(rng)
        samples = samples + line_noise(rng, len(samples))
        name = f"{index:03d}-{kind}.ulaw"
        (HERE / name).write_bytes(ulaw(samples))
        rows.append({"file": name, "label": kind, "split": "heldout" if index % 8 in (6, 7) else "tune",
                     "beep_hz": hz, "seconds": round(len(samples) / RATE, 2), "text": text})
    with open(HERE / "labels.csv", "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
