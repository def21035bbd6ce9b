//! `totpctl resync USER [--json]`: find a token again from two consecutive
//! codes read from standard input (see [`totp_core::resync`]). Root only,
//! audited, throttled like a login.

use crate::audit;
use crate::cli::UserArgs;
use crate::context::{self, Context, Invocation};
use crate::error::CliError;
use crate::{json, prompt};
use totp_core::answer::{self, Answer, Malformed};
use totp_core::attempt::{Refusal, Rules};
use totp_core::enrollment::ProofError;
use totp_core::otp::Code;
use totp_core::record::Status;
use totp_core::resync::{self, Resynced};
use totp_core::time::now_unix;

pub fn run(inv: &Invocation, args: &UserArgs) -> Result<(), CliError> {
    let ctx = Context::load_admin("resync", inv)?;
    let (user, _) = context::system_user(&args.user)?;
    let record = match ctx.load_record(&user)? {
        Some(record) if record.status == Status::Active => record,
        Some(_) => return Err(CliError::StillPending(user.to_string())),
        None => return Err(CliError::NotEnrolled(user.to_string())),
    };
    let digits = record.params.digits;
    // Both codes are read, holding nothing, before the lock is taken.
    let refused = |why| CliError::Resync {
        user: user.to_string(),
        why,
    };
    let read = |question: &str| -> Result<Code, CliError> {
        let typed = prompt::read_code_as(ctx.json, question)
            .map_err(|e| CliError::Output("standard input".into(), e))?
            .ok_or_else(|| refused(ProofError::Malformed(Malformed::Empty)))?;
        match answer::classify(&typed, digits, false) {
            Ok(Answer::Code(code)) => Ok(code),
            Ok(Answer::Recovery(_)) => Err(refused(ProofError::Malformed(Malformed::WrongLength))),
            Err(m) => Err(refused(ProofError::Malformed(m))),
        }
    };
    let first = read("A code from the token: ")?;
    let second = read("The next code from the token: ")?;

    let now = now_unix();
    let lock = ctx.lock(&user)?;
    let rules = Rules {
        otp: &ctx.config.otp,
        throttle: &ctx.config.throttle,
    };
    let done = resync::resync(&lock, &record, &first, &second, now, &rules);
    drop(lock);
    let resynced = match done.result {
        Ok(resynced) => resynced,
        Err(refusal) => {
            let why = ProofError::Refused {
                refusal,
                delay: done.delay,
            };
            let reason = match &why {
                ProofError::Refused {
                    refusal: Refusal::Wrong(_),
                    ..
                } => "the codes are no consecutive pair in range".to_owned(),
                other => other.audit_reason(),
            };
            let detail = format!("reason=\"{reason}\"");
            if let Err(e) = audit::audit_result("resync", user.as_str(), "refused", &detail) {
                eprintln!(
                    "totpctl: warning: the refused resync could not be logged to syslog ({e})."
                );
            }
            std::thread::sleep(done.delay);
            return Err(refused(why));
        }
    };
    let object = json::Object::new()
        .string("user", user.as_str())
        .string("type", &record.kind.to_string())
        .boolean("resynced", true);
    let (object, detail, text) = match resynced {
        Resynced::Counter { first, next, moved } => (
            object
                .number("first_counter", first)
                .number("hotp_next", next)
                .number("moved_by", moved),
            format!("type=hotp counter={first} next={next}"),
            format!(
                "'{user}': the codes are HOTP counters {first} and {}; the next expected counter \
                 is {next} ({moved} further than before).",
                first + 1
            ),
        ),
        Resynced::Skew { step, skew } => (
            object.number("last_step", step).signed("skew", skew),
            format!("type=totp skew={skew:+}"),
            format!(
                "'{user}': the device's clock is {skew:+} steps ({} s) off; that skew is learned \
                 ('totpctl unlock {user} --reset-skew' forgets it). Better: set the device's clock.",
                skew.saturating_mul(i64::try_from(record.params.period).unwrap_or(30))
            ),
        ),
    };
    audit::audit_or_warn("resync", user.as_str(), &detail);
    if ctx.json {
        outln!("{}", object.finish());
    } else {
        outln!("{text}");
    }
    Ok(())
}
