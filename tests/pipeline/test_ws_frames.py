"""The server's own WebSocket frame reader, fed frames built by websocket-client's encoder (ABNF: what a client
library really puts on the wire), in every chunking a socket could deliver."""
import os

import pytest
from websocket import ABNF

from pipeline import ws_frames
from pipeline.ws_frames import BINARY, CLOSE, NO_STATUS, PING, PONG, TEXT, FrameError, FrameReader


def frame(opcode, data=b"", fin=1, rsv1=0, mask=1):
    data = data.encode() if isinstance(data, str) else data  # as ABNF.create_frame does (format() would not)
    return ABNF(fin=fin, rsv1=rsv1, opcode=opcode, mask_value=mask, data=data).format()


def read(reader, *chunks):
    return [message for chunk in chunks for message in reader.feed(chunk)]


def error_of(data, reader=None):
    with pytest.raises(FrameError) as failed:
        read(reader or FrameReader(), data)
    return failed.value.code


@pytest.mark.parametrize("size", [0, 1, 125, 126, 640, 65535, 65536, 200_000])
def test_a_binary_frame_of_each_length_form_comes_out_unmasked(size):
    payload = os.urandom(size)
    assert read(FrameReader(), frame(BINARY, payload)) == [(BINARY, payload)]


def test_text_ping_pong_and_close_come_out_in_order_from_one_read():
    data = b"".join([frame(TEXT, "héllo"), frame(PING, b"p1"), frame(BINARY, b"\x01\x02"), frame(PONG, b"p2"),
                     frame(CLOSE, (1000).to_bytes(2, "big") + "bye ✓".encode())])
    assert read(FrameReader(), data) == [(TEXT, "héllo"), (PING, b"p1"), (BINARY, b"\x01\x02"), (PONG, b"p2"),
                                         (CLOSE, (1000, "bye ✓"))]


def test_a_close_without_a_code_reads_as_no_status():
    assert read(FrameReader(), frame(CLOSE)) == [(CLOSE, (NO_STATUS, ""))]


def test_a_stream_split_at_every_byte_position_gives_the_same_messages():
    audio = os.urandom(640)
    stream = frame(TEXT, '{"sampleRate":16000}') + frame(BINARY, audio) + frame(BINARY, os.urandom(300) * 1)
    stream += frame(BINARY, b"x" * 200)  # a 16-bit length: the split lands inside it too
    expected = read(FrameReader(), stream)
    assert len(expected) == 4
    for cut in range(1, len(stream)):
        assert read(FrameReader(), stream[:cut], stream[cut:]) == expected, cut


def test_a_stream_fed_one_byte_at_a_time_gives_the_same_messages():
    stream = frame(BINARY, os.urandom(640)) * 3 + frame(TEXT, "x" * 70_000)  # a 64-bit length too
    expected = read(FrameReader(), stream)
    reader = FrameReader()
    assert read(reader, *(stream[i : i + 1] for i in range(len(stream)))) == expected


def test_fragments_join_into_one_message_with_control_frames_between():
    data = (frame(TEXT, "hel", fin=0) + frame(PING, b"!") + frame(0, "lo ", fin=0) + frame(0, "wörld")
            + frame(BINARY, b"ab", fin=0) + frame(0, b"cd"))
    assert read(FrameReader(), data) == [(PING, b"!"), (TEXT, "hello wörld"), (BINARY, b"abcd")]


def test_a_character_split_between_fragments_is_valid_utf8():
    encoded = "ö".encode()
    data = frame(TEXT, encoded[:1], fin=0) + frame(0, encoded[1:])
    assert read(FrameReader(), data) == [(TEXT, "ö")]


@pytest.mark.parametrize(("data", "code"), [
    (frame(BINARY, b"audio", mask=0), 1002),  # a client must mask
    (frame(BINARY, b"audio", rsv1=1), 1002),  # no extension agreed
    (bytes([0x83]) + frame(BINARY, b"x")[1:], 1002),  # opcode 3: reserved
    (bytes([0x8B]) + frame(BINARY, b"x")[1:], 1002),  # opcode 0xB: reserved control
    (frame(0, b"orphan"), 1002),  # continuation with nothing to continue
    (frame(TEXT, "a", fin=0) + frame(BINARY, b"b"), 1002),  # a new message inside a fragmented one
    (frame(PING, b"x" * 126), 1002),  # control payloads are at most 125 bytes
    (frame(PING, b"x", fin=0), 1002),  # control frames are never fragmented
    (frame(CLOSE, b"\x03"), 1002),  # a 1-byte close payload
    (frame(CLOSE, (1005).to_bytes(2, "big")), 1002),  # a code that must never be sent
    (frame(CLOSE, (999).to_bytes(2, "big")), 1002),
    (frame(CLOSE, (1000).to_bytes(2, "big") + b"\xff"), 1007),
    (frame(TEXT, b"\xc3\x28"), 1007),
    (frame(TEXT, b"\xc3", fin=0) + frame(0, b"\x28"), 1007),
    (bytes([0x82, 0xFE, 0, 5]) + bytes(9), 1002),  # 16-bit length for 5 bytes
    (bytes([0x82, 0xFF]) + (300).to_bytes(8, "big") + bytes(304), 1002),  # 64-bit length for 300 bytes
    (bytes([0x82, 0xFF]) + (1 << 63).to_bytes(8, "big"), 1002),
])
def test_protocol_errors_carry_their_close_code(data, code):
    assert error_of(data) == code


def test_frames_before_an_error_in_the_same_read_still_come_out():
    reader = FrameReader()
    messages = reader.feed(frame(BINARY, b"ok") + frame(BINARY, b"x", mask=0))
    assert next(messages) == (BINARY, b"ok")
    with pytest.raises(FrameError):
        next(messages)


def test_a_failed_reader_refuses_everything_after():
    reader = FrameReader()
    assert error_of(frame(BINARY, b"x", mask=0), reader) == 1002
    assert error_of(frame(BINARY, b"fine"), reader) == 1002


def test_the_size_limit_is_checked_on_the_declared_length_before_the_payload_arrives():
    reader = FrameReader(max_message_bytes=1000)
    header = frame(BINARY, bytes(1001))[:8]  # 2 bytes, a 16-bit length, the mask key: no payload at all
    assert error_of(header, reader) == 1009


def test_the_size_limit_counts_the_whole_fragmented_message():
    reader = FrameReader(max_message_bytes=1000)
    assert read(reader, frame(BINARY, bytes(1000))) == [(BINARY, bytes(1000))]  # the limit itself is fine
    assert read(reader, frame(BINARY, bytes(600), fin=0)) == []
    assert error_of(frame(0, bytes(401))[:8], reader) == 1009


def test_the_two_unmask_implementations_agree():
    key = os.urandom(4)
    for size in (1, 3, 4, 5, 640, 1001):
        payload = os.urandom(size)
        expected = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        assert ws_frames._unmask_int(payload, key) == expected
        assert ws_frames.unmask(payload, key) == expected
        assert ws_frames.unmask(bytearray(payload), bytearray(key)) == expected


def test_a_caller_that_stops_reading_early_gets_the_rest_from_the_next_feed():
    reader = FrameReader()
    messages = reader.feed(frame(BINARY, b"one") + frame(BINARY, b"two") + frame(BINARY, b"thr"))
    assert next(messages) == (BINARY, b"one")
    messages.close()
    four = frame(BINARY, b"four")
    assert read(reader, four[:3]) == [(BINARY, b"two"), (BINARY, b"thr")]
    assert read(reader, four[3:]) == [(BINARY, b"four")]
