//! One attempt at a code or a recovery code, checked under the user's lock.
//! The login and totpctl's proofs both come through here, so there is one
//! implementation of the throttling rules (see [`crate::throttle`]):
//!
//! 1. read the state; refuse without comparing if the account is locked out
//!    or the backoff of the last failure has not run out ("not before");
//! 2. **count before compare**: record the attempt as a failure and write
//!    that state; if the write fails, refuse without comparing;
//! 3. only then compare, in constant time: a TOTP code against the steps
//!    around now (moved by a learned clock skew), a HOTP code against the
//!    counters `[next, next + look_ahead]`; a TOTP code that matches only a
//!    step further off is remembered as a clock-skew candidate, written
//!    after the compare (the failure is already on disk), and accepted only
//!    when the next code confirms it (see [`compare_totp`]);
//! 4. on success, write the success state (the step or recovery code is
//!    used up, the failures cleared); if that write fails, refuse.
//!
//! The caller holds the lock for exactly this and nothing else, and waits
//! [`Attempt::delay`] after releasing it. A refusal that comes from a failed
//! write has the same delay as a wrong code, and callers show both the same
//! way, so nothing the person at the prompt sees tells them apart.

use crate::answer::Answer;
use crate::config::{OtpConfig, Throttle};
use crate::directory_check::Asked;
pub use crate::lost_state::forget_recovery;
pub(crate) use crate::lost_state::read_state;
use crate::otp::{self, Code, Generator, HotpVerdict, OtpType, Verdict};
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
    /// A TOTP code that confirmed a clock-skew candidate: accepted, and the
    /// device's skew (in steps, positive when it is ahead) learned.
    Resynced { step: u64, skew: i64 },
    /// A HOTP code for this counter; the next expected is `counter + 1`.
    Counter { counter: u64 },
    /// A recovery code, with how many are left unused.
    Recovery { id: u32, left: usize },
}

/// How a compared answer was not right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss {
    WrongCode,
    /// A code of a step already used.
    Replayed,
    /// A TOTP code that matches no step in the window but the step `offset`
    /// steps from now, inside `resync_window`: not accepted, remembered as a
    /// clock-skew candidate. Shown as a wrong code.
    SkewCandidate {
        offset: i64,
    },
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
            Self::SkewCandidate { offset } => format!(
                "wrong code, but it matches the step {offset:+} from now: remembered as a \
                 clock-skew candidate, accepted if the next code confirms it"
            ),
            Self::WrongRecovery => "wrong recovery code".into(),
            Self::RecoveryUsed(id) => format!("recovery code {id} was already used"),
        }
    }

    /// For the person who typed it.
    pub fn message(self) -> &'static str {
        match self {
            Self::WrongCode | Self::SkewCandidate { .. } => "wrong code",
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
    /// The directory that holds the secret could not check the code
    /// (`ldap.verify = "directory"`): refused; the failure counted stays.
    NotChecked { error: StoreError, looks_like: Miss },
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
            }
            | Self::NotChecked {
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
    /// `window`, `look_ahead` and `resync_window`.
    pub otp: &'a OtpConfig,
    pub throttle: &'a Throttle,
}

/// How long a clock-skew candidate waits for the code that confirms it.
pub const RESYNC_SECONDS: u64 = 120;

/// How far the confirming code's offset may be from the candidate's: the
/// device's next code, typed before the server's step turns, is one further.
pub const RESYNC_TOLERANCE: i64 = 1;

/// How often a lost compare-and-swap (the LDAP store: another host wrote
/// the state first) is read again and decided again before the attempt is
/// refused as not counted.
pub const CONFLICT_RETRIES: u32 = 128;

