//! File-snapshot undo: the state of the paths a call touches, kept before and after it.
//!
//! Before a capability whose plan is `file_snapshot(paths = [...])` runs, the engine records each
//! path: whether it exists, its mode, and its content (directories recursively, symbolic links as
//! their text). Content goes to a content-addressed store under the state directory
//! (`blobs/ab/cdef…`, SHA-256, written once however many steps keep the same bytes); the step's
//! record is a small manifest, itself a blob, named in the journal by its hash. After the call
//! the same paths are recorded again: undo checks each path is still what the call left (or
//! already what it found) and writes the old state back; redo does the opposite.
//!
//! Everything is read and written beneath the sandbox's root handles ([`crate::fs`]): a path that
//! leads outside a root is refused here as it is everywhere. A FIFO, socket or device is never
//! opened: a snapshot that meets one refuses the call. Unix only, like the rest of the sandbox's
//! file handling.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt, PermissionsExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fs::Fs;
use crate::journal::{Blobs, Journal};
use crate::ToolError;

/// Manifests up to this size are journaled inline (see [`Store::put_manifest`]).
const INLINE_MANIFEST: usize = 16 * 1024;

/// Files up to this size are hashed in memory before anything is written, so content the store
/// already has costs no file creation.
const IN_MEMORY: u64 = 4 * 1024 * 1024;

/// Directories a snapshotted tree may nest (its top counts as one). A manifest is JSON, two
/// levels of nesting per directory, and its reader stops at 128 levels: a deeper tree would be
/// kept and then never read back, so its call is judged irreversible instead (policy decides).
pub const MAX_TREE_DEPTH: usize = 48;

/// The manifest format written by this version.
const MANIFEST_VERSION: u32 = 1;

/// The state of one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Node {
    /// Nothing there.
    Absent,
    /// A regular file: its content's SHA-256 (the blob's name), size, permission bits and owner.
    File {
        sha256: String,
        size: u64,
        mode: u32,
        #[serde(default, skip_serializing_if = "Owner::is_unknown")]
        owner: Owner,
    },
    /// A directory: its permission bits, owner and what is in it, by name.
    Dir {
        mode: u32,
        #[serde(default, skip_serializing_if = "Owner::is_unknown")]
        owner: Owner,
        children: BTreeMap<String, Node>,
    },
    /// A symbolic link: its text.
    Link { target: String },
}

/// The owner and group of a file or directory (`[uid, gid]`), written back where the runtime
/// may set them: as root (a server in a container, over a bind mount) every restored file gets
/// its owner back; a user can only give a file to themselves, so there a file that belonged to
/// another stays the runtime user's, as the call left it. For that reason it is not compared:
/// two nodes differing only by owner are equal (no conflict check refuses an undo for an owner
/// it could not set). Manifests written before it have none.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Owner(pub Option<(u32, u32)>);

impl PartialEq for Owner {
    fn eq(&self, _: &Owner) -> bool {
        true
    }
}

impl Eq for Owner {}

impl Owner {
    fn is_unknown(&self) -> bool {
        self.0.is_none()
    }

    pub(crate) fn of(m: &cap_std::fs::Metadata) -> Owner {
        use cap_std::fs::MetadataExt;
        Owner(Some((m.uid(), m.gid())))
    }

    /// Gives `fd` this owner when it has another and the process may (errors are ignored: a
    /// user cannot give a file away).
    pub(crate) fn apply(self, fd: impl std::os::fd::AsFd) {
        let Some((uid, gid)) = self.0 else { return };
        let Ok(st) = rustix::fs::fstat(&fd) else {
            return;
        };
        if (st.st_uid, st.st_gid) != (uid, gid) {
            let _ = rustix::fs::fchown(
                &fd,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
            );
        }
    }

    /// The same for `parent/name`, never through a link (a directory handle may be `O_PATH`,
    /// which takes no `fchown`).
    fn apply_at(self, parent: &Dir, name: &str) {
        use rustix::fs::{chownat, statat, AtFlags, Gid, Uid};
        let Some((uid, gid)) = self.0 else { return };
        let Ok(st) = statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) else {
            return;
        };
        if (st.st_uid, st.st_gid) != (uid, gid) {
            let _ = chownat(
                parent,
                name,
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            );
        }
    }
}

impl Node {
    /// Bytes of file content below (and at) this node.
    pub fn bytes(&self) -> u64 {
        match self {
            Node::File { size, .. } => *size,
            Node::Dir { children, .. } => children.values().map(Node::bytes).sum(),
            _ => 0,
        }
    }

    /// Files (and links) below and at this node.
    pub fn files(&self) -> u64 {
        match self {
            Node::Dir { children, .. } => children.values().map(Node::files).sum(),
            Node::Absent => 0,
            _ => 1,
        }
    }

    fn describe(&self) -> String {
        match self {
            Node::Absent => "absent".into(),
            Node::File { size, .. } => format!("a file of {size} bytes"),
            Node::Dir { .. } => format!(
                "a directory of {} file(s), {} bytes",
                self.files(),
                self.bytes()
            ),
            Node::Link { target } => format!("a symbolic link to `{target}`"),
        }
    }
}

/// One path of a step: as found before the call and as left after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The path as the sandbox shows it (a root as configured, joined with the path below it).
    pub path: String,
    pub before: Node,
    /// `None` while the call runs (a manifest journaled ahead of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Node>,
    /// Where the path lay when the call ran, its root's links resolved ([`Fs::canonical_of`]):
    /// an undo or redo writes nowhere else, though the root's path lead elsewhere now (moved,
    /// or replaced by a link, between two processes). Manifests written before it have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real: Option<String>,
    /// Where the folder holding the path led when the call ran, as the kernel resolved it (links
    /// inside the root followed; [`within`]): an undo or redo writes nothing when a folder on the
    /// way leads elsewhere now (replaced by a link, moved and another put in its place by a
    /// link). An absolute path, so the same whichever root (a narrower or wider one) the undo
    /// runs with. `None` where it could not be told (no `/proc`), and in older manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
}

/// What a file-snapshot step keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub entries: Vec<Entry>,
    /// Why the state the call left could not all be recorded (the entries from the first one
    /// that failed on have no `after`): a FIFO left where the call wrote, an I/O error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unrecorded: Option<String>,
}

/// What one entry's undo (or redo) would do, for `undo --dry-run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileAction {
    pub path: String,
    /// `restore` (write the kept state back) or `remove` (the call created it).
    pub action: &'static str,
    /// Bytes of content written back.
    pub bytes: u64,
    /// Files written back (a directory counts what is in it).
    pub files: u64,
    /// The state it goes back to, in words.
    pub to: String,
}

/// Why a snapshot or a restore did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapError {
    /// Larger than the limit: the call cannot be undone from a snapshot.
    TooLarge { bytes: u64, limit: u64 },
    /// A tree deeper than [`MAX_TREE_DEPTH`] directories: the call cannot be undone from a
    /// snapshot either.
    TooDeep { path: String },
    /// Anything else, in words (a path outside the roots, a FIFO, an I/O error).
    Other(String),
}

impl std::fmt::Display for SnapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapError::TooLarge { bytes, limit } => write!(
                f,
                "the snapshot would keep more than {limit} bytes (at least {bytes}; `max_snapshot_bytes`)"
            ),
            SnapError::TooDeep { path } => write!(
                f,
                "{path} lies more than {MAX_TREE_DEPTH} directories deep in the tree the call touches; \
                 a snapshot that deep is not kept (it could not be read back)"
            ),
            SnapError::Other(s) => f.write_str(s),
        }
    }
}

impl From<String> for SnapError {
    fn from(s: String) -> Self {
        SnapError::Other(s)
    }
}

/// Content up to this size is kept in the journal's `blobs` table rather than a file of its own:
/// a snapshot of a small file then costs a row, not an inode (on ext4 the creation of a file is
/// most of a small write's time).
const PACKED: usize = 64 * 1024;

/// A manifest and the blob name it was kept under.
type NamedManifest = (String, Arc<Manifest>);

/// The content-addressed blob store of a state directory: small content in the journal's `blobs`
/// table, the rest in files `blobs/ab/cdef…`. Either way named by its SHA-256 and kept once.
#[derive(Clone)]
pub(crate) struct Store {
    dir: PathBuf,
    pack: Arc<Journal>,
    /// The last manifest kept or read as a blob, by its name: a call, its undo and the undo's
    /// checks read the same one (a 10,000-file tree's is megabytes of JSON, hashed when read).
    /// A blob is named by its content, so the copy is the blob's.
    last: Arc<std::sync::Mutex<Option<NamedManifest>>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 (hex) and length of what `r` yields.
fn hash_reader(r: &mut impl Read) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}

