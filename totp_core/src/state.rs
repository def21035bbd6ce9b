//! Login state, `state_dir/<user>.state`: what the module learns at each login.
//! Kept apart from the record so that a login never rewrites anything under /etc.
//!
//! The state itself is strict TOML. The files store keeps it in the two
//! slots of [`crate::store::slots`]; earlier releases wrote the bare TOML,
//! which [`LoginState::parse`] still reads (and the store converts).

use serde::{Deserialize, Serialize};
use std::fmt::{self, Write as _};

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
    ///
    /// Written by hand rather than through the toml serializer: every login
    /// writes the state twice (the failure first, then the outcome), and the
    /// serializer's document model cost more than the rest of the login's
    /// own work. The text is the serializer's, byte for byte (a test
    /// compares the two), so [`LoginState::parse`] and earlier releases read it.
    pub fn to_toml(&self) -> Result<String, String> {
        let mut out = String::with_capacity(256);
        let mut line = |key: &str, value: &dyn fmt::Display| {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{key} = {value}");
        };
        line("version", &self.version);
        let fields_u64 =
            |name: &'static str, v: Option<u64>| -> Result<Option<(&'static str, i64)>, String> {
                v.map(|v| {
                    i64::try_from(v).map(|v| (name, v)).map_err(|_| {
                        format!(
                        "the login state cannot be written: {name} {v} is out of range for TOML"
                    )
                    })
                })
                .transpose()
            };
        if let Some((k, v)) = fields_u64("last_step", self.last_step)? {
            line(k, &v);
        }
        line("failures", &self.failures);
        if let Some((k, v)) = fields_u64("hotp_next", self.hotp_next)? {
            line(k, &v);
        }
        for (k, v) in [("skew", self.skew), ("resync_offset", self.resync_offset)] {
            if let Some(v) = v {
                line(k, &v);
            }
        }
        for (k, v) in [
            ("resync_step", self.resync_step),
            ("resync_at", self.resync_at),
        ] {
            if let Some((k, v)) = fields_u64(k, v)? {
                line(k, &v);
            }
        }
        line("failures_since_success", &self.failures_since_success);
        for (k, v) in [
            ("not_before", self.not_before),
            ("last_failure_at", self.last_failure_at),
            ("locked_until", self.locked_until),
            ("last_success_at", self.last_success_at),
        ] {
            if let Some((k, v)) = fields_u64(k, v)? {
                line(k, &v);
            }
        }
        if let Some(rhost) = &self.last_success_rhost {
            line("last_success_rhost", &TomlString(rhost));
        }
        if !self.used_recovery.is_empty() {
            line("used_recovery", &TomlArray(&self.used_recovery));
        }
        Ok(out)
    }

    /// Is the account locked at `now`?
    pub fn locked_at(&self, now: u64) -> Option<u64> {
        self.locked_until.filter(|&until| until > now)
    }
}

/// A TOML basic string: `"`, `\\` and control characters escaped, as the
/// toml serializer writes them.
struct TomlString<'a>(&'a str);

impl fmt::Display for TomlString<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\u{8}' => f.write_str("\\b")?,
                '\t' => f.write_str("\\t")?,
                '\n' => f.write_str("\\n")?,
                '\u{c}' => f.write_str("\\f")?,
                '\r' => f.write_str("\\r")?,
                c if c.is_control() => write!(f, "\\u{:04X}", u32::from(c))?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

/// A TOML array of integers on one line: `[1, 4]`.
struct TomlArray<'a>(&'a [u32]);

impl fmt::Display for TomlArray<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('[')?;
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{v}")?;
        }
        f.write_char(']')
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

    /// The hand-written text is the toml serializer's, for states of every
    /// shape, and reads back as the same state; a remote host with quotes,
    /// backslashes, control characters or non-ASCII reads back unchanged.
    #[test]
    // Random values cut to the fields' widths.
    #[allow(clippy::cast_possible_truncation)]
    fn the_written_text_is_the_serializers_and_reads_back() {
        let mut next = crate::test_numbers();
        let hosts = ["192.0.2.7", "2001:db8::1", "host-1.example.org", "", "tty1"];
        for _ in 0..2000 {
            let r: Vec<u64> = (0..16).map(|_| next()).collect();
            let pick_at = |i: usize, max: u64| (r[i] % 3 != 0).then_some(r[i] / 3 % max);
            let big = i64::MAX as u64;
            let s = LoginState {
                version: FORMAT_VERSION,
                last_step: pick_at(0, big),
                failures: (r[13] % 50) as u32,
                hotp_next: pick_at(1, big),
                skew: pick_at(2, 40).map(|v| v as i64 - 20),
                resync_offset: pick_at(3, 40).map(|v| v as i64 - 20),
                resync_step: pick_at(4, big),
                resync_at: pick_at(5, big),
                failures_since_success: r[14] as u32,
                not_before: pick_at(6, big),
                last_failure_at: pick_at(7, 2_000_000_000),
                locked_until: pick_at(8, big),
                last_success_at: pick_at(9, 2_000_000_000),
                last_success_rhost: pick_at(10, hosts.len() as u64)
                    .map(|i| hosts[i as usize].to_string()),
                used_recovery: (0..r[15] % 11).map(|i| i as u32 * 3).collect(),
            };
            let ours = s.to_toml().unwrap();
            assert_eq!(ours, toml::to_string(&s).unwrap());
            assert_eq!(LoginState::parse(&ours).unwrap(), s);
        }
        for rhost in [
            "a\"b",
            "back\\slash",
            "it's",
            "tab\there",
            "nl\nand\rcr",
            "\u{0}\u{1f}\u{7f}\u{85}",
            "Zoë.example",
            "\u{8}\u{c}",
            "'\"'",
            "\\u0041",
        ] {
            let s = LoginState {
                last_success_rhost: Some(rhost.into()),
                ..LoginState::new()
            };
            let text = s.to_toml().unwrap();
            assert_eq!(
                LoginState::parse(&text).unwrap(),
                s,
                "{rhost:?} as {text:?}"
            );
        }
    }

    #[test]
    fn a_number_toml_cannot_hold_is_an_error_not_an_empty_state() {
        let mut s = LoginState::new();
        s.failures = 7;
        s.locked_until = Some(u64::MAX);
        assert!(s.to_toml().is_err());
        for field in [
            |s: &mut LoginState| s.last_step = Some(1 << 63),
            |s: &mut LoginState| s.hotp_next = Some(1 << 63),
            |s: &mut LoginState| s.resync_step = Some(1 << 63),
            |s: &mut LoginState| s.resync_at = Some(1 << 63),
            |s: &mut LoginState| s.not_before = Some(1 << 63),
            |s: &mut LoginState| s.last_failure_at = Some(1 << 63),
            |s: &mut LoginState| s.last_success_at = Some(1 << 63),
        ] {
            let mut s = LoginState::new();
            field(&mut s);
            assert!(s.to_toml().is_err());
        }
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
