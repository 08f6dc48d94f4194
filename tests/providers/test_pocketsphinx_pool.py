"""The offline recognizer's shared pool: sizing, assignment, a stopped or killed worker, shutdown, no leaks.

Every check decides from events (frames accepted, results received, processes reaped), never from timing.
"""
import os
import signal

import gevent
import numpy as np
import pytest

from pipeline.providers.espeak_tts import EspeakTTS
from pipeline.providers.pocketsphinx_pool import RecognizerPool, _thin, default_size
from pipeline.providers.pocketsphinx_recognizer import DecoderSet, RecognizerOptions
from pipeline.providers.pocketsphinx_stt import PocketsphinxSTT
from pipeline.providers.stt import STTFailed, Transcript

FRAME = 640  # 20 ms at 16 kHz


@pytest.fixture(scope="module")
def speech():
    tts = EspeakTTS(voice="en-us+f2", words_per_minute=150)
    return b"".join(tts.synthesize("Yes, tomorrow morning is fine.", 16000))


@pytest.fixture
def pool():
    # Tests send faster than real time on a loaded machine: a roomy outbox, so nothing is dropped by accident.
    pool = RecognizerPool(size=1, decoders=1, max_decoders=1, max_backlog_s=120.0).start()
    yield pool
    pool.close()


def feed(stream, pcm: bytes) -> None:
    for at in range(0, len(pcm), FRAME):
        stream.send(pcm[at:at + FRAME])
        gevent.sleep(0)  # as a call's audio loop does between frames (the writer runs meanwhile)


def final(stream, wait_s: float = 60.0):
    """The next final result (or STTFailed); None if nothing came in `wait_s`."""
    while (event := stream.get(timeout=wait_s)) is not None:
        if isinstance(event, STTFailed) or (isinstance(event, Transcript) and event.is_final):
            return event
    return None


def stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def test_pool_size_defaults_to_the_usable_cores_and_streams_go_to_the_least_loaded_worker():
    assert RecognizerPool().size == default_size() == len(os.sched_getaffinity(0))
    pool = RecognizerPool(size=2, decoders=1).start()
    try:
        assert len(set(pool.pids())) == 2  # pre-started: both processes exist before any stream
        options = RecognizerOptions()
        streams = [pool.open(options) for _ in range(4)]
        assert pool.load() == [2, 2]
        assert len(set(pool.pids())) == 2 and pool.stats.worker_starts == 2  # no process per stream
        moved = streams[0].worker
        streams[0].close()
        assert pool.load().count(1) == 1
        assert pool.open(options).worker is moved  # the next stream fills the gap
    finally:
        pool.close()


def test_streams_sharing_one_decoder_each_get_their_words(pool, speech):
    # One worker, one decoder, two callers talking at once: the second utterance waits for the decoder as
    # audio and is decoded when it frees, in its own stream, with its own words.
    a, b = pool.open(RecognizerOptions()), pool.open(RecognizerOptions())
    audio = bytes(16000) + speech + bytes(32000)
    for at in range(0, len(audio), FRAME):
        for s in (a, b):
            s.send(audio[at:at + FRAME])
        gevent.sleep(0)
    for s in (a, b):
        result = final(s)
        assert isinstance(result, Transcript) and {"tomorrow", "morning"} <= set(result.text.split()), result
    a.close()
    b.close()


def test_a_worker_makes_another_decoder_only_when_utterances_overlap_up_to_its_limit():
    decoders = DecoderSet(1, limit=2)
    first = decoders.acquire()
    assert decoders.count == 1 and not decoders.free
    second = decoders.acquire()  # a second utterance overlaps: one more decoder
    assert second is not None and second is not first and decoders.count == 2
    assert decoders.acquire() is None  # at the limit: the third waits (as audio) for one to be released
    decoders.release(first)
    assert decoders.acquire() is first and decoders.count == 2


def test_an_overflow_drops_quiet_frames_before_words_and_marks_the_gap():
    loud = (np.full(320, 8000, dtype="<i2")).tobytes()  # a 20 ms frame of "speech" at 16 kHz
    quiet = bytes(640)
    pcm = quiet * 3 + loud * 2 + quiet * 2 + loud
    pieces, taken = _thin(pcm, 640, 640 * 4, quiet_only=True)
    assert taken == 640 * 4
    assert pieces == [[b"S", 640 * 3], [b"A", bytearray(loud * 2)], [b"S", 640], [b"A", bytearray(quiet + loud)]]
    pieces, taken = _thin(pcm, 640, 640 * 4, quiet_only=False)  # still too much: the oldest, words or not
    assert taken == 640 * 4 and pieces == [[b"S", 640 * 4], [b"A", bytearray(loud + quiet * 2 + loud)]]


