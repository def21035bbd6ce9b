//! One-time codes: RFC 6238 time-based codes (TOTP) and RFC 4226 counter-based
//! codes (HOTP). A TOTP code for time step `T` is the HOTP code for counter
//! `T`, so one generator makes both; what differs is which counters are
//! checked: the steps around now for TOTP, the next counters for HOTP.
//! Every candidate is compared in constant time, whatever the outcome.

use crate::secret::SecretBytes;
use hmac::{EagerHash, Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use std::fmt;
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Algorithm {
    #[default]
    SHA1,
    SHA256,
    SHA512,
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SHA1 => "SHA1",
            Self::SHA256 => "SHA256",
            Self::SHA512 => "SHA512",
        })
    }
}

impl std::str::FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "SHA1" => Ok(Self::SHA1),
            "SHA256" => Ok(Self::SHA256),
            "SHA512" => Ok(Self::SHA512),
            _ => Err(format!(
                "unknown algorithm '{s}' (expected SHA1, SHA256 or SHA512)"
            )),
        }
    }
}

/// Which counter a code is computed from: the time (`totp`, the default) or
/// an event counter kept in the login state (`hotp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OtpType {
    #[default]
    Totp,
    Hotp,
}

impl fmt::Display for OtpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Totp => "totp",
            Self::Hotp => "hotp",
        })
    }
}

impl std::str::FromStr for OtpType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "totp" => Ok(Self::Totp),
            "hotp" => Ok(Self::Hotp),
            _ => Err(format!("unknown type '{s}' (expected totp or hotp)")),
        }
    }
}

/// Code parameters, validated: 6 or 8 digits, a 30 or 60 second period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OtpParams {
    pub algorithm: Algorithm,
    pub digits: u8,
    pub period: u64,
}

/// The digit counts and periods pam_totp accepts. Apps agree on these; others
/// are either unsupported by common apps or weaken the code.
pub fn check_digits(digits: u8) -> Result<u8, String> {
    match digits {
        6 | 8 => Ok(digits),
        _ => Err(format!("digits must be 6 or 8, not {digits}")),
    }
}

pub fn check_period(period: u64) -> Result<u64, String> {
    match period {
        30 | 60 => Ok(period),
        _ => Err(format!("period must be 30 or 60 seconds, not {period}")),
    }
}

impl OtpParams {
    pub fn new(algorithm: Algorithm, digits: u8, period: u64) -> Result<Self, String> {
        Ok(Self {
            algorithm,
            digits: check_digits(digits)?,
            period: check_period(period)?,
        })
    }

    /// The time step that contains `unix` seconds.
    pub fn step_at(&self, unix: u64) -> u64 {
        unix / self.period
    }
}

/// A code held on the stack and wiped on drop. No `Debug`, no `Display`.
pub struct Code {
    digits: Zeroizing<[u8; 8]>,
    len: usize,
}

impl Code {
    /// Accept exactly `len` ASCII digits.
    pub fn parse(text: &[u8], len: u8) -> Option<Self> {
        let len = usize::from(len);
        if text.len() != len || len > 8 || !text.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut digits = Zeroizing::new([0u8; 8]);
        digits[..len].copy_from_slice(text);
        Some(Self { digits, len })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.digits[..self.len]
    }

    fn ct_eq(&self, other: &Self) -> Choice {
        // Lengths are public (they come from the record), the digits are not.
        if self.len != other.len {
            return Choice::from(0);
        }
        self.as_bytes().ct_eq(other.as_bytes())
    }
}

/// An HMAC keyed once: the key's inner and outer pads are hashed when the
/// generator is made, and each code clones that state (wiped on drop) and
/// hashes only the 8-byte counter. A login computes some two dozen codes (the
/// window and the resynchronisation reach); keying once halves their hashing.
enum Keyed {
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
    Sha512(Hmac<sha2::Sha512>),
}

fn keyed<D: EagerHash>(key: &[u8]) -> Hmac<D> {
    // HMAC takes a key of any length (a longer one is hashed first, a shorter
    // one padded): new_from_slice has no error to return for HMAC.
    match Hmac::<D>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

/// RFC 4226 section 5.3: the 31-bit number at the offset that the MAC's last
/// nibble gives. The MAC is at least 20 bytes, so offset + 4 is in it.
fn truncate(mac: &[u8]) -> u32 {
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ])
}

fn counter_mac<D: EagerHash>(keyed: &Hmac<D>, counter: u64) -> u32 {
    let mut mac = keyed.clone();
    mac.update(&counter.to_be_bytes());
    // The output is wiped when it goes out of scope.
    let out = mac.finalize();
    truncate(out.as_bytes())
}

