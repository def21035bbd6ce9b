//! Module-argument parsing: arguments are NUL-separated in the input. Accepted
//! arguments respect every bound; refusals are one printable line (they are logged).
#![no_main]

use libfuzzer_sys::fuzz_target;
use totp_core::args::{FirstPass, ModuleArgs, MAX_GRACE_PERIOD};

fuzz_target!(|data: &[u8]| {
    let args: Vec<String> = if data.is_empty() {
        Vec::new()
    } else {
        data.split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    };
    match ModuleArgs::parse(&args) {
        Ok(parsed) => {
            if let Some(path) = &parsed.config {
                assert!(path.is_absolute());
            }
            if let Some(prompt) = &parsed.prompt {
                assert!(!prompt.is_empty() && prompt.len() <= 200);
                assert!(!prompt.chars().any(char::is_control));
            }
            assert!(parsed.grace_period.is_none_or(|g| g <= MAX_GRACE_PERIOD));
            assert!(!(parsed.forward_pass && parsed.first_pass != FirstPass::Prompt));
            assert!(args.len() <= 7, "{} arguments accepted", args.len());
        }
        Err(e) => assert!(
            !e.chars().any(char::is_control),
            "control character in a logged error: {e:?}"
        ),
    }
});
