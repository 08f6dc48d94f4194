"""Each processor in a few lines: feed frames, check what comes out."""
import subprocess

import numpy as np
import pytest

from pipeline.audio import AudioFormatError, Rechunker, frame_bytes, resample, validate_pcm
from pipeline.frames import AudioIn, LLMText, SpeechStarted, SpeechStopped, VoicedAudio
from pipeline.playback import PlayedSegments
from pipeline.sentences import SentenceAggregator
from pipeline.tokens import TokenError, audio_fork_url, check_token, make_token, verify_token
from pipeline.vad import Endpointer, EndpointerConfig, VADProcessor, WebRtcVad

SECRET = "s" * 32


def test_rechunker_keeps_remainder_across_writes():
    chunker = Rechunker(16000)
    assert chunker.push(bytes(600)) == []
    frames = chunker.push(bytes(1000))  # 1600 bytes buffered: two 640-byte frames, 320 left
    assert [len(f) for f in frames] == [640, 640] and chunker.pending == 320
    assert len(chunker.flush()) == 640 and chunker.pending == 0


def test_rechunker_preserves_byte_order():
    data = bytes(range(256)) * 10
    chunker = Rechunker(8000)
    out = b"".join(chunker.push(data[:7 * 2]) + chunker.push(data[14:]))
    assert out == data[: len(out)] and len(out) == 2560 - 2560 % 320


@pytest.mark.parametrize("bad", [b"\x00", bytes(641)])
def test_odd_byte_counts_are_refused(bad):
    with pytest.raises(AudioFormatError, match="odd byte count"):
        Rechunker(16000).push(bad)
    with pytest.raises(AudioFormatError):
        validate_pcm(bad)


def test_frame_sizes_and_unsupported_rate():
    assert frame_bytes(8000) == 320 and frame_bytes(16000) == 640 and frame_bytes(24000) == 960
    with pytest.raises(AudioFormatError, match="unsupported sample rate"):
        frame_bytes(11025)


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (16000, 8000), (24000, 16000), (16000, 24000)])
def test_resample_keeps_duration_and_pitch(src, dst):
    t = np.arange(src) / src
    tone = (np.sin(2 * np.pi * 440 * t) * 10000).astype("<i2").tobytes()
    out = np.frombuffer(resample(tone, src, dst), dtype="<i2").astype(float)
    assert len(out) == dst
    peak_hz = np.argmax(np.abs(np.fft.rfft(out))) * dst / len(out)
    assert abs(peak_hz - 440) < 2


def _frames(pattern: str, start_ms: float = 0.0):
    """'v' voiced / '.' silent frames of 20 ms."""
    for i, ch in enumerate(pattern):
        yield VoicedAudio(AudioIn(b"", 16000, start_ms + 20 * i), ch == "v")


def _run(endpointer, pattern):
    return [e for f in _frames(pattern) for e in endpointer.process(f)]


def test_endpointer_start_after_n_voiced_frames_and_end_after_silence():
    ep = Endpointer(EndpointerConfig(start_frames=3, end_silence_ms=100, min_utterance_ms=100))
    events = _run(ep, ".." + "vv." + "vvvvvv" + "....." + "...")
    assert events[0] == SpeechStarted(t_ms=160, onset_ms=100)
    assert isinstance(events[1], SpeechStopped) and events[1].end_of_turn
    assert events[1].last_voiced_ms == 220 and events[1].t_ms == 320 and len(events) == 2


def test_endpointer_drops_too_short_utterances():
    ep = Endpointer(EndpointerConfig(start_frames=2, end_silence_ms=60, min_utterance_ms=200))
    events = _run(ep, "vvv...")
    assert isinstance(events[-1], SpeechStopped) and not events[-1].end_of_turn


def test_endpointer_accepts_stt_end_of_utterance_only_in_silence():
    ep = Endpointer(EndpointerConfig(start_frames=2, end_silence_ms=600, min_utterance_ms=40))
    _run(ep, "vvvv")
    assert ep.stt_end_of_utterance(80) == []  # still talking per our VAD
    _run(ep, ".....")
    (stopped,) = ep.stt_end_of_utterance(180)
    assert stopped.by_stt and stopped.end_of_turn and not ep.in_speech


