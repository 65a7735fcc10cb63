//! OpenAPI schemas (2.0, 3.0, 3.1) → self-contained JSON Schema 2020-12.
//!
//! * `nullable` / `x-nullable` become a `"null"` member of `type` (or of `enum`);
//!   `example` becomes `examples`; boolean `exclusiveMinimum`/`exclusiveMaximum` become numbers;
//!   `type: file` becomes a binary string; OpenAPI-only keywords and `x-` extensions are dropped.
//! * Local and file references are inlined, memoised per (target, direction). A target that is part
//!   of a reference cycle, or whose inlined form would exceed [`INLINE_LIMIT`] nodes, is emitted once
//!   under the root's `$defs` and referenced as `#/$defs/Name` — never infinite recursion, never
//!   exponential growth.
//! * In the input direction `readOnly` properties are dropped; in the output direction `writeOnly`
//!   ones are.
//! * Output schemas are shallow: references are expanded [`OUTPUT_REF_DEPTH`] levels deep and
//!   deeper ones become `{"title": "Name"}` stubs. Inputs must be exact (arguments are validated
//!   against them); outputs are documentation and the fields undo binds to, and a fully expanded
//!   response graph of an API like Stripe's is hundreds of megabytes.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use serde_json::{json, Map, Value};

use super::refs::{DocId, DocSet, RefError};
use crate::defs::{ref_siblings, Memo, SharedDefs};
use crate::diag::{last_token, push_token, Diagnostic, Severity};

/// Above this many JSON nodes a referenced schema goes to `$defs` instead of being inlined.
pub const INLINE_LIMIT: usize = 2_000;
/// How many levels of references an output schema expands before it stubs them.
pub const OUTPUT_REF_DEPTH: u8 = 2;
/// Deeper nesting than this (through inlined references) is cut off with a diagnostic.
const MAX_DEPTH: usize = 256;

/// Whether a schema describes what is sent (input) or what comes back (output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Input,
    Output,
}

type NodeId = usize;

/// What a memoised conversion depends on besides its target: direction, and for outputs the
/// reference depth it was expanded at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Mode {
    Input,
    Output(u8),
}

/// The memoised conversions of one description, kept by [`crate::driver::Lowered`] so a short-lived
/// process may exit without freeing them one node at a time.
pub struct MemoTable(#[allow(dead_code)] HashMap<NodeId, Arc<Memo>>);

/// Converts schemas of one description; shares memoised conversions across all its operations.
pub struct SchemaBuilder<'a> {
    docs: &'a DocSet,
    ids: HashMap<(DocId, String, Mode), NodeId>,
    nodes: Vec<(DocId, String, Mode)>,
    out_depth: u8,
    memo: HashMap<NodeId, Arc<Memo>>,
    on_stack: HashSet<NodeId>,
    recursive: HashSet<NodeId>,
    def_names: HashMap<(DocId, String), String>,
    taken_def_names: HashSet<String>,
    needs: Vec<BTreeSet<NodeId>>,
    depth: usize,
    reported: HashSet<(DocId, String)>,
    pub diags: Vec<Diagnostic>,
}

/// Keys that describe a value rather than constrain its shape: safe to overlay on a referenced schema.
const ANNOTATION_KEYS: [&str; 10] = [
    "description",
    "title",
    "default",
    "example",
    "examples",
    "deprecated",
    "nullable",
    "x-nullable",
    "readOnly",
    "writeOnly",
];

impl<'a> SchemaBuilder<'a> {
    pub fn new(docs: &'a DocSet) -> Self {
        SchemaBuilder {
            docs,
            ids: HashMap::new(),
            nodes: Vec::new(),
            out_depth: 0,
            memo: HashMap::new(),
            on_stack: HashSet::new(),
            recursive: HashSet::new(),
            def_names: HashMap::new(),
            taken_def_names: HashSet::new(),
            needs: Vec::new(),
            depth: 0,
            reported: HashSet::new(),
            diags: Vec::new(),
        }
    }

    /// Ends the builder: its diagnostics, and the memo table to keep or drop.
    pub fn into_parts(self) -> (Vec<Diagnostic>, MemoTable) {
        (self.diags, MemoTable(self.memo))
    }

    /// Starts a new root schema: definitions needed from here on are collected for [`Self::end`].
    pub fn begin(&mut self) {
        self.needs.push(BTreeSet::new());
    }

