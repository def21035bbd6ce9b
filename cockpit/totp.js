/*
 * cockpit-totp: the page. It holds no rules: every action is one call of
 * totpctl (cockpit.spawn, "--json", codes on standard input, never in argv)
 * whose JSON it shows. A new secret (QR, key, .jpg) lives only in this
 * page's memory while it is shown, and is forgotten at Done or when the
 * page is left. Nothing here writes to the console.
 *
 * Every text a user reads goes through cockpit.gettext (_), in double
 * quotes on one line or joined with +, so that scripts/po.py finds it;
 * the words in index.html carry translate="yes".
 *
 * Copyright the pam_totp developers. GPL-3.0-or-later.
 */
"use strict";

(function () {
    const $ = id => document.getElementById(id);
    const _ = cockpit.gettext;
    const format = cockpit.format;

    /* ---- state ---- */
    let me = null; // the logged-in user's name
    let admin = false; // administrative access (superuser) is on
    let mineViaAdmin = false; // own account through superuser (no self-service)
    // The open enrollment: { user, jpeg (base64), key, issuer, asAdmin,
    // kept (downloaded or printed), activated }.
    let shown = null;
    let codesShown = null; // recovery codes on screen: { user, codes }
    let loaded = false; // the first status has been asked for
    // Where records live, from status: { backend: "files"|"ldap", writes }.
    let store = { backend: "files", writes: true };
    let lastUsers = null; // the admin table's rows, drawn again when `store` changes
    let resync = null; // the Resync dialog (resync.js)

    /* ---- totpctl ---- */

    /* One totpctl call. `input` (a code or a proof) goes to standard input.
     * Resolves to the parsed JSON; rejects with { code, message }. */
    function totpctl(args, { input, asAdmin } = {}) {
        const options = { err: "message" };
        if (asAdmin)
            options.superuser = "require";
        return new Promise((resolve, reject) => {
            const proc = cockpit.spawn(["totpctl", ...args, "--json"], options);
            proc.then(out => {
                try {
                    resolve(JSON.parse(out));
                } catch (e) {
                    reject({ code: "internal", message: _("totpctl printed no JSON.") });
                }
            }, (ex, out) => {
                let error = null;
                try {
                    error = JSON.parse(out).error;
                } catch (e) { /* not JSON: totpctl could not be run */ }
                if (!error) {
                    const problem = ex && ex.problem;
                    if (problem === "not-found") {
                        error = { code: "not_installed", message: _("totpctl is not installed (package libpam-totp).") };
                    } else if (!asAdmin && (problem === "access-denied" || problem === "not-permitted")) {
                        // In self-service mode totpctl is 4754 root:totp-users:
                        // someone outside the group cannot even run it.
                        error = { code: "not_member", message: _("Your account may not set up two-factor login itself.") };
                    } else {
                        error = { code: problem || "internal", message: (ex && ex.message) || String(ex) };
                    }
                }
                reject(readOnlyStore(error));
            });
            proc.input(input === undefined ? "" : input + "\n");
        });
    }

    /* A write refused because this LDAP host has no admin bind: say what
     * that means (older totpctl builds give no store fields in status). */
    function readOnlyStore(error) {
        if (error.code === "store_error" && /admin_bind_dn/.test(error.message || "")) {
            store = { backend: "ldap", writes: false };
            error.message = _("This host only reads two-factor login from the directory (LDAP): it has no administrator bind, so nothing can be set up, replaced, turned off or reset from here. Use a host that has one, or ask the directory's administrator.");
        }
        return error;
    }

    /* ---- small helpers ---- */

    function showAlert(message, kind) {
        const box = $("alert");
        box.className = "alert alert-" + (kind || "danger");
        $("alert-text").textContent = message;
        box.hidden = false;
        box.scrollIntoView({ block: "nearest" });
    }

    function clearAlert() {
        $("alert").hidden = true;
        $("alert-text").textContent = "";
    }

    /* An error at its field: shown under it, announced, the focus kept in
     * the field with its text selected, so the next try replaces it. */
    function fieldError(id, message, keepInView) {
        const field = $(id);
        const box = $(id + "-error");
        box.textContent = message;
        box.hidden = false;
        box.setAttribute("role", "alert");
        field.setAttribute("aria-invalid", "true");
        field.focus({ preventScroll: true });
        field.select();
        (keepInView || field).scrollIntoView({ block: "nearest" });
    }

    function clearFieldError(id) {
        const box = $(id + "-error");
        box.hidden = true;
        box.textContent = "";
        $(id).removeAttribute("aria-invalid");
    }

    function locale() {
        return (cockpit.language || "en").replace("_", "-");
    }

    function when(seconds) {
        if (seconds === undefined || seconds === null)
            return "—";
        return new Date(seconds * 1000).toLocaleString(locale());
    }

    function busy(button, on) {
        button.disabled = on;
        button.classList.toggle("in-progress", on);
    }

    /* Run `work` with `button` busy; show a failure in the alert. A busy
     * control is disabled, which drops the keyboard's focus: it gets the
     * focus back unless the work moved it somewhere. */
    function act(button, work) {
        clearAlert();
        const focused = document.activeElement === button;
        busy(button, true);
        return work()
                .catch(error => showAlert(error.message || String(error)))
                .finally(() => {
                    busy(button, false);
                    if (focused && button.isConnected && !button.closest("[hidden]") &&
                        (document.activeElement === document.body || document.activeElement === null))
                        button.focus();
                });
    }

    function base64Bytes(text) {
        const raw = atob(text);
        const bytes = new Uint8Array(raw.length);
        for (let i = 0; i < raw.length; i++)
            bytes[i] = raw.charCodeAt(i);
        return bytes;
    }

    function download(name, blob) {
        const url = URL.createObjectURL(blob);
        const a = document.createElement("a");
        a.href = url;
        a.download = name;
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 1000);
    }

    /* Print one part of the page: `cls` on <body> picks it (totp.css);
     * `cleanup` runs when the print dialog is gone. */
    function printPart(cls, cleanup) {
        document.body.classList.add(cls);
        const after = () => {
            window.removeEventListener("afterprint", after);
            document.body.classList.remove(cls);
            if (cleanup)
                cleanup();
        };
        window.addEventListener("afterprint", after);
        window.print();
    }

    /* A confirmation with its consequence; `then` runs on yes. */
    function confirmThen({ title, text, yes, danger = true }, then) {
        const dialog = $("confirm");
        $("confirm-title").textContent = title;
        $("confirm-text").textContent = text;
        const button = $("confirm-yes");
        button.textContent = yes;
        button.className = "btn " + (danger ? "btn-danger" : "btn-primary");
        dialog.returnValue = "";
        dialog.onclose = () => {
            if (dialog.returnValue === "yes")
                then();
        };
        dialog.showModal();
        $("confirm-no").focus();
    }

    /* What kind of codes: an app's time-based ones, or a counter (HOTP). */
    function kindText(s) {
        if (s.type === "hotp")
            return format(_("Counter-based (HOTP), $0 digits, next counter $1"), s.digits, s.hotp_next ?? "—");
        let text = format(_("Time-based, $0 digits every $1 s"), s.digits, s.period);
        if (s.skew)
            text += " " + format(_("(clock skew learned: $0 steps)"), (s.skew > 0 ? "+" : "") + s.skew);
        return text;
    }

    function lockText(s) {
        if (s.locked_until_unlock)
            return _("Until an administrator unlocks it");
        if (s.locked_until)
            return format(_("Until $0"), when(s.locked_until));
        return _("No");
    }

    function statusWord(status) {
        const words = {
            not_enrolled: _("Not set up"),
            pending: _("Pending activation"),
            active: _("Active"),
            invalid: _("Unreadable record"),
        };
        return words[status] || status;
    }

    /* ---- the user's own account ---- */

    function noteStore(s) {
        if (s.store === undefined)
            return;
        const next = { backend: s.store, writes: s.store_writes !== false };
        if (next.backend === store.backend && next.writes === store.writes)
            return;
        store = next;
        if (lastUsers)
            renderUsers(lastUsers);
    }

    function renderMine(s) {
        noteStore(s);
        $("mine").hidden = false;
        $("unavailable").hidden = true;
        const label = $("state-label");
        label.textContent = statusWord(s.status);
        label.className = "label label-" + s.status;

        /* Setting up needs none of the details; an active account shows them. */
        const facts = $("facts");
        facts.replaceChildren();
        const fact = (term, value) => {
            const dt = document.createElement("dt");
            dt.textContent = term;
            const dd = document.createElement("dd");
            dd.textContent = value;
            facts.append(dt, dd);
        };
        fact(_("User"), s.user);
        if (s.status === "active") {
            fact(_("Codes"), kindText(s));
            fact(_("Last login with a code"), s.last_code_at ? when(s.last_code_at) : _("Never"));
            let wrong = String(s.failures);
            if (s.failures_since_success > s.failures)
                wrong += " " + format(_("($0 since the last good code)"), s.failures_since_success);
            fact(_("Wrong codes"), wrong);
            fact(_("Locked"), lockText(s));
            fact(_("Recovery codes left"), format(_("$0 of $1"), s.recovery_codes_left, s.recovery_codes_total));
        }
        const locked = !!(s.locked_until || s.locked_until_unlock);
        const note = $("lockout-note");
        note.hidden = !locked;
        note.textContent = !locked
            ? ""
            : (s.status === "active" ? "" : format(_("Locked: $0."), lockText(s)) + " ") +
              _("Logins with a code are refused while the account is locked. Cockpit's login page only says \"Wrong user name or password\" then; this is why.");

        const writes = store.writes;
        const storeNote = $("store-note");
        storeNote.hidden = writes;
        storeNote.textContent = writes ? "" : _("This host only reads two-factor login from the directory (LDAP): it has no administrator bind, so nothing can be set up, replaced or turned off from here. Use a host that has one, or ask an administrator.");

        $("not-enrolled-actions").hidden = !writes || s.status !== "not_enrolled";
        $("restart-actions").hidden = !writes || s.status !== "pending";
        $("restart-help").textContent = shown && !shown.activated && shown.user === s.user
            ? _("Scanned it into the wrong app, or lost it before activating? Start again with a new key.")
            : _("The setup was started but not finished, and its QR code is no longer shown. Start again to get a new one.");
        $("active-actions").hidden = !writes || s.status !== "active";
    }

    function unavailable(error) {
        $("mine").hidden = true;
        const box = $("unavailable");
        box.hidden = false;
        const group = "totp-users";
        let text;
        let adminText;
        if (error.code === "not_root" || error.code === "setuid_ignored") {
            text = _("Two-factor login is managed by administrators on this system: self-service is turned off.");
            adminText = format(_("An administrator can turn it on here (All users, with administrative access) or with 'totpctl self-service enable', and add you to the group $0."), group);
        } else if (error.code === "not_member") {
            text = _("Your account may not set up two-factor login itself.");
            adminText = format(_("An administrator can add you to the self-service group ($0 by default), or set it up for you."), group);
        } else {
            text = error.message;
            adminText = "";
        }
        $("unavailable-text").textContent = text;
        $("unavailable-admin").textContent = adminText;
    }

    function mineArgs(command) {
        return mineViaAdmin ? [command, me] : [command];
    }

    function refreshMine() {
        return totpctl(mineArgs("status"), { asAdmin: mineViaAdmin })
                .then(renderMine)
                .catch(error => {
                    if (admin && !mineViaAdmin && ["not_root", "not_member", "setuid_ignored"].includes(error.code)) {
                        mineViaAdmin = true;
                        return refreshMine();
                    }
                    unavailable(error);
                });
    }

    /* ---- a new enrollment ---- */

    /* "SHA1, 6 digits, time-based (TOTP), every 30 s, issuer host". */
    function paramsText(e) {
        const kind = e.type === "hotp"
            ? format(_("counter-based (HOTP), first counter $0"), e.counter)
            : format(_("time-based (TOTP), every $0 s"), e.period);
        let text = format(_("$0, $1 digits, $2"), e.algorithm, e.digits, kind);
        if (e.issuer)
            text += ", " + format(_("issuer $0"), e.issuer);
        return text;
    }

    function showEnrollment(e, asAdmin) {
        shown = {
            user: e.user,
            jpeg: e.qr_jpeg_base64,
            key: e.key,
            issuer: e.issuer || "",
            params: paramsText(e),
            asAdmin,
            kept: false,
            activated: false,
        };
        forgetCodes();
        $("qr").src = "data:image/jpeg;base64," + e.qr_jpeg_base64;
        $("key").textContent = e.key;
        $("params").textContent = format(_("Account $0: $1."), e.user, shown.params);
        $("params-details").open = false;
        const own = e.user === me;
        $("enrollment-title").textContent = own
            ? _("Set up two-factor login")
            : format(_("Set up two-factor login for $0"), e.user);
        $("scan-text").textContent = own
            ? _("Scan the QR code with your authenticator app, or type this key into it:")
            : format(_("Scan the QR code with $0's authenticator app, or type this key into it:"), e.user);
        $("kept-note").hidden = true;
        $("steps").hidden = false;
        $("activated").hidden = true;
        $("code").value = "";
        clearFieldError("code");
        $("enrollment").hidden = false;
        $("done-bar").hidden = true;
        // The whole card in view, Activate included; the field takes the
        // focus without scrolling the QR away.
        $("enrollment").scrollIntoView({ block: "start" });
        $("code").focus({ preventScroll: true });
    }

    function markKept(how) {
        if (!shown)
            return;
        shown.kept = true;
        const note = $("kept-note");
        note.textContent = how;
        note.hidden = false;
        $("not-kept").hidden = true;
        updateDoneHelp();
    }

    function downloadJpg() {
        if (!shown)
            return;
        const name = shown.user + "-totp.jpg";
        download(name, new Blob([base64Bytes(shown.jpeg)], { type: "image/jpeg" }));
        markKept(format(_("Downloaded as $0."), name));
    }

    /* One printed page: the QR, the account, the server, the date and the
     * key, so that a sheet in a drawer of them says what it is for. */
    function printQr() {
        if (!shown)
            return;
        $("print-qr-img").src = $("qr").src;
        const facts = $("print-facts");
        facts.replaceChildren();
        const fact = (term, value) => {
            const dt = document.createElement("dt");
            dt.textContent = term;
            const dd = document.createElement("dd");
            dd.textContent = value;
            facts.append(dt, dd);
        };
        fact(_("Account"), shown.user);
        fact(_("Server"), shown.issuer || window.location.hostname);
        fact(_("Date"), new Date().toLocaleDateString(locale(), { year: "numeric", month: "long", day: "numeric" }));
        fact(_("Key"), shown.key);
        fact(_("Details"), shown.params);
        markKept(_("Sent to the printer."));
        printPart("printing-qr", () => {
            $("print-qr-img").removeAttribute("src");
            $("print-facts").replaceChildren();
        });
    }

    function showActivated(r) {
        shown.activated = true;
        const own = r.user === me;
        $("enrollment-title").textContent = own
            ? _("Two-factor login is active")
            : format(_("Two-factor login is active for $0"), r.user);
        $("activated-text").textContent = _("Keep the QR code: it brings the codes back on a new phone. It stays here until Done.");
        $("not-kept-text").textContent = own
            ? _("Without it, a lost phone means asking an administrator to reset your two-factor login. Download or print it now: Done forgets it.")
            : format(_("Without it, a lost phone means $0 asks an administrator to reset their two-factor login. Download or print it now: Done forgets it."), r.user);
        $("not-kept").hidden = shown.kept;
        $("steps").hidden = true;
        $("activated").hidden = false;
        $("enrollment-title").setAttribute("tabindex", "-1");
        $("enrollment").scrollIntoView({ block: "start" });
        $("enrollment-title").focus({ preventScroll: true });
    }

    /* Forget the secret: the QR, the key and the .jpg bytes. */
    function forgetEnrollment() {
        shown = null;
        $("qr").removeAttribute("src");
        $("key").textContent = "";
        $("params").textContent = "";
        $("code").value = "";
        $("enrollment").hidden = true;
        $("print-qr-img").removeAttribute("src");
        $("print-facts").replaceChildren();
    }

    function showCodes(user, codes) {
        codesShown = { user, codes };
        const list = $("codes");
        list.replaceChildren();
        for (const code of codes) {
            const li = document.createElement("li");
            li.textContent = code;
            list.append(li);
        }
        $("recovery").hidden = false;
        $("done-bar").hidden = false;
        updateDoneHelp();
    }

    function forgetCodes() {
        codesShown = null;
        $("codes").replaceChildren();
        $("recovery").hidden = true;
        $("done-bar").hidden = true;
    }

    function updateDoneHelp() {
        $("done-help").textContent = shown && shown.activated
            ? _("Done forgets the QR code and the recovery codes on this page.")
            : _("Done forgets the recovery codes on this page.");
    }

    /* Done: the QR and the codes go; a QR never kept is said so first. */
    function done() {
        const finish = () => {
            forgetEnrollment();
            forgetCodes();
            $("page-top").focus();
        };
        if (shown && shown.activated && !shown.kept) {
            const own = shown.user === me;
            confirmThen({
                title: _("Forget the QR code without keeping it?"),
                text: (own
                    ? _("It was neither downloaded nor printed. After Done nobody can show it again: if your phone is lost, an administrator must reset your two-factor login.")
                    : format(_("It was neither downloaded nor printed. After Done nobody can show it again: if $0's phone is lost, an administrator must reset their two-factor login."), shown.user)),
                yes: _("Forget it"),
            }, finish);
            return;
        }
        finish();
    }

    function refreshAll() {
        const work = [refreshMine()];
        if (admin)
            work.push(refreshAdmin());
        return Promise.all(work);
    }

    /* ---- administrators ---- */

    function refreshAdmin() {
        $("admin").hidden = false;
        const list = totpctl(["list"], { asAdmin: true }).then(renderUsers);
        const selfService = totpctl(["self-service", "status"], { asAdmin: true })
                .then(s => { $("self-service").checked = !!s.enabled });
        return Promise.all([list, selfService]).catch(error => showAlert(error.message));
    }

    function adminHelp() {
        // "$0" is the button's name, in bold.
        const line = (id, name, text) => {
            const strong = document.createElement("strong");
            strong.textContent = name;
            const [before, after] = text.split("$0");
            $(id).replaceChildren(before, strong, after ?? "");
        };
        line("help-reset", _("Reset"), _("$0 is for a user who lost the phone and the .jpg: it removes their two-factor login, and they set it up again. Until then their logins follow the policy for users without it."));
        line("help-resync", _("Resync"), _("$0 is for a hardware token pressed many times without logging in, or a phone whose clock is far off: two codes in a row from it bring it back in step. A new phone does not need it: the user scans their .jpg."));
        line("help-unlock", _("Unlock"), _("$0 appears for a locked user only (too many wrong codes): it lets them try again, and their phone keeps working."));
        const note = $("admin-store-note");
        if (store.backend === "ldap" && !store.writes) {
            note.textContent = _("This host reads two-factor login from the directory (LDAP) but has no administrator bind (ldap.admin_bind_dn in /etc/pam_totp/config.toml): Unlock works here, but setting up, Reset and Resync need a host that has one.");
        } else if (store.backend === "ldap") {
            note.textContent = _("Two-factor login is kept in the directory (LDAP): a change here applies on every host that uses it.");
        }
        note.hidden = store.backend !== "ldap";
        $("help-reset").hidden = !store.writes;
        $("help-resync").hidden = !store.writes;
        $("enroll-user-form").hidden = !store.writes;
    }

    function renderUsers(users) {
        lastUsers = users;
        adminHelp();
        const body = $("users");
        body.replaceChildren();
        $("users-empty").hidden = users.length > 0;
        for (const u of users) {
            const tr = document.createElement("tr");
            const cell = (text, label) => {
                const td = document.createElement("td");
                td.textContent = text;
                td.dataset.label = label;
                tr.append(td);
                return td;
            };
            const th = document.createElement("th");
            th.scope = "row";
            th.textContent = u.user;
            tr.append(th);
            let status = statusWord(u.status);
            if (u.type === "hotp")
                status = format(_("$0 (hardware token)"), status);
            else if (u.skew)
                status = format(_("$0 (clock $1)"), status, resync.clockText(u.skew, u.period));
            cell(status, _("Status"));
            cell(u.last_code_at ? when(u.last_code_at) : _("Never"), _("Last login with a code"));
            cell(u.failures === undefined ? "—" : String(u.failures), _("Wrong codes"));
            cell(u.status === "invalid" ? "—" : lockText(u), _("Locked"));
            cell(u.recovery_codes_total === undefined ? "—" : format(_("$0 of $1"), u.recovery_codes_left, u.recovery_codes_total), _("Recovery codes left"));
            const actions = cell("", _("Actions"));
            actions.className = "row-actions";
            if (u.locked_until || u.locked_until_unlock) {
                const unlock = document.createElement("button");
                unlock.type = "button";
                unlock.className = "btn btn-secondary btn-small";
                unlock.textContent = _("Unlock");
                unlock.setAttribute("aria-label", format(_("Unlock $0"), u.user));
                unlock.addEventListener("click", () => act(unlock, () =>
                    totpctl(["unlock", u.user], { asAdmin: true }).then(() => {
                        showAlert(format(_("$0 is unlocked."), u.user), "success");
                        return refreshAll();
                    })));
                actions.append(unlock);
            }
            if (store.writes && u.status === "active") {
                const button = document.createElement("button");
                button.type = "button";
                button.className = "btn btn-secondary btn-small";
                button.textContent = _("Resync");
                button.dataset.resync = u.user;
                button.setAttribute("aria-label", format(_("Resync $0"), u.user));
                button.setAttribute("aria-haspopup", "dialog");
                button.addEventListener("click", () => { clearAlert(); resync.open(u, button) });
                actions.append(button);
            }
            if (store.writes) {
                const reset = document.createElement("button");
                reset.type = "button";
                reset.className = "btn btn-danger btn-small";
                reset.textContent = _("Reset");
                reset.setAttribute("aria-label", format(_("Reset $0"), u.user));
                reset.addEventListener("click", () => confirmReset(u.user, reset));
                actions.append(reset);
            }
            body.append(tr);
        }
    }

    function confirmReset(user, button) {
        confirmThen({
            title: format(_("Reset $0?"), user),
            text: format(_("This removes $0's key, recovery codes, wrong codes and lockout: their phone and .jpg stop working. Until they set up again, their logins follow the policy for users without two-factor login."), user),
            yes: _("Reset"),
        }, () => act(button, () => totpctl(["reset", user], { asAdmin: true }).then(() => {
            showAlert(format(_("$0 is reset."), user), "success");
            return refreshAll();
        })));
    }

    /* ---- wiring ---- */

    /* A proof's refusal, in the page's words, at the field. */
    function proofMessage(error) {
        switch (error.code) {
        case "no_code":
            return _("Type a current code from the app, or a recovery code, first.");
        case "proof_failed":
            return _("Wrong code, or one used already: nothing was changed. Type the code the app shows now, or an unused recovery code.");
        case "malformed_code":
            return _("That is neither a code from the app nor a recovery code: type the digits the app shows now, or a recovery code as printed.");
        case "locked_out":
            return _("Too many wrong codes: the account is locked for now, and nothing was compared. Try again later, or ask an administrator to unlock it.");
        case "too_soon":
            return _("Wait a few seconds after a wrong code, then try again. Nothing was compared.");
        default:
            return null;
        }
    }

    /* An activation's refusal, in the page's words. */
    function activationMessage(error) {
        // totpctl's own words suggest its command line; on this page the
        // next step is the field itself.
        const pending = " " + _("The setup stays pending: try the next code the app shows.");
        switch (error.code) {
        case "no_code":
            return _("Type the code that the app shows.");
        case "wrong_code":
            return _("Wrong code: check that the phone's clock is right and that the app entry is the new one.") + pending;
        case "code_used":
            return _("That code was used already.") + pending;
        case "malformed_code":
            return _("That is not a code from the app: type the digits it shows now.");
        case "locked_out":
            return _("Too many wrong codes: locked for now. Try again later, or ask an administrator to unlock the account.");
        case "too_soon":
            return _("Wait a few seconds after a wrong code, then try again.");
        default:
            return null;
        }
    }

    function wire() {
        $("alert-close").addEventListener("click", clearAlert);
        resync = window.totpResync({ totpctl, act, showAlert, fieldError, clearFieldError, refreshAdmin });

        const setup = (button, args) => act(button, () =>
            totpctl(args, { asAdmin: mineViaAdmin })
                    .then(e => { showEnrollment(e, mineViaAdmin); return refreshMine() }));
        $("setup").addEventListener("click", event =>
            setup(event.target, mineArgs("enroll").concat(mineViaAdmin ? ["--force"] : [])));
        $("restart").addEventListener("click", event => {
            const button = event.target;
            confirmThen({
                title: _("Start again with a new key?"),
                text: _("The entry you scanned stops working, and so does a .jpg you kept of it: delete that entry in the app, then scan the new QR code."),
                yes: _("Start again"),
            }, () => setup(button, mineArgs("enroll").concat(mineViaAdmin ? ["--force"] : [])));
        });

        /* A proof counts like a login attempt (failures, lockout): show the
         * status as it is afterwards, whatever the outcome. */
        const afterProof = () => { $("proof").value = ""; return refreshMine() };

        /* An action on an active enrollment: the proof goes on stdin. */
        const withProof = (id, args, done, confirmation) => $(id).addEventListener("click", event => {
            const button = event.target;
            clearFieldError("proof");
            const proof = $("proof").value.trim();
            if (!proof) {
                fieldError("proof", proofMessage({ code: "no_code" }), button);
                return;
            }
            const run = () => {
                let refused = null;
                act(button, () => totpctl(mineArgs(args[0]).concat(args.slice(1)), { input: proof, asAdmin: mineViaAdmin })
                        .then(done, error => {
                            refused = proofMessage(error);
                            if (!refused)
                                throw error;
                        }))
                        .finally(() => afterProof().then(() => {
                            if (refused)
                                fieldError("proof", refused, button);
                        }));
            };
            if (confirmation)
                confirmThen(confirmation(), run);
            else
                run();
        });
        withProof("replace", ["enroll", "--force"], e => showEnrollment(e, mineViaAdmin), () => ({
            title: _("Replace the key?"),
            text: _("A new key is made now: the entry in your app and the .jpg you kept stop working, and you scan the new QR code. A new phone does not need this: scan your .jpg with it instead."),
            yes: _("Replace the key"),
        }));
        withProof("new-recovery", ["recovery-codes", "--regenerate"], r => showCodes(r.user, r.recovery_codes));
        withProof("disable", ["disable"], () => {
            showAlert(_("Two-factor login is turned off for your account."), "success");
            return admin ? refreshAdmin() : null;
        });
        $("proof").addEventListener("input", () => clearFieldError("proof"));

        for (const id of ["download-jpg", "download-jpg-2"])
            $(id).addEventListener("click", downloadJpg);
        for (const id of ["print-qr", "print-qr-2"])
            $(id).addEventListener("click", printQr);

        $("code").addEventListener("input", () => clearFieldError("code"));
        $("activate-form").addEventListener("submit", event => {
            event.preventDefault();
            if (!shown)
                return;
            clearFieldError("code");
            const code = $("code").value.trim();
            if (!code) {
                fieldError("code", activationMessage({ code: "no_code" }), $("activate"));
                return;
            }
            const { user, asAdmin } = shown;
            let refused = null;
            act($("activate"), () =>
                totpctl(asAdmin ? ["activate", user] : ["activate"], { input: code, asAdmin })
                        .then(r => {
                            showActivated(r);
                            showCodes(r.user, r.recovery_codes);
                            // The account's details grow above: the
                            // confirmation stays in view.
                            return refreshAll().then(() => $("enrollment").scrollIntoView({ block: "start" }));
                        }, error => {
                            refused = activationMessage(error);
                            if (!refused)
                                throw error;
                            return refreshMine();
                        }))
                    .finally(() => {
                        if (refused)
                            fieldError("code", refused, $("activate"));
                    });
        });

        $("download-codes").addEventListener("click", () => {
            if (!codesShown)
                return;
            const text = format(_("Recovery codes for $0. Each works once."), codesShown.user) + "\n\n" +
                codesShown.codes.map((c, i) => `${String(i + 1).padStart(2)}. ${c}`).join("\n") + "\n";
            download(codesShown.user + "-recovery-codes.txt", new Blob([text], { type: "text/plain" }));
        });
        $("print-codes").addEventListener("click", () => printPart("printing-codes"));
        $("codes-done").addEventListener("click", done);

        $("self-service").addEventListener("change", event => {
            const box = event.target;
            const want = box.checked;
            act(box, () => totpctl(["self-service", want ? "enable" : "disable"], { asAdmin: true })
                    .then(s => {
                        box.checked = !!s.enabled;
                        return refreshMine();
                    }, error => {
                        box.checked = !want;
                        throw error;
                    }));
        });

        $("enroll-user").addEventListener("input", () => clearFieldError("enroll-user"));
        $("enroll-user-form").addEventListener("submit", event => {
            event.preventDefault();
            clearFieldError("enroll-user");
            const user = $("enroll-user").value.trim();
            if (!user) {
                fieldError("enroll-user", _("Type the user's login name."));
                return;
            }
            let refused = null;
            act($("enroll-user-button"), () => totpctl(["enroll", user, "--force"], { asAdmin: true })
                    .then(e => { $("enroll-user").value = ""; showEnrollment(e, true); return refreshAdmin() },
                          error => {
                              if (!["invalid_user", "unknown_user"].includes(error.code))
                                  throw error;
                              refused = format(_("There is no user $0 on this system."), user);
                          }))
                    .finally(() => { if (refused) fieldError("enroll-user", refused) });
        });

        /* Leaving the page forgets every secret on it. Cockpit keeps pages
         * loaded while another is shown and tells them through
         * cockpit.hidden (its own "visibilitychange" event, which also
         * follows the browser tab's visibility). */
        const forget = () => {
            forgetEnrollment();
            forgetCodes();
            $("proof").value = "";
            if ($("resync").open)
                $("resync").close(); // its close handler empties the codes
        };
        cockpit.addEventListener("visibilitychange", () => { if (cockpit.hidden) forget() });
        window.addEventListener("pagehide", forget);
    }

    /* Light or dark, as Cockpit's shell is set (Session > Appearance). */
    function followTheme() {
        const apply = () => {
            let style = "auto";
            try {
                style = localStorage.getItem("shell:style") || "auto";
            } catch (e) { /* storage may be off */ }
            const dark = style === "dark" ||
                (style === "auto" && window.matchMedia("(prefers-color-scheme: dark)").matches);
            document.documentElement.classList.toggle("pf-theme-dark", dark);
        };
        apply();
        window.addEventListener("storage", event => { if (event.key === "shell:style") apply() });
        window.addEventListener("cockpit-style", apply);
        window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", apply);
    }

    function watchSuperuser() {
        const proxy = cockpit.dbus(null, { bus: "internal" }).proxy("cockpit.Superuser", "/superuser");
        const update = () => {
            const now = !!proxy.Current && proxy.Current !== "none" && proxy.Current !== "init";
            if (now === admin)
                return;
            admin = now;
            $("admin").hidden = !admin;
            if (!admin)
                mineViaAdmin = false;
            if (loaded)
                refreshAll();
        };
        proxy.addEventListener("changed", update);
        return proxy.wait().then(update, () => { /* no superuser support: not an admin */ });
    }

    function start() {
        // The shell's language (po.js has set cockpit.language already).
        document.documentElement.lang = locale();
        document.documentElement.dir = cockpit.language_direction || "ltr";
        cockpit.translate();
        followTheme();
        wire();
        cockpit.user().then(user => {
            me = user.name;
            return watchSuperuser().then(() => { loaded = true; return refreshAll() });
        }).catch(error => showAlert(error.message || String(error)))
                .finally(() => {
                    $("loading").hidden = true;
                    $("page").setAttribute("aria-busy", "false");
                });
    }

    start();
}());
