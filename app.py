"""VoxBridge entry point: reads configuration, opens the database and composes the services.

    python app.py migrate                      create or upgrade the schema
    python app.py create-org NAME [--minutes N] [--webhook-url URL] [--caller-id E164] [--email E [--password P]]
                                               create an organization and print its first API key; with
                                               --email also its first console user (a one-time sign-in link
                                               is printed unless --password is given)
    python app.py add-user ORG --email E [--password P]  another console user for ORG
    python app.py issue-key ORG [--name NAME]  another API key for ORG (id or name), printed once
    python app.py list-orgs                    organizations: id, name, usage, keys (never a secret)
    python app.py revoke-key PREFIX --org ORG  revoke the key whose prefix (vb_live_<prefix>_...) is given
    python app.py serve                        API, dispatcher and webhook worker in one gevent process
    python app.py check-config                 lint freeswitch/ and dialplan/ (file:line messages)
    python app.py demo                         one whole call offline, transcript and webhooks printed
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import gevent.socket  # noqa: E402
import peewee  # noqa: E402
from dotenv import find_dotenv, load_dotenv  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

from api import create_app  # noqa: E402
from calls.dispatcher import Dispatcher  # noqa: E402
from config import Config, ConfigError, load_config  # noqa: E402
from console.cli import check_user_args, console_url, create_user  # noqa: E402
from models import Agent, ApiKey, Organization, database, migrate, open_database  # noqa: E402
from models.tenancy import name_key  # noqa: E402
from observability.logs import configure_logging  # noqa: E402
from observability.metrics import use_multiprocess_dir  # noqa: E402
from startup_heap import freeze_startup_heap  # noqa: E402
from webhooks.delivery import DeliveryWorker  # noqa: E402

log = logging.getLogger("voxbridge")


def _setup(config: Config) -> None:
    configure_logging(config.log_level, config.log_format)
    open_database(config.database_url, config.database_pool_size)


def cmd_migrate(config: Config, _args: argparse.Namespace) -> int:
    applied = migrate()
    print(f"schema up to date (applied: {applied or 'nothing'})")
    return 0


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def _org_settings(config: Config, args: argparse.Namespace) -> tuple[str | None, str | None]:
    """--caller-id and --webhook-url checked by the API's own rules; raises ValueError with the reason."""
    from api.errors import ApiError
    from api.validation import e164
    from webhooks.targets import UnsafeTarget, validate_url_syntax

    caller_id = None
    if args.caller_id is not None:
        try:
            caller_id = e164(args.caller_id, "caller_id", config.default_region)
        except ApiError as exc:
            raise ValueError(f"--caller-id: {exc.message}") from None
    if args.webhook_url is not None:
        try:
            validate_url_syntax(args.webhook_url)
        except UnsafeTarget as exc:
            raise ValueError(f"--webhook-url: {exc}") from None
    return caller_id, args.webhook_url


def _print_key(plaintext: str) -> None:
    print(f"API key (shown once, store it now): {plaintext}")


def cmd_add_user(config: Config, args: argparse.Namespace) -> int:
    migrate()
    org = _find_org(args.org)
    if org is None:
        return _fail(f"add-user: no organization with id or name {args.org!r} (see `list-orgs`)")
    problem = check_user_args(args)
    if problem is not None:
        return _fail(f"add-user: {problem}; nothing was created")
    create_user(config, org, args)
    return 0


def cmd_create_org(config: Config, args: argparse.Namespace) -> int:
    try:
        caller_id, webhook_url = _org_settings(config, args)
    except ValueError as exc:
        return _fail(f"create-org: {exc}; nothing was created")
    if not args.name.strip() or len(args.name) > 200:
        return _fail("create-org: NAME must be 1 to 200 characters; nothing was created")
    if args.minutes < 0:
        return _fail("create-org: --minutes must not be negative; nothing was created")
    migrate()
    problem = check_user_args(args)
    if problem is not None:
        return _fail(f"create-org: {problem}; nothing was created")
    existing = _find_org_by_name(args.name)
    if existing is not None:
        return _fail(f"create-org: an organization named {existing.name!r} already exists ({existing.id}); "
                     "names are unique regardless of case. Use `issue-key` for another key; nothing was created")
    try:
        org = Organization.create(name=args.name, minutes_included=args.minutes, webhook_url=webhook_url,
                                  default_caller_id=caller_id)
    except peewee.IntegrityError:  # created by another process since the check above
        return _fail(f"create-org: an organization named {args.name!r} already exists; nothing was created")
    _key, plaintext = ApiKey.issue(org)
    print(f"organization {org.id} ({org.name})")
    _print_key(plaintext)
    print(f"webhook signing secret: {org.webhook_secret}")
    if args.email is not None:
        create_user(config, org, args)
    return 0


