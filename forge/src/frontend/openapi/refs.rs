//! The set of documents one description spans, and `$ref` resolution across them.
//!
//! Every file a description references is loaded up front (so lowering never does I/O), and only if
//! it lies inside the root file's directory tree. Remote references are refused: forge never touches
//! the network.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::diag::{Diagnostic, Location, Severity};
use crate::frontend::openapi::load::{line_of, load_file, LoadError, Source};

/// Index of a document in a [`DocSet`].
pub type DocId = usize;

/// One loaded file.
#[derive(Debug)]
pub struct Doc {
    /// Canonical path on disk.
    pub path: PathBuf,
    /// How diagnostics name it.
    pub display: String,
    pub source: Source,
}

/// Why a `$ref` could not be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("`{0}` is a remote reference; forge never fetches from the network")]
    Remote(String),
    #[error("`{0}` points outside the description's directory tree")]
    OutsideRoot(String),
    #[error("`{reference}` names a file that could not be loaded: {why}")]
    File { reference: String, why: String },
    #[error("`{0}` uses a fragment that is not a JSON pointer")]
    Fragment(String),
    #[error("`{0}` points at nothing")]
    Missing(String),
    #[error("`{0}` points at the whole description rather than at a part of it (a schema, parameter, response or path item)")]
    Root(String),
    #[error("`{0}` is part of a reference loop")]
    Loop(String),
}

/// The root document and every file it references.
#[derive(Debug)]
pub struct DocSet {
    pub docs: Vec<Doc>,
    root_dir: PathBuf,
    by_path: HashMap<PathBuf, DocId>,
    /// External references that failed to load, by (referring doc, file part).
    failed: HashMap<(DocId, String), RefError>,
}

/// The root document could not be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("cannot resolve {path}: {source}")]
    Canonical {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl DocSet {
    /// Loads the root document. External files are loaded by [`DocSet::load_references`].
    pub fn open(path: &Path) -> Result<DocSet, OpenError> {
        let source = load_file(path)?;
        let canonical = path.canonicalize().map_err(|source| OpenError::Canonical {
            path: path.to_path_buf(),
            source,
        })?;
        let root_dir = canonical
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        let mut by_path = HashMap::new();
        by_path.insert(canonical.clone(), 0);
        Ok(DocSet {
            docs: vec![Doc {
                path: canonical,
                display: path.display().to_string(),
                source,
            }],
            root_dir,
            by_path,
            failed: HashMap::new(),
        })
    }

    pub fn root(&self) -> &Value {
        &self.docs[0].source.value
    }

    pub fn root_mut(&mut self) -> &mut Value {
        &mut self.docs[0].source.value
    }

    /// A location in a document, with its line when the source can be mapped.
    pub fn location(&self, doc: DocId, pointer: &str) -> Location {
        let d = &self.docs[doc];
        Location {
            file: d.display.clone(),
            pointer: pointer.to_string(),
            line: line_of(&d.source, pointer),
        }
    }

    /// Loads every file reachable through `$ref`s, refusing remote ones and those outside the root
    /// directory. Each refused or broken reference gets one diagnostic at the place it is written.
    pub fn load_references(&mut self, diags: &mut Vec<Diagnostic>) {
        let mut next = 0;
        while next < self.docs.len() {
            let mut found = Vec::new();
            collect_file_refs(&self.docs[next].source.value, &mut found);
            for (pointer, reference) in found {
                let file_part = reference.split('#').next().unwrap_or("").to_string();
                if self.failed.contains_key(&(next, file_part.clone())) {
                    continue;
                }
                if let Err(err) = self.load_one(next, &reference, &file_part) {
                    diags.push(
                        Diagnostic::new(
                            Severity::Warning,
                            "ref-refused",
                            format!("reference refused: {err}"),
                            self.location(next, &pointer),
                        )
                        .with_help(
                            "forge reads only files inside the description's directory; \
                             vendor the referenced file next to the spec",
                        ),
                    );
                    self.failed.insert((next, file_part), err);
                }
            }
            next += 1;
        }
    }

    fn load_one(
        &mut self,
        from: DocId,
        reference: &str,
        file_part: &str,
    ) -> Result<DocId, RefError> {
        let target = self.file_target(from, reference, file_part)?;
        if let Some(&id) = self.by_path.get(&target) {
            return Ok(id);
        }
        let source = load_file(&target).map_err(|e| RefError::File {
            reference: reference.to_string(),
            why: e.to_string(),
        })?;
        let rel = target.strip_prefix(&self.root_dir).unwrap_or(&target);
        let root_display = Path::new(&self.docs[0].display);
        let display = root_display
            .parent()
            .map(|p| p.join(rel))
            .unwrap_or_else(|| rel.to_path_buf())
            .display()
            .to_string();
        let id = self.docs.len();
        self.docs.push(Doc {
            path: target.clone(),
            display,
            source,
        });
        self.by_path.insert(target, id);
        Ok(id)
    }

    /// The canonical path a file reference names, checked to lie inside the root directory.
    fn file_target(
        &self,
        from: DocId,
        reference: &str,
        file_part: &str,
    ) -> Result<PathBuf, RefError> {
        if is_remote(file_part) {
            return Err(RefError::Remote(reference.to_string()));
        }
        let decoded = percent_decode(file_part);
        let base = self.docs[from].path.parent().unwrap_or(Path::new("/"));
        let joined = base.join(&decoded);
        // Refuse before touching the file system when the path plainly climbs out.
        if !lexically_inside(&joined, &self.root_dir) {
            return Err(RefError::OutsideRoot(reference.to_string()));
        }
        let canonical = joined.canonicalize().map_err(|e| RefError::File {
            reference: reference.to_string(),
            why: e.to_string(),
        })?;
        if !canonical.starts_with(&self.root_dir) {
            // A symlink inside the tree that leads out of it.
            return Err(RefError::OutsideRoot(reference.to_string()));
        }
        Ok(canonical)
    }

    /// Resolves a `$ref` written in document `from` to (document, JSON pointer).
    pub fn resolve(&self, from: DocId, reference: &str) -> Result<(DocId, String), RefError> {
        let (file_part, fragment) = match reference.split_once('#') {
            Some((f, frag)) => (f, frag),
            None => (reference, ""),
        };
        let doc = if file_part.is_empty() {
            from
        } else {
            if let Some(err) = self.failed.get(&(from, file_part.to_string())) {
                return Err(err.clone());
            }
            let target = self.file_target(from, reference, file_part)?;
            *self
                .by_path
                .get(&target)
                .ok_or_else(|| RefError::Missing(reference.to_string()))?
        };
        let pointer = percent_decode(fragment);
        if !pointer.is_empty() && !pointer.starts_with('/') {
            return Err(RefError::Fragment(reference.to_string()));
        }
        if pointer.is_empty() && doc == 0 {
            // Another file's root is its content (`pet.yaml`); the description's root is not
            // something a reference can stand for (and inlined, it would refer to itself).
            return Err(RefError::Root(reference.to_string()));
        }
        if self.docs[doc].source.value.pointer(&pointer).is_none() {
            return Err(RefError::Missing(reference.to_string()));
        }
        Ok((doc, pointer))
    }

    /// The value at a pointer.
    pub fn get(&self, doc: DocId, pointer: &str) -> Option<&Value> {
        self.docs[doc].source.value.pointer(pointer)
    }

    /// Follows `value` through any chain of `$ref`s to a non-reference value.
    /// Returns the final (document, pointer, value); `at` is where `value` itself sits.
    pub fn follow<'a>(
        &'a self,
        doc: DocId,
        at: &str,
        value: &'a Value,
    ) -> Result<(DocId, String, &'a Value), RefError> {
        let mut cur = (doc, at.to_string(), value);
        for _ in 0..64 {
            let Some(reference) = cur.2.get("$ref").and_then(Value::as_str) else {
                return Ok(cur);
            };
            let (d, p) = self.resolve(cur.0, reference)?;
            let v = self
                .get(d, &p)
                .ok_or_else(|| RefError::Missing(reference.to_string()))?;
            cur = (d, p, v);
        }
        let last = cur
            .2
            .get("$ref")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Err(RefError::Loop(last.to_string()))
    }
}

