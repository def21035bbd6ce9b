//! Batch imports through totpctl, then logins through the real module:
//! `import-tokens FILE.csv` (a good file, a dry run, a bad line that changes
//! nothing, a file that is not root's 0600) and `import-pam-oath FILE` on a
//! usersfile that the real pam_oath module has just used and rewritten.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const USER2: &str = "pamtotp-oath";
/// "12345678901234567890", the RFC 4226 seed, in hex and base32 (SECRET).
const SEED_HEX: &str = "3132333435363738393031323334353637383930";
/// Another seed, for the second user.
const SEED2_HEX: &str = "6162636465666768696a6b6c6d6e6f7071727374";
const SEED2_BASE32: &str = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U";

fn totpctl(sb: &Sandbox, args: &[&str]) -> PamRun {
    sb.totpctl(args, b"")
}

fn login(sb: &Sandbox, user: &str, code: &str) -> PamRun {
    sb.pamtester("totp", user, format!("{code}\n").as_bytes(), &[])
}

fn private_file(sb: &Sandbox, name: &str, text: &str) -> PathBuf {
    sb.private_file(name, text.as_bytes())
}

fn arg(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn import_tokens_dry_run_then_import_then_login() {
    ensure_user(USER2, &[]);
    let sb = Sandbox::new("import-csv");
    sb.service("totp", "");
    let csv = private_file(
        &sb,
        "tokens.csv",
        &format!(
            "user,seed,type,digits,period_or_counter\n# batch 7\nroot,{SEED_HEX},hotp,6,5\n{USER2},{SEED2_HEX},totp,8,60\n"
        ),
    );
    let before = snapshot(&sb.root);
    let run = totpctl(&sb, &["import-tokens", &arg(&csv), "--dry-run"]);
    assert!(run.success, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "would enroll 'root': HOTP, SHA1, 6 digits, next counter 5 (line 3)\n\
             would enroll '{USER2}': TOTP, SHA1, 8 digits, 60 s (line 4)\n\
             Dry run: 2 token(s) checked; nothing was changed.\n"
        )
    );
    assert_eq!(snapshot(&sb.root), before, "a dry run changed files");

    let run = totpctl(&sb, &["import-tokens", &arg(&csv)]);
    assert!(run.success, "{run:?}");
    assert!(run
        .stdout
        .contains("enroll 'root': HOTP, SHA1, 6 digits, next counter 5 (line 3)\n"));
    assert!(
        run.stdout.contains("2 token(s) imported and active."),
        "{}",
        run.stdout
    );
    for seed in [SEED_HEX, SEED2_HEX, SECRET, SEED2_BASE32] {
        assert!(!run.stdout.contains(seed) && !run.stderr.contains(seed));
    }
    login(&sb, "root", &oathtool_hotp(SECRET, 4)).expect(false, "denied", "code");
    login(&sb, "root", &oathtool_hotp(SECRET, 5)).expect(true, "success", "HOTP counter 5");
    login(&sb, USER2, &oathtool(SEED2_BASE32, "SHA1", 8, 60, 0)).expect(
        true,
        "success",
        "code accepted",
    );

    // Again: both are active now, so the file is refused as a whole.
    let before = snapshot(&sb.root);
    let run = totpctl(&sb, &["import-tokens", &arg(&csv)]);
    assert!(!run.success);
    assert!(
        run.stderr.contains(
            "line 3: 'root' has an active enrollment; --force replaces it; nothing was changed."
        ),
        "{}",
        run.stderr
    );
    assert_eq!(snapshot(&sb.root), before);
}

