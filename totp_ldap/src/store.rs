//! The store: reads before the prompt, `list_users`, `add_entry`, and
//! the [`Backend`] the module and `totpctl` use.

use crate::connect::Session;
use crate::connect::{Budget, LIST_BUDGET};
use crate::dn::same_dn;
use crate::entry::{initial_serial, judge, parse_entry, state_values, unreadable, Entry};
use crate::lock::{Known, LdapLock};
use crate::{rc, Identity, OBJECT_CLASS, RECORD_ATTR, SERIAL_ATTR, STATE_ATTRS};
use ldap3::adapters::{EntriesOnly, PagedResults};
use ldap3::{dn_escape, Scope};
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use totp_core::config::LdapConfig;
use totp_core::names::UserName;
use totp_core::record::UserRecord;
use totp_core::state::LoginState;
use totp_core::store::{Backend, BackendLock, StateRead, StoreError};
use zeroize::Zeroizing;

/// The filter that is true of every entry (RFC 4526), so that no access
/// rule on an attribute can keep an entry out of a search.
const ALWAYS_TRUE: &str = "(&)";

/// How many entries a page of `list_users` asks for (below slapd's default
/// size limit of 500).
const PAGE_SIZE: i32 = 400;

#[derive(Debug)]
pub struct LdapStore {
    pub(crate) cfg: LdapConfig,
    pub(crate) host: RefCell<Option<Session>>,
    pub(crate) admin: RefCell<Option<Session>>,
    pub(crate) tls: RefCell<Option<Arc<rustls::ClientConfig>>>,
    /// The entry read last by [`LdapStore::load_record`] or
    /// [`LdapStore::peek_state`], so that a login reads it once before its
    /// prompt. Locks never use it.
    pub(crate) cache: RefCell<Option<(UserName, Entry)>>,
    /// The record text [`LdapStore::load_record`] returned last: a lock of
    /// that user refuses to write if the entry no longer holds it.
    pub(crate) loaded: RefCell<Option<(UserName, Zeroizing<String>)>>,
    /// Servers that failed before one answered, for `failover_notes`.
    pub(crate) notes: RefCell<Vec<String>>,
    /// The time with the directory left to this login.
    pub(crate) budget: Budget,
    /// `otp.window` and `otp.look_ahead`, for the parameters entries of the
    /// directory-checked mode (see [`LdapStore::with_otp_limits`]).
    pub(crate) otp_limits: (u32, u32),
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
            budget: Budget::new(cfg.timeout_ms, cfg.uris.len()),
            otp_limits: {
                let otp = totp_core::config::OtpConfig::default();
                (otp.window, otp.look_ahead)
            },
        }
    }

    /// The window and look-ahead that new directory-checked tokens get
    /// (`otp.window`, `otp.look_ahead` of the config).
    pub fn with_otp_limits(mut self, otp: &totp_core::config::OtpConfig) -> Self {
        self.otp_limits = (otp.window, otp.look_ahead);
        self
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

    /// Read a user's entry; `None` if there is none.
    ///
    /// The search is of the entry itself (base scope) with the filter that
    /// is always true (`(&)`, RFC 4526), so that access rules hiding an
    /// attribute cannot hide the entry: what came back is then judged
    /// ([`judge`]), and an entry whose record this bind cannot read is an
    /// error.
    ///
    /// "No such object" means "not enrolled" only when the server names the
    /// base as the closest entry it has: the shipped access rules answer the
    /// same code to a bind that may not read the subtree at all (a host
    /// bind outside ou=totp-hosts, a wrong base_dn), and taking that for
    /// "not enrolled" would let a transition policy skip the code for
    /// everyone.
    pub(crate) fn read_entry(&self, user: &UserName) -> Result<Option<Entry>, StoreError> {
        self.begin(user);
        let dn = self.entry_dn(user);
        let mut attrs = vec!["objectClass", "uid", self.record_attr(), SERIAL_ATTR];
        attrs.extend(STATE_ATTRS);
        let base = self.cfg.base_dn.clone();
        let found = self.with_session(Identity::Host, |s| {
            let result =
                s.conn
                    .with_timeout(s.timeout)
                    .search(&dn, Scope::Base, ALWAYS_TRUE, &attrs)?;
            if result.1.rc == rc::NO_SUCH_OBJECT {
                return Ok(Err(result.1.matched.clone()));
            }
            let (entries, _) = result.success()?;
            Ok(Ok(entries.into_iter().next()))
        })?;
        let entry = match found {
            // Found, but not returned: the access rules hide the entry
            // itself, and the filter that is always true cannot fail.
            Ok(None) => return Err(self.hidden(&dn, "the search returned no entry")),
            Ok(Some(entry)) => entry,
            Err(matched) if same_dn(&matched, &base) => return Ok(None),
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
        let refused = |why: String| StoreError::Ldap {
            server: self.server_name(),
            error: format!("{dn}: {why}"),
        };
        let (_, attrs) = parse_entry(entry.0).map_err(refused)?;
        judge(user, attrs, self.record_attr()).map_err(|why| self.hidden(&dn, &why))
    }

    /// The error of an entry that is there but cannot be read whole.
    fn hidden(&self, dn: &str, why: &str) -> StoreError {
        StoreError::Ldap {
            server: self.server_name(),
            error: format!(
                "{dn} is there but {why}: access rules that hide it from {}? Refused, never \
                 taken for 'not enrolled'",
                if self.cfg.bind_dn.is_empty() {
                    "this bind"
                } else {
                    &self.cfg.bind_dn
                }
            ),
        }
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
        // An entry this bind sees without this mode's record is an error,
        // never "not enrolled": an entry of the other mode (not migrated, or
        // migrated while this host still checks codes itself), or access
        // rules that hide the record.
        let Some(text) = entry.record else {
            return Err(StoreError::Ldap {
                server: self.server_name(),
                error: format!(
                    "{} has no {} that this bind can read (ldap.verify = \"{}\": an entry \
                     of the other mode, or access rules that hide it)",
                    self.entry_dn(user),
                    self.record_attr(),
                    if self.checks_in_directory() {
                        "directory"
                    } else {
                        "host"
                    },
                ),
            });
        };
        let record = if self.checks_in_directory() {
            UserRecord::parse_public(&text)
        } else {
            UserRecord::parse(&text)
        }
        .map_err(|e| StoreError::Corrupt(self.entry_dn(user), e))?;
        *self.loaded.borrow_mut() = Some((user.clone(), text));
        Ok(Some(record))
    }

    pub fn peek_state(&self, user: &UserName) -> Result<StateRead, StoreError> {
        Ok(match self.entry(user)? {
            Some(entry) => entry.state_read(&self.entry_dn(user)),
            None => StateRead {
                state: LoginState::new(),
                problem: None,
                lost: false,
            },
        })
    }

    /// A session on the user's entry. Its first read takes the entry read
    /// before the prompt, if any, rather than asking again: a login then
    /// makes three requests (the read, the failure, the success). That
    /// entry may be stale, and nothing is decided on it alone: the first
    /// write is a compare-and-swap on the serial it holds, which every
    /// change to the entry moves on (a login's write, an unlock, a new
    /// record), so a stale read makes that write fail, and the state is
    /// read from the server and decided again.
    pub fn lock(&self, user: &UserName) -> Result<LdapLock<'_>, StoreError> {
        self.begin(user);
        let peeked = match self.cache.borrow_mut().take() {
            Some((who, entry)) if &who == user => Known::Peeked(Box::new(entry)),
            _ => Known::Unread,
        };
        let expected = match self.loaded.borrow().as_ref() {
            Some((who, text)) if who == user => Some(text.clone()),
            _ => None,
        };
        Ok(LdapLock {
            store: self,
            user: user.clone(),
            known: RefCell::new(peeked),
            expected: RefCell::new(expected),
            fresh_hotp: std::cell::Cell::new(false),
        })
    }

    /// Every name under the base, within `LIST_BUDGET` (10) times
    /// `timeout_ms` as a whole (and `timeout_ms` for each page).
    pub fn list_users(&self) -> Result<Vec<UserName>, StoreError> {
        let base = self.cfg.base_dn.clone();
        let limit = Duration::from_millis(self.cfg.timeout_ms).saturating_mul(LIST_BUDGET);
        self.budget.renew(None, limit);
        let deadline = Instant::now() + limit;
        let names = self.with_session(Identity::Host, |s| {
            let adapters: Vec<Box<dyn ldap3::adapters::Adapter<_, _>>> = vec![
                Box::new(EntriesOnly::new()),
                Box::new(PagedResults::new(PAGE_SIZE)),
            ];
            let mut stream = s.conn.with_timeout(s.timeout).streaming_search_with(
                adapters,
                &base,
                Scope::OneLevel,
                ALWAYS_TRUE,
                vec!["uid"],
            )?;
            let mut names = Vec::new();
            while let Some(entry) = stream.next()? {
                if Instant::now() > deadline {
                    return Ok(Err(format!(
                        "the list of users took longer than {} ms",
                        limit.as_millis()
                    )));
                }
                match parse_entry(entry.0) {
                    Ok((_, mut attrs)) => names.extend(attrs.remove("uid").unwrap_or_default()),
                    Err(e) => return Ok(Err(e)),
                }
            }
            stream.result().success()?;
            Ok(Ok(names))
        })?;
        let names = names.map_err(|error| {
            let server = self.server_name();
            // A listing left half read: no later request shares its session.
            *self.host.borrow_mut() = None;
            StoreError::Ldap { server, error }
        })?;
        let mut users: Vec<UserName> = names
            .iter()
            .filter_map(|n| UserName::parse(n.as_bytes()).ok())
            .collect();
        users.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        users.dedup();
        Ok(users)
    }

    /// Every entry under the base read as a login reads it (for `totpctl
    /// check`): the first whose object class, `uid` or record this host's
    /// bind cannot read, with why; `None` when every one reads whole.
    pub fn first_unreadable(&self) -> Result<Option<String>, StoreError> {
        let base = self.cfg.base_dn.clone();
        let limit = Duration::from_millis(self.cfg.timeout_ms).saturating_mul(LIST_BUDGET);
        self.budget.renew(None, limit);
        let entries = self.with_session(Identity::Host, |s| {
            let (entries, _) = s
                .conn
                .with_timeout(s.timeout)
                .search(
                    &base,
                    Scope::OneLevel,
                    ALWAYS_TRUE,
                    vec!["objectClass", "uid", self.record_attr()],
                )?
                .success()?;
            Ok(entries)
        })?;
        for entry in entries {
            let (dn, attrs) = parse_entry(entry.0).map_err(|error| StoreError::Ldap {
                server: self.server_name(),
                error,
            })?;
            // Only user entries (uid=...): the directory-checked mode keeps
            // its policy and parameters entries beside them.
            if !dn
                .get(..4)
                .is_some_and(|rdn| rdn.eq_ignore_ascii_case("uid="))
            {
                continue;
            }
            if let Some(why) = unreadable(&attrs, self.record_attr()) {
                return Ok(Some(format!("{dn} is there but {why}")));
            }
        }
        Ok(None)
    }

    /// Add a whole entry (record and state) as the admin, for `migrate`.
    /// Returns false, writing nothing, if the user already has one.
    pub fn add_entry(
        &self,
        user: &UserName,
        record: &UserRecord,
        state: &LoginState,
    ) -> Result<bool, StoreError> {
        self.begin(user);
        if self.checks_in_directory() {
            return self.add_directory_entry(user, record, state);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
