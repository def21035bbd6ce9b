//! What happens at login, top to bottom.
//!
//! `pam_totp.so` implements [`PamIo`] over the real PAM handle and calls
//! [`authenticate`]; the function returns the PAM result together with the one
//! log line that explains it. Nothing here prints a code or a secret.

use crate::answer;
use crate::args::{FirstPass, ModuleArgs, DEFAULT_PROMPT, FORWARD_PASS_PROMPT};
use crate::attempt::{self, Accepted, Refusal, Rules};
use crate::config::{Backend, Config, Throttle, DEFAULT_CONFIG_PATH};
use crate::fsio::FileError;
use crate::helper::{HelperError, HelperExit, HelperRun, HELPER_PATH};
use crate::names::{printable, UserName};
use crate::pamstack;
use crate::policy::{self, GroupDecision, Unenrolled, UnenrolledDecision, Unprivileged};
use crate::record::Status;
use crate::state::LoginState;
use crate::store::{Store, StoreError};
use crate::throttle;
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
    /// The time now, in Unix seconds. Asked again after the prompt, since a
    /// person may take a while to answer.
    fn now(&mut self) -> u64;
    /// Ask a question with echo off. The reply is wiped on drop.
    fn prompt_hidden(&mut self, prompt: &str) -> Result<Zeroizing<Vec<u8>>, String>;
    /// Ask a question with echo on (`echo_verification_code`). A caller
    /// without one asks with echo off, which shows less, never more.
    fn prompt_visible(&mut self, prompt: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        self.prompt_hidden(prompt)
    }
    /// Show a message (PAM_TEXT_INFO).
    fn info(&mut self, text: &str);
    /// Show an error message (PAM_ERROR_MSG).
    fn error(&mut self, text: &str);
    /// The token an earlier module left in PAM_AUTHTOK.
    fn previous_token(&mut self) -> Option<Zeroizing<Vec<u8>>>;
    /// Set PAM_AUTHTOK for the modules that follow.
    fn set_token(&mut self, token: &[u8]) -> Result<(), String>;
    /// Keep a code for a later pam_totp line of the same PAM transaction
    /// (`forward_pass`); wiped when taken or when the transaction ends.
    fn keep_code(&mut self, code: &[u8]) -> Result<(), String>;
    /// Take the code a `forward_pass` line kept, if any (it is then gone).
    fn take_kept_code(&mut self) -> Option<Zeroizing<Vec<u8>>>;
    /// Note that a `forward_pass` line refused this login (its stack checks
    /// no code), so a later pam_totp line refuses too, without asking,
    /// counting or logging a second line.
    fn refuse_forward(&mut self) {}
    /// Did a `forward_pass` line refuse this login?
    fn forward_refused(&mut self) -> bool {
        false
    }
    /// Run the setuid helper at `path` with `args` (only
    /// [`crate::helper::NO_SKEW_LEARNING`]) and `answer` on its standard
    /// input (never in its arguments or environment), and wait for that
    /// child only. A caller that cannot run programs keeps the default: no
    /// helper, which denies.
    fn run_helper(
        &mut self,
        path: &Path,
        args: &[&str],
        answer: &[u8],
    ) -> Result<HelperRun, HelperError> {
        let _ = (path, args, answer);
        Err(HelperError::Failed(
            "this caller cannot run programs".into(),
        ))
    }
}

/// The PAM result of an authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PamCode {
    Success,
    AuthErr,
    Ignore,
    ServiceErr,
    /// The config wants the LDAP store and this module has no LDAP client:
    /// nothing was asked or logged; the caller hands the whole call to
    /// `pam_totp_ldap.so`, which has one (so the files-only module stays
    /// small and quick to load).
    Delegate,
}

/// syslog priority of the outcome line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Not logged (unless `debug`): a `forward_pass` line, which decides nothing.
    Silent,
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
    /// How long to wait before returning a refusal: written to the log first,
    /// slept after, and never while holding a lock.
    pub delay: Duration,
}

