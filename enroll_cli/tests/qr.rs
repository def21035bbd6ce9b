//! The enrollment QR codes must scan back to the exact URI.
//!
//! A real decoder reads them: `zbarimg` from Debian's `zbar-tools`. Without
//! it these tests fail; they never pass by skipping.

// A panic is how a helper of these tests reports a failure.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

use enroll_cli::qr::{self, MODULE_PX, QUIET_ZONE};
use enroll_cli::uri::otpauth;
use totp_core::otp::{Algorithm, OtpParams};

/// The size limit for the `.jpg` handed to the user.
const MAX_JPEG_BYTES: usize = 40 * 1024;

/// A 160-bit secret in base32: 32 characters, what enrollment creates.
const SECRET_160: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// A 512-bit secret in base32 (103 characters, no padding).
const SECRET_512: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
                          GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNA";

fn typical_uri() -> String {
    otpauth(
        "pam_totp",
        "alice@host01.example.org",
        SECRET_160,
        OtpParams::new(Algorithm::SHA1, 6, 30).expect("valid parameters"),
    )
    .to_string()
}

fn long_uri() -> String {
    otpauth(
        "Example Corporation Production Bastion Hosts: Frankfurt am Main (ÄÖÜ)",
        "firstname.lastname@eu-central.internal.example.com",
        SECRET_512,
        OtpParams::new(Algorithm::SHA512, 8, 60).expect("valid parameters"),
    )
    .to_string()
}

/// A directory of its own for one test, removed afterwards.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("enroll_cli-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).expect("create the test directory");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Decodes the single QR code in `image` with zbarimg.
fn zbarimg(image: &Path) -> String {
    let output = match Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(image)
        .output()
    {
        Ok(output) => output,
        Err(err) if err.kind() == ErrorKind::NotFound => panic!(
            "zbarimg is not installed; these tests need a real QR decoder: \
             apt-get install zbar-tools"
        ),
        Err(err) => panic!("could not run zbarimg: {err}"),
    };
    assert!(
        output.status.success(),
        "zbarimg found no QR code in {} ({}): {}",
        image.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("zbarimg printed UTF-8");
    // --raw prints the data followed by one newline.
    text.strip_suffix('\n').unwrap_or(&text).to_owned()
}

fn check_jpeg(name: &str, uri: &str) {
    let bytes = qr::jpeg(uri).expect("make the JPEG");
    assert!(
        bytes.len() <= MAX_JPEG_BYTES,
        "JPEG is {} bytes, over {MAX_JPEG_BYTES}",
        bytes.len()
    );

    let decoded = image::load_from_memory(&bytes).expect("the JPEG decodes");
    assert_eq!(decoded.color(), image::ColorType::L8, "grayscale");
    let modules = qrcode::QrCode::with_error_correction_level(uri, qrcode::EcLevel::M)
        .expect("encode")
        .width();
    let side = u32::try_from((modules + 2 * QUIET_ZONE) * MODULE_PX).expect("small");
    assert_eq!((decoded.width(), decoded.height()), (side, side));

    // Modules fill whole 8x8 JPEG blocks, so every block is flat and
    // stays close to pure black or white: no ringing at the module edges.
    let gray = decoded.to_luma8();
    let muddy = gray
        .pixels()
        .filter(|p| (16..240).contains(&p.0[0]))
        .count();
    assert_eq!(muddy, 0, "{muddy} pixels are neither black nor white");

    let dir = TempDir::new(name);
    let path = dir.0.join("qr.jpg");
    fs::write(&path, &*bytes).expect("write the JPEG");
    assert_eq!(zbarimg(&path), uri);
}

#[test]
fn jpeg_of_a_typical_uri_scans_back_exactly() {
    check_jpeg("jpeg-typical", &typical_uri());
}

#[test]
fn jpeg_of_a_long_sha512_uri_scans_back_exactly() {
    let uri = long_uri();
    assert!(uri.contains("algorithm=SHA512&digits=8&period=60"));
    assert!(uri.len() > 250, "the long URI is {} bytes", uri.len());
    check_jpeg("jpeg-long", &uri);
}

/// Turns the terminal text back into a picture as a light-on-dark terminal
/// shows it: a drawn block is light, a space is the dark background. Each
/// module becomes `scale`×`scale` pixels, written as a binary PGM.
fn terminal_to_pgm(text: &str, scale: usize, path: &Path) {
    let rows: Vec<Vec<char>> = text.lines().map(|line| line.chars().collect()).collect();
    let width = rows[0].len();
    assert!(rows.iter().all(|row| row.len() == width), "ragged lines");
    let height = rows.len() * 2;

    let mut pixels = vec![0u8; width * scale * height * scale];
    for (line, row) in rows.iter().enumerate() {
        for (x, c) in row.iter().enumerate() {
            let (top, bottom) = match c {
                '█' => (true, true),
                '▀' => (true, false),
                '▄' => (false, true),
                ' ' => (false, false),
                other => panic!("unexpected character {other:?} in the terminal QR"),
            };
            for (half, light) in [(0, top), (1, bottom)] {
                if !light {
                    continue;
                }
                let y = line * 2 + half;
                for py in y * scale..(y + 1) * scale {
                    let start = py * width * scale + x * scale;
                    pixels[start..start + scale].fill(u8::MAX);
                }
            }
        }
    }

    let mut pgm = format!("P5\n{} {}\n255\n", width * scale, height * scale).into_bytes();
    pgm.extend_from_slice(&pixels);
    fs::write(path, pgm).expect("write the PGM");
}

fn check_terminal(name: &str, uri: &str) -> usize {
    let text = qr::terminal(uri, qr::TerminalStyle::Plain).expect("render for the terminal");
    let dir = TempDir::new(name);
    let path = dir.0.join("terminal.pgm");
    terminal_to_pgm(&text, 4, &path);
    assert_eq!(zbarimg(&path), uri);
    text.lines().next().map_or(0, |line| line.chars().count())
}

#[test]
fn terminal_rendering_of_a_typical_uri_scans_back_and_fits_80_columns() {
    let uri = typical_uri();
    let width = check_terminal("terminal-typical", &uri);
    let modules = qrcode::QrCode::with_error_correction_level(&uri, qrcode::EcLevel::M)
        .expect("encode")
        .width();
    assert_eq!(width, modules + 2 * QUIET_ZONE);
    // 140 bytes give version 8 (49 modules): 57 columns, far from 80.
    assert!(width <= 60, "{width} columns for a {}-byte URI", uri.len());
}

#[test]
fn terminal_rendering_of_a_long_uri_scans_back() {
    check_terminal("terminal-long", &long_uri());
}
