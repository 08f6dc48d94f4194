"""GET /v1/calls/{id}/recording: the call's WAV, streamed with HTTP Range support, from RECORDINGS_DIR
or, once the uploader moved it, from S3-compatible object storage.

Locally the file is always `<RECORDINGS_DIR>/<call id>.wav` (recordings.local): the stored
recording_path only says a recording was started and is never opened.
"""
from __future__ import annotations

import os
import re

import urllib3
from flask import Blueprint, Response, current_app, request, send_file

from api.calls import get_call
from api.errors import ApiError
from models import FINAL_STATUSES, Call
from recordings.local import recording_file
from recordings.s3 import S3Store, StoreError, store_from_config

bp = Blueprint("recordings", __name__, url_prefix="/v1/calls")

_RANGE = re.compile(r"bytes=(\d{1,15})?-(\d{1,15})?")  # one range: the only form forwarded to the store
_FORWARDED = ("Content-Length", "Content-Range", "ETag", "Last-Modified")


def _store() -> S3Store | None:
    if "voxbridge.recording_store" not in current_app.extensions:
        current_app.extensions["voxbridge.recording_store"] = store_from_config(current_app.config["VOXBRIDGE"])
    return current_app.extensions["voxbridge.recording_store"]


def _from_store(call: Call) -> Response:
    store = _store()
    if store is None:
        raise ApiError(404, "recording_missing", "the recording is in object storage, which this server is not "
                       "configured for (S3_ENDPOINT_URL)")
    wanted = request.headers.get("Range", "")
    try:
        upstream = store.get(call.recording_object, wanted if _RANGE.fullmatch(wanted) else None)
    except StoreError as exc:
        raise ApiError(503, "storage_unavailable", str(exc), headers={"Retry-After": "5"}) from None
    if upstream.status not in (200, 206):
        upstream.drain_conn()
        upstream.release_conn()
        if upstream.status == 416:
            raise ApiError(416, "range_not_satisfiable", "the range lies outside the recording")
        if upstream.status == 404:
            raise ApiError(404, "recording_missing", "the recording is not in the object storage bucket")
        raise ApiError(502, "storage_error", f"object storage answered HTTP {upstream.status}")

    def body():
        try:
            yield from upstream.stream(64 * 1024)
        except urllib3.exceptions.HTTPError:
            return  # the client sees a short body; nothing else can be said mid-stream
        finally:
            upstream.release_conn()

    headers = {name: upstream.headers[name] for name in _FORWARDED if name in upstream.headers}
    return Response(body(), status=upstream.status, mimetype="audio/wav",
                    headers={**headers, "Accept-Ranges": "bytes", "Cache-Control": "private, no-cache"})


@bp.get("/<call_id>/recording")
def download(call_id: str):
    call = get_call(call_id)  # 404 unless the call is the caller's organization's
    if not call.recording_path:
        raise ApiError(404, "no_recording", "this call was not recorded (its agent has no settings.record)")
    if call.status not in FINAL_STATUSES:
        raise ApiError(409, "recording_in_progress", "the call is still live; its recording is complete when it ends")
    if call.recording_object:
        return _from_store(call)
    path = recording_file(current_app.config["VOXBRIDGE"].recordings_dir, call.id)
    if path is None or not os.path.isfile(path):
        raise ApiError(404, "recording_missing", "the recording file is not in RECORDINGS_DIR on this server")
    response = send_file(path, mimetype="audio/wav", conditional=True, download_name=f"{call.id}.wav",
                         max_age=0)
    response.headers["Cache-Control"] = "private, no-cache"
    return response
