//! The engine end to end: validation, policy, the journal, every kind of undo, across engines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aifirst::{
    capability, CallError, CallOptions, Ctx, Engine, Policy, Registry, Rule, StepUndo, ToolError,
    UndoCall,
};
use serde_json::{json, Value};

mod common;
use common::block_on;

/// A store shared by the capabilities below (per test binary; tests use distinct keys).
static STORE: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

fn store() -> std::sync::MutexGuard<'static, BTreeMap<String, String>> {
    STORE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Creates an entry.
#[capability(effects(create), undo = inverse("remove", key = "$result.key"))]
fn put(key: String, value: String) -> Value {
    store().insert(key.clone(), value);
    json!({ "key": key })
}

/// Removes an entry.
#[capability(effects(delete), irreversible = "removed entries are gone")]
fn remove(key: String) -> bool {
    store().remove(&key).is_some()
}

/// Reads an entry.
#[capability(effects(read))]
fn get(key: String) -> Option<String> {
    store().get(&key).cloned()
}

/// Changes an entry; undone by writing the old value back.
#[capability(effects(update), undo = restore("set", snapshot = "get", key = "$args.key", value = "$snapshot"))]
fn set(key: String, value: Option<String>) -> Result<(), String> {
    let mut s = store();
    match value {
        Some(v) => s.insert(key, v),
        None => s.remove(&key),
    };
    Ok(())
}

fn unappend(_ctx: &Ctx, call: &UndoCall) -> Result<(), ToolError> {
    let key = call.args["key"].as_str().unwrap_or_default();
    let n = call.args["suffix"].as_str().unwrap_or_default().len();
    let mut s = store();
    if let Some(v) = s.get_mut(key) {
        v.truncate(v.len().saturating_sub(n));
    }
    Ok(())
}

/// Appends to an entry.
#[capability(effects(update), undo = unappend)]
fn append(key: String, suffix: String) -> String {
    let mut s = store();
    let v = s.entry(key).or_default();
    v.push_str(&suffix);
    v.clone()
}

/// Upper-cases an entry, remembering how to go back in a closure.
#[capability(effects(update), undo = custom)]
fn shout(ctx: &Ctx, key: String) -> bool {
    let mut s = store();
    let Some(v) = s.get_mut(&key) else {
        return false;
    };
    let old = v.clone();
    *v = v.to_uppercase();
    ctx.on_undo(move || {
        store().insert(key, old);
        Ok(())
    });
    true
}

/// Configures something from a structured value.
#[capability(effects(read))]
fn configure(options: BTreeMap<String, u32>, tags: Vec<String>) -> usize {
    options.len() + tags.len()
}

/// Moves an entry to the key its body names (a rename, as `PATCH /api/contents/{path}` with
/// `{"path": new}`); undone by the same call on the new key with the old one, the old key put
/// inside the body through a JSON-pointer argument name.
#[capability(
    effects(update),
    undo = inverse("move_entry", "key" = "$args.body.to", "/body/to" = "$args.key")
)]
fn move_entry(key: String, body: BTreeMap<String, String>) -> Result<(), String> {
    let to = body.get("to").ok_or("body.to is required")?;
    let mut s = store();
    let v = s.remove(&key).ok_or("no such key")?;
    s.insert(to.clone(), v);
    Ok(())
}

/// A tool whose schema forge pruned to the token budget: `root` was a recursive tree, now an
/// open object that names its fields (what `forge inspect --max-tool-tokens` emits).
#[capability(
    effects(read),
    input_schema = r#"{"type":"object","required":["species","root"],"properties":{"species":{"type":"string","enum":["oak","yew"]},"root":{"type":"object","description":"One node of the tree. Fields of a `Node` not shown, to keep the tool small: kind, length_cm, children; any value of this type is accepted."}}}"#
)]
fn plant(args: Value) -> Value {
    json!({ "depth": depth(&args["root"]) })
}

fn depth(node: &Value) -> usize {
    1 + node["children"]
        .as_array()
        .map_or(0, |c| c.iter().map(depth).max().unwrap_or(0))
}

fn engine(dir: &std::path::Path, policy: Policy) -> Engine {
    Engine::open(Registry::new().unwrap(), policy, dir).unwrap()
}

fn call(e: &Engine, session: &str, name: &str, args: Value) -> Result<Value, CallError> {
    block_on(e.call(session, name, args, CallOptions::default()))
}

