//! Every open, write and lock of a pam_totp file goes through here.
//!
//! The users and state directories are opened once as a [`Dir`]: without
//! following a symlink (O_DIRECTORY|O_NOFOLLOW) and checked on the open
//! descriptor (owned by root or the effective uid, not writable by group or
//! others). Every file in them is opened relative to that descriptor
//! (`openat`), so a directory that was swapped or loosened after the check
//! is never used. Reads refuse symlinks (O_NOFOLLOW) and check the open file
//! with fstat, so what is checked is what is read. Writes go to a temp file
//! in the same directory (O_EXCL|O_NOFOLLOW, 0600) and are renamed over the
//! target, so a reader sees the old file or the new one, never a torn one.
//! Locks are taken with a deadline.

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, renameat2, Flock, FlockArg, OFlag, RenameFlags};
use nix::sys::stat::Mode;
use nix::unistd::{geteuid, unlinkat, UnlinkatFlags};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// What a file must look like to be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Secrets and state: owned by the effective uid, no group or other access, one link.
    Private,
    /// Configuration: owned by root or the effective uid, not writable by group or others.
    Config,
    /// The users and state directories: owned by root or the effective uid,
    /// not writable by group or others.
    Directory,
}

#[derive(Debug)]
pub enum FileError {
    Missing,
    PermissionDenied,
    Symlink,
    NotRegular,
    NotDirectory,
    BadOwner {
        uid: u32,
        expected: u32,
    },
    BadMode {
        mode: u32,
        trust: Trust,
    },
    HardLinked {
        links: u64,
    },
    TooLarge {
        size: u64,
        limit: u64,
    },
    NotUtf8,
    /// Another process held the lock for longer than the deadline.
    LockTimeout {
        waited: Duration,
    },
    Io(io::Error),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => write!(f, "does not exist"),
            Self::PermissionDenied => write!(
                f,
                "permission denied (running as uid {}; only root can read it)",
                geteuid()
            ),
            Self::Symlink => write!(f, "is a symbolic link, which is never followed"),
            Self::NotRegular => write!(f, "is not a regular file"),
            Self::NotDirectory => write!(f, "is not a directory"),
            Self::BadOwner { uid, expected } => {
                write!(f, "is owned by uid {uid}, expected uid {expected}")
            }
            Self::BadMode {
                mode,
                trust: Trust::Private,
            } => write!(
                f,
                "has mode {mode:04o}; it must not be accessible by group or others (chmod 600)"
            ),
            Self::BadMode {
                mode,
                trust: Trust::Config,
            } => write!(
                f,
                "has mode {mode:04o}; it must not be writable by group or others (chmod 644)"
            ),
            Self::BadMode {
                mode,
                trust: Trust::Directory,
            } => write!(
                f,
                "is a directory with mode {mode:04o}; it must not be writable by group or others (chmod 700)"
            ),
            Self::HardLinked { links } => write!(f, "has {links} hard links, expected 1"),
            Self::TooLarge { size, limit } => {
                write!(f, "is {size} bytes, larger than the limit of {limit}")
            }
            Self::NotUtf8 => write!(f, "is not valid UTF-8"),
            Self::LockTimeout { waited } => write!(
                f,
                "is held by another process; gave up after {:.1} s (a stalled login or totpctl?)",
                waited.as_secs_f64()
            ),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FileError {}

impl From<io::Error> for FileError {
    fn from(e: io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc_errno) if libc_errno == nix::libc::ENOENT => Self::Missing,
            Some(libc_errno) if libc_errno == nix::libc::ELOOP => Self::Symlink,
            Some(libc_errno) if libc_errno == nix::libc::ENOTDIR => Self::NotDirectory,
            Some(libc_errno)
                if libc_errno == nix::libc::EACCES || libc_errno == nix::libc::EPERM =>
            {
                Self::PermissionDenied
            }
            _ => Self::Io(e),
        }
    }
}

const NOFOLLOW: i32 = nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC;

/// How long a lock is waited for before giving up with [`FileError::LockTimeout`].
/// Locks cover only a read, a compare and a write, which take microseconds.
pub const LOCK_DEADLINE: Duration = Duration::from_secs(5);

