//! One module per subcommand. Each `run` checks its input completely before it
//! takes the user's lock and changes anything.

pub mod activate;
pub mod check;
pub mod enroll;
pub mod generate;
pub mod import;
pub mod list;
pub mod recovery_codes;
pub mod remove;
pub mod status;
pub mod unlock;

use totp_core::recovery::NewCodes;

/// Show a fresh set of recovery codes, the only time they are ever shown.
pub(crate) fn print_recovery_codes(codes: &NewCodes) {
    println!();
    println!("Recovery codes: each works once at the code prompt, when the phone is not at hand.");
    println!("They are shown only now. Print them or write them down, and keep them safe:");
    println!();
    for (n, code) in (1..).zip(codes.codes.iter()) {
        println!("  {n:>2}. {}", code.as_str());
    }
}
