"""../shared/freeswitch/conformance.py (the checks a real FreeSWITCH 1.10.12 passes 78/78) run against the simulator.

An extra run where the reference material sits beside the clone (developers' machines, CI): a clone
on its own does not have it, and the project's own tests cover the same checks
(tests/fssim/test_conformance_checks.py and the capture replays), so this module is not collected then.

With FREESWITCH_ESL_HOST set, it runs against that live switch with FREESWITCH_LIVE_ANSWER_DIAL and
FREESWITCH_LIVE_BUSY_DIAL (default loopback/9196/default and error/user_busy, the vanilla configuration's).
"""
import re
import subprocess
import sys

import pytest

from tests.fssim.conftest import ANSWER_DIAL, BUSY_DIAL, CONFORMANCE, LIVE

# (answer, busy) dial strings: FreeSWITCH's own, and the simulator's rule-driven SIP ones.
DIALS = [("loopback/9196/default", "error/user_busy"),
         ("sofia/external/15551230001@127.0.0.1:5099", "sofia/external/15551230486@127.0.0.1:5099")]


def _run(host, port, password, answer, busy):
    cmd = [sys.executable, str(CONFORMANCE), "--host", host, "--port", str(port), "--password", password,
           "--answer", answer, "--busy", busy, "--socket", "--audio-fork"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.live_freeswitch
@pytest.mark.parametrize("answer,busy", DIALS if not LIVE else [(ANSWER_DIAL, BUSY_DIAL)])
def test_conformance_passes_in_full(target, answer, busy):
    # the subprocess needs the port to stay served while we wait: gevent yields in subprocess.run
    out = _run(*target, answer, busy)
    summary = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr
    m = re.fullmatch(r"(\d+) passed, (\d+) failed", summary)
    assert m, out.stdout + out.stderr
    failures = [ln for ln in out.stdout.splitlines() if ln.startswith("FAIL")]
    assert m.group(2) == "0", failures
    assert int(m.group(1)) >= 78, summary
    assert out.returncode == 0

