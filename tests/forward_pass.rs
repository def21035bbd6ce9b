//! `forward_pass` stacks through real clients: pamtester, `su` and `login`
//! on a pseudo-terminal (driven by `expect`), all under pam_wrapper with the
//! sandbox's stacks. google-authenticator documents a two-line stack
//! (`pam_totp.so forward_pass`, then `pam_unix.so use_first_pass`) in which
//! nothing checks the code: the right password with a wrong code must never
//! log in, and the right password with the right code must log in wherever
//! the stack checks the code. (sshd: tests/sshd.rs; sudo: tests/sudo.rs;
//! Cockpit: tests/browser/test_forward_pass.py.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const PASSWORD: &str = "hunter2";
const REST: &str = "account required pam_permit.so\nsession required pam_permit.so\n";

/// A login program on a pty: answers the combined prompt with FWD_ANSWER,
/// runs a command in the shell if it gets one, and reports what happened.
const EXPECT_SCRIPT: &str = r#"
set timeout 20
set answer $env(FWD_ANSWER)
spawn -noecho {*}$argv
expect {
    "Password & verification code" {
        puts "\nMARK-COMBINED-PROMPT"
        send -- "$answer\r"
        exp_continue
    }
    "erification code" {
        puts "\nMARK-CODE-PROMPT"
        send -- "000000\r"
        exp_continue
    }
    -re {\$ $} {
        send -- "echo LOGGED-IN-\$((6*7)); exit\r"
        exp_continue
    }
    "login: " { puts "\nMARK-LOGIN-AGAIN"; exit 1 }
    timeout { puts "\nMARK-TIMEOUT"; exit 99 }
    eof
}
set status [lindex [wait] 3]
puts "\nMARK-EXIT $status"
"#;

/// A user with a password and a shell, enrolled in the sandbox.
fn account(sb: &Sandbox, name: &str) {
    login_account(name, PASSWORD);
    sb.enroll(name);
}

struct Pty {
    script: PathBuf,
    shim: PathBuf,
    log: PathBuf,
}

/// What one login on the pty showed, and the pam_totp lines it wrote.
struct Session {
    output: String,
    lines: Vec<String>,
}

impl Session {
    fn logged_in(&self) -> bool {
        self.output.contains("LOGGED-IN-42") && self.output.contains("MARK-EXIT 0")
    }
}

impl Pty {
    fn new(sb: &Sandbox) -> Self {
        require_tool("expect", "expect");
        let script = sb.root.join("pty.exp");
        std::fs::write(&script, EXPECT_SCRIPT).unwrap();
        Self {
            script,
            shim: syslog_shim(&sb.root),
            log: sb.root.join("pam_syslog.log"),
        }
    }

    fn run(&self, sb: &Sandbox, answer: &str, argv: &[&str]) -> Session {
        let _ = std::fs::remove_file(&self.log);
        let child = {
            let _one_at_a_time = pam_start_guard();
            Command::new("expect")
                .arg("-f")
                .arg(&self.script)
                .args(argv)
                .env("FWD_ANSWER", answer)
                .env("PAM_WRAPPER", "1")
                .env("PAM_WRAPPER_SERVICE_DIR", &sb.service_dir)
                .env(
                    "LD_PRELOAD",
                    format!("{}:libpam_wrapper.so", self.shim.display()),
                )
                .env("PAM_TOTP_TEST_LOG", &self.log)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let output = expect_output(child);
        assert!(!output.contains("MARK-TIMEOUT"), "timed out:\n{output}");
        let lines = std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once("): ").map(|(_, m)| m.to_owned()))
            .filter(|m| m.contains(" result="))
            .collect();
        Session { output, lines }
    }
}

/// One outcome line with `result` and `reason`, for `user` at `service`.
fn expect_one(lines: &[String], user: &str, service: &str, result: &str, reason: &str) {
    assert_eq!(lines.len(), 1, "want one pam_totp line, got {lines:?}");
    let prefix = format!("user={user} service={service} rhost=- result={result} ");
    assert!(
        lines[0].starts_with(&prefix) && lines[0].contains(reason),
        "want `{prefix}...{reason}...`, got {}",
        lines[0]
    );
}

