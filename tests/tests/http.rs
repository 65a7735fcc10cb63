//! HTTP capabilities against a real, stateful server on 127.0.0.1: every kind of undo plan is
//! undone through the engine and the server's state is compared with what it was before.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, OnceLock};

use aifirst::http::{self, Api, Body, In, Operation, Param};
use aifirst::{capability, CallError, CallOptions, Engine, Policy, Registry, ToolError};
use serde_json::{json, Value};

// ---------------------------------------------------------------- the server

#[derive(Default, Debug, Clone, PartialEq)]
struct State {
    pets: BTreeMap<String, Value>,
    stars: BTreeSet<String>,
    next: u64,
}

fn server() -> &'static (String, Arc<Mutex<State>>) {
    static SERVER: OnceLock<(String, Arc<Mutex<State>>)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let state = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    let mut parts = line.split_whitespace();
                    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
                    let mut length = 0usize;
                    let mut headers = serde_json::Map::new();
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        if h.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            headers.insert(k.trim().to_ascii_lowercase(), json!(v.trim()));
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let (status, reply) = if path.starts_with("/echo") {
                        (200, json!({"path": path, "headers": headers, "body": body}))
                    } else {
                        route(&mut state.lock().unwrap(), &method, &path, body)
                    };
                    // `{"__location": …}` from a route is a Location header and an empty body.
                    let (location, reply) = match reply.get("__location").and_then(Value::as_str) {
                        Some(l) => (format!("location: {l}\r\n"), Value::Null),
                        None => (String::new(), reply),
                    };
                    let text = if reply.is_null() { String::new() } else { reply.to_string() };
                    write!(
                        stream,
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{location}connection: close\r\n\r\n{text}",
                        text.len()
                    )
                    .unwrap();
                });
            }
        });
        (url, state)
    })
}

fn route(s: &mut State, method: &str, path: &str, body: Value) -> (u16, Value) {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segs.as_slice()) {
        ("POST", ["pets"]) => {
            s.next += 1;
            let id = format!("p{}", s.next);
            let pet = json!({"id": id, "name": body["name"], "tag": body["tag"]});
            s.pets.insert(id, pet.clone());
            (201, pet)
        }
        // The same create, answered only with a Location header.
        ("POST", ["quiet-pets"]) => {
            s.next += 1;
            let id = format!("p{}", s.next);
            s.pets.insert(
                id.clone(),
                json!({"id": id, "name": body["name"], "tag": null}),
            );
            (201, json!({"__location": format!("/pets/{id}?created=1")}))
        }
        ("GET", ["pets", id]) => match s.pets.get(*id) {
            Some(p) => (200, p.clone()),
            None => (404, json!({"message": "no such pet"})),
        },
        ("PUT", ["pets", id]) => {
            let created = !s.pets.contains_key(*id);
            let pet = json!({"id": id, "name": body["name"], "tag": body["tag"]});
            s.pets.insert(id.to_string(), pet.clone());
            (if created { 201 } else { 200 }, pet)
        }
        ("DELETE", ["pets", id]) => match s.pets.remove(*id) {
            Some(_) => {
                s.stars.remove(*id);
                (204, Value::Null)
            }
            None => (404, json!({"message": "no such pet"})),
        },
        ("GET", ["pets", id, "star"]) => {
            (if s.stars.contains(*id) { 204 } else { 404 }, Value::Null)
        }
        ("PUT", ["pets", id, "star"]) => {
            s.stars.insert(id.to_string());
            (204, Value::Null)
        }
        ("DELETE", ["pets", id, "star"]) => {
            s.stars.remove(*id);
            (204, Value::Null)
        }
        _ => (404, json!({"message": "no route"})),
    }
}

// ------------------------------------------------- the capabilities (as forge will generate them)

static API: Api = Api {
    env_prefix: "PETSTORE_TEST",
    base_url: "http://127.0.0.1:9",
    auth: &[],
};
const ID: &[Param] = &[Param {
    property: "id",
    name: "id",
    location: In::Path,
}];
const PET_FIELDS: Body = Body::Fields {
    media_type: "application/json",
    fields: &[("name", "name"), ("tag", "tag")],
};

