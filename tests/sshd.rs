//! A real SSH login: a private OpenSSH server on 127.0.0.1 with its own
//! config, host key, PID file and PAM stack (pam_unix, then pam_totp.so),
//! a real system user, and the real `ssh` client driven by `expect`.
//!
//! How sshd gets its own PAM stack without touching /etc/pam.d: it runs with
//! `LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=<sandbox>`,
//! so libpam reads the service file `sshd` from the sandbox. pam_wrapper reads
//! those variables once, when it loads, so they survive what follows.
//!
//! The trap: sshd runs PAM in a forked "thread" that empties its environment
//! (`environ[0] = NULL` in auth-pam.c) before pam_authenticate. pam_wrapper
//! reads PAM_WRAPPER_DEBUGLEVEL at each log call, so the module's pam_syslog
//! lines are lost there; and this machine may have no /dev/log either. So a
//! tiny preloaded shim ([`syslog_shim`]) stands in for the syslog sink.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::*;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The ssh client under expect. Arguments: port user password code.
/// Prints markers the test asserts on, and the ssh exit status and duration.
const EXPECT_SCRIPT: &str = r#"
set timeout 20
lassign $argv port user password code
set passwords 0
set codes 0
set start [clock milliseconds]
spawn -noecho ssh -F /dev/null -p $port -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10 -o PreferredAuthentications=keyboard-interactive -o PubkeyAuthentication=no -o GSSAPIAuthentication=no -o NumberOfPasswordPrompts=1 $user@127.0.0.1 {echo LOGGED-IN-OK}
expect {
    "Password & verification code" {
        puts "\nMARK-COMBINED-PROMPT"
        send -- "$password$code\r"
        exp_continue
    }
    -re {[Pp]assword: ?} {
        incr passwords
        if {$passwords > 1} { puts "\nMARK-SECOND-PASSWORD-PROMPT" }
        send -- "$password\r"
        exp_continue
    }
    "Verification code" {
        incr codes
        puts "\nMARK-CODE-PROMPT"
        send -- "$code\r"
        exp_continue
    }
    timeout { puts "\nMARK-TIMEOUT"; exit 99 }
    eof
}
set status [lindex [wait] 3]
set elapsed [expr {[clock milliseconds] - $start}]
puts "\nMARK-SSH-EXIT $status"
puts "MARK-SSH-MS $elapsed"
"#;

/// A system user with a home and a password, removed on drop (also when the
/// test fails).
struct Account {
    name: String,
    password: String,
}

impl Account {
    fn create(name: &str) -> Self {
        let _ = Command::new("userdel")
            .args(["-r", name])
            .stderr(Stdio::null())
            .status();
        let status = Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/sh", name])
            .status()
            .unwrap();
        assert!(status.success(), "useradd {name} failed");
        let account = Self {
            name: name.to_string(),
            password: format!("Pw-{}-{}", std::process::id(), now() % 100_000),
        };
        let run = run_with_input(
            &mut Command::new("chpasswd"),
            format!("{}:{}\n", account.name, account.password).as_bytes(),
        );
        assert!(run.success, "chpasswd failed: {}", run.stderr);
        account
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let _ = Command::new("userdel")
            .args(["-r", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Our own sshd, in the foreground; stopped by its PID on drop.
struct Sshd {
    child: Child,
    service_text: String,
    port: u16,
    stderr: PathBuf,
    log: PathBuf,
}

impl Sshd {
    fn start(sb: &Sandbox, shim: &Path) -> Self {
        std::fs::create_dir_all("/run/sshd").unwrap();
        let key = sb.root.join("ssh_host_ed25519_key");
        if !key.exists() {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&key)
                .status()
                .expect("ssh-keygen is missing: apt-get install openssh-client");
            assert!(status.success(), "ssh-keygen failed");
        }
        let log = sb.root.join("pam_syslog.log");
        let mut last_error = String::new();
        // A port from the kernel; if another process takes it before sshd
        // binds it, sshd exits and we try another.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = sb.root.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "ListenAddress 127.0.0.1\nPort {port}\nHostKey {key}\nPidFile {pid}\n\
                     UsePAM yes\nKbdInteractiveAuthentication yes\n\
                     AuthenticationMethods keyboard-interactive\nPasswordAuthentication no\n\
                     PubkeyAuthentication no\nPermitRootLogin no\nStrictModes no\n\
                     PrintMotd no\nPrintLastLog no\nLoginGraceTime 30\nLogLevel VERBOSE\n",
                    key = key.display(),
                    pid = sb.root.join("sshd.pid").display(),
                ),
            )
            .unwrap();
            let stderr = sb.root.join("sshd.stderr");
            let mut child = Command::new("/usr/sbin/sshd")
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .env("PAM_WRAPPER", "1")
                .env("PAM_WRAPPER_SERVICE_DIR", &sb.service_dir)
                .env(
                    "LD_PRELOAD",
                    format!("{}:libpam_wrapper.so", shim.display()),
                )
                .env("PAM_TOTP_TEST_LOG", &log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&stderr).unwrap())
                .spawn()
                .expect("/usr/sbin/sshd is missing: apt-get install openssh-server");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let text = std::fs::read_to_string(&stderr).unwrap_or_default();
                if text.contains("Server listening on") {
                    return Self {
                        child,
                        service_text: std::fs::read_to_string(sb.service_dir.join("sshd")).unwrap(),
                        port,
                        stderr,
                        log,
                    };
                }
                if let Some(status) = child.try_wait().unwrap() {
                    last_error = format!("sshd exited with {status}:\n{text}");
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = format!("sshd did not start listening:\n{text}");
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("could not start sshd: {last_error}");
    }

    /// The pam_syslog lines so far.
    fn log_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
        remove_stale_pam_wrapper_dirs(&self.service_text);
    }
}

