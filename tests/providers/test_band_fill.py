"""The band fill (pipeline/providers/band_fill.py): only a narrowband stream's decoder hears it, the call's audio
never does, and the controller learns a leg is narrowband from its read rate."""
import numpy as np
import pytest

from calls.channel_events import narrowband_leg
from esl.events import Event
from pipeline.providers.band_fill import LOW_HZ, RATE, BandFill
from pipeline.providers.pocketsphinx_recognizer import Recognizer, RecognizerOptions


def test_the_fill_is_quiet_noise_above_4_khz_only():
    fill = BandFill(1000.0)
    out = np.frombuffer(fill.apply(bytes(2 * RATE)), dtype="<i2").astype(np.float64)
    power = np.abs(np.fft.rfft(out)) ** 2
    freqs = np.fft.rfftfreq(len(out), 1 / RATE)
    assert power[freqs < LOW_HZ - 100].sum() < 1e-4 * power.sum()
    assert out.std() == pytest.approx(1000.0, rel=0.05)
    # Looped and seeded: the same audio in gets the same fill, continuing where the last chunk ended.
    a, b = BandFill(1000.0), BandFill(1000.0)
    assert a.apply(bytes(640)) + a.apply(bytes(640)) == b.apply(bytes(1280))


@pytest.mark.parametrize(("rate", "narrowband", "level", "filled"), [
    (8000, False, 1000.0, True),    # an 8 kHz stream is narrowband
    (16000, True, 1000.0, True),    # a G.711 leg streamed at 16k (the controller's hint)
    (16000, False, 1000.0, False),  # wideband: a G.722/Opus leg, a browser microphone
    (8000, False, 0.0, False),      # turned off
])
def test_only_a_narrowband_streams_decoder_gets_the_fill(rate, narrowband, level, filled):
    recognizer = Recognizer(RecognizerOptions(input_rate=rate, narrowband=narrowband, narrowband_fill=level))
    assert (recognizer.band_fill is not None) == filled


@pytest.mark.parametrize(("rate", "expected"), [("8000", True), ("16000", False), ("48000", False), ("", None),
                                                ("x8000", None)])
def test_a_leg_is_narrowband_when_its_codec_reads_at_8_khz(rate, expected):
    event = Event("CHANNEL_ANSWER", {"variable_read_rate": rate} if rate else {})
    assert narrowband_leg(event) is expected


def test_the_fill_is_opt_in():
    from pipeline.providers import build_stt

    assert RecognizerOptions().narrowband_fill == 0.0
    assert build_stt({"provider": "pocketsphinx"}).options.narrowband_fill == 0.0
    assert build_stt({"provider": "pocketsphinx", "narrowband_fill": 1000}).options.narrowband_fill == 1000.0
