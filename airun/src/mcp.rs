//! The MCP server: the registry as tools, every call through the engine, undo as a tool.
//!
//! - `tools/list`: one tool per capability with its input and output schemas, the annotations
//!   derived from its effects, and `_meta` naming the effects and the undo plan; plus the meta
//!   tools `undo`, `history` and `checkpoint` unless they are switched off.
//! - `tools/call`: validation, policy, journal and audit happen in the engine. Anything that goes
//!   wrong is a tool result with `isError` and a message the model can relay; an unknown tool is a
//!   JSON-RPC `invalid params` error. The server never stops serving because of a request.
//! - Calls the policy wants confirmed are put to the user through elicitation: an
//!   `input_required` result on protocol 2026-07-28, an `elicitation/create` request on older
//!   versions, and a refusal that says how to allow the call when the client cannot ask.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aifirst::http::split_host_port;
use aifirst::{CallError, CallOptions, CapabilityDef, Engine, UndoDecl};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    InputRequest, InputRequiredResult, JsonObject, ListToolsResult, PaginatedRequestParams,
    ProtocolVersion, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{json, Map, Value};

use crate::output::{checkpoint, undo_report, undo_summary};

/// The names of the meta tools.
pub const META_TOOLS: [&str; 4] = ["undo", "redo", "history", "checkpoint"];

/// The key of the confirmation request in an `input_required` result.
const CONFIRM_KEY: &str = "confirm";

/// At most this many confirmations wait for an answer; past it the oldest is forgotten.
const MAX_PENDING: usize = 1024;

/// A confirmation not answered within this time is forgotten (the call must be made again).
const PENDING_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// A random token (hex): confirmation states and generated bearer tokens.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if getrandom::fill(&mut buf).is_err() {
        // No system randomness: fall back to time and process (still unique, less secret).
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        return format!("{nanos:x}{:x}", std::process::id());
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Serves an engine's registry over MCP. Cheap to clone: one per HTTP session shares the engine.
#[derive(Clone)]
pub struct McpServer {
    inner: Arc<Inner>,
    /// The journal session this client's calls and undos go to.
    session: Arc<str>,
}

struct Inner {
    engine: Engine,
    name: String,
    version: String,
    /// Confirm every call the policy wants confirmed (`--yes`).
    auto_confirm: bool,
    tools: Vec<Tool>,
    /// Capabilities whose tool has an output schema: their results go in `structuredContent`.
    structured: std::collections::HashSet<String>,
    meta: bool,
    /// Confirmations asked for with `input_required`: state token → (tool, arguments, when);
    /// at most [`MAX_PENDING`], each for [`PENDING_TTL`].
    pending: Mutex<HashMap<String, (String, Value, std::time::Instant)>>,
    counter: AtomicU64,
    per_client: bool,
    /// Set for a dynamic toolset: the words each capability is found by.
    search: Option<crate::search::Index>,
    /// When the server started (Unix seconds): per-client session names stay unique across runs.
    started: u64,
    /// Per session, the sandbox narrowed to the roots its client offered (MCP roots), asked
    /// for on the first call and again after `notifications/roots/list_changed`.
    roots: Mutex<HashMap<String, Arc<aifirst::Sandbox>>>,
}

/// Options of [`McpServer::new`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The server's name and version in `initialize`.
    pub name: String,
    pub version: String,
    /// The journal session calls are recorded under.
    pub session: String,
    /// Over HTTP, give each client its own session (`SESSION-http-<start>-<n>`) so one client's
    /// `undo` never reverts another's calls. Off when a session was named (flag, environment,
    /// `session` or `[mcp] shared_session` in airun.toml): every client then shares it.
    pub per_client_sessions: bool,
    /// Offer `undo`, `history` and `checkpoint`.
    pub meta_tools: bool,
    /// Treat every confirmation the policy asks for as given.
    pub auto_confirm: bool,
    /// One tool per capability, or the three tools of a dynamic toolset.
    pub toolset: Toolset,
}

/// How the registry is offered to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toolset {
    /// One tool per capability.
    All,
    /// `search_capabilities`, `describe_capability` and `call_capability`: a huge API fits in any
    /// client's context, and the model asks for the few tools it needs.
    Dynamic,
}

/// The tools of a dynamic toolset.
pub const DYNAMIC_TOOLS: [&str; 3] = [
    "search_capabilities",
    "describe_capability",
    "call_capability",
];

impl McpServer {
    /// Builds the tool list once; fails when a capability's name collides with a meta tool.
    pub fn new(engine: Engine, opts: ServeOptions) -> Result<McpServer, String> {
        let dynamic = opts.toolset == Toolset::Dynamic;
        let mut tools: Vec<Tool> = if dynamic {
            if let Some(clash) = named_like(&engine, &DYNAMIC_TOOLS) {
                return Err(format!(
                    "capability `{clash}` has the name of a dynamic toolset tool; serve with --toolset all or rename it"
                ));
            }
            dynamic_tools()
        } else {
            engine.registry().iter().map(tool_of).collect()
        };
        let search = dynamic.then(|| crate::search::Index::new(engine.registry().iter()));
        if opts.meta_tools {
            // The registry, not the listed tools: in a dynamic toolset capabilities are not
            // listed, and one called `undo` would shadow the meta tool.
            if let Some(clash) = named_like(&engine, &META_TOOLS) {
                return Err(format!(
                    "capability `{clash}` has the name of a meta tool; serve with --no-meta-tools or rename it"
                ));
            }
            tools.extend(meta_tools());
        }
        let structured = engine
            .registry()
            .iter()
            .filter(|d| object_output(d).is_some())
            .map(|d| d.name.to_string())
            .collect();
        Ok(McpServer {
            inner: Arc::new(Inner {
                engine,
                name: opts.name,
                version: opts.version,
                auto_confirm: opts.auto_confirm,
                tools,
                structured,
                meta: opts.meta_tools,
                pending: Mutex::new(HashMap::new()),
                counter: AtomicU64::new(0),
                roots: Mutex::new(HashMap::new()),
                per_client: opts.per_client_sessions,
                search,
                started: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            }),
            session: Arc::from(opts.session.as_str()),
        })
    }

