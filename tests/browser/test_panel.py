"""The Cockpit page, driven in headless Chromium against a real cockpit-ws.

scripts/browser-test.sh prepares the machine (packages, users, PAM line for
Cockpit, cockpit-ws) and runs this file; scripts/trixie-test.sh does the
same in a Debian 13 chroot, for its Cockpit 337 (cockpit_system.py). The
tests run in file order and tell the users' story: a user sets up
two-factor login on the page and logs in with it; an administrator unlocks
and resets; the page leaks no secret.
Screenshots of each step go to $SCREENSHOTS. Timings are printed (PERF
lines), never asserted. Every state the story passes through is checked by
axe-core ($AXE_JS): no serious or critical violation. test_panel_a11y.py
adds the dark theme, the phone width, the keyboard and the French page.
"""

import atexit
import base64
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.parse

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

import cockpit_system

URL = os.environ["PANEL_URL"]
SHOTS = os.environ["SCREENSHOTS"]
ALICE, BOB, CAROL, DAVE = (f"pamtotp-cp-{n}" for n in ("alice", "bob", "carol", "dave"))
PERF = {}
# Alice's downloaded .jpg (its QR holds her secret), kept between tests for
# the lost-phone story; removed when the run ends, however it ends.
KEEP = tempfile.mkdtemp(prefix="pamtotp-browser-keep-")
atexit.register(shutil.rmtree, KEEP, True)
AXE_JS = os.environ.get("AXE_JS", "")
# Every axe run: (state, theme, violations of any impact), written to
# $SCREENSHOTS/axe.json at the end.
AXE_RUNS = []
# Every code and secret the tests handle, to look for in logs and URLs.
SEEN = set()


def password(user):
    return f"{user}-Pw-1"


# ---- tools ------------------------------------------------------------

def run(*args, input=None):
    out = subprocess.run(args, input=input, capture_output=True, text=True, timeout=60)
    return out


def totpctl(*args, input=None):
    """totpctl as root in Cockpit's system, JSON parsed (an error's JSON too)."""
    out = cockpit_system.run("totpctl", *args, "--json", input=input)
    return json.loads(out.stdout)


def oathtool(secret, offset_steps=0):
    at = int(time.time()) + 30 * offset_steps
    out = run("oathtool", "--totp", "--base32", "-N", f"@{at}", secret)
    assert out.returncode == 0, out.stderr
    code = out.stdout.strip()
    SEEN.add(code)
    return code


def zbar(path):
    out = run("zbarimg", "--quiet", "--raw", path)
    assert out.returncode == 0, f"zbarimg {path}: {out.stderr}"
    return out.stdout.strip()


def secret_of(uri):
    query = urllib.parse.urlparse(uri).query
    secret = urllib.parse.parse_qs(query)["secret"][0]
    SEEN.add(secret)
    return secret


def wrong_code(secret):
    window = {oathtool(secret, k) for k in range(-4, 5)}
    return next(c for c in (str(d) * 6 for d in range(10)) if c not in window)


# ---- the browser ---------------------------------------------------------

def login_error_shown(d):
    """The error that Cockpit's login page shows, or False while it shows
    none. 287 has it in #login-error-message; 337 has a title
    (#login-error-title) and a message, which it leaves empty when it has
    nothing to add ("Authentication failed" after a wrong code)."""
    group = d.find_elements(By.ID, "error-group")
    if not (group and group[0].is_displayed()):
        return False
    parts = []
    for id_ in ("login-error-title", "login-error-message"):
        found = d.find_elements(By.ID, id_)
        text = found[0].get_attribute("textContent").strip() if found else ""
        if text:
            parts.append(text)
    return " ".join(parts) or False


# Cockpit's dialogs: PatternFly 4's pf-c-modal-box (287), PatternFly 5's
# pf-v5-c-modal-box or 6's pf-v6-c-modal-box (337).
MODAL = "[class*='c-modal-box']"


