//! What every command starts with: who may run it, the config and the
//! store, and the target user checked as a name and looked up as an account.
//!
//! Root may do everything. A self-service caller (totpctl setuid, see
//! [`crate::privilege`]) must be in the self-service group, gets the
//! compiled-in config whatever `--config` says, and may act only on their own
//! account with the commands that use [`Context::load`]; the others use
//! [`Context::load_admin`]. Every refusal of a self-service caller is audited.

use crate::audit;
use crate::error::CliError;
use crate::privilege::{self, Caller, SelfUser};
use nix::unistd::{getgrouplist, Group, User};
use std::ffi::CString;
use std::path::PathBuf;
use totp_core::config::Config;
use totp_core::names::{printable, UserName};
use totp_core::store::{Store, StoreError, UserLock};
use totp_core::{fsio, record::UserRecord};

/// The caller and the global options, as main found them.
pub struct Invocation {
    pub caller: Caller,
    pub config: Option<PathBuf>,
    /// `--json`: no prompts, one JSON document on stdout.
    pub json: bool,
}

pub struct Context {
    pub config: Config,
    pub store: Store,
    pub caller: Caller,
    /// `--json`: no prompts, one JSON document on stdout.
    pub json: bool,
}

impl Context {
    /// For the commands an ordinary user may run on their own account in
    /// self-service mode. Root: `--config PATH` must exist; the default path
    /// may be missing, which means the defaults.
    pub fn load(command: &'static str, inv: &Invocation) -> Result<Self, CliError> {
        match &inv.caller {
            Caller::Root => Self::for_root(inv),
            Caller::Unprivileged(why) => Err(CliError::NotRoot { command, why: *why }),
            Caller::SelfService(me) => {
                if inv.config.is_some() {
                    eprintln!(
                        "totpctl: note: --config is ignored when an ordinary user runs totpctl; \
                         {} is read.",
                        privilege::CONFIG_PATH
                    );
                }
                let config = Config::load(privilege::config_path(), false)?;
                if !is_member(me, &config.enroll.self_service_group) {
                    refused(me, command, me.name.as_str(), "not-in-group");
                    return Err(CliError::NotMember);
                }
                let store = Store::from_config(&config)?;
                Ok(Self {
                    config,
                    store,
                    caller: inv.caller.clone(),
                    json: inv.json,
                })
            }
        }
    }

    /// For the commands that only root may run.
    pub fn load_admin(command: &'static str, inv: &Invocation) -> Result<Self, CliError> {
        match &inv.caller {
            Caller::Root => Self::for_root(inv),
            Caller::Unprivileged(why) => Err(CliError::NotRoot { command, why: *why }),
            Caller::SelfService(me) => {
                refused(me, command, "-", "admin-only");
                Err(CliError::AdminOnly { command })
            }
        }
    }

    fn for_root(inv: &Invocation) -> Result<Self, CliError> {
        let config = match &inv.config {
            Some(path) => Config::load(path, true)?,
            None => Config::load(privilege::config_path(), false)?,
        };
        let store = Store::from_config(&config)?;
        Ok(Self {
            config,
            store,
            caller: Caller::Root,
            json: inv.json,
        })
    }

    /// The self-service caller, if this is a self-service run.
    pub fn self_user(&self) -> Option<&SelfUser> {
        match &self.caller {
            Caller::SelfService(me) => Some(me),
            _ => None,
        }
    }

    /// The user `command` acts on: `raw` if given (for a self-service caller
    /// it must be their own name), else the calling user.
    pub fn target(&self, command: &'static str, raw: Option<&str>) -> Result<UserName, CliError> {
        match (&self.caller, raw) {
            (Caller::SelfService(me), None) => Ok(me.name.clone()),
            (Caller::SelfService(me), Some(raw)) if raw == me.name.as_str() => Ok(me.name.clone()),
            (Caller::SelfService(me), Some(raw)) => {
                let other = printable(raw.as_bytes());
                refused(me, command, &other, "other-user");
                Err(CliError::OtherUser {
                    me: me.name.to_string(),
                    other,
                })
            }
            (_, Some(raw)) => user_name(raw),
            (_, None) => calling_user(),
        }
    }

    /// One audit line for a self-service proof about to be compared.
    pub fn audit_self_attempt(&self, user: &UserName) {
        if let Some(me) = self.self_user() {
            let _ = audit::audit_result(
                "change-active",
                user.as_str(),
                "attempt",
                &format!("mode=self-service caller={}", me.name),
            );
        }
    }

    /// One audit line for a self-service change refused for want of proof.
    /// Audit a self-service caller's use of an option that is for root only
    /// (`enroll --seed-stdin`).
    pub fn audit_self_admin_only(&self, command: &str, user: &UserName) {
        if let Some(me) = self.self_user() {
            refused(me, command, user.as_str(), "admin-only");
        }
    }

    pub fn audit_self_refused(&self, user: &UserName, reason: &str) {
        if let Some(me) = self.self_user() {
            let reason = format!("proof-failed why=\"{}\"", reason.replace('"', "'"));
            refused(me, "change-active", user.as_str(), &reason);
        }
    }

    /// One audit line just before a self-service change is written, so that a
    /// run killed between the change and its "done" line (the caller may
    /// signal their own setuid process) still leaves a trace.
    pub fn audit_self_start(&self, action: &str, user: &UserName, detail: &str) {
        if self.self_user().is_some() {
            let detail = if detail.is_empty() {
                "mode=self-service".to_owned()
            } else {
                format!("mode=self-service {detail}")
            };
            let _ = audit::audit_result(action, user.as_str(), "start", &detail);
        }
    }

