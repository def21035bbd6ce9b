//! The directory side of the LDAP store, against a real slapd and the
//! OpenLDAP command-line tools: the shipped schema and access rules load (in
//! slapd.conf and in cn=config form, and the two agree); who may read and
//! write what; the compare-and-swap on totpSerial that keeps a code from
//! being used twice across hosts; and two servers in mirror mode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::slapd::{base64_encode, ldap_run, Bind, LdapRun, Slapd, BASE_DN, HOSTS, SUFFIX};
use integration::SECRET;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The smallest active record (the same text as users/alice.toml).
fn record() -> String {
    format!(
        "version = 1\nstatus = \"active\"\nsecret = \"{SECRET}\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\n"
    )
}

/// One compare-and-swap of the login state, as a host writes it.
fn cas_ldif(dn: &str, old: u64, last_step: u64) -> String {
    format!(
        "dn: {dn}\nchangetype: modify\ndelete: totpSerial\ntotpSerial: {old}\n-\n\
         add: totpSerial\ntotpSerial: {new}\n-\nreplace: totpLastStep\ntotpLastStep: {last_step}\n-\n",
        new = old + 1
    )
}

fn whoami(cmd: &mut Command) -> LdapRun {
    ldap_run(cmd, "")
}

/// Our definitions in the server's subschema (sorted), read anonymously.
fn our_schema(slapd: &Slapd) -> Vec<String> {
    let run = ldap_run(
        slapd.ldap_cmd("ldapsearch", None).args([
            "-LLL",
            "-o",
            "ldif-wrap=no",
            "-s",
            "base",
            "-b",
            "cn=Subschema",
            "(objectClass=subschema)",
            "attributeTypes",
            "objectClasses",
        ]),
        "",
    );
    assert_eq!(run.rc, 0, "reading the subschema failed: {}", run.stderr);
    let mut ours: Vec<String> = run
        .stdout
        .lines()
        .filter(|l| l.contains("( 1.3.6.1.4.1.4203.666.11.77."))
        .map(str::to_string)
        .collect();
    ours.sort();
    ours
}

#[test]
fn the_shipped_schema_loads_and_tls_is_checked() {
    let slapd = Slapd::start("schema");

    // Our 17 attribute types and one object class, with the OIDs the backend uses.
    let ours = our_schema(&slapd);
    assert_eq!(ours.len(), 18, "{ours:#?}");
    for (oid, name) in [
        ("1.1", "totpRecord"),
        ("1.2", "totpSerial"),
        ("1.11", "totpUsedRecovery"),
        ("1.16", "totpResyncAt"),
        ("1.17", "totpPublicRecord"),
        ("2.1", "totpUser"),
    ] {
        let prefix = format!("( 1.3.6.1.4.1.4203.666.11.77.{oid} NAME '{name}' ");
        assert!(
            ours.iter().any(|l| l.contains(&prefix)),
            "{name} is not {oid}: {ours:#?}"
        );
    }
    let serial = ours.iter().find(|l| l.contains("'totpSerial'")).unwrap();
    assert!(
        serial.contains("EQUALITY integerMatch") && serial.contains("SINGLE-VALUE"),
        "{serial}"
    );

    // The root DSE stays readable anonymously (clients find the naming context).
    let dse = ldap_run(
        slapd.ldap_cmd("ldapsearch", None).args([
            "-LLL",
            "-s",
            "base",
            "-b",
            "",
            "(objectClass=*)",
            "namingContexts",
        ]),
        "",
    );
    assert!(
        dse.stdout.contains(&format!("namingContexts: {SUFFIX}")),
        "{dse:?}"
    );

    // A host binds over ldaps and over StartTLS.
    let host = slapd.host("host-a");
    let over_ldaps = whoami(&mut slapd.ldap_cmd("ldapwhoami", Some(&host)));
    assert_eq!(over_ldaps.rc, 0, "{over_ldaps:?}");
    assert_eq!(over_ldaps.stdout.trim(), format!("dn:{}", host.dn));
    let over_starttls = whoami(&mut slapd.ldap_cmd_starttls("ldapwhoami", Some(&host)));
    assert_eq!(over_starttls.rc, 0, "{over_starttls:?}");
    assert_eq!(over_starttls.stdout.trim(), format!("dn:{}", host.dn));

    // The local socket answers without TLS.
    let local = whoami(&mut slapd.ldap_cmd_uri("ldapwhoami", Some(&host), &slapd.ldapi_uri()));
    assert_eq!(local.stdout.trim(), format!("dn:{}", host.dn), "{local:?}");

    // A wrong password is refused (49), and so is a server signed by another CA.
    let wrong = slapd.work_dir().join("wrong.pw");
    std::fs::write(&wrong, "not-the-password").unwrap();
    let bad_bind = Bind {
        dn: host.dn.clone(),
        password_file: wrong,
    };
    assert_eq!(
        whoami(&mut slapd.ldap_cmd("ldapwhoami", Some(&bad_bind))).rc,
        49
    );
    let other_ca = slapd.work_dir().join("other-ca.crt");
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=another CA", "-keyout", "/dev/null", "-out"])
        .arg(&other_ca)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(made.success());
    let untrusted = whoami(
        slapd
            .ldap_cmd("ldapwhoami", Some(&host))
            .env("LDAPTLS_CACERT", &other_ca),
    );
    assert_ne!(untrusted.rc, 0, "{untrusted:?}");
    assert!(untrusted.stdout.is_empty(), "{untrusted:?}");
}

