//! `totpctl import-google-authenticator USER [PATH]` and `--all`: turn
//! google-authenticator-libpam files into active records, so users keep the
//! app entries they have. `--all` takes every account's file (where the
//! `--secret` template, as in the old stack's `secret=`, says), checks them
//! all, and writes nothing unless every one is good.
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
use nix::unistd::User;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use totp_core::enrollment;
use totp_core::names::{printable, UserName};
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

/// One account's file, read and checked, ready to install.
struct Planned {
    user: UserName,
    path: PathBuf,
    kind: OtpType,
    params: OtpParams,
    imported: Imported,
    hashes: Vec<RecoveryHash>,
    /// What installing it does: enroll, or replace which enrollment.
    change: &'static str,
}

impl Planned {
    /// The summary line of this account (no secret, no code).
    fn describe(&self) -> String {
        let mut text = match self.imported.hotp_counter {
            Some(next) => format!("HOTP, SHA1, 6 digits, next counter {next}"),
            None => format!("TOTP, SHA1, 6 digits, {} s", self.params.period),
        };
        if let (OtpType::Totp, Some(skew)) = (self.kind, self.imported.skew.filter(|&s| s != 0)) {
            text.push_str(&format!(", clock skew {skew:+} steps"));
        }
        text.push_str(&format!(", {} scratch codes", self.hashes.len()));
        text
    }
}

pub fn run(inv: &Invocation, args: &ImportArgs) -> Result<(), CliError> {
    let ctx = Context::load_admin("import-google-authenticator", inv)?;
    let template = args.secret.as_deref().unwrap_or(DEFAULT_TEMPLATE);
    check_template(template)?;
    let mut plan = Vec::new();
    if args.all {
        let accounts = super::check::accounts(None)
            .map_err(|e| CliError::ImportRead(PathBuf::from("getent passwd"), e))?;
        let mut bad = Vec::new();
        for account in accounts {
            let Some(path) = expand(template, &account) else {
                continue;
            };
            // An account without the file has nothing to move.
            if !path.exists() && std::fs::symlink_metadata(&path).is_err() {
                continue;
            }
            match plan_one(&ctx, &account.name, &path, args.force) {
                Ok(planned) => plan.push(planned),
                Err(e) => bad.push(format!("{}: {}", printable(account.name.as_bytes()), e)),
            }
        }
        if !bad.is_empty() {
            for line in &bad {
                eprintln!("totpctl: {line}");
            }
            return Err(CliError::ImportBatch(
                PathBuf::from(template),
                format!("{} account(s) cannot be imported (listed above)", bad.len()),
            ));
        }
        if plan.is_empty() {
            return Err(CliError::ImportBatch(
                PathBuf::from(template),
                "no account has this file".into(),
            ));
        }
    } else {
        let Some(name) = args.user.as_deref() else {
            return Err(CliError::Usage(
                "give USER, or --all for every account".into(),
            ));
        };
        let (user, account) = context::system_user(name)?;
        let path = match (&args.path, expand(template, &account)) {
            (Some(path), _) => path.clone(),
            (None, Some(path)) => path,
            (None, None) => return Err(CliError::NoHome(user.to_string())),
        };
        plan.push(plan_one(&ctx, name, &path, args.force).map_err(|e| e.into_error(&path))?);
    }

    if !args.all && !args.dry_run {
        // One account: its notes, then what was done, at length.
        let Some(planned) = plan.pop() else {
            return Ok(());
        };
        for note in &planned.imported.notes {
            eprintln!("totpctl: note: {note}");
        }
        ctx.ensure_dirs()?;
        let (user, path, what, scratch) = (
            planned.user.clone(),
            planned.path.clone(),
            match planned.imported.hotp_counter {
                Some(next) => format!("HOTP, SHA1, 6 digits, next counter {next}"),
                None => format!("SHA1, 6 digits, {} s", planned.params.period),
            },
            planned.hashes.len(),
        );
        install(&ctx, planned)?;
        outln!(
            "Imported {} for '{user}': two-factor login is active with the same app entry \
             ({what}).",
            path.display()
        );
        outln!(
            "{scratch} scratch codes are kept as recovery codes; each works once. \
             'totpctl recovery-codes {user} --regenerate' replaces them."
        );
        outln!(
            "The file itself is left in place; remove it once pam_google_authenticator is no \
             longer in the PAM stack."
        );
        return Ok(());
    }
    for planned in &plan {
        outln!(
            "{}: {}{} {}: {}",
            planned.user,
            if args.dry_run { "would " } else { "" },
            planned.change,
            planned.path.display(),
            planned.describe()
        );
        for note in &planned.imported.notes {
            outln!("{}: note: {note}", planned.user);
        }
    }
    if args.dry_run {
        outln!(
            "Dry run: {} file(s) checked; nothing was changed.",
            plan.len()
        );
        return Ok(());
    }
    ctx.ensure_dirs()?;
    let count = plan.len();
    for planned in plan {
        install(&ctx, planned)?;
    }
    outln!(
        "{count} account(s) imported: two-factor login is active with the same app entries, \
         and each scratch code works once as a recovery code. The files are left in place; \
         remove them once pam_google_authenticator is no longer in any PAM stack."
    );
    Ok(())
}

