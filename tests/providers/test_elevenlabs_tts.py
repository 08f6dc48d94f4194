"""ElevenLabsTTS through the elevenlabs SDK against a local server streaming raw PCM / mu-law."""
import numpy as np
import pytest

from pipeline.providers.elevenlabs_tts import ElevenLabsTTS
from pipeline.providers.errors import ProviderConfigError, ProviderError, ProviderTimeout
from tests.fakes.elevenlabs import SECONDS_PER_CHAR, TONE_HZ
from tests.fakes.faults import Fault

TEXT = "Hello there, this is a test."


def tts_for(server, **kwargs) -> ElevenLabsTTS:
    return ElevenLabsTTS(api_key="xi-test", voice_id="voice123", base_url=server.url, **kwargs)


def pitch(pcm: bytes, rate: int) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize(("output_format", "rate", "requested"), [
    ("pcm", 8000, "pcm_8000"), ("pcm", 16000, "pcm_16000"),
    ("ulaw_8000", 8000, "ulaw_8000"), ("ulaw_8000", 16000, "ulaw_8000"),
])
def test_audio_streams_back_as_pcm_at_the_call_rate(fake_elevenlabs, output_format, rate, requested):
    pieces = list(tts_for(fake_elevenlabs, output_format=output_format).synthesize(TEXT, rate))
    pcm = b"".join(pieces)
    assert len(pieces) > 1 and all(len(p) % 2 == 0 for p in pieces)  # streamed, samples re-aligned
    assert len(pcm) / 2 / rate == pytest.approx(len(TEXT) * SECONDS_PER_CHAR, abs=0.01)
    assert pitch(pcm, rate) == pytest.approx(TONE_HZ, abs=5)
    request = fake_elevenlabs.requests[-1]
    assert request.path == "/v1/text-to-speech/voice123/stream"
    assert request.query["output_format"] == requested
    assert request.headers["xi-api-key"] == "xi-test"
    assert request.json() == {"text": TEXT, "model_id": "eleven_flash_v2_5"}


@pytest.mark.parametrize(("fault", "error", "status"), [
    (Fault(status=500), ProviderError, 500),
    (Fault(drop_after=2), ProviderError, None),
    (Fault(latency_s=3), ProviderTimeout, None),
    (Fault(stall_after=1, stall_s=3), ProviderTimeout, None),
])
def test_faults_raise_typed_errors(fake_elevenlabs, fault, error, status):
    fake_elevenlabs.faults = [fault]
    with pytest.raises(error) as raised:
        list(tts_for(fake_elevenlabs, timeout_s=0.5).synthesize(TEXT, 16000))
    assert raised.value.status == status and raised.value.retryable
    assert list(tts_for(fake_elevenlabs).synthesize(TEXT, 16000))


def test_audio_before_a_drop_is_delivered_first(fake_elevenlabs):
    fake_elevenlabs.faults = [Fault(drop_after=3)]
    got = []
    with pytest.raises(ProviderError):
        for chunk in tts_for(fake_elevenlabs).synthesize(TEXT, 16000):
            got.append(chunk)
    assert sum(map(len, got)) >= 2 * 1600  # the chunks that made it, before the error


def test_refusals_are_not_retryable_and_bad_settings_fail_early(fake_elevenlabs):
    with pytest.raises(ProviderError) as unauthorized:
        list(ElevenLabsTTS(api_key="bad-key", voice_id="voice123", base_url=fake_elevenlabs.url).synthesize("hi",
                                                                                                           8000))
    assert unauthorized.value.status == 401 and not unauthorized.value.retryable
    with pytest.raises(ProviderError) as unknown_voice:
        list(ElevenLabsTTS(api_key="xi-test", voice_id="nobody", base_url=fake_elevenlabs.url).synthesize("hi",
                                                                                                           8000))
    assert unknown_voice.value.status == 404
    with pytest.raises(ProviderConfigError):
        ElevenLabsTTS(api_key="k", voice_id="../../admin")
    with pytest.raises(ProviderConfigError):
        list(tts_for(fake_elevenlabs).synthesize("hi", 44100))
    assert list(tts_for(fake_elevenlabs).synthesize("   ", 8000)) == []
    assert "xi-test" not in repr(tts_for(fake_elevenlabs))
