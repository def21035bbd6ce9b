//! Vendor seed files as delivered, imported with totpctl and then used
//! through the real libpam (pam_wrapper) with codes from oathtool:
//! - the Entra ID (Azure MFA) CSV that Token2 and others ship;
//! - an RFC 4180 CSV with a byte-order mark, quoted fields, CRLF and an
//!   algorithm column (SHA256, SHA512);
//! - PSKC (RFC 6030) files written by an independent implementation, the
//!   `pskc` Python package (python3-pskc): plain, encrypted under a
//!   pre-shared key, and encrypted under a PBKDF2 password.
//!
//! A bad line or element is named and nothing is written; no seed reaches
//! the output; the serial is shown by status and list.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const USERS: [&str; 3] = ["pamtotp-seed1", "pamtotp-seed2", "pamtotp-seed3"];
/// Three seeds (base32 of 20 random-looking bytes each).
const SEEDS: [&str; 3] = [
    "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
    "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U",
];

fn totpctl(sb: &Sandbox, args: &[&str]) -> PamRun {
    sb.totpctl(args, b"")
}

fn private_file(sb: &Sandbox, name: &str, bytes: &[u8]) -> PathBuf {
    sb.private_file(name, bytes)
}

fn arg(path: &Path) -> String {
    path.display().to_string()
}

fn setup(name: &str) -> Sandbox {
    for user in USERS {
        ensure_user(user, &[]);
    }
    let sb = Sandbox::new(name);
    sb.service("totp", "");
    sb
}

fn login(sb: &Sandbox, user: &str, code: &str) -> PamRun {
    sb.pamtester("totp", user, format!("{code}\n").as_bytes(), &[])
}

/// A login with `code` succeeds as a plain code.
fn logs_in(sb: &Sandbox, user: &str, code: &str) {
    login(sb, user, code).expect(true, "success", "code accepted");
}

fn assert_no_seed(run: &PamRun) {
    for seed in SEEDS {
        assert!(
            !run.stdout.contains(seed) && !run.stderr.contains(seed),
            "a seed was printed: {run:?}"
        );
    }
}

#[test]
fn the_entra_id_csv_as_delivered() {
    let sb = setup("seed-entra");
    let csv = format!(
        "upn,serial number,secret key,time interval,manufacturer,model\r\n\
         {}@example.com,60234567,{},30,Token2,c202\r\n\
         {}@Example.com,60234568,{},60,Token2,c202\r\n",
        USERS[0], SEEDS[0], USERS[1], SEEDS[1]
    );
    let file = private_file(&sb, "entra.csv", csv.as_bytes());

    // The file as it is: the UPNs are no accounts here.
    let before = snapshot(&sb.root);
    let run = totpctl(&sb, &["import-tokens", &arg(&file)]);
    assert!(!run.success, "{run:?}");
    assert!(run.stderr.contains("line 2: "), "{}", run.stderr);
    assert_eq!(snapshot(&sb.root), before);

    let run = totpctl(
        &sb,
        &["import-tokens", &arg(&file), "--domain", "example.com"],
    );
    assert!(run.success, "{run:?}");
    assert_no_seed(&run);
    assert!(
        run.stdout.contains(&format!(
            "enroll '{}': TOTP, SHA1, 6 digits, 30 s, serial 60234567 (line 2)",
            USERS[0]
        )),
        "{}",
        run.stdout
    );
    logs_in(&sb, USERS[0], &oathtool(SEEDS[0], "SHA1", 6, 30, 0));
    logs_in(&sb, USERS[1], &oathtool(SEEDS[1], "SHA1", 6, 60, 0));

    // The serial is kept and shown.
    let status = totpctl(&sb, &["status", USERS[1]]);
    assert!(
        status.stdout.contains("token serial:    60234568"),
        "{}",
        status.stdout
    );
    let list = totpctl(&sb, &["list"]);
    assert!(list.stdout.contains("serial=60234567"), "{}", list.stdout);
    let json = totpctl(&sb, &["--json", "status", USERS[0]]);
    assert!(
        json.stdout.contains("\"serial\":\"60234567\""),
        "{}",
        json.stdout
    );
}

