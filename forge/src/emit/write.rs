//! Writing a generated crate: only inside the output directory, never over the user's edits.
//!
//! `.forge/generated` lists each file forge wrote with the FNV-1a hash of what it wrote. A file
//! that exists and is not listed with its current hash was written or changed by someone else:
//! forge refuses to touch it unless `--force`. Files forge wrote earlier that the new output no
//! longer has are removed when unchanged. `forge.toml` is written once and then belongs to the user.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::naming::fnv1a;

/// The record of what forge wrote, relative to the crate.
pub const RECORD: &str = ".forge/generated";

/// What [`write_crate`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteReport {
    pub written: Vec<String>,
    pub unchanged: Vec<String>,
    pub removed: Vec<String>,
    /// Files forge wrote before that the user changed and that are no longer generated: kept.
    pub kept: Vec<String>,
}

/// Why nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(
        "these files were changed by hand or not written by forge; nothing was written \
         (--force overwrites them):\n{}",
        .0.iter().map(|f| format!("  {f}")).collect::<Vec<_>>().join("\n")
    )]
    UserFiles(Vec<String>),
    #[error("{0} is a symbolic link; forge does not write through links")]
    Symlink(PathBuf),
    #[error("refusing to write `{0}`: not a plain relative path")]
    BadPath(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn hash(text: &[u8]) -> String {
    format!("{:016x}", fnv1a(text))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A relative path made only of normal components.
fn checked(rel: &str) -> Result<&Path, WriteError> {
    let p = Path::new(rel);
    let ok = !rel.is_empty()
        && p.components().all(|c| matches!(c, Component::Normal(_)))
        && !rel.contains('\\');
    if ok {
        Ok(p)
    } else {
        Err(WriteError::BadPath(rel.to_string()))
    }
}

/// Refuses when the path, or a directory on the way to it inside `dir`, is a symbolic link.
fn no_links(dir: &Path, rel: &Path) -> Result<(), WriteError> {
    let mut at = dir.to_path_buf();
    for c in rel.components() {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => return Err(WriteError::Symlink(at)),
            Ok(_) => {}
            Err(_) => break, // does not exist yet: nothing below it does either
        }
    }
    Ok(())
}

/// Creates `path` with `content`, never through a link: a regular file already there (what an
/// interrupted run left) is replaced; a link or anything else is refused.
pub(crate) fn write_new(path: &Path, content: &[u8]) -> Result<(), WriteError> {
    use std::io::Write as _;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => return Err(WriteError::Symlink(path.into())),
        Ok(m) if m.is_file() => std::fs::remove_file(path).map_err(io(path))?,
        Ok(_) => {
            return Err(io(path)(std::io::Error::other(
                "something other than a file is there",
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(path)(e)),
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io(path))?;
    f.write_all(content).map_err(io(path))
}

fn read_record(dir: &Path) -> BTreeMap<String, String> {
    let Ok(text) = std::fs::read_to_string(dir.join(RECORD)) else {
        return BTreeMap::new();
    };
    text.lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(h, p)| (p.to_string(), h.to_string()))
        .collect()
}

/// Writes `files` (relative path → content) into `dir`, plus `forge_toml` when the crate has
/// none. Checks everything before writing anything.
pub fn write_crate(
    dir: &Path,
    files: &BTreeMap<String, String>,
    forge_toml: &str,
    force: bool,
) -> Result<WriteReport, WriteError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    // Forge's own files are checked with the rest, before anything is written.
    no_links(dir, Path::new(RECORD))?;
    no_links(dir, Path::new("forge.toml"))?;
    let record = read_record(dir);
    let mut report = WriteReport::default();
    let mut blocked = Vec::new();
    let mut to_write: Vec<(&str, &str)> = Vec::new();
    for (rel, content) in files {
        let p = checked(rel)?;
        no_links(dir, p)?;
        let full = dir.join(p);
        match std::fs::read(&full) {
            Ok(existing) if existing == content.as_bytes() => report.unchanged.push(rel.clone()),
            Ok(existing) => {
                let ours = record.get(rel).is_some_and(|h| *h == hash(&existing));
                if ours || force {
                    to_write.push((rel, content));
                } else {
                    blocked.push(rel.clone());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => to_write.push((rel, content)),
            Err(e) => return Err(io(&full)(e)),
        }
    }
    // Files forge wrote before that are not generated any more.
    let mut stale = Vec::new();
    for (rel, h) in &record {
        if files.contains_key(rel) {
            continue;
        }
        let Ok(p) = checked(rel) else { continue };
        no_links(dir, p)?;
        match std::fs::read(dir.join(p)) {
            Ok(existing) if hash(&existing) == *h => stale.push(rel.clone()),
            Ok(_) => report.kept.push(rel.clone()),
            Err(_) => {}
        }
    }
    if !blocked.is_empty() {
        return Err(WriteError::UserFiles(blocked));
    }
    for (rel, content) in to_write {
        let full = dir.join(rel);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        // Write beside, then rename: a crash never leaves half a file. The temporary file is
        // made new (`O_EXCL`, which never follows a link): one a crash left is removed first,
        // and a link placed under its name is refused, not written through.
        let tmp = full.with_extension("forge-tmp");
        write_new(&tmp, content.as_bytes())?;
        std::fs::rename(&tmp, &full).map_err(io(&full))?;
        report.written.push(rel.to_string());
    }
    for rel in stale {
        let full = dir.join(&rel);
        std::fs::remove_file(&full).map_err(io(&full))?;
        report.removed.push(rel);
    }
    // Replaced by rename like the rest: a hard link placed there is not written through.
    let replace = |full: &Path, content: &str| -> Result<(), WriteError> {
        let tmp = full.with_extension("forge-tmp");
        write_new(&tmp, content.as_bytes())?;
        std::fs::rename(&tmp, full).map_err(io(full))
    };
    let toml_path = dir.join("forge.toml");
    if std::fs::symlink_metadata(&toml_path).is_err() {
        replace(&toml_path, forge_toml)?;
        report.written.push("forge.toml".to_string());
    }
    let mut text = String::from(
        "# Files forge generated and the hash of what it wrote; it overwrites only these, unchanged.\n",
    );
    for (rel, content) in files {
        text.push_str(&format!("{}  {rel}\n", hash(content.as_bytes())));
    }
    let rec = dir.join(RECORD);
    no_links(dir, Path::new(RECORD))?;
    if let Some(parent) = rec.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    replace(&rec, &text)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// Forge's own files: a hard link at the file list is replaced, not written through, and a
    /// `.forge` that is a link stops the write before any file is written.
    #[cfg(unix)]
    #[test]
    fn the_file_list_is_replaced_and_a_linked_forge_dir_stops_everything() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("precious");
        std::fs::write(&victim, "ORIG").unwrap();
        let d = dir.path().join("crate");
        std::fs::create_dir_all(d.join(".forge")).unwrap();
        std::fs::hard_link(&victim, d.join(RECORD)).unwrap();
        write_crate(&d, &files(&[("src/lib.rs", "a")]), "toml", false).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "ORIG");
        let e2 = dir.path().join("crate2");
        std::fs::create_dir_all(&e2).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, e2.join(".forge")).unwrap();
        let e = write_crate(&e2, &files(&[("src/lib.rs", "a")]), "toml", false).unwrap_err();
        assert!(matches!(e, WriteError::Symlink(_)), "{e}");
        assert!(!e2.join("src").exists() && !e2.join("forge.toml").exists());
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    }

    /// A link under a temporary file's name, or a dangling `Cargo.lock`, is not written
    /// through: a crate directory someone else prepared cannot make forge write elsewhere.
    #[cfg(unix)]
    #[test]
    fn links_under_temporary_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("crate");
        std::fs::create_dir_all(d.join("src")).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "ORIG").unwrap();
        std::os::unix::fs::symlink(&victim, d.join("src/lib.forge-tmp")).unwrap();
        let e = write_crate(&d, &files(&[("src/lib.rs", "a")]), "toml", false).unwrap_err();
        assert!(matches!(e, WriteError::Symlink(_)), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "ORIG");
        assert!(!d.join("src/lib.rs").exists());
        // A temporary file a crash left is replaced.
        std::fs::remove_file(d.join("src/lib.forge-tmp")).unwrap();
        std::fs::write(d.join("src/lib.forge-tmp"), "half").unwrap();
        write_crate(&d, &files(&[("src/lib.rs", "a")]), "toml", false).unwrap();
        assert_eq!(std::fs::read_to_string(d.join("src/lib.rs")).unwrap(), "a");
        assert!(!d.join("src/lib.forge-tmp").exists());
    }

    #[test]
    fn user_edits_are_never_overwritten_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let r = write_crate(d, &files(&[("src/lib.rs", "a")]), "toml", false).unwrap();
        assert_eq!(r.written, ["src/lib.rs", "forge.toml"]);
        // Regenerating with new content overwrites an unchanged file.
        write_crate(d, &files(&[("src/lib.rs", "b")]), "toml", false).unwrap();
        assert_eq!(std::fs::read_to_string(d.join("src/lib.rs")).unwrap(), "b");
        // The user edits it: forge refuses, and writes nothing at all.
        std::fs::write(d.join("src/lib.rs"), "mine").unwrap();
        let e = write_crate(
            d,
            &files(&[("src/lib.rs", "c"), ("src/new.rs", "n")]),
            "toml",
            false,
        )
        .unwrap_err();
        assert!(matches!(e, WriteError::UserFiles(ref f) if f == &["src/lib.rs"]));
        assert!(!d.join("src/new.rs").exists());
        assert_eq!(
            std::fs::read_to_string(d.join("src/lib.rs")).unwrap(),
            "mine"
        );
        // --force does.
        write_crate(d, &files(&[("src/lib.rs", "c")]), "toml", true).unwrap();
        assert_eq!(std::fs::read_to_string(d.join("src/lib.rs")).unwrap(), "c");
    }

    #[test]
    fn forge_toml_belongs_to_the_user_after_the_first_write() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_crate(d, &files(&[]), "first", false).unwrap();
        std::fs::write(d.join("forge.toml"), "edited").unwrap();
        write_crate(d, &files(&[]), "second", false).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.join("forge.toml")).unwrap(),
            "edited"
        );
    }

    #[test]
    fn files_no_longer_generated_go_unless_changed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_crate(
            d,
            &files(&[("src/a.rs", "a"), ("src/b.rs", "b")]),
            "t",
            false,
        )
        .unwrap();
        std::fs::write(d.join("src/b.rs"), "edited").unwrap();
        let r = write_crate(d, &files(&[("src/lib.rs", "l")]), "t", false).unwrap();
        assert_eq!(r.removed, ["src/a.rs"]);
        assert_eq!(r.kept, ["src/b.rs"]);
        assert!(!d.join("src/a.rs").exists());
        assert!(d.join("src/b.rs").exists());
    }

    #[test]
    fn paths_and_links_cannot_escape() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for bad in ["../x", "/etc/x", "a/../../x", "", "a\\b"] {
            assert!(
                matches!(
                    write_crate(d, &files(&[(bad, "x")]), "t", false),
                    Err(WriteError::BadPath(_))
                ),
                "{bad}"
            );
        }
        let outside = tempfile::tempdir().unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(outside.path(), d.join("src")).unwrap();
            assert!(matches!(
                write_crate(d, &files(&[("src/lib.rs", "x")]), "t", false),
                Err(WriteError::Symlink(_))
            ));
            assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
        }
    }
}
