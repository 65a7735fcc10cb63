//! `forge new NAME`: a crate of hand-written capabilities that builds and passes its tests as
//! generated.

use std::path::Path;

use crate::emit::{crate_name, toml_str, RuntimeDep};

const LIB: &str = r#"//! Hand-written capabilities. Each `#[capability]` function is registered at compile time and
//! served by the binary (`cargo run -- list`, `call`, `undo`, `serve`).
//!
//! The example keeps a to-do list in `todo.json` under `$__PREFIX___DIR` (default: the working
//! directory).

use std::path::PathBuf;

use aifirst::{capability, Ctx, ToolError, UndoCall};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One item of the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Item {
    pub id: u64,
    pub text: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct List {
    next_id: u64,
    items: Vec<Item>,
}

fn file() -> PathBuf {
    std::env::var_os("__PREFIX___DIR")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join("todo.json")
}

fn load() -> Result<List, ToolError> {
    match std::fs::read_to_string(file()) {
        Ok(text) => serde_json::from_str(&text).map_err(ToolError::handler),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(List::default()),
        Err(e) => Err(ToolError::handler(e)),
    }
}

fn save(list: &List) -> Result<(), ToolError> {
    let text = serde_json::to_string_pretty(list).map_err(ToolError::handler)?;
    std::fs::write(file(), text).map_err(ToolError::handler)
}

/// Adds an item to the list and returns it. Undone by removing it again.
#[capability(effects(create, filesystem), undo = inverse("remove_item", id = "$result.id"))]
pub fn add_item(
    /// What to do.
    text: String,
) -> Result<Item, ToolError> {
    let mut list = load()?;
    list.next_id += 1;
    let item = Item {
        id: list.next_id,
        text,
    };
    list.items.push(item.clone());
    save(&list)?;
    Ok(item)
}

/// Every item, oldest first.
#[capability(effects(read, filesystem))]
pub fn list_items() -> Result<Vec<Item>, ToolError> {
    Ok(load()?.items)
}

/// Removes an item and returns it. Undone by putting it back.
#[capability(effects(delete, filesystem), undo = put_back)]
pub fn remove_item(
    /// The item's id.
    id: u64,
) -> Result<Item, ToolError> {
    let mut list = load()?;
    let at = list
        .items
        .iter()
        .position(|i| i.id == id)
        .ok_or_else(|| ToolError::handler(format!("no item {id}")))?;
    let item = list.items.remove(at);
    save(&list)?;
    Ok(item)
}

/// The undo of `remove_item`: it gets the call's arguments and result.
fn put_back(_ctx: &Ctx, undo: &UndoCall) -> Result<(), ToolError> {
    let item: Item = serde_json::from_value(undo.result.clone()).map_err(ToolError::handler)?;
    let mut list = load()?;
    if !list.items.iter().any(|i| i.id == item.id) {
        list.items.push(item);
        list.items.sort_by_key(|i| i.id);
    }
    save(&list)
}
"#;

const MAIN: &str = r#"//! The shared CLI and MCP server over this crate's capabilities.

use std::process::ExitCode;

use __NAME__ as _;

fn main() -> ExitCode {
    airun::run(airun::App {
        name: "__NAME__",
        version: env!("CARGO_PKG_VERSION"),
        about: "Hand-written capabilities, with undo.",
    })
}
"#;

const TEST: &str = r##"//! Calls and undoes through the binary, each in a process of its own.

use std::path::PathBuf;
use std::process::Command;

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("__NAME__-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(dir: &PathBuf, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE___NAME__"))
        .args(args)
        .current_dir(dir)
        .env("__PREFIX___DIR", dir)
        .env_remove("AIFIRST_STATE_DIR")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn add_then_undo_leaves_the_list_as_it_was() {
    let dir = workdir("undo");
    run(&dir, &["call", "add_item", "--args", r#"{"text":"water the plants"}"#]);
    let listed = run(&dir, &["--json", "call", "list_items"]);
    assert!(listed.contains("water the plants"), "{listed}");
    run(&dir, &["undo"]);
    let listed = run(&dir, &["--json", "call", "list_items"]);
    assert_eq!(listed.trim(), "[]");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn remove_is_undone_by_putting_the_item_back() {
    let dir = workdir("remove");
    run(&dir, &["call", "add_item", "--args", r#"{"text":"a"}"#]);
    run(&dir, &["call", "remove_item", "--args", r#"{"id":1}"#]);
    run(&dir, &["undo"]);
    let listed = run(&dir, &["--json", "call", "list_items"]);
    assert!(listed.contains("\"a\""), "{listed}");
    let _ = std::fs::remove_dir_all(&dir);
}
"##;

const README: &str = r#"# __NAME__

Hand-written capabilities for AI-First Runtime, scaffolded by `forge new`.

```sh
cargo test                                   # calls and undoes through the binary
cargo run -- list                            # the capabilities, their effects and undo
cargo run -- call add_item --args '{"text":"water the plants"}'
cargo run -- undo                            # takes it back
cargo run -- serve                           # MCP over stdio, for Claude, Cursor, …
```

Write a capability as a Rust function marked `#[capability(effects(...), undo = ...)]` in
`src/lib.rs` (see the AI-First Runtime handler developer guide). A capability that updates,
deletes or executes must say how it is undone, or `irreversible = "why"`: the compiler insists.
"#;

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
    let prefix = name.to_ascii_uppercase();
    let fill = |t: &str| t.replace("__NAME__", name).replace("__PREFIX__", &prefix);
    let deps = RuntimeDep::new(runtime_path, runtime_version).toml();
    let cargo = format!(
        "[package]\nname = {n}\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
         [dependencies]\n{deps}serde = {{ version = \"1\", features = [\"derive\"] }}\n\
         serde_json = \"1\"\nschemars = \"1\"\n\n[[bin]]\nname = {n}\npath = \"src/main.rs\"\n\n\
         # A workspace of its own, so it builds wherever it is put.\n[workspace]\n",
        n = toml_str(name)
    );
    let files = [
        ("Cargo.toml", cargo),
        ("src/lib.rs", fill(LIB)),
        ("src/main.rs", fill(MAIN)),
        ("tests/capabilities.rs", fill(TEST)),
        ("README.md", fill(README)),
        (".gitignore", "/target\n/.aifirst\n/todo.json\n".to_string()),
    ];
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
