//! `totpctl check`: a dry run that reads what the module would read and says,
//! one line per finding, what would deny a login or let one skip the code.
//!
//! Every rule comes from `totp_core`: the config and records are loaded with
//! the module's own loaders, file trust with `fsio::read_checked`, module
//! arguments with `args::ModuleArgs`, and the group and unenrolled decisions
//! with `policy`. What is new here is reading the PAM stacks and sshd_config,
//! which the module never does.

use crate::cli::CheckArgs;
use crate::context::{self, Invocation};
use crate::error::CliError;
use nix::unistd::{Gid, Uid, User};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::fmt;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use totp_core::args::ModuleArgs;
use totp_core::config::{Config, DEFAULT_CONFIG_PATH};
use totp_core::fsio::{self, FileError, Trust};
use totp_core::helper::HELPER_PATH;
use totp_core::names::{printable, UserName};
use totp_core::otp::OtpType;
use totp_core::pamstack::{self, AuthLine};
use totp_core::policy::{self, GroupDecision, Unenrolled, UnenrolledDecision, Unprivileged};
use totp_core::record::Status;
use totp_core::state::LoginState;
use totp_core::store::{Store, StoreError, RECORD_LIMIT};
use totp_core::time::{format_utc, now_unix};

/// PAM modules that check a password; pam_totp belongs after them.
const PASSWORD_MODULES: &[&str] = &[
    "pam_unix.so",
    "pam_sss.so",
    "pam_ldap.so",
    "pam_krb5.so",
    "pam_winbind.so",
    "pam_userdb.so",
    "pam_pwdfile.so",
];
/// PAM services of screen lockers, which run PAM as the user: with
/// pam_totp.so in their stack, the code goes through the setuid helper.
const LOCKERS: &[(&str, &str)] = &[
    ("xscreensaver", "XScreenSaver"),
    ("kde", "KDE's screen locker"),
    ("kscreenlocker", "KDE's screen locker"),
    ("i3lock", "i3lock"),
    ("swaylock", "swaylock"),
    ("hyprlock", "hyprlock"),
    ("waylock", "waylock"),
    ("gnome-screensaver", "GNOME Screensaver"),
    ("cinnamon-screensaver", "Cinnamon's screensaver"),
    ("mate-screensaver", "MATE's screensaver"),
    ("xfce4-screensaver", "Xfce's screensaver"),
    ("xlock", "xlockmore"),
    ("xsecurelock", "XSecureLock"),
];
/// How deep `@include`, `include`, `substack` and sshd `Include` are followed.
pub(super) const MAX_DEPTH: usize = 8;
const SYSLOG_SOCKET: &str = "/dev/log";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Severity {
    Error,
    Warning,
    Ok,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Ok => "ok",
        })
    }
}

/// Prints each finding as it is made and counts them.
#[derive(Default)]
pub(super) struct Findings {
    errors: usize,
    warnings: usize,
}

