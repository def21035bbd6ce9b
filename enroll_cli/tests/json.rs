//! `totpctl --json`, the machine interface of the Cockpit page, run as root:
//! the exact JSON of every command (values that change from run to run
//! masked, their shape asserted), and an error document with its stable
//! code for every failure root can meet here. Codes always go on standard
//! input, never on the command line.
//!
//! The self-service codes (not_member, other_user, admin_only, proof_failed)
//! are in `self_service.rs`, which installs setuid copies.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use support::json::{assert_error, base64_decode, parse_output, Value};
use support::{oathtool, secret_of, wrong_code, zbarimg, Env, Run, TestUser, TOTPCTL};

/// Success: exit 0, exactly one JSON document on stdout, nothing on stderr.
fn ok(run: &Run) -> Value {
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stderr, "", "{run:?}");
    parse_output(&run.stdout)
}

/// Success, whatever stderr says (audit warnings when syslog is missing).
fn ok_any_stderr(run: &Run) -> Value {
    assert_eq!(run.code, Some(0), "{run:?}");
    parse_output(&run.stdout)
}

/// A clap usage error: exit 2, code `usage`, clap's own text on stderr and
/// (without the final newline) as the message.
fn assert_usage(run: &Run, stderr: &str) {
    assert_eq!(run.stderr, stderr, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "{{\"error\":{{\"code\":\"usage\",\"message\":{}}}}}\n",
            Value::String(stderr.trim_end().into()).write()
        )
    );
    assert_eq!(run.code, Some(2), "{run:?}");
}

/// Mask `keys` and write the value back, for comparison with a snapshot.
fn masked(value: &Value, keys: &[&str]) -> String {
    let mut value = value.clone();
    for key in keys {
        value.mask(key, &format!("<{key}>"));
    }
    value.write()
}

/// Enroll `user` with --json and check everything about the answer: the
/// exact object (masked), a key that is the URI's secret in groups of
/// four, and a JPEG that zbarimg decodes to exactly the URI. Returns the
/// object and the JPEG bytes.
fn enroll_json(env: &Env, args: &[&str], expected: &str) -> (Value, Vec<u8>) {
    let mut all = vec!["enroll"];
    all.extend_from_slice(args);
    all.push("--json");
    let run = env.run(&all);
    let value = if expected.contains("\"digits\":6,\"period\":30") {
        ok(&run)
    } else {
        ok_any_stderr(&run)
    };
    assert_eq!(masked(&value, &["uri", "key", "qr_jpeg_base64"]), expected);
    let uri = value.str("uri");
    let secret = secret_of(uri);
    assert_eq!(secret.len(), 32, "{uri}");
    let key = value.str("key");
    assert_eq!(key.len(), 39, "{key}");
    assert_eq!(key.replace(' ', ""), secret);
    assert!(key.split(' ').all(|group| group.len() == 4
        && group
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))));
    let jpeg = base64_decode(value.str("qr_jpeg_base64"));
    assert!(jpeg.starts_with(&[0xff, 0xd8, 0xff]), "not a JPEG");
    assert!(jpeg.ends_with(&[0xff, 0xd9]), "not a whole JPEG");
    let file = env.dir.join("decoded.jpg");
    fs::write(&file, &jpeg).unwrap();
    assert_eq!(zbarimg(&file), uri);
    fs::remove_file(&file).unwrap();
    (value, jpeg)
}

/// The record and state files, without the temp file an earlier release
/// kept beside the state file (`state/.USER.state.tmp`).
fn store_files(env: &Env) -> Vec<String> {
    env.snapshot()
        .into_keys()
        .filter(|k| !(k.starts_with("state/.") && k.ends_with(".tmp")))
        .collect()
}

/// The files in the test directory besides the store and the config: the
/// .jpg files written.
fn extra_files(env: &Env) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(&env.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !["users", "state", "config.toml"].contains(&n.as_str()))
        .collect();
    names.sort();
    names
}

