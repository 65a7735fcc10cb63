//! The HTTP binding generated capabilities call: one request per call, described by static data,
//! sent through the engine's sandbox ([`Net`]).
//!
//! Configuration comes from the environment, named after the API's `env_prefix`:
//! `{PREFIX}_BASE_URL` overrides the spec's server (for every operation, also those the spec sends
//! to a server of their own, such as an upload host); credentials are `{PREFIX}_TOKEN` (bearer),
//! `{PREFIX}_USERNAME` / `{PREFIX}_PASSWORD` (basic) and `{PREFIX}_API_KEY` (API key, sent where
//! the scheme says) — each only when the description declares that scheme; headers the
//! description does not declare come from `[http.headers]` in airun.toml;
//! `{PREFIX}_TIMEOUT_SECS` (default 30) bounds the whole exchange, redirects included.
//!
//! The boundaries, each checked on every hop of a redirect:
//! - a host outside `allowed_hosts` (when set) is refused; with none set, a redirect may not
//!   leave the API's own origin. An entry `host:port` allows that port only; a bare `host`
//!   allows every port of it;
//! - an address that is loopback, private, link-local, shared (CGNAT), unspecified, multicast or a
//!   cloud metadata endpoint is refused — judged on the address a name resolves to, at connect
//!   time — unless the host was named explicitly: in `allowed_hosts`, or as `{PREFIX}_BASE_URL`
//!   (that leave serves the generated APIs only, never [`Net::send`]);
//! - credentials, cookies and configured headers go to the API's origin only, never to the host
//!   a redirect leads to;
//! - a path parameter cannot change the operation: `.`, `..`, empty values and values with `/`
//!   are refused (a template `{+name}` — reserved expansion — allows `/` between segments).
//!
//! [`Net::send`] is the same exchange for capabilities that build their own requests (the
//! standard library's `fetch`, `http_request`, `download_file`): one redirect loop serves both,
//! each hop checked the same way. What differs:
//! - where a redirect may lead ([`Redirects`]);
//! - configured headers are never added, and the caller's own headers, whatever their names, go
//!   to the request's origin only: a hop to another origin gets none of them;
//! - a loopback or private address is reached only when `allowed_hosts` names its host (with its
//!   port, or bare for every port). A `{PREFIX}_BASE_URL` that let a generated API reach
//!   `localhost:3000` gives `send` nothing: it has a client of its own, whose resolver knows only
//!   `allowed_hosts`; with `allowed_hosts` empty, `send` reaches public addresses only.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::ToolError;

/// The request and response types of [`Net::send`], so capabilities need no HTTP crate of their
/// own.
pub use reqwest::header::HeaderMap;
pub use reqwest::{Method, Url};

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum In {
    Path,
    Query,
    Header,
    Cookie,
}

/// One parameter: the argument (`property`) and its name on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub property: &'static str,
    pub name: &'static str,
    pub location: In,
}

/// How the request body is built from the arguments.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    None,
    /// Each `(argument, field)` becomes a field of a JSON or form object.
    Fields {
        media_type: &'static str,
        fields: &'static [(&'static str, &'static str)],
    },
    /// One argument is the whole body.
    Wrapped {
        media_type: &'static str,
        property: &'static str,
    },
}

/// A way the API authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Auth {
    Bearer,
    Basic,
    ApiKey { name: &'static str, location: In },
}

/// An API: its default server, its configuration prefix and how it authenticates.
#[derive(Debug, Clone, Copy)]
pub struct Api {
    pub env_prefix: &'static str,
    pub base_url: &'static str,
    pub auth: &'static [Auth],
}

/// One operation of an API.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub params: &'static [Param],
    pub body: Body,
    /// A server of the operation's own, when the description gives it one different from the
    /// API's (`https://upload.example.com`); `None` uses [`Api::base_url`].
    pub server: Option<&'static str>,
}

fn env(api: &Api, key: &str) -> Option<String> {
    std::env::var(format!("{}_{key}", api.env_prefix))
        .ok()
        .filter(|v| !v.is_empty())
}

/// `a` or `an`, for an address kind (`an unspecified address`).
fn article(kind: &str) -> &'static str {
    if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// What a special address is, or `None` for an ordinary public one.
pub fn special_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return special_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return special_v4(Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                ));
            }
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6 == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254) {
                Some("cloud metadata")
            } else if s[0] & 0xffc0 == 0xfe80 || s[0] & 0xffc0 == 0xfec0 {
                Some("link-local")
            } else if s[0] & 0xfe00 == 0xfc00 {
                Some("private")
            } else if s[0] & 0xff00 == 0xff00 {
                Some("multicast")
            } else {
                None
            }
        }
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        Some("cloud metadata")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if o[0] == 100 && (64..128).contains(&o[1]) {
        Some("shared (CGNAT)")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast() || o[0] >= 240 {
        Some("reserved")
    } else {
        None
    }
}

/// A refusal by the sandbox, carried through reqwest's error chain from the resolver.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Host names (lower case, without port) whose addresses may be special.
type Leave = Arc<RwLock<HashSet<String>>>;

