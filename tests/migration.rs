//! Moving from google-authenticator-libpam and pam_oath, through the real
//! libpam (pam_wrapper):
//! - a google-authenticator stack, changed only in the module name, works
//!   the same (the real pam_google_authenticator.so is run beside it) or is
//!   denied with a log line that names the pam_totp equivalent, which
//!   `totpctl check` prints too;
//! - `import-google-authenticator --all` moves three users whose files the
//!   real `google-authenticator` tool wrote, and each logs in with the next
//!   code from oathtool; a bad file changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::*;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The accounts google-authenticator's tool sets up; homes under HOMES.
const GA_USERS: [&str; 3] = ["pamtotp-ga1", "pamtotp-ga2", "pamtotp-ga3"];
const HOMES: &str = "/tmp/pamtotp-ga-homes";
/// Where the tool writes each file (its `-s`), as a stack's `secret=` would
/// name it.
const GA_FILE: &str = ".ga-pamtotp-test";

/// The tests share the accounts' homes: one at a time.
static HOMES_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn homes() -> std::sync::MutexGuard<'static, ()> {
    HOMES_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn totpctl(sb: &Sandbox, args: &[&str]) -> PamRun {
    sb.totpctl(args, b"")
}

/// `import-google-authenticator --all --secret TEMPLATE`, and `extra`.
fn import_all(sb: &Sandbox, template: &str, extra: &[&str]) -> PamRun {
    let mut args = vec!["import-google-authenticator", "--all", "--secret", template];
    args.extend_from_slice(extra);
    totpctl(sb, &args)
}

fn uid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A system account with a home of its own under HOMES (made afresh).
fn account_with_home(name: &str) -> PathBuf {
    let home = Path::new(HOMES).join(name);
    let exists = Command::new("getent")
        .args(["passwd", name])
        .output()
        .unwrap()
        .status
        .success();
    // No login shell, so that `totpctl check` on this machine does not
    // count these accounts; runuser runs the tool without a shell.
    let mut cmd = if exists {
        let mut usermod = Command::new("usermod");
        usermod.arg("--home");
        usermod
    } else {
        let mut useradd = Command::new("useradd");
        useradd.args(["--system", "--no-create-home", "--home-dir"]);
        useradd
    };
    let status = cmd
        .arg(&home)
        .args(["--shell", "/usr/sbin/nologin"])
        .arg(name)
        .status()
        .unwrap();
    assert!(status.success(), "useradd or usermod {name}");
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(HOMES, std::fs::Permissions::from_mode(0o755)).unwrap();
    let uid = uid_of(name);
    chown(&home, Some(uid), None).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    home
}