const PENDING_ROOT: &str =
    "{\"user\":\"root\",\"status\":\"pending\",\"type\":\"totp\",\"algorithm\":\"SHA1\",\
    \"digits\":6,\"period\":30,\"issuer\":\"Test Host\",\"uri\":\"<uri>\",\"key\":\"<key>\",\
    \"qr_jpeg_base64\":\"<qr_jpeg_base64>\"}";

#[test]
fn enroll_prints_the_uri_the_key_and_the_jpeg_and_writes_no_file() {
    let env = Env::new("json-enroll");
    let (value, _) = enroll_json(&env, &["root"], PENDING_ROOT);
    assert!(value
        .str("uri")
        .starts_with("otpauth://totp/Test%20Host:root?secret="));
    assert!(value
        .str("uri")
        .ends_with("&issuer=Test%20Host&algorithm=SHA1&digits=6&period=30"));
    // No .jpg unless asked for; the record is pending with that secret.
    assert_eq!(extra_files(&env), Vec::<String>::new());
    let record = env.record("root").unwrap();
    assert!(record.contains("status = \"pending\""));
    assert!(record.contains(&secret_of(value.str("uri"))));

    // Pending is not active: enrolling again needs no --force, and gives a
    // new secret.
    let (again, _) = enroll_json(&env, &[], PENDING_ROOT);
    assert_ne!(again.str("key"), value.str("key"));

    // --qr FILE: the file holds the same JPEG bytes as the JSON.
    let qr = env.dir.join("given.jpg");
    let (value, jpeg) = enroll_json(&env, &["root", "--qr", qr.to_str().unwrap()], PENDING_ROOT);
    assert_eq!(fs::read(&qr).unwrap(), jpeg);
    assert_eq!(
        fs::metadata(&qr).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(extra_files(&env), vec!["given.jpg".to_owned()]);
    assert!(env
        .record("root")
        .unwrap()
        .contains(&secret_of(value.str("uri"))));
    // ...and an existing one is refused as without --json.
    let before = env.snapshot();
    let run = env.run(&["enroll", "root", "--qr", qr.to_str().unwrap(), "--json"]);
    assert_error(
        &run,
        1,
        "qr_exists",
        &format!(
            "{} already exists; nothing was changed. Choose another file with --qr FILE, or \
             overwrite it with --force.",
            qr.display()
        ),
    );
    assert_eq!(env.snapshot(), before);

    // Other parameters and issuer, with the app warning on stderr only.
    let (value, _) = enroll_json(
        &env,
        &[
            "root",
            "--algorithm",
            "SHA256",
            "--digits",
            "8",
            "--period",
            "60",
            "--issuer",
            "Müller \"&\" Söhne",
        ],
        "{\"user\":\"root\",\"status\":\"pending\",\"type\":\"totp\",\"algorithm\":\"SHA256\",\"digits\":8,\
         \"period\":60,\"issuer\":\"Müller \\\"&\\\" Söhne\",\"uri\":\"<uri>\",\"key\":\"<key>\",\
         \"qr_jpeg_base64\":\"<qr_jpeg_base64>\"}",
    );
    assert!(value
        .str("uri")
        .ends_with("&algorithm=SHA256&digits=8&period=60"));
}

#[test]
fn enroll_refuses_an_active_enrollment_without_force() {
    let env = Env::new("json-enroll-active");
    let (value, _) = enroll_json(&env, &["root"], PENDING_ROOT);
    let secret = secret_of(value.str("uri"));
    let code = oathtool(&secret, "SHA1", 6, 30, support::now());
    ok(&env.run_with_input(&["activate", "root", "--json"], &format!("{code}\n")));
    let before = env.snapshot();
    let run = env.run(&["enroll", "root", "--json"]);
    assert_error(
        &run,
        1,
        "already_active",
        "'root' already has an active enrollment; nothing was changed. To replace it (the \
         current app entry stops working), run 'totpctl enroll root --force'.",
    );
    assert_eq!(env.snapshot(), before);
    // Root replaces it with --force, no proof asked (stdin is closed).
    let (value, _) = enroll_json(&env, &["root", "--force"], PENDING_ROOT);
    assert_ne!(secret_of(value.str("uri")), secret);
    assert_eq!(extra_files(&env), Vec::<String>::new());
}

#[test]
fn activate_reads_the_code_from_stdin_and_says_why_it_refuses() {
    let env = Env::new("json-activate");
    let run = env.run_with_input(&["activate", "root", "--json"], "123456\n");
    assert_error(
        &run,
        1,
        "not_enrolled",
        "'root' is not enrolled. Start with 'totpctl enroll root'.",
    );
    let (value, _) = enroll_json(&env, &["root"], PENDING_ROOT);
    let secret = secret_of(value.str("uri"));
    let pending = env.snapshot();

    let run = env.run(&["activate", "root", "--json"]);
    assert_error(
        &run,
        1,
        "no_code",
        "no code was given; 'root' stays pending. Run 'totpctl activate root' and type the code \
         the app shows, or pipe it on standard input.",
    );
    let run = env.run_with_input(&["activate", "root", "--json"], "\n");
    assert_eq!(run.stdout.split('"').nth(5), Some("no_code"), "{run:?}");
    for (typed, why) in [
        ("12ab56", "code is not all digits"),
        ("12345", "code has the wrong number of digits"),
        ("ABCD-EFGH-JKMN-PQRS", "code is not all digits"),
    ] {
        let run = env.run_with_input(&["activate", "root", "--json"], &format!("{typed}\n"));
        assert_error(
            &run,
            1,
            "malformed_code",
            &format!(
                "the code was not accepted ({why}); 'root' stays pending. Type the digits the \
                 app shows now. Then run 'totpctl activate root'."
            ),
        );
    }
    let wrong = wrong_code(&secret);
    let run = env.run_with_input(&["activate", "root", "--json"], &format!("{wrong}\n"));
    assert_error(
        &run,
        1,
        "wrong_code",
        "the code was not accepted (wrong code); 'root' stays pending. Check that the phone's \
         clock is right and that the app entry is the new one. Then run 'totpctl activate root'.",
    );
    // The code is never on the command line: --code is refused with --json.
    let run = env.run(&["activate", "root", "--code", &wrong, "--json"]);
    assert_error(
        &run,
        2,
        "usage",
        "--code cannot be used with --json: the code is read from standard input, never from \
         the command line",
    );
    // The record stays pending; the wrong code was counted, like a login's.
    let now_files = env.snapshot();
    assert_eq!(
        now_files.get("users/root.toml"),
        pending.get("users/root.toml")
    );
    assert_eq!(env.state("root").failures, 1);

    // The right code, first line only, CR LF tolerated.
    let now = support::now();
    let code = oathtool(&secret, "SHA1", 6, 30, now);
    let args = ["activate", "root", "--json"];
    assert!(!args
        .iter()
        .any(|a| a.contains(&code) || a.contains(&secret)));
    let run = env.run_with_input(&args, &format!("{code}\r\nignored\n"));
    let value = ok(&run);
    assert_eq!(
        masked(&value, &["recovery_codes"]),
        format!(
            "{{\"user\":\"root\",\"status\":\"active\",\"recovery_codes\":[{}]}}",
            ["\"<recovery_codes>\""; 10].join(",")
        )
    );
    let recovery = value.strings("recovery_codes");
    for code in &recovery {
        assert_eq!(code.len(), 19, "{code}");
        assert_eq!(code.matches('-').count(), 3, "{code}");
    }
    assert!(env.record("root").unwrap().contains("status = \"active\""));
    // One of them logs in, once.
    assert!(env.login("root", &recovery[3], now + 30).success());

    let run = env.run_with_input(&["activate", "root", "--json"], &format!("{code}\n"));
    assert_error(
        &run,
        1,
        "not_pending",
        "'root' is already active; there is nothing to activate. 'totpctl status root' shows \
         the enrollment.",
    );

    // A record put back to pending by hand: the step that activated it is
    // spent, so the same code is refused as used.
    let path = env.record_path("root");
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("status = \"active\"", "status = \"pending\"");
    fs::write(&path, text).unwrap();
    let before = env.snapshot();
    let run = env.run_with_input(&["activate", "root", "--json"], &format!("{code}\n"));
    assert_error(
        &run,
        1,
        "code_used",
        "the code was not accepted (code already used); 'root' stays pending. Wait for the app \
         to show the next code. Then run 'totpctl activate root'.",
    );
    // The record is unchanged; the replay was counted, as at login.
    assert_eq!(
        env.snapshot().get("users/root.toml"),
        before.get("users/root.toml")
    );
    assert_eq!(env.state("root").failures, 1);
}

#[test]
fn status_in_every_state() {
    let env = Env::new("json-status");
    let value = ok(&env.run(&["status", "root", "--json"]));
    assert_eq!(
        value.write(),
        "{\"user\":\"root\",\"status\":\"not_enrolled\",\"store\":\"files\",\"store_writes\":true}"
    );
    // --json may come anywhere (a global flag).
    let value = ok(&env.run(&["--json", "status", "root"]));
    assert_eq!(
        value.write(),
        "{\"user\":\"root\",\"status\":\"not_enrolled\",\"store\":\"files\",\"store_writes\":true}"
    );

    let (enrolled, _) = enroll_json(&env, &["root"], PENDING_ROOT);
    let secret = secret_of(enrolled.str("uri"));
    let times = ["created_at", "activated_at", "last_step", "last_code_at"];
    let value = ok(&env.run(&["status", "root", "--json"]));
    assert_eq!(
        masked(&value, &times),
        "{\"user\":\"root\",\"status\":\"pending\",\"type\":\"totp\",\"algorithm\":\"SHA1\",\
         \"digits\":6,\"period\":30,\"issuer\":\"Test Host\",\"created_at\":\"<created_at>\",\
         \"activated_at\":\"<activated_at>\",\"last_step\":\"<last_step>\",\
         \"last_code_at\":\"<last_code_at>\",\"skew\":0,\"failures\":0,\"failures_since_success\":0,\
         \"locked_until\":null,\"locked_until_unlock\":false,\"recovery_codes_left\":0,\
         \"recovery_codes_total\":0,\"store\":\"files\",\"store_writes\":true}"
    );
    assert!(matches!(value.get("created_at"), Some(Value::Number(_))));
    assert_eq!(value.get("activated_at"), Some(&Value::Null));
    assert_eq!(value.get("last_step"), Some(&Value::Null));

    let now = support::now();
    let code = oathtool(&secret, "SHA1", 6, 30, now);
    ok(&env.run_with_input(&["activate", "root", "--json"], &format!("{code}\n")));
    let wrong = wrong_code(&secret);
    assert!(!env.login("root", &wrong, now).success());
    let value = ok(&env.run(&["status", "root", "--json"]));
    assert_eq!(
        masked(&value, &times),
        "{\"user\":\"root\",\"status\":\"active\",\"type\":\"totp\",\"algorithm\":\"SHA1\",\
         \"digits\":6,\"period\":30,\"issuer\":\"Test Host\",\"created_at\":\"<created_at>\",\
         \"activated_at\":\"<activated_at>\",\"last_step\":\"<last_step>\",\
         \"last_code_at\":\"<last_code_at>\",\"skew\":0,\"failures\":1,\"failures_since_success\":1,\
         \"locked_until\":null,\"locked_until_unlock\":false,\"recovery_codes_left\":10,\
         \"recovery_codes_total\":10,\"store\":\"files\",\"store_writes\":true}"
    );
    let step = value.get("last_step").unwrap().clone();
    assert_eq!(step, Value::Number(now / 30));
    assert_eq!(
        value.get("last_code_at"),
        Some(&Value::Number(now / 30 * 30))
    );
    // Never the secret.
    assert!(!env
        .run(&["status", "root", "--json"])
        .stdout
        .contains(&secret));
    assert!(!env.run(&["list", "--json"]).stdout.contains(&secret));
}

#[test]
fn recovery_codes_disable_list_unlock_and_reset() {
    let env = Env::new("json-admin");
    let run = env.run(&["recovery-codes", "root", "--json"]);
    assert_error(
        &run,
        1,
        "not_enrolled",
        "'root' is not enrolled. Start with 'totpctl enroll root'.",
    );
    let (value, _) = enroll_json(&env, &["root"], PENDING_ROOT);
    let secret = secret_of(value.str("uri"));
    let run = env.run(&["recovery-codes", "root", "--json"]);
    assert_error(
        &run,
        1,
        "still_pending",
        "'root' has not activated the enrollment yet, and recovery codes are issued at \
         activation. Run 'totpctl activate root' first.",
    );
    let now = support::now();
    let code = oathtool(&secret, "SHA1", 6, 30, now);
    let activated = ok(&env.run_with_input(&["activate", "root", "--json"], &format!("{code}\n")));
    let first = activated.strings("recovery_codes");

    let value = ok(&env.run(&["recovery-codes", "root", "--json"]));
    assert_eq!(
        value.write(),
        "{\"user\":\"root\",\"left\":10,\"total\":10}"
    );
    assert!(env.login("root", &first[0], now + 30).success());
    let value = ok(&env.run(&["recovery-codes", "root", "--json"]));
    assert_eq!(value.write(), "{\"user\":\"root\",\"left\":9,\"total\":10}");

    // Root regenerates without a proof.
    let value = ok(&env.run(&["recovery-codes", "root", "--regenerate", "--json"]));
    assert_eq!(
        masked(&value, &["recovery_codes"]),
        format!(
            "{{\"user\":\"root\",\"recovery_codes\":[{}]}}",
            ["\"<recovery_codes>\""; 10].join(",")
        )
    );
    let renewed = value.strings("recovery_codes");
    assert!(renewed.iter().all(|c| !first.contains(c)));
    assert!(!env.login("root", &first[1], now + 60).success());
    assert!(env.login("root", &renewed[1], now + 60).success());
    let value = ok(&env.run(&["recovery-codes", "root", "--json"]));
    assert_eq!(value.write(), "{\"user\":\"root\",\"left\":9,\"total\":10}");

    // list: an array of status objects.
    let status = env.run(&["status", "root", "--json"]).stdout;
    let run = env.run(&["list", "--json"]);
    assert_eq!(run.stdout, format!("[{}]\n", status.trim_end()));
    parse_output(&run.stdout);

    // Wrong answers up to the lockout (max_failures 10), then unlock.
    for _ in 0..10 {
        assert!(!env.login("root", "000000", now + 90).success());
    }
    let value = ok(&env.run(&["status", "root", "--json"]));
    assert!(matches!(value.get("locked_until"), Some(Value::Number(_))));
    let value = ok_any_stderr(&env.run(&["unlock", "root", "--json"]));
    assert_eq!(
        value.write(),
        "{\"user\":\"root\",\"unlocked\":true,\"was_locked\":true,\"failures\":10}"
    );
    let value = ok_any_stderr(&env.run(&["unlock", "root", "--json"]));
    assert_eq!(
        value.write(),
        "{\"user\":\"root\",\"unlocked\":true,\"was_locked\":false,\"failures\":0}"
    );
    let value = ok(&env.run(&["status", "root", "--json"]));
    assert_eq!(value.get("locked_until"), Some(&Value::Null));
    assert_eq!(value.get("failures_since_success"), Some(&Value::Number(0)));

    // disable (root: no proof), then it is gone.
    let value = ok(&env.run(&["disable", "root", "--json"]));
    assert_eq!(
        value.write(),
        "{\"user\":\"root\",\"status\":\"not_enrolled\"}"
    );
    assert_eq!(store_files(&env), Vec::<String>::new());
    let run = env.run(&["disable", "root", "--json"]);
    assert_error(
        &run,
        1,
        "not_enrolled",
        "'root' is not enrolled. Start with 'totpctl enroll root'.",
    );
    let run = env.run(&["list", "--json"]);
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), "[]\n"));

    // reset: with and without a record.
    enroll_json(&env, &["root"], PENDING_ROOT);
    let value = ok_any_stderr(&env.run(&["reset", "root", "--json"]));
    assert_eq!(
        value.write(),
        "{\"user\":\"root\",\"reset\":true,\"had_record\":true}"
    );
    let value = ok_any_stderr(&env.run(&["reset", "root", "--json"]));
    assert_eq!(
        value.write(),
        "{\"user\":\"root\",\"reset\":true,\"had_record\":false}"
    );
    assert_eq!(store_files(&env), Vec::<String>::new());
}

