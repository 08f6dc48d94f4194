"""calls/nodes.py: the one node-choice layer picks the least loaded live node with room, reserving calls."""


from calls.nodes import NodePool
from tests.esl.fakeserver import FakeEsl
from tests.esl.test_supervisor import _heartbeat, _until


class _HostPort:
    def __init__(self, port: int):
        self.host, self.port = "127.0.0.1", port


def test_pool_picks_least_loaded_live_node():
    servers = [FakeEsl().start() for _ in range(3)]
    pool = NodePool([_HostPort(s.port) for s in servers], "ClueCon", backoff_initial=0.05, backoff_max=0.1).start()
    nodes = list(pool.nodes.values())
    try:
        for node in nodes:
            assert node.supervisor.wait_ready(30)
        for srv, (sessions, maximum) in zip(servers, [(50, 100), (10, 100), (30, 40)], strict=True):
            srv.push(_heartbeat(sessions, maximum))
        _until(lambda: all(n.supervisor.load.max_sessions for n in nodes))
        assert pool.pick() is nodes[1]
        # Reservations count until the next heartbeat: 59 more calls fill nodes 0 and 1 evenly, never node 2.
        picks = [pool.pick() for _ in range(59)]
        assert nodes[2] not in picks
        assert [n.supervisor.load.reserved for n in nodes] == [10, 50, 0]  # both at 60/100
        assert pool.capacity() == 40 + 40 + 10
        # A dead node is never picked.
        nodes[0].supervisor.connection.close()
        assert nodes[0] not in pool.live()
        assert pool.pick(reserve=False) is nodes[1]
        servers[2].push(_heartbeat(40, 40))  # full
        nodes[1].supervisor.connection.close()
        _until(lambda: nodes[2].supervisor.load.session_count == 40)
        assert pool.pick() is None
    finally:
        pool.stop()
        for srv in servers:
            srv.stop()