/// Resolves names, then drops special addresses unless the name has leave: the check is made on
/// the address connected to, so a name that resolves (or re-resolves) to a private address is
/// caught.
struct GuardedResolver {
    leave: Leave,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        let leave = self
            .leave
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&host);
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if leave {
                return Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs);
            }
            let (kept, dropped): (Vec<SocketAddr>, Vec<SocketAddr>) = found
                .into_iter()
                .partition(|a| special_address(a.ip()).is_none());
            if kept.is_empty() {
                if let Some(a) = dropped.first() {
                    let kind = special_address(a.ip()).unwrap_or("special");
                    return Err(Box::new(Refused(format!(
                        "host `{host}` resolves to {} ({} {kind} address); name it in \
                         allowed_hosts to allow it",
                        a.ip(),
                        article(kind)
                    )))
                        as Box<dyn std::error::Error + Send + Sync>);
                }
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The network half of the sandbox: which hosts may be reached, the headers configured for APIs,
/// and the HTTP clients (rustls, pooled, redirects followed by [`Net`] itself, hop by hop).
pub struct Net {
    /// `host` or `host:port`, lower case; empty allows any host with a public address.
    allowed: Vec<String>,
    headers: Vec<(String, String)>,
    /// Leave for [`Net::call`] and [`Net::client`]: the names in `allowed`, and the host of each
    /// `{PREFIX}_BASE_URL` called.
    leave: Leave,
    /// Leave for [`Net::send`]: the names in `allowed` only, never added to.
    listed: Leave,
    client: OnceLock<Result<reqwest::Client, String>>,
    /// [`Net::send`]'s client: its resolver consults `listed`, so a base URL granted to a
    /// generated API opens nothing to the generic tools.
    send_client: OnceLock<Result<reqwest::Client, String>>,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("allowed", &self.allowed)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Default for Net {
    fn default() -> Self {
        Net::new(Vec::new(), Vec::new())
    }
}

/// The maximum number of redirects followed.
const MAX_HOPS: usize = 10;

/// The largest response body read (`{PREFIX}_MAX_RESPONSE_BYTES` overrides it).
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// How much of a response the standard library's network tools read, one limit per tool, in
/// bytes. Kept in the sandbox ([`crate::Sandbox::with_net_limits`]); airun sets each from the
/// airun.toml key of the same name. They do not apply to generated APIs ([`Net::call`]:
/// `{PREFIX}_MAX_RESPONSE_BYTES`, 64 MiB by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetLimits {
    /// `fetch`: a longer response is an error (default 5 MiB).
    pub max_fetch_bytes: u64,
    /// `http_get` and `http_request`: a longer body is cut here and marked `truncated` (default
    /// 16 MiB).
    pub max_response_bytes: u64,
    /// `download_file`: a longer response is an error and nothing is written (default 256 MiB).
    /// The response is held in memory before it is written, so each download in flight may take
    /// this much.
    pub max_download_bytes: u64,
}

impl NetLimits {
    /// The defaults: 5 MiB for `fetch`, 16 MiB for `http_get` / `http_request`, 256 MiB for
    /// `download_file`.
    pub const DEFAULT: NetLimits = NetLimits {
        max_fetch_bytes: 5 << 20,
        max_response_bytes: 16 << 20,
        max_download_bytes: 256 << 20,
    };

    /// A limit as [`Outgoing::max_bytes`] takes it (saturating where `usize` is narrower).
    pub fn bytes(limit: u64) -> usize {
        usize::try_from(limit).unwrap_or(usize::MAX)
    }
}

impl Default for NetLimits {
    fn default() -> Self {
        NetLimits::DEFAULT
    }
}

/// Where a redirect may lead ([`Outgoing::redirects`]). Every hop is checked either way (as
/// [`Net::send`] says), and the resolver refuses special addresses without leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// With `allowed_hosts` set, to any listed host; without, only to the request's own origin
    /// (or its upgrade from http to https on the default ports). What [`Net::call`] does: an
    /// API's redirect to a host nobody named is not followed.
    OriginUnlessListed,
    /// To any host that passes the sandbox's checks: for tools whose URL is the caller's anyway
    /// (`fetch`, `http_request`).
    AnyChecked,
}

/// Credentials [`Net::send`] gives the request's origin only, never a host a redirect leads to.
#[derive(Clone)]
pub enum Credentials {
    /// `Authorization: Bearer …`.
    Bearer(String),
    /// `Authorization: Basic …`.
    Basic {
        username: String,
        password: Option<String>,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Bearer(_) => f.write_str("Bearer(…)"),
            Credentials::Basic { .. } => f.write_str("Basic(…)"),
        }
    }
}

/// One request for [`Net::send`]: sent to `url`, then along its redirects hop by hop.
pub struct Outgoing<'a> {
    pub method: Method,
    pub url: Url,
    /// The caller's headers. [`Net::send`] gives them to the origin only (or its upgrade from
    /// http to https on the default ports), whatever their names: a hop to another origin gets
    /// none of them, only the client's `User-Agent` and `Accept`. (Within [`Net::call`], an
    /// operation's header parameters go on every hop, except those named like a secret —
    /// `Authorization`, `Cookie`, `X-Api-Key`, …:
    /// [`aifirst_capability::secret::is_secret_key`] — which go to the origin only.)
    pub headers: &'a [(String, String)],
    /// Sent to the origin only, whatever their names (configured headers, API keys, cookies).
    pub origin_headers: &'a [(String, String)],
    /// Sent to the origin only.
    pub credentials: &'a [Credentials],
    /// The body's media type and bytes: sent again on a 307/308 redirect, dropped when a 303 (or
    /// a 301/302 after a POST) turns the request into a GET.
    pub body: Option<(&'a str, &'a [u8])>,
    /// For the whole exchange: every hop's connecting, sending and reading, redirects included
    /// (one deadline, not one per hop).
    pub timeout: Duration,
    /// The most bytes of the response body read.
    pub max_bytes: usize,
    /// Past `max_bytes`: `false`, the request fails; `true`, the body is cut there and
    /// [`Received::truncated`] says so.
    pub truncate: bool,
    pub redirects: Redirects,
}