/// One line of the report. A reader that goes away (`totpctl check | head`)
/// ends the report, not the check: the exit status still counts every
/// error.
fn emit(line: fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

impl Findings {
    fn say(&mut self, severity: Severity, text: impl fmt::Display) {
        match severity {
            Severity::Error => self.errors += 1,
            Severity::Warning => self.warnings += 1,
            Severity::Ok => {}
        }
        emit(format_args!("{severity}: {text}"));
    }
    pub(super) fn error(&mut self, text: impl fmt::Display) {
        self.say(Severity::Error, text);
    }
    pub(super) fn warning(&mut self, text: impl fmt::Display) {
        self.say(Severity::Warning, text);
    }
    pub(super) fn ok(&mut self, text: impl fmt::Display) {
        self.say(Severity::Ok, text);
    }
}

pub fn run(inv: &Invocation, args: &CheckArgs) -> Result<(), CliError> {
    context::require_root("check", inv)?;
    let config = inv.config.as_deref();
    let mut out = Findings::default();
    let loaded = check_config(&mut out, config);
    if let Some(config) = &loaded {
        match Store::from_config(config) {
            Ok(store) => check_store(&mut out, config, &store, args),
            Err(e) => out.error(e),
        }
    }
    let services: Vec<String> = if args.pam_services.is_empty() {
        vec!["common-auth".into(), "sshd".into()]
    } else {
        args.pam_services.clone()
    };
    for service in &services {
        check_pam_service(&mut out, &args.pam_dir, service, config);
    }
    // Without a valid config, what the defaults would do (the module then
    // denies everyone anyway, as reported above).
    check_lockers(&mut out, &args.pam_dir, &loaded.unwrap_or_default());
    super::check_sshd::check_sshd(&mut out, &args.sshd_config);
    if !Path::new(SYSLOG_SOCKET).exists() {
        out.warning(format!(
            "{SYSLOG_SOCKET} does not exist: the module's and totpctl's log lines (every \
             denied login, every reset) will be lost. Fix: install and start a syslog daemon \
             (rsyslog) or enable systemd-journald's {SYSLOG_SOCKET} socket."
        ));
    }
    emit(format_args!(
        "summary: {} error{}, {} warning{}",
        out.errors,
        if out.errors == 1 { "" } else { "s" },
        out.warnings,
        if out.warnings == 1 { "" } else { "s" }
    ));
    if out.errors > 0 {
        return Err(CliError::CheckFailed { errors: out.errors });
    }
    Ok(())
}

/// The store: its directories or its server, then every record.
fn check_store(out: &mut Findings, config: &Config, store: &Store, args: &CheckArgs) {
    if let Some(files) = store.files() {
        let enrolled_any = store.list_users().is_ok_and(|u| !u.is_empty());
        check_dir(out, "users_dir", files.users_dir(), Severity::Warning);
        let missing_state = if enrolled_any {
            Severity::Error
        } else {
            Severity::Warning
        };
        check_dir(out, "state_dir", files.state_dir(), missing_state);
    }
    if config.store.backend == totp_core::config::Backend::Ldap {
        super::check_ldap::check(
            out,
            &totp_ldap::LdapStore::new(&config.ldap).with_otp_limits(&config.otp),
        );
    }
    let accounts = accounts(args.passwd.as_deref());
    let records = check_records(out, store, accounts.as_deref().unwrap_or(&[]));
    check_accounts(out, config, &records, accounts);
}

/// The config as the module loads it; `None` when it would refuse it.
fn check_config(out: &mut Findings, given: Option<&Path>) -> Option<Config> {
    let path = given.unwrap_or(crate::privilege::config_path());
    match Config::load(path, given.is_some()) {
        Ok(config) if path.exists() => {
            out.ok(format!("config {}: valid", path.display()));
            Some(config)
        }
        Ok(config) => {
            out.ok(format!(
                "config {} does not exist; the built-in defaults apply",
                path.display()
            ));
            Some(config)
        }
        Err(e) => {
            out.error(format!(
                "{e}. pam_totp denies every login while the config is refused. Fix: correct \
                 the file (see pam_totp.toml(5)). Records, accounts and directories are not \
                 checked until then."
            ));
            None
        }
    }
}

/// users_dir and state_dir: a real directory, owned by root, mode 0700.
fn check_dir(out: &mut Findings, key: &str, dir: &Path, missing: Severity) {
    let shown = dir.display();
    let meta = match fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let effect = if missing == Severity::Error {
                "logins of enrolled users fail because their state cannot be locked"
            } else if key == "state_dir" {
                "totpctl creates it at the first enrollment"
            } else {
                "every user counts as not enrolled"
            };
            out.say(
                missing,
                format!(
                    "{key} {shown} does not exist: {effect}. Fix: install -d -m 0700 -o root -g \
                     root {shown}"
                ),
            );
            return;
        }
        Err(e) => {
            out.error(format!("{key} {shown}: {e}"));
            return;
        }
    };
    if meta.file_type().is_symlink() || !meta.is_dir() {
        out.error(format!(
            "{key} {shown} is not a directory (or is a symbolic link). Fix: replace it with a \
             directory: install -d -m 0700 -o root -g root {shown}"
        ));
    } else if meta.uid() != 0 {
        out.error(format!(
            "{key} {shown} is owned by uid {}, expected root: that user can replace the files in \
             it. Fix: chown root:root {shown}",
            meta.uid()
        ));
    } else if meta.mode() & 0o077 != 0 {
        out.error(format!(
            "{key} {shown} has mode {:04o}, expected 0700. Fix: chmod 700 {shown}",
            meta.mode() & 0o7777
        ));
    } else {
        out.ok(format!("{key} {shown}: a directory, 0700 root"));
    }
}

/// What the records say, per user name, for the account check.
enum Enrollment {
    Active,
    Pending,
    /// The module refuses the record: the user is denied whatever the policy.
    Broken,
}

