//! OpenAPI operations → capability IR. One capability per operation; an operation that cannot be
//! lowered is skipped with a diagnostic and the rest import.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use aifirst_capability::{Annotations, Expr, Root};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::normalize::{swagger2_to_oas3, Dialect};
use super::refs::{DocId, DocSet};
use super::schema::{Direction, SchemaBuilder};
use crate::diag::{push_token, Diagnostic, Severity};
use crate::driver::{Lowered, Options, Retained, Stats};
use crate::ir::{
    ApiInfo, Binding, BodyBinding, BodyShape, Capability, Declared, HttpBinding, HttpHints, Ir,
    ParamBinding, ParamLocation, SecurityScheme, Server, SourceRef,
};
use crate::naming::{self, Namer, Rename};

/// HTTP methods an OpenAPI path item can hold, in the order the specification lists them.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Reads an OpenAPI description (Swagger 2.0, OpenAPI 3.0 or 3.1; JSON or YAML) into the IR,
/// before inference (the driver runs it).
///
/// `Err` is a diagnostic saying why nothing at all could be used (unreadable file, not an API
/// description); everything else comes back as diagnostics beside the IR.
pub fn lower(path: &Path, opts: &Options) -> Result<Lowered, Box<Diagnostic>> {
    let display = path.display().to_string();
    let fatal = |code: &'static str, message: String, help: &str| {
        Box::new(
            Diagnostic::new(
                Severity::Error,
                code,
                message,
                crate::diag::Location {
                    file: display.clone(),
                    pointer: String::new(),
                    line: None,
                },
            )
            .with_help(help),
        )
    };
    let mut docs = DocSet::open(path).map_err(|e| {
        fatal(
            "unreadable",
            e.to_string(),
            "forge reads OpenAPI descriptions written in JSON or YAML",
        )
    })?;
    let dialect = Dialect::detect(docs.root()).map_err(|why| {
        fatal(
            "not-openapi",
            why,
            "the root must be an object with `openapi: 3.x` or `swagger: \"2.0\"`",
        )
    })?;
    if dialect == Dialect::Swagger2 {
        swagger2_to_oas3(docs.root_mut());
    }
    super::normalize::strip_unread_extensions(docs.root_mut());
    let mut diagnostics = Vec::new();
    docs.load_references(&mut diagnostics);
    let mut lowerer = Lowerer {
        docs: &docs,
        schemas: SchemaBuilder::new(&docs),
        diags: diagnostics,
        namer: Namer::new(opts.max_name_len),
        max_tool_tokens: opts.max_tool_tokens,
        stats: Stats::default(),
        seen_ids: HashMap::new(),
        outputs: Interner::default(),
    };
    let capabilities = lowerer.lower_paths();
    let root = docs.root();
    let info = root.get("info");
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let api = ApiInfo {
        title: text(info.and_then(|i| i.get("title"))),
        version: text(info.and_then(|i| i.get("version"))),
        source_format: dialect.label(),
        file: display,
    };
    let security_schemes = lowerer.security_schemes();
    let Lowerer {
        schemas,
        mut diags,
        stats,
        ..
    } = lowerer;
    let (schema_diags, memo) = schemas.into_parts();
    diags.extend(schema_diags);
    let ir = Ir {
        api,
        capabilities,
        security_schemes,
    };
    Ok(Lowered {
        ir,
        diagnostics: diags,
        stats,
        retained: Retained::new((docs, memo)),
    })
}

struct Lowerer<'a> {
    docs: &'a DocSet,
    schemas: SchemaBuilder<'a>,
    diags: Vec<Diagnostic>,
    namer: Namer,
    max_tool_tokens: Option<usize>,
    stats: Stats,
    /// operationId → where it was first seen.
    seen_ids: HashMap<String, String>,
    /// Output schemas made so far, one copy of each.
    outputs: Interner,
}

/// One shared copy of each distinct output schema text.
#[derive(Default)]
struct Interner(std::collections::HashSet<Interned>);

struct Interned(Arc<RawValue>);

impl PartialEq for Interned {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Eq for Interned {}

impl std::hash::Hash for Interned {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.get().hash(state)
    }
}

impl std::borrow::Borrow<str> for Interned {
    fn borrow(&self) -> &str {
        self.0.get()
    }
}

