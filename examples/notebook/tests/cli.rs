//! The shared CLI (`airun`), through the notebook binary: every subcommand's output and exit code,
//! undo from a fresh process, the audit commands, and `--help` snapshots.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

struct Bench {
    dir: tempfile::TempDir,
}

impl Bench {
    fn new() -> Bench {
        Bench {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_notebook"))
            .args(args)
            .current_dir(self.path())
            .env("NOTEBOOK_DIR", self.path())
            .env("AIFIRST_ROOTS", self.path())
            .env_remove("AIFIRST_STATE_DIR")
            .env_remove("AIFIRST_SESSION")
            .output()
            .unwrap()
    }

    /// Runs and checks the exit code; returns stdout.
    fn ok(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all, 0)).unwrap()
    }

    fn notes(&self) -> Vec<(u64, String, bool)> {
        let text = std::fs::read_to_string(self.path().join("notes.json")).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        v["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["id"].as_u64().unwrap(),
                    n["title"].as_str().unwrap().to_string(),
                    n["pinned"].as_bool().unwrap(),
                )
            })
            .collect()
    }
}

#[test]
fn each_call_is_undone_from_a_new_process() {
    let b = Bench::new();
    let created = b.json(&["call", "create_note", "--args", r#"{"title":"a"}"#]);
    assert_eq!(created["id"], 1);
    b.json(&["call", "create_note", "--args", r#"{"title":"b"}"#]);
    std::fs::write(b.path().join("rename.json"), r#"{"id":1,"title":"A"}"#).unwrap();
    b.json(&["call", "rename_note", "--args", "@rename.json"]);
    b.json(&["call", "pin_note", "--args", r#"{"id":2}"#]);
    b.json(&["call", "delete_note", "--args", r#"{"id":1}"#]);
    assert_eq!(b.notes(), [(2, "b".to_string(), true)]);

    // Each undo runs in a process of its own, after the one that made the call has gone.
    let undo = b.json(&["undo"]);
    assert_eq!(undo["undone"], serde_json::json!([5]));
    assert_eq!(
        b.notes(),
        [(1, "A".to_string(), false), (2, "b".to_string(), true)]
    );
    b.json(&["undo"]);
    assert_eq!(
        b.notes(),
        [(1, "A".to_string(), false), (2, "b".to_string(), false)]
    );
    b.json(&["undo"]);
    assert_eq!(
        b.notes(),
        [(1, "a".to_string(), false), (2, "b".to_string(), false)]
    );
    let undo = b.json(&["undo", "2"]);
    assert_eq!(undo["undone"], serde_json::json!([2, 1]));
    assert!(b.notes().is_empty());
    let text = b.ok(&["undo"], 0);
    assert!(text.contains("nothing to undo"), "{text}");

    let history = b.json(&["history"]);
    let states: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["undone"; 5]);
}

#[test]
fn checkpoints_and_sessions() {
    let b = Bench::new();
    b.json(&["call", "create_note", "--args", r#"{"title":"keep"}"#]);
    let cp = b.json(&["checkpoint", "clean"]);
    assert_eq!(cp["after_step"], 1);
    b.json(&["call", "create_note", "--args", r#"{"title":"x"}"#]);
    b.json(&["call", "create_note", "--args", r#"{"title":"y"}"#]);
    // Another session's calls are not undone by this one.
    b.json(&[
        "--session",
        "other",
        "call",
        "create_note",
        "--args",
        r#"{"title":"other"}"#,
    ]);
    let undo = b.json(&["undo", "--to", "clean"]);
    assert_eq!(undo["undone"], serde_json::json!([3, 2]));
    let titles: Vec<String> = b.notes().into_iter().map(|n| n.1).collect();
    assert_eq!(titles, ["keep", "other"]);
    assert_eq!(b.ok(&["undo", "--to", "nope"], 2), "");
}

#[test]
fn exit_codes() {
    let b = Bench::new();
    // 0: done.
    b.ok(&["list"], 0);
    b.ok(&["describe", "create_note"], 0);
    b.ok(&["call", "noop"], 0);
    b.ok(&["history"], 0);
    b.ok(&["checkpoint", "x"], 0);
    b.ok(&["undo"], 0);
    b.ok(&["audit", "verify"], 0);
    b.ok(&["audit", "export", "--jsonl"], 0);
    b.ok(&["audit", "report", "--html", "r.html"], 0);
    // 1: the call ran and failed, or policy refused it.
    b.ok(&["call", "fail"], 1);
    b.ok(&["call", "get_note", "--args", r#"{"id":42}"#], 1);
    b.ok(&["call", "purge_notes"], 1);
    b.ok(
        &[
            "call",
            "delete_note",
            "--args",
            r#"{"id":1}"#,
            "--deny",
            "delete_note",
        ],
        1,
    );
    // 2: what was typed is wrong.
    b.ok(&["call", "no_such"], 2);
    b.ok(&["describe", "no_such"], 2);
    b.ok(&["call", "create_note", "--args", "{not json"], 2);
    b.ok(&["call", "create_note", "--args", "[1]"], 2);
    b.ok(&["call", "create_note", "--args", r#"{"title":5}"#], 2);
    b.ok(&["call", "create_note", "--args", "@missing.json"], 2);
    b.ok(&["frobnicate"], 2);
    b.ok(&["serve", "--http", "not-an-address"], 2);
    b.ok(&["undo", "--to", "missing"], 2);
    b.ok(&["--config", "missing.toml", "list"], 2);
    std::fs::write(b.path().join("airun.toml"), "polcy = 1\n").unwrap();
    b.ok(&["list"], 2);
}

#[test]
fn errors_say_what_to_do() {
    let b = Bench::new();
    let out = b.run(&["call", "purge_notes"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot be undone"), "{err}");
    assert!(err.contains("--allow-irreversible"), "{err}");
    let out = b.run(&["call", "create_note", "--args", "{\"title\": }"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 1, column"), "{err}");
    let out = b.run(&["call", "note"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did you mean"), "{err}");
    assert!(err.contains("create_note"), "{err}");
    std::fs::write(
        b.path().join("airun.toml"),
        "[policy]\nallow_irreversible = 3\n",
    )
    .unwrap();
    let out = b.run(&["list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("airun.toml") && err.contains("line 2"),
        "{err}"
    );
    // --json puts the error on stdout too, for programs.
    std::fs::remove_file(b.path().join("airun.toml")).unwrap();
    let out = b.run(&["--json", "call", "fail"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["exit_code"], 1);
    assert!(v["error"].as_str().unwrap().contains("always fails"));
}

#[test]
fn policy_from_the_file_and_flags() {
    let b = Bench::new();
    b.json(&["call", "create_note", "--args", r#"{"title":"a"}"#]);
    std::fs::write(
        b.path().join("airun.toml"),
        "[policy.effects]\ndelete = \"confirm\"\n",
    )
    .unwrap();
    let out = b.run(&["call", "delete_note", "--args", r#"{"id":1}"#]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    assert_eq!(b.notes().len(), 1);
    b.ok(
        &["call", "delete_note", "--args", r#"{"id":1}"#, "--yes"],
        0,
    );
    assert!(b.notes().is_empty());
    // Irreversible calls run only with explicit leave, by flag or by name (and the file's
    // confirmation of deletes still applies).
    b.ok(&["call", "purge_notes", "--allow-irreversible"], 1);
    std::fs::remove_file(b.path().join("airun.toml")).unwrap();
    b.ok(&["call", "purge_notes", "--allow-irreversible"], 0);
    b.ok(&["call", "purge_notes", "--allow", "purge_notes"], 0);
}

#[test]
fn files_outside_the_allowed_roots_are_refused() {
    let b = Bench::new();
    let run = |args: &[&str], dir: &Path| {
        Command::new(env!("CARGO_BIN_EXE_notebook"))
            .args(args)
            .current_dir(b.path())
            .env("NOTEBOOK_DIR", dir)
            .env_remove("AIFIRST_ROOTS")
            .env_remove("AIFIRST_STATE_DIR")
            .output()
            .unwrap()
    };
    let create = ["call", "create_note", "--args", r#"{"title":"x"}"#];
    // No roots at all: no file access, and the message says how to grant it.
    let out = run(&create, b.path());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no allowed roots are configured"), "{err}");
    assert!(err.contains("--root"), "{err}");
    assert!(!b.path().join("notes.json").exists());

    std::fs::create_dir_all(b.path().join("allowed")).unwrap();
    std::fs::write(
        b.path().join("airun.toml"),
        "allowed_roots = [\"allowed\"]\n",
    )
    .unwrap();
    // NOTEBOOK_DIR is the bench directory itself: outside `allowed`.
    let out = run(&create, b.path());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("outside the allowed roots"), "{err}");
    assert!(!b.path().join("notes.json").exists());
    // `..` that climbs out of the root is outside too.
    let out = run(&create, &b.path().join("allowed/../."));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Inside the root it works; `--root` adds a root from the command line.
    let out = run(&create, &b.path().join("allowed"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(b.path().join("allowed/notes.json").is_file());
    let other = b.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let mut with_flag = vec!["--root", other.to_str().unwrap()];
    with_flag.extend_from_slice(&create);
    let out = run(&with_flag, &other);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(other.join("notes.json").is_file());
    #[cfg(unix)]
    {
        // A link inside the root that leads out: refused, nothing written outside.
        let outside = b.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, b.path().join("allowed/door")).unwrap();
        let out = run(&create, &b.path().join("allowed/door"));
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("outside the allowed roots"), "{err}");
        assert!(!outside.join("notes.json").exists());
        assert!(!outside.join("notes.json.lock").exists());
    }
    // A root that does not exist is a configuration error for a call (and a server); the
    // commands that only read or undo the journal start without it (a call may have removed it).
    std::fs::write(b.path().join("airun.toml"), "allowed_roots = [\"nope\"]\n").unwrap();
    let out = b.run(&["call", "noop"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("allowed root"));
    b.ok(&["list"], 0);
    b.ok(&["history"], 0);
}

#[test]
fn state_dir_from_flag_env_and_file() {
    let b = Bench::new();
    b.ok(&["--state-dir", "flag", "call", "noop"], 0);
    assert!(b.path().join("flag/audit.sqlite3").is_file());
    let out = Command::new(env!("CARGO_BIN_EXE_notebook"))
        .args(["call", "noop"])
        .current_dir(b.path())
        .env("AIFIRST_STATE_DIR", b.path().join("env"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(b.path().join("env/audit.sqlite3").is_file());
    std::fs::write(b.path().join("airun.toml"), "state_dir = \"file\"\n").unwrap();
    b.ok(&["call", "noop"], 0);
    assert!(b.path().join("file/audit.sqlite3").is_file());
    assert!(!b.path().join(".aifirst").exists());
    // Started in `/` (as desktop MCP clients do): the user's state directory.
    let out = Command::new(env!("CARGO_BIN_EXE_notebook"))
        .args(["call", "noop"])
        .current_dir("/")
        .env("HOME", b.path())
        .env_remove("XDG_STATE_HOME")
        .env_remove("AIFIRST_STATE_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(b
        .path()
        .join(".local/state/aifirst/notebook/audit.sqlite3")
        .is_file());
}

#[test]
fn list_and_describe() {
    let b = Bench::new();
    let list = b.json(&["list"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "create_note",
            "delete_note",
            "fail",
            "get_note",
            "list_notes",
            "noop",
            "pin_note",
            "purge_notes",
            "rename_note",
            "tally",
            "untally"
        ]
    );
    let deletes = b.json(&["list", "--effect", "delete"]);
    assert_eq!(deletes.as_array().unwrap().len(), 3);
    let d = b.json(&["describe", "create_note"]);
    assert_eq!(d["undo"], "inverse: delete_note(id = $result.id)");
    assert_eq!(d["undo_confidence"], "high");
    assert_eq!(d["annotations"]["destructiveHint"], false);
    assert_eq!(d["input_schema"]["required"], serde_json::json!(["title"]));
    assert!(d["input_schema"].get("title").is_none());
    let text = b.ok(&["list"], 0);
    insta::assert_snapshot!("list", text);
}

#[test]
fn audit_commands_verify_report_and_export() {
    let b = Bench::new();
    b.json(&[
        "call",
        "create_note",
        "--args",
        r#"{"title":"t","body":"api_key=sk_live_abcdefghijklmnopqrstuvwx"}"#,
    ]);
    b.ok(&["call", "fail"], 1);
    b.json(&["undo"]);
    let v = b.json(&["audit", "verify"]);
    // An intent before each call and undo, and an outcome after; `fail` only reads this
    // process's state, and has its outcome alone.
    assert_eq!(v["records"], 5);
    assert_eq!(v["intact"], true, "{v}");

    let lines = b.ok(&["audit", "export", "--jsonl"], 0);
    let records: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 5);
    assert_eq!(records[0]["gen_ai.tool.name"], "create_note");
    assert_eq!(records[0]["aifirst.status"], "started");
    assert_eq!(records[1]["aifirst.status"], "ok");
    assert_eq!(records[0]["aifirst.client"], "notebook cli");
    assert_eq!(records[2]["gen_ai.tool.name"], "fail");
    assert_eq!(records[2]["aifirst.status"], "error");
    assert_eq!(records[4]["gen_ai.operation.name"], "undo_tool");
    assert_eq!(records[4]["aifirst.status"], "undone");
    assert!(
        !lines.contains("sk_live_abcdefghijklmnopqrstuvwx"),
        "{lines}"
    );
    b.ok(&["audit", "export", "-o", "out.jsonl"], 0);
    assert_eq!(
        std::fs::read_to_string(b.path().join("out.jsonl")).unwrap(),
        lines
    );
    let other = b.ok(&["--session", "nobody", "audit", "export"], 0);
    assert_eq!(other, "");

    b.ok(&["audit", "report", "--html", "report.html"], 0);
    let html = std::fs::read_to_string(b.path().join("report.html")).unwrap();
    assert!(html.contains("create_note") && html.contains("hash chain verified"));

    // Tamper with a record: verify names it and fails.
    let db = rusqlite::Connection::open(b.path().join(".aifirst/audit.sqlite3")).unwrap();
    db.execute("UPDATE records SET capability = 'noop' WHERE seq = 2", [])
        .unwrap();
    drop(db);
    let out = b.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("record 2"), "{err}");
}

#[test]
fn help_teaches() {
    let b = Bench::new();
    for cmd in [
        vec!["--help"],
        vec!["call", "--help"],
        vec!["undo", "--help"],
        vec!["audit", "--help"],
        vec!["audit", "report", "--help"],
        vec!["audit", "export", "--help"],
        vec!["serve", "--help"],
    ] {
        let text = b.ok(&cmd, 0);
        insta::assert_snapshot!(format!("help_{}", cmd.join("_").replace("--", "")), text);
    }
}

/// Runs the binary with its stdout's reader gone before anything is written.
fn with_stdout_closed(b: &Bench, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_notebook"))
        .args(args)
        .current_dir(b.path())
        .env("AIFIRST_ROOTS", b.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

/// `notebook list | head -0`: the reader is gone before anything is written. Before, `println!`
/// panicked ("failed printing to stdout: Broken pipe", exit 101).
#[test]
fn a_closed_stdout_ends_quietly() {
    let b = Bench::new();
    for args in [
        &["list"][..],
        &["describe", "create_note"],
        &["history"],
        &["--help"],
    ] {
        let out = with_stdout_closed(&b, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
    // A failure keeps its exit code when nobody reads the output.
    for (args, code) in [
        (&["call", "fail", "--json"][..], 1),
        (&["call", "nope", "--json"], 2),
    ] {
        let out = with_stdout_closed(&b, args);
        assert_eq!(out.status.code(), Some(code), "{args:?}");
    }
}

/// A note whose text contains a redaction marker (pasted from an audit log) is still written
/// back byte for byte by undo: the journal knows its compensation data is unredacted.
#[test]
fn undo_writes_back_text_that_looks_redacted() {
    let b = Bench::new();
    let body =
        "the audit shows Bearer [REDACTED:bearer_token] and …[truncated: 9 bytes, sha256 00]";
    b.ok(
        &[
            "call",
            "create_note",
            "--args",
            &serde_json::json!({"title": "log", "body": body}).to_string(),
        ],
        0,
    );
    b.ok(
        &["call", "delete_note", "--yes", "--args", r#"{"id":1}"#],
        0,
    );
    b.ok(&["undo"], 0);
    let notes: Value =
        serde_json::from_str(&std::fs::read_to_string(b.path().join("notes.json")).unwrap())
            .unwrap();
    assert_eq!(notes["notes"][0]["body"], body);
}
