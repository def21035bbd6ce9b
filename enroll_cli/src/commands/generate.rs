//! Hidden commands for the package build: the man pages and the shell
//! completions, both from the clap definition.
//!
//! `generate-man DIR` writes totpctl(8), which lists the subcommands and
//! adds the file formats, FILES, EXIT STATUS and SEE ALSO, and one page per
//! subcommand, totpctl-SUBCOMMAND(8), with every option.

use crate::cli::Cli;
use crate::error::CliError;
use clap::CommandFactory;
use std::path::Path;

const MANUAL: &str = "System Administration";

/// Write `DIR/totpctl.8` and `DIR/totpctl-SUBCOMMAND.8` for each visible
/// subcommand.
pub fn man(dir: &Path) -> Result<(), CliError> {
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    let date = page_date();
    let subcommands: Vec<clap::Command> = cli
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let names: Vec<String> = subcommands
        .iter()
        .map(|s| format!("totpctl-{}", s.get_name()))
        .collect();

    let mut see_also = vec!["pam_totp (8)".to_owned(), "pam_totp.toml (5)".to_owned()];
    see_also.extend(names.iter().map(|n| format!("{n} (8)")));
    let main = render(cli, &date, &[MAIN_EXTRA, EXIT_STATUS], &see_also)?;
    write(&dir.join("totpctl.8"), &main)?;

    for (sub, name) in subcommands.into_iter().zip(&names) {
        let command = sub.display_name(name.clone());
        let extra: &[&str] = match name.as_str() {
            "totpctl-import-tokens" => &[FORMAT_CSV, EXIT_STATUS],
            "totpctl-import-pskc" => &[FORMAT_PSKC, EXIT_STATUS],
            "totpctl-import-pam-oath" => &[FORMAT_USERSFILE, EXIT_STATUS],
            "totpctl-import-google-authenticator" => &[FORMAT_GA, EXIT_STATUS],
            _ => &[EXIT_STATUS],
        };
        let see_also = [
            "totpctl (8)".to_owned(),
            "pam_totp (8)".to_owned(),
            "pam_totp.toml (5)".to_owned(),
        ];
        let page = render(command, &date, extra, &see_also)?;
        write(&dir.join(format!("{name}.8")), &page)?;
    }
    Ok(())
}

/// The page of `command`, then the `extra` roff sections and SEE ALSO.
fn render(
    command: clap::Command,
    date: &str,
    extra: &[&str],
    see_also: &[String],
) -> Result<Vec<u8>, CliError> {
    let page = clap_mangen::Man::new(command)
        .section("8")
        .date(date)
        .manual(MANUAL);
    let mut rendered = Vec::new();
    page.render(&mut rendered)
        .map_err(|e| CliError::Output("the man page".into(), e))?;
    // clap_mangen puts a blank line (a paragraph break) between two line
    // breaks before a list of possible values, which mandoc -Tlint warns
    // about; one vertical space says the same.
    let mut text = String::from_utf8_lossy(&rendered)
        .replace(".br\n\n.br\n", ".sp\n")
        .replace("\n\n.br\n", "\n.sp\n")
        .into_bytes();
    for section in extra {
        text.extend_from_slice(section.as_bytes());
    }
    text.extend_from_slice(b".SH \"SEE ALSO\"\n");
    let last = see_also.len().saturating_sub(1);
    for (i, page) in see_also.iter().enumerate() {
        let (name, section) = page.split_once(' ').unwrap_or((page, ""));
        let comma = if i == last { "" } else { "," };
        text.extend_from_slice(
            format!(".BR {} {section}{comma}\n", name.replace('-', "\\-")).as_bytes(),
        );
    }
    Ok(text)
}

fn write(path: &Path, text: &[u8]) -> Result<(), CliError> {
    std::fs::write(path, text).map_err(|e| CliError::Output(path.display().to_string(), e))
}

/// The date on the pages: SOURCE_DATE_EPOCH (reproducible package builds),
/// else today.
fn page_date() -> String {
    let unix = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(totp_core::time::now_unix);
    let days = i64::try_from(unix / 86_400).unwrap_or_default();
    totp_core::time::format_date(days)
}

const EXIT_STATUS: &str = r#".SH "EXIT STATUS"
.TP
.B 0
Success.
.TP
.B 1
The operation failed and said why on standard error (with
.BR \-\-json ,
the error document on standard output names a stable code; see
.BR totpctl (8)).
For
.BR check ,
an error was found.
.TP
.B 2
The command line is wrong.
"#;

