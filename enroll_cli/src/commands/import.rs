//! `totpctl import-google-authenticator USER [PATH]`: turn a
//! google-authenticator-libpam file into an active record, so users keep the
//! app entry they have.
//!
//! The file is the base32 secret on the first line, option lines starting with
//! `" ` (`" TOTP_AUTH`, `" STEP_SIZE 30`, `" RATE_LIMIT 3 30`, ...), then 8-digit
//! scratch codes, one a line. The secret and the step size are kept; a
//! `HOTP_COUNTER N` file (counter-based codes) becomes a HOTP record whose
//! next counter is N, as google-authenticator-libpam expects next; a
//! `TIME_SKEW N` (in steps) becomes the learned clock skew; the time steps
//! `DISALLOW_REUSE` lists as used become the last accepted step, so a code
//! just used at pam_google_authenticator is a replay at pam_totp too; the
//! scratch codes become recovery codes (hashed; they work once, as before);
//! every other option is left behind with a note. google-authenticator codes always have
//! 6 digits, so an 8-digit answer can only be a scratch code.

use crate::cli::ImportArgs;
use crate::context::{self, Context, Invocation};
use crate::error::CliError;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use totp_core::enrollment;
use totp_core::names::printable;
use totp_core::otp::{Algorithm, OtpParams, OtpType};
use totp_core::record::{Status, UserRecord};
use totp_core::recovery::{self, RecoveryHash};
use totp_core::secret::SecretBytes;
use totp_core::time::now_unix;
use zeroize::Zeroizing;

/// google-authenticator files are a few hundred bytes.
const FILE_LIMIT: usize = 16 * 1024;

/// What was taken from the file.
pub struct Imported {
    pub secret: SecretBytes,
    pub period: u64,
    /// `HOTP_COUNTER`: a counter-based secret, and the next counter.
    pub hotp_counter: Option<u64>,
    /// `TIME_SKEW`: the clock skew google-authenticator learned, in steps.
    pub skew: Option<i64>,
    /// `DISALLOW_REUSE`: the newest time step listed as used (as
    /// google-authenticator counts it: without the skew).
    pub used_step: Option<u64>,
    pub scratch: Vec<Zeroizing<Vec<u8>>>,
    /// One note per option that is not carried over.
    pub notes: Vec<String>,
}