    /// The journal session of the client making this request: over streamable HTTP, each MCP
    /// session (`Mcp-Session-Id`) gets its own undo session, `SESSION-http-<started>-<id hash>`,
    /// unless sessions are shared. A request without an MCP session (stdio, or a stateless
    /// request) uses the server's session.
    fn session_for(&self, ctx: &RequestContext<RoleServer>) -> String {
        if !self.inner.per_client {
            return self.session.to_string();
        }
        let id = ctx
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.headers.get("mcp-session-id"))
            .and_then(|v| v.to_str().ok());
        match id {
            Some(id) => {
                // FNV-1a: short, stable, and reveals nothing of the session id itself.
                let h = id.bytes().fold(0xcbf29ce484222325u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
                });
                format!(
                    "{}-http-{}-{:08x}",
                    self.session, self.inner.started, h as u32
                )
            }
            None => self.session.to_string(),
        }
    }

    /// The journal session of this server's client.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// The tools `tools/list` answers with.
    pub fn tools(&self) -> &[Tool] {
        &self.inner.tools
    }

    async fn call_capability(
        &self,
        def: &'static CapabilityDef,
        request: CallToolRequestParams,
        ctx: &RequestContext<RoleServer>,
    ) -> CallToolResponse {
        let args = Value::Object(request.arguments.clone().unwrap_or_default());
        let client = ctx
            .client_info()
            .map(|i| format!("{} {}", i.name, i.version));
        let mut opts = CallOptions {
            confirmed: self.inner.auto_confirm,
            client,
            sandbox: self.client_sandbox(ctx).await,
        };
        if let Some(state) = &request.request_state {
            match self.take_confirmation(state, def.name, &args, &request) {
                Ok(true) => opts.confirmed = true,
                Ok(false) => return declined(def),
                Err(why) => return error_result("invalid_request", &why),
            }
        }
        match self
            .run(&self.session_for(ctx), def, args.clone(), opts.clone())
            .await
        {
            Err(CallError::NeedsConfirmation(why)) => {
                self.ask_confirmation(def, args, opts, why, ctx).await
            }
            done => self.answer(def, done),
        }
    }

    /// The sandbox narrowed to the roots the client offers, when it offers any (the `roots`
    /// capability, deprecated in the 2026-07-28 revision but still sent by older clients).
    /// Offered roots only ever narrow the configured ones; a client that offers roots but
    /// cannot list them gets no file access.
    // MCP roots are deprecated (SEP-2577) but still sent by older clients, which the issue asks
    // us to honour.
    #[allow(deprecated)]
    async fn client_sandbox(
        &self,
        ctx: &RequestContext<RoleServer>,
    ) -> Option<Arc<aifirst::Sandbox>> {
        let offers = ctx
            .peer
            .peer_info()
            .is_some_and(|i| i.capabilities.roots.is_some());
        if !offers {
            return None;
        }
        let key = self.session_for(ctx);
        if let Some(sb) = self
            .inner
            .roots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Some(Arc::clone(sb));
        }
        // A client that says it has roots but cannot list them gets none (fails closed).
        let offered: Vec<std::path::PathBuf> = match ctx.peer.list_roots().await {
            Ok(listed) => listed
                .roots
                .iter()
                .filter_map(|r| file_uri_path(&r.uri))
                .collect(),
            Err(_) => Vec::new(),
        };
        let narrowed = Arc::new(self.inner.engine.sandbox().narrowed_to(&offered));
        self.inner
            .roots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, Arc::clone(&narrowed));
        Some(narrowed)
    }

    async fn run(
        &self,
        session: &str,
        def: &'static CapabilityDef,
        args: Value,
        opts: CallOptions,
    ) -> Result<Value, CallError> {
        self.inner.engine.call(session, def.name, args, opts).await
    }

    /// The tool result of a finished call.
    fn answer(&self, def: &CapabilityDef, done: Result<Value, CallError>) -> CallToolResponse {
        match done {
            Ok(v) => success(self.inner.structured.contains(def.name), v),
            Err(e) => call_error(&e),
        }
    }

    async fn ask_confirmation(
        &self,
        def: &'static CapabilityDef,
        args: Value,
        mut opts: CallOptions,
        why: String,
        ctx: &RequestContext<RoleServer>,
    ) -> CallToolResponse {
        let can_elicit = ctx
            .client_capabilities()
            .is_some_and(|c| c.elicitation.is_some());
        let message = confirm_message(def, &args, &why);
        if !can_elicit {
            return error_result(
                "needs_confirmation",
                &format!(
                    "{why}. This client cannot ask the user, so the call was refused. \
                     The user can allow it with `--allow {name}` or `{name} = \"allow\"` under \
                     [policy.capabilities] in airun.toml.",
                    name = def.name
                ),
            );
        }
        let modern = ctx
            .protocol_version()
            .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
        if modern {
            let token = self.remember(def.name, &args);
            let request: Result<InputRequest, _> = serde_json::from_value(json!({
                "method": "elicitation/create",
                "params": {
                    "mode": "form",
                    "message": message,
                    "requestedSchema": confirm_schema(),
                }
            }));
            return match request {
                Ok(r) => CallToolResponse::InputRequired(InputRequiredResult::new(
                    Some([(CONFIRM_KEY.to_string(), r)].into_iter().collect()),
                    Some(token),
                )),
                Err(e) => error_result("internal", &e.to_string()),
            };
        }
        match ctx.peer.elicit::<Confirm>(message).await {
            Ok(Some(Confirm { confirm: true })) => {
                opts.confirmed = true;
                let done = self.run(&self.session_for(ctx), def, args, opts).await;
                self.answer(def, done)
            }
            Ok(_) | Err(rmcp::service::ElicitationError::UserDeclined) => declined(def),
            Err(e) => error_result(
                "needs_confirmation",
                &format!("{why}; asking the user failed ({e}), so the call was refused"),
            ),
        }
    }

    fn remember(&self, name: &str, args: &Value) -> String {
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        let token = format!("confirm-{n}-{}", random_token(16));
        let now = std::time::Instant::now();
        let mut pending = self.inner.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|_, (_, _, at)| now.duration_since(*at) < PENDING_TTL);
        while pending.len() >= MAX_PENDING {
            let oldest = pending
                .iter()
                .min_by_key(|(_, (_, _, at))| *at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => pending.remove(&k),
                None => break,
            };
        }
        pending.insert(token.clone(), (name.to_string(), args.clone(), now));
        token
    }

    /// How many confirmations are waiting (bounded by [`MAX_PENDING`]).
    pub fn pending_confirmations(&self) -> usize {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Whether the retry of an `input_required` call carries the user's confirmation.
    fn take_confirmation(
        &self,
        state: &str,
        name: &str,
        args: &Value,
        request: &CallToolRequestParams,
    ) -> Result<bool, String> {
        let pending = self
            .inner
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(state);
        match pending {
            Some((n, a, at)) if n == name && &a == args && at.elapsed() < PENDING_TTL => {}
            _ => {
                return Err(
                    "requestState does not belong to this call; call the tool again".to_string(),
                )
            }
        }
        let answer = request
            .input_responses
            .as_ref()
            .and_then(|r| r.get(CONFIRM_KEY));
        Ok(answer.is_some_and(|a| {
            a.get("action").and_then(Value::as_str) == Some("accept")
                && a.pointer("/content/confirm").and_then(Value::as_bool) == Some(true)
        }))
    }

    /// `search_capabilities`, `describe_capability` and `call_capability`. A call made through
    /// `call_capability` is the capability's own call: the same validation, policy,
    /// confirmation, journal, undo and audit.
    async fn call_dynamic(
        &self,
        request: CallToolRequestParams,
        ctx: &RequestContext<RoleServer>,
    ) -> CallToolResponse {
        let args = request.arguments.clone().unwrap_or_default();
        let registry = self.inner.engine.registry();
        // The capability an argument `name` names, or (error code, message).
        let named = |args: &JsonObject| -> Result<&'static CapabilityDef, (&'static str, String)> {
            let Some(name) = args.get("name").and_then(Value::as_str) else {
                return Err((
                    "invalid_arguments",
                    "`name` (a string) is required: a capability name from search_capabilities"
                        .to_string(),
                ));
            };
            registry.get(name).ok_or_else(|| {
                let near = self
                    .inner
                    .search
                    .as_ref()
                    .map(|s| s.near(name))
                    .unwrap_or_default();
                let hint = if near.is_empty() {
                    "search_capabilities finds capabilities by words".to_string()
                } else {
                    format!("did you mean {}?", near.join(", "))
                };
                (
                    "unknown_capability",
                    format!("there is no capability `{name}`; {hint}"),
                )
            })
        };
        match request.name.as_ref() {
            "search_capabilities" => {
                let query = args.get("query").and_then(Value::as_str).unwrap_or("");
                let limit = args
                    .get("limit")
                    .and_then(Value::as_u64)
                    .map_or(10, |n| n.clamp(1, 50)) as usize;
                let Some(index) = &self.inner.search else {
                    return error_result("internal", "no search index");
                };
                let hits = index.search(query, limit);
                let items: Vec<Value> = hits
                    .iter()
                    .filter_map(|(name, _)| registry.get(name))
                    .map(summary_of)
                    .collect();
                let text = if items.is_empty() {
                    format!("No capability matches `{query}`. Try other words (a resource, a verb, a tag).")
                } else {
                    items
                        .iter()
                        .map(|i| {
                            format!(
                                "{} — {}",
                                i["name"].as_str().unwrap_or(""),
                                i["summary"].as_str().unwrap_or("")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                let mut result = CallToolResult::success(vec![ContentBlock::text(format!(
                    "{text}\n\n`describe_capability` gives one's arguments; `call_capability` runs it."
                ))]);
                result.structured_content = Some(json!({ "query": query, "capabilities": items }));
                result.into()
            }
            "describe_capability" => match named(&args) {
                Ok(def) => {
                    let tool = tool_of(def);
                    let mut v = serde_json::to_value(&tool).unwrap_or(Value::Null);
                    if let Some(o) = v.as_object_mut() {
                        if let Some(route) = def.route {
                            o.insert("route".into(), json!(route));
                        }
                        if !def.tags.is_empty() {
                            o.insert("tags".into(), json!(def.tags));
                        }
                    }
                    CallToolResult::structured(v).into()
                }
                Err((code, why)) => error_result(code, &why),
            },
            _ => {
                let def = match named(&args) {
                    Ok(d) => d,
                    Err((code, why)) => return error_result(code, &why),
                };
                let inner_args = match args.get("arguments") {
                    None | Some(Value::Null) => Map::new(),
                    Some(Value::Object(m)) => m.clone(),
                    Some(_) => {
                        return error_result(
                            "invalid_arguments",
                            "`arguments` must be an object: the capability's arguments, as describe_capability gives them",
                        )
                    }
                };
                let mut inner = request.clone();
                inner.name = def.name.into();
                inner.arguments = Some(inner_args);
                self.call_capability(def, inner, ctx).await
            }
        }
    }

    async fn call_meta(
        &self,
        name: &str,
        args: &JsonObject,
        ctx: &RequestContext<RoleServer>,
    ) -> CallToolResponse {
        let engine = &self.inner.engine;
        let session = self.session_for(ctx);
        let session = session.as_str();
        match name {
            "undo" => {
                let target = if let Some(cp) = args.get("checkpoint").and_then(Value::as_str) {
                    aifirst::UndoTarget::Checkpoint(cp.to_string())
                } else {
                    let steps = args.get("steps").and_then(Value::as_u64).unwrap_or(1);
                    aifirst::UndoTarget::Steps(usize::try_from(steps).unwrap_or(usize::MAX))
                };
                report_result(engine.undo_with(session, target, meta_options(args)).await)
            }
            "redo" => {
                let steps = args.get("steps").and_then(Value::as_u64).unwrap_or(1);
                let n = usize::try_from(steps).unwrap_or(usize::MAX);
                report_result(engine.redo(session, n, meta_options(args)).await)
            }
            "history" => match engine.history(session) {
                Ok(steps) => {
                    let limit = args
                        .get("limit")
                        .and_then(Value::as_u64)
                        .and_then(|n| usize::try_from(n).ok())
                        .unwrap_or(50);
                    let skip = steps.len().saturating_sub(limit);
                    let steps: Vec<Value> = steps
                        .into_iter()
                        .skip(skip)
                        .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
                        .collect();
                    CallToolResult::structured(json!({ "steps": steps })).into()
                }
                Err(e) => call_error(&e),
            },
            _ => {
                let Some(cp) = args.get("name").and_then(Value::as_str) else {
                    return error_result("invalid_arguments", "`name` (a string) is required");
                };
                match engine.checkpoint(session, cp) {
                    Ok(step) => CallToolResult::structured(checkpoint(cp, step)).into(),
                    Err(e) => call_error(&e),
                }
            }
        }
    }
}

/// The options of the `undo` and `redo` meta tools (`dry_run`; never `force` from a model).
fn meta_options(args: &JsonObject) -> aifirst::UndoOptions {
    aifirst::UndoOptions {
        dry_run: args
            .get("dry_run")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        force: false,
        client: Some("mcp".to_string()),
    }
}

/// An undo's or redo's report as a tool result (an error result when a step stopped it).
fn report_result(report: Result<aifirst::UndoReport, CallError>) -> CallToolResponse {
    match report {
        Ok(r) => {
            let mut result = CallToolResult::structured(undo_report(&r));
            if r.failed.is_some() {
                result.is_error = Some(true);
            }
            result.into()
        }
        Err(e) => call_error(&e),
    }
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Confirm {
    /// Run the call.
    confirm: bool,
}

rmcp::elicit_safe!(Confirm);

/// The path of a `file://` URI (`file:///home/a%20b` → `/home/a b`); `None` for other schemes.
fn file_uri_path(uri: &str) -> Option<std::path::PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    if !rest.starts_with('/') {
        return None;
    }
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).ok()?);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    let text = String::from_utf8(out).ok()?;
    if text.contains('\0') {
        return None;
    }
    Some(std::path::PathBuf::from(text))
}

fn confirm_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "confirm": {"type": "boolean", "title": "Run it", "description": "Run this call."}
        },
        "required": ["confirm"]
    })
}

