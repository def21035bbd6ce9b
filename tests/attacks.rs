//! The attacks of the security review, each performed against the real
//! module through the real libpam (pamtester under pam_wrapper). Every test
//! here failed on the release before "count before compare".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn answer(code: &str) -> Vec<u8> {
    format!("{code}\n").into_bytes()
}

/// One login through the real libpam with every file write failing (EFBIG):
/// RLIMIT_FSIZE 0 and SIGXFSZ ignored, as a caller of a setuid PAM client
/// can arrange (tests/harness/pam_fsize.c).
fn login_without_writes(sb: &Sandbox, harness: &std::path::Path, code: &str) -> (PamRun, Duration) {
    let mut cmd = Command::new(harness);
    cmd.args(["totp", "root"]);
    pam_wrapped(&mut cmd, sb);
    run_timed(&mut cmd, &answer(code))
}

/// Finding 1: a failure that cannot be written must not let the code be
/// compared. Right and wrong codes then give the same result, the same
/// output and the same delay, and nothing is used up.
#[test]
fn a_failure_that_cannot_be_written_is_never_compared() {
    let sb = Sandbox::new("fsize");
    sb.write_config("[throttle]\nbackoff_seconds = 1\nbackoff_max_seconds = 1\n");
    sb.service("totp", "");
    sb.enroll("root");
    let harness = build_c_harness("pam_fsize", &sb.root);
    let right = code_now(SECRET);
    let wrong = wrong_code(SECRET);
    let (r, r_time) = login_without_writes(&sb, &harness, &right);
    let (w, w_time) = login_without_writes(&sb, &harness, &wrong);
    for (name, run) in [("right", &r), ("wrong", &w)] {
        run.expect(false, "error", "the failure could not be recorded");
        assert!(!run.success, "{name}");
    }
    // What the caller sees: identical output, identical delay (both waited
    // the backoff of a first failure).
    assert_eq!(r.stdout, w.stdout);
    assert!(r.stdout.contains("Authentication failure"), "{}", r.stdout);
    for (name, t) in [("right", r_time), ("wrong", w_time)] {
        assert!(t >= Duration::from_secs(1), "{name} took {t:?}");
    }
    let gap = r_time.abs_diff(w_time);
    assert!(gap < Duration::from_millis(500), "{r_time:?} vs {w_time:?}");
    // The right code was never compared, so it was not used up.
    assert!(!sb.state_path("root").exists());
    std::thread::sleep(Duration::from_millis(1100));
    sb.pamtester("totp", "root", &answer(&right), &[])
        .expect(true, "success", "code accepted");
}

/// A pamtester login of root in the background, `code` already typed.
fn spawn_login(sb: &Sandbox, code: &str, stderr: Stdio) -> std::process::Child {
    use std::io::Write;
    let mut child = sb
        .pamtester_command("totp", "root", &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&answer(code))
        .unwrap();
    child
}

/// Finding 1, the other half: a failure is on disk before the answer is
/// compared, so killing the process during its backoff skips nothing, and an
/// attempt before the backoff has run out is refused without a compare.
#[test]
fn the_backoff_is_kept_in_the_state_not_in_a_sleep() {
    let sb = Sandbox::new("notbefore");
    sb.write_config("[throttle]\nbackoff_seconds = 30\nbackoff_max_seconds = 30\n");
    sb.service("totp", "");
    sb.enroll("root");
    let starting = pam_start_guard();
    let mut child = spawn_login(&sb, &wrong_code(SECRET), Stdio::null());
    // Wait for the failure to reach the disk, then kill the guesser in its sleep.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(sb.state_path("root")).is_ok_and(|s| s.contains("failures = 1"))
    {
        assert!(Instant::now() < deadline, "the failure was never written");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(starting);
    child.kill().unwrap();
    child.wait().unwrap();
    // A killed pamtester leaves pam_wrapper's copy of the services behind.
    remove_pam_wrapper_copies(&sb);
    let state = std::fs::read_to_string(sb.state_path("root")).unwrap();
    assert!(state.contains("not_before = "), "{state}");
    // The next guess, even the right code, is refused unread.
    let starting = pam_start_guard();
    let mut child = spawn_login(&sb, &code_now(SECRET), Stdio::piped());
    // It answers after the backoff runs out; read its line, then stop waiting.
    let stderr = child.stderr.take().unwrap();
    let line = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("result="))
        .unwrap();
    drop(starting);
    child.kill().unwrap();
    child.wait().unwrap();
    remove_pam_wrapper_copies(&sb);
    assert!(
        line.contains("result=denied") && line.contains("too soon after a failed attempt"),
        "{line}"
    );
    let after = std::fs::read_to_string(sb.state_path("root")).unwrap();
    assert_eq!(state, after, "a refused-unread attempt changes nothing");
}

