"""A web call over the browsers' WebSocket, driven as a page drives it: a conversation with the offline scripted
agent, barge-in, and every way a token or an origin is refused."""
import json

import pytest

from models import Call, CallEvent, Organization, WebhookDelivery
from pipeline.tokens import make_token
from webcall import tokens

from .conftest import (
    ANSWER,
    ANSWER_WORDS,
    CLOSING,
    QUESTION,
    REPROMPT,
    SECRET,
    PageCaller,
    closed_with,
    speech,
    start_web_call,
    wait_for,
)


def test_a_web_call_holds_a_conversation_and_is_stored_like_a_phone_call(web_client, auth, talk_agent, org):
    created = start_web_call(web_client, auth, talk_agent)
    call_id = created["call"]["id"]
    assert created["call"]["direction"] == "web" and created["call"]["status"] == "in-progress"
    assert created["websocket_url"].endswith(f"/talk/{call_id}?token={created['token']}")
    caller = PageCaller(created["websocket_url"])
    seen = caller.seen
    try:
        wait_for(lambda: caller.of_type("ready", call_id=call_id), state=seen)
        heard = caller.answer(QUESTION, speech(ANSWER))  # once greeting and question were heard whole
        assert set(heard["text"].split()) & ANSWER_WORDS, heard  # recognised by pocketsphinx
        wait_for(lambda: caller.of_type("ended"), timeout=60, state=seen)
        wait_for(lambda: caller.closed_code is not None, state=seen)
    finally:
        caller.close()
    assert caller.closed_code == 1000
    spoken = " ".join(m["text"] for m in caller.of_type("agent"))
    assert QUESTION in spoken and CLOSING in spoken and caller.heard_s() > 2
    assert not caller.of_type("clear")  # nobody talked over anybody
    call = wait_for(lambda: (c := Call.get_by_id(call_id)).status == "completed" and c)
    assert call.direction == "web" and call.answered_at is not None and call.hangup_cause == "NORMAL_CLEARING"
    lines = [(t["speaker"], t["text"]) for t in call.transcript]
    assert lines[0] == ("agent", f"Hello. {QUESTION}") and CLOSING in lines[-1][1]
    assert [text for speaker, text in lines if speaker == "caller"] == [heard["text"]]
    # Between them, only re-prompts (for an answer a loaded recogniser finished too late), maybe cut off.
    assert all(speaker == "agent" and REPROMPT.startswith(text) for speaker, text in lines[1:-2]), lines
    assert call.duration_s >= 3 and call.billed_minutes == 1
    assert Organization.get_by_id(org.id).minutes_used == 1
    ended = json.loads(WebhookDelivery.get(WebhookDelivery.call_id == call_id,
                                           WebhookDelivery.event_type == "call.ended").payload)
    assert ended["data"]["direction"] == "web" and ended["data"]["status"] == "completed"
    assert ended["data"]["transcript"] == call.transcript
    analyzed = wait_for(lambda: WebhookDelivery.get_or_none(WebhookDelivery.call_id == call_id,
                                                            WebhookDelivery.event_type == "call.analyzed"))
    assert json.loads(analyzed.payload)["data"]["answers"] == {"day": heard["text"]}
    reasons = [e.reason for e in CallEvent.select().where(CallEvent.call == call_id).order_by(CallEvent.id)]
    assert reasons[:2] == ["web call created", "browser connected"] and reasons[-1].startswith("agent ended")


