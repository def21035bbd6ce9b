//! Audit lines for root's actions on other users' login: syslog, facility
//! authpriv, ident `totpctl`. A missing syslog socket does not fail the
//! command; it is reported on stderr instead.

use syslog::{Facility, Formatter3164};

/// Send one notice line, `action=... user=... by=uid:N`, and return a warning
/// to show if it could not be delivered. Never pass a code or a secret here.
pub fn audit(action: &str, user: &str, detail: &str) -> Result<(), String> {
    audit_result(action, user, "done", detail)
}

/// [`audit`] with another result than `done` (`refused`).
pub fn audit_result(action: &str, user: &str, result: &str, detail: &str) -> Result<(), String> {
    let line = format!(
        "action={action} user={user} by=uid:{} result={result}{}{detail}",
        nix::unistd::getuid(),
        if detail.is_empty() { "" } else { " " }
    );
    let formatter = Formatter3164 {
        facility: Facility::LOG_AUTHPRIV,
        hostname: None,
        process: "totpctl".into(),
        pid: std::process::id(),
    };
    let mut logger = syslog::unix(formatter).map_err(|e| e.to_string())?;
    logger.notice(&line).map_err(|e| e.to_string())
}

/// [`audit`], printing a warning on failure.
pub fn audit_or_warn(action: &str, user: &str, detail: &str) {
    if let Err(e) = audit(action, user, detail) {
        eprintln!(
            "totpctl: warning: the {action} was done, but its audit line could not be sent to \
             syslog ({e}). Record it by other means."
        );
    }
}

/// Send one outcome line of another program of ours (the helper
/// `totp-verify`) at the level the login flow chose for it.
pub fn log_line(ident: &str, level: totp_core::login::Level, line: &str) -> Result<(), String> {
    use totp_core::login::Level;
    let formatter = Formatter3164 {
        facility: Facility::LOG_AUTHPRIV,
        hostname: None,
        process: ident.into(),
        pid: std::process::id(),
    };
    let mut logger = syslog::unix(formatter).map_err(|e| e.to_string())?;
    match level {
        Level::Silent => Ok(()),
        Level::Info => logger.info(line),
        Level::Notice => logger.notice(line),
        Level::Error => logger.err(line),
    }
    .map_err(|e| e.to_string())
}
