//! Resynchronising a token from two consecutive codes (`totpctl resync`),
//! as FreeIPA's `otptoken-sync` does: a HOTP token pressed far past
//! `look_ahead`, or a device whose clock is far off, is found again without
//! enrolling it anew.
//!
//! The two codes are searched for as a consecutive pair: for HOTP in the
//! [`HOTP_RANGE`] counters from the next expected one, for TOTP in the
//! [`TOTP_STEPS`] steps either side of now. A pair of 6-digit codes
//! matches by chance once in 10^12 tries, so even these wide ranges are
//! safe, which a single code's range (`look_ahead`, `window`) is not.
//!
//! The throttle is a login's (see [`crate::attempt`]): refused unread when
//! locked out or too soon; the attempt is counted as a failure and written
//! before the codes are compared; a success clears the failures. On success
//! a HOTP token's next counter follows the second code; a TOTP token's skew
//! is set to the second code's offset from now and both steps are used up.

use crate::attempt::{read_state, throttle_gate, Miss, Refusal, Rules};
use crate::otp::{self, Code, Generator, OtpType};
use crate::record::UserRecord;
use crate::state::LoginState;
use crate::store::UserLock;
use crate::throttle;
use std::time::Duration;

/// How many HOTP counters ahead of the next expected one are searched.
pub const HOTP_RANGE: u64 = 1000;

/// How many time steps either side of now are searched for TOTP: a day
/// with 30-second codes.
pub const TOTP_STEPS: u64 = 2880;

/// What a successful resynchronisation changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resynced {
    /// HOTP: the pair was at counters `first` and `first + 1`; the next
    /// expected counter is now `next`, `moved` further than before.
    Counter { first: u64, next: u64, moved: u64 },
    /// TOTP: the second code was for `step`, `skew` steps from the server's
    /// step now (positive: the device is ahead), which is now the skew.
    Skew { step: u64, skew: i64 },
}

/// The outcome of [`resync`]: the result, the state as left, and how long
/// to wait (after releasing the lock) before answering a refusal.
#[derive(Debug)]
pub struct Resync {
    pub result: Result<Resynced, Refusal>,
    pub state: LoginState,
    pub delay: Duration,
}

