"""The Cockpit page on an LDAP host: a real slapd (Debian's), loaded with
the schema and the access rules as the package installs them
(/usr/share/pam_totp/ldap), reached over its ldapi socket with a host bind,
and with or without the admin bind that writes records.

With the admin bind, self-service and the admin table work through it.
Without it, the page says what that means instead of showing an error:
reads, and Unlock (a login-state write, which the host bind may do), still
work; setting up, Reset, Resync and turning off are not offered.

slapd runs, and the config is written, in the system cockpit-ws runs in
(cockpit_system.py: this machine or the Debian 13 chroot).
"""

import os
import shutil
import subprocess
import time
import urllib.parse

import pytest
from selenium.webdriver.common.by import By

import cockpit_system
from test_panel import (ALICE, CAROL, SEEN, Browser, oathtool, secret_of, totpctl,  # noqa: F401
                        wrong_code, zbar_data_url, browser)

SUFFIX = "dc=example,dc=org"
BASE_DN = f"ou=pam_totp,{SUFFIX}"
ROOT_DN = f"cn=root,{SUFFIX}"
HOST_DN = f"cn=host-a,ou=totp-hosts,{SUFFIX}"
ADMIN_DN = f"cn=totp-admin,{SUFFIX}"
SHIPPED = "/usr/share/pam_totp/ldap"
CONFIG = cockpit_system.path("/etc/pam_totp/config.toml")


