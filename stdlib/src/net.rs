//! Network tools: `fetch` — the official MCP fetch server's tool (`mcp-server-fetch`: the same
//! name, arguments and output text) — plus `http_get`, `http_request` and `download_file`.
//!
//! Every request goes through the engine's sandbox ([`aifirst::Ctx::http`],
//! [`aifirst::http::Net::send`]), never through an HTTP client of its own:
//! - only `http` and `https` URLs; a URL carrying `user:password@` is refused, and so is an IPv4
//!   address written in any form but dotted decimal (`2130706433`, `0x7f000001`, `0177.0.0.1`,
//!   `127.1`), which URL parsers silently turn into an address;
//! - a host outside `allowed_hosts` (when set) is refused: an entry `host:port` allows that
//!   port only, a bare `host` every port of it;
//! - a loopback, private, link-local, shared or metadata address is refused unless
//!   `allowed_hosts` names its host (and port, as above) — judged on the address connected to,
//!   so a name resolving to one is caught too. The leave a generated API gets from its
//!   `{PREFIX}_BASE_URL` (say `http://localhost:3000`) does not extend to these tools; with
//!   `allowed_hosts` empty they reach public addresses only;
//! - redirects are followed by the sandbox hop by hop (at most 10), each hop checked the same
//!   way; a redirect from https to plain http is refused;
//! - the caller's request headers, whatever their names (`Authorization`, `X-Auth-Key`,
//!   `X-Trace`, …), go to the URL's own origin only: a redirect to another origin gets none of
//!   them; the headers configured for generated APIs (airun.toml `[http.headers]`) are never
//!   sent by these tools.
//!
//! Limits: the sizes are the sandbox's ([`aifirst::Sandbox::net_limits`], airun.toml keys of
//! the same names; the defaults are [`NetLimits::DEFAULT`]): `fetch` reads at most
//! `max_fetch_bytes` of a response (5 MiB; an error past it) and waits 30 s; `http_get` and
//! `http_request` read at most `max_response_bytes` (16 MiB; the body is cut there, `truncated`
//! set and a `note` names the limit) and wait `timeout_secs` (30 s by default); `download_file`
//! writes at most `max_download_bytes` (256 MiB; an error past it, nothing written) and waits 10
//! minutes. An error past a limit names it and the key that raises it. Each wait is one
//! deadline for the whole exchange, redirects included. `download_file` holds the whole
//! response in memory (up to its limit) before it writes the file: each download in flight may
//! take that much.
//! `fetch` converts HTML to Markdown only up to 512 levels of nesting and 200,000 nodes
//! (elements and text); past either it refuses and names `raw: true`, which returns the page
//! as it is. The conversion runs on a thread of its own, never on an async worker.
//!
//! # Why `http_get` and `http_request`
//!
//! The engine's policy judges a capability by its declared effects, before the call and whatever
//! its arguments (`Policy::decide` takes the definition, not the call), so one capability cannot
//! be read-only for `GET` and irreversible for `POST`. `http_request` (any method) is therefore
//! declared `execute, network` and irreversible — a request may change the remote side, and
//! nothing here can take it back — so by default the caller confirms each call; `http_get` is
//! the same request restricted to `GET`, declared `read, network`, so reading needs no
//! confirmation. `HEAD` and `OPTIONS` are read-only too, but go through `http_request`.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::time::Duration;

use crate::common::{check_path, invalid};
use aifirst::fs::EntryKind;
use aifirst::http::{size_text, Method, NetLimits, Outgoing, Received, Url};
use aifirst::{capability, Ctx, ToolError, Value};
use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest, Sha256};

const MIB: usize = 1 << 20;
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);
const DEFAULT_TIMEOUT_SECS: u64 = 30;
const MAX_TIMEOUT_SECS: u64 = 600;
/// fetch's `max_length` is below this (as the official server's).
const MAX_FETCH_LENGTH: u64 = 1_000_000;
/// Longer URLs are refused before anything is parsed.
const MAX_URL_BYTES: usize = 16 * 1024;
/// HTML nested deeper than this is not converted (the converter recurses per level).
const MAX_HTML_DEPTH: usize = 512;
/// HTML with more nodes (elements, text, comments) than this is not converted: the converter's
/// work grows with the square of a node's number of children.
const MAX_HTML_NODES: usize = 200_000;
/// Parsing a page for `fetch` may take this long (the tree builder's work grows with the
/// square of the nesting; see [`parse_within`]).
const HTML_PARSE_BUDGET: Duration = Duration::from_secs(10);
/// The HTML converter runs on a thread with this much stack.
const CONVERT_STACK: usize = 64 * MIB;
/// Methods `http_request` sends.
const METHODS: [&str; 7] = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"];
/// Request headers the client sets itself: giving them would change or break the request.
const RESERVED_HEADERS: [&str; 10] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
    "expect",
];

// ---------------------------------------------------------------------------------------------
// Results

