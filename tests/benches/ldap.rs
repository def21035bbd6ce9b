//! The LDAP store against the files store (issue #11, "Performance").
//!
//! A benchmark, not a timed test: it prints figures side by side and asserts
//! only correctness (every login succeeds, no state update is lost).
//!
//! Run it as root (it creates the accounts pamtotp-b000..b099 with useradd
//! and starts a private slapd on 127.0.0.1), with slapd, ldap-utils, openssl
//! and gcc installed:
//!
//! ```text
//! cargo build --release -p pam_module -p pam_module_ldap   # for figure 4
//! cargo bench -p integration --bench ldap
//! ```
//!
//! `PAM_TOTP_BENCH_LOGINS` (default 2000) and `PAM_TOTP_BENCH_CROWD`
//! (default 100000) make a quick run smaller.
//!
//! Logins run in this process through the module's own login flow, as
//! `totp_core/benches/login.rs` does: a fake PAM conversation answers the
//! prompt and sets the time, so each login of a user is one time step after
//! its last, with that step's code: always a real success, never a replay.
//! Like the module in a PAM process, each login opens the store afresh: for
//! LDAP that is connect + TLS + bind + read + the failure write (counted
//! before the code is compared) + the success write.
//!
//! The slapd is durable (`Slapd::start_durable`: no `dbnosync`), so each of
//! the two writes of a login is synced to disk before slapd answers. The
//! files store writes its state without fsync, by design.
//!
//! The figures:
//! 1. Login latency, median and p99 over `LOGINS` logins of root, files
//!    against LDAP over StartTLS and over ldaps://, interleaved.
//! 2. The StartTLS login on a server with 1 entry against a second server
//!    with `CROWD` more (added by one ldapadd), the two measured in turn so
//!    that disk noise hits both alike: medians and their ratio (goal 1.1 or
//!    less; the shipped acl.conf indexes uid and objectClass). The same for
//!    the read alone (connect + TLS + bind + read, no write), which tells
//!    the lookup's cost from the cost of the synced writes.
//! 3. 1,000 logins over 100 users, 16 threads, spread over the 3 hosts
//!    (one config each, binding as host-a, -b, -c): each user belongs to one
//!    thread and logs in 10 times, one step apart. All must succeed, and
//!    afterwards every entry shows totpSerial 20 (two writes per login),
//!    totpLastStep the 10th step and no failures; every state file of the
//!    files store shows the 10th step. Logins per second, for both.
//! 4. Module load time: dlopen(RTLD_NOW | RTLD_LOCAL) in a fresh process
//!    (libpam already loaded, as in a PAM application), interleaved runs,
//!    median and p90, and the sizes: `libpam_totp.so` (files only: what
//!    every login pays), `libpam_totp_ldap.so` (with the LDAP client and
//!    TLS), and both one after the other (what a login on the LDAP store
//!    pays: `pam_totp.so` hands it to `pam_totp_ldap.so`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::slapd::{Slapd, BASE_DN};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use totp_core::config::Config;
use totp_core::login::{authenticate, Outcome, PamCode};
use totp_core::names::UserName;
use totp_core::otp::{Algorithm, Generator, OtpParams};
use totp_core::secret::SecretBytes;
use totp_core::state::LoginState;

const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const RECORD: &str = "version = 1\nstatus = \"active\"\nsecret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\n";
/// The first time step of the benchmark (2027): far from any real state.
const FIRST_STEP: u64 = 60_000_000;
const CROWD_USERS: usize = 100;
const CROWD_THREADS: usize = 16;
const CROWD_ROUNDS: u64 = 10;
const LOAD_RUNS: usize = 300;

/// Make the LDAP store available in this process, as `pam_totp_ldap.so`
/// does when it is loaded (without it, a login whose config says
/// `backend = "ldap"` is handed on and never reaches the store).
fn register_ldap() {
    totp_core::store::set_ldap_opener(totp_ldap::open);
}

/// One login through the module's flow. The only call to the login entry
/// point.
fn log_in(args: &[String], user: &str, step: u64, code: Vec<u8>) -> Outcome {
    let mut io = integration::Answering {
        user: user.as_bytes().to_vec(),
        code,
        now: Some(step * 30),
        prompted: false,
    };
    authenticate(&mut io, args)
}

/// A user of one store, logging in one step later each time.
struct Clock {
    user: String,
    step: u64,
    logins: u64,
}

impl Clock {
    fn new(user: &str) -> Self {
        Self {
            user: user.into(),
            step: FIRST_STEP,
            logins: 0,
        }
    }