#[test]
fn the_schema_holds_entries_to_their_shape() {
    let slapd = Slapd::start("shape");
    let admin = slapd.admin();
    slapd.add_user_entry("alice", &record());
    let dn = slapd.user_dn("alice");

    // No serial: objectClassViolation (65). (No record is allowed since
    // schema version 2: an entry the directory checks holds
    // totpPublicRecord instead, and the store refuses an entry without the
    // record of its mode as an error.)
    let no_serial = slapd.modify(
        Some(&admin),
        &format!(
            "dn: {}\nchangetype: add\nobjectClass: totpUser\nuid: bob\n",
            slapd.user_dn("bob")
        ),
    );
    assert_eq!(no_serial.rc, 65, "{no_serial:?}");
    // A second serial: SINGLE-VALUE, constraintViolation (19).
    let two_serials = slapd.modify(
        Some(&admin),
        &format!("dn: {dn}\nchangetype: modify\nadd: totpSerial\ntotpSerial: 7\n-\n"),
    );
    assert_eq!(two_serials.rc, 19, "{two_serials:?}");
    // Not an integer: invalidAttributeSyntax (21).
    let not_integer = slapd.modify(
        Some(&admin),
        &format!("dn: {dn}\nchangetype: modify\nreplace: totpLastStep\ntotpLastStep: soon\n-\n"),
    );
    assert_eq!(not_integer.rc, 21, "{not_integer:?}");
    // Used recovery codes are many values of one attribute.
    let used = slapd.modify(
        Some(&admin),
        &format!(
            "dn: {dn}\nchangetype: modify\nadd: totpUsedRecovery\ntotpUsedRecovery: 2\ntotpUsedRecovery: 5\n-\n"
        ),
    );
    assert_eq!(used.rc, 0, "{used:?}");
    let entry = slapd.user_entry("alice").unwrap();
    assert_eq!(entry.values("totpUsedRecovery"), ["2", "5"]);
    assert_eq!(entry.get("totpSerial").as_deref(), Some("0"));
    assert_eq!(entry.get("totpRecord"), Some(record()));
    // Deleting a value that is not there fails with noSuchAttribute (16),
    // and changes nothing: what a lost compare-and-swap gets.
    let stale = slapd.modify(
        Some(&admin),
        &format!(
            "{}add: totpUsedRecovery\ntotpUsedRecovery: 4\n-\n",
            cas_ldif(&dn, 5, 1)
        ),
    );
    assert_eq!(stale.rc, 16, "{stale:?}");
    let entry = slapd.user_entry("alice").unwrap();
    assert_eq!(entry.get("totpSerial").as_deref(), Some("0"));
    assert_eq!(entry.values("totpUsedRecovery"), ["2", "5"]);
}