def test_webrtcvad_hears_espeak_speech_not_silence():
    wav = subprocess.run(["espeak-ng", "--stdout", "hello, how are you today"], capture_output=True,
                         check=True, timeout=30).stdout
    from pipeline.providers.audio import wav_to_pcm

    pcm, rate = wav_to_pcm(wav)
    pcm = resample(pcm, rate, 16000)
    vad = VADProcessor(WebRtcVad(3))
    chunker = Rechunker(16000)
    voiced = [vad.process(AudioIn(f, 16000, 0)).voiced for f in chunker.push(pcm)]
    silent = [vad.process(AudioIn(bytes(640), 16000, 0)).voiced for _ in range(20)]
    assert sum(voiced) > len(voiced) / 3 and not any(silent)
    with pytest.raises(ValueError):
        WebRtcVad(4)


def test_webrtcvad_hangover_after_speech_is_trimmed():
    """webrtcvad alone keeps 'speech' for several frames after the talker stops; ours does not."""
    import numpy as np
    import webrtcvad

    from pipeline.providers.audio import wav_to_pcm

    wav = subprocess.run(["espeak-ng", "--stdout", "yes, tomorrow morning works"], capture_output=True,
                         check=True, timeout=30).stdout
    pcm, rate = wav_to_pcm(wav)
    clean = Rechunker(16000).push(resample(pcm, rate, 16000)) + [bytes(640)] * 25
    loud = [float(np.abs(np.frombuffer(f, "<i2")).max()) > 300 for f in clean]
    noise = np.random.default_rng(7).normal(0, 40, 320)  # a quiet phone line under everything
    frames = [(np.frombuffer(f, "<i2") + noise).clip(-32768, 32767).astype("<i2").tobytes() for f in clean]
    speech_end = max(i for i, is_loud in enumerate(loud) if is_loud)
    raw, ours = webrtcvad.Vad(2), WebRtcVad(2)
    raw_verdicts = [raw.is_speech(f, 16000) for f in frames]
    our_verdicts = [ours.is_speech(f, 16000) for f in frames]
    raw_tail, our_tail = sum(raw_verdicts[speech_end + 1:]), sum(our_verdicts[speech_end + 1:])
    assert sum(our_verdicts[:speech_end]) >= sum(raw_verdicts[:speech_end]) * 0.8  # speech itself kept
    assert raw_tail >= 3 and our_tail <= 1


def test_sentence_aggregator_emits_sentences_as_they_complete():
    agg = SentenceAggregator()
    assert agg.process(LLMText("Hello there")) == []
    assert agg.process(LLMText(". How are")) == [LLMText("Hello there.")]
    assert agg.flush() == ["How are"]


def test_played_segments_truncate_to_played_share():
    played = PlayedSegments()
    played.add(0, 1000, "one two three four")
    played.add(1000, 2000, "five six")
    assert played.played_text(500) == "one two"
    assert played.played_text(1500) == "one two three four five"
    assert played.text() == "one two three four five six"


def test_tokens_sign_verify_expire():
    token = make_token("call-123", SECRET, ttl=60, now=1000)
    assert verify_token(token, "call-123", SECRET, now=1059)
    assert not verify_token(token, "call-124", SECRET, now=1000)
    assert not verify_token(token, "call-123", "x" * 32, now=1000)
    for bad, reason in [(None, "missing"), ("abc", "malformed"), (token[:-1] + "0", "bad signature")]:
        with pytest.raises(TokenError, match=reason):
            check_token(bad, "call-123", SECRET, now=1000)
    with pytest.raises(TokenError, match="expired"):
        check_token(token, "call-123", SECRET, now=1061)
    with pytest.raises(ValueError):
        make_token("bad id; rm", SECRET, 60)
    assert audio_fork_url("ws://h:1/", "c1", SECRET, 60).startswith("ws://h:1/audio/c1?token=")