fn valid_hash(h: &str) -> bool {
    h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl Store {
    pub(crate) fn new(state_dir: &Path, journal: Arc<Journal>) -> Store {
        Store {
            dir: state_dir.join("blobs"),
            pack: journal,
            last: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    fn path(&self, hash: &str) -> PathBuf {
        let (a, b) = hash.split_at(2.min(hash.len()));
        self.dir.join(a).join(b)
    }

    /// Stores what `r` yields; returns its SHA-256 and size. The bytes go to a temporary file
    /// while they are hashed, renamed to their hash (or dropped when the store has them).
    /// Not fsynced: like the journal (`synchronous = NORMAL`), a store survives the process
    /// being killed, not a power cut.
    fn put_small(&self, mut r: impl Read, size_hint: u64) -> std::io::Result<(String, u64)> {
        let mut bytes = Vec::with_capacity(usize::try_from(size_hint).unwrap_or(0));
        r.read_to_end(&mut bytes)?;
        self.put_bytes(&bytes)
    }

    /// [`Store::put_small`] of bytes in memory: packed when small, else a file.
    fn put_bytes(&self, bytes: &[u8]) -> std::io::Result<(String, u64)> {
        let hash = hex(&Sha256::digest(bytes));
        let size = bytes.len() as u64;
        if bytes.len() <= PACKED {
            self.pack
                .put_blob(&hash, bytes)
                .map_err(std::io::Error::other)?;
            return Ok((hash, size));
        }
        let dest = self.path(&hash);
        match std::fs::metadata(&dest) {
            // Already kept (a blob is renamed into place whole, so its size tells it is whole).
            Ok(m) if m.len() == size => Ok((hash, size)),
            _ => {
                let (h, n) = self.put(bytes)?;
                Ok((h, n))
            }
        }
    }

    fn put(&self, mut r: impl Read) -> std::io::Result<(String, u64)> {
        let tmp = self.dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            TMP.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let create = || {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
        };
        let mut out = match create() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::journal::create_private_dir(&self.dir)?;
                create()?
            }
            other => other?,
        };
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        let copied = (|| -> std::io::Result<()> {
            loop {
                let n = r.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])?;
                size += n as u64;
            }
            Ok(())
        })();
        drop(out);
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let hash = hex(&hasher.finalize());
        let dest = self.path(&hash);
        if dest.exists() {
            let _ = std::fs::remove_file(&tmp);
        } else {
            match std::fs::rename(&tmp, &dest) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if let Some(parent) = dest.parent() {
                        crate::journal::create_private_dir(parent)?;
                    }
                    std::fs::rename(&tmp, &dest)?;
                }
                other => other?,
            }
        }
        Ok((hash, size))
    }

    /// A blob's content, read where it is kept (the journal's table, else its file); not yet
    /// checked against its name.
    fn source(&self, hash: &str) -> Result<Box<dyn Read>, String> {
        if !valid_hash(hash) {
            return Err(format!("`{hash}` is not a snapshot blob name"));
        }
        if let Some(data) = self
            .pack
            .blob(hash)
            .map_err(|e| format!("snapshot blob {hash}: {e}"))?
        {
            return Ok(Box::new(std::io::Cursor::new(data)));
        }
        let path = self.path(hash);
        let f = std::fs::File::open(&path)
            .map_err(|e| format!("snapshot blob {} is missing ({e})", path.display()))?;
        Ok(Box::new(f))
    }

    /// A blob's whole content, after checking it still has its name.
    fn load(&self, hash: &str) -> Result<Vec<u8>, String> {
        let mut data = Vec::new();
        self.source(hash)?
            .read_to_end(&mut data)
            .map_err(|e| format!("snapshot blob {hash}: {e}"))?;
        if hex(&Sha256::digest(&data)) != hash {
            return Err(format!(
                "snapshot blob {hash} no longer holds what was kept (its content changed)"
            ));
        }
        Ok(data)
    }

    /// How a step names its manifest: the manifest itself (JSON) when it is small — most calls
    /// touch a file or two, and the journal row then holds everything — else the SHA-256 name
    /// of the blob that holds it (a tree of 10,000 files).
    pub(crate) fn put_manifest(&self, m: &Manifest) -> Result<String, String> {
        let text = serde_json::to_string(m).map_err(|e| e.to_string())?;
        if text.len() <= INLINE_MANIFEST {
            return Ok(text);
        }
        self.put_bytes(text.as_bytes())
            .map(|(h, _)| h)
            .map_err(|e| format!("cannot write the snapshot manifest: {e}"))
    }

    /// [`Store::put_manifest`], keeping the manifest for the next [`Store::manifest`] of it.
    pub(crate) fn keep_manifest(&self, m: Manifest) -> Result<String, String> {
        let named = self.put_manifest(&m)?;
        if !named.starts_with('{') {
            *self.last.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((named.clone(), Arc::new(m)));
        }
        Ok(named)
    }

    /// The manifest a step names ([`Store::put_manifest`]).
    pub(crate) fn manifest(&self, named: &str) -> Result<Arc<Manifest>, String> {
        if named.starts_with('{') {
            return serde_json::from_str(named)
                .map(Arc::new)
                .map_err(|e| format!("the journaled snapshot manifest is unreadable ({e})"));
        }
        if let Some((_, m)) = self
            .last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|(h, _)| h == named)
        {
            return Ok(Arc::clone(m));
        }
        let m = Arc::new(self.manifest_blob(named)?);
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((named.to_string(), Arc::clone(&m)));
        Ok(m)
    }

    fn manifest_blob(&self, hash: &str) -> Result<Manifest, String> {
        let text = self.load(hash)?;
        let m: Manifest = serde_json::from_slice(&text)
            .map_err(|e| format!("snapshot manifest {hash} is unreadable ({e})"))?;
        if m.version > MANIFEST_VERSION {
            return Err(format!(
                "snapshot manifest {hash} has version {}, newer than this program's {MANIFEST_VERSION}",
                m.version
            ));
        }
        Ok(m)
    }

    /// Every blob a node needs is present with its size (checked before anything is written
    /// back, so a restore does not stop half-way for a missing or cut blob). Content is checked
    /// against its hash as it is copied back: a blob altered to the same size stops the restore
    /// at that file, before it is renamed into place.
    fn verify(&self, n: &Node) -> Result<(), String> {
        match n {
            Node::File { sha256, size, .. } => {
                if !valid_hash(sha256) {
                    return Err(format!("`{sha256}` is not a snapshot blob name"));
                }
                match self.pack.blob_len(sha256) {
                    Ok(Some(n)) if n == *size => return Ok(()),
                    Ok(Some(n)) => {
                        return Err(format!(
                            "snapshot blob {sha256} no longer holds what was kept ({n} bytes, {size} kept)"
                        ))
                    }
                    Ok(None) => {}
                    Err(e) => return Err(format!("snapshot blob {sha256}: {e}")),
                }
                let path = self.path(sha256);
                match std::fs::metadata(&path) {
                    Ok(m) if m.len() == *size => Ok(()),
                    Ok(m) => Err(format!(
                        "snapshot blob {} no longer holds what was kept ({} bytes, {size} kept)",
                        path.display(),
                        m.len()
                    )),
                    Err(e) => Err(format!("snapshot blob {} is missing ({e})", path.display())),
                }
            }
            Node::Dir { children, .. } => children.values().try_for_each(|c| self.verify(c)),
            _ => Ok(()),
        }
    }
}

static TMP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How much a capture may keep, and how much it has.
pub(crate) struct Budget {
    pub(crate) used: u64,
    pub(crate) limit: u64,
}

impl Budget {
    fn take(&mut self, n: u64) -> Result<(), SnapError> {
        self.used = self.used.saturating_add(n);
        if self.used > self.limit {
            return Err(SnapError::TooLarge {
                bytes: self.used,
                limit: self.limit,
            });
        }
        Ok(())
    }
}

/// What a capture does with file content.
#[derive(Clone, Copy)]
enum Keep<'a> {
    /// Stores it (a snapshot).
    Store(&'a Store),
    /// Holds content up to [`PACKED`] (up to [`STAGED_AT_MOST`] in all) in [`Staging`], for the
    /// caller to keep in the same transaction as the step that names it; stores the rest.
    Stage(&'a Store, &'a std::cell::RefCell<Staging>),
    /// Hashes it only (a check against a snapshot).
    Hash,
    /// Counts its size only (the size check before a call).
    Size,
}

/// Where an entry path is: its root's handle, the parent below it and the name.
struct Place<'a> {
    root: std::sync::Arc<Dir>,
    found: std::marker::PhantomData<&'a Fs>,
    parent: PathBuf,
    name: Option<String>,
    shown: String,
}

fn place<'a>(fs: &'a Fs, path: &str) -> Result<Place<'a>, String> {
    if path.contains('\0') {
        return Err(format!(
            "path `{}` contains a NUL byte",
            path.escape_debug()
        ));
    }
    let at = fs.locate(path).map_err(|e| e.to_string())?;
    let shown = at.shown.to_string_lossy().into_owned();
    let (parent, name) = match (at.rel.parent(), at.rel.file_name()) {
        (Some(p), Some(n)) => (
            p.to_path_buf(),
            Some(
                n.to_str()
                    .ok_or_else(|| {
                        format!("{shown}: the name is not UTF-8; it is not snapshotted")
                    })?
                    .to_string(),
            ),
        ),
        _ => (PathBuf::new(), None),
    };
    Ok(Place {
        root: at.dir,
        found: std::marker::PhantomData,
        parent,
        name,
        shown,
    })
}

fn open_dir_at(root: &Dir, rel: &Path) -> std::io::Result<Dir> {
    if rel.as_os_str().is_empty() {
        root.try_clone()
    } else {
        root.open_dir(rel)
    }
}

fn io(shown: &str, e: std::io::Error) -> String {
    if crate::fs::is_escape(&e) {
        return format!(
            "{shown}: a folder on the way to it is a symbolic link that is absolute or leads out of its root, which the sandbox does not follow"
        );
    }
    format!("{shown}: {e}")
}

/// The entry paths of a call: each path made absolute the way the sandbox shows it, the missing
/// ones raised to their first missing ancestor (what the call may create), and paths inside
/// another entry dropped (the outer one covers them).
pub(crate) fn entry_paths(fs: &Fs, paths: &[String]) -> Result<Vec<String>, ToolError> {
    let mut out: Vec<String> = Vec::new();
    for p in paths {
        if p.contains('\0') {
            return Err(ToolError::InvalidArguments {
                message: format!("path `{}` contains a NUL byte", p.escape_debug()),
            });
        }
        let at = fs.locate(p)?;
        // A snapshot of the state directory would copy the store into itself, and its undo
        // would rewrite the journal.
        fs.refuse_holding_state(&at)?;
        // Where the call will reach it (links on the way resolved), then raised to its first
        // missing ancestor there, so that undo removes what the call creates on the way.
        let physical = crate::fs::physical(&at, &at.rel).unwrap_or_else(|| at.rel.clone());
        let mut rel = PathBuf::new();
        let mut chosen = physical.clone();
        for c in physical.components() {
            rel.push(c);
            match at.dir.symlink_metadata(&rel) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    chosen = rel.clone();
                    break;
                }
                Err(e) => return Err(crate::fs::io_error(&at, e)),
            }
        }
        let shown = at
            .shown
            .ancestors()
            .nth(at.rel.components().count())
            .map_or_else(|| at.shown.clone(), |root| root.join(&chosen));
        out.push(shown.to_string_lossy().into_owned());
    }
    out.sort();
    out.dedup();
    // Shorter paths first, so an outer entry is kept before what lies inside it; each path's
    // ancestors are looked up rather than every entry kept so far.
    out.sort_by_key(|p| Path::new(p).components().count());
    let mut kept: Vec<String> = Vec::new();
    let mut set: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    for p in out {
        if Path::new(&p).ancestors().any(|a| set.contains(a)) {
            continue;
        }
        set.insert(PathBuf::from(&p));
        kept.push(p);
    }
    kept.sort();
    Ok(kept)
}

/// What a handler that opens the paths it is given itself (a Python function, a program:
/// [`crate::CapabilityDef::opens_paths_itself`]) can change through a snapshot's entries besides
/// them, found by [`reach`].
#[derive(Debug, Default)]
pub(crate) struct Reach {
    /// The entries with the places their symbolic links lead to (inside the roots) added, made
    /// as [`entry_paths`] makes them.
    pub entries: Vec<String>,
    /// Why undo could not put back what the call may change (a link in a kept tree that leads
    /// out of the roots, a file with other names): the call is then irreversible.
    pub risks: Vec<String>,
}

/// Links [`reach`] follows, and paths it looks at, before it stops (the call is then
/// irreversible rather than its check endless).
const MAX_REACH_LINKS: usize = 100_000;
const MAX_REACH_PATHS: usize = 1_000_000;

