"""api/response parsers against the captured bodies."""
import pytest

from esl.errors import EslCommandError
from esl.framing import FrameParser
from esl.responses import ApiResult, api_result, show_channels, uuid_exists
from tests.esl.captures import rows


def _responses(name):
    """(command, api/response body) pairs of a capture."""
    out, last = [], None
    for row in rows(name):
        if row["dir"] == "c2s":
            last = row["data"].strip()
        elif row["dir"] == "s2c" and "api/response" in row["data"]:
            out.append((last, FrameParser().feed(row["data"].encode())[0].text))
    return out


def test_uuid_exists_bodies():
    bodies = [body for cmd, body in _responses("call-events-plain") if cmd.startswith("api uuid_exists")]
    assert [uuid_exists(b) for b in bodies] == [True, False]
    with pytest.raises(EslCommandError):
        uuid_exists("-ERR no reply\n")


def test_show_channels_empty_and_with_rows():
    empty = [b for c, b in _responses("api-commands") if c == "api show channels as json"][0]
    assert empty == '{"row_count": 0}\n' and show_channels(empty) == []
    live = [b for c, b in _responses("call-events-json") if c == "api show channels as json"][0]
    found = show_channels(live)
    assert len(found) == 2 and found[0]["uuid"] == "184e74ca-0aeb-4d72-b753-74223c0a57c7"
    with pytest.raises(EslCommandError):
        show_channels("-ERR oops")


def test_api_result_on_captured_answers():
    answers = {c: api_result(b) for c, b in _responses("api-commands")}
    assert answers["api uuid_kill 00000000-0000-4000-8000-000000000000"] == ApiResult(False, "No such channel!")
    assert answers["api reloadacl"] == ApiResult(True, "acl reloaded")
    fork = [api_result(b) for c, b in _responses("audio-fork-esl") if "uuid_audio_fork" in c and " start " in c]
    assert fork[0] == ApiResult(True, "Success")
