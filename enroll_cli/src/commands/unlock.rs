//! `totpctl unlock USER`: clear the lockout and the failure count (audited).

use crate::audit;
use crate::cli::UserArgs;
use crate::context::{self, Context, Invocation};
use crate::error::CliError;
use crate::json;
use totp_core::throttle::{self, Lockout};
use totp_core::time::{format_utc, now_unix};

pub fn run(inv: &Invocation, args: &UserArgs) -> Result<(), CliError> {
    let ctx = Context::load_admin("unlock", inv)?;
    let user = context::user_name(&args.user)?;
    let lock = ctx.lock(&user)?;
    let mut state = lock.read_state().state;
    let now = now_unix();
    throttle::expire_lock(&mut state, now);
    let was_locked = throttle::lockout(&state, &ctx.config.throttle, now);
    let failures = state.failures_since_success;
    throttle::unlock(&mut state);
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
    if ctx.json {
        let object = json::Object::new()
            .string("user", user.as_str())
            .boolean("unlocked", true)
            .boolean("was_locked", was_locked.is_some())
            .number("failures", u64::from(failures));
        println!("{}", object.finish());
        return Ok(());
    }
    match was_locked {
        Some(Lockout::Until(until)) => println!(
            "'{user}' is unlocked (was locked until {}, after {failures} failures).",
            format_utc(until)
        ),
        Some(Lockout::Capped { .. }) => println!(
            "'{user}' is unlocked (was locked until unlocked, after {failures} consecutive failures)."
        ),
        None => println!("'{user}' was not locked; the failure count ({failures}) is cleared."),
    }
    Ok(())
}
