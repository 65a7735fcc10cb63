//! `airun.toml`: policy, state directory, session, meta tools, redaction, allowed hosts and roots,
//! the network tools' response limits, API headers and the HTTP server's limits.
//!
//! Precedence, strongest first: command-line flags, `AIFIRST_STATE_DIR` / `AIFIRST_SESSION`,
//! the configuration file, the defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aifirst::{NetLimits, Policy, Redactor};
use serde::Deserialize;

/// The name looked for in the working directory when `--config` is not given.
pub const DEFAULT_FILE: &str = "airun.toml";

/// The most `max_fetch_bytes`, `max_response_bytes` and `max_download_bytes` may be: 4 GiB.
pub const MAX_NET_LIMIT_BYTES: u64 = 4 << 30;

/// The parsed configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the undo journal and the audit log live (default `.aifirst`).
    pub state_dir: Option<PathBuf>,
    /// The session calls are journaled under (default `default`).
    pub session: Option<String>,
    /// Which calls may run.
    #[serde(default)]
    pub policy: Policy,
    #[serde(default)]
    pub meta_tools: MetaTools,
    #[serde(default)]
    pub redaction: Redaction,
    /// Hosts HTTP capabilities may reach (`api.example.com`, `127.0.0.1:8080`); empty means any
    /// host with a public address. A host named here may also be loopback or private.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Directories file capabilities may touch (relative to this file); empty means no file access.
    #[serde(default)]
    pub allowed_roots: Vec<PathBuf>,
    /// Programs `run_command` may start: bare names (found on `PATH`) or absolute paths. Empty
    /// (the default) means none; no shell runs unless `sh` (or another) is listed here.
    #[serde(default)]
    pub allowed_commands: Vec<String>,
    /// The most file content one call's snapshot may keep (bytes, default 256 MiB). A call
    /// past it cannot be undone: policy decides whether it runs (by default it asks to confirm).
    pub max_snapshot_bytes: Option<u64>,
    /// The most of a response `fetch` reads (bytes, default 5 MiB); a longer one is an error.
    pub max_fetch_bytes: Option<u64>,
    /// The most of a response body `http_get` and `http_request` read (bytes, default 16 MiB);
    /// a longer body is cut there and marked `truncated`.
    pub max_response_bytes: Option<u64>,
    /// The largest file `download_file` writes (bytes, default 256 MiB); a longer response is an
    /// error and nothing is written. Each download in flight holds its response in memory.
    pub max_download_bytes: Option<u64>,
    #[serde(default)]
    pub audit: Audit,
    #[serde(default)]
    pub mcp: Mcp,
    #[serde(default)]
    pub http: Http,
    #[serde(default)]
    pub python: Python,
}

/// Python capabilities (crates `forge import` made from Python modules).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Python {
    /// The interpreter that runs the modules (relative to this file when it has a `/`; a
    /// virtual environment's `bin/python` works). Default: `AIFIRST_PYTHON`, else `python3`.
    pub interpreter: Option<PathBuf>,
    /// Seconds one call may take (default 60, or `AIFIRST_PYTHON_TIMEOUT`); past it the worker
    /// is stopped and the next call starts a new one.
    pub timeout_secs: Option<f64>,
}

/// Requests to APIs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// Headers sent with every request to an API's own origin (never to a host a redirect leads
    /// to), for APIs whose description declares no or the wrong security. Values expand
    /// `${VAR}` from the environment, so secrets stay out of the file; they are redacted
    /// everywhere.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// The audit log.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// A file (outside the state directory, relative to this file) holding the key of a keyed
    /// chain: each record's hash is then an HMAC, which nobody without the key can recompute.
    pub key_file: Option<PathBuf>,
}

/// The MCP server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mcp {
    /// One undo session shared by every HTTP client (by default each client gets its own, so one
    /// client's `undo` never reverts another's calls).
    pub shared_session: Option<String>,
    /// Origins a browser-based client may call from (`https://app.example.com`); requests with
    /// any other `Origin` header are refused. Requests without one (CLI clients) pass.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Host names (besides loopback) the server answers to when bound to another address.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// At most this many MCP sessions at once (default 256); new clients get HTTP 503 past it.
    pub max_sessions: Option<usize>,
    /// A session unused this long is closed (seconds, default 600).
    pub session_idle_secs: Option<u64>,
    /// The largest request body accepted (bytes, default 4 MiB).
    pub max_body_bytes: Option<usize>,
    /// `all` (one tool per capability), `dynamic` (search, describe and call tools) or `auto`
    /// (the default: dynamic above `dynamic_above` capabilities).
    pub toolset: Option<String>,
    /// Above this many capabilities `auto` serves a dynamic toolset (default 128).
    pub dynamic_above: Option<usize>,
}