impl Interner {
    fn intern(&mut self, raw: Box<RawValue>) -> Arc<RawValue> {
        if let Some(have) = self.0.get(raw.get()) {
            return Arc::clone(&have.0);
        }
        let shared: Arc<RawValue> = Arc::from(raw);
        self.0.insert(Interned(Arc::clone(&shared)));
        shared
    }
}

/// A parameter as found: (document, pointer, object, name, location).
type ParamSite<'v> = (DocId, String, &'v Map<String, Value>, String, ParamLocation);

/// One skipped operation: why, and where.
struct Skip {
    message: String,
    doc: DocId,
    pointer: String,
    help: &'static str,
}

impl Skip {
    fn new(message: impl Into<String>, doc: DocId, pointer: &str, help: &'static str) -> Self {
        Skip {
            message: message.into(),
            doc,
            pointer: pointer.to_string(),
            help,
        }
    }
}

impl<'a> Lowerer<'a> {
    fn warn(&mut self, code: &'static str, message: String, doc: DocId, pointer: &str) {
        let loc = self.docs.location(doc, pointer);
        self.diags
            .push(Diagnostic::new(Severity::Warning, code, message, loc));
    }

    fn lower_paths(&mut self) -> Vec<Capability> {
        let docs = self.docs;
        let root = docs.root();
        let paths = match root.get("paths") {
            Some(Value::Object(p)) => Some(p),
            Some(_) => {
                self.warn(
                    "invalid-paths",
                    "`paths` is not an object; no operations imported".into(),
                    0,
                    "/paths",
                );
                None
            }
            None => None,
        };
        // Sized up front: a `Capability` is large, and growing the vector one doubling at a time
        // copied every one made so far (8% of `forge inspect` on a 10,000-operation description).
        let mut out = Vec::with_capacity(
            paths
                .map(|p| {
                    p.values()
                        .filter_map(Value::as_object)
                        .map(|o| o.len())
                        .sum()
                })
                .unwrap_or(0),
        );
        if let Some(paths) = paths {
            // Every operation's natural name first, so a name shortened another way to stay
            // unique never takes one a later operation would have had.
            for (path, item) in paths {
                let Some(item) = item.as_object().filter(|_| !path.starts_with("x-")) else {
                    continue;
                };
                for method in METHODS {
                    let Some(op) = item.get(method).and_then(Value::as_object) else {
                        continue;
                    };
                    self.namer
                        .reserve(&base_name(operation_id(op).as_deref(), method, path));
                }
            }
            for (path, item) in paths {
                if path.starts_with("x-") {
                    continue;
                }
                let at = push_token("/paths", path);
                self.lower_path_item(path, item, &at, &mut out);
            }
        }
        if out.is_empty() && self.stats.skipped == 0 {
            let has_webhooks = root
                .get("webhooks")
                .and_then(Value::as_object)
                .is_some_and(|w| !w.is_empty());
            let message = if has_webhooks {
                "the description has webhooks but no paths: webhooks are calls the API makes, not tools an agent can call"
            } else {
                "the description has no operations"
            };
            self.diags.push(
                Diagnostic::new(
                    Severity::Warning,
                    "no-operations",
                    message,
                    self.docs.location(0, "/paths"),
                )
                .with_help("add operations under `paths`"),
            );
        }
        out
    }

    fn lower_path_item(&mut self, path: &str, item: &Value, at: &str, out: &mut Vec<Capability>) {
        let docs = self.docs;
        let (doc, item_at, item) = match docs.follow(0, at, item) {
            Ok(t) => t,
            Err(e) => {
                self.diags.push(Diagnostic::new(
                    Severity::Error,
                    "unresolved-path-item",
                    format!("path item `{path}` skipped: {e}"),
                    docs.location(0, at),
                ));
                let ops = item.as_object().map(|m| m.len()).unwrap_or(1);
                self.stats.operations += ops;
                self.stats.skipped += ops;
                return;
            }
        };
        let Some(item_obj) = item.as_object() else {
            self.warn(
                "invalid-path-item",
                format!("path item `{path}` is not an object; skipped"),
                doc,
                &item_at,
            );
            return;
        };
        for (method, op) in item_obj {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            self.stats.operations += 1;
            let op_at = push_token(&item_at, method);
            match self.lower_operation(path, method, op, item_obj, doc, &op_at) {
                Ok(cap) => {
                    self.stats.imported += 1;
                    out.push(cap);
                }
                Err(skip) => {
                    self.stats.skipped += 1;
                    let loc = self.docs.location(skip.doc, &skip.pointer);
                    self.diags.push(
                        Diagnostic::new(
                            Severity::Error,
                            "operation-skipped",
                            format!("{} {path} skipped: {}", method.to_uppercase(), skip.message),
                            loc,
                        )
                        .with_help(skip.help),
                    );
                }
            }
        }
    }

