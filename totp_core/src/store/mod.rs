//! Where records and login state live, behind one interface that the module
//! and totpctl use alike. Which backend serves a call is chosen once, from
//! `[store] backend` in the config; no caller knows or asks.
//!
//! - [`files`]: `users_dir` and `state_dir` on this host, a per-user lock
//!   file serialising every read-modify-write.
//! - `ldap` (with the `ldap` feature): one entry per user in a directory the
//!   fleet shares. There is no lock: every state write is a compare-and-swap
//!   on a serial number, and a write that lost the race fails with
//!   [`StoreError::Conflict`]; the caller reads again and decides again (see
//!   [`crate::attempt`]).
//!
//! The contract both keep: a [`UserLock`] is held for one read-decide-write
//! and nothing else; [`UserLock::write_state`] either replaces the whole
//! state or fails, and with LDAP it fails if anything changed the state since
//! this lock last read or wrote it.

pub mod files;
#[cfg(feature = "ldap")]
pub mod ldap;

use crate::config::{Backend, Config, Paths};
use crate::names::UserName;
use crate::record::UserRecord;
use crate::state::LoginState;
use files::{FileLock, FileStore};
use std::fmt;
use std::path::PathBuf;
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
    #[cfg(feature = "ldap")]
    Ldap(Box<ldap::LdapStore>),
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
        }
    }
}

impl std::error::Error for StoreError {}

/// The state as read, and what was wrong with it if it had to be ignored.
pub struct StateRead {
    pub state: LoginState,
    pub problem: Option<String>,
}

impl Store {
    /// The files backend on `paths`.
    pub fn new(paths: &Paths) -> Self {
        Self(Inner::Files(FileStore::new(paths)))
    }

    /// The backend the config chooses. Nothing is opened or contacted yet.
    pub fn from_config(config: &Config) -> Result<Self, StoreError> {
        match config.store.backend {
            Backend::Files => Ok(Self::new(&config.paths)),
            #[cfg(feature = "ldap")]
            Backend::Ldap => Ok(Self(Inner::Ldap(Box::new(ldap::LdapStore::new(
                &config.ldap,
            ))))),
            #[cfg(not(feature = "ldap"))]
            Backend::Ldap => Err(StoreError::Unavailable(
                "store.backend = \"ldap\" but this build has no LDAP support".into(),
            )),
        }
    }

    /// Wait at most `deadline` for a user's lock (files; the default is
    /// [`crate::fsio::LOCK_DEADLINE`]).
    pub fn with_lock_deadline(self, deadline: Duration) -> Self {
        match self.0 {
            Inner::Files(files) => Self(Inner::Files(files.with_lock_deadline(deadline))),
            #[cfg(feature = "ldap")]
            other => Self(other),
        }
    }

    /// The files backend, for the checks and set-up that only it has
    /// (directory ownership and modes).
    pub fn files(&self) -> Option<&FileStore> {
        match &self.0 {
            Inner::Files(files) => Some(files),
            #[cfg(feature = "ldap")]
            Inner::Ldap(_) => None,
        }
    }

    /// The LDAP backend, for `totpctl check` and `migrate`.
    #[cfg(feature = "ldap")]
    pub fn ldap(&self) -> Option<&ldap::LdapStore> {
        match &self.0 {
            Inner::Ldap(ldap) => Some(ldap),
            Inner::Files(_) => None,
        }
    }

    /// Where a user's record lives, for messages.
    pub fn record_location(&self, user: &UserName) -> String {
        match &self.0 {
            Inner::Files(files) => files.record_path(user).display().to_string(),
            #[cfg(feature = "ldap")]
            Inner::Ldap(ldap) => ldap.entry_dn(user),
        }
    }

    /// Read and parse the user's record. `Ok(None)` means there is none.
    pub fn load_record(&self, user: &UserName) -> Result<Option<UserRecord>, StoreError> {
        match &self.0 {
            Inner::Files(files) => files.load_record(user),
            #[cfg(feature = "ldap")]
            Inner::Ldap(ldap) => ldap.load_record(user),
        }
    }

