//! `ldap.verify = "directory"` end to end: a private slapd on 127.0.0.1 with
//! Debian's otp and ppolicy modules and the shipped `ldap/directory.conf`
//! (or `directory.ldif` on cn=config) and `ldap/directory-entries.ldif`;
//! three "hosts" sharing it; totpctl enrolling through it; pamtester
//! logging in through the real libpam (pam_wrapper) and the real module.
//! The directory checks every code; no host bind can read a seed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::slapd::{base64_encode, Slapd, BASE_DN};
use integration::*;
use std::process::Command;
use std::time::{Duration, Instant};

const USER: &str = "pamtotp-dirv";
/// The public part of the bind password before the code (totp_ldap's
/// CHECK_PASSWORD, spelled out: the tests check what the directory holds).
const CHECK_PASSWORD: &str = "pam_totp-directory";

fn host(slapd: &Slapd, test: &str, host: &str, extra: &str) -> Sandbox {
    let sb = Sandbox::new(&format!("ldapv-{test}-{host}"));
    sb.write_config(&slapd.host_config(
        host,
        &[slapd.starttls_uri()],
        &format!("verify = \"directory\"\ntimeout_ms = 1000\n{extra}"),
    ));
    sb.service("totp", "");
    sb
}

fn fleet(slapd: &Slapd, test: &str, extra: &str) -> Vec<Sandbox> {
    ["host-a", "host-b", "host-c"]
        .iter()
        .map(|h| host(slapd, test, h, extra))
        .collect()
}

fn totpctl(sb: &Sandbox, args: &[&str], stdin: &[u8]) -> PamRun {
    let mut cmd = Command::new(totpctl_path());
    cmd.arg("--config").arg(&sb.config).args(args);
    run_with_input(&mut cmd, stdin)
}

fn login(sb: &Sandbox, user: &str, code: &str) -> PamRun {
    sb.pamtester("totp", user, format!("{code}\n").as_bytes(), &[])
}

/// An attribute of a user's entry as the rootdn reads it (operational
/// ones included: ppolicy's lockout).
fn attr(slapd: &Slapd, user: &str, name: &str) -> Option<String> {
    let found = slapd.search(
        Some(&slapd.root()),
        &slapd.user_dn(user),
        "(objectClass=*)",
        &["*", "+"],
    );
    found.entries.into_iter().next().and_then(|e| e.get(name))
}

/// Enroll `user` through `sb` (totpctl, the admin bind) and activate it
/// with the previous step's code: the base32 secret, as the QR code holds it.
fn enroll(sb: &Sandbox, user: &str) -> String {
    enroll_with_recovery(sb, user).0
}

/// [`enroll`], and the recovery codes the activation showed.
fn enroll_with_recovery(sb: &Sandbox, user: &str) -> (String, Vec<String>) {
    let run = totpctl(sb, &["--json", "enroll", user], b"");
    assert!(run.success, "enroll: {}", run.shown());
    let doc = &run.stdout;
    let start = doc.find("secret=").expect("an otpauth URI") + "secret=".len();
    let secret = doc[start..].split(['&', '"']).next().unwrap().to_owned();
    // The previous step's code (so the current one is left for a login),
    // not in the last seconds of a step: the directory's window is ±1.
    while now() % 30 > 26 {
        std::thread::sleep(Duration::from_millis(200));
    }
    let code = oathtool(&secret, "SHA1", 6, 30, -30);
    let run = totpctl(
        sb,
        &["--json", "activate", user],
        format!("{code}\n").as_bytes(),
    );
    assert!(
        run.success,
        "activate through the directory: {}",
        run.shown()
    );
    let list = run
        .stdout
        .split("\"recovery_codes\":[")
        .nth(1)
        .unwrap_or_default();
    let codes = list[..list.find(']').unwrap_or(0)]
        .split(',')
        .map(|c| c.trim_matches('"').to_owned())
        .filter(|c| !c.is_empty())
        .collect();
    (secret, codes)
}

