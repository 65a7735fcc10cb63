//! Overrides of inferred effects, annotations and undo plans: `forge.toml` and spec extensions.
//!
//! ```toml
//! # forge.toml
//! [operations.createPet]          # operationId or capability name
//! effects = ["create", "network"]
//! idempotent = false
//! annotations = { destructiveHint = false }
//! undo = { kind = "inverse", target = "deletePet", args = { petId = "$result.id" } }
//!
//! [operations.chargeCard]
//! undo = "irreversible"           # or { kind = "irreversible", reason = "moves money" }
//! ```
//! The same shapes are read from `x-aifirst-effects` (a list or a comma-separated string),
//! `x-aifirst-undo` and `x-mcp-annotations` on an operation.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use aifirst_capability::{
    Annotations, CapabilityRef, Confidence, Effect, Expr, Guard, UndoKind, UndoPlan,
};
use serde::Deserialize;
use serde_json::Value;

use crate::diag::{push_token, Diagnostic, Location, Severity};
use crate::ir::Capability;

/// Project configuration: overrides by operationId or capability name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    #[serde(default)]
    pub operations: BTreeMap<String, OpOverride>,
    /// A generated crate's `forge.toml` also records how it was imported (read by `forge import
    /// --update`, ignored here).
    #[serde(default)]
    pub import: Option<toml::Table>,
    /// The file they came from, for diagnostics.
    #[serde(skip)]
    pub file: String,
}

/// What one operation's override says; absent fields leave inference alone.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpOverride {
    pub effects: Option<Value>,
    pub idempotent: Option<bool>,
    pub annotations: Option<BTreeMap<String, bool>>,
    pub undo: Option<Value>,
    /// Where it was written (file and pointer), for diagnostics and evidence.
    #[serde(skip)]
    pub origin: Option<Location>,
}

/// A `forge.toml` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Toml { path: String, message: String },
}

impl Overrides {
    /// Reads `forge.toml`.
    pub fn load(path: &Path) -> Result<Overrides, ConfigError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: display.clone(),
            source,
        })?;
        Overrides::parse(&text, &display)
    }

    pub fn parse(text: &str, file: &str) -> Result<Overrides, ConfigError> {
        let mut o: Overrides = toml::from_str(text).map_err(|e| ConfigError::Toml {
            path: file.to_string(),
            message: e.to_string(),
        })?;
        o.file = file.to_string();
        for (k, op) in o.operations.iter_mut() {
            op.origin = Some(Location {
                file: file.to_string(),
                pointer: push_token("/operations", k),
                line: None,
            });
        }
        Ok(o)
    }

    pub(crate) fn for_capability(&self, cap: &Capability) -> Option<&OpOverride> {
        cap.operation_id
            .as_deref()
            .and_then(|id| self.operations.get(id))
            .or_else(|| self.operations.get(&cap.name))
    }
}

/// Capability references by name and by operationId.
pub(crate) struct NameTable(HashMap<String, CapabilityRef>);

impl NameTable {
    pub fn new(caps: &[Capability]) -> Self {
        let mut m = HashMap::new();
        for c in caps {
            let r = CapabilityRef {
                name: c.name.clone(),
                operation_id: c.operation_id.clone(),
            };
            if let Some(id) = &c.operation_id {
                m.entry(id.clone()).or_insert_with(|| r.clone());
            }
            m.insert(c.name.clone(), r);
        }
        NameTable(m)
    }

    fn get(&self, s: &str) -> Option<CapabilityRef> {
        self.0.get(s).cloned()
    }
}

/// The override written on the operation itself, if any.
pub(crate) fn from_extensions(cap: &Capability, _diags: &mut [Diagnostic]) -> Option<OpOverride> {
    let h = &cap.declared;
    if !h.any() {
        return None;
    }
    let annotations = h.annotations.as_ref().and_then(Value::as_object).map(|m| {
        m.iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_bool()?)))
            .collect()
    });
    Some(OpOverride {
        effects: h.effects.clone(),
        idempotent: None,
        annotations,
        undo: h.undo.clone(),
        origin: Some(Location {
            file: cap.source.file.clone(),
            pointer: cap.source.pointer.clone(),
            line: cap.source.line,
        }),
    })
}

