//! `/etc/pam_totp/config.toml`: strictly parsed, every key optional with a
//! compiled-in default, an unknown key is an error.

use crate::fsio::{self, FileError, Trust};
use crate::otp::{self, Algorithm};
use crate::policy::{Unenrolled, Unprivileged};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

pub const DEFAULT_CONFIG_PATH: &str = "/etc/pam_totp/config.toml";
pub const DEFAULT_USERS_DIR: &str = "/etc/pam_totp/users";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/pam_totp";
/// NIST SP 800-63B 5.2.2: no more than 100 consecutive failures.
pub const MAX_FAILURES_CAP: u32 = 100;
pub const MAX_WINDOW: u32 = 10;
/// A year. Longer lockouts are what the hard cap is for; an unbounded one
/// could not even be written to the state (TOML integers end at i64::MAX).
pub const MAX_LOCKOUT_SECONDS: u64 = 365 * 86_400;
/// The most HOTP counters checked ahead of the next one.
pub const MAX_LOOK_AHEAD: u32 = 100;
/// The widest TOTP resynchronisation, in steps either side of now.
pub const MAX_RESYNC_WINDOW: u32 = 100;
const CONFIG_LIMIT: u64 = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub version: u32,
    pub paths: Paths,
    pub policy: Policy,
    pub otp: OtpConfig,
    pub throttle: Throttle,
    pub enroll: Enroll,
    pub store: StoreConfig,
    pub ldap: LdapConfig,
}

/// `[store]`: where records and login state live.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub backend: Backend,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// `paths.users_dir` and `paths.state_dir` on this host.
    #[default]
    Files,
    /// One entry per user in an LDAP directory shared by the fleet (`[ldap]`).
    Ldap,
}

/// `[ldap]`: the directory of `backend = "ldap"`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdapConfig {
    /// Tried in order until one answers: `ldaps://`, `ldap://` with
    /// `starttls = true`, or `ldapi://` (a local socket).
    pub uris: Vec<String>,
    /// The subtree of the user entries, `uid=USER,<base_dn>`.
    pub base_dn: String,
    /// This host's identity: reads records, writes login state only.
    pub bind_dn: String,
    pub bind_password_file: PathBuf,
    /// An identity that may write records (enroll, activate, reset,
    /// migrate); optional, and only on hosts where enrollment happens.
    pub admin_bind_dn: String,
    pub admin_bind_password_file: PathBuf,
    /// The CA certificates (PEM) that the servers' certificates must chain to.
    pub ca_file: PathBuf,
    /// Upgrade `ldap://` connections with StartTLS.
    pub starttls: bool,
    /// How long one server may take, from connecting to the last answer,
    /// before it counts as down (and the next URI is tried).
    pub timeout_ms: u64,
    /// Who computes the codes: this host, from the record's secret, or the
    /// directory (slapd's otp overlay), so that no host holds a seed.
    pub verify: Verify,
}

/// `ldap.verify`: where a code is checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verify {
    /// Every host reads the record, secret included, and computes the codes.
    #[default]
    Host,
    /// The directory checks the code at bind time (slapo-otp); the host
    /// reads no secret and keeps single use, throttling and recovery codes
    /// by compare-and-swap. Clock skew is not learned (the window applies).
    Directory,
}

impl Default for LdapConfig {
    fn default() -> Self {
        Self {
            uris: Vec::new(),
            base_dn: String::new(),
            bind_dn: String::new(),
            bind_password_file: PathBuf::new(),
            admin_bind_dn: String::new(),
            admin_bind_password_file: PathBuf::new(),
            ca_file: PathBuf::new(),
            starttls: false,
            timeout_ms: 3000,
            verify: Verify::Host,
        }
    }
}

/// The range of `ldap.timeout_ms`.
pub const LDAP_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 100..=60_000;

