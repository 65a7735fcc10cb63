//! Undo and audit you can trust: each finding of the fault-injection probe, as a test that failed
//! before the write-ahead journal, the claimed compensations and the anchored audit chain.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aifirst::audit::AuditLog;
use aifirst::{
    capability, CallError, CallOptions, Ctx, Engine, Policy, Redactor, Registry, Rule, StepState,
    ToolError, UndoCall, UndoOptions, UndoTarget,
};
use serde_json::{json, Value};

mod common;
use common::block_on;

/// A little file tree, by path (`d`, `d/keep.txt`): what the Jupyter contents API serves.
static TREE: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());
/// Every compensation that ran, in order.
static RAN: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn tree() -> std::sync::MutexGuard<'static, BTreeMap<String, String>> {
    TREE.lock().unwrap_or_else(|p| p.into_inner())
}

fn ran(what: String) {
    RAN.lock().unwrap_or_else(|p| p.into_inner()).push(what);
}

/// Creates `untitled.txt` inside the directory `path` (the shape of Jupyter's `POST
/// /api/contents/{path}`): the result names the new file, the argument its parent.
#[capability(effects(create), undo = inverse("delete_path", check = "get_path", path = "$args.path"))]
fn create_untitled(path: String) -> Value {
    let file = format!("{path}/untitled.txt");
    tree().insert(file.clone(), "file".into());
    json!({"path": file, "name": "untitled.txt", "type": "file"})
}

/// Creates an entry named by its argument (an inverse whose target is what it created).
#[capability(effects(create), undo = inverse("delete_path", check = "get_path", path = "$result.path"))]
fn create_checked(name: String) -> Value {
    tree().insert(name.clone(), "file".into());
    json!({"path": name, "name": name, "type": "file"})
}

/// Stores a value under a key, undone by a plan its author is unsure of.
#[capability(effects(create), undo = inverse("drop_key", key = "$result.key", confidence = "low", evidence = "guessed"))]
fn put_unsure(key: String, value: String) -> Value {
    tree().insert(key.clone(), value);
    json!({"key": key})
}

/// Reads a value (404 when there is none).
#[capability(effects(read))]
fn get_value(key: String) -> Result<Value, ToolError> {
    tree()
        .get(&key)
        .map(|v| json!(v))
        .ok_or_else(|| ToolError::Http {
            status: 404,
            message: format!("no {key}"),
        })
}

/// Creates or replaces a value: undone by writing the old one back, or, when there was none,
/// by dropping the key with `when_absent`'s own arguments.
#[capability(
    effects(update),
    undo = restore(
        "put_or_replace",
        snapshot = "get_value",
        when_absent("drop_key", key = "$args.key"),
        key = "$args.key",
        value = "$snapshot"
    )
)]
fn put_or_replace(key: String, value: String) -> bool {
    tree().insert(key, value);
    true
}

/// Reads one entry.
#[capability(effects(read))]
fn get_path(path: String) -> Result<Value, ToolError> {
    let t = tree();
    let kind = t.get(&path).ok_or_else(|| ToolError::Http {
        status: 404,
        message: format!("no {path}"),
    })?;
    let name = path.rsplit('/').next().unwrap_or(&path).to_string();
    Ok(json!({"path": path, "name": name, "type": kind}))
}

/// Deletes an entry and everything below it.
#[capability(effects(delete), irreversible = "contents are not kept")]
fn delete_path(path: String) -> bool {
    ran(format!("delete_path {path}"));
    let mut t = tree();
    let below = format!("{path}/");
    t.retain(|k, _| k != &path && !k.starts_with(&below));
    true
}

/// Stores a value under a key.
#[capability(effects(create), undo = inverse("drop_key", key = "$result.key"))]
fn put_key(key: String, value: String) -> Value {
    tree().insert(key.clone(), value);
    json!({"key": key})
}

/// Removes a key (a compensation only; policy refuses it as a direct call).
#[capability(effects(delete), irreversible = "the value is not kept")]
fn drop_key(key: String) -> bool {
    ran(format!("drop_key {key}"));
    tree().remove(&key).is_some()
}

/// Removes everything.
#[capability(effects(delete), irreversible = "nothing is kept")]
fn wipe() -> usize {
    ran("wipe".into());
    let mut t = tree();
    let n = t.len();
    t.clear();
    n
}

/// Takes a value out; undo puts the very same text back.
#[capability(effects(delete), undo = put_back)]
fn take_key(key: String) -> Result<Value, ToolError> {
    let v = tree()
        .remove(&key)
        .ok_or_else(|| ToolError::handler(format!("no {key}")))?;
    Ok(json!({"key": key, "value": v}))
}

