//! With NO_COLOR on a terminal the QR code is drawn in the terminal's own
//! colours, which is inverted on a light theme: enroll says so under it and
//! points to the .jpg. A hardware token's pending enrollment waits for the
//! token, not for an app. Run on a real pseudo-terminal.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::io::Read;
use std::process::Stdio;
use support::Env;

/// Run totpctl with its standard output on a pseudo-terminal, standard
/// input closed, and return what the terminal showed.
fn on_terminal(env: &Env, args: &[&str], no_color: bool) -> String {
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut cmd = env.command(args);
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::from(pty.slave.try_clone().unwrap()))
        .stderr(std::fs::File::from(pty.slave));
    if no_color {
        cmd.env("NO_COLOR", "1");
    } else {
        cmd.env_remove("NO_COLOR");
    }
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    let mut master = std::fs::File::from(pty.master);
    let mut shown = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the child has gone and the terminal has nothing more (EIO).
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        shown.extend_from_slice(&buf[..n]);
    }
    assert!(child.wait().unwrap().success());
    String::from_utf8_lossy(&shown).into_owned()
}

#[test]
fn a_no_color_qr_says_it_may_be_inverted() {
    let env = Env::new("no-color");
    let shown = on_terminal(&env, &["enroll", "root", "--qr", "root-totp.jpg"], true);
    assert!(
        shown.contains("NO_COLOR is set, so the code is drawn in the terminal's own colours"),
        "{shown}"
    );
    assert!(
        shown.contains("Scan the .jpg, root-totp.jpg instead"),
        "{shown}"
    );
    assert!(
        !shown.contains("\x1b[30;107m"),
        "colour codes under NO_COLOR"
    );

    let env = Env::new("color");
    let shown = on_terminal(&env, &["enroll", "root", "--qr", "root-totp.jpg"], false);
    assert!(shown.contains("\x1b[30;107m"), "no colours on a terminal");
    assert!(!shown.contains("NO_COLOR"), "{shown}");
    assert!(shown.contains("Once the app shows codes"), "{shown}");
}

#[test]
fn a_hardware_token_waits_for_the_token() {
    let env = Env::new("token-pending");
    let run = env.run_with_input(
        &["enroll", "root", "--seed-stdin", "--format", "base32"],
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n\n",
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout
            .contains("The enrollment is pending. Once the token shows codes, activate it"),
        "{}",
        run.stdout
    );
}