/// `true` for references that name another host or scheme.
pub fn is_remote(file_part: &str) -> bool {
    file_part.contains("://") || file_part.starts_with("//") || {
        // `urn:…`, `http:…`, `c:…` style schemes (a single letter is a Windows drive, still refused).
        let scheme: String = file_part.chars().take_while(|c| *c != ':').collect();
        scheme.len() < file_part.len()
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    }
}

fn lexically_inside(path: &Path, root: &Path) -> bool {
    aifirst_capability::path::is_inside(path, root)
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Collects `(pointer, reference)` for every `$ref` that names another file. The pointer is only
/// built for the (rare) hits; the walk itself allocates nothing.
fn collect_file_refs(v: &Value, out: &mut Vec<(String, String)>) {
    fn walk<'v>(v: &'v Value, path: &mut Vec<Token<'v>>, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    if !r.starts_with('#') {
                        let mut pointer = String::new();
                        for t in path.iter() {
                            pointer = match t {
                                Token::Key(k) => crate::diag::push_token(&pointer, k),
                                Token::Index(i) => format!("{pointer}/{i}"),
                            };
                        }
                        out.push((crate::diag::push_token(&pointer, "$ref"), r.clone()));
                    }
                }
                for (k, child) in map {
                    if matches!(child, Value::Object(_) | Value::Array(_)) {
                        path.push(Token::Key(k));
                        walk(child, path, out);
                        path.pop();
                    }
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    if matches!(child, Value::Object(_) | Value::Array(_)) {
                        path.push(Token::Index(i));
                        walk(child, path, out);
                        path.pop();
                    }
                }
            }
            _ => {}
        }
    }
    enum Token<'v> {
        Key(&'v str),
        Index(usize),
    }
    walk(v, &mut Vec::new(), out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_references_are_recognised() {
        for r in [
            "https://example.com/a.yaml",
            "http://x",
            "//host/a.json",
            "file:///etc/passwd",
            "urn:x:y",
        ] {
            assert!(is_remote(r), "{r}");
        }
        for r in ["schemas/pet.yaml", "./a.json", "../b.yaml", "pet.yaml"] {
            assert!(!is_remote(r), "{r}");
        }
    }

    #[test]
    fn lexical_containment() {
        let root = Path::new("/spec");
        assert!(lexically_inside(Path::new("/spec/a/../b.yaml"), root));
        assert!(!lexically_inside(Path::new("/spec/../etc/passwd"), root));
        assert!(!lexically_inside(Path::new("/etc/passwd"), root));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/paths/%7Bid%7D"), "/paths/{id}");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