impl<'a> Outgoing<'a> {
    /// `method` to `url`: no headers, no body, 30 s for the whole exchange, at most 64 MiB read
    /// (an error past it), redirects followed to any host that passes the sandbox's checks.
    pub fn new(method: Method, url: Url) -> Outgoing<'a> {
        Outgoing {
            method,
            url,
            headers: &[],
            origin_headers: &[],
            credentials: &[],
            body: None,
            timeout: Duration::from_secs(30),
            max_bytes: MAX_RESPONSE_BYTES,
            truncate: false,
            redirects: Redirects::AnyChecked,
        }
    }
}

impl std::fmt::Debug for Outgoing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: values may be credentials.
        f.debug_struct("Outgoing")
            .field("method", &self.method)
            .field("url", &self.url.as_str())
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field(
                "origin_headers",
                &self
                    .origin_headers
                    .iter()
                    .map(|(k, _)| k)
                    .collect::<Vec<_>>(),
            )
            .field("body_bytes", &self.body.map(|(_, b)| b.len()))
            .field("timeout", &self.timeout)
            .field("max_bytes", &self.max_bytes)
            .field("redirects", &self.redirects)
            .finish_non_exhaustive()
    }
}

/// The final response of [`Net::send`] (after the redirects it followed).
#[derive(Debug, Clone)]
pub struct Received {
    pub status: u16,
    pub headers: HeaderMap,
    /// The URL that answered (the last hop).
    pub url: Url,
    /// At most [`Outgoing::max_bytes`].
    pub body: Vec<u8>,
    /// The body was cut at [`Outgoing::max_bytes`] (only with [`Outgoing::truncate`]).
    pub truncated: bool,
}

impl Received {
    /// A header's value, when it is text (the first of several).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why an exchange failed, before it is put in words for its caller.
enum Failure {
    /// Refused or impossible (already in words).
    Tool(ToolError),
    /// The transport failed on the hop to this URL.
    Transport(reqwest::Error, Url),
    /// The exchange's deadline ([`Outgoing::timeout`]) passed before the hop to this URL.
    Deadline(Url),
    /// The body is larger than this many bytes.
    TooLarge(usize),
}

/// Which exchange is running: the rules that differ between [`Net::call`] and [`Net::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sender {
    /// A generated API ([`Net::call`]): a `{PREFIX}_BASE_URL` grants its host leave; an
    /// operation's plain header parameters follow a redirect.
    Api,
    /// A capability's own request ([`Net::send`]): leave only from `allowed_hosts`; the caller's
    /// headers go to the origin only.
    Tool,
}

impl From<ToolError> for Failure {
    fn from(e: ToolError) -> Self {
        Failure::Tool(e)
    }
}

/// `n` bytes in words: `5 MiB (5242880 bytes)`, or `4096 bytes`.
pub fn size_text(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB ({n} bytes)", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

/// `host:port`, `[v6]:port`, `host` or a bare IPv6 address → (host lower-cased without brackets,
/// port as written). Used for `allowed_hosts` entries here and for Host and Origin checks by
/// the MCP server.
pub fn split_host_port(authority: &str) -> (String, Option<String>) {
    let a = authority.trim().to_ascii_lowercase();
    if let Some(rest) = a.strip_prefix('[') {
        let mut it = rest.splitn(2, ']');
        let host = it.next().unwrap_or("").to_string();
        let port = it
            .next()
            .and_then(|p| p.strip_prefix(':'))
            .map(str::to_string);
        return (host, port);
    }
    match a.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.to_string(), Some(p.to_string())),
        _ => (a, None),
    }
}

