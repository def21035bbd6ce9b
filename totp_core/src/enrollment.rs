//! Changes to an enrollment that totpctl makes and the module must agree with:
//! installing a new secret, activating it with a code from the app, and
//! replacing the recovery codes.
//!
//! Each function takes the user's [`UserLock`], so it runs under the same lock
//! as a login, and writes the record and the state in the order that can never
//! re-admit a used code or recovery code if the second write fails.

use crate::answer::{self, Answer, Malformed};
use crate::attempt::{self, Miss, Refusal, Rules};
use crate::config::{OtpConfig, Throttle};
use crate::otp::{self, Generator, OtpType};
use crate::record::{Status, UserRecord};
use crate::recovery::{self, NewCodes};
use crate::secret::SecretError;
use crate::store::{StoreError, UserLock};
use crate::throttle::Lockout;
use std::fmt;

#[derive(Debug)]
pub enum EnrollmentError {
    /// `activate` was asked for a record that is already active.
    NotPending,
    /// The answer is not a code of the record's length; nothing was checked.
    Malformed(Malformed),
    /// The code matches no step in the window.
    Wrong,
    /// The code matches a step already used.
    Replayed,
    /// TOTP: the code matches no step in the window, but the step `offset`
    /// steps from now (within `resync_window`): the device's clock is off
    /// by about `offset` x `period` seconds. Nothing is learned at
    /// activation; the clock should be set right.
    ClockOff {
        offset: i64,
        period: u64,
    },
    /// Too many failed attempts (activation counts like a login).
    Locked(Lockout),
    /// The backoff after a failed attempt has not run out; nothing compared.
    TooSoon {
        wait: u64,
    },
    Random(SecretError),
    Store(StoreError),
}

impl fmt::Display for EnrollmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPending => write!(f, "the enrollment is already active"),
            Self::Malformed(m) => write!(f, "{}", m.reason()),
            Self::Wrong => write!(f, "wrong code"),
            Self::Replayed => write!(f, "code already used"),
            Self::ClockOff { offset, period } => write!(
                f,
                "wrong code now, but it is the code for {} s {}: the device's clock is off",
                offset.unsigned_abs().saturating_mul(*period),
                if *offset > 0 { "from now" } else { "ago" }
            ),
            Self::Locked(lockout) => write!(f, "too many failed attempts; {}", lockout.describe()),
            Self::TooSoon { wait } => {
                write!(f, "too soon after a failed attempt; try again in {wait} s")
            }
            Self::Random(e) => write!(f, "{e}"),
            Self::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for EnrollmentError {}

impl From<StoreError> for EnrollmentError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Install `record` (a new secret, pending or imported active) in place of
/// whatever the user had. The record is written first (durably); then the
/// state forgets the last step, the learned clock skew and the used recovery
/// ids, which belonged to the old secret, device and codes, and takes
/// `counter` as the next HOTP counter (for a HOTP record; a TOTP record has
/// none). Failures and lockout are kept.
pub fn install(lock: &UserLock<'_>, record: &UserRecord, counter: u64) -> Result<(), StoreError> {
    lock.write_record(record)?;
    let mut state = lock.read_state().state;
    state.last_step = None;
    state.used_recovery.clear();
    state.hotp_next = (record.kind == OtpType::Hotp).then_some(counter);
    state.skew = None;
    state.resync_offset = None;
    state.resync_step = None;
    state.resync_at = None;
    // Written even when nothing changed: the state file comes into being at
    // enrollment, so that a first login creates nothing, and so that a
    // state found missing later means a lost one.
    lock.write_state(&state)?;
    Ok(())
}

