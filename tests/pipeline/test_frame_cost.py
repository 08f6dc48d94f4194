"""The per-frame fast paths (issue 14: the session's VAD, level floor, endpointer and rechunker, and the
answering-machine beep detector) decide exactly what the paths they replaced did, on the recorded clips.

Run both ways over every 20 ms frame of the labelled answering-machine set (tests/data/amd: real people and
greetings over G.711, at 8 kHz and resampled to 16 kHz) and compare bit for bit.
"""
import pathlib
import sys

import numpy as np
import pytest

from pipeline.amd import AmdConfig, tone_frequency
from pipeline.audio import Rechunker
from pipeline.frames import AudioIn
from pipeline.vad import Endpointer, EndpointerConfig, VADProcessor, WebRtcVad, _rms

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "data" / "amd"))
import clips as amd_set  # noqa: E402


def reference_rms(pcm: bytes) -> float:
    """The level floor's RMS as it was computed before (np.mean over float32 squares)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    return float(np.sqrt(np.mean(samples * samples))) if samples.size else 0.0


def recorded(rate: int) -> list[bytes]:
    return [f for clip in amd_set.clips() for f in amd_set.frames(amd_set.pcm(clip, rate), rate)]


@pytest.mark.parametrize("rate", [8000, 16000])
def test_the_level_floors_rms_is_bit_identical_to_np_mean_on_every_recorded_frame(rate):
    frames = recorded(rate)
    assert len(frames) > 20000
    assert [_rms(f) for f in frames] == [reference_rms(f) for f in frames]
    assert _rms(b"") == reference_rms(b"") == 0.0
    assert _rms(bytes(640)) == reference_rms(bytes(640)) == 0.0


@pytest.mark.parametrize("rate", [8000, 16000])
def test_the_sessions_frame_path_gives_the_same_voicing_and_speech_events_as_the_frame_objects(rate):
    frames = recorded(rate) + [bytes(rate // 50 * 2)] * 50  # and the wire-gap fill's digital zeros
    config = EndpointerConfig(start_frames=3, end_silence_ms=600, min_utterance_ms=200)
    old_vad, new_vad = VADProcessor(WebRtcVad(2)), VADProcessor(WebRtcVad(2))
    old_end, new_end = Endpointer(config), Endpointer(config)
    old, new = [], []
    for i, pcm in enumerate(frames):
        voiced = old_vad.process(AudioIn(pcm, rate, 20.0 * i))
        old.append((voiced.voiced, old_end.process(voiced)))
        fast = new_vad.voiced(pcm, rate)
        new.append((fast, new_end.step(fast, 20.0 * i)))
    assert new == old
    assert sum(v for v, _ in old) > 1000 and sum(len(e) for _, e in old) > 100  # speech and turns were heard


def test_a_whole_frame_written_alone_is_taken_as_it_came_and_other_writes_are_rechunked_as_before():
    chunker = Rechunker(16000, 20)
    frame = bytes(range(256)) * 2 + bytes(128)
    assert chunker.push(frame)[0] is frame  # no copy of the usual write
    as_bytearray = chunker.push(bytearray(frame))
    assert as_bytearray == [frame] and type(as_bytearray[0]) is bytes
    assert chunker.push(frame[:100]) == []  # a partial write waits, and the next whole frame joins it
    assert chunker.push(frame) == [frame[:100] + frame[:540]] and chunker.pending == 100
    assert chunker.flush() == frame[540:] + bytes(540)


def reference_tone_frequency(pcm: bytes, sample_rate: int, config: AmdConfig) -> float | None:
    """pipeline.amd.tone_frequency as it was, recomputing the window and the bands on every frame."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0
    if samples.size < 64:
        return None
    if 10 * np.log10(np.mean(samples * samples) + 1e-12) < config.beep_floor_dbfs:
        return None
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size))) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1.0 / sample_rate)
    band = (freqs >= 300) & (freqs <= 3400)
    total = spectrum[band].sum()
    beep_band = np.flatnonzero((freqs >= config.beep_low_hz) & (freqs <= config.beep_high_hz))
    if total <= 0 or beep_band.size == 0:
        return None
    peak = beep_band[np.argmax(spectrum[beep_band])]
    around = spectrum[max(peak - 1, 0):peak + 2].sum()
    if around / total < config.beep_purity:
        return None
    return float(freqs[peak])


def tones(rate: int) -> list[bytes]:
    t = np.arange(rate // 50) / rate
    return [(level * 32767 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()
            for hz in (350, 400, 440, 1000, 1400, 2000, 2100, 3000) for level in (0.001, 0.01, 0.3)]


@pytest.mark.parametrize("rate", [8000, 16000])
def test_the_beep_detector_finds_the_same_tone_as_before_on_every_recorded_frame(rate):
    frames = recorded(rate) + tones(rate) + [bytes(rate // 50 * 2), b"\1\0" * 40]
    configs = [AmdConfig(), AmdConfig(beep_low_hz=5000, beep_high_hz=6000), AmdConfig(beep_floor_dbfs=-90.0)]
    for config in configs:
        found = [tone_frequency(f, rate, config) for f in frames]
        assert found == [reference_tone_frequency(f, rate, config) for f in frames]
    assert sum(hz is not None for hz in found) > 10  # tones were found, not only None compared with None
