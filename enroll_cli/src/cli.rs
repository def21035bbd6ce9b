//! The command line, as clap definitions. The man page and the shell
//! completions are generated from these, so they cannot drift from the flags.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use totp_core::otp::{self, Algorithm, OtpType};

const ABOUT: &str = "\
Enroll and manage pam_totp two-factor login (TOTP codes from an authenticator app).

By default only root runs totpctl: the user records and login state are
readable and writable only by root.

Self-service mode (off by default; 'totpctl self-service enable' turns it on)
installs totpctl setuid root, executable only by the group named in
[enroll] self_service_group (totp-users). Members may then run enroll,
activate, status, recovery-codes and disable on their own account only; USER
may be left out or must be their own name. totpctl then clears the
environment, takes the user from the real uid, ignores --config, writes the
QR code .jpg with the user's own identity, and logs every action and refusal
to syslog (authpriv, ident totpctl). Replacing, disabling or renewing the
recovery codes of an active enrollment asks for a current code or an unused
recovery code first (wrong answers count towards the lockout, as at login).";

/// The table of `--json` error codes ([`crate::error::CliError::code`]), in
/// `totpctl --help` and the man page.
macro_rules! json_error_codes {
    () => {
        "\
JSON OUTPUT (--json)

For scripts and the Cockpit page. totpctl never prompts and prints exactly one
JSON document on stdout: the result (exit status 0), or
{\"error\":{\"code\":CODE,\"message\":TEXT}} (exit status 1; 2 for usage,
invalid_user and invalid_issuer), where TEXT is the message printed without
--json (also printed on stderr) and CODE one of the stable codes below. A
code, a recovery code or a proof is read from the first line of standard
input, never from the command line. enroll asks for no code: it prints user,
status, type (totp or hotp), algorithm, digits, period (totp) or counter
(hotp), issuer, uri, key (the base32 secret in groups of four) and
qr_jpeg_base64 (the .jpg), and writes no .jpg unless --qr FILE is given;
with --seed-stdin (a hardware token) there is no uri, key or QR code but
\"hardware_token\":true. status shows type, and skew (steps) for totp or
hotp_next for hotp, then store (files or ldap) and store_writes (false on an
LDAP host without ldap.admin_bind_dn, whose records can be read but not
written). resync reads two codes, one a line, and prints user, type,
resynced (true), and for hotp first_counter, hotp_next and moved_by, for
totp last_step and skew. Available for enroll, activate, status, list,
recovery-codes, disable, reset, unlock, resync and self-service.

Error codes:
  not_root            not root, and totpctl is not setuid
  setuid_ignored      setuid, but no_new_privs or nosuid kept root away
  setuid_wrong_owner  installed setuid to another user than root
  unsafe_start        a setuid start could not reset limits or signals
  not_member          not in the self-service group
  admin_only          the command is for root only
  other_user          a self-service caller named another user
  not_enrolled        the user has no enrollment
  not_pending         activate: the enrollment is already active
  already_active      enroll: active enrollment; --force replaces it
  still_pending       recovery-codes: not activated yet
  no_code             the first line of standard input is empty
  malformed_code      not a code or recovery code of the right shape
  wrong_code          activate: wrong code; still pending
  code_used           activate: code already used; wait for the next
  proof_failed        current or recovery code refused: wrong, used
  locked_out          locked out after wrong answers; nothing compared
  too_soon            backoff after a wrong answer; nothing compared
  corrupt_record      the user's record cannot be read
  invalid_user        USER cannot be a login name
  unknown_user        there is no such account
  user_lookup_failed  the account database could not be read
  invalid_issuer      the issuer cannot be stored
  config_error        the config file is missing or invalid
  store_error         records or state could not be read or written
  io_error            a file or stream could not be read or written
  tool_failed         dpkg-statoverride or groupadd failed
  qr_exists           --qr FILE exists; --force overwrites it
  qr_symlink          --qr FILE is a symbolic link
  qr_no_directory     --qr FILE: its directory does not exist
  qr_not_file         --qr FILE is not a regular file
  qr_denied           --qr FILE: the user may not create it
  qr_write_failed     the QR code could not be written
  qr_terminal         --qr - with standard output on a terminal
  qr_error            the QR code could not be made
  usage               the command line is wrong
  internal            random source failed, or another internal error
  import_read_failed  import-google-authenticator, import-tokens, import-pam-oath, import-pskc (no --json)
  import_format       import-google-authenticator, import-tokens, import-pam-oath, import-pskc (no --json)
  no_home             import-google-authenticator (has no --json)
  resync_failed       resync: the codes are no consecutive pair in range
  check_failed        check (has no --json)"
    };
}