    /// One timed login (the code is computed outside the timing); panics
    /// unless it succeeds.
    fn login(&mut self, generator: &Generator, args: &[String]) -> Duration {
        self.step += 1;
        self.logins += 1;
        let code = generator.code_at_step(self.step).as_bytes().to_vec();
        let start = Instant::now();
        let outcome = log_in(args, &self.user, self.step, code);
        let took = start.elapsed();
        assert_eq!(outcome.code, PamCode::Success, "{}", outcome.line);
        took
    }
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map_or(default, |v| v.parse().expect(name))
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    register_ldap();
    let logins = env_count("PAM_TOTP_BENCH_LOGINS", 2000);
    let crowd = env_count("PAM_TOTP_BENCH_CROWD", 100_000);
    let generator = Generator::new(
        &SecretBytes::from_base32(SECRET).unwrap(),
        OtpParams::new(Algorithm::SHA1, 6, 30).unwrap(),
    );
    let users: Vec<String> = (0..CROWD_USERS)
        .map(|i| format!("pamtotp-b{i:03}"))
        .collect();
    for user in &users {
        integration::ensure_user(user, &[]);
    }

    let slapd = Slapd::start_durable("bench-ldap");
    let work = slapd.work_dir();
    let files = files_store(&work, &users);
    let starttls = ldap_config(&slapd, &work, "host-a", &slapd.starttls_uri());
    let ldaps = ldap_config(&slapd, &work, "host-a", &slapd.ldaps_uri());
    slapd.add_user_entry("root", RECORD);
    println!(
        "pam_totp LDAP store benchmark: slapd {} on 127.0.0.1, durable (no dbnosync: \
         every LDAP write is synced to disk); the files store writes state without fsync.",
        slapd_version()
    );

    // 1. Latency, the three stores interleaved.
    let mut files_root = Clock::new("root");
    let mut ldap_root = Clock::new("root");
    for _ in 0..20 {
        files_root.login(&generator, &files);
        ldap_root.login(&generator, &starttls);
        ldap_root.login(&generator, &ldaps);
    }
    let (mut t_files, mut t_starttls, mut t_ldaps) = (vec![], vec![], vec![]);
    for _ in 0..logins {
        t_files.push(files_root.login(&generator, &files));
        t_starttls.push(ldap_root.login(&generator, &starttls));
        t_ldaps.push(ldap_root.login(&generator, &ldaps));
    }
    check_entry(&slapd, "root", ldap_root.logins * 2, ldap_root.step);
    let files_lat = Stats::of(t_files);
    let starttls_lat = Stats::of(t_starttls);
    let ldaps_lat = Stats::of(t_ldaps);
    println!("\n1. login latency, {logins} logins each, interleaved (median / p99):");
    println!("   files               {}", files_lat.ms());
    println!(
        "   LDAP StartTLS       {}   ({:.1}x files)",
        starttls_lat.ms(),
        starttls_lat.ratio(&files_lat)
    );
    println!(
        "   LDAP ldaps://       {}   ({:.1}x files)",
        ldaps_lat.ms(),
        ldaps_lat.ratio(&files_lat)
    );

    // 2. The same login with a crowd in the store: a second server with
    //    root and `crowd` more entries, measured in turn with the first (1
    //    entry), so that both see the same disk and the same neighbours.
    let crowded = Slapd::start_durable("bench-ldap-crowd");
    crowded.add_user_entry("root", RECORD);
    let crowd_users: Vec<String> = (0..crowd).map(|i| format!("pamtotp-c{i:06}")).collect();
    let start = Instant::now();
    crowded.add_user_entries(crowd_users.iter().map(|u| (u.as_str(), RECORD)));
    let added = start.elapsed();
    let crowded_starttls = ldap_config(
        &crowded,
        &crowded.work_dir(),
        "host-a",
        &crowded.starttls_uri(),
    );
    let mut crowded_root = Clock::new("root");
    for _ in 0..20 {
        ldap_root.login(&generator, &starttls);
        crowded_root.login(&generator, &crowded_starttls);
    }
    let (mut t_one, mut t_many, mut r_one, mut r_many) = (vec![], vec![], vec![], vec![]);
    for _ in 0..logins {
        t_one.push(ldap_root.login(&generator, &starttls));
        t_many.push(crowded_root.login(&generator, &crowded_starttls));
        r_one.push(timed_read(&starttls));
        r_many.push(timed_read(&crowded_starttls));
    }
    check_entry(&slapd, "root", ldap_root.logins * 2, ldap_root.step);
    check_entry(&crowded, "root", crowded_root.logins * 2, crowded_root.step);
    let (one, many) = (Stats::of(t_one), Stats::of(t_many));
    let (read_one, read_many) = (Stats::of(r_one), Stats::of(r_many));
    let ratio = many.ratio(&one);
    let read_ratio = read_many.ratio(&read_one);
    println!(
        "\n2. LDAP StartTLS, {logins} each, two servers in turn: 1 entry against {} entries \
         ({crowd} added by one ldapadd in {:.1} s; uid and objectClass indexed by ldap/acl.conf) \
         (median / p99):",
        crowd + 1,
        added.as_secs_f64()
    );
    let many_label = format!("{} entries", crowd + 1);
    for (what, a, b, r) in [
        ("login", &one, &many, ratio),
        ("read only", &read_one, &read_many, read_ratio),
    ] {
        println!("   {:<30} {}", format!("{what}, 1 entry"), a.ms());
        println!(
            "   {:<30} {}   ratio of medians {r:.3}",
            format!("{what}, {many_label}"),
            b.ms()
        );
    }
    println!("   (goal for the login's ratio: <= 1.1)");
    println!("   (read only: connect + TLS + bind + read of the record, no write)");
    drop(crowded);

