//! The audit log: secrets never reach the disk, tampering is detected, reports render.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use aifirst::audit::AuditLog;
use aifirst::{capability, CallOptions, Engine, Policy, Redactor, Registry};
use rusqlite::OptionalExtension;
use serde_json::{json, Value};

mod common;
use common::block_on;

static NOTES: Mutex<BTreeMap<u64, String>> = Mutex::new(BTreeMap::new());
/// Note ids, unique across the tests running at once (`len + 1` gave two tests one id after a
/// removal, and one test's undo found the other's note under it).
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Stores a note, with credentials for a downstream system.
#[capability(effects(create), undo = inverse("forget", id = "$result.id"))]
fn remember(
    note: String,
    password: Option<String>,
    headers: Option<BTreeMap<String, String>>,
) -> Value {
    let mut n = NOTES.lock().unwrap();
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    n.insert(id, note.clone());
    json!({ "id": id, "echo": note, "headers": headers, "password": password })
}

/// Keeps any JSON (the secret corpus goes through it).
#[capability(effects(create), undo = inverse("forget", id = "$result.id"))]
fn keep(data: Value) -> Value {
    let mut n = NOTES.lock().unwrap();
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1_000_000;
    n.insert(id, String::new());
    json!({ "id": id, "echo": data })
}

/// Takes a number (a secret sent here fails validation).
#[capability(effects(read))]
fn count(n: i64) -> i64 {
    n
}

/// Fails with the given message (a secret in an error text).
#[capability(effects(read))]
fn fail_with(message: String) -> Result<bool, aifirst::ToolError> {
    Err(aifirst::ToolError::handler(message))
}

/// Forgets a note.
#[capability(effects(delete), irreversible = "forgotten notes are gone")]
fn forget(id: u64) -> bool {
    NOTES.lock().unwrap().remove(&id).is_some()
}

fn audited(dir: &Path) -> (Engine, Arc<AuditLog>) {
    let log = Arc::new(AuditLog::open(dir, Redactor::default()).unwrap());
    let engine = Engine::open(Registry::new().unwrap(), Policy::default(), dir)
        .unwrap()
        .with_recorder(log.clone());
    (engine, log)
}

const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----";

/// (where it goes, the secret, a fragment that must not appear anywhere)
fn secrets() -> Vec<(&'static str, String, String)> {
    let github = format!("ghp_{}", "a1B2c3D4e5".repeat(4));
    let stripe = format!("sk_live_{}", "4eC39HqLyjWDarjtT1zdp7dc");
    vec![
        ("password key", "hunter2-correct-horse".into(), "hunter2-correct-horse".into()),
        ("bearer", "Bearer abcdefghijklmnopqrstuvwxyz012345".into(), "abcdefghijklmnopqrstuvwxyz012345".into()),
        (
            "jwt",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U".into(),
            "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U".into(),
        ),
        ("aws", "AKIAIOSFODNN7EXAMPLE".into(), "AKIAIOSFODNN7EXAMPLE".into()),
        ("github", github.clone(), github),
        ("slack", "xoxb-1234567890-abcdefghijKLMNOP".into(), "xoxb-1234567890-abcdefghijKLMNOP".into()),
        ("stripe", stripe.clone(), stripe),
        ("pem", PEM.into(), "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj".into()),
        ("card", "4111 1111 1111 1111".into(), "4111 1111 1111 1111".into()),
    ]
}

fn all_bytes_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_bytes_under(&p));
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

