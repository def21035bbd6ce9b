//! The LDAP store fails closed: attacks on the read path, the deadlines and
//! the switch from files, each through the real libpam (pamtester under
//! pam_wrapper) and a private slapd with the shipped schema and access
//! rules (`integration::slapd`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::slapd::{Bind, Slapd, BASE_DN};
use integration::*;
use std::process::Command;

fn record_text(secret: &str) -> String {
    format!(
        "version = 1\nstatus = \"active\"\nsecret = \"{secret}\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\n"
    )
}

/// A host's config: the store on `uri`, bound as `bind`, the admin too.
fn ldap_config(slapd: &Slapd, bind: &Bind, uri: &str, extra: &str) -> String {
    let admin = slapd.admin();
    format!(
        "{extra}\n[store]\nbackend = \"ldap\"\n[ldap]\nuris = [\"{uri}\"]\nbase_dn = \"{BASE_DN}\"\n\
         bind_dn = \"{}\"\nbind_password_file = \"{}\"\nadmin_bind_dn = \"{}\"\n\
         admin_bind_password_file = \"{}\"\nca_file = \"{}\"\nstarttls = true\n\
         timeout_ms = 1000\n",
        bind.dn,
        bind.password_file.display(),
        admin.dn,
        admin.password_file.display(),
        slapd.ca_file().display()
    )
}

fn host(slapd: &Slapd, name: &str, extra: &str) -> Sandbox {
    let sb = Sandbox::new(&format!("ldapfc-{name}"));
    sb.write_config(&ldap_config(
        slapd,
        &slapd.host("host-a"),
        &slapd.starttls_uri(),
        extra,
    ));
    sb.service("totp", "");
    sb
}

fn totpctl(sb: &Sandbox, args: &[&str]) -> PamRun {
    let mut cmd = Command::new(totpctl_path());
    cmd.arg("--config").arg(&sb.config).args(args);
    run_with_input(&mut cmd, b"")
}

/// Put an access rule in front of the database's (cn=config): `attr` of
/// `user`'s entry is hidden from the hosts, everyone else goes on to the
/// shipped rules.
fn hide_from_hosts(slapd: &Slapd, user: &str, attr: &str) {
    let run = slapd.modify(
        Some(&slapd.config_admin()),
        &format!(
            "dn: olcDatabase={{1}}mdb,cn=config\nchangetype: modify\nadd: olcAccess\n\
             olcAccess: {{0}}to dn.exact=\"{}\" attrs={attr} \
             by dn.onelevel=\"ou=totp-hosts,dc=example,dc=org\" none by * break\n",
            slapd.user_dn(user)
        ),
    );
    assert_eq!(run.rc, 0, "adding the rule failed: {}", run.stderr);
}

/// An entry the host can see but whose record, uid or object class the
/// access rules hide from it: under `allow-until`, a "not enrolled" here
/// would skip the code, and the password alone would log in. Each is
/// refused, with a line that says the entry is there, and `totpctl check`
/// on that host fails.
#[test]
fn an_entry_whose_record_uid_or_class_is_hidden_is_refused_not_unenrolled() {
    let future = date_from_today(30);
    for (user, attr) in [
        ("pamtotp-hid-rec", "totpRecord"),
        ("pamtotp-hid-uid", "uid"),
        ("pamtotp-hid-oc", "objectClass"),
    ] {
        let slapd = Slapd::start_cn_config(&format!("fail-closed-{attr}"));
        ensure_user(user, &[]);
        slapd.add_user_entry(user, &record_text(SECRET));
        hide_from_hosts(&slapd, user, attr);
        let sb = host(
            &slapd,
            attr,
            &format!("[policy]\nunenrolled = \"allow-until:{future}\"\n"),
        );
        // The password stack after pam_totp is pam_permit: were the code
        // skipped, this wrong one would log in.
        let run = sb.pamtester("totp", user, b"000000\n", &[]);
        let line = run.outcome();
        assert!(
            !run.success && line.contains("result=error") && line.contains("is there but"),
            "{attr} hidden from the host: {line}\n{}",
            run.shown()
        );
        assert!(
            line.contains(&format!("its {attr} is not readable")),
            "the line names what is hidden: {line}"
        );
        let run = totpctl(&sb, &["check"]);
        assert!(
            !run.success
                && run.stdout.contains(&format!(
                    "{} is there but its {attr} is not readable",
                    slapd.user_dn(user)
                )),
            "totpctl check with {attr} hidden: {}",
            run.shown()
        );
    }
}

