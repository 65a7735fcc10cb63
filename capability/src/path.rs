//! The one lexical path normaliser: forge (output and reference paths) and the runtime (sandbox
//! roots) judge `.` and `..` the same way, without touching the disk.

use std::path::{Component, Path, PathBuf};

/// `path` with `.` removed and each `..` applied to the component before it, or `None` when a
/// `..` would climb above where the path starts (above `/`, or above the start of a relative
/// path). Symbolic links are not looked at: a caller that opens the result must still resolve
/// it beneath a directory handle.
pub fn normalize(path: &Path) -> Option<PathBuf> {
    let mut parts: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::ParentDir => match parts.last() {
                Some(Component::Normal(_)) => {
                    parts.pop();
                }
                _ => return None,
            },
            Component::CurDir => {}
            other => parts.push(other),
        }
    }
    Some(parts.iter().collect())
}

/// `path` made absolute against the working directory and normalised; a `..` above `/` stays
/// at `/` (as the kernel treats it).
pub fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Whether `path`, normalised, lies inside `root` (also normalised).
pub fn is_inside(path: &Path, root: &Path) -> bool {
    match (normalize(path), normalize(root)) {
        (Some(p), Some(r)) => p.starts_with(r),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_are_applied_and_climbing_out_is_refused() {
        let n = |p: &str| normalize(Path::new(p)).map(|p| p.display().to_string());
        assert_eq!(n("/a/./b/../c").as_deref(), Some("/a/c"));
        assert_eq!(n("a/b/../../c").as_deref(), Some("c"));
        assert_eq!(n("a/../.."), None);
        assert_eq!(n("/.."), None);
        assert_eq!(n("../x"), None);
        assert_eq!(n("").as_deref(), Some(""));
        assert!(is_inside(
            Path::new("/spec/a/../b.yaml"),
            Path::new("/spec")
        ));
        assert!(!is_inside(
            Path::new("/spec/../etc/passwd"),
            Path::new("/spec")
        ));
        assert!(!is_inside(Path::new("/specs/x"), Path::new("/spec")));
        assert_eq!(absolute(Path::new("/a/../../b")), PathBuf::from("/b"));
    }
}