/// A handler that opens paths itself follows symbolic links the stdlib's tools never follow
/// (`open(p, "w")` writes the file a link `p` names), applies `..` after the links it went
/// through (the runtime's own checks apply it to the text first), and writes files in place (a
/// hard-linked file changes under each of its names). Its snapshot must keep what it can reach
/// that way. Each path it is given (`named`, as given) is resolved as the kernel resolves it
/// ([`crate::fs::resolve_physical`]): leading out of the roots (or round a loop of links) it is
/// refused; leading elsewhere inside them, that place is kept too. Where each link among the
/// kept paths leads (a named one, or one inside a kept tree) is kept as well; a link inside a
/// kept tree that leads out of the roots, or a file with other names, makes the call
/// irreversible (the handler may never follow or write it, so it is policy's to decide, not a
/// refusal), and so does a root itself among the paths of a capability that deletes
/// (`deletes`): undo cannot write into a root that is gone.
pub(crate) fn reach(
    fs: &Fs,
    named: &[String],
    entries: Vec<String>,
    deletes: bool,
) -> Result<Reach, ToolError> {
    // What is kept, by path (compared by components, as `entry_paths` compares them).
    let mut kept: std::collections::HashSet<PathBuf> = entries.iter().map(PathBuf::from).collect();
    let mut risks = Vec::new();
    // Whether `t` or a directory above it is kept: its ancestors looked up, not every entry.
    let covered = |kept: &std::collections::HashSet<PathBuf>, t: &str| {
        Path::new(t).ancestors().any(|a| kept.contains(a))
    };
    // The paths as the handler will resolve them.
    let mut real_named = Vec::new();
    for raw in named {
        let Some(given) = fs.joined(raw) else {
            continue;
        };
        let Some(real) = crate::fs::resolve_physical(&given) else {
            return Err(ToolError::NotAllowed {
                message: format!(
                    "path `{raw}` leads through more than {} symbolic links (a loop, or a chain longer than the kernel follows): nothing was run",
                    crate::fs::MAX_LINKS
                ),
            });
        };
        match fs.locate(&real) {
            Ok(at) => {
                let Some(t) = at.shown.to_str().map(str::to_string) else {
                    return Err(ToolError::NotAllowed {
                        message: format!(
                            "path `{raw}` leads to `{}`, whose name is not UTF-8: it cannot be snapshotted, so nothing was run",
                            real.display()
                        ),
                    });
                };
                if t != given.to_string_lossy() && !covered(&kept, &t) {
                    kept.insert(PathBuf::from(&t));
                }
                real_named.push(t);
            }
            Err(_) => {
                return Err(ToolError::NotAllowed {
                    message: format!(
                        "path `{raw}` leads to `{}` through symbolic links, outside the allowed roots: the capability opens the paths it is given itself, so it would change what is there, which its undo cannot restore; nothing was run",
                        real.display()
                    ),
                })
            }
        }
    }
    // What the call itself names (not where links inside its trees lead).
    let named_entries: Vec<String> = entries.into_iter().chain(real_named).collect();
    let mut queue: Vec<(String, bool)> = named_entries
        .iter()
        .rev()
        .map(|e| (e.clone(), true))
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut walk = ReachWalk {
        links: Vec::new(),
        risks: &mut risks,
        paths: 0,
    };
    let mut followed = 0usize;
    while let Some((path, named)) = queue.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let pl = place(fs, &path).map_err(|message| ToolError::NotAllowed { message })?;
        let parent = match open_dir_at(&pl.root, &pl.parent) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(reach_error(&pl.shown, e)),
        };
        match &pl.name {
            Some(name) => walk.node(&parent, name, &pl.shown, named, 0)?,
            None => walk.dir(&parent, &pl.shown, 0)?,
        }
        for (link, target, named) in std::mem::take(&mut walk.links) {
            followed += 1;
            if followed > MAX_REACH_LINKS {
                if followed == MAX_REACH_LINKS + 1 {
                    walk.risks.push(format!(
                        "the kept paths hold more than {MAX_REACH_LINKS} symbolic links; where each leads was not followed"
                    ));
                }
                break;
            }
            // A loop of links leads nowhere the handler could write.
            let Some(target) = target else { continue };
            match fs.locate(&target) {
                Err(_) if named => {
                    return Err(ToolError::NotAllowed {
                        message: format!(
                            "path `{link}` is a symbolic link to `{}`, outside the allowed roots: the capability opens the paths it is given itself, so it would change what the link names, which its undo cannot restore; nothing was run",
                            target.display()
                        ),
                    })
                }
                Err(_) => walk.risks.push(format!(
                    "`{link}` is a symbolic link to `{}`, outside the allowed roots: what is written through it is not kept, so undo could not restore it",
                    target.display()
                )),
                Ok(at) => {
                    let Some(t) = at.shown.to_str().map(str::to_string) else {
                        walk.risks.push(format!(
                            "`{link}` leads to `{}`, whose name is not UTF-8: it is not kept, so undo could not restore it",
                            at.shown.display()
                        ));
                        continue;
                    };
                    // A place inside a kept tree is looked at with that tree.
                    if !covered(&kept, &t) {
                        kept.insert(PathBuf::from(&t));
                        queue.push((t, named));
                    }
                }
            }
        }
        if walk.paths > MAX_REACH_PATHS {
            walk.risks.push(format!(
                "the kept trees hold more than {MAX_REACH_PATHS} paths; they were not all looked at"
            ));
            break;
        }
    }
    drop(walk);
    // Every kept path came in as a string (an entry, or a shown path checked to be UTF-8).
    let kept: Vec<String> = kept
        .iter()
        .filter_map(|p| p.to_str().map(str::to_string))
        .collect();
    let entries = entry_paths(fs, &kept)?;
    if deletes {
        for e in &named_entries {
            if fs.locate(e).is_ok_and(|at| at.rel.as_os_str().is_empty()) {
                let why = format!(
                    "`{}` is an allowed root itself: a call that removes it would leave nothing undo can write back into",
                    if e == "/" { e.as_str() } else { e.trim_end_matches('/') }
                );
                if !risks.contains(&why) {
                    risks.push(why);
                }
            }
        }
    }
    Ok(Reach { entries, risks })
}

/// [`reach`]'s walk of one entry: the links found (with where they lead, and whether the path
/// was named by the call) and the risks.
struct ReachWalk<'a> {
    links: Vec<(String, Option<PathBuf>, bool)>,
    risks: &'a mut Vec<String>,
    paths: usize,
}

impl ReachWalk<'_> {
    fn node(
        &mut self,
        parent: &Dir,
        name: &str,
        shown: &str,
        named: bool,
        depth: usize,
    ) -> Result<(), ToolError> {
        use cap_std::fs::MetadataExt;
        self.paths += 1;
        let meta = match parent.symlink_metadata(name) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(reach_error(shown, e)),
        };
        let ft = meta.file_type();
        if ft.is_symlink() {
            let text = parent
                .read_link_contents(name)
                .map_err(|e| reach_error(shown, e))?;
            // Where it leads, as the kernel resolves it: its text taken relative to the
            // directory it is in, each link on the way followed and `..` applied after it.
            let base = crate::fs::real_path_of(parent)
                .or_else(|| Path::new(shown).parent().map(Path::to_path_buf))
                .unwrap_or_default();
            let target = crate::fs::resolve_physical(&base.join(&text));
            self.links.push((shown.to_string(), target, named));
        } else if ft.is_dir() {
            if depth >= MAX_TREE_DEPTH || self.paths > MAX_REACH_PATHS {
                return Ok(());
            }
            let dir = parent.open_dir(name).map_err(|e| reach_error(shown, e))?;
            self.dir(&dir, shown, depth + 1)?;
        } else if ft.is_file() && meta.nlink() > 1 {
            self.risks.push(format!(
                "`{shown}` has {} names (hard links): a change made through it also shows under the others, which undo does not restore",
                meta.nlink()
            ));
        }
        Ok(())
    }

    fn dir(&mut self, dir: &Dir, shown: &str, depth: usize) -> Result<(), ToolError> {
        let entries = dir.entries().map_err(|e| reach_error(shown, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| reach_error(shown, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                // Not UTF-8: the snapshot refuses the call on it anyway.
                continue;
            };
            let child = format!("{}/{name}", shown.trim_end_matches('/'));
            self.node(dir, name, &child, false, depth)?;
            if self.paths > MAX_REACH_PATHS {
                break;
            }
        }
        Ok(())
    }
}

/// An I/O error on `shown` as a tool error: not allowed when it left the roots.
fn reach_error(shown: &str, e: std::io::Error) -> ToolError {
    let escape = crate::fs::is_escape(&e);
    let message = io(shown, e);
    if escape {
        ToolError::NotAllowed { message }
    } else {
        ToolError::Handler { message }
    }
}

/// Records the state of `path` (see [`Keep`]).
fn capture(fs: &Fs, path: &str, keep: Keep<'_>, budget: &mut Budget) -> Result<Node, SnapError> {
    capture_within(fs, path, keep, budget).map(|(node, _)| node)
}

/// [`capture`], and where the folder holding `path` leads ([`Entry::within`]), read from the
/// handle the capture opens anyway.
fn capture_within(
    fs: &Fs,
    path: &str,
    keep: Keep<'_>,
    budget: &mut Budget,
) -> Result<(Node, Option<String>), SnapError> {
    let pl = match place(fs, path) {
        Ok(pl) => pl,
        // A root that is not there now (a call removed it) holds nothing: asked only when the
        // path cannot be placed, not before every capture.
        Err(_) if fs.in_missing_root(Path::new(path)) => return Ok((Node::Absent, None)),
        Err(e) => return Err(e.into()),
    };
    let parent = match open_dir_at(&pl.root, &pl.parent) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Node::Absent, None)),
        Err(e) => return Err(io(&pl.shown, e).into()),
    };
    let lead = lead_of(&parent);
    let node = match &pl.name {
        Some(name) => capture_in(&parent, name, &pl.shown, keep, budget, 0),
        None => {
            let meta = parent.dir_metadata().map_err(|e| io(&pl.shown, e))?;
            capture_dir(
                &parent,
                mode(&meta),
                Owner::of(&meta),
                &pl.shown,
                keep,
                budget,
                1,
            )
        }
    }?;
    Ok((node, lead))
}

fn mode(m: &cap_std::fs::Metadata) -> u32 {
    m.permissions().mode() & 0o7777
}

fn ino(m: &cap_std::fs::Metadata) -> (u64, u64) {
    use cap_std::fs::MetadataExt;
    (m.dev(), m.ino())
}

/// `depth`: the directories above `name` inside the snapshotted tree.
fn capture_in(
    parent: &Dir,
    name: &str,
    shown: &str,
    keep: Keep<'_>,
    budget: &mut Budget,
    depth: usize,
) -> Result<Node, SnapError> {
    let meta = match parent.symlink_metadata(name) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Node::Absent),
        Err(e) => return Err(io(shown, e).into()),
    };
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = parent.read_link_contents(name).map_err(|e| io(shown, e))?;
        let target = target
            .to_str()
            .ok_or_else(|| format!("{shown}: the link's target is not UTF-8"))?
            .to_string();
        return Ok(Node::Link { target });
    }
    if ft.is_dir() {
        let dir = parent.open_dir(name).map_err(|e| io(shown, e))?;
        let opened = dir.dir_metadata().map_err(|e| io(shown, e))?;
        if ino(&opened) != ino(&meta) {
            return Err(
                format!("{shown} changed while it was being snapshotted; try again").into(),
            );
        }
        return capture_dir(
            &dir,
            mode(&meta),
            Owner::of(&meta),
            shown,
            keep,
            budget,
            depth + 1,
        );
    }
    if !ft.is_file() {
        return Err(format!(
            "{shown} is not a regular file, directory or symbolic link (a FIFO, socket or device), which a snapshot does not keep"
        )
        .into());
    }
    budget.take(meta.len())?;
    let (sha256, size) = match keep {
        Keep::Size => (String::new(), meta.len()),
        Keep::Hash | Keep::Store(_) | Keep::Stage(..) => {
            let mut opts = OpenOptions::new();
            opts.read(true);
            // Never blocks on a FIFO swapped in after the check.
            crate::fs::nonblocking(&mut opts);
            let file = parent.open_with(name, &opts).map_err(|e| io(shown, e))?;
            let fm = file.metadata().map_err(|e| io(shown, e))?;
            if !fm.is_file() || ino(&fm) != ino(&meta) {
                return Err(
                    format!("{shown} changed while it was being snapshotted; try again").into(),
                );
            }
            match keep {
                Keep::Stage(store, staged)
                    if meta.len() <= PACKED as u64
                        && staged.borrow().bytes + meta.len() <= STAGED_AT_MOST =>
                {
                    let mut f = file.into_std();
                    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
                    (&mut f)
                        .take(PACKED as u64 + 1)
                        .read_to_end(&mut bytes)
                        .map_err(|e| io(shown, e))?;
                    if bytes.len() > PACKED {
                        // It grew since it was measured: kept whole, as large content is.
                        store
                            .put(std::io::Cursor::new(bytes).chain(f))
                            .map_err(|e| format!("{shown}: cannot keep its content ({e})"))?
                    } else {
                        staged.borrow_mut().add(bytes)
                    }
                }
                Keep::Store(store) | Keep::Stage(store, _) if meta.len() <= IN_MEMORY => store
                    .put_small(file.into_std(), meta.len())
                    .map_err(|e| format!("{shown}: cannot keep its content ({e})"))?,
                Keep::Store(store) | Keep::Stage(store, _) => store
                    .put(file.into_std())
                    .map_err(|e| format!("{shown}: cannot keep its content ({e})"))?,
                _ => hash_reader(&mut file.into_std()).map_err(|e| io(shown, e))?,
            }
        }
    };
    Ok(Node::File {
        sha256,
        size,
        mode: mode(&meta),
        owner: Owner::of(&meta),
    })
}