fn value(key: &str) -> Option<String> {
    store().get(key).cloned()
}

#[test]
fn inverse_restore_function_and_closure_plans_undo_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Policy::default());
    call(&e, "s1", "put", json!({"key": "a", "value": "x"})).unwrap();
    call(&e, "s1", "set", json!({"key": "a", "value": "y"})).unwrap();
    call(&e, "s1", "append", json!({"key": "a", "suffix": "zz"})).unwrap();
    call(&e, "s1", "shout", json!({"key": "a"})).unwrap();
    assert_eq!(value("a").as_deref(), Some("YZZ"));
    let kinds: Vec<&'static str> = e
        .history("s1")
        .unwrap()
        .iter()
        .map(|s| match s.undo {
            StepUndo::Calls { .. } => "calls",
            StepUndo::Function { .. } => "function",
            StepUndo::InProcess { .. } => "in_process",
            StepUndo::Irreversible { .. } => "irreversible",
            StepUndo::Files { .. } => "files",
            StepUndo::Pending => "pending",
        })
        .collect();
    assert_eq!(kinds, ["calls", "calls", "function", "in_process"]);

    let r = block_on(e.undo("s1", 1)).unwrap();
    assert_eq!((r.undone.len(), r.failed.clone()), (1, None));
    assert_eq!(value("a").as_deref(), Some("yzz"), "closure undone");
    block_on(e.undo("s1", 1)).unwrap();
    assert_eq!(value("a").as_deref(), Some("y"), "function undone");
    block_on(e.undo("s1", 1)).unwrap();
    assert_eq!(value("a").as_deref(), Some("x"), "snapshot restored");
    // The inverse of `put` is `remove`, which policy refuses when an agent calls it (irreversible);
    // run as a compensation it is part of an undo the caller asked for, so it runs.
    block_on(e.undo("s1", 1)).unwrap();
    assert_eq!(value("a"), None, "inverse ran");
    assert!(
        block_on(e.undo("s1", 1)).unwrap().undone.is_empty(),
        "nothing left"
    );
}

#[test]
fn a_failed_undo_stops_and_keeps_the_stack() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(
        dir.path(),
        Policy {
            allow_irreversible: true,
            ..Policy::default()
        },
    );
    call(&e, "s2", "put", json!({"key": "b", "value": "1"})).unwrap();
    call(&e, "s2", "remove", json!({"key": "b"})).unwrap();
    call(&e, "s2", "put", json!({"key": "c", "value": "2"})).unwrap();
    let r = block_on(e.undo("s2", 3)).unwrap();
    assert_eq!(r.undone.len(), 1, "the newest step was undone");
    let (_, why) = r.failed.expect("the irreversible step stops the undo");
    assert!(why.contains("cannot be undone"), "{why}");
    assert_eq!(
        e.history("s2")
            .unwrap()
            .iter()
            .filter(|s| s.state == aifirst::StepState::Done)
            .count(),
        2
    );
}

