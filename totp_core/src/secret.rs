//! The shared secret: bytes that are wiped on drop and can never be printed.

use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// Shortest secret accepted in a record: 80 bits, which is what
/// google-authenticator-libpam has always generated, so imported users keep working.
pub const MIN_SECRET_BYTES: usize = 10;
/// Longest secret accepted (a SHA-512 block).
pub const MAX_SECRET_BYTES: usize = 128;
/// Size of new secrets: 160 bits, as RFC 4226 recommends.
pub const NEW_SECRET_BYTES: usize = 20;

/// Secret key material. No `Debug`, no `Display`, no `Clone`: it is wiped on drop.
///
/// The flag marks a secret that is not the user's: the record came from a
/// directory that checks codes itself and keeps the seed (`ldap.verify =
/// "directory"`). Its bytes are random, known to nobody and never stored, so
/// a code computed from them by mistake matches nothing anyone can type;
/// and a record holding it cannot be serialised (see
/// [`SecretBytes::is_held_by_directory`]).
pub struct SecretBytes(Zeroizing<Vec<u8>>, bool);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretError {
    NotBase32,
    NotHex,
    TooShort { bits: usize },
    TooLong { bits: usize },
    Random,
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotBase32 => write!(f, "secret is not valid base32 (RFC 4648)"),
            Self::NotHex => write!(
                f,
                "secret is not valid hexadecimal (pairs of 0-9, a-f; spaces and colons allowed)"
            ),
            Self::TooShort { bits } => write!(
                f,
                "secret has {bits} bits, fewer than the minimum of {}",
                MIN_SECRET_BYTES * 8
            ),
            Self::TooLong { bits } => write!(
                f,
                "secret has {bits} bits, more than the maximum of {}",
                MAX_SECRET_BYTES * 8
            ),
            Self::Random => write!(f, "the operating system's random source failed"),
        }
    }
}

impl std::error::Error for SecretError {}

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

impl SecretBytes {
    /// Wrap raw bytes, enforcing the length limits.
    pub fn from_bytes(bytes: Zeroizing<Vec<u8>>) -> Result<Self, SecretError> {
        let bits = bytes.len() * 8;
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort { bits });
        }
        if bytes.len() > MAX_SECRET_BYTES {
            return Err(SecretError::TooLong { bits });
        }
        Ok(Self(bytes, false))
    }

    /// A fresh secret of [`NEW_SECRET_BYTES`] from getrandom(2).
    pub fn generate() -> Result<Self, SecretError> {
        let mut bytes = Zeroizing::new(vec![0u8; NEW_SECRET_BYTES]);
        getrandom::fill(&mut bytes).map_err(|_| SecretError::Random)?;
        Self::from_bytes(bytes)
    }

    /// The stand-in for a seed that only the directory holds (see the type's
    /// note): random, and marked so that no record can carry it anywhere.
    pub fn held_by_directory() -> Result<Self, SecretError> {
        let mut secret = Self::generate()?;
        secret.1 = true;
        Ok(secret)
    }

    /// Whether this is the stand-in of [`SecretBytes::held_by_directory`].
    pub fn is_held_by_directory(&self) -> bool {
        self.1
    }

    /// Decode RFC 4648 base32: case-insensitive, `=` padding optional,
    /// spaces ignored (as apps display secrets in groups of four).
    pub fn from_base32(text: &str) -> Result<Self, SecretError> {
        let mut out = Zeroizing::new(Vec::with_capacity(text.len() * 5 / 8 + 1));
        let mut acc: u64 = 0;
        let mut bits = 0u32;
        let mut padding = false;
        for &c in text.as_bytes() {
            match c {
                b' ' => continue,
                b'=' => {
                    padding = true;
                    continue;
                }
                _ if padding => return Err(SecretError::NotBase32),
                _ => {}
            }
            let upper = c.to_ascii_uppercase();
            let value = ALPHABET
                .iter()
                .position(|&a| a == upper)
                .ok_or(SecretError::NotBase32)?;
            acc = (acc << 5) | value as u64;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push(((acc >> bits) & 0xff) as u8);
            }
        }
        acc.zeroize();
        // Leftover bits beyond a whole byte must be zero in canonical base32; a
        // leftover of 5 or more bits means a character count no encoder produces.
        if bits >= 5 {
            return Err(SecretError::NotBase32);
        }
        Self::from_bytes(out)
    }

    /// Decode hexadecimal, as hardware token seeds are printed and as
    /// pam_oath's usersfile holds them: case-insensitive, an even number of
    /// digits; spaces, colons and dashes between them are ignored.
    pub fn from_hex(text: &str) -> Result<Self, SecretError> {
        let mut out = Zeroizing::new(Vec::with_capacity(text.len() / 2 + 1));
        let mut high: Option<u8> = None;
        for &c in text.as_bytes() {
            let nibble = match c {
                b' ' | b':' | b'-' => continue,
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(SecretError::NotHex),
            };
            match high.take() {
                None => high = Some(nibble),
                Some(h) => out.push((h << 4) | nibble),
            }
        }
        if high.is_some() {
            return Err(SecretError::NotHex);
        }
        Self::from_bytes(out)
    }

    /// Encode as unpadded upper-case base32, the form authenticator apps expect.
    pub fn to_base32(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(self.0.len() * 8 / 5 + 1));
        let mut acc: u64 = 0;
        let mut bits = 0u32;
        for &b in self.0.iter() {
            acc = (acc << 8) | u64::from(b);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
            }
        }
        if bits > 0 {
            out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
        }
        acc.zeroize();
        out
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn bits(&self) -> usize {
        self.0.len() * 8
    }
}