class Browser:
    def __init__(self, width=1280, height=800):
        self.profile = tempfile.mkdtemp(prefix="pamtotp-chromium-")
        self.downloads = tempfile.mkdtemp(prefix="pamtotp-downloads-")
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                    f"--window-size={width},{height}", f"--user-data-dir={self.profile}",
                    "--lang=en-US"):
            options.add_argument(arg)
        options.add_experimental_option("prefs", {
            "download.default_directory": self.downloads,
            "download.prompt_for_download": False,
        })
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        self.d.execute_cdp_cmd("Page.setDownloadBehavior",
                               {"behavior": "allow", "downloadPath": self.downloads})
        self.d.set_script_timeout(60)
        # The size of the page itself (the "desktop" of the issue: 1280x800).
        self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.console = []
        self.urls = []
        self.theme = "light"

    def quit(self):
        self.check_no_leak()
        self.d.quit()
        shutil.rmtree(self.profile, ignore_errors=True)
        shutil.rmtree(self.downloads, ignore_errors=True)

    def wait(self, condition, timeout=20):
        """Until `condition` holds; an element that the page drew again
        meanwhile (Cockpit 337 redraws more than 287) is looked up again."""
        return WebDriverWait(self.d, timeout,
                             ignored_exceptions=[StaleElementReferenceException]).until(condition)

    def shot(self, name):
        self.d.save_screenshot(os.path.join(SHOTS, f"{name}.png"))

    def resize(self, width, height, mobile=False):
        self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
        time.sleep(0.3)

    def axe(self, state):
        """axe-core on the page's frame as it is now: no serious or
        critical violation (the others are recorded in axe.json)."""
        assert AXE_JS and os.path.exists(AXE_JS), "AXE_JS: scripts/browser-test.sh fetches axe-core"
        if not self.d.execute_script("return typeof window.axe === 'object'"):
            with open(AXE_JS, encoding="utf-8") as f:
                self.d.execute_script(f.read())
        result = self.d.execute_async_script("""
            const done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ["violations"] }).then(r => done(r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + ": " + n.failureSummary),
            }))), e => done("axe failed: " + e));
        """)
        assert isinstance(result, list), result
        AXE_RUNS.append({"state": state, "theme": self.theme, "violations": result})
        with open(os.path.join(SHOTS, "axe.json"), "w") as f:
            json.dump(AXE_RUNS, f, indent=1)
        bad = [v for v in result if v["impact"] in ("serious", "critical")]
        assert not bad, f"axe, {state} ({self.theme}): " + json.dumps(bad, indent=1)

    def field_error(self, id_):
        """The error shown at a field (it must be visible)."""
        return self.visible(f"{id_}-error").text

    def scroll_to(self, id_):
        self.d.execute_script("document.getElementById(arguments[0]).scrollIntoView()", id_)

    def focused(self):
        return self.d.switch_to.active_element.get_attribute("id")

    def in_view(self, id_):
        """The element lies wholly inside the frame's viewport (else a
        description of where it is)."""
        where = self.d.execute_script("""
            const r = document.getElementById(arguments[0]).getBoundingClientRect();
            if (r.top >= -1 && r.bottom <= window.innerHeight + 1 && r.height > 0)
                return true;
            return `${arguments[0]}: top ${r.top}, bottom ${r.bottom}, viewport ${window.innerHeight}, ` +
                `scrolled ${window.scrollY} of ${document.documentElement.scrollHeight}`;""", id_)
        return where is True or where

    def confirm(self, yes=True):
        """Answer the page's confirmation dialog; returns its title and text."""
        self.visible("confirm")
        text = self.el("confirm-title").text + "\n" + self.el("confirm-text").text
        self.click("confirm-yes" if yes else "confirm-no")
        self.wait(lambda d: not d.find_element(By.ID, "confirm").is_displayed())
        return text

    def collect(self):
        self.console += [entry["message"] for entry in self.d.get_log("browser")]
        self.urls.append(self.d.current_url)

    def check_no_leak(self):
        """No code or secret in the console or in any URL the page had."""
        self.collect()
        for secret in SEEN:
            for line in self.console:
                assert secret not in line, f"console shows a secret or code: {line}"
            for url in self.urls:
                assert secret not in url, f"URL holds a secret or code: {url}"

    # -- Cockpit's login page --
    def login(self, user, code=None, expect_shell=True, lang=None):
        """Password, then (if asked) the code. Returns the seconds from
        submitting the password to the code prompt, and from submitting the
        code to the shell. `lang`: the shell's language, as Cockpit keeps
        it (the CockpitLang cookie)."""
        self.d.delete_all_cookies()
        self.d.get(URL + "/")
        if lang:
            self.set_language(lang)
        self.wait(EC.visibility_of_element_located((By.ID, "login-user-input"))).send_keys(user)
        self.d.find_element(By.ID, "login-password-input").send_keys(password(user))
        start = time.monotonic()
        self.d.find_element(By.ID, "login-button").click()
        timings = {}
        if code is not None:
            prompt = self.wait(EC.visibility_of_element_located((By.ID, "conversation-input")))
            timings["password_to_prompt"] = time.monotonic() - start
            label = self.d.find_element(By.ID, "conversation-prompt").text
            assert "Verification code" in label, label
            self.shot_prompt = True
            prompt.send_keys(code)
            start = time.monotonic()
            self.d.find_element(By.ID, "login-button").click()
        if expect_shell:
            self.wait(EC.presence_of_element_located((By.CSS_SELECTOR, "iframe")), timeout=30)
            timings["to_shell"] = time.monotonic() - start
        return timings

    def set_language(self, lang):
        """Cockpit's display language (Session > Display language sets the
        same cookie and reloads)."""
        self.d.switch_to.default_content()
        self.d.add_cookie({"name": "CockpitLang", "value": lang, "path": "/"})
        self.d.execute_script("localStorage.setItem('cockpit.lang', arguments[0])", lang)

    def login_error(self):
        return self.wait(login_error_shown)

    # -- the page --
    def open_panel(self):
        self.d.switch_to.default_content()
        self.d.get(URL + "/totp")
        frame = self.wait(EC.presence_of_element_located(
            (By.CSS_SELECTOR, "iframe[name='cockpit1:localhost/totp']")), timeout=30)
        self.d.switch_to.frame(frame)
        self.wait(lambda d: d.find_element(By.ID, "page").get_attribute("aria-busy") == "false")
        self.wait(lambda d: d.find_element(By.ID, "state-label").text
                  or d.find_element(By.ID, "unavailable").is_displayed())

    def el(self, id_):
        return self.d.find_element(By.ID, id_)

    def visible(self, id_, timeout=20):
        return self.wait(EC.visibility_of_element_located((By.ID, id_)), timeout)

    def state(self):
        return self.visible("state-label").text

    def wait_state(self, text, timeout=20):
        self.wait(lambda d: d.find_element(By.ID, "state-label").text == text, timeout)

    def alert(self):
        return self.visible("alert-text").text

    def click(self, id_):
        self.click_css(f"#{id_}")

    def click_css(self, selector):
        """Click, retrying while the page re-renders the element."""
        def clicked(d):
            element = d.find_element(By.CSS_SELECTOR, selector)
            if not (element.is_displayed() and element.is_enabled()):
                return False
            element.click()
            return True
        WebDriverWait(self.d, 20, ignored_exceptions=[StaleElementReferenceException]).until(clicked)

    def type(self, id_, text):
        field = self.el(id_)
        field.clear()
        field.send_keys(text)

    def downloaded(self, name, timeout=20):
        path = os.path.join(self.downloads, name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(path) and os.path.getsize(path) > 0:
                return path
            time.sleep(0.1)
        raise AssertionError(f"{name} was not downloaded: {os.listdir(self.downloads)}")

    def admin_access(self, user):
        """Turn on Cockpit's administrative access (sudo, with the password)."""
        self.d.switch_to.default_content()
        button = self.wait(EC.element_to_be_clickable(
            (By.XPATH, "//button[contains(., 'Limited access')]")))
        button.click()
        field = self.wait(EC.visibility_of_element_located(
            (By.CSS_SELECTOR, f"{MODAL} input[type='password']")))
        field.send_keys(password(user))
        self.d.find_element(By.XPATH, "//div[contains(@class,'c-modal-box')]//button[contains(., 'Authenticate')]").click()
        self.wait(EC.visibility_of_element_located(
            (By.XPATH, "//button[contains(., 'Administrative access')]")), timeout=30)


@pytest.fixture
def browser():
    b = Browser()
    yield b
    b.quit()


# ---- the users' story ------------------------------------------------------

STORY = {}


def facts(b):
    return [dt.text for dt in b.d.find_elements(By.CSS_SELECTOR, "#facts dt")]


def test_a_user_sets_up_two_factor_login_on_the_page(browser):
    b = browser
    b.login(ALICE)
    start = time.monotonic()
    b.open_panel()
    assert b.state() == "Not set up"
    PERF["first page load to status"] = time.monotonic() - start
    assert facts(b) == ["User"]
    b.shot("01-user-not-set-up")
    b.axe("not set up")

    # Set up: the QR and the key.
    start = time.monotonic()
    b.click("setup")
    qr = b.wait(lambda d: d.find_element(By.ID, "qr").get_attribute("src") or None)
    PERF["set up to QR shown"] = time.monotonic() - start
    assert qr.startswith("data:image/jpeg;base64,")
    shown_jpg = os.path.join(b.downloads, "shown.jpg")
    with open(shown_jpg, "wb") as f:
        f.write(base64.b64decode(qr.split(",", 1)[1]))
    uri = zbar(shown_jpg)
    secret = secret_of(uri)
    assert uri.startswith("otpauth://totp/"), uri
    key = b.el("key").text
    assert key.replace(" ", "") == secret
    assert all(len(g) == 4 for g in key.split(" ")[:-1]), key
    b.wait_state("Pending activation")
    # What the step needs, no more: the account's details wait for an
    # active account, the algorithm and period sit in a closed disclosure.
    assert facts(b) == ["User"]
    assert not b.el("params").is_displayed()
    b.click_css("#params-details summary")
    assert "SHA1, 6 digits" in b.el("params").text and "30 s" in b.el("params").text
    b.click_css("#params-details summary")
    # Starting again is secondary, and asks first.
    assert "btn-secondary" in b.el("restart").get_attribute("class")
    assert b.in_view("activate") is True, b.in_view("activate")
    b.shot("02-user-qr-and-key")
    b.axe("QR shown, pending")

    # Download .jpg: the same URI.
    b.click("download-jpg")
    saved = b.downloaded(f"{ALICE}-totp.jpg")
    assert zbar(saved) == uri
    assert f"{ALICE}-totp.jpg" in b.visible("kept-note").text
    # Kept beyond this browser, for the lost-phone check below.
    kept = os.path.join(KEEP, f"{ALICE}-totp.jpg")
    subprocess.run(["cp", saved, kept], check=True)
    STORY["jpg"] = kept
    STORY["uri"] = uri
    STORY["secret"] = secret

    # Print: one page with the QR, the account, the server, the date and
    # the key; the printed QR scans.
    print_qr(b, "print-qr", ALICE, uri, key, "02b-print-sheet")

    # A wrong code: the error at the field, the focus kept there, Activate
    # in view, still pending.
    b.type("code", wrong_code(secret))
    b.click("activate")
    error = b.field_error("code")
    assert "wrong code" in error.lower(), error
    assert not b.el("alert").is_displayed()
    assert b.focused() == "code"
    assert b.el("code").get_attribute("aria-invalid") == "true"
    b.shot("03-user-wrong-code")
    assert b.in_view("activate") is True, b.in_view("activate")
    assert b.in_view("code-error") is True, b.in_view("code-error")
    assert b.state() == "Pending activation"
    b.axe("wrong code at activation")

    # The right code: active, recovery codes shown once, and the QR's
    # Download and Print stay until Done.
    b.type("code", oathtool(secret))
    start = time.monotonic()
    b.click("activate")
    b.wait_state("Active")
    PERF["activate to active"] = time.monotonic() - start
    codes = [li.text for li in b.d.find_elements(By.CSS_SELECTOR, "#codes li")]
    assert len(codes) == 10, codes
    SEEN.update(codes)
    STORY["recovery"] = codes
    assert b.el("enrollment").is_displayed()
    assert "Two-factor login is active" in b.el("enrollment-title").text
    assert b.el("download-jpg-2").is_displayed() and b.el("print-qr-2").is_displayed()
    assert not b.el("not-kept").is_displayed(), "the .jpg was downloaded: no warning"
    assert "Keep the QR code" in b.el("activated-text").text
    codes_fact = b.d.find_element(
        By.XPATH, "//dl[@id='facts']/dt[.='Codes']/following-sibling::dd[1]").text
    assert codes_fact == "Time-based, 6 digits every 30 s", codes_fact
    b.shot("04-user-active-recovery-codes")
    b.axe("activated, recovery codes")
    status = totpctl("status", ALICE)
    assert status["status"] == "active", status
    # The confirmation's Download is the same .jpg.
    os.remove(saved)
    b.click("download-jpg-2")
    assert zbar(b.downloaded(f"{ALICE}-totp.jpg")) == uri
    # Done: the codes and the QR are gone from the page, without a question
    # (the .jpg was kept).
    b.click("codes-done")
    assert not b.el("confirm").is_displayed()
    assert not b.d.find_elements(By.CSS_SELECTOR, "#codes li")
    assert not b.el("qr").get_attribute("src") and b.el("key").text == ""
    assert not b.el("enrollment").is_displayed()
    b.axe("active")


def print_qr(b, button, user, uri, key, shot):
    """Print the QR: the sheet (in print media) names the account, the
    server and the date, shows the key, and its QR scans; afterwards the
    sheet holds no secret."""
    b.d.execute_script("window.print = () => { window.printed = (window.printed || 0) + 1 }")
    b.click(button)
    assert b.d.execute_script("return window.printed") == 1
    assert "printing-qr" in b.d.find_element(By.TAG_NAME, "body").get_attribute("class")
    b.d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        sheet = b.el("print-sheet").text
        assert user in sheet and key in sheet, sheet
        assert run("hostname").stdout.strip() in sheet, sheet
        assert time.strftime("%Y") in sheet, sheet
        assert not b.el("page").is_displayed(), "the page itself would be printed too"
        b.shot(shot)
        sheet_png = os.path.join(SHOTS, f"{shot}-sheet.png")
        b.el("print-sheet").screenshot(sheet_png)
        assert zbar(sheet_png) == uri
    finally:
        b.d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        b.d.execute_script("window.dispatchEvent(new Event('afterprint'))")
    assert "printing-qr" not in b.d.find_element(By.TAG_NAME, "body").get_attribute("class")
    assert not b.el("print-qr-img").get_attribute("src")
    assert "Sent to the printer" in b.el("kept-note").get_attribute("textContent")


def test_the_next_login_asks_for_the_code_and_a_replay_is_refused(browser):
    b = browser
    secret = secret_of(STORY["uri"])
    # Lost phone: codes come from the downloaded .jpg, rescanned.
    assert secret_of(zbar(STORY["jpg"])) == secret
    code = oathtool(secret, 1)
    b.d.delete_all_cookies()
    b.d.get(URL + "/")
    b.wait(EC.visibility_of_element_located((By.ID, "login-user-input"))).send_keys(ALICE)
    b.el("login-password-input").send_keys(password(ALICE))
    start = time.monotonic()
    b.el("login-button").click()
    b.wait(EC.visibility_of_element_located((By.ID, "conversation-input")))
    PERF["cockpit login: password to code prompt"] = time.monotonic() - start
    b.shot("05-login-asks-for-the-code")
    b.el("conversation-input").send_keys(code)
    start = time.monotonic()
    b.el("login-button").click()
    b.wait(EC.presence_of_element_located((By.CSS_SELECTOR, "iframe")), timeout=30)
    PERF["cockpit login: code to shell"] = time.monotonic() - start
    b.open_panel()
    assert b.state() == "Active"

    # The same code again: refused.
    b.d.switch_to.default_content()
    b.login(ALICE, code=code, expect_shell=False)
    error = b.login_error()
    assert "Wrong user name or password" in error or "failed" in error.lower(), error
    b.shot("06-replayed-code-refused")
    assert "replayed" not in error


def test_new_recovery_codes_and_a_new_key_need_a_code(browser):
    b = browser
    secret = STORY["secret"]
    b.login(ALICE, code=oathtool(secret, 2))
    b.open_panel()
    # The account's details, now that it is active.
    assert facts(b) == ["User", "Codes", "Last login with a code", "Wrong codes", "Locked",
                        "Recovery codes left"], facts(b)
    # New recovery codes, proven with one of the old ones.
    old = STORY["recovery"]
    b.type("proof", old[0])
    b.click("new-recovery")
    b.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#codes li")) == 10)
    fresh = [li.text for li in b.d.find_elements(By.CSS_SELECTOR, "#codes li")]
    SEEN.update(fresh)
    assert not set(fresh) & set(old)
    assert b.el("proof").get_attribute("value") == ""
    b.shot("07-new-recovery-codes")
    b.axe("new recovery codes")
    b.click("codes-done")
    assert not b.el("confirm").is_displayed()
    # Replacing the key says what it is for (not a new phone), and asks.
    assert b.el("replace").text == "Replace the key…"
    assert "A new phone does not need a new key" in b.el("replace-help").text
    # An old recovery code no longer proves anything: the page's words, at
    # the field.
    b.type("proof", old[1])
    b.click("replace")
    question = b.confirm()
    assert "stop working" in question and "new phone does not need this" in question, question
    error = b.field_error("proof")
    assert "recovery code" in error.lower() and "nothing was changed" in error, error
    assert b.focused() == "proof"
    assert b.state() == "Active"
    # Cancelled: nothing happens.
    b.type("proof", oathtool(secret, 3))
    b.click("replace")
    b.confirm(yes=False)
    assert not b.el("enrollment").is_displayed()
    assert totpctl("status", ALICE)["status"] == "active"
    # A current code does: a new QR, pending until the new phone's code.
    b.click("replace")
    b.confirm()
    qr = b.wait(lambda d: d.find_element(By.ID, "qr").get_attribute("src") or None)
    b.wait_state("Pending activation")
    new_secret = secret_of(zbar_data_url(b, qr))
    assert new_secret != secret
    # Activated without downloading or printing the QR: the confirmation
    # says so, and Done asks before the QR is forgotten.
    b.type("code", oathtool(new_secret))
    b.click("activate")
    b.wait_state("Active")
    warning = b.visible("not-kept").text
    assert "not downloaded or printed" in warning and "reset" in warning, warning
    b.shot("07b-activated-qr-not-kept")
    b.axe("activated, QR not kept")
    b.click("codes-done")
    question = b.confirm(yes=False)
    assert "neither downloaded nor printed" in question, question
    assert b.el("qr").get_attribute("src"), "Cancel kept the QR"
    b.click("download-jpg-2")
    assert secret_of(zbar(b.downloaded(f"{ALICE}-totp.jpg"))) == new_secret
    assert not b.el("not-kept").is_displayed()
    b.click("codes-done")
    assert not b.el("confirm").is_displayed()
    assert not b.el("qr").get_attribute("src")
    STORY["secret"] = new_secret


def test_disable_needs_a_code(browser):
    b = browser
    secret = STORY["secret"]
    # The new phone's codes log in; the activation used the current step.
    b.login(ALICE, code=oathtool(secret, 1))
    b.open_panel()
    # Nothing typed: the page asks first, at the field.
    b.click("disable")
    assert "Type a current code" in b.field_error("proof")
    assert b.focused() == "proof"
    # A wrong code: the page's words, not totpctl's.
    b.type("proof", wrong_code(secret))
    b.click("disable")
    error = b.field_error("proof")
    assert error.startswith("Wrong code, or one used already: nothing was changed."), error
    assert "active enrollment" not in error and "totpctl" not in error, error
    assert not b.el("alert").is_displayed()
    assert b.state() == "Active"
    status = totpctl("status", ALICE)
    assert status["status"] == "active" and status["failures"] == 1, status
    # The page shows the failure it just counted.
    b.wait(lambda d: d.find_element(
        By.XPATH, "//dl[@id='facts']/dt[.='Wrong codes']/following-sibling::dd[1]").text == "1")
    b.shot("08-disable-refused")
    b.axe("proof refused")
    b.type("proof", oathtool(secret, 2))
    b.click("disable")
    b.wait_state("Not set up")
    assert totpctl("status", ALICE)["status"] == "not_enrolled"
    b.shot("09-disabled")


# ---- the administrator's story ----------------------------------------------

def enroll_by_cli(user):
    e = totpctl("enroll", user, "--force")
    secret = secret_of(e["uri"])
    a = totpctl("activate", user, input=oathtool(secret) + "\n")
    assert a["status"] == "active", a
    return secret


def row_of(b, user):
    return b.wait(EC.visibility_of_element_located(
        (By.XPATH, f"//tbody[@id='users']/tr[th='{user}']")))


def test_an_admin_unlocks_and_resets(browser):
    b = browser
    secret = enroll_by_cli(BOB)
    # carol, an administrator, has two-factor login too: a second row.
    carol_secret = enroll_by_cli(CAROL)
    # Wrong codes at Cockpit's login run up bob's failures to a lockout.
    for _ in range(3):
        b.login(BOB, code=wrong_code(secret), expect_shell=False)
        b.login_error()
    status = totpctl("status", BOB)
    assert status["locked_until"], status

    b.login(CAROL, code=oathtool(carol_secret, 1))
    b.admin_access(CAROL)
    b.open_panel()
    # The table's words: capitalised status, what each column counts, and
    # a help line saying which button the story's "unlock" is (Reset).
    headers = [th.text for th in b.d.find_elements(By.CSS_SELECTOR, "#users-table thead th")]
    assert headers[:6] == ["User", "Status", "Last login with a code", "Wrong codes", "Locked",
                           "Recovery codes left"], headers
    help_text = b.el("admin-help").text
    assert "Reset is for a user who lost the phone and the .jpg" in help_text, help_text
    assert "Unlock appears for a locked user only" in help_text, help_text
    row = row_of(b, BOB)
    assert "Active" in row.text and "Until " in row.text, row.text
    # Unlock only for the locked user.
    assert b.d.find_elements(By.CSS_SELECTOR, f"button[aria-label='Unlock {BOB}']")
    assert not b.d.find_elements(By.CSS_SELECTOR, f"button[aria-label='Unlock {CAROL}']")
    assert "No" in row_of(b, CAROL).text
    b.scroll_to("admin")
    b.shot("10-admin-sees-a-locked-user")
    b.axe("admin table, a locked user")

    b.click_css(f"button[aria-label='Unlock {BOB}']")
    assert "is unlocked" in b.alert()
    status = totpctl("status", BOB)
    assert not status["locked_until"] and status["failures"] == 0, status

    # The table is drawn again after the unlock.
    b.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, f"button[aria-label='Unlock {BOB}']"))
    b.click_css(f"button[aria-label='Reset {BOB}']")
    b.visible("confirm")
    assert "phone and .jpg stop working" in b.el("confirm-text").text
    b.shot("11-admin-confirms-reset")
    b.axe("admin, reset dialog")
    b.click("confirm-yes")
    assert "is reset" in b.alert()
    assert totpctl("status", BOB)["status"] == "not_enrolled"
    b.scroll_to("admin")
    b.shot("12-admin-after-reset")

    # Set up a user: the QR and the .jpg to hand over.
    b.type("enroll-user", "no-such-user-here")
    b.click("enroll-user-button")
    assert "no user no-such-user-here" in b.field_error("enroll-user")
    b.type("enroll-user", DAVE)
    b.click("enroll-user-button")
    qr = b.wait(lambda d: d.find_element(By.ID, "qr").get_attribute("src") or None)
    assert DAVE in b.el("enrollment-title").text
    b.click("download-jpg")
    uri = zbar(b.downloaded(f"{DAVE}-totp.jpg"))
    assert secret_of(uri)
    assert zbar_data_url(b, qr) == uri
    b.shot("13-admin-enrolls-a-user")
    b.axe("admin sets up a user")
    totpctl("reset", DAVE)
    totpctl("reset", CAROL)

    # The self-service switch.
    assert b.el("self-service").is_selected()
    b.click("self-service")
    b.wait(lambda d: totpctl("self-service", "status")["enabled"] is False)
    assert not b.el("self-service").is_selected()
    b.click("self-service")
    b.wait(lambda d: totpctl("self-service", "status")["enabled"] is True)