fn confirm_message(def: &CapabilityDef, args: &Value, why: &str) -> String {
    let mut args = args.to_string();
    if args.len() > 500 {
        let mut cut = 500;
        while !args.is_char_boundary(cut) {
            cut -= 1;
        }
        args.truncate(cut);
        args.push('…');
    }
    let undo = match def.undo {
        UndoDecl::Irreversible { reason } => format!("It cannot be undone: {reason}."),
        // This one call cannot be undone (`why` says so): no word on the usual undo.
        _ if why.starts_with("this call of") => String::new(),
        _ => format!("Undo: {}.", undo_summary(def)),
    };
    format!("{why}. Run `{}` with {args}? {undo}", def.name)
        .trim_end()
        .to_string()
}

/// The methods a client may send this server (MCP's client requests).
const MCP_METHODS: [&str; 19] = [
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "tasks/list",
    "tasks/result",
    "tasks/cancel",
    "roots/list",
    "sampling/createMessage",
];

/// The error for a request that reached [`ServerHandler::on_custom_request`].
fn unreadable_request(method: &str, params: Option<&Value>) -> McpError {
    let shown: String = method.chars().take(80).collect();
    if !MCP_METHODS.contains(&method) {
        return McpError::new(
            rmcp::model::ErrorCode::METHOD_NOT_FOUND,
            format!(
                "no method `{}` (this server answers tools/list and tools/call)",
                shown.escape_debug()
            ),
            None,
        );
    }
    let why = match (method, params) {
        (_, Some(p)) if !p.is_object() => "`params` must be an object".to_string(),
        ("tools/call", Some(p)) => match (p.get("name"), p.get("arguments")) {
            (Some(n), _) if !n.is_string() => "`name` must be a string".to_string(),
            (None, _) => "`name` is missing".to_string(),
            (_, Some(Value::String(_))) => {
                "`arguments` must be a JSON object, not a string (send the object itself, not its text)"
                    .to_string()
            }
            (_, Some(a)) if !a.is_object() && !a.is_null() => {
                "`arguments` must be a JSON object".to_string()
            }
            _ => "they do not fit the MCP schema".to_string(),
        },
        _ => "they do not fit the MCP schema".to_string(),
    };
    McpError::invalid_params(format!("`{method}`: bad params: {why}"), None)
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build());
        info.server_info = Implementation::new(&self.inner.name, &self.inner.version);
        let instructions = if self.inner.meta {
            "Every call is journaled. `undo` reverts the last steps (or back to a `checkpoint`); \
             `redo` re-applies undone file changes; `history` lists them. Tools marked \
             destructive may ask the user to confirm."
        } else {
            "Every call is journaled and audited."
        };
        info.with_instructions(instructions)
    }

    async fn on_roots_list_changed(
        &self,
        _context: rmcp::service::NotificationContext<RoleServer>,
    ) {
        // Asked for again on the next call.
        if let Ok(mut map) = self.inner.roots.lock() {
            map.clear();
        }
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.inner.tools.clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.inner.tools.iter().find(|t| t.name == name).cloned()
    }

    /// A request rmcp could not read as the method it names comes here: an MCP method whose
    /// params do not fit (`tools/call` with `arguments` as a string) is invalid params (-32602),
    /// saying what to send; rmcp's default called it "method not found" with the method's name
    /// as the whole message. Only a method MCP does not have is -32601.
    async fn on_custom_request(
        &self,
        request: rmcp::model::CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CustomResult, McpError> {
        if request.method == UNREADABLE_METHOD {
            let why = request
                .params
                .as_ref()
                .and_then(|p| p.get("why"))
                .and_then(Value::as_str)
                .unwrap_or("the message cannot be read")
                .to_string();
            let code = if why.ends_with("(-32600)") {
                rmcp::model::ErrorCode::INVALID_REQUEST
            } else {
                rmcp::model::ErrorCode::PARSE_ERROR
            };
            return Err(McpError::new(code, why, None));
        }
        Err(unreadable_request(&request.method, request.params.as_ref()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        if let Some(def) = self.inner.engine.registry().get(&request.name) {
            return Ok(self.call_capability(def, request, &context).await);
        }
        if self.inner.search.is_some() && DYNAMIC_TOOLS.contains(&request.name.as_ref()) {
            return Ok(self.call_dynamic(request, &context).await);
        }
        if self.inner.meta && META_TOOLS.contains(&request.name.as_ref()) {
            let args = request.arguments.clone().unwrap_or_default();
            return Ok(self.call_meta(&request.name, &args, &context).await);
        }
        Err(McpError::invalid_params(
            format!("unknown tool `{}`", request.name),
            None,
        ))
    }
}

fn object(v: Value) -> Arc<JsonObject> {
    match v {
        Value::Object(m) => Arc::new(m),
        _ => Arc::new(Map::new()),
    }
}

/// A capability's output schema as MCP takes it: only one with an object at its root.
fn object_output(def: &CapabilityDef) -> Option<Arc<JsonObject>> {
    let out = def.output_schema()?;
    (out.as_value().get("type").and_then(Value::as_str) == Some("object"))
        .then(|| object(out.as_value().clone()))
}

/// The first capability whose name is one of `names`.
fn named_like(engine: &Engine, names: &[&str]) -> Option<&'static str> {
    engine
        .registry()
        .iter()
        .map(|d| d.name)
        .find(|n| names.contains(n))
}

/// The MCP tool of a capability.
pub fn tool_of(def: &'static CapabilityDef) -> Tool {
    let input = object(def.input_schema().as_value().clone());
    let mut tool = Tool::new(def.name, def.description, input);
    if let Some(out) = object_output(def) {
        tool = tool.with_raw_output_schema(out);
    }
    let a = def.annotations();
    let mut ann = ToolAnnotations::new();
    if let Some(v) = a.read_only_hint {
        ann = ann.read_only(v);
    }
    if let Some(v) = a.destructive_hint {
        ann = ann.destructive(v);
    }
    if let Some(v) = a.idempotent_hint {
        ann = ann.idempotent(v);
    }
    if let Some(v) = a.open_world_hint {
        ann = ann.open_world(v);
    }
    let mut meta = rmcp::model::MetaObject::new();
    meta.insert("aifirst/effects".into(), json!(def.effects));
    meta.insert("aifirst/undo".into(), json!(undo_summary(def)));
    if let Some((confidence, _)) = crate::output::plan_confidence(def) {
        meta.insert("aifirst/undo_confidence".into(), json!(confidence.as_str()));
    }
    tool.with_annotations(ann).with_meta(meta)
}

/// What a search hit shows of a capability: enough to choose, not its schema.
fn summary_of(def: &'static CapabilityDef) -> Value {
    let summary = def.description.lines().next().unwrap_or("").trim();
    let mut v = json!({
        "name": def.name,
        "summary": summary,
        "effects": def.effects,
        "undo": undo_summary(def),
    });
    if let (Some(o), Some(route)) = (v.as_object_mut(), def.route) {
        o.insert("route".into(), json!(route));
    }
    v
}

/// The three tools of a dynamic toolset.
fn dynamic_tools() -> Vec<Tool> {
    let search = Tool::new(
        "search_capabilities",
        "Find the capabilities (operations) this server can run, by words: what you want to do \
         and to what (`create issue`, `list users`, `delete file`). Matches names, descriptions, \
         tags and HTTP paths; best first. Then `describe_capability` one to see its arguments.",
        object(json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Words to look for."},
                "limit": {"type": "integer", "minimum": 1, "maximum": 50, "description": "At most this many results (default 10)."}
            },
            "required": ["query"]
        })),
    )
    .with_annotations(ToolAnnotations::new().read_only(true).open_world(false));
    let describe = Tool::new(
        "describe_capability",
        "The full description of one capability: its input schema (the arguments \
         `call_capability` takes), effects, undo and annotations.",
        object(json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "A capability name from search_capabilities."}
            },
            "required": ["name"]
        })),
    )
    .with_annotations(ToolAnnotations::new().read_only(true).open_world(false));
    let call = Tool::new(
        "call_capability",
        "Run one capability with its arguments. Exactly like calling it directly: validated, \
         checked by policy (it may ask the user to confirm), journaled for `undo`, and audited.",
        object(json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "The capability to run."},
                "arguments": {"type": "object", "description": "Its arguments, as describe_capability gives them."}
            },
            "required": ["name"]
        })),
    )
    .with_annotations(
        ToolAnnotations::new()
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(true),
    );
    vec![search, describe, call]
}

