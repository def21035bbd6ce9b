//! The CSV files of `totpctl import-tokens`, as vendors deliver them:
//! RFC 4180 (quoted fields, `""` inside quotes, CRLF, a UTF-8 byte-order
//! mark), with or without a header line.
//!
//! Without a header the columns are `user,seed,type,digits,period_or_counter`
//! and an optional sixth, `algorithm`. With a header the columns are found by
//! name, in any order, so the Entra ID (Azure MFA) file that Token2 and
//! others ship imports as delivered:
//! `upn,serial number,secret key,time interval,manufacturer,model`
//! (base32 seeds, TOTP, SHA1, 6 digits). Other names: `user`/`upn`,
//! `seed`/`secret`/`secret key`, `type`, `digits`, `period`/`time interval`,
//! `counter`, `period_or_counter`, `algorithm`/`hash`, `serial`/`serial
//! number`; `manufacturer`, `model` and `comment` are read and left.
//!
//! Errors name the line (of the file, counting every line) and the column,
//! never a seed. The fields are wiped when dropped.

use super::batch::Token;
use crate::cli::SeedFormat;
use totp_core::names::printable;
use totp_core::otp::{Algorithm, OtpType};
use totp_core::secret::SecretBytes;
use zeroize::Zeroizing;

/// One record: the line it starts on, and its fields (wiped on drop).
struct Record {
    line: usize,
    fields: Vec<Zeroizing<String>>,
}

/// Split `text` into RFC 4180 records. A byte-order mark is dropped, blank
/// lines and lines starting with `#` (outside quotes) are skipped, fields
/// are trimmed of surrounding blanks unless quoted.
fn records(text: &str) -> Result<Vec<Record>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        let start = line;
        // Skip a comment or blank line.
        if matches!(chars.peek(), Some('#')) {
            for c in chars.by_ref() {
                if c == '\n' {
                    break;
                }
            }
            line += 1;
            continue;
        }
        let mut fields = Vec::new();
        let mut field = Zeroizing::new(String::new());
        let mut quoted = false;
        let mut was_quoted = false;
        let mut after_quote = false;
        let mut at_end = false;
        loop {
            let Some(c) = chars.next() else {
                if quoted {
                    return Err(format!(
                        "line {start}: a quoted field is not closed before the end of the file"
                    ));
                }
                at_end = true;
                break;
            };
            if quoted {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => {
                        quoted = false;
                        after_quote = true;
                    }
                    '\n' => {
                        line += 1;
                        field.push(c);
                    }
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                ',' | '\n' => {
                    fields.push(finish(&mut field, was_quoted));
                    was_quoted = false;
                    after_quote = false;
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
                '"' if field.trim().is_empty() && !was_quoted => {
                    field.clear();
                    quoted = true;
                    was_quoted = true;
                }
                '\r' if matches!(chars.peek(), Some('\n') | None) => {}
                c if after_quote && !c.is_whitespace() => {
                    return Err(format!(
                        "line {line}: column {}: text after the closing quote",
                        fields.len() + 1
                    ));
                }
                _ => field.push(c),
            }
        }
        if at_end && (!fields.is_empty() || !field.is_empty() || was_quoted) {
            fields.push(finish(&mut field, was_quoted));
        }
        let blank = fields.iter().all(|f| f.is_empty());
        if !blank {
            out.push(Record {
                line: start,
                fields,
            });
        }
    }
    Ok(out)
}

fn finish(field: &mut Zeroizing<String>, quoted: bool) -> Zeroizing<String> {
    let taken = std::mem::take(&mut **field);
    if quoted {
        return Zeroizing::new(taken);
    }
    let taken = Zeroizing::new(taken);
    Zeroizing::new(taken.trim().to_owned())
}

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    User,
    Seed,
    /// `secret key` of the Entra ID file: base32 by that format's definition.
    Base32Seed,
    Type,
    Digits,
    Period,
    Counter,
    PeriodOrCounter,
    Algorithm,
    Serial,
    Ignored,
}

fn column(name: &str) -> Option<Column> {
    let name = name.trim().to_ascii_lowercase().replace(['_', '-'], " ");
    Some(match name.as_str() {
        "user" | "upn" | "username" | "login" => Column::User,
        "seed" | "secret" | "key" => Column::Seed,
        "secret key" => Column::Base32Seed,
        "type" => Column::Type,
        "digits" => Column::Digits,
        "period" | "time interval" | "interval" => Column::Period,
        "counter" => Column::Counter,
        "period or counter" => Column::PeriodOrCounter,
        "algorithm" | "hash" | "hash algorithm" => Column::Algorithm,
        "serial" | "serial number" | "serialno" => Column::Serial,
        "manufacturer" | "model" | "comment" | "description" => Column::Ignored,
        _ => return None,
    })
}

/// The columns of the file without a header.
const POSITIONAL: [Column; 6] = [
    Column::User,
    Column::Seed,
    Column::Type,
    Column::Digits,
    Column::PeriodOrCounter,
    Column::Algorithm,
];

