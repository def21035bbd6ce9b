//! A screen locker's PAM stack, run as the user: the real libpam (pamtester
//! under pam_wrapper) started through `setpriv` with an ordinary user's uid,
//! gid and no groups, so the module cannot read the root-only record and
//! runs the setuid helper `totp-verify` (a test install, mode 4755 root).
//!
//! The helper reads only its compiled-in config, so the tests build a copy
//! with `PAM_TOTP_TEST_CONFIG_PATH` set at build time (as the self-service
//! tests do for totpctl) and write that file for each sandbox in turn; the
//! tests take turns through one lock.
//!
//! Each run goes through `scripts/with-syslog.sh`, a private `/dev/log`, so
//! the helper's own log line (ident `totp-verify`) is asserted beside the
//! module's (captured by pam_wrapper).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

const ALICE: &str = "pamtotp-lka";
const BOB: &str = "pamtotp-lkb";

/// The config path compiled into the test copy of the helper.
fn compiled_config() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("totp-verify-test-config.toml")
}

/// Build the test copy of the helper once per run of this file.
fn built_helper() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("totp-verify-build");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--locked", "--offline", "-p", "enroll_cli"])
            .args(["--bin", "totp-verify", "--target-dir"])
            .arg(&target)
            .env("PAM_TOTP_TEST_CONFIG_PATH", compiled_config())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run cargo build");
        assert!(
            out.status.success(),
            "building the test copy of totp-verify failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.join("debug/totp-verify")
    })
}

/// One locker sandbox at a time: the helper's compiled-in config is shared.
static TURN: Mutex<()> = Mutex::new(());

/// A sandbox whose config the helper reads too, with a setuid-root copy of
/// the helper beside it (removed with it) and a `locker` service running
/// the module with `helper=` pointing at that copy.
struct Locker {
    sb: Sandbox,
    helper: PathBuf,
    log: PathBuf,
    _turn: MutexGuard<'static, ()>,
}

impl Locker {
    fn new(name: &str, extra_config: &str) -> Self {
        let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let built = built_helper();
        ensure_user(ALICE, &[]);
        ensure_user(BOB, &[]);
        let sb = Sandbox::new(&format!("locker-{name}"));
        sb.write_config(extra_config);
        std::fs::copy(&sb.config, compiled_config()).unwrap();
        std::fs::set_permissions(compiled_config(), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        // The setuid copy lives under the target directory: /tmp may be
        // mounted nosuid.
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("totp-verify-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let helper = dir.join("totp-verify");
        std::fs::copy(built, &helper).unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o4755)).unwrap();
        sb.service("locker", &format!("helper={}", helper.display()));
        let log = sb.root.join("syslog");
        Self {
            sb,
            helper,
            log,
            _turn: turn,
        }
    }

    /// pamtester `authenticate pam_user` on the `locker` service, run as
    /// `as_user` (through `setpriv`) after `shell_prefix` (a shell line that
    /// ends in `exec "$0" "$@"`, or nothing).
    fn run(
        &self,
        as_user: &str,
        pam_user: &str,
        answer: &str,
        shell_prefix: Option<&str>,
    ) -> PamRun {
        self.run_service("locker", as_user, pam_user, answer, shell_prefix)
    }

    fn run_service(
        &self,
        service: &str,
        as_user: &str,
        pam_user: &str,
        answer: &str,
        shell_prefix: Option<&str>,
    ) -> PamRun {
        let mut cmd = self.as_user(as_user, shell_prefix);
        cmd.args(["pamtester", service, pam_user, "authenticate"]);
        pam_wrapped(&mut cmd, &self.sb);
        run_with_input(&mut cmd, format!("{answer}\n").as_bytes())
    }

    /// A login of alice by alice, with her answer.
    fn unlock(&self, answer: &str) -> PamRun {
        self.run(ALICE, ALICE, answer, None)
    }

