//! Reading a code: from the terminal with echo off, or one line from a pipe.

use nix::sys::termios::{self, LocalFlags, SetArg, Termios};
use std::io::{self, BufRead, IsTerminal, Read, Write};
use totp_core::answer::MAX_ANSWER;
use zeroize::Zeroizing;

/// Restores the terminal settings when dropped, even on an early return.
struct EchoOff {
    saved: Termios,
}

impl EchoOff {
    fn new() -> io::Result<Self> {
        let stdin = io::stdin();
        let saved = termios::tcgetattr(&stdin)?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        quiet.local_flags.insert(LocalFlags::ECHONL);
        termios::tcsetattr(&stdin, SetArg::TCSAFLUSH, &quiet)?;
        Ok(Self { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin(), SetArg::TCSAFLUSH, &self.saved);
    }
}

/// Is standard input a terminal (someone to ask)?
pub fn interactive() -> bool {
    io::stdin().is_terminal()
}

/// Ask for a code on the terminal with echo off, or, when stdin is not a
/// terminal, read one line from it without asking. `None` when the answer is
/// empty or stdin is at its end.
pub fn read_code(prompt: &str) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    read(Some(prompt))
}

/// [`read_code`], or with `json` (`--json`) the first line of standard
/// input without asking (on a terminal, echo is still off).
pub fn read_code_as(json: bool, prompt: &str) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    read((!json).then_some(prompt))
}

/// The longest seed line read by [`read_seed`]: a 1024-bit seed in hex
/// with a separator between every pair of digits.
pub const MAX_SEED_LINE: usize = 384;

/// Read a hardware token's seed: asked on the terminal with echo off (the
/// prompt unless `json`), or the first line of standard input. Never from
/// the command line. `None` when the line is empty.
pub fn read_seed(json: bool, prompt: &str) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    read_limited((!json).then_some(prompt), MAX_SEED_LINE)
}

fn read(prompt: Option<&str>) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    read_limited(prompt, MAX_ANSWER)
}

fn read_limited(prompt: Option<&str>, limit: usize) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    let _echo = if interactive() {
        if let Some(prompt) = prompt {
            eprint!("{prompt}");
            io::stderr().flush()?;
        }
        Some(EchoOff::new()?)
    } else {
        None
    };
    // One byte more than any accepted answer, so that an overlong one is
    // still refused as too long rather than cut to a valid-looking code.
    let mut line = Zeroizing::new(Vec::with_capacity(limit + 2));
    io::stdin()
        .lock()
        .take(limit as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    Ok(if line.trim_ascii().is_empty() {
        None
    } else {
        Some(line)
    })
}
