//! TOTP clock-skew learning (RFC 6238 section 6) through the real module: a
//! "phone" whose clock is five steps fast (oathtool --now) fails once, is
//! accepted on its next code, and then logs in directly; a lone far-off code
//! is never accepted; `totpctl unlock --reset-skew` forgets the skew.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::*;
use std::process::Command;

/// A code of the phone whose clock is `ahead` seconds fast.
fn phone(ahead: i64) -> String {
    oathtool(SECRET, "SHA1", 6, 30, ahead)
}

fn login(sb: &Sandbox, code: &str) -> PamRun {
    sb.pamtester("totp", "root", format!("{code}\n").as_bytes(), &[])
}

fn totpctl(sb: &Sandbox, args: &[&str]) -> PamRun {
    let mut cmd = Command::new(totpctl_path());
    cmd.arg("--config").arg(&sb.config).args(args);
    run_with_input(&mut cmd, b"")
}

/// Start well inside a time step, so that no step turns between a code and
/// its check (which would move every offset by one).
fn away_from_a_step_edge() {
    let into = now() % 30;
    if into >= 24 {
        std::thread::sleep(std::time::Duration::from_secs(31 - into));
    }
}

fn skew_of(sb: &Sandbox) -> String {
    let run = totpctl(sb, &["status", "root", "--json"]);
    run.stdout
        .split("\"skew\":")
        .nth(1)
        .unwrap_or_else(|| panic!("no skew in {}", run.stdout))
        .split(',')
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn a_phone_five_steps_fast_fails_once_then_logs_in() {
    let sb = Sandbox::new("skew-phone");
    sb.service("totp", "");
    sb.enroll("root");
    away_from_a_step_edge();
    // Its code now is five steps ahead: refused, remembered.
    login(&sb, &phone(150)).expect(
        false,
        "denied",
        "wrong code, but it matches the step +5 from now: remembered as a clock-skew candidate",
    );
    assert_eq!(skew_of(&sb), "0");
    // The phone's next code: accepted, and the skew learned (one line).
    let run = login(&sb, &phone(180));
    run.expect(
        true,
        "success",
        "code accepted; clock skew of +6 steps learned from two consecutive codes",
    );
    assert_eq!(skew_of(&sb), "6");
    let status = totpctl(&sb, &["status", "root"]);
    assert!(
        status
            .stdout
            .contains("clock skew:      +6 steps (the device is 180 s ahead;"),
        "{}",
        status.stdout
    );
    // From now on the phone's codes work at the first try.
    login(&sb, &phone(210)).expect(true, "success", "code accepted");
    // The failure of the first code was counted, and the success cleared it.
    let state = std::fs::read_to_string(sb.state_path("root")).unwrap();
    assert!(state.contains("failures = 0"), "{state}");

    // Forget the skew: the phone's code is a candidate again.
    let run = totpctl(&sb, &["unlock", "root", "--reset-skew"]);
    assert!(run.success, "{run:?}");
    assert!(
        run.stdout
            .contains("the learned clock skew (+6 steps) is forgotten"),
        "{}",
        run.stdout
    );
    assert_eq!(skew_of(&sb), "0");
    login(&sb, &phone(240)).expect(false, "denied", "clock-skew candidate");
}

#[test]
fn a_lone_far_off_code_is_never_accepted() {
    let sb = Sandbox::new("skew-lone");
    sb.service("totp", "");
    sb.enroll("root");
    away_from_a_step_edge();
    // The same far-off code, again and again: a candidate each time, never
    // confirmed (a confirmation must be a later step).
    for _ in 0..3 {
        login(&sb, &phone(210)).expect(false, "denied", "the step +7 from now");
    }
    // A code for a past step is not even a candidate: two unused old codes
    // in a row must not log in minutes later (found in review).
    login(&sb, &phone(-240)).expect(false, "denied", "wrong code (4 of 10 failures)");
    login(&sb, &phone(-210)).expect(false, "denied", "wrong code (5 of 10 failures)");
    // Far-off codes of different offsets never confirm one another.
    login(&sb, &phone(120)).expect(false, "denied", "the step +4 from now");
    login(&sb, &phone(270)).expect(false, "denied", "the step +9 from now");
    // Beyond resync_window (10 steps): plainly wrong, nothing remembered.
    login(&sb, &phone(330)).expect(false, "denied", "wrong code (8 of 10 failures)");
    assert_eq!(skew_of(&sb), "0");
    // resync_window = 0 turns learning off: the phone's two codes are wrong.
    sb.write_config(
        "[otp]\nresync_window = 0\n[throttle]\nmax_failures = 20\nbackoff_seconds = 0\nbackoff_max_seconds = 0\n",
    );
    login(&sb, &phone(150)).expect(false, "denied", "wrong code (9 of 20");
    login(&sb, &phone(180)).expect(false, "denied", "wrong code (10 of 20");
    assert_eq!(skew_of(&sb), "0");
    // A code of now still works.
    login(&sb, &code_now(SECRET)).expect(true, "success", "code accepted");
}

/// Activation learns no skew, but says when the code is one of a phone
/// whose clock is off, and by how much.
#[test]
fn activation_with_a_phone_whose_clock_is_off_says_so() {
    let sb = Sandbox::new("skew-activate");
    sb.service("totp", "");
    let run = totpctl(&sb, &["enroll", "root", "--json"]);
    assert!(run.success, "{run:?}");
    let secret = run
        .stdout
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    away_from_a_step_edge();
    let mut cmd = Command::new(totpctl_path());
    cmd.arg("--config")
        .arg(&sb.config)
        .args(["activate", "root"]);
    let ahead = oathtool(&secret, "SHA1", 6, 30, 150);
    let run = run_with_input(&mut cmd, format!("{ahead}\n").as_bytes());
    assert!(!run.success);
    assert!(
        run.stderr.contains(
            "the code was not accepted (wrong code now, but it is the code for 150 s from now: \
             the device's clock is off); 'root' stays pending. Set the phone to take the time \
             from the network"
        ),
        "{}",
        run.stderr
    );
    let mut cmd = Command::new(totpctl_path());
    cmd.arg("--config")
        .arg(&sb.config)
        .args(["activate", "root"]);
    let now = oathtool(&secret, "SHA1", 6, 30, 0);
    let run = run_with_input(&mut cmd, format!("{now}\n").as_bytes());
    assert!(run.success, "{run:?}");
}