/// The answer to `http_get` or `http_request`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct HttpResponse {
    /// The status code of the final response (after redirects).
    pub status: u16,
    /// The URL that answered (the last redirect's target, or the URL asked for).
    pub url: String,
    /// Response headers by lower-case name (several values joined with `, `); the values of
    /// `set-cookie` are redacted (the cookie's name is kept).
    pub headers: BTreeMap<String, String>,
    /// The body as text (absent when it is parsed into `json`, or is not text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The body parsed, when the content type is JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    /// Why the body is not shown (a binary body), or why it is cut (`truncated`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The body was longer than the most read (airun.toml `max_response_bytes`, 16 MiB by
    /// default) and is cut there.
    pub truncated: bool,
}

/// What download_file wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Download {
    /// The file written, as the sandbox shows it (the allowed directory joined with the rest).
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// The response's `Content-Type`, if it had one.
    pub content_type: Option<String>,
    /// SHA-256 of the content, hex.
    pub sha256: String,
}

// ---------------------------------------------------------------------------------------------
// Tools

/// Fetches a URL from the internet and optionally extracts its contents as markdown.
///
/// An HTML page is converted to Markdown (scripts and styles left out) unless `raw` is true;
/// other text is returned as it is; images and other binary content are refused (download_file
/// saves them). Long content is cut at `max_length` characters: call again with the
/// `start_index` the note names to read on. Pages up to 5 MiB (by default), 30 s. Reaches only
/// the hosts the sandbox allows; private and loopback addresses only when named in
/// `allowed_hosts`.
#[capability(effects(read, network))]
pub async fn fetch(
    ctx: &Ctx,
    /// URL to fetch (http or https).
    url: String,
    /// Maximum number of characters to return (default 5000; below 1000000).
    max_length: Option<u64>,
    /// On return output starting at this character index, useful if a previous fetch was
    /// truncated and more context is required (default 0).
    start_index: Option<u64>,
    /// Get the actual HTML content of the requested page, without simplification (default
    /// false).
    raw: Option<bool>,
) -> Result<String, ToolError> {
    let max_length = max_length.unwrap_or(5000);
    if max_length == 0 || max_length >= MAX_FETCH_LENGTH {
        return Err(invalid(format!(
            "`max_length` must be between 1 and {}, not {max_length}",
            MAX_FETCH_LENGTH - 1
        )));
    }
    let start_index = start_index.unwrap_or(0);
    let raw = raw.unwrap_or(false);
    let target = checked_url(&url)?;
    let shown = target.as_str().to_string();
    let limit = NetLimits::bytes(ctx.sandbox().net_limits().max_fetch_bytes);
    let mut req = Outgoing::new(Method::GET, target);
    req.timeout = FETCH_TIMEOUT;
    req.max_bytes = limit;
    // Cut rather than refused by `send`, so that the error names the setting that raises it.
    req.truncate = true;
    let got = ctx.http().send(req).await?;
    if got.truncated {
        return Err(too_large(limit, "fetch reads", "max_fetch_bytes", ""));
    }
    if got.status >= 400 {
        return Err(ToolError::Http {
            status: got.status,
            message: format!("Failed to fetch {shown} - status code {}", got.status),
        });
    }
    let content_type = got.header("content-type").unwrap_or("").to_string();
    let Some(text) = decode_text(&got.body, &content_type) else {
        return Err(ToolError::Handler {
            message: format!(
                "{shown} is {} ({} bytes), not text: fetch returns text only (download_file \
                 saves other content)",
                describe_type(&content_type),
                got.body.len()
            ),
        });
    };
    let (content, prefix) = if !raw && is_html(&content_type, &text) {
        (html_to_markdown(text).await?, String::new())
    } else {
        (
            text,
            format!(
                "Content type {content_type} cannot be simplified to markdown, but here is the \
                 raw content:\n"
            ),
        )
    };
    Ok(format!(
        "{prefix}Contents of {shown}:\n{}",
        page(&content, start_index, max_length)
    ))
}

/// Send an HTTP GET request and return the response: status, headers, and the body as text (or
/// parsed, as `json`, when the server says it is JSON). Any status is returned, 4xx and 5xx
/// too. The headers go to the URL's own origin only: a redirect to another host gets none of
/// them. Bodies over 16 MiB (by default) are cut (`truncated`). Read-only: use http_request
/// for other methods.
#[capability(effects(read, network))]
pub async fn http_get(
    ctx: &Ctx,
    /// The URL (http or https).
    url: String,
    /// Request headers, by name.
    headers: Option<HashMap<String, String>>,
    /// Query parameters added to the URL (encoded here).
    query: Option<HashMap<String, String>>,
    /// Seconds to wait for the whole response, redirects included (default 30, at most 600).
    timeout_secs: Option<u64>,
) -> Result<HttpResponse, ToolError> {
    request(ctx, "GET", url, headers, query, None, None, timeout_secs).await
}

