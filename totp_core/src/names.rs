//! Which user names may become a file name under `users_dir` and `state_dir`.

use std::fmt;

/// Longest user name accepted. Linux tools stop at 32; directory services
/// can go further, so leave room without letting a name grow unbounded.
pub const MAX_USER_LEN: usize = 128;

/// A user name that is safe to use as a single path component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserName(String);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong(usize),
    NotUtf8,
    Slash,
    LeadingDot,
    Control,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "user name is empty"),
            Self::TooLong(n) => write!(f, "user name is {n} bytes long (limit {MAX_USER_LEN})"),
            Self::NotUtf8 => write!(f, "user name is not valid UTF-8"),
            Self::Slash => write!(f, "user name contains '/'"),
            Self::LeadingDot => write!(f, "user name starts with '.'"),
            Self::Control => write!(f, "user name contains control or blank characters"),
        }
    }
}

impl std::error::Error for NameError {}

impl UserName {
    /// Check raw bytes as handed over by PAM or the command line.
    pub fn parse(raw: &[u8]) -> Result<Self, NameError> {
        if raw.is_empty() {
            return Err(NameError::Empty);
        }
        if raw.len() > MAX_USER_LEN {
            return Err(NameError::TooLong(raw.len()));
        }
        let name = std::str::from_utf8(raw).map_err(|_| NameError::NotUtf8)?;
        if name.contains('/') {
            return Err(NameError::Slash);
        }
        if name.starts_with('.') {
            return Err(NameError::LeadingDot);
        }
        if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(NameError::Control);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Render untrusted bytes for a log line: printable ASCII stays, everything else
/// becomes `\xNN`, and the result is cut to a bounded length.
pub fn printable(raw: &[u8]) -> String {
    const LIMIT: usize = 64;
    let mut out = String::with_capacity(raw.len().min(LIMIT) + 8);
    for &b in raw.iter().take(LIMIT) {
        if b.is_ascii_graphic() && b != b'"' && b != b'\\' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if raw.len() > LIMIT {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in [
            "alice",
            "bob.smith",
            "svc-backup",
            "user@example.com",
            "Ärger",
        ] {
            assert_eq!(UserName::parse(name.as_bytes()).unwrap().as_str(), name);
        }
    }

    #[test]
    fn rejects_names_that_could_escape_a_directory() {
        assert_eq!(UserName::parse(b""), Err(NameError::Empty));
        assert_eq!(UserName::parse(b"a/b"), Err(NameError::Slash));
        assert_eq!(UserName::parse(b"../root"), Err(NameError::Slash));
        assert_eq!(UserName::parse(b".."), Err(NameError::LeadingDot));
        assert_eq!(UserName::parse(b".hidden"), Err(NameError::LeadingDot));
        assert_eq!(UserName::parse(b"a\nb"), Err(NameError::Control));
        assert_eq!(UserName::parse(b"a\x00b"), Err(NameError::Control));
        assert_eq!(UserName::parse(b"a b"), Err(NameError::Control));
        assert_eq!(UserName::parse(b"\xff\xfe"), Err(NameError::NotUtf8));
        assert_eq!(UserName::parse(&[b'a'; 300]), Err(NameError::TooLong(300)));
        assert!(UserName::parse(&[b'a'; MAX_USER_LEN]).is_ok());
    }

    #[test]
    fn printable_escapes_and_bounds() {
        assert_eq!(printable(b"alice"), "alice");
        assert_eq!(printable(b"a\nb\"c"), "a\\x0ab\\x22c");
        assert_eq!(printable(&[b'x'; 100]).len(), 64 + 3);
    }
}
