//! Enrolling HOTP apps and hardware tokens with totpctl, then logging in
//! through the real module: `enroll --type hotp` (otpauth://hotp URI, QR),
//! `enroll --seed-stdin` with a seed in hex and in base32, and the status
//! and list output of a HOTP enrollment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::*;
use std::process::Command;

/// RFC 4226's test seed, "12345678901234567890", in hex and base32.
const SEED_HEX: &str = "3132333435363738393031323334353637383930";
const SEED_BASE32: &str = SECRET;

fn totpctl(sb: &Sandbox, args: &[&str], stdin: &[u8]) -> PamRun {
    let mut cmd = Command::new(totpctl_path());
    cmd.current_dir(&sb.root)
        .arg("--config")
        .arg(&sb.config)
        .args(args);
    run_with_input(&mut cmd, stdin)
}

fn login(sb: &Sandbox, code: &str) -> PamRun {
    sb.pamtester("totp", "root", format!("{code}\n").as_bytes(), &[])
}

/// The files in the sandbox root: no .jpg for a hardware token.
fn loose_files(sb: &Sandbox) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(&sb.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !["users", "state", "pam.d", "config.toml"].contains(&n.as_str()))
        .collect();
    names.sort();
    names
}

#[test]
fn a_hotp_app_scans_a_hotp_uri_and_logs_in_with_its_counter() {
    require_tool("zbarimg", "zbar-tools");
    let sb = Sandbox::new("tokens-hotp-app");
    sb.service("totp", "");
    let jpg = sb.root.join("root.jpg");
    let jpg_arg = jpg.display().to_string();
    // Enroll with the app's counter at 3; the app's first code activates.
    let run = totpctl(
        &sb,
        &[
            "enroll",
            "root",
            "--type",
            "hotp",
            "--counter",
            "3",
            "--qr",
            &jpg_arg,
        ],
        b"",
    );
    assert!(run.success, "{run:?}");
    let uri = run
        .stdout
        .lines()
        .find(|l| l.starts_with("otpauth://"))
        .unwrap()
        .to_owned();
    assert!(uri.starts_with("otpauth://hotp/"), "{uri}");
    assert!(uri.ends_with("&algorithm=SHA1&digits=6&counter=3"), "{uri}");
    assert!(!uri.contains("period"), "{uri}");
    assert!(
        run.stdout.contains("HOTP, SHA1, 6 digits, first counter 3"),
        "{}",
        run.stdout
    );
    let decoded = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&jpg)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&decoded.stdout).trim(), uri);
    let secret = uri
        .split_once("secret=")
        .unwrap()
        .1
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let record = std::fs::read_to_string(sb.record_path("root")).unwrap();
    assert!(
        record.contains("type = \"hotp\"") && !record.contains("period"),
        "{record}"
    );

    // Counter 2 is before the app's first: refused. Counter 3 activates.
    let early = totpctl(
        &sb,
        &["activate", "root"],
        format!("{}\n", oathtool_hotp(&secret, 2)).as_bytes(),
    );
    assert!(!early.success, "{early:?}");
    let run = totpctl(
        &sb,
        &["activate", "root"],
        format!("{}\n", oathtool_hotp(&secret, 3)).as_bytes(),
    );
    assert!(run.success, "{run:?}");
    // The activation code is spent; the app's next code logs in.
    login(&sb, &oathtool_hotp(&secret, 3)).expect(false, "denied", "replayed code");
    login(&sb, &oathtool_hotp(&secret, 4)).expect(true, "success", "HOTP counter 4");

    let status = totpctl(&sb, &["status", "root"], b"");
    assert!(
        status.stdout.contains("type:            hotp\n"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("next counter:    5\n"),
        "{}",
        status.stdout
    );
    assert!(!status.stdout.contains("period"), "{}", status.stdout);
    let json = totpctl(&sb, &["status", "root", "--json"], b"");
    let json = json.stdout.trim_end();
    assert!(
        json.starts_with(
            "{\"user\":\"root\",\"status\":\"active\",\"type\":\"hotp\",\"algorithm\":\"SHA1\",\"digits\":6,\"issuer\":"
        ),
        "{json}"
    );
    assert!(json.contains(",\"hotp_next\":5,\"failures\":"), "{json}");
    assert!(
        !json.contains("period") && !json.contains(&secret),
        "{json}"
    );
    let list = totpctl(&sb, &["list"], b"");
    assert_eq!(
        list.stdout,
        "root active hotp SHA1/6 next=5 recovery=10/10 failures=0 locked=no\n"
    );
    let list = totpctl(&sb, &["list", "--json"], b"");
    assert_eq!(list.stdout, format!("[{json}]\n"));
}

