"""Moves finished recordings from RECORDINGS_DIR to object storage when S3 is configured.

It scans the directory, not the calls: a file is uploaded once its call has ended (and the file has
not changed for `grace_s`, so FreeSWITCH has closed it), the call remembers the object key, and the
local file is removed. A failed upload leaves the file to be tried on the next pass; an upload whose
database update is lost is simply repeated (a PUT of the same key).
"""
from __future__ import annotations

import logging
import os
import time

import gevent

from background import BackgroundLoop
from models import FINAL_STATUSES, Call, database
from recordings.local import recording_file
from recordings.s3 import S3Store, StoreError

log = logging.getLogger(__name__)


def object_key(call: Call) -> str:
    return f"recordings/{call.organization_id}/{call.id}.wav"


class RecordingUploader(BackgroundLoop):
    def __init__(self, store: S3Store, recordings_dir: str, interval_s: float = 10.0, grace_s: float = 10.0,
                 batch: int = 20):
        self.store = store
        self.recordings_dir = recordings_dir
        self.interval_s = interval_s
        self.grace_s = grace_s
        self.batch = batch

    def _settled_files(self) -> dict[str, str]:
        """call id -> path of recordings untouched for grace_s, oldest first, at most `batch`."""
        try:
            entries = [e for e in os.scandir(self.recordings_dir) if e.name.endswith(".wav") and e.is_file()]
        except FileNotFoundError:
            return {}
        cutoff = time.time() - self.grace_s
        settled = sorted((e for e in entries if e.stat().st_mtime <= cutoff), key=lambda e: e.stat().st_mtime)
        found = {}
        for entry in settled:
            call_id = entry.name[:-4]
            path = recording_file(self.recordings_dir, call_id)
            if path is not None:
                found[call_id] = path
        return found

    def run_once(self) -> list[str]:
        """Upload what is ready; the ids of the calls whose recordings moved."""
        files = self._settled_files()
        if not files:
            return []
        calls = (Call.select(Call.id, Call.organization).where(
            Call.id.in_(list(files)), Call.status.in_(FINAL_STATUSES), Call.recording_path.is_null(False),
            Call.recording_object.is_null()).limit(self.batch))
        moved = []
        for call in calls:
            key = object_key(call)
            try:
                self.store.put_file(key, files[call.id])
            except (StoreError, OSError) as exc:
                log.warning("recording of call %s not uploaded, retrying later: %s", call.id, exc)
                continue
            Call.update(recording_object=key).where(Call.id == call.id).execute()
            moved.append(call.id)
            try:
                os.remove(files[call.id])
            except OSError as exc:  # served from the bucket from now on; the local copy is only clutter
                log.warning("recording of call %s uploaded but its local file stays: %s", call.id, exc)
        return moved

    def _loop(self) -> None:
        while not self._stopping:
            try:
                with database.connection_context():
                    self.run_once()
            except Exception:
                log.exception("recording upload pass failed; retrying")
            gevent.sleep(self.interval_s)

