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
pub fn render(r: &ImportRecord) -> Result<String, aifirst_templates::TemplateError> {
    #[derive(Serialize)]
    struct Ctx {
        source: String,
        name: String,
        include_tags: String,
        exclude_tags: String,
        ops: String,
        config: Option<String>,
        max_name_len: u16,
        max_tool_tokens: usize,
        output_schemas: &'static str,
        runtime_path: Option<String>,
        runtime_version: Option<String>,
        workspace_member: &'static str,
    }
    // Booleans as TOML text: minijinja prints them as Python does (`False`).
    let flag = |b: bool| if b { "true" } else { "false" };
    aifirst_templates::render(
        "forge.toml",
        &Ctx {
            source: toml_str(&r.source),
            name: toml_str(&r.name),
            include_tags: list(&r.include_tags),
            exclude_tags: list(&r.exclude_tags),
            ops: list(&r.ops),
            config: r.config.as_deref().map(toml_str),
            max_name_len: r.max_name_len,
            max_tool_tokens: r.max_tool_tokens,
            output_schemas: flag(r.output_schemas),
            runtime_path: r.runtime_path.as_deref().map(toml_str),
            runtime_version: r.runtime_version.as_deref().map(toml_str),
            workspace_member: flag(r.workspace_member),
        },
    )
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
            render(&r).unwrap() + "\n[operations.createPet]\nidempotent = true\n",
        )
        .unwrap();
        assert_eq!(read(&p).unwrap(), r);
    }
}
