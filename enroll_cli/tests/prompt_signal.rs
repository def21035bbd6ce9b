//! Ctrl-C at a code prompt puts the terminal's echo back.
//!
//! totpctl turns echo off to ask for a code. A signal that ends it there
//! (Ctrl-C is SIGINT to the terminal's foreground process) used to leave the
//! terminal without echo until `stty sane`. On a real pseudo-terminal:
//! wait for the prompt, check that echo is off, send SIGINT, and check that
//! echo is on again and that totpctl ended as SIGINT would (exit 130).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use nix::sys::signal::{kill, Signal};
use nix::sys::termios::{tcgetattr, LocalFlags};
use nix::unistd::Pid;
use std::io::Read;
use std::os::fd::AsFd;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::Env;

fn echo_on(fd: impl AsFd) -> bool {
    tcgetattr(fd)
        .unwrap()
        .local_flags
        .contains(LocalFlags::ECHO)
}

#[test]
fn ctrl_c_at_the_code_prompt_restores_echo() {
    let env = Env::new("prompt-signal");
    // A pending enrollment to activate (no code given: it stays pending).
    let run = env.run(&["enroll", "root", "--qr", "root-totp.jpg"]);
    assert_eq!(run.code, Some(0), "{run:?}");

    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = pty.slave.try_clone().unwrap();
    assert!(echo_on(&slave));
    let mut child = env
        .command(&["activate", "root"])
        .stdin(std::fs::File::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::from(pty.slave))
        .spawn()
        .unwrap();

    // The prompt goes to stderr, the pty: read it from the master side.
    let mut master = std::fs::File::from(pty.master);
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&seen).contains("Code from the app: ") {
        assert!(
            Instant::now() < deadline,
            "no prompt: {:?}",
            String::from_utf8_lossy(&seen)
        );
        let n = master.read(&mut buf).unwrap();
        seen.extend_from_slice(&buf[..n]);
    }
    // Echo goes off right after the prompt is written.
    let deadline = Instant::now() + Duration::from_secs(5);
    while echo_on(&slave) {
        assert!(Instant::now() < deadline, "echo never went off");
        std::thread::sleep(Duration::from_millis(10));
    }

    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(echo_on(&slave), "totpctl left the terminal without echo");
    // Nothing was activated.
    assert!(env.record("root").unwrap().contains("status = \"pending\""));
}
