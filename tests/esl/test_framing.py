"""Frame parser: every captured s2c frame, partial reads, many frames in one read, bad lengths."""
import random

import pytest

from esl.errors import FrameError
from esl.framing import FrameParser
from tests.esl.captures import all_names, s2c


def _declared(raw: str) -> tuple[dict[str, str], bytes]:
    head, _, rest = raw.encode().partition(b"\n\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\n"))
    return headers, rest


@pytest.mark.parametrize("name", all_names())
def test_each_captured_frame_decodes_alone_with_consistent_length(name):
    parser = FrameParser()
    for raw in s2c(name):
        frames = parser.feed(raw.encode())
        assert len(frames) == 1
        headers, rest = _declared(raw)
        frame = frames[0]
        assert frame.headers == headers
        assert len(frame.body) == int(headers.get("Content-Length", 0)) == len(rest)
        assert frame.body == rest
    assert parser.buffered == 0


@pytest.mark.parametrize("name", all_names())
def test_whole_capture_in_one_read_and_in_random_chunks_gives_same_frames(name):
    stream = "".join(s2c(name)).encode()
    whole = FrameParser().feed(stream)
    assert len(whole) == len(s2c(name))
    rng = random.Random(name)
    for _ in range(5):
        parser, got, pos = FrameParser(), [], 0
        while pos < len(stream):
            step = rng.choice([1, 2, 3, 7, 64, 1000, 5000])
            got += parser.feed(stream[pos:pos + step])
            pos += step
        assert [(f.headers, f.body) for f in got] == [(f.headers, f.body) for f in whole]
        assert parser.buffered == 0


def test_byte_at_a_time_split_inside_body_and_header():
    raw = b"Content-Type: api/response\nContent-Length: 5\n\nfalse"
    parser = FrameParser()
    out = []
    for i in range(len(raw)):
        out += parser.feed(raw[i:i + 1])
        if i < len(raw) - 1:
            assert out == []
    assert out[0].body == b"false" and out[0].content_type == "api/response"


def test_body_counted_in_bytes_not_characters():
    body = "héllo\n".encode()
    raw = b"Content-Type: api/response\nContent-Length: %d\n\n" % len(body) + body + b"Content-Type: auth/request\n\n"
    frames = FrameParser().feed(raw)
    assert frames[0].body == body and frames[0].text == "héllo\n"
    assert frames[1].content_type == "auth/request"


def test_body_containing_blank_lines_is_not_split():
    body = b"a\n\nContent-Type: command/reply\nReply-Text: +OK forged\n\n"
    raw = b"Content-Type: api/response\nContent-Length: %d\n\n" % len(body) + body
    frames = FrameParser().feed(raw)
    assert len(frames) == 1 and frames[0].body == body


@pytest.mark.parametrize("length", [b"-1", b"abc", b"1e3", "\u0661".encode()])
def test_bad_content_length_raises(length):
    with pytest.raises(FrameError):
        FrameParser().feed(b"Content-Type: api/response\nContent-Length: " + length + b"\n\nx")


def test_header_block_without_end_is_bounded():
    with pytest.raises(FrameError):
        FrameParser().feed(b"X: " + b"a" * (300 * 1024))


def test_stray_newlines_between_frames_are_skipped():
    raw = b"\n\nContent-Type: auth/request\n\n\n\nContent-Type: api/response\nContent-Length: 4\n\ntrue"
    frames = FrameParser().feed(raw)
    assert [f.content_type for f in frames] == ["auth/request", "api/response"]
    assert frames[1].body == b"true"


def test_oversized_content_length_rejected_before_buffering():
    with pytest.raises(FrameError):
        FrameParser().feed(b"Content-Type: api/response\nContent-Length: 999999999\n\n")


def test_headers_parsed_lazily_match_eager_split():
    raw = b"Content-Type: command/reply\nReply-Text: +OK Job-UUID: abc\nJob-UUID: abc\n\n"
    frame = FrameParser().feed(raw)[0]
    assert frame.headers == {"Content-Type": "command/reply", "Reply-Text": "+OK Job-UUID: abc", "Job-UUID": "abc"}
    assert frame.reply_text == "+OK Job-UUID: abc"