    /// The helper run directly by `as_user` with `args` and `input`: its
    /// exit status (it prints nothing).
    fn helper_direct(
        &self,
        as_user: &str,
        args: &[&str],
        input: &str,
        shell_prefix: Option<&str>,
    ) -> Option<i32> {
        use std::io::Write;
        let mut cmd = self.as_user(as_user, shell_prefix);
        let mut child = cmd
            .arg(&self.helper)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            (out.stdout.as_slice(), out.stderr.as_slice()),
            (&b""[..], &b""[..]),
            "the helper printed"
        );
        out.status.code()
    }

    /// `scripts/with-syslog.sh LOG setpriv --reuid=.. --regid=.. --clear-groups [sh -c PREFIX]`.
    fn as_user(&self, user: &str, shell_prefix: Option<&str>) -> Command {
        let (uid, gid) = ids(user);
        let mut cmd =
            Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/with-syslog.sh"));
        cmd.arg(&self.log)
            .arg("/usr/bin/setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups");
        if let Some(prefix) = shell_prefix {
            cmd.args(["/bin/sh", "-c", prefix]);
        }
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LC_ALL", "C")
            .current_dir("/");
        cmd
    }

    /// Every line the helper sent to syslog, oldest first; then forgets them.
    fn helper_lines(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let _ = std::fs::remove_file(&self.log);
        text.lines()
            .filter(|l| l.contains(" totp-verify["))
            .map(|l| l.split_once("]: ").map_or(l, |(_, m)| m).to_owned())
            .collect()
    }

    /// The helper's one line for the last run.
    fn helper_line(&self) -> String {
        let lines = self.helper_lines();
        assert_eq!(lines.len(), 1, "helper lines: {lines:?}");
        lines[0].clone()
    }

    fn state(&self, user: &str) -> String {
        std::fs::read_to_string(self.sb.state_path(user)).unwrap_or_default()
    }
}

