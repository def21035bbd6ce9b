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

/// CA files above this size are refused unread (Debian's whole bundle is
/// about 200 KB).
const CA_FILE_LIMIT: u64 = 4 * 1024 * 1024;
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
    /// [`LdapStore::peek_state`], so that a login reads it once before its
    /// prompt. Locks never use it.
    cache: RefCell<Option<(UserName, Entry)>>,
    /// The record text [`LdapStore::load_record`] returned last: a lock of
    /// that user refuses to write if the entry no longer holds it.
    loaded: RefCell<Option<(UserName, Zeroizing<String>)>>,
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
            loaded: RefCell::new(None),
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
            match self.connect_one(uri, who, dn, &password) {
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

    fn connect_one(
        &self,
        uri: &str,
        who: Identity,
        dn: &str,
        password: &str,
    ) -> Result<Session, String> {
        let timeout = self.timeout();
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

    /// Read a user's entry; `None` if there is none.
    ///
    /// "No such object" means "not enrolled" only when the server names the
    /// base as the closest entry it has: the shipped access rules answer the
    /// same code to a bind that may not read the subtree at all (a host
    /// bind outside ou=totp-hosts, a wrong base_dn), and taking that for
    /// "not enrolled" would let a transition policy skip the code for
    /// everyone. An entry whose `uid` is another spelling of the name
    /// (LDAP matches names without case; Unix does not) is not this user's.
    fn read_entry(&self, user: &UserName) -> Result<Option<Entry>, StoreError> {
        let dn = self.entry_dn(user);
        let mut attrs = vec!["uid", RECORD_ATTR, SERIAL_ATTR];
        attrs.extend(STATE_ATTRS);
        let base = self.cfg.base_dn.clone();
        let found = self.with_session(Identity::Host, |s| {
            let result = s.conn.with_timeout(s.timeout).search(
                &dn,
                Scope::Base,
                "(objectClass=totpUser)",
                &attrs,
            )?;
            if result.1.rc == rc::NO_SUCH_OBJECT {
                return Ok(Err(result.1.matched.clone()));
            }
            let (entries, _) = result.success()?;
            Ok(Ok(entries.into_iter().next().map(SearchEntry::construct)))
        })?;
        let entry = match found {
            Ok(entry) => entry,
            Err(matched) if same_dn(&matched, &base) => None,
            Err(matched) => {
                return Err(StoreError::Ldap {
                    server: self.server_name(),
                    error: format!(
                        "{dn} not found, and the base {base} is not visible either (the \
                         server's closest entry: '{matched}'): a wrong ldap.base_dn, or \
                         access rules that do not let {} read it",
                        if self.cfg.bind_dn.is_empty() {
                            "this bind"
                        } else {
                            &self.cfg.bind_dn
                        }
                    ),
                })
            }
        };
        let Some(entry) = entry else {
            return Ok(None);
        };
        let mut attrs = lowercase_keys(entry.attrs);
        let uid = attrs.remove("uid").unwrap_or_default();
        if !uid.iter().any(|u| u == user.as_str()) {
            return Ok(None);
        }
        Ok(Some(Entry::from_attrs(attrs)))
    }

    fn server_name(&self) -> String {
        self.host
            .borrow()
            .as_ref()
            .or(self.admin.borrow().as_ref())
            .map(|s| s.uri.clone())
            .unwrap_or_else(|| self.cfg.uris.join(", "))
    }

    /// The entry, from the cache if it is this user's, else read (and cached).
    fn entry(&self, user: &UserName) -> Result<Option<Entry>, StoreError> {
        if let Some((who, entry)) = self.cache.borrow().as_ref() {
            if who == user {
                return Ok(Some(entry.clone()));
            }
        }
        let entry = self.read_entry(user)?;
        if let Some(entry) = &entry {
            *self.cache.borrow_mut() = Some((user.clone(), entry.clone()));
        }
        Ok(entry)
    }

    /// The record, remembered as the one this store's next lock of the user
    /// must still find (see [`LdapLock::read_state`]).
    pub fn load_record(&self, user: &UserName) -> Result<Option<UserRecord>, StoreError> {
        let Some(entry) = self.entry(user)? else {
            return Ok(None);
        };
        let Some(text) = entry.record else {
            return Ok(None);
        };
        let record =
            UserRecord::parse(&text).map_err(|e| StoreError::Corrupt(self.entry_dn(user), e))?;
        *self.loaded.borrow_mut() = Some((user.clone(), text));
        Ok(Some(record))
    }

    pub fn peek_state(&self, user: &UserName) -> Result<StateRead, StoreError> {
        Ok(match self.entry(user)? {
            Some(entry) => entry.state_read(&self.entry_dn(user)),
            None => StateRead {
                state: LoginState::new(),
                problem: None,
            },
        })
    }

    /// A session on the user's entry. Nothing read before (the cache of a
    /// read before a prompt) is trusted: its first read goes to the server.
    pub fn lock(&self, user: &UserName) -> Result<LdapLock<'_>, StoreError> {
        *self.cache.borrow_mut() = None;
        let expected = match self.loaded.borrow().as_ref() {
            Some((who, text)) if who == user => Some(text.clone()),
            _ => None,
        };
        Ok(LdapLock {
            store: self,
            user: user.clone(),
            known: RefCell::new(Known::Unread),
            expected: RefCell::new(expected),
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
            (SERIAL_ATTR.to_owned(), vec![initial_serial()?.to_string()]),
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
    known: RefCell<Known>,
    /// The record the caller loaded before taking this lock, if it did: a
    /// read that finds another (a reset and a new enrollment meanwhile)
    /// stops every write, so no answer is checked against a secret that is
    /// no longer the user's.
    expected: RefCell<Option<Zeroizing<String>>>,
}

/// What the lock knows of the entry's state.
enum Known {
    /// Nothing read yet: a write reads the serial first (a caller that
    /// replaces the whole state without looking, such as an enrollment).
    Unread,
    /// The serial read or written last (`None`: the entry has none).
    Serial(Option<i64>),
    /// A read failed, found another record, or a write lost its race: no
    /// write until a read succeeds. A state that was not read must never
    /// replace the one that is there (it would forget the last step used,
    /// the failures and the lockout).
    Unusable(String),
}

impl LdapLock<'_> {
    pub fn user(&self) -> &UserName {
        &self.user
    }

    pub fn read_state(&self) -> StateRead {
        let dn = self.store.entry_dn(&self.user);
        let (known, read) = match self.store.read_entry(&self.user) {
            Ok(Some(entry)) => match &*self.expected.borrow() {
                Some(expected)
                    if entry.record.as_ref().map(|r| r.as_str()) != Some(expected.as_str()) =>
                {
                    (
                        Known::Unusable(format!(
                            "the enrollment in {dn} changed during this login"
                        )),
                        None,
                    )
                }
                _ => (Known::Serial(entry.serial), Some(entry.state_read(&dn))),
            },
            Ok(None) if self.expected.borrow().is_some() => (
                Known::Unusable(format!("{dn} was removed during this login")),
                None,
            ),
            Ok(None) => (Known::Serial(None), None),
            Err(e) => (
                Known::Unusable(format!("the login state could not be read: {e}")),
                None,
            ),
        };
        let problem = match &known {
            Known::Unusable(why) => Some(why.clone()),
            _ => None,
        };
        *self.known.borrow_mut() = known;
        read.unwrap_or(StateRead {
            state: LoginState::new(),
            problem,
        })
    }

    pub fn write_state(&self, state: &LoginState) -> Result<(), StoreError> {
        let dn = self.store.entry_dn(&self.user);
        let serial = match &*self.known.borrow() {
            Known::Serial(serial) => Some(*serial),
            Known::Unusable(why) => {
                return Err(StoreError::Unavailable(format!(
                    "{why}; the state there is not replaced"
                )))
            }
            Known::Unread => None,
        };
        let serial = match serial {
            Some(serial) => serial,
            None => match self.store.read_entry(&self.user)? {
                Some(entry) => entry.serial,
                None => return Err(no_entry(&dn)),
            },
        };
        // TOML's integers end at i64::MAX; so do the state's (see
        // LoginState::to_toml), so refuse what the files backend refuses.
        state
            .to_toml()
            .map_err(|e| StoreError::Unavailable(format!("state of {}: {e}", self.user)))?;
        let next = match serial {
            None => initial_serial()?,
            Some(old) => old.checked_add(1).ok_or_else(|| {
                StoreError::Unavailable(format!("{SERIAL_ATTR} of {dn} is at its end"))
            })?,
        };
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
                *self.known.borrow_mut() = Known::Serial(Some(next));
                Ok(())
            }
            rc::NO_SUCH_ATTRIBUTE | rc::CONSTRAINT_VIOLATION => {
                *self.known.borrow_mut() =
                    Known::Unusable("another writer came first; read again".into());
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
        let serial = initial_serial()?;
        let added = self.store.with_session(Identity::Admin, |s| {
            let attrs = vec![
                ("objectClass".to_owned(), set([OBJECT_CLASS.to_owned()])),
                ("uid".to_owned(), set([user])),
                (SERIAL_ATTR.to_owned(), set([serial.to_string()])),
                (RECORD_ATTR.to_owned(), set([text.clone()])),
            ];
            s.conn.with_timeout(s.timeout).add(&dn, attrs)
        })?;
        if added.rc == rc::ENTRY_ALREADY_EXISTS {
            // Names match without case in LDAP: replace only this user's own.
            if self.store.read_entry(&self.user)?.is_none() {
                return Err(StoreError::Unavailable(format!(
                    "{dn} belongs to another spelling of {}; not replaced",
                    self.user
                )));
            }
            let replaced = self.store.with_session(Identity::Admin, |s| {
                s.conn.with_timeout(s.timeout).modify(
                    &dn,
                    vec![Mod::Replace(RECORD_ATTR.to_owned(), set([text.clone()]))],
                )
            })?;
            if replaced.rc != 0 {
                return Err(self.store.refused(&dn, &replaced));
            }
        } else if added.rc != 0 {
            return Err(self.store.refused(&dn, &added));
        }
        *self.known.borrow_mut() = Known::Unread;
        *self.store.loaded.borrow_mut() = Some((self.user.clone(), Zeroizing::new(text.clone())));
        *self.expected.borrow_mut() = Some(Zeroizing::new(text));
        Ok(())
    }

    pub fn remove_all(&self) -> Result<bool, StoreError> {
        let dn = self.store.entry_dn(&self.user);
        if self.store.read_entry(&self.user)?.is_none() {
            return Ok(false);
        }
        let result = self.store.with_session(Identity::Admin, |s| {
            s.conn.with_timeout(s.timeout).delete(&dn)
        })?;
        *self.known.borrow_mut() = Known::Serial(None);
        *self.expected.borrow_mut() = None;
        *self.store.loaded.borrow_mut() = None;
        match result.rc {
            0 => Ok(true),
            rc::NO_SUCH_OBJECT => Ok(false),
            _ => Err(self.store.refused(&dn, &result)),
        }
    }
}

/// The serial of a new entry: random, so that an entry removed and made
/// again does not start where the old one did, and a compare-and-swap
/// begun on the old one cannot succeed on the new one.
fn initial_serial() -> Result<i64, StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Unavailable(format!("no random serial: {e}")))?;
    // 40 bits: far from the end, however many writes follow.
    Ok(i64::from_le_bytes(bytes) & ((1 << 40) - 1))
}

/// Whether two DNs name the same entry, for the forms servers return
/// (case and spaces after separators aside).
fn same_dn(a: &str, b: &str) -> bool {
    let norm = |dn: &str| -> String {
        dn.split(',')
            .map(|rdn| {
                rdn.split('=')
                    .map(|part| part.trim().to_ascii_lowercase())
                    .collect::<Vec<_>>()
                    .join("=")
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    !a.trim().is_empty() && norm(a) == norm(b)
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

impl LdapStore {
    fn refused(&self, dn: &str, result: &ldap3::LdapResult) -> StoreError {
        StoreError::Ldap {
            server: self.server_name(),
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
