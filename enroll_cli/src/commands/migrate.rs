//! `totpctl migrate --to ldap [--dry-run]`: copy every record of this
//! host's files, with its login state (the last step used, failures,
//! lockout, used recovery codes, HOTP counter, skew), into the LDAP store.
//! A user who already has an entry there is skipped, never overwritten: the
//! directory may hold newer state from another host. Run it before setting
//! `[store] backend = "ldap"`; the files stay as they were. With
//! `ldap.verify = "directory"` each entry is written as a token the
//! directory checks, starting after the last step or counter used.
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
use totp_core::store::{Store, StoreError};
use totp_ldap::LdapStore;

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
    let (mut copied, mut skipped, mut failed) = (0usize, 0usize, 0usize);
    let mut lines = Vec::new();
    for user in &users {
        let outcome = match (files.load_record(user), files.peek_state(user)) {
            (Ok(Some(record)), Ok(read)) if args.dry_run => {
                Ok(format!("would copy ({} {})", record.status, record.kind))
                    .map(|text| (text, read.problem))
            }
            (Ok(Some(record)), Ok(read)) => {
                ldap.add_entry(user, &record, &read.state).map(|added| {
                    let text = if added {
                        copied += 1;
                        format!("copied ({} {})", record.status, record.kind)
                    } else {
                        skipped += 1;
                        "already in LDAP: skipped".to_owned()
                    };
                    (text, read.problem)
                })
            }
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
            &format!("to=ldap copied={copied} skipped={skipped} failed={failed}"),
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
        println!(
            "{}",
            json::Object::new()
                .boolean("dry_run", args.dry_run)
                .number("copied", copied as u64)
                .number("skipped", skipped as u64)
                .number("failed", failed as u64)
                .raw("users", &json::array(&items))
                .finish()
        );
    } else {
        for (user, line) in &lines {
            println!("{user}: {line}");
        }
        if args.dry_run {
            println!(
                "dry run: {} user(s) would be copied; nothing was changed",
                lines.len()
            );
        } else {
            println!("{copied} copied, {skipped} skipped (already in LDAP), {failed} failed");
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
            println!(
                "{}",
                json::Object::new()
                    .string("user", user.as_str())
                    .string("result", &line)
                    .finish()
            );
        } else {
            println!("{user}: {line}");
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