/// Builds the outcome line: `user=.. service=.. rhost=.. result=.. reason=".."`.
pub(crate) struct Log {
    user: String,
    /// The spelling the client used, when the password database gave another.
    spelled: Option<String>,
    service: String,
    rhost: String,
    note: Option<String>,
    debug: Vec<String>,
}

impl Log {
    /// The line for `user`, as the helper writes it: no rhost, the helper's
    /// own name as the service.
    pub(crate) fn for_user(user: &UserName, service: &str) -> Self {
        Self {
            user: user.to_string(),
            spelled: None,
            service: service.into(),
            rhost: "-".into(),
            note: None,
            debug: Vec::new(),
        }
    }

    fn finish(self, code: PamCode, level: Level, result: &str, reason: &str) -> Outcome {
        let spelled = self.spelled.map(|s| format!(" as={s}")).unwrap_or_default();
        let mut line = format!(
            "user={}{spelled} service={} rhost={} result={result} reason=\"{}\"",
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
            delay: Duration::ZERO,
        }
    }
    pub(crate) fn success(self, reason: &str) -> Outcome {
        self.finish(PamCode::Success, Level::Info, "success", reason)
    }
    pub(crate) fn denied(self, reason: &str) -> Outcome {
        self.finish(PamCode::AuthErr, Level::Notice, "denied", reason)
    }
    fn ignored(self, reason: &str) -> Outcome {
        self.finish(PamCode::Ignore, Level::Info, "ignored", reason)
    }
    /// A problem with the module's own setup or files: deny, loudly.
    pub(crate) fn broken(self, code: PamCode, reason: &str) -> Outcome {
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

/// What to do about a forward_pass line whose code nobody checks.
pub const FORWARD_PASS_FIX: &str = "Fix: use the three-line stack of pam_totp(8): 'auth required pam_totp.so forward_pass', 'auth requisite pam_unix.so use_first_pass', 'auth required pam_totp.so'";

const MISCONFIGURED: &str =
    "Two-factor login is not working for this account. Please contact an administrator.";

impl Log {
    /// The line for this PAM handle's service and remote host; the user is
    /// filled in once known.
    fn start(io: &dyn PamIo) -> Self {
        Self {
            user: "-".into(),
            spelled: None,
            service: io
                .service()
                .map_or_else(|| "-".into(), |s| printable(s.as_bytes())),
            rhost: io
                .rhost()
                .filter(|r| !r.is_empty())
                .map_or_else(|| "-".into(), |r| printable(r.as_bytes())),
            note: None,
            debug: Vec::new(),
        }
    }
}

/// The outcome line for a login this module never got to decide: `why` it
/// was denied, with user, service and rhost as every outcome line has them
/// (the LDAP module is missing, ...).
pub fn denied_outside(io: &mut dyn PamIo, why: &str) -> Outcome {
    let mut log = Log::start(io);
    if let Ok(user) = io.user() {
        log.user = printable(&user);
    }
    log.broken(PamCode::AuthErr, why)
}

/// What became of the code a `forward_pass` line kept, when the login is
/// about to go on (pam_setcred, pam_acct_mgmt).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeptCode {
    /// No later pam_totp line took it: it was never checked.
    Unchecked,
    /// A pam_totp line took it and refused the login, yet the stack went on.
    Refused,
}

/// Where a kept code nobody accepted is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// pam_acct_mgmt of an `account` line: its failure denies the login.
    Account,
    /// pam_setcred of the `auth` line: libpam weighs its result by what the
    /// line returned at pam_authenticate, and a forward_pass line returned
    /// PAM_IGNORE, so with `required` this failure is ignored.
    Credentials,
}

