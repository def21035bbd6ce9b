//! The user record, `users_dir/<user>.toml`: the secret and its parameters.
//! Written only by totpctl; read by the module on every login.

use crate::otp::{self, Algorithm, OtpParams, OtpType};
use crate::recovery::{self, RecoveryHash};
use crate::secret::SecretBytes;
use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::Zeroizing;

pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created by `totpctl enroll`, not yet confirmed with a code from the app.
    Pending,
    /// Confirmed: logins require a code.
    Active,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Active => "active",
        })
    }
}

/// The on-disk shape, exactly: every key, nothing more.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordFile {
    version: u32,
    status: Status,
    /// `totp` (the default, so records written before HOTP stay valid) or `hotp`.
    #[serde(rename = "type", default, skip_serializing_if = "is_totp")]
    kind: OtpType,
    /// Absent only in a public record (see [`UserRecord::parse_public`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<Zeroizing<String>>,
    algorithm: Algorithm,
    digits: u8,
    /// Required for TOTP; a HOTP record has none (its counter is in the state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    activated_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    recovery: Vec<RecoveryHash>,
    /// A hardware token's serial number, from the vendor's seed file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    serial: Option<String>,
}

fn check_version(file: &RecordFile) -> Result<(), String> {
    if file.version == FORMAT_VERSION {
        return Ok(());
    }
    Err(format!(
        "unsupported version {} (this build reads version {FORMAT_VERSION})",
        file.version
    ))
}

fn is_totp(kind: &OtpType) -> bool {
    *kind == OtpType::Totp
}

/// The period a HOTP record's [`OtpParams`] carry; it is never used (a HOTP
/// code's counter comes from the state) and never written.
const HOTP_UNUSED_PERIOD: u64 = 30;

/// A parsed, validated user record.
pub struct UserRecord {
    pub status: Status,
    /// TOTP or HOTP. For HOTP, `params.period` means nothing, and the next
    /// counter is in the login state (`hotp_next`), never here: a login
    /// never writes the record.
    pub kind: OtpType,
    pub secret: SecretBytes,
    pub params: OtpParams,
    /// Account label shown in the authenticator app.
    pub label: Option<String>,
    pub issuer: Option<String>,
    /// Unix seconds.
    pub created_at: Option<u64>,
    pub activated_at: Option<u64>,
    pub recovery: Vec<RecoveryHash>,
    /// A hardware token's serial number (from a seed file), so an admin can
    /// find the token's owner; shown by `status` and `list`.
    pub serial: Option<String>,
}

/// Shows everything but the secret.
impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("status", &self.status)
            .field("kind", &self.kind)
            .field(
                "secret",
                &format_args!("<{} bits, redacted>", self.secret.bits()),
            )
            .field("params", &self.params)
            .field("label", &self.label)
            .field("issuer", &self.issuer)
            .field("created_at", &self.created_at)
            .field("activated_at", &self.activated_at)
            .field("recovery", &self.recovery.len())
            .field("serial", &self.serial)
            .finish()
    }
}

