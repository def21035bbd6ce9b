//! The bad-input matrix: one table, one row per broken config, record, state,
//! answer, user name or module argument. Every row runs a real login through
//! libpam (pamtester under pam_wrapper, or `harness/pam_conv_modes.c` where the
//! application itself must misbehave) and asserts:
//! - the PAM result (never success),
//! - the exact outcome log line ending (`result=... reason="..."[ note="..."]`),
//! - that no file in the sandbox changed, except what the row says a denied
//!   login legitimately writes (only a counted failure writes, and only the
//!   state file and its spare),
//! - no panic, and no secret or typed code in any output.
//!
//! What may change, decided per row:
//! - `Writes::Nothing`: broken config, arguments, records, user names and
//!   malformed answers are refused before anything is written. Malformed
//!   answers are not counted as failures (the module never checked them).
//! - `Writes::State`: a well-formed wrong code is a counted failure, so the
//!   state file changes (rewritten in place, or created; an ignored one is
//!   replaced through a temp file, see `totp_core::store::files`).
//!
//! State rows: a corrupt, empty, foreign-owned or symlinked state file is
//! ignored with a logged note (DESIGN.md: it "fails no one, but logs the
//! corruption"). Those rows answer with a wrong code, so each asserts both the
//! denial and the exact note, and that only the state file and its spare changed
//! (a symlink's target is outside the state directory and must stay untouched).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::*;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// uid/gid of `nobody` on Debian.
const NOBODY: u32 = 65534;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pam {
    AuthErr,
    ServiceErr,
}

