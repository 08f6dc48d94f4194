"""The glue between calls and the voice pipeline: one audio WebSocket server, one Session per answered call.

The controller asks media_url(call) when a call is answered and hands it to uuid_audio_fork; mod_audio_fork
connects back, lookup() admits the stream only for a live call, and session_factory() builds the conversation
from the call's Agent (its settings: calls/agent_settings.py; its providers: calls/media_providers.py). Turns
land on Call.transcript as they happen; after the hang-up the call is analysed against the agent's analysis
schema and call.analyzed is written to the webhook outbox (calls/transcript.py).

Every callback can run in any greenlet (the session's reply greenlet, the socket's, the controller's event
greenlet), so database work goes through _connection(), which opens a connection only when the greenlet has
none and closes only what it opened (peewee's connection_context() would close an outer caller's connection).
Calls into the controller never happen on an ESL reader greenlet: on_dtmf / on_hangup hand off to new greenlets,
because the controller's ESL commands wait for replies that the reader greenlet itself must read.
"""
from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import gevent.pool
import phonenumbers

from calls import cross_instance
from calls.agent_settings import (
    AGENT_SETTING_CHOICES,
    AGENT_SETTINGS,
    AUDIO_RETURN_PLAYAUDIO,
    AUDIO_RETURN_STREAM,
    check_agent_settings,
    greeting_start,
    session_config,
    streams_audio,
)
from calls.call_variables import rendered_agent
from calls.machine_detection import after_detection, build_gate, policy_for
from calls.media_hooks import CallCommands, MediaHooks
from calls.media_providers import (
    AnalysisLLMFactory,
    MediaProviders,
    ProviderFactory,
    build_or_offline,
    record_provider_fallback,
    resilient_providers,
)
from calls.phone_text import plausible_phone_text
from calls.tools import prepare_customer_tool, press_keys, run_customer_tool
from calls.transcript import analyze, record_turn
from config import Config
from models import LIVE_STATUSES, Agent, Call, database
from observability.context import in_context
from observability.metrics import observe_turn, provider_labels
from pipeline.frames import Frame, TurnRecord
from pipeline.providers import LLM, agent_llm_settings, build_llm, build_stt, build_tts
from pipeline.providers.registry import OFFLINE, agent_provider_settings
from pipeline.server import AudioForkServer, StreamInfo
from pipeline.session import FAILURES as SESSION_FAILURES
from pipeline.session import Session, SessionCallbacks, SessionConfig
from pipeline.tokens import audio_fork_url

log = logging.getLogger(__name__)

TOKEN_GRACE_S = 300  # on top of the originate timeout: the URL may be made before the callee picks up
ANALYSIS_TIMEOUT_S = 120.0
SESSION_STOP_WAIT_S = 5.0  # a stop under way elsewhere records the cut-off turn within this (a few writes)


@contextlib.contextmanager
def _connection() -> Iterator[None]:
    """A database connection for this greenlet, closed afterwards only if it was opened here."""
    opened = database.is_closed()
    if opened:
        database.connect()
    try:
        yield
    finally:
        if opened:
            database.close()


def _load(model: Any, row_id: str) -> Any:
    with _connection():
        return model.get_or_none(model.id == row_id)


def _with_connection(fn: Callable[..., Any], *args: Any) -> Any:
    with _connection():
        return fn(*args)