    /// Finishes a root schema: the `$defs` its parts need (empty when nothing is recursive or large).
    pub fn end(&mut self) -> Map<String, Value> {
        self.end_shared().materialize()
    }

    /// Finishes a root schema like [`Self::end`], sharing the definitions instead of copying them.
    pub fn end_shared(&mut self) -> SharedDefs {
        let direct = self.needs.pop().unwrap_or_default();
        let mut all: BTreeSet<NodeId> = BTreeSet::new();
        let mut work: Vec<NodeId> = direct.into_iter().collect();
        while let Some(n) = work.pop() {
            if all.insert(n) {
                if let Some(m) = self.memo.get(&n) {
                    work.extend(m.needs.iter().copied().filter(|x| !all.contains(x)));
                }
            }
        }
        let mut defs: Vec<(String, Arc<Memo>)> = Vec::new();
        for n in all {
            let (doc, pointer, _) = &self.nodes[n];
            let name = self.def_names.get(&(*doc, pointer.clone())).cloned();
            if let (Some(name), Some(m)) = (name, self.memo.get(&n)) {
                defs.push((name, Arc::clone(m)));
            }
        }
        defs.sort_by(|a, b| a.0.cmp(&b.0));
        SharedDefs(defs)
    }

    /// Converts one schema found at `at` in document `doc`.
    pub fn convert(&mut self, doc: DocId, at: &str, schema: &Value, dir: Direction) -> Value {
        self.convert_sized(doc, at, schema, dir).0
    }

    fn convert_sized(
        &mut self,
        doc: DocId,
        at: &str,
        schema: &Value,
        dir: Direction,
    ) -> (Value, usize) {
        match schema {
            Value::Bool(_) => (schema.clone(), 1),
            Value::Object(map) => {
                if self.depth >= MAX_DEPTH {
                    self.report(doc, at, "schema-too-deep", format!(
                        "schema nesting deeper than {MAX_DEPTH} levels; the rest is accepted as any value"
                    ));
                    return (json!({}), 1);
                }
                self.depth += 1;
                let out = match map.get("$ref") {
                    Some(Value::String(r)) => self.convert_ref(doc, at, r, map, dir),
                    _ => self.convert_object(doc, at, map, dir),
                };
                self.depth -= 1;
                out
            }
            _ => {
                self.report(
                    doc,
                    at,
                    "invalid-schema",
                    "a schema must be an object or a boolean; accepted as any value".to_string(),
                );
                (json!({}), 1)
            }
        }
    }

    fn report(&mut self, doc: DocId, at: &str, code: &'static str, message: String) {
        if self.reported.insert((doc, at.to_string())) {
            self.diags.push(Diagnostic::new(
                Severity::Warning,
                code,
                message,
                self.docs.location(doc, at),
            ));
        }
    }

    fn node(&mut self, doc: DocId, pointer: &str, mode: Mode) -> NodeId {
        if let Some(&id) = self.ids.get(&(doc, pointer.to_string(), mode)) {
            return id;
        }
        let id = self.nodes.len();
        self.nodes.push((doc, pointer.to_string(), mode));
        self.ids.insert((doc, pointer.to_string(), mode), id);
        id
    }

    fn def_ref(&mut self, n: NodeId) -> Value {
        let (doc, pointer, _) = self.nodes[n].clone();
        let key = (doc, pointer.clone());
        let name = match self.def_names.get(&key) {
            Some(name) => name.clone(),
            None => {
                let base = crate::naming::safe_chars(&last_token(&pointer));
                let base = if base.is_empty() {
                    "def".to_string()
                } else {
                    base
                };
                let mut name = base.clone();
                let mut i = 2;
                while self.taken_def_names.contains(&name) {
                    name = format!("{base}_{i}");
                    i += 1;
                }
                self.taken_def_names.insert(name.clone());
                self.def_names.insert(key, name.clone());
                name
            }
        };
        if let Some(top) = self.needs.last_mut() {
            top.insert(n);
        }
        json!({ "$ref": push_token("#/$defs", &name) })
    }

