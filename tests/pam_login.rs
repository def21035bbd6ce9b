//! The login path through the real libpam: pamtester drives the built
//! pam_totp.so under pam_wrapper, codes come from oathtool, and each case
//! asserts the PAM result and the one log line that explains it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn enrolled(name: &str) -> Sandbox {
    let sb = Sandbox::new(name);
    sb.service("totp", "");
    sb.enroll("root");
    sb
}

fn answer(code: &str) -> Vec<u8> {
    format!("{code}\n").into_bytes()
}

#[test]
fn good_code_succeeds_and_records_the_step() {
    let sb = enrolled("good");
    let run = sb.pamtester(
        "totp",
        "root",
        &answer(&code_now(SECRET)),
        &["rhost=192.0.2.10"],
    );
    run.expect(true, "success", "code accepted");
    assert!(
        run.shown().contains("Verification code: "),
        "default prompt shown: {}",
        run.shown()
    );
    let line = run.outcome();
    assert!(
        line.starts_with("user=root service=totp rhost=192.0.2.10 result=success"),
        "{line}"
    );
    let state = std::fs::read_to_string(sb.state_path("root")).unwrap();
    assert!(
        state.contains("last_step = ") && state.contains("failures = 0"),
        "{state}"
    );
    assert_eq!(
        std::fs::metadata(sb.state_path("root"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

#[test]
fn codes_are_never_logged() {
    let sb = enrolled("nolog");
    let code = code_now(SECRET);
    let ok = sb.pamtester("totp", "root", &answer(&code), &[]);
    ok.expect(true, "success", "code accepted");
    let wrong = wrong_code(SECRET);
    let bad = sb.pamtester("totp", "root", &answer(&wrong), &[]);
    bad.expect(false, "denied", "wrong code");
    for run in [&ok, &bad] {
        let logs = run.log_lines().join("\n");
        assert!(
            !logs.contains(&code) && !logs.contains(&wrong) && !logs.contains(SECRET),
            "{logs}"
        );
    }
}

#[test]
fn wrong_code_is_refused_and_counted() {
    let sb = enrolled("wrong");
    let run = sb.pamtester("totp", "root", &answer(&wrong_code(SECRET)), &[]);
    run.expect(false, "denied", "wrong code (1 of 10 failures)");
    let state = std::fs::read_to_string(sb.state_path("root")).unwrap();
    assert!(state.contains("failures = 1"), "{state}");
}

#[test]
fn replayed_code_is_refused() {
    let sb = enrolled("replay");
    let code = code_now(SECRET);
    sb.pamtester("totp", "root", &answer(&code), &[])
        .expect(true, "success", "code accepted");
    sb.pamtester("totp", "root", &answer(&code), &[])
        .expect(false, "denied", "replayed code");
}

#[test]
fn sha256_eight_digits_sixty_seconds() {
    let sb = Sandbox::new("sha256");
    sb.service("totp", "");
    sb.write_record("root", SECRET, "SHA256", 8, 60, "active");
    let code = oathtool(SECRET, "SHA256", 8, 60, 0);
    assert_eq!(code.len(), 8);
    sb.pamtester("totp", "root", &answer(&code), &[])
        .expect(true, "success", "code accepted");
    sb.write_record("root", SECRET, "SHA512", 8, 30, "active");
    std::fs::remove_file(sb.state_path("root")).unwrap();
    let code = oathtool(SECRET, "SHA512", 8, 30, 0);
    sb.pamtester("totp", "root", &answer(&code), &[])
        .expect(true, "success", "code accepted");
    // A six-digit answer to an eight-digit record is malformed, not checked.
    sb.pamtester("totp", "root", b"123456\n", &[]).expect(
        false,
        "denied",
        "wrong number of digits",
    );
}

#[test]
fn lockout_starts_after_max_failures_and_ends_after_its_time() {
    let sb = enrolled("lockout");
    sb.write_config("[throttle]\nmax_failures = 3\nlockout_seconds = 3\nbackoff_seconds = 0\nbackoff_max_seconds = 0\n");
    let wrong = wrong_code(SECRET);
    sb.pamtester("totp", "root", &answer(&wrong), &[])
        .expect(false, "denied", "(1 of 3 failures)");
    sb.pamtester("totp", "root", &answer(&wrong), &[])
        .expect(false, "denied", "(2 of 3 failures)");
    sb.pamtester("totp", "root", &answer(&wrong), &[]).expect(
        false,
        "denied",
        "(3 of 3 failures); locked out until",
    );
    // Locked: refused before any prompt, even with a good code, and told when to retry.
    let locked = sb.pamtester("totp", "root", &answer(&code_now(SECRET)), &[]);
    locked.expect(false, "denied", "locked out until");
    assert!(
        !locked.shown().contains("Verification code"),
        "no prompt while locked: {}",
        locked.shown()
    );
    assert!(
        locked
            .shown()
            .contains("Too many failed attempts. Try again after"),
        "{}",
        locked.shown()
    );
    std::thread::sleep(std::time::Duration::from_secs(4));
    sb.pamtester("totp", "root", &answer(&code_now(SECRET)), &[])
        .expect(true, "success", "code accepted");
    let state = std::fs::read_to_string(sb.state_path("root")).unwrap();
    assert!(
        state.contains("failures = 0") && !state.contains("locked_until"),
        "{state}"
    );
}

#[test]
fn unenrolled_policies() {
    let sb = Sandbox::new("unenrolled");
    sb.service("totp", "");
    // Default: deny.
    let run = sb.pamtester("totp", "root", b"", &[]);
    run.expect(false, "denied", "not enrolled; policy denies");
    assert!(
        run.shown().contains("Two-factor login is required"),
        "{}",
        run.shown()
    );
    // A pending record is not an enrollment.
    sb.write_record("root", SECRET, "SHA1", 6, 30, "pending");
    sb.pamtester("totp", "root", b"", &[]).expect(
        false,
        "denied",
        "enrollment pending activation; policy denies",
    );
    std::fs::remove_file(sb.record_path("root")).unwrap();
    // allow: PAM_IGNORE, so the rest of the stack decides.
    sb.write_config("[policy]\nunenrolled = \"allow\"\n");
    sb.pamtester("totp", "root", b"", &[])
        .expect(true, "ignored", "not enrolled; policy allows");
    // nullok is the same as allow.
    sb.write_config("");
    sb.service("nullok", "nullok");
    sb.pamtester("nullok", "root", b"", &[])
        .expect(true, "ignored", "not enrolled; policy allows");
    // allow-until, before the deadline: allowed, and told the date and the command.
    let future = date_from_today(10);
    sb.write_config(&format!(
        "[policy]\nunenrolled = \"allow-until:{future}\"\n"
    ));
    let run = sb.pamtester("totp", "root", b"", &[]);
    run.expect(
        true,
        "ignored",
        &format!("not enrolled; allowed until {future}"),
    );
    assert!(
        run.shown().contains(&future) && run.shown().contains("totpctl enroll"),
        "{}",
        run.shown()
    );
    // The deadline day itself is still allowed.
    let today = date_from_today(0);
    sb.write_config(&format!("[policy]\nunenrolled = \"allow-until:{today}\"\n"));
    sb.pamtester("totp", "root", b"", &[])
        .expect(true, "ignored", "allowed until");
    // After the deadline: denied.
    let past = date_from_today(-1);
    sb.write_config(&format!("[policy]\nunenrolled = \"allow-until:{past}\"\n"));
    let run = sb.pamtester("totp", "root", b"", &[]);
    run.expect(false, "denied", &format!("deadline {past} has passed"));
    assert!(run.shown().contains(&past), "{}", run.shown());
}

#[test]
fn require_and_exempt_groups() {
    ensure_user("pamtotp-it-staff", &["pamtotp-it-staff-g"]);
    ensure_user("pamtotp-it-robot", &["pamtotp-it-robot-g"]);
    let sb = Sandbox::new("groups");
    sb.service("totp", "");
    for user in ["pamtotp-it-staff", "pamtotp-it-robot"] {
        sb.enroll(user);
    }
    sb.write_config("[policy]\nrequire_groups = [\"pamtotp-it-staff-g\"]\n");
    sb.pamtester("totp", "pamtotp-it-staff", b"000000\n", &[])
        .expect(false, "denied", "wrong code");
    sb.pamtester("totp", "pamtotp-it-robot", b"", &[]).expect(
        true,
        "ignored",
        "not in any required group",
    );
    sb.write_config("[policy]\nexempt_groups = [\"pamtotp-it-robot-g\"]\n");
    sb.pamtester("totp", "pamtotp-it-robot", b"", &[]).expect(
        true,
        "ignored",
        "member of exempt group pamtotp-it-robot-g",
    );
    let code = code_now(SECRET);
    sb.pamtester("totp", "pamtotp-it-staff", &answer(&code), &[])
        .expect(true, "success", "code accepted");
    // A group that does not exist is a configuration error, never a way around the code.
    sb.write_config("[policy]\nrequire_groups = [\"pamtotp-no-such-group\"]\n");
    sb.pamtester("totp", "pamtotp-it-robot", b"", &[]).expect(
        false,
        "error",
        "group 'pamtotp-no-such-group' in policy.require_groups does not exist",
    );
}

#[test]
fn forward_pass_splits_password_and_code() {
    // The password ends in a digit on purpose: the split takes exactly the code's length.
    user_with_password("pamtotp-it-fwd", "hunter2");
    let sb = Sandbox::new("forward");
    sb.enroll("pamtotp-it-fwd");
    sb.raw_service("fwd", FORWARD_PASS_STACK);
    let code = code_now(SECRET);
    let run = sb.pamtester(
        "fwd",
        "pamtotp-it-fwd",
        format!("hunter2{code}\n").as_bytes(),
        &[],
    );
    run.expect(true, "success", "code accepted");
    assert!(
        run.shown().contains("Password & verification code: "),
        "{}",
        run.shown()
    );
    // The password handed on is checked by pam_unix: a wrong one fails
    // there, and the pam_totp line after it never runs.
    std::fs::remove_file(sb.state_path("pamtotp-it-fwd")).unwrap();
    let run = sb.pamtester(
        "fwd",
        "pamtotp-it-fwd",
        format!("hunter3{code}\n").as_bytes(),
        &[],
    );
    assert!(!run.success);
    assert!(
        !run.log_lines().iter().any(|l| l.contains("result=")),
        "{:?}",
        run.log_lines()
    );
    assert!(!sb.state_path("pamtotp-it-fwd").exists());
}

#[test]
fn use_and_try_first_pass_take_the_previous_token() {
    let sb = enrolled("firstpass");
    // pam_set_items (from pam_wrapper) plays the earlier module: it copies
    // $PAM_AUTHTOK into the PAM_AUTHTOK item.
    let stack = |args: &str| {
        format!("auth required {{set_items}}\nauth [success=ok default=die] {{module}} config={{config}} {args}\n")
    };
    sb.raw_service("use", &stack("use_first_pass"));
    sb.raw_service("try", &stack("try_first_pass"));
    let with_token = |service: &str, token: &str, input: &[u8]| {
        let mut cmd = sb.pamtester_command(service, "root", &[]);
        cmd.env("PAM_AUTHTOK", token);
        run_with_input(&mut cmd, input)
    };
    let code = code_now(SECRET);
    let run = with_token("use", &code, b"");
    run.expect(true, "success", "code accepted");
    assert!(
        !run.shown().contains("Verification code"),
        "use_first_pass never prompts: {}",
        run.shown()
    );
    // use_first_pass with a token that is no code: denied, never prompted.
    let run = with_token("use", "hunter2", &answer(&code));
    run.expect(false, "denied", "code is not all digits");
    assert!(
        !run.shown().contains("Verification code"),
        "{}",
        run.shown()
    );
    // try_first_pass: a valid code in the token is used...
    std::fs::remove_file(sb.state_path("root")).unwrap();
    let run = with_token("try", &code, b"");
    run.expect(true, "success", "code accepted");
    assert!(
        !run.shown().contains("Verification code"),
        "{}",
        run.shown()
    );
    // ...and a token that is not a code falls back to the prompt.
    std::fs::remove_file(sb.state_path("root")).unwrap();
    let run = with_token("try", "hunter2", &answer(&code));
    assert!(
        run.shown().contains("Verification code"),
        "try_first_pass prompts: {}",
        run.shown()
    );
    run.expect(true, "success", "code accepted");
}

#[test]
fn grace_period_skips_the_code_for_the_same_host_only() {
    let sb = enrolled("grace");
    sb.service("grace", "grace_period=300");
    let code = code_now(SECRET);
    sb.pamtester("grace", "root", &answer(&code), &["rhost=198.51.100.7"])
        .expect(true, "success", "code accepted");
    let run = sb.pamtester("grace", "root", b"", &["rhost=198.51.100.7"]);
    run.expect(true, "success", "grace period");
    assert!(
        !run.shown().contains("Verification code"),
        "{}",
        run.shown()
    );
    sb.pamtester("grace", "root", b"\n", &["rhost=198.51.100.8"])
        .expect(false, "denied", "empty code");
    // Never without a remote host.
    sb.pamtester("grace", "root", b"\n", &[])
        .expect(false, "denied", "empty code");
    // Without the argument there is no grace.
    sb.pamtester("totp", "root", b"\n", &["rhost=198.51.100.7"])
        .expect(false, "denied", "empty code");
}

#[test]
fn bad_answers_are_denied() {
    let sb = enrolled("answers");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"\n".to_vec(), "empty code"),
        (b"   \n".to_vec(), "empty code"),
        (b"abcdef\n".to_vec(), "code is not all digits"),
        (b"12345\n".to_vec(), "wrong number of digits"),
        (b"1234567\n".to_vec(), "wrong number of digits"),
        (
            format!("{}\n", "9".repeat(10_000)).into_bytes(),
            "code too long",
        ),
        (b"\xff\xfe\xfd\xfc\xfb\xfa\n".to_vec(), "not valid UTF-8"),
    ];
    for (input, reason) in cases {
        sb.pamtester("totp", "root", &input, &[])
            .expect(false, "denied", reason);
    }
    assert!(
        !sb.state_path("root").exists(),
        "malformed answers are not counted as guesses"
    );
}

#[test]
fn unsafe_record_files_are_refused() {
    ensure_user("pamtotp-it-owner", &[]);
    let sb = enrolled("badfiles");
    let record = sb.record_path("root");
    let code = || answer(&code_now(SECRET));

    // A symlink to a valid record.
    let real = sb.root.join("real.toml");
    std::fs::rename(&record, &real).unwrap();
    std::os::unix::fs::symlink(&real, &record).unwrap();
    sb.pamtester("totp", "root", &code(), &[])
        .expect(false, "error", "is a symbolic link");
    std::fs::remove_file(&record).unwrap();

    // Readable by others.
    sb.enroll("root");
    std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o644)).unwrap();
    sb.pamtester("totp", "root", &code(), &[])
        .expect(false, "error", "has mode 0644");

    // Owned by someone else.
    sb.enroll("root");
    let status = Command::new("chown")
        .arg("pamtotp-it-owner")
        .arg(&record)
        .status()
        .unwrap();
    assert!(status.success());
    sb.pamtester("totp", "root", &code(), &[])
        .expect(false, "error", "expected uid 0");

    // Hard-linked.
    sb.enroll("root");
    std::fs::hard_link(&record, sb.root.join("hardlink")).unwrap();
    sb.pamtester("totp", "root", &code(), &[])
        .expect(false, "error", "has 2 hard links");
    std::fs::remove_file(sb.root.join("hardlink")).unwrap();

    // Oversized (70 KB of comments around a valid record).
    let big = format!("{}\nversion = 1\nstatus = \"active\"\nsecret = \"{SECRET}\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\n", "# padding\n".repeat(7_000));
    sb.write_record_text("root", &big);
    sb.pamtester("totp", "root", &code(), &[]).expect(
        false,
        "error",
        "larger than the limit of 65536",
    );

    // Garbage and an unknown key.
    sb.write_record_text("root", "this is [[not toml");
    sb.pamtester("totp", "root", &code(), &[]).expect(
        false,
        "error",
        "is invalid: line 1: not valid TOML",
    );
    sb.write_record_text("root", &format!("version = 1\nstatus = \"active\"\nsecret = \"{SECRET}\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\nalwaysok = true\n"));
    let run = sb.pamtester("totp", "root", &code(), &[]);
    run.expect(false, "error", "unknown field `alwaysok`");
    assert!(!run.outcome().contains(SECRET));
}

