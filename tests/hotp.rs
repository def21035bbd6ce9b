//! HOTP (RFC 4226) logins through the real libpam, with codes from
//! `oathtool --hotp -c N`: each counter once, the look-ahead, a replay, and
//! one code raced by 50 logins.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::*;

fn login(sb: &Sandbox, counter: u64) -> PamRun {
    let code = oathtool_hotp(SECRET, counter);
    sb.pamtester("totp", "root", format!("{code}\n").as_bytes(), &[])
}

fn hotp_next(sb: &Sandbox) -> Option<u64> {
    sb.read_state("root")?.hotp_next
}

#[test]
fn each_counter_works_once_and_in_order() {
    let sb = Sandbox::new("hotp-once");
    sb.service("totp", "");
    sb.enroll_hotp("root");
    for counter in 0..3 {
        login(&sb, counter).expect(true, "success", &format!("HOTP counter {counter}"));
        assert_eq!(hotp_next(&sb), Some(counter + 1));
    }
    // The last code again, and an older one: refused, the counter unmoved.
    login(&sb, 2).expect(false, "denied", "replayed code (already used)");
    login(&sb, 0).expect(false, "denied", "wrong code");
    assert_eq!(hotp_next(&sb), Some(3));
    login(&sb, 3).expect(true, "success", "HOTP counter 3");
}

#[test]
fn look_ahead_skips_unused_counters_and_no_further() {
    let sb = Sandbox::new("hotp-ahead");
    sb.service("totp", "");
    sb.enroll_hotp("root");
    // Default look_ahead = 10: counter 11 is past [0, 10].
    login(&sb, 11).expect(false, "denied", "wrong code (1 of 10 failures)");
    login(&sb, 10).expect(true, "success", "HOTP counter 10");
    assert_eq!(hotp_next(&sb), Some(11));
    // The skipped counters are used up.
    login(&sb, 5).expect(false, "denied", "wrong code");
    login(&sb, 11).expect(true, "success", "HOTP counter 11");

    // A narrower look_ahead from the config.
    sb.write_config("[otp]\nlook_ahead = 2\n");
    login(&sb, 15).expect(false, "denied", "wrong code");
    login(&sb, 14).expect(true, "success", "HOTP counter 14");
    // look_ahead = 0: only the next counter.
    sb.write_config("[otp]\nlook_ahead = 0\n");
    login(&sb, 16).expect(false, "denied", "wrong code");
    login(&sb, 15).expect(true, "success", "HOTP counter 15");
}

/// 50 logins at once with one HOTP code: exactly one may succeed.
#[test]
fn fifty_parallel_logins_with_one_hotp_code_admit_exactly_one() {
    let sb = Sandbox::new("hotp-race");
    sb.service("totp", "");
    sb.enroll_hotp("root");
    // Room for the 49 refusals, so every one is told as a replay.
    sb.write_config(
        "[throttle]\nmax_failures = 100\nbackoff_seconds = 0\nbackoff_max_seconds = 0\n",
    );
    for round in 0..3u64 {
        sb.write_state_text("root", &format!("version = 1\nhotp_next = {round}\n"));
        let code = oathtool_hotp(SECRET, round);
        let outcomes = race_logins(&sb, "totp", "root", &code, 50);
        let successes = outcomes.iter().filter(|o| o.status.success()).count();
        let replays = outcomes
            .iter()
            .filter(|o| {
                String::from_utf8_lossy(&o.stderr)
                    .contains("result=denied reason=\"replayed code (already used)")
            })
            .count();
        assert_eq!(successes, 1, "round {round}: {successes} of 50 succeeded");
        let others: Vec<String> = outcomes
            .iter()
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .filter(|e| {
                !e.contains("result=denied reason=\"replayed code") && !e.contains("result=success")
            })
            .collect();
        assert_eq!(
            replays, 49,
            "round {round}: the other 49 are replays: {others:?}"
        );
        assert_eq!(hotp_next(&sb), Some(round + 1));
    }
}

/// A TOTP record ignores a hotp_next in the state.
#[test]
fn a_totp_record_is_unaffected_by_a_hotp_counter() {
    let sb = Sandbox::new("hotp-totp");
    sb.service("totp", "");
    sb.enroll("root");
    std::fs::write(sb.state_path("root"), "version = 1\nhotp_next = 5\n").unwrap();
    std::fs::set_permissions(
        sb.state_path("root"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let run = sb.pamtester(
        "totp",
        "root",
        format!("{}\n", oathtool_hotp(SECRET, 5)).as_bytes(),
        &[],
    );
    assert!(!run.success);
    let code = code_now(SECRET);
    sb.pamtester("totp", "root", format!("{code}\n").as_bytes(), &[])
        .expect(true, "success", "code accepted");
}
