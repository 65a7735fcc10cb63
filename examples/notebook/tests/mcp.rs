//! The MCP server, driven by the official Python MCP SDK (`mcp` from PyPI, installed into
//! `target/venv` by `.ci/setup`) over stdio and streamable HTTP, plus raw malformed JSON-RPC.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_notebook");

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("AIFIRST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/venv/bin/python");
    assert!(
        venv.exists(),
        "the MCP tests need the Python MCP SDK: run `bash .ci/setup` (it makes target/venv) \
         or point AIFIRST_PYTHON at a python that has `mcp` installed"
    );
    venv
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_session.py")
}

/// A work directory with a policy that wants deletes confirmed.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("airun.toml"),
        "[policy.effects]\ndelete = \"confirm\"\n",
    )
    .unwrap();
    dir
}

fn session(dir: &Path, transport: &[&str], mode: &str, confirm: &str, extra: &[&str]) -> Value {
    let mut args = vec![transport[0], transport[1], mode, confirm];
    args.extend_from_slice(extra);
    run_script(dir, &args)
}

/// Runs the SDK script with `args` in `dir` (the notebook's directory and root) and reads the
/// one JSON object it prints.
fn run_script(dir: &Path, args: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(script())
        .args(args)
        .current_dir(dir)
        .env("NOTEBOOK_DIR", dir)
        .env("AIFIRST_ROOTS", dir)
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

fn notes(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("notes.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["notes"].as_array().unwrap().clone()
}

fn error_kind(result: &Value) -> &str {
    assert_eq!(result["isError"], true, "{result}");
    result["_meta"]["aifirst/error"].as_str().unwrap_or("")
}

/// What every session must have seen, whatever the transport.
fn check_common(s: &Value) {
    assert_eq!(s["server"]["name"], "notebook");
    let tools = &s["tools"];
    for name in [
        "create_note",
        "delete_note",
        "undo",
        "history",
        "checkpoint",
    ] {
        assert!(tools.get(name).is_some(), "no tool {name}: {tools}");
    }
    // Annotations come from the effects.
    let ann = |t: &str| tools[t]["annotations"].clone();
    assert_eq!(ann("get_note")["readOnlyHint"], true);
    assert_eq!(ann("create_note")["readOnlyHint"], false);
    assert_eq!(ann("create_note")["destructiveHint"], false);
    assert_eq!(ann("delete_note")["destructiveHint"], true);
    assert_eq!(ann("rename_note")["destructiveHint"], true);
    assert_eq!(
        tools["create_note"]["_meta"]["aifirst/undo"],
        "inverse: delete_note(id = $result.id)"
    );
    assert_eq!(
        tools["create_note"]["_meta"]["aifirst/undo_confidence"],
        "high"
    );
    assert_eq!(
        tools["purge_notes"]["_meta"]["aifirst/effects"],
        json!(["delete", "filesystem"])
    );
    assert_eq!(
        tools["create_note"]["inputSchema"]["required"],
        json!(["title"])
    );
    assert!(tools["create_note"]["outputSchema"].is_object());

    // Calls, then undo through the meta tool.
    assert_eq!(s["create"]["structuredContent"]["title"], "from mcp");
    assert_eq!(s["rename"]["structuredContent"]["old_title"], "from mcp");
    assert_eq!(s["checkpoint"]["structuredContent"]["after_step"], 3);
    assert_eq!(s["create2"]["structuredContent"]["id"], 2);
    assert_eq!(s["undo_to"]["structuredContent"]["undone"], json!([4]));
    assert_eq!(s["undo2"]["structuredContent"]["undone"], json!([3, 2]));
    let steps = s["history"]["structuredContent"]["steps"]
        .as_array()
        .unwrap();
    assert_eq!(steps.len(), 4);
    assert_eq!(steps[0]["state"], "done");
    assert_eq!(steps[3]["state"], "undone");

    // Errors are results the model can read; the server keeps serving.
    assert!(
        s["unknown"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown tool `no_such_tool`"),
        "{}",
        s["unknown"]
    );
    assert_eq!(error_kind(&s["invalid"]), "invalid_arguments");
    assert!(s["invalid"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("/title"));
    assert_eq!(error_kind(&s["failing"]), "handler_failed");
    assert_eq!(s["after"]["isError"], false);
}

fn audit_clients(dir: &Path) -> String {
    let out = Command::new(BIN)
        .args(["audit", "export"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn stdio_modern_protocol_confirms_through_input_required() {
    let dir = workdir();
    let s = session(dir.path(), &["stdio", BIN], "auto", "accept", &["serve"]);
    assert_eq!(s["protocol"], "2026-07-28");
    check_common(&s);
    // The user was asked once, accepted, and the delete ran.
    // The user was asked twice (the delete, the irreversible purge), accepted, and both ran.
    let asked = s["elicitations"].as_array().unwrap();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked[0].as_str().unwrap().contains("delete_note"));
    assert!(asked[1].as_str().unwrap().contains("It cannot be undone"));
    assert_eq!(s["confirmed_delete"]["isError"], false);
    assert_eq!(s["irreversible"]["isError"], false);
    assert!(notes(dir.path()).is_empty());
    // The audit log names the client.
    let log = audit_clients(dir.path());
    assert!(
        log.contains("\"aifirst.client\":\"python-sdk-test 9.9\""),
        "{log}"
    );
    // And the undo stack is the same one the CLI sees: its newest step is the purge, which
    // cannot be undone, so undo stops there and says so.
    let out = Command::new(BIN)
        .args(["undo"])
        .current_dir(dir.path())
        .env("NOTEBOOK_DIR", dir.path())
        .env("AIFIRST_ROOTS", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("purge_notes"));
    assert!(notes(dir.path()).is_empty());
}

#[test]
fn stdio_legacy_protocol_asks_with_elicitation_and_respects_a_no() {
    let dir = workdir();
    let s = session(dir.path(), &["stdio", BIN], "legacy", "decline", &["serve"]);
    assert_ne!(s["protocol"], "2026-07-28");
    check_common(&s);
    assert_eq!(s["elicitations"].as_array().unwrap().len(), 2);
    assert_eq!(error_kind(&s["confirmed_delete"]), "declined");
    assert_eq!(error_kind(&s["irreversible"]), "declined");
    assert_eq!(
        notes(dir.path()).len(),
        1,
        "the declined delete must not run"
    );
}

#[test]
fn a_client_that_cannot_ask_gets_a_refusal_that_explains() {
    let dir = workdir();
    let s = session(dir.path(), &["stdio", BIN], "auto", "none", &["serve"]);
    assert_eq!(error_kind(&s["confirmed_delete"]), "needs_confirmation");
    let text = s["confirmed_delete"]["content"][0]["text"]
        .as_str()
        .unwrap();
    assert!(text.contains("--allow delete_note"), "{text}");
    assert_eq!(notes(dir.path()).len(), 1);
}

#[test]
fn meta_tools_can_be_switched_off() {
    let dir = workdir();
    let s = session(
        dir.path(),
        &["stdio", BIN],
        "auto",
        "accept",
        &["serve", "--no-meta-tools"],
    );
    assert!(s["tools"].get("undo").is_none());
    assert!(s["undo_to"]["message"]
        .as_str()
        .unwrap()
        .contains("unknown tool `undo`"));
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve --http 127.0.0.1:0` and reads the address it bound from stderr.
fn http_server(dir: &Path) -> (Server, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--http", "127.0.0.1:0"])
        .current_dir(dir)
        .env("NOTEBOOK_DIR", dir)
        .env("AIFIRST_ROOTS", dir)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    // Keep draining stderr so the server never blocks on it.
    std::thread::spawn(move || {
        let mut sink = String::new();
        let _ = stderr.read_to_string(&mut sink);
    });
    (Server(child), url)
}

fn raw_post(url: &str, body: &str) -> String {
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_string();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn streamable_http_serves_sessions_and_survives_garbage() {
    let dir = workdir();
    // A strict policy: irreversible calls are refused, not put to the user.
    std::fs::write(
        dir.path().join("airun.toml"),
        "[policy]\ndeny_irreversible = true\n[policy.effects]\ndelete = \"confirm\"\n",
    )
    .unwrap();
    let (_server, url) = http_server(dir.path());
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let garbage = raw_post(&url, "{this is not json");
    let status = garbage.lines().next().unwrap_or("");
    assert!(
        status.contains(" 4"),
        "malformed JSON must be a 4xx: {garbage}"
    );
    let s = session(dir.path(), &["http", &url], "auto", "accept", &[]);
    assert_eq!(s["protocol"], "2026-07-28");
    check_common(&s);
    assert_eq!(s["confirmed_delete"]["isError"], false);
    assert_eq!(error_kind(&s["irreversible"]), "refused");
    assert!(s["irreversible"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("cannot be undone"));
    // A second client on the same server, on the older protocol.
    std::fs::remove_file(dir.path().join("notes.json")).unwrap();
    let legacy = session(dir.path(), &["http", &url], "legacy", "decline", &[]);
    assert_eq!(error_kind(&legacy["confirmed_delete"]), "declined");
}

/// Found by the probe: every HTTP client shared one undo session, so client B's `undo` undid
/// client A's call. Each MCP session now has its own undo session.
#[test]
fn two_http_clients_have_separate_undo_stacks() {
    let dir = workdir();
    let (_server, url) = http_server(dir.path());
    let s = run_script(dir.path(), &["two", &url]);
    assert_eq!(
        s["b_undo"]["structuredContent"]["undone"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s["b_undo_again"]["structuredContent"]["undone"],
        json!([]),
        "B has nothing more to undo: A's call is not B's"
    );
    let titles: Vec<Value> = notes(dir.path())
        .iter()
        .map(|n| n["title"].clone())
        .collect();
    assert_eq!(titles, [json!("from a")], "A's note survived B's undo");
    let a = s["a_history"]["structuredContent"]["steps"]
        .as_array()
        .unwrap()
        .clone();
    let b = s["b_history"]["structuredContent"]["steps"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_eq!(
        (a[0]["state"].as_str(), b[0]["state"].as_str()),
        (Some("done"), Some("undone"))
    );
    assert_ne!(a[0]["session"], b[0]["session"]);
}

/// Reads JSON-RPC lines until the response with this id.
fn response(lines: &mut impl Iterator<Item = std::io::Result<String>>, id: i64) -> Value {
    for line in lines {
        let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v["id"] == id {
            return v;
        }
    }
    panic!("the server closed stdout before answering {id}");
}

#[test]
fn stdio_survives_malformed_json_rpc() {
    let dir = workdir();
    let mut child = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .env("NOTEBOOK_DIR", dir.path())
        .env("AIFIRST_ROOTS", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = |v: &str| writeln!(stdin, "{v}").unwrap();
    send(
        &json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
            "protocolVersion":"2025-06-18","capabilities":{},
            "clientInfo":{"name":"raw","version":"0"}}})
        .to_string(),
    );
    assert_eq!(
        response(&mut lines, 1)["result"]["serverInfo"]["name"],
        "notebook"
    );
    send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string());
    // Not JSON, not JSON-RPC, an unknown method, a call without a name.
    send("{garbage");
    send("[1, 2, 3]");
    send(&json!({"jsonrpc":"2.0","id":2,"method":"no/such/method"}).to_string());
    send(&json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{}}).to_string());
    send(
        &json!({"jsonrpc":"2.0","id":4,"method":"tools/call",
            "params":{"name":"create_note","arguments":{"title":[]}}})
        .to_string(),
    );
    send(
        &json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"noop","arguments":{}}})
            .to_string(),
    );
    let mut seen = std::collections::BTreeMap::new();
    for line in lines.by_ref() {
        let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if let Some(id) = v["id"].as_i64() {
            seen.insert(id, v);
            // Requests are served concurrently: answers may come in any order.
            if (2..=5).all(|i| seen.contains_key(&i)) {
                break;
            }
        }
    }
    assert!(seen[&2]["error"].is_object(), "{:?}", seen.get(&2));
    assert!(seen[&3]["error"].is_object(), "{:?}", seen.get(&3));
    assert_eq!(seen[&4]["result"]["isError"], true);
    assert_eq!(seen[&5]["result"]["content"][0]["text"], "true");
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "closing stdin ends the server cleanly");
}

/// `serve --toolset dynamic`: three tools instead of one per capability; a search finds the
/// capability, describe gives its schema, and a call made through `call_capability` is the
/// capability's own call — validated, confirmed by policy, journaled (undo reverts it) and
/// audited under its own name.
#[test]
fn a_dynamic_toolset_searches_describes_calls_and_undoes() {
    let dir = workdir();
    let s = run_script(
        dir.path(),
        &["dynamic", BIN, "serve", "--toolset", "dynamic"],
    );
    let mut listed: Vec<&str> = s["tools"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        [
            "call_capability",
            "checkpoint",
            "describe_capability",
            "history",
            "redo",
            "search_capabilities",
            "undo"
        ]
    );
    // Search: the best hit first, each with what it does and how it is undone.
    let hits = s["search"]["structuredContent"]["capabilities"]
        .as_array()
        .unwrap();
    assert_eq!(hits[0]["name"], "create_note", "{hits:?}");
    assert_eq!(hits[0]["undo"], "inverse: delete_note(id = $result.id)");
    assert_eq!(
        s["search_none"]["structuredContent"]["capabilities"],
        json!([])
    );
    // Describe: the full tool.
    let d = &s["describe"]["structuredContent"];
    assert_eq!(d["name"], "create_note");
    assert_eq!(d["inputSchema"]["required"], json!(["title"]));
    assert_eq!(d["annotations"]["readOnlyHint"], false);
    assert_eq!(error_kind(&s["describe_typo"]), "unknown_capability");
    assert!(s["describe_typo"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("`create_note`"));
    // Calls: results as direct calls give them; validation and the delete's confirmation apply.
    assert_eq!(s["create"]["structuredContent"]["title"], "dyn");
    assert_eq!(s["create2"]["structuredContent"]["id"], 2);
    assert_eq!(error_kind(&s["invalid"]), "invalid_arguments");
    let asked = s["elicitations"].as_array().unwrap();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].as_str().unwrap().contains("delete_note"));
    assert_eq!(s["delete"]["isError"], false);
    // Undo reverts the delete made through call_capability: note 2 is back.
    assert_eq!(s["undo"]["structuredContent"]["undone"], json!([3]));
    let titles: Vec<Value> = notes(dir.path())
        .iter()
        .map(|n| n["title"].clone())
        .collect();
    assert_eq!(titles, [json!("dyn"), json!("second")]);
    // The journal and the audit log name the capability, not the dynamic tool.
    let steps = s["history"]["structuredContent"]["steps"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = steps
        .iter()
        .map(|st| st["capability"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["create_note", "create_note", "delete_note"]);
    let log = audit_clients(dir.path());
    assert!(log.contains("delete_note") && !log.contains("call_capability"));
}