#[test]
fn secrets_of_every_kind_are_absent_from_every_byte_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, log) = audited(dir.path());
    for (kind, secret, _) in secrets() {
        let args = match kind {
            "password key" => json!({"note": "plain", "password": secret}),
            "bearer" => json!({"note": "see header", "headers": {"Authorization": secret}}),
            _ => json!({"note": format!("here it is: {secret} (keep safe)")}),
        };
        block_on(engine.call("secrets", "remember", args, CallOptions::default())).unwrap();
    }
    // A failure whose message carries a secret, and an undo.
    let _ = block_on(engine.call(
        "secrets",
        "remember",
        json!({"note": 5, "password": "hunter2-correct-horse"}),
        CallOptions::default(),
    ));
    block_on(engine.undo("secrets", 1)).unwrap();
    drop(engine);
    drop(log);
    let files = all_bytes_under(dir.path());
    assert!(
        files.iter().any(|(p, _)| p.ends_with("audit.sqlite3")),
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (kind, _, fragment) in secrets() {
        for (path, bytes) in &files {
            let found = bytes
                .windows(fragment.len())
                .any(|w| w == fragment.as_bytes());
            assert!(!found, "the {kind} secret is in {path}");
        }
    }
    // What was recorded is still useful: the note text around the secret survives.
    let log = AuditLog::open(dir.path(), Redactor::default()).unwrap();
    let recs = log.records(Some("secrets"), None).unwrap();
    assert!(
        recs.iter().any(|r| r
            .args
            .contains("here it is: [REDACTED:aws_access_key] (keep safe)")),
        "{:#?}",
        recs[3].args
    );
    assert_eq!(log.verify().unwrap().first_bad, None);
}

