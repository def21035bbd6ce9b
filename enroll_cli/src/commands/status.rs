//! `totpctl status [USER] [--json]`: what the record and the login state say,
//! never the secret.

use crate::cli::StatusArgs;
use crate::context::{Context, Invocation};
use crate::error::CliError;
use crate::json;
use totp_core::config::{Backend, Throttle};
use totp_core::enrollment::recovery_left;
use totp_core::names::UserName;
use totp_core::otp::OtpType;
use totp_core::record::UserRecord;
use totp_core::state::LoginState;
use totp_core::throttle::{self, Lockout};
use totp_core::time::{format_utc, now_unix};

pub fn run(inv: &Invocation, args: &StatusArgs) -> Result<(), CliError> {
    let ctx = Context::load("status", inv)?;
    let user = ctx.target("status", args.user.as_deref())?;
    ctx.require_known(&user)?;
    let report = Report::read(&ctx, &user)?;
    ctx.audit_self("status", &user, "");
    if ctx.json {
        outln!("{}", report.json());
    } else {
        out!("{}", report.text());
    }
    Ok(())
}

/// One user's enrollment as `status` and `list` show it.
pub struct Report {
    pub user: UserName,
    pub enrolled: Option<(UserRecord, LoginState)>,
    pub now: u64,
    throttle: Throttle,
    /// Where the records live, and whether this host may write them (an
    /// LDAP host without the admin bind reads them only): for the Cockpit
    /// page, which offers only what works.
    store: &'static str,
    store_writes: bool,
}

impl Report {
    /// Read the record, then the state. Reading takes no lock (the state is
    /// replaced atomically), so a stalled login or totpctl cannot hang it. A
    /// corrupt record is an error; a corrupt state reads as fresh, as at login.
    pub fn read(ctx: &Context, user: &UserName) -> Result<Self, CliError> {
        let now = now_unix();
        let enrolled = match ctx.load_record(user)? {
            None => None,
            Some(record) => {
                let read = ctx.store.peek_state(user)?;
                let mut state = read.state;
                if read.lost {
                    // As a login counts them: a lost state used them all.
                    let _ = totp_core::attempt::forget_recovery(&record, &mut state);
                }
                throttle::expire_lock(&mut state, now);
                Some((record, state))
            }
        };
        let ldap = ctx.config.store.backend == Backend::Ldap;
        Ok(Self {
            user: user.clone(),
            enrolled,
            now,
            throttle: ctx.config.throttle.clone(),
            store: if ldap { "ldap" } else { "files" },
            store_writes: !ldap || !ctx.config.ldap.admin_bind_dn.is_empty(),
        })
    }

    /// The lockout in force, if any.
    fn lockout(&self, state: &LoginState) -> Option<Lockout> {
        throttle::lockout(state, &self.throttle, self.now)
    }

    /// When the last code was used, by this server's clock: the step is the
    /// device's, which runs `skew` steps ahead of (or behind) the server.
    fn last_code_at(record: &UserRecord, state: &LoginState) -> Option<u64> {
        state.last_step.map(|step| {
            step.saturating_add_signed(state.skew.unwrap_or(0).saturating_neg())
                .saturating_mul(record.params.period)
        })
    }

    pub fn status_word(&self) -> String {
        match &self.enrolled {
            None => "not enrolled".into(),
            Some((record, _)) => record.status.to_string(),
        }
    }

