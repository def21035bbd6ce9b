//! `totpctl recovery-codes USER [--regenerate]`: count the recovery codes
//! left, or replace the whole set.

use crate::cli::RecoveryCodesArgs;
use crate::context::{self, Context};
use crate::error::CliError;
use std::path::Path;
use totp_core::enrollment::{self, recovery_left, EnrollmentError};
use totp_core::record::Status;

pub fn run(config: Option<&Path>, args: &RecoveryCodesArgs) -> Result<(), CliError> {
    let ctx = Context::load("recovery-codes", config)?;
    let user = context::user_name(&args.user)?;
    let lock = ctx.lock(&user)?;
    let mut record = ctx
        .load_record(&user)?
        .ok_or_else(|| CliError::NotEnrolled(user.to_string()))?;
    if record.status != Status::Active {
        return Err(CliError::StillPending(user.to_string()));
    }
    if !args.regenerate {
        let state = lock.read_state().state;
        println!(
            "'{user}' has {} of {} recovery codes left. 'totpctl recovery-codes {user} \
             --regenerate' replaces them all.",
            recovery_left(&record, &state),
            record.recovery.len()
        );
        return Ok(());
    }
    let codes = enrollment::regenerate_recovery(&lock, &mut record).map_err(|e| match e {
        EnrollmentError::Store(e) => CliError::Store(e),
        EnrollmentError::Random(e) => CliError::Random(e),
        other => CliError::Output("the recovery codes".into(), std::io::Error::other(other)),
    })?;
    drop(lock);
    println!("New recovery codes for '{user}'; the old ones no longer work.");
    super::print_recovery_codes(&codes);
    Ok(())
}