/// Where google-authenticator looks by default (its `secret=` default).
const DEFAULT_TEMPLATE: &str = "~/.google_authenticator";

/// A `--secret` template is an absolute path or starts with `~/`, and may
/// hold `${USER}` and `${HOME}`, as google-authenticator's `secret=` does.
fn check_template(template: &str) -> Result<(), CliError> {
    let rest = template.replace("${USER}", "u").replace("${HOME}", "/h");
    if !(rest.starts_with('/') || rest.starts_with("~/")) || rest.contains("${") {
        return Err(CliError::Usage(format!(
            "--secret {}: give an absolute path or one starting with ~/; ${{USER}} and \
             ${{HOME}} are the only variables",
            printable(template.as_bytes())
        )));
    }
    Ok(())
}

/// The file of `account` named by `template`; None if it needs a home
/// directory and the account has none.
fn expand(template: &str, account: &User) -> Option<PathBuf> {
    let home = account.dir.to_str().filter(|h| !h.is_empty() && *h != "/");
    let needs_home = template.starts_with("~/") || template.contains("${HOME}");
    let home = match (needs_home, home) {
        (true, None) => return None,
        (_, home) => home.unwrap_or_default(),
    };
    let text = match template.strip_prefix("~/") {
        Some(rest) => format!("{home}/{rest}"),
        None => template.to_owned(),
    };
    Some(PathBuf::from(
        text.replace("${USER}", &account.name)
            .replace("${HOME}", home),
    ))
}

/// Why one account's file cannot be imported.
enum Bad {
    Read(String),
    Format(String),
    Other(Box<CliError>),
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read(e) | Self::Format(e) => f.write_str(e),
            Self::Other(e) => f.write_str(&super::batch::first_part(e)),
        }
    }
}

impl Bad {
    fn into_error(self, path: &Path) -> CliError {
        match self {
            Self::Read(e) => CliError::ImportRead(path.into(), e),
            Self::Format(e) => CliError::ImportFormat(path.into(), e),
            Self::Other(e) => *e,
        }
    }
}

/// Read, parse and check one account's file, and what it would replace.
/// Nothing is written.
fn plan_one(ctx: &Context, name: &str, path: &Path, force: bool) -> Result<Planned, Bad> {
    let (user, account) = context::system_user(name).map_err(|e| Bad::Other(Box::new(e)))?;
    let text = read_file(path, account.uid.as_raw()).map_err(Bad::Read)?;
    let imported = parse(&text).map_err(Bad::Format)?;
    drop(text);
    let kind = match imported.hotp_counter {
        Some(_) => OtpType::Hotp,
        None => OtpType::Totp,
    };
    let period = match kind {
        OtpType::Totp => imported.period,
        OtpType::Hotp => 30,
    };
    let params = OtpParams::new(Algorithm::SHA1, 6, period).map_err(Bad::Format)?;
    let mut hashes: Vec<RecoveryHash> = Vec::new();
    for (id, code) in (1..).zip(imported.scratch.iter()) {
        match recovery::hash_existing(id, code).map_err(|e| Bad::Other(Box::new(e.into())))? {
            Some(hash) => hashes.push(hash),
            None => return Err(Bad::Format(format!("scratch code {id} is not 8 digits"))),
        }
    }
    let change = match ctx.load_record(&user) {
        Ok(None) => "import",
        Ok(Some(r)) if r.status == Status::Pending => "replace the pending enrollment with",
        Ok(Some(_)) if force => "replace the active enrollment with",
        Ok(Some(_)) => {
            return Err(Bad::Other(Box::new(CliError::AlreadyActive {
                user: user.to_string(),
                command: "import-google-authenticator",
            })))
        }
        Err(CliError::CorruptRecord { .. }) if force => "replace the unreadable record with",
        Err(e) => return Err(Bad::Other(Box::new(e))),
    };
    Ok(Planned {
        user,
        path: path.into(),
        kind,
        params,
        imported,
        hashes,
        change,
    })
}

