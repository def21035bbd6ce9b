"""The Cockpit page for everyone: the keyboard alone, the dark theme, a
phone's width and the French page, each state checked by axe-core.

Runs after test_panel.py (file order), with the machine it prepared: the
same users, self-service on, nobody enrolled at the start.
"""

import os
import re
import sys
import time

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from test_panel import (ALICE, BOB, CAROL, DAVE, SEEN, SHOTS, Browser, enroll_by_cli,  # noqa: F401
                        oathtool, secret_of, totpctl, wrong_code, zbar, zbar_data_url,
                        browser)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
import po  # noqa: E402  (scripts/po.py: the page's messages and their French)


def press(b, *keys):
    ActionChains(b.d).send_keys(*keys).perform()


def focus_ring(b):
    """The focused control, and whether it shows a focus ring (an outline
    of 2 px at least)."""
    return b.d.execute_script("""
        const e = document.activeElement;
        const s = getComputedStyle(e);
        return { id: e.id || e.tagName, style: s.outlineStyle, width: parseFloat(s.outlineWidth) };""")


def tab_to(b, id_, backwards=False, limit=25):
    """Tab (or Shift+Tab) until `id_` has the focus; every control passed
    on the way shows a visible focus ring."""
    for _ in range(limit):
        if backwards:
            press(b, Keys.SHIFT, Keys.TAB, Keys.SHIFT)
        else:
            press(b, Keys.TAB)
        ring = focus_ring(b)
        assert ring["style"] != "none" and ring["width"] >= 2, f"no visible focus on {ring}"
        if ring["id"] == id_:
            return
    raise AssertionError(f"{id_} is not reachable with the keyboard")


def tab_to_row_button(b, action, user):
    """From the top of the page, Tab to the button of `action` in
    `user`'s row of the admin table (its name is "Action user")."""
    b.d.execute_script("document.getElementById('page-top').focus()")
    for _ in range(30):
        press(b, Keys.TAB)
        # Read in the page: the table may be drawn again meanwhile.
        if b.d.execute_script("return document.activeElement.getAttribute('aria-label')") == f"{action} {user}":
            return
    raise AssertionError(f"{action} is not reachable with the keyboard")


def qr_src(b):
    return b.el("qr").get_attribute("src")


def test_the_keyboard_alone_sets_up_and_finishes(browser):
    b = browser
    b.login(ALICE)
    b.open_panel()
    b.d.execute_script("document.getElementById('page-top').focus()")
    # Set up, with Enter.
    tab_to(b, "setup")
    press(b, Keys.ENTER)
    b.wait(lambda d: qr_src(b))
    assert b.focused() == "code"
    first = qr_src(b)
    secret = secret_of(zbar_data_url(b, first))
    b.d.execute_script("document.getElementById('page-top').focus()")
    tab_to(b, "restart")
    # Start again asks; Escape cancels and nothing changes.
    press(b, Keys.ENTER)
    b.visible("confirm")
    assert b.focused() == "confirm-no"
    b.shot("a11y-01-keyboard-restart-dialog")
    press(b, Keys.ESCAPE)
    b.wait(lambda d: not d.find_element(By.ID, "confirm").is_displayed())
    assert qr_src(b) == first
    # The details disclosure and Download .jpg, with the keyboard.
    tab_to(b, "params-summary")
    press(b, Keys.ENTER)
    assert "SHA1" in b.visible("params").text
    tab_to(b, "download-jpg")
    press(b, Keys.ENTER)
    assert secret_of(zbar(b.downloaded(f"{ALICE}-totp.jpg"))) == secret
    tab_to(b, "code")
    # A wrong code then the right one, each with Enter in the field.
    press(b, wrong_code(secret), Keys.ENTER)
    b.visible("code-error")
    assert b.focused() == "code"
    press(b, oathtool(secret), Keys.ENTER)
    b.wait_state("Active")
    SEEN.update(li.text for li in b.d.find_elements(By.CSS_SELECTOR, "#codes li"))
    assert b.focused() == "enrollment-title"
    tab_to(b, "print-codes")
    tab_to(b, "codes-done")
    b.shot("a11y-02-keyboard-done")
    press(b, Keys.ENTER)
    b.wait(lambda d: not d.find_element(By.ID, "enrollment").is_displayed())
    assert not qr_src(b)
    # The proof field and its buttons.
    b.d.execute_script("document.getElementById('page-top').focus()")
    tab_to(b, "proof")
    tab_to(b, "disable")
    press(b, Keys.ENTER)
    assert "Type a current code" in b.field_error("proof")
    assert b.focused() == "proof"
    totpctl("reset", ALICE)