    pub fn text(&self) -> String {
        let mut out = format!("user:            {}\n", self.user);
        let Some((record, state)) = &self.enrolled else {
            out.push_str("status:          not enrolled\n");
            return out;
        };
        let when = |t: Option<u64>| t.map_or_else(|| "-".to_owned(), format_utc);
        let p = record.params;
        out.push_str(&format!("status:          {}\n", record.status));
        out.push_str(&format!("type:            {}\n", record.kind));
        out.push_str(&format!("algorithm:       {}\n", p.algorithm));
        out.push_str(&format!("digits:          {}\n", p.digits));
        match record.kind {
            OtpType::Totp => out.push_str(&format!("period:          {} s\n", p.period)),
            OtpType::Hotp => out.push_str(&format!(
                "next counter:    {}\n",
                state.hotp_next.unwrap_or(0)
            )),
        }
        if let Some(serial) = &record.serial {
            out.push_str(&format!("token serial:    {serial}\n"));
        }
        out.push_str(&format!("created:         {}\n", when(record.created_at)));
        out.push_str(&format!("activated:       {}\n", when(record.activated_at)));
        if record.kind == OtpType::Totp {
            out.push_str(&format!(
                "last code used:  {}\n",
                Self::last_code_at(record, state).map_or_else(|| "never".to_owned(), format_utc)
            ));
            out.push_str(&format!(
                "clock skew:      {}\n",
                skew_text(state.skew, p.period, &self.user)
            ));
        }
        out.push_str(&format!(
            "failures:        {} ({} of {} since the last good code)\n",
            state.failures, state.failures_since_success, self.throttle.hard_cap
        ));
        out.push_str(&format!(
            "locked:          {}\n",
            match self.lockout(state) {
                None => "no".to_owned(),
                Some(Lockout::Until(t)) => format!("until {}", format_utc(t)),
                Some(Lockout::Capped { failures }) => format!(
                    "yes, after {failures} consecutive failures, until 'totpctl unlock {}'",
                    self.user
                ),
                Some(Lockout::CounterUnknown) => format!(
                    "yes, the HOTP counter is unknown, until 'totpctl unlock {} --counter N'",
                    self.user
                ),
            }
        ));
        out.push_str(&format!(
            "recovery codes:  {} of {} left\n",
            recovery_left(record, state),
            record.recovery.len()
        ));
        out
    }

    pub fn json(&self) -> String {
        self.json_object()
            .string("store", self.store)
            .boolean("store_writes", self.store_writes)
            .finish()
    }

    fn json_object(&self) -> json::Object {
        let object = json::Object::new().string("user", self.user.as_str());
        let Some((record, state)) = &self.enrolled else {
            return object.string("status", "not_enrolled");
        };
        let p = record.params;
        let object = object
            .string("status", &record.status.to_string())
            .string("type", &record.kind.to_string())
            .string("algorithm", &p.algorithm.to_string())
            .number("digits", u64::from(p.digits));
        // A TOTP enrollment has a period, a last step and a clock skew (in
        // steps, positive when the device is ahead); a HOTP one has the
        // next counter instead.
        let object = match record.kind {
            OtpType::Totp => object
                .number("period", p.period)
                .opt_string("issuer", record.issuer.as_deref())
                .opt_number("created_at", record.created_at)
                .opt_number("activated_at", record.activated_at)
                .opt_number("last_step", state.last_step)
                .opt_number("last_code_at", Self::last_code_at(record, state))
                .signed("skew", state.skew.unwrap_or(0)),
            OtpType::Hotp => object
                .opt_string("issuer", record.issuer.as_deref())
                .opt_number("created_at", record.created_at)
                .opt_number("activated_at", record.activated_at)
                .number("hotp_next", state.hotp_next.unwrap_or(0)),
        };
        // A hardware token's serial, only when the record has one.
        let object = match &record.serial {
            Some(serial) => object.string("serial", serial),
            None => object,
        };
        object
            .number("failures", u64::from(state.failures))
            .number(
                "failures_since_success",
                u64::from(state.failures_since_success),
            )
            .opt_number("locked_until", state.locked_at(self.now))
            .boolean(
                "locked_until_unlock",
                matches!(self.lockout(state), Some(Lockout::Capped { .. })),
            )
            .number("recovery_codes_left", recovery_left(record, state) as u64)
            .number("recovery_codes_total", record.recovery.len() as u64)
    }
}

/// `none`, or `+5 steps (the device is 150 s ahead; 'totpctl unlock USER --reset-skew' forgets it)`.
fn skew_text(skew: Option<i64>, period: u64, user: &UserName) -> String {
    match skew {
        None | Some(0) => "none".into(),
        Some(steps) => format!(
            "{steps:+} steps (the device is {} s {}; 'totpctl unlock {user} --reset-skew' forgets it)",
            steps.unsigned_abs().saturating_mul(period),
            if steps > 0 { "ahead" } else { "behind" }
        ),
    }
}
