//! `totpctl import-tokens FILE.csv` and `totpctl import-pam-oath FILE`: many
//! tokens at once, for hardware tokens whose seeds come in a vendor's file
//! and for users of pam_oath who keep their tokens.
//!
//! Every line is checked, and every user resolved, before anything is
//! written: a bad line names its number and nothing changes. `--dry-run`
//! shows what would change and changes nothing. The file holds seeds, so it
//! must be a regular file owned by root with no group or other access.
//! Imported tokens are active at once (they are already in use or were
//! programmed by the admin); a HOTP token starts at its counter.

use super::pskc;
use crate::cli::{ImportPamOathArgs, ImportPskcArgs, ImportTokensArgs, SeedFormat};
use crate::context::{self, Context, Invocation};
use crate::error::CliError;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use totp_core::enrollment;
use totp_core::names::{printable, UserName};
use totp_core::otp::{self, Algorithm, Code, Generator, OtpParams, OtpType};
use totp_core::record::{Status, UserRecord};
use totp_core::secret::SecretBytes;
use totp_core::time::now_unix;
use zeroize::Zeroizing;

/// Token files are small: a line per token.
const FILE_LIMIT: u64 = 1024 * 1024;

/// One token, checked.
pub struct Token {
    pub line: usize,
    pub user: String,
    pub kind: OtpType,
    pub secret: SecretBytes,
    pub params: OtpParams,
    /// HOTP: the next counter.
    pub counter: u64,
    /// pam_oath's last accepted code of a TOTP token: if it is still inside
    /// the window at import, its step is marked used, so that it cannot be
    /// replayed at pam_totp right after the move.
    pub last_code: Option<Zeroizing<String>>,
    /// A hardware token's serial number, kept in the record.
    pub serial: Option<String>,
}

impl Token {
    /// A token from line `line` of a file (or the `line`th token of a PSKC
    /// file); the parameters are checked here, with the line in the error.
    pub fn new(
        line: usize,
        user: &str,
        kind: OtpType,
        secret: SecretBytes,
        (algorithm, digits, period): (Algorithm, u8, u64),
        counter: u64,
        last_code: Option<Zeroizing<String>>,
    ) -> Result<Self, String> {
        let params =
            OtpParams::new(algorithm, digits, period).map_err(|e| format!("line {line}: {e}"))?;
        Ok(Self {
            line,
            user: printable(user.as_bytes()),
            kind,
            secret,
            params,
            counter,
            last_code,
            serial: None,
        })
    }
}

impl Token {
    fn describe(&self) -> String {
        let p = self.params;
        let mut text = match self.kind {
            OtpType::Totp => format!("TOTP, {}, {} digits, {} s", p.algorithm, p.digits, p.period),
            OtpType::Hotp => format!(
                "HOTP, {}, {} digits, next counter {}",
                p.algorithm, p.digits, self.counter
            ),
        };
        if let Some(serial) = &self.serial {
            text.push_str(&format!(", serial {serial}"));
        }
        text
    }
}

pub fn import_tokens(inv: &Invocation, args: &ImportTokensArgs) -> Result<(), CliError> {
    let ctx = Context::load_admin("import-tokens", inv)?;
    let text = read_private(&args.file)?;
    let mut tokens = super::csv::parse(&text, args.format.unwrap_or(SeedFormat::Hex))
        .map_err(|e| CliError::ImportBatch(args.file.clone(), e))?;
    if let Some(domain) = &args.domain {
        strip_domain(&mut tokens, domain);
    }
    drop(text);
    install_all(
        &ctx,
        "import-tokens",
        &args.file,
        tokens,
        args.dry_run,
        args.force,
    )
}

