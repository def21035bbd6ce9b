//! The login-state parser: whatever parses round-trips exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use totp_core::state::LoginState;

fuzz_target!(|data: &[u8]| {
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
