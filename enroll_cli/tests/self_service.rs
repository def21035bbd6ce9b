//! Self-service mode, end to end, as root in CI: a test install of a setuid
//! totpctl (mode 4754 root:GROUP), two throwaway users, alice in the group and
//! bob outside it, run through setpriv with their real uid and groups.
//!
//! A setuid totpctl ignores `--config` from an ordinary user and always reads
//! its compiled-in config path. So the test builds a second copy of totpctl
//! (its own target dir) with `PAM_TOTP_TEST_CONFIG_PATH` set at build time to
//! a sandbox config; the shipped build has no such override (debian/rules
//! unsets the variable and checks `totpctl self-service status`).
//!
//! Everything runs in one test, in order, because the compiled-in sandbox
//! path is shared.
//!
//! Setuid copies live only under [`SetuidCopies`]: one directory per test,
//! removed when it ends (panics included), and whatever a killed run left
//! there is removed, with a note, when the next run starts.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::json::{assert_error, base64_decode, parse_output};
use support::{oathtool, run_piped, secret_of, Env, Run, TestUser, TOTPCTL};

const GROUP: &str = "pamtotp-ssg";
const ALICE: &str = "pamtotp-ssa";
const BOB: &str = "pamtotp-ssb";

fn sandbox() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("self-service-sandbox")
}

/// Build the test copy of totpctl with the sandbox config compiled in.
fn build_test_copy() -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("self-service-build");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--locked",
            "--offline",
            "-p",
            "enroll_cli",
            "--bin",
            "totpctl",
        ])
        .arg("--target-dir")
        .arg(&target)
        .env("PAM_TOTP_TEST_CONFIG_PATH", sandbox().join("config.toml"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo build");
    assert!(
        out.status.success(),
        "building the test copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.join("debug/totpctl")
}

struct Group(String);
impl Group {
    fn new(name: &str) -> Self {
        let _ = Command::new("groupdel").arg(name).output();
        let out = Command::new("groupadd").arg(name).output().unwrap();
        assert!(out.status.success(), "groupadd: {out:?}");
        Self(name.into())
    }
    fn gid(&self) -> u32 {
        nix::unistd::Group::from_name(&self.0)
            .unwrap()
            .unwrap()
            .gid
            .as_raw()
    }
}
impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.0).output();
    }
}

/// The sandbox store: a root-owned directory with the compiled-in config.
fn reset_sandbox() {
    let dir = sandbox();
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    for sub in ["users", "state"] {
        fs::create_dir(dir.join(sub)).unwrap();
        fs::set_permissions(dir.join(sub), fs::Permissions::from_mode(0o700)).unwrap();
    }
    fs::write(
        dir.join("config.toml"),
        format!(
            "[paths]\nusers_dir = \"{0}/users\"\nstate_dir = \"{0}/state\"\n\n[enroll]\n\
             issuer = \"Test Host\"\nself_service_group = \"{GROUP}\"\n\n[throttle]\n\
             max_failures = 5\nbackoff_seconds = 0\nbackoff_max_seconds = 0\n",
            dir.display()
        ),
    )
    .unwrap();
    fs::set_permissions(dir.join("config.toml"), fs::Permissions::from_mode(0o644)).unwrap();
}

fn record(user: &str) -> Option<Vec<u8>> {
    fs::read(sandbox().join("users").join(format!("{user}.toml"))).ok()
}

/// Root's totpctl (the ordinary build) on the sandbox store.
fn as_root(args: &[&str], input: &str) -> Run {
    let mut all = vec![
        "--config".to_owned(),
        sandbox().join("config.toml").display().to_string(),
    ];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    run_piped(Command::new(TOTPCTL).args(&all).env("LC_ALL", "C"), input)
}

/// Run `bin` as `user` (real uid and gid, their groups from the group
/// database) with a minimal environment plus `env`, in their home.
fn as_user(user: &TestUser, bin: &Path, args: &[&str], env: &[(&str, &str)], input: &str) -> Run {
    as_user_with(user, &[], bin, args, env, input)
}

fn as_user_with(
    user: &TestUser,
    setpriv: &[&str],
    bin: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    input: &str,
) -> Run {
    let (uid, gid) = user.uid_gid();
    let mut cmd = Command::new("/usr/bin/setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--init-groups")
        .args(setpriv)
        .arg(bin)
        .args(args)
        .current_dir(&user.home)
        .env_clear()
        .env("LC_ALL", "C")
        .env("PATH", "/usr/bin:/bin")
        .envs(env.iter().copied());
    run_piped(&mut cmd, input)
}

fn assert_run(run: &Run, code: i32, stdout: &str, stderr: &str) {
    assert_eq!(run.stderr, stderr, "{run:?}");
    assert_eq!(run.stdout, stdout, "{run:?}");
    assert_eq!(run.code, Some(code), "{run:?}");
}

fn not_enrolled(user: &str) -> String {
    format!("user:            {user}\nstatus:          not enrolled\n")
}

/// A file's contents and times, to prove it was not touched.
fn fingerprint(path: &Path) -> (Vec<u8>, i64, i64, u32) {
    let meta = fs::metadata(path).unwrap();
    (
        fs::read(path).unwrap(),
        meta.mtime(),
        meta.ctime(),
        meta.mode(),
    )
}

/// The one place setuid copies are installed: `run-PID-TEST/` under the
/// test target's tmp dir, one per test. Dropped (also on a panic), the
/// directory and any dpkg-statoverride entry under it go. A run killed
/// before that cannot clean up, so every new one first removes the
/// directories of runs that are no longer alive, and says so.
struct SetuidCopies {
    dir: PathBuf,
}