fn put_back(_ctx: &Ctx, undo: &UndoCall) -> Result<(), ToolError> {
    let key = undo.result["key"].as_str().unwrap_or_default().to_string();
    let value = undo.result["value"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ran(format!("put_back {key}"));
    tree().insert(key, value);
    Ok(())
}

/// A capability whose schema does not compile.
#[capability(
    effects(create),
    irreversible = "test",
    input_schema = "{\"type\": \"nonsense\"}"
)]
fn broken_schema(args: Value) -> Value {
    ran("broken_schema".into());
    args
}

fn engine(dir: &Path, policy: Policy) -> Engine {
    Engine::open(Registry::new().unwrap(), policy, dir).unwrap()
}

fn audited(dir: &Path, policy: Policy) -> (Engine, Arc<AuditLog>) {
    let log = Arc::new(AuditLog::open(dir, Redactor::default()).unwrap());
    (engine(dir, policy).with_recorder(log.clone()), log)
}

fn call(e: &Engine, session: &str, name: &str, args: Value) -> Result<Value, CallError> {
    block_on(e.call(session, name, args, CallOptions::default()))
}

fn ran_count(what: &str) -> usize {
    RAN.lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|r| *r == what)
        .count()
}

/// Found against a real Jupyter Server: undo of "create a file in `d`" deleted `d`, with a file
/// it never created inside. Now the target is re-read first, and refused when it is not what the
/// step created; nothing is deleted, and `--force` is the only way past.
#[test]
fn an_inverse_whose_target_is_not_what_the_step_created_is_refused_and_nothing_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (e, log) = audited(dir.path(), Policy::default());
    tree().insert("jd".into(), "directory".into());
    tree().insert("jd/keep.txt".into(), "file".into());
    let made = call(&e, "jup", "create_untitled", json!({"path": "jd"})).unwrap();
    assert_eq!(made["path"], "jd/untitled.txt");

    // The dry run shows what would run, and runs nothing.
    let dry = block_on(e.undo_with(
        "jup",
        UndoTarget::Steps(1),
        UndoOptions {
            dry_run: true,
            ..UndoOptions::default()
        },
    ))
    .unwrap();
    assert_eq!(dry.planned.len(), 1);
    assert_eq!(dry.planned[0].compensations[0].capability, "delete_path");
    assert_eq!(dry.planned[0].compensations[0].args, json!({"path": "jd"}));
    assert!(dry.undone.is_empty());

    let r = block_on(e.undo("jup", 1)).unwrap();
    let (step, why) = r.failed.expect("refused");
    assert!(r.undone.is_empty());
    assert!(why.contains("not what this step created"), "{why}");
    assert!(
        why.contains("`path` is \"jd\""),
        "names the mismatch: {why}"
    );
    assert!(tree().contains_key("jd/keep.txt"), "nothing was deleted");
    assert_eq!(ran_count("delete_path jd"), 0);
    let s = e.journal().step(step).unwrap().unwrap();
    assert_eq!(s.state, StepState::Done, "still on the stack");
    let recs = log.records(Some("jup"), None).unwrap();
    assert_eq!(recs.last().unwrap().status, "undo_refused");

    // --force runs it, once.
    let r = block_on(e.undo_with(
        "jup",
        UndoTarget::Steps(1),
        UndoOptions {
            force: true,
            ..UndoOptions::default()
        },
    ))
    .unwrap();
    assert_eq!(r.undone, [step]);
    assert_eq!(ran_count("delete_path jd"), 1);
}

/// A checked inverse whose target is what the step created runs.
#[test]
fn an_inverse_whose_target_matches_runs() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Policy::default());
    call(&e, "match", "create_checked", json!({"name": "mk1"})).unwrap();
    let r = block_on(e.undo("match", 1)).unwrap();
    assert_eq!(r.failed, None);
    assert_eq!(ran_count("delete_path mk1"), 1);
    assert!(!tree().contains_key("mk1"));
}

