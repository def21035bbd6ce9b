//! `sudo -S` with forward_pass stacks. sudo is setuid root, and a real test
//! needs a caller who is not root, so neither LD_PRELOAD nor pam_wrapper
//! reach it: this test writes the real /etc/pam.d/sudo (and a sudoers.d
//! rule for its user), holding the machine's shared lock
//! (/tmp/pam_totp-system.lock) and putting every file back on drop, also
//! when it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::*;
use nix::fcntl::{Flock, FlockArg};
use std::path::{Path, PathBuf};
use std::process::Command;

const PASSWORD: &str = "hunter2";
const PAM_SUDO: &str = "/etc/pam.d/sudo";
const INCLUDED: &str = "/etc/pam.d/pamtotp-test-fwd-auth";
const SUDOERS: &str = "/etc/sudoers.d/pamtotp-test-fwd";

/// The real files this test changes, restored on drop; the lock is held
/// until then.
struct SystemFiles {
    saved: Vec<(PathBuf, Option<Vec<u8>>)>,
    _lock: Flock<std::fs::File>,
}

impl SystemFiles {
    fn take(paths: &[&str]) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/tmp/pam_totp-system.lock")
            .unwrap();
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .unwrap();
        let saved = paths
            .iter()
            .map(|p| (PathBuf::from(p), std::fs::read(p).ok()))
            .collect();
        Self { saved, _lock: lock }
    }
}

impl Drop for SystemFiles {
    fn drop(&mut self) {
        for (path, data) in &self.saved {
            match data {
                Some(data) => std::fs::write(path, data).unwrap(),
                None => {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}

fn sudo(user: &str, answer: &str) -> PamRun {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={user}"),
        &format!("--regid={user}"),
        "--init-groups",
        "--reset-env",
        "/usr/bin/sudo",
        "-S",
        "-k",
        "/bin/echo",
        "SUDO-RAN",
    ]);
    run_with_input(&mut cmd, format!("{answer}\n").as_bytes())
}

#[test]
fn sudo_with_forward_pass_stacks() {
    require_tool("sudo", "sudo");
    let user = "pamtotp-fwd-sudo";
    let sb = Sandbox::new("fwd-sudo");
    login_account(user, PASSWORD);
    sb.enroll(user);
    // The module reads the real stacks: pam_dir is the default /etc/pam.d.
    std::fs::write(
        &sb.config,
        format!(
            "[paths]\nusers_dir = \"{}\"\nstate_dir = \"{}\"\n[throttle]\nbackoff_seconds = 0\n\
             backoff_max_seconds = 0\n",
            sb.users_dir.display(),
            sb.state_dir.display()
        ),
    )
    .unwrap();

    let _files = SystemFiles::take(&[PAM_SUDO, INCLUDED, SUDOERS]);
    std::fs::write(SUDOERS, format!("{user} ALL=(ALL) ALL\n")).unwrap();
    std::fs::set_permissions(SUDOERS, std::os::unix::fs::PermissionsExt::from_mode(0o440)).unwrap();
    let fill = |text: &str| {
        text.replace("{module}", &module_path().display().to_string())
            .replace("{config}", &sb.config.display().to_string())
            .replace(
                "{dir}/fwd-auth",
                Path::new(INCLUDED).file_name().unwrap().to_str().unwrap(),
            )
    };
    for stack in forward_pass_stacks() {
        let name = stack.name;
        for (_, text) in &stack.extra {
            std::fs::write(INCLUDED, fill(text)).unwrap();
        }
        std::fs::write(
            PAM_SUDO,
            fill(&format!(
                "{}account required pam_permit.so\nsession required pam_permit.so\n",
                stack.main
            )),
        )
        .unwrap();
        let _ = std::fs::remove_file(sb.state_path(user));
        let wrong = sudo(user, &format!("{PASSWORD}{}", wrong_code(SECRET)));
        assert!(
            !wrong.success && !wrong.stdout.contains("SUDO-RAN"),
            "{name}: right password + wrong code ran the command: {wrong:?}"
        );
        let right = sudo(user, &format!("{PASSWORD}{}", code_now(SECRET)));
        assert_eq!(
            right.success && right.stdout.contains("SUDO-RAN"),
            stack.checks_code,
            "{name}: right password + right code: {right:?}"
        );
    }
}
