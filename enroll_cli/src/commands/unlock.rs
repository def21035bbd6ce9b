//! `totpctl unlock USER`: clear the lockout and the failure count (audited).

use crate::audit;
use crate::cli::UserArgs;
use crate::context::{self, Context, Invocation};
use crate::error::CliError;
use totp_core::time::{format_utc, now_unix};

pub fn run(inv: &Invocation, args: &UserArgs) -> Result<(), CliError> {
    let ctx = Context::load_admin("unlock", inv)?;
    let user = context::user_name(&args.user)?;
    let lock = ctx.lock(&user)?;
    let mut state = lock.read_state().state;
    let was_locked = state.locked_at(now_unix());
    let failures = state.failures;
    state.failures = 0;
    state.locked_until = None;
    state.last_failure_at = None;
    lock.write_state(&state)?;
    drop(lock);
    audit::audit_or_warn(
        "unlock",
        user.as_str(),
        &format!(
            "failures={failures} locked={}",
            if was_locked.is_some() { "yes" } else { "no" }
        ),
    );
    match was_locked {
        Some(until) => println!(
            "'{user}' is unlocked (was locked until {}, after {failures} failures).",
            format_utc(until)
        ),
        None => println!("'{user}' was not locked; the failure count ({failures}) is cleared."),
    }
    Ok(())
}
