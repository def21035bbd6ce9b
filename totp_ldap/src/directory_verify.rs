//! `ldap.verify = "directory"`: slapd's otp overlay checks the codes, and no
//! host holds a seed.
//!
//! **The entry.** One per user, `uid=USER,<base_dn>`, as in the host-checked
//! mode, and the user's token is that same entry:
//!
//! - `totpUser` with `totpPublicRecord` (the record without its secret:
//!   type, digits, period, recovery code hashes) and the login state with
//!   its `totpSerial`, as in the host-checked mode;
//! - `oathTOTPUser` + `oathTOTPToken` (HOTP: `oathHOTPUser` +
//!   `oathHOTPToken`), with `oathTOTPToken` naming the entry itself,
//!   `oathSecret` (the raw seed, which no host can read),
//!   `oathTOTPLastTimeStep` (HOTP: `oathHOTPCounter`), written by the
//!   overlay when it accepts a code;
//! - `oathTOTPParams` naming a shared parameters entry,
//!   `cn=totp-params-sha1-6-30-w1,<base_dn>` (algorithm, digits, period,
//!   window), kept apart because the overlay reads the drift it learns from
//!   there and writes it to the token (OpenLDAP 2.5): so it never takes
//!   effect, and no skew is learned behind the hosts' backs;
//! - `userPassword`: a salted hash of the public [`CHECK_PASSWORD`] (never
//!   the cleartext, which would let SASL binds in with no code at all), and
//!   `pwdPolicySubentry` naming `cn=totp-policy,<base_dn>` (slapo-ppolicy's
//!   cap on wrong binds).
//!
//! Why one entry and not a separate token entry: enrollment, reset and
//! migration each stay one LDAP operation, which the server applies whole or
//! not at all. A host-checked entry becomes a directory-checked one in one
//! Modify guarded by its `totpSerial`, so no login can slip in between the
//! copy of its last step and the removal of its secret (see
//! [`LdapStore::convert_to_directory`]). The access rules keep the seed
//! attributes from every host (`ldap/directory.conf`).
//!
//! **A check.** The host binds as the user's entry with [`CHECK_PASSWORD`]
//! followed by the code, on the session that writes the state (so on the
//! same server: the overlay's write does not replicate), binds back as
//! itself, and reads the step or counter the overlay recorded. What that
//! means for the login is decided in [`totp_core::directory_check`].

use crate::entry::{initial_serial, parse_entry, state_from_attrs, state_values, Attrs};
use crate::lock::{no_entry, Known};
use crate::{
    rc, Identity, LdapLock, LdapStore, OBJECT_CLASS, RECORD_ATTR, SERIAL_ATTR, STATE_ATTRS,
};
use ldap3::{LdapError, Mod, Scope};
use sha1::{Digest, Sha1};
use std::collections::HashSet;
use totp_core::config::Verify;
use totp_core::directory_check::Verdict;
use totp_core::names::UserName;
use totp_core::otp::{Algorithm, Code, OtpType};
use totp_core::record::UserRecord;
use totp_core::state::LoginState;
use totp_core::store::StoreError;
use zeroize::Zeroizing;

/// The part of the bind password before the code. Public by design: the
/// secret is the seed, which only the directory has. The overlay wants a
/// password part, and it must not be empty.
pub const CHECK_PASSWORD: &str = "pam_totp-directory";
/// The record without its secret, which hosts read.
pub const PUBLIC_RECORD_ATTR: &str = "totpPublicRecord";
/// The password policy every user entry names (`ldap/directory-entries.ldif`).
pub const POLICY_RDN: &str = "cn=totp-policy";
/// What the overlay records of a TOTP success: the step it accepted.
pub const TOTP_LAST_STEP: &str = "oathTOTPLastTimeStep";
/// What the overlay records of a HOTP success: the counter it accepted.
pub const HOTP_COUNTER: &str = "oathHOTPCounter";
/// Attributes no host may ever read: the seeds (checked by `totpctl check`
/// and by the tests, as a stolen host would look).
pub const KEY_ATTRS: [&str; 4] = ["oathSecret", "totpRecord", "oathTokenPIN", "oathEncKey"];