pub fn run(inv: &Invocation, args: &ImportArgs) -> Result<(), CliError> {
    let ctx = Context::load_admin("import-google-authenticator", inv)?;
    let (user, account) = context::system_user(&args.user)?;
    let path = match &args.path {
        Some(path) => path.clone(),
        None if account.dir.as_os_str().is_empty() => {
            return Err(CliError::NoHome(user.to_string()))
        }
        None => account.dir.join(".google_authenticator"),
    };
    let text = read_file(&path).map_err(|e| CliError::ImportRead(path.clone(), e))?;
    let imported = parse(&text).map_err(|e| CliError::ImportFormat(path.clone(), e))?;
    drop(text);
    let kind = match imported.hotp_counter {
        Some(_) => OtpType::Hotp,
        None => OtpType::Totp,
    };
    let period = match kind {
        OtpType::Totp => imported.period,
        OtpType::Hotp => 30,
    };
    let params = OtpParams::new(Algorithm::SHA1, 6, period)
        .map_err(|e| CliError::ImportFormat(path.clone(), e))?;
    let mut hashes: Vec<RecoveryHash> = Vec::new();
    for (id, code) in (1..).zip(imported.scratch.iter()) {
        match recovery::hash_existing(id, code)? {
            Some(hash) => hashes.push(hash),
            None => {
                return Err(CliError::ImportFormat(
                    path,
                    format!("scratch code {id} is not 8 digits"),
                ))
            }
        }
    }

    ctx.ensure_dirs()?;
    let lock = ctx.lock(&user)?;
    match ctx.load_record(&user) {
        Ok(Some(existing)) if existing.status == Status::Active && !args.force => {
            return Err(CliError::AlreadyActive {
                user: user.to_string(),
                command: "import-google-authenticator",
            });
        }
        Ok(_) => {}
        Err(CliError::CorruptRecord { .. }) if args.force => {}
        Err(e) => return Err(e),
    }
    let now = now_unix();
    let scratch_count = hashes.len();
    let record = UserRecord {
        status: Status::Active,
        kind,
        secret: imported.secret,
        params,
        label: Some(user.to_string()),
        issuer: None,
        created_at: Some(now),
        activated_at: Some(now),
        recovery: hashes,
    };
    enrollment::install(&lock, &record, imported.hotp_counter.unwrap_or(0))?;
    if kind == OtpType::Totp {
        let mut state = lock.read_state().state;
        let old = state.clone();
        let skew = imported.skew.unwrap_or(0);
        if skew != 0 {
            state.skew = Some(skew);
        }
        // google-authenticator checks step + skew and lists the step: the
        // code used was the one of step + skew.
        state.last_step = imported
            .used_step
            .and_then(|step| step.checked_add_signed(skew));
        if state != old {
            lock.write_state(&state)?;
        }
    }
    drop(lock);

    for note in &imported.notes {
        eprintln!("totpctl: note: {note}");
    }
    println!(
        "Imported {} for '{user}': two-factor login is active with the same app entry \
         ({}).",
        path.display(),
        match imported.hotp_counter {
            Some(next) => format!("HOTP, SHA1, 6 digits, next counter {next}"),
            None => format!("SHA1, 6 digits, {} s", params.period),
        }
    );
    println!(
        "{scratch_count} scratch codes are kept as recovery codes; each works once. \
         'totpctl recovery-codes {user} --regenerate' replaces them."
    );
    println!(
        "The file itself is left in place; remove it once pam_google_authenticator is no \
         longer in the PAM stack."
    );
    Ok(())
}

/// Read the file without following a symlink: a regular file, bounded in size.
fn read_file(path: &Path) -> Result<Zeroizing<String>, String> {
    let mut file = File::options()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(nix::libc::ELOOP) => "it is a symbolic link, which is never followed".to_owned(),
            _ => e.to_string(),
        })?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("it is not a regular file".into());
    }
    if meta.len() > FILE_LIMIT as u64 {
        return Err(format!("it is larger than {FILE_LIMIT} bytes"));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(FILE_LIMIT + 1));
    (&mut file)
        .take(FILE_LIMIT as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(Zeroizing::new(text)),
        Err(e) => {
            drop(Zeroizing::new(e.into_bytes()));
            Err("it is not text".into())
        }
    }
}