/// Removes the temporary files ended processes left in `dir` ([`crate::fs::is_leftover_temp`]).
fn remove_leftovers(dir: &Dir) {
    let Ok(entries) = dir.entries() else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if crate::fs::is_leftover_temp(name) && own_regular_file(dir, name) {
            let _ = dir.remove_file(name);
        }
    }
}

/// Whether `dir/name` is a regular file or a link of this process's user, as a temporary file
/// this runtime wrote is.
fn own_regular_file(dir: &Dir, name: &str) -> bool {
    use cap_std::fs::MetadataExt;
    // A link too: a restore makes one under a temporary name before it swaps it in.
    dir.symlink_metadata(name).is_ok_and(|m| {
        (m.is_file() || m.is_symlink()) && m.uid() == rustix::process::geteuid().as_raw()
    })
}

/// `depth`: this directory's level in the snapshotted tree (1 for its top).
fn capture_dir(
    dir: &Dir,
    mode: u32,
    owner: Owner,
    shown: &str,
    keep: Keep<'_>,
    budget: &mut Budget,
    depth: usize,
) -> Result<Node, SnapError> {
    if depth > MAX_TREE_DEPTH {
        return Err(SnapError::TooDeep {
            path: shown.to_string(),
        });
    }
    let mut children = BTreeMap::new();
    for entry in dir.entries().map_err(|e| io(shown, e))? {
        let entry = entry.map_err(|e| io(shown, e))?;
        let name = entry.file_name();
        let name = name
            .to_str()
            .ok_or_else(|| {
                format!("{shown}: holds a name that is not UTF-8; it is not snapshotted")
            })?
            .to_string();
        if crate::fs::is_leftover_temp(&name) && own_regular_file(dir, &name) {
            // A killed process's half-written file: not part of the tree (a restore removes it).
            continue;
        }
        let sub = format!("{shown}/{name}");
        let node = capture_in(dir, &name, &sub, keep, budget, depth)?;
        children.insert(name, node);
    }
    Ok(Node::Dir {
        mode,
        owner,
        children,
    })
}

/// At most this much content is held for the step's transaction; past it, content is written
/// to the store at once (a tree of many small files does not sit in memory, nor make the
/// step's transaction hold the journal long).
const STAGED_AT_MOST: u64 = 1024 * 1024;

/// The content [`before`] holds back, by hash (each kept once).
#[derive(Default)]
pub(crate) struct Staging {
    blobs: Blobs,
    bytes: u64,
}

impl Staging {
    fn add(&mut self, bytes: Vec<u8>) -> (String, u64) {
        let hash = hex(&Sha256::digest(&bytes));
        let size = bytes.len() as u64;
        if let std::collections::hash_map::Entry::Vacant(e) = self.blobs.entry(hash.clone()) {
            self.bytes += size;
            e.insert(bytes);
        }
        (hash, size)
    }
}

/// The state of `paths` before a call: content up to [`PACKED`] returned, for the caller to keep
/// in the same journal transaction as the step (one commit for both), the rest kept in `store`.
pub(crate) fn before(
    fs: &Fs,
    store: &Store,
    paths: &[String],
    limit: u64,
) -> Result<(Manifest, Blobs), SnapError> {
    let mut budget = Budget { used: 0, limit };
    let mut entries = Vec::with_capacity(paths.len());
    let staged = std::cell::RefCell::new(Staging::default());
    for p in paths {
        let (before, within) = capture_within(fs, p, Keep::Stage(store, &staged), &mut budget)?;
        entries.push(Entry {
            path: p.clone(),
            before,
            after: None,
            real: fs
                .canonical_of(Path::new(p))
                .map(|c| c.to_string_lossy().into_owned()),
            within,
        });
    }
    Ok((
        Manifest {
            version: MANIFEST_VERSION,
            entries,
            unrecorded: None,
        },
        staged.into_inner().blobs,
    ))
}

/// Bytes a snapshot of `paths` would keep (sizes only; nothing is read), stopping past `limit`.
pub(crate) fn measure(fs: &Fs, paths: &[String], limit: u64) -> Result<u64, SnapError> {
    let mut budget = Budget { used: 0, limit };
    for p in paths {
        capture(fs, p, Keep::Size, &mut budget)?;
    }
    Ok(budget.used)
}

/// Completes a manifest with the state the call left, hashed (what undo's conflict check and
/// redo's need). Its content is kept later, by [`keep_after`], only if the step is undone:
/// most steps never are, and keeping it now would cost every call a copy of what it wrote.
pub(crate) fn after(fs: &Fs, m: &mut Manifest) -> Result<(), SnapError> {
    let mut budget = Budget {
        used: 0,
        limit: u64::MAX,
    };
    for e in &mut m.entries {
        e.after = Some(capture(fs, &e.path, Keep::Hash, &mut budget)?);
    }
    Ok(())
}

/// Before an undo writes the old state back: keeps the content of each entry still exactly as
/// the call left it, up to `limit` bytes, so `redo` can write it again. Past the limit (or for an
/// entry changed part-way) redo finds no blob and says so.
pub(crate) fn keep_after(fs: &Fs, store: &Store, m: &Manifest, limit: u64) {
    let mut budget = Budget { used: 0, limit };
    for e in &m.entries {
        let Some(after) = &e.after else { continue };
        if after.bytes() > budget.limit.saturating_sub(budget.used) {
            continue;
        }
        // What is there now is kept whatever it is (an entry changed part-way keeps blobs no
        // manifest names, which costs only space); redo checks sizes and hashes before use.
        let _ = capture(fs, &e.path, Keep::Store(store), &mut budget);
    }
}

/// Paths (with what differs) whose current state is neither `want` nor `also`: what a restore
/// would overwrite without having kept it.
/// Where the folder holding `path` leads, as the kernel names it once opened beneath its root
/// (Linux's `/proc/self/fd`: links inside the root followed); `None` where that cannot be told,
/// or the folder is not there.
fn within(fs: &Fs, path: &str) -> Option<String> {
    let pl = place(fs, path).ok()?;
    lead_of(&open_dir_at(&pl.root, &pl.parent).ok()?)
}

/// Where the open directory `dir` leads, as the kernel names it.
fn lead_of(dir: &Dir) -> Option<String> {
    use std::os::fd::{AsFd, AsRawFd};
    std::fs::read_link(format!("/proc/self/fd/{}", dir.as_fd().as_raw_fd()))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// The entries whose root leads elsewhere now than when the call ran (see [`Entry::real`]), or
/// whose folder inside the root does (see [`Entry::within`]).
pub(crate) fn moved(fs: &Fs, m: &Manifest) -> Vec<String> {
    m.entries
        .iter()
        .filter_map(|e| {
            if let Some(then) = e.real.as_deref() {
                let now = fs.canonical_of(Path::new(&e.path));
                match now {
                    Some(now) if now == Path::new(then) => {}
                    Some(now) => return Some(format!(
                        "{}: {CANNOT_BE_CHECKED} (its root led to `{then}` when the call ran, and leads to `{}` now: the root was moved or replaced by a link, and {WRITES_ONLY_WHERE})",
                        e.path,
                        now.display()
                    )),
                    None => return Some(format!(
                        "{}: {CANNOT_BE_CHECKED} (no allowed root reaches it now; it was `{then}` when the call ran)",
                        e.path
                    )),
                }
            }
            let then = e.within.as_deref()?;
            // A folder not there now is no other place: what is missing is said by the checks
            // of each path.
            let now = within(fs, &e.path)?;
            (now != then).then(|| {
                format!(
                    "{}: {CANNOT_BE_CHECKED} (the folder holding it was `{then}` when the call ran, and leads to `{now}` now: a folder on the way was replaced by a link or moved, and {WRITES_ONLY_WHERE})",
                    e.path,
                )
            })
        })
        .collect()
}

/// What [`conflicts_after`] says of a path it could not look at (outside the roots in force, say).
pub(crate) const CANNOT_BE_CHECKED: &str = "cannot be checked";

/// What [`moved`] says of a path that leads elsewhere now.
pub(crate) const WRITES_ONLY_WHERE: &str = "undo writes only where the call did";

/// What no `--force` can write over: paths that lead elsewhere now ([`moved`]) or that the
/// roots in force do not reach. Looked at without reading any file, so a forced undo or redo is
/// refused before it claims its step.
pub(crate) fn unforceable(fs: &Fs, m: &Manifest) -> Vec<String> {
    let mut out = moved(fs, m);
    for e in &m.entries {
        match place(fs, &e.path) {
            Err(_) if fs.in_missing_root(Path::new(&e.path)) => {}
            Err(err) => out.push(format!("{}: {CANNOT_BE_CHECKED} ({err})", e.path)),
            // A folder on the way that leads out of the root now (a link swapped in, absolute
            // or not) is not opened: the restore would stop there after its step was claimed.
            Ok(pl) => match open_dir_at(&pl.root, &pl.parent) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => out.push(format!(
                    "{}: {CANNOT_BE_CHECKED} ({})",
                    e.path,
                    io(&pl.shown, err)
                )),
                _ => {}
            },
        }
    }
    out
}

/// The state a dry run of several steps expects each path to be in once the newer steps it
/// lists are undone: their states before, by path (a newer step's tree covers what is inside).
#[derive(Debug, Default)]
pub(crate) struct Planned(BTreeMap<PathBuf, Node>);

impl Planned {
    /// What undoing `m` leaves, over what was planned before.
    pub(crate) fn undo(&mut self, m: &Manifest) {
        for e in &m.entries {
            let p = PathBuf::from(&e.path);
            self.0.retain(|k, _| !k.starts_with(&p));
            self.0.insert(p, e.before.clone());
        }
    }

