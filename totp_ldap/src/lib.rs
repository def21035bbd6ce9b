//! pam_totp's LDAP store: one entry per user, `uid=USER,<base_dn>`, of object
//! class `totpUser` (schema in `ldap/pam_totp.schema`), shared by every host
//! of a fleet.
//!
//! - The record is `totpRecord`: the same TOML as a file record, secret
//!   included. Hosts read it; only the admin identity writes it.
//! - The login state is one attribute per field (`totpLastStep`,
//!   `totpFailures`, `totpHotpNext`, `totpSkew`, ...), and `totpSerial`, its
//!   version. Hosts may write these and nothing else.
//! - **Compare-and-swap.** Every state write is one Modify that deletes
//!   `totpSerial: N`, adds `totpSerial: N+1` and replaces the state
//!   attributes. A Modify is applied whole or not at all (RFC 4511 4.6), and
//!   the delete fails with noSuchAttribute when another writer has moved the
//!   serial on: then nothing is written and the caller gets
//!   [`StoreError::Conflict`], reads again and decides again. So across the
//!   fleet a code is accepted once and no failure is lost, as long as all
//!   writes go to one provider (see the README's fleet section).
//! - **Deadlines.** Every server gets `timeout_ms` to connect, finish TLS and
//!   bind; every operation gets `timeout_ms` to answer. A server that does
//!   not is reported by name and the next URI is tried; when none answers
//!   the caller fails closed. The socket is connected here, with
//!   TCP_NODELAY (without it every TLS exchange stalls for the peer's
//!   delayed ACK), and trust comes only from `ca_file`.

#![forbid(unsafe_code)]

use ldap3::adapters::{EntriesOnly, PagedResults};
use ldap3::{dn_escape, LdapConn, LdapConnSettings, LdapError, Mod, Scope, SearchEntry, StdStream};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};
use totp_core::config::{Config, LdapConfig};
use totp_core::fsio::{self, Trust};
use totp_core::names::UserName;
use totp_core::record::UserRecord;
use totp_core::state::LoginState;
use totp_core::store::{Backend, BackendLock, StateRead, StoreError};
use zeroize::Zeroizing;

/// The object class of a user entry.
pub const OBJECT_CLASS: &str = "totpUser";
/// The record attribute, written only by the admin identity.
pub const RECORD_ATTR: &str = "totpRecord";
/// The state's version; every state write is a compare-and-swap on it.
pub const SERIAL_ATTR: &str = "totpSerial";
/// The login state, one attribute per field, in the order of [`LoginState`].
pub const STATE_ATTRS: [&str; 14] = [
    "totpLastStep",
    "totpFailures",
    "totpHotpNext",
    "totpSkew",
    "totpResyncOffset",
    "totpResyncStep",
    "totpResyncAt",
    "totpFailuresSinceSuccess",
    "totpNotBefore",
    "totpLastFailureAt",
    "totpLockedUntil",
    "totpLastSuccessAt",
    "totpLastSuccessRhost",
    "totpUsedRecovery",
];

/// LDAP result codes this backend tells apart.
mod rc {
    pub const NO_SUCH_ATTRIBUTE: u32 = 16;
    pub const CONSTRAINT_VIOLATION: u32 = 19;
    pub const NO_SUCH_OBJECT: u32 = 32;
    pub const ENTRY_ALREADY_EXISTS: u32 = 68;
}

/// Password files above this size are refused unread.
const PASSWORD_LIMIT: u64 = 4096;
/// How many entries a page of `list_users` asks for (below slapd's default
/// size limit of 500).
const PAGE_SIZE: i32 = 400;

/// The identity a connection binds as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// `bind_dn`: reads records, writes login state.
    Host,
    /// `admin_bind_dn`: writes records too.
    Admin,
    /// No bind at all (for `totpctl check`'s anonymous probe).
    Anonymous,
}

