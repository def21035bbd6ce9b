//! The `otpauth://` URI that authenticator apps read from the enrollment QR code.
//!
//! The format is the "Key Uri Format" first described for Google
//! Authenticator and read by Aegis, FreeOTP and Microsoft Authenticator:
//!
//! ```text
//! otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30
//! ```
//!
//! The issuer appears twice on purpose: older apps only read the label
//! prefix, newer ones prefer the `issuer` parameter.
//!
//! Every text part is percent-encoded as RFC 3986 asks: the unreserved
//! characters (`A-Z a-z 0-9 - . _ ~`) pass and every other byte of the UTF-8
//! text becomes `%XX`. That includes `:` inside the issuer or the account
//! (the only literal `:` in the label is the separator), `@`, and space,
//! which becomes `%20` and never `+`.

use totp_core::otp::OtpParams;
use zeroize::Zeroizing;

/// Builds the `otpauth://totp/...` URI for one enrollment.
///
/// `secret_base32` is the RFC 4648 base32 secret without padding, as kept in
/// the user record. It is percent-encoded like the other parts, which leaves
/// a valid secret unchanged and keeps a malformed one from adding
/// parameters. An empty `issuer` gives a label of the account alone and no
/// `issuer` parameter.
///
/// The result holds the secret, so it is wiped from memory on drop; it is
/// built in one allocation so that no copy is left behind by a reallocation.
pub fn otpauth(
    issuer: &str,
    account: &str,
    secret_base32: &str,
    params: OtpParams,
) -> Zeroizing<String> {
    build(issuer, account, secret_base32, params, None)
}

/// The `otpauth://hotp/...&counter=N` URI of a HOTP enrollment whose app
/// starts at `counter`: the same parts as [`otpauth`], with `counter` in
/// place of `period`.
pub fn otpauth_hotp(
    issuer: &str,
    account: &str,
    secret_base32: &str,
    params: OtpParams,
    counter: u64,
) -> Zeroizing<String> {
    build(issuer, account, secret_base32, params, Some(counter))
}

fn build(
    issuer: &str,
    account: &str,
    secret_base32: &str,
    params: OtpParams,
    counter: Option<u64>,
) -> Zeroizing<String> {
    let (scheme, last, value) = match counter {
        None => ("otpauth://totp/", "&period=", params.period.to_string()),
        Some(counter) => ("otpauth://hotp/", "&counter=", counter.to_string()),
    };
    let algorithm = params.algorithm.to_string();
    let digits = params.digits.to_string();

    let issuer_len = encoded_len(issuer);
    let mut len = scheme.len()
        + encoded_len(account)
        + "?secret=".len()
        + encoded_len(secret_base32)
        + "&algorithm=".len()
        + algorithm.len()
        + "&digits=".len()
        + digits.len()
        + last.len()
        + value.len();
    if !issuer.is_empty() {
        len += issuer_len + ":".len() + "&issuer=".len() + issuer_len;
    }

    let mut uri = Zeroizing::new(String::with_capacity(len));
    uri.push_str(scheme);
    if !issuer.is_empty() {
        push_encoded(&mut uri, issuer);
        uri.push(':');
    }
    push_encoded(&mut uri, account);
    uri.push_str("?secret=");
    push_encoded(&mut uri, secret_base32);
    if !issuer.is_empty() {
        uri.push_str("&issuer=");
        push_encoded(&mut uri, issuer);
    }
    uri.push_str("&algorithm=");
    uri.push_str(&algorithm);
    uri.push_str("&digits=");
    uri.push_str(&digits);
    uri.push_str(last);
    uri.push_str(&value);
    debug_assert_eq!(uri.len(), len, "the URI length was computed wrongly");
    uri
}

/// RFC 3986 section 2.3: the characters that never need encoding.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// The length of `text` once percent-encoded.
fn encoded_len(text: &str) -> usize {
    text.bytes()
        .map(|b| if is_unreserved(b) { 1 } else { 3 })
        .sum()
}

/// Appends `text` percent-encoded, with upper-case hex digits.
fn push_encoded(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in text.bytes() {
        if is_unreserved(byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use totp_core::otp::Algorithm;

    fn defaults() -> OtpParams {
        OtpParams::new(Algorithm::SHA1, 6, 30).unwrap()
    }

    const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

    #[test]
    fn hotp_uri_has_a_counter_and_no_period() {
        let uri = otpauth_hotp("pam_totp", "alice", SECRET, defaults(), 7);
        assert_eq!(
            uri.as_str(),
            format!(
                "otpauth://hotp/pam_totp:alice?secret={SECRET}&issuer=pam_totp&algorithm=SHA1&digits=6&counter=7"
            )
        );
    }

    #[test]
    fn plain_sha1_six_digits_thirty_seconds() {
        let uri = otpauth("pam_totp", "alice", SECRET, defaults());
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/pam_totp:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\
             &issuer=pam_totp&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn spaces_at_sign_and_colons_are_encoded() {
        let uri = otpauth("ACME Corp: Prod", "alice@db:01 west", SECRET, defaults());
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/ACME%20Corp%3A%20Prod:alice%40db%3A01%20west\
             ?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\
             &issuer=ACME%20Corp%3A%20Prod&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn non_ascii_is_encoded_as_utf8_bytes() {
        let uri = otpauth(
            "Müller & Söhne",
            "jürgen.ß~x_y-z",
            SECRET,
            OtpParams::new(Algorithm::SHA512, 8, 60).unwrap(),
        );
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/M%C3%BCller%20%26%20S%C3%B6hne:j%C3%BCrgen.%C3%9F~x_y-z\
             ?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\
             &issuer=M%C3%BCller%20%26%20S%C3%B6hne&algorithm=SHA512&digits=8&period=60"
        );
    }

    #[test]
    fn reserved_query_characters_cannot_add_parameters() {
        let uri = otpauth(
            "a?b=c&d#e/f+g",
            "%20",
            "AB=&x",
            OtpParams::new(Algorithm::SHA256, 6, 30).unwrap(),
        );
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/a%3Fb%3Dc%26d%23e%2Ff%2Bg:%2520?secret=AB%3D%26x\
             &issuer=a%3Fb%3Dc%26d%23e%2Ff%2Bg&algorithm=SHA256&digits=6&period=30"
        );
    }

    #[test]
    fn empty_issuer_leaves_the_account_alone() {
        let uri = otpauth("", "bob", SECRET, defaults());
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/bob?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\
             &algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn the_uri_is_built_in_one_allocation() {
        let uri = otpauth("Ünï cödé: x", "a b@c", SECRET, defaults());
        assert_eq!(uri.capacity(), uri.len());
    }
}
