//! Single-use recovery codes: 80 random bits each, shown once, stored only as
//! salted SHA-256 hashes in the user record.
//!
//! Codes use Crockford's base32 alphabet (no I, L, O or U) in four groups of four,
//! so they are easy to read aloud and to type. With 80 bits of entropy a salted
//! fast hash is enough: the search space, not the hash cost, protects them.
//!
//! Scratch codes imported from google-authenticator (exactly 8 digits) are kept
//! the same way, hashed by [`hash_existing`]. They normalise to `########` and
//! the digits, a form no generated code can take, so the two kinds never
//! collide. An 8-digit answer is taken as an OTP when the record has 8-digit
//! codes (see [`crate::answer::classify`]), so scratch codes only make sense for
//! 6-digit records, which is what google-authenticator creates.

use crate::secret::{random_bytes, SecretError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

pub const CODE_COUNT: u32 = 10;
const CODE_CHARS: usize = 16;
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const DOMAIN: &[u8] = b"pam_totp recovery code v1\0";

/// What the record keeps of one recovery code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryHash {
    pub id: u32,
    /// 16 random bytes, hex.
    pub salt: String,
    /// SHA-256 of domain, salt and the normalised code, hex.
    pub hash: String,
}

/// A freshly generated set: the codes to show once, and the hashes to store.
pub struct NewCodes {
    pub codes: Vec<Zeroizing<String>>,
    pub hashes: Vec<RecoveryHash>,
}

/// Generate [`CODE_COUNT`] codes with ids 1..=10.
pub fn generate() -> Result<NewCodes, SecretError> {
    let mut codes = Vec::new();
    let mut hashes = Vec::new();
    for id in 1..=CODE_COUNT {
        let mut raw = Zeroizing::new([0u8; CODE_CHARS]);
        random_bytes(raw.as_mut())?;
        let mut normalised = Zeroizing::new([0u8; CODE_CHARS]);
        for (out, byte) in normalised.iter_mut().zip(raw.iter()) {
            *out = ALPHABET[usize::from(byte & 31)];
        }
        let mut salt = [0u8; 16];
        random_bytes(&mut salt)?;
        let mut shown = Zeroizing::new(String::with_capacity(CODE_CHARS + 3));
        for (i, &c) in normalised.iter().enumerate() {
            if i > 0 && i % 4 == 0 {
                shown.push('-');
            }
            shown.push(char::from(c));
        }
        hashes.push(RecoveryHash {
            id,
            salt: hex(&salt),
            hash: hex(&digest(&salt, normalised.as_ref())),
        });
        codes.push(shown);
    }
    Ok(NewCodes { codes, hashes })
}

/// Normalise what a user typed: drop dashes and spaces, fold case and Crockford's
/// look-alikes (O→0, I/L→1). None unless exactly 16 alphabet characters remain.
/// Exactly [`SCRATCH_DIGITS`] ASCII digits, as typed, normalise to the scratch form.
pub fn normalise(typed: &[u8]) -> Option<Zeroizing<[u8; CODE_CHARS]>> {
    if let Some(scratch) = normalise_scratch(typed) {
        return Some(scratch);
    }
    let mut out = Zeroizing::new([0u8; CODE_CHARS]);
    let mut n = 0;
    for &b in typed {
        let c = match b.to_ascii_uppercase() {
            b'-' | b' ' => continue,
            b'O' => b'0',
            b'I' | b'L' => b'1',
            c if ALPHABET.contains(&c) => c,
            _ => return None,
        };
        if n == CODE_CHARS {
            return None;
        }
        out[n] = c;
        n += 1;
    }
    (n == CODE_CHARS).then_some(out)
}

/// Length of a google-authenticator scratch code.
pub const SCRATCH_DIGITS: usize = 8;

/// `########` followed by the 8 digits: outside the alphabet, so distinct from
/// every generated code.
fn normalise_scratch(typed: &[u8]) -> Option<Zeroizing<[u8; CODE_CHARS]>> {
    if typed.len() != SCRATCH_DIGITS || !typed.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut out = Zeroizing::new([b'#'; CODE_CHARS]);
    out[CODE_CHARS - SCRATCH_DIGITS..].copy_from_slice(typed);
    Some(out)
}

/// Hash a code that already exists (an imported scratch code, or a recovery
/// code in either accepted form) under a fresh salt, as entry `id`.
/// `Ok(None)` when `typed` is neither form.
pub fn hash_existing(id: u32, typed: &[u8]) -> Result<Option<RecoveryHash>, SecretError> {
    let Some(normalised) = normalise(typed) else {
        return Ok(None);
    };
    let mut salt = [0u8; 16];
    random_bytes(&mut salt)?;
    Ok(Some(RecoveryHash {
        id,
        salt: hex(&salt),
        hash: hex(&digest(&salt, normalised.as_ref())),
    }))
}

