import pytest

from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.openai import FakeOpenAI


@pytest.fixture
def fake_deepgram():
    with FakeDeepgram(idle_timeout_s=2.0) as server:
        yield server


@pytest.fixture
def fake_openai():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_elevenlabs():
    with FakeElevenLabs() as server:
        yield server
