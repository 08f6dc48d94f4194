"""GET /v1/calls/{id}/recording: streamed with Range, one organization's only, never outside RECORDINGS_DIR."""
import os

import pytest
from cryptography.fernet import Fernet

from api import create_app
from config import load_config
from models import ApiKey, Call, Organization
from recordings.local import recording_file

WAV = b"RIFF" + bytes(range(256)) * 40


@pytest.fixture
def recordings(tmp_path):
    path = tmp_path / "recordings"
    path.mkdir()
    return path


@pytest.fixture
def client(db, recordings):
    config = load_config({}, rate_limit_per_minute=100_000, sip_secret_key=Fernet.generate_key().decode(),
                         recordings_dir=str(recordings))
    return create_app(config).test_client()


def _call(org, recordings, status="completed", recorded=True, write=True) -> Call:
    call = Call.create(organization=org, direction="outbound", to_number="+14155550123", status=status)
    if recorded:
        Call.update(recording_path=str(recordings / f"{call.id}.wav")).where(Call.id == call.id).execute()
    if write:
        (recordings / f"{call.id}.wav").write_bytes(WAV)
    return call


def test_a_recording_streams_whole_and_by_range(client, auth, org, recordings):
    call = _call(org, recordings)
    whole = client.get(f"/v1/calls/{call.id}/recording", headers=auth)
    assert whole.status_code == 200 and whole.data == WAV and whole.mimetype == "audio/wav"
    assert whole.headers["Accept-Ranges"] == "bytes"
    part = client.get(f"/v1/calls/{call.id}/recording", headers={**auth, "Range": "bytes=0-3"})
    assert part.status_code == 206 and part.data == b"RIFF"
    assert part.headers["Content-Range"] == f"bytes 0-3/{len(WAV)}"
    assert client.get(f"/v1/calls/{call.id}/recording",
                      headers={**auth, "Range": f"bytes={len(WAV) + 10}-"}).status_code == 416


def test_another_organizations_call_is_404_like_an_unknown_one(client, auth, org, recordings):
    other = Organization.create(name="Globex")
    other_auth = {"Authorization": f"Bearer {ApiKey.issue(other)[1]}"}
    theirs = _call(other, recordings)
    mine = _call(org, recordings)
    for call_id in (theirs.id, "no-such-call"):
        response = client.get(f"/v1/calls/{call_id}/recording", headers=auth)
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    assert client.get(f"/v1/calls/{mine.id}/recording", headers=other_auth).status_code == 404
    assert client.get(f"/v1/calls/{theirs.id}/recording", headers=other_auth).data == WAV


@pytest.mark.parametrize(("kwargs", "status", "code"), [
    ({"recorded": False}, 404, "no_recording"),
    ({"write": False}, 404, "recording_missing"),
    ({"status": "in-progress"}, 409, "recording_in_progress"),
])
def test_no_file_to_serve_says_why(client, auth, org, recordings, kwargs, status, code):
    call = _call(org, recordings, **kwargs)
    response = client.get(f"/v1/calls/{call.id}/recording", headers=auth)
    assert (response.status_code, response.get_json()["error"]["code"]) == (status, code)


def test_the_stored_path_is_never_opened_and_symlinks_out_are_refused(client, auth, org, recordings, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"not a recording")
    call = _call(org, recordings, write=False)
    Call.update(recording_path=str(secret)).where(Call.id == call.id).execute()
    assert client.get(f"/v1/calls/{call.id}/recording", headers=auth).status_code == 404
    os.symlink(secret, recordings / f"{call.id}.wav")
    response = client.get(f"/v1/calls/{call.id}/recording", headers=auth)
    assert response.status_code == 404 and b"not a recording" not in response.data


@pytest.mark.parametrize("call_id", ["../secret", "..", "a/b", "x" * 37, "", "a\x00b"])
def test_a_call_id_that_could_leave_the_directory_names_no_file(recordings, call_id):
    assert recording_file(str(recordings), call_id) is None
