//! A few flat JSON objects for `status --json` and `list --json`, written by
//! hand: strings, integers, booleans and null need no serializer crate.

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
        Self {
            text: String::from("{"),
        }
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

    pub fn finish(mut self) -> String {
        self.text.push('}');
        self.text
    }
}

/// A JSON array of already-encoded values.
pub fn array(items: &[String]) -> String {
    format!("[{}]", items.join(","))
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
}
