//! Every open, write and lock of a pam_totp file goes through here.
//!
//! The users and state directories are opened once as a [`Dir`]: without
//! following a symlink (O_DIRECTORY|O_NOFOLLOW) and checked on the open
//! descriptor (owned by root or the effective uid, not writable by group or
//! others). Every file in them is opened relative to that descriptor
//! (`openat`), so a directory that was swapped or loosened after the check
//! is never used. Reads refuse symlinks (O_NOFOLLOW) and check the open file
//! with fstat, so what is checked is what is read. Records go to a temp file
//! in the same directory (O_EXCL|O_NOFOLLOW, 0600) and are renamed over the
//! target, so a reader sees the old file or the new one, never a torn one.
//! Login state is rewritten in place instead ([`Dir::open_private_rw`],
//! [`write_at`]); its format ([`crate::store::slots`]) makes a torn write
//! harmless. Locks are taken with a deadline.

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{geteuid, unlinkat, UnlinkatFlags};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
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

/// Write all of `data` at `offset` of `file` (pwrite), and with `sync` wait
/// until it is on disk (fdatasync: the data and the size, not the times).
pub fn write_at(file: &File, offset: u64, data: &[u8], sync: bool) -> io::Result<()> {
    file.write_all_at(data, offset)?;
    if sync {
        file.sync_data()?;
    }
    Ok(())
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

    /// Open a private file (see [`Trust::Private`]) for reading and writing
    /// in place, and read it: at most `limit` bytes, as bytes (a torn write
    /// may leave anything). `writable` false opens it read-only (a look
    /// without the lock). O_NONBLOCK: a FIFO must fail, not hang the login.
    pub fn open_private(
        &self,
        name: &str,
        limit: u64,
        writable: bool,
    ) -> Result<(File, Vec<u8>), FileError> {
        let mode = if writable {
            OFlag::O_RDWR
        } else {
            OFlag::O_RDONLY
        };
        let file = self.open_file(name, mode | OFlag::O_NONBLOCK, 0)?;
        let size = check_open_file(&file, Trust::Private, limit)?;
        // Login state holds no secret: not wiped (wiping 8 KiB byte by byte
        // twice per login was a tenth of the login's own instructions).
        let capacity = usize::try_from(size.min(limit)).unwrap_or(0) + 1;
        let mut bytes = Vec::with_capacity(capacity);
        (&file).take(limit + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > limit {
            return Err(FileError::TooLarge {
                size: bytes.len() as u64,
                limit,
            });
        }
        Ok((file, bytes))
    }

    /// Create `name` (0600, O_EXCL: never a file that is there already, nor
    /// through a symlink) for reading and writing in place. The directory
    /// is not synced: a caller that needs the new name to survive a crash
    /// calls [`Dir::sync`].
    pub fn create_private(&self, name: &str) -> io::Result<File> {
        self.open_file(name, OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL, 0o600)
    }

    /// Wait until the directory's entries are on disk (fsync).
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
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

    /// State is rewritten in place: created once, then opened, checked and
    /// written at an offset. Never through a symlink, a hard link or a file
    /// of another owner or mode.
    #[test]
    fn private_files_are_created_once_and_written_in_place() {
        let (dir, d) = scratch("inplace");
        let path = dir.join("alice.state");
        let file = d.create_private("alice.state").unwrap();
        write_at(&file, 0, b"hello world", true).unwrap();
        assert!(d.create_private("alice.state").is_err(), "O_EXCL");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (file, bytes) = d.open_private("alice.state", 100, true).unwrap();
        assert_eq!(&bytes[..], b"hello world");
        write_at(&file, 6, b"there", false).unwrap();
        write_at(&file, 11, b"!", false).unwrap();
        let (_, bytes) = d.open_private("alice.state", 100, false).unwrap();
        assert_eq!(&bytes[..], b"hello there!");
        assert!(matches!(
            d.open_private("alice.state", 5, false),
            Err(FileError::TooLarge { .. })
        ));
        std::fs::hard_link(&path, dir.join("other")).unwrap();
        assert!(matches!(
            d.open_private("alice.state", 100, true),
            Err(FileError::HardLinked { links: 2 })
        ));
        std::fs::remove_file(dir.join("other")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            d.open_private("alice.state", 100, true),
            Err(FileError::BadMode { .. })
        ));
        std::os::unix::fs::symlink("/etc/passwd", dir.join("bob.state")).unwrap();
        assert!(matches!(
            d.open_private("bob.state", 100, true),
            Err(FileError::Symlink)
        ));
        assert!(d.create_private("bob.state").is_err());
        nix::unistd::mkfifo(
            &dir.join("carol.state"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert!(d.open_private("carol.state", 100, true).is_err());
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