/// Every record through the module's loader, and its state and lock files
/// through the same trust rules the module applies.
fn check_records(
    out: &mut Findings,
    store: &Store,
    accounts: &[User],
) -> BTreeMap<String, Enrollment> {
    let mut found = BTreeMap::new();
    let users = match store.list_users() {
        Ok(users) => users,
        Err(e) => {
            out.error(format!("cannot list the users: {e}"));
            return found;
        }
    };
    let (mut active, mut pending, mut hotp) = (0, 0, 0);
    for user in &users {
        let mut counter_lost = false;
        let enrollment = match store.load_record(user) {
            Ok(Some(record)) if record.status == Status::Active => {
                active += 1;
                if record.kind == OtpType::Hotp {
                    hotp += 1;
                    counter_lost = store
                        .peek_state(user)
                        .is_ok_and(|read| read.state.hotp_next.is_none());
                }
                Enrollment::Active
            }
            Ok(Some(_)) => {
                pending += 1;
                Enrollment::Pending
            }
            Ok(None) => continue,
            Err(e @ StoreError::Corrupt(..)) => {
                out.error(format!(
                    "{e}. pam_totp denies {user}'s logins. Fix: correct the file, or remove it \
                     with 'totpctl reset {user}' and enroll again."
                ));
                Enrollment::Broken
            }
            Err(e) if store.files().is_none() => {
                out.error(format!(
                    "{e}. pam_totp denies {user}'s logins on this host. Fix: let the host bind \
                     read the whole entry (see ldap/acl.conf)."
                ));
                Enrollment::Broken
            }
            Err(e) => {
                out.error(format!(
                    "{e}. pam_totp denies {user}'s logins. Fix: chown root:root and chmod 600 \
                     {}, or 'totpctl reset {user}' and enroll again.",
                    store.record_location(user)
                ));
                Enrollment::Broken
            }
        };
        check_state(out, store, user);
        if counter_lost {
            out.warning(format!(
                "{user} has a HOTP token, but the login state holds no counter (lost or \
                 corrupt): pam_totp refuses every code, never restarting at counter 0. Fix: \
                 set the token's next counter ('totpctl unlock {user} --counter N'), or enroll \
                 the token again."
            ));
        }
        let known = accounts.iter().any(|a| a.name == user.as_str())
            || matches!(User::from_name(user.as_str()), Ok(Some(_)));
        if !known {
            out.warning(format!(
                "{} belongs to no account on this system. Fix: remove it with 'totpctl reset \
                 {user}' if the account is gone.",
                store.record_location(user)
            ));
        }
        found.insert(user.to_string(), enrollment);
    }
    out.ok(format!(
        "{} record{} in {}: {active} active, {pending} pending{}",
        users.len(),
        if users.len() == 1 { "" } else { "s" },
        store.files().map_or_else(
            || "the directory".to_owned(),
            |f| f.users_dir().display().to_string()
        ),
        if hotp > 0 {
            format!(" ({hotp} of them HOTP)")
        } else {
            String::new()
        }
    ));
    found
}

fn check_state(out: &mut Findings, store: &Store, user: &UserName) {
    let Some(store) = store.files() else {
        return;
    };
    // The module locks an empty lock file it opens with exactly these rules.
    let lock = store.state_dir().join(format!("{user}.lock"));
    match fsio::read_checked(&lock, Trust::Private, 0) {
        Ok(_) | Err(FileError::Missing) => {}
        Err(e) => out.error(format!(
            "state lock {} {e}. Logins of {user} fail until it is fixed. Fix: rm {}",
            lock.display(),
            lock.display()
        )),
    }
    let path = store.state_path(user);
    let problem = match fsio::read_checked(&path, Trust::Private, RECORD_LIMIT) {
        Ok(text) => match LoginState::parse(&text) {
            Ok(state) => {
                if let Some(until) = state.locked_at(now_unix()) {
                    out.warning(format!(
                        "{user} is locked out until {} after {} failed codes. Fix: 'totpctl \
                         unlock {user}' once you know it was them.",
                        format_utc(until),
                        state.failures
                    ));
                }
                return;
            }
            Err(e) => format!("is corrupt ({e})"),
        },
        Err(FileError::Missing) => return,
        Err(e) => e.to_string(),
    };
    out.warning(format!(
        "state file {} {problem}: the module treats it as lost: {user}'s failures and last \
         code are forgotten, every recovery code counts as used and a HOTP token is refused. \
         Fix: 'totpctl unlock {user}' writes a fresh state (deleting it has the same effect)",
        path.display()
    ));
}