/// An attribute and its values, as ldap3's Add and Modify take them.
type Attr = (Vec<u8>, HashSet<Vec<u8>>);

/// LDAP's invalidCredentials: a wrong, used or late code, or a locked entry.
const INVALID_CREDENTIALS: u32 = 49;

impl LdapStore {
    /// The attributes of an entry a server sent, checked as they are taken
    /// apart (a malformed entry is an error, never a panic).
    fn parsed(&self, entry: ldap3::ResultEntry) -> Result<Attrs, StoreError> {
        parse_entry(entry.0)
            .map(|(_, attrs)| attrs)
            .map_err(|error| StoreError::Ldap {
                server: self.server_name(),
                error,
            })
    }

    /// Whether the directory checks the codes (`ldap.verify = "directory"`).
    pub fn checks_in_directory(&self) -> bool {
        self.cfg.verify == Verify::Directory
    }

    /// The attribute that holds the record hosts read in this mode.
    pub(crate) fn record_attr(&self) -> &'static str {
        if self.checks_in_directory() {
            PUBLIC_RECORD_ATTR
        } else {
            RECORD_ATTR
        }
    }

    /// `cn=totp-policy,<base_dn>`.
    pub fn policy_dn(&self) -> String {
        format!("{POLICY_RDN},{}", self.cfg.base_dn)
    }

    /// The shared parameters entry of a record's kind of token, with this
    /// host's window (TOTP) or look-ahead (HOTP).
    pub fn params_dn(&self, record: &UserRecord, window: u32, look_ahead: u32) -> String {
        let p = record.params;
        let alg = p.algorithm.to_string().to_ascii_lowercase();
        match record.kind {
            OtpType::Totp => format!(
                "cn=totp-params-{alg}-{}-{}-w{window},{}",
                p.digits, p.period, self.cfg.base_dn
            ),
            OtpType::Hotp => format!(
                "cn=hotp-params-{alg}-{}-la{look_ahead},{}",
                p.digits, self.cfg.base_dn
            ),
        }
    }

    /// Add the parameters entry of `record` if the directory has none yet.
    fn ensure_params(&self, record: &UserRecord) -> Result<String, StoreError> {
        let (window, look_ahead) = self.otp_limits;
        let dn = self.params_dn(record, window, look_ahead);
        let cn = dn
            .split_once(',')
            .and_then(|(rdn, _)| rdn.strip_prefix("cn="))
            .unwrap_or_default()
            .to_owned();
        let p = record.params;
        let mut attrs: Vec<Attr> = vec![
            attr("cn", [cn]),
            attr("oathOTPLength", [p.digits.to_string()]),
            attr("oathHMACAlgorithm", [hmac_oid(p.algorithm).to_owned()]),
        ];
        match record.kind {
            OtpType::Totp => {
                attrs.push(attr("objectClass", ["device", "oathTOTPParams"]));
                attrs.push(attr("oathTOTPTimeStepPeriod", [p.period.to_string()]));
                attrs.push(attr("oathTOTPTimeStepWindow", [window.to_string()]));
            }
            OtpType::Hotp => {
                attrs.push(attr("objectClass", ["device", "oathHOTPParams"]));
                attrs.push(attr("oathHOTPLookAhead", [look_ahead.to_string()]));
            }
        }
        let added = self.with_session(Identity::Admin, |s| {
            s.conn.with_timeout(s.timeout).add(&dn, attrs)
        })?;
        match added.rc {
            0 | rc::ENTRY_ALREADY_EXISTS => Ok(dn),
            _ => Err(self.refused(&dn, &added)),
        }
    }

    /// The attributes that make `uid=USER` a token the overlay checks, for
    /// `record` (whose secret must be in hand), starting from `state` (the
    /// last step or counter used, so no used code comes back).
    pub(crate) fn token_attrs(
        &self,
        user: &UserName,
        record: &UserRecord,
        state: &LoginState,
    ) -> Result<Vec<Attr>, StoreError> {
        if record.secret.is_held_by_directory() {
            return Err(StoreError::Unavailable(format!(
                "the secret of {user} is in the directory already; a token needs the secret in hand"
            )));
        }
        let dn = self.entry_dn(user);
        let params = self.ensure_params(record)?;
        let public = record
            .to_public_toml()
            .map_err(|e| StoreError::Unavailable(format!("record of {user}: {e}")))?;
        let (user_class, token_class, token_attr, params_attr) = match record.kind {
            OtpType::Totp => (
                "oathTOTPUser",
                "oathTOTPToken",
                "oathTOTPToken",
                "oathTOTPParams",
            ),
            OtpType::Hotp => (
                "oathHOTPUser",
                "oathHOTPToken",
                "oathHOTPToken",
                "oathHOTPParams",
            ),
        };
        let mut attrs = vec![
            attr("objectClass", [user_class, token_class]),
            attr(PUBLIC_RECORD_ATTR, [public]),
            attr(token_attr, [dn]),
            attr(params_attr, [params]),
            attr("userPassword", [check_password_hash()?]),
            attr("pwdPolicySubentry", [self.policy_dn()]),
            (
                b"oathSecret".to_vec(),
                HashSet::from([record.secret.as_bytes().to_vec()]),
            ),
        ];
        // What the overlay must refuse from the start: every step or counter
        // this user has used already.
        match record.kind {
            OtpType::Totp => {
                if let Some(step) = state.last_step {
                    attrs.push(attr(TOTP_LAST_STEP, [step.to_string()]));
                }
            }
            OtpType::Hotp => {
                if let Some(used) = state.hotp_next.and_then(|n| n.checked_sub(1)) {
                    attrs.push(attr(HOTP_COUNTER, [used.to_string()]));
                }
            }
        }
        Ok(attrs)
    }

    /// `add_entry` of this mode: a whole directory-checked entry.
    pub(crate) fn add_directory_entry(
        &self,
        user: &UserName,
        record: &UserRecord,
        state: &LoginState,
    ) -> Result<bool, StoreError> {
        let dn = self.entry_dn(user);
        let mut attrs = self.token_attrs(user, record, state)?;
        for (name, values) in &mut attrs {
            if name.as_slice() == b"objectClass" {
                values.insert(OBJECT_CLASS.as_bytes().to_vec());
            }
        }
        attrs.push(attr("uid", [user.as_str()]));
        attrs.push(attr(SERIAL_ATTR, [initial_serial()?.to_string()]));
        for (name, values) in state_values(state) {
            if !values.is_empty() {
                attrs.push((
                    name.as_bytes().to_vec(),
                    values.into_iter().map(String::into_bytes).collect(),
                ));
            }
        }
        self.with_session(Identity::Admin, |s| {
            let result = s.conn.with_timeout(s.timeout).add(&dn, attrs)?;
            if result.rc == rc::ENTRY_ALREADY_EXISTS {
                return Ok(false);
            }
            result.success().map(|_| true)
        })
    }

    /// Turn a host-checked entry into a directory-checked one, in one
    /// Modify guarded by its `totpSerial`: the secret leaves `totpRecord`
    /// for `oathSecret`, and the overlay starts from the last step or
    /// counter used. A login on any host meanwhile moves the serial on, and
    /// then nothing is written ([`StoreError::Conflict`]): read again and
    /// convert again. Returns false if the entry has no `totpRecord` (not
    /// host-checked, or already converted).
    pub fn convert_to_directory(&self, user: &UserName) -> Result<bool, StoreError> {
        let dn = self.entry_dn(user);
        let found = self.with_session(Identity::Admin, |s| {
            let (entries, _) = s
                .conn
                .with_timeout(s.timeout)
                .search(
                    &dn,
                    Scope::Base,
                    "(objectClass=totpUser)",
                    vec!["uid", RECORD_ATTR, SERIAL_ATTR],
                )?
                .success()?;
            Ok(entries.into_iter().next())
        })?;
        let Some(entry) = found else {
            return Ok(false);
        };
        let attrs = self.parsed(entry)?;
        if !attrs
            .get("uid")
            .is_some_and(|uids| uids.iter().any(|u| u == user.as_str()))
        {
            return Ok(false);
        }
        let Some(text) = attrs
            .get(&RECORD_ATTR.to_ascii_lowercase())
            .and_then(|v| v.first())
            .map(|t| Zeroizing::new(t.clone()))
        else {
            return Ok(false);
        };
        let serial: i64 = attrs
            .get(&SERIAL_ATTR.to_ascii_lowercase())
            .and_then(|v| v.first())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| StoreError::Corrupt(dn.clone(), format!("no valid {SERIAL_ATTR}")))?;
        let record = UserRecord::parse(&text).map_err(|e| StoreError::Corrupt(dn.clone(), e))?;
        // The state as of this serial: the Modify below applies only if the
        // serial is still this one.
        let state = self.read_state_at(user, serial)?;
        let next = serial.checked_add(1).ok_or_else(|| {
            StoreError::Unavailable(format!("{SERIAL_ATTR} of {dn} is at its end"))
        })?;
        let mut mods: Vec<Mod<Vec<u8>>> = vec![
            Mod::Delete(
                SERIAL_ATTR.as_bytes().to_vec(),
                set_of([serial.to_string()]),
            ),
            Mod::Add(SERIAL_ATTR.as_bytes().to_vec(), set_of([next.to_string()])),
            Mod::Delete(RECORD_ATTR.as_bytes().to_vec(), HashSet::new()),
        ];
        for (name, values) in self.token_attrs(user, &record, &state)? {
            mods.push(Mod::Add(name, values));
        }
        let result = self.with_session(Identity::Admin, |s| {
            s.conn.with_timeout(s.timeout).modify(&dn, mods)
        })?;
        match result.rc {
            0 => Ok(true),
            rc::NO_SUCH_ATTRIBUTE | rc::CONSTRAINT_VIOLATION => {
                Err(StoreError::Conflict(format!("the login state of {dn}")))
            }
            _ => Err(self.refused(&dn, &result)),
        }
    }

    /// The login state of `user`, read as the admin, if its serial is
    /// still `serial` (else a conflict).
    fn read_state_at(&self, user: &UserName, serial: i64) -> Result<LoginState, StoreError> {
        let dn = self.entry_dn(user);
        let mut names = vec![SERIAL_ATTR];
        names.extend(STATE_ATTRS);
        let entry = self.with_session(Identity::Admin, |s| {
            let (entries, _) = s
                .conn
                .with_timeout(s.timeout)
                .search(&dn, Scope::Base, "(objectClass=totpUser)", names)?
                .success()?;
            Ok(entries.into_iter().next())
        })?;
        let attrs = self.parsed(entry.ok_or_else(|| no_entry(&dn))?)?;
        let now_serial = attrs
            .get(&SERIAL_ATTR.to_ascii_lowercase())
            .and_then(|v| v.first())
            .and_then(|s| s.parse::<i64>().ok());
        if now_serial != Some(serial) {
            return Err(StoreError::Conflict(format!("the login state of {dn}")));
        }
        state_from_attrs(&attrs).map_err(|e| StoreError::Corrupt(dn, e))
    }
}

