//! RFC 6238 time-based codes: generation for a time step, and verification of an
//! answer across the allowed window with replay protection.

use crate::secret::SecretBytes;
use serde::{Deserialize, Serialize};
use std::fmt;
use subtle::{Choice, ConstantTimeEq};
use totp_rs::{Algorithm as TotpAlgorithm, Builder, Secret};
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

/// Writes a totp-rs token into a [`Code`] without a heap allocation.
struct CodeWriter<'a>(&'a mut Code);

impl fmt::Write for CodeWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let code = &mut *self.0;
        let end = code.len + s.len();
        if end > 8 {
            return Err(fmt::Error);
        }
        code.digits[code.len..end].copy_from_slice(s.as_bytes());
        code.len = end;
        Ok(())
    }
}

/// A key and its parameters, ready to produce codes.
pub struct Generator {
    totp: totp_rs::Totp,
    params: OtpParams,
}

impl Generator {
    pub fn new(secret: &SecretBytes, params: OtpParams) -> Self {
        let algorithm = match params.algorithm {
            Algorithm::SHA1 => TotpAlgorithm::SHA1,
            Algorithm::SHA256 => TotpAlgorithm::SHA256,
            Algorithm::SHA512 => TotpAlgorithm::SHA512,
        };
        // Lengths were checked when the secret and the parameters were parsed;
        // totp-rs's own check insists on 128 bits, which would refuse imported
        // 80-bit google-authenticator secrets.
        let totp = Builder::new()
            .with_algorithm(algorithm)
            .with_digits(params.digits)
            .with_step_duration(params.period)
            .with_secret(Secret::new(secret.as_bytes().to_vec().into_boxed_slice()))
            .build_noncompliant();
        Self { totp, params }
    }

    pub fn params(&self) -> OtpParams {
        self.params
    }

    /// The code for one time step.
    pub fn code_at_step(&self, step: u64) -> Code {
        let token = self.totp.generate(step.saturating_mul(self.params.period));
        let mut code = Code {
            digits: Zeroizing::new([0u8; 8]),
            len: 0,
        };
        // A token of 6 or 8 digits always fits the 8-byte buffer.
        let _ = fmt::write(&mut CodeWriter(&mut code), format_args!("{token}"));
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
    let current = generator.params.step_at(now);
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
