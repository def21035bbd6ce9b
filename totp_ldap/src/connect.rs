//! Connections: the URIs in order, each given `timeout_ms` to connect,
//! finish TLS and bind; trust only from `ca_file`; errors named by server;
//! and the [`Budget`], one login's time with the directory.

use crate::store::LdapStore;
use crate::Identity;
use ldap3::{LdapConn, LdapConnSettings, LdapError, StdStream};
use std::cell::{Cell, RefCell};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};
use totp_core::fsio::{self, FileError, Trust};
use totp_core::names::UserName;
use totp_core::store::StoreError;
use zeroize::Zeroizing;

/// CA files above this size are refused unread (Debian's whole bundle is
/// about 200 KB).
const CA_FILE_LIMIT: u64 = 4 * 1024 * 1024;
/// Password files above this size are refused unread.
const PASSWORD_LIMIT: u64 = 4096;

/// One bound connection, to the server `uri`.
pub struct Session {
    pub(crate) conn: LdapConn,
    pub uri: String,
    pub(crate) timeout: Duration,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({})", self.uri)
    }
}

/// One login's time with the directory: every wait (a lookup, a connect,
/// TLS, a bind, a request) gets what is left of it, at most `timeout_ms`,
/// and what the wait took is taken off. So all the requests, connects,
/// failovers and conflict retries of one login share `timeout_ms` times
/// the number of URIs, and a login on one URI is answered or denied within
/// `timeout_ms` of directory time, however the server stalls. The time a
/// person takes at the prompt is not the directory's and is not counted.
///
/// A budget belongs to one user (a login, or one user of a `totpctl`
/// command that goes through many): work for another user starts a new
/// one. [`LdapStore::list_users`] has its own, [`LIST_BUDGET`] times
/// `timeout_ms`.
#[derive(Debug)]
pub(crate) struct Budget {
    per_server: Duration,
    limit: Cell<Duration>,
    spent: Cell<Duration>,
    owner: RefCell<Option<Option<UserName>>>,
}

/// How many times `timeout_ms` a whole listing of the users may take.
pub(crate) const LIST_BUDGET: u32 = 10;

impl Budget {
    pub(crate) fn new(timeout_ms: u64, servers: usize) -> Self {
        let per_server = Duration::from_millis(timeout_ms);
        Self {
            per_server,
            limit: Cell::new(Self::login_limit(per_server, servers)),
            spent: Cell::new(Duration::ZERO),
            owner: RefCell::new(None),
        }
    }

    fn login_limit(per_server: Duration, servers: usize) -> Duration {
        per_server.saturating_mul(u32::try_from(servers.max(1)).unwrap_or(u32::MAX))
    }

    /// Work for `owner` (`None`: a listing) begins: a new budget of `limit`
    /// unless the last work was for the same owner.
    pub(crate) fn begin(&self, owner: Option<&UserName>, limit: Duration) {
        let same = self.owner.borrow().as_ref().map(|o| o.as_ref()) == Some(owner);
        if !same {
            self.renew(owner, limit);
        }
    }

    /// A new budget of `limit` for `owner`, whatever came before.
    pub(crate) fn renew(&self, owner: Option<&UserName>, limit: Duration) {
        *self.owner.borrow_mut() = Some(owner.cloned());
        self.limit.set(limit);
        self.spent.set(Duration::ZERO);
    }

    /// What the next wait may take, or `None` when the budget is spent.
    pub(crate) fn allowance(&self) -> Option<Duration> {
        let left = self.limit.get().saturating_sub(self.spent.get());
        (left >= Duration::from_millis(1)).then(|| left.min(self.per_server))
    }

    /// Take a finished wait off.
    pub(crate) fn charge(&self, started: Instant) {
        self.spent
            .set(self.spent.get().saturating_add(started.elapsed()));
    }

    /// `error` of a wait that was given `allowed`, saying so when that was
    /// the end of the budget rather than a server's whole `timeout_ms`.
    pub(crate) fn explain(&self, error: String, allowed: Duration) -> String {
        if allowed < self.per_server {
            format!(
                "{error} (the rest of this login's {} ms with the directory)",
                self.limit().as_millis()
            )
        } else {
            error
        }
    }

    pub(crate) fn limit(&self) -> Duration {
        self.limit.get()
    }
}