    fn convert_ref(
        &mut self,
        doc: DocId,
        at: &str,
        reference: &str,
        map: &Map<String, Value>,
        dir: Direction,
    ) -> (Value, usize) {
        let (target_doc, pointer) = match self.docs.resolve(doc, reference) {
            Ok(t) => t,
            Err(err) => {
                // Refused file and remote references were reported where they are written.
                if !matches!(
                    err,
                    RefError::Remote(_) | RefError::OutsideRoot(_) | RefError::File { .. }
                ) {
                    let at_ref = push_token(at, "$ref");
                    self.report(
                        doc,
                        &at_ref,
                        "unresolved-ref",
                        format!("{err}; accepted as any value"),
                    );
                }
                let mut out = Map::new();
                if let Some(d) = map.get("description") {
                    out.insert("description".into(), d.clone());
                }
                return (Value::Object(out), 1);
            }
        };
        let Some(target) = self.docs.get(target_doc, &pointer) else {
            return (json!({}), 1);
        };
        // A chain of bare references that comes back on itself describes nothing.
        if target.get("$ref").is_some() {
            if let Err(err) = self.docs.follow(target_doc, &pointer, target) {
                let at_ref = push_token(at, "$ref");
                self.report(
                    doc,
                    &at_ref,
                    "unresolved-ref",
                    format!("{err}; accepted as any value"),
                );
                return (json!({}), 1);
            }
        }
        let mode = match dir {
            Direction::Input => Mode::Input,
            Direction::Output => Mode::Output(self.out_depth),
        };
        if mode == Mode::Output(OUTPUT_REF_DEPTH) {
            let name = last_token(&pointer);
            let mut stub = Map::new();
            stub.insert("title".into(), json!(name));
            if let Some(d) = map.get("description").or_else(|| target.get("description")) {
                stub.insert("description".into(), d.clone());
            }
            return (Value::Object(stub), 1);
        }
        let n = self.node(target_doc, &pointer, mode);
        let referenced = if self.on_stack.contains(&n) {
            self.recursive.insert(n);
            (self.def_ref(n), 1)
        } else {
            let memo = match self.memo.get(&n) {
                Some(m) => Arc::clone(m),
                None => {
                    self.on_stack.insert(n);
                    self.needs.push(BTreeSet::new());
                    if dir == Direction::Output {
                        self.out_depth += 1;
                    }
                    let (value, size) = self.convert_sized(target_doc, &pointer, target, dir);
                    if dir == Direction::Output {
                        self.out_depth -= 1;
                    }
                    let needs = self.needs.pop().unwrap_or_default();
                    self.on_stack.remove(&n);
                    let m = Arc::new(Memo {
                        value,
                        size,
                        needs,
                        bytes: OnceLock::new(),
                        cut_bytes: OnceLock::new(),
                    });
                    self.memo.insert(n, Arc::clone(&m));
                    m
                }
            };
            if let Some(top) = self.needs.last_mut() {
                top.extend(memo.needs.iter().copied());
            }
            if self.recursive.contains(&n) || memo.size > INLINE_LIMIT {
                (self.def_ref(n), 1)
            } else {
                (memo.value.clone(), memo.size)
            }
        };
        // Siblings of `$ref` (allowed in 3.1, common in practice everywhere).
        let siblings = ref_siblings(map);
        if siblings.is_empty() {
            return referenced;
        }
        let only_annotations = siblings
            .keys()
            .all(|k| ANNOTATION_KEYS.contains(&k.as_str()) || k.starts_with("x-"));
        let (sib, sib_size) = self.convert_object(doc, at, &siblings, dir);
        let (mut base, size) = referenced;
        if only_annotations && !base.as_object().is_some_and(|m| m.contains_key("$ref")) {
            if let (Some(b), Value::Object(s)) = (base.as_object_mut(), sib) {
                for (k, v) in s {
                    b.insert(k, v);
                }
                if is_nullable(&siblings) {
                    apply_nullable(b);
                }
            }
            return (base, size + sib_size);
        }
        let mut out = Map::new();
        out.insert("allOf".into(), Value::Array(vec![base]));
        if let Value::Object(s) = sib {
            for (k, v) in s {
                out.insert(k, v);
            }
        }
        if is_nullable(&siblings) && !out.contains_key("type") {
            let all_of = out.shift_remove("allOf").unwrap_or(Value::Null);
            out.insert("anyOf".into(), json!([{"allOf": all_of}, {"type": "null"}]));
        }
        (Value::Object(out), size + sib_size + 1)
    }

