//! Every way a totpctl command can fail, each with a message that says what
//! happened and what to do next. No variant carries a secret or a code.

use std::fmt;
use std::path::PathBuf;
use totp_core::attempt::Refusal;
use totp_core::config::ConfigError;
use totp_core::enrollment::{EnrollmentError, ProofError};
use totp_core::names::NameError;
use totp_core::secret::SecretError;
use totp_core::store::StoreError;

use crate::privilege::Unprivileged;
use crate::qr::QrError;

#[derive(Debug)]
pub enum CliError {
    /// Run by an ordinary user without privileges (self-service is off, or
    /// the kernel did not honour the setuid bit).
    NotRoot {
        command: &'static str,
        why: Unprivileged,
    },
    /// Setuid, but to someone other than root.
    SetuidNotRoot {
        euid: u32,
    },
    /// A setuid start could not undo the caller's limits or signals.
    UnsafeStart {
        what: &'static str,
        error: nix::Error,
    },
    /// A self-service caller outside the self-service group.
    NotMember,
    /// A self-service caller tried a command that is for root only.
    AdminOnly {
        command: &'static str,
    },
    /// A self-service caller named another user.
    OtherUser {
        me: String,
        other: String,
    },
    /// A self-service change to an active enrollment was not proved.
    Proof {
        user: String,
        why: ProofError,
    },
    /// A self-service caller met a corrupt record, which only root may replace.
    CorruptOwnRecord,
    /// Running a system tool (dpkg-statoverride, groupadd) failed.
    Tool(String),
    /// The user name cannot be a login name (shown escaped).
    InvalidUser {
        shown: String,
        why: NameError,
    },
    /// No such account in the passwd database.
    UnknownUser(String),
    /// The passwd lookup itself failed.
    UserLookup(String, nix::Error),
    Config(ConfigError),
    /// Reading or writing the store failed.
    Store(StoreError),
    /// The existing record cannot be parsed; `command` would replace it with `--force`.
    CorruptRecord {
        user: String,
        error: StoreError,
    },
    NotEnrolled(String),
    AlreadyActive {
        user: String,
        command: &'static str,
    },
    /// `activate` on an active record.
    NotPending(String),
    /// Recovery codes for a record that is not active yet.
    StillPending(String),
    QrExists(PathBuf),
    QrSymlink(PathBuf),
    QrNoDirectory(PathBuf),
    QrNotFile(PathBuf),
    QrWrite(PathBuf, std::io::Error),
    /// The `.jpg` is created as the user it is for, who may not write there.
    QrDenied {
        path: PathBuf,
        user: String,
    },
    Qr(QrError),
    /// A code was given but not accepted; the record stays pending.
    /// `unusual` names the enrollment's settings that some apps ignore
    /// (`8 digits or a 60 s period`), if any.
    Code {
        user: String,
        why: EnrollmentError,
        unusual: Option<String>,
    },
    /// No code arrived where one was needed.
    NoCode(String),
    Random(SecretError),
    ImportRead(PathBuf, String),
    ImportFormat(PathBuf, String),
    /// import-tokens or import-pam-oath: a bad line or a file that is not
    /// root's 0600; nothing was changed.
    ImportBatch(PathBuf, String),
    NoHome(String),
    /// `resync`: the two codes were refused (why), or matched no consecutive
    /// pair in the range searched.
    Resync {
        user: String,
        why: ProofError,
    },
    /// The issuer would make an invalid record (too long, control characters).
    /// The issuer cannot be stored or put in a URI: why, and where it came
    /// from (`--issuer`, the config file, or the host name).
    InvalidIssuer {
        why: String,
        from: String,
    },
    Output(String, std::io::Error),
    /// `check` found this many errors (already printed, one a line).
    CheckFailed {
        errors: usize,
    },
    /// The command line cannot be carried out as given (clap's own errors
    /// are rendered by clap; this is for the combinations it cannot see).
    Usage(String),
    /// `enroll --qr -` with standard output on a terminal.
    QrToTerminal,
}

