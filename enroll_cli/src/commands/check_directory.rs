//! `totpctl check` with `ldap.verify = "directory"`: proves, on the live
//! directory and as this host, what the mode relies on.
//!
//! - No attribute this host's bind can read holds key material (a seed, a
//!   record with a secret, a password hash).
//! - The check password alone does not bind; SASL binds with it do not
//!   either (with `ldapwhoami`, for each password mechanism the server
//!   offers).
//! - slapo-ppolicy is there (the user entries name a policy that locks) and
//!   runs before the otp overlay: with the admin bind, a throwaway token is
//!   locked with wrong binds, a right code is then refused and not used up,
//!   and after the unlock the same code binds (which also proves the overlay
//!   checks codes at all).
//! - Every URI is a server that takes writes (the write provider): the
//!   overlay's record of a used code does not replicate.
//!
//! The constant-alone bind is a wrong bind: it counts towards the first
//! user's ppolicy cap (one of 100), and a success clears it.

use super::check::Findings;
use ldap3::{LdapError, Mod, ResultEntry, Scope};
use std::collections::HashMap;
use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};
use totp_core::otp::{Generator, OtpParams};
use totp_ldap::{Identity, LdapStore, CHECK_PASSWORD, KEY_ATTRS, SERIAL_ATTR, TOTP_LAST_STEP};
use zeroize::Zeroizing;

const INVALID_CREDENTIALS: u32 = 49;
const NO_SUCH_ATTRIBUTE: u32 = 16;
/// SASL mechanisms that log in with a password the server can read.
const PASSWORD_MECHANISMS: [&str; 6] = [
    "DIGEST-MD5",
    "CRAM-MD5",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "PLAIN",
    "NTLM",
];

pub(super) fn check(out: &mut Findings, ldap: &LdapStore) {
    let base = ldap.config().base_dn.clone();
    check_readable(out, ldap, &base);
    let user = ldap.list_users().ok().and_then(|u| u.into_iter().next());
    match &user {
        Some(user) => {
            let dn = ldap.entry_dn(user);
            check_constant(out, ldap, &dn);
            check_sasl(out, ldap, user.as_str());
            check_policy(out, ldap, &dn);
        }
        None => out.warning(
            "LDAP: no user entry yet, so the check password and SASL are not tried against one",
        ),
    }
    check_order(out, ldap);
    check_writable(out, ldap, &base);
}

/// Everything the host can read under the base: no key material.
fn check_readable(out: &mut Findings, ldap: &LdapStore, base: &str) {
    let read = ldap.probe(Identity::Host, |conn, timeout| {
        let (entries, _) = conn
            .with_timeout(timeout)
            .search(base, Scope::Subtree, "(objectClass=*)", vec!["*", "+"])?
            .success()?;
        entries
            .into_iter()
            .map(entry)
            .collect::<Result<Vec<_>, _>>()
    });
    match read {
        Ok((_, entries)) => {
            let forbidden: Vec<String> = entries
                .iter()
                .flat_map(|(dn, attrs)| {
                    KEY_ATTRS
                        .iter()
                        .chain(&["userPassword"])
                        .filter(|a| attrs.contains_key(&a.to_ascii_lowercase()))
                        .map(move |a| format!("{a} of {dn}"))
                })
                .collect();
            if forbidden.is_empty() {
                out.ok(format!(
                    "LDAP: this host reads {} entries under the base and no key material \
                     (no oathSecret, totpRecord or password)",
                    entries.len()
                ));
            } else {
                out.error(format!(
                    "LDAP: this host can read key material: {}. Root on this host could make \
                     those users' codes. Fix: install the access rules of ldap/directory.conf.",
                    forbidden.join(", ")
                ));
            }
        }
        Err(e) => out.error(format!("LDAP: cannot read under the base: {e}")),
    }
}

/// The public check password alone must not bind.
fn check_constant(out: &mut Findings, ldap: &LdapStore, dn: &str) {
    let bound = ldap.probe(Identity::Host, |conn, timeout| {
        conn.with_timeout(timeout).simple_bind(dn, CHECK_PASSWORD)
    });
    match bound {
        Ok((_, r)) if r.rc == INVALID_CREDENTIALS => {
            out.ok("LDAP: the check password alone does not bind (a code is needed)")
        }
        Ok((_, r)) if r.rc == 0 => out.error(format!(
            "LDAP: {dn} binds with the public check password and no code: the otp overlay \
             does not check this database. Fix: load otp.la and add 'overlay otp' (see \
             ldap/directory.conf)."
        )),
        Ok((_, r)) => out.warning(format!(
            "LDAP: a bind with the check password alone answered result code {}: could not tell",
            r.rc
        )),
        Err(e) => out.warning(format!("LDAP: the check-password bind failed: {e}")),
    }
}

