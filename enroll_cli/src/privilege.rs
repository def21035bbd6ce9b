//! Who is running totpctl, decided before anything else happens.
//!
//! By default only root runs totpctl. In self-service mode the package (or
//! `totpctl self-service enable`) installs it setuid root, executable only by
//! the self-service group (mode 4754 root:totp-users, via dpkg-statoverride).
//! Then the first thing `main` does is [`start`], which, for a setuid run:
//! - clears the environment, keeping only a validated `LANG`, `LC_*` and
//!   `TERM` (the dynamic loader has already ignored `LD_*`: AT_SECURE);
//! - takes the acting user from getuid(), never from `$USER` or `$LOGNAME`;
//! - refuses to run if the effective uid is not root;
//! - undoes what the caller could set up to survive exec ([`harden`]):
//!   resource limits (a file size limit of 0 with SIGXFSZ ignored makes
//!   every state write fail), ignored or blocked signals, closed standard
//!   descriptors; it also makes the process non-dumpable and drops the
//!   caller's effective gid, so files it creates are root:root.
//!
//! A non-root run that did not gain root is told why: the plain "ask an
//! administrator" when totpctl is not setuid, or the cause (no_new_privs, a
//! nosuid mount) when it is setuid and the kernel did not honour it.
//!
//! Path overrides (`--config`) are ignored for a non-root caller: the config
//! is always [`config_path`], compiled in.

use crate::error::CliError;
use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
use nix::sys::signal::{
    sigaction, sigprocmask, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal,
};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{
    getegid, geteuid, getgid, getgrouplist, getgroups, getuid, setegid, seteuid, setgroups, Gid,
    Uid, User,
};
use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use totp_core::config::DEFAULT_CONFIG_PATH;
use totp_core::names::UserName;

/// The config file totpctl reads when no `--config` is given, and always for
/// a non-root caller. A test build may compile in another path by setting
/// `PAM_TOTP_TEST_CONFIG_PATH` at build time; there is no way to change it at
/// run time. The package build unsets it and checks the result: `--help`
/// names the path compiled in (so does `totpctl self-service status`).
pub const CONFIG_PATH: &str = match option_env!("PAM_TOTP_TEST_CONFIG_PATH") {
    Some(path) => path,
    None => DEFAULT_CONFIG_PATH,
};

pub fn config_path() -> &'static Path {
    Path::new(CONFIG_PATH)
}

/// The environment variables kept for a setuid run, after validation.
const KEPT_PREFIXES: &[&str] = &["LC_"];
const KEPT_NAMES: &[&str] = &["LANG", "LANGUAGE", "TERM"];
const SAFE_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// How this process came to run.
#[derive(Clone, Debug)]
pub enum Caller {
    /// Real uid 0: every command, every path option.
    Root,
    /// A setuid run for an ordinary user, who may act on their own account.
    SelfService(SelfUser),
    /// An ordinary user without privileges: only help and version work.
    Unprivileged(Unprivileged),
}

/// Why an unprivileged run has no privileges, for the refusal message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unprivileged {
    /// totpctl is not installed setuid: self-service is off.
    NotSetuid,
    /// It is setuid root, but no_new_privs kept the kernel from honouring it.
    NoNewPrivs,
    /// It is setuid root, but the file system is mounted nosuid (or similar).
    Ignored,
}

/// The ordinary user of a self-service run, from getuid().
#[derive(Clone, Debug)]
pub struct SelfUser {
    pub name: UserName,
    pub account: User,
}

impl Caller {
    pub fn is_root(&self) -> bool {
        matches!(self, Self::Root)
    }
}

/// Decide who is calling, and make a setuid start safe. Call first in main.
pub fn start() -> Result<Caller, CliError> {
    let (uid, euid) = (getuid(), geteuid());
    if uid.is_root() {
        return Ok(Caller::Root);
    }
    if uid == euid {
        return Ok(Caller::Unprivileged(why_unprivileged()));
    }
    // A setuid run from here on.
    if !euid.is_root() {
        scrub_environment();
        return Err(CliError::SetuidNotRoot {
            euid: euid.as_raw(),
        });
    }
    harden()?;
    scrub_environment();
    umask(Mode::from_bits_truncate(0o077));
    let account = match User::from_uid(uid) {
        Ok(Some(account)) => account,
        Ok(None) => return Err(CliError::UnknownUser(format!("uid {uid}"))),
        Err(e) => return Err(CliError::UserLookup(format!("uid {uid}"), e)),
    };
    let name = UserName::parse(account.name.as_bytes()).map_err(|why| CliError::InvalidUser {
        shown: totp_core::names::printable(account.name.as_bytes()),
        why,
    })?;
    Ok(Caller::SelfService(SelfUser { name, account }))
}

