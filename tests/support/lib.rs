//! Helpers shared by the integration tests: a sandbox with its own config,
//! user records, state and PAM service directory, and runners for the real
//! tools (pamtester under pam_wrapper, oathtool).
//!
//! Nothing here mocks PAM: every login goes through the system's libpam, with
//! pam_wrapper only redirecting the service directory and capturing
//! pam_syslog lines on stderr.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failure here is a test failure

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

pub mod slapd;

pub const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// The workspace's target directory for the current profile.
pub fn target_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    target.join(if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    })
}

/// The built module. `make test` builds it before running the tests.
pub fn module_path() -> PathBuf {
    let path = target_dir().join("libpam_totp.so");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first (make test does)",
        path.display()
    );
    path
}

/// The module as it ships: the release build (fat LTO, stripped), where an
/// optimiser can remove a wipe that the debug build keeps. `make test`
/// builds it before running the tests.
pub fn release_module_path() -> PathBuf {
    let path = target_dir()
        .parent()
        .unwrap()
        .join("release/libpam_totp.so");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --release -p pam_module` first (make test does)",
        path.display()
    );
    path
}

pub fn totpctl_path() -> PathBuf {
    let path = target_dir().join("totpctl");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first (make test does)",
        path.display()
    );
    path
}

/// One of the test modules that pam_wrapper ships (pam_matrix.so, pam_set_items.so, ...).
pub fn pam_wrapper_module(name: &str) -> PathBuf {
    let arch = Command::new("dpkg-architecture")
        .arg("-qDEB_HOST_MULTIARCH")
        .output();
    let triplet = arch
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|t| !t.is_empty());
    let path = PathBuf::from(format!(
        "/usr/lib/{}/pam_wrapper/{name}",
        triplet.as_deref().unwrap_or("x86_64-linux-gnu")
    ));
    assert!(
        path.exists(),
        "{} is missing: apt-get install libpam-wrapper",
        path.display()
    );
    path
}

pub fn require_tool(tool: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "{tool} is not installed: apt-get install {package}"
    );
}

/// A private directory tree for one test: config, records, state, PAM services.
pub struct Sandbox {
    pub root: PathBuf,
    pub users_dir: PathBuf,
    pub state_dir: PathBuf,
    pub service_dir: PathBuf,
    pub config: PathBuf,
}

impl Sandbox {
    pub fn new(name: &str) -> Self {
        let root = std::env::temp_dir().join(format!("pam_totp-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let sandbox = Self {
            users_dir: root.join("users"),
            state_dir: root.join("state"),
            service_dir: root.join("pam.d"),
            config: root.join("config.toml"),
            root,
        };
        // Records and state are root-only, as installed; the rest is readable so a
        // test can also run the module as an unprivileged caller.
        for (dir, mode) in [
            (&sandbox.root, 0o755),
            (&sandbox.users_dir, 0o700),
            (&sandbox.state_dir, 0o700),
            (&sandbox.service_dir, 0o755),
        ] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        // pam_wrapper wants an `other` service, or libpam logs an error for its absence.
        std::fs::write(
            sandbox.service_dir.join("other"),
            "auth required pam_deny.so\n",
        )
        .unwrap();
        sandbox.write_config("");
        sandbox
    }

    /// Write config.toml: the sandbox paths, no backoff (tests measure results,
    /// not delays), then `extra` tables.
    pub fn write_config(&self, extra: &str) {
        let mut text = format!(
            "[paths]\nusers_dir = \"{}\"\nstate_dir = \"{}\"\npam_dir = \"{}\"\n",
            self.users_dir.display(),
            self.state_dir.display(),
            self.service_dir.display()
        );
        if !extra.contains("[throttle]") {
            text.push_str("[throttle]\nbackoff_seconds = 0\nbackoff_max_seconds = 0\n");
        }
        text.push_str(extra);
        std::fs::write(&self.config, text).unwrap();
        std::fs::set_permissions(&self.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    /// A service whose auth stack is the module (as in the pam-auth-update
    /// profile) followed by pam_permit, so PAM_IGNORE lets the login through.
    pub fn service(&self, name: &str, module_args: &str) {
        let stack = format!(
            "auth [success=ok ignore=ignore default=die] {} config={} {module_args}\nauth required pam_permit.so\n",
            module_path().display(),
            self.config.display()
        );
        self.raw_service(name, &stack);
    }

    /// A service file with any stack; `{module}` and `{config}` are filled in.
    pub fn raw_service(&self, name: &str, stack: &str) {
        let mut text = stack
            .replace("{module}", &module_path().display().to_string())
            .replace("{config}", &self.config.display().to_string());
        for (key, module) in [
            ("{pam_matrix}", "pam_matrix.so"),
            ("{set_items}", "pam_set_items.so"),
        ] {
            if text.contains(key) {
                text = text.replace(key, &pam_wrapper_module(module).display().to_string());
            }
        }
        std::fs::write(self.service_dir.join(name), text).unwrap();
    }

    pub fn record_path(&self, user: &str) -> PathBuf {
        self.users_dir.join(format!("{user}.toml"))
    }

    pub fn state_path(&self, user: &str) -> PathBuf {
        self.state_dir.join(format!("{user}.state"))
    }

    /// The smallest valid record, written by hand as an admin or a test may.
    pub fn write_record(
        &self,
        user: &str,
        secret: &str,
        algorithm: &str,
        digits: u8,
        period: u64,
        status: &str,
    ) {
        let text = format!(
            "version = 1\nstatus = \"{status}\"\nsecret = \"{secret}\"\nalgorithm = \"{algorithm}\"\ndigits = {digits}\nperiod = {period}\n"
        );
        self.write_record_text(user, &text);
    }

    pub fn write_record_text(&self, user: &str, text: &str) {
        let path = self.record_path(user);
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// An active HOTP record (no period), written by hand, and the state an
    /// enrollment writes with it: the next counter is 0. (Without a state
    /// the counter is unknown and every code is refused.)
    pub fn enroll_hotp(&self, user: &str) {
        self.write_record_text(
            user,
            &format!(
                "version = 1\nstatus = \"active\"\ntype = \"hotp\"\nsecret = \"{SECRET}\"\nalgorithm = \"SHA1\"\ndigits = 6\n"
            ),
        );
        self.write_state_text(user, "version = 1\nhotp_next = 0\n");
    }

    /// Ten fresh recovery codes added to `user`'s record (the hashes, as
    /// `totpctl` keeps them); returns the codes.
    pub fn add_recovery_codes(&self, user: &str) -> Vec<String> {
        let set = totp_core::recovery::generate().unwrap();
        let mut text = std::fs::read_to_string(self.record_path(user)).unwrap();
        for h in &set.hashes {
            text.push_str(&format!(
                "\n[[recovery]]\nid = {}\nsalt = \"{}\"\nhash = \"{}\"\n",
                h.id, h.salt, h.hash
            ));
        }
        self.write_record_text(user, &text);
        set.codes.iter().map(|c| c.to_string()).collect()
    }

    /// A state file written by hand, in the TOML of earlier releases (which
    /// the module still reads, and converts at its first write).
    pub fn write_state_text(&self, user: &str, text: &str) {
        let path = self.state_path(user);
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// The login state as the module left it (either format), if it parses.
    pub fn read_state(&self, user: &str) -> Option<totp_core::state::LoginState> {
        let text = std::fs::read_to_string(self.state_path(user)).ok()?;
        totp_core::state::LoginState::parse(&text).ok()
    }

    pub fn enroll(&self, user: &str) {
        self.write_record(user, SECRET, "SHA1", 6, 30, "active");
    }

    /// Run the built totpctl on this sandbox's config, in its directory,
    /// with `stdin` as its standard input.
    pub fn totpctl(&self, args: &[&str], stdin: &[u8]) -> PamRun {
        let mut cmd = Command::new(totpctl_path());
        cmd.current_dir(&self.root)
            .arg("--config")
            .arg(&self.config)
            .args(args);
        run_with_input(&mut cmd, stdin)
    }

    /// Write `bytes` to `name` in the sandbox, mode 0600 (root's, as files
    /// holding seeds must be).
    pub fn private_file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.root.join(name);
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// Run pamtester `authenticate` through pam_wrapper with `input` on stdin.
    pub fn pamtester(&self, service: &str, user: &str, input: &[u8], items: &[&str]) -> PamRun {
        let mut cmd = self.pamtester_command(service, user, items);
        run_with_input(&mut cmd, input)
    }

    pub fn pamtester_command(&self, service: &str, user: &str, items: &[&str]) -> Command {
        let mut cmd = Command::new("pamtester");
        cmd.env("PAM_WRAPPER", "1")
            .env("PAM_WRAPPER_SERVICE_DIR", &self.service_dir)
            .env("PAM_WRAPPER_DEBUGLEVEL", "2")
            .env("LD_PRELOAD", "libpam_wrapper.so");
        for item in items {
            cmd.arg("-I").arg(item);
        }
        cmd.arg(service).arg(user).arg("authenticate");
        cmd
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// What one pamtester run produced.
#[derive(Debug)]
pub struct PamRun {
    pub success: bool,
    /// The exit code, or None if a signal ended the process.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl PamRun {
    /// The pam_syslog lines written by pam_totp (captured by pam_wrapper).
    pub fn log_lines(&self) -> Vec<String> {
        self.stderr
            .lines()
            .filter_map(|l| l.split_once("SYSLOG(").map(|(_, rest)| rest))
            .filter_map(|rest| rest.split_once("): ").map(|(_, msg)| msg.to_string()))
            .filter(|msg| {
                msg.contains("user=")
                    || msg.starts_with("result=")
                    || msg.starts_with("effective")
                    || msg.starts_with("arguments")
            })
            .collect()
    }

    /// The single outcome line; fails the test unless there is exactly one.
    pub fn outcome(&self) -> String {
        let lines: Vec<String> = self
            .log_lines()
            .into_iter()
            .filter(|l| l.contains("result="))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected exactly one outcome line, got {lines:?}\nstderr:\n{}",
            self.stderr
        );
        lines[0].clone()
    }

    /// Assert the result and the reason in the outcome line.
    pub fn expect(&self, success: bool, result: &str, reason: &str) {
        let line = self.outcome();
        assert_eq!(
            self.success, success,
            "pamtester success={} for line {line}\nstdout: {}\nstderr: {}",
            self.success, self.stdout, self.stderr
        );
        assert!(
            line.contains(&format!("result={result} ")),
            "want result={result}, got: {line}"
        );
        assert!(
            line.contains(reason),
            "want reason containing {reason:?}, got: {line}"
        );
    }

    /// Everything the user was shown (prompts, info and error messages).
    pub fn shown(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// One run at a time per test process. pam_wrapper copies the services into
/// one of 62 directories /tmp/pam.X, and two processes starting together can
/// pick the same one, so that one runs the other's stack; test threads must
/// not start PAM processes together.
static PAM_RUNS: Mutex<()> = Mutex::new(());

/// Hold this while starting a PAM process by hand (not through
/// [`run_with_input`]) until it is past pam_start; see [`PAM_RUNS`].
pub fn pam_start_guard() -> std::sync::MutexGuard<'static, ()> {
    PAM_RUNS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run `cmd` with `input` on stdin and collect what it printed.
pub fn run_with_input(cmd: &mut Command, input: &[u8]) -> PamRun {
    run_timed(cmd, input).0
}

/// [`run_with_input`], and how long the run took (from its start, not
/// counting the wait for another test's run).
pub fn run_timed(cmd: &mut Command, input: &[u8]) -> (PamRun, std::time::Duration) {
    let _one_at_a_time = pam_start_guard();
    let start = std::time::Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pamtester is not installed: apt-get install pamtester libpam-wrapper");
    {
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(input);
    }
    let out = child.wait_with_output().unwrap();
    let run = PamRun {
        success: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    (run, start.elapsed())
}

/// A code from oathtool, the reference implementation, at `offset` seconds from now.
pub fn oathtool(secret: &str, algorithm: &str, digits: u8, period: u64, offset: i64) -> String {
    let mut cmd = Command::new("oathtool");
    cmd.arg(format!("--totp={}", algorithm.to_ascii_lowercase()))
        .arg(format!("--digits={digits}"))
        .arg(format!("--time-step-size={period}s"))
        .arg("--base32");
    if offset != 0 {
        cmd.arg(format!(
            "--now={} seconds",
            if offset > 0 {
                format!("+{offset}")
            } else {
                offset.to_string()
            }
        ));
    }
    run_oathtool(cmd.arg(secret))
}

/// The HOTP code for `counter`, from oathtool (`--hotp -c N`).
pub fn oathtool_hotp(secret: &str, counter: u64) -> String {
    run_oathtool(
        Command::new("oathtool")
            .args(["--hotp", "--base32", "-c"])
            .arg(counter.to_string())
            .arg(secret),
    )
}

fn run_oathtool(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .expect("oathtool is not installed: apt-get install oathtool");
    assert!(
        out.status.success(),
        "oathtool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `n` pamtester logins of `user` with one `code`, as close to at once as
/// possible: each is started and waits at its code prompt (started one at a
/// time: pam_wrapper's start-up must not run many at once, see
/// [`pam_start_guard`]), then all are answered together.
pub fn race_logins(
    sb: &Sandbox,
    service: &str,
    user: &str,
    code: &str,
    n: usize,
) -> Vec<std::process::Output> {
    race_logins_on(&[sb], service, user, code, n)
}

/// [`race_logins`] spread round-robin over several hosts (sandboxes).
pub fn race_logins_on(
    hosts: &[&Sandbox],
    service: &str,
    user: &str,
    code: &str,
    n: usize,
) -> Vec<std::process::Output> {
    use std::io::Read;
    let starting = pam_start_guard();
    let mut children: Vec<_> = (0..n)
        .map(|i| {
            let mut child = hosts[i % hosts.len()]
                .pamtester_command(service, user, &[])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let stderr = child.stderr.as_mut().unwrap();
            let mut seen = Vec::new();
            let mut byte = [0u8; 1];
            while !seen.ends_with(b"code: ") {
                assert_eq!(stderr.read(&mut byte).unwrap(), 1, "no prompt: {seen:?}");
                seen.push(byte[0]);
            }
            child
        })
        .collect();
    drop(starting);
    for child in &mut children {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(format!("{code}\n").as_bytes()).unwrap();
    }
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

pub fn code_now(secret: &str) -> String {
    oathtool(secret, "SHA1", 6, 30, 0)
}

/// A 6-digit code that is valid at no step of the ±1 window around now.
pub fn wrong_code(secret: &str) -> String {
    let window: Vec<String> = [-60, -30, 0, 30, 60]
        .iter()
        .map(|o| oathtool(secret, "SHA1", 6, 30, *o))
        .collect();
    (0..10)
        .map(|d| d.to_string().repeat(6))
        .find(|c| !window.contains(c))
        .unwrap()
}

static ACCOUNTS: Mutex<()> = Mutex::new(());

/// Create a system group if missing.
pub fn ensure_group(name: &str) {
    let _guard = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    if Command::new("getent")
        .args(["group", name])
        .output()
        .unwrap()
        .status
        .success()
    {
        return;
    }
    let status = Command::new("groupadd")
        .args(["--system", name])
        .status()
        .unwrap();
    assert!(status.success(), "groupadd {name} failed");
}

/// Create a system user (no home, no login shell) in `groups`, if missing.
pub fn ensure_user(name: &str, groups: &[&str]) {
    for group in groups {
        ensure_group(group);
    }
    let _guard = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    if Command::new("getent")
        .args(["passwd", name])
        .output()
        .unwrap()
        .status
        .success()
    {
        return;
    }
    let mut cmd = Command::new("useradd");
    cmd.args([
        "--system",
        "--no-create-home",
        "--shell",
        "/usr/sbin/nologin",
    ]);
    if !groups.is_empty() {
        cmd.arg("--groups").arg(groups.join(","));
    }
    let status = cmd.arg(name).status().unwrap();
    assert!(status.success(), "useradd {name} failed");
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Today's date plus `days`, as YYYY-MM-DD (UTC).
pub fn date_from_today(days: i64) -> String {
    let out = Command::new("date")
        .args(["-u", "-d", &format!("{days} days"), "+%Y-%m-%d"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Point a command at the sandbox's PAM services through pam_wrapper, as
/// [`Sandbox::pamtester_command`] does, so pam_syslog lines land on stderr.
pub fn pam_wrapped<'a>(cmd: &'a mut Command, sb: &Sandbox) -> &'a mut Command {
    cmd.env("PAM_WRAPPER", "1")
        .env("PAM_WRAPPER_SERVICE_DIR", &sb.service_dir)
        .env("PAM_WRAPPER_DEBUGLEVEL", "2")
        .env("LD_PRELOAD", "libpam_wrapper.so")
}

/// Compile `tests/harness/<name>.c` against libpam into `dir`.
pub fn build_c_harness(name: &str, dir: &Path) -> PathBuf {
    let bin = dir.join(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("harness/{name}.c"));
    let out = Command::new("cc")
        // -rdynamic: a harness may define libc functions (pam_loop's free())
        // that must interpose on the module's calls.
        .args(["-O2", "-Wall", "-Werror", "-rdynamic", "-o"])
        .arg(&bin)
        .arg(&src)
        .arg("-lpam")
        .output()
        .expect("a C compiler is needed for the test harness");
    assert!(
        out.status.success(),
        "cc {} failed (apt-get install libpam0g-dev): {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

/// Compile `tests/harness/<name>.c` into a shared library in `dir`, for
/// LD_PRELOAD.
pub fn build_c_preload(name: &str, dir: &Path) -> PathBuf {
    let lib = dir.join(format!("{name}.so"));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("harness/{name}.c"));
    let out = Command::new("cc")
        .args(["-O2", "-Wall", "-Werror", "-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .arg("-ldl")
        .output()
        .expect("a C compiler is needed for the test harness");
    assert!(
        out.status.success(),
        "cc {} failed: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    lib
}

/// Everything observable about a directory tree, for "nothing changed" checks:
/// per path (relative to `root`), the type, mode, owner, link count, size,
/// modification time and the contents (files) or target (symlinks).
/// Symlinks are recorded, never followed.
pub fn snapshot(root: &Path) -> std::collections::BTreeMap<String, String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let kind = meta.file_type();
        let what = if kind.is_symlink() {
            format!("link -> {}", std::fs::read_link(&path).unwrap().display())
        } else if kind.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            entries.sort();
            stack.extend(entries);
            "dir".to_string()
        } else {
            let data = std::fs::read(&path).unwrap();
            format!("file {:?}", String::from_utf8_lossy(&data))
        };
        out.insert(
            rel,
            format!(
                "{what} mode={:o} uid={} nlink={} size={} mtime={}.{}",
                meta.mode(),
                meta.uid(),
                meta.nlink(),
                meta.size(),
                meta.mtime(),
                meta.mtime_nsec()
            ),
        );
    }
    out
}

/// The paths whose entries differ between two snapshots.
pub fn snapshot_diff(
    before: &std::collections::BTreeMap<String, String>,
    after: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect()
}

/// Remove the copies of this sandbox's service directory that pam_wrapper
/// left in /tmp (`/tmp/pam.X`, one character of name space). pam_wrapper
/// removes its copy when the process exits normally, but not when the process
/// is killed, nor under valgrind; stale copies would use up the names and
/// break every later pam_wrapper run on the machine.
pub fn remove_pam_wrapper_copies(sb: &Sandbox) {
    let marker = sb.root.display().to_string();
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with("pam.") || name.len() > 6 {
            continue;
        }
        let ours = std::fs::read_dir(entry.path())
            .into_iter()
            .flatten()
            .flatten()
            .any(|f| std::fs::read_to_string(f.path()).is_ok_and(|t| t.contains(&marker)));
        if ours {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A system user with a real password, for stacks with pam_unix.
pub fn user_with_password(name: &str, password: &str) {
    ensure_user(name, &[]);
    let mut cmd = Command::new("chpasswd");
    let run = run_with_input(&mut cmd, format!("{name}:{password}\n").as_bytes());
    assert!(run.success, "chpasswd failed: {}", run.stderr);
}

/// The `forward_pass` stack that pam_totp(8) documents: the first line only
/// splits the answer, the password is checked, and only then the code.
pub const FORWARD_PASS_STACK: &str = "auth required {module} config={config} forward_pass
auth requisite pam_unix.so use_first_pass
auth [success=ok default=die] {module} config={config}
";

/// A PAM conversation in process, for calling the login flow directly:
/// answers the prompt with `code` at `now` (the real clock if `None`),
/// remembers whether it was asked, and ignores everything else.
pub struct Answering {
    pub user: Vec<u8>,
    pub code: Vec<u8>,
    pub now: Option<u64>,
    pub prompted: bool,
}

impl totp_core::login::PamIo for Answering {
    fn user(&mut self) -> Result<Vec<u8>, String> {
        Ok(self.user.clone())
    }
    fn service(&self) -> Option<String> {
        Some("in-process".into())
    }
    fn rhost(&self) -> Option<String> {
        None
    }
    fn now(&mut self) -> u64 {
        self.now.unwrap_or_else(now)
    }
    fn prompt_hidden(&mut self, _: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
        self.prompted = true;
        Ok(zeroize::Zeroizing::new(self.code.clone()))
    }
    fn info(&mut self, _: &str) {}
    fn error(&mut self, _: &str) {}
    fn previous_token(&mut self) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        None
    }
    fn set_token(&mut self, _: &[u8]) -> Result<(), String> {
        Ok(())
    }
    fn keep_code(&mut self, _: &[u8]) -> Result<(), String> {
        Ok(())
    }
    fn take_kept_code(&mut self) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        None
    }
}

/// A preloaded stand-in for the syslog sink, for clients that empty their
/// environment before PAM runs (sshd's PAM "thread") or own the terminal
/// (su, login): it takes a file name from `PAM_TOTP_TEST_LOG` when it loads
/// and appends each `pam_syslog` line to that file, as `SYSLOG(prio): line`.
/// Only the sink is replaced; the module builds and sends its line exactly
/// as it does under a real syslog. Compiled into `dir` with `cc`.
pub fn syslog_shim(dir: &Path) -> PathBuf {
    let shim = dir.join("pam_syslog_to_file.so");
    let source = dir.join("pam_syslog_to_file.c");
    std::fs::write(&source, SYSLOG_SHIM).unwrap();
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-o"])
        .arg(&shim)
        .arg(&source)
        .output()
        .expect("a C compiler is needed for the log shim");
    assert!(
        out.status.success(),
        "compiling the log shim failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    shim
}

const SYSLOG_SHIM: &str = r#"
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static char log_path[4096];
__attribute__((constructor)) static void init(void) {
    const char *p = getenv("PAM_TOTP_TEST_LOG");
    if (p) snprintf(log_path, sizeof log_path, "%s", p);
}
void pam_vsyslog(const void *pamh, int prio, const char *fmt, va_list ap) {
    (void)pamh;
    if (!log_path[0]) return;
    char buf[8192];
    int n = snprintf(buf, sizeof buf, "SYSLOG(%d): ", prio);
    int m = vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
    if (m < 0) return;
    n += m;
    if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
    buf[n++] = '\n';
    int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) { if (write(fd, buf, n) < 0) {} close(fd); }
}
void pam_syslog(const void *pamh, int prio, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt); pam_vsyslog(pamh, prio, fmt, ap); va_end(ap);
}
"#;

/// One `auth` stack a `forward_pass` user may write: the stack of the PAM
/// service (`main`, with `{module}` and `{config}` to fill in), the files it
/// includes, and whether it checks the code.
pub struct ForwardStack {
    pub name: &'static str,
    pub main: String,
    pub extra: Vec<(&'static str, String)>,
    pub checks_code: bool,
}

/// google-authenticator's two lines, the documented three, and plausible
/// wrong variants. pam_unix runs with `nodelay`: its 2 s delay after a
/// failure only slows the tests.
pub fn forward_pass_stacks() -> Vec<ForwardStack> {
    let fwd = "auth required {module} config={config} forward_pass\n";
    let check = "auth required {module} config={config}\n";
    let two = format!("{fwd}auth required pam_unix.so use_first_pass nodelay\n");
    let three = format!("{fwd}auth requisite pam_unix.so use_first_pass nodelay\n{check}");
    vec![
        ForwardStack {
            name: "two lines (google-authenticator's)",
            main: two.clone(),
            extra: vec![],
            checks_code: false,
        },
        ForwardStack {
            name: "three lines (pam_totp(8))",
            main: three.clone(),
            extra: vec![],
            checks_code: true,
        },
        ForwardStack {
            name: "sufficient password line",
            main: format!("{fwd}auth sufficient pam_unix.so use_first_pass nodelay\n{check}"),
            extra: vec![],
            checks_code: false,
        },
        ForwardStack {
            name: "two lines in a substack",
            main: "auth substack {dir}/fwd-auth\n".into(),
            extra: vec![("fwd-auth", two.clone())],
            checks_code: false,
        },
        ForwardStack {
            name: "two lines included",
            main: "auth include {dir}/fwd-auth\n".into(),
            extra: vec![("fwd-auth", two)],
            checks_code: false,
        },
        ForwardStack {
            name: "three lines in a substack",
            main: "auth substack {dir}/fwd-auth\n".into(),
            extra: vec![("fwd-auth", three)],
            checks_code: true,
        },
    ]
}

impl Sandbox {
    /// Install `stack` as PAM service `service`, with `rest` (account,
    /// session, password lines) after its auth lines.
    /// `{dir}` is the sandbox's service directory: under pam_wrapper,
    /// libpam looks for an included name in /etc/pam.d, so the tests include
    /// by absolute path.
    pub fn forward_service(&self, service: &str, stack: &ForwardStack, rest: &str) {
        for (name, text) in &stack.extra {
            self.raw_service(name, text);
        }
        let main = stack
            .main
            .replace("{dir}", &self.service_dir.display().to_string());
        self.raw_service(service, &format!("{main}{rest}"));
    }
}

/// The reason pam_totp gives for a forward_pass stack that checks no code.
pub const FORWARD_PASS_REFUSED: &str = "so the code would never be checked; login denied. Fix: use the three-line stack of pam_totp(8)";

/// What an `expect` script printed (stdout, then stderr), without carriage
/// returns, once it has exited.
pub fn expect_output(mut child: std::process::Child) -> String {
    use std::io::Read;
    let mut output = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut output)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    child.wait().unwrap();
    output.push_str(&err);
    output.replace('\r', "")
}

/// A login account (home, /bin/sh) with `password`, for the real clients
/// (su, login, sudo); kept if it exists, its password set again.
pub fn login_account(name: &str, password: &str) {
    let known = Command::new("getent")
        .args(["passwd", name])
        .output()
        .unwrap()
        .status
        .success();
    if !known {
        let status = Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/sh", name])
            .status()
            .unwrap();
        assert!(status.success(), "useradd {name} failed");
    }
    let run = run_with_input(
        &mut Command::new("chpasswd"),
        format!("{name}:{password}\n").as_bytes(),
    );
    assert!(run.success, "chpasswd failed: {}", run.stderr);
}