/// Found by editing the journal: a step's compensation rewritten to `wipe` ran under `--deny
/// wipe`. Now a compensation must be the one its capability declares, and pass policy.
#[test]
fn a_tampered_compensation_is_refused_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy {
        capabilities: [("wipe".to_string(), Rule::Deny)].into(),
        ..Policy::default()
    };
    let (e, log) = audited(dir.path(), policy);
    call(&e, "tamper", "put_key", json!({"key": "tk1", "value": "v"})).unwrap();
    let c = rusqlite::Connection::open(dir.path().join("journal.sqlite3")).unwrap();
    c.execute(
        "UPDATE steps SET undo = '{\"kind\":\"calls\",\"calls\":[{\"capability\":\"wipe\",\"args\":{}}]}' WHERE session = 'tamper'",
        [],
    )
    .unwrap();
    let r = block_on(e.undo("tamper", 1)).unwrap();
    let (_, why) = r.failed.unwrap();
    assert!(why.contains("tampering"), "{why}");
    assert_eq!(ran_count("wipe"), 0);
    assert!(tree().contains_key("tk1"));
    // The same step edited to call its declared compensation with an undeclared argument.
    c.execute(
        "UPDATE steps SET undo = '{\"kind\":\"calls\",\"calls\":[{\"capability\":\"drop_key\",\"args\":{\"key\":\"other\"},\"exprs\":{\"key\":\"$args.key\"}}]}' WHERE session = 'tamper'",
        [],
    )
    .unwrap();
    let (_, why) = block_on(e.undo("tamper", 1)).unwrap().failed.unwrap();
    assert!(why.contains("tampering"), "{why}");
    let last = log.records(Some("tamper"), None).unwrap().pop().unwrap();
    assert_eq!(last.status, "undo_refused");
    assert!(last.error.unwrap().contains("tampering"));
}

/// Deny rules apply to compensations as to calls.
#[test]
fn deny_rules_apply_to_compensations() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy {
        capabilities: [("drop_key".to_string(), Rule::Deny)].into(),
        ..Policy::default()
    };
    let e = engine(dir.path(), policy);
    call(&e, "deny", "put_key", json!({"key": "dk1", "value": "v"})).unwrap();
    let (_, why) = block_on(e.undo("deny", 1)).unwrap().failed.unwrap();
    assert!(why.contains("refused") && why.contains("drop_key"), "{why}");
    assert_eq!(ran_count("drop_key dk1"), 0);
}

/// One step that cannot be undone used to block every step below it. `skip` gives up on it
/// (audited) and the undo goes on; a failed compensation leaves its step `failed`, not `done`.
#[test]
fn skip_past_an_irreversible_step() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy {
        allow_irreversible: true,
        ..Policy::default()
    };
    let (e, log) = audited(dir.path(), policy);
    call(&e, "skip", "put_key", json!({"key": "sk1", "value": "1"})).unwrap();
    call(&e, "skip", "drop_key", json!({"key": "nothing"})).unwrap();
    call(&e, "skip", "put_key", json!({"key": "sk2", "value": "2"})).unwrap();
    let r = block_on(e.undo("skip", 3)).unwrap();
    assert_eq!(r.undone.len(), 1);
    let (stuck, why) = r.failed.unwrap();
    assert!(why.contains("cannot be undone"), "{why}");
    block_on(e.skip("skip", stuck, Some("test"))).unwrap();
    let r = block_on(e.undo("skip", 3)).unwrap();
    assert_eq!((r.undone.len(), r.failed), (1, None));
    assert!(!tree().contains_key("sk1") && !tree().contains_key("sk2"));
    let states: Vec<StepState> = e.history("skip").unwrap().iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [StepState::Undone, StepState::Skipped, StepState::Undone]
    );
    assert!(log
        .records(Some("skip"), None)
        .unwrap()
        .iter()
        .any(|r| r.status == "skipped" && r.step == Some(stuck)));
    assert!(log.verify().unwrap().intact());
}

/// Undo data used to be redacted before it was journaled, and undo wrote `[REDACTED:…]` back into
/// the user's data. Now the journal keeps what the compensation needs, the audit log stays
/// redacted, and a compensation over redacted data (an older journal) refuses.
#[test]
fn undo_puts_back_the_exact_text_and_refuses_redacted_data() {
    let dir = tempfile::tempdir().unwrap();
    let (e, _log) = audited(dir.path(), Policy::default());
    let text = "pay with card 4111 1111 1111 1111, token Bearer abcdefghijklmnopqrstuvwxyz";
    tree().insert("rk1".into(), text.into());
    call(&e, "faithful", "take_key", json!({"key": "rk1"})).unwrap();
    assert!(!tree().contains_key("rk1"));
    let r = block_on(e.undo("faithful", 1)).unwrap();
    assert_eq!(r.failed, None);
    assert_eq!(
        tree().get("rk1").map(String::as_str),
        Some(text),
        "byte for byte"
    );
    let audit = std::fs::read(dir.path().join("audit.sqlite3")).unwrap();
    assert!(
        !audit.windows(19).any(|w| w == b"4111 1111 1111 1111"),
        "the audit log stays redacted"
    );
    // The state directory is private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("journal.sqlite3")), 0o600);
        assert_eq!(mode(&dir.path().join("audit.sqlite3")), 0o600);
        let fresh = dir.path().join("new-state");
        let _e = engine(&fresh, Policy::default());
        assert_eq!(mode(&fresh), 0o700);
    }

    // A journal written by an older version, whose compensation data was redacted.
    tree().insert("rk2".into(), "x".into());
    call(&e, "faithful", "take_key", json!({"key": "rk2"})).unwrap();
    let c = rusqlite::Connection::open(dir.path().join("journal.sqlite3")).unwrap();
    c.execute(
        // `faithful = 0`: a row from before journal schema 4 (its data may be redacted).
        "UPDATE steps SET undo = json_set(undo, '$.result.value', 'card [REDACTED:card_number]'), faithful = 0 WHERE session = 'faithful' AND state = 'done'",
        [],
    )
    .unwrap();
    // With the audit log, the edit is caught as tampering (its digest no longer matches)…
    let (_, why) = block_on(e.undo("faithful", 1)).unwrap().failed.unwrap();
    assert!(why.contains("audit log recorded"), "{why}");
    // …and an engine without one (as an older version had) refuses the redacted data.
    let bare = engine(dir.path(), Policy::default());
    let (_, why) = block_on(bare.undo("faithful", 1)).unwrap().failed.unwrap();
    assert!(why.contains("redacted"), "{why}");
    assert!(
        !tree().contains_key("rk2"),
        "nothing corrupt was written back"
    );
}

