"""Answering-machine detection on the labelled set in tests/data/amd (see make.py there) and on edge cases."""
import pathlib
import sys

import numpy as np
import pytest

from pipeline.amd import HUMAN, MACHINE, UNKNOWN, AmdConfig, MachineDetector

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "data" / "amd"))
import clips as amd_set  # noqa: E402


def decide(audio: bytes, rate: int, detector: MachineDetector | None = None):
    detector = detector or MachineDetector()
    for frame in amd_set.frames(audio, rate):
        if decision := detector.push(frame, rate):
            return decision
    return None


def tone(hz: float, seconds: float, rate: int, level: float = 0.3) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (level * 32767 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def silence(seconds: float, rate: int) -> bytes:
    return bytes(int(seconds * rate) * 2)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_the_labelled_set_meets_the_accuracy_goals(rate):
    results = {HUMAN: [], MACHINE: []}
    for clip in amd_set.clips():
        decision = decide(amd_set.pcm(clip, rate), rate)
        results[clip.label].append(decision is not None and decision.answered_by == clip.label)
    assert len(results[HUMAN]) == len(results[MACHINE]) == 40
    assert sum(results[MACHINE]) / 40 >= 0.95
    assert sum(results[HUMAN]) / 40 >= 0.98  # with 40 people: every one


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("hz", [440, 850, 1000, 1400, 1950])
def test_a_beep_is_a_machine_within_about_100_ms_of_its_start(rate, hz):
    decision = decide(silence(0.5, rate) + tone(hz, 0.4, rate), rate)
    assert decision.answered_by == MACHINE and "tone" in decision.reason
    assert 600 <= decision.at_ms <= 680


def test_a_tone_outside_the_beep_band_or_too_short_is_not_a_beep():
    rate = 8000
    for audio in (tone(250, 0.5, rate), tone(2600, 0.5, rate), tone(1000, 0.06, rate) + silence(0.5, rate)):
        decision = decide(audio + silence(0.2, rate), rate, MachineDetector(AmdConfig(timeout_ms=600)))
        assert decision is None or "tone" not in decision.reason


def test_a_voice_like_harmonic_series_is_not_a_beep():
    rate = 8000
    t = np.arange(rate) / rate
    voice = sum(np.sin(2 * np.pi * 200 * k * t) / k for k in range(1, 12))
    audio = (0.1 * 32767 * voice / np.max(np.abs(voice))).astype("<i2").tobytes()
    detector = MachineDetector()
    for frame in amd_set.frames(audio, rate):
        detector.push(frame, rate)
    assert detector.decision is None or "tone" not in detector.decision.reason


def test_a_greetings_words_decide_machine_and_the_first_decision_stands():
    detector = MachineDetector()
    assert detector.hear("hi you have reached sam").answered_by == MACHINE
    assert detector.push(silence(0.02, 8000), 8000).answered_by == MACHINE
    assert MachineDetector().hear("hello who is this") is None


def test_nothing_but_silence_is_unknown_at_the_timeout():
    decision = decide(silence(6, 8000), 8000)
    assert decision.answered_by == UNKNOWN and decision.at_ms == AmdConfig().timeout_ms


def test_a_click_before_a_short_answer_is_not_taken_for_the_answer():
    rate = 8000
    clip = next(c for c in amd_set.clips() if c.label == HUMAN)
    click = tone(300, 0.06, rate, level=0.5)  # 60 ms: voiced for the VAD, far too short to be an answer
    decision = decide(click + silence(1.0, rate) + amd_set.pcm(clip, rate), rate)
    assert decision.answered_by == HUMAN and decision.at_ms > 1060


@pytest.mark.parametrize("said", [
    "hi you've reached the smiths", "please leave a message after the tone", "sorry i can't take your call",
    "the person you are calling is not available", "welcome to the voicemail of sam", "the mailbox is full",
    "record your message at the beep", "leave your name and number", "sam is unavailable"])
def test_a_greetings_phrases_are_a_machine(said):
    assert MachineDetector().hear(said).answered_by == MACHINE


@pytest.mark.parametrize("said", ["hello", "hello who is this", "yes speaking", "hi this is ada",
                                  "uh hello", "yeah what's this about", "sorry who", "hello hello"])
def test_a_persons_answer_is_never_a_machine_by_its_words(said):
    assert MachineDetector().hear(said) is None
