//! Publishing a quarantine: the new objects a replay made, found by walking
//! from its tips, written into the repository as one pack.
//!
//! `git pack-objects` would do it, but it reads each loose object twice
//! through open/mmap/munmap and spends most of its time in the kernel (0.2 s
//! for the 1,700 objects of a 200-patch replay here). Reading the files once
//! and writing an undeltified pack takes a few milliseconds. Its index is
//! written here too ([`Pack::index`], what `git index-pack` would write for
//! it), so publishing needs no git process; where a setting asks git to
//! check or sync what it stores, the pack goes through `git index-pack` or
//! `git unpack-objects` instead (see `Quarantine::publish`). The next `git
//! gc` deltifies the pack like any other.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use anyhow::{bail, Context, Result};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use sha1::Digest;

use super::objects::{header_lines, Object};

/// The loose objects of one object directory (a quarantine's).
pub struct LooseObjects {
    dir: PathBuf,
    /// Ids of every loose object in `dir`, listed once.
    ids: HashSet<String>,
    /// Bytes of a binary object id: 20 for SHA-1, 32 for SHA-256.
    id_len: usize,
}

impl LooseObjects {
    pub fn list(dir: &Path, format: &str) -> Result<LooseObjects> {
        let mut ids = HashSet::new();
        let entries = std::fs::read_dir(dir).with_context(|| format!("failed to list {}", dir.display()))?;
        for fanout in entries {
            let fanout = fanout?;
            let prefix = fanout.file_name().to_string_lossy().into_owned();
            if prefix.len() != 2 || !fanout.file_type()?.is_dir() {
                continue;
            }
            for object in std::fs::read_dir(fanout.path())? {
                let rest = object?.file_name().to_string_lossy().into_owned();
                // Half-written objects are `tmp_obj_*`; only finished ones count.
                if rest.bytes().all(|b| b.is_ascii_hexdigit()) {
                    ids.insert(format!("{prefix}{rest}"));
                }
            }
        }
        Ok(LooseObjects { dir: dir.to_path_buf(), ids, id_len: id_len(format) })
    }

    /// The object, which is here.
    fn read(&self, id: &str, zlib: &mut Decompress) -> Result<Object> {
        read_loose(&self.dir, id, zlib)?.with_context(|| format!("object {id} is gone from {}", self.dir.display()))
    }

    /// The objects here reachable from `tips` (commits or trees), each once,
    /// as one pack; None when none is. Objects not here are in the
    /// repository already (the quarantine's alternate: git does not write an
    /// object it can already read), and so is everything they reach.
    ///
    /// Reading each file and compressing its entry is nearly all the work,
    /// and each object's is its own: they are spread over the machine's
    /// cores (up to [`PACK_THREADS`]) as the walk finds them. The entries
    /// then go in the order a walk from the tips visits them, so the pack
    /// is the same whatever the number of threads.
    pub fn pack_reachable(&self, tips: &[String], format: &str) -> Result<Option<Pack>> {
        let threads = std::thread::available_parallelism().map_or(1, usize::from).min(PACK_THREADS);
        self.pack_reachable_on(tips, format, threads)
    }