#[test]
fn a_hardware_hotp_token_with_a_hex_seed() {
    let sb = Sandbox::new("tokens-hex");
    sb.service("totp", "");
    let input = format!("{SEED_HEX}\n{}\n", oathtool_hotp(SEED_BASE32, 0));
    let run = totpctl(
        &sb,
        &[
            "enroll",
            "root",
            "--seed-stdin",
            "--format",
            "hex",
            "--type",
            "hotp",
        ],
        input.as_bytes(),
    );
    assert!(run.success, "{run:?}");
    assert!(
        run.stdout.starts_with(
            "Enrolling 'root' with a hardware token: HOTP, SHA1, 6 digits, first counter 0.\n"
        ),
        "{}",
        run.stdout
    );
    // Nothing to scan, nothing saved, the seed never shown.
    assert!(!run.stdout.contains("otpauth") && !run.stdout.contains("Scan"));
    for seed in [SEED_HEX, SEED_BASE32] {
        assert!(
            !run.stdout.contains(seed) && !run.stderr.contains(seed),
            "{run:?}"
        );
    }
    assert_eq!(loose_files(&sb), Vec::<String>::new());
    assert!(std::fs::read_to_string(sb.record_path("root"))
        .unwrap()
        .contains("status = \"active\""));
    login(&sb, &oathtool_hotp(SEED_BASE32, 0)).expect(false, "denied", "replayed code");
    login(&sb, &oathtool_hotp(SEED_BASE32, 1)).expect(true, "success", "HOTP counter 1");
}

#[test]
fn a_hardware_totp_token_with_a_base32_seed() {
    let sb = Sandbox::new("tokens-base32");
    sb.service("totp", "");
    sb.write_config("[otp]\nwindow = 2\n");
    let code = oathtool(SEED_BASE32, "SHA1", 8, 60, 0);
    // A seed as printed, in groups and lower case.
    let input = format!("gezd gnbv gy3t qojq gezd gnbv gy3t qojq\n{code}\n");
    let run = totpctl(
        &sb,
        &[
            "enroll",
            "root",
            "--seed-stdin",
            "--digits",
            "8",
            "--period",
            "60",
        ],
        input.as_bytes(),
    );
    assert!(run.success, "{run:?}");
    assert!(
        run.stdout
            .starts_with("Enrolling 'root' with a hardware token: SHA1, 8 digits, 60 s.\n"),
        "{}",
        run.stdout
    );
    assert_eq!(loose_files(&sb), Vec::<String>::new());
    login(&sb, &code).expect(false, "denied", "replayed code");
    login(&sb, &oathtool(SEED_BASE32, "SHA1", 8, 60, 60)).expect(true, "success", "code accepted");
}

#[test]
fn a_hardware_token_without_its_code_stays_pending_and_json_has_no_qr() {
    let sb = Sandbox::new("tokens-json");
    sb.service("totp", "");
    let run = totpctl(
        &sb,
        &[
            "enroll",
            "root",
            "--seed-stdin",
            "--format",
            "hex",
            "--type",
            "hotp",
            "--counter",
            "7",
            "--json",
        ],
        format!("{SEED_HEX}\n").as_bytes(),
    );
    assert!(run.success, "{run:?}");
    let issuer = run
        .stdout
        .split("\"issuer\":")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        run.stdout,
        format!(
            "{{\"user\":\"root\",\"status\":\"pending\",\"type\":\"hotp\",\"algorithm\":\"SHA1\",\
             \"digits\":6,\"counter\":7,\"issuer\":{issuer},\"hardware_token\":true}}\n"
        )
    );
    // Pending: no login yet; the token's code for counter 7 activates.
    assert!(!login(&sb, &oathtool_hotp(SEED_BASE32, 7)).success);
    let run = totpctl(
        &sb,
        &["activate", "root", "--json"],
        format!("{}\n", oathtool_hotp(SEED_BASE32, 8)).as_bytes(),
    );
    assert!(run.success, "{run:?}");
    login(&sb, &oathtool_hotp(SEED_BASE32, 9)).expect(true, "success", "HOTP counter 9");
}

