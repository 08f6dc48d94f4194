"""The console in a real browser: headless Chromium through Selenium against the app served on an ephemeral
port in this process (gevent), with the FreeSWITCH simulator and the call controller behind it.

A person signs in, creates an agent (a wrong field first: the API's error shows beside it), creates a Custom
SIP account, binds a number and presses Verify (the four checks), queues a call and watches its transcript
grow and its status end. Every wait is on a page condition (WebDriverWait), bounded. Chromium missing is a
failure, not a skip: bin/setup installs it. With VOXBRIDGE_SCREENSHOTS=1 the main pages are saved to
docs/console/*.png (committed; normal runs leave them alone).
"""
import os
import pathlib
import shutil

import pytest
from cryptography.fernet import Fernet
from gevent.pywsgi import WSGIServer

from calls.dispatcher import Dispatcher
from calls.media_providers import MediaProviders
from config import load_config
from fssim import Rule, Rules, Simulator
from models import Call, Organization
from pipeline.clock import REAL_CLOCK
from pipeline.fakes import EnergyVAD, FakeLLM, FakeTTS, say
from tests.console.helpers import PASSWORD, make_user
from tests.fakes.providers import FixedLatencySTT
from tests.telephony.conftest import running_controller

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SHOTS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "console"
WAIT_S = 30  # generous: the machine is shared; an idle one meets every condition in well under a second
GREETING = "Hello, this is the console test agent. Press a key."
REPLY = "You pressed four two. Goodbye for now."


@pytest.fixture
def sqlite_db(request, _engines):
    """The browser test runs on SQLite alone: what it adds over the client tests is the browser, not the engine."""
    from tests.conftest import _reset

    database = _engines(request, "sqlite")
    database.connect(reuse_if_open=True)
    _reset(database)
    yield database
    if not database.is_closed():
        database.close()


@pytest.fixture
def conf(tmp_path):
    """The shipped FreeSWITCH tree, where the provisioner writes the SIP account's gateway and ACL."""
    target = tmp_path / "freeswitch"
    shutil.copytree(pathlib.Path(__file__).resolve().parents[2] / "freeswitch", target)
    return target


@pytest.fixture
def sim(conf):
    rules = Rules([], default=Rule(".*", "answer", after=0.1, hangup_after=60))
    simulator = Simulator("127.0.0.1", 0, "s3cret-esl", rules=rules, heartbeat_interval=1.0,
                          conf_dir=str(conf)).start()
    simulator.registry.add_gateway("carrier1", proxy="198.51.100.7")
    yield simulator
    simulator.stop()


@pytest.fixture
def served(sqlite_db, sim, conf):
    """The app on an ephemeral port, wired to the simulator (calls, SIP provisioning), dialing what is queued;
    yields its base URL."""
    from api import create_app
    from app import build_provisioner

    config = load_config({"FREESWITCH_CONF_DIR": str(conf), "SIP_SECRET_KEY": Fernet.generate_key().decode(),
                          "FREESWITCH_ESL_HOST": f"127.0.0.1:{sim.port}", "FREESWITCH_ESL_PASSWORD": "s3cret-esl",
                          "OUTBOUND_GATEWAY": "carrier1", "VOXBRIDGE_SOCKET_ADDRESS": "127.0.0.1:0",
                          "AUDIO_WS_LISTEN": "127.0.0.1:0", "CALLS_PER_SECOND": "200"},
                         webhook_allow_private=True, rate_limit_per_minute=100_000, dispatch_interval_s=0.1)
    with running_controller(config) as control:
        control.media.build_providers = lambda agent, info: MediaProviders(
            FixedLatencySTT([]), FakeLLM(REAL_CLOCK, [say(GREETING), say(REPLY)], latency=0),
            FakeTTS(REAL_CLOCK, latency=0, ms_per_word=60), vad=EnergyVAD())
        server = WSGIServer(("127.0.0.1", 0), create_app(config, call_control=control,
                                                                 provisioner=build_provisioner(config)), log=None)
        server.start()
        dispatcher = Dispatcher(control, interval_s=0.1)
        dispatcher.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            dispatcher.stop()
            server.stop(timeout=2)


