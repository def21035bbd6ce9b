//! Failure counting, growing delays and lockout (RFC 4226 section 7.3,
//! NIST SP 800-63B section 5.2.2). The counters live in the login state, so
//! they hold across sessions, parallel connections and killed processes.
//!
//! The model, in the order an attempt meets it:
//! - **Lockout.** `max_failures` failures in a round lock the account for
//!   `lockout_seconds`; when that runs out a new round starts.
//! - **Hard cap.** `hard_cap` consecutive failures since the last success,
//!   across rounds, lock the account until `totpctl unlock`.
//! - **Not before.** Each failure sets a time before which the next attempt
//!   is refused without being compared: the backoff, enforced by the state
//!   rather than by a sleep that a killed process would skip.
//! - **Count before compare.** [`record_failure`] is applied and written
//!   *before* the code is compared; a right code then clears it with
//!   [`record_success`]. A guess whose failure cannot be written is never
//!   compared.

use crate::config::Throttle;
use crate::state::LoginState;
use std::time::Duration;

/// Why an account refuses attempts without comparing them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lockout {
    /// Too many failures in a round: locked until this Unix time.
    Until(u64),
    /// The hard cap: locked until an administrator runs `totpctl unlock`.
    Capped { failures: u32 },
    /// A HOTP record whose login state was lost (missing, corrupt): the next
    /// counter is unknown, so no code is compared until an administrator
    /// sets it with `totpctl unlock --counter`.
    CounterUnknown,
}

impl Lockout {
    /// For the log line and `totpctl status`.
    pub fn describe(self) -> String {
        match self {
            Self::Until(until) => format!("locked out until {}", crate::time::format_utc(until)),
            Self::Capped { failures } => format!(
                "locked after {failures} consecutive failures, until an administrator runs totpctl unlock"
            ),
            Self::CounterUnknown => "the HOTP counter is unknown (the login state is missing or \
                 unreadable): refused until an administrator runs totpctl unlock --counter"
                .into(),
        }
    }

    /// For the person at the prompt.
    pub fn message(self, now: u64) -> String {
        match self {
            Self::Until(until) => format!(
                "Too many failed attempts. Try again after {} (in {} min).",
                crate::time::format_utc(until),
                until.saturating_sub(now).div_ceil(60)
            ),
            Self::Capped { .. } => "Too many failed attempts: this account is locked until an \
                 administrator unlocks it (totpctl unlock)."
                .into(),
            Self::CounterUnknown => "This account's token needs to be set up again: it is \
                 locked until an administrator unlocks it (totpctl unlock)."
                .into(),
        }
    }
}

/// Clear a lockout that has run out, so a new round starts from zero. The
/// failures since the last success stay: they count towards the hard cap.
pub fn expire_lock(state: &mut LoginState, now: u64) {
    if state.locked_until.is_some_and(|until| until <= now) {
        state.locked_until = None;
        state.failures = 0;
    }
}

/// Is the account locked at `now` (after [`expire_lock`])?
pub fn lockout(state: &LoginState, cfg: &Throttle, now: u64) -> Option<Lockout> {
    if state.failures_since_success >= cfg.hard_cap {
        return Some(Lockout::Capped {
            failures: state.failures_since_success,
        });
    }
    state.locked_at(now).map(Lockout::Until)
}

/// Seconds an attempt at `now` must still wait, if the backoff has not run out.
pub fn too_soon(state: &LoginState, now: u64) -> Option<u64> {
    state
        .not_before
        .filter(|&t| t > now)
        .map(|t| t.saturating_sub(now))
}

/// Count an attempt as a failure, before its code is compared: one more
/// failure in the round and since the last success, a lockout when one is
/// due, and the time before which the next attempt is not compared. Returns
/// the delay to apply (outside any lock) before answering a failure.
pub fn record_failure(state: &mut LoginState, cfg: &Throttle, now: u64) -> Duration {
    state.failures = state.failures.saturating_add(1);
    state.failures_since_success = state.failures_since_success.saturating_add(1);
    state.last_failure_at = Some(now);
    if state.failures >= cfg.max_failures {
        state.locked_until = Some(now.saturating_add(cfg.lockout_seconds));
    }
    let delay = delay_after(state.failures, cfg);
    state.not_before = (!delay.is_zero()).then(|| now.saturating_add(delay.as_secs()));
    delay
}