impl UserRecord {
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: RecordFile = toml::from_str(text).map_err(|e| describe_toml_error(&e, text))?;
        check_version(&file)?;
        let secret = match &file.secret {
            Some(secret) => SecretBytes::from_base32(secret).map_err(|e| e.to_string())?,
            // Worded as the TOML parser words a missing key (at the table's start).
            None => return Err("line 1: missing field `secret`".into()),
        };
        Self::from_file(file, secret)
    }

    /// A record without its secret, as a directory that checks the codes
    /// itself keeps it for the hosts (`ldap.verify = "directory"`): the same
    /// TOML with no `secret` key. Its [`UserRecord::secret`] is the
    /// stand-in of [`SecretBytes::held_by_directory`]: codes are compared by
    /// the directory, never with it.
    pub fn parse_public(text: &str) -> Result<Self, String> {
        let file: RecordFile = toml::from_str(text).map_err(|e| describe_toml_error(&e, text))?;
        if file.secret.is_some() {
            return Err("a public record holds no secret, and this one does".into());
        }
        let secret = SecretBytes::held_by_directory().map_err(|e| e.to_string())?;
        Self::from_file(file, secret)
    }

    fn from_file(file: RecordFile, secret: SecretBytes) -> Result<Self, String> {
        check_version(&file)?;
        let period = match (file.kind, file.period) {
            (OtpType::Totp, Some(period)) => period,
            (OtpType::Totp, None) => return Err("missing field `period`".into()),
            (OtpType::Hotp, None) => HOTP_UNUSED_PERIOD,
            (OtpType::Hotp, Some(_)) => {
                return Err(
                    "period is for type = \"totp\"; a type = \"hotp\" record has none".into(),
                )
            }
        };
        let params = OtpParams::new(file.algorithm, file.digits, period)?;
        check_label("label", file.label.as_deref())?;
        check_label("issuer", file.issuer.as_deref())?;
        check_label("serial", file.serial.as_deref())?;
        recovery::validate(&file.recovery)?;
        Ok(Self {
            status: file.status,
            kind: file.kind,
            secret,
            params,
            label: file.label,
            issuer: file.issuer,
            created_at: file.created_at,
            activated_at: file.activated_at,
            recovery: file.recovery,
            serial: file.serial,
        })
    }

    /// The TOML text to store. It holds the secret, so it is wiped on drop.
    /// A record whose secret the directory holds has none to give: error.
    pub fn to_toml(&self) -> Result<Zeroizing<String>, String> {
        if self.secret.is_held_by_directory() {
            return Err("the secret of this record is held by the directory; \
                        only its public part can be written"
                .into());
        }
        self.serialise(Some(self.secret.to_base32()))
    }

    /// The record without its secret, for [`UserRecord::parse_public`].
    pub fn to_public_toml(&self) -> Result<String, String> {
        self.serialise(None).map(|text| text.to_string())
    }

    fn serialise(&self, secret: Option<Zeroizing<String>>) -> Result<Zeroizing<String>, String> {
        let file = RecordFile {
            version: FORMAT_VERSION,
            status: self.status,
            kind: self.kind,
            secret,
            algorithm: self.params.algorithm,
            digits: self.params.digits,
            period: (self.kind == OtpType::Totp).then_some(self.params.period),
            label: self.label.clone(),
            issuer: self.issuer.clone(),
            created_at: self.created_at,
            activated_at: self.activated_at,
            recovery: self.recovery.clone(),
            serial: self.serial.clone(),
        };
        toml::to_string(&file)
            .map(Zeroizing::new)
            .map_err(|e| format!("cannot serialise record: {e}"))
    }

    pub fn otp_params(&self) -> OtpParams {
        self.params
    }
}

/// The longest label or issuer, in bytes.
pub const MAX_LABEL_BYTES: usize = 256;

/// Unicode bidirectional controls and other invisible format characters:
/// they make an app, a terminal or the panel show text other than what is
/// stored (`"\u{202E}tsoh"` is shown as "host").
fn is_bidi_or_format(c: char) -> bool {
    matches!(
        c,
        '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// The rule for a label or an issuer in a record: at most 256 bytes, no
/// control characters, no bidi or format characters. A record that breaks
/// it is refused as corrupt.
///
/// A colon is allowed here: it is harmless in the file, and records written
/// before [`check_new_issuer`] may hold one. Only a new enrollment's otpauth
/// URI suffers from it.
fn check_label(what: &str, value: Option<&str>) -> Result<(), String> {
    let Some(v) = value else {
        return Ok(());
    };
    if v.len() > MAX_LABEL_BYTES {
        return Err(format!(
            "{what} is {} bytes long, more than {MAX_LABEL_BYTES}",
            v.len()
        ));
    }
    if let Some(c) = v.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{what} contains the control character U+{:04X}",
            u32::from(c)
        ));
    }
    if let Some(c) = v.chars().find(|&c| is_bidi_or_format(c)) {
        return Err(format!(
            "{what} contains the invisible bidi or format character U+{:04X}, which makes apps \
             show other text than is stored",
            u32::from(c)
        ));
    }
    Ok(())
}

/// The rule for an issuer given to a new enrollment: the record's rule, and
/// no colon. In an otpauth URI the label is `ISSUER:ACCOUNT`; the Key URI
/// format treats an encoded colon (`%3A`) as a second separator, and older
/// apps reject such a URI or show a wrong name.
pub fn check_new_issuer(issuer: &str) -> Result<(), String> {
    check_label("the issuer", Some(issuer))?;
    if issuer.contains(':') {
        return Err(
            "the issuer contains a colon (:), which the otpauth URI uses to separate \
                    the issuer from the account name"
                .into(),
        );
    }
    Ok(())
}

