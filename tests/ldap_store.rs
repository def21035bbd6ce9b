//! The LDAP store end to end: a private slapd on 127.0.0.1 (TLS from a CA
//! made for the test, the shipped schema and access rules), two or three
//! "hosts" that are module configs with their own bind DNs sharing it,
//! totpctl enrolling through it, and pamtester logging in through the real
//! libpam (pam_wrapper).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::slapd::Slapd;
use integration::*;
use std::process::Command;
use std::time::{Duration, Instant};

const USER: &str = "pamtotp-ldap";

/// A host of the fleet: a sandbox whose config points at `uris`, binding
/// as `host` (and as the admin, so totpctl can enroll there).
fn host(slapd: &Slapd, test: &str, host: &str, uris: &[String], extra: &str) -> Sandbox {
    let sb = Sandbox::new(&format!("ldap-{test}-{host}"));
    sb.write_config(&slapd.host_config(host, uris, &format!("timeout_ms = 1000\n{extra}")));
    sb.service("totp", "");
    sb
}

fn fleet(slapd: &Slapd, test: &str, extra: &str) -> Vec<Sandbox> {
    ["host-a", "host-b", "host-c"]
        .iter()
        .map(|h| host(slapd, test, h, &[slapd.starttls_uri()], extra))
        .collect()
}

fn record_text(secret: &str) -> String {
    format!(
        "version = 1\nstatus = \"active\"\nsecret = \"{secret}\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\n"
    )
}

fn totpctl(sb: &Sandbox, args: &[&str], stdin: &[u8]) -> PamRun {
    let mut cmd = Command::new(totpctl_path());
    cmd.arg("--config").arg(&sb.config).args(args);
    run_with_input(&mut cmd, stdin)
}

fn login(sb: &Sandbox, user: &str, code: &str) -> PamRun {
    sb.pamtester("totp", user, format!("{code}\n").as_bytes(), &[])
}

/// The value of `"key":"..."` in a JSON document (no nesting needed here).
fn json_string(doc: &str, key: &str) -> String {
    let start = doc
        .find(&format!("\"{key}\":\""))
        .unwrap_or_else(|| panic!("{key} missing in {doc}"))
        + key.len()
        + 4;
    doc[start..][..doc[start..].find('"').unwrap()].to_owned()
}

fn attr(slapd: &Slapd, user: &str, name: &str) -> Option<String> {
    slapd.user_entry(user).and_then(|e| e.get(name))
}

#[test]
fn enroll_activate_log_in_and_replay_through_ldap() {
    ensure_user(USER, &[]);
    let slapd = Slapd::start("store-story");
    let hosts = fleet(&slapd, "story", "[otp]\nwindow = 2\n");
    let (a, b) = (&hosts[0], &hosts[1]);

    let run = totpctl(a, &["--json", "enroll", USER], b"");
    assert!(run.success, "enroll through LDAP: {}", run.shown());
    let uri = json_string(&run.stdout, "uri");
    let secret = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let record = attr(&slapd, USER, "totpRecord").expect("the record is in LDAP");
    assert!(record.contains("status = \"pending\""), "{record}");

    // Pending is not enrolled, on any host.
    login(b, USER, "123456").expect(false, "denied", "enrollment pending activation");

    let code = oathtool(secret, "SHA1", 6, 30, -30);
    let run = totpctl(
        b,
        &["--json", "activate", USER],
        format!("{code}\n").as_bytes(),
    );
    assert!(run.success, "activate on another host: {}", run.shown());
    assert!(attr(&slapd, USER, "totpRecord")
        .unwrap()
        .contains("status = \"active\""));

    let code = oathtool(secret, "SHA1", 6, 30, 30);
    login(a, USER, &code).expect(true, "success", "code accepted");
    let step = (now() + 30) / 30;
    assert_eq!(attr(&slapd, USER, "totpLastStep"), Some(step.to_string()));
    login(a, USER, &code).expect(false, "denied", "replayed code");
    login(b, USER, &code).expect(false, "denied", "replayed code");

    // status and list read the directory; disable removes the entry.
    let run = totpctl(&hosts[2], &["--json", "status", USER], b"");
    assert!(
        run.success && run.stdout.contains("\"status\":\"active\""),
        "{}",
        run.shown()
    );
    let run = totpctl(&hosts[2], &["list"], b"");
    assert!(run.stdout.contains(USER), "{}", run.shown());
    // The Cockpit page's admin calls, as it makes them (--json).
    let run = totpctl(&hosts[2], &["--json", "list"], b"");
    assert!(
        run.success && run.stdout.contains(&format!("\"user\":\"{USER}\"")),
        "{}",
        run.shown()
    );
    let run = totpctl(&hosts[1], &["--json", "unlock", USER], b"");
    assert!(run.success, "{}", run.shown());
    let run = totpctl(&hosts[2], &["reset", USER], b"");
    assert!(run.success, "{}", run.shown());
    assert!(slapd.user_entry(USER).is_none(), "reset removes the entry");
    login(a, USER, "123456").expect(false, "denied", "not enrolled");
}

