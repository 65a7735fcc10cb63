//! How capabilities are described to people (`list`, `describe`) and to MCP clients (`_meta`).

use aifirst::{CapabilityDef, UndoDecl};
use serde_json::{json, Value};

/// Set once stdout is found closed: later writes are skipped.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes to stdout. A closed stdout (the reader of a pipe went away, as with `| head`) is not
/// an error: the rest of the output is dropped quietly and the command ends with the exit code
/// it would have had (a failed call still exits 1). Another write error is reported on stderr.
pub fn write_stdout(text: &str) {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            let _ = writeln!(std::io::stderr(), "error: cannot write to stdout: {e}");
        }
    }
}

/// One line saying how a capability is undone.
pub fn undo_summary(def: &CapabilityDef) -> String {
    let usual = undo_decl_summary(def);
    if def.irreversible_when.is_some() {
        return format!("{usual}; some calls cannot be undone and are asked about first");
    }
    usual
}

fn undo_decl_summary(def: &CapabilityDef) -> String {
    match def.undo {
        UndoDecl::Undeclared => "not needed".to_string(),
        UndoDecl::Function { path, .. } => format!("function {path}"),
        UndoDecl::Plan(_) => {
            let Some(p) = def.undo.plan() else {
                return String::new();
            };
            if p.kind == aifirst::UndoKind::FileSnapshot {
                let paths: Vec<String> = p.paths.iter().map(ToString::to_string).collect();
                return format!("file_snapshot: {}", paths.join(", "));
            }
            let args: Vec<String> = p.args.iter().map(|(k, e)| format!("{k} = {e}")).collect();
            let check = p
                .check
                .map(|c| format!(", after checking with {}", c.name))
                .unwrap_or_default();
            let target = p.target.map(|t| t.name).unwrap_or_default();
            format!("{}: {target}({}){check}", p.kind.as_str(), args.join(", "))
        }
        UndoDecl::Custom => "recorded by the handler".to_string(),
        UndoDecl::Irreversible { reason } => format!("irreversible: {reason}"),
    }
}

/// How sure the plan is, and why, for a capability with a data plan.
pub fn plan_confidence(def: &CapabilityDef) -> Option<(aifirst::Confidence, Vec<String>)> {
    def.undo.plan().map(|p| (p.confidence, p.evidence))
}

/// An undo's outcome as JSON, for `undo --json` and the MCP `undo` tool.
pub fn undo_report(r: &aifirst::UndoReport) -> Value {
    let mut v = json!({
        "undone": r.undone,
        "failed": r.failed.as_ref().map(|(step, why)| json!({"step": step, "reason": why})),
    });
    if !r.redone.is_empty() {
        v["redone"] = json!(r.redone);
    }
    if !r.planned.is_empty() {
        v["planned"] = serde_json::to_value(&r.planned).unwrap_or(Value::Null);
    }
    v
}

/// A checkpoint as JSON, for `checkpoint --json` and the MCP `checkpoint` tool.
pub fn checkpoint(name: &str, after_step: i64) -> Value {
    json!({"checkpoint": name, "after_step": after_step})
}

/// Everything `describe --json` prints about a capability.
pub fn describe(def: &CapabilityDef) -> Value {
    json!({
        "name": def.name,
        "description": def.description,
        "effects": def.effects,
        "idempotent": def.idempotent,
        "annotations": def.annotations(),
        "undo": undo_summary(def),
        "undo_confidence": plan_confidence(def).map(|(c, _)| c.as_str()),
        "undo_evidence": plan_confidence(def).map(|(_, e)| e),
        "irreversible": matches!(def.undo, UndoDecl::Irreversible { .. }),
        "some_calls_irreversible": def.irreversible_when.is_some(),
        "input_schema": def.input_schema().as_value(),
        "output_schema": def.output_schema().map(|s| s.as_value().clone()),
        "defined_at": def.location.to_string(),
    })
}

/// The first line of a description, cut to `max` characters.
pub fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    if line.chars().count() <= max {
        return line.to_string();
    }
    let mut out: String = line.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Left-aligned columns separated by two spaces.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < r.len() {
                let pad = widths[c].saturating_sub(cell.chars().count()) + 2;
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_cuts_on_characters() {
        assert_eq!(first_line("héllo wörld\nmore", 5), "héll…");
        assert_eq!(first_line("short", 10), "short");
        assert_eq!(first_line("", 10), "");
    }

    #[test]
    fn table_aligns() {
        let t = table(&[
            vec!["a".into(), "bb".into(), "c".into()],
            vec!["aaa".into(), "b".into(), "c".into()],
        ]);
        assert_eq!(t, "a    bb  c\naaa  b   c\n");
    }
}