def _find_org_by_name(name: str) -> Organization | None:
    return Organization.get_or_none(Organization.name_key == name_key(name))


def _find_org(ref: str) -> Organization | None:
    """An organization by id, else by name (unique regardless of case)."""
    return Organization.get_or_none(Organization.id == ref) or _find_org_by_name(ref)


def cmd_list_orgs(config: Config, _args: argparse.Namespace) -> int:
    migrate()
    live_keys = peewee.fn.COUNT(ApiKey.id).filter(ApiKey.revoked_at.is_null())
    rows = (Organization.select(Organization, live_keys.alias("keys"))
            .join(ApiKey, peewee.JOIN.LEFT_OUTER).group_by(Organization.id).order_by(Organization.created_at))
    print(f"{'id':36}  {'minutes used/included':>21}  {'keys':>4}  name")
    for org in rows:
        print(f"{org.id:36}  {f'{org.minutes_used}/{org.minutes_included}':>21}  {org.keys:>4}  {org.name}")
    return 0


def cmd_issue_key(config: Config, args: argparse.Namespace) -> int:
    if not args.name.strip() or len(args.name) > 200:
        return _fail("issue-key: --name must be 1 to 200 characters")
    migrate()
    org = _find_org(args.org)
    if org is None:
        return _fail(f"issue-key: no organization with id or name {args.org!r} (see `list-orgs`)")
    key, plaintext = ApiKey.issue(org, name=args.name)
    print(f"organization {org.id} ({org.name}), key {key.prefix} ({key.name})")
    _print_key(plaintext)
    return 0


_PREFIX = re.compile(r"(?:vb_live_)?([0-9a-f]{12})(?:_.*)?")


def cmd_revoke_key(config: Config, args: argparse.Namespace) -> int:
    """Revoke by prefix, only within the named organization; other API processes notice within
    API_KEY_CACHE_SECONDS (their key caches), this process at once."""
    match = _PREFIX.fullmatch(args.prefix)
    if match is None:
        return _fail("revoke-key: PREFIX is the 12 hex digits after vb_live_ in the key")
    migrate()
    org = _find_org(args.org)
    if org is None:
        return _fail(f"revoke-key: no organization with id or name {args.org!r} (see `list-orgs`)")
    key = ApiKey.get_or_none(ApiKey.prefix == match.group(1), ApiKey.organization == org)
    if key is None:
        return _fail(f"revoke-key: organization {org.id} has no key with prefix {match.group(1)}")
    if key.revoked_at is not None:
        print(f"key {key.prefix} ({key.name}) was already revoked at {key.revoked_at.isoformat()}Z")
        return 0
    key.revoke()
    print(f"revoked key {key.prefix} ({key.name}) of organization {org.id}")
    return 0


def cmd_check_config(config: Config, args: argparse.Namespace) -> int:
    """Lint the FreeSWITCH tree and dialplan the way FreeSWITCH would load them (file:line messages)."""
    from calls import dialing
    from fsconf.check import check_config

    conf = args.conf or "freeswitch"
    # The account XML the app writes lives in FREESWITCH_CONF_DIR; a tree named with --conf is checked as
    # it stands (its own gateways), unless --generated says where the generated folders are.
    generated = args.generated or (args.conf if args.conf else config.freeswitch_conf_dir)
    problems = check_config(conf, args.dialplan, config.socket_target, generated_dir=generated)
    for line in dialing.describe_paths(dialing.DialRules.from_config(config), config.outbound_gateway):
        print(line)
    for problem in problems:
        print(problem)
    print(f"check-config: {len(problems)} problem(s) in {conf} and {args.dialplan}")
    return 1 if problems else 0


def cmd_demo(_config: Config, _args: argparse.Namespace) -> int:
    """A whole call with no keys and no FreeSWITCH (see demo.py)."""
    import demo

    return demo.main()


