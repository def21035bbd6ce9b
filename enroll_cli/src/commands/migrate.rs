//! `totpctl migrate --to ldap [--dry-run]`: copy every record of this
//! host's files, with its login state (the last step used, failures,
//! lockout, used recovery codes, HOTP counter, skew), into the LDAP store.
//!
//! A user who already has an entry there with the same secret is brought
//! forward, never overwritten: by compare-and-swap, the entry's state takes
//! the later of each step, counter and time, the larger failure counts,
//! and the union of used recovery codes ([`bring_forward`]). So running it
//! again right after `[store] backend = "ldap"` carries over what logins on
//! the files did since the first run, and nothing used there works again.
//! An entry with another secret (enrolled anew elsewhere) is left alone.
//! The files stay as they were.
//! With `ldap.verify = "directory"` each new entry is written as a token
//! the directory checks, starting after the last step or counter used; an
//! entry already there is left alone in that mode (the host cannot read its
//! seed to tell whether it is the same enrollment).
//!
//! `totpctl migrate --to directory [--dry-run]`: turn the directory's
//! host-checked entries into directory-checked ones, each in one Modify
//! guarded by its serial (see `LdapStore::convert_to_directory`): a login
//! meanwhile makes it read again and convert again, so no used code comes
//! back.

use crate::audit;
use crate::cli::MigrateArgs;
use crate::context::{Context, Invocation};
use crate::error::CliError;
use crate::json;
use totp_core::record::UserRecord;
use totp_core::state::LoginState;
use totp_core::store::{Store, StoreError};
use totp_ldap::LdapStore;

/// How many times a merge is tried when logins write the entry meanwhile.
const MERGE_TRIES: u32 = 16;