/// A 16-digit id that passes the Luhn check (one in ten do) survives the journal and the undo.
#[test]
fn a_luhn_valid_id_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let (e, log) = audited(dir.path(), Policy::default());
    let id = "1234567890123452";
    call(&e, "luhn", "put_key", json!({"key": id, "value": "v"})).unwrap();
    let r = block_on(e.undo("luhn", 1)).unwrap();
    assert_eq!(r.failed, None);
    assert_eq!(ran_count(&format!("drop_key {id}")), 1);
    assert!(log
        .records(Some("luhn"), None)
        .unwrap()
        .iter()
        .all(|r| !r.args.contains("REDACTED")));
}

/// A schema that does not compile used to switch validation off.
#[test]
fn validation_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(
        dir.path(),
        Policy {
            allow_irreversible: true,
            ..Policy::default()
        },
    );
    match call(&e, "schema", "broken_schema", json!({"anything": 1})) {
        Err(CallError::InvalidSchema { capability, .. }) => assert_eq!(capability, "broken_schema"),
        other => panic!("{other:?}"),
    }
    assert_eq!(ran_count("broken_schema"), 0);
}

/// Holds a write lock on an SQLite file until dropped.
fn lock_db(path: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("BEGIN IMMEDIATE").unwrap();
    c
}

/// With the journal locked past its busy timeout, a call used to run without a step, and the
/// next undo removed an earlier one's effect. Now nothing runs without its step written ahead.
#[test]
fn a_locked_journal_or_audit_log_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (e, log) = audited(dir.path(), Policy::default());
    call(&e, "locked", "put_key", json!({"key": "lk1", "value": "1"})).unwrap();

    let hold = lock_db(&dir.path().join("journal.sqlite3"));
    let err = call(&e, "locked", "put_key", json!({"key": "lk2", "value": "2"})).unwrap_err();
    assert!(matches!(err, CallError::Journal(_)), "{err}");
    drop(hold);
    assert!(!tree().contains_key("lk2"), "did not run");

    let hold = lock_db(&dir.path().join("audit.sqlite3"));
    let err = call(&e, "locked", "put_key", json!({"key": "lk3", "value": "3"})).unwrap_err();
    assert!(matches!(err, CallError::Audit(_)), "{err}");
    assert!(err.to_string().contains("was not run"), "{err}");
    drop(hold);
    assert!(!tree().contains_key("lk3"), "did not run");

    // A read of this machine has no intent record: its outcome is its record, and what it read
    // is not returned without it.
    let hold = lock_db(&dir.path().join("audit.sqlite3"));
    let err = call(&e, "locked", "get_value", json!({"key": "lk1"})).unwrap_err();
    assert!(matches!(err, CallError::Audit(_)), "{err}");
    assert!(err.to_string().contains("is withheld"), "{err}");
    drop(hold);
    assert_eq!(
        call(&e, "locked", "get_value", json!({"key": "lk1"})).unwrap(),
        json!("1")
    );

    // The one step there is, is the one that ran; undo removes exactly it.
    let steps = e.history("locked").unwrap();
    assert_eq!(steps.len(), 1, "{steps:?}");
    let r = block_on(e.undo("locked", 1)).unwrap();
    assert_eq!(r.failed, None);
    assert_eq!(ran_count("drop_key lk1"), 1);
    assert!(
        log.verify().unwrap().intact(),
        "{:?}",
        log.verify().unwrap()
    );
}

