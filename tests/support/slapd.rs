//! A private OpenLDAP server for the tests of the LDAP store: Debian's real
//! `slapd`, run from a temporary directory under the target directory, on
//! 127.0.0.1 and free ports, with TLS from a CA made at test time.
//!
//! The server loads the schema and the access rules exactly as they ship
//! (`ldap/pam_totp.schema` and `ldap/acl.conf`, or their cn=config forms for
//! [`Slapd::start_cn_config`]), so the tests check what an admin installs.
//!
//! The directory, as seeded:
//!
//! ```text
//! dc=example,dc=org
//!   ou=pam_totp                  the store (base_dn): uid=USER entries
//!   ou=totp-hosts                cn=host-a, cn=host-b, cn=host-c: host binds
//!   ou=groups
//!     cn=totp-admins             groupOfNames: member cn=totp-admin
//!   cn=totp-admin                an admin bind
//!   cn=outsider                  a bind that is neither host nor admin
//!   cn=root                      the rootdn (bypasses every access rule)
//! ```
//!
//! Every bind's password is random and sits alone in a 0600 file (no
//! newline), as `bind_password_file` wants it. Nothing here talks LDAP
//! itself: the OpenLDAP command-line tools (`ldapsearch`, `ldapmodify`, ...)
//! do, through [`Slapd::ldap_cmd`].
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failure here is a test failure

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod otp;

/// The directory's suffix.
pub const SUFFIX: &str = "dc=example,dc=org";
/// The store: one `uid=USER` entry per user below it.
pub const BASE_DN: &str = "ou=pam_totp,dc=example,dc=org";
/// The hosts that are seeded, each with its own bind under `ou=totp-hosts`.
pub const HOSTS: [&str; 3] = ["host-a", "host-b", "host-c"];

const ROOT_DN: &str = "cn=root,dc=example,dc=org";
const ADMIN_DN: &str = "cn=totp-admin,dc=example,dc=org";
const OUTSIDER_DN: &str = "cn=outsider,dc=example,dc=org";

/// A DN to bind as, and the file that holds its password (mode 0600, the
/// password alone, no newline).
#[derive(Clone, Debug)]
pub struct Bind {
    pub dn: String,
    pub password_file: PathBuf,
}

/// The outcome of one LDAP command-line tool: its exit status is the LDAP
/// result code (0 success, 16 noSuchAttribute, 32 noSuchObject, 50
/// insufficientAccessRights, ...; -1 when it never got an answer).
#[derive(Debug)]
pub struct LdapRun {
    pub rc: i32,
    pub stdout: String,
    pub stderr: String,
}