def require_browser(paths=(CHROMIUM, CHROMEDRIVER)) -> None:
    """Fail (never skip) without Chromium: a skipped browser test would pass a run that checked nothing."""
    for path in paths:
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: the console's browser tests need Debian's chromium and "
                        "chromium-driver (bin/setup installs them: apt-get install chromium chromium-driver)")


def test_a_missing_chromium_fails_with_what_to_install(tmp_path):
    with pytest.raises(pytest.fail.Exception, match="chromium is missing.*bin/setup installs them"):
        require_browser((str(tmp_path / "chromium"),))


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000", "--lang=en-US"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


class Page:
    """The browser and the waits a person's eyes would do."""

    def __init__(self, driver, base: str):
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver, self.base = driver, base
        # An element of the page being left may go stale mid-condition: the condition is asked again.
        self.wait = WebDriverWait(driver, WAIT_S, ignored_exceptions=(StaleElementReferenceException,))

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def find(self, css: str):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        return self.wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)), f"no visible {css}")

    def all(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def fill(self, form: str, **fields: str) -> None:
        for name, value in fields.items():
            element = self.find(f'{form} [name="{name}"]')
            element.clear()
            element.send_keys(value)

    def until(self, condition, message: str):
        return self.wait.until(lambda _driver: condition(), message)

    def heading(self, expected: str) -> None:
        self.until(lambda: self.text_of("h1") == expected, f"the page titled {expected!r} did not open")

    def text_of(self, css: str) -> str:
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        # Present, not visible: an empty list (a transcript before its first line) has no size.
        element = self.wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, css)), f"no {css}")
        try:
            return element.text
        except WebDriverException as exc:
            # The page was replaced between finding the element and reading it (a navigation under way): Chrome
            # says its node "does not belong to the document". Read as not there yet; the caller's wait retries.
            if "does not belong to the document" in str(exc):
                return ""
            raise

    def shot(self, name: str) -> None:
        if os.environ.get("VOXBRIDGE_SCREENSHOTS") == "1":
            SHOTS.mkdir(parents=True, exist_ok=True)
            # The whole page, not the window: the window grows to the page's height for the picture.
            height = self.driver.execute_script("return document.documentElement.scrollHeight")
            self.driver.set_window_size(1280, min(max(height, 700), 3000))
            self.driver.execute_script("window.scrollTo(0, 0)")
            self.driver.save_screenshot(str(SHOTS / f"{name}.png"))
            self.driver.set_window_size(1280, 1000)