    /// What redoing `m` leaves (the state the call left), over what was planned before. An entry
    /// whose after state was not recorded leaves its path undecided (read as it is now).
    pub(crate) fn redo(&mut self, m: &Manifest) {
        for e in &m.entries {
            let p = PathBuf::from(&e.path);
            self.0.retain(|k, _| !k.starts_with(&p));
            if let Some(after) = &e.after {
                self.0.insert(p, after.clone());
            }
        }
    }

    /// The state planned for `path`, when a newer step's undo decides it.
    fn at(&self, path: &str) -> Option<Node> {
        let path = Path::new(path);
        let (top, node) = path
            .ancestors()
            .find_map(|a| self.0.get(a).map(|n| (a, n)))?;
        let mut node = node.clone();
        for part in path.strip_prefix(top).ok()?.components() {
            node = match node {
                Node::Dir { mut children, .. } => children
                    .remove(part.as_os_str().to_str()?)
                    .unwrap_or(Node::Absent),
                _ => Node::Absent,
            };
        }
        // An older step's undo writes back inside the tree a newer one restores (`mkdir d`,
        // `write d/f`, `move d e`: undoing the move restores `d` with `f`, then undoing the
        // write removes `f`): what lies below `path` is as the last of them leaves it.
        self.overlay(&path.to_string_lossy(), &mut node);
        Some(node)
    }

    /// `now` (the state of `path` on disk) with what the planned steps write back inside it.
    fn overlay(&self, path: &str, now: &mut Node) {
        let top = Path::new(path);
        for (k, planned) in self.0.range(top.to_path_buf()..) {
            let Ok(rest) = k.strip_prefix(top) else {
                break;
            };
            let parts: Vec<&str> = rest.iter().filter_map(|c| c.to_str()).collect();
            let Some((last, dirs)) = parts.split_last() else {
                continue;
            };
            let mut at = &mut *now;
            let mut reached = true;
            for d in dirs {
                match at {
                    Node::Dir { children, .. } => {
                        at = children.entry((*d).to_string()).or_insert(Node::Absent);
                    }
                    _ => {
                        reached = false;
                        break;
                    }
                }
            }
            if let (true, Node::Dir { children, .. }) = (reached, at) {
                if *planned == Node::Absent {
                    children.remove(*last);
                } else {
                    children.insert((*last).to_string(), planned.clone());
                }
            }
        }
    }
}

/// Paths (with what differs) whose current state is neither the state the step left nor the
/// one a restore writes (`towards_before`: undo; else redo), naming each: what a restore would
/// overwrite without having kept it. A path a step listed earlier in the same dry run writes
/// back is taken to be as that step leaves it (`planned`).
pub(crate) fn conflicts_after(
    fs: &Fs,
    m: &Manifest,
    towards_before: bool,
    planned: &Planned,
) -> Vec<String> {
    let mut out = moved(fs, m);
    if !out.is_empty() {
        return out;
    }
    for e in &m.entries {
        let Some(after) = &e.after else {
            let why = m.unrecorded.clone().unwrap_or_else(|| {
                "the process stopped before it was, or it was written by an older version".into()
            });
            out.push(format!(
                "{}: the state the call left was not recorded ({why}), so nothing shows what \
                 writing back the state before would overwrite",
                e.path
            ));
            continue;
        };
        let (left, target) = if towards_before {
            (after, &e.before)
        } else {
            (&e.before, after)
        };
        let mut budget = Budget {
            used: 0,
            limit: u64::MAX,
        };
        let now = match planned.at(&e.path) {
            Some(n) => Ok(n),
            None => capture(fs, &e.path, Keep::Hash, &mut budget).map(|mut n| {
                planned.overlay(&e.path, &mut n);
                n
            }),
        };
        match now {
            Ok(now) => mixed(&e.path, &now, left, target, &mut out),
            Err(err) => out.push(format!("{}: {CANNOT_BE_CHECKED} ({err})", e.path)),
        }
    }
    out
}

/// Where `now` is, path by path, neither the state the step left (`left`) nor the one a
/// restore writes (`target`): only there would a restore overwrite something it did not keep.
/// A directory part-way between the two (a restore that stopped) is accepted file by file.
fn mixed(path: &str, now: &Node, left: &Node, target: &Node, out: &mut Vec<String>) {
    if now == left || now == target {
        return;
    }
    fn parts(n: &Node) -> (Option<u32>, Option<&BTreeMap<String, Node>>) {
        match n {
            Node::Dir { mode, children, .. } => (Some(*mode), Some(children)),
            _ => (None, None),
        }
    }
    let (Node::Dir { mode, children, .. }, (lm, lc), (tm, tc)) = (now, parts(left), parts(target))
    else {
        return diff(path, left, now, out);
    };
    if lc.is_none() && tc.is_none() {
        return diff(path, left, now, out);
    }
    // A folder a restore made, or is filling, has its owner's rwx until it is filled (see
    // `put_in`): a restore that stopped part-way leaves that.
    let fits = |m: Option<u32>| {
        m.is_some_and(|m| {
            let made = m | 0o700;
            *mode == m || *mode == made || *mode == made & !umask()
        })
    };
    if !fits(lm) && !fits(tm) {
        out.push(match lm {
            Some(_) => format!("{path}: mode changed since (now {mode:o})"),
            // A folder where the step left none: made since, not changed.
            None => format!(
                "{path}: is now {} (mode {mode:o}), the step left {}",
                now.describe(),
                left.describe()
            ),
        });
    }
    let child = |c: Option<&BTreeMap<String, Node>>, name: &str| {
        c.and_then(|c| c.get(name)).cloned().unwrap_or(Node::Absent)
    };
    for (name, n) in children {
        let sub = format!("{path}/{name}");
        mixed(&sub, n, &child(lc, name), &child(tc, name), out);
    }
    let mut gone: Vec<&String> = lc.into_iter().chain(tc).flat_map(|c| c.keys()).collect();
    gone.sort();
    gone.dedup();
    for name in gone {
        if !children.contains_key(name)
            && child(lc, name) != Node::Absent
            && child(tc, name) != Node::Absent
        {
            out.push(format!("{path}/{name}: removed since"));
        }
    }
}

/// Where `now` differs from `want`, by path.
fn diff(path: &str, want: &Node, now: &Node, out: &mut Vec<String>) {
    match (want, now) {
        (
            Node::Dir {
                mode: m1,
                children: a,
                ..
            },
            Node::Dir {
                mode: m2,
                children: b,
                ..
            },
        ) => {
            if m1 != m2 {
                out.push(format!("{path}: mode is {m2:o}, was {m1:o}"));
            }
            for (name, w) in a {
                let sub = format!("{path}/{name}");
                match b.get(name) {
                    Some(n) if n == w => {}
                    Some(n) => diff(&sub, w, n, out),
                    None => out.push(format!("{sub}: removed since")),
                }
            }
            for name in b.keys().filter(|k| !a.contains_key(*k)) {
                out.push(format!("{path}/{name}: added since"));
            }
        }
        (
            Node::File { sha256: h1, .. },
            Node::File {
                sha256: h2, mode, ..
            },
        ) if h1 == h2 => {
            out.push(format!("{path}: mode changed since (now {mode:o})"));
        }
        (Node::File { .. }, Node::File { .. }) => {
            out.push(format!("{path}: content changed since"));
        }
        _ => out.push(format!(
            "{path}: is now {}, the step left {}",
            now.describe(),
            want.describe()
        )),
    }
}

/// What restoring `m` towards its before (undo) or after (redo) state does, per entry.
pub(crate) fn actions(m: &Manifest, towards_before: bool) -> Vec<FileAction> {
    m.entries
        .iter()
        .filter_map(|e| {
            let target = if towards_before {
                &e.before
            } else {
                e.after.as_ref()?
            };
            // A path the call left as it found it (a program given `undo_paths` it did not
            // touch): nothing to write back.
            if e.after.as_ref() == Some(&e.before) {
                return None;
            }
            Some(FileAction {
                path: e.path.clone(),
                action: if *target == Node::Absent {
                    "remove"
                } else {
                    "restore"
                },
                bytes: target.bytes(),
                files: target.files(),
                to: target.describe(),
            })
        })
        .collect()
}

/// The entries whose after state (what a redo writes back) was not kept when the step was
/// undone: content larger than the snapshot limit, or an undo forced over changes made since
/// the call (what the call left was no longer there to keep).
pub(crate) fn unkept_after(store: &Store, m: &Manifest) -> Vec<String> {
    m.entries
        .iter()
        .filter_map(|e| {
            let after = e.after.as_ref()?;
            store.verify(after).err().map(|_| e.path.clone())
        })
        .collect()
}

