"""What a claimed call goes through before its originate slot (calls/dialer.py prepare), end to end through the
simulator: the slot only sends, and the question "is a channel for this call still up?" is asked only where one can
be."""
from calls.dispatcher import Dispatcher
from models import Call, CallEvent

from .conftest import commands_received, wait_for
from .test_outbound_calls import queue_call

ANSWERS = "+14155550302"
STILL_UP = "a channel for this call is still up; not dialing again"


def _client(control):
    from api import create_app

    return create_app(control.config, call_control=control).test_client()


def test_a_first_attempt_asks_the_switch_nothing_before_its_originate(received, controller, sim, caller_org,
                                                                      outbound_agent, auth):
    # No originate has carried the call's uuid yet, so no channel can have it: a uuid_exists round trip would only
    # delay the slot.
    call_id = queue_call(_client(controller), auth, ANSWERS)
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "in-progress")
    sent = commands_received(received)
    assert any(c.startswith("bgapi originate") and call_id in c for c in sent)
    assert not [c for c in sent if "uuid_exists" in c]


def test_a_retry_whose_channel_is_still_up_on_its_node_is_not_dialed_again(received, controller, sim, caller_org,
                                                                           outbound_agent):
    import gevent

    from tests.calls.factories import queued_calls

    node = next(iter(controller.pool.nodes))
    # As after a lost reply: the attempt was requeued, and its channel lives on on the node written before it left.
    [call_id] = queued_calls(caller_org, outbound_agent, 1, from_number="+14155550000", to_number=ANSWERS,
                             attempt=1, max_attempts=3, node=node)
    gevent.spawn(sim.switch.originate, f"{{origination_uuid={call_id}}}sofia/gateway/carrier1/{ANSWERS}", None)
    wait_for(lambda: call_id in sim.switch.channels)
    Dispatcher(controller).run_once()
    # The attempt ends unsent; its retry waits for the backoff (by then the old channel has usually gone).
    wait_for(lambda: CallEvent.select().where(CallEvent.call == call_id, CallEvent.reason.contains(STILL_UP)).exists())
    assert Call.get_by_id(call_id).status in ("queued", "failed")
    sent = commands_received(received)
    assert f"api uuid_exists {call_id}" in sent
    assert not [c for c in sent if c.startswith("bgapi originate")]
    assert len(sim.switch.originated) == 1  # only the channel the test made
    assert call_id not in controller.live and controller.live.limits.live == {}


def test_an_originate_the_dropped_connection_never_sent_goes_back_to_the_queue_unspent(controller, sim, caller_org,
                                                                                       outbound_agent, monkeypatch):
    from esl.errors import EslNotConnected
    from tests.calls.factories import queued_calls

    [call_id] = queued_calls(caller_org, outbound_agent, 1, from_number="+14155550000", to_number=ANSWERS,
                             max_attempts=1)
    node = next(iter(controller.pool.nodes.values()))

    def not_connected(command, timeout=None):
        raise EslNotConnected(f"{node.name}: bgapi not sent, connection is reconnecting")

    monkeypatch.setattr(node, "bgapi", not_connected)
    Dispatcher(controller).run_once()
    wait_for(lambda: Call.get_by_id(call_id).status == "queued")
    call = Call.get_by_id(call_id)
    assert call.attempt == 0 and call.next_attempt_at > call.created_at  # its only attempt is still to come
    assert CallEvent.select().where(CallEvent.call == call_id, CallEvent.reason.contains("connection dropped")).exists()
    assert call_id not in controller.live and controller.live.limits.live == {}
    assert list(sim.switch.originated) == []


def test_an_organization_at_its_limit_dials_its_next_call_as_soon_as_one_ends(controller, sim, caller_org,
                                                                             outbound_agent):
    # Decided from events: the dispatcher's idle poll is an hour, so only a call's end can start the next pass.
    # The wake must come after the ended call's row is written: the claim counts live calls in the database.
    from tests.calls.factories import queued_calls

    caller_org.max_concurrent_calls = 1
    caller_org.save()
    ids = queued_calls(caller_org, outbound_agent, 3, from_number="+14155550000", to_number="+14155550100")
    dispatcher = Dispatcher(controller, interval_s=3600)
    dispatcher.start()
    try:
        assert wait_for(lambda: Call.select().where(Call.id.in_(ids), Call.status == "completed").count() == 3,
                        timeout=30)
    finally:
        dispatcher.stop(timeout=30)
    assert len(sim.switch.originated) == 3


def test_a_retry_whose_node_cannot_say_if_its_channel_is_up_waits_unspent(controller, sim, caller_org,
                                                                          outbound_agent, monkeypatch):
    from esl.errors import EslTimeout
    from tests.calls.factories import queued_calls

    node = next(iter(controller.pool.nodes.values()))
    [call_id] = queued_calls(caller_org, outbound_agent, 1, from_number="+14155550000", to_number=ANSWERS,
                             attempt=1, max_attempts=2, node=node.name)

    def no_answer(command, timeout=None):
        raise EslTimeout(f"{node.name}: no reply to {command}")

    monkeypatch.setattr(node, "api", no_answer)
    Dispatcher(controller).run_once()
    call = Call.get_by_id(call_id)
    assert call.status == "queued" and call.attempt == 1  # its second attempt is still to come
    assert list(sim.switch.originated) == []
    assert call_id not in controller.live