/// The fewest file descriptors a setuid run starts with: the store, its
/// locks, the `.jpg`, syslog and the standard three, with room to spare.
const MIN_OPEN_FILES: u64 = 64;

/// The smallest file size limit a setuid run accepts when it cannot lift
/// the limit: records, state and the `.jpg` are all far smaller.
const MIN_FILE_SIZE: u64 = 1 << 20;

/// Undo, for a setuid run, what the caller set up to survive exec. Runs
/// before anything else, while this is the only thread.
///
/// Each step that fails refuses the run: a setuid totpctl that cannot
/// trust its own limits writes nothing.
fn harden() -> Result<(), CliError> {
    let failed = |what: &'static str| move |e: Errno| CliError::UnsafeStart { what, error: e };
    // No core file and no ptrace by the caller for the whole run (the kernel
    // already does this for a setuid exec unless suid_dumpable says
    // otherwise; do not depend on that).
    nix::sys::prctl::set_dumpable(false).map_err(failed("the dumpable flag"))?;
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(failed("the core file size limit"))?;
    reset_signals().map_err(failed("the signal dispositions"))?;
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(failed("the signal mask"))?;
    // `ulimit -f 0` would make every write of the login state fail.
    raise_limit(Resource::RLIMIT_FSIZE, RLIM_INFINITY, MIN_FILE_SIZE)
        .map_err(failed("the file size limit (ulimit -f)"))?;
    raise_limit(Resource::RLIMIT_NOFILE, MIN_OPEN_FILES, MIN_OPEN_FILES)
        .map_err(failed("the open files limit (ulimit -n)"))?;
    open_standard_descriptors().map_err(failed("the standard descriptors"))?;
    // Files a setuid run creates are root:root, never root:<caller's group>.
    // [`AsRealUser`] takes the caller's gid again where a file is theirs.
    setegid(Gid::from_raw(0)).map_err(failed("the effective group"))?;
    Ok(())
}

/// Raise the soft limit of `resource` to `want`, and the hard limit with it
/// where needed. Root may raise a hard limit only with CAP_SYS_RESOURCE,
/// which a reduced capability bounding set (some containers) takes away;
/// then the soft limit goes as high as the hard one, and a hard limit
/// below `need` refuses the run (EPERM).
fn raise_limit(resource: Resource, want: u64, need: u64) -> nix::Result<()> {
    let (soft, hard) = getrlimit(resource)?;
    if soft >= want {
        return Ok(());
    }
    match setrlimit(resource, want, hard.max(want)) {
        Err(Errno::EPERM) if hard >= need => setrlimit(resource, hard, hard),
        done => done,
    }
}

