//! The files store's login state: conversion of earlier releases' TOML,
//! torn and lost writes, and a state that was lost altogether.

use super::slots::{self, SLOT};
use super::testing::{scratch_store, FREE, OTP};
use crate::answer::{self, Answer};
use crate::attempt::{attempt, Accepted, Miss, Refusal, Rules};
use crate::names::UserName;
use crate::otp::{self, OtpParams, OtpType};
use crate::record::{Status, UserRecord};
use crate::recovery;
use crate::secret::SecretBytes;
use crate::state::LoginState;
use crate::throttle::Lockout;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use zeroize::Zeroizing;

const NOW: u64 = 1_700_000_000;
fn rules() -> Rules<'static> {
    Rules {
        otp: &OTP,
        throttle: &FREE,
    }
}

fn private(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Every field of the state, set.
fn everything() -> LoginState {
    LoginState {
        last_step: Some(56_666_666),
        failures: 3,
        hotp_next: Some(42),
        skew: Some(-2),
        resync_offset: Some(5),
        resync_step: Some(56_666_671),
        resync_at: Some(NOW - 10),
        failures_since_success: 23,
        not_before: Some(NOW + 4),
        last_failure_at: Some(NOW),
        locked_until: Some(NOW + 900),
        last_success_at: Some(NOW - 3600),
        last_success_rhost: Some("192.0.2.7".into()),
        used_recovery: vec![2, 5],
        ..LoginState::new()
    }
}

/// An earlier release's `<user>.state` (TOML) is read as it is and
/// replaced by the slotted file at the first write, durably, keeping every
/// field: a used step, used recovery codes, the HOTP counter, the skew and
/// its candidate, failures and the lockout.
#[test]
fn an_earlier_releases_toml_state_is_converted_keeping_everything() {
    let (dir, store) = scratch_store("state-convert");
    let user = UserName::parse(b"alice").unwrap();
    let path = dir.0.join("state/alice.state");
    let old = everything();
    private(&path, old.to_toml().unwrap().as_bytes());
    // The standing spare an earlier release kept beside it.
    private(&dir.0.join("state/.alice.state.tmp"), b"version = 1\n");
    assert_eq!(store.peek_state(&user).unwrap().state, old);
    let lock = store.lock(&user).unwrap();
    let read = lock.read_state();
    assert_eq!(
        (read.state.clone(), read.problem, read.lost),
        (old.clone(), None, false)
    );
    lock.write_state(&read.state).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), slots::FILE);
    assert!(slots::is_slotted(&bytes));
    assert_eq!(
        LoginState::parse(std::str::from_utf8(&bytes).unwrap()).unwrap(),
        old
    );
    assert!(!dir.0.join("state/.alice.state.tmp").exists());
    // Later writes go in place: the same inode.
    let inode = std::fs::metadata(&path).unwrap();
    let mut next = old.clone();
    next.failures = 4;
    lock.write_state(&next).unwrap();
    drop(lock);
    let after = std::fs::metadata(&path).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(inode.ino(), after.ino());
    assert_eq!(store.peek_state(&user).unwrap().state, next);
}

