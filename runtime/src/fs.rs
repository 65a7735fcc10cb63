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

pub use cap_std::fs::{Dir, File, Metadata, OpenOptions};

use crate::ToolError;

/// One allowed root: the directory as configured and as the kernel names it, and its handle.
#[derive(Debug)]
struct Root {
    /// Absolute and normalised, as configured (may contain symbolic links, such as `/tmp`).
    given: PathBuf,
    /// With every link resolved.
    canonical: PathBuf,
    dir: Dir,
}

/// The directories file capabilities may touch. Built once per engine; cheap to share.
#[derive(Debug, Default)]
pub struct Fs {
    roots: Vec<Root>,
}

/// A path resolved to a root: open it with the methods of [`Fs`] or through [`Located::dir`].
#[derive(Debug)]
pub struct Located<'a> {
    /// The root's handle.
    pub dir: &'a Dir,
    /// The path below the root (empty for the root itself).
    pub rel: PathBuf,
    /// The path as the caller should see it in messages: the root as configured joined with `rel`.
    pub shown: PathBuf,
}

impl Fs {
    /// Opens each root (which must exist and be a directory).
    pub fn new(roots: &[PathBuf]) -> Result<Fs, std::io::Error> {
        let mut out = Vec::with_capacity(roots.len());
        for r in roots {
            let given = aifirst_capability::path::absolute(r);
            let canonical = given.canonicalize().map_err(|e| {
                std::io::Error::new(e.kind(), format!("allowed root {}: {e}", r.display()))
            })?;
            let dir =
                Dir::open_ambient_dir(&canonical, cap_std::ambient_authority()).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("allowed root {}: {e}", r.display()))
                })?;
            out.push(Root {
                given,
                canonical,
                dir,
            });
        }
        Ok(Fs { roots: out })
    }

    /// The roots as configured.
    pub fn roots(&self) -> Vec<&Path> {
        self.roots.iter().map(|r| r.given.as_path()).collect()
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
        for root in &self.roots {
            for base in [&root.given, &root.canonical] {
                if let Ok(rel) = normal.strip_prefix(base) {
                    return Ok(Located {
                        dir: &root.dir,
                        rel: rel.to_path_buf(),
                        shown: root.given.join(rel),
                    });
                }
            }
        }
        Err(outside())
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
    /// written, flushed and renamed over the target, so a reader sees the old or the new file,
    /// never a part, and a kill leaves the old file in place. The temporary file is created
    /// `0600` and given the target's permissions only once written (a new file gets `0644`); a
    /// read-only target is refused, as a shell's `>` would refuse it.
    pub fn write(&self, path: impl AsRef<Path>, contents: &[u8]) -> Result<(), ToolError> {
        let at = self.locate(&path)?;
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
            Ok(m) => {
                // Not writable by this user (another's file, say): refused as `>` would be,
                // though the directory would let a rename replace it.
                if let Err(e) = dir.open_with(&name, OpenOptions::new().write(true)) {
                    if e.kind() == std::io::ErrorKind::PermissionDenied {
                        return Err(ToolError::NotAllowed {
                            message: format!("{} is not writable", at.shown.display()),
                        });
                    }
                }
                Some(m.permissions())
            }
            Err(_) => None,
        };
        let tmp = temp_name(&name);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use cap_std::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = dir
            .open_with(&tmp, &options)
            .map_err(|e| io_error(&at, e))?;
        let written = file
            .write_all(contents)
            .and_then(|_| file.sync_all())
            .and_then(|_| match perms.or_else(new_file_permissions) {
                Some(p) => file.set_permissions(p),
                None => Ok(()),
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
        file.write_all(contents)
            .and_then(|_| file.sync_all())
            .map_err(|e| io_error(&at, e))
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

    /// Removes a file (a link is removed, never what it names).
    pub fn remove_file(&self, path: impl AsRef<Path>) -> Result<(), ToolError> {
        let at = self.locate(&path)?;
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
    if at.rel.as_os_str().is_empty() {
        at.dir.dir_metadata()
    } else {
        at.dir.metadata(&at.rel)
    }
}

fn open_beneath(at: &Located<'_>, options: &OpenOptions) -> Result<File, ToolError> {
    if at.rel.as_os_str().is_empty() {
        return Err(ToolError::Handler {
            message: format!("{} is a directory", at.shown.display()),
        });
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

fn open_parent(at: &Located<'_>, parent: &Path) -> Result<Dir, ToolError> {
    if parent.as_os_str().is_empty() {
        return at.dir.try_clone().map_err(|e| io_error(at, e));
    }
    at.dir.open_dir(parent).map_err(|e| io_error(at, e))
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

fn temp_name(name: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    PathBuf::from(format!(
        ".{}.aifirst-{}-{n}.tmp",
        name.display(),
        std::process::id()
    ))
}

/// An I/O error naming the path as the caller gave it. A path that cap-std refused because it
/// leads outside the root reads as such.
fn io_error(at: &Located<'_>, e: std::io::Error) -> ToolError {
    let text = e.to_string();
    if text.contains("outside of the filesystem") || text.contains("escapes") {
        return ToolError::NotAllowed {
            message: format!(
                "path `{}` leads outside the allowed roots through a symbolic link (a link with an \
                 absolute target counts, even one that points inside: make it relative)",
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