def test_an_admin_with_the_keyboard(browser):
    b = browser
    secret = enroll_by_cli(BOB)
    for _ in range(3):
        b.login(BOB, code=wrong_code(secret), expect_shell=False)
        b.login_error()
    b.login(CAROL)
    b.admin_access(CAROL)
    b.open_panel()
    b.d.execute_script("document.getElementById('page-top').focus()")
    # The self-service switch takes Space.
    tab_to(b, "self-service")
    press(b, Keys.SPACE)
    b.wait(lambda d: totpctl("self-service", "status")["enabled"] is False)
    # Still focused once done, so Space turns it back on.
    b.wait(lambda d: b.el("self-service").is_enabled() and b.focused() == "self-service")
    press(b, Keys.SPACE)
    b.wait(lambda d: totpctl("self-service", "status")["enabled"] is True)
    b.wait(lambda d: b.el("self-service").is_enabled())
    # Unlock and Reset in the row; Reset's dialog closes with Escape.
    b.wait(lambda d: d.find_elements(By.CSS_SELECTOR, f"button[aria-label='Unlock {BOB}']"))
    tab_to_row_button(b, "Unlock", BOB)
    ring = focus_ring(b)
    assert ring["style"] != "none" and ring["width"] >= 2, ring
    b.shot("a11y-03-keyboard-admin-unlock")
    press(b, Keys.ENTER)
    b.wait(lambda d: not totpctl("status", BOB)["locked_until"])
    # The table is drawn again after the unlock: Tab to Reset in it.
    b.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, f"button[aria-label='Unlock {BOB}']"))
    tab_to_row_button(b, "Reset", BOB)
    press(b, Keys.ENTER)
    b.visible("confirm")
    press(b, Keys.ESCAPE)
    b.wait(lambda d: not d.find_element(By.ID, "confirm").is_displayed())
    assert totpctl("status", BOB)["status"] == "active"
    # Resync: its dialog takes the focus in the first field, Tab reaches
    # the second and the buttons, Escape closes it and gives the focus back.
    tab_to_row_button(b, "Resync", BOB)
    ring = focus_ring(b)
    assert ring["style"] != "none" and ring["width"] >= 2, ring
    press(b, Keys.ENTER)
    b.visible("resync")
    assert b.focused() == "resync-first"
    tab_to(b, "resync-second")
    tab_to(b, "resync-yes")
    # Enter with the fields empty: the error at the first field.
    press(b, Keys.ENTER)
    assert "Type a code" in b.field_error("resync-first")
    assert b.focused() == "resync-first"
    b.shot("a11y-03b-keyboard-resync-dialog")
    press(b, Keys.ESCAPE)
    b.wait(lambda d: not d.find_element(By.ID, "resync").is_displayed())
    b.wait(lambda d: d.switch_to.active_element.get_attribute("aria-label") == f"Resync {BOB}")
    assert totpctl("status", BOB)["failures"] == 0
    # Set up a user: type the name, Enter.
    tab_to(b, "enroll-user")
    press(b, DAVE, Keys.ENTER)
    b.wait(lambda d: qr_src(b))
    totpctl("reset", DAVE)
    totpctl("reset", BOB)


def every_state(b, prefix, theme, phone=False):
    """Walk a user through every state of the page, axe at each, with a
    screenshot per state."""
    b.theme = theme
    b.login(ALICE)
    if theme == "dark":
        b.d.execute_script("localStorage.setItem('shell:style', 'dark')")
    b.open_panel()
    b.shot(f"{prefix}-01-not-set-up")
    b.axe("not set up")
    b.click("setup")
    b.wait(lambda d: qr_src(b))
    secret = secret_of(zbar_data_url(b, qr_src(b)))
    b.click_css("#params-details summary")
    b.shot(f"{prefix}-02-qr")
    b.axe("QR shown, details open")
    b.type("code", wrong_code(secret))
    b.click("activate")
    b.visible("code-error")
    b.shot(f"{prefix}-03-wrong-code")
    b.axe("wrong code")
    b.click("restart")
    b.visible("confirm")
    b.shot(f"{prefix}-04-restart-dialog")
    b.axe("start again dialog")
    b.click("confirm-no")
    b.type("code", oathtool(secret))
    b.click("activate")
    b.wait_state("Active")
    SEEN.update(li.text for li in b.d.find_elements(By.CSS_SELECTOR, "#codes li"))
    b.shot(f"{prefix}-05-activated-not-kept")
    b.axe("activated, QR not kept")
    b.click("codes-done")
    b.visible("confirm")
    b.shot(f"{prefix}-06-forget-dialog")
    b.axe("forget the QR dialog")
    b.click("confirm-yes")
    b.wait(lambda d: not d.find_element(By.ID, "enrollment").is_displayed())
    b.type("proof", wrong_code(secret))
    b.click("disable")
    b.visible("proof-error")
    b.shot(f"{prefix}-07-active-proof-refused")
    b.axe("active, proof refused")
    totpctl("reset", ALICE)
    # The administrator's table, a locked user in it.
    bob = enroll_by_cli(BOB)
    for _ in range(3):
        b.login(BOB, code=wrong_code(bob), expect_shell=False)
        b.login_error()
    b.login(CAROL)
    if phone:
        # The shell's own administrative access button, at a desktop width.
        b.resize(1280, 800)
    b.admin_access(CAROL)
    if phone:
        b.resize(390, 844, mobile=True)
    b.open_panel()
    b.wait(lambda d: d.find_elements(By.CSS_SELECTOR, f"button[aria-label='Unlock {BOB}']"))
    b.scroll_to("admin")
    b.shot(f"{prefix}-08-admin-table")
    b.axe("admin table")
    # Resync's dialog, with a field's error.
    b.click_css(f"button[aria-label='Resync {BOB}']")
    b.visible("resync")
    b.click("resync-yes")
    b.visible("resync-first-error")
    b.shot(f"{prefix}-09-resync-dialog")
    b.axe("resync dialog, a field's error")
    b.click("resync-no")
    b.wait(lambda d: not d.find_element(By.ID, "resync").is_displayed())
    totpctl("reset", BOB)