/// Every catchable signal back to its default action, whatever the caller
/// ignored (SIGXFSZ, SIGPIPE, SIGHUP...). Handlers are reset by exec anyway;
/// ignored signals are not.
#[allow(unsafe_code)]
fn reset_signals() -> nix::Result<()> {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for signal in Signal::iterator() {
        if matches!(signal, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: SIG_DFL installs no handler, so no code of ours can run in
        // a signal context; the old action returned is dropped, not called.
        match unsafe { sigaction(signal, &default) } {
            Ok(_) | Err(Errno::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    // The realtime signals, which `Signal` does not list. The C library
    // keeps the first few for itself and answers EINVAL for them.
    let raw_default: nix::libc::sigaction = default.into();
    for signal in nix::libc::SIGRTMIN()..=nix::libc::SIGRTMAX() {
        // SAFETY: `raw_default` is a valid, initialised sigaction setting
        // SIG_DFL, and a null old-action pointer is allowed; as above, no
        // handler of ours is installed.
        let rc = unsafe { nix::libc::sigaction(signal, &raw_default, std::ptr::null_mut()) };
        if rc != 0 {
            match Errno::last() {
                Errno::EINVAL => {}
                e => return Err(e),
            }
        }
    }
    // Rust's runtime ignores SIGPIPE in every program before main, so that
    // a closed pipe is an error and not a silent death; keep that, as the
    // program's own choice rather than the caller's.
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_IGN installs no handler, as above.
    unsafe { sigaction(Signal::SIGPIPE, &ignore) }.map(drop)
}

/// Open /dev/null on any of descriptors 0, 1 and 2 that the caller closed,
/// so that no file this run opens becomes its standard output or error.
fn open_standard_descriptors() -> nix::Result<()> {
    for fd in 0..=2 {
        match fcntl(fd, FcntlArg::F_GETFD) {
            Ok(_) => {}
            Err(Errno::EBADF) => {
                // The lowest free descriptor: `fd` itself, as those below are open.
                let opened = open("/dev/null", OFlag::O_RDWR, Mode::empty())?;
                if opened != fd {
                    return Err(Errno::EBADF);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// totpctl is running as an ordinary user without privileges: say why.
fn why_unprivileged() -> Unprivileged {
    let setuid_root =
        std::fs::metadata("/proc/self/exe").is_ok_and(|m| m.uid() == 0 && m.mode() & 0o4000 != 0);
    if !setuid_root {
        Unprivileged::NotSetuid
    } else if no_new_privs() {
        Unprivileged::NoNewPrivs
    } else {
        Unprivileged::Ignored
    }
}

/// Is no_new_privs set on this process (`NoNewPrivs: 1` in /proc/self/status)?
pub fn no_new_privs() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .any(|l| l.strip_prefix("NoNewPrivs:").map(str::trim) == Some("1"))
    })
}

/// Remove every environment variable except a validated locale and TERM,
/// and set a fixed PATH. Runs before any other thread exists.
fn scrub_environment() {
    let keep: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, v)| {
            (KEPT_NAMES.contains(&k.as_str()) || KEPT_PREFIXES.iter().any(|p| k.starts_with(p)))
                && safe_value(v)
        })
        .collect();
    let names: Vec<_> = std::env::vars_os().map(|(k, _)| k).collect();
    for name in names {
        std::env::remove_var(name);
    }
    for (k, v) in keep {
        std::env::set_var(k, v);
    }
    std::env::set_var("PATH", SAFE_PATH);
}

/// A locale or terminal name: short, and only letters, digits and `._-@+:`.
/// No `/`, so no path to a locale or terminfo file of the user's choosing.
fn safe_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@+:".contains(&b))
}

/// While alive, the effective uid and gid are the real user's, so that files
/// are opened with exactly the user's rights (their supplementary groups are
/// the process's, unchanged by setuid). Dropped, root is restored.
pub struct AsRealUser {
    egid: Gid,
}

impl AsRealUser {
    pub fn new() -> std::io::Result<Self> {
        let egid = getegid();
        setegid(getgid())?;
        if let Err(e) = seteuid(getuid()) {
            let _ = setegid(egid);
            return Err(e.into());
        }
        Ok(Self { egid })
    }
}

impl Drop for AsRealUser {
    fn drop(&mut self) {
        // Going back can only fail if root was never held; then the store
        // writes that follow fail too, which is safe.
        let _ = seteuid(Uid::from_raw(0));
        let _ = setegid(self.egid);
    }
}

/// While alive, a root process acts as `user`: effective uid, effective gid
/// and supplementary groups are theirs, so files are opened, created and
/// removed with exactly that user's rights (root's own groups would let it
/// into group-root directories). Dropped, root's identity is restored.
/// For root acting on another user's behalf, such as writing their `.jpg`.
pub struct AsUser {
    egid: Gid,
    groups: Vec<Gid>,
}

impl AsUser {
    pub fn new(user: &User) -> std::io::Result<Self> {
        let egid = getegid();
        let groups = getgroups()?;
        let name = CString::new(user.name.as_bytes())?;
        let theirs = getgrouplist(&name, user.gid)?;
        setgroups(&theirs)?;
        let guard = Self { egid, groups };
        // From here, dropping `guard` undoes whatever was done.
        setegid(user.gid)?;
        seteuid(user.uid)?;
        Ok(guard)
    }
}

impl Drop for AsUser {
    fn drop(&mut self) {
        // As for AsRealUser: if root cannot be restored, what follows fails.
        let _ = seteuid(Uid::from_raw(0));
        let _ = setegid(self.egid);
        let _ = setgroups(&self.groups);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locale_and_term_values() {
        for ok in [
            "C",
            "C.UTF-8",
            "en_US.UTF-8",
            "de_DE@euro",
            "xterm-256color",
            "rxvt+x",
        ] {
            assert!(safe_value(ok), "{ok}");
        }
        for bad in [
            "",
            "../../tmp/x",
            "/usr/lib/locale",
            "a b",
            "x\n",
            &"a".repeat(65),
        ] {
            assert!(!safe_value(bad), "{bad:?}");
        }
    }
}
