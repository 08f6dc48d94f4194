"""Every VoxBridge setting, read once from the environment (and .env), typed and validated.

The process refuses to start on a bad value: `load_config` collects every problem and raises
one ConfigError that names each variable, so an operator fixes a .env in one pass.
"""
from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlparse


class ConfigError(ValueError):
    """One or more settings are invalid; the message lists every one."""


@dataclass(frozen=True)
class EslNode:
    host: str
    port: int

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"


def _str(value: str) -> str:
    return value.strip()


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:  # int()'s own message ("invalid literal for int() with base 10") names no range
            raise ValueError(f"must be a whole number between {lo} and {hi}") from None
        if not lo <= number <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return number

    return parse


def _float_range(lo: float, hi: float) -> Callable[[str], float]:
    def parse(value: str) -> float:
        number = float(value)
        if not lo <= number <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return number

    return parse


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


_HOST_RE = re.compile(r"^[A-Za-z0-9.\-]{1,253}$|^\[?[0-9A-Fa-f:]+\]?$")


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.strip().rpartition(":")
    if not sep or not _HOST_RE.match(host):
        raise ValueError("must be host:port")
    return host.strip("[]"), _int_range(0, 65535)(port)  # 0: an ephemeral port (tests)


_SIP_HEADER = re.compile(r"X-(?!FS-)(?:[A-Za-z0-9][A-Za-z0-9-]{0,60})?\*?", re.IGNORECASE)


def _sip_headers(value: str) -> tuple[str, ...]:
    """X- header names (a trailing * allows every header starting so), as sofia puts them on a channel."""
    names = tuple(filter(None, (item.strip() for item in value.split(","))))
    for name in names:
        if not _SIP_HEADER.fullmatch(name) or name.upper() == "X-":
            raise ValueError(f"{name[:70]!r} is not an X- header name such as X-Customer-Id or X-Acme-* "
                             "(sofia passes on only X- headers, never X-FS-)")
    return names


def _region(value: str) -> str:
    value = value.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", value):
        raise ValueError("must be an ISO 3166 alpha-2 region such as US or GB")
    return value


def _database_url(value: str) -> str:
    scheme = urlparse(value).scheme
    if scheme not in ("sqlite", "postgresql", "postgres", "postgresext"):
        raise ValueError("must start with sqlite:/// or postgresql://")
    return value


def _ws_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("ws", "wss") or not parsed.hostname:
        raise ValueError("must be a ws:// or wss:// URL")
    return value.rstrip("/")


def _origins(value: str) -> tuple[str, ...]:
    """A comma-separated list of browser origins (scheme://host[:port], no path), as the Origin header sends them."""
    origins = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        parsed = urlparse(item)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path not in ("", "/") \
                or parsed.query or parsed.params or parsed.fragment or parsed.username or parsed.password:
            raise ValueError(f"{item!r} is not an origin such as https://app.example.com")
        origins.append(f"{parsed.scheme}://{parsed.netloc.lower()}")
    return tuple(origins)


def _log_level(value: str) -> str:
    value = value.strip().upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return value


def _session_secret(value: str) -> str:
    value = value.strip()
    if value and (len(value) < 32 or not re.fullmatch(r"[\x21-\x7e]+", value)):
        raise ValueError("must be at least 32 printable characters without spaces (or empty: random per process)")
    return value