/// Send an HTTP request — GET, HEAD, OPTIONS, POST, PUT, PATCH or DELETE — and return the
/// response: status, headers, and the body as text (or parsed, as `json`, when the server says
/// it is JSON). Any status is returned, 4xx and 5xx too. Send a JSON body with `json`, any other
/// with `body` (its type in a `Content-Type` header; text/plain by default). The headers go to
/// the URL's own origin only: a redirect to another host gets none of them. Bodies over 16 MiB
/// (by default) are cut (`truncated`). A request may
/// change things on the server that cannot be undone, so each call may need confirmation;
/// http_get reads without it.
#[capability(
    effects(execute, network),
    irreversible = "an HTTP request may change state on the remote server, which nothing here can take back"
)]
#[allow(clippy::too_many_arguments)]
pub async fn http_request(
    ctx: &Ctx,
    /// The method: GET, HEAD, OPTIONS, POST, PUT, PATCH or DELETE.
    method: String,
    /// The URL (http or https).
    url: String,
    /// Request headers, by name.
    headers: Option<HashMap<String, String>>,
    /// Query parameters added to the URL (encoded here).
    query: Option<HashMap<String, String>>,
    /// A JSON body (sent as `application/json`); not with `body`.
    json: Option<Value>,
    /// A text body; not with `json`.
    body: Option<String>,
    /// Seconds to wait for the whole response, redirects included (default 30, at most 600).
    timeout_secs: Option<u64>,
) -> Result<HttpResponse, ToolError> {
    request(ctx, &method, url, headers, query, json, body, timeout_secs).await
}

/// Download a URL into a file inside an allowed directory (replaced atomically if it exists;
/// the parent directory must exist). Files up to 256 MiB (by default); an error status or a
/// larger response writes nothing. Returns the path, size, content type and SHA-256. Undo puts
/// back what was there before.
#[capability(
    effects(create, update, network, filesystem),
    idempotent,
    undo = file_snapshot(paths = ["$args.path"])
)]
pub async fn download_file(
    ctx: &Ctx,
    /// The URL to download (http or https).
    url: String,
    /// The file to write: an absolute path inside an allowed directory, or one relative to the
    /// first.
    path: String,
) -> Result<Download, ToolError> {
    check_path(&path, "path")?;
    // Where it goes is settled before anything is sent.
    let shown = {
        let fs = ctx.fs();
        let shown = fs.locate(&path)?.shown;
        match fs.info(&path, false) {
            Ok(i) if i.kind == EntryKind::Dir => {
                return Err(ToolError::Handler {
                    message: format!("{} is a directory; name the file to write", shown.display()),
                })
            }
            Ok(i) if i.kind == EntryKind::Symlink => {
                return Err(ToolError::NotAllowed {
                    message: format!(
                        "{} is a symbolic link; write to the file it names instead",
                        shown.display()
                    ),
                })
            }
            Ok(i) if i.kind == EntryKind::Other => {
                return Err(ToolError::NotAllowed {
                    message: format!(
                        "{} is not a regular file (a FIFO, socket or device); it is not written",
                        shown.display()
                    ),
                })
            }
            _ => {}
        }
        if let Some(parent) = shown.parent() {
            match fs.info(parent, true) {
                Ok(i) if i.kind == EntryKind::Dir => {}
                Ok(_) => {
                    return Err(ToolError::Handler {
                        message: format!("{} is not a directory", parent.display()),
                    })
                }
                Err(_) => {
                    return Err(ToolError::Handler {
                        message: format!(
                            "the directory {} does not exist (create_directory makes it)",
                            parent.display()
                        ),
                    })
                }
            }
        }
        shown
    };
    let target = checked_url(&url)?;
    let limit = NetLimits::bytes(ctx.sandbox().net_limits().max_download_bytes);
    let mut req = Outgoing::new(Method::GET, target);
    req.timeout = DOWNLOAD_TIMEOUT;
    req.max_bytes = limit;
    // Cut rather than refused by `send`, so that the error names the setting that raises it.
    req.truncate = true;
    let got = ctx.http().send(req).await.map_err(nothing_written)?;
    if got.truncated {
        return Err(too_large(
            limit,
            "download_file writes",
            "max_download_bytes",
            "; nothing was written",
        ));
    }
    if !got.is_success() {
        let excerpt: String = String::from_utf8_lossy(&got.body)
            .chars()
            .take(300)
            .collect();
        return Err(ToolError::Http {
            status: got.status,
            message: format!(
                "the server answered {}; nothing was written{}",
                got.status,
                if excerpt.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", excerpt.trim())
                }
            ),
        });
    }
    ctx.fs().write(&path, &got.body)?;
    let digest: [u8; 32] = Sha256::digest(&got.body).into();
    Ok(Download {
        path: shown.display().to_string(),
        bytes: got.body.len() as u64,
        content_type: got.header("content-type").map(str::to_string),
        sha256: hex(&digest),
    })
}

// ---------------------------------------------------------------------------------------------
// Requests

