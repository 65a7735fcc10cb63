//! The network tools end to end, called through the registry as a server calls them, against
//! real HTTP servers on loopback addresses only (127.0.0.1, and 127.0.0.2 / ::1 where they can
//! be bound): Markdown and pagination like the official fetch server, and the sandbox — no
//! redirect, numeric address form, `localhost` or secret header gets a request anywhere it
//! should not go, and each refused listener counts zero connections.

#![cfg(feature = "net")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aifirst::http::Net;
use aifirst::{Ctx, NetLimits, Registry, Sandbox, ToolError, UndoDecl, Value};
use aifirst_stdlib as _;
use serde_json::json;

/// One request a server received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a server answers.
enum Reply {
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Waits this long, then answers.
    Slow(Duration),
    /// A text/plain body of this many bytes, written in chunks (each counted as it is written).
    Huge(usize),
    /// Waits this long, then gives the other reply.
    Delayed(Duration, Box<Reply>),
}

fn reply(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
    Reply::Full {
        status,
        headers: vec![("content-type".into(), content_type.into())],
        body: body.into(),
    }
}

fn redirect(status: u16, location: &str) -> Reply {
    Reply::Full {
        status,
        headers: vec![("location".into(), location.into())],
        body: Vec::new(),
    }
}

fn ok_text(_: &Seen) -> Reply {
    reply(200, "text/plain", "reached")
}