/// Every case of the secret corpus, as arguments, in a validation error and in a handler's error
/// text: no secret in any byte under the state directory, the JSONL export or the HTML report.
#[test]
fn the_secret_corpus_is_absent_from_state_exports_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, log) = audited(dir.path());
    let corpus = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/secrets.jsonl"),
    )
    .unwrap();
    let mut all_secrets = Vec::new();
    for line in corpus.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap();
        let input = case["input"].clone();
        match &case["secrets"] {
            Value::Array(a) => {
                all_secrets.extend(a.iter().map(|s| s.as_str().unwrap().to_string()))
            }
            _ => all_secrets.push(case["secret"].as_str().unwrap().to_string()),
        }
        block_on(engine.call(
            "corpus",
            "keep",
            json!({"data": input}),
            CallOptions::default(),
        ))
        .unwrap();
        // Sent where a number belongs: the validation error must not copy it.
        let e = block_on(engine.call(
            "corpus",
            "count",
            json!({"n": input}),
            CallOptions::default(),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("invalid"), "{e}");
        if let Value::String(text) = &input {
            let _ = block_on(engine.call(
                "corpus",
                "fail_with",
                json!({"message": text}),
                CallOptions::default(),
            ));
        }
    }
    // Secrets of a few digits (a CVV, a PIN) occur by chance in timestamps and hashes: the
    // corpus test checks those by structure; here, every secret of 6 characters or more.
    all_secrets.retain(|s| s.len() >= 6);
    assert!(all_secrets.len() >= 100);
    block_on(engine.undo("corpus", 3)).unwrap();
    let export = dir.path().join("exports");
    std::fs::create_dir_all(&export).unwrap();
    let jsonl = log.export_jsonl(None, None).unwrap();
    assert!(!jsonl.is_empty());
    std::fs::write(export.join("audit.jsonl"), &jsonl).unwrap();
    std::fs::write(
        export.join("report.html"),
        log.report_html(None, None).unwrap(),
    )
    .unwrap();
    drop(engine);
    drop(log);
    let files = all_bytes_under(dir.path());
    let mut leaks = Vec::new();
    for secret in &all_secrets {
        for (path, bytes) in &files {
            if contains_secret(bytes, secret) {
                leaks.push(format!("{secret:.40} in {path}"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} leaks:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

/// Whether `secret` occurs in `bytes`. A short code of digits (the corpus's one-time codes,
/// `482913`) occurs by chance inside longer numbers and digests: a millisecond timestamp or a
/// hex digest on disk matched it about once in a hundred runs. Such a code's match is taken
/// for chance only when it lies inside a run of 10 or more digits or of 16 or more hex digits;
/// anywhere else (`"482913"`, `\n482913`, `%22482913`, `ab482913cd`) it is a leak.
fn contains_secret(bytes: &[u8], secret: &str) -> bool {
    let s = secret.as_bytes();
    let short_code = s.len() < 10 && s.iter().all(u8::is_ascii_digit);
    let run = |i: usize, of: fn(&u8) -> bool| {
        let before = bytes[..i].iter().rev().take_while(|b| of(b)).count();
        let after = bytes[i + s.len()..].iter().take_while(|b| of(b)).count();
        before + s.len() + after
    };
    bytes.windows(s.len()).enumerate().any(|(i, w)| {
        w == s
            && (!short_code
                || (run(i, u8::is_ascii_digit) < 10 && run(i, u8::is_ascii_hexdigit) < 16))
    })
}

#[test]
fn a_short_code_inside_a_long_number_or_digest_is_chance() {
    for leak in [
        r#"{"otp":"482913"}"#,
        r#"{\"otp\":\"482913\"}"#,
        "&quot;482913&quot;",
        "482913",
        "n: 482913,",
        "\\n482913",
        "%22482913%22",
        "ab482913cd",
    ] {
        assert!(contains_secret(leak.as_bytes(), "482913"), "{leak}");
    }
    for chance in [
        "1764792482913",
        "ts=4829130001,",
        "e3b0c44298fc1c149afbf4c8482913aa",
    ] {
        assert!(!contains_secret(chance.as_bytes(), "482913"), "{chance}");
    }
    // Anything longer or not all digits is found anywhere.
    assert!(contains_secret(
        b"1234840398658725720999",
        "4840398658725720"
    ));
    assert!(contains_secret(b"aRb3$kX7mb", "Rb3$kX7m"));
}

fn seeded(dir: &Path, n: usize) -> Arc<AuditLog> {
    let (engine, log) = audited(dir);
    for i in 0..n {
        block_on(engine.call(
            "t",
            "remember",
            json!({"note": format!("n{i}")}),
            CallOptions {
                client: Some("claude-desktop/1.2".into()),
                ..CallOptions::default()
            },
        ))
        .unwrap();
    }
    log
}

fn raw(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("audit.sqlite3")).unwrap()
}

#[test]
fn editing_a_record_is_found_at_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = seeded(dir.path(), 5);
    assert_eq!(log.verify().unwrap().first_bad, None);
    raw(dir.path())
        .execute(
            "UPDATE records SET args = '{\"note\":\"forged\"}' WHERE seq = 3",
            [],
        )
        .unwrap();
    let (seq, why) = log.verify().unwrap().first_bad.unwrap();
    assert_eq!(seq, 3);
    assert!(why.contains("modified"), "{why}");
}

#[test]
fn deleting_a_record_is_found_at_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = seeded(dir.path(), 5);
    raw(dir.path())
        .execute("DELETE FROM records WHERE seq = 3", [])
        .unwrap();
    let (seq, why) = log.verify().unwrap().first_bad.unwrap();
    assert_eq!(seq, 3);
    assert!(why.contains("missing"), "{why}");
    // Deleting the newest records and re-hashing is the one edit a chain alone cannot see; an
    // exported copy (JSONL with every hash) or a periodically noted head hash can.
}

#[test]
fn swapping_records_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let log = seeded(dir.path(), 5);
    let c = raw(dir.path());
    c.execute_batch(
        "UPDATE records SET seq = -2 WHERE seq = 2; UPDATE records SET seq = 2 WHERE seq = 4; UPDATE records SET seq = 4 WHERE seq = -2;",
    )
    .unwrap();
    let (seq, _) = log.verify().unwrap().first_bad.unwrap();
    assert_eq!(seq, 2, "the first swapped record");
}

#[test]
fn export_uses_opentelemetry_genai_names() {
    let dir = tempfile::tempdir().unwrap();
    let log = seeded(dir.path(), 3);
    let text = log.export_jsonl(None, None).unwrap();
    let all: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Each call has an intent record (written before it ran) and an outcome record.
    assert_eq!(all.len(), 6);
    assert_eq!(all[0]["aifirst.status"], "started");
    assert_eq!(all[0]["aifirst.undo.state"], "pending");
    let lines: Vec<&Value> = all.iter().filter(|l| l["aifirst.status"] == "ok").collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["gen_ai.tool.name"], "remember");
    assert_eq!(lines[0]["gen_ai.operation.name"], "execute_tool");
    assert_eq!(lines[0]["gen_ai.conversation.id"], "t");
    assert_eq!(lines[2]["gen_ai.tool.call.id"], "6");
    assert_eq!(lines[0]["aifirst.undo.state"], "available");
    assert_eq!(lines[1]["aifirst.client"], "claude-desktop/1.2");
    assert_eq!(
        log.records(None, None).unwrap()[2].client.as_deref(),
        Some("claude-desktop/1.2")
    );
}