/// http_get and http_request: the arguments checked, the request sent, the response described.
#[allow(clippy::too_many_arguments)]
async fn request(
    ctx: &Ctx,
    method: &str,
    url: String,
    headers: Option<HashMap<String, String>>,
    query: Option<HashMap<String, String>>,
    json: Option<Value>,
    body: Option<String>,
    timeout_secs: Option<u64>,
) -> Result<HttpResponse, ToolError> {
    let upper = method.trim().to_ascii_uppercase();
    if !METHODS.contains(&upper.as_str()) {
        return Err(invalid(format!(
            "method `{method}` is not sent; use one of {}",
            METHODS.join(", ")
        )));
    }
    let method = Method::from_bytes(upper.as_bytes()).map_err(|e| invalid(e.to_string()))?;
    let secs = timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
    if secs == 0 || secs > MAX_TIMEOUT_SECS {
        return Err(invalid(format!(
            "`timeout_secs` must be between 1 and {MAX_TIMEOUT_SECS}, not {secs}"
        )));
    }
    let (headers, content_type) = request_headers(headers.unwrap_or_default())?;
    let payload: Option<(String, Vec<u8>)> = match (json, body) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "give `json` or `body`, not both: `json` is sent as application/json".into(),
            ))
        }
        (Some(v), None) => Some((
            content_type.unwrap_or_else(|| "application/json".into()),
            serde_json::to_vec(&v).map_err(ToolError::handler)?,
        )),
        (None, Some(text)) => Some((
            content_type.unwrap_or_else(|| "text/plain; charset=utf-8".into()),
            text.into_bytes(),
        )),
        (None, None) => None,
    };
    if payload.is_some() && (method == Method::GET || method == Method::HEAD) {
        return Err(invalid(format!(
            "a {method} request carries no body; send it with POST, PUT or PATCH"
        )));
    }
    let mut target = checked_url(&url)?;
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        let sorted: BTreeMap<String, String> = q.into_iter().collect();
        target.query_pairs_mut().extend_pairs(sorted.iter());
    }
    let mut req = Outgoing::new(method, target);
    req.headers = headers.as_slice();
    req.body = payload
        .as_ref()
        .map(|(media, bytes)| (media.as_str(), bytes.as_slice()));
    let limit = NetLimits::bytes(ctx.sandbox().net_limits().max_response_bytes);
    req.timeout = Duration::from_secs(secs);
    req.max_bytes = limit;
    req.truncate = true;
    let got = ctx.http().send(req).await?;
    Ok(describe(got, limit))
}

/// Header names and values, in order.
type Headers = Vec<(String, String)>;

/// The request headers checked, sorted by name; a `Content-Type` among them is taken out (it
/// goes with the body).
fn request_headers(given: HashMap<String, String>) -> Result<(Headers, Option<String>), ToolError> {
    let mut headers: Vec<(String, String)> = given.into_iter().collect();
    headers.sort();
    let mut content_type = None;
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(tchar) {
            return Err(invalid(format!(
                "`{}` is not a header name (letters, digits and `-`)",
                name.escape_debug()
            )));
        }
        if !value.chars().all(|c| c == '\t' || (' '..='~').contains(&c)) {
            return Err(invalid(format!(
                "the value of header `{name}` holds a line break, a control character or \
                 non-ASCII text, which a header cannot carry"
            )));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(invalid(format!(
                "header `{name}` is set by the client itself; leave it out"
            )));
        }
        if lower == "content-type" {
            content_type = Some(value);
            continue;
        }
        out.push((name, value));
    }
    Ok((out, content_type))
}

/// A response as http_get and http_request return it; `limit` is the most they read (a body
/// cut there is `truncated`, with a note naming the limit).
fn describe(got: Received, limit: usize) -> HttpResponse {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in got.headers.iter() {
        let key = name.as_str().to_ascii_lowercase();
        let mut v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if key == "set-cookie" || key == "set-cookie2" {
            v = redact_cookie(&v);
        }
        match headers.entry(key) {
            Entry::Occupied(mut o) => {
                let e = o.get_mut();
                e.push_str(", ");
                e.push_str(&v);
            }
            Entry::Vacant(slot) => {
                slot.insert(v);
            }
        }
    }
    let content_type = got.header("content-type").unwrap_or("").to_string();
    let media = media_type(&content_type);
    let is_json = media == "application/json" || media.ends_with("+json");
    let mut json = None;
    let mut body = None;
    let mut note = None;
    if is_json && !got.truncated && !got.body.is_empty() {
        json = serde_json::from_slice::<Value>(&got.body).ok();
    }
    if json.is_none() {
        if got.body.is_empty() {
            body = Some(String::new());
        } else {
            match decode_text(&got.body, &content_type) {
                Some(text) => body = Some(text),
                None => {
                    note = Some(format!(
                        "{} bytes of {} not shown: not text (download_file saves it)",
                        got.body.len(),
                        describe_type(&content_type)
                    ))
                }
            }
        }
    }
    if got.truncated {
        let cut = format!(
            "the body is cut at {}, the most http_get and http_request read (raise \
             `max_response_bytes` in airun.toml to read more)",
            size_text(limit)
        );
        note = Some(match note {
            Some(n) => format!("{n}; {cut}"),
            None => cut,
        });
    }
    HttpResponse {
        status: got.status,
        url: got.url.as_str().to_string(),
        headers,
        body,
        json,
        note,
        truncated: got.truncated,
    }
}

