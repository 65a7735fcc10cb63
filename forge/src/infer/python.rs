//! The Python rules: effects and an undo plan from the calls the front end found in a function
//! (its [`PyFact`]s), and create/delete pairs by name.
//!
//! | found | effects | undo |
//! |---|---|---|
//! | nothing, or only reads | `read` (+ `filesystem`/`network`/`database` read) | `none` |
//! | file writes, deletes, moves, directories, each on a path from parameters | `update`/`delete`/`create` + `filesystem` | `file_snapshot` over those parameters |
//! | a file change on a path not from a parameter | as above | `irreversible`, naming the call |
//! | processes, network writes, mail, environment changes | `execute` + `process`/`network`/`environment` | `irreversible`, naming the call |
//! | code forge cannot read (`exec`, `getattr(os, op)`, a computed import, a body too deep or too large) | `execute` | `irreversible`, low confidence |
//! | database writes, or SQL whose text is not a literal | `update` + `database` | `inverse` when `create_x`/`add_x` has a `delete_x`/`remove_x` in the module, else `irreversible` |
//!
//! Precision first: one change the plan cannot reverse makes the whole call irreversible, so
//! policy decides, never a silent partial undo.

use std::collections::BTreeSet;

use aifirst_capability::{
    Annotations, CapabilityRef, Confidence, Effect, Expr, UndoKind, UndoPlan,
};
use serde_json::Value;

use crate::ir::{Capability, PyEffect, PyFact};

/// Words that name a create, and the words of the delete that reverses it.
const CREATE_WORDS: [&str; 6] = ["create", "add", "insert", "new", "make", "register"];
const DELETE_WORDS: [&str; 6] = ["delete", "remove", "drop", "destroy", "unregister", "del"];

fn effects_of(e: PyEffect) -> &'static [Effect] {
    match e {
        PyEffect::FileRead => &[Effect::Read, Effect::Filesystem],
        PyEffect::FileWrite | PyEffect::Move => &[Effect::Update, Effect::Filesystem],
        PyEffect::FileDelete | PyEffect::DirDelete | PyEffect::TreeDelete => {
            &[Effect::Delete, Effect::Filesystem]
        }
        PyEffect::DirCreate => &[Effect::Create, Effect::Filesystem],
        PyEffect::Process => &[Effect::Execute, Effect::Process],
        PyEffect::NetRead => &[Effect::Read, Effect::Network],
        PyEffect::NetWrite | PyEffect::Mail => &[Effect::Execute, Effect::Network],
        PyEffect::SqlRead => &[Effect::Read, Effect::Database],
        PyEffect::SqlWrite | PyEffect::SqlUnknown => &[Effect::Update, Effect::Database],
        PyEffect::EnvWrite => &[Effect::Update, Effect::Environment],
        PyEffect::Unseen => &[Effect::Execute],
    }
}

fn is_file_change(e: PyEffect) -> bool {
    matches!(
        e,
        PyEffect::FileWrite
            | PyEffect::FileDelete
            | PyEffect::DirCreate
            | PyEffect::DirDelete
            | PyEffect::TreeDelete
            | PyEffect::Move
    )
}

fn is_read(e: PyEffect) -> bool {
    matches!(
        e,
        PyEffect::FileRead | PyEffect::NetRead | PyEffect::SqlRead
    )
}

/// What a fact does, in words for evidence: "`shutil.rmtree` at line 12 (through `_purge`) on `root`".
fn said(f: &PyFact) -> String {
    let mut s = format!("`{}` at line {}", f.call, f.line);
    if let Some(v) = &f.via {
        s.push_str(&format!(" (through `{v}`)"));
    }
    if !f.params.is_empty() {
        let names: Vec<String> = f.params.iter().map(|p| format!("`{p}`")).collect();
        s.push_str(&format!(" on {}", names.join(", ")));
    }
    s
}

