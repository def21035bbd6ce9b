//! totpctl's exact output and exit status for help and for every bad input the
//! issue lists; each bad input must leave the store exactly as it was.
//!
//! Help texts are compared with files in `tests/snapshots/`; run with
//! `UPDATE_SNAPSHOTS=1` to rewrite them after a deliberate change.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use support::{Env, Run, TestUser, TOTPCTL};

fn check_snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, actual).unwrap();
        return;
    }
    let expected =
        fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing snapshot {}", path.display()));
    assert_eq!(actual, expected, "output differs from {}", path.display());
}

/// Exit status, nothing on stdout, exactly `stderr`.
fn assert_fails(run: &Run, code: i32, stderr: &str) {
    assert_eq!(run.stderr, stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(run.code, Some(code), "{run:?}");
}

#[test]
fn help_texts() {
    let env = Env::new("help");
    for (args, snapshot) in [
        (&["--help"][..], "help.txt"),
        (&["enroll", "--help"][..], "help-enroll.txt"),
        (&["activate", "--help"][..], "help-activate.txt"),
        (&["status", "--help"][..], "help-status.txt"),
        (
            &["import-google-authenticator", "--help"][..],
            "help-import.txt",
        ),
    ] {
        let run = env.run(args);
        assert_eq!(run.code, Some(0), "{args:?}");
        assert_eq!(run.stderr, "");
        check_snapshot(snapshot, &run.stdout);
    }
    // No subcommand is a usage error.
    let run = env.run(&[]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .starts_with("error: 'totpctl' requires a subcommand but one was not provided"),
        "{}",
        run.stderr
    );
    // Without any argument at all, the help is shown (on stderr, status 2).
    let bare = Run::from(std::process::Command::new(TOTPCTL).output().unwrap());
    assert_eq!(bare.code, Some(2));
    assert!(bare.stderr.starts_with("Enroll and manage pam_totp"));
}

#[test]
fn unknown_user() {
    let env = Env::new("unknown-user");
    let before = env.snapshot();
    let run = env.run(&["enroll", "pamtotp-no-such-user"]);
    assert_fails(
        &run,
        1,
        "totpctl: there is no user 'pamtotp-no-such-user' on this system; nothing was changed. \
         Check the spelling with 'getent passwd pamtotp-no-such-user', or create the account first.\n",
    );
    assert_eq!(env.snapshot(), before);
    assert!(!env.dir.join("pamtotp-no-such-user-totp.jpg").exists());
}

/// `status`, `unlock` and `reset` of a name that is no account and has no
/// record: refused as `passwd -S` refuses it, and no lock file is left
/// behind. A deleted account's record can still be looked at, unlocked and
/// reset.
#[test]
fn status_unlock_and_reset_of_an_unknown_user() {
    let env = Env::new("unknown-admin");
    let before = env.snapshot();
    for command in ["status", "unlock", "reset"] {
        let run = env.run(&[command, "pamtotp-no-such-user"]);
        assert_fails(
            &run,
            1,
            "totpctl: there is no user 'pamtotp-no-such-user' on this system; nothing was \
             changed. Check the spelling with 'getent passwd pamtotp-no-such-user', or create \
             the account first.\n",
        );
    }
    assert_eq!(env.snapshot(), before);
    let left: Vec<_> = fs::read_dir(env.dir.join("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "files left in state/: {left:?}");

    let deleted = "pamtotp-deleted-account";
    fs::write(
        env.record_path(deleted),
        "version = 1\nstatus = \"active\"\nsecret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\n\
         algorithm = \"SHA1\"\ndigits = 6\nperiod = 30\n",
    )
    .unwrap();
    fs::set_permissions(env.record_path(deleted), fs::Permissions::from_mode(0o600)).unwrap();
    for command in ["status", "unlock", "reset"] {
        let run = env.run(&[command, deleted]);
        assert_eq!(run.code, Some(0), "{command}: {run:?}");
    }
    assert!(env.record(deleted).is_none());
}

#[test]
fn user_names_with_a_slash_or_control_characters() {
    let env = Env::new("bad-names");
    let before = env.snapshot();
    let run = env.run(&["enroll", "../root"]);
    assert_fails(
        &run,
        2,
        "totpctl: '../root' is not a valid user name (user name contains '/'). Give the login \
         name exactly as 'getent passwd' shows it.\n",
    );
    let run = env.run(&["enroll", "ro\u{7}ot\n"]);
    assert_fails(
        &run,
        2,
        "totpctl: 'ro\\x07ot\\x0a' is not a valid user name (user name contains control or blank \
         characters). Give the login name exactly as 'getent passwd' shows it.\n",
    );
    for command in ["activate", "status", "disable", "reset", "unlock"] {
        let run = env.run(&[command, "a/b"]);
        assert_eq!(run.code, Some(2), "{command}: {run:?}");
        assert!(run.stderr.contains("contains '/'"), "{command}: {run:?}");
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn qr_path_that_exists_is_a_symlink_or_has_no_directory() {
    let env = Env::new("qr-paths");
    let before = env.snapshot();

    let existing = env.dir.join("existing.jpg");
    fs::write(&existing, b"keep me").unwrap();
    let run = env.run(&["enroll", "root", "--qr", existing.to_str().unwrap()]);
    assert_fails(
        &run,
        1,
        &format!(
            "totpctl: {} already exists; nothing was changed. Choose another file with --qr \
             FILE, or overwrite it with --force.\n",
            existing.display()
        ),
    );
    assert_eq!(fs::read(&existing).unwrap(), b"keep me");

    let target = env.dir.join("target.jpg");
    let link = env.dir.join("link.jpg");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for force in [false, true] {
        let mut args = vec!["enroll", "root", "--qr", link.to_str().unwrap()];
        if force {
            args.push("--force");
        }
        let run = env.run(&args);
        assert_fails(
            &run,
            1,
            &format!(
                "totpctl: {} is a symbolic link, and totpctl never writes through one; nothing \
                 was changed. Choose another file with --qr FILE.\n",
                link.display()
            ),
        );
        assert!(!target.exists());
    }

    let missing = env.dir.join("no-such-dir/qr.jpg");
    let run = env.run(&["enroll", "root", "--qr", missing.to_str().unwrap()]);
    assert_fails(
        &run,
        1,
        &format!(
            "totpctl: the directory for {} does not exist; nothing was changed. Create it, or \
             choose another file with --qr FILE.\n",
            missing.display()
        ),
    );
    assert_eq!(env.snapshot(), before);
}

#[test]
fn bad_parameters_are_usage_errors() {
    let env = Env::new("bad-params");
    let before = env.snapshot();
    let run = env.run(&["enroll", "root", "--digits", "7"]);
    assert_fails(
        &run,
        2,
        "error: invalid value '7' for '--digits <6|8>': digits must be 6 or 8, not 7\n\n\
         For more information, try '--help'.\n",
    );
    let run = env.run(&["enroll", "root", "--digits", "six"]);
    assert_fails(
        &run,
        2,
        "error: invalid value 'six' for '--digits <6|8>': digits must be 6 or 8, not 'six'\n\n\
         For more information, try '--help'.\n",
    );
    let run = env.run(&["enroll", "root", "--period", "45"]);
    assert_fails(
        &run,
        2,
        "error: invalid value '45' for '--period <30|60>': period must be 30 or 60 seconds, not 45\n\n\
         For more information, try '--help'.\n",
    );
    let run = env.run(&["enroll", "root", "--algorithm", "MD5"]);
    assert_fails(
        &run,
        2,
        "error: invalid value 'MD5' for '--algorithm <SHA1|SHA256|SHA512>': unknown algorithm \
         'MD5' (expected SHA1, SHA256 or SHA512)\n\nFor more information, try '--help'.\n",
    );
    assert_eq!(env.snapshot(), before);
    assert!(!env.dir.join("root-totp.jpg").exists());
}

#[test]
fn garbage_codes_leave_the_enrollment_pending() {
    let env = Env::new("garbage-code");
    let run = env.run(&["enroll", "root"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let before = env.snapshot();
    for (code, why) in [
        ("12ab56", "code is not all digits"),
        ("12345", "code has the wrong number of digits"),
        ("1234567", "code has the wrong number of digits"),
        ("ABCD-EFGH-JKMN-PQRS", "code is not all digits"),
    ] {
        let run = env.run_with_input(&["activate", "root"], &format!("{code}\n"));
        assert_fails(
            &run,
            1,
            &format!(
                "totpctl: the code was not accepted ({why}); 'root' stays pending. Type the \
                 digits the app shows now. Then run 'totpctl activate root'.\n"
            ),
        );
    }
    // A well-formed code for some other secret (the RFC 6238 test key): the
    // enrollment stays pending, and the attempt is counted like a login's
    // (activation is throttled).
    let other = support::oathtool(
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
        "SHA1",
        6,
        30,
        support::now(),
    );
    let run = env.run_with_input(&["activate", "root"], &format!("{other}\n"));
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("(wrong code)") || run.stdout.contains("accepted"),
        "{run:?}"
    );
    let before = if run.code == Some(1) {
        let after = env.snapshot();
        assert_eq!(after.get("users/root.toml"), before.get("users/root.toml"));
        assert_eq!(env.state("root").failures, 1);
        after
    } else {
        before
    };
    // Through stdin, as enroll reads it when no terminal is attached.
    let run = env.run_with_input(&["activate", "root"], "not a code\n");
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("code is not all digits"), "{run:?}");
    let run = env.run_with_input(&["activate", "root"], "");
    assert_fails(
        &run,
        1,
        "totpctl: no code was given; 'root' stays pending. Run 'totpctl activate root' and type \
         the code the app shows, or pipe it on standard input.\n",
    );
    assert_eq!(env.snapshot(), before);
    assert!(env.record("root").unwrap().contains("status = \"pending\""));
}

/// `activate --code` still works, but says that the code is in the
/// process list (finding 11 of issue 9); standard input is the way.
#[test]
fn code_on_the_command_line_warns() {
    let env = Env::new("code-argv");
    let run = env.run(&["enroll", "root"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let secret = support::secret_of(&run.uri());
    let warning = "totpctl: warning: --code puts the code in the process list, where other users \
                   can read it; pipe it on standard input instead (echo CODE | totpctl activate)\n";
    let run = env.run(&["activate", "root", "--code", ""]);
    assert_fails(
        &run,
        1,
        &format!(
            "{warning}totpctl: the code was not accepted (empty code); 'root' stays pending. Type \
             the digits the app shows now. Then run 'totpctl activate root'.\n"
        ),
    );
    let code = support::oathtool(&secret, "SHA1", 6, 30, support::now());
    let run = env.run(&["activate", "root", "--code", &code]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stderr, warning);
    assert!(env.record("root").unwrap().contains("status = \"active\""));
    // Without --code, no warning.
    let run = env.run(&["status", "root"]);
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""));
}

/// An issuer with a colon (the otpauth URI's separator) or an invisible
/// bidi or format character is refused before anything is created, with a
/// message that says which.
#[test]
fn issuer_with_a_colon_or_bidi_character_is_refused() {
    let env = Env::new("issuer");
    let before = env.snapshot();
    for (issuer, why) in [
        (
            "a:b",
            "the issuer contains a colon (:), which the otpauth URI uses to separate the issuer \
             from the account name",
        ),
        (
            "Bank\u{202E}gnp.",
            "the issuer contains the invisible bidi or format character U+202E, which makes apps \
             show other text than is stored",
        ),
        (
            "a\u{2066}b",
            "the issuer contains the invisible bidi or format character U+2066, which makes apps \
             show other text than is stored",
        ),
    ] {
        let run = env.run(&["enroll", "root", "--issuer", issuer]);
        assert_fails(
            &run,
            2,
            &format!(
                "error: invalid value '{issuer}' for '--issuer <NAME>': {why}\n\nFor more \
                 information, try '--help'.\n"
            ),
        );
        assert_eq!(env.snapshot(), before);
        assert!(!env.dir.join("root-totp.jpg").exists());
        assert!(fs::read_dir(env.dir.join("state"))
            .unwrap()
            .next()
            .is_none());
    }
    // From the config file, the error says so.
    let config = fs::read_to_string(&env.config).unwrap();
    fs::write(
        &env.config,
        config.replace("issuer = \"Test Host\"", "issuer = \"ACME: Prod\""),
    )
    .unwrap();
    let run = env.run(&["enroll", "root"]);
    assert_fails(
        &run,
        2,
        "totpctl: the issuer from [enroll] issuer in the config file cannot be used: the issuer \
         contains a colon (:), which the otpauth URI uses to separate the issuer from the \
         account name; nothing was changed. Give another with --issuer, or set [enroll] issuer \
         in the config file.\n",
    );
    assert_eq!(env.snapshot(), before);
    fs::write(&env.config, config).unwrap();
    let run = env.run(&["enroll", "root", "--issuer", "Müller & Söhne"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run
        .uri()
        .contains("&issuer=M%C3%BCller%20%26%20S%C3%B6hne&"));
}

#[test]
fn corrupt_record_is_reported_and_kept() {
    let env = Env::new("corrupt");
    let path = env.record_path("root");
    fs::write(&path, "version = 1\nstatus = \"active\"\nsecret = 12\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let before = env.snapshot();
    let expected = format!(
        "totpctl: user record {} is invalid: line 3: a value has the wrong type; nothing was \
         changed. Fix the file by hand, replace it with --force, or remove the enrollment with \
         'totpctl reset root'.\n",
        path.display()
    );
    for args in [
        &["enroll", "root"][..],
        &["activate", "root"][..],
        &["status", "root"][..],
        &["recovery-codes", "root", "--regenerate"][..],
    ] {
        let run = env.run(args);
        assert_fails(&run, 1, &expected);
    }
    assert_eq!(env.snapshot(), before);
    assert!(!env.dir.join("root-totp.jpg").exists());
}

#[test]
fn active_enrollment_needs_force() {
    let env = Env::new("needs-force");
    let path = env.record_path("root");
    fs::write(
        &path,
        "version = 1\nstatus = \"active\"\nsecret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\n",
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let before = env.snapshot();
    let run = env.run(&["enroll", "root"]);
    assert_fails(
        &run,
        1,
        "totpctl: 'root' already has an active enrollment; nothing was changed. To replace it \
         (the current app entry stops working), run 'totpctl enroll root --force'.\n",
    );
    let run = env.run(&["activate", "root"]);
    assert_fails(
        &run,
        1,
        "totpctl: 'root' is already active; there is nothing to activate. 'totpctl status root' \
         shows the enrollment.\n",
    );
    assert_eq!(env.snapshot(), before);
    assert!(!env.dir.join("root-totp.jpg").exists());
}

#[test]
fn not_enrolled() {
    let env = Env::new("not-enrolled");
    let run = env.run(&["activate", "root"]);
    assert_fails(
        &run,
        1,
        "totpctl: 'root' is not enrolled. Start with 'totpctl enroll root'.\n",
    );
    let run = env.run(&["disable", "root"]);
    assert_fails(
        &run,
        1,
        "totpctl: 'root' is not enrolled. Start with 'totpctl enroll root'.\n",
    );
    let run = env.run(&["status", "root"]);
    assert_eq!(run.code, Some(0));
    assert_eq!(
        run.stdout,
        "user:            root\nstatus:          not enrolled\n"
    );
    let run = env.run(&["status", "root", "--json"]);
    assert_eq!(
        run.stdout,
        "{\"user\":\"root\",\"status\":\"not_enrolled\",\"store\":\"files\",\"store_writes\":true}\n"
    );
    let run = env.run(&["list"]);
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), ""));
    let run = env.run(&["list", "--json"]);
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), "[]\n"));
    assert!(env.snapshot().is_empty());
}

#[test]
fn missing_config_file_given_with_config() {
    let env = Env::new("no-config");
    let missing = env.dir.join("nope.toml");
    let run = std::process::Command::new(TOTPCTL)
        .arg("--config")
        .arg(&missing)
        .args(["status", "root"])
        .output()
        .unwrap();
    let run = Run::from(run);
    assert_fails(
        &run,
        1,
        &format!(
            "totpctl: config {}: does not exist. Fix the config file (see pam_totp.toml(5)) or \
             point --config at another one.\n",
            missing.display()
        ),
    );
}

#[test]
fn non_root_callers_are_refused() {
    let env = Env::new("non-root");
    let user = TestUser::new("pamtotp-cli-nr", &env);
    let (uid, gid) = user.uid_gid();
    for command in ["enroll", "activate", "status", "list", "reset", "unlock"] {
        let mut args = vec![
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--clear-groups".into(),
            TOTPCTL.into(),
            "--config".into(),
            env.config.display().to_string(),
            command.into(),
        ];
        if command != "list" {
            args.push("root".into());
        }
        let out = std::process::Command::new("setpriv")
            .args(&args)
            .current_dir(&user.home)
            .output()
            .expect("run setpriv");
        let run = Run::from(out);
        assert_fails(
            &run,
            1,
            &format!(
                "totpctl: 'totpctl {command}' must be run as root: the user records and login \
                 state are readable and writable only by root, and self-service is not enabled \
                 on this system. Run it again with sudo, or ask an administrator to set up \
                 two-factor login for you.\n"
            ),
        );
    }
    assert!(env.snapshot().is_empty());
}

/// A reader that goes away (`totpctl status root | head -0`) ends the run
/// with the status of a program killed by SIGPIPE and nothing on stderr,
/// not with a panic ("failed printing to stdout"). Before, every one of
/// these panicked with status 101.
#[test]
fn a_reader_that_goes_away_ends_the_run_quietly() {
    use std::os::fd::OwnedFd;
    use std::process::Stdio;
    let env = Env::new("reader-gone");
    let run = env.run(&["enroll", "root"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    for args in [
        &["status", "root"][..],
        &["--json", "status", "root"],
        &["list"],
        &["generate-completions", "bash"],
    ] {
        // A pipe whose reading end is already closed: the first write fails
        // with EPIPE.
        let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
        drop(read);
        let out = env
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(write))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
}