#[test]
fn checkpoints_bound_an_undo() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Policy::default());
    call(&e, "s3", "put", json!({"key": "d1", "value": "1"})).unwrap();
    e.checkpoint("s3", "before-batch").unwrap();
    call(&e, "s3", "put", json!({"key": "d2", "value": "2"})).unwrap();
    call(&e, "s3", "put", json!({"key": "d3", "value": "3"})).unwrap();
    let r = block_on(e.undo_to("s3", "before-batch")).unwrap();
    assert_eq!(r.undone.len(), 2);
    assert_eq!(
        (value("d1").is_some(), value("d2"), value("d3")),
        (true, None, None)
    );
    match block_on(e.undo_to("s3", "nope")) {
        Err(e @ CallError::NoCheckpoint(_)) => {
            assert_eq!(
                e.to_string(),
                "no checkpoint `nope` in this session (see `history`)"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn arguments_are_validated_and_leniently_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Policy::default());
    match call(&e, "s4", "put", json!({"key": "k", "value": 3})) {
        Err(CallError::InvalidArguments { field, .. }) => assert_eq!(field, "/value"),
        other => panic!("{other:?}"),
    }
    match call(&e, "s4", "put", json!({"key": "k"})) {
        Err(CallError::InvalidArguments { message, .. }) => {
            assert!(message.contains("value"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // An object and an array sent as JSON strings, as LLM clients do.
    let n = call(
        &e,
        "s4",
        "configure",
        json!({"options": "{\"a\": 1, \"b\": 2}", "tags": "[\"x\"]"}),
    )
    .unwrap();
    assert_eq!(n, json!(3));
    assert!(matches!(
        call(&e, "s4", "nope", json!({})),
        Err(CallError::Unknown(_))
    ));
    assert!(
        e.history("s4").unwrap().is_empty(),
        "reads and refusals leave no steps"
    );
}

#[test]
fn policy_refuses_irreversible_denied_and_unconfirmed_calls() {
    let dir = tempfile::tempdir().unwrap();
    // By default an irreversible call needs the caller's confirmation, each time.
    let e = engine(dir.path(), Policy::default());
    assert!(
        matches!(call(&e, "s5", "remove", json!({"key": "x"})), Err(CallError::NeedsConfirmation(why)) if why.contains("cannot be undone"))
    );
    // deny_irreversible refuses it outright.
    let e = engine(
        dir.path(),
        Policy {
            deny_irreversible: true,
            ..Policy::default()
        },
    );
    assert!(
        matches!(call(&e, "s5", "remove", json!({"key": "x"})), Err(CallError::Denied(why)) if why.contains("cannot be undone"))
    );
    let strict = Policy {
        effects: [
            (aifirst::Effect::Update, Rule::Confirm),
            (aifirst::Effect::Create, Rule::Deny),
        ]
        .into(),
        capabilities: [("remove".to_string(), Rule::Allow)].into(),
        allow_irreversible: false,
        deny_irreversible: true,
        confirm_below: None,
    };
    let e = engine(dir.path(), strict);
    assert!(matches!(
        call(&e, "s5", "put", json!({"key": "p", "value": "v"})),
        Err(CallError::Denied(_))
    ));
    assert!(matches!(
        call(&e, "s5", "append", json!({"key": "p", "suffix": "v"})),
        Err(CallError::NeedsConfirmation(_))
    ));
    block_on(e.call(
        "s5",
        "append",
        json!({"key": "p", "suffix": "v"}),
        CallOptions {
            confirmed: true,
            ..CallOptions::default()
        },
    ))
    .unwrap();
    call(&e, "s5", "remove", json!({"key": "p"})).unwrap();
}

#[test]
fn a_new_engine_undoes_journaled_steps_and_reports_lost_closures() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = engine(dir.path(), Policy::default());
        call(&e, "s6", "put", json!({"key": "e", "value": "v"})).unwrap();
        call(&e, "s6", "shout", json!({"key": "e"})).unwrap();
    }
    // A new engine on the same state directory: what a new process sees.
    let e = engine(dir.path(), Policy::default());
    assert_eq!(e.history("s6").unwrap().len(), 2);
    let r = block_on(e.undo("s6", 2)).unwrap();
    assert!(r.undone.is_empty());
    let (_, why) = r.failed.unwrap();
    assert!(
        why.contains("in-process compensation"),
        "never silently dropped: {why}"
    );
    // Nothing was dropped: both steps are still pending, for a person to decide about.
    assert_eq!(
        e.history("s6")
            .unwrap()
            .iter()
            .filter(|s| s.state == aifirst::StepState::Done)
            .count(),
        2
    );
}

#[derive(Default)]
struct Log(Mutex<Vec<String>>);

impl aifirst::Recorder for Log {
    fn call(&self, ev: &aifirst::CallEvent<'_>) -> Result<(), String> {
        let outcome = match &ev.error {
            None => ev.status.as_str().to_string(),
            Some(e) => format!("{}: {e}", ev.status.as_str()),
        };
        self.0.lock().unwrap().push(format!(
            "call {} {} step={:?} {outcome}",
            ev.session,
            ev.capability,
            ev.step.is_some()
        ));
        Ok(())
    }
    fn undo(&self, ev: &aifirst::UndoEvent<'_>) -> Result<(), String> {
        self.0
            .lock()
            .unwrap()
            .push(format!("undo {} {}", ev.session, ev.phase.as_str()));
        Ok(())
    }
}

#[test]
fn every_call_and_undo_passes_through_the_recorder() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let e = engine(dir.path(), Policy::default()).with_recorder(log.clone());
    call(&e, "rec", "put", json!({"key": "r1", "value": "v"})).unwrap();
    call(&e, "rec", "get", json!({"key": "r1"})).unwrap();
    let _ = call(&e, "rec", "remove", json!({"key": "r1"}));
    let _ = call(&e, "rec", "put", json!({"key": 1}));
    block_on(e.undo("rec", 1)).unwrap();
    let lines = log.0.lock().unwrap().clone();
    assert_eq!(lines.len(), 7, "{lines:#?}");
    // Intent before the call, outcome after; the status is typed, not read off the message. A
    // read of this process's own state has its outcome alone.
    assert_eq!(lines[0], "call rec put step=true started");
    assert_eq!(lines[1], "call rec put step=true ok");
    assert_eq!(lines[2], "call rec get step=false ok");
    assert!(
        lines[3].starts_with("call rec remove step=false refused: needs confirmation"),
        "{}",
        lines[3]
    );
    assert!(
        lines[4].starts_with("call rec put step=false invalid: invalid arguments"),
        "{}",
        lines[4]
    );
    assert_eq!(lines[5], "undo rec undo_started");
    assert_eq!(lines[6], "undo rec undone");
}

#[test]
fn the_state_directory_comes_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // Only this test reads AIFIRST_STATE_DIR in this binary.
    std::env::set_var("AIFIRST_STATE_DIR", &state);
    assert_eq!(aifirst::default_state_dir(), state);
    let e = Engine::open_default(Registry::new().unwrap(), Policy::default()).unwrap();
    call(&e, "env", "put", json!({"key": "env1", "value": "v"})).unwrap();
    assert!(state.join("journal.sqlite3").is_file());
    std::env::remove_var("AIFIRST_STATE_DIR");
    assert_eq!(
        aifirst::default_state_dir(),
        std::path::PathBuf::from(".aifirst")
    );
}

#[test]
fn many_sessions_in_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let e = Arc::new(engine(dir.path(), Policy::default()));
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                let session = format!("par{t}");
                for i in 0..25 {
                    call(
                        &e,
                        &session,
                        "put",
                        json!({"key": format!("par{t}-{i}"), "value": "v"}),
                    )
                    .unwrap();
                }
                let r = block_on(e.undo(&session, 25)).unwrap();
                assert_eq!(r.undone.len(), 25);
                assert!(r.failed.is_none());
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(
        store().keys().all(|k| !k.starts_with("par")),
        "every session undid its own steps"
    );
    for t in 0..8 {
        assert_eq!(e.history(&format!("par{t}")).unwrap().len(), 25);
    }
}

