//! Writing the enrollment `.jpg`, which holds the secret: created new with
//! mode 0600, never through a symlink, then handed to the user it is for.

use crate::error::CliError;
use nix::unistd::{fchown, User};
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
/// written. [`write`] enforces the same again with `O_EXCL|O_NOFOLLOW`.
pub fn check(path: &Path, force: bool) -> Result<(), CliError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => return Err(CliError::QrSymlink(path.into())),
        Ok(meta) if !meta.file_type().is_file() => return Err(CliError::QrNotFile(path.into())),
        Ok(_) if !force => return Err(CliError::QrExists(path.into())),
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(CliError::QrWrite(path.into(), e)),
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(CliError::QrNoDirectory(path.into()));
    }
    Ok(())
}

/// Create `path` (0600, `O_EXCL|O_NOFOLLOW`), owned by `owner` and their
/// primary group, holding `data`. With `force`, an existing regular file is
/// removed first; a symlink never is.
pub fn write(path: &Path, data: &[u8], owner: &User, force: bool) -> Result<(), CliError> {
    check(path, force)?;
    if force {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                return Err(CliError::QrWrite(path.into(), e))
            }
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
            _ => CliError::QrWrite(path.into(), e),
        })?;
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