/// Creates a pet.
#[capability(effects(create, network), undo = inverse("delete_pet", id = "$result.id"))]
async fn create_pet(
    ctx: &aifirst::Ctx,
    name: String,
    tag: Option<String>,
) -> Result<Value, ToolError> {
    let op = Operation {
        method: "POST",
        path: "/pets",
        params: &[],
        body: PET_FIELDS,
        server: None,
    };
    http::call_in(ctx, &API, &op, &json!({"name": name, "tag": tag})).await
}

/// Creates a pet; the API answers with its Location only.
#[capability(effects(create, network), undo = inverse("delete_pet", id = "$location.id"))]
async fn create_quiet_pet(ctx: &aifirst::Ctx, name: String) -> Result<Value, ToolError> {
    let op = Operation {
        method: "POST",
        path: "/quiet-pets",
        params: &[],
        body: PET_FIELDS,
        server: None,
    };
    http::call_in(ctx, &API, &op, &json!({"name": name})).await
}

/// Gets a pet.
#[capability(effects(read, network))]
async fn get_pet(ctx: &aifirst::Ctx, id: String) -> Result<Value, ToolError> {
    http::call_in(
        ctx,
        &API,
        &Operation {
            method: "GET",
            path: "/pets/{id}",
            params: ID,
            body: Body::None,
            server: None,
        },
        &json!({"id": id}),
    )
    .await
}

/// Creates or replaces a pet.
#[capability(
    effects(update, network),
    undo = restore("replace_pet", snapshot = "get_pet", when_absent = "delete_pet",
                   id = "$args.id", name = "$snapshot.name", tag = "$snapshot.tag")
)]
async fn replace_pet(
    ctx: &aifirst::Ctx,
    id: String,
    name: String,
    tag: Option<String>,
) -> Result<Value, ToolError> {
    let op = Operation {
        method: "PUT",
        path: "/pets/{id}",
        params: ID,
        body: PET_FIELDS,
        server: None,
    };
    http::call_in(ctx, &API, &op, &json!({"id": id, "name": name, "tag": tag})).await
}

/// Deletes a pet.
#[capability(
    effects(delete, network),
    undo = recreate("replace_pet", snapshot = "get_pet", id = "$args.id", name = "$snapshot.name", tag = "$snapshot.tag")
)]
async fn delete_pet(ctx: &aifirst::Ctx, id: String) -> Result<Value, ToolError> {
    http::call_in(
        ctx,
        &API,
        &Operation {
            method: "DELETE",
            path: "/pets/{id}",
            params: ID,
            body: Body::None,
            server: None,
        },
        &json!({"id": id}),
    )
    .await
}

/// Tells whether a pet is starred (204) or not (404).
#[capability(effects(read, network))]
async fn check_star(ctx: &aifirst::Ctx, id: String) -> Result<Value, ToolError> {
    let op = Operation {
        method: "GET",
        path: "/pets/{id}/star",
        params: ID,
        body: Body::None,
        server: None,
    };
    http::call_in(ctx, &API, &op, &json!({"id": id})).await
}

/// Stars a pet.
#[capability(effects(create, network), undo = inverse("unstar_pet", snapshot = "check_star", guard = "snapshot_absent", id = "$args.id"))]
async fn star_pet(ctx: &aifirst::Ctx, id: String) -> Result<Value, ToolError> {
    let op = Operation {
        method: "PUT",
        path: "/pets/{id}/star",
        params: ID,
        body: Body::None,
        server: None,
    };
    http::call_in(ctx, &API, &op, &json!({"id": id})).await
}

/// Removes a pet's star.
#[capability(effects(delete, network), undo = inverse("star_pet", snapshot = "check_star", guard = "snapshot_present", id = "$args.id"))]
async fn unstar_pet(ctx: &aifirst::Ctx, id: String) -> Result<Value, ToolError> {
    let op = Operation {
        method: "DELETE",
        path: "/pets/{id}/star",
        params: ID,
        body: Body::None,
        server: None,
    };
    http::call_in(ctx, &API, &op, &json!({"id": id})).await
}

