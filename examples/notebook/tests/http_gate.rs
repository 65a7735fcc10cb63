//! The HTTP MCP server under attack, over real HTTP on loopback: Host and Origin checks (DNS
//! rebinding), the bearer token, a loopback-only default bind, JSON-RPC errors for malformed
//! input, the body limit, the session cap and idle expiry.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_notebook");

struct Server {
    child: Child,
    addr: String,
    stderr_head: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `serve --http LISTEN` with `env`, reads the bound address from stderr.
fn serve(dir: &Path, listen: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--http", listen])
        .args(extra)
        .current_dir(dir)
        .env("NOTEBOOK_DIR", dir)
        .env("AIFIRST_ROOTS", dir)
        .env_remove("AIFIRST_HTTP_TOKEN")
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut head = String::new();
    let addr = loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("the server stopped: {head}");
        }
        head.push_str(&line);
        if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            break url
                .trim_start_matches("http://")
                .trim_end_matches("/mcp")
                .to_string();
        }
    };
    std::thread::spawn(move || {
        let mut sink = String::new();
        let _ = stderr.read_to_string(&mut sink);
    });
    Server {
        child,
        addr,
        stderr_head: head,
    }
}

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        let start = self.body.find('{').unwrap_or(0);
        let end = self
            .body
            .rfind('}')
            .map(|e| e + 1)
            .unwrap_or(self.body.len());
        serde_json::from_str(&self.body[start..end])
            .unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// One raw HTTP/1.1 request; `headers` are added as given (Host included when listed).
fn request(addr: &str, method: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!("{method} /mcp HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).into_owned();
    let (headers, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Reply {
        status,
        headers: headers.to_string(),
        body: body.to_string(),
    }
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"gate-test","version":"1"}}}"#;

fn initialize(addr: &str, headers: &[(&str, &str)]) -> Reply {
    request(addr, "POST", headers, INIT)
}

#[test]
fn host_and_origin_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), "127.0.0.1:0", &[], &[]);
    let port = s.addr.rsplit(':').next().unwrap().to_string();
    assert_eq!(initialize(&s.addr, &[]).status, 200);
    // A page on another site, in the user's browser.
    let evil = initialize(&s.addr, &[("Origin", "http://evil.example")]);
    assert_eq!(evil.status, 403, "{}", evil.body);
    assert!(evil.body.contains("Origin"), "{}", evil.body);
    // DNS rebinding: evil.example now resolves to 127.0.0.1; the Host header gives it away.
    let rebound = initialize(
        &s.addr,
        &[
            ("Host", &format!("evil.example:{port}")),
            ("Origin", "http://evil.example"),
        ],
    );
    assert_eq!(rebound.status, 403);
    let rebound = initialize(&s.addr, &[("Host", &format!("evil.example:{port}"))]);
    assert_eq!(rebound.status, 403, "{}", rebound.body);
    // Loopback origins (a local inspector) and names pass.
    let local = initialize(
        &s.addr,
        &[
            ("Origin", "http://localhost:6274"),
            ("Host", &format!("localhost:{port}")),
        ],
    );
    assert_eq!(local.status, 200, "{}", local.body);
    // An origin listed in airun.toml passes.
    std::fs::write(
        dir.path().join("airun.toml"),
        "[mcp]\nallowed_origins = [\"https://app.example.com\"]\n",
    )
    .unwrap();
    let s2 = serve(dir.path(), "127.0.0.1:0", &[], &[]);
    assert_eq!(
        initialize(&s2.addr, &[("Origin", "https://app.example.com")]).status,
        200
    );
    assert_eq!(
        initialize(
            &s2.addr,
            &[("Origin", "https://app.example.com.evil.example")]
        )
        .status,
        403
    );
}

