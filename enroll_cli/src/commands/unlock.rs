//! `totpctl unlock USER [--reset-skew] [--counter N]`: clear the lockout and
//! the failure count, with `--reset-skew` the learned clock skew, and with
//! `--counter` set a HOTP token's next counter (audited).
//!
//! On a login state that was lost (deleted, emptied, corrupt) unlock does
//! not bring back what it forgot: every recovery code stays used (new ones
//! come from `totpctl recovery-codes`), and a HOTP record needs `--counter`.

use crate::audit;
use crate::cli::UnlockArgs;
use crate::context::{self, Context, Invocation};
use crate::error::CliError;
use crate::json;
use totp_core::attempt;
use totp_core::otp::OtpType;
use totp_core::throttle::{self, Lockout};
use totp_core::time::{format_utc, now_unix};

pub fn run(inv: &Invocation, args: &UnlockArgs) -> Result<(), CliError> {
    let ctx = Context::load_admin("unlock", inv)?;
    let user = context::user_name(&args.user)?;
    ctx.require_known(&user)?;
    let record = ctx.load_record(&user)?;
    let hotp = record.as_ref().is_some_and(|r| r.kind == OtpType::Hotp);
    if args.counter.is_some() && !hotp {
        return Err(CliError::Usage(format!(
            "--counter is for a HOTP enrollment, and '{user}' has none"
        )));
    }
    let lock = ctx.lock(&user)?;
    let read = lock.read_state();
    let mut state = read.state;
    let burnt = match (&record, read.lost) {
        (Some(record), true) => attempt::forget_recovery(record, &mut state).is_some(),
        _ => false,
    };
    if let Some(counter) = args.counter {
        state.hotp_next = Some(counter);
    } else if hotp && state.hotp_next.is_none() {
        return Err(CliError::Usage(format!(
            "the HOTP counter of '{user}' is unknown (the login state was lost): give the \
             counter of the token's next code with --counter N; a counter too low makes every \
             code from it on work again"
        )));
    }
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
    if let Some(counter) = args.counter {
        detail.push_str(&format!(" hotp_counter={counter}"));
    }
    if burnt {
        detail.push_str(" recovery_codes=all-used");
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
        if let Some(counter) = args.counter {
            object = object.number("hotp_next", counter);
        }
        if burnt {
            object = object.boolean("recovery_codes_lost", true);
        }
        outln!("{}", object.finish());
        return Ok(());
    }
    if args.reset_skew {
        match skew {
            0 => outln!("'{user}' had no clock skew learned."),
            steps => outln!(
                "'{user}': the learned clock skew ({steps:+} steps) is forgotten; codes are \
                 checked around the server's time again."
            ),
        }
    }
    if let Some(counter) = args.counter {
        outln!("'{user}': the token's next HOTP counter is {counter}.");
    }
    if burnt {
        outln!(
            "'{user}': the login state was lost, so which recovery codes were used is unknown: \
             all are treated as used. Issue new ones with 'totpctl recovery-codes {user} --regenerate'."
        );
    }
    match was_locked {
        Some(Lockout::Until(until)) => outln!(
            "'{user}' is unlocked (was locked until {}, after {failures} failures).",
            format_utc(until)
        ),
        Some(Lockout::Capped { .. }) => outln!(
            "'{user}' is unlocked (was locked until unlocked, after {failures} consecutive failures)."
        ),
        Some(Lockout::CounterUnknown) | None => {
            outln!("'{user}' was not locked; the failure count ({failures}) is cleared.")
        }
    }
    Ok(())
}
