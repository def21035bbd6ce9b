//! `totpctl`: enroll and manage pam_totp users. Parses and dispatches; the
//! work is in the `enroll_cli` library.

#![forbid(unsafe_code)]

use clap::error::ErrorKind;
use clap::Parser;
use enroll_cli::cli::{Cli, Command};
use enroll_cli::commands;
use enroll_cli::context::{require_root, Invocation};
use enroll_cli::error::CliError;
use enroll_cli::json;
use enroll_cli::privilege::{self, Caller};
use std::process::ExitCode;

fn main() -> ExitCode {
    // First of all, before the command line is even parsed: who is calling,
    // and for a setuid run, a clean environment. A refusal here is answered
    // in JSON if --json is anywhere on the command line.
    let caller = match privilege::start() {
        Ok(caller) => caller,
        Err(err) => return fail(&err, std::env::args_os().any(|a| a == "--json")),
    };
    totp_core::store::set_ldap_opener(totp_ldap::open);
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage(&err, std::env::args_os().any(|a| a == "--json")),
    };
    if let Err(err) = cli.check() {
        return fail(&err, cli.json);
    }
    for warning in cli.warnings() {
        eprintln!("totpctl: warning: {warning}");
    }
    let inv = Invocation {
        caller,
        config: cli.config,
        json: cli.json,
    };
    let config = &inv;
    let result = match cli.command {
        Command::Enroll(args) => commands::enroll::run(config, &args),
        Command::Activate(args) => commands::activate::run(config, &args),
        Command::Status(args) => commands::status::run(config, &args),
        Command::List(args) => commands::list::run(config, &args),
        Command::RecoveryCodes(args) => commands::recovery_codes::run(config, &args),
        Command::Disable(args) => commands::remove::disable(config, &args),
        Command::Reset(args) => commands::remove::reset(config, &args),
        Command::Unlock(args) => commands::unlock::run(config, &args),
        Command::Resync(args) => commands::resync::run(config, &args),
        Command::ImportGoogleAuthenticator(args) => commands::import::run(config, &args),
        Command::ImportTokens(args) => commands::batch::import_tokens(config, &args),
        Command::ImportPamOath(args) => commands::batch::import_pam_oath(config, &args),
        Command::ImportPskc(args) => commands::batch::import_pskc(config, &args),
        Command::Check(args) => commands::check::run(config, &args),
        Command::Migrate(args) => commands::migrate::run(config, &args),
        Command::SelfService(args) => commands::self_service::run(config, &args),
        // Harmless without privileges, but not for a setuid run: writing a
        // file as root into any directory.
        Command::GenerateMan { dir } => match inv.caller {
            Caller::SelfService(_) => require_root("generate-man", &inv),
            _ => commands::generate::man(&dir),
        },
        Command::GenerateCompletions { shell } => match inv.caller {
            Caller::SelfService(_) => require_root("generate-completions", &inv),
            _ => commands::generate::completions(shell),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err, inv.json),
    }
}

/// The message on stderr, as always; with `--json` also the error document
/// on stdout.
fn fail(err: &CliError, json: bool) -> ExitCode {
    let message = err.to_string();
    eprintln!("totpctl: {message}");
    if json {
        enroll_cli::outln!("{}", json::error(err.code(), &message));
    }
    ExitCode::from(err.exit_code())
}

/// A command line clap refuses. Help and version are printed as asked, even
/// with `--json`; every other refusal is the error `usage` (exit status 2).
fn usage(err: &clap::Error, json: bool) -> ExitCode {
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) || !json
    {
        err.exit();
    }
    let _ = err.print();
    let message = err.render().to_string();
    enroll_cli::outln!("{}", json::error("usage", message.trim_end()));
    ExitCode::from(2)
}
