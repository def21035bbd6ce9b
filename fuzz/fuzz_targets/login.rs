//! A whole `login::authenticate` against a mock conversation, over fuzzed
//! record, state and config files in a private sandbox (one per process).
//!
//! Input layout: an 8-byte header, then fields separated by "\n%%\n":
//!   record text, state text, answer, user, rhost, module arguments (one per
//!   line), extra config text, previous token.
//! Header bytes:
//!   0: user: 0-3 "root", 4 "nobody", 5 a user with no passwd entry, else the user field
//!   1: answer: bits 0-1 = 0 the answer field, 1 a valid code, 2 the answer field
//!      followed by a valid code, 3 a conversation error; bits 2-4 = the valid
//!      code's step offset (-2..=+5; outside the window from +2); bit 5 = no
//!      rhost item; bit 6 = the application returns no reply (NULL)
//!   2 (mod 8): state: 0-3 the state field, 4 none, 5 empty file, 6 symlink, 7 mode 0644
//!   3 (mod 8): record: 0-3 the record field, 4 none, 5 symlink, 6 mode 0644, 7 a directory
//!   4-7: seconds after 2023-11-14 (little-endian u32)
//!
//! Properties checked on top of "never panics":
//! - a success is a valid code, a recovery code, or the grace period;
//! - the same answer right after a code success is refused (no replay);
//! - the log line is one line of printable text and never holds the secret.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use totp_core::login::{authenticate, Outcome, PamCode, PamIo};
use totp_core::otp::Generator;
use totp_core::record::UserRecord;
use zeroize::Zeroizing;

const BASE_TIME: u64 = 1_700_000_000;
const SEPARATOR: &[u8] = b"\n%%\n";

struct Sandbox {
    root: PathBuf,
    users: PathBuf,
    state: PathBuf,
    config: PathBuf,
}

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        // tmpfs when there is one: on ext4 every rewritten file costs a block flush.
        let base = std::env::var_os("PAM_TOTP_FUZZ_DIR")
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("/dev/shm")).filter(|p| p.is_dir()))
            .unwrap_or_else(std::env::temp_dir);
        remove_stale_sandboxes(&base);
        let root = base.join(format!("pam_totp-fuzz-login-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let users = root.join("users");
        let state = root.join("state");
        for dir in [&root, &users, &state] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        Sandbox {
            config: root.join("config.toml"),
            root,
            users,
            state,
        }
    })
}

/// libFuzzer exits without running destructors, so each run removes the
/// sandboxes of earlier runs whose process is gone.
fn remove_stale_sandboxes(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("pam_totp-fuzz-login-"))
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

struct Mock<'a> {
    user: &'a [u8],
    rhost: Option<String>,
    /// `None`: the conversation fails; `Some(None)`: the application returns NULL.
    answer: Option<Option<Vec<u8>>>,
    token: Option<&'a [u8]>,
    now: u64,
    kept: Option<Vec<u8>>,
}

impl PamIo for Mock<'_> {
    fn user(&mut self) -> Result<Vec<u8>, String> {
        if self.user.is_empty() {
            Err("PAM returned no user".into())
        } else {
            Ok(self.user.to_vec())
        }
    }
    fn service(&self) -> Option<String> {
        Some("fuzz".into())
    }
    fn rhost(&self) -> Option<String> {
        self.rhost.clone()
    }
    fn prompt_hidden(&mut self, _prompt: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        match &self.answer {
            Some(Some(answer)) => Ok(Zeroizing::new(answer.clone())),
            Some(None) => Err("the application returned no answer".into()),
            None => Err("conversation error".into()),
        }
    }
    fn info(&mut self, _text: &str) {}
    fn error(&mut self, _text: &str) {}
    fn previous_token(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        self.token.map(|t| Zeroizing::new(t.to_vec()))
    }
    fn set_token(&mut self, _token: &[u8]) -> Result<(), String> {
        Ok(())
    }
    fn now(&mut self) -> u64 {
        self.now
    }
    fn keep_code(&mut self, code: &[u8]) -> Result<(), String> {
        self.kept = Some(code.to_vec());
        Ok(())
    }
    fn take_kept_code(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        self.kept.take().map(Zeroizing::new)
    }
}

