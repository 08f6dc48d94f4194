"""Recordings moved to S3-compatible storage and streamed back from it through the API."""
import dataclasses
import os

import pytest
from cryptography.fernet import Fernet

from api import create_app
from config import ConfigError, load_config
from models import ApiKey, Call, Organization
from recordings.s3 import store_from_config
from recordings.uploader import RecordingUploader

from .fake_s3 import FakeS3

WAV = b"RIFF" + bytes(range(256)) * 64


@pytest.fixture
def s3():
    with FakeS3() as server:
        yield server


@pytest.fixture
def s3_config(tmp_path, s3):
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    return load_config({"S3_ENDPOINT_URL": s3.endpoint, "S3_BUCKET": "recordings", "S3_ACCESS_KEY_ID": "minio",
                        "S3_SECRET_ACCESS_KEY": "minio-secret"},
                       rate_limit_per_minute=100_000, sip_secret_key=Fernet.generate_key().decode(),
                       recordings_dir=str(recordings))


def _recorded_call(org, config, status="completed", settled=True) -> Call:
    call = Call.create(organization=org, direction="outbound", to_number="+14155550123", status=status)
    path = os.path.join(config.recordings_dir, f"{call.id}.wav")
    Call.update(recording_path=path).where(Call.id == call.id).execute()
    with open(path, "wb") as out:
        out.write(WAV)
    if settled:
        os.utime(path, (0, 0))  # written long ago: FreeSWITCH has closed it
    return call


def test_an_ended_calls_recording_moves_to_the_bucket_and_a_live_ones_stays(db, org, s3, s3_config):
    ended = _recorded_call(org, s3_config)
    live = _recorded_call(org, s3_config, status="in-progress")
    fresh = _recorded_call(org, s3_config, settled=False)  # still being written for all we know
    uploader = RecordingUploader(store_from_config(s3_config), s3_config.recordings_dir)
    assert uploader.run_once() == [ended.id]
    key = f"recordings/{org.id}/{ended.id}.wav"
    assert s3.objects == {key: WAV} and Call.get_by_id(ended.id).recording_object == key
    assert not os.path.exists(os.path.join(s3_config.recordings_dir, f"{ended.id}.wav"))
    for kept in (live, fresh):
        assert os.path.exists(os.path.join(s3_config.recordings_dir, f"{kept.id}.wav"))
        assert Call.get_by_id(kept.id).recording_object is None


def test_a_refused_upload_keeps_the_file_for_the_next_pass(db, org, s3, s3_config):
    call = _recorded_call(org, s3_config)
    wrong = dataclasses.replace(s3_config, s3_secret_access_key="not-the-secret")
    assert RecordingUploader(store_from_config(wrong), s3_config.recordings_dir).run_once() == []
    assert s3.requests[-1][2] == 403 and s3.objects == {}
    assert os.path.exists(os.path.join(s3_config.recordings_dir, f"{call.id}.wav"))
    assert RecordingUploader(store_from_config(s3_config), s3_config.recordings_dir).run_once() == [call.id]


def test_the_api_streams_an_uploaded_recording_with_ranges_to_its_organization_only(db, org, auth, s3, s3_config):
    call = _recorded_call(org, s3_config)
    RecordingUploader(store_from_config(s3_config), s3_config.recordings_dir).run_once()
    client = create_app(s3_config).test_client()
    url = f"/v1/calls/{call.id}/recording"
    whole = client.get(url, headers=auth)
    assert whole.status_code == 200 and whole.data == WAV and whole.mimetype == "audio/wav"
    part = client.get(url, headers={**auth, "Range": "bytes=4-7"})
    assert part.status_code == 206 and part.data == WAV[4:8]
    assert part.headers["Content-Range"] == f"bytes 4-7/{len(WAV)}"
    assert client.get(url, headers={**auth, "Range": f"bytes={len(WAV)}-"}).status_code == 416
    odd = client.get(url, headers={**auth, "Range": "bytes=0-1, 4-5;x"})  # not one plain range: not forwarded
    assert odd.status_code == 200 and odd.data == WAV
    other = Organization.create(name="Globex")
    assert client.get(url, headers={"Authorization": f"Bearer {ApiKey.issue(other)[1]}"}).status_code == 404
    s3.objects.clear()
    gone = client.get(url, headers=auth)
    assert (gone.status_code, gone.get_json()["error"]["code"]) == (404, "recording_missing")
    unconfigured = create_app(dataclasses.replace(s3_config, s3_endpoint_url="")).test_client()
    assert unconfigured.get(url, headers=auth).get_json()["error"]["code"] == "recording_missing"


def test_unreachable_storage_is_503(db, org, auth, s3_config, s3):
    call = _recorded_call(org, s3_config)
    RecordingUploader(store_from_config(s3_config), s3_config.recordings_dir).run_once()
    s3.server.stop(timeout=1)
    response = create_app(s3_config).test_client().get(f"/v1/calls/{call.id}/recording", headers=auth)
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "storage_unavailable"


@pytest.mark.parametrize(("env", "named"), [
    ({"S3_ENDPOINT_URL": "http://minio:9000"}, "S3_BUCKET"),
    ({"S3_ENDPOINT_URL": "ftp://minio", "S3_BUCKET": "rec", "S3_ACCESS_KEY_ID": "a",
      "S3_SECRET_ACCESS_KEY": "b"}, "S3_ENDPOINT_URL"),
    ({"S3_ENDPOINT_URL": "http://minio:9000/rec", "S3_BUCKET": "rec", "S3_ACCESS_KEY_ID": "a",
      "S3_SECRET_ACCESS_KEY": "b"}, "S3_ENDPOINT_URL"),
    ({"S3_ENDPOINT_URL": "http://minio:9000", "S3_BUCKET": "rec"}, "S3_SECRET_ACCESS_KEY"),
])
def test_an_incomplete_s3_setting_refuses_to_start(env, named):
    with pytest.raises(ConfigError, match=named):
        load_config(env)


def test_serve_runs_the_uploader_only_when_s3_is_configured(s3_config):
    import app

    assert app.build_uploader(load_config({})) is None
    assert isinstance(app.build_uploader(s3_config), RecordingUploader)


def test_an_uploaded_recording_is_never_uploaded_again(db, org, s3, s3_config):
    call = _recorded_call(org, s3_config)
    uploader = RecordingUploader(store_from_config(s3_config), s3_config.recordings_dir)
    assert uploader.run_once() == [call.id]
    with open(os.path.join(s3_config.recordings_dir, f"{call.id}.wav"), "wb") as stale:  # e.g. not removable
        stale.write(b"stale")
    os.utime(os.path.join(s3_config.recordings_dir, f"{call.id}.wav"), (0, 0))
    assert uploader.run_once() == []
    assert [r for r in s3.requests if r[0] == "PUT"] == [("PUT", f"/recordings/recordings/{org.id}/{call.id}.wav", 200)]
