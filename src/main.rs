//! The `patchmoi` binary: parse, start tracing, run, map the outcome to an
//! exit code (0 done, 1 needs attention or failed, 2 usage or configuration).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use patchmoi::action::io::defuse;
use patchmoi::cli::settings::capture_env;
use patchmoi::cli::Exit;
use patchmoi::cli::{dispatch, Cli};
use patchmoi::core::error::is_usage;
use patchmoi::core::secrets::scrub_held;
use patchmoi::core::text::printable;

fn main() -> ExitCode {
    patchmoi::cli::supervise_if_asked();
    patchmoi::cli::settings::hand_over_credentials();
    let cli = Cli::parse();
    let env = capture_env();
    patchmoi::cli::supervise_steps();
    let on_actions = env.get("GITHUB_ACTIONS") == Some("true");
    let colour = cli.color.enabled(std::io::stderr().is_terminal(), env.get("NO_COLOR").is_some());
    init_tracing(cli.verbose, env.get("RUST_LOG"), on_actions, colour);
    quiet_when_the_reader_leaves();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(cli, &env)));
    match outcome {
        Err(panic) if reader_left(panic.as_ref()) => ExitCode::from(READER_LEFT),
        Err(panic) => std::panic::resume_unwind(panic),
        Ok(Ok(Exit::Done)) => ExitCode::SUCCESS,
        Ok(Ok(Exit::Attention)) => ExitCode::from(1),
        Ok(Err(err)) => {
            let mut stderr = Stderr { defuse: on_actions };
            let _ = writeln!(stderr, "error: {}", printable(&format!("{err:#}")));
            ExitCode::from(if is_usage(&err) { 2 } else { 1 })
        }
    }
}

/// The exit code of a tool that SIGPIPE stopped, as a shell reports it.
const READER_LEFT: u8 = 128 + 13;

/// Whether a panic is `println!` finding stdout closed (`patchmoi status |
/// head`).
fn reader_left(payload: &(dyn std::any::Any + Send)) -> bool {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    message.starts_with("failed printing to stdout") && message.contains("Broken pipe")
}

/// When the reader of stdout goes away, patchmoi stops as any Unix tool
/// does, without a panic message. Rust ignores SIGPIPE and `println!`
/// panics instead; putting SIGPIPE back is no way out, since it would also
/// kill patchmoi when a git child closes its stdin early. The panic unwinds
/// (locks and temporary directories are released) and `main` exits 141.
fn quiet_when_the_reader_leaves() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !reader_left(info.payload()) {
            report(info);
        }
    }));
}

/// stderr, with every held secret hidden and, on GitHub Actions, every
/// workflow command defused: what we print can carry untrusted text (a tag
/// from a dispatch payload, git's messages), and the runner obeys commands
/// in stderr too. Commands patchmoi means to give go to stdout, never
/// through here.
struct Stderr {
    defuse: bool,
}

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut text = scrub_held(&String::from_utf8_lossy(buf));
        if self.defuse {
            text = defuse(&text);
        }
        std::io::stderr().write_all(text.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Logs go to stderr; stdout is for results.
fn init_tracing(verbose: u8, rust_log: Option<&str>, defuse: bool, colour: bool) {
    let default = match verbose {
        0 => "patchmoi=info",
        1 => "patchmoi=debug",
        _ => "patchmoi=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_new(rust_log.unwrap_or(default))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || Stderr { defuse })
        .with_ansi(colour)
        .with_target(false)
        .without_time()
        .init();
}
