/*
 * cockpit-totp: the page. It holds no rules: every action is one call of
 * totpctl (cockpit.spawn, "--json", codes on standard input, never in argv)
 * whose JSON it shows. A new secret (QR, key, .jpg) lives only in this
 * page's memory while it is shown, and is forgotten when the page is left.
 * Nothing here writes to the console.
 *
 * Copyright the pam_totp developers. GPL-3.0-or-later.
 */
"use strict";

(function () {
    const $ = id => document.getElementById(id);

    /* ---- state ---- */
    let me = null; // the logged-in user's name
    let admin = false; // administrative access (superuser) is on
    let mineViaAdmin = false; // own account through superuser (no self-service)
    let shown = null; // the open enrollment: { user, jpeg (base64), asAdmin }
    let codesShown = null; // recovery codes on screen: { user, codes }
    let loaded = false; // the first status has been asked for

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
                    reject({ code: "internal", message: "totpctl printed no JSON" });
                }
            }, (ex, out) => {
                let error = null;
                try {
                    error = JSON.parse(out).error;
                } catch (e) { /* not JSON: totpctl could not be run */ }
                if (!error) {
                    const problem = ex && ex.problem;
                    if (problem === "not-found") {
                        error = { code: "not_installed", message: "totpctl is not installed (package libpam-totp)." };
                    } else if (!asAdmin && (problem === "access-denied" || problem === "not-permitted")) {
                        // In self-service mode totpctl is 4754 root:totp-users:
                        // someone outside the group cannot even run it.
                        error = { code: "not_member", message: "Your account may not set up two-factor login itself." };
                    } else {
                        error = { code: problem || "internal", message: (ex && ex.message) || String(ex) };
                    }
                }
                reject(error);
            });
            proc.input(input === undefined ? "" : input + "\n");
        });
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

    function when(seconds) {
        if (seconds === undefined || seconds === null)
            return "—";
        return new Date(seconds * 1000).toLocaleString();
    }

    function busy(button, on) {
        button.disabled = on;
        button.classList.toggle("in-progress", on);
    }

    /* Run `work` with `button` busy; show a failure in the alert. */
    function act(button, work) {
        clearAlert();
        busy(button, true);
        return work()
                .catch(error => showAlert(error.message || String(error)))
                .finally(() => busy(button, false));
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

    /* What kind of codes: an app's time-based ones, or a counter (HOTP). */
    function kindText(s) {
        if (s.type === "hotp")
            return `counter-based (HOTP), ${s.digits} digits, next counter ${s.hotp_next ?? "—"}`;
        let text = `time-based, ${s.digits} digits every ${s.period} s`;
        if (s.skew)
            text += ` (clock skew learned: ${s.skew > 0 ? "+" : ""}${s.skew} steps)`;
        return text;
    }

    function lockText(s) {
        if (s.locked_until_unlock)
            return "until an administrator unlocks it";
        if (s.locked_until)
            return "until " + when(s.locked_until);
        return "no";
    }

    /* ---- the user's own account ---- */

    function renderMine(s) {
        $("mine").hidden = false;
        $("unavailable").hidden = true;
        const label = $("state-label");
        const words = { not_enrolled: "Not set up", pending: "Pending activation", active: "Active" };
        label.textContent = words[s.status] || s.status;
        label.className = "label label-" + s.status;

        const facts = $("facts");
        facts.replaceChildren();
        const fact = (term, value) => {
            const dt = document.createElement("dt");
            dt.textContent = term;
            const dd = document.createElement("dd");
            dd.textContent = value;
            facts.append(dt, dd);
        };
        fact("User", s.user);
        if (s.status !== "not_enrolled") {
            fact("Codes", kindText(s));
            fact("Last successful code", s.last_code_at ? when(s.last_code_at) : "never");
            fact("Failed attempts", String(s.failures) +
                 (s.failures_since_success > s.failures ? ` (${s.failures_since_success} since the last good code)` : ""));
            fact("Locked", lockText(s));
            if (s.status === "active")
                fact("Recovery codes left", `${s.recovery_codes_left} of ${s.recovery_codes_total}`);
        }
        const note = $("lockout-note");
        note.hidden = !(s.locked_until || s.locked_until_unlock);
        note.textContent = note.hidden
            ? ""
            : "Logins with a code are refused while the account is locked. Cockpit's login page only says \"Wrong user name or password\" then; this is why.";

        $("not-enrolled-actions").hidden = s.status === "active";
        $("setup").textContent = s.status === "pending" ? "Start setup again" : "Set up";
        $("active-actions").hidden = s.status !== "active";
    }

    function unavailable(error) {
        $("mine").hidden = true;
        const box = $("unavailable");
        box.hidden = false;
        const group = "totp-users";
        let text;
        let adminText;
        if (error.code === "not_root" || error.code === "setuid_ignored") {
            text = "Two-factor login is managed by administrators on this system: self-service is turned off.";
            adminText = "An administrator can turn it on here (All users, with administrative access) or with 'totpctl self-service enable', and add you to the group " + group + ".";
        } else if (error.code === "not_member") {
            text = "Your account may not set up two-factor login itself.";
            adminText = "An administrator can add you to the self-service group (" + group + " by default), or set it up for you.";
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

    function showEnrollment(e, asAdmin) {
        shown = { user: e.user, jpeg: e.qr_jpeg_base64, asAdmin };
        $("qr").src = "data:image/jpeg;base64," + e.qr_jpeg_base64;
        $("key").textContent = e.key;
        const kind = e.type === "hotp"
            ? `counter-based (HOTP), first counter ${e.counter}`
            : `every ${e.period} s`;
        $("params").textContent = `For ${e.user}: ${e.algorithm}, ${e.digits} digits, ${kind}` +
            (e.issuer ? `, issuer ${e.issuer}` : "") + ".";
        $("enrollment-title").textContent = e.user === me
            ? "Scan this code with your authenticator app"
            : `Scan this code with ${e.user}'s authenticator app`;
        $("code").value = "";
        $("enrollment").hidden = false;
        $("recovery").hidden = true;
        $("code").focus();
    }

    /* Forget the secret: the QR, the key and the .jpg bytes. */
    function forgetEnrollment() {
        shown = null;
        $("qr").removeAttribute("src");
        $("key").textContent = "";
        $("code").value = "";
        $("enrollment").hidden = true;
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
        $("codes-done").focus();
    }

    function forgetCodes() {
        codesShown = null;
        $("codes").replaceChildren();
        $("recovery").hidden = true;
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

    function renderUsers(users) {
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
            cell(u.type === "hotp" ? `${u.status} (HOTP)` : u.status, "Status");
            cell(u.last_code_at ? when(u.last_code_at) : "never", "Last code");
            cell(u.failures === undefined ? "—" : String(u.failures), "Failures");
            cell(u.status === "invalid" ? "—" : lockText(u), "Locked");
            cell(u.recovery_codes_total === undefined ? "—" : `${u.recovery_codes_left} of ${u.recovery_codes_total}`, "Recovery codes");
            const actions = cell("", "Actions");
            actions.className = "row-actions";
            const locked = u.locked_until || u.locked_until_unlock || u.failures > 0;
            if (locked) {
                const unlock = document.createElement("button");
                unlock.type = "button";
                unlock.className = "btn btn-secondary btn-small";
                unlock.textContent = "Unlock";
                unlock.setAttribute("aria-label", "Unlock " + u.user);
                unlock.addEventListener("click", () => act(unlock, () =>
                    totpctl(["unlock", u.user], { asAdmin: true }).then(() => {
                        showAlert(`${u.user} is unlocked.`, "success");
                        return refreshAll();
                    })));
                actions.append(unlock);
            }
            const reset = document.createElement("button");
            reset.type = "button";
            reset.className = "btn btn-danger btn-small";
            reset.textContent = "Reset";
            reset.setAttribute("aria-label", "Reset " + u.user);
            reset.addEventListener("click", () => confirmReset(u.user, reset));
            actions.append(reset);
            body.append(tr);
        }
    }

    function confirmReset(user, button) {
        const dialog = $("confirm");
        $("confirm-title").textContent = `Reset ${user}?`;
        $("confirm-text").textContent = `This removes ${user}'s secret, recovery codes, failures and lockout. ` +
            "Until they set up again, their logins follow the policy for users who are not enrolled.";
        dialog.returnValue = "";
        dialog.onclose = () => {
            if (dialog.returnValue !== "yes")
                return;
            act(button, () => totpctl(["reset", user], { asAdmin: true }).then(() => {
                showAlert(`${user} is reset.`, "success");
                return refreshAll();
            }));
        };
        dialog.showModal();
        $("confirm-no").focus();
    }

    /* ---- wiring ---- */

    function proofValue() {
        const value = $("proof").value.trim();
        if (!value) {
            showAlert("Type a current code from the app, or a recovery code, first.");
            $("proof").focus();
            return null;
        }
        return value;
    }

    function wire() {
        $("alert-close").addEventListener("click", clearAlert);

        $("setup").addEventListener("click", event => act(event.target, () =>
            totpctl(mineArgs("enroll").concat(mineViaAdmin ? ["--force"] : []), { asAdmin: mineViaAdmin })
                    .then(e => { showEnrollment(e, mineViaAdmin); return refreshMine() })));

        /* A proof counts like a login attempt (failures, lockout): show the
         * status as it is afterwards, whatever the outcome. */
        const afterProof = () => { $("proof").value = ""; return refreshMine() };

        /* An action on an active enrollment: the proof goes on stdin. */
        const withProof = (id, args, done) => $(id).addEventListener("click", event => {
            const proof = proofValue();
            if (proof === null)
                return;
            act(event.target, () => totpctl(mineArgs(args[0]).concat(args.slice(1)), { input: proof, asAdmin: mineViaAdmin })
                    .then(done))
                    .finally(afterProof);
        });
        withProof("replace", ["enroll", "--force"], e => showEnrollment(e, mineViaAdmin));
        withProof("new-recovery", ["recovery-codes", "--regenerate"], r => showCodes(r.user, r.recovery_codes));
        withProof("disable", ["disable"], () => {
            showAlert("Two-factor login is turned off for your account.", "success");
            return admin ? refreshAdmin() : null;
        });

        $("download-jpg").addEventListener("click", () => {
            if (shown)
                download(shown.user + "-totp.jpg", new Blob([base64Bytes(shown.jpeg)], { type: "image/jpeg" }));
        });

        $("activate-form").addEventListener("submit", event => {
            event.preventDefault();
            if (!shown)
                return;
            const code = $("code").value.trim();
            if (!code) {
                showAlert("Type the code that the app shows.");
                $("code").focus();
                return;
            }
            const { user, asAdmin } = shown;
            act($("activate"), () =>
                totpctl(asAdmin ? ["activate", user] : ["activate"], { input: code, asAdmin })
                        .then(r => {
                            forgetEnrollment();
                            showAlert(`Two-factor login is active for ${r.user}. Keep the .jpg safe: it restores the codes on a new phone.`, "success");
                            showCodes(r.user, r.recovery_codes);
                            return refreshAll();
                        }, error => {
                            $("code").value = "";
                            // totpctl's own words suggest its command line; on
                            // this page the next step is the field above.
                            const pending = " The setup stays pending: try the next code the app shows.";
                            if (error.code === "wrong_code")
                                error.message = "Wrong code: check that the phone's clock is right and that the app entry is the new one." + pending;
                            else if (error.code === "code_used")
                                error.message = "That code was used already." + pending;
                            throw error;
                        }));
        });

        $("download-codes").addEventListener("click", () => {
            if (!codesShown)
                return;
            const text = `Recovery codes for ${codesShown.user}. Each works once.\n\n` +
                codesShown.codes.map((c, i) => `${String(i + 1).padStart(2)}. ${c}`).join("\n") + "\n";
            download(codesShown.user + "-recovery-codes.txt", new Blob([text], { type: "text/plain" }));
        });
        $("print-codes").addEventListener("click", () => {
            document.body.classList.add("printing-codes");
            window.print();
            document.body.classList.remove("printing-codes");
        });
        $("codes-done").addEventListener("click", forgetCodes);

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

        $("enroll-user-form").addEventListener("submit", event => {
            event.preventDefault();
            const user = $("enroll-user").value.trim();
            if (!user) {
                $("enroll-user").focus();
                return;
            }
            act($("enroll-user-button"), () => totpctl(["enroll", user, "--force"], { asAdmin: true })
                    .then(e => { $("enroll-user").value = ""; showEnrollment(e, true); return refreshAdmin() }));
        });

        /* Leaving the page forgets every secret on it. Cockpit keeps pages
         * loaded while another is shown and tells them through
         * cockpit.hidden (its own "visibilitychange" event, which also
         * follows the browser tab's visibility). */
        const forget = () => { forgetEnrollment(); forgetCodes(); $("proof").value = "" };
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
        followTheme();
        wire();
        cockpit.user().then(user => {
            me = user.name;
            return watchSuperuser().then(() => { loaded = true; return refreshAll() });
        }).catch(error => showAlert(error.message || String(error)))
                .finally(() => {
                    $("loading").hidden = true;
                    $("page").setAttribute("aria-busy", "false");
                    cockpit.translate();
                });
    }

    start();
}());