/// After a call that failed: writes back the entries it changed (those no longer as before).
pub(crate) fn rollback(fs: &Fs, store: &Store, m: &Manifest) -> Result<(), String> {
    let mut changed = Vec::new();
    for e in &m.entries {
        let mut budget = Budget {
            used: 0,
            limit: u64::MAX,
        };
        match capture(fs, &e.path, Keep::Hash, &mut budget) {
            Ok(now) if now == e.before => {}
            _ => changed.push(Entry {
                path: e.path.clone(),
                before: e.before.clone(),
                after: None,
                real: e.real.clone(),
                within: e.within.clone(),
            }),
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    restore(
        fs,
        store,
        &Manifest {
            version: MANIFEST_VERSION,
            entries: changed,
            unrecorded: None,
        },
        true,
        // What the failed call changed is its own: written back whatever it is.
        true,
    )
}

/// Writes each entry's before (undo) or after (redo) state back, last entry first. Every blob is
/// checked first for presence and size, so a missing or truncated blob stops the restore before
/// anything is written; its content is checked against its hash as it is copied back, so a blob
/// altered in place (same size) stops the restore at that file, which is not written — what was
/// written back before it stays, and the step is left `failed` saying so.
///
/// Unless `force`, each path is written only over what the step left there (or what the restore
/// writes): a file another program changes or creates while the restore runs (after its
/// conflict check) is left as that program made it, and the restore stops there.
pub(crate) fn restore(
    fs: &Fs,
    store: &Store,
    m: &Manifest,
    towards_before: bool,
    force: bool,
) -> Result<(), String> {
    let moved = moved(fs, m);
    if !moved.is_empty() {
        return Err(moved.join("; "));
    }
    let mut targets = Vec::with_capacity(m.entries.len());
    for e in &m.entries {
        let target = if towards_before {
            &e.before
        } else {
            e.after
                .as_ref()
                .ok_or_else(|| format!("{}: the call did not finish recording it", e.path))?
        };
        store.verify(target)?;
        targets.push((e, target));
    }
    for (e, target) in targets.into_iter().rev() {
        let left = if towards_before {
            e.after.as_ref()
        } else {
            Some(&e.before)
        };
        let was = match left {
            Some(left) if !force => Was::Left(left),
            _ => Was::Any,
        };
        match target {
            // A root a call removed is created again (empty, then filled below).
            Node::Dir { .. } => {
                fs.recreate_root(Path::new(&e.path))?;
            }
            // Nothing to remove in a root that is not there.
            Node::Absent if fs.in_missing_root(Path::new(&e.path)) => continue,
            _ => {}
        }
        let pl = place(fs, &e.path)?;
        let parent = match open_dir_at(&pl.root, &pl.parent) {
            Ok(d) => d,
            // Removed with the folder it lay in (the user removed `d` after `write d/f`):
            // already as the step wants it.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && *target == Node::Absent => {
                continue
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let folder = Path::new(&pl.shown)
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                return Err(format!(
                    "{}: the folder it lies in, {folder}, is gone, so it cannot be written back there; make the folder again and run the undo again",
                    pl.shown
                ));
            }
            Err(err) => return Err(io(&pl.shown, err)),
        };
        match &pl.name {
            Some(name) => {
                put_in(&parent, name, target, was, store, &pl.shown)?;
                // What a write or a restore killed beside it left (a half-written temporary
                // file of an ended process) goes too: the directory is as it was.
                remove_leftovers(&parent);
            }
            None => match target {
                Node::Dir {
                    mode,
                    owner,
                    children,
                } => {
                    // The root itself (a `run_command` with `undo_paths: ["."]` may chmod it):
                    // opened up first if the call left it unwritable, set back after, and left
                    // alone when unchanged (a root its user does not own cannot be chmodded).
                    use rustix::fs::{chmodat, statat, AtFlags, Mode};
                    let now = statat(&parent, ".", AtFlags::empty())
                        .map(|st| st.st_mode & 0o7777)
                        .map_err(|e| io(&pl.shown, e.into()))?;
                    let chmod = |m: u32| {
                        chmodat(&parent, ".", Mode::from_raw_mode(m), AtFlags::empty())
                            .map_err(|e| io(&pl.shown, e.into()))
                    };
                    if now & 0o700 != 0o700 && now != *mode {
                        chmod(now | 0o700)?;
                    }
                    fill_dir(&parent, children, was, store, &pl.shown)?;
                    owner.apply_at(&parent, ".");
                    if now != *mode {
                        chmod(*mode)?;
                    }
                }
                // A redo of a call that removed a root (`run_command` with `undo_paths`
                // naming it): removed again, as the call left it.
                Node::Absent => match fs.root_in_parent(Path::new(&e.path))? {
                    Some((up, name)) => {
                        let name = name
                            .to_str()
                            .ok_or_else(|| format!("{}: the root's name is not UTF-8", pl.shown))?;
                        take_out(&up, name, was, &ABSENT, &pl.shown)?;
                    }
                    None => return Err(format!("{}: a root stays a directory", pl.shown)),
                },
                _ => return Err(format!("{}: a root stays a directory", pl.shown)),
            },
        }
    }
    Ok(())
}

fn remove_any(parent: &Dir, name: &str, shown: &str) -> Result<(), String> {
    match parent.symlink_metadata(name) {
        Ok(m) if m.is_dir() => remove_tree(parent, name.as_ref()).map_err(|e| io(shown, e)),
        Ok(_) => parent.remove_file(name).map_err(|e| io(shown, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(shown, e)),
    }
}

/// Removes the directory `parent/name` and everything in it. A read-only directory inside (a
/// copy keeps a `0555` one) is made writable, since it goes anyway, and the removal retried:
/// every removal of a tree in a restore comes here.
fn remove_tree(parent: &Dir, name: &Path) -> std::io::Result<()> {
    match parent.remove_dir_all(name) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            loosen(parent, name);
            parent.remove_dir_all(name)
        }
        done => done,
    }
}

/// Gives the owner write and search permission on `parent/name` and every directory below it
/// (never through a link), so that the tree can be removed. Errors are left to the removal.
fn loosen(parent: &Dir, name: &Path) {
    let Ok(m) = parent.symlink_metadata(name) else {
        return;
    };
    if !m.is_dir() {
        return;
    }
    let _ = parent.set_permissions(name, cap_std::fs::Permissions::from_mode(mode(&m) | 0o700));
    // Opened, then checked to be the directory looked at (not a link swapped in).
    let Ok(dir) = parent.open_dir(name) else {
        return;
    };
    if dir.dir_metadata().map(|o| ino(&o)).ok() != Some(ino(&m)) {
        return;
    }
    let Ok(entries) = dir.entries() else { return };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            loosen(&dir, Path::new(&entry.file_name()));
        }
    }
}

/// What a restore may find at a path it writes, checked as it writes each one: the conflict
/// check before the restore runs under the files lock, which other programs do not take, so a
/// file another program writes (or creates) while the restore runs would otherwise be
/// overwritten unkept.
#[derive(Clone, Copy)]
enum Was<'a> {
    /// Anything (`--force`, or a failed call's own changes written back).
    Any,
    /// The state the step left here; the state the restore writes is accepted too (a restore
    /// that stopped part-way).
    Left(&'a Node),
}

/// What a path a snapshot does not name holds: nothing.
static ABSENT: Node = Node::Absent;

impl<'a> Was<'a> {
    /// The same for the entry `name` inside this directory.
    fn child(self, name: &str) -> Was<'a> {
        match self {
            Was::Any => Was::Any,
            Was::Left(Node::Dir { children, .. }) => {
                Was::Left(children.get(name).unwrap_or(&ABSENT))
            }
            Was::Left(_) => Was::Left(&ABSENT),
        }
    }

    /// Whether `now`, found where `target` is being written, may be replaced.
    fn fits(self, now: &Node, target: &Node) -> bool {
        match self {
            Was::Any => true,
            Was::Left(left) => {
                let mut out = Vec::new();
                mixed("", now, left, target, &mut out);
                out.is_empty()
            }
        }
    }

    /// Whether a directory may be taken out here: the step left one (or anything goes).
    fn left_a_dir(self) -> bool {
        match self {
            Was::Any => true,
            Was::Left(left) => matches!(left, Node::Dir { .. }),
        }
    }
}

/// The error of a path another program changed while a restore ran.
fn changed_meanwhile(shown: &str, what: &str) -> String {
    format!(
        "{shown} {what} while it was being restored (another program wrote there): it was left as that program made it, and the restore stopped there; run it again to see what differs"
    )
}

/// `renameat2(RENAME_EXCHANGE)`: `Ok(false)` where the file system cannot.
fn exchange(dir: &Dir, a: &Path, b: &Path) -> std::io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{renameat_with, RenameFlags};
        match renameat_with(dir, a, dir, b, RenameFlags::EXCHANGE) {
            Ok(()) => Ok(true),
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (dir, a, b);
        Ok(false)
    }
}

/// What `dir/name` holds now, its files hashed (nothing kept).
fn look(dir: &Dir, name: &Path, shown: &str) -> Result<Node, String> {
    let mut budget = Budget {
        used: 0,
        limit: u64::MAX,
    };
    let name = name
        .to_str()
        .ok_or_else(|| format!("{shown}: a temporary name that is not UTF-8"))?;
    capture_in(dir, name, shown, Keep::Hash, &mut budget, 0).map_err(|e| e.to_string())
}

/// Makes `parent/name` absent, taking only what `was` accepts: a file or link is moved aside
/// (renamed to a temporary name), looked at there and removed, or put back when another
/// program changed it; a directory is emptied that way, entry by entry, and removed only when
/// nothing was added to it meanwhile.
fn take_out(
    parent: &Dir,
    name: &str,
    was: Was<'_>,
    target: &Node,
    shown: &str,
) -> Result<(), String> {
    let meta = match parent.symlink_metadata(name) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(shown, e)),
    };
    if let Was::Any = was {
        return remove_any(parent, name, shown);
    }
    if meta.is_dir() {
        if !was.left_a_dir() {
            return Err(changed_meanwhile(shown, "is now a folder"));
        }
        // Removed anyway: its owner may write in it (a copy keeps a `0555` one).
        if mode(&meta) & 0o700 != 0o700 {
            let _ = parent.set_permissions(
                name,
                cap_std::fs::Permissions::from_mode(mode(&meta) | 0o700),
            );
        }
        let dir = parent.open_dir(name).map_err(|e| io(shown, e))?;
        let opened = dir.dir_metadata().map_err(|e| io(shown, e))?;
        if ino(&opened) != ino(&meta) {
            return Err(changed_meanwhile(shown, "was replaced"));
        }
        let mut names = Vec::new();
        for entry in dir.entries().map_err(|e| io(shown, e))? {
            let entry = entry.map_err(|e| io(shown, e))?;
            names.push(entry.file_name());
        }
        for child in names {
            let sub = format!("{shown}/{}", child.to_string_lossy());
            let Some(c) = child.to_str() else {
                return Err(changed_meanwhile(&sub, "appeared"));
            };
            if crate::fs::is_leftover_temp(c) && own_regular_file(&dir, c) {
                let _ = dir.remove_file(c);
                continue;
            }
            take_out(&dir, c, was.child(c), &ABSENT, &sub)?;
        }
        drop(dir);
        return match parent.remove_dir(name) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
                Err(changed_meanwhile(shown, "had something added to it"))
            }
            Err(e) => Err(io(shown, e)),
        };
    }
    let aside = crate::fs::temp_name(Path::new(name));
    match crate::fs::rename_noreplace(parent, Path::new(name), parent, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(shown, e)),
    }
    let now = look(parent, &aside, shown);
    if now.as_ref().is_ok_and(|now| was.fits(now, target)) {
        // (A folder swapped in after the look above is put back, not left aside.)
        return match parent.remove_file(&aside) {
            Ok(()) => Ok(()),
            Err(e) => {
                put_back(parent, &aside, name, shown)?;
                Err(io(shown, e))
            }
        };
    }
    put_back(parent, &aside, name, shown)?;
    Err(match now {
        Ok(_) => changed_meanwhile(shown, "changed"),
        Err(why) => why,
    })
}

/// Renames what [`take_out`] moved aside back to `name`; when `name` was made again meanwhile,
/// to a name beside it that says what it is (never lost as a temporary file).
fn put_back(parent: &Dir, aside: &Path, name: &str, shown: &str) -> Result<(), String> {
    if crate::fs::rename_noreplace(parent, aside, parent, Path::new(name)).is_ok() {
        return Ok(());
    }
    // Under a name no restore takes for debris (a temporary name is, once this process ends),
    // and no other program can have taken ahead (its number is the temporary name's, drawn at
    // random).
    let mut last = None;
    for _ in 0..4 {
        let fresh = crate::fs::temp_name(Path::new(name));
        let n = fresh
            .to_string_lossy()
            .trim_end_matches(".tmp")
            .rsplit('-')
            .next()
            .unwrap_or_default()
            .to_string();
        let kept = format!("{name}.kept-by-aifirst-{n}");
        match crate::fs::rename_noreplace(parent, aside, parent, Path::new(&kept)) {
            Ok(()) => {
                return Err(format!(
                    "{shown} changed twice while it was being restored (another program wrote there): what was there first is kept beside it as {kept}, and the restore stopped there"
                ))
            }
            Err(e) => last = Some(e),
        }
    }
    Err(format!(
        "{shown} changed while it was being restored, and what another program wrote there could not be put back ({}); it is in {}, which a later restore of this folder would take for debris: move it",
        last.map(|e| e.to_string()).unwrap_or_default(),
        aside.display()
    ))
}

