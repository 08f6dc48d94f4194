"""Inbound calls: the dialplan's `socket` application reaches the app, which admits and answers."""
import pytest

from models import Agent, Call, CallEvent, PhoneNumber

from .conftest import wait_for


@pytest.fixture
def desk(org):
    agent = Agent.create(organization=org, name="Desk", direction="inbound", greeting="Hello")
    PhoneNumber.create(organization=org, number="+14155550100", agent=agent)
    return agent


def socket_address(controller):
    return f"127.0.0.1:{controller.socket_server.port}"


def test_call_to_an_owned_number_is_answered_by_its_agent(controller, sim, desk, org):
    channel = sim.inbound_call("+14155550100", socket_address(controller), caller="+442071838750")
    call = wait_for(lambda: (c := Call.get_or_none(Call.id == channel.uuid)) and c.status == "in-progress" and c)
    assert (call.direction, call.agent_id, call.organization_id) == ("inbound", desk.id, org.id)
    assert call.from_number == "+442071838750"
    sim.hangup_far_end(channel.uuid)
    done = wait_for(lambda: (c := Call.get_by_id(channel.uuid)).status == "completed" and c)
    assert done.hangup_cause == "NORMAL_CLEARING" and done.billed_minutes == 1
    # The app closes its lingering socket once the call is over, so the switch can destroy the session:
    # `linger` keeps a hung-up session (and its channel row) for as long as the socket stays open.
    assert wait_for(lambda: channel.uuid not in sim.switch.held and not controller.socket_server.sessions)


def test_unknown_number_is_rejected_with_its_cause(controller, sim, desk):
    channel = sim.inbound_call("+14155550199", socket_address(controller), caller="+14155550123")
    call = wait_for(lambda: Call.get_or_none(Call.id == channel.uuid))
    assert (call.status, call.hangup_cause) == ("failed", "UNALLOCATED_NUMBER")
    wait_for(lambda: sim.channel(channel.uuid) is None or sim.channel(channel.uuid).hangup_cause)
    assert CallEvent.select().where(CallEvent.call == call.id).count() == 1


def test_a_socket_that_arrives_after_its_outbound_call_ended_is_closed_and_holds_no_slot(controller, sim, desk, org,
                                                                                        outbound_agent):
    # An '&socket' outbound call whose far end hangs up while the socket app is starting: its socket reaches the
    # app after the hang-up was handled. It was admitted as "an inbound call already decided" and registered,
    # and its LiveCall kept the organization's concurrency slot for good (the organization stopped dialing).
    ended = Call.create(organization=org, agent=outbound_agent, direction="outbound", to_number="+14155550100",
                        status="completed", attempt=1, hangup_cause="NORMAL_CLEARING")
    channel = sim.inbound_call("+14155550100", socket_address(controller), uuid=ended.id)
    wait_for(lambda: channel.hangup_cause)   # the app closed the socket unanswered: the switch hung up
    assert channel.answered_us == 0
    assert ended.id not in controller.live and org.id not in controller.limits.per_org
    after = Call.get_by_id(ended.id)
    assert (after.direction, after.status, Call.select().count()) == ("outbound", "completed", 1)


def test_no_active_inbound_agent_is_rejected(controller, sim, desk):
    desk.active = False
    desk.save()
    channel = sim.inbound_call("+14155550100", socket_address(controller))
    call = wait_for(lambda: Call.get_or_none(Call.id == channel.uuid))
    assert call.hangup_cause == "NO_ROUTE_DESTINATION" and call.status == "failed"


def test_with_two_nodes_on_one_host_an_inbound_call_is_driven_by_the_node_it_came_from(db, sim, telephony_env,
                                                                                     desk):
    """Both simulators are 127.0.0.1: the peer address cannot tell them apart, their Core-UUIDs can."""
    from config import load_config
    from fssim import Simulator

    from .conftest import RULES, running_controller

    second = Simulator("127.0.0.1", 0, "s3cret-esl", rules=RULES, heartbeat_interval=1.0).start()
    try:
        env = {**telephony_env, "FREESWITCH_ESL_HOST": f"127.0.0.1:{sim.port},127.0.0.1:{second.port}"}
        with running_controller(load_config(env, webhook_allow_private=True)) as control:
            nodes = list(control.pool.nodes.values())
            wait_for(lambda: all(node.core_uuid for node in nodes))   # learned from each node's events
            assert {node.core_uuid for node in nodes} == {sim.switch.core_uuid, second.switch.core_uuid}
            channel = second.inbound_call("+14155550100", socket_address(control), caller="+442071838750")
            call = wait_for(lambda: (c := Call.get_or_none(Call.id == channel.uuid)) and c.status == "in-progress"
                            and c)
            owner = next(node for node in nodes if node.core_uuid == second.switch.core_uuid)
            assert call.node == owner.name and control.live[call.id].node == owner.name
            assert control.hangup(call) is None                        # the kill goes to the node with the channel
            done = wait_for(lambda: (c := Call.get_by_id(channel.uuid)).status == "completed" and c)
            assert second.channel(channel.uuid) is None and done.hangup_cause is not None
    finally:
        second.stop()