#[test]
fn the_html_report_is_self_contained_and_renders_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, log) = audited(dir.path());
    for i in 0..4 {
        block_on(engine.call(
            "rep",
            "remember",
            json!({"note": format!("r{i}"), "password": "pw-SECRET-1"}),
            CallOptions::default(),
        ))
        .unwrap();
    }
    let _ = block_on(engine.call("rep", "forget", json!({"id": 1}), CallOptions::default())); // refused: irreversible
    let _ = block_on(engine.call(
        "rep",
        "remember",
        json!({"note": 1}),
        CallOptions::default(),
    )); // invalid
    block_on(engine.undo("rep", 2)).unwrap();
    let html = log.report_html(None, None).unwrap();
    for external in ["src=", "href=", "url(", "@import", "<script"] {
        assert!(
            !html.contains(external),
            "the report loads nothing: found {external}"
        );
    }
    assert!(!html.contains("pw-SECRET-1"));
    let path = dir.path().join("report.html");
    std::fs::write(&path, &html).unwrap();

    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect(
            "Chromium is needed for this test: `apt-get install chromium` (.ci/setup installs it)",
        );
    let profile = tempfile::tempdir().unwrap();
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let out = std::process::Command::new(chromium)
        .args(flags)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", path.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("AI-First Runtime: audit report"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dom.contains("<b id=\"calls\">6</b>"),
        "six calls, as rendered: {dom}"
    );
    assert!(dom.contains("<b id=\"failed\">2</b>"));
    assert!(dom.contains("<b id=\"undos\">2</b>"));
    // 4 calls and 2 undos with their intents, a refusal and an invalid call: 14 records.
    assert!(
        dom.contains("intact (14 records, hash chain verified)"),
        "{dom}"
    );
    assert!(dom.contains("id=\"timeline\""));
    // A screenshot, for people to look at (kept next to the report in the temp dir).
    let shot = dir.path().join("report.png");
    let out = std::process::Command::new(chromium)
        .args(flags)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1200,1400")
        .arg(format!("file://{}", path.display()))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "a real picture"
    );
    if let Ok(keep) = std::env::var("AIFIRST_KEEP_REPORT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}

/// Two writers on one log (an MCP server and a command line, say): every record lands and the
/// chain stays whole. Each engine has its own connection, as separate processes do.
#[test]
fn concurrent_writers_on_one_log_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let dir = dir.path().to_path_buf();
            std::thread::spawn(move || {
                let (engine, _log) = audited(&dir);
                for i in 0..150 {
                    block_on(engine.call(
                        &format!("w{w}"),
                        "remember",
                        json!({"note": format!("w{w}-{i}")}),
                        CallOptions::default(),
                    ))
                    .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let log = AuditLog::open(dir.path(), Redactor::default()).unwrap();
    let v = log.verify().unwrap();
    assert_eq!(v.records, 600, "an intent and an outcome per call");
    assert!(v.intact(), "{:?}", v.problems);
}

fn head_kept(engine: &Engine) -> Option<(i64, String)> {
    engine.journal().audit_head().unwrap()
}

/// The journal keeps the chain's head without a commit of its own per record (it rides on the
/// step's write, or is flushed), yet by the time any call or undo returns the head it keeps is
/// the log's newest record, so deleting that record is found.
#[test]
fn the_journal_holds_the_newest_head_whenever_a_call_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, log) = audited(dir.path());
    for i in 0..3 {
        block_on(engine.call(
            "h",
            "remember",
            json!({"note": format!("n{i}")}),
            CallOptions::default(),
        ))
        .unwrap();
        assert_eq!(head_kept(&engine), log.head().unwrap(), "after a step");
        block_on(engine.call("h", "count", json!({"n": i}), CallOptions::default())).unwrap();
        assert_eq!(head_kept(&engine), log.head().unwrap(), "after a read");
        block_on(engine.call("h", "count", json!({"n": "x"}), CallOptions::default())).unwrap_err();
        assert_eq!(
            head_kept(&engine),
            log.head().unwrap(),
            "after an invalid call"
        );
        block_on(engine.call(
            "h",
            "fail_with",
            json!({"message": "no"}),
            CallOptions::default(),
        ))
        .unwrap_err();
        assert_eq!(
            head_kept(&engine),
            log.head().unwrap(),
            "after a failed call"
        );
    }
    let report = block_on(engine.undo("h", 1)).unwrap();
    assert_eq!(report.undone.len(), 1, "{report:?}");
    assert_eq!(head_kept(&engine), log.head().unwrap(), "after an undo");
    assert!(log.verify().unwrap().intact());

    let (last, _) = log.head().unwrap().unwrap();
    raw(dir.path())
        .execute("DELETE FROM records WHERE seq = ?1", [last])
        .unwrap();
    let v = log.verify().unwrap();
    assert!(!v.intact(), "the newest record deleted goes unseen");
    assert!(
        v.problems
            .iter()
            .any(|p| p.contains(&format!("records {last}..={last} were deleted"))),
        "{:?}",
        v.problems
    );
}

/// The engine redacts a step's arguments once and offers its text to the audit log; an audit log
/// whose rules are stricter than the engine's does not take it, and redacts by its own rules.
#[test]
fn an_audit_log_with_stricter_rules_than_the_engine_still_applies_them() {
    let dir = tempfile::tempdir().unwrap();
    let strict = Redactor::default()
        .with_pattern("codename", r"Bluebird-[0-9]+")
        .unwrap();
    let log = Arc::new(AuditLog::open(dir.path(), strict).unwrap());
    let engine = Engine::open(Registry::new().unwrap(), Policy::default(), dir.path())
        .unwrap()
        .with_recorder(log.clone());
    block_on(engine.call(
        "s",
        "remember",
        json!({"note": "launch Bluebird-42 at dawn", "password": "hunter2-correct-horse"}),
        CallOptions::default(),
    ))
    .unwrap();
    let records = log.records(Some("s"), None).unwrap();
    assert_eq!(records.len(), 2);
    for r in &records {
        assert!(!r.args.contains("Bluebird-42"), "{}", r.args);
        assert!(r.args.contains("[REDACTED:codename]"), "{}", r.args);
        assert!(!r.args.contains("hunter2"), "{}", r.args);
        assert!(!r.result.contains("Bluebird-42"), "{}", r.result);
    }
    // The engine's own rules did not know the codename: its display copy keeps it.
    assert_eq!(
        engine.history("s").unwrap()[0].args["note"],
        "launch Bluebird-42 at dawn"
    );
}

/// Long strings: a step that is not a file snapshot keeps its arguments in the journal up to
/// 4 KiB a string (an interrupted one may be rebuilt from them), as the audit log does.
#[test]
fn a_step_undone_by_a_plan_keeps_its_long_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, log) = audited(dir.path());
    let note = "the quick brown fox jumps over the lazy dog. ".repeat(70);
    assert!(note.len() > aifirst::MAX_JOURNALED_STRING);
    assert!(note.len() <= aifirst::MAX_RECORDED_STRING);
    let out = block_on(engine.call(
        "s",
        "remember",
        json!({"note": note}),
        CallOptions::default(),
    ))
    .unwrap();
    let step = &engine.history("s").unwrap()[0];
    assert_eq!(step.args["note"], note.as_str());
    assert_eq!(step.result["echo"], note.as_str());
    for r in log.records(Some("s"), None).unwrap() {
        let args: Value = serde_json::from_str(&r.args).unwrap();
        assert_eq!(args["note"], note.as_str(), "{} record", r.kind);
    }
    let id = out["id"].as_u64().unwrap();
    assert!(NOTES.lock().unwrap().contains_key(&id));
    let report = block_on(engine.undo("s", 1)).unwrap();
    assert_eq!(report.undone.len(), 1, "{report:?}");
    assert!(!NOTES.lock().unwrap().contains_key(&id), "undone");
}