    fn pack_reachable_on(&self, tips: &[String], format: &str, threads: usize) -> Result<Option<Pack>> {
        let start: Vec<&String> = tips.iter().filter(|id| self.ids.contains(*id)).collect();
        let walk = Walk::new(start.iter().map(|id| (*id).clone()).collect());
        // Below a few dozen objects, a thread costs more than it takes on.
        let threads = if self.ids.len() < PARALLEL_MIN { 1 } else { threads.max(1) };
        let found: Vec<Result<Vec<Found>>> = std::thread::scope(|scope| {
            // Helpers where the system gives threads; this one walks anyway.
            let helpers: Vec<_> = (1..threads)
                .filter_map(|_| std::thread::Builder::new().spawn_scoped(scope, || self.walk_part(&walk, threads)).ok())
                .collect();
            let own = self.walk_part(&walk, threads);
            let joined =
                helpers.into_iter().map(|part| part.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
            std::iter::once(own).chain(joined).collect()
        });
        let mut by_id: HashMap<String, (Vec<String>, Entry)> = HashMap::new();
        for part in found {
            by_id.extend(part?.into_iter().map(|(id, links, entry)| (id, (links, entry))));
        }
        if by_id.is_empty() {
            return Ok(None);
        }
        // Depth first from the tips, each object once.
        let mut order: Vec<&String> = Vec::with_capacity(by_id.len());
        let mut visited: HashSet<&String> = HashSet::with_capacity(by_id.len());
        let mut stack = start;
        while let Some(id) = stack.pop() {
            if !visited.insert(id) {
                continue;
            }
            let (links, _) = &by_id[id];
            stack.extend(links.iter().filter(|link| by_id.contains_key(*link) && !visited.contains(link)));
            order.push(id);
        }
        let entries = order.into_iter().map(|id| (id.as_str(), &by_id[id].1));
        assemble(entries, by_id.len(), format).map(Some)
    }

    /// One thread's share of [`LooseObjects::pack_reachable`]'s walk: it
    /// takes a few of the objects found, reads them and makes their
    /// entries, and hands back what they link to, until none is left and
    /// no other thread can find more.
    fn walk_part(&self, walk: &Walk, threads: usize) -> Result<Vec<Found>> {
        let (mut inflater, mut deflater) = (Decompress::new(true), Compress::new(Compression::fast(), true));
        let (mut found, mut links, mut busy) = (Vec::new(), Vec::new(), false);
        while let Some(taken) = walk.take(threads, std::mem::take(&mut links), busy) {
            busy = true;
            // Should reading panic, the others must not wait for this batch.
            let _guard = FailOnPanic(walk);
            for id in taken {
                match self.read_entry(&id, &mut inflater, &mut deflater) {
                    Ok((linked, entry)) => {
                        links.extend(linked.iter().filter(|link| self.ids.contains(*link)).cloned());
                        found.push((id, linked, entry));
                    }
                    Err(error) => {
                        walk.fail();
                        return Err(error);
                    }
                }
            }
        }
        Ok(found)
    }

    /// The object `id`: what it links to, and its pack entry.
    fn read_entry(&self, id: &str, inflater: &mut Decompress, deflater: &mut Compress) -> Result<(Vec<String>, Entry)> {
        let (kind, body) = self.read(id, inflater)?;
        let links = match kind.as_str() {
            "commit" => commit_links(&body),
            "tree" => tree_links(&body, self.id_len).with_context(|| format!("tree {id} is malformed"))?,
            _ => Vec::new(),
        };
        Ok((links, pack_entry(&kind, &body, deflater)?))
    }
}

/// At most how many objects a thread takes at once.
const BATCH: usize = 16;

/// The most threads a pack is made on: past the cores a replay leaves
/// idle, more only contend for the walk's lock.
const PACK_THREADS: usize = 4;

/// Fewer objects than this are packed on the calling thread.
const PARALLEL_MIN: usize = 64;

/// An object read by [`LooseObjects::walk_part`]: its id, the objects it
/// links to, and its pack entry.
type Found = (String, Vec<String>, Entry);

/// The walk [`LooseObjects::pack_reachable`]'s threads share.
struct Walk {
    state: Mutex<WalkState>,
    changed: Condvar,
}

struct WalkState {
    /// Found and not yet taken.
    queue: Vec<String>,
    /// Found, taken or not.
    seen: HashSet<String>,
    /// Threads with objects taken and not yet done: each may find more.
    busy: usize,
    /// Threads waiting for some.
    waiting: usize,
    failed: bool,
}

impl Walk {
    fn new(tips: Vec<String>) -> Walk {
        let state = WalkState { seen: tips.iter().cloned().collect(), queue: tips, busy: 0, waiting: 0, failed: false };
        Walk { state: Mutex::new(state), changed: Condvar::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WalkState> {
        // A thread that panicked holding the lock left the state whole:
        // each change to it is made in one step.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Hands back what a thread's last batch linked to (done with it when
    /// `busy`) and takes its next batch: a share of what is found, so that
    /// the other threads find some left; None once nothing is left and no
    /// thread can find more, or a thread failed.
    fn take(&self, threads: usize, links: Vec<String>, busy: bool) -> Option<Vec<String>> {
        let mut state = self.lock();
        for link in links {
            if state.seen.insert(link.clone()) {
                state.queue.push(link);
            }
        }
        if busy {
            state.busy -= 1;
        }
        loop {
            if state.failed {
                // The thread that failed reports why.
                return None;
            }
            if !state.queue.is_empty() {
                let share = (state.queue.len() / threads).clamp(1, BATCH);
                let from = state.queue.len() - share;
                let taken = state.queue.split_off(from);
                state.busy += 1;
                if state.waiting > 0 && !state.queue.is_empty() {
                    self.changed.notify_all();
                }
                return Some(taken);
            }
            if state.busy == 0 {
                if state.waiting > 0 {
                    self.changed.notify_all();
                }
                return None;
            }
            state.waiting += 1;
            state = self.changed.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
            state.waiting -= 1;
        }
    }

    /// Ends the walk for every thread.
    fn fail(&self) {
        self.lock().failed = true;
        self.changed.notify_all();
    }
}

/// Ends the walk if its thread panics while it holds a batch: the others
/// would otherwise wait for that batch forever, and the scope for them.
struct FailOnPanic<'a>(&'a Walk);

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fail();
        }
    }
}

