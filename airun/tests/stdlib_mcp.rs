//! The `net`, `sys` and `data` tools served by `airun serve` and driven by the official Python
//! MCP SDK over stdio: every tool listed with its annotations, called, and undone where it can
//! be — a downloaded file, a command's output file, a CSV and a SQLite change all go back with
//! one `undo` — while the irreversible ones are refused without the user's confirmation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

mod common;
use common::{python, tree};

const BIN: &str = env!("CARGO_BIN_EXE_airun");

/// A page server on 127.0.0.1: `/page.html` (HTML), anything else 404. Counts requests.
fn serve() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counted.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line.trim().is_empty() => break,
                    Ok(_) => {}
                }
            }
            let (status, body) = if first.starts_with("GET /page.html ") {
                (
                    "200 OK",
                    "<html><head><title>T</title></head><body><h1>Release notes</h1>\
                     <p>See <a href=\"https://example.com/\">the site</a>.</p></body></html>",
                )
            } else {
                ("404 Not Found", "")
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, hits)
}

/// Runs the SDK script (tests/fs_session.py) against `airun serve` in `dir`; returns what it saw.
fn session(dir: &Path, root: &Path, calls: Value) -> Value {
    let plan = json!({
        "command": [BIN, "serve", "--root", root, "--state-dir", dir.join("state")],
        "cwd": dir,
        "mode": "auto",
        "roots": null,
        "calls": calls,
    });
    let plan_file = dir.join("plan.json");
    std::fs::write(&plan_file, plan.to_string()).unwrap();
    let out = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fs_session.py"))
        .arg(&plan_file)
        .current_dir(dir)
        .env_remove("AIFIRST_ROOTS")
        .env_remove("AIFIRST_STATE_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python client failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Fails when `secret` appears in any file below `dir` (the journal, the audit log, blobs).
fn assert_no_secret_in(dir: &Path, secret: &str) {
    let mut stack = vec![dir.to_path_buf()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files += 1;
                let bytes = std::fs::read(&p).unwrap();
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{} holds the secret",
                    p.display()
                );
            }
        }
    }
    assert!(
        files >= 2,
        "the state directory holds the journal and the audit log"
    );
}

fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn net_sys_and_data_tools_over_mcp_with_undo() {
    let (port, hits) = serve();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("readme.txt"), "hello\n").unwrap();
    {
        let db = rusqlite::Connection::open(root.join("shop.db")).unwrap();
        db.execute_batch(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER);
             INSERT INTO items VALUES (1, 'apple', 3), (2, 'pear', 5);",
        )
        .unwrap();
    }
    // The operator's configuration: one host, one program.
    std::fs::write(
        dir.path().join("airun.toml"),
        format!("allowed_hosts = [\"127.0.0.1:{port}\"]\nallowed_commands = [\"sh\"]\n"),
    )
    .unwrap();
    let before = tree(&root);
    let p = |rel: &str| root.join(rel).display().to_string();
    let page = format!("http://127.0.0.1:{port}/page.html");
    let calls = json!([
        ["fetch", {"url": page}],
        ["download_file", {"url": page, "path": p("page.html")}],
        ["run_command", {"program": "sh", "args": ["-c", "echo built > out.txt; cat readme.txt out.txt"],
                         "undo_paths": [p("out.txt")]}],
        ["get_current_time", {"timezone": "UTC"}],
        ["convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Kolkata"}],
        ["which", {"program": "sh"}],
        ["run_command", {"program": "python3", "args": ["-c", "print(1)"], "undo_paths": [p("x.txt")]}],
        ["run_command", {"program": "sh", "args": ["-c", "echo no undo paths > loose.txt"]}],
        ["http_request", {"method": "POST", "url": page, "json": {"a": 1}}],
        ["fetch", {"url": "http://127.0.0.2:9/"}],
        ["write_csv", {"path": p("items.csv"), "rows": [{"id": 1, "name": "apple, red"}, {"id": 2, "name": "pear"}]}],
        ["read_csv", {"path": p("items.csv")}],
        ["sqlite_execute", {"database": p("shop.db"), "sql": "UPDATE items SET qty = qty + ?1 WHERE name = ?2", "params": [10, "apple"]}],
        ["sqlite_execute", {"database": p("shop.db"), "sql": "DELETE FROM items WHERE id = 2; INSERT INTO items VALUES (3, 'fig', 1)"}],
        ["sqlite_query", {"database": p("shop.db"), "sql": "SELECT id, name, qty FROM items ORDER BY id"}],
        ["query_json", {"filter": "[.[] | select(.qty > 4) | .name]", "value": [{"name": "a", "qty": 5}, {"name": "b", "qty": 1}]}],
        ["hash_file", {"path": p("readme.txt")}],
        ["diff_text", {"old": "a\nb\n", "new": "a\nc\n"}],
        ["history", {}],
        ["undo", {"steps": 5}],
        ["http_get", {"url": page}],
        ["system_info", {}],
        ["list_processes", {"limit": 5}],
        ["get_env", {"name": "AIFIRST_TEST_API_TOKEN"}],
        ["run_command", {"program": "sh", "args": ["-c", "echo deploy with 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"],
                         "undo_paths": [p("y.txt")]}],
        ["sqlite_execute", {"database": p("shop.db"), "sql": "DROP TABLE items"}],
        // A recursion without end ends a worker process, not the server.
        ["query_json", {"filter": "def f: 1 + f; f", "value": 1}],
        // So does one that asks for more memory than a filter may use (5 GB at once).
        ["query_json", {"filter": "(\"x\" * 5000000000) | length", "value": 1}],
        ["query_json", {"filter": "[paths] | length", "value": {"a": [1, {"b": 2}]}}],
    ]);
    let s = session(dir.path(), &root, calls);
    let tools = s["tools"].as_object().unwrap();
    let ann = |name: &str| {
        tools.get(name).unwrap_or_else(|| panic!("no tool {name}"))["annotations"].clone()
    };
    for name in [
        "fetch",
        "http_get",
        "http_request",
        "download_file",
        "run_command",
        "get_current_time",
        "convert_time",
        "system_info",
        "list_processes",
        "get_env",
        "which",
        "query_json",
        "read_csv",
        "write_csv",
        "sqlite_query",
        "sqlite_execute",
        "hash_file",
        "diff_text",
    ] {
        assert!(tools.contains_key(name), "no tool {name}");
    }
    assert_eq!(ann("fetch")["readOnlyHint"], true);
    assert_eq!(ann("fetch")["openWorldHint"], true);
    assert_eq!(ann("http_request")["readOnlyHint"], false);
    assert_eq!(ann("http_request")["destructiveHint"], true);
    assert_eq!(ann("run_command")["openWorldHint"], true);
    assert_eq!(ann("get_current_time")["readOnlyHint"], true);
    assert_eq!(ann("download_file")["readOnlyHint"], false);

    let r = s["results"].as_array().unwrap();
    for (i, res) in r.iter().enumerate().take(6) {
        assert_ne!(res["isError"], true, "call {i}: {res}");
    }
    assert!(
        text(&r[0]).starts_with(&format!("Contents of {page}:")),
        "{}",
        r[0]
    );
    assert!(text(&r[0]).contains("# Release notes"), "{}", r[0]);
    assert!(
        r[1]["structuredContent"]["bytes"].as_u64().unwrap() > 100,
        "{}",
        r[1]
    );
    let ran = &r[2]["structuredContent"];
    assert_eq!(ran["exit_code"], 0, "{}", r[2]);
    assert_eq!(ran["stdout"], "hello\nbuilt\n");
    assert_eq!(r[3]["structuredContent"]["timezone"], "UTC");
    assert_eq!(
        r[4]["structuredContent"]["time_difference"], "+5.5h",
        "{}",
        r[4]
    );
    assert_eq!(r[5]["structuredContent"]["allowed"], true, "{}", r[5]);
    // Not allowed: refused before anything runs.
    assert_eq!(r[6]["isError"], true);
    assert!(text(&r[6]).contains("allowed_commands"), "{}", r[6]);
    // No undo_paths: irreversible, so it needs the user's confirmation (this client gives none).
    assert_eq!(
        r[7]["_meta"]["aifirst/error"], "needs_confirmation",
        "{}",
        r[7]
    );
    assert!(!root.join("loose.txt").exists(), "nothing ran");
    assert_eq!(r[8]["isError"], true, "{}", r[8]);
    assert_eq!(
        r[8]["_meta"]["aifirst/error"], "needs_confirmation",
        "{}",
        r[8]
    );
    // A host outside allowed_hosts.
    assert_eq!(r[9]["isError"], true);
    assert_eq!(ann("sqlite_query")["readOnlyHint"], true);
    assert_eq!(ann("sqlite_execute")["destructiveHint"], true);
    // data
    for (i, res) in r.iter().enumerate().skip(10).take(8) {
        assert_ne!(res["isError"], true, "call {i}: {res}");
    }
    assert_eq!(r[10]["structuredContent"]["rows_written"], 2, "{}", r[10]);
    assert_eq!(
        r[11]["structuredContent"]["rows"][0]["name"], "apple, red",
        "{}",
        r[11]
    );
    assert_eq!(r[12]["structuredContent"]["rows_changed"], 1, "{}", r[12]);
    assert_eq!(
        r[14]["structuredContent"]["rows"],
        json!([[1, "apple", 13], [3, "fig", 1]]),
        "{}",
        r[14]
    );
    assert_eq!(
        r[15]["structuredContent"]["results"],
        json!([["a"]]),
        "{}",
        r[15]
    );
    assert_eq!(
        r[16]["structuredContent"]["hex"],
        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    );
    assert!(
        text(&r[17]).contains("-b") && text(&r[17]).contains("+c"),
        "{}",
        r[17]
    );
    // The five undoable changes (two SQL changes, the CSV, the command's file, the download),
    // undone by one `undo`: the files are as they were and so are the rows.
    assert_eq!(
        r[19]["structuredContent"]["undone"]
            .as_array()
            .map(Vec::len),
        Some(5),
        "{}",
        r[19]
    );
    let rows: Vec<(i64, String, i64)> = {
        let db = rusqlite::Connection::open(root.join("shop.db")).unwrap();
        let mut st = db
            .prepare("SELECT id, name, qty FROM items ORDER BY id")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(rows, vec![(1, "apple".into(), 3), (2, "pear".into(), 5)]);
    let mut now = tree(&root);
    let mut was = before.clone();
    // SQLite may leave its files' bytes different after a change and its undo; the rows say it.
    now.remove("shop.db");
    was.remove("shop.db");
    assert_eq!(now, was);
    // The read-only tools answer with data.
    assert_eq!(r[20]["structuredContent"]["status"], 200, "{}", r[20]);
    assert!(
        r[21]["structuredContent"]["cpus"].as_u64().unwrap() >= 1,
        "{}",
        r[21]
    );
    assert!(
        !r[22]["structuredContent"]["processes"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{}",
        r[22]
    );
    // The SDK starts the server with a minimal environment: the variable is not there (the
    // stdlib tests show one named like a secret being withheld).
    assert_eq!(
        r[23]["structuredContent"]["value"],
        Value::Null,
        "{}",
        r[23]
    );
    // fetch, download_file and http_get: three requests; the refused POST and host: none.
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    // A token a command prints (and its arguments carry) comes back, and is kept, redacted.
    let token = "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";
    let out = r[24]["structuredContent"]["stdout"].as_str().unwrap();
    assert!(out.starts_with("deploy with [REDACTED"), "{}", r[24]);
    assert!(!r[24].to_string().contains(token));
    assert_no_secret_in(&dir.path().join("state"), token);
    // A schema change cannot be undone: the user is asked first (this client cannot answer),
    // and the table is still there.
    assert_eq!(
        r[25]["_meta"]["aifirst/error"], "needs_confirmation",
        "{}",
        r[25]
    );
    assert!(
        text(&r[25]).contains("drops the table `items`"),
        "{}",
        r[25]
    );
    let tables: i64 = rusqlite::Connection::open(root.join("shop.db"))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'items'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1);
    assert_eq!(r[26]["isError"], true, "{}", r[26]);
    assert!(
        text(&r[26]).contains("recursing without end or by building a value nested too deep"),
        "{}",
        r[26]
    );
    assert_eq!(r[27]["isError"], true, "{}", r[27]);
    assert!(
        text(&r[27]).contains("more than the 4 GiB of memory a filter may use"),
        "{}",
        r[27]
    );
    assert_eq!(
        r[28]["structuredContent"]["results"],
        json!([4]),
        "{}",
        r[28]
    );
}