#[test]
fn a_code_works_once_across_the_fleet() {
    ensure_user(USER, &[]);
    let slapd = Slapd::start("store-once");
    let hosts = fleet(&slapd, "once", "");
    slapd.add_user_entry(USER, &record_text(SECRET));
    let code = code_now(SECRET);
    login(&hosts[0], USER, &code).expect(true, "success", "code accepted");
    for other in &hosts[1..] {
        login(other, USER, &code).expect(false, "denied", "replayed code");
    }
}

#[test]
fn fifty_parallel_logins_over_three_hosts_admit_exactly_one() {
    ensure_user(USER, &[]);
    let slapd = Slapd::start("store-race");
    let hosts = fleet(
        &slapd,
        "race",
        "[throttle]\nmax_failures = 100\nhard_cap = 100\nbackoff_seconds = 0\nbackoff_max_seconds = 0\n",
    );
    // Fifty logins of one user at once each wait for the others' writes
    // (conflicts, reads again): on a loaded machine that can spend a
    // login's whole budget of 1000 ms with the directory, and the login
    // is then denied, not counted. This test is about the compare-and-swap,
    // so it gives them room.
    for sb in &hosts {
        let text = std::fs::read_to_string(&sb.config).unwrap();
        std::fs::write(
            &sb.config,
            text.replace("timeout_ms = 1000", "timeout_ms = 20000"),
        )
        .unwrap();
    }
    for round in 0..2 {
        let user = USER.to_string();
        if round == 1 {
            // Again on a state that already has a last step and failures.
            std::thread::sleep(Duration::from_secs(30 - now() % 30 + 1));
        } else {
            slapd.add_user_entry(&user, &record_text(SECRET));
        }
        let serial: u64 = attr(&slapd, &user, "totpSerial").unwrap().parse().unwrap();
        let code = code_now(SECRET);
        let refs: Vec<&Sandbox> = hosts.iter().collect();
        let outputs = race_logins_on(&refs, "totp", &user, &code, 50);
        let admitted = outputs.iter().filter(|o| o.status.success()).count();
        assert_eq!(
            admitted, 1,
            "round {round}: exactly one login with one code"
        );
        for out in outputs.iter().filter(|o| !o.status.success()) {
            let log = String::from_utf8_lossy(&out.stderr);
            assert!(
                log.contains("replayed code") || log.contains("too soon"),
                "round {round}: refused for another reason: {log}"
            );
        }
        // Every attempt's failure was written, and the one success: no write
        // was lost and none applied twice.
        let after: u64 = attr(&slapd, &user, "totpSerial").unwrap().parse().unwrap();
        assert_eq!(
            after - serial,
            51,
            "round {round}: 50 counted attempts + 1 success"
        );
    }
}

#[test]
fn failures_on_two_hosts_add_up_and_an_unlock_on_a_third_clears_them() {
    ensure_user(USER, &[]);
    let slapd = Slapd::start("store-lockout");
    let hosts = fleet(
        &slapd,
        "lockout",
        "[throttle]\nmax_failures = 3\nbackoff_seconds = 0\nbackoff_max_seconds = 0\n",
    );
    slapd.add_user_entry(USER, &record_text(SECRET));
    let wrong = wrong_code(SECRET);
    login(&hosts[0], USER, &wrong).expect(false, "denied", "wrong code (1 of 3 failures)");
    login(&hosts[1], USER, &wrong).expect(false, "denied", "wrong code (2 of 3 failures)");
    login(&hosts[0], USER, &wrong).expect(false, "denied", "locked");
    login(&hosts[1], USER, &code_now(SECRET)).expect(false, "denied", "locked");
    let run = totpctl(&hosts[2], &["unlock", USER], b"");
    assert!(run.success, "unlock on a third host: {}", run.shown());
    login(&hosts[1], USER, &code_now(SECRET)).expect(true, "success", "code accepted");
}

