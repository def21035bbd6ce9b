//! `totpctl list [--json]`: one line per user with a record.

use super::status::Report;
use crate::cli::ListArgs;
use crate::context::{Context, Invocation};
use crate::error::CliError;
use crate::json;
use totp_core::enrollment::recovery_left;
use totp_core::otp::OtpType;

pub fn run(inv: &Invocation, _args: &ListArgs) -> Result<(), CliError> {
    let ctx = Context::load_admin("list", inv)?;
    let users = ctx.store.list_users()?;
    let mut lines = Vec::new();
    for user in &users {
        // An unreadable record is listed as such; the others still are.
        let line = match Report::read(&ctx, user) {
            Ok(report) if ctx.json => report.json(),
            Ok(report) => text_line(&report),
            Err(e) if ctx.json => json::Object::new()
                .string("user", user.as_str())
                .string("status", "invalid")
                .string("error", &e.to_string())
                .finish(),
            Err(_) => format!("{user} invalid (see 'totpctl status {user}')"),
        };
        lines.push(line);
    }
    if ctx.json {
        outln!("{}", json::array(&lines));
    } else {
        for line in lines {
            outln!("{line}");
        }
    }
    Ok(())
}

fn text_line(report: &Report) -> String {
    match &report.enrolled {
        None => format!("{} not-enrolled", report.user),
        Some((record, state)) => {
            let p = record.params;
            let kind = match record.kind {
                OtpType::Totp => format!("totp {}/{}/{}s", p.algorithm, p.digits, p.period),
                OtpType::Hotp => format!(
                    "hotp {}/{} next={}",
                    p.algorithm,
                    p.digits,
                    state.hotp_next.unwrap_or(0)
                ),
            };
            let serial = record
                .serial
                .as_deref()
                .map(|s| format!(" serial={s}"))
                .unwrap_or_default();
            format!(
                "{} {} {kind}{serial} recovery={}/{} failures={} locked={}",
                report.user,
                record.status,
                recovery_left(record, state),
                record.recovery.len(),
                state.failures,
                if state.locked_at(report.now).is_some() {
                    "yes"
                } else {
                    "no"
                }
            )
        }
    }
}