const MAIN_EXTRA: &str = r#".SH "FILE FORMATS"
The import commands read these files as their vendors or the replaced
modules write them.
Every file is checked in full before anything is written: a bad line or
element is named, by its line, and nothing changes.
No message ever shows a seed.
Files holding seeds must be owned by root with mode 0600.
.SS "Token CSV (import\-tokens)"
RFC 4180: quoted fields, CRLF and a UTF\-8 byte\-order mark are accepted.
Without a header: user, seed, type, digits, period_or_counter and an
optional algorithm.
With a header (a first field named user or upn), columns are found by name,
so the Entra ID (Azure MFA) file
.RB ( upn,serial\ number,secret\ key,time\ interval,manufacturer,model )
imports as delivered.
See
.BR totpctl\-import\-tokens (8).
.SS "PSKC (import\-pskc)"
RFC 6030 XML: plain secrets, or AES\-CBC under a pre\-shared key or a PBKDF2
password, with an HMAC\-SHA1 checked before decrypting.
See
.BR totpctl\-import\-pskc (8).
.SS "pam_oath usersfile (import\-pam\-oath)"
.B TYPE USER PASSWORD SECRET
.RB [ COUNTER
.RB [ LASTOTP
.RB [ TIME ]]]
with TYPE HOTP, HOTP/E/6, HOTP/E/8, HOTP/T30 or HOTP/T60; see
.BR totpctl\-import\-pam\-oath (8).
.SS "google\-authenticator file (import\-google\-authenticator)"
The base32 secret, option lines starting with a double quote, then 8\-digit
scratch codes; see
.BR totpctl\-import\-google\-authenticator (8).
.SH FILES
.TP
.I /etc/pam_totp/config.toml
The configuration, see
.BR pam_totp.toml (5).
.TP
.I /etc/pam_totp/users/USER.toml
Each user's record: the secret and its parameters (mode 0600, root).
.TP
.I /var/lib/pam_totp/USER.state
Each user's login state: last code used, failures, lockout, HOTP counter,
clock skew, used recovery codes.
.TP
.I ./USER\-totp.jpg
The QR code written by
.BR enroll ,
mode 0600, owned by the person it is for.
"#;

const FORMAT_CSV: &str = r#".SH "FILE FORMAT"
One token a record, RFC 4180: fields may be quoted (a double quote inside is
written twice), lines may end in CRLF, and a UTF\-8 byte\-order mark is
ignored.
Blank lines and lines starting with # are skipped.
.PP
Without a header the fields are
.IR user , seed , type
.RB ( totp
or
.BR hotp ),
.I digits
(6 or 8),
.I period_or_counter
(30 or 60 seconds for totp, the next counter for hotp) and an optional
.I algorithm
(SHA1, SHA256 or SHA512).
.PP
A first record whose first field is user or upn names the columns, in any
order: user (upn), seed (secret; secret key, always base32), type, digits,
period (time interval), counter, algorithm (hash), serial (serial number);
manufacturer, model and comment are ignored.
A serial is kept in the record and shown by status and list.
.PP
The Entra ID file shipped with hardware tokens:
.PP
.EX
upn,serial number,secret key,time interval,manufacturer,model
alice@example.com,60234567,JBSWY3DPEHPK3PXP...,30,Token2,c202
.EE
.PP
imports with
.BR "\-\-domain example.com" ,
which makes alice@example.com the account alice.
"#;

const FORMAT_PSKC: &str = r#".SH "FILE FORMAT"
PSKC (RFC 6030).
Each KeyPackage is a token: the Key Algorithm URI ends in hotp or totp;
AlgorithmParameters/ResponseFormat gives the digits (DECIMAL only) and
Suite the hash (SHA1 unless it names SHA256 or SHA512); Data holds the
Secret, the Counter and the TimeInterval (a Time other than 0 is refused).
DeviceInfo/SerialNo is kept in the record.
The owner is the UserId of the key or the device, or the account the
.B \-\-map
file gives for the serial.
.PP
An EncryptedValue is AES\-128, \-192 or \-256 in CBC mode, the IV first,
under the pre\-shared key or the key derived by PBKDF2\-HMAC\-SHA1 from the
password; its ValueMAC (HMAC\-SHA1 with the MACMethod's MACKey, or with the
encryption key when there is none) is checked before it is decrypted.
A file is refused if a MAC does not match: the key or the password is
wrong, or the file was changed.
"#;

const FORMAT_USERSFILE: &str = r#".SH "FILE FORMAT"
pam_oath's usersfile: whitespace\-separated
.I TYPE USER PASSWORD SECRET
.RI [ COUNTER
.RI [ LASTOTP
.RI [ TIME ]]].
TYPE is HOTP, HOTP/E, HOTP/E/6 or HOTP/E/8 (counter\-based) or HOTP/T30,
HOTP/T60 and their /6 and /8 forms (time\-based).
PASSWORD is \- (none) or + (checked by another module); a PIN is refused.
SECRET is hex.
A HOTP token's next counter follows the last one pam_oath accepted; a
time\-based token's last code stays used.
"#;

const FORMAT_GA: &str = r#".SH "FILE FORMAT"
As google\-authenticator(1) writes it: the base32 secret on the first line,
option lines starting with a double quote and a blank
.RB ( "\(dq TOTP_AUTH" ,
.BR "\(dq STEP_SIZE 30" ,
.BR "\(dq HOTP_COUNTER 1" ,
.BR "\(dq TIME_SKEW 0" ,
.BR "\(dq RATE_LIMIT 3 30" ,
.BR "\(dq WINDOW_SIZE 3" ,
.BR "\(dq DISALLOW_REUSE" ),
then the 8\-digit scratch codes, one a line.
.PP
The secret, the step size, the HOTP counter, the skew and the scratch codes
(as recovery codes) carry over; RATE_LIMIT, WINDOW_SIZE and DISALLOW_REUSE
give way to the configuration.
"#;

/// Print the completion script for `shell` to stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<(), CliError> {
    let mut command = Cli::command();
    // Into memory first: clap_complete panics on a write error, and a
    // closed pipe is not one to panic on (see crate::output).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "totpctl", &mut script);
    crate::output::write_bytes(&script);
    Ok(())
}