def test_every_state_in_the_dark_theme(browser):
    every_state(browser, "dark", "dark")


def test_axe_finds_a_fault_when_there_is_one(browser):
    """The check can fail: a button without a name and an image without a
    text, added to the page, are critical violations."""
    b = browser
    b.login(ALICE)
    b.open_panel()
    b.d.execute_script("""document.getElementById("page").insertAdjacentHTML("afterbegin",
        '<button id="probe-button"></button><img id="probe-text" src="data:,">')""")
    with pytest.raises(AssertionError) as failed:
        b.axe("with a fault added")
    assert "button-name" in str(failed.value) and "image-alt" in str(failed.value), failed.value
    b.d.execute_script("for (const id of ['probe-button', 'probe-text']) document.getElementById(id).remove()")
    b.axe("the fault removed")


def test_every_state_at_a_phone_width():
    b = Browser(width=390, height=844)
    try:
        b.resize(390, 844, mobile=True)
        every_state(b, "phone", "light", phone=True)
        overflow = b.d.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the admin table scrolls sideways by {overflow}px on a phone"
    finally:
        b.quit()


def english_left(b, fr):
    """Visible English: a message of the page shown untranslated, or an
    English word in the page's text."""
    # The page's text, without the key and the recovery codes (random
    # letters can spell an English word).
    text = b.d.execute_script("""
        let text = document.body.innerText;
        for (const e of document.querySelectorAll("#key, #codes li"))
            text = text.split(e.innerText).join(" ");
        return text;""")
    left = [m for m, t in fr.items() if len(m) >= 12 and t != m and m in text]
    words = re.findall(r"\b(?:the|your|with|you|and)\b", text, re.IGNORECASE)
    return left + words


def test_the_page_in_french(browser):
    b = browser
    entries, _ = po.read_po(po.PO_DIR / "fr.po")
    fr = {m.msgid: m.strs[0] for m in entries}
    b.login(ALICE, lang="fr")
    b.open_panel()
    assert b.d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "fr"
    assert b.state() == "Non configuré"
    assert b.el("setup").text == "Configurer"
    assert not english_left(b, fr), english_left(b, fr)
    b.shot("fr-01-not-set-up")
    b.axe("French, not set up")
    b.click("setup")
    b.wait(lambda d: qr_src(b))
    secret = secret_of(zbar_data_url(b, qr_src(b)))
    assert b.el("enrollment-title").text == "Configurer la connexion à deux facteurs"
    b.type("code", wrong_code(secret))
    b.click("activate")
    assert b.field_error("code").startswith("Code erroné")
    assert not english_left(b, fr), english_left(b, fr)
    b.shot("fr-02-qr-wrong-code")
    b.axe("French, wrong code")
    b.click("download-jpg")
    b.downloaded(f"{ALICE}-totp.jpg")
    b.type("code", oathtool(secret))
    b.click("activate")
    b.wait_state("Active")
    SEEN.update(li.text for li in b.d.find_elements(By.CSS_SELECTOR, "#codes li"))
    assert b.el("enrollment-title").text == "La connexion à deux facteurs est active"
    assert not english_left(b, fr), english_left(b, fr)
    b.shot("fr-03-activated")
    b.axe("French, activated")
    b.click("codes-done")
    totpctl("reset", ALICE)
    # The administrator's table: its words and dates in French.
    enroll_by_cli(BOB)
    b.login(CAROL)
    b.admin_access(CAROL)
    b.set_language("fr")
    b.open_panel()
    assert b.d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "fr"
    headers = [th.text for th in b.d.find_elements(By.CSS_SELECTOR, "#users-table thead th")]
    assert headers[:3] == ["Utilisateur", "État", "Dernière connexion avec un code"], headers
    row = b.d.find_element(By.XPATH, f"//tbody[@id='users']/tr[th='{BOB}']")
    assert "Active" in row.text and "Non" in row.text, row.text
    assert not english_left(b, fr), english_left(b, fr)
    b.scroll_to("admin")
    b.shot("fr-04-admin-table")
    b.axe("French, admin table")
    totpctl("reset", BOB)
    b.set_language("en")
    time.sleep(0.1)
