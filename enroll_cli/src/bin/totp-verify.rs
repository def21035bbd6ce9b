//! `totp-verify`: checks the calling user's own code for a PAM module that
//! runs without the privilege to read the record (a screen locker), as
//! pam_unix's `unix_chkpwd` checks passwords. Installed setuid root as
//! `/usr/libexec/pam_totp/totp-verify`; `pam_totp.so` runs it.
//!
//! - The user comes from getuid(), never from the arguments or the
//!   environment. The one argument it takes, `--no-skew-learning` (the PAM
//!   line's `noskewadj`), only makes the check stricter.
//! - The answer (a code or a recovery code) is read from stdin, at most
//!   [`MAX_ANSWER`] bytes.
//! - The config comes from the compiled-in path only.
//! - The start is totpctl's hardened setuid start (rlimits, signals,
//!   dumpable flag, environment, effective gid).
//! - The check is the module's: the store's per-user lock and
//!   `totp_core::attempt` (count before compare, replay rule, lockout,
//!   backoff), through `totp_core::helper::verify_own`, and one log line
//!   of the module's kind (authpriv, ident `totp-verify`).
//! - The result is the exit status only (`totp_core::helper::HelperExit`):
//!   0 right, 1 wrong, 2 locked out or too soon, 3 not enrolled, 4 error.
//!   It comes after the attempt's delay, slept with no lock held.

#![forbid(unsafe_code)]

use enroll_cli::audit;
use enroll_cli::privilege::{self, Caller};
use std::io::Read;
use std::os::fd::AsFd;
use std::process::ExitCode;
use totp_core::answer::MAX_ANSWER;
use totp_core::config::Config;
use totp_core::helper::{self, HelperExit, HELPER_NAME};
use totp_core::login::Level;
use totp_core::names::UserName;
use zeroize::Zeroizing;

fn main() -> ExitCode {
    totp_core::store::set_ldap_opener(totp_ldap::open);
    let exit = match privilege::start() {
        Ok(caller) => run(caller),
        Err(e) => fail(&format!("unsafe start: {e}")),
    };
    ExitCode::from(exit.code())
}

fn run(caller: Caller) -> HelperExit {
    let user = match caller {
        Caller::SelfService(me) => me.name,
        // Root may check its own code; the module, running as root, does not
        // need to.
        Caller::Root => match UserName::parse(b"root") {
            Ok(root) => root,
            Err(e) => return fail(&format!("invalid user name root: {e}")),
        },
        Caller::Unprivileged(why) => {
            return fail(&format!(
                "not running as root ({why:?}): {} must be installed setuid root (mode 4755), on a \
                 file system mounted without nosuid",
                helper::HELPER_PATH
            ))
        }
    };
    // One argument at most, and only the one that makes the check
    // stricter: the PAM line's noskewadj.
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let no_skew_learning = match args.as_slice() {
        [] => false,
        [one] if one == helper::NO_SKEW_LEARNING => true,
        _ => {
            return fail(&format!(
                "user={user} result=error reason=\"called with arguments; {HELPER_NAME} takes \
                 only {} (the user is the caller, the answer comes on stdin)\"",
                helper::NO_SKEW_LEARNING
            ))
        }
    };
    let mut config = match Config::load(privilege::config_path(), false) {
        Ok(config) => config,
        Err(e) => return fail(&format!("user={user} result=error reason=\"{e}\"")),
    };
    if no_skew_learning {
        config.otp.resync_window = 0;
    }
    let answer = match read_answer() {
        Ok(answer) => answer,
        Err(e) => {
            return fail(&format!(
                "user={user} result=error reason=\"cannot read the answer on stdin: {e}\""
            ))
        }
    };
    let now = totp_core::time::now_unix();
    let verified = helper::verify_own(&config, &user, &answer, now);
    drop(answer);
    // The line first, then the delay, then the answer: as the module does.
    let _ = audit::log_line(HELPER_NAME, verified.outcome.level, &verified.outcome.line);
    if !verified.outcome.delay.is_zero() {
        std::thread::sleep(verified.outcome.delay);
    }
    verified.exit
}

/// Read stdin to its end, keeping at most `MAX_ANSWER + 1` bytes (one more
/// than any answer looked at, so a longer one is refused as too long).
/// Unbuffered, into one buffer allocated up front and wiped on drop: no
/// copy of the code is left behind in a reader's buffer or a reallocation.
fn read_answer() -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut stdin = std::fs::File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let mut buf = Zeroizing::new(vec![0u8; MAX_ANSWER + 1]);
    let mut len = 0;
    while len < buf.len() {
        match stdin.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// Log an error line and give the error status.
fn fail(line: &str) -> HelperExit {
    let line = if line.contains("result=") {
        line.to_owned()
    } else {
        format!("result=error reason=\"{}\"", line.replace('"', "'"))
    };
    let _ = audit::log_line(HELPER_NAME, Level::Error, &line);
    HelperExit::Error
}