/// Look for `first` then `second` in `record`'s codes, under `lock`, at
/// `now`, counting the attempt like a login.
pub fn resync(
    lock: &UserLock<'_>,
    record: &UserRecord,
    first: &Code,
    second: &Code,
    now: u64,
    rules: &Rules<'_>,
) -> Resync {
    // A lost state counts every recovery code as used, as at a login, so
    // that writing this attempt brings none back.
    let mut state = read_state(lock, record, &mut None);
    if let Some(refusal) = throttle_gate(&mut state, rules, now) {
        let delay = match refusal {
            Refusal::TooSoon { wait } => Duration::from_secs(wait),
            _ => Duration::ZERO,
        };
        return Resync {
            result: Err(refusal),
            state,
            delay,
        };
    }
    // Count before compare.
    let delay = throttle::record_failure(&mut state, rules.throttle, now);
    if let Err(error) = lock.write_state(&state) {
        return Resync {
            result: Err(Refusal::NotCounted {
                error,
                looks_like: Miss::WrongCode,
            }),
            state,
            delay,
        };
    }
    let generator = Generator::new(&record.secret, record.params);
    let found = match record.kind {
        OtpType::Hotp => {
            let from = state.hotp_next.unwrap_or(0);
            let to = from.saturating_add(HOTP_RANGE);
            otp::find_consecutive(&generator, first, second, from, to).map(|at| {
                let next = at + 2;
                state.hotp_next = Some(next);
                Resynced::Counter {
                    first: at,
                    next,
                    moved: next - from,
                }
            })
        }
        OtpType::Totp => {
            let current = record.params.step_at(now);
            // Steps already used stay used: the search starts after them.
            let from = current
                .saturating_sub(TOTP_STEPS)
                .max(state.last_step.map_or(0, |s| s.saturating_add(1)));
            let to = current.saturating_add(TOTP_STEPS);
            otp::find_consecutive(&generator, first, second, from, to).map(|at| {
                let step = at + 1;
                let skew = i64::try_from(step).unwrap_or(i64::MAX)
                    - i64::try_from(current).unwrap_or(i64::MAX);
                state.last_step = Some(step);
                state.skew = (skew != 0).then_some(skew);
                state.resync_offset = None;
                state.resync_step = None;
                state.resync_at = None;
                Resynced::Skew { step, skew }
            })
        }
    };
    let Some(resynced) = found else {
        return Resync {
            result: Err(Refusal::Wrong(Miss::WrongCode)),
            state,
            delay,
        };
    };
    throttle::record_success(&mut state, now, None);
    match lock.write_state(&state) {
        Ok(()) => Resync {
            result: Ok(resynced),
            state,
            delay: Duration::ZERO,
        },
        Err(error) => Resync {
            result: Err(Refusal::NotSaved {
                error,
                looks_like: Miss::WrongCode,
            }),
            state,
            delay,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{OtpConfig, Throttle};
    use crate::names::UserName;
    use crate::otp::{Algorithm, OtpParams};
    use crate::record::Status;
    use crate::secret::SecretBytes;
    use crate::store::testing::scratch_store;
    use zeroize::Zeroizing;

    const LIMITS: Throttle = Throttle {
        max_failures: 3,
        lockout_seconds: 60,
        backoff_seconds: 0,
        backoff_max_seconds: 0,
        hard_cap: 100,
    };
    const OTP: OtpConfig = OtpConfig {
        window: 1,
        look_ahead: 10,
        resync_window: 10,
        algorithm: Algorithm::SHA1,
        digits: 6,
        period: 30,
    };
    const NOW: u64 = 1_700_000_000;

    fn record(kind: OtpType) -> UserRecord {
        UserRecord {
            status: Status::Active,
            kind,
            secret: SecretBytes::from_bytes(Zeroizing::new(b"12345678901234567890".to_vec()))
                .unwrap(),
            params: OtpParams::new(Algorithm::SHA1, 6, 30).unwrap(),
            label: None,
            issuer: None,
            created_at: None,
            activated_at: None,
            recovery: Vec::new(),
            serial: None,
        }
    }

    fn codes(record: &UserRecord, at: u64) -> (Code, Code) {
        let g = Generator::new(&record.secret, record.params);
        (g.code_at_step(at), g.code_at_step(at + 1))
    }

    #[test]
    fn a_hotp_token_far_ahead_and_a_clock_far_off() {
        let rules = Rules {
            otp: &OTP,
            throttle: &LIMITS,
        };
        let (_d, store) = scratch_store("resync");
        let user = UserName::parse(b"alice").unwrap();
        let lock = store.lock(&user).unwrap();

        let hotp = record(OtpType::Hotp);
        let (a, b) = codes(&hotp, 500);
        let done = resync(&lock, &hotp, &a, &b, NOW, &rules);
        assert_eq!(
            done.result.unwrap(),
            Resynced::Counter {
                first: 500,
                next: 502,
                moved: 502
            }
        );
        assert_eq!((done.state.hotp_next, done.state.failures), (Some(502), 0));
        // The same pair again is behind the counter now: wrong, and counted.
        let again = resync(&lock, &hotp, &a, &b, NOW, &rules);
        assert!(matches!(again.result, Err(Refusal::Wrong(_))));
        assert_eq!(lock.read_state().state.failures, 1);
        // Past the range: not found.
        let (a, b) = codes(&hotp, 502 + HOTP_RANGE + 1);
        assert!(resync(&lock, &hotp, &a, &b, NOW, &rules).result.is_err());

        let totp = record(OtpType::Totp);
        let now_step = NOW / 30;
        let (a, b) = codes(&totp, now_step - 600);
        let done = resync(&lock, &totp, &a, &b, NOW, &rules);
        assert_eq!(
            done.result.unwrap(),
            Resynced::Skew {
                step: now_step - 599,
                skew: -599
            }
        );
        assert_eq!(done.state.skew, Some(-599));
        // Steps used are never searched again.
        let (a, b) = codes(&totp, now_step - 700);
        assert!(resync(&lock, &totp, &a, &b, NOW, &rules).result.is_err());
    }

    #[test]
    fn throttled_like_a_login() {
        let rules = Rules {
            otp: &OTP,
            throttle: &LIMITS,
        };
        let (_d, store) = scratch_store("resync-throttle");
        let user = UserName::parse(b"bob").unwrap();
        let lock = store.lock(&user).unwrap();
        let hotp = record(OtpType::Hotp);
        let (wrong_a, wrong_b) = codes(&hotp, 5000);
        for _ in 0..3 {
            let r = resync(&lock, &hotp, &wrong_a, &wrong_b, NOW, &rules);
            assert!(matches!(r.result, Err(Refusal::Wrong(_))));
        }
        // Locked out: even the right pair is not compared.
        let (a, b) = codes(&hotp, 10);
        let r = resync(&lock, &hotp, &a, &b, NOW, &rules);
        assert!(matches!(r.result, Err(Refusal::Locked(_))), "{r:?}");
        assert_eq!(lock.read_state().state.hotp_next, None);
    }
}
