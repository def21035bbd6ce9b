//! Reading a code: from the terminal with echo off, or one line from a pipe.

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::termios::{self, LocalFlags, SetArg, Termios};
use std::io::{self, BufRead, IsTerminal, Read, Write};
use totp_core::answer::MAX_ANSWER;
use zeroize::Zeroizing;

/// Restores the terminal settings when dropped, even on an early return.
///
/// A signal that ends the process while echo is off (Ctrl-C, Ctrl-\\, a
/// hang-up, a kill) would leave the terminal without echo. So while echo is
/// off those signals are blocked in this thread and taken by a waiting
/// thread instead, which puts the terminal back and exits as the signal
/// would have (128 + its number).
struct EchoOff {
    saved: Termios,
    mask: SigSet,
}

/// The signals whose default action ends the process and that a person at
/// the terminal may send while being asked.
fn ending_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in [
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGHUP,
    ] {
        set.add(signal);
    }
    set
}

impl EchoOff {
    fn new() -> io::Result<Self> {
        let stdin = io::stdin();
        let saved = termios::tcgetattr(&stdin)?;
        let signals = ending_signals();
        let mask = signals.thread_swap_mask(SigmaskHow::SIG_BLOCK)?;
        let restore = saved.clone();
        // Spawned with the signals blocked, so it can take them with sigwait.
        let waiter = std::thread::Builder::new()
            .name("echo-restore".into())
            .spawn(move || {
                if let Ok(signal) = signals.wait() {
                    let _ = termios::tcsetattr(io::stdin(), SetArg::TCSAFLUSH, &restore);
                    eprintln!();
                    std::process::exit(128 + signal as i32);
                }
            });
        if let Err(e) = waiter {
            let _ = mask.thread_set_mask();
            return Err(e);
        }
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        quiet.local_flags.insert(LocalFlags::ECHONL);
        if let Err(e) = termios::tcsetattr(&stdin, SetArg::TCSAFLUSH, &quiet) {
            let _ = mask.thread_set_mask();
            return Err(e.into());
        }
        Ok(Self { saved, mask })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin(), SetArg::TCSAFLUSH, &self.saved);
        let _ = self.mask.thread_set_mask();
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

/// The number of columns of the terminal open on `fd` (TIOCGWINSZ), or
/// `None` when it is not a terminal or does not say.
#[allow(unsafe_code)]
pub fn terminal_columns(fd: std::os::fd::RawFd) -> Option<usize> {
    let mut size = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` through the pointer,
    // which points at a live, writable `winsize` of this frame; `fd` is only
    // read from, and a descriptor that is not a terminal fails with ENOTTY.
    let rc = unsafe { nix::libc::ioctl(fd, nix::libc::TIOCGWINSZ, &mut size) };
    (rc == 0 && size.ws_col > 0).then_some(usize::from(size.ws_col))
}
