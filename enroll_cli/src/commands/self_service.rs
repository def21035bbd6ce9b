//! `totpctl self-service enable|disable|status` (root only): the opt-in
//! setuid install of totpctl for the self-service group, done the Debian way
//! with dpkg-statoverride so that it survives package upgrades.

use crate::audit;
use crate::cli::{SelfServiceAction, SelfServiceArgs};
use crate::context::{Context, Invocation};
use crate::error::CliError;
use crate::privilege;
use nix::unistd::Group;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

const STATOVERRIDE: &str = "/usr/bin/dpkg-statoverride";
const GROUPADD: &str = "/usr/sbin/groupadd";
const SAFE_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
const SETUID_MODE: u32 = 0o4754;

pub fn run(inv: &Invocation, args: &SelfServiceArgs) -> Result<(), CliError> {
    let ctx = Context::load_admin("self-service", inv)?;
    let group = ctx.config.enroll.self_service_group.clone();
    let binary = args.binary.as_path();
    match args.action {
        SelfServiceAction::Enable => enable(&group, binary),
        SelfServiceAction::Disable => disable(binary),
        SelfServiceAction::Status => {
            status(&group, binary);
            Ok(())
        }
    }
}

fn enable(group: &str, binary: &Path) -> Result<(), CliError> {
    if !binary.is_file() {
        return Err(CliError::Tool(format!(
            "{} is not a file; nothing was changed. Give the installed totpctl with --binary.",
            binary.display()
        )));
    }
    let created = match Group::from_name(group) {
        Ok(Some(_)) => false,
        Ok(None) => {
            tool(GROUPADD, &["--system", group])?;
            true
        }
        Err(e) => {
            return Err(CliError::Tool(format!(
                "cannot look up group '{group}' ({e}); nothing was changed."
            )))
        }
    };
    let wanted = format!("root {group} {SETUID_MODE:o} {}", binary.display());
    match listed(binary)? {
        Some(line) if line == wanted => {}
        Some(_) => {
            tool(STATOVERRIDE, &["--remove", &binary.to_string_lossy()])?;
            add_override(group, binary)?;
        }
        None => add_override(group, binary)?,
    }
    audit::audit_or_warn(
        "self-service-enable",
        "-",
        &format!("group={group} binary={}", binary.display()),
    );
    if created {
        println!("Created the system group '{group}'.");
    }
    println!(
        "Self-service is on: {} is setuid root, mode 4754 root:{group}. Members of '{group}' may \
         now enroll themselves ('totpctl enroll'); nobody else can run it. Add users with \
         'adduser USER {group}' (they must log in again).",
        binary.display()
    );
    Ok(())
}

fn add_override(group: &str, binary: &Path) -> Result<(), CliError> {
    tool(
        STATOVERRIDE,
        &[
            "--update",
            "--add",
            "root",
            group,
            &format!("{SETUID_MODE:o}"),
            &binary.to_string_lossy(),
        ],
    )
}

fn disable(binary: &Path) -> Result<(), CliError> {
    if listed(binary)?.is_some() {
        tool(STATOVERRIDE, &["--remove", &binary.to_string_lossy()])?;
    }
    if binary.is_file() {
        // chown first: it clears the setuid bit before the mode is set.
        std::os::unix::fs::chown(binary, Some(0), Some(0))
            .and_then(|()| std::fs::set_permissions(binary, std::fs::Permissions::from_mode(0o755)))
            .map_err(|e| CliError::Output(binary.display().to_string(), e))?;
    }
    audit::audit_or_warn(
        "self-service-disable",
        "-",
        &format!("binary={}", binary.display()),
    );
    println!(
        "Self-service is off: {} is mode 0755 root:root again, and only root can enroll users. \
         The group is left in place.",
        binary.display()
    );
    Ok(())
}

fn status(group: &str, binary: &Path) {
    let on = listed(binary).ok().flatten();
    let file = match std::fs::metadata(binary) {
        Ok(m) => format!(
            "mode {:04o}, uid {}, gid {}",
            m.mode() & 0o7777,
            m.uid(),
            m.gid()
        ),
        Err(e) => e.to_string(),
    };
    println!(
        "self-service:    {}",
        if on.is_some() { "on" } else { "off" }
    );
    println!("binary:          {} ({file})", binary.display());
    println!("statoverride:    {}", on.as_deref().unwrap_or("none"));
    match Group::from_name(group) {
        Ok(Some(g)) => println!(
            "group:           {group} (gid {}; listed members: {})",
            g.gid,
            if g.mem.is_empty() {
                "none".to_owned()
            } else {
                g.mem.join(", ")
            }
        ),
        _ => println!("group:           {group} (does not exist)"),
    }
    println!("config:          {}", privilege::CONFIG_PATH);
}

/// The override for `binary`, as `dpkg-statoverride --list` prints it.
fn listed(binary: &Path) -> Result<Option<String>, CliError> {
    let out = Command::new(STATOVERRIDE)
        .arg("--list")
        .arg(binary)
        .env_clear()
        .env("PATH", SAFE_PATH)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| CliError::Tool(format!("cannot run {STATOVERRIDE}: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Ok((out.status.success() && !text.is_empty()).then_some(text))
}

fn tool(program: &str, args: &[&str]) -> Result<(), CliError> {
    let out = Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", SAFE_PATH)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| CliError::Tool(format!("cannot run {program}: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    Err(CliError::Tool(format!(
        "{program} {} failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}
