"""An agent's voice is checked against its TTS provider when it is saved (issue 12, #8): before, "a|ZQ6|b" was
stored and every call with it was answered, failed to start its voice, and ended completed and billed."""
import json

import pytest

from models import Agent


def send(client, method, path, auth, body):
    return client.open(path, method=method, data=json.dumps(body), headers=auth, content_type="application/json")


@pytest.mark.parametrize(("body", "field"), [
    ({"voice": "a|ZQ6|b"}, "voice"),
    ({"tts": {"voice": "a|ZQ6|b"}}, "tts.voice"),
    ({"voice": "xx-notalanguage"}, "voice"),        # the shape of a language, but not installed
    ({"voice": "en-us+nosuchvariant"}, "voice"),   # an installed language, a variant that is not
    ({"voice": "en-us", "tts": {"voice": "de|x"}}, "tts.voice"),
    ({"tts": {"voice": 7}}, "tts.voice"),
    ({"tts": {"provider": "elevenlabs", "voice_id": "not-an-id"}}, "tts.voice_id"),
    ({"voice": "en-us", "tts": {"provider": "elevenlabs"}}, "voice"),  # an espeak name is no ElevenLabs id
    ({"voice": "a|b", "tts": {"provider": "elevenlabs", "voice_id": "21m00Tcm4TlvDq8ikWAM"}}, "voice"),
])
def test_a_voice_the_provider_cannot_use_is_refused_at_save(client, auth, body, field):
    created = send(client, "POST", "/v1/agents", auth, {"name": "Ada", "direction": "outbound", **body})
    assert created.status_code == 422, created.get_json()
    assert (created.get_json()["error"]["code"], created.get_json()["error"]["field"]) == ("invalid_voice", field)
    assert Agent.select().count() == 0


def test_voices_espeak_has_are_saved_and_a_bad_patch_changes_nothing(client, auth):
    for voice in ("en-us", "en-gb-x-rp", "de+f3", "en-us+klatt"):
        created = send(client, "POST", "/v1/agents", auth, {"name": voice, "direction": "inbound", "voice": voice})
        assert created.status_code == 201, created.get_json()
    agent_id = created.get_json()["id"]
    patched = send(client, "PATCH", f"/v1/agents/{agent_id}", auth, {"voice": "a|ZQ6|b"})
    assert patched.status_code == 422 and patched.get_json()["error"]["field"] == "voice"
    patched = send(client, "PATCH", f"/v1/agents/{agent_id}", auth, {"tts": {"voice": "en-us;rm"}})
    assert patched.status_code == 422 and patched.get_json()["error"]["field"] == "tts.voice"
    assert Agent.get_by_id(agent_id).voice == "en-us+klatt" and Agent.get_by_id(agent_id).tts == {}
