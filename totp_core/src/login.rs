//! What happens at login, top to bottom.
//!
//! `pam_totp.so` implements [`PamIo`] over the real PAM handle and calls
//! [`authenticate`]; the function returns the PAM result together with the one
//! log line that explains it. Nothing here prints a code or a secret.

use crate::answer::{self, Answer};
use crate::args::{FirstPass, ModuleArgs, DEFAULT_PROMPT, FORWARD_PASS_PROMPT};
use crate::config::{Config, Throttle, DEFAULT_CONFIG_PATH};
use crate::fsio::FileError;
use crate::names::{printable, UserName};
use crate::otp::{self, Generator, Verdict};
use crate::policy::{self, GroupDecision, Unenrolled, UnenrolledDecision};
use crate::record::Status;
use crate::state::LoginState;
use crate::store::{Store, StoreError, UserLock};
use crate::{enrollment, recovery, throttle, time};
use nix::unistd::User;
use std::path::Path;
use std::time::Duration;
use zeroize::Zeroizing;

/// What the login flow needs from PAM.
pub trait PamIo {
    /// The user being authenticated, as raw bytes.
    fn user(&mut self) -> Result<Vec<u8>, String>;
    fn service(&self) -> Option<String>;
    fn rhost(&self) -> Option<String>;
    /// Ask a question with echo off. The reply is wiped on drop.
    fn prompt_hidden(&mut self, prompt: &str) -> Result<Zeroizing<Vec<u8>>, String>;
    /// Show a message (PAM_TEXT_INFO).
    fn info(&mut self, text: &str);
    /// Show an error message (PAM_ERROR_MSG).
    fn error(&mut self, text: &str);
    /// The token an earlier module left in PAM_AUTHTOK.
    fn previous_token(&mut self) -> Option<Zeroizing<Vec<u8>>>;
    /// Set PAM_AUTHTOK for the modules that follow.
    fn set_token(&mut self, token: &[u8]) -> Result<(), String>;
    /// Wait before answering a failure.
    fn delay(&mut self, duration: Duration);
}

/// The PAM result of an authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PamCode {
    Success,
    AuthErr,
    Ignore,
    ServiceErr,
}

/// syslog priority of the outcome line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Notice,
    Error,
}

/// The result and the one log line that says why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub code: PamCode,
    pub level: Level,
    pub line: String,
    /// Extra lines written only with the `debug` argument.
    pub debug: Vec<String>,
}

/// Builds the outcome line: `user=.. service=.. rhost=.. result=.. reason=".."`.
struct Log {
    user: String,
    service: String,
    rhost: String,
    note: Option<String>,
    debug: Vec<String>,
}

impl Log {
    fn finish(self, code: PamCode, level: Level, result: &str, reason: &str) -> Outcome {
        let mut line = format!(
            "user={} service={} rhost={} result={result} reason=\"{}\"",
            self.user,
            self.service,
            self.rhost,
            quoted(reason)
        );
        if let Some(note) = self.note {
            line.push_str(&format!(" note=\"{}\"", quoted(&note)));
        }
        Outcome {
            code,
            level,
            line,
            debug: self.debug,
        }
    }
    fn success(self, reason: &str) -> Outcome {
        self.finish(PamCode::Success, Level::Info, "success", reason)
    }
    fn denied(self, reason: &str) -> Outcome {
        self.finish(PamCode::AuthErr, Level::Notice, "denied", reason)
    }
    fn ignored(self, reason: &str) -> Outcome {
        self.finish(PamCode::Ignore, Level::Info, "ignored", reason)
    }
    /// A problem with the module's own setup or files: deny, loudly.
    fn broken(self, code: PamCode, reason: &str) -> Outcome {
        self.finish(code, Level::Error, "error", reason)
    }
}

/// Text for inside the quotes of the log line: `"` becomes `'`, and control
/// characters (which reasons can carry from config values, paths or TOML
/// errors quoting a file) become `\u{..}` escapes, so the outcome is always
/// one line.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push('\''),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