/// SASL binds with the check password (which, stored in clear, would let
/// them in with no code) must fail, for every password mechanism offered.
fn check_sasl(out: &mut Findings, ldap: &LdapStore, user: &str) {
    let offered = ldap.probe(Identity::Anonymous, |conn, timeout| {
        let (entries, _) = conn
            .with_timeout(timeout)
            .search(
                "",
                Scope::Base,
                "(objectClass=*)",
                vec!["supportedSASLMechanisms"],
            )?
            .success()?;
        Ok(first_attr(entries, "supportedSASLMechanisms")?.unwrap_or_default())
    });
    let (uri, offered) = match offered {
        Ok(found) => found,
        Err(e) => return out.warning(format!("LDAP: cannot read the SASL mechanisms: {e}")),
    };
    let risky: Vec<&str> = PASSWORD_MECHANISMS
        .into_iter()
        .filter(|m| offered.iter().any(|o| o.eq_ignore_ascii_case(m)))
        .collect();
    if risky.is_empty() {
        return out.ok("LDAP: the server offers no SASL mechanism that takes a password");
    }
    let tool = std::path::Path::new("/usr/bin/ldapwhoami");
    if !tool.exists() {
        return out.warning(format!(
            "LDAP: the server offers {} and /usr/bin/ldapwhoami (ldap-utils) is not here to \
             try them; install it and check again",
            risky.join(", ")
        ));
    }
    let mut got_in = Vec::new();
    for mech in &risky {
        // The password is the public check password: nothing secret in argv.
        let status = std::process::Command::new(tool)
            .env_clear()
            .env("LDAPTLS_CACERT", &ldap.config().ca_file)
            .env("LDAPTLS_REQCERT", "demand")
            .env("LDAPRC", "/nonexistent")
            .args([
                "-H",
                &uri,
                "-Q",
                "-O",
                "maxssf=0",
                "-o",
                "nettimeout=5",
                "-Y",
                mech,
            ])
            .args(["-U", user, "-w", CHECK_PASSWORD])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        if status.is_ok_and(|s| s.success()) {
            got_in.push(*mech);
        }
    }
    if got_in.is_empty() {
        out.ok(format!(
            "LDAP: SASL binds ({}) with the check password get nothing",
            risky.join(", ")
        ));
    } else {
        out.error(format!(
            "LDAP: a SASL bind ({}) logs in as {user} with no code. Fix: store userPassword \
             hashed (totpctl writes it so), and keep anonymous from reading the entries.",
            got_in.join(", ")
        ));
    }
}

/// The user's entry names a password policy that locks.
fn check_policy(out: &mut Findings, ldap: &LdapStore, dn: &str) {
    let read = ldap.probe(Identity::Host, |conn, timeout| {
        let (entries, _) = conn
            .with_timeout(timeout)
            .search(
                dn,
                Scope::Base,
                "(objectClass=*)",
                vec!["pwdPolicySubentry"],
            )?
            .success()?;
        let policy = first_attr(entries, "pwdPolicySubentry")?.and_then(|v| v.into_iter().next());
        let Some(policy) = policy else {
            return Ok(None);
        };
        let (entries, _) = conn
            .with_timeout(timeout)
            .search(
                &policy,
                Scope::Base,
                "(objectClass=pwdPolicy)",
                vec!["pwdLockout", "pwdMaxFailure"],
            )?
            .success()?;
        match entries.into_iter().next() {
            Some(e) => Ok(Some((policy, entry(e)?.1))),
            None => Ok(None),
        }
    });
    match read {
        Ok((_, Some((policy, attrs)))) => {
            let lockout = attrs
                .get("pwdlockout")
                .and_then(|v| v.first())
                .map(String::as_str);
            let max = attrs.get("pwdmaxfailure").and_then(|v| v.first()).cloned();
            match (lockout, max) {
                (Some("TRUE"), Some(max)) if max != "0" => out.ok(format!(
                    "LDAP: the users' password policy {policy} locks after {max} wrong binds"
                )),
                _ => out.error(format!(
                    "LDAP: the password policy {policy} does not lock (pwdLockout TRUE and \
                     pwdMaxFailure above 0 are needed): direct binds can guess codes without \
                     end. Fix: see ldap/directory-entries.ldif."
                )),
            }
        }
        Ok((_, None)) => out.error(format!(
            "LDAP: {dn} names no password policy this host can read: nothing caps direct \
             guessing. Fix: install ldap/directory-entries.ldif's policy and enroll again."
        )),
        Err(e) => out.warning(format!("LDAP: cannot read the password policy: {e}")),
    }
}