impl LdapStore {
    /// Work for `user` begins (see [`Budget`]).
    pub(crate) fn begin(&self, user: &UserName) {
        self.budget.begin(
            Some(user),
            Budget::login_limit(self.timeout(), self.cfg.uris.len()),
        );
    }

    /// The error of a budget spent.
    pub(crate) fn out_of_time(&self) -> StoreError {
        StoreError::Ldap {
            server: self.server_name(),
            error: format!(
                "no answer within this login's {} ms with the directory",
                self.budget.limit().as_millis()
            ),
        }
    }

    /// Run `op` on a bound session of `who`, connecting first if needed. A
    /// session whose operation failed is dropped, so the next call
    /// reconnects (and may fail over).
    pub(crate) fn with_session<T>(
        &self,
        who: Identity,
        op: impl FnOnce(&mut Session) -> Result<T, LdapError>,
    ) -> Result<T, StoreError> {
        let cell = match who {
            Identity::Admin => &self.admin,
            _ => &self.host,
        };
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(self.connect(who)?);
        }
        let Some(session) = slot.as_mut() else {
            return Err(StoreError::Unavailable("no LDAP session".into()));
        };
        let uri = session.uri.clone();
        let Some(allowed) = self.budget.allowance() else {
            drop(slot);
            return Err(self.out_of_time());
        };
        session.timeout = allowed;
        let started = Instant::now();
        let result = op(session);
        self.budget.charge(started);
        result.map_err(|e| {
            *slot = None;
            StoreError::Ldap {
                server: uri,
                error: self.budget.explain(describe(&e, allowed), allowed),
            }
        })
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.timeout_ms)
    }

    /// A new session, bound as `who`: the URIs in order, each given the
    /// timeout, until one answers.
    pub fn connect(&self, who: Identity) -> Result<Session, StoreError> {
        let (dn, password) = match who {
            Identity::Host => (
                self.cfg.bind_dn.as_str(),
                self.password(&self.cfg.bind_password_file)?,
            ),
            Identity::Admin => {
                if self.cfg.admin_bind_dn.is_empty() {
                    return Err(StoreError::Unavailable(
                        "writing records to LDAP needs ldap.admin_bind_dn and \
                         ldap.admin_bind_password_file on this host"
                            .into(),
                    ));
                }
                (
                    self.cfg.admin_bind_dn.as_str(),
                    self.password(&self.cfg.admin_bind_password_file)?,
                )
            }
            Identity::Anonymous => ("", Zeroizing::new(String::new())),
        };
        let mut failed = Vec::new();
        for uri in &self.cfg.uris {
            let Some(allowed) = self.budget.allowance() else {
                failed.push(format!(
                    "{uri}: not tried, this login's {} ms with the directory are spent",
                    self.budget.limit().as_millis()
                ));
                continue;
            };
            let started = Instant::now();
            let connected = self
                .connect_one(uri, who, dn, &password, allowed)
                .map_err(|e| self.budget.explain(e, allowed));
            self.budget.charge(started);
            match connected {
                Ok(session) => {
                    self.notes.borrow_mut().extend(failed);
                    return Ok(session);
                }
                Err(e) => failed.push(format!("{uri}: {e}")),
            }
        }
        Err(StoreError::Ldap {
            server: if self.cfg.uris.len() == 1 {
                self.cfg.uris.join("")
            } else {
                "none of ldap.uris".into()
            },
            error: if self.cfg.uris.len() == 1 {
                failed
                    .join("")
                    .split_once(": ")
                    .map(|(_, e)| e.to_owned())
                    .unwrap_or_default()
            } else {
                failed.join("; ")
            },
        })
    }

    pub(crate) fn password(&self, path: &std::path::Path) -> Result<Zeroizing<String>, StoreError> {
        if path.as_os_str().is_empty() {
            return Ok(Zeroizing::new(String::new()));
        }
        let text =
            fsio::read_checked(path, Trust::Private, PASSWORD_LIMIT).map_err(|e| match e {
                // Told apart: a module running as the user (a screen locker)
                // then hands the code to the setuid helper.
                FileError::PermissionDenied => StoreError::Credentials(path.to_path_buf(), e),
                e => StoreError::Unavailable(format!(
                    "LDAP bind password file {} {e}",
                    path.display()
                )),
            })?;
        let text = Zeroizing::new(text);
        Ok(Zeroizing::new(
            text.trim_end_matches(['\n', '\r']).to_owned(),
        ))
    }

    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        if let Some(config) = self.tls.borrow().as_ref() {
            return Ok(config.clone());
        }
        let config = Arc::new(tls_config(&self.cfg.ca_file)?);
        *self.tls.borrow_mut() = Some(config.clone());
        Ok(config)
    }

    fn connect_one(
        &self,
        uri: &str,
        who: Identity,
        dn: &str,
        password: &str,
        timeout: Duration,
    ) -> Result<Session, String> {
        let started = Instant::now();
        let left = || {
            timeout
                .saturating_sub(started.elapsed())
                .max(Duration::from_millis(1))
        };
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| "not an LDAP URI".to_owned())?;
        let scheme = scheme.to_ascii_lowercase();
        let stream = if scheme == "ldapi" {
            let host = rest.split('/').next().unwrap_or_default();
            let path = if host.is_empty() {
                "/run/slapd/ldapi".to_owned()
            } else {
                percent_decode(host)?
            };
            StdStream::Unix(connect_unix(&path, started + timeout)?)
        } else {
            let addr = resolve(rest, if scheme == "ldaps" { 636 } else { 389 }, timeout)?;
            let stream = TcpStream::connect_timeout(&addr, left()).map_err(|e| {
                if e.kind() == std::io::ErrorKind::TimedOut {
                    format!("no connection within {} ms", timeout.as_millis())
                } else {
                    format!("cannot connect: {e}")
                }
            })?;
            stream
                .set_nodelay(true)
                .map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
            StdStream::Tcp(stream)
        };
        let tls = scheme != "ldapi";
        // What is left of the server's time covers StartTLS and the handshake.
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(left())
            .set_std_stream(stream);
        if tls {
            settings = settings
                .set_config(self.tls_config()?)
                .set_starttls(scheme == "ldap");
        }
        let mut conn = LdapConn::with_settings(settings, uri).map_err(|e| describe(&e, timeout))?;
        let bound = match who {
            // An anonymous probe is anonymous on a local socket too (no
            // SASL EXTERNAL, which would bind as the caller's uid).
            Identity::Anonymous => Ok(ldap3::LdapResult {
                rc: 0,
                matched: String::new(),
                text: String::new(),
                refs: Vec::new(),
                ctrls: Vec::new(),
            }),
            _ if dn.is_empty() => conn.with_timeout(left()).sasl_external_bind(),
            _ => conn.with_timeout(left()).simple_bind(dn, password),
        };
        bound.and_then(|r| r.success()).map_err(|e| {
            format!(
                "bind as {} failed: {}",
                if dn.is_empty() {
                    "(the local socket's peer)"
                } else {
                    dn
                },
                describe(&e, timeout)
            )
        })?;
        Ok(Session {
            conn,
            uri: uri.to_owned(),
            timeout,
        })
    }

    pub(crate) fn server_name(&self) -> String {
        self.host
            .borrow()
            .as_ref()
            .or(self.admin.borrow().as_ref())
            .map(|s| s.uri.clone())
            .unwrap_or_else(|| self.cfg.uris.join(", "))
    }

    /// Run `op` on a fresh session bound as `who` (for `totpctl check`),
    /// within a budget of its own.
    pub fn probe<T>(
        &self,
        who: Identity,
        op: impl FnOnce(&mut LdapConn, Duration) -> Result<T, LdapError>,
    ) -> Result<(String, T), StoreError> {
        self.budget.renew(
            None,
            Budget::login_limit(self.timeout(), self.cfg.uris.len()),
        );
        let mut session = self.connect(who)?;
        let Some(timeout) = self.budget.allowance() else {
            return Err(self.out_of_time());
        };
        let uri = session.uri.clone();
        let started = Instant::now();
        let result = op(&mut session.conn, timeout);
        self.budget.charge(started);
        result
            .map(|t| (uri.clone(), t))
            .map_err(|e| StoreError::Ldap {
                server: uri,
                error: describe(&e, timeout),
            })
    }

    pub(crate) fn refused(&self, dn: &str, result: &ldap3::LdapResult) -> StoreError {
        StoreError::Ldap {
            server: self.server_name(),
            error: format!("{dn}: {}", describe_result(result)),
        }
    }
}

