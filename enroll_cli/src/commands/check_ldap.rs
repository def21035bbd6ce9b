//! `totpctl check` on the LDAP store: the connection, TLS and the bind, and
//! that the directory's access rules are the ones the fleet relies on: this
//! host cannot write secrets, and an anonymous bind reads nothing.

use super::check::Findings;
use ldap3::{Mod, Scope};
use totp_ldap::{Identity, LdapStore, RECORD_ATTR};

/// A value no record has: deleting it changes nothing when allowed, and the
/// server answers insufficientAccess when the rules forbid the write.
const PROBE_VALUE: &str = "pam_totp check: this value is never stored";
const NO_SUCH_ATTRIBUTE: u32 = 16;
const INSUFFICIENT_ACCESS: u32 = 50;

pub(super) fn check(out: &mut Findings, ldap: &LdapStore) {
    let cfg = ldap.config();
    let base = cfg.base_dn.clone();
    // The connection, TLS and the host's bind, with the base readable.
    let found = ldap.probe(Identity::Host, |conn, timeout| {
        let (entries, _) = conn
            .with_timeout(timeout)
            .search(&base, Scope::Base, "(objectClass=*)", vec!["1.1"])?
            .success()?;
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
        Ok((uri, _)) => out.error(format!(
            "LDAP: {uri} answers, but the base {base} is not visible to {}. Fix: create it, or \
             let the host bind read it (see ldap/acl.conf).",
            cfg.bind_dn
        )),
        Err(e) => {
            out.error(format!(
                "{e}. Every login through pam_totp is denied until it answers. Fix: check \
                 ldap.uris, ldap.ca_file and the bind password file."
            ));
            return;
        }
    }
    if !cfg.admin_bind_dn.is_empty() {
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

/// The host bind must not be able to change a record (a secret).
fn check_secret_write(out: &mut Findings, ldap: &LdapStore) {
    let users = match ldap.list_users() {
        Ok(users) => users,
        Err(e) => {
            out.error(format!("cannot list the users: {e}"));
            return;
        }
    };
    let Some(user) = users.first() else {
        out.warning(
            "LDAP: no user entry yet, so whether this host can write secrets is not checked",
        );
        return;
    };
    let dn = ldap.entry_dn(user);
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
        Ok((_, r)) if r.rc == NO_SUCH_ATTRIBUTE || r.rc == 0 => out.error(format!(
            "LDAP: this host's bind {} may write {secret_attr}, the secrets: root on any host \
             could then enroll itself for anyone. Fix: install the access rules of \
             ldap/acl.conf (hosts write only the state attributes).",
            ldap.config().bind_dn
        )),
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