/// ppolicy runs before otp: a locked token's right code is refused and not
/// used up. Needs the admin bind (a throwaway token is added and removed).
fn check_order(out: &mut Findings, ldap: &LdapStore) {
    if ldap.config().admin_bind_dn.is_empty() {
        return out.warning(
            "LDAP: the order of the ppolicy and otp overlays is proven only where the admin \
             bind is configured (totpctl check there)",
        );
    }
    match probe_order(ldap) {
        Ok(None) => out.ok(
            "LDAP: slapo-ppolicy runs before the otp overlay: a locked token's right code is \
             refused and not used up, and works after the unlock",
        ),
        Ok(Some(problem)) => out.error(format!("LDAP: {problem}")),
        Err(e) => out.warning(format!("LDAP: the overlay order probe failed: {e}")),
    }
    if let Err(e) = ldap.remove_probe_token() {
        out.warning(format!("LDAP: the probe token could not be removed: {e}"));
    }
}

fn probe_order(ldap: &LdapStore) -> Result<Option<String>, totp_core::store::StoreError> {
    let (dn, secret) = ldap.add_probe_token()?;
    let params = OtpParams::new(totp_core::otp::Algorithm::SHA1, 6, 30)
        .map_err(totp_core::store::StoreError::Unavailable)?;
    let generator = Generator::new(&secret, params);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let code = generator.code_at_step(params.step_at(now));
    // The probe token's codes, wiped like any other.
    let code = Zeroizing::new(String::from_utf8_lossy(code.as_bytes()).into_owned());
    let wrong = Zeroizing::new(format!(
        "{CHECK_PASSWORD}{:06}",
        (code.parse::<u32>().unwrap_or(0) + 1) % 1_000_000
    ));
    let right = Zeroizing::new(format!("{CHECK_PASSWORD}{}", code.as_str()));
    // Lock it: as many wrong binds as the policy allows (each a failed
    // bind, which leaves this connection anonymous), then ask as the admin.
    let max = policy_max_failure(ldap).unwrap_or(100).min(10_000);
    ldap.probe(Identity::Host, |conn, timeout| {
        for _ in 0..max {
            conn.with_timeout(timeout).simple_bind(&dn, &wrong)?;
        }
        Ok(())
    })?;
    let (_, locked) = ldap.probe(Identity::Admin, |conn, timeout| {
        let (entries, _) = conn
            .with_timeout(timeout)
            .search(
                &dn,
                Scope::Base,
                "(objectClass=*)",
                vec!["pwdAccountLockedTime"],
            )?
            .success()?;
        Ok(first_attr(entries, "pwdAccountLockedTime")?.is_some())
    })?;
    if !locked {
        return Ok(Some(format!(
            "{max} wrong binds did not lock the probe token: slapo-ppolicy is not there, or \
             the policy does not lock. Fix: see ldap/directory.conf."
        )));
    }
    let (_, tried) = ldap.probe(Identity::Host, |conn, timeout| {
        let bound = conn.with_timeout(timeout).simple_bind(&dn, &right)?;
        Ok(bound.rc)
    })?;
    let step = read_step(ldap, &dn)?;
    if tried == 0 || step.is_some() {
        return Ok(Some(
            "a right code typed into a locked token was used up: ppolicy runs after the otp \
             overlay. Fix: configure 'overlay ppolicy' AFTER 'overlay otp' (cn=config: \
             {1}ppolicy after {0}otp)."
                .into(),
        ));
    }
    ldap.probe(Identity::Admin, |conn, timeout| {
        conn.with_timeout(timeout).modify(
            &dn,
            vec![Mod::Replace("pwdAccountLockedTime", HashSet::new())],
        )
    })?;
    let (_, after) = ldap.probe(Identity::Host, |conn, timeout| {
        Ok(conn.with_timeout(timeout).simple_bind(&dn, &right)?.rc)
    })?;
    if after != 0 {
        return Ok(Some(format!(
            "after the unlock the probe token's right code did not bind (result code {after}): \
             the otp overlay does not check codes on this database, or this host's address \
             may not try them. Fix: see ldap/directory.conf"
        )));
    }
    Ok(None)
}