fn meta_tools() -> Vec<Tool> {
    let undo = Tool::new(
        "undo",
        "Undo the most recent calls of this session, newest first (default: the last one), or \
         every call after a checkpoint. Stops at the first step that cannot be undone.",
        object(json!({
            "type": "object",
            "properties": {
                "steps": {"type": "integer", "minimum": 1, "description": "How many steps to undo (default 1)."},
                "checkpoint": {"type": "string", "description": "Undo every step after this checkpoint instead."},
                "dry_run": {"type": "boolean", "description": "Only show each compensation that would run (capability and arguments, or the files written back or removed); run nothing."}
            }
        })),
    )
    .with_annotations(ToolAnnotations::new().read_only(false).destructive(true).idempotent(false).open_world(true));
    let redo = Tool::new(
        "redo",
        "Re-apply the file changes most recently undone in this session, oldest first (default: \
         one step). Works until the session makes a new call; refuses a file changed since the undo.",
        object(json!({
            "type": "object",
            "properties": {
                "steps": {"type": "integer", "minimum": 1, "description": "How many undone steps to re-apply (default 1)."},
                "dry_run": {"type": "boolean", "description": "Only show the files each step would write back; change nothing."}
            }
        })),
    )
    .with_annotations(ToolAnnotations::new().read_only(false).destructive(true).idempotent(false).open_world(false));
    let history = Tool::new(
        "history",
        "The calls of this session, oldest first, with their undo state (done or undone).",
        object(json!({
            "type": "object",
            "properties": {
                "limit": {"type": "integer", "minimum": 1, "description": "Only the last N steps (default 50)."}
            }
        })),
    )
    .with_annotations(ToolAnnotations::new().read_only(true).open_world(false));
    let checkpoint = Tool::new(
        "checkpoint",
        "Mark the current point of this session so `undo` can later return to it. A name already in use is refused (choose a new one): a checkpoint is never moved from here.",
        object(json!({
            "type": "object",
            "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 128, "description": "The checkpoint's name: new in this session, no control characters."}},
            "required": ["name"]
        })),
    )
    .with_annotations(
        ToolAnnotations::new()
            .read_only(false)
            .destructive(false)
            .idempotent(true)
            .open_world(false),
    );
    vec![undo, redo, history, checkpoint]
}

