//! File access beneath the sandbox's roots.
//!
//! A capability reaches files through [`crate::Ctx::fs`], never through `std::fs` with a path it
//! was given. Each root is held open as a directory handle (`cap-std`), and every path is opened
//! *beneath* that handle: on Linux with `openat2(RESOLVE_BENEATH)`, elsewhere by resolving one
//! component at a time. So no symbolic link leads outside a root — not one that dangles, not one
//! swapped in between a check and the open, not an absolute one. Writes replace a file by writing
//! a sibling and renaming it over, so a hard link to a file outside the root is never written
//! through; appending to a file with more than one link is refused.
//!
//! No roots means no file access: every path is refused with a message naming the setting.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use cap_std::fs::{Dir, File, Metadata, OpenOptions};

use crate::ToolError;

/// One allowed root: the directory as configured and as the kernel names it, and its handle.
#[derive(Debug)]
struct Root {
    /// Absolute and normalised, as configured (may contain symbolic links, such as `/tmp`).
    given: PathBuf,
    /// With every link resolved.
    canonical: PathBuf,
    /// The handle, while `canonical` names the directory it was opened on (see [`Root::dir`]).
    handle: std::sync::RwLock<Option<Held>>,
}

/// An open root and the (device, inode) of the directory it was opened on.
#[derive(Debug, Clone)]
struct Held {
    dir: Arc<Dir>,
    id: (u64, u64),
}

impl Root {
    fn new(given: PathBuf, canonical: PathBuf, dir: Dir) -> std::io::Result<Root> {
        let id = dir_id(&dir)?;
        Ok(Root {
            given,
            canonical,
            handle: std::sync::RwLock::new(Some(Held {
                dir: Arc::new(dir),
                id,
            })),
        })
    }

    /// A root that is not there (yet): it is opened once a directory is at `canonical`.
    fn missing(given: PathBuf, canonical: PathBuf) -> Root {
        Root {
            given,
            canonical,
            handle: std::sync::RwLock::new(None),
        }
    }

    /// The root's handle, when `canonical` names a directory now. A root is a path: when the
    /// directory the handle was opened on is removed, moved away or replaced after it was
    /// opened (by a program a call ran, by its user), the handle is let go — paths inside the
    /// root never lead into a directory that is no longer there, or now elsewhere — and
    /// whatever directory is at the path now is opened instead (without following any link on
    /// the way: `canonical` holds none), such as one an undo put back.
    fn dir(&self) -> Option<Arc<Dir>> {
        let now = rustix::fs::stat(&self.canonical).ok().and_then(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode)
                .is_dir()
                .then_some((st.st_dev, st.st_ino))
        });
        let held = self
            .handle
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match (held, now) {
            (Some(h), Some((dev, ino))) if h.id == (dev, ino) => return Some(h.dir),
            (None, None) => return None,
            _ => {}
        }
        let mut slot = self.handle.write().unwrap_or_else(|p| p.into_inner());
        *slot = now
            .and_then(|_| open_root_strictly(&self.canonical).ok())
            .and_then(|dir| {
                let id = dir_id(&dir).ok()?;
                Some(Held {
                    dir: Arc::new(dir),
                    id,
                })
            });
        slot.as_ref().map(|h| Arc::clone(&h.dir))
    }

    /// The root's parent directory, opened without following any link, and the root's name
    /// in it (to create or remove the root itself).
    fn in_parent(&self) -> Result<(Dir, &std::ffi::OsStr), String> {
        let shown = self.given.display();
        let (Some(up), Some(name)) = (self.canonical.parent(), self.canonical.file_name()) else {
            return Err(format!("the allowed root {shown} has no parent directory"));
        };
        let parent = open_root_strictly(up)
            .map_err(|e| format!("the allowed root {shown}: its parent {}: {e}", up.display()))?;
        Ok((parent, name))
    }

    /// Why a path inside this root cannot be reached now.
    fn gone(&self, path: &Path) -> ToolError {
        ToolError::Handler {
            message: format!(
                "`{}` cannot be reached: the allowed root {} is not a directory now (it was \
                 removed, moved away or replaced since it was configured); an undo of the call \
                 that removed it puts it back",
                path.display(),
                self.given.display()
            ),
        }
    }
}

/// The (device, inode) of an open directory.
fn dir_id(dir: &Dir) -> std::io::Result<(u64, u64)> {
    let st = rustix::fs::fstat(dir)?;
    Ok((st.st_dev, st.st_ino))
}

/// Opens `path` (absolute, with no link in it) as a directory, refusing a link anywhere on the
/// way (`RESOLVE_NO_SYMLINKS` on Linux; the last component elsewhere).
fn open_root_strictly(path: &Path) -> std::io::Result<Dir> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{openat2, Mode, OFlags, ResolveFlags, CWD};
        let fd = openat2(
            CWD,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::NO_SYMLINKS,
        )?;
        Ok(Dir::from_std_file(std::fs::File::from(fd)))
    }
    #[cfg(not(target_os = "linux"))]
    {
        if std::fs::symlink_metadata(path)?.file_type().is_symlink() {
            return Err(std::io::Error::other("the root is a symbolic link now"));
        }
        Dir::open_ambient_dir(path, cap_std::ambient_authority())
    }
}

/// The directories file capabilities may touch. Built once per engine; cheap to share.
#[derive(Debug, Default)]
pub struct Fs {
    roots: Vec<Root>,
    /// Directories no path may lead into (the runtime's state directory: its journal, audit
    /// log and snapshots), canonical.
    protected: Vec<PathBuf>,
}

/// A path resolved to a root: open it with the methods of [`Fs`] or through [`Located::dir`].
#[derive(Debug)]
pub struct Located<'a> {
    /// The root's handle.
    pub dir: Arc<Dir>,
    /// Found in this `Fs`.
    place: std::marker::PhantomData<&'a Fs>,
    /// The path below the root (empty for the root itself).
    pub rel: PathBuf,
    /// The path as the caller should see it in messages: the root as configured joined with `rel`.
    pub shown: PathBuf,
    /// The root with every link resolved, joined with `rel` (links below the root not resolved).
    pub canonical: PathBuf,
    /// Where the path leads, links below the root followed too, when the kernel was asked (a
    /// state directory lies beneath this root); `canonical` otherwise.
    pub real: PathBuf,
    /// Written with a final `/` (or `/.`): it names a directory, as the kernel reads it. The
    /// normal form drops the slash, so each operation checks that what is there is one.
    pub names_dir: bool,
}

impl Fs {
    /// Opens each root (which must exist and be a directory).
    pub fn new(roots: &[PathBuf]) -> Result<Fs, std::io::Error> {
        Fs::open_roots(roots, false)
    }

    /// Opens each root, keeping one that does not exist as a root not there yet (a path in it
    /// is refused, naming it; it is opened once a directory is there, such as one an undo
    /// puts back). For what reads or undoes the journal — `undo`, `redo`, `history` — which
    /// must work after a call removed a root; a server or a call is better stopped early by a
    /// root mistyped.
    pub fn new_allowing_missing(roots: &[PathBuf]) -> Result<Fs, std::io::Error> {
        Fs::open_roots(roots, true)
    }

    fn open_roots(roots: &[PathBuf], allow_missing: bool) -> Result<Fs, std::io::Error> {
        let mut out = Vec::with_capacity(roots.len());
        let named = |r: &Path, e: std::io::Error| {
            std::io::Error::new(e.kind(), format!("allowed root {}: {e}", r.display()))
        };
        for r in roots {
            let given = aifirst_capability::path::absolute(r);
            let canonical = match given.canonicalize() {
                Ok(c) => c,
                Err(e) if allow_missing && e.kind() == std::io::ErrorKind::NotFound => {
                    // Where it would be: its parent as the kernel names it, when that exists.
                    let canonical = match (given.parent(), given.file_name()) {
                        (Some(up), Some(name)) => up
                            .canonicalize()
                            .map(|c| c.join(name))
                            .unwrap_or_else(|_| given.clone()),
                        _ => given.clone(),
                    };
                    out.push(Root::missing(given, canonical));
                    continue;
                }
                Err(e) => return Err(named(r, e)),
            };
            let dir = Dir::open_ambient_dir(&canonical, cap_std::ambient_authority())
                .map_err(|e| named(r, e))?;
            out.push(Root::new(given, canonical, dir).map_err(|e| named(r, e))?);
        }
        Ok(Fs {
            roots: out,
            protected: Vec::new(),
        })
    }

    /// The root `path` names itself (as configured or as the kernel names it).
    fn root_named(&self, path: &Path) -> Option<&Root> {
        let normal = aifirst_capability::path::normalize(path)?;
        self.roots
            .iter()
            .find(|r| normal == r.given || normal == r.canonical)
    }

    /// Creates the root `path` names when it is not there now (an undo putting back a root a
    /// call removed): the directory alone, `0700` until the undo sets its mode, beneath its
    /// parent, which must exist. `Ok(false)` when `path` is not a root, or the root is there.
    pub(crate) fn recreate_root(&self, path: &Path) -> Result<bool, String> {
        let Some(root) = self.root_named(path) else {
            return Ok(false);
        };
        if root.dir().is_some() {
            return Ok(false);
        }
        let shown = root.given.display();
        let (parent, name) = root
            .in_parent()
            .map_err(|e| format!("{e}: it cannot be put back"))?;
        rustix::fs::mkdirat(&parent, name, rustix::fs::Mode::from_raw_mode(0o700))
            .map_err(|e| format!("the allowed root {shown} cannot be put back: {e}"))?;
        match root.dir() {
            Some(_) => Ok(true),
            None => Err(format!(
                "the allowed root {shown} was created but cannot be opened"
            )),
        }
    }