/// Parse a token CSV file. `format` is how `seed` columns are written
/// (`secret key` is always base32).
pub fn parse(text: &str, format: SeedFormat) -> Result<Vec<Token>, String> {
    let mut rows = records(text)?.into_iter().peekable();
    let header = rows.peek().and_then(|first| {
        let name = first.fields.first()?.trim().to_ascii_lowercase();
        matches!(name.as_str(), "user" | "upn" | "username" | "login").then_some(())
    });
    let columns: Vec<Column> = match header {
        Some(()) => {
            let first = rows.next().unwrap_or(Record {
                line: 1,
                fields: Vec::new(),
            });
            let mut columns = Vec::new();
            for (i, name) in first.fields.iter().enumerate() {
                let col = column(name).ok_or_else(|| {
                    format!(
                        "line {}: column {}: unknown column '{}' in the header",
                        first.line,
                        i + 1,
                        printable(name.as_bytes())
                    )
                })?;
                if col != Column::Ignored && columns.contains(&col) {
                    return Err(format!(
                        "line {}: column {}: '{}' is given twice",
                        first.line,
                        i + 1,
                        printable(name.as_bytes())
                    ));
                }
                columns.push(col);
            }
            for needed in [Column::User] {
                if !columns.contains(&needed) {
                    return Err(format!(
                        "line {}: the header has no user column",
                        first.line
                    ));
                }
            }
            if !columns.contains(&Column::Seed) && !columns.contains(&Column::Base32Seed) {
                return Err(format!(
                    "line {}: the header has no seed (or secret key) column",
                    first.line
                ));
            }
            columns
        }
        None => POSITIONAL.to_vec(),
    };
    let mut tokens = Vec::new();
    for row in rows {
        tokens.push(token(&row, &columns, header.is_some(), format)?);
    }
    Ok(tokens)
}

/// One token from one record.
fn token(
    row: &Record,
    columns: &[Column],
    has_header: bool,
    format: SeedFormat,
) -> Result<Token, String> {
    let n = row.line;
    let count = row.fields.len();
    let fits = if has_header {
        count == columns.len()
    } else {
        count == 5 || count == 6
    };
    if !fits {
        return Err(if has_header {
            format!(
                "line {n}: {count} fields, expected {} as in the header",
                columns.len()
            )
        } else {
            format!(
                "line {n}: {count} fields, expected 5: user,seed,type,digits,period_or_counter \
                 (and a sixth, algorithm, if wanted)"
            )
        });
    }
    let find = |want: Column| -> Option<(usize, &str)> {
        columns
            .iter()
            .position(|c| *c == want)
            .and_then(|i| row.fields.get(i).map(|f| (i + 1, f.as_str())))
            .filter(|(_, f)| !f.is_empty())
    };
    let at = |col: usize, e: String| format!("line {n}: column {col}: {e}");
    let (user_col, user) = find(Column::User).ok_or_else(|| format!("line {n}: no user"))?;
    let secret = match (find(Column::Seed), find(Column::Base32Seed)) {
        (Some((col, seed)), _) => match format {
            SeedFormat::Hex => SecretBytes::from_hex(seed),
            SeedFormat::Base32 => SecretBytes::from_base32(seed),
        }
        .map_err(|e| at(col, format!("the {e}")))?,
        (None, Some((col, seed))) => {
            SecretBytes::from_base32(seed).map_err(|e| at(col, format!("the {e}")))?
        }
        (None, None) => return Err(format!("line {n}: no seed")),
    };
    let kind = match find(Column::Type) {
        Some((col, text)) => text.parse::<OtpType>().map_err(|e| at(col, e))?,
        None if find(Column::Counter).is_some() => OtpType::Hotp,
        None => OtpType::Totp,
    };
    let digits = match find(Column::Digits) {
        Some((col, text)) => totp_core::record::parse_digits(text).map_err(|e| at(col, e))?,
        None => 6,
    };
    let algorithm = match find(Column::Algorithm) {
        Some((col, text)) => parse_algorithm(text).map_err(|e| at(col, e))?,
        None => Algorithm::SHA1,
    };
    let number = |want: Column| find(want).map(|(col, text)| (col, text.parse::<u64>()));
    let (period, counter) = match kind {
        OtpType::Totp => {
            let period = match number(Column::Period).or_else(|| number(Column::PeriodOrCounter)) {
                Some((col, Ok(p))) => totp_core::otp::check_period(p).map_err(|e| at(col, e))?,
                Some((col, Err(_))) => {
                    return Err(at(col, "the period must be 30 or 60 seconds".into()))
                }
                None => 30,
            };
            (period, 0)
        }
        OtpType::Hotp => {
            let counter = match number(Column::Counter).or_else(|| number(Column::PeriodOrCounter))
            {
                Some((_, Ok(c))) => c,
                Some((col, Err(_))) => {
                    return Err(at(
                        col,
                        "the counter must be a whole number, 0 or more".into(),
                    ))
                }
                None => 0,
            };
            (30, counter)
        }
    };
    let serial = match find(Column::Serial) {
        Some((col, text)) => Some(check_serial(text).map_err(|e| at(col, e))?),
        None => None,
    };
    let _ = user_col;
    let mut token = Token::new(
        n,
        user,
        kind,
        secret,
        (algorithm, digits, period),
        counter,
        None,
    )?;
    token.serial = serial;
    Ok(token)
}

