"""An application no loaded module registered fails the call, as on the real switch.

switch_core_session_execute_application logs "Invalid Application", hangs the channel up with
DESTINATION_OUT_OF_ORDER and executes nothing (no CHANNEL_EXECUTE). Runs against the simulator, or a
live FreeSWITCH when FREESWITCH_ESL_HOST is set (the `answer_dial` fixture).
"""
import pathlib
import re

from fssim.applications import APPLICATIONS

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_sendmsg_of_an_application_no_module_has_hangs_the_call_up(esl, answer_dial):
    esl.cmd("event json CHANNEL_EXECUTE CHANNEL_HANGUP_COMPLETE")
    uuid = esl.api(f"originate {answer_dial} &park()")[4:-1]
    esl.cmd(f"sendmsg {uuid}\ncall-command: execute\nexecute-app-name: playbak\nexecute-app-arg: x.wav")
    hangup = esl.event("CHANNEL_HANGUP_COMPLETE", Unique_ID=uuid)
    assert hangup["Hangup-Cause"] == "DESTINATION_OUT_OF_ORDER"
    executed = [e.get("Application") for e in esl.events()
                if e.get("Event-Name") == "CHANNEL_EXECUTE" and e.get("Unique-ID") == uuid]
    assert "playbak" not in executed and "park" in executed


def test_a_known_application_still_runs(esl, answer_dial):
    esl.cmd("event json CHANNEL_EXECUTE_COMPLETE")
    uuid = esl.api(f"originate {answer_dial} &park()")[4:-1]
    esl.cmd(f"sendmsg {uuid}\ncall-command: execute\nexecute-app-name: set\nexecute-app-arg: vb_probe=1")
    done = esl.event("CHANNEL_EXECUTE_COMPLETE", Unique_ID=uuid, Application="set")
    assert done is not None
    assert esl.api(f"uuid_getvar {uuid} vb_probe") == "1"
    esl.api(f"uuid_kill {uuid}")


def test_every_application_the_shipped_configuration_runs_exists():
    used = set()
    for path in list((REPO / "dialplan").glob("*.xml")) + list((REPO / "freeswitch").rglob("*.xml")):
        used |= set(re.findall(r'application="([A-Za-z0-9_]+)"', path.read_text()))
    assert used, "the shipped dialplan names no application"
    assert used <= APPLICATIONS, sorted(used - APPLICATIONS)