/// One account from the passwd database.
fn parse_passwd_line(line: &str) -> Option<User> {
    let fields: Vec<&str> = line.split(':').collect();
    if fields.len() != 7 {
        return None;
    }
    Some(User {
        name: fields[0].to_owned(),
        passwd: CString::new(fields[1]).ok()?,
        uid: Uid::from_raw(fields[2].parse().ok()?),
        gid: Gid::from_raw(fields[3].parse().ok()?),
        gecos: CString::new(fields[4]).ok()?,
        dir: PathBuf::from(fields[5]),
        shell: PathBuf::from(fields[6]),
    })
}

/// The accounts, from `passwd` or `getent passwd` (which asks NSS, as the
/// module's getpwnam_r does, instead of reading only /etc/passwd).
pub(crate) fn accounts(passwd: Option<&Path>) -> Result<Vec<User>, String> {
    let text = match passwd {
        Some(path) => fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
        None => {
            let run = std::process::Command::new("/usr/bin/getent")
                .arg("passwd")
                .env_clear()
                .stdin(std::process::Stdio::null())
                .output()
                .map_err(|e| format!("/usr/bin/getent passwd: {e}"))?;
            if !run.status.success() {
                return Err(format!("/usr/bin/getent passwd: {}", run.status));
            }
            String::from_utf8_lossy(&run.stdout).into_owned()
        }
    };
    Ok(text.lines().filter_map(parse_passwd_line).collect())
}

/// Shells that allow a login: /etc/shells, as chsh and many daemons use it.
fn login_shells() -> Vec<PathBuf> {
    fs::read_to_string("/etc/shells")
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

/// Whether two config paths name the same file: the same device and inode
/// when both exist (`/etc/pam_totp/../pam_totp/config.toml`, a symlink or a
/// bind mount are the same file), else the same text.
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => (x.dev(), x.ino()) == (y.dev(), y.ino()),
        _ => a == b,
    }
}

/// Accounts with a login shell that the module would deny for want of an
/// enrollment; root first.
fn check_accounts(
    out: &mut Findings,
    config: &Config,
    records: &BTreeMap<String, Enrollment>,
    accounts: Result<Vec<User>, String>,
) {
    let mut users = match accounts {
        Ok(users) => users,
        Err(e) => {
            out.warning(format!(
                "cannot list the accounts ({e}); nobody was checked for a lockout."
            ));
            return;
        }
    };
    let shells = login_shells();
    users.retain(|u| {
        let shell = if u.shell.as_os_str().is_empty() {
            Path::new("/bin/sh")
        } else {
            u.shell.as_path()
        };
        shells.iter().any(|s| s == shell)
    });
    users.sort_by_key(|u| !u.uid.is_root());
    let now = now_unix();
    let unenrolled = config.policy.unenrolled;
    let (mut enrolled, mut exempt, mut let_through) = (0, 0, 0);
    for account in &users {
        let name = printable(account.name.as_bytes());
        match policy::groups(&config.policy, account) {
            Ok(GroupDecision::Ask) => {}
            Ok(_) => {
                exempt += 1;
                continue;
            }
            Err(e) => {
                out.error(format!(
                    "{e}: pam_totp denies every login. Fix: create the group or correct \
                     [policy] in the config."
                ));
                return;
            }
        }
        let why = match records.get(&account.name) {
            Some(Enrollment::Active) => {
                enrolled += 1;
                continue;
            }
            Some(Enrollment::Broken) => continue,
            Some(Enrollment::Pending) => "the enrollment is pending activation",
            None => "not enrolled",
        };
        let fix_enroll = match records.get(&account.name) {
            Some(Enrollment::Pending) => format!("activate it ('totpctl activate {name}')"),
            _ => format!("enroll ('totpctl enroll {name}')"),
        };
        let who = if account.uid.is_root() {
            format!("{name} (uid 0)")
        } else {
            name.clone()
        };
        match policy::unenrolled(unenrolled, now) {
            UnenrolledDecision::Allow => let_through += 1,
            UnenrolledDecision::AllowUntil { deadline } => out.warning(format!(
                "{who} is {why}: let through until {deadline}, locked out after that. Fix: \
                 {fix_enroll} before then."
            )),
            UnenrolledDecision::Deny => out.error(format!(
                "{who} would be locked out: {why}, [policy] unenrolled = \"deny\", and no \
                 exempt_groups or require_groups rule skips them. Fix: {fix_enroll}, add them \
                 to an exempt group, or set unenrolled = \"allow-until:YYYY-MM-DD\" for the \
                 roll-out."
            )),
            UnenrolledDecision::DenyExpired { deadline } => out.error(format!(
                "{who} would be locked out: {why}, and [policy] unenrolled = \"{unenrolled}\" \
                 ended on {deadline}. Fix: {fix_enroll}, add them to an exempt group, or move \
                 the deadline."
            )),
        }
    }
    let mut summary = format!(
        "{} account{} with a login shell: {enrolled} enrolled, {exempt} skipped by group rules",
        users.len(),
        if users.len() == 1 { "" } else { "s" }
    );
    if unenrolled == Unenrolled::Allow {
        summary.push_str(&format!(
            ", {let_through} let through without a code (unenrolled = \"allow\")"
        ));
    }
    out.ok(summary);
}

