//! `forge.toml` of a generated crate: how it was imported, so `forge import --update` can do it
//! again. The same file may hold `[operations.*]` overrides (docs/INFERENCE.md).

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::toml_str;

/// The `[import]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRecord {
    /// The description, relative to the crate directory.
    pub source: String,
    pub name: String,
    #[serde(default)]
    pub include_tags: Vec<String>,
    #[serde(default)]
    pub exclude_tags: Vec<String>,
    #[serde(default)]
    pub ops: Vec<String>,
    /// Another overrides file, relative to the crate (this file's own `[operations]` also apply).
    #[serde(default)]
    pub config: Option<String>,
    #[serde(default = "default_max_name_len")]
    pub max_name_len: u16,
    /// The token budget of one tool (0: none); see `forge import --help`.
    #[serde(default = "default_max_tool_tokens")]
    pub max_tool_tokens: usize,
    #[serde(default)]
    pub output_schemas: bool,
    /// The repository checkout whose `runtime/` and `airun/` the crate depends on, relative to
    /// the crate; or `runtime_version`.
    #[serde(default)]
    pub runtime_path: Option<String>,
    #[serde(default)]
    pub runtime_version: Option<String>,
    #[serde(default)]
    pub workspace_member: bool,
}

fn default_max_tool_tokens() -> usize {
    crate::budget::DEFAULT_MAX_TOOL_TOKENS
}

fn default_max_name_len() -> u16 {
    crate::naming::DEFAULT_MAX_NAME_LEN as u16
}

#[derive(Deserialize)]
struct File {
    import: Option<ImportRecord>,
}

/// Reads the `[import]` table of a crate's `forge.toml`.
pub fn read(path: &Path) -> Result<ImportRecord, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    // Only `[import]` matters here; `[operations]` is checked when overrides load.
    let value: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let import = value.get("import").cloned().ok_or_else(|| {
        format!(
            "{}: no [import] table: was this crate made by `forge import`?",
            path.display()
        )
    })?;
    let file: File = toml::Table::from_iter([("import".to_string(), import)])
        .try_into()
        .map_err(|e: toml::de::Error| format!("{}: [import]: {e}", path.display()))?;
    file.import
        .ok_or_else(|| format!("{}: no [import] table", path.display()))
}

fn list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", items.join(", "))
}

/// The text of a new `forge.toml`.
pub fn render(r: &ImportRecord) -> String {
    let mut s = String::from(
        "# How this crate was generated: `forge import --update -o <this directory>` does it again.\n\
         # This file is yours. Change the filters here, or add overrides of effects, annotations and\n\
         # undo plans under [operations.<operationId or name>] (docs/INFERENCE.md); forge never\n\
         # overwrites it.\n\n[import]\n",
    );
    s.push_str(&format!("source = {}\n", toml_str(&r.source)));
    s.push_str(&format!("name = {}\n", toml_str(&r.name)));
    s.push_str(&format!("include_tags = {}\n", list(&r.include_tags)));
    s.push_str(&format!("exclude_tags = {}\n", list(&r.exclude_tags)));
    s.push_str(&format!("ops = {}\n", list(&r.ops)));
    if let Some(c) = &r.config {
        s.push_str(&format!("config = {}\n", toml_str(c)));
    }
    s.push_str(&format!("max_name_len = {}\n", r.max_name_len));
    s.push_str(&format!("max_tool_tokens = {}\n", r.max_tool_tokens));
    s.push_str(&format!("output_schemas = {}\n", r.output_schemas));
    if let Some(p) = &r.runtime_path {
        s.push_str(&format!("runtime_path = {}\n", toml_str(p)));
    }
    if let Some(v) = &r.runtime_version {
        s.push_str(&format!("runtime_version = {}\n", toml_str(v)));
    }
    s.push_str(&format!("workspace_member = {}\n", r.workspace_member));
    s
}

/// `to` relative to the directory `from` (both absolute and normalised), with `/` separators.
pub fn relative(from: &Path, to: &Path) -> String {
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".to_string(); a.len() - common];
    parts.extend(
        b[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

/// An absolute, lexically normalised path (no `.` or `..`), without touching the disk beyond the
/// working directory.
pub fn absolute(p: &Path) -> PathBuf {
    aifirst_capability::path::absolute(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative(Path::new("/a/b/c"), Path::new("/a/x/y.yaml")),
            "../../x/y.yaml"
        );
        assert_eq!(relative(Path::new("/a"), Path::new("/a/b")), "b");
        assert_eq!(relative(Path::new("/a/b"), Path::new("/a/b")), ".");
    }

    #[test]
    fn records_round_trip() {
        let r = ImportRecord {
            source: "../spec \"x\".yaml".into(),
            name: "petstore".into(),
            include_tags: vec!["pets".into()],
            ops: vec!["*_pet".into()],
            max_name_len: 48,
            max_tool_tokens: 2000,
            runtime_path: Some("../..".into()),
            ..ImportRecord::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("forge.toml");
        std::fs::write(
            &p,
            render(&r) + "\n[operations.createPet]\nidempotent = true\n",
        )
        .unwrap();
        assert_eq!(read(&p).unwrap(), r);
    }
}