/// Anonymous and a bind that is neither host nor admin: nothing under the
/// store, not even whether an entry exists, and no passwords anywhere.
fn check_nobody_reads(slapd: &Slapd) {
    let dn = slapd.user_dn("alice");
    for bind in [None, Some(slapd.outsider())] {
        let who = bind.as_ref().map_or("anonymous", |b| b.dn.as_str());
        let subtree = slapd.search(bind.as_ref(), BASE_DN, "(objectClass=*)", &[]);
        assert_eq!(
            (subtree.rc, subtree.entries.len()),
            (32, 0),
            "{who}: {subtree:?}"
        );
        let entry = slapd.search(bind.as_ref(), &dn, "(objectClass=*)", &["totpRecord"]);
        assert_eq!((entry.rc, entry.entries.len()), (32, 0), "{who}: {entry:?}");
        let from_top = slapd.search(bind.as_ref(), SUFFIX, "(uid=alice)", &["totpRecord"]);
        assert!(from_top.entries.is_empty(), "{who}: {from_top:?}");
        let passwords = slapd.search(bind.as_ref(), SUFFIX, "(userPassword=*)", &["userPassword"]);
        assert!(passwords.entries.is_empty(), "{who}: {passwords:?}");
        // A compare would tell a value without reading it: no answer either way.
        let compare = ldap_run(
            slapd
                .ldap_cmd("ldapcompare", bind.as_ref())
                .arg(&dn)
                .arg("totpSerial:0"),
            "",
        );
        assert_eq!(compare.rc, 32, "{who}: {compare:?}");
        // slapd refuses anonymous writes outright (strongerAuthRequired, 8),
        // and the rules refuse the outsider's (insufficientAccessRights, 50).
        let write = slapd.modify(bind.as_ref(), &cas_ldif(&dn, 0, 1));
        let refused = if bind.is_none() { 8 } else { 50 };
        assert_eq!(write.rc, refused, "{who}: {write:?}");
    }
    let entry = slapd.user_entry("alice").unwrap();
    assert_eq!(entry.get("totpSerial").as_deref(), Some("0"));
}

/// Hosts read every record and write the login state, nothing else.
fn check_hosts(slapd: &Slapd) {
    let dn = slapd.user_dn("alice");
    for host in HOSTS {
        let found = slapd.search(Some(&slapd.host(host)), BASE_DN, "(uid=alice)", &[]);
        assert_eq!(found.rc, 0, "{host}: {found:?}");
        assert_eq!(found.entries.len(), 1, "{host}: {found:?}");
        assert_eq!(found.entries[0].get("totpRecord"), Some(record()), "{host}");
        assert_eq!(found.entries[0].get("totpSerial").as_deref(), Some("0"));
    }

    let host = slapd.host("host-b");
    let state = slapd.modify(
        Some(&host),
        &format!(
            "{}replace: totpFailures\ntotpFailures: 0\n-\nadd: totpUsedRecovery\ntotpUsedRecovery: 3\n-\n\
             replace: totpLastSuccessRhost\ntotpLastSuccessRhost: 192.0.2.7\n-\n",
            cas_ldif(&dn, 0, 59_000_000)
        ),
    );
    assert_eq!(state.rc, 0, "{state:?}");

    let refused = [
        (
            "the record",
            format!("dn: {dn}\nchangetype: modify\nreplace: totpRecord\ntotpRecord: secret = \"AAAA\"\n-\n"),
        ),
        (
            "the uid",
            format!("dn: {dn}\nchangetype: modify\nreplace: uid\nuid: mallory\n-\n"),
        ),
        (
            "a new entry",
            format!(
                "dn: {}\nchangetype: add\nobjectClass: totpUser\nuid: mallory\ntotpSerial: 0\ntotpRecord: x\n",
                slapd.user_dn("mallory")
            ),
        ),
        ("a deletion", format!("dn: {dn}\nchangetype: delete\n")),
        (
            "a rename",
            format!("dn: {dn}\nchangetype: modrdn\nnewrdn: uid=mallory\ndeleteoldrdn: 1\n"),
        ),
        (
            "joining the admins",
            format!(
                "dn: cn=totp-admins,ou=groups,{SUFFIX}\nchangetype: modify\nadd: member\nmember: {}\n-\n",
                host.dn
            ),
        ),
    ];
    for (what, ldif) in refused {
        let run = slapd.modify(Some(&host), &ldif);
        assert_eq!(run.rc, 50, "a host changed {what}: {run:?}");
    }
    // Hosts read no passwords, not even their own.
    let passwords = slapd.search(Some(&host), SUFFIX, "(userPassword=*)", &["userPassword"]);
    assert!(passwords.entries.is_empty(), "{passwords:?}");

    let entry = slapd.user_entry("alice").unwrap();
    assert_eq!(entry.get("totpRecord"), Some(record()));
    assert_eq!(entry.get("uid").as_deref(), Some("alice"));
    assert_eq!(entry.get("totpSerial").as_deref(), Some("1"));
    assert_eq!(entry.get("totpLastStep").as_deref(), Some("59000000"));
    assert_eq!(entry.values("totpUsedRecovery"), ["3"]);
    assert_eq!(
        entry.get("totpLastSuccessRhost").as_deref(),
        Some("192.0.2.7")
    );
    assert!(slapd.user_entry("mallory").is_none());
}