# A phone whose clock is five hours fast: its codes are those of five hours
# from now, 600 steps of 30 s.
FAST_STEPS = 5 * 3600 // 30


def resync_dialog(b, user, first, second):
    """Open Resync for `user` in the table, type the two codes, submit."""
    b.click_css(f"button[aria-label='Resync {user}']")
    b.visible("resync")
    assert b.focused() == "resync-first"
    b.type("resync-first", first)
    b.type("resync-second", second)
    b.click("resync-yes")


def test_an_admin_resyncs_a_phone_whose_clock_is_hours_fast(browser):
    b = browser
    secret = enroll_by_cli(BOB)

    def phone():
        """The phone's last two codes, in the order it showed them."""
        return oathtool(secret, FAST_STEPS - 1), oathtool(secret, FAST_STEPS)

    b.login(CAROL)
    b.admin_access(CAROL)
    b.open_panel()
    assert "Resync is for a hardware token pressed many times" in b.el("admin-help").text
    assert "A new phone does not need it" in b.el("admin-help").text
    row = row_of(b, BOB)
    assert "clock" not in row.text, row.text

    # The dialog: its title, what it is for (and not for), labelled fields.
    b.click_css(f"button[aria-label='Resync {BOB}']")
    b.visible("resync")
    assert b.focused() == "resync-first"
    assert b.el("resync-title").text == f"Resync {BOB}'s codes"
    assert "phone whose clock is far off" in b.el("resync-text").text
    assert "new phone does not need this" in b.el("resync-new-phone").text
    assert "scans their .jpg" in b.el("resync-new-phone").text
    # Nothing typed: asked at the field, before totpctl is run.
    b.click("resync-yes")
    assert "Type a code" in b.field_error("resync-first")
    assert b.focused() == "resync-first"
    b.shot("12a-admin-resync-dialog")
    b.axe("admin, resync dialog, a field's error")
    b.click("resync-no")
    b.wait(lambda d: not d.find_element(By.ID, "resync").is_displayed())
    b.wait(lambda d: d.switch_to.active_element.get_attribute("aria-label") == f"Resync {BOB}")

    # The pair in the wrong order: the page's words at the field, the
    # dialog stays open, nothing moved but the wrong code counted.
    first, second = phone()
    resync_dialog(b, BOB, second, first)
    error = b.field_error("resync-first")
    assert error.startswith(f"These are not two codes in a row from {BOB}'s token or app. Nothing was changed."), error
    assert "counts as a wrong code" in error, error
    assert "totpctl" not in error and "range searched" not in error, error
    assert b.el("resync").is_displayed()
    assert b.focused() == "resync-first"
    assert b.el("resync-first").get_attribute("aria-invalid") == "true"
    assert not b.el("alert").is_displayed()
    status = totpctl("status", BOB)
    assert status["skew"] == 0 and status["failures"] == 1, status
    b.shot("12b-admin-resync-refused")
    b.axe("admin, resync refused")
    # Escape closes it; the codes are gone from the fields.
    b.el("resync-first").send_keys(Keys.ESCAPE)
    b.wait(lambda d: not d.find_element(By.ID, "resync").is_displayed())
    assert b.el("resync-first").get_attribute("value") == ""
    assert b.el("resync-second").get_attribute("value") == ""
    # The table shows the wrong code it counted.
    b.wait(lambda d: "1" in [td.text for td in row_of(b, BOB).find_elements(By.TAG_NAME, "td")])

    # The pair in order: the clock's offset, in minutes, is learned.
    resync_dialog(b, BOB, *phone())
    text = b.alert()
    assert b.el("alert").get_attribute("class") == "alert alert-success"
    assert text.startswith(f"{BOB}'s clock is 300 min ahead: this offset is now allowed for"), text
    b.wait(lambda d: not d.find_element(By.ID, "resync").is_displayed())
    assert b.el("resync-first").get_attribute("value") == ""
    status = totpctl("status", BOB)
    # 600 steps, or 599 if a step began between oathtool and totpctl.
    assert status["skew"] in (FAST_STEPS - 1, FAST_STEPS), status
    assert status["failures"] == 0, status
    resynced_step = status["last_step"]
    b.wait(lambda d: "Active (clock 300 min ahead)" in row_of(b, BOB).text)
    # The focus is back on the row's button, drawn again.
    b.wait(lambda d: d.switch_to.active_element.get_attribute("aria-label") == f"Resync {BOB}")
    b.scroll_to("alert")
    b.shot("12c-admin-resync-done")
    b.axe("admin, resync done")

    # bob logs in with the code his phone shows now (a step the resync did
    # not use), five hours fast.
    b.login(BOB, code=oathtool(secret, FAST_STEPS + 1))
    status = totpctl("status", BOB)
    assert status["failures"] == 0 and status["last_step"] > resynced_step, status
    # His own page shows the skew learned.
    b.open_panel()
    codes_fact = b.d.find_element(
        By.XPATH, "//dl[@id='facts']/dt[.='Codes']/following-sibling::dd[1]").text
    assert f"(clock skew learned: +{status['skew']} steps)" in codes_fact, codes_fact
    totpctl("reset", BOB)