/// A Python module's own `@capability` decorator, and a description's `x-aifirst-*` /
/// `x-mcp-annotations` extensions, may make a capability's plan stricter, never looser than
/// forge found: both are untrusted input, and a decorator that calls a function with
/// `os.remove` in it read-only, or an extension that calls a `DELETE` a read (or gives an
/// irreversible call a compensation of its choosing), would take it past `forge check` and the
/// runtime's confirmation unrecorded. Only the project's `forge.toml` (the operator's word) may
/// do that. What would loosen is dropped, with a warning naming where it was written.
pub(crate) fn vet_untrusted(cap: &Capability, o: &mut OpOverride, diags: &mut Vec<Diagnostic>) {
    let python = cap.binding.python().is_some();
    let mutating = cap.effects.iter().any(|e| e.is_mutating());
    let plan = cap.undo.as_ref();
    let shown = plan
        .and_then(|p| p.evidence.first().cloned().or_else(|| p.reason.clone()))
        .unwrap_or_default();
    let mut refused: Vec<&str> = Vec::new();
    if mutating {
        // Effects: only added to. Every effect the code shows stays; `idempotent` is a promise
        // about the code forge cannot check.
        if let Some(e) = &o.effects {
            let names = effect_names(e).unwrap_or_default();
            let declared: Vec<Effect> = names.iter().filter_map(|n| Effect::parse(n)).collect();
            if !cap.effects.iter().all(|e| declared.contains(e)) {
                o.effects = None;
                refused.push("effects");
            } else if names.iter().any(|n| n == "idempotent") {
                o.effects = Some(Value::Array(
                    names
                        .into_iter()
                        .filter(|n| n != "idempotent")
                        .map(Value::String)
                        .collect(),
                ));
                refused.push("idempotent");
            }
        }
        if o.idempotent == Some(true) {
            o.idempotent = None;
            refused.push("idempotent");
        }
        // Undo: irreversible, or a snapshot of at least the paths forge found.
        if let Some(u) = &o.undo {
            let list = |m: &serde_json::Map<String, Value>, key: &str| -> Vec<String> {
                m.get(key)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let (kind, paths, relative) = match u {
                Value::String(s) => (Some(s.as_str()), Vec::new(), Vec::new()),
                Value::Object(m) => (
                    m.get("kind").and_then(Value::as_str),
                    list(m, "paths"),
                    list(m, "relative"),
                ),
                _ => (None, Vec::new(), Vec::new()),
            };
            let covers = match (kind, plan) {
                (Some("irreversible"), _) => true,
                // A description's compensation is a call of its choosing, run on undo: only
                // the operator's forge.toml may name one.
                _ if !python => false,
                (Some("file_snapshot"), Some(p)) if p.kind == UndoKind::FileSnapshot => {
                    p.paths
                        .iter()
                        .all(|inferred| paths.contains(&inferred.to_string()))
                        && p.relative
                            .iter()
                            .all(|inferred| relative.contains(&inferred.to_string()))
                }
                _ => false,
            };
            if !covers {
                o.undo = None;
                refused.push("undo");
            }
        }
    }
    // Hints: never less cautious than the code shows.
    if let Some(a) = &mut o.annotations {
        let ours = &cap.annotations;
        let before = a.len();
        a.retain(|k, v| match (k.as_str(), *v) {
            ("readOnlyHint", true) => ours.read_only_hint == Some(true),
            ("destructiveHint", false) => ours.destructive_hint != Some(true),
            ("idempotentHint", true) => ours.idempotent_hint == Some(true),
            ("openWorldHint", false) => ours.open_world_hint != Some(true),
            _ => true,
        });
        if a.len() != before {
            refused.push("annotations");
        }
    }
    if refused.is_empty() {
        return;
    }
    refused.dedup();
    let location = o.origin.clone().unwrap_or(Location {
        file: cap.source.file.clone(),
        pointer: cap.source.pointer.clone(),
        line: cap.source.line,
    });
    diags.push(
        Diagnostic::new(
            Severity::Warning,
            "unsafe-override",
            format!(
                "`{}`: {} {} looser than {}{}; {} cannot vouch for itself, so forge keeps what it found",
                cap.name,
                if python {
                    "its @capability decorator sets"
                } else {
                    "the description's extensions set"
                },
                refused.join(" and "),
                if python {
                    "its code shows"
                } else {
                    "forge infers from the operation"
                },
                if shown.is_empty() {
                    String::new()
                } else {
                    format!(" ({shown})")
                },
                if python { "a module" } else { "a description" }
            ),
            location,
        )
        .with_help(format!(
            "if the {} is right, say so in the project's forge.toml: [operations.{}]",
            if python { "decorator" } else { "extension" },
            cap.name
        )),
    );
}

fn bad(diags: &mut Vec<Diagnostic>, o: &OpOverride, cap: &Capability, message: String) {
    let location = o.origin.clone().unwrap_or(Location {
        file: cap.source.file.clone(),
        pointer: cap.source.pointer.clone(),
        line: cap.source.line,
    });
    diags.push(
        Diagnostic::new(Severity::Warning, "bad-override", message, location)
            .with_help("see docs/INFERENCE.md for the override format"),
    );
}

pub(crate) fn apply(
    cap: &mut Capability,
    o: &OpOverride,
    names: &NameTable,
    diags: &mut Vec<Diagnostic>,
) {
    let origin = match &o.origin {
        Some(l) if l.file.ends_with(".toml") => {
            format!("{} [{}]", l.file, l.pointer.trim_start_matches('/'))
        }
        _ if cap.binding.python().is_some() => "its @capability decorator".to_string(),
        _ => "the operation's x-aifirst extensions".to_string(),
    };
    let mut idempotent = o
        .idempotent
        .unwrap_or(cap.annotations.idempotent_hint.unwrap_or(false));
    if let Some(e) = &o.effects {
        let list = effect_names(e).unwrap_or_else(|| {
            bad(
                diags,
                o,
                cap,
                format!("`{}`: effects must be a list of names", cap.name),
            );
            Vec::new()
        });
        let mut effects = Vec::new();
        for name in &list {
            if name == "idempotent" {
                idempotent = true;
            } else if let Some(eff) = Effect::parse(name) {
                effects.push(eff);
            } else {
                bad(
                    diags,
                    o,
                    cap,
                    format!("`{}`: unknown effect `{name}`", cap.name),
                );
            }
        }
        if !effects.is_empty() {
            effects.sort();
            effects.dedup();
            cap.effects = effects;
        }
    }
    if o.effects.is_some() || o.idempotent.is_some() {
        cap.annotations = Annotations::from_effects(&cap.effects, idempotent);
    }
    // Declared read-only: nothing to undo, whatever inference guessed.
    if o.effects.is_some() && o.undo.is_none() && !cap.effects.iter().any(|e| e.is_mutating()) {
        let mut plan = UndoPlan::bare(UndoKind::None, Confidence::High);
        plan.evidence = vec![format!("read-only as set by {origin}")];
        cap.undo = Some(plan);
    }
    if let Some(a) = &o.annotations {
        for (k, v) in a {
            let slot = match k.as_str() {
                "readOnlyHint" => &mut cap.annotations.read_only_hint,
                "destructiveHint" => &mut cap.annotations.destructive_hint,
                "idempotentHint" => &mut cap.annotations.idempotent_hint,
                "openWorldHint" => &mut cap.annotations.open_world_hint,
                other => {
                    bad(
                        diags,
                        o,
                        cap,
                        format!("`{}`: unknown annotation `{other}`", cap.name),
                    );
                    continue;
                }
            };
            *slot = Some(*v);
        }
    }
    if let Some(u) = &o.undo {
        match parse_undo(u, names) {
            Ok(mut plan) => {
                plan.evidence = vec![format!("set by {origin}")];
                cap.undo = Some(plan);
            }
            Err(e) => bad(
                diags,
                o,
                cap,
                format!("`{}`: undo override ignored: {e}", cap.name),
            ),
        }
    }
}

/// The names an override's `effects` gives: a list, or a comma-separated string; `None` for
/// anything else.
fn effect_names(e: &Value) -> Option<Vec<String>> {
    match e {
        Value::String(s) => Some(
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect(),
        ),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
        ),
        _ => None,
    }
}

