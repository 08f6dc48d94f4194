"""What the call controller tells the voice pipeline, and asks it: MediaHooks (calls/media.py's MediaBridge is
the real one; the default does nothing, for a deployment without a pipeline)."""
from __future__ import annotations

from typing import Protocol

from models import Call


class MediaHooks:
    """What the pipeline wants to hear about; the default does nothing (no pipeline wired)."""

    # An answered call with an agent gets an audio stream from this pipeline: one that never connects is ended
    # (audio_stream.py watch_connect). False for the default: no stream is started, none is waited for.
    streams_calls = False

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

    def release(self, call_id: str) -> None:
        """The call hung up on a node another instance drives: free what runs here for it, without the
        post-call work the driving instance does (calls/cross_instance.py)."""


class CallCommands(Protocol):
    """What the media bridge asks of the call it serves (CallController for phone calls, webcall/'s
    WebCallControl for browser calls, which cannot transfer)."""

    def hangup(self, call: Call, reason: str = ..., unserved: bool = False) -> None: ...

    def break_playback(self, call_id: str) -> None: ...

    def send_dtmf(self, call_id: str, digits: str) -> bool: ...

    def transfer(self, call: Call, target: str, mode: str) -> bool: ...
