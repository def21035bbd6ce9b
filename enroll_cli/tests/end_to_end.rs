//! The stories of the issue, without PAM: enroll writes a .jpg that zbarimg
//! decodes to the printed URI, oathtool computes codes from it, activate
//! accepts one, and the module's own login logic (`totp_core::login`) then
//! refuses that code as a replay and accepts the next one.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Stdio;
use support::{oathtool, secret_of, zbarimg, Env, TestUser};

const MAX_JPEG_BYTES: u64 = 40 * 1024;

/// Enroll root with `params`, decode the .jpg, activate with an oathtool code
/// and check replay and the next step through the module's login logic.
fn enroll_activate_login(name: &str, params: &[&str], algorithm: &str, digits: u8, period: u64) {
    let env = Env::new(name);
    let qr = env.dir.join("root.jpg");
    let mut args = vec!["enroll", "root", "--qr", qr.to_str().unwrap()];
    args.extend_from_slice(params);
    let run = env.run(&args);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.ends_with(
        "The enrollment is pending. Once the app shows codes, activate it with: totpctl activate root\n"
    ));

    // The .jpg: private, small, and decoding to exactly the printed URI.
    let meta = fs::symlink_metadata(&qr).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert!(meta.len() <= MAX_JPEG_BYTES, "{} bytes", meta.len());
    let uri = run.uri();
    assert_eq!(zbarimg(&qr), uri);
    assert!(uri.starts_with("otpauth://totp/Test%20Host:root?secret="));
    assert!(uri.ends_with(&format!(
        "&issuer=Test%20Host&algorithm={algorithm}&digits={digits}&period={period}"
    )));
    let secret = secret_of(&uri);
    assert_eq!(secret.len(), 32, "160 bits");

    // Pending: the module follows the unenrolled policy (deny).
    let now = support::now();
    let code = oathtool(&secret, algorithm, digits, period, now);
    let pending = env.login("root", &code, now);
    assert!(!pending.success());
    assert!(pending
        .outcome
        .line
        .contains("enrollment pending activation"));

    let run = env.run_with_input(&["activate", "root"], &format!("{code}\n"));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run
        .stdout
        .starts_with("The code was accepted: two-factor login is now active for 'root'.\n"));
    assert_eq!(run.recovery_codes().len(), 10);
    let step = now / period;
    assert_eq!(env.state("root").last_step, Some(step));

    // The activation code is spent.
    let replay = env.login("root", &code, now);
    assert!(!replay.success());
    assert!(
        replay.outcome.line.contains("replayed code"),
        "{:?}",
        replay.outcome
    );

    // The next step's code logs in.
    let later = now + period;
    let next = oathtool(&secret, algorithm, digits, period, later);
    let login = env.login("root", &next, later);
    assert!(login.success(), "{:?}", login.outcome);

    // Lost phone: the same .jpg, decoded again after the state has moved on,
    // still gives working codes.
    let again = secret_of(&zbarimg(&qr));
    let much_later = later + 2 * period;
    let code = oathtool(&again, algorithm, digits, period, much_later);
    let login = env.login("root", &code, much_later);
    assert!(login.success(), "{:?}", login.outcome);
}

#[test]
fn sha1_six_digits_thirty_seconds() {
    enroll_activate_login("e2e-sha1", &[], "SHA1", 6, 30);
}

#[test]
fn sha256_eight_digits_thirty_seconds() {
    enroll_activate_login(
        "e2e-sha256",
        &["--algorithm", "SHA256", "--digits", "8"],
        "SHA256",
        8,
        30,
    );
}

#[test]
fn sha512_eight_digits_sixty_seconds() {
    enroll_activate_login(
        "e2e-sha512",
        &["--algorithm", "sha512", "--digits", "8", "--period", "60"],
        "SHA512",
        8,
        60,
    );
}