static PEEK_DIR: Mutex<Option<std::path::PathBuf>> = Mutex::new(None);
/// Held by each test that points [`PEEK_DIR`] at its directory.
static PEEKING: Mutex<()> = Mutex::new(());

/// While it runs: the head the journal keeps and the log's newest record.
fn heads_now() -> (i64, i64) {
    let dir = PEEK_DIR.lock().unwrap().clone().unwrap();
    let kept: i64 = rusqlite::Connection::open(dir.join("journal.sqlite3"))
        .unwrap()
        .query_row("SELECT seq FROM audit_head", [], |r| r.get(0))
        .optional()
        .unwrap()
        .unwrap_or(0);
    let newest: i64 = raw(&dir)
        .query_row("SELECT coalesce(max(seq), 0) FROM records", [], |r| {
            r.get(0)
        })
        .unwrap();
    (kept, newest)
}

/// Looks at the heads while it runs (a step).
#[capability(effects(create), irreversible = "a probe")]
fn peek_heads_step() -> (i64, i64) {
    heads_now()
}

/// Looks at the heads while it runs (a read that reaches another machine).
#[capability(effects(read, network))]
fn peek_heads_read() -> (i64, i64) {
    heads_now()
}

/// Looks at the heads while it runs (a read of this machine only).
#[capability(effects(read, filesystem))]
fn peek_heads_local() -> (i64, i64) {
    heads_now()
}