#[test]
fn a_bad_line_or_a_loose_file_changes_nothing() {
    ensure_user(USER2, &[]);
    let sb = Sandbox::new("import-csv-bad");
    sb.service("totp", "");
    for (text, expected) in [
        (
            format!("{USER2},{SEED2_HEX},hotp,6,0\nroot,{SEED_HEX},hotp,7,0\n"),
            "line 2: column 4: digits must be 6 or 8",
        ),
        (
            format!("root,{SEED_HEX},hotp,6,0\nno-such-user-x,{SEED2_HEX},totp,6,30\n"),
            "line 2: there is no user 'no-such-user-x' on this system; nothing was changed.",
        ),
        (
            format!("root,{SEED_HEX},hotp,6,0\n\nroot,{SEED2_HEX},totp,6,30\n"),
            "line 3: a second token for 'root' (the first is on line 1)",
        ),
        (format!("root,{SEED_HEX}00,hotp,6\n"), "line 1: 4 fields"),
        ("# nothing\n".to_owned(), "it holds no token"),
    ] {
        let csv = private_file(&sb, "bad.csv", &text);
        let before = snapshot(&sb.root);
        let run = totpctl(&sb, &["import-tokens", &arg(&csv)]);
        assert!(!run.success, "{text}");
        assert!(run.stderr.contains(expected), "{text}: {}", run.stderr);
        assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
        assert!(
            !run.stderr.contains("3132") && !run.stderr.contains("6162"),
            "{}",
            run.stderr
        );
        assert_eq!(snapshot(&sb.root), before, "{text}");
    }
    // Mode 0644, and a file that is not root's: refused, saying why.
    let csv = private_file(&sb, "loose.csv", &format!("root,{SEED_HEX},hotp,6,0\n"));
    std::fs::set_permissions(&csv, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = totpctl(&sb, &["import-tokens", &arg(&csv)]);
    assert!(!run.success);
    assert!(
        run.stderr.contains("it holds seeds, so it must be owned by root with mode 0600, and it is owned by uid 0 with mode 0644"),
        "{}",
        run.stderr
    );
    std::fs::set_permissions(&csv, std::fs::Permissions::from_mode(0o600)).unwrap();
    let status = Command::new("chown").arg(USER2).arg(&csv).status().unwrap();
    assert!(status.success());
    let run = totpctl(&sb, &["import-tokens", &arg(&csv)]);
    assert!(!run.success);
    assert!(run.stderr.contains("with mode 0600"), "{}", run.stderr);
    assert!(!sb.record_path("root").exists());
}

/// pam_oath, the module admins move from: it authenticates two users from
/// a usersfile and rewrites it (counter, last code, time). totpctl then
/// imports that file, and both users log in through pam_totp with the
/// same token, the HOTP one at the counter after the last one pam_oath took.
#[test]
fn a_usersfile_written_by_pam_oath_moves_to_pam_totp() {
    let pam_oath = Path::new("/lib/x86_64-linux-gnu/security/pam_oath.so");
    assert!(
        pam_oath.exists(),
        "pam_oath is not installed: apt-get install libpam-oath"
    );
    ensure_user(USER2, &[]);
    let sb = Sandbox::new("import-oath");
    sb.service("totp", "");
    let usersfile = private_file(
        &sb,
        "users.oath",
        &format!("# users\nHOTP root - {SEED_HEX}\nHOTP/T30 {USER2} - {SEED2_HEX}\n"),
    );
    sb.raw_service(
        "oath",
        &format!(
            "auth required {} usersfile={} window=5\n",
            pam_oath.display(),
            usersfile.display()
        ),
    );
    // root's token pressed three times, the third code typed: counter 2.
    let run = sb.pamtester(
        "oath",
        "root",
        format!("{}\n", oathtool_hotp(SECRET, 2)).as_bytes(),
        &[],
    );
    assert!(run.success, "pam_oath refused: {run:?}");
    let totp_code = oathtool(SEED2_BASE32, "SHA1", 6, 30, 0);
    let run = sb.pamtester("oath", USER2, format!("{totp_code}\n").as_bytes(), &[]);
    assert!(run.success, "pam_oath refused: {run:?}");
    let written = std::fs::read_to_string(&usersfile).unwrap();
    assert!(
        written.contains(&format!("HOTP\troot\t-\t{SEED_HEX}\t2\t")),
        "pam_oath wrote:\n{written}"
    );

    let run = totpctl(&sb, &["import-pam-oath", &arg(&usersfile), "--dry-run"]);
    assert!(run.success, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "would enroll 'root': HOTP, SHA1, 6 digits, next counter 3 (line 2)\n\
             would enroll '{USER2}': TOTP, SHA1, 6 digits, 30 s (line 3)\n\
             Dry run: 2 token(s) checked; nothing was changed.\n"
        )
    );
    let run = totpctl(&sb, &["import-pam-oath", &arg(&usersfile)]);
    assert!(run.success, "{run:?}");
    // The codes pam_oath took are used up; the next ones work.
    login(&sb, "root", &oathtool_hotp(SECRET, 2)).expect(false, "denied", "replayed code");
    login(&sb, "root", &oathtool_hotp(SECRET, 3)).expect(true, "success", "HOTP counter 3");
    login(&sb, USER2, &totp_code).expect(false, "denied", "replayed code");
    login(&sb, USER2, &oathtool(SEED2_BASE32, "SHA1", 6, 30, 30)).expect(
        true,
        "success",
        "code accepted",
    );
}

