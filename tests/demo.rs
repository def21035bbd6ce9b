//! The README's "Try it" command, non-interactively: `DEMO_AUTO=1
//! scripts/demo.sh` enrolls, activates and logs in through pam_wrapper,
//! pam_matrix and the built module, and shows that a replayed code is
//! refused. It must end in success and leave /etc exactly as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::*;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every entry under `dir`: file contents, or a symlink's target.
fn snapshot(dir: &Path, into: &mut BTreeMap<PathBuf, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            into.insert(path, target.into_os_string().into_encoded_bytes());
        } else if kind.is_dir() {
            snapshot(&path, into);
        } else {
            into.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
        }
    }
}

/// What the demo could conceivably touch under /etc.
fn etc_state() -> BTreeMap<PathBuf, Vec<u8>> {
    let mut state = BTreeMap::new();
    snapshot(Path::new("/etc/pam.d"), &mut state);
    snapshot(Path::new("/etc/pam_totp"), &mut state);
    snapshot(Path::new("/etc/security"), &mut state);
    for file in ["/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"] {
        state.insert(PathBuf::from(file), std::fs::read(file).unwrap_or_default());
    }
    state.insert(
        PathBuf::from("/etc/pam_totp (exists)"),
        vec![u8::from(Path::new("/etc/pam_totp").exists())],
    );
    state
}

#[test]
fn demo_auto_logs_in_refuses_the_replay_and_leaves_etc_alone() {
    require_tool("pamtester", "pamtester");
    require_tool("oathtool", "oathtool");
    pam_wrapper_module("pam_matrix.so");
    module_path();
    totpctl_path();
    let sb = Sandbox::new("demo");
    let qr = sb.root.join("demo.jpg");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/demo.sh");

    let before = etc_state();
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(&sb.root)
        .env("DEMO_AUTO", "1")
        .env("DEMO_QR", &qr)
        .env("DEMO_BUILD_DIR", target_dir())
        .output()
        .unwrap();
    let after = etc_state();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    assert!(out.status.success(), "demo failed:\n{text}");
    for want in [
        "RESULT: login succeeded (pam_totp: code accepted)",
        "RESULT: login refused: replayed code (already used)",
        "result=success reason=\"code accepted\"",
        "DEMO_AUTO: OK",
        "otpauth://totp/",
    ] {
        assert!(text.contains(want), "want {want:?} in:\n{text}");
    }
    assert!(
        !text.contains("PWRAP_"),
        "pam_wrapper's lines are hidden:\n{text}"
    );

    // The .jpg is where the demo says, private, and a JPEG.
    let jpg = std::fs::read(&qr).unwrap();
    assert_eq!(&jpg[..2], &[0xFF, 0xD8], "not a JPEG");
    assert_eq!(
        std::fs::metadata(&qr).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Its sandbox is gone, and /etc is untouched.
    let tmp = text
        .lines()
        .find_map(|l| l.strip_prefix("The sandbox "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the demo names its sandbox");
    assert!(
        tmp.starts_with("/tmp/pam_totp-demo.") && !Path::new(tmp).exists(),
        "{tmp} left behind"
    );
    let changed: Vec<&PathBuf> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert!(changed.is_empty(), "the demo changed /etc: {changed:?}");
}
