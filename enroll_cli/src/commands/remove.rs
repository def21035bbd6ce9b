//! `totpctl disable USER` and `totpctl reset USER`: remove the record and the
//! login state. Reset is the lost-device path and is audited.

use crate::audit;
use crate::cli::{OwnUserArgs, UserArgs};
use crate::context::{self, Context, Invocation};
use crate::error::CliError;
use crate::json;
use totp_core::record::Status;

/// Root removes any enrollment. A self-service caller removes their own; an
/// active one only after proving it with a current or recovery code.
pub fn disable(inv: &Invocation, args: &OwnUserArgs) -> Result<(), CliError> {
    let ctx = Context::load("disable", inv)?;
    let user = ctx.target("disable", args.user.as_deref())?;
    if ctx.self_user().is_some() {
        let proof = match ctx.load_record(&user) {
            Ok(Some(r)) if r.status == Status::Active => Some(super::read_proof(&ctx, &user)?),
            Ok(_) => None,
            Err(CliError::CorruptRecord { .. }) => return Err(CliError::CorruptOwnRecord),
            Err(e) => return Err(e),
        };
        let lock = ctx.lock(&user)?;
        match ctx.load_record(&user) {
            Ok(Some(r)) if r.status == Status::Active => {
                let proof = proof.as_deref().map(|p| &p[..]);
                if let Err(failed) = super::check_proof(&ctx, &lock, &r, &user, proof) {
                    drop(lock);
                    return Err(failed.finish(&ctx));
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => return Err(CliError::NotEnrolled(user.to_string())),
            Err(CliError::CorruptRecord { .. }) => return Err(CliError::CorruptOwnRecord),
            Err(e) => return Err(e),
        }
        ctx.audit_self_start("disable", &user, "");
        lock.remove_all()?;
        drop(lock);
        ctx.audit_self("disable", &user, "");
    } else {
        let lock = ctx.lock(&user)?;
        if !lock.remove_all()? {
            return Err(CliError::NotEnrolled(user.to_string()));
        }
        drop(lock);
    }
    if ctx.json {
        let object = json::Object::new()
            .string("user", user.as_str())
            .string("status", "not_enrolled");
        outln!("{}", object.finish());
        return Ok(());
    }
    outln!(
        "Two-factor login is disabled for '{user}': the record and the login state are removed. \
         Logins now follow the policy for users who are not enrolled."
    );
    Ok(())
}

pub fn reset(inv: &Invocation, args: &UserArgs) -> Result<(), CliError> {
    let ctx = Context::load_admin("reset", inv)?;
    let user = context::user_name(&args.user)?;
    ctx.require_known(&user)?;
    let lock = ctx.lock(&user)?;
    // Not parsed first: a corrupt record must be removable too.
    let existed = lock.remove_all()?;
    drop(lock);
    audit::audit_or_warn(
        "reset",
        user.as_str(),
        if existed { "" } else { "note=no-record" },
    );
    if ctx.json {
        let object = json::Object::new()
            .string("user", user.as_str())
            .boolean("reset", true)
            .boolean("had_record", existed);
        outln!("{}", object.finish());
        return Ok(());
    }
    if existed {
        outln!(
            "'{user}' is reset: the enrollment, recovery codes, failures and lockout are removed."
        );
    } else {
        outln!("'{user}' had no enrollment; the failures and lockout are cleared.");
    }
    outln!(
        "Until '{user}' enrolls again, logins follow the policy for users who are not enrolled."
    );
    outln!("Next: run 'totpctl enroll {user}' and have them scan the new QR code.");
    Ok(())
}
