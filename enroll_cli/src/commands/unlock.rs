//! `totpctl unlock USER [--reset-skew]`: clear the lockout and the failure
//! count, and with `--reset-skew` the learned clock skew (audited).

use crate::audit;
use crate::cli::UnlockArgs;
use crate::context::{self, Context, Invocation};
use crate::error::CliError;
use crate::json;
use totp_core::throttle::{self, Lockout};
use totp_core::time::{format_utc, now_unix};

pub fn run(inv: &Invocation, args: &UnlockArgs) -> Result<(), CliError> {
    let ctx = Context::load_admin("unlock", inv)?;
    let user = context::user_name(&args.user)?;
    ctx.require_known(&user)?;
    let lock = ctx.lock(&user)?;
    let mut state = lock.read_state().state;
    let now = now_unix();
    throttle::expire_lock(&mut state, now);
    let was_locked = throttle::lockout(&state, &ctx.config.throttle, now);
    let failures = state.failures_since_success;
    throttle::unlock(&mut state);
    state.last_failure_at = None;
    let skew = state.skew.unwrap_or(0);
    if args.reset_skew {
        state.skew = None;
        state.resync_offset = None;
        state.resync_step = None;
        state.resync_at = None;
    }
    lock.write_state(&state)?;
    drop(lock);
    // The directory's own cap (ldap.verify = "directory"): slapo-ppolicy.
    if ctx.config.store.backend == totp_core::config::Backend::Ldap {
        totp_ldap::LdapStore::new(&ctx.config.ldap).clear_password_lockout(&user)?;
    }
    let mut detail = format!(
        "failures={failures} locked={}",
        if was_locked.is_some() { "yes" } else { "no" }
    );
    if args.reset_skew {
        detail.push_str(&format!(" skew_reset={skew:+}"));
    }
    audit::audit_or_warn("unlock", user.as_str(), &detail);
    if ctx.json {
        let mut object = json::Object::new()
            .string("user", user.as_str())
            .boolean("unlocked", true)
            .boolean("was_locked", was_locked.is_some())
            .number("failures", u64::from(failures));
        if args.reset_skew {
            object = object.signed("skew_reset", skew);
        }
        println!("{}", object.finish());
        return Ok(());
    }
    if args.reset_skew {
        match skew {
            0 => println!("'{user}' had no clock skew learned."),
            steps => println!(
                "'{user}': the learned clock skew ({steps:+} steps) is forgotten; codes are \
                 checked around the server's time again."
            ),
        }
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