/// Check `typed` against a pending record and, if it is a valid code, make the
/// record active with a fresh set of recovery codes, which are returned to be
/// shown once.
///
/// The code goes through the same checked attempt as a login
/// ([`crate::attempt`]): refused unread when locked out or too soon, counted
/// as a failure before it is compared, the hard cap honoured. Activation
/// learns no clock skew (only the window counts); a code that matches a step
/// within `resync_window` is reported as [`EnrollmentError::ClockOff`], after
/// its failure was counted.
///
/// The accepted step (or HOTP counter) is saved in the login state before the
/// record turns active, so the code used to activate can never be replayed
/// at a login. `record` is updated only when everything was written.
pub fn activate(
    lock: &UserLock<'_>,
    record: &mut UserRecord,
    typed: &[u8],
    now: u64,
    otp_cfg: &OtpConfig,
    throttle: &Throttle,
) -> Result<NewCodes, EnrollmentError> {
    if record.status != Status::Pending {
        return Err(EnrollmentError::NotPending);
    }
    let answer = match answer::classify(typed, record.params.digits, false) {
        Ok(answer @ Answer::Code(_)) => answer,
        Ok(Answer::Recovery(_)) => return Err(EnrollmentError::Malformed(Malformed::NotDigits)),
        Err(malformed) => return Err(EnrollmentError::Malformed(malformed)),
    };
    // Made before the attempt, so that a failing random source cannot use
    // up a right code.
    let codes = recovery::generate().map_err(EnrollmentError::Random)?;
    let window_only = OtpConfig {
        resync_window: 0,
        ..otp_cfg.clone()
    };
    let rules = Rules {
        otp: &window_only,
        throttle,
    };
    let attempt = attempt::attempt(lock, record, &answer, now, &rules, None);
    let mut state = match attempt.result {
        Ok(_) => attempt.state,
        Err(Refusal::Locked(lockout)) => return Err(EnrollmentError::Locked(lockout)),
        Err(Refusal::TooSoon { wait }) => return Err(EnrollmentError::TooSoon { wait }),
        Err(Refusal::Wrong(Miss::Replayed)) => return Err(EnrollmentError::Replayed),
        Err(Refusal::Wrong(_)) => return Err(clock_hint(record, &answer, now, otp_cfg)),
        Err(
            Refusal::NotCounted { error, .. }
            | Refusal::NotSaved { error, .. }
            | Refusal::NotChecked { error, .. },
        ) => return Err(EnrollmentError::Store(error)),
    };
    if !state.used_recovery.is_empty() {
        state.used_recovery.clear();
        lock.write_state(&state)?;
    }

    let previous = (record.activated_at, std::mem::take(&mut record.recovery));
    record.status = Status::Active;
    record.activated_at = Some(now);
    record.recovery = codes.hashes.clone();
    if let Err(e) = lock.write_record(record) {
        record.status = Status::Pending;
        (record.activated_at, record.recovery) = previous;
        return Err(e.into());
    }
    Ok(codes)
}

/// Why a wrong activation code was wrong: [`EnrollmentError::ClockOff`] when
/// it is a TOTP code for a step within `resync_window` of now, else
/// [`EnrollmentError::Wrong`]. Called only after the failure was counted.
fn clock_hint(
    record: &UserRecord,
    answer: &Answer,
    now: u64,
    otp_cfg: &OtpConfig,
) -> EnrollmentError {
    let Answer::Code(code) = answer else {
        return EnrollmentError::Wrong;
    };
    // Only the directory can compute a secret it holds: no hint then.
    if record.kind != OtpType::Totp || record.secret.is_held_by_directory() {
        return EnrollmentError::Wrong;
    }
    let generator = Generator::new(&record.secret, record.params);
    let now_step = record.params.step_at(now);
    match otp::matching_offsets(&generator, code, now_step, otp_cfg.resync_window).first() {
        Some(&offset) => EnrollmentError::ClockOff {
            offset,
            period: record.params.period,
        },
        None => EnrollmentError::Wrong,
    }
}

/// Replace an active record's recovery codes with a fresh set. The record is
/// written before the used ids are forgotten, so a failed write can only leave
/// new codes refused (run it again), never old used codes accepted.
pub fn regenerate_recovery(
    lock: &UserLock<'_>,
    record: &mut UserRecord,
) -> Result<NewCodes, EnrollmentError> {
    let codes = recovery::generate().map_err(EnrollmentError::Random)?;
    let previous = std::mem::replace(&mut record.recovery, codes.hashes.clone());
    if let Err(e) = lock.write_record(record) {
        record.recovery = previous;
        return Err(e.into());
    }
    // The new codes start unused. A state that was lost (or never written)
    // is written now, so that the next login does not take it for lost and
    // count these new codes as used.
    let read = lock.read_state();
    let mut state = read.state;
    if read.lost || !state.used_recovery.is_empty() {
        state.used_recovery.clear();
        lock.write_state(&state)?;
    }
    Ok(codes)
}

/// Evidence that the holder of an active enrollment just proved it, returned
/// only by [`prove`]. Self-service changes to an active enrollment (replace,
/// disable, new recovery codes) require one.
#[derive(Debug)]
pub struct Proven {
    _private: (),
}

