//! `pam_totp_ldap.so`: pam_totp with the LDAP store. The same glue as
//! `pam_totp.so` (the files are shared), plus `totp_ldap`. `pam_totp.so`
//! hands it every login whose config says `[store] backend = "ldap"`; it
//! may also be named in a PAM stack directly.

#[path = "../../pam_module/src/conv.rs"]
mod conv;
#[path = "../../pam_module/src/glue.rs"]
mod glue;
#[path = "../../pam_module/src/helper.rs"]
mod helper;

use pamsm::{pam_module, Pam, PamError, PamFlags, PamServiceModule};

pam_module!(glue::PamTotp);

/// Make the LDAP store available to the login flow.
fn setup() {
    totp_core::store::set_ldap_opener(totp_ldap::open);
}

/// Never reached: with the LDAP store registered, the login flow has
/// nothing to hand on. Deny, and say so.
fn delegate(pamh: Pam, _: PamFlags, _: &[String]) -> PamError {
    glue::log_denied(
        &pamh,
        "internal error: LDAP store not registered; login denied",
    );
    PamError::AUTH_ERR
}