def test_talking_over_the_agent_clears_the_pages_playback(web_client, auth, talk_agent):
    talk_agent.greeting = " ".join(["Hello and welcome to the booking line of the clinic."] * 4)
    talk_agent.save()
    created = start_web_call(web_client, auth, talk_agent)
    caller = PageCaller(created["websocket_url"])
    try:
        wait_for(lambda: caller.heard_s() > 2.5)  # well into the greeting
        caller.say(speech(ANSWER))
        wait_for(lambda: caller.of_type("clear"), timeout=60)
        wait_for(lambda: caller.of_type("turn", speaker="caller"), timeout=60)
    finally:
        caller.close()
    kinds = [m["type"] for m in caller.messages]
    assert kinds.index("clear") < kinds.index("turn")  # the page is told to stop before the caller's words land
    first = caller.of_type("turn")[0]
    assert (first["speaker"], first["interrupted"]) == ("agent", True)
    call = wait_for(lambda: (c := Call.get_by_id(created["call"]["id"])).status == "completed" and c)
    assert call.transcript[0]["interrupted"] is True and call.transcript[1]["speaker"] == "caller"


def test_the_page_hanging_up_ends_the_call_completed_and_billed(web_client, auth, talk_agent):
    created = start_web_call(web_client, auth, talk_agent)
    caller = PageCaller(created["websocket_url"])
    try:
        wait_for(lambda: caller.heard_s() > 1.5)  # words of the greeting have played
        caller.ws.send('{"type": "hangup"}')
        wait_for(lambda: caller.closed_code is not None)
    finally:
        caller.close()
    assert caller.closed_code == 1000
    call = wait_for(lambda: (c := Call.get_by_id(created["call"]["id"])).status == "completed" and c)
    assert call.billed_minutes == 1 and [(t["speaker"], t["interrupted"]) for t in call.transcript] == [
        ("agent", True)]  # what the caller heard of the greeting before hanging up
    assert CallEvent.get(CallEvent.call == call.id, CallEvent.to_status == "completed").reason == "the caller hung up"


def test_hanging_up_through_the_api_tells_the_page_and_ends_the_call(web_client, auth, talk_agent):
    created = start_web_call(web_client, auth, talk_agent)
    caller = PageCaller(created["websocket_url"])
    try:
        wait_for(lambda: caller.of_type("agent"))
        response = web_client.post(f"/v1/calls/{created['call']['id']}/hangup", headers=auth)
        assert response.status_code == 202 and response.get_json()["status"] == "completed"
        wait_for(lambda: caller.of_type("ended") and caller.closed_code is not None)
    finally:
        caller.close()
    assert caller.closed_code == 1000


def _token_for(web_client, auth, talk_agent):
    created = start_web_call(web_client, auth, talk_agent)
    return created, created["websocket_url"].split("?token=")[0]


@pytest.mark.parametrize(("make", "code"), [
    (lambda call_id, url, token: f"{url}?token={token[:-1]}{'1' if token.endswith('0') else '0'}",
     tokens.CLOSE_BAD_TOKEN),
    (lambda call_id, url, token: f"{url}?token=12.34", tokens.CLOSE_BAD_TOKEN),
    (lambda call_id, url, token: url, tokens.CLOSE_BAD_REQUEST),
    (lambda call_id, url, token: f"{url}?token={make_token(call_id, SECRET, 60)}", tokens.CLOSE_BAD_TOKEN),
    (lambda call_id, url, token: f"{url}?token={tokens.issue(call_id, SECRET, -5).token}", tokens.CLOSE_EXPIRED),
    (lambda call_id, url, token: f"{url}?token={tokens.issue(call_id, 'another-deployment-secret', 60).token}",
     tokens.CLOSE_BAD_TOKEN),
    (lambda call_id, url, token: url.replace(call_id, "not-this-call") + f"?token={token}", tokens.CLOSE_BAD_TOKEN),
], ids=["tampered", "malformed", "missing", "audio-fork-token", "expired", "other-secret", "other-call"])
def test_a_bad_token_is_closed_with_its_code_and_opens_nothing(web_client, auth, talk_agent, make, code):
    created, url = _token_for(web_client, auth, talk_agent)
    got, reason = closed_with(make(created["call"]["id"], url, created["token"]))
    assert got == code, reason
    call = Call.get_by_id(created["call"]["id"])
    assert call.answered_at is None and call.status == "in-progress"  # the real token still works
    caller = PageCaller(created["websocket_url"])
    try:
        wait_for(lambda: caller.of_type("ready"))
    finally:
        caller.close()