/// Each stack, through `login` on a pty: wrong code out, right code in
/// exactly where the stack checks it.
fn through_client(sb: &Sandbox, pty: &Pty, user: &str, service: &str, argv: &[&str]) {
    for stack in forward_pass_stacks() {
        let name = stack.name;
        sb.forward_service(service, &stack, REST);
        let _ = std::fs::remove_file(sb.state_path(user));
        let wrong = pty.run(sb, &format!("{PASSWORD}{}", wrong_code(SECRET)), argv);
        assert!(
            !wrong.logged_in(),
            "{service}, {name}: right password + wrong code logged in:\n{}",
            wrong.output
        );
        let right = pty.run(sb, &format!("{PASSWORD}{}", code_now(SECRET)), argv);
        if stack.checks_code {
            expect_one(&wrong.lines, user, service, "denied", "wrong code (1 of 10");
            assert!(
                right.logged_in(),
                "{service}, {name}: right code refused:\n{}\n{:?}",
                right.output,
                right.lines
            );
            expect_one(&right.lines, user, service, "success", "code accepted");
        } else {
            expect_one(&wrong.lines, user, service, "error", FORWARD_PASS_REFUSED);
            assert!(!right.logged_in(), "{service}, {name}:\n{}", right.output);
            expect_one(&right.lines, user, service, "error", FORWARD_PASS_REFUSED);
        }
    }
}

#[test]
fn su_with_forward_pass_stacks() {
    let sb = Sandbox::new("fwd-su");
    let user = "pamtotp-fwd-su";
    account(&sb, user);
    let pty = Pty::new(&sb);
    let argv = ["su", "-s", "/bin/sh", "-c", "echo LOGGED-IN-$((6*7))", user];
    through_client(&sb, &pty, user, "su", &argv);
}

#[test]
fn login_on_a_pty_with_forward_pass_stacks() {
    let sb = Sandbox::new("fwd-login");
    let user = "pamtotp-fwd-login";
    account(&sb, user);
    let pty = Pty::new(&sb);
    through_client(&sb, &pty, user, "login", &["login", user]);
}

#[test]
fn pamtester_with_forward_pass_stacks() {
    let sb = Sandbox::new("fwd-pamtester");
    let user = "pamtotp-fwd-pt";
    account(&sb, user);
    for stack in forward_pass_stacks() {
        let name = stack.name;
        sb.forward_service("fwd", &stack, REST);
        let _ = std::fs::remove_file(sb.state_path(user));
        let wrong = sb.pamtester(
            "fwd",
            user,
            format!("{PASSWORD}{}\n", wrong_code(SECRET)).as_bytes(),
            &[],
        );
        assert!(!wrong.success, "{name}: wrong code: {}", wrong.stderr);
        let right = sb.pamtester(
            "fwd",
            user,
            format!("{PASSWORD}{}\n", code_now(SECRET)).as_bytes(),
            &[],
        );
        if stack.checks_code {
            wrong.expect(false, "denied", "wrong code (1 of 10");
            right.expect(true, "success", "code accepted");
        } else {
            wrong.expect(false, "error", FORWARD_PASS_REFUSED);
            right.expect(false, "error", FORWARD_PASS_REFUSED);
        }
    }
}

