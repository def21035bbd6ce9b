//! `totpctl activate USER`: a pending enrollment becomes active once a code
//! from the app verifies. The code is read from the terminal or standard
//! input (with `--json`, the first line of standard input); `--code` is
//! deprecated.

use super::Out;
use crate::cli::ActivateArgs;
use crate::context::{Context, Invocation};
use crate::error::CliError;
use crate::prompt;
use totp_core::enrollment::{self, EnrollmentError};
use totp_core::names::UserName;
use totp_core::recovery::NewCodes;
use totp_core::time::now_unix;
use zeroize::Zeroizing;

pub fn run(inv: &Invocation, args: &ActivateArgs) -> Result<(), CliError> {
    let ctx = Context::load("activate", inv)?;
    let user = ctx.target("activate", args.user.as_deref())?;
    let typed = match &args.code {
        Some(code) => Zeroizing::new(code.as_bytes().to_vec()),
        None => {
            pending_record(&ctx, &user)?;
            prompt::read_code_as(ctx.json, "Code from the app: ")
                .map_err(|e| CliError::Output("the prompt".into(), e))?
                .ok_or_else(|| CliError::NoCode(user.to_string()))?
        }
    };
    let codes = activate_with(&ctx, &user, &typed)?;
    show_activated(&ctx, &user, &codes, Out::Stdout);
    Ok(())
}

/// Fail early, before asking for a code, when there is nothing to activate.
fn pending_record(ctx: &Context, user: &UserName) -> Result<(), CliError> {
    match ctx.load_record(user)? {
        None => Err(CliError::NotEnrolled(user.to_string())),
        Some(r) if r.status == totp_core::record::Status::Active => {
            Err(CliError::NotPending(user.to_string()))
        }
        Some(_) => Ok(()),
    }
}

/// Verify `typed` against the pending record under the user's lock and
/// activate; the new recovery codes are returned, to be shown once. Shared
/// with `enroll`.
pub(crate) fn activate_with(
    ctx: &Context,
    user: &UserName,
    typed: &[u8],
) -> Result<NewCodes, CliError> {
    let lock = ctx.lock(user)?;
    let mut record = ctx
        .load_record(user)?
        .ok_or_else(|| CliError::NotEnrolled(user.to_string()))?;
    let codes = enrollment::activate(
        &lock,
        &mut record,
        typed,
        now_unix(),
        &ctx.config.otp,
        &ctx.config.throttle,
    )
    .map_err(|why| match why {
        EnrollmentError::NotPending => CliError::NotPending(user.to_string()),
        // How far off a code was is for root's eyes: to anyone else it would
        // say which step a guess belongs to.
        EnrollmentError::ClockOff { .. } if ctx.self_user().is_some() => CliError::Code {
            user: user.to_string(),
            why: EnrollmentError::Wrong,
            unusual: super::enroll::unusual_settings(record.params),
        },
        why => CliError::Code {
            user: user.to_string(),
            why,
            unusual: super::enroll::unusual_settings(record.params),
        },
    })?;
    drop(lock);
    ctx.audit_self("activate", user, "");
    Ok(codes)
}

/// Say that `user` is active and show the recovery codes: as text on `out`,
/// or with `--json` as `{"user":...,"status":"active","recovery_codes":[...]}`.
pub(crate) fn show_activated(ctx: &Context, user: &UserName, codes: &NewCodes, out: Out) {
    if ctx.json {
        outln!(
            "{}",
            super::recovery_codes_json(user, Some("active"), codes).as_str()
        );
        return;
    }
    out.line(&format!(
        "The code was accepted: two-factor login is now active for '{user}'."
    ));
    super::print_recovery_codes(out, codes);
}