class Directory:
    """slapd in a temporary directory, listening on its ldapi socket only.
    `here` is the directory as seen from here, `dir` as slapd sees it."""

    def __init__(self):
        self.here = cockpit_system.mkdtemp(prefix="pamtotp-slapd-")
        self.dir = cockpit_system.inside(self.here)
        os.chmod(self.here, 0o700)
        os.mkdir(os.path.join(self.here, "db"))
        self.socket = os.path.join(self.dir, "ldapi")
        self.uri = "ldapi://" + urllib.parse.quote(self.socket, safe="")
        self.passwords = {}
        for name in ("root", "host-a", "totp-admin"):
            with open(os.open(os.path.join(self.here, f"{name}.pw"),
                              os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
                f.write(os.urandom(18).hex())
            self.passwords[name] = os.path.join(self.dir, f"{name}.pw")
        conf = os.path.join(self.dir, "slapd.conf")
        with open(os.path.join(self.here, "slapd.conf"), "w") as f:
            f.write(
                "include /etc/ldap/schema/core.schema\n"
                "include /etc/ldap/schema/cosine.schema\n"
                "include /etc/ldap/schema/inetorgperson.schema\n"
                f"include {SHIPPED}/pam_totp.schema\n"
                f"pidfile {self.dir}/slapd.pid\nargsfile {self.dir}/slapd.args\nloglevel none\n"
                "modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
                f"database mdb\nsuffix \"{SUFFIX}\"\nrootdn \"{ROOT_DN}\"\n"
                f"rootpw {self.hash('root')}\ndirectory {self.dir}/db\nmaxsize 1073741824\n"
                f"dbnosync\ninclude {SHIPPED}/acl.conf\n")
        self.stderr = open(os.path.join(self.here, "slapd.stderr"), "w")
        # chroot execs slapd: the PID is slapd's.
        self.proc = subprocess.Popen(
            cockpit_system.command("/usr/sbin/slapd", "-f", conf, "-h", self.uri + "/", "-d", "0"),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + 15
        while self.ldap("ldapwhoami", ROOT_DN).returncode != 0:
            assert self.proc.poll() is None, open(self.stderr.name).read()
            assert time.monotonic() < deadline, "slapd did not answer on its ldapi socket"
            time.sleep(0.05)
        seed = (
            f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n"
            f"dn: {BASE_DN}\nobjectClass: organizationalUnit\nou: pam_totp\n\n"
            f"dn: ou=totp-hosts,{SUFFIX}\nobjectClass: organizationalUnit\nou: totp-hosts\n\n"
            f"dn: {HOST_DN}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\n"
            f"cn: host-a\nuserPassword: {self.hash('host-a')}\n\n"
            f"dn: {ADMIN_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
            f"cn: totp-admin\nuserPassword: {self.hash('totp-admin')}\n\n"
            f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n"
            f"dn: cn=totp-admins,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\n"
            f"cn: totp-admins\nmember: {ADMIN_DN}\n")
        out = self.ldap("ldapadd", ROOT_DN, input=seed)
        assert out.returncode == 0, out.stderr

    def hash(self, name):
        out = cockpit_system.run("slappasswd", "-T", self.passwords[name], check=True)
        return out.stdout.strip()

    def ldap(self, tool, dn, *args, input=None):
        name = {ROOT_DN: "root", HOST_DN: "host-a", ADMIN_DN: "totp-admin"}[dn]
        return cockpit_system.run(tool, "-x", "-H", self.uri, "-D", dn, "-y", self.passwords[name], *args,
                                  input=input, timeout=30)

    def entry(self, user):
        out = self.ldap("ldapsearch", ROOT_DN, "-LLL", "-b", BASE_DN, f"(uid={user})", "uid", "totpRecord")
        assert out.returncode == 0, out.stderr
        return out.stdout

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.stderr.close()
        shutil.rmtree(self.here, ignore_errors=True)


@pytest.fixture(scope="module")
def directory():
    with open(CONFIG) as f:
        saved = f.read()
    d = Directory()
    d.saved_config = saved
    yield d
    # Remove what the tests left in the directory (with the admin bind),
    # then put the files store back.
    try:
        use_ldap(d, admin_bind=True)
        totpctl("reset", ALICE)
    finally:
        write_config(saved)
        d.stop()


def write_config(text):
    mode = os.stat(CONFIG).st_mode & 0o7777
    tmp = CONFIG + ".test-tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, CONFIG)


def use_ldap(d, admin_bind):
    text = d.saved_config + (
        f'\n[store]\nbackend = "ldap"\n\n[ldap]\nuris = ["{d.uri}"]\nbase_dn = "{BASE_DN}"\n'
        f'bind_dn = "{HOST_DN}"\nbind_password_file = "{d.passwords["host-a"]}"\n')
    if admin_bind:
        text += (f'admin_bind_dn = "{ADMIN_DN}"\n'
                 f'admin_bind_password_file = "{d.passwords["totp-admin"]}"\n')
    write_config(text)


STATE = {}


def test_an_ldap_host_with_the_admin_bind(browser, directory):
    b = browser
    use_ldap(directory, admin_bind=True)
    b.login(ALICE)
    b.open_panel()
    assert b.state() == "Not set up"
    assert not b.el("store-note").is_displayed()
    b.click("setup")
    qr = b.wait(lambda d: d.find_element(By.ID, "qr").get_attribute("src") or None)
    secret = secret_of(zbar_data_url(b, qr))
    b.click("download-jpg")
    b.type("code", oathtool(secret))
    b.click("activate")
    b.wait_state("Active")
    SEEN.update(li.text for li in b.d.find_elements(By.CSS_SELECTOR, "#codes li"))
    b.click("codes-done")
    # The record is in the directory, written through the admin bind.
    entry = directory.entry(ALICE)
    assert f"uid: {ALICE}" in entry and "totpRecord" in entry, entry
    STATE["secret"] = secret

    b.login(CAROL)
    b.admin_access(CAROL)
    b.open_panel()
    row = b.wait(lambda d: d.find_element(By.XPATH, f"//tbody[@id='users']/tr[th='{ALICE}']"))
    assert "Active" in row.text, row.text
    assert "kept in the directory (LDAP)" in b.visible("admin-store-note").text
    assert b.d.find_elements(By.CSS_SELECTOR, f"button[aria-label='Reset {ALICE}']")
    assert b.d.find_elements(By.CSS_SELECTOR, f"button[aria-label='Resync {ALICE}']")
    assert b.el("enroll-user-form").is_displayed()
    b.shot("ldap-01-admin-with-admin-bind")
    b.axe("LDAP, admin bind, admin table")


def test_an_ldap_host_without_the_admin_bind(browser, directory):
    b = browser
    secret = STATE["secret"]
    use_ldap(directory, admin_bind=False)
    # The user: the status reads, and the page says why nothing changes here.
    b.login(ALICE, code=oathtool(secret, 1))
    b.open_panel()
    assert b.state() == "Active"
    note = b.visible("store-note").text
    assert "only reads two-factor login from the directory (LDAP)" in note, note
    assert "no administrator bind" in note, note
    for id_ in ("setup", "restart", "proof", "disable", "replace", "new-recovery"):
        assert not b.el(id_).is_displayed(), id_
    assert not b.el("alert").is_displayed()
    b.shot("ldap-02-user-without-admin-bind")
    b.axe("LDAP, no admin bind, user")
    # totpctl itself refuses the write, as the page says.
    refused = totpctl("reset", ALICE)
    assert refused["error"]["code"] == "store_error", refused
    assert "admin_bind_dn" in refused["error"]["message"], refused

    # Locked by wrong codes at the login (the host bind writes the state).
    for _ in range(3):
        b.login(ALICE, code=wrong_code(secret), expect_shell=False)
        b.login_error()
    b.login(CAROL)
    b.admin_access(CAROL)
    b.open_panel()
    b.wait(lambda d: d.find_elements(By.CSS_SELECTOR, f"button[aria-label='Unlock {ALICE}']"))
    note = b.visible("admin-store-note").text
    assert "no administrator bind" in note and "Unlock works here" in note, note
    assert not b.d.find_elements(By.CSS_SELECTOR, "button[aria-label^='Reset ']")
    assert not b.d.find_elements(By.CSS_SELECTOR, "button[aria-label^='Resync ']")
    assert not b.el("help-resync").is_displayed()
    assert not b.el("enroll-user-form").is_displayed()
    assert not b.el("help-reset").is_displayed()
    assert not b.el("alert").is_displayed()
    b.shot("ldap-03-admin-without-admin-bind")
    b.axe("LDAP, no admin bind, admin table")
    b.click_css(f"button[aria-label='Unlock {ALICE}']")
    assert "is unlocked" in b.alert()
    assert not totpctl("status", ALICE)["locked_until"]
