//! The files backend: where each user's files live, and the per-user lock that serialises every
//! read-modify-write of them (logins and totpctl alike).
//!
//! Both directories are opened and checked once per [`FileStore`] (see
//! [`fsio::Dir`]); a directory that is a symlink, not owned by root or
//! writable by group or others is refused, and so is every login that
//! would use it.

use super::{StateRead, StoreError, RECORD_LIMIT, STATE_LIMIT};
use crate::config::Paths;
use crate::fsio::{self, Dir, FileError, Identity, Trust};
use crate::names::UserName;
use crate::record::UserRecord;
use crate::state::LoginState;
use nix::fcntl::Flock;
use std::cell::{OnceCell, RefCell};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug)]
pub struct FileStore {
    users_dir: PathBuf,
    state_dir: PathBuf,
    users: OnceCell<Dir>,
    state: OnceCell<Dir>,
    lock_deadline: Duration,
    /// Which file [`FileStore::load_record`] read last, and for whom: a
    /// lock of that user refuses to write once another file is there (a
    /// reset and a new enrollment during the login).
    loaded: RefCell<Option<(UserName, Option<Identity>)>>,
}

/// Open and check a directory once, keeping it for the life of the store.
fn open_dir<'a>(cell: &'a OnceCell<Dir>, path: &Path) -> Result<&'a Dir, StoreError> {
    if let Some(dir) = cell.get() {
        return Ok(dir);
    }
    let dir = Dir::open(path).map_err(|e| StoreError::Directory(path.to_path_buf(), e))?;
    Ok(cell.get_or_init(|| dir))
}

impl FileStore {
    pub fn new(paths: &Paths) -> Self {
        Self {
            users_dir: paths.users_dir.clone(),
            state_dir: paths.state_dir.clone(),
            users: OnceCell::new(),
            state: OnceCell::new(),
            lock_deadline: fsio::LOCK_DEADLINE,
            loaded: RefCell::new(None),
        }
    }

    /// Wait at most `deadline` for a user's lock (the default is
    /// [`fsio::LOCK_DEADLINE`]).
    pub fn with_lock_deadline(mut self, deadline: Duration) -> Self {
        self.lock_deadline = deadline;
        self
    }

