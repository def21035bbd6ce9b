//! The PAM glue around [`totp_core::login`], shared by `pam_totp.so` and
//! `pam_totp_ldap.so` (which compiles this same file).
//!
//! It only adapts PAM to the login flow: it reads the handle's items,
//! runs the conversation, writes the one outcome line to syslog (authpriv,
//! through pam_syslog), and maps the outcome to a PAM return code. Every entry
//! point catches panics, so none can unwind into the calling C program.

use crate::{conv, helper};
use pamsm::{LogLvl, Pam, PamData, PamError, PamFlags, PamLibExt, PamServiceModule};
use std::panic::{catch_unwind, AssertUnwindSafe};
use totp_core::login::{self, Level, Outcome, PamCode, PamIo};
use zeroize::Zeroizing;

pub(crate) struct PamTotp;

impl PamServiceModule for PamTotp {
    fn authenticate(pamh: Pam, flags: PamFlags, args: Vec<String>) -> PamError {
        let result = catch_unwind(AssertUnwindSafe(|| {
            crate::setup();
            let mut io = Handle {
                pam: &pamh,
                silent: flags.contains(PamFlags::SILENT),
            };
            let outcome = login::authenticate(&mut io, &args);
            if outcome.code == PamCode::Delegate {
                return None;
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
            Ok(None) => crate::delegate(pamh, flags, &args),
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

    /// Nothing to set: succeed, so `auth` stacks that call setcred keep working.
    fn setcred(_: Pam, _: PamFlags, _: Vec<String>) -> PamError {
        PamError::SUCCESS
    }

    fn acct_mgmt(_: Pam, _: PamFlags, _: Vec<String>) -> PamError {
        PamError::IGNORE
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
        let kept = KeptCode(Zeroizing::new(code.to_vec()));
        // SAFETY: pamsm stores a boxed `KeptCode` under our own key; the only
        // reader, `take_kept_code`, reads it back as `KeptCode`, the type
        // `retrieve_data` requires.
        unsafe { self.pam.send_data(KEPT_CODE, kept) }
            .map_err(|e| format!("pam_set_data failed: {e}"))
    }

    fn take_kept_code(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        // SAFETY: the data under KEPT_CODE is only ever set by `keep_code`,
        // as a `KeptCode`.
        let kept: KeptCode = unsafe { self.pam.retrieve_data(KEPT_CODE) }.ok()?;
        // Replace it with an empty one: libpam frees the old box, whose
        // Zeroizing buffer wipes the code.
        // SAFETY: as in `keep_code`.
        let _ = unsafe {
            self.pam
                .send_data(KEPT_CODE, KeptCode(Zeroizing::new(Vec::new())))
        };
        (!kept.0.is_empty()).then(|| kept.0.clone())
    }

    fn run_helper(
        &mut self,
        path: &std::path::Path,
        answer: &[u8],
    ) -> Result<totp_core::helper::HelperRun, totp_core::helper::HelperError> {
        helper::run(path, answer)
    }
}

/// The PAM data key under which a `forward_pass` line keeps the code.
const KEPT_CODE: &str = "pam_totp.kept_code";

/// A code kept between two pam_totp lines; wiped when libpam drops it
/// (replaced, or at pam_end).
#[derive(Clone)]
struct KeptCode(Zeroizing<Vec<u8>>);

impl PamData for KeptCode {}