def test_a_stopped_worker_never_blocks_the_audio_loop_and_catches_up(speech):
    pool = RecognizerPool(size=1, decoders=1, max_backlog_s=4.0).start()
    try:
        _stopped_worker(pool, speech)
    finally:
        pool.close()


def _stopped_worker(pool, speech):
    stream = pool.open(RecognizerOptions())
    feed(stream, bytes(3200))
    pid = pool.pids()[0]
    os.kill(pid, signal.SIGSTOP)
    try:
        accepted = 0

        def audio_loop():  # a call's audio loop: 20 ms frames, yielding to the hub between them
            nonlocal accepted
            for _ in range(1000):  # 20 s of audio: far more than the pipe and the 4 s outbox hold
                stream.send(bytes(FRAME))
                accepted += 1
                gevent.sleep(0)

        loop = gevent.spawn(audio_loop)
        loop.join(60)
        assert loop.successful() and accepted == 1000
        assert stopped(pid)  # every frame was taken while the recognizer could not read a byte
        assert pool.stats.overflows > 0 and stream.dropped_bytes > 0  # counted, not silently lost
        assert stream.queued_audio <= stream.limit
    finally:
        os.kill(pid, signal.SIGCONT)
    with gevent.Timeout(60, AssertionError("the worker never caught up")):
        while stream.queued_audio:  # it reads again: the backlog drains
            gevent.sleep(0.05)
    feed(stream, speech + bytes(32000))
    stream.finalize()
    result = final(stream)
    assert isinstance(result, Transcript) and "morning" in result.text.split(), result
    stream.close()


def test_a_killed_worker_is_restarted_and_its_streams_go_on(speech):
    pool = RecognizerPool(size=1, decoders=1, max_crashes=2).start()
    try:
        stream = pool.open(RecognizerOptions())
        feed(stream, bytes(3200))
        first = pool.pids()[0]
        os.kill(first, signal.SIGKILL)
        with gevent.Timeout(60, AssertionError("the worker was not restarted")):
            while not (pool.workers[0].ready.is_set() and pool.pids()[0] != first):
                gevent.sleep(0.05)
        assert pool.stats.worker_crashes == 1
        feed(stream, speech + bytes(32000))  # the same stream, reopened on the new process
        result = final(stream)
        assert isinstance(result, Transcript) and "morning" in result.text.split(), result
        os.kill(pool.pids()[0], signal.SIGKILL)  # a second crash under the same stream: it may be the cause
        failed = final(stream)
        assert isinstance(failed, STTFailed) and "exited" in str(failed.error)
        stream.close()
    finally:
        pool.close()


def test_bad_options_end_that_stream_only(pool, speech):
    bad = pool.open(RecognizerOptions(vad_mode=9))
    good = pool.open(RecognizerOptions())
    failed = final(bad)
    assert isinstance(failed, STTFailed)
    feed(good, speech + bytes(32000))
    assert "morning" in final(good).text.split()
    assert pool.stats.worker_crashes == 0
    good.close()
    bad.close()


def test_close_reaps_every_worker_and_fails_open_streams():
    pool = RecognizerPool(size=2, decoders=1).start()
    procs = [w.proc for w in pool.workers]
    stream = pool.open(RecognizerOptions())
    pool.close()
    assert all(p.poll() is not None for p in procs)  # exited and waited for: no zombie, no orphan
    assert all(p.stdin.closed and p.stdout.closed for p in procs)
    assert isinstance(stream.get(timeout=1), STTFailed)
    assert all(w.reader.dead and (w.writer is None or w.writer.dead) for w in pool.workers)
    pool.close()  # idempotent


def test_the_provider_uses_the_pool_it_is_given(pool, speech):
    stt = PocketsphinxSTT(pool=pool)
    stream = stt.open(16000)
    assert stream.worker is pool.workers[0] and pool.load() == [1]
    feed(stream, speech + bytes(32000))
    assert "morning" in final(stream).text.split()
    stream.close()
    assert pool.load() == [0]
