//! Filesystem roots. A capability that touches files resolves every path through [`resolve`],
//! which refuses anything outside the allowed roots, symbolic links followed. `airun` sets the
//! roots from `allowed_roots` in `airun.toml`; with none set, every path is allowed.

use std::path::{Component, Path, PathBuf};
use std::sync::RwLock;

use crate::ToolError;

static ROOTS: RwLock<Vec<PathBuf>> = RwLock::new(Vec::new());

/// Restricts [`resolve`] to these directories (which must exist); an empty list allows any path.
pub fn set_allowed_roots(roots: &[PathBuf]) -> Result<(), std::io::Error> {
    let mut canonical = Vec::with_capacity(roots.len());
    for r in roots {
        canonical.push(r.canonicalize().map_err(|e| {
            std::io::Error::new(e.kind(), format!("allowed root {}: {e}", r.display()))
        })?);
    }
    *ROOTS.write().unwrap_or_else(|p| p.into_inner()) = canonical;
    Ok(())
}

/// The roots in force.
pub fn allowed_roots() -> Vec<PathBuf> {
    ROOTS.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// `path` made absolute, with symbolic links followed as far as the path exists, checked to lie
/// inside an allowed root. A path that does not exist yet is judged by its deepest existing
/// ancestor, so a new file cannot be created through a link that leads outside.
pub fn resolve(path: impl AsRef<Path>) -> Result<PathBuf, ToolError> {
    let path = path.as_ref();
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(ToolError::handler)?
            .join(path)
    };
    // Lexically first: `..` must not climb over a link's target after canonicalising.
    let mut lexical = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    let mut existing = lexical.as_path();
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    let real = loop {
        match existing.canonicalize() {
            Ok(p) => break p,
            Err(_) => match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name);
                    existing = parent;
                }
                _ => break existing.to_path_buf(),
            },
        }
    };
    let mut full = real;
    for name in rest.into_iter().rev() {
        full.push(name);
    }
    let roots = ROOTS.read().unwrap_or_else(|p| p.into_inner());
    if roots.is_empty() || roots.iter().any(|r| full.starts_with(r)) {
        Ok(full)
    } else {
        Err(ToolError::NotAllowed {
            message: format!("path `{}` is outside the allowed roots", path.display()),
        })
    }
}
