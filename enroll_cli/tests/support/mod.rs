//! Shared helpers for the totpctl tests: a private store per test, running the
//! built binary, throwaway system users, and the module's login logic.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

pub mod json;

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use totp_core::login::{self, Outcome, PamIo};
use zeroize::Zeroizing;

pub const TOTPCTL: &str = env!("CARGO_BIN_EXE_totpctl");

/// A temporary directory with `users/`, `state/` (0700) and a config.toml
/// pointing at them; removed on drop.
pub struct Env {
    pub dir: PathBuf,
    pub config: PathBuf,
}

impl Env {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("totpctl-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["users", "state"] {
            fs::create_dir(dir.join(sub)).unwrap();
            fs::set_permissions(dir.join(sub), fs::Permissions::from_mode(0o700)).unwrap();
        }
        let config = dir.join("config.toml");
        fs::write(
            &config,
            format!(
                "[paths]\nusers_dir = \"{0}/users\"\nstate_dir = \"{0}/state\"\n\n# Tests log in at fixed times: no backoff between attempts.\n[throttle]\nbackoff_seconds = 0\nbackoff_max_seconds = 0\n\n[enroll]\nissuer = \"Test Host\"\n",
                dir.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
        Self { dir, config }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(TOTPCTL);
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .current_dir(&self.dir)
            .env("LC_ALL", "C");
        cmd
    }

    /// Run with stdin closed.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(
            self.command(args)
                .stdin(Stdio::null())
                .output()
                .expect("run totpctl"),
        )
    }

    /// Run with `input` piped to stdin.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Run {
        run_piped(&mut self.command(args), input)
    }

    pub fn record_path(&self, user: &str) -> PathBuf {
        self.dir.join("users").join(format!("{user}.toml"))
    }

    pub fn record(&self, user: &str) -> Option<String> {
        fs::read_to_string(self.record_path(user)).ok()
    }

    pub fn state(&self, user: &str) -> totp_core::state::LoginState {
        match fs::read_to_string(self.dir.join("state").join(format!("{user}.state"))) {
            Ok(text) => totp_core::state::LoginState::parse(&text).unwrap(),
            Err(_) => totp_core::state::LoginState::new(),
        }
    }

    /// Every record and state file with its contents. Lock files are left out:
    /// they are empty, permanent and hold nothing.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        for sub in ["users", "state"] {
            for entry in fs::read_dir(self.dir.join(sub)).unwrap() {
                let entry = entry.unwrap();
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".lock") {
                    continue;
                }
                files.insert(format!("{sub}/{name}"), fs::read(entry.path()).unwrap());
            }
        }
        files
    }

    /// Log in through the module's own logic (`totp_core::login`), answering
    /// the prompt with `answer`, at Unix time `now`.
    pub fn login(&self, user: &str, answer: &str, now: u64) -> Login {
        let mut io = FakePam {
            user: user.into(),
            answer: answer.into(),
            messages: Vec::new(),
            now,
        };
        let args = [format!("config={}", self.config.display())];
        let outcome = login::authenticate(&mut io, &args);
        Login {
            outcome,
            messages: io.messages,
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

pub struct Login {
    pub outcome: Outcome,
    pub messages: Vec<String>,
}

impl Login {
    pub fn success(&self) -> bool {
        self.outcome.code == login::PamCode::Success
    }
}

struct FakePam {
    user: String,
    answer: String,
    messages: Vec<String>,
    now: u64,
}

impl PamIo for FakePam {
    fn user(&mut self) -> Result<Vec<u8>, String> {
        Ok(self.user.as_bytes().to_vec())
    }
    fn service(&self) -> Option<String> {
        Some("totpctl-test".into())
    }
    fn rhost(&self) -> Option<String> {
        None
    }
    fn prompt_hidden(&mut self, _prompt: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        Ok(Zeroizing::new(self.answer.as_bytes().to_vec()))
    }
    fn info(&mut self, text: &str) {
        self.messages.push(text.into());
    }
    fn error(&mut self, text: &str) {
        self.messages.push(text.into());
    }
    fn previous_token(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        None
    }
    fn set_token(&mut self, _token: &[u8]) -> Result<(), String> {
        Ok(())
    }
    fn now(&mut self) -> u64 {
        self.now
    }
    fn keep_code(&mut self, _code: &[u8]) -> Result<(), String> {
        Err("not supported by this test".into())
    }
    fn take_kept_code(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        None
    }
}

/// What a run of totpctl printed and returned.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }
}

impl Run {
    /// The otpauth URI line of `enroll`.
    pub fn uri(&self) -> String {
        self.stdout
            .lines()
            .find(|l| l.starts_with("otpauth://"))
            .unwrap_or_else(|| panic!("no URI in {}", self.stdout))
            .to_owned()
    }

    /// The recovery codes shown at activation.
    pub fn recovery_codes(&self) -> Vec<String> {
        self.stdout
            .lines()
            .filter_map(|l| {
                let (n, code) = l.trim_start().split_once(". ")?;
                (n.parse::<u32>().is_ok() && code.len() == 19).then(|| code.to_owned())
            })
            .collect()
    }
}

/// The `secret` parameter of an otpauth URI.
/// Run `cmd` with `input` on its stdin, capturing everything.
pub fn run_piped(cmd: &mut Command, input: &str) -> Run {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // A run that fails before it reads its input (a usage error, nothing
    // to activate) may be gone already: that is no write error of the test.
    match child.stdin.take().unwrap().write_all(input.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        written => written.unwrap(),
    }
    Run::from(child.wait_with_output().unwrap())
}

pub fn secret_of(uri: &str) -> String {
    let query = uri.split_once('?').unwrap().1;
    query
        .split('&')
        .find_map(|p| p.strip_prefix("secret="))
        .unwrap()
        .to_owned()
}

pub fn now() -> u64 {
    totp_core::time::now_unix()
}

/// A code computed by oathtool (an independent implementation) at `time`.
pub fn oathtool(secret: &str, algorithm: &str, digits: u8, period: u64, time: u64) -> String {
    let out = Command::new("oathtool")
        .arg(format!("--totp={}", algorithm.to_ascii_lowercase()))
        .arg(format!("--digits={digits}"))
        .arg(format!("--time-step-size={period}s"))
        .arg(format!("--now=@{time}"))
        .arg("--base32")
        .arg(secret)
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("oathtool is not installed: apt-get install oathtool")
        }
        Err(e) => panic!("oathtool: {e}"),
    };
    assert!(out.status.success(), "oathtool failed: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A well-formed SHA1/6/30 code that is wrong now for `secret`: none of the
/// codes of the steps around now (the window, with a margin for a step
/// change while the test runs).
pub fn wrong_code(secret: &str) -> String {
    let now = now();
    let near: Vec<String> = (0..5)
        .map(|i| oathtool(secret, "SHA1", 6, 30, now + i * 30 - 60))
        .collect();
    ["000000", "111111", "222222", "333333", "444444", "555555"]
        .into_iter()
        .find(|c| !near.iter().any(|n| n == c))
        .unwrap()
        .to_owned()
}

/// Decode the single QR code in `image` with zbarimg.
pub fn zbarimg(image: &Path) -> String {
    let out = match Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(image)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("zbarimg is not installed: apt-get install zbar-tools")
        }
        Err(e) => panic!("zbarimg: {e}"),
    };
    assert!(
        out.status.success(),
        "zbarimg failed on {}",
        image.display()
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end_matches('\n')
        .to_owned()
}

/// A system account created for one test and removed on drop.
pub struct TestUser {
    pub name: String,
    pub home: PathBuf,
}

impl TestUser {
    pub fn new(name: &str, env: &Env) -> Self {
        let home = env.dir.join(format!("home-{name}"));
        let _ = Command::new("userdel").arg(name).output();
        for attempt in 0..20 {
            let out = Command::new("useradd")
                .args([
                    "--create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    "--home-dir",
                ])
                .arg(&home)
                .arg(name)
                .output()
                .expect("run useradd");
            if out.status.success() {
                return Self {
                    name: name.into(),
                    home,
                };
            }
            // Parallel tests contend for the /etc/passwd lock.
            assert!(attempt < 19, "useradd {name} failed: {out:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
        unreachable!()
    }

    pub fn uid_gid(&self) -> (u32, u32) {
        let user = nix::unistd::User::from_name(&self.name).unwrap().unwrap();
        (user.uid.as_raw(), user.gid.as_raw())
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        for _ in 0..20 {
            let out = Command::new("userdel").arg(&self.name).output();
            if out.map(|o| o.status.success()).unwrap_or(false) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