/// Admins write everything under the store: entries, records and state.
fn check_admins(slapd: &Slapd) {
    let admin = slapd.admin();
    slapd.add_user_entry("bob", &record());
    let dn = slapd.user_dn("bob");
    let new_record = record().replace("digits = 6", "digits = 8");
    let run = slapd.modify(
        Some(&admin),
        &format!(
            "{}replace: totpRecord\ntotpRecord:: {}\n-\nreplace: totpLockedUntil\ntotpLockedUntil: 0\n-\n",
            cas_ldif(&dn, 0, 5),
            base64_encode(new_record.as_bytes())
        ),
    );
    assert_eq!(run.rc, 0, "{run:?}");
    let entry = slapd.user_entry("bob").unwrap();
    assert_eq!(entry.get("totpRecord"), Some(new_record));
    assert_eq!(entry.get("totpSerial").as_deref(), Some("1"));
    let read = slapd.search(
        Some(&admin),
        &slapd.user_dn("alice"),
        "(objectClass=*)",
        &[],
    );
    assert_eq!(read.entries[0].get("totpRecord"), Some(record()));
    let delete = slapd.modify(Some(&admin), &format!("dn: {dn}\nchangetype: delete\n"));
    assert_eq!(delete.rc, 0, "{delete:?}");
    assert!(slapd.user_entry("bob").is_none());
    // More users than the default size limit (500), in one add (whose
    // output is more than a pipe holds): admins and hosts list them all; an
    // outsider still sees none.
    let names: Vec<String> = (0..1200).map(|i| format!("user{i:04}")).collect();
    let text = record();
    slapd.add_user_entries(names.iter().map(|n| (n.as_str(), text.as_str())));
    for bind in [admin.clone(), slapd.host("host-a")] {
        let all = slapd.search(Some(&bind), BASE_DN, "(objectClass=totpUser)", &["uid"]);
        assert_eq!(
            (all.rc, all.entries.len()),
            (0, 1201),
            "{}: {}",
            bind.dn,
            all.stderr
        );
    }
    let outsider = slapd.search(
        Some(&slapd.outsider()),
        BASE_DN,
        "(objectClass=totpUser)",
        &["uid"],
    );
    assert_eq!((outsider.rc, outsider.entries.len()), (32, 0));
    // Admin rights stop at the store: no reading of passwords.
    let passwords = slapd.search(Some(&admin), SUFFIX, "(userPassword=*)", &["userPassword"]);
    assert!(passwords.entries.is_empty(), "{passwords:?}");
}

#[test]
fn anonymous_and_outsiders_read_nothing_in_the_store() {
    let slapd = Slapd::start("nobody");
    slapd.add_user_entry("alice", &record());
    check_nobody_reads(&slapd);
}

#[test]
fn hosts_read_records_and_write_only_the_state() {
    let slapd = Slapd::start("hosts");
    slapd.add_user_entry("alice", &record());
    check_hosts(&slapd);
}

#[test]
fn admins_write_everything_in_the_store() {
    let slapd = Slapd::start("admins");
    slapd.add_user_entry("alice", &record());
    check_admins(&slapd);
}