fn success(structured: bool, v: Value) -> CallToolResponse {
    // A media result (`{"type": "image" | "audio", "data": base64, "mimeType"}`, as
    // `read_media_file` returns) goes to the client as an image or audio block it can show.
    let media = match (
        v.get("type").and_then(Value::as_str),
        v.get("data").and_then(Value::as_str),
        v.get("mimeType").and_then(Value::as_str),
    ) {
        (Some("image"), Some(data), Some(mime)) => Some(ContentBlock::image(data, mime)),
        (Some("audio"), Some(data), Some(mime)) => Some(ContentBlock::audio(data, mime)),
        _ => None,
    };
    if let Some(block) = media {
        let mut result = CallToolResult::success(vec![block]);
        if structured {
            result.structured_content = Some(v);
        }
        return result.into();
    }
    let text = match &v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    if structured && v.is_object() {
        result.structured_content = Some(v);
    }
    result.into()
}

/// The user said no: nothing ran.
fn declined(def: &CapabilityDef) -> CallToolResponse {
    error_result(
        "declined",
        &format!("the user did not confirm `{}`; it did not run", def.name),
    )
}

/// A tool error: `message` is what the model reads, `kind` goes in `_meta` for programs.
fn error_result(kind: &str, message: &str) -> CallToolResponse {
    let mut r = CallToolResult::error(vec![ContentBlock::text(message)]);
    let mut meta = rmcp::model::MetaObject::new();
    meta.insert("aifirst/error".into(), json!(kind));
    r.meta = Some(meta);
    r.into()
}

fn call_error(e: &CallError) -> CallToolResponse {
    let kind = match e {
        CallError::Unknown(_) => "unknown",
        CallError::InvalidArguments { .. } => "invalid_arguments",
        CallError::Denied(_) => "refused",
        CallError::NeedsConfirmation(_) => "needs_confirmation",
        CallError::Snapshot(_) => "snapshot_failed",
        CallError::Tool(_) => "handler_failed",
        CallError::Journal(_) | CallError::Incomplete { .. } => "journal_failed",
        CallError::InvalidSchema { .. } => "refused",
        CallError::Busy(_) => "busy",
        CallError::Audit(_) => "audit_failed",
        CallError::NoStep(_) | CallError::WrongState { .. } | CallError::NoCheckpoint(_) => {
            "invalid_request"
        }
    };
    let message = match e {
        CallError::Tool(t) => format!("the call failed: {t}"),
        other => other.to_string(),
    };
    error_result(kind, &message)
}

type Reader = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
type Writer = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

/// Stdin and stdout for the server. When they are pipes (an MCP client starts the server with
/// two), they are read and written non-blocking on the runtime's own reactor; tokio's
/// `stdin()`/`stdout()` hand every read and write to a blocking thread, and those hand-offs were a
/// measurable part of a round trip. Anything else (a terminal, a file) keeps tokio's. Stdout stays
/// blocking when stderr is the same pipe, so a message on stderr never meets a full pipe in
/// non-blocking mode.
fn stdio_streams() -> (Reader, Writer) {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    use tokio::net::unix::pipe;
    let pipe_id = |fd: std::os::fd::BorrowedFd<'_>| {
        let f = std::fs::File::from(fd.try_clone_to_owned().ok()?);
        let m = f.metadata().ok()?;
        std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()).then(|| (m.dev(), m.ino()))
    };
    let reader: Reader = match pipe_id(std::io::stdin().as_fd())
        .and_then(|_| std::io::stdin().as_fd().try_clone_to_owned().ok())
        .and_then(|fd| pipe::Receiver::from_owned_fd(fd).ok())
    {
        Some(r) => Box::new(r),
        None => Box::new(tokio::io::stdin()),
    };
    let out = pipe_id(std::io::stdout().as_fd());
    let shared_with_stderr = out.is_some() && out == pipe_id(std::io::stderr().as_fd());
    let writer: Writer = match out
        .filter(|_| !shared_with_stderr)
        .and_then(|_| std::io::stdout().as_fd().try_clone_to_owned().ok())
        .and_then(|fd| pipe::Sender::from_owned_fd(fd).ok())
    {
        Some(w) => Box::new(w),
        None => Box::new(tokio::io::stdout()),
    };
    (Box::new(Mended::new(reader)), writer)
}

/// A line of JSON with every lone UTF-16 surrogate escape (`\ud83d` not followed by its low
/// half, `\ude00` alone) replaced by `\ufffd`; `None` when it has none. JavaScript's
/// `JSON.stringify` writes such escapes for a string cut inside an emoji, and Python's `json`
/// reads them; serde_json refuses the whole message, which rmcp then drops unanswered (as it
/// drops any line that is not JSON), so the client would wait for ever.
fn mend_surrogates(line: &[u8]) -> Option<Vec<u8>> {
    // Most lines have no `\uD…` at all: one pass to tell.
    if !line
        .windows(3)
        .any(|w| w[0] == b'\\' && w[1] == b'u' && matches!(w[2], b'd' | b'D'))
    {
        return None;
    }
    let hex4 = |at: usize| -> Option<u16> {
        let digits = line.get(at..at + 4)?;
        u16::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    };
    let escape_at = |at: usize| -> Option<u16> {
        (line.get(at) == Some(&b'\\') && line.get(at + 1) == Some(&b'u'))
            .then(|| hex4(at + 2))
            .flatten()
    };
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < line.len() {
        if line[i] != b'\\' {
            if let Some(o) = out.as_mut() {
                o.push(line[i]);
            }
            i += 1;
            continue;
        }
        let take = match escape_at(i) {
            Some(0xD800..=0xDBFF)
                if escape_at(i + 6).is_some_and(|low| (0xDC00..=0xDFFF).contains(&low)) =>
            {
                12
            }
            Some(0xD800..=0xDFFF) => {
                let o = out.get_or_insert_with(|| line[..i].to_vec());
                o.extend_from_slice(b"\\ufffd");
                i += 6;
                continue;
            }
            Some(_) => 6,
            // Another escape (`\\`, `\"`): two bytes.
            None => 2,
        };
        let end = (i + take).min(line.len());
        if let Some(o) = out.as_mut() {
            o.extend_from_slice(&line[i..end]);
        }
        i = end;
    }
    out
}

