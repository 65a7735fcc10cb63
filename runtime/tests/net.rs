//! The network half of the sandbox against real servers on loopback: redirects are checked hop
//! by hop, credentials never follow to another host, special addresses need leave, path values
//! cannot change the operation, and failures read plainly. "Other hosts" are second loopback
//! addresses (127.0.0.2); no traffic leaves the machine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use aifirst::http::{Api, Auth, Body, In, Method, Net, Operation, Outgoing, Param, Url};
use aifirst::{Ctx, Sandbox, ToolError};
use serde_json::{json, Value};

/// One request a server received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Responder = dyn Fn(&Seen) -> (u16, Vec<(String, String)>, String) + Send + Sync;

/// A tiny HTTP/1.1 server on `ip`: records every request, answers with `respond`.
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(ip: &str, respond: Arc<Responder>) -> Server {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let log = log.clone();
                let respond = respond.clone();
                std::thread::spawn(move || loop {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
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
                        reader.read_line(&mut h).unwrap();
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
                    reader.read_exact(&mut body).unwrap();
                    let req = Seen {
                        method,
                        target,
                        headers,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    };
                    log.lock().unwrap().push(req.clone());
                    let (status, extra, text) = respond(&req);
                    let mut out =
                        format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", text.len());
                    if !extra.iter().any(|(k, _)| k == "content-type") {
                        out.push_str("content-type: application/json\r\n");
                    }
                    for (k, v) in extra {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str("\r\n");
                    out.push_str(&text);
                    if stream.write_all(out.as_bytes()).is_err() {
                        return;
                    }
                });
            }
        });
        Server { port, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn ok_json(_: &Seen) -> (u16, Vec<(String, String)>, String) {
    (200, vec![], r#"{"ok":true}"#.into())
}

fn redirect_to(location: String, status: u16) -> Arc<Responder> {
    Arc::new(move |r: &Seen| {
        if r.target.starts_with("/landing") {
            (200, vec![], r#"{"landed":true}"#.into())
        } else {
            (
                status,
                vec![("location".into(), location.clone())],
                String::new(),
            )
        }
    })
}

/// An API whose environment prefix is unique to the test (the environment is process-wide).
fn api(prefix: &str, base: &str, auth: &'static [Auth]) -> &'static Api {
    Box::leak(Box::new(Api {
        env_prefix: Box::leak(prefix.to_string().into_boxed_str()),
        base_url: Box::leak(base.to_string().into_boxed_str()),
        auth,
    }))
}

static ID_PARAM: [Param; 1] = [Param {
    property: "id",
    name: "id",
    location: In::Path,
}];

static GET_THING: Operation = Operation {
    method: "GET",
    path: "/things/{id}",
    params: &ID_PARAM,
    body: Body::None,
    server: None,
};

static POST_THING: Operation = Operation {
    method: "POST",
    path: "/things/{id}",
    params: &ID_PARAM,
    body: Body::Fields {
        media_type: "application/json",
        fields: &[("name", "name")],
    },
    server: None,
};

static DELETE_THING: Operation = Operation {
    method: "DELETE",
    path: "/v1/things/{id}",
    params: &ID_PARAM,
    body: Body::None,
    server: None,
};

static API_KEY: [Auth; 1] = [Auth::ApiKey {
    name: "x-api-key",
    location: In::Header,
}];

fn ctx(hosts: &[String], headers: Vec<(String, String)>) -> Ctx {
    Ctx::with_sandbox(Arc::new(
        Sandbox::new().with_net(Net::new(hosts.to_vec(), headers)),
    ))
}

async fn call(ctx: &Ctx, api: &Api, op: &Operation, args: Value) -> Result<Value, ToolError> {
    aifirst::http::call_in(ctx, api, op, &args).await
}

#[tokio::test]
async fn a_redirect_to_a_host_outside_allowed_hosts_is_refused_and_nothing_reaches_it() {
    let other = Server::start("127.0.0.2", Arc::new(ok_json));
    let target = format!("http://127.0.0.2:{}/landing", other.port);
    for status in [307, 302, 301, 308, 303] {
        let api_srv = Server::start("127.0.0.1", redirect_to(target.clone(), status));
        let base = format!("http://127.0.0.1:{}", api_srv.port);
        let prefix = format!("NETREDIR{status}");
        std::env::set_var(format!("{prefix}_API_KEY"), "k-123456-secret");
        let api = api(&prefix, &base, &API_KEY);
        // Listed hosts: only the API's.
        let listed = ctx(&[format!("127.0.0.1:{}", api_srv.port)], vec![]);
        let e = call(&listed, api, &GET_THING, json!({"id": "1"}))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, ToolError::NotAllowed { message } if message.contains("127.0.0.2")),
            "{status}: {e}"
        );
        let e = call(&listed, api, &POST_THING, json!({"id": "1", "name": "n"}))
            .await
            .unwrap_err();
        assert!(matches!(e, ToolError::NotAllowed { .. }), "{status}: {e}");
        // No list: a redirect may not leave the API's origin.
        std::env::set_var(format!("{prefix}_BASE_URL"), &base);
        let open = ctx(&[], vec![]);
        let e = call(&open, api, &GET_THING, json!({"id": "1"}))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, ToolError::NotAllowed { message } if message.contains("another host")),
            "{status}: {e}"
        );
        assert_eq!(api_srv.seen().len(), 3);
    }
    assert!(
        other.seen().is_empty(),
        "reached the other host: {:?}",
        other.seen()
    );
}

