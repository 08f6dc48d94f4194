"""The Provisioner used when telephony is configured: generated XML files applied over ESL.

Why files and not mod_xml_curl: FreeSWITCH keeps working from its files when the app is down
(gateways, ACLs and users stay loaded across a FreeSWITCH restart), check-config can read them,
and nothing in the call path waits on an HTTP request to the app. See docs/sip-accounts.md.

provision() writes the account's files (fsconf.provision decides names, content and layout),
removes the ones that no longer apply, then makes FreeSWITCH load them without a restart:
reloadxml, killgw (only when the gateway changed or went away: it drops calls on it),
`sofia profile <profile> rescan`, reloadacl. When FreeSWITCH is unreachable the files stay
written and the result says why; a later provision or Reprovision applies them.

Number -> account routing lives in the app, not in FreeSWITCH: the public dialplan hands every
E.164 DID from a trusted source to the app's socket, and the app looks the number up in the
database. numbers_in_sync therefore checks each bound number against that dialplan (fsconf's
evaluator, as a call admitted from this account's PBX) and against the database rows.
"""
from __future__ import annotations

import ipaddress
import logging
import xml.etree.ElementTree as ET  # noqa: S405 - parses FreeSWITCH's own status XML
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from esl import commands
from esl.commands import ApiCall
from esl.connection import EslConnection, EslProtocol
from esl.errors import EslError, UnsafeValue
from esl.responses import show_channels
from fsconf import provision as fsx
from fsconf.dialplan import Dialplan
from models import LIVE_STATUSES, Call, PhoneNumber, SipAccount
from sip.provisioning import FAILED, OK, SKIPPED, Check, ProvisionResult, local_check
from sip.secrets_box import SecretBox, SecretsUnavailable

log = logging.getLogger(__name__)

BAD_GATEWAY_STATES = frozenset({"FAILED", "FAIL_WAIT", "NOREG_FAIL"})  # NOREG is normal: register=false


class EslApi(Protocol):
    def api(self, call: ApiCall) -> str: ...


class Unreachable(Exception):
    """FreeSWITCH could not be reached or answered with an error; the message is safe to show."""


def esl_connector(host: str, port: int, password: str, timeout: float = 5.0) -> Callable[[], EslConnection]:
    """A `connect` for FreeSwitchProvisioner: one fresh, authenticated connection per operation."""
    def connect() -> EslConnection:
        conn = EslConnection(host, port, password, connect_timeout=timeout, command_timeout=timeout)
        conn.connect()
        return conn
    return connect


def first_address(cidrs: list[str]) -> str:
    """An address inside the first allowed network (what `acl` is asked about)."""
    network = ipaddress.IPv4Network(cidrs[0])
    return str(next(iter(network.hosts()), network.network_address))


def parse_gateway_status(body: str) -> dict[str, str] | None:
    """`sofia xmlstatus gateway <name>` -> {name, state, status, proxy, ...}; None for Invalid Gateway!."""
    text = body.strip()
    if not text.startswith("<"):
        return None
    try:
        root = ET.fromstring(text.encode("iso-8859-1", "replace"))  # noqa: S314 - FreeSWITCH's reply
    except ET.ParseError:
        return None
    node = root if root.tag == "gateway" else root.find("gateway")
    if node is None:
        return None
    return {child.tag: (child.text or "").strip() for child in node}


def _proxy_host_port(value: str) -> str:
    """'sip:host:port;transport=udp' -> 'host:port' (what the account's sip_server says)."""
    value = value.strip()
    value = value[4:] if value.lower().startswith("sip:") else value
    return value.split(";", 1)[0].lower()