/// Where the loose object `id` is kept in the object directory `dir`: a
/// fan-out directory named by its first two hex digits, then the rest.
pub(super) fn loose_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(&id[..2]).join(&id[2..])
}

/// The loose object `id` in the object directory `dir`, inflated (a loose
/// object is zlib of `<type> <size>\0<body>`), or None when it is not there.
pub fn read_loose(dir: &Path, id: &str, zlib: &mut Decompress) -> Result<Option<Object>> {
    let path = loose_path(dir, id);
    let compressed = match std::fs::read(&path) {
        Ok(compressed) => compressed,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("failed to read {}", path.display())),
    };
    let mut raw = Vec::new();
    inflate(zlib, &compressed, &mut raw).with_context(|| format!("object {id} in {} is corrupt", dir.display()))?;
    let nul = raw.iter().position(|b| *b == 0).with_context(|| format!("object {id} has no header"))?;
    let header = String::from_utf8_lossy(&raw[..nul]).into_owned();
    let (kind, size) = header.split_once(' ').with_context(|| format!("object {id} has a bad header"))?;
    let body = raw.split_off(nul + 1);
    if size.parse::<usize>().ok() != Some(body.len()) {
        bail!("object {id} in {} is truncated", dir.display());
    }
    Ok(Some((kind.to_string(), body)))
}

/// Writes `body` as a loose object of `kind` into the object directory
/// `dir` and returns its id: what `git hash-object -w` does, without a
/// process or a staging file per batch. Stored uncompressed, as the
/// quarantine's git writes its own (`core.looseCompression=0`); renamed into
/// place, so a reader never sees half an object.
pub fn write_loose(dir: &Path, format: &str, kind: &str, body: &[u8], zlib: &mut Compress) -> Result<String> {
    let id = super::object_id(format, kind, body);
    let path = loose_path(dir, &id);
    if path.exists() {
        return Ok(id);
    }
    let fanout = path.parent().expect("a loose object's path has its fan-out directory");
    std::fs::create_dir_all(fanout).with_context(|| format!("failed to create {}", fanout.display()))?;
    let mut object = format!("{kind} {}\0", body.len()).into_bytes();
    object.extend_from_slice(body);
    let mut bytes = Vec::new();
    deflate(zlib, &object, &mut bytes)?;
    let temporary = fanout.join(format!("tmp_obj_{}", &id[2..]));
    std::fs::write(&temporary, bytes).with_context(|| format!("failed to write {}", temporary.display()))?;
    std::fs::rename(&temporary, &path).with_context(|| format!("failed to write {}", path.display()))?;
    Ok(id)
}

/// A compressor for loose objects: stored, not compressed, as the
/// quarantine's git writes them (`core.looseCompression=0`). One serves any
/// number of objects; a new one per object would allocate and clear its
/// state (hundreds of kilobytes) each time.
pub fn loose_compressor() -> Compress {
    Compress::new(Compression::none(), true)
}

/// Appends `input` as one zlib stream to `out`, reusing `zlib`.
fn deflate(zlib: &mut Compress, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    zlib.reset();
    loop {
        out.reserve(input.len() / 2 + 64);
        let consumed = usize::try_from(zlib.total_in())?;
        if zlib.compress_vec(&input[consumed..], out, FlushCompress::Finish)? == Status::StreamEnd {
            return Ok(());
        }
    }
}

