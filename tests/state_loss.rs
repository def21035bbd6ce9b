//! A login state that is lost, torn or older must not bring back what it
//! recorded as used: a recovery code, or HOTP codes below the counter.
//! Through the real libpam (pamtester under pam_wrapper), with the state
//! file emptied, cut short, deleted or partly zeroed between logins, as a
//! crash or an administrator clearing a lockout by hand would leave it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::*;
use std::process::Command;

fn answer(text: &str) -> Vec<u8> {
    format!("{text}\n").into_bytes()
}

fn totpctl(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    Command::new(totpctl_path())
        .arg("--config")
        .arg(&sb.config)
        .args(args)
        .output()
        .unwrap()
}

/// An active TOTP record with ten recovery codes, and the state an
/// activation leaves. Returns the codes.
fn enrolled_with_recovery(sb: &Sandbox) -> Vec<String> {
    sb.service("totp", "");
    sb.enroll("root");
    let codes = sb.add_recovery_codes("root");
    sb.write_state_text("root", "version = 1\n");
    codes
}

fn set_len(path: &std::path::Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// The attack of the review: a recovery code is used, the state is lost
/// (emptied, cut short, deleted, garbled), and the same code is typed
/// again. It stays refused, and so do the codes that were not used yet
/// (which of them were used is no longer known), while TOTP codes work.
#[test]
fn a_used_recovery_code_stays_used_when_the_state_is_lost() {
    type Lose = fn(&Sandbox);
    let losses: [(&str, Lose); 4] = [
        ("emptied", |sb| set_len(&sb.state_path("root"), 0)),
        ("cut short", |sb| set_len(&sb.state_path("root"), 100)),
        ("deleted", |sb| {
            std::fs::remove_file(sb.state_path("root")).unwrap()
        }),
        ("garbled", |sb| {
            sb.write_state_text("root", "version = 1\nused_recovery = [")
        }),
    ];
    for (how, lose) in losses {
        let sb = Sandbox::new(&format!("lost-recovery-{}", how.replace(' ', "-")));
        let codes = enrolled_with_recovery(&sb);
        sb.pamtester("totp", "root", &answer(&codes[0]), &[])
            .expect(true, "success", "recovery code 1 used, 9 left");
        lose(&sb);
        let again = sb.pamtester("totp", "root", &answer(&codes[0]), &[]);
        again.expect(false, "denied", "recovery code 1 was already used");
        assert!(
            again
                .outcome()
                .contains("which recovery codes were used is unknown"),
            "{how}: {}",
            again.outcome()
        );
        sb.pamtester("totp", "root", &answer(&codes[1]), &[])
            .expect(false, "denied", "recovery code 2 was already used");
        // TOTP codes are unaffected.
        sb.pamtester("totp", "root", &answer(&code_now(SECRET)), &[])
            .expect(true, "success", "code accepted");
        // Nor does root's unlock bring them back.
        let out = totpctl(&sb, &["unlock", "root"]);
        assert!(out.status.success(), "{how}: {out:?}");
        sb.pamtester("totp", "root", &answer(&codes[0]), &[])
            .expect(false, "denied", "recovery code 1 was already used");
    }
}

/// `totpctl unlock` on a state that was lost (here: deleted to clear a
/// lockout, as an administrator might) says the recovery codes are gone,
/// and new ones from `totpctl recovery-codes` work.
#[test]
fn unlock_of_a_lost_state_keeps_recovery_codes_used_and_new_ones_work() {
    let sb = Sandbox::new("lost-unlock");
    let codes = enrolled_with_recovery(&sb);
    sb.pamtester("totp", "root", &answer(&codes[0]), &[])
        .expect(true, "success", "recovery code 1 used, 9 left");
    std::fs::remove_file(sb.state_path("root")).unwrap();
    let out = totpctl(&sb, &["unlock", "root"]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("all are treated as used")
            && said.contains("totpctl recovery-codes root --regenerate"),
        "{said}"
    );
    sb.pamtester("totp", "root", &answer(&codes[0]), &[])
        .expect(false, "denied", "recovery code 1 was already used");
    let out = totpctl(&sb, &["--json", "recovery-codes", "root", "--regenerate"]);
    assert!(out.status.success(), "{out:?}");
    let json = String::from_utf8_lossy(&out.stdout);
    let fresh = json
        .split('"')
        .find(|s| s.len() == 19 && s.chars().filter(|&c| c == '-').count() == 3)
        .unwrap_or_else(|| panic!("no code in {json}"))
        .to_string();
    sb.pamtester("totp", "root", &answer(&fresh), &[])
        .expect(true, "success", "used, 9 left");
}

/// A torn or older slot is not a lost state: the other slot still holds
/// the used code (a success that uses one writes both slots, synced), and
/// unused codes keep working.
#[test]
fn a_torn_or_older_slot_brings_no_recovery_code_back() {
    let sb = Sandbox::new("torn-slot");
    let codes = enrolled_with_recovery(&sb);
    // A wrong code first: the state is in the slotted form from here on.
    sb.pamtester("totp", "root", &answer(&wrong_code(SECRET)), &[])
        .expect(false, "denied", "wrong code");
    let before = std::fs::read(sb.state_path("root")).unwrap();
    sb.pamtester("totp", "root", &answer(&codes[0]), &[])
        .expect(true, "success", "recovery code 1 used, 9 left");
    let after = std::fs::read(sb.state_path("root")).unwrap();
    assert_eq!(after.len(), 8192);
    let slot = 4096;
    for (i, damage) in ["zeroed", "older", "cut"].iter().enumerate() {
        for which in 0..2 {
            let mut bytes = after.clone();
            let range = which * slot..(which + 1) * slot;
            match *damage {
                "zeroed" => bytes[range].fill(0),
                "older" => bytes[range.clone()].copy_from_slice(&before[range]),
                _ => bytes.truncate(slot + 10),
            }
            std::fs::write(sb.state_path("root"), &bytes).unwrap();
            let run = sb.pamtester("totp", "root", &answer(&codes[0]), &[]);
            run.expect(false, "denied", "recovery code 1 was already used");
            assert!(
                !run.outcome().contains("unknown"),
                "{damage} slot {which}: {}",
                run.outcome()
            );
            // An unused code still works: nothing was lost.
            let unused = &codes[1 + 2 * i + which];
            sb.pamtester("totp", "root", &answer(unused), &[])
                .expect(true, "success", "used");
        }
    }
}

/// HOTP: a state that is lost never restarts the counter at 0. The user is
/// refused, with one line saying why and what to do, until root sets the
/// counter with `totpctl unlock --counter`.
#[test]
fn a_hotp_user_whose_state_is_lost_is_refused_until_unlock_sets_the_counter() {
    for how in ["deleted", "emptied"] {
        let sb = Sandbox::new(&format!("lost-hotp-{how}"));
        sb.service("totp", "");
        sb.enroll_hotp("root");
        let hotp = |c: u64| answer(&oathtool_hotp(SECRET, c));
        sb.pamtester("totp", "root", &hotp(0), &[])
            .expect(true, "success", "HOTP counter 0");
        sb.pamtester("totp", "root", &hotp(1), &[])
            .expect(true, "success", "HOTP counter 1");
        match how {
            "deleted" => std::fs::remove_file(sb.state_path("root")).unwrap(),
            _ => set_len(&sb.state_path("root"), 0),
        }
        for c in [0, 1, 2] {
            let run = sb.pamtester("totp", "root", &hotp(c), &[]);
            run.expect(false, "denied", "the HOTP counter is unknown");
            assert!(
                run.outcome().contains("totpctl unlock --counter"),
                "{}",
                run.outcome()
            );
        }
        // A plain unlock cannot guess the counter.
        let out = totpctl(&sb, &["unlock", "root"]);
        assert!(!out.status.success(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--counter"),
            "{out:?}"
        );
        sb.pamtester("totp", "root", &hotp(2), &[]).expect(
            false,
            "denied",
            "the HOTP counter is unknown",
        );
        let out = totpctl(&sb, &["unlock", "root", "--counter", "2"]);
        assert!(out.status.success(), "{out:?}");
        sb.pamtester("totp", "root", &hotp(1), &[])
            .expect(false, "denied", "replayed code");
        sb.pamtester("totp", "root", &hotp(2), &[])
            .expect(true, "success", "HOTP counter 2");
    }
}
