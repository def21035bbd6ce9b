//! Running the setuid helper `totp-verify` from inside the caller's process,
//! as pam_unix runs `unix_chkpwd`:
//! - the answer goes through a pipe that is filled and closed before the
//!   child starts (a few hundred bytes at most, far below the pipe's
//!   buffer), so no write can block or raise SIGPIPE in the caller;
//! - the child gets no arguments, an empty environment, /dev/null for output
//!   and none of the caller's other descriptors;
//! - SIGCHLD is at its default action while the child runs, so a caller
//!   that ignores it (the kernel would then reap the child for us) or reaps
//!   every child in a handler does not take our status away, and sees no
//!   signal it did not expect; then the caller's action is put back. The
//!   wait is for that one pid only.

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use totp_core::helper::{HelperError, HelperRun};

pub fn run(path: &Path, args: &[&str], answer: &[u8]) -> Result<HelperRun, HelperError> {
    let failed =
        |what: &str, e: &dyn std::fmt::Display| HelperError::Failed(format!("{what}: {e}"));
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| failed("cannot create a pipe", &e))?;
    // The whole answer is in the pipe before the child exists; the buffer
    // it came from is the caller's, wiped there.
    let mut write = File::from(write);
    write
        .write_all(answer)
        .map_err(|e| failed("cannot write the answer to the pipe", &e))?;
    drop(write);

    let mut command = Command::new(path);
    command
        .args(args)
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::from(read))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure runs in the child between fork and exec, where
    // only async-signal-safe calls are allowed; close_range(2) is a plain
    // system call that allocates nothing and takes no lock. It marks every
    // descriptor above the standard three close-on-exec, so the caller's
    // files, sockets and terminals do not reach the helper; std's own
    // error-reporting pipe is close-on-exec already. An old kernel without
    // the flag leaves them open, which costs the helper nothing.
    unsafe {
        command.pre_exec(|| {
            nix::libc::close_range(
                3,
                nix::libc::c_uint::MAX,
                nix::libc::CLOSE_RANGE_CLOEXEC as _,
            );
            Ok(())
        });
    }

    let _sigchld = DefaultSigchld::set().map_err(|e| failed("cannot reset SIGCHLD", &e))?;
    let mut child = command.spawn().map_err(|e| match e.kind() {
        ErrorKind::NotFound => HelperError::Missing,
        _ => failed("cannot start it", &e),
    })?;
    // Child::wait is waitpid(pid) on this child alone, retried on EINTR.
    let status = child.wait().map_err(|e| failed("cannot wait for it", &e))?;
    match (status.code(), status.signal()) {
        (Some(code), _) => Ok(HelperRun::Exited(code)),
        (None, Some(signal)) => Ok(HelperRun::Signaled(signal)),
        (None, None) => Err(HelperError::Failed(format!("ended oddly: {status}"))),
    }
}

/// SIGCHLD at its default action while alive; the caller's action again
/// when dropped.
struct DefaultSigchld {
    old: SigAction,
}

impl DefaultSigchld {
    fn set() -> nix::Result<Self> {
        let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        // SAFETY: SIG_DFL installs no handler, so no code of ours can run in
        // a signal context. The caller's action is kept and put back as it
        // was, handler and flags included, by `drop`.
        let old = unsafe { sigaction(Signal::SIGCHLD, &default) }?;
        Ok(Self { old })
    }
}

impl Drop for DefaultSigchld {
    fn drop(&mut self) {
        // SAFETY: this restores exactly the action the caller had installed
        // before `set`, which the caller vouched for; nothing new is installed.
        let _ = unsafe { sigaction(Signal::SIGCHLD, &self.old) };
    }
}