/// Why [`prove`] refused.
#[derive(Debug)]
pub enum ProofError {
    /// Not a code or recovery code of the right shape; nothing was checked
    /// (and, as at login, nothing is counted).
    Malformed(Malformed),
    /// Refused by the same rules as a login: locked out, too soon, or
    /// counted and wrong (see [`crate::attempt`]). Wait `delay`, after the
    /// lock is released, before answering.
    Refused {
        refusal: Refusal,
        delay: std::time::Duration,
    },
}

impl ProofError {
    /// The whole truth, for the audit line (never a code).
    pub fn audit_reason(&self) -> String {
        match self {
            Self::Malformed(m) => m.reason().to_string(),
            Self::Refused { refusal, .. } => match refusal {
                Refusal::Locked(lockout) => lockout.describe(),
                Refusal::TooSoon { wait } => format!("too soon after a failure ({wait} s left)"),
                Refusal::Wrong(miss) => miss.describe(),
                Refusal::NotCounted { error, .. } => {
                    format!("failure could not be recorded, answer not compared: {error}")
                }
                Refusal::NotSaved { error, .. } => {
                    format!("right, but the success could not be saved: {error}")
                }
                Refusal::NotChecked { error, .. } => {
                    format!("the directory could not check the code: {error}")
                }
            },
        }
    }
}

/// What the person who typed the answer is told. A failure that could not
/// be recorded reads exactly like a wrong answer.
impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(m) => write!(f, "{}", m.reason()),
            Self::Refused { refusal, .. } => match refusal {
                Refusal::Locked(lockout) => {
                    write!(f, "too many failed attempts; {}", lockout.describe())
                }
                Refusal::TooSoon { wait } => {
                    write!(f, "too soon after a failed attempt; try again in {wait} s")
                }
                Refusal::Wrong(miss)
                | Refusal::NotCounted {
                    looks_like: miss, ..
                }
                | Refusal::NotSaved {
                    looks_like: miss, ..
                }
                | Refusal::NotChecked {
                    looks_like: miss, ..
                } => write!(f, "{}", miss.message()),
            },
        }
    }
}

impl std::error::Error for ProofError {}

/// Check that `typed` is a current code or an unused recovery code of the
/// active `record`, with the same rules and bookkeeping as a login
/// ([`crate::attempt`]): lockout and backoff honoured, the failure written
/// before the compare, and the accepted step (or recovery code) saved before
/// success is returned, so it cannot be used again.
pub fn prove(
    lock: &UserLock<'_>,
    record: &UserRecord,
    typed: &[u8],
    now: u64,
    otp_cfg: &OtpConfig,
    limits: &crate::config::Throttle,
) -> Result<Proven, ProofError> {
    let answer = answer::classify(typed, record.params.digits, !record.recovery.is_empty())
        .map_err(ProofError::Malformed)?;
    let rules = Rules {
        otp: otp_cfg,
        throttle: limits,
    };
    let attempt = attempt::attempt(lock, record, &answer, now, &rules, None);
    match attempt.result {
        Ok(_) => Ok(Proven { _private: () }),
        Err(refusal) => Err(ProofError::Refused {
            refusal,
            delay: attempt.delay,
        }),
    }
}

