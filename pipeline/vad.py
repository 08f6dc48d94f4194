"""Voice activity detection (webrtcvad) and the endpointer that turns voiced/unvoiced frames into turns.

The endpointer is pure bookkeeping over frame times, so it is exact under a virtual clock and cheap per frame:
speech starts after `start_frames` consecutive voiced frames (the barge-in trigger), the turn ends after
`end_silence_ms` of unvoiced audio, utterances shorter than `min_utterance_ms` are dropped as noise, and the STT
provider's own end-of-utterance signal ends the turn early once the caller has gone quiet.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import webrtcvad

from pipeline.audio import AudioFormatError, resample
from pipeline.frames import AudioIn, SpeechStarted, SpeechStopped, VoicedAudio

VAD_RATES = (8000, 16000, 32000, 48000)


class VoiceDetector(Protocol):
    def is_speech(self, pcm: bytes, sample_rate: int) -> bool: ...


class WebRtcVad:
    """webrtcvad with aggressiveness 0 (lenient) .. 3 (strict); other rates are resampled to 16 kHz.

    webrtcvad keeps saying "speech" for 6-8 frames after a talker stops (its hangover), which
    would add ~120 ms to every turn. A voiced frame whose energy has fallen 20 dB under the
    talker's recent level is therefore taken as the silence it is; onsets are never trimmed
    because the level starts at zero, and line noise above that floor keeps webrtcvad's verdict.
    """

    RELEASE_RATIO = 0.1  # -20 dB
    LEVEL_DECAY = 0.95

    def __init__(self, aggressiveness: int = 2):
        if aggressiveness not in (0, 1, 2, 3):
            raise ValueError("VAD aggressiveness must be 0, 1, 2 or 3")
        self._vad = webrtcvad.Vad(aggressiveness)
        self._level = 0.0  # decaying peak RMS of recent speech frames

    def is_speech(self, pcm: bytes, sample_rate: int) -> bool:
        if sample_rate not in VAD_RATES:
            pcm, sample_rate = resample(pcm, sample_rate, 16000), 16000
        try:
            voiced = self._vad.is_speech(pcm, sample_rate)
        except Exception as exc:  # webrtcvad raises a bare Error for wrong frame sizes
            raise AudioFormatError(f"VAD rejected a {len(pcm)}-byte frame at {sample_rate} Hz: {exc}") from exc
        if not voiced:
            return False
        rms = _rms(pcm)
        if rms < self._level * self.RELEASE_RATIO:
            return False
        self._level = max(rms, self._level * self.LEVEL_DECAY)
        return True


_add = np.add.reduce


def _rms(pcm: bytes) -> float:
    """The frame's RMS, bit for bit what np.mean(samples * samples) gives (float32, numpy's pairwise sum) without
    np.mean's Python-level overhead (~6 us -> ~2.5 us per voiced frame; tests/pipeline/test_frame_cost.py)."""
    count = len(pcm) >> 1
    if not count:
        return 0.0
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    return float(np.sqrt(_add(samples * samples) / count))


class VADProcessor:
    """AudioIn -> VoicedAudio."""

    def __init__(self, detector: VoiceDetector):
        self.detector = detector

    def process(self, frame: AudioIn) -> VoicedAudio:
        return VoicedAudio(frame, self.detector.is_speech(frame.pcm, frame.sample_rate))

    def voiced(self, pcm: bytes, sample_rate: int) -> bool:
        """process() without the frame objects, for the session's per-frame path."""
        return self.detector.is_speech(pcm, sample_rate)


@dataclass
class EndpointerConfig:
    frame_ms: int = 20
    start_frames: int = 3  # 60 ms of voice before we believe it (barge-in fires here)
    end_silence_ms: int = 600  # phone-tuned: long enough for a breath, short enough to feel responsive
    min_utterance_ms: int = 200
    stt_min_silence_ms: int = 100  # the STT's end-of-utterance is taken once we also hear this much quiet


class Endpointer:
    """VoicedAudio -> SpeechStarted / SpeechStopped."""

    def __init__(self, config: EndpointerConfig | None = None,
                 end_silence: Callable[[float, float], float] | None = None):
        """end_silence(voiced_ms, last_voiced_ms) -> the silence (ms) that ends this utterance, asked on every
        quiet frame (pipeline/turn_end.py's smart end of turn); None: always config.end_silence_ms."""
        self.config = config or EndpointerConfig()
        self.end_silence = end_silence
        self.reset()

    @property
    def silence_ms(self) -> float:
        """Quiet heard since the last voiced frame of the current utterance (0 outside speech)."""
        return self._silence_ms if self.in_speech else 0.0

    @property
    def voiced_ms(self) -> float:
        return self._voiced_ms

    @property
    def last_voiced_ms(self) -> float:
        return self._last_voiced_ms

    def reset(self) -> None:
        self.in_speech = False
        self._run = 0  # consecutive voiced frames while not in speech
        self._onset_ms = 0.0
        self._last_voiced_ms = 0.0
        self._voiced_ms = 0.0
        self._silence_ms = 0.0

    def process(self, frame: VoicedAudio) -> list[SpeechStarted | SpeechStopped]:
        return self.step(frame.voiced, frame.audio.t_ms)

    def step(self, voiced: bool, t: float) -> list[SpeechStarted | SpeechStopped]:
        """process() for a frame starting at audio ms `t`, without the frame objects (the session's path)."""
        step = self.config.frame_ms
        if not self.in_speech:
            return self._idle(voiced, t, step)
        if voiced:
            self._silence_ms = 0.0
            self._voiced_ms += step
            self._last_voiced_ms = t + step
            return []
        self._silence_ms += step
        needed = self.config.end_silence_ms
        if self.end_silence is not None:
            needed = self.end_silence(self._voiced_ms, self._last_voiced_ms)
        if self._silence_ms >= needed:
            return [self._stop(t + step, by_stt=False)]
        return []

    def _idle(self, voiced: bool, t: float, step: int) -> list[SpeechStarted | SpeechStopped]:
        if not voiced:
            self._run = 0
            return []
        if self._run == 0:
            self._onset_ms = t
        self._run += 1
        if self._run < self.config.start_frames:
            return []
        self.in_speech, self._run = True, 0
        self._voiced_ms = self.config.start_frames * step
        self._last_voiced_ms, self._silence_ms = t + step, 0.0
        return [SpeechStarted(t_ms=t + step, onset_ms=self._onset_ms)]

    def stt_end_of_utterance(self, t_ms: float) -> list[SpeechStopped]:
        """The STT provider says the utterance is over; believe it only once our VAD hears quiet too."""
        if self.in_speech and self._silence_ms >= self.config.stt_min_silence_ms:
            return [self._stop(t_ms, by_stt=True)]
        return []

    def _stop(self, t_ms: float, by_stt: bool) -> SpeechStopped:
        event = SpeechStopped(t_ms=t_ms, last_voiced_ms=self._last_voiced_ms, speech_ms=self._voiced_ms,
                              end_of_turn=self._voiced_ms >= self.config.min_utterance_ms, by_stt=by_stt)
        self.reset()
        return event