fn seeded(dir: &Path, n: usize) {
    let (e, _log) = audited(dir, Policy::default());
    for i in 0..n {
        call(
            &e,
            "seed",
            "put_key",
            json!({"key": format!("seed{i}"), "value": "v"}),
        )
        .unwrap();
    }
}

fn verify(dir: &Path) -> aifirst::audit::Verification {
    AuditLog::verify_dir(dir, None, None).unwrap()
}

fn problems(dir: &Path) -> String {
    verify(dir).problems.join("\n")
}

/// Deleting the newest records, all of them, or the file used to verify as intact.
#[test]
fn tail_truncation_and_a_deleted_log_are_found() {
    let dir = tempfile::tempdir().unwrap();
    seeded(dir.path(), 4);
    assert!(verify(dir.path()).intact(), "{}", problems(dir.path()));
    let c = rusqlite::Connection::open(dir.path().join("audit.sqlite3")).unwrap();
    c.execute("DELETE FROM records WHERE seq > 6", []).unwrap();
    let p = problems(dir.path());
    assert!(p.contains("records 7..=8 were deleted"), "{p}");
    c.execute("DELETE FROM records", []).unwrap();
    assert!(problems(dir.path()).contains("were deleted"));
    drop(c);
    for f in ["audit.sqlite3", "audit.sqlite3-wal", "audit.sqlite3-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    let p = problems(dir.path());
    assert!(p.contains("is missing"), "{p}");
    assert!(
        !dir.path().join("audit.sqlite3").exists(),
        "verify never creates a log"
    );
}

/// A log file whose first process was stopped before it made the schema (the soak's kill -9
/// landed there) holds no records: intact when nothing was journaled, not intact — never an
/// error — when the journal has steps; and replacing a real log with such a file is caught.
#[test]
fn a_log_file_never_set_up_is_judged_like_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("audit.sqlite3"), b"").unwrap();
    assert!(verify(dir.path()).intact(), "{}", problems(dir.path()));
    let dir = tempfile::tempdir().unwrap();
    seeded(dir.path(), 4);
    for f in ["audit.sqlite3", "audit.sqlite3-wal", "audit.sqlite3-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    std::fs::write(dir.path().join("audit.sqlite3"), b"").unwrap();
    let p = problems(dir.path());
    assert!(p.contains("never set up"), "{p}");
}

/// Editing a record and recomputing the chain after it used to verify as intact: the journal
/// keeps the head, and a keyed chain cannot be recomputed without the key.
#[test]
fn a_rehashed_chain_is_found() {
    let dir = tempfile::tempdir().unwrap();
    seeded(dir.path(), 3);
    let log = AuditLog::open(dir.path(), Redactor::default()).unwrap();
    let head = log.head().unwrap().unwrap();
    let mut recs = log.records(None, None).unwrap();
    drop(log);
    recs[2].args = "{\"key\":\"forged\"}".into();
    let c = rusqlite::Connection::open(dir.path().join("audit.sqlite3")).unwrap();
    let mut prev = recs[1].hash.clone();
    for r in recs.iter_mut().skip(2) {
        r.prev_hash = prev.clone();
        r.hash = r.compute_hash(&prev, None);
        prev = r.hash.clone();
        c.execute(
            "UPDATE records SET args = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
            rusqlite::params![r.args, r.prev_hash, r.hash, r.seq],
        )
        .unwrap();
    }
    let v = verify(dir.path());
    assert_eq!(v.first_bad, None, "the chain itself is consistent again");
    assert!(
        v.problems.iter().any(|p| p.contains("rewritten")),
        "{:?}",
        v.problems
    );
    // A head witnessed elsewhere is not in the rewritten chain either.
    let v = AuditLog::verify_dir(dir.path(), None, Some(&head.1)).unwrap();
    assert!(v.problems.iter().any(|p| p.contains("witnessed head")));
}