impl LdapStore {
    /// Clear slapo-ppolicy's lockout and failure count of `user`'s entry,
    /// as the admin (`totpctl unlock`). ppolicy drops the failure times
    /// (which no client may write) when `pwdAccountLockedTime` is deleted,
    /// and only then: so one Modify sets it and deletes it, which works
    /// whether the entry was locked or not. Nothing to do outside this mode.
    pub fn clear_password_lockout(&self, user: &UserName) -> Result<(), StoreError> {
        if !self.checks_in_directory() {
            return Ok(());
        }
        let dn = self.entry_dn(user);
        let result = self.with_session(Identity::Admin, |s| {
            s.conn.with_timeout(s.timeout).modify(
                &dn,
                vec![Mod::Replace(
                    b"pwdAccountLockedTime".to_vec(),
                    HashSet::new(),
                )],
            )
        })?;
        match result.rc {
            0 | rc::NO_SUCH_OBJECT => Ok(()),
            _ => Err(self.refused(&dn, &result)),
        }
    }
}

/// The RDN of the token `totpctl check` adds for a moment, as the admin,
/// to prove the overlays' order (see [`LdapStore::add_probe_token`]).
pub const PROBE_RDN: &str = "cn=pam_totp-check-probe";

impl LdapStore {
    /// Add a throwaway TOTP token under the base, with a fresh random seed
    /// that the caller gets back (it exists only for the check), the shipped
    /// password policy and the check password: `totpctl check` locks it
    /// with wrong binds and shows that a right code is then refused and not
    /// used up. Removed by [`LdapStore::remove_probe_token`].
    pub fn add_probe_token(&self) -> Result<(String, totp_core::secret::SecretBytes), StoreError> {
        use totp_core::otp::OtpParams;
        let dn = format!("{PROBE_RDN},{}", self.cfg.base_dn);
        let _ = self.remove_probe_token();
        let secret = totp_core::secret::SecretBytes::generate()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let params = OtpParams::new(Algorithm::SHA1, 6, 30).map_err(StoreError::Unavailable)?;
        let probe = UserRecord {
            status: totp_core::record::Status::Active,
            kind: OtpType::Totp,
            secret: totp_core::secret::SecretBytes::from_bytes(Zeroizing::new(
                secret.as_bytes().to_vec(),
            ))
            .map_err(|e| StoreError::Unavailable(e.to_string()))?,
            params,
            label: None,
            issuer: None,
            created_at: None,
            activated_at: None,
            recovery: Vec::new(),
            serial: None,
        };
        let params_dn = self.ensure_params(&probe)?;
        let attrs = vec![
            attr(
                "objectClass",
                [
                    "applicationProcess",
                    "simpleSecurityObject",
                    "oathTOTPUser",
                    "oathTOTPToken",
                ],
            ),
            attr("cn", [PROBE_RDN.trim_start_matches("cn=")]),
            attr("oathTOTPToken", [dn.as_str()]),
            attr("oathTOTPParams", [params_dn]),
            attr("userPassword", [check_password_hash()?]),
            attr("pwdPolicySubentry", [self.policy_dn()]),
            (
                b"oathSecret".to_vec(),
                HashSet::from([secret.as_bytes().to_vec()]),
            ),
        ];
        let added = self.with_session(Identity::Admin, |s| {
            s.conn.with_timeout(s.timeout).add(&dn, attrs)
        })?;
        if added.rc != 0 {
            return Err(self.refused(&dn, &added));
        }
        Ok((dn, secret))
    }