def test_a_token_opens_its_call_once(web_client, auth, talk_agent):
    created = start_web_call(web_client, auth, talk_agent)
    caller = PageCaller(created["websocket_url"])
    try:
        wait_for(lambda: caller.of_type("ready"))
        code, reason = closed_with(created["websocket_url"])
        assert (code, reason) == (tokens.CLOSE_USED, f"call {created['call']['id']}: token already used")
        assert not caller.of_type("ended")  # the first stream is untouched
    finally:
        caller.close()
    wait_for(lambda: Call.get_by_id(created["call"]["id"]).status == "completed")
    assert closed_with(created["websocket_url"])[0] == tokens.CLOSE_GONE  # the call is over


@pytest.mark.parametrize("origin", ["http://evil.test", "http://talk.test:8080", "https://talk.test", None])
def test_a_page_from_another_origin_is_refused_before_the_token_is_spent(web_client, auth, talk_agent, origin):
    created = start_web_call(web_client, auth, talk_agent)
    code, reason = closed_with(created["websocket_url"], origin=origin)
    assert code == tokens.CLOSE_ORIGIN and "not allowed" in reason
    assert Call.get_by_id(created["call"]["id"]).answered_at is None


def test_a_browser_that_never_sends_audio_leaves_a_failed_unbilled_call(web_client, auth, talk_agent, web_calls):
    from websockets.sync.client import connect

    from .conftest import ORIGIN

    web_calls.bridge.server.metadata_timeout = 0.5
    created = start_web_call(web_client, auth, talk_agent)
    with connect(created["websocket_url"], origin=ORIGIN) as ws:  # opened, and nothing sent
        wait_for(lambda: ws.protocol.close_rcvd is not None or Call.get_by_id(created["call"]["id"]).status == "failed")
    call = wait_for(lambda: (c := Call.get_by_id(created["call"]["id"])).status == "failed" and c)
    assert call.billed_minutes == 0 and call.failure_reason.startswith("the browser left before its audio started")
    assert WebhookDelivery.get(WebhookDelivery.call_id == call.id, WebhookDelivery.event_type == "call.ended")


def test_a_hang_up_before_the_start_message_starts_nothing(web_client, auth, talk_agent, web_calls):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    from .conftest import ORIGIN

    created = start_web_call(web_client, auth, talk_agent)
    with connect(created["websocket_url"], origin=ORIGIN) as ws:
        ws.send('{"type": "hangup"}')
        with pytest.raises(ConnectionClosed):
            while True:
                assert isinstance(ws.recv(timeout=10), str)  # no agent audio: no session ran
        assert ws.protocol.close_rcvd.code == 1000
    call = wait_for(lambda: (c := Call.get_by_id(created["call"]["id"])).status == "failed" and c)
    assert call.billed_minutes == 0 and not call.transcript and created["call"]["id"] not in web_calls.bridge.sessions


def test_after_its_own_close_the_page_stream_reads_only_the_pages_close():
    # The page keeps sending audio until it reads our close: that audio must not reach the (stopped) session,
    # and the page's close ends the stream without a second close frame from us.
    from pipeline.ws_frames import BINARY, CLOSE, PING
    from webcall.server import BrowserConnection

    class Session:
        ended, pushed, stopped = False, [], []

        def push_audio(self, pcm):
            self.pushed.append(pcm)

        def stop(self, why):
            self.stopped.append(why)
            self.ended = True

    conn = BrowserConnection.__new__(BrowserConnection)
    conn.closed, conn.call_id, conn.session, conn._closing = False, "c", Session(), True
    sent = []
    conn._send_message = sent.append
    conn._write = sent.append
    conn._on_frame(BINARY, bytes(640))
    conn._on_frame(PING, b"x")
    assert not conn.closed and sent == [] and conn.session.pushed == []
    conn._on_frame(CLOSE, (1000, ""))
    assert conn.closed and sent == [] and conn.session.stopped == ["the page closed (1000)"]
