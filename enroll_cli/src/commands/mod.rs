//! One module per subcommand. Each `run` checks its input completely before it
//! takes the user's lock and changes anything.

pub mod activate;
pub mod batch;
pub mod check;
mod check_directory;
mod check_ldap;
mod check_sshd;
mod csv;
pub mod enroll;
pub mod generate;
pub mod import;
pub mod list;
pub mod migrate;
mod pskc;
pub mod recovery_codes;
pub mod remove;
pub mod resync;
pub mod self_service;
pub mod status;
pub mod unlock;

use crate::context::Context;
use crate::error::CliError;
use crate::{json, prompt};
use totp_core::enrollment::{self, ProofError, Proven};
use totp_core::names::UserName;
use totp_core::record::UserRecord;
use totp_core::recovery::NewCodes;
use totp_core::store::UserLock;
use totp_core::time::now_unix;
use zeroize::Zeroizing;

/// A self-service change to an active enrollment first asks for a current
/// code or an unused recovery code. It is read before the user's lock is
/// taken, so that a slow typist holds up nobody, and the attempt is audited
/// before it is compared.
///
/// With `--json` there is no prompt: the first line of standard input.
pub(crate) fn read_proof(ctx: &Context, user: &UserName) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let typed = prompt::read_code_as(ctx.json, "Current code from the app, or a recovery code: ")
        .map_err(|e| CliError::Output("the prompt".into(), e))?
        .ok_or_else(|| CliError::Proof {
            user: user.to_string(),
            why: ProofError::Malformed(totp_core::answer::Malformed::Empty),
        })?;
    ctx.audit_self_attempt(user);
    Ok(typed)
}

/// A refused proof, still to be answered: [`ProofFailed::finish`] audits the
/// refusal and then waits out the backoff. Call it after the user's lock is
/// released, so that nobody waits on a lock behind a sleep or a syslog send.
#[must_use = "a refused proof must be audited and its delay applied: call finish()"]
pub(crate) struct ProofFailed {
    user: UserName,
    why: ProofError,
}

impl ProofFailed {
    pub(crate) fn finish(self, ctx: &Context) -> CliError {
        ctx.audit_self_refused(&self.user, &self.why.audit_reason());
        if let ProofError::Refused { delay, .. } = &self.why {
            std::thread::sleep(*delay);
        }
        CliError::Proof {
            user: self.user.to_string(),
            why: self.why,
        }
    }
}

/// Check `typed` against the active `record` under the user's lock, as a
/// login would ([`enrollment::prove`]: lockout, backoff, failure written
/// before the compare, replay).
pub(crate) fn check_proof(
    ctx: &Context,
    lock: &UserLock<'_>,
    record: &UserRecord,
    user: &UserName,
    typed: Option<&[u8]>,
) -> Result<Proven, ProofFailed> {
    let typed = typed.unwrap_or_default();
    enrollment::prove(
        lock,
        record,
        typed,
        now_unix(),
        &ctx.config.otp,
        &ctx.config.throttle,
    )
    .map_err(|why| ProofFailed {
        user: user.clone(),
        why,
    })
}

/// Where a command's text goes: standard output, or standard error when
/// standard output carries something else (`enroll --qr -`: the JPEG).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Out {
    Stdout,
    Stderr,
}

impl Out {
    pub(crate) fn line(self, text: &str) {
        match self {
            Self::Stdout => outln!("{text}"),
            Self::Stderr => eprintln!("{text}"),
        }
    }

    pub(crate) fn text(self, text: &str) {
        match self {
            Self::Stdout => out!("{text}"),
            Self::Stderr => eprint!("{text}"),
        }
    }

    pub(crate) fn is_terminal(self) -> bool {
        use std::io::IsTerminal;
        match self {
            Self::Stdout => std::io::stdout().is_terminal(),
            Self::Stderr => std::io::stderr().is_terminal(),
        }
    }

    /// The width of the terminal this goes to, if it is one.
    pub(crate) fn columns(self) -> Option<usize> {
        let fd = match self {
            Self::Stdout => nix::libc::STDOUT_FILENO,
            Self::Stderr => nix::libc::STDERR_FILENO,
        };
        crate::prompt::terminal_columns(fd)
    }
}

/// Show a fresh set of recovery codes, the only time they are ever shown.
pub(crate) fn print_recovery_codes(out: Out, codes: &NewCodes) {
    out.line("");
    out.line("Recovery codes: each works once at the code prompt, when the phone is not at hand.");
    out.line("They are shown only now. Print them or write them down, and keep them safe:");
    out.line("");
    for (n, code) in (1..).zip(codes.codes.iter()) {
        out.line(&format!("  {n:>2}. {}", code.as_str()));
    }
}

/// `{"user":...,"recovery_codes":[...]}` plus `status` if given: the codes
/// exactly as [`print_recovery_codes`] shows them.
pub(crate) fn recovery_codes_json(
    user: &UserName,
    status: Option<&str>,
    codes: &NewCodes,
) -> Zeroizing<String> {
    let mut object = json::Object::new().string("user", user.as_str());
    if let Some(status) = status {
        object = object.string("status", status);
    }
    object
        .strings("recovery_codes", codes.codes.iter().map(|c| c.as_str()))
        .finish()
        .into()
}