    /// Remove the probe token of [`LdapStore::add_probe_token`].
    pub fn remove_probe_token(&self) -> Result<(), StoreError> {
        let dn = format!("{PROBE_RDN},{}", self.cfg.base_dn);
        let result = self.with_session(Identity::Admin, |s| {
            s.conn.with_timeout(s.timeout).delete(&dn)
        })?;
        match result.rc {
            0 | rc::NO_SUCH_OBJECT => Ok(()),
            _ => Err(self.refused(&dn, &result)),
        }
    }
}

impl LdapLock<'_> {
    /// `write_record` of this mode, as the admin. A record whose secret is
    /// in hand (a new enrollment, an import) makes the entry a new token:
    /// its seed, parameters and password replaced, a HOTP counter started
    /// afresh, a TOTP entry keeping the last step the overlay accepted (the
    /// clock only moves on). A record read from the directory (its secret
    /// held there: an activation, new recovery codes) changes only
    /// `totpPublicRecord`.
    pub(crate) fn write_directory_record(&self, record: &UserRecord) -> Result<(), StoreError> {
        let store = self.store;
        let dn = store.entry_dn(&self.user);
        let public = record
            .to_public_toml()
            .map_err(|e| StoreError::Unavailable(format!("record of {}: {e}", self.user)))?;
        let exists = store.read_entry(&self.user)?.is_some();
        if !exists {
            if record.secret.is_held_by_directory() {
                return Err(no_entry(&dn));
            }
            if !store.add_directory_entry(&self.user, record, &LoginState::new())? {
                return Err(StoreError::Unavailable(format!(
                    "{dn} belongs to another spelling of {}; not replaced",
                    self.user
                )));
            }
        } else {
            let mut mods: Vec<Mod<Vec<u8>>> = Vec::new();
            if record.secret.is_held_by_directory() {
                mods.push(Mod::Replace(
                    PUBLIC_RECORD_ATTR.as_bytes().to_vec(),
                    HashSet::from([public.clone().into_bytes()]),
                ));
            } else {
                let gone: &[&str] = match record.kind {
                    OtpType::Totp => &["oathHOTPToken", "oathHOTPParams", HOTP_COUNTER],
                    OtpType::Hotp => &[
                        "oathTOTPToken",
                        "oathTOTPParams",
                        TOTP_LAST_STEP,
                        "oathTOTPTimeStepDrift",
                        HOTP_COUNTER,
                    ],
                };
                // A host-checked entry enrolled again here keeps no old seed.
                mods.push(Mod::Replace(
                    RECORD_ATTR.as_bytes().to_vec(),
                    HashSet::new(),
                ));
                for name in gone {
                    mods.push(Mod::Replace(name.as_bytes().to_vec(), HashSet::new()));
                }
                for (name, mut values) in
                    store.token_attrs(&self.user, record, &LoginState::new())?
                {
                    if name.as_slice() == b"objectClass" {
                        values.insert(OBJECT_CLASS.as_bytes().to_vec());
                    }
                    mods.push(Mod::Replace(name, values));
                }
            }
            let result = store.with_session(Identity::Admin, |s| {
                s.conn.with_timeout(s.timeout).modify(&dn, mods)
            })?;
            if result.rc != 0 {
                return Err(store.refused(&dn, &result));
            }
        }
        self.fresh_hotp
            .set(record.kind == OtpType::Hotp && !record.secret.is_held_by_directory());
        *self.known.borrow_mut() = Known::Unread;
        *store.loaded.borrow_mut() = Some((self.user.clone(), Zeroizing::new(public.clone())));
        *self.expected.borrow_mut() = Some(Zeroizing::new(public));
        Ok(())
    }

    /// A new HOTP token starts at the counter `state` expects next (an
    /// imported hardware token may be far along): the overlay's
    /// `oathHOTPCounter` is the last one used, so `next - 1`, written as
    /// the admin before that state.
    pub(crate) fn start_hotp_counter(&self, state: &LoginState) -> Result<(), StoreError> {
        let Some(used) = state.hotp_next.and_then(|n| n.checked_sub(1)) else {
            return Ok(());
        };
        let dn = self.store.entry_dn(&self.user);
        let result = self.store.with_session(Identity::Admin, |s| {
            s.conn.with_timeout(s.timeout).modify(
                &dn,
                vec![Mod::Replace(
                    HOTP_COUNTER.as_bytes().to_vec(),
                    HashSet::from([used.to_string().into_bytes()]),
                )],
            )
        })?;
        if result.rc != 0 {
            return Err(self.store.refused(&dn, &result));
        }
        Ok(())
    }

    /// Have the directory check `code`: bind as the user's entry with
    /// [`CHECK_PASSWORD`] and the code, on the session that writes the
    /// state; bind back as this host; on success read the step or counter
    /// the overlay recorded. Wrong, used, late and locked all answer
    /// invalidCredentials: [`Verdict::Refused`].
    pub fn check_code(&self, record: &UserRecord, code: &Code) -> Result<Verdict, StoreError> {
        let store = self.store;
        if !store.checks_in_directory() {
            return Err(StoreError::Unavailable(
                "ldap.verify is not \"directory\": this host checks codes itself".into(),
            ));
        }
        let dn = store.entry_dn(&self.user);
        let mut password = Zeroizing::new(String::with_capacity(CHECK_PASSWORD.len() + 8));
        password.push_str(CHECK_PASSWORD);
        password.push_str(
            std::str::from_utf8(code.as_bytes())
                .map_err(|_| StoreError::Unavailable("a code that is not text".into()))?,
        );
        let host_dn = store.cfg.bind_dn.clone();
        let host_password = store.password(&store.cfg.bind_password_file)?;
        let value_attr = match record.kind {
            OtpType::Totp => TOTP_LAST_STEP,
            OtpType::Hotp => HOTP_COUNTER,
        };
        let said = store.with_session(Identity::Host, |s| {
            let t = s.timeout;
            let bound = s.conn.with_timeout(t).simple_bind(&dn, &password)?;
            // Back to this host's identity whatever the answer: the state is
            // read and written as the host.
            let back = if host_dn.is_empty() {
                s.conn.with_timeout(t).sasl_external_bind()?
            } else {
                s.conn
                    .with_timeout(t)
                    .simple_bind(&host_dn, &host_password)?
            };
            back.success()?;
            match bound.rc {
                0 => {}
                INVALID_CREDENTIALS => return Ok(None),
                _ => return Err(LdapError::LdapResult { result: bound }),
            }
            let (entries, _) = s
                .conn
                .with_timeout(t)
                .search(&dn, Scope::Base, "(objectClass=*)", vec![value_attr])?
                .success()?;
            Ok(Some(entries.into_iter().next()))
        })?;
        let Some(entry) = said else {
            return Ok(Verdict::Refused);
        };
        let values = match entry {
            Some(entry) => self
                .store
                .parsed(entry)?
                .remove(&value_attr.to_ascii_lowercase())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        match values.as_slice() {
            [one] => one.parse().map(Verdict::Accepted).map_err(|_| {
                StoreError::Corrupt(dn.clone(), format!("{value_attr} is not a number"))
            }),
            _ => Err(StoreError::Ldap {
                server: store.server_name(),
                error: format!(
                    "{dn}: the directory accepted the code but this host cannot read \
                     {value_attr} (the access rules must let hosts read it)"
                ),
            }),
        }
    }
}