impl Drop for Locker {
    fn drop(&mut self) {
        if let Some(dir) = self.helper.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// uid and gid from the password database.
fn ids(user: &str) -> (u32, u32) {
    let out = Command::new("getent")
        .args(["passwd", user])
        .output()
        .unwrap();
    let line = String::from_utf8(out.stdout).unwrap();
    let fields: Vec<&str> = line.trim().split(':').collect();
    (fields[2].parse().unwrap(), fields[3].parse().unwrap())
}

/// The consecutive failures of a state file's text, read as the store
/// reads it (the newest valid of its two slots); 0 when there is none.
fn failures(state: &str) -> u64 {
    totp_core::state::LoginState::parse(state).map_or(0, |s| u64::from(s.failures))
}

/// As an ordinary user runs it: a file size limit of 0 with SIGXFSZ
/// ignored (every write would fail: no failure counted), SIGHUP and SIGINT
/// ignored, and few descriptors; all of it survives exec.
const HOSTILE_START: &str =
    "ulimit -S -f 0 && ulimit -S -n 12 && trap '' XFSZ HUP INT && exec \"$0\" \"$@\"";

/// The right code unlocks once, through the helper, and the helper's log
/// line is the module's kind; the same code again is a replay; wrong codes
/// reach the lockout, and then even a right code is refused unread.
#[test]
fn a_locker_unlocks_once_refuses_a_replay_and_locks_out() {
    let lk = Locker::new(
        "once",
        "[throttle]\nmax_failures = 3\nbackoff_seconds = 0\nbackoff_max_seconds = 0\n",
    );
    lk.sb.enroll(ALICE);
    let code = code_now(SECRET);

    let run = lk.unlock(&code);
    run.expect(
        true,
        "success",
        &format!("code accepted by {}", lk.helper.display()),
    );
    assert!(run.stderr.contains("Verification code: "), "{}", run.stderr);
    assert_eq!(
        lk.helper_line(),
        format!("user={ALICE} service=totp-verify rhost=- result=success reason=\"code accepted\"")
    );
    // The state is root's, written by the helper under the user's lock.
    let meta = std::fs::metadata(lk.sb.state_path(ALICE)).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 0);
    assert_eq!(failures(&lk.state(ALICE)), 0);

    let run = lk.unlock(&code);
    run.expect(false, "denied", "wrong, replayed or malformed code");
    assert!(lk
        .helper_line()
        .contains("result=denied reason=\"replayed code (already used) (1 of 3 failures)\""));

    for n in 2..=3 {
        let run = lk.unlock(&wrong_code(SECRET));
        run.expect(false, "denied", "wrong, replayed or malformed code");
        let line = lk.helper_line();
        assert!(
            line.contains(&format!("wrong code ({n} of 3 failures")),
            "{line}"
        );
        if n == 3 {
            assert!(line.contains("locked out until"), "{line}");
        }
    }
    assert_eq!(failures(&lk.state(ALICE)), 3);
    // Locked out: a right code of a fresh step is not even compared.
    let next = oathtool(SECRET, "SHA1", 6, 30, 30);
    let run = lk.unlock(&next);
    run.expect(
        false,
        "denied",
        "locked out, or too soon after a failed attempt",
    );
    assert!(
        run.shown().contains("Too many failed attempts"),
        "{}",
        run.shown()
    );
    assert!(lk
        .helper_line()
        .contains("result=denied reason=\"locked out until"));
    assert_eq!(failures(&lk.state(ALICE)), 3);
}

/// The helper checks the caller's account, whatever PAM_USER says: bob's
/// locker cannot log alice in, nor test her code, through it.
#[test]
fn a_caller_cannot_check_a_code_for_another_account() {
    let lk = Locker::new("other", "");
    lk.sb.enroll(ALICE);
    lk.sb.write_record(
        BOB,
        "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
        "SHA1",
        6,
        30,
        "active",
    );
    let code = code_now(SECRET);

    // PAM_USER alice, run by bob: refused before any prompt or helper run.
    let run = lk.run(BOB, ALICE, &code, None);
    run.expect(
        false,
        "denied",
        "the helper checks only the code of the calling uid",
    );
    assert!(
        !run.stderr.contains("Verification code: "),
        "{}",
        run.stderr
    );
    assert_eq!(lk.helper_lines(), Vec::<String>::new());

    // The helper run by hand: a user name argument is refused outright,
    // before or after the one argument it takes...
    assert_eq!(lk.helper_direct(BOB, &[ALICE], &code, None), Some(4));
    assert!(lk.helper_line().contains("called with arguments"));
    assert_eq!(
        lk.helper_direct(BOB, &["--no-skew-learning", ALICE], &code, None),
        Some(4)
    );
    assert!(lk.helper_line().contains("called with arguments"));
    // ...and alice's code on stdin is checked against bob's own record:
    // wrong, and counted against bob.
    assert_eq!(lk.helper_direct(BOB, &[], &code, None), Some(1));
    let line = lk.helper_line();
    assert!(
        line.starts_with(&format!("user={BOB} service=totp-verify "))
            && line.contains("wrong code (1 of 10 failures)"),
        "{line}"
    );
    assert_eq!(failures(&lk.state(BOB)), 1);
    // Nothing of alice's was touched, and her code still works for her.
    assert!(!lk.sb.state_path(ALICE).exists());
    lk.unlock(&code).expect(true, "success", "code accepted by");
    assert!(lk.helper_line().starts_with(&format!("user={ALICE} ")));
}

/// A locker line with `noskewadj` learns no clock skew through the helper
/// either: two codes of a phone 5 and 6 steps ahead are both wrong there,
/// as they are for the module run as root. Before, the helper read only the
/// config, and the second code logged in.
#[test]
fn a_locker_line_with_noskewadj_learns_no_skew_through_the_helper() {
    let lk = Locker::new(
        "noskew",
        "[throttle]\nbackoff_seconds = 0\nbackoff_max_seconds = 0\n",
    );
    lk.sb.enroll(ALICE);
    lk.sb.service(
        "noskew",
        &format!("helper={} noskewadj", lk.helper.display()),
    );
    for ahead in [150, 180] {
        let run = lk.run_service(
            "noskew",
            ALICE,
            ALICE,
            &oathtool(SECRET, "SHA1", 6, 30, ahead),
            None,
        );
        run.expect(false, "denied", "wrong, replayed or malformed code");
        let line = lk.helper_line();
        assert!(line.contains("wrong code"), "{line}");
        assert!(!line.contains("clock-skew"), "{line}");
    }
    // The same two codes, a step later, on the line without it: the first
    // is a skew candidate and the second teaches the skew and logs in.
    for (ahead, accepted) in [(210, false), (240, true)] {
        let run = lk.unlock(&oathtool(SECRET, "SHA1", 6, 30, ahead));
        assert_eq!(run.success, accepted, "{}", run.shown());
        let line = lk.helper_line();
        let expected = if accepted {
            "clock skew of +8 steps learned"
        } else {
            "clock-skew candidate"
        };
        assert!(line.contains(expected), "{line}");
    }
}

/// The attacks of the security issue against the helper: a file size limit
/// of 0 with SIGXFSZ ignored (so that no failure could be written), and
/// killing the process before its answer, during the backoff. Every guess
/// is counted; none is answered early.
#[test]
fn hostile_limits_and_signals_get_no_extra_guesses() {
    let lk = Locker::new(
        "hostile",
        "[throttle]\nmax_failures = 3\nbackoff_seconds = 0\nbackoff_max_seconds = 0\n",
    );
    lk.sb.enroll(ALICE);

    // The harness works: a plain program under it cannot write a byte.
    let probe = std::env::temp_dir().join(format!("pam_totp-fsize-probe-{}", std::process::id()));
    let mut cmd = lk.as_user(ALICE, Some(HOSTILE_START));
    let out = run_with_input(cmd.arg("/usr/bin/tee").arg(&probe), b"x\n");
    let _ = std::fs::remove_file(&probe);
    assert!(out.stderr.contains("File too large"), "{out:?}");

    // Through the locker's stack (a PAM client that sets the limit after
    // pam_start: pam_wrapper must copy its files first) and straight at the
    // helper: each wrong code is counted, until the lockout.
    let harness = build_c_harness("pam_fsize", &lk.sb.root);
    let wrong = wrong_code(SECRET);
    let locker_without_writes = |limit: &[&str]| {
        let mut cmd = lk.as_user(ALICE, None);
        cmd.arg(&harness).args(["locker", ALICE]).args(limit);
        pam_wrapped(&mut cmd, &lk.sb);
        run_with_input(&mut cmd, format!("{wrong}\n").as_bytes())
    };
    let run = locker_without_writes(&["soft"]);
    run.expect(false, "denied", "wrong, replayed or malformed code");
    assert!(lk.helper_line().contains("wrong code (1 of 3 failures)"));

    // With the hard limit at 0 too, the helper lifts it, or, where root
    // cannot (no CAP_SYS_RESOURCE, as in some containers), refuses to run:
    // either way no guess goes uncounted.
    let run = locker_without_writes(&[]);
    let line = lk.helper_line();
    if line.contains("could not reset the file size limit") {
        eprintln!("root here cannot raise a hard limit (no CAP_SYS_RESOURCE): the helper refuses");
        run.expect(false, "error", "failed (exit status 4");
        assert_eq!(failures(&lk.state(ALICE)), 1);
    } else {
        run.expect(false, "denied", "wrong, replayed or malformed code");
        assert!(line.contains("wrong code (2 of 3 failures)"), "{line}");
    }
    let counted = failures(&lk.state(ALICE));

    // The helper run by hand under the shell's limits: counted too, and the
    // third failure locks the account.
    let guess = |n: u64, by_hand: bool| {
        let status = if by_hand {
            lk.helper_direct(ALICE, &[], &wrong, Some(HOSTILE_START))
        } else {
            let run = locker_without_writes(&["soft"]);
            run.expect(false, "denied", "wrong, replayed or malformed code");
            Some(1)
        };
        assert_eq!(status, Some(1));
        let line = lk.helper_line();
        assert!(
            line.contains(&format!("wrong code ({n} of 3 failures")),
            "{line}"
        );
        line
    };
    let mut last = String::new();
    for n in counted + 1..=3 {
        last = guess(n, n == counted + 1);
    }
    assert!(last.contains("locked out until"), "{last}");
    assert_eq!(failures(&lk.state(ALICE)), 3);
    assert_eq!(
        lk.helper_direct(ALICE, &[], &code_now(SECRET), Some(HOSTILE_START)),
        Some(2)
    );
    assert!(lk
        .helper_line()
        .contains("result=denied reason=\"locked out until"));
}

/// Killing the helper while it waits out the backoff of a wrong code skips
/// nothing: the failure and its "not before" time are on disk before the
/// compare, and the next answer, even the right code, is refused unread
/// until the backoff has run out. The right code was not used up.
#[test]
fn killing_the_helper_in_its_backoff_skips_nothing() {
    let lk = Locker::new(
        "kill",
        "[throttle]\nbackoff_seconds = 4\nbackoff_max_seconds = 4\n",
    );
    lk.sb.enroll(ALICE);
    let mut cmd = lk.as_user(ALICE, None);
    let mut child = cmd
        .arg(&lk.helper)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(wrong_code(SECRET).as_bytes()).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while failures(&lk.state(ALICE)) != 1 {
        assert!(Instant::now() < deadline, "the failure was never written");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = pid_of(&lk.helper).expect("the helper is still in its backoff");
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(child.wait().unwrap().code(), Some(128 + 9));
    assert!(lk.state(ALICE).contains("not_before = "));

    let code = code_now(SECRET);
    assert_eq!(lk.helper_direct(ALICE, &[], &code, None), Some(2));
    let lines = lk.helper_lines();
    assert!(
        lines
            .last()
            .unwrap()
            .contains("too soon after a failed attempt"),
        "{lines:?}"
    );
    // The refused run waited out the rest of the backoff; the code was
    // never compared, so it works now.
    assert_eq!(lk.helper_direct(ALICE, &[], &code, None), Some(0));
    assert!(lk.helper_line().contains("result=success"));
}

/// The pid of the process running `exe`, if any.
fn pid_of(exe: &Path) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            (std::fs::read_link(entry.path().join("exe")).ok()? == exe).then_some(pid)
        })
}

