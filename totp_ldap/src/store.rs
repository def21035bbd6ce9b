//! The store: reads before the prompt, `list_users`, `add_entry`, and
//! the [`Backend`] the module and `totpctl` use.

use crate::connect::Session;
use crate::dn::same_dn;
use crate::entry::{initial_serial, lowercase_keys, state_values, Entry};
use crate::lock::{Known, LdapLock};
use crate::{rc, Identity, OBJECT_CLASS, RECORD_ATTR, SERIAL_ATTR, STATE_ATTRS};
use ldap3::adapters::{EntriesOnly, PagedResults};
use ldap3::{dn_escape, Scope, SearchEntry};
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;
use totp_core::config::LdapConfig;
use totp_core::names::UserName;
use totp_core::record::UserRecord;
use totp_core::state::LoginState;
use totp_core::store::{Backend, BackendLock, StateRead, StoreError};
use zeroize::Zeroizing;

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

    /// Read a user's entry; `None` if there is none.
    ///
    /// "No such object" means "not enrolled" only when the server names the
    /// base as the closest entry it has: the shipped access rules answer the
    /// same code to a bind that may not read the subtree at all (a host
    /// bind outside ou=totp-hosts, a wrong base_dn), and taking that for
    /// "not enrolled" would let a transition policy skip the code for
    /// everyone. An entry whose `uid` is another spelling of the name
    /// (LDAP matches names without case; Unix does not) is not this user's.
    pub(crate) fn read_entry(&self, user: &UserName) -> Result<Option<Entry>, StoreError> {
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
                lost: false,
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
