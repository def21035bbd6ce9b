//! `totpctl self-service enable|disable|status` (root only): the opt-in
//! setuid install of totpctl for the self-service group, done the Debian way
//! with dpkg-statoverride so that it survives package upgrades.

use crate::audit;
use crate::cli::{SelfServiceAction, SelfServiceArgs};
use crate::context::{Context, Invocation};
use crate::error::CliError;
use crate::json;
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
    // With --json, enable and disable print the status after the change.
    let quiet = ctx.json;
    match args.action {
        SelfServiceAction::Enable => enable(&group, binary, quiet)?,
        SelfServiceAction::Disable => disable(binary, quiet)?,
        SelfServiceAction::Status => {}
    }
    if ctx.json {
        outln!("{}", Status::read(&group, binary).json());
    } else if args.action == SelfServiceAction::Status {
        out!("{}", Status::read(&group, binary).text());
    }
    Ok(())
}

fn enable(group: &str, binary: &Path, quiet: bool) -> Result<(), CliError> {
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
    if quiet {
        return Ok(());
    }
    if created {
        outln!("Created the system group '{group}'.");
    }
    outln!(
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

fn disable(binary: &Path, quiet: bool) -> Result<(), CliError> {
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
    if quiet {
        return Ok(());
    }
    outln!(
        "Self-service is off: {} is mode 0755 root:root again, and only root can enroll users. \
         The group is left in place.",
        binary.display()
    );
    Ok(())
}

/// What `self-service status` shows.
struct Status<'a> {
    group: &'a str,
    binary: &'a Path,
    /// The dpkg-statoverride line for the binary: self-service is on.
    statoverride: Option<String>,
    /// Mode, uid and gid of the binary, or why they cannot be read.
    file: Result<(u32, u32, u32), String>,
    /// The group's gid and listed members, if it exists.
    group_entry: Option<(u32, Vec<String>)>,
}

impl<'a> Status<'a> {
    fn read(group: &'a str, binary: &'a Path) -> Self {
        Self {
            group,
            binary,
            statoverride: listed(binary).ok().flatten(),
            file: std::fs::metadata(binary)
                .map(|m| (m.mode() & 0o7777, m.uid(), m.gid()))
                .map_err(|e| e.to_string()),
            group_entry: match Group::from_name(group) {
                Ok(Some(g)) => Some((g.gid.as_raw(), g.mem)),
                _ => None,
            },
        }
    }

    fn text(&self) -> String {
        let group = self.group;
        let file = match &self.file {
            Ok((mode, uid, gid)) => format!("mode {mode:04o}, uid {uid}, gid {gid}"),
            Err(e) => e.clone(),
        };
        let mut out = format!(
            "self-service:    {}\n",
            if self.statoverride.is_some() {
                "on"
            } else {
                "off"
            }
        );
        out.push_str(&format!(
            "binary:          {} ({file})\n",
            self.binary.display()
        ));
        out.push_str(&format!(
            "statoverride:    {}\n",
            self.statoverride.as_deref().unwrap_or("none")
        ));
        match &self.group_entry {
            Some((gid, members)) => out.push_str(&format!(
                "group:           {group} (gid {gid}; listed members: {})\n",
                if members.is_empty() {
                    "none".to_owned()
                } else {
                    members.join(", ")
                }
            )),
            None => out.push_str(&format!("group:           {group} (does not exist)\n")),
        }
        out.push_str(&format!("config:          {}\n", privilege::CONFIG_PATH));
        out
    }

    /// `{"enabled":...,"group":...,"config":...,"binary":...,...}`: the
    /// same facts as [`Status::text`], one field each.
    fn json(&self) -> String {
        let (mode, uid, gid, error) = match &self.file {
            Ok((mode, uid, gid)) => (
                Some(format!("{mode:04o}")),
                Some(u64::from(*uid)),
                Some(u64::from(*gid)),
                None,
            ),
            Err(e) => (None, None, None, Some(e.as_str())),
        };
        let (group_gid, members) = match &self.group_entry {
            Some((gid, members)) => (Some(u64::from(*gid)), members.as_slice()),
            None => (None, &[][..]),
        };
        json::Object::new()
            .boolean("enabled", self.statoverride.is_some())
            .string("group", self.group)
            .string("config", privilege::CONFIG_PATH)
            .string("binary", &self.binary.to_string_lossy())
            .opt_string("binary_mode", mode.as_deref())
            .opt_number("binary_uid", uid)
            .opt_number("binary_gid", gid)
            .opt_string("binary_error", error)
            .opt_string("statoverride", self.statoverride.as_deref())
            .boolean("group_exists", self.group_entry.is_some())
            .opt_number("group_gid", group_gid)
            .strings("group_members", members.iter().map(String::as_str))
            .finish()
    }
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