#[test]
fn the_cn_config_files_load_and_give_the_same_schema_and_access() {
    let config = Slapd::start_cn_config("cn-config");
    let file = Slapd::start("cn-config-file");
    assert_eq!(our_schema(&config), our_schema(&file));
    assert_eq!(our_schema(&config).len(), 18);

    // acl.ldif put its rules and limits first, and added the indexes.
    let database = config.search(
        Some(&config.config_admin()),
        "olcDatabase={1}mdb,cn=config",
        "(objectClass=*)",
        &["olcAccess", "olcLimits", "olcDbIndex"],
    );
    assert_eq!(database.rc, 0, "{}", database.stderr);
    let database = &database.entries[0];
    let access = database.values("olcAccess");
    assert_eq!(access.len(), 5, "{access:#?}");
    assert!(
        access[0].starts_with("{0}to attrs=userPassword"),
        "{access:#?}"
    );
    assert!(access[1].contains("attrs=totpSerial,"), "{access:#?}");
    assert!(!access[1].contains("totpRecord"), "{access:#?}");
    assert_eq!(database.values("olcLimits").len(), 2);
    let mut indexes = database.values("olcDbIndex");
    indexes.sort();
    assert_eq!(indexes, ["objectClass eq", "uid eq"]);

    config.add_user_entry("alice", &record());
    check_nobody_reads(&config);
    check_hosts(&config);
    check_admins(&config);
}