/// Check an open file against `trust`, by fstat on the descriptor.
fn check_open_file(file: &File, trust: Trust, limit: u64) -> Result<u64, FileError> {
    let meta = file.metadata()?;
    let euid = geteuid().as_raw();
    let mode = meta.mode() & 0o7777;
    if trust == Trust::Directory {
        if !meta.file_type().is_dir() {
            return Err(FileError::NotDirectory);
        }
    } else if !meta.file_type().is_file() {
        return Err(FileError::NotRegular);
    }
    match trust {
        Trust::Private => {
            if meta.uid() != euid {
                return Err(FileError::BadOwner {
                    uid: meta.uid(),
                    expected: euid,
                });
            }
            if mode & 0o077 != 0 {
                return Err(FileError::BadMode { mode, trust });
            }
            if meta.nlink() != 1 {
                return Err(FileError::HardLinked {
                    links: meta.nlink(),
                });
            }
        }
        Trust::Config | Trust::Directory => {
            if meta.uid() != 0 && meta.uid() != euid {
                return Err(FileError::BadOwner {
                    uid: meta.uid(),
                    expected: 0,
                });
            }
            if mode & 0o022 != 0 {
                return Err(FileError::BadMode { mode, trust });
            }
            if trust == Trust::Directory {
                return Ok(0);
            }
        }
    }
    if meta.len() > limit {
        return Err(FileError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    Ok(meta.len())
}

/// Read at most `limit` bytes of an open, checked file into a buffer that is
/// wiped on drop and sized up front so that it never reallocates (which would
/// leave copies of a secret behind).
fn read_limited(mut file: File, size: u64, limit: u64) -> Result<Zeroizing<String>, FileError> {
    let capacity = usize::try_from(size.min(limit)).unwrap_or(0) + 1;
    let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
    // Read one byte past the limit to notice a file that grew after fstat.
    (&mut file).take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(Zeroizing::new(text)),
        Err(e) => {
            drop(Zeroizing::new(e.into_bytes()));
            Err(FileError::NotUtf8)
        }
    }
}

/// Read a whole file, named by path, that must satisfy `trust` and be at most
/// `limit` bytes (the config file; files in the users and state directories
/// are read through [`Dir::read_checked`]).
pub fn read_checked(path: &Path, trust: Trust, limit: u64) -> Result<Zeroizing<String>, FileError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    let size = check_open_file(&file, trust, limit)?;
    read_limited(file, size, limit)
}

/// The temp file used while replacing `name`: one fixed name per target, so a
/// crash leaves at most one behind, and the next writer (holding the same lock)
/// removes it.
pub fn temp_name(name: &str) -> String {
    format!(".{name}.tmp")
}

/// The temp file beside `path` (see [`temp_name`]).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(temp_name(&name))
}

/// Which file a name was (see [`Dir::identity`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity(u64, i64, i64);

/// One of pam_totp's own directories, open and checked. See the module docs.
#[derive(Debug)]
pub struct Dir {
    file: File,
    path: PathBuf,
}