/// The second wall: should the forward_pass line misjudge its stack (here
/// it is shown a decoy: the documented stack, while libpam runs the two
/// lines), the code it kept is still unchecked when the client asks for the
/// account: an `account required pam_totp.so` line fails pam_acct_mgmt, with
/// one line, and su and login end the login on it. pam_setcred fails and
/// says so too, but libpam ignores that failure: a forward_pass line
/// returned PAM_IGNORE at pam_authenticate, and libpam weighs setcred by it.
#[test]
fn acct_mgmt_fails_on_a_code_nobody_checked() {
    let sb = Sandbox::new("fwd-account");
    let user = "pamtotp-fwd-cred";
    account(&sb, user);
    let decoy = sb.root.join("decoy");
    std::fs::create_dir(&decoy).unwrap();
    let three = &forward_pass_stacks()[1];
    assert!(three.checks_code);
    for service in ["fwd", "su", "login"] {
        let text = three
            .main
            .replace("{module}", &module_path().display().to_string())
            .replace("{config}", &sb.config.display().to_string());
        std::fs::write(decoy.join(service), text).unwrap();
    }
    std::fs::write(
        &sb.config,
        format!(
            "[paths]\nusers_dir = \"{}\"\nstate_dir = \"{}\"\npam_dir = \"{}\"\n",
            sb.users_dir.display(),
            sb.state_dir.display(),
            decoy.display()
        ),
    )
    .unwrap();
    let two = &forward_pass_stacks()[0];
    assert!(!two.checks_code);
    let rest = format!("account required {{module}} config={{config}}\n{REST}");
    sb.forward_service("fwd", two, &rest);
    let answer = format!("{PASSWORD}000000\n");

    // pamtester: authenticate passes (nothing checked the code), then
    // acct_mgmt fails with one line; setcred logs its own, which libpam
    // ignores.
    let mut cmd = sb.pamtester_command("fwd", user, &[]);
    cmd.arg("acct_mgmt");
    let run = run_with_input(&mut cmd, answer.as_bytes());
    assert!(!run.success, "{}", run.stderr);
    assert!(
        run.stderr.contains("successfully authenticated")
            || run.stdout.contains("successfully authenticated"),
        "{}",
        run.stderr
    );
    let line = run.outcome();
    assert!(
        line.starts_with(&format!("user={user} service=fwd rhost=- result=error "))
            && line.contains(
                "pam_acct_mgmt: the code a forward_pass line kept was never checked; login denied"
            ),
        "{line}"
    );
    let mut cmd = sb.pamtester_command("fwd", user, &[]);
    cmd.arg("setcred");
    let run = run_with_input(&mut cmd, answer.as_bytes());
    assert!(
        run.outcome()
            .contains("pam_setcred: the code a forward_pass line kept was never checked; credentials refused (libpam ignores this"),
        "{}",
        run.stderr
    );

    // su and login: the same stack, refused at pam_acct_mgmt.
    let pty = Pty::new(&sb);
    for (service, argv) in [
        (
            "su",
            vec!["su", "-s", "/bin/sh", "-c", "echo LOGGED-IN-$((6*7))", user],
        ),
        ("login", vec!["login", user]),
    ] {
        sb.forward_service(service, two, &rest);
        let run = pty.run(&sb, &format!("{PASSWORD}000000"), &argv);
        assert!(!run.logged_in(), "{service}:\n{}", run.output);
        assert_eq!(run.lines.len(), 1, "{service}: {:?}", run.lines);
        assert!(
            run.lines[0].contains(
                "pam_acct_mgmt: the code a forward_pass line kept was never checked; login denied"
            ),
            "{service}: {:?}",
            run.lines
        );
    }
}

/// The documented three lines, but the checking line reads another config,
/// in which the user is not enrolled and `unenrolled = "allow"` (as on the
/// Cockpit page's machine, where the forward_pass lines were added above a
/// pam_totp line of the system's config): that line would skip the kept
/// code, and the password alone would log in. It denies instead, with one
/// line that says why.
#[test]
fn a_kept_code_is_never_ignored_by_a_line_of_another_config() {
    let sb = Sandbox::new("fwd-other-config");
    let user = "pamtotp-fwd-other";
    account(&sb, user);
    let other_users = sb.root.join("other-users");
    let other_state = sb.root.join("other-state");
    for dir in [&other_users, &other_state] {
        std::fs::create_dir(dir).unwrap();
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    }
    let other = sb.root.join("other.toml");
    std::fs::write(
        &other,
        format!(
            "[paths]\nusers_dir = \"{}\"\nstate_dir = \"{}\"\npam_dir = \"{}\"\n\
             [policy]\nunenrolled = \"allow\"\n",
            other_users.display(),
            other_state.display(),
            sb.service_dir.display()
        ),
    )
    .unwrap();
    sb.raw_service(
        "fwd",
        &format!(
            "auth required {{module}} config={{config}} forward_pass\n\
             auth requisite pam_unix.so use_first_pass nodelay\n\
             auth required {{module}} config={}\n{REST}",
            other.display()
        ),
    );
    let run = sb.pamtester(
        "fwd",
        user,
        format!("{PASSWORD}{}\n", wrong_code(SECRET)).as_bytes(),
        &[],
    );
    run.expect(
        false,
        "error",
        "a forward_pass line kept a code for this user, but this line would skip it",
    );
}
