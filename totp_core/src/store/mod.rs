//! Where records and login state live, behind one interface that the module
//! and totpctl use alike. Which backend serves a call is chosen once, from
//! `[store] backend` in the config; no caller knows or asks.
//!
//! - [`files`]: `users_dir` and `state_dir` on this host, a per-user lock
//!   file serialising every read-modify-write.
//! - LDAP (the `totp_ldap` crate, behind [`Backend`]): one entry per user in
//!   a directory the fleet shares. There is no lock: every state write is a
//!   compare-and-swap on a serial number, and a write that lost the race
//!   fails with [`StoreError::Conflict`]; the caller reads again and decides
//!   again (see [`crate::attempt`]). It lives in its own crate so that the
//!   files-only `pam_totp.so` does not carry an LDAP client and TLS: the
//!   programs that can talk to LDAP register it with [`set_ldap_opener`].
//!
//! The contract both keep: a [`UserLock`] is held for one read-decide-write
//! and nothing else; [`UserLock::write_state`] either replaces the whole
//! state or fails, and with LDAP it fails if anything changed the state since
//! this lock last read or wrote it.

pub mod files;
pub mod slots;

use crate::config::{Backend as BackendKind, Config, Paths};
use crate::directory_check::Verdict;
use crate::names::UserName;
use crate::otp::Code;
use crate::record::UserRecord;
use crate::state::LoginState;
use files::{FileLock, FileStore};
use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// Records above this size are refused unread.
pub const RECORD_LIMIT: u64 = 64 * 1024;
const STATE_LIMIT: u64 = 64 * 1024;

/// The store of records and login state.
#[derive(Debug)]
pub struct Store(Inner);

#[derive(Debug)]
enum Inner {
    Files(FileStore),
    Other(Box<dyn Backend>),
}

/// A store other than the files: what [`Store`] asks of it.
pub trait Backend: fmt::Debug {
    /// Where a user's record lives, for messages.
    fn record_location(&self, user: &UserName) -> String;
    fn load_record(&self, user: &UserName) -> Result<Option<UserRecord>, StoreError>;
    fn peek_state(&self, user: &UserName) -> Result<StateRead, StoreError>;
    fn lock<'a>(&'a self, user: &UserName) -> Result<Box<dyn BackendLock + 'a>, StoreError>;
    fn list_users(&self) -> Result<Vec<UserName>, StoreError>;
    /// See [`Store::take_notes`].
    fn take_notes(&self) -> Vec<String>;
}

/// A user's lock (or compare-and-swap session) on a [`Backend`]; see
/// [`UserLock`] for the contract.
pub trait BackendLock {
    fn user(&self) -> &UserName;
    fn read_state(&self) -> StateRead;
    fn write_state(&self, state: &LoginState) -> Result<(), StoreError>;
    fn write_record(&self, record: &UserRecord) -> Result<(), StoreError>;
    fn remove_all(&self) -> Result<bool, StoreError>;
    /// See [`UserLock::check_code`]. A store that keeps the secrets with
    /// the records never checks codes itself.
    fn check_code(&self, record: &UserRecord, code: &Code) -> Result<Verdict, StoreError> {
        let _ = (record, code);
        Err(no_directory_check())
    }
}

fn no_directory_check() -> StoreError {
    StoreError::Unavailable(
        "the record's secret is held by the directory, and this store cannot have the \
         directory check a code"
            .into(),
    )
}

/// Opens the LDAP store of a config.
pub type Opener = fn(&Config) -> Result<Box<dyn Backend>, StoreError>;

static LDAP_OPENER: OnceLock<Opener> = OnceLock::new();

/// Make `backend = "ldap"` available in this process (totpctl, the helper
/// and `pam_totp_ldap.so` call this first; the first call wins).
pub fn set_ldap_opener(opener: Opener) {
    let _ = LDAP_OPENER.set(opener);
}

/// Whether this process can open the LDAP store (see [`set_ldap_opener`]).
pub fn has_ldap() -> bool {
    LDAP_OPENER.get().is_some()
}