/// The same table, for tests and documentation.
pub const JSON_HELP: &str = json_error_codes!();

macro_rules! after_help {
    () => {
        "\
Every command except --help and --version needs root, or self-service mode for \
enroll, activate, status, recovery-codes and disable on your own account.
Exit status: 0 success, 1 the operation failed (for check: an error was found), 2 usage error."
    };
}

const AFTER_HELP: &str = after_help!();

const AFTER_LONG_HELP: &str = concat!(after_help!(), "\n\n", json_error_codes!());

/// Enroll and manage pam_totp two-factor login (TOTP codes from an authenticator app).
#[derive(Debug, Parser)]
#[command(
    name = "totpctl",
    version,
    propagate_version = true,
    arg_required_else_help = true
)]
#[command(long_about = ABOUT, after_help = AFTER_HELP, after_long_help = AFTER_LONG_HELP)]
pub struct Cli {
    // The help names the path compiled in: the package build checks it
    // (debian/rules), as a test build compiles in another.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        help = format!(
            "Read this config file instead of {}",
            crate::privilege::CONFIG_PATH
        )
    )]
    pub config: Option<PathBuf>,

    /// One JSON document on stdout, errors too; codes from standard input (see JSON OUTPUT in --help)
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Combinations clap cannot refuse by itself.
    pub fn check(&self) -> Result<(), crate::error::CliError> {
        let usage = |text: &str| Err(crate::error::CliError::Usage(text.to_owned()));
        match &self.command {
            Command::Activate(ActivateArgs { code: Some(_), .. }) if self.json => usage(
                "--code cannot be used with --json: the code is read from standard input, \
                 never from the command line",
            ),
            Command::Enroll(args) if self.json && args.qr_to_stdout() => usage(
                "--qr - cannot be used with --json: standard output carries the JSON, whose \
                 qr_jpeg_base64 field holds the same JPEG",
            ),
            Command::Enroll(args) if args.seed_stdin && args.qr.is_some() => {
                usage("--qr cannot be used with --seed-stdin: a hardware token has no QR code")
            }
            Command::Enroll(args) if args.kind() == OtpType::Totp && args.counter.is_some() => {
                usage("--counter is for --type hotp; a TOTP code's counter is the time")
            }
            Command::Enroll(args) if args.kind() == OtpType::Hotp && args.period.is_some() => {
                usage("--period is for --type totp; a HOTP code has a counter instead")
            }
            Command::ImportGoogleAuthenticator(_)
            | Command::ImportTokens(_)
            | Command::ImportPamOath(_)
            | Command::ImportPskc(_)
            | Command::Check(_)
            | Command::GenerateMan { .. }
            | Command::GenerateCompletions { .. }
                if self.json =>
            {
                usage(
                    "--json is available for enroll, activate, status, list, recovery-codes, \
                     disable, reset, unlock, resync and self-service; run this command without it",
                )
            }
            _ => Ok(()),
        }
    }

    /// Warnings about the command line itself, printed before it runs.
    pub fn warnings(&self) -> Vec<&'static str> {
        match &self.command {
            Command::Activate(ActivateArgs { code: Some(_), .. }) => vec![CODE_IN_ARGV_WARNING],
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new secret for USER, show it as a QR code and save it as a .jpg
    Enroll(EnrollArgs),
    /// Turn a pending enrollment active with a code from the app
    Activate(ActivateArgs),
    /// Show a user's enrollment, last code, failures, lockout and recovery codes left
    Status(StatusArgs),
    /// One line per enrolled user
    List(ListArgs),
    /// Count or replace a user's recovery codes
    RecoveryCodes(RecoveryCodesArgs),
    /// Turn two-factor login off for USER: remove the record and the state
    Disable(OwnUserArgs),
    /// Lost device and no saved .jpg: remove USER's enrollment, lockout and recovery codes (audited)
    Reset(UserArgs),
    /// Clear USER's lockout and failure count, and with --reset-skew the learned clock skew (audited)
    Unlock(UnlockArgs),
    /// Find USER's token again from two consecutive codes: a HOTP token pressed far ahead, or a
    /// clock far off (audited)
    #[command(long_about = RESYNC_ABOUT)]
    Resync(UserArgs),
    /// Migrate USER's (or with --all every account's) ~/.google_authenticator into active
    /// enrollments
    #[command(name = "import-google-authenticator", long_about = IMPORT_GA_ABOUT)]
    ImportGoogleAuthenticator(ImportArgs),
    /// Import tokens from a CSV file (user,seed,type,digits,period_or_counter), for hardware tokens
    #[command(name = "import-tokens", long_about = IMPORT_TOKENS_ABOUT)]
    ImportTokens(ImportTokensArgs),
    /// Migrate a pam_oath usersfile (HOTP and HOTP/T30 lines) into active enrollments
    #[command(name = "import-pam-oath", long_about = IMPORT_PAM_OATH_ABOUT)]
    ImportPamOath(ImportPamOathArgs),
    /// Import hardware tokens from a vendor's PSKC file (RFC 6030), plain or encrypted
    #[command(name = "import-pskc", long_about = IMPORT_PSKC_ABOUT)]
    ImportPskc(ImportPskcArgs),
    /// Copy the records and login state of this host's files into the LDAP store ([ldap] in the
    /// config); an entry already there with the same secret is brought forward (later steps and
    /// counters, used recovery codes), so run it again right after switching the backend
    Migrate(MigrateArgs),
    /// Dry run before enabling: config, file modes, records, users who would be locked out, PAM stacks and sshd
    #[command(long_about = CHECK_ABOUT)]
    Check(CheckArgs),
    /// Turn self-service mode on or off (setuid install via dpkg-statoverride), or show it
    #[command(name = "self-service", long_about = SELF_SERVICE_ABOUT)]
    SelfService(SelfServiceArgs),
    /// Write the totpctl(8) man page into DIR (used by the package build)
    #[command(hide = true)]
    GenerateMan {
        /// Directory to write totpctl.8 into
        dir: PathBuf,
    },
    /// Print a shell completion script to stdout (used by the package build)
    #[command(hide = true)]
    GenerateCompletions {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The login name to enroll [default: the calling user]
    pub user: Option<String>,
    /// Where to save the QR code image, or - for its JPEG bytes on standard output (then every
    /// message goes to standard error) [default: ./USER-totp.jpg; with --json, no file]
    #[arg(long, value_name = "FILE")]
    pub qr: Option<PathBuf>,
    /// Issuer shown in the app [default: [enroll] issuer in the config, else the host name]
    #[arg(long, value_name = "NAME", value_parser = parse_issuer)]
    pub issuer: Option<String>,
    /// HMAC algorithm [default: [otp] algorithm in the config, SHA1]
    #[arg(long, value_name = "SHA1|SHA256|SHA512", value_parser = parse_algorithm)]
    pub algorithm: Option<Algorithm>,
    /// Code length [default: [otp] digits in the config, 6]
    #[arg(long, value_name = "6|8", value_parser = parse_digits)]
    pub digits: Option<u8>,
    /// Seconds per code [default: [otp] period in the config, 30]
    #[arg(long, value_name = "30|60", value_parser = parse_period)]
    pub period: Option<u64>,
    /// Replace an active or unreadable enrollment, and overwrite an existing --qr file
    #[arg(long)]
    pub force: bool,
    /// totp (time-based codes) or hotp (counter-based codes, RFC 4226: hardware tokens and
    /// some apps) [default: totp]
    #[arg(long = "type", value_name = "totp|hotp", value_parser = parse_type)]
    pub otp_type: Option<OtpType>,
    /// HOTP: the counter of the token's or the app's next code [default: 0]
    #[arg(long, value_name = "N")]
    pub counter: Option<u64>,
    /// A hardware token: read its seed from the first line of standard input (asked without
    /// echo on a terminal; never on the command line). No QR code and no .jpg; a code from the
    /// token activates it. Root only.
    #[arg(long)]
    pub seed_stdin: bool,
    /// How the seed read by --seed-stdin is written [default: base32]
    #[arg(long, value_name = "hex|base32", value_enum, requires = "seed_stdin")]
    pub format: Option<SeedFormat>,
}

/// The encodings of a hardware token's seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SeedFormat {
    // Hexadecimal, as token sheets and pam_oath's usersfile write it.
    Hex,
    // RFC 4648 base32, as otpauth URIs and google-authenticator write it.
    Base32,
}