/// One entry as `ldapsearch` printed it. Attribute names are lowercased;
/// values are raw bytes (base64 values are decoded).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    pub attrs: BTreeMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    /// The values of an attribute, as text.
    pub fn values(&self, attr: &str) -> Vec<String> {
        self.attrs
            .get(&attr.to_ascii_lowercase())
            .map(|v| {
                v.iter()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first value of an attribute, as text.
    pub fn get(&self, attr: &str) -> Option<String> {
        self.values(attr).into_iter().next()
    }
}

/// The result of a search: the result code and the entries returned.
#[derive(Debug)]
pub struct Search {
    pub rc: i32,
    pub entries: Vec<Entry>,
    pub stderr: String,
}

/// How the server is configured: a slapd.conf file, or a cn=config directory.
#[derive(Clone, Debug)]
enum Config {
    File(PathBuf),
    Directory(PathBuf),
}

/// Mirror mode: this server's id, and the other server's ldaps port.
#[derive(Clone, Copy, Debug)]
struct Mirror {
    server_id: u8,
    peer_ldaps_port: u16,
}

/// A running private slapd. Dropping it stops the server (by its PID) and,
/// unless the test failed, removes its directory.
pub struct Slapd {
    /// Shared by the two servers of a mirror pair: CA, certificate, passwords.
    shared: PathBuf,
    /// This server's own: config, database, ldapi socket, stderr.
    dir: PathBuf,
    /// Removed on drop (the pair's first server owns the shared directory).
    owns: Option<PathBuf>,
    config: Config,
    ldap_port: u16,
    ldaps_port: u16,
    child: Option<Child>,
}

impl Slapd {
    /// A server configured with slapd.conf, including the shipped
    /// `ldap/pam_totp.schema` and `ldap/acl.conf`, seeded and answering.
    pub fn start(name: &str) -> Slapd {
        Self::start_seeded(name, Mode::File)
    }

    /// A single server of `mode` in a fresh directory, seeded for its mode.
    fn start_seeded(name: &str, mode: Mode) -> Slapd {
        let top = fresh_dir(name);
        make_shared(&top);
        let mut slapd = Self::launch(&top, &top.join("a"), None, mode);
        slapd.owns = Some(top);
        if matches!(mode, Mode::Otp | Mode::OtpDurable | Mode::OtpWrongOrder) {
            slapd.seed_directory_checked();
        } else {
            slapd.seed();
        }
        slapd
    }

    /// The same as [`Slapd::start`], but durable: without `dbnosync`, so
    /// every write is synced to disk before slapd answers, as on a real
    /// deployment. For benchmarks of write latency; tests want the fast one.
    pub fn start_durable(name: &str) -> Slapd {
        Self::start_seeded(name, Mode::DurableFile)
    }

    /// A server configured with cn=config: a bootstrap config converted by
    /// `slaptest`, to which the shipped `ldap/pam_totp.ldif` is added and
    /// `ldap/acl.ldif` applied over LDAP, as an admin would. Seeded and
    /// answering. [`Slapd::config_admin`] binds to cn=config.
    pub fn start_cn_config(name: &str) -> Slapd {
        let slapd = Self::start_cn_config_with(name, "acl.ldif");
        slapd.seed();
        slapd
    }

    /// A cn=config server with the shipped schema added and `rules` (a
    /// shipped LDIF) applied over LDAP, not seeded.
    fn start_cn_config_with(name: &str, rules: &str) -> Slapd {
        let top = fresh_dir(name);
        make_shared(&top);
        let mut slapd = Self::launch(&top, &top.join("a"), None, Mode::Directory);
        slapd.owns = Some(top);
        let admin = slapd.config_admin();
        for (tool, file) in [("ldapadd", "pam_totp.ldif"), ("ldapmodify", rules)] {
            let path = shipped(file);
            let run = ldap_run(slapd.ldap_cmd(tool, Some(&admin)).arg("-f").arg(&path), "");
            assert_eq!(
                run.rc,
                0,
                "{tool} -f {} on cn=config failed: {}",
                path.display(),
                run.stderr
            );
        }
        slapd
    }

    /// Two servers in mirror mode (syncprov plus syncrepl, serverID 1 and 2,
    /// `mirrormode on`), each replicating the other over ldaps. Both are
    /// seeded (written to the first, replicated to the second) and share the
    /// CA and the bind passwords.
    pub fn start_mirror_pair(name: &str) -> (Slapd, Slapd) {
        let top = fresh_dir(name);
        make_shared(&top);
        let port_a = free_port();
        let port_b = free_port();
        let mut a = Self::launch(
            &top,
            &top.join("a"),
            Some((
                Mirror {
                    server_id: 1,
                    peer_ldaps_port: port_b,
                },
                port_a,
            )),
            Mode::File,
        );
        a.owns = Some(top.clone());
        let b = Self::launch(
            &top,
            &top.join("b"),
            Some((
                Mirror {
                    server_id: 2,
                    peer_ldaps_port: port_a,
                },
                port_b,
            )),
            Mode::File,
        );
        a.seed();
        let admins = format!("cn=totp-admins,ou=groups,{SUFFIX}");
        let deadline = Instant::now() + Duration::from_secs(15);
        while b
            .search(Some(&b.root()), &admins, "(objectClass=*)", &[])
            .rc
            != 0
        {
            assert!(
                Instant::now() < deadline,
                "the seed did not replicate to the second server"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        (a, b)
    }

    /// `ldap://127.0.0.1:PORT` (use it with StartTLS).
    pub fn starttls_uri(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.ldap_port)
    }

    /// `ldaps://127.0.0.1:PORT`.
    pub fn ldaps_uri(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }

    /// `ldapi://...`: the server's local socket (no TLS; the one plain URI
    /// the store accepts).
    pub fn ldapi_uri(&self) -> String {
        ldapi_uri_of(&self.ldapi_path())
    }

    /// The socket: in the server's directory, unless that path is too long
    /// for a Unix socket (108 bytes), then in the temporary directory.
    fn ldapi_path(&self) -> PathBuf {
        let path = self.dir.join("ldapi");
        if path.as_os_str().len() < 100 {
            return path;
        }
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.dir.hash(&mut hasher);
        std::env::temp_dir().join(format!("pam_totp-slapd-{:016x}", hasher.finish()))
    }

    /// The port of [`Slapd::ldaps_uri`].
    pub fn ldaps_port(&self) -> u16 {
        self.ldaps_port
    }

    /// The port of [`Slapd::starttls_uri`].
    pub fn ldap_port(&self) -> u16 {
        self.ldap_port
    }

    /// The CA that signed the server's certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.shared.join("ca.crt")
    }

    /// A private directory for the test's own files (configs, records), kept
    /// with the server's and removed with it.
    pub fn work_dir(&self) -> PathBuf {
        let dir = self.shared.join("work");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The store's base DN: `ou=pam_totp,dc=example,dc=org`.
    pub fn base_dn(&self) -> &'static str {
        BASE_DN
    }

    /// The DN of a user's entry.
    pub fn user_dn(&self, user: &str) -> String {
        format!("uid={user},{BASE_DN}")
    }

    /// The bind of a seeded host: "host-a", "host-b" or "host-c".
    pub fn host(&self, name: &str) -> Bind {
        assert!(HOSTS.contains(&name), "no seeded host {name}");
        self.bind(&format!("cn={name},ou=totp-hosts,{SUFFIX}"), name)
    }

    /// The bind of `cn=totp-admin`, a member of `cn=totp-admins`.
    pub fn admin(&self) -> Bind {
        self.bind(ADMIN_DN, "totp-admin")
    }

    /// A bind that is neither a host nor an admin.
    pub fn outsider(&self) -> Bind {
        self.bind(OUTSIDER_DN, "outsider")
    }

    /// The rootdn: sees and writes everything, whatever the access rules say.
    pub fn root(&self) -> Bind {
        self.bind(ROOT_DN, "root")
    }

    /// `cn=config`'s rootdn ([`Slapd::start_cn_config`] only).
    pub fn config_admin(&self) -> Bind {
        self.bind("cn=config", "root")
    }

    fn bind(&self, dn: &str, file: &str) -> Bind {
        Bind {
            dn: dn.to_string(),
            password_file: self.shared.join(format!("{file}.pw")),
        }
    }

    /// An OpenLDAP tool (`ldapsearch`, `ldapmodify`, `ldapadd`, `ldapdelete`,
    /// `ldapwhoami`, ...) set up for this server: `-H` the ldaps URI, `-x`,
    /// the test CA, a 5 s connect timeout, and `-D`/`-y` when bound. The
    /// user's and the system's ldap.conf are not read.
    pub fn ldap_cmd(&self, tool: &str, bind: Option<&Bind>) -> Command {
        self.ldap_cmd_uri(tool, bind, &self.ldaps_uri())
    }

    /// The same over `ldap://` with StartTLS required (`-ZZ`).
    pub fn ldap_cmd_starttls(&self, tool: &str, bind: Option<&Bind>) -> Command {
        let mut cmd = self.ldap_cmd_uri(tool, bind, &self.starttls_uri());
        cmd.arg("-ZZ");
        cmd
    }

    /// The same against any URI (`ldapi_uri`, or a dead one for failover
    /// tests); add `-ZZ` for StartTLS.
    pub fn ldap_cmd_uri(&self, tool: &str, bind: Option<&Bind>, uri: &str) -> Command {
        let mut cmd = Command::new(tool);
        cmd.env("LDAPCONF", self.shared.join("ldap.conf"))
            .env("LDAPRC", "pam_totp-test-no-ldaprc")
            .env("LDAPTLS_CACERT", self.ca_file())
            .env("LDAPTLS_REQCERT", "demand")
            .args(["-H", uri, "-x", "-o", "nettimeout=5"]);
        if let Some(bind) = bind {
            cmd.arg("-D")
                .arg(&bind.dn)
                .arg("-y")
                .arg(&bind.password_file);
        }
        cmd
    }

    /// `ldapmodify` as `bind`, fed this LDIF (records with `changetype:`
    /// add, modify, delete or modrdn).
    pub fn modify(&self, bind: Option<&Bind>, ldif: &str) -> LdapRun {
        ldap_run(&mut self.ldap_cmd("ldapmodify", bind), ldif)
    }

    /// `ldapsearch -LLL` of the subtree at `base` as `bind`.
    pub fn search(&self, bind: Option<&Bind>, base: &str, filter: &str, attrs: &[&str]) -> Search {
        let run = ldap_run(
            self.ldap_cmd("ldapsearch", bind)
                .args(["-LLL", "-o", "ldif-wrap=no", "-b", base, filter])
                .args(attrs),
            "",
        );
        Search {
            rc: run.rc,
            entries: parse_ldif(&run.stdout),
            stderr: run.stderr,
        }
    }

    /// A user's entry as the rootdn sees it (all attributes), if it exists.
    pub fn user_entry(&self, user: &str) -> Option<Entry> {
        let found = self.search(
            Some(&self.root()),
            &self.user_dn(user),
            "(objectClass=*)",
            &[],
        );
        match found.rc {
            0 => found.entries.into_iter().next(),
            32 => None,
            rc => panic!("reading {user}'s entry failed ({rc}): {}", found.stderr),
        }
    }

    /// Add a minimal `totpUser` entry for `user` as the admin: uid, the
    /// enrollment record, and totpSerial 0 (no state attributes yet).
    pub fn add_user_entry(&self, user: &str, record_text: &str) {
        let ldif = format!(
            "dn: {}\nchangetype: add\nobjectClass: totpUser\nuid: {user}\ntotpSerial: 0\ntotpRecord:: {}\n",
            self.user_dn(user),
            base64_encode(record_text.as_bytes()),
        );
        let run = self.modify(Some(&self.admin()), &ldif);
        assert_eq!(run.rc, 0, "adding {user}'s entry failed: {}", run.stderr);
    }

    /// Add many users' entries in one `ldapadd` (as the admin, totpSerial 0),
    /// for tests that need a crowd.
    pub fn add_user_entries<'a>(&self, users: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let ldif: String = users
            .into_iter()
            .map(|(user, record)| {
                format!(
                    "dn: {}\nobjectClass: totpUser\nuid: {user}\ntotpSerial: 0\ntotpRecord:: {}\n\n",
                    self.user_dn(user),
                    base64_encode(record.as_bytes()),
                )
            })
            .collect();
        let run = ldap_run(&mut self.ldap_cmd("ldapadd", Some(&self.admin())), &ldif);
        assert_eq!(run.rc, 0, "adding the users failed: {}", run.stderr);
    }

    /// The PID of the running slapd.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("slapd is not running").id()
    }

    /// Stop the server cleanly (SIGTERM, then SIGKILL after 5 s). The data
    /// and the ports stay for [`Slapd::restart`].
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id().to_string();
        // A frozen slapd would not act on SIGTERM.
        let _ = Command::new("kill").args(["-CONT", &pid]).status();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kill the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start the server again (stopping it first if it runs): same config,
    /// same data, same ports.
    pub fn restart(&mut self) {
        self.stop();
        // The old listeners' ports may linger a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.spawn() {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(e) => {
                    assert!(Instant::now() < deadline, "slapd did not restart: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    /// Freeze the server (SIGSTOP): connections are accepted by the kernel
    /// and then nothing answers, as with a hung server.
    pub fn freeze(&self) {
        self.signal("STOP");
        // The stop takes effect as each thread next runs: wait until every
        // one is stopped, so that nothing sent after this is answered.
        let deadline = Instant::now() + Duration::from_secs(10);
        let tasks = PathBuf::from(format!("/proc/{}/task", self.pid()));
        loop {
            let states: Vec<String> = std::fs::read_dir(&tasks)
                .map(|dir| {
                    dir.filter_map(Result::ok)
                        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
                        .collect()
                })
                .unwrap_or_default();
            let stopped = |stat: &String| {
                stat.rsplit_once(") ")
                    .is_some_and(|(_, rest)| rest.starts_with('T') || rest.starts_with('t'))
            };
            if !states.is_empty() && states.iter().all(stopped) {
                return;
            }
            assert!(Instant::now() < deadline, "slapd did not stop: {states:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Let a frozen server run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// Write the config of a server in `dir` and start it, retrying with
    /// other ports if one was taken in between.
    fn launch(shared: &Path, dir: &Path, mirror: Option<(Mirror, u16)>, mode: Mode) -> Slapd {
        std::fs::create_dir_all(dir.join("db")).unwrap();
        let mut last = String::new();
        for _ in 0..5 {
            let ldaps_port = mirror.map_or_else(free_port, |(_, port)| port);
            let ldap_port = free_port();
            let config = match mode {
                Mode::File
                | Mode::DurableFile
                | Mode::Otp
                | Mode::OtpDurable
                | Mode::OtpWrongOrder => {
                    let path = dir.join("slapd.conf");
                    let durable = matches!(mode, Mode::DurableFile | Mode::OtpDurable);
                    let mut text = slapd_conf(shared, dir, mirror.map(|(m, _)| m), durable);
                    if matches!(mode, Mode::Otp | Mode::OtpDurable | Mode::OtpWrongOrder) {
                        let wrong = matches!(mode, Mode::OtpWrongOrder)
                            .then(|| dir.join("wrong-order.conf"));
                        text = otp::directory_checked_conf(&text, wrong.as_deref());
                    }
                    std::fs::write(&path, text).unwrap();
                    Config::File(path)
                }
                Mode::Directory => Config::Directory(cn_config(shared, dir)),
            };
            let mut slapd = Slapd {
                shared: shared.to_path_buf(),
                dir: dir.to_path_buf(),
                owns: None,
                config,
                ldap_port,
                ldaps_port,
                child: None,
            };
            match slapd.spawn() {
                Ok(child) => {
                    slapd.child = Some(child);
                    return slapd;
                }
                Err(e) => last = e,
            }
            // A mirror's ports are fixed in its peer's config: no retry.
            if mirror.is_some() {
                break;
            }
        }
        panic!("could not start slapd: {last}");
    }

    /// Start slapd in the foreground (`-d 0`) and wait until both TCP
    /// listeners accept.
    fn spawn(&self) -> Result<Child, String> {
        let stderr = self.dir.join("slapd.stderr");
        let mut cmd = Command::new("/usr/sbin/slapd");
        match &self.config {
            Config::File(path) => cmd.arg("-f").arg(path),
            Config::Directory(path) => cmd.arg("-F").arg(path),
        };
        let mut child = cmd
            .arg("-h")
            .arg(format!(
                "{}/ {}/ {}/",
                self.starttls_uri(),
                self.ldaps_uri(),
                self.ldapi_uri()
            ))
            .args(["-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("/usr/sbin/slapd is missing: apt-get install slapd (scripts/deps.sh test)");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if [self.ldap_port, self.ldaps_port].iter().all(|&port| {
                TcpStream::connect_timeout(
                    &SocketAddr::from(([127, 0, 0, 1], port)),
                    Duration::from_millis(100),
                )
                .is_ok()
            }) {
                return Ok(child);
            }
            if let Some(status) = child.try_wait().unwrap() {
                return Err(format!(
                    "slapd exited with {status}:\n{}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "slapd did not listen within 10 s:\n{}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Add the seed entries as the rootdn.
    fn seed(&self) {
        let mut ldif = format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
             dn: {BASE_DN}\nobjectClass: organizationalUnit\nou: pam_totp\n\n\
             dn: ou=totp-hosts,{SUFFIX}\nobjectClass: organizationalUnit\nou: totp-hosts\n\n\
             dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n"
        );
        for host in HOSTS {
            ldif += &format!(
                "dn: cn={host},ou=totp-hosts,{SUFFIX}\nobjectClass: applicationProcess\n\
                 objectClass: simpleSecurityObject\ncn: {host}\nuserPassword: {}\n\n",
                self.hash(host)
            );
        }
        for (dn, cn, file) in [
            (ADMIN_DN, "totp-admin", "totp-admin"),
            (OUTSIDER_DN, "outsider", "outsider"),
        ] {
            ldif += &format!(
                "dn: {dn}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n\
                 cn: {cn}\nuserPassword: {}\n\n",
                self.hash(file)
            );
        }
        ldif += &format!(
            "dn: cn=totp-admins,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\n\
             cn: totp-admins\nmember: {ADMIN_DN}\n"
        );
        let run = ldap_run(&mut self.ldap_cmd("ldapadd", Some(&self.root())), &ldif);
        assert_eq!(run.rc, 0, "seeding the directory failed: {}", run.stderr);
    }

    /// The `{SSHA}` hash of one of the password files.
    fn hash(&self, file: &str) -> String {
        password_hash(&self.shared.join(format!("{file}.pw")))
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
        if let Some(top) = &self.owns {
            if !std::thread::panicking() {
                let _ = std::fs::remove_dir_all(top);
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Mode {
    File,
    /// slapd.conf with the otp and ppolicy overlays and `directory.conf`.
    Otp,
    /// The same with ppolicy before otp (a copy of `directory.conf`).
    OtpWrongOrder,
    /// [`Mode::Otp`] without `dbnosync`.
    OtpDurable,
    /// slapd.conf without `dbnosync`.
    DurableFile,
    Directory,
}

/// Run an LDAP tool with `input` on stdin.
pub fn ldap_run(cmd: &mut Command, input: &str) -> LdapRun {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the OpenLDAP tools are missing: apt-get install ldap-utils");
    // From another thread: with a long LDIF the tool answers (on stdout)
    // before it has read all of it.
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let writer = std::thread::spawn(move || {
        // A tool that exits early (a bad bind) closes its stdin: not our error.
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    LdapRun {
        rc: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Parse `ldapsearch -LLL -o ldif-wrap=no` output.
pub fn parse_ldif(text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    for block in text.split("\n\n") {
        let mut entry = Entry::default();
        for line in block
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let Some((attr, rest)) = line.split_once(':') else {
                continue;
            };
            let value = if let Some(b64) = rest.strip_prefix(':') {
                base64_decode(b64.trim())
            } else {
                rest.strip_prefix(' ').unwrap_or(rest).as_bytes().to_vec()
            };
            if attr == "dn" {
                entry.dn = String::from_utf8_lossy(&value).into_owned();
            } else {
                entry
                    .attrs
                    .entry(attr.to_ascii_lowercase())
                    .or_default()
                    .push(value);
            }
        }
        if !entry.dn.is_empty() {
            entries.push(entry);
        }
    }
    entries
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (LDIF's `attr:: value`): the store's own.
pub fn base64_encode(data: &[u8]) -> String {
    totp_ldap::base64_encode(data)
}

pub fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = B64
            .iter()
            .position(|&b| b == c)
            .unwrap_or_else(|| panic!("bad base64 {text:?}"));
        acc = acc << 6 | u32::try_from(v).unwrap();
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from(acc >> bits & 0xff).unwrap());
        }
    }
    out
}

/// The repository's `ldap/` file, as it ships.
pub fn shipped(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("ldap")
        .join(file)
}

/// A fresh, private directory for one test's servers.
fn fresh_dir(name: &str) -> PathBuf {
    let top = crate::target_dir()
        .join("slapd")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&top);
    std::fs::create_dir_all(&top).unwrap();
    std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o700)).unwrap();
    top
}

/// What the servers of one test share: a CA and a server certificate for
/// 127.0.0.1 and localhost, the bind passwords, and an ldap.conf for the tools.
fn make_shared(top: &Path) {
    make_tls(top);
    for file in ["root", "totp-admin", "outsider"].into_iter().chain(HOSTS) {
        write_private(&top.join(format!("{file}.pw")), &random_password());
    }
    std::fs::write(
        top.join("ldap.conf"),
        format!(
            "TLS_CACERT {}\nTLS_REQCERT demand\n",
            top.join("ca.crt").display()
        ),
    )
    .unwrap();
}

/// A CA and a server certificate signed by it (P-256, two days), made with
/// the openssl command-line tool.
fn make_tls(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is missing: apt-get install openssl");
        assert!(
            out.status.success(),
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &[
                "req", "-x509", "-days", "2", "-keyout", "ca.key", "-out", "ca.crt",
            ][..],
            &ec,
            &[
                "-subj",
                "/CN=pam_totp test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-keyout", "server.key", "-out", "server.csr"][..],
            &ec,
            &["-subj", "/CN=localhost"],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-days",
        "2",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-extfile",
        "server.ext",
        "-out",
        "server.crt",
    ]);
}

/// slapd.conf for a server in `dir`, with the shipped schema and access
/// rules; `durable` leaves out `dbnosync`.
fn slapd_conf(shared: &Path, dir: &Path, mirror: Option<Mirror>, durable: bool) -> String {
    let mut conf = String::from(
        "include /etc/ldap/schema/core.schema\n\
         include /etc/ldap/schema/cosine.schema\n\
         include /etc/ldap/schema/inetorgperson.schema\n",
    );
    conf += &format!(
        "include {}\npidfile {dir}/slapd.pid\nargsfile {dir}/slapd.args\nloglevel none\n\
         modulepath /usr/lib/ldap\nmoduleload back_mdb\n\
         TLSCACertificateFile {shared}/ca.crt\n\
         TLSCertificateFile {shared}/server.crt\n\
         TLSCertificateKeyFile {shared}/server.key\n",
        shipped("pam_totp.schema").display(),
        dir = dir.display(),
        shared = shared.display(),
    );
    if let Some(mirror) = mirror {
        conf += &format!("moduleload syncprov\nserverID {}\n", mirror.server_id);
    }
    // dbnosync: a test database needs no fsync per write (it made a test
    // adding 1,200 entries three times slower); a benchmark of a real
    // deployment's write latency wants it off (Slapd::start_durable).
    conf += &format!(
        "\ndatabase mdb\nsuffix \"{SUFFIX}\"\nrootdn \"{ROOT_DN}\"\nrootpw {}\n\
         directory {}\nmaxsize 1073741824\n{}include {}\n",
        password_hash(&shared.join("root.pw")),
        dir.join("db").display(),
        if durable { "" } else { "dbnosync\n" },
        shipped("acl.conf").display(),
    );
    if let Some(mirror) = mirror {
        conf += &format!(
            "index entryCSN,entryUUID eq\n\
             syncrepl rid=00{id} provider=ldaps://127.0.0.1:{port} bindmethod=simple\n \
             binddn=\"{ROOT_DN}\" credentials={password}\n \
             searchbase=\"{SUFFIX}\" type=refreshAndPersist retry=\"1 +\" timeout=2\n \
             tls_cacert={shared}/ca.crt tls_reqcert=demand\n\
             mirrormode on\noverlay syncprov\n",
            id = mirror.server_id,
            port = mirror.peer_ldaps_port,
            password = std::fs::read_to_string(shared.join("root.pw")).unwrap(),
            shared = shared.display(),
        );
    }
    conf
}

/// A cn=config directory made by `slapadd -n0` from a bootstrap LDIF (as
/// Debian's package makes its own): the stock schemas, the TLS files, a
/// cn=config rootdn, and the database as `olcDatabase={1}mdb`; neither our
/// schema nor our access rules, which the caller adds over LDAP.
fn cn_config(shared: &Path, dir: &Path) -> PathBuf {
    let target = dir.join("slapd.d");
    if target.exists() {
        return target; // a retry with other ports: the config does not name them
    }
    let root_hash = password_hash(&shared.join("root.pw"));
    let ldif = format!(
        "dn: cn=config\nobjectClass: olcGlobal\ncn: config\n\
         olcPidFile: {dir}/slapd.pid\nolcArgsFile: {dir}/slapd.args\nolcLogLevel: none\n\
         olcTLSCACertificateFile: {shared}/ca.crt\n\
         olcTLSCertificateFile: {shared}/server.crt\n\
         olcTLSCertificateKeyFile: {shared}/server.key\n\n\
         dn: cn=module{{0}},cn=config\nobjectClass: olcModuleList\ncn: module{{0}}\n\
         olcModulePath: /usr/lib/ldap\nolcModuleLoad: back_mdb\n\n\
         dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n\
         include: file:///etc/ldap/schema/core.ldif\n\n\
         include: file:///etc/ldap/schema/cosine.ldif\n\n\
         include: file:///etc/ldap/schema/inetorgperson.ldif\n\n\
         dn: olcDatabase={{-1}}frontend,cn=config\nobjectClass: olcDatabaseConfig\n\
         objectClass: olcFrontendConfig\nolcDatabase: {{-1}}frontend\n\n\
         dn: olcDatabase={{0}}config,cn=config\nobjectClass: olcDatabaseConfig\n\
         olcDatabase: {{0}}config\nolcRootDN: cn=config\nolcRootPW: {root_hash}\n\n\
         dn: olcDatabase={{1}}mdb,cn=config\nobjectClass: olcDatabaseConfig\n\
         objectClass: olcMdbConfig\nolcDatabase: {{1}}mdb\nolcSuffix: {SUFFIX}\n\
         olcRootDN: {ROOT_DN}\nolcRootPW: {root_hash}\nolcDbDirectory: {dir}/db\n\
         olcDbMaxSize: 1073741824\nolcDbNoSync: TRUE\n",
        dir = dir.display(),
        shared = shared.display(),
    );
    let bootstrap = dir.join("bootstrap.ldif");
    std::fs::write(&bootstrap, ldif).unwrap();
    std::fs::create_dir_all(&target).unwrap();
    let out = Command::new("/usr/sbin/slapadd")
        .arg("-n0")
        .arg("-F")
        .arg(&target)
        .arg("-l")
        .arg(&bootstrap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "slapadd of the cn=config bootstrap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    target
}

fn password_hash(file: &Path) -> String {
    let out = Command::new("/usr/sbin/slappasswd")
        .args(["-h", "{SSHA}", "-T"])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "slappasswd failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// 24 hex digits from the OS.
fn random_password() -> String {
    let mut bytes = [0u8; 12];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Create a file with mode 0600 from the start.
fn write_private(path: &Path, text: &str) {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `ldapi://` and the socket's path, percent-encoded.
pub fn ldapi_uri_of(path: &Path) -> String {
    let encoded: String = path
        .to_string_lossy()
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("ldapi://{encoded}")
}
