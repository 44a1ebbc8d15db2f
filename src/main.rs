//! The `patchmoi` binary: parse, start tracing, run, map the outcome to an
//! exit code (0 done, 1 needs attention or failed, 2 usage or configuration).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use patchmoi::cli::{dispatch, Cli};
use patchmoi::commands::Exit;
use patchmoi::error::is_usage;
use patchmoi::settings::Env;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = Env::capture();
    init_tracing(cli.verbose, env.get("RUST_LOG"));
    match dispatch(cli, &env) {
        Ok(Exit::Done) => ExitCode::SUCCESS,
        Ok(Exit::Attention) => ExitCode::from(1),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(if is_usage(&err) { 2 } else { 1 })
        }
    }
}

/// Logs go to stderr; stdout is for results.
fn init_tracing(verbose: u8, rust_log: Option<&str>) {
    let default = match verbose {
        0 => "patchmoi=info",
        1 => "patchmoi=debug",
        _ => "patchmoi=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_new(rust_log.unwrap_or(default))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
}