    /// For a redo of a call that removed the root `path` names: the handle of the root's
    /// parent (opened without following any link) and the root's name there. `Ok(None)` when
    /// `path` is not a root; refused when the root holds a protected directory.
    pub(crate) fn root_in_parent(&self, path: &Path) -> Result<Option<(Dir, PathBuf)>, String> {
        let Some(root) = self.root_named(path) else {
            return Ok(None);
        };
        let shown = root.given.display();
        if let Some(p) = self
            .protected
            .iter()
            .find(|p| p.starts_with(&root.canonical))
        {
            return Err(format!(
                "the allowed root {shown} holds the runtime's state directory ({}); it is not removed",
                p.display()
            ));
        }
        let (parent, name) = root.in_parent()?;
        Ok(Some((parent, PathBuf::from(name))))
    }

    /// The root a normalised absolute path lies in (the first, as configured or as the kernel
    /// names it) and the path below it: how [`Fs::locate`] and the journal's lookups match.
    fn root_of<'p>(&self, normal: &'p Path) -> Option<(&Root, &'p Path)> {
        self.roots.iter().find_map(|r| {
            [&r.given, &r.canonical]
                .into_iter()
                .find_map(|base| normal.strip_prefix(base).ok())
                .map(|rel| (r, rel))
        })
    }

    /// `path` (relative to the first root) normalised, and the root it lies in.
    fn root_of_path(&self, path: &Path) -> Option<(&Root, PathBuf)> {
        let normal = self
            .joined(path)
            .and_then(|p| aifirst_capability::path::normalize(&p))?;
        let (root, rel) = self.root_of(&normal)?;
        Some((root, rel.to_path_buf()))
    }

    /// Where `path` lies as the kernel named its root when it was opened (the root's links
    /// resolved then), whether or not the root is there now; `None` outside the roots.
    pub(crate) fn canonical_of(&self, path: &Path) -> Option<PathBuf> {
        self.root_of_path(path)
            .map(|(r, rel)| r.canonical.join(rel))
    }

    /// `true` when `path` lies in a root that is not a directory now (see [`Fs::locate`]).
    pub(crate) fn in_missing_root(&self, path: &Path) -> bool {
        self.root_of_path(path)
            .is_some_and(|(r, _)| r.dir().is_none())
    }

    /// These roots narrowed to `offered` directories (MCP roots): an offered directory inside a
    /// root becomes a root, opened *beneath* that root's handle (a link in it cannot lead
    /// elsewhere, even one swapped in now); a root inside an offered directory stays; the rest
    /// go. Never wider than `self`. Protected directories stay protected.
    pub fn narrowed(&self, offered: &[PathBuf]) -> Fs {
        let mut out: Vec<Root> = Vec::new();
        for o in offered {
            let o = aifirst_capability::path::absolute(o);
            let oc = o.canonicalize().unwrap_or_else(|_| o.clone());
            for r in &self.roots {
                let Some(held) = r.dir() else { continue };
                let root = if let Ok(rel) = oc.strip_prefix(&r.canonical) {
                    let dir = if rel.as_os_str().is_empty() {
                        held.try_clone()
                    } else {
                        held.open_dir(rel)
                    };
                    let Ok(dir) = dir else { continue };
                    let Ok(root) = Root::new(o.clone(), r.canonical.join(rel), dir) else {
                        continue;
                    };
                    root
                } else if r.canonical.starts_with(&oc) {
                    let Ok(dir) = held.try_clone() else { continue };
                    let Ok(root) = Root::new(r.given.clone(), r.canonical.clone(), dir) else {
                        continue;
                    };
                    root
                } else {
                    continue;
                };
                if !out.iter().any(|x| x.canonical == root.canonical) {
                    out.push(root);
                }
            }
        }
        Fs {
            roots: out,
            protected: self.protected.clone(),
        }
    }

    /// The roots as configured.
    pub fn roots(&self) -> Vec<&Path> {
        self.roots.iter().map(|r| r.given.as_path()).collect()
    }

    /// Puts `dir` (the runtime's state directory) out of reach: no path inside it is located,
    /// listings leave it out, and a directory holding it is not removed, moved or copied. A
    /// directory that does not exist is ignored.
    pub fn protect(&mut self, dir: &Path) {
        if let Ok(c) = aifirst_capability::path::absolute(dir).canonicalize() {
            if !self.protected.contains(&c) {
                self.protected.push(c);
            }
        }
    }

    /// The protected directories (see [`Fs::protect`]).
    pub fn protected(&self) -> &[PathBuf] {
        &self.protected
    }

    /// Refuses a path that holds a protected directory (removing, moving or copying it would
    /// take the journal and audit log with it).
    pub fn refuse_holding_state(&self, at: &Located<'_>) -> Result<(), ToolError> {
        match self
            .protected
            .iter()
            .find(|p| p.starts_with(&at.canonical) || p.starts_with(&at.real))
        {
            Some(p) => Err(ToolError::NotAllowed {
                message: format!(
                    "{} holds the runtime's state directory ({}: the undo journal and audit log); \
                     it is not removed, moved or copied by file tools",
                    at.shown.display(),
                    p.display()
                ),
            }),
            None => Ok(()),
        }
    }

    /// `true` when no root is configured: every file access is refused.
    pub fn is_closed(&self) -> bool {
        self.roots.is_empty()
    }

    /// Finds the root `path` lies in, lexically (`..` applied first; a path that climbs out is
    /// refused). A relative path is taken relative to the first root. Links are not followed
    /// here: they are resolved beneath the root's handle when the path is opened.
    pub fn locate(&self, path: impl AsRef<Path>) -> Result<Located<'_>, ToolError> {
        let path = path.as_ref();
        let Some(first) = self.roots.first() else {
            return Err(ToolError::NotAllowed {
                message: format!(
                    "no file access: `{}` cannot be reached because no allowed roots are configured \
                     (set `allowed_roots` in airun.toml, `--root DIR`, or AIFIRST_ROOTS)",
                    path.display()
                ),
            });
        };
        let outside = || ToolError::NotAllowed {
            message: format!(
                "path `{}` is outside the allowed roots ({})",
                path.display(),
                self.roots
                    .iter()
                    .map(|r| r.given.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let joined = if path.is_absolute() {
            path.to_path_buf()
        } else {
            first.given.join(path)
        };
        let normal = aifirst_capability::path::normalize(&joined).ok_or_else(outside)?;
        if let Some((root, rel)) = self.root_of(&normal) {
            let Some(dir) = root.dir() else {
                return Err(root.gone(path));
            };
            let canonical = root.canonical.join(rel);
            let inside = |p: &PathBuf| ToolError::NotAllowed {
                message: format!(
                    "path `{}` is inside the runtime's state directory ({}: the undo \
                             journal and audit log), which file tools never touch",
                    path.display(),
                    p.display()
                ),
            };
            if let Some(p) = self.protected.iter().find(|p| canonical.starts_with(p)) {
                return Err(inside(p));
            }
            // A state directory beneath this root can also be reached through a link
            // inside the root (`self -> .`, then `self/.aifirst/…`): where the path
            // leads is asked of the kernel.
            let beneath: Vec<&PathBuf> = self
                .protected
                .iter()
                .filter(|p| p.starts_with(&root.canonical))
                .collect();
            let mut real = canonical.clone();
            if !beneath.is_empty() {
                let (here, leads) =
                    real_locations(root, &dir, rel).map_err(|why| ToolError::NotAllowed {
                        message: format!(
                            "path `{}` cannot be checked against the runtime's state \
                                     directory, which lies inside the allowed root {} ({why}); \
                                     keep the state directory outside the roots (--state-dir)",
                            path.display(),
                            root.given.display()
                        ),
                    })?;
                for r in [Some(&here), leads.as_ref()].into_iter().flatten() {
                    if let Some(p) = beneath.iter().find(|p| r.starts_with(p)) {
                        return Err(inside(p));
                    }
                }
                real = leads.unwrap_or(here);
            }
            return Ok(Located {
                dir,
                place: std::marker::PhantomData,
                rel: rel.to_path_buf(),
                shown: root.given.join(rel),
                canonical,
                real,
                names_dir: names_dir(path),
            });
        }
        Err(outside())
    }

    /// The first symbolic link in the real directory `dir` (and below it, when `recursive`)
    /// that leads outside the roots, in words; or that there were too many entries to look at.
    /// Looks only (`readdir`, `lstat`, `readlink`), like [`resolve_physical`].
    pub(crate) fn link_out_below(&self, dir: &Path, recursive: bool) -> Option<String> {
        const MAX_ENTRIES: usize = 100_000;
        let mut stack = vec![(dir.to_path_buf(), 0usize)];
        let mut seen = 0usize;
        while let Some((d, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                seen += 1;
                if seen > MAX_ENTRIES {
                    return Some(format!(
                        "`{}`, which holds more than {MAX_ENTRIES} entries to check",
                        dir.display()
                    ));
                }
                let p = e.path();
                let Ok(m) = std::fs::symlink_metadata(&p) else {
                    continue;
                };
                if m.file_type().is_symlink() {
                    let out = match resolve_physical(&p) {
                        Some(t) if self.locate(&t).is_ok() => None,
                        Some(t) => Some(t.display().to_string()),
                        None => Some("a loop of links".into()),
                    };
                    if let Some(t) = out {
                        return Some(format!(
                            "`{}`, a symbolic link to `{t}`, outside the allowed roots",
                            p.display()
                        ));
                    }
                } else if recursive && m.is_dir() && depth < 48 {
                    stack.push((p, depth + 1));
                }
            }
        }
        None
    }

    /// `path` as [`Fs::locate`] takes it before normalising: absolute, or joined to the first
    /// root. `None` with no roots.
    pub(crate) fn joined(&self, path: impl AsRef<Path>) -> Option<PathBuf> {
        let path = path.as_ref();
        if path.is_absolute() {
            return Some(path.to_path_buf());
        }
        self.roots.first().map(|r| r.given.join(path))
    }

    /// Reads a whole file.
    pub fn read(&self, path: impl AsRef<Path>) -> Result<Vec<u8>, ToolError> {
        read_at(&self.locate(&path)?)
    }

    /// Reads a whole file as UTF-8 text.
    pub fn read_to_string(&self, path: impl AsRef<Path>) -> Result<String, ToolError> {
        let at = self.locate(&path)?;
        String::from_utf8(read_at(&at)?).map_err(|_| ToolError::Handler {
            message: format!("{} is not UTF-8 text", at.shown.display()),
        })
    }

    /// Replaces (or creates) a file with `contents` atomically: a sibling temporary file is
    /// written and renamed over the target, so a reader sees the old or the new file, never a
    /// part, and a killed process leaves the old file in place. Not fsynced: like the journal
    /// (`synchronous = NORMAL`), what is written survives the process, not a power cut (an
    /// fsync per call would cost more than the rest of the call). The temporary file is created
    /// `0600` and given the target's permissions only once written (a new file gets `0644`); a
    /// read-only target is refused, as a shell's `>` would refuse it.
    pub fn write(&self, path: impl AsRef<Path>, contents: &[u8]) -> Result<(), ToolError> {
        let at = self.locate(&path)?;
        refuse_file_named_as_dir(&at)?;
        let (parent, name) = parent_of(&at)?;
        let dir = open_parent(&at, &parent)?;
        let perms = match dir.symlink_metadata(&name) {
            Ok(m) if m.is_dir() => {
                return Err(ToolError::Handler {
                    message: format!("{} is a directory", at.shown.display()),
                })
            }
            Ok(m) if m.file_type().is_symlink() => {
                return Err(ToolError::NotAllowed {
                    message: format!(
                        "{} is a symbolic link; write to the file it names instead",
                        at.shown.display()
                    ),
                })
            }
            Ok(m) if m.permissions().readonly() => {
                return Err(ToolError::NotAllowed {
                    message: format!("{} is read-only", at.shown.display()),
                })
            }
            Ok(m) if !m.is_file() => return Err(not_regular(&at, &m)),
            Ok(m) => {
                // Not writable by this user (another's file, say): refused as `>` would be,
                // though the directory would let a rename replace it.
                let mut probe = OpenOptions::new();
                probe.write(true);
                nonblocking(&mut probe);
                if let Err(e) = dir.open_with(&name, &probe) {
                    if e.kind() == std::io::ErrorKind::PermissionDenied {
                        return Err(ToolError::NotAllowed {
                            message: format!("{} is not writable", at.shown.display()),
                        });
                    }
                }
                Some(m)
            }
            Err(_) => None,
        };
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use cap_std::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let (mut file, tmp) = create_temp(&dir, &name, &options).map_err(|e| io_error(&at, e))?;
        // The replaced file's owner too, where the process may give it (as root: a server in a
        // container would otherwise hand every file it writes to root).
        #[cfg(unix)]
        if let Some(m) = &perms {
            crate::snapshot::Owner::of(m).apply(&file);
        }
        let written = file.write_all(contents).and_then(|_| {
            match perms.map(|m| m.permissions()).or_else(new_file_permissions) {
                Some(p) => file.set_permissions(p),
                None => Ok(()),
            }
        });
        drop(file);
        if let Err(e) = written.and_then(|_| dir.rename(&tmp, &dir, &name)) {
            let _ = dir.remove_file(&tmp);
            return Err(io_error(&at, e));
        }
        Ok(())
    }

    /// Appends to a file (created when missing). A file with more than one hard link is refused:
    /// another link may be outside the roots.
    pub fn append(&self, path: impl AsRef<Path>, contents: &[u8]) -> Result<(), ToolError> {
        let at = self.locate(&path)?;
        let mut file = open_beneath(&at, OpenOptions::new().append(true).create(true))?;
        refuse_multiply_linked(&at, &file)?;
        file.write_all(contents).map_err(|e| io_error(&at, e))
    }

    /// Opens a file beneath its root with `options`. A regular file with more than one hard link
    /// is refused (a handle could write through to a link outside the roots) — judged before
    /// `options` are applied, so a truncating open never empties such a file; read it with
    /// [`Fs::read`].
    pub fn open(&self, path: impl AsRef<Path>, options: &OpenOptions) -> Result<File, ToolError> {
        let at = self.locate(&path)?;
        if let Ok(probe) = open_beneath(&at, OpenOptions::new().read(true)) {
            refuse_multiply_linked(&at, &probe)?;
        }
        let file = open_beneath(&at, options)?;
        refuse_multiply_linked(&at, &file)?;
        Ok(file)
    }

    /// Metadata of a path (links inside the root followed, beneath it).
    pub fn metadata(&self, path: impl AsRef<Path>) -> Result<Metadata, ToolError> {
        let at = self.locate(&path)?;
        metadata_at(&at).map_err(|e| io_error(&at, e))
    }

    /// Whether the path exists (a dangling link does not).
    pub fn exists(&self, path: impl AsRef<Path>) -> Result<bool, ToolError> {
        let at = self.locate(&path)?;
        match metadata_at(&at) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error(&at, e)),
        }
    }

    /// Creates a directory and its missing parents.
    pub fn create_dir_all(&self, path: impl AsRef<Path>) -> Result<(), ToolError> {
        let at = self.locate(&path)?;
        if at.rel.as_os_str().is_empty() {
            return Ok(());
        }
        at.dir.create_dir_all(&at.rel).map_err(|e| io_error(&at, e))
    }

    /// Refuses a path written with a final `/` whose name holds no directory (a file, a link:
    /// what removing or moving it would work on), as [`Fs::remove_file`] and the others do; for a
    /// tool that looks at the path before it decides what to do.
    pub fn refuse_named_as_dir(&self, path: impl AsRef<Path>) -> Result<(), ToolError> {
        refuse_file_named_as_dir(&self.locate(&path)?)
    }

    /// Removes a file (a link is removed, never what it names).
    pub fn remove_file(&self, path: impl AsRef<Path>) -> Result<(), ToolError> {
        let at = self.locate(&path)?;
        refuse_file_named_as_dir(&at)?;
        let (parent, name) = parent_of(&at)?;
        open_parent(&at, &parent)?
            .remove_file(&name)
            .map_err(|e| io_error(&at, e))
    }

    /// Takes an exclusive advisory lock on `path` (a lock file, created when missing), held until
    /// the returned file is dropped. Waits for another holder.
    pub fn lock(&self, path: impl AsRef<Path>) -> Result<std::fs::File, ToolError> {
        let at = self.locate(&path)?;
        let file =
            open_beneath(&at, OpenOptions::new().read(true).write(true).create(true))?.into_std();
        file.lock().map_err(|e| io_error(&at, e))?;
        Ok(file)
    }
}