const MISCONFIGURED: &str =
    "Two-factor login is not working for this account. Please contact an administrator.";

/// Authenticate one login. `now` is Unix seconds.
pub fn authenticate<S: AsRef<str>>(io: &mut dyn PamIo, args: &[S], now: u64) -> Outcome {
    let mut log = Log {
        user: "-".into(),
        service: io
            .service()
            .map_or_else(|| "-".into(), |s| printable(s.as_bytes())),
        rhost: io
            .rhost()
            .filter(|r| !r.is_empty())
            .map_or_else(|| "-".into(), |r| printable(r.as_bytes())),
        note: None,
        debug: Vec::new(),
    };

    // 1. Module arguments, then the config file they may point to.
    let args = match ModuleArgs::parse(args) {
        Ok(args) => args,
        Err(e) => {
            io.error(MISCONFIGURED);
            return log.broken(PamCode::ServiceErr, &e);
        }
    };
    let config_path = args
        .config
        .as_deref()
        .unwrap_or(Path::new(DEFAULT_CONFIG_PATH));
    let mut config = match Config::load(config_path, args.config.is_some()) {
        Ok(config) => config,
        Err(e) => {
            io.error(MISCONFIGURED);
            return log.broken(PamCode::ServiceErr, &e.to_string());
        }
    };
    if args.nullok {
        config.policy.unenrolled = Unenrolled::Allow;
    }
    if args.debug {
        log.debug.push(format!("arguments: {args:?}"));
        log.debug.push(format!(
            "effective config from {}: {config:?}",
            config_path.display()
        ));
    }

    // 2. The user, checked before it becomes a file name, and resolved.
    let raw_user = match io.user() {
        Ok(user) => user,
        Err(e) => {
            return log.broken(
                PamCode::ServiceErr,
                &format!("cannot get the user name: {e}"),
            )
        }
    };
    log.user = printable(&raw_user);
    let user = match UserName::parse(&raw_user) {
        Ok(user) => user,
        Err(e) => return log.denied(&format!("invalid user name: {e}")),
    };
    let account = match User::from_name(user.as_str()) {
        Ok(Some(account)) => account,
        Ok(None) => return log.denied("unknown user"),
        Err(e) => return log.broken(PamCode::AuthErr, &format!("user lookup failed: {e}")),
    };

    // 3. Group policy.
    match policy::groups(&config.policy, &account) {
        Ok(GroupDecision::Ask) => {}
        Ok(GroupDecision::Exempt { group }) => {
            return log.ignored(&format!("member of exempt group {group}"));
        }
        Ok(GroupDecision::NotRequired) => return log.ignored("not in any required group"),
        Err(e) => {
            io.error(MISCONFIGURED);
            return log.broken(PamCode::ServiceErr, &e);
        }
    }

    // 4. The user's record, opened safely. Missing or pending means unenrolled.
    let store = Store::new(&config.paths);
    let record = match store.load_record(&user) {
        Ok(Some(record)) if record.status == Status::Active => record,
        Ok(Some(_)) => {
            return unenrolled(
                io,
                log,
                config.policy.unenrolled,
                now,
                "enrollment pending activation",
            )
        }
        Ok(None) => return unenrolled(io, log, config.policy.unenrolled, now, "not enrolled"),
        Err(StoreError::Record(path, FileError::PermissionDenied)) => {
            io.error(MISCONFIGURED);
            return log.denied(&format!(
                "cannot read user record {}: the module runs as uid {} without the privilege to read it (a screen locker?)",
                path.display(),
                nix::unistd::geteuid()
            ));
        }
        Err(e) => {
            io.error(MISCONFIGURED);
            return log.broken(PamCode::AuthErr, &e.to_string());
        }
    };

    // 5. Lock the user's state for the rest of the login.
    let lock = match store.lock(&user) {
        Ok(lock) => lock,
        Err(e) => {
            io.error(MISCONFIGURED);
            return log.broken(PamCode::AuthErr, &e.to_string());
        }
    };
    let read = lock.read_state();
    log.note = read.problem;
    let mut state = read.state;
    throttle::expire_lock(&mut state, now);
    if let Some(until) = state.locked_at(now) {
        io.error(&format!(
            "Too many failed attempts. Try again after {} (in {} min).",
            time::format_utc(until),
            (until - now).div_ceil(60)
        ));
        return log.denied(&format!("locked out until {}", time::format_utc(until)));
    }
    let rhost = io.rhost().filter(|r| !r.is_empty());
    if let (Some(grace), Some(host)) = (args.grace_period, rhost.as_deref()) {
        let recent = state
            .last_success_at
            .is_some_and(|at| at <= now && now - at <= grace);
        if recent && state.last_success_rhost.as_deref() == Some(host) {
            return log.success(&format!(
                "grace period: same host succeeded within {grace}s"
            ));
        }
    }

    // 6. Get the answer: from the previous module, split off the password, or asked.
    let raw = match obtain_answer(io, &args, record.params.digits) {
        Ok(raw) => raw,
        Err(reason) => return log.denied(&reason),
    };
    let answer = match answer::classify(&raw, record.params.digits, !record.recovery.is_empty()) {
        Ok(answer) => answer,
        Err(malformed) => return log.denied(malformed.reason()),
    };
    drop(raw);

    // 7. Verify, then record the result under the lock.
    let held = Held {
        lock,
        state,
        now,
        log,
    };
    match answer {
        Answer::Code(code) => {
            let generator = Generator::new(&record.secret, record.params);
            match otp::verify(
                &generator,
                &code,
                now,
                config.otp.window,
                held.state.last_step,
            ) {
                Verdict::Accepted { step } => {
                    held.succeed(rhost.as_deref(), "code accepted", |s| {
                        s.last_step = Some(step);
                    })
                }
                Verdict::Replayed { .. } => {
                    held.fail(io, &config.throttle, "replayed code (already used)")
                }
                Verdict::Wrong => held.fail(io, &config.throttle, "wrong code"),
            }
        }
        Answer::Recovery(typed) => match recovery::find(&typed, &record.recovery) {
            Some(id) if held.state.used_recovery.contains(&id) => held.fail(
                io,
                &config.throttle,
                &format!("recovery code {id} was already used"),
            ),
            Some(id) => {
                let left = enrollment::recovery_left(&record, &held.state).saturating_sub(1);
                io.info(&format!(
                    "Recovery code accepted. {left} left. Set up your authenticator again with 'totpctl enroll', or ask an administrator."
                ));
                let reason = format!("recovery code {id} used, {left} left");
                held.succeed(rhost.as_deref(), &reason, |s| s.used_recovery.push(id))
            }
            None => held.fail(io, &config.throttle, "wrong recovery code"),
        },
    }
}

