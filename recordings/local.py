"""Where a call's recording lives on this host: always `<RECORDINGS_DIR>/<call id>.wav`, the name the
controller gives FreeSWITCH. A stored recording_path is never opened, so no database value can point
at another file; the resolved path (symlinks followed) must still lie inside the directory."""
from __future__ import annotations

import os
import re

_CALL_ID = re.compile(r"[0-9A-Za-z-]{1,36}")


def recording_file(recordings_dir: str, call_id: str) -> str | None:
    """The recording's path, or None when the name or its resolved path would leave `recordings_dir`."""
    if not _CALL_ID.fullmatch(call_id):
        return None
    root = os.path.realpath(recordings_dir)
    path = os.path.realpath(os.path.join(root, f"{call_id}.wav"))
    return path if os.path.dirname(path) == root else None