/// The MCP meta tools (`undo`, `history`, `checkpoint`), on by default.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaTools {
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for MetaTools {
    fn default() -> Self {
        MetaTools { enabled: true }
    }
}

fn yes() -> bool {
    true
}

/// Extra redaction on top of the built-in key names and value patterns.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redaction {
    /// More key names whose values are always redacted.
    #[serde(default)]
    pub keys: Vec<String>,
    /// More value patterns: name = regular expression.
    #[serde(default)]
    pub patterns: BTreeMap<String, String>,
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: redaction pattern `{name}` is not a valid regular expression: {message}")]
    Pattern {
        path: PathBuf,
        name: String,
        message: String,
    },
}

impl Config {
    /// Loads `path`, or `airun.toml` in the working directory when it exists, or the defaults.
    pub fn load(path: Option<&Path>) -> Result<(Config, Option<PathBuf>), ConfigError> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => {
                let p = PathBuf::from(DEFAULT_FILE);
                if !p.is_file() {
                    return Ok((Config::default(), None));
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let config = Config::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.clone(),
            message,
        })?;
        config.redactor(&path)?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut config = config;
        for r in &mut config.allowed_roots {
            if r.is_relative() {
                *r = base.join(&*r);
            }
        }
        if let Some(k) = &mut config.audit.key_file {
            if k.is_relative() {
                *k = base.join(&*k);
            }
        }
        if let Some(i) = &mut config.python.interpreter {
            if i.is_relative() && i.components().count() > 1 {
                *i = base.join(&*i);
            }
        }
        Ok((config, Some(path)))
    }

    /// Parses configuration text; the error names the line and column (or, for a value out of
    /// range, its key).
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config =
            toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        config.net_limits()?;
        if let Some(t) = config.python.timeout_secs {
            if !(t.is_finite() && t > 0.0 && t <= 86_400.0) {
                return Err(format!(
                    "python.timeout_secs = {t}: give seconds between 0 and 86400"
                ));
            }
        }
        Ok(config)
    }

    /// The network tools' limits (`max_fetch_bytes`, `max_response_bytes`,
    /// `max_download_bytes`): each key given, or its default ([`NetLimits::DEFAULT`]). A value
    /// of 0 or above [`MAX_NET_LIMIT_BYTES`] is an error naming its key.
    pub fn net_limits(&self) -> Result<NetLimits, String> {
        let d = NetLimits::DEFAULT;
        Ok(NetLimits {
            max_fetch_bytes: net_limit("max_fetch_bytes", self.max_fetch_bytes, d.max_fetch_bytes)?,
            max_response_bytes: net_limit(
                "max_response_bytes",
                self.max_response_bytes,
                d.max_response_bytes,
            )?,
            max_download_bytes: net_limit(
                "max_download_bytes",
                self.max_download_bytes,
                d.max_download_bytes,
            )?,
        })
    }

    /// `[http.headers]` with `${VAR}` expanded from the environment; a variable that is not set
    /// is an error naming it.
    pub fn headers(&self) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        for (name, value) in &self.http.headers {
            if !valid_header_name(name) {
                return Err(format!(
                    "[http.headers]: `{name}` is not a valid header name"
                ));
            }
            out.push((
                name.clone(),
                expand_vars(value).map_err(|var| {
                    format!("[http.headers] {name}: environment variable {var} is not set")
                })?,
            ));
        }
        Ok(out)
    }

    /// What of `[http.headers]` is secret: every value an `${VAR}` brings in, and the whole value
    /// of a header whose name says it is a credential (`Authorization`, `X-Api-Key`, `Cookie`).
    /// Plain values (`Accept = "application/json"`) are not: redacting them would blank ordinary
    /// data wherever it appears.
    pub fn header_secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, value) in &self.http.headers {
            let Ok((expanded, values)) = expand(value) else {
                continue;
            };
            out.extend(values);
            let credential = aifirst::is_secret_key(name)
                || ["authorization", "proxy-authorization"]
                    .contains(&name.to_ascii_lowercase().as_str());
            if credential {
                // The credential part of `Bearer x` / `token x`, and the whole value.
                if let Some((_, tail)) = expanded.split_once(' ') {
                    out.push(tail.trim().to_string());
                }
                out.push(expanded);
            }
        }
        out
    }

    /// The redactor: the built-in rules plus this file's.
    pub fn redactor(&self, path: &Path) -> Result<Redactor, ConfigError> {
        let mut r = Redactor::default();
        for secret in self.header_secrets() {
            r = r.with_secret(&secret);
        }
        for k in &self.redaction.keys {
            r = r.with_key(k);
        }
        for (name, pattern) in &self.redaction.patterns {
            r = r
                .with_pattern(name, pattern)
                .map_err(|e| ConfigError::Pattern {
                    path: path.to_path_buf(),
                    name: name.clone(),
                    message: e.to_string(),
                })?;
        }
        Ok(r)
    }
}

