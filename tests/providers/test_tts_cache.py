"""The synthesized-speech cache: espeak-ng runs once per distinct (voice, speed, text, rate), within a byte bound.

espeak-ng really runs; its subprocess.run is wrapped to count the runs (or to fail one), so every check
decides from the number of syntheses, never from timing.
"""
import subprocess

import gevent
import pytest
from prometheus_client import REGISTRY

from pipeline.providers import espeak_tts, tts_cache
from pipeline.providers.errors import ProviderError
from pipeline.providers.espeak_tts import EspeakTTS
from pipeline.providers.tts_cache import TTSCache


@pytest.fixture
def cache():
    """A fresh process cache for the test (32 MiB, the default), the previous one put back after."""
    previous = tts_cache.shared_cache()
    yield tts_cache.configure(32 * 1024 * 1024)
    tts_cache._shared = previous


@pytest.fixture
def runs(monkeypatch):
    """Every espeak-ng run, as its argv; set runs.fail to make the next run exit 1 with no audio."""
    real = subprocess.run

    class Runs(list):
        fail = False

    recorded = Runs()

    def counted(argv, **kwargs):
        recorded.append(list(argv))
        if recorded.fail:
            recorded.fail = False
            gevent.sleep(0)  # as the real run does: other greenlets run meanwhile
            return subprocess.CompletedProcess(argv, 1, b"", b"simulated failure")
        return real(argv, **kwargs)

    monkeypatch.setattr(espeak_tts.subprocess, "run", counted)
    return recorded


def speak(tts, text, rate=8000):
    return b"".join(tts.synthesize(text, rate))


def lookups(result):
    return REGISTRY.get_sample_value("voxbridge_tts_cache_lookups_total",
                                     {"provider": "espeak", "result": result}) or 0.0


def test_the_same_sentence_twice_is_synthesized_once_and_sounds_the_same(cache, runs):
    tts = EspeakTTS()
    hits, misses = lookups("hit"), lookups("miss")
    first = speak(tts, "Hello, this is the clinic calling about your appointment.")
    again = speak(EspeakTTS(), "Hello, this is the clinic calling about your appointment.")  # another call
    assert len(runs) == 1 and first == again and len(first) > 8000
    assert (cache.hits, cache.misses, len(cache)) == (1, 1, 1) and cache.bytes == len(first)
    assert lookups("hit") - hits == 1 and lookups("miss") - misses == 1  # exported: voxbridge_tts_cache_*


def test_each_voice_speed_and_rate_is_its_own_entry(cache, runs):
    text = "Is tomorrow morning still good for you?"
    speak(EspeakTTS(voice="en-us"), text)
    speak(EspeakTTS(voice="en-us+f2"), text)
    speak(EspeakTTS(voice="en-us", words_per_minute=200), text)
    narrow, wide = speak(EspeakTTS(voice="en-us"), text, 8000), speak(EspeakTTS(voice="en-us"), text, 16000)
    assert len(runs) == 4 and len(cache) == 4  # the 8 kHz en-us one was a hit
    assert {tuple(argv[1:5]) for argv in runs} == {("-v", "en-us", "-s", "165"), ("-v", "en-us+f2", "-s", "165"),
                                                  ("-v", "en-us", "-s", "200")}
    assert abs(len(wide) - 2 * len(narrow)) <= 4  # the same speech at twice the rate, not the 8 kHz copy
    speak(EspeakTTS(voice="en-us+f2"), text)
    assert len(runs) == 4


def test_least_recently_used_entries_go_once_the_bytes_pass_the_bound(runs):
    lru = TTSCache(max_bytes=10)
    lru.put("a", b"1234")
    lru.put("b", b"5678")
    assert lru.get("a") == b"1234"  # a is now the most recent
    lru.put("c", b"9012")  # 12 bytes > 10: b, the least recently used, goes
    assert (lru.get("a"), lru.get("b"), lru.get("c")) == (b"1234", None, b"9012") and lru.bytes == 8
    lru.put("huge", b"x" * 11)  # larger than the whole cache: not stored, and nothing evicted for it
    assert lru.get("huge") is None and len(lru) == 2


def test_the_process_cache_evicts_whole_sentences_at_its_size(runs):
    previous = tts_cache.shared_cache()
    try:
        tts = EspeakTTS()
        tts_cache.configure(0)  # the probe is synthesized, whatever an earlier test left in the process's cache
        probe = speak(tts, "Goodbye.")  # the size of one short sentence at 8 kHz
        cache = tts_cache.configure(len(probe) + 1)  # room for one of them, not two
        speak(tts, "Goodbye.")
        speak(tts, "Thanks.")  # evicts Goodbye.
        speak(tts, "Thanks.")
        speak(tts, "Goodbye.")
        assert len(runs) == 4 and len(cache) == 1 and cache.bytes <= cache.max_bytes
    finally:
        tts_cache._shared = previous


def test_zero_turns_the_cache_off(runs):
    previous = tts_cache.shared_cache()
    try:
        cache = tts_cache.configure(0)  # TTS_CACHE_MB=0
        tts = EspeakTTS()
        assert speak(tts, "Goodbye.") == speak(tts, "Goodbye.")
        assert len(runs) == 2 and len(cache) == 0 and (cache.hits, cache.misses) == (0, 0)
    finally:
        tts_cache._shared = previous


def test_a_failed_synthesis_is_not_cached(cache, runs):
    tts = EspeakTTS()
    runs.fail = True
    with pytest.raises(ProviderError, match="espeak-ng failed"):
        speak(tts, "Your appointment is confirmed.")
    assert len(cache) == 0
    assert len(speak(tts, "Your appointment is confirmed.")) > 0  # synthesized for real this time
    speak(tts, "Your appointment is confirmed.")
    assert len(runs) == 2 and len(cache) == 1


def test_blank_text_costs_no_run_and_no_entry(cache, runs):
    assert speak(EspeakTTS(), "  \x07 ") == b""
    assert len(runs) == 0 and len(cache) == 0


def test_calls_starting_together_share_one_synthesis_of_the_greeting(cache, runs):
    greeting = "Hello, this is the clinic calling about your appointment."
    calls = [gevent.spawn(speak, EspeakTTS(), greeting) for _ in range(5)]  # the subprocess yields to the others
    gevent.joinall(calls, raise_error=True)
    assert len(runs) == 1 and len({call.value for call in calls}) == 1 and len(calls[0].value) > 8000
    assert (cache.hits, cache.misses) == (4, 1)


def test_when_the_shared_synthesis_fails_each_waiter_tries_for_itself(cache, runs):
    runs.fail = True  # the first run (the one the others wait for) fails, after letting them start waiting
    calls = [gevent.spawn(speak, EspeakTTS(), "Goodbye now.") for _ in range(3)]
    gevent.joinall(calls)
    assert isinstance(calls[0].exception, ProviderError)
    assert all(call.successful() and len(call.value) > 0 for call in calls[1:])
    assert len(runs) == 2 and len(cache) == 1  # one of the waiters synthesized it, the other shared that
    assert (cache.hits, cache.misses) == (1, 2)