#[test]
fn unusual_parameters_warn_about_apps() {
    let env = Env::new("warn");
    let run = env.run(&["enroll", "root", "--digits", "8", "--period", "60"]);
    assert_eq!(run.code, Some(0));
    assert_eq!(
        run.stderr,
        "totpctl: warning: some authenticator apps, Google Authenticator among them, ignore 8 \
         digits or a 60 s period, and then show codes that do not work. Activation proves that \
         the app gets them right.\n"
    );
    // A wrong code on such an enrollment says the app may ignore them.
    // (8 digits: one in 10^8 per step that this is the right code.)
    let run = env.run_with_input(&["activate", "root"], "12345678\n");
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains(
            "The app may also ignore 8 digits or a 60 s period (Google Authenticator does)"
        ),
        "{}",
        run.stderr
    );
    let plain = Env::new("no-warn");
    let run = plain.run(&["enroll", "root"]);
    assert_eq!(run.stderr, "");
}

#[test]
fn code_piped_into_enroll_activates() {
    let env = Env::new("piped");
    let mut child = env
        .command(&["enroll", "root"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let uri = loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "no URI in {seen}");
        seen.push_str(&line);
        if line.starts_with("otpauth://") {
            break line.trim_end().to_owned();
        }
    };
    let code = oathtool(&secret_of(&uri), "SHA1", 6, 30, support::now());
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{code}").unwrap();
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{rest}");
    assert!(rest.contains("The code was accepted"), "{rest}");
    assert!(env.record("root").unwrap().contains("status = \"active\""));
    assert_eq!(zbarimg(&env.dir.join("root-totp.jpg")), uri);
}

#[test]
fn wrong_code_piped_into_enroll_leaves_it_pending() {
    let env = Env::new("piped-wrong");
    let run = env.run_with_input(&["enroll", "root"], "12x456\n");
    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.stderr,
        "totpctl: the code was not accepted (code is not all digits); 'root' stays pending. Type \
         the digits the app shows now. Then run 'totpctl activate root'.\n"
    );
    assert!(env.record("root").unwrap().contains("status = \"pending\""));
}

