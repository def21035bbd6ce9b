//! The stories users know, end to end through the real module: totpctl
//! enrolls and writes the `.jpg`, zbarimg reads it back, oathtool plays the
//! phone, and pamtester logs in through pam_totp.so under pam_wrapper.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::*;
use std::path::Path;
use std::process::{Command, Output};

const USER: &str = "pamtotp-story";

fn totpctl(sb: &Sandbox, args: &[&str], stdin: &[u8]) -> PamRun {
    let mut cmd = Command::new(totpctl_path());
    cmd.arg("--config").arg(&sb.config).args(args);
    run_with_input(&mut cmd, stdin)
}

/// A sandbox for USER whose config accepts ±2 steps, so a story can use the
/// current step to activate and later steps to log in without waiting.
fn story(name: &str) -> Sandbox {
    require_tool("zbarimg", "zbar-tools");
    ensure_user(USER, &[]);
    let sb = Sandbox::new(name);
    sb.write_config("[otp]\nwindow = 2\n");
    sb.service("totp", "");
    sb
}

fn zbarimg(jpg: &Path) -> String {
    let out: Output = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(jpg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "zbarimg could not decode {}",
        jpg.display()
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The value of `key` in an otpauth URI.
fn uri_param(uri: &str, key: &str) -> String {
    let query = uri.split_once('?').unwrap().1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} missing in {uri}"))
        .to_string()
}

/// Where the user's .jpg goes: a directory of theirs in the sandbox (root
/// writes another user's .jpg with that user's rights).
fn user_jpg(sb: &Sandbox) -> std::path::PathBuf {
    let dir = sb.root.join("home");
    if !dir.exists() {
        std::fs::create_dir(&dir).unwrap();
        let out = Command::new("chown").arg(USER).arg(&dir).output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    dir.join(format!("{USER}.jpg"))
}

/// Enroll with `params`, check the .jpg against the printed URI, activate
/// with oathtool's current code, and return (secret, uri, activation output).
fn enroll_and_activate(sb: &Sandbox, params: &[&str]) -> (String, String, String) {
    let jpg = user_jpg(sb);
    let _ = std::fs::remove_file(&jpg);
    let mut args = vec!["enroll", USER, "--qr", jpg.to_str().unwrap()];
    args.extend_from_slice(params);
    let run = totpctl(sb, &args, b"");
    assert!(run.success, "enroll failed: {}", run.shown());
    let printed = run
        .stdout
        .lines()
        .find(|l| l.starts_with("otpauth://totp/"))
        .expect("enroll prints the URI")
        .to_string();
    assert!(
        run.stdout.contains("totpctl activate"),
        "pending until activated: {}",
        run.stdout
    );
    assert_eq!(
        zbarimg(&jpg),
        printed,
        "the .jpg holds exactly the printed URI"
    );
    let secret = uri_param(&printed, "secret");
    let (algorithm, digits, period) = (
        uri_param(&printed, "algorithm"),
        uri_param(&printed, "digits").parse().unwrap(),
        uri_param(&printed, "period").parse().unwrap(),
    );
    // Pending is not enrolled: the module follows the unenrolled policy.
    sb.pamtester("totp", USER, b"", &[]).expect(
        false,
        "denied",
        "enrollment pending activation; policy denies",
    );
    let code = oathtool(&secret, &algorithm, digits, period, 0);
    let run = totpctl(sb, &["activate", USER, "--code", &code], b"");
    assert!(run.success, "activate failed: {}", run.shown());
    (secret, printed, run.stdout)
}

fn login(sb: &Sandbox, code: &str) -> PamRun {
    sb.pamtester("totp", USER, format!("{code}\n").as_bytes(), &[])
}

#[test]
fn enroll_scan_activate_and_log_in_sha1() {
    let sb = story("story-sha1");
    let (secret, uri, _) = enroll_and_activate(&sb, &[]);
    assert!(uri.contains("algorithm=SHA1&digits=6&period=30"), "{uri}");
    // The code that activated is used up; the next step's code logs in.
    login(&sb, &oathtool(&secret, "SHA1", 6, 30, 0)).expect(false, "denied", "replayed code");
    login(&sb, &oathtool(&secret, "SHA1", 6, 30, 30)).expect(true, "success", "code accepted");
}

#[test]
fn enroll_scan_activate_and_log_in_sha256_eight_digits() {
    let sb = story("story-sha256");
    let (secret, uri, _) = enroll_and_activate(&sb, &["--algorithm", "SHA256", "--digits", "8"]);
    assert!(uri.contains("algorithm=SHA256&digits=8&period=30"), "{uri}");
    login(&sb, &oathtool(&secret, "SHA256", 8, 30, 30)).expect(true, "success", "code accepted");
}

/// Lost phone, kept .jpg: scanning it again gives codes that still work,
/// whatever the server's state has become since.
#[test]
fn the_saved_jpg_restores_the_codes_after_a_lost_phone() {
    let sb = story("story-lostphone");
    let (secret, _, _) = enroll_and_activate(&sb, &[]);
    login(&sb, &oathtool(&secret, "SHA1", 6, 30, 30)).expect(true, "success", "code accepted");
    login(&sb, "000000").expect(false, "denied", "code");
    let rescanned = zbarimg(&user_jpg(&sb));
    let new_phone = uri_param(&rescanned, "secret");
    login(&sb, &oathtool(&new_phone, "SHA1", 6, 30, 60)).expect(true, "success", "code accepted");
}

/// No .jpg: the admin resets; the login follows the unenrolled policy, and a
/// fresh enrollment works.
#[test]
fn reset_then_enroll_again_without_the_jpg() {
    let sb = story("story-reset");
    let (old, _, _) = enroll_and_activate(&sb, &[]);
    let run = totpctl(&sb, &["reset", USER], b"");
    assert!(run.success, "reset failed: {}", run.shown());
    assert!(
        run.stdout.contains("totpctl enroll"),
        "reset says what to do next: {}",
        run.stdout
    );
    login(&sb, &oathtool(&old, "SHA1", 6, 30, 30)).expect(
        false,
        "denied",
        "not enrolled; policy denies",
    );
    sb.write_config("[otp]\nwindow = 2\n[policy]\nunenrolled = \"allow\"\n");
    sb.pamtester("totp", USER, b"", &[])
        .expect(true, "ignored", "not enrolled; policy allows");
    sb.write_config("[otp]\nwindow = 2\n");
    let (new, _, _) = enroll_and_activate(&sb, &[]);
    assert_ne!(old, new, "a fresh secret");
    login(&sb, &oathtool(&old, "SHA1", 6, 30, 30)).expect(false, "denied", "wrong code");
    login(&sb, &oathtool(&new, "SHA1", 6, 30, 30)).expect(true, "success", "code accepted");
}

/// The recovery codes shown at activation each work once at the module's prompt.
#[test]
fn recovery_codes_from_activation_work_once_each() {
    let sb = story("story-recovery");
    let (_, _, shown) = enroll_and_activate(&sb, &[]);
    let codes: Vec<String> = shown
        .lines()
        .filter_map(|l| l.trim().split_once(". ").map(|(_, c)| c.to_string()))
        .filter(|c| c.len() == 19 && c.matches('-').count() == 3)
        .collect();
    assert_eq!(codes.len(), 10, "ten recovery codes shown: {shown}");
    let run = login(&sb, &codes[3]);
    run.expect(true, "success", "recovery code 4 used, 9 left");
    assert!(run.shown().contains("9 left"), "{}", run.shown());
    login(&sb, &codes[3]).expect(false, "denied", "recovery code 4 was already used");
    login(&sb, &codes[9]).expect(true, "success", "recovery code 10 used, 8 left");
}

/// A file written by Debian's own google-authenticator tool imports into a
/// record whose codes, and scratch codes, pass the module.
#[test]
fn import_a_file_made_by_google_authenticator() {
    require_tool("google-authenticator", "libpam-google-authenticator");
    let sb = story("story-import");
    let file = sb.root.join("google_authenticator");
    let out = Command::new("google-authenticator")
        .args([
            "--time-based",
            "--disallow-reuse",
            "--force",
            "--quiet",
            "--no-confirm",
        ])
        .args([
            "--rate-limit=3",
            "--rate-time=30",
            "--window-size=3",
            "--emergency-codes=5",
        ])
        .arg(format!("--secret={}", file.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "google-authenticator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let secret = text.lines().next().unwrap().to_string();
    let scratch: Vec<&str> = text
        .lines()
        .filter(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert_eq!(scratch.len(), 5, "{text}");
    let run = totpctl(
        &sb,
        &["import-google-authenticator", USER, file.to_str().unwrap()],
        b"",
    );
    assert!(run.success, "import failed: {}", run.shown());
    login(&sb, &oathtool(&secret, "SHA1", 6, 30, 0)).expect(true, "success", "code accepted");
    login(&sb, scratch[0]).expect(true, "success", "used, 4 left");
    login(&sb, scratch[0]).expect(false, "denied", "was already used");
}
