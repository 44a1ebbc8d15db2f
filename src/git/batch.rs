//! One long-lived `git cat-file --batch-command` per repository view: the
//! ref and object reads of a run (a ref's value, a revision's commit or
//! tree, commits and blobs by name) go to it instead of a process each.
//!
//! It answers as `rev-parse --verify` and `cat-file --batch` do: it resolves
//! every name anew on each request (git re-reads loose refs and checks
//! `packed-refs` each time, and looks for new packs when an object is not
//! found), so refs moved and objects written after it started are seen.
//! Requests go in `--buffer` mode, ended by `flush`, so a batch of reads
//! costs one round trip; `-Z` makes names with newlines (paths) safe.
//!
//! Should the process fail to start or die, the handle falls back to a
//! process per call, which gives the same answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};

use super::{Git, SPAWNED};

/// What to ask of one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ask {
    /// The object id and type only.
    Info,
    /// The type and contents.
    Contents,
}

/// One answer: the object's id, then its type and (for [`Ask::Contents`])
/// contents, or None when the name resolves to nothing.
pub(super) type Answer = Option<(String, (String, Vec<u8>))>;

/// The running process, when there is one.
pub(super) struct Batch {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").field("pid", &self.child.id()).finish()
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        // Closing its stdin ends cat-file; wait so no zombie is left.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// The slot a repository view (and its clones) shares.
#[derive(Debug, Default, Clone)]
pub(super) struct Slot(Arc<Mutex<State>>);

#[derive(Debug, Default)]
enum State {
    #[default]
    NotStarted,
    Running(Batch),
    /// It could not start or died: a process per call from now on.
    Broken,
}

impl Git {
    /// Asks the long-lived cat-file about `names`, in order; None when it is
    /// not available (then the caller runs a process of its own).
    /// Names are bytes as git has them (see `paths.rs`).
    pub(super) fn batch(&self, ask: Ask, names: &[&[u8]]) -> Option<Vec<Answer>> {
        if names.is_empty() {
            return Some(Vec::new());
        }
        // A name with a NUL cannot be sent; an empty one means something
        // else to cat-file than to rev-parse.
        if names.iter().any(|name| name.is_empty() || name.contains(&0)) {
            return None;
        }
        let mut state = self.batch_slot.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if matches!(*state, State::NotStarted) {
            *state = match self.start_batch() {
                Ok(batch) => State::Running(batch),
                Err(error) => {
                    tracing::debug!("no long-lived cat-file: {error:#}");
                    State::Broken
                }
            };
        }
        let State::Running(batch) = &mut *state else {
            return None;
        };
        match exchange(batch, ask, names) {
            Ok(answers) => Some(answers),
            Err(error) => {
                tracing::debug!("the long-lived cat-file failed, one process per call from now on: {error:#}");
                *state = State::Broken;
                None
            }
        }
    }

