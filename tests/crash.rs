//! Crash safety: enroll, activate and logins, SIGKILLed at random points.
//!
//! Each iteration starts one process (`totpctl enroll`, `totpctl activate`, or
//! a pamtester login with a valid or a wrong code) and kills it with SIGKILL
//! after a random delay between 0 and a bit more than the time the command
//! takes uncut, so most die somewhere inside and some finish. After every
//! iteration:
//! - every record parses, and is the old one or the new one;
//! - no temp files pile up: besides `root.toml`, `root.state` and `root.lock`
//!   there is at most the one standing spare `.root.state.tmp` (kept on purpose,
//!   see `fsio::replace_unsynced`) and at most one `.root.toml.tmp` left by a
//!   killed record writer (the next writer removes it);
//! - the state is the old version or a new one: it parses (or is missing), and
//!   a login never moves its last accepted step backwards;
//! - once a login or an activation has completed (exit 0 before the kill), its
//!   step stays recorded and its code is refused, after every later kill, for
//!   as long as the record keeps that secret.
//!
//! The random sequence comes from a seed that is printed and given in every
//! failure; PAM_TOTP_CRASH_SEED=N replays it (timing still varies a little).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::*;
use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use totp_core::otp::Generator;
use totp_core::record::{Status, UserRecord};
use totp_core::state::LoginState;

/// Time spent killing, at most.
const BUDGET: Duration = Duration::from_secs(40);
const MAX_ITERATIONS: usize = 1500;

/// xorshift64*: small, deterministic, good enough for picking delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Enroll,
    Activate,
    GoodLogin,
    WrongLogin,
}

/// A code whose use completed: it must stay used.
struct Used {
    secret: String,
    code: String,
    step: u64,
    by: Op,
}

struct Crash<'a> {
    sb: &'a Sandbox,
    seed: u64,
    qr_dir: std::path::PathBuf,
}

