//! The files backend: where each user's files live, and the per-user lock that serialises every
//! read-modify-write of them (logins and totpctl alike).
//!
//! ## Login state: one write in place per outcome, synced when it must be
//!
//! `<user>.state` is two slots ([`super::slots`]) rewritten in place with
//! `pwrite` while the user's lock is held: no temp file, no rename, no new
//! inode per login, so logins of different users never queue on the state
//! directory (a rename takes the directory's lock). A new user's file is
//! created by the first write (enrollment writes it already) without a
//! rename or a sync of the directory.
//!
//! A write goes to the slot that does not hold the newest state. Whether it
//! is synced (fdatasync) before the caller goes on:
//! - a write that moves the HOTP counter or adds a used recovery code is
//!   written to *both* slots and synced, before the login may succeed. From
//!   then on every valid slot holds it (each later state is built from it),
//!   so no crash, torn page or lost later write can bring the code back;
//! - every other write (a failure counted before the compare, a TOTP
//!   success, a clock-skew candidate) is not synced. Losing it in a crash
//!   (power loss or a kernel crash; a killed process loses nothing, the
//!   page cache has it) leaves the previous state, which lacks at most a
//!   TOTP step used since the last synced write, some failures and a
//!   learned skew. The step's code is then accepted again only while it is
//!   inside the window (`otp.window` steps), which the code's expiry allows
//!   anyway; a failure count or a lockout can be lost, a used recovery
//!   code or a HOTP counter cannot.
//! - a state lost entirely (deleted, emptied, both slots torn) is flagged
//!   [`StateRead::lost`], and the attempt refuses what it can no longer
//!   rule out: recovery codes, and HOTP codes until `totpctl unlock
//!   --counter`.
//!
//! The TOML state files of earlier releases are still read; the first write
//! replaces such a file by a slotted one, durably (temp file, fsync,
//! rename, fsync of the directory), once per user. So is a corrupt or
//! untrusted file: never written through.
//!
//! Both directories are opened and checked once per [`FileStore`] (see
//! [`fsio::Dir`]); a directory that is a symlink, not owned by root or
//! writable by group or others is refused, and so is every login that
//! would use it.