class MediaBridge(MediaHooks):
    """MediaHooks for the CallController plus the audio WebSocket server and the per-call sessions."""
    streams_calls = True

    def __init__(self, config: Config, controller: CallCommands | None = None, *,
                 providers: ProviderFactory | None = None, analysis_llm: AnalysisLLMFactory | None = None,
                 listen: str | None = None, public_url: str | None = None,
                 server_class: type[AudioForkServer] = AudioForkServer, secret: str | None = None) -> None:
        """listen, public_url, server_class and secret default to the audio fork's (AUDIO_WS_*, MEDIA_TOKEN_SECRET);
        the browsers' server (webcall/) passes its own."""
        self.config = config
        self.controller = controller
        self.build_providers: ProviderFactory = providers or self._registry_providers
        self.analysis_llm: AnalysisLLMFactory = analysis_llm or self._registry_analysis_llm
        secret = secret or getattr(config, "media_token_secret", "") or ""
        if secret and len(secret.encode()) < 16:
            raise ValueError("MEDIA_TOKEN_SECRET must be at least 16 bytes")
        # Empty: a random secret per process, so URLs from another process (or an older one) are refused.
        self._secret = secret or secrets.token_hex(32)
        self._listen = str(listen or config.audio_ws_listen)
        host, _, port = self._listen.rpartition(":")
        self.server = server_class(self.session_factory, self.lookup, self._secret, host or "127.0.0.1", int(port),
                                   on_start_failed=self.session_failed, call_is_live=self.call_is_live)
        self.public_url = str(public_url or config.audio_ws_public_url).rstrip("/")
        self.token_ttl_s = float(getattr(config, "originate_timeout_s", 60)) + TOKEN_GRACE_S
        self.sessions: dict[str, Session] = {}
        self._answered_here: set[str] = set()
        self._work = gevent.pool.Group()  # callbacks' database writes, controller calls, analyses in flight

    def _shielded(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run fn in a greenlet of its own and wait for its result.

        The session kills its ticker and reply greenlets when it stops, and the server kills its handlers when
        it shuts down; a greenlet killed in the middle of a query leaves a PostgreSQL connection busy for good
        (and an ESL command half-sent). Killing the waiter here leaves the work to finish cleanly, and stop()
        waits for it.
        """
        return self._work.spawn(in_context(fn), *args).get()

    def __repr__(self) -> str:  # never show the secret
        return f"MediaBridge({self.public_url!r})"

    def attach(self, controller: CallCommands) -> None:
        """The controller and the bridge reference each other: construct one, then attach the other."""
        self.controller = controller

    def start(self) -> None:
        self.server.start()
        if self._listen.endswith(":0"):
            # An ephemeral port (tests, the demo): the configured public URL cannot know it.
            host, port = self.server.address
            self.public_url = f"ws://{host}:{port}"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and every session, then let in-flight writes and analyses finish (bounded)."""
        self.server.stop()
        for session in list(self.sessions.values()):
            session.stop("media bridge stopping")
        if not self._work.join(timeout=timeout):
            log.warning("media bridge stopped with %d task(s) still running", len(self._work))

    # ---- MediaHooks (called by the controller) -------------------------------------------------------------
    def media_url(self, call: Call) -> str | None:
        return audio_fork_url(self.public_url, call.id, self._secret, self.token_ttl_s)

    def streams_audio(self, call: Call) -> bool:
        """Whether the call's agent streams its voice (audio_return "stream", the default): the controller then
        starts a bidirectional fork."""
        if call.agent_id is None:
            return False
        agent = _load(Agent, call.agent_id)
        return agent is not None and streams_audio(agent.settings)

    def on_dtmf(self, call_id: str, digit: str) -> None:
        session = self.sessions.get(call_id)
        if session is not None:
            self._work.spawn(in_context(session.push_dtmf), digit)

    def on_hangup(self, call_id: str) -> None:
        """The attempt ended: stop the conversation, then analyse the call (in a greenlet of its own)."""
        self._work.spawn(in_context(self.finish_call), call_id)

    def end_session(self, call_id: str) -> None:
        """Stop the call's conversation now, recording an agent turn the hang-up cut off (synchronous).

        For the controller to call before it writes call.ended, so that webhook carries the complete
        transcript; it makes no controller call itself, so any greenlet may call it."""
        session = self.sessions.get(call_id)
        if session is not None and session.ended:  # maybe being stopped right now by its stream closing:
            session.wait_stopped(SESSION_STOP_WAIT_S)  # call.ended must not be written before the turn is
        elif session is not None:
            with _connection():
                session.stop("call hung up")

    def release(self, call_id: str) -> None:
        """The call hung up on a node another instance drives: free its session here without analysing it
        (the driving instance analyses the call, once; calls/cross_instance.py)."""
        self.sessions.pop(call_id, None)
        self._answered_here.discard(call_id)
        for connection in list(self.server.connections):
            if connection.call_id == call_id:
                connection.shutdown("call hung up")

    def finish_call(self, call_id: str) -> None:
        session = self.sessions.pop(call_id, None)
        streamed = call_id in self._answered_here
        self._answered_here.discard(call_id)
        try:
            with _connection():
                if session is not None:
                    session.stop("call hung up")  # records a cut-off agent turn before the analysis reads it
                for connection in list(self.server.connections):
                    if connection.call_id == call_id:  # FreeSWITCH closes it too; do not wait on the idle timeout
                        connection.shutdown("call hung up")
                with gevent.Timeout(ANALYSIS_TIMEOUT_S):
                    self.analyze(call_id, streamed)
        except gevent.Timeout:
            log.warning("call %s: post-call analysis timed out", call_id)
        except Exception:
            log.exception("call %s: post-call analysis failed", call_id)

    # ---- the audio server's hooks ------------------------------------------------------------------------
    def lookup(self, call_id: str) -> Call | None:
        """The Call behind a stream: only a live call with an agent, and only one stream per call at a time."""
        call = self._shielded(_load, Call, call_id)
        if call is None or call.status not in LIVE_STATUSES or call.agent_id is None:
            return None
        current = self.sessions.get(call_id)
        if current is not None and not current.ended:
            log.warning("call %s: refusing a second audio stream while one is running", call_id)
            return None
        return call

    def call_is_live(self, call_id: str) -> bool:
        """Whether a stream that has been quiet a while still belongs to a call that is up (silence on the wire)."""
        call = self._shielded(_load, Call, call_id)
        return call is not None and call.status in LIVE_STATUSES

    def session_factory(self, info: StreamInfo, send: Callable[[Frame], None]) -> Session:
        call: Call = info.call
        agent = self._shielded(_load, Agent, call.agent_id)
        if agent is None:
            raise LookupError(f"call {call.id}: its agent is gone")
        agent = self._shielded(_with_connection, rendered_agent, agent, call)  # {{variables}} filled in
        providers = self.build_providers(agent, info)
        if info.metadata.get("narrowband") is True and hasattr(providers.stt, "narrowband_leg"):
            providers.stt.narrowband_leg = True  # a G.711 leg streamed at 16k: the recognizer fills its top band
        config = session_config(agent, call, info.sample_rate, float(self.config.max_call_duration_s),
                                float(getattr(self.config, "provider_timeout_s", SessionConfig.provider_timeout)))
        callbacks = self._callbacks(call.id, config.bidirectional,
                                    provider_labels(providers.stt, providers.llm, providers.tts))

        def make_session(answered_by: str | None = None) -> Session:
            chosen = config if answered_by is None else after_detection(config, answered_by)
            return Session(chosen, providers.stt, providers.llm, providers.tts, send, callbacks,
                           sample_rate=info.sample_rate, vad=providers.vad)

        policy, _retry = policy_for(agent.settings, call)
        session = make_session() if policy.mode == "off" else build_gate(
            call.id, policy, info.sample_rate, make_session, send, providers.tts, callbacks.on_turn,
            callbacks.end_call, stt=providers.stt if getattr(self.config, "amd_words", True) else None)
        self.sessions[call.id] = session
        self._answered_here.add(call.id)
        if cross_instance.session_is_remote(self.controller, call):  # the owner waits for its end (hang-up)
            self._shielded(_with_connection, cross_instance.note_remote_session, call, "started")
        return session

    def session_failed(self, info: StreamInfo, reason: str) -> None:
        """The server could not start this call's session (even on offline providers): hang the call up
        rather than leave the caller in silence. Runs in a greenlet of its own (never the socket's)."""
        current = self.sessions.get(info.call_id)
        if current is not None and not current.ended:
            current.stop(reason)
        self.sessions.pop(info.call_id, None)
        self._work.spawn(in_context(self._control), info.call_id, "fail", f"voice pipeline could not start: {reason}")

    def _registry_providers(self, agent: Agent, info: StreamInfo) -> MediaProviders:
        """The agent's providers by name; keys come from the deployment's Config, never from the agent.

        A provider that cannot be built here (no key, unknown name, missing SDK) is replaced by the offline
        one, so the call still has a voice; only when the offline one fails too does this raise.
        """
        settings = agent_provider_settings(agent)
        call_id = getattr(getattr(info, "call", None), "id", "?")

        def record(kind: str) -> Callable[[str], None]:
            return lambda why: record_provider_fallback(call_id, kind, why)

        def record_later(kind: str, why: str) -> None:  # mid-call: off the audio path
            self._work.spawn(in_context(record_provider_fallback), call_id, kind, why)

        stt = build_or_offline(build_stt, settings["stt"], self.config, call_id, record("stt"))
        llm = build_or_offline(build_llm, settings["llm"], self.config, call_id, record("llm"))
        tts = build_or_offline(build_tts, settings["tts"], self.config, call_id, record("tts"))
        offline_tts = build_tts(None, self.config) if tts.name != OFFLINE["tts"] else None
        llm, tts = resilient_providers(llm, tts, offline_tts, record_later)
        return MediaProviders(stt=stt, llm=llm, tts=tts)

    def _registry_analysis_llm(self, agent: Agent) -> LLM:
        # Unwrapped: analyze_call recognises the scripted agent by its answers() method.
        return build_llm(agent_llm_settings(agent), self.config)

    # ---- session callbacks -----------------------------------------------------------------------------------
    def _callbacks(self, call_id: str, streamed: bool = False,
                   providers: dict[str, str] | None = None) -> SessionCallbacks:
        # A streamed voice is cut by the killAudio the session sends (it also ends the silence playback the
        # controller re-arms); a uuid_break on top would break, or with `all` flush, that re-armed playback.
        break_playback = (lambda: None) if streamed else (lambda: self._shielded(self._control, call_id, "break"))
        return SessionCallbacks(
            on_turn=lambda turn: self._on_turn(call_id, turn, providers),
            break_playback=break_playback,
            end_call=lambda reason: self._shielded(self._session_ended_call, call_id, reason),
            transfer_call=lambda destination, reason: self._shielded(self.transfer, call_id, destination, reason),
            run_tool=lambda name, arguments: self._shielded(self.run_tool, call_id, name, arguments),
            send_dtmf=lambda digits: self._shielded(self.send_dtmf, call_id, digits),
        )

    def run_tool(self, call_id: str, name: str, arguments: dict) -> Any:
        with _connection():
            prepared = prepare_customer_tool(call_id, name)
        allow_private = bool(getattr(self.config, "webhook_allow_private", False))  # the webhooks' SSRF rule
        return run_customer_tool(prepared, name, arguments, allow_private)

    def send_dtmf(self, call_id: str, digits: str) -> bool:
        with _connection():
            return press_keys(self.controller, call_id, digits)

    def _session_ended_call(self, call_id: str, reason: str) -> None:
        """The session hangs up. When the pipeline broke before the agent said a word (its voice never worked),
        nobody was served: the call ends failed with the reason, unbilled, like a session that never started."""
        with _connection():
            call = Call.get_or_none(Call.id == call_id)
            spoke = call is not None and any(t.get("speaker") == "agent" for t in call.transcript or [])
        if reason in SESSION_FAILURES and not spoke:
            self._control(call_id, "fail", f"voice pipeline failed before the agent spoke: {reason}")
        else:
            self._control(call_id, "hangup", f"agent ended the call: {reason}")

    def _on_turn(self, call_id: str, turn: TurnRecord, providers: dict[str, str] | None) -> None:
        if providers is not None:
            observe_turn(turn.latency, providers)
        self._shielded(self.record_turn, call_id, turn)

    def record_turn(self, call_id: str, turn: TurnRecord) -> None:
        """Append one turn to Call.transcript (calls/transcript.py)."""
        with _connection():
            record_turn(call_id, turn)

    def _control(self, call_id: str, action: str, reason: str = "") -> None:
        controller = self.controller
        if controller is None:
            log.warning("call %s: %s requested but no call controller is attached", call_id, action)
            return
        with _connection():
            if action == "break":
                controller.break_playback(call_id)
                return
            call = Call.get_or_none(Call.id == call_id)
            if call is not None and call.status in LIVE_STATUSES:
                # "fail": the call could not be served (ends failed, unbilled); "hangup": the agent ended it.
                controller.hangup(call, reason[:200], **({"unserved": True} if action == "fail" else {}))

    def transfer(self, call_id: str, destination: str, reason: str = "") -> bool:
        """The agent's transfer tool: only a valid phone number (E.164 after parsing) reaches the controller."""
        target = e164(destination, getattr(self.config, "default_region", "US"))
        if target is None or self.controller is None:
            log.warning("call %s: transfer refused (%s)", call_id,
                        "invalid destination" if target is None else "no call controller")
            return False
        try:
            with _connection():
                call = Call.get_or_none(Call.id == call_id)
                if call is None or call.status not in LIVE_STATUSES:
                    return False
                result = self.controller.transfer(call, target, "bridge")
        except Exception as exc:
            log.warning("call %s: transfer to %s failed: %s", call_id, target, exc)
            return False
        # Only a plain success counts: False, None or an -ERR reply leave the agent on the call to apologise.
        accepted = result is True or (isinstance(result, str) and result.startswith("+OK"))
        if not accepted:
            log.warning("call %s: transfer to %s not accepted (%r)", call_id, target, result)
        return accepted

    # ---- post-call analysis --------------------------------------------------------------------------------
    def analyze(self, call_id: str, streamed: bool = True) -> dict | None:
        """The post-call analysis (calls/transcript.py analyze): the webhook data, or None."""
        return analyze(call_id, self.analysis_llm, streamed)


def e164(destination: str, region: str = "US") -> str | None:
    """A transfer destination as E.164, or None unless it parses as a valid phone number."""
    if not isinstance(destination, str) or not 2 <= len(destination) <= 32 or not plausible_phone_text(destination):
        return None
    try:
        number = phonenumbers.parse(destination, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# The agent's settings, the providers and the transcript moved to their own modules (calls/agent_settings.py,
# calls/media_providers.py, calls/transcript.py); these names are still importable from here.
__all__ = ["AGENT_SETTINGS", "AGENT_SETTING_CHOICES", "AUDIO_RETURN_PLAYAUDIO", "AUDIO_RETURN_STREAM",
           "AnalysisLLMFactory", "MediaBridge", "MediaProviders", "ProviderFactory", "check_agent_settings", "e164",
           "greeting_start", "record_provider_fallback", "resilient_providers", "session_config", "streams_audio"]