impl Crash<'_> {
    fn totpctl(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(totpctl_path());
        cmd.arg("--config").arg(&self.sb.config).args(args);
        cmd
    }

    fn fail(&self, iteration: usize, what: &str) -> ! {
        panic!(
            "crash test, seed {} (PAM_TOTP_CRASH_SEED={} to replay), iteration {iteration}: {what}",
            self.seed, self.seed
        );
    }

    fn record(&self) -> Option<UserRecord> {
        let text = std::fs::read_to_string(self.sb.record_path("root")).ok()?;
        UserRecord::parse(&text).ok()
    }

    fn state(&self) -> Option<LoginState> {
        let text = std::fs::read_to_string(self.sb.state_path("root")).ok()?;
        LoginState::parse(&text).ok()
    }

    /// Spawn `cmd`, feed `input`, SIGKILL it after `delay` unless it is done.
    /// Returns the exit status if it finished on its own.
    fn run_killed(&self, mut cmd: Command, input: &[u8], delay: Duration) -> Option<ExitStatus> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        {
            let mut stdin = child.stdin.take().unwrap();
            let _ = stdin.write_all(input);
        }
        std::thread::sleep(delay);
        match child.try_wait().unwrap() {
            Some(status) => Some(status),
            None => {
                let _ = child.kill();
                let status = child.wait().unwrap();
                // It may have finished between try_wait and kill.
                status.code().map(|_| status)
            }
        }
    }

    fn command(&self, op: Op, iteration: usize, code: &str) -> (Command, Vec<u8>) {
        match op {
            Op::Enroll => {
                let qr = self.qr_dir.join(format!("{iteration}.jpg"));
                let cmd =
                    self.totpctl(&["enroll", "root", "--force", "--qr", qr.to_str().unwrap()]);
                (cmd, Vec::new())
            }
            Op::Activate => (
                self.totpctl(&["activate", "root", "--code", code]),
                Vec::new(),
            ),
            Op::GoodLogin | Op::WrongLogin => (
                self.sb.pamtester_command("totp", "root", &[]),
                format!("{code}\n").into_bytes(),
            ),
        }
    }

    /// Files present besides the expected ones, and the checks on their contents.
    fn check_files(
        &self,
        i: usize,
        op: Op,
        before_state: &Option<Vec<u8>>,
        before_record: &Option<Vec<u8>>,
    ) {
        let list = |dir: &Path| -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        for name in list(&self.sb.users_dir) {
            if !matches!(name.as_str(), "root.toml" | ".root.toml.tmp") {
                self.fail(i, &format!("unexpected file users/{name} after {op:?}"));
            }
        }
        for name in list(&self.sb.state_dir) {
            if !matches!(
                name.as_str(),
                "root.state" | "root.lock" | ".root.state.tmp"
            ) {
                self.fail(i, &format!("unexpected file state/{name} after {op:?}"));
            }
        }
        // The record: the old one, or a new one that parses.
        match std::fs::read(self.sb.record_path("root")) {
            Ok(bytes) => {
                if Some(&bytes) != before_record.as_ref() {
                    let text = String::from_utf8(bytes).unwrap_or_default();
                    if let Err(e) = UserRecord::parse(&text) {
                        self.fail(i, &format!("record torn after {op:?}: {e}"));
                    }
                }
            }
            Err(_) if before_record.is_some() => {
                self.fail(i, &format!("record vanished after {op:?}"))
            }
            Err(_) => {}
        }
        // The state: the old one, or a new one that parses; a login never
        // moves the last step backwards.
        match std::fs::read(self.sb.state_path("root")) {
            Ok(bytes) => {
                if Some(&bytes) != before_state.as_ref() {
                    let text = String::from_utf8(bytes).unwrap_or_default();
                    let new = LoginState::parse(&text).unwrap_or_else(|e| {
                        self.fail(i, &format!("state torn after {op:?}: {e}: {text:?}"))
                    });
                    let old = before_state
                        .as_ref()
                        .and_then(|b| LoginState::parse(std::str::from_utf8(b).ok()?).ok());
                    if matches!(op, Op::GoodLogin | Op::WrongLogin) {
                        if let Some(old) = old {
                            if new.last_step < old.last_step {
                                self.fail(
                                    i,
                                    &format!(
                                        "a login moved the last step back: {old:?} -> {new:?}"
                                    ),
                                );
                            }
                        }
                    }
                }
            }
            Err(_) if before_state.is_some() => {
                self.fail(i, &format!("state vanished after {op:?}"))
            }
            Err(_) => {}
        }
        // The .jpg of this iteration, if any, is the caller's file; nothing else may be there.
        let qrs = list(&self.qr_dir);
        if qrs.len() > 1 {
            self.fail(i, &format!("QR files pile up: {qrs:?}"));
        }
        for name in qrs {
            std::fs::remove_file(self.qr_dir.join(name)).unwrap();
        }
    }
}

/// pam_wrapper's copies of the service directory (`/tmp/pam.X`).
fn pam_wrapper_dirs() -> std::collections::BTreeSet<std::path::PathBuf> {
    std::fs::read_dir("/tmp")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("pam.") && name.len() == 5
        })
        .map(|e| e.path())
        .collect()
}