/// Check `answer` against `record` under `lock`, at `now` (Unix seconds).
/// `rhost` is remembered with a success (for `grace_period`).
///
/// A write that loses a race ([`StoreError::Conflict`], LDAP only) writes
/// nothing, so the state is read again and the step decided again: before
/// the compare, the whole gate and count; after it, the compare itself
/// against the fresh state (another host may have used the code
/// meanwhile, or locked the account) before the success is written.
pub fn attempt(
    lock: &UserLock<'_>,
    record: &UserRecord,
    answer: &Answer,
    now: u64,
    rules: &Rules<'_>,
    rhost: Option<&str>,
) -> Attempt {
    let mut note = None;
    let mut tries = 0;
    let looks_like = Miss::wrong(answer);
    let done = |result, state, delay, note: &mut Option<String>| Attempt {
        result,
        state,
        delay,
        note: note.take(),
    };

    // 1. Refuse unread when locked out or too soon. 2. Count before compare.
    let (mut state, delay) = loop {
        let mut state = read_state(lock, record, &mut note);
        if let Some(refusal) = gate(record, &mut state, rules, now) {
            let delay = match refusal {
                Refusal::TooSoon { wait } => Duration::from_secs(wait),
                _ => Duration::ZERO,
            };
            return done(Err(refusal), state, delay, &mut note);
        }
        let delay = throttle::record_failure(&mut state, rules.throttle, now);
        match lock.write_state(&state) {
            Ok(()) => break (state, delay),
            Err(StoreError::Conflict(_)) if tries < CONFLICT_RETRIES => tries += 1,
            Err(error) => {
                return done(
                    Err(Refusal::NotCounted { error, looks_like }),
                    state,
                    delay,
                    &mut note,
                )
            }
        }
    };

    // A code the directory checks is sent there once (see directory_check).
    let mut directory = match answer {
        Answer::Code(code) if record.secret.is_held_by_directory() => Some(Asked::new(code)),
        _ => None,
    };
    loop {
        // 3. Compare.
        let counted = state.clone();
        let compared = match directory.as_mut() {
            Some(asked) => match asked.decide(lock, record, &mut state, now, rules.otp) {
                Ok(compared) => compared,
                Err(error) => {
                    return done(
                        Err(Refusal::NotChecked { error, looks_like }),
                        state,
                        delay,
                        &mut note,
                    )
                }
            },
            None => compare(record, &mut state, answer, now, rules),
        };
        match compared {
            // 4. Record a success; a wrong answer is already on disk.
            Ok(accepted) => {
                throttle::record_success(&mut state, now, rhost);
                match lock.write_state(&state) {
                    Ok(()) => return done(Ok(accepted), state, Duration::ZERO, &mut note),
                    Err(StoreError::Conflict(_)) if tries < CONFLICT_RETRIES => {
                        tries += 1;
                        // Decide again on what the other writer left: the
                        // failure counted above is in it, or was cleared by
                        // a success or an unlock that came after it.
                        state = read_state(lock, record, &mut note);
                        throttle::expire_lock(&mut state, now);
                        if let Some(lockout) = throttle::lockout(&state, rules.throttle, now) {
                            return done(
                                Err(Refusal::Locked(lockout)),
                                state,
                                Duration::ZERO,
                                &mut note,
                            );
                        }
                    }
                    Err(error) => {
                        return done(
                            Err(Refusal::NotSaved { error, looks_like }),
                            state,
                            delay,
                            &mut note,
                        )
                    }
                }
            }
            Err(why) => {
                // A clock-skew candidate set or dropped by the compare. If
                // this write fails (or loses a race), the candidate is
                // forgotten: that only costs the device's owner a second try.
                if state != counted {
                    let _ = lock.write_state(&state);
                }
                return done(Err(Refusal::Wrong(why)), state, delay, &mut note);
            }
        }
    }
}

/// Step 1: a refusal that needs no compare, if any (a lockout that has run
/// out is cleared in `state`). A HOTP record whose state has no counter
/// (the state was lost) is refused until an administrator sets one: never
/// from counter 0, where every code the token ever showed would work again.
pub(crate) fn gate(
    record: &UserRecord,
    state: &mut LoginState,
    rules: &Rules<'_>,
    now: u64,
) -> Option<Refusal> {
    if record.kind == OtpType::Hotp && state.hotp_next.is_none() {
        return Some(Refusal::Locked(Lockout::CounterUnknown));
    }
    throttle_gate(state, rules, now)
}

/// The lockout and backoff part of [`gate`], for a resynchronisation
/// (which is how a lost HOTP counter is found again).
pub(crate) fn throttle_gate(
    state: &mut LoginState,
    rules: &Rules<'_>,
    now: u64,
) -> Option<Refusal> {
    throttle::expire_lock(state, now);
    if let Some(lockout) = throttle::lockout(state, rules.throttle, now) {
        return Some(Refusal::Locked(lockout));
    }
    throttle::too_soon(state, now).map(|wait| Refusal::TooSoon { wait })
}

