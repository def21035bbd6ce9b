//! One module per subcommand. Each `run` checks its input completely before it
//! takes the user's lock and changes anything.

pub mod activate;
pub mod check;
pub mod enroll;
pub mod generate;
pub mod import;
pub mod list;
pub mod recovery_codes;
pub mod remove;
pub mod self_service;
pub mod status;
pub mod unlock;

use crate::context::Context;
use crate::error::CliError;
use crate::prompt;
use totp_core::enrollment::{self, ProofError, Proven};
use totp_core::names::UserName;
use totp_core::record::UserRecord;
use totp_core::recovery::NewCodes;
use totp_core::store::UserLock;
use totp_core::time::now_unix;
use zeroize::Zeroizing;

/// A self-service change to an active enrollment first asks for a current
/// code or an unused recovery code. Read it before the user's lock is taken,
/// so that a slow typist does not hold up their own logins.
pub(crate) fn read_proof(user: &UserName) -> Result<Zeroizing<Vec<u8>>, CliError> {
    prompt::read_code("Current code from the app, or a recovery code: ")
        .map_err(|e| CliError::Output("the prompt".into(), e))?
        .ok_or_else(|| CliError::Proof {
            user: user.to_string(),
            why: ProofError::Malformed(totp_core::answer::Malformed::Empty),
        })
}

/// Check `typed` against the active `record` under the user's lock, as a
/// login would (lockout, replay, failure count). A wrong answer waits out the
/// backoff while still holding the lock, so guesses queue up behind it.
pub(crate) fn check_proof(
    ctx: &Context,
    lock: &UserLock<'_>,
    record: &UserRecord,
    user: &UserName,
    typed: Option<&[u8]>,
) -> Result<Proven, CliError> {
    let typed = typed.unwrap_or_default();
    let result = enrollment::prove(
        lock,
        record,
        typed,
        now_unix(),
        ctx.config.otp.window,
        &ctx.config.throttle,
    );
    result.map_err(|why| {
        if let ProofError::Failed { delay, .. } = &why {
            std::thread::sleep(*delay);
        }
        ctx.audit_self_refused(user, "proof-failed");
        CliError::Proof {
            user: user.to_string(),
            why,
        }
    })
}

/// Show a fresh set of recovery codes, the only time they are ever shown.
pub(crate) fn print_recovery_codes(codes: &NewCodes) {
    println!();
    println!("Recovery codes: each works once at the code prompt, when the phone is not at hand.");
    println!("They are shown only now. Print them or write them down, and keep them safe:");
    println!();
    for (n, code) in (1..).zip(codes.codes.iter()) {
        println!("  {n:>2}. {}", code.as_str());
    }
}
