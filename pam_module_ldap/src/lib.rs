//! `pam_totp_ldap.so`: pam_totp with the LDAP store. The same glue as
//! `pam_totp.so` (the `pam_glue` crate), plus `totp_ldap`. `pam_totp.so`
//! hands it every login whose config says `[store] backend = "ldap"`; it
//! may also be named in a PAM stack directly.

use pam_glue::{PamTotp, Variant};
use pamsm::{pam_module, Pam, PamError, PamFlags, PamServiceModule};

pam_module!(PamTotp<Ldap>);

/// The files store and the LDAP store.
enum Ldap {}

impl Variant for Ldap {
    /// Make the LDAP store available to the login flow.
    fn setup() {
        totp_core::store::set_ldap_opener(totp_ldap::open);
    }

    /// Never reached: with the LDAP store registered, the login flow has
    /// nothing to hand on. Deny, and say so.
    fn delegate(pamh: Pam, _: PamFlags, _: &[String]) -> PamError {
        pam_glue::log_denied(
            &pamh,
            "internal error: LDAP store not registered; login denied",
        );
        PamError::AUTH_ERR
    }
}
