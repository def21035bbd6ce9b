//! The login-state parsers: whatever parses round-trips exactly. The files
//! store's two-slot file is read as bytes (a torn write may leave anything);
//! the TOML of one state (and of earlier releases' files) as text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use totp_core::state::LoginState;
use totp_core::store::slots;

fuzz_target!(|data: &[u8]| {
    match slots::newest(data) {
        Ok(newest) => {
            assert!(newest.slot < 2);
            // Written again (as a new file), it reads back the same; a state
            // whose TOML grew past a slot is refused, never cut.
            match slots::encode_file(&newest.state, newest.seq) {
                Ok(file) => {
                    assert_eq!(file.len(), slots::FILE);
                    let again = slots::newest(&file).expect("a written slot file parses");
                    assert_eq!(again.state, newest.state);
                    assert_eq!(again.seq, newest.seq.wrapping_add(1));
                }
                Err(e) => assert!(e.contains("more than a slot holds"), "{e}"),
            }
        }
        Err(e) => assert!(!e.contains('\n'), "multi-line error: {e:?}"),
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match LoginState::parse(text) {
        Ok(state) => {
            let text = state.to_toml().expect("a parsed state can be written");
            let again = LoginState::parse(&text).expect("a written state parses");
            assert_eq!(again, state);
            // Lock checks at the extremes of time must not overflow.
            let _ = state.locked_at(0);
            let _ = state.locked_at(u64::MAX);
        }
        Err(e) => assert!(!e.contains('\n'), "multi-line error: {e:?}"),
    }
});