/// Install one planned account as an active record, with its HOTP counter
/// or its learned skew, under its lock.
fn install(ctx: &Context, planned: Planned) -> Result<(), CliError> {
    let Planned {
        user,
        kind,
        params,
        imported,
        hashes,
        ..
    } = planned;
    let now = now_unix();
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
        serial: None,
    };
    let lock = ctx.lock(&user)?;
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
    Ok(())
}

/// Read the file without following a symlink: a regular file with one
/// link, owned by the account (as google-authenticator itself requires) or
/// by root, bounded in size. So a user cannot have another account's file
/// (a hard link, a symlink) imported as theirs.
fn read_file(path: &Path, owner: u32) -> Result<Zeroizing<String>, String> {
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
    if meta.uid() != owner && meta.uid() != 0 {
        return Err(format!(
            "it is owned by uid {}, neither the account's (uid {owner}) nor root's",
            meta.uid()
        ));
    }
    if meta.nlink() != 1 {
        return Err(format!(
            "it has {} hard links; copy it to a file of its own first",
            meta.nlink()
        ));
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
    // Where the WINDOW_SIZE note goes: its text depends on HOTP_COUNTER,
    // which may come later in the file.
    let mut window_size = None;
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
                "WINDOW_SIZE" => {
                    window_size = Some(notes.len());
                    notes.push(String::new());
                }
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
    if let Some(at) = window_size {
        notes[at] = match hotp_counter {
            Some(_) => "WINDOW_SIZE is not imported; the [otp] look_ahead in config.toml applies \
                        (how many HOTP codes ahead of the counter are accepted)"
                .into(),
            None => "WINDOW_SIZE is not imported; the [otp] window in config.toml applies".into(),
        };
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
    fn secret_templates_as_google_authenticator_expands_them() {
        let account = |home: &str| User {
            name: "alice".into(),
            passwd: std::ffi::CString::default(),
            uid: nix::unistd::Uid::from_raw(1000),
            gid: nix::unistd::Gid::from_raw(1000),
            gecos: std::ffi::CString::default(),
            dir: PathBuf::from(home),
            shell: PathBuf::from("/bin/sh"),
        };
        let alice = account("/home/alice");
        for (template, expected) in [
            (
                "~/.google_authenticator",
                Some("/home/alice/.google_authenticator"),
            ),
            ("${HOME}/.ga", Some("/home/alice/.ga")),
            ("/var/lib/ga/${USER}", Some("/var/lib/ga/alice")),
            ("/srv/${USER}/${HOME}", Some("/srv/alice//home/alice")),
        ] {
            assert_eq!(
                expand(template, &alice).as_deref(),
                expected.map(std::path::Path::new),
                "{template}"
            );
        }
        // No home: only templates that do not need one.
        let homeless = account("/");
        assert_eq!(expand("~/.google_authenticator", &homeless), None);
        assert_eq!(
            expand("/var/lib/ga/${USER}", &homeless).as_deref(),
            Some(std::path::Path::new("/var/lib/ga/alice"))
        );
        for bad in ["relative/${USER}", "/x/${UID}", "$HOME/x"] {
            assert!(check_template(bad).is_err(), "{bad}");
        }
        assert!(check_template("/etc/ga/${USER}").is_ok());
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