/// Does this answer look like a recovery code (rather than a mistyped OTP)?
pub fn looks_like_code(typed: &[u8]) -> bool {
    normalise(typed).is_some()
}

/// Find the stored hash matching `typed`. Every hash is computed and compared,
/// whatever matches, so timing does not reveal which id matched.
pub fn find(typed: &[u8], stored: &[RecoveryHash]) -> Option<u32> {
    let normalised = normalise(typed)?;
    let mut found = None;
    for entry in stored {
        let (Some(salt), Some(expected)) = (unhex(&entry.salt), unhex(&entry.hash)) else {
            continue;
        };
        let actual = digest(&salt, normalised.as_ref());
        if bool::from(actual.as_slice().ct_eq(expected.as_slice())) {
            found = Some(entry.id);
        }
    }
    found
}

/// Check the stored entries are well formed (for record parsing).
pub fn validate(stored: &[RecoveryHash]) -> Result<(), String> {
    let mut ids = std::collections::BTreeSet::new();
    for entry in stored {
        if unhex(&entry.salt).is_none_or(|s| s.len() < 8) {
            return Err(format!("recovery entry {} has a malformed salt", entry.id));
        }
        if unhex(&entry.hash).is_none_or(|h| h.len() != 32) {
            return Err(format!("recovery entry {} has a malformed hash", entry.id));
        }
        if !ids.insert(entry.id) {
            return Err(format!("recovery id {} appears twice", entry.id));
        }
    }
    if stored.len() > 100 {
        return Err("more than 100 recovery entries".into());
    }
    Ok(())
}

fn digest(salt: &[u8], normalised: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update(salt);
    hasher.update(normalised);
    hasher.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || text.len() > 256 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_unambiguous_and_verify_once_each() {
        let set = generate().unwrap();
        assert_eq!(set.codes.len(), 10);
        validate(&set.hashes).unwrap();
        for (id, code) in (1u32..).zip(set.codes.iter()) {
            assert_eq!(code.len(), 19);
            assert_eq!(code.matches('-').count(), 3);
            assert!(!code.contains(['I', 'L', 'O', 'U']));
            assert_eq!(find(code.as_bytes(), &set.hashes), Some(id));
            let sloppy = code.to_ascii_lowercase().replace('-', " ");
            assert_eq!(find(sloppy.as_bytes(), &set.hashes), Some(id));
        }
        assert_eq!(find(b"0000-0000-0000-0000", &set.hashes), None);
    }

    #[test]
    fn normalise_rejects_wrong_shapes() {
        assert!(normalise(b"ABCD-EFGH-JKMN-PQRS").is_some());
        assert!(normalise(b"ABCD-EFGH-JKMN-PQR").is_none());
        assert!(normalise(b"ABCD-EFGH-JKMN-PQRST").is_none());
        assert!(normalise(b"ABCD-EFGH-JKMN-PQR!").is_none());
        assert!(normalise(b"ABCD-EFGH-JKMN-PQRU").is_none());
        assert!(normalise(b"123456").is_none());
        assert!(!looks_like_code(b"1234567"));
        assert!(!looks_like_code(b"123456789"));
        assert!(!looks_like_code(b"1234-5678"));
    }

    #[test]
    fn scratch_codes_hash_and_verify_apart_from_generated_codes() {
        assert!(looks_like_code(b"12345678"));
        let a = hash_existing(1, b"12345678").unwrap().unwrap();
        let b = hash_existing(2, b"87654321").unwrap().unwrap();
        assert_ne!(a.salt, b.salt);
        let stored = [a, b];
        validate(&stored).unwrap();
        assert_eq!(find(b"12345678", &stored), Some(1));
        assert_eq!(find(b"87654321", &stored), Some(2));
        assert_eq!(find(b"12345679", &stored), None);
        // No generated-code spelling reaches the scratch form.
        assert_eq!(find(b"0000-0000-1234-5678", &stored), None);
        assert!(hash_existing(3, b"1234567").unwrap().is_none());
        assert!(hash_existing(3, b"12 345 678").unwrap().is_none());
        // A generated code can be re-hashed too and still verifies.
        let set = generate().unwrap();
        let again = hash_existing(7, set.codes[0].as_bytes()).unwrap().unwrap();
        assert_eq!(find(set.codes[0].as_bytes(), &[again]), Some(7));
    }

    #[test]
    fn validate_rejects_malformed_entries() {
        let ok = RecoveryHash {
            id: 1,
            salt: "00".repeat(16),
            hash: "ab".repeat(32),
        };
        assert!(validate(std::slice::from_ref(&ok)).is_ok());
        assert!(validate(&[ok.clone(), ok.clone()]).is_err());
        assert!(validate(&[RecoveryHash {
            hash: "zz".repeat(32),
            ..ok.clone()
        }])
        .is_err());
        assert!(validate(&[RecoveryHash {
            salt: "0".into(),
            ..ok
        }])
        .is_err());
    }
}
