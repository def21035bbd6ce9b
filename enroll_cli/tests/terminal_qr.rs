//! The terminal QR code scans on a light and on a dark theme.
//!
//! The text `totpctl enroll` prints is drawn the way a terminal would: each
//! character cell is one module wide and two high, `█ ▀ ▄` and space paint
//! the foreground colour over the background, and the ANSI colour codes in
//! the text set them; where the text sets none, the theme's own colours
//! apply. The picture is then decoded by `zbarimg`, a real scanner.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use enroll_cli::qr::{terminal, TerminalStyle};
use std::path::Path;
use std::process::Command;

const URI: &str = "otpauth://totp/Example%20Host:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example%20Host&algorithm=SHA1&digits=6&period=30";

const BLACK: u8 = 0;
const WHITE: u8 = 255;

/// A terminal theme: its default foreground and background.
#[derive(Clone, Copy)]
struct Theme {
    fg: u8,
    bg: u8,
}

const LIGHT: Theme = Theme { fg: 30, bg: 250 };
const DARK: Theme = Theme { fg: 220, bg: 20 };

/// Paint `text` as a grey-scale picture, `px` pixels per module.
fn render(text: &str, theme: Theme, px: usize) -> (usize, usize, Vec<u8>) {
    let mut cells: Vec<Vec<(char, u8, u8)>> = Vec::new();
    let (mut fg, mut bg) = (theme.fg, theme.bg);
    for line in text.lines() {
        let mut row = Vec::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                assert_eq!(chars.next(), Some('['), "{line:?}");
                let mut params = String::new();
                for p in chars.by_ref() {
                    if p == 'm' {
                        break;
                    }
                    params.push(p);
                }
                for code in params.split(';') {
                    match code {
                        "0" | "" => (fg, bg) = (theme.fg, theme.bg),
                        "30" => fg = BLACK,
                        "37" | "97" => fg = WHITE,
                        "40" => bg = BLACK,
                        "47" | "107" => bg = WHITE,
                        other => panic!("unexpected SGR code {other} in {line:?}"),
                    }
                }
                continue;
            }
            row.push((c, fg, bg));
        }
        cells.push(row);
    }
    let cols = cells.iter().map(Vec::len).max().unwrap();
    // A margin of the theme's background all round, as a terminal window has.
    let margin = 4;
    let width = (cols + 2 * margin) * px;
    let height = (cells.len() * 2 + 2 * margin) * px;
    let mut pixels = vec![theme.bg; width * height];
    for (y, row) in cells.iter().enumerate() {
        for (x, &(c, fg, bg)) in row.iter().enumerate() {
            let (top, bottom) = match c {
                '█' => (fg, fg),
                '▀' => (fg, bg),
                '▄' => (bg, fg),
                ' ' => (bg, bg),
                other => panic!("unexpected character {other:?}"),
            };
            for (half, shade) in [(0, top), (1, bottom)] {
                for dy in 0..px {
                    let py = (margin + 2 * y + half) * px + dy;
                    let start = py * width + (margin + x) * px;
                    pixels[start..start + px].fill(shade);
                }
            }
        }
    }
    (width, height, pixels)
}

/// Decode a picture with zbarimg (written as a PGM file).
fn scan(name: &str, (width, height, pixels): (usize, usize, Vec<u8>)) -> Option<String> {
    let dir = std::env::temp_dir().join(format!("totpctl-terminal-qr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.pgm"));
    let mut data = format!("P5\n{width} {height}\n255\n").into_bytes();
    data.extend_from_slice(&pixels);
    std::fs::write(&path, data).unwrap();
    let out = zbarimg(&path);
    let _ = std::fs::remove_file(&path);
    out
}

fn zbarimg(path: &Path) -> Option<String> {
    let out = Command::new("zbarimg")
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .arg(path)
        .output()
        .expect("zbarimg is needed: apt-get install zbar-tools");
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap().trim_end().to_owned())
}

#[test]
fn the_ansi_qr_scans_on_a_light_and_a_dark_theme() {
    let text = terminal(URI, TerminalStyle::Ansi).unwrap();
    for (name, theme) in [("light", LIGHT), ("dark", DARK)] {
        let decoded = scan(&format!("ansi-{name}"), render(&text, theme, 4));
        assert_eq!(decoded.as_deref(), Some(URI), "ANSI QR on a {name} theme");
    }
}

#[test]
fn the_plain_qr_scans_on_a_dark_theme() {
    // Without colours (NO_COLOR, or not a terminal) the light modules are
    // drawn in the foreground colour: right on the usual dark theme.
    let text = terminal(URI, TerminalStyle::Plain).unwrap();
    assert!(!text.contains('\x1b'));
    let decoded = scan("plain-dark", render(&text, DARK, 4));
    assert_eq!(decoded.as_deref(), Some(URI));
}

#[test]
fn the_renderer_tells_the_two_themes_apart() {
    // On a light theme the plain drawing is a negative; the renderer must
    // show that, or the test above could not fail: the picture's quiet zone
    // is dark there, and light in the ANSI drawing.
    let plain = render(&terminal(URI, TerminalStyle::Plain).unwrap(), LIGHT, 1);
    let ansi = render(&terminal(URI, TerminalStyle::Ansi).unwrap(), LIGHT, 1);
    let corner = |(width, _, pixels): &(usize, usize, Vec<u8>)| pixels[4 * width + 4];
    assert_eq!(corner(&plain), LIGHT.fg);
    assert_eq!(corner(&ansi), WHITE);
}
