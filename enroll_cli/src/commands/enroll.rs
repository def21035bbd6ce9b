//! `totpctl enroll USER`: a new secret, shown as a URI and a QR code, saved as
//! a `.jpg`, stored as a pending record; then a code from the app activates it.
//!
//! `--type hotp` makes a counter-based enrollment (`otpauth://hotp/...&counter=N`).
//! `--seed-stdin` enrolls a hardware token instead: its seed is read from
//! standard input (hex or base32), and there is no URI, QR code or `.jpg`;
//! a code from the token activates it, as from an app.
//!
//! `--qr -` writes the JPEG to standard output instead of a file, and every
//! message to standard error. `--json` asks for no code: it prints the URI,
//! the key and the JPEG (base64) as one JSON object, and writes a `.jpg` only
//! when `--qr FILE` is given.

use super::Out;
use crate::cli::{EnrollArgs, SeedFormat};
use crate::context::{self, Context, Invocation};
use crate::error::CliError;
use crate::privilege::AsRealUser;
use crate::{json, prompt, qr, qrfile, uri};
use std::io::{IsTerminal, Write};
use totp_core::enrollment;
use totp_core::names::UserName;
use totp_core::otp::{Algorithm, OtpParams, OtpType};
use totp_core::record::{Status, UserRecord};
use totp_core::secret::SecretBytes;
use totp_core::time::now_unix;
use zeroize::Zeroizing;