/// `{SSHA}` of [`CHECK_PASSWORD`], with a fresh salt: slapd compares a
/// simple bind's password with it, and SASL mechanisms that need the
/// cleartext (DIGEST-MD5, CRAM-MD5, SCRAM) find none.
pub fn check_password_hash() -> Result<String, StoreError> {
    let mut salt = [0u8; 8];
    getrandom::fill(&mut salt)
        .map_err(|e| StoreError::Unavailable(format!("no random salt: {e}")))?;
    let mut hasher = Sha1::new();
    hasher.update(CHECK_PASSWORD.as_bytes());
    hasher.update(salt);
    let mut bytes = hasher.finalize().to_vec();
    bytes.extend_from_slice(&salt);
    Ok(format!("{{SSHA}}{}", base64_encode(&bytes)))
}

/// The RFC 8018 OID of an algorithm's HMAC, as `oathHMACAlgorithm` wants it.
pub fn hmac_oid(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::SHA1 => "1.2.840.113549.2.7",
        Algorithm::SHA256 => "1.2.840.113549.2.9",
        Algorithm::SHA512 => "1.2.840.113549.2.11",
    }
}

fn attr<const N: usize, V: AsRef<[u8]>>(name: &str, values: [V; N]) -> Attr {
    (
        name.as_bytes().to_vec(),
        values.iter().map(|v| v.as_ref().to_vec()).collect(),
    )
}

fn set_of<const N: usize>(values: [String; N]) -> HashSet<Vec<u8>> {
    values.into_iter().map(String::into_bytes).collect()
}

/// Standard base64 with padding (RFC 4648), as LDIF and `{SSHA}` use it.
pub fn base64_encode(data: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_password_is_stored_salted_never_in_clear() {
        let a = check_password_hash().unwrap();
        let b = check_password_hash().unwrap();
        assert!(a.starts_with("{SSHA}") && a != b, "{a} {b}");
        assert!(!a.contains(CHECK_PASSWORD));
        // 20 bytes of SHA-1 and 8 of salt: 28 bytes, 40 base64 characters.
        assert_eq!(a.len(), "{SSHA}".len() + 40);
    }

    #[test]
    fn base64_matches_rfc_4648() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    }
}