def build_provisioner(config: Config):
    """The FreeSWITCH provisioner, or None without telephony. It opens an ESL connection per operation
    and writes files atomically, so every API process builds its own and provisions directly."""
    if not config.telephony_configured:
        return None
    from pathlib import Path

    from sip.freeswitch import FreeSwitchProvisioner, esl_connector
    from sip.secrets_box import SecretBox

    node = config.esl_nodes[0]
    shipped = Path(__file__).resolve().parent  # freeswitch/ and dialplan/ as shipped with the app
    return FreeSwitchProvisioner(
        config.freeswitch_conf_dir,
        esl_connector(node.host, node.port, config.esl_password, config.esl_command_timeout_s),
        SecretBox(config.sip_secret_key),
        dialplan_conf_dir=shipped / "freeswitch", dialplan_dir=shipped / "dialplan")


def build_web_calls(config: Config, secret: str | None = None):
    """The browsers' audio server and its web calls (webcall/), or None with WEB_CALLS=false. `secret` signs
    their tokens: the one every API process was given (token_secret, chosen before they fork)."""
    if not config.web_calls:
        return None
    from webcall.bridge import WebCalls, token_secret

    return WebCalls(config, secret or token_secret(config))


def build_services(config: Config, web_call_secret: str | None = None, serve_web_calls: bool = True):
    """The long-running parts, composed for this configuration (web_calls is None with WEB_CALLS=false, and in
    an API worker other than the first, which only signs web calls' tokens: serve_web_calls=False)."""
    dialer = None
    call_control = None
    if config.telephony_configured:
        from calls.controller import build_telephony

        dialer, call_control = build_telephony(config)
    web_calls = build_web_calls(config, web_call_secret) if serve_web_calls else None
    issuer = web_calls.issuer if web_calls else None
    if issuer is None and config.web_calls and web_call_secret and not serve_web_calls:
        from webcall.bridge import WebCallIssuer

        issuer = WebCallIssuer(web_call_secret, config.web_call_public_url, float(config.web_call_token_ttl_s))
    app = create_app(config, call_control=call_control, provisioner=build_provisioner(config),
                     web_call_issuer=issuer, web_call_control=web_calls.control if web_calls else None)
    dispatcher = Dispatcher(dialer, interval_s=config.dispatch_interval_s)
    webhooks = DeliveryWorker(allow_private=config.webhook_allow_private, timeout_s=config.webhook_timeout_s,
                              max_attempts=config.webhook_max_attempts)
    return app, dispatcher, webhooks, call_control, web_calls


def build_uploader(config: Config):
    """The recording uploader when S3_ENDPOINT_URL is set; recordings otherwise stay in RECORDINGS_DIR."""
    from recordings.s3 import store_from_config
    from recordings.uploader import RecordingUploader

    store = store_from_config(config)
    return None if store is None else RecordingUploader(store, config.recordings_dir)


def _listen(config: Config) -> gevent.socket.socket:
    listener = gevent.socket.socket(gevent.socket.AF_INET6 if ":" in config.api_host else gevent.socket.AF_INET)
    listener.setsockopt(gevent.socket.SOL_SOCKET, gevent.socket.SO_REUSEADDR, 1)
    listener.bind((config.api_host, config.api_port))
    listener.listen(1024)
    return listener


def _shift_port(address: str, worker: int) -> str:
    """host:port with the port moved up by `worker` (0 stays 0: an ephemeral port is the kernel's)."""
    host, _, port = address.rpartition(":")
    return address if port == "0" else f"{host}:{int(port) + worker}"


def instance_config(config: Config, worker: int, secret: str) -> Config:
    """The settings of API worker `worker`, a whole instance (calls/ownership.py): its own ports for the socket and
    audio servers (port + worker), and the audio URLs signed with the secret every worker was given, so any of
    them accepts a stream whichever signed it. Worker 0 keeps the configured ports."""
    import dataclasses

    changes: dict = {}
    if not config.media_token_secret:
        changes["media_token_secret"] = secret
    if worker:
        changes["socket_address"] = _shift_port(config.socket_address, worker)
        listen = config.audio_ws_listen
        changes["audio_ws_listen"] = _shift_port(listen, worker)
        public = config.audio_ws_public_url
        if public.rstrip("/").endswith("://" + listen):  # the default: the stream comes straight to this worker
            changes["audio_ws_public_url"] = public.replace(listen, changes["audio_ws_listen"])
    return dataclasses.replace(config, **changes) if changes else config