/// A kept code nobody accepted, found at `stage`: the login must not go on.
/// One line, naming the fix.
pub fn kept_code_left(io: &mut dyn PamIo, stage: Stage, kept: KeptCode) -> Outcome {
    let what = match kept {
        KeptCode::Unchecked => "the code a forward_pass line kept was never checked",
        KeptCode::Refused => {
            "pam_totp refused the code a forward_pass line kept, yet the auth stack succeeded"
        }
    };
    let effect = match stage {
        Stage::Account => "pam_acct_mgmt: {what}; login denied",
        Stage::Credentials => {
            "pam_setcred: {what}; credentials refused (libpam ignores this for a line whose \
             pam_authenticate returned PAM_IGNORE: an 'account required pam_totp.so' line \
             denies the login)"
        }
    }
    .replace("{what}", what);
    denied_outside(io, &format!("{effect}. {FORWARD_PASS_FIX}"))
}

/// Authenticate one login.
pub fn authenticate<S: AsRef<str>>(io: &mut dyn PamIo, args: &[S]) -> Outcome {
    let outcome = decide(io, args);
    // A code that a forward_pass line kept is never ignored: that line found
    // the user enrolled, so a checking line that would skip the code (its
    // config does not know the user, or exempts them) must deny instead,
    // or the password alone would log in. The forward_pass line's own
    // outcome is the silent one, and its kept code stays for the next line.
    if outcome.code == PamCode::Ignore && outcome.level != Level::Silent {
        if let Some(_kept) = io.take_kept_code() {
            return denied_outside(
                io,
                &format!(
                    "a forward_pass line kept a code for this user, but this line would skip it \
                     ({}): login denied. Give both pam_totp lines the same config",
                    outcome.line
                ),
            );
        }
    }
    outcome
}