/// Appends the contents of the zlib stream `input` to `out`, reusing `zlib`.
fn inflate(zlib: &mut Decompress, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    zlib.reset(true);
    loop {
        out.reserve(input.len() + 64);
        let (consumed, produced) = (usize::try_from(zlib.total_in())?, zlib.total_out());
        if zlib.decompress_vec(&input[consumed..], out, FlushDecompress::Finish)? == Status::StreamEnd {
            return Ok(());
        }
        // All input read, and nothing more came out: the stream is cut short.
        if usize::try_from(zlib.total_in())? == input.len() && zlib.total_out() == produced {
            bail!("the stream ends early");
        }
    }
}

/// The tree and parents a commit names.
fn commit_links(body: &[u8]) -> Vec<String> {
    header_lines(body)
        .filter_map(|line| line.strip_prefix(b"tree ").or_else(|| line.strip_prefix(b"parent ")))
        .map(|id| String::from_utf8_lossy(id).into_owned())
        .collect()
}

/// The ids a tree's entries point at, except submodules, whose commits
/// live in another repository.
fn tree_links(body: &[u8], id_len: usize) -> Result<Vec<String>> {
    Ok(tree_entries(body, id_len)?
        .into_iter()
        .filter(|(mode, _, _)| *mode != b"160000")
        .map(|(_, _, id)| hex(id))
        .collect())
}

/// One entry of a tree object, borrowed from its body: (mode, name,
/// binary id).
pub(super) type TreeEntryBytes<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// A tree object's entries (`<mode> <name>\0<binary id>` each).
pub(super) fn tree_entries(mut body: &[u8], id_len: usize) -> Result<Vec<TreeEntryBytes<'_>>> {
    let mut entries = Vec::new();
    while !body.is_empty() {
        let nul = body.iter().position(|b| *b == 0).context("entry without a name")?;
        let space = body[..nul].iter().position(|b| *b == b' ').context("entry without a mode")?;
        let Some(id) = body.get(nul + 1..nul + 1 + id_len) else { bail!("entry with a short id") };
        entries.push((&body[..space], &body[space + 1..nul], id));
        body = &body[nul + 1 + id_len..];
    }
    Ok(entries)
}

/// Lowercase hex of a binary id (a tree of 3,000 entries is 60,000 bytes to
/// convert, so no formatting machinery per byte).
pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    out
}

/// A pack patchmoi wrote: its bytes, trailed by its checksum, and where
/// each object is in it, for its index.
pub struct Pack {
    pub bytes: Vec<u8>,
    /// (binary id, offset, CRC-32 of the object's bytes in the pack), in
    /// pack order.
    entries: Vec<(Vec<u8>, u64, u32)>,
    format: String,
}

/// One object as a pack stores it: its type and size, then its body
/// deflated; and the CRC-32 of those bytes, which the index records.
pub struct Entry {
    bytes: Vec<u8>,
    crc: u32,
}

fn pack_entry(kind: &str, body: &[u8], zlib: &mut Compress) -> Result<Entry> {
    let code: u8 = match kind {
        "commit" => 1,
        "tree" => 2,
        "blob" => 3,
        "tag" => 4,
        other => bail!("cannot pack an object of type {other}"),
    };
    // Type and size: the type in bits 4-6 of the first byte with the size's
    // low four bits, then seven bits a byte, each but the last with its
    // high bit set.
    let mut bytes = Vec::with_capacity(body.len() / 2 + 16);
    let mut size = body.len();
    let mut byte = (code << 4) | (size & 0x0f) as u8;
    size >>= 4;
    while size > 0 {
        bytes.push(byte | 0x80);
        byte = (size & 0x7f) as u8;
        size >>= 7;
    }
    bytes.push(byte);
    deflate(zlib, body, &mut bytes)?;
    let mut crc = flate2::Crc::new();
    crc.update(&bytes);
    Ok(Entry { crc: crc.sum(), bytes })
}