    // 3. Many users at once.
    let ldap_hosts: Vec<Vec<String>> = integration::slapd::HOSTS
        .iter()
        .map(|h| ldap_config(&slapd, &work, h, &slapd.starttls_uri()))
        .collect();
    let ldap_new: Vec<(&str, &str)> = users.iter().map(|u| (u.as_str(), RECORD)).collect();
    slapd.add_user_entries(ldap_new);
    let files_rate = crowd_run(&generator, &users, std::slice::from_ref(&files));
    check_state_files(&work, &users, FIRST_STEP + CROWD_ROUNDS);
    let ldap_rate = crowd_run(&generator, &users, &ldap_hosts);
    check_crowd_entries(&slapd, &users);
    let total = CROWD_USERS as u64 * CROWD_ROUNDS;
    println!(
        "\n3. {total} logins over {CROWD_USERS} users, {CROWD_THREADS} threads, \
         {CROWD_ROUNDS} per user one step apart (all succeeded, no lost update):"
    );
    println!("   files (one host)    {files_rate:>7.0} logins/s");
    println!(
        "   LDAP StartTLS       {ldap_rate:>7.0} logins/s over host-a/b/c   \
         (every entry: totpSerial {}, totpLastStep the 10th step, no failures)",
        2 * CROWD_ROUNDS
    );

    // 4. Load time.
    let loads = load_times(&work);
    println!(
        "\n4. dlopen(RTLD_NOW|RTLD_LOCAL) in a fresh process with libpam loaded, \
         {LOAD_RUNS} runs each, interleaved (median / p90, size):"
    );
    for (name, stats, size) in &loads {
        match stats {
            Some(s) => println!(
                "   {name:<34} {:.3} / {:.3} ms   {}",
                ms(s.median),
                ms(s.p90),
                size_text(*size)
            ),
            None => println!("   {name:<34} not built"),
        }
    }

    println!("\nSummary");
    println!("{:<34} {:<22} LDAP", "", "files");
    println!(
        "{:<34} {:<22} {} StartTLS, {} ldaps://",
        "login median / p99",
        files_lat.ms(),
        starttls_lat.ms(),
        ldaps_lat.ms()
    );
    println!(
        "{:<34} {:<22} {:.3} -> {:.3} ms, ratio {ratio:.3}",
        format!("login median, 1 -> {} entries", crowd + 1),
        "-",
        ms(one.median),
        ms(many.median)
    );
    println!(
        "{:<34} {:<22} {:.3} -> {:.3} ms, ratio {read_ratio:.3}",
        format!("read median, 1 -> {} entries", crowd + 1),
        "-",
        ms(read_one.median),
        ms(read_many.median)
    );
    println!(
        "{:<34} {:<22} {ldap_rate:.0}/s (3 hosts; all ok, no lost update)",
        format!("{total} logins, {CROWD_THREADS} threads"),
        format!("{files_rate:.0}/s"),
    );
    for (name, stats, size) in &loads {
        if let Some(s) = stats {
            println!(
                "{:<34} {:<22} {}",
                format!("load {name}"),
                format!("{:.3} / {:.3} ms", ms(s.median), ms(s.p90)),
                size_text(*size)
            );
        }
    }
}