/// Writes alternate between the slots; a write that uses a recovery code
/// or moves the HOTP counter fills both. Whatever happens to one slot
/// afterwards (torn, zeroed, an older copy, the file cut short), what is
/// read still has the code used and the counter moved.
#[test]
fn no_torn_zeroed_or_older_slot_brings_a_used_code_back() {
    let (dir, store) = scratch_store("state-torn");
    let user = UserName::parse(b"alice").unwrap();
    let path = dir.0.join("state/alice.state");
    let lock = store.lock(&user).unwrap();
    let mut state = LoginState {
        hotp_next: Some(7),
        ..LoginState::new()
    };
    lock.write_state(&state).unwrap();
    state.failures = 1;
    lock.write_state(&state).unwrap();
    let before = std::fs::read(&path).unwrap();
    // The success: a recovery code used, the counter moved.
    state.failures = 0;
    state.used_recovery.push(3);
    state.hotp_next = Some(8);
    lock.write_state(&state).unwrap();
    let used = |bytes: &[u8]| -> Option<(Vec<u32>, Option<u64>)> {
        let s = slots::newest(bytes).ok()?.state;
        Some((s.used_recovery, s.hotp_next))
    };
    let want = Some((vec![3], Some(8)));
    let after_success = std::fs::read(&path).unwrap();
    // Later writes that are not synced (failures).
    for failures in 1..=3 {
        state.failures = failures;
        lock.write_state(&state).unwrap();
        let now = std::fs::read(&path).unwrap();
        for base in [&after_success, &now] {
            for slot in 0..2 {
                let range = slot * SLOT..(slot + 1) * SLOT;
                let mut zeroed = base.clone();
                zeroed[range.clone()].fill(0);
                assert_eq!(used(&zeroed), want, "slot {slot} zeroed");
                let mut torn = base.clone();
                torn[slot * SLOT + 2000] ^= 0x20;
                torn[slot * SLOT + 60] ^= 0x01;
                assert_eq!(used(&torn), want, "slot {slot} torn");
                let mut older = base.clone();
                older[range.clone()].copy_from_slice(&before[range]);
                assert_eq!(used(&older), want, "slot {slot} from before the success");
            }
            assert_eq!(used(&base[..SLOT]), want, "cut to one slot");
        }
    }
    // Cut to nothing: the state is lost, and says so.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    let read = lock.read_state();
    assert!(read.lost && read.problem.is_some());
    std::fs::remove_file(&path).unwrap();
    let read = lock.read_state();
    assert!(read.lost && read.problem.is_none());
}

fn record(kind: OtpType, recovery: Vec<recovery::RecoveryHash>) -> UserRecord {
    UserRecord {
        status: Status::Active,
        kind,
        secret: SecretBytes::from_bytes(Zeroizing::new(b"12345678901234567890".to_vec())).unwrap(),
        params: OtpParams::new(otp::Algorithm::SHA1, 6, 30).unwrap(),
        label: None,
        issuer: None,
        created_at: None,
        activated_at: None,
        recovery,
        serial: None,
    }
}

fn typed(text: &str) -> Answer {
    typed_bytes(text.as_bytes())
}

fn typed_bytes(text: &[u8]) -> Answer {
    answer::classify(text, 6, true).unwrap()
}

/// A used recovery code never comes back when the state is lost: deleted,
/// emptied or corrupt, then a TOTP login writes a fresh state, and
/// `unlock` clears failures. Every recovery code counts as used from the
/// loss on; new ones work.
#[test]
fn a_lost_state_never_brings_back_a_recovery_code() {
    let (dir, store) = scratch_store("state-lost-recovery");
    let user = UserName::parse(b"alice").unwrap();
    let path = dir.0.join("state/alice.state");
    let codes = recovery::generate().unwrap();
    let record = record(OtpType::Totp, codes.hashes.clone());
    let lock = store.lock(&user).unwrap();
    crate::enrollment::install(&lock, &record, 0).unwrap();
    let first = attempt(&lock, &record, &typed(&codes.codes[0]), NOW, &rules(), None);
    assert!(matches!(
        first.result,
        Ok(Accepted::Recovery { id: 1, left: 9 })
    ));
    type Lose = fn(&Path);
    let losses: [(&str, Lose); 3] = [
        ("deleted", |p| std::fs::remove_file(p).unwrap()),
        ("emptied", |p| private(p, b"")),
        ("corrupt", |p| private(p, &[b'x'; slots::FILE])),
    ];
    for (how, lose) in losses {
        lose(&path);
        let again = attempt(&lock, &record, &typed(&codes.codes[0]), NOW, &rules(), None);
        assert!(
            matches!(again.result, Err(Refusal::Wrong(Miss::RecoveryUsed(1)))),
            "{how}: {:?}",
            again.result
        );
        assert!(again
            .note
            .is_some_and(|n| n.contains("recovery codes were used is unknown")));
        // Unused ones too, after a TOTP login wrote a fresh state.
        let g = otp::Generator::new(&record.secret, record.params);
        let step = NOW / 30 + 2 * (how.len() as u64);
        let code = g.code_at_step(step);
        let totp = attempt(
            &lock,
            &record,
            &typed_bytes(code.as_bytes()),
            step * 30,
            &rules(),
            None,
        );
        assert!(totp.result.is_ok(), "{how}: {:?}", totp.result);
        let other = attempt(
            &lock,
            &record,
            &typed(&codes.codes[4]),
            step * 30,
            &rules(),
            None,
        );
        assert!(
            matches!(other.result, Err(Refusal::Wrong(Miss::RecoveryUsed(5)))),
            "{how}: {:?}",
            other.result
        );
    }
}