/// The largest message read from stdin (rmcp's own bound, which drops longer lines unanswered).
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// The method a message this server cannot read is passed on as, so that rmcp hands it to
/// [`ServerHandler::on_custom_request`], which answers its id with the error in its params.
const UNREADABLE_METHOD: &str = "aifirst/unreadable";

/// The `id` of a JSON-RPC request read from its text alone (which need not be valid JSON):
/// the value of the first `"id"` key of the top-level object, a number or a string.
fn request_id(text: &[u8]) -> Option<String> {
    let (mut depth, mut i) = (0usize, 0usize);
    while i < text.len() {
        match text[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' => {
                let start = i;
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                let key = text.get(start..=i)?;
                if depth == 1 && key == b"\"id\"" {
                    let rest = &text[i + 1..];
                    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
                    let rest = rest.strip_prefix(b":")?;
                    let rest = &rest[rest.iter().position(|b| !b.is_ascii_whitespace())?..];
                    let end = if rest.first() == Some(&b'"') {
                        let mut j = 1;
                        while j < rest.len() && rest[j] != b'"' {
                            j += if rest[j] == b'\\' { 2 } else { 1 };
                        }
                        j + 1
                    } else {
                        rest.iter()
                            .position(|b| !(b.is_ascii_digit() || b"-+.eE".contains(b)))
                            .unwrap_or(rest.len())
                    };
                    let id = std::str::from_utf8(rest.get(..end)?).ok()?;
                    // Only what parses as a JSON string or integer is an id.
                    return match serde_json::from_str::<Value>(id).ok()? {
                        Value::String(_) => Some(id.to_string()),
                        Value::Number(n) if n.is_i64() || n.is_u64() => Some(id.to_string()),
                        _ => None,
                    };
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// What takes the place of a line this server cannot read: a request of
/// [`UNREADABLE_METHOD`] with its id, answered with `why`; or, with no id to answer (a
/// notification, or text with none), nothing, said on stderr.
fn unreadable_line(text: &[u8], why: &str) -> Vec<u8> {
    match request_id(text) {
        Some(id) => {
            let mut out = format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"{UNREADABLE_METHOD}\",\"params\":{}}}",
                serde_json::json!({ "why": why })
            )
            .into_bytes();
            out.push(b'\n');
            out
        }
        None => {
            eprintln!("airun: a message with no id to answer was dropped: {why}");
            Vec::new()
        }
    }
}

/// Why a line past [`MAX_MESSAGE_BYTES`] is not read.
fn too_large() -> String {
    format!(
        "the message is larger than {} MiB, more than this server reads (-32600)",
        MAX_MESSAGE_BYTES >> 20
    )
}

/// How deep arrays and objects nest in `text` (strings skipped), up to `past`.
fn nesting(text: &[u8], past: usize) -> usize {
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < text.len() && deepest <= past {
        match text[i] {
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' => {
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
            }
            _ => {}
        }
        i += 1;
    }
    deepest
}

/// The deepest nesting serde_json (and so rmcp) reads: its recursion limit.
const MAX_NESTING: usize = 127;

/// Why a complete line cannot be read as JSON, if it cannot (rmcp drops such lines unanswered).
fn unreadable_json(line: &[u8]) -> Option<String> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    if let Err(e) = std::str::from_utf8(line) {
        return Some(format!(
            "the message is not UTF-8 (a byte that cannot start or continue a character at byte {}) (-32700)",
            e.valid_up_to()
        ));
    }
    if nesting(line, MAX_NESTING) > MAX_NESTING {
        return Some(format!(
            "the message is nested deeper than {MAX_NESTING} levels, more than this server reads (-32700)"
        ));
    }
    let e = serde_json::from_slice::<serde::de::IgnoredAny>(line).err()?;
    Some(format!("the message is not JSON ({e}) (-32700)"))
}

/// Stdin, each line passed on as it came or with its lone surrogates mended
/// ([`mend_surrogates`]). Lines are held only until their newline, as the protocol's reader
/// holds them anyway, and never past [`MAX_MESSAGE_BYTES`]. A line that is not JSON, nested
/// too deep or too long is passed on as an [`UNREADABLE_METHOD`] request with its id, so its
/// client gets an error rather than waiting for ever.
struct Mended {
    inner: Reader,
    /// Bytes of a line not yet ended, searched for its newline up to `searched`.
    line: Vec<u8>,
    searched: usize,
    /// The start of a line longer than [`MAX_MESSAGE_BYTES`], whose rest is being skipped.
    skipping: Option<Vec<u8>>,
    /// Bytes ready to be read.
    ready: Vec<u8>,
    offset: usize,
    eof: bool,
}

impl Mended {
    fn new(inner: Reader) -> Mended {
        Mended {
            inner,
            line: Vec::new(),
            searched: 0,
            skipping: None,
            ready: Vec::new(),
            offset: 0,
            eof: false,
        }
    }

    /// Moves every complete line (or, at the end, what is left) from `line` to `ready`.
    fn settle(&mut self) {
        while let Some(nl) = self.line[self.searched..]
            .iter()
            .position(|b| *b == b'\n')
            .map(|p| p + self.searched)
        {
            self.searched = 0;
            let rest = self.line.split_off(nl + 1);
            let whole = std::mem::replace(&mut self.line, rest);
            if let Some(head) = self.skipping.take() {
                self.ready
                    .extend_from_slice(&unreadable_line(&head, &too_large()));
                continue;
            }
            self.pass(whole);
        }
        self.searched = self.line.len();
        if self.line.len() >= MAX_MESSAGE_BYTES {
            // Not held: its start (for its id) is kept, the rest skipped to its newline.
            if self.skipping.is_none() {
                self.line.truncate(64 * 1024);
                self.skipping = Some(std::mem::take(&mut self.line));
            }
            self.line.clear();
            self.searched = 0;
        }
        if self.eof && !self.line.is_empty() && self.skipping.is_none() {
            // The last message, its newline missing: ended, as rmcp reads only whole lines.
            let mut whole = std::mem::take(&mut self.line);
            whole.push(b'\n');
            self.pass(whole);
        }
    }

    /// Passes a complete line on: mended, or in place of one that cannot be read.
    fn pass(&mut self, whole: Vec<u8>) {
        if whole.len() >= MAX_MESSAGE_BYTES {
            let head = &whole[..64 * 1024];
            self.ready
                .extend_from_slice(&unreadable_line(head, &too_large()));
            return;
        }
        let line = mend_surrogates(&whole).unwrap_or(whole);
        match unreadable_json(&line) {
            Some(why) => self.ready.extend_from_slice(&unreadable_line(&line, &why)),
            None => self.ready.extend_from_slice(&line),
        }
    }
}

impl tokio::io::AsyncRead for Mended {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let this = &mut *self;
        loop {
            if this.offset < this.ready.len() {
                let n = buf.remaining().min(this.ready.len() - this.offset);
                buf.put_slice(&this.ready[this.offset..this.offset + n]);
                this.offset += n;
                if this.offset == this.ready.len() {
                    this.ready.clear();
                    this.offset = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut read = tokio::io::ReadBuf::new(&mut chunk);
            match std::pin::Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    if read.filled().is_empty() {
                        this.eof = true;
                    } else {
                        this.line.extend_from_slice(read.filled());
                    }
                    this.settle();
                }
            }
        }
    }
}