impl EnrollArgs {
    pub fn kind(&self) -> OtpType {
        self.otp_type.unwrap_or_default()
    }

    /// `--qr -`: the JPEG goes to standard output.
    pub fn qr_to_stdout(&self) -> bool {
        self.qr.as_deref() == Some(std::path::Path::new("-"))
    }
}

#[derive(Debug, Args)]
pub struct ActivateArgs {
    /// The login name whose enrollment is pending [default: the calling user]
    pub user: Option<String>,
    /// Deprecated, as other users can read it in the process list [default: read it from the
    /// terminal without echo, or from standard input]
    #[arg(long, value_name = "CODE")]
    pub code: Option<String>,
}

/// Printed when `activate --code` is used.
pub const CODE_IN_ARGV_WARNING: &str = "--code puts the code in the process list, where other \
    users can read it; pipe it on standard input instead (echo CODE | totpctl activate)";

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The login name [default: the calling user]
    pub user: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {}

#[derive(Debug, Args)]
pub struct RecoveryCodesArgs {
    /// The login name [default: the calling user]
    pub user: Option<String>,
    /// Replace every recovery code with a new set, shown once
    #[arg(long)]
    pub regenerate: bool,
}

#[derive(Debug, Args)]
pub struct OwnUserArgs {
    /// The login name [default: the calling user]
    pub user: Option<String>,
}

