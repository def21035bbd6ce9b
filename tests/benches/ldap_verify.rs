//! `ldap.verify = "directory"` against the host-checked LDAP mode and the
//! files store (issue #18, "Performance"). A benchmark, not a timed test:
//! it prints figures side by side, with the machine's load, and asserts
//! only that every login succeeds.
//!
//! Run it as root (it creates the accounts pamtotp-v000.. with useradd and
//! starts private slapds on 127.0.0.1), after building the release modules:
//!
//! ```text
//! cargo build --release -p pam_module -p pam_module_ldap
//! cargo bench -p integration --bench ldap_verify
//! ```
//!
//! `PAM_TOTP_BENCH_VERIFY_USERS` (default 200) and `PAM_TOTP_BENCH_CROWD`
//! (default 100000) make a quick run smaller.
//!
//! Every login is a whole process, as a PAM application pays it:
//! `pamtester` under pam_wrapper, libpam, the release `pam_totp.so` (and
//! `pam_totp_ldap.so` for LDAP), the store opened afresh, and the code of
//! the current step (the directory checks codes against its own clock).
//! Each user logs in once per store, so no code is a replay. The slapds
//! are durable (every write synced), as on a real deployment.
//!
//! The figures:
//! 1. Login p50 and p95 of four, interleaved: files, host-checked LDAP
//!    (StartTLS), directory-checked LDAP, and host-checked LDAP over
//!    ldaps:// (a server of its own); the ratio directory / host-checked
//!    (goal 1.1 or less), and host-checked over TLS / files (goal 1.3 or
//!    less, issue #20).
//! 2. Directory-checked logins on a server with the bench users only
//!    against one with `CROWD` more user entries (real tokens, added
//!    offline), interleaved: p50 and the ratio (goal 1.1 or less).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::slapd::{base64_encode, Slapd, BASE_DN};
use integration::Sandbox;
use std::path::PathBuf;
use std::time::Duration;
use totp_core::otp::{Algorithm, Generator, OtpParams};
use totp_core::record::UserRecord;
use totp_core::secret::SecretBytes;

const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const RECORD: &str = "version = 1\nstatus = \"active\"\nsecret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\n";

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn release_dir() -> PathBuf {
    let dir = integration::release_module_path()
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(
        dir.join("libpam_totp_ldap.so").exists(),
        "build the release modules first: cargo build --release -p pam_module -p pam_module_ldap"
    );
    dir
}

/// A host's sandbox whose "totp" service runs the release module.
fn sandbox(name: &str, config: &str) -> Sandbox {
    let sb = Sandbox::new(name);
    sb.write_config(config);
    sb.raw_service(
        "totp",
        &format!(
            "auth [success=ok ignore=ignore default=die] {} config={{config}}\nauth required pam_permit.so\n",
            release_dir().join("libpam_totp.so").display()
        ),
    );
    sb
}

fn ldap_config(slapd: &Slapd, verify: &str) -> String {
    slapd.host_config(
        "host-a",
        &[slapd.starttls_uri()],
        &format!("verify = \"{verify}\"\n"),
    )
}

/// The host-checked config over ldaps:// (TLS from the first byte, one
/// round trip fewer than StartTLS).
fn ldaps_config(slapd: &Slapd) -> String {
    slapd.host_config("host-a", &[slapd.ldaps_uri()], "verify = \"host\"\n")
}

/// Enroll `users` as directory-checked tokens, through the store's own code.
fn enroll_directory(slapd: &Slapd, users: &[String]) {
    let mut config = totp_core::config::Config::parse(&ldap_config(slapd, "directory")).unwrap();
    config.ldap.timeout_ms = 10_000;
    let store = totp_ldap::LdapStore::new(&config.ldap).with_otp_limits(&config.otp);
    for user in users {
        let name = totp_core::names::UserName::parse(user.as_bytes()).unwrap();
        let lock = store.lock(&name).unwrap();
        lock.write_record(&UserRecord::parse(RECORD).unwrap())
            .unwrap();
    }
}

/// One whole-process login with the current step's code; its duration.
fn login(sb: &Sandbox, user: &str, generator: &Generator) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = generator.code_at_step(now / 30);
    let mut input = code.as_bytes().to_vec();
    input.push(b'\n');
    for _ in 0..5 {
        let (run, took) =
            integration::run_timed(&mut sb.pamtester_command("totp", user, &[]), &input);
        // pam_wrapper's copy of the service directory (/tmp/pam.X) can
        // collide with another process's on a busy machine; then the login
        // ran against another config and never reached this store: again.
        if !run.success
            && run
                .stderr
                .contains("Failed to create pam_wrapper config dir")
        {
            continue;
        }
        assert!(run.success, "{user}: {}", run.shown());
        return took;
    }
    panic!("{user}: pam_wrapper could not make its service directory");
}