/// A call's intent record is vouched for by the journal before the call runs: a process killed
/// while it runs leaves no record the journal does not know of.
#[test]
fn the_intent_record_is_kept_in_the_journal_before_the_call_runs() {
    let _peeking = PEEKING.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    *PEEK_DIR.lock().unwrap() = Some(dir.path().to_path_buf());
    let (engine, _log) = audited(dir.path());
    let opts = CallOptions {
        confirmed: true,
        ..CallOptions::default()
    };
    for name in ["peek_heads_step", "peek_heads_read", "peek_heads_step"] {
        let (kept, newest) = serde_json::from_value::<(i64, i64)>(
            block_on(engine.call("p", name, json!({}), opts.clone())).unwrap(),
        )
        .unwrap();
        assert_eq!(kept, newest, "{name}: the intent's head while it runs");
    }
}

/// A call that only reads this machine has one record, its outcome, and its head is kept before
/// the call returns; a read that reaches another machine keeps its intent first.
#[test]
fn a_local_read_is_recorded_once_before_it_returns() {
    let _peeking = PEEKING.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    *PEEK_DIR.lock().unwrap() = Some(dir.path().to_path_buf());
    let (engine, log) = audited(dir.path());
    let kept = |engine: &Engine| {
        engine
            .journal()
            .audit_head()
            .unwrap()
            .map(|(seq, _)| seq)
            .unwrap_or(0)
    };
    let (during, newest) = serde_json::from_value::<(i64, i64)>(
        block_on(engine.call("p", "peek_heads_local", json!({}), CallOptions::default())).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (during, newest),
        (0, 0),
        "no record before a local read ran"
    );
    let records = log.records(Some("p"), None).unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        (records[0].kind.as_str(), records[0].status.as_str()),
        ("call", "ok")
    );
    assert_eq!(kept(&engine), 1, "its head is kept when the call returns");
    let (during, newest) = serde_json::from_value::<(i64, i64)>(
        block_on(engine.call("p", "peek_heads_read", json!({}), CallOptions::default())).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (during, newest),
        (2, 2),
        "a network read's intent is kept before it runs"
    );
    let kinds: Vec<String> = log
        .records(Some("p"), None)
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(kinds, ["call", "intent", "call"]);
    assert_eq!(kept(&engine), 3);
    assert!(log.verify().unwrap().intact());
}
