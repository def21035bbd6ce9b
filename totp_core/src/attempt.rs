//! One attempt at a code or a recovery code, checked under the user's lock.
//! The login and totpctl's proofs both come through here, so there is one
//! implementation of the throttling rules (see [`crate::throttle`]):
//!
//! 1. read the state; refuse without comparing if the account is locked out
//!    or the backoff of the last failure has not run out ("not before");
//! 2. **count before compare**: record the attempt as a failure and write
//!    that state; if the write fails, refuse without comparing;
//! 3. only then compare, in constant time;
//! 4. on success, write the success state (the step or recovery code is
//!    used up, the failures cleared); if that write fails, refuse.
//!
//! The caller holds the lock for exactly this and nothing else, and waits
//! [`Attempt::delay`] after releasing it. A refusal that comes from a failed
//! write has the same delay as a wrong code, and callers show both the same
//! way, so nothing the person at the prompt sees tells them apart.

use crate::answer::Answer;
use crate::config::Throttle;
use crate::otp::{self, Generator, Verdict};
use crate::record::UserRecord;
use crate::state::LoginState;
use crate::store::{StoreError, UserLock};
use crate::throttle::{self, Lockout};
use crate::{enrollment, recovery};
use std::time::Duration;

/// What a right answer used up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// A code for this time step.
    Code { step: u64 },
    /// A recovery code, with how many are left unused.
    Recovery { id: u32, left: usize },
}

/// How a compared answer was not right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss {
    WrongCode,
    /// A code of a step already used.
    Replayed,
    WrongRecovery,
    /// A recovery code already used, with its id.
    RecoveryUsed(u32),
}

impl Miss {
    /// For the log line.
    pub fn describe(self) -> String {
        match self {
            Self::WrongCode => "wrong code".into(),
            Self::Replayed => "replayed code (already used)".into(),
            Self::WrongRecovery => "wrong recovery code".into(),
            Self::RecoveryUsed(id) => format!("recovery code {id} was already used"),
        }
    }

    /// For the person who typed it.
    pub fn message(self) -> &'static str {
        match self {
            Self::WrongCode => "wrong code",
            Self::Replayed => "code already used",
            Self::WrongRecovery => "wrong recovery code",
            Self::RecoveryUsed(_) => "recovery code already used",
        }
    }

    /// What a wrong answer of the same kind as `answer` is.
    fn wrong(answer: &Answer) -> Self {
        match answer {
            Answer::Code(_) => Self::WrongCode,
            Answer::Recovery(_) => Self::WrongRecovery,
        }
    }
}

/// Why an attempt was refused.
#[derive(Debug)]
pub enum Refusal {
    /// Locked out; nothing was compared or written.
    Locked(Lockout),
    /// The backoff after the last failure has not run out (`wait` seconds
    /// more); nothing was compared or written.
    TooSoon { wait: u64 },
    /// Counted, compared, and not right.
    Wrong(Miss),
    /// The failure could not be written, so the answer was not compared.
    /// Shown to the person as `looks_like`, a wrong answer of its kind.
    NotCounted { error: StoreError, looks_like: Miss },
    /// The answer was right, but the success could not be written: refused,
    /// and nothing is used up. The failure written before the compare stays.
    NotSaved { error: StoreError, looks_like: Miss },
}

impl Refusal {
    /// What the person at the prompt may be told of a counted refusal: a
    /// failure that could not be recorded reads exactly like a wrong answer.
    pub fn shown_miss(&self) -> Option<Miss> {
        match self {
            Self::Wrong(miss)
            | Self::NotCounted {
                looks_like: miss, ..
            }
            | Self::NotSaved {
                looks_like: miss, ..
            } => Some(*miss),
            Self::Locked(_) | Self::TooSoon { .. } => None,
        }
    }
}

/// The outcome of [`attempt`].
#[derive(Debug)]
pub struct Attempt {
    pub result: Result<Accepted, Refusal>,
    /// The state as written last (or as read, if nothing was written).
    pub state: LoginState,
    /// How long to wait, after releasing the lock, before answering.
    pub delay: Duration,
    /// What was wrong with the state file, if it had to be ignored.
    pub note: Option<String>,
}

/// What the attempt is checked against.
pub struct Rules<'a> {
    pub window: u32,
    pub throttle: &'a Throttle,
}

