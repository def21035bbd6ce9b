//! What the user typed at the prompt, classified before any secret is touched.

use crate::otp::Code;
use crate::recovery;
use zeroize::Zeroizing;

/// Longest answer looked at. Anything longer is refused unread.
pub const MAX_ANSWER: usize = 512;

pub enum Answer {
    Code(Code),
    /// A recovery code as typed (normalised later, when it is checked).
    Recovery(Zeroizing<Vec<u8>>),
}

/// Why an answer was refused without checking it. The text never includes the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    Empty,
    TooLong,
    NulByte,
    NotUtf8,
    WrongLength,
    NotDigits,
}

impl Malformed {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Empty => "empty code",
            Self::TooLong => "code too long",
            Self::NulByte => "code contains a NUL byte",
            Self::NotUtf8 => "code is not valid UTF-8",
            Self::WrongLength => "code has the wrong number of digits",
            Self::NotDigits => "code is not all digits",
        }
    }
}

/// Trim surrounding whitespace; accept exactly `digits` ASCII digits, or a
/// recovery code when the record has any.
pub fn classify(raw: &[u8], digits: u8, allow_recovery: bool) -> Result<Answer, Malformed> {
    if raw.len() > MAX_ANSWER {
        return Err(Malformed::TooLong);
    }
    if raw.contains(&0) {
        return Err(Malformed::NulByte);
    }
    if std::str::from_utf8(raw).is_err() {
        return Err(Malformed::NotUtf8);
    }
    let trimmed = raw.trim_ascii();
    if trimmed.is_empty() {
        return Err(Malformed::Empty);
    }
    if let Some(code) = Code::parse(trimmed, digits) {
        return Ok(Answer::Code(code));
    }
    if allow_recovery && recovery::looks_like_code(trimmed) {
        return Ok(Answer::Recovery(Zeroizing::new(trimmed.to_vec())));
    }
    if trimmed.iter().all(u8::is_ascii_digit) {
        Err(Malformed::WrongLength)
    } else {
        Err(Malformed::NotDigits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(raw: &[u8]) -> Result<&'static str, Malformed> {
        classify(raw, 6, true).map(|a| match a {
            Answer::Code(_) => "code",
            Answer::Recovery(_) => "recovery",
        })
    }

    #[test]
    fn classifies_answers() {
        assert_eq!(kind(b"123456"), Ok("code"));
        assert_eq!(kind(b"  123456\n"), Ok("code"));
        assert_eq!(kind(b"ABCD-EFGH-JKMN-PQRS"), Ok("recovery"));
        assert_eq!(kind(b""), Err(Malformed::Empty));
        assert_eq!(kind(b"   "), Err(Malformed::Empty));
        assert_eq!(kind(b"12345"), Err(Malformed::WrongLength));
        assert_eq!(kind(b"1234567"), Err(Malformed::WrongLength));
        assert_eq!(kind(b"12a456"), Err(Malformed::NotDigits));
        assert_eq!(kind(b"123 456"), Err(Malformed::NotDigits));
        assert_eq!(kind(b"12\x003456"), Err(Malformed::NulByte));
        assert_eq!(kind(b"\xff123456"), Err(Malformed::NotUtf8));
        assert_eq!(kind(&[b'1'; 10_000]), Err(Malformed::TooLong));
        assert_eq!(kind(&[b'1'; 500]), Err(Malformed::WrongLength));
        assert!(classify(b"ABCD-EFGH-JKMN-PQRS", 6, false).is_err());
    }
}