    fn lower_operation(
        &mut self,
        path: &str,
        method: &str,
        op: &Value,
        item: &Map<String, Value>,
        doc: DocId,
        at: &str,
    ) -> Result<Capability, Skip> {
        let Some(op) = op.as_object() else {
            return Err(Skip::new(
                "the operation is not an object",
                doc,
                at,
                "an operation is a mapping with `responses` and, usually, an `operationId`",
            ));
        };
        let operation_id = operation_id(op);
        if let Some(id) = &operation_id {
            let here = self.docs.location(doc, at).to_string();
            if let Some(first) = self.seen_ids.get(id) {
                let message = format!(
                    "operationId `{id}` is also used at {first}; this one gets a suffixed name"
                );
                self.warn(
                    "duplicate-operation-id",
                    message,
                    doc,
                    &push_token(at, "operationId"),
                );
            } else {
                self.seen_ids.insert(id.clone(), here);
            }
        }

        // ---- parameters: path-level first, overridden by operation-level with the same (name, in)
        let mut raw_params: Vec<(String, &Value)> = Vec::new();
        for (level, list) in [
            ("/parameters", item.get("parameters")),
            ("", op.get("parameters")),
        ] {
            let base = if level.is_empty() {
                push_token(at, "parameters")
            } else {
                // path-level parameters sit beside the methods
                let parent = at.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
                format!("{parent}{level}")
            };
            match list {
                None => {}
                Some(Value::Array(items)) => {
                    for (i, p) in items.iter().enumerate() {
                        raw_params.push((format!("{base}/{i}"), p));
                    }
                }
                Some(_) => {
                    return Err(Skip::new(
                        "`parameters` is not a list",
                        doc,
                        &base,
                        "`parameters` must be a list of Parameter Objects",
                    ))
                }
            }
        }
        let mut params: Vec<ParamSite<'_>> = Vec::new();
        for (p_at, p) in raw_params {
            let (p_doc, p_ptr, p) = self.docs.follow(doc, &p_at, p).map_err(|e| {
                Skip::new(
                    format!("parameter reference: {e}"),
                    doc,
                    &p_at,
                    "fix or vendor the referenced parameter",
                )
            })?;
            let Some(obj) = p.as_object() else {
                return Err(Skip::new(
                    "a parameter is not an object",
                    p_doc,
                    &p_ptr,
                    "a parameter needs `name` and `in`",
                ));
            };
            let name = obj.get("name").and_then(Value::as_str);
            let location = obj.get("in").and_then(Value::as_str);
            let (Some(name), Some(loc_text)) = (name, location) else {
                return Err(Skip::new(
                    "a parameter lacks `name` or `in`",
                    p_doc,
                    &p_ptr,
                    "a parameter needs `name` and `in`",
                ));
            };
            let Some(loc) = ParamLocation::parse(loc_text) else {
                return Err(Skip::new(
                    format!("parameter `{name}` has unknown location `in: {loc_text}`"),
                    p_doc,
                    &p_ptr,
                    "`in` is one of path, query, header, cookie",
                ));
            };
            if loc == ParamLocation::Header
                && ["accept", "content-type", "authorization"]
                    .contains(&name.to_ascii_lowercase().as_str())
            {
                continue; // OpenAPI: these header parameters are ignored.
            }
            if let Some(existing) = params
                .iter_mut()
                .find(|(_, _, _, n, l)| n == name && *l == loc)
            {
                *existing = (p_doc, p_ptr, obj, name.to_string(), loc);
            } else {
                params.push((p_doc, p_ptr, obj, name.to_string(), loc));
            }
        }
        // Path template variables without a declaration: accept them as required strings.
        for var in template_vars(path) {
            if !params
                .iter()
                .any(|(_, _, _, n, l)| n == &var && *l == ParamLocation::Path)
            {
                self.warn("undeclared-path-param", format!("path parameter `{var}` of `{path}` is not declared; assumed to be a required string"), doc, at);
                params.push((doc, at.to_string(), &EMPTY_PARAM, var, ParamLocation::Path));
            }
        }

        self.schemas.begin();
        let mut properties = Map::new();
        let mut required: Vec<String> = Vec::new();
        let mut bindings = Vec::new();
        for (p_doc, p_ptr, obj, name, loc) in &params {
            if loc == &ParamLocation::Path && !template_vars(path).contains(name) {
                self.warn(
                    "unused-path-param",
                    format!("path parameter `{name}` does not appear in `{path}`; ignored"),
                    *p_doc,
                    p_ptr,
                );
                continue;
            }
            let mut schema = match (obj.get("schema"), obj.get("content")) {
                (Some(s), _) => {
                    self.schemas
                        .convert(*p_doc, &push_token(p_ptr, "schema"), s, Direction::Input)
                }
                (None, Some(Value::Object(content))) => match content.iter().next() {
                    Some((mt, media)) => match media.get("schema") {
                        Some(s) => {
                            let s_at = push_token(
                                &push_token(&push_token(p_ptr, "content"), mt),
                                "schema",
                            );
                            self.schemas.convert(*p_doc, &s_at, s, Direction::Input)
                        }
                        None => json!({}),
                    },
                    None => json!({}),
                },
                _ if obj.is_empty() => json!({"type": "string"}),
                _ => json!({}),
            };
            if let Some(s) = schema.as_object_mut() {
                if let Some(Value::String(d)) = obj.get("description") {
                    if !s.contains_key("description") && !d.is_empty() {
                        s.insert("description".into(), json!(d));
                    }
                }
                if obj.get("deprecated") == Some(&Value::Bool(true)) {
                    s.insert("deprecated".into(), json!(true));
                }
            }
            let is_required =
                *loc == ParamLocation::Path || obj.get("required") == Some(&Value::Bool(true));
            let mut key = naming::property_name(name);
            if properties.contains_key(&key) {
                key = unique_key(&properties, &format!("{}_{}", loc.as_str(), key));
            }
            if is_required {
                required.push(key.clone());
            }
            properties.insert(key.clone(), schema);
            bindings.push(ParamBinding {
                property: key,
                name: name.clone(),
                location: *loc,
                required: is_required,
                style: obj.get("style").and_then(Value::as_str).map(str::to_string),
                explode: obj.get("explode").and_then(Value::as_bool),
                allow_reserved: obj.get("allowReserved") == Some(&Value::Bool(true)),
            });
        }

        // ---- request body
        let body = match op.get("requestBody") {
            None => None,
            Some(rb) => {
                let rb_at = push_token(at, "requestBody");
                let (b_doc, b_ptr, rb) = self.docs.follow(doc, &rb_at, rb).map_err(|e| {
                    Skip::new(
                        format!("request body reference: {e}"),
                        doc,
                        &rb_at,
                        "fix or vendor the referenced request body",
                    )
                })?;
                self.lower_body(b_doc, &b_ptr, rb, &mut properties, &mut required)
            }
        };
        let mut input = Map::new();
        input.insert("type".into(), json!("object"));
        input.insert("properties".into(), Value::Object(properties));
        if !required.is_empty() {
            input.insert("required".into(), json!(required));
        }
        // Shared, not copied: the budget below decides whether the schema keeps them.
        let defs = self.schemas.end_shared();

        // ---- output
        let output_schema = self.output_schema(op, doc, at);

        // ---- name, text, binding
        let base = base_name(operation_id.as_deref(), method, path);
        let (name, rename) = self.namer.assign(&base);
        if let Some(r) = rename {
            self.stats.renamed += 1;
            let why = match r {
                Rename::Shortened => {
                    "longer than the name budget; shortened: repeated and filler words dropped, long words abbreviated, then middle words dropped, or a hash when none of that fits (see --max-name-len)"
                }
                Rename::Deduplicated => "already taken by an earlier operation; suffixed",
            };
            self.diags.push(Diagnostic::new(
                Severity::Info,
                "renamed",
                format!("`{base}` named `{name}`: {why}"),
                self.docs.location(doc, at),
            ));
        }
        let summary = op
            .get("summary")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let long = op
            .get("description")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let description = match (summary, long) {
            (Some(s), Some(d)) if d.starts_with(s) => d.to_string(),
            (Some(s), Some(d)) => format!("{s}\n\n{d}"),
            (Some(s), None) => s.to_string(),
            (None, Some(d)) => d.to_string(),
            (None, None) => format!("{} {path}", method.to_uppercase()),
        };
        let tags = op
            .get("tags")
            .and_then(Value::as_array)
            .map(|t| {
                t.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let servers = servers_of(op.get("servers"))
            .or_else(|| servers_of(item.get("servers")))
            .or_else(|| servers_of(self.docs.root().get("servers")))
            .unwrap_or_default();
        let security = security_of(op.get("security"))
            .or_else(|| security_of(self.docs.root().get("security")))
            .unwrap_or_default();
        let loc = self.docs.location(doc, at);
        let hints = self.hints(op, doc, at);
        let declared = Declared {
            effects: op.get("x-aifirst-effects").cloned(),
            undo: op.get("x-aifirst-undo").cloned(),
            annotations: op.get("x-mcp-annotations").cloned(),
        };
        let mut cap = Capability {
            name,
            operation_id,
            title: summary.map(str::to_string),
            description,
            tags,
            deprecated: op.get("deprecated") == Some(&Value::Bool(true)),
            input_schema: Value::Object(input),
            output_schema,
            effects: Vec::new(),
            annotations: Annotations::default(),
            undo: None,
            binding: Binding::Http(HttpBinding {
                method: method.to_uppercase(),
                path: path.to_string(),
                params: bindings,
                body,
                servers,
                security,
                hints,
            }),
            source: SourceRef {
                file: loc.file,
                pointer: loc.pointer,
                line: loc.line,
            },
            declared,
        };
        let location = self.docs.location(doc, at);
        if let Some(d) = crate::budget::fit_reported(
            &mut cap,
            &defs,
            self.max_tool_tokens,
            location,
            &mut self.stats,
        ) {
            self.diags.push(d);
        }
        Ok(cap)
    }

    /// The success statuses, and the success response's `Location` header and links.
    fn hints(&self, op: &Map<String, Value>, doc: DocId, at: &str) -> HttpHints {
        let mut hints = HttpHints::default();
        let Some(responses) = op.get("responses").and_then(Value::as_object) else {
            return hints;
        };
        let mut codes: Vec<&String> = responses.keys().filter(|k| k.starts_with('2')).collect();
        codes.sort();
        hints.statuses = codes.iter().map(|c| c.to_string()).collect();
        let r_base = push_token(at, "responses");
        let Some(code) = codes.first() else {
            return hints;
        };
        let Some(raw) = responses.get(*code) else {
            return hints;
        };
        let Ok((r_doc, r_at, response)) = self.docs.follow(doc, &push_token(&r_base, code), raw)
        else {
            return hints;
        };
        hints.location_header = response
            .get("headers")
            .and_then(Value::as_object)
            .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("location")));
        let links = response.get("links").and_then(Value::as_object);
        for (name, link) in links.into_iter().flatten() {
            let l_at = push_token(&push_token(&r_at, "links"), name);
            let Ok((_, _, link)) = self.docs.follow(r_doc, &l_at, link) else {
                continue;
            };
            let Some(target) = link.get("operationId").and_then(Value::as_str) else {
                continue;
            };
            let params = link
                .get("parameters")
                .and_then(Value::as_object)
                .map(|p| {
                    p.iter()
                        .filter_map(|(k, v)| Some((k.clone(), link_expression(v.as_str()?)?)))
                        .collect()
                })
                .unwrap_or_default();
            hints.links.push((target.to_string(), params));
        }
        hints
    }