/// Connect + TLS + bind + read of root's record, no write: the part of a
/// login that the number of entries could slow down.
fn timed_read(args: &[String]) -> Duration {
    let path = args[0].strip_prefix("config=").unwrap();
    let config = Config::load(Path::new(path), true).unwrap();
    let user = UserName::parse(b"root").unwrap();
    let start = Instant::now();
    let store = totp_ldap::open(&config).unwrap();
    let record = store.load_record(&user).unwrap();
    let took = start.elapsed();
    assert!(record.is_some(), "root's record is missing");
    took
}

/// The files store in `work`: root and the crowd's users enrolled.
fn files_store(work: &Path, users: &[String]) -> Vec<String> {
    let dir = work.join("files");
    for sub in ["users", "state"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        std::fs::set_permissions(dir.join(sub), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    for user in users.iter().map(String::as_str).chain(["root"]) {
        let record = dir.join(format!("users/{user}.toml"));
        std::fs::write(&record, RECORD).unwrap();
        std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[paths]\nusers_dir = \"{0}/users\"\nstate_dir = \"{0}/state\"\n",
            dir.display()
        ),
    )
    .unwrap();
    vec![format!("config={}", config.display())]
}

/// A host's module arguments for the LDAP store at `uri`.
fn ldap_config(slapd: &Slapd, work: &Path, host: &str, uri: &str) -> Vec<String> {
    let bind = slapd.host(host);
    let scheme = uri.split(':').next().unwrap();
    let config = work.join(format!("{host}-{scheme}.toml"));
    std::fs::write(
        &config,
        format!(
            "[store]\nbackend = \"ldap\"\n[ldap]\nuris = [\"{uri}\"]\nbase_dn = \"{BASE_DN}\"\n\
             bind_dn = \"{}\"\nbind_password_file = \"{}\"\nca_file = \"{}\"\nstarttls = {}\n\
             timeout_ms = 3000\n",
            bind.dn,
            bind.password_file.display(),
            slapd.ca_file().display(),
            scheme == "ldap",
        ),
    )
    .unwrap();
    vec![format!("config={}", config.display())]
}

/// Figure 3: every user logs in `CROWD_ROUNDS` times, one step apart, on
/// the hosts in turn; each user belongs to one of `CROWD_THREADS` threads.
/// Returns logins per second.
fn crowd_run(generator: &Generator, users: &[String], hosts: &[Vec<String>]) -> f64 {
    // The codes first, outside the timing.
    let codes: Vec<Vec<u8>> = (1..=CROWD_ROUNDS)
        .map(|r| generator.code_at_step(FIRST_STEP + r).as_bytes().to_vec())
        .collect();
    let start = Instant::now();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..CROWD_THREADS)
            .map(|t| {
                let codes = &codes;
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for (round, code) in codes.iter().enumerate() {
                        for (u, user) in users.iter().enumerate().skip(t).step_by(CROWD_THREADS) {
                            let host = &hosts[(u + round) % hosts.len()];
                            let step = FIRST_STEP + 1 + u64::try_from(round).unwrap();
                            let code = code.clone();
                            let outcome = log_in(host, user, step, code);
                            if outcome.code != PamCode::Success {
                                failures.push(outcome.line);
                            }
                        }
                    }
                    failures
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    });
    let took = start.elapsed();
    assert!(
        failures.is_empty(),
        "{} logins failed, first: {}",
        failures.len(),
        failures[0]
    );
    (users.len() as f64 * CROWD_ROUNDS as f64) / took.as_secs_f64()
}

/// A user's entry shows `serial` state writes, `step` as its last step,
/// and no failures.
fn check_entry(slapd: &Slapd, user: &str, serial: u64, step: u64) {
    let entry = slapd.user_entry(user).expect("the entry is gone");
    check_attrs(&entry, serial, step);
}

fn check_attrs(entry: &integration::slapd::Entry, serial: u64, step: u64) {
    assert_eq!(
        entry.get("totpSerial"),
        Some(serial.to_string()),
        "{}: lost or extra state writes",
        entry.dn
    );
    assert_eq!(
        entry.get("totpLastStep"),
        Some(step.to_string()),
        "{}: wrong last step",
        entry.dn
    );
    let failures = entry.get("totpFailures").unwrap_or_else(|| "0".into());
    assert_eq!(failures, "0", "{}: failures left over", entry.dn);
}

