//! Runs a Code Mode script through `codex app-server --listen stdio://`,
//! speaking its JSON-RPC (one JSON message a line) the way codex-flows'
//! runner does: `initialize`, the `initialized` notification,
//! `thread/start`, `thread/codeMode/execute`, then waits for
//! `turn/completed` within the step's time limit and reads the thread back
//! (`thread/read`) to find the agent's text, where `FLOW_RESULT` is.
//! Requests from the server are answered with error -32603: a flow runner
//! grants nothing.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{ChildStdin, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use crate::flow::supervise::{find_program, StepCommand};

/// What to run and where.
#[derive(Debug, Clone)]
pub struct AppServerSpec {
    /// `codex`, or `CODEX_APP_SERVER_CODEX_COMMAND`.
    pub command: String,
    /// The thread's working directory, and the server's.
    pub cwd: PathBuf,
    /// The whole environment of the server.
    pub env: Vec<(String, String)>,
    /// Prelude and script.
    pub source: String,
    pub timeout: Duration,
    /// The server's stderr, then the text the script produced.
    pub log_path: PathBuf,
}

/// The arguments codex-flows starts the app server with.
pub const APP_SERVER_ARGS: [&str; 11] = [
    "app-server",
    "--listen",
    "stdio://",
    "--enable",
    "apps",
    "--enable",
    "hooks",
    "--enable",
    "code_mode",
    "--enable",
    "code_mode_only",
];

/// Runs the script and returns the agent's text (where `FLOW_RESULT` is).
pub fn execute(spec: &AppServerSpec) -> Result<String> {
    let log = File::create(&spec.log_path).with_context(|| format!("failed to create {}", spec.log_path.display()))?;
    let path = spec.env.iter().find(|(name, _)| name == "PATH").map(|(_, value)| value.as_str()).unwrap_or("");
    // Found here, so that "not installed" is told apart from a failing server.
    let program = find_program(&spec.command, path).ok_or_else(|| {
        anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::NotFound))
            .context(format!("failed to start {} app-server: not found on PATH", spec.command))
    })?;
    let mut step = StepCommand::new(&program, &APP_SERVER_ARGS)
        .with_context(|| format!("failed to start {} app-server", spec.command))?;
    step.command
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log);
    let mut step = step.spawn().with_context(|| format!("failed to start {} app-server", spec.command))?;
    let child = &mut step.child;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut session = Session {
        stdin: child.stdin.take().expect("stdin is piped"),
        lines,
        next_id: 1,
        deadline: Instant::now() + spec.timeout,
        output: String::new(),
        completed: None,
    };
    let result = session.run(spec);
    let _ = step.stop();
    let appended = std::fs::OpenOptions::new()
        .append(true)
        .open(&spec.log_path)
        .and_then(|mut log| writeln!(log, "{}", session.output));
    appended.with_context(|| format!("failed to append the script's output to {}", spec.log_path.display()))?;
    result
}

struct Session {
    stdin: ChildStdin,
    lines: Receiver<String>,
    next_id: u64,
    deadline: Instant,
    /// Streamed text (agent message and command output deltas).
    output: String,
    /// The thread whose `turn/completed` arrived.
    completed: Option<String>,
}

impl Session {
    fn run(&mut self, spec: &AppServerSpec) -> Result<String> {
        let version = env!("CARGO_PKG_VERSION");
        self.request(
            "initialize",
            json!({"clientInfo": {"name": "patchmoi", "title": "patchmoi flow runner", "version": version}}),
        )?;
        self.send(&json!({"jsonrpc": "2.0", "method": "initialized"}))?;
        let started = self.request(
            "thread/start",
            json!({"cwd": spec.cwd, "approvalPolicy": "never", "sandbox": "danger-full-access",
                   "ephemeral": false, "persistExtendedHistory": true}),
        )?;
        let thread =
            started["thread"]["id"].as_str().ok_or_else(|| anyhow!("thread/start answered without a thread id"))?;
        let thread = thread.to_string();
        self.request("thread/codeMode/execute", json!({"threadId": thread, "source": spec.source}))?;
        while self.completed.as_deref() != Some(thread.as_str()) {
            let message = self.next().context("timed out waiting for turn/completed")?;
            self.handle(&message)?;
        }
        let read = self.request("thread/read", json!({"threadId": thread, "includeTurns": true}))?;
        let texts = agent_texts(&read);
        Ok(if texts.is_empty() { self.output.clone() } else { texts.join("\n") })
    }

    fn send(&mut self, message: &Value) -> Result<()> {
        writeln!(self.stdin, "{message}").context("the app server closed its input")?;
        self.stdin.flush().context("the app server closed its input")
    }

    /// Sends a request and waits for its answer, handling what comes first.
    fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        loop {
            let message = self.next().with_context(|| format!("no answer to {method}"))?;
            if message.get("method").is_none() && message["id"] == json!(id) {
                if let Some(error) = message.get("error") {
                    bail!("{method} failed: {}", error["message"].as_str().unwrap_or(&error.to_string()));
                }
                return Ok(message.get("result").cloned().unwrap_or(Value::Null));
            }
            self.handle(&message)?;
        }
    }

    /// A notification or a request from the server.
    fn handle(&mut self, message: &Value) -> Result<()> {
        let method = message["method"].as_str().unwrap_or_default();
        if let Some(id) = message.get("id").filter(|_| !method.is_empty()) {
            let error = json!({"code": -32603, "message": "flow runner does not handle server requests"});
            return self.send(&json!({"jsonrpc": "2.0", "id": id, "error": error}));
        }
        match method {
            "item/agentMessage/delta" | "item/commandExecution/outputDelta" => {
                self.output.push_str(message["params"]["delta"].as_str().unwrap_or_default());
            }
            "turn/completed" => {
                self.completed = Some(message["params"]["threadId"].as_str().unwrap_or_default().to_string());
            }
            _ => {}
        }
        Ok(())
    }

    /// The next message, before the deadline.
    fn next(&mut self) -> Result<Value> {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.trim().is_empty() => continue,
                Ok(line) => {
                    return serde_json::from_str(&line)
                        .with_context(|| format!("the app server sent a line that is not JSON: {line}"))
                }
                Err(RecvTimeoutError::Timeout) => bail!("the step's time limit passed"),
                Err(RecvTimeoutError::Disconnected) => bail!("the app server exited"),
            }
        }
    }
}

/// The text of every `agentMessage` item of every turn.
fn agent_texts(read: &Value) -> Vec<String> {
    let turns = read["thread"]["turns"].as_array().into_iter().flatten();
    turns
        .flat_map(|turn| turn["items"].as_array().into_iter().flatten())
        .filter(|item| item["type"] == "agentMessage")
        .filter_map(|item| item["text"].as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_texts_come_from_every_turn() {
        let read = json!({"thread": {"turns": [
            {"items": [{"type": "agentMessage", "text": "a"}, {"type": "commandExecution", "text": "x"}]},
            {"items": [{"type": "agentMessage", "text": "FLOW_RESULT {}"}]}
        ]}});
        assert_eq!(agent_texts(&read), ["a", "FLOW_RESULT {}"]);
        assert!(agent_texts(&json!({})).is_empty());
    }
}
