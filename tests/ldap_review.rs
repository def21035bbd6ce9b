//! Security review of the LDAP store (branch ldap-review): attacks that the
//! store does not withstand yet. Each test asserts the SAFE behaviour, so it
//! fails on main while the flaw is there.
//!
//! They drive `totp_ldap::LdapStore` and `totp_core::attempt` in-process
//! against the private slapd of `integration::slapd`, like two hosts of a
//! fleet would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::slapd::{base64_encode, ldapi_uri_of, Bind, Slapd, BASE_DN};
use integration::*;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use totp_core::answer::{self, Answer};
use totp_core::attempt::{attempt, Rules};
use totp_core::config::{LdapConfig, OtpConfig, Throttle};
use totp_core::login::{self, PamCode};
use totp_core::names::UserName;
use totp_core::otp::Generator;
use totp_core::record::UserRecord;
use totp_core::store::Store;
use totp_ldap::LdapStore;

const SECRET2: &str = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U";

fn record_text(secret: &str) -> String {
    format!(
        "version = 1\nstatus = \"active\"\nsecret = \"{secret}\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\n"
    )
}

fn cfg(bind: Option<&Bind>, uri: String, ca: PathBuf) -> LdapConfig {
    LdapConfig {
        uris: vec![uri],
        base_dn: BASE_DN.into(),
        bind_dn: bind.map(|b| b.dn.clone()).unwrap_or_default(),
        bind_password_file: bind.map(|b| b.password_file.clone()).unwrap_or_default(),
        ca_file: ca,
        starttls: true,
        timeout_ms: 1000,
        ..LdapConfig::default()
    }
}

/// The backend-agnostic store over `cfg`, as the module and totpctl get it.
fn store(cfg: &LdapConfig) -> Store {
    totp_core::store::set_ldap_opener(totp_ldap::open);
    let config = totp_core::config::Config {
        store: totp_core::config::StoreConfig {
            backend: totp_core::config::Backend::Ldap,
        },
        ldap: cfg.clone(),
        ..totp_core::config::Config::default()
    };
    Store::from_config(&config).unwrap()
}

fn code(record: &UserRecord, now: u64) -> Answer {
    let g = Generator::new(&record.secret, record.params);
    let text = g.code_at_step(record.params.step_at(now));
    answer::classify(text.as_bytes(), 6, false).unwrap()
}

fn percent_decode(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Read one BER-framed LDAPMessage (plain LDAP, as on ldapi).
fn read_message(s: &mut UnixStream) -> Option<Vec<u8>> {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).ok()?;
    let mut msg = head.to_vec();
    let len = if head[1] < 0x80 {
        head[1] as usize
    } else {
        let n = (head[1] & 0x7f) as usize;
        let mut l = vec![0u8; n];
        s.read_exact(&mut l).ok()?;
        msg.extend_from_slice(&l);
        l.iter().fold(0usize, |acc, b| acc << 8 | *b as usize)
    };
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    msg.extend_from_slice(&body);
    Some(msg)
}

/// The protocolOp tag of an LDAPMessage.
fn op_tag(msg: &[u8]) -> u8 {
    let mut i = 1;
    if msg[i] >= 0x80 {
        i += (msg[i] & 0x7f) as usize;
    }
    i += 1; // now at messageID tag
    let id_len = msg[i + 1] as usize;
    msg[i + 2 + id_len]
}

/// A flaky path to the directory: an ldapi proxy in front of slapd's socket
/// that drops connection `conn` when its `nth` SearchRequest arrives (a
/// server restart, an idle-timeout, a network blip). Everything else is
/// forwarded untouched.
struct FlakyProxy {
    path: PathBuf,
}