/// The shipped policy's pwdMaxFailure, as this host reads it.
fn policy_max_failure(ldap: &LdapStore) -> Option<u32> {
    let policy = ldap.policy_dn();
    ldap.probe(Identity::Host, |conn, timeout| {
        let (entries, _) = conn
            .with_timeout(timeout)
            .search(
                &policy,
                Scope::Base,
                "(objectClass=*)",
                vec!["pwdMaxFailure"],
            )?
            .success()?;
        Ok(first_attr(entries, "pwdMaxFailure")?
            .and_then(|v| v.into_iter().next())
            .and_then(|v| v.parse().ok()))
    })
    .ok()
    .and_then(|(_, max)| max)
}

fn read_step(ldap: &LdapStore, dn: &str) -> Result<Option<String>, totp_core::store::StoreError> {
    ldap.probe(Identity::Admin, |conn, timeout| {
        let (entries, _) = conn
            .with_timeout(timeout)
            .search(dn, Scope::Base, "(objectClass=*)", vec![TOTP_LAST_STEP])?
            .success()?;
        Ok(first_attr(entries, TOTP_LAST_STEP)?.and_then(|v| v.into_iter().next()))
    })
    .map(|(_, step)| step)
}

/// Every URI takes this host's writes: a consumer would refer them away,
/// and the otp overlay's record of a used code never replicates.
fn check_writable(out: &mut Findings, ldap: &LdapStore, base: &str) {
    let Some(user) = ldap.list_users().ok().and_then(|u| u.into_iter().next()) else {
        return;
    };
    let dn = ldap.entry_dn(&user);
    for uri in &ldap.config().uris {
        let mut cfg = ldap.config().clone();
        cfg.uris = vec![uri.clone()];
        let one = LdapStore::new(&cfg);
        let tried = one.probe(Identity::Host, |conn, timeout| {
            // Deleting a serial no entry has changes nothing where writes
            // are taken (noSuchAttribute), and is referred or refused
            // elsewhere.
            conn.with_timeout(timeout)
                .modify(&dn, vec![Mod::Delete(SERIAL_ATTR, HashSet::from(["-1"]))])
        });
        match tried {
            Ok((_, r)) if r.rc == NO_SUCH_ATTRIBUTE => out.ok(format!(
                "LDAP: {uri} takes this host's writes (a write provider)"
            )),
            Ok((_, r)) => out.error(format!(
                "LDAP: {uri} does not take this host's writes under {base} (result code {}): \
                 a consumer. The otp overlay's record of a used code does not replicate, so \
                 codes must be checked where the state is written. Fix: list only the write \
                 provider(s) in ldap.uris.",
                r.rc
            )),
            Err(e) => out.warning(format!("LDAP: {uri} could not be tried: {e}")),
        }
    }
    if ldap.config().uris.len() > 1 {
        out.warning(
            "LDAP: more than one URI. A code accepted on one provider is recorded by the otp \
             overlay there only; after a failover, single use rests on the replicated \
             totpLastStep (a replay window as long as the replication delay).",
        );
    }
}

/// A search result entry's DN and attributes (names lowercased, values as
/// text), taken apart without ldap3's `SearchEntry::construct`, which
/// panics on a malformed entry: a broken or hostile server gets an error
/// in the report, not a crash.
fn entry(e: ResultEntry) -> Result<(String, HashMap<String, Vec<String>>), LdapError> {
    let (dn, raw) = totp_ldap::parse_search_entry(e).map_err(|why| LdapError::Io {
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, why),
    })?;
    let attrs = raw
        .into_iter()
        .map(|(name, values)| {
            let values = values
                .iter()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect();
            (name, values)
        })
        .collect();
    Ok((dn, attrs))
}

/// The values of `name` in the first entry, if there is one and it has them.
fn first_attr(entries: Vec<ResultEntry>, name: &str) -> Result<Option<Vec<String>>, LdapError> {
    match entries.into_iter().next() {
        Some(e) => Ok(entry(e)?.1.remove(&name.to_ascii_lowercase())),
        None => Ok(None),
    }
}
