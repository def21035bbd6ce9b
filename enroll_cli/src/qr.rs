//! The enrollment QR code: a JPEG for the `.jpg` file and a text rendering
//! for the terminal.
//!
//! Both encode the otpauth URI (see [`crate::uri`]) with error-correction
//! level M, which survives a little glare or a scratched screen while
//! keeping the code small, and both keep the 4-module quiet zone that the
//! QR specification asks for.
//!
//! The input and every output hold the secret. The outputs are returned in
//! zeroize-on-drop buffers, and the pixel buffer is wiped before return.
//! The `qrcode` crate's own working copies are freed without being wiped.

use std::fmt;

use image::codecs::jpeg::JpegEncoder;
use image::ExtendedColorType;
use qrcode::{Color, EcLevel, QrCode};
use zeroize::Zeroizing;

/// Light modules around the code, on each side (ISO/IEC 18004 asks for 4).
pub const QUIET_ZONE: usize = 4;

/// Pixels per module side in the JPEG. A module then fills exactly one
/// 8×8 JPEG block, and since the quiet zone is a whole number of modules,
/// every block is a single flat colour: the JPEG stores one DC value per
/// block, has no ringing at module edges, and stays a few kilobytes.
pub const MODULE_PX: usize = 8;

/// JPEG quality. With block-aligned modules the quantisation only nudges
/// the flat grey levels (by a few steps out of 255); 90 keeps them within
/// a couple of levels of black and white.
pub const JPEG_QUALITY: u8 = 90;

/// Why a QR code could not be made. No variant carries the URI, so the
/// message never shows the secret.
#[derive(Debug)]
pub enum QrError {
    /// The URI does not fit in the largest QR code at level M.
    TooLong {
        /// Length of the URI in bytes.
        bytes: usize,
    },
    /// The QR encoder refused the data for another reason.
    Encode(qrcode::types::QrError),
    /// The JPEG encoder failed.
    Jpeg(image::ImageError),
}

impl fmt::Display for QrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QrError::TooLong { bytes } => write!(
                f,
                "the otpauth URI is too long for a QR code ({bytes} bytes); \
                 use a shorter issuer or account name"
            ),
            QrError::Encode(err) => write!(f, "could not build the QR code: {err}"),
            QrError::Jpeg(err) => write!(f, "could not encode the QR code as JPEG: {err}"),
        }
    }
}

impl std::error::Error for QrError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            QrError::TooLong { .. } => None,
            QrError::Encode(err) => Some(err),
            QrError::Jpeg(err) => Some(err),
        }
    }
}

/// Encodes `uri` as a QR code at error-correction level M.
fn encode(uri: &str) -> Result<QrCode, QrError> {
    QrCode::with_error_correction_level(uri.as_bytes(), EcLevel::M).map_err(|err| match err {
        qrcode::types::QrError::DataTooLong => QrError::TooLong { bytes: uri.len() },
        other => QrError::Encode(other),
    })
}

/// The QR code of `uri` as a grayscale baseline JPEG: 8 px per module and
/// a 4-module quiet zone, dark modules black on white.
///
/// Returns the file contents; the caller writes them (0600, `create_new`,
/// no symlinks). A typical enrollment URI (120 to 140 bytes, QR version 7
/// or 8) gives a 424 to 456 px square of 4.5 to 5.5 KB.
pub fn jpeg(uri: &str) -> Result<Zeroizing<Vec<u8>>, QrError> {
    let code = encode(uri)?;
    let modules = code.width();
    let side = (modules + 2 * QUIET_ZONE) * MODULE_PX;
    // The largest QR code (177 modules) gives 1480 px: always fits.
    let side_u32 = u32::try_from(side).map_err(|_| QrError::TooLong { bytes: uri.len() })?;

    let mut pixels = Zeroizing::new(vec![u8::MAX; side * side]);
    for y in 0..modules {
        for x in 0..modules {
            if code[(x, y)] == Color::Dark {
                let left = (x + QUIET_ZONE) * MODULE_PX;
                let top = (y + QUIET_ZONE) * MODULE_PX;
                for row in pixels.chunks_exact_mut(side).skip(top).take(MODULE_PX) {
                    row[left..left + MODULE_PX].fill(0);
                }
            }
        }
    }

    // Reserve enough that the encoder never reallocates (and so never
    // leaves a stray copy behind): a flat block costs well under 8 bytes.
    let blocks = side / MODULE_PX;
    let mut out = Zeroizing::new(Vec::with_capacity(4096 + 8 * blocks * blocks));
    JpegEncoder::new_with_quality(&mut *out, JPEG_QUALITY)
        .encode(&pixels, side_u32, side_u32, ExtendedColorType::L8)
        .map_err(QrError::Jpeg)?;
    Ok(out)
}

/// How the terminal QR is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TerminalStyle {
    /// Black modules on a white square, with explicit ANSI colours, so that
    /// it scans the same on a light or a dark theme (as `qrencode -t
    /// ANSIUTF8` does). Each line sets its colours and resets them at its end.
    Ansi,
    /// No colour codes (`NO_COLOR`, or not a terminal): light modules and the
    /// quiet zone are drawn in the foreground colour, which is right on the
    /// usual light-on-dark terminal and inverted on a dark-on-light one.
    Plain,
}