    fn lower_body(
        &mut self,
        doc: DocId,
        at: &str,
        rb: &Value,
        properties: &mut Map<String, Value>,
        required: &mut Vec<String>,
    ) -> Option<BodyBinding> {
        let content = rb.get("content").and_then(Value::as_object)?;
        let (media_type, media) = content.iter().min_by_key(|(mt, _)| media_rank(mt))?;
        let body_required = rb.get("required") == Some(&Value::Bool(true));
        let schema_at = push_token(
            &push_token(&push_token(at, "content"), media_type),
            "schema",
        );
        let schema = match media.get("schema") {
            Some(s) => self.schemas.convert(doc, &schema_at, s, Direction::Input),
            None if media_rank(media_type) >= 4 => json!({"type": "string", "format": "binary"}),
            None => json!({}),
        };
        let schema = merge_all_of(&schema).unwrap_or(schema);
        let flattenable = media_rank(media_type) <= 3
            && schema
                .get("properties")
                .and_then(Value::as_object)
                .is_some_and(|p| !p.is_empty())
            && schema.get("type").is_none_or(|t| t == "object")
            && ["allOf", "anyOf", "oneOf", "$ref", "if", "not"]
                .iter()
                .all(|k| schema.get(*k).is_none());
        if flattenable {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                let keys: Vec<(String, String)> = props
                    .keys()
                    .map(|k| (naming::property_name(k), k.clone()))
                    .collect();
                let unique: std::collections::HashSet<&String> =
                    keys.iter().map(|(k, _)| k).collect();
                let collides = unique.len() != keys.len()
                    || keys.iter().any(|(k, _)| properties.contains_key(k));
                if !collides {
                    let body_required_fields: Vec<&str> = schema
                        .get("required")
                        .and_then(Value::as_array)
                        .map(|r| r.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    for (key, field) in &keys {
                        if let Some(v) = props.get(field) {
                            properties.insert(key.clone(), v.clone());
                        }
                        if body_required && body_required_fields.contains(&field.as_str()) {
                            required.push(key.clone());
                        }
                    }
                    return Some(BodyBinding {
                        media_type: media_type.clone(),
                        required: body_required,
                        shape: BodyShape::Flattened { fields: keys },
                    });
                }
            }
        }
        let key = unique_key(properties, "body");
        let mut schema = schema;
        if let (Some(s), Some(Value::String(d))) = (schema.as_object_mut(), rb.get("description")) {
            if !s.contains_key("description") && !d.is_empty() {
                s.insert("description".into(), json!(d));
            }
        }
        properties.insert(key.clone(), schema);
        if body_required {
            required.push(key.clone());
        }
        Some(BodyBinding {
            media_type: media_type.clone(),
            required: body_required,
            shape: BodyShape::Wrapped { property: key },
        })
    }