/// A HOTP record whose state was lost is refused without a compare, never
/// checked from counter 0, until a counter is set.
#[test]
fn a_hotp_record_with_a_lost_state_is_refused_until_a_counter_is_set() {
    let (dir, store) = scratch_store("state-lost-hotp");
    let user = UserName::parse(b"alice").unwrap();
    let path = dir.0.join("state/alice.state");
    let record = record(OtpType::Hotp, Vec::new());
    let g = otp::Generator::new(&record.secret, record.params);
    let lock = store.lock(&user).unwrap();
    crate::enrollment::install(&lock, &record, 0).unwrap();
    let hotp = |c: u64| typed_bytes(g.code_at_step(c).as_bytes());
    assert!(matches!(
        attempt(&lock, &record, &hotp(0), NOW, &rules(), None).result,
        Ok(Accepted::Counter { counter: 0 })
    ));
    for lose in [
        |p: &Path| std::fs::remove_file(p).unwrap(),
        |p: &Path| private(p, b""),
    ] {
        lose(&path);
        for c in [0, 1] {
            let a = attempt(&lock, &record, &hotp(c), NOW, &rules(), None);
            assert!(
                matches!(a.result, Err(Refusal::Locked(Lockout::CounterUnknown))),
                "{:?}",
                a.result
            );
        }
    }
    // What `totpctl unlock --counter 1` does.
    let mut state = lock.read_state().state;
    state.hotp_next = Some(1);
    lock.write_state(&state).unwrap();
    assert!(attempt(&lock, &record, &hotp(0), NOW, &rules(), None)
        .result
        .is_err());
    assert!(matches!(
        attempt(&lock, &record, &hotp(1), NOW, &rules(), None).result,
        Ok(Accepted::Counter { counter: 1 })
    ));
}

/// An earlier release's state kept a remote host of any length; one too
/// long for a slot is dropped when that state is converted, as a write in
/// place drops it, so the next attempt is still counted and checked
/// rather than refused, uncounted, at every login.
#[test]
fn an_earlier_releases_state_with_a_remote_host_too_long_for_a_slot_is_converted() {
    let (dir, store) = scratch_store("state-long-rhost");
    let user = UserName::parse(b"alice").unwrap();
    let path = dir.0.join("state/alice.state");
    let record = record(OtpType::Totp, Vec::new());
    let lock = store.lock(&user).unwrap();
    crate::enrollment::install(&lock, &record, 0).unwrap();
    let old = LoginState {
        failures: 2,
        failures_since_success: 2,
        last_success_at: Some(NOW - 3600),
        last_success_rhost: Some("h".repeat(SLOT)),
        used_recovery: vec![1],
        ..LoginState::new()
    };
    private(&path, old.to_toml().unwrap().as_bytes());
    let right = otp::Generator::new(&record.secret, record.params).code_at_step(NOW / 30);
    let mut wrong = right.as_bytes().to_vec();
    wrong[5] = if wrong[5] == b'0' { b'1' } else { b'0' };
    let a = attempt(&lock, &record, &typed_bytes(&wrong), NOW, &rules(), None);
    assert!(
        matches!(a.result, Err(Refusal::Wrong(Miss::WrongCode))),
        "{:?}",
        a.result
    );
    drop(lock);
    let bytes = std::fs::read(&path).unwrap();
    assert!(slots::is_slotted(&bytes));
    let now = store.peek_state(&user).unwrap().state;
    assert_eq!(
        (now.failures, now.used_recovery, now.last_success_rhost),
        (3, vec![1], None)
    );
}