#[test]
fn a_stopped_or_frozen_server_denies_within_the_timeout_naming_it() {
    ensure_user(USER, &[]);
    let mut slapd = Slapd::start("store-down");
    let a = host(&slapd, "down", "host-a", &[slapd.starttls_uri()], "");
    slapd.add_user_entry(USER, &record_text(SECRET));
    let uri = slapd.starttls_uri();

    slapd.freeze();
    let start = Instant::now();
    let run = login(&a, USER, &code_now(SECRET));
    let took = start.elapsed();
    slapd.thaw();
    run.expect(false, "error", &uri);
    assert!(
        run.outcome().contains("no answer within 1000 ms"),
        "{}",
        run.outcome()
    );
    // timeout_ms is 1000: one deadline for connect, TLS and bind. A hang
    // would run into minutes; this bound only says it did not.
    assert!(
        took < Duration::from_secs(10),
        "a frozen server held the login {took:?}"
    );

    slapd.stop();
    let run = login(&a, USER, &code_now(SECRET));
    run.expect(false, "error", &uri);
    assert!(
        run.outcome().contains("cannot connect"),
        "{}",
        run.outcome()
    );
    assert!(
        !run.shown().contains(&code_now(SECRET)),
        "the code is never shown back"
    );
}

#[test]
fn the_next_uri_serves_when_the_first_is_dead_or_frozen() {
    ensure_user(USER, &[]);
    let frozen = Slapd::start("store-frozen-first");
    let slapd = Slapd::start("store-failover");
    slapd.add_user_entry(USER, &record_text(SECRET));
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("ldap://127.0.0.1:{}", listener.local_addr().unwrap().port())
    };
    let a = host(
        &slapd,
        "failover",
        "host-a",
        &[dead.clone(), slapd.starttls_uri()],
        "[otp]\nwindow = 2\n",
    );
    let run = login(&a, USER, &oathtool(SECRET, "SHA1", 6, 30, -30));
    run.expect(true, "success", "code accepted");
    assert!(
        run.outcome().contains(&dead),
        "the dead server is named: {}",
        run.outcome()
    );

    frozen.freeze();
    let b = host(
        &slapd,
        "failover",
        "host-b",
        &[frozen.starttls_uri(), slapd.starttls_uri()],
        "[otp]\nwindow = 2\n",
    );
    let run = login(&b, USER, &code_now(SECRET));
    frozen.thaw();
    run.expect(true, "success", "code accepted");
    assert!(
        run.outcome().contains(&frozen.starttls_uri()),
        "{}",
        run.outcome()
    );
}