#[tokio::test]
async fn credentials_never_follow_a_redirect_to_another_host() {
    let other = Server::start("127.0.0.2", Arc::new(ok_json));
    let api_srv = Server::start(
        "127.0.0.1",
        redirect_to(format!("http://127.0.0.2:{}/landing", other.port), 307),
    );
    let base = format!("http://127.0.0.1:{}", api_srv.port);
    std::env::set_var("NETCRED_API_KEY", "k-cred-777777");
    let api = api("NETCRED", &base, &API_KEY);
    let both = ctx(
        &[
            format!("127.0.0.1:{}", api_srv.port),
            format!("127.0.0.2:{}", other.port),
        ],
        vec![("X-Team-Token".into(), "team-tok-55555".into())],
    );
    let v = call(&both, api, &POST_THING, json!({"id": "7", "name": "rex"}))
        .await
        .unwrap();
    assert_eq!(v, json!({"ok": true}), "answered by the other host");
    let first = &api_srv.seen()[0];
    assert_eq!(first.header("x-api-key"), Some("k-cred-777777"));
    assert_eq!(first.header("x-team-token"), Some("team-tok-55555"));
    let hop = &other.seen()[0];
    assert_eq!(hop.method, "POST", "307 keeps the method");
    assert_eq!(hop.body, r#"{"name":"rex"}"#, "307 re-sends the body");
    assert_eq!(
        hop.header("x-api-key"),
        None,
        "the key followed the redirect"
    );
    assert_eq!(hop.header("x-team-token"), None);
    assert_eq!(hop.header("authorization"), None);
}

#[tokio::test]
async fn a_same_origin_redirect_is_followed_with_credentials_and_303_becomes_get() {
    let srv = Server::start(
        "127.0.0.1",
        Arc::new(|r: &Seen| {
            if r.target.starts_with("/landing") {
                (200, vec![], r#"{"landed":true}"#.into())
            } else {
                (
                    303,
                    vec![("location".into(), "/landing".into())],
                    String::new(),
                )
            }
        }),
    );
    let base = format!("http://127.0.0.1:{}", srv.port);
    std::env::set_var("NETSAME_BASE_URL", &base);
    std::env::set_var("NETSAME_API_KEY", "k-same-888888");
    let api = api("NETSAME", "http://unused.invalid", &API_KEY);
    let v = call(
        &ctx(&[], vec![]),
        api,
        &POST_THING,
        json!({"id": "1", "name": "n"}),
    )
    .await
    .unwrap();
    assert_eq!(v, json!({"landed": true}));
    let seen = srv.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].method, "GET");
    assert_eq!(seen[1].body, "");
    assert_eq!(seen[1].header("x-api-key"), Some("k-same-888888"));
}

#[tokio::test]
async fn path_values_that_would_change_the_operation_are_refused() {
    let srv = Server::start("127.0.0.1", Arc::new(ok_json));
    let base = format!("http://127.0.0.1:{}", srv.port);
    std::env::set_var("NETPATH_BASE_URL", &base);
    let api = api("NETPATH", "http://unused.invalid", &[]);
    let c = ctx(&[], vec![]);
    for bad in ["..", ".", "", "../admin", "a/b", "..%2F"] {
        let r = call(&c, api, &DELETE_THING, json!({"id": bad})).await;
        if bad == "..%2F" {
            // `%` is encoded: the server sees a literal segment, not a traversal.
            r.unwrap();
            continue;
        }
        assert!(
            matches!(&r, Err(ToolError::InvalidArguments { message }) if message.contains("would change which operation")),
            "{bad:?}: {r:?}"
        );
    }
    let seen = srv.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].target, "/v1/things/..%252F");
    call(&c, api, &DELETE_THING, json!({"id": 42}))
        .await
        .unwrap();
    assert_eq!(srv.seen()[1].target, "/v1/things/42");
}

