//! A small JSON reader for the `--json` tests: parse totpctl's output (so
//! that it is proved to be valid JSON), write it back in the same compact
//! form (so that the exact bytes are compared), and mask the values that
//! change from run to run (times, secrets, codes) for snapshots.

use super::Run;
use std::fmt::Write;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Integers only: totpctl prints no other numbers.
    Number(u64),
    String(String),
    Array(Vec<Value>),
    /// Keys in the order printed.
    Object(Vec<(String, Value)>),
}

impl Value {
    /// Parse exactly one JSON document (no trailing bytes).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        if p.i != p.s.len() {
            return Err(format!("trailing bytes at {}", p.i));
        }
        Ok(v)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Self::Object(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn str(&self, key: &str) -> &str {
        match self.get(key) {
            Some(Self::String(s)) => s,
            other => panic!("{key} is not a string: {other:?}"),
        }
    }

    pub fn strings(&self, key: &str) -> Vec<String> {
        match self.get(key) {
            Some(Self::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Self::String(s) => s.clone(),
                    other => panic!("{key} holds {other:?}"),
                })
                .collect(),
            other => panic!("{key} is not an array: {other:?}"),
        }
    }

    /// Replace the value of every `key` (at any depth; in an array, each
    /// element) with the string `placeholder`.
    pub fn mask(&mut self, key: &str, placeholder: &str) {
        match self {
            Self::Object(items) => {
                for (k, v) in items {
                    if k == key {
                        match v {
                            Self::Array(elements) => {
                                for e in elements {
                                    *e = Self::String(placeholder.into());
                                }
                            }
                            _ => *v = Self::String(placeholder.into()),
                        }
                    } else {
                        v.mask(key, placeholder);
                    }
                }
            }
            Self::Array(items) => items.iter_mut().for_each(|v| v.mask(key, placeholder)),
            _ => {}
        }
    }

    /// Compact JSON, as totpctl writes it.
    pub fn write(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out);
        out
    }

    fn write_to(&self, out: &mut String) {
        match self {
            Self::Null => out.push_str("null"),
            Self::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Self::Number(n) => write!(out, "{n}").unwrap(),
            Self::String(s) => write_string(out, s),
            Self::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_to(out);
                }
                out.push(']');
            }
            Self::Object(items) => {
                out.push('{');
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(out, k);
                    out.push(':');
                    v.write_to(out);
                }
                out.push('}');
            }
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => write!(out, "\\u{:04x}", c as u32).unwrap(),
            c => out.push(c),
        }
    }
    out.push('"');
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at {}", b as char, self.i))
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Value, String> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(format!("bad literal at {}", self.i))
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some(b'n') => self.literal("null", Value::Null),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'"') => self.string().map(Value::String),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::Array(items));
                        }
                        _ => return Err(format!("bad array at {}", self.i)),
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut items = Vec::new();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(Value::Object(items));
                }
                loop {
                    let k = self.string()?;
                    self.expect(b':')?;
                    items.push((k, self.value()?));
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Value::Object(items));
                        }
                        _ => return Err(format!("bad object at {}", self.i)),
                    }
                }
            }
            Some(b'0'..=b'9') => {
                let start = self.i;
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.i += 1;
                }
                let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap();
                digits
                    .parse()
                    .map(Value::Number)
                    .map_err(|e| format!("{e} at {start}"))
            }
            _ => Err(format!("unexpected byte at {}", self.i)),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            let b = self.peek().ok_or("unterminated string")?;
            self.i += 1;
            match b {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let e = self.peek().ok_or("unterminated escape")?;
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let hex = std::str::from_utf8(&self.s[self.i..self.i + 4])
                                .map_err(|e| e.to_string())?;
                            self.i += 4;
                            let n = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                            char::from_u32(n).ok_or("surrogate escape")?
                        }
                        _ => return Err(format!("bad escape at {}", self.i)),
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                b if b < 0x20 => return Err(format!("raw control byte at {}", self.i - 1)),
                b => out.push(b),
            }
        }
    }
}

/// totpctl's stdout under `--json`: exactly one line holding one JSON
/// document, byte for byte as [`Value::write`] writes it.
pub fn parse_output(stdout: &str) -> Value {
    let line = stdout
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("no final newline: {stdout:?}"));
    assert!(!line.contains('\n'), "more than one line: {stdout:?}");
    let value = Value::parse(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert_eq!(value.write(), line, "not in compact form");
    value
}

/// Standard base64 with padding, strictly.
pub fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    assert_eq!(text.len() % 4, 0, "base64 length {}", text.len());
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for chunk in text.as_bytes().chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&b| b == b'=').count();
        assert!(pad <= 2, "bad padding");
        let mut n = 0u32;
        for &b in &chunk[..4 - pad] {
            let v = ALPHABET
                .iter()
                .position(|&a| a == b)
                .unwrap_or_else(|| panic!("not base64: {:?}", b as char));
            n = n << 6 | u32::try_from(v).unwrap();
        }
        n <<= 6 * u32::try_from(pad).unwrap();
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    out
}

/// A failure under `--json`: exactly the error document on stdout, the same
/// message on stderr as without --json, and the exit status.
pub fn assert_error(run: &Run, exit: i32, code: &str, message: &str) {
    let expected = format!(
        "{{\"error\":{{\"code\":\"{code}\",\"message\":{}}}}}\n",
        Value::String(message.into()).write()
    );
    assert_eq!(run.stdout, expected, "{run:?}");
    parse_output(&run.stdout);
    assert_eq!(run.stderr, format!("totpctl: {message}\n"), "{run:?}");
    assert_eq!(run.code, Some(exit), "{run:?}");
}
