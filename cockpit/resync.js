/*
 * cockpit-totp: Resync in the administrators' table. A hardware token
 * pressed too often, or a phone whose clock is far off, is found again
 * from two consecutive codes: one call of `totpctl resync USER --json`,
 * root only, the two codes on its standard input (never in argv), as
 * totp.js does every call. The codes are in the dialog's fields only
 * while it is open; nothing here writes to the console.
 *
 * totp.js calls window.totpResync(page) once with its helpers; the
 * result opens the dialog for one user of the table.
 *
 * Copyright the pam_totp developers. GPL-3.0-or-later.
 */
"use strict";

window.totpResync = function ({ totpctl, act, showAlert, fieldError, clearFieldError, refreshAdmin }) {
    const $ = id => document.getElementById(id);
    const _ = cockpit.gettext;
    const format = cockpit.format;
    const fields = ["resync-first", "resync-second"];
    let open = null; // { user, type, digits, period, button }

    /* How far a phone's clock is off, from its skew in steps. */
    function clockText(skew, period) {
        const seconds = Math.abs(skew) * (period || 30);
        const ahead = skew > 0;
        if (seconds < 60)
            return format(ahead ? _("$0 s ahead") : _("$0 s behind"), seconds);
        const minutes = Math.round(seconds / 60);
        return format(ahead ? _("$0 min ahead") : _("$0 min behind"), minutes);
    }

    /* A refusal, in the page's words, and the field it belongs to; null
     * for an error the page's alert shows as it is. */
    function refusal(error, user) {
        const unchanged = " " + _("Nothing was changed.");
        switch (error.code) {
        case "resync_failed":
            return ["resync-first", format(_("These are not two codes in a row from $0's token or app."), user) + unchanged +
                    " " + _("Type a code it shows, then the very next one (on a phone, wait for the code to change). Each try counts as a wrong code.")];
        case "malformed_code":
            return ["resync-first", _("One of these is not a code from the token or app: type the digits each shows.")];
        case "no_code":
            return ["resync-first", _("Type a code that the token or app shows.")];
        case "locked_out":
            return ["resync-first", format(_("$0 is locked after too many wrong codes: nothing was compared. Unlock $0 first, then try again."), user)];
        case "too_soon":
            return ["resync-first", _("Wait a few seconds after a wrong code, then try again. Nothing was compared.")];
        case "not_enrolled":
        case "still_pending":
            return ["resync-first", format(_("$0 has no active two-factor login any more: there is nothing to resync."), user)];
        case "unknown_user":
            return ["resync-first", format(_("There is no user $0 on this system."), user)];
        case "store_error":
            return ["resync-first", format(_("The login state of $0 could not be written."), user) + unchanged];
        default:
            return null;
        }
    }

    /* What changed, for the success alert. */
    function changed(r, period) {
        if (r.type === "hotp")
            return format(_("$0's token is in step again: its counter moved $1 presses ahead, and its next code logs in."), r.user, r.moved_by);
        if (!r.skew)
            return format(_("$0's clock is right: the codes matched without an offset, and they log in."), r.user);
        return format(_("$0's clock is $1: this offset is now allowed for, and its codes log in. Better still, set the clock right."),
                      r.user, clockText(r.skew, period));
    }

    function clear() {
        for (const id of fields) {
            $(id).value = "";
            clearFieldError(id);
        }
    }

    /* The two codes as typed: { codes }, or { field, message } for one
     * not typed (totpctl judges the rest). */
    function read() {
        const codes = fields.map(id => $(id).value.replace(/\s+/g, ""));
        if (!codes[0])
            return { field: fields[0], message: _("Type a code that the token or app shows.") };
        if (!codes[1])
            return { field: fields[1], message: _("Type the next code it shows, after the first one.") };
        return { codes };
    }

    function submit(event) {
        event.preventDefault();
        if (!open)
            return;
        for (const id of fields)
            clearFieldError(id);
        const { codes, field, message } = read();
        if (!codes) {
            fieldError(field, message);
            return;
        }
        const { user, period, button } = open;
        let refused = null;
        act($("resync-yes"), () => totpctl(["resync", user], { input: codes.join("\n"), asAdmin: true })
                .then(r => {
                    close();
                    showAlert(changed(r, period), "success");
                    return refreshAdmin().then(() => (rowButton(user) || button).focus());
                }, error => {
                    refused = refusal(error, user);
                    if (!refused) {
                        close();
                        throw error;
                    }
                    // A refused pair counts as a wrong code: the table shows it.
                    return refreshAdmin();
                }))
                .finally(() => {
                    if (refused && open)
                        fieldError(refused[0], refused[1]);
                });
    }

    /* The user's Resync button as the table is drawn now (it is drawn
     * again after every change). */
    function rowButton(user) {
        return document.querySelector(`#users button[data-resync="${CSS.escape(user)}"]`);
    }

    function close() {
        const dialog = $("resync");
        if (dialog.open)
            dialog.close();
    }

    function wire() {
        const dialog = $("resync");
        $("resync-form").addEventListener("submit", submit);
        $("resync-no").addEventListener("click", close);
        for (const id of fields)
            $(id).addEventListener("input", () => clearFieldError(id));
        // Escape (the dialog's cancel) and Cancel alike: the codes go, and
        // the focus returns to the row's button.
        dialog.addEventListener("close", () => {
            const was = open;
            open = null;
            clear();
            const button = was && (rowButton(was.user) || was.button);
            if (button && button.isConnected && document.activeElement !== button &&
                (document.activeElement === document.body || document.activeElement === null || dialog.contains(document.activeElement)))
                button.focus();
        });
    }

    wire();

    return {
        clockText,
        /* The dialog for one row of `totpctl list`. */
        open(u, button) {
            open = { user: u.user, type: u.type, digits: u.digits, period: u.period, button };
            clear();
            $("resync-title").textContent = format(_("Resync $0's codes"), u.user);
            $("resync-text").textContent = u.type === "hotp"
                ? _("For a hardware token pressed many times without logging in: its counter has run ahead.")
                : _("For a phone whose clock is far off: its codes are for another time.");
            $("resync-new-phone").textContent = _("A new phone does not need this: the user scans their .jpg with it.");
            $("resync").showModal();
            $("resync-first").focus();
        },
    };
};