    fn convert_object(
        &mut self,
        doc: DocId,
        at: &str,
        map: &Map<String, Value>,
        dir: Direction,
    ) -> (Value, usize) {
        let mut out = Map::new();
        let mut size = 1usize;
        let mut dropped: Vec<String> = Vec::new();
        for (key, value) in map {
            let k = key.as_str();
            if k.starts_with("x-") {
                continue;
            }
            match k {
                "$ref" | "nullable" | "discriminator" | "xml" | "externalDocs" | "$schema"
                | "$id" | "$comment" | "readOnly" | "writeOnly" | "$defs" | "definitions" => {}
                "example" => {
                    if !map.contains_key("examples") {
                        out.insert("examples".into(), Value::Array(vec![value.clone()]));
                        size += 1;
                    }
                }
                "examples" => {
                    if value.is_array() {
                        out.insert(key.clone(), value.clone());
                        size += 1;
                    }
                }
                "type" => match value {
                    Value::String(t) if t == "file" => {
                        out.insert("type".into(), json!("string"));
                        out.insert("format".into(), json!("binary"));
                    }
                    Value::String(_) | Value::Array(_) => {
                        out.insert(key.clone(), value.clone());
                    }
                    _ => {}
                },
                "properties" | "patternProperties" | "dependentSchemas" => {
                    let Some(props) = value.as_object() else {
                        continue;
                    };
                    let base = push_token(at, k);
                    let mut converted = Map::new();
                    for (name, sub) in props {
                        if k == "properties" && self.hidden(doc, sub, dir) {
                            dropped.push(name.clone());
                            continue;
                        }
                        let (v, s) = self.convert_sized(doc, &push_token(&base, name), sub, dir);
                        size += s;
                        converted.insert(name.clone(), v);
                    }
                    out.insert(key.clone(), Value::Object(converted));
                }
                "items" if value.is_array() => {
                    let (v, s) = self.convert_list(doc, &push_token(at, k), value, dir);
                    size += s;
                    out.insert("prefixItems".into(), v);
                }
                "allOf" | "anyOf" | "oneOf" | "prefixItems" => {
                    if value.is_array() {
                        let (v, s) = self.convert_list(doc, &push_token(at, k), value, dir);
                        size += s;
                        out.insert(key.clone(), v);
                    }
                }
                "items"
                | "additionalProperties"
                | "not"
                | "contains"
                | "propertyNames"
                | "if"
                | "then"
                | "else"
                | "unevaluatedProperties"
                | "unevaluatedItems"
                | "additionalItems" => {
                    if value.is_object() || value.is_boolean() {
                        let (v, s) = self.convert_sized(doc, &push_token(at, k), value, dir);
                        size += s;
                        out.insert(key.clone(), v);
                    }
                }
                "required" => {
                    if let Some(list) = value.as_array() {
                        let names: Vec<Value> =
                            list.iter().filter(|v| v.is_string()).cloned().collect();
                        out.insert(key.clone(), Value::Array(names));
                    }
                }
                "exclusiveMinimum" | "exclusiveMaximum" => match value {
                    Value::Bool(true) => {
                        let bound = if k == "exclusiveMinimum" {
                            "minimum"
                        } else {
                            "maximum"
                        };
                        if let Some(b) = map.get(bound) {
                            out.insert(key.clone(), b.clone());
                        }
                    }
                    Value::Number(_) => {
                        out.insert(key.clone(), value.clone());
                    }
                    _ => {}
                },
                "minimum" | "maximum" => {
                    let exclusive = if k == "minimum" {
                        "exclusiveMinimum"
                    } else {
                        "exclusiveMaximum"
                    };
                    if map.get(exclusive) != Some(&Value::Bool(true)) {
                        out.insert(key.clone(), value.clone());
                    }
                }
                _ => {
                    out.insert(key.clone(), value.clone());
                    size += 1;
                }
            }
        }
        if !dropped.is_empty() {
            if let Some(Value::Array(req)) = out.get_mut("required") {
                req.retain(|v| !v.as_str().is_some_and(|s| dropped.iter().any(|d| d == s)));
            }
        }
        if matches!(out.get("required"), Some(Value::Array(a)) if a.is_empty()) {
            out.shift_remove("required");
        }
        if is_nullable(map) {
            apply_nullable(&mut out);
        }
        (Value::Object(out), size)
    }

