//! What every command starts with: the root check, the config and the store,
//! and the target user checked as a name and looked up as an account.

use crate::error::CliError;
use nix::unistd::{geteuid, User};
use std::path::Path;
use totp_core::config::{Config, DEFAULT_CONFIG_PATH};
use totp_core::names::{printable, UserName};
use totp_core::store::{Store, StoreError, UserLock};
use totp_core::{fsio, record::UserRecord};

pub struct Context {
    pub config: Config,
    pub store: Store,
}

impl Context {
    /// Refuse non-root callers, then load the config: `--config PATH` must
    /// exist; the default path may be missing, which means the defaults.
    pub fn load(command: &'static str, config: Option<&Path>) -> Result<Self, CliError> {
        if !geteuid().is_root() {
            return Err(CliError::NotRoot { command });
        }
        let config = match config {
            Some(path) => Config::load(path, true)?,
            None => Config::load(Path::new(DEFAULT_CONFIG_PATH), false)?,
        };
        let store = Store::new(&config.paths);
        Ok(Self { config, store })
    }

    /// Create the users and state directories (0700) if they are missing.
    pub fn ensure_dirs(&self) -> Result<(), CliError> {
        for dir in [self.store.users_dir(), self.store.state_dir()] {
            fsio::ensure_private_dir(dir)
                .map_err(|e| CliError::Output(format!("directory {}", dir.display()), e))?;
        }
        Ok(())
    }

    /// Take the user's lock; the state directory is created first if needed.
    pub fn lock(&self, user: &UserName) -> Result<UserLock<'_>, CliError> {
        fsio::ensure_private_dir(self.store.state_dir()).map_err(|e| {
            CliError::Output(format!("directory {}", self.store.state_dir().display()), e)
        })?;
        Ok(self.store.lock(user)?)
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

/// Check a user name given on the command line.
pub fn user_name(raw: &str) -> Result<UserName, CliError> {
    UserName::parse(raw.as_bytes()).map_err(|why| CliError::InvalidUser {
        shown: printable(raw.as_bytes()),
        why,
    })
}

/// Check a user name and look it up in the passwd database.
pub fn system_user(raw: &str) -> Result<(UserName, User), CliError> {
    let name = user_name(raw)?;
    match User::from_name(name.as_str()) {
        Ok(Some(user)) => Ok((name, user)),
        Ok(None) => Err(CliError::UnknownUser(name.to_string())),
        Err(e) => Err(CliError::UserLookup(name.to_string(), e)),
    }
}