/// `totpctl check` on an empty directory still finds a host bind that may
/// write secrets: it probes the base entry.
#[test]
fn check_on_an_empty_directory_probes_the_base_for_secret_writes() {
    let slapd = Slapd::start("fail-closed-empty");
    let sb = Sandbox::new("ldapfc-empty");
    sb.write_config(&ldap_config(
        &slapd,
        &slapd.admin(),
        &slapd.starttls_uri(),
        "",
    ));
    let run = totpctl(&sb, &["check", "--pam-dir", "/nonexistent"]);
    assert!(
        !run.success && run.stdout.contains("may write totpRecord, the secrets"),
        "an admin bind as the host's, no user yet: {}",
        run.shown()
    );
    let sb = host(&slapd, "empty-host", "");
    let run = totpctl(&sb, &["check", "--pam-dir", "/nonexistent"]);
    assert!(
        run.stdout.contains("this host cannot write totpRecord"),
        "the shipped rules, no user yet: {}",
        run.shown()
    );
}

/// A base the host bind cannot see (the server answers noSuchObject) is
/// named as such, not as a server that does not answer; a host without
/// an admin bind gets no advice about the files store's directories.
#[test]
fn check_names_an_invisible_base_and_a_missing_admin_bind() {
    let slapd = Slapd::start("fail-closed-base");
    let sb = Sandbox::new("ldapfc-base");
    let elsewhere = "ou=elsewhere,dc=example,dc=org";
    sb.write_config(
        &ldap_config(&slapd, &slapd.host("host-a"), &slapd.starttls_uri(), "")
            .replace(BASE_DN, elsewhere),
    );
    let run = totpctl(&sb, &["check", "--pam-dir", "/nonexistent"]);
    assert!(
        !run.success
            && run
                .stdout
                .contains(&format!("the base {elsewhere} is not visible to cn=host-a")),
        "{}",
        run.shown()
    );

    let user = "pamtotp-noadmin";
    ensure_user(user, &[]);
    let sb = Sandbox::new("ldapfc-noadmin");
    let admin = slapd.admin();
    sb.write_config(
        &ldap_config(&slapd, &slapd.host("host-a"), &slapd.starttls_uri(), "")
            .replace(&format!("admin_bind_dn = \"{}\"\n", admin.dn), "")
            .replace(
                &format!(
                    "admin_bind_password_file = \"{}\"\n",
                    admin.password_file.display()
                ),
                "",
            ),
    );
    let run = totpctl(&sb, &["--json", "enroll", user]);
    assert!(
        !run.success
            && run.shown().contains("ldap.admin_bind_dn")
            && !run.shown().contains("directories"),
        "enroll without an admin bind: {}",
        run.shown()
    );
    let run = totpctl(&sb, &["check", "--pam-dir", "/nonexistent"]);
    assert!(
        run.stdout.contains("no admin bind on this host")
            && !run.shown().contains("directories exist"),
        "{}",
        run.shown()
    );
}

