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
    Code {
        user: String,
        why: EnrollmentError,
    },
    /// No code arrived where one was needed.
    NoCode(String),
    Random(SecretError),
    ImportRead(PathBuf, String),
    ImportFormat(PathBuf, String),
    NoHome(String),
    /// The issuer would make an invalid record (too long, control characters).
    InvalidIssuer(String),
    Output(String, std::io::Error),
    /// `check` found this many errors (already printed, one a line).
    CheckFailed {
        errors: usize,
    },
}

impl CliError {
    /// 2 for a malformed command line, 1 for everything that failed after.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::InvalidUser { .. } | Self::InvalidIssuer(_) => 2,
            _ => 1,
        }
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
            Self::Code { user, why } => {
                let hint = match why {
                    EnrollmentError::Malformed(_) => "Type the digits the app shows now.",
                    EnrollmentError::Wrong => {
                        "Check that the phone's clock is right and that the app entry is the new one."
                    }
                    EnrollmentError::Replayed => "Wait for the app to show the next code.",
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
            Self::NoHome(user) => write!(
                f,
                "'{user}' has no home directory to look in; {UNCHANGED}. Give the file as the \
                 PATH argument."
            ),
            Self::InvalidIssuer(e) => write!(
                f,
                "the issuer cannot be used ({e}); {UNCHANGED}. Give a shorter --issuer without \
                 control characters."
            ),
            Self::Output(what, e) => write!(f, "cannot write {what}: {e}"),
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