#[test]
fn logins_go_on_through_the_mirror_when_the_provider_dies() {
    ensure_user(USER, &[]);
    let (mut first, second) = Slapd::start_mirror_pair("store-mirror");
    first.add_user_entry(USER, &record_text(SECRET));
    let deadline = Instant::now() + Duration::from_secs(10);
    while second.user_entry(USER).is_none() {
        assert!(
            Instant::now() < deadline,
            "the entry never reached the mirror"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let uris = [first.starttls_uri(), second.starttls_uri()];
    let extra = "[otp]\nwindow = 2\n";
    let a = host(&first, "mirror", "host-a", &uris, extra);
    let b = host(&first, "mirror", "host-b", &uris, extra);
    login(&a, USER, &oathtool(SECRET, "SHA1", 6, 30, -30)).expect(true, "success", "code accepted");

    first.kill();
    let code = code_now(SECRET);
    let run = login(&b, USER, &code);
    run.expect(true, "success", "code accepted");
    assert!(run.outcome().contains(&uris[0]), "{}", run.outcome());
    login(&a, USER, &code).expect(false, "denied", "replayed code");
}

#[test]
fn totpctl_check_tests_the_connection_and_the_access_rules() {
    let slapd = Slapd::start("store-check");
    let a = host(&slapd, "check", "host-a", &[slapd.starttls_uri()], "");
    slapd.add_user_entry(USER, &record_text(SECRET));
    let run = totpctl(&a, &["check", "--pam-dir", "/nonexistent"], b"");
    let out = run.shown();
    for line in [
        "over TLS, bound as cn=host-a",
        "cannot write totpRecord (secrets)",
        "an anonymous bind reads nothing",
        "accepts the admin bind",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }

    // A host bind that may write secrets is an error.
    let b = host(&slapd, "check", "host-b", &[slapd.starttls_uri()], "");
    let admin = slapd.admin();
    let text = b.config.clone();
    let config = std::fs::read_to_string(&text).unwrap();
    let host_b = slapd.host("host-b");
    std::fs::write(
        &text,
        config.replace(&host_b.dn, &admin.dn).replace(
            &host_b.password_file.display().to_string(),
            &admin.password_file.display().to_string(),
        ),
    )
    .unwrap();
    let run = totpctl(&b, &["check", "--pam-dir", "/nonexistent"], b"");
    assert!(!run.success);
    assert!(
        run.shown().contains("may write totpRecord, the secrets"),
        "{}",
        run.shown()
    );
}

#[test]
fn migrate_moves_a_thousand_file_records_and_their_state() {
    let slapd = Slapd::start("store-migrate");
    let sb = Sandbox::new("ldap-migrate");
    let users: Vec<String> = (0..1000).map(|i| format!("pamtotp-m{i:04}")).collect();
    for user in &users {
        sb.write_record_text(user, &record_text(SECRET));
    }
    ensure_user(&users[7], &[]);
    // A state with a used step: it must come along, or the code works again.
    // (The next step, so that a step turning during the test changes nothing.)
    let step = now() / 30 + 1;
    std::fs::write(
        sb.state_path(&users[7]),
        format!("version = 1\nlast_step = {step}\nfailures = 2\nused_recovery = [1]\n"),
    )
    .unwrap();
    std::fs::set_permissions(
        sb.state_path(&users[7]),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();

    // The [ldap] section is set up while the store is still the files.
    let ldap = host(
        &slapd,
        "migrate",
        "host-a",
        &[slapd.starttls_uri()],
        "[otp]\nwindow = 2\n",
    );
    let section = std::fs::read_to_string(&ldap.config).unwrap();
    let section = section[section.find("[ldap]").unwrap()..].to_owned();
    let section = &section[..section.find("[otp]").unwrap_or(section.len())];
    sb.write_config(section);

    let run = totpctl(&sb, &["migrate", "--to", "ldap", "--dry-run"], b"");
    assert!(run.success, "{}", run.shown());
    assert_eq!(
        run.stdout.matches(": would copy (active totp)").count(),
        1000
    );
    assert!(
        slapd.user_entry(&users[0]).is_none(),
        "a dry run changes nothing"
    );

    let run = totpctl(&sb, &["migrate", "--to", "ldap"], b"");
    assert!(run.success, "{}", run.shown());
    assert!(
        run.stdout.contains("1000 copied, 0 brought forward"),
        "{}",
        run.stdout
    );
    let run = totpctl(&sb, &["migrate", "--to", "ldap"], b"");
    assert!(
        run.stdout.contains("0 copied, 1000 brought forward"),
        "{}",
        run.stdout
    );

    assert_eq!(
        attr(&slapd, &users[7], "totpLastStep"),
        Some(step.to_string())
    );
    assert_eq!(attr(&slapd, &users[7], "totpFailures"), Some("2".into()));
    let run = totpctl(&ldap, &["list"], b"");
    assert_eq!(run.stdout.lines().count(), 1000, "{}", run.stderr);
    // The used step stays used; the next code logs in through LDAP.
    login(&ldap, &users[7], &code_now(SECRET)).expect(false, "denied", "replayed code");
    login(&ldap, &users[7], &oathtool(SECRET, "SHA1", 6, 30, 60)).expect(
        true,
        "success",
        "code accepted",
    );
}
