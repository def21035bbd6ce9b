//! `totpctl`: enroll and manage pam_totp users. Parses and dispatches; the
//! work is in the `enroll_cli` library.

#![forbid(unsafe_code)]

use clap::Parser;
use enroll_cli::cli::{Cli, Command};
use enroll_cli::commands;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = cli.config.as_deref();
    let result = match cli.command {
        Command::Enroll(args) => commands::enroll::run(config, &args),
        Command::Activate(args) => commands::activate::run(config, &args),
        Command::Status(args) => commands::status::run(config, &args),
        Command::List(args) => commands::list::run(config, &args),
        Command::RecoveryCodes(args) => commands::recovery_codes::run(config, &args),
        Command::Disable(args) => commands::remove::disable(config, &args),
        Command::Reset(args) => commands::remove::reset(config, &args),
        Command::Unlock(args) => commands::unlock::run(config, &args),
        Command::ImportGoogleAuthenticator(args) => commands::import::run(config, &args),
        Command::Check(args) => commands::check::run(config, &args),
        Command::GenerateMan { dir } => commands::generate::man(&dir),
        Command::GenerateCompletions { shell } => commands::generate::completions(shell),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("totpctl: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