#[test]
fn a_keyed_chain_cannot_be_recomputed_without_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = b"0123456789abcdef0123456789abcdef".to_vec();
    let log =
        Arc::new(AuditLog::open_keyed(dir.path(), Redactor::default(), Some(key.clone())).unwrap());
    let e = engine(dir.path(), Policy::default()).with_recorder(log.clone());
    call(&e, "keyed", "put_key", json!({"key": "kk1", "value": "v"})).unwrap();
    assert!(AuditLog::verify_dir(dir.path(), Some(&key), None)
        .unwrap()
        .intact());
    // Without the key: said so, not "intact".
    assert!(!verify(dir.path()).intact());
    // Rehashed without the key (all a forger can do): the first record breaks.
    let mut recs = log.records(None, None).unwrap();
    let c = rusqlite::Connection::open(dir.path().join("audit.sqlite3")).unwrap();
    let mut prev = aifirst::audit::GENESIS.to_string();
    for r in recs.iter_mut() {
        r.hash = r.compute_hash(&prev, None);
        prev = r.hash.clone();
        c.execute(
            "UPDATE records SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
            rusqlite::params![r.prev_hash, r.hash, r.seq],
        )
        .unwrap();
    }
    let v = AuditLog::verify_dir(dir.path(), Some(&key), None).unwrap();
    assert_eq!(v.first_bad.map(|b| b.0), Some(1));
    // A key file inside the state directory is refused.
    let inside = dir.path().join("key");
    std::fs::write(&inside, &key).unwrap();
    assert!(aifirst::audit::read_key_file(&inside, dir.path()).is_err());
}

/// A journal step with no audit record (a call that bypassed the log) is reported.
#[test]
fn steps_without_records_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    seeded(dir.path(), 2);
    // A step written straight into the journal.
    let j = aifirst::Journal::open(dir.path()).unwrap();
    j.record(
        "seed",
        "put_key",
        &json!({}),
        &json!({}),
        &aifirst::StepUndo::Calls { calls: vec![] },
    )
    .unwrap();
    let p = problems(dir.path());
    assert!(p.contains("have no audit record"), "{p}");
    // An undo whose records were removed: the step says undone, the log does not.
    let j2 = rusqlite::Connection::open(dir.path().join("journal.sqlite3")).unwrap();
    j2.execute("UPDATE steps SET state = 'undone' WHERE id = 1", [])
        .unwrap();
    let p = problems(dir.path());
    assert!(
        p.contains("undone or skipped step(s) have no record of their undo: 1"),
        "{p}"
    );
}

/// An interrupted compensation (a claim with no outcome, as kill -9 leaves it) is never run
/// again on its own; the user resolves it.
#[test]
fn an_interrupted_undo_is_resolved_not_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let (e, _log) = audited(dir.path(), Policy::default());
    call(&e, "claim", "put_key", json!({"key": "ck1", "value": "1"})).unwrap();
    call(&e, "claim", "put_key", json!({"key": "ck2", "value": "2"})).unwrap();
    let steps = e.history("claim").unwrap();
    // What a process killed between claim and outcome leaves behind.
    assert!(e
        .journal()
        .transition(steps[1].id, &[StepState::Done], StepState::Undoing, None)
        .unwrap());
    let r = block_on(e.undo("claim", 2)).unwrap();
    let (id, why) = r.failed.unwrap();
    assert_eq!(id, steps[1].id);
    assert!(why.contains("--resolve"), "{why}");
    assert_eq!(ran_count("drop_key ck2"), 0, "not run again");
    // The user checked: it did take effect.
    block_on(e.resolve("claim", id, aifirst::Resolution::Undone, None)).unwrap();
    let r = block_on(e.undo("claim", 1)).unwrap();
    assert_eq!(r.undone, [steps[0].id]);
    // An `intended` step (the call was interrupted) stops undo until resolved too.
    let id = e
        .journal()
        .intend("claim", "put_key", &json!({"key": "ck3", "value": "3"}))
        .unwrap();
    let (_, why) = block_on(e.undo("claim", 1)).unwrap().failed.unwrap();
    assert!(why.contains("interrupted"), "{why}");
    // Resolved as done: its compensation is rebuilt from the arguments where the plan allows
    // (here it needs the result, so it becomes irreversible, and says why).
    block_on(e.resolve("claim", id, aifirst::Resolution::Done, None)).unwrap();
    let (_, why) = block_on(e.undo("claim", 1)).unwrap().failed.unwrap();
    assert!(why.contains("cannot be undone"), "{why}");
    let _ = Duration::ZERO;
}

