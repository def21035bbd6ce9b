//! `totpctl`: enroll and manage pam_totp users.
//!
//! The command-line interface is not written yet; the enrollment pieces
//! live in the `enroll_cli` library.

#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("totpctl: no commands are implemented yet");
    ExitCode::from(2)
}