#[derive(Debug)]
pub enum StoreError {
    /// The users or state directory cannot be trusted or opened.
    Directory(PathBuf, crate::fsio::FileError),
    /// The record exists but cannot be trusted or read.
    Record(PathBuf, crate::fsio::FileError),
    /// The record was read but does not parse (where, why).
    Corrupt(String, String),
    /// The user's lock cannot be taken (in time).
    Lock(PathBuf, crate::fsio::FileError),
    /// Writing failed.
    Write(PathBuf, std::io::Error),
    /// The directory server did not answer as it should: which server (or
    /// servers), and what went wrong.
    Ldap { server: String, error: String },
    /// The state changed since it was read (another host or process wrote
    /// it first): nothing was written. Read again and decide again.
    Conflict(String),
    /// The store cannot be used as configured (what is missing).
    Unavailable(String),
    /// A directory bind's password file cannot be read (as the user: a
    /// screen locker, which then hands the code to the helper).
    Credentials(PathBuf, crate::fsio::FileError),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Directory(p, e) => write!(f, "directory {} {e}", p.display()),
            Self::Record(p, e) => write!(f, "user record {} {e}", p.display()),
            Self::Corrupt(p, e) => write!(f, "user record {p} is invalid: {e}"),
            Self::Lock(p, e) => write!(f, "state lock {} {e}", p.display()),
            Self::Write(p, e) => write!(f, "cannot write {}: {e}", p.display()),
            Self::Ldap { server, error } => write!(f, "LDAP server {server}: {error}"),
            Self::Conflict(what) => write!(f, "{what} changed meanwhile (another login or host)"),
            Self::Unavailable(why) => write!(f, "{why}"),
            Self::Credentials(p, e) => write!(f, "LDAP bind password file {} {e}", p.display()),
        }
    }
}

impl std::error::Error for StoreError {}

/// The state as read, and what was wrong with it if it had to be ignored.
pub struct StateRead {
    pub state: LoginState,
    pub problem: Option<String>,
    /// No usable state was found (files: none at all, or one that is
    /// corrupt or untrusted), so `state` is a fresh one. A fresh state
    /// forgets which recovery codes were used and the next HOTP counter:
    /// [`crate::attempt`] then treats every recovery code as used, and a
    /// HOTP record has no counter until `totpctl unlock --counter`.
    pub lost: bool,
}

impl Store {
    /// The files backend on `paths`.
    pub fn new(paths: &Paths) -> Self {
        Self(Inner::Files(FileStore::new(paths)))
    }

    /// The backend the config chooses. Nothing is opened or contacted yet.
    pub fn from_config(config: &Config) -> Result<Self, StoreError> {
        match config.store.backend {
            BackendKind::Files => Ok(Self::new(&config.paths)),
            BackendKind::Ldap => match LDAP_OPENER.get() {
                Some(open) => open(config).map(|b| Self(Inner::Other(b))),
                None => Err(StoreError::Unavailable(
                    "store.backend = \"ldap\", but this program has no LDAP support".into(),
                )),
            },
        }
    }

    /// Wait at most `deadline` for a user's lock (files; the default is
    /// [`crate::fsio::LOCK_DEADLINE`]).
    pub fn with_lock_deadline(self, deadline: Duration) -> Self {
        match self.0 {
            Inner::Files(files) => Self(Inner::Files(files.with_lock_deadline(deadline))),
            other => Self(other),
        }
    }

    /// The files backend, for the checks and set-up that only it has
    /// (directory ownership and modes).
    pub fn files(&self) -> Option<&FileStore> {
        match &self.0 {
            Inner::Files(files) => Some(files),
            Inner::Other(_) => None,
        }
    }

    /// Where a user's record lives, for messages.
    pub fn record_location(&self, user: &UserName) -> String {
        match &self.0 {
            Inner::Files(files) => files.record_path(user).display().to_string(),
            Inner::Other(other) => other.record_location(user),
        }
    }

    /// Read and parse the user's record. `Ok(None)` means there is none.
    pub fn load_record(&self, user: &UserName) -> Result<Option<UserRecord>, StoreError> {
        match &self.0 {
            Inner::Files(files) => files.load_record(user),
            Inner::Other(other) => other.load_record(user),
        }
    }

    /// Read the user's login state without the lock, to decide before a
    /// prompt whether there is any point in asking. Nothing read here may be
    /// written back: read again under [`Store::lock`] for that.
    pub fn peek_state(&self, user: &UserName) -> Result<StateRead, StoreError> {
        match &self.0 {
            Inner::Files(files) => files.peek_state(user),
            Inner::Other(other) => other.peek_state(user),
        }
    }

    /// Take the user's lock (files: an exclusive lock file, waiting at most
    /// the deadline; LDAP: a session whose writes are compare-and-swap).
    /// Everything that reads and then writes a user's record or state does so
    /// while holding it, and holds it for nothing else: never across a
    /// prompt, a sleep or a write of a file outside the store.
    pub fn lock(&self, user: &UserName) -> Result<UserLock<'_>, StoreError> {
        match &self.0 {
            Inner::Files(files) => files.lock(user).map(|l| UserLock(LockInner::Files(l))),
            Inner::Other(other) => other.lock(user).map(|l| UserLock(LockInner::Other(l))),
        }
    }

    /// What the store noticed on the way that a log should say although the
    /// call succeeded (LDAP: servers that failed before one answered).
    pub fn take_notes(&self) -> Vec<String> {
        match &self.0 {
            Inner::Files(_) => Vec::new(),
            Inner::Other(other) => other.take_notes(),
        }
    }

    /// Every enrolled user name, sorted.
    pub fn list_users(&self) -> Result<Vec<UserName>, StoreError> {
        match &self.0 {
            Inner::Files(files) => files.list_users(),
            Inner::Other(other) => other.list_users(),
        }
    }
}

