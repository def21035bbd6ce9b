//! Login state, `state_dir/<user>.state`: what the module learns at each login.
//! Kept apart from the record so that a login never rewrites anything under /etc.
//!
//! The state itself is strict TOML. The files store keeps it in the two
//! slots of [`crate::store::slots`]; earlier releases wrote the bare TOML,
//! which [`LoginState::parse`] still reads (and the store converts).

use serde::{Deserialize, Serialize};

pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginState {
    pub version: u32,
    /// The newest time step accepted; codes at or before it are replays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_step: Option<u64>,
    /// Failed attempts in the current round: since the last success, or
    /// since the last lockout ran out. Reaching `max_failures` locks the account.
    #[serde(default)]
    pub failures: u32,
    /// HOTP records: the next counter expected; codes for lower counters are
    /// used up. Missing means 0 (or the record is TOTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hotp_next: Option<u64>,
    /// TOTP: the learned clock skew of the user's device, in time steps
    /// (positive: the device is ahead). Codes are checked around now + skew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skew: Option<i64>,
    /// TOTP resynchronisation: a wrong code that matched the step
    /// `current + resync_offset`, outside the window but inside
    /// `resync_window`, at `resync_at` (Unix seconds). Not accepted; a next
    /// code at the same offset within two minutes is, and teaches the skew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resync_offset: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resync_step: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resync_at: Option<u64>,
    /// Consecutive failed attempts since the last success or unlock, across
    /// lockouts. Reaching the hard cap locks the account until `totpctl unlock`.
    #[serde(default)]
    pub failures_since_success: u32,
    /// Unix seconds before which no attempt is compared (the backoff after a
    /// failure). Earlier attempts are refused without looking at the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<u64>,
    /// Unix seconds of the last failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_at: Option<u64>,
    /// Unix seconds until which the account is locked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<u64>,
    /// Unix seconds and remote host of the last success (for `grace_period`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_rhost: Option<String>,
    /// Recovery code ids already used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_recovery: Vec<u32>,
}

impl LoginState {
    pub fn new() -> Self {
        Self {
            version: FORMAT_VERSION,
            ..Self::default()
        }
    }

    /// Parse a state file: the slotted form of the files store (its newest
    /// intact slot) or the bare TOML of earlier releases.
    pub fn parse(text: &str) -> Result<Self, String> {
        if crate::store::slots::is_slotted(text.as_bytes()) {
            return crate::store::slots::newest(text.as_bytes()).map(|n| n.state);
        }
        Self::parse_toml(text)
    }

    /// Parse the bare TOML of one state.
    pub fn parse_toml(text: &str) -> Result<Self, String> {
        let state: Self =
            toml::from_str(text).map_err(|e| crate::record::describe_toml_error(&e, text))?;
        if state.version != FORMAT_VERSION {
            return Err(format!("unsupported state version {}", state.version));
        }
        Ok(state)
    }

    /// The state as TOML. It fails for a number TOML cannot hold (above
    /// i64::MAX: a lockout time or HOTP counter that large). The caller must
    /// then refuse: writing an empty state instead would forget failures,
    /// the hard cap and used codes (found in review).
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|e| format!("the login state cannot be written: {e}"))
    }

    /// Is the account locked at `now`?
    pub fn locked_at(&self, now: u64) -> Option<u64> {
        self.locked_until.filter(|&until| until > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_defaults() {
        let mut s = LoginState::new();
        assert_eq!(LoginState::parse(&s.to_toml().unwrap()).unwrap(), s);
        s.last_step = Some(55_555_555);
        s.failures = 3;
        s.failures_since_success = 23;
        s.not_before = Some(1_700_000_004);
        s.last_failure_at = Some(1_700_000_000);
        s.locked_until = Some(1_700_000_900);
        s.last_success_at = Some(1_699_999_000);
        s.last_success_rhost = Some("192.0.2.7".into());
        s.used_recovery = vec![2, 5];
        s.hotp_next = Some(42);
        s.skew = Some(-3);
        s.resync_offset = Some(5);
        s.resync_step = Some(55_555_560);
        s.resync_at = Some(1_700_000_001);
        assert_eq!(LoginState::parse(&s.to_toml().unwrap()).unwrap(), s);
        assert_eq!(LoginState::parse("version = 1").unwrap(), LoginState::new());
        assert_eq!(s.locked_at(1_700_000_899), Some(1_700_000_900));
        assert_eq!(s.locked_at(1_700_000_900), None);
    }

    #[test]
    fn a_number_toml_cannot_hold_is_an_error_not_an_empty_state() {
        let mut s = LoginState::new();
        s.failures = 7;
        s.locked_until = Some(u64::MAX);
        assert!(s.to_toml().is_err());
    }

    #[test]
    fn rejects_corruption() {
        for bad in [
            "",
            "version = 2",
            "version = 1\nfailures = -1",
            "version = 1\nextra = 1",
            "\u{0}\u{0}",
            "version = 1\nlast_step = \"x\"",
            "version = 1\nhotp_next = -1",
            "version = 1\nskew = 1.5",
        ] {
            assert!(LoginState::parse(bad).is_err(), "{bad:?}");
        }
    }
}