#[cfg(unix)]
fn nlink(m: &Metadata) -> u64 {
    use cap_std::fs::MetadataExt;
    m.nlink()
}

#[cfg(not(unix))]
fn nlink(_m: &Metadata) -> u64 {
    1
}

fn multiply_linked(at: &Located<'_>) -> ToolError {
    ToolError::NotAllowed {
        message: format!(
            "{} has more than one hard link, and another may be outside the allowed roots; \
             it is not written in place",
            at.shown.display()
        ),
    }
}

fn refuse_multiply_linked(at: &Located<'_>, file: &File) -> Result<(), ToolError> {
    let m = file.metadata().map_err(|e| io_error(at, e))?;
    if m.is_file() && nlink(&m) > 1 {
        return Err(multiply_linked(at));
    }
    Ok(())
}

fn read_at(at: &Located<'_>) -> Result<Vec<u8>, ToolError> {
    let mut file = open_beneath(at, OpenOptions::new().read(true))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf).map_err(|e| io_error(at, e))?;
    Ok(buf)
}

fn metadata_at(at: &Located<'_>) -> std::io::Result<Metadata> {
    dir_named(
        at,
        if at.rel.as_os_str().is_empty() {
            at.dir.dir_metadata()
        } else {
            at.dir.metadata(&at.rel)
        },
    )
}

