//! The quarantine: a view of the repository whose new objects go to a
//! temporary directory (in memory where there is one) until a run publishes
//! them as one pack, or throws them away.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::layout::{setting_key, setting_value, Layout};
use super::pack::{loose_compressor, write_loose, write_pack, LooseObjects, Pack};
use super::Git;

impl Git {
    /// A quarantine: a repository view whose new objects go to a temporary
    /// directory while existing objects stay readable.
    ///
    /// The quarantine lives in memory (`/dev/shm`) where there is one, else
    /// in the git directory, and its loose objects are not compressed: each
    /// object is written once, read a few times, then packed (and
    /// compressed) or thrown away, so disk writes and zlib there are pure cost.
    pub fn quarantine(&self) -> Result<Quarantine> {
        // The settings (see [`Quarantine::settings`]), which nearly every
        // run needs, and, read off them where they tell it beyond doubt,
        // the object directory, the format, the common git directory and
        // whether there are replace refs (any stops `git replay`, see
        // `chains.rs`): one process, and a `rev-parse` only where they do
        // not tell (see `layout.rs`).
        let loose = "core.looseCompression=0";
        let (settings, layout) = match self.with_config(loose).settings_and_layout() {
            Ok((settings, layout)) => (Some(settings), layout),
            Err(error) => {
                tracing::debug!("could not read the settings: {error:#}");
                (None, None)
            }
        };
        let Layout { objects, format, common_dir, replace_refs } = match layout {
            Some(layout) => layout,
            None => self.layout_from_git()?,
        };
        let in_memory = Path::new("/dev/shm");
        remove_abandoned_quarantines(in_memory);
        let builder = tempfile::Builder::new().prefix("patchmoi-quarantine-").tempdir_in(in_memory);
        let dir = match builder {
            Ok(dir) => dir,
            Err(_) => {
                let parent = self.git_path("patchmoi")?;
                std::fs::create_dir_all(&parent).with_context(|| format!("failed to create {}", parent.display()))?;
                tempfile::Builder::new()
                    .prefix("quarantine-")
                    .tempdir_in(&parent)
                    .with_context(|| format!("failed to create a quarantine under {}", parent.display()))?
            }
        };
        let quarantine_objects = dir.path().join("objects");
        std::fs::create_dir_all(&quarantine_objects)
            .with_context(|| format!("failed to create {}", quarantine_objects.display()))?;
        let git = self
            .with_env("GIT_OBJECT_DIRECTORY", quarantine_objects.as_os_str())
            .with_env("GIT_ALTERNATE_OBJECT_DIRECTORIES", objects.as_os_str())
            .with_config(loose);
        Ok(Quarantine {
            git,
            staging: dir.path().join("staging"),
            objects: quarantine_objects,
            repo_objects: objects,
            common_dir,
            format,
            replay_allowed: std::sync::OnceLock::new(),
            settings,
            replace_refs,
            zlib: std::sync::Mutex::new(loose_compressor()),
            repo: self.clone(),
            dir,
        })
    }
}

/// git's default `transfer.unpackLimit`: a fetch of fewer objects stores
/// them loose.
const UNPACK_LIMIT: usize = 100;

/// A quarantine is removed when its run ends; one whose process was killed
/// stays, in memory, until the machine restarts. Any older than a day is
/// such a leftover (no run takes that long): remove it, quietly.
fn remove_abandoned_quarantines(dir: &Path) {
    const ABANDONED: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let ours = entry.file_name().to_string_lossy().starts_with("patchmoi-quarantine-");
        let age = entry.metadata().and_then(|meta| meta.modified()).ok().and_then(|at| at.elapsed().ok());
        if ours && age.is_some_and(|age| age > ABANDONED) {
            if let Err(error) = std::fs::remove_dir_all(entry.path()) {
                tracing::debug!("could not remove {}: {error}", entry.path().display());
            }
        }
    }
}

