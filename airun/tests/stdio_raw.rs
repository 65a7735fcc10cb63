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
#[test]
fn a_lone_surrogate_escape_is_answered_not_dropped() {
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
    let mut stdin = child.stdin.take().unwrap();
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
    let answer = |id: i64| -> Value {
        loop {
            let v = rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no answer to request {id}"));
            if v["id"] == id {
                return v;
            }
        }
    };
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}});
    writeln!(stdin, "{init}").unwrap();
    answer(1);
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
    )
    .unwrap();
    // Written by hand: serde_json would not write a lone surrogate.
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"write_file","arguments":{{"path":"note.txt","content":"cut \ude00 here, whole \ud83d\ude00, kept \\ud800"}}}}}}"#
    )
    .unwrap();
    let v = answer(2);
    assert_eq!(v["result"]["isError"], false, "{v}");
    let written = std::fs::read_to_string(root.join("note.txt")).unwrap();
    assert_eq!(written, "cut \u{fffd} here, whole \u{1f600}, kept \\ud800");
    drop(stdin);
    let _ = child.wait();
}
