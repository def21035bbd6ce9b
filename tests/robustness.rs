//! Races, memory and the ABI of the built module.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::*;
use std::collections::BTreeSet;
use std::process::Command;

/// 50 logins at once with the same valid code: exactly one may succeed, every time.
#[test]
fn fifty_parallel_logins_with_one_code_admit_exactly_one() {
    let sb = Sandbox::new("race");
    sb.service("totp", "");
    sb.enroll("root");
    for round in 0..3 {
        let _ = std::fs::remove_file(sb.state_path("root"));
        let code = code_now(SECRET);
        let outcomes = race_logins(&sb, "totp", "root", &code, 50);
        let successes = outcomes.iter().filter(|o| o.status.success()).count();
        // The others are refused as replays, until the replays themselves reach
        // max_failures and lock the account (right: someone is reusing a code).
        // On a starved machine one may also give up waiting for the user's
        // lock (5 s): refused too, with its own line.
        let stderrs: Vec<String> = outcomes
            .iter()
            .filter(|o| !o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .collect();
        let (refused, other): (Vec<&String>, Vec<&String>) = stderrs.iter().partition(|e| {
            e.contains("result=denied reason=\"replayed code")
                || e.contains("result=denied reason=\"locked out until")
                || (e.contains("result=error reason=\"state lock ")
                    && e.contains("is held by another process"))
        });
        assert_eq!(
            successes, 1,
            "round {round}: {successes} of 50 parallel logins succeeded with one code"
        );
        assert_eq!(
            refused.len(),
            49,
            "round {round}: every other attempt is refused as a replay or by the lockout; \
             the others said: {other:?}"
        );
    }
}

/// The module exports the six PAM entry points and nothing else.
#[test]
fn exports_only_the_pam_entry_points() {
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(module_path())
        .output()
        .expect("nm (binutils) is needed");
    assert!(out.status.success());
    let exported: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .nth(2)
                .map(|s| s.split('@').next().unwrap_or(s).to_string())
        })
        .collect();
    let expected: BTreeSet<String> = [
        "pam_sm_acct_mgmt",
        "pam_sm_authenticate",
        "pam_sm_chauthtok",
        "pam_sm_close_session",
        "pam_sm_open_session",
        "pam_sm_setcred",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(exported, expected);
}

/// The shipped modules carry their own unwinder (libgcc_eh, linked by
/// pam_build/src/lib.rs) instead of loading libgcc_s.so.1 into every process
/// that logs in: no DT_NEEDED entry for it, and no `_Unwind_*` function left
/// for the loader to find elsewhere.
#[test]
fn the_shipped_modules_link_their_unwinder_statically() {
    let files = release_module_path();
    let ldap = files.with_file_name("libpam_totp_ldap.so");
    assert!(
        ldap.exists(),
        "{} is missing: run `cargo build --release -p pam_module_ldap` first (make test does)",
        ldap.display()
    );
    for module in [files, ldap] {
        let dynamic = Command::new("readelf")
            .arg("-d")
            .arg(&module)
            .output()
            .expect("readelf (binutils) is needed");
        assert!(dynamic.status.success());
        let needed: Vec<String> = String::from_utf8_lossy(&dynamic.stdout)
            .lines()
            .filter(|l| l.contains("(NEEDED)"))
            .map(|l| {
                l.rsplit('[')
                    .next()
                    .unwrap_or(l)
                    .trim_end_matches(']')
                    .to_string()
            })
            .collect();
        assert!(
            !needed.is_empty(),
            "{}: no NEEDED entries read",
            module.display()
        );
        assert!(
            needed.iter().all(|lib| !lib.starts_with("libgcc_s")),
            "{} loads libgcc_s: {needed:?}",
            module.display()
        );
        let undefined = Command::new("nm")
            .args(["-D", "--undefined-only"])
            .arg(&module)
            .output()
            .expect("nm (binutils) is needed");
        assert!(undefined.status.success());
        let unwind: Vec<&str> = std::str::from_utf8(&undefined.stdout)
            .unwrap()
            .lines()
            .filter(|l| l.contains("_Unwind_"))
            .collect();
        assert!(unwind.is_empty(), "{}: {unwind:?}", module.display());
    }
}

/// A panic inside the shipped module is caught at the PAM boundary: the login
/// is denied with the internal-error line, and the calling program lives on
/// and reports the failure. The panic is a real one inside std, in the release
/// module as it ships (no test hook): clock_gettime fails for the module only
/// (tests/harness/clock_fails.c), and std unwraps the clock's result. This is
/// what proves that the statically linked unwinder finds the module's frames;
/// with no working unwinder the process would abort instead.
#[test]
fn a_panic_inside_the_shipped_module_is_caught() {
    let sb = Sandbox::new("panic");
    sb.enroll("root");
    sb.raw_service(
        "totp",
        &format!(
            "auth [success=ok ignore=ignore default=die] {} config={{config}}\nauth required pam_permit.so\n",
            release_module_path().display()
        ),
    );
    let shim = build_c_preload("clock_fails", &sb.root);
    let mut cmd = sb.pamtester_command("totp", "root", &[]);
    cmd.env(
        "LD_PRELOAD",
        format!("libpam_wrapper.so {}", shim.display()),
    );
    let run = run_with_input(&mut cmd, format!("{}\n", code_now(SECRET)).as_bytes());
    assert_eq!(
        run.code,
        Some(1),
        "pamtester must exit with its own failure status, not die\nstdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stderr.contains("panicked at") && run.stderr.contains("time.rs"),
        "the clock read panicked inside std:\n{}",
        run.stderr
    );
    assert!(
        run.shown().contains("Authentication failure"),
        "pamtester went on and reported the failure:\n{}",
        run.shown()
    );
    let line = run.outcome();
    assert!(
        line.contains("result=error") && line.contains("internal error (panic); login denied"),
        "{line}"
    );
}

