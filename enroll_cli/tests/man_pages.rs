//! The man pages: totpctl(8) and one page per subcommand, generated from the
//! clap definition as the package build does (`totpctl generate-man`), and
//! the hand-written pam_totp(8) and pam_totp.toml(5), all pass
//! `mandoc -Tlint` (package mandoc) with no warning, and carry every option,
//! the file formats, FILES, EXIT STATUS and SEE ALSO. Without mandoc this
//! fails; it never passes by skipping.

// A panic is how a helper of these tests reports a failure.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

const TOTPCTL: &str = env!("CARGO_BIN_EXE_totpctl");

#[test]
fn every_page_is_clean_and_complete() {
    let dir = std::env::temp_dir().join(format!("totpctl-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let run = Command::new(TOTPCTL)
        .arg("generate-man")
        .arg(&dir)
        .env("SOURCE_DATE_EPOCH", "1764633600")
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");

    let mut pages: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pages.sort();
    let names: Vec<String> = pages
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "totpctl.8",
        "totpctl-enroll.8",
        "totpctl-resync.8",
        "totpctl-import-google-authenticator.8",
        "totpctl-import-tokens.8",
        "totpctl-import-pskc.8",
        "totpctl-import-pam-oath.8",
        "totpctl-check.8",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "no {expected} in {names:?}"
        );
    }
    // The hidden build commands get no page.
    assert!(!names.iter().any(|n| n.contains("generate")), "{names:?}");

    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../man");
    pages.push(source.join("pam_totp.8"));
    pages.push(source.join("pam_totp.toml.5"));
    let lint = Command::new("mandoc")
        .args(["-Tlint", "-Wwarning"])
        .args(&pages)
        .output()
        .expect("mandoc is not installed: apt-get install mandoc");
    assert!(
        lint.status.success() && lint.stdout.is_empty() && lint.stderr.is_empty(),
        "mandoc -Tlint: {}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );

    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let main = read("totpctl.8");
    for section in [
        ".SH \"FILE FORMATS\"",
        ".SH FILES",
        ".SH \"EXIT STATUS\"",
        ".SH \"SEE ALSO\"",
        ".BR totpctl\\-resync (8),",
        "2025\\-12\\-02",
    ] {
        assert!(
            main.contains(section) || main.contains(&section.replace("\\-", "-")),
            "totpctl.8 lacks {section}"
        );
    }
    let pskc = read("totpctl-import-pskc.8");
    for option in [
        "\\-\\-key\\-file",
        "\\-\\-password\\-file",
        "\\-\\-map",
        "\\-\\-dry\\-run",
    ] {
        assert!(
            pskc.contains(option),
            "totpctl-import-pskc.8 lacks {option}"
        );
    }
    assert!(pskc.contains(".SH \"FILE FORMAT\"") && pskc.contains(".SH \"EXIT STATUS\""));
    let ga = read("totpctl-import-google-authenticator.8");
    for option in [
        "\\-\\-all",
        "\\-\\-secret",
        "\\-\\-dry\\-run",
        "\\-\\-force",
    ] {
        assert!(
            ga.contains(option),
            "import-google-authenticator page lacks {option}"
        );
    }
    let pam = std::fs::read_to_string(source.join("pam_totp.8")).unwrap();
    for text in [
        "pam_totp_ldap.so",
        "echo_verification_code",
        "noskewadj",
        "alwaysok",
    ] {
        assert!(pam.contains(text), "pam_totp.8 lacks {text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