def _choice(*words: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        value = value.strip().lower()
        if value not in words:
            raise ValueError(f"must be {' or '.join(words)}")
        return value

    return parse


def _networks(value: str) -> tuple:
    """Comma-separated CIDR networks (a bare address is a /32 or /128)."""
    networks = []
    for part in filter(None, (p.strip() for p in value.split(","))):
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not a network such as 10.0.0.0/8 or ::1/128") from None
    return tuple(networks)


def _setting(env: str, default: str, parse: Callable[[str], Any], doc: str, secret: bool = False) -> Any:
    return field(default=None, metadata={"env": env, "default": default, "parse": parse, "doc": doc,
                                         "secret": secret})


@dataclass(frozen=True)
class Config:
    database_url: str = _setting("DATABASE_URL", "sqlite:///var/voxbridge.db", _database_url,
                                 "PostgreSQL (postgresql://user:pass@host/db) or SQLite URL")
    database_pool_size: int = _setting("DATABASE_POOL_SIZE", "40", _int_range(1, 1000),
                                       "PostgreSQL connections each API process may hold (its pool also serves its "
                                       "dispatcher, webhooks and call control)")
    database_max_connections: int = _setting("DATABASE_MAX_CONNECTIONS", "100", _int_range(1, 1_000_000),
                                             "Connections the PostgreSQL server gives the app (its max_connections); "
                                             "API_WORKERS x DATABASE_POOL_SIZE must fit or the app refuses to start")
    api_host: str = _setting("API_HOST", "127.0.0.1", _str, "Address the REST API listens on")
    api_port: int = _setting("API_PORT", "8080", _int_range(0, 65535), "Port of the REST API")
    api_workers: int = _setting("API_WORKERS", "1", _int_range(1, 64),
                                "Processes serving the API (PostgreSQL only), each a whole instance (dispatch, "
                                "dialing, call control; one owns each node's events at a time)")
    api_public_url: str = _setting("API_PUBLIC_URL", "", _str, "Public base URL of the API (docs, links)")
    default_region: str = _setting("DEFAULT_REGION", "US", _region,
                                   "Region for numbers written without a + country code")
    max_body_bytes: int = _setting("MAX_BODY_BYTES", "8388608", _int_range(1024, 1 << 30),
                                   "Largest accepted request body (413 beyond)")
    rate_limit_per_minute: int = _setting("RATE_LIMIT_PER_MINUTE", "1200", _int_range(1, 10_000_000),
                                          "Requests per minute per API key (429 beyond)")
    api_key_cache_s: float = _setting("API_KEY_CACHE_SECONDS", "2", _float_range(0, 60),
                                      "Seconds an authenticated key is remembered (revocation delay)")
    esl_hosts: str = _setting("FREESWITCH_ESL_HOST", "", _str,
                              "FreeSWITCH node(s): host or host:port, comma-separated. Empty = telephony off")
    esl_port: int = _setting("FREESWITCH_ESL_PORT", "8021", _int_range(1, 65535), "Default ESL port")
    esl_password: str = _setting("FREESWITCH_ESL_PASSWORD", "", _str, "ESL password", secret=True)
    esl_command_timeout_s: float = _setting("FREESWITCH_ESL_TIMEOUT", "5", _float_range(0.1, 120),
                                            "Timeout of every ESL command, seconds")
    socket_address: str = _setting("VOXBRIDGE_SOCKET_ADDRESS", "127.0.0.1:8084", _str,
                                   "host:port of the app's outbound-socket server (dialplan `socket`)")
    socket_public_address: str = _setting("VOXBRIDGE_SOCKET_PUBLIC_ADDRESS", "", _str,
                                          "host:port FreeSWITCH is told to connect its sockets to, when that is "
                                          "not VOXBRIDGE_SOCKET_ADDRESS (a load balancer in front of several "
                                          "instances; empty = VOXBRIDGE_SOCKET_ADDRESS)")
    audio_ws_listen: str = _setting("AUDIO_WS_LISTEN", "127.0.0.1:8085", _str,
                                    "host:port the mod_audio_fork WebSocket server listens on")
    audio_ws_public_url: str = _setting("AUDIO_WS_PUBLIC_URL", "ws://127.0.0.1:8085", _ws_url,
                                        "ws:// URL FreeSWITCH uses to reach the audio WebSocket server")
    voice_pipeline: bool = _setting("VOICE_PIPELINE", "true", _bool,
                                    "Stream answered calls to this process's voice pipeline (false: call "
                                    "control only)")
    media_token_secret: str = _setting("MEDIA_TOKEN_SECRET", "", _str,
                                       "Secret signing audio-stream URLs (random per process when empty)",
                                       secret=True)
    web_calls: bool = _setting("WEB_CALLS", "true", _bool,
                               "Talk to agents from a browser (POST /v1/agents/{id}/web-calls, the /talk page): "
                               "serve the browsers' audio WebSocket in this process")
    web_call_listen: str = _setting("WEB_CALL_LISTEN", "127.0.0.1:8086", _str,
                                    "host:port the browsers' audio WebSocket server listens on")
    web_call_public_url: str = _setting("WEB_CALL_PUBLIC_URL", "ws://127.0.0.1:8086", _ws_url,
                                        "ws:// or wss:// URL browsers reach that server at (behind a TLS proxy: "
                                        "wss://)")
    web_call_allowed_origins: tuple = _setting("WEB_CALL_ALLOWED_ORIGINS", "", _origins,
                                               "Origins (https://app.example.com, comma-separated) whose pages may "
                                               "open a web call's audio WebSocket; empty: API_PUBLIC_URL's origin and "
                                               "http://127.0.0.1 / http://localhost on API_PORT")
    web_call_token_ttl_s: int = _setting("WEB_CALL_TOKEN_TTL", "60", _int_range(5, 600),
                                         "Seconds a web call's single-use token may wait for the browser to connect")
    outbound_context: str = _setting("OUTBOUND_CONTEXT", "voxbridge_outbound", _str,
                                     "Dialplan context outbound calls are routed through")
    outbound_gateway: str = _setting("OUTBOUND_GATEWAY", "", _str,
                                     "Gateway for outbound calls when the organization has no trunk")
    international_calls: bool = _setting("INTERNATIONAL_CALLS", "false", _bool,
                                         "Allow outbound calls and transfers outside DEFAULT_REGION's country (every "
                                         "path: default, gateway, trunk, transfer)")
    originate_timeout_s: int = _setting("ORIGINATE_TIMEOUT", "30", _int_range(5, 300),
                                        "Seconds an outbound call may ring")
    max_concurrent_calls: int = _setting("MAX_CONCURRENT_CALLS", "200", _int_range(1, 100_000),
                                         "Live calls across the platform")
    org_max_concurrent_calls: int = _setting("ORG_MAX_CONCURRENT_CALLS", "50", _int_range(1, 100_000),
                                             "Live calls per organization")
    calls_per_second: float = _setting("CALLS_PER_SECOND", "10", _float_range(0.01, 10_000),
                                       "Originate rate (the trunk's CPS)")
    max_call_duration_s: int = _setting("MAX_CALL_DURATION", "3600", _int_range(30, 86_400),
                                        "Watchdog: longest call before it is hung up")
    media_connect_timeout_s: float = _setting("MEDIA_CONNECT_TIMEOUT", "10", _float_range(0, 300),
                                              "Seconds an answered call waits for its agent's audio stream to "
                                              "connect; past that it is hung up and ends failed, unbilled "
                                              "(unserved) instead of staying in dead air; 0 = no limit")
    provider_timeout_s: float = _setting("PROVIDER_TIMEOUT", "5", _float_range(1, 30),
                                         "Longest dead air (s) from the caller's turn to the agent's audio before "
                                         "it apologises (per agent: settings.provider_timeout_s)")
    amd_words: bool = _setting("AMD_WORDS", "true", _bool,
                               "Answering-machine detection also listens to the words (\"leave a message\"...) "
                               "through the call's own STT; false: cadence and beep only (bench/bench_amd.py)")
    stt_pool_workers: int = _setting("STT_POOL_WORKERS", "0", _int_range(0, 256),
                                     "Processes of the offline recognizer pool (pocketsphinx), each loading the "
                                     "model once (~90 MiB) and serving many calls; 0 = the usable cores divided "
                                     "among the API_WORKERS instances (at least 1 each)")
    stt_pool_search: str = _setting("STT_POOL_SEARCH", "bounded", _choice("wide", "bounded", "narrow"),
                                    "The offline recognizer's search: bounded (at most 3,000 active HMMs a "
                                    "frame: half the CPU of wide at the same word error rate), wide (no cap), "
                                    "or narrow (tighter beams too: a third of wide's CPU, a few more word errors; "
                                    "bench/bench_offline_calls.py, bench/bench_stt_wer.py)")
    tts_cache_mb: int = _setting("TTS_CACHE_MB", "32", _int_range(0, 4096),
                                 "Megabytes of synthesized speech the offline TTS (espeak) keeps per process, "
                                 "least recently used dropped first: a scripted agent's repeated sentences are "
                                 "synthesized once; 0 = no cache")
    dispatch_interval_s: float = _setting("DISPATCH_INTERVAL", "0.5", _float_range(0.01, 60),
                                          "Seconds between queue polls while nothing can be dialed (due calls "
                                          "are paced by `CALLS_PER_SECOND`, not by this)")
    retry_backoff_s: int = _setting("RETRY_BACKOFF", "60", _int_range(0, 86_400),
                                    "First retry delay; doubles per attempt")
    webhook_allow_private: bool = _setting("WEBHOOK_ALLOW_PRIVATE", "false", _bool,
                                           "Allow webhooks to private/loopback addresses (tests, demos)")
    webhook_timeout_s: float = _setting("WEBHOOK_TIMEOUT", "10", _float_range(0.1, 120),
                                        "Connect/read timeout of one webhook POST; a delivery trying the "
                                        "target's addresses ends within 3x this")
    webhook_max_attempts: int = _setting("WEBHOOK_MAX_ATTEMPTS", "12", _int_range(1, 100),
                                         "Deliveries tried before giving up (30 s doubling, 4 h cap: 12 span ~12 h)")
    webhook_secret_overlap_s: int = _setting("WEBHOOK_SECRET_OVERLAP_SECONDS", "86400", _int_range(0, 30 * 86_400),
                                             "After a signing-secret rotation, seconds deliveries are also "
                                             "signed with the old secret")
    inbound_sip_headers: tuple = _setting("INBOUND_SIP_HEADERS", "", _sip_headers,
                                          "X- headers of inbound INVITEs that become call variables (comma-separated; "
                                          "X-Acme-* allows a prefix): X-Customer-Id -> {{x_customer_id}}")
    inbound_webhook_timeout_s: float = _setting("INBOUND_WEBHOOK_TIMEOUT", "2", _float_range(0.1, 10),
                                                "Longest wait (s) for an organization's inbound webhook before the "
                                                "call is answered with the defaults")
    sip_secret_key: str = _setting("SIP_SECRET_KEY", "", _str,
                                   "Fernet key encrypting stored SIP passwords", secret=True)
    sip_domain: str = _setting("SIP_DOMAIN", "sip.voxbridge.local:5080", _str,
                               "host:port customers' PBXs send INVITEs to")
    sip_outbound_addresses: str = _setting("SIP_OUTBOUND_ADDRESSES", "127.0.0.1", _str,
                                           "Addresses our SIP traffic leaves from (for PBX allow-lists)")
    freeswitch_conf_dir: str = _setting("FREESWITCH_CONF_DIR", "freeswitch", _str,
                                        "FreeSWITCH configuration directory generated XML is written to")
    deepgram_api_key: str = _setting("DEEPGRAM_API_KEY", "", _str, "Deepgram key (agents with stt.provider=deepgram)",
                                     secret=True)
    deepgram_base_url: str = _setting("DEEPGRAM_BASE_URL", "", _str, "Deepgram endpoint override (wss://...)")
    openai_api_key: str = _setting("OPENAI_API_KEY", "", _str, "Key of the OpenAI-compatible LLM endpoint",
                                   secret=True)
    openai_base_url: str = _setting("OPENAI_BASE_URL", "", _str,
                                    "OpenAI-compatible base URL (OpenAI, Groq, vLLM, Ollama...)")
    llm_model: str = _setting("LLM_MODEL", "", _str, "Default chat model for agents with llm.provider=openai")
    elevenlabs_api_key: str = _setting("ELEVENLABS_API_KEY", "", _str, "ElevenLabs key (tts.provider=elevenlabs)",
                                       secret=True)
    elevenlabs_base_url: str = _setting("ELEVENLABS_BASE_URL", "", _str, "ElevenLabs endpoint override")
    transfer_context: str = _setting("TRANSFER_CONTEXT", "voxbridge_transfer", _str,
                                     "Dialplan context bridge transfers are sent to")
    recordings_dir: str = _setting("RECORDINGS_DIR", "var/recordings", _str,
                                   "Where FreeSWITCH writes call recordings (agents with settings.record); "
                                   "GET /v1/calls/{id}/recording serves them from here")
    s3_endpoint_url: str = _setting("S3_ENDPOINT_URL", "", _str,
                                    "S3-compatible endpoint (https://s3.eu-west-1.amazonaws.com, http://minio:9000) "
                                    "recordings are moved to; empty = they stay in RECORDINGS_DIR")
    s3_bucket: str = _setting("S3_BUCKET", "", _str, "Bucket for recordings (required with S3_ENDPOINT_URL)")
    s3_region: str = _setting("S3_REGION", "us-east-1", _str, "Region the S3 requests are signed for")
    s3_access_key_id: str = _setting("S3_ACCESS_KEY_ID", "", _str, "Access key id for S3_ENDPOINT_URL")
    s3_secret_access_key: str = _setting("S3_SECRET_ACCESS_KEY", "", _str, "Secret key for S3_ENDPOINT_URL",
                                         secret=True)
    console_secret_key: str = _setting("CONSOLE_SECRET_KEY", "", _session_secret,
                                       "Key signing the web console's session cookies, 32+ characters (random "
                                       "at each start when empty: sign-ins end at restart)", secret=True)
    console_secure_cookies: bool = _setting("CONSOLE_SECURE_COOKIES", "false", _bool,
                                            "Console cookies only over https (on by itself when API_PUBLIC_URL "
                                            "is https://)")
    console_session_hours: int = _setting("CONSOLE_SESSION_HOURS", "12", _int_range(1, 24 * 30),
                                          "Hours a console sign-in lasts")
    console_sign_in_attempts: int = _setting("CONSOLE_SIGN_IN_ATTEMPTS", "5", _int_range(1, 1000),
                                             "Failed console sign-ins allowed per email and client address in "
                                             "15 minutes (then 429)")
    log_level: str = _setting("LOG_LEVEL", "INFO", _log_level, "Logging level")
    log_format: str = _setting("LOG_FORMAT", "text", _choice("text", "json"),
                               "Log lines as text, or as JSON lines carrying the call id (docs/observability.md)")
    metrics_token: str = _setting("METRICS_TOKEN", "", _str,
                                  "Bearer token GET /metrics requires (16+ characters). Empty: /metrics answers "
                                  "only clients in METRICS_ALLOW_FROM", secret=True)
    metrics_allow_from: tuple = _setting("METRICS_ALLOW_FROM", "127.0.0.1/32,::1/128", _networks,
                                         "Networks (CIDR, comma-separated) /metrics answers without a token when "
                                         "METRICS_TOKEN is empty; empty: nobody")
    prometheus_multiproc_dir: str = _setting("PROMETHEUS_MULTIPROC_DIR", "", _str,
                                             "Directory the processes share metrics through (API_WORKERS > 1; "
                                             "emptied at start). Unset with API_WORKERS > 1: a private one is made")

    @property
    def telephony_configured(self) -> bool:
        return bool(self.esl_hosts)

    @property
    def console_cookies_secure(self) -> bool:
        return self.console_secure_cookies or self.api_public_url.lower().startswith("https://")

    @property
    def socket_target(self) -> str:
        """host:port FreeSWITCH's `socket` application connects to (the dialplan's and every originate's)."""
        return self.socket_public_address or self.socket_address

    @property
    def esl_nodes(self) -> list[EslNode]:
        nodes = []
        for item in filter(None, (part.strip() for part in self.esl_hosts.split(","))):
            if ":" in item and not item.startswith("["):
                host, port = _host_port(item)
            else:
                host, port = item, self.esl_port
            nodes.append(EslNode(host, port))
        return nodes

    @property
    def web_call_origins(self) -> tuple[str, ...]:
        """The origins allowed to open a web call's audio WebSocket (WEB_CALL_ALLOWED_ORIGINS or its default)."""
        if self.web_call_allowed_origins:
            return self.web_call_allowed_origins
        defaults = [f"http://127.0.0.1:{self.api_port}", f"http://localhost:{self.api_port}"]
        public = urlparse(self.api_public_url)
        if public.scheme in ("http", "https") and public.hostname:
            defaults.insert(0, f"{public.scheme}://{public.netloc.lower()}")
        return tuple(defaults)

    def redacted(self) -> dict[str, Any]:
        """Settings safe to log: secrets are reduced to whether they are set."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.metadata["env"]] = ("set" if value else "unset") if f.metadata["secret"] else value
        return out


def _check_derived(config: Config, problems: list[str]) -> None:
    try:
        for node in config.esl_nodes:
            if not _HOST_RE.match(node.host):
                raise ValueError(node.host)
    except ValueError as exc:
        problems.append(f"FREESWITCH_ESL_HOST: must be host or host:port, comma-separated ({exc})")
    for env, value in (("VOXBRIDGE_SOCKET_ADDRESS", config.socket_address),
                       ("AUDIO_WS_LISTEN", config.audio_ws_listen), ("WEB_CALL_LISTEN", config.web_call_listen)):
        try:
            _host_port(value)
        except ValueError as exc:
            problems.append(f"{env}: {exc} (got {value!r})")
    if config.socket_public_address:
        try:
            _host_port(config.socket_public_address)
        except ValueError as exc:
            problems.append(f"VOXBRIDGE_SOCKET_PUBLIC_ADDRESS: {exc} (got {config.socket_public_address!r})")
    if config.telephony_configured and not config.esl_password:
        problems.append("FREESWITCH_ESL_PASSWORD: required when FREESWITCH_ESL_HOST is set")
    elif config.esl_password and not re.fullmatch(r"[A-Za-z0-9!#%&+./:=?@_~-]{1,128}", config.esl_password):
        # It travels in the `auth` line of the Event Socket protocol: no spaces or line breaks.
        problems.append("FREESWITCH_ESL_PASSWORD: use letters, digits and !#%&+./:=?@_~- only")
    if not re.fullmatch(r"[A-Za-z0-9_./-]{1,200}", config.recordings_dir) or ".." in config.recordings_dir:
        problems.append("RECORDINGS_DIR: a path of letters, digits, _ . / - without ..")
    _check_s3(config, problems)
    _check_metrics(config, problems)
    if config.api_workers > 1 and config.database_url.startswith("sqlite"):
        problems.append("API_WORKERS: more than one worker needs PostgreSQL (SQLite has one writer)")
    _check_connections(config, problems)
    for env, value in (("OUTBOUND_CONTEXT", config.outbound_context), ("TRANSFER_CONTEXT", config.transfer_context)):
        if not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", value):
            problems.append(f"{env}: letters, digits, _ and - only")
    if config.outbound_gateway and not re.fullmatch(r"[A-Za-z0-9_\-.]{1,64}", config.outbound_gateway):
        problems.append("OUTBOUND_GATEWAY: letters, digits, _, - and . only")


def _check_metrics(config: Config, problems: list[str]) -> None:
    if config.metrics_token and not re.fullmatch(r"[A-Za-z0-9._~+/=-]{16,256}", config.metrics_token):
        # It is compared with an Authorization header: printable, no spaces, long enough not to be guessed.
        problems.append("METRICS_TOKEN: 16 to 256 letters, digits and ._~+/=- (or empty)")
    directory = config.prometheus_multiproc_dir
    if directory and not (os.path.isdir(directory) and os.access(directory, os.W_OK)):
        problems.append("PROMETHEUS_MULTIPROC_DIR: must be an existing directory this process can write")


def _check_connections(config: Config, problems: list[str]) -> None:
    """Every process opens its own pool: together they must fit the server's connection limit, or
    requests fail under load with "sorry, too many clients already"."""
    if not config.database_url.startswith("postgres"):
        return  # SQLite: one process, no pool
    needed = config.api_workers * config.database_pool_size
    if needed > config.database_max_connections:
        problems.append(f"DATABASE_POOL_SIZE: API_WORKERS={config.api_workers} processes x DATABASE_POOL_SIZE="
                        f"{config.database_pool_size} = {needed} connections, more than DATABASE_MAX_CONNECTIONS="
                        f"{config.database_max_connections}; lower either, or raise PostgreSQL's max_connections "
                        "and DATABASE_MAX_CONNECTIONS with it")


def _check_s3(config: Config, problems: list[str]) -> None:
    if not config.s3_endpoint_url:
        return
    parsed = urlparse(config.s3_endpoint_url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path.strip("/") or parsed.query:
        problems.append("S3_ENDPOINT_URL: an http(s) URL of the endpoint alone, such as http://minio:9000")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", config.s3_bucket):
        problems.append("S3_BUCKET: required with S3_ENDPOINT_URL; 3-63 lowercase letters, digits, . and -")
    if not re.fullmatch(r"[a-z0-9-]{1,40}", config.s3_region):
        problems.append("S3_REGION: lowercase letters, digits and - (us-east-1)")
    if not config.s3_access_key_id or not config.s3_secret_access_key:
        problems.append("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY: required with S3_ENDPOINT_URL")


def load_config(env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
    """Read every setting from `env` (default: os.environ); raise ConfigError listing bad values."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    problems: list[str] = []
    for f in fields(Config):
        if f.name in overrides:
            values[f.name] = overrides[f.name]
            continue
        raw = env.get(f.metadata["env"], f.metadata["default"])
        try:
            values[f.name] = f.metadata["parse"](raw)
        except ValueError as exc:
            shown = "***" if f.metadata["secret"] else repr(raw)
            problems.append(f"{f.metadata['env']}: {exc} (got {shown})")
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    config = Config(**values)
    _check_derived(config, problems)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return config


def settings_table() -> str:
    """The README's table of variables, generated so it never drifts from the code."""
    rows = ["| variable | default | what |", "|---|---|---|"]
    for f in fields(Config):
        meta = f.metadata
        default = "(secret)" if meta["secret"] else (meta["default"] or "(empty)")
        rows.append(f"| `{meta['env']}` | `{default}` | {meta['doc']} |")
    return "\n".join(rows)