/// Parse the file. Errors name line numbers, never the content.
pub fn parse(text: &str) -> Result<Imported, String> {
    let mut lines = (1..).zip(text.lines());
    let secret = match lines.next() {
        Some((_, line)) => {
            SecretBytes::from_base32(line.trim()).map_err(|e| format!("line 1: {e}"))?
        }
        None => return Err("the file is empty".into()),
    };
    let mut period = 30;
    let mut hotp_counter = None;
    let mut skew = None;
    let mut used_step = None;
    let mut scratch = Vec::new();
    let mut notes = Vec::new();
    for (n, line) in lines {
        let line = line.trim_end_matches('\r');
        if let Some(option) = line.strip_prefix("\" ") {
            let (name, value) = match option.find([' ', '=']) {
                Some(at) => (&option[..at], option[at + 1..].trim()),
                None => (option.trim(), ""),
            };
            match name {
                "TOTP_AUTH" => {}
                "STEP_SIZE" => {
                    period = value
                        .parse()
                        .map_err(|_| format!("line {n}: STEP_SIZE is not a number of seconds"))?;
                }
                "HOTP_COUNTER" => {
                    hotp_counter = Some(value.parse().map_err(|_| {
                        format!("line {n}: HOTP_COUNTER is not a counter (0 or more)")
                    })?);
                }
                "TIME_SKEW" => {
                    skew =
                        Some(value.parse().map_err(|_| {
                            format!("line {n}: TIME_SKEW is not a number of steps")
                        })?);
                }
                "WINDOW_SIZE" => notes.push(
                    "WINDOW_SIZE is not imported; the [otp] window in config.toml applies".into(),
                ),
                "RATE_LIMIT" => notes.push(
                    "RATE_LIMIT is not imported; the [throttle] settings in config.toml apply"
                        .into(),
                ),
                "DISALLOW_REUSE" => {
                    for word in value.split_whitespace() {
                        let step: u64 = word.parse().map_err(|_| {
                            format!("line {n}: DISALLOW_REUSE is not a list of time steps")
                        })?;
                        used_step = used_step.max(Some(step));
                    }
                }
                other => notes.push(format!(
                    "option {} is not known and is ignored",
                    printable(other.as_bytes())
                )),
            }
        } else if line.trim().is_empty() {
            continue;
        } else if line.len() == recovery::SCRATCH_DIGITS && line.bytes().all(|b| b.is_ascii_digit())
        {
            scratch.push(Zeroizing::new(line.as_bytes().to_vec()));
        } else {
            return Err(format!(
                "line {n} is neither an option nor an 8-digit scratch code"
            ));
        }
    }
    Ok(Imported {
        secret,
        period,
        hotp_counter,
        skew,
        used_step,
        scratch,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_google_authenticator_writes() {
        let text = "JBSWY3DPEHPK3PXP\n\" RATE_LIMIT 3 30 1700000000\n\" WINDOW_SIZE 17\n\" DISALLOW_REUSE 56666666\n\" TOTP_AUTH\n12345678\n87654321\n";
        let got = parse(text).unwrap();
        assert_eq!(got.secret.bits(), 80);
        assert_eq!(got.period, 30);
        assert_eq!(got.scratch.len(), 2);
        assert_eq!(got.notes.len(), 2);
        assert_eq!(got.used_step, Some(56666666));
        let two = parse("JBSWY3DPEHPK3PXP\n\" DISALLOW_REUSE 56666667 56666665\n").unwrap();
        assert_eq!(two.used_step, Some(56666667));
        let none = parse("JBSWY3DPEHPK3PXP\n\" DISALLOW_REUSE\n").unwrap();
        assert_eq!(none.used_step, None);
        let sixty = parse("JBSWY3DPEHPK3PXP\n\" STEP_SIZE 60\n\" TOTP_AUTH\n").unwrap();
        assert_eq!(sixty.period, 60);
        let eq = parse("JBSWY3DPEHPK3PXP\n\" STEP_SIZE=60\n").unwrap();
        assert_eq!(eq.period, 60);
        assert_eq!((eq.hotp_counter, eq.skew), (None, None));
        let hotp = parse("JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER 42\n\" TIME_SKEW -2\n").unwrap();
        assert_eq!((hotp.hotp_counter, hotp.skew), (Some(42), Some(-2)));
        assert!(hotp.notes.is_empty());
    }

    #[test]
    fn refuses_without_echoing_content() {
        for (text, expected) in [
            ("", "empty"),
            ("NOT-BASE32!\n", "line 1"),
            ("JBSWY3DPEHPK3PXP\n1234567\n", "line 2"),
            (
                "JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER x\n",
                "line 2: HOTP_COUNTER",
            ),
            (
                "JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER -1\n",
                "line 2: HOTP_COUNTER",
            ),
            ("JBSWY3DPEHPK3PXP\n\" TIME_SKEW 1.5\n", "line 2: TIME_SKEW"),
            ("JBSWY3DPEHPK3PXP\n\" STEP_SIZE x\n", "STEP_SIZE"),
            (
                "JBSWY3DPEHPK3PXP\n\" DISALLOW_REUSE 5 x\n",
                "line 2: DISALLOW_REUSE",
            ),
        ] {
            let err = parse(text).err().unwrap_or_default();
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(!err.contains("JBSW") && !err.contains("1234567"), "{err}");
        }
    }
}