#[tokio::test]
async fn special_addresses_need_leave() {
    let srv = Server::start("127.0.0.1", Arc::new(ok_json));
    // The description's own server is loopback, and nobody named it: refused.
    let api_lit = api("NETLEAVE1", &format!("http://127.0.0.1:{}", srv.port), &[]);
    let e = call(&ctx(&[], vec![]), api_lit, &GET_THING, json!({"id": "1"}))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ToolError::NotAllowed { message } if message.contains("loopback")),
        "{e}"
    );
    // A name that resolves to loopback: judged on the address, at connect time.
    let api_name = api("NETLEAVE2", &format!("http://localhost:{}", srv.port), &[]);
    let e = call(&ctx(&[], vec![]), api_name, &GET_THING, json!({"id": "1"}))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ToolError::NotAllowed { message } if message.contains("resolves to") && message.contains("loopback")),
        "{e}"
    );
    assert!(srv.seen().is_empty());
    // Named in allowed_hosts, or as the base URL by the operator: allowed.
    call(
        &ctx(&[format!("localhost:{}", srv.port)], vec![]),
        api_name,
        &GET_THING,
        json!({"id": "1"}),
    )
    .await
    .unwrap();
    std::env::set_var(
        "NETLEAVE3_BASE_URL",
        format!("http://127.0.0.1:{}", srv.port),
    );
    let api_env = api("NETLEAVE3", "http://unused.invalid", &[]);
    call(&ctx(&[], vec![]), api_env, &GET_THING, json!({"id": "1"}))
        .await
        .unwrap();
    assert_eq!(srv.seen().len(), 2);
}

#[tokio::test]
async fn a_base_url_gives_the_generic_requests_no_leave() {
    // An operator pointed a generated API at a loopback service; that opens neither the
    // service nor any other port on the host to `Net::send` (fetch, http_request, …).
    let api_srv = Server::start("127.0.0.1", Arc::new(ok_json));
    let other = Server::start("127.0.0.1", Arc::new(ok_json));
    for (prefix, host) in [("NETGRANT1", "127.0.0.1"), ("NETGRANT2", "localhost")] {
        std::env::set_var(
            format!("{prefix}_BASE_URL"),
            format!("http://{host}:{}", api_srv.port),
        );
        let api = api(prefix, "http://unused.invalid", &[]);
        let c = ctx(&[], vec![]);
        call(&c, api, &GET_THING, json!({"id": "1"})).await.unwrap();
        for port in [other.port, api_srv.port] {
            let url = Url::parse(&format!("http://{host}:{port}/")).unwrap();
            let e = c
                .http()
                .send(Outgoing::new(Method::GET, url))
                .await
                .unwrap_err();
            assert!(
                matches!(&e, ToolError::NotAllowed { message } if message.contains("loopback")),
                "{host}:{port}: {e}"
            );
        }
    }
    assert_eq!(api_srv.seen().len(), 2, "only the two API calls");
    assert!(other.seen().is_empty(), "reached {:?}", other.seen());
}