#[test]
fn bad_module_arguments_and_config_deny() {
    let sb = enrolled("badargs");
    let code = || answer(&code_now(SECRET));
    sb.service("unknown", "alwaysok");
    sb.pamtester("unknown", "root", &code(), &[]).expect(
        false,
        "error",
        "module argument 'alwaysok' is not taken by pam_totp; it is pam_oath's alwaysok: \
         pam_totp has no equivalent, on purpose",
    );
    sb.service("dup", "debug debug");
    sb.pamtester("dup", "root", &code(), &[])
        .expect(false, "error", "given twice");
    sb.service("num", "grace_period=soon");
    sb.pamtester("num", "root", &code(), &[]).expect(
        false,
        "error",
        "grace_period= needs whole seconds",
    );
    // A broken config file denies everyone.
    std::fs::write(&sb.config, "[policy]\nunenrolled = \"allow\"\nbogus = 1\n").unwrap();
    sb.pamtester("totp", "root", &code(), &[])
        .expect(false, "error", "unknown field `bogus`");
    std::fs::write(&sb.config, "").unwrap();
    std::fs::set_permissions(&sb.config, std::fs::Permissions::from_mode(0o666)).unwrap();
    sb.pamtester("totp", "root", &code(), &[]).expect(
        false,
        "error",
        "must not be writable by group or others",
    );
    std::fs::remove_file(&sb.config).unwrap();
    sb.pamtester("totp", "root", &code(), &[])
        .expect(false, "error", "does not exist");
}

