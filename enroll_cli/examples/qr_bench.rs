//! Hand-run measurement of the enrollment QR code:
//! `cargo run --release -p enroll_cli --example qr_bench`.
//!
//! Prints, for a few URIs, the URI length, the QR size, the JPEG size, the
//! terminal size and the mean time to build the QR code and the JPEG.

use std::time::Instant;

use enroll_cli::qr;
use enroll_cli::uri::otpauth;
use totp_core::otp::{Algorithm, OtpParams};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sha1 = OtpParams::new(Algorithm::SHA1, 6, 30)?;
    let sha512 = OtpParams::new(Algorithm::SHA512, 8, 60)?;
    let cases = [
        ("pam_totp", "alice", sha1),
        ("pam_totp", "alice@host01", sha1),
        ("pam_totp", "alice@host01.example.org", sha1),
        (
            "ACME Corp: Production",
            "firstname.lastname@bastion-01",
            sha512,
        ),
    ];
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    const ROUNDS: u32 = 200;
    for (issuer, account, params) in cases {
        let uri = otpauth(issuer, account, secret, params);
        let start = Instant::now();
        let mut bytes = 0;
        for _ in 0..ROUNDS {
            bytes = qr::jpeg(&uri)?.len();
        }
        let jpeg_time = start.elapsed() / ROUNDS;
        let start = Instant::now();
        let mut text = qr::terminal(&uri, qr::TerminalStyle::Ansi)?;
        for _ in 1..ROUNDS {
            text = qr::terminal(&uri, qr::TerminalStyle::Ansi)?;
        }
        let text_time = start.elapsed() / ROUNDS;
        let columns = text.lines().next().map_or(0, |l| l.chars().count());
        let lines = text.lines().count();
        println!(
            "URI {:3} bytes: QR {columns}x{columns} modules incl. quiet zone, \
             JPEG {bytes} bytes in {jpeg_time:?}, terminal {columns} cols x {lines} lines in {text_time:?}",
            uri.len()
        );
    }
    Ok(())
}