impl TerminalStyle {
    /// [`Ansi`](Self::Ansi) for a terminal, unless `NO_COLOR` is set
    /// (<https://no-color.org>); else [`Plain`](Self::Plain).
    pub fn choose(is_terminal: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if is_terminal && !no_color {
            Self::Ansi
        } else {
            Self::Plain
        }
    }
}

/// Black on white: SGR 30 (black foreground) and 107 (bright white background).
const ANSI_START: &str = "\x1b[30;107m";
const ANSI_RESET: &str = "\x1b[0m";

/// The QR code of `uri` for a terminal, two module rows per text line,
/// drawn with `█ ▀ ▄` and space, each line ending in `\n`; see
/// [`TerminalStyle`] for the colours.
///
/// The text is `width + 8` columns wide and `(width + 9) / 2` lines high:
/// a typical enrollment URI (120 to 140 bytes, QR version 7 or 8, 45 or 49
/// modules) needs 53 to 57 columns and 27 to 29 lines. Anything up to
/// version 13 (about 300 bytes of URI) fits in 80 columns; [`columns`]
/// says how many a URI needs.
pub fn terminal(uri: &str, style: TerminalStyle) -> Result<Zeroizing<String>, QrError> {
    let code = encode(uri)?;
    let modules = code.width();
    let side = modules + 2 * QUIET_ZONE;
    // Dark modules of the padded code. Below the last row (odd side) is
    // outside the code: light in the ANSI square, background when plain.
    let dark = |x: usize, y: usize| -> Option<bool> {
        if y >= side {
            return None;
        }
        let inside = QUIET_ZONE..QUIET_ZONE + modules;
        Some(
            inside.contains(&x)
                && inside.contains(&y)
                && code[(x - QUIET_ZONE, y - QUIET_ZONE)] == Color::Dark,
        )
    };
    // A block is drawn where the foreground colour belongs: the dark modules
    // (ANSI, black on white) or the light ones (plain, light on dark).
    let drawn = |x: usize, y: usize| -> bool {
        match (style, dark(x, y)) {
            (TerminalStyle::Ansi, cell) => cell == Some(true),
            (TerminalStyle::Plain, cell) => cell == Some(false),
        }
    };

    let lines = side.div_ceil(2);
    let colours = if style == TerminalStyle::Ansi {
        ANSI_START.len() + ANSI_RESET.len()
    } else {
        0
    };
    let mut text = Zeroizing::new(String::with_capacity(
        lines * (side * '█'.len_utf8() + colours + 1),
    ));
    for line in 0..lines {
        if style == TerminalStyle::Ansi {
            text.push_str(ANSI_START);
        }
        for x in 0..side {
            text.push(match (drawn(x, 2 * line), drawn(x, 2 * line + 1)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        if style == TerminalStyle::Ansi {
            text.push_str(ANSI_RESET);
        }
        text.push('\n');
    }
    Ok(text)
}

/// How many terminal columns the QR code of `uri` needs.
pub fn columns(uri: &str) -> Result<usize, QrError> {
    Ok(encode(uri)?.width() + 2 * QUIET_ZONE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_long_is_reported_without_the_data() {
        let uri = format!("otpauth://totp/x?secret={}", "S".repeat(4000));
        let err = jpeg(&uri).unwrap_err();
        assert!(matches!(err, QrError::TooLong { bytes } if bytes == uri.len()));
        let message = err.to_string();
        assert!(!message.contains("SSSS"), "{message}");
        assert!(terminal(&uri, TerminalStyle::Ansi).is_err());
    }

    #[test]
    fn terminal_lines_have_the_same_width_and_only_block_characters() {
        let text = terminal("otpauth://totp/a:b?secret=AAAA", TerminalStyle::Plain).unwrap();
        let code = encode("otpauth://totp/a:b?secret=AAAA").unwrap();
        let side = code.width() + 2 * QUIET_ZONE;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), side.div_ceil(2));
        for line in &lines {
            assert_eq!(line.chars().count(), side);
            assert!(line.chars().all(|c| matches!(c, '█' | '▀' | '▄' | ' ')));
        }
        // The quiet zone is light: the first two lines are solid blocks.
        assert!(lines[0].chars().all(|c| c == '█'));
        assert!(lines[1].chars().all(|c| c == '█'));
        assert_eq!(columns("otpauth://totp/a:b?secret=AAAA").unwrap(), side);
    }

    #[test]
    fn ansi_lines_set_black_on_white_and_reset() {
        let text = terminal("otpauth://totp/a:b?secret=AAAA", TerminalStyle::Ansi).unwrap();
        for line in text.lines() {
            let body = line
                .strip_prefix(ANSI_START)
                .and_then(|l| l.strip_suffix(ANSI_RESET))
                .unwrap_or_else(|| panic!("{line:?}"));
            assert!(body.chars().all(|c| matches!(c, '█' | '▀' | '▄' | ' ')));
        }
        // The quiet zone is white here: spaces on the white background.
        let first = text.lines().next().unwrap();
        assert!(first[ANSI_START.len()..first.len() - ANSI_RESET.len()]
            .chars()
            .all(|c| c == ' '));
    }
}