/// Remove the pam_wrapper copies that appeared since `before` and whose
/// process is gone. A pamtester killed between pam_wrapper's mkdir and its
/// writing the pid file leaves a directory that pam_wrapper itself never
/// cleans up, and it has only 62 names: left alone, these would eventually
/// make every pam_wrapper run on the machine fail.
fn remove_dead_pam_wrapper_dirs(before: &std::collections::BTreeSet<std::path::PathBuf>) {
    // No pid file, or an empty one (killed before it was written), or a pid
    // that is not running.
    let dead = |dir: &Path| {
        std::fs::read_to_string(dir.join("pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
            .is_none_or(|pid| !Path::new("/proc").join(pid.to_string()).exists())
    };
    let fresh: Vec<_> = pam_wrapper_dirs().difference(before).cloned().collect();
    if fresh.iter().any(|d| dead(d)) {
        // Another process may be between mkdir and writing its pid file: look again.
        std::thread::sleep(Duration::from_millis(20));
        for dir in fresh.iter().filter(|d| dead(d)) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The code for `step` of `record`.
fn code_at(record: &UserRecord, step: u64) -> String {
    let code = Generator::new(&record.secret, record.params).code_at_step(step);
    String::from_utf8(code.as_bytes().to_vec()).unwrap()
}

/// How long one uncut run of `cmd` takes.
fn time_once(mut cmd: Command, input: &[u8]) -> Duration {
    let start = Instant::now();
    let _ = run_with_input(&mut cmd, input);
    start.elapsed()
}

#[test]
fn sigkill_at_random_points_keeps_files_whole_and_replays_refused() {
    let seed = std::env::var("PAM_TOTP_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now() ^ u64::from(std::process::id()) << 32 | 1);
    eprintln!("crash test: seed {seed} (PAM_TOTP_CRASH_SEED={seed} to replay)");
    let mut rng = Rng(seed);
    let sb = Sandbox::new("crash");
    // Replays and wrong codes are counted, but must not lock the account
    // (that would stop the good logins this test needs).
    sb.write_config(
        "[throttle]\nmax_failures = 100\nlockout_seconds = 0\nbackoff_seconds = 0\nbackoff_max_seconds = 0\n",
    );
    sb.service("totp", "");
    let crash = Crash {
        sb: &sb,
        seed,
        qr_dir: sb.root.join("qr"),
    };
    std::fs::create_dir_all(&crash.qr_dir).unwrap();

    // Calibrate the kill delays: enroll, activate and a wrong-code login, uncut.
    let enroll_time = time_once(crash.command(Op::Enroll, 0, "").0, b"");
    std::fs::remove_file(crash.qr_dir.join("0.jpg")).unwrap();
    let pending = crash.record().expect("enroll wrote a record");
    let code = code_at(&pending, pending.params.step_at(now()));
    let activate_time = time_once(crash.command(Op::Activate, 0, &code).0, b"");
    assert_eq!(crash.record().map(|r| r.status), Some(Status::Active));
    let login_time = time_once(crash.command(Op::WrongLogin, 0, "000000").0, b"000000\n");
    eprintln!(
        "crash test: uncut enroll {enroll_time:?}, activate {activate_time:?}, login {login_time:?}"
    );

    let started = Instant::now();
    let mut used: Option<Used> = None;
    let mut stats: std::collections::BTreeMap<String, u32> = Default::default();
    let mut count = |key: String| *stats.entry(key).or_default() += 1;
    let mut iterations = 0;
    while iterations < MAX_ITERATIONS && started.elapsed() < BUDGET {
        iterations += 1;
        let i = iterations;
        let record = crash.record();
        let state = crash.state();
        let now_s = now();
        // Pick an operation that can make progress from here.
        let roll = rng.below(100);
        let (op, code) = match &record {
            None => (Op::Enroll, String::new()),
            Some(r) if r.status == Status::Pending => {
                if roll < 20 {
                    (Op::Enroll, String::new())
                } else {
                    let step = r.params.step_at(now_s);
                    let step = if state.as_ref().and_then(|s| s.last_step) >= Some(step) {
                        step + 1
                    } else {
                        step
                    };
                    (Op::Activate, code_at(r, step))
                }
            }
            Some(r) => {
                let step = r.params.step_at(now_s);
                let last = state.as_ref().and_then(|s| s.last_step);
                let fresh = [step, step + 1].into_iter().find(|s| last < Some(*s));
                // With no unused step left in the window, a new enrollment
                // (which forgets the last step) is the way to more good logins.
                if roll < 8 || (fresh.is_none() && roll < 50) {
                    (Op::Enroll, String::new())
                } else if let (Some(s), true) = (fresh, roll < 75) {
                    (Op::GoodLogin, code_at(r, s))
                } else {
                    let window: Vec<String> = (step.saturating_sub(2)..=step + 2)
                        .map(|s| code_at(r, s))
                        .collect();
                    let wrong = (0..10)
                        .map(|d| d.to_string().repeat(usize::from(r.params.digits)))
                        .find(|c| !window.contains(c))
                        .unwrap();
                    (Op::WrongLogin, wrong)
                }
            }
        };
        let uncut = match op {
            Op::Enroll => enroll_time,
            Op::Activate => activate_time,
            Op::GoodLogin | Op::WrongLogin => login_time,
        };
        let max_us = u64::try_from(uncut.as_micros()).unwrap() * 13 / 10;
        let delay = Duration::from_micros(rng.below(max_us + 1));

        let before_state = std::fs::read(sb.state_path("root")).ok();
        let before_record = std::fs::read(sb.record_path("root")).ok();
        let (cmd, input) = crash.command(op, i, &code);
        let wrapper_dirs = pam_wrapper_dirs();
        let finished = crash.run_killed(cmd, &input, delay);
        if finished.is_none() && matches!(op, Op::GoodLogin | Op::WrongLogin) {
            remove_pam_wrapper_copies(&sb);
            remove_dead_pam_wrapper_dirs(&wrapper_dirs);
        }
        let killed = finished.is_none();
        count(format!(
            "{op:?} {}",
            if killed { "killed" } else { "finished" }
        ));

        crash.check_files(i, op, &before_state, &before_record);

        let succeeded = finished.is_some_and(|s| s.success());
        if op == Op::WrongLogin && succeeded {
            crash.fail(i, "a wrong code was accepted");
        }
        if succeeded && matches!(op, Op::GoodLogin | Op::Activate) {
            let r = record.as_ref().unwrap();
            let step = (r.params.step_at(now_s).saturating_sub(1)..=r.params.step_at(now()) + 1)
                .find(|s| code_at(r, *s) == code)
                .unwrap();
            used = Some(Used {
                secret: r.secret.to_base32().to_string(),
                code: code.clone(),
                step,
                by: op,
            });
            count(format!("{op:?} completed"));
        }

        // A completed use stays used, after any kill, while the secret is the same.
        let current = crash.record();
        if let (Some(u), Some(r)) = (&used, &current) {
            if *r.secret.to_base32() != u.secret {
                used = None;
            } else if killed || (succeeded && matches!(op, Op::GoodLogin | Op::Activate)) {
                let last = crash.state().and_then(|s| s.last_step);
                if last < Some(u.step) {
                    crash.fail(
                        i,
                        &format!(
                            "the step of a completed {:?} was lost: state last_step {last:?} < {}",
                            u.by, u.step
                        ),
                    );
                }
                if r.status == Status::Active {
                    let replay =
                        sb.pamtester("totp", "root", format!("{}\n", u.code).as_bytes(), &[]);
                    count("replay checks".into());
                    if replay.success {
                        crash.fail(
                            i,
                            &format!(
                                "the code of a completed {:?} was accepted again after a kill: {}",
                                u.by,
                                replay.outcome()
                            ),
                        );
                    }
                }
            }
        }
    }
    remove_pam_wrapper_copies(&sb);
    let elapsed = started.elapsed();
    eprintln!("crash test: {iterations} iterations in {elapsed:.1?}: {stats:?}");
    let kills: u32 = stats
        .iter()
        .filter(|(k, _)| k.ends_with("killed"))
        .map(|(_, v)| v)
        .sum();
    assert!(
        kills >= 100,
        "seed {seed}: only {kills} processes were killed in {iterations} iterations: {stats:?}"
    );
    for what in [
        "Enroll killed",
        "Activate killed",
        "GoodLogin killed",
        "GoodLogin completed",
    ] {
        assert!(
            stats.get(what).copied().unwrap_or(0) > 0,
            "seed {seed}: no '{what}' in {stats:?}"
        );
    }
}