/// Puts the file or link made at `tmp` in place as `name`: over what is there only when `was`
/// accepts it, looked at once swapped out (`RENAME_EXCHANGE`), so nothing another program
/// writes meanwhile is overwritten unkept. `tmp` is gone when this returns.
fn swap_in(
    parent: &Dir,
    tmp: &Path,
    name: &str,
    target: &Node,
    was: Was<'_>,
    shown: &str,
) -> Result<(), String> {
    let done = (|| {
        if let Was::Any = was {
            if parent.symlink_metadata(name).is_ok_and(|m| m.is_dir()) {
                remove_tree(parent, name.as_ref()).map_err(|e| io(shown, e))?;
            }
            return parent.rename(tmp, parent, name).map_err(|e| io(shown, e));
        }
        // Where the step left nothing (a file an undo writes back into a folder it made, say),
        // the rename alone says whether the name is still free.
        if matches!(was, Was::Left(Node::Absent)) {
            match crate::fs::rename_noreplace(parent, tmp, parent, Path::new(name)) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(shown, e)),
            }
        }
        // A few rounds: another program may change the path between looking and renaming.
        for _ in 0..4 {
            let meta = match parent.symlink_metadata(name) {
                Ok(m) => Some(m),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(io(shown, e)),
            };
            match meta {
                None => match crate::fs::rename_noreplace(parent, tmp, parent, Path::new(name)) {
                    Ok(()) => return Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(io(shown, e)),
                },
                Some(m) if m.is_dir() => take_out(parent, name, was, target, shown)?,
                Some(_) => match exchange(parent, tmp, Path::new(name)) {
                    Ok(true) => {
                        // What was there is at `tmp` now.
                        let now = look(parent, tmp, shown);
                        if now.as_ref().is_ok_and(|now| was.fits(now, target)) {
                            return remove_any(parent, &tmp.to_string_lossy(), shown);
                        }
                        let why = match now {
                            Ok(_) => changed_meanwhile(shown, "changed"),
                            Err(why) => why,
                        };
                        // Swapped back; `tmp` then holds what this restore made, unless the other
                        // program wrote `name` again meanwhile: then it holds theirs, kept.
                        let back = exchange(parent, tmp, Path::new(name));
                        if matches!(back, Ok(true))
                            && look(parent, tmp, shown).is_ok_and(|mine| mine == *target)
                        {
                            let _ = remove_any(parent, &tmp.to_string_lossy(), shown);
                            return Err(why);
                        }
                        return Err(match put_back(parent, tmp, name, shown) {
                            Ok(()) => why,
                            Err(kept) => kept,
                        });
                    }
                    Ok(false) => take_out(parent, name, was, target, shown)?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io(shown, e)),
                },
            }
        }
        Err(changed_meanwhile(shown, "kept changing"))
    })();
    // `tmp` holds what this restore made, unless the swap above kept another program's content
    // there (then it was put back or kept, and is not here any more).
    if done.is_err() && look(parent, tmp, shown).is_ok_and(|mine| mine == *target) {
        let _ = remove_any(parent, &tmp.to_string_lossy(), shown);
    }
    done
}

fn put_in(
    parent: &Dir,
    name: &str,
    n: &Node,
    was: Was<'_>,
    store: &Store,
    shown: &str,
) -> Result<(), String> {
    match n {
        Node::Absent => take_out(parent, name, was, &ABSENT, shown),
        Node::Link { target } => {
            let tmp = crate::fs::temp_name(Path::new(name));
            parent
                .symlink_contents(target, &tmp)
                .map_err(|e| io(shown, e))?;
            swap_in(parent, &tmp, name, n, was, shown)
        }
        Node::File {
            sha256,
            size,
            mode,
            owner,
        } => {
            let tmp = write_blob(parent, name, (sha256, *size), (*mode, *owner), store, shown)?;
            swap_in(parent, &tmp, name, n, was, shown)
        }
        Node::Dir {
            mode,
            owner,
            children,
        } => {
            let existing = parent.symlink_metadata(name);
            match existing {
                // A folder where one is written back: filled below, entry by entry as `was`
                // accepts.
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    take_out(parent, name, was, n, shown)?;
                    make_dir(parent, name, *mode, shown)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    match make_dir(parent, name, *mode, shown) {
                        Err(_) if parent.symlink_metadata(name).is_ok() => {
                            return Err(changed_meanwhile(shown, "appeared"))
                        }
                        done => done?,
                    }
                }
                Err(e) => return Err(io(shown, e)),
            }
            // Opened, then checked to be the directory just looked at: a link swapped in
            // meanwhile is not followed into another directory to be filled (or emptied).
            let seen = parent.symlink_metadata(name).map_err(|e| io(shown, e))?;
            let dir = parent.open_dir(name).map_err(|e| io(shown, e))?;
            let opened = dir.dir_metadata().map_err(|e| io(shown, e))?;
            if !seen.is_dir() || ino(&opened) != ino(&seen) {
                return Err(format!(
                    "{shown} changed while it was being restored; try again"
                ));
            }
            fill_dir(&dir, children, was, store, shown)?;
            drop(dir);
            owner.apply_at(parent, name);
            // (Beneath the root: a link swapped in by now could only change another directory
            // of the root's mode.)
            parent
                .set_permissions(name, cap_std::fs::Permissions::from_mode(*mode))
                .map_err(|e| io(shown, e))
        }
    }
}

/// Makes the folder `parent/name` for a restore to fill: its mode `mode` with the owner's rwx
/// (set at once, whatever the umask, so a restore that stops while filling it leaves a mode the
/// conflict check knows; the exact mode is set once it is filled).
fn make_dir(parent: &Dir, name: &str, mode: u32, shown: &str) -> Result<(), String> {
    use cap_std::fs::DirBuilderExt as _;
    // Made with it (the umask may take bits, which the check allows for), then given it whole.
    let mut builder = cap_std::fs::DirBuilder::new();
    builder.mode(mode | 0o700);
    parent
        .create_dir_with(name, &builder)
        .map_err(|e| io(shown, e))?;
    parent
        .set_permissions(name, cap_std::fs::Permissions::from_mode(mode | 0o700))
        .map_err(|e| io(shown, e))
}

/// The process's umask (Linux's `/proc/self/status`; `022` where it cannot be read).
fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Umask:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            })
            .unwrap_or(0o022)
    })
}