fn bare_host(url: &reqwest::Url) -> String {
    url.host_str()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

fn same_origin(a: &reqwest::Url, b: &reqwest::Url) -> bool {
    a.scheme() == b.scheme()
        && bare_host(a) == bare_host(b)
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The API's own server: the same origin, or its upgrade from http to https on the default
/// ports (a server that redirects every request to https).
fn is_home(origin: &reqwest::Url, url: &reqwest::Url) -> bool {
    same_origin(origin, url)
        || (origin.scheme() == "http"
            && url.scheme() == "https"
            && bare_host(origin) == bare_host(url)
            && origin.port().is_none()
            && url.port().is_none())
}

impl Net {
    /// `allowed` hosts (`example.com`, `example.com:8080`, `127.0.0.1:9000`, `[::1]:80`; empty
    /// allows any host whose address is public) and `headers` sent to every API's own origin.
    /// An entry with a port allows that port only; a bare host allows every port of it. A host
    /// named in `allowed` may resolve to a loopback or private address.
    pub fn new(allowed: Vec<String>, headers: Vec<(String, String)>) -> Net {
        let allowed: Vec<String> = allowed
            .into_iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let leave: HashSet<String> = allowed.iter().map(|h| split_host_port(h).0).collect();
        Net {
            allowed,
            headers,
            listed: Arc::new(RwLock::new(leave.clone())),
            leave: Arc::new(RwLock::new(leave)),
            client: OnceLock::new(),
            send_client: OnceLock::new(),
        }
    }

    /// The hosts in force (empty: any public host).
    pub fn allowed_hosts(&self) -> &[String] {
        &self.allowed
    }

    /// The HTTP client of this sandbox, for handlers that call APIs themselves: its resolver
    /// refuses special addresses without leave (from `allowed_hosts`, or a `{PREFIX}_BASE_URL`
    /// a generated API was called with) and it never follows redirects (check each URL you
    /// send to with [`Net::check_url`]).
    pub fn client(&self) -> Result<&reqwest::Client, ToolError> {
        Net::client_in(&self.client, &self.leave)
    }

    /// [`Net::send`]'s client: its resolver gives leave to the names in `allowed_hosts` only.
    fn send_client(&self) -> Result<&reqwest::Client, ToolError> {
        Net::client_in(&self.send_client, &self.listed)
    }

    fn client_in<'c>(
        cell: &'c OnceLock<Result<reqwest::Client, String>>,
        leave: &Leave,
    ) -> Result<&'c reqwest::Client, ToolError> {
        cell.get_or_init(|| {
            // ring, not aws-lc: nothing to build beyond Rust and a C compiler.
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .user_agent("aifirst/0.1")
                .redirect(reqwest::redirect::Policy::none())
                // A proxy would resolve names itself, past the address check.
                .no_proxy()
                .dns_resolver(Arc::new(GuardedResolver {
                    leave: leave.clone(),
                }))
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| ToolError::Transport { message: e.clone() })
    }

    fn host_listed(&self, url: &reqwest::Url) -> bool {
        let host = bare_host(url);
        let with_port = url.port_or_known_default().map(|p| {
            if host.contains(':') {
                format!("[{host}]:{p}")
            } else {
                format!("{host}:{p}")
            }
        });
        self.allowed.iter().any(|a| {
            let a = a.trim_end_matches('.');
            a == host || Some(a) == with_port.as_deref() || a == format!("[{host}]")
        })
    }

    fn has_leave(&self, host: &str) -> bool {
        self.leave
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(host)
    }

    fn grant_leave(&self, url: &reqwest::Url) {
        let host = bare_host(url);
        if !self.has_leave(&host) {
            self.leave
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(host);
        }
    }

    /// Whether `url` may be reached by [`Net::client`] (as [`Net::call`] reaches it): an http(s)
    /// URL, its host in `allowed_hosts` when that is set, and, when the host is an address
    /// literal, not a special address without leave. (A name is judged by what it resolves to,
    /// when the client connects.)
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), ToolError> {
        self.check(url, Sender::Api)
    }

    /// [`Net::check_url`] for `sender`: for [`Sender::Tool`], a special address literal needs
    /// its host (and port, when the entry names one) in `allowed_hosts`; a base URL's leave
    /// does not count.
    fn check(&self, url: &reqwest::Url, sender: Sender) -> Result<(), ToolError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ToolError::NotAllowed {
                message: format!("`{}` is not an http(s) URL", url.scheme()),
            });
        }
        let host = bare_host(url);
        if host.is_empty() {
            return Err(ToolError::NotAllowed {
                message: "a URL without a host".into(),
            });
        }
        if !self.allowed.is_empty() && !self.host_listed(url) {
            return Err(ToolError::NotAllowed {
                message: format!(
                    "host `{}` is not in allowed_hosts ({})",
                    url.host_str().unwrap_or(""),
                    self.allowed.join(", ")
                ),
            });
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            if let Some(kind) = special_address(ip) {
                let leave = match sender {
                    Sender::Api => self.has_leave(&host),
                    Sender::Tool => self.host_listed(url),
                };
                if !leave {
                    return Err(ToolError::NotAllowed {
                        message: format!(
                            "{ip} is {} {kind} address; name it in allowed_hosts to allow it",
                            article(kind)
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Sends one operation of `api` (see the module documentation for what is checked).
    pub async fn call(
        &self,
        api: &Api,
        op: &Operation,
        args: &Value,
        ctx: Option<&crate::Ctx>,
    ) -> Result<Value, ToolError> {
        let empty = Map::new();
        let args_map = args.as_object().unwrap_or(&empty);
        let (base, configured) = match env(api, "BASE_URL") {
            Some(b) => (b, true),
            None => (op.server.unwrap_or(api.base_url).to_string(), false),
        };
        let base_var = format!("{}_BASE_URL", api.env_prefix);
        let base_url = check_base(&base, &base_var, configured)?;
        let path = expand_path(op, args_map)?;
        let url_text = format!("{}{}", base.trim_end_matches('/'), path);
        let mut url = reqwest::Url::parse(&url_text).map_err(|e| ToolError::InvalidArguments {
            message: format!("the arguments make a bad URL: {e}"),
        })?;
        if configured {
            // The operator named this host: it may be a loopback or private address.
            self.grant_leave(&base_url);
        }
        let timeout = env(api, "TIMEOUT_SECS")
            .and_then(|s| s.parse().ok())
            .unwrap_or(30u64);
        let method = reqwest::Method::from_bytes(op.method.as_bytes()).map_err(|e| {
            ToolError::InvalidArguments {
                message: e.to_string(),
            }
        })?;

        let mut query: Vec<(String, String)> = Vec::new();
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut cookies: Vec<String> = Vec::new();
        for p in op.params {
            let Some(v) = args_map.get(p.property).filter(|v| !v.is_null()) else {
                continue;
            };
            match p.location {
                In::Path => {}
                In::Query => match v {
                    Value::Array(items) => {
                        query.extend(items.iter().map(|i| (p.name.to_string(), text(i))))
                    }
                    other => query.push((p.name.to_string(), text(other))),
                },
                In::Header => headers.push((p.name.to_string(), text(v))),
                In::Cookie => {
                    let value = text(v);
                    if value
                        .chars()
                        .any(|c| c == ';' || c == ',' || c.is_whitespace() || c.is_control())
                    {
                        return Err(ToolError::InvalidArguments {
                            message: format!(
                                "cookie parameter `{}` may not contain `;`, `,`, spaces or control \
                                 characters (it would set other cookies)",
                                p.property
                            ),
                        });
                    }
                    cookies.push(format!("{}={value}", p.name));
                }
            }
        }
        // Credentials: only what the description declares, only to the API's origin.
        let mut auth_headers: Vec<(String, String)> = Vec::new();
        let mut basic: Option<(String, Option<String>)> = None;
        let mut bearer: Option<String> = None;
        for a in api.auth {
            match a {
                Auth::Bearer => bearer = bearer.or_else(|| env(api, "TOKEN")),
                Auth::Basic => {
                    if let Some(u) = env(api, "USERNAME") {
                        basic = Some((u, env(api, "PASSWORD")));
                    }
                }
                Auth::ApiKey { name, location } => {
                    if let Some(k) = env(api, "API_KEY") {
                        match location {
                            In::Header => auth_headers.push((name.to_string(), k)),
                            In::Query => query.push((name.to_string(), k)),
                            In::Cookie => cookies.push(format!("{name}={k}")),
                            In::Path => {}
                        }
                    }
                }
            }
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter());
        }
        let body = build_body(op, args_map)?;
        // Configured headers, API keys and cookies go to the API's own origin only; so do
        // header arguments named like a credential (`Authorization`, `X-Api-Key`, declared as a
        // plain parameter): `send` keeps those for the origin.
        let mut origin_headers: Vec<(String, String)> = self
            .headers
            .iter()
            .chain(auth_headers.iter())
            .cloned()
            .collect();
        if !cookies.is_empty() {
            origin_headers.push((
                reqwest::header::COOKIE.as_str().to_string(),
                cookies.join("; "),
            ));
        }
        let mut credentials: Vec<Credentials> = Vec::new();
        if let Some(t) = bearer {
            credentials.push(Credentials::Bearer(t));
        }
        if let Some((username, password)) = basic {
            credentials.push(Credentials::Basic { username, password });
        }
        let limit = env(api, "MAX_RESPONSE_BYTES")
            .and_then(|s| s.parse().ok())
            .unwrap_or(MAX_RESPONSE_BYTES);
        let out = Outgoing {
            method,
            url,
            headers: &headers,
            origin_headers: &origin_headers,
            credentials: &credentials,
            body: body
                .as_ref()
                .map(|(media, bytes)| (*media, bytes.as_slice())),
            timeout: Duration::from_secs(timeout),
            max_bytes: limit,
            truncate: false,
            redirects: Redirects::OriginUnlessListed,
        };
        let received = self
            .exchange(&out, "the API", Sender::Api)
            .await
            .map_err(|f| match f {
                Failure::Tool(e) => e,
                Failure::Transport(e, at) => {
                    transport_error(e, &at, timeout, api, configured, &base)
                }
                Failure::Deadline(at) => {
                    timed_out(Duration::from_secs(timeout), &at, &slow_hint(api))
                }
                Failure::TooLarge(limit) => ToolError::Transport {
                    message: format!(
                        "the response is larger than {limit} bytes (raise {}_MAX_RESPONSE_BYTES)",
                        api.env_prefix
                    ),
                },
            })?;

        let status = received.status;
        if let (Some(ctx), Some(loc)) = (ctx, received.header(reqwest::header::LOCATION.as_str())) {
            ctx.set_response_location(loc);
        }
        let html = received
            .header(reqwest::header::CONTENT_TYPE.as_str())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
        let body = String::from_utf8_lossy(&received.body).into_owned();
        if !received.is_success() {
            let excerpt: String = body.chars().take(500).collect();
            return Err(ToolError::Http {
                status,
                message: excerpt,
            });
        }
        if html {
            return Err(ToolError::Http {
                status,
                message: format!(
                    "the API answered with an HTML page where data was expected (a login page? \
                     check the credentials and {base_var})"
                ),
            });
        }
        if body.trim().is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_str(&body).unwrap_or(Value::String(body)))
    }

    /// Sends one request through the sandbox and reads its response, following redirects hop by
    /// hop (at most 10):
    /// - each hop is checked like [`Net::check_url`], except that a loopback, private or other
    ///   special address is reached only when `allowed_hosts` names the host (with the port, or
    ///   bare for every port): never through the leave a `{PREFIX}_BASE_URL` gave a generated
    ///   API. With `allowed_hosts` empty, only public addresses are reached. (The resolver of
    ///   this client judges a name on the address connected to, the same way.)
    /// - a redirect from https to plain http is refused; where else a redirect may lead is
    ///   [`Outgoing::redirects`];
    /// - a 303, or a 301/302 after a POST, becomes a GET without the body; 307 and 308 keep the
    ///   method and body;
    /// - [`Outgoing::headers`], [`Outgoing::origin_headers`] and [`Outgoing::credentials`] go to
    ///   the origin only (or its upgrade from http to https on the default ports), whatever
    ///   the headers' names: a hop to another origin gets none of them;
    /// - [`Outgoing::timeout`] is one deadline for the whole exchange, every hop included;
    /// - the body is read up to [`Outgoing::max_bytes`]: past it, an error (nothing more is
    ///   read), or with [`Outgoing::truncate`] the body cut there.
    ///
    /// Any final status is returned, 4xx and 5xx too, and a 3xx without a `Location` the
    /// client can follow. Configured headers ([`Net::new`]'s `headers`, airun.toml
    /// `[http.headers]`) are not added: they belong to generated APIs ([`Net::call`]).
    pub async fn send(&self, req: Outgoing<'_>) -> Result<Received, ToolError> {
        let timeout = req.timeout;
        self.exchange(&req, "the server", Sender::Tool)
            .await
            .map_err(|f| match f {
                Failure::Tool(e) => e,
                Failure::Transport(e, at) => describe_transport(e, &at, timeout, "", ""),
                Failure::Deadline(at) => timed_out(timeout, &at, ""),
                Failure::TooLarge(limit) => ToolError::Transport {
                    message: format!(
                        "the response is larger than {}, the most read for this request; \
                         nothing past that was read",
                        size_text(limit)
                    ),
                },
            })
    }

    /// The one redirect-following exchange behind [`Net::send`] and [`Net::call`]; `who` names
    /// the other side in refusals ("the API", "the server"); `sender` says whose rules hold
    /// for leave and for the caller's headers.
    async fn exchange(
        &self,
        req: &Outgoing<'_>,
        who: &str,
        sender: Sender,
    ) -> Result<Received, Failure> {
        let started = Instant::now();
        let client = match sender {
            Sender::Api => self.client()?,
            Sender::Tool => self.send_client()?,
        };
        let origin = req.url.clone();
        let mut url = req.url.clone();
        let mut method = req.method.clone();
        let mut with_body = true;
        let mut hops = 0;
        let resp = loop {
            self.check(&url, sender)?;
            // One deadline for the whole exchange: each hop gets what is left of it.
            let left = req.timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(Failure::Deadline(url));
            }
            let home = is_home(&origin, &url);
            let mut rb = client.request(method.clone(), url.clone()).timeout(left);
            for (k, v) in req.headers {
                let follows = match sender {
                    // The caller's headers, whatever their names, go to the origin only.
                    Sender::Tool => home,
                    // An operation's header parameter follows, unless named like a credential.
                    Sender::Api => home || !aifirst_capability::secret::is_secret_key(k),
                };
                if follows {
                    rb = rb.header(k.as_str(), v.as_str());
                }
            }
            if home {
                for (k, v) in req.origin_headers {
                    rb = rb.header(k.as_str(), v.as_str());
                }
                for c in req.credentials {
                    rb = match c {
                        Credentials::Bearer(t) => rb.bearer_auth(t),
                        Credentials::Basic { username, password } => {
                            rb.basic_auth(username, password.as_ref())
                        }
                    };
                }
            }
            if with_body {
                if let Some((media, bytes)) = req.body {
                    rb = rb
                        .header(reqwest::header::CONTENT_TYPE, media)
                        .body(bytes.to_vec());
                }
            }
            let resp = rb
                .send()
                .await
                .map_err(|e| Failure::Transport(e, url.clone()))?;
            let status = resp.status();
            let next = match status.as_u16() {
                301 | 302 | 303 | 307 | 308 => resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok()),
                _ => None,
            };
            let Some(next) = next else {
                break resp;
            };
            hops += 1;
            if hops > MAX_HOPS {
                return Err(Failure::Tool(ToolError::Transport {
                    message: format!("more than {MAX_HOPS} redirects"),
                }));
            }
            if url.scheme() == "https" && next.scheme() != "https" {
                return Err(Failure::Tool(ToolError::NotAllowed {
                    message: format!(
                        "{who} redirected from https to plain `{}://{}`; not followed",
                        next.scheme(),
                        next.host_str().unwrap_or("")
                    ),
                }));
            }
            if req.redirects == Redirects::OriginUnlessListed
                && self.allowed.is_empty()
                && !is_home(&origin, &next)
            {
                return Err(Failure::Tool(ToolError::NotAllowed {
                    message: format!(
                        "{who} redirected to another host, `{}`; it is followed only when \
                         named in allowed_hosts",
                        next.host_str().unwrap_or("")
                    ),
                }));
            }
            if status.as_u16() == 303
                || (matches!(status.as_u16(), 301 | 302) && method == reqwest::Method::POST)
            {
                if method != reqwest::Method::HEAD {
                    method = reqwest::Method::GET;
                }
                with_body = false;
            }
            url = next;
        };

        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let mut resp = resp;
        let mut body: Vec<u8> = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| Failure::Transport(e, url.clone()))?
        {
            if body.len() + chunk.len() > req.max_bytes {
                if !req.truncate {
                    return Err(Failure::TooLarge(req.max_bytes));
                }
                let room = req.max_bytes.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Received {
            status,
            headers,
            url,
            body,
            truncated,
        })
    }
}

/// The base URL, checked: absolute http(s), no query string or fragment.
fn check_base(base: &str, var: &str, configured: bool) -> Result<reqwest::Url, ToolError> {
    // Never echo credentials a malformed URL might carry.
    let shown = match (base.find("://"), base.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &base[..s], &base[at + 1..]),
        _ => base.to_string(),
    };
    let whence = if configured {
        format!("{var} (`{shown}`)")
    } else {
        format!("the description's server `{shown}`")
    };
    let url = reqwest::Url::parse(base).map_err(|_| ToolError::Transport {
        message: if base.is_empty() || !base.contains("://") {
            format!(
                "no base URL: {} is not an absolute URL; set {var} to the API's address \
                 (for example http://localhost:8888)",
                if base.is_empty() {
                    "the description names no server".to_string()
                } else {
                    whence.clone()
                }
            )
        } else {
            format!("{whence} is not a valid URL; set {var} to the API's address")
        },
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ToolError::Transport {
            message: format!("{whence} is not an http(s) URL; set {var}"),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ToolError::Transport {
            message: format!(
                "{var} must not carry credentials (`user:password@`); set {} and {} instead",
                var.replace("_BASE_URL", "_USERNAME"),
                var.replace("_BASE_URL", "_PASSWORD")
            ),
        });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ToolError::Transport {
            message: format!(
                "{var} must not carry a query string or fragment (credentials in a URL end up \
                 in logs); put a token in `[http.headers]` of airun.toml or {} instead",
                var.replace("_BASE_URL", "_API_KEY")
            ),
        });
    }
    Ok(url)
}