fn check_crowd_entries(slapd: &Slapd, users: &[String]) {
    let found = slapd.search(
        Some(&slapd.root()),
        BASE_DN,
        "(uid=pamtotp-b*)",
        &["totpSerial", "totpLastStep", "totpFailures"],
    );
    assert_eq!(found.rc, 0, "{}", found.stderr);
    assert_eq!(found.entries.len(), users.len());
    for entry in &found.entries {
        check_attrs(entry, 2 * CROWD_ROUNDS, FIRST_STEP + CROWD_ROUNDS);
    }
}

fn check_state_files(work: &Path, users: &[String], step: u64) {
    for user in users {
        let path = work.join(format!("files/state/{user}.state"));
        let state = LoginState::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(state.last_step, Some(step), "{}", path.display());
        assert_eq!(state.failures, 0, "{}", path.display());
    }
}

/// Figure 4: each module's dlopen time, and both in one process (the LDAP
/// path: libpam_totp.so, then the backend it forwards to).
fn load_times(work: &Path) -> Vec<(String, Option<Stats>, u64)> {
    let dir = integration::target_dir();
    let main = dir.join("libpam_totp.so");
    let ldap = dir.join("libpam_totp_ldap.so");
    let tool = build_dltime(work);
    let cases: Vec<(String, Vec<PathBuf>)> = vec![
        ("libpam_totp.so (files)".into(), vec![main.clone()]),
        ("libpam_totp_ldap.so".into(), vec![ldap.clone()]),
        ("both (a login on LDAP)".into(), vec![main, ldap]),
    ];
    let present: Vec<bool> = cases
        .iter()
        .map(|(_, paths)| paths.iter().all(|p| p.exists()))
        .collect();
    let mut runs: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for _ in 0..LOAD_RUNS {
        for (i, (_, paths)) in cases.iter().enumerate() {
            if present[i] {
                runs[i].push(dlopen_once(&tool, paths));
            }
        }
    }
    cases
        .into_iter()
        .zip(runs)
        .zip(present)
        .map(|(((name, paths), runs), present)| {
            let size = paths
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum();
            (name, present.then(|| Stats::of(runs)), size)
        })
        .collect()
}

const DLTIME_C: &str = r#"
#include <dlfcn.h>
#include <stdio.h>
#include <time.h>
/* dlopen each argument in turn, as a PAM application would; print the
   total time in nanoseconds. */
int main(int argc, char **argv) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 1; i < argc; i++) {
        if (!dlopen(argv[i], RTLD_NOW | RTLD_LOCAL)) {
            fprintf(stderr, "%s\n", dlerror());
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%ld\n", (b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec));
    return 0;
}
"#;

/// The dlopen timer, linked against libpam (loaded before main, as in any
/// PAM application, so it is not counted).
fn build_dltime(work: &Path) -> PathBuf {
    let src = work.join("dltime.c");
    let bin = work.join("dltime");
    std::fs::write(&src, DLTIME_C).unwrap();
    let out = Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .args(["-Wl,--no-as-needed", "-lpam", "-ldl"])
        .output()
        .expect("gcc is missing: apt-get install gcc");
    assert!(
        out.status.success(),
        "gcc dltime.c failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

fn dlopen_once(tool: &Path, paths: &[PathBuf]) -> Duration {
    let out = Command::new(tool).args(paths).output().unwrap();
    assert!(
        out.status.success(),
        "dlopen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Duration::from_nanos(
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap(),
    )
}

fn slapd_version() -> String {
    let out = Command::new("/usr/sbin/slapd").arg("-VV").output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    text.split_whitespace()
        .skip_while(|w| *w != "slapd")
        .nth(1)
        .unwrap_or("?")
        .to_string()
}

struct Stats {
    median: Duration,
    p90: Duration,
    p99: Duration,
}

impl Stats {
    fn of(mut samples: Vec<Duration>) -> Self {
        assert!(!samples.is_empty());
        samples.sort();
        // Nearest rank, of `percent` in 0..=100.
        let rank = |percent: usize| {
            let n = samples.len();
            samples[(percent * n).div_ceil(100).clamp(1, n) - 1]
        };
        Self {
            median: rank(50),
            p90: rank(90),
            p99: rank(99),
        }
    }

    fn ms(&self) -> String {
        format!("{:.3} / {:.3} ms", ms(self.median), ms(self.p99))
    }

    fn ratio(&self, other: &Stats) -> f64 {
        self.median.as_secs_f64() / other.median.as_secs_f64()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn size_text(bytes: u64) -> String {
    format!("{:.2} MB ({bytes} bytes)", bytes as f64 / 1_000_000.0)
}