/// The answer as raw bytes, wiped on drop; or why there is none.
fn obtain_answer(
    io: &mut dyn PamIo,
    args: &ModuleArgs,
    digits: u8,
) -> Result<Zeroizing<Vec<u8>>, String> {
    if args.forward_pass {
        let prompt = args.prompt.as_deref().unwrap_or(FORWARD_PASS_PROMPT);
        let combined = io
            .prompt_hidden(prompt)
            .map_err(|e| format!("conversation failed: {e}"))?;
        let trimmed = combined.trim_ascii_end();
        // The code is the last `digits` characters; everything before it is the
        // password (which may itself end in digits).
        let split = trimmed.len().saturating_sub(usize::from(digits));
        io.set_token(&trimmed[..split])
            .map_err(|e| format!("cannot pass the password on: {e}"))?;
        return Ok(Zeroizing::new(trimmed[split..].to_vec()));
    }
    if args.first_pass != FirstPass::Prompt {
        if let Some(token) = io.previous_token() {
            // use_first_pass takes whatever is there (and classify refuses a
            // non-code); try_first_pass takes it only if it is shaped like a code.
            let usable = args.first_pass == FirstPass::Use
                || answer::classify(&token, digits, false).is_ok();
            if usable && !token.is_empty() {
                return Ok(token);
            }
        }
        if args.first_pass == FirstPass::Use {
            return Err("use_first_pass: no token from an earlier module".into());
        }
    }
    let prompt = args.prompt.as_deref().unwrap_or(DEFAULT_PROMPT);
    io.prompt_hidden(prompt)
        .map_err(|e| format!("conversation failed: {e}"))
}