impl CliError {
    /// 2 for a malformed command line, 1 for everything that failed after.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::InvalidUser { .. } | Self::InvalidIssuer { .. } | Self::Usage(_) => 2,
            _ => 1,
        }
    }

    /// The stable, machine-readable name of this failure, for
    /// `{"error":{"code":...}}` under `--json` (the table is in
    /// [`crate::cli::JSON_HELP`]). Never changes for a given failure: the
    /// Cockpit page and scripts branch on it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotRoot {
                why: Unprivileged::NotSetuid,
                ..
            } => "not_root",
            Self::NotRoot { .. } => "setuid_ignored",
            Self::SetuidNotRoot { .. } => "setuid_wrong_owner",
            Self::UnsafeStart { .. } => "unsafe_start",
            Self::NotMember => "not_member",
            Self::AdminOnly { .. } => "admin_only",
            Self::OtherUser { .. } => "other_user",
            // A failure that could not be recorded reads exactly like a
            // wrong answer, here as in the message.
            Self::Proof { why, .. } => match refused_code(why) {
                Some(code) => code,
                None => "proof_failed",
            },
            Self::CorruptOwnRecord | Self::CorruptRecord { .. } => "corrupt_record",
            Self::Tool(_) => "tool_failed",
            Self::InvalidUser { .. } => "invalid_user",
            Self::UnknownUser(_) => "unknown_user",
            Self::UserLookup(..) => "user_lookup_failed",
            Self::Config(_) => "config_error",
            Self::Store(_) => "store_error",
            Self::NotEnrolled(_) => "not_enrolled",
            Self::AlreadyActive { .. } => "already_active",
            Self::NotPending(_) => "not_pending",
            Self::StillPending(_) => "still_pending",
            Self::QrExists(_) => "qr_exists",
            Self::QrSymlink(_) => "qr_symlink",
            Self::QrNoDirectory(_) => "qr_no_directory",
            Self::QrNotFile(_) => "qr_not_file",
            Self::QrWrite(..) => "qr_write_failed",
            Self::QrDenied { .. } => "qr_denied",
            Self::Qr(_) => "qr_error",
            Self::QrToTerminal => "qr_terminal",
            Self::Code { why, .. } => match why {
                EnrollmentError::Malformed(totp_core::answer::Malformed::Empty) => "no_code",
                EnrollmentError::Malformed(_) => "malformed_code",
                EnrollmentError::Wrong | EnrollmentError::ClockOff { .. } => "wrong_code",
                EnrollmentError::Replayed => "code_used",
                EnrollmentError::Locked(_) => "locked_out",
                EnrollmentError::TooSoon { .. } => "too_soon",
                EnrollmentError::NotPending => "not_pending",
                EnrollmentError::Store(_) => "store_error",
                EnrollmentError::Random(_) => "internal",
            },
            Self::NoCode(_) => "no_code",
            Self::Random(_) => "internal",
            Self::ImportRead(..) => "import_read_failed",
            Self::ImportFormat(..) | Self::ImportBatch(..) => "import_format",
            Self::NoHome(_) => "no_home",
            // root's command: a state that could not be written is said.
            Self::Resync { why, .. } => match (refused_code(why), why) {
                (Some(code), _) => code,
                (
                    None,
                    ProofError::Refused {
                        refusal: Refusal::NotCounted { .. } | Refusal::NotSaved { .. },
                        ..
                    },
                ) => "store_error",
                (None, _) => "resync_failed",
            },
            Self::InvalidIssuer { .. } => "invalid_issuer",
            Self::Output(..) => "io_error",
            Self::CheckFailed { .. } => "check_failed",
            Self::Usage(_) => "usage",
        }
    }
}