fn verb(e: PyEffect) -> &'static str {
    match e {
        PyEffect::FileRead => "reads files",
        PyEffect::FileWrite => "writes a file",
        PyEffect::FileDelete => "deletes a file",
        PyEffect::DirCreate => "makes a directory",
        PyEffect::DirDelete => "removes a directory",
        PyEffect::TreeDelete => "removes a directory tree",
        PyEffect::Move => "moves a file",
        PyEffect::Process => "runs a program",
        PyEffect::NetRead => "reads over the network",
        PyEffect::NetWrite => "sends over the network",
        PyEffect::Mail => "sends mail",
        PyEffect::SqlRead => "reads a database",
        PyEffect::SqlWrite => "writes a database",
        PyEffect::SqlUnknown => "runs SQL whose text is not a literal",
        PyEffect::EnvWrite => "changes the environment",
        PyEffect::Unseen => "runs code forge cannot read",
    }
}

/// Effects, annotations and an undo plan for every capability of `caps`, which are all
/// functions of one Python module or package.
pub(super) fn infer(caps: &mut [Capability]) {
    let pairs: Vec<Option<UndoPlan>> = (0..caps.len()).map(|i| inverse_by_name(caps, i)).collect();
    for (cap, pair) in caps.iter_mut().zip(pairs) {
        let facts: Vec<PyFact> = cap
            .binding
            .python()
            .map(|p| p.hints.facts.clone())
            .unwrap_or_default();
        let mut effects: BTreeSet<Effect> = facts
            .iter()
            .flat_map(|f| effects_of(f.effect).iter().copied())
            .collect();
        if effects.is_empty() {
            effects.insert(Effect::Read);
        }
        let changes: Vec<&PyFact> = facts.iter().filter(|f| !is_read(f.effect)).collect();
        let plan = if changes.is_empty() {
            let mut p = UndoPlan::bare(UndoKind::None, Confidence::High);
            p.evidence.push(if facts.is_empty() {
                "no call with a side effect found in the body or in the module functions it calls"
                    .to_string()
            } else {
                format!(
                    "reads only: {}",
                    facts.iter().map(said).collect::<Vec<_>>().join("; ")
                )
            });
            p
        } else {
            plan_for(&changes, pair)
        };
        // A path the plan keeps (or checks) whose default the runtime cannot see: a call that
        // leaves it out changes a path no argument names.
        let opaque: Vec<String> = cap
            .binding
            .python()
            .map(|p| p.hints.opaque_defaults.clone())
            .unwrap_or_default();
        let plan = match opaque.iter().find(|o| {
            plan.kind == UndoKind::FileSnapshot
                && plan
                    .paths
                    .iter()
                    .chain(&plan.relative)
                    .any(|e| e.to_string() == format!("$args.{o}"))
        }) {
            Some(o) => {
                let mut p = UndoPlan::irreversible(
                    format!(
                        "its path parameter `{o}` has a default forge cannot read (not a literal): a call that leaves it out would change a path the snapshot does not name"
                    ),
                    Confidence::High,
                );
                p.evidence = plan.evidence;
                p
            }
            None => plan,
        };
        let idempotent = changes.is_empty();
        cap.effects = effects.into_iter().collect();
        cap.annotations = Annotations::from_effects(&cap.effects, idempotent);
        cap.undo = Some(plan);
    }
}

