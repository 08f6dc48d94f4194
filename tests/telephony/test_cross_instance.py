"""Two call controllers on one simulator, as two app instances would be: `owner` owns the node's events, `other`
owns none (calls/ownership.py). A call dialed, or an inbound socket accepted, by the instance that does not own
the node is driven by the owner from the row; the other instance's memory of it is released at the hang-up.
(tests/telephony/test_scaleout.py runs the same with real processes on PostgreSQL.)"""
import contextlib

import pytest

from calls.controller import CallController
from calls.dispatcher import Dispatcher
from calls.nodes import NodePool
from calls.ownership import OwnAll
from models import Call, Organization, WebhookDelivery

from .conftest import wait_for
from .test_inbound_calls import desk, socket_address  # noqa: F401 - the fixture is used by name


class OwnsNothing:
    """Another instance holds every node's lock."""

    def owns(self, node_name: str) -> bool:
        return False

    def owned(self) -> list[str]:
        return []

    def start(self, on_acquired, on_lost) -> None:
        pass

    def stop(self) -> None:
        pass

    def wait_first_pass(self, timeout=None) -> bool:
        return True


@contextlib.contextmanager
def _controller(config, ownership):
    from calls.controller import AUDIO_FORK_SUBCLASSES, SUBSCRIBED_EVENTS

    pool = NodePool(config.esl_nodes, config.esl_password, timeout_s=config.esl_command_timeout_s,
                    events=SUBSCRIBED_EVENTS, subclasses=AUDIO_FORK_SUBCLASSES)
    control = CallController(config, pool, ownership=ownership(pool.nodes))
    control.start()
    try:
        assert pool.wait_ready(30)
        wait_for(lambda: control.reconciled, timeout=30)
        yield control
    finally:
        control.stop()


@pytest.fixture
def pair(db, telephony_config):
    with _controller(telephony_config, OwnAll) as owner, \
            _controller(telephony_config, lambda nodes: OwnsNothing()) as other:
        yield owner, other


def _ended(call_id: str) -> int:
    return WebhookDelivery.select().where(WebhookDelivery.call_id == call_id,
                                          WebhookDelivery.event_type == "call.ended").count()


def test_an_inbound_socket_on_the_non_owner_is_driven_by_the_owner(pair, sim, desk, org):  # noqa: F811
    owner, other = pair
    channel = sim.inbound_call("+14155550100", socket_address(other), caller="+442071838750")
    call = wait_for(lambda: (c := Call.get_or_none(Call.id == channel.uuid)) and c.status == "in-progress" and c)
    assert call.node in owner.pool.nodes
    assert channel.uuid in owner.live  # adopted from the row on its first event
    assert channel.uuid in other.live  # the socket is held there
    sim.hangup_far_end(channel.uuid)
    done = wait_for(lambda: (c := Call.get_by_id(channel.uuid)).status == "completed" and c)
    assert done.billed_minutes == 1
    wait_for(lambda: channel.uuid not in other.live and channel.uuid not in owner.live)
    assert _ended(channel.uuid) == 1
    assert Organization.get_by_id(org.id).minutes_used == 1


def test_a_call_dialed_by_the_non_owner_is_driven_by_the_owner_and_hung_up_from_either(pair, sim, caller_org,
                                                                                        outbound_agent):
    from tests.calls.factories import queued_calls

    owner, other = pair
    ids = queued_calls(caller_org, outbound_agent, 2, from_number="+14155550000")
    Dispatcher(other).run_once()  # the non-owner claims and dials them
    wait_for(lambda: all(Call.get_by_id(i).status == "in-progress" for i in ids))
    assert all(i in owner.live for i in ids)
    wait_for(lambda: not any(i in other.live for i in ids))  # released once the originate's job returned
    other.hangup(Call.get_by_id(ids[0]), "hung up through the API")
    owner.hangup(Call.get_by_id(ids[1]), "hung up through the API")
    wait_for(lambda: all(Call.get_by_id(i).status == "completed" for i in ids))
    assert [_ended(i) for i in ids] == [1, 1]
    assert len(list(sim.switch.originated)) == 2  # each dialed once