/// Whether the text of a path ends with `/` or `/.`: it names a directory.
fn names_dir(path: &Path) -> bool {
    let text = path.as_os_str().as_encoded_bytes();
    text.ends_with(b"/") || text.ends_with(b"/.")
}

/// The error of a path that names a directory ([`Located::names_dir`]) where there is none:
/// what is there instead.
#[derive(Debug, Clone, Copy)]
enum NamesDir {
    File,
    /// A link, where the operation works on the link itself (remove, move).
    Link,
    Nothing,
}

impl std::fmt::Display for NamesDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a directory")
    }
}

impl std::error::Error for NamesDir {}

/// `m`, unless the path names a directory ([`Located::names_dir`]) and `m` is not one:
/// `ENOTDIR`, as the kernel answers `stat("file/")`.
fn dir_named(at: &Located<'_>, m: std::io::Result<Metadata>) -> std::io::Result<Metadata> {
    match m {
        Ok(m) if at.names_dir && !m.is_dir() => Err(names_dir_error(NamesDir::File)),
        other => other,
    }
}

/// A destination written with a final `/` for what is not a directory.
fn destination_named_as_dir(src: &Located<'_>, dst: &Located<'_>) -> ToolError {
    ToolError::Handler {
        message: format!(
            "{}/ names a directory (the path ends with `/`), but {} is not one: name the destination without the `/`",
            dst.shown.display(),
            src.shown.display()
        ),
    }
}

fn names_dir_error(found: NamesDir) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotADirectory, found)
}

/// Refuses a path that names a directory ([`Located::names_dir`]) when what its name holds (a
/// link not followed: these operations work on the name in its folder — write, remove, move,
/// copy to) is not one.
fn refuse_file_named_as_dir(at: &Located<'_>) -> Result<(), ToolError> {
    if !at.names_dir || at.rel.as_os_str().is_empty() {
        return Ok(());
    }
    match at.dir.symlink_metadata(&at.rel) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(m) if m.file_type().is_symlink() => Err(io_error(at, names_dir_error(NamesDir::Link))),
        Ok(_) => Err(io_error(at, names_dir_error(NamesDir::File))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(io_error(at, names_dir_error(NamesDir::Nothing)))
        }
        Err(e) => Err(io_error(at, e)),
    }
}

fn open_beneath(at: &Located<'_>, options: &OpenOptions) -> Result<File, ToolError> {
    if at.rel.as_os_str().is_empty() {
        return Err(ToolError::Handler {
            message: format!("{} is a directory", at.shown.display()),
        });
    }
    if at.names_dir {
        // A file is not opened under a name that says directory; a directory is opened as
        // asked (and then refused as one by the caller).
        match metadata_at(at) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(io_error(at, names_dir_error(NamesDir::Nothing)))
            }
            Err(e) => return Err(io_error(at, e)),
            Ok(_) => {}
        }
    }
    at.dir
        .open_with(&at.rel, options)
        .map_err(|e| io_error(at, e))
}

fn parent_of(at: &Located<'_>) -> Result<(PathBuf, PathBuf), ToolError> {
    match (at.rel.parent(), at.rel.file_name()) {
        (Some(parent), Some(name)) => Ok((parent.to_path_buf(), PathBuf::from(name))),
        _ => Err(ToolError::Handler {
            message: format!("{} is a root directory", at.shown.display()),
        }),
    }
}

/// Where the kernel finds `rel` beneath `root`, links on the way followed: the nearest existing
/// directory on its way joined with the rest of the path; and, when the path itself is a link,
/// the place it leads to (for a dangling one, where it would). Linux asks `/proc/self/fd` of a
/// handle opened beneath the root; where that cannot be done (no `openat2`, no `/proc`), and
/// outside Linux, the path is resolved by name (`realpath`).
fn real_locations(
    root: &Root,
    dir: &Dir,
    rel: &Path,
) -> Result<(PathBuf, Option<PathBuf>), String> {
    #[cfg(target_os = "linux")]
    {
        by_handle(dir, rel).or_else(|_| by_name(root, rel))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        by_name(root, rel)
    }
}

/// Symbolic links [`resolve_physical`] follows before it calls the path a loop (the kernel's
/// limit).
pub(crate) const MAX_LINKS: usize = 40;

/// The directory a wildcard pattern's first wildcard (`*`, `?`, `[`, as Python's `glob` and a
/// shell read them) lists, and whether what lies below it is matched too (a wildcard before the
/// last component, or `**`). `None` when `path` holds no wildcard. A relative pattern with its
/// wildcard in the first component lists `.`; an absolute one, `/`.
pub(crate) fn wildcard_base(path: &str) -> Option<(String, bool)> {
    let parts: Vec<&str> = path.split('/').collect();
    let i = parts.iter().position(|p| p.contains(['*', '?', '[']))?;
    let recursive = i + 1 < parts.len() || parts.get(i).is_some_and(|p| p.contains("**"));
    let base = parts.get(..i).unwrap_or(&[]).join("/");
    let base = if base.is_empty() && !path.starts_with('/') {
        ".".to_string()
    } else if base.is_empty() {
        "/".to_string()
    } else {
        base
    };
    Some((base, recursive))
}

/// Where the absolute `path` leads as the kernel resolves it: each symbolic link followed where
/// it is met (its text taken relative to the directory it is in), and `..` applied to where the
/// links led, not to the text ([`aifirst_capability::path::normalize`] applies it to the text,
/// which is what the runtime's own file access means, beneath its root handles). A part that
/// does not exist is taken as written, with what follows it. `None` past [`MAX_LINKS`] links.
/// It only looks (`lstat`, `readlink`): it is how the runtime learns where a handler that opens
/// paths itself — a Python function, a program — will act.
pub(crate) fn resolve_physical(path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let mut out = PathBuf::from("/");
    let mut rest: std::collections::VecDeque<std::ffi::OsString> =
        std::collections::VecDeque::new();
    let push_parts = |rest: &mut std::collections::VecDeque<std::ffi::OsString>, p: &Path| {
        for c in p.components().rev() {
            match c {
                Component::Normal(n) => rest.push_front(n.to_os_string()),
                Component::ParentDir => rest.push_front("..".into()),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
    };
    push_parts(&mut rest, path);
    let mut hops = 0usize;
    // How deep the first part that is not there lies: below it nothing is looked at, until a
    // `..` climbs back above it (a function that normalises the text first opens what is there).
    let mut missing: Option<usize> = None;
    while let Some(part) = rest.pop_front() {
        if part == ".." {
            out.pop();
            if missing.is_some_and(|d| out.components().count() < d) {
                missing = None;
            }
            continue;
        }
        out.push(&part);
        if missing.is_some() {
            continue;
        }
        match std::fs::symlink_metadata(&out) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_LINKS {
                    return None;
                }
                match std::fs::read_link(&out) {
                    Ok(text) => {
                        out.pop();
                        if text.is_absolute() {
                            out = PathBuf::from("/");
                        }
                        push_parts(&mut rest, &text);
                    }
                    // Unreadable: taken as written, like a part that is not there.
                    Err(_) => missing = Some(out.components().count()),
                }
            }
            Ok(_) => {}
            Err(_) => missing = Some(out.components().count()),
        }
    }
    Some(out)
}

/// Where the directory `dir` is, every link resolved (the kernel's name for the handle), when
/// the system says (Linux's `/proc/self/fd`).
pub(crate) fn real_path_of(dir: &Dir) -> Option<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        fd_path(dir).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        None
    }
}

/// The kernel's name for an open file or directory (`/proc/self/fd/N`): its path with every
/// link resolved.
#[cfg(target_os = "linux")]
fn fd_path(fd: &impl std::os::fd::AsFd) -> std::io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
}

/// Where a dangling link named `name` in `real_parent` would lead: its text taken relative to
/// that directory (an absolute one is refused anyway when opened beneath the root).
fn dangling_target(real_parent: &Path, text: &Path) -> Option<PathBuf> {
    if text.is_absolute() {
        return None;
    }
    aifirst_capability::path::normalize(&real_parent.join(text))
}