    /// The schema of the first 2xx response (by status code) that has content.
    fn output_schema(
        &mut self,
        op: &Map<String, Value>,
        doc: DocId,
        at: &str,
    ) -> Option<Arc<RawValue>> {
        let responses = op.get("responses")?.as_object()?;
        let mut codes: Vec<&String> = responses
            .keys()
            .filter(|k| k.starts_with('2') && k.len() == 3)
            .collect();
        codes.sort_by_key(|k| (k.as_str() == "2XX" || k.as_str() == "2xx", k.to_string()));
        let r_base = push_token(at, "responses");
        for code in codes {
            let r_at = push_token(&r_base, code);
            let Some(raw) = responses.get(code) else {
                continue;
            };
            let Ok((r_doc, r_ptr, response)) = self.docs.follow(doc, &r_at, raw) else {
                continue;
            };
            let Some(content) = response.get("content").and_then(Value::as_object) else {
                continue;
            };
            let Some((mt, media)) = content.iter().min_by_key(|(mt, _)| media_rank(mt)) else {
                continue;
            };
            let Some(schema) = media.get("schema") else {
                continue;
            };
            let s_at = push_token(&push_token(&push_token(&r_ptr, "content"), mt), "schema");
            self.schemas.begin();
            let out = self
                .schemas
                .convert(r_doc, &s_at, schema, Direction::Output);
            let defs = self.schemas.end_shared();
            // Output schemas keep to the same budget as tools (they are served with
            // --output-schemas), never below two levels: undo binds to fields there.
            let out = match self.max_tool_tokens {
                Some(t) => crate::budget::fit_output(out, &defs, t.saturating_mul(4)),
                None => crate::budget::with_defs(out, defs.materialize()),
            };
            let raw = serde_json::value::to_raw_value(&out).ok()?;
            return Some(self.outputs.intern(raw));
        }
        None
    }