pub fn run(inv: &Invocation, args: &EnrollArgs) -> Result<(), CliError> {
    // 1. Everything that can be checked without touching the store.
    let ctx = Context::load("enroll", inv)?;
    let target = ctx.target("enroll", args.user.as_deref())?;
    let (user, account) = context::system_user(target.as_str())?;
    let self_service = ctx.self_user().is_some();
    // Where the JPEG goes: standard output (--qr -), a file (--qr FILE, or
    // ./USER-totp.jpg without --json), or only into the JSON.
    let to_stdout = args.qr_to_stdout();
    if to_stdout && std::io::stdout().is_terminal() {
        return Err(CliError::QrToTerminal);
    }
    let kind = args.kind();
    let counter = args.counter.unwrap_or(0);
    // A hardware token's seed, read before anything is written or locked.
    let seed = if args.seed_stdin {
        if self_service {
            ctx.audit_self_admin_only("enroll --seed-stdin", &user);
            return Err(CliError::AdminOnly {
                command: "enroll --seed-stdin",
            });
        }
        Some(read_seed(&ctx, args.format.unwrap_or(SeedFormat::Base32))?)
    } else {
        None
    };
    let qr_path = match &args.qr {
        _ if to_stdout || seed.is_some() => None,
        Some(path) => Some(path.clone()),
        None if ctx.json => None,
        None => Some(qrfile::default_path(user.as_str())),
    };
    if let Some(qr_path) = &qr_path {
        // A self-service caller may only learn about paths they can see.
        let _as_user = self_service
            .then(AsRealUser::new)
            .transpose()
            .map_err(|e| CliError::QrWrite(qr_path.clone(), e))?;
        qrfile::check(qr_path, args.force)?;
    }
    let defaults = &ctx.config.otp;
    let period = match kind {
        OtpType::Totp => args.period.unwrap_or(defaults.period),
        OtpType::Hotp => 30,
    };
    let params = OtpParams::new(
        args.algorithm.unwrap_or(defaults.algorithm),
        args.digits.unwrap_or(defaults.digits),
        period,
    )
    .map_err(|e| CliError::Output("the record".into(), std::io::Error::other(e)))?;
    let (issuer, from) = match &args.issuer {
        Some(issuer) => (issuer.clone(), "--issuer".to_owned()),
        None if !ctx.config.enroll.issuer.is_empty() => (
            ctx.config.enroll.issuer.clone(),
            "[enroll] issuer in the config file".to_owned(),
        ),
        None => (host_name(), "the host name".to_owned()),
    };
    // The rule for a new issuer, checked here so that the error can say
    // where the issuer came from (clap has checked --issuer already).
    if !issuer.is_empty() {
        totp_core::record::check_new_issuer(&issuer).map_err(|why| CliError::InvalidIssuer {
            why,
            from: from.clone(),
        })?;
    }

    // A self-service caller replacing an active enrollment proves it first;
    // the answer is read before the lock, and checked under it.
    let proof = match ctx.load_record(&user) {
        Ok(Some(existing)) if self_service && existing.status == Status::Active && args.force => {
            Some(super::read_proof(&ctx, &user)?)
        }
        Err(CliError::CorruptRecord { .. }) if self_service => {
            return Err(CliError::CorruptOwnRecord)
        }
        _ => None,
    };

    // 2. The new secret, and the .jpg, written before the user's lock is
    //    taken: the lock is never held across a write outside the store.
    let now = now_unix();
    let record = UserRecord {
        status: Status::Pending,
        kind,
        secret: match seed {
            Some(seed) => seed,
            None => SecretBytes::generate()?,
        },
        params,
        label: Some(user.to_string()),
        issuer: (!issuer.is_empty()).then(|| issuer.clone()),
        created_at: Some(now),
        activated_at: None,
        recovery: Vec::new(),
        serial: None,
    };
    // The one rule for labels is the record parser's: check by a round trip
    // before the .jpg is written.
    let text = record
        .to_toml()
        .map_err(|e| CliError::Output("the record".into(), std::io::Error::other(e)))?;
    if let Err(e) = UserRecord::parse(&text) {
        return Err(CliError::InvalidIssuer { why: e, from });
    }
    drop(text);
    let token = args.seed_stdin;
    let link = match kind {
        _ if token => None,
        OtpType::Totp => Some(uri::otpauth(
            &issuer,
            user.as_str(),
            &record.secret.to_base32(),
            record.params,
        )),
        OtpType::Hotp => Some(uri::otpauth_hotp(
            &issuer,
            user.as_str(),
            &record.secret.to_base32(),
            record.params,
            counter,
        )),
    };
    let jpeg = match &link {
        Some(link) => Some(qr::jpeg(link)?),
        None => None,
    };
    // For a self-service caller the .jpg is opened with their own identity:
    // it cannot land anywhere they could not write to themselves.
    let remove_qr = || {
        if let Some(qr_path) = &qr_path {
            let _as_user = self_service.then(AsRealUser::new).transpose();
            qrfile::remove(qr_path, &account);
        }
    };
    if let Some(qr_path) = &qr_path {
        let _as_user = self_service
            .then(AsRealUser::new)
            .transpose()
            .map_err(|e| CliError::QrWrite(qr_path.clone(), e))?;
        let jpeg = jpeg.as_ref().map_or(&[][..], |j| &j[..]);
        qrfile::write(qr_path, jpeg, &account, args.force)?;
    }

    // 3. Under the user's lock: refuse to replace what must not be replaced,
    //    check the proof, install the pending record. A refusal removes the
    //    .jpg of the secret that was never installed.
    let installed = (|| {
        ctx.ensure_dirs()?;
        let lock = ctx.lock(&user)?;
        match ctx.load_record(&user) {
            Ok(Some(existing)) if existing.status == Status::Active && !args.force => {
                return Err(CliError::AlreadyActive {
                    user: user.to_string(),
                    command: "enroll",
                });
            }
            Ok(Some(existing)) if existing.status == Status::Active && self_service => {
                let proof = proof.as_deref().map(|p| &p[..]);
                if let Err(failed) = super::check_proof(&ctx, &lock, &existing, &user, proof) {
                    drop(lock);
                    return Err(failed.finish(&ctx));
                }
            }
            Ok(_) => {}
            Err(CliError::CorruptRecord { .. }) if self_service => {
                return Err(CliError::CorruptOwnRecord)
            }
            Err(CliError::CorruptRecord { .. }) if args.force => {}
            Err(e) => return Err(e),
        }
        ctx.audit_self_start("enroll", &user, "");
        enrollment::install(&lock, &record, counter)?;
        Ok(())
    })();
    if let Err(e) = installed {
        remove_qr();
        return Err(e);
    }
    ctx.audit_self("enroll", &user, "");

    // 4. Show it.
    for warning in app_warnings(params).into_iter().filter(|_| !token) {
        eprintln!("totpctl: warning: {warning}");
    }
    if ctx.json {
        let shown = Shown {
            user: &user,
            kind,
            counter,
            params,
            issuer: &issuer,
            app: match (&link, &jpeg) {
                (Some(link), Some(jpeg)) => Some((link.as_str(), &record.secret, &jpeg[..])),
                _ => None,
            },
        };
        outln!("{}", shown.json().as_str());
        return Ok(());
    }
    let out = if to_stdout { Out::Stderr } else { Out::Stdout };
    let (Some(link), Some(jpeg)) = (&link, &jpeg) else {
        // A hardware token: nothing to scan; its code activates it.
        out.line(&format!(
            "Enrolling '{user}' with a hardware token: {}.",
            describe(kind, params, counter)
        ));
        return ask_for_code(
            &ctx,
            &user,
            out,
            "Code from the token (empty to activate later): ",
            "the token",
        );
    };
    if to_stdout {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(jpeg)
            .and_then(|()| stdout.flush())
            .map_err(|e| CliError::Output("the QR code to standard output".into(), e))?;
    }
    let style = qr::TerminalStyle::choose(out.is_terminal());
    let terminal = qr::terminal(link, style)?;
    out.line(&format!(
        "Enrolling '{user}': {}.",
        describe(kind, params, counter)
    ));
    out.line("Scan this QR code with the authenticator app:");
    out.line("");
    out.text(terminal.as_str());
    if style == qr::TerminalStyle::Plain && out.is_terminal() {
        // NO_COLOR: drawn in the terminal's own colours.
        out.line(&format!(
            "(NO_COLOR is set, so the code is drawn in the terminal's own colours: on a light \
             background it is inverted and some apps cannot scan it. Scan {} instead, or run \
             again without NO_COLOR.)",
            match &qr_path {
                Some(path) => format!("the .jpg, {}", path.display()),
                None => "the .jpg".to_owned(),
            }
        ));
    }
    out.line("");
    if let (Some(columns), Ok(needed)) = (out.columns(), qr::columns(link)) {
        if needed > columns {
            eprintln!(
                "totpctl: warning: the QR code is {needed} columns wide, wider than this \
                 terminal ({columns}), so lines wrap and it cannot be scanned here. Widen the \
                 window and run the command again, or scan the .jpg."
            );
        }
    }
    out.line("Or type this key into the app:");
    out.line(&format!(
        "  {}",
        grouped(&record.secret.to_base32()).as_str()
    ));
    out.line("Or open the URI:");
    out.line(link.as_str());
    out.line("");
    match &qr_path {
        Some(qr_path) => out.line(&format!(
            "The QR code is saved in {} (mode 0600, owned by {user}). Keep it somewhere safe: \
             scanning it again restores the codes on a new phone.",
            qr_path.display()
        )),
        None => out.line(
            "The QR code was written to standard output as a JPEG image. Keep it somewhere \
             safe: scanning it again restores the codes on a new phone.",
        ),
    }

    // 5. Ask for a code; none leaves the record pending.
    ask_for_code(
        &ctx,
        &user,
        out,
        "Code from the app (empty to activate later): ",
        "the app",
    )
}

