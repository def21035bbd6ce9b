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
//! - **Deadlines.** Every server gets at most `timeout_ms` to connect,
//!   finish TLS and bind, and every operation at most `timeout_ms` to
//!   answer; all of one login's waits share one budget of `timeout_ms`
//!   times the number of URIs (`connect::Budget`). A server that does not
//!   answer is reported by name and the next URI is tried; when none
//!   answers, or the budget is spent, the caller fails closed.
//! - **Reading fails closed.** An entry is searched for by its DN with the
//!   filter that is always true, and an entry whose record, `uid` or object
//!   class the bind cannot read is an error, never "not enrolled". Entries
//!   are taken apart by this crate (`entry::parse_entry`): a malformed one
//!   is an error, not a panic. The socket is connected here, with
//!   TCP_NODELAY (without it every TLS exchange stalls for the peer's
//!   delayed ACK), and trust comes only from `ca_file`.
//!
//! Where things are: `connect` (servers, TLS, deadlines, how errors are
//! told), `entry` (an entry's attributes to and from the login state),
//! `lock` (the compare-and-swap session, [`LdapLock`]), `store`
//! ([`LdapStore`]: reads before the prompt, listing, the [`Backend`]) and
//! `dn` (comparing the DNs a server returns); `directory_verify`
//! (`ldap.verify = "directory"`: the entry as a token that slapd's otp
//! overlay checks, so no host holds a seed).

#![forbid(unsafe_code)]

mod connect;
mod directory_verify;
mod dn;
mod entry;
mod lock;
mod store;

pub use connect::Session;
pub use directory_verify::{
    base64_encode, check_password_hash, hmac_oid, CHECK_PASSWORD, HOTP_COUNTER, KEY_ATTRS,
    POLICY_RDN, PROBE_RDN, PUBLIC_RECORD_ATTR, TOTP_LAST_STEP,
};
#[doc(hidden)]
pub use entry::{fuzz_entry, parse_search_entry, RawAttrs};
pub use lock::LdapLock;
pub use store::LdapStore;

use totp_core::config::Config;
use totp_core::store::{Backend, StoreError};

/// The object class of a user entry.
pub const OBJECT_CLASS: &str = "totpUser";
/// The record attribute, written only by the admin identity.
pub const RECORD_ATTR: &str = "totpRecord";
/// The state's version; every state write is a compare-and-swap on it.
pub const SERIAL_ATTR: &str = "totpSerial";
/// The login state, one attribute per field, in the order of
/// [`LoginState`](totp_core::state::LoginState).
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
    pub const ASSERTION_FAILED: u32 = 122;
}

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

/// The [`totp_core::store::Opener`] of the LDAP store: register it with
/// [`totp_core::store::set_ldap_opener`].
pub fn open(config: &Config) -> Result<Box<dyn Backend>, StoreError> {
    Ok(Box::new(
        LdapStore::new(&config.ldap).with_otp_limits(&config.otp),
    ))
}