/// `confirm_below`: a call whose undo plan is less sure than the floor needs the user's yes.
#[test]
fn policy_confirms_calls_whose_undo_plan_is_unsure() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy {
        confirm_below: Some(aifirst::Confidence::Medium),
        ..Policy::default()
    };
    let e = engine(dir.path(), policy);
    match call(
        &e,
        "unsure",
        "put_unsure",
        json!({"key": "uk1", "value": "v"}),
    ) {
        Err(CallError::NeedsConfirmation(why)) => {
            assert!(why.contains("only low confidence"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!tree().contains_key("uk1"));
    // High-confidence plans are not affected; a confirmed call runs.
    call(&e, "unsure", "put_key", json!({"key": "uk2", "value": "v"})).unwrap();
    block_on(e.call(
        "unsure",
        "put_unsure",
        json!({"key": "uk1", "value": "v"}),
        CallOptions {
            confirmed: true,
            ..CallOptions::default()
        },
    ))
    .unwrap();
    assert!(tree().contains_key("uk1"));
}

/// A restore whose snapshot found nothing calls `when_absent` with its own arguments (no
/// snapshot values, no arguments it does not take), and the journal shows exactly that.
#[test]
fn when_absent_runs_with_its_own_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Policy::default());
    call(
        &e,
        "absent",
        "put_or_replace",
        json!({"key": "wa1", "value": "new"}),
    )
    .unwrap();
    let step = e.history("absent").unwrap().pop().unwrap();
    match &step.undo {
        aifirst::StepUndo::Calls { calls } => {
            assert_eq!(calls[0].capability, "drop_key");
            assert_eq!(calls[0].args, json!({"key": "wa1"}));
        }
        other => panic!("{other:?}"),
    }
    block_on(e.undo("absent", 1)).unwrap();
    assert_eq!(ran_count("drop_key wa1"), 1);
    assert!(!tree().contains_key("wa1"));
    // There before: the old value is written back instead.
    tree().insert("wa2".into(), "old".into());
    call(
        &e,
        "absent",
        "put_or_replace",
        json!({"key": "wa2", "value": "new"}),
    )
    .unwrap();
    block_on(e.undo("absent", 1)).unwrap();
    assert_eq!(tree().get("wa2").map(String::as_str), Some("old"));
}

/// Found by review: a journal edited consistently (declared capability, declared expressions,
/// another value, no check) passed the declaration check. The audit log recorded a digest of
/// the compensation when the call finished; the edited row no longer matches it.
#[test]
fn a_consistently_edited_compensation_is_refused_by_its_audited_digest() {
    let dir = tempfile::tempdir().unwrap();
    let (e, _log) = audited(dir.path(), Policy::default());
    tree().insert("victim".into(), "keep".into());
    call(&e, "digest", "put_key", json!({"key": "dg1", "value": "v"})).unwrap();
    let j = rusqlite::Connection::open(dir.path().join("journal.sqlite3")).unwrap();
    j.execute(
        "UPDATE steps SET undo = '{\"kind\":\"calls\",\"calls\":[{\"capability\":\"drop_key\",\"args\":{\"key\":\"victim\"},\"exprs\":{\"key\":\"$result.key\"}}]}' WHERE session = 'digest'",
        [],
    )
    .unwrap();
    let (_, why) = block_on(e.undo("digest", 1)).unwrap().failed.unwrap();
    assert!(why.contains("audit log recorded"), "{why}");
    assert!(tree().contains_key("victim"), "nothing was deleted");
    assert_eq!(ran_count("drop_key victim"), 0);
}

/// Found by review: `history` (the CLI's and the MCP tool's) showed the compensation data the
/// journal keeps unredacted.
#[test]
fn history_shows_compensations_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Policy::default());
    tree().insert(
        "hk1".into(),
        "token Bearer abcdefghijklmnopqrstuvwxyz0123".into(),
    );
    call(&e, "hist", "take_key", json!({"key": "hk1"})).unwrap();
    let shown = serde_json::to_string(&e.history("hist").unwrap()).unwrap();
    assert!(!shown.contains("abcdefghijklmnopqrstuvwxyz0123"), "{shown}");
    // The journal itself keeps it, for the undo.
    block_on(e.undo("hist", 1)).unwrap();
    assert_eq!(
        tree().get("hk1").map(String::as_str),
        Some("token Bearer abcdefghijklmnopqrstuvwxyz0123")
    );
}

/// Records two compensations; they run newest first: `drop_key`, then `always_fails`.
#[capability(effects(update), undo = custom)]
fn two_part(ctx: &Ctx, key: String) -> bool {
    ctx.compensate("always_fails", json!({}));
    ctx.compensate("drop_key", json!({"key": key}));
    true
}

/// Fails with an ordinary error.
#[capability(effects(read))]
fn always_fails() -> Result<bool, ToolError> {
    ran("always_fails".into());
    Err(ToolError::handler("no"))
}

