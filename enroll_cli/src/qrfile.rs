//! Writing the enrollment `.jpg`, which holds the secret: created new with
//! mode 0600, never through a symlink, then handed to the user it is for.
//!
//! When root writes another user's `.jpg`, the check, the removal (`--force`)
//! and the creation run with that user's identity ([`AsUser`]): a symlinked
//! directory in the path, or any directory the user cannot write, can then
//! not make root create or remove a file there for them. A self-service
//! caller already runs these as themselves (`AsRealUser`, in `enroll`).

use crate::error::CliError;
use crate::privilege::AsUser;
use nix::unistd::{fchown, geteuid, User};
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `./USER-totp.jpg`.
pub fn default_path(user: &str) -> PathBuf {
    PathBuf::from(format!("{user}-totp.jpg"))
}

/// Refuse a target that exists (unless `force` and it is a regular file), is
/// a symlink, or lies in a missing directory; checked before anything is
/// written, with the caller's current identity. [`write`] checks again as
/// the owner, and enforces the same with `O_EXCL|O_NOFOLLOW`.
pub fn check(path: &Path, force: bool) -> Result<(), CliError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => return Err(CliError::QrSymlink(path.into())),
        Ok(meta) if !meta.file_type().is_file() => return Err(CliError::QrNotFile(path.into())),
        Ok(_) if !force => return Err(CliError::QrExists(path.into())),
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(path, e)),
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match std::fs::metadata(parent) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(CliError::QrNoDirectory(path.into())),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(CliError::QrNoDirectory(path.into())),
        Err(e) => Err(io_error(path, e)),
    }
}

/// Create `path` (0600, `O_EXCL|O_NOFOLLOW`), owned by `owner` and their
/// primary group, holding `data`. With `force`, an existing regular file is
/// removed first; a symlink never is. Run as root for another user, all of
/// it happens as that user.
pub fn write(path: &Path, data: &[u8], owner: &User, force: bool) -> Result<(), CliError> {
    let _as_owner = as_owner(path, owner)?;
    check(path, force)?;
    if force {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(io_error(path, e)),
            _ => {}
        }
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.kind() {
            ErrorKind::AlreadyExists => CliError::QrExists(path.into()),
            ErrorKind::NotFound => CliError::QrNoDirectory(path.into()),
            _ if e.raw_os_error() == Some(nix::libc::ELOOP) => CliError::QrSymlink(path.into()),
            _ => io_error(path, e),
        })?;
    // Root-owned (root enrolling root) or already the owner's: either way
    // the file ends up owner:owner's primary group.
    let written = fchown(file.as_raw_fd(), Some(owner.uid), Some(owner.gid))
        .map_err(std::io::Error::from)
        .and_then(|()| file.write_all(data));
    if let Err(e) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(CliError::QrWrite(path.into(), e));
    }
    Ok(())
}

/// Remove a `.jpg` that [`write`] created, with the same identity, when the
/// enrollment it belongs to could not be saved.
pub fn remove(path: &Path, owner: &User) {
    if let Ok(_as_owner) = as_owner(path, owner) {
        let _ = std::fs::remove_file(path);
    }
}

/// For root writing an ordinary user's file: that user's identity until
/// dropped. Otherwise (root's own file, or a self-service run, which is
/// already the user) nothing changes.
fn as_owner(path: &Path, owner: &User) -> Result<Option<AsUser>, CliError> {
    if geteuid().is_root() && !owner.uid.is_root() {
        AsUser::new(owner)
            .map(Some)
            .map_err(|e| CliError::QrWrite(path.into(), e))
    } else {
        Ok(None)
    }
}

/// A failure to reach or create `path`: "permission denied" names the user
/// whose rights were used, and says what to do.
fn io_error(path: &Path, e: std::io::Error) -> CliError {
    if e.kind() == ErrorKind::PermissionDenied {
        let euid = geteuid();
        let user = match User::from_uid(euid) {
            Ok(Some(user)) => user.name,
            _ => format!("uid {euid}"),
        };
        CliError::QrDenied {
            path: path.into(),
            user,
        }
    } else {
        CliError::QrWrite(path.into(), e)
    }
}
