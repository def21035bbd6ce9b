//! The directory-checked mode's server (`ldap.verify = "directory"`): the
//! shipped `ldap/directory.conf` (otp and ppolicy overlays, access rules)
//! and `ldap/directory-entries.ldif`, as an admin installs them.

use super::{ldap_run, shipped, Mode, Slapd, ADMIN_DN, BASE_DN, HOSTS, OUTSIDER_DN, SUFFIX};

/// The test's slapd.conf turned into the directory-checked one: the two
/// modules loaded, and `directory.conf` in place of `acl.conf` (or, with
/// `wrong_order`, a copy written there with ppolicy before otp).
pub(super) fn directory_checked_conf(text: &str, wrong_order: Option<&std::path::Path>) -> String {
    let acl = format!("include {}\n", shipped("acl.conf").display());
    let mut included = shipped("directory.conf");
    if let Some(copy) = wrong_order {
        let shipped_text = std::fs::read_to_string(&included).unwrap();
        let swapped = shipped_text.replacen(
            "overlay otp\noverlay ppolicy\n",
            "overlay ppolicy\noverlay otp\n",
            1,
        );
        assert_ne!(
            swapped, shipped_text,
            "directory.conf no longer has the two overlay lines"
        );
        std::fs::write(copy, swapped).unwrap();
        included = copy.to_path_buf();
    }
    let directory = format!("include {}\n", included.display());
    assert!(
        text.contains(&acl),
        "the test config no longer includes acl.conf"
    );
    // A SASL name maps to the user's entry, as on many sites' servers: the
    // tests show SASL gets nothing even then.
    text.replacen(
        "moduleload back_mdb\n",
        &format!(
            "moduleload back_mdb\nmoduleload otp.la\nmoduleload ppolicy.la\n\
             authz-regexp \"uid=([^,]*),cn=[^,]*,cn=auth\" \"uid=$1,{}\"\n",
            super::BASE_DN
        ),
        1,
    )
    .replacen(&acl, &directory, 1)
}

impl Slapd {
    /// A server for `ldap.verify = "directory"`: slapd.conf with the otp and
    /// ppolicy modules and the shipped `ldap/directory.conf` (in place of
    /// `acl.conf`), seeded from the shipped `ldap/directory-entries.ldif`
    /// (with this test's passwords) plus the other hosts and the outsider.
    pub fn start_directory_checked(name: &str) -> Slapd {
        Self::start_seeded(name, Mode::Otp)
    }

    /// [`Slapd::start_directory_checked`], durable (no `dbnosync`), for
    /// benchmarks of a real deployment's write latency.
    pub fn start_directory_checked_durable(name: &str) -> Slapd {
        Self::start_seeded(name, Mode::OtpDurable)
    }

    /// The same, but with the two overlays in the wrong order (ppolicy
    /// before otp): what `totpctl check` must catch.
    pub fn start_directory_checked_wrong_order(name: &str) -> Slapd {
        Self::start_seeded(name, Mode::OtpWrongOrder)
    }

    /// The same with cn=config: `ldap/pam_totp.ldif` added and
    /// `ldap/directory.ldif` applied over LDAP, as an admin would.
    pub fn start_directory_checked_cn_config(name: &str) -> Slapd {
        let slapd = Self::start_cn_config_with(name, "directory.ldif");
        slapd.seed_directory_checked();
        slapd
    }

    /// The `[store]` and `[ldap]` sections of a fleet host that binds as
    /// `host` (and as the admin, so totpctl can enroll there), talking to
    /// `uris` with StartTLS; `extra` goes in `[ldap]` (`verify = ...`,
    /// `timeout_ms = ...`) and may open further sections.
    pub fn host_config(&self, host: &str, uris: &[String], extra: &str) -> String {
        let bind = self.host(host);
        let admin = self.admin();
        let uris: Vec<String> = uris.iter().map(|u| format!("\"{u}\"")).collect();
        format!(
            "[store]\nbackend = \"ldap\"\n[ldap]\nuris = [{}]\nbase_dn = \"{BASE_DN}\"\n\
             bind_dn = \"{}\"\nbind_password_file = \"{}\"\nadmin_bind_dn = \"{}\"\n\
             admin_bind_password_file = \"{}\"\nca_file = \"{}\"\nstarttls = true\n{extra}",
            uris.join(", "),
            bind.dn,
            bind.password_file.display(),
            admin.dn,
            admin.password_file.display(),
            self.ca_file().display()
        )
    }