#[test]
fn an_inverse_can_put_a_value_inside_an_object_argument() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Policy::default());
    call(&e, "mv", "put", json!({"key": "mv-old", "value": "kept"})).unwrap();
    call(
        &e,
        "mv",
        "move_entry",
        json!({"key": "mv-old", "body": {"to": "mv-new"}}),
    )
    .unwrap();
    assert_eq!(value("mv-old"), None);
    assert_eq!(value("mv-new").as_deref(), Some("kept"));
    // From a new engine (a new process): the compensation is move_entry(key = "mv-new",
    // body = {"to": "mv-old"}).
    drop(e);
    let e = engine(dir.path(), Policy::default());
    let r = block_on(e.undo("mv", 1)).unwrap();
    assert_eq!(r.undone.len(), 1, "{r:?}");
    assert_eq!(value("mv-new"), None);
    assert_eq!(value("mv-old").as_deref(), Some("kept"));
}

/// The runtime validates against the pruned schema: a deep call the full schema accepts goes
/// through; what the kept levels refuse is still refused.
#[test]
fn a_schema_pruned_to_the_budget_accepts_what_it_left_open() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Policy::default());
    let leaf = json!({"kind": "leaf", "length_cm": 2});
    let deep = json!({"species": "oak", "root": {"kind": "trunk", "children": [
        {"kind": "branch", "children": [{"kind": "twig", "children": [leaf]}]}]}});
    assert_eq!(call(&e, "p", "plant", deep).unwrap()["depth"], 4);
    let bad = call(&e, "p", "plant", json!({"species": "palm", "root": {}}));
    assert!(
        matches!(bad, Err(CallError::InvalidArguments { .. })),
        "{bad:?}"
    );
    let bad = call(
        &e,
        "p",
        "plant",
        json!({"species": "oak", "root": "not an object"}),
    );
    assert!(
        matches!(bad, Err(CallError::InvalidArguments { .. })),
        "{bad:?}"
    );
}