/// Connect to a local socket, giving up at `deadline`: a listener whose
/// queue is full (a frozen or overloaded server) answers a non-blocking
/// connect with EAGAIN, where a blocking one would wait for ever.
fn connect_unix(path: &str, deadline: Instant) -> Result<std::os::unix::net::UnixStream, String> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let addr = UnixAddr::new(path).map_err(|e| format!("bad socket path {path}: {e}"))?;
    loop {
        let fd = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| format!("cannot make a socket: {e}"))?;
        match connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr) {
            Ok(()) => return Ok(std::os::unix::net::UnixStream::from(fd)),
            Err(nix::errno::Errno::EAGAIN) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(nix::errno::Errno::EAGAIN) => {
                return Err(format!("{path} accepted no connection in time"))
            }
            Err(e) => return Err(format!("cannot connect to {path}: {e}")),
        }
    }
}

/// Trust exactly the certificates in `ca_file` (PEM).
fn tls_config(ca_file: &std::path::Path) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    // Trust comes from this file: it must be as safe as the config (owned
    // by root, not writable by group or others).
    let pem = fsio::read_checked(ca_file, Trust::Config, CA_FILE_LIMIT)
        .map_err(|e| format!("ldap.ca_file {} {e}", ca_file.display()))?;
    let pem = pem.as_bytes();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("ldap.ca_file {}: {e}", ca_file.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("ldap.ca_file {}: {e}", ca_file.display()))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "ldap.ca_file {} holds no certificate",
            ca_file.display()
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

