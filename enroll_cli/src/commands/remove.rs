//! `totpctl disable USER` and `totpctl reset USER`: remove the record and the
//! login state. Reset is the lost-device path and is audited.

use crate::audit;
use crate::cli::UserArgs;
use crate::context::{self, Context};
use crate::error::CliError;
use std::path::Path;

pub fn disable(config: Option<&Path>, args: &UserArgs) -> Result<(), CliError> {
    let ctx = Context::load("disable", config)?;
    let user = context::user_name(&args.user)?;
    let lock = ctx.lock(&user)?;
    if !lock.remove_all()? {
        return Err(CliError::NotEnrolled(user.to_string()));
    }
    drop(lock);
    println!(
        "Two-factor login is disabled for '{user}': the record and the login state are removed. \
         Logins now follow the policy for users who are not enrolled."
    );
    Ok(())
}

pub fn reset(config: Option<&Path>, args: &UserArgs) -> Result<(), CliError> {
    let ctx = Context::load("reset", config)?;
    let user = context::user_name(&args.user)?;
    let lock = ctx.lock(&user)?;
    // Not parsed first: a corrupt record must be removable too.
    let existed = lock.remove_all()?;
    drop(lock);
    audit::audit_or_warn(
        "reset",
        user.as_str(),
        if existed { "" } else { "note=no-record" },
    );
    if existed {
        println!(
            "'{user}' is reset: the enrollment, recovery codes, failures and lockout are removed."
        );
    } else {
        println!("'{user}' had no enrollment; the failures and lockout are cleared.");
    }
    println!(
        "Until '{user}' enrolls again, logins follow the policy for users who are not enrolled."
    );
    println!("Next: run 'totpctl enroll {user}' and have them scan the new QR code.");
    Ok(())
}
