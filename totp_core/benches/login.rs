//! The in-process cost of one login, as the module pays it: load the config,
//! open and check the record, take the user's lock, read the state, verify the
//! code across the window, and write the state in place (a TOTP success: not
//! synced; the stage "synced write" is what a recovery code or HOTP adds).
//!
//! Each iteration logs in one time step later than the last, with that step's
//! code, so every iteration is a real success (never a replay).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};
use totp_core::login::{authenticate, PamCode, PamIo};
use totp_core::otp::{Algorithm, Generator, OtpParams};
use totp_core::secret::SecretBytes;
use zeroize::Zeroizing;

const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// Answers the prompt with a prepared code; everything else is inert.
struct Answering {
    code: Vec<u8>,
    now: u64,
}

impl PamIo for Answering {
    fn user(&mut self) -> Result<Vec<u8>, String> {
        Ok(b"root".to_vec())
    }
    fn service(&self) -> Option<String> {
        Some("bench".into())
    }
    fn rhost(&self) -> Option<String> {
        None
    }
    fn prompt_hidden(&mut self, _: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        Ok(Zeroizing::new(self.code.clone()))
    }
    fn info(&mut self, _: &str) {}
    fn error(&mut self, _: &str) {}
    fn previous_token(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        None
    }
    fn set_token(&mut self, _: &[u8]) -> Result<(), String> {
        Ok(())
    }
    fn now(&mut self) -> u64 {
        self.now
    }
    fn keep_code(&mut self, _: &[u8]) -> Result<(), String> {
        Ok(())
    }
    fn take_kept_code(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        None
    }
}

fn sandbox() -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("pam_totp-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["users", "state"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        std::fs::set_permissions(dir.join(sub), std::fs::Permissions::from_mode(0o700)).unwrap();
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
    let record = dir.join("users/root.toml");
    std::fs::write(
        &record,
        format!("version = 1\nstatus = \"active\"\nsecret = \"{SECRET}\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\n"),
    )
    .unwrap();
    std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o600)).unwrap();
    (dir, format!("config={}", config.display()))
}

fn login(c: &mut Criterion) {
    let (dir, config_arg) = sandbox();
    let generator = Generator::new(
        &SecretBytes::from_base32(SECRET).unwrap(),
        OtpParams::new(Algorithm::SHA1, 6, 30).unwrap(),
    );
    let args = [config_arg];
    let mut step: u64 = 60_000_000;
    c.bench_function("authenticate: good code, state written", |b| {
        b.iter_custom(|iters| {
            // Codes are computed outside the timed region.
            let codes: Vec<(u64, Vec<u8>)> = (0..iters)
                .map(|i| {
                    (
                        step + i,
                        generator.code_at_step(step + i).as_bytes().to_vec(),
                    )
                })
                .collect();
            step += iters;
            let start = Instant::now();
            for (s, code) in codes {
                let mut io = Answering { code, now: s * 30 };
                let outcome = authenticate(&mut io, &args);
                assert_eq!(outcome.code, PamCode::Success, "{}", outcome.line);
            }
            start.elapsed()
        });
    });
    std::fs::remove_dir_all(dir).unwrap();
}

/// The same path, one stage at a time, to show where the time goes.
fn stages(c: &mut Criterion) {
    use totp_core::config::Config;
    use totp_core::names::UserName;
    use totp_core::otp::{verify, Code};
    use totp_core::store::Store;
    let (dir, _) = sandbox();
    let config_path = dir.join("config.toml");
    let config = Config::load(&config_path, true).unwrap();
    let store = Store::new(&config.paths);
    let user = UserName::parse(b"root").unwrap();
    let mut g = c.benchmark_group("stage");
    g.bench_function("config load+parse", |b| {
        b.iter(|| Config::load(&config_path, true).unwrap())
    });
    g.bench_function("getpwnam_r", |b| {
        b.iter(|| nix::unistd::User::from_name("root").unwrap().unwrap())
    });
    g.bench_function("record open+check+parse", |b| {
        b.iter(|| store.load_record(&user).unwrap().unwrap())
    });
    let record = store.load_record(&user).unwrap().unwrap();
    let generator = Generator::new(&record.secret, record.params);
    let code = Code::parse(b"123456", 6).unwrap();
    g.bench_function("verify window of 3 (HMAC-SHA1)", |b| {
        b.iter(|| {
            verify(
                &Generator::new(&record.secret, record.params),
                &code,
                1_800_000_000,
                1,
                None,
            )
        })
    });
    drop(generator);
    g.bench_function("lock+read state+write state", |b| {
        b.iter(|| {
            let lock = store.lock(&user).unwrap();
            let mut read = lock.read_state();
            read.state.failures = read.state.failures.wrapping_add(1) % 1000;
            lock.write_state(&read.state).unwrap();
        })
    });
    // What a login that uses a recovery code or moves a HOTP counter adds:
    // both slots written and fdatasync'd before it may succeed.
    g.bench_function("lock+read state+synced write (HOTP moved)", |b| {
        b.iter(|| {
            let lock = store.lock(&user).unwrap();
            let mut read = lock.read_state();
            read.state.hotp_next = Some(read.state.hotp_next.unwrap_or(0).wrapping_add(1) % 1000);
            lock.write_state(&read.state).unwrap();
        })
    });
    g.finish();
    std::fs::remove_dir_all(dir).unwrap();
}

/// What a `forward_pass` line adds before it asks: reading its service's
/// stack (the documented three lines, one included file) and checking that
/// a later line checks the code.
fn forward_pass_stack(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("totp_core-bench-pamd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.join("common-auth"),
        "auth required pam_totp.so forward_pass\nauth requisite pam_unix.so use_first_pass\n\
         auth required pam_totp.so\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("bench"),
        "#%PAM-1.0\n@include common-auth\naccount required pam_unix.so\n\
         session required pam_unix.so\n",
    )
    .unwrap();
    c.bench_function("forward_pass: read and check its stack", |b| {
        b.iter(|| totp_core::pamstack::check_forward_pass(&dir, "bench").unwrap())
    });
    std::fs::remove_dir_all(dir).unwrap();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = login, stages, forward_pass_stack
}
criterion_main!(benches);