/// `rel` (a path below the root `at` was found in) with the links among its directories
/// followed as the kernel follows them beneath the root, and its last part as it is: the place
/// an operation on it reaches, as a path below the root. A snapshot keeps that place, so a link
/// on the way repointed after the call cannot turn its undo onto another file. A link on the way
/// that dangles (what it names is not made yet) is followed by its text, as the kernel will once
/// it is there. `None` when it cannot be told (outside Linux, no `/proc`, a link that dangles out
/// of the root) or nothing is to be resolved.
pub(crate) fn physical(at: &Located<'_>, rel: &Path) -> Option<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        let depth = at.rel.components().count();
        let root_canonical = at.canonical.ancestors().nth(depth)?;
        if rel.parent().is_none_or(|p| p.as_os_str().is_empty()) {
            return None;
        }
        let (here, _) = by_handle(&at.dir, rel).ok()?;
        let mut below = here.strip_prefix(root_canonical).ok()?.to_path_buf();
        for _ in 0..MAX_LINKS {
            let parts: Vec<std::path::Component<'_>> = below.components().collect();
            let mut prefix = PathBuf::new();
            let mut next = None;
            for (i, c) in parts.iter().enumerate().take(parts.len().saturating_sub(1)) {
                prefix.push(c);
                match at.dir.symlink_metadata(&prefix) {
                    Ok(m) if m.file_type().is_symlink() => {
                        let text = at.dir.read_link_contents(&prefix).ok()?;
                        if text.is_absolute() {
                            return None;
                        }
                        let up = prefix.parent().unwrap_or(Path::new(""));
                        let target = aifirst_capability::path::normalize(&up.join(text))?;
                        next = Some(target.join(parts[i + 1..].iter().collect::<PathBuf>()));
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            match next {
                Some(n) => below = n,
                None => return Some(below),
            }
        }
        None
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (at, rel);
        None
    }
}

#[cfg(target_os = "linux")]
fn by_handle(root: &Dir, rel: &Path) -> Result<(PathBuf, Option<PathBuf>), String> {
    use rustix::fs::{openat2, readlinkat, statat, AtFlags, FileType, Mode, OFlags, ResolveFlags};
    let real = |fd: &rustix::fd::OwnedFd| fd_path(fd).map_err(|e| format!("/proc/self/fd: {e}"));
    let open = |p: &Path| {
        let p = if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        };
        openat2(
            root,
            p,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH,
        )
    };
    // The nearest directory on the way that exists, and what is left of the path below it.
    let mut dir = rel.parent().unwrap_or(Path::new(""));
    let fd = loop {
        match open(dir) {
            Ok(fd) => break fd,
            // Missing, or not reachable beneath the root (the operation then fails itself).
            Err(_) if !dir.as_os_str().is_empty() => {
                dir = dir.parent().unwrap_or(Path::new(""));
            }
            Err(e) => return Err(format!("the root: {e}")),
        }
    };
    let rest = rel.strip_prefix(dir).unwrap_or(rel);
    let real_dir = real(&fd)?;
    let here = real_dir.join(rest);
    // The path itself, when it is a link (one that leads out of the root is refused when the
    // operation opens it).
    if let (Some(name), Some(parent)) = (rel.file_name(), rel.parent()) {
        let is_link = parent == dir
            && statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink);
        if is_link {
            let leads = match open(rel) {
                Ok(target) => Some(real(&target)?),
                Err(_) => readlinkat(&fd, name, Vec::new()).ok().and_then(|text| {
                    use std::os::unix::ffi::OsStrExt;
                    dangling_target(
                        &real_dir,
                        Path::new(std::ffi::OsStr::from_bytes(text.as_bytes())),
                    )
                }),
            };
            return Ok((here, leads));
        }
    }
    Ok((here, None))
}

fn by_name(root: &Root, rel: &Path) -> Result<(PathBuf, Option<PathBuf>), String> {
    let full = root.canonical.join(rel);
    let mut dir = full.as_path();
    let here = loop {
        match (dir.canonicalize(), dir.parent()) {
            (Ok(c), _) => break c.join(full.strip_prefix(dir).unwrap_or(rel)),
            (Err(_), Some(up)) if up.starts_with(&root.canonical) => dir = up,
            (Err(e), _) => return Err(format!("the root: {e}")),
        }
    };
    let leads = match std::fs::symlink_metadata(&full) {
        Ok(m) if m.file_type().is_symlink() => full.canonicalize().ok().or_else(|| {
            let text = std::fs::read_link(&full).ok()?;
            let parent = full.parent()?.canonicalize().ok()?;
            dangling_target(&parent, &text)
        }),
        _ => None,
    };
    Ok((here, leads))
}

fn open_parent(at: &Located<'_>, parent: &Path) -> Result<Dir, ToolError> {
    if parent.as_os_str().is_empty() {
        return at.dir.try_clone().map_err(|e| io_error(at, e));
    }
    at.dir.open_dir(parent).map_err(|e| {
        let shown_parent = at.shown.parent().unwrap_or(&at.shown).display();
        match e.kind() {
            std::io::ErrorKind::NotFound => ToolError::Handler {
                message: format!(
                    "{}: the directory {shown_parent} does not exist (create it first with \
                     create_directory)",
                    at.shown.display()
                ),
            },
            std::io::ErrorKind::NotADirectory => ToolError::Handler {
                message: format!("{}: {shown_parent} is not a directory", at.shown.display()),
            },
            _ => io_error(at, e),
        }
    })
}

/// What a file [`Fs::write`] creates gets: `0644` (the permissions a new file usually has).
fn new_file_permissions() -> Option<cap_std::fs::Permissions> {
    #[cfg(unix)]
    {
        use cap_std::fs::PermissionsExt;
        Some(cap_std::fs::Permissions::from_mode(0o644))
    }
    #[cfg(not(unix))]
    None
}

/// `rename` that never replaces an existing destination: `renameat2(RENAME_NOREPLACE)` on Linux;
/// where the file system lacks it (NFS, other systems), a look at the destination then a plain
/// rename (`AlreadyExists` when it is there).
pub(crate) fn rename_noreplace(
    from_dir: &Dir,
    from: &Path,
    to_dir: &Dir,
    to: &Path,
) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{renameat_with, RenameFlags};
        match renameat_with(from_dir, from, to_dir, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {}
            Err(e) => return Err(e.into()),
        }
    }
    match to_dir.symlink_metadata(to) {
        Ok(_) => return Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    from_dir.rename(from, to_dir, to)
}

/// A sibling temporary name of fixed length (a long file name plus a suffix could pass the
/// 255-byte limit on names).
pub(crate) fn temp_name(_name: &Path) -> PathBuf {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // Not guessable (a name planted ahead, as a link or a file, made the create fail): the
    // process's random hash keys, fed the counter.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    let r = h.finish() % 1_000_000_000_000;
    PathBuf::from(format!(".aifirst-{}-{n}{r:012}.tmp", std::process::id()))
}