#[test]
fn malformed_input_gets_json_rpc_errors_and_bodies_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("airun.toml"),
        "[mcp]\nmax_body_bytes = 2000\n",
    )
    .unwrap();
    let s = serve(dir.path(), "127.0.0.1:0", &[], &[]);
    let r = request(&s.addr, "POST", &[], "{this is not json");
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], -32700, "{}", r.body);
    assert_eq!(r.json()["jsonrpc"], "2.0");
    let r = request(&s.addr, "POST", &[], "[1, 2]");
    assert_eq!(r.json()["error"]["code"], -32600, "{}", r.body);
    let r = request(
        &s.addr,
        "POST",
        &[],
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
    );
    assert_eq!(r.json()["error"]["code"], -32600, "{}", r.body);
    assert!(r.body.contains("batches"), "{}", r.body);
    let r = request(&s.addr, "POST", &[], "");
    assert_eq!(r.json()["error"]["code"], -32700, "{}", r.body);
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(5000)
    );
    let r = request(&s.addr, "POST", &[], &big);
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.body.contains("max_body_bytes"), "{}", r.body);
    // Still serving.
    assert_eq!(initialize(&s.addr, &[]).status, 200);
}

#[test]
fn sessions_are_capped_and_expire_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("airun.toml"),
        "[mcp]\nmax_sessions = 3\nsession_idle_secs = 2\n",
    )
    .unwrap();
    let s = serve(dir.path(), "127.0.0.1:0", &[], &[]);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = initialize(&s.addr, &[]);
        assert_eq!(r.status, 200, "{}", r.body);
        ids.push(r.header("mcp-session-id").expect("a session id"));
    }
    let refused = initialize(&s.addr, &[]);
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.json()["error"]["code"], -32000);
    assert!(refused.body.contains("max_sessions"), "{}", refused.body);
    // Closing one makes room.
    let closed = request(&s.addr, "DELETE", &[("Mcp-Session-Id", &ids[0])], "");
    assert!(closed.status < 300, "{}", closed.status);
    let mut admitted = false;
    for _ in 0..50 {
        if initialize(&s.addr, &[]).status == 200 {
            admitted = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(admitted, "a closed session did not make room");
    // Idle sessions go away on their own.
    std::thread::sleep(Duration::from_secs(4));
    let ping = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
    let stale = request(&s.addr, "POST", &[("Mcp-Session-Id", &ids[1])], ping);
    assert_eq!(stale.status, 404, "{}", stale.body);
    for _ in 0..3 {
        assert_eq!(initialize(&s.addr, &[]).status, 200);
    }
}

#[test]
fn another_loopback_address_serves_its_own_host() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), "127.0.0.2:0", &[], &[]);
    assert!(s.addr.starts_with("127.0.0.2:"), "{}", s.addr);
    assert_eq!(initialize(&s.addr, &[]).status, 200);
}

#[test]
fn a_bearer_token_is_required_when_set() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(
        dir.path(),
        "127.0.0.1:0",
        &[],
        &[("AIFIRST_HTTP_TOKEN", "tok-gate-3c9f1e")],
    );
    let r = initialize(&s.addr, &[]);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate").as_deref(), Some("Bearer"));
    assert_eq!(
        initialize(&s.addr, &[("Authorization", "Bearer wrong-token-xxxxxx")]).status,
        401
    );
    assert_eq!(
        initialize(&s.addr, &[("Authorization", "Bearer tok-gate-3c9f1e")]).status,
        200
    );
}

#[test]
fn a_non_loopback_bind_needs_allow_remote_and_then_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--http", "0.0.0.0:0"])
        .current_dir(dir.path())
        .env("AIFIRST_ROOTS", dir.path())
        .env_remove("AIFIRST_HTTP_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--allow-remote"), "{err}");
    // With --allow-remote: a token is generated, printed once, and required. The Host a LAN
    // client would send must be listed; loopback names work as before.
    let s = serve(dir.path(), "0.0.0.0:0", &["--allow-remote"], &[]);
    let token = s
        .stderr_head
        .lines()
        .skip_while(|l| !l.starts_with("bearer token"))
        .nth(1)
        .unwrap_or_else(|| panic!("no token in {}", s.stderr_head))
        .trim()
        .to_string();
    assert!(token.len() >= 32, "{token}");
    let port = s.addr.rsplit(':').next().unwrap().to_string();
    let local = format!("127.0.0.1:{port}");
    assert_eq!(initialize(&local, &[]).status, 401);
    let auth = format!("Bearer {token}");
    assert_eq!(initialize(&local, &[("Authorization", &auth)]).status, 200);
    let lan = initialize(
        &local,
        &[
            ("Authorization", &auth),
            ("Host", &format!("192.168.1.20:{port}")),
        ],
    );
    assert_eq!(lan.status, 403, "an unlisted Host: {}", lan.body);
}
