//! The config parser: any text either parses into a config that passes every
//! documented bound, or is refused with a one-line message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use totp_core::config::{Config, MAX_FAILURES_CAP, MAX_WINDOW};

fuzz_target!(|data: &[u8]| {
    // Config::load refuses non-UTF-8 before parsing; the parser only sees text.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text) {
        Ok(config) => {
            assert_eq!(config.version, 1);
            assert!(config.paths.users_dir.is_absolute());
            assert!(config.paths.state_dir.is_absolute());
            assert!(config.otp.window <= MAX_WINDOW);
            assert!(matches!(config.otp.digits, 6 | 8));
            assert!(matches!(config.otp.period, 30 | 60));
            assert!((1..=MAX_FAILURES_CAP).contains(&config.throttle.max_failures));
            assert!(config.throttle.backoff_seconds <= config.throttle.backoff_max_seconds);
            assert!(config.throttle.backoff_max_seconds <= 300);
        }
        Err(e) => {
            // The message goes into one syslog line.
            assert!(!e.contains('\n'), "multi-line error: {e:?}");
        }
    }
});