const SELF_SERVICE_ABOUT: &str = "\
Turn self-service mode on or off, or show whether it is on (root only).

enable creates the system group named in [enroll] self_service_group
(totp-users) if it is missing, and runs
'dpkg-statoverride --update --add root GROUP 4754 /usr/bin/totpctl', so that
members of the group run totpctl as root for their own enrollment and nobody
else can run it at all. Add users with 'adduser USER GROUP'. disable removes
the override and restores mode 0755 root:root. The override survives package
upgrades; purging the package removes it.

It is off by default because a setuid root program is attack surface on every
account that may run it; turn it on only where users should set up their
own two-factor login.";

#[derive(Debug, Args)]
pub struct SelfServiceArgs {
    #[arg(value_enum)]
    pub action: SelfServiceAction,
    /// The installed totpctl to change
    #[arg(long, value_name = "FILE", default_value = "/usr/bin/totpctl")]
    pub binary: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SelfServiceAction {
    /// Install totpctl setuid root for the self-service group
    Enable,
    /// Back to root only: mode 0755 root:root
    Disable,
    /// Show the mode, the override, the group and its members
    Status,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The login name
    pub user: String,
    /// Also forget the clock skew learned from USER's device (TOTP), so codes are checked
    /// around the server's time again
    #[arg(long)]
    pub reset_skew: bool,
    /// HOTP: the counter of the token's next code. Needed when USER's login state was lost
    /// (the counter is unknown and every code is refused); never guess low, as every code
    /// from that counter on works again
    #[arg(long, value_name = "N")]
    pub counter: Option<u64>,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Where to: ldap (this host's files into the directory), or directory (the
    /// directory's host-checked entries into entries whose codes the directory checks)
    #[arg(long, value_name = "ldap|directory", value_parser = ["ldap", "directory"])]
    pub to: String,
    /// Show what would be copied, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

const RESYNC_ABOUT: &str = "\
Find USER's token again from two consecutive codes (root only), as after a
HOTP token was pressed far past [otp] look_ahead, or for a device whose
clock is far off.

The two codes are read from standard input, one a line, the one shown first
on the first line (asked without echo on a terminal; never on the command
line). For HOTP they are searched for in the 1000 counters from the next
expected one, and the next expected counter then follows the second code.
For TOTP they are searched for within 2880 steps (a day of 30-second codes)
either side of now; the second code's offset becomes the learned clock skew
('totpctl unlock USER --reset-skew' forgets it) and both steps are used up.

The attempt is throttled like a login: refused while USER is locked out or
in backoff, and counted as a failure before the codes are compared.";

#[derive(Debug, Args)]
pub struct UserArgs {
    /// The login name
    pub user: String,
}

const CHECK_ABOUT: &str = "\
Dry run before enabling pam_totp (and after any change): read the config, the
user records and login state, the accounts, the PAM stacks that would use the
module and sshd's configuration, and report what would break logins.

Each finding is one line starting with 'error:', 'warning:' or 'ok:', and says
how to fix it. Errors are what would deny logins or bypass the code: a config
or record the module refuses, unsafe file modes, accounts with a login shell
(root first) that are not enrolled under unenrolled = \"deny\" and have no
exemption, an invalid pam_totp.so argument, and sshd settings that hide the
code prompt. The exit status is 1 when there is an error, 0 otherwise.

Accounts are listed with 'getent passwd' (the same NSS databases the module
uses; directory services that do not enumerate are not covered). A login shell
is one listed in /etc/shells.";

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A PAM service (a file in the PAM directory) to inspect; repeat for several [default: common-auth and sshd]
    #[arg(long = "pam-service", value_name = "NAME")]
    pub pam_services: Vec<String>,
    /// The PAM configuration directory
    #[arg(long, value_name = "DIR", default_value = "/etc/pam.d")]
    pub pam_dir: PathBuf,
    /// sshd's configuration file
    #[arg(long, value_name = "FILE", default_value = "/etc/ssh/sshd_config")]
    pub sshd_config: PathBuf,
    /// Read the accounts from FILE (passwd(5) format) instead of 'getent passwd'
    #[arg(long, value_name = "FILE")]
    pub passwd: Option<PathBuf>,
}

const IMPORT_GA_ABOUT: &str = "\
Move google-authenticator-libpam users to pam_totp, keeping their app entries
(root only).

With USER, imports that account's file; with --all, every account (from
'getent passwd') that has one. The file is ~/.google_authenticator, or
--secret TEMPLATE as in the secret= argument of the stack being replaced:
${USER} and ${HOME} are replaced, and a leading ~/ is the home directory.
The secret, the step size, a HOTP_COUNTER (counter-based codes, the next
counter), a TIME_SKEW (the learned clock skew) and the scratch codes (as
recovery codes, each working once) carry over; RATE_LIMIT, WINDOW_SIZE and
DISALLOW_REUSE give way to the config file. A file must be a regular file
with one link, owned by the account or by root.

Every file is read and checked before anything is written: if one is bad,
each bad file is named and nothing changes. One line per account says
what is (or, with --dry-run, would be) done. The files are left in place.";

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The login name (or --all)
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub user: Option<String>,
    /// The file to import [default: from --secret, else ~USER/.google_authenticator]
    #[arg(conflicts_with = "all")]
    pub path: Option<PathBuf>,
    /// Every account that has the file
    #[arg(long)]
    pub all: bool,
    /// Where each account's file is, as google-authenticator's secret= argument: ${USER},
    /// ${HOME} and a leading ~/ are replaced [default: ~/.google_authenticator]
    #[arg(long, value_name = "TEMPLATE")]
    pub secret: Option<String>,
    /// Show what would change, change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Replace active or unreadable enrollments
    #[arg(long)]
    pub force: bool,
}

