//! `totpctl check` on the LDAP store: the connection, TLS and the bind, and
//! that the directory's access rules are the ones the fleet relies on: this
//! host reads whole entries, cannot write secrets, and an anonymous bind
//! reads nothing.

use super::check::Findings;
use ldap3::{Mod, Scope};
use totp_ldap::{Identity, LdapStore, RECORD_ATTR};

/// A value no record has: deleting it changes nothing when allowed, and the
/// server answers insufficientAccess when the rules forbid the write.
const PROBE_VALUE: &str = "pam_totp check: this value is never stored";
const NO_SUCH_ATTRIBUTE: u32 = 16;
const NO_SUCH_OBJECT: u32 = 32;
const INSUFFICIENT_ACCESS: u32 = 50;
const OBJECT_CLASS_VIOLATION: u32 = 65;

pub(super) fn check(out: &mut Findings, ldap: &LdapStore) {
    let cfg = ldap.config();
    let base = cfg.base_dn.clone();
    // The connection, TLS and the host's bind, with the base readable.
    let found = ldap.probe(Identity::Host, |conn, timeout| {
        let result = conn.with_timeout(timeout).search(
            &base,
            Scope::Base,
            "(objectClass=*)",
            vec!["1.1"],
        )?;
        // The shipped rules answer noSuchObject to a bind that may not
        // read the base: not there, or not visible, alike.
        if result.1.rc == NO_SUCH_OBJECT {
            return Ok(0);
        }
        let (entries, _) = result.success()?;
        Ok(entries.len())
    });
    for note in ldap.failover_notes() {
        out.warning(format!(
            "LDAP server {note}. Logins fail over to the next URI, after its timeout. Fix: \
             start that server, or remove it from ldap.uris."
        ));
    }
    match found {
        Ok((uri, 1)) => out.ok(format!(
            "LDAP: {uri} answers{}, bound as {}, base {base} readable",
            if uri.starts_with("ldapi:") {
                ""
            } else {
                " over TLS"
            },
            cfg.bind_dn
        )),
        Ok((uri, _)) => {
            out.error(format!(
                "LDAP: {uri} answers, but the base {base} is not visible to {}. Every login \
                 through pam_totp is denied. Fix: create it, correct ldap.base_dn, or let the \
                 host bind read it (see ldap/acl.conf).",
                cfg.bind_dn
            ));
            return;
        }
        Err(e) => {
            out.error(format!(
                "{e}. Every login through pam_totp is denied until it answers. Fix: check \
                 ldap.uris, ldap.ca_file and the bind password file."
            ));
            return;
        }
    }
    if cfg.admin_bind_dn.is_empty() {
        out.ok(
            "LDAP: no admin bind on this host (ldap.admin_bind_dn): it logs users in, and \
             enrollment, resets and migrate are done from a host that has one",
        );
    } else {
        match ldap.probe(Identity::Admin, |_, _| Ok(())) {
            Ok((uri, ())) => out.ok(format!(
                "LDAP: {uri} accepts the admin bind {}",
                cfg.admin_bind_dn
            )),
            Err(e) => out.error(format!(
                "{e}. Enrollment and resets on this host fail. Fix: check \
                 ldap.admin_bind_dn and ldap.admin_bind_password_file."
            )),
        }
    }
    check_secret_write(out, ldap);
    check_anonymous(out, ldap, &base);
    if ldap.checks_in_directory() {
        super::check_directory::check(out, ldap);
    }
}

/// Every entry read as the host, as a login reads it: an entry whose
/// record, uid or object class the access rules hide from this host would
/// deny that user's logins here.
fn check_read(out: &mut Findings, ldap: &LdapStore) {
    match ldap.first_unreadable() {
        Ok(None) => out.ok("LDAP: this host reads every user entry whole, as a login does"),
        Ok(Some(why)) => out.error(format!(
            "LDAP: {why}. pam_totp denies that user's logins on this host. Fix: let the host \
             bind read the whole entry (see ldap/acl.conf)."
        )),
        Err(e) => out.error(format!("LDAP: cannot read the user entries: {e}")),
    }
}

/// The host bind must not be able to change a record (a secret): probed
/// on the first user's entry, or on the base when there is none yet.
fn check_secret_write(out: &mut Findings, ldap: &LdapStore) {
    let users = match ldap.list_users() {
        Ok(users) => users,
        Err(e) => {
            out.error(format!("cannot list the users: {e}"));
            return;
        }
    };
    check_read(out, ldap);
    let dn = users
        .first()
        .map_or_else(|| ldap.config().base_dn.clone(), |user| ldap.entry_dn(user));
    // Where the secret is: the record, or (checked by the directory) the seed.
    let secret_attr = if ldap.checks_in_directory() {
        "oathSecret"
    } else {
        RECORD_ATTR
    };
    let probed = ldap.probe(Identity::Host, |conn, timeout| {
        conn.with_timeout(timeout).modify(
            &dn,
            vec![Mod::Delete(
                secret_attr.to_owned(),
                [PROBE_VALUE.to_owned()].into_iter().collect(),
            )],
        )
    });
    match probed {
        Ok((_, r)) if r.rc == INSUFFICIENT_ACCESS => out.ok(format!(
            "LDAP: this host cannot write {secret_attr} (secrets)"
        )),
        Ok((_, r)) if [0, NO_SUCH_ATTRIBUTE, OBJECT_CLASS_VIOLATION].contains(&r.rc) => {
            out.error(format!(
                "LDAP: this host's bind {} may write {secret_attr}, the secrets: root on any host \
             could then enroll itself for anyone. Fix: install the access rules of \
             ldap/acl.conf (hosts write only the state attributes).",
                ldap.config().bind_dn
            ))
        }
        Ok((_, r)) => out.warning(format!(
            "LDAP: could not tell whether this host can write {secret_attr} (result code {})",
            r.rc
        )),
        Err(e) => out.warning(format!("LDAP: the write probe failed: {e}")),
    }
}

/// An anonymous bind must read nothing under the base.
fn check_anonymous(out: &mut Findings, ldap: &LdapStore, base: &str) {
    let probed = ldap.probe(Identity::Anonymous, |conn, timeout| {
        let result = conn.with_timeout(timeout).search(
            base,
            Scope::Subtree,
            "(objectClass=*)",
            vec!["uid", RECORD_ATTR],
        )?;
        Ok(result.0.len())
    });
    match probed {
        Ok((_, 0)) => out.ok("LDAP: an anonymous bind reads nothing under the base"),
        Ok((_, n)) => out.error(format!(
            "LDAP: an anonymous bind sees {n} entr{} under {base}. Fix: install the access \
             rules of ldap/acl.conf (nobody but the hosts and admins reads anything there).",
            if n == 1 { "y" } else { "ies" }
        )),
        Err(e) => out.warning(format!("LDAP: the anonymous probe failed: {e}")),
    }
}