/// One network limit: `given` when it is between 1 byte and [`MAX_NET_LIMIT_BYTES`], `default`
/// when absent; otherwise an error naming `key`.
fn net_limit(key: &str, given: Option<u64>, default: u64) -> Result<u64, String> {
    match given {
        None => Ok(default),
        Some(n) if (1..=MAX_NET_LIMIT_BYTES).contains(&n) => Ok(n),
        Some(n) => Err(format!(
            "`{key} = {n}` is out of range: it must be between 1 and {MAX_NET_LIMIT_BYTES} bytes \
             (4 GiB); leave it out for the default, {default}"
        )),
    }
}

/// A header name as HTTP allows it (a token: letters, digits and ``!#$%&'*+-.^_`|~``).
fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `${VAR}` replaced by the environment's value; `Err(VAR)` when one is not set.
pub fn expand_vars(text: &str) -> Result<String, String> {
    expand(text).map(|(expanded, _)| expanded)
}

/// [`expand_vars`], also returning each value it put in (those are secrets to redact).
fn expand(text: &str) -> Result<(String, Vec<String>), String> {
    let mut out = String::with_capacity(text.len());
    let mut values = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[i..]);
            return Ok((out, values));
        };
        let var = &after[..end];
        match std::env::var(var) {
            Ok(v) => {
                out.push_str(&v);
                values.push(v);
            }
            Err(_) => return Err(var.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok((out, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file() {
        let c = Config::parse(
            r#"
state_dir = "/tmp/x"
session = "agent-1"
allowed_hosts = ["127.0.0.1:8080"]
[policy]
allow_irreversible = true
[policy.effects]
delete = "confirm"
[policy.capabilities]
wipe = "deny"
[meta_tools]
enabled = false
[redaction]
keys = ["ssn"]
patterns = { order_id = "ORD-[0-9]+" }
"#,
        )
        .unwrap();
        assert_eq!(c.state_dir.as_deref(), Some(Path::new("/tmp/x")));
        assert_eq!(c.session.as_deref(), Some("agent-1"));
        assert!(c.policy.allow_irreversible);
        assert!(!c.meta_tools.enabled);
        assert_eq!(c.redaction.keys, ["ssn"]);
        let r = c.redactor(Path::new("airun.toml")).unwrap();
        assert_eq!(r.redact_text("see ORD-123"), "see [REDACTED:order_id]");
    }

    #[test]
    fn headers_expand_the_environment_and_are_redacted() {
        std::env::set_var("AIRUN_TEST_HDR_TOKEN", "tok-3f9a8b7c6d5e");
        let c = Config::parse(
            "[http.headers]\n\"X-Jupyter-Token\" = \"${AIRUN_TEST_HDR_TOKEN}\"\nX-Team = \"a-${AIRUN_TEST_HDR_TOKEN}-b\"\n",
        )
        .unwrap();
        let h = c.headers().unwrap();
        assert_eq!(h[0], ("X-Jupyter-Token".into(), "tok-3f9a8b7c6d5e".into()));
        assert_eq!(h[1].1, "a-tok-3f9a8b7c6d5e-b");
        let r = c.redactor(Path::new("airun.toml")).unwrap();
        assert!(!r.redact_text("sent tok-3f9a8b7c6d5e").contains("3f9a8b7c"));
        // Plain header values are not secrets; the bare `${VAR}` value is.
        std::env::set_var("AIRUN_TEST_HDR_TOK2", "zz-91c2d3e4f5");
        let c = Config::parse(
            "[http.headers]\nAccept = \"application/json\"\nTitle = \"Notes\"\nAuthorization = \"token ${AIRUN_TEST_HDR_TOK2}\"\n",
        )
        .unwrap();
        let r = c.redactor(Path::new("airun.toml")).unwrap();
        let v = r.redact(&serde_json::json!({"title": "Notes", "accept": "application/json", "note": "zz-91c2d3e4f5"}));
        assert_eq!(v["title"], "Notes");
        assert_eq!(v["accept"], "application/json");
        assert!(!v["note"].as_str().unwrap().contains("91c2d3e4"), "{v}");
        let missing = Config::parse("[http.headers]\nX = \"${AIRUN_TEST_NOT_SET_ANYWHERE}\"\n")
            .unwrap()
            .headers()
            .unwrap_err();
        assert!(missing.contains("AIRUN_TEST_NOT_SET_ANYWHERE"), "{missing}");
        let bad = Config::parse("[http.headers]\n\"a b\" = \"x\"\n")
            .unwrap()
            .headers()
            .unwrap_err();
        assert!(bad.contains("not a valid header name"), "{bad}");
    }

    #[test]
    fn python_settings_are_read_and_checked() {
        let c = Config::parse("[python]\ninterpreter = \"venv/bin/python\"\ntimeout_secs = 2.5\n")
            .unwrap();
        assert_eq!(
            c.python.interpreter.as_deref(),
            Some(Path::new("venv/bin/python"))
        );
        assert_eq!(c.python.timeout_secs, Some(2.5));
        for bad in ["0", "-1", "1e9", "nan"] {
            let e = Config::parse(&format!("[python]\ntimeout_secs = {bad}\n")).unwrap_err();
            assert!(e.contains("python.timeout_secs"), "{bad}: {e}");
        }
        assert!(Config::parse("[python]\nversion = 3\n").is_err());
    }

    #[test]
    fn net_limits_are_read_and_checked() {
        let c = Config::parse(
            "max_fetch_bytes = 1000\nmax_response_bytes = 2048\nmax_download_bytes = 4294967296\n",
        )
        .unwrap();
        assert_eq!(
            c.net_limits().unwrap(),
            NetLimits {
                max_fetch_bytes: 1000,
                max_response_bytes: 2048,
                max_download_bytes: 4 << 30,
            }
        );
        // A key left out keeps its default; the others are not touched.
        let l = Config::parse("max_response_bytes = 1\n")
            .unwrap()
            .net_limits()
            .unwrap();
        assert_eq!(l.max_response_bytes, 1);
        assert_eq!(l.max_fetch_bytes, 5 << 20);
        assert_eq!(l.max_download_bytes, 256 << 20);
        assert_eq!(
            Config::parse("").unwrap().net_limits().unwrap(),
            NetLimits::DEFAULT
        );
        // 0 or past 4 GiB: an error naming the key.
        for (text, key) in [
            ("max_response_bytes = 0\n", "max_response_bytes"),
            ("max_fetch_bytes = 0\n", "max_fetch_bytes"),
            ("max_download_bytes = 0\n", "max_download_bytes"),
            ("max_download_bytes = 4294967297\n", "max_download_bytes"),
        ] {
            let e = Config::parse(text).unwrap_err();
            assert!(
                e.contains(&format!("`{key} = ")) && e.contains("between 1 and 4294967296"),
                "{text}: {e}"
            );
        }
        // Negative: not a byte count at all.
        assert!(Config::parse("max_fetch_bytes = -1\n").is_err());
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let e = Config::parse("state_dir = \"x\"\npolcy = 1\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert!(e.contains("polcy"), "{e}");
    }

    #[test]
    fn a_bad_pattern_names_itself() {
        let c = Config::parse("[redaction]\npatterns = { broken = \"(\" }\n").unwrap();
        let e = c.redactor(Path::new("airun.toml")).unwrap_err().to_string();
        assert!(e.contains("`broken`"), "{e}");
    }
}