fn write_private(path: &Path, data: &[u8], mode: u32) {
    std::fs::write(path, data).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Remove whatever is at `path` (file, symlink or directory).
fn clear(path: &Path) {
    if std::fs::remove_file(path).is_err() {
        let _ = std::fs::remove_dir_all(path);
    }
}

fn check_line(outcome: &Outcome, secret: Option<&str>) {
    assert!(
        !outcome.line.chars().any(char::is_control),
        "control character in the log line: {:?}",
        outcome.line
    );
    if let Some(secret) = secret {
        assert!(
            !outcome.line.contains(secret),
            "the secret is in the log line"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let (header, body) = data.split_at(data.len().min(8));
    let mut h = [0u8; 8];
    h[..header.len()].copy_from_slice(header);
    let mut fields = body.split_at_sep(SEPARATOR);
    let record_text = fields.next().unwrap_or_default();
    let state_text = fields.next().unwrap_or_default();
    let answer_field = fields.next().unwrap_or_default();
    let user_field = fields.next().unwrap_or_default();
    let rhost_field = fields.next().unwrap_or_default();
    let args_field = fields.next().unwrap_or_default();
    let config_extra = fields.next().unwrap_or_default();
    let token_field = fields.next();

    let sb = sandbox();
    let now = BASE_TIME + u64::from(u32::from_le_bytes([h[4], h[5], h[6], h[7]]));
    let user: &[u8] = match h[0] {
        0..=3 => b"root",
        4 => b"nobody",
        5 => b"pam-totp-fuzz-nobody-here",
        _ => user_field,
    };
    // Files are laid out for the user the module will look up (when the name is one).
    let file_user = std::str::from_utf8(user)
        .ok()
        .filter(|u| {
            !u.is_empty()
                && u.len() < 100
                && !u.starts_with('.')
                && !u.chars().any(|c| c == '/' || c.is_control())
        })
        .unwrap_or("root");

    // Config: the sandbox paths, no backoff, then the fuzzed extra text.
    let mut config = format!(
        "[paths]\nusers_dir = \"{}\"\nstate_dir = \"{}\"\n",
        sb.users.display(),
        sb.state.display()
    )
    .into_bytes();
    config.extend_from_slice(config_extra);
    write_private(&sb.config, &config, 0o644);

    // Record.
    let record_path = sb.users.join(format!("{file_user}.toml"));
    clear(&record_path);
    let record_layout = h[3] % 8;
    match record_layout {
        4 => {}
        5 => {
            let target = sb.root.join("elsewhere.toml");
            write_private(&target, record_text, 0o600);
            std::os::unix::fs::symlink(&target, &record_path).unwrap();
        }
        6 => write_private(&record_path, record_text, 0o644),
        7 => std::fs::create_dir(&record_path).unwrap(),
        _ => write_private(&record_path, record_text, 0o600),
    }
    let record = std::str::from_utf8(record_text)
        .ok()
        .and_then(|t| UserRecord::parse(t).ok());

    // State (and no spare left over from the previous run).
    let state_path = sb.state.join(format!("{file_user}.state"));
    clear(&state_path);
    clear(&sb.state.join(format!(".{file_user}.state.tmp")));
    match h[2] % 8 {
        4 => {}
        5 => write_private(&state_path, b"", 0o600),
        6 => {
            let target = sb.root.join("elsewhere.state");
            write_private(&target, state_text, 0o600);
            std::os::unix::fs::symlink(&target, &state_path).unwrap();
        }
        7 => write_private(&state_path, state_text, 0o644),
        _ => write_private(&state_path, state_text, 0o600),
    }

    // The answer.
    let offset = i64::from((h[1] >> 2) & 7) - 2;
    let valid_code = record.as_ref().map(|r| {
        let step = r.params.step_at(now).saturating_add_signed(offset);
        Generator::new(&r.secret, r.params)
            .code_at_step(step)
            .as_bytes()
            .to_vec()
    });
    let answer = match (h[1] & 3, &valid_code) {
        (1, Some(code)) => Some(Some(code.clone())),
        (2, Some(code)) => Some(Some([answer_field, code].concat())),
        (3, _) => None,
        _ => Some(Some(answer_field.to_vec())),
    };
    let answer = if h[1] & 0x40 != 0 { Some(None) } else { answer };
    let rhost = (h[1] & 0x20 == 0).then(|| String::from_utf8_lossy(rhost_field).into_owned());

    let mut args = vec![format!("config={}", sb.config.display())];
    args.extend(
        args_field
            .split(|&b| b == b'\n')
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned()),
    );

    let secret = record.as_ref().map(|r| r.secret.to_base32());
    // A secret that the fuzzer also put into a logged field is not a leak.
    let secret = secret.as_ref().map(|s| s.as_str()).filter(|s| {
        let s = s.as_bytes();
        ![user, rhost_field, args_field, config_extra, state_text]
            .iter()
            .any(|f| f.windows(s.len()).any(|w| w == s))
    });

    let mut io = Mock {
        user,
        rhost: rhost.clone(),
        answer: answer.clone(),
        token: token_field,
        now,
        kept: None,
    };
    let outcome = authenticate(&mut io, &args);
    check_line(&outcome, secret);

    if outcome.code == PamCode::Success {
        let line = &outcome.line;
        // "code accepted", "code accepted (HOTP counter N)", or "code
        // accepted; clock skew of ... learned".
        let by_code = line.contains("reason=\"code accepted");
        let by_recovery = line.contains("reason=\"recovery code ");
        let by_grace = line.contains("reason=\"grace period: ");
        assert!(
            by_code || by_recovery || by_grace,
            "unexpected success: {line}"
        );
        assert!(record.is_some(), "success without a valid record: {line}");
        // Only a private regular file is a record (not a symlink, not 0644).
        assert!(
            record_layout <= 3,
            "success with record layout {record_layout}: {line}"
        );
        if by_code {
            // The code that succeeded is refused the second time (no rhost, so
            // the grace period cannot apply).
            let mut again = Mock {
                user,
                rhost: None,
                answer,
                token: token_field,
                now,
                kept: None,
            };
            let replay = authenticate(&mut again, &args);
            check_line(&replay, secret);
            assert_ne!(
                replay.code,
                PamCode::Success,
                "replay accepted: {}",
                replay.line
            );
        }
    }
});

/// `split` on a multi-byte separator.
trait SplitAtSep {
    fn split_at_sep<'a>(&'a self, sep: &'a [u8]) -> SepIter<'a>;
}

impl SplitAtSep for [u8] {
    fn split_at_sep<'a>(&'a self, sep: &'a [u8]) -> SepIter<'a> {
        SepIter {
            rest: Some(self),
            sep,
        }
    }
}

struct SepIter<'a> {
    rest: Option<&'a [u8]>,
    sep: &'a [u8],
}

impl<'a> Iterator for SepIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match rest.windows(self.sep.len()).position(|w| w == self.sep) {
            Some(i) => {
                self.rest = Some(&rest[i + self.sep.len()..]);
                Some(&rest[..i])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}
