//! `totpctl check`: exact output for each finding, against fixture PAM
//! directories, sshd_config files and passwd files in a private temp dir.
//!
//! The `/dev/log` finding depends on the machine, so it is taken out of the
//! output by [`Fixture::check`] and tested on its own.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use support::{Env, Run};

const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const DEV_LOG: &str = "warning: /dev/log does not exist: the module's and totpctl's log lines \
     (every denied login, every reset) will be lost. Fix: install and start a syslog daemon \
     (rsyslog) or enable systemd-journald's /dev/log socket.\n";
const CLEAN_SSHD: &str =
    "UsePAM yes\nKbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\n";

/// A clean setup: root and one other account, both enrolled; common-auth
/// with pam_unix then pam_totp; sshd including it; a good sshd_config.
struct Fixture {
    env: Env,
    pam_dir: PathBuf,
    sshd_config: PathBuf,
    passwd: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Self {
        let env = Env::new(&format!("check-{name}"));
        let pam_dir = env.dir.join("pam.d");
        fs::create_dir(&pam_dir).unwrap();
        let fixture = Self {
            sshd_config: env.dir.join("sshd_config"),
            passwd: env.dir.join("passwd"),
            pam_dir,
            env,
        };
        fixture.pam(
            "common-auth",
            &format!(
                "# comment\nauth\t[success=1 default=ignore]\tpam_unix.so nullok\nauth\trequisite\tpam_deny.so\n\
                 auth\trequired\tpam_permit.so\nauth\t[success=ok ignore=ignore default=die]\tpam_totp.so config={}\n",
                fixture.env.config.display()
            ),
        );
        fixture.pam(
            "sshd",
            "@include common-auth\naccount required pam_nologin.so\n",
        );
        fs::write(&fixture.sshd_config, CLEAN_SSHD).unwrap();
        fs::write(
            &fixture.passwd,
            "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
             pamtotp-chk:x:4242:4242::/home/pamtotp-chk:/bin/bash\n",
        )
        .unwrap();
        fixture.record("root", "active");
        fixture.record("pamtotp-chk", "active");
        fixture
    }

    fn pam(&self, service: &str, text: &str) {
        fs::write(self.pam_dir.join(service), text).unwrap();
    }