/// query_json's worker takes and gives values as deep as jq may go (256 levels), past the 128
/// that JSON parsers allow by default, files included, and a program started with only the worker's variable
/// (inherited by mistake) is not taken over by it.
#[test]
fn query_json_workers_pass_deep_values_and_need_their_marker() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &str, env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["call", "query_json", "--args", args])
            .current_dir(dir.path())
            .env("AIFIRST_STATE_DIR", dir.path().join("state"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // An answer 200 levels deep.
    let (code, out, err) = run(
        r#"{"filter": "reduce range(199) as $i (0; [.])", "value": 0}"#,
        &[],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.matches('[').count(), 199 + 1, "{out}");
    // A file 200 levels deep, read by the worker, past serde_json's default of 128; one of
    // 100,000 levels is refused before anything parses it.
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("deep.json"),
        format!("{}1{}", "[".repeat(200), "]".repeat(200)),
    )
    .unwrap();
    std::fs::write(
        root.join("deeper.json"),
        format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("airun.toml"),
        format!("allowed_roots = [{:?}]\n", root.display().to_string()),
    )
    .unwrap();
    let (code, out, err) = run(
        r#"{"filter": "[paths] | length", "path": "deep.json"}"#,
        &[],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("200"), "{out}");
    let (code, _, err) = run(r#"{"filter": ".", "path": "deeper.json"}"#, &[]);
    assert_ne!(code, Some(0));
    assert!(err.contains("nested deeper than 256 levels"), "{err}");
    // The variable alone (no marker argument): the program does its usual work.
    let (code, out, err) = run(
        r#"{"filter": ". + 1", "value": 1}"#,
        &[("AIFIRST_JQ_WORKER", "1")],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains('2'), "{out}");
}