impl Sshd {
    fn stop(&mut self) {
        // SIGTERM to the listener we spawned (by its PID), then make sure.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// pam_wrapper copies the service files into `/tmp/pam.?` in every process
/// that loads it, and sshd's per-connection processes exit without removing
/// theirs. Remove the copies of our service whose process is gone (pam_wrapper
/// would also clear them, lazily, when it next lands on the same name).
fn remove_stale_pam_wrapper_dirs(service_text: &str) {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.len() == 5 && name.starts_with("pam.")) {
            continue;
        }
        let ours = std::fs::read_to_string(path.join("sshd")).is_ok_and(|t| t == service_text);
        let pid = std::fs::read_to_string(path.join("pid")).unwrap_or_default();
        let alive = !pid.trim().is_empty() && Path::new("/proc").join(pid.trim()).exists();
        if ours && !alive {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// What one ssh login showed and how it ended.
struct Login {
    output: String,
    exit: i32,
    millis: u64,
    /// The pam_totp outcome line this login produced.
    outcome: String,
}

impl Login {
    fn code_prompted(&self) -> bool {
        self.output.contains("MARK-CODE-PROMPT")
    }

    fn logged_in(&self) -> bool {
        self.exit == 0 && self.output.contains("LOGGED-IN-OK")
    }

    fn denied(&self) -> bool {
        self.exit == 255 && self.output.contains("Permission denied") && !self.logged_in()
    }

    /// Assert the module's outcome line: who, where, result and reason.
    fn expect_log(&self, user: &str, result: &str, reason: &str) {
        let prefix = format!("user={user} service=sshd rhost=127.0.0.1 result={result} ");
        assert!(
            self.outcome.starts_with(&prefix) && self.outcome.contains(reason),
            "want `{prefix}...{reason}...`, got: {}\nclient:\n{}",
            self.outcome,
            self.output
        );
    }
}

/// Fields drop in this order: sshd first, then the user, then the sandbox.
struct Rig {
    sshd: Sshd,
    account: Account,
    sb: Sandbox,
    script: PathBuf,
}

impl Rig {
    fn login(&self, code: &str) -> Login {
        let before = self.sshd.log_lines().len();
        let child = Command::new("expect")
            .arg("-f")
            .arg(&self.script)
            .args([
                &self.sshd.port.to_string(),
                &self.account.name,
                &self.account.password,
                code,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("expect is missing: apt-get install expect");
        let output = expect_output(child);
        assert!(
            !output.contains("MARK-TIMEOUT"),
            "expect timed out:\n{output}\nsshd:\n{}",
            std::fs::read_to_string(&self.sshd.stderr).unwrap_or_default()
        );
        assert!(
            !output.contains("MARK-SECOND-PASSWORD-PROMPT"),
            "asked for the password twice:\n{output}"
        );
        let marker = |name: &str| -> i64 {
            output
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} in:\n{output}"))
        };
        let exit = i32::try_from(marker("MARK-SSH-EXIT ")).unwrap();
        let millis = u64::try_from(marker("MARK-SSH-MS ")).unwrap();
        // The module logs before PAM returns, so the line is there by now;
        // poll briefly anyway in case the PAM process is still flushing.
        let deadline = Instant::now() + Duration::from_secs(3);
        let outcomes = loop {
            let outcomes: Vec<String> = self.sshd.log_lines()[before..]
                .iter()
                .filter_map(|l| l.split_once("): ").map(|(_, m)| m.to_string()))
                .filter(|m| m.contains(" result="))
                .collect();
            if !outcomes.is_empty() || Instant::now() > deadline {
                break outcomes;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(
            outcomes.len(),
            1,
            "want one pam_totp outcome line for this login, got {outcomes:?}\nclient:\n{output}\nsshd:\n{}",
            std::fs::read_to_string(&self.sshd.stderr).unwrap_or_default()
        );
        Login {
            output,
            exit,
            millis,
            outcome: outcomes[0].clone(),
        }
    }

    fn forget_state(&self) {
        let _ = std::fs::remove_file(self.sb.state_path(&self.account.name));
    }
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

/// `tag` names the sandbox and the account, so tests can run side by side.
fn rig(tag: &str) -> Rig {
    assert!(
        nix_is_root(),
        "the sshd test creates a system user and runs sshd: run it as root"
    );
    require_tool("expect", "expect");
    require_tool("ssh", "openssh-client");
    require_tool("cc", "gcc");
    assert!(
        Path::new("/usr/sbin/sshd").exists(),
        "/usr/sbin/sshd is missing: apt-get install openssh-server"
    );
    let sb = Sandbox::new(tag);
    let shim = syslog_shim(&sb.root);
    let script = sb.root.join("login.exp");
    std::fs::write(&script, EXPECT_SCRIPT).unwrap();
    // The stack an admin would write for "password + code" (see
    // config/pam.d-examples/sshd), with the module's config in the sandbox.
    sb.raw_service(
        "sshd",
        "auth required pam_unix.so\n\
         auth [success=ok ignore=ignore default=die] {module} config={config}\n\
         account required pam_permit.so\n\
         session required pam_permit.so\n\
         password required pam_deny.so\n",
    );
    let account = Account::create(&format!("totp{tag}{}", std::process::id() % 1_000_000));
    let sshd = Sshd::start(&sb, &shim);
    Rig {
        sshd,
        account,
        sb,
        script,
    }
}

fn nix_is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

#[test]
fn ssh_login_with_password_and_code() {
    let started = Instant::now();
    let rig = rig("ssh");
    let user = rig.account.name.clone();
    rig.sb.enroll(&user);

    // Password + good code: in, and the command runs.
    let code = code_now(SECRET);
    let good = rig.login(&code);
    assert!(
        good.code_prompted() && good.logged_in(),
        "good code: {}",
        good.output
    );
    good.expect_log(&user, "success", "reason=\"code accepted\"");

    // The same code again: refused as a replay.
    let replay = rig.login(&code);
    assert!(
        replay.code_prompted() && replay.denied(),
        "replay: {}",
        replay.output
    );
    replay.expect_log(&user, "denied", "reason=\"replayed code (already used)");

    // A wrong code: Permission denied.
    let wrong = rig.login(&wrong_code(SECRET));
    assert!(
        wrong.code_prompted() && wrong.denied(),
        "wrong: {}",
        wrong.output
    );
    wrong.expect_log(&user, "denied", "reason=\"wrong code (");

    // Not enrolled, under allow-until: the deadline message, no code prompt, in.
    let deadline = date_from_today(30);
    std::fs::remove_file(rig.sb.record_path(&user)).unwrap();
    rig.forget_state();
    rig.sb.write_config(&format!(
        "[policy]\nunenrolled = \"allow-until:{deadline}\"\n"
    ));
    let grace = rig.login("-");
    assert!(
        !grace.code_prompted() && grace.logged_in(),
        "allow-until: {}",
        grace.output
    );
    assert!(
        grace.output.contains(&format!(
            "Two-factor login is not set up for this account. It becomes mandatory after {deadline} (UTC). Set it up now with: totpctl enroll"
        )),
        "deadline message: {}",
        grace.output
    );
    grace.expect_log(
        &user,
        "ignored",
        &format!("reason=\"not enrolled; allowed until {deadline}\""),
    );

    // Locked out after max_failures = 2: refused before the code prompt, even
    // with a good code in hand.
    rig.sb.enroll(&user);
    rig.forget_state();
    rig.sb.write_config(
        "[throttle]\nmax_failures = 2\nlockout_seconds = 600\nbackoff_seconds = 0\nbackoff_max_seconds = 0\n",
    );
    let bad = wrong_code(SECRET);
    rig.login(&bad)
        .expect_log(&user, "denied", "reason=\"wrong code (1 of 2 failures)\"");
    rig.login(&bad).expect_log(
        &user,
        "denied",
        "wrong code (2 of 2 failures); locked out until ",
    );
    let locked = rig.login(&code_now(SECRET));
    assert!(
        !locked.code_prompted() && !locked.output.contains("Verification code"),
        "the code prompt must not appear when locked out: {}",
        locked.output
    );
    assert!(
        locked.denied()
            && locked
                .output
                .contains("Too many failed attempts. Try again after "),
        "locked out: {}",
        locked.output
    );
    locked.expect_log(&user, "denied", "reason=\"locked out until ");

    // Timings, ssh start to exit, with the shipped throttle defaults (a first
    // failure waits backoff_seconds = 1 on top of pam_unix's ~2 s fail delay).
    rig.sb.write_config("[throttle]\n");
    let mut good_ms = Vec::new();
    let mut bad_ms = Vec::new();
    for _ in 0..3 {
        rig.forget_state();
        let run = rig.login(&code_now(SECRET));
        assert!(run.logged_in(), "timed good login: {}", run.output);
        run.expect_log(&user, "success", "code accepted");
        good_ms.push(run.millis);
        rig.forget_state();
        let run = rig.login(&wrong_code(SECRET));
        assert!(run.denied(), "timed bad login: {}", run.output);
        run.expect_log(&user, "denied", "wrong code (1 of 10 failures)");
        bad_ms.push(run.millis);
    }
    eprintln!(
        "sshd login time, ssh start to exit (median of 3): good code {} ms {good_ms:?}, bad code {} ms {bad_ms:?}",
        median(good_ms.clone()),
        median(bad_ms.clone())
    );
    eprintln!("sshd test took {:.1} s", started.elapsed().as_secs_f64());
}

/// A forward_pass stack through sshd's keyboard-interactive login: the
/// right password with a wrong code never logs in, and the right password
/// with the right code does wherever the stack checks the code. Stacks that
/// check no code are refused by the forward_pass line, with one line that
/// names the fix. (A failed pam_setcred cannot catch them here: sshd runs
/// pam_authenticate in a forked process, whose PAM data never reaches the
/// process that calls pam_setcred.)
#[test]
fn ssh_forward_pass_stacks() {
    let rig = rig("fwd");
    let user = rig.account.name.clone();
    rig.sb.enroll(&user);
    let rest = "account required pam_permit.so\nsession required pam_permit.so\n\
                password required pam_deny.so\n";
    for stack in forward_pass_stacks() {
        let name = stack.name;
        rig.sb.forward_service("sshd", &stack, rest);
        rig.forget_state();
        let wrong = rig.login(&wrong_code(SECRET));
        assert!(
            wrong.output.contains("MARK-COMBINED-PROMPT") || !stack.checks_code,
            "{name}: {}",
            wrong.output
        );
        assert!(wrong.denied(), "{name}: wrong code: {}", wrong.output);
        let right = rig.login(&code_now(SECRET));
        if stack.checks_code {
            wrong.expect_log(&user, "denied", "wrong code (1 of 10 failures)");
            assert!(right.logged_in(), "{name}: right code: {}", right.output);
            right.expect_log(&user, "success", "code accepted");
        } else {
            wrong.expect_log(&user, "error", FORWARD_PASS_REFUSED);
            assert!(right.denied(), "{name}: right code: {}", right.output);
            right.expect_log(&user, "error", FORWARD_PASS_REFUSED);
        }
    }
}