impl FlakyProxy {
    fn start(target: PathBuf, name: &str, drop_conn: usize, drop_at_search: usize) -> Self {
        let path = std::env::temp_dir().join(format!("pt-rev-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let index = count.fetch_add(1, Ordering::SeqCst);
                let target = target.clone();
                std::thread::spawn(move || {
                    let mut server = UnixStream::connect(&target).unwrap();
                    let mut back_client = client.try_clone().unwrap();
                    let mut back_server = server.try_clone().unwrap();
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut back_server, &mut back_client);
                        let _ = back_client.shutdown(std::net::Shutdown::Both);
                    });
                    let mut searches = 0;
                    while let Some(msg) = read_message(&mut client) {
                        if op_tag(&msg) == 0x63 {
                            searches += 1;
                            if index == drop_conn && searches == drop_at_search {
                                let _ = client.shutdown(std::net::Shutdown::Both);
                                let _ = server.shutdown(std::net::Shutdown::Both);
                                return;
                            }
                        }
                        if server.write_all(&msg).is_err() {
                            return;
                        }
                    }
                    let _ = server.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Self { path }
    }

    fn uri(&self) -> String {
        ldapi_uri_of(&self.path)
    }
}

fn rules<'a>(otp: &'a OtpConfig, throttle: &'a Throttle) -> Rules<'a> {
    Rules { otp, throttle }
}

/// Finding 1: a lost compare-and-swap whose re-read fails (one dropped
/// connection) makes `LdapLock::read_state` hand back a *fresh* state with
/// the serial forgotten; `write_state` then re-reads only the serial and
/// swaps against it, so the fresh state (no last step, no failures, no
/// lockout, no used recovery codes) is written over the real one, and the
/// code that host B just accepted is accepted again on host A.
#[test]
fn a_failed_reread_after_a_lost_race_must_not_accept_a_code_twice() {
    let slapd = Slapd::start("review-reread");
    let user_s = "review-reread";
    slapd.add_user_entry(user_s, &record_text(SECRET));
    let record = UserRecord::parse(&record_text(SECRET)).unwrap();
    let user = UserName::parse(user_s.as_bytes()).unwrap();
    let (otp, throttle) = (OtpConfig::default(), Throttle::default());

    let slapd_sock = PathBuf::from(percent_decode(
        slapd.ldapi_uri().strip_prefix("ldapi://").unwrap(),
    ));
    // Host A's path to the directory drops its first connection at that
    // connection's second search (the re-read after the lost race).
    let proxy = FlakyProxy::start(slapd_sock, "reread", 0, 2);
    let a = store(&cfg(
        Some(&slapd.host("host-a")),
        proxy.uri(),
        slapd.ca_file(),
    ));
    let b = store(&cfg(
        Some(&slapd.host("host-b")),
        slapd.ldapi_uri(),
        slapd.ca_file(),
    ));

    // Host A: the attacker's login reads the entry and prompts.
    assert!(a.load_record(&user).unwrap().is_some());
    let _ = a.peek_state(&user).unwrap();

    // Host B: the victim logs in with the code of this step.
    let now = now();
    let c = code(&record, now);
    let lb = b.lock(&user).unwrap();
    let ok = attempt(&lb, &record, &c, now, &rules(&otp, &throttle), None);
    assert!(ok.result.is_ok(), "victim's login: {:?}", ok.result);
    drop(lb);
    let step_used = slapd.user_entry(user_s).unwrap().get("totpLastStep");
    assert!(step_used.is_some());

    // Host A: the attacker types the same (observed) code.
    let la = a.lock(&user).unwrap();
    let again = attempt(&la, &record, &c, now, &rules(&otp, &throttle), None);
    let entry = slapd.user_entry(user_s).unwrap();
    assert!(
        again.result.is_err(),
        "the code host B accepted was accepted AGAIN on host A after one dropped connection: \
         {:?}; entry now: totpLastStep={:?} totpFailures={:?} totpSerial={:?}",
        again.result,
        entry.get("totpLastStep"),
        entry.get("totpFailures"),
        entry.get("totpSerial"),
    );
}

/// Same root cause, without a race: a lockout (or used recovery codes) is
/// wiped by one failed read. Host A's lock reads with no cache (as
/// `totpctl unlock`/`import`/`batch` and every retry do); the read's
/// connection is dropped, the write's reconnects.
#[test]
fn a_failed_read_must_not_wipe_a_lockout() {
    let slapd = Slapd::start("review-lockwipe");
    let user_s = "review-lockwipe";
    slapd.add_user_entry(user_s, &record_text(SECRET));
    let far = now() + 3600;
    let run = slapd.modify(
        Some(&slapd.admin()),
        &format!(
            "dn: {}\nchangetype: modify\nreplace: totpLockedUntil\ntotpLockedUntil: {far}\n-\nreplace: totpFailures\ntotpFailures: 10\n-\nreplace: totpFailuresSinceSuccess\ntotpFailuresSinceSuccess: 10\n-\nreplace: totpUsedRecovery\ntotpUsedRecovery: 0\ntotpUsedRecovery: 1\n",
            slapd.user_dn(user_s)
        ),
    );
    assert_eq!(run.rc, 0, "{}", run.stderr);
    let record = UserRecord::parse(&record_text(SECRET)).unwrap();
    let user = UserName::parse(user_s.as_bytes()).unwrap();
    let (otp, throttle) = (OtpConfig::default(), Throttle::default());
    let slapd_sock = PathBuf::from(percent_decode(
        slapd.ldapi_uri().strip_prefix("ldapi://").unwrap(),
    ));
    let proxy = FlakyProxy::start(slapd_sock, "lockwipe", 0, 1);
    let a = store(&cfg(
        Some(&slapd.host("host-a")),
        proxy.uri(),
        slapd.ca_file(),
    ));
    let la = a.lock(&user).unwrap();
    let now = now();
    let got = attempt(
        &la,
        &record,
        &code(&record, now),
        now,
        &rules(&otp, &throttle),
        None,
    );
    let entry = slapd.user_entry(user_s).unwrap();
    assert!(
        got.result.is_err(),
        "a locked-out account logged in after one dropped connection: {:?}; \
         totpLockedUntil={:?} totpUsedRecovery={:?}",
        got.result,
        entry.get("totpLockedUntil"),
        entry.values("totpUsedRecovery"),
    );
}

/// Finding 2: noSuchObject (32) is read as "not enrolled", but the shipped
/// ACLs answer 32 to anyone who may not read the subtree. A host whose bind
/// is not (or no longer) under ou=totp-hosts, a config without bind_dn (which
/// validates: anonymous), or a wrong base_dn, make every enrolled user look
/// unenrolled, and with `unenrolled = "allow"` / `allow-until` / `nullok`
/// the module returns PAM_IGNORE: no second factor.
#[test]
fn an_unreadable_subtree_is_not_not_enrolled() {
    let slapd = Slapd::start("review-rc32");
    let user_s = "pamtotp-review32";
    ensure_user(user_s, &[]);
    slapd.add_user_entry(user_s, &record_text(SECRET));
    let user = UserName::parse(user_s.as_bytes()).unwrap();

    let outsider = LdapStore::new(&cfg(
        Some(&slapd.outsider()),
        slapd.starttls_uri(),
        slapd.ca_file(),
    ));
    let anonymous_cfg = cfg(None, slapd.starttls_uri(), slapd.ca_file());
    assert!(
        anonymous_cfg
            .validate()
            .is_err_and(|e| e.contains("ldap.bind_dn")),
        "a config with no bind_dn over TCP is refused"
    );
    let anonymous = LdapStore::new(&anonymous_cfg);

    // Through the real login flow, with a transition policy.
    totp_core::store::set_ldap_opener(totp_ldap::open);
    let sb = Sandbox::new("review-rc32");
    sb.write_config(&format!(
        "[policy]\nunenrolled = \"allow\"\n[store]\nbackend = \"ldap\"\n[ldap]\nuris = [\"{}\"]\n\
         base_dn = \"{BASE_DN}\"\nbind_dn = \"{}\"\nbind_password_file = \"{}\"\n\
         ca_file = \"{}\"\nstarttls = true\ntimeout_ms = 1000\n",
        slapd.starttls_uri(),
        slapd.outsider().dn,
        slapd.outsider().password_file.display(),
        slapd.ca_file().display()
    ));
    let mut io = Answering {
        user: user_s.as_bytes().to_vec(),
        code: b"000000".to_vec(),
        now: None,
        prompted: false,
    };
    let outcome = login::authenticate(&mut io, &[format!("config={}", sb.config.display())]);

    let seen = (
        outsider.load_record(&user).map(|r| r.is_some()),
        anonymous.load_record(&user).map(|r| r.is_some()),
    );
    assert!(
        outcome.code != PamCode::Ignore && !matches!(seen, (Ok(false), _) | (_, Ok(false))),
        "an enrolled user is 'not enrolled' to a bind that may not read the subtree: \
         outsider={:?} anonymous={:?}; login without bind_dn: {:?} {} (prompted={})",
        seen.0,
        seen.1,
        outcome.code,
        outcome.line,
        io.prompted
    );
}

/// Finding 3: an `ldapi://` connect is a blocking connect(2) with no
/// deadline. When the socket's accept queue is full (a frozen or fd-starved
/// slapd; the Debian socket is world-connectable, so any local user can help
/// fill it), every login hangs for ever instead of failing in timeout_ms.
#[test]
fn an_ldapi_connect_obeys_the_timeout() {
    let dir = std::env::temp_dir().join(format!("pt-rev-ldapi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("frozen");
    // A listener that never accepts (like a SIGSTOPped slapd), backlog 1.
    let mut py = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import socket,time\ns=socket.socket(socket.AF_UNIX)\ns.bind({:?})\ns.listen(1)\nprint('ready',flush=True)\ntime.sleep(60)",
            sock.to_str().unwrap()
        ))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = [0u8; 6];
    py.stdout.as_mut().unwrap().read_exact(&mut line).unwrap();
    // Fill the accept queue.
    let _held: Vec<UnixStream> = (0..2)
        .map(|_| UnixStream::connect(&sock).unwrap())
        .collect();

    let config = LdapConfig {
        uris: vec![ldapi_uri_of(&sock)],
        base_dn: BASE_DN.into(),
        timeout_ms: 500,
        ..LdapConfig::default()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let started = Instant::now();
    std::thread::spawn(move || {
        let store = LdapStore::new(&config);
        let user = UserName::parse(b"anyone").unwrap();
        let _ = tx.send(store.load_record(&user).map(|r| r.is_some()));
    });
    let answered = rx.recv_timeout(Duration::from_secs(5));
    let _ = py.kill();
    let _ = py.wait();
    assert!(
        answered.is_ok(),
        "load_record over ldapi:// still blocked after {:?} (timeout_ms = 500)",
        started.elapsed()
    );
}

/// Finding 5: the record is read before the prompt and never again. If the
/// admin resets and re-enrolls the user meanwhile (a lost phone), the login
/// already at the prompt compares against the OLD secret, and the CAS on the
/// new entry (serial 0 again) lets it through.
#[test]
fn a_login_started_before_a_reenrollment_must_not_accept_the_old_secret() {
    let slapd = Slapd::start("review-reenroll");
    let user_s = "review-reenroll";
    slapd.add_user_entry(user_s, &record_text(SECRET));
    let old = UserRecord::parse(&record_text(SECRET)).unwrap();
    let user = UserName::parse(user_s.as_bytes()).unwrap();
    let (otp, throttle) = (OtpConfig::default(), Throttle::default());
    let a = store(&cfg(
        Some(&slapd.host("host-a")),
        slapd.ldapi_uri(),
        slapd.ca_file(),
    ));
    // The thief with the old phone starts a login: the entry is read.
    let record = a.load_record(&user).unwrap().unwrap();
    // Admin: totpctl reset, then enroll again with a new secret.
    let dn = slapd.user_dn(user_s);
    let run = slapd.modify(
        Some(&slapd.admin()),
        &format!(
            "dn: {dn}\nchangetype: delete\n\ndn: {dn}\nchangetype: add\nobjectClass: totpUser\nuid: {user_s}\ntotpSerial: 0\ntotpRecord:: {}\n",
            base64_encode(record_text(SECRET2).as_bytes())
        ),
    );
    assert_eq!(run.rc, 0, "{}", run.stderr);
    // The thief answers with a code of the old secret.
    let now = now();
    let la = a.lock(&user).unwrap();
    let got = attempt(
        &la,
        &record,
        &code(&old, now),
        now,
        &rules(&otp, &throttle),
        None,
    );
    assert!(
        got.result.is_err(),
        "a code of the secret that was reset and replaced was accepted: {:?}",
        got.result
    );
}

/// Finding 6: `uid` matches without case (caseIgnoreMatch), and so do DNs,
/// but Unix names are case-sensitive: `Alice` reads (and would be logged in
/// against, or enrolled over) `alice`'s entry.
#[test]
fn a_name_differing_only_in_case_is_another_user() {
    let slapd = Slapd::start("review-case");
    slapd.add_user_entry("review-case", &record_text(SECRET));
    let a = LdapStore::new(&cfg(
        Some(&slapd.host("host-a")),
        slapd.ldapi_uri(),
        slapd.ca_file(),
    ));
    let other = UserName::parse(b"REVIEW-Case").unwrap();
    let found = a.load_record(&other).unwrap();
    assert!(
        found.is_none(),
        "user REVIEW-Case got the record of user review-case"
    );
}
