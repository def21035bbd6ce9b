//! Where each user's files live, and the per-user lock that serialises every
//! read-modify-write of them (logins and totpctl alike).

use crate::config::Paths;
use crate::fsio::{self, FileError, Trust};
use crate::names::UserName;
use crate::record::UserRecord;
use crate::state::LoginState;
use nix::fcntl::Flock;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Records above this size are refused unread.
pub const RECORD_LIMIT: u64 = 64 * 1024;
const STATE_LIMIT: u64 = 64 * 1024;

#[derive(Clone, Debug)]
pub struct Store {
    users_dir: PathBuf,
    state_dir: PathBuf,
}

#[derive(Debug)]
pub enum StoreError {
    /// The record exists but cannot be trusted or read.
    Record(PathBuf, FileError),
    /// The record was read but does not parse.
    Corrupt(PathBuf, String),
    /// The state directory or lock cannot be used.
    Lock(PathBuf, FileError),
    /// Writing failed.
    Write(PathBuf, std::io::Error),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Record(p, e) => write!(f, "user record {} {e}", p.display()),
            Self::Corrupt(p, e) => write!(f, "user record {} is invalid: {e}", p.display()),
            Self::Lock(p, e) => write!(f, "state lock {} {e}", p.display()),
            Self::Write(p, e) => write!(f, "cannot write {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for StoreError {}

impl Store {
    pub fn new(paths: &Paths) -> Self {
        Self {
            users_dir: paths.users_dir.clone(),
            state_dir: paths.state_dir.clone(),
        }
    }

    pub fn users_dir(&self) -> &Path {
        &self.users_dir
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    pub fn record_path(&self, user: &UserName) -> PathBuf {
        self.users_dir.join(format!("{user}.toml"))
    }

    pub fn state_path(&self, user: &UserName) -> PathBuf {
        self.state_dir.join(format!("{user}.state"))
    }

    fn lock_path(&self, user: &UserName) -> PathBuf {
        self.state_dir.join(format!("{user}.lock"))
    }

    /// Read and parse the user's record. `Ok(None)` means there is none.
    pub fn load_record(&self, user: &UserName) -> Result<Option<UserRecord>, StoreError> {
        let path = self.record_path(user);
        match fsio::read_checked(&path, Trust::Private, RECORD_LIMIT) {
            Ok(text) => UserRecord::parse(&text)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(path, e)),
            Err(FileError::Missing) => Ok(None),
            Err(e) => Err(StoreError::Record(path, e)),
        }
    }

    /// Take the user's exclusive lock. Everything that reads and then writes a
    /// user's record or state does so while holding it.
    pub fn lock(&self, user: &UserName) -> Result<UserLock<'_>, StoreError> {
        let path = self.lock_path(user);
        let guard = fsio::lock_exclusive(&path).map_err(|e| StoreError::Lock(path, e))?;
        Ok(UserLock {
            store: self,
            user: user.clone(),
            _guard: guard,
        })
    }

    /// Every user name with a record file, sorted.
    pub fn list_users(&self) -> std::io::Result<Vec<UserName>> {
        let mut users = Vec::new();
        for entry in std::fs::read_dir(&self.users_dir)? {
            let name = entry?.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".toml")) else {
                continue;
            };
            if let Ok(user) = UserName::parse(stem.as_bytes()) {
                users.push(user);
            }
        }
        users.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(users)
    }
}

/// Proof that the caller holds a user's lock; the only way to write their files.
pub struct UserLock<'a> {
    store: &'a Store,
    user: UserName,
    _guard: Flock<File>,
}

/// The state as read, and what was wrong with the file if it had to be ignored.
pub struct StateRead {
    pub state: LoginState,
    pub problem: Option<String>,
}

impl UserLock<'_> {
    pub fn user(&self) -> &UserName {
        &self.user
    }

    /// Read the login state. A missing file is a fresh state; a corrupt or
    /// untrusted one is reported and treated as fresh, which can only forget
    /// failures and the last step, never invent a success.
    pub fn read_state(&self) -> StateRead {
        let path = self.store.state_path(&self.user);
        let problem = match fsio::read_checked(&path, Trust::Private, STATE_LIMIT) {
            Ok(text) => match LoginState::parse(&text) {
                Ok(state) => {
                    return StateRead {
                        state,
                        problem: None,
                    }
                }
                Err(e) => format!(
                    "state file {} is corrupt ({e}); starting afresh",
                    path.display()
                ),
            },
            Err(FileError::Missing) => {
                return StateRead {
                    state: LoginState::new(),
                    problem: None,
                };
            }
            Err(e) => format!("state file {} {e}; starting afresh", path.display()),
        };
        StateRead {
            state: LoginState::new(),
            problem: Some(problem),
        }
    }

    /// Replace the state atomically. No fsync: losing this write in a crash can
    /// only re-admit a code whose step has already expired.
    pub fn write_state(&self, state: &LoginState) -> Result<(), StoreError> {
        let path = self.store.state_path(&self.user);
        fsio::replace_unsynced(&path, state.to_toml().as_bytes())
            .map_err(|e| StoreError::Write(path, e))
    }

    /// Replace the record durably: temp file, fsync, rename, fsync of the directory.
    pub fn write_record(&self, record: &UserRecord) -> Result<(), StoreError> {
        let path = self.store.record_path(&self.user);
        let text = record
            .to_toml()
            .map_err(|e| StoreError::Write(path.clone(), std::io::Error::other(e)))?;
        fsio::write_atomic(&path, text.as_bytes(), true).map_err(|e| StoreError::Write(path, e))
    }

    /// Remove the record and the state. Returns whether a record existed.
    pub fn remove_all(&self) -> Result<bool, StoreError> {
        let record = self.store.record_path(&self.user);
        let existed = fsio::remove(&record, true).map_err(|e| StoreError::Write(record, e))?;
        let state = self.store.state_path(&self.user);
        fsio::remove(&state, false).map_err(|e| StoreError::Write(state, e))?;
        Ok(existed)
    }
}