#[test]
fn an_rfc_4180_csv_with_a_bom_quotes_and_an_algorithm_column() {
    let sb = setup("seed-rfc4180");
    let mut csv = vec![0xef, 0xbb, 0xbf];
    csv.extend_from_slice(
        format!(
            "\"user\",\"seed\",\"type\",\"digits\",\"period_or_counter\",\"algorithm\"\r\n\
             \"{}\",\"{}\",\"totp\",\"8\",\"30\",\"SHA256\"\r\n\
             # a comment\r\n\
             \"{}\",\"{}\",\"totp\",\"6\",\"60\",\"SHA512\"\r\n\
             \"{}\",\"{}\",\"hotp\",\"6\",\"12\",\"SHA1\"\r\n",
            USERS[0], SEEDS[0], USERS[1], SEEDS[1], USERS[2], SEEDS[2]
        )
        .as_bytes(),
    );
    let file = private_file(&sb, "tokens.csv", &csv);
    let run = totpctl(
        &sb,
        &[
            "import-tokens",
            &arg(&file),
            "--format",
            "base32",
            "--dry-run",
        ],
    );
    assert!(run.success, "{run:?}");
    assert!(
        run.stdout
            .contains("would enroll 'pamtotp-seed1': TOTP, SHA256, 8 digits, 30 s (line 2)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("would enroll 'pamtotp-seed2': TOTP, SHA512, 6 digits, 60 s (line 4)"),
        "{}",
        run.stdout
    );

    // A bad line in the middle: named with its column, nothing written.
    let bad = String::from_utf8(csv.clone())
        .unwrap()
        .replace("\"SHA512\"", "\"MD5\"");
    let bad_file = private_file(&sb, "bad.csv", bad.as_bytes());
    let before = snapshot(&sb.users_dir);
    let run = totpctl(
        &sb,
        &["import-tokens", &arg(&bad_file), "--format", "base32"],
    );
    assert!(!run.success);
    assert!(
        run.stderr
            .contains("line 4: column 6: unknown algorithm 'MD5'"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    assert_no_seed(&run);
    assert_eq!(snapshot(&sb.users_dir), before);

    let run = totpctl(&sb, &["import-tokens", &arg(&file), "--format", "base32"]);
    assert!(run.success, "{run:?}");
    assert_no_seed(&run);
    logs_in(&sb, USERS[0], &oathtool(SEEDS[0], "SHA256", 8, 30, 0));
    logs_in(&sb, USERS[1], &oathtool(SEEDS[1], "SHA512", 6, 60, 0));
    login(&sb, USERS[2], &oathtool_hotp(SEEDS[2], 12)).expect(true, "success", "HOTP counter 12");
}

/// Write a PSKC file with the `pskc` Python package: a TOTP token for
/// USERS[0] (UserId in the file), an 8-digit HOTP token at counter 7 and a
/// SHA256 TOTP token, encrypted as `how` says.
fn python_pskc(path: &Path, how: &str) {
    require_tool("/usr/bin/python3", "python3");
    let script = format!(
        r#"
import base64, sys, pskc
p = pskc.PSKC()
s = [base64.b32decode(x) for x in {seeds:?}]
k = p.add_key(secret=s[0], serial='SN-1001', algorithm='urn:ietf:params:xml:ns:keyprov:pskc:totp',
              response_length=6, time_interval=30, manufacturer='Token2')
k.key_userid = '{u0}'
p.add_key(secret=s[1], serial='SN-1002', algorithm='urn:ietf:params:xml:ns:keyprov:pskc:hotp',
          response_length=8, counter=7)
k = p.add_key(secret=s[2], serial='SN-1003', algorithm='urn:ietf:params:xml:ns:keyprov:pskc:totp',
              response_length=6, time_interval=30)
k.algorithm_suite = 'HMAC-SHA256'
how = '{how}'
if how == 'psk':
    p.encryption.setup_preshared_key(key=bytes.fromhex('00112233445566778899aabbccddeeff'), key_name='Batch 7')
elif how == 'pbkdf2':
    p.encryption.setup_pbkdf2('correct horse', key_name='Batch 8', iterations=2000)
p.write(sys.argv[1])
"#,
        seeds = SEEDS,
        u0 = USERS[0],
    );
    let out = Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python3 pskc (apt-get install python3-pskc): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn pskc_files_plain_and_encrypted_from_python_pskc() {
    for how in ["plain", "psk", "pbkdf2"] {
        let sb = setup(&format!("seed-pskc-{how}"));
        let file = sb.root.join(format!("{how}.pskcxml"));
        python_pskc(&file, how);
        let text = std::fs::read_to_string(&file).unwrap();
        // The map names the owners of the two tokens without a UserId.
        let map = private_file(
            &sb,
            "map.csv",
            format!(
                "SN-1001,{}\nSN-1002,{}\nSN-1003,{}\n",
                USERS[0], USERS[1], USERS[2]
            )
            .as_bytes(),
        );
        let mut unlock: Vec<String> = Vec::new();
        match how {
            "psk" => {
                let key = private_file(&sb, "key.hex", b"00112233445566778899aabbccddeeff\n");
                unlock = vec!["--key-file".into(), arg(&key)];
                assert!(text.contains("EncryptedValue") && text.contains("ValueMAC"));
            }
            "pbkdf2" => {
                let pw = private_file(&sb, "password", b"correct horse\n");
                unlock = vec!["--password-file".into(), arg(&pw)];
                assert!(text.contains("PBKDF2-params"));
            }
            _ => assert!(text.contains("PlainValue")),
        }
        let mut args: Vec<String> =
            vec!["import-pskc".into(), arg(&file), "--map".into(), arg(&map)];
        args.extend(unlock.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();

        if how != "plain" {
            // Without the key or the password: named, nothing written.
            let before = snapshot(&sb.users_dir);
            let run = totpctl(&sb, &args[..4]);
            assert!(!run.success, "{how}: {run:?}");
            assert!(
                run.stderr.contains("--key-file") || run.stderr.contains("--password-file"),
                "{how}: {}",
                run.stderr
            );
            // A wrong key or password: the MAC does not match.
            let wrong = if how == "psk" {
                private_file(&sb, "wrong.hex", b"ffeeddccbbaa99887766554433221100\n")
            } else {
                private_file(&sb, "wrong.pw", b"battery staple\n")
            };
            let mut wrong_args = args[..4].to_vec();
            let wrong_arg = arg(&wrong);
            wrong_args.extend([unlock[0].as_str(), wrong_arg.as_str()]);
            let run = totpctl(&sb, &wrong_args);
            assert!(!run.success, "{how}: {run:?}");
            assert!(
                run.stderr.contains("the key or password is wrong"),
                "{how}: {}",
                run.stderr
            );
            assert_no_seed(&run);
            assert_eq!(snapshot(&sb.users_dir), before);
        }

        let run = totpctl(&sb, &args);
        assert!(run.success, "{how}: {run:?}");
        assert_no_seed(&run);
        assert!(
            run.stdout
                .contains("HOTP, SHA1, 8 digits, next counter 7, serial SN-1002"),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout
                .contains("TOTP, SHA256, 6 digits, 30 s, serial SN-1003"),
            "{}",
            run.stdout
        );
        logs_in(&sb, USERS[0], &oathtool(SEEDS[0], "SHA1", 6, 30, 0));
        let hotp = Command::new("oathtool")
            .args(["--hotp", "--base32", "--digits=8", "-c", "7", SEEDS[1]])
            .output()
            .unwrap();
        let hotp = String::from_utf8(hotp.stdout).unwrap();
        login(&sb, USERS[1], hotp.trim()).expect(true, "success", "HOTP counter 7");
        logs_in(&sb, USERS[2], &oathtool(SEEDS[2], "SHA256", 6, 30, 0));
        let list = totpctl(&sb, &["list"]);
        assert!(list.stdout.contains("serial=SN-1003"), "{}", list.stdout);
    }
}