fn parse_algorithm(text: &str) -> Result<Algorithm, String> {
    text.parse()
}

const IMPORT_TOKENS_ABOUT: &str = "\
Import tokens from a CSV file (RFC 4180: quoted fields, CRLF and a UTF-8
byte-order mark are fine), one token a line (root only):

  user,seed,type,digits,period_or_counter[,algorithm]

type is totp or hotp; digits 6 or 8; the fifth field is the period (30 or
60) of a totp token and the next counter of a hotp token; algorithm is SHA1
(the default), SHA256 or SHA512. Seeds are hex (--format base32 for
base32). Blank lines and lines starting with # are skipped.

A first line starting with 'user' or 'upn' is a header naming the columns,
in any order: user (or upn), seed (or secret, or 'secret key', always
base32), type, digits, period (or 'time interval'), counter, algorithm,
serial (or 'serial number'; kept in the record, shown by status and list);
manufacturer and model are ignored. So the Entra ID (Azure MFA) file that
token vendors ship imports as delivered:

  upn,serial number,secret key,time interval,manufacturer,model

with --domain example.com to make alice@example.com the account alice.

Every line is checked and every user looked up before anything is written:
a bad line is named by its number and nothing changes. --dry-run shows what
would change. The file holds seeds, so it must be owned by root with mode
0600. The tokens are active at once; a user with an active enrollment is
refused unless --force.";

