//! Bringing every dialect into one document shape before lowering.
//!
//! Swagger 2.0 documents are rewritten into the OpenAPI 3.0 layout (components, requestBody, content
//! maps, servers, securitySchemes). OpenAPI 3.1's schema changes (type arrays, `examples` arrays,
//! `const`, boolean schemas, `$ref` with siblings) are handled where schemas are turned into JSON
//! Schema 2020-12 (`schema.rs`), because 2020-12 is what MCP clients read.

use serde_json::{json, Map, Value};

/// The dialect of a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialect {
    Swagger2,
    OpenApi30(String),
    OpenApi31(String),
}

impl Dialect {
    /// Detects the dialect from the root object; `Err` says why it is not an API description.
    pub fn detect(root: &Value) -> Result<Dialect, String> {
        let Some(obj) = root.as_object() else {
            return Err("the document is not an object".into());
        };
        if let Some(v) = obj.get("swagger") {
            let s = scalar_text(v);
            return if s.starts_with('2') {
                Ok(Dialect::Swagger2)
            } else {
                Err(format!(
                    "unsupported `swagger` version {s:?} (forge reads 2.0)"
                ))
            };
        }
        if let Some(v) = obj.get("openapi") {
            let s = scalar_text(v);
            return if s.starts_with("3.0") {
                Ok(Dialect::OpenApi30(s))
            } else if s.starts_with("3.1") || s.starts_with("3.2") {
                Ok(Dialect::OpenApi31(s))
            } else {
                Err(format!(
                    "unsupported `openapi` version {s:?} (forge reads 2.0, 3.0.x and 3.1.x)"
                ))
            };
        }
        Err("neither an `openapi` nor a `swagger` field: this is not an OpenAPI description".into())
    }