/// Describe a TOML error without echoing the offending text: the parser's own
/// message quotes source lines and values, and a record's values include the secret.
/// Only messages that name keys or enum variants (never secret) are kept verbatim.
pub fn describe_toml_error(err: &toml::de::Error, text: &str) -> String {
    let line = err.span().map(|span| {
        text.as_bytes()[..span.start.min(text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    });
    let message = err.message();
    // "policy." starts the messages of pam_totp's own value checks, which quote no value.
    let safe = [
        "unknown field",
        "missing field",
        "unknown variant",
        "duplicate key",
        "policy.",
    ];
    let shown = if safe.iter().any(|p| message.starts_with(p)) {
        // These quote a key or a variant name, which may hold a control
        // character (`status = "p\nding"`): escape it, so that an error is
        // always one line.
        message
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else if message.starts_with("invalid type") {
        "a value has the wrong type".to_owned()
    } else if message.starts_with("invalid value") {
        "a value is out of range".to_owned()
    } else {
        "not valid TOML".to_owned()
    };
    match line {
        Some(n) => format!("line {n}: {shown}"),
        None => shown,
    }
}

/// Validate a digit count from user input (CLI).
pub fn parse_digits(text: &str) -> Result<u8, String> {
    text.parse::<u8>()
        .map_err(|_| format!("digits must be 6 or 8, not '{text}'"))
        .and_then(otp::check_digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "version = 1\nstatus = \"active\"\nsecret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\n";

    #[test]
    fn parses_the_minimal_record() {
        let r = UserRecord::parse(MINIMAL).unwrap();
        assert_eq!(r.status, Status::Active);
        assert_eq!(r.secret.as_bytes(), b"12345678901234567890");
        assert_eq!(r.params, OtpParams::new(Algorithm::SHA1, 6, 30).unwrap());
        assert!(r.recovery.is_empty() && r.label.is_none() && r.created_at.is_none());
    }

    #[test]
    fn a_hotp_record_has_a_type_and_no_period() {
        assert_eq!(UserRecord::parse(MINIMAL).unwrap().kind, OtpType::Totp);
        let explicit = MINIMAL.replace("version = 1\n", "version = 1\ntype = \"totp\"\n");
        assert_eq!(UserRecord::parse(&explicit).unwrap().kind, OtpType::Totp);
        let hotp = MINIMAL
            .replace("version = 1\n", "version = 1\ntype = \"hotp\"\n")
            .replace("period = 30\n", "");
        let r = UserRecord::parse(&hotp).unwrap();
        assert_eq!(r.kind, OtpType::Hotp);
        let text = r.to_toml().unwrap();
        assert!(
            text.contains("type = \"hotp\"") && !text.contains("period"),
            "{}",
            *text
        );
        assert_eq!(UserRecord::parse(&text).unwrap().kind, OtpType::Hotp);
        // A TOTP record is written as before: no type key.
        let totp = UserRecord::parse(MINIMAL).unwrap().to_toml().unwrap();
        assert!(!totp.contains("type") && totp.contains("period = 30"));
        let with_period = MINIMAL.replace("version = 1\n", "version = 1\ntype = \"hotp\"\n");
        let err = UserRecord::parse(&with_period).unwrap_err();
        assert!(err.contains("period is for type = \"totp\""), "{err}");
        let bad = MINIMAL.replace("version = 1\n", "version = 1\ntype = \"HOTP\"\n");
        assert!(UserRecord::parse(&bad)
            .unwrap_err()
            .contains("unknown variant"));
    }

    #[test]
    fn round_trips_every_key() {
        let text = format!(
            "{MINIMAL}label = \"alice\"\nissuer = \"Example Host\"\ncreated_at = 1700000000\nactivated_at = 1700000060\n\n[[recovery]]\nid = 1\nsalt = \"{}\"\nhash = \"{}\"\n",
            "01".repeat(16),
            "ab".repeat(32)
        )
        .replace("SHA1", "SHA512")
        .replace("digits = 6", "digits = 8")
        .replace("period = 30", "period = 60")
        .replace("active", "pending");
        let r = UserRecord::parse(&text).unwrap();
        assert_eq!(r.status, Status::Pending);
        assert_eq!(r.params, OtpParams::new(Algorithm::SHA512, 8, 60).unwrap());
        assert_eq!(r.label.as_deref(), Some("alice"));
        assert_eq!(r.issuer.as_deref(), Some("Example Host"));
        assert_eq!(
            (r.created_at, r.activated_at),
            (Some(1_700_000_000), Some(1_700_000_060))
        );
        assert_eq!(r.recovery.len(), 1);
        let again = UserRecord::parse(&r.to_toml().unwrap()).unwrap();
        assert_eq!(again.secret.as_bytes(), r.secret.as_bytes());
        assert_eq!(again.recovery, r.recovery);
        assert_eq!(again.label, r.label);
    }

    #[test]
    fn rejects_every_bad_value_without_echoing_the_secret() {
        let cases: &[(&str, &str, &str)] = &[
            ("version = 1", "version = 2", "unsupported version 2"),
            (
                "status = \"active\"",
                "status = \"enabled\"",
                "unknown variant",
            ),
            (
                "algorithm = \"SHA1\"",
                "algorithm = \"MD5\"",
                "unknown variant",
            ),
            (
                "algorithm = \"SHA1\"",
                "algorithm = \"sha1\"",
                "unknown variant",
            ),
            ("digits = 6", "digits = 7", "digits must be 6 or 8"),
            ("digits = 6", "digits = \"six\"", "wrong type"),
            ("period = 30", "period = 45", "period must be 30 or 60"),
            ("period = 30", "period = -30", "line 6"),
            (
                "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
                "GEZDGNBVGY3TQOJ1GEZDGNBVGY3TQOJQ",
                "not valid base32",
            ),
            (
                "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
                "GEZDGNBV",
                "fewer than the minimum",
            ),
            (
                "secret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"",
                "secret = GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
                "line 3: not valid TOML",
            ),
            (
                "secret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"",
                "secret = 123456789012",
                "line 3: a value has the wrong type",
            ),
            (
                "period = 30",
                "period = 30\ncolour = \"blue\"",
                "unknown field `colour`",
            ),
            ("period = 30\n", "", "missing field `period`"),
        ];
        for (from, to, expected) in cases {
            let text = MINIMAL.replace(from, to);
            assert_ne!(text, MINIMAL, "case {to} did not change the record");
            let err = UserRecord::parse(&text)
                .err()
                .unwrap_or_else(|| panic!("{to} parsed"));
            assert!(err.contains(expected), "{to}: got {err}");
            assert!(
                !err.contains("GEZDGNBV") && !err.contains("123456789012"),
                "{to}: leaked in {err}"
            );
        }
        assert!(UserRecord::parse("").is_err());
        assert!(UserRecord::parse("\u{0}garbage").is_err());
        let ctl = MINIMAL.to_owned() + "label = \"a\\u0007b\"\n";
        assert!(UserRecord::parse(&ctl).unwrap_err().contains("control"));
    }

    /// Found by the record fuzzer: an unknown variant with a newline in it
    /// made a two-line error.
    #[test]
    fn an_error_quoting_a_value_is_one_line() {
        let text = MINIMAL.replace("status = \"active\"", "status = \"p\\nding\"");
        let err = UserRecord::parse(&text).unwrap_err();
        assert!(!err.contains('\n'), "{err:?}");
        assert!(err.contains("unknown variant `p\\u{a}ding`"), "{err:?}");
    }

    #[test]
    fn labels_and_issuers_say_what_is_wrong() {
        let long = "x".repeat(MAX_LABEL_BYTES + 1);
        let cases: &[(&str, &str)] = &[
            (&long, "is 257 bytes long, more than 256"),
            ("a\u{7}b", "control character U+0007"),
            ("a\nb", "control character U+000A"),
            ("a\u{85}b", "control character U+0085"),
            ("\u{202E}tsoh", "bidi or format character U+202E"),
            ("a\u{202A}b", "U+202A"),
            ("a\u{2066}b", "U+2066"),
            ("a\u{2069}b", "U+2069"),
            ("a\u{200E}b", "U+200E"),
            ("a\u{200F}b", "U+200F"),
            ("a\u{061C}b", "U+061C"),
        ];
        for (key, what) in [("label", "label"), ("issuer", "issuer")] {
            for (value, expected) in cases {
                let text = format!("{MINIMAL}{key} = {}\n", toml_string(value));
                let err = UserRecord::parse(&text).unwrap_err();
                assert!(err.starts_with(what), "{value:?}: {err}");
                assert!(err.contains(expected), "{value:?}: {err}");
            }
        }
        for (value, expected) in cases {
            let err = check_new_issuer(value).unwrap_err();
            assert!(err.contains(expected), "{value:?}: {err}");
        }
        // Allowed: the longest, Unicode text, and (in a stored record) a colon.
        for ok in [
            "x".repeat(MAX_LABEL_BYTES),
            "Müller & Söhne".into(),
            "שלום".into(),
            "ACME Corp: Prod".into(),
        ] {
            let text = format!("{MINIMAL}issuer = {}\nlabel = {0}\n", toml_string(&ok));
            assert!(UserRecord::parse(&text).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn a_new_issuer_has_no_colon() {
        for bad in ["a:b", ":", "ACME Corp: Prod", "x\u{FF1A}:"] {
            let err = check_new_issuer(bad).unwrap_err();
            assert!(err.contains("colon (:)"), "{bad:?}: {err}");
        }
        for ok in [
            "pam_totp",
            "Test Host",
            "host.example.org",
            "Müller & Söhne",
            "שלום",
        ] {
            assert_eq!(check_new_issuer(ok), Ok(()), "{ok:?}");
        }
        assert!(check_new_issuer("a\u{202E}b").is_err());
        assert!(check_new_issuer(&"x".repeat(257)).is_err());
    }

    /// `value` as a TOML basic string, every non-ASCII character escaped.
    fn toml_string(value: &str) -> String {
        let mut out = String::from("\"");
        for c in value.chars() {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                out.push(c);
            } else {
                out.push_str(&format!("\\U{:08X}", u32::from(c)));
            }
        }
        out.push('"');
        out
    }
}