def zbar_data_url(b, data_url):
    path = os.path.join(b.downloads, "shown-admin.jpg")
    with open(path, "wb") as f:
        f.write(base64.b64decode(data_url.split(",", 1)[1]))
    return zbar(path)


def test_a_user_without_self_service_gets_an_explanation(browser):
    b = browser
    b.login(DAVE)
    b.open_panel()
    box = b.visible("unavailable")
    assert "may not set up two-factor login itself" in box.text, box.text
    assert b.el("mine").is_displayed() is False
    b.shot("14-not-in-the-self-service-group")
    b.axe("not in the self-service group")

    # Self-service off: a member is told what an administrator must do.
    assert cockpit_system.run("totpctl", "self-service", "disable").returncode == 0
    try:
        b.login(ALICE)
        b.open_panel()
        box = b.visible("unavailable")
        assert "self-service is turned off" in box.text, box.text
        assert "totpctl self-service enable" in box.text, box.text
        b.shot("15-self-service-off")
        b.axe("self-service off")
    finally:
        assert cockpit_system.run("totpctl", "self-service", "enable").returncode == 0


def test_dark_theme_and_a_narrow_window(browser):
    b = browser
    b.login(ALICE)
    b.d.execute_script("localStorage.setItem('shell:style', 'dark')")
    b.open_panel()
    assert "pf-theme-dark" in b.d.find_element(By.TAG_NAME, "html").get_attribute("class")
    b.click("setup")
    b.wait(lambda d: d.find_element(By.ID, "qr").get_attribute("src") or None)
    b.shot("16-dark-theme")
    b.resize(420, 900, mobile=True)
    overflow = b.d.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px in a narrow window"
    b.shot("17-narrow-window")
    # Keyboard: the code field takes focus after Set up.
    b.resize(1280, 800)
    assert b.d.switch_to.active_element.get_attribute("id") == "code"

    # Leaving the page forgets the secret: Cockpit keeps the page loaded
    # while another is shown, and on return the QR and the key are gone.
    b.d.switch_to.default_content()
    b.d.find_element(By.XPATH, "//nav//a[contains(., 'Overview')]").click()
    b.wait(EC.visibility_of_element_located((By.CSS_SELECTOR, "iframe[name='cockpit1:localhost/system']")))
    b.d.find_element(By.XPATH, "//nav//a[contains(., 'Two-factor login')]").click()
    frame = b.wait(EC.visibility_of_element_located(
        (By.CSS_SELECTOR, "iframe[name='cockpit1:localhost/totp']")))
    b.d.switch_to.frame(frame)
    assert not b.el("enrollment").is_displayed()
    assert not b.el("qr").get_attribute("src")
    assert b.el("key").text == ""
    totpctl("reset", ALICE)


def test_page_load_timing(browser):
    """Page load to status shown, median of 10 (reported, not asserted)."""
    b = browser
    b.login(ALICE)
    times = []
    for _ in range(10):
        start = time.monotonic()
        b.open_panel()
        b.wait(lambda d: d.find_element(By.ID, "state-label").text != "")
        times.append(time.monotonic() - start)
    PERF["page load to status (median of 10)"] = statistics.median(times)
    with open(os.path.join(SHOTS, "perf.txt"), "w") as f:
        for name, seconds in PERF.items():
            line = f"PERF {name}: {seconds * 1000:.0f} ms"
            print(line)
            f.write(line + "\n")
