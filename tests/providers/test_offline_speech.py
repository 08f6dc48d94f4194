"""The offline defaults for real: espeak-ng speaks, pocketsphinx listens (no network, no key)."""
import os
import signal

import numpy as np
import pytest

from pipeline.providers.errors import ProviderConfigError, ProviderError
from pipeline.providers.espeak_tts import EspeakTTS
from pipeline.providers.pocketsphinx_pool import RecognizerPool
from pipeline.providers.pocketsphinx_stt import PocketsphinxSTT
from pipeline.providers.stt import STTFailed, Transcript


@pytest.fixture(scope="module")
def tts():
    # en-us+f2 is the espeak voice pocketsphinx's en-us model understands best (measured: ~85% of words at 16 kHz).
    return EspeakTTS(voice="en-us+f2", words_per_minute=150)


def rms(pcm: bytes) -> float:
    return float(np.sqrt(np.mean(np.frombuffer(pcm, dtype="<i2").astype(float) ** 2)))


def feed(stream, pcm: bytes, rate: int) -> None:
    frame = rate // 50 * 2
    for i in range(0, len(pcm), frame):
        stream.send(pcm[i : i + frame])


def drain(stream, wait_s: float = 20.0) -> list:
    """Events up to and including the first final result (decoding runs at its own pace), then any stragglers."""
    events = []
    while (event := stream.get(timeout=wait_s)) is not None:
        events.append(event)
        if isinstance(event, Transcript) and event.is_final:
            wait_s = 0.2
    return events


@pytest.mark.parametrize("rate", [8000, 16000])
def test_espeak_yields_speech_at_the_requested_rate(tts, rate):
    pieces = list(tts.synthesize("Hello, this is a test.", rate))
    pcm = b"".join(pieces)
    assert all(len(p) % 2 == 0 for p in pieces) and len(pieces) > 3
    assert 0.8 < len(pcm) / 2 / rate < 3.0
    assert rms(pcm) > 500


def test_espeak_text_is_data_not_options_or_shell(tts, tmp_path):
    marker = tmp_path / "pwned"
    pcm = b"".join(tts.synthesize(f"--help; touch {marker} $(touch {marker})", 16000))
    assert rms(pcm) > 500  # it was spoken...
    assert not marker.exists()  # ...not executed
    assert b"".join(tts.synthesize(" \x00\x07 ", 16000)) == b""
    with pytest.raises(ProviderConfigError):
        EspeakTTS(voice="en; rm -rf /")


@pytest.mark.parametrize(("isolation", "expected"), [
    ("pool", {"yes", "confirm", "tomorrow", "morning"}),  # a first utterance's batch pass recovers "confirm"
    ("thread", {"yes", "tomorrow", "morning"}),
])
def test_pocketsphinx_transcribes_espeak_speech_with_its_own_endpointing(tts, isolation, expected):
    pcm = b"".join(tts.synthesize("Yes, I can confirm the appointment for tomorrow morning.", 16000))
    silence = b"\0" * 32000
    stream = PocketsphinxSTT(endpointing_ms=400, isolation=isolation).open(16000)
    feed(stream, silence + pcm + silence, 16000)
    events = drain(stream)  # the trailing second of silence ends the utterance without finalize()
    finals = [e for e in events if isinstance(e, Transcript) and e.is_final]
    assert len(finals) == 1 and finals[0].speech_final
    words = set(finals[0].text.split())
    assert expected <= words, finals[0].text
    assert 0.7 < finals[0].start < 1.3 and finals[0].end > finals[0].start + 2
    interims = [e for e in events if isinstance(e, Transcript) and not e.is_final]
    assert interims and all(i.start == finals[0].start for i in interims)
    stream.close()


def test_pocketsphinx_finalize_closes_the_turn_and_8k_input_is_resampled():
    # 8 kHz audio loses the band above 4 kHz that the wideband model expects; the plain voice fares best there.
    pcm = b"".join(EspeakTTS(words_per_minute=140).synthesize("Please call me back tomorrow.", 8000))
    stream = PocketsphinxSTT().open(8000)
    feed(stream, b"\0" * 8000 + pcm, 8000)
    stream.finalize()  # no trailing silence: the pipeline's endpointer decided
    events = drain(stream)
    finals = [e for e in events if isinstance(e, Transcript) and e.is_final]
    assert len(finals) == 1 and "tomorrow" in finals[0].text.split(), finals
    stream.close()
    stream.close()


def test_a_dead_decoder_process_is_reported_not_hung(tts):
    pool = RecognizerPool(size=1, decoders=1, max_crashes=1).start()  # fail the stream at the first crash
    try:
        stream = PocketsphinxSTT(pool=pool).open(16000)
        os.kill(pool.pids()[0], signal.SIGKILL)
        event = stream.get(timeout=30)
        assert isinstance(event, STTFailed) and "exited" in str(event.error)
        with pytest.raises(ProviderError):
            stream.send(b"\0" * 640)
        stream.close()
    finally:
        pool.close()


def test_bad_settings_are_config_errors():
    with pytest.raises(ProviderConfigError):
        PocketsphinxSTT(isolation="cloud")
    with pytest.raises(ProviderConfigError):
        PocketsphinxSTT(vad_mode=7)