/// The operation's path with its parameters filled in, each value checked.
fn expand_path(op: &Operation, args: &Map<String, Value>) -> Result<String, ToolError> {
    let mut path = op.path.to_string();
    for p in op.params.iter().filter(|p| p.location == In::Path) {
        let v = args
            .get(p.property)
            .ok_or_else(|| ToolError::InvalidArguments {
                message: format!("missing path parameter `{}`", p.property),
            })?;
        let value = text(v);
        let reserved = format!("{{+{}}}", p.name);
        let bad = |why: &str| ToolError::InvalidArguments {
            message: format!(
                "path parameter `{}` {why}: it would change which operation is called",
                p.property
            ),
        };
        // `{+name}` lets `/` separate segments; `{name}` is one segment. Each segment is checked
        // the same way.
        let (template, segments): (String, Vec<&str>) = if path.contains(&reserved) {
            (reserved, value.split('/').collect())
        } else {
            if value.contains('/') || value.contains('\\') {
                return Err(bad("contains `/`"));
            }
            (format!("{{{}}}", p.name), vec![value.as_str()])
        };
        let mut encoded = Vec::with_capacity(segments.len());
        for seg in segments {
            if seg.is_empty() {
                return Err(bad("is empty or has an empty segment"));
            }
            if seg == "." || seg == ".." {
                return Err(bad(&format!("is or has the segment `{seg}`")));
            }
            encoded.push(encode_segment(seg));
        }
        path = path.replace(&template, &encoded.join("/"));
    }
    Ok(path)
}