/// `backoff_seconds`, doubled for each further consecutive failure, capped.
pub fn delay_after(failures: u32, cfg: &Throttle) -> Duration {
    if failures == 0 || cfg.backoff_seconds == 0 {
        return Duration::ZERO;
    }
    let doublings = (failures - 1).min(16);
    let seconds = cfg
        .backoff_seconds
        .saturating_mul(1u64 << doublings)
        .min(cfg.backoff_max_seconds);
    Duration::from_secs(seconds)
}

/// Record a success: clear the failures, the lockout and the backoff.
pub fn record_success(state: &mut LoginState, now: u64, rhost: Option<&str>) {
    unlock(state);
    state.last_success_at = Some(now);
    state.last_success_rhost = rhost.map(str::to_owned);
}

/// What `totpctl unlock` does: forget every failure and lockout.
pub fn unlock(state: &mut LoginState) {
    state.failures = 0;
    state.failures_since_success = 0;
    state.locked_until = None;
    state.not_before = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max_failures: u32, hard_cap: u32) -> Throttle {
        Throttle {
            max_failures,
            lockout_seconds: 60,
            backoff_seconds: 1,
            backoff_max_seconds: 4,
            hard_cap,
        }
    }

    #[test]
    fn locks_after_max_failures_and_expires() {
        let cfg = cfg(3, 100);
        let mut s = LoginState::new();
        assert_eq!(record_failure(&mut s, &cfg, 100), Duration::from_secs(1));
        assert_eq!(s.not_before, Some(101));
        assert_eq!(too_soon(&s, 100), Some(1));
        assert_eq!(too_soon(&s, 101), None);
        assert_eq!(record_failure(&mut s, &cfg, 101), Duration::from_secs(2));
        assert_eq!(lockout(&s, &cfg, 101), None);
        assert_eq!(record_failure(&mut s, &cfg, 103), Duration::from_secs(4));
        assert_eq!(lockout(&s, &cfg, 103), Some(Lockout::Until(163)));
        expire_lock(&mut s, 162);
        assert_eq!((s.failures, s.locked_until), (3, Some(163)));
        expire_lock(&mut s, 163);
        assert_eq!((s.failures, s.locked_until), (0, None));
        assert_eq!(s.failures_since_success, 3, "kept across the lockout");
        assert_eq!(delay_after(40, &cfg), Duration::from_secs(4));
        record_failure(&mut s, &cfg, 200);
        record_success(&mut s, 201, Some("192.0.2.1"));
        assert_eq!(
            (
                s.failures,
                s.failures_since_success,
                s.locked_until,
                s.not_before,
                s.last_success_at
            ),
            (0, 0, None, None, Some(201))
        );
    }

    #[test]
    fn the_hard_cap_outlasts_lockouts_until_unlock() {
        let cfg = cfg(3, 7);
        let mut s = LoginState::new();
        let mut now = 1000;
        for _ in 0..7 {
            expire_lock(&mut s, now);
            assert!(!matches!(
                lockout(&s, &cfg, now),
                Some(Lockout::Capped { .. })
            ));
            if lockout(&s, &cfg, now).is_some() {
                now += 60;
                expire_lock(&mut s, now);
            }
            record_failure(&mut s, &cfg, now);
            now += 5;
        }
        now += 10_000;
        expire_lock(&mut s, now);
        assert_eq!(
            lockout(&s, &cfg, now),
            Some(Lockout::Capped { failures: 7 })
        );
        unlock(&mut s);
        assert_eq!(lockout(&s, &cfg, now), None);
    }

    #[test]
    fn zero_backoff_means_no_delay() {
        let mut cfg = cfg(10, 100);
        cfg.backoff_seconds = 0;
        cfg.backoff_max_seconds = 0;
        assert_eq!(delay_after(5, &cfg), Duration::ZERO);
        let mut s = LoginState::new();
        record_failure(&mut s, &cfg, 5);
        assert_eq!(s.not_before, None);
    }
}
