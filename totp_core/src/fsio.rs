//! Every open, write and lock of a pam_totp file goes through here.
//!
//! Reads refuse symlinks (O_NOFOLLOW) and check the open descriptor with fstat,
//! so what is checked is what is read. Writes go to a temp file in the same
//! directory (O_EXCL|O_NOFOLLOW, 0600) and are renamed over the target, so a
//! reader sees the old file or the new one, never a torn one.

use nix::errno::Errno;
use nix::fcntl::{renameat2, Flock, FlockArg, RenameFlags};
use nix::unistd::geteuid;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// What a file must look like to be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Secrets and state: owned by the effective uid, no group or other access, one link.
    Private,
    /// Configuration: owned by root or the effective uid, not writable by group or others.
    Config,
}

#[derive(Debug)]
pub enum FileError {
    Missing,
    PermissionDenied,
    Symlink,
    NotRegular,
    BadOwner { uid: u32, expected: u32 },
    BadMode { mode: u32, trust: Trust },
    HardLinked { links: u64 },
    TooLarge { size: u64, limit: u64 },
    NotUtf8,
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
            Self::HardLinked { links } => write!(f, "has {links} hard links, expected 1"),
            Self::TooLarge { size, limit } => {
                write!(f, "is {size} bytes, larger than the limit of {limit}")
            }
            Self::NotUtf8 => write!(f, "is not valid UTF-8"),
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

/// Check an open file against `trust`, by fstat on the descriptor.
fn check_open_file(file: &File, trust: Trust, limit: u64) -> Result<u64, FileError> {
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(FileError::NotRegular);
    }
    let euid = geteuid().as_raw();
    let mode = meta.mode() & 0o7777;
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
        Trust::Config => {
            if meta.uid() != 0 && meta.uid() != euid {
                return Err(FileError::BadOwner {
                    uid: meta.uid(),
                    expected: 0,
                });
            }
            if mode & 0o022 != 0 {
                return Err(FileError::BadMode { mode, trust });
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

/// Read a whole file that must satisfy `trust` and be at most `limit` bytes.
/// The contents may hold a secret, so the buffer is wiped on drop and sized up
/// front so that it never reallocates (which would leave copies behind).
pub fn read_checked(path: &Path, trust: Trust, limit: u64) -> Result<Zeroizing<String>, FileError> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    let size = check_open_file(&file, trust, limit)?;
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

/// The temp file used while replacing `path`: one fixed name per target, so a
/// crash leaves at most one behind, and the next writer (holding the same lock)
/// removes it.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Replace `path` atomically with `data`, mode 0600. `durable` adds fsync of the
/// file and then of its directory. The caller must hold the lock for `path`.
pub fn write_atomic(path: &Path, data: &[u8], durable: bool) -> io::Result<()> {
    let tmp = temp_path(path);
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(NOFOLLOW)
            .open(&tmp)?;
        file.write_all(data)?;
        if durable {
            file.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if durable {
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Replace `path` with `data` atomically but without fsync, for login state.
///
/// The new contents go into a standing spare file beside `path` (created once
/// with O_EXCL|O_NOFOLLOW, checked by fstat whenever it is reused), which is
/// then swapped with `path` in one `renameat2(RENAME_EXCHANGE)`. A reader (who
/// holds the same lock as the writer) sees the whole old file or the whole new
/// one, and the old one becomes the next spare. Unlike a rename over the old
/// file this creates and frees no inode per login, and it does not make ext4
/// (auto_da_alloc) flush the data synchronously: together that is most of the
/// cost of a login. The price is the documented one for state: after a crash
/// the file may be empty, torn or old, which is treated as no state or as an
/// older state; either can only forget, never grant.
pub fn replace_unsynced(path: &Path, data: &[u8]) -> io::Result<()> {
    let spare = temp_path(path);
    let (mut file, old_len) = match reuse_spare(&spare)? {
        Some(reused) => reused,
        None => (
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(NOFOLLOW)
                .open(&spare)?,
            0,
        ),
    };
    // Overwrite from the start, then cut to length if it shrank. (Truncating
    // to zero first would again make ext4 flush synchronously on close.)
    file.write_all(data)?;
    if old_len > data.len() as u64 {
        file.set_len(data.len() as u64)?;
    }
    drop(file);
    match renameat2(None, &spare, None, path, RenameFlags::RENAME_EXCHANGE) {
        Ok(()) => Ok(()),
        // Nothing to exchange with yet (the first write), or a file system
        // without RENAME_EXCHANGE: a plain rename is just as atomic.
        Err(Errno::ENOENT | Errno::EINVAL) => std::fs::rename(&spare, path),
        Err(e) => Err(e.into()),
    }
}

/// Open the standing spare for reuse, with its length, if it is a file this
/// module could have made: regular, private, owned by the euid, one link.
///
/// Anything else found at the spare's name is removed (unlinked by name, never
/// followed, opened for writing or truncated) and `None` returned, so a fresh
/// spare is created. That happens after a state file that was ignored as
/// untrusted (a symlink, a foreign owner, a loose mode, a hard link) is swapped
/// out by the first write: refusing it then would refuse every later login.
fn reuse_spare(spare: &Path) -> io::Result<Option<(File, u64)>> {
    // O_NONBLOCK: a FIFO at this name must fail the open, not hang the login.
    match OpenOptions::new()
        .write(true)
        .custom_flags(NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(spare)
    {
        Ok(file) => {
            if let Ok(len) = check_open_file(&file, Trust::Private, u64::MAX) {
                return Ok(Some((file, len)));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        // A symlink (ELOOP), a FIFO without a reader (ENXIO), ...: remove it below.
        // A directory (EISDIR) cannot be removed with remove_file, and fails there.
        Err(_) => {}
    }
    std::fs::remove_file(spare)?;
    Ok(None)
}

/// Remove a file if it exists (and is not a directory); durable removes fsync the directory.
pub fn remove(path: &Path, durable: bool) -> io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            if durable {
                if let Some(dir) = path.parent() {
                    File::open(dir)?.sync_all()?;
                }
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Take an exclusive flock on `path`, creating it 0600 if needed. The lock file
/// is never renamed or replaced, so every process locks the same inode.
pub fn lock_exclusive(path: &Path) -> Result<Flock<File>, FileError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(NOFOLLOW)
        .open(path)?;
    check_open_file(&file, Trust::Private, 0)?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| FileError::Io(errno.into()))
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

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("totp_core-fsio-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        ensure_private_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn atomic_write_then_checked_read() {
        let dir = scratch("rw");
        let path = dir.join("alice.toml");
        write_atomic(&path, b"hello", true).unwrap();
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
        write_atomic(&path, b"again", false).unwrap();
        assert!(!temp_path(&path).exists());
        assert_eq!(
            read_checked(&path, Trust::Private, 100).unwrap().as_str(),
            "again"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unsynced_replace_swaps_in_whole_files() {
        let dir = scratch("swap");
        let path = dir.join("alice.state");
        replace_unsynced(&path, b"one").unwrap();
        assert_eq!(
            read_checked(&path, Trust::Private, 100).unwrap().as_str(),
            "one"
        );
        replace_unsynced(&path, b"two, longer").unwrap();
        replace_unsynced(&path, b"3").unwrap();
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
        let dir = scratch("spare");
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
            replace_unsynced(&path, b"old").unwrap();
            let _ = std::fs::remove_file(&spare);
            plant(&spare, &victim);
            replace_unsynced(&path, b"new").unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                read_checked(&path, Trust::Private, 100).unwrap().as_str(),
                "new",
                "{name}"
            );
            assert_eq!(std::fs::read(&victim).unwrap(), b"precious", "{name}");
            assert_eq!(std::fs::metadata(&victim).unwrap().nlink(), 1, "{name}");
            // The old state is the spare now, and the next write reuses it.
            assert_eq!(std::fs::read(&spare).unwrap(), b"old", "{name}");
            replace_unsynced(&path, b"newer").unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"newer", "{name}");
        }
        // A foreign owner (needs root to set up).
        if geteuid().is_root() {
            replace_unsynced(&path, b"old").unwrap();
            std::fs::remove_file(&spare).unwrap();
            std::fs::write(&spare, b"foreign").unwrap();
            std::os::unix::fs::chown(&spare, Some(65534), Some(65534)).unwrap();
            replace_unsynced(&path, b"new").unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"new");
        }
        // A directory at the spare's name is not removed: the write fails and
        // the state stays as it was.
        std::fs::remove_file(&spare).unwrap();
        std::fs::create_dir(&spare).unwrap();
        assert!(replace_unsynced(&path, b"lost").is_err());
        assert_ne!(std::fs::read(&path).unwrap(), b"lost");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_unsafe_files() {
        let dir = scratch("bad");
        let path = dir.join("f");
        write_atomic(&path, b"data", false).unwrap();
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
        let dir = scratch("lock");
        std::os::unix::fs::symlink("/etc/passwd", dir.join("x.lock")).unwrap();
        assert!(matches!(
            lock_exclusive(&dir.join("x.lock")),
            Err(FileError::Symlink)
        ));
        let guard = lock_exclusive(&dir.join("y.lock")).unwrap();
        drop(guard);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