#[test]
fn bad_users_config_and_command_lines() {
    let env = Env::new("json-errors");
    let before = env.snapshot();
    let run = env.run(&["enroll", "pamtotp-no-such-user", "--json"]);
    assert_error(
        &run,
        1,
        "unknown_user",
        "there is no user 'pamtotp-no-such-user' on this system; nothing was changed. Check the \
         spelling with 'getent passwd pamtotp-no-such-user', or create the account first.",
    );
    let run = env.run(&["status", "ro\u{7}ot\n", "--json"]);
    assert_error(
        &run,
        2,
        "invalid_user",
        "'ro\\x07ot\\x0a' is not a valid user name (user name contains control or blank \
         characters). Give the login name exactly as 'getent passwd' shows it.",
    );
    let missing = env.dir.join("nope.toml");
    let run = Run::from(
        Command::new(TOTPCTL)
            .arg("--config")
            .arg(&missing)
            .args(["status", "root", "--json"])
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    assert_error(
        &run,
        1,
        "config_error",
        &format!(
            "config {}: does not exist. Fix the config file (see pam_totp.toml(5)) or point \
             --config at another one.",
            missing.display()
        ),
    );

    // Usage errors: clap's, and the combinations --json does not take.
    let run = env.run(&["enroll", "root", "--digits", "7", "--json"]);
    assert_usage(
        &run,
        "error: invalid value '7' for '--digits <6|8>': digits must be 6 or 8, not 7\n\n\
         For more information, try '--help'.\n",
    );
    let run = env.run(&["--json", "frobnicate"]);
    assert_usage(
        &run,
        "error: unrecognized subcommand 'frobnicate'\n\nUsage: totpctl [OPTIONS] <COMMAND>\n\n\
         For more information, try '--help'.\n",
    );
    let run = env.run(&["enroll", "root", "--qr", "-", "--json"]);
    assert_error(
        &run,
        2,
        "usage",
        "--qr - cannot be used with --json: standard output carries the JSON, whose \
         qr_jpeg_base64 field holds the same JPEG",
    );
    for args in [
        &["check", "--json"][..],
        &["import-google-authenticator", "root", "--json"][..],
    ] {
        let run = env.run(args);
        assert_error(
            &run,
            2,
            "usage",
            "--json is available for enroll, activate, status, list, recovery-codes, disable, \
             reset, unlock, resync and self-service; run this command without it",
        );
    }

    // A corrupt record.
    let path = env.record_path("root");
    fs::write(&path, "version = 1\nstatus = \"active\"\nsecret = 12\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let run = env.run(&["status", "root", "--json"]);
    assert_error(
        &run,
        1,
        "corrupt_record",
        &format!(
            "user record {} is invalid: line 3: a value has the wrong type; nothing was \
             changed. Fix the file by hand, replace it with --force, or remove the enrollment \
             with 'totpctl reset root'.",
            path.display()
        ),
    );
    fs::remove_file(&path).unwrap();
    assert_eq!(env.snapshot(), before);
    assert_eq!(extra_files(&env), Vec::<String>::new());
}

/// An ordinary user and a totpctl that is not setuid: `not_root`.
#[test]
fn ordinary_user_without_self_service() {
    let env = Env::new("json-not-root");
    let user = TestUser::new("pamtotp-cli-jnr", &env);
    let (uid, gid) = user.uid_gid();
    let out = Command::new("setpriv")
        .args([
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--clear-groups".into(),
            TOTPCTL.into(),
            "status".into(),
            "--json".into(),
        ])
        .current_dir(&user.home)
        .stdin(Stdio::null())
        .output()
        .expect("run setpriv");
    assert_error(
        &Run::from(out),
        1,
        "not_root",
        "'totpctl status' must be run as root: the user records and login state are readable \
         and writable only by root, and self-service is not enabled on this system. Run it \
         again with sudo, or ask an administrator to set up two-factor login for you.",
    );
}

/// Run with stdin from `input` (None: closed) and stdout kept as bytes.
fn run_bytes(env: &Env, args: &[&str], input: Option<&str>) -> Output {
    let mut child = env
        .command(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = input {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

/// `enroll --qr -`: the JPEG on stdout, every message on stderr; the
/// activation prompt still works (code on stdin).
#[test]
fn qr_on_standard_output() {
    let env = Env::new("qr-stdout");
    let out = run_bytes(&env, &["enroll", "root", "--qr", "-"], None);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let uri = stderr
        .lines()
        .find(|l| l.starts_with("otpauth://"))
        .unwrap()
        .to_owned();
    assert!(stderr.starts_with("Enrolling 'root': SHA1, 6 digits, 30 s.\n"));
    assert!(stderr.ends_with(
        "The QR code was written to standard output as a JPEG image. Keep it somewhere safe: \
         scanning it again restores the codes on a new phone.\n\nThe enrollment is pending. \
         Once the app shows codes, activate it with: totpctl activate root\n"
    ));
    assert!(out.stdout.starts_with(&[0xff, 0xd8, 0xff]));
    assert!(out.stdout.ends_with(&[0xff, 0xd9]));
    let file = env.dir.join("out.jpg");
    fs::write(&file, &out.stdout).unwrap();
    assert_eq!(zbarimg(&file), uri);
    fs::remove_file(&file).unwrap();
    assert_eq!(extra_files(&env), Vec::<String>::new());

    // The code piped in once the URI is shown (on stderr): activated, and
    // the recovery codes are on stderr too; stdout holds the JPEG alone.
    let mut child = env
        .command(&["enroll", "root", "--qr", "-", "--force"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let uri = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no URI in {seen}");
        seen.push_str(&line);
        if line.starts_with("otpauth://") {
            break line.trim_end().to_owned();
        }
    };
    let code = oathtool(&secret_of(&uri), "SHA1", 6, 30, support::now());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{code}\n").as_bytes()).unwrap();
    drop(stdin);
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{seen}{rest}");
    assert!(
        rest.contains("The code was accepted: two-factor login is now active for 'root'.\n"),
        "{rest}"
    );
    assert_eq!(
        rest.lines()
            .filter(|l| l
                .trim_start()
                .split_once(". ")
                .is_some_and(|(n, c)| { n.parse::<u32>().is_ok() && c.len() == 19 }))
            .count(),
        10,
        "{rest}"
    );
    let file = env.dir.join("out.jpg");
    fs::write(&file, &out.stdout).unwrap();
    assert_eq!(zbarimg(&file), uri);
    fs::remove_file(&file).unwrap();
    assert!(env.record("root").unwrap().contains("status = \"active\""));

    // On a terminal, refused before anything is made.
    let before = env.snapshot();
    let pty = nix::pty::openpty(None, None).unwrap();
    let out = env
        .command(&["enroll", "root", "--qr", "-", "--force"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::from(pty.slave))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "totpctl: --qr - writes the JPEG bytes to standard output, which is a terminal; nothing \
         was changed. Redirect it to a file or a program (totpctl enroll --qr - > FILE.jpg), or \
         give a file with --qr FILE.\n"
    );
    assert_eq!(env.snapshot(), before);
    drop(pty.master);
}