/// Serves MCP over stdin/stdout until the client closes stdin.
pub async fn serve_stdio(server: McpServer) -> Result<(), String> {
    use rmcp::ServiceExt;
    let running = server
        .serve(stdio_streams())
        .await
        .map_err(|e| format!("MCP initialization failed: {e}"))?;
    running
        .waiting()
        .await
        .map(|_| ())
        .map_err(|e| format!("MCP server stopped: {e}"))
}

/// How the HTTP transport is exposed and bounded.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub addr: std::net::SocketAddr,
    /// Bind to an address other than loopback (a bearer token is then required).
    pub allow_remote: bool,
    /// Every request must carry `Authorization: Bearer TOKEN`.
    pub token: Option<String>,
    /// Origins (`scheme://host[:port]`, port `*` for any) allowed besides loopback ones.
    pub allowed_origins: Vec<String>,
    /// Host names the server answers to besides loopback and the bound address.
    pub allowed_hosts: Vec<String>,
    pub max_sessions: usize,
    pub session_idle: std::time::Duration,
    pub max_body_bytes: usize,
}

impl HttpOptions {
    /// Loopback defaults for `addr`: 256 sessions, 10 minutes idle, 4 MiB bodies.
    pub fn new(addr: std::net::SocketAddr) -> HttpOptions {
        HttpOptions {
            addr,
            allow_remote: false,
            token: None,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            max_sessions: 256,
            session_idle: std::time::Duration::from_secs(600),
            max_body_bytes: 4 << 20,
        }
    }
}

/// What every HTTP request is checked against before rmcp sees it.
struct Gate {
    token: Option<String>,
    hosts: Vec<String>,
    origins: Vec<String>,
    max_body: usize,
    max_sessions: usize,
    sessions: Arc<rmcp::transport::streamable_http_server::session::local::LocalSessionManager>,
}

impl Gate {
    fn host_ok(&self, host: &str) -> bool {
        let (h, _) = split_host_port(host);
        self.hosts.contains(&h)
    }

    /// Loopback origins always; others when listed (`https://app.example.com`, `http://x:*`).
    fn origin_ok(&self, origin: &str) -> bool {
        let o = origin.trim().to_ascii_lowercase();
        let Some((scheme, rest)) = o.split_once("://") else {
            return false;
        };
        if !matches!(scheme, "http" | "https") {
            return false;
        }
        let (host, port) = split_host_port(rest.trim_end_matches('/'));
        if matches!(host.as_str(), "localhost" | "127.0.0.1" | "::1") {
            return true;
        }
        self.origins.iter().any(|a| {
            let a = a.trim().to_ascii_lowercase();
            let Some((s2, r2)) = a.split_once("://") else {
                return false;
            };
            let (h2, p2) = split_host_port(r2.trim_end_matches('/'));
            s2 == scheme && h2 == host && (p2.as_deref() == Some("*") || p2 == port)
        })
    }

    fn token_ok(&self, header: Option<&str>) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        let Some(given) = header.and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        }) else {
            return false;
        };
        // Constant time in the token's length: no early exit on the first differing byte.
        let (a, b) = (given.trim().as_bytes(), expected.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

fn plain(status: u16, message: &str) -> axum::response::Response {
    let mut r = axum::response::Response::new(axum::body::Body::from(format!("{message}\n")));
    *r.status_mut() =
        axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_REQUEST);
    r
}

/// A JSON-RPC error response (the request id is unknown: `null`).
fn rpc_error(status: u16, code: i64, message: &str) -> axum::response::Response {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    let mut r = axum::response::Response::new(axum::body::Body::from(body.to_string()));
    *r.status_mut() =
        axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_REQUEST);
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    r
}

async fn gate(
    axum::extract::State(g): axum::extract::State<Arc<Gate>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header;
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !g.host_ok(host) {
        return plain(
            403,
            "Forbidden: this Host is not served (DNS rebinding protection); add it under [mcp] allowed_hosts",
        );
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        if !origin.to_str().is_ok_and(|o| g.origin_ok(o)) {
            return plain(
                403,
                "Forbidden: this Origin is not allowed; add it under [mcp] allowed_origins",
            );
        }
    }
    if !g.token_ok(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok()),
    ) {
        let mut r = plain(401, "Unauthorized: send Authorization: Bearer <token>");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
        return r;
    }
    if req.method() != axum::http::Method::POST {
        return next.run(req).await;
    }
    // rmcp answers these in plain text; clients expect JSON-RPC.
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        return rpc_error(415, -32600, "Content-Type must be application/json");
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !(accept.contains("application/json") && accept.contains("text/event-stream")) {
        return rpc_error(
            406,
            -32600,
            "Accept must list both application/json and text/event-stream",
        );
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        rpc_error(
            413,
            -32600,
            &format!(
                "request body larger than {} bytes ([mcp] max_body_bytes)",
                g.max_body
            ),
        )
    };
    if declared.is_some_and(|n| n > g.max_body) {
        return too_large();
    }
    let new_session = !headers.contains_key("mcp-session-id");
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, g.max_body).await else {
        return too_large();
    };
    let parsed: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return rpc_error(400, -32700, &format!("Parse error: {e}")),
    };
    let is_message = |v: &Value| v.get("jsonrpc").and_then(Value::as_str) == Some("2.0");
    if parsed.is_array() {
        return rpc_error(
            400,
            -32600,
            "Invalid Request: JSON-RPC batches are not supported; send one message per request",
        );
    }
    if !is_message(&parsed) {
        return rpc_error(
            400,
            -32600,
            "Invalid Request: expected a JSON-RPC 2.0 message",
        );
    }
    let initializing = parsed.get("method").and_then(Value::as_str) == Some("initialize");
    if new_session && initializing {
        let open = g.sessions.sessions.read().await.len();
        if open >= g.max_sessions {
            return rpc_error(
                503,
                -32000,
                &format!(
                    "too many sessions ({open}, [mcp] max_sessions); close one (DELETE /mcp) or try later"
                ),
            );
        }
    }
    let req = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
    next.run(req).await
}