#[derive(Debug)]
pub struct LdapStore {
    cfg: LdapConfig,
    host: RefCell<Option<Session>>,
    admin: RefCell<Option<Session>>,
    tls: RefCell<Option<Arc<rustls::ClientConfig>>>,
    /// The entry read last by [`LdapStore::load_record`] or
    /// [`LdapStore::peek_state`], handed to the next lock so that a login
    /// reads its entry once. Stale is harmless: the lock's first write is a
    /// compare-and-swap against it.
    cache: RefCell<Option<(UserName, Entry)>>,
    /// Servers that failed before one answered, for `failover_notes`.
    notes: RefCell<Vec<String>>,
}

/// One bound connection, to the server `uri`.
pub struct Session {
    conn: LdapConn,
    pub uri: String,
    timeout: Duration,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({})", self.uri)
    }
}

/// A user's entry as read: the record's text, the state and its serial.
#[derive(Clone, Debug)]
struct Entry {
    record: Option<Zeroizing<String>>,
    serial: Option<i64>,
    state: Result<LoginState, String>,
}

impl LdapStore {
    pub fn new(cfg: &LdapConfig) -> Self {
        Self {
            cfg: cfg.clone(),
            host: RefCell::new(None),
            admin: RefCell::new(None),
            tls: RefCell::new(None),
            cache: RefCell::new(None),
            notes: RefCell::new(Vec::new()),
        }
    }

    pub fn config(&self) -> &LdapConfig {
        &self.cfg
    }

    /// `uid=USER,<base_dn>`, the user's value escaped (RFC 4514).
    pub fn entry_dn(&self, user: &UserName) -> String {
        format!("uid={},{}", dn_escape(user.as_str()), self.cfg.base_dn)
    }

    /// The servers that did not answer before one did (each with why),
    /// taken: the module logs them, so a dead provider is noticed even
    /// while logins work through the next.
    pub fn failover_notes(&self) -> Vec<String> {
        std::mem::take(&mut self.notes.borrow_mut())
    }

