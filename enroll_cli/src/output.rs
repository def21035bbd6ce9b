//! Standard output that a closed pipe does not turn into a panic.
//!
//! Rust ignores SIGPIPE, so writing to a reader that went away
//! (`totpctl list | head -1`) is an EPIPE error, on which `println!`
//! panics. Everything totpctl prints on stdout goes through [`write`]
//! instead (the [`outln!`](crate::outln) and [`out!`](crate::out) macros):
//! a reader that went away ends the run quietly, with the status a shell
//! gives a program that SIGPIPE killed; any other write error ends it with
//! one line on stderr.

use std::fmt;
use std::io::{self, ErrorKind, Write};

/// The exit status of a run whose reader went away: 128 + SIGPIPE, as a
/// shell reports a program that SIGPIPE killed.
pub const READER_GONE: i32 = 128 + 13;

/// Write `args` to stdout, flushed.
pub fn write(args: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        fail(&e);
    }
}

/// Write `bytes` to stdout, flushed.
pub fn write_bytes(bytes: &[u8]) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        fail(&e);
    }
}

fn fail(e: &io::Error) -> ! {
    if e.kind() == ErrorKind::BrokenPipe {
        std::process::exit(READER_GONE);
    }
    eprintln!("totpctl: cannot write to standard output: {e}");
    std::process::exit(1);
}

/// `println!` for totpctl's stdout (see [`crate::output`]).
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for totpctl's stdout (see [`crate::output`]).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*))
    };
}