// ---------------------------------------------------------------- the tests

/// One engine per test, on the shared server; each test works on its own pets.
fn setup() -> (tempfile::TempDir, Engine, tokio::runtime::Runtime) {
    let (url, _) = server();
    // Safe here: every test sets the same value before any request is made.
    std::env::set_var("PETSTORE_TEST_BASE_URL", url);
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(Registry::new().unwrap(), Policy::default(), dir.path()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    (dir, engine, rt)
}

fn state() -> State {
    server().1.lock().unwrap().clone()
}

fn pets_named(prefix: &str) -> BTreeMap<String, Value> {
    state()
        .pets
        .into_iter()
        .filter(|(_, p)| p["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
        .collect()
}

fn call(
    rt: &tokio::runtime::Runtime,
    e: &Engine,
    session: &str,
    name: &str,
    args: Value,
) -> Result<Value, CallError> {
    rt.block_on(e.call(session, name, args, CallOptions::default()))
}

#[test]
fn create_is_undone_by_its_inverse() {
    let (_d, e, rt) = setup();
    let before = pets_named("inv-");
    let pet = call(&rt, &e, "inv", "create_pet", json!({"name": "inv-rex"})).unwrap();
    assert!(state().pets.contains_key(pet["id"].as_str().unwrap()));
    let r = rt.block_on(e.undo("inv", 1)).unwrap();
    assert_eq!((r.undone.len(), r.failed), (1, None));
    assert_eq!(pets_named("inv-"), before, "the created pet is gone");
}

#[test]
fn an_id_from_the_location_header_undoes_a_create() {
    let (_d, e, rt) = setup();
    let before = pets_named("loc-");
    let reply = call(
        &rt,
        &e,
        "loc",
        "create_quiet_pet",
        json!({"name": "loc-rex"}),
    )
    .unwrap();
    assert_eq!(reply, Value::Null, "the body was empty");
    assert_eq!(pets_named("loc-").len(), before.len() + 1);
    let step = e.history("loc").unwrap().pop().unwrap();
    let text = serde_json::to_string(&step.undo).unwrap();
    assert!(
        text.contains("delete_pet") && text.contains("\"id\":\"p"),
        "{text}"
    );
    let r = rt.block_on(e.undo("loc", 1)).unwrap();
    assert_eq!((r.undone.len(), r.failed), (1, None));
    assert_eq!(pets_named("loc-"), before, "the created pet is gone");
}

#[test]
fn replace_is_restored_or_deleted_when_it_created() {
    let (_d, e, rt) = setup();
    call(
        &rt,
        &e,
        "rep",
        "replace_pet",
        json!({"id": "rep1", "name": "rep-old", "tag": "a"}),
    )
    .unwrap();
    let before = state().pets.get("rep1").cloned();
    call(
        &rt,
        &e,
        "rep",
        "replace_pet",
        json!({"id": "rep1", "name": "rep-new"}),
    )
    .unwrap();
    assert_eq!(state().pets["rep1"]["name"], "rep-new");
    rt.block_on(e.undo("rep", 1)).unwrap();
    assert_eq!(
        state().pets.get("rep1").cloned(),
        before,
        "snapshot written back"
    );
    // The first PUT created the pet (its snapshot was a 404): undoing it deletes.
    let r = rt.block_on(e.undo("rep", 1)).unwrap();
    assert_eq!(r.failed, None);
    assert!(
        !state().pets.contains_key("rep1"),
        "when_absent: created by the PUT, so undo deletes"
    );
}

#[test]
fn delete_is_undone_by_recreating_from_the_snapshot() {
    let (_d, e, rt) = setup();
    call(
        &rt,
        &e,
        "setup-del",
        "replace_pet",
        json!({"id": "del1", "name": "del-rex", "tag": "good"}),
    )
    .unwrap();
    let before = state().pets.get("del1").cloned();
    call(&rt, &e, "del", "delete_pet", json!({"id": "del1"})).unwrap();
    assert!(!state().pets.contains_key("del1"));
    rt.block_on(e.undo("del", 1)).unwrap();
    assert_eq!(
        state().pets.get("del1").cloned(),
        before,
        "recreated with the same id and fields"
    );
}

#[test]
fn toggles_are_guarded_by_the_state_before() {
    let (_d, e, rt) = setup();
    call(
        &rt,
        &e,
        "setup-tog",
        "replace_pet",
        json!({"id": "tog1", "name": "tog"}),
    )
    .unwrap();
    // Not starred before: undoing the star unstars.
    call(&rt, &e, "tog", "star_pet", json!({"id": "tog1"})).unwrap();
    assert!(state().stars.contains("tog1"));
    rt.block_on(e.undo("tog", 1)).unwrap();
    assert!(!state().stars.contains("tog1"));
    // Already starred before: starring again changed nothing, so undo leaves it starred.
    call(&rt, &e, "setup-tog", "star_pet", json!({"id": "tog1"})).unwrap();
    call(&rt, &e, "tog", "star_pet", json!({"id": "tog1"})).unwrap();
    rt.block_on(e.undo("tog", 1)).unwrap();
    assert!(
        state().stars.contains("tog1"),
        "guard: it was starred before the call"
    );
    // Unstar when starred: undo stars again.
    call(&rt, &e, "tog", "unstar_pet", json!({"id": "tog1"})).unwrap();
    assert!(!state().stars.contains("tog1"));
    rt.block_on(e.undo("tog", 1)).unwrap();
    assert!(state().stars.contains("tog1"));
}

static SECURED: Api = Api {
    env_prefix: "ECHO_TEST",
    base_url: "http://127.0.0.1:9",
    auth: &[
        http::Auth::Bearer,
        http::Auth::ApiKey {
            name: "X-Api-Key",
            location: In::Header,
        },
    ],
};

#[test]
fn parameters_and_credentials_reach_the_server() {
    let (url, _) = server();
    std::env::set_var("ECHO_TEST_BASE_URL", url);
    std::env::set_var("ECHO_TEST_TOKEN", "tok-123");
    std::env::set_var("ECHO_TEST_API_KEY", "key-456");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let op = Operation {
        method: "POST",
        path: "/echo/{name}",
        params: &[
            Param {
                property: "name",
                name: "name",
                location: In::Path,
            },
            Param {
                property: "tags",
                name: "tag",
                location: In::Query,
            },
            Param {
                property: "trace",
                name: "X-Trace",
                location: In::Header,
            },
            Param {
                property: "session",
                name: "sid",
                location: In::Cookie,
            },
        ],
        body: Body::Wrapped {
            media_type: "application/json",
            property: "body",
        },
        server: None,
    };
    let args = json!({"name": "a b%c", "tags": ["x", "y"], "trace": "t1", "session": "s1", "body": {"k": 1}});
    let ctx = aifirst::Ctx::new();
    let echo = rt
        .block_on(http::call_in(&ctx, &SECURED, &op, &args))
        .unwrap();
    assert_eq!(echo["path"], "/echo/a%20b%25c?tag=x&tag=y");
    let h = &echo["headers"];
    assert_eq!(h["authorization"], "Bearer tok-123");
    assert_eq!(h["x-api-key"], "key-456");
    assert_eq!(h["x-trace"], "t1");
    assert_eq!(h["cookie"], "sid=s1");
    assert_eq!(echo["body"], json!({"k": 1}));
}

#[test]
fn http_errors_are_structured() {
    let (_d, e, rt) = setup();
    match call(&rt, &e, "err", "get_pet", json!({"id": "does-not-exist"})) {
        Err(CallError::Tool(ToolError::Http { status, message })) => {
            assert_eq!(status, 404);
            assert!(message.contains("no such pet"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.history("err").unwrap().is_empty());
}