#[test]
fn bad_seeds_and_flags_are_refused_and_change_nothing() {
    let sb = Sandbox::new("tokens-bad");
    sb.service("totp", "");
    for (args, input, says) in [
        (
            &["--seed-stdin", "--format", "hex"][..],
            "31323g\n",
            "not valid hexadecimal",
        ),
        (
            &["--seed-stdin", "--format", "hex"][..],
            "3132333435\n",
            "fewer than the minimum of 80",
        ),
        (
            &["--seed-stdin"][..],
            &format!("{SEED_HEX}\n")[..],
            "not valid base32",
        ),
        (&["--seed-stdin"][..], "\n", "held no seed"),
        (
            &["--type", "totp", "--counter", "3"][..],
            "",
            "--counter is for --type hotp",
        ),
        (
            &["--type", "hotp", "--period", "60"][..],
            "",
            "--period is for --type totp",
        ),
        (
            &["--seed-stdin", "--qr", "x.jpg"][..],
            "",
            "--qr cannot be used with --seed-stdin",
        ),
        (&["--format", "hex"][..], "", "--seed-stdin"),
        (&["--type", "sotp"][..], "", "unknown type 'sotp'"),
    ] {
        let mut all = vec!["enroll", "root"];
        all.extend_from_slice(args);
        let run = totpctl(&sb, &all, input.as_bytes());
        assert!(!run.success, "{args:?}");
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
        assert!(
            !run.stderr.contains("3132") && !run.stderr.contains("GEZD"),
            "{run:?}"
        );
        assert!(!sb.record_path("root").exists(), "{args:?} wrote a record");
    }
}

/// A google-authenticator-libpam user with a HOTP secret keeps the token:
/// HOTP_COUNTER is the next counter, as google-authenticator expects it.
#[test]
fn a_google_authenticator_hotp_file_keeps_its_counter() {
    let sb = Sandbox::new("tokens-ga-hotp");
    sb.service("totp", "");
    let file = sb.root.join("google_authenticator");
    std::fs::write(
        &file,
        format!("{SECRET}\n\" HOTP_COUNTER 42\n\" WINDOW_SIZE 17\n12345678\n"),
    )
    .unwrap();
    let run = totpctl(
        &sb,
        &[
            "import-google-authenticator",
            "root",
            &file.display().to_string(),
        ],
        b"",
    );
    assert!(run.success, "{run:?}");
    assert!(
        run.stdout
            .contains("(HOTP, SHA1, 6 digits, next counter 42)"),
        "{}",
        run.stdout
    );
    // 41 was google-authenticator's last accepted code.
    login(&sb, &oathtool_hotp(SECRET, 41)).expect(false, "denied", "replayed code");
    login(&sb, &oathtool_hotp(SECRET, 40)).expect(false, "denied", "wrong code");
    login(&sb, &oathtool_hotp(SECRET, 42)).expect(true, "success", "HOTP counter 42");
    login(&sb, &oathtool_hotp(SECRET, 42)).expect(false, "denied", "replayed code");
    login(&sb, "12345678").expect(true, "success", "recovery code 1 used");
}

/// google-authenticator's learned TIME_SKEW (in steps) is kept.
#[test]
fn a_google_authenticator_time_skew_is_kept() {
    let sb = Sandbox::new("tokens-ga-skew");
    sb.service("totp", "");
    let file = sb.root.join("google_authenticator");
    std::fs::write(&file, format!("{SECRET}\n\" TOTP_AUTH\n\" TIME_SKEW 4\n")).unwrap();
    let run = totpctl(
        &sb,
        &[
            "import-google-authenticator",
            "root",
            &file.display().to_string(),
        ],
        b"",
    );
    assert!(run.success, "{run:?}");
    let status = totpctl(&sb, &["status", "root"], b"");
    assert!(
        status.stdout.contains("clock skew:      +4 steps"),
        "{}",
        status.stdout
    );
    login(&sb, &oathtool(SECRET, "SHA1", 6, 30, 120)).expect(true, "success", "code accepted");
}

