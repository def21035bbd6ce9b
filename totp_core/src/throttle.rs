//! Failure counting, growing delays and lockout (RFC 4226 section 7.3,
//! NIST SP 800-63B section 5.2.2). The counters live in the login state, so
//! they hold across sessions and across parallel connections.

use crate::config::Throttle;
use crate::state::LoginState;
use std::time::Duration;

/// Clear a lockout that has run out, so the user starts again from zero.
pub fn expire_lock(state: &mut LoginState, now: u64) {
    if state.locked_until.is_some_and(|until| until <= now) {
        state.locked_until = None;
        state.failures = 0;
    }
}

/// Record a failure. Returns the delay to apply before answering.
pub fn record_failure(state: &mut LoginState, cfg: &Throttle, now: u64) -> Duration {
    state.failures = state.failures.saturating_add(1);
    state.last_failure_at = Some(now);
    if state.failures >= cfg.max_failures {
        state.locked_until = Some(now.saturating_add(cfg.lockout_seconds));
    }
    delay_after(state.failures, cfg)
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

/// Record a success: clear the failures and any lock.
pub fn record_success(state: &mut LoginState, now: u64, rhost: Option<&str>) {
    state.failures = 0;
    state.locked_until = None;
    state.last_success_at = Some(now);
    state.last_success_rhost = rhost.map(str::to_owned);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_and_expires() {
        let cfg = Throttle {
            max_failures: 3,
            lockout_seconds: 60,
            backoff_seconds: 1,
            backoff_max_seconds: 4,
        };
        let mut s = LoginState::new();
        assert_eq!(record_failure(&mut s, &cfg, 100), Duration::from_secs(1));
        assert_eq!(record_failure(&mut s, &cfg, 101), Duration::from_secs(2));
        assert_eq!(s.locked_at(101), None);
        assert_eq!(record_failure(&mut s, &cfg, 102), Duration::from_secs(4));
        assert_eq!(s.locked_at(102), Some(162));
        expire_lock(&mut s, 161);
        assert_eq!((s.failures, s.locked_until), (3, Some(162)));
        expire_lock(&mut s, 162);
        assert_eq!((s.failures, s.locked_until), (0, None));
        assert_eq!(delay_after(40, &cfg), Duration::from_secs(4));
        record_failure(&mut s, &cfg, 200);
        record_success(&mut s, 201, Some("192.0.2.1"));
        assert_eq!(
            (s.failures, s.locked_until, s.last_success_at),
            (0, None, Some(201))
        );
    }

    #[test]
    fn zero_backoff_means_no_delay() {
        let cfg = Throttle {
            max_failures: 10,
            lockout_seconds: 60,
            backoff_seconds: 0,
            backoff_max_seconds: 0,
        };
        assert_eq!(delay_after(5, &cfg), Duration::ZERO);
    }
}