/// Step 3: compare `answer`, marking in `state` what a success uses up.
fn compare(
    record: &UserRecord,
    state: &mut LoginState,
    answer: &Answer,
    now: u64,
    rules: &Rules<'_>,
) -> Result<Accepted, Miss> {
    match answer {
        Answer::Code(code) => match record.kind {
            OtpType::Hotp => compare_hotp(record, state, code, rules.otp),
            OtpType::Totp => compare_totp(record, state, code, now, rules.otp),
        },
        Answer::Recovery(typed) => match recovery::find(typed, &record.recovery) {
            Some(id) if state.used_recovery.contains(&id) => Err(Miss::RecoveryUsed(id)),
            Some(id) => {
                state.used_recovery.push(id);
                let left = enrollment::recovery_left(record, state);
                Ok(Accepted::Recovery { id, left })
            }
            None => Err(Miss::WrongRecovery),
        },
    }
}

/// A HOTP code: accepted for a counter in `[next, next + look_ahead]`, which
/// then makes `next` that counter + 1, so no code works twice.
fn compare_hotp(
    record: &UserRecord,
    state: &mut LoginState,
    code: &Code,
    otp_cfg: &OtpConfig,
) -> Result<Accepted, Miss> {
    let generator = Generator::new(&record.secret, record.params);
    // Never None here: `gate` refused a HOTP record without a counter.
    let Some(next) = state.hotp_next else {
        return Err(Miss::WrongCode);
    };
    match otp::verify_hotp(&generator, code, next, otp_cfg.look_ahead) {
        HotpVerdict::Accepted { counter } => {
            // The last counter there is can be used once, never again.
            let Some(after) = counter.checked_add(1) else {
                return Err(Miss::Replayed);
            };
            state.hotp_next = Some(after);
            Ok(Accepted::Counter { counter })
        }
        HotpVerdict::Replayed => Err(Miss::Replayed),
        HotpVerdict::Wrong => Err(Miss::WrongCode),
    }
}

