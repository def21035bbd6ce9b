//! The PAM glue around [`totp_core::login`], shared by `pam_totp.so` and
//! `pam_totp_ldap.so`, each of which names its [`Variant`].
//!
//! It only adapts PAM to the login flow: it reads the handle's items,
//! runs the conversation, writes the one outcome line to syslog (authpriv,
//! through pam_syslog), and maps the outcome to a PAM return code. Every entry
//! point catches panics, so none can unwind into the calling C program.

use crate::{conv, helper};
use pamsm::{LogLvl, Pam, PamData, PamError, PamFlags, PamLibExt, PamServiceModule};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use totp_core::login::{self, Level, Outcome, PamCode, PamIo};
use zeroize::Zeroizing;

/// What differs between the modules built on this glue.
pub trait Variant {
    /// Make this module's stores available to the login flow. Called at
    /// the start of every authentication, inside the panic guard.
    fn setup();

    /// The login flow stopped before it asked or logged anything because
    /// the config names a store this module does not have
    /// ([`PamCode::Delegate`]): hand the whole call on, or deny. Called
    /// outside the panic guard, with the handle, flags and arguments libpam
    /// gave; the code returned goes to libpam as it is.
    fn delegate(pamh: Pam, flags: PamFlags, args: &[String]) -> PamError;
}

/// The PAM service module, over a [`Variant`]; `pamsm::pam_module!`
/// exports its entry points.
pub struct PamTotp<V>(PhantomData<V>);

impl<V: Variant> PamServiceModule for PamTotp<V> {
    fn authenticate(pamh: Pam, flags: PamFlags, args: Vec<String>) -> PamError {
        let result = catch_unwind(AssertUnwindSafe(|| {
            V::setup();
            let mut io = Handle {
                pam: &pamh,
                silent: flags.contains(PamFlags::SILENT),
            };
            let outcome = login::authenticate(&mut io, &args);
            if outcome.code == PamCode::Delegate {
                return None;
            }
            if outcome.code == PamCode::Success {
                io.accept_kept_code();
            }
            // The line first, then the delay: a process killed during the
            // delay still leaves its line (and the failure is already on disk).
            write_log(&pamh, &outcome);
            if !outcome.delay.is_zero() {
                std::thread::sleep(outcome.delay);
            }
            Some(outcome.code)
        }));
        match result {
            Ok(Some(code)) => pam_error(code),
            Ok(None) => V::delegate(pamh, flags, &args),
            Err(_) => {
                // Best effort: even logging must not unwind from here.
                let _ = catch_unwind(AssertUnwindSafe(|| {
                    let _ = pamh.syslog(
                        LogLvl::ERR,
                        "result=error reason=\"internal error (panic); login denied\"",
                    );
                }));
                PamError::AUTH_ERR
            }
        }
    }

    /// Nothing to set, but one thing to make sure of: a code that a
    /// `forward_pass` line kept was accepted by a later pam_totp line. If
    /// it was not (a stack that never checks it), fail and say so. libpam
    /// weighs a setcred result by the line's pam_authenticate result, which
    /// for a forward_pass line is PAM_IGNORE, so under `required` this
    /// failure alone does not end the login: pam_acct_mgmt (an `account`
    /// line) does. Otherwise succeed, so `auth` stacks that call setcred
    /// keep working.
    fn setcred(pamh: Pam, flags: PamFlags, _: Vec<String>) -> PamError {
        if flags.contains(PamFlags::DELETE_CRED) {
            return PamError::SUCCESS;
        }
        guard_kept_code(&pamh, login::Stage::Credentials, PamError::CRED_ERR)
            .unwrap_or(PamError::SUCCESS)
    }

    /// The same check for an `account` line of pam_totp.so, whose failure
    /// su, login, sudo and cockpit-session honour; nothing else to say.
    /// (sshd runs pam_authenticate in a child process, so the kept code
    /// never reaches the process that calls this.)
    fn acct_mgmt(pamh: Pam, _: PamFlags, _: Vec<String>) -> PamError {
        guard_kept_code(&pamh, login::Stage::Account, PamError::PERM_DENIED)
            .unwrap_or(PamError::IGNORE)
    }

    fn open_session(_: Pam, _: PamFlags, _: Vec<String>) -> PamError {
        PamError::IGNORE
    }

    fn close_session(_: Pam, _: PamFlags, _: Vec<String>) -> PamError {
        PamError::IGNORE
    }

    fn chauthtok(_: Pam, _: PamFlags, _: Vec<String>) -> PamError {
        PamError::IGNORE
    }
}

/// `Some(failure)`, with its log line written, when a code a `forward_pass`
/// line kept was not accepted by any pam_totp line of this transaction.
fn guard_kept_code(pamh: &Pam, stage: login::Stage, failure: PamError) -> Option<PamError> {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut io = Handle {
            pam: pamh,
            silent: true,
        };
        let left = match io.kept_state()? {
            Kept::Code(_) => login::KeptCode::Unchecked,
            Kept::Taken => login::KeptCode::Refused,
            Kept::Accepted => return None,
            // Refused, and logged, at pam_authenticate.
            Kept::Refused => return Some(failure),
        };
        let outcome = login::kept_code_left(&mut io, stage, left);
        write_log(pamh, &outcome);
        Some(failure)
    }));
    result.unwrap_or(Some(failure))
}

/// Write the standard outcome line (user, service, rhost) for a login
/// denied before the login flow could decide it.
pub fn log_denied(pamh: &Pam, why: &str) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let mut io = Handle {
            pam: pamh,
            silent: true,
        };
        write_log(pamh, &login::denied_outside(&mut io, why));
    }));
}