/// The `per_mille`-th value of `times` (500: the median).
fn percentile(times: &mut [Duration], per_mille: usize) -> Duration {
    times.sort();
    times[(times.len() - 1) * per_mille / 1000]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let n = env_count("PAM_TOTP_BENCH_VERIFY_USERS", 200);
    let crowd = env_count("PAM_TOTP_BENCH_CROWD", 100_000);
    let generator = Generator::new(
        &SecretBytes::from_base32(SECRET).unwrap(),
        OtpParams::new(Algorithm::SHA1, 6, 30).unwrap(),
    );
    let users: Vec<String> = (0..n).map(|i| format!("pamtotp-v{i:03}")).collect();
    for user in &users {
        integration::ensure_user(user, &[]);
    }
    println!("load before: {}", load());

    // The three stores.
    let files = sandbox("bench-verify-files", "");
    for user in &users {
        files.write_record_text(user, RECORD);
    }
    let host_slapd = Slapd::start_durable("bench-verify-host");
    host_slapd.add_user_entries(users.iter().map(|u| (u.as_str(), RECORD)));
    let host = sandbox("bench-verify-host", &ldap_config(&host_slapd, "host"));
    // ldaps:// on a server of its own, so no code is a replay there.
    let ldaps_slapd = Slapd::start_durable("bench-verify-ldaps");
    ldaps_slapd.add_user_entries(users.iter().map(|u| (u.as_str(), RECORD)));
    let host_ldaps = sandbox("bench-verify-ldaps", &ldaps_config(&ldaps_slapd));
    let dir_slapd = Slapd::start_directory_checked_durable("bench-verify-dir");
    enroll_directory(&dir_slapd, &users);
    let dir = sandbox("bench-verify-dir", &ldap_config(&dir_slapd, "directory"));

    // 1. Interleaved, each user once per store, the order rotated.
    let stores = [
        ("files", &files),
        ("host-checked LDAP", &host),
        ("directory-checked LDAP", &dir),
        ("host-checked, ldaps://", &host_ldaps),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); stores.len()];
    for (i, user) in users.iter().enumerate() {
        for k in 0..4 {
            let which = (i + k) % 4;
            times[which].push(login(stores[which].1, user, &generator));
        }
    }
    println!(
        "\n1. Whole-process login (pamtester, release modules), {n} logins each, interleaved:"
    );
    let mut p50 = [0.0; 4];
    for (k, (name, _)) in stores.iter().enumerate() {
        let a = ms(percentile(&mut times[k], 500));
        let b = ms(percentile(&mut times[k], 950));
        p50[k] = a;
        println!("   {name:<24} p50 {a:7.2} ms   p95 {b:7.2} ms");
    }
    let p95: Vec<f64> = (0..4).map(|k| ms(percentile(&mut times[k], 950))).collect();
    println!(
        "   host-checked LDAP / files, p50: StartTLS {:.2} x, ldaps:// {:.2} x (goal <= 1.3 over TLS)",
        p50[1] / p50[0],
        p50[3] / p50[0]
    );
    println!(
        "   directory / host-checked: p50 {:.2} x, p95 {:.2} x (goal <= 1.1)",
        p50[2] / p50[1],
        p95[2] / p95[1]
    );
    println!("   load: {}", load());

    // 2. The same users on a server with `crowd` more tokens.
    let mut big = Slapd::start_directory_checked_durable("bench-verify-crowd");
    enroll_directory(&big, &users);
    let hash = totp_ldap::check_password_hash().unwrap();
    let params = format!("cn=totp-params-sha1-6-30-w1,{BASE_DN}");
    let mut ldif = String::with_capacity(crowd * 700);
    let mut seed = [0u8; 20];
    for i in 0..crowd {
        seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let dn = format!("uid=crowd{i:06},{BASE_DN}");
        ldif += &format!(
            "dn: {dn}\nobjectClass: totpUser\nobjectClass: oathTOTPUser\nobjectClass: oathTOTPToken\n\
             uid: crowd{i:06}\ntotpSerial: 1\ntotpPublicRecord:: {}\noathTOTPToken: {dn}\n\
             oathTOTPParams: {params}\nuserPassword: {hash}\npwdPolicySubentry: cn=totp-policy,{BASE_DN}\n\
             oathSecret:: {}\n\n",
            base64_encode(b"version = 1\nstatus = \"active\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\n"),
            base64_encode(&seed),
        );
    }
    big.bulk_load(&ldif);
    drop(ldif);
    // Each user has logged in on `dir` already: a new server of one user
    // each (the same users, enrolled afresh) is the baseline.
    let small = Slapd::start_directory_checked_durable("bench-verify-one");
    enroll_directory(&small, &users);
    let on_big = sandbox("bench-verify-crowd", &ldap_config(&big, "directory"));
    let on_small = sandbox("bench-verify-one", &ldap_config(&small, "directory"));
    let (mut t_small, mut t_big) = (Vec::new(), Vec::new());
    for (i, user) in users.iter().enumerate() {
        if i % 2 == 0 {
            t_small.push(login(&on_small, user, &generator));
            t_big.push(login(&on_big, user, &generator));
        } else {
            t_big.push(login(&on_big, user, &generator));
            t_small.push(login(&on_small, user, &generator));
        }
    }
    let (s, b) = (
        ms(percentile(&mut t_small, 500)),
        ms(percentile(&mut t_big, 500)),
    );
    println!(
        "\n2. Directory-checked login with {crowd} more tokens: p50 {b:.2} ms against {s:.2} ms: {:.2} x (goal <= 1.1)",
        b / s
    );
    println!("   load after: {}", load());
}