/// The request body, encoded once (it is sent again on a 307/308 redirect).
fn build_body(
    op: &Operation,
    args: &Map<String, Value>,
) -> Result<Option<(&'static str, Vec<u8>)>, ToolError> {
    let (media, value) = match op.body {
        Body::None => return Ok(None),
        Body::Fields { media_type, fields } => {
            let body: Map<String, Value> = fields
                .iter()
                .filter_map(|(prop, field)| Some((field.to_string(), args.get(*prop)?.clone())))
                .collect();
            (media_type, Value::Object(body))
        }
        Body::Wrapped {
            media_type,
            property,
        } => match args.get(property) {
            Some(v) => (media_type, v.clone()),
            None => return Ok(None),
        },
    };
    if media.contains("form") {
        let pairs: Vec<(String, String)> = match &value {
            Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
            other => {
                return Err(ToolError::InvalidArguments {
                    message: format!("a form body must be an object, not {other}"),
                })
            }
        };
        let mut ser = reqwest::Url::parse("http://x/").map_err(ToolError::handler)?;
        ser.query_pairs_mut().extend_pairs(pairs.iter());
        let encoded = ser.query().unwrap_or("").as_bytes().to_vec();
        return Ok(Some(("application/x-www-form-urlencoded", encoded)));
    }
    let bytes = serde_json::to_vec(&value).map_err(ToolError::handler)?;
    let media = if media.contains("json") {
        media
    } else {
        "application/json"
    };
    Ok(Some((media, bytes)))
}