/// `name=value; Path=/; …` → `name=[REDACTED]`.
fn redact_cookie(v: &str) -> String {
    match v.split_once('=') {
        Some((name, _)) => format!("{}={}", name.trim(), aifirst::REDACTED),
        None => aifirst::REDACTED.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// URLs

/// The URL, parsed and held to the tools' rules: http(s) only, no credentials in it, an IPv4
/// address only in dotted decimal form. Hosts and addresses are the sandbox's to judge, on
/// every hop ([`aifirst::http::Net::check_url`] and its resolver).
pub fn checked_url(input: &str) -> Result<Url, ToolError> {
    if input.len() > MAX_URL_BYTES {
        return Err(invalid(format!(
            "the URL is {} bytes long; URLs are limited to {MAX_URL_BYTES} bytes",
            input.len()
        )));
    }
    // The URL is not echoed: it may carry credentials.
    let url = Url::parse(input.trim())
        .map_err(|e| invalid(format!("not an absolute http(s) URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ToolError::NotAllowed {
            message: format!(
                "only http and https URLs are fetched, not `{}:` URLs",
                url.scheme()
            ),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ToolError::NotAllowed {
            message: "the URL carries credentials (`user:password@`), which are never sent in a \
                      URL; send them in a header (http_request's `headers`) instead"
                .into(),
        });
    }
    if let Some(host) = url.host_str() {
        if host.parse::<Ipv4Addr>().is_ok() {
            let written = written_host(input).unwrap_or("");
            if !written.eq_ignore_ascii_case(host) {
                return Err(invalid(format!(
                    "the host `{}` is read as the address {host}: write the address in dotted \
                     decimal form",
                    written.escape_debug()
                )));
            }
        }
    }
    Ok(url)
}

/// The host as written in `input`: after the scheme and its slashes, before the path, query or
/// fragment, without user information or port.
fn written_host(input: &str) -> Option<&str> {
    // Parsers drop leading and trailing spaces and control characters.
    let input = input.trim_matches(|c: char| c <= ' ');
    let (_, rest) = input.split_once(':')?;
    let rest = rest.trim_start_matches(['/', '\\']);
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host_port = match authority.rfind('@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    if host_port.starts_with('[') {
        return Some(match host_port.find(']') {
            Some(close) => &host_port[..=close],
            None => host_port,
        });
    }
    Some(match host_port.rfind(':') {
        Some(colon) => &host_port[..colon],
        None => host_port,
    })
}

// ---------------------------------------------------------------------------------------------
// Content

/// `text/html; charset=utf-8` → `text/html`.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn charset(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').to_ascii_lowercase())
    })
}

fn describe_type(content_type: &str) -> String {
    match media_type(content_type) {
        m if m.is_empty() => "content of no stated type".into(),
        m => format!("`{m}`"),
    }
}

fn is_textual(media: &str) -> bool {
    media.starts_with("text/")
        || media.ends_with("+json")
        || media.ends_with("+xml")
        || matches!(
            media,
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/ecmascript"
                | "application/x-javascript"
                | "application/yaml"
                | "application/x-yaml"
                | "application/toml"
                | "application/x-toml"
                | "application/sql"
                | "application/graphql"
                | "application/x-ndjson"
                | "application/jsonl"
                | "application/csv"
                | "application/x-sh"
                | "application/x-httpd-php"
                | "application/x-www-form-urlencoded"
        )
}

/// Bytes that read as text: no NUL, UTF-8 (a character cut at the end is forgiven).
fn looks_like_text(body: &[u8]) -> bool {
    let head = &body[..body.len().min(8192)];
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

/// The body as text, or `None` when it is not text (an image, an archive, …). A body of no
/// stated type, or `application/octet-stream`, is text when it reads as text.
fn decode_text(body: &[u8], content_type: &str) -> Option<String> {
    let media = media_type(content_type);
    let textual = match media.as_str() {
        "" | "application/octet-stream" | "binary/octet-stream" => looks_like_text(body),
        m => is_textual(m),
    };
    if !textual {
        return None;
    }
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    Some(match charset(content_type).as_deref() {
        Some("iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" | "windows-1252" | "cp1252") => {
            body.iter().map(|&b| char::from(b)).collect()
        }
        _ => String::from_utf8_lossy(body).into_owned(),
    })
}

/// An HTML page: said so by its type, or starting like one.
fn is_html(content_type: &str, text: &str) -> bool {
    let media = media_type(content_type);
    if media == "text/html" || media == "application/xhtml+xml" {
        return true;
    }
    let start: String = text
        .trim_start()
        .chars()
        .take(100)
        .collect::<String>()
        .to_ascii_lowercase();
    start.starts_with("<!doctype html") || start.contains("<html")
}

/// An HTML page as Markdown (htmd), without scripts, styles and the head. Runs on a thread of
/// its own with a large stack (the converter recurses once per level), awaited without
/// blocking an async worker; refuses pages nested deeper than [`MAX_HTML_DEPTH`] or with more
/// than [`MAX_HTML_NODES`] nodes.
async fn html_to_markdown(html: String) -> Result<String, ToolError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("fetch-html".into())
        .stack_size(CONVERT_STACK)
        .spawn(move || {
            let _ = tx.send(convert_html(&html));
        })
        .map_err(|e| ToolError::handler(format!("cannot start the HTML converter: {e}")))?;
    match rx.await {
        Ok(result) => result,
        // The thread ended without an answer: the converter failed.
        Err(_) => Err(ToolError::Handler {
            message: "the page could not be converted to Markdown; fetch it with `raw: true`"
                .into(),
        }),
    }
}

fn convert_html(html: &str) -> Result<String, ToolError> {
    convert_html_within(html, HTML_PARSE_BUDGET)
}

/// [`convert_html`] with at most `budget` for parsing.
fn convert_html_within(html: &str, budget: Duration) -> Result<String, ToolError> {
    let refuse = |why: String| {
        ToolError::Handler {
        message: format!(
            "{why}, too much to convert to Markdown; fetch it with `raw: true` for the page as it is"
        ),
    }
    };
    if nests_too_deep(html) {
        return Err(refuse(format!(
            "the page nests elements more than {MAX_HTML_DEPTH} deep"
        )));
    }
    let converter = htmd::HtmlToMarkdown::builder()
        .skip_tags(vec!["script", "style", "noscript", "template", "head"])
        .build();
    let tree = parse_within(html, budget).ok_or_else(|| {
        refuse(format!(
            "the page took more than {} s to parse (its elements nest very deep)",
            budget.as_secs_f64()
        ))
    })?;
    if let Some(why) = too_big(&tree) {
        return Err(refuse(why));
    }
    let markdown = converter.tree_to_markdown(&tree);
    if markdown.trim().is_empty() {
        return Ok("<error>Page failed to be simplified from HTML</error>".into());
    }
    Ok(markdown)
}

/// The page as htmd's tree (html5ever with scripting on, as htmd parses), fed a KiB at a time;
/// `None` once parsing has taken more than `budget`. The tree builder looks through the open
/// elements at each start tag, so a page nested deep costs the square of its depth: the clock
/// is read between pieces, and one piece (about 200 tags) costs at most a fraction of a second
/// however deep the page.
fn parse_within(html: &str, budget: Duration) -> Option<Rc<htmd::Node>> {
    use html5ever::tendril::{StrTendril, TendrilSink};
    use html5ever::tree_builder::TreeBuilderOpts;
    const PIECE: usize = 1024;
    let started = std::time::Instant::now();
    let mut parser = html5ever::parse_document(
        markup5ever_rcdom::RcDom::default(),
        html5ever::ParseOpts {
            tree_builder: TreeBuilderOpts {
                scripting_enabled: true,
                ..Default::default()
            },
            ..Default::default()
        },
    );
    let mut rest = html;
    while !rest.is_empty() {
        let mut cut = rest.len().min(PIECE);
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        let (piece, after) = rest.split_at(cut);
        parser.process(StrTendril::from_slice(piece));
        rest = after;
        if started.elapsed() > budget {
            return None;
        }
    }
    Some(parser.finish().document)
}

/// Whether the page's tags, counted in one pass of the tokenizer, nest past twice
/// [`MAX_HTML_DEPTH`]: such a page is refused at once, before the tree builder sees it (100,000
/// nested `<div>`s took 28 s to refuse after parsing). The count keeps a stack of the elements
/// it takes for open: every start tag but void and self-closing ones and those whose end the
/// parser implies (`p`, `li`, table cells, `a`, headings …); an end tag closes the nearest of its
/// name and what is above it, and one that closes nothing is ignored, as the parser ignores it.
/// Inside `svg` and `math` a `script` or `style` is not raw text. A fast first answer only:
/// HTML's rules for misnested tags differ from this in places, and [`parse_within`]'s clock is
/// what bounds the time.
fn nests_too_deep(html: &str) -> bool {
    use html5ever::tendril::StrTendril;
    use html5ever::tokenizer::states::RawKind;
    use html5ever::tokenizer::{
        BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer,
    };
    use std::cell::{Cell, RefCell};

    const LIMIT: usize = 2 * MAX_HTML_DEPTH;
    /// Ends are implied (or a new one closes the last) or there is no content.
    const UNCOUNTED: &[&str] = &[
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr", "param", "keygen", "frame", "basefont", "bgsound", "image", "p", "li",
        "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead", "tbody", "tfoot", "colgroup",
        "caption", "rb", "rt", "rtc", "rp", "html", "head", "body", "a", "nobr", "button", "form",
        "h1", "h2", "h3", "h4", "h5", "h6",
    ];
    struct Counter {
        open: RefCell<Vec<String>>,
        /// `svg` and `math` elements open.
        foreign: Cell<usize>,
        deep: Cell<bool>,
    }
    impl TokenSink for Counter {
        type Handle = ();
        fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
            let Token::TagToken(Tag {
                kind,
                name,
                self_closing,
                ..
            }) = token
            else {
                return TokenSinkResult::Continue;
            };
            let name: &str = &name;
            if UNCOUNTED.contains(&name) {
                return TokenSinkResult::Continue;
            }
            let mut open = self.open.borrow_mut();
            match kind {
                TagKind::StartTag if !self_closing => {
                    open.push(name.to_string());
                    if matches!(name, "svg" | "math") {
                        self.foreign.set(self.foreign.get() + 1);
                    }
                    if open.len() > LIMIT {
                        self.deep.set(true);
                        // Pauses the tokenizer: nothing more to learn.
                        return TokenSinkResult::Script(());
                    }
                    // What the tree builder would switch the tokenizer to (in HTML content).
                    if self.foreign.get() == 0 {
                        match name {
                            "script" => return TokenSinkResult::RawData(RawKind::ScriptData),
                            "style" | "xmp" | "iframe" | "noembed" | "noframes" => {
                                return TokenSinkResult::RawData(RawKind::Rawtext)
                            }
                            "title" | "textarea" => {
                                return TokenSinkResult::RawData(RawKind::Rcdata)
                            }
                            "plaintext" => return TokenSinkResult::Plaintext,
                            _ => {}
                        }
                    }
                }
                TagKind::StartTag => {}
                TagKind::EndTag => {
                    if let Some(at) = open.iter().rposition(|n| n == name) {
                        let closed = open
                            .drain(at..)
                            .filter(|n| matches!(n.as_str(), "svg" | "math"))
                            .count();
                        self.foreign.set(self.foreign.get().saturating_sub(closed));
                    }
                }
            }
            TokenSinkResult::Continue
        }
    }
    let tokenizer = Tokenizer::new(
        Counter {
            open: RefCell::new(Vec::new()),
            foreign: Cell::new(0),
            deep: Cell::new(false),
        },
        Default::default(),
    );
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    tokenizer.sink.deep.get()
}