#[test]
fn a_serial_compare_and_swap_admits_one_of_fifty() {
    let slapd = Slapd::start("cas");
    slapd.add_user_entry("alice", &record());
    let dn = slapd.user_dn("alice");
    for round in 0..3u64 {
        // Start all 50 first: each connects and binds, then waits for its
        // LDIF on stdin; then they all get it at once.
        let mut children: Vec<_> = (0..50u64)
            .map(|i| {
                let host = slapd.host(HOSTS[usize::try_from(i).unwrap() % 3]);
                slapd
                    .ldap_cmd("ldapmodify", Some(&host))
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut inputs: Vec<_> = children
            .iter_mut()
            .map(|c| c.stdin.take().unwrap())
            .collect();
        for (i, stdin) in inputs.iter_mut().enumerate() {
            use std::io::Write;
            let step = 1000 * (round + 1) + u64::try_from(i).unwrap();
            stdin
                .write_all(cas_ldif(&dn, round, step).as_bytes())
                .unwrap();
        }
        drop(inputs);
        let results: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let winners: Vec<usize> = (0..50)
            .filter(|&i| results[i].status.code() == Some(0))
            .collect();
        let others: Vec<String> = results
            .iter()
            .filter(|r| !matches!(r.status.code(), Some(0 | 16)))
            .map(|r| {
                format!(
                    "{:?}: {}",
                    r.status.code(),
                    String::from_utf8_lossy(&r.stderr)
                )
            })
            .collect();
        assert!(
            others.is_empty(),
            "round {round}: not a lost race: {others:#?}"
        );
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let entry = slapd.user_entry("alice").unwrap();
        assert_eq!(entry.get("totpSerial"), Some((round + 1).to_string()));
        let winner_step = 1000 * (round + 1) + u64::try_from(winners[0]).unwrap();
        assert_eq!(entry.get("totpLastStep"), Some(winner_step.to_string()));
    }
}

#[test]
fn stop_restart_freeze_and_thaw() {
    let mut slapd = Slapd::start("lifecycle");
    slapd.add_user_entry("alice", &record());
    let host = slapd.host("host-c");
    let uri = slapd.ldaps_uri();

    slapd.stop();
    let down = whoami(&mut slapd.ldap_cmd("ldapwhoami", Some(&host)));
    assert_ne!(down.rc, 0, "{down:?}");
    slapd.restart();
    assert_eq!(slapd.ldaps_uri(), uri);
    let up = whoami(&mut slapd.ldap_cmd("ldapwhoami", Some(&host)));
    assert_eq!(up.rc, 0, "{up:?}");
    assert!(
        slapd.user_entry("alice").is_some(),
        "the data did not survive"
    );

    // Frozen: the kernel accepts the connection, then nothing answers.
    slapd.freeze();
    let mut hung = slapd
        .ldap_cmd("ldapwhoami", Some(&host))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        assert!(
            hung.try_wait().unwrap().is_none(),
            "a frozen slapd answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    hung.kill().unwrap();
    hung.wait().unwrap();
    slapd.thaw();
    let thawed = whoami(&mut slapd.ldap_cmd("ldapwhoami", Some(&host)));
    assert_eq!(thawed.rc, 0, "{thawed:?}");
}

/// Wait until `check` holds, for at most 5 s.
fn within_seconds(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within 5 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_mirror_pair_replicates_both_ways_and_survives_a_dead_server() {
    let (mut a, b) = Slapd::start_mirror_pair("mirror");
    let serial = |s: &Slapd| s.user_entry("alice").and_then(|e| e.get("totpSerial"));

    a.add_user_entry("alice", &record());
    within_seconds("alice on the second server", || serial(&b).is_some());
    let dn = b.user_dn("alice");
    let on_b = b.modify(Some(&b.host("host-b")), &cas_ldif(&dn, 0, 77));
    assert_eq!(on_b.rc, 0, "{on_b:?}");
    within_seconds("the state back on the first server", || {
        serial(&a).as_deref() == Some("1")
    });

    a.kill();
    let host = b.host("host-c");
    assert_ne!(whoami(&mut a.ldap_cmd("ldapwhoami", Some(&host))).rc, 0);
    let read = b.search(Some(&host), BASE_DN, "(uid=alice)", &["totpRecord"]);
    assert_eq!(read.entries.len(), 1, "{read:?}");
    assert_eq!(read.entries[0].get("totpRecord"), Some(record()));
    let write = b.modify(Some(&host), &cas_ldif(&dn, 1, 78));
    assert_eq!(write.rc, 0, "{write:?}");

    // Back up, the first server catches up.
    a.restart();
    within_seconds("the first server catching up", || {
        serial(&a).as_deref() == Some("2")
    });
}

/// Who counts as a host or an admin is guarded too: no host, outsider or
/// anonymous bind can add a host entry, change another host's password or
/// join the admins' group; an admin can add a host.
#[test]
fn only_admins_make_hosts_and_admins() {
    let slapd = Slapd::start("who-is-who");
    let new_host = "dn: cn=host-x,ou=totp-hosts,dc=example,dc=org\nchangetype: add\n\
                    objectClass: applicationProcess\nobjectClass: simpleSecurityObject\n\
                    cn: host-x\nuserPassword: chosen-by-the-attacker\n";
    let other_password = "dn: cn=host-b,ou=totp-hosts,dc=example,dc=org\nchangetype: modify\n\
                          replace: userPassword\nuserPassword: chosen-by-the-attacker\n";
    for (who, bind) in [
        ("host-a", Some(slapd.host("host-a"))),
        ("outsider", Some(slapd.outsider())),
        ("anonymous", None),
    ] {
        let joins = format!(
            "dn: cn=totp-admins,ou=groups,dc=example,dc=org\nchangetype: modify\n\
             add: member\nmember: {}\n",
            bind.as_ref()
                .map_or("cn=nobody,dc=example,dc=org", |b| b.dn.as_str())
        );
        for (what, ldif) in [
            ("add a host", new_host),
            ("set another host's password", other_password),
            ("join the admins", joins.as_str()),
        ] {
            let run = slapd.modify(bind.as_ref(), ldif);
            assert!(
                [8, 32, 50].contains(&run.rc),
                "{who} could {what}: rc {} {}",
                run.rc,
                run.stderr
            );
        }
        let seen = slapd.search(
            bind.as_ref(),
            "ou=totp-hosts,dc=example,dc=org",
            "(objectClass=*)",
            &["cn"],
        );
        assert!(
            seen.entries.is_empty(),
            "{who} reads the host entries: {:?}",
            seen.entries.len()
        );
    }
    let run = slapd.modify(Some(&slapd.admin()), new_host);
    assert_eq!(run.rc, 0, "an admin adds a host: {}", run.stderr);
}