/// Serves MCP streamable HTTP at `http://ADDR/mcp` until Ctrl-C.
///
/// Loopback only unless `allow_remote`; a remote bind needs a bearer token. Host and Origin are
/// checked (DNS rebinding), sessions are bounded and expire when idle, bodies are bounded, and
/// malformed JSON gets a JSON-RPC parse error.
pub async fn serve_http(server: McpServer, opts: HttpOptions) -> Result<(), String> {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};

    let addr = opts.addr;
    let loopback = addr.ip().is_loopback();
    if !loopback && !opts.allow_remote {
        return Err(format!(
            "{addr} is not a loopback address: the server would be reachable from the network. \
             Pass --allow-remote to mean it (a bearer token is then required: set \
             AIFIRST_HTTP_TOKEN, or one is generated and printed once)"
        ));
    }
    let token = match (&opts.token, loopback) {
        (Some(t), _) => Some(t.clone()),
        (None, true) => None,
        (None, false) => {
            let t = random_token(24);
            eprintln!("bearer token for this server (shown once; clients send `Authorization: Bearer <token>`):\n{t}");
            Some(t)
        }
    };
    let mut hosts = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if !addr.ip().is_unspecified() {
        // The address bound (127.0.0.2, a LAN address with --allow-remote) is a Host it serves.
        hosts.push(addr.ip().to_string());
    }
    hosts.extend(opts.allowed_hosts.iter().map(|h| split_host_port(h).0));
    let mut manager = LocalSessionManager::default();
    manager.session_config.keep_alive = Some(opts.session_idle);
    let manager = Arc::new(manager);
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts.clone())
        .with_max_request_body_bytes(opts.max_body_bytes);
    let cancel = config.cancellation_token.clone();
    let service = StreamableHttpService::new(move || Ok(server.clone()), manager.clone(), config);
    let gate_state = Arc::new(Gate {
        token,
        hosts,
        origins: opts.allowed_origins.clone(),
        max_body: opts.max_body_bytes,
        max_sessions: opts.max_sessions,
        sessions: manager,
    });
    let router = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(gate_state, gate));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    eprintln!("serving MCP on http://{local}/mcp (Ctrl-C stops)");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            // Ends open sessions and event streams, so shutdown does not wait on them.
            cancel.cancel();
        })
        .await
        .map_err(|e| format!("HTTP server failed: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lone_surrogates_are_mended_and_nothing_else_changes() {
        let m = |t: &str| mend_surrogates(t.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(m(r#"{"a":"x"}"#), None);
        assert_eq!(m(r#"{"a":"\ud83d\ude00"}"#), None, "a whole pair");
        assert_eq!(m(r#"{"a":"\\ud800"}"#), None, "an escaped backslash");
        assert_eq!(m(r#"{"a":"\ude00x"}"#).unwrap(), r#"{"a":"\ufffdx"}"#);
        assert_eq!(m(r#"{"a":"\uD83D"}"#).unwrap(), r#"{"a":"\ufffd"}"#);
        assert_eq!(
            m(r#"{"a":"\ud83d\u0041\\\ud800"}"#).unwrap(),
            r#"{"a":"\ufffd\u0041\\\ufffd"}"#
        );
        assert_eq!(
            m(r#"{"a":"\ud83d\ud83d\ude00"}"#).unwrap(),
            r#"{"a":"\ufffd\ud83d\ude00"}"#
        );
        // Cut short at the end of the line: left for the parser to refuse.
        assert_eq!(m(r#"\ud8"#), None);
        let mended = m(r#"{"a":"\ude00x"}"#).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&mended).unwrap()["a"],
            "\u{fffd}x"
        );
    }

    #[test]
    fn unreadable_messages_keep_their_id_and_nesting_matches_serde() {
        assert_eq!(
            request_id(br#"{"jsonrpc":"2.0","id":7,"method":"#),
            Some("7".into())
        );
        assert_eq!(
            request_id(br#"{"params":{"id":1},"id" : "a\"b","x":["#),
            Some(r#""a\"b""#.into())
        );
        assert_eq!(request_id(br#"{"method":"x","params":{"id":3}}"#), None);
        assert_eq!(request_id(br#"{"id":1.5}"#), None);
        assert_eq!(request_id(br#"{"id":null}"#), None);
        for n in [MAX_NESTING - 1, MAX_NESTING, MAX_NESTING + 1] {
            let text = format!("{}1{}", "[".repeat(n), "]".repeat(n));
            assert_eq!(
                nesting(text.as_bytes(), MAX_NESTING) > MAX_NESTING,
                serde_json::from_str::<Value>(&text).is_err(),
                "{n} levels"
            );
        }
        assert_eq!(nesting(br#"{"a":"[[[[","b":[1]}"#, 10), 2);
    }

    fn server(dir: &std::path::Path) -> McpServer {
        let engine = Engine::open(
            aifirst::Registry::new().unwrap(),
            aifirst::Policy::default(),
            dir,
        )
        .unwrap();
        McpServer::new(
            engine,
            ServeOptions {
                name: "t".into(),
                version: "0".into(),
                session: "s".into(),
                per_client_sessions: true,
                meta_tools: true,
                auto_confirm: false,
                toolset: super::Toolset::All,
            },
        )
        .unwrap()
    }

    #[test]
    fn pending_confirmations_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let s = server(dir.path());
        let first = s.remember("x", &json!({"i": 0}));
        for i in 1..(MAX_PENDING + 100) {
            s.remember("x", &json!({"i": i}));
        }
        assert_eq!(s.pending_confirmations(), MAX_PENDING);
        // The oldest went first: its token no longer confirms anything.
        let req: CallToolRequestParams =
            serde_json::from_value(json!({"name": "x", "arguments": {"i": 0}})).unwrap();
        assert!(s
            .take_confirmation(&first, "x", &json!({"i": 0}), &req)
            .is_err());
    }

    #[test]
    fn confirmation_tokens_are_not_guessable() {
        let dir = tempfile::tempdir().unwrap();
        let s = server(dir.path());
        let a = s.remember("x", &json!({}));
        let b = s.remember("x", &json!({}));
        assert_ne!(a, b);
        assert!(a.len() > 40, "{a}");
        assert_ne!(a[a.len() - 32..], b[b.len() - 32..]);
    }

    #[test]
    fn file_uris_become_paths() {
        use std::path::PathBuf;
        assert_eq!(
            file_uri_path("file:///home/a%20b/x"),
            Some(PathBuf::from("/home/a b/x"))
        );
        assert_eq!(
            file_uri_path("file://localhost/srv"),
            Some(PathBuf::from("/srv"))
        );
        assert_eq!(file_uri_path("https://example.com/x"), None);
        assert_eq!(file_uri_path("file://host/x"), None);
        assert_eq!(file_uri_path("file:///a%00b"), None);
        assert_eq!(
            file_uri_path("file:///bad%zz"),
            Some(PathBuf::from("/bad%zz"))
        );
    }

    #[test]
    fn origins_and_hosts() {
        let g = Gate {
            token: None,
            hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            origins: vec![
                "https://app.example.com".into(),
                "http://dev.example:*".into(),
            ],
            max_body: 1,
            max_sessions: 1,
            sessions: Arc::new(Default::default()),
        };
        assert!(g.host_ok("localhost:8080"));
        assert!(g.host_ok("[::1]:80"));
        assert!(g.host_ok("127.0.0.1"));
        assert!(!g.host_ok("evil.example:8080"));
        assert!(!g.host_ok("127.0.0.1.evil.example"));
        assert!(g.origin_ok("http://localhost:6274"));
        assert!(g.origin_ok("http://[::1]:3000"));
        assert!(g.origin_ok("https://app.example.com"));
        assert!(!g.origin_ok("https://app.example.com:8443"));
        assert!(g.origin_ok("http://dev.example:5173"));
        assert!(!g.origin_ok("http://evil.example"));
        assert!(!g.origin_ok("null"));
        assert!(!g.origin_ok("file://"));
    }
}