/// A list of expressions under `key` (`paths`, `relative`), each parsed; absent: empty.
fn expr_list(
    m: &serde_json::Map<String, Value>,
    key: &str,
    example: &str,
) -> Result<Vec<Expr>, String> {
    match m.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|p| {
                let text = p.as_str().ok_or_else(|| {
                    format!("each of `{key}` must be an expression such as \"{example}\"")
                })?;
                Expr::parse(text).map_err(|e| format!("{key}: `{text}`: {e}"))
            })
            .collect(),
        Some(_) => Err(format!(
            "`{key}` must be a list of expressions such as \"{example}\""
        )),
    }
}

/// A table of argument expressions, each parsed (a bad one is an error naming it).
fn expr_map(v: Option<&Value>) -> Result<BTreeMap<String, Expr>, String> {
    match v {
        None => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Expr::parse(s)
                    .map(|e| (k.clone(), e))
                    .map_err(|e| format!("argument `{k}`: {e}")),
                other => Err(format!(
                    "argument `{k}` must be an expression string, not {other}"
                )),
            })
            .collect(),
        Some(_) => Err("arguments must be a table of expressions".into()),
    }
}

fn parse_undo(v: &Value, names: &NameTable) -> Result<UndoPlan, String> {
    let (kind_text, obj) = match v {
        Value::String(s) => (s.as_str(), None),
        Value::Object(m) => (
            m.get("kind")
                .and_then(Value::as_str)
                .ok_or("an undo table needs `kind`")?,
            Some(m),
        ),
        _ => return Err("undo must be a kind name or a table".into()),
    };
    let kind =
        UndoKind::parse(kind_text).ok_or_else(|| format!("unknown undo kind `{kind_text}`"))?;
    let mut plan = UndoPlan::bare(kind, Confidence::High);
    let Some(m) = obj else {
        if matches!(
            kind,
            UndoKind::Inverse | UndoKind::Restore | UndoKind::Recreate
        ) {
            return Err(format!("`{kind_text}` needs a target"));
        }
        if kind == UndoKind::Irreversible {
            plan.reason = Some("declared irreversible".into());
        }
        if kind == UndoKind::FileSnapshot {
            return Err(
                "`file_snapshot` needs `paths` (expressions such as \"$args.path\")".into(),
            );
        }
        return Ok(plan);
    };
    let lookup = |key: &str| -> Result<Option<CapabilityRef>, String> {
        match m.get(key).and_then(Value::as_str) {
            None => Ok(None),
            Some(n) => names
                .get(n)
                .map(Some)
                .ok_or_else(|| format!("no capability or operationId `{n}`")),
        }
    };
    plan.target = lookup("target")?;
    plan.snapshot = lookup("snapshot")?;
    plan.args = expr_map(m.get("args"))?;
    plan.snapshot_args = expr_map(m.get("snapshot_args"))?;
    plan.reason = m.get("reason").and_then(Value::as_str).map(str::to_string);
    plan.paths = expr_list(m, "paths", "$args.path")?;
    plan.relative = expr_list(m, "relative", "$args.name")?;
    if let Some(c) = m.get("confidence").and_then(Value::as_str) {
        plan.confidence = match c {
            "high" => Confidence::High,
            "medium" => Confidence::Medium,
            "low" => Confidence::Low,
            other => return Err(format!("unknown confidence `{other}`")),
        };
    }
    if let Some(g) = m.get("guard").and_then(Value::as_str) {
        plan.guard = Some(match g {
            "snapshot_absent" => Guard::SnapshotAbsent,
            "snapshot_present" => Guard::SnapshotPresent,
            other => return Err(format!("unknown guard `{other}`")),
        });
    }
    if matches!(
        kind,
        UndoKind::Inverse | UndoKind::Restore | UndoKind::Recreate
    ) && plan.target.is_none()
    {
        return Err(format!("`{kind_text}` needs a target"));
    }
    if matches!(kind, UndoKind::Restore | UndoKind::Recreate) && plan.snapshot.is_none() {
        return Err(format!("`{kind_text}` needs a snapshot"));
    }
    if kind == UndoKind::Irreversible && plan.reason.is_none() {
        plan.reason = Some("declared irreversible".into());
    }
    if kind == UndoKind::FileSnapshot && plan.paths.is_empty() {
        return Err("`file_snapshot` needs `paths` (expressions such as \"$args.path\")".into());
    }
    Ok(plan)
}
