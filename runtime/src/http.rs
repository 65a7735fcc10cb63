//! The HTTP binding generated capabilities call: one request per call, described by static data.
//!
//! Configuration comes from the environment, named after the API's `env_prefix`:
//! `{PREFIX}_BASE_URL` overrides the spec's server (for every operation, also those the spec sends
//! to a server of their own, such as an upload host); credentials are `{PREFIX}_TOKEN` (bearer),
//! `{PREFIX}_USERNAME` / `{PREFIX}_PASSWORD` (basic) and `{PREFIX}_API_KEY` (API key, sent where
//! the scheme says); `{PREFIX}_TIMEOUT_SECS` (default 30).

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::ToolError;

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

pub(crate) fn client() -> Result<&'static reqwest::Client, ToolError> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            // ring, not aws-lc: nothing to build beyond Rust and a C compiler.
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .user_agent("aifirst/0.1")
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| ToolError::Transport { message: e.clone() })
}

static ALLOWED_HOSTS: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// Restricts every later request to these hosts (`example.com` or `example.com:8080`); an empty
/// list allows any host. `airun` sets this from `allowed_hosts` in `airun.toml`.
pub fn set_allowed_hosts(hosts: Vec<String>) {
    *ALLOWED_HOSTS.write().unwrap_or_else(|p| p.into_inner()) = hosts;
}

/// Whether `url` may be reached under [`set_allowed_hosts`].
fn host_allowed(url: &reqwest::Url) -> bool {
    let allowed = ALLOWED_HOSTS.read().unwrap_or_else(|p| p.into_inner());
    if allowed.is_empty() {
        return true;
    }
    let Some(host) = url.host_str() else {
        return false;
    };
    let with_port = url.port_or_known_default().map(|p| format!("{host}:{p}"));
    allowed
        .iter()
        .any(|a| a.eq_ignore_ascii_case(host) || Some(a.to_ascii_lowercase()) == with_port)
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

/// Sends one request and returns the response body as JSON (text bodies become a string, empty
/// bodies `null`). Statuses outside 2xx are [`ToolError::Http`] with an excerpt of the body.
pub async fn call(api: &Api, op: &Operation, args: &Value) -> Result<Value, ToolError> {
    send(api, op, args, None).await
}

/// [`call`], recording the response's `Location` header in `ctx` for undo plans that name
/// `$location.id` (generated handlers use this).
pub async fn call_in(
    ctx: &crate::Ctx,
    api: &Api,
    op: &Operation,
    args: &Value,
) -> Result<Value, ToolError> {
    send(api, op, args, Some(ctx)).await
}

async fn send(
    api: &Api,
    op: &Operation,
    args: &Value,
    ctx: Option<&crate::Ctx>,
) -> Result<Value, ToolError> {
    let empty = Map::new();
    let args_map = args.as_object().unwrap_or(&empty);
    let base =
        env(api, "BASE_URL").unwrap_or_else(|| op.server.unwrap_or(api.base_url).to_string());
    let mut path = op.path.to_string();
    for p in op.params.iter().filter(|p| p.location == In::Path) {
        let v = args_map
            .get(p.property)
            .ok_or_else(|| ToolError::InvalidArguments {
                message: format!("missing path parameter `{}`", p.property),
            })?;
        path = path.replace(&format!("{{{}}}", p.name), &encode_segment(&text(v)));
    }
    let url = format!("{}{}", base.trim_end_matches('/'), path);
    let parsed = reqwest::Url::parse(&url).map_err(|e| ToolError::Transport {
        message: format!("bad URL `{url}`: {e}"),
    })?;
    if !host_allowed(&parsed) {
        return Err(ToolError::NotAllowed {
            message: format!(
                "host `{}` is not in allowed_hosts",
                parsed.host_str().unwrap_or("")
            ),
        });
    }
    let method = reqwest::Method::from_bytes(op.method.as_bytes()).map_err(|e| {
        ToolError::InvalidArguments {
            message: e.to_string(),
        }
    })?;
    let timeout = env(api, "TIMEOUT_SECS")
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let mut req = client()?
        .request(method, parsed)
        .timeout(Duration::from_secs(timeout));
    let mut query: Vec<(String, String)> = Vec::new();
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
            In::Header => req = req.header(p.name, text(v)),
            In::Cookie => cookies.push(format!("{}={}", p.name, text(v))),
        }
    }
    for a in api.auth {
        match a {
            Auth::Bearer => {
                if let Some(t) = env(api, "TOKEN") {
                    req = req.bearer_auth(t);
                }
            }
            Auth::Basic => {
                if let Some(u) = env(api, "USERNAME") {
                    req = req.basic_auth(u, env(api, "PASSWORD"));
                }
            }
            Auth::ApiKey { name, location } => {
                if let Some(k) = env(api, "API_KEY") {
                    match location {
                        In::Header => req = req.header(*name, k),
                        In::Query => query.push((name.to_string(), k)),
                        In::Cookie => cookies.push(format!("{name}={k}")),
                        In::Path => {}
                    }
                }
            }
        }
    }
    if !query.is_empty() {
        req = req.query(&query);
    }
    if !cookies.is_empty() {
        req = req.header(reqwest::header::COOKIE, cookies.join("; "));
    }
    match op.body {
        Body::None => {}
        Body::Fields { media_type, fields } => {
            let body: Map<String, Value> = fields
                .iter()
                .filter_map(|(prop, field)| Some((field.to_string(), args_map.get(*prop)?.clone())))
                .collect();
            req = if media_type.contains("form") {
                req.form(&body)
            } else {
                req.json(&body)
            };
        }
        Body::Wrapped {
            media_type,
            property,
        } => {
            if let Some(v) = args_map.get(property) {
                req = if media_type.contains("form") {
                    req.form(v)
                } else {
                    req.json(v)
                };
            }
        }
    }
    let resp = req.send().await.map_err(|e| ToolError::Transport {
        message: e.to_string(),
    })?;
    let status = resp.status();
    if let (Some(ctx), Some(loc)) = (ctx, resp.headers().get(reqwest::header::LOCATION)) {
        if let Ok(loc) = loc.to_str() {
            ctx.set_response_location(loc);
        }
    }
    let body = resp.text().await.map_err(|e| ToolError::Transport {
        message: e.to_string(),
    })?;
    if !status.is_success() {
        let excerpt: String = body.chars().take(500).collect();
        return Err(ToolError::Http {
            status: status.as_u16(),
            message: excerpt,
        });
    }
    if body.trim().is_empty() {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_str(&body).unwrap_or(Value::String(body)))
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
}