    fn security_schemes(&mut self) -> BTreeMap<String, SecurityScheme> {
        let mut out = BTreeMap::new();
        let Some(schemes) = self
            .docs
            .root()
            .pointer("/components/securitySchemes")
            .and_then(Value::as_object)
        else {
            return out;
        };
        for (name, raw) in schemes {
            let at = push_token("/components/securitySchemes", name);
            let Ok((_, _, s)) = self.docs.follow(0, &at, raw) else {
                continue;
            };
            let text = |k: &str| {
                s.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let scheme = match s.get("type").and_then(Value::as_str) {
                Some("apiKey") => SecurityScheme::ApiKey {
                    name: text("name"),
                    location: text("in"),
                },
                Some("http") => SecurityScheme::Http {
                    scheme: text("scheme").to_ascii_lowercase(),
                    bearer_format: s
                        .get("bearerFormat")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                },
                Some("oauth2") => SecurityScheme::Oauth2 {
                    flows: s
                        .get("flows")
                        .and_then(Value::as_object)
                        .map(|f| f.keys().cloned().collect())
                        .unwrap_or_default(),
                },
                Some("openIdConnect") => SecurityScheme::OpenIdConnect {
                    url: text("openIdConnectUrl"),
                },
                Some("mutualTLS") => SecurityScheme::MutualTls,
                other => {
                    let message =
                        format!("security scheme `{name}` has unknown type {other:?}; ignored");
                    self.warn("unknown-security-scheme", message, 0, &at);
                    continue;
                }
            };
            out.insert(name.clone(), scheme);
        }
        out
    }
}

/// Merges `allOf: [object, object, …]` into one object when every member is a plain object schema
/// (only `type: object`, `properties`, `required`, `description`, `title`) and no property is
/// defined twice. `None` when the schema is not of that shape.
pub fn merge_all_of(schema: &Value) -> Option<Value> {
    let obj = schema.as_object()?;
    let members = obj.get("allOf")?.as_array()?;
    let plain_root = obj
        .keys()
        .all(|k| ["allOf", "type", "description", "title"].contains(&k.as_str()));
    if !plain_root || obj.get("type").is_some_and(|t| t != "object") {
        return None;
    }
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    let mut description = obj.get("description").cloned();
    for m in members {
        let m = match m.get("allOf") {
            Some(_) => merge_all_of(m)?,
            None => m.clone(),
        };
        let mo = m.as_object()?;
        let plain = mo.keys().all(|k| {
            ["type", "properties", "required", "description", "title"].contains(&k.as_str())
        });
        if !plain || mo.get("type").is_some_and(|t| t != "object") {
            return None;
        }
        for (k, v) in mo
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if properties.insert(k.clone(), v.clone()).is_some() {
                return None;
            }
        }
        for r in mo
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !required.contains(r) {
                required.push(r.clone());
            }
        }
        if description.is_none() {
            description = mo.get("description").cloned();
        }
    }
    let mut out = Map::new();
    out.insert("type".into(), json!("object"));
    if let Some(d) = description {
        out.insert("description".into(), d);
    }
    out.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        out.insert("required".into(), Value::Array(required));
    }
    Some(Value::Object(out))
}

