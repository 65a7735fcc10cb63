//! `forge new NAME`: a crate of hand-written capabilities that builds and passes its tests as
//! generated. Its files are the `new/` templates of `aifirst-templates`.

use std::path::Path;

use crate::emit::{crate_name, toml_str, RuntimeDep};

/// Creates the crate; returns how many files it wrote.
pub fn new_crate(
    name: &str,
    dir: &Path,
    runtime_path: Option<String>,
    runtime_version: Option<String>,
) -> Result<usize, String> {
    let krate = crate_name(name);
    if krate != name {
        return Err(format!(
            "`{name}` cannot be a crate name here; try `{krate}` (lower case, digits and `_`, not a keyword or a dependency's name)"
        ));
    }
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(format!(
            "{} exists and is not empty; forge new only creates new crates",
            dir.display()
        ));
    }
    #[derive(serde::Serialize)]
    struct Ctx<'a> {
        name: &'a str,
        name_toml: String,
        prefix: String,
        dependencies: String,
    }
    let ctx = Ctx {
        name,
        name_toml: toml_str(name),
        prefix: name.to_ascii_uppercase(),
        dependencies: RuntimeDep::new(runtime_path, runtime_version).toml(),
    };
    let mut files = Vec::new();
    for (rel, template) in [
        ("Cargo.toml", "new/Cargo.toml"),
        ("src/lib.rs", "new/lib.rs"),
        ("src/main.rs", "new/main.rs"),
        ("tests/capabilities.rs", "new/tests.rs"),
        ("README.md", "new/README.md"),
        (".gitignore", "new/gitignore"),
    ] {
        let text = aifirst_templates::render(template, &ctx).map_err(|e| e.to_string())?;
        files.push((rel, text));
    }
    for (rel, text) in &files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(files.len())
}