fn pam_error(code: PamCode) -> PamError {
    match code {
        PamCode::Success => PamError::SUCCESS,
        PamCode::AuthErr => PamError::AUTH_ERR,
        PamCode::Ignore => PamError::IGNORE,
        PamCode::ServiceErr => PamError::SERVICE_ERR,
        // Handled before it gets here; fail closed all the same.
        PamCode::Delegate => PamError::AUTH_ERR,
    }
}

pub(crate) fn write_log(pam: &Pam, outcome: &Outcome) {
    for line in &outcome.debug {
        let _ = pam.syslog(LogLvl::DEBUG, line);
    }
    let level = match outcome.level {
        Level::Silent => return,
        Level::Info => LogLvl::INFO,
        Level::Notice => LogLvl::NOTICE,
        Level::Error => LogLvl::ERR,
    };
    let _ = pam.syslog(level, &outcome.line);
}

/// [`PamIo`] over a live PAM handle.
struct Handle<'a> {
    pam: &'a Pam,
    silent: bool,
}

fn item_string(item: Result<Option<&std::ffi::CStr>, PamError>) -> Option<String> {
    item.ok()
        .flatten()
        .map(|s| String::from_utf8_lossy(s.to_bytes()).into_owned())
}

impl PamIo for Handle<'_> {
    fn user(&mut self) -> Result<Vec<u8>, String> {
        match self.pam.get_user(None) {
            Ok(Some(user)) => Ok(user.to_bytes().to_vec()),
            Ok(None) => Err("PAM returned no user".into()),
            Err(e) => Err(format!("pam_get_user failed: {e}")),
        }
    }

    fn service(&self) -> Option<String> {
        item_string(self.pam.get_service())
    }

    fn rhost(&self) -> Option<String> {
        item_string(self.pam.get_rhost())
    }

    fn prompt_hidden(&mut self, prompt: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        conv::ask_hidden(self.pam, prompt)
    }

    fn prompt_visible(&mut self, prompt: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        conv::ask(self.pam, prompt, true)
    }

    fn info(&mut self, text: &str) {
        if !self.silent {
            conv::show(self.pam, text, false);
        }
    }

    fn error(&mut self, text: &str) {
        if !self.silent {
            conv::show(self.pam, text, true);
        }
    }

    fn previous_token(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        match self.pam.get_cached_authtok() {
            Ok(Some(token)) => Some(Zeroizing::new(token.to_bytes().to_vec())),
            _ => None,
        }
    }

    fn set_token(&mut self, token: &[u8]) -> Result<(), String> {
        let token = std::ffi::CString::new(token)
            .map_err(|_| "password contains a NUL byte".to_string())?;
        let result = self.pam.set_authtok(&token);
        // libpam keeps its own copy; wipe ours.
        drop(Zeroizing::new(token.into_bytes_with_nul()));
        result.map_err(|e| format!("pam_set_item(PAM_AUTHTOK) failed: {e}"))
    }

    fn now(&mut self) -> u64 {
        totp_core::time::now_unix()
    }

    fn keep_code(&mut self, code: &[u8]) -> Result<(), String> {
        self.set_kept(Kept::Code(Zeroizing::new(code.to_vec())))
            .map_err(|e| format!("pam_set_data failed: {e}"))
    }

    fn take_kept_code(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        let Kept::Code(code) = self.kept_state()? else {
            return None;
        };
        // Replace it with `Taken`: libpam frees the old box, whose
        // Zeroizing buffer wipes the code. Should that fail, the code stays
        // kept, and setcred and acct_mgmt fail: closed either way.
        let _ = self.set_kept(Kept::Taken);
        Some(code)
    }

    fn refuse_forward(&mut self) {
        // Should this fail, the later line asks and checks the code itself.
        let _ = self.set_kept(Kept::Refused);
    }

    fn forward_refused(&mut self) -> bool {
        matches!(self.kept_state(), Some(Kept::Refused))
    }

    fn run_helper(
        &mut self,
        path: &std::path::Path,
        args: &[&str],
        answer: &[u8],
    ) -> Result<totp_core::helper::HelperRun, totp_core::helper::HelperError> {
        helper::run(path, args, answer)
    }
}

impl Handle<'_> {
    fn kept_state(&self) -> Option<Kept> {
        // SAFETY: the data under KEPT_CODE is only ever set by `set_kept`,
        // as a `KeptCode`, the type `retrieve_data` requires.
        let kept: KeptCode = unsafe { self.pam.retrieve_data(KEPT_CODE) }.ok()?;
        Some(kept.0)
    }

    fn set_kept(&self, kept: Kept) -> Result<(), PamError> {
        // SAFETY: pamsm stores a boxed `KeptCode` under our own key; the only
        // reader, `kept_state`, reads it back as `KeptCode`.
        unsafe { self.pam.send_data(KEPT_CODE, KeptCode(kept)) }
    }

    /// The login succeeded: if a pam_totp line took a kept code in it,
    /// that code was accepted.
    fn accept_kept_code(&self) {
        if matches!(self.kept_state(), Some(Kept::Taken)) {
            let _ = self.set_kept(Kept::Accepted);
        }
    }
}

/// The PAM data key under which a `forward_pass` line keeps the code.
const KEPT_CODE: &str = "pam_totp.kept_code";

/// Where a code kept between two pam_totp lines is: kept (wiped when libpam
/// drops it: replaced, or at pam_end), taken by a checking line, or
/// accepted by it. setcred and acct_mgmt fail on anything but accepted.
#[derive(Clone)]
enum Kept {
    Code(Zeroizing<Vec<u8>>),
    Taken,
    Accepted,
    /// The forward_pass line refused the login: its stack checks no code.
    Refused,
}

#[derive(Clone)]
struct KeptCode(Kept);

impl PamData for KeptCode {}
