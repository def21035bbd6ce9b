//! The compare-and-swap session on one user's entry.

use crate::entry::{initial_serial, set, state_values, Entry};
use crate::store::LdapStore;
use crate::{rc, Identity, OBJECT_CLASS, RECORD_ATTR, SERIAL_ATTR};
use ldap3::Mod;
use std::cell::RefCell;
use totp_core::directory_check::Verdict;
use totp_core::names::UserName;
use totp_core::otp::Code;
use totp_core::record::UserRecord;
use totp_core::state::LoginState;
use totp_core::store::{BackendLock, StateRead, StoreError};
use zeroize::Zeroizing;

/// A user's session on the LDAP store: no lock, a remembered serial.
pub struct LdapLock<'a> {
    pub(crate) store: &'a LdapStore,
    pub(crate) user: UserName,
    pub(crate) known: RefCell<Known>,
    /// The record the caller loaded before taking this lock, if it did: a
    /// read that finds another (a reset and a new enrollment meanwhile)
    /// stops every write, so no answer is checked against a secret that is
    /// no longer the user's.
    pub(crate) expected: RefCell<Option<Zeroizing<String>>>,
    /// A HOTP token this lock just wrote (`ldap.verify = "directory"`): the
    /// first state written gives the directory its starting counter.
    pub(crate) fresh_hotp: std::cell::Cell<bool>,
}

/// What the lock knows of the entry's state.
pub(crate) enum Known {
    /// Nothing read yet: a write reads the serial first (a caller that
    /// replaces the whole state without looking, such as an enrollment).
    Unread,
    /// The entry as read before the prompt: the first read takes it
    /// instead of asking the server again. It may be stale; then the
    /// compare-and-swap of the first write fails (every change to the
    /// entry, the record's included, moves the serial on) and the state is
    /// read again.
    Peeked(Box<Entry>),
    /// The serial read or written last (`None`: the entry has none).
    Serial(Option<i64>),
    /// The serial of the entry read before the prompt, whose record the
    /// caller loaded: the first write asserts that the record is still
    /// that one (RFC 4528), as a read from the server would check, so an
    /// entry removed and made again by hand, with the same serial and
    /// another secret, takes no write and no code.
    Unconfirmed(Option<i64>),
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
        let (peeked, fresh) = match std::mem::replace(&mut *self.known.borrow_mut(), Known::Unread)
        {
            Known::Peeked(entry) => (Ok(Some(*entry)), false),
            _ => (self.store.read_entry(&self.user), true),
        };
        let (known, read) = match peeked {
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
                Some(_) if !fresh => (
                    Known::Unconfirmed(entry.serial),
                    Some(entry.state_read(&dn)),
                ),
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
            lost: problem.is_some(),
            problem,
        })
    }

    pub fn write_state(&self, state: &LoginState) -> Result<(), StoreError> {
        if self.fresh_hotp.take() {
            self.start_hotp_counter(state)?;
        }
        let dn = self.store.entry_dn(&self.user);
        let mut confirm = false;
        let serial = match &*self.known.borrow() {
            Known::Serial(serial) => Some(*serial),
            Known::Unconfirmed(serial) => {
                confirm = true;
                Some(*serial)
            }
            Known::Unusable(why) => {
                return Err(StoreError::Unavailable(format!(
                    "{why}; the state there is not replaced"
                )))
            }
            Known::Unread | Known::Peeked(_) => None,
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
        let assertion = match &*self.expected.borrow() {
            Some(record) if confirm => Some(record_assertion(self.store.record_attr(), record)),
            _ => None,
        };
        let result = self.store.with_session(Identity::Host, |s| {
            let conn = s.conn.with_timeout(s.timeout);
            if let Some(assertion) = assertion {
                conn.with_controls(assertion);
            }
            conn.modify(&dn, mods)
        })?;
        match result.rc {
            0 => {
                *self.known.borrow_mut() = Known::Serial(Some(next));
                Ok(())
            }
            rc::NO_SUCH_ATTRIBUTE | rc::CONSTRAINT_VIOLATION | rc::ASSERTION_FAILED => {
                *self.known.borrow_mut() =
                    Known::Unusable("another writer came first; read again".into());
                Err(StoreError::Conflict(format!("the login state of {dn}")))
            }
            rc::NO_SUCH_OBJECT => Err(no_entry(&dn)),
            _ => Err(self.store.refused(&dn, &result)),
        }
    }

    pub fn write_record(&self, record: &UserRecord) -> Result<(), StoreError> {
        if self.store.checks_in_directory() {
            return self.write_directory_record(record);
        }
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
            // A new serial with the new record: a login that read the old
            // one cannot write on (its compare-and-swap fails, it reads
            // again and finds the new record).
            let serial = initial_serial()?;
            let replaced = self.store.with_session(Identity::Admin, |s| {
                s.conn.with_timeout(s.timeout).modify(
                    &dn,
                    vec![
                        Mod::Replace(RECORD_ATTR.to_owned(), set([text.clone()])),
                        Mod::Replace(SERIAL_ATTR.to_owned(), set([serial.to_string()])),
                    ],
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

pub(crate) fn no_entry(dn: &str) -> StoreError {
    StoreError::Unavailable(format!("{dn} does not exist (reset meanwhile?)"))
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
    fn check_code(&self, record: &UserRecord, code: &Code) -> Result<Verdict, StoreError> {
        LdapLock::check_code(self, record, code)
    }
}

/// The critical assertion (RFC 4528) that the entry's record (in `attr`) is `record`,
/// every byte escaped (RFC 4515), so that any text makes a valid filter.
fn record_assertion(attr: &str, record: &str) -> ldap3::controls::RawControl {
    use std::fmt::Write;
    let mut filter = Zeroizing::new(String::with_capacity(record.len() * 3 + attr.len() + 3));
    filter.push('(');
    filter.push_str(attr);
    filter.push('=');
    for byte in record.bytes() {
        let _ = write!(filter, "\\{byte:02x}");
    }
    filter.push(')');
    let mut control = ldap3::controls::Assertion::new(filter.as_str());
    control.crit = true;
    control
}