/// A key and its parameters, ready to produce codes.
pub struct Generator {
    keyed: Keyed,
    params: OtpParams,
}

impl Generator {
    pub fn new(secret: &SecretBytes, params: OtpParams) -> Self {
        // Lengths were checked when the secret and the parameters were parsed
        // (80-bit google-authenticator secrets included).
        let key = secret.as_bytes();
        let keyed = match params.algorithm {
            Algorithm::SHA1 => Keyed::Sha1(keyed(key)),
            Algorithm::SHA256 => Keyed::Sha256(keyed(key)),
            Algorithm::SHA512 => Keyed::Sha512(keyed(key)),
        };
        Self { keyed, params }
    }

    pub fn params(&self) -> OtpParams {
        self.params
    }

    /// The code for one time step, which is also the HOTP code for the
    /// counter `step` (RFC 6238 section 4: TOTP = HOTP(K, T)). No heap
    /// allocation: the digits are written into the code's wiped buffer.
    pub fn code_at_step(&self, step: u64) -> Code {
        let number = match &self.keyed {
            Keyed::Sha1(k) => counter_mac(k, step),
            Keyed::Sha256(k) => counter_mac(k, step),
            Keyed::Sha512(k) => counter_mac(k, step),
        };
        let mut code = Code {
            digits: Zeroizing::new([0u8; 8]),
            len: usize::from(self.params.digits.min(8)),
        };
        let mut rest = number;
        for digit in code.digits[..code.len].iter_mut().rev() {
            // A remainder of ten is below 256.
            *digit = b'0' + u8::try_from(rest % 10).unwrap_or(0);
            rest /= 10;
        }
        code
    }
}

/// The result of checking a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The code matches this step, which is newer than any step used before.
    Accepted { step: u64 },
    /// The code matches, but only at a step already used: a replay.
    Replayed { step: u64 },
    /// The code matches no step in the window.
    Wrong,
}

/// Check `code` against every step in `now ± window`. Every step is compared, in
/// constant time, whatever the outcome; the newest matching step wins.
pub fn verify(
    generator: &Generator,
    code: &Code,
    now: u64,
    window: u32,
    last_step: Option<u64>,
) -> Verdict {
    verify_around(
        generator,
        code,
        generator.params.step_at(now),
        window,
        last_step,
    )
}

/// [`verify`] around the step `current` rather than the step of a time:
/// a learned clock skew moves the window.
pub fn verify_around(
    generator: &Generator,
    code: &Code,
    current: u64,
    window: u32,
    last_step: Option<u64>,
) -> Verdict {
    let first = current.saturating_sub(u64::from(window));
    let last = current.saturating_add(u64::from(window));
    let mut newest: Option<u64> = None;
    for step in first..=last {
        let matched = generator.code_at_step(step).ct_eq(code);
        if bool::from(matched) {
            newest = Some(step);
        }
    }
    match (newest, last_step) {
        (None, _) => Verdict::Wrong,
        (Some(step), Some(used)) if step <= used => Verdict::Replayed { step },
        (Some(step), _) => Verdict::Accepted { step },
    }
}

/// The result of checking a HOTP code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HotpVerdict {
    /// The code matches this counter, in `[next, next + look_ahead]`.
    Accepted {
        counter: u64,
    },
    /// The code matches only the counter just before `next`: the last code
    /// used, typed again.
    Replayed,
    Wrong,
}

/// Check a HOTP `code` against the counters `next ..= next + look_ahead`
/// (RFC 4226 section 7.4), and the one before `next` to tell a replay from a
/// wrong code. Every counter is computed and compared, in constant time;
/// the lowest matching counter wins. A counter below `next` is never
/// accepted, so a code works once.
pub fn verify_hotp(generator: &Generator, code: &Code, next: u64, look_ahead: u32) -> HotpVerdict {
    let last = next.saturating_add(u64::from(look_ahead));
    let mut lowest: Option<u64> = None;
    for counter in (next..=last).rev() {
        let matched = generator.code_at_step(counter).ct_eq(code);
        if bool::from(matched) {
            lowest = Some(counter);
        }
    }
    let replayed = match next.checked_sub(1) {
        Some(previous) => bool::from(generator.code_at_step(previous).ct_eq(code)),
        None => false,
    };
    match (lowest, replayed) {
        (Some(counter), _) => HotpVerdict::Accepted { counter },
        (None, true) => HotpVerdict::Replayed,
        (None, false) => HotpVerdict::Wrong,
    }
}