/// A helper that is not installed denies, with one log line naming it.
#[test]
fn a_missing_helper_denies_with_one_line() {
    let lk = Locker::new("missing", "");
    lk.sb.enroll(ALICE);
    lk.sb
        .service("gone", "helper=/nonexistent/pam_totp/totp-verify");
    let run = lk.run_service("gone", ALICE, ALICE, &code_now(SECRET), None);
    run.expect(
        false,
        "error",
        "the helper /nonexistent/pam_totp/totp-verify is missing",
    );
    assert_eq!(run.log_lines().len(), 1, "{:?}", run.log_lines());
    assert!(run.shown().contains("Please contact an administrator"));
    assert!(!lk.sb.state_path(ALICE).exists());
}

/// `policy.unprivileged`: `deny` refuses without asking, `ignore` passes
/// the login on (PAM_IGNORE), and with `helper` an unenrolled caller gets
/// the unenrolled policy.
#[test]
fn the_unprivileged_switch() {
    let lk = Locker::new("deny", "[policy]\nunprivileged = \"deny\"\n");
    lk.sb.enroll(ALICE);
    let run = lk.unlock(&code_now(SECRET));
    run.expect(false, "denied", "policy.unprivileged = deny");
    assert!(
        !run.stderr.contains("Verification code: "),
        "{}",
        run.stderr
    );
    assert_eq!(lk.helper_lines(), Vec::<String>::new());
    drop(lk);

    let lk = Locker::new("ignore", "[policy]\nunprivileged = \"ignore\"\n");
    lk.sb.enroll(ALICE);
    let run = lk.unlock("");
    run.expect(true, "ignored", "policy.unprivileged = ignore");
    assert_eq!(lk.helper_lines(), Vec::<String>::new());
    drop(lk);

    let lk = Locker::new("unenrolled", "");
    let run = lk.unlock("123456");
    run.expect(false, "denied", "not enrolled (said ");
    assert!(run.outcome().contains("policy denies"), "{}", run.outcome());
    assert!(lk
        .helper_line()
        .contains("result=denied reason=\"not enrolled\""));
    drop(lk);

    let lk = Locker::new("allow", "[policy]\nunenrolled = \"allow\"\n");
    lk.unlock("").expect(true, "ignored", "not enrolled (said ");
}