    /// One audit line for a self-service action that was done; root's
    /// actions are audited by the commands that need it (reset, unlock).
    pub fn audit_self(&self, action: &str, user: &UserName, detail: &str) {
        if let Some(me) = self.self_user() {
            let detail = if detail.is_empty() {
                "mode=self-service".to_owned()
            } else {
                format!("mode=self-service {detail}")
            };
            // The user cannot fix a missing syslog; say nothing to them.
            let _ = audit::audit_result(action, user.as_str(), "done", &detail);
            debug_assert_eq!(me.name.as_str(), user.as_str());
        }
    }

    /// Create the users and state directories (0700) if they are missing
    /// (the files store; a directory server has nothing to create).
    pub fn ensure_dirs(&self) -> Result<(), CliError> {
        let Some(files) = self.store.files() else {
            return Ok(());
        };
        for dir in [files.users_dir(), files.state_dir()] {
            fsio::ensure_private_dir(dir)
                .map_err(|e| CliError::Output(format!("directory {}", dir.display()), e))?;
        }
        Ok(())
    }

    /// Take the user's lock; the state directory is created first if needed.
    pub fn lock(&self, user: &UserName) -> Result<UserLock<'_>, CliError> {
        if let Some(files) = self.store.files() {
            fsio::ensure_private_dir(files.state_dir()).map_err(|e| {
                CliError::Output(format!("directory {}", files.state_dir().display()), e)
            })?;
        }
        Ok(self.store.lock(user)?)
    }

    /// Refuse a name that is neither an account nor in the store, as
    /// `passwd -S` does, before anything is created for it (a lock file).
    /// A name with a record, or a state file, is known: root can still
    /// look at, unlock or reset a deleted account's leftovers.
    pub fn require_known(&self, user: &UserName) -> Result<(), CliError> {
        match User::from_name(user.as_str()) {
            Ok(Some(_)) => return Ok(()),
            Ok(None) => {}
            Err(e) => return Err(CliError::UserLookup(user.to_string(), e)),
        }
        if self.store.list_users()?.contains(user) {
            return Ok(());
        }
        let state = self
            .store
            .files()
            .map(|files| files.state_dir().join(format!("{user}.state")));
        if state.is_some_and(|path| path.symlink_metadata().is_ok()) {
            return Ok(());
        }
        Err(CliError::UnknownUser(user.to_string()))
    }

    /// The user's record, telling a corrupt one apart so that the message can
    /// say how to replace it.
    pub fn load_record(&self, user: &UserName) -> Result<Option<UserRecord>, CliError> {
        match self.store.load_record(user) {
            Ok(record) => Ok(record),
            Err(error @ StoreError::Corrupt(..)) => Err(CliError::CorruptRecord {
                user: user.to_string(),
                error,
            }),
            Err(e) => Err(e.into()),
        }
    }
}

/// Refuse anyone but root (for commands that need no config).
pub fn require_root(command: &'static str, inv: &Invocation) -> Result<(), CliError> {
    match &inv.caller {
        Caller::Root => Ok(()),
        Caller::Unprivileged(why) => Err(CliError::NotRoot { command, why: *why }),
        Caller::SelfService(me) => {
            refused(me, command, "-", "admin-only");
            Err(CliError::AdminOnly { command })
        }
    }
}

/// Audit a refused self-service attempt (best effort, like every audit line).
fn refused(me: &SelfUser, command: &str, target: &str, reason: &str) {
    let _ = audit::audit_result(
        command,
        target,
        "refused",
        &format!("mode=self-service caller={} reason={reason}", me.name),
    );
}

/// Is the caller a member of `group` in the group database now? (The
/// kernel has already checked the process's groups against the file's
/// mode 4754 when it ran totpctl.)
fn is_member(me: &SelfUser, group: &str) -> bool {
    let Ok(Some(group)) = Group::from_name(group) else {
        return false;
    };
    let Ok(name) = CString::new(me.account.name.as_bytes()) else {
        return false;
    };
    getgrouplist(&name, me.account.gid).is_ok_and(|groups| groups.contains(&group.gid))
}

/// The user who runs totpctl, from the real uid.
pub fn calling_user() -> Result<UserName, CliError> {
    let uid = nix::unistd::getuid();
    match User::from_uid(uid) {
        Ok(Some(account)) => user_name(&account.name),
        Ok(None) => Err(CliError::UnknownUser(format!("uid {uid}"))),
        Err(e) => Err(CliError::UserLookup(format!("uid {uid}"), e)),
    }
}

/// Check a user name given on the command line. An account the password
/// database knows is keyed by its canonical name, as the module keys it
/// (a name service may fold case or resolve aliases); an unknown name is
/// kept as given, so that root can still reset a deleted account's files.
pub fn user_name(raw: &str) -> Result<UserName, CliError> {
    let typed = UserName::parse(raw.as_bytes()).map_err(|why| CliError::InvalidUser {
        shown: printable(raw.as_bytes()),
        why,
    })?;
    match User::from_name(typed.as_str()) {
        Ok(Some(account)) if account.name != typed.as_str() => canonical(&account),
        _ => Ok(typed),
    }
}

fn canonical(account: &User) -> Result<UserName, CliError> {
    UserName::parse(account.name.as_bytes()).map_err(|why| CliError::InvalidUser {
        shown: printable(account.name.as_bytes()),
        why,
    })
}

/// Check a user name and look it up in the passwd database; the name
/// returned is the account's canonical one.
pub fn system_user(raw: &str) -> Result<(UserName, User), CliError> {
    let name = user_name(raw)?;
    match User::from_name(name.as_str()) {
        Ok(Some(user)) => Ok((canonical(&user)?, user)),
        Ok(None) => Err(CliError::UnknownUser(name.to_string())),
        Err(e) => Err(CliError::UserLookup(name.to_string(), e)),
    }
}
