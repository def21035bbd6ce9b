//! Hidden commands for the package build: the man page and the shell
//! completions, both from the clap definition.

use crate::cli::Cli;
use crate::error::CliError;
use clap::CommandFactory;
use std::path::Path;

/// Write `DIR/totpctl.8`.
pub fn man(dir: &Path) -> Result<(), CliError> {
    let path = dir.join("totpctl.8");
    let page = clap_mangen::Man::new(Cli::command())
        .section("8")
        .manual("System Administration");
    let mut text = Vec::new();
    page.render(&mut text)
        .map_err(|e| CliError::Output(path.display().to_string(), e))?;
    std::fs::write(&path, text).map_err(|e| CliError::Output(path.display().to_string(), e))
}

/// Print the completion script for `shell` to stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<(), CliError> {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "totpctl", &mut std::io::stdout());
    Ok(())
}