/// A transport failure in plain words, without the URL (it may carry a key in its query).
fn transport_error(
    e: reqwest::Error,
    url: &reqwest::Url,
    timeout: u64,
    api: &Api,
    configured: bool,
    base: &str,
) -> ToolError {
    let hint = if configured {
        format!("{}_BASE_URL is `{base}`", api.env_prefix)
    } else {
        format!("set {}_BASE_URL to the API's address", api.env_prefix)
    };
    describe_transport(
        e,
        url,
        Duration::from_secs(timeout),
        &slow_hint(api),
        &format!(" ({hint})"),
    )
}

/// What to raise when an API is slow, with its leading space.
fn slow_hint(api: &Api) -> String {
    format!(
        " (raise {}_TIMEOUT_SECS if the API is slow)",
        api.env_prefix
    )
}

/// `host:port` of `url` (for messages: never the path or query, which may carry a key).
fn host_text(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    }
}

/// The exchange's deadline passed while waiting for `url`; `slow` as for
/// [`describe_transport`].
fn timed_out(timeout: Duration, url: &reqwest::Url, slow: &str) -> ToolError {
    let total = if timeout.subsec_nanos() == 0 {
        format!("{} s", timeout.as_secs())
    } else {
        format!("{:.1} s", timeout.as_secs_f64())
    };
    ToolError::Transport {
        message: format!(
            "timed out after {total} (the limit for the whole exchange, redirects included) \
             waiting for {}{slow}",
            host_text(url)
        ),
    }
}