class FreeSwitchProvisioner:
    """Provisioner (sip.provisioning) backed by generated files in conf_dir and ESL api calls."""

    def __init__(self, conf_dir: str | Path, connect: Callable[[], EslApi], box: SecretBox,
                 profile: str = "external", dialplan_conf_dir: str | Path | None = None,
                 dialplan_dir: str | Path | None = None) -> None:
        self.conf_dir = Path(conf_dir)
        self.connect = connect
        self.box = box
        self.profile = commands.ident(profile, "profile")
        # Where freeswitch.xml and the dialplan live: the compose deployment's conf_dir (/srv/fsconf)
        # holds only the generated folders, so the app evaluates its shipped freeswitch/ and
        # dialplan/ trees with conf_dir's generated files mounted in, as FreeSWITCH sees them.
        self.dialplan_conf_dir = Path(dialplan_conf_dir) if dialplan_conf_dir else self.conf_dir
        self.dialplan_dir = Path(dialplan_dir) if dialplan_dir else None

    # -- ESL --------------------------------------------------------------------------------
    def _session(self) -> tuple[EslApi, Callable[[], None]]:
        try:
            conn = self.connect()
        except (EslError, OSError) as exc:
            raise Unreachable(f"FreeSWITCH unreachable: {exc}") from None
        # A connection we opened is ours to close; a pool-like object is shared and stays open.
        done = conn.exit if isinstance(conn, EslProtocol) else (lambda: None)
        return conn, done

    @staticmethod
    def _api(conn: EslApi, call: ApiCall, tolerate_err: bool = False) -> str:
        try:
            body = conn.api(call)
        except (EslError, OSError) as exc:
            raise Unreachable(f"FreeSWITCH unreachable during `{call.name}`: {exc}") from None
        if body.lstrip().startswith("-ERR") and not tolerate_err:
            raise Unreachable(f"FreeSWITCH refused `{call.line}`: {body.strip()[:200]}")
        return body

    def _run(self, calls: list[tuple[ApiCall, bool]]) -> ProvisionResult:
        try:
            conn, done = self._session()
        except Unreachable as exc:
            return ProvisionResult(False, str(exc))
        try:
            for call, tolerate in calls:
                self._api(conn, call, tolerate)
        except Unreachable as exc:
            return ProvisionResult(False, str(exc))
        finally:
            done()
        return ProvisionResult(True)

    # -- provision / deprovision -----------------------------------------------------------
    def files(self, account: SipAccount) -> list[fsx.GeneratedFile]:
        """The account's generated files (raises SecretsUnavailable / fsx.ProvisionError)."""
        return fsx.account_files(
            account.id, sip_server=account.sip_server, transport=account.transport or "auto",
            allowed_ips=account.allowed_ips or "",
            outbound_username=account.outbound_username,
            outbound_password=self.box.decrypt(account.outbound_password_enc),
            inbound_username=account.inbound_username,
            inbound_password=self.box.decrypt(account.inbound_password_enc))

    def provision(self, account: SipAccount) -> ProvisionResult:
        try:
            files = self.files(account)
        except (SecretsUnavailable, fsx.ProvisionError) as exc:
            return ProvisionResult(False, f"cannot generate FreeSWITCH configuration: {exc}")
        gateway_path = self.conf_dir / fsx.account_paths(account.id)["gateway"]
        old_gateway = gateway_path.read_text(encoding="utf-8") if gateway_path.exists() else None
        new_gateway = next((f.content for f in files if f.path.endswith(gateway_path.name)), None)
        fsx.write_files(self.conf_dir, files)
        wanted = {f.path for f in files}
        for relative in fsx.account_paths(account.id).values():
            if relative not in wanted:
                (self.conf_dir / relative).unlink(missing_ok=True)
        # rescan only adds gateways: a changed or removed one must be killed first (dropping
        # its calls). When the last apply did not happen, FreeSWITCH may hold any old version.
        kill = ((old_gateway is not None and old_gateway != new_gateway)
                or (not account.provisioned and (old_gateway or new_gateway) is not None))
        calls = [(commands.reloadxml(), False)]
        if kill:
            calls.append((commands.sofia_killgw(self.profile, account.gateway_name), True))
        calls += [(commands.sofia_profile_rescan(self.profile), False), (commands.reloadacl(), False)]
        result = self._run(calls)
        if not result.ok:
            result.error = f"{result.error}; configuration files are written, reprovision applies them"
            log.warning("sip account %s not provisioned: %s", account.id, result.error)
        return result

    def deprovision(self, account: SipAccount) -> ProvisionResult:
        fsx.remove_account_files(self.conf_dir, account.id)
        return self._run([(commands.reloadxml(), False),
                          (commands.sofia_killgw(self.profile, account.gateway_name), True),
                          (commands.reloadacl(), False)])

    # -- verify -----------------------------------------------------------------------------
    def verify(self, account: SipAccount) -> list[Check]:
        local = local_check(account, self.box)
        try:
            conn, done = self._session()
        except Unreachable as exc:
            return [local] + [Check(n, FAILED, str(exc)) for n in ("inbound_trunk", "outbound_trunk")] + [
                self._numbers_check(account, None)]
        try:
            inbound = self._guard("inbound_trunk", lambda: self._inbound_check(conn, account))
            outbound = self._guard("outbound_trunk", lambda: self._outbound_check(conn, account))
        finally:
            done()
        return [local, inbound, outbound, self._numbers_check(account, inbound)]

    @staticmethod
    def _guard(name: str, fn: Callable[[], Check]) -> Check:
        try:
            return fn()
        except (Unreachable, fsx.ProvisionError, UnsafeValue) as exc:  # unusable values stored in the DB
            return Check(name, FAILED, str(exc))

    def _inbound_check(self, conn: EslApi, account: SipAccount) -> Check:
        """Ask FreeSWITCH what really admits the PBX's INVITEs.

        IP-trust (no inbound credentials): the external profile's apply-inbound-acl vb_accounts,
        a list FreeSWITCH builds from the `cidr` attribute of the directory users, so the account's
        user must exist and the list must admit the PBX. Digest: the directory user must exist and,
        with allowed IPs, its auth-acl vb_acl_<hex> must admit the PBX."""
        cidrs = fsx.normalize_cidrs(account.allowed_ips or "")
        if not cidrs and not account.inbound_username:
            return Check("inbound_trunk", SKIPPED, "inbound disabled: no allowed IPs and no inbound credentials")
        problems = []
        call = commands.user_exists(account.directory_user, fsx.DIRECTORY_DOMAIN)
        answer = self._api(conn, call, True).strip()
        if answer != "true":
            why = ("the PBX's Digest answer would be refused" if account.inbound_username
                   else "its allowed IPs are not in vb_accounts after the next reloadacl")
            problems.append(f"FreeSWITCH has no directory user {account.directory_user} ({why}): {answer[:120]}")
        if cidrs:
            ip = first_address(cidrs)
            acl = account.acl_name if account.inbound_username else fsx.IP_TRUST_ACL
            if self._api(conn, commands.acl_check(ip, acl), True).strip() != "true":
                problems.append(f"FreeSWITCH's ACL list {acl} does not admit {ip} "
                                f"(list missing or stale: the PBX's INVITEs would be refused)")
        return Check("inbound_trunk", FAILED, "; ".join(problems)) if problems else Check("inbound_trunk", OK)

    def _outbound_check(self, conn: EslApi, account: SipAccount) -> Check:
        if not account.sip_server:
            return Check("outbound_trunk", SKIPPED, "outbound disabled: no SIP server set")
        body = self._api(conn, commands.sofia_xmlstatus_gateway(account.gateway_name), True)
        status = parse_gateway_status(body)
        if status is None:
            return Check("outbound_trunk", FAILED, f"FreeSWITCH has no gateway {account.gateway_name} "
                                                   f"({body.strip()[:80]}): outbound calls cannot be placed")
        expected = account.sip_server.lower()
        actual = _proxy_host_port(status.get("proxy", ""))
        if actual and actual != expected:
            return Check("outbound_trunk", FAILED, f"gateway {account.gateway_name} points at {actual}, "
                                                   f"the account at {expected}: FreeSWITCH runs a stale copy")
        if status.get("state", "").upper() in BAD_GATEWAY_STATES or status.get("status", "").upper() == "DOWN":
            return Check("outbound_trunk", FAILED,
                         f"gateway {account.gateway_name} is {status.get('state')}/{status.get('status')}: "
                         f"the PBX at {expected} does not answer our OPTIONS pings")
        return Check("outbound_trunk", OK)

    def _numbers_check(self, account: SipAccount, inbound: Check | None) -> Check:
        numbers = list(PhoneNumber.select().where(PhoneNumber.sip_account == account).order_by(PhoneNumber.number))
        if not numbers:
            return Check("numbers_in_sync", SKIPPED, "no numbers are bound to this account")
        if inbound is None or inbound.status != OK:
            why = inbound.reason if inbound is not None else "FreeSWITCH unreachable"
            return Check("numbers_in_sync", FAILED,
                         f"{len(numbers)} bound number(s) cannot reach their agents: inbound trunk not ready ({why})")
        problems = [f"{n.number} belongs to another organization" for n in numbers
                    if n.organization_id != account.organization_id]
        problems += self._dialplan_problems(account, [n.number for n in numbers])
        return Check("numbers_in_sync", FAILED, "; ".join(problems)) if problems else Check("numbers_in_sync", OK)

    def _dialplan_problems(self, account: SipAccount, numbers: list[str]) -> list[str]:
        """Each number, called from this account's PBX, must reach the app's socket with vb_did set."""
        try:
            dialplan = Dialplan.load(self.dialplan_conf_dir, self.dialplan_dir, generated_dir=self.conf_dir)
        except (OSError, ValueError) as exc:
            return [f"cannot read the FreeSWITCH dialplan in {self.dialplan_conf_dir}: {exc}"]
        # How FreeSWITCH marks a call it admitted: by ACL (IP-trust) or after the Digest challenge.
        trust = {"sip_authorized": "true"} if account.inbound_username else {"sip_acl_authed_by": "vb_accounts"}
        problems = []
        for number in numbers:
            try:
                result = dialplan.hunt("public", number, trust)
            except KeyError as exc:
                return [f"dialplan has no public context ({exc})"]
            if "socket" not in result.app_names() or result.variables.get("vb_did") != number:
                problems.append(f"{number} does not route to the app in the public dialplan "
                                f"(ends in {result.extension or 'nothing'})")
        return problems

    # -- live calls -------------------------------------------------------------------------
    def live_calls(self, account: SipAccount) -> int:
        """Channels on the account's gateway; when FreeSWITCH cannot say, the organization's live
        outbound calls in the database (an upper bound, so the Reprovision warning is not missed).

        A gateway call is not named after its gateway (FreeSWITCH names it
        sofia/<profile>/<number>@<host>), so each live SIP channel is asked for sip_gateway_name,
        which mod_sofia sets on every channel it places through a gateway. A ghost row of the
        channels table answers -ERR and is not counted."""
        if not account.sip_server:
            return 0
        try:
            conn, done = self._session()
            try:
                rows = show_channels(self._api(conn, commands.show_channels_json()))
                return sum(1 for row in rows if self._on_gateway(conn, row, account.gateway_name))
            finally:
                done()
        except (Unreachable, EslError, ValueError):
            return (Call.select().where(Call.organization == account.organization_id,
                                        Call.status.in_(LIVE_STATUSES), Call.direction == "outbound").count())

    def _on_gateway(self, conn: EslApi, row: dict[str, str], gateway: str) -> bool:
        if not str(row.get("name", "")).startswith("sofia/"):
            return False
        try:
            channel = commands.uuid(str(row.get("uuid", "")))
        except UnsafeValue:
            return False
        answer = self._api(conn, ApiCall(f"uuid_getvar {channel} sip_gateway_name"), True)
        return answer.strip() == gateway