/// A version 2 pack of `count` entries, undeltified, in the order given,
/// trailed by its checksum in the repository's hash.
fn assemble<'a>(entries: impl Iterator<Item = (&'a str, &'a Entry)>, count: usize, format: &str) -> Result<Pack> {
    let mut pack = Vec::new();
    let mut index = Vec::with_capacity(count);
    pack.extend_from_slice(b"PACK");
    pack.extend_from_slice(&2u32.to_be_bytes());
    pack.extend_from_slice(&u32::try_from(count).context("too many objects for one pack")?.to_be_bytes());
    for (id, entry) in entries {
        let id: Vec<u8> =
            (0..id.len()).step_by(2).map(|at| u8::from_str_radix(&id[at..at + 2], 16)).collect::<Result<_, _>>()?;
        index.push((id, pack.len() as u64, entry.crc));
        pack.extend_from_slice(&entry.bytes);
    }
    let checksum = digest(format, &pack);
    pack.extend_from_slice(&checksum);
    Ok(Pack { bytes: pack, entries: index, format: format.to_string() })
}

/// Bytes of a binary object id: 20 for SHA-1, 32 for SHA-256.
pub(super) fn id_len(format: &str) -> usize {
    if format == "sha256" {
        32
    } else {
        20
    }
}

/// The checksum git puts after a pack or an index, in the repository's hash.
fn digest(format: &str, bytes: &[u8]) -> Vec<u8> {
    if format == "sha256" {
        sha2::Sha256::digest(bytes).to_vec()
    } else {
        sha1::Sha1::digest(bytes).to_vec()
    }
}

impl Pack {
    /// How many objects it holds.
    pub fn count(&self) -> usize {
        self.entries.len()
    }

    /// The ids of the objects it holds, in hex.
    pub fn ids(&self) -> Vec<String> {
        self.entries.iter().map(|(id, _, _)| hex(id)).collect()
    }

    /// The pack's checksum in hex: its name is `pack-<checksum>.pack`.
    pub fn name(&self) -> String {
        hex(self.checksum())
    }

    /// The pack's trailing checksum.
    fn checksum(&self) -> &[u8] {
        &self.bytes[self.bytes.len() - id_len(&self.format)..]
    }