/// The code of a refusal that needs no compare (or had nothing to compare),
/// shared by proofs and resync; `None` for an answer compared and refused.
fn refused_code(why: &ProofError) -> Option<&'static str> {
    match why {
        ProofError::Malformed(totp_core::answer::Malformed::Empty) => Some("no_code"),
        ProofError::Malformed(_) => Some("malformed_code"),
        ProofError::Refused {
            refusal: Refusal::Locked(_),
            ..
        } => Some("locked_out"),
        ProofError::Refused {
            refusal: Refusal::TooSoon { .. },
            ..
        } => Some("too_soon"),
        ProofError::Refused { .. } => None,
    }
}

const UNCHANGED: &str = "nothing was changed";

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotRoot {
                command,
                why: Unprivileged::NotSetuid,
            } => write!(
                f,
                "'totpctl {command}' must be run as root: the user records and login state are \
                 readable and writable only by root, and self-service is not enabled on this \
                 system. Run it again with sudo, or ask an administrator to set up two-factor \
                 login for you."
            ),
            Self::NotRoot {
                why: Unprivileged::NoNewPrivs,
                ..
            } => write!(
                f,
                "totpctl is installed for self-service (setuid root), but this process has \
                 no_new_privs set (by a sandbox, a container or systemd's NoNewPrivileges=), so \
                 the kernel did not grant it root. Run it from an ordinary login shell, or ask \
                 an administrator."
            ),
            Self::NotRoot {
                why: Unprivileged::Ignored,
                ..
            } => write!(
                f,
                "totpctl is installed for self-service (setuid root), but the kernel did not \
                 grant it root (is the file system mounted nosuid?). Ask an administrator."
            ),
            Self::SetuidNotRoot { euid } => write!(
                f,
                "totpctl runs with effective uid {euid} instead of root: it is installed setuid \
                 to the wrong owner, and refuses to run. Ask an administrator to run 'totpctl \
                 self-service enable' again."
            ),
            Self::UnsafeStart { what, error } => write!(
                f,
                "totpctl runs setuid root and could not reset {what} inherited from the caller \
                 ({error}), so it refuses to run; nothing was changed. Run it from an ordinary \
                 login shell without unusual limits, or ask an administrator."
            ),
            Self::NotMember => write!(
                f,
                "you may not manage two-factor login yourself on this system. Ask an \
                 administrator to set it up for you."
            ),
            Self::AdminOnly { command } => write!(
                f,
                "'totpctl {command}' is for administrators only; the attempt is logged. Ask an \
                 administrator."
            ),
            Self::OtherUser { me, other } => write!(
                f,
                "you can manage only your own two-factor login ('{me}'), not '{other}'; the \
                 attempt is logged and {UNCHANGED}."
            ),
            Self::Proof { user, why } => match why {
                ProofError::Refused {
                    refusal: Refusal::Locked(_) | Refusal::TooSoon { .. },
                    ..
                } => write!(f, "{why}; {UNCHANGED}."),
                _ => write!(
                    f,
                    "'{user}' has an active enrollment, and changing it needs a current code \
                     from the app or an unused recovery code: {why}; {UNCHANGED}."
                ),
            },
            Self::CorruptOwnRecord => write!(
                f,
                "your two-factor record cannot be read; {UNCHANGED}. Ask an administrator to \
                 reset it ('totpctl reset')."
            ),
            Self::Tool(e) => write!(f, "{e}"),
            Self::InvalidUser { shown, why } => write!(
                f,
                "'{shown}' is not a valid user name ({why}). Give the login name exactly as \
                 'getent passwd' shows it."
            ),
            Self::UnknownUser(user) => write!(
                f,
                "there is no user '{user}' on this system; {UNCHANGED}. Check the spelling \
                 with 'getent passwd {user}', or create the account first."
            ),
            Self::UserLookup(user, e) => write!(
                f,
                "looking up user '{user}' failed ({e}); {UNCHANGED}. Check /etc/nsswitch.conf \
                 and the directory service, then try again."
            ),
            Self::Config(e) => write!(
                f,
                "{e}. Fix the config file (see pam_totp.toml(5)) or point --config at another one."
            ),
            Self::Store(
                e @ (StoreError::Ldap { .. }
                | StoreError::Conflict(_)
                | StoreError::Credentials(..)
                | StoreError::Unavailable(_)),
            ) => write!(
                f,
                "{e}. 'totpctl check' tests the store's settings and the directory's access \
                 rules."
            ),
            Self::Store(e) => write!(
                f,
                "{e}. Check that the pam_totp directories exist, belong to root and have mode 0700."
            ),
            Self::CorruptRecord { user, error } => write!(
                f,
                "{error}; {UNCHANGED}. Fix the file by hand, replace it with --force, or remove \
                 the enrollment with 'totpctl reset {user}'."
            ),
            Self::NotEnrolled(user) => write!(
                f,
                "'{user}' is not enrolled. Start with 'totpctl enroll {user}'."
            ),
            Self::AlreadyActive { user, command } => write!(
                f,
                "'{user}' already has an active enrollment; {UNCHANGED}. To replace it (the \
                 current app entry stops working), run 'totpctl {command} {user} --force'."
            ),
            Self::NotPending(user) => write!(
                f,
                "'{user}' is already active; there is nothing to activate. 'totpctl status \
                 {user}' shows the enrollment."
            ),
            Self::StillPending(user) => write!(
                f,
                "'{user}' has not activated the enrollment yet, and recovery codes are issued at \
                 activation. Run 'totpctl activate {user}' first."
            ),
            Self::QrExists(path) => write!(
                f,
                "{} already exists; {UNCHANGED}. Choose another file with --qr FILE, or \
                 overwrite it with --force.",
                path.display()
            ),
            Self::QrSymlink(path) => write!(
                f,
                "{} is a symbolic link, and totpctl never writes through one; {UNCHANGED}. \
                 Choose another file with --qr FILE.",
                path.display()
            ),
            Self::QrNoDirectory(path) => write!(
                f,
                "the directory for {} does not exist; {UNCHANGED}. Create it, or choose \
                 another file with --qr FILE.",
                path.display()
            ),
            Self::QrNotFile(path) => write!(
                f,
                "{} exists and is not a regular file; {UNCHANGED}. Choose another file with \
                 --qr FILE.",
                path.display()
            ),
            Self::QrWrite(path, e) => write!(
                f,
                "cannot write the QR code to {} ({e}); the enrollment was not saved. Choose \
                 another file with --qr FILE.",
                path.display()
            ),
            Self::QrDenied { path, user } => write!(
                f,
                "cannot create {} as {user}: permission denied; the enrollment was not saved. \
                 The QR code is written with {user}'s own rights: choose a directory {user} can \
                 write, with --qr FILE.",
                path.display()
            ),
            Self::Qr(e) => write!(f, "{e}; {UNCHANGED}."),
            Self::Code { user, why, unusual } => {
                let wrong = "Check that the phone's clock is right and that the app entry is \
                             the new one.";
                let ignored;
                let hint = match why {
                    EnrollmentError::Malformed(_) => "Type the digits the app shows now.",
                    EnrollmentError::Wrong => match unusual {
                        Some(settings) => {
                            ignored = format!(
                                "{wrong} The app may also ignore {settings} (Google \
                                 Authenticator does): then its codes never work; use another \
                                 app, or enroll again with the defaults."
                            );
                            ignored.as_str()
                        }
                        None => wrong,
                    },
                    EnrollmentError::Replayed => "Wait for the app to show the next code.",
                    EnrollmentError::ClockOff { .. } => {
                        "Set the phone to take the time from the network (automatic date and \
                         time), and type the code it shows then."
                    }
                    EnrollmentError::TooSoon { .. } => "Wait, then type the code the app shows.",
                    EnrollmentError::Locked(_) => {
                        "Wait for the lockout to end, or ask an administrator (totpctl unlock)."
                    }
                    _ => "",
                };
                match why {
                    EnrollmentError::Store(_) | EnrollmentError::Random(_) => write!(
                        f,
                        "activating '{user}' failed: {why}; the enrollment stays pending. Fix \
                         the cause and run 'totpctl activate {user}' again."
                    ),
                    _ => write!(
                        f,
                        "the code was not accepted ({why}); '{user}' stays pending. {hint} Then \
                         run 'totpctl activate {user}'."
                    ),
                }
            }
            Self::NoCode(user) => write!(
                f,
                "no code was given; '{user}' stays pending. Run 'totpctl activate {user}' and \
                 type the code the app shows, or pipe it on standard input."
            ),
            Self::Random(e) => write!(f, "{e}; {UNCHANGED}. Try again."),
            Self::ImportRead(path, e) => write!(
                f,
                "cannot read {}: {e}; {UNCHANGED}. Give the right file as the PATH argument.",
                path.display()
            ),
            Self::ImportFormat(path, e) => write!(
                f,
                "{} is not a google-authenticator file that can be imported: {e}; {UNCHANGED}.",
                path.display()
            ),
            Self::ImportBatch(path, e) => write!(f, "{}: {e}; {UNCHANGED}.", path.display()),
            Self::Resync { user, why } => match why {
                ProofError::Refused {
                    refusal: Refusal::Wrong(_),
                    ..
                } => write!(
                    f,
                    "'{user}': the two codes are not consecutive codes of the token within the \
                     range searched ({} counters ahead for HOTP, {} steps either side of now for \
                     TOTP); the counter and the skew are unchanged, and the attempt counts as a \
                     failed login. Give two codes in a row, the one shown first on the first \
                     line.",
                    totp_core::resync::HOTP_RANGE,
                    totp_core::resync::TOTP_STEPS
                ),
                ProofError::Refused {
                    refusal: Refusal::NotCounted { error, .. } | Refusal::NotSaved { error, .. },
                    ..
                } => write!(f, "'{user}': the login state could not be written: {error}; the codes were not used."),
                _ => write!(f, "'{user}': {why}; {UNCHANGED}."),
            },
            Self::NoHome(user) => write!(
                f,
                "'{user}' has no home directory to look in; {UNCHANGED}. Give the file as the \
                 PATH argument."
            ),
            Self::InvalidIssuer { why, from } => write!(
                f,
                "the issuer from {from} cannot be used: {why}; {UNCHANGED}. Give another with \
                 --issuer, or set [enroll] issuer in the config file."
            ),
            Self::Output(what, e) => write!(f, "cannot write {what}: {e}"),
            Self::Usage(e) => write!(f, "{e}"),
            Self::QrToTerminal => write!(
                f,
                "--qr - writes the JPEG bytes to standard output, which is a terminal; nothing \
                 was changed. Redirect it to a file or a program (totpctl enroll --qr - > \
                 FILE.jpg), or give a file with --qr FILE."
            ),
            Self::CheckFailed { errors } => write!(
                f,
                "{errors} error{} found; fix {} before enabling pam_totp or relying on it.",
                if *errors == 1 { "" } else { "s" },
                if *errors == 1 { "it" } else { "them" }
            ),
        }
    }
}

impl std::error::Error for CliError {}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<QrError> for CliError {
    fn from(e: QrError) -> Self {
        Self::Qr(e)
    }
}

impl From<SecretError> for CliError {
    fn from(e: SecretError) -> Self {
        Self::Random(e)
    }
}

#[cfg(test)]
mod tests {
    /// Every code [`super::CliError::code`] can return is in the table of
    /// `totpctl --help` and the man page, and every row of it is one.
    #[test]
    fn every_code_is_documented() {
        let source = include_str!("error.rs");
        let body = source
            .split("pub fn code(&self)")
            .nth(1)
            .and_then(|rest| rest.split("\nimpl ").next())
            .unwrap_or_default();
        let mut codes: Vec<&str> = body
            .split("=> \"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        codes.sort_unstable();
        codes.dedup();
        assert!(codes.len() > 30, "{codes:?}");
        let table = crate::cli::JSON_HELP
            .split("Error codes:\n")
            .nth(1)
            .unwrap_or_default();
        let mut documented: Vec<&str> = table
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        documented.sort_unstable();
        assert_eq!(codes, documented);
        for code in codes {
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
        }
    }
}