pub fn import_pskc(inv: &Invocation, args: &ImportPskcArgs) -> Result<(), CliError> {
    let ctx = Context::load_admin("import-pskc", inv)?;
    let text = read_private(&args.file)?;
    let unlock = match (&args.key_file, &args.password_file) {
        (Some(path), _) => {
            let hex = read_private(path)?;
            let key = SecretBytes::from_hex(hex.trim()).map_err(|e| {
                CliError::ImportBatch(path.clone(), format!("the pre-shared key: the {e}"))
            })?;
            pskc::Unlock::Key(Zeroizing::new(key.as_bytes().to_vec()))
        }
        (None, Some(path)) => {
            let text = read_private(path)?;
            let password = text.lines().next().unwrap_or_default();
            pskc::Unlock::Password(Zeroizing::new(password.as_bytes().to_vec()))
        }
        (None, None) => pskc::Unlock::None,
    };
    let map = match &args.map {
        Some(path) => Some(read_map(path)?),
        None => None,
    };
    let lookup = |serial: &str| {
        map.as_ref()
            .and_then(|m| m.iter().find(|(s, _)| s == serial).map(|(_, u)| u.clone()))
    };
    let (tokens, notes) = pskc::parse(
        &text,
        &unlock,
        map.is_some()
            .then_some(&lookup as &dyn Fn(&str) -> Option<String>),
    )
    .map_err(|e| CliError::ImportBatch(args.file.clone(), e))?;
    drop(text);
    for note in &notes {
        eprintln!("totpctl: note: {note}");
    }
    install_all(
        &ctx,
        "import-pskc",
        &args.file,
        tokens,
        args.dry_run,
        args.force,
    )
}

/// `--map FILE`: `serial,user` a line (blank lines and `#` comments skipped).
fn read_map(path: &Path) -> Result<Vec<(String, String)>, CliError> {
    let mut map = Vec::new();
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::ImportRead(path.into(), e.to_string()))?;
    for (n, line) in lines(&text) {
        let Some((serial, user)) = line.split_once(',') else {
            return Err(CliError::ImportBatch(
                path.into(),
                format!("line {n}: expected serial,user"),
            ));
        };
        map.push((serial.trim().to_owned(), user.trim().to_owned()));
    }
    Ok(map)
}

pub fn import_pam_oath(inv: &Invocation, args: &ImportPamOathArgs) -> Result<(), CliError> {
    let ctx = Context::load_admin("import-pam-oath", inv)?;
    let text = read_private(&args.file)?;
    let (tokens, notes) =
        parse_pam_oath(&text).map_err(|e| CliError::ImportBatch(args.file.clone(), e))?;
    drop(text);
    for note in &notes {
        eprintln!("totpctl: note: {note}");
    }
    install_all(
        &ctx,
        "import-pam-oath",
        &args.file,
        tokens,
        args.dry_run,
        args.force,
    )
}

/// `USER@DOMAIN` (an Entra ID UPN) is the account USER; other names stay.
pub(crate) fn strip_domain(tokens: &mut [Token], domain: &str) {
    let suffix = format!("@{}", domain.to_ascii_lowercase());
    for token in tokens {
        let lower = token.user.to_ascii_lowercase();
        if let Some(local) = lower.strip_suffix(&suffix) {
            token.user = token.user[..local.len()].to_owned();
        }
    }
}