#[test]
fn invalid_user_names_are_refused_before_any_file_access() {
    let sb = enrolled("names");
    for (user, reason) in [
        ("../root", "invalid user name: user name contains '/'"),
        (".hidden", "invalid user name: user name starts with '.'"),
        ("nosuchuser-pamtotp", "unknown user"),
    ] {
        sb.pamtester("totp", user, b"000000\n", &[])
            .expect(false, "denied", reason);
    }
    let long = "a".repeat(300);
    sb.pamtester("totp", &long, b"000000\n", &[])
        .expect(false, "denied", "is 300 bytes long");
}

#[test]
fn debug_adds_the_effective_config() {
    let sb = enrolled("debug");
    sb.service("dbg", "debug");
    let run = sb.pamtester("dbg", "root", &answer(&code_now(SECRET)), &[]);
    run.expect(true, "success", "code accepted");
    let lines = run.log_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("effective config from") && l.contains("max_failures: 10")),
        "{lines:?}"
    );
}

#[test]
fn corrupt_state_is_logged_and_treated_as_fresh() {
    let sb = enrolled("corrupt");
    std::fs::write(sb.state_path("root"), "version = 1\nlast_step = \"garbage").unwrap();
    std::fs::set_permissions(
        sb.state_path("root"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let run = sb.pamtester("totp", "root", &answer(&code_now(SECRET)), &[]);
    run.expect(true, "success", "code accepted");
    assert!(run.outcome().contains("is corrupt"), "{}", run.outcome());
    let state = std::fs::read_to_string(sb.state_path("root")).unwrap();
    assert!(
        state.contains("last_step"),
        "the state is rewritten whole: {state}"
    );
}

#[test]
fn unreadable_record_when_running_unprivileged() {
    // A screen locker runs the stack as the user: the root-only record cannot be read.
    let sb = enrolled("locker");
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "pamtester",
    ]);
    for (k, v) in [
        ("PAM_WRAPPER", "1"),
        ("PAM_WRAPPER_DEBUGLEVEL", "2"),
        ("LD_PRELOAD", "libpam_wrapper.so"),
    ] {
        cmd.env(k, v);
    }
    cmd.env("PAM_WRAPPER_SERVICE_DIR", &sb.service_dir)
        .args(["totp", "root", "authenticate"]);
    let run = run_with_input(&mut cmd, b"000000\n");
    run.expect(
        false,
        "denied",
        "the module runs as uid 65534 without the privilege to read it",
    );
}

#[test]
fn recovery_codes_work_once_each() {
    let sb = enrolled("recovery");
    let codes = sb.add_recovery_codes("root");
    // The state an activation leaves (without one, every recovery code
    // counts as used: tests/state_loss.rs).
    sb.write_state_text("root", "version = 1\n");
    let first = codes[0].clone();
    let run = sb.pamtester("totp", "root", &answer(&first), &[]);
    run.expect(true, "success", "recovery code 1 used, 9 left");
    assert!(
        run.shown().contains("Recovery code accepted. 9 left."),
        "{}",
        run.shown()
    );
    assert!(!run.outcome().contains(&first));
    sb.pamtester("totp", "root", &answer(&first), &[]).expect(
        false,
        "denied",
        "recovery code 1 was already used",
    );
    sb.pamtester("totp", "root", &answer(&codes[1].to_lowercase()), &[])
        .expect(true, "success", "recovery code 2 used, 8 left");
    sb.pamtester("totp", "root", b"0000-0000-0000-0000\n", &[])
        .expect(false, "denied", "wrong recovery code");
}