/// `SHA1, 6 digits, 30 s` or `HOTP, SHA1, 6 digits, first counter 0`.
fn describe(kind: OtpType, params: OtpParams, counter: u64) -> String {
    match kind {
        OtpType::Totp => format!(
            "{}, {} digits, {} s",
            params.algorithm, params.digits, params.period
        ),
        OtpType::Hotp => format!(
            "HOTP, {}, {} digits, first counter {counter}",
            params.algorithm, params.digits
        ),
    }
}

/// Read the seed of a hardware token from standard input, in `format`.
/// Its errors never quote it.
fn read_seed(ctx: &Context, format: SeedFormat) -> Result<SecretBytes, CliError> {
    let what = match format {
        SeedFormat::Hex => "hex",
        SeedFormat::Base32 => "base32",
    };
    let line = prompt::read_seed(ctx.json, &format!("Seed of the token ({what}): "))
        .map_err(|e| CliError::Output("the seed from standard input".into(), e))?
        .ok_or_else(|| {
            CliError::Usage(
                "--seed-stdin: standard input held no seed; pipe the token's seed on its first \
                 line"
                    .into(),
            )
        })?;
    let text = std::str::from_utf8(&line)
        .map_err(|_| CliError::Usage("--seed-stdin: the seed is not text".into()))?;
    let text = text.trim();
    match format {
        SeedFormat::Hex => SecretBytes::from_hex(text),
        SeedFormat::Base32 => SecretBytes::from_base32(text),
    }
    .map_err(|e| CliError::Usage(format!("--seed-stdin: the {e} (--format {what})")))
}