    pub fn label(&self) -> String {
        match self {
            Dialect::Swagger2 => "swagger 2.0".into(),
            Dialect::OpenApi30(v) | Dialect::OpenApi31(v) => format!("openapi {v}"),
        }
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Keywords of a Swagger 2.0 non-body parameter that belong in its 3.0 `schema`.
const PARAM_SCHEMA_KEYS: [&str; 17] = [
    "type",
    "format",
    "items",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "enum",
    "multipleOf",
    "x-nullable",
];

/// Rewrites a Swagger 2.0 document into the OpenAPI 3.0 shape, in place.
pub fn swagger2_to_oas3(root: &mut Value) {
    let Some(obj) = root.as_object_mut() else {
        return;
    };
    let global_consumes = string_list(obj.get("consumes"));
    let global_produces = string_list(obj.get("produces"));
    let shared_params = obj
        .shift_remove("parameters")
        .and_then(into_object)
        .unwrap_or_default();

    // servers from host + basePath + schemes
    let host = obj
        .shift_remove("host")
        .and_then(|v| v.as_str().map(str::to_string));
    let base = obj
        .shift_remove("basePath")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let schemes = string_list(obj.shift_remove("schemes").as_ref());
    let mut servers = Vec::new();
    match host {
        Some(h) => {
            let schemes = if schemes.is_empty() {
                vec!["https".to_string()]
            } else {
                schemes
            };
            for s in schemes {
                servers.push(json!({ "url": format!("{s}://{h}{base}") }));
            }
        }
        None if !base.is_empty() => servers.push(json!({ "url": base })),
        None => {}
    }
    if !servers.is_empty() {
        obj.insert("servers".into(), Value::Array(servers));
    }

    // components
    let mut components = Map::new();
    if let Some(defs) = obj.shift_remove("definitions") {
        components.insert("schemas".into(), defs);
    }
    let mut comp_params = Map::new();
    let mut comp_bodies = Map::new();
    for (name, p) in &shared_params {
        match p.get("in").and_then(Value::as_str) {
            Some("body") => {
                comp_bodies.insert(
                    name.clone(),
                    body_param_to_request_body(p, &global_consumes),
                );
            }
            Some("formData") => {} // only meaningful merged into an operation's form body
            _ => {
                comp_params.insert(name.clone(), convert_param(p));
            }
        }
    }
    if !comp_params.is_empty() {
        components.insert("parameters".into(), Value::Object(comp_params));
    }
    if !comp_bodies.is_empty() {
        components.insert("requestBodies".into(), Value::Object(comp_bodies));
    }
    if let Some(Value::Object(responses)) = obj.shift_remove("responses") {
        let converted: Map<String, Value> = responses
            .into_iter()
            .map(|(k, r)| (k, convert_response(r, &global_produces)))
            .collect();
        components.insert("responses".into(), Value::Object(converted));
    }
    if let Some(Value::Object(sec)) = obj.shift_remove("securityDefinitions") {
        let converted: Map<String, Value> = sec
            .into_iter()
            .map(|(k, s)| (k, convert_security_scheme(s)))
            .collect();
        components.insert("securitySchemes".into(), Value::Object(converted));
    }

    // operations
    if let Some(Value::Object(paths)) = obj.get_mut("paths") {
        for (_, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            let path_params = match item.shift_remove("parameters") {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            };
            for method in super::lower::METHODS {
                let Some(Value::Object(op)) = item.get_mut(method) else {
                    continue;
                };
                convert_operation(
                    op,
                    &path_params,
                    &shared_params,
                    &global_consumes,
                    &global_produces,
                );
            }
        }
    }
    obj.insert("components".into(), Value::Object(components));
    obj.shift_remove("swagger");
    obj.shift_remove("consumes");
    obj.shift_remove("produces");
    obj.insert("openapi".into(), Value::String("3.0.3".into()));
    rewrite_refs(root);
}

fn into_object(v: Value) -> Option<Map<String, Value>> {
    match v {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Resolves a parameter that is a `#/parameters/X` reference against the document's shared ones.
fn deref_param<'a>(p: &'a Value, shared: &'a Map<String, Value>) -> &'a Value {
    if let Some(r) = p.get("$ref").and_then(Value::as_str) {
        if let Some(name) = r.strip_prefix("#/parameters/") {
            let name = name.replace("~1", "/").replace("~0", "~");
            if let Some(target) = shared.get(&name) {
                return target;
            }
        }
    }
    p
}

fn convert_operation(
    op: &mut Map<String, Value>,
    path_params: &[Value],
    shared: &Map<String, Value>,
    global_consumes: &[String],
    global_produces: &[String],
) {
    let consumes = match op.shift_remove("consumes") {
        Some(v) => string_list(Some(&v)),
        None => global_consumes.to_vec(),
    };
    let produces = match op.shift_remove("produces") {
        Some(v) => string_list(Some(&v)),
        None => global_produces.to_vec(),
    };
    let own = match op.shift_remove("parameters") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    // Path-level parameters apply unless the operation redefines the same (name, in).
    let key = |p: &Value| {
        (
            p.get("name").and_then(Value::as_str).map(str::to_string),
            p.get("in").and_then(Value::as_str).map(str::to_string),
        )
    };
    let mut merged: Vec<&Value> = Vec::new();
    let own_keys: Vec<_> = own.iter().map(|p| key(deref_param(p, shared))).collect();
    for p in path_params {
        if !own_keys.contains(&key(deref_param(p, shared))) {
            merged.push(p);
        }
    }
    merged.extend(own.iter());

    let mut params = Vec::new();
    let mut body = None;
    let mut form: Vec<&Value> = Vec::new();
    for raw in merged {
        let p = deref_param(raw, shared);
        match p.get("in").and_then(Value::as_str) {
            Some("body") => body = Some(body_param_to_request_body(p, &consumes)),
            Some("formData") => form.push(p),
            _ if raw.get("$ref").is_some() && std::ptr::eq(raw, p) => params.push(raw.clone()),
            _ => params.push(convert_param(p)),
        }
    }
    if !form.is_empty() {
        body = Some(form_to_request_body(&form, &consumes));
    }
    if !params.is_empty() {
        op.insert("parameters".into(), Value::Array(params));
    }
    if let Some(b) = body {
        op.insert("requestBody".into(), b);
    }
    if let Some(Value::Object(responses)) = op.shift_remove("responses") {
        let converted: Map<String, Value> = responses
            .into_iter()
            .map(|(k, r)| (k, convert_response(r, &produces)))
            .collect();
        op.insert("responses".into(), Value::Object(converted));
    }
}

fn convert_param(p: &Value) -> Value {
    let Some(obj) = p.as_object() else {
        return p.clone();
    };
    if obj.contains_key("$ref") {
        return p.clone();
    }
    let mut out = Map::new();
    let mut schema = Map::new();
    for (k, v) in obj {
        if PARAM_SCHEMA_KEYS.contains(&k.as_str()) {
            schema.insert(k.clone(), v.clone());
        } else if k == "collectionFormat" {
            let location = obj.get("in").and_then(Value::as_str).unwrap_or("query");
            let (style, explode) = match (v.as_str().unwrap_or("csv"), location) {
                ("multi", _) => ("form", true),
                ("ssv", _) => ("spaceDelimited", false),
                ("pipes", _) => ("pipeDelimited", false),
                (_, "path") | (_, "header") => ("simple", false),
                _ => ("form", false),
            };
            out.insert("style".into(), json!(style));
            out.insert("explode".into(), json!(explode));
        } else if k != "allowEmptyValue" {
            out.insert(k.clone(), v.clone());
        }
    }
    if schema.get("type").and_then(Value::as_str) == Some("file") {
        schema.insert("type".into(), json!("string"));
        schema.insert("format".into(), json!("binary"));
    }
    out.insert("schema".into(), Value::Object(schema));
    Value::Object(out)
}

fn media_types(list: &[String]) -> Vec<String> {
    if list.is_empty() {
        vec!["application/json".into()]
    } else {
        list.to_vec()
    }
}

fn body_param_to_request_body(p: &Value, consumes: &[String]) -> Value {
    let schema = p.get("schema").cloned().unwrap_or_else(|| json!({}));
    let mut content = Map::new();
    for mt in media_types(consumes) {
        if mt.contains("form") {
            continue; // a body parameter is never form-encoded
        }
        content.insert(mt, json!({ "schema": schema.clone() }));
    }
    if content.is_empty() {
        content.insert("application/json".into(), json!({ "schema": schema }));
    }
    let mut out = Map::new();
    out.insert("content".into(), Value::Object(content));
    out.insert(
        "required".into(),
        json!(p.get("required").and_then(Value::as_bool).unwrap_or(false)),
    );
    if let Some(d) = p.get("description") {
        out.insert("description".into(), d.clone());
    }
    Value::Object(out)
}

fn form_to_request_body(form: &[&Value], consumes: &[String]) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    let mut has_file = false;
    for p in form {
        let Some(name) = p.get("name").and_then(Value::as_str) else {
            continue;
        };
        let converted = convert_param(p);
        let mut schema = converted
            .get("schema")
            .cloned()
            .unwrap_or_else(|| json!({}));
        if schema.get("format").and_then(Value::as_str) == Some("binary") {
            has_file = true;
        }
        if let (Some(d), Some(s)) = (p.get("description"), schema.as_object_mut()) {
            s.insert("description".into(), d.clone());
        }
        if p.get("required").and_then(Value::as_bool) == Some(true) {
            required.push(json!(name));
        }
        props.insert(name.to_string(), schema);
    }
    let multipart = has_file
        || consumes
            .iter()
            .any(|c| c.starts_with("multipart/form-data"));
    let mt = if multipart {
        "multipart/form-data"
    } else {
        "application/x-www-form-urlencoded"
    };
    let mut schema = json!({ "type": "object", "properties": Value::Object(props) });
    if !required.is_empty() {
        schema["required"] = Value::Array(required.clone());
    }
    json!({
        "content": { mt: { "schema": schema } },
        "required": !required.is_empty(),
    })
}

fn convert_response(r: Value, produces: &[String]) -> Value {
    let Value::Object(mut obj) = r else { return r };
    if obj.contains_key("$ref") {
        return Value::Object(obj);
    }
    if let Some(schema) = obj.shift_remove("schema") {
        let mut content = Map::new();
        for mt in media_types(produces) {
            content.insert(mt, json!({ "schema": schema.clone() }));
        }
        obj.insert("content".into(), Value::Object(content));
    }
    obj.shift_remove("examples");
    if let Some(Value::Object(headers)) = obj.shift_remove("headers") {
        let converted: Map<String, Value> = headers
            .into_iter()
            .map(|(k, h)| {
                let mut schema = h.clone();
                let mut out = Map::new();
                if let Some(s) = schema.as_object_mut() {
                    if let Some(d) = s.shift_remove("description") {
                        out.insert("description".into(), d);
                    }
                }
                out.insert("schema".into(), schema);
                (k, Value::Object(out))
            })
            .collect();
        obj.insert("headers".into(), Value::Object(converted));
    }
    Value::Object(obj)
}

fn convert_security_scheme(s: Value) -> Value {
    let Value::Object(obj) = &s else { return s };
    match obj.get("type").and_then(Value::as_str) {
        Some("basic") => json!({ "type": "http", "scheme": "basic" }),
        Some("oauth2") => {
            let flow = match obj.get("flow").and_then(Value::as_str) {
                Some("implicit") => "implicit",
                Some("password") => "password",
                Some("application") => "clientCredentials",
                _ => "authorizationCode",
            };
            let mut f = Map::new();
            for k in ["authorizationUrl", "tokenUrl", "scopes"] {
                if let Some(v) = obj.get(k) {
                    f.insert(k.into(), v.clone());
                }
            }
            json!({ "type": "oauth2", "flows": { flow: Value::Object(f) } })
        }
        _ => s,
    }
}

/// Points Swagger 2.0 local references at their 3.0 homes.
fn rewrite_refs(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref") {
                for (from, to) in [
                    ("#/definitions/", "#/components/schemas/"),
                    ("#/parameters/", "#/components/parameters/"),
                    ("#/responses/", "#/components/responses/"),
                ] {
                    if let Some(rest) = r.strip_prefix(from) {
                        *r = format!("{to}{rest}");
                        break;
                    }
                }
            }
            for (_, child) in map.iter_mut() {
                rewrite_refs(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_dialects() {
        assert_eq!(
            Dialect::detect(&json!({"swagger": "2.0"})),
            Ok(Dialect::Swagger2)
        );
        assert_eq!(
            Dialect::detect(&json!({"openapi": "3.1.0"})),
            Ok(Dialect::OpenApi31("3.1.0".into()))
        );
        assert!(Dialect::detect(&json!({"openapi": "4.0"})).is_err());
        assert!(Dialect::detect(&json!({"name": "x"})).is_err());
        assert!(Dialect::detect(&json!([1])).is_err());
    }

    #[test]
    fn swagger2_body_form_and_servers() {
        let mut doc = json!({
            "swagger": "2.0",
            "host": "api.example.com", "basePath": "/v1", "schemes": ["https"],
            "consumes": ["application/json"],
            "parameters": { "Limit": {"name": "limit", "in": "query", "type": "integer"} },
            "paths": { "/pets": {
                "parameters": [{"$ref": "#/parameters/Limit"}],
                "post": {
                    "parameters": [{"name": "pet", "in": "body", "required": true,
                                    "schema": {"$ref": "#/definitions/Pet"}}],
                    "responses": {"201": {"description": "ok", "schema": {"$ref": "#/definitions/Pet"}}}
                },
                "put": {
                    "consumes": ["multipart/form-data"],
                    "parameters": [{"name": "file", "in": "formData", "type": "file", "required": true}],
                    "responses": {"200": {"description": "ok"}}
                }
            }},
            "definitions": {"Pet": {"type": "object"}},
            "securityDefinitions": {"basic": {"type": "basic"}}
        });
        swagger2_to_oas3(&mut doc);
        assert_eq!(doc["servers"][0]["url"], "https://api.example.com/v1");
        let post = &doc["paths"]["/pets"]["post"];
        assert_eq!(
            post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Pet"
        );
        assert_eq!(post["requestBody"]["required"], true);
        assert_eq!(post["parameters"][0]["name"], "limit");
        assert_eq!(post["parameters"][0]["schema"]["type"], "integer");
        assert_eq!(
            post["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Pet"
        );
        let put = &doc["paths"]["/pets"]["put"];
        assert_eq!(
            put["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["file"]
                ["format"],
            "binary"
        );
        assert_eq!(
            doc["components"]["parameters"]["Limit"]["schema"]["type"],
            "integer"
        );
        assert_eq!(
            doc["components"]["securitySchemes"]["basic"]["scheme"],
            "basic"
        );
        assert_eq!(doc["openapi"], "3.0.3");
    }
}

/// Keys whose object value maps names chosen by the description's author (a property called
/// `x-request-id`, a header `x-rate-limit`) rather than holding fields and extensions.
const NAME_MAPS: [&str; 16] = [
    "properties",
    "dependentRequired",
    "parameters",
    "patternProperties",
    "definitions",
    "$defs",
    "dependentSchemas",
    "headers",
    "links",
    "callbacks",
    "encoding",
    "securitySchemes",
    "scopes",
    "variables",
    "mapping",
    "webhooks",
];

/// Keys whose value is data (a default, an example, an enum), never walked.
const DATA: [&str; 6] = ["default", "example", "examples", "enum", "const", "value"];

/// Whether forge reads this extension (everything else is dropped after loading).
fn kept_extension(key: &str) -> bool {
    key.starts_with("x-aifirst") || key.starts_with("x-mcp") || key == "x-nullable"
}

/// Drops the `x-` extensions forge never reads from a parsed description, in place: Microsoft
/// Graph's (`x-ms-docs-operation-type`, `x-ms-enum`, …) are 29% of its text, held in memory
/// through the whole run for nothing. Names in name maps (properties, headers, components…) and
/// data (defaults, examples, enums) are left alone.
pub fn strip_unread_extensions(doc: &mut Value) {
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        /// An object of fields and extensions.
        Fields,
        /// A map of author-chosen names to objects.
        Names,
        /// `components`: each field is a map of names.
        Components,
        /// `security`: a list of maps of scheme names.
        Requirements,
    }
    fn walk(v: &mut Value, kind: Kind, depth: usize) {
        if depth > 512 {
            return;
        }
        match v {
            Value::Object(map) => {
                // Not at the root: a `$ref` may point into a section of it (`#/x-shared/…`).
                if kind == Kind::Fields && depth > 0 {
                    map.retain(|k, _| !k.starts_with("x-") || kept_extension(k));
                }
                for (k, child) in map.iter_mut() {
                    let next = match kind {
                        Kind::Names | Kind::Requirements => Kind::Fields,
                        Kind::Components => Kind::Names,
                        Kind::Fields if DATA.contains(&k.as_str()) => continue,
                        Kind::Fields if k == "security" => Kind::Requirements,
                        Kind::Fields if NAME_MAPS.contains(&k.as_str()) => Kind::Names,
                        Kind::Fields if depth == 0 && k == "components" => Kind::Components,
                        Kind::Fields => Kind::Fields,
                    };
                    walk(child, next, depth + 1);
                }
            }
            Value::Array(items) => {
                // `security: [{"x-api-key": []}]`: each requirement maps scheme names.
                let each = if kind == Kind::Requirements {
                    Kind::Names
                } else {
                    Kind::Fields
                };
                for item in items {
                    walk(item, each, depth + 1);
                }
            }
            _ => {}
        }
    }
    walk(doc, Kind::Fields, 0);
}

#[cfg(test)]
mod strip_tests {
    use serde_json::json;

    #[test]
    fn unread_extensions_go_names_and_data_stay() {
        let mut doc = json!({
            "x-shared": {"Thing": {"type": "string", "x-ms-x": 1}},
            "security": [{"x-api-key": []}],
            "paths": {"/a": {"get": {"x-ms-docs-operation-type": "op", "x-aifirst-undo": {"kind": "none"},
                "parameters": [{"name": "x-api-key", "in": "header", "x-ms-doc": 1}],
                "responses": {"200": {"description": "ok", "headers": {"x-rate-limit": {"schema": {"type": "integer", "x-ms-enum": {}}}}}}}}},
            "components": {"schemas": {"x-thing": {"type": "object", "x-nullable": true, "x-ms-discriminator-value": "t",
                "properties": {"x-request-id": {"type": "string", "default": {"x-keep": 1}}}}}}
        });
        super::strip_unread_extensions(&mut doc);
        assert_eq!(
            doc,
            json!({
                "x-shared": {"Thing": {"type": "string"}},
                "security": [{"x-api-key": []}],
                "paths": {"/a": {"get": {"x-aifirst-undo": {"kind": "none"},
                    "parameters": [{"name": "x-api-key", "in": "header"}],
                    "responses": {"200": {"description": "ok", "headers": {"x-rate-limit": {"schema": {"type": "integer"}}}}}}}},
                "components": {"schemas": {"x-thing": {"type": "object", "x-nullable": true,
                    "properties": {"x-request-id": {"type": "string", "default": {"x-keep": 1}}}}}}
            })
        );
    }
}