/// Makes `dir` hold exactly `children` (`was`: what the directory held as the step left it).
fn fill_dir(
    dir: &Dir,
    children: &BTreeMap<String, Node>,
    was: Was<'_>,
    store: &Store,
    shown: &str,
) -> Result<(), String> {
    let mut extra = Vec::new();
    for entry in dir.entries().map_err(|e| io(shown, e))? {
        let entry = entry.map_err(|e| io(shown, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !children.contains_key(&name) {
            extra.push(entry.file_name());
        }
    }
    for name in extra {
        let n = name.to_string_lossy().into_owned();
        let sub = format!("{shown}/{n}");
        match name.to_str() {
            Some(n) if crate::fs::is_leftover_temp(n) && own_regular_file(dir, n) => {
                let _ = dir.remove_file(n);
            }
            Some(n) => take_out(dir, n, was.child(n), &ABSENT, &sub)?,
            // Not a name a snapshot keeps, so not one the step left.
            None if matches!(was, Was::Any) => match dir.symlink_metadata(&name) {
                Ok(m) if m.is_dir() => remove_tree(dir, name.as_ref()).map_err(|e| io(&sub, e))?,
                Ok(_) => dir.remove_file(&name).map_err(|e| io(&sub, e))?,
                Err(_) => {}
            },
            None => return Err(changed_meanwhile(&sub, "appeared")),
        }
    }
    for (name, node) in children {
        let sub = format!("{shown}/{name}");
        if name.is_empty()
            || name == "."
            || name == ".."
            || name.contains('/')
            || name.contains('\0')
        {
            return Err(format!(
                "{sub}: the snapshot names an entry `{name}` that is not a file name; refused"
            ));
        }
        put_in(dir, name, node, was.child(name), store, &sub)?;
    }
    Ok(())
}

/// Writes a blob, with `mode`, to a temporary file beside `parent/name`, whose name it returns
/// (for [`swap_in`] to put in place).
fn write_blob(
    parent: &Dir,
    name: &str,
    (hash, size): (&str, u64),
    (mode, owner): (u32, Owner),
    store: &Store,
    shown: &str,
) -> Result<PathBuf, String> {
    let mut src = store
        .source(hash)
        .map_err(|e| format!("{e} (for {shown})"))?;
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    opts.mode(0o600);
    let (file, tmp) =
        crate::fs::create_temp(parent, Path::new(name), &opts).map_err(|e| io(shown, e))?;
    let mut out = file.into_std();
    // Copied and hashed in one pass; renamed into place only when the hash is the blob's name.
    let written = (|| -> std::io::Result<()> {
        let mut hasher = Sha256::new();
        // As large as the content, up to 256 KiB: a tree of small files is not a zeroed
        // 256 KiB buffer each.
        let mut buf = vec![
            0u8;
            usize::try_from(size)
                .unwrap_or(usize::MAX)
                .clamp(4096, 256 * 1024)
        ];
        loop {
            let n = src.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
        }
        if hex(&hasher.finalize()) != hash {
            return Err(std::io::Error::other(format!(
                "snapshot blob {hash} no longer holds what was kept (its content changed): this file was not written; what this undo wrote back before it stays"
            )));
        }
        // The owner before the mode: a change of owner clears set-id bits.
        owner.apply(&out);
        use std::os::unix::fs::PermissionsExt as _;
        out.set_permissions(std::fs::Permissions::from_mode(mode))
    })();
    drop(out);
    if let Err(e) = written {
        let _ = parent.remove_file(&tmp);
        return Err(io(shown, e));
    }
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    //! A restore checks each path as it writes it. Another program writing between the conflict
    //! check and the restore cannot be timed through the engine, so these call `restore` on
    //! the state such a program leaves, as the check would not have seen it.
    use super::*;
    use crate::Sandbox;

    struct Setup {
        _dir: tempfile::TempDir,
        root: PathBuf,
        sandbox: Sandbox,
        store: Store,
        journal: Arc<Journal>,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let state = dir.path().join("state");
        let journal = Arc::new(Journal::open(&state).unwrap());
        let store = Store::new(&state, Arc::clone(&journal));
        let sandbox = Sandbox::new()
            .with_roots(std::slice::from_ref(&root))
            .unwrap();
        Setup {
            _dir: dir,
            root,
            sandbox,
            store,
            journal,
        }
    }

    impl Setup {
        /// The manifest of `change` run on `paths` (below the root), as the engine keeps it.
        fn step(&self, paths: &[&str], change: impl FnOnce(&Path)) -> Manifest {
            let paths: Vec<String> = paths
                .iter()
                .map(|p| self.root.join(p).display().to_string())
                .collect();
            let fs = self.sandbox.fs();
            let (mut m, blobs) = before(fs, &self.store, &paths, u64::MAX).unwrap();
            for (hash, data) in blobs {
                self.journal.put_blob(&hash, &data).unwrap();
            }
            change(&self.root);
            after(fs, &mut m).unwrap();
            keep_after(fs, &self.store, &m, u64::MAX);
            m
        }

        fn undo(&self, m: &Manifest, force: bool) -> Result<(), String> {
            restore(self.sandbox.fs(), &self.store, m, true, force)
        }

        fn read(&self, p: &str) -> Option<String> {
            std::fs::read_to_string(self.root.join(p)).ok()
        }

        /// Every name below the root, temporary files included.
        fn names(&self) -> Vec<String> {
            fn walk(d: &Path, base: &Path, out: &mut Vec<String>) {
                for e in std::fs::read_dir(d).unwrap() {
                    let p = e.unwrap().path();
                    out.push(p.strip_prefix(base).unwrap().display().to_string());
                    if p.is_dir() && !p.is_symlink() {
                        walk(&p, base, out);
                    }
                }
            }
            let mut out = Vec::new();
            walk(&self.root, &self.root, &mut out);
            out.sort();
            out
        }
    }

    #[test]
    fn a_file_another_program_rewrote_during_the_restore_is_kept() {
        let s = setup();
        std::fs::write(s.root.join("a.txt"), "before").unwrap();
        let m = s.step(&["a.txt"], |r| {
            std::fs::write(r.join("a.txt"), "call").unwrap()
        });
        std::fs::write(s.root.join("a.txt"), "theirs").unwrap();
        let err = s.undo(&m, false).unwrap_err();
        assert!(
            err.contains("a.txt changed while it was being restored"),
            "{err}"
        );
        assert_eq!(s.read("a.txt").as_deref(), Some("theirs"));
        assert_eq!(s.names(), ["a.txt"], "nothing left beside it");
        // Forced, the state before is written over theirs.
        s.undo(&m, true).unwrap();
        assert_eq!(s.read("a.txt").as_deref(), Some("before"));
    }

    #[test]
    fn a_file_another_program_made_where_the_restore_removes_or_creates_is_kept() {
        let s = setup();
        // The call made `new.txt`; another program replaced it with its own.
        let m = s.step(&["new.txt"], |r| {
            std::fs::write(r.join("new.txt"), "call").unwrap()
        });
        std::fs::remove_file(s.root.join("new.txt")).unwrap();
        std::fs::write(s.root.join("new.txt"), "theirs").unwrap();
        let err = s.undo(&m, false).unwrap_err();
        assert!(err.contains("new.txt changed while"), "{err}");
        assert_eq!(s.read("new.txt").as_deref(), Some("theirs"));
        assert_eq!(s.names(), ["new.txt"]);

        // The call deleted `old.txt`; another program made one there before the undo wrote it.
        std::fs::write(s.root.join("old.txt"), "kept").unwrap();
        let m = s.step(&["old.txt"], |r| {
            std::fs::remove_file(r.join("old.txt")).unwrap()
        });
        std::fs::write(s.root.join("old.txt"), "theirs").unwrap();
        let err = s.undo(&m, false).unwrap_err();
        assert!(err.contains("old.txt changed while"), "{err}");
        assert_eq!(s.read("old.txt").as_deref(), Some("theirs"));

        // As a link, then as a folder: neither is replaced.
        std::fs::remove_file(s.root.join("old.txt")).unwrap();
        std::os::unix::fs::symlink("elsewhere", s.root.join("old.txt")).unwrap();
        assert!(s.undo(&m, false).is_err());
        assert_eq!(
            std::fs::read_link(s.root.join("old.txt")).unwrap(),
            Path::new("elsewhere")
        );
        std::fs::remove_file(s.root.join("old.txt")).unwrap();
        std::fs::create_dir(s.root.join("old.txt")).unwrap();
        std::fs::write(s.root.join("old.txt/theirs"), "x").unwrap();
        assert!(s.undo(&m, false).is_err());
        assert_eq!(s.read("old.txt/theirs").as_deref(), Some("x"));
        let mut names = s.names();
        names.retain(|n| !n.starts_with("new.txt"));
        assert_eq!(names, ["old.txt", "old.txt/theirs"]);
    }

    #[test]
    fn a_folder_the_restore_removes_keeps_what_another_program_put_in_it() {
        let s = setup();
        let m = s.step(&["d"], |r| {
            std::fs::create_dir_all(r.join("d/e")).unwrap();
            std::fs::write(r.join("d/e/call.txt"), "call").unwrap();
            std::fs::write(r.join("d/call.txt"), "call").unwrap();
        });
        std::fs::write(s.root.join("d/e/theirs.txt"), "theirs").unwrap();
        let err = s.undo(&m, false).unwrap_err();
        assert!(err.contains("d/e/theirs.txt"), "{err}");
        assert_eq!(s.read("d/e/theirs.txt").as_deref(), Some("theirs"));
        // An empty folder another program made is not taken either.
        std::fs::remove_file(s.root.join("d/e/theirs.txt")).unwrap();
        std::fs::create_dir(s.root.join("d/mine")).unwrap();
        assert!(s.undo(&m, false).unwrap_err().contains("d/mine"));
        assert!(s.root.join("d/mine").is_dir());
        // Once it is gone, the restore that stopped part-way runs again and finishes.
        std::fs::remove_dir(s.root.join("d/mine")).unwrap();
        s.undo(&m, false).unwrap();
        assert!(s.names().is_empty(), "{:?}", s.names());
    }

    #[test]
    fn a_folder_made_where_the_step_left_nothing_is_named_as_made_not_as_a_mode_change() {
        let s = setup();
        std::fs::create_dir(s.root.join("t")).unwrap();
        let m = s.step(&["t"], |r| std::fs::remove_dir(r.join("t")).unwrap());
        std::fs::create_dir(s.root.join("t")).unwrap();
        std::fs::set_permissions(
            s.root.join("t"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        std::fs::write(s.root.join("t/x"), "x").unwrap();
        let found = conflicts_after(s.sandbox.fs(), &m, true, &Planned::default());
        assert!(
            found.iter().any(|c| c.ends_with(
                "/t: is now a directory of 1 file(s), 1 bytes (mode 700), the step left absent"
            )),
            "{found:?}"
        );
        assert!(
            !found.iter().any(|c| c.contains("mode changed")),
            "{found:?}"
        );
    }

    #[test]
    fn a_restore_stopped_inside_a_folder_it_made_runs_again() {
        use std::os::unix::fs::PermissionsExt as _;
        let s = setup();
        std::fs::create_dir(s.root.join("t")).unwrap();
        std::fs::write(s.root.join("t/a.txt"), "a").unwrap();
        std::fs::write(s.root.join("t/b.txt"), "b").unwrap();
        std::fs::set_permissions(s.root.join("t"), std::fs::Permissions::from_mode(0o555)).unwrap();
        let m = s.step(&["t"], |r| {
            std::fs::set_permissions(r.join("t"), std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::remove_dir_all(r.join("t")).unwrap();
        });
        // As a restore leaves the folder when it stops after its first file: made with its
        // mode and the owner's rwx, the mode itself set only once it is filled.
        std::fs::create_dir(s.root.join("t")).unwrap();
        std::fs::set_permissions(s.root.join("t"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(s.root.join("t/a.txt"), "a").unwrap();
        // And one killed between making a folder and giving it its mode: made with it, less
        // what the umask takes (`777` under `022` is made `755`).
        std::fs::create_dir(s.root.join("u")).unwrap();
        std::fs::set_permissions(s.root.join("u"), std::fs::Permissions::from_mode(0o777)).unwrap();
        let mu = s.step(&["u"], |r| std::fs::remove_dir(r.join("u")).unwrap());
        std::fs::create_dir(s.root.join("u")).unwrap();
        std::fs::set_permissions(
            s.root.join("u"),
            std::fs::Permissions::from_mode(0o777 & !umask()),
        )
        .unwrap();
        let found = conflicts_after(s.sandbox.fs(), &mu, true, &Planned::default());
        assert!(found.is_empty(), "{found:?}");
        let found = conflicts_after(s.sandbox.fs(), &m, true, &Planned::default());
        assert!(found.is_empty(), "{found:?}");
        s.undo(&m, false).unwrap();
        let mode = std::fs::metadata(s.root.join("t"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o555);
        assert_eq!(s.read("t/b.txt").as_deref(), Some("b"));
        std::fs::set_permissions(s.root.join("t"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn what_cannot_be_put_back_is_kept_under_a_name_no_restore_takes_for_debris() {
        let s = setup();
        let dir =
            cap_std::fs::Dir::open_ambient_dir(&s.root, cap_std::ambient_authority()).unwrap();
        let aside = crate::fs::temp_name(Path::new("x"));
        dir.write(&aside, "theirs").unwrap();
        // Made again meanwhile: the first place is taken.
        dir.write("x", "made again").unwrap();
        let err = put_back(&dir, &aside, "x", "x").unwrap_err();
        assert!(
            err.contains("kept beside it as x.kept-by-aifirst-"),
            "{err}"
        );
        let kept: Vec<String> = s
            .names()
            .into_iter()
            .filter(|n| n.starts_with("x.kept-by-aifirst-"))
            .collect();
        assert_eq!(kept.len(), 1, "{:?}", s.names());
        assert!(!crate::fs::is_leftover_temp(&kept[0]));
        assert_eq!(s.read(&kept[0]).as_deref(), Some("theirs"));
        assert_eq!(s.read("x").as_deref(), Some("made again"));
        assert!(!s.names().iter().any(|n| n.starts_with(".aifirst-")));
    }

    #[test]
    fn a_folder_the_restore_fills_keeps_what_another_program_added() {
        let s = setup();
        std::fs::create_dir(s.root.join("t")).unwrap();
        std::fs::write(s.root.join("t/a.txt"), "a").unwrap();
        // The call removed the tree; another program made the folder again with its file.
        let m = s.step(&["t"], |r| std::fs::remove_dir_all(r.join("t")).unwrap());
        std::fs::create_dir(s.root.join("t")).unwrap();
        std::fs::write(s.root.join("t/theirs.txt"), "theirs").unwrap();
        let err = s.undo(&m, false).unwrap_err();
        assert!(err.contains("/t"), "{err}");
        assert_eq!(s.read("t/theirs.txt").as_deref(), Some("theirs"));
        std::fs::remove_dir_all(s.root.join("t")).unwrap();
        // With nothing in the way it is written back whole, and again over a restore that
        // stopped part-way (the same call twice).
        s.undo(&m, false).unwrap();
        s.undo(&m, false).unwrap();
        assert_eq!(s.read("t/a.txt").as_deref(), Some("a"));
        assert_eq!(s.names(), ["t", "t/a.txt"]);
    }

    #[test]
    fn a_redo_keeps_a_file_another_program_made_meanwhile() {
        let s = setup();
        let m = s.step(&["n.txt", "l"], |r| {
            std::fs::write(r.join("n.txt"), "call").unwrap();
            std::os::unix::fs::symlink("n.txt", r.join("l")).unwrap();
        });
        s.undo(&m, false).unwrap();
        assert!(s.names().is_empty());
        std::fs::write(s.root.join("n.txt"), "theirs").unwrap();
        let err = restore(s.sandbox.fs(), &s.store, &m, false, false).unwrap_err();
        assert!(err.contains("n.txt changed while"), "{err}");
        assert_eq!(s.read("n.txt").as_deref(), Some("theirs"));
        std::fs::remove_file(s.root.join("n.txt")).unwrap();
        restore(s.sandbox.fs(), &s.store, &m, false, false).unwrap();
        assert_eq!(s.read("n.txt").as_deref(), Some("call"));
        assert_eq!(
            std::fs::read_link(s.root.join("l")).unwrap(),
            Path::new("n.txt")
        );
        assert_eq!(s.names(), ["l", "n.txt"]);
    }
}