/// Fill a buffer from getrandom(2).
pub fn random_bytes(buf: &mut [u8]) -> Result<(), SecretError> {
    getrandom::fill(buf).map_err(|_| SecretError::Random)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_seeds() {
        let s = SecretBytes::from_hex("3132333435363738393031323334353637383930").unwrap();
        assert_eq!(s.as_bytes(), b"12345678901234567890");
        let spaced = SecretBytes::from_hex("31:32 33-34 3536373839303132333435363738394A").unwrap();
        assert_eq!(spaced.as_bytes(), b"1234567890123456789J");
        for bad in ["313", "31g2313233343536373839", "0x31323334353637383930"] {
            assert_eq!(
                SecretBytes::from_hex(bad).err(),
                Some(SecretError::NotHex),
                "{bad}"
            );
        }
        assert!(matches!(
            SecretBytes::from_hex("3132"),
            Err(SecretError::TooShort { bits: 16 })
        ));
    }

    #[test]
    fn base32_round_trip_and_rfc4648_vectors() {
        // RFC 4648 section 10 (padding optional here).
        let s = SecretBytes::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
        assert_eq!(s.as_bytes(), b"12345678901234567890");
        assert_eq!(s.to_base32().as_str(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let lower = SecretBytes::from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").unwrap();
        assert_eq!(lower.as_bytes(), b"12345678901234567890");
        // 10 bytes, with padding that is allowed but not required.
        let ten = SecretBytes::from_base32("MFRGGZDFMZTWQ2LK").unwrap();
        assert_eq!(ten.as_bytes(), b"abcdefghij");
        let odd = SecretBytes::from_bytes(Zeroizing::new(b"abcdefghijk".to_vec())).unwrap();
        assert_eq!(odd.to_base32().as_str(), "MFRGGZDFMZTWQ2LKNM");
        assert_eq!(
            SecretBytes::from_base32("MFRGGZDFMZTWQ2LKNM======")
                .unwrap()
                .as_bytes(),
            b"abcdefghijk"
        );
    }

    #[test]
    fn rejects_bad_secrets() {
        assert_eq!(
            SecretBytes::from_base32("GEZDGNBVGY3TQOJ1").err(),
            Some(SecretError::NotBase32)
        );
        assert_eq!(
            SecretBytes::from_base32("GEZDGNBV!Y3TQOJQ").err(),
            Some(SecretError::NotBase32)
        );
        assert_eq!(
            SecretBytes::from_base32("GEZD=GNBV").err(),
            Some(SecretError::NotBase32)
        );
        assert_eq!(
            SecretBytes::from_base32("GEZDGNBV").err(),
            Some(SecretError::TooShort { bits: 40 })
        );
        assert_eq!(
            SecretBytes::from_base32("").err(),
            Some(SecretError::TooShort { bits: 0 })
        );
        let huge = "A".repeat(400);
        assert_eq!(
            SecretBytes::from_base32(&huge).err(),
            Some(SecretError::TooLong { bits: 2000 })
        );
    }

    #[test]
    fn generated_secrets_are_160_bits_and_differ() {
        let a = SecretBytes::generate().unwrap();
        let b = SecretBytes::generate().unwrap();
        assert_eq!(a.bits(), 160);
        assert_ne!(a.as_bytes(), b.as_bytes());
    }
}
