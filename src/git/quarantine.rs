//! The quarantine: a view of the repository whose new objects go to a
//! temporary directory (in memory where there is one) until a run publishes
//! them as one pack, or throws them away.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::layout::{setting_key, setting_value, Layout};
use super::pack::{loose_compressor, loose_path, write_loose, LooseObjects, Pack};
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
            sweeping: std::sync::Mutex::new(Vec::new()),
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
    /// See [`Quarantine::sweep`].
    sweeping: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
    dir: tempfile::TempDir,
}

impl Drop for Quarantine {
    fn drop(&mut self) {
        // The directory goes once the sweeps are done (fields drop after this).
        self.wait_for_sweeps();
    }
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
        // What an earlier publish swept is not listed half-removed.
        self.wait_for_sweeps();
        let loose = LooseObjects::list(&self.objects, format)?;
        let Some(pack) = loose.pack_reachable(&missing, format)? else { return Ok(()) };
        let count = pack.count();
        tracing::debug!(objects = count, bytes = pack.bytes.len(), "packed");
        if self.may_store(&pack) {
            self.store_pack(&pack, count >= UNPACK_LIMIT)?;
            self.sweep(pack.ids());
            return Ok(());
        }
        // The quarantine may be on another filesystem (tmpfs), so the pack is
        // streamed into the repository and stored there as a fetch stores
        // one: below git's `transfer.unpackLimit` (100 objects) as loose
        // objects, else indexed as a pack (which git syncs to disk).
        let store = if count < UNPACK_LIMIT { ["unpack-objects", "-q"] } else { ["index-pack", "--stdin"] };
        self.repo.run_bytes(&store, Some(&pack.bytes)).context("failed to store the new objects")?;
        self.sweep(pack.ids());
        Ok(())
    }

    /// Removes the loose files of `ids`, objects the repository now has,
    /// on a thread of its own, while the run goes on: left for the
    /// quarantine's removal, they are removed one by one as the run ends
    /// (7 ms for the 1,700 objects of a 200-patch replay here). Reads of
    /// them go on as before, through the repository's objects.
    fn sweep(&self, ids: Vec<String>) {
        let objects = self.objects.clone();
        let sweep = std::thread::Builder::new().name("patchmoi-sweep".into()).spawn(move || {
            for id in ids {
                // One left behind goes with the quarantine.
                let _ = std::fs::remove_file(loose_path(&objects, &id));
            }
        });
        match sweep {
            Ok(sweep) => self.sweeping.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(sweep),
            Err(error) => tracing::debug!("the quarantine's packed objects stay until it is removed: {error}"),
        }
    }

    fn wait_for_sweeps(&self) {
        let sweeps = std::mem::take(&mut *self.sweeping.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for sweep in sweeps {
            // A sweep that panicked removed less: the quarantine's removal does the rest.
            let _ = sweep.join();
        }
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

    /// Published objects leave the quarantine's files, swept beside the
    /// run, and stay readable through it; a second publish builds on the
    /// first.
    #[test]
    fn published_objects_are_swept_from_the_quarantine_and_stay_readable() {
        let dir = tempfile::tempdir().unwrap();
        let repo = super::super::fixture::FixtureRepo::init(dir.path()).unwrap();
        let base = repo.commit("base", &[("a", "one\n")]).unwrap();
        let git = Git::open(dir.path()).unwrap();
        let tree = git.tree_of(&base).unwrap();
        let quarantine = git.quarantine().unwrap();
        let stamp = "A U Thor <a@example.com> 0 +0000";
        let commit = |parent: &str, n: usize| {
            let body = format!("tree {tree}\nparent {parent}\nauthor {stamp}\ncommitter {stamp}\n\ncommit {n}\n");
            quarantine.write_commit(body.as_bytes()).unwrap()
        };
        // Past git's unpack limit, so the pack is stored as one.
        let mut tip = base.clone();
        for n in 0..UNPACK_LIMIT + 20 {
            tip = commit(&tip, n);
        }
        let loose = |id: &str| loose_path(&quarantine.objects, id);
        assert!(loose(&tip).exists());
        quarantine.publish(std::slice::from_ref(&tip)).unwrap();
        quarantine.wait_for_sweeps();
        assert!(!loose(&tip).exists(), "a published object's file is swept from the quarantine");
        assert_eq!(repo.git(&["cat-file", "-t", &tip]).unwrap(), "commit");
        assert_eq!(quarantine.git.run(&["cat-file", "-t", &tip]).unwrap().trim(), "commit");

        let next = commit(&tip, UNPACK_LIMIT + 20);
        quarantine.publish(std::slice::from_ref(&next)).unwrap();
        let count = repo.git(&["rev-list", "--count", &next]).unwrap();
        assert_eq!(count, (UNPACK_LIMIT + 22).to_string());
        drop(quarantine);
        repo.git(&["fsck", "--no-dangling"]).unwrap();
    }
}