/// The lowest step (or HOTP counter) `s` in `from..=to` whose code is
/// `first` while the code of `s + 1` is `second`: two consecutive codes, as
/// a resynchronisation takes them (RFC 4226 section 7.4, RFC 6238 section
/// 6). Every step in the range is computed and compared in constant time,
/// whatever matched.
pub fn find_consecutive(
    generator: &Generator,
    first: &Code,
    second: &Code,
    from: u64,
    to: u64,
) -> Option<u64> {
    let mut found = None;
    let mut previous = generator.code_at_step(from).ct_eq(first);
    let mut step = from;
    while step < to {
        let next = step + 1;
        let code = generator.code_at_step(next);
        let pair = previous & code.ct_eq(second);
        if found.is_none() && bool::from(pair) {
            found = Some(step);
        }
        previous = code.ct_eq(first);
        step = next;
    }
    found
}

/// The time steps, as offsets from `center`, whose code is `code`: every
/// step in `center ± reach` is computed and compared in constant time, and
/// the offsets that match are returned (RFC 6238 section 6, resynchronisation).
pub fn matching_offsets(generator: &Generator, code: &Code, center: u64, reach: u32) -> Vec<i64> {
    let reach = i64::from(reach);
    let mut found = Vec::new();
    for offset in -reach..=reach {
        let Some(step) = center.checked_add_signed(offset) else {
            continue;
        };
        let matched = generator.code_at_step(step).ct_eq(code);
        if bool::from(matched) {
            found.push(offset);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen(seed: &[u8], algorithm: Algorithm, digits: u8) -> Generator {
        let secret = SecretBytes::from_bytes(Zeroizing::new(seed.to_vec())).unwrap();
        Generator::new(&secret, OtpParams::new(algorithm, digits, 30).unwrap())
    }

    /// RFC 6238 Appendix B: the reference seeds for each hash, 8 digits.
    #[test]
    fn rfc6238_appendix_b_vectors() {
        let sha1 = b"12345678901234567890".as_slice();
        let sha256 = b"12345678901234567890123456789012".as_slice();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".as_slice();
        let vectors: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        let g1 = gen(sha1, Algorithm::SHA1, 8);
        let g256 = gen(sha256, Algorithm::SHA256, 8);
        let g512 = gen(sha512, Algorithm::SHA512, 8);
        for (time, c1, c256, c512) in vectors {
            let step = time / 30;
            assert_eq!(
                g1.code_at_step(step).as_bytes(),
                c1.as_bytes(),
                "SHA1 at {time}"
            );
            assert_eq!(
                g256.code_at_step(step).as_bytes(),
                c256.as_bytes(),
                "SHA256 at {time}"
            );
            assert_eq!(
                g512.code_at_step(step).as_bytes(),
                c512.as_bytes(),
                "SHA512 at {time}"
            );
        }
    }

    /// RFC 4226 Appendix D: HOTP values for counters 0 to 9, seed
    /// "12345678901234567890", SHA1, 6 digits.
    #[test]
    fn rfc4226_appendix_d_vectors() {
        let g = gen(b"12345678901234567890", Algorithm::SHA1, 6);
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            let counter = counter as u64;
            assert_eq!(
                g.code_at_step(counter).as_bytes(),
                code.as_bytes(),
                "counter {counter}"
            );
        }
    }

    /// The HMAC keyed once gives totp-rs's codes (which key it for every
    /// code) for random keys of every accepted length, short ones padded and
    /// those longer than the hash's block hashed first, for every hash and
    /// both digit counts, at steps from 0 to the top of u64.
    #[test]
    fn codes_agree_with_totp_rs_for_random_keys() {
        use totp_rs::{Algorithm as Reference, Builder, Secret};
        let mut next = crate::test_numbers();
        for len in crate::secret::MIN_SECRET_BYTES..=crate::secret::MAX_SECRET_BYTES {
            let key: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
            for (algorithm, reference) in [
                (Algorithm::SHA1, Reference::SHA1),
                (Algorithm::SHA256, Reference::SHA256),
                (Algorithm::SHA512, Reference::SHA512),
            ] {
                for digits in [6, 8] {
                    let ours = gen(&key, algorithm, digits);
                    let theirs = Builder::new()
                        .with_algorithm(reference)
                        .with_digits(digits)
                        .with_step_duration(1)
                        .with_secret(Secret::new(key.clone().into_boxed_slice()))
                        .build_noncompliant();
                    for step in [0, 1, u64::MAX, next() >> 32, next()] {
                        assert_eq!(
                            ours.code_at_step(step).as_bytes(),
                            theirs.generate(step).to_string().as_bytes(),
                            "{algorithm} {digits} digits, {len}-byte key, step {step}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn hotp_look_ahead_once_and_replay() {
        let g = gen(b"12345678901234567890", Algorithm::SHA1, 6);
        let code = |c: u64| Code::parse(g.code_at_step(c).as_bytes(), 6).unwrap();
        assert_eq!(
            verify_hotp(&g, &code(0), 0, 10),
            HotpVerdict::Accepted { counter: 0 }
        );
        assert_eq!(verify_hotp(&g, &code(0), 1, 10), HotpVerdict::Replayed);
        assert_eq!(verify_hotp(&g, &code(0), 2, 10), HotpVerdict::Wrong);
        assert_eq!(
            verify_hotp(&g, &code(9), 0, 10),
            HotpVerdict::Accepted { counter: 9 }
        );
        assert_eq!(
            verify_hotp(&g, &code(10), 0, 10),
            HotpVerdict::Accepted { counter: 10 }
        );
        assert_eq!(verify_hotp(&g, &code(11), 0, 10), HotpVerdict::Wrong);
        assert_eq!(verify_hotp(&g, &code(11), 0, 0), HotpVerdict::Wrong);
        assert_eq!(
            verify_hotp(&g, &code(11), 11, 0),
            HotpVerdict::Accepted { counter: 11 }
        );
        assert_eq!(
            verify_hotp(&g, &code(u64::MAX), u64::MAX - 3, 10),
            HotpVerdict::Accepted { counter: u64::MAX }
        );
    }

    #[test]
    fn offsets_are_found_either_side() {
        let g = gen(b"12345678901234567890", Algorithm::SHA1, 6);
        let code = |c: u64| Code::parse(g.code_at_step(c).as_bytes(), 6).unwrap();
        assert_eq!(matching_offsets(&g, &code(105), 100, 10), vec![5]);
        assert_eq!(matching_offsets(&g, &code(90), 100, 10), vec![-10]);
        assert!(matching_offsets(&g, &code(111), 100, 10).is_empty());
        assert!(matching_offsets(&g, &code(105), 100, 0).is_empty());
        assert_eq!(matching_offsets(&g, &code(0), 3, 10), vec![-3]);
    }

    #[test]
    fn six_digit_codes_are_the_low_digits() {
        let g = gen(b"12345678901234567890", Algorithm::SHA1, 6);
        assert_eq!(g.code_at_step(59 / 30).as_bytes(), b"287082");
    }

    #[test]
    fn verify_window_replay_and_wrong() {
        let g = gen(b"12345678901234567890", Algorithm::SHA1, 8);
        let now = 1_111_111_111;
        let step = now / 30;
        let code = |s: u64| Code::parse(g.code_at_step(s).as_bytes(), 8).unwrap();
        assert_eq!(
            verify(&g, &code(step), now, 1, None),
            Verdict::Accepted { step }
        );
        assert_eq!(
            verify(&g, &code(step - 1), now, 1, None),
            Verdict::Accepted { step: step - 1 }
        );
        assert_eq!(
            verify(&g, &code(step + 1), now, 1, None),
            Verdict::Accepted { step: step + 1 }
        );
        assert_eq!(verify(&g, &code(step - 2), now, 1, None), Verdict::Wrong);
        assert_eq!(
            verify(&g, &code(step - 2), now, 2, None),
            Verdict::Accepted { step: step - 2 }
        );
        assert_eq!(verify(&g, &code(step + 1), now, 0, None), Verdict::Wrong);
        assert_eq!(
            verify(&g, &code(step), now, 1, Some(step)),
            Verdict::Replayed { step }
        );
        assert_eq!(
            verify(&g, &code(step - 1), now, 1, Some(step)),
            Verdict::Replayed { step: step - 1 }
        );
        assert_eq!(
            verify(&g, &code(step + 1), now, 1, Some(step)),
            Verdict::Accepted { step: step + 1 }
        );
        let wrong = Code::parse(b"00000000", 8).unwrap();
        assert_eq!(verify(&g, &wrong, now, 1, None), Verdict::Wrong);
    }

    #[test]
    fn code_parse_is_strict() {
        assert!(Code::parse(b"123456", 6).is_some());
        for bad in [
            &b"12345"[..],
            b"1234567",
            b"12345a",
            b"+12345",
            b" 12345",
            b"",
        ] {
            assert!(Code::parse(bad, 6).is_none());
        }
        assert!(Code::parse(b"123456789", 9).is_none());
    }

    #[test]
    fn params_are_restricted() {
        assert!(OtpParams::new(Algorithm::SHA1, 7, 30).is_err());
        assert!(OtpParams::new(Algorithm::SHA1, 6, 45).is_err());
        assert!(OtpParams::new(Algorithm::SHA512, 8, 60).is_ok());
        assert_eq!("sha256".parse::<Algorithm>(), Ok(Algorithm::SHA256));
        assert!("MD5".parse::<Algorithm>().is_err());
    }
}