fn decide<S: AsRef<str>>(io: &mut dyn PamIo, args: &[S]) -> Outcome {
    let mut log = Log::start(io);

    // 1. Module arguments, then the config file they may point to.
    let args = match ModuleArgs::parse(args) {
        Ok(args) => args,
        Err(e) => {
            io.error(MISCONFIGURED);
            return log.broken(PamCode::ServiceErr, &e);
        }
    };
    // A forward_pass line of this stack refused the login and said why:
    // refuse too, without asking, counting, or a second line.
    if !args.forward_pass && io.forward_refused() {
        return Outcome {
            code: PamCode::AuthErr,
            level: Level::Silent,
            line: String::new(),
            debug: Vec::new(),
            delay: Duration::ZERO,
        };
    }
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
    if config.store.backend == Backend::Ldap && !crate::store::has_ldap() {
        return Outcome {
            code: PamCode::Delegate,
            level: Level::Silent,
            line: String::new(),
            debug: Vec::new(),
            delay: Duration::ZERO,
        };
    }
    if args.nullok {
        config.policy.unenrolled = Unenrolled::Allow;
    }
    if args.no_skew_learning {
        config.otp.resync_window = 0;
    }
    if args.debug {
        log.debug.push(format!("arguments: {args:?}"));
        log.debug.push(format!(
            "effective config from {}: {config:?}",
            config_path.display()
        ));
    }

    // 2. The user, checked before it becomes a file name, and resolved to
    //    the account's canonical name, which keys the record, state and lock.
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
    let resolved = UserName::parse(&raw_user)
        .map_err(|e| format!("invalid user name: {e}"))
        .and_then(|typed| match User::from_name(typed.as_str()) {
            Ok(Some(account)) => Ok(account),
            Ok(None) => Err("unknown user".into()),
            Err(e) => Err(format!("user lookup failed: {e}")),
        })
        .and_then(|account| {
            UserName::parse(account.name.as_bytes())
                .map(|user| (user, account))
                .map_err(|e| format!("invalid account name from the password database: {e}"))
        });
    if let Ok((user, _)) = &resolved {
        if user.as_str().as_bytes() != raw_user.as_slice() {
            log.spelled = Some(log.user.clone());
            log.user = user.to_string();
        }
    }

    // A forward_pass line only splits the answer, before any password check:
    // it counts nothing, uses nothing up and reveals nothing. It keeps a code
    // only for a later pam_totp line, so first make sure that line exists
    // and will run: otherwise the password alone would log in.
    if args.forward_pass {
        let service = io.service().unwrap_or_default();
        if let Err(why) = pamstack::check_forward_pass(&config.paths.pam_dir, &service) {
            io.error(MISCONFIGURED);
            io.refuse_forward();
            return log.broken(
                PamCode::AuthErr,
                &format!("forward_pass: {why}, so the code would never be checked; login denied. {FORWARD_PASS_FIX}"),
            );
        }
        let store = Store::from_config(&config);
        let digits = resolved.as_ref().ok().and_then(|(user, account)| {
            let store = store.as_ref().ok()?;
            match policy::groups(&config.policy, account) {
                Ok(GroupDecision::Ask) => match store.load_record(user) {
                    Ok(Some(record)) if record.status == Status::Active => {
                        Some(record.params.digits)
                    }
                    _ => None,
                },
                _ => None,
            }
        });
        return forward_pass(io, log, &args, digits);
    }
    let (user, account) = match resolved {
        Ok(found) => found,
        Err(reason) if reason.starts_with("user lookup failed") => {
            return log.broken(PamCode::AuthErr, &reason)
        }
        Err(reason) => return log.denied(&reason),
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
    let store = match Store::from_config(&config) {
        Ok(store) => store,
        Err(e) => {
            io.error(MISCONFIGURED);
            return log.broken(PamCode::ServiceErr, &e.to_string());
        }
    };
    let record = match store.load_record(&user) {
        Ok(Some(record)) if record.status == Status::Active => record,
        Ok(Some(_)) => {
            let now = io.now();
            return unenrolled(
                io,
                log,
                config.policy.unenrolled,
                now,
                "enrollment pending activation",
            );
        }
        Ok(None) => {
            let now = io.now();
            return unenrolled(io, log, config.policy.unenrolled, now, "not enrolled");
        }
        Err(e) if !nix::unistd::geteuid().is_root() && lacks_privilege(&e).is_some() => {
            let what = lacks_privilege(&e).unwrap_or_default();
            let why = format!(
                "cannot read {what}: the module runs as uid {} without the privilege to read it (a screen locker?)",
                nix::unistd::geteuid()
            );
            return unprivileged(io, log, &args, &config, &account, &why);
        }
        Err(e) => {
            io.error(MISCONFIGURED);
            return log.broken(PamCode::AuthErr, &e.to_string());
        }
    };

    // 5. A look at the state, without the lock: no point asking a locked-out
    //    user, and the grace period needs the last success.
    let now = io.now();
    let state = match store.peek_state(&user) {
        Ok(read) => {
            log.note = read.problem;
            read.state
        }
        Err(e) => {
            io.error(MISCONFIGURED);
            return log.broken(PamCode::AuthErr, &e.to_string());
        }
    };
    let mut peeked = state.clone();
    throttle::expire_lock(&mut peeked, now);
    if let Some(lockout) = throttle::lockout(&peeked, &config.throttle, now) {
        io.error(&lockout.message(now));
        return log.denied(&lockout.describe());
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

    // 6. Get the answer, holding no lock: kept by a forward_pass line, from
    //    the previous module, or asked.
    let raw = match obtain_answer(io, &args, Some(record.params.digits)) {
        Ok(raw) => raw,
        Err(reason) => return log.denied(&reason),
    };
    let answer = match answer::classify(&raw, record.params.digits, !record.recovery.is_empty()) {
        Ok(answer) => answer,
        Err(malformed) => return log.denied(malformed.reason()),
    };
    drop(raw);

    // 7. Under the lock: count, compare, record. Nothing else.
    let now = io.now();
    let lock = match store.lock(&user) {
        Ok(lock) => lock,
        Err(e) => return log.broken(PamCode::AuthErr, &e.to_string()),
    };
    let rules = Rules {
        otp: &config.otp,
        throttle: &config.throttle,
    };
    let mut attempt = attempt::attempt(&lock, &record, &answer, now, &rules, rhost.as_deref());
    drop(lock);
    add_store_notes(&mut attempt, &store);

    // 8. The outcome; any delay is slept by the caller after the log line.
    let (outcome, notice) = attempt_outcome(log, attempt, &config.throttle, now);
    match notice {
        Some(Notice::Error(text)) => io.error(&text),
        Some(Notice::Info(text)) => io.info(&text),
        None => {}
    }
    outcome
}

/// Add to the attempt's note what the store noticed on the way (LDAP:
/// servers that did not answer before one did), so the one outcome line
/// says it. The module and the helper both call this.
pub(crate) fn add_store_notes(attempt: &mut attempt::Attempt, store: &Store) {
    let failover = store.take_notes();
    if !failover.is_empty() {
        let mut note: Vec<String> = attempt.note.take().into_iter().collect();
        note.push(format!(
            "servers that did not answer: {}",
            failover.join("; ")
        ));
        attempt.note = Some(note.join("; "));
    }
}

/// A message for the person at the prompt that goes with an outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Notice {
    Error(String),
    Info(String),
}

/// The outcome line of a checked attempt, with its delay, and what to show
/// the person. Shared by the module and the setuid helper, so both write the
/// same line for the same attempt.
pub(crate) fn attempt_outcome(
    mut log: Log,
    attempt: attempt::Attempt,
    throttle: &Throttle,
    now: u64,
) -> (Outcome, Option<Notice>) {
    if attempt.note.is_some() {
        log.note = attempt.note;
    }
    let mut notice = None;
    let mut outcome = match attempt.result {
        Ok(Accepted::Code { .. }) => log.success("code accepted"),
        Ok(Accepted::Counter { counter }) => {
            log.success(&format!("code accepted (HOTP counter {counter})"))
        }
        Ok(Accepted::Resynced { skew, .. }) => log.success(&format!(
            "code accepted; clock skew of {skew:+} steps learned from two consecutive codes"
        )),
        Ok(Accepted::Recovery { id, left }) => {
            notice = Some(Notice::Info(format!(
                "Recovery code accepted. {left} left. Set up your authenticator again with 'totpctl enroll', or ask an administrator."
            )));
            log.success(&format!("recovery code {id} used, {left} left"))
        }
        Err(Refusal::Locked(lockout)) => {
            notice = Some(Notice::Error(lockout.message(now)));
            log.denied(&lockout.describe())
        }
        Err(Refusal::TooSoon { wait }) => log.denied(&format!(
            "too soon after a failed attempt ({wait} s of backoff left); not compared"
        )),
        Err(Refusal::Wrong(miss)) => {
            let reason = failure_reason(&miss.describe(), &attempt.state, throttle, now);
            log.denied(&reason)
        }
        Err(Refusal::NotCounted { error: e, .. }) => log.broken(
            PamCode::AuthErr,
            &format!("the failure could not be recorded, so the answer was not compared: {e}"),
        ),
        Err(Refusal::NotChecked { error: e, .. }) => log.broken(
            PamCode::AuthErr,
            &format!("the directory could not check the code (the failure is counted): {e}"),
        ),
        Err(Refusal::NotSaved { error: e, .. }) => log.broken(
            PamCode::AuthErr,
            &format!("right answer, but refused: the success could not be saved: {e}"),
        ),
    };
    outcome.delay = attempt.delay;
    (outcome, notice)
}

/// `wrong code (3 of 10 failures)`, with the count towards the hard cap
/// once it differs (after a lockout: `3 of 10 failures; 13 of 100 before a
/// hard lock`), and the lockout the failure brought, if any.
fn failure_reason(why: &str, state: &LoginState, cfg: &Throttle, now: u64) -> String {
    let mut reason = format!("{why} ({} of {} failures", state.failures, cfg.max_failures);
    if state.failures_since_success != state.failures {
        reason.push_str(&format!(
            "; {} of {} before a hard lock",
            state.failures_since_success, cfg.hard_cap
        ));
    }
    reason.push(')');
    if let Some(lockout) = throttle::lockout(state, cfg, now) {
        reason.push_str(&format!("; {}", lockout.describe()));
    }
    reason
}

/// The first line of a `forward_pass` stack: ask for the password and the
/// code in one answer, hand the password to the modules that follow
/// (PAM_AUTHTOK) and keep the code for the pam_totp line after the password
/// check. `digits` is the enrolled user's code length; anyone else's answer
/// is all password. Everyone is asked the same question.
fn forward_pass(io: &mut dyn PamIo, log: Log, args: &ModuleArgs, digits: Option<u8>) -> Outcome {
    let prompt = args.prompt.as_deref().unwrap_or(FORWARD_PASS_PROMPT);
    let combined = match io.prompt_hidden(prompt) {
        Ok(answer) => answer,
        Err(e) => return log.denied(&format!("conversation failed: {e}")),
    };
    let trimmed = combined.trim_ascii_end();
    // The code is the last `digits` characters; everything before it is the
    // password (which may itself end in digits).
    let split = digits.map_or(trimmed.len(), |d| {
        trimmed.len().saturating_sub(usize::from(d))
    });
    if let Err(e) = io.set_token(&trimmed[..split]) {
        return log.denied(&format!("cannot pass the password on: {e}"));
    }
    if split < trimmed.len() {
        if let Err(e) = io.keep_code(&trimmed[split..]) {
            return log.denied(&format!(
                "cannot keep the code for the next pam_totp line: {e}"
            ));
        }
    }
    let mut outcome = log.ignored("forward_pass: password handed on; the code is checked after it");
    if args.debug {
        outcome.debug.push(outcome.line.clone());
    }
    outcome.level = Level::Silent;
    outcome
}

/// The answer as raw bytes, wiped on drop; or why there is none. `digits`
/// is the record's code length, `None` when only the helper can read it
/// (then a previous token of either length is taken as a code).
fn obtain_answer(
    io: &mut dyn PamIo,
    args: &ModuleArgs,
    digits: Option<u8>,
) -> Result<Zeroizing<Vec<u8>>, String> {
    if let Some(kept) = io.take_kept_code() {
        return Ok(kept);
    }
    if args.first_pass != FirstPass::Prompt {
        if let Some(token) = io.previous_token() {
            // use_first_pass takes whatever is there (and classify refuses a
            // non-code); try_first_pass takes it only if it is shaped like a code.
            let usable = args.first_pass == FirstPass::Use
                || digits
                    .as_ref()
                    .map_or(&[6, 8][..], std::slice::from_ref)
                    .iter()
                    .any(|d| answer::classify(&token, *d, false).is_ok());
            if usable && !token.is_empty() {
                return Ok(token);
            }
        }
        if args.first_pass == FirstPass::Use {
            return Err("use_first_pass: no token from an earlier module".into());
        }
    }
    let prompt = args.prompt.as_deref().unwrap_or(DEFAULT_PROMPT);
    // Only the code is ever echoed: a forward_pass prompt, which carries
    // the password, stays hidden.
    let asked = if args.echo_code {
        io.prompt_visible(prompt)
    } else {
        io.prompt_hidden(prompt)
    };
    asked.map_err(|e| format!("conversation failed: {e}"))
}

const HELPER_LOCKED: &str =
    "Too many failed attempts, or too soon after the last one. Try again later.";

/// What the store could not read for lack of privilege (a module running
/// as the user), named; `None` for any other error.
fn lacks_privilege(e: &StoreError) -> Option<String> {
    match e {
        StoreError::Record(path, FileError::PermissionDenied)
        | StoreError::Directory(path, FileError::PermissionDenied) => {
            Some(format!("user record {}", path.display()))
        }
        StoreError::Credentials(path, FileError::PermissionDenied) => {
            Some(format!("the LDAP bind password file {}", path.display()))
        }
        _ => None,
    }
}

/// The module runs as the user (a screen locker) and cannot read the
/// record: act as `policy.unprivileged` says. With `helper`, ask for the
/// code as usual and let the setuid helper check it; it checks the account
/// of the process's real uid, so only that account may be logged in here.
fn unprivileged(
    io: &mut dyn PamIo,
    log: Log,
    args: &ModuleArgs,
    config: &Config,
    account: &User,
    why: &str,
) -> Outcome {
    match config.policy.unprivileged {
        Unprivileged::Deny => {
            io.error(MISCONFIGURED);
            return log.denied(&format!("{why}; policy.unprivileged = deny"));
        }
        Unprivileged::Ignore => {
            return log.ignored(&format!("{why}; policy.unprivileged = ignore"));
        }
        Unprivileged::Helper => {}
    }
    let uid = nix::unistd::getuid();
    if account.uid != uid {
        io.error(MISCONFIGURED);
        return log.denied(&format!(
            "{why}; the helper checks only the code of the calling uid {uid}, not of this \
             user (uid {})",
            account.uid
        ));
    }
    let helper = args.helper.as_deref().unwrap_or(Path::new(HELPER_PATH));
    // Asked as usual, holding nothing; the helper classifies the answer,
    // since only it can read how many digits the record has.
    let raw = match obtain_answer(io, args, None) {
        Ok(raw) => raw,
        Err(reason) => return log.denied(&reason),
    };
    if raw.len() > answer::MAX_ANSWER {
        return log.denied(answer::Malformed::TooLong.reason());
    }
    // The line's own strictness goes along: the helper reads the config,
    // not this line's arguments.
    let helper_args: &[&str] = if args.no_skew_learning {
        &[crate::helper::NO_SKEW_LEARNING]
    } else {
        &[]
    };
    let run = io.run_helper(helper, helper_args, &raw);
    drop(raw);
    let shown = helper.display();
    match run {
        Ok(HelperRun::Exited(code)) => match HelperExit::from_code(code) {
            Some(HelperExit::Accepted) => log.success(&format!("code accepted by {shown}")),
            Some(HelperExit::Wrong) => log.denied(&format!(
                "{shown}: wrong, replayed or malformed code (its own log line says which)"
            )),
            Some(HelperExit::Refused) => {
                io.error(HELPER_LOCKED);
                log.denied(&format!(
                    "{shown}: locked out, or too soon after a failed attempt; not compared"
                ))
            }
            Some(HelperExit::NotEnrolled) => {
                let now = io.now();
                let why = format!("not enrolled (said {shown})");
                unenrolled(io, log, config.policy.unenrolled, now, &why)
            }
            Some(HelperExit::Error) => {
                io.error(MISCONFIGURED);
                log.broken(
                    PamCode::AuthErr,
                    &format!("{shown} failed (exit status 4; its own log line says why)"),
                )
            }
            None => {
                io.error(MISCONFIGURED);
                log.broken(
                    PamCode::AuthErr,
                    &format!("{shown} exited with unknown status {code}"),
                )
            }
        },
        Ok(HelperRun::Signaled(signal)) => {
            io.error(MISCONFIGURED);
            log.broken(
                PamCode::AuthErr,
                &format!("{shown} was killed by signal {signal}"),
            )
        }
        Err(HelperError::Missing) => {
            io.error(MISCONFIGURED);
            log.broken(
                PamCode::AuthErr,
                &format!(
                    "{why}, and the helper {shown} is missing: install it setuid root (mode \
                     4755), or set policy.unprivileged"
                ),
            )
        }
        Err(HelperError::Failed(e)) => {
            io.error(MISCONFIGURED);
            log.broken(
                PamCode::AuthErr,
                &format!("cannot run the helper {shown}: {e}"),
            )
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_is_one_printable_line() {
        let log = Log {
            user: "root".into(),
            spelled: None,
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