/// Resolve every user and check every enrollment it would replace, then
/// (unless a dry run) install each token as an active record.
pub(crate) fn install_all(
    ctx: &Context,
    command: &'static str,
    file: &Path,
    tokens: Vec<Token>,
    dry_run: bool,
    force: bool,
) -> Result<(), CliError> {
    let bad = |line: usize, why: String| {
        CliError::ImportBatch(file.into(), format!("line {line}: {why}"))
    };
    let mut plan: Vec<(UserName, Token, &'static str)> = Vec::new();
    for token in tokens {
        let (user, _) =
            context::system_user(&token.user).map_err(|e| bad(token.line, first_part(&e)))?;
        if let Some((_, other, _)) = plan.iter().find(|(u, _, _)| *u == user) {
            return Err(bad(
                token.line,
                format!(
                    "a second token for '{user}' (the first is on line {}); pam_totp keeps one \
                     token per user",
                    other.line
                ),
            ));
        }
        let change = match ctx.load_record(&user) {
            Ok(None) => "enroll",
            Ok(Some(r)) if r.status == Status::Pending => "replace the pending enrollment of",
            Ok(Some(_)) if force => "replace the active enrollment of",
            Ok(Some(_)) => {
                return Err(bad(
                    token.line,
                    format!("'{user}' has an active enrollment; --force replaces it"),
                ))
            }
            Err(CliError::CorruptRecord { .. }) if force => "replace the unreadable record of",
            Err(e) => return Err(bad(token.line, first_part(&e))),
        };
        plan.push((user, token, change));
    }
    if plan.is_empty() {
        return Err(CliError::ImportBatch(
            file.into(),
            "it holds no token".into(),
        ));
    }
    for (user, token, change) in &plan {
        outln!(
            "{}{change} '{user}': {} (line {})",
            if dry_run { "would " } else { "" },
            token.describe(),
            token.line
        );
    }
    if dry_run {
        outln!(
            "Dry run: {} token(s) checked; nothing was changed.",
            plan.len()
        );
        return Ok(());
    }
    ctx.ensure_dirs()?;
    let now = now_unix();
    let count = plan.len();
    for (user, token, _) in plan {
        let record = UserRecord {
            status: Status::Active,
            kind: token.kind,
            secret: token.secret,
            params: token.params,
            label: Some(user.to_string()),
            issuer: None,
            created_at: Some(now),
            activated_at: Some(now),
            recovery: Vec::new(),
            serial: token.serial.clone(),
        };
        let used_step = token
            .last_code
            .as_deref()
            .and_then(|code| step_of_recent(&record, code, now, ctx.config.otp.window));
        let lock = ctx.lock(&user)?;
        enrollment::install(&lock, &record, token.counter)?;
        if let Some(step) = used_step {
            let mut state = lock.read_state().state;
            state.last_step = Some(step);
            lock.write_state(&state)?;
        }
        drop(lock);
        crate::audit::audit_or_warn(
            command,
            user.as_str(),
            &format!("type={} line={}", token.kind, token.line),
        );
    }
    outln!(
        "{count} token(s) imported and active. Each user has no recovery codes yet: \
         'totpctl recovery-codes USER --regenerate' makes them."
    );
    Ok(())
}

/// What went wrong, without the advice for a single-user command that
/// follows it (the batch says for itself that nothing was changed).
pub(crate) fn first_part(e: &CliError) -> String {
    let text = e.to_string();
    text.split("; nothing was changed")
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The step in the window around `now` whose code is `code`, if any.
fn step_of_recent(record: &UserRecord, code: &str, now: u64, window: u32) -> Option<u64> {
    let code = Code::parse(code.as_bytes(), record.params.digits)?;
    match otp::verify(
        &Generator::new(&record.secret, record.params),
        &code,
        now,
        window,
        None,
    ) {
        otp::Verdict::Accepted { step } => Some(step),
        _ => None,
    }
}

/// Read a file of seeds: a regular file, not a symlink, owned by root, no
/// group or other access, bounded in size. Says what is wrong and how to fix it.
pub(crate) fn read_private(path: &Path) -> Result<Zeroizing<String>, CliError> {
    let read_err = |e: String| CliError::ImportRead(path.into(), e);
    let mut file = File::options()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(nix::libc::ELOOP) => {
                read_err("it is a symbolic link, which is never followed".into())
            }
            _ => read_err(e.to_string()),
        })?;
    let meta = file.metadata().map_err(|e| read_err(e.to_string()))?;
    if !meta.is_file() {
        return Err(read_err("it is not a regular file".into()));
    }
    let mode = meta.mode() & 0o7777;
    if meta.uid() != 0 || mode & 0o077 != 0 {
        return Err(CliError::ImportBatch(
            path.into(),
            format!(
                "it holds seeds, so it must be owned by root with mode 0600, and it is owned by \
                 uid {uid} with mode {mode:04o}; run 'chown root: {p}' and 'chmod 600 {p}' first",
                uid = meta.uid(),
                p = path.display(),
            ),
        ));
    }
    if meta.len() > FILE_LIMIT {
        return Err(read_err(format!("it is larger than {FILE_LIMIT} bytes")));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(
        usize::try_from(meta.len()).unwrap_or_default() + 1,
    ));
    (&mut file)
        .take(FILE_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| read_err(e.to_string()))?;
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(Zeroizing::new(text)),
        Err(e) => {
            drop(Zeroizing::new(e.into_bytes()));
            Err(read_err("it is not text".into()))
        }
    }
}

