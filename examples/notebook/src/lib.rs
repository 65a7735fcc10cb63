//! Notes kept in `notes.json` under `$NOTEBOOK_DIR` (default: the working directory).
//!
//! Small on purpose, and real: every capability changes a file another process can read, so the
//! tests can check what `undo` put back from a fresh process.

use std::path::PathBuf;

use aifirst::{capability, Ctx, ToolError, UndoCall};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Note {
    pub id: u64,
    pub title: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub pinned: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Store {
    next_id: u64,
    notes: Vec<Note>,
}

/// The notes file, checked against the allowed roots (`allowed_roots` in airun.toml).
fn path() -> Result<PathBuf, ToolError> {
    aifirst::fs::resolve(
        std::env::var_os("NOTEBOOK_DIR")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join("notes.json"),
    )
}

fn load() -> Result<Store, ToolError> {
    match std::fs::read_to_string(path()?) {
        Ok(text) => serde_json::from_str(&text).map_err(ToolError::handler),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Store::default()),
        Err(e) => Err(ToolError::handler(e)),
    }
}

fn save(store: &Store) -> Result<(), ToolError> {
    let text = serde_json::to_string_pretty(store).map_err(ToolError::handler)?;
    std::fs::write(path()?, text).map_err(ToolError::handler)
}

fn not_found(id: u64) -> ToolError {
    ToolError::handler(format!("no note {id}"))
}

fn note_mut(store: &mut Store, id: u64) -> Result<&mut Note, ToolError> {
    store
        .notes
        .iter_mut()
        .find(|n| n.id == id)
        .ok_or_else(|| not_found(id))
}

/// Creates a note and returns it with its id.
#[capability(effects(create, filesystem), undo = inverse("delete_note", id = "$result.id"))]
pub fn create_note(
    /// The note's title.
    title: String,
    /// The note's text.
    #[serde(default)]
    body: String,
) -> Result<Note, ToolError> {
    let mut store = load()?;
    store.next_id += 1;
    let note = Note {
        id: store.next_id,
        title,
        body,
        pinned: false,
    };
    store.notes.push(note.clone());
    save(&store)?;
    Ok(note)
}

/// Reads one note.
#[capability(effects(read, filesystem))]
pub fn get_note(
    /// The note's id.
    id: u64,
) -> Result<Note, ToolError> {
    load()?
        .notes
        .into_iter()
        .find(|n| n.id == id)
        .ok_or_else(|| not_found(id))
}

/// Every note, oldest first.
#[capability(effects(read, filesystem))]
pub fn list_notes() -> Result<Vec<Note>, ToolError> {
    Ok(load()?.notes)
}

/// Changes a note's title; undo puts the old one back.
#[capability(effects(update, filesystem), undo = restore_title)]
pub fn rename_note(
    /// The note's id.
    id: u64,
    /// The new title.
    title: String,
) -> Result<Renamed, ToolError> {
    let mut store = load()?;
    let note = note_mut(&mut store, id)?;
    let old_title = std::mem::replace(&mut note.title, title.clone());
    save(&store)?;
    Ok(Renamed {
        id,
        old_title,
        title,
    })
}

/// What `rename_note` changed.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Renamed {
    pub id: u64,
    pub old_title: String,
    pub title: String,
}

fn restore_title(_ctx: &Ctx, undo: &UndoCall) -> Result<(), ToolError> {
    let r: Renamed = serde_json::from_value(undo.result.clone()).map_err(ToolError::handler)?;
    let mut store = load()?;
    let note = note_mut(&mut store, r.id)?;
    note.title = r.old_title;
    save(&store)
}

/// Pins or unpins a note (a toggle); undo sets it back.
#[capability(effects(update, filesystem), undo = unpin)]
pub fn pin_note(
    /// The note's id.
    id: u64,
    /// Pin (true) or unpin (false).
    #[serde(default = "yes")]
    pinned: bool,
) -> Result<Value, ToolError> {
    let mut store = load()?;
    let note = note_mut(&mut store, id)?;
    let was = std::mem::replace(&mut note.pinned, pinned);
    save(&store)?;
    Ok(serde_json::json!({"id": id, "was": was, "pinned": pinned}))
}

fn yes() -> bool {
    true
}

fn unpin(_ctx: &Ctx, undo: &UndoCall) -> Result<(), ToolError> {
    let id = undo.result["id"].as_u64().ok_or_else(|| not_found(0))?;
    let was = undo.result["was"].as_bool().unwrap_or(false);
    let mut store = load()?;
    let note = note_mut(&mut store, id)?;
    note.pinned = was;
    save(&store)
}

/// Deletes a note; undo puts it back with the same id.
#[capability(effects(delete, filesystem), undo = put_back)]
pub fn delete_note(
    /// The note's id.
    id: u64,
) -> Result<Note, ToolError> {
    let mut store = load()?;
    let at = store
        .notes
        .iter()
        .position(|n| n.id == id)
        .ok_or_else(|| not_found(id))?;
    let note = store.notes.remove(at);
    save(&store)?;
    Ok(note)
}

fn put_back(_ctx: &Ctx, undo: &UndoCall) -> Result<(), ToolError> {
    let note: Note = serde_json::from_value(undo.result.clone()).map_err(ToolError::handler)?;
    let mut store = load()?;
    if !store.notes.iter().any(|n| n.id == note.id) {
        store.notes.push(note);
        store.notes.sort_by_key(|n| n.id);
    }
    save(&store)
}

/// Deletes every note for good.
#[capability(
    effects(delete, filesystem),
    irreversible = "the notes are not kept anywhere"
)]
pub fn purge_notes() -> Result<usize, ToolError> {
    let mut store = load()?;
    let n = store.notes.len();
    store.notes.clear();
    save(&store)?;
    Ok(n)
}

/// Does nothing (for measuring the overhead of a call).
#[capability(effects(read))]
pub fn noop() -> bool {
    true
}

/// Always fails (for testing how failures are reported).
#[capability(effects(read))]
pub fn fail() -> Result<bool, ToolError> {
    Err(ToolError::handler("this capability always fails"))
}