const IMPORT_PAM_OATH_ABOUT: &str = "\
Migrate a pam_oath usersfile (/etc/users.oath) into active enrollments, so
its users keep their tokens (root only).

Lines are 'TYPE USER PASSWORD SECRET [COUNTER [LASTOTP [TIME]]]': HOTP,
HOTP/E/6 and HOTP/E/8 become HOTP enrollments whose next counter follows
the last one pam_oath accepted; HOTP/T30 and HOTP/T60 (and their /6 and /8
forms) become TOTP enrollments. A line with a PIN (PASSWORD other than - or
+) or 7 digits is refused: pam_totp has neither. Checked in full before
anything is written, as import-tokens; --dry-run shows what would change.";

#[derive(Debug, Args)]
pub struct ImportTokensArgs {
    /// The CSV file (owned by root, mode 0600)
    pub file: PathBuf,
    /// How the seeds are written [default: hex; a 'secret key' column is base32]
    #[arg(long, value_name = "hex|base32", value_enum)]
    pub format: Option<SeedFormat>,
    /// A user written USER@DOMAIN (an Entra ID UPN) is the account USER
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// Show what would change, change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Replace active or unreadable enrollments
    #[arg(long)]
    pub force: bool,
}

const IMPORT_PSKC_ABOUT: &str = "\
Import hardware tokens from the PSKC file (RFC 6030, XML) their vendor
shipped, as delivered (root only).

Each KeyPackage is a token: HOTP or TOTP, its digits (ResponseFormat), hash
(Suite: SHA1, SHA256 or SHA512), counter or time interval, and its serial
number (DeviceInfo/SerialNo), which is kept in the record and shown by
status and list. The owner is the key's UserId, or, with --map FILE (lines
serial,user), the account its serial is mapped to; tokens not in the map
are skipped with a note.

Secrets may be plain, or encrypted with AES-CBC under a pre-shared key
(--key-file: the key in hex) or a key derived from a password by PBKDF2
(--password-file: the password on the first line); an encrypted secret's
HMAC-SHA1 (ValueMAC) is checked before it is decrypted. Keys and passwords
are read from files owned by root with mode 0600, never from the command
line.

Every token is checked before anything is written, as import-tokens: a bad
element is named by its line and nothing changes; --dry-run shows what
would change.";

#[derive(Debug, Args)]
pub struct ImportPskcArgs {
    /// The PSKC file (owned by root, mode 0600)
    pub file: PathBuf,
    /// The pre-shared key, in hex, for encrypted secrets (owned by root, mode 0600)
    #[arg(long, value_name = "FILE", conflicts_with = "password_file")]
    pub key_file: Option<PathBuf>,
    /// The password of a PBKDF2-encrypted file, on its first line (owned by root, mode 0600)
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Lines serial,user: who gets each token; tokens not listed are skipped
    #[arg(long, value_name = "FILE")]
    pub map: Option<PathBuf>,
    /// Show what would change, change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Replace active or unreadable enrollments
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ImportPamOathArgs {
    /// The usersfile (owned by root, mode 0600)
    pub file: PathBuf,
    /// Show what would change, change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Replace active or unreadable enrollments
    #[arg(long)]
    pub force: bool,
}

fn parse_type(text: &str) -> Result<OtpType, String> {
    text.parse()
}

fn parse_digits(text: &str) -> Result<u8, String> {
    totp_core::record::parse_digits(text)
}

/// The record's rule for an issuer, and no colon (see
/// [`totp_core::record::check_new_issuer`]).
fn parse_issuer(text: &str) -> Result<String, String> {
    totp_core::record::check_new_issuer(text)?;
    Ok(text.to_owned())
}

fn parse_period(text: &str) -> Result<u64, String> {
    text.parse::<u64>()
        .map_err(|_| format!("period must be 30 or 60 seconds, not '{text}'"))
        .and_then(otp::check_period)
}