/// The codes pyotp computes from `uri`, as pyotp.parse_uri reads it:
/// for HOTP the app's first `n` codes (at its initial counter and on), for
/// TOTP the code now.
fn pyotp(uri: &str, n: u32) -> Vec<String> {
    let script = "import sys, pyotp\n\
        otp = pyotp.parse_uri(sys.argv[1])\n\
        if isinstance(otp, pyotp.HOTP):\n\
        \x20   print(type(otp).__name__, *[otp.at(i) for i in range(int(sys.argv[2]))])\n\
        else:\n\
        \x20   print(type(otp).__name__, otp.now())\n";
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script, uri, &n.to_string()])
        .output()
        .expect("python3 is needed");
    assert!(
        out.status.success(),
        "pyotp failed (apt-get install python3-pyotp): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// pyotp, another implementation, reads the HOTP and TOTP URIs, and its
/// codes activate and log in.
#[test]
fn pyotp_reads_the_uris_and_its_codes_are_accepted() {
    let sb = Sandbox::new("tokens-pyotp");
    sb.service("totp", "");
    let run = totpctl(
        &sb,
        &[
            "enroll",
            "root",
            "--type",
            "hotp",
            "--counter",
            "3",
            "--json",
        ],
        b"",
    );
    assert!(run.success, "{run:?}");
    let uri = run
        .stdout
        .split("\"uri\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let codes = pyotp(&uri, 3);
    assert_eq!(codes[0], "HOTP");
    let run = totpctl(
        &sb,
        &["activate", "root", "--json"],
        format!("{}\n", codes[1]).as_bytes(),
    );
    assert!(run.success, "{run:?}");
    login(&sb, &codes[2]).expect(true, "success", "HOTP counter 4");
    login(&sb, &codes[2]).expect(false, "denied", "replayed code");

    let run = totpctl(&sb, &["enroll", "root", "--force", "--json"], b"");
    assert!(run.success, "{run:?}");
    let uri = run
        .stdout
        .split("\"uri\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let codes = pyotp(&uri, 0);
    assert_eq!(codes[0], "TOTP");
    let run = totpctl(
        &sb,
        &["activate", "root", "--json"],
        format!("{}\n", codes[1]).as_bytes(),
    );
    assert!(run.success, "{run:?}");
}

/// A google-authenticator-libpam HOTP user moves with the token: Debian's
/// google-authenticator tool writes a counter-based file, the real
/// pam_google_authenticator module takes one code (and advances
/// HOTP_COUNTER), totpctl imports the file, and pam_totp goes on from the
/// next counter.
#[test]
fn a_google_authenticator_hotp_user_moves_with_the_token() {
    require_tool("google-authenticator", "libpam-google-authenticator");
    let sb = Sandbox::new("tokens-ga-real");
    sb.service("totp", "");
    let file = sb.root.join("google_authenticator");
    let out = Command::new("google-authenticator")
        .args(["--counter-based", "--force", "--quiet", "--no-confirm"])
        .args([
            "--window-size=5",
            "--emergency-codes=1",
            "--rate-limit=3",
            "--rate-time=30",
        ])
        .arg(format!("--secret={}", file.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let secret = text.lines().next().unwrap().to_owned();
    assert!(text.contains("\" HOTP_COUNTER 1\n"), "{text}");
    sb.raw_service(
        "ga",
        &format!(
            "auth required pam_google_authenticator.so secret={} user=root\n",
            file.display()
        ),
    );
    let run = sb.pamtester(
        "ga",
        "root",
        format!("{}\n", oathtool_hotp(&secret, 1)).as_bytes(),
        &[],
    );
    assert!(run.success, "pam_google_authenticator refused: {run:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\" HOTP_COUNTER 2\n"), "{text}");

    let run = totpctl(
        &sb,
        &[
            "import-google-authenticator",
            "root",
            &file.display().to_string(),
        ],
        b"",
    );
    assert!(run.success, "{run:?}");
    assert!(run.stdout.contains("next counter 2"), "{}", run.stdout);
    login(&sb, &oathtool_hotp(&secret, 1)).expect(false, "denied", "replayed code");
    login(&sb, &oathtool_hotp(&secret, 2)).expect(true, "success", "HOTP counter 2");
}