    fn record(&self, user: &str, status: &str) {
        let path = self.env.record_path(user);
        fs::write(
            &path,
            format!(
                "version = 1\nstatus = \"{status}\"\nsecret = \"{SECRET}\"\nalgorithm = \"SHA1\"\n\
                 digits = 6\nperiod = 30\n"
            ),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn config(&self, extra: &str) {
        let text = fs::read_to_string(&self.env.config).unwrap();
        fs::write(&self.env.config, format!("{text}{extra}")).unwrap();
    }

    fn check(&self, extra: &[&str]) -> Run {
        let mut args = vec![
            "check",
            "--pam-dir",
            self.pam_dir.to_str().unwrap(),
            "--sshd-config",
            self.sshd_config.to_str().unwrap(),
            "--passwd",
            self.passwd.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let mut run = self.env.run(&args);
        if run.stdout.contains(DEV_LOG) {
            run.stdout = without_dev_log(&run.stdout);
        }
        run
    }

    fn d(&self) -> String {
        self.env.dir.display().to_string()
    }

    /// The lines of a clean run, each with its place in the output.
    fn clean_lines(&self) -> Vec<String> {
        let d = self.d();
        vec![
            format!("ok: config {d}/config.toml: valid"),
            format!("ok: users_dir {d}/users: a directory, 0700 root"),
            format!("ok: state_dir {d}/state: a directory, 0700 root"),
            format!("ok: 2 records in {d}/users: 2 active, 0 pending"),
            "ok: 2 accounts with a login shell: 2 enrolled, 0 skipped by group rules".into(),
            format!("ok: {d}/pam.d/common-auth:5: pam_totp.so runs after pam_unix.so in PAM service common-auth"),
            format!("ok: {d}/pam.d/common-auth:5: pam_totp.so runs after pam_unix.so in PAM service sshd"),
            format!("ok: no screen locker's PAM service in {d}/pam.d (xscreensaver, kde, i3lock, swaylock, ...)"),
            format!("ok: {d}/sshd_config: UsePAM yes, keyboard-interactive on and required by AuthenticationMethods"),
        ]
    }

    /// The clean run's output with each line that contains `key` replaced
    /// by `line` (removed if `line` is empty), and `summary` at the end.
    fn expect(&self, changes: &[(&str, &str)], summary: &str) -> String {
        let mut lines = self.clean_lines();
        for (replaces, line) in changes {
            match lines.iter().position(|l| l.contains(replaces)) {
                Some(at) => {
                    if line.is_empty() {
                        lines.remove(at);
                    } else {
                        lines[at] = (*line).to_owned();
                    }
                }
                _ => panic!("no clean line starts with {replaces:?}"),
            }
        }
        lines.push(format!("summary: {summary}"));
        lines.join("\n") + "\n"
    }
}

/// The output without the `/dev/log` warning, and with the summary's warning
/// count lowered by one to match.
fn without_dev_log(stdout: &str) -> String {
    let text = stdout.replace(DEV_LOG, "");
    let (head, summary) = text.trim_end().rsplit_once('\n').unwrap();
    let (errors, warnings) = summary
        .strip_prefix("summary: ")
        .unwrap()
        .split_once(", ")
        .unwrap();
    let n: usize = warnings.split(' ').next().unwrap().parse().unwrap();
    let n = n - 1;
    format!(
        "{head}\nsummary: {errors}, {n} warning{}\n",
        if n == 1 { "" } else { "s" }
    )
}

fn assert_check(run: &Run, code: i32, stdout: &str) {
    assert_eq!(run.stdout, stdout, "{run:?}");
    let stderr = match code {
        0 => String::new(),
        _ => {
            let errors = stdout.lines().filter(|l| l.starts_with("error:")).count();
            let (s, it) = if errors == 1 {
                ("", "it")
            } else {
                ("s", "them")
            };
            format!("totpctl: {errors} error{s} found; fix {it} before enabling pam_totp or relying on it.\n")
        }
    };
    assert_eq!(run.stderr, stderr, "{run:?}");
    assert_eq!(run.code, Some(code), "{run:?}");
}

#[test]
fn clean_setup_exits_zero() {
    let f = Fixture::new("clean");
    let run = f.check(&[]);
    assert_check(&run, 0, &f.expect(&[], "0 errors, 0 warnings"));
    // Only the services named are read.
    let run = f.check(&["--pam-service", "sshd"]);
    assert_check(
        &run,
        0,
        &f.expect(&[("service common-auth", "")], "0 errors, 0 warnings"),
    );
}

#[test]
fn config_that_the_module_refuses() {
    let f = Fixture::new("bad-config");
    f.config("colour = \"blue\"\n");
    let d = f.d();
    let run = f.check(&[]);
    let expected = format!(
        "error: config {d}/config.toml: unknown field `colour`, expected one of `version`, `paths`, \
         `policy`, `otp`, `throttle`, `enroll`. pam_totp denies every login while the config is \
         refused. Fix: correct the file (see pam_totp.toml(5)). Records, accounts and directories \
         are not checked until then.\n\
         ok: {d}/pam.d/common-auth:5: pam_totp.so runs after pam_unix.so in PAM service common-auth\n\
         ok: {d}/pam.d/common-auth:5: pam_totp.so runs after pam_unix.so in PAM service sshd\n\
         ok: no screen locker's PAM service in {d}/pam.d (xscreensaver, kde, i3lock, swaylock, ...)\n\
         ok: {d}/sshd_config: UsePAM yes, keyboard-interactive on and required by AuthenticationMethods\n\
         summary: 1 error, 0 warnings\n"
    );
    assert!(
        run.stdout
            .starts_with(&format!("error: config {d}/config.toml: ")),
        "{run:?}"
    );
    // The TOML error wording belongs to the toml crate: compare the rest exactly.
    let first_end = run.stdout.find('\n').unwrap();
    assert!(run.stdout[..first_end].contains("colour"), "{run:?}");
    assert!(run.stdout[..first_end].ends_with(
        "pam_totp denies every login while the config is refused. Fix: correct the file (see \
         pam_totp.toml(5)). Records, accounts and directories are not checked until then."
    ));
    assert_eq!(
        run.stdout[first_end..],
        expected[expected.find('\n').unwrap()..]
    );
    assert_eq!(run.code, Some(1));
}

#[test]
fn config_writable_by_others() {
    let f = Fixture::new("config-mode");
    fs::set_permissions(&f.env.config, fs::Permissions::from_mode(0o666)).unwrap();
    let d = f.d();
    let run = f.check(&[]);
    assert_check(
        &run,
        1,
        &format!(
            "error: config {d}/config.toml: has mode 0666; it must not be writable by group or \
             others (chmod 644). pam_totp denies every login while the config is refused. Fix: \
             correct the file (see pam_totp.toml(5)). Records, accounts and directories are not \
             checked until then.\n\
             ok: {d}/pam.d/common-auth:5: pam_totp.so runs after pam_unix.so in PAM service common-auth\n\
             ok: {d}/pam.d/common-auth:5: pam_totp.so runs after pam_unix.so in PAM service sshd\n\
             ok: no screen locker's PAM service in {d}/pam.d (xscreensaver, kde, i3lock, swaylock, ...)\n\
             ok: {d}/sshd_config: UsePAM yes, keyboard-interactive on and required by AuthenticationMethods\n\
             summary: 1 error, 0 warnings\n"
        ),
    );
}

#[test]
fn directory_modes_and_owners() {
    let f = Fixture::new("dirs");
    let d = f.d();
    fs::set_permissions(f.env.dir.join("users"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(f.env.dir.join("state"), Some(1), None).unwrap();
    let run = f.check(&[]);
    let users = format!(
        "error: users_dir {d}/users has mode 0755, expected 0700. Fix: chmod 700 {d}/users"
    );
    let state = format!(
        "error: state_dir {d}/state is owned by uid 1, expected root: that user can replace the \
         files in it. Fix: chown root:root {d}/state"
    );
    assert_check(
        &run,
        1,
        &f.expect(
            &[("users_dir", &users), ("state_dir", &state)],
            "2 errors, 0 warnings",
        ),
    );

    fs::remove_dir_all(f.env.dir.join("state")).unwrap();
    let run = f.check(&[]);
    let state = format!(
        "error: state_dir {d}/state does not exist: logins of enrolled users fail because their \
         state cannot be locked. Fix: install -d -m 0700 -o root -g root {d}/state"
    );
    assert_check(
        &run,
        1,
        &f.expect(
            &[("users_dir", &users), ("state_dir", &state)],
            "2 errors, 0 warnings",
        ),
    );
}

#[test]
fn records_the_module_refuses() {
    let f = Fixture::new("records");
    let d = f.d();
    fs::set_permissions(f.env.record_path("root"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(
        f.env.record_path("pamtotp-chk"),
        "version = 1\nstatus = \"active\"\nsecret = 12\n",
    )
    .unwrap();
    let run = f.check(&[]);
    let root = format!(
        "error: user record {d}/users/root.toml has mode 0644; it must not be accessible by group \
         or others (chmod 600). pam_totp denies root's logins. Fix: chown root:root and chmod 600 \
         {d}/users/root.toml, or 'totpctl reset root' and enroll again."
    );
    let other = format!(
        "error: user record {d}/users/pamtotp-chk.toml is invalid: line 3: a value has the wrong \
         type. pam_totp denies pamtotp-chk's logins. Fix: correct the file, or remove it with \
         'totpctl reset pamtotp-chk' and enroll again."
    );
    let summary = format!("ok: 2 records in {d}/users: 0 active, 0 pending");
    let mut expected = f.expect(
        &[
            ("records in", &summary),
            (
                "ok: 2 accounts",
                "ok: 2 accounts with a login shell: 0 enrolled, 0 skipped by group rules",
            ),
        ],
        "2 errors, 0 warnings",
    );
    expected = expected.replace(&summary, &format!("{other}\n{root}\n{summary}"));
    assert_check(&run, 1, &expected);
}

/// A HOTP token is counted, and one whose counter is missing from the state
/// (lost state: every code is refused until its counter is set) is a warning.
#[test]
fn a_hotp_token_without_its_counter() {
    let f = Fixture::new("hotp");
    let d = f.d();
    let path = f.env.record_path("pamtotp-chk");
    fs::write(
        &path,
        format!(
            "version = 1\nstatus = \"active\"\ntype = \"hotp\"\nsecret = \"{SECRET}\"\n\
             algorithm = \"SHA1\"\ndigits = 6\n"
        ),
    )
    .unwrap();
    let summary = format!("ok: 2 records in {d}/users: 2 active, 0 pending");
    let hotp_summary = format!("{summary} (1 of them HOTP)");
    let run = f.check(&[]);
    let expected = f.expect(&[], "0 errors, 1 warning").replace(
        &summary,
        &format!(
            "warning: pamtotp-chk has a HOTP token, but the login state holds no counter (lost \
             or corrupt): pam_totp refuses every code, never restarting at counter 0. Fix: set \
             the token's next counter ('totpctl unlock pamtotp-chk --counter N'), or enroll the \
             token again.\n\
             {hotp_summary}"
        ),
    );
    assert_check(&run, 0, &expected);

    let state = f.env.dir.join("state/pamtotp-chk.state");
    fs::write(&state, "version = 1\nhotp_next = 12\n").unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o600)).unwrap();
    let run = f.check(&[]);
    let expected = f
        .expect(&[], "0 errors, 0 warnings")
        .replace(&summary, &hotp_summary);
    assert_check(&run, 0, &expected);
}

#[test]
fn state_lock_and_lockout() {
    let f = Fixture::new("state");
    let d = f.d();
    let lock = f.env.dir.join("state/root.lock");
    fs::write(&lock, "").unwrap();
    fs::set_permissions(&lock, fs::Permissions::from_mode(0o644)).unwrap();
    let state = f.env.dir.join("state/pamtotp-chk.state");
    fs::write(
        &state,
        "version = 1\nfailures = 10\nlocked_until = 4102444800\n",
    )
    .unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o600)).unwrap();
    let run = f.check(&[]);
    let summary = format!("ok: 2 records in {d}/users: 2 active, 0 pending");
    let expected = f.expect(&[], "1 error, 1 warning").replace(
        &summary,
        &format!(
            "warning: pamtotp-chk is locked out until 2100-01-01 00:00:00 UTC after 10 failed \
             codes. Fix: 'totpctl unlock pamtotp-chk' once you know it was them.\n\
             error: state lock {d}/state/root.lock has mode 0644; it must not be accessible by \
             group or others (chmod 600). Logins of root fail until it is fixed. Fix: rm \
             {d}/state/root.lock\n{summary}"
        ),
    );
    assert_check(&run, 1, &expected);
}

#[test]
fn root_first_then_users_who_would_be_locked_out() {
    let f = Fixture::new("lockout");
    fs::remove_file(f.env.record_path("root")).unwrap();
    f.record("pamtotp-chk", "pending");
    let d = f.d();
    let run = f.check(&[]);
    let expected = f.expect(
        &[
            (
                "ok: 2 records",
                &format!("ok: 1 record in {d}/users: 0 active, 1 pending"),
            ),
            (
                "ok: 2 accounts",
                "error: root (uid 0) would be locked out: not enrolled, [policy] unenrolled = \
                 \"deny\", and no exempt_groups or require_groups rule skips them. Fix: enroll \
                 ('totpctl enroll root'), add them to an exempt group, or set unenrolled = \
                 \"allow-until:YYYY-MM-DD\" for the roll-out.\n\
                 error: pamtotp-chk would be locked out: the enrollment is pending activation, \
                 [policy] unenrolled = \"deny\", and no exempt_groups or require_groups rule skips \
                 them. Fix: activate it ('totpctl activate pamtotp-chk'), add them to an exempt \
                 group, or set unenrolled = \"allow-until:YYYY-MM-DD\" for the roll-out.\n\
                 ok: 2 accounts with a login shell: 0 enrolled, 0 skipped by group rules",
            ),
        ],
        "2 errors, 0 warnings",
    );
    assert_check(&run, 1, &expected);
}

#[test]
fn allow_until_warns_and_an_expired_deadline_locks_out() {
    let f = Fixture::new("allow-until");
    fs::remove_file(f.env.record_path("pamtotp-chk")).unwrap();
    let d = f.d();
    let records = format!("ok: 1 record in {d}/users: 1 active, 0 pending");
    f.config("\n[policy]\nunenrolled = \"allow-until:2099-12-31\"\n");
    let run = f.check(&[]);
    assert_check(
        &run,
        0,
        &f.expect(
            &[
                ("records in", &records),
                (
                    "ok: 2 accounts",
                    "warning: pamtotp-chk is not enrolled: let through until 2099-12-31, locked \
                     out after that. Fix: enroll ('totpctl enroll pamtotp-chk') before then.\n\
                     ok: 2 accounts with a login shell: 1 enrolled, 0 skipped by group rules",
                ),
            ],
            "0 errors, 1 warning",
        ),
    );

    let text = fs::read_to_string(&f.env.config)
        .unwrap()
        .replace("2099-12-31", "2000-01-01");
    fs::write(&f.env.config, text).unwrap();
    let run = f.check(&[]);
    assert_check(
        &run,
        1,
        &f.expect(
            &[
                ("records in", &records),
                (
                    "ok: 2 accounts",
                    "error: pamtotp-chk would be locked out: not enrolled, and [policy] unenrolled \
                     = \"allow-until:2000-01-01\" ended on 2000-01-01. Fix: enroll ('totpctl \
                     enroll pamtotp-chk'), add them to an exempt group, or move the deadline.\n\
                     ok: 2 accounts with a login shell: 1 enrolled, 0 skipped by group rules",
                ),
            ],
            "1 error, 0 warnings",
        ),
    );
}

#[test]
fn exempt_and_required_groups_skip_users() {
    let f = Fixture::new("groups");
    fs::remove_file(f.env.record_path("pamtotp-chk")).unwrap();
    let users = nix::unistd::Group::from_name("users")
        .unwrap()
        .expect("group users");
    let gid = users.gid.as_raw();
    fs::write(
        &f.passwd,
        format!("root:x:0:0:root:/root:/bin/bash\npamtotp-chk:x:4242:{gid}::/home/x:/bin/bash\n"),
    )
    .unwrap();
    let d = f.d();
    let records = format!("ok: 1 record in {d}/users: 1 active, 0 pending");
    f.config("\n[policy]\nexempt_groups = [\"users\"]\n");
    let run = f.check(&[]);
    assert_check(
        &run,
        0,
        &f.expect(
            &[
                ("records in", &records),
                (
                    "ok: 2 accounts",
                    "ok: 2 accounts with a login shell: 1 enrolled, 1 skipped by group rules",
                ),
            ],
            "0 errors, 0 warnings",
        ),
    );
    // A group that does not exist: the module denies everyone.
    let text = fs::read_to_string(&f.env.config).unwrap().replace(
        "exempt_groups = [\"users\"]",
        "require_groups = [\"pamtotp-no-such-group\"]",
    );
    fs::write(&f.env.config, text).unwrap();
    let run = f.check(&[]);
    assert_check(
        &run,
        1,
        &f.expect(
            &[
                ("records in", &records),
                (
                    "ok: 2 accounts",
                    "error: group 'pamtotp-no-such-group' in policy.require_groups does not \
                     exist: pam_totp denies every login. Fix: create the group or correct \
                     [policy] in the config.",
                ),
            ],
            "1 error, 0 warnings",
        ),
    );
}

const SSHD_OK: &str = "sshd_config: UsePAM yes";
const NO_METHODS: &str =
    "AuthenticationMethods is not set: a user with an SSH key logs in without \
     a code (PAM's auth stack runs only for keyboard-interactive). Fix: AuthenticationMethods \
     publickey,keyboard-interactive or keyboard-interactive";

#[test]
fn sshd_kbd_interactive_off() {
    let f = Fixture::new("sshd-kbd");
    let d = f.d();
    for (text, shown) in [
        (
            "KbdInteractiveAuthentication no\n",
            "KbdInteractiveAuthentication no",
        ),
        (
            "ChallengeResponseAuthentication no\n",
            "ChallengeResponseAuthentication no",
        ),
        // The first value wins, as in sshd, and the alias is the same setting.
        (
            "kbdinteractiveauthentication=no\nChallengeResponseAuthentication yes\n",
            "kbdinteractiveauthentication no",
        ),
    ] {
        fs::write(&f.sshd_config, format!("{text}{CLEAN_SSHD}")).unwrap();
        let run = f.check(&[]);
        let line = format!(
            "error: {d}/sshd_config:1: {shown}: sshd cannot show the code prompt, so logins that \
             need pam_totp fail or skip it. Fix: KbdInteractiveAuthentication yes"
        );
        assert_check(
            &run,
            1,
            &f.expect(&[(SSHD_OK, &line)], "1 error, 0 warnings"),
        );
    }
}

#[test]
fn sshd_without_pam() {
    let f = Fixture::new("sshd-pam");
    let d = f.d();
    fs::write(&f.sshd_config, format!("UsePAM no\n{CLEAN_SSHD}")).unwrap();
    let run = f.check(&[]);
    let line = format!(
        "error: {d}/sshd_config:1: UsePAM no: sshd never runs PAM, so SSH logins skip the code. \
         Fix: UsePAM yes"
    );
    assert_check(
        &run,
        1,
        &f.expect(&[(SSHD_OK, &line)], "1 error, 0 warnings"),
    );

    fs::write(
        &f.sshd_config,
        "KbdInteractiveAuthentication yes\nAuthenticationMethods keyboard-interactive\n",
    )
    .unwrap();
    let run = f.check(&[]);
    let line = format!(
        "error: {d}/sshd_config: UsePAM is not set and defaults to no: SSH logins skip the code. \
         Fix: add UsePAM yes"
    );
    assert_check(
        &run,
        1,
        &f.expect(&[(SSHD_OK, &line)], "1 error, 0 warnings"),
    );
}

#[test]
fn sshd_authentication_methods() {
    let f = Fixture::new("sshd-methods");
    let d = f.d();
    fs::write(
        &f.sshd_config,
        "UsePAM yes\nAuthenticationMethods publickey password\nAuthenticationMethods keyboard-interactive\n",
    )
    .unwrap();
    let run = f.check(&[]);
    let line = format!(
        "error: {d}/sshd_config:2: AuthenticationMethods publickey password has no \
         keyboard-interactive step, so SSH logins never see the code prompt. Fix: \
         AuthenticationMethods publickey,keyboard-interactive (key plus code) or \
         keyboard-interactive (password plus code)"
    );
    assert_check(
        &run,
        1,
        &f.expect(&[(SSHD_OK, &line)], "1 error, 0 warnings"),
    );

    fs::write(&f.sshd_config, "UsePAM yes\n").unwrap();
    let run = f.check(&[]);
    let line = format!("warning: {d}/sshd_config: {NO_METHODS}");
    assert_check(
        &run,
        0,
        &f.expect(&[(SSHD_OK, &line)], "0 errors, 1 warning"),
    );
}

#[test]
fn sshd_include_is_followed_and_match_is_noted() {
    let f = Fixture::new("sshd-include");
    let d = f.d();
    let conf_d = f.env.dir.join("sshd_config.d");
    fs::create_dir(&conf_d).unwrap();
    fs::write(
        conf_d.join("50-cloud.conf"),
        "KbdInteractiveAuthentication no\n",
    )
    .unwrap();
    fs::write(conf_d.join("50-cloud.conf.bak"), "UsePAM no\n").unwrap();
    fs::write(
        &f.sshd_config,
        format!("Include {d}/sshd_config.d/*.conf\n{CLEAN_SSHD}Match User backup\n  UsePAM no\n"),
    )
    .unwrap();
    let run = f.check(&[]);
    let lines = format!(
        "warning: {d}/sshd_config:5: settings inside Match blocks are not checked; make sure none \
         of them turns off UsePAM or keyboard-interactive for the users of pam_totp.\n\
         error: {d}/sshd_config.d/50-cloud.conf:1: KbdInteractiveAuthentication no: sshd cannot \
         show the code prompt, so logins that need pam_totp fail or skip it. Fix: \
         KbdInteractiveAuthentication yes"
    );
    assert_check(
        &run,
        1,
        &f.expect(&[(SSHD_OK, &lines)], "1 error, 1 warning"),
    );

    fs::remove_file(&f.sshd_config).unwrap();
    let run = f.check(&[]);
    let line = format!(
        "ok: {d}/sshd_config does not exist (sshd is not installed); nothing to check for SSH"
    );
    assert_check(
        &run,
        0,
        &f.expect(&[(SSHD_OK, &line)], "0 errors, 0 warnings"),
    );
}

#[test]
fn pam_totp_before_the_password_module() {
    let f = Fixture::new("pam-order");
    let d = f.d();
    let conf = f.env.config.display().to_string();
    f.pam(
        "common-auth",
        &format!(
            "auth required pam_totp.so config={conf}\nauth [success=1 default=ignore] pam_unix.so\n\
             auth requisite pam_deny.so\nauth required pam_permit.so\n"
        ),
    );
    let run = f.check(&[]);
    let warn = |service: &str| {
        format!(
            "warning: {d}/pam.d/common-auth:1: pam_totp.so runs before the password module \
             pam_unix.so ({d}/pam.d/common-auth:2) in PAM service {service}: anyone can ask for a \
             code, wrong guesses lock the real user out, and a right code is confirmed before the \
             password. Fix: move the pam_totp line after it (pam-auth-update's profile does)."
        )
    };
    assert_check(
        &run,
        0,
        &f.expect(
            &[
                ("service common-auth", &warn("common-auth")),
                ("service sshd", &warn("sshd")),
            ],
            "0 errors, 2 warnings",
        ),
    );
}

/// `totpctl check | head`: a reader that goes away ends the report, not
/// totpctl (it used to panic on the closed pipe); errors still count.
#[test]
fn a_closed_pipe_ends_the_report_quietly() {
    let f = Fixture::new("closed-pipe");
    let mut cmd = f.env.command(&[
        "check",
        "--pam-dir",
        f.pam_dir.to_str().unwrap(),
        "--sshd-config",
        f.sshd_config.to_str().unwrap(),
        "--passwd",
        f.passwd.to_str().unwrap(),
    ]);
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
}

/// A forward_pass line only splits the answer: without a pam_totp line
/// after the password module, no code would be checked at all.
#[test]
fn forward_pass_needs_a_pam_totp_line_after_the_password() {
    let f = Fixture::new("pam-forward");
    let d = f.d();
    let conf = f.env.config.display().to_string();
    let stack = |tail: &str| {
        format!(
            "auth required pam_totp.so config={conf} forward_pass\n\
             auth requisite pam_unix.so use_first_pass\n{tail}auth required pam_permit.so\n"
        )
    };
    f.pam("common-auth", &stack(""));
    let error = |service: &str| {
        format!(
            "error: {d}/pam.d/common-auth:1: a forward_pass line only splits the answer, and PAM \
             service {service} has no pam_totp.so line after its password module to check the \
             code: no code is checked. Fix: use the stack in pam_totp(8): forward_pass, then the \
             password module with use_first_pass, then pam_totp.so."
        )
    };
    let run = f.check(&[]);
    assert_check(
        &run,
        1,
        &f.expect(
            &[
                ("service common-auth", &error("common-auth")),
                ("service sshd", &error("sshd")),
            ],
            "2 errors, 0 warnings",
        ),
    );
    f.pam(
        "common-auth",
        &stack(&format!("auth required pam_totp.so config={conf}\n")),
    );
    let run = f.check(&[]);
    assert!(
        run.stdout.contains(&format!(
            "ok: {d}/pam.d/common-auth:1: forward_pass hands the password to pam_unix.so and the \
         code to {d}/pam.d/common-auth:3 in PAM service sshd"
        )),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("summary: 0 errors"), "{}", run.stdout);

    // A password line that does not end the stack (required) lets the code
    // be counted and used up after a wrong password: an error (found in review).
    f.pam(
        "common-auth",
        &stack(&format!("auth required pam_totp.so config={conf}\n"))
            .replace("auth requisite pam_unix.so", "auth required pam_unix.so"),
    );
    let run = f.check(&[]);
    assert!(
        run.stdout.contains(&format!(
            "error: {d}/pam.d/common-auth:1: with forward_pass, the password module pam_unix.so \
             ({d}/pam.d/common-auth:2) must end the stack when the password is wrong"
        )),
        "{}",
        run.stdout
    );
    assert_eq!(run.code, Some(1));

    // A sufficient password line ends the stack before the code is
    // checked: the same rule as the module's, with the line that skips.
    f.pam(
        "common-auth",
        &stack(&format!("auth required pam_totp.so config={conf}\n"))
            .replace("auth requisite pam_unix.so", "auth sufficient pam_unix.so"),
    );
    let run = f.check(&[]);
    assert!(
        run.stdout.contains(&format!(
            "error: {d}/pam.d/common-auth:1: forward_pass in PAM service common-auth: \
             {d}/pam.d/common-auth:2 (pam_unix.so 'sufficient') can end the stack before \
             {d}/pam.d/common-auth:3 checks the code, so the password alone logs in"
        )),
        "{}",
        run.stdout
    );
    assert_eq!(run.code, Some(1));
}

#[test]
fn pam_includes_substacks_and_bad_arguments() {
    let f = Fixture::new("pam-args");
    let d = f.d();
    let conf = f.env.config.display().to_string();
    f.pam(
        "password-auth",
        "auth [success=done default=die] pam_sss.so\n",
    );
    f.pam(
        "custom",
        &format!(
            "auth substack password-auth\n-auth required /lib/security/pam_totp.so \
             config={conf} [prompt=Code please: ] nullok nullok\nauth include missing-file\n"
        ),
    );
    f.pam(
        "other",
        "auth required pam_unix.so\nauth required pam_totp.so\n",
    );
    let run = f.check(&[
        "--pam-service",
        "custom",
        "--pam-service",
        "other",
        "--pam-service",
        "none",
    ]);
    let expected = f.expect(
        &[
            (
                "service common-auth",
                &format!(
                    "error: {d}/pam.d/custom:2: module argument 'nullok' given twice; pam_totp \
                     denies every login through PAM service custom. Fix the line (see \
                     pam_totp(8)).\n\
                     ok: {d}/pam.d/custom:2: pam_totp.so runs after pam_sss.so in PAM service custom\n\
                     warning: {d}/pam.d/other:2: the module reads config /etc/pam_totp/config.toml, \
                     not the {conf} checked here. Fix: run 'totpctl --config \
                     /etc/pam_totp/config.toml check' as well.\n\
                     ok: {d}/pam.d/other:2: pam_totp.so runs after pam_unix.so in PAM service other"
                ),
            ),
            (
                "service sshd",
                &format!(
                    "warning: PAM service file {d}/pam.d/none cannot be read (does not \
                     exist); it is not checked."
                ),
            ),
        ],
        "1 error, 3 warnings",
    );
    // The missing include is reported where it is read, before the module lines.
    let expected = expected.replace(
        &format!("error: {d}/pam.d/custom:2"),
        &format!(
            "warning: PAM service file {d}/pam.d/missing-file cannot be read (does not \
             exist); it is not checked.\nerror: {d}/pam.d/custom:2"
        ),
    );
    assert_check(&run, 1, &expected);
}

#[test]
fn dev_log_missing_is_a_warning() {
    let f = Fixture::new("dev-log");
    let run = f.env.run(&[
        "check",
        "--pam-dir",
        f.pam_dir.to_str().unwrap(),
        "--sshd-config",
        f.sshd_config.to_str().unwrap(),
        "--passwd",
        f.passwd.to_str().unwrap(),
    ]);
    let clean = f.expect(&[], "0 errors, 0 warnings");
    if std::path::Path::new("/dev/log").exists() {
        assert_check(&run, 0, &clean);
    } else {
        let expected = clean.replace(
            "summary: 0 errors, 0 warnings\n",
            &format!("{DEV_LOG}summary: 0 errors, 1 warning\n"),
        );
        assert_check(&run, 0, &expected);
    }
}

/// Screen lockers run PAM as the user: the ones whose stacks reach
/// pam_totp.so are listed with what `policy.unprivileged` makes of them.
#[test]
fn screen_lockers_and_the_helper() {
    let f = Fixture::new("lockers");
    let d = f.d();
    f.pam("xscreensaver", "@include common-auth\n");
    f.pam("swaylock", "auth include login\n");
    f.pam("login", "auth required pam_unix.so\n");
    let helper = f.env.dir.join("totp-verify");
    fs::write(&helper, "#!/bin/sh\nexit 4\n").unwrap();
    let conf = f.env.config.display().to_string();
    let totp = |extra: &str| {
        format!(
            "auth [success=1 default=ignore] pam_unix.so\nauth requisite pam_deny.so\n\
             auth required pam_permit.so\nauth [success=ok ignore=ignore default=die] \
             pam_totp.so config={conf}{extra}\n"
        )
    };
    f.pam(
        "common-auth",
        &totp(&format!(" helper={}", helper.display())),
    );
    let swaylock = "ok: screen locker swaylock (PAM service swaylock): pam_totp.so is not in \
                    its stack; it unlocks without a code"
        .to_owned();
    let needs = |what: &str| {
        format!(
            "error: {d}/pam.d/common-auth:4: screen locker XScreenSaver (PAM service xscreensaver) \
             needs the helper {}, which is {what}: every unlock is refused. Fix: reinstall \
             libpam-totp (the helper is setuid root, mode 4755), or set policy.unprivileged.",
            helper.display()
        )
    };
    let lockers = |stdout: &str| -> Vec<String> {
        stdout
            .lines()
            .filter(|l| l.contains("screen locker"))
            .map(str::to_owned)
            .collect()
    };

    // Not setuid: every unlock would be refused. Lockers without pam_totp
    // are listed as such; the report says nothing of services that are
    // not lockers.
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    let run = f.check(&[]);
    assert_eq!(
        lockers(&run.stdout),
        [needs("not setuid root and executable by all"), swaylock],
        "{run:?}"
    );
    assert!(
        run.stdout.ends_with("summary: 1 error, 0 warnings\n"),
        "{run:?}"
    );
    assert_eq!(run.code, Some(1));

    // Setuid root: the helper checks the codes.
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o4755)).unwrap();
    let run = f.check(&[]);
    let ok = format!(
        "ok: {d}/pam.d/common-auth:4: screen locker XScreenSaver (PAM service xscreensaver) uses \
         the helper {} for codes (policy.unprivileged = \"helper\")",
        helper.display()
    );
    assert!(run.stdout.contains(&format!("{ok}\n")), "{run:?}");
    assert_eq!(run.code, Some(0), "{run:?}");

    // Missing, and the two other settings of the switch.
    fs::remove_file(&helper).unwrap();
    let run = f.check(&[]);
    assert!(run.stdout.contains(&needs("missing")), "{run:?}");
    f.config("[policy]\nunprivileged = \"ignore\"\n");
    let run = f.check(&[]);
    assert!(
        run.stdout.contains(&format!(
            "warning: {d}/pam.d/common-auth:4: screen locker XScreenSaver (PAM service \
             xscreensaver) runs pam_totp.so as the user, and policy.unprivileged = \"ignore\": it \
             unlocks without a code.\n"
        )),
        "{run:?}"
    );
    assert_eq!(run.code, Some(0), "{run:?}");
}

#[test]
fn the_same_config_file_by_another_path_is_the_same() {
    let f = Fixture::new("same-config");
    let d = f.d();
    // The stack names the checked config through a symlink and a `.`: the
    // same file, so no warning.
    std::os::unix::fs::symlink(&f.env.config, f.env.dir.join("link.toml")).unwrap();
    let common = fs::read_to_string(f.pam_dir.join("common-auth")).unwrap();
    let via = format!("{d}/./link.toml");
    f.pam(
        "common-auth",
        &common.replace(&f.env.config.display().to_string(), &via),
    );
    let run = f.check(&[]);
    assert_check(&run, 0, &f.expect(&[], "0 errors, 0 warnings"));
    // A copy is another file: warned about.
    fs::copy(&f.env.config, f.env.dir.join("copy.toml")).unwrap();
    f.pam(
        "common-auth",
        &common.replace(
            &f.env.config.display().to_string(),
            &format!("{d}/copy.toml"),
        ),
    );
    let run = f.check(&["--pam-service", "common-auth"]);
    assert!(
        run.stdout.contains(&format!(
            "the module reads config {d}/copy.toml, not the {d}/config.toml checked here"
        )),
        "{}",
        run.stdout
    );
}
