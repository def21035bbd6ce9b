//! The user-record parser: a record that parses survives a write and a re-read
//! unchanged; a refused record's message never quotes its secret.
#![no_main]

use libfuzzer_sys::fuzz_target;
use totp_core::record::UserRecord;

/// The value of the first `secret = "..."` line, if the text has one.
fn secret_value(text: &str) -> Option<&str> {
    let start = text.find("secret")?;
    let rest = text[start + "secret".len()..].trim_start();
    let rest = rest.strip_prefix('=')?.trim_start().strip_prefix('"')?;
    rest.split('"').next()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match UserRecord::parse(text) {
        Ok(record) => {
            assert!(record.secret.bits() >= totp_core::secret::MIN_SECRET_BYTES * 8);
            let written = record.to_toml().expect("a parsed record serialises");
            let again = UserRecord::parse(&written).expect("a written record parses");
            assert_eq!(again.secret.as_bytes(), record.secret.as_bytes());
            assert_eq!(again.params, record.params);
            assert_eq!(again.status, record.status);
            assert_eq!(again.label, record.label);
            assert_eq!(again.issuer, record.issuer);
            assert_eq!(again.created_at, record.created_at);
            assert_eq!(again.activated_at, record.activated_at);
            assert_eq!(again.recovery, record.recovery);
            // Debug output is what a `debug` log could show: never the secret.
            let shown = format!("{record:?}");
            let b32 = record.secret.to_base32();
            let echoed = [&record.label, &record.issuer]
                .iter()
                .any(|v| v.as_deref().is_some_and(|v| v.contains(b32.as_str())));
            assert!(echoed || !shown.contains(b32.as_str()));
        }
        Err(e) => {
            assert!(!e.contains('\n'), "multi-line error: {e:?}");
            // Only check a value that appears once, so a key with the same
            // spelling (echoed as "unknown field `...`") is not mistaken for it.
            if let Some(secret) = secret_value(text) {
                // Base32-shaped values only: a short or lower-case value could be
                // a word of the message itself ("alid TOM" in "not valid TOML").
                let base32 = secret.len() >= 16
                    && secret
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'=');
                if base32 && text.matches(secret).count() == 1 {
                    assert!(!e.contains(secret), "error quotes the secret: {e:?}");
                }
            }
        }
    }
});