type Respond = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A tiny HTTP/1.1 server: counts the connections it accepts and ends, and the body bytes it
/// writes; records every request.
struct Server {
    port: u16,
    connections: Arc<AtomicUsize>,
    counts: Arc<Counts>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// What a server's connections did.
#[derive(Default)]
struct Counts {
    /// Connections served to their end (the client closed, or a write failed).
    ended: AtomicUsize,
    /// Bytes of `Reply::Huge` bodies written (accepted by the socket).
    written: AtomicUsize,
}

impl Server {
    /// A server on `ip` (a loopback address), or `None` when it cannot be bound there.
    fn try_start(
        ip: &str,
        respond: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Option<Server> {
        let listener = TcpListener::bind((ip, 0)).ok()?;
        let port = listener.local_addr().ok()?.port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counts: Arc<Counts> = Arc::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let respond: Arc<Respond> = Arc::new(respond);
        let (count, log, tally) = (connections.clone(), seen.clone(), counts.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let (log, respond, tally) = (log.clone(), respond.clone(), tally.clone());
                std::thread::spawn(move || {
                    serve_connection(stream, &log, &*respond, &tally);
                    tally.ended.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Some(Server {
            port,
            connections,
            counts,
            seen,
        })
    }

    fn start(ip: &str, respond: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Server {
        Server::try_start(ip, respond).unwrap_or_else(|| panic!("cannot listen on {ip}"))
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Body bytes written so far by `Reply::Huge`.
    fn written(&self) -> usize {
        self.counts.written.load(Ordering::SeqCst)
    }

    /// Waits (up to 10 s) until every connection accepted has ended: the client closed it.
    async fn wait_until_closed(&self) {
        let until = Instant::now() + Duration::from_secs(10);
        while self.counts.ended.load(Ordering::SeqCst) < self.connections()
            && Instant::now() < until
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// `127.0.0.1:PORT`, as allowed_hosts names it.
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn serve_connection(
    stream: std::net::TcpStream,
    log: &Mutex<Vec<Seen>>,
    respond: &Respond,
    counts: &Counts,
) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let req = Seen {
            method,
            target,
            headers,
            body,
        };
        log.lock().unwrap().push(req.clone());
        let mut answer = respond(&req);
        while let Reply::Delayed(wait, then) = answer {
            std::thread::sleep(wait);
            answer = *then;
        }
        let written = match answer {
            Reply::Full {
                status,
                headers,
                body,
            } => {
                let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                stream
                    .write_all(head.as_bytes())
                    .and_then(|_| stream.write_all(&body))
            }
            Reply::Slow(wait) => {
                std::thread::sleep(wait);
                stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlate")
            }
            Reply::Huge(n) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {n}\r\n\r\n"
                );
                let chunk = vec![b'a'; 64 * 1024];
                let mut result = stream.write_all(head.as_bytes());
                let mut left = n;
                while result.is_ok() && left > 0 {
                    let k = left.min(chunk.len());
                    result = stream.write_all(&chunk[..k]);
                    if result.is_ok() {
                        counts.written.fetch_add(k, Ordering::SeqCst);
                    }
                    left -= k;
                }
                result
            }
            // Taken apart above.
            Reply::Delayed(..) => Ok(()),
        };
        if written.is_err() {
            return;
        }
    }
}

fn ctx_allowing(hosts: &[String]) -> Ctx {
    Ctx::with_sandbox(Arc::new(
        Sandbox::new().with_net(Net::new(hosts.to_vec(), vec![])),
    ))
}

fn ctx_with_root(hosts: &[String], root: &Path) -> Ctx {
    Ctx::with_sandbox(Arc::new(
        Sandbox::new()
            .with_roots(&[root.to_path_buf()])
            .unwrap()
            .with_net(Net::new(hosts.to_vec(), vec![])),
    ))
}

fn ctx_limited(hosts: &[String], root: &Path, limits: NetLimits) -> Ctx {
    Ctx::with_sandbox(Arc::new(
        Sandbox::new()
            .with_roots(&[root.to_path_buf()])
            .unwrap()
            .with_net(Net::new(hosts.to_vec(), vec![]))
            .with_net_limits(limits),
    ))
}

async fn call(ctx: &Ctx, tool: &str, args: Value) -> Result<Value, ToolError> {
    let registry = Registry::new().unwrap();
    let def = registry
        .get(tool)
        .unwrap_or_else(|| panic!("`{tool}` is not registered"));
    def.invoke(ctx, args).await
}

async fn text(ctx: &Ctx, tool: &str, args: Value) -> String {
    match call(ctx, tool, args.clone()).await {
        Ok(Value::String(s)) => s,
        other => panic!("{tool} {args}: {other:?}"),
    }
}

async fn err(ctx: &Ctx, tool: &str, args: Value) -> ToolError {
    match call(ctx, tool, args.clone()).await {
        Err(e) => e,
        Ok(v) => panic!("{tool} {args} succeeded: {v}"),
    }
}

fn not_allowed(e: &ToolError) -> bool {
    matches!(e, ToolError::NotAllowed { .. })
}

const PAGE: &str = "<!doctype html><html><head><title>The title</title>\
    <style>.x { color: red }</style></head><body>\
    <h1>Title</h1><p>See <a href=\"https://example.com/\">the example</a>.</p>\
    <script>var secret = 1;</script><noscript>enable scripts</noscript></body></html>";

#[test]
fn the_tools_are_registered_with_their_effects() {
    let registry = Registry::new().unwrap();
    let props = |tool: &str| {
        let schema = registry.get(tool).unwrap().input_schema();
        let v = serde_json::to_value(&schema).unwrap();
        v["properties"].as_object().cloned().unwrap_or_default()
    };
    let fetch = props("fetch");
    for arg in ["url", "max_length", "start_index", "raw"] {
        assert!(fetch.contains_key(arg), "fetch lacks `{arg}`");
    }
    for arg in [
        "method",
        "url",
        "headers",
        "query",
        "json",
        "body",
        "timeout_secs",
    ] {
        assert!(
            props("http_request").contains_key(arg),
            "http_request lacks `{arg}`"
        );
    }
    assert!(props("download_file").contains_key("path"));
    // fetch is read-only, idempotent, open-world: the official server's annotations.
    for tool in ["fetch", "http_get"] {
        let a = registry.get(tool).unwrap().annotations();
        assert_eq!(a.read_only_hint, Some(true), "{tool}");
        assert_eq!(a.idempotent_hint, Some(true), "{tool}");
        assert_eq!(a.open_world_hint, Some(true), "{tool}");
    }
    let request = registry.get("http_request").unwrap();
    let a = request.annotations();
    assert_eq!(a.read_only_hint, Some(false));
    assert_eq!(a.destructive_hint, Some(true));
    assert_eq!(a.open_world_hint, Some(true));
    assert!(matches!(request.undo, UndoDecl::Irreversible { .. }));
    let download = registry.get("download_file").unwrap();
    assert_eq!(download.annotations().open_world_hint, Some(true));
    assert!(matches!(download.undo, UndoDecl::Plan(_)));
}

#[tokio::test]
async fn fetch_turns_html_into_markdown_and_raw_keeps_it() {
    let srv = Server::start("127.0.0.1", |_| {
        reply(200, "text/html; charset=utf-8", PAGE)
    });
    let ctx = ctx_allowing(&[srv.host()]);
    let url = srv.url("/page");
    let md = text(&ctx, "fetch", json!({"url": url})).await;
    assert!(md.starts_with(&format!("Contents of {url}:\n")), "{md}");
    assert!(md.contains("# Title"), "{md}");
    assert!(md.contains("[the example](https://example.com/)"), "{md}");
    for left_out in ["var secret", "color: red", "enable scripts", "The title"] {
        assert!(!md.contains(left_out), "`{left_out}` in {md}");
    }
    let raw = text(&ctx, "fetch", json!({"url": url, "raw": true})).await;
    assert!(
        raw.starts_with(&format!(
            "Content type text/html; charset=utf-8 cannot be simplified to markdown, but here \
             is the raw content:\nContents of {url}:\n"
        )),
        "{raw}"
    );
    assert!(raw.contains("<h1>Title</h1>"), "{raw}");
    // An HTML page served without saying so is still recognised.
    let sniffed = Server::start("127.0.0.1", |_| {
        reply(200, "application/octet-stream", PAGE)
    });
    let ctx = ctx_allowing(&[sniffed.host()]);
    let md = text(&ctx, "fetch", json!({"url": sniffed.url("/")})).await;
    assert!(md.contains("# Title"), "{md}");
}

#[tokio::test]
async fn fetch_pages_through_long_content_like_the_official_server() {
    let srv = Server::start("127.0.0.1", |_| {
        reply(200, "text/plain", "0123456789abcdefghij")
    });
    let ctx = ctx_allowing(&[srv.host()]);
    let url = srv.url("/notes.txt");
    let head = format!(
        "Content type text/plain cannot be simplified to markdown, but here is the raw \
         content:\nContents of {url}:\n"
    );
    let first = text(&ctx, "fetch", json!({"url": url, "max_length": 8})).await;
    assert_eq!(
        first,
        format!(
            "{head}01234567\n\n<error>Content truncated. Call the fetch tool with a start_index \
             of 8 to get more content.</error>"
        )
    );
    let second = text(
        &ctx,
        "fetch",
        json!({"url": url, "max_length": 8, "start_index": 8}),
    )
    .await;
    assert!(second.ends_with("89abcdef\n\n<error>Content truncated. Call the fetch tool with a start_index of 16 to get more content.</error>"), "{second}");
    let last = text(
        &ctx,
        "fetch",
        json!({"url": url, "max_length": 8, "start_index": 16}),
    )
    .await;
    assert_eq!(last, format!("{head}ghij"));
    let past = text(&ctx, "fetch", json!({"url": url, "start_index": 20})).await;
    assert_eq!(
        past,
        format!("{head}<error>No more content available.</error>")
    );
    let whole = text(&ctx, "fetch", json!({"url": url})).await;
    assert_eq!(whole, format!("{head}0123456789abcdefghij"));
    let e = err(&ctx, "fetch", json!({"url": url, "max_length": 0})).await;
    assert!(matches!(e, ToolError::InvalidArguments { .. }), "{e}");
}

#[tokio::test]
async fn fetch_refuses_binary_content_and_reports_http_errors() {
    let srv = Server::start("127.0.0.1", |r| {
        if r.target == "/missing" {
            reply(404, "text/html", "<h1>Not found</h1>")
        } else {
            reply(200, "image/png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec())
        }
    });
    let ctx = ctx_allowing(&[srv.host()]);
    let e = err(&ctx, "fetch", json!({"url": srv.url("/logo.png")})).await;
    assert!(
        matches!(&e, ToolError::Handler { message } if message.contains("image/png") && message.contains("not text")),
        "{e}"
    );
    let e = err(&ctx, "fetch", json!({"url": srv.url("/missing")})).await;
    assert!(matches!(e, ToolError::Http { status: 404, .. }), "{e}");
}

#[tokio::test]
async fn a_redirect_to_a_host_outside_allowed_hosts_is_refused_and_nothing_reaches_it() {
    // Other listeners: another port on 127.0.0.1, and 127.0.0.2 and ::1 where they can be bound.
    let other = Server::start("127.0.0.1", ok_text);
    let v4 = Server::try_start("127.0.0.2", ok_text);
    let v6 = Server::try_start("::1", ok_text);
    let targets = vec![
        format!("http://127.0.0.1:{}/", other.port),
        format!(
            "http://127.0.0.2:{}/",
            v4.as_ref().map_or(other.port, |s| s.port)
        ),
        format!(
            "http://[::1]:{}/",
            v6.as_ref().map_or(other.port, |s| s.port)
        ),
        format!("http://localhost:{}/", other.port),
        "http://169.254.169.254/latest/meta-data/".to_string(),
    ];
    let list = targets.clone();
    let main = Server::start("127.0.0.1", move |r| {
        let n: usize = r.target.trim_start_matches("/go/").parse().unwrap_or(0);
        redirect(302, &list[n])
    });
    let ctx = ctx_allowing(&[main.host()]);
    for (n, target) in targets.iter().enumerate() {
        for tool in ["fetch", "http_get"] {
            let e = err(&ctx, tool, json!({"url": main.url(&format!("/go/{n}"))})).await;
            assert!(not_allowed(&e), "{tool} → {target}: {e}");
        }
    }
    assert_eq!(main.seen().len(), 2 * targets.len());
    assert_eq!(other.connections(), 0, "reached {:?}", other.seen());
    if let Some(s) = &v4 {
        assert_eq!(s.connections(), 0, "reached 127.0.0.2");
    }
    if let Some(s) = &v6 {
        assert_eq!(s.connections(), 0, "reached ::1");
    }
}

#[tokio::test]
async fn numeric_address_forms_other_hosts_and_localhost_are_refused_before_any_request() {
    let srv = Server::start("127.0.0.1", ok_text);
    let v4 = Server::try_start("127.0.0.2", ok_text);
    let v6 = Server::try_start("::1", ok_text);
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx_with_root(&[srv.host()], dir.path());
    let p = srv.port;
    // Forms a URL parser silently reads as 127.0.0.1 (which is allowed here, on this port).
    for url in [
        format!("http://2130706433:{p}/"),
        format!("http://0x7f000001:{p}/"),
        format!("http://0177.0.0.1:{p}/"),
        format!("http://127.1:{p}/"),
    ] {
        for (tool, args) in [
            ("fetch", json!({"url": url})),
            ("http_get", json!({"url": url})),
            ("download_file", json!({"url": url, "path": "x.bin"})),
        ] {
            let e = err(&ctx, tool, args).await;
            assert!(
                e.to_string().contains("dotted decimal"),
                "{tool} {url}: {e}"
            );
        }
    }
    // Hosts not in allowed_hosts, loopback though they are.
    for url in [
        format!("http://127.0.0.2:{}/", v4.as_ref().map_or(p, |s| s.port)),
        format!("http://[::1]:{}/", v6.as_ref().map_or(p, |s| s.port)),
        format!("http://localhost:{p}/"),
    ] {
        for (tool, args) in [
            ("fetch", json!({"url": url})),
            ("http_get", json!({"url": url})),
            ("download_file", json!({"url": url, "path": "x.bin"})),
        ] {
            let e = err(&ctx, tool, args).await;
            assert!(not_allowed(&e), "{tool} {url}: {e}");
        }
    }
    // Credentials in the URL, other schemes.
    for url in [
        format!("http://user:pw@127.0.0.1:{p}/"),
        "file:///etc/passwd".to_string(),
        "ftp://127.0.0.1/".to_string(),
    ] {
        let e = err(&ctx, "fetch", json!({"url": url})).await;
        assert!(not_allowed(&e), "{url}: {e}");
        assert!(!e.to_string().contains("pw@"), "{e}");
    }
    assert_eq!(srv.connections(), 0, "reached {:?}", srv.seen());
    if let Some(s) = &v4 {
        assert_eq!(s.connections(), 0, "reached 127.0.0.2");
    }
    if let Some(s) = &v6 {
        assert_eq!(s.connections(), 0, "reached ::1");
    }
    assert!(!dir.path().join("x.bin").exists());
}

#[tokio::test]
async fn without_allowed_hosts_loopback_itself_is_refused() {
    let srv = Server::start("127.0.0.1", ok_text);
    let ctx = ctx_allowing(&[]);
    for tool in ["fetch", "http_get"] {
        let e = err(&ctx, tool, json!({"url": srv.url("/")})).await;
        assert!(
            matches!(&e, ToolError::NotAllowed { message } if message.contains("loopback")),
            "{tool}: {e}"
        );
    }
    let e = err(
        &ctx,
        "http_request",
        json!({"method": "POST", "url": srv.url("/"), "json": {"a": 1}}),
    )
    .await;
    assert!(not_allowed(&e), "{e}");
    assert_eq!(srv.connections(), 0);
}

#[tokio::test]
async fn a_slow_server_times_out_quickly() {
    let srv = Server::start("127.0.0.1", |_| Reply::Slow(Duration::from_secs(20)));
    let ctx = ctx_allowing(&[srv.host()]);
    let started = Instant::now();
    let e = err(
        &ctx,
        "http_get",
        json!({"url": srv.url("/slow"), "timeout_secs": 1}),
    )
    .await;
    assert!(
        matches!(&e, ToolError::Transport { message } if message.contains("timed out")),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let e = err(
        &ctx,
        "http_get",
        json!({"url": srv.url("/slow"), "timeout_secs": 0}),
    )
    .await;
    assert!(matches!(e, ToolError::InvalidArguments { .. }), "{e}");
}

#[tokio::test]
async fn a_huge_body_is_capped_not_read_whole() {
    // 200 MiB offered; the client stops reading at its cap and closes the connection, so the
    // server's writes fail long before the end (socket buffers hold a few MiB at most).
    const OFFERED: usize = 200 << 20;
    const STOPPED_BELOW: usize = 100 << 20;
    let srv = Server::start("127.0.0.1", |_| Reply::Huge(OFFERED));
    let ctx = ctx_allowing(&[srv.host()]);
    let e = err(&ctx, "fetch", json!({"url": srv.url("/big")})).await;
    assert!(
        matches!(&e, ToolError::Transport { message }
            if message.contains("larger than 5 MiB") && message.contains("`max_fetch_bytes`")),
        "{e}"
    );
    srv.wait_until_closed().await;
    let after_fetch = srv.written();
    assert!(
        after_fetch < STOPPED_BELOW,
        "fetch let the server write {after_fetch} bytes: it read on past its cap"
    );
    // http_get cuts it at 16 MiB and says so, and stops reading there too.
    let v = call(&ctx, "http_get", json!({"url": srv.url("/big")}))
        .await
        .unwrap();
    assert_eq!(v["truncated"], json!(true));
    assert_eq!(v["body"].as_str().unwrap().len(), 16 << 20);
    srv.wait_until_closed().await;
    let by_get = srv.written() - after_fetch;
    assert!(
        by_get < STOPPED_BELOW,
        "http_get let the server write {by_get} bytes: it read on past its cap"
    );
}

#[tokio::test]
async fn configured_limits_cap_responses_as_the_defaults_do() {
    const BODY: usize = 5_000;
    let srv = Server::start("127.0.0.1", |_| reply(200, "text/plain", "a".repeat(BODY)));
    let dir = tempfile::tempdir().unwrap();
    let url = srv.url("/body.txt");
    let whole = "a".repeat(BODY);
    let get = |tool: &str| {
        let mut args = json!({"url": url});
        if tool == "http_request" {
            args["method"] = json!("GET");
        }
        args
    };
    let limited = |limits: NetLimits| ctx_limited(&[srv.host()], dir.path(), limits);

    // The defaults read all 5,000 bytes, and so does a limit of exactly 5,000.
    for ctx in [
        ctx_with_root(&[srv.host()], dir.path()),
        limited(NetLimits {
            max_fetch_bytes: 5_000,
            max_response_bytes: 5_000,
            max_download_bytes: 5_000,
        }),
    ] {
        for tool in ["http_get", "http_request"] {
            let v = call(&ctx, tool, get(tool)).await.unwrap();
            assert_eq!(v["truncated"], json!(false), "{tool}: {v}");
            assert_eq!(v["body"], json!(whole), "{tool}");
            assert!(v.get("note").is_none(), "{tool}: {v}");
        }
        let page = text(&ctx, "fetch", json!({"url": url, "max_length": 10_000})).await;
        assert!(page.ends_with(&whole), "{page}");
    }

    // max_response_bytes = 1000: http_get and http_request cut the body there, as the default
    // cuts a body past 16 MiB, and the note names the limit and the key; fetch is not affected.
    let ctx = limited(NetLimits {
        max_response_bytes: 1000,
        ..NetLimits::DEFAULT
    });
    for tool in ["http_get", "http_request"] {
        let v = call(&ctx, tool, get(tool)).await.unwrap();
        assert_eq!(v["truncated"], json!(true), "{tool}: {v}");
        assert_eq!(v["body"], json!("a".repeat(1000)), "{tool}");
        let note = v["note"].as_str().unwrap_or_default();
        assert!(
            note.contains("1000 bytes") && note.contains("`max_response_bytes`"),
            "{tool}: {v}"
        );
    }
    let page = text(&ctx, "fetch", json!({"url": url, "max_length": 10_000})).await;
    assert!(page.ends_with(&whole), "{page}");

    // max_fetch_bytes = 1000: fetch refuses the body, as the default refuses one past 5 MiB,
    // naming the limit and the key; http_get keeps its own limit.
    let ctx = limited(NetLimits {
        max_fetch_bytes: 1000,
        ..NetLimits::DEFAULT
    });
    let e = err(&ctx, "fetch", json!({"url": url})).await;
    assert!(
        matches!(&e, ToolError::Transport { message }
            if message.contains("larger than 1000 bytes") && message.contains("`max_fetch_bytes`")),
        "{e}"
    );
    let v = call(&ctx, "http_get", get("http_get")).await.unwrap();
    assert_eq!(v["truncated"], json!(false), "{v}");
    assert_eq!(v["body"], json!(whole));
}

#[tokio::test]
async fn download_file_past_a_configured_limit_writes_nothing() {
    let srv = Server::start("127.0.0.1", |_| {
        reply(200, "application/octet-stream", vec![7u8; 5_000])
    });
    let dir = tempfile::tempdir().unwrap();
    let url = srv.url("/blob.bin");
    let limited = |max: u64| {
        ctx_limited(
            &[srv.host()],
            dir.path(),
            NetLimits {
                max_download_bytes: max,
                ..NetLimits::DEFAULT
            },
        )
    };
    // Under the default, and at a limit of exactly its size, the file is written whole.
    for (ctx, path) in [
        (ctx_with_root(&[srv.host()], dir.path()), "default.bin"),
        (limited(5_000), "exact.bin"),
    ] {
        let v = call(&ctx, "download_file", json!({"url": url, "path": path}))
            .await
            .unwrap();
        assert_eq!(v["bytes"], json!(5_000), "{path}");
        assert_eq!(
            std::fs::read(dir.path().join(path)).unwrap(),
            vec![7u8; 5_000]
        );
    }
    // Past max_download_bytes: an error naming the limit and the key, and nothing at the path.
    let ctx = limited(1000);
    let e = err(
        &ctx,
        "download_file",
        json!({"url": url, "path": "cut.bin"}),
    )
    .await;
    assert!(
        matches!(&e, ToolError::Transport { message }
            if message.contains("larger than 1000 bytes")
                && message.contains("`max_download_bytes`")
                && message.contains("nothing was written")),
        "{e}"
    );
    assert!(!dir.path().join("cut.bin").exists());
    // A file already there is left as it was.
    std::fs::write(dir.path().join("kept.bin"), b"old").unwrap();
    let e = err(
        &ctx,
        "download_file",
        json!({"url": url, "path": "kept.bin"}),
    )
    .await;
    assert!(matches!(&e, ToolError::Transport { .. }), "{e}");
    assert_eq!(std::fs::read(dir.path().join("kept.bin")).unwrap(), b"old");
}

#[tokio::test]
async fn the_timeout_is_one_deadline_for_all_the_redirects() {
    // Six hops of 0.7 s each: every hop is well within 2 s, the exchange is not.
    let srv = Server::start("127.0.0.1", |r| {
        let n: usize = r.target.trim_start_matches("/hop/").parse().unwrap_or(0);
        let next = if n >= 5 {
            reply(200, "text/plain", "arrived")
        } else {
            redirect(302, &format!("/hop/{}", n + 1))
        };
        Reply::Delayed(Duration::from_millis(700), Box::new(next))
    });
    let ctx = ctx_allowing(&[srv.host()]);
    let e = err(
        &ctx,
        "http_get",
        json!({"url": srv.url("/hop/0"), "timeout_secs": 2}),
    )
    .await;
    assert!(
        matches!(&e, ToolError::Transport { message }
            if message.contains("timed out after 2 s") && message.contains("whole exchange")),
        "{e}"
    );
    assert!(
        srv.seen().len() < 6,
        "every hop was sent: {:?}",
        srv.seen().iter().map(|s| &s.target).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_page_with_too_many_elements_is_refused_quickly() {
    // 200,000 adjacent `<b>` siblings: the converter would merge them one by one, each merge
    // moving every sibling after it.
    let page = format!("<html><body>{}</body></html>", "<b>x</b>".repeat(200_000));
    let srv = Server::start("127.0.0.1", move |_| reply(200, "text/html", page.clone()));
    let ctx = ctx_allowing(&[srv.host()]);
    let started = Instant::now();
    let e = err(&ctx, "fetch", json!({"url": srv.url("/wide")})).await;
    assert!(
        matches!(&e, ToolError::Handler { message } if message.contains("raw")),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    // As it is, the page is there to read.
    let raw = text(&ctx, "fetch", json!({"url": srv.url("/wide"), "raw": true})).await;
    assert!(raw.contains("<b>x</b><b>x</b>"), "{raw}");
}

#[tokio::test]
async fn http_request_sends_json_and_query_and_reads_the_answer() {
    let srv = Server::start("127.0.0.1", |r| {
        if r.method == "POST" {
            Reply::Full {
                status: 201,
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("set-cookie".into(), "session=abc123secret; Path=/".into()),
                    ("x-request-id".into(), "r-1".into()),
                ],
                body: r.body.clone(),
            }
        } else {
            reply(200, "text/plain", format!("{} {}", r.method, r.target))
        }
    });
    let ctx = ctx_allowing(&[srv.host()]);
    let v = call(
        &ctx,
        "http_request",
        json!({
            "method": "post",
            "url": srv.url("/things"),
            "query": {"q": "a b", "n": "1"},
            "headers": {"X-Trace": "t-1"},
            "json": {"name": "rex", "tags": [1, 2]}
        }),
    )
    .await
    .unwrap();
    assert_eq!(v["status"], json!(201));
    assert_eq!(v["json"], json!({"name": "rex", "tags": [1, 2]}));
    assert_eq!(v["headers"]["x-request-id"], json!("r-1"));
    assert_eq!(v["headers"]["set-cookie"], json!("session=[REDACTED]"));
    assert!(!v.to_string().contains("abc123secret"), "{v}");
    let seen = &srv.seen()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.target, "/things?n=1&q=a+b");
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.header("x-trace"), Some("t-1"));
    // A text body, other methods; an error status is an answer, not a failure.
    let v = call(
        &ctx,
        "http_request",
        json!({"method": "DELETE", "url": srv.url("/things/1")}),
    )
    .await
    .unwrap();
    assert_eq!(v["body"], json!("DELETE /things/1"));
    // Refused before anything is sent.
    let before = srv.seen().len();
    for args in [
        json!({"method": "TRACE", "url": srv.url("/")}),
        json!({"method": "CONNECT", "url": srv.url("/")}),
        json!({"method": "GET", "url": srv.url("/"), "body": "x"}),
        json!({"method": "POST", "url": srv.url("/"), "body": "x", "json": {}}),
        json!({"method": "POST", "url": srv.url("/"), "headers": {"Host": "evil.example"}}),
        json!({"method": "POST", "url": srv.url("/"), "headers": {"X-A": "a\r\nX-B: b"}}),
    ] {
        let e = err(&ctx, "http_request", args.clone()).await;
        assert!(
            matches!(e, ToolError::InvalidArguments { .. }),
            "{args}: {e}"
        );
    }
    assert_eq!(srv.seen().len(), before);
}

#[tokio::test]
async fn secret_headers_stay_with_the_origin_across_a_redirect() {
    let landing = Server::start("127.0.0.1", ok_text);
    let to = landing.url("/landing");
    // A redirect within the origin first, then to the other host.
    let origin = Server::start("127.0.0.1", move |r| {
        if r.target == "/start" {
            redirect(302, "/again")
        } else {
            redirect(302, &to)
        }
    });
    // Both allowed: the redirect is followed, none of the caller's headers are: credentials
    // under names no list would know, and plain ones alike.
    let ctx = ctx_allowing(&[origin.host(), landing.host()]);
    let sent = [
        ("Authorization", "Bearer s3cret-token"),
        ("Cookie", "sid=s3cret-cookie"),
        ("X-Api-Key", "s3cret-key"),
        ("X-Auth-Key", "s3cret-auth-key"),
        ("x-apikey", "s3cret-apikey"),
        ("Ocp-Apim-Subscription-Key", "s3cret-subscription"),
        ("X-Trace", "1"),
    ];
    let headers: serde_json::Map<String, Value> = sent
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    for tool in ["http_get", "http_request"] {
        let mut args = json!({"url": origin.url("/start"), "headers": headers});
        if tool == "http_request" {
            args["method"] = json!("GET");
        }
        let v = call(&ctx, tool, args).await.unwrap();
        assert_eq!(v["status"], json!(200), "{tool}");
        assert_eq!(v["body"], json!("reached"), "{tool}");
        assert_eq!(v["url"], json!(landing.url("/landing")), "{tool}");
    }
    // The origin has them all, on every hop of its own.
    let at_origin = origin.seen();
    assert_eq!(at_origin.len(), 4);
    for seen in &at_origin {
        for (name, value) in sent {
            assert_eq!(seen.header(name), Some(value), "{} {name}", seen.target);
        }
    }
    // The other host has none of them.
    let at_landing = landing.seen();
    assert_eq!(at_landing.len(), 2);
    for hop in &at_landing {
        for (name, _) in sent {
            assert_eq!(hop.header(name), None, "`{name}` followed the redirect");
        }
        assert!(
            !format!("{:?}", hop.headers).contains("s3cret"),
            "{:?}",
            hop.headers
        );
    }
}

#[tokio::test]
async fn another_port_on_an_allowed_loopback_host_is_refused() {
    let allowed = Server::start("127.0.0.1", ok_text);
    let other = Server::start("127.0.0.1", ok_text);
    let dir = tempfile::tempdir().unwrap();
    for (listed, host) in [
        (allowed.host(), "127.0.0.1"),
        (format!("localhost:{}", allowed.port), "localhost"),
    ] {
        let ctx = ctx_with_root(std::slice::from_ref(&listed), dir.path());
        let url = format!("http://{host}:{}/", other.port);
        for (tool, args) in [
            ("fetch", json!({"url": url})),
            ("http_get", json!({"url": url})),
            (
                "http_request",
                json!({"method": "POST", "url": url, "body": "x"}),
            ),
            ("download_file", json!({"url": url, "path": "x.bin"})),
        ] {
            let e = err(&ctx, tool, args).await;
            assert!(
                matches!(&e, ToolError::NotAllowed { message } if message.contains("allowed_hosts")),
                "{tool} {url} with {listed} allowed: {e}"
            );
        }
        // The port named is reached.
        let reached = text(
            &ctx,
            "fetch",
            json!({"url": format!("http://{host}:{}/", allowed.port)}),
        )
        .await;
        assert!(reached.ends_with("reached"), "{reached}");
    }
    assert_eq!(other.connections(), 0, "reached {:?}", other.seen());
    assert!(!dir.path().join("x.bin").exists());
}

#[tokio::test]
async fn download_file_writes_inside_the_root_and_refuses_outside_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let srv = Server::start("127.0.0.1", |r| {
        if r.target == "/missing" {
            reply(404, "text/plain", "no such file")
        } else {
            reply(200, "text/plain", "hello")
        }
    });
    let ctx = ctx_with_root(&[srv.host()], &root);
    let v = call(
        &ctx,
        "download_file",
        json!({"url": srv.url("/hello.txt"), "path": "hello.txt"}),
    )
    .await
    .unwrap();
    assert_eq!(
        v,
        json!({
            "path": root.join("hello.txt").display().to_string(),
            "bytes": 5,
            "content_type": "text/plain",
            "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        })
    );
    assert_eq!(
        std::fs::read_to_string(root.join("hello.txt")).unwrap(),
        "hello"
    );
    // An error status writes nothing.
    let e = err(
        &ctx,
        "download_file",
        json!({"url": srv.url("/missing"), "path": "missing.txt"}),
    )
    .await;
    assert!(matches!(e, ToolError::Http { status: 404, .. }), "{e}");
    assert!(!root.join("missing.txt").exists());

    // Outside the root, or nowhere to put it: refused before anything is sent.
    let quiet = Server::start("127.0.0.1", ok_text);
    let ctx = ctx_with_root(&[quiet.host()], &root);
    for path in [
        outside.join("stolen.txt").display().to_string(),
        "../outside/stolen.txt".to_string(),
    ] {
        let e = err(
            &ctx,
            "download_file",
            json!({"url": quiet.url("/x"), "path": path}),
        )
        .await;
        assert!(not_allowed(&e), "{path}: {e}");
    }
    for path in ["no/such/dir/file.txt", "", "."] {
        let e = err(
            &ctx,
            "download_file",
            json!({"url": quiet.url("/x"), "path": path}),
        )
        .await;
        assert!(
            matches!(
                e,
                ToolError::Handler { .. } | ToolError::InvalidArguments { .. }
            ),
            "{path:?}: {e}"
        );
    }
    assert_eq!(quiet.connections(), 0, "reached {:?}", quiet.seen());
    assert!(!outside.join("stolen.txt").exists());
}
