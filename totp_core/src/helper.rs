//! The setuid helper `totp-verify`, for a module that runs without the
//! privilege to read the record: a screen locker runs PAM as the user, as
//! pam_unix's `unix_chkpwd` handles for passwords.
//!
//! Both sides are here, so that they cannot disagree:
//! - the helper binary (in `enroll_cli`, for totpctl's hardened setuid
//!   start) takes the user from getuid(), the answer from stdin and the
//!   config from its compiled-in path, and calls [`verify_own`]: the same
//!   store lock and [`attempt::attempt`] as the module (count before
//!   compare, replay rule, lockout, backoff) and the same log line;
//! - the module runs it (see [`crate::login`]) and reads the result from the
//!   exit status only, [`HelperExit`].
//!
//! The helper waits the attempt's delay after releasing the lock and before
//! exiting, so a caller learns nothing earlier by running it directly, and
//! killing it only throws its answer away: the failure is already on disk.

use crate::answer::{self, Malformed};
use crate::attempt::{self, Attempt, Refusal, Rules};
use crate::config::Config;
use crate::login::{attempt_outcome, Log, Outcome, PamCode};
use crate::names::UserName;
use crate::record::Status;
use crate::store::Store;

/// Where the package installs the helper, setuid root (mode 4755).
pub const HELPER_PATH: &str = "/usr/libexec/pam_totp/totp-verify";

/// The one argument the helper takes: the PAM line's `noskewadj`. It can
/// only make the check stricter (no clock skew is learned), so the helper
/// may take it from an unprivileged caller.
pub const NO_SKEW_LEARNING: &str = "--no-skew-learning";

/// The service name in the helper's own log line.
pub const HELPER_NAME: &str = "totp-verify";

/// The helper's exit status: the only thing that crosses back to the module.
///
/// | status | meaning |
/// |---|---|
/// | 0 | the code or recovery code was right, and is now used up |
/// | 1 | wrong, replayed, malformed, or not counted (a failed write): shown as a wrong code |
/// | 2 | locked out, or too soon after the last failure: not compared |
/// | 3 | the caller has no active enrollment |
/// | 4 | anything else: the helper's setup, the config, the store; see its log line |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelperExit {
    Accepted = 0,
    Wrong = 1,
    Refused = 2,
    NotEnrolled = 3,
    Error = 4,
}

impl HelperExit {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The status a helper exited with; `None` for one not in the table.
    pub fn from_code(code: i32) -> Option<Self> {
        [
            Self::Accepted,
            Self::Wrong,
            Self::Refused,
            Self::NotEnrolled,
            Self::Error,
        ]
        .into_iter()
        .find(|exit| i32::from(exit.code()) == code)
    }
}

/// How a helper run ended, as the module sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelperRun {
    Exited(i32),
    Signaled(i32),
}

/// Why the helper could not be run at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HelperError {
    /// There is no file at the helper's path.
    Missing,
    /// Anything else (not executable, fork failed, wait failed...).
    Failed(String),
}

/// The helper's verdict: its exit status and its log line.
#[derive(Debug)]
pub struct Verified {
    pub exit: HelperExit,
    pub outcome: Outcome,
}

/// Check `raw` (as read from stdin) for `user`, who is the caller (getuid),
/// at `now`. The outcome's delay is to be slept after this returns, before
/// exiting.
pub fn verify_own(config: &Config, user: &UserName, raw: &[u8], now: u64) -> Verified {
    let log = Log::for_user(user, HELPER_NAME);
    let (exit, outcome) = match attempt_in_store(config, user, raw, now) {
        InStore::NotEnrolled(why) => (HelperExit::NotEnrolled, log.denied(why)),
        InStore::Malformed(malformed) => (HelperExit::Wrong, log.denied(malformed.reason())),
        InStore::Broken(why) => (HelperExit::Error, log.broken(PamCode::AuthErr, &why)),
        InStore::Attempted(attempt) => {
            let exit = match &attempt.result {
                Ok(_) => HelperExit::Accepted,
                Err(Refusal::Locked(_) | Refusal::TooSoon { .. }) => HelperExit::Refused,
                // A failure or success that could not be written reads
                // exactly like a wrong answer, as the module shows it.
                Err(
                    Refusal::Wrong(_)
                    | Refusal::NotCounted { .. }
                    | Refusal::NotSaved { .. }
                    | Refusal::NotChecked { .. },
                ) => HelperExit::Wrong,
            };
            let (outcome, _shown) = attempt_outcome(log, *attempt, &config.throttle, now);
            (exit, outcome)
        }
    };
    Verified { exit, outcome }
}

/// What happened in the store.
enum InStore {
    NotEnrolled(&'static str),
    Malformed(Malformed),
    Broken(String),
    Attempted(Box<Attempt>),
}

/// Every touch of the store for one helper run, in one place: the record,
/// then under the user's lock the checked attempt, and nothing else.
fn attempt_in_store(config: &Config, user: &UserName, raw: &[u8], now: u64) -> InStore {
    let store = match Store::from_config(config) {
        Ok(store) => store,
        Err(e) => return InStore::Broken(e.to_string()),
    };
    let record = match store.load_record(user) {
        Ok(Some(record)) if record.status == Status::Active => record,
        Ok(Some(_)) => return InStore::NotEnrolled("enrollment pending activation"),
        Ok(None) => return InStore::NotEnrolled("not enrolled"),
        Err(e) => return InStore::Broken(e.to_string()),
    };
    let answer = match answer::classify(raw, record.params.digits, !record.recovery.is_empty()) {
        Ok(answer) => answer,
        Err(malformed) => return InStore::Malformed(malformed),
    };
    let lock = match store.lock(user) {
        Ok(lock) => lock,
        Err(e) => return InStore::Broken(e.to_string()),
    };
    let rules = Rules {
        otp: &config.otp,
        throttle: &config.throttle,
    };
    let mut attempt = attempt::attempt(&lock, &record, &answer, now, &rules, None);
    drop(lock);
    crate::login::add_store_notes(&mut attempt, &store);
    InStore::Attempted(Box::new(attempt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_round_trip() {
        for code in 0..=4 {
            let exit = HelperExit::from_code(code).unwrap();
            assert_eq!(i32::from(exit.code()), code);
        }
        assert_eq!(HelperExit::from_code(5), None);
        assert_eq!(HelperExit::from_code(-1), None);
        assert_eq!(HelperExit::from_code(127), None);
    }
}
