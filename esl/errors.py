"""Every error the ESL layer raises, in one place so callers can catch them precisely."""


class EslError(Exception):
    """Base class of all ESL-layer errors."""


class FrameError(EslError):
    """The byte stream does not follow ESL framing (bad Content-Length, oversized header block)."""


class EslTimeout(EslError):
    """A command got no reply (or a connect/auth did not finish) within its timeout."""


class EslNotConnected(EslError):
    """The connection is not READY: the command was not sent."""


class NoLiveNode(EslNotConnected):
    """No FreeSWITCH node in the pool is connected and has capacity left."""


class EslAuthError(EslError):
    """FreeSWITCH refused the password (or closed the socket during authentication)."""


class EslCommandError(EslError):
    """FreeSWITCH answered a command with -ERR."""

    def __init__(self, command: str, reply: str) -> None:
        super().__init__(f"{command!r} failed: {reply}")
        self.command = command
        self.reply = reply


class SessionGone(EslError):
    """Outbound-socket session: the channel hung up or the socket closed."""


class UnsafeValue(ValueError):
    """A value that would reach a FreeSWITCH command failed its allow-list; it is rejected, never escaped."""

    def __init__(self, kind: str, value: object) -> None:
        # The offending value is shown repr()-escaped and truncated: it may be hostile or a secret.
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"unsafe {kind}: {shown}")
        self.kind = kind