/// Read `service`'s auth stack as the module does, reporting what cannot be
/// read; `None` when the service file itself cannot be.
fn read_stack(out: &mut Findings, pam_dir: &Path, service: &str) -> Option<Vec<AuthLine>> {
    match pamstack::read_auth_stack(pam_dir, service) {
        Ok(stack) => {
            for problem in &stack.problems {
                out.warning(format!("{problem}; it is not checked."));
            }
            Some(stack.lines)
        }
        Err(problem) => {
            out.warning(format!("{problem}; it is not checked."));
            None
        }
    }
}

fn check_pam_service(out: &mut Findings, pam_dir: &Path, service: &str, config: Option<&Path>) {
    let Some(lines) = read_stack(out, pam_dir, service) else {
        return;
    };
    let password = lines
        .iter()
        .position(|l| PASSWORD_MODULES.contains(&l.module.as_str()));
    let totp: Vec<(usize, &AuthLine)> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| pamstack::is_pam_totp(&l.module))
        .collect();
    if totp.is_empty() {
        out.ok(format!(
            "PAM service {service}: pam_totp.so is not in its auth stack yet (enable it with \
             'pam-auth-update --enable totp')"
        ));
        return;
    }
    let forwards = |l: &AuthLine| ModuleArgs::parse(&l.args).is_ok_and(|a| a.forward_pass);
    for &(at, line) in &totp {
        let origin = &line.origin;
        if forwards(line) {
            // A forward_pass line only splits the answer: some pam_totp line
            // after the password module must check the code.
            let checker = totp
                .iter()
                .find(|&&(j, l)| j > at && password.is_some_and(|p| p < j) && !forwards(l));
            let unchecked = pamstack::unchecked_forward_pass(&lines[at..], forwards)
                .map(|(_, why)| why)
                .filter(|why| !why.starts_with("no pam_totp.so line"));
            if let Some(why) = unchecked {
                out.error(format!(
                    "{origin}: forward_pass in PAM service {service}: {why}, so the password \
                     alone logs in (pam_totp.so denies such a login). {}",
                    totp_core::login::FORWARD_PASS_FIX
                ));
                continue;
            }
            match (password, checker) {
                (Some(p), Some(_)) if p > at && !lines[p].stops_on_failure() => out.error(format!(
                    "{origin}: with forward_pass, the password module {} ({}) must end the stack \
                     when the password is wrong (requisite, or [... default=die]); with '{}' the \
                     code is still checked, counted and used up after a wrong password, and \
                     anyone can lock the user out. Fix: make that line requisite.",
                    lines[p].module, lines[p].origin, lines[p].control
                )),
                (Some(p), Some((_, l))) if p > at => out.ok(format!(
                    "{origin}: forward_pass hands the password to {} and the code to {} in PAM service {service}",
                    lines[p].module, l.origin
                )),
                _ => out.error(format!(
                    "{origin}: a forward_pass line only splits the answer, and PAM service {service} has no pam_totp.so line after its password module to check the code: no code is checked. Fix: use the stack in pam_totp(8): forward_pass, then the password module with use_first_pass, then pam_totp.so."
                )),
            }
            continue;
        }
        match ModuleArgs::parse(&line.args) {
            Err(e) => out.error(format!(
                "{origin}: {e}; pam_totp denies every login through PAM service {service}. Fix \
                 the line (see pam_totp(8))."
            )),
            Ok(args) => {
                let used = args
                    .config
                    .as_deref()
                    .unwrap_or(Path::new(DEFAULT_CONFIG_PATH));
                let checked = config.unwrap_or(crate::privilege::config_path());
                if !same_file(used, checked) {
                    out.warning(format!(
                        "{origin}: the module reads config {}, not the {} checked here. Fix: \
                         run 'totpctl --config {} check' as well.",
                        used.display(),
                        checked.display(),
                        used.display()
                    ));
                }
            }
        }
        match password {
            Some(first) if first > at => out.warning(format!(
                "{origin}: pam_totp.so runs before the password module {} ({}) in PAM service \
                 {service}: anyone can ask for a code, wrong guesses lock the real user out, and \
                 a right code is confirmed before the password. Fix: move the pam_totp line \
                 after it (pam-auth-update's profile does).",
                lines[first].module, lines[first].origin
            )),
            Some(first) => out.ok(format!(
                "{origin}: pam_totp.so runs after {} in PAM service {service}",
                lines[first].module
            )),
            None => out.ok(format!(
                "{origin}: pam_totp.so is used in PAM service {service}, which has no password \
                 module (fine for SSH key plus code)"
            )),
        }
    }
}