def _fork_api_workers(config: Config, listener, web_call_secret: str) -> list[int]:
    """Extra processes, each a whole instance (API, dispatcher, webhooks, call control) on the shared API socket:
    Python runs one core per process. They share FreeSWITCH the way separate hosts do: one owns each node's
    events (calls/ownership.py), every one dials and controls any call.

    Forked before any database connection or greenlet exists in the parent, so nothing is shared but the
    listening socket; each child opens its own pool. Web calls' browser server runs in the first process only
    (one WEB_CALL_LISTEN port); the others sign their tokens with the same secret.
    """
    children = []
    for worker in range(1, config.api_workers):
        pid = os.fork()
        if pid == 0:
            gevent.reinit()
            open_database(config.database_url, config.database_pool_size)
            os._exit(_run_instance(instance_config(config, worker, web_call_secret), listener, worker,
                                   web_call_secret))
        children.append(pid)
    return children


def unbuildable_agents(config: Config) -> list[str]:
    """Active agents whose providers this deployment cannot build (a key removed from .env, say): serve
    refuses to start rather than let their calls find out at answer time."""
    from pipeline.providers.registry import unavailable_providers

    found = []
    for agent in Agent.select().where(Agent.deleted_at.is_null(), Agent.active == True):  # noqa: E712
        found += [f"agent {agent.id} ({agent.name!r}, organization {agent.organization_id}): {why}"
                  for why in unavailable_providers(agent, config).values()]
    return found


def configure_offline_providers(config: Config) -> None:
    """The process-wide offline providers' settings, before any call can use them (the pool is made on the
    first stream or prestart, whichever comes first; both must see STT_POOL_*)."""
    from pipeline.providers import pocketsphinx_pool, tts_cache

    pocketsphinx_pool.configure(size=stt_pool_size(config), search=config.stt_pool_search)
    tts_cache.configure(config.tts_cache_mb * 1024 * 1024)


