"""GET /v1/calls/{id}/recording: the call's WAV, streamed from RECORDINGS_DIR with HTTP Range support.

The file is always `<RECORDINGS_DIR>/<call id>.wav`, the name the controller gives FreeSWITCH: the
stored recording_path only says a recording was started, it is never opened, so no value in the
database can point the API at another file; and the resolved path (symlinks followed) must still
lie inside the directory.
"""
from __future__ import annotations

import os
import re

from flask import Blueprint, current_app, send_file

from api.calls import get_call
from api.errors import ApiError
from models import FINAL_STATUSES

bp = Blueprint("recordings", __name__, url_prefix="/v1/calls")

_CALL_ID = re.compile(r"[0-9A-Za-z-]{1,36}")


def recording_file(recordings_dir: str, call_id: str) -> str | None:
    """The recording's path, or None when the name or its resolved path would leave `recordings_dir`."""
    if not _CALL_ID.fullmatch(call_id):
        return None
    root = os.path.realpath(recordings_dir)
    path = os.path.realpath(os.path.join(root, f"{call_id}.wav"))
    return path if os.path.dirname(path) == root else None


@bp.get("/<call_id>/recording")
def download(call_id: str):
    call = get_call(call_id)  # 404 unless the call is the caller's organization's
    if not call.recording_path:
        raise ApiError(404, "no_recording", "this call was not recorded (its agent has no settings.record)")
    if call.status not in FINAL_STATUSES:
        raise ApiError(409, "recording_in_progress", "the call is still live; its recording is complete when it ends")
    path = recording_file(current_app.config["VOXBRIDGE"].recordings_dir, call.id)
    if path is None or not os.path.isfile(path):
        raise ApiError(404, "recording_missing", "the recording file is not in RECORDINGS_DIR on this server")
    response = send_file(path, mimetype="audio/wav", conditional=True, download_name=f"{call.id}.wav",
                         max_age=0)
    response.headers["Cache-Control"] = "private, no-cache"
    return response