/// Ask for a code from `device` ("the app", "the token"); none leaves the
/// record pending.
fn ask_for_code(
    ctx: &Context,
    user: &UserName,
    out: Out,
    question: &str,
    device: &str,
) -> Result<(), CliError> {
    match prompt::read_code(question).map_err(|e| CliError::Output("the prompt".into(), e))? {
        Some(typed) => {
            let codes = super::activate::activate_with(ctx, user, &typed)?;
            super::activate::show_activated(ctx, user, &codes, out);
            Ok(())
        }
        None => {
            out.line("");
            out.line(&format!(
                "The enrollment is pending. Once {device} shows codes, activate it with: \
                 totpctl activate {user}"
            ));
            Ok(())
        }
    }
}

/// What `enroll --json` prints: everything the page needs to show the new
/// enrollment, the secret included (this is the one place it is shown).
struct Shown<'a> {
    user: &'a UserName,
    kind: OtpType,
    counter: u64,
    params: OtpParams,
    issuer: &'a str,
    /// For an app: the URI, the secret and the JPEG. A hardware token has none.
    app: Option<(&'a str, &'a SecretBytes, &'a [u8])>,
}

impl Shown<'_> {
    fn json(&self) -> Zeroizing<String> {
        let key = self.app.map(|(_, secret, _)| grouped(&secret.to_base32()));
        let jpeg = self.app.map(|(_, _, jpeg)| json::base64(jpeg));
        let p = self.params;
        // Room for all of it: the object holds the secret three times and is
        // built in one allocation, wiped on drop.
        let capacity = 512
            + self.user.as_str().len() * 6
            + self.issuer.len() * 6
            + self.app.map_or(0, |(uri, _, _)| uri.len())
            + key.as_ref().map_or(0, |k| k.len())
            + jpeg.as_ref().map_or(0, |j| j.len());
        let object = json::Object::with_capacity(capacity)
            .string("user", self.user.as_str())
            .string("status", "pending")
            .string("type", &self.kind.to_string())
            .string("algorithm", &p.algorithm.to_string())
            .number("digits", u64::from(p.digits));
        let object = match self.kind {
            OtpType::Totp => object.number("period", p.period),
            OtpType::Hotp => object.number("counter", self.counter),
        };
        let mut object =
            object.opt_string("issuer", (!self.issuer.is_empty()).then_some(self.issuer));
        if let (Some((uri, _, _)), Some(key), Some(jpeg)) = (self.app, &key, &jpeg) {
            object = object
                .string("uri", uri)
                .string("key", key)
                .string("qr_jpeg_base64", jpeg);
        } else {
            object = object.boolean("hardware_token", true);
        }
        Zeroizing::new(object.finish())
    }
}

/// The base32 key in groups of four, for typing by hand: "ABCD EFGH ...".
pub fn grouped(base32: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(base32.len() + base32.len() / 4 + 1));
    for (i, c) in base32.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn host_name() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What to warn about for parameters that common apps ignore.
pub fn app_warnings(params: OtpParams) -> Vec<String> {
    unusual_settings(params)
        .map(|settings| {
            format!(
                "some authenticator apps, Google Authenticator among them, ignore {settings}, \
                 and then show codes that do not work. Activation proves that the app gets \
                 them right."
            )
        })
        .into_iter()
        .collect()
}

/// The settings of `params` that some apps ignore, as one phrase (`the
/// SHA256 algorithm, 8 digits or a 60 s period`), or `None`.
pub fn unusual_settings(params: OtpParams) -> Option<String> {
    let mut unusual = Vec::new();
    if params.algorithm != Algorithm::SHA1 {
        unusual.push(format!("the {} algorithm", params.algorithm));
    }
    if params.digits != 6 {
        unusual.push(format!("{} digits", params.digits));
    }
    if params.period != 30 {
        unusual.push(format!("a {} s period", params.period));
    }
    let last = unusual.pop()?;
    Some(if unusual.is_empty() {
        last
    } else {
        format!("{} or {last}", unusual.join(", "))
    })
}