/// Found by review: a compensation whose second call failed became `failed`, and the next undo
/// ran its first call again. It now stays `undoing`, for a person to settle, and is not rerun.
#[test]
fn a_partly_run_compensation_is_not_retried_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Policy::default());
    tree().insert("pp1".into(), "v".into());
    call(&e, "partial", "two_part", json!({"key": "pp1"})).unwrap();
    let (id, why) = block_on(e.undo("partial", 1)).unwrap().failed.unwrap();
    assert!(
        why.contains("in part") && why.contains("--resolve"),
        "{why}"
    );
    assert_eq!(ran_count("drop_key pp1"), 1);
    assert_eq!(
        e.journal().step(id).unwrap().unwrap().state,
        StepState::Undoing
    );
    let (_, why) = block_on(e.undo("partial", 1)).unwrap().failed.unwrap();
    assert!(why.contains("--resolve"), "{why}");
    assert_eq!(ran_count("drop_key pp1"), 1, "not run again");
}

/// Creates a pet with the id given.
#[capability(effects(create), undo = inverse("gone_pet", id = "$result.id"))]
fn new_pet(id: u64) -> Value {
    tree().insert(format!("pet:{id}"), "pet".into());
    json!({"id": id})
}

/// Removes a pet.
#[capability(effects(delete), irreversible = "test")]
fn gone_pet(id: u64) -> bool {
    ran(format!("gone_pet {id}"));
    tree().remove(&format!("pet:{id}")).is_some()
}

/// Places an order; the server chooses its id (counting from 101).
#[capability(effects(create), undo = inverse("cancel_order", id = "$result.id"))]
fn place_order(item: String) -> Value {
    let mut t = tree();
    let id = 101 + t.keys().filter(|k| k.starts_with("order:")).count() as u64;
    t.insert(format!("order:{id}"), item.clone());
    json!({"id": id, "item": item})
}

/// Reads an order (404 when there is none).
#[capability(effects(read))]
fn read_order(id: u64) -> Result<Value, ToolError> {
    let item = tree().get(&format!("order:{id}")).cloned();
    item.map(|i| json!({"id": id, "item": i}))
        .ok_or_else(|| ToolError::Http {
            status: 404,
            message: format!("no order {id}"),
        })
}

/// Cancels an order; undone by placing it again (under a new id).
#[capability(effects(delete), undo = recreate("place_order", snapshot = "read_order", item = "$snapshot.item", snapshot_args(id = "$args.id")))]
fn cancel_order(id: u64) -> bool {
    tree().remove(&format!("order:{id}")).is_some()
}

/// Found by review: an alias (old id → new id, recorded when an undo recreated something under
/// a new id) was applied to every call of the session: undoing "cancel order 5" (re-placed as
/// 101) made the undo of an older "create pet 5" delete pet 101. An alias now applies only to
/// calls of the capability it speaks of, by its argument, in older steps.
#[test]
fn an_alias_applies_only_to_the_capability_and_argument_it_speaks_of() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Policy::default());
    tree().insert("order:5".into(), "book".into());
    call(&e, "alias", "new_pet", json!({"id": 5})).unwrap();
    call(&e, "alias", "cancel_order", json!({"id": 5})).unwrap();
    let r = block_on(e.undo("alias", 2)).unwrap();
    assert_eq!((r.undone.len(), r.failed), (2, None));
    let aliases = e.journal().aliases("alias").unwrap();
    assert_eq!(aliases.len(), 1);
    assert_eq!(
        (aliases[0].capability.as_deref(), aliases[0].arg.as_deref()),
        (Some("cancel_order"), Some("id"))
    );
    assert_eq!(ran_count("gone_pet 5"), 1, "the pet the step created");
    assert_eq!(ran_count("gone_pet 101"), 0);
    assert!(!tree().contains_key("pet:5"));
    assert!(tree().values().any(|v| v == "book"), "the order is back");
}

/// Found by review: one unreadable journal row made the whole session unreadable, so it could
/// not even be skipped. It now stops the undo at that step, saying so, and `skip` passes it.
#[test]
fn an_unreadable_compensation_can_be_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), Policy::default());
    call(
        &e,
        "garbled",
        "put_key",
        json!({"key": "gb1", "value": "v"}),
    )
    .unwrap();
    call(
        &e,
        "garbled",
        "put_key",
        json!({"key": "gb2", "value": "v"}),
    )
    .unwrap();
    let newest = e.history("garbled").unwrap()[1].id;
    let j = rusqlite::Connection::open(dir.path().join("journal.sqlite3")).unwrap();
    j.execute("UPDATE steps SET undo = 'not json' WHERE id = ?1", [newest])
        .unwrap();
    let (id, why) = block_on(e.undo("garbled", 2)).unwrap().failed.unwrap();
    assert_eq!(id, newest);
    assert!(why.contains("unreadable"), "{why}");
    block_on(e.skip("garbled", newest, None)).unwrap();
    let r = block_on(e.undo("garbled", 1)).unwrap();
    assert_eq!(r.failed, None);
    assert!(!tree().contains_key("gb1"));
}