/// A code for the step after the last one used, waiting for it if needed.
fn fresh_code(slapd: &Slapd, user: &str, secret: &str) -> String {
    let used: u64 = attr(slapd, user, "oathTOTPLastTimeStep").map_or(0, |s| s.parse().unwrap());
    while now() / 30 <= used {
        std::thread::sleep(Duration::from_millis(200));
    }
    code_now(secret)
}

fn decode_base32(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut acc, mut bits, mut out) = (0u64, 0, Vec::new());
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c).unwrap() as u64;
        acc = acc << 5 | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits & 0xff) as u8);
        }
    }
    out
}

/// Everything `bind` can read in the whole directory, attribute names and
/// values, operational attributes included: searched from the suffix and
/// from each subtree (a base the bind may not read hides its subtree).
fn everything(slapd: &Slapd, bind: Option<&integration::slapd::Bind>) -> Vec<(String, Vec<u8>)> {
    let bases = [
        "dc=example,dc=org",
        BASE_DN,
        "ou=totp-hosts,dc=example,dc=org",
        "ou=groups,dc=example,dc=org",
    ];
    bases
        .iter()
        .flat_map(|base| {
            slapd
                .search(bind, base, "(objectClass=*)", &["*", "+"])
                .entries
        })
        .flat_map(|e| {
            e.attrs
                .into_iter()
                .flat_map(|(k, vs)| vs.into_iter().map(move |v| (k.clone(), v)))
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_stolen_host_reads_nothing_a_code_can_be_made_from_and_a_code_works_once() {
    ensure_user(USER, &[]);
    let slapd = Slapd::start_directory_checked("verify-story");
    let hosts = fleet(&slapd, "story", "");
    let (secret, recovery) = enroll_with_recovery(&hosts[0], USER);
    assert!(!recovery.is_empty(), "the activation shows recovery codes");
    let raw = decode_base32(&secret);
    let entry = slapd.user_entry(USER).unwrap();
    // What the directory holds (the rootdn sees it): the seed only in
    // oathSecret, the check password only hashed, no totpRecord.
    assert_eq!(entry.attrs["oathsecret"], vec![raw.clone()]);
    assert!(entry.get("totpRecord").is_none());
    let hashed = entry.get("userPassword").unwrap();
    assert!(hashed.starts_with("{SSHA}") && !hashed.contains(CHECK_PASSWORD));
    assert!(entry
        .get("totpPublicRecord")
        .unwrap()
        .contains("status = \"active\""));

    let code = fresh_code(&slapd, USER, &secret);
    login(&hosts[0], USER, &code).expect(true, "success", "code accepted");
    // Used on host A: refused on B and C (and on A).
    for sb in &hosts {
        login(sb, USER, &code).expect(false, "denied", "wrong code");
    }
    // Recovery codes stay on the hosts' side (salted hashes in the public
    // record): one works once, across the fleet.
    login(&hosts[1], USER, &recovery[0]).expect(true, "success", "recovery code");
    login(&hosts[2], USER, &recovery[0]).expect(false, "denied", "already used");

    // Root on any host has its bind: it reads nothing of the seed, in any
    // encoding, anywhere in the directory; nor does anyone else but root.
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let forms: Vec<Vec<u8>> = vec![
        raw.clone(),
        secret.as_bytes().to_vec(),
        hex.as_bytes().to_vec(),
        hex.to_uppercase().into_bytes(),
        base64_encode(&raw).into_bytes(),
    ];
    let binds = [
        Some(slapd.host("host-a")),
        Some(slapd.host("host-b")),
        Some(slapd.admin()),
        Some(slapd.outsider()),
        None,
    ];
    let mut seen_by_host = 0;
    for bind in &binds {
        let values = everything(&slapd, bind.as_ref());
        if bind.as_ref().is_some_and(|b| b.dn.contains("totp-hosts")) {
            seen_by_host += values.len();
            // The host sees what it needs: the public record and the step.
            assert!(values.iter().any(|(k, _)| k == "totppublicrecord"));
            assert!(values.iter().any(|(k, _)| k == "oathtotplasttimestep"));
        }
        for (name, value) in &values {
            assert!(
                !["oathsecret", "totprecord", "oathtokenpin", "oathenckey"]
                    .contains(&name.as_str()),
                "{:?} reads {name}",
                bind.as_ref().map(|b| &b.dn)
            );
            for form in &forms {
                assert!(
                    !contains(value, form),
                    "{:?} reads the seed in {name}",
                    bind.as_ref().map(|b| &b.dn)
                );
            }
            // Nor the userPassword hash that guards the code check.
            assert_ne!(name, "userpassword");
        }
    }
    assert!(seen_by_host > 0, "the hosts' reads returned nothing at all");
}

#[test]
fn fifty_parallel_logins_with_one_code_over_three_hosts_admit_exactly_one() {
    ensure_user(USER, &[]);
    let slapd = Slapd::start_directory_checked("verify-race");
    let hosts = fleet(
        &slapd,
        "race",
        "[throttle]\nmax_failures = 100\nhard_cap = 100\nbackoff_seconds = 0\nbackoff_max_seconds = 0\n",
    );
    let secret = enroll(&hosts[0], USER);
    for round in 0..3 {
        let code = fresh_code(&slapd, USER, &secret);
        let serial: u64 = attr(&slapd, USER, "totpSerial").unwrap().parse().unwrap();
        let refs: Vec<&Sandbox> = hosts.iter().collect();
        let outputs = race_logins_on(&refs, "totp", USER, &code, 50);
        let admitted = outputs.iter().filter(|o| o.status.success()).count();
        assert_eq!(
            admitted, 1,
            "round {round}: exactly one login with one code"
        );
        for out in outputs.iter().filter(|o| !o.status.success()) {
            let log = String::from_utf8_lossy(&out.stderr);
            assert!(
                log.contains("wrong code") || log.contains("replayed code"),
                "round {round}: refused for another reason: {log}"
            );
        }
        let after: u64 = attr(&slapd, USER, "totpSerial").unwrap().parse().unwrap();
        assert_eq!(
            after - serial,
            51,
            "round {round}: 50 failures counted + 1 success"
        );
        // The one success cleared the directory's failure count too.
        let run = totpctl(&hosts[2], &["unlock", USER], b"");
        assert!(run.success, "{}", run.shown());
    }
}

#[test]
fn failures_add_up_across_hosts_and_a_right_code_in_a_lockout_is_not_used_up() {
    ensure_user(USER, &[]);
    let slapd = Slapd::start_directory_checked("verify-lockout");
    let hosts = fleet(
        &slapd,
        "lockout",
        "[throttle]\nmax_failures = 3\nbackoff_seconds = 0\nbackoff_max_seconds = 0\n",
    );
    let secret = enroll(&hosts[0], USER);
    let wrong = wrong_code(&secret);
    login(&hosts[0], USER, &wrong).expect(false, "denied", "wrong code (1 of 3 failures)");
    login(&hosts[1], USER, &wrong).expect(false, "denied", "wrong code (2 of 3 failures)");
    login(&hosts[2], USER, &wrong).expect(false, "denied", "locked");
    let code = fresh_code(&slapd, USER, &secret);
    let before = attr(&slapd, USER, "oathTOTPLastTimeStep");
    login(&hosts[0], USER, &code).expect(false, "denied", "locked");
    assert_eq!(
        attr(&slapd, USER, "oathTOTPLastTimeStep"),
        before,
        "a right code typed during a lockout never reached the directory"
    );
    let run = totpctl(&hosts[1], &["unlock", USER], b"");
    assert!(run.success, "{}", run.shown());
    // The same code still works: it was not used up.
    login(&hosts[2], USER, &code).expect(true, "success", "code accepted");
}

#[test]
fn direct_wrong_binds_with_a_host_address_hit_the_ppolicy_cap() {
    ensure_user(USER, &[]);
    let slapd = Slapd::start_directory_checked("verify-ppolicy");
    let a = host(&slapd, "ppolicy", "host-a", "");
    let secret = enroll(&a, USER);
    let dn = slapd.user_dn(USER);
    // pwdMaxFailure of the shipped policy.
    let policy = slapd
        .search(
            Some(&slapd.root()),
            &format!("cn=totp-policy,{BASE_DN}"),
            "(objectClass=*)",
            &[],
        )
        .entries;
    let cap: usize = policy[0].get("pwdMaxFailure").unwrap().parse().unwrap();
    let wrong = wrong_code(&secret);
    for _ in 0..cap {
        assert_eq!(slapd.try_bind(&dn, &format!("{CHECK_PASSWORD}{wrong}")), 49);
    }
    assert!(
        attr(&slapd, USER, "pwdAccountLockedTime").is_some(),
        "ppolicy locked the entry after {cap} wrong binds"
    );
    let code = fresh_code(&slapd, USER, &secret);
    let before = attr(&slapd, USER, "oathTOTPLastTimeStep");
    assert_eq!(slapd.try_bind(&dn, &format!("{CHECK_PASSWORD}{code}")), 49);
    assert_eq!(
        attr(&slapd, USER, "oathTOTPLastTimeStep"),
        before,
        "ppolicy runs before otp: the locked entry's right code is not used up"
    );
    // The module's login is refused too (the directory says no).
    login(&a, USER, &code).expect(false, "denied", "wrong code");
}

#[test]
fn sasl_binds_and_the_check_password_alone_get_nothing() {
    ensure_user(USER, &[]);
    let slapd = Slapd::start_directory_checked("verify-bypass");
    let a = host(&slapd, "bypass", "host-a", "");
    let secret = enroll(&a, USER);
    let dn = slapd.user_dn(USER);
    assert_eq!(
        slapd.try_bind(&dn, CHECK_PASSWORD),
        49,
        "the constant alone"
    );
    let code = fresh_code(&slapd, USER, &secret);
    for mech in ["DIGEST-MD5", "CRAM-MD5", "SCRAM-SHA-1"] {
        for password in [CHECK_PASSWORD.to_owned(), format!("{CHECK_PASSWORD}{code}")] {
            let run = slapd.try_sasl_bind(mech, USER, &password);
            assert_ne!(run.rc, 0, "{mech} got in: {}", run.stdout);
            // Refused by the server, not for want of a client plugin
            // (libsasl2-modules): else this would prove nothing.
            assert!(
                run.stderr.contains("SASL(-13)") || run.stderr.contains("SASL(-1)"),
                "{mech} was not tried: {}",
                run.stderr
            );
        }
    }
    // The code was not used by any of that.
    login(&a, USER, &code).expect(true, "success", "code accepted");
    // Logging in is for the hosts' addresses only: the local socket is not
    // one of them (the shipped rules name 127.0.0.1), so even a right code
    // gets nothing there. (The overlay has used that code up by then: it
    // acts before the access rule is checked; see the README.)
    let next = oathtool(&secret, "SHA1", 6, 30, 30);
    assert_ne!(
        slapd.try_bind_uri(&slapd.ldapi_uri(), &dn, &format!("{CHECK_PASSWORD}{next}")),
        0,
        "a right code from an address that is not a host's"
    );

    // A second wall: even with a cleartext userPassword (the trap: without
    // access rules SASL then gets in with no code), the shipped rules give
    // anonymous no access to the entry, so SASL cannot map a name to it.
    let run = slapd.modify(
        Some(&slapd.root()),
        &format!(
            "dn: {dn}\nchangetype: modify\nreplace: userPassword\nuserPassword: {CHECK_PASSWORD}\n"
        ),
    );
    assert_eq!(run.rc, 0, "{}", run.stderr);
    for mech in ["DIGEST-MD5", "CRAM-MD5", "SCRAM-SHA-1"] {
        let run = slapd.try_sasl_bind(mech, USER, CHECK_PASSWORD);
        assert_ne!(
            run.rc, 0,
            "{mech} got in with a cleartext password: {}",
            run.stdout
        );
    }
}

#[test]
fn a_frozen_or_stopped_provider_is_denied_within_the_login_deadline() {
    ensure_user(USER, &[]);
    let mut slapd = Slapd::start_directory_checked("verify-down");
    let a = host(&slapd, "down", "host-a", "");
    let secret = enroll(&a, USER);
    let uri = slapd.starttls_uri();
    let code = fresh_code(&slapd, USER, &secret);
    slapd.freeze();
    let start = Instant::now();
    let run = login(&a, USER, &code);
    let took = start.elapsed();
    slapd.thaw();
    run.expect(false, "error", &uri);
    assert!(
        took < Duration::from_secs(10),
        "a frozen server held the login {took:?}"
    );
    slapd.stop();
    let run = login(&a, USER, &code);
    run.expect(false, "error", &uri);
    assert!(!run.shown().contains(&code), "the code is never shown back");
}

#[test]
fn migration_from_files_and_from_host_checked_entries_keeps_used_codes_used() {
    let slapd = Slapd::start_directory_checked("verify-migrate");
    let (from_files, from_entry) = ("pamtotp-dirv-f", "pamtotp-dirv-e");
    ensure_user(from_files, &[]);
    ensure_user(from_entry, &[]);
    let record = format!(
        "version = 1\nstatus = \"active\"\nsecret = \"{SECRET}\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\n"
    );
    // Both used the current step already (and the files one has failures).
    let step = now() / 30;
    let code = code_now(SECRET);

    // From files: the records and state of one host.
    let a = host(&slapd, "migrate", "host-a", "");
    let files = Sandbox::new("ldapv-migrate-files");
    files.write_record_text(from_files, &record);
    std::fs::write(
        files.state_path(from_files),
        format!("version = 1\nlast_step = {step}\nfailures = 2\n"),
    )
    .unwrap();
    std::fs::set_permissions(
        files.state_path(from_files),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let section = std::fs::read_to_string(&a.config).unwrap();
    files.write_config(&section[section.find("[ldap]").unwrap()..]);
    let run = totpctl(&files, &["migrate", "--to", "ldap"], b"");
    assert!(run.success, "{}", run.shown());

    // From a host-checked entry (secret in totpRecord) with a used step.
    slapd.add_user_entry(from_entry, &record);
    let run = slapd.modify(
        Some(&slapd.admin()),
        &format!(
            "dn: {}\nchangetype: modify\nreplace: totpLastStep\ntotpLastStep: {step}\n",
            slapd.user_dn(from_entry)
        ),
    );
    assert_eq!(run.rc, 0, "{}", run.stderr);
    // Before the conversion a directory-checking host refuses the entry,
    // as an error (never "not enrolled").
    login(&a, from_entry, "123456").expect(false, "error", "totpPublicRecord");
    let run = totpctl(&a, &["migrate", "--to", "directory"], b"");
    assert!(run.success, "{}", run.shown());
    assert!(
        run.stdout.contains(&format!("{from_entry}: converted")),
        "{}",
        run.shown()
    );

    for user in [from_files, from_entry] {
        let entry = slapd.user_entry(user).unwrap();
        assert!(
            entry.get("totpRecord").is_none(),
            "{user}: the secret left totpRecord"
        );
        assert_eq!(
            entry.get("oathTOTPLastTimeStep"),
            Some(step.to_string()),
            "{user}"
        );
        assert_eq!(entry.get("totpLastStep"), Some(step.to_string()), "{user}");
        // The used code stays used; the next one works.
        if now() / 30 == step {
            login(&a, user, &code).expect(false, "denied", "wrong code");
        }
        let next = fresh_code(&slapd, user, SECRET);
        login(&a, user, &next).expect(true, "success", "code accepted");
    }
    assert_eq!(
        attr(&slapd, from_files, "totpFailures"),
        None,
        "a success cleared them"
    );
}

#[test]
fn the_cn_config_material_checks_codes_the_same_way() {
    ensure_user(USER, &[]);
    let slapd = Slapd::start_directory_checked_cn_config("verify-cn-config");
    let a = host(&slapd, "cnconfig", "host-a", "");
    let secret = enroll(&a, USER);
    let code = fresh_code(&slapd, USER, &secret);
    login(&a, USER, &code).expect(true, "success", "code accepted");
    login(&a, USER, &code).expect(false, "denied", "wrong code");
    let values = everything(&slapd, Some(&slapd.host("host-a")));
    assert!(values.iter().all(|(k, _)| k != "oathsecret"));
    assert!(values.iter().any(|(k, _)| k == "totppublicrecord"));
    assert_eq!(slapd.try_bind(&slapd.user_dn(USER), CHECK_PASSWORD), 49);
}

#[test]
fn a_hotp_token_is_an_oath_hotp_token_that_starts_at_its_counter() {
    ensure_user(USER, &[]);
    let slapd = Slapd::start_directory_checked("verify-hotp");
    let hosts = fleet(&slapd, "hotp", "");
    let run = totpctl(
        &hosts[0],
        &["--json", "enroll", "--type", "hotp", "--counter", "5", USER],
        b"",
    );
    assert!(run.success, "enroll: {}", run.shown());
    let doc = &run.stdout;
    let start = doc.find("secret=").unwrap() + "secret=".len();
    let secret = doc[start..].split(['&', '"']).next().unwrap().to_owned();
    let entry = slapd.user_entry(USER).unwrap();
    assert!(entry
        .values("objectClass")
        .contains(&"oathHOTPToken".to_owned()));
    assert_eq!(entry.get("oathHOTPToken"), Some(slapd.user_dn(USER)));
    // The directory starts after the counters the token has used.
    assert_eq!(attr(&slapd, USER, "oathHOTPCounter"), Some("4".into()));
    let run = totpctl(
        &hosts[1],
        &["--json", "activate", USER],
        format!("{}\n", oathtool_hotp(&secret, 5)).as_bytes(),
    );
    assert!(run.success, "activate: {}", run.shown());
    // A used counter is refused on every host; a later one moves on.
    let six = oathtool_hotp(&secret, 6);
    login(&hosts[1], USER, &six).expect(true, "success", "code accepted (HOTP counter 6)");
    login(&hosts[2], USER, &six).expect(false, "denied", "wrong code");
    login(&hosts[0], USER, &oathtool_hotp(&secret, 5)).expect(false, "denied", "wrong code");
    let nine = oathtool_hotp(&secret, 9);
    login(&hosts[2], USER, &nine).expect(true, "success", "code accepted (HOTP counter 9)");
    assert_eq!(attr(&slapd, USER, "oathHOTPCounter"), Some("9".into()));
    assert_eq!(attr(&slapd, USER, "totpHotpNext"), Some("10".into()));
}

#[test]
fn totpctl_check_proves_the_mode_on_the_live_directory_and_catches_the_wrong_order() {
    ensure_user(USER, &[]);
    let slapd = Slapd::start_directory_checked("verify-check");
    let a = host(&slapd, "check", "host-a", "");
    enroll(&a, USER);
    let run = totpctl(&a, &["check", "--pam-dir", "/nonexistent"], b"");
    for line in [
        "no key material",
        "the check password alone does not bind",
        "SASL binds (DIGEST-MD5",
        "locks after 100 wrong binds",
        "slapd-ppolicy runs before the otp overlay",
        "takes this host's writes (a write provider)",
        "this host cannot write oathSecret",
    ] {
        let line = line.replace("slapd-ppolicy", "slapo-ppolicy");
        assert!(
            run.stdout.contains(&line),
            "missing '{line}': {}",
            run.shown()
        );
    }
    assert!(
        !run.stdout.contains("LDAP: a right code"),
        "{}",
        run.shown()
    );
    // The probe token is gone again.
    let probe = slapd.search(
        Some(&slapd.root()),
        BASE_DN,
        "(cn=pam_totp-check-probe)",
        &[],
    );
    assert!(probe.entries.is_empty());

    // ppolicy before otp: a right code in a lockout is used up; check says so.
    let wrong = Slapd::start_directory_checked_wrong_order("verify-check-order");
    let b = host(&wrong, "check-order", "host-b", "");
    enroll(&b, USER);
    let run = totpctl(&b, &["check", "--pam-dir", "/nonexistent"], b"");
    assert!(
        run.stdout.contains("ppolicy runs after the otp overlay"),
        "{}",
        run.shown()
    );
}

/// The overlay's own record of a used step is not enough: it does not
/// replicate (a failover to a second provider finds it unset), and parallel
/// binds get through it. Only the host's swap of the step into the state
/// admits: a code the overlay accepts again is refused as a replay.
#[test]
fn a_code_the_directory_accepts_twice_is_admitted_once() {
    ensure_user(USER, &[]);
    let slapd = Slapd::start_directory_checked("verify-forgot");
    let hosts = fleet(&slapd, "forgot", "");
    let secret = enroll(&hosts[0], USER);
    let code = fresh_code(&slapd, USER, &secret);
    login(&hosts[0], USER, &code).expect(true, "success", "code accepted");
    // As on a provider the overlay's write never reached.
    let run = slapd.modify(
        Some(&slapd.root()),
        &format!(
            "dn: {}\nchangetype: modify\ndelete: oathTOTPLastTimeStep\n",
            slapd.user_dn(USER)
        ),
    );
    assert_eq!(run.rc, 0, "{}", run.stderr);
    login(&hosts[1], USER, &code).expect(false, "denied", "replayed code");
    // The directory did accept it: it recorded the step again.
    assert!(attr(&slapd, USER, "oathTOTPLastTimeStep").is_some());
}

/// An admin's import writes directory-checked tokens too: a hardware HOTP
/// token far along its counter and an 8-digit, 60-second TOTP token.
#[test]
fn imported_tokens_are_checked_by_the_directory() {
    let (hotp_user, totp_user) = ("pamtotp-dirv-h", "pamtotp-dirv-t");
    ensure_user(hotp_user, &[]);
    ensure_user(totp_user, &[]);
    let slapd = Slapd::start_directory_checked("verify-import");
    let hosts = fleet(&slapd, "import", "");
    let hex: String = decode_base32(SECRET)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let csv = hosts[0].root.join("tokens.csv");
    std::fs::write(
        &csv,
        format!(
            "user,seed,type,digits,period_or_counter\n{hotp_user},{hex},hotp,6,40\n\
             {totp_user},{hex},totp,8,60\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&csv, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let run = totpctl(
        &hosts[0],
        &["import-tokens", &csv.display().to_string()],
        b"",
    );
    assert!(run.success, "{}", run.shown());
    for user in [hotp_user, totp_user] {
        assert!(attr(&slapd, user, "totpRecord").is_none(), "{user}");
        assert!(attr(&slapd, user, "totpPublicRecord").is_some(), "{user}");
    }
    assert_eq!(
        attr(&slapd, hotp_user, "oathHOTPCounter"),
        Some("39".into())
    );
    login(&hosts[1], hotp_user, &oathtool_hotp(SECRET, 39)).expect(false, "denied", "wrong code");
    login(&hosts[1], hotp_user, &oathtool_hotp(SECRET, 41)).expect(
        true,
        "success",
        "code accepted (HOTP counter 41)",
    );
    let code = oathtool(SECRET, "SHA1", 8, 60, 0);
    login(&hosts[2], totp_user, &code).expect(true, "success", "code accepted");
    login(&hosts[0], totp_user, &code).expect(false, "denied", "wrong code");
}
