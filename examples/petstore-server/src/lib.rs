//! A small, stateful petstore speaking the operations of `fixtures/petstore/openapi.yaml` under
//! `/v1`, in memory: enough for the README's walk-through and the end-to-end tests to create,
//! change, star, delete and undo pets against a real HTTP server.
//!
//! One request per connection (`connection: close`), bodies up to 1 MiB, JSON only. It is a
//! demonstration server for loopback use, not a web server.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// The largest request body read.
const MAX_BODY: usize = 1024 * 1024;

/// The petstore's state.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Store {
    /// Pets by id (`p1`, `p2`, … as the server assigns them; any id through `PUT`).
    pub pets: BTreeMap<String, Value>,
    /// Ids of starred pets.
    pub stars: BTreeSet<String>,
    /// How many orders were placed.
    pub orders: usize,
    next: u64,
    /// Every `X-Api-Key` header value the server saw.
    pub keys: BTreeSet<String>,
}

impl Store {
    /// What undo must restore, by pet name (ids aside): a deleted pet recreated through
    /// `POST /pets` gets a new server-assigned id, as the undo plan says.
    pub fn visible(&self) -> (BTreeMap<String, Value>, BTreeSet<String>, usize) {
        let name = |id: &str| {
            self.pets
                .get(id)
                .and_then(|p| p["name"].as_str())
                .unwrap_or("")
                .to_string()
        };
        let pets = self
            .pets
            .values()
            .map(|p| {
                let mut p = p.clone();
                let n = p["name"].as_str().unwrap_or("").to_string();
                if let Some(o) = p.as_object_mut() {
                    o.remove("id");
                }
                (n, p)
            })
            .collect();
        let stars = self.stars.iter().map(|id| name(id)).collect();
        (pets, stars, self.orders)
    }

    /// Answers one request: the status and the JSON body (`Null`: none).
    pub fn handle(&mut self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let Some(rest) = path.split('?').next().and_then(|p| p.strip_prefix("/v1/")) else {
            return (404, json!({"message": "not under /v1"}));
        };
        let segs: Vec<&str> = rest.split('/').collect();
        let pet = |id: &str, b: &Value| {
            json!({"id": id, "name": b["name"], "tag": b.get("tag").cloned().unwrap_or(Value::Null),
                   "status": b.get("status").cloned().unwrap_or(json!("available"))})
        };
        match (method, segs.as_slice()) {
            ("GET", ["pets"]) => (200, Value::Array(self.pets.values().cloned().collect())),
            ("POST", ["pets"]) => {
                if !body["name"].is_string() {
                    return (400, json!({"message": "a pet needs a name"}));
                }
                self.next += 1;
                let id = format!("p{}", self.next);
                let p = pet(&id, &body);
                self.pets.insert(id, p.clone());
                (201, p)
            }
            ("POST", ["pets", "search"]) => {
                let q = body["query"].as_str().unwrap_or("").to_lowercase();
                let found = self
                    .pets
                    .values()
                    .filter(|p| {
                        p["name"]
                            .as_str()
                            .is_some_and(|n| n.to_lowercase().contains(&q))
                    })
                    .cloned()
                    .collect();
                (200, Value::Array(found))
            }
            ("GET", ["pets", id]) => match self.pets.get(*id) {
                Some(p) => (200, p.clone()),
                None => (404, json!({"message": "no such pet"})),
            },
            ("PUT", ["pets", id]) => {
                let created = !self.pets.contains_key(*id);
                let p = pet(id, &body);
                self.pets.insert(id.to_string(), p.clone());
                (if created { 201 } else { 200 }, p)
            }
            ("PATCH", ["pets", id]) => match self.pets.get_mut(*id) {
                Some(p) => {
                    for k in ["name", "tag", "status"] {
                        if let Some(v) = body.get(k) {
                            p[k] = v.clone();
                        }
                    }
                    (200, p.clone())
                }
                None => (404, json!({"message": "no such pet"})),
            },
            ("DELETE", ["pets", id]) => match self.pets.remove(*id) {
                Some(_) => {
                    self.stars.remove(*id);
                    (204, Value::Null)
                }
                None => (404, json!({"message": "no such pet"})),
            },
            ("PUT", ["pets", id, "star"]) => {
                self.stars.insert(id.to_string());
                (204, Value::Null)
            }
            ("DELETE", ["pets", id, "star"]) => {
                self.stars.remove(*id);
                (204, Value::Null)
            }
            ("POST", ["store", "orders"]) => {
                self.orders += 1;
                (201, json!({"id": self.orders, "status": "placed"}))
            }
            _ => (404, json!({"message": "no route"})),
        }
    }
}

/// Serves `store` on `listener` until the process ends, one connection at a time.
pub fn serve(listener: TcpListener, store: Arc<Mutex<Store>>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        // A client that stalls or sends garbage costs one connection, never the server.
        let _ = answer(stream, &store);
    }
}

/// Binds `addr` and serves a new store on a background thread; returns the base URL
/// (`http://ADDR/v1`) and the store.
pub fn spawn(addr: &str) -> std::io::Result<(String, Arc<Mutex<Store>>)> {
    let listener = TcpListener::bind(addr)?;
    let url = format!("http://{}/v1", listener.local_addr()?);
    let store = Arc::new(Mutex::new(Store::default()));
    let shared = Arc::clone(&store);
    std::thread::Builder::new()
        .name("petstore".into())
        .spawn(move || serve(listener, shared))?;
    Ok((url, store))
}

fn answer(mut stream: TcpStream, store: &Mutex<Store>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut length = 0usize;
    let mut key = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("x-api-key:") {
            key = h.split_once(':').map(|(_, v)| v.trim().to_string());
        }
    }
    let (status, reply) = if length > MAX_BODY {
        (413, json!({"message": "body too large"}))
    } else {
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let mut s = store.lock().unwrap_or_else(|p| p.into_inner());
        s.keys.extend(key);
        s.handle(&method, &path, body)
    };
    let text = if reply.is_null() {
        String::new()
    } else {
        reply.to_string()
    };
    write!(
        stream,
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        reason(status),
        text.len()
    )
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        413 => "Payload Too Large",
        _ => "Status",
    }
}