/// Proof that the caller holds a user's lock; the only way to write their
/// record and state.
pub struct UserLock<'a>(LockInner<'a>);

enum LockInner<'a> {
    Files(FileLock<'a>),
    Other(Box<dyn BackendLock + 'a>),
}

impl UserLock<'_> {
    pub fn user(&self) -> &UserName {
        match &self.0 {
            LockInner::Files(l) => l.user(),
            LockInner::Other(l) => l.user(),
        }
    }

    /// Read the login state. A missing state is a fresh one; a corrupt one is
    /// reported in [`StateRead::problem`] and treated as fresh. Either is
    /// flagged [`StateRead::lost`]: a fresh state forgets the last step (a
    /// TOTP step's own expiry covers that), but it would also forget the
    /// used recovery codes and the HOTP counter, so the caller must not
    /// trust it for those (see [`crate::attempt`]).
    pub fn read_state(&self) -> StateRead {
        match &self.0 {
            LockInner::Files(l) => l.read_state(),
            LockInner::Other(l) => l.read_state(),
        }
    }

    /// Replace the whole state. With LDAP this is a compare-and-swap against
    /// what this lock last read or wrote: [`StoreError::Conflict`] if
    /// anything else wrote in between.
    pub fn write_state(&self, state: &LoginState) -> Result<(), StoreError> {
        match &self.0 {
            LockInner::Files(l) => l.write_state(state),
            LockInner::Other(l) => l.write_state(state),
        }
    }

    /// Replace the record durably (creating it if there is none).
    pub fn write_record(&self, record: &UserRecord) -> Result<(), StoreError> {
        match &self.0 {
            LockInner::Files(l) => l.write_record(record),
            LockInner::Other(l) => l.write_record(record),
        }
    }

    /// Have the directory check `code` against the secret it holds for
    /// this user (`ldap.verify = "directory"`), and say which step or
    /// counter it accepted; only for a record whose secret is
    /// [`held by the directory`](crate::secret::SecretBytes::held_by_directory).
    /// Accepting there uses nothing up here: see [`crate::directory_check`].
    pub fn check_code(&self, record: &UserRecord, code: &Code) -> Result<Verdict, StoreError> {
        match &self.0 {
            LockInner::Files(_) => Err(no_directory_check()),
            LockInner::Other(l) => l.check_code(record, code),
        }
    }

    /// Remove the record and the state. Returns whether a record existed.
    pub fn remove_all(&self) -> Result<bool, StoreError> {
        match &self.0 {
            LockInner::Files(l) => l.remove_all(),
            LockInner::Other(l) => l.remove_all(),
        }
    }
}

/// A private store in a temporary directory, for unit tests; removed when
/// the [`testing::Scratch`] is dropped.
#[cfg(test)]
pub(crate) mod testing {
    use super::Store;
    use crate::config::{OtpConfig, Paths, Throttle};
    use crate::otp::Algorithm;
    use std::path::PathBuf;

    /// The OTP settings of the unit tests: the defaults, spelled out.
    pub(crate) const OTP: OtpConfig = OtpConfig {
        window: 1,
        look_ahead: 10,
        resync_window: 10,
        algorithm: Algorithm::SHA1,
        digits: 6,
        period: 30,
    };

    /// A throttle that never gets in a unit test's way.
    pub(crate) const FREE: Throttle = Throttle {
        max_failures: 100,
        lockout_seconds: 60,
        backoff_seconds: 0,
        backoff_max_seconds: 0,
        hard_cap: 100,
    };

    pub(crate) struct Scratch(pub(crate) PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// `users/` and `state/` (0700) under a fresh directory named after `name`.
    pub(crate) fn scratch_store(name: &str) -> (Scratch, Store) {
        let dir = std::env::temp_dir().join(format!("totp_core-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let paths = Paths {
            users_dir: dir.join("users"),
            state_dir: dir.join("state"),
            ..Paths::default()
        };
        crate::fsio::ensure_private_dir(&paths.users_dir).unwrap();
        crate::fsio::ensure_private_dir(&paths.state_dir).unwrap();
        (Scratch(dir), Store::new(&paths))
    }
}

#[cfg(test)]
mod state_tests;
