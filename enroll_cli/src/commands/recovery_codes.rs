//! `totpctl recovery-codes USER [--regenerate]`: count the recovery codes
//! left, or replace the whole set.

use crate::cli::RecoveryCodesArgs;
use crate::context::{Context, Invocation};
use crate::error::CliError;
use crate::json;
use totp_core::enrollment::{self, recovery_left, EnrollmentError};
use totp_core::record::Status;

pub fn run(inv: &Invocation, args: &RecoveryCodesArgs) -> Result<(), CliError> {
    let ctx = Context::load("recovery-codes", inv)?;
    let user = ctx.target("recovery-codes", args.user.as_deref())?;
    let self_service = ctx.self_user().is_some();
    let proof = match ctx.load_record(&user) {
        Ok(Some(r)) if self_service && args.regenerate && r.status == Status::Active => {
            Some(super::read_proof(&ctx, &user)?)
        }
        Err(CliError::CorruptRecord { .. }) if self_service => {
            return Err(CliError::CorruptOwnRecord)
        }
        _ => None,
    };
    let lock = ctx.lock(&user)?;
    let mut record = ctx
        .load_record(&user)?
        .ok_or_else(|| CliError::NotEnrolled(user.to_string()))?;
    if record.status != Status::Active {
        return Err(CliError::StillPending(user.to_string()));
    }
    if !args.regenerate {
        let read = lock.read_state();
        drop(lock);
        let mut state = read.state;
        if read.lost {
            // As a login would count them: a lost state used them all.
            let _ = totp_core::attempt::forget_recovery(&record, &mut state);
        }
        let (left, total) = (recovery_left(&record, &state), record.recovery.len());
        if ctx.json {
            let object = json::Object::new()
                .string("user", user.as_str())
                .number("left", left as u64)
                .number("total", total as u64);
            outln!("{}", object.finish());
        } else {
            outln!(
                "'{user}' has {left} of {total} recovery codes left. 'totpctl recovery-codes \
                 {user} --regenerate' replaces them all."
            );
        }
        ctx.audit_self("recovery-codes", &user, "");
        return Ok(());
    }
    if self_service {
        let proof = proof.as_deref().map(|p| &p[..]);
        if let Err(failed) = super::check_proof(&ctx, &lock, &record, &user, proof) {
            drop(lock);
            return Err(failed.finish(&ctx));
        }
    }
    ctx.audit_self_start("recovery-codes", &user, "regenerate=yes");
    let codes = enrollment::regenerate_recovery(&lock, &mut record).map_err(|e| match e {
        EnrollmentError::Store(e) => CliError::Store(e),
        EnrollmentError::Random(e) => CliError::Random(e),
        other => CliError::Output("the recovery codes".into(), std::io::Error::other(other)),
    })?;
    drop(lock);
    ctx.audit_self("recovery-codes", &user, "regenerate=yes");
    if ctx.json {
        outln!(
            "{}",
            super::recovery_codes_json(&user, None, &codes).as_str()
        );
    } else {
        outln!("New recovery codes for '{user}'; the old ones no longer work.");
        super::print_recovery_codes(super::Out::Stdout, &codes);
    }
    Ok(())
}