/// Why the tree is not converted: nested deeper than [`MAX_HTML_DEPTH`], or more than
/// [`MAX_HTML_NODES`] nodes. Walked without recursion, and no further than the first limit
/// passed.
fn too_big(root: &Rc<htmd::Node>) -> Option<String> {
    let mut nodes = 0usize;
    let mut stack: Vec<(Rc<htmd::Node>, usize)> = vec![(Rc::clone(root), 0)];
    while let Some((node, d)) = stack.pop() {
        if d > MAX_HTML_DEPTH {
            return Some(format!(
                "the page nests elements more than {MAX_HTML_DEPTH} deep"
            ));
        }
        nodes += 1;
        if nodes > MAX_HTML_NODES {
            return Some(format!(
                "the page has more than {MAX_HTML_NODES} nodes (elements and text)"
            ));
        }
        for child in node.children.borrow().iter() {
            stack.push((Rc::clone(child), d + 1));
        }
    }
    None
}

/// Characters `[start, start + max)` of `content`, with the official fetch server's notes.
fn page(content: &str, start: u64, max: u64) -> String {
    let total = content.chars().count() as u64;
    if start >= total {
        return "<error>No more content available.</error>".into();
    }
    let skip = usize::try_from(start).unwrap_or(usize::MAX);
    let take = usize::try_from(max).unwrap_or(usize::MAX);
    let piece: String = content.chars().skip(skip).take(take).collect();
    let shown = piece.chars().count() as u64;
    if piece.is_empty() {
        return "<error>No more content available.</error>".into();
    }
    let remaining = total - (start + shown);
    if shown == max && remaining > 0 {
        format!(
            "{piece}\n\n<error>Content truncated. Call the fetch tool with a start_index of {} \
             to get more content.</error>",
            start + shown
        )
    } else {
        piece
    }
}