fn plan_for(changes: &[&PyFact], pair: Option<UndoPlan>) -> UndoPlan {
    // The first change the snapshot cannot cover decides: not a file change, a path that does
    // not come from the parameters, or one derived from them so that it may lie outside them.
    let blocker = changes
        .iter()
        .find(|f| !is_file_change(f.effect) || f.params.is_empty() || !f.escapes.is_empty());
    if let Some(b) = blocker {
        let database_only = changes
            .iter()
            .all(|f| matches!(f.effect, PyEffect::SqlWrite | PyEffect::SqlUnknown));
        if let (true, Some(p)) = (database_only, pair) {
            return p;
        }
        let why = if is_file_change(b.effect) && !b.escapes.is_empty() {
            format!(
                "{} at a path derived from {} in a way that can lead outside it (a parent folder, a sibling, another suffix: {}), so a snapshot of the arguments would not cover it",
                verb(b.effect),
                b.escapes
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                said(b)
            )
        } else if b.effect == PyEffect::Unseen {
            format!(
                "{} ({}): it may change anything, so forge cannot plan its undo (if you know what it does, say so in forge.toml `[operations.<function>]`)",
                verb(b.effect),
                said(b)
            )
        } else if is_file_change(b.effect) {
            format!(
                "{} whose path does not come from the function's parameters ({}), so forge cannot say which files to keep",
                verb(b.effect),
                said(b)
            )
        } else {
            format!(
                "{} ({}), which cannot be taken back",
                verb(b.effect),
                said(b)
            )
        };
        // Code forge could not read leaves the effects themselves in doubt.
        let confidence = if changes.iter().any(|f| f.effect == PyEffect::Unseen) {
            Confidence::Low
        } else {
            Confidence::High
        };
        let mut p = UndoPlan::irreversible(why, confidence);
        p.evidence = changes.iter().map(|f| said(f)).collect();
        return p;
    }
    // The paths kept: every parameter a change's target lies inside. A parameter that is only
    // ever joined under another (`os.path.join(root, name)`) is not a path of its own: it must
    // stay inside the other, which the runtime checks (`relative`).
    let mut names: Vec<&str> = Vec::new();
    let mut relative: Vec<&str> = Vec::new();
    for f in changes {
        for p in &f.params {
            let seg = f.segments.contains(p);
            let list = if seg { &mut relative } else { &mut names };
            if !list.contains(&p.as_str()) {
                list.push(p);
            }
        }
    }
    relative.retain(|r| !names.contains(r));
    let via = changes.iter().any(|f| f.via.is_some());
    let mut plan = UndoPlan::bare(
        UndoKind::FileSnapshot,
        if via {
            Confidence::Medium
        } else {
            Confidence::High
        },
    );
    plan.paths = names
        .iter()
        .filter_map(|n| Expr::parse(&format!("$args.{n}")).ok())
        .collect();
    plan.relative = relative
        .iter()
        .filter_map(|n| Expr::parse(&format!("$args.{n}")).ok())
        .collect();
    let quoted = |list: &[&str]| {
        list.iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    plan.evidence = changes.iter().map(|f| said(f)).collect();
    plan.evidence.push(format!(
        "the files named by {} are kept before the call and written back on undo",
        quoted(&names)
    ));
    if !relative.is_empty() {
        plan.evidence.push(format!(
            "{} joined under them: a call where one is absolute or has a `..` is refused, so what it touches stays inside what is kept",
            quoted(&relative)
        ));
    }
    plan
}

/// `create_note(…)` beside `delete_note(note_id)`: an inverse that deletes what was created,
/// with the id from the result — the result itself when it is a scalar, or its field of the
/// delete's parameter name (or `id`) when it is an object that has one.
fn inverse_by_name(caps: &[Capability], i: usize) -> Option<UndoPlan> {
    let me = caps.get(i)?.binding.python()?;
    let (verb, rest) = me.function.split_once('_')?;
    if !CREATE_WORDS.contains(&verb) || rest.is_empty() {
        return None;
    }
    let target = caps.iter().find(|c| {
        c.binding.python().is_some_and(|p| {
            p.module == me.module
                && p.function
                    .split_once('_')
                    .is_some_and(|(v, r)| DELETE_WORDS.contains(&v) && r == rest)
        })
    })?;
    let tp = target.binding.python()?;
    let required: Vec<&str> = target
        .input_schema
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let [param] = required.as_slice() else {
        return None;
    };
    let out = caps.get(i)?.output_schema_value()?;
    let ty = out.get("type").and_then(Value::as_str);
    let expr = match ty {
        Some("integer" | "string") => "$result".to_string(),
        Some("object") => {
            let props = out.get("properties").and_then(Value::as_object)?;
            let field = [*param, "id"]
                .into_iter()
                .find(|f| props.contains_key(*f))?;
            format!("$result.{field}")
        }
        _ => return None,
    };
    let mut plan = UndoPlan::bare(UndoKind::Inverse, Confidence::Medium);
    plan.target = Some(CapabilityRef {
        name: target.name.clone(),
        operation_id: target.operation_id.clone(),
    });
    plan.args
        .insert((*param).to_string(), Expr::parse(&expr).ok()?);
    plan.evidence.push(format!(
        "`{}` in the same module deletes what `{}` creates; its `{param}` is {expr}",
        tp.function, me.function
    ));
    Some(plan)
}
