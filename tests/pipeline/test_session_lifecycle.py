"""A call that hangs up while its session is still starting leaves nothing behind.

The STT stream can take seconds to open (pocketsphinx's shared pool loads its models on first use); the
caller may hang up, or the server stop, in that window. Whatever start() opened must then be closed, and
the pool's processes must neither be killed by one call nor outlive the pool.
"""
import gevent
import gevent.event

from pipeline.clock import VirtualClock
from pipeline.fakes import EnergyVAD, FakeLLM, FakeSTT, FakeTTS
from pipeline.providers.pocketsphinx_pool import RecognizerPool
from pipeline.providers.pocketsphinx_stt import PocketsphinxSTT
from pipeline.session import Session, SessionCallbacks, SessionConfig


class SlowOpeningSTT(FakeSTT):
    """open() blocks until released, like a decoder process that is still loading its model."""

    def __init__(self, clock):
        super().__init__(clock)
        self.release = gevent.event.Event()

    def open(self, sample_rate, on_result=None):
        self.release.wait(5)
        return super().open(sample_rate, on_result)


def _session(stt, sent):
    clock = VirtualClock()
    callbacks = SessionCallbacks(on_turn=lambda turn: None, break_playback=lambda: None,
                                 end_call=lambda reason: None, transfer_call=lambda dest, reason: True)
    return Session(SessionConfig(greeting="Hello"), stt, FakeLLM(clock, []), FakeTTS(clock), sent.append,
                   callbacks, clock=clock, vad=EnergyVAD())


def test_stop_during_start_closes_the_stream_start_opened_and_speaks_nothing():
    stt = SlowOpeningSTT(VirtualClock())
    sent = []
    session = _session(stt, sent)
    starting = gevent.spawn(session.start)
    gevent.sleep(0.01)
    session.stop("caller hung up")  # while open() is still blocked
    stt.release.set()
    starting.join(2)
    gevent.sleep(0.01)  # the close runs in its own greenlet
    assert starting.successful()
    assert [s.closed for s in stt.streams] == [True]
    assert sent == []  # no greeting after the call ended
    assert session._ticker is None


def test_opener_killed_while_the_pool_starts_leaves_the_pool_whole_and_close_reaps_it(monkeypatch):
    # The decoders live in a shared pool, not in the stream: a call that hangs up while the pool is still
    # loading its models must not kill or orphan the pool's processes; closing the pool reaps them all.
    procs = []
    real_popen = gevent.subprocess.Popen

    def recording_popen(*args, **kwargs):
        proc = real_popen(*args, **kwargs)
        procs.append(proc)
        return proc

    monkeypatch.setattr("pipeline.providers.pocketsphinx_pool.subprocess.Popen", recording_popen)
    pool = RecognizerPool(size=1, decoders=1)
    opening = gevent.spawn(PocketsphinxSTT(pool=pool).open, 16000)
    with gevent.Timeout(30, AssertionError("the decoder process was never started")):
        while not procs:
            gevent.sleep(0.01)
    assert procs[0].poll() is None and not opening.dead
    opening.kill(block=True, timeout=5)
    assert procs[0].poll() is None  # still loading its model for the next call
    stream = PocketsphinxSTT(pool=pool).open(16000)  # the next call gets it, no second process
    assert len(procs) == 1 and stream.worker.proc is procs[0]
    pool.close()
    assert procs[0].poll() is not None  # killed or exited, and waited for: not left running
    assert procs[0].stdout.closed and procs[0].stdin.closed


def test_server_stop_ends_a_handler_whose_session_is_still_starting():
    import websocket

    from pipeline.server import AudioForkServer
    from pipeline.tokens import make_token

    secret = "lifecycle-secret-0123456789"
    started, release = gevent.event.Event(), gevent.event.Event()

    class StuckSession:
        ended = False

        def start(self):
            started.set()
            release.wait(30)  # a decoder that never becomes ready

        def stop(self, reason="closed"):
            self.ended = True

    server = AudioForkServer(lambda info, send: StuckSession(), lambda call_id: {"id": call_id}, secret)
    server.start()
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{server.address[1]}/audio/call-1?token={make_token('call-1', secret, 60)}",
        subprotocols=["audio.drachtio.org"], timeout=5)
    ws.send('{"callId":"call-1"}')
    assert started.wait(5)
    server.stop(timeout=0.2)
    assert server.connections == set()  # the stuck handler was killed and cleaned up, not left running
    ws.close()
