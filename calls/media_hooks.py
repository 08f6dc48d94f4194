"""What the call controller tells the voice pipeline, and asks it: MediaHooks (calls/media.py's MediaBridge is
the real one; the default does nothing, for a deployment without a pipeline)."""
from __future__ import annotations

from models import Call


class MediaHooks:
    """What the pipeline wants to hear about; the default does nothing (no pipeline wired)."""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def media_url(self, call: Call) -> str | None:
        return None

    def streams_audio(self, call: Call) -> bool:
        """True: the agent's voice comes back as binary frames (a bidirectional fork, see
        inbound_socket.keep_writing)."""
        return False

    def on_dtmf(self, call_id: str, digit: str) -> None:
        pass

    def end_session(self, call_id: str) -> None:
        pass

    def on_hangup(self, call_id: str) -> None:
        pass