static EMPTY_PARAM: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

/// An OpenAPI runtime expression as an undo argument expression:
/// `$response.body#/id` → `$result.id`, `$request.path.petId` → `$args.petId`. A pointer whose
/// tokens are not plain field names has no expression.
fn link_expression(expr: &str) -> Option<Expr> {
    if let Some(ptr) = expr.strip_prefix("$response.body#") {
        let path: Vec<String> = crate::diag::split_pointer(ptr)?;
        if path.is_empty() {
            return Some(Expr::from_static(Root::Result, &[]));
        }
        return Expr::fields(Root::Result, &path).ok();
    }
    for prefix in ["$request.path.", "$request.query.", "$request.header."] {
        if let Some(name) = expr.strip_prefix(prefix) {
            return Expr::fields(Root::Args, &[name]).ok();
        }
    }
    None
}

/// `{petId}` style variables of a path template, in order.
/// An operation's `operationId`, when it has a non-blank one.
fn operation_id(op: &Map<String, Value>) -> Option<String> {
    match op.get("operationId") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// The name an operation asks for: its operationId in snake_case, else method and path.
fn base_name(operation_id: Option<&str>, method: &str, path: &str) -> String {
    operation_id
        .map(naming::snake_case)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| naming::from_method_path(method, path))
}

