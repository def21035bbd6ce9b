//! The JSON that `totpctl --json` prints, written by hand: flat objects of
//! strings, integers, booleans, null and string arrays need no serializer
//! crate in a setuid binary. Also the base64 of the enrollment `.jpg`.

use std::fmt::Write;

/// Builds one JSON object, keys in the order they are added.
pub struct Object {
    text: String,
}

impl Default for Object {
    fn default() -> Self {
        Self::new()
    }
}

impl Object {
    pub fn new() -> Self {
        Self::with_capacity(64)
    }

    /// For an object that holds a secret: built in one allocation of
    /// `capacity` bytes if it fits, so that no copy is left behind by a
    /// reallocation; the caller wipes the result.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut text = String::with_capacity(capacity);
        text.push('{');
        Self { text }
    }

    fn key(&mut self, key: &str) {
        if self.text.len() > 1 {
            self.text.push(',');
        }
        push_string(&mut self.text, key);
        self.text.push(':');
    }

    pub fn string(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        push_string(&mut self.text, value);
        self
    }

    pub fn opt_string(mut self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.string(key, v),
            None => {
                self.key(key);
                self.text.push_str("null");
                self
            }
        }
    }

    pub fn number(mut self, key: &str, value: u64) -> Self {
        self.key(key);
        let _ = write!(self.text, "{value}");
        self
    }

    pub fn signed(mut self, key: &str, value: i64) -> Self {
        self.key(key);
        let _ = write!(self.text, "{value}");
        self
    }

    pub fn opt_number(mut self, key: &str, value: Option<u64>) -> Self {
        match value {
            Some(v) => self.number(key, v),
            None => {
                self.key(key);
                self.text.push_str("null");
                self
            }
        }
    }

    pub fn boolean(mut self, key: &str, value: bool) -> Self {
        self.key(key);
        self.text.push_str(if value { "true" } else { "false" });
        self
    }

    /// A value that is already JSON (an array, an object).
    pub fn raw(mut self, key: &str, encoded: &str) -> Self {
        self.key(key);
        self.text.push_str(encoded);
        self
    }

    /// An array of strings.
    pub fn strings<'a>(self, key: &str, values: impl IntoIterator<Item = &'a str>) -> Self {
        let items: Vec<String> = values.into_iter().map(string).collect();
        self.raw(key, &array(&items))
    }

    pub fn finish(mut self) -> String {
        self.text.push('}');
        self.text
    }
}

/// A JSON array of already-encoded values.
pub fn array(items: &[String]) -> String {
    format!("[{}]", items.join(","))
}

/// One JSON string.
pub fn string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    push_string(&mut out, value);
    out
}

/// The document `--json` prints for a failure:
/// `{"error":{"code":"...","message":"..."}}`.
pub fn error(code: &str, message: &str) -> String {
    let inner = Object::new()
        .string("code", code)
        .string("message", message)
        .finish();
    Object::new().raw("error", &inner).finish()
}

/// Standard base64 (RFC 4648 section 4) with padding. The output is
/// returned in a zeroize-on-drop buffer: for the `.jpg` it holds the secret.
pub fn base64(data: &[u8]) -> zeroize::Zeroizing<String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = zeroize::Zeroizing::new(String::with_capacity(data.len().div_ceil(3) * 4));
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> shift & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// RFC 8259 section 7: quote, backslash and control characters escaped.
fn push_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_valid_escaped_json() {
        let o = Object::new()
            .string("user", "a\"b\\c\u{1}é")
            .number("digits", 6)
            .opt_number("activated_at", None)
            .opt_string("issuer", Some("x\ny"))
            .boolean("locked", false)
            .finish();
        assert_eq!(
            o,
            r#"{"user":"a\"b\\c\u0001é","digits":6,"activated_at":null,"issuer":"x\ny","locked":false}"#
        );
        assert_eq!(array(&[]), "[]");
        assert_eq!(array(&[o.clone(), o.clone()]), format!("[{o},{o}]"));
        assert_eq!(Object::new().finish(), "{}");
    }

    #[test]
    fn arrays_raw_values_and_errors() {
        let o = Object::new()
            .strings("codes", ["a", "b\"c"])
            .strings("none", [])
            .raw("n", "[1]")
            .finish();
        assert_eq!(o, r#"{"codes":["a","b\"c"],"none":[],"n":[1]}"#);
        assert_eq!(
            error("no_code", "no code\u{1f}"),
            r#"{"error":{"code":"no_code","message":"no code\u001f"}}"#
        );
    }

    #[test]
    fn base64_matches_rfc_4648_test_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()).as_str(), expected, "{input:?}");
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]).as_str(), "//79");
    }
}