impl Dir {
    /// Open `path` as a directory without following a symlink, and check its
    /// owner and mode on the open descriptor.
    pub fn open(path: &Path) -> Result<Self, FileError> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(NOFOLLOW | nix::libc::O_DIRECTORY)
            .open(path)
            .map_err(|e| {
                // With O_DIRECTORY a symlink fails as ENOTDIR: say what it is.
                let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink());
                if link {
                    FileError::Symlink
                } else {
                    FileError::from(e)
                }
            })?;
        check_open_file(&file, Trust::Directory, 0)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `openat` relative to this directory, never following a symlink.
    #[allow(unsafe_code)]
    fn open_file(&self, name: &str, flags: OFlag, mode: u32) -> io::Result<File> {
        let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(
            Some(self.file.as_raw_fd()),
            name,
            flags,
            Mode::from_bits_truncate(mode),
        )?;
        // SAFETY: `openat` just returned `fd` as a new open descriptor that
        // nothing else owns or will close; the File takes sole ownership.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// Which file `name` is now, without following a symlink: its inode
    /// and the time of its last change to the nanosecond (an inode number
    /// is reused at once after a file is removed), or `None` if there is
    /// none. A file replaced or changed since has another identity.
    pub fn identity(&self, name: &str) -> io::Result<Option<Identity>> {
        match nix::sys::stat::fstatat(
            Some(self.file.as_raw_fd()),
            name,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(stat) => Ok(Some(Identity(
                stat.st_ino,
                stat.st_ctime,
                stat.st_ctime_nsec,
            ))),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Read a whole file in this directory that must satisfy `trust` and be at
    /// most `limit` bytes. O_NONBLOCK: a FIFO must fail, not hang the reader.
    pub fn read_checked(
        &self,
        name: &str,
        trust: Trust,
        limit: u64,
    ) -> Result<Zeroizing<String>, FileError> {
        let file = self.open_file(name, OFlag::O_RDONLY | OFlag::O_NONBLOCK, 0)?;
        let size = check_open_file(&file, trust, limit)?;
        read_limited(file, size, limit)
    }

    fn create_new(&self, name: &str) -> io::Result<File> {
        self.open_file(
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
            0o600,
        )
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let fd = Some(self.file.as_raw_fd());
        Ok(renameat(fd, from, fd, to)?)
    }

    /// Replace `name` atomically with `data`, mode 0600. `durable` adds fsync of
    /// the file and then of the directory. The caller must hold the lock for it.
    pub fn write_atomic(&self, name: &str, data: &[u8], durable: bool) -> io::Result<()> {
        let tmp = temp_name(name);
        self.remove(&tmp, false)?;
        let result = (|| {
            let mut file = self.create_new(&tmp)?;
            file.write_all(data)?;
            if durable {
                file.sync_all()?;
            }
            self.rename(&tmp, name)?;
            if durable {
                self.file.sync_all()?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = self.remove(&tmp, false);
        }
        result
    }

    /// Replace `name` with `data` atomically but without fsync, for login state.
    ///
    /// The new contents go into a standing spare file beside it (created once
    /// with O_EXCL|O_NOFOLLOW, checked by fstat whenever it is reused), which is
    /// then swapped with `name` in one `renameat2(RENAME_EXCHANGE)`. A reader
    /// sees the whole old file or the whole new one, and the old one becomes the
    /// next spare. Unlike a rename over the old file this creates and frees no
    /// inode per write, and it does not make ext4 (auto_da_alloc) flush the data
    /// synchronously: together that was most of the cost of a login. The price
    /// is the documented one for state: after a crash the file may be empty,
    /// torn or old, which is treated as no state or as an older state; either
    /// can only forget, never grant.
    pub fn replace_unsynced(&self, name: &str, data: &[u8]) -> io::Result<()> {
        let spare = temp_name(name);
        let (mut file, old_len) = match self.reuse_spare(&spare)? {
            Some(reused) => reused,
            None => (self.create_new(&spare)?, 0),
        };
        // Overwrite from the start, then cut to length if it shrank. (Truncating
        // to zero first would again make ext4 flush synchronously on close.)
        file.write_all(data)?;
        if old_len > data.len() as u64 {
            file.set_len(data.len() as u64)?;
        }
        drop(file);
        let fd = Some(self.file.as_raw_fd());
        match renameat2(fd, spare.as_str(), fd, name, RenameFlags::RENAME_EXCHANGE) {
            Ok(()) => Ok(()),
            // Nothing to exchange with yet (the first write), or a file system
            // without RENAME_EXCHANGE: a plain rename is just as atomic.
            Err(Errno::ENOENT | Errno::EINVAL) => self.rename(&spare, name),
            Err(e) => Err(e.into()),
        }
    }

    /// Open the standing spare for reuse, with its length, if it is a file this
    /// module could have made: regular, private, owned by the euid, one link.
    ///
    /// Anything else found at the spare's name is removed (unlinked by name,
    /// never followed, opened for writing or truncated) and `None` returned, so
    /// a fresh spare is created. That happens after a state file that was
    /// ignored as untrusted (a symlink, a foreign owner, a loose mode, a hard
    /// link) is swapped out by the first write: refusing it then would refuse
    /// every later login.
    fn reuse_spare(&self, spare: &str) -> io::Result<Option<(File, u64)>> {
        // O_NONBLOCK: a FIFO at this name must fail the open, not hang the login.
        match self.open_file(spare, OFlag::O_WRONLY | OFlag::O_NONBLOCK, 0) {
            Ok(file) => {
                if let Ok(len) = check_open_file(&file, Trust::Private, u64::MAX) {
                    return Ok(Some((file, len)));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            // A symlink (ELOOP), a FIFO without a reader (ENXIO), ...: remove it below.
            // A directory (EISDIR) cannot be removed by unlinkat without
            // AT_REMOVEDIR, and fails there.
            Err(_) => {}
        }
        unlinkat(
            Some(self.file.as_raw_fd()),
            spare,
            UnlinkatFlags::NoRemoveDir,
        )?;
        Ok(None)
    }

    /// Remove a file if it exists (and is not a directory); durable removes
    /// fsync the directory. Returns whether there was one.
    pub fn remove(&self, name: &str, durable: bool) -> io::Result<bool> {
        match unlinkat(
            Some(self.file.as_raw_fd()),
            name,
            UnlinkatFlags::NoRemoveDir,
        ) {
            Ok(()) => {
                if durable {
                    self.file.sync_all()?;
                }
                Ok(true)
            }
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Take an exclusive flock on `name`, creating it 0600 if needed, waiting
    /// at most `deadline` for another holder. The lock file is never renamed
    /// or replaced, so every process locks the same inode.
    pub fn lock_exclusive(&self, name: &str, deadline: Duration) -> Result<Flock<File>, FileError> {
        let file = self.open_file(name, OFlag::O_RDWR | OFlag::O_CREAT, 0o600)?;
        check_open_file(&file, Trust::Private, 0)?;
        lock_with_deadline(file, deadline)
    }
}

/// flock without blocking, retried with growing pauses (1 ms up to 10 ms,
/// short enough that a waiter is not starved by newer ones: holders keep
/// the lock for microseconds) until `deadline` has passed.
fn lock_with_deadline(mut file: File, deadline: Duration) -> Result<Flock<File>, FileError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(guard) => return Ok(guard),
            Err((back, Errno::EWOULDBLOCK | Errno::EINTR)) => file = back,
            Err((_, errno)) => return Err(FileError::Io(errno.into())),
        }
        let waited = start.elapsed();
        if waited >= deadline {
            return Err(FileError::LockTimeout { waited });
        }
        std::thread::sleep(pause.min(deadline - waited));
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Create a directory 0700 if it does not exist yet.
pub fn ensure_private_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> (PathBuf, Dir) {
        let dir =
            std::env::temp_dir().join(format!("totp_core-fsio-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        ensure_private_dir(&dir).unwrap();
        let open = Dir::open(&dir).unwrap();
        (dir, open)
    }

    #[test]
    fn atomic_write_then_checked_read() {
        let (dir, d) = scratch("rw");
        let path = dir.join("alice.toml");
        d.write_atomic("alice.toml", b"hello", true).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            read_checked(&path, Trust::Private, 100).unwrap().as_str(),
            "hello"
        );
        // A stale temp file from a crash is replaced, not an obstacle.
        std::fs::write(temp_path(&path), b"stale").unwrap();
        d.write_atomic("alice.toml", b"again", false).unwrap();
        assert!(!temp_path(&path).exists());
        assert_eq!(
            read_checked(&path, Trust::Private, 100).unwrap().as_str(),
            "again"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unsynced_replace_swaps_in_whole_files() {
        let (dir, d) = scratch("swap");
        let path = dir.join("alice.state");
        d.replace_unsynced("alice.state", b"one").unwrap();
        assert_eq!(
            read_checked(&path, Trust::Private, 100).unwrap().as_str(),
            "one"
        );
        d.replace_unsynced("alice.state", b"two, longer").unwrap();
        d.replace_unsynced("alice.state", b"3").unwrap();
        assert_eq!(
            read_checked(&path, Trust::Private, 100).unwrap().as_str(),
            "3"
        );
        // The spare holds the previous version, and is reused.
        assert_eq!(std::fs::read(temp_path(&path)).unwrap(), b"two, longer");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Whatever untrusted file ends up at the spare's name (it was the state
    /// file, ignored as untrusted, and then swapped out) is replaced by a fresh
    /// spare: never followed or written through, and never an obstacle.
    #[test]
    fn unsynced_replace_replaces_an_untrusted_spare() {
        let (dir, d) = scratch("spare");
        let path = dir.join("alice.state");
        let spare = temp_path(&path);
        let victim = dir.join("victim");
        type Plant = fn(&Path, &Path);
        let plants: [(&str, Plant); 4] = [
            ("symlink", |spare, victim| {
                std::os::unix::fs::symlink(victim, spare).unwrap()
            }),
            ("hard link", |spare, victim| {
                std::fs::hard_link(victim, spare).unwrap()
            }),
            ("mode 0644", |spare, _| {
                std::fs::write(spare, b"loose").unwrap();
                std::fs::set_permissions(spare, std::fs::Permissions::from_mode(0o644)).unwrap();
            }),
            ("fifo", |spare, _| {
                nix::unistd::mkfifo(spare, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap()
            }),
        ];
        for (name, plant) in plants {
            std::fs::write(&victim, b"precious").unwrap();
            std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
            d.replace_unsynced("alice.state", b"old").unwrap();
            let _ = std::fs::remove_file(&spare);
            plant(&spare, &victim);
            d.replace_unsynced("alice.state", b"new")
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                read_checked(&path, Trust::Private, 100).unwrap().as_str(),
                "new",
                "{name}"
            );
            assert_eq!(std::fs::read(&victim).unwrap(), b"precious", "{name}");
            assert_eq!(std::fs::metadata(&victim).unwrap().nlink(), 1, "{name}");
            // The old state is the spare now, and the next write reuses it.
            assert_eq!(std::fs::read(&spare).unwrap(), b"old", "{name}");
            d.replace_unsynced("alice.state", b"newer").unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"newer", "{name}");
        }
        // A foreign owner (needs root to set up).
        if geteuid().is_root() {
            d.replace_unsynced("alice.state", b"old").unwrap();
            std::fs::remove_file(&spare).unwrap();
            std::fs::write(&spare, b"foreign").unwrap();
            std::os::unix::fs::chown(&spare, Some(65534), Some(65534)).unwrap();
            d.replace_unsynced("alice.state", b"new").unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"new");
        }
        // A directory at the spare's name is not removed: the write fails and
        // the state stays as it was.
        std::fs::remove_file(&spare).unwrap();
        std::fs::create_dir(&spare).unwrap();
        assert!(d.replace_unsynced("alice.state", b"lost").is_err());
        assert_ne!(std::fs::read(&path).unwrap(), b"lost");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_unsafe_files() {
        let (dir, d) = scratch("bad");
        let path = dir.join("f");
        d.write_atomic("f", b"data", false).unwrap();
        assert!(matches!(
            read_checked(&path, Trust::Private, 3),
            Err(FileError::TooLarge { size: 4, limit: 3 })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            read_checked(&path, Trust::Private, 100),
            Err(FileError::BadMode { mode: 0o640, .. })
        ));
        assert!(read_checked(&path, Trust::Config, 100).is_ok());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(matches!(
            read_checked(&path, Trust::Config, 100),
            Err(FileError::BadMode { .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(matches!(
            read_checked(&link, Trust::Private, 100),
            Err(FileError::Symlink)
        ));
        let hard = dir.join("hard");
        std::fs::hard_link(&path, &hard).unwrap();
        assert!(matches!(
            read_checked(&path, Trust::Private, 100),
            Err(FileError::HardLinked { links: 2 })
        ));
        assert!(matches!(
            read_checked(&dir, Trust::Private, 100),
            Err(FileError::NotRegular)
        ));
        assert!(matches!(
            read_checked(&dir.join("none"), Trust::Private, 100),
            Err(FileError::Missing)
        ));
        std::fs::write(dir.join("bin"), b"\xff\xfe").unwrap();
        std::fs::set_permissions(dir.join("bin"), std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            read_checked(&dir.join("bin"), Trust::Private, 100),
            Err(FileError::NotUtf8)
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn lock_refuses_a_symlink() {
        let (dir, d) = scratch("lock");
        std::os::unix::fs::symlink("/etc/passwd", dir.join("x.lock")).unwrap();
        assert!(matches!(
            d.lock_exclusive("x.lock", LOCK_DEADLINE),
            Err(FileError::Symlink)
        ));
        let guard = d.lock_exclusive("y.lock", LOCK_DEADLINE).unwrap();
        // A second taker gives up at the deadline instead of hanging.
        let start = Instant::now();
        assert!(matches!(
            d.lock_exclusive("y.lock", Duration::from_millis(200)),
            Err(FileError::LockTimeout { .. })
        ));
        assert!(start.elapsed() >= Duration::from_millis(200));
        assert!(start.elapsed() < Duration::from_secs(2));
        drop(guard);
        drop(
            d.lock_exclusive("y.lock", Duration::from_millis(200))
                .unwrap(),
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The directories must be real directories, owned by root (or the
    /// effective uid), and not writable by group or others.
    #[test]
    fn refuses_unsafe_directories() {
        let (dir, d) = scratch("dirs");
        drop(d);
        let sub = dir.join("state");
        ensure_private_dir(&sub).unwrap();
        assert!(Dir::open(&sub).is_ok());
        for mode in [0o720, 0o702, 0o777, 0o1777] {
            std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(
                matches!(Dir::open(&sub), Err(FileError::BadMode { .. })),
                "{mode:o}"
            );
        }
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(Dir::open(&sub).is_ok());
        let link = dir.join("link");
        std::os::unix::fs::symlink(&sub, &link).unwrap();
        assert!(matches!(Dir::open(&link), Err(FileError::Symlink)));
        std::fs::write(dir.join("file"), b"").unwrap();
        assert!(matches!(
            Dir::open(&dir.join("file")),
            Err(FileError::NotDirectory)
        ));
        if geteuid().is_root() {
            std::os::unix::fs::chown(&sub, Some(65534), None).unwrap();
            assert!(matches!(
                Dir::open(&sub),
                Err(FileError::BadOwner { uid: 65534, .. })
            ));
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