pub fn template_vars(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        out.push(after[..close].to_string());
        rest = &after[close + 1..];
    }
    out
}

fn unique_key(props: &Map<String, Value>, base: &str) -> String {
    if !props.contains_key(base) {
        return base.to_string();
    }
    (2..)
        .map(|i| format!("{base}_{i}"))
        .find(|k| !props.contains_key(k))
        .unwrap_or_else(|| base.to_string())
}

/// Lower is preferred: JSON first, then form encodings, then anything else.
fn media_rank(mt: &str) -> u8 {
    let mt = mt
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mt.as_str() {
        "application/json" => 0,
        m if m.ends_with("+json") || m.ends_with("/json") => 1,
        "application/x-www-form-urlencoded" => 2,
        "multipart/form-data" => 3,
        "*/*" | "text/plain" => 4,
        _ => 5,
    }
}

fn servers_of(v: Option<&Value>) -> Option<Vec<Server>> {
    let list = v?.as_array()?;
    let servers: Vec<Server> = list
        .iter()
        .filter_map(|s| {
            let url = s.get("url")?.as_str()?.to_string();
            let variables = s
                .get("variables")
                .and_then(Value::as_object)
                .map(|vars| {
                    vars.iter()
                        .filter_map(|(k, v)| {
                            let d = v.get("default")?;
                            Some((
                                k.clone(),
                                d.as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| d.to_string()),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(Server { url, variables })
        })
        .collect();
    if servers.is_empty() {
        None
    } else {
        Some(servers)
    }
}

fn security_of(v: Option<&Value>) -> Option<Vec<BTreeMap<String, Vec<String>>>> {
    let list = v?.as_array()?;
    Some(
        list.iter()
            .filter_map(Value::as_object)
            .map(|req| {
                req.iter()
                    .map(|(k, scopes)| {
                        let scopes = scopes
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|s| s.as_str().map(str::to_string))
                                    .collect()
                            })
                            .unwrap_or_default();
                        (k.clone(), scopes)
                    })
                    .collect()
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_variables() {
        assert_eq!(template_vars("/a/{b}/c/{d_e}"), vec!["b", "d_e"]);
        assert!(template_vars("/plain").is_empty());
        assert_eq!(template_vars("/broken/{x"), Vec::<String>::new());
    }

    #[test]
    fn all_of_of_plain_objects_merges() {
        let s = json!({"allOf": [
            {"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}},
            {"allOf": [{"properties": {"b": {"type": "integer"}}, "required": ["b"]}]}
        ]});
        assert_eq!(
            merge_all_of(&s),
            Some(
                json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["a", "b"]})
            )
        );
        // Conflicting or non-plain members are left alone.
        let clash = json!({"allOf": [{"properties": {"a": {}}}, {"properties": {"a": {}}}]});
        assert_eq!(merge_all_of(&clash), None);
        let union = json!({"allOf": [{"oneOf": [{}, {}]}]});
        assert_eq!(merge_all_of(&union), None);
    }

    #[test]
    fn link_expressions() {
        let text = |e: &str| link_expression(e).map(|x| x.to_string());
        assert_eq!(text("$response.body#/id").as_deref(), Some("$result.id"));
        assert_eq!(
            text("$response.body#/data/id").as_deref(),
            Some("$result.data.id")
        );
        assert_eq!(text("$request.path.petId").as_deref(), Some("$args.petId"));
        assert_eq!(text("$statusCode"), None);
        // A token that is not a plain field name would read as another path.
        assert_eq!(text("$response.body#/a.b"), None);
        assert_eq!(text("$response.body#/x[*]"), None);
    }

    #[test]
    fn media_preference() {
        let mut mts = [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/json; charset=utf-8",
            "application/vnd.api+json",
        ];
        mts.sort_by_key(|m| media_rank(m));
        assert_eq!(mts[0], "application/json; charset=utf-8");
        assert_eq!(mts[1], "application/vnd.api+json");
    }
}