/// google-authenticator with DISALLOW_REUSE: a code used at the real
/// pam_google_authenticator is listed in the file as used. After
/// `import-google-authenticator`, that same code is a replay at pam_totp;
/// the next one logs in.
#[test]
fn a_code_used_at_pam_google_authenticator_is_not_accepted_again() {
    let pam_ga = Path::new("/lib/x86_64-linux-gnu/security/pam_google_authenticator.so");
    assert!(
        pam_ga.exists(),
        "pam_google_authenticator is not installed: apt-get install libpam-google-authenticator"
    );
    require_tool("google-authenticator", "libpam-google-authenticator");
    let sb = Sandbox::new("import-ga-reuse");
    sb.service("totp", "");
    let file = sb.root.join("google_authenticator");
    let out = Command::new("google-authenticator")
        .args([
            "--time-based",
            "--disallow-reuse",
            "--force",
            "--quiet",
            "--no-confirm",
            "--no-rate-limit",
            "--window-size=3",
            "--qr-mode=NONE",
            "--emergency-codes=1",
        ])
        .arg(format!("--secret={}", file.display()))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "google-authenticator: {out:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\" DISALLOW_REUSE\n"), "{text}");
    let secret = text.lines().next().unwrap().trim().to_owned();
    sb.raw_service(
        "ga",
        &format!(
            "auth required {} secret={} user=root\n",
            pam_ga.display(),
            file.display()
        ),
    );
    let code = oathtool(&secret, "SHA1", 6, 30, 0);
    let run = sb.pamtester("ga", "root", format!("{code}\n").as_bytes(), &[]);
    assert!(run.success, "pam_google_authenticator refused: {run:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    let used = text
        .lines()
        .find_map(|l| l.strip_prefix("\" DISALLOW_REUSE "))
        .unwrap_or_else(|| panic!("no used step listed:\n{text}"));
    assert!(!used.trim().is_empty());
    // google-authenticator itself refuses it now.
    let run = sb.pamtester("ga", "root", format!("{code}\n").as_bytes(), &[]);
    assert!(!run.success, "pam_google_authenticator accepted a reuse");

    let run = totpctl(&sb, &["import-google-authenticator", "root", &arg(&file)]);
    assert!(run.success, "{run:?}");
    login(&sb, "root", &code).expect(false, "denied", "replayed code");
    login(&sb, "root", &oathtool(&secret, "SHA1", 6, 30, 30)).expect(
        true,
        "success",
        "code accepted",
    );
    // Carried over, so no note says it is left behind.
    assert!(!run.stderr.contains("DISALLOW_REUSE"), "{}", run.stderr);
}