    /// Run `op` on a bound session of `who`, connecting first if needed. A
    /// session whose operation failed is dropped, so the next call
    /// reconnects (and may fail over).
    fn with_session<T>(
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
        op(session).map_err(|e| {
            *slot = None;
            StoreError::Ldap {
                server: uri,
                error: describe(&e, self.timeout()),
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
            match self.connect_one(uri, dn, &password) {
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

    fn password(&self, path: &std::path::Path) -> Result<Zeroizing<String>, StoreError> {
        if path.as_os_str().is_empty() {
            return Ok(Zeroizing::new(String::new()));
        }
        let text = fsio::read_checked(path, Trust::Private, PASSWORD_LIMIT).map_err(|e| {
            StoreError::Unavailable(format!("LDAP bind password file {} {e}", path.display()))
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

    fn connect_one(&self, uri: &str, dn: &str, password: &str) -> Result<Session, String> {
        let timeout = self.timeout();
        let started = Instant::now();
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| "not an LDAP URI".to_owned())?;
        let scheme = scheme.to_ascii_lowercase();
        let mut settings = LdapConnSettings::new().set_conn_timeout(timeout);
        if scheme == "ldapi" {
            let host = rest.split('/').next().unwrap_or_default();
            let path = if host.is_empty() {
                "/run/slapd/ldapi".to_owned()
            } else {
                percent_decode(host)?
            };
            let stream = std::os::unix::net::UnixStream::connect(&path)
                .map_err(|e| format!("cannot connect to {path}: {e}"))?;
            settings = settings.set_std_stream(StdStream::Unix(stream));
        } else {
            let addr = resolve(rest, if scheme == "ldaps" { 636 } else { 389 }, timeout)?;
            let left = timeout.saturating_sub(started.elapsed());
            let stream = TcpStream::connect_timeout(&addr, left).map_err(|e| {
                if e.kind() == std::io::ErrorKind::TimedOut {
                    format!("no connection within {} ms", timeout.as_millis())
                } else {
                    format!("cannot connect: {e}")
                }
            })?;
            stream
                .set_nodelay(true)
                .map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
            settings = settings
                .set_std_stream(StdStream::Tcp(stream))
                .set_config(self.tls_config()?)
                .set_starttls(scheme == "ldap");
        }
        let mut conn = LdapConn::with_settings(settings, uri).map_err(|e| describe(&e, timeout))?;
        let left = timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        let bound = if dn.is_empty() && scheme == "ldapi" {
            conn.with_timeout(left).sasl_external_bind()
        } else if dn.is_empty() {
            Ok(ldap3::LdapResult {
                rc: 0,
                matched: String::new(),
                text: String::new(),
                refs: Vec::new(),
                ctrls: Vec::new(),
            })
        } else {
            conn.with_timeout(left).simple_bind(dn, password)
        };
        bound.and_then(|r| r.success()).map_err(|e| {
            format!(
                "bind as {} failed: {}",
                if dn.is_empty() { "(anonymous)" } else { dn },
                describe(&e, timeout)
            )
        })?;
        Ok(Session {
            conn,
            uri: uri.to_owned(),
            timeout,
        })
    }

    /// Read a user's entry; `None` if there is none.
    fn read_entry(&self, user: &UserName) -> Result<Option<Entry>, StoreError> {
        let dn = self.entry_dn(user);
        let mut attrs = vec![RECORD_ATTR, SERIAL_ATTR];
        attrs.extend(STATE_ATTRS);
        let found = self.with_session(Identity::Host, |s| {
            let result = s.conn.with_timeout(s.timeout).search(
                &dn,
                Scope::Base,
                "(objectClass=totpUser)",
                &attrs,
            )?;
            if result.1.rc == rc::NO_SUCH_OBJECT {
                return Ok(None);
            }
            let (entries, _) = result.success()?;
            Ok(entries.into_iter().next().map(SearchEntry::construct))
        })?;
        Ok(found.map(|entry| Entry::from_attrs(lowercase_keys(entry.attrs))))
    }

    /// The entry, from the cache if it is this user's (taken), else read.
    fn entry(&self, user: &UserName, take: bool) -> Result<Option<Entry>, StoreError> {
        let cached = {
            let cache = self.cache.borrow();
            match cache.as_ref() {
                Some((who, entry)) if who == user => Some(entry.clone()),
                _ => None,
            }
        };
        if let Some(entry) = cached {
            if take {
                *self.cache.borrow_mut() = None;
            }
            return Ok(Some(entry));
        }
        let entry = self.read_entry(user)?;
        if !take {
            if let Some(entry) = &entry {
                *self.cache.borrow_mut() = Some((user.clone(), entry.clone()));
            }
        }
        Ok(entry)
    }

    pub fn load_record(&self, user: &UserName) -> Result<Option<UserRecord>, StoreError> {
        let Some(entry) = self.entry(user, false)? else {
            return Ok(None);
        };
        let Some(text) = entry.record else {
            return Ok(None);
        };
        UserRecord::parse(&text)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(self.entry_dn(user), e))
    }

    pub fn peek_state(&self, user: &UserName) -> Result<StateRead, StoreError> {
        Ok(match self.entry(user, false)? {
            Some(entry) => entry.state_read(&self.entry_dn(user)),
            None => StateRead {
                state: LoginState::new(),
                problem: None,
            },
        })
    }

    pub fn lock(&self, user: &UserName) -> Result<LdapLock<'_>, StoreError> {
        let cached = {
            let mut cache = self.cache.borrow_mut();
            match cache.take() {
                Some((who, entry)) if &who == user => Some(entry),
                _ => None,
            }
        };
        Ok(LdapLock {
            store: self,
            user: user.clone(),
            serial: RefCell::new(cached.as_ref().map(|e| e.serial)),
            cached: RefCell::new(cached),
        })
    }

    pub fn list_users(&self) -> Result<Vec<UserName>, StoreError> {
        let base = self.cfg.base_dn.clone();
        let names = self.with_session(Identity::Host, |s| {
            let adapters: Vec<Box<dyn ldap3::adapters::Adapter<_, _>>> = vec![
                Box::new(EntriesOnly::new()),
                Box::new(PagedResults::new(PAGE_SIZE)),
            ];
            let mut stream = s.conn.with_timeout(s.timeout).streaming_search_with(
                adapters,
                &base,
                Scope::OneLevel,
                "(objectClass=totpUser)",
                vec!["uid"],
            )?;
            let mut names = Vec::new();
            while let Some(entry) = stream.next()? {
                let entry = SearchEntry::construct(entry);
                names.extend(
                    lowercase_keys(entry.attrs)
                        .remove("uid")
                        .unwrap_or_default(),
                );
            }
            stream.result().success()?;
            Ok(names)
        })?;
        let mut users: Vec<UserName> = names
            .iter()
            .filter_map(|n| UserName::parse(n.as_bytes()).ok())
            .collect();
        users.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        users.dedup();
        Ok(users)
    }

    /// Run `op` on a fresh session bound as `who` (for `totpctl check`).
    pub fn probe<T>(
        &self,
        who: Identity,
        op: impl FnOnce(&mut LdapConn, Duration) -> Result<T, LdapError>,
    ) -> Result<(String, T), StoreError> {
        let mut session = self.connect(who)?;
        let timeout = session.timeout;
        let uri = session.uri.clone();
        op(&mut session.conn, timeout)
            .map(|t| (uri.clone(), t))
            .map_err(|e| StoreError::Ldap {
                server: uri,
                error: describe(&e, timeout),
            })
    }

    /// Add a whole entry (record and state) as the admin, for `migrate`.
    /// Returns false, writing nothing, if the user already has one.
    pub fn add_entry(
        &self,
        user: &UserName,
        record: &UserRecord,
        state: &LoginState,
    ) -> Result<bool, StoreError> {
        let dn = self.entry_dn(user);
        let text = record
            .to_toml()
            .map_err(|e| StoreError::Unavailable(format!("record of {user}: {e}")))?;
        let mut attrs = vec![
            ("objectClass".to_owned(), vec![OBJECT_CLASS.to_owned()]),
            ("uid".to_owned(), vec![user.as_str().to_owned()]),
            (SERIAL_ATTR.to_owned(), vec!["0".to_owned()]),
            (RECORD_ATTR.to_owned(), vec![text.to_string()]),
        ];
        for (name, values) in state_values(state) {
            if !values.is_empty() {
                attrs.push((name.to_owned(), values));
            }
        }
        let attrs: Vec<(String, HashSet<String>)> = attrs
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect();
        self.with_session(Identity::Admin, |s| {
            let result = s.conn.with_timeout(s.timeout).add(&dn, attrs)?;
            if result.rc == rc::ENTRY_ALREADY_EXISTS {
                return Ok(false);
            }
            result.success().map(|_| true)
        })
    }
}

/// A user's session on the LDAP store: no lock, a remembered serial.
pub struct LdapLock<'a> {
    store: &'a LdapStore,
    user: UserName,
    /// The serial read or written last: `Some(None)` if the entry had none,
    /// `None` if nothing was read yet.
    serial: RefCell<Option<Option<i64>>>,
    cached: RefCell<Option<Entry>>,
}

impl LdapLock<'_> {
    pub fn user(&self) -> &UserName {
        &self.user
    }

    fn entry(&self) -> Result<Option<Entry>, StoreError> {
        if let Some(entry) = self.cached.borrow_mut().take() {
            return Ok(Some(entry));
        }
        self.store.read_entry(&self.user)
    }

    pub fn read_state(&self) -> StateRead {
        match self.entry() {
            Ok(Some(entry)) => {
                *self.serial.borrow_mut() = Some(entry.serial);
                entry.state_read(&self.store.entry_dn(&self.user))
            }
            Ok(None) => {
                *self.serial.borrow_mut() = Some(None);
                StateRead {
                    state: LoginState::new(),
                    problem: None,
                }
            }
            Err(e) => {
                // Nothing known: the next write reads the serial first and
                // fails if the server is still away.
                *self.serial.borrow_mut() = None;
                StateRead {
                    state: LoginState::new(),
                    problem: Some(e.to_string()),
                }
            }
        }
    }

    pub fn write_state(&self, state: &LoginState) -> Result<(), StoreError> {
        let dn = self.store.entry_dn(&self.user);
        let known = *self.serial.borrow();
        let serial = match known {
            Some(serial) => serial,
            None => match self.entry()? {
                Some(entry) => entry.serial,
                None => return Err(no_entry(&dn)),
            },
        };
        // TOML's integers end at i64::MAX; so do the state's (see
        // LoginState::to_toml), so refuse what the files backend refuses.
        state
            .to_toml()
            .map_err(|e| StoreError::Unavailable(format!("state of {}: {e}", self.user)))?;
        let next = serial.map_or(0, |s| s.saturating_add(1));
        let mut mods: Vec<Mod<String>> = Vec::new();
        // An entry without a serial (made by hand): the add of the first one
        // is the swap; a second writer fails with constraintViolation
        // (single-valued).
        if let Some(old) = serial {
            mods.push(Mod::Delete(SERIAL_ATTR.into(), set([old.to_string()])));
        }
        mods.push(Mod::Add(SERIAL_ATTR.into(), set([next.to_string()])));
        for (name, values) in state_values(state) {
            mods.push(Mod::Replace(name.into(), values.into_iter().collect()));
        }
        let result = self.store.with_session(Identity::Host, |s| {
            s.conn.with_timeout(s.timeout).modify(&dn, mods)
        })?;
        match result.rc {
            0 => {
                *self.serial.borrow_mut() = Some(Some(next));
                Ok(())
            }
            rc::NO_SUCH_ATTRIBUTE | rc::CONSTRAINT_VIOLATION => {
                *self.serial.borrow_mut() = None;
                Err(StoreError::Conflict(format!("the login state of {dn}")))
            }
            rc::NO_SUCH_OBJECT => Err(no_entry(&dn)),
            _ => Err(self.store.refused(&dn, &result)),
        }
    }

    pub fn write_record(&self, record: &UserRecord) -> Result<(), StoreError> {
        let dn = self.store.entry_dn(&self.user);
        let text = record
            .to_toml()
            .map_err(|e| StoreError::Unavailable(format!("record of {}: {e}", self.user)))?;
        let text: String = text.to_string();
        let user = self.user.as_str().to_owned();
        let result = self.store.with_session(Identity::Admin, |s| {
            let attrs = vec![
                ("objectClass".to_owned(), set([OBJECT_CLASS.to_owned()])),
                ("uid".to_owned(), set([user])),
                (SERIAL_ATTR.to_owned(), set(["0".to_owned()])),
                (RECORD_ATTR.to_owned(), set([text.clone()])),
            ];
            let added = s.conn.with_timeout(s.timeout).add(&dn, attrs)?;
            if added.rc != rc::ENTRY_ALREADY_EXISTS {
                return Ok(added);
            }
            s.conn
                .with_timeout(s.timeout)
                .modify(&dn, vec![Mod::Replace(RECORD_ATTR.to_owned(), set([text]))])
        })?;
        if result.rc != 0 {
            return Err(self.store.refused(&dn, &result));
        }
        // A new entry starts at serial 0; an old one keeps its own.
        *self.serial.borrow_mut() = None;
        *self.cached.borrow_mut() = None;
        Ok(())
    }

    pub fn remove_all(&self) -> Result<bool, StoreError> {
        let dn = self.store.entry_dn(&self.user);
        let result = self.store.with_session(Identity::Admin, |s| {
            s.conn.with_timeout(s.timeout).delete(&dn)
        })?;
        *self.serial.borrow_mut() = Some(None);
        *self.cached.borrow_mut() = None;
        match result.rc {
            0 => Ok(true),
            rc::NO_SUCH_OBJECT => Ok(false),
            _ => Err(self.store.refused(&dn, &result)),
        }
    }
}

impl LdapStore {
    fn refused(&self, dn: &str, result: &ldap3::LdapResult) -> StoreError {
        let server = self
            .host
            .borrow()
            .as_ref()
            .or(self.admin.borrow().as_ref())
            .map(|s| s.uri.clone())
            .unwrap_or_else(|| self.cfg.uris.join(", "));
        StoreError::Ldap {
            server,
            error: format!("{dn}: {}", describe_result(result)),
        }
    }
}

fn no_entry(dn: &str) -> StoreError {
    StoreError::Unavailable(format!("{dn} does not exist (reset meanwhile?)"))
}

fn set<const N: usize>(values: [String; N]) -> HashSet<String> {
    values.into_iter().collect()
}

fn lowercase_keys(attrs: HashMap<String, Vec<String>>) -> HashMap<String, Vec<String>> {
    attrs
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

impl Entry {
    fn from_attrs(mut attrs: HashMap<String, Vec<String>>) -> Self {
        let record = attrs
            .remove(&RECORD_ATTR.to_ascii_lowercase())
            .and_then(|mut v| v.pop())
            .map(Zeroizing::new);
        let serial = attrs
            .remove(&SERIAL_ATTR.to_ascii_lowercase())
            .and_then(|v| v.first().and_then(|s| s.parse().ok()));
        Self {
            record,
            serial,
            state: state_from_attrs(&attrs),
        }
    }

    fn state_read(&self, dn: &str) -> StateRead {
        match &self.state {
            Ok(state) => StateRead {
                state: state.clone(),
                problem: None,
            },
            Err(e) => StateRead {
                state: LoginState::new(),
                problem: Some(format!(
                    "login state of {dn} is corrupt ({e}); starting afresh"
                )),
            },
        }
    }
}

/// The state's attributes and their values; an empty list deletes it.
fn state_values(s: &LoginState) -> Vec<(&'static str, Vec<String>)> {
    fn one<T: ToString>(v: Option<T>) -> Vec<String> {
        v.map(|v| v.to_string()).into_iter().collect()
    }
    let nonzero = |n: u32| one((n != 0).then_some(n));
    let [last_step, failures, hotp_next, skew, resync_offset, resync_step, resync_at, since, not_before, last_failure_at, locked_until, last_success_at, rhost, used] =
        STATE_ATTRS;
    vec![
        (last_step, one(s.last_step)),
        (failures, nonzero(s.failures)),
        (hotp_next, one(s.hotp_next)),
        (skew, one(s.skew)),
        (resync_offset, one(s.resync_offset)),
        (resync_step, one(s.resync_step)),
        (resync_at, one(s.resync_at)),
        (since, nonzero(s.failures_since_success)),
        (not_before, one(s.not_before)),
        (last_failure_at, one(s.last_failure_at)),
        (locked_until, one(s.locked_until)),
        (last_success_at, one(s.last_success_at)),
        (rhost, one(s.last_success_rhost.clone())),
        (used, s.used_recovery.iter().map(u32::to_string).collect()),
    ]
}

fn state_from_attrs(attrs: &HashMap<String, Vec<String>>) -> Result<LoginState, String> {
    fn get<T: std::str::FromStr>(
        attrs: &HashMap<String, Vec<String>>,
        name: &str,
    ) -> Result<Option<T>, String> {
        match attrs.get(&name.to_ascii_lowercase()).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([one]) => one
                .parse()
                .map(Some)
                .map_err(|_| format!("{name} is not a valid number")),
            Some(_) => Err(format!("{name} has several values")),
        }
    }
    let [last_step, failures, hotp_next, skew, resync_offset, resync_step, resync_at, since, not_before, last_failure_at, locked_until, last_success_at, rhost, used] =
        STATE_ATTRS;
    let used_recovery = attrs
        .get(&used.to_ascii_lowercase())
        .map(|values| {
            values
                .iter()
                .map(|v| {
                    v.parse()
                        .map_err(|_| format!("{used} is not a valid number"))
                })
                .collect::<Result<Vec<u32>, String>>()
        })
        .transpose()?
        .unwrap_or_default();
    let rhost = match attrs.get(&rhost.to_ascii_lowercase()).map(Vec::as_slice) {
        None | Some([]) => None,
        Some([one]) => Some(one.clone()),
        Some(_) => return Err(format!("{rhost} has several values")),
    };
    Ok(LoginState {
        version: totp_core::state::FORMAT_VERSION,
        last_step: get(attrs, last_step)?,
        failures: get(attrs, failures)?.unwrap_or(0),
        hotp_next: get(attrs, hotp_next)?,
        skew: get(attrs, skew)?,
        resync_offset: get(attrs, resync_offset)?,
        resync_step: get(attrs, resync_step)?,
        resync_at: get(attrs, resync_at)?,
        failures_since_success: get(attrs, since)?.unwrap_or(0),
        not_before: get(attrs, not_before)?,
        last_failure_at: get(attrs, last_failure_at)?,
        locked_until: get(attrs, locked_until)?,
        last_success_at: get(attrs, last_success_at)?,
        last_success_rhost: rhost,
        used_recovery,
    })
}

/// Trust exactly the certificates in `ca_file` (PEM).
fn tls_config(ca_file: &std::path::Path) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let pem = std::fs::read(ca_file)
        .map_err(|e| format!("cannot read ldap.ca_file {}: {e}", ca_file.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
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

/// The [`totp_core::store::Opener`] of the LDAP store: register it with
/// [`totp_core::store::set_ldap_opener`].
pub fn open(config: &Config) -> Result<Box<dyn Backend>, StoreError> {
    Ok(Box::new(LdapStore::new(&config.ldap)))
}

impl Backend for LdapStore {
    fn record_location(&self, user: &UserName) -> String {
        self.entry_dn(user)
    }
    fn load_record(&self, user: &UserName) -> Result<Option<UserRecord>, StoreError> {
        LdapStore::load_record(self, user)
    }
    fn peek_state(&self, user: &UserName) -> Result<StateRead, StoreError> {
        LdapStore::peek_state(self, user)
    }
    fn lock<'a>(&'a self, user: &UserName) -> Result<Box<dyn BackendLock + 'a>, StoreError> {
        LdapStore::lock(self, user).map(|l| Box::new(l) as Box<dyn BackendLock + 'a>)
    }
    fn list_users(&self) -> Result<Vec<UserName>, StoreError> {
        LdapStore::list_users(self)
    }
    fn take_notes(&self) -> Vec<String> {
        self.failover_notes()
    }
}

impl BackendLock for LdapLock<'_> {
    fn user(&self) -> &UserName {
        LdapLock::user(self)
    }
    fn read_state(&self) -> StateRead {
        LdapLock::read_state(self)
    }
    fn write_state(&self, state: &LoginState) -> Result<(), StoreError> {
        LdapLock::write_state(self, state)
    }
    fn write_record(&self, record: &UserRecord) -> Result<(), StoreError> {
        LdapLock::write_record(self, record)
    }
    fn remove_all(&self) -> Result<bool, StoreError> {
        LdapLock::remove_all(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_attributes() {
        let state = LoginState {
            last_step: Some(57_000_000),
            failures: 3,
            hotp_next: Some(12),
            skew: Some(-2),
            resync_offset: Some(4),
            resync_step: Some(57_000_004),
            resync_at: Some(1_700_000_000),
            failures_since_success: 13,
            not_before: Some(1_700_000_004),
            last_failure_at: Some(1_700_000_001),
            locked_until: Some(1_700_000_900),
            last_success_at: Some(1_699_999_000),
            last_success_rhost: Some("192.0.2.7".into()),
            used_recovery: vec![2, 5],
            ..LoginState::new()
        };
        let attrs: HashMap<String, Vec<String>> = state_values(&state)
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        assert_eq!(state_from_attrs(&attrs).unwrap(), state);
        let empty: HashMap<String, Vec<String>> = state_values(&LoginState::new())
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert!(
            empty.is_empty(),
            "a fresh state writes no attribute: {empty:?}"
        );
    }

    #[test]
    fn a_malformed_attribute_is_reported_not_guessed() {
        let mut attrs = HashMap::new();
        attrs.insert("totpfailures".to_owned(), vec!["many".to_owned()]);
        assert!(state_from_attrs(&attrs)
            .unwrap_err()
            .contains("totpFailures"));
        attrs.insert("totpfailures".to_owned(), vec!["1".into(), "2".into()]);
        assert!(state_from_attrs(&attrs).unwrap_err().contains("several"));
    }

    #[test]
    fn names_are_escaped_in_the_dn() {
        let store = LdapStore::new(&LdapConfig {
            base_dn: "ou=pam_totp,dc=example,dc=org".into(),
            ..LdapConfig::default()
        });
        let user = UserName::parse(b"a,b+c").unwrap();
        assert_eq!(
            store.entry_dn(&user),
            "uid=a\\2cb\\2bc,ou=pam_totp,dc=example,dc=org"
        );
    }

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
