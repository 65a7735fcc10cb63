//! Capabilities of crate A: a create with a data-shaped inverse, an irreversible delete.

use std::collections::BTreeMap;
use std::sync::Mutex;

use aifirst::capability;
use schemars::JsonSchema;
use serde::Serialize;

static NOTES: Mutex<BTreeMap<u64, String>> = Mutex::new(BTreeMap::new());

/// A stored note.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Note {
    pub id: u64,
    pub title: String,
}

/// Creates a note.
#[capability(effects(create), undo = inverse("caps_a_delete_note", id = "$result.id"))]
pub fn caps_a_create_note(
    /// The note's title.
    title: String,
) -> Result<Note, String> {
    if title.trim().is_empty() {
        return Err("a note needs a title".into());
    }
    let mut notes = NOTES.lock().map_err(|e| e.to_string())?;
    let id = notes.keys().next_back().map_or(1, |k| k + 1);
    notes.insert(id, title.clone());
    Ok(Note { id, title })
}

/// Deletes a note for good.
#[capability(effects(delete), irreversible = "deleted notes are not kept")]
pub fn caps_a_delete_note(id: u64) -> bool {
    NOTES
        .lock()
        .map(|mut n| n.remove(&id).is_some())
        .unwrap_or(false)
}

/// Reads a note.
#[capability(effects(read))]
pub fn caps_a_get_note(id: u64) -> Option<String> {
    NOTES.lock().ok()?.get(&id).cloned()
}

/// Renames a note; undone by writing the old title back.
#[capability(
    effects(update),
    undo = restore("caps_a_rename_note", snapshot = "caps_a_get_note", id = "$args.id", title = "$snapshot", snapshot_args(id = "$args.id"), confidence = "medium", evidence = "the title is all a note has")
)]
pub fn caps_a_rename_note(id: u64, title: String) -> bool {
    NOTES
        .lock()
        .map(|mut n| n.insert(id, title).is_some())
        .unwrap_or(false)
}