/// A TOTP code, checked in the window around now + the learned skew, with
/// replay protection. A code that is not there but matches a step up to
/// `resync_window` steps *ahead* of now (RFC 6238 section 6) is a clock-skew
/// candidate:
/// refused and remembered. The next code, within [`RESYNC_SECONDS`], for a
/// later step at the same offset (give or take [`RESYNC_TOLERANCE`]) is
/// accepted and its offset kept as the skew. Any other attempt drops the
/// candidate. The resync steps are computed and compared for every code the
/// window does not accept, replayed or wrong, so the time taken tells nothing
/// about how near a refused code was. An accepted code skips them: its time
/// tells only that it was accepted, which the login's result says anyway,
/// and a successful login (the usual one) computes 3 codes instead of 24.
fn compare_totp(
    record: &UserRecord,
    state: &mut LoginState,
    code: &Code,
    now: u64,
    otp_cfg: &OtpConfig,
) -> Result<Accepted, Miss> {
    let generator = Generator::new(&record.secret, record.params);
    let current = record.params.step_at(now);
    let center = current.saturating_add_signed(state.skew.unwrap_or(0));
    let verdict = otp::verify_around(&generator, code, center, otp_cfg.window, state.last_step);
    let candidate = (state.resync_offset, state.resync_step, state.resync_at);
    state.resync_offset = None;
    state.resync_step = None;
    state.resync_at = None;
    if let Verdict::Accepted { step } = verdict {
        state.last_step = Some(step);
        return Ok(Accepted::Code { step });
    }
    let offsets = otp::matching_offsets(&generator, code, current, otp_cfg.resync_window);
    if let Verdict::Replayed { .. } = verdict {
        return Err(Miss::Replayed);
    }
    // Only a device that is *ahead* teaches a skew: its codes are for steps
    // that have not come yet, which nobody can have seen. Codes for past
    // steps are what a phishing proxy, a shoulder-surfer or a failed login
    // leaves behind; two unused ones in a row must not log in minutes later
    // (found in review). A slow device is told to set its clock instead.
    let fresh = offsets.into_iter().find(|&offset| {
        offset > 0
            && current
                .checked_add_signed(offset)
                .is_some_and(|step| state.last_step.is_none_or(|used| step > used))
    });
    let Some(offset) = fresh else {
        return Err(Miss::WrongCode);
    };
    let step = current.saturating_add_signed(offset);
    if let (Some(was), Some(was_step), Some(at)) = candidate {
        let confirms = now >= at
            && now - at <= RESYNC_SECONDS
            && step > was_step
            && (offset - was).abs() <= RESYNC_TOLERANCE;
        if confirms {
            state.last_step = Some(step);
            state.skew = (offset != 0).then_some(offset);
            return Ok(Accepted::Resynced { step, skew: offset });
        }
    }
    state.resync_offset = Some(offset);
    state.resync_step = Some(step);
    state.resync_at = Some(now);
    Err(Miss::SkewCandidate { offset })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer;
    use crate::names::UserName;
    use crate::otp::OtpParams;
    use crate::record::Status;
    use crate::secret::SecretBytes;
    use crate::store::testing::{scratch_store, Scratch, FREE, OTP};
    use crate::store::Store;
    use crate::throttle::Lockout;
    use zeroize::Zeroizing;

    fn setup(name: &str) -> (Scratch, Store, UserRecord) {
        let (dir, store) = scratch_store(&format!("attempt-{name}"));
        let secret =
            SecretBytes::from_bytes(Zeroizing::new(b"12345678901234567890".to_vec())).unwrap();
        let record = UserRecord {
            status: Status::Active,
            kind: OtpType::Totp,
            secret,
            params: OtpParams::new(otp::Algorithm::SHA1, 6, 30).unwrap(),
            label: None,
            issuer: None,
            created_at: None,
            activated_at: None,
            recovery: Vec::new(),
            serial: None,
        };
        (dir, store, record)
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
            otp: &OTP,
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
        // A directory where the state file must go makes every write fail.
        std::fs::create_dir(dir.0.join("state/alice.state")).unwrap();
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
        std::fs::remove_dir(dir.0.join("state/alice.state")).unwrap();
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
            otp: &OTP,
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

    fn code_at(record: &UserRecord, step: u64) -> Answer {
        let g = Generator::new(&record.secret, record.params);
        let text = g.code_at_step(step);
        answer::classify(text.as_bytes(), 6, false).unwrap()
    }

    fn free_rules() -> Rules<'static> {
        Rules {
            otp: &OTP,
            throttle: &FREE,
        }
    }

    #[test]
    fn hotp_counters_work_once_ahead_and_never_back() {
        let (_d, store, mut record) = setup("hotp");
        record.kind = OtpType::Hotp;
        let user = UserName::parse(b"alice").unwrap();
        let lock = store.lock(&user).unwrap();
        enrollment::install(&lock, &record, 5).unwrap();
        assert_eq!(lock.read_state().state.hotp_next, Some(5));
        let rules = free_rules();
        let at = |c| attempt(&lock, &record, &code_at(&record, c), NOW, &rules, None);
        // Below the first counter: never (the one just before is told apart
        // as a replay, for the log).
        assert!(matches!(at(3).result, Err(Refusal::Wrong(Miss::WrongCode))));
        assert!(matches!(at(4).result, Err(Refusal::Wrong(Miss::Replayed))));
        assert!(matches!(at(5).result, Ok(Accepted::Counter { counter: 5 })));
        assert!(matches!(at(5).result, Err(Refusal::Wrong(Miss::Replayed))));
        // Look-ahead: 6 + 10 is the furthest; 6 + 11 is refused.
        assert!(matches!(
            at(17).result,
            Err(Refusal::Wrong(Miss::WrongCode))
        ));
        assert!(matches!(
            at(16).result,
            Ok(Accepted::Counter { counter: 16 })
        ));
        assert_eq!(lock.read_state().state.hotp_next, Some(17));
        // Skipped counters are gone for good.
        assert!(at(10).result.is_err());
        assert!(matches!(
            at(17).result,
            Ok(Accepted::Counter { counter: 17 })
        ));
        let state = lock.read_state().state;
        assert_eq!((state.hotp_next, state.failures), (Some(18), 0));
        assert_eq!(state.last_step, None);
    }

    /// Count before compare covers HOTP: a right code whose failure cannot
    /// be written is not compared, so the counter does not move and the
    /// code still works once writes do.
    #[test]
    fn a_hotp_code_whose_failure_cannot_be_written_is_not_compared() {
        let (dir, store, mut record) = setup("hotp-unwritable");
        record.kind = OtpType::Hotp;
        let user = UserName::parse(b"alice").unwrap();
        let lock = store.lock(&user).unwrap();
        // An earlier release's state, which the first write converts through
        // a temp file; a directory where the temp file must go fails it.
        let state = dir.0.join("state/alice.state");
        std::fs::write(&state, "version = 1\nhotp_next = 0\n").unwrap();
        std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        std::fs::create_dir(dir.0.join("state/.alice.state.tmp")).unwrap();
        let rules = free_rules();
        let a = attempt(&lock, &record, &code_at(&record, 0), NOW, &rules, None);
        assert!(matches!(a.result, Err(Refusal::NotCounted { .. })));
        std::fs::remove_dir(dir.0.join("state/.alice.state.tmp")).unwrap();
        assert_eq!(lock.read_state().state.hotp_next, Some(0));
        let a = attempt(&lock, &record, &code_at(&record, 0), NOW, &rules, None);
        assert!(matches!(a.result, Ok(Accepted::Counter { counter: 0 })));
    }

    /// A phone five steps fast: its first code is refused and remembered,
    /// its next code is accepted and teaches the skew, and from then on its
    /// codes are accepted at once.
    #[test]
    fn a_fast_phone_teaches_its_skew_with_two_codes() {
        let (_d, store, record) = setup("skew");
        let user = UserName::parse(b"alice").unwrap();
        let lock = store.lock(&user).unwrap();
        let rules = free_rules();
        let step = NOW / 30;
        let first = attempt(
            &lock,
            &record,
            &code_at(&record, step + 5),
            NOW,
            &rules,
            None,
        );
        assert!(matches!(
            first.result,
            Err(Refusal::Wrong(Miss::SkewCandidate { offset: 5 }))
        ));
        let state = lock.read_state().state;
        assert_eq!(
            (state.failures, state.resync_offset, state.skew),
            (1, Some(5), None)
        );
        // The same code again is no confirmation (a step not later).
        let again = attempt(
            &lock,
            &record,
            &code_at(&record, step + 5),
            NOW + 1,
            &rules,
            None,
        );
        assert!(again.result.is_err());
        // The phone's next code, typed in the same server step.
        let second = attempt(
            &lock,
            &record,
            &code_at(&record, step + 6),
            NOW + 2,
            &rules,
            None,
        );
        assert!(
            matches!(second.result, Ok(Accepted::Resynced { skew: 6, .. })),
            "{:?}",
            second.result
        );
        let state = lock.read_state().state;
        assert_eq!(
            (state.skew, state.failures, state.resync_offset),
            (Some(6), 0, None)
        );
        // Later: the phone's code is accepted directly, a correct clock's is not.
        let later = NOW + 600;
        let ok = attempt(
            &lock,
            &record,
            &code_at(&record, later / 30 + 5),
            later,
            &rules,
            None,
        );
        assert!(
            matches!(ok.result, Ok(Accepted::Code { .. })),
            "{:?}",
            ok.result
        );
        let plain = attempt(
            &lock,
            &record,
            &code_at(&record, later / 30 + 30),
            later,
            &rules,
            None,
        );
        assert!(matches!(plain.result, Err(Refusal::Wrong(Miss::WrongCode))));
    }

    #[test]
    fn a_skew_candidate_needs_a_confirmation_in_time_at_the_same_offset() {
        let (_d, store, record) = setup("skewrules");
        let user = UserName::parse(b"alice").unwrap();
        let lock = store.lock(&user).unwrap();
        let rules = free_rules();
        let step = NOW / 30;
        let try_at = |s: u64, now: u64| {
            attempt(&lock, &record, &code_at(&record, s), now, &rules, None).result
        };
        // A lone far-off code is never accepted, however often it comes.
        for i in 0..3 {
            assert!(matches!(
                try_at(step + 7, NOW + i),
                Err(Refusal::Wrong(Miss::SkewCandidate { offset: 7 }))
            ));
        }
        // A code for a past step is never even a candidate: two unused old
        // codes in a row (from a phishing proxy, say) must not log in.
        for past in [7, 6] {
            assert!(matches!(
                try_at(step - past, NOW + 10),
                Err(Refusal::Wrong(Miss::WrongCode))
            ));
        }
        // Beyond resync_window: not even a candidate.
        assert!(matches!(
            try_at(step + 11, NOW),
            Err(Refusal::Wrong(Miss::WrongCode))
        ));
        assert_eq!(lock.read_state().state.resync_offset, None);
        // Another offset replaces the candidate instead of confirming it.
        assert!(try_at(step + 4, NOW).is_err());
        assert!(matches!(
            try_at(step + 8, NOW),
            Err(Refusal::Wrong(Miss::SkewCandidate { offset: 8 }))
        ));
        // Too late: more than two minutes after the candidate.
        assert!(matches!(
            try_at(step + 5 + 8, NOW + 150),
            Err(Refusal::Wrong(Miss::SkewCandidate { .. }))
        ));
        // A wrong code between the two drops the candidate.
        assert!(try_at(step + 3, NOW).is_err());
        let wrong = answer::classify(b"000000", 6, false).unwrap();
        assert!(attempt(&lock, &record, &wrong, NOW, &rules, None)
            .result
            .is_err());
        assert_eq!(lock.read_state().state.resync_offset, None);
        assert!(matches!(
            try_at(step + 4, NOW),
            Err(Refusal::Wrong(Miss::SkewCandidate { offset: 4 }))
        ));
        // resync_window = 0 turns learning off.
        let off = OtpConfig {
            resync_window: 0,
            ..OTP
        };
        let no_resync = Rules {
            otp: &off,
            throttle: &FREE,
        };
        let a = attempt(
            &lock,
            &record,
            &code_at(&record, step + 5),
            NOW,
            &no_resync,
            None,
        );
        assert!(matches!(a.result, Err(Refusal::Wrong(Miss::WrongCode))));
        assert_eq!(lock.read_state().state.skew, None);
    }

    /// splitmix64: a fixed sequence, so the run is the same every time.
    fn next_random(seed: &mut u64) -> u64 {
        *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// An attacker's random codes cannot teach a skew. 10,000 random guesses
    /// at the fastest rate the default throttle allows (an admin unlocks at
    /// each hard cap): every guess is compared, none is accepted, and none
    /// learns a skew. See the analysis in the clock-skew section of
    /// pam_totp(8): a guess is a candidate with probability 18/10^6, and a
    /// candidate is confirmed by the next guess with probability 3/10^6.
    #[test]
    fn random_guesses_at_the_throttled_rate_learn_no_skew() {
        let (_d, store, record) = setup("guess");
        let user = UserName::parse(b"mallory").unwrap();
        let lock = store.lock(&user).unwrap();
        let limits = Throttle::default();
        let rules = Rules {
            otp: &OTP,
            throttle: &limits,
        };
        let mut seed = 0x5EED_2026_u64;
        let (mut now, mut compared, mut accepted, mut candidates, mut unlocks) =
            (NOW, 0u32, 0u32, 0u32, 0u32);
        while compared < 10_000 {
            let guess = format!("{:06}", next_random(&mut seed) % 1_000_000);
            let answer = answer::classify(guess.as_bytes(), 6, false).unwrap();
            let a = attempt(&lock, &record, &answer, now, &rules, None);
            match a.result {
                Ok(_) => accepted += 1,
                Err(Refusal::Wrong(miss)) => {
                    compared += 1;
                    if matches!(miss, Miss::SkewCandidate { .. }) {
                        candidates += 1;
                    }
                }
                Err(Refusal::Locked(Lockout::Capped { .. })) => {
                    let mut state = lock.read_state().state;
                    throttle::unlock(&mut state);
                    lock.write_state(&state).unwrap();
                    unlocks += 1;
                }
                Err(Refusal::Locked(Lockout::Until(until))) => now = until,
                Err(Refusal::TooSoon { wait }) => now += wait,
                Err(other) => panic!("{other:?}"),
            }
            if a.result.is_ok() {
                compared += 1;
            }
            if let Some(at) = lock.read_state().state.not_before {
                now = now.max(at);
            }
        }
        let state = lock.read_state().state;
        eprintln!(
            "{compared} guesses over {} days: {accepted} accepted, {candidates} skew candidates",
            (now - NOW) / 86_400
        );
        assert_eq!(accepted, 0);
        assert_eq!(state.skew, None);
        // The throttle held the pace: 100 guesses per unlock, 10 per lockout.
        assert_eq!(unlocks, 99);
        assert!(now - NOW >= 9_000 * 900 / 10, "{} s", now - NOW);
        // 10,000 x 18/10^6 = 0.18 candidates expected.
        assert!(candidates <= 2, "{candidates} candidates");
    }
}