impl SetuidCopies {
    fn new(test: &str) -> Self {
        let top = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("setuid-copies");
        fs::create_dir_all(&top).unwrap();
        // The test users run the copies: the path must be searchable.
        fs::set_permissions(&top, fs::Permissions::from_mode(0o755)).unwrap();
        for entry in fs::read_dir(&top).unwrap() {
            let path = entry.unwrap().path();
            let pid = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("run-"))
                .and_then(|n| n.split('-').next())
                .and_then(|n| n.parse::<u32>().ok());
            if pid.is_some_and(test_run_alive) {
                continue;
            }
            eprintln!(
                "removing setuid test copies left by a run that was killed: {}",
                path.display()
            );
            remove_statoverrides_under(&path);
            fs::remove_dir_all(&path).unwrap();
        }
        let dir = top.join(format!("run-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        Self { dir }
    }
}

impl Drop for SetuidCopies {
    fn drop(&mut self) {
        remove_statoverrides_under(&self.dir);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Is `pid` a live run of this test binary (and not a reused pid)?
fn test_run_alive(pid: u32) -> bool {
    let name = |exe: &Path| {
        exe.file_name().map(|n| {
            n.to_string_lossy()
                .split('-')
                .next()
                .unwrap_or("")
                .to_owned()
        })
    };
    let me = std::env::current_exe().ok();
    fs::read_link(format!("/proc/{pid}/exe"))
        .is_ok_and(|exe| me.as_deref().and_then(name) == name(&exe))
}

/// Remove every dpkg-statoverride entry for a file under `dir`.
fn remove_statoverrides_under(dir: &Path) {
    let Ok(out) = Command::new("dpkg-statoverride").arg("--list").output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "user group mode path"
        let Some(path) = line.splitn(4, ' ').nth(3) else {
            continue;
        };
        if Path::new(path).starts_with(dir) {
            let _ = Command::new("dpkg-statoverride")
                .args(["--remove", path])
                .output();
        }
    }
}

fn install(bin: &Path, dir: &Path, name: &str, owner: u32, group: u32, mode: u32) -> PathBuf {
    let path = dir.join(name);
    fs::copy(bin, &path).unwrap();
    std::os::unix::fs::chown(&path, Some(owner), Some(group)).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[test]
fn self_service_mode() {
    let built = build_test_copy();
    // What debian/rules checks before packaging: --help names the config
    // path compiled in, and a test build's is not /etc/pam_totp/config.toml.
    let help = Command::new(&built).arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let compiled = format!(
        "Read this config file instead of {}\n",
        sandbox().join("config.toml").display()
    );
    assert!(help.contains(&compiled), "{help}");
    reset_sandbox();
    let copies = SetuidCopies::new("self-service");
    let env = Env::new("self-service");
    let group = Group::new(GROUP);
    let alice = TestUser::new(ALICE, &env);
    let bob = TestUser::new(BOB, &env);
    let out = Command::new("gpasswd")
        .args(["-a", ALICE, GROUP])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // The test install: 4754 root:GROUP, as dpkg-statoverride would set it,
    // plus copies that are misinstalled on purpose.
    let prefix = copies.dir.clone();
    let gid = group.gid();
    let totpctl = install(&built, &prefix, "totpctl", 0, gid, 0o4754);
    let open_to_all = install(&built, &prefix, "totpctl-4755", 0, gid, 0o4755);
    let (bob_uid, _) = bob.uid_gid();
    let setuid_bob = install(&built, &prefix, "totpctl-bob", bob_uid, gid, 0o4755);
    let not_setuid = install(&built, &prefix, "totpctl-plain", 0, 0, 0o755);

    // Bob is enrolled by root; nothing alice does may touch his record.
    let run = as_root(
        &[
            "enroll",
            BOB,
            "--qr",
            &bob.home.join("bob.jpg").display().to_string(),
        ],
        "",
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    let bob_record = record(BOB).unwrap();

    // --- the plain message without self-service, and refusals naming the cause
    let run = as_user(&alice, &not_setuid, &["status"], &[], "");
    assert_run(
        &run,
        1,
        "",
        "totpctl: 'totpctl status' must be run as root: the user records and login state are \
         readable and writable only by root, and self-service is not enabled on this system. \
         Run it again with sudo, or ask an administrator to set up two-factor login for you.\n",
    );
    let run = as_user_with(&alice, &["--no-new-privs"], &totpctl, &["status"], &[], "");
    assert_run(
        &run,
        1,
        "",
        "totpctl: totpctl is installed for self-service (setuid root), but this process has \
         no_new_privs set (by a sandbox, a container or systemd's NoNewPrivileges=), so the \
         kernel did not grant it root. Run it from an ordinary login shell, or ask an \
         administrator.\n",
    );
    let run = as_user(&alice, &setuid_bob, &["status"], &[], "");
    assert_run(
        &run,
        1,
        "",
        &format!(
            "totpctl: totpctl runs with effective uid {bob_uid} instead of root: it is installed \
             setuid to the wrong owner, and refuses to run. Ask an administrator to run 'totpctl \
             self-service enable' again.\n"
        ),
    );

    // --- a user outside the group cannot run it at all, and with a looser
    //     mode still gets only the plain message
    // (Some sandbox kernels do not enforce execute bits against root-owned
    // files; a control copy of /bin/true tells, and then only the in-binary
    // group check below stands between bob and totpctl.)
    let control = install(Path::new("/bin/true"), &prefix, "true-0754", 0, gid, 0o754);
    let kernel_enforces = as_user(&bob, &control, &[], &[], "").code != Some(0);
    let run = as_user(&bob, &totpctl, &["status"], &[], "");
    if kernel_enforces {
        assert_ne!(run.code, Some(0), "{run:?}");
        assert!(run.stderr.contains("Permission denied"), "{run:?}");
        assert_eq!(run.stdout, "");
    } else {
        eprintln!("this kernel does not enforce execute permission bits; checking the group only");
        assert_run(
            &run,
            1,
            "",
            "totpctl: you may not manage two-factor login yourself on this system. Ask an \
             administrator to set it up for you.\n",
        );
    }
    let run = as_user(&bob, &open_to_all, &["status"], &[], "");
    assert_run(
        &run,
        1,
        "",
        "totpctl: you may not manage two-factor login yourself on this system. Ask an \
         administrator to set it up for you.\n",
    );

    // --- alice: status, and the .jpg never lands where she cannot write
    let run = as_user(&alice, &totpctl, &["status"], &[], "");
    assert_run(&run, 0, &not_enrolled(ALICE), "");

    let shadow = fingerprint(Path::new("/etc/shadow"));
    let link = alice.home.join("qr.jpg");
    std::os::unix::fs::symlink("/etc/shadow", &link).unwrap();
    for extra in [&[][..], &["--force"][..]] {
        let mut args = vec!["enroll", "--qr", link.to_str().unwrap()];
        args.extend_from_slice(extra);
        let run = as_user(&alice, &totpctl, &args, &[], "");
        assert_run(
            &run,
            1,
            "",
            &format!(
                "totpctl: {} is a symbolic link, and totpctl never writes through one; nothing \
                 was changed. Choose another file with --qr FILE.\n",
                link.display()
            ),
        );
    }
    assert_eq!(fingerprint(Path::new("/etc/shadow")), shadow);
    let root_only = env.dir.join("root-only");
    fs::create_dir(&root_only).unwrap();
    fs::set_permissions(&root_only, fs::Permissions::from_mode(0o700)).unwrap();
    for target in [
        root_only.join("qr.jpg"),
        PathBuf::from("/etc/pamtotp-ss-test.jpg"),
    ] {
        let run = as_user(
            &alice,
            &totpctl,
            &["enroll", "--qr", target.to_str().unwrap()],
            &[],
            "",
        );
        assert_run(
            &run,
            1,
            "",
            &format!(
                "totpctl: cannot create {} as {ALICE}: permission denied; the enrollment was not \
                 saved. The QR code is written with {ALICE}'s own rights: choose a directory \
                 {ALICE} can write, with --qr FILE.\n",
                target.display()
            ),
        );
        assert!(!target.exists(), "{}", target.display());
    }
    assert!(fs::read_dir(&root_only).unwrap().next().is_none());
    assert_eq!(record(ALICE), None);

    // --- alice enrolls and activates herself; the .jpg is hers, 0600
    let run = as_user(&alice, &totpctl, &["enroll"], &[], "");
    assert_eq!(run.code, Some(0), "{run:?}");
    let jpg = alice.home.join(format!("{ALICE}-totp.jpg"));
    let meta = fs::symlink_metadata(&jpg).unwrap();
    assert_eq!((meta.uid(), meta.gid()), alice.uid_gid());
    assert_eq!(meta.mode() & 0o7777, 0o600);
    // Everything else the setuid run created is root:root, never
    // root:<alice's group>: the start drops the caller's effective gid.
    assert_root_owned(&[ALICE]);
    let secret = secret_of(&run.uri());
    let now = support::now();
    let code = oathtool(&secret, "SHA1", 6, 30, now);
    let run = as_user(&alice, &totpctl, &["activate"], &[], &format!("{code}\n"));
    assert_eq!(run.code, Some(0), "{run:?}");
    let recovery = run.recovery_codes();
    assert_eq!(recovery.len(), 10);
    let run = as_user(&alice, &totpctl, &["status"], &[], "");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.starts_with(&format!(
        "user:            {ALICE}\nstatus:          active\n"
    )));

    // --- alice cannot act on bob: not by arguments...
    for args in [
        &["status", BOB][..],
        &["enroll", BOB][..],
        &["activate", BOB][..],
        &["recovery-codes", BOB, "--regenerate"][..],
        &["disable", BOB][..],
    ] {
        let run = as_user(&alice, &totpctl, args, &[], "");
        assert_run(
            &run,
            1,
            "",
            &format!(
                "totpctl: you can manage only your own two-factor login ('{ALICE}'), not '{BOB}'; \
                 the attempt is logged and nothing was changed.\n"
            ),
        );
    }
    // ...not by the environment...
    let bob_home = bob.home.display().to_string();
    let hostile = [
        ("USER", BOB),
        ("LOGNAME", BOB),
        ("HOME", bob_home.as_str()),
        ("TOTPCTL_USER", BOB),
        ("TOTPCTL_CONFIG", "/nonexistent"),
        ("SUDO_USER", BOB),
    ];
    let baseline = as_user(&alice, &totpctl, &["status"], &[], "");
    let run = as_user(&alice, &totpctl, &["status"], &hostile, "");
    assert_run(&run, 0, &baseline.stdout, "");
    // ...nor by a config of her own, pointing at a store where she is "bob".
    let fake = alice.home.join("fake");
    fs::create_dir_all(fake.join("users")).unwrap();
    let fake_config = alice.home.join("fake.toml");
    fs::write(
        &fake_config,
        format!(
            "[paths]\nusers_dir = \"{0}/users\"\nstate_dir = \"{0}\"\n",
            fake.display()
        ),
    )
    .unwrap();
    let config_arg = fake_config.display().to_string();
    let run = as_user(
        &alice,
        &totpctl,
        &["--config", &config_arg, "status"],
        &[],
        "",
    );
    assert_run(
        &run,
        0,
        &baseline.stdout,
        &format!(
            "totpctl: note: --config is ignored when an ordinary user runs totpctl; {} is read.\n",
            sandbox().join("config.toml").display()
        ),
    );
    let run = as_user(
        &alice,
        &totpctl,
        &["--config", &config_arg, "disable", BOB],
        &[],
        "",
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(record(BOB).unwrap(), bob_record);

    // --- root-only commands stay root-only
    let man_dir = alice.home.join("man");
    fs::create_dir(&man_dir).unwrap();
    for (args, command) in [
        (&["list"][..], "list"),
        (&["reset", BOB][..], "reset"),
        (&["unlock", BOB][..], "unlock"),
        (
            &["import-google-authenticator", BOB][..],
            "import-google-authenticator",
        ),
        (&["check"][..], "check"),
        (&["import-tokens", "/etc/passwd"][..], "import-tokens"),
        (&["import-pam-oath", "/etc/passwd"][..], "import-pam-oath"),
        (&["enroll", "--seed-stdin"][..], "enroll --seed-stdin"),
        (&["self-service", "status"][..], "self-service"),
        (
            &["generate-man", man_dir.to_str().unwrap()][..],
            "generate-man",
        ),
        (
            &["generate-completions", "bash"][..],
            "generate-completions",
        ),
    ] {
        let run = as_user(&alice, &totpctl, args, &[], "");
        assert_run(
            &run,
            1,
            "",
            &format!(
                "totpctl: 'totpctl {command}' is for administrators only; the attempt is logged. \
                 Ask an administrator.\n"
            ),
        );
    }
    assert!(fs::read_dir(&man_dir).unwrap().next().is_none());
    assert_eq!(record(BOB).unwrap(), bob_record);

    // --- changing the active enrollment needs a valid code or recovery code
    let active = record(ALICE).unwrap();
    let proof_failed = |why: &str| {
        format!(
            "totpctl: '{ALICE}' has an active enrollment, and changing it needs a current code \
             from the app or an unused recovery code: {why}; nothing was changed.\n"
        )
    };
    let run = as_user(&alice, &totpctl, &["enroll", "--qr", "other.jpg"], &[], "");
    assert_run(
        &run,
        1,
        "",
        &format!(
            "totpctl: '{ALICE}' already has an active enrollment; nothing was changed. To replace \
             it (the current app entry stops working), run 'totpctl enroll {ALICE} --force'.\n"
        ),
    );
    for (args, input, why) in [
        (&["disable"][..], "000000\n", "wrong code"),
        (&["disable"][..], "", "empty code"),
        (
            &["enroll", "--force", "--qr", "new.jpg"][..],
            "000000\n",
            "wrong code",
        ),
        (
            &["recovery-codes", "--regenerate"][..],
            "ABCD-EFGH-JKMN-PQRS\n",
            "wrong recovery code",
        ),
        // The code that activated is spent.
        (&["disable"][..], &format!("{code}\n"), "code already used"),
    ] {
        let run = as_user(&alice, &totpctl, args, &[], input);
        assert_run(&run, 1, "", &proof_failed(why));
    }
    assert_eq!(record(ALICE).unwrap(), active);
    assert!(!alice.home.join("new.jpg").exists());
    // Each wrong answer counted, as at login.
    let run = as_root(&["status", ALICE, "--json"], "");
    assert!(run.stdout.contains("\"failures\":4"), "{run:?}");

    // A recovery code proves it (once) and renews the set.
    let run = as_user(
        &alice,
        &totpctl,
        &["recovery-codes", "--regenerate"],
        &[],
        &format!("{}\n", recovery[0]),
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.recovery_codes().len(), 10);
    // The next code from the app proves it for disable.
    let next = oathtool(&secret, "SHA1", 6, 30, now + 30);
    let run = as_user(&alice, &totpctl, &["disable"], &[], &format!("{next}\n"));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(record(ALICE), None);
    assert_eq!(record(BOB).unwrap(), bob_record);

    // --- the same as the Cockpit page runs it: --json, codes on stdin
    json_as_the_user(
        &alice,
        &bob,
        &Copies {
            totpctl: &totpctl,
            not_setuid: &not_setuid,
            open_to_all: &open_to_all,
            setuid_bob: &setuid_bob,
        },
    );
    assert_eq!(record(ALICE), None);
    assert_eq!(record(BOB).unwrap(), bob_record);

    // --- LD_PRELOAD, a hostile PATH and IFS: the same behaviour
    let evil = build_preload(&env);
    let marker = alice.home.join("preloaded");
    let control = as_user(
        &alice,
        Path::new("/usr/bin/env"),
        &[
            &format!("LD_PRELOAD={}", evil.display()),
            &format!("MARKER={}", marker.display()),
            "/bin/true",
        ],
        &[],
        "",
    );
    assert_eq!(control.code, Some(0));
    assert!(
        marker.exists(),
        "the preload library works on an ordinary program"
    );
    fs::remove_file(&marker).unwrap();
    let fake_bin = env.dir.join("fake-bin");
    fs::create_dir(&fake_bin).unwrap();
    for tool in ["getent", "dpkg-statoverride", "groupadd", "sh", "cat"] {
        let path = fake_bin.join(tool);
        fs::write(&path, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let baseline = as_user(&alice, &totpctl, &["status"], &[], "");
    // Set through env(1), so that only totpctl itself starts with them.
    let preload = format!("LD_PRELOAD={}", evil.display());
    let library_path = format!("LD_LIBRARY_PATH={}", env.dir.display());
    let marker_var = format!("MARKER={}", marker.display());
    let path_var = format!("PATH={}", fake_bin.display());
    let run = as_user(
        &alice,
        Path::new("/usr/bin/env"),
        &[
            &preload,
            &library_path,
            &marker_var,
            &path_var,
            "IFS=/ \t\n",
            "LANG=../../../tmp/evil",
            "TERM=/tmp/evil",
            totpctl.to_str().unwrap(),
            "status",
        ],
        &[],
        "",
    );
    assert_run(&run, 0, &baseline.stdout, "");
    assert!(!marker.exists(), "nothing was preloaded or run from PATH");
    assert_eq!(record(BOB).unwrap(), bob_record);

    limits_and_signals_do_not_survive_the_setuid_start(&alice, &totpctl);
    assert_eq!(record(BOB).unwrap(), bob_record);

    drop((alice, bob, group, copies));
    let _ = fs::remove_dir_all(sandbox());
}

/// The test installs of [`self_service_mode`].
struct Copies<'a> {
    /// 4754 root:GROUP, as self-service installs it.
    totpctl: &'a Path,
    /// 0755 root:root: self-service off.
    not_setuid: &'a Path,
    /// 4755: runs for bob, who is not in the group.
    open_to_all: &'a Path,
    /// Setuid to bob instead of root.
    setuid_bob: &'a Path,
}

/// What the Cockpit page does for a user on their own account, with
/// `--json`: every answer one JSON document with a stable error code,
/// every code and proof on standard input, never in argv, and no .jpg
/// written. Alice starts with no enrollment and ends with none.
fn json_as_the_user(alice: &TestUser, bob: &TestUser, copies: &Copies<'_>) {
    let bin = copies.totpctl;
    // Every run goes through here: no code or secret is ever an argument.
    let mut secrets: Vec<String> = Vec::new();
    let run = |user: &TestUser, bin: &Path, args: &[&str], input: &str, secrets: &[String]| {
        for secret in secrets {
            assert!(
                !args.iter().any(|a| a.contains(secret.as_str())),
                "{args:?} holds a code or secret"
            );
        }
        as_user(user, bin, args, &[], input)
    };

    // Refusals, each with its code. The first two fail in the setuid
    // start, before the command line is parsed.
    let (bob_uid, _) = bob.uid_gid();
    assert_error(
        &run(
            alice,
            copies.setuid_bob,
            &["status", "--json"],
            "",
            &secrets,
        ),
        1,
        "setuid_wrong_owner",
        &format!(
            "totpctl runs with effective uid {bob_uid} instead of root: it is installed setuid \
             to the wrong owner, and refuses to run. Ask an administrator to run 'totpctl \
             self-service enable' again."
        ),
    );
    assert_error(
        &as_user_with(
            alice,
            &["--no-new-privs"],
            bin,
            &["status", "--json"],
            &[],
            "",
        ),
        1,
        "setuid_ignored",
        "totpctl is installed for self-service (setuid root), but this process has \
         no_new_privs set (by a sandbox, a container or systemd's NoNewPrivileges=), so the \
         kernel did not grant it root. Run it from an ordinary login shell, or ask an \
         administrator.",
    );
    assert_error(
        &run(
            alice,
            copies.not_setuid,
            &["status", "--json"],
            "",
            &secrets,
        ),
        1,
        "not_root",
        "'totpctl status' must be run as root: the user records and login state are readable \
         and writable only by root, and self-service is not enabled on this system. Run it \
         again with sudo, or ask an administrator to set up two-factor login for you.",
    );
    assert_error(
        &run(bob, copies.open_to_all, &["status", "--json"], "", &secrets),
        1,
        "not_member",
        "you may not manage two-factor login yourself on this system. Ask an administrator to \
         set it up for you.",
    );
    assert_error(
        &run(alice, bin, &["status", BOB, "--json"], "", &secrets),
        1,
        "other_user",
        &format!(
            "you can manage only your own two-factor login ('{ALICE}'), not '{BOB}'; the \
             attempt is logged and nothing was changed."
        ),
    );
    assert_error(
        &run(alice, bin, &["list", "--json"], "", &secrets),
        1,
        "admin_only",
        "'totpctl list' is for administrators only; the attempt is logged. Ask an administrator.",
    );

    // Status, then enroll: the URI, the key and the JPEG in the JSON, and
    // no file anywhere.
    let r = run(alice, bin, &["status", "--json"], "", &secrets);
    assert_run(
        &r,
        0,
        &format!(
            "{{\"user\":\"{ALICE}\",\"status\":\"not_enrolled\",\"store\":\"files\",\"store_writes\":true}}\n"
        ),
        "",
    );
    let home_before = list_dir(&alice.home);
    let r = run(alice, bin, &["enroll", "--json"], "", &secrets);
    assert_eq!((r.code, r.stderr.as_str()), (Some(0), ""), "{r:?}");
    let enrolled = parse_output(&r.stdout);
    let mut shape = enrolled.clone();
    for key in ["uri", "key", "qr_jpeg_base64"] {
        shape.mask(key, &format!("<{key}>"));
    }
    assert_eq!(
        shape.write(),
        format!(
            "{{\"user\":\"{ALICE}\",\"status\":\"pending\",\"type\":\"totp\",\"algorithm\":\"SHA1\",\
             \"digits\":6,\"period\":30,\"issuer\":\"Test Host\",\"uri\":\"<uri>\",\
             \"key\":\"<key>\",\"qr_jpeg_base64\":\"<qr_jpeg_base64>\"}}"
        )
    );
    let uri = enrolled.str("uri").to_owned();
    let secret = secret_of(&uri);
    assert_eq!(enrolled.str("key").replace(' ', ""), secret);
    let decoded = sandbox().join("alice-json.jpg");
    fs::write(&decoded, base64_decode(enrolled.str("qr_jpeg_base64"))).unwrap();
    assert_eq!(support::zbarimg(&decoded), uri);
    fs::remove_file(&decoded).unwrap();
    assert_eq!(
        list_dir(&alice.home),
        home_before,
        "enroll --json wrote a file"
    );
    secrets.push(secret.clone());

    // Activate: a wrong code leaves it pending, the right one activates.
    let wrong = support::wrong_code(&secret);
    secrets.push(wrong.clone());
    let pending = record(ALICE).unwrap();
    assert_error(
        &run(
            alice,
            bin,
            &["activate", "--json"],
            &format!("{wrong}\n"),
            &secrets,
        ),
        1,
        "wrong_code",
        &format!(
            "the code was not accepted (wrong code); '{ALICE}' stays pending. Check that the \
             phone's clock is right and that the app entry is the new one. Then run 'totpctl \
             activate {ALICE}'."
        ),
    );
    assert_eq!(record(ALICE).unwrap(), pending);
    let now = support::now();
    let code = oathtool(&secret, "SHA1", 6, 30, now);
    secrets.push(code.clone());
    let r = run(
        alice,
        bin,
        &["activate", "--json"],
        &format!("{code}\n"),
        &secrets,
    );
    assert_eq!((r.code, r.stderr.as_str()), (Some(0), ""), "{r:?}");
    let activated = parse_output(&r.stdout);
    let recovery = activated.strings("recovery_codes");
    assert_eq!(recovery.len(), 10);
    let mut shape = activated.clone();
    shape.mask("recovery_codes", "<code>");
    assert_eq!(
        shape.write(),
        format!(
            "{{\"user\":\"{ALICE}\",\"status\":\"active\",\"recovery_codes\":[{}]}}",
            ["\"<code>\""; 10].join(",")
        )
    );
    secrets.extend(recovery.iter().cloned());
    let r = run(alice, bin, &["status", "--json"], "", &secrets);
    assert!(
        r.stdout.starts_with(&format!(
            "{{\"user\":\"{ALICE}\",\"status\":\"active\",\"type\":\"totp\",\""
        )),
        "{r:?}"
    );
    let r = run(alice, bin, &["recovery-codes", "--json"], "", &secrets);
    assert_run(
        &r,
        0,
        &format!("{{\"user\":\"{ALICE}\",\"left\":10,\"total\":10}}\n"),
        "",
    );

    // Changing the active enrollment needs a proof on stdin.
    let active = record(ALICE).unwrap();
    let refused = |why: &str| {
        format!(
            "'{ALICE}' has an active enrollment, and changing it needs a current code from the \
             app or an unused recovery code: {why}; nothing was changed."
        )
    };
    assert_error(
        &run(
            alice,
            bin,
            &["disable", "--json"],
            &format!("{wrong}\n"),
            &secrets,
        ),
        1,
        "proof_failed",
        &refused("wrong code"),
    );
    assert_error(
        &run(
            alice,
            bin,
            &["disable", "--json"],
            &format!("{code}\n"),
            &secrets,
        ),
        1,
        "proof_failed",
        &refused("code already used"),
    );
    assert_error(
        &run(alice, bin, &["disable", "--json"], "", &secrets),
        1,
        "no_code",
        &refused("empty code"),
    );
    assert_error(
        &run(
            alice,
            bin,
            &["enroll", "--force", "--json"],
            &format!("{wrong}\n"),
            &secrets,
        ),
        1,
        "proof_failed",
        &refused("wrong code"),
    );
    assert_eq!(record(ALICE).unwrap(), active);
    assert_eq!(list_dir(&alice.home), home_before);

    // A recovery code renews the set; the next code from the app disables.
    let r = run(
        alice,
        bin,
        &["recovery-codes", "--regenerate", "--json"],
        &format!("{}\n", recovery[0]),
        &secrets,
    );
    assert_eq!((r.code, r.stderr.as_str()), (Some(0), ""), "{r:?}");
    let renewed = parse_output(&r.stdout);
    assert_eq!(renewed.strings("recovery_codes").len(), 10);
    assert!(r
        .stdout
        .starts_with(&format!("{{\"user\":\"{ALICE}\",\"recovery_codes\":[\"")));
    let next = oathtool(&secret, "SHA1", 6, 30, now + 30);
    secrets.push(next.clone());
    let r = run(
        alice,
        bin,
        &["disable", "--json"],
        &format!("{next}\n"),
        &secrets,
    );
    assert_run(
        &r,
        0,
        &format!("{{\"user\":\"{ALICE}\",\"status\":\"not_enrolled\"}}\n"),
        "",
    );
    assert_eq!(list_dir(&alice.home), home_before);
}

/// The names in `dir`, sorted.
fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every record, state and lock file in the sandbox store, for `users`,
/// is owned by root:root.
fn assert_root_owned(users: &[&str]) {
    let mut seen = 0;
    for sub in ["users", "state"] {
        for entry in fs::read_dir(sandbox().join(sub)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !users.iter().any(|u| name.starts_with(&format!("{u}."))) {
                continue;
            }
            let meta = entry.metadata().unwrap();
            assert_eq!(
                (meta.uid(), meta.gid()),
                (0, 0),
                "{sub}/{name} is not root:root"
            );
            seen += 1;
        }
    }
    assert!(seen > 0, "no files of {users:?} in the store");
}

/// The shell line of the attack, as an ordinary user runs it: a file size
/// limit of 0 with SIGXFSZ ignored (both survive exec), few descriptors,
/// core dumps on, SIGHUP, SIGINT and a realtime signal ignored; then the setuid totpctl
/// (`"$0" "$@"`). Soft limits, which the start can always lift.
const HOSTILE_START: &str = "ulimit -S -f 0 && ulimit -S -n 12 && ulimit -S -c $(ulimit -H -c) \
                             && trap '' XFSZ HUP INT 40 && exec \"$0\" \"$@\"";

/// The same with the hard file size limit at 0 too, which root can lift
/// only with CAP_SYS_RESOURCE (some containers' root lacks it).
const HOSTILE_START_HARD: &str = "ulimit -f 0 && trap '' XFSZ && exec \"$0\" \"$@\"";

/// Finding 2 of issue 9, replayed. Under `ulimit -f 0` with SIGXFSZ ignored
/// every write of the login state used to fail, so wrong proofs were never
/// counted and the lockout never came. The setuid start must reset the
/// limits and signals first: wrong proofs reach the lockout as usual.
fn limits_and_signals_do_not_survive_the_setuid_start(alice: &TestUser, totpctl: &Path) {
    // Root enrolls alice again (the .jpg written as alice, in her home) and
    // activates it, so that `disable` needs a proof.
    let jpg = alice.home.join("again.jpg");
    let run = as_root(&["enroll", ALICE, "--qr", jpg.to_str().unwrap()], "");
    assert_eq!(run.code, Some(0), "{run:?}");
    let secret = secret_of(&run.uri());
    let code = oathtool(&secret, "SHA1", 6, 30, support::now());
    let run = as_root(&["activate", ALICE], &format!("{code}\n"));
    assert_eq!(run.code, Some(0), "{run:?}");
    let sh = Path::new("/bin/sh");

    // The harness works: an ordinary program under it cannot write a byte,
    // and is not killed for trying.
    let run = as_user(
        alice,
        sh,
        &["-c", HOSTILE_START, "/usr/bin/tee", "x"],
        &[],
        "x\n",
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("File too large"), "{run:?}");

    // What the setuid run looks like from outside, while it waits for the
    // proof on stdin: file size unlimited, no core, enough descriptors,
    // nothing ignored but SIGPIPE (as in every Rust program), nothing blocked.
    let seen = running_under_harness(alice, totpctl, &["disable"]);
    assert!(
        seen.contains("limit Max file size unlimited unlimited"),
        "{seen}"
    );
    assert!(seen.contains("limit Max core file size 0 0"), "{seen}");
    let files: u64 = seen
        .lines()
        .find_map(|l| l.strip_prefix("limit Max open files "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(files >= 64, "{seen}");
    // Ignored: SIGPIPE only (bit 12), as in every Rust program; 32 and 33
    // are the C library's own, which no program may set and it alone uses.
    let ignored = seen
        .lines()
        .find_map(|l| l.strip_prefix("status SigIgn:\t"))
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .unwrap_or(u64::MAX);
    assert_eq!(ignored & !(1 << 31 | 1 << 32), 1 << 12, "{seen}");
    assert!(seen.contains("status SigBlk:\t0000000000000000"), "{seen}");
    assert!(seen.contains("status Gid:"), "{seen}");
    let gids: Vec<&str> = seen
        .lines()
        .find_map(|l| l.strip_prefix("status Gid:"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(gids[1], "0", "effective gid: {seen}");

    // Under a hard limit of 0 the start lifts it, or, where root cannot,
    // refuses to run at all: either way no guess goes uncounted.
    let failures_before = status_number(ALICE, "failures").unwrap();
    let disable = [
        "-c",
        HOSTILE_START_HARD,
        totpctl.to_str().unwrap(),
        "disable",
    ];
    let run = as_user(alice, sh, &disable, &[], "000000\n");
    let refused = "totpctl: totpctl runs setuid root and could not reset the file size limit \
                   (ulimit -f) inherited from the caller (EPERM: Operation not permitted), so it \
                   refuses to run; nothing was changed. Run it from an ordinary login shell \
                   without unusual limits, or ask an administrator.\n";
    if run.stderr == refused {
        eprintln!("root here cannot raise a hard limit (no CAP_SYS_RESOURCE): the start refuses");
        assert_eq!((run.code, run.stdout.as_str()), (Some(1), ""));
        assert_eq!(status_number(ALICE, "failures").unwrap(), failures_before);
    } else {
        assert_eq!((run.code, run.stdout.as_str()), (Some(1), ""), "{run:?}");
        assert!(!run.stderr.contains("too large"), "{run:?}");
        assert_eq!(
            status_number(ALICE, "failures").unwrap(),
            failures_before + 1
        );
    }

    // The attack: wrong proofs, each under the same limits. Every one is
    // refused like any wrong code, and counted, until the lockout.
    let failures_before = status_number(ALICE, "failures").unwrap();
    for _ in 0..6 {
        let run = as_user(
            alice,
            sh,
            &["-c", HOSTILE_START, totpctl.to_str().unwrap(), "disable"],
            &[],
            "000000\n",
        );
        assert_eq!(run.code, Some(1), "{run:?}");
        assert_eq!(run.stdout, "", "{run:?}");
        assert!(
            !run.stderr.contains("too large") && !run.stderr.contains("cannot write"),
            "{run:?}"
        );
    }
    let failures = status_number(ALICE, "failures").unwrap();
    assert!(
        failures >= failures_before + 5,
        "the wrong proofs were not recorded: failures {failures_before} -> {failures}"
    );
    assert!(
        status_number(ALICE, "locked_until").is_some(),
        "no lockout after {failures} failures"
    );
    // Locked out, a proof is not even compared: with --json, `locked_out`.
    let run = as_user(alice, totpctl, &["disable", "--json"], &[], "000000\n");
    let value = parse_output(&run.stdout);
    let error = value.get("error").unwrap();
    assert_eq!(error.str("code"), "locked_out", "{run:?}");
    assert!(
        error.str("message").ends_with("; nothing was changed."),
        "{run:?}"
    );
    assert_eq!(run.stderr, format!("totpctl: {}\n", error.str("message")));
    assert_eq!(run.code, Some(1));
    assert!(record(ALICE).unwrap().starts_with(b"version = 1"));
    assert_root_owned(&[ALICE]);
}

/// A number from root's `status USER --json` (None for null or missing).
fn status_number(user: &str, key: &str) -> Option<u64> {
    let run = as_root(&["status", user, "--json"], "");
    assert_eq!(run.code, Some(0), "{run:?}");
    let rest = run.stdout.split(&format!("\"{key}\":")).nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Start `totpctl args` as `user` under [`HOSTILE_START`], with stdin held
/// open and empty, and report its limits and signal masks once the start
/// is done (file size unlimited), as "limit ..." and "status ..." lines;
/// then kill it. After 10 s without that, report what was seen last, or
/// how it ended.
fn running_under_harness(user: &TestUser, totpctl: &Path, args: &[&str]) -> String {
    use std::io::Read;
    let (uid, gid) = user.uid_gid();
    let mut child = Command::new("/usr/bin/setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--init-groups")
        .args(["/bin/sh", "-c", HOSTILE_START])
        .arg(totpctl)
        .args(args)
        .current_dir(&user.home)
        .env_clear()
        .env("LC_ALL", "C")
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // setpriv and sh exec, so the child's pid becomes totpctl's.
    let proc = PathBuf::from(format!("/proc/{}", child.id()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
            return format!("{seen}\nexited early ({status}): {stderr}");
        }
        let exe = fs::read_link(proc.join("exe")).ok();
        if exe.as_deref() == Some(totpctl) {
            let limits = fs::read_to_string(proc.join("limits")).unwrap_or_default();
            let status = fs::read_to_string(proc.join("status")).unwrap_or_default();
            seen = limits
                .lines()
                .map(|l| {
                    format!(
                        "limit {}",
                        l.split_whitespace().collect::<Vec<_>>().join(" ")
                    )
                })
                .chain(status.lines().map(|l| format!("status {l}")))
                .collect::<Vec<_>>()
                .join("\n");
            if seen.contains("limit Max file size unlimited") {
                break;
            }
        } else {
            seen = format!("exe: {exe:?}");
        }
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    seen
}

/// A preload library whose constructor creates the file named by $MARKER.
fn build_preload(env: &Env) -> PathBuf {
    let src = env.dir.join("evil.c");
    fs::write(
        &src,
        "#include <fcntl.h>\n#include <stdlib.h>\n#include <unistd.h>\n\
         __attribute__((constructor)) static void evil(void) {\n\
           const char *m = getenv(\"MARKER\");\n\
           if (m) { int fd = open(m, O_CREAT | O_WRONLY, 0644); if (fd >= 0) close(fd); }\n\
         }\n",
    )
    .unwrap();
    let lib = env.dir.join("evil.so");
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .output()
        .expect("run cc");
    assert!(out.status.success(), "cc: {out:?}");
    fs::set_permissions(&lib, fs::Permissions::from_mode(0o755)).unwrap();
    lib
}

/// `totpctl self-service enable|disable|status` on a copy of the binary:
/// dpkg-statoverride and the file mode, on and off again.
#[test]
fn enable_and_disable_with_dpkg_statoverride() {
    let env = Env::new("self-service-enable");
    let copies = SetuidCopies::new("enable");
    let group = "pamtotp-ssg2";
    let _ = Command::new("groupdel").arg(group).output();
    let bin = copies.dir.join("totpctl");
    fs::copy(TOTPCTL, &bin).unwrap();
    fs::write(
        &env.config,
        format!(
            "{}self_service_group = \"{group}\"\n",
            fs::read_to_string(&env.config).unwrap()
        ),
    )
    .unwrap();
    let binary = bin.display().to_string();
    let cleanup = || {
        let _ = Command::new("dpkg-statoverride")
            .args(["--remove", &binary])
            .output();
        let _ = Command::new("groupdel").arg(group).output();
    };
    cleanup();

    let run = env.run(&["self-service", "enable", "--binary", &binary]);
    let ok = run.code == Some(0);
    let meta = fs::metadata(&bin).unwrap();
    let gid = nix::unistd::Group::from_name(group)
        .unwrap()
        .map(|g| g.gid.as_raw());
    let listed = Command::new("dpkg-statoverride")
        .args(["--list", &binary])
        .output()
        .unwrap();
    let run2 = env.run(&["self-service", "disable", "--binary", &binary]);
    let after = fs::metadata(&bin).unwrap();
    let listed_after = Command::new("dpkg-statoverride")
        .args(["--list", &binary])
        .output()
        .unwrap();
    cleanup();

    assert!(ok, "{run:?}");
    assert!(
        run.stdout
            .starts_with(&format!("Created the system group '{group}'.\n")),
        "{run:?}"
    );
    assert_eq!(meta.mode() & 0o7777, 0o4754);
    assert_eq!((meta.uid(), Some(meta.gid())), (0, gid));
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout),
        format!("root {group} 4754 {binary}\n")
    );
    assert_eq!(run2.code, Some(0), "{run2:?}");
    assert_eq!(
        (after.mode() & 0o7777, after.uid(), after.gid()),
        (0o755, 0, 0)
    );
    assert!(!listed_after.status.success());

    // The same with --json: enable and disable print the status after the
    // change, as one object.
    let status = |run: &Run| {
        assert_eq!(run.code, Some(0), "{run:?}");
        let mut value = parse_output(&run.stdout);
        if value.get("group_gid") != Some(&support::json::Value::Null) {
            value.mask("group_gid", "<gid>");
        }
        value.mask("binary_gid", "<gid>");
        value.write()
    };
    let config =
        support::json::Value::String(enroll_cli::privilege::CONFIG_PATH.to_owned()).write();
    let object = |enabled: bool, mode: &str, override_line: &str, group_exists: bool| {
        format!(
            "{{\"enabled\":{enabled},\"group\":\"{group}\",\"config\":{config},\
             \"binary\":\"{binary}\",\"binary_mode\":\"{mode}\",\"binary_uid\":0,\
             \"binary_gid\":\"<gid>\",\"binary_error\":null,\"statoverride\":{override_line},\
             \"group_exists\":{group_exists},\"group_gid\":{},\"group_members\":[]}}",
            if group_exists { "\"<gid>\"" } else { "null" }
        )
    };
    let off_no_group = env.run(&["self-service", "status", "--binary", &binary, "--json"]);
    let on = env.run(&["self-service", "enable", "--binary", &binary, "--json"]);
    let on_status = env.run(&["self-service", "status", "--binary", &binary, "--json"]);
    let off = env.run(&["self-service", "disable", "--binary", &binary, "--json"]);
    cleanup();
    assert_eq!(status(&off_no_group), object(false, "0755", "null", false));
    let line = format!("\"root {group} 4754 {binary}\"");
    assert_eq!(status(&on), object(true, "4754", &line, true));
    assert_eq!(on_status.stdout, on.stdout);
    assert_eq!(status(&off), object(false, "0755", "null", true));
    let missing = copies.dir.join("missing");
    let run = env.run(&[
        "self-service",
        "status",
        "--binary",
        missing.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        parse_output(&run.stdout).write(),
        format!(
            "{{\"enabled\":false,\"group\":\"{group}\",\"config\":{config},\
             \"binary\":\"{}\",\"binary_mode\":null,\"binary_uid\":null,\"binary_gid\":null,\
             \"binary_error\":\"No such file or directory (os error 2)\",\"statoverride\":null,\
             \"group_exists\":false,\"group_gid\":null,\"group_members\":[]}}",
            missing.display()
        )
    );
}