impl LdapConfig {
    /// Whether the section is complete and safe (checked at load time when
    /// `store.backend = "ldap"`).
    pub fn validate(&self) -> Result<(), String> {
        if self.uris.is_empty() {
            return Err("store.backend = \"ldap\" needs ldap.uris".into());
        }
        let mut needs_tls = false;
        for uri in &self.uris {
            let scheme = uri.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
            match scheme.as_deref() {
                Some("ldaps") => needs_tls = true,
                Some("ldap") if self.starttls => needs_tls = true,
                Some("ldap") => {
                    return Err(format!(
                        "ldap.uris: {uri} is plain LDAP: set ldap.starttls = true or use ldaps://"
                    ))
                }
                Some("ldapi") => {}
                _ => {
                    return Err(format!(
                        "ldap.uris: {uri} is not an ldaps://, ldap:// or ldapi:// URI"
                    ))
                }
            }
        }
        if self.bind_dn.is_empty()
            && self
                .uris
                .iter()
                .any(|u| !u.to_ascii_lowercase().starts_with("ldapi:"))
        {
            return Err(
                "ldap.bind_dn and ldap.bind_password_file are needed for ldaps:// and ldap:// \
                 (the shipped access rules show an anonymous bind nothing)"
                    .into(),
            );
        }
        if self.base_dn.trim().is_empty() {
            return Err("store.backend = \"ldap\" needs ldap.base_dn".into());
        }
        for (key, dn, file) in [
            ("ldap.bind", &self.bind_dn, &self.bind_password_file),
            (
                "ldap.admin_bind",
                &self.admin_bind_dn,
                &self.admin_bind_password_file,
            ),
        ] {
            if dn.is_empty() != file.as_os_str().is_empty() {
                return Err(format!("{key}_dn and {key}_password_file go together"));
            }
            if !file.as_os_str().is_empty() && !file.is_absolute() {
                return Err(format!("{key}_password_file must be an absolute path"));
            }
        }
        if needs_tls && !self.ca_file.is_absolute() {
            return Err("ldap.ca_file (an absolute path) is needed for TLS".into());
        }
        if !LDAP_TIMEOUT_MS.contains(&self.timeout_ms) {
            return Err(format!(
                "ldap.timeout_ms must be between {} and {}",
                LDAP_TIMEOUT_MS.start(),
                LDAP_TIMEOUT_MS.end()
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Paths {
    pub users_dir: PathBuf,
    pub state_dir: PathBuf,
    /// Where a `forward_pass` line reads its own service's stack (libpam's
    /// directory; tests point it at pam_wrapper's).
    pub pam_dir: PathBuf,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    pub unenrolled: Unenrolled,
    /// Without the privilege to read the record (a screen locker).
    pub unprivileged: Unprivileged,
    pub require_groups: Vec<String>,
    pub exempt_groups: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtpConfig {
    /// Steps accepted either side of the current one.
    pub window: u32,
    /// HOTP: counters accepted after the next expected one (RFC 4226 7.4).
    pub look_ahead: u32,
    /// TOTP: steps either side of now in which a wrong code is remembered as
    /// a clock-skew candidate (RFC 6238 section 6); 0 turns learning off.
    pub resync_window: u32,
    /// Defaults for new enrollments.
    pub algorithm: Algorithm,
    pub digits: u8,
    pub period: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Throttle {
    pub max_failures: u32,
    pub lockout_seconds: u64,
    pub backoff_seconds: u64,
    pub backoff_max_seconds: u64,
    /// Consecutive failures across lockouts after which only `totpctl unlock`
    /// opens the account.
    pub hard_cap: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Enroll {
    /// Issuer shown in the app; empty means the host name.
    pub issuer: String,
    /// Group whose members may enroll themselves when totpctl is installed setuid.
    pub self_service_group: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            version: 1,
            paths: Paths::default(),
            policy: Policy::default(),
            otp: OtpConfig::default(),
            throttle: Throttle::default(),
            enroll: Enroll::default(),
            store: StoreConfig::default(),
            ldap: LdapConfig::default(),
        }
    }
}

impl Default for Paths {
    fn default() -> Self {
        Self {
            users_dir: PathBuf::from(DEFAULT_USERS_DIR),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            pam_dir: PathBuf::from(crate::pamstack::DEFAULT_PAM_DIR),
        }
    }
}

impl Default for OtpConfig {
    fn default() -> Self {
        Self {
            window: 1,
            look_ahead: 10,
            resync_window: 10,
            algorithm: Algorithm::SHA1,
            digits: 6,
            period: 30,
        }
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            max_failures: 10,
            lockout_seconds: 900,
            backoff_seconds: 1,
            backoff_max_seconds: 30,
            hard_cap: MAX_FAILURES_CAP,
        }
    }
}

impl Default for Enroll {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            self_service_group: "totp-users".into(),
        }
    }
}

#[derive(Debug)]
pub enum ConfigError {
    File(PathBuf, FileError),
    Invalid(PathBuf, String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path, e) => write!(f, "config {}: {e}", path.display()),
            Self::Invalid(path, e) => write!(f, "config {}: {e}", path.display()),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: Self =
            toml::from_str(text).map_err(|e| crate::record::describe_toml_error(&e, text))?;
        config.validate()?;
        Ok(config)
    }

    /// Load a config file. When `required` is false (the compiled-in default path
    /// was not overridden), a missing file means the compiled-in defaults.
    pub fn load(path: &Path, required: bool) -> Result<Self, ConfigError> {
        match fsio::read_checked(path, Trust::Config, CONFIG_LIMIT) {
            Ok(text) => Self::parse(&text).map_err(|e| ConfigError::Invalid(path.into(), e)),
            Err(FileError::Missing) if !required => Ok(Self::default()),
            Err(e) => Err(ConfigError::File(path.into(), e)),
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.version != 1 {
            return Err(format!("unsupported version {} (expected 1)", self.version));
        }
        for (key, path) in [
            ("paths.users_dir", &self.paths.users_dir),
            ("paths.state_dir", &self.paths.state_dir),
            ("paths.pam_dir", &self.paths.pam_dir),
        ] {
            if !path.is_absolute() {
                return Err(format!("{key} must be an absolute path"));
            }
        }
        if self.otp.window > MAX_WINDOW {
            return Err(format!("otp.window must be at most {MAX_WINDOW}"));
        }
        if self.otp.look_ahead > MAX_LOOK_AHEAD {
            return Err(format!("otp.look_ahead must be at most {MAX_LOOK_AHEAD}"));
        }
        if self.otp.resync_window > MAX_RESYNC_WINDOW {
            return Err(format!(
                "otp.resync_window must be at most {MAX_RESYNC_WINDOW}"
            ));
        }
        otp::check_digits(self.otp.digits).map_err(|e| format!("otp.{e}"))?;
        otp::check_period(self.otp.period).map_err(|e| format!("otp.{e}"))?;
        if !(1..=MAX_FAILURES_CAP).contains(&self.throttle.max_failures) {
            return Err(format!(
                "throttle.max_failures must be between 1 and {MAX_FAILURES_CAP}"
            ));
        }
        if !(self.throttle.max_failures..=MAX_FAILURES_CAP).contains(&self.throttle.hard_cap) {
            return Err(format!(
                "throttle.hard_cap must be between throttle.max_failures ({}) and {MAX_FAILURES_CAP}",
                self.throttle.max_failures
            ));
        }
        if self.throttle.lockout_seconds > MAX_LOCKOUT_SECONDS {
            return Err(format!(
                "throttle.lockout_seconds must be at most {MAX_LOCKOUT_SECONDS} (a year); to lock \
                 until an administrator unlocks, use throttle.hard_cap"
            ));
        }
        if self.throttle.backoff_max_seconds < self.throttle.backoff_seconds {
            return Err("throttle.backoff_max_seconds is below throttle.backoff_seconds".into());
        }
        if self.throttle.backoff_max_seconds > 300 {
            return Err("throttle.backoff_max_seconds must be at most 300".into());
        }
        for (key, groups) in [
            ("policy.require_groups", &self.policy.require_groups),
            ("policy.exempt_groups", &self.policy.exempt_groups),
        ] {
            if groups
                .iter()
                .any(|g| g.is_empty() || g.chars().any(|c| c.is_control() || c.is_whitespace()))
            {
                return Err(format!("{key} holds an empty or malformed group name"));
            }
        }
        if self.store.backend == Backend::Ldap {
            self.ldap.validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        let d = Config::default();
        assert_eq!(d.policy.unenrolled, Unenrolled::Deny);
        assert_eq!(d.policy.unprivileged, Unprivileged::Helper);
        assert_eq!(d.throttle.max_failures, 10);
        assert_eq!(d.throttle.lockout_seconds, 900);
        assert_eq!(d.otp.window, 1);
        assert_eq!((d.otp.look_ahead, d.otp.resync_window), (10, 10));
        assert_eq!(d.paths.users_dir, PathBuf::from("/etc/pam_totp/users"));
    }

    #[test]
    fn parses_every_key() {
        let text = r#"
            version = 1
            [paths]
            users_dir = "/tmp/u"
            state_dir = "/tmp/s"
            [policy]
            unenrolled = "allow-until:2030-01-31"
            unprivileged = "ignore"
            require_groups = ["staff"]
            exempt_groups = ["robots", "break-glass"]
            [otp]
            window = 2
            look_ahead = 20
            resync_window = 0
            algorithm = "SHA256"
            digits = 8
            period = 60
            [throttle]
            max_failures = 5
            lockout_seconds = 60
            backoff_seconds = 0
            backoff_max_seconds = 0
            hard_cap = 50
            [enroll]
            issuer = "Example"
            self_service_group = "twofa"
        "#;
        let c = Config::parse(text).unwrap();
        assert_eq!(c.paths.users_dir, PathBuf::from("/tmp/u"));
        assert_eq!(c.paths.state_dir, PathBuf::from("/tmp/s"));
        assert_eq!(
            c.policy.unenrolled,
            Unenrolled::AllowUntil(crate::time::parse_date("2030-01-31").unwrap())
        );
        assert_eq!(c.policy.unprivileged, Unprivileged::Ignore);
        assert_eq!(c.policy.require_groups, vec!["staff"]);
        assert_eq!(c.policy.exempt_groups, vec!["robots", "break-glass"]);
        assert_eq!(
            (c.otp.window, c.otp.algorithm, c.otp.digits, c.otp.period),
            (2, Algorithm::SHA256, 8, 60)
        );
        assert_eq!((c.otp.look_ahead, c.otp.resync_window), (20, 0));
        assert_eq!(
            (c.throttle.max_failures, c.throttle.lockout_seconds),
            (5, 60)
        );
        assert_eq!(
            (c.throttle.backoff_seconds, c.throttle.backoff_max_seconds),
            (0, 0)
        );
        assert_eq!(c.throttle.hard_cap, 50);
        assert_eq!(c.enroll.issuer, "Example");
        assert_eq!(c.enroll.self_service_group, "twofa");
        assert_eq!(
            Config::parse("[policy]\nunenrolled = \"allow\"")
                .unwrap()
                .policy
                .unenrolled,
            Unenrolled::Allow
        );
    }

    #[test]
    fn rejects_every_bad_value() {
        let cases = [
            ("colour = 1", "unknown field `colour`"),
            ("[paths]\nhome = \"/x\"", "unknown field `home`"),
            ("[extra]\na = 1", "unknown field `extra`"),
            ("version = 2", "unsupported version"),
            ("[paths]\nusers_dir = \"relative\"", "absolute"),
            ("[paths]\nusers_dir = 5", "wrong type"),
            ("[policy]\nunenrolled = \"maybe\"", "unenrolled"),
            (
                "[policy]\nunenrolled = \"allow-until:2030-02-30\"",
                "unenrolled",
            ),
            (
                "[policy]\nunprivileged = \"allow\"",
                "policy.unprivileged must be",
            ),
            (
                "[policy]\nunprivileged = \"Helper\"",
                "policy.unprivileged must be",
            ),
            ("[policy]\nunprivileged = true", "wrong type"),
            ("[policy]\nrequire_groups = \"staff\"", "wrong type"),
            ("[policy]\nexempt_groups = [\"\"]", "malformed group"),
            ("[otp]\nwindow = 11", "window"),
            ("[otp]\nwindow = -1", "out of range"),
            ("[otp]\nlook_ahead = 101", "look_ahead"),
            ("[otp]\nresync_window = 101", "resync_window"),
            ("[otp]\ndigits = 7", "digits"),
            ("[otp]\nperiod = 15", "period"),
            ("[otp]\nalgorithm = \"MD5\"", "unknown variant"),
            ("[throttle]\nmax_failures = 0", "max_failures"),
            ("[throttle]\nmax_failures = 101", "max_failures"),
            (
                "[throttle]\nbackoff_seconds = 10\nbackoff_max_seconds = 5",
                "backoff",
            ),
            ("[throttle]\nbackoff_max_seconds = 301", "backoff"),
            ("[throttle]\nhard_cap = 101", "hard_cap"),
            (
                "[throttle]\nlockout_seconds = 9223372036854775807",
                "lockout_seconds must be at most 31536000",
            ),
            ("[throttle]\nmax_failures = 20\nhard_cap = 19", "hard_cap"),
            ("this is not toml", "not valid TOML"),
            ("[paths]\n[paths]", "line 2"),
            ("[store]\nbackend = \"nfs\"", "unknown variant"),
            ("[store]\nbackend = \"ldap\"", "needs ldap.uris"),
            (
                "[store]\nbackend = \"ldap\"\n[ldap]\nuris = [\"ldap://h\"]\nbase_dn = \"o=x\"",
                "plain LDAP",
            ),
            (
                "[store]\nbackend = \"ldap\"\n[ldap]\nuris = [\"http://h\"]\nbase_dn = \"o=x\"",
                "not an ldaps://",
            ),
            (
                "[store]\nbackend = \"ldap\"\n[ldap]\nuris = [\"ldaps://h\"]\nbase_dn = \"o=x\"",
                "ldap.bind_dn and ldap.bind_password_file are needed",
            ),
            (
                "[store]\nbackend = \"ldap\"\n[ldap]\nuris = [\"ldaps://h\"]\nbase_dn = \"o=x\"\nbind_dn = \"cn=h\"\nbind_password_file = \"/p\"",
                "ldap.ca_file",
            ),
            (
                "[store]\nbackend = \"ldap\"\n[ldap]\nuris = [\"ldapi:///\"]\nbase_dn = \"o=x\"\nbind_dn = \"cn=h\"",
                "go together",
            ),
            (
                "[store]\nbackend = \"ldap\"\n[ldap]\nuris = [\"ldapi:///\"]\nbase_dn = \"o=x\"\ntimeout_ms = 5",
                "timeout_ms",
            ),
        ];
        for (text, expected) in cases {
            let err = Config::parse(text).expect_err(text);
            assert!(err.contains(expected), "{text}: got {err}");
        }
    }
}
