//! Capabilities of crate B: async, a context, a custom undo and a compensating function.

use std::collections::BTreeMap;
use std::sync::Mutex;

use aifirst::{capability, Ctx, ToolError, UndoCall};
use serde::Serialize;

static VALUES: Mutex<BTreeMap<String, i64>> = Mutex::new(BTreeMap::new());

/// The result of `caps_b_shout`; deliberately without a JSON Schema.
#[derive(Debug, Serialize)]
pub struct Shout {
    pub text: String,
}

/// Upper-cases text.
#[capability(effects(read))]
pub async fn caps_b_shout(
    /// What to shout.
    text: String,
    /// How many exclamation marks (default 1).
    marks: Option<u8>,
    /// Whisper instead.
    #[serde(default)]
    whisper: bool,
) -> Shout {
    let marks = "!".repeat(usize::from(marks.unwrap_or(1)));
    let text = if whisper {
        text.to_lowercase()
    } else {
        text.to_uppercase()
    };
    Shout {
        text: format!("{text}{marks}"),
    }
}

/// Sets a value, recording its own undo.
#[capability(effects(update), undo = custom)]
pub fn caps_b_set(ctx: &Ctx, key: String, value: i64) -> Option<i64> {
    let before = VALUES.lock().ok()?.insert(key.clone(), value);
    ctx.on_undo(move || {
        let mut values = VALUES.lock().map_err(|e| e.to_string())?;
        match before {
            Some(v) => values.insert(key, v),
            None => values.remove(&key),
        };
        Ok(())
    });
    before
}

/// Reads a value.
#[capability(effects(read))]
pub fn caps_b_get(key: String) -> Option<i64> {
    VALUES.lock().ok()?.get(&key).copied()
}

fn unbump(_ctx: &Ctx, call: &UndoCall) -> Result<(), ToolError> {
    let key = call.args["key"]
        .as_str()
        .ok_or_else(|| ToolError::handler("no key"))?;
    let mut values = VALUES.lock().map_err(ToolError::handler)?;
    *values.entry(key.to_string()).or_default() -= 1;
    Ok(())
}

/// Adds one to a value.
#[capability(effects(update), undo = unbump)]
pub fn caps_b_bump(key: String) -> i64 {
    let Ok(mut values) = VALUES.lock() else {
        return 0;
    };
    let v = values.entry(key).or_default();
    *v += 1;
    *v
}