use super::slots;
use super::{StateRead, StoreError, RECORD_LIMIT, STATE_LIMIT};
use crate::config::Paths;
use crate::fsio::{self, write_at, Dir, FileError, Identity, Trust};
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
    /// prompt whether there is any point in asking. A slot being written
    /// meanwhile fails its checksum and the other one is read. Nothing read
    /// here may be written back: read again under [`FileStore::lock`] for that.
    pub fn peek_state(&self, user: &UserName) -> Result<StateRead, StoreError> {
        match self.state() {
            Ok(dir) => {
                let opened = dir.open_private(&state_name(user), STATE_LIMIT, false);
                Ok(interpret(&self.state_path(user), opened).0)
            }
            Err(StoreError::Directory(_, FileError::Missing)) => Ok(StateRead {
                state: LoginState::new(),
                problem: None,
                lost: true,
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
            held: RefCell::new(Held::Unread),
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

/// Make sense of an opened state file: the state, and what a write under
/// the lock must do with the file. A missing file is a fresh state; so is
/// a corrupt or untrusted one, reported. Both are flagged lost.
fn interpret(path: &Path, opened: Result<(File, Vec<u8>), FileError>) -> (StateRead, Held) {
    let found = |state, held| {
        let read = StateRead {
            state,
            problem: None,
            lost: false,
        };
        (read, held)
    };
    let problem = match opened {
        Ok((file, bytes)) if slots::is_slotted(&bytes) => match slots::newest(&bytes) {
            Ok(newest) => {
                let held = Held::Slots {
                    file,
                    seq: newest.seq,
                    slot: newest.slot,
                    on_disk: Box::new(newest.state.clone()),
                };
                return found(newest.state, held);
            }
            Err(e) => format!(
                "state file {} is corrupt ({e}); starting afresh",
                path.display()
            ),
        },
        // An earlier release's TOML: read, and replaced by the first write.
        Ok((_, bytes)) => match std::str::from_utf8(&bytes)
            .map_err(|_| "not valid UTF-8".to_string())
            .and_then(LoginState::parse_toml)
        {
            Ok(state) => return found(state, Held::Replace),
            Err(e) => format!(
                "state file {} is corrupt ({e}); starting afresh",
                path.display()
            ),
        },
        Err(FileError::Missing) => {
            let read = StateRead {
                state: LoginState::new(),
                problem: None,
                lost: true,
            };
            return (read, Held::Missing);
        }
        Err(e) => format!("state file {} {e}; starting afresh", path.display()),
    };
    let read = StateRead {
        state: LoginState::new(),
        problem: Some(problem),
        lost: true,
    };
    (read, Held::Replace)
}

/// What a [`FileLock`] knows of the user's state file, from its last read
/// or write.
enum Held {
    /// Not read under this lock yet.
    Unread,
    /// There is none: the first write creates it.
    Missing,
    /// A slotted file, open for writing in place, with its newest slot.
    Slots {
        file: File,
        seq: u64,
        slot: usize,
        on_disk: Box<LoginState>,
    },
    /// A file to replace whole, durably: an earlier release's TOML, or a
    /// corrupt or untrusted file.
    Replace,
}

/// Must a write of `new` over `old` be on disk before anyone goes on? When
/// it moves the HOTP counter or uses a recovery code (see the module docs).
fn must_sync(old: Option<&LoginState>, new: &LoginState) -> bool {
    let fresh = LoginState::new();
    let old = old.unwrap_or(&fresh);
    old.hotp_next != new.hotp_next
        || new
            .used_recovery
            .iter()
            .any(|id| !old.used_recovery.contains(id))
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
    /// The state file as last read or written under this lock.
    held: RefCell<Held>,
}

impl FileLock<'_> {
    pub fn user(&self) -> &UserName {
        &self.user
    }

    /// Read the login state (see [`interpret`]). If the record is no
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
                    lost: true,
                };
            }
        }
        *self.unusable.borrow_mut() = None;
        match self.store.state() {
            Ok(dir) => {
                let opened = dir.open_private(&state_name(&self.user), STATE_LIMIT, true);
                let (read, held) = interpret(&self.store.state_path(&self.user), opened);
                *self.held.borrow_mut() = held;
                read
            }
            // Unreachable: the lock was taken in this directory.
            Err(e) => StateRead {
                state: LoginState::new(),
                problem: Some(e.to_string()),
                lost: true,
            },
        }
    }

    /// Write the state in place (see the module docs for the format and
    /// for which writes are synced). It either writes the whole state or
    /// fails; it never writes through a file it did not check.
    pub fn write_state(&self, state: &LoginState) -> Result<(), StoreError> {
        if let Some(why) = self.unusable.borrow().as_ref() {
            return Err(StoreError::Unavailable(format!(
                "{why}; the state is not replaced"
            )));
        }
        if matches!(*self.held.borrow(), Held::Unread) {
            let _ = self.read_state();
        }
        let path = self.store.state_path(&self.user);
        let failed = |e: std::io::Error| StoreError::Write(path.clone(), e);
        let encoded = |e: String| StoreError::Write(path.clone(), std::io::Error::other(e));
        let dir = self.store.state()?;
        let name = state_name(&self.user);
        let mut held = self.held.borrow_mut();
        let (file, seq) = match std::mem::replace(&mut *held, Held::Unread) {
            Held::Slots {
                file,
                seq,
                slot,
                on_disk,
            } => {
                let sync = must_sync(Some(&on_disk), state);
                let other = 1 - slot;
                let next = seq.wrapping_add(1);
                let written = (|| {
                    write_at(
                        &file,
                        offset(other),
                        &slots::encode_fitting(state, next).map_err(encoded)?,
                        false,
                    )
                    .map_err(failed)?;
                    if !sync {
                        return Ok((other, next));
                    }
                    // Both slots, so that no older slot is left to fall back to.
                    let last = next.wrapping_add(1);
                    write_at(
                        &file,
                        offset(slot),
                        &slots::encode_fitting(state, last).map_err(encoded)?,
                        true,
                    )
                    .map_err(failed)?;
                    Ok((slot, last))
                })();
                // After a failure what is on disk is unknown: `held` stays
                // Unread, so the next write reads again first.
                let (slot, seq) = written?;
                *held = Held::Slots {
                    file,
                    seq,
                    slot,
                    on_disk: Box::new(state.clone()),
                };
                return Ok(());
            }
            Held::Missing => {
                let sync = must_sync(None, state);
                let data = slots::encode_file(state, 1).map_err(encoded)?;
                let file = dir.create_private(&name).map_err(failed)?;
                let written = write_at(&file, 0, &data, sync).and_then(|()| match sync {
                    true => dir.sync(),
                    false => Ok(()),
                });
                if let Err(e) = written {
                    // Leave no empty or partial file: it would read as a
                    // state that was lost, not as none.
                    let _ = dir.remove(&name, false);
                    return Err(failed(e));
                }
                (file, 2)
            }
            Held::Replace | Held::Unread => {
                let data = slots::encode_file(state, 1).map_err(encoded)?;
                dir.write_atomic(&name, &data, true).map_err(failed)?;
                let (file, _) = dir
                    .open_private(&name, STATE_LIMIT, true)
                    .map_err(|e| failed(std::io::Error::other(e.to_string())))?;
                (file, 2)
            }
        };
        *held = Held::Slots {
            file,
            seq,
            slot: 1,
            on_disk: Box::new(state.clone()),
        };
        Ok(())
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

    /// Remove the record and the state (and the temp file an earlier release
    /// kept beside it, which holds an older state). Returns whether a record
    /// existed.
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
        *self.held.borrow_mut() = Held::Unread;
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

/// Where slot `slot` starts in the file.
fn offset(slot: usize) -> u64 {
    (slot * slots::SLOT) as u64
}