/// Finding 3: the lock is never held across the prompt. One login sits at
/// the code prompt; a second login of the same user completes meanwhile.
#[test]
fn an_abandoned_prompt_blocks_no_other_login() {
    let sb = Sandbox::new("abandoned");
    sb.service("totp", "");
    sb.enroll("root");
    let (mut sitting, _stderr, _) = at_the_prompt(&sb);
    let start = Instant::now();
    let run = sb.pamtester("totp", "root", &answer(&code_now(SECRET)), &[]);
    let took = start.elapsed();
    // End of input: the sitting login gives up and exits on its own.
    drop(sitting.stdin.take());
    sitting.wait().unwrap();
    run.expect(true, "success", "code accepted");
    assert!(took < Duration::from_secs(2), "second login took {took:?}");
}

/// Finding 3: locks are taken with a deadline. A process stalled while
/// holding a user's lock makes totpctl give up with a clear error instead of
/// hanging; `status` and `list` take no lock at all.
#[test]
fn a_stalled_lock_holder_hangs_nothing() {
    let sb = Sandbox::new("stalled");
    sb.enroll("root");
    let lock = sb.state_dir.join("root.lock");
    std::fs::write(&lock, b"").unwrap();
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let totpctl = |args: &[&str]| {
        let start = Instant::now();
        let out = Command::new(totpctl_path())
            .arg("--config")
            .arg(&sb.config)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (out, start.elapsed())
    };
    for args in [&["status", "root"][..], &["list"]] {
        let (out, took) = totpctl(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(took < Duration::from_secs(2), "{args:?} took {took:?}");
    }
    for args in [&["unlock", "root"][..], &["reset", "root"]] {
        let (out, took) = totpctl(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr.contains(&lock.display().to_string()) && stderr.contains("gave up after"),
            "{args:?}: {stderr}"
        );
        assert!(took < Duration::from_secs(8), "{args:?} took {took:?}");
    }
    // A login is refused the same way, with one line naming the lock.
    sb.service("totp", "");
    let start = Instant::now();
    let run = sb.pamtester("totp", "root", &answer(&code_now(SECRET)), &[]);
    assert!(start.elapsed() < Duration::from_secs(8));
    run.expect(false, "error", "root.lock is held by another process");
    holder.kill().unwrap();
    holder.wait().unwrap();
    remove_pam_wrapper_copies(&sb);
    assert!(sb.record_path("root").exists(), "reset did nothing");
}

/// Finding 6: a hard cap across lockouts. After 100 consecutive failures the
/// account stays locked, whatever the time, until `totpctl unlock`.
#[test]
fn the_hard_cap_holds_until_unlock() {
    let sb = Sandbox::new("hardcap");
    sb.write_config(
        "[throttle]\nmax_failures = 25\nlockout_seconds = 1\nbackoff_seconds = 0\nbackoff_max_seconds = 0\n",
    );
    sb.service("totp", "");
    sb.enroll("root");
    let wrong = answer(&wrong_code(SECRET));
    let mut counted = 0;
    while counted < 100 {
        let run = sb.pamtester("totp", "root", &wrong, &[]);
        let line = run.outcome();
        assert!(!run.success);
        if line.contains("reason=\"locked out until") {
            std::thread::sleep(Duration::from_millis(1100));
            continue;
        }
        assert!(line.contains("wrong code"), "{line}");
        counted += 1;
    }
    std::thread::sleep(Duration::from_millis(1100));
    let run = sb.pamtester("totp", "root", &answer(&code_now(SECRET)), &[]);
    run.expect(
        false,
        "denied",
        "locked after 100 consecutive failures, until an administrator runs totpctl unlock",
    );
    assert!(run.shown().contains("until an administrator unlocks it"));
    let status = Command::new(totpctl_path())
        .arg("--config")
        .arg(&sb.config)
        .args(["status", "root"])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("until 'totpctl unlock root'"), "{status}");
    let out = Command::new(totpctl_path())
        .arg("--config")
        .arg(&sb.config)
        .args(["unlock", "root"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    sb.pamtester("totp", "root", &answer(&code_now(SECRET)), &[])
        .expect(true, "success", "code accepted");
}

/// Finding 4: with the documented forward_pass stack nothing is counted, used
/// up or revealed before the password is verified.
#[test]
fn forward_pass_reveals_and_counts_nothing_before_the_password() {
    user_with_password("pamtotp-it-fwa", "correct horse");
    user_with_password("pamtotp-it-fwb", "correct horse");
    user_with_password("pamtotp-it-fwc", "correct horse");
    let sb = Sandbox::new("fwdattack");
    sb.write_config("[throttle]\nmax_failures = 3\nbackoff_seconds = 0\nbackoff_max_seconds = 0\n");
    // nodelay: pam_unix's 2 s delay after a wrong password only slows the test.
    sb.raw_service(
        "fwd",
        &FORWARD_PASS_STACK.replace("use_first_pass", "use_first_pass nodelay"),
    );
    sb.enroll("pamtotp-it-fwa"); // enrolled
    sb.enroll("pamtotp-it-fwc"); // enrolled and, below, locked out
    std::fs::write(
        sb.state_path("pamtotp-it-fwc"),
        format!(
            "version = 1\nfailures = 3\nlocked_until = {}\n",
            now() + 3600
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        sb.state_path("pamtotp-it-fwc"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let before = snapshot(&sb.state_dir);
    let code = code_now(SECRET);
    let mut replies = Vec::new();
    for user in ["pamtotp-it-fwa", "pamtotp-it-fwb", "pamtotp-it-fwc"] {
        for n in 0..20 {
            let guess = if n % 2 == 0 {
                code.clone()
            } else {
                format!("{n:06}")
            };
            let run = sb.pamtester("fwd", user, format!("wrong{n}{guess}\n").as_bytes(), &[]);
            assert!(!run.success);
            let ours: Vec<_> = run
                .log_lines()
                .into_iter()
                .filter(|l| l.contains("result="))
                .collect();
            assert!(ours.is_empty(), "{ours:?}");
            let shown = run.shown().replace(user, "USER");
            let shown: Vec<_> = shown
                .lines()
                .filter(|l| !l.contains("PWRAP") && !l.contains("SYSLOG"))
                .map(str::to_owned)
                .collect();
            replies.push(shown);
        }
    }
    assert!(
        replies.windows(2).all(|w| w[0] == w[1]),
        "replies differ: {replies:?}"
    );
    assert_eq!(snapshot(&sb.state_dir), before, "the state changed");
    // The enrolled user's code was not used up: the right password and it work.
    let code = code_now(SECRET);
    sb.pamtester(
        "fwd",
        "pamtotp-it-fwa",
        format!("correct horse{code}\n").as_bytes(),
        &[],
    )
    .expect(true, "success", "code accepted");
}

/// Finding 9: records are keyed by the canonical account name. Under a name
/// service that folds case, another spelling of an enrolled user gets the
/// enrolled user's record, not the unenrolled policy.
#[test]
fn another_spelling_of_an_enrolled_user_needs_the_code() {
    let sb = Sandbox::new("spelling");
    let fold = sb.root.join("fold_case_nss.so");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/fold_case_nss.c");
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
        .arg(&fold)
        .arg(&src)
        .arg("-ldl")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sb.write_config(
        "[policy]\nunenrolled = \"allow\"\n[throttle]\nbackoff_seconds = 0\nbackoff_max_seconds = 0\n",
    );
    sb.service("totp", "");
    sb.enroll("root");
    let folded = |input: &[u8]| {
        let mut cmd = sb.pamtester_command("totp", "ROOT", &[]);
        cmd.env(
            "LD_PRELOAD",
            format!("libpam_wrapper.so:{}", fold.display()),
        );
        run_with_input(&mut cmd, input)
    };
    let run = folded(&answer(&wrong_code(SECRET)));
    run.expect(false, "denied", "wrong code");
    assert!(
        run.outcome().starts_with("user=root as=ROOT "),
        "{}",
        run.outcome()
    );
    let run = folded(&answer(&code_now(SECRET)));
    run.expect(true, "success", "code accepted");
    // Both spellings share one state: the code is now used for "root" too.
    sb.pamtester("totp", "root", &answer(&code_now(SECRET)), &[])
        .expect(false, "denied", "replayed code");
    assert!(!sb.state_dir.join("ROOT.state").exists());
}

/// Finding 10: the users and state directories must be root's and not
/// writable by group or others; otherwise every login is refused, and the
/// log line says why.
#[test]
fn a_loose_state_or_users_directory_refuses_the_login() {
    let sb = Sandbox::new("loosedir");
    sb.service("totp", "");
    sb.enroll("root");
    let code = code_now(SECRET);
    for (dir, mode, owner, why) in [
        (
            &sb.state_dir,
            0o770,
            0,
            "must not be writable by group or others",
        ),
        (
            &sb.state_dir,
            0o703,
            0,
            "must not be writable by group or others",
        ),
        (
            &sb.state_dir,
            0o700,
            65534,
            "is owned by uid 65534, expected uid 0",
        ),
        (
            &sb.users_dir,
            0o777,
            0,
            "must not be writable by group or others",
        ),
        (
            &sb.users_dir,
            0o700,
            65534,
            "is owned by uid 65534, expected uid 0",
        ),
    ] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
        std::os::unix::fs::chown(dir, Some(owner), None).unwrap();
        let run = sb.pamtester("totp", "root", &answer(&code), &[]);
        run.expect(false, "error", why);
        assert!(
            run.outcome()
                .contains(&format!("directory {}", dir.display())),
            "{}",
            run.outcome()
        );
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(dir, Some(0), None).unwrap();
    }
    // A symlink in place of the state directory is refused too.
    let real = sb.root.join("state-real");
    std::fs::rename(&sb.state_dir, &real).unwrap();
    std::os::unix::fs::symlink(&real, &sb.state_dir).unwrap();
    let run = sb.pamtester("totp", "root", &answer(&code), &[]);
    run.expect(false, "error", "is a symbolic link");
    std::fs::remove_file(&sb.state_dir).unwrap();
    std::fs::rename(&real, &sb.state_dir).unwrap();
    sb.pamtester("totp", "root", &answer(&code), &[])
        .expect(true, "success", "code accepted");
}

/// Review of the LDAP store, finding 4, in the files store: the record is
/// read before the prompt. A thief with the lost phone sits at the prompt
/// while the administrator resets the account and enrolls a new secret;
/// the old phone's code must not then be checked against the old record.
#[test]
fn a_code_of_a_secret_replaced_during_the_prompt_is_refused() {
    let sb = Sandbox::new("replaced");
    sb.service("totp", "");
    sb.enroll("root");
    let (mut sitting, mut out, seen) = at_the_prompt(&sb);
    // totpctl reset, then a new enrollment (a new record file).
    std::fs::remove_file(sb.record_path("root")).unwrap();
    sb.write_record(
        "root",
        "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
        "SHA1",
        6,
        30,
        "active",
    );
    let mut stdin = sitting.stdin.take().unwrap();
    stdin.write_all(&answer(&code_now(SECRET))).unwrap();
    drop(stdin);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let status = sitting.wait().unwrap();
    let run = PamRun {
        success: status.success(),
        code: status.code(),
        stdout: String::new(),
        stderr: format!("{}{rest}", String::from_utf8_lossy(&seen)),
    };
    run.expect(
        false,
        "error",
        "changed during this login; the state is not replaced",
    );
}

/// A pamtester login of root started and waiting at the code prompt (which
/// pamtester shows on stderr): the process, the rest of its stderr, and
/// what it printed up to the prompt.
fn at_the_prompt(sb: &Sandbox) -> (std::process::Child, std::process::ChildStderr, Vec<u8>) {
    let starting = pam_start_guard();
    let mut sitting = sb
        .pamtester_command("totp", "root", &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = sitting.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("Verification code:") {
        assert_eq!(out.read(&mut byte).unwrap(), 1, "pamtester ended early");
        seen.push(byte[0]);
    }
    drop(starting);
    (sitting, out, seen)
}
