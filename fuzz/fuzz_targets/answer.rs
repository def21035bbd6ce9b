//! Answer classification: the first byte picks the digit count and whether
//! recovery codes are allowed; the rest is the answer as typed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use totp_core::answer::{classify, Answer, Malformed, MAX_ANSWER};
use totp_core::recovery;

fuzz_target!(|data: &[u8]| {
    let Some((&control, raw)) = data.split_first() else {
        return;
    };
    // Mostly the real digit counts, sometimes anything.
    let digits = match control & 3 {
        0 => 6,
        1 => 8,
        _ => control >> 2,
    };
    let allow_recovery = control & 0x80 != 0;
    match classify(raw, digits, allow_recovery) {
        Ok(Answer::Code(code)) => {
            let typed = raw.trim_ascii();
            assert_eq!(code.as_bytes(), typed);
            assert_eq!(code.as_bytes().len(), usize::from(digits));
            assert!(code.as_bytes().iter().all(u8::is_ascii_digit));
        }
        Ok(Answer::Recovery(typed)) => {
            assert!(allow_recovery);
            assert!(recovery::looks_like_code(&typed));
        }
        Err(Malformed::TooLong) => assert!(raw.len() > MAX_ANSWER),
        Err(Malformed::NulByte) => assert!(raw.contains(&0)),
        Err(Malformed::NotUtf8) => assert!(std::str::from_utf8(raw).is_err()),
        Err(Malformed::Empty) => assert!(raw.trim_ascii().is_empty()),
        Err(Malformed::WrongLength | Malformed::NotDigits) => {}
    }
    // Recovery normalisation on the same bytes: exactly 16 alphabet characters.
    if let Some(n) = recovery::normalise(raw) {
        assert_eq!(n.len(), 16);
    }
});