/// How many of the record's recovery codes the state has not marked used.
pub fn recovery_left(record: &UserRecord, state: &crate::state::LoginState) -> usize {
    record
        .recovery
        .iter()
        .filter(|h| !state.used_recovery.contains(&h.id))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::UserName;
    use crate::otp::OtpParams;
    use crate::otp::Verdict;
    use crate::secret::SecretBytes;
    use crate::store::testing::{scratch_store, Scratch, OTP};
    use crate::store::Store;
    use zeroize::Zeroizing;

    fn store(name: &str) -> (Scratch, Store) {
        scratch_store(&format!("enrollment-{name}"))
    }

    fn pending() -> UserRecord {
        let secret =
            SecretBytes::from_bytes(Zeroizing::new(b"12345678901234567890".to_vec())).unwrap();
        UserRecord {
            status: Status::Pending,
            kind: OtpType::Totp,
            secret,
            params: OtpParams::new(otp::Algorithm::SHA1, 6, 30).unwrap(),
            label: Some("alice".into()),
            issuer: None,
            created_at: Some(1),
            activated_at: None,
            recovery: Vec::new(),
            serial: None,
        }
    }

    fn code_at(record: &UserRecord, now: u64) -> Vec<u8> {
        let g = Generator::new(&record.secret, record.params);
        g.code_at_step(record.params.step_at(now))
            .as_bytes()
            .to_vec()
    }

    const NOW: u64 = 1_700_000_000;

    const NO_BACKOFF: crate::config::Throttle = crate::config::Throttle {
        max_failures: 10,
        lockout_seconds: 900,
        backoff_seconds: 0,
        backoff_max_seconds: 0,
        hard_cap: 100,
    };

    /// Found in review: activation compared codes with no throttle at all,
    /// so a pending enrollment (an admin's, a hardware token's) could be
    /// guessed at full speed. It now counts like a login and locks out.
    #[test]
    fn wrong_activation_codes_reach_the_lockout() {
        let (_dir, first) = store("activate-throttle");
        let (_dir2, second) = store("activate-backoff");
        let user = UserName::parse(b"mallory").unwrap();
        let lock = first.lock(&user).unwrap();
        let mut record = pending();
        install(&lock, &record, 0).unwrap();
        for _ in 0..10 {
            let wrong = activate(&lock, &mut record, b"000000", NOW, &OTP, &NO_BACKOFF);
            assert!(matches!(
                wrong,
                Err(EnrollmentError::Wrong | EnrollmentError::ClockOff { .. })
            ));
        }
        assert_eq!(lock.read_state().state.failures, 10);
        let right = code_at(&record, NOW);
        assert!(matches!(
            activate(&lock, &mut record, &right, NOW, &OTP, &NO_BACKOFF),
            Err(EnrollmentError::Locked(_))
        ));
        assert_eq!(record.status, Status::Pending);
        // With a backoff, an attempt right after a failure is not compared.
        let backoff = crate::config::Throttle {
            backoff_seconds: 5,
            backoff_max_seconds: 5,
            ..NO_BACKOFF
        };
        let lock2 = second.lock(&user).unwrap();
        let mut record2 = pending();
        install(&lock2, &record2, 0).unwrap();
        let _ = activate(&lock2, &mut record2, b"000000", NOW, &OTP, &backoff);
        let right = code_at(&record2, NOW);
        assert!(matches!(
            activate(&lock2, &mut record2, &right, NOW, &OTP, &backoff),
            Err(EnrollmentError::TooSoon { wait: 5 })
        ));
        activate(&lock2, &mut record2, &right, NOW + 5, &OTP, &backoff).unwrap();
    }

    #[test]
    fn activation_records_the_step_and_issues_codes() {
        let (_dir, store) = store("activate");
        let user = UserName::parse(b"alice").unwrap();
        let lock = store.lock(&user).unwrap();
        let mut record = pending();
        install(&lock, &record, 0).unwrap();

        let wrong = activate(&lock, &mut record, b"000000", NOW, &OTP, &NO_BACKOFF);
        assert!(matches!(wrong, Err(EnrollmentError::Wrong)));
        let ahead = code_at(&record, NOW + 150);
        let off = activate(&lock, &mut record, &ahead, NOW, &OTP, &NO_BACKOFF);
        assert!(
            matches!(
                off,
                Err(EnrollmentError::ClockOff {
                    offset: 5,
                    period: 30
                })
            ),
            "{:?}",
            off.err()
        );
        let garbage = activate(&lock, &mut record, b"12ab56", NOW, &OTP, &NO_BACKOFF);
        assert!(matches!(
            garbage,
            Err(EnrollmentError::Malformed(Malformed::NotDigits))
        ));
        assert_eq!(
            store.load_record(&user).unwrap().unwrap().status,
            Status::Pending
        );

        let code = code_at(&record, NOW);
        let codes = activate(&lock, &mut record, &code, NOW, &OTP, &NO_BACKOFF).unwrap();
        assert_eq!(codes.codes.len(), 10);
        let saved = store.load_record(&user).unwrap().unwrap();
        assert_eq!(saved.status, Status::Active);
        assert_eq!(saved.activated_at, Some(NOW));
        assert_eq!(saved.recovery, codes.hashes);
        let state = lock.read_state().state;
        assert_eq!(state.last_step, Some(NOW / 30));
        assert_eq!(recovery_left(&saved, &state), 10);

        // The activation code is spent: a login at the same moment sees a replay.
        let g = Generator::new(&saved.secret, saved.params);
        let again = otp::Code::parse(&code, 6).unwrap();
        assert!(matches!(
            otp::verify(&g, &again, NOW, 1, state.last_step),
            Verdict::Replayed { .. }
        ));
        assert!(matches!(
            activate(&lock, &mut record, &code, NOW, &OTP, &NO_BACKOFF),
            Err(EnrollmentError::NotPending)
        ));
    }

    #[test]
    fn proof_is_a_login_code_once_and_counts_failures() {
        let (_dir, store) = store("prove");
        let user = UserName::parse(b"carol").unwrap();
        let lock = store.lock(&user).unwrap();
        let mut record = pending();
        install(&lock, &record, 0).unwrap();
        let first = code_at(&record, NOW);
        let codes = activate(&lock, &mut record, &first, NOW, &OTP, &NO_BACKOFF).unwrap();
        let limits = crate::config::Throttle {
            max_failures: 3,
            lockout_seconds: 60,
            backoff_seconds: 0,
            backoff_max_seconds: 0,
            hard_cap: 100,
        };
        // The activation code is spent; the next step's proves once.
        assert!(matches!(
            prove(&lock, &record, &first, NOW, &OTP, &limits),
            Err(ProofError::Refused {
                refusal: Refusal::Wrong(Miss::Replayed),
                ..
            })
        ));
        let next = code_at(&record, NOW + 30);
        prove(&lock, &record, &next, NOW + 30, &OTP, &limits).unwrap();
        assert_eq!(lock.read_state().state.last_step, Some(NOW / 30 + 1));
        assert_eq!(lock.read_state().state.failures, 0);
        assert!(prove(&lock, &record, &next, NOW + 30, &OTP, &limits).is_err());
        // A recovery code works once.
        prove(
            &lock,
            &record,
            codes.codes[0].as_bytes(),
            NOW + 30,
            &OTP,
            &limits,
        )
        .unwrap();
        assert!(matches!(
            prove(
                &lock,
                &record,
                codes.codes[0].as_bytes(),
                NOW + 30,
                &OTP,
                &limits
            ),
            Err(ProofError::Refused {
                refusal: Refusal::Wrong(Miss::RecoveryUsed(1)),
                ..
            })
        ));
        // Malformed answers are not counted; wrong ones are, up to a lockout.
        assert!(matches!(
            prove(&lock, &record, b"12ab56", NOW + 30, &OTP, &limits),
            Err(ProofError::Malformed(_))
        ));
        for _ in 0..2 {
            assert!(prove(&lock, &record, b"000000", NOW + 30, &OTP, &limits).is_err());
        }
        let later = code_at(&record, NOW + 60);
        assert!(matches!(
            prove(&lock, &record, &later, NOW + 60, &OTP, &limits),
            Err(ProofError::Refused {
                refusal: Refusal::Locked(crate::throttle::Lockout::Until(until)),
                ..
            }) if until == NOW + 30 + 60
        ));
        assert_eq!(lock.read_state().state.failures, 3);
    }

    #[test]
    fn install_and_regenerate_forget_what_belonged_to_the_old_codes() {
        let (_dir, store) = store("regen");
        let user = UserName::parse(b"bob").unwrap();
        let lock = store.lock(&user).unwrap();
        let mut record = pending();
        install(&lock, &record, 0).unwrap();
        let code = code_at(&record, NOW);
        activate(&lock, &mut record, &code, NOW, &OTP, &NO_BACKOFF).unwrap();

        let mut state = lock.read_state().state;
        state.used_recovery = vec![1, 2];
        state.failures = 3;
        lock.write_state(&state).unwrap();
        let fresh = regenerate_recovery(&lock, &mut record).unwrap();
        let state = lock.read_state().state;
        assert!(state.used_recovery.is_empty());
        assert_eq!(state.failures, 3);
        let saved = store.load_record(&user).unwrap().unwrap();
        assert_eq!(saved.recovery, fresh.hashes);
        assert_eq!(
            recovery::find(fresh.codes[0].as_bytes(), &saved.recovery),
            Some(1)
        );

        install(&lock, &pending(), 0).unwrap();
        let state = lock.read_state().state;
        assert_eq!((state.last_step, state.failures), (None, 3));
        assert_eq!(
            store.load_record(&user).unwrap().unwrap().status,
            Status::Pending
        );
    }
}
