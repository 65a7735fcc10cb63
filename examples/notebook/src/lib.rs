//! Notes kept in `notes.json` under `$NOTEBOOK_DIR` (default: the first allowed root), read and
//! written through the engine's sandbox with a lock and an atomic rename.
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

/// The notes file, reached through the engine's sandbox: it must lie inside an allowed root
/// (`allowed_roots` in airun.toml, `--root`, or AIFIRST_ROOTS).
fn path() -> PathBuf {
    std::env::var_os("NOTEBOOK_DIR")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join("notes.json")
}

/// The notes as they are now. Writers replace the file atomically, so a reader never sees half
/// of one.
fn load(ctx: &Ctx) -> Result<Store, ToolError> {
    let path = path();
    if !ctx.fs().exists(&path)? {
        return Ok(Store::default());
    }
    let text = ctx.fs().read_to_string(&path)?;
    serde_json::from_str(&text).map_err(ToolError::handler)
}

/// Reads, changes and writes the notes under a lock (`notes.json.lock`), so two processes or
/// threads never lose each other's change; the write goes to a temporary file renamed over
/// `notes.json`, so a kill leaves the old or the new file, never a truncated one.
fn update<T>(
    ctx: &Ctx,
    change: impl FnOnce(&mut Store) -> Result<T, ToolError>,
) -> Result<T, ToolError> {
    let mut lock_path = path().into_os_string();
    lock_path.push(".lock");
    let _lock = ctx.fs().lock(PathBuf::from(lock_path))?;
    let mut store = load(ctx)?;
    let out = change(&mut store)?;
    let text = serde_json::to_string_pretty(&store).map_err(ToolError::handler)?;
    ctx.fs().write(path(), text.as_bytes())?;
    Ok(out)
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
    ctx: &Ctx,
    /// The note's title.
    title: String,
    /// The note's text.
    #[serde(default)]
    body: String,
) -> Result<Note, ToolError> {
    update(ctx, |store| {
        store.next_id += 1;
        let note = Note {
            id: store.next_id,
            title,
            body,
            pinned: false,
        };
        store.notes.push(note.clone());
        Ok(note)
    })
}

/// Reads one note.
#[capability(effects(read, filesystem))]
pub fn get_note(
    ctx: &Ctx,
    /// The note's id.
    id: u64,
) -> Result<Note, ToolError> {
    load(ctx)?
        .notes
        .into_iter()
        .find(|n| n.id == id)
        .ok_or_else(|| not_found(id))
}

/// Every note, oldest first.
#[capability(effects(read, filesystem))]
pub fn list_notes(ctx: &Ctx) -> Result<Vec<Note>, ToolError> {
    Ok(load(ctx)?.notes)
}

/// Changes a note's title; undo puts the old one back.
#[capability(effects(update, filesystem), undo = restore_title)]
pub fn rename_note(
    ctx: &Ctx,
    /// The note's id.
    id: u64,
    /// The new title.
    title: String,
) -> Result<Renamed, ToolError> {
    update(ctx, |store| {
        let note = note_mut(store, id)?;
        let old_title = std::mem::replace(&mut note.title, title.clone());
        Ok(Renamed {
            id,
            old_title,
            title,
        })
    })
}

/// What `rename_note` changed.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Renamed {
    pub id: u64,
    pub old_title: String,
    pub title: String,
}

fn restore_title(ctx: &Ctx, undo: &UndoCall) -> Result<(), ToolError> {
    let r: Renamed = serde_json::from_value(undo.result.clone()).map_err(ToolError::handler)?;
    update(ctx, |store| {
        note_mut(store, r.id)?.title = r.old_title;
        Ok(())
    })
}

/// Pins or unpins a note (a toggle); undo sets it back.
#[capability(effects(update, filesystem), undo = unpin)]
pub fn pin_note(
    ctx: &Ctx,
    /// The note's id.
    id: u64,
    /// Pin (true) or unpin (false).
    #[serde(default = "yes")]
    pinned: bool,
) -> Result<Value, ToolError> {
    update(ctx, |store| {
        let was = std::mem::replace(&mut note_mut(store, id)?.pinned, pinned);
        Ok(serde_json::json!({"id": id, "was": was, "pinned": pinned}))
    })
}

fn yes() -> bool {
    true
}

fn unpin(ctx: &Ctx, undo: &UndoCall) -> Result<(), ToolError> {
    let id = undo.result["id"].as_u64().ok_or_else(|| not_found(0))?;
    let was = undo.result["was"].as_bool().unwrap_or(false);
    update(ctx, |store| {
        note_mut(store, id)?.pinned = was;
        Ok(())
    })
}

/// Deletes a note; undo puts it back with the same id.
#[capability(effects(delete, filesystem), undo = put_back)]
pub fn delete_note(
    ctx: &Ctx,
    /// The note's id.
    id: u64,
) -> Result<Note, ToolError> {
    update(ctx, |store| {
        let at = store
            .notes
            .iter()
            .position(|n| n.id == id)
            .ok_or_else(|| not_found(id))?;
        Ok(store.notes.remove(at))
    })
}

fn put_back(ctx: &Ctx, undo: &UndoCall) -> Result<(), ToolError> {
    let note: Note = serde_json::from_value(undo.result.clone()).map_err(ToolError::handler)?;
    update(ctx, |store| {
        if !store.notes.iter().any(|n| n.id == note.id) {
            store.notes.push(note);
            store.notes.sort_by_key(|n| n.id);
        }
        Ok(())
    })
}

/// Deletes every note for good.
#[capability(
    effects(delete, filesystem),
    irreversible = "the notes are not kept anywhere"
)]
pub fn purge_notes(ctx: &Ctx) -> Result<usize, ToolError> {
    update(ctx, |store| {
        let n = store.notes.len();
        store.notes.clear();
        Ok(n)
    })
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

/// Counts one more of `label` and returns the new count (for load tests: thread-safe, in memory,
/// so the cost measured is the runtime's, not the notes file's); undo counts one less.
#[capability(effects(create), undo = inverse("untally", label = "$args.label"))]
pub fn tally(
    /// What is counted.
    label: String,
) -> Value {
    let mut counts = TALLIES.lock().unwrap_or_else(|p| p.into_inner());
    let n = counts.entry(label.clone()).or_insert(0);
    *n += 1;
    serde_json::json!({"label": label, "n": *n})
}

/// Counts one less of `label` (the undo of `tally`).
#[capability(effects(delete), irreversible = "a count taken back is not kept")]
pub fn untally(
    /// What is counted.
    label: String,
) -> Value {
    let mut counts = TALLIES.lock().unwrap_or_else(|p| p.into_inner());
    let n = counts.entry(label.clone()).or_insert(0);
    *n = n.saturating_sub(1);
    serde_json::json!({"label": label, "n": *n})
}

static TALLIES: std::sync::Mutex<std::collections::BTreeMap<String, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());