pub fn run(inv: &Invocation, args: &MigrateArgs) -> Result<(), CliError> {
    let ctx = Context::load_admin("migrate", inv)?;
    ctx.config
        .ldap
        .validate()
        .map_err(|e| CliError::Store(StoreError::Unavailable(format!("[ldap]: {e}"))))?;
    let files = Store::new(&ctx.config.paths);
    let ldap = LdapStore::new(&ctx.config.ldap).with_otp_limits(&ctx.config.otp);
    if args.to == "directory" {
        return to_directory(&ctx, &ldap, args.dry_run);
    }
    let users = files.list_users()?;
    let (mut copied, mut merged, mut skipped, mut failed) = (0usize, 0usize, 0usize, 0usize);
    let mut lines = Vec::new();
    for user in &users {
        let outcome = match (files.load_record(user), files.peek_state(user)) {
            (Ok(Some(record)), Ok(read)) if args.dry_run => {
                Ok(format!("would copy ({} {})", record.status, record.kind))
                    .map(|text| (text, read.problem))
            }
            (Ok(Some(record)), Ok(read)) => ldap
                .add_entry(user, &record, &read.state)
                .and_then(|added| {
                    if added {
                        copied += 1;
                        return Ok(format!("copied ({} {})", record.status, record.kind));
                    }
                    Ok(match bring_forward(&ldap, user, &record, &read.state)? {
                        Forward::Merged => {
                            merged += 1;
                            "already in LDAP: state brought forward".to_owned()
                        }
                        Forward::Current => {
                            merged += 1;
                            "already in LDAP: up to date".to_owned()
                        }
                        Forward::Other => {
                            skipped += 1;
                            "already in LDAP with another secret: skipped".to_owned()
                        }
                    })
                })
                .map(|text| (text, read.problem)),
            (Ok(None), _) => continue,
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        let line = match outcome {
            Ok((text, None)) => text,
            Ok((text, Some(problem))) => format!("{text}; note: {problem}"),
            Err(e) => {
                failed += 1;
                format!("FAILED: {e}")
            }
        };
        lines.push((user.to_string(), line));
    }
    if !args.dry_run {
        audit::audit_or_warn(
            "migrate",
            "-",
            &format!("to=ldap copied={copied} merged={merged} skipped={skipped} failed={failed}"),
        );
    }
    if ctx.json {
        let items: Vec<String> = lines
            .iter()
            .map(|(user, line)| {
                json::Object::new()
                    .string("user", user)
                    .string("result", line)
                    .finish()
            })
            .collect();
        outln!(
            "{}",
            json::Object::new()
                .boolean("dry_run", args.dry_run)
                .number("copied", copied as u64)
                .number("merged", merged as u64)
                .number("skipped", skipped as u64)
                .number("failed", failed as u64)
                .raw("users", &json::array(&items))
                .finish()
        );
    } else {
        for (user, line) in &lines {
            outln!("{user}: {line}");
        }
        if args.dry_run {
            outln!(
                "dry run: {} user(s) would be copied; nothing was changed",
                lines.len()
            );
        } else {
            outln!(
                "{copied} copied, {merged} brought forward (already in LDAP), {skipped} skipped \
                 (another secret in LDAP), {failed} failed"
            );
        }
    }
    if failed > 0 {
        return Err(CliError::Store(StoreError::Unavailable(format!(
            "{failed} user(s) could not be copied (see above)"
        ))));
    }
    Ok(())
}

/// How often a conversion that lost its race with a login is tried again.
const CONVERT_RETRIES: u32 = 16;

/// `--to directory`: every entry that still holds its secret in
/// `totpRecord` becomes a token the directory checks.
fn to_directory(ctx: &Context, ldap: &LdapStore, dry_run: bool) -> Result<(), CliError> {
    let users = ldap.list_users()?;
    let (mut converted, mut failed) = (0usize, 0usize);
    for user in &users {
        let line = if dry_run {
            "would be converted if it still holds its secret".to_owned()
        } else {
            let mut tries = 0;
            loop {
                match ldap.convert_to_directory(user) {
                    Ok(true) => {
                        converted += 1;
                        break "converted: the directory checks its codes".to_owned();
                    }
                    Ok(false) => break "not host-checked (converted already?): left".to_owned(),
                    Err(StoreError::Conflict(_)) if tries < CONVERT_RETRIES => tries += 1,
                    Err(e) => {
                        failed += 1;
                        break format!("FAILED: {e}");
                    }
                }
            }
        };
        if ctx.json {
            outln!(
                "{}",
                json::Object::new()
                    .string("user", user.as_str())
                    .string("result", &line)
                    .finish()
            );
        } else {
            outln!("{user}: {line}");
        }
    }
    if !dry_run {
        audit::audit_or_warn(
            "migrate",
            "-",
            &format!("to=directory converted={converted} failed={failed}"),
        );
    }
    if failed > 0 {
        return Err(CliError::Store(StoreError::Unavailable(format!(
            "{failed} user(s) could not be converted (see above)"
        ))));
    }
    Ok(())
}

/// What became of a user whose entry was already there.
enum Forward {
    /// The entry's state now includes this host's.
    Merged,
    /// It already did.
    Current,
    /// The entry holds another secret: this host's state means nothing there.
    Other,
}

/// Bring `user`'s entry forward with this host's `files` state, by
/// compare-and-swap (a login elsewhere meanwhile makes it read and merge
/// again): see [`merge`].
fn bring_forward(
    ldap: &LdapStore,
    user: &totp_core::names::UserName,
    record: &UserRecord,
    files: &LoginState,
) -> Result<Forward, StoreError> {
    let same = ldap.load_record(user)?.is_some_and(|there| {
        there.kind == record.kind
            && there.secret.as_bytes() == record.secret.as_bytes()
            && there.recovery == record.recovery
    });
    if !same {
        return Ok(Forward::Other);
    }
    let lock = ldap.lock(user)?;
    for _ in 0..MERGE_TRIES {
        let read = lock.read_state();
        if let Some(problem) = read.problem {
            return Err(StoreError::Unavailable(format!(
                "{}: {problem}",
                ldap.entry_dn(user)
            )));
        }
        let next = merge(&read.state, files);
        if next == read.state {
            return Ok(Forward::Current);
        }
        match lock.write_state(&next) {
            Ok(()) => return Ok(Forward::Merged),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict(format!(
        "the login state of {} (logins kept writing it)",
        ldap.entry_dn(user)
    )))
}

/// The directory's state with this host's brought in: the later step,
/// counter, skew learned and times; the larger failure counts (so running
/// migrate again counts nothing twice); every used recovery code.
fn merge(there: &LoginState, here: &LoginState) -> LoginState {
    let later = |a: Option<u64>, b: Option<u64>| a.max(b);
    let mut used = there.used_recovery.clone();
    for id in &here.used_recovery {
        if !used.contains(id) {
            used.push(*id);
        }
    }
    used.sort_unstable();
    let (last_success_at, last_success_rhost) = if here.last_success_at > there.last_success_at {
        (here.last_success_at, here.last_success_rhost.clone())
    } else {
        (there.last_success_at, there.last_success_rhost.clone())
    };
    LoginState {
        last_step: later(there.last_step, here.last_step),
        failures: there.failures.max(here.failures),
        hotp_next: later(there.hotp_next, here.hotp_next),
        failures_since_success: there
            .failures_since_success
            .max(here.failures_since_success),
        not_before: later(there.not_before, here.not_before),
        last_failure_at: later(there.last_failure_at, here.last_failure_at),
        locked_until: later(there.locked_until, here.locked_until),
        last_success_at,
        last_success_rhost,
        used_recovery: used,
        ..there.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_keeps_the_later_of_everything_and_every_used_code() {
        let there = LoginState {
            last_step: Some(100),
            failures: 2,
            hotp_next: Some(7),
            used_recovery: vec![1],
            locked_until: Some(50),
            last_success_at: Some(10),
            last_success_rhost: Some("a".into()),
            ..LoginState::new()
        };
        let here = LoginState {
            last_step: Some(90),
            failures: 3,
            hotp_next: Some(9),
            used_recovery: vec![4, 1],
            last_success_at: Some(20),
            last_success_rhost: Some("b".into()),
            ..LoginState::new()
        };
        let merged = merge(&there, &here);
        assert_eq!(merged.last_step, Some(100));
        assert_eq!(merged.failures, 3);
        assert_eq!(merged.hotp_next, Some(9));
        assert_eq!(merged.used_recovery, vec![1, 4]);
        assert_eq!(merged.locked_until, Some(50));
        assert_eq!(merged.last_success_rhost.as_deref(), Some("b"));
        assert_eq!(
            merge(&merged, &here),
            merged,
            "a second run changes nothing"
        );
    }
}