impl Pam {
    /// pam_strerror(3) text, as pamtester and the C harness print it.
    fn text(self) -> &'static str {
        match self {
            Self::AuthErr => "Authentication failure",
            Self::ServiceErr => "Error in service module",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Writes {
    Nothing,
    State,
}

/// What the application answers at the prompt.
#[derive(Clone, Debug)]
enum Answer {
    /// A currently valid code, typed into pamtester.
    Good,
    /// A well-formed code that is valid at no step of the window.
    Wrong,
    /// These bytes, typed into pamtester as one line.
    Typed(Vec<u8>),
    /// The C harness answers with exactly these bytes (a C string).
    Exact(Vec<u8>),
    /// The C harness's conversation misbehaves: "conv-error", "null-reply", "null-array".
    Conv(&'static str),
}

/// One login attempt; a row's setup adjusts the default.
struct Attempt {
    user: Vec<u8>,
    answer: Answer,
    module_args: String,
    /// Strings that must not appear in any output (secrets in the row's files).
    secrets: Vec<String>,
}

type Setup = Box<dyn Fn(&Sandbox, &mut Attempt)>;

struct Row {
    name: &'static str,
    setup: Setup,
    pam: Pam,
    /// "denied" or "error".
    result: &'static str,
    /// The exact reason; `{config}`, `{users}`, `{state}` and `{root}` stand for sandbox paths.
    reason: &'static str,
    note: Option<&'static str>,
    writes: Writes,
}

fn row(
    name: &'static str,
    pam: Pam,
    result: &'static str,
    reason: &'static str,
    writes: Writes,
    setup: impl Fn(&Sandbox, &mut Attempt) + 'static,
) -> Row {
    Row {
        name,
        setup: Box::new(setup),
        pam,
        result,
        reason,
        note: None,
        writes,
    }
}

fn with_note(mut r: Row, note: &'static str) -> Row {
    r.note = Some(note);
    r
}

const RECORD: &str = "version = 1\nstatus = \"active\"\nsecret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\n";

/// Replace the record with `RECORD` edited by `from` -> `to`.
fn edit_record(sb: &Sandbox, from: &str, to: &str) {
    let text = RECORD.replace(from, to);
    assert_ne!(
        text, RECORD,
        "record edit {from:?} -> {to:?} changed nothing"
    );
    sb.write_record_text("root", &text);
}

/// A config like the sandbox's, with another state_dir.
fn config_with_state_dir(sb: &Sandbox, state_dir: &Path) {
    let text = format!(
        "[paths]\nusers_dir = \"{}\"\nstate_dir = \"{}\"\n[throttle]\nbackoff_seconds = 0\nbackoff_max_seconds = 0\n",
        sb.users_dir.display(),
        state_dir.display()
    );
    private_file(&sb.config, text.as_bytes(), 0o644);
}

fn private_file(path: &Path, text: &[u8], mode: u32) {
    let _ = std::fs::remove_file(path);
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
}

/// `chattr +i` on a directory for as long as the guard lives: even root cannot
/// create, remove or rename entries in it.
struct Immutable(PathBuf);

impl Immutable {
    fn set(dir: &Path) -> Self {
        let out = Command::new("chattr").arg("+i").arg(dir).output().unwrap();
        assert!(
            out.status.success(),
            "chattr +i {} failed (the file system must support it): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Self(dir.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

thread_local! {
    static GUARDS: std::cell::RefCell<Vec<Immutable>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn rows() -> Vec<Row> {
    use Pam::*;
    use Writes::*;
    let rows = vec![
        // ---- config ----
        row("config missing", ServiceErr, "error", "config {config}: does not exist", Nothing,
            |sb, _| std::fs::remove_file(&sb.config).unwrap()),
        // An empty file is valid: every key has its compiled-in default, so the
        // record is looked up in /etc/pam_totp/users, where root has none.
        row("config empty (defaults)", AuthErr, "denied", "not enrolled; policy denies", Nothing,
            |sb, _| private_file(&sb.config, b"", 0o644)),
        row("config unknown key", ServiceErr, "error",
            "config {config}: line 1: unknown field `colour`, expected one of `version`, `paths`, `policy`, `otp`, `throttle`, `enroll`, `store`, `ldap`",
            Nothing, |sb, _| private_file(&sb.config, b"colour = 1\n", 0o644)),
        row("config wrong type", ServiceErr, "error",
            "config {config}: line 2: a value has the wrong type", Nothing,
            |sb, _| private_file(&sb.config, b"[throttle]\nmax_failures = \"ten\"\n", 0o644)),
        row("config out of range", ServiceErr, "error",
            "config {config}: throttle.max_failures must be between 1 and 100", Nothing,
            |sb, _| private_file(&sb.config, b"[throttle]\nmax_failures = 1000\n", 0o644)),
        row("config mode 0666", ServiceErr, "error",
            "config {config}: has mode 0666; it must not be writable by group or others (chmod 644)",
            Nothing, |sb, _| {
                std::fs::set_permissions(&sb.config, std::fs::Permissions::from_mode(0o666)).unwrap()
            }),
        row("config symlink", ServiceErr, "error",
            "config {config}: is a symbolic link, which is never followed", Nothing, |sb, _| {
                let real = sb.root.join("real-config.toml");
                std::fs::rename(&sb.config, &real).unwrap();
                std::os::unix::fs::symlink(&real, &sb.config).unwrap();
            }),
        row("config is a directory", ServiceErr, "error",
            "config {config}: is not a regular file", Nothing, |sb, _| {
                std::fs::remove_file(&sb.config).unwrap();
                std::fs::create_dir(&sb.config).unwrap();
            }),
        row("config not UTF-8", ServiceErr, "error",
            "config {config}: is not valid UTF-8", Nothing,
            |sb, _| private_file(&sb.config, b"[policy]\nunenrolled = \"\xff\"\n", 0o644)),
        // ---- user records ----
        row("record missing", AuthErr, "denied", "not enrolled; policy denies", Nothing,
            |sb, _| std::fs::remove_file(sb.record_path("root")).unwrap()),
        row("record pending", AuthErr, "denied", "enrollment pending activation; policy denies",
            Nothing, |sb, _| sb.write_record("root", SECRET, "SHA1", 6, 30, "pending")),
        row("record symlink", AuthErr, "error",
            "user record {users}/root.toml is a symbolic link, which is never followed", Nothing,
            |sb, _| {
                let real = sb.root.join("real-record.toml");
                std::fs::rename(sb.record_path("root"), &real).unwrap();
                std::os::unix::fs::symlink(&real, sb.record_path("root")).unwrap();
            }),
        row("record hard link", AuthErr, "error",
            "user record {users}/root.toml has 2 hard links, expected 1", Nothing,
            |sb, _| std::fs::hard_link(sb.record_path("root"), sb.root.join("linked.toml")).unwrap()),
        row("record mode 0644", AuthErr, "error",
            "user record {users}/root.toml has mode 0644; it must not be accessible by group or others (chmod 600)",
            Nothing, |sb, _| {
                std::fs::set_permissions(sb.record_path("root"), std::fs::Permissions::from_mode(0o644)).unwrap()
            }),
        row("record owner not euid", AuthErr, "error",
            "user record {users}/root.toml is owned by uid 65534, expected uid 0", Nothing,
            |sb, _| chown(&sb.record_path("root"), NOBODY)),
        row("record is a directory", AuthErr, "error",
            "user record {users}/root.toml is not a regular file", Nothing, |sb, _| {
                std::fs::remove_file(sb.record_path("root")).unwrap();
                std::fs::create_dir(sb.record_path("root")).unwrap();
            }),
        row("record 70 KB", AuthErr, "error",
            "user record {users}/root.toml is 71680 bytes, larger than the limit of 65536", Nothing,
            |sb, _| {
                let mut text = RECORD.to_string();
                text.push_str(&format!("# {}\n", "x".repeat(70 * 1024 - RECORD.len() - 3)));
                assert_eq!(text.len(), 70 * 1024);
                sb.write_record_text("root", &text);
            }),
        row("record not TOML", AuthErr, "error",
            "user record {users}/root.toml is invalid: line 1: not valid TOML", Nothing,
            |sb, _| sb.write_record_text("root", "this is not toml\n")),
        row("record not UTF-8", AuthErr, "error",
            "user record {users}/root.toml is not valid UTF-8", Nothing,
            |sb, _| private_file(&sb.record_path("root"), &[RECORD.as_bytes(), b"# \xff\xfe\n"].concat(), 0o600)),
        row("record missing secret", AuthErr, "error",
            "user record {users}/root.toml is invalid: line 1: missing field `secret`", Nothing,
            |sb, _| edit_record(sb, "secret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\n", "")),
        row("record secret too short", AuthErr, "error",
            "user record {users}/root.toml is invalid: secret has 40 bits, fewer than the minimum of 80",
            Nothing, |sb, a| {
                edit_record(sb, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "GEZDGNBV");
                a.secrets.push("GEZDGNBV".into());
            }),
        row("record secret not base32", AuthErr, "error",
            "user record {users}/root.toml is invalid: secret is not valid base32 (RFC 4648)", Nothing,
            |sb, a| {
                edit_record(sb, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "GEZDGNBVGY3TQOJ1GEZDGNBVGY3TQOJ8");
                a.secrets.push("GEZDGNBVGY3TQOJ1GEZDGNBVGY3TQOJ8".into());
            }),
        row("record bad algorithm", AuthErr, "error",
            "user record {users}/root.toml is invalid: line 4: unknown variant `MD5`, expected one of `SHA1`, `SHA256`, `SHA512`",
            Nothing, |sb, _| edit_record(sb, "\"SHA1\"", "\"MD5\"")),
        row("record bad digits", AuthErr, "error",
            "user record {users}/root.toml is invalid: digits must be 6 or 8, not 7", Nothing,
            |sb, _| edit_record(sb, "digits = 6", "digits = 7")),
        row("record bad period", AuthErr, "error",
            "user record {users}/root.toml is invalid: period must be 30 or 60 seconds, not 45", Nothing,
            |sb, _| edit_record(sb, "period = 30", "period = 45")),
        row("record unknown key", AuthErr, "error",
            "user record {users}/root.toml is invalid: line 7: unknown field `colour`, expected one of `version`, `status`, `type`, `secret`, `algorithm`, `digits`, `period`, `label`, `issuer`, `created_at`, `activated_at`, `recovery`, `serial`",
            Nothing, |sb, _| edit_record(sb, "period = 30\n", "period = 30\ncolour = \"blue\"\n")),
        row("record status garbage", AuthErr, "error",
            "user record {users}/root.toml is invalid: line 2: unknown variant `enabled`, expected `pending` or `active`",
            Nothing, |sb, _| edit_record(sb, "\"active\"", "\"enabled\"")),
        row("record version 2", AuthErr, "error",
            "user record {users}/root.toml is invalid: unsupported version 2 (this build reads version 1)",
            Nothing, |sb, _| edit_record(sb, "version = 1", "version = 2")),
        // ---- state (a wrong code, so the denial is the code's, and the note is the file's) ----
        with_note(row("state corrupt", AuthErr, "denied", "wrong code (1 of 10 failures)", State,
            |sb, a| {
                private_file(&sb.state_path("root"), b"last_step = \"soon\"\x01", 0o600);
                a.answer = Answer::Wrong;
            }), "state file {state}/root.state is corrupt (line 1: not valid TOML); starting afresh"),
        with_note(row("state truncated to 0 bytes", AuthErr, "denied", "wrong code (1 of 10 failures)", State,
            |sb, a| {
                private_file(&sb.state_path("root"), b"", 0o600);
                a.answer = Answer::Wrong;
            }), "state file {state}/root.state is corrupt (line 1: missing field `version`); starting afresh"),
        with_note(row("state wrong owner", AuthErr, "denied", "wrong code (1 of 10 failures)", State,
            |sb, a| {
                private_file(&sb.state_path("root"), b"version = 1\n", 0o600);
                chown(&sb.state_path("root"), NOBODY);
                a.answer = Answer::Wrong;
            }), "state file {state}/root.state is owned by uid 65534, expected uid 0; starting afresh"),
        with_note(row("state mode 0644", AuthErr, "denied", "wrong code (1 of 10 failures)", State,
            |sb, a| {
                private_file(&sb.state_path("root"), b"version = 1\n", 0o644);
                a.answer = Answer::Wrong;
            }), "state file {state}/root.state has mode 0644; it must not be accessible by group or others (chmod 600); starting afresh"),
        with_note(row("state symlink", AuthErr, "denied", "wrong code (1 of 10 failures)", State,
            |sb, a| {
                let real = sb.root.join("real.state");
                private_file(&real, b"version = 1\n", 0o600);
                std::os::unix::fs::symlink(&real, sb.state_path("root")).unwrap();
                a.answer = Answer::Wrong;
            }), "state file {state}/root.state is a symbolic link, which is never followed; starting afresh"),
        // A good code is refused while locked out, and nothing is written.
        row("state locked out", AuthErr, "denied", "locked out until 2286-11-20 17:46:39 UTC", Nothing,
            |sb, _| private_file(&sb.state_path("root"), b"version = 1\nfailures = 10\nlocked_until = 9999999999\n", 0o600)),
        row("state_dir missing", AuthErr, "error", "directory {root}/nostate does not exist",
            Nothing, |sb, _| config_with_state_dir(sb, &sb.root.join("nostate"))),
        row("state_dir is a file", AuthErr, "error",
            "directory {root}/state-file is not a directory", Nothing, |sb, _| {
                private_file(&sb.root.join("state-file"), b"", 0o600);
                config_with_state_dir(sb, &sb.root.join("state-file"));
            }),
        // Count before compare: a failure that cannot be written is never
        // compared, so a good code and a wrong one meet the same refusal.
        row("state_dir not writable, good code", AuthErr, "error",
            "the failure could not be recorded, so the answer was not compared: cannot write {state}/root.state: Operation not permitted (os error 1)",
            Nothing, |sb, _| GUARDS.with(|g| g.borrow_mut().push(Immutable::set(&sb.state_dir)))),
        row("state_dir not writable, wrong code", AuthErr, "error",
            "the failure could not be recorded, so the answer was not compared: cannot write {state}/root.state: Operation not permitted (os error 1)",
            Nothing, |sb, a| {
                GUARDS.with(|g| g.borrow_mut().push(Immutable::set(&sb.state_dir)));
                a.answer = Answer::Wrong;
            }),
        // ---- answers ----
        row("answer wrong code", AuthErr, "denied", "wrong code (1 of 10 failures)", State,
            |_, a| a.answer = Answer::Wrong),
        row("answer replayed", AuthErr, "denied", "replayed code (already used) (1 of 10 failures)", State,
            |sb, _| {
                let step = now() / 30 + 1;
                private_file(&sb.state_path("root"), format!("version = 1\nlast_step = {step}\n").as_bytes(), 0o600);
            }),
        row("answer empty", AuthErr, "denied", "empty code", Nothing,
            |_, a| a.answer = Answer::Typed(b"".to_vec())),
        row("answer spaces", AuthErr, "denied", "empty code", Nothing,
            |_, a| a.answer = Answer::Typed(b"      ".to_vec())),
        row("answer letters", AuthErr, "denied", "code is not all digits", Nothing,
            |_, a| a.answer = Answer::Typed(b"abcdef".to_vec())),
        row("answer digits with a space", AuthErr, "denied", "code is not all digits", Nothing,
            |_, a| a.answer = Answer::Typed(b"123 456".to_vec())),
        row("answer 5 digits", AuthErr, "denied", "code has the wrong number of digits", Nothing,
            |_, a| a.answer = Answer::Typed(b"12345".to_vec())),
        row("answer 7 digits", AuthErr, "denied", "code has the wrong number of digits", Nothing,
            |_, a| a.answer = Answer::Typed(b"1234567".to_vec())),
        row("answer 10,000 digits", AuthErr, "denied", "code too long", Nothing,
            |_, a| a.answer = Answer::Exact(vec![b'7'; 10_000])),
        // A reply is a C string: a NUL byte ends it, so "12\0 3456" arrives as "12".
        row("answer with a NUL byte", AuthErr, "denied", "code has the wrong number of digits", Nothing,
            |_, a| a.answer = Answer::Typed(b"12\x003456".to_vec())),
        row("answer not UTF-8", AuthErr, "denied", "code is not valid UTF-8", Nothing,
            |_, a| a.answer = Answer::Exact(b"\xff23456".to_vec())),
        row("answer control characters", AuthErr, "denied", "code is not all digits", Nothing,
            |_, a| a.answer = Answer::Exact(b"123\x1b456".to_vec())),
        row("conversation error", AuthErr, "denied",
            "conversation failed: conversation error 19 (Conversation error)", Nothing,
            |_, a| a.answer = Answer::Conv("conv-error")),
        row("NULL reply string", AuthErr, "denied",
            "conversation failed: the application returned no answer", Nothing,
            |_, a| a.answer = Answer::Conv("null-reply")),
        row("NULL response array", AuthErr, "denied",
            "conversation failed: the application returned no response", Nothing,
            |_, a| a.answer = Answer::Conv("null-array")),
        // ---- user names ----
        row("user with a slash", AuthErr, "denied", "invalid user name: user name contains '/'", Nothing,
            |_, a| a.user = b"root/../root".to_vec()),
        row("user ..", AuthErr, "denied", "invalid user name: user name starts with '.'", Nothing,
            |_, a| a.user = b"..".to_vec()),
        row("user with a leading dot", AuthErr, "denied", "invalid user name: user name starts with '.'",
            Nothing, |sb, a| {
                // Even with a matching file in users_dir.
                sb.write_record_text(".root", RECORD);
                a.user = b".root".to_vec();
            }),
        row("user 300 characters", AuthErr, "denied",
            "invalid user name: user name is 300 bytes long (limit 128)", Nothing,
            |_, a| a.user = vec![b'a'; 300]),
        row("user with control bytes", AuthErr, "denied",
            "invalid user name: user name contains control or blank characters", Nothing,
            |_, a| a.user = b"ro\x1b[2Jot".to_vec()),
        row("user not UTF-8", AuthErr, "denied", "invalid user name: user name is not valid UTF-8", Nothing,
            |_, a| a.user = b"r\xffot".to_vec()),
        row("user unknown to passwd", AuthErr, "denied", "unknown user", Nothing, |sb, a| {
            // Even with a record under that name.
            sb.write_record_text("pam-totp-no-such-user", RECORD);
            a.user = b"pam-totp-no-such-user".to_vec();
        }),
        // ---- module arguments ----
        row("argument unknown", ServiceErr, "error", "unknown module argument 'bogus'", Nothing,
            |_, a| a.module_args = "bogus".into()),
        row("argument of pam_oath", ServiceErr, "error",
            "module argument 'alwaysok' is not taken by pam_totp; it is pam_oath's alwaysok: \
             pam_totp has no equivalent, on purpose; exempt accounts with policy.exempt_groups \
             or policy.unenrolled in the config file", Nothing,
            |_, a| a.module_args = "alwaysok".into()),
        row("argument malformed number", ServiceErr, "error",
            "module argument grace_period= needs whole seconds from 0 to 604800", Nothing,
            |_, a| a.module_args = "grace_period=5m".into()),
        row("argument negative number", ServiceErr, "error",
            "module argument grace_period= needs whole seconds from 0 to 604800", Nothing,
            |_, a| a.module_args = "grace_period=-1".into()),
        row("argument number too large", ServiceErr, "error",
            "module argument grace_period= needs whole seconds from 0 to 604800", Nothing,
            |_, a| a.module_args = "grace_period=18446744073709551616".into()),
        row("argument duplicate", ServiceErr, "error", "module argument 'debug' given twice", Nothing,
            |_, a| a.module_args = "debug debug".into()),
        row("argument duplicate config", ServiceErr, "error", "module argument 'config' given twice",
            Nothing, |_, a| a.module_args = "config=/etc/pam_totp/config.toml".into()),
        row("argument value on a flag", ServiceErr, "error", "module argument 'nullok' takes no value",
            Nothing, |_, a| a.module_args = "nullok=yes".into()),
        row("argument conflicting", ServiceErr, "error",
            "try_first_pass and use_first_pass are mutually exclusive", Nothing,
            |_, a| a.module_args = "try_first_pass use_first_pass".into()),
    ];
    rows
}

fn expand(template: &str, sb: &Sandbox) -> String {
    template
        .replace("{config}", &sb.config.display().to_string())
        .replace("{users}", &sb.users_dir.display().to_string())
        .replace("{state}", &sb.state_dir.display().to_string())
        .replace("{root}", &sb.root.display().to_string())
}

fn run_row(index: usize, r: &Row, harness: &Path) -> Result<(), String> {
    let sb = Sandbox::new(&format!("bad{index}"));
    sb.enroll("root");
    // The per-user lock file is created by the first login and never removed;
    // create it up front so that "nothing changed" can be exact.
    private_file(&sb.state_dir.join("root.lock"), b"", 0o600);
    let mut attempt = Attempt {
        user: b"root".to_vec(),
        answer: Answer::Good,
        module_args: String::new(),
        secrets: vec![SECRET.to_string()],
    };
    (r.setup)(&sb, &mut attempt);
    sb.service("totp", &attempt.module_args);
    // Snapshots exclude the service file the row just wrote.
    let before = snapshot(&sb.root);

    let typed = |text: &[u8]| [text, b"\n"].concat();
    let (run, code) = match &attempt.answer {
        Answer::Good => {
            let code = code_now(SECRET);
            (
                run_pamtester(&sb, &attempt.user, &typed(code.as_bytes())),
                Some(code),
            )
        }
        Answer::Wrong => {
            let code = wrong_code(SECRET);
            (
                run_pamtester(&sb, &attempt.user, &typed(code.as_bytes())),
                Some(code),
            )
        }
        Answer::Typed(bytes) => (run_pamtester(&sb, &attempt.user, &typed(bytes)), None),
        Answer::Exact(bytes) => (
            run_harness(&sb, harness, &attempt.user, "answer", Some(bytes)),
            None,
        ),
        Answer::Conv(mode) => (run_harness(&sb, harness, &attempt.user, mode, None), None),
    };
    GUARDS.with(|g| g.borrow_mut().clear());
    let after = snapshot(&sb.root);

    let all = run.shown();
    if all.contains("panicked") || all.contains("internal error") {
        return Err(format!("panic:\n{all}"));
    }
    if run.success {
        return Err(format!("the login was allowed:\n{all}"));
    }
    if !all.contains(r.pam.text()) {
        return Err(format!(
            "want PAM result {:?} ({}):\n{all}",
            r.pam,
            r.pam.text()
        ));
    }
    let lines: Vec<String> = run
        .log_lines()
        .into_iter()
        .filter(|l| l.contains("result="))
        .collect();
    if lines.len() != 1 {
        return Err(format!(
            "want exactly one outcome line, got {lines:?}\n{all}"
        ));
    }
    let line = &lines[0];
    let mut want = format!(
        "result={} reason=\"{}\"",
        r.result,
        expand(r.reason, &sb).replace('"', "'")
    );
    if let Some(note) = r.note {
        want.push_str(&format!(
            " note=\"{}\"",
            expand(note, &sb).replace('"', "'")
        ));
    }
    if !line.ends_with(&format!(" {want}")) {
        return Err(format!(
            "want the line to end with\n  {want}\ngot\n  {line}"
        ));
    }
    let user_shown = if r.pam == Pam::ServiceErr {
        "-".to_string()
    } else {
        totp_core::names::printable(&attempt.user)
    };
    if !line.starts_with(&format!("user={user_shown} service=totp rhost=- ")) {
        return Err(format!(
            "want user={user_shown} service=totp rhost=-, got {line}"
        ));
    }
    for secret in &attempt.secrets {
        if all.contains(secret.as_str()) {
            return Err(format!("a secret is in the output:\n{all}"));
        }
    }
    if let Some(code) = code {
        let logged = run.log_lines().join("\n");
        if logged.contains(&code) {
            return Err(format!("the typed code is in the log:\n{logged}"));
        }
    }

    let mut changed = snapshot_diff(&before, &after);
    if r.writes == Writes::State {
        // A counted failure writes the state file (creating it, or replacing an
        // ignored one through a temp file, changes the directory too).
        changed.retain(|p| {
            !matches!(
                p.as_str(),
                "state" | "state/root.state" | "state/.root.state.tmp"
            )
        });
        let state = std::fs::read_to_string(sb.state_path("root"))
            .map_err(|e| format!("no state after a counted failure: {e}"))?;
        let parsed = totp_core::state::LoginState::parse(&state)
            .map_err(|e| format!("state after a counted failure does not parse: {e}"))?;
        if parsed.failures != 1 {
            return Err(format!("want failures = 1 in the state, got {state}"));
        }
    }
    if !changed.is_empty() {
        let detail: Vec<String> = changed
            .iter()
            .map(|p| {
                format!(
                    "  {p}\n    before: {:?}\n    after:  {:?}",
                    before.get(p),
                    after.get(p)
                )
            })
            .collect();
        return Err(format!("files changed:\n{}", detail.join("\n")));
    }
    Ok(())
}

fn run_pamtester(sb: &Sandbox, user: &[u8], input: &[u8]) -> PamRun {
    let mut cmd = Command::new("pamtester");
    pam_wrapped(&mut cmd, sb)
        .arg("totp")
        .arg(OsStr::from_bytes(user))
        .arg("authenticate");
    run_with_input(&mut cmd, input)
}

fn run_harness(
    sb: &Sandbox,
    harness: &Path,
    user: &[u8],
    mode: &str,
    answer: Option<&[u8]>,
) -> PamRun {
    let mut cmd = Command::new(harness);
    pam_wrapped(&mut cmd, sb)
        .arg("totp")
        .arg(OsStr::from_bytes(user))
        .arg(mode);
    if let Some(answer) = answer {
        cmd.arg(OsStr::from_bytes(answer));
    }
    run_with_input(&mut cmd, b"")
}

#[test]
fn bad_input_matrix() {
    let started = std::time::Instant::now();
    let dir = std::env::temp_dir().join(format!("pam_totp-it-badharness-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let harness = build_c_harness("pam_conv_modes", &dir);
    let rows = rows();
    assert!(rows.len() >= 40, "only {} rows", rows.len());
    let mut failures = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        if let Err(e) = run_row(i, r, &harness) {
            failures.push(format!("row {i} \"{}\": {e}", r.name));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "bad-input matrix: {} rows, {} failed, {:.1} s",
        rows.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A state file that had to be ignored (foreign owner, loose mode, symlink,
/// hard link) is replaced by the next write (temp file and rename, never
/// written through).
/// The logins after that must keep working: the module fails no one over a
/// bad state file, not even on the second or third login.
#[test]
fn an_ignored_state_file_does_not_break_later_logins() {
    type Plant = fn(&Sandbox);
    let cases: [(&str, Plant); 4] = [
        ("wrong owner", |sb| {
            private_file(&sb.state_path("root"), b"version = 1\n", 0o600);
            chown(&sb.state_path("root"), NOBODY);
        }),
        ("mode 0644", |sb| {
            private_file(&sb.state_path("root"), b"version = 1\n", 0o644)
        }),
        ("symlink", |sb| {
            let real = sb.root.join("real.state");
            private_file(&real, b"version = 1\n", 0o600);
            std::os::unix::fs::symlink(&real, sb.state_path("root")).unwrap();
        }),
        ("hard link", |sb| {
            private_file(&sb.state_path("root"), b"version = 1\n", 0o600);
            std::fs::hard_link(sb.state_path("root"), sb.root.join("linked.state")).unwrap();
        }),
    ];
    for (name, plant) in cases {
        let sb = Sandbox::new(&format!("badstate-{}", name.replace(' ', "-")));
        sb.enroll("root");
        sb.service("totp", "");
        plant(&sb);
        let outside: Vec<_> = ["real.state", "linked.state"]
            .iter()
            .map(|f| sb.root.join(f))
            .filter(|p| p.exists())
            .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
            .collect();
        let wrong = wrong_code(SECRET);
        let first = sb.pamtester("totp", "root", format!("{wrong}\n").as_bytes(), &[]);
        first.expect(false, "denied", "wrong code (1 of 10 failures)");
        assert!(
            first.outcome().contains("starting afresh"),
            "{name}: {}",
            first.outcome()
        );
        // Second and third logins: the bad file is now the spare.
        let second = sb.pamtester("totp", "root", format!("{wrong}\n").as_bytes(), &[]);
        second.expect(false, "denied", "wrong code (2 of 10 failures)");
        let code = code_now(SECRET);
        let third = sb.pamtester("totp", "root", format!("{code}\n").as_bytes(), &[]);
        third.expect(true, "success", "code accepted");
        let replay = sb.pamtester("totp", "root", format!("{code}\n").as_bytes(), &[]);
        replay.expect(false, "denied", "replayed code");
        // Whatever the planted file pointed at or shared its inode with is untouched.
        for (path, data) in outside {
            assert_eq!(
                std::fs::read(&path).unwrap(),
                data,
                "{name}: {} changed",
                path.display()
            );
        }
    }
}