    /// Its index, version 2 (what `git index-pack` writes, see
    /// Documentation/gitformat-pack.txt): the fan-out table, the sorted ids,
    /// their CRC-32s and offsets, the pack's checksum and the index's own.
    pub fn index(&self) -> Result<Vec<u8>> {
        let mut sorted: Vec<&(Vec<u8>, u64, u32)> = self.entries.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut index = b"\xfftOc".to_vec();
        index.extend_from_slice(&2u32.to_be_bytes());
        let mut fanout = [0u32; 256];
        for (id, _, _) in &sorted {
            fanout[usize::from(id[0])] += 1;
        }
        let mut total = 0u32;
        for count in fanout {
            total += count;
            index.extend_from_slice(&total.to_be_bytes());
        }
        for (id, _, _) in &sorted {
            index.extend_from_slice(id);
        }
        for (_, _, crc) in &sorted {
            index.extend_from_slice(&crc.to_be_bytes());
        }
        for (_, offset, _) in &sorted {
            // Past 2 GiB an offset goes into a second table; a replay's
            // pack never comes near that, so it is refused rather than written.
            let offset = u32::try_from(*offset).ok().filter(|offset| *offset < 0x8000_0000);
            index.extend_from_slice(&offset.context("pack too large to index")?.to_be_bytes());
        }
        index.extend_from_slice(self.checksum());
        let checksum = digest(&self.format, &index);
        index.extend_from_slice(&checksum);
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SHA-1 tree's body: each entry's `<mode> <name>` (as given, so a
    /// malformed one can be written) and an id of one repeated byte.
    fn tree_body(entries: &[(&str, u8)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (mode_and_name, byte) in entries {
            body.extend_from_slice(mode_and_name.as_bytes());
            body.push(0);
            body.extend([*byte; 20]);
        }
        body
    }

    #[test]
    fn tree_links_skip_submodules() {
        let body = tree_body(&[("100644 a.txt", 0x11), ("160000 sub", 0x22), ("40000 dir", 0x33)]);
        let links = tree_links(&body, 20).unwrap();
        assert_eq!(links, vec!["11".repeat(20), "33".repeat(20)]);
        assert!(tree_links(&body[..body.len() - 1], 20).is_err());
    }

    fn git(dir: &Path, args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
        let mut child = std::process::Command::new("git")
            .current_dir(dir)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.unwrap_or_default()).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "git {args:?}");
        output.stdout
    }

    #[test]
    fn loose_objects_and_packs_round_trip_through_git() {
        for format in ["sha1", "sha256"] {
            let tmp = tempfile::tempdir().unwrap();
            let repo = tmp.path();
            git(repo, &["init", "--quiet", &format!("--object-format={format}")], None);
            let objects = repo.join(".git/objects");
            // Written by patchmoi, read by git and by patchmoi.
            let mut zlib = loose_compressor();
            let big: Vec<u8> = (0..200_000u32).flat_map(|n| n.to_le_bytes()).collect();
            let blob = write_loose(&objects, format, "blob", &big, &mut zlib).unwrap();
            let small = write_loose(&objects, format, "blob", b"hello\n", &mut zlib).unwrap();
            assert_eq!(git(repo, &["cat-file", "blob", &blob], None), big);
            let tree_input = format!("100644 blob {blob}\tbig\n100644 blob {small}\tsmall\n");
            let tree = String::from_utf8(git(repo, &["mktree"], Some(tree_input.as_bytes()))).unwrap();
            let tree = tree.trim().to_string();
            let loose = LooseObjects::list(&objects, format).unwrap();
            let pack = loose.pack_reachable(std::slice::from_ref(&tree), format).unwrap().unwrap();
            assert_eq!(pack.count(), 3, "the tree and its two blobs");

            // Indexed by git in a fresh repository.
            let other = tmp.path().join("other");
            git(tmp.path(), &["init", "--quiet", &format!("--object-format={format}"), "other"], None);
            git(&other, &["index-pack", "--stdin"], Some(&pack.bytes));
            // Our index of it is, byte for byte, the one git made.
            let indexed = other.join(format!(".git/objects/pack/pack-{}.idx", pack.name()));
            assert_eq!(std::fs::read(&indexed).unwrap(), pack.index().unwrap(), "{format}");
            assert_eq!(git(&other, &["cat-file", "blob", &format!("{tree}:big")], None), big);
            assert_eq!(git(&other, &["cat-file", "blob", &format!("{tree}:small")], None), b"hello\n");
        }
    }

    #[test]
    fn a_cut_short_object_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let id = write_loose(tmp.path(), "sha1", "blob", b"some text", &mut loose_compressor()).unwrap();
        let path = loose_path(tmp.path(), &id);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 6]).unwrap();
        let loose = LooseObjects::list(tmp.path(), "sha1").unwrap();
        let error = loose.pack_reachable(&[id], "sha1").err().unwrap();
        assert!(format!("{error:#}").contains("is corrupt"), "{error:#}");
    }

    /// A pack made on several threads is the one made on one, byte for
    /// byte; it holds what the tips reach and nothing else; and an object
    /// that cannot be read fails the walk on every thread count.
    #[test]
    fn a_pack_made_on_several_threads_is_the_one_made_on_one() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path();
        git(repo, &["init", "--quiet"], None);
        let objects = repo.join(".git/objects");
        let mut zlib = loose_compressor();
        let mut listing = String::new();
        for n in 0..3 * PARALLEL_MIN {
            let blob = write_loose(&objects, "sha1", "blob", format!("file {n}\n").as_bytes(), &mut zlib).unwrap();
            listing.push_str(&format!("100644 blob {blob}\tf{n:03}\n"));
        }
        let tree = String::from_utf8(git(repo, &["mktree"], Some(listing.as_bytes()))).unwrap().trim().to_string();
        let stamp = "A U Thor <a@example.com> 0 +0000";
        let mut tip: Option<String> = None;
        for n in 0..5 {
            let parent = tip.as_ref().map(|id| format!("parent {id}\n")).unwrap_or_default();
            let body = format!("tree {tree}\n{parent}author {stamp}\ncommitter {stamp}\n\ncommit {n}\n");
            tip = Some(write_loose(&objects, "sha1", "commit", body.as_bytes(), &mut zlib).unwrap());
        }
        let tip = tip.unwrap();
        let stray = write_loose(&objects, "sha1", "blob", b"reached by nothing\n", &mut zlib).unwrap();

        let loose = LooseObjects::list(&objects, "sha1").unwrap();
        let tips = std::slice::from_ref(&tip);
        let one = loose.pack_reachable_on(tips, "sha1", 1).unwrap().unwrap();
        let four = loose.pack_reachable_on(tips, "sha1", 4).unwrap().unwrap();
        assert_eq!(one.count(), 3 * PARALLEL_MIN + 1 + 5, "the blobs, the tree and the commits");
        assert!(one.bytes == four.bytes, "the same pack on one thread and on four");

        let other = repo.join("other");
        git(repo, &["init", "--quiet", "other"], None);
        git(&other, &["index-pack", "--stdin"], Some(&four.bytes));
        assert_eq!(git(&other, &["rev-list", "--count", &tip], None), b"5\n");
        let listed = git(&other, &["cat-file", "--batch-all-objects", "--batch-check=%(objectname)"], None);
        assert!(!String::from_utf8(listed).unwrap().contains(&stray), "an object no tip reaches stays out");

        let blob = loose.ids.iter().find(|id| **id != tip && **id != tree && **id != stray).unwrap().clone();
        let path = loose_path(&objects, &blob);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 6]).unwrap();
        for threads in [1, 4] {
            let error = loose.pack_reachable_on(tips, "sha1", threads).err().unwrap();
            assert!(format!("{error:#}").contains("is corrupt"), "{threads} threads: {error:#}");
        }
    }

    #[test]
    fn pack_headers_encode_type_and_size() {
        let body = vec![b'x'; 300];
        let id = super::super::object_id("sha1", "blob", &body);
        let entry = pack_entry("blob", &body, &mut Compress::new(Compression::fast(), true)).unwrap();
        let pack = assemble(std::iter::once((id.as_str(), &entry)), 1, "sha1").unwrap().bytes;
        assert_eq!(&pack[..12], b"PACK\0\0\0\x02\0\0\0\x01");
        // 300 = 0b1_0010_1100: low nibble 0xc with the blob type, then 300 >> 4 = 18.
        assert_eq!(&pack[12..14], &[0x80 | (3 << 4) | 0x0c, 18]);
    }

    /// A tree whose first entry has no mode is an error on any number of
    /// threads, not a panic (and, on several, not a hang): the entry's name
    /// ends at its NUL, and the mode is looked for before it.
    #[test]
    fn a_malformed_tree_is_an_error_on_every_thread_count() {
        let body = tree_body(&[("100644file", 0x11), ("100644 x", 0x22)]);
        let error = tree_entries(&body, 20).unwrap_err();
        assert!(format!("{error:#}").contains("without a mode"), "{error:#}");

        let tmp = tempfile::tempdir().unwrap();
        let mut zlib = loose_compressor();
        for n in 0..PARALLEL_MIN + 6 {
            write_loose(tmp.path(), "sha1", "blob", format!("blob {n}\n").as_bytes(), &mut zlib).unwrap();
        }
        let tree = write_loose(tmp.path(), "sha1", "tree", &body, &mut zlib).unwrap();
        let loose = LooseObjects::list(tmp.path(), "sha1").unwrap();
        for threads in [1, 4] {
            let error = loose.pack_reachable_on(std::slice::from_ref(&tree), "sha1", threads).err().unwrap();
            assert!(format!("{error:#}").contains("is malformed"), "{threads} threads: {error:#}");
        }
    }

    /// A thread that panics holding a batch ends the walk for the threads
    /// waiting on it, which would otherwise wait forever.
    #[test]
    fn a_thread_that_panics_ends_the_walk_for_the_others() {
        let walk = Walk::new(Vec::new());
        walk.lock().busy = 1;
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            let walk = &walk;
            scope.spawn(move || sender.send(walk.take(2, Vec::new(), false)).unwrap());
            let panicking = scope.spawn(|| {
                let _guard = FailOnPanic(walk);
                panic!("reading an object failed");
            });
            assert!(panicking.join().is_err());
            let taken = receiver.recv_timeout(std::time::Duration::from_secs(10));
            if taken.is_err() {
                // Released by hand, so that the test fails rather than hangs.
                walk.fail();
            }
            assert_eq!(taken, Ok(None), "the waiting thread is released with nothing to take");
        });
    }
}