/// A transport failure in plain words, without the URL; `slow` follows a timeout, `hint` a
/// failed connection (each with its leading space, or empty). A refusal by the resolver is
/// [`ToolError::NotAllowed`].
fn describe_transport(
    e: reqwest::Error,
    url: &reqwest::Url,
    timeout: Duration,
    slow: &str,
    hint: &str,
) -> ToolError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    let mut io_kind = None;
    let mut innermost = String::new();
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refused>() {
            return ToolError::NotAllowed {
                message: r.0.clone(),
            };
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        innermost = s.to_string();
        source = s.source();
    }
    if e.is_timeout() {
        return timed_out(timeout, url, slow);
    }
    let host = host_text(url);
    let message = if io_kind == Some(std::io::ErrorKind::ConnectionRefused) {
        format!("connection refused by {host}: is the server running?{hint}")
    } else if e.is_connect() {
        format!("cannot connect to {host}: {innermost}{hint}")
    } else if innermost.is_empty() {
        e.without_url().to_string()
    } else {
        format!("{}: {innermost}", e.without_url())
    };
    ToolError::Transport { message }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Percent-encodes a path segment (RFC 3986 unreserved characters pass).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sends one request through the sandbox of `ctx` and returns the response body as JSON (text
/// bodies become a string, empty bodies `null`). Statuses outside 2xx are [`ToolError::Http`]
/// with an excerpt of the body. Records the response's `Location` header in `ctx` for undo
/// plans that name `$location.id`. [`crate::Handler::Http`] (what forge generates) calls this.
///
/// The future is boxed, and this function is not `async`: it is also what a hand-written
/// handler awaits, and an inline future type would be compiled into every one of them.
#[inline(never)]
pub fn call_in<'a>(
    ctx: &'a crate::Ctx,
    api: &'a Api,
    op: &'a Operation,
    args: &'a Value,
) -> crate::def::BoxFuture<'a, Result<Value, ToolError>> {
    Box::pin(ctx.http().call(api, op, args, Some(ctx)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
        assert_eq!(encode_segment("heads/main"), "heads%2Fmain");
        assert_eq!(encode_segment("x-y_z.~"), "x-y_z.~");
    }

    #[test]
    fn special_addresses_are_classified() {
        let kind = |s: &str| special_address(s.parse().unwrap());
        for (ip, want) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("::1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("fd12:3456::1", "private"),
            ("169.254.1.1", "link-local"),
            ("fe80::1", "link-local"),
            ("169.254.169.254", "cloud metadata"),
            ("fd00:ec2::254", "cloud metadata"),
            ("100.100.100.200", "cloud metadata"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("100.64.0.1", "shared (CGNAT)"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "cloud metadata"),
            ("64:ff9b::a00:1", "private"),
        ] {
            assert_eq!(kind(ip), Some(want), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "140.82.112.3",
        ] {
            assert_eq!(kind(ip), None, "{ip}");
        }
    }

    #[test]
    fn allowed_hosts_match_host_or_host_and_port() {
        let net = Net::new(
            vec![
                "api.example.com".into(),
                "127.0.0.1:8080".into(),
                "[::1]:9000".into(),
            ],
            vec![],
        );
        let ok = |u: &str| net.check_url(&reqwest::Url::parse(u).unwrap()).is_ok();
        assert!(ok("https://api.example.com/x"));
        assert!(ok("https://API.example.com./x"));
        assert!(ok("http://127.0.0.1:8080/"));
        assert!(ok("http://[::1]:9000/"));
        assert!(!ok("http://127.0.0.1:8081/"));
        assert!(!ok("http://127.0.0.2:8080/"));
        assert!(!ok("https://evil.example/"));
        assert!(!ok("file:///etc/passwd"));
        // No list: public hosts pass, special address literals need leave.
        let open = Net::default();
        let ok = |u: &str| open.check_url(&reqwest::Url::parse(u).unwrap()).is_ok();
        assert!(ok("https://api.example.com/"));
        assert!(!ok("http://169.254.169.254/latest/meta-data"));
        assert!(!ok("http://[::ffff:127.0.0.1]:80/"));
        assert!(!ok("http://10.0.0.1/"));
    }

    #[test]
    fn a_base_url_grant_gives_send_no_leave() {
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        // No list: a generated API's base URL gives its host leave for call, not for send.
        let open = Net::default();
        open.grant_leave(&url("http://127.0.0.1:3000"));
        assert!(open.check_url(&url("http://127.0.0.1:3000/")).is_ok());
        for u in ["http://127.0.0.1:3000/", "http://127.0.0.1:6379/"] {
            let e = open.check(&url(u), Sender::Tool).unwrap_err();
            assert!(matches!(e, ToolError::NotAllowed { .. }), "{u}: {e}");
        }
        assert!(!open.listed.read().unwrap().contains("127.0.0.1"));
        // A list: send reaches the listed host and port only; a bare host, any port of it.
        let listed = Net::new(vec!["127.0.0.1:3000".into(), "localhost".into()], vec![]);
        listed.grant_leave(&url("http://10.0.0.1:80"));
        assert!(listed
            .check(&url("http://127.0.0.1:3000/"), Sender::Tool)
            .is_ok());
        assert!(listed
            .check(&url("http://127.0.0.1:6379/"), Sender::Tool)
            .is_err());
        assert!(listed
            .check(&url("http://10.0.0.1/"), Sender::Tool)
            .is_err());
        assert!(listed
            .check(&url("http://localhost:6379/"), Sender::Tool)
            .is_ok());
    }

    #[test]
    fn path_values_cannot_change_the_operation() {
        static PARAMS: [Param; 1] = [Param {
            property: "id",
            name: "id",
            location: In::Path,
        }];
        let op = |path: &'static str| Operation {
            method: "DELETE",
            path,
            params: &PARAMS,
            body: Body::None,
            server: None,
        };
        let run = |path: &'static str, v: Value| {
            let mut m = Map::new();
            m.insert("id".into(), v);
            expand_path(&op(path), &m)
        };
        assert_eq!(run("/pets/{id}", "a b".into()).unwrap(), "/pets/a%20b");
        assert_eq!(run("/pets/{id}", 7.into()).unwrap(), "/pets/7");
        assert_eq!(run("/pets/{id}", "v1.2".into()).unwrap(), "/pets/v1.2");
        for bad in ["..", ".", "", "a/b", "../admin", "a\\b"] {
            let e = run("/pets/{id}", bad.into()).unwrap_err();
            assert!(
                matches!(e, ToolError::InvalidArguments { .. }),
                "{bad}: {e}"
            );
        }
        assert_eq!(
            run("/files/{+id}", "src/main.rs".into()).unwrap(),
            "/files/src/main.rs"
        );
        for bad in ["src/../x", "./x", "a//b", "", "/abs"] {
            assert!(run("/files/{+id}", bad.into()).is_err(), "{bad}");
        }
    }

    #[test]
    fn base_urls_are_checked() {
        assert!(check_base("http://localhost:8888", "X_BASE_URL", true).is_ok());
        let e = check_base("http://h/?token=abc", "X_BASE_URL", true).unwrap_err();
        assert!(e.to_string().contains("query string"), "{e}");
        let e = check_base("http://u:pw@h/", "X_BASE_URL", true).unwrap_err();
        assert!(e.to_string().contains("X_USERNAME"), "{e}");
        assert!(!e.to_string().contains("pw"), "{e}");
        let e = check_base("", "X_BASE_URL", false).unwrap_err();
        assert!(e.to_string().contains("set X_BASE_URL"), "{e}");
        let e = check_base("/api", "X_BASE_URL", false).unwrap_err();
        assert!(e.to_string().contains("set X_BASE_URL"), "{e}");
    }
}