/// `SHA1`, `SHA256`, `SHA512`, also written `SHA-256` or `HMAC-SHA256`.
pub fn parse_algorithm(text: &str) -> Result<Algorithm, String> {
    let upper = text.trim().to_ascii_uppercase().replace('-', "");
    let name = upper.strip_prefix("HMAC").unwrap_or(&upper);
    name.parse::<Algorithm>().map_err(|_| {
        format!(
            "unknown algorithm '{}' (expected SHA1, SHA256 or SHA512)",
            printable(text.as_bytes())
        )
    })
}

/// A token serial number as kept in the record: printable, no blanks (so
/// `list` shows it as one word), at most 64 bytes.
pub fn check_serial(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty()
        || text.len() > 64
        || text.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err("the serial number must be 1 to 64 printable characters, no blanks".into());
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "3132333435363738393031323334353637383930";
    const B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn rfc_4180_records() {
        let text = "\u{feff}a,\"b,c\",\"say \"\"hi\"\"\"\r\n# note\n\n\"multi\nline\", x ,\"\"\r\n";
        let got: Vec<(usize, Vec<String>)> = records(text)
            .unwrap()
            .into_iter()
            .map(|r| (r.line, r.fields.iter().map(|f| f.to_string()).collect()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, vec!["a".into(), "b,c".into(), "say \"hi\"".into()]),
                (4, vec!["multi\nline".into(), "x".into(), String::new()]),
            ]
        );
        assert!(records("a,\"b\n")
            .err()
            .unwrap_or_default()
            .contains("line 1"));
        assert!(records("a,\"b\"c\n")
            .err()
            .unwrap_or_default()
            .contains("line 1: column 2"));
    }

    #[test]
    fn the_entra_id_file_as_delivered() {
        let text = format!(
            "\u{feff}upn,serial number,secret key,time interval,manufacturer,model\r\n\
             alice@example.com,60234567,{B32},30,Token2,c202\r\n\
             \"bob@example.com\",\"60234568\",\"{B32}\",\"60\",\"Token2\",\"c202\"\r\n"
        );
        let tokens = parse(&text, SeedFormat::Hex).unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens[0].user, "alice@example.com");
        assert_eq!(tokens[0].serial.as_deref(), Some("60234567"));
        assert_eq!(tokens[0].secret.as_bytes(), b"12345678901234567890");
        assert_eq!(
            (tokens[1].kind, tokens[1].params.period),
            (OtpType::Totp, 60)
        );
        assert_eq!(tokens[1].line, 3);
    }

    #[test]
    fn an_algorithm_column_positional_and_named() {
        let t = parse(&format!("alice,{HEX},totp,8,30,SHA512\n"), SeedFormat::Hex).unwrap();
        assert_eq!(t[0].params.algorithm, Algorithm::SHA512);
        let t = parse(
            &format!("user,seed,algorithm,digits\nalice,{B32},HMAC-SHA256,8\n"),
            SeedFormat::Base32,
        )
        .unwrap();
        assert_eq!(
            (t[0].params.algorithm, t[0].params.digits, t[0].kind),
            (Algorithm::SHA256, 8, OtpType::Totp)
        );
    }

    #[test]
    fn errors_name_line_and_column_never_the_seed() {
        for (text, expected) in [
            (
                format!("upn,secret key,time interval\nalice,{B32}!,30\n"),
                "line 2: column 2: the secret is not valid base32",
            ),
            (
                format!("upn,secret key,time interval\nalice,{B32},45\n"),
                "line 2: column 3: period must be 30 or 60",
            ),
            (
                format!("user,seed,colour\nalice,{HEX},red\n"),
                "line 1: column 3: unknown column 'colour'",
            ),
            (
                format!("alice,{HEX},totp,6,30,MD5\n"),
                "line 1: column 6: unknown algorithm 'MD5'",
            ),
            (format!("alice,{HEX},totp\n"), "line 1: 3 fields"),
            (
                format!("upn,secret key\n\"alice,{B32}\n"),
                "line 2: a quoted field is not closed",
            ),
        ] {
            let err = parse(&text, SeedFormat::Hex).err().unwrap_or_default();
            assert!(err.starts_with(expected), "{text:?}: {err}");
            assert!(!err.contains("GEZD") && !err.contains("3132"), "{err}");
        }
    }
}