/// Creates a new temporary file in `dir` for a write replacing `name`: a fresh name
/// ([`temp_name`]) again when one is taken.
pub(crate) fn create_temp(
    dir: &Dir,
    name: &Path,
    options: &OpenOptions,
) -> std::io::Result<(File, PathBuf)> {
    let mut tries = 0;
    loop {
        let tmp = temp_name(name);
        match dir.open_with(&tmp, options) {
            Ok(f) => return Ok((f, tmp)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 8 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Whether `name` is a temporary file [`temp_name`] gave a process that has ended (killed
/// while it wrote a file or restored one): debris, which snapshots leave out and restores
/// remove, so that an undo killed part-way runs again. Another live process's is not.
pub(crate) fn is_leftover_temp(name: &str) -> bool {
    let Some(middle) = name
        .strip_prefix(".aifirst-")
        .and_then(|r| r.strip_suffix(".tmp"))
    else {
        return false;
    };
    let Some((pid, n)) = middle.split_once('-') else {
        return false;
    };
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    // Past the highest id the system gives: not a process's name, a person's.
    #[cfg(target_os = "linux")]
    if std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|m| m.trim().parse::<u32>().ok())
        .is_some_and(|max| pid >= max)
    {
        return false;
    }
    pid != std::process::id() && !process_running(pid)
}

/// Whether a process with this id exists (`kill(pid, 0)` is not ESRCH). An id the system has
/// given to another process since counts as running. Outside Unix: always `true`.
pub fn process_running(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Some(pid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return true;
        };
        !matches!(
            rustix::process::test_kill_process(pid),
            Err(e) if e == rustix::io::Errno::SRCH
        )
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Whether cap-std refused `e`'s path because resolving it beneath its root left the root.
pub(crate) fn is_escape(e: &std::io::Error) -> bool {
    let text = e.to_string();
    text.contains("outside of the filesystem") || text.contains("escapes")
}

/// What to say of `shown`, a path refused because resolving it beneath its root left the root
/// through a symbolic link ([`is_escape`]): where it really leads, and how to name it instead.
/// `root`, the root's real path when known, tells a link that only leads back inside it.
pub(crate) fn escape_message(shown: &Path, root: Option<&Path>) -> String {
    let leads = resolve_physical(shown);
    match (leads, root) {
        (Some(t), Some(r)) if t.starts_with(r) => format!(
            "path `{}` goes through a symbolic link that leads back inside its root (to `{}`), which \
             the sandbox does not follow: a link is followed only when it is relative and stays \
             beneath its root all the way (an absolute link does not); name `{}` itself, or make \
             the link relative",
            shown.display(),
            t.display(),
            t.display()
        ),
        (leads, _) => format!(
            "path `{}` leads outside the allowed roots through a symbolic link{}: a link is \
             followed only when it is relative and stays beneath its own root (one into another \
             root is refused too): name the place it leads to instead",
            shown.display(),
            leads
                .map(|t| format!(" (to `{}`)", t.display()))
                .unwrap_or_default()
        ),
    }
}

/// An I/O error naming the path as the caller gave it. A path that cap-std refused because it
/// leads outside the root reads as such.
pub(crate) fn io_error(at: &Located<'_>, e: std::io::Error) -> ToolError {
    if is_escape(&e) {
        let root = at.canonical.ancestors().nth(at.rel.components().count());
        return ToolError::NotAllowed {
            message: escape_message(&at.shown, root),
        };
    }
    if let Some(found) = e.get_ref().and_then(|r| r.downcast_ref::<NamesDir>()) {
        let shown = at.shown.display();
        let what = match found {
            NamesDir::File => format!("{shown} is a file, not a directory: name it without the `/`"),
            NamesDir::Link => format!(
                "{shown} is a symbolic link, and this works on the link itself, never on what it names: name it without the `/`"
            ),
            NamesDir::Nothing => format!(
                "there is no directory {shown}: name a file without the `/` (create_directory makes a directory)"
            ),
        };
        return ToolError::Handler {
            message: format!("{shown}/ names a directory (the path ends with `/`), but {what}"),
        };
    }
    if e.kind() == std::io::ErrorKind::NotADirectory {
        return ToolError::Handler {
            message: format!(
                "{}: not a directory (it, or a folder on the way to it, is a file)",
                at.shown.display()
            ),
        };
    }
    let text = e.to_string();
    if e.raw_os_error() == Some(24) {
        // EMFILE: a tree walked with a handle open per level, deeper than the process may hold.
        return ToolError::Handler {
            message: format!(
                "{}: the tree is nested deeper than this process may hold directories open at \
                 once (too many open files); work on a part of it further down",
                at.shown.display()
            ),
        };
    }
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => " (not found)",
        std::io::ErrorKind::PermissionDenied => " (permission denied)",
        std::io::ErrorKind::AlreadyExists => " (already exists)",
        _ => "",
    };
    ToolError::Handler {
        message: format!("{}: {text}{kind}", at.shown.display()),
    }
}

// ---- Listing, inspecting, moving, copying and removing: what the standard file tools
// (`aifirst-stdlib`) need, every one beneath a root's handle like the methods above.

/// What a path is. A symbolic link is reported as a link, never as what it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    /// A FIFO, socket or device: never opened by these methods.
    Other,
}

impl EntryKind {
    fn of(t: cap_std::fs::FileType) -> EntryKind {
        if t.is_symlink() {
            EntryKind::Symlink
        } else if t.is_dir() {
            EntryKind::Dir
        } else if t.is_file() {
            EntryKind::File
        } else {
            EntryKind::Other
        }
    }
}

/// One entry of a directory, as [`Fs::read_dir`] lists it (described without following it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntryInfo {
    /// The entry's name (not a path).
    pub name: std::ffi::OsString,
    pub kind: EntryKind,
    /// Size in bytes; for a link, the link's own size.
    pub size: u64,
    /// Permission bits (`0o7777`); 0 where the platform has none or the entry vanished.
    pub mode: u32,
}

/// What [`Fs::info`] tells about a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathInfo {
    pub kind: EntryKind,
    pub size: u64,
    /// Permission bits (`0o7777`); on platforms without them, `0o444` or `0o644`.
    pub mode: u32,
    /// Each time is `None` where the platform or file system does not keep it.
    pub modified: Option<std::time::SystemTime>,
    pub accessed: Option<std::time::SystemTime>,
    pub created: Option<std::time::SystemTime>,
}

impl PathInfo {
    fn of(m: &Metadata) -> PathInfo {
        PathInfo {
            kind: EntryKind::of(m.file_type()),
            size: m.len(),
            mode: mode_of(m),
            modified: m.modified().ok().map(|t| t.into_std()),
            accessed: m.accessed().ok().map(|t| t.into_std()),
            created: m.created().ok().map(|t| t.into_std()),
        }
    }
}

/// What [`Fs::copy`] copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    pub files: u64,
    /// Directories created (the top one included).
    pub dirs: u64,
    /// Symbolic links recreated (relative targets only).
    pub links: u64,
    pub bytes: u64,
    /// Entries left out, each with the reason (special files, links with absolute targets,
    /// entries that could not be read). At most [`CopyReport::MAX_NOTES`] are listed.
    pub skipped: Vec<String>,
    /// How many entries were left out in all (may exceed `skipped.len()`).
    pub skipped_count: u64,
}

impl CopyReport {
    /// How many skipped entries are described in [`CopyReport::skipped`].
    pub const MAX_NOTES: usize = 50;

    fn skip(&mut self, note: String) {
        self.skipped_count += 1;
        if self.skipped.len() < CopyReport::MAX_NOTES {
            self.skipped.push(note);
        }
    }
}

/// A copy of a tree stops past this many entries (a runaway copy is an error, not a wait).
const MAX_COPY_ENTRIES: u64 = 1_000_000;

impl Fs {
    /// Metadata of the path itself: a final symbolic link is described, not followed (links
    /// before it are followed, beneath the root).
    pub fn symlink_metadata(&self, path: impl AsRef<Path>) -> Result<Metadata, ToolError> {
        let at = self.locate(&path)?;
        symlink_metadata_at(&at).map_err(|e| io_error(&at, e))
    }

    /// Kind, size, permissions and times of a path. With `follow_links`, a final symbolic link
    /// is followed (beneath the root) and what it names is described; otherwise the link is.
    pub fn info(&self, path: impl AsRef<Path>, follow_links: bool) -> Result<PathInfo, ToolError> {
        let at = self.locate(&path)?;
        let m = if follow_links {
            metadata_at(&at)
        } else {
            symlink_metadata_at(&at)
        }
        .map_err(|e| io_error(&at, e))?;
        Ok(PathInfo::of(&m))
    }