/// `host[:port]` of a URI's authority (`rest` is what follows `://`),
/// resolved within `timeout`. An IP address needs no lookup; a name is
/// looked up on a thread that is left behind if the resolver hangs.
fn resolve(rest: &str, default_port: u16, timeout: Duration) -> Result<SocketAddr, String> {
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| format!("bad address in {authority}"))?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| format!("bad port in {authority}"))?,
        None => default_port,
    };
    if host.is_empty() {
        return Err("no host in the URI".into());
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let name = host.to_owned();
    std::thread::Builder::new()
        .name("pam_totp-resolve".into())
        .spawn(move || {
            let _ = tx.send(
                (name.as_str(), port)
                    .to_socket_addrs()
                    .map(|mut a| a.next()),
            );
        })
        .map_err(|e| format!("cannot look up {host}: {e}"))?;
    match rx.recv_timeout(timeout) {
        Ok(Ok(Some(addr))) => Ok(addr),
        Ok(Ok(None)) => Err(format!("{host} has no address")),
        Ok(Err(e)) => Err(format!("cannot look up {host}: {e}")),
        Err(_) => Err(format!(
            "no address for {host} within {} ms",
            timeout.as_millis()
        )),
    }
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad escape in {text}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{text} is not UTF-8"))
}

fn describe(e: &LdapError, timeout: Duration) -> String {
    match e {
        LdapError::Timeout { .. } => format!("no answer within {} ms", timeout.as_millis()),
        LdapError::LdapResult { result } => describe_result(result),
        other => other.to_string(),
    }
}

fn describe_result(result: &ldap3::LdapResult) -> String {
    let name = match result.rc {
        32 => "no such object",
        49 => "invalid credentials",
        50 => "insufficient access",
        53 => "unwilling to perform",
        _ => "",
    };
    let text = result.text.trim();
    match (name, text.is_empty()) {
        ("", true) => format!("result code {}", result.rc),
        ("", false) => format!("result code {}: {text}", result.rc),
        (n, true) => format!("{n} (rc {})", result.rc),
        (n, false) => format!("{n} (rc {}): {text}", result.rc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_resolve_without_a_lookup_for_addresses() {
        let t = Duration::from_millis(100);
        assert_eq!(
            resolve("127.0.0.1:1636/", 636, t).unwrap(),
            "127.0.0.1:1636".parse().unwrap()
        );
        assert_eq!(
            resolve("[::1]", 389, t).unwrap(),
            "[::1]:389".parse().unwrap()
        );
        assert!(resolve("", 389, t).is_err());
        assert_eq!(
            percent_decode("%2Frun%2Fslapd%2Fldapi").unwrap(),
            "/run/slapd/ldapi"
        );
    }
}
