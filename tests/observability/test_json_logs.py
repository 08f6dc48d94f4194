"""LOG_FORMAT=json: every line parses, carries the call id of the work that wrote it, and holds no secret."""
import io
import json
import logging
import uuid

import gevent
import pytest
import websocket

from config import ConfigError, load_config
from models import Call, WebhookDelivery
from observability.context import call_context, current_call_id, spawn
from observability.logs import QUIET_LOGGERS, JsonFormatter, configure_logging
from pipeline.clock import REAL_CLOCK
from pipeline.fakes import EnergyVAD, FakeLLM, FakeSTT, FakeTTS, say
from pipeline.server import AudioForkServer
from pipeline.session import Session, SessionConfig
from pipeline.tokens import make_token
from webhooks import enqueue
from webhooks.delivery import DeliveryWorker

from ..webhooks.receiver import Receiver

SECRET = "test-secret-0123456789abcdef"


@pytest.fixture
def json_lines():
    """LOG_LEVEL=DEBUG LOG_FORMAT=json as the app configures it; yields a function reading the lines written."""
    stream = io.StringIO()
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *QUIET_LOGGERS)}
    handler = configure_logging("DEBUG", "json", stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_lines_parse_and_carry_the_call_id_into_greenlets_spawned_for_the_call(json_lines):
    call_id = str(uuid.uuid4())
    log = logging.getLogger("test.calls")
    with call_context(call_id):
        log.info("dialing %s", "+14155550123")
        spawn(log.warning, "from a greenlet of the call").join()
        gevent.spawn(log.warning, "from an unrelated greenlet").join()  # started without the call's context
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("failed")
    log.info("outside")
    with call_context("not-a-call-id\n{}"):  # never logged as a call id: only UUIDs are
        log.info("odd")
    lines = json_lines()
    by_message = {line["message"]: line for line in lines}
    assert set(lines[0]) == {"time", "level", "logger", "message", "call_id"}
    assert by_message["dialing +14155550123"]["call_id"] == call_id
    assert by_message["from a greenlet of the call"]["call_id"] == call_id
    assert by_message["from an unrelated greenlet"]["call_id"] is None
    assert by_message["failed"]["call_id"] == call_id and "RuntimeError: boom" in by_message["failed"]["exception"]
    assert by_message["outside"]["call_id"] is None and by_message["odd"]["call_id"] is None
    assert current_call_id() is None


def test_log_format_is_read_once_and_checked():
    assert load_config({}).log_format == "text"
    assert load_config({"LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ConfigError, match="LOG_FORMAT: must be text or json"):
        load_config({"LOG_FORMAT": "xml"})


def test_configure_logging_installs_one_json_handler_and_replaces_only_its_own():
    root = logging.getLogger()
    before = list(root.handlers)
    level, quiet = root.level, logging.getLogger("peewee").level
    try:
        configure_logging("INFO", "json")
        handler = configure_logging("WARNING", "json")
        ours = [h for h in root.handlers if getattr(h, "voxbridge", False)]
        assert ours == [handler] and isinstance(handler.formatter, JsonFormatter)
        assert all(h in root.handlers for h in before) and root.level == logging.WARNING
        configure_logging("DEBUG", "text")
        assert logging.getLogger("peewee").getEffectiveLevel() == logging.INFO  # its queries carry secrets
    finally:
        logging.getLogger("peewee").setLevel(quiet)
        for h in [h for h in root.handlers if getattr(h, "voxbridge", False)]:
            root.removeHandler(h)
        root.setLevel(level)


def test_a_calls_audio_stream_and_its_reply_greenlets_log_with_its_call_id(json_lines):
    """The socket's greenlet learns the call id; the session's reply greenlet (spawned from it) logs with it."""
    call_id = str(uuid.uuid4())
    done = []

    def factory(info, send):
        clock = REAL_CLOCK
        tts = FakeTTS(clock, latency=0.0, ms_per_word=10, fail_on="Hello")  # the greeting fails: a warning
        session = Session(SessionConfig(greeting="Hello there."), FakeSTT(clock), FakeLLM(clock, [say("Hi.")]),
                          tts, send, vad=EnergyVAD())
        done.append(session)
        return session

    server = AudioForkServer(factory, lambda cid: {"id": cid} if cid == call_id else None, SECRET)
    server.start()
    try:
        token = make_token(call_id, SECRET, 60)
        ws = websocket.create_connection(f"ws://127.0.0.1:{server.address[1]}/audio/{call_id}?token={token}",
                                         subprotocols=["audio.drachtio.org"], timeout=5)
        ws.send(json.dumps({"sampleRate": 16000}))
        with gevent.Timeout(10, AssertionError("the session never logged its TTS failure")):
            while not any("TTS failed" in line["message"] for line in json_lines()):
                ws.send_binary(bytes(640))
                gevent.sleep(0.02)
        ws.close()
    finally:
        server.stop(timeout=2)
    lines = json_lines()
    failed = next(line for line in lines if "TTS failed" in line["message"])
    assert failed["logger"] == "pipeline.session" and failed["call_id"] == call_id
    opened = next(line for line in lines if "audio stream open" in line["message"])
    assert opened["call_id"] == call_id


def test_api_keys_and_webhook_secrets_never_reach_json_logs(json_lines, client, org, api_key, config):
    """Keys sent (good, revoked-looking, malformed) and a signed webhook that fails: logged, but no secret."""
    client.get("/v1/calls", headers={"Authorization": f"Bearer {api_key}"})
    client.get("/v1/calls", headers={"Authorization": f"Bearer {api_key[:-4]}zzzz"})
    client.get("/v1/calls", headers={"Authorization": "Bearer vb_live_" + "0" * 12 + "_nope"})
    call = Call.create(organization=org, direction="outbound", to_number="+14155550123")
    with Receiver([500]) as receiver:
        org.webhook_url = receiver.url
        org.save()
        enqueue(org, "call.ended", {"id": call.id}, call=call)
        worker = DeliveryWorker(allow_private=True, max_attempts=1)
        worker.run_once()
    assert receiver.received and WebhookDelivery.get(WebhookDelivery.call_id == call.id).status == "failed"
    logging.getLogger("voxbridge").info("settings %s", load_config(
        {"METRICS_TOKEN": "metrics-token-0123456789", "OPENAI_API_KEY": "sk-live-123"}).redacted())
    lines = json_lines()
    gave_up = [line for line in lines if "gave up" in line["message"]]
    assert gave_up and gave_up[0]["call_id"] == call.id  # the delivery logs under its call
    text = "\n".join(json.dumps(line) for line in lines)
    for secret in (api_key, api_key[len("vb_live_") + 13:], org.webhook_secret, "metrics-token-0123456789",
                   "sk-live-123"):
        assert secret not in text
    assert any(line["logger"] == "urllib3.connectionpool" for line in lines)  # DEBUG lines were written