    /// The entries of a directory, sorted by name. Links on the way to the directory are
    /// followed beneath the root; the entries are described without following them.
    pub fn read_dir(&self, path: impl AsRef<Path>) -> Result<Vec<DirEntryInfo>, ToolError> {
        let at = self.locate(&path)?;
        let entries = if at.rel.as_os_str().is_empty() {
            at.dir.entries()
        } else {
            at.dir.read_dir(&at.rel)
        }
        .map_err(|e| io_error(&at, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&at, e))?;
            let name = entry.file_name();
            if self.protected.contains(&at.canonical.join(&name))
                || self.protected.contains(&at.real.join(&name))
            {
                continue;
            }
            let (kind, size, mode) = match entry.metadata() {
                Ok(m) => (EntryKind::of(m.file_type()), m.len(), mode_of(&m)),
                // Gone since it was listed, or not readable: still listed, by what the
                // directory says it is.
                Err(_) => (
                    entry
                        .file_type()
                        .map(EntryKind::of)
                        .unwrap_or(EntryKind::Other),
                    0,
                    0,
                ),
            };
            out.push(DirEntryInfo {
                name: entry.file_name(),
                kind,
                size,
                mode,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Opens a regular file for reading (links followed beneath the root). A directory, FIFO,
    /// socket or device is refused: the path is looked at first, the file is opened without
    /// blocking (a FIFO swapped in meanwhile cannot hang the call), and the opened handle is
    /// checked again. Unlike [`Fs::open`], a file with several hard links may be read.
    pub fn open_regular(&self, path: impl AsRef<Path>) -> Result<File, ToolError> {
        let at = self.locate(&path)?;
        open_regular_at(&at)
    }

    /// Appends to a regular file (created when missing), like [`Fs::append`], but a FIFO,
    /// socket or device is refused instead of opened (opening a FIFO to write would wait for a
    /// reader), and the open does not block.
    pub fn append_regular(&self, path: impl AsRef<Path>, contents: &[u8]) -> Result<(), ToolError> {
        let at = self.locate(&path)?;
        refuse_file_named_as_dir(&at)?;
        // A final link is refused, as by `write`: what it names is not what a snapshot of
        // `path` keeps.
        if let Ok(m) = symlink_metadata_at(&at) {
            if m.file_type().is_symlink() {
                return Err(ToolError::NotAllowed {
                    message: format!(
                        "{} is a symbolic link; append to the file it names instead",
                        at.shown.display()
                    ),
                });
            }
        }
        match metadata_at(&at) {
            Ok(m) if !m.is_file() => return Err(not_regular(&at, &m)),
            // Refused as `write` refuses it: a process that may write anything (root) would
            // otherwise append to a file its owner made read-only.
            Ok(m) if m.permissions().readonly() => {
                return Err(ToolError::NotAllowed {
                    message: format!("{} is read-only", at.shown.display()),
                })
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&at, e)),
        }
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        nonblocking(&mut options);
        let mut file = open_beneath(&at, &options)?;
        let m = file.metadata().map_err(|e| io_error(&at, e))?;
        if !m.is_file() {
            return Err(not_regular(&at, &m));
        }
        refuse_multiply_linked(&at, &file)?;
        file.write_all(contents).map_err(|e| io_error(&at, e))
    }

    /// Removes an empty directory (a root is refused).
    pub fn remove_dir(&self, path: impl AsRef<Path>) -> Result<(), ToolError> {
        let at = self.locate(&path)?;
        refuse_file_named_as_dir(&at)?;
        let (parent, name) = parent_of(&at)?;
        open_parent(&at, &parent)?
            .remove_dir(&name)
            .map_err(|e| io_error(&at, e))
    }

    /// Removes a directory and everything in it. Links inside are removed, never followed; a
    /// link given as `path` is removed itself. A root is refused.
    pub fn remove_dir_all(&self, path: impl AsRef<Path>) -> Result<(), ToolError> {
        let at = self.locate(&path)?;
        refuse_file_named_as_dir(&at)?;
        self.refuse_holding_state(&at)?;
        let (parent, name) = parent_of(&at)?;
        open_parent(&at, &parent)?
            .remove_dir_all(&name)
            .map_err(|e| io_error(&at, e))
    }

    /// Moves (renames) a file, link or directory; both paths must be inside the roots. A
    /// destination that exists — even a dangling link — is refused, never replaced: on Linux
    /// the kernel checks it in the rename itself (`RENAME_NOREPLACE`), so nothing created there
    /// meanwhile is lost. Across file systems the rename fails; copy and remove instead.
    pub fn rename(&self, from: impl AsRef<Path>, to: impl AsRef<Path>) -> Result<(), ToolError> {
        let src = self.locate(&from)?;
        let dst = self.locate(&to)?;
        self.refuse_holding_state(&src)?;
        let (sp, sn) = parent_of(&src)?;
        let (dp, dn) = parent_of(&dst)?;
        let sdir = open_parent(&src, &sp)?;
        let ddir = open_parent(&dst, &dp)?;
        let moved = sdir.symlink_metadata(&sn).map_err(|e| io_error(&src, e))?;
        // `file/` names a directory, on either side (`ENOTDIR`, as `mv` is answered); `link/`
        // too, since the link itself would move.
        refuse_file_named_as_dir(&src)?;
        if dst.names_dir && !moved.is_dir() {
            return Err(destination_named_as_dir(&src, &dst));
        }
        match ddir.symlink_metadata(&dn) {
            Ok(_) => return Err(already_exists(&dst)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&dst, e)),
        }
        // A link's relative target is read from where the link is: one that stays inside the
        // root here may climb out of it from the new place, where another program would follow it.
        // So may the links inside a directory moved higher up, or into another root.
        let shallower = !Arc::ptr_eq(&src.dir, &dst.dir)
            || dst.rel.components().count() < src.rel.components().count();
        if moved.is_dir() && shallower {
            let out = links_leaving(&src, &dst.rel)?;
            if let Some(first) = out.first() {
                return Err(ToolError::NotAllowed {
                    message: format!(
                        "{} holds {} symbolic link(s) whose relative target would lead outside the \
                         allowed root from {} ({first}{}): not moved (copy_file leaves such links \
                         out, or move it no higher up)",
                        src.shown.display(),
                        out.len(),
                        dst.shown.display(),
                        if out.len() > 1 { ", …" } else { "" }
                    ),
                });
            }
        }
        if moved.file_type().is_symlink() {
            if let Ok(target) = sdir.read_link_contents(&sn) {
                if !stays_inside(&dst.rel, &target) {
                    return Err(ToolError::NotAllowed {
                        message: format!(
                            "{} is a symbolic link to `{}`, which from {} would lead outside the \
                             allowed root: not moved (move what it names, or recreate the link)",
                            src.shown.display(),
                            target.display(),
                            dst.shown.display()
                        ),
                    });
                }
            }
        }
        rename_noreplace(&sdir, &sn, &ddir, &dn).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => already_exists(&dst),
            // EINVAL: the destination lies inside the source.
            std::io::ErrorKind::InvalidInput => ToolError::Handler {
                message: format!(
                    "{} is inside {}: a directory cannot be moved into itself",
                    dst.shown.display(),
                    src.shown.display()
                ),
            },
            _ => io_error(&src, e),
        })
    }

    /// Copies a regular file, or with `recursive` a directory and everything in it, to `to`,
    /// which must not exist. Files keep their permission bits (not set-id bits); links inside a
    /// copied tree are recreated when their target is relative and left out otherwise; FIFOs,
    /// sockets and devices are left out; nothing is read through a link. A link given as `from`
    /// is followed beneath the root.
    pub fn copy(
        &self,
        from: impl AsRef<Path>,
        to: impl AsRef<Path>,
        recursive: bool,
    ) -> Result<CopyReport, ToolError> {
        let src = self.locate(&from)?;
        let dst = self.locate(&to)?;
        self.refuse_holding_state(&src)?;
        let (dp, dn) = parent_of(&dst)?;
        let ddir = open_parent(&dst, &dp)?;
        match ddir.symlink_metadata(&dn) {
            Ok(_) => return Err(already_exists(&dst)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&dst, e)),
        }
        let meta = metadata_at(&src).map_err(|e| io_error(&src, e))?;
        if dst.names_dir && !meta.is_dir() {
            return Err(destination_named_as_dir(&src, &dst));
        }
        let mut report = CopyReport::default();
        if meta.is_file() {
            let mut input = open_regular_at(&src)?;
            copy_contents(&mut input, &ddir, &dn, &dst, &mut report)?;
        } else if meta.is_dir() {
            if !recursive {
                return Err(ToolError::Handler {
                    message: format!(
                        "{} is a directory; copying it and everything in it must be asked for \
                         (recursive)",
                        src.shown.display()
                    ),
                });
            }
            if Arc::ptr_eq(&src.dir, &dst.dir) && dst.rel.starts_with(&src.rel) {
                return Err(ToolError::Handler {
                    message: format!(
                        "{} is inside {}: a directory cannot be copied into itself",
                        dst.shown.display(),
                        src.shown.display()
                    ),
                });
            }
            copy_tree(&src, &ddir, &dn, &dst, &mut report)?;
        } else {
            return Err(not_regular(&src, &meta));
        }
        Ok(report)
    }
}

#[cfg(unix)]
fn mode_of(m: &Metadata) -> u32 {
    use cap_std::fs::MetadataExt;
    m.mode() & 0o7777
}

#[cfg(not(unix))]
fn mode_of(m: &Metadata) -> u32 {
    if m.permissions().readonly() {
        0o444
    } else {
        0o644
    }
}

/// The file's identity (device, inode), where the platform has one.
#[cfg(unix)]
fn identity(m: &Metadata) -> Option<(u64, u64)> {
    use cap_std::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_m: &Metadata) -> Option<(u64, u64)> {
    None
}

fn symlink_metadata_at(at: &Located<'_>) -> std::io::Result<Metadata> {
    if at.rel.as_os_str().is_empty() {
        return at.dir.dir_metadata();
    }
    let m = at.dir.symlink_metadata(&at.rel);
    match m {
        // `link/` is what the link names, as the kernel reads it.
        Ok(m) if at.names_dir && m.file_type().is_symlink() => metadata_at(at),
        other => dir_named(at, other),
    }
}

fn not_regular(at: &Located<'_>, m: &Metadata) -> ToolError {
    if m.is_dir() {
        ToolError::Handler {
            message: format!("{} is a directory, not a file", at.shown.display()),
        }
    } else {
        ToolError::NotAllowed {
            message: format!(
                "{} is not a regular file (a FIFO, socket or device); it is not opened",
                at.shown.display()
            ),
        }
    }
}

fn already_exists(at: &Located<'_>) -> ToolError {
    ToolError::Handler {
        message: format!(
            "{} already exists; it is not replaced (remove it first, or choose another name)",
            at.shown.display()
        ),
    }
}

fn read_nonblocking() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.read(true);
    nonblocking(&mut options);
    options
}

/// `O_NONBLOCK`: opening a FIFO swapped in after a type check returns at once instead of
/// waiting for a writer (no effect on a regular file).
pub(crate) fn nonblocking(options: &mut OpenOptions) {
    use cap_std::fs::OpenOptionsExt;
    options.custom_flags(libc::O_NONBLOCK);
}

fn open_regular_at(at: &Located<'_>) -> Result<File, ToolError> {
    let m = metadata_at(at).map_err(|e| io_error(at, e))?;
    if !m.is_file() {
        return Err(not_regular(at, &m));
    }
    let file = open_beneath(at, &read_nonblocking())?;
    let m = file.metadata().map_err(|e| io_error(at, e))?;
    if !m.is_file() {
        return Err(not_regular(at, &m));
    }
    Ok(file)
}

/// A path below `at` (for messages and errors about entries inside a copied tree).
fn below<'a>(at: &Located<'a>, rel: &Path) -> Located<'a> {
    Located {
        dir: Arc::clone(&at.dir),
        place: std::marker::PhantomData,
        rel: at.rel.join(rel),
        shown: at.shown.join(rel),
        canonical: at.canonical.join(rel),
        real: at.real.join(rel),
        names_dir: false,
    }
}

/// The permissions a copy gets: the source's permission bits, without set-id bits.
fn copied_permissions(m: &Metadata) -> cap_std::fs::Permissions {
    #[cfg(unix)]
    {
        use cap_std::fs::PermissionsExt;
        cap_std::fs::Permissions::from_mode(mode_of(m) & 0o777)
    }
    #[cfg(not(unix))]
    {
        m.permissions()
    }
}

/// Copies `input` to a new file `name` in `into` (which must not exist); removes the partial
/// copy on failure.
fn copy_contents(
    input: &mut File,
    into: &Dir,
    name: &Path,
    shown: &Located<'_>,
    report: &mut CopyReport,
) -> Result<(), ToolError> {
    let perms = input.metadata().ok().map(|m| copied_permissions(&m));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use cap_std::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut out = into
        .open_with(name, &options)
        .map_err(|e| io_error(shown, e))?;
    let copied = std::io::copy(input, &mut out).and_then(|n| {
        if let Some(p) = perms {
            out.set_permissions(p)?;
        }
        Ok(n)
    });
    drop(out);
    match copied {
        Ok(n) => {
            report.files += 1;
            report.bytes += n;
            Ok(())
        }
        Err(e) => {
            let _ = into.remove_file(name);
            Err(io_error(shown, e))
        }
    }
}