    fn start_batch(&self) -> Result<Batch> {
        let args = ["cat-file", "--batch-command", "--buffer", "-Z"];
        let number = SPAWNED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        tracing::debug!(dir = %self.dir.display(), number, "git {} (long-lived)", args.join(" "));
        let mut cmd = self.command(&args);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = cmd.spawn().context("failed to start git cat-file")?;
        let stdin = child.stdin.take().context("cat-file has no stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("cat-file has no stdout")?);
        Ok(Batch { child, stdin: Some(stdin), stdout })
    }
}

/// Sends the requests and a flush, then reads one answer per name.
fn exchange(batch: &mut Batch, ask: Ask, names: &[&[u8]]) -> Result<Vec<Answer>> {
    let command = match ask {
        Ask::Info => "info ",
        Ask::Contents => "contents ",
    };
    let mut request = Vec::new();
    for name in names {
        request.extend_from_slice(command.as_bytes());
        request.extend_from_slice(name);
        request.push(0);
    }
    request.extend_from_slice(b"flush\0");
    // In `--buffer` mode cat-file reads every request before it answers
    // one, so writing all of them first cannot block on its output.
    let stdin = batch.stdin.as_mut().context("cat-file's input is closed")?;
    stdin.write_all(&request).context("failed to write to cat-file")?;
    stdin.flush().context("failed to write to cat-file")?;
    let mut answers = Vec::with_capacity(names.len());
    let mut header = Vec::new();
    for bytes in names {
        let name = String::from_utf8_lossy(bytes);
        header.clear();
        batch.stdout.read_until(0, &mut header).context("failed to read from cat-file")?;
        if header.pop() != Some(0) {
            bail!("cat-file ended early");
        }
        // `<name> missing` and `<name> ambiguous` repeat the name, which may
        // hold spaces; a found object is `<oid> <type> <size>`.
        if [&b" missing"[..], b" ambiguous"].iter().any(|answer| header == [&bytes[..], answer].concat()) {
            answers.push(None);
            continue;
        }
        let text = String::from_utf8_lossy(&header);
        let fields: Vec<&str> = text.split(' ').collect();
        let [oid, kind, size] = fields[..] else {
            bail!("unexpected cat-file answer {text:?} for {name}");
        };
        let size: usize = size.parse().with_context(|| format!("bad object size for {name}"))?;
        let body = match ask {
            Ask::Info => Vec::new(),
            Ask::Contents => {
                let mut body = vec![0; size + 1];
                batch.stdout.read_exact(&mut body).context("truncated cat-file output")?;
                if body.pop() != Some(0) {
                    bail!("cat-file's answer for {name} does not end where its size says");
                }
                body
            }
        };
        answers.push(Some((oid.to_string(), (kind.to_string(), body))));
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::super::fixture::FixtureRepo;
    use super::*;

    /// The long-lived reader answers as a fresh process would: refs moved,
    /// packed or deleted and objects written (loose or fetched as a pack)
    /// after it started are seen, missing names are None, and paths with
    /// spaces and newlines read back.
    #[test]
    fn the_long_lived_reader_sees_what_changed_since_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let repo = FixtureRepo::init(dir.path()).unwrap();
        let first = repo.commit("first", &[("a b\nc", "one\n")]).unwrap();
        let git = Git::open(dir.path()).unwrap();
        assert_eq!(git.resolve_commit("HEAD").unwrap().as_deref(), Some(first.as_str()));
        assert!(matches!(*git.batch_slot.0.lock().unwrap(), State::Running(_)), "reads go to the long-lived cat-file");
        assert_eq!(git.ref_value("refs/heads/nope").unwrap(), None);

        let second = repo.commit("second", &[("a b\nc", "two\n")]).unwrap();
        assert_eq!(git.resolve_commit("HEAD").unwrap().as_deref(), Some(second.as_str()));
        let blob = git.read_objects(&[format!("{second}:a b\nc"), format!("{second}:nope")]).unwrap();
        assert_eq!(blob, vec![Some(("blob".to_string(), b"two\n".to_vec())), None]);

        repo.git(&["branch", "other", &first]).unwrap();
        repo.git(&["pack-refs", "--all"]).unwrap();
        assert_eq!(git.ref_value("refs/heads/other").unwrap().as_deref(), Some(first.as_str()));
        repo.git(&["update-ref", "refs/heads/other", &second]).unwrap();
        assert_eq!(git.ref_value("refs/heads/other").unwrap().as_deref(), Some(second.as_str()));
        repo.git(&["update-ref", "-d", "refs/heads/other"]).unwrap();
        assert_eq!(git.ref_value("refs/heads/other").unwrap(), None);

        // Objects that arrive in a new pack after the reader looked.
        let other = tempfile::tempdir().unwrap();
        let elsewhere = FixtureRepo::init(other.path()).unwrap();
        let foreign = elsewhere.commit("elsewhere", &[("x", "x\n")]).unwrap();
        assert_eq!(git.resolve_commit(&foreign).unwrap(), None);
        let from = other.path().to_str().unwrap();
        repo.git(&["fetch", "--quiet", from, "HEAD:refs/heads/fetched"]).unwrap();
        repo.git(&["repack", "-a", "-d", "-q"]).unwrap();
        assert_eq!(git.resolve_commit("refs/heads/fetched").unwrap().as_deref(), Some(foreign.as_str()));
        assert_eq!(git.tree_of(&foreign).unwrap(), repo.rev(&format!("{foreign}^{{tree}}")).unwrap());
        assert_eq!(git.missing_objects(&[foreign.clone(), "1".repeat(40)]).unwrap(), vec!["1".repeat(40)]);
    }
}