/// See [`Git::quarantine`]. Dropping it discards whatever was not published.
pub struct Quarantine {
    /// Commands run through this handle write into the quarantine.
    pub git: Git,
    /// Scratch space for files that feed git (commit bodies).
    pub staging: PathBuf,
    /// Where the new objects are, loose.
    pub(super) objects: PathBuf,
    /// The repository's object directory.
    repo_objects: PathBuf,
    /// The repository's common git directory.
    common_dir: PathBuf,
    /// `sha1` or `sha256`, the repository's object format.
    format: String,
    /// See [`Quarantine::replay_allowed`].
    pub(super) replay_allowed: std::sync::OnceLock<bool>,
    /// See [`Quarantine::settings`].
    settings: Option<Vec<String>>,
    /// Whether the repository has replace refs (`refs/replace/`).
    pub(super) replace_refs: bool,
    /// One compressor for the loose objects patchmoi writes here.
    zlib: std::sync::Mutex<flate2::Compress>,
    /// The repository itself, outside the quarantine.
    repo: Git,
    dir: tempfile::TempDir,
}

impl Quarantine {
    /// `sha1` or `sha256`.
    pub fn format(&self) -> &str {
        &self.format
    }

    /// The repository itself, outside the quarantine (its long-lived
    /// cat-file already running).
    pub(super) fn repo(&self) -> &Git {
        &self.repo
    }

    pub(super) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The repository's common git directory (shared by all its worktrees:
    /// config, `info/`, objects).
    pub(super) fn repo_common_dir(&self) -> &Path {
        &self.common_dir
    }

    /// Writes a commit into the quarantine and returns its id.
    pub fn write_commit(&self, body: &[u8]) -> Result<String> {
        // A poisoned lock only means another thread panicked mid-write; the
        // compressor is reset before every object.
        let mut zlib = self.zlib.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        write_loose(&self.objects, &self.format, "commit", body, &mut zlib)
    }

    /// The packs git wrote into the quarantine, if any.
    fn packs(&self) -> Result<Vec<PathBuf>> {
        let dir = self.objects.join("pack");
        let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
        let mut packs = Vec::new();
        for entry in entries {
            let path = entry.with_context(|| format!("failed to list {}", dir.display()))?.path();
            if path.extension().is_some_and(|ext| ext == "pack") {
                packs.push(path);
            }
        }
        Ok(packs)
    }

    /// A commit of `tree` with no parent, for `git replay` to start from:
    /// it wants a commit, and a resolved conflict gives only a tree. Fixed
    /// identity and date, so no configured identity is needed.
    pub fn base_commit(&self, tree: &str) -> Result<String> {
        let stamp = "patchmoi <patchmoi@users.noreply.github.com> 0 +0000";
        self.write_commit(
            format!("tree {tree}\nauthor {stamp}\ncommitter {stamp}\n\npatchmoi: replay base\n").as_bytes(),
        )
    }

    /// The repository's settings (`git config --list`, with the
    /// quarantine's own `-c`), read as it was made; None when they could
    /// not be read.
    pub(super) fn settings(&self) -> Option<&[String]> {
        self.settings.as_deref()
    }

    /// Whether the setting `key` (as `git config --list` prints it: section
    /// and name in lower case) has a value; None when the settings could
    /// not be read.
    pub fn has_setting(&self, key: &str) -> Option<bool> {
        Some(setting_value(self.settings()?, key).is_some())
    }

    /// Whether patchmoi may write `pack` and its index into the repository
    /// itself, as `git index-pack` would: not where a setting asks git for
    /// more than its defaults when it stores objects (syncing, shared
    /// permissions, a second object format), nor for a pack past 2 GiB
    /// (its offsets need the index's second table).
    fn may_store(&self, pack: &Pack) -> bool {
        const STORAGE: [&str; 5] = [
            "core.fsync",
            "core.fsyncobjectfiles",
            "core.fsyncmethod",
            "core.sharedrepository",
            "extensions.compatobjectformat",
        ];
        let Some(settings) = self.settings() else { return false };
        pack.bytes.len() < 0x8000_0000 && !settings.iter().any(|entry| STORAGE.contains(&setting_key(entry)))
    }