    /// Add the shipped entries, with this test's password hashes in place
    /// of the placeholders, plus the hosts and the outsider the tests use.
    pub(super) fn seed_directory_checked(&self) {
        let shipped_ldif = std::fs::read_to_string(shipped("directory-entries.ldif")).unwrap();
        let mut ldif = String::new();
        for line in shipped_ldif.lines() {
            let line = match line {
                "userPassword: {SSHA}REPLACE-WITH-THE-HASH-OF-HOST-A-PASSWORD" => {
                    format!("userPassword: {}", self.hash("host-a"))
                }
                "userPassword: {SSHA}REPLACE-WITH-THE-HASH-OF-THE-ADMIN-PASSWORD" => {
                    format!("userPassword: {}", self.hash("totp-admin"))
                }
                other => {
                    assert!(
                        !other.contains("REPLACE-WITH"),
                        "a new placeholder: {other}"
                    );
                    other.to_owned()
                }
            };
            ldif.push_str(&line);
            ldif.push('\n');
        }
        assert!(ldif.contains(ADMIN_DN) && ldif.contains("cn=host-a,"));
        for host in HOSTS.iter().filter(|h| **h != "host-a") {
            ldif += &format!(
                "\ndn: cn={host},ou=totp-hosts,{SUFFIX}\nobjectClass: applicationProcess\n\
                 objectClass: simpleSecurityObject\ncn: {host}\nuserPassword: {}\n",
                self.hash(host)
            );
        }
        ldif += &format!(
            "\ndn: {OUTSIDER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n\
             cn: outsider\nuserPassword: {}\n",
            self.hash("outsider")
        );
        let run = ldap_run(&mut self.ldap_cmd("ldapadd", Some(&self.root())), &ldif);
        assert_eq!(run.rc, 0, "seeding the directory failed: {}", run.stderr);
    }

    /// A simple bind as `dn` with `password` over ldaps (`ldapwhoami`):
    /// its LDAP result code (0: in; 49: invalid credentials).
    pub fn try_bind(&self, dn: &str, password: &str) -> i32 {
        self.try_bind_uri(&self.ldaps_uri(), dn, password)
    }

    /// The same against any URI (`ldapi_uri`, say).
    pub fn try_bind_uri(&self, uri: &str, dn: &str, password: &str) -> i32 {
        let dir = self.work_dir();
        let file = dir.join(format!("bind-{}.pw", std::process::id()));
        let _ = std::fs::remove_file(&file);
        super::write_private(&file, password);
        let run = ldap_run(
            self.ldap_cmd_uri("ldapwhoami", None, uri)
                .arg("-D")
                .arg(dn)
                .arg("-y")
                .arg(&file),
            "",
        );
        let _ = std::fs::remove_file(&file);
        run.rc
    }

    /// A SASL bind (`-Y MECH -U user`) with `password`: the tool's outcome.
    pub fn try_sasl_bind(&self, mech: &str, user: &str, password: &str) -> super::LdapRun {
        ldap_run(
            std::process::Command::new("ldapwhoami")
                .env("LDAPCONF", self.shared.join("ldap.conf"))
                .env("LDAPRC", "pam_totp-test-no-ldaprc")
                .env("LDAPTLS_CACERT", self.ca_file())
                .args(["-H", &self.ldaps_uri(), "-o", "nettimeout=5", "-Y", mech])
                .args(["-U", user, "-w", password, "-Q", "-O", "maxssf=0"]),
            "",
        )
    }
}

impl Slapd {
    /// Add many entries fast: stop the server, `slapadd -q` the LDIF
    /// offline, start it again (slapd.conf servers only).
    pub fn bulk_load(&mut self, ldif: &str) {
        let super::Config::File(conf) = self.config.clone() else {
            panic!("bulk_load needs a slapd.conf server");
        };
        let file = self.dir.join("bulk.ldif");
        std::fs::write(&file, ldif).unwrap();
        self.stop();
        let out = std::process::Command::new("/usr/sbin/slapadd")
            .arg("-q")
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_file(&file);
        self.restart();
    }
}
