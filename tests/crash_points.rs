//! SIGKILL at every write point of a login that uses something up: a
//! recovery code, a HOTP counter, and the first write of a state (a new
//! one, and an earlier release's TOML being converted).
//!
//! tests/crash.rs kills at random moments; this kills exactly at the N-th
//! `pwrite64`, `fdatasync`, `fsync` or `rename` of the login (strace's
//! syscall fault injection delivers SIGKILL when the call is entered), for
//! every N until the login completes untouched. After every kill:
//! - the state is never lost: it parses, or (a new state killed before its
//!   first write landed) it is absent or empty, which the next login treats
//!   as lost (see tests/state_loss.rs);
//! - the code that was typed is accepted at most once in total, by the
//!   killed login and two more tries with it;
//! - a login that reported success (it got past the kill point) used the
//!   code up for good.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::*;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

/// Run `cmd` under strace, SIGKILLed on entering the `nth` call of
/// `syscall`. Returns (killed, succeeded).
fn killed_at(cmd: &Command, input: &[u8], syscall: &str, nth: u32) -> (bool, bool) {
    let mut traced = Command::new("strace");
    traced
        .args(["-f", "-qq", "-o", "/dev/null", "-e"])
        .arg(format!("trace={syscall}"))
        .arg("-e")
        .arg(format!("inject={syscall}:signal=KILL:when={nth}"))
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => traced.env(k, v),
            None => traced.env_remove(k),
        };
    }
    let mut child = traced
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("strace (apt-get install strace)");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(input);
    }
    let status = child.wait().unwrap();
    (status.signal() == Some(9), status.success())
}

fn state_of(sb: &Sandbox) -> Result<totp_core::state::LoginState, String> {
    let text = std::fs::read_to_string(sb.state_path("root")).map_err(|e| e.to_string())?;
    totp_core::state::LoginState::parse(&text)
}

/// One scenario: `setup` makes a fresh sandbox ready for the login with
/// `code` (typed), which may be accepted once.
fn every_write_point(name: &str, setup: &dyn Fn(&Sandbox) -> String, new_state: bool) {
    let mut kills = 0;
    let mut points = Vec::new();
    for syscall in [
        "pwrite64",
        "fdatasync",
        "fsync",
        "renameat",
        "renameat2",
        "rename",
    ] {
        for nth in 1..=8 {
            let sb = Sandbox::new(&format!("points-{name}-{syscall}-{nth}"));
            let code = setup(&sb);
            let input = format!("{code}\n").into_bytes();
            let cmd = sb.pamtester_command("totp", "root", &[]);
            let guard = pam_start_guard();
            let (killed, first) = killed_at(&cmd, &input, syscall, nth);
            drop(guard);
            remove_pam_wrapper_copies(&sb);
            let at = format!("{name}: SIGKILL at {syscall} #{nth}");
            match state_of(&sb) {
                Ok(_) => {}
                Err(e) if new_state => {
                    let len = std::fs::metadata(sb.state_path("root")).map_or(0, |m| m.len());
                    assert_eq!(len, 0, "{at}: a new state torn: {e}");
                }
                Err(e) => panic!("{at}: the state is lost: {e}"),
            }
            let second = sb.pamtester("totp", "root", &input, &[]).success;
            let third = sb.pamtester("totp", "root", &input, &[]).success;
            let accepted = [first, second, third].iter().filter(|&&ok| ok).count();
            assert!(accepted <= 1, "{at}: accepted {accepted} times");
            if first {
                assert!(!second && !third, "{at}: used again after a success");
            }
            if !killed {
                // Fewer such calls than nth: the login ran untouched.
                assert!(first, "{at}: an untouched login failed");
                break;
            }
            kills += 1;
            points.push(format!("{syscall}#{nth}"));
        }
    }
    eprintln!("{name}: killed at {}", points.join(" "));
    assert!(kills > 0, "{name}: no write point was reached");
}

fn with_recovery(sb: &Sandbox, state: &str) -> String {
    sb.service("totp", "");
    sb.enroll("root");
    let codes = sb.add_recovery_codes("root");
    sb.write_state_text("root", state);
    codes[0].clone()
}

/// A recovery code on a state in the slotted form (a wrong code first
/// converts it), and on an earlier release's TOML (converted by this very
/// login, through a temp file and a rename).
#[test]
fn a_recovery_code_killed_at_every_write_is_used_at_most_once() {
    every_write_point(
        "recovery",
        &|sb| {
            let code = with_recovery(sb, "version = 1\n");
            sb.pamtester("totp", "root", b"000000\n", &[]);
            code
        },
        false,
    );
    every_write_point(
        "recovery-toml",
        &|sb| with_recovery(sb, "version = 1\nlast_step = 1\n"),
        false,
    );
}

#[test]
fn a_hotp_code_killed_at_every_write_is_used_at_most_once() {
    every_write_point(
        "hotp",
        &|sb| {
            sb.service("totp", "");
            sb.enroll_hotp("root");
            assert!(
                sb.pamtester(
                    "totp",
                    "root",
                    format!("{}\n", oathtool_hotp(SECRET, 0)).as_bytes(),
                    &[]
                )
                .success
            );
            oathtool_hotp(SECRET, 1)
        },
        false,
    );
}

/// A first login (no state file yet) killed at every write.
#[test]
fn a_first_login_killed_at_every_write_leaves_no_torn_state() {
    every_write_point(
        "first",
        &|sb| {
            sb.service("totp", "");
            sb.enroll("root");
            code_now(SECRET)
        },
        true,
    );
}