/// Check `answer` against `record` under `lock`, at `now` (Unix seconds).
/// `rhost` is remembered with a success (for `grace_period`).
pub fn attempt(
    lock: &UserLock<'_>,
    record: &UserRecord,
    answer: &Answer,
    now: u64,
    rules: &Rules<'_>,
    rhost: Option<&str>,
) -> Attempt {
    let read = lock.read_state();
    let mut state = read.state;
    let done = |result, state, delay| Attempt {
        result,
        state,
        delay,
        note: read.problem.clone(),
    };

    // 1. Refuse unread when locked out or too soon.
    throttle::expire_lock(&mut state, now);
    if let Some(lockout) = throttle::lockout(&state, rules.throttle, now) {
        return done(Err(Refusal::Locked(lockout)), state, Duration::ZERO);
    }
    if let Some(wait) = throttle::too_soon(&state, now) {
        return done(
            Err(Refusal::TooSoon { wait }),
            state,
            Duration::from_secs(wait),
        );
    }

    // 2. Count before compare.
    let delay = throttle::record_failure(&mut state, rules.throttle, now);
    let looks_like = Miss::wrong(answer);
    if let Err(error) = lock.write_state(&state) {
        return done(Err(Refusal::NotCounted { error, looks_like }), state, delay);
    }

    // 3. Compare.
    let verdict = match answer {
        Answer::Code(code) => {
            let generator = Generator::new(&record.secret, record.params);
            match otp::verify(&generator, code, now, rules.window, state.last_step) {
                Verdict::Accepted { step } => {
                    state.last_step = Some(step);
                    Ok(Accepted::Code { step })
                }
                Verdict::Replayed { .. } => Err(Miss::Replayed),
                Verdict::Wrong => Err(Miss::WrongCode),
            }
        }
        Answer::Recovery(typed) => match recovery::find(typed, &record.recovery) {
            Some(id) if state.used_recovery.contains(&id) => Err(Miss::RecoveryUsed(id)),
            Some(id) => {
                state.used_recovery.push(id);
                let left = enrollment::recovery_left(record, &state);
                Ok(Accepted::Recovery { id, left })
            }
            None => Err(Miss::WrongRecovery),
        },
    };

    // 4. Record a success; a wrong answer is already on disk.
    match verdict {
        Ok(accepted) => {
            throttle::record_success(&mut state, now, rhost);
            match lock.write_state(&state) {
                Ok(()) => done(Ok(accepted), state, Duration::ZERO),
                Err(error) => done(Err(Refusal::NotSaved { error, looks_like }), state, delay),
            }
        }
        Err(why) => done(Err(Refusal::Wrong(why)), state, delay),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer;
    use crate::config::Paths;
    use crate::names::UserName;
    use crate::otp::OtpParams;
    use crate::record::Status;
    use crate::secret::SecretBytes;
    use crate::store::Store;
    use std::path::PathBuf;
    use zeroize::Zeroizing;

    struct Scratch(PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn setup(name: &str) -> (Scratch, Store, UserRecord) {
        let dir =
            std::env::temp_dir().join(format!("totp_core-attempt-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let paths = Paths {
            users_dir: dir.join("users"),
            state_dir: dir.join("state"),
        };
        crate::fsio::ensure_private_dir(&paths.users_dir).unwrap();
        crate::fsio::ensure_private_dir(&paths.state_dir).unwrap();
        let secret =
            SecretBytes::from_bytes(Zeroizing::new(b"12345678901234567890".to_vec())).unwrap();
        let record = UserRecord {
            status: Status::Active,
            secret,
            params: OtpParams::new(otp::Algorithm::SHA1, 6, 30).unwrap(),
            label: None,
            issuer: None,
            created_at: None,
            activated_at: None,
            recovery: Vec::new(),
        };
        (Scratch(dir), Store::new(&paths), record)
    }

    const NOW: u64 = 1_700_000_000;
    const LIMITS: Throttle = Throttle {
        max_failures: 3,
        lockout_seconds: 60,
        backoff_seconds: 1,
        backoff_max_seconds: 4,
        hard_cap: 100,
    };

    fn code(record: &UserRecord, now: u64) -> Answer {
        let g = Generator::new(&record.secret, record.params);
        let text = g.code_at_step(record.params.step_at(now));
        answer::classify(text.as_bytes(), 6, false).unwrap()
    }

    fn rules() -> Rules<'static> {
        Rules {
            window: 1,
            throttle: &LIMITS,
        }
    }

    #[test]
    fn a_right_code_once_a_wrong_one_counted_and_delayed() {
        let (_d, store, record) = setup("basic");
        let user = UserName::parse(b"alice").unwrap();
        let lock = store.lock(&user).unwrap();
        let ok = attempt(&lock, &record, &code(&record, NOW), NOW, &rules(), None);
        assert!(matches!(ok.result, Ok(Accepted::Code { step }) if step == NOW / 30));
        assert_eq!(ok.delay, Duration::ZERO);
        assert_eq!(lock.read_state().state.failures, 0);

        let again = attempt(&lock, &record, &code(&record, NOW), NOW, &rules(), None);
        assert!(matches!(again.result, Err(Refusal::Wrong(Miss::Replayed))));
        assert_eq!(again.delay, Duration::from_secs(1));
        let state = lock.read_state().state;
        assert_eq!((state.failures, state.not_before), (1, Some(NOW + 1)));

        // Too soon: refused unread, the state untouched.
        let soon = attempt(&lock, &record, &code(&record, NOW), NOW, &rules(), None);
        assert!(matches!(soon.result, Err(Refusal::TooSoon { wait: 1 })));
        assert_eq!(lock.read_state().state, state);
    }

    /// The attack of finding 1: the failure cannot be written. The right code
    /// must then not be compared (so not used up), and the refusal must look
    /// exactly like a wrong code's, delay included.
    #[test]
    fn an_answer_whose_failure_cannot_be_written_is_not_compared() {
        let (dir, store, record) = setup("unwritable");
        let user = UserName::parse(b"alice").unwrap();
        let lock = store.lock(&user).unwrap();
        // A directory where the state's spare must go makes every write fail.
        std::fs::create_dir(dir.0.join("state/.alice.state.tmp")).unwrap();
        let right = attempt(&lock, &record, &code(&record, NOW), NOW, &rules(), None);
        let wrong_answer = answer::classify(b"000000", 6, false).unwrap();
        let wrong = attempt(&lock, &record, &wrong_answer, NOW, &rules(), None);
        assert!(matches!(right.result, Err(Refusal::NotCounted { .. })));
        assert!(matches!(wrong.result, Err(Refusal::NotCounted { .. })));
        assert_eq!(right.delay, wrong.delay);
        assert_eq!(
            right.result.as_ref().unwrap_err().shown_miss(),
            Some(Miss::WrongCode)
        );
        // Once writes work again, the same right code is accepted: it was
        // never compared, so never used up, and never accepted twice.
        std::fs::remove_dir(dir.0.join("state/.alice.state.tmp")).unwrap();
        let later = attempt(
            &lock,
            &record,
            &code(&record, NOW),
            NOW + 30,
            &rules(),
            None,
        );
        assert!(later.result.is_ok());
    }

    #[test]
    fn lockout_and_hard_cap_refuse_unread() {
        let (_d, store, record) = setup("lock");
        let user = UserName::parse(b"alice").unwrap();
        let lock = store.lock(&user).unwrap();
        let wrong = answer::classify(b"000000", 6, false).unwrap();
        let mut now = NOW;
        for _ in 0..3 {
            let a = attempt(&lock, &record, &wrong, now, &rules(), None);
            assert!(matches!(a.result, Err(Refusal::Wrong(_))));
            now += 10;
        }
        let locked = attempt(&lock, &record, &code(&record, now), now, &rules(), None);
        assert!(matches!(
            locked.result,
            Err(Refusal::Locked(Lockout::Until(_)))
        ));
        // After the lockout the right code works and clears everything.
        now += 60;
        let ok = attempt(&lock, &record, &code(&record, now), now, &rules(), None);
        assert!(ok.result.is_ok(), "{:?}", ok.result);
        assert_eq!(ok.state.failures_since_success, 0);

        let capped = Throttle {
            hard_cap: 5,
            ..LIMITS
        };
        let rules = Rules {
            window: 1,
            throttle: &capped,
        };
        for _ in 0..5 {
            now += 3600;
            let a = attempt(&lock, &record, &wrong, now, &rules, None);
            assert!(matches!(a.result, Err(Refusal::Wrong(_))));
        }
        now += 100_000;
        let a = attempt(&lock, &record, &code(&record, now), now, &rules, None);
        assert!(matches!(
            a.result,
            Err(Refusal::Locked(Lockout::Capped { failures: 5 }))
        ));
    }
}
