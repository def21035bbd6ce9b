"""forward_pass stacks on Cockpit's login page, in headless Chromium against
a real cockpit-ws: the user types the password and the code in the one
password field. The right password with a wrong code never logs in; the
right password with the right code logs in wherever the stack checks the
code (google-authenticator's two lines and the wrong variants are refused
by the forward_pass line itself).

It rewrites /etc/pam.d/cockpit for each stack and puts it back after; run
it under the machine's shared lock, as scripts/browser-test.sh is run:

    flock /tmp/pam_totp-system.lock scripts/browser-test.sh

PAM_TOTP_MODULE names the module to test (default: the installed
pam_totp.so); a development run can point it at target/debug/libpam_totp.so
and start its own cockpit-ws (PANEL_URL). The user, the files and the
stacks are those of the system cockpit-ws runs in (cockpit_system.py: this
machine or the Debian 13 chroot).
"""

import os
import shutil
import subprocess
import tempfile
import time

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

import cockpit_system
from test_panel import login_error_shown

URL = os.environ["PANEL_URL"]
MODULE = os.environ.get("PAM_TOTP_MODULE", "pam_totp.so")
USER = "pamtotp-cp-fwd"
PASSWORD = "Fwd-Pw-1"
SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
PAM_COCKPIT = cockpit_system.path("/etc/pam.d/cockpit")
INCLUDED = "pamtotp-test-fwd-auth"
INCLUDED_PATH = cockpit_system.path(f"/etc/pam.d/{INCLUDED}")


def code(offset_steps=0):
    at = int(time.time()) + 30 * offset_steps
    out = subprocess.run(["oathtool", "--totp", "--base32", "-N", f"@{at}", SECRET],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def wrong_code():
    window = {code(k) for k in range(-4, 5)}
    return next(c for c in (str(d) * 6 for d in range(10)) if c not in window)


def stacks(config):
    """(name, auth lines, included file or None, checks the code), as
    tests/support/lib.rs forward_pass_stacks has them."""
    fwd = f"auth required {MODULE} config={config} forward_pass\n"
    check = f"auth required {MODULE} config={config}\n"
    two = fwd + "auth required pam_unix.so use_first_pass nodelay\n"
    three = fwd + "auth requisite pam_unix.so use_first_pass nodelay\n" + check
    return [
        ("two lines", two, None, False),
        ("three lines", three, None, True),
        ("sufficient password line",
         fwd + "auth sufficient pam_unix.so use_first_pass nodelay\n" + check, None, False),
        ("two lines in a substack", f"auth substack {INCLUDED}\n", two, False),
        ("two lines included", f"auth include {INCLUDED}\n", two, False),
        ("three lines in a substack", f"auth substack {INCLUDED}\n", three, True),
    ]


@pytest.fixture
def machine():
    """A user with a password, enrolled in a private store; the original
    /etc/pam.d/cockpit kept and put back."""
    work = cockpit_system.mkdtemp(prefix="pamtotp-fwd-")
    os.chmod(work, 0o755)
    for sub in ("users", "state"):
        os.mkdir(os.path.join(work, sub), 0o700)
    config = os.path.join(work, "config.toml")
    there = cockpit_system.inside(work)
    with open(config, "w") as f:
        f.write(f'[paths]\nusers_dir = "{there}/users"\nstate_dir = "{there}/state"\n'
                "[throttle]\nbackoff_seconds = 0\nbackoff_max_seconds = 0\n")
    record = os.path.join(work, "users", f"{USER}.toml")
    with open(record, "w") as f:
        f.write(f'version = 1\nstatus = "active"\nsecret = "{SECRET}"\nalgorithm = "SHA1"\n'
                "digits = 6\nperiod = 30\n")
    os.chmod(record, 0o600)
    cockpit_system.run("useradd", "-m", "-s", "/bin/bash", USER)
    cockpit_system.run("chpasswd", input=f"{USER}:{PASSWORD}\n", check=True)
    saved = os.path.join(work, "cockpit.pam")
    shutil.copy2(PAM_COCKPIT, saved)
    with open(saved) as f:
        original = f.read()
    try:
        yield work, cockpit_system.inside(config), original
    finally:
        shutil.copy2(saved, PAM_COCKPIT)
        if os.path.exists(INCLUDED_PATH):
            os.remove(INCLUDED_PATH)
        for pid in cockpit_system.run("pgrep", "-u", USER).stdout.split():
            cockpit_system.run("kill", pid)
        time.sleep(0.2)
        cockpit_system.run("userdel", "-r", USER)
        shutil.rmtree(work)


def install(original, auth_lines, included):
    """Cockpit's own stack with its password check replaced by `auth_lines`."""
    lines = original.splitlines(keepends=True)
    at = next(i for i, l in enumerate(lines) if l.split()[:2] == ["auth", "substack"])
    with open(PAM_COCKPIT, "w") as f:
        f.write("".join(lines[:at]) + auth_lines + "".join(lines[at + 1:]))
    if included is not None:
        with open(INCLUDED_PATH, "w") as f:
            f.write(included)


@pytest.fixture
def browser():
    profile = tempfile.mkdtemp(prefix="pamtotp-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,900", f"--user-data-dir={profile}", "--lang=en-US"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def log_in(driver, answer):
    """Submit the login form; True if the shell loads, False on an error."""
    driver.delete_all_cookies()
    driver.get(URL + "/")
    wait = WebDriverWait(driver, 30)
    wait.until(EC.visibility_of_element_located((By.ID, "login-user-input"))).send_keys(USER)
    driver.find_element(By.ID, "login-password-input").send_keys(answer)
    driver.find_element(By.ID, "login-button").click()

    def settled(d):
        if d.find_elements(By.CSS_SELECTOR, "iframe"):
            return "shell"
        if login_error_shown(d):
            return "error"
        prompt = d.find_elements(By.ID, "conversation-input")
        if prompt and prompt[0].is_displayed():
            return "prompt"
        return False

    return wait.until(settled)


def test_forward_pass_stacks_on_the_login_page(machine, browser):
    work, config, original = machine
    for name, auth_lines, included, checks_code in stacks(config):
        install(original, auth_lines, included)
        state = os.path.join(work, "state", f"{USER}.state")
        if os.path.exists(state):
            os.remove(state)
        wrong = log_in(browser, PASSWORD + wrong_code())
        assert wrong != "shell", f"{name}: right password + wrong code logged in"
        right = log_in(browser, PASSWORD + code())
        if checks_code:
            assert right == "shell", f"{name}: right password + right code: {right}"
        else:
            assert right != "shell", f"{name}: a stack that checks no code logged in"