/// The lines worth reading: numbered from 1, without blank lines and `#` comments.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    (1..).zip(text.lines()).filter_map(|(n, line)| {
        let line = line.trim_end_matches('\r').trim();
        (!line.is_empty() && !line.starts_with('#')).then_some((n, line))
    })
}

/// A pam_oath usersfile: `TYPE USER PASSWORD SECRET [COUNTER [LASTOTP [TIME]]]`,
/// whitespace-separated, where TYPE is `HOTP`, `HOTP/E[/D]` (counter-based)
/// or `HOTP/T30[/D]`, `HOTP/T60[/D]` (time-based), SECRET is hex and D the
/// digits. A PASSWORD other than `-` (none) or `+` (checked elsewhere) is a
/// PIN, which pam_totp does not have: that line is refused rather than the
/// PIN silently dropped. For a HOTP line, COUNTER is where pam_oath looks
/// next; once a code was used (LASTOTP is there) it is that code's counter,
/// so the next one is COUNTER + 1. Returns notes on what is left behind.
pub fn parse_pam_oath(text: &str) -> Result<(Vec<Token>, Vec<String>), String> {
    let mut tokens = Vec::new();
    let mut notes = Vec::new();
    for (n, line) in lines(text) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 4 {
            return Err(format!(
                "line {n}: {} fields, expected at least 4: TYPE USER PASSWORD SECRET",
                fields.len()
            ));
        }
        let (kind, digits, period) = match fields[0] {
            "HOTP" | "HOTP/E" | "HOTP/E/6" => (OtpType::Hotp, 6, 30),
            "HOTP/E/8" => (OtpType::Hotp, 8, 30),
            "HOTP/T30" | "HOTP/T30/6" => (OtpType::Totp, 6, 30),
            "HOTP/T30/8" => (OtpType::Totp, 8, 30),
            "HOTP/T60" | "HOTP/T60/6" => (OtpType::Totp, 6, 60),
            "HOTP/T60/8" => (OtpType::Totp, 8, 60),
            "HOTP/E/7" | "HOTP/T30/7" | "HOTP/T60/7" => {
                return Err(format!(
                    "line {n}: 7-digit codes are not supported (pam_totp accepts 6 or 8)"
                ))
            }
            other => {
                return Err(format!(
                    "line {n}: unknown token type '{}' (expected HOTP, HOTP/E/6, HOTP/E/8, \
                     HOTP/T30, HOTP/T60 and their /6 and /8 forms)",
                    printable(other.as_bytes())
                ))
            }
        };
        let user = fields[1];
        match fields[2] {
            "-" => {}
            "+" => notes.push(format!(
                "line {n}: '{}' has '+' (a password checked by another module); keep that module in the stack",
                printable(user.as_bytes())
            )),
            _ => {
                return Err(format!(
                    "line {n}: '{}' has a PIN (the third field); pam_totp has no PINs, so the \
                     token alone would then log in. Replace the PIN with '-' after making sure \
                     the password module before pam_totp asks for a password",
                    printable(user.as_bytes())
                ))
            }
        }
        let secret = SecretBytes::from_hex(fields[3]).map_err(|e| format!("line {n}: the {e}"))?;
        let moving = match fields.get(4) {
            None => 0,
            Some(text) => text.parse::<u64>().map_err(|_| {
                format!("line {n}: the counter (fifth field) is not a whole number")
            })?,
        };
        let last_code = fields.get(5).map(|c| Zeroizing::new((*c).to_owned()));
        let used = last_code.is_some();
        let counter = match kind {
            OtpType::Hotp if used => moving
                .checked_add(1)
                .ok_or_else(|| format!("line {n}: the counter is at its end"))?,
            OtpType::Hotp => moving,
            OtpType::Totp => 0,
        };
        let last_code = match kind {
            OtpType::Totp => last_code,
            OtpType::Hotp => None,
        };
        tokens.push(Token::new(
            n,
            user,
            kind,
            secret,
            (Algorithm::SHA1, digits, period),
            counter,
            last_code,
        )?);
    }
    Ok((tokens, notes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::csv::parse as parse_csv;

    const HEX: &str = "3132333435363738393031323334353637383930";

    #[test]
    fn csv_lines_with_a_header_and_comments() {
        let text = format!(
            "user,seed,type,digits,period_or_counter\n# tokens of batch 7\n\nalice,{HEX},hotp,6,5\r\nbob, {HEX} ,totp,8,60\n"
        );
        let tokens = parse_csv(&text, SeedFormat::Hex).unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(
            (tokens[0].line, tokens[0].kind, tokens[0].counter),
            (4, OtpType::Hotp, 5)
        );
        assert_eq!(tokens[0].secret.as_bytes(), b"12345678901234567890");
        assert_eq!((tokens[1].line, tokens[1].kind), (5, OtpType::Totp));
        assert_eq!((tokens[1].params.digits, tokens[1].params.period), (8, 60));
        let b32 = parse_csv(
            "carol,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,totp,6,30\n",
            SeedFormat::Base32,
        )
        .unwrap();
        assert_eq!(b32[0].secret.as_bytes(), b"12345678901234567890");
    }

    #[test]
    fn a_bad_csv_line_names_its_number_and_never_the_seed() {
        for (line, expected) in [
            (format!("alice,{HEX},hotp,6"), "line 2: 4 fields"),
            (
                format!("alice,{HEX}ZZ,hotp,6,0"),
                "line 2: column 2: the secret is not valid hexadecimal",
            ),
            (
                format!("alice,{HEX},sotp,6,0"),
                "line 2: column 3: unknown type",
            ),
            (
                format!("alice,{HEX},totp,7,30"),
                "line 2: column 4: digits must be 6 or 8",
            ),
            (
                format!("alice,{HEX},totp,6,45"),
                "line 2: column 5: period must be 30 or 60",
            ),
            (
                format!("alice,{HEX},hotp,6,-1"),
                "line 2: column 5: the counter",
            ),
            (
                "alice,3132,hotp,6,0".to_owned(),
                "line 2: column 2: the secret has 16 bits",
            ),
        ] {
            let text = format!("bob,{HEX},hotp,6,0\n{line}\n");
            let err = parse_csv(&text, SeedFormat::Hex).err().unwrap_or_default();
            assert!(err.starts_with(expected), "{line}: {err}");
            assert!(!err.contains("3132"), "{err}");
        }
    }

    #[test]
    fn pam_oath_lines() {
        let text = format!(
            "# pam_oath users\nHOTP\talice\t-\t{HEX}\nHOTP/E/8 bob - {HEX} 7 12345678 2026-11-30T12:00:00L\n\
             HOTP/T30 carol + {HEX}\nHOTP/T60/8 dave - {HEX} 0 87654321 2026-11-30T12:00:00L\n"
        );
        let (tokens, notes) = parse_pam_oath(&text).unwrap();
        let got: Vec<_> = tokens
            .iter()
            .map(|t| {
                (
                    t.line,
                    t.user.as_str(),
                    t.kind,
                    t.params.digits,
                    t.params.period,
                    t.counter,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (2, "alice", OtpType::Hotp, 6, 30, 0),
                (3, "bob", OtpType::Hotp, 8, 30, 8),
                (4, "carol", OtpType::Totp, 6, 30, 0),
                (5, "dave", OtpType::Totp, 8, 60, 0),
            ]
        );
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("line 4: 'carol' has '+'"));
        for (line, expected) in [
            (
                format!("HOTP alice 1234 {HEX}"),
                "line 1: 'alice' has a PIN",
            ),
            (format!("HOTP/T30/7 alice - {HEX}"), "line 1: 7-digit"),
            (
                format!("TOTP alice - {HEX}"),
                "line 1: unknown token type 'TOTP'",
            ),
            (format!("HOTP alice - {HEX} x"), "line 1: the counter"),
            ("HOTP alice -".to_owned(), "line 1: 3 fields"),
            (
                format!("HOTP alice - {HEX}g"),
                "line 1: the secret is not valid hexadecimal",
            ),
        ] {
            let err = parse_pam_oath(&line).err().unwrap_or_default();
            assert!(err.starts_with(expected), "{line}: {err}");
            assert!(!err.contains("3132") && !err.contains("1234 "), "{err}");
        }
    }
}