/// A response longer than `limit` bytes, the most `reads` (`fetch reads`, `download_file
/// writes`): an error naming the limit and the airun.toml `key` that raises it; `then` ends the
/// first part (`; nothing was written`).
fn too_large(limit: usize, reads: &str, key: &str, then: &str) -> ToolError {
    ToolError::Transport {
        message: format!(
            "the response is larger than {}, the most {reads}{then}; raise `{key}` in \
             airun.toml to allow more",
            size_text(limit)
        ),
    }
}

/// A failed download says that nothing was written.
fn nothing_written(e: ToolError) -> ToolError {
    match e {
        ToolError::Transport { message } => ToolError::Transport {
            message: format!("{message}; nothing was written"),
        },
        other => other,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn numeric_hosts_must_be_dotted_decimal() {
        for bad in [
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://127.0.1:8080/x",
            "http:2130706433",
            "http://0x7f.1/",
        ] {
            let e = checked_url(bad).unwrap_err();
            assert!(e.to_string().contains("dotted decimal"), "{bad}: {e}");
        }
        for good in [
            "http://127.0.0.1:8080/x",
            "https://example.com/a?b=c#d",
            "http://[::1]:80/",
            "HTTP://EXAMPLE.com",
            "http://8.8.8.8",
        ] {
            checked_url(good).unwrap();
        }
        assert!(matches!(
            checked_url("http://u:p@example.com/"),
            Err(ToolError::NotAllowed { .. })
        ));
        assert!(matches!(
            checked_url("file:///etc/passwd"),
            Err(ToolError::NotAllowed { .. })
        ));
        assert!(matches!(
            checked_url("/relative"),
            Err(ToolError::InvalidArguments { .. })
        ));
    }

    /// 100,000 nested `<div>`s took 28 s to be refused (and a million, about an hour): the
    /// tokenizer's count refuses them before the tree builder runs. Pages whose tags merely
    /// look deep (ends the parser implies, tags inside scripts) are converted.
    #[test]
    fn deep_nesting_is_refused_before_the_tree_is_built() {
        let deep = format!("<html><body>{}x</body></html>", "<div>".repeat(100_000));
        assert!(nests_too_deep(&deep));
        let e = convert_html(&deep).unwrap_err();
        assert!(e.to_string().contains("more than 512 deep"), "{e}");
        assert!(nests_too_deep(&"<span>".repeat(1025)));
        assert!(!nests_too_deep(&"<span>".repeat(1024)));
        let shallow = format!(
            "<html><body>{}{}{}<script>{}</script><div>{}</div></body></html>",
            "<p>para".repeat(5000),
            "<ul>".to_string() + &"<li>item".repeat(5000) + "</ul>",
            "<a href=x>link".repeat(3000),
            "'<div>'.repeat(1);".repeat(3000),
            "<div>x</div>".repeat(3000),
        );
        assert!(!nests_too_deep(&shallow));
        assert!(convert_html(&shallow).unwrap().contains("item"));
        // Closed as it goes, a page of many elements at a depth of 600 is still refused by the
        // tree's own check (512).
        let closed = format!("{}x{}", "<div>".repeat(600), "</div>".repeat(600));
        assert!(!nests_too_deep(&closed));
        assert!(convert_html(&closed)
            .unwrap_err()
            .to_string()
            .contains("512 deep"));
        // End tags that close nothing do not bring the count down (the parser ignores them).
        assert!(nests_too_deep(&"<div></span>".repeat(2000)));
        assert!(nests_too_deep(&"<span></div>".repeat(2000)));
        // In SVG a `<script>` is no raw text: the divs after it are counted.
        let svg = format!("<svg><script>{}", "<div>".repeat(2000));
        assert!(nests_too_deep(&svg));
        // What the count misses, the clock stops: misnested formatting tags the parser keeps
        // open, given no time at all, are refused by the parse's budget.
        let misnested = "<b><div></b>".repeat(20_000);
        assert!(!nests_too_deep(&misnested));
        let e = convert_html_within(&misnested, Duration::ZERO).unwrap_err();
        assert!(e.to_string().contains("took more than 0 s to parse"), "{e}");
        assert!(parse_within("<p>fine</p>", Duration::from_secs(5)).is_some());
    }

    #[test]
    fn pages_are_cut_like_the_official_server() {
        assert_eq!(
            page("abcdef", 0, 4),
            "abcd\n\n<error>Content truncated. Call the fetch tool with a start_index of 4 to \
             get more content.</error>"
        );
        assert_eq!(page("abcdef", 4, 4), "ef");
        assert_eq!(page("abcdef", 2, 4), "cdef");
        assert_eq!(
            page("abcdef", 6, 4),
            "<error>No more content available.</error>"
        );
        assert_eq!(page("ééé", 1, 1).chars().next(), Some('é'));
    }

    #[test]
    fn text_is_told_from_binary() {
        assert!(decode_text(b"hello", "text/plain").is_some());
        assert!(decode_text(b"{}", "application/problem+json").is_some());
        assert!(decode_text(b"\x89PNG\r\n\x1a\n\0\0", "image/png").is_none());
        assert!(decode_text(b"\x89PNG\r\n\x1a\n\0\0", "").is_none());
        assert!(decode_text(b"plain", "").is_some());
        assert_eq!(
            decode_text(b"caf\xe9", "text/plain; charset=ISO-8859-1").unwrap(),
            "café"
        );
    }

    #[test]
    fn html_becomes_markdown_without_scripts() {
        let md = convert_html(
            "<html><head><title>T</title><style>.x{color:red}</style></head><body>\
             <h1>Title</h1><p>See <a href=\"https://example.com/\">the example</a>.</p>\
             <script>var secret = 1;</script></body></html>",
        )
        .unwrap();
        assert!(md.contains("# Title"), "{md}");
        assert!(md.contains("[the example](https://example.com/)"), "{md}");
        assert!(!md.contains("secret") && !md.contains("color"), "{md}");
        let deep = "<div>".repeat(MAX_HTML_DEPTH + 10);
        let e = convert_html(&deep).unwrap_err();
        assert!(
            e.to_string().contains("deep") && e.to_string().contains("raw"),
            "{e}"
        );
        let wide = "<br>".repeat(MAX_HTML_NODES + 10);
        let e = convert_html(&wide).unwrap_err();
        assert!(
            e.to_string().contains("nodes") && e.to_string().contains("raw"),
            "{e}"
        );
    }
}