    pub fn users_dir(&self) -> &Path {
        &self.users_dir
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    fn users(&self) -> Result<&Dir, StoreError> {
        open_dir(&self.users, &self.users_dir)
    }

    fn state(&self) -> Result<&Dir, StoreError> {
        open_dir(&self.state, &self.state_dir)
    }

    pub fn record_path(&self, user: &UserName) -> PathBuf {
        self.users_dir.join(record_name(user))
    }

    pub fn state_path(&self, user: &UserName) -> PathBuf {
        self.state_dir.join(state_name(user))
    }

    /// Read and parse the user's record. `Ok(None)` means there is none
    /// (a missing users directory included: nobody has enrolled yet).
    pub fn load_record(&self, user: &UserName) -> Result<Option<UserRecord>, StoreError> {
        let dir = match self.users() {
            Ok(dir) => dir,
            Err(StoreError::Directory(_, FileError::Missing)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let path = self.record_path(user);
        let name = record_name(user);
        match dir.read_checked(&name, Trust::Private, RECORD_LIMIT) {
            Ok(text) => {
                let record = UserRecord::parse(&text)
                    .map_err(|e| StoreError::Corrupt(path.display().to_string(), e))?;
                // Replaced since it was read: the lock will refuse, safely.
                let identity = dir.identity(&name).ok().flatten();
                *self.loaded.borrow_mut() = Some((user.clone(), identity));
                Ok(Some(record))
            }
            Err(FileError::Missing) => Ok(None),
            Err(e) => Err(StoreError::Record(path, e)),
        }
    }

    /// Read the user's login state without the lock, to decide before a
    /// prompt whether there is any point in asking. Writers replace the file
    /// atomically, so this sees a whole old or new state. Nothing read here
    /// may be written back: read again under [`FileStore::lock`] for that.
    pub fn peek_state(&self, user: &UserName) -> Result<StateRead, StoreError> {
        match self.state() {
            Ok(dir) => Ok(read_state(dir, &self.state_path(user), &state_name(user))),
            Err(StoreError::Directory(_, FileError::Missing)) => Ok(StateRead {
                state: LoginState::new(),
                problem: None,
            }),
            Err(e) => Err(e),
        }
    }

    /// Take the user's exclusive lock, waiting at most the store's deadline.
    /// Everything that reads and then writes a user's record or state does so
    /// while holding it, and holds it for nothing else: never across a
    /// prompt, a sleep or a write of a file outside the store.
    pub fn lock(&self, user: &UserName) -> Result<FileLock<'_>, StoreError> {
        let path = self.state_dir.join(lock_name(user));
        let dir = self.state()?;
        let guard = dir
            .lock_exclusive(&lock_name(user), self.lock_deadline)
            .map_err(|e| StoreError::Lock(path, e))?;
        let expected = match self.loaded.borrow().as_ref() {
            Some((who, identity)) if who == user => Some(*identity),
            _ => None,
        };
        Ok(FileLock {
            store: self,
            user: user.clone(),
            _guard: guard,
            expected: RefCell::new(expected),
            unusable: RefCell::new(None),
        })
    }

    /// Every user name with a record file, sorted.
    pub fn list_users(&self) -> Result<Vec<UserName>, StoreError> {
        let dir = match self.users() {
            Ok(dir) => dir,
            Err(StoreError::Directory(_, FileError::Missing)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let entries = std::fs::read_dir(dir.path())
            .map_err(|e| StoreError::Directory(self.users_dir.clone(), FileError::Io(e)))?;
        let mut users = Vec::new();
        for entry in entries {
            let entry = entry
                .map_err(|e| StoreError::Directory(self.users_dir.clone(), FileError::Io(e)))?;
            let name = entry.file_name();
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

fn record_name(user: &UserName) -> String {
    format!("{user}.toml")
}

fn state_name(user: &UserName) -> String {
    format!("{user}.state")
}

fn lock_name(user: &UserName) -> String {
    format!("{user}.lock")
}

/// Read the login state. A missing file is a fresh state; a corrupt or
/// untrusted one is reported and treated as fresh, which can only forget
/// failures and the last step, never invent a success.
fn read_state(dir: &Dir, path: &Path, name: &str) -> StateRead {
    let problem = match dir.read_checked(name, Trust::Private, STATE_LIMIT) {
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

/// Proof that the caller holds a user's lock; the only way to write their files.
pub struct FileLock<'a> {
    store: &'a FileStore,
    user: UserName,
    _guard: Flock<File>,
    /// The record file the caller loaded before the lock, if it did.
    expected: RefCell<Option<Option<Identity>>>,
    /// Why no state may be written (the record changed under the caller).
    unusable: RefCell<Option<String>>,
}

impl FileLock<'_> {
    pub fn user(&self) -> &UserName {
        &self.user
    }

    /// Read the login state (see [`read_state`]). If the record is no
    /// longer the file the caller loaded, no state is read and none may be
    /// written: the answer would be checked against a secret that is not
    /// the user's any more.
    pub fn read_state(&self) -> StateRead {
        if let Some(expected) = *self.expected.borrow() {
            let now = self
                .store
                .users()
                .ok()
                .and_then(|dir| dir.identity(&record_name(&self.user)).ok().flatten());
            if now != expected || expected.is_none() {
                let why = format!(
                    "the enrollment in {} changed during this login",
                    self.store.record_path(&self.user).display()
                );
                *self.unusable.borrow_mut() = Some(why.clone());
                return StateRead {
                    state: LoginState::new(),
                    problem: Some(why),
                };
            }
        }
        *self.unusable.borrow_mut() = None;
        match self.store.state() {
            Ok(dir) => read_state(
                dir,
                &self.store.state_path(&self.user),
                &state_name(&self.user),
            ),
            // Unreachable: the lock was taken in this directory.
            Err(e) => StateRead {
                state: LoginState::new(),
                problem: Some(e.to_string()),
            },
        }
    }

    /// Replace the state atomically. No fsync: losing this write in a crash can
    /// only re-admit a code whose step has already expired.
    pub fn write_state(&self, state: &LoginState) -> Result<(), StoreError> {
        if let Some(why) = self.unusable.borrow().as_ref() {
            return Err(StoreError::Unavailable(format!(
                "{why}; the state is not replaced"
            )));
        }
        let path = self.store.state_path(&self.user);
        self.store
            .state()?
            .replace_unsynced(
                &state_name(&self.user),
                state
                    .to_toml()
                    .map_err(|e| StoreError::Write(path.clone(), std::io::Error::other(e)))?
                    .as_bytes(),
            )
            .map_err(|e| StoreError::Write(path, e))
    }

    /// Replace the record durably: temp file, fsync, rename, fsync of the directory.
    pub fn write_record(&self, record: &UserRecord) -> Result<(), StoreError> {
        let path = self.store.record_path(&self.user);
        let text = record
            .to_toml()
            .map_err(|e| StoreError::Write(path.clone(), std::io::Error::other(e)))?;
        let dir = self.store.users()?;
        dir.write_atomic(&record_name(&self.user), text.as_bytes(), true)
            .map_err(|e| StoreError::Write(path, e))?;
        // The caller's own record from now on, for this lock and the next.
        let identity = dir.identity(&record_name(&self.user)).ok().flatten();
        if self.expected.borrow().is_some() {
            *self.expected.borrow_mut() = Some(identity);
        }
        *self.store.loaded.borrow_mut() = Some((self.user.clone(), identity));
        Ok(())
    }

    /// Remove the record and the state (and the state's standing spare, which
    /// holds an older state). Returns whether a record existed.
    pub fn remove_all(&self) -> Result<bool, StoreError> {
        *self.expected.borrow_mut() = None;
        *self.store.loaded.borrow_mut() = None;
        let record = self.store.record_path(&self.user);
        let existed = match self.store.users() {
            Ok(dir) => dir
                .remove(&record_name(&self.user), true)
                .map_err(|e| StoreError::Write(record, e))?,
            Err(StoreError::Directory(_, FileError::Missing)) => false,
            Err(e) => return Err(e),
        };
        let state = self.store.state_path(&self.user);
        let dir = self.store.state()?;
        for name in [
            state_name(&self.user),
            fsio::temp_name(&state_name(&self.user)),
        ] {
            dir.remove(&name, false)
                .map_err(|e| StoreError::Write(state.clone(), e))?;
        }
        Ok(existed)
    }
}