/// A login on `sb` that waits at its prompt, then `at_prompt` runs, then
/// `code` is answered: the run, and how long it took from the answer.
fn login_across(
    sb: &Sandbox,
    user: &str,
    code: &str,
    at_prompt: impl FnOnce(),
) -> (PamRun, std::time::Duration) {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let starting = pam_start_guard();
    let mut child = sb
        .pamtester_command("totp", user, &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    {
        let stderr = child.stderr.as_mut().unwrap();
        let mut byte = [0u8; 1];
        while !seen.ends_with(b"code: ") {
            assert_eq!(stderr.read(&mut byte).unwrap(), 1, "no prompt: {seen:?}");
            seen.push(byte[0]);
        }
    }
    drop(starting);
    at_prompt();
    let answered = std::time::Instant::now();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{code}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let took = answered.elapsed();
    let mut stderr = String::from_utf8_lossy(&seen).into_owned();
    stderr.push_str(&String::from_utf8_lossy(&out.stderr));
    (
        PamRun {
            success: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        },
        took,
    )
}

/// The server freezes (SIGSTOP) while the user is at the prompt: the
/// login is denied within `timeout_ms` of its answer (here 2000 ms), the
/// worst case the README states for one URI. (A frozen server costs one
/// wait after the prompt: the read fails and nothing else is sent. A slow
/// one is what a budget per login bounds; see the next test.)
#[test]
fn a_server_frozen_at_the_prompt_denies_within_one_timeout() {
    let user = "pamtotp-frozen";
    ensure_user(user, &[]);
    let slapd = Slapd::start("fail-closed-frozen");
    slapd.add_user_entry(user, &record_text(SECRET));
    let sb = host(&slapd, "frozen", "");
    let config = std::fs::read_to_string(&sb.config).unwrap();
    std::fs::write(
        &sb.config,
        config.replace("timeout_ms = 1000", "timeout_ms = 2000"),
    )
    .unwrap();
    let (run, took) = login_across(&sb, user, &code_now(SECRET), || slapd.freeze());
    slapd.thaw();
    let line = run.outcome();
    assert!(
        !run.success && line.contains("result=error") && line.contains("no answer within"),
        "{line} after {took:?}\n{}",
        run.stderr
    );
    eprintln!("frozen at the prompt: denied {took:?} after the answer (timeout_ms 2000)");
    // A hang would take minutes; the margin is for a loaded machine.
    assert!(
        took < std::time::Duration::from_millis(3000),
        "denied {took:?} after the answer: {line}"
    );
}

/// The move from files to LDAP: a recovery code used on the files after
/// `totpctl migrate` copied the user, and before the switch, is carried
/// over by running migrate again (it brings the entry forward), so after
/// `backend = "ldap"` that code is refused.
#[test]
fn a_recovery_code_used_between_migrate_and_the_switch_stays_used() {
    let user = "pamtotp-window";
    ensure_user(user, &[]);
    let slapd = Slapd::start("fail-closed-window");
    let sb = Sandbox::new("ldapfc-window");
    let full = ldap_config(&slapd, &slapd.host("host-a"), &slapd.starttls_uri(), "");
    let ldap_section = full[full.find("[ldap]").unwrap()..].to_owned();
    // Still the files store, with the [ldap] section ready.
    sb.write_config(&ldap_section);
    sb.service("totp", "");
    sb.enroll(user);
    let run = totpctl(&sb, &["--json", "recovery-codes", user, "--regenerate"]);
    assert!(run.success, "{}", run.shown());
    let codes: Vec<String> = run
        .stdout
        .split("\"recovery_codes\":[")
        .nth(1)
        .unwrap()
        .split(']')
        .next()
        .unwrap()
        .split(',')
        .map(|c| c.trim_matches('"').to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{}", run.stdout);

    let run = totpctl(&sb, &["migrate", "--to", "ldap"]);
    assert!(
        run.success && run.stdout.contains("1 copied"),
        "{}",
        run.shown()
    );
    // The window: a recovery code used on the files after the copy.
    sb.pamtester("totp", user, format!("{}\n", codes[0]).as_bytes(), &[])
        .expect(true, "success", "recovery code");
    let run = totpctl(&sb, &["migrate", "--to", "ldap"]);
    assert!(
        run.success && run.stdout.contains("state brought forward"),
        "{}",
        run.shown()
    );

    // The switch.
    sb.write_config(&full);
    sb.pamtester("totp", user, format!("{}\n", codes[0]).as_bytes(), &[])
        .expect(false, "denied", "was already used");
    sb.pamtester("totp", user, format!("{}\n", codes[1]).as_bytes(), &[])
        .expect(true, "success", "recovery code");
}

/// A TCP proxy to `to` on 127.0.0.1 that holds every chunk the server
/// sends for `delay` before passing it on: a server that answers each
/// request, slowly. Its threads end with the connections.
fn slow_proxy(to: u16, delay: std::time::Duration) -> u16 {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                return;
            };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_in, &mut s_out);
                let _ = s_out.shutdown(std::net::Shutdown::Write);
            });
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n @ 1..) = s_in.read(&mut buf) {
                    std::thread::sleep(delay);
                    if c_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = c_out.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

/// A server that answers every request within `timeout_ms`, but slowly
/// (each answer held 200 ms): the connect, StartTLS, TLS, bind and the
/// requests of one login share one `timeout_ms` (1000 ms here), so the
/// login is denied, naming the server, instead of going on for as many
/// timeouts as it makes requests.
#[test]
fn a_slow_server_gets_one_timeout_per_login_not_one_per_request() {
    let user = "pamtotp-slow";
    ensure_user(user, &[]);
    let slapd = Slapd::start("fail-closed-slow");
    slapd.add_user_entry(user, &record_text(SECRET));
    let port = slow_proxy(slapd.ldap_port(), std::time::Duration::from_millis(200));
    let uri = format!("ldap://127.0.0.1:{port}");
    let sb = Sandbox::new("ldapfc-slow");
    sb.write_config(&ldap_config(&slapd, &slapd.host("host-a"), &uri, ""));
    sb.service("totp", "");
    let (run, took) = run_timed(
        &mut sb.pamtester_command("totp", user, &[]),
        format!("{}\n", code_now(SECRET)).as_bytes(),
    );
    let line = run.outcome();
    eprintln!("slow server: {took:?} for the login: {line}");
    assert!(
        !run.success
            && line.contains("result=error")
            && line.contains(&uri)
            && line.contains("no answer within"),
        "{line}"
    );
}