#[tokio::test]
async fn failures_read_plainly_and_name_what_to_set() {
    // Nothing listens on this port (bound, then closed).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::env::set_var("NETFAIL1_BASE_URL", format!("http://127.0.0.1:{port}"));
    let api1 = api("NETFAIL1", "", &[]);
    let e = call(&ctx(&[], vec![]), api1, &GET_THING, json!({"id": "1"}))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("connection refused") && e.to_string().contains("NETFAIL1_BASE_URL"),
        "{e}"
    );
    // No server at all: name the variable.
    let api2 = api("NETFAIL2", "", &[]);
    let e = call(&ctx(&[], vec![]), api2, &GET_THING, json!({"id": "1"}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("set NETFAIL2_BASE_URL"), "{e}");
    // A base URL with a query string (a token in it) is refused with a hint.
    std::env::set_var("NETFAIL3_BASE_URL", "http://127.0.0.1:1/?token=abc");
    let api3 = api("NETFAIL3", "", &[]);
    let e = call(&ctx(&[], vec![]), api3, &GET_THING, json!({"id": "1"}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("query string"), "{e}");
    assert!(e.to_string().contains("[http.headers]"), "{e}");
    // An HTML page where data was expected (a login page) is an error, not a success.
    let html = Server::start(
        "127.0.0.1",
        Arc::new(|_: &Seen| {
            (
                200,
                vec![("content-type".into(), "text/html; charset=utf-8".into())],
                "<html><body>Login</body></html>".into(),
            )
        }),
    );
    std::env::set_var(
        "NETFAIL4_BASE_URL",
        format!("http://127.0.0.1:{}", html.port),
    );
    let api4 = api("NETFAIL4", "", &[]);
    let e = call(&ctx(&[], vec![]), api4, &GET_THING, json!({"id": "1"}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("HTML page"), "{e}");
}

#[tokio::test]
async fn configured_headers_reach_the_api_and_undeclared_credentials_are_not_sent() {
    let srv = Server::start("127.0.0.1", Arc::new(ok_json));
    std::env::set_var("NETHDR_BASE_URL", format!("http://127.0.0.1:{}", srv.port));
    // Set, but the description declares no security: not sent.
    std::env::set_var("NETHDR_TOKEN", "should-not-be-sent");
    std::env::set_var("NETHDR_API_KEY", "should-not-be-sent");
    let api = api("NETHDR", "", &[]);
    let c = ctx(
        &[],
        vec![("Authorization".into(), "token jupyter-abcdef".into())],
    );
    call(&c, api, &GET_THING, json!({"id": "1"})).await.unwrap();
    let seen = &srv.seen()[0];
    assert_eq!(seen.header("authorization"), Some("token jupyter-abcdef"));
    assert!(!format!("{seen:?}").contains("should-not-be-sent"));
}

#[tokio::test]
async fn downgrades_cookies_credential_headers_and_huge_responses_are_held() {
    // A credential declared as a plain header parameter does not follow to another host.
    static AUTH_PARAM: [Param; 2] = [
        Param {
            property: "id",
            name: "id",
            location: In::Path,
        },
        Param {
            property: "auth",
            name: "Authorization",
            location: In::Header,
        },
    ];
    static GET_WITH_AUTH: Operation = Operation {
        method: "GET",
        path: "/things/{id}",
        params: &AUTH_PARAM,
        body: Body::None,
        server: None,
    };
    let other = Server::start("127.0.0.2", Arc::new(ok_json));
    let api_srv = Server::start(
        "127.0.0.1",
        redirect_to(format!("http://127.0.0.2:{}/landing", other.port), 302),
    );
    let api1 = api(
        "NETHOLD1",
        &format!("http://127.0.0.1:{}", api_srv.port),
        &[],
    );
    let both = ctx(
        &[
            format!("127.0.0.1:{}", api_srv.port),
            format!("127.0.0.2:{}", other.port),
        ],
        vec![],
    );
    call(
        &both,
        api1,
        &GET_WITH_AUTH,
        json!({"id": "1", "auth": "token abc-123456"}),
    )
    .await
    .unwrap();
    assert_eq!(
        api_srv.seen()[0].header("authorization"),
        Some("token abc-123456")
    );
    assert_eq!(other.seen()[0].header("authorization"), None);

    // A cookie value cannot smuggle in other cookies.
    static COOKIE_PARAM: [Param; 2] = [
        Param {
            property: "id",
            name: "id",
            location: In::Path,
        },
        Param {
            property: "theme",
            name: "theme",
            location: In::Cookie,
        },
    ];
    static GET_WITH_COOKIE: Operation = Operation {
        method: "GET",
        path: "/things/{id}",
        params: &COOKIE_PARAM,
        body: Body::None,
        server: None,
    };
    let srv = Server::start("127.0.0.1", Arc::new(ok_json));
    std::env::set_var(
        "NETHOLD2_BASE_URL",
        format!("http://127.0.0.1:{}", srv.port),
    );
    let api2 = api("NETHOLD2", "", &[]);
    let e = call(
        &ctx(&[], vec![]),
        api2,
        &GET_WITH_COOKIE,
        json!({"id": "1", "theme": "dark; session=evil"}),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ToolError::InvalidArguments { .. }), "{e}");
    assert!(srv.seen().is_empty());

    // A response larger than the limit is an error, not an allocation.
    let big = Server::start(
        "127.0.0.1",
        Arc::new(|_: &Seen| (200, vec![], format!("\"{}\"", "x".repeat(10_000)))),
    );
    std::env::set_var(
        "NETHOLD3_BASE_URL",
        format!("http://127.0.0.1:{}", big.port),
    );
    std::env::set_var("NETHOLD3_MAX_RESPONSE_BYTES", "4096");
    let api3 = api("NETHOLD3", "", &[]);
    let e = call(&ctx(&[], vec![]), api3, &GET_THING, json!({"id": "1"}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NETHOLD3_MAX_RESPONSE_BYTES"), "{e}");
}