    fn convert_list(
        &mut self,
        doc: DocId,
        at: &str,
        list: &Value,
        dir: Direction,
    ) -> (Value, usize) {
        let mut size = 0;
        let items = list
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let (v, n) = self.convert_sized(doc, &format!("{at}/{i}"), s, dir);
                        size += n;
                        v
                    })
                    .collect()
            })
            .unwrap_or_default();
        (Value::Array(items), size)
    }

    /// `true` when a property should not appear in this direction (readOnly on input, writeOnly on output).
    fn hidden(&self, doc: DocId, sub: &Value, dir: Direction) -> bool {
        let flag = match dir {
            Direction::Input => "readOnly",
            Direction::Output => "writeOnly",
        };
        if sub.get(flag) == Some(&Value::Bool(true)) {
            return true;
        }
        if sub.get("$ref").is_some() {
            if let Ok((_, _, target)) = self.docs.follow(doc, "", sub) {
                return target.get(flag) == Some(&Value::Bool(true));
            }
        }
        false
    }
}

fn is_nullable(map: &Map<String, Value>) -> bool {
    map.get("nullable") == Some(&Value::Bool(true))
        || map.get("x-nullable") == Some(&Value::Bool(true))
}

/// Lets `null` through a converted schema that had `nullable: true`.
fn apply_nullable(out: &mut Map<String, Value>) {
    match out.get_mut("type") {
        Some(Value::String(t)) => {
            let t = std::mem::take(t);
            if t != "null" {
                out.insert("type".into(), json!([t, "null"]));
            }
        }
        Some(Value::Array(types)) if !types.iter().any(|t| t == "null") => {
            types.push(json!("null"));
        }
        _ => {}
    }
    if let Some(Value::Array(values)) = out.get_mut("enum") {
        if !values.iter().any(Value::is_null) {
            values.push(Value::Null);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn docset(text: &str) -> (tempfile::TempDir, DocSet) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.json");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let docs = DocSet::open(&path).unwrap();
        (dir, docs)
    }

    fn convert(docs: &DocSet, schema: Value, dir: Direction) -> (Value, Map<String, Value>) {
        let mut b = SchemaBuilder::new(docs);
        b.begin();
        let v = b.convert(0, "/x", &schema, dir);
        (v, b.end())
    }

    #[test]
    fn openapi30_keywords_become_2020_12() {
        let (_d, docs) = docset("{}");
        let (v, defs) = convert(
            &docs,
            json!({"type": "integer", "nullable": true, "minimum": 0, "exclusiveMinimum": true,
                   "example": 3, "x-internal": 1, "xml": {"name": "n"}}),
            Direction::Input,
        );
        assert_eq!(
            v,
            json!({"type": ["integer", "null"], "exclusiveMinimum": 0, "examples": [3]})
        );
        assert!(defs.is_empty());
    }

    #[test]
    fn refs_inline_cycles_go_to_defs() {
        let (_d, docs) = docset(
            r##"{"components": {"schemas": {
            "Node": {"type": "object", "properties": {"next": {"$ref": "#/components/schemas/Node"},
                     "tag": {"$ref": "#/components/schemas/Tag"}}},
            "Tag": {"type": "string", "description": "a tag"}}}}"##,
        );
        let (v, defs) = convert(
            &docs,
            json!({"$ref": "#/components/schemas/Node"}),
            Direction::Input,
        );
        assert_eq!(v, json!({"$ref": "#/$defs/Node"}));
        assert_eq!(
            defs["Node"]["properties"]["next"],
            json!({"$ref": "#/$defs/Node"})
        );
        assert_eq!(
            defs["Node"]["properties"]["tag"],
            json!({"type": "string", "description": "a tag"})
        );
    }

    #[test]
    fn output_references_are_expanded_to_a_bounded_depth() {
        let (_d, docs) = docset(
            r##"{"components": {"schemas": {
            "A": {"type": "object", "properties": {"b": {"$ref": "#/components/schemas/B"}}},
            "B": {"type": "object", "properties": {"c": {"$ref": "#/components/schemas/C"}}},
            "C": {"type": "object", "properties": {"d": {"$ref": "#/components/schemas/D"}}},
            "D": {"type": "object", "description": "deep", "properties": {"x": {"type": "string"}}}}}}"##,
        );
        let (v, defs) = convert(
            &docs,
            json!({"$ref": "#/components/schemas/A"}),
            Direction::Output,
        );
        assert!(defs.is_empty());
        assert_eq!(
            v["properties"]["b"]["properties"]["c"],
            json!({"title": "C"})
        );
        // Inputs are exact.
        let (v, _) = convert(
            &docs,
            json!({"$ref": "#/components/schemas/A"}),
            Direction::Input,
        );
        assert_eq!(
            v["properties"]["b"]["properties"]["c"]["properties"]["d"]["properties"]["x"]["type"],
            "string"
        );
    }

    #[test]
    fn read_only_dropped_on_input_write_only_on_output() {
        let (_d, docs) = docset("{}");
        let schema = json!({"type": "object", "required": ["id", "name", "password"], "properties": {
            "id": {"type": "string", "readOnly": true},
            "name": {"type": "string"},
            "password": {"type": "string", "writeOnly": true}}});
        let (input, _) = convert(&docs, schema.clone(), Direction::Input);
        assert_eq!(input["required"], json!(["name", "password"]));
        assert!(input["properties"].get("id").is_none());
        let (output, _) = convert(&docs, schema, Direction::Output);
        assert_eq!(output["required"], json!(["id", "name"]));
        assert!(output["properties"].get("password").is_none());
    }

    #[test]
    fn ref_siblings_overlay_or_wrap() {
        let (_d, docs) = docset(r##"{"components": {"schemas": {"S": {"type": "string"}}}}"##);
        let (v, _) = convert(
            &docs,
            json!({"$ref": "#/components/schemas/S", "description": "why", "nullable": true}),
            Direction::Input,
        );
        assert_eq!(v, json!({"type": ["string", "null"], "description": "why"}));
        let (v, _) = convert(
            &docs,
            json!({"$ref": "#/components/schemas/S", "maxLength": 3}),
            Direction::Input,
        );
        assert_eq!(v, json!({"allOf": [{"type": "string"}], "maxLength": 3}));
    }

    #[test]
    fn exponential_sharing_is_bounded() {
        // L0 → two refs to L1 → two refs to L2 … inlining everything would be 2^30 nodes.
        let mut schemas = Map::new();
        for i in 0..30 {
            let next = format!("#/components/schemas/L{}", i + 1);
            schemas.insert(
                format!("L{i}"),
                json!({"type": "object", "properties": {
                "a": {"$ref": next}, "b": {"$ref": next}, "c": {"type": "string"}}}),
            );
        }
        schemas.insert("L30".into(), json!({"type": "string"}));
        let text = json!({"components": {"schemas": schemas}}).to_string();
        let (_d, docs) = docset(&text);
        let (v, defs) = convert(
            &docs,
            json!({"$ref": "#/components/schemas/L0"}),
            Direction::Input,
        );
        let total = v.to_string().len() + Value::Object(defs).to_string().len();
        assert!(total < 2_000_000, "output grew to {total} bytes");
    }

    #[test]
    fn pure_reference_loops_are_reported() {
        let (_d, docs) = docset(
            r##"{"components": {"schemas": {
            "A": {"$ref": "#/components/schemas/B"}, "B": {"$ref": "#/components/schemas/A"}}}}"##,
        );
        let mut b = SchemaBuilder::new(&docs);
        b.begin();
        let v = b.convert(
            0,
            "/x",
            &json!({"$ref": "#/components/schemas/A"}),
            Direction::Input,
        );
        assert_eq!(v, json!({}));
        assert!(b.end().is_empty());
        assert_eq!(b.diags[0].code, "unresolved-ref");
        assert!(
            b.diags[0].message.contains("loop"),
            "{}",
            b.diags[0].message
        );
    }

    #[test]
    fn missing_ref_is_a_warning_not_a_panic() {
        let (_d, docs) = docset("{}");
        let mut b = SchemaBuilder::new(&docs);
        b.begin();
        let v = b.convert(
            0,
            "/x",
            &json!({"$ref": "#/components/schemas/Nope"}),
            Direction::Input,
        );
        assert_eq!(v, json!({}));
        assert_eq!(b.diags.len(), 1);
        assert_eq!(b.diags[0].code, "unresolved-ref");
    }
}