    /// Read the user's login state without the lock, to decide before a
    /// prompt whether there is any point in asking. Nothing read here may be
    /// written back: read again under [`Store::lock`] for that.
    pub fn peek_state(&self, user: &UserName) -> Result<StateRead, StoreError> {
        match &self.0 {
            Inner::Files(files) => files.peek_state(user),
            #[cfg(feature = "ldap")]
            Inner::Ldap(ldap) => ldap.peek_state(user),
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
            #[cfg(feature = "ldap")]
            Inner::Ldap(ldap) => ldap
                .lock(user)
                .map(|l| UserLock(LockInner::Ldap(Box::new(l)))),
        }
    }

    /// What the store noticed on the way that a log should say although the
    /// call succeeded (LDAP: servers that failed before one answered).
    pub fn take_notes(&self) -> Vec<String> {
        match &self.0 {
            Inner::Files(_) => Vec::new(),
            #[cfg(feature = "ldap")]
            Inner::Ldap(ldap) => ldap.failover_notes(),
        }
    }

    /// Every enrolled user name, sorted.
    pub fn list_users(&self) -> Result<Vec<UserName>, StoreError> {
        match &self.0 {
            Inner::Files(files) => files.list_users(),
            #[cfg(feature = "ldap")]
            Inner::Ldap(ldap) => ldap.list_users(),
        }
    }
}

/// Proof that the caller holds a user's lock; the only way to write their
/// record and state.
pub struct UserLock<'a>(LockInner<'a>);

enum LockInner<'a> {
    Files(FileLock<'a>),
    #[cfg(feature = "ldap")]
    Ldap(Box<ldap::LdapLock<'a>>),
}

impl UserLock<'_> {
    pub fn user(&self) -> &UserName {
        match &self.0 {
            LockInner::Files(l) => l.user(),
            #[cfg(feature = "ldap")]
            LockInner::Ldap(l) => l.user(),
        }
    }

    /// Read the login state. A missing state is a fresh one; a corrupt one is
    /// reported in [`StateRead::problem`] and treated as fresh, which can
    /// only forget failures and the last step, never invent a success.
    pub fn read_state(&self) -> StateRead {
        match &self.0 {
            LockInner::Files(l) => l.read_state(),
            #[cfg(feature = "ldap")]
            LockInner::Ldap(l) => l.read_state(),
        }
    }

    /// Replace the whole state. With LDAP this is a compare-and-swap against
    /// what this lock last read or wrote: [`StoreError::Conflict`] if
    /// anything else wrote in between.
    pub fn write_state(&self, state: &LoginState) -> Result<(), StoreError> {
        match &self.0 {
            LockInner::Files(l) => l.write_state(state),
            #[cfg(feature = "ldap")]
            LockInner::Ldap(l) => l.write_state(state),
        }
    }

    /// Replace the record durably (creating it if there is none).
    pub fn write_record(&self, record: &UserRecord) -> Result<(), StoreError> {
        match &self.0 {
            LockInner::Files(l) => l.write_record(record),
            #[cfg(feature = "ldap")]
            LockInner::Ldap(l) => l.write_record(record),
        }
    }

    /// Remove the record and the state. Returns whether a record existed.
    pub fn remove_all(&self) -> Result<bool, StoreError> {
        match &self.0 {
            LockInner::Files(l) => l.remove_all(),
            #[cfg(feature = "ldap")]
            LockInner::Ldap(l) => l.remove_all(),
        }
    }
}

/// A private store in a temporary directory, for unit tests; removed when
/// the [`testing::Scratch`] is dropped.
#[cfg(test)]
pub(crate) mod testing {
    use super::Store;
    use crate::config::Paths;
    use std::path::PathBuf;

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
        };
        crate::fsio::ensure_private_dir(&paths.users_dir).unwrap();
        crate::fsio::ensure_private_dir(&paths.state_dir).unwrap();
        (Scratch(dir), Store::new(&paths))
    }
}