fn unenrolled(io: &mut dyn PamIo, log: Log, policy: Unenrolled, now: u64, why: &str) -> Outcome {
    match policy::unenrolled(policy, now) {
        UnenrolledDecision::Allow => log.ignored(&format!("{why}; policy allows")),
        UnenrolledDecision::AllowUntil { deadline } => {
            io.info(&format!(
                "Two-factor login is not set up for this account. It becomes mandatory after {deadline} (UTC). Set it up now with: totpctl enroll"
            ));
            log.ignored(&format!("{why}; allowed until {deadline}"))
        }
        UnenrolledDecision::Deny => {
            io.error("Two-factor login is required for this account but is not set up. Please contact an administrator.");
            log.denied(&format!("{why}; policy denies"))
        }
        UnenrolledDecision::DenyExpired { deadline } => {
            io.error(&format!(
                "Two-factor login has been mandatory since {deadline}, and this account has not set it up. Please contact an administrator."
            ));
            log.denied(&format!("{why}; deadline {deadline} has passed"))
        }
    }
}

/// The user's lock and the state read under it, held until the outcome is
/// written: the only way to finish a verified attempt.
struct Held<'a> {
    lock: UserLock<'a>,
    state: LoginState,
    now: u64,
    log: Log,
}

impl Held<'_> {
    /// Apply `update`, clear the failures and save. The state must be on disk
    /// before success is returned; otherwise the same code could be accepted twice.
    fn succeed(
        mut self,
        rhost: Option<&str>,
        reason: &str,
        update: impl FnOnce(&mut LoginState),
    ) -> Outcome {
        update(&mut self.state);
        throttle::record_success(&mut self.state, self.now, rhost);
        match self.lock.write_state(&self.state) {
            Ok(()) => self.log.success(reason),
            Err(e) => self
                .log
                .broken(PamCode::AuthErr, &format!("{reason}, but refused: {e}")),
        }
    }

    /// Count the failure (maybe locking the account), save, and wait while still
    /// holding the lock, so parallel guesses queue up behind it.
    fn fail(mut self, io: &mut dyn PamIo, throttle_cfg: &Throttle, reason: &str) -> Outcome {
        let delay = throttle::record_failure(&mut self.state, throttle_cfg, self.now);
        let mut reason = format!(
            "{reason} ({} of {} failures)",
            self.state.failures, throttle_cfg.max_failures
        );
        if let Some(until) = self.state.locked_at(self.now) {
            reason.push_str(&format!("; locked out until {}", time::format_utc(until)));
        }
        if let Err(e) = self.lock.write_state(&self.state) {
            self.log.note = Some(format!("failure not recorded: {e}"));
        }
        io.delay(delay);
        self.log.denied(&reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_is_one_printable_line() {
        let log = Log {
            user: "root".into(),
            service: "sshd".into(),
            rhost: "-".into(),
            note: Some("state \"x\"\r\nforged".into()),
            debug: Vec::new(),
        };
        let outcome = log.broken(PamCode::AuthErr, "unknown variant `\tSHA1\nresult=success`");
        assert_eq!(
            outcome.line,
            "user=root service=sshd rhost=- result=error reason=\"unknown variant \
             `\\u{9}SHA1\\u{a}result=success`\" note=\"state 'x'\\u{d}\\u{a}forged\""
        );
    }
}