/// `[store] backend = "ldap"` for a locker: the store on a private slapd,
/// bound as host-a (its password file is root's, 0600, as shipped).
/// The LDAP config of a locker host. The per-login budget is generous: the
/// setuid helper's start, TLS and bind on a busy CI machine took more than
/// two seconds, and these tests are not about the deadline.
fn ldap_locker_config(slapd: &integration::slapd::Slapd, extra: &str) -> String {
    let bind = slapd.host("host-a");
    format!(
        "{extra}[throttle]\nmax_failures = 3\nbackoff_seconds = 0\nbackoff_max_seconds = 0\n\
         [store]\nbackend = \"ldap\"\n[ldap]\nuris = [\"{}\"]\nbase_dn = \"{}\"\n\
         bind_dn = \"{}\"\nbind_password_file = \"{}\"\nca_file = \"{}\"\nstarttls = true\n\
         timeout_ms = 10000\n",
        slapd.starttls_uri(),
        slapd.base_dn(),
        bind.dn,
        bind.password_file.display(),
        slapd.ca_file().display()
    )
}

/// A locker on an LDAP host: the module, running as the user, cannot read
/// the bind password file, so the setuid helper checks the code against
/// the directory; a replay and wrong codes are refused there, and the
/// failures land in the directory.
#[test]
fn an_ldap_locker_unlocks_through_the_helper() {
    let slapd = integration::slapd::Slapd::start("locker-ldap");
    slapd.add_user_entry(
        ALICE,
        &format!(
            "version = 1\nstatus = \"active\"\nsecret = \"{SECRET}\"\nalgorithm = \"SHA1\"\n\
             digits = 6\nperiod = 30\n"
        ),
    );
    let lk = Locker::new("ldap", &ldap_locker_config(&slapd, ""));
    let code = code_now(SECRET);
    let run = lk.unlock(&code);
    run.expect(
        true,
        "success",
        &format!("code accepted by {}", lk.helper.display()),
    );
    assert_eq!(
        lk.helper_line(),
        format!("user={ALICE} service=totp-verify rhost=- result=success reason=\"code accepted\"")
    );
    let entry = slapd.user_entry(ALICE).unwrap();
    assert!(entry.get("totpLastStep").is_some(), "{entry:?}");

    lk.unlock(&code)
        .expect(false, "denied", "wrong, replayed or malformed code");
    assert!(lk.helper_line().contains("replayed code"));
    lk.unlock(&wrong_code(SECRET))
        .expect(false, "denied", "wrong, replayed or malformed code");
    assert!(lk.helper_line().contains("wrong code (2 of 3 failures"));
    assert_eq!(
        slapd.user_entry(ALICE).unwrap().get("totpFailures"),
        Some("2".to_owned())
    );
    drop(lk);

    // policy.unprivileged = ignore is honoured on LDAP too.
    let lk = Locker::new(
        "ldap-ignore",
        &ldap_locker_config(&slapd, "[policy]\nunprivileged = \"ignore\"\n"),
    );
    lk.unlock("")
        .expect(true, "ignored", "LDAP bind password file");
    assert_eq!(lk.helper_lines(), Vec::<String>::new());
}