/// `true` when the relative link `target`, read from the link at `link` (a path below its
/// root), stays inside that root by its text: no more leading `..` than the link's folder is
/// deep, and none after a name (where a link in between could lead anywhere). An absolute
/// target never does.
pub(crate) fn stays_inside(link: &Path, target: &Path) -> bool {
    use std::path::Component;
    let mut depth = link.components().count().saturating_sub(1);
    let mut named = false;
    for c in target.components() {
        match c {
            Component::ParentDir if named || depth == 0 => return false,
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => named = true,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// The links inside the directory `src` whose target would not stay inside the root were the
/// directory at `to` (a path below its root), each as `link -> target`. No link is followed;
/// more than [`MAX_COPY_ENTRIES`] entries is an error (too many to check).
fn links_leaving(src: &Located<'_>, to: &Path) -> Result<Vec<String>, ToolError> {
    let top = if src.rel.as_os_str().is_empty() {
        src.dir.try_clone()
    } else {
        src.dir.open_dir(&src.rel)
    }
    .map_err(|e| io_error(src, e))?;
    let mut out = Vec::new();
    let mut pending: Vec<PathBuf> = vec![PathBuf::new()];
    let mut seen: u64 = 0;
    while let Some(rel) = pending.pop() {
        let dir = if rel.as_os_str().is_empty() {
            top.try_clone()
        } else {
            top.open_dir(&rel)
        }
        .map_err(|e| io_error(&below(src, &rel), e))?;
        for entry in dir.entries().map_err(|e| io_error(&below(src, &rel), e))? {
            let entry = entry.map_err(|e| io_error(&below(src, &rel), e))?;
            seen += 1;
            if seen > MAX_COPY_ENTRIES {
                return Err(ToolError::Handler {
                    message: format!(
                        "{} holds more than {MAX_COPY_ENTRIES} entries, too many to check its links \
                         before moving it",
                        src.shown.display()
                    ),
                });
            }
            let name = PathBuf::from(entry.file_name());
            let entry_rel = rel.join(&name);
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(entry_rel),
                Ok(t) if t.is_symlink() => {
                    if let Ok(target) = dir.read_link_contents(&name) {
                        if !stays_inside(&to.join(&entry_rel), &target) {
                            out.push(format!("{} -> {}", entry_rel.display(), target.display()));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// Recreates the link `name` of `from` in `into` when its target is relative and, from its new
/// place (`to`), stays inside the root.
#[cfg(unix)]
fn copy_link(
    from: &Dir,
    into: &Dir,
    name: &Path,
    shown: &Located<'_>,
    to: &Located<'_>,
    report: &mut CopyReport,
) {
    match from.read_link_contents(name) {
        Ok(target) if target.is_relative() && !stays_inside(&to.rel, &target) => {
            report.skip(format!(
                "{}: a symbolic link to `{}`, which from {} would lead outside the allowed root; \
                 not copied",
                shown.shown.display(),
                target.display(),
                to.shown.display()
            ))
        }
        Ok(target) if target.is_relative() => match into.symlink(&target, name) {
            Ok(()) => report.links += 1,
            Err(e) => report.skip(format!("{}: {e}", shown.shown.display())),
        },
        Ok(target) => report.skip(format!(
            "{}: a symbolic link with an absolute target ({}); not copied",
            shown.shown.display(),
            target.display()
        )),
        Err(e) => report.skip(format!("{}: {e}", shown.shown.display())),
    }
}

#[cfg(not(unix))]
fn copy_link(
    _from: &Dir,
    _into: &Dir,
    _name: &Path,
    shown: &Located<'_>,
    _to: &Located<'_>,
    report: &mut CopyReport,
) {
    report.skip(format!(
        "{}: a symbolic link; links are not copied on this platform",
        shown.shown.display()
    ));
}

/// Copies the directory `src` to the new directory `name` in `into`, one level at a time, each
/// directory opened beneath the top of the source (or of the copy); nothing is followed.
fn copy_tree(
    src: &Located<'_>,
    into: &Dir,
    name: &Path,
    dst: &Located<'_>,
    report: &mut CopyReport,
) -> Result<(), ToolError> {
    let src_top = if src.rel.as_os_str().is_empty() {
        src.dir.try_clone()
    } else {
        src.dir.open_dir(&src.rel)
    }
    .map_err(|e| io_error(src, e))?;
    into.create_dir(name).map_err(|e| io_error(dst, e))?;
    let dst_top = into.open_dir(name).map_err(|e| io_error(dst, e))?;
    report.dirs += 1;
    // The copy itself, should it turn up inside the source (reached through a link).
    let made = dst_top.dir_metadata().ok().as_ref().and_then(identity);
    // Each directory gets its source's permissions once everything in it is copied (a
    // read-only one stays writable until then).
    let mut modes: Vec<(PathBuf, cap_std::fs::Permissions)> = Vec::new();
    if let Ok(m) = src_top.dir_metadata() {
        modes.push((PathBuf::new(), copied_permissions(&m)));
    }
    let mut pending: Vec<PathBuf> = vec![PathBuf::new()];
    let mut seen: u64 = 0;
    while let Some(rel) = pending.pop() {
        let (from, to) = if rel.as_os_str().is_empty() {
            (src_top.try_clone(), dst_top.try_clone())
        } else {
            (src_top.open_dir(&rel), dst_top.open_dir(&rel))
        };
        let from = from.map_err(|e| io_error(&below(src, &rel), e))?;
        let to = to.map_err(|e| io_error(&below(dst, &rel), e))?;
        let entries = from.entries().map_err(|e| io_error(&below(src, &rel), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&below(src, &rel), e))?;
            seen += 1;
            if seen > MAX_COPY_ENTRIES {
                return Err(ToolError::Handler {
                    message: format!(
                        "{} holds more than {MAX_COPY_ENTRIES} entries; the copy stopped part way \
                         ({} is incomplete)",
                        src.shown.display(),
                        dst.shown.display()
                    ),
                });
            }
            let entry_name = PathBuf::from(entry.file_name());
            let entry_rel = rel.join(&entry_name);
            let from_at = below(src, &entry_rel);
            let to_at = below(dst, &entry_rel);
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) => {
                    report.skip(format!("{}: {e}", from_at.shown.display()));
                    continue;
                }
            };
            match EntryKind::of(meta.file_type()) {
                EntryKind::Dir => {
                    if made.is_some() && identity(&meta) == made {
                        continue;
                    }
                    to.create_dir(&entry_name)
                        .map_err(|e| io_error(&to_at, e))?;
                    report.dirs += 1;
                    modes.push((entry_rel.clone(), copied_permissions(&meta)));
                    pending.push(entry_rel);
                }
                EntryKind::File => {
                    let mut input = match from.open_with(&entry_name, &read_nonblocking()) {
                        Ok(f) => f,
                        Err(e) => {
                            report.skip(format!("{}: {e}", from_at.shown.display()));
                            continue;
                        }
                    };
                    match input.metadata() {
                        Ok(m) if m.is_file() => {}
                        _ => {
                            report.skip(format!(
                                "{}: changed while it was copied; not copied",
                                from_at.shown.display()
                            ));
                            continue;
                        }
                    }
                    copy_contents(&mut input, &to, &entry_name, &to_at, report)?;
                }
                EntryKind::Symlink => copy_link(&from, &to, &entry_name, &from_at, &to_at, report),
                EntryKind::Other => report.skip(format!(
                    "{}: not a regular file, directory or link (a FIFO, socket or device); not \
                     copied",
                    from_at.shown.display()
                )),
            }
        }
    }
    for (rel, perms) in modes.into_iter().rev() {
        let set = if rel.as_os_str().is_empty() {
            into.set_permissions(name, perms)
        } else {
            dst_top.set_permissions(&rel, perms)
        };
        set.map_err(|e| io_error(&below(dst, &rel), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failure is the assertion
    use super::resolve_physical;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolve_physical_follows_links_where_it_meets_them() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(base.join("a/b")).unwrap();
        symlink("../..", base.join("a/b/up")).unwrap();
        symlink(base.join("a"), base.join("abs")).unwrap();
        symlink("missing/x", base.join("dangling")).unwrap();
        symlink("l2", base.join("l1")).unwrap();
        symlink("l1", base.join("l2")).unwrap();
        // `..` applies to where `up` led (the base), not to its text.
        assert_eq!(
            resolve_physical(&base.join("a/b/up/../c")),
            base.parent().map(|p| p.join("c"))
        );
        assert_eq!(
            resolve_physical(&base.join("abs/b")),
            Some(base.join("a/b"))
        );
        assert_eq!(
            resolve_physical(&base.join("dangling")),
            Some(base.join("missing/x"))
        );
        assert_eq!(resolve_physical(&base.join("l1")), None, "a loop");
        assert_eq!(
            resolve_physical(&base.join("a/./b/")),
            Some(base.join("a/b"))
        );
    }
}