    /// Stores `pack` in the repository's `objects/pack` with the index git
    /// would write (`git index-pack`, byte for byte; a test compares them),
    /// without a git process. The pack goes in first and the index after,
    /// each written aside then renamed, so git sees the pack only once whole.
    /// `sync`: as git does for a fetch of 100 objects or more, which it
    /// stores as a pack, the files reach the disk before the refs move;
    /// fewer, git would store loose, and it syncs no loose object by default.
    fn store_pack(&self, pack: &Pack, sync: bool) -> Result<()> {
        let dir = self.repo_objects.join("pack");
        std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
        let name = pack.name();
        let index = pack.index()?;
        for (ext, bytes) in [("pack", &pack.bytes), ("idx", &index)] {
            let path = dir.join(format!("pack-{name}.{ext}"));
            if path.exists() {
                continue;
            }
            let temporary = dir.join(format!("tmp_patchmoi_{}_{name}.{ext}", std::process::id()));
            let written = (|| -> std::io::Result<()> {
                // A leftover of a killed run with this process id.
                let _ = std::fs::remove_file(&temporary);
                // Read-only (less the umask), as git leaves its packs.
                let mut file = std::os::unix::fs::OpenOptionsExt::mode(
                    std::fs::OpenOptions::new().write(true).create_new(true),
                    0o444,
                )
                .open(&temporary)?;
                std::io::Write::write_all(&mut file, bytes)?;
                if sync {
                    file.sync_all()?;
                }
                std::fs::rename(&temporary, &path)
            })();
            if let Err(error) = written {
                let _ = std::fs::remove_file(&temporary);
                return Err(error).with_context(|| format!("failed to write {}", path.display()));
            }
        }
        Ok(())
    }

    /// Moves the objects reachable from `tips` (commits or trees) that only
    /// the quarantine has into the repository, as one pack.
    pub fn publish(&self, tips: &[String]) -> Result<()> {
        let format = &self.format;
        // A tip the repository has (the same replay again) brings all it
        // reaches; only the others need packing.
        let missing = self.repo.missing_objects(tips)?;
        // Git itself may have packed what it wrote here (`hash-object` puts
        // blobs above core.bigFileThreshold straight into a pack): those
        // packs go over as they are.
        for pack in self.packs()? {
            let bytes = std::fs::read(&pack).with_context(|| format!("failed to read {}", pack.display()))?;
            self.repo.run_bytes(&["index-pack", "--stdin"], Some(&bytes)).context("failed to store a pack")?;
        }
        let loose = LooseObjects::list(&self.objects, format)?;
        let objects = loose.reachable(&missing)?;
        if objects.is_empty() {
            return Ok(());
        }
        let pack = write_pack(&objects, format)?;
        tracing::debug!(objects = objects.len(), bytes = pack.bytes.len(), "packed");
        if self.may_store(&pack) {
            return self.store_pack(&pack, objects.len() >= UNPACK_LIMIT);
        }
        // The quarantine may be on another filesystem (tmpfs), so the pack is
        // streamed into the repository and stored there as a fetch stores
        // one: below git's `transfer.unpackLimit` (100 objects) as loose
        // objects, else indexed as a pack (which git syncs to disk).
        let store = if objects.len() < UNPACK_LIMIT { ["unpack-objects", "-q"] } else { ["index-pack", "--stdin"] };
        self.repo.run_bytes(&store, Some(&pack.bytes)).context("failed to store the new objects")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantines_left_by_killed_runs_are_removed_after_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("patchmoi-quarantine-old");
        let fresh = dir.path().join("patchmoi-quarantine-fresh");
        let other = dir.path().join("someone-elses");
        for path in [&old, &fresh, &other] {
            std::fs::create_dir_all(path.join("objects/ab")).unwrap();
        }
        let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(48 * 3600);
        for path in [&old, &other] {
            std::fs::File::open(path).unwrap().set_modified(two_days_ago).unwrap();
        }
        remove_abandoned_quarantines(dir.path());
        assert!(!old.exists());
        assert!(fresh.exists() && other.exists());
    }

    /// `git replay` is used only without replace refs (the scratch
    /// repository has none): the quarantine's one `rev-parse` tells.
    #[test]
    fn replace_refs_keep_git_replay_out() {
        let dir = tempfile::tempdir().unwrap();
        let repo = super::super::fixture::FixtureRepo::init(dir.path()).unwrap();
        let first = repo.commit("first", &[("a", "one\n")]).unwrap();
        let second = repo.commit("second", &[("a", "two\n")]).unwrap();
        let git = Git::open(dir.path()).unwrap();
        assert!(git.quarantine().unwrap().replay_allowed());
        repo.git(&["replace", &second, &first]).unwrap();
        assert!(!git.quarantine().unwrap().replay_allowed());
    }
}
