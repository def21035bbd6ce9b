//! `totpctl resync`: a HOTP token pressed 500 times past the server and a
//! phone whose clock is 5 hours slow are found again from two consecutive
//! codes (from oathtool), and then log in through the real libpam
//! (pam_wrapper); a wrong pair is counted like a failed login.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::*;

const USER: &str = "pamtotp-resync";

fn resync(sb: &Sandbox, json: bool, codes: &str) -> PamRun {
    let args: &[&str] = if json {
        &["--json", "resync", USER]
    } else {
        &["resync", USER]
    };
    sb.totpctl(args, codes.as_bytes())
}

fn login(sb: &Sandbox, code: &str) -> PamRun {
    sb.pamtester("totp", USER, format!("{code}\n").as_bytes(), &[])
}

#[test]
fn a_hotp_token_500_presses_ahead_comes_back() {
    ensure_user(USER, &[]);
    let sb = Sandbox::new("resync-hotp");
    sb.service("totp", "");
    sb.enroll_hotp(USER);
    // The token was pressed 500 times: far past look_ahead (10).
    login(&sb, &oathtool_hotp(SECRET, 500)).expect(false, "denied", "wrong code");

    // A wrong pair (not consecutive): refused, and counted as a failure.
    let wrong = format!(
        "{}\n{}\n",
        oathtool_hotp(SECRET, 500),
        oathtool_hotp(SECRET, 502)
    );
    let run = resync(&sb, true, &wrong);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stdout
            .starts_with("{\"error\":{\"code\":\"resync_failed\""),
        "{}",
        run.stdout
    );
    let state = std::fs::read_to_string(sb.state_path(USER)).unwrap();
    assert!(state.contains("failures = 2"), "{state}");

    // Two consecutive presses: found, the counter moved after them.
    let pair = format!(
        "{}\n{}\n",
        oathtool_hotp(SECRET, 500),
        oathtool_hotp(SECRET, 501)
    );
    let run = resync(&sb, true, &pair);
    assert!(run.success, "{run:?}");
    assert_eq!(
        run.stdout.trim(),
        format!(
            "{{\"user\":\"{USER}\",\"type\":\"hotp\",\"resynced\":true,\"first_counter\":500,\
             \"hotp_next\":502,\"moved_by\":502}}"
        )
    );
    // The pair is used up; the next press logs in.
    login(&sb, &oathtool_hotp(SECRET, 501)).expect(false, "denied", "");
    login(&sb, &oathtool_hotp(SECRET, 502)).expect(true, "success", "HOTP counter 502");
    // The same pair again is behind the counter now.
    let run = resync(&sb, false, &pair);
    assert!(
        !run.success && run.stderr.contains("not consecutive codes"),
        "{run:?}"
    );
    for code in [oathtool_hotp(SECRET, 500), oathtool_hotp(SECRET, 501)] {
        assert!(!run.stdout.contains(&code) && !run.stderr.contains(&code));
    }
}

#[test]
fn a_clock_five_hours_slow_comes_back() {
    ensure_user(USER, &[]);
    let sb = Sandbox::new("resync-totp");
    sb.service("totp", "");
    sb.enroll(USER);
    let slow = -5 * 3600;
    // The phone's previous and current codes.
    let pair = format!(
        "{}\n{}\n",
        oathtool(SECRET, "SHA1", 6, 30, slow - 30),
        oathtool(SECRET, "SHA1", 6, 30, slow)
    );
    let run = resync(&sb, false, &pair);
    assert!(run.success, "{run:?}");
    // -600 steps, or -601 if a step began between the codes and the command.
    assert!(
        run.stdout.contains("the device's clock is -60") && run.stdout.contains(" s) off"),
        "{}",
        run.stdout
    );
    // Its next code logs in; its used ones do not.
    login(&sb, &oathtool(SECRET, "SHA1", 6, 30, slow)).expect(false, "denied", "");
    login(&sb, &oathtool(SECRET, "SHA1", 6, 30, slow + 30)).expect(
        true,
        "success",
        "code accepted",
    );
    // Malformed input is refused before anything is counted.
    let run = resync(&sb, true, "12345\n");
    assert_eq!(run.code, Some(1));
    assert!(
        run.stdout.contains("\"code\":\"malformed_code\""),
        "{}",
        run.stdout
    );
}