/// A sandbox with root enrolled, a `loop` service, the pam_loop harness built
/// in it, and a current code. These tests measure memory, not timing: the code
/// is accepted for ±5 minutes so a slow (debug, loaded, or valgrind) run never
/// outlives it.
fn loop_sandbox(name: &str) -> (Sandbox, std::path::PathBuf, String) {
    let sb = Sandbox::new(name);
    sb.enroll("root");
    sb.write_config("[otp]\nwindow = 10\n");
    sb.service("loop", "");
    let bin = build_c_harness("pam_loop", &sb.root);
    let code = code_now(SECRET);
    (sb, bin, code)
}

/// pam_loop's arguments: service dir, service, user, code, state file, count.
fn loop_args(sb: &Sandbox, code: &str, n: i64) -> Vec<std::ffi::OsString> {
    vec![
        sb.service_dir.clone().into(),
        "loop".into(),
        "root".into(),
        code.into(),
        sb.state_path("root").into(),
        n.to_string().into(),
    ]
}

fn parse_counts(line: &str) -> std::collections::HashMap<String, i64> {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
        .collect()
}

/// 10,000 authentications in one process through the release module: every
/// reply string is freed by the module, wiped before it is freed, and memory
/// stays flat.
#[test]
fn conversation_replies_are_wiped_and_freed_over_10k_logins() {
    let (sb, bin, code) = loop_sandbox("leak");
    // Against the shipped build: a plain write before free() survives in a
    // debug build and is removed as a dead store in the release build.
    sb.raw_service(
        "loop",
        &format!(
            "auth [success=ok ignore=ignore default=die] {} config={{config}}\nauth required pam_permit.so\n",
            release_module_path().display()
        ),
    );
    let n = 10_000;
    let out = Command::new(&bin)
        .args(loop_args(&sb, &code, n))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = parse_counts(stdout.trim());
    eprintln!("leak check: {stdout}");
    assert_eq!(c["success"], n, "every login succeeds: {stdout}");
    assert_eq!(c["handed"], n);
    assert_eq!(c["freed"], n, "the module frees every reply string");
    assert_eq!(
        c["wiped"], n,
        "the module wipes every reply string before freeing it"
    );
    // The module frees the response array too (pamsm's conv() did not: 16
    // bytes, a 32-byte heap chunk, per prompt, about 300 KiB here). Allow only
    // allocator slack: a third of what that leak alone would add.
    let growth_kb = c["rss_end_kb"] - c["rss_warm_kb"];
    let bound_kb = (n - 200) * 32 / 1024 / 3;
    eprintln!(
        "rss growth over {} logins: {growth_kb} KiB (bound {bound_kb} KiB)",
        n - 200
    );
    assert!(
        growth_kb <= bound_kb,
        "RSS grew {growth_kb} KiB over {n} logins (bound {bound_kb} KiB)"
    );
}

/// valgrind agrees: nothing is definitely lost, and no reply string is
/// among any losses.
#[test]
fn valgrind_finds_nothing_definitely_lost() {
    require_tool("valgrind", "valgrind");
    let (sb, bin, code) = loop_sandbox("valgrind");
    // Slow under valgrind (about 0.5 s a login): stay well inside the code's validity.
    let n: i64 = 20;
    let out = Command::new("valgrind")
        .args([
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--error-exitcode=99",
            "--show-leak-kinds=definite",
        ])
        .arg(&bin)
        .args(loop_args(&sb, &code, n))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(parse_counts(stdout.trim())["success"], n, "{stdout}");
    assert!(report.contains("ERROR SUMMARY"), "{report}");
    let lost: i64 = report
        .lines()
        .find(|l| l.contains("definitely lost:"))
        .and_then(|l| l.split("definitely lost:").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .map_or(0, |v| v.replace(',', "").parse().unwrap());
    eprintln!("valgrind: {lost} bytes definitely lost over {n} logins");
    assert!(
        lost == 0,
        "{lost} bytes definitely lost over {n} logins:\n{report}"
    );
    assert!(
        !report.contains("strdup"),
        "a reply string leaked:\n{report}"
    );
    assert!(
        !report.contains("Invalid read") && !report.contains("Invalid write"),
        "{report}"
    );
}

/// `[store] backend = "ldap"` with no pam_totp_ldap.so beside pam_totp.so
/// (a half-installed package): denied, with the standard outcome line
/// (user, service, rhost) that says what is missing.
#[test]
fn a_missing_ldap_module_denies_with_the_standard_line() {
    let sb = Sandbox::new("no-ldap-module");
    let lonely = sb.root.join("lonely");
    std::fs::create_dir(&lonely).unwrap();
    let module = lonely.join("libpam_totp.so");
    std::fs::copy(module_path(), &module).unwrap();
    sb.write_config(
        "[store]\nbackend = \"ldap\"\n[ldap]\nuris = [\"ldapi://%2Frun%2Fpam_totp-none\"]\n\
         base_dn = \"dc=example,dc=org\"\n",
    );
    sb.raw_service(
        "ldap",
        &format!(
            "auth [success=ok ignore=ignore default=die] {} config={{config}}\n\
             auth required pam_permit.so\n",
            module.display()
        ),
    );
    let run = sb.pamtester("ldap", "root", b"123456\n", &["rhost=host.example"]);
    run.expect(false, "error", "store.backend = ldap needs ");
    let line = run.outcome();
    assert!(
        line.starts_with("user=root service=ldap rhost=host.example result=error reason=")
            && line.contains(&format!("{}/libpam_totp_ldap.so", lonely.display()))
            && line.contains("; login denied"),
        "{line}"
    );
}