/// The screen lockers on this machine whose stacks reach pam_totp.so, and
/// what `policy.unprivileged` makes of them: the helper checks the code
/// (it must be there, setuid root), or every unlock is refused, or the
/// password alone unlocks.
fn check_lockers(out: &mut Findings, pam_dir: &Path, config: &Config) {
    let mut found = 0;
    for &(service, name) in LOCKERS {
        if !pam_dir.join(service).is_file() {
            continue;
        }
        found += 1;
        let Some(lines) = read_stack(out, pam_dir, service) else {
            continue;
        };
        let Some(line) = lines.iter().find(|l| {
            pamstack::is_pam_totp(&l.module)
                && ModuleArgs::parse(&l.args).is_ok_and(|a| !a.forward_pass)
        }) else {
            out.ok(format!(
                "screen locker {name} (PAM service {service}): pam_totp.so is not in its stack; \
                 it unlocks without a code"
            ));
            continue;
        };
        let origin = &line.origin;
        match config.policy.unprivileged {
            Unprivileged::Deny => out.warning(format!(
                "{origin}: screen locker {name} (PAM service {service}) runs pam_totp.so as the \
                 user, and policy.unprivileged = \"deny\": every unlock is refused. Fix: set \
                 policy.unprivileged = \"helper\" (the default)."
            )),
            Unprivileged::Ignore => out.warning(format!(
                "{origin}: screen locker {name} (PAM service {service}) runs pam_totp.so as the \
                 user, and policy.unprivileged = \"ignore\": it unlocks without a code."
            )),
            Unprivileged::Helper => {
                let helper = ModuleArgs::parse(&line.args)
                    .ok()
                    .and_then(|a| a.helper)
                    .unwrap_or_else(|| PathBuf::from(HELPER_PATH));
                match fs::metadata(&helper) {
                    Ok(m) if m.is_file() && m.uid() == 0 && m.mode() & 0o4111 == 0o4111 => {
                        out.ok(format!(
                            "{origin}: screen locker {name} (PAM service {service}) uses the \
                             helper {} for codes (policy.unprivileged = \"helper\")",
                            helper.display()
                        ));
                    }
                    found => out.error(format!(
                        "{origin}: screen locker {name} (PAM service {service}) needs the helper \
                         {}, which is {}: every unlock is refused. Fix: reinstall libpam-totp \
                         (the helper is setuid root, mode 4755), or set policy.unprivileged.",
                        helper.display(),
                        match found {
                            Err(e) if e.kind() == ErrorKind::NotFound => "missing".to_owned(),
                            Err(e) => format!("unreadable ({e})"),
                            Ok(_) => "not setuid root and executable by all".to_owned(),
                        }
                    )),
                }
            }
        }
    }
    if found == 0 {
        out.ok(format!(
            "no screen locker's PAM service in {} (xscreensaver, kde, i3lock, swaylock, ...)",
            pam_dir.display()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines() {
        let user = parse_passwd_line("root:x:0:0:root:/root:/bin/bash").unwrap();
        assert!(user.uid.is_root());
        assert_eq!(user.shell, PathBuf::from("/bin/bash"));
        assert!(parse_passwd_line("broken:x:0").is_none());
    }
}