def stt_pool_size(config: Config) -> int:
    """Recognizer processes for this instance: STT_POOL_WORKERS, else the usable cores shared by the API_WORKERS
    instances on this host (each has its own pool: a pool per core in every one would oversubscribe the cores
    and load the model that many more times)."""
    from pipeline.providers.pocketsphinx_pool import default_size

    return config.stt_pool_workers or max(1, default_size() // config.api_workers)


def _prestart_offline_stt() -> None:
    from pipeline.providers.errors import ProviderError
    from pipeline.providers.pocketsphinx_pool import prestart

    try:
        prestart()
    except ProviderError as exc:  # the first offline call tries again (and reports it to its caller)
        log.warning("offline recognizer pool did not start: %s", exc)


def cmd_serve(config: Config, _args: argparse.Namespace) -> int:
    migrate()
    unbuildable = unbuildable_agents(config)
    if unbuildable:
        for line in unbuildable:
            print(f"serve: {line}", file=sys.stderr)
        return _fail(f"{len(unbuildable)} agent provider(s) cannot be built here: set the missing keys in "
                     ".env, or change or deactivate those agents (PATCH /v1/agents/<id>)")
    database.close()
    if hasattr(database.obj, "close_all"):
        database.obj.close_all()
    listener = _listen(config)
    metrics_dir = use_multiprocess_dir(config.prometheus_multiproc_dir, config.api_workers)
    if metrics_dir:
        log.info("metrics: processes share %s (PROMETHEUS_MULTIPROC_DIR)", metrics_dir)
    from webcall.bridge import token_secret

    secret = token_secret(config)  # one for every process: any of them may sign a web call's or a stream's token
    children = _fork_api_workers(config, listener, secret)
    code = _run_instance(instance_config(config, 0, secret) if children else config, listener, 0, secret)
    for pid in children:
        os.kill(pid, signal.SIGTERM)
    if metrics_dir and not config.prometheus_multiproc_dir:
        shutil.rmtree(metrics_dir, ignore_errors=True)  # the private one serve made
    return code


def _run_instance(config: Config, listener, worker: int, web_call_secret: str) -> int:
    """One whole instance on the shared API socket until SIGINT/SIGTERM: API, dispatcher, webhook worker,
    recording uploader, call control and (worker 0 only) the browsers' web-call server."""
    configure_offline_providers(config)
    app, dispatcher, webhooks, call_control, web_calls = build_services(config, web_call_secret,
                                                                        serve_web_calls=worker == 0)
    app.config["VOXBRIDGE_WORKER"] = worker
    uploader = build_uploader(config)
    server = WSGIServer(listener, app, log=None)
    server.start()
    dispatcher.start()
    webhooks.start()
    if uploader is not None:
        uploader.start()
    if call_control is not None:
        call_control.start()
    if config.voice_pipeline and (call_control is not None or web_calls is not None):
        gevent.spawn(_prestart_offline_stt)  # the offline recognizer's models load now, not on the first call
    if worker == 0:
        host, port = server.address[:2]
        print(f"VoxBridge API listening on http://{host}:{port}  (database: {config.database_url.split('://')[0]}, "
              f"telephony: {'configured' if config.telephony_configured else 'not configured'})", flush=True)
        print(f"Web console: {console_url(config)}/console  (first user: python app.py create-org 'My Company' "
              "--email you@example.com)", flush=True)
        print("Create an organization and its API key: python app.py create-org 'My Company'", flush=True)
    if web_calls is not None:
        web_calls.start()  # after the line above: scripts read the API's address from the first "listening on"
        print(f"Talk to an agent from a browser: http://{host}:{port}/talk/<agent_id>  (audio WebSocket "
              f"{web_calls.bridge.public_url}; origins allowed: {', '.join(config.web_call_origins)})", flush=True)
    log.info("start-up heap frozen: %d objects out of the collector's full passes", freeze_startup_heap())
    stop = gevent.event.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(sig, stop.set)
    stop.wait()
    log.info("shutting down")
    server.stop(timeout=5)
    dispatcher.stop()
    webhooks.stop()
    if uploader is not None:
        uploader.stop()
    if call_control is not None:
        call_control.stop()
    if web_calls is not None:
        web_calls.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    # The working directory's .env (12-factor; bin/serve and the container run from the tree),
    # then the one beside app.py; the real environment always wins over both.
    load_dotenv(find_dotenv(usecwd=True), override=False)
    load_dotenv(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".env"), override=False)
    parser = argparse.ArgumentParser(prog="voxbridge")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create or upgrade the database schema")
    org = sub.add_parser("create-org", help="create an organization and print its first API key")
    org.add_argument("name")
    org.add_argument("--minutes", type=int, default=1000)
    org.add_argument("--webhook-url", default=None)
    org.add_argument("--caller-id", default=None)
    org.add_argument("--email", default=None, help="also create the first console user with this email")
    org.add_argument("--password", default=None,
                     help="the console user's password (10+ characters); without it a one-time link is printed")
    user = sub.add_parser("add-user", help="add a console user to an organization")
    user.add_argument("org", help="organization id or name")
    user.add_argument("--email", required=True)
    user.add_argument("--password", default=None, help="10+ characters; without it a one-time link is printed")
    issue = sub.add_parser("issue-key", help="issue another API key for an organization (printed once)")
    issue.add_argument("org", help="organization id or name")
    issue.add_argument("--name", default="cli")
    revoke = sub.add_parser("revoke-key", help="revoke an API key by its prefix")
    revoke.add_argument("prefix", help="the 12 hex digits after vb_live_ (or the key itself)")
    revoke.add_argument("--org", required=True, help="organization id or name the key belongs to")
    sub.add_parser("list-orgs", help="list organizations: id, minutes, live keys, name")
    sub.add_parser("serve", help="run the API, dispatcher and webhook worker")
    sub.add_parser("demo", help="run a whole call offline: simulator, espeak-ng caller, pocketsphinx, scripted agent")
    check = sub.add_parser("check-config", help="check the FreeSWITCH configuration and dialplan")
    check.add_argument("--conf", default=None, help="FreeSWITCH configuration tree (default: freeswitch)")
    check.add_argument("--generated", default=None,
                       help="folder holding the generated gateways, ACLs and users (default: the --conf tree, "
                            "else FREESWITCH_CONF_DIR)")
    check.add_argument("--dialplan", default="dialplan")
    args = parser.parse_args(argv)
    try:
        config = load_config()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.command not in ("check-config", "demo"):
        try:
            _setup(config)
        except ConfigError as exc:  # e.g. a DATABASE_URL only opening the database can judge
            print(exc, file=sys.stderr)
            return 2
    handlers = {"migrate": cmd_migrate, "create-org": cmd_create_org, "add-user": cmd_add_user,
                "issue-key": cmd_issue_key, "revoke-key": cmd_revoke_key, "list-orgs": cmd_list_orgs,
                "serve": cmd_serve, "check-config": cmd_check_config, "demo": cmd_demo}
    return handlers[args.command](config, args)


if __name__ == "__main__":
    sys.exit(main())