#[test]
fn jpg_belongs_to_the_user_and_force_replaces() {
    let env = Env::new("owner");
    let user = TestUser::new("pamtotp-cli-own", &env);
    // Root writes another user's .jpg as that user: in their home.
    let qr = user.home.join("own.jpg");
    let run = env.run(&["enroll", &user.name, "--qr", qr.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let meta = fs::metadata(&qr).unwrap();
    assert_eq!((meta.uid(), meta.gid()), user.uid_gid());
    assert_eq!(meta.mode() & 0o7777, 0o600);
    let first = run.uri();

    // Pending may be replaced; the existing .jpg only with --force.
    let run = env.run(&["enroll", &user.name, "--qr", qr.to_str().unwrap()]);
    assert_eq!(run.code, Some(1));
    let run = env.run(&[
        "enroll",
        &user.name,
        "--qr",
        qr.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_ne!(run.uri(), first);
    assert_eq!(zbarimg(&qr), run.uri());
}

/// Finding 8 of issue 9, replayed: a user plants a symlink to a root-only
/// directory in a directory of their own, and root's `enroll USER --qr`
/// through it used to create a USER-owned file there (and with `--force`,
/// unlink a root-owned one). Root now writes the file as USER, who can
/// create or remove nothing there.
#[test]
fn qr_path_through_a_users_symlink_creates_and_removes_nothing() {
    let env = Env::new("qr-symlink");
    let user = TestUser::new("pamtotp-cli-qrl", &env);
    let (uid, gid) = user.uid_gid();
    let root_only = env.dir.join("root-only");
    fs::create_dir(&root_only).unwrap();
    fs::set_permissions(&root_only, fs::Permissions::from_mode(0o700)).unwrap();
    let link = user.home.join("link");
    std::os::unix::fs::symlink(&root_only, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(uid), Some(gid)).unwrap();
    let denied = |path: &std::path::Path| {
        format!(
            "totpctl: cannot create {} as {}: permission denied; the enrollment was not saved. \
             The QR code is written with {1}'s own rights: choose a directory {1} can write, \
             with --qr FILE.\n",
            path.display(),
            user.name
        )
    };

    // A new file through the link: refused, nothing in the root-only dir.
    let through = link.join("x.jpg");
    let run = env.run(&["enroll", &user.name, "--qr", through.to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, denied(&through));
    assert!(fs::read_dir(&root_only).unwrap().next().is_none());
    assert_eq!(env.record(&user.name), None);

    // --force against a root-owned file reached through the link: kept.
    let precious = root_only.join("x.jpg");
    fs::write(&precious, "root's own file").unwrap();
    let run = env.run(&[
        "enroll",
        &user.name,
        "--qr",
        through.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(run.stderr, denied(&through));
    assert_eq!(fs::read_to_string(&precious).unwrap(), "root's own file");
    let meta = fs::metadata(&precious).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    assert_eq!(fs::read_dir(&root_only).unwrap().count(), 1);
    assert_eq!(env.record(&user.name), None);

    // A directory the user cannot write, without any link (the store's
    // parent, root's 0755): refused the same way, nothing created.
    let not_theirs = env.dir.join("y.jpg");
    let run = env.run(&["enroll", &user.name, "--qr", not_theirs.to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(run.stderr, denied(&not_theirs));
    assert!(!not_theirs.exists());
    assert_eq!(env.record(&user.name), None);

    // In a real directory of theirs it works, and the file is theirs.
    let sub = user.home.join("sub");
    fs::create_dir(&sub).unwrap();
    std::os::unix::fs::chown(&sub, Some(uid), Some(gid)).unwrap();
    let ok = sub.join("z.jpg");
    let run = env.run(&["enroll", &user.name, "--qr", ok.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let meta = fs::symlink_metadata(&ok).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (uid, gid, 0o600)
    );
    assert_eq!(zbarimg(&ok), run.uri());
    assert!(fs::read_dir(&root_only).unwrap().count() == 1);
}

#[test]
fn reset_then_enroll_again() {
    let env = Env::new("reset");
    let run = env.run(&["enroll", "root"]);
    let secret = secret_of(&run.uri());
    let now = support::now();
    let code = oathtool(&secret, "SHA1", 6, 30, now);
    assert_eq!(
        env.run_with_input(&["activate", "root"], &format!("{code}\n"))
            .code,
        Some(0)
    );

    let run = env.run(&["reset", "root"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stdout,
        "'root' is reset: the enrollment, recovery codes, failures and lockout are removed.\n\
         Until 'root' enrolls again, logins follow the policy for users who are not enrolled.\n\
         Next: run 'totpctl enroll root' and have them scan the new QR code.\n"
    );
    // Without a syslog socket the reset still happens, with a warning.
    assert!(
        run.stderr.is_empty()
            || run.stderr.starts_with(
                "totpctl: warning: the reset was done, but its audit line could not be sent to syslog"
            ),
        "{}",
        run.stderr
    );
    assert!(env.snapshot().is_empty());
    let later = now + 30;
    let login = env.login("root", &oathtool(&secret, "SHA1", 6, 30, later), later);
    assert!(!login.success());
    assert!(login.outcome.line.contains("not enrolled; policy denies"));

    // A fresh enrollment (the old .jpg is in the way without --force).
    assert_eq!(env.run(&["enroll", "root"]).code, Some(1));
    fs::remove_file(env.dir.join("root-totp.jpg")).unwrap();
    let run = env.run(&["enroll", "root"]);
    assert_eq!(run.code, Some(0));
    let fresh = secret_of(&run.uri());
    assert_ne!(fresh, secret);
    let code = oathtool(&fresh, "SHA1", 6, 30, later);
    assert_eq!(
        env.run_with_input(&["activate", "root"], &format!("{code}\n"))
            .code,
        Some(0)
    );
}

#[test]
fn recovery_codes_work_once_each() {
    let env = Env::new("recovery");
    let run = env.run(&["enroll", "root"]);
    let secret = secret_of(&run.uri());
    let now = support::now();
    let code = oathtool(&secret, "SHA1", 6, 30, now);
    let run = env.run_with_input(&["activate", "root"], &format!("{code}\n"));
    let codes = run.recovery_codes();
    assert_eq!(codes.len(), 10);
    for (n, code) in codes.iter().enumerate() {
        let login = env.login("root", code, now + 1);
        assert!(login.success(), "{:?}", login.outcome);
        let left = 9 - n;
        assert_eq!(
            login.messages,
            vec![format!(
                "Recovery code accepted. {left} left. Set up your authenticator again with 'totpctl enroll', or ask an administrator."
            )]
        );
        let again = env.login("root", code, now + 1);
        assert!(!again.success());
        assert!(again.outcome.line.contains("was already used"));
    }
    let run = env.run(&["status", "root"]);
    assert!(
        run.stdout.contains("recovery codes:  0 of 10 left\n"),
        "{}",
        run.stdout
    );
    // Wrong answers lock the account (10 by default); unlock clears that.
    for _ in 0..10 {
        assert!(!env.login("root", "0000-0000-0000-0000", now + 1).success());
    }
    let run = env.run(&["status", "root"]);
    assert!(
        run.stdout
            .contains("failures:        10 (10 of 100 since the last good code)\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("locked:          until "),
        "{}",
        run.stdout
    );
    let run = env.run(&["unlock", "root"]);
    assert_eq!(run.code, Some(0));
    assert!(
        run.stdout
            .starts_with("'root' is unlocked (was locked until "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.ends_with(", after 10 failures).\n"),
        "{}",
        run.stdout
    );
    let state = env.state("root");
    assert_eq!((state.failures, state.locked_until), (0, None));
    let run = env.run(&["unlock", "root"]);
    assert_eq!(
        run.stdout,
        "'root' was not locked; the failure count (0) is cleared.\n"
    );

    // A new set replaces the old one; old codes stop working.
    let run = env.run(&["recovery-codes", "root", "--regenerate"]);
    assert_eq!(run.code, Some(0));
    let fresh = run.recovery_codes();
    assert_eq!(fresh.len(), 10);
    assert!(!env.login("root", &codes[0], now + 2).success());
    assert!(env.login("root", &fresh[0], now + 2).success());
    assert!(env
        .login("root", &fresh[1].to_lowercase(), now + 2)
        .success());
    let run = env.run(&["recovery-codes", "root"]);
    assert_eq!(
        run.stdout,
        "'root' has 8 of 10 recovery codes left. 'totpctl recovery-codes root --regenerate' replaces them all.\n"
    );
}

#[test]
fn status_and_list_show_everything_but_the_secret() {
    let env = Env::new("status");
    let run = env.run(&["enroll", "root", "--algorithm", "SHA256"]);
    let secret = secret_of(&run.uri());
    let run = env.run(&["status", "root"]);
    assert_eq!(run.code, Some(0));
    assert!(run.stdout.contains("status:          pending\n"));
    assert!(run.stdout.contains("algorithm:       SHA256\n"));
    assert!(run.stdout.contains("last code used:  never\n"));
    let now = support::now();
    let code = oathtool(&secret, "SHA256", 6, 30, now);
    env.run_with_input(&["activate", "root"], &format!("{code}\n"));
    for args in [
        &["status", "root"][..],
        &["status", "root", "--json"][..],
        &["list"][..],
        &["list", "--json"][..],
    ] {
        let run = env.run(args);
        assert_eq!(run.code, Some(0));
        assert!(!run.stdout.contains(&secret), "{args:?} shows the secret");
    }
    let run = env.run(&["list"]);
    assert_eq!(
        run.stdout,
        "root active totp SHA256/6/30s recovery=10/10 failures=0 locked=no\n"
    );
    let run = env.run(&["status", "root", "--json"]);
    let json = run.stdout.trim_end();
    assert!(json.starts_with(
        "{\"user\":\"root\",\"status\":\"active\",\"type\":\"totp\",\"algorithm\":\"SHA256\",\"digits\":6,\"period\":30,\"issuer\":\"Test Host\",\"created_at\":"
    ), "{json}");
    assert!(
        json.contains(&format!("\"last_step\":{}", now / 30)),
        "{json}"
    );
    assert!(json.ends_with(
        "\"failures\":0,\"failures_since_success\":0,\"locked_until\":null,\"locked_until_unlock\":false,\"recovery_codes_left\":10,\"recovery_codes_total\":10,\"store\":\"files\",\"store_writes\":true}"
    ), "{json}");
    let run = env.run(&["list", "--json"]);
    assert_eq!(run.stdout, format!("[{json}]\n"));

    let run = env.run(&["disable", "root"]);
    assert_eq!(run.code, Some(0));
    assert!(env.snapshot().is_empty());
}

/// A file as Debian's `google-authenticator` writes it (time-based, with
/// rate limiting, window and reuse options, five scratch codes).
const GA_FILE: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEH\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 17\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n11111111\n22222222\n33333333\n44444444\n55555555\n";

#[test]
fn import_google_authenticator() {
    let env = Env::new("import");
    let user = TestUser::new("pamtotp-cli-ga", &env);
    let file = user.home.join(".google_authenticator");
    fs::write(&file, GA_FILE).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o400)).unwrap();

    let run = env.run(&["import-google-authenticator", &user.name]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stderr,
        "totpctl: note: RATE_LIMIT is not imported; the [throttle] settings in config.toml apply\n\
         totpctl: note: WINDOW_SIZE is not imported; the [otp] window in config.toml applies\n"
    );
    assert_eq!(
        run.stdout,
        format!(
            "Imported {path} for '{name}': two-factor login is active with the same app entry (SHA1, 6 digits, 30 s).\n\
             5 scratch codes are kept as recovery codes; each works once. 'totpctl recovery-codes {name} --regenerate' replaces them.\n\
             The file itself is left in place; remove it once pam_google_authenticator is no longer in the PAM stack.\n",
            path = file.display(),
            name = user.name
        )
    );
    let record = env.record(&user.name).unwrap();
    assert!(record.contains("status = \"active\""));
    assert!(
        !record.contains("11111111"),
        "scratch codes are stored hashed"
    );

    let now = support::now();
    let code = oathtool("JBSWY3DPEHPK3PXPJBSWY3DPEH", "SHA1", 6, 30, now);
    assert!(env.login(&user.name, &code, now).success());
    let scratch = env.login(&user.name, "33333333", now);
    assert!(scratch.success(), "{:?}", scratch.outcome);
    assert!(!env.login(&user.name, "33333333", now).success());
    assert!(!env.login(&user.name, "99999999", now).success());

    // An active record is only replaced with --force.
    let before = env.snapshot();
    let run = env.run(&[
        "import-google-authenticator",
        &user.name,
        file.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(1));
    assert_eq!(env.snapshot(), before);

    // A malformed counter and symlinks are refused, changing nothing.
    // (A counter-based file with a good HOTP_COUNTER imports as a HOTP
    // enrollment: see tests/tokens.rs.)
    let hotp = env.dir.join("hotp");
    fs::write(&hotp, "JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER one\n").unwrap();
    let run = env.run(&[
        "import-google-authenticator",
        "root",
        hotp.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("line 2: HOTP_COUNTER is not a counter"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("JBSW"));
    assert_eq!(env.snapshot(), before);
    let link = env.dir.join("link");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let run = env.run(&[
        "import-google-authenticator",
        "root",
        link.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("symbolic link"), "{}", run.stderr);
    assert!(!run.stderr.contains("JBSW"));
    assert_eq!(env.snapshot(), before);
}

#[test]
fn man_page_and_completions_are_generated() {
    let env = Env::new("generate");
    let run = env.run(&["generate-man", env.dir.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let page = fs::read_to_string(env.dir.join("totpctl.8")).unwrap();
    assert!(
        page.contains(".TH totpctl 8"),
        "{}",
        &page[..200.min(page.len())]
    );
    assert!(page.contains("import\\-google\\-authenticator"));
    assert!(!page.contains("generate\\-man"));
    for shell in ["bash", "zsh"] {
        let run = env.run(&["generate-completions", shell]);
        assert_eq!(run.code, Some(0));
        assert!(run.stdout.contains("totpctl"), "{shell}");
    }
}