/// Run the real `google-authenticator` tool as `user`, writing `~/GA_FILE`.
fn google_authenticator(user: &str, home: &Path, options: &[&str]) -> String {
    require_tool("google-authenticator", "libpam-google-authenticator");
    let file = home.join(GA_FILE);
    let out = Command::new("runuser")
        .args(["-u", user, "--", "google-authenticator", "-f", "-q", "-C"])
        .args(options)
        .arg(format!("--secret={}", file.display()))
        .env("HOME", home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "google-authenticator for {user}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&file).unwrap()
}

fn option(file: &str, name: &str) -> Option<String> {
    file.lines()
        .find_map(|l| l.strip_prefix(&format!("\" {name} ")))
        .map(str::to_owned)
}

/// The three accounts and their files: a TOTP user with rate limiting and
/// reuse refused, a HOTP user, and a TOTP user with 60-second codes.
fn three_users() -> Vec<(String, PathBuf, String)> {
    let options: [&[&str]; 3] = [
        &["-t", "-d", "-r", "3", "-R", "30", "-w", "3", "-e", "5"],
        &["-c", "-u", "-w", "3", "-e", "3"],
        &["-t", "-D", "-u", "-W", "-S", "60", "-e", "4"],
    ];
    GA_USERS
        .iter()
        .zip(options)
        .map(|(user, opts)| {
            let home = account_with_home(user);
            let file = google_authenticator(user, &home, opts);
            ((*user).to_owned(), home, file)
        })
        .collect()
}

#[test]
fn import_all_moves_three_google_authenticator_users() {
    let _homes = homes();
    let users = three_users();
    let sb = Sandbox::new("ga-all");
    sb.service("totp", "");
    let template = format!("${{HOME}}/{GA_FILE}");
    let secrets: Vec<String> = users
        .iter()
        .map(|(_, _, f)| f.lines().next().unwrap().to_owned())
        .collect();

    // A dry run: one line per account, nothing written.
    let before = snapshot(&sb.root);
    let run = import_all(&sb, &template, &["--dry-run"]);
    assert!(run.success, "{run:?}");
    for (user, home, _) in &users {
        let lines: Vec<&str> = run
            .stdout
            .lines()
            .filter(|l| l.starts_with(&format!("{user}: would ")))
            .collect();
        assert_eq!(lines.len(), 1, "{}", run.stdout);
        assert!(
            lines[0].contains(&format!("import {}/{GA_FILE}", home.display())),
            "{}",
            lines[0]
        );
    }
    assert!(run.stdout.contains("pamtotp-ga2: would import"));
    assert!(run.stdout.contains("HOTP, SHA1, 6 digits, next counter"));
    assert!(run
        .stdout
        .contains("TOTP, SHA1, 6 digits, 60 s, 4 scratch codes"));
    assert!(run.stdout.contains("nothing was changed."));
    assert_eq!(snapshot(&sb.root), before, "a dry run changed files");

    // One bad file: every account is refused, the bad one named, nothing written.
    let bad = users[2].1.join(GA_FILE);
    let good_text = std::fs::read_to_string(&bad).unwrap();
    std::fs::write(&bad, format!("{good_text}not a scratch code\n")).unwrap();
    let run = import_all(&sb, &template, &[]);
    assert!(!run.success, "{run:?}");
    assert!(
        run.stderr.contains("pamtotp-ga3: line ") && run.stderr.contains("nothing was changed"),
        "{}",
        run.stderr
    );
    assert_eq!(snapshot(&sb.root), before, "a refused import wrote files");
    std::fs::write(&bad, &good_text).unwrap();

    // The move itself.
    let run = import_all(&sb, &template, &[]);
    assert!(run.success, "{run:?}");
    for secret in &secrets {
        assert!(!run.stdout.contains(secret.as_str()) && !run.stderr.contains(secret.as_str()));
    }
    assert!(
        run.stdout.contains(" account(s) imported"),
        "{}",
        run.stdout
    );

    // Each logs in with the next code from oathtool.
    let (ga1, ga2, ga3) = (&users[0], &users[1], &users[2]);
    let code = oathtool(&secrets[0], "SHA1", 6, 30, 0);
    sb.pamtester("totp", &ga1.0, format!("{code}\n").as_bytes(), &[])
        .expect(true, "success", "code accepted");
    let counter: u64 = option(&ga2.2, "HOTP_COUNTER").unwrap().parse().unwrap();
    let code = oathtool_hotp(&secrets[1], counter);
    sb.pamtester("totp", &ga2.0, format!("{code}\n").as_bytes(), &[])
        .expect(true, "success", &format!("HOTP counter {counter}"));
    let code = oathtool(&secrets[2], "SHA1", 6, 60, 0);
    sb.pamtester("totp", &ga3.0, format!("{code}\n").as_bytes(), &[])
        .expect(true, "success", "code accepted");
    // A scratch code is a recovery code that works once.
    let scratch = ga1.2.lines().last().unwrap();
    assert_eq!(scratch.len(), 8);
    sb.pamtester("totp", &ga1.0, format!("{scratch}\n").as_bytes(), &[])
        .expect(true, "success", "recovery code");
    sb.pamtester("totp", &ga1.0, format!("{scratch}\n").as_bytes(), &[])
        .expect(false, "denied", "already used");

    // Run again: they are active now, so nothing changes without --force.
    let after = snapshot(&sb.root);
    let run = import_all(&sb, &template, &[]);
    assert!(
        !run.success && run.stderr.contains("active enrollment"),
        "{run:?}"
    );
    assert_eq!(snapshot(&sb.root), after);
}

/// The arguments of a google-authenticator line that mean the same here.
const SAME_ARGS: &str =
    "[authtok_prompt=Token please: ] noskewadj no_increment_hotp echo_verification_code nullok";

/// The module's answer through the harness that answers every prompt and
/// prints how it was asked.
fn conv_run(sb: &Sandbox, harness: &Path, service: &str, user: &str, code: &str) -> PamRun {
    let mut cmd = Command::new(harness);
    pam_wrapped(&mut cmd, sb).args([service, user, "answer-all", code]);
    run_with_input(&mut cmd, b"")
}

#[test]
fn a_google_authenticator_stack_works_the_same_or_names_the_equivalent() {
    require_tool("google-authenticator", "libpam-google-authenticator");
    let _homes = homes();
    let user = "pamtotp-ga4";
    let home = account_with_home(user);
    let file = google_authenticator(user, &home, &["-t", "-D", "-u", "-w", "3", "-e", "2"]);
    // The real module reads ~/.google_authenticator by default.
    let default_file = home.join(".google_authenticator");
    std::fs::copy(home.join(GA_FILE), &default_file).unwrap();
    chown(&default_file, Some(uid_of(user)), None).unwrap();
    std::fs::set_permissions(&default_file, std::fs::Permissions::from_mode(0o400)).unwrap();
    let secret = file.lines().next().unwrap().to_owned();

    let sb = Sandbox::new("ga-args");
    let harness = build_c_harness("pam_conv_modes", &sb.root);
    sb.write_record(user, &secret, "SHA1", 6, 30, "active");
    sb.raw_service(
        "ga",
        &format!("auth required pam_google_authenticator.so {SAME_ARGS}\n"),
    );
    // The same line with the module's name changed (and the sandbox's config).
    sb.raw_service(
        "totp",
        &format!("auth required {{module}} config={{config}} {SAME_ARGS}\n"),
    );

    let code = oathtool(&secret, "SHA1", 6, 30, 0);
    let theirs = conv_run(&sb, &harness, "ga", user, &code);
    let ours = conv_run(&sb, &harness, "totp", user, &code);
    let asked = |run: &PamRun| {
        run.stderr
            .lines()
            .filter(|l| l.starts_with("prompt echo="))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(theirs.success, "google-authenticator: {theirs:?}");
    assert!(ours.success, "pam_totp: {ours:?}");
    assert_eq!(
        asked(&ours),
        vec!["prompt echo=on: Token please: ".to_owned()]
    );
    assert_eq!(asked(&theirs), asked(&ours), "asked differently");
    ours.expect(true, "success", "code accepted");
    // Without echo_verification_code the code is asked with echo off.
    sb.raw_service("plain", "auth required {module} config={config}\n");
    let plain = conv_run(&sb, &harness, "plain", user, "000000");
    assert_eq!(
        asked(&plain),
        vec!["prompt echo=off: Verification code: ".to_owned()]
    );

    // noskewadj: a code from a phone 5 steps ahead teaches no skew here.
    sb.raw_service(
        "noskew",
        &format!("auth required {{module}} config={{config}} {SAME_ARGS}\n"),
    );
    sb.raw_service("skew", "auth required {module} config={config}\n");
    let ahead = oathtool(&secret, "SHA1", 6, 30, 150);
    let run = conv_run(&sb, &harness, "noskew", user, &ahead);
    run.expect(false, "denied", "wrong code");
    assert!(
        !run.outcome().contains("clock-skew candidate"),
        "{}",
        run.outcome()
    );
    let run = conv_run(&sb, &harness, "skew", user, &ahead);
    assert!(
        run.outcome().contains("clock-skew candidate"),
        "{}",
        run.outcome()
    );
    let _ = std::fs::remove_file(&default_file);
    let _ = std::fs::remove_file(home.join(GA_FILE));

    // The arguments that do not mean the same: denied, with the equivalent.
    let passwd = sb.root.join("passwd");
    std::fs::write(&passwd, "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    let sshd = sb.root.join("sshd_config");
    std::fs::write(&sshd, "KbdInteractiveAuthentication yes\nUsePAM yes\n").unwrap();
    for (argument, names) in [
        (
            "secret=${HOME}/.google_authenticator",
            "import-google-authenticator --all",
        ),
        ("user=root", "policy.unprivileged"),
        ("no_strict_owner", "mode 0600"),
        ("allowed_perm=0640", "mode 0600"),
        ("allow_readonly", "no equivalent on purpose"),
        ("window=20", "[otp] look_ahead"),
        ("digits=8", "each record carries its own digits"),
        ("usersfile=/etc/users.oath", "import-pam-oath"),
        ("alwaysok", "no equivalent, on purpose"),
    ] {
        sb.raw_service(
            "denied",
            &format!("auth required {{module}} config={{config}} {argument}\n"),
        );
        let run = sb.pamtester("denied", user, format!("{code}\n").as_bytes(), &[]);
        let key = argument.split('=').next().unwrap();
        run.expect(
            false,
            "error",
            &format!("module argument '{key}' is not taken by pam_totp"),
        );
        assert!(
            run.outcome().contains(names),
            "{argument}: {}",
            run.outcome()
        );
        assert!(
            !run.shown().contains("Verification code"),
            "{argument}: asked for a code"
        );

        // check reads the stack as installed, naming pam_totp.so.
        std::fs::write(
            sb.service_dir.join("installed"),
            format!("auth required pam_totp.so {argument}\n"),
        )
        .unwrap();
        let check = totpctl(
            &sb,
            &[
                "check",
                "--pam-dir",
                &sb.service_dir.display().to_string(),
                "--pam-service",
                "installed",
                "--passwd",
                &passwd.display().to_string(),
                "--sshd-config",
                &sshd.display().to_string(),
            ],
        );
        assert!(!check.success, "{argument}: {check:?}");
        let error = check
            .stdout
            .lines()
            .find(|l| l.starts_with("error:") && l.contains("is not taken by pam_totp"))
            .unwrap_or_else(|| panic!("{argument}: no error line in {}", check.stdout));
        assert!(error.contains(names), "{argument}: {error}");
    }
}
