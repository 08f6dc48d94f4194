import numpy as np

from pipeline.providers.audio import ByteAligner, chunks, pcm_to_ulaw, resample, ulaw_to_pcm


def tone(freq: float, rate: int, seconds: float = 0.5, amplitude: int = 8000) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * freq * t) * amplitude).astype("<i2").tobytes()


def dominant_frequency(pcm: bytes, rate: int) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


def test_ulaw_decoding_matches_g711_reference_points():
    decoded = np.frombuffer(ulaw_to_pcm(bytes([0xFF, 0x7F, 0x00, 0x80])), dtype="<i2").tolist()
    assert decoded == [0, 0, -32124, 32124]


def test_ulaw_round_trip_keeps_the_signal():
    pcm = tone(440, 8000)
    back = np.frombuffer(ulaw_to_pcm(pcm_to_ulaw(pcm)), dtype="<i2").astype(int)
    assert np.abs(back - np.frombuffer(pcm, dtype="<i2")).max() < 300


def test_resample_keeps_duration_and_pitch():
    for src, dst in ((22050, 16000), (16000, 8000), (8000, 16000)):
        out = resample(tone(440, src), src, dst)
        assert abs(len(out) / 2 / dst - 0.5) < 0.001
        assert abs(dominant_frequency(out, dst) - 440) < 5


def test_downsampling_suppresses_content_above_the_new_nyquist():
    out = np.frombuffer(resample(tone(6000, 22050), 22050, 8000), dtype="<i2").astype(float)
    assert np.sqrt(np.mean(out**2)) < 8000 / np.sqrt(2) * 0.35


def test_chunks_and_byte_alignment():
    assert [len(c) for c in chunks(b"\0" * 1000, 8000, 20)] == [320, 320, 320, 40]
    aligner = ByteAligner()
    assert aligner.push(b"\x01\x02\x03") == b"\x01\x02"
    assert aligner.push(b"\x04") == b"\x03\x04"
