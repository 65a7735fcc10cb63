//! `airun serve` on stdio, spoken to line by line as a client in another language would.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_airun");

/// A request whose string holds a lone UTF-16 surrogate escape (what JavaScript's
/// `JSON.stringify` writes for a string cut inside an emoji) is answered: it used to be
/// dropped, and the client waited for ever. The lone half becomes U+FFFD; a whole pair and an
/// escaped backslash before `ud800` are left alone.
/// A served `airun` and a way to read its answer to a request id.
struct Served {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    rx: mpsc::Receiver<Value>,
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
}

impl Served {
    fn start() -> Served {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let mut child = Command::new(BIN)
            .args(["--state-dir"])
            .arg(dir.path().join("state"))
            .args(["serve", "--root"])
            .arg(&root)
            .env_remove("AIFIRST_ROOTS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<Value>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        let mut s = Served {
            child,
            stdin,
            rx,
            _dir: dir,
            root,
        };
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}});
        s.send(&init.to_string());
        s.answer(1);
        s.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        s
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
    }

    fn answer(&self, id: i64) -> Value {
        self.answer_to(&json!(id))
    }

    fn answer_str(&self, id: &str) -> Value {
        self.answer_to(&json!(id))
    }

    fn answer_to(&self, id: &Value) -> Value {
        loop {
            let v = self
                .rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no answer to request {id}"));
            if v["id"] == *id {
                return v;
            }
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request whose string holds a lone UTF-16 surrogate escape (what JavaScript's
/// `JSON.stringify` writes for a string cut inside an emoji) is answered: it used to be
/// dropped, and the client waited for ever. The lone half becomes U+FFFD; a whole pair and an
/// escaped backslash before `ud800` are left alone.
#[test]
fn a_lone_surrogate_escape_is_answered_not_dropped() {
    let mut s = Served::start();
    // Written by hand: serde_json would not write a lone surrogate.
    s.send(
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"note.txt","content":"cut \ude00 here, whole \ud83d\ude00, kept \\ud800"}}}"#,
    );
    let v = s.answer(2);
    assert_eq!(v["result"]["isError"], false, "{v}");
    let written = std::fs::read_to_string(s.root.join("note.txt")).unwrap();
    assert_eq!(written, "cut \u{fffd} here, whole \u{1f600}, kept \\ud800");
}

/// `tools/call` whose params do not fit (arguments sent as JSON text, a number for a name) is
/// "invalid params" saying what to send; it was "method not found" with `tools/call` as the
/// whole message. A method MCP does not have is still "method not found", named. The server
/// keeps serving.
#[test]
fn params_that_do_not_fit_are_invalid_params_saying_what_to_send() {
    let mut s = Served::start();
    std::fs::write(s.root.join("a.txt"), "hi").unwrap();
    let cases = [
        (
            json!({"name": "read_text_file", "arguments": "{\"path\": \"a.txt\"}"}),
            -32602,
            "`arguments` must be a JSON object, not a string",
        ),
        (
            json!({"name": "read_text_file", "arguments": [1]}),
            -32602,
            "`arguments` must be a JSON object",
        ),
        (json!({"name": 7}), -32602, "`name` must be a string"),
    ];
    for (i, (params, code, says)) in cases.iter().enumerate() {
        let id = 10 + i64::try_from(i).unwrap();
        s.send(
            &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
                .to_string(),
        );
        let v = s.answer(id);
        assert_eq!(v["error"]["code"], *code, "{params}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{params}: {message}");
    }
    s.send(r#"{"jsonrpc":"2.0","id":20,"method":"frobnicate","params":{}}"#);
    let v = s.answer(20);
    assert_eq!(v["error"]["code"], -32601, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`frobnicate`"),
        "{v}"
    );
    s.send(r#"{"jsonrpc":"2.0","id":21,"method":"tools/call","params":{"name":"read_text_file","arguments":{"path":"a.txt"}}}"#);
    let v = s.answer(21);
    assert_eq!(v["result"]["content"][0]["text"], "hi", "{v}");
}

/// A message the server cannot read — not JSON, nested deeper than it reads, larger than
/// 16 MiB — is answered with an error under its id (rmcp dropped each unanswered, and the
/// client waited for ever); nothing is held past the limit, and the server keeps serving.
#[test]
fn unreadable_too_deep_and_too_large_messages_are_answered() {
    let mut s = Served::start();
    s.send(r#"{"jsonrpc":"2.0","id":30,"method":"tools/call","params":{"name":"read_text_file","#);
    let v = s.answer(30);
    assert_eq!(v["error"]["code"], -32700, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("not JSON"),
        "{v}"
    );
    let deep = format!("{}1{}", "[".repeat(130), "]".repeat(130));
    s.send(&format!(
        r#"{{"jsonrpc":"2.0","id":"deep","method":"tools/call","params":{{"name":"query_json","arguments":{{"filter":".","value":{deep}}}}}}}"#
    ));
    let v = s.answer_str("deep");
    assert_eq!(v["error"]["code"], -32700, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("127 levels"),
        "{v}"
    );
    let big = "x".repeat(16 * 1024 * 1024 + 10);
    s.send(&format!(
        r#"{{"jsonrpc":"2.0","id":31,"method":"tools/call","params":{{"name":"write_file","arguments":{{"path":"big.txt","content":"{big}"}}}}}}"#
    ));
    let v = s.answer(31);
    assert_eq!(v["error"]["code"], -32600, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("16 MiB"),
        "{v}"
    );
    assert!(!s.root.join("big.txt").exists());
    // Not UTF-8 (serde_json's skipping parse lets that by, and rmcp then dropped it).
    s.stdin
        .write_all(
            b"{\"jsonrpc\":\"2.0\",\"id\":34,\"method\":\"ping\",\"params\":{\"x\":\"\xff\"}}\n",
        )
        .unwrap();
    let v = s.answer(34);
    assert_eq!(v["error"]["code"], -32700, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("UTF-8"),
        "{v}"
    );
    // A notification that cannot be read has no id to answer: dropped; the server goes on.
    s.send(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":"#);
    std::fs::write(s.root.join("a.txt"), "hi").unwrap();
    s.send(r#"{"jsonrpc":"2.0","id":32,"method":"tools/call","params":{"name":"read_text_file","arguments":{"path":"a.txt"}}}"#);
    let v = s.answer(32);
    assert_eq!(v["result"]["content"][0]["text"], "hi", "{v}");
}

/// The last request, its newline missing when stdin closes, is answered (rmcp reads whole lines).
#[test]
fn a_last_request_without_its_newline_is_answered() {
    let mut s = Served::start();
    s.stdin
        .write_all(br#"{"jsonrpc":"2.0","id":40,"method":"ping"}"#)
        .unwrap();
    s.stdin.flush().unwrap();
    drop(std::mem::replace(
        &mut s.stdin,
        std::process::Command::new("true")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap()
            .stdin
            .take()
            .unwrap(),
    ));
    assert!(s.answer(40)["result"].is_object());
}