def test_a_person_signs_in_sets_up_and_watches_a_call(served, browser, sim):
    org = Organization.create(name="Acme", minutes_included=1000, webhook_url="http://127.0.0.1:9/hook",
                              default_caller_id="+14155550000")
    make_user(org, "ana@acme.test")
    page = Page(browser, served)

    page.open("/console")
    page.shot("sign-in")
    page.fill("form", email="ana@acme.test", password=PASSWORD)
    page.find("#sign-in").click()
    page.until(lambda: browser.current_url.endswith("/console/calls"), "sign-in did not land on the calls page")

    # An agent: a blank name first, which the API refuses naming the field; the page shows it beside the field.
    page.open("/console/agents/new")
    page.fill("#agent-form", settings='{"silence_reprompt_s": 60}')
    page.find("#save-agent").click()
    assert "name must be a non-empty string" in page.find('[data-error-for="name"]').text  # shown when it comes
    page.fill("#agent-form", name="Appointments", greeting="Hello!")
    page.shot("agent-new")
    page.find("#save-agent").click()
    page.heading("Appointments")
    page.open("/console/agents")
    assert "Appointments" in page.text_of("table")
    page.shot("agents")

    # A Custom SIP account, a number bound to it, and Verify's four checks.
    page.open("/console/numbers")
    page.fill("#add-sip-account", name="Office PBX", sip_server="pbx.example.com", allowed_ips="203.0.113.5")
    page.find("#create-sip-account").click()
    page.heading("Custom SIP: Office PBX")
    assert "sip.voxbridge.local:5080" in page.text_of("#sip-domain")
    # Editing: a username without a password breaks the pair rule; the API's error shows beside the password.
    page.find("#edit-account summary").click()
    page.fill("#edit-sip-account", outbound_username="voxbridge-out")
    page.find("#save-sip-account").click()
    assert "set together" in page.find('#edit-sip-account [data-error-for="outbound_password"]').text
    page.fill("#edit-sip-account", name="Front office PBX", outbound_username="")
    page.find("#save-sip-account").click()
    page.heading("Custom SIP: Front office PBX")
    page.fill("#bind-number", number="+1 415 555 0199", label="Front desk")
    page.find("#connect-number").click()
    page.find('#bound-numbers [data-number="+14155550199"]')
    page.find("#verify").click()
    page.until(lambda: len(page.all("#checks li")) == 4, "Verify did not show its four checks")
    checks = {li.get_attribute("data-check"): li.text for li in page.all("#checks li")}
    assert list(checks) == ["local_config", "inbound_trunk", "outbound_trunk", "numbers_in_sync"]
    assert all(": ok" in text for text in checks.values()), checks  # provisioned in the simulator's FreeSWITCH
    page.shot("sip-account")
    page.open("/console/numbers")
    assert "Front office PBX" in page.text_of('[data-number="+14155550199"]')
    page.shot("numbers")

    # A call queued from the page: its transcript grows while the simulator's call goes on.
    page.open("/console/calls")
    page.fill("#queue-call", to="+14155550123")
    page.find("#queue-call-button").click()
    page.until(lambda: "/console/calls/" in browser.current_url, "the queued call's page did not open")
    page.until(lambda: GREETING in page.text_of("#transcript"), "the agent's first line did not appear")
    assert page.text_of("#call-status") == "in-progress"
    call = Call.get_by_id(browser.current_url.rsplit("/", 1)[1])
    sim.send_dtmf(call.channel_uuid, "42#")
    page.until(lambda: len(page.all("#transcript li")) == 3, "the caller's keys and the reply did not appear")
    assert [li.text for li in page.all("#transcript li")] == [f"agent: {GREETING}", "caller: 42", f"agent: {REPLY}"]
    page.shot("call-live")
    # The calls list, in a second tab, follows the live call too.
    call_tab = browser.current_window_handle
    browser.switch_to.new_window("tab")
    page.open("/console/calls")
    status_cell = f'[data-live-status="{call.id}"]'
    assert page.text_of(status_cell) == "in-progress"
    sim.hangup_far_end(call.channel_uuid)
    page.until(lambda: page.text_of(status_cell) == "completed", "the calls list did not show the call's end")
    assert page.text_of(f'[data-live-seconds="{call.id}"]') == str(Call.get_by_id(call.id).duration_s)
    page.shot("calls")
    browser.switch_to.window(call_tab)
    page.until(lambda: page.text_of("#call-status") == "completed", "the call's page did not show its end")
    assert "in-progress → completed" in page.text_of("#events")
    page.shot("call")

    page.open("/console/usage")
    assert page.text_of("#minutes-used") == "1"  # the call's started minute
    page.shot("usage")

    page.open("/console/webhooks")
    page.find("#send-test").click()
    page.find('#deliveries [data-delivery="webhook.test"]')  # the page reloads with the queued test event
    page.shot("webhooks")

    page.open("/console/api-keys")
    page.fill("#issue-key", name="ci")
    page.find("#issue-key-button").click()
    assert page.find("#new-key code").text.startswith("vb_live_")
    page.open("/console/api-keys")
    row = '#keys tr:last-child'
    page.find(f"{row} button").click()
    page.wait.until(lambda driver: driver.switch_to.alert, "Revoke asked for no confirmation").accept()
    page.until(lambda: page.text_of(f"{row} td:nth-child(5)").startswith("revoked"), "the key did not show revoked")
    page.shot("api-keys")  # after the reload: no secret in the picture
    page.open("/docs")
    page.find(".swagger-ui .info .title")
    page.shot("docs")
