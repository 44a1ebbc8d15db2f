//! `completions` and `man`: shell completions and a man page, generated
//! from the clap types so they never disagree with the help.

use std::io::Write;

use anyhow::Result;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::shared::Exit;
use super::Cli;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    pub shell: Shell,
}

/// `completions SHELL`: the completion script on stdout, e.g.
/// `patchmoi completions bash > ~/.local/share/bash-completion/completions/patchmoi`.
pub fn cmd_completions(args: CompletionsArgs) -> Result<Exit> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "patchmoi", &mut std::io::stdout());
    Ok(Exit::Done)
}

/// `man`: the man page (roff) on stdout, e.g. `patchmoi man > patchmoi.1`.
pub fn cmd_man() -> Result<Exit> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    std::io::stdout().write_all(&page)?;
    Ok(Exit::Done)
}
