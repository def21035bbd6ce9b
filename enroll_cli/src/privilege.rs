//! Who is running totpctl, decided before anything else happens.
//!
//! By default only root runs totpctl. In self-service mode the package (or
//! `totpctl self-service enable`) installs it setuid root, executable only by
//! the self-service group (mode 4754 root:totp-users, via dpkg-statoverride).
//! Then the first thing `main` does is [`start`], which, for a setuid run:
//! - clears the environment, keeping only a validated `LANG`, `LC_*` and
//!   `TERM` (the dynamic loader has already ignored `LD_*`: AT_SECURE);
//! - takes the acting user from getuid(), never from `$USER` or `$LOGNAME`;
//! - refuses to run if the effective uid is not root.
//!
//! A non-root run that did not gain root is told why: the plain "ask an
//! administrator" when totpctl is not setuid, or the cause (no_new_privs, a
//! nosuid mount) when it is setuid and the kernel did not honour it.
//!
//! Path overrides (`--config`) are ignored for a non-root caller: the config
//! is always [`config_path`], compiled in.

use crate::error::CliError;
use nix::sys::stat::{umask, Mode};
use nix::unistd::{getegid, geteuid, getgid, getuid, setegid, seteuid, Gid, Uid, User};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use totp_core::config::DEFAULT_CONFIG_PATH;
use totp_core::names::UserName;

/// The config file totpctl reads when no `--config` is given, and always for
/// a non-root caller. A test build may compile in another path by setting
/// `PAM_TOTP_TEST_CONFIG_PATH` at build time; there is no way to change it at
/// run time. The package build unsets it and checks the result
/// (`totpctl self-service status` prints it).
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
    scrub_environment();
    umask(Mode::from_bits_truncate(0o077));
    if !euid.is_root() {
        return Err(CliError::SetuidNotRoot {
            euid: euid.as_raw(),
        });
    }
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
