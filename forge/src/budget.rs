//! The token budget of a tool: what an MCP client pays, in context, to list it.
//!
//! A tool whose `tools/list` entry is larger than the budget (`--max-tool-tokens`, default
//! [`DEFAULT_MAX_TOOL_TOKENS`], estimated at four bytes a token) is pruned deterministically, in
//! this order, stopping as soon as it fits:
//!
//! 1. (Always, not only over budget: `readOnly` properties are left out of input schemas when they
//!    are converted, see [`crate::schema`].)
//! 2. Descriptions inside the input schema are cut to their first sentence and `examples` dropped.
//! 3. Deep or recursive object levels are collapsed: from the deepest level up, a nested object
//!    (or array of objects, or reference) below the kept depth becomes an open schema that keeps
//!    its `type` and whose description names the properties left out. References into `$defs`
//!    above the kept depth are inlined, so recursion ends at the kept depth too.
//! 4. The tool's own description is cut to its first sentence.
//!
//! Enums are never cut: a model needs every allowed value to make a valid call.
//!
//! Every pruning only ever widens what is accepted: a collapsed node accepts any value of the
//! type it had (or any value, when it had no single type), so the runtime, which validates
//! against the pruned schema, never refuses a call the API would accept. Each pruned tool gets
//! one diagnostic saying what was cut; a tool that still does not fit gets a warning.

use serde_json::{Map, Value};

use crate::defs::{serialized_len, SharedDefs};
use crate::inspect::{approx_tokens, mcp_tool_bytes};
use crate::ir::Capability;

/// The default budget of one tool's `tools/list` entry, in estimated tokens.
pub const DEFAULT_MAX_TOOL_TOKENS: usize = 2_000;

/// Room kept for the annotations inference adds after the budget is applied.
const ANNOTATION_ALLOWANCE: usize = 120;

/// Keys whose value is one subschema at the same level.
const SAME_LEVEL_ONE: [&str; 9] = [
    "items",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "propertyNames",
    "unevaluatedItems",
    "additionalItems",
];
/// Keys whose value is a list of subschemas at the same level.
const SAME_LEVEL_MANY: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keys whose value is a map of subschemas one level deeper.
const DEEPER_MAP: [&str; 2] = ["properties", "patternProperties"];
/// Keys whose value is a map of subschemas that apply to the same value.
const SAME_LEVEL_MAP: [&str; 1] = ["dependentSchemas"];
/// Deeper nesting than this (through inlining at one level) is left open.
const MAX_DEPTH: usize = 200;
/// Keys whose value is one subschema one level deeper.
const DEEPER_ONE: [&str; 2] = ["additionalProperties", "unevaluatedProperties"];

/// What fitting one tool did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted {
    /// Estimated tokens before and after.
    pub before: usize,
    pub after: usize,
    /// What was cut, in order, for the diagnostic.
    pub steps: Vec<String>,
    /// Still over the budget after every step.
    pub over: bool,
}

/// The estimated tokens of a capability's `tools/list` entry, as it is now.
pub fn tool_tokens(cap: &Capability) -> usize {
    approx_tokens(mcp_tool_bytes(cap))
}

/// The same before inference, with room for the annotations it will add.
fn budget_tokens(cap: &Capability) -> usize {
    approx_tokens(mcp_tool_bytes(cap) + ANNOTATION_ALLOWANCE)
}

/// The estimated tokens of a capability's entry once `defs_bytes` of `$defs` are added.
fn tokens_with(cap: &Capability, defs_bytes: usize) -> usize {
    approx_tokens(mcp_tool_bytes(cap) + defs_bytes + ANNOTATION_ALLOWANCE)
}

/// Descriptions to their first sentence and examples out, everywhere in a schema.
fn cut_all(schema: &mut Value) {
    cut_texts(schema, &mut Cuts::default());
}

fn attach(cap: &mut Capability, defs: Map<String, Value>) {
    if defs.is_empty() {
        return;
    }
    if let Some(root) = cap.input_schema.as_object_mut() {
        root.insert("$defs".into(), Value::Object(defs));
    }
}

/// Fits a capability's tool into `max_tokens` (none: no budget). The input schema comes without
/// its `$defs`, which are given shared in `defs`: they are copied into the schema only when it
/// keeps them, so an operation that needs a huge definition tree never copies it. `None` when
/// the tool already fits.
pub fn fit(cap: &mut Capability, defs: &SharedDefs, max_tokens: Option<usize>) -> Option<Fitted> {
    let before = tokens_with(cap, defs.bytes(None));
    let Some(max) = max_tokens.filter(|&m| before > m) else {
        attach(cap, defs.materialize());
        return None;
    };
    let mut steps = Vec::new();
    let original = cap.input_schema.clone();

    // 2. Descriptions to their first sentence, examples out.
    let mut cut = Cuts::default();
    cut_texts(&mut cap.input_schema, &mut cut);
    if tokens_with(cap, defs.bytes(Some(cut_all))) <= max {
        let mut kept = defs.materialize();
        for v in kept.values_mut() {
            cut_texts(v, &mut cut);
        }
        attach(cap, kept);
        push_cuts(&mut steps, &cut);
    } else {
        // 3. Deep and recursive levels collapsed, keeping as many levels as fit; what is kept
        // has its descriptions cut as it is copied.
        // The tool's size without its input schema (`null` in its place), to add each
        // collapsed schema's to.
        let rest = {
            let kept = std::mem::take(&mut cap.input_schema);
            let bytes = mcp_tool_bytes(cap).saturating_sub("null".len());
            cap.input_schema = kept;
            bytes
        };
        let fits =
            |v: &Value| approx_tokens(rest + serialized_len(v) + ANNOTATION_ALLOWANCE) <= max;
        let chosen = keep_levels(&original, defs, 1, max.saturating_mul(4), fits);
        match chosen {
            Some(Collapsed {
                value,
                opened,
                level,
                cuts,
            }) => {
                cap.input_schema = value;
                push_cuts(&mut steps, &cuts);
                if !opened.is_empty() {
                    steps.push(format!(
                        "{} object{} below level {level} left open ({})",
                        opened.len(),
                        plural(opened.len()),
                        name_list(&opened, 6)
                    ));
                }
            }
            None => {
                // Not even the top level fits in a reasonable tree: keep the schema whole, its
                // descriptions cut.
                let mut kept = defs.materialize();
                for v in kept.values_mut() {
                    cut_texts(v, &mut cut);
                }
                attach(cap, kept);
                push_cuts(&mut steps, &cut);
            }
        }
    }

    // 4. The tool's own description.
    if budget_tokens(cap) > max {
        let short = first_sentence(&cap.description);
        if short.len() < cap.description.len() {
            cap.description = short;
            steps.push("the tool description cut to its first sentence".to_string());
        }
    }
    let after = budget_tokens(cap);
    Some(Fitted {
        before,
        after,
        steps,
        over: after > max,
    })
}

/// [`fit`], counted in `stats` and said as a diagnostic at `location`: information for a tool
/// that was pruned, a warning for one still over the budget.
pub fn fit_reported(
    cap: &mut Capability,
    defs: &SharedDefs,
    max_tokens: Option<usize>,
    location: crate::diag::Location,
    stats: &mut crate::driver::Stats,
) -> Option<crate::diag::Diagnostic> {
    use crate::diag::{Diagnostic, Severity};
    let Some(max) = max_tokens else {
        // No budget: the schema still gets its `$defs`.
        fit(cap, defs, None);
        return None;
    };
    let fitted = fit(cap, defs, Some(max))?;
    stats.pruned += 1;
    let what = if fitted.steps.is_empty() {
        "nothing could be cut".to_string()
    } else {
        fitted.steps.join("; ")
    };
    let (severity, code) = if fitted.over {
        stats.over_budget += 1;
        (Severity::Warning, "over-tool-budget")
    } else {
        (Severity::Info, "pruned-to-budget")
    };
    let mut d = Diagnostic::new(
        severity,
        code,
        format!(
            "`{}`: ~{} tokens → ~{} (budget {max}): {what}",
            cap.name, fitted.before, fitted.after
        ),
        location,
    );
    if fitted.over {
        d = d.with_help(
            "raise --max-tool-tokens, or serve it with `--toolset dynamic`, where only the tools a model asks about are described",
        );
    }
    Some(d)
}

/// A schema with its `$defs` (an object root made for a root that is not one).
pub fn with_defs(mut root: Value, defs: Map<String, Value>) -> Value {
    if defs.is_empty() {
        return root;
    }
    if !root.is_object() {
        root = serde_json::json!({ "allOf": [root] });
    }
    if let Some(o) = root.as_object_mut() {
        o.insert("$defs".into(), Value::Object(defs));
    }
    root
}

/// An output schema within `max_bytes`: whole, with its `$defs`, when it fits; otherwise its
/// descriptions cut and its deep levels left open as for tools, keeping as many levels as fit
/// but never fewer than two (undo binds to fields such as `owner.login`), without `$defs`.
pub fn fit_output(root: Value, defs: &SharedDefs, max_bytes: usize) -> Value {
    if serialized_len(&root) + defs.bytes(None) <= max_bytes {
        return with_defs(root, defs.materialize());
    }
    let fits = |v: &Value| serialized_len(v) <= max_bytes;
    match keep_levels(&root, defs, 2, max_bytes, fits) {
        Some(c) => c.value,
        None => with_defs(root, defs.materialize()),
    }
}

/// A schema with its deep levels left open.
struct Collapsed {
    value: Value,
    /// Where each open node is (property paths).
    opened: Vec<String>,
    /// The first level left open.
    level: usize,
    /// Descriptions cut and examples dropped in what was kept.
    cuts: Cuts,
}

/// Keeps as many levels of `root` as `fits` allows, trying `first` and one more each time: the
/// deepest collapse that fits, or the one at `first` when none does; `None` when even that one
/// passes `max_nodes`.
fn keep_levels(
    root: &Value,
    defs: &SharedDefs,
    first: usize,
    max_nodes: usize,
    fits: impl Fn(&Value) -> bool,
) -> Option<Collapsed> {
    let mut chosen: Option<Collapsed> = None;
    let mut level = first;
    loop {
        let mut c = Collapser::new(defs, level, max_nodes);
        let value = c.node(root, 0, "");
        if c.aborted {
            break;
        }
        let ok = fits(&value);
        let nothing_cut = c.collapsed.is_empty();
        if ok || chosen.is_none() {
            chosen = Some(Collapsed {
                value,
                opened: c.collapsed,
                level,
                cuts: c.cuts,
            });
        }
        if !ok || nothing_cut || level >= 64 {
            break;
        }
        level += 1;
    }
    chosen
}

fn push_cuts(steps: &mut Vec<String>, cut: &Cuts) {
    if cut.descriptions > 0 {
        steps.push(format!(
            "{} description{} cut to the first sentence",
            cut.descriptions,
            plural(cut.descriptions)
        ));
    }
    if cut.examples > 0 {
        steps.push(format!(
            "{} example{} dropped",
            cut.examples,
            plural(cut.examples)
        ));
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `a, b, c and 4 more`.
fn name_list(names: &[String], shown: usize) -> String {
    let mut out: Vec<&str> = names.iter().take(shown).map(String::as_str).collect();
    let rest = names.len().saturating_sub(shown);
    let more;
    if rest > 0 {
        more = format!("{rest} more");
        out.push(&more);
    }
    out.join(", ")
}

#[derive(Default)]
struct Cuts {
    descriptions: usize,
    examples: usize,
}

/// Visits every subschema of `schema` (not values such as `default` or `enum`).
fn for_each_subschema(schema: &mut Map<String, Value>, mut f: impl FnMut(&mut Value)) {
    for (k, v) in schema.iter_mut() {
        let k = k.as_str();
        if SAME_LEVEL_ONE.contains(&k) || DEEPER_ONE.contains(&k) {
            f(v);
        } else if SAME_LEVEL_MANY.contains(&k) {
            if let Value::Array(items) = v {
                items.iter_mut().for_each(&mut f);
            }
        } else if DEEPER_MAP.contains(&k) || SAME_LEVEL_MAP.contains(&k) || k == "$defs" {
            if let Value::Object(m) = v {
                m.values_mut().for_each(&mut f);
            }
        }
    }
}

fn cut_texts(schema: &mut Value, cut: &mut Cuts) {
    let Value::Object(map) = schema else {
        return;
    };
    if let Some(Value::String(d)) = map.get_mut("description") {
        let short = first_sentence(d);
        if short.len() < d.len() {
            *d = short;
            cut.descriptions += 1;
        }
    }
    if map.shift_remove("examples").is_some() {
        cut.examples += 1;
    }
    for_each_subschema(map, |v| cut_texts(v, cut));
}

/// The first sentence of a text: up to the first `.`, `!` or `?` followed by a space and a
/// capital letter or by a line break, or the first blank line; at most 300 characters.
pub fn first_sentence(text: &str) -> String {
    let text = text.trim();
    let mut end = text.len();
    if let Some(i) = text.find("\n\n") {
        end = end.min(i);
    }
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        if i >= end {
            break;
        }
        if matches!(c, '.' | '!' | '?') {
            let next = bytes.get(i + 1).copied();
            let after = text[i + 1..].chars().nth(1);
            let ends = match next {
                None => true,
                Some(b'\n') => true,
                Some(b' ') => after.is_some_and(|a| a.is_uppercase() || a == '`'),
                _ => false,
            };
            if ends {
                end = end.min(i + 1);
                break;
            }
        }
    }
    let mut out = text[..end].trim_end().to_string();
    if out.chars().count() > 300 {
        let cut = out.char_indices().nth(299).map_or(out.len(), |(i, _)| i);
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// Rebuilds a schema with levels from `limit` down left open.
struct Collapser<'a> {
    defs: &'a SharedDefs,
    limit: usize,
    nodes: usize,
    max_nodes: usize,
    aborted: bool,
    /// Where each collapsed node was (property paths), in order.
    collapsed: Vec<String>,
    /// Descriptions cut and examples dropped in what is kept.
    cuts: Cuts,
    /// References being inlined: (definition, level).
    inlining: Vec<(String, usize)>,
    depth: usize,
}

impl<'a> Collapser<'a> {
    fn new(defs: &'a SharedDefs, limit: usize, max_nodes: usize) -> Self {
        Collapser {
            defs,
            limit,
            nodes: 0,
            max_nodes,
            aborted: false,
            collapsed: Vec::new(),
            cuts: Cuts::default(),
            inlining: Vec::new(),
            depth: 0,
        }
    }

    /// The `$defs` entry a `#/$defs/Name` reference names.
    fn target<'r>(&self, reference: &'r str) -> Option<(&'r str, &'a Value)> {
        let name = reference.strip_prefix("#/$defs/")?;
        self.defs.get(name).map(|v| (name, v))
    }

    fn node(&mut self, schema: &Value, level: usize, path: &str) -> Value {
        self.nodes += 1;
        if self.nodes > self.max_nodes {
            self.aborted = true;
        }
        if self.aborted {
            return Value::Bool(true);
        }
        let Value::Object(map) = schema else {
            return schema.clone();
        };
        if self.depth >= MAX_DEPTH {
            // Only reachable through same-level nesting a description would hardly have; an
            // open node ends it (at the root: anything).
            return if level > 0 {
                self.open(map, None, None, path)
            } else {
                Value::Bool(true)
            };
        }
        self.depth += 1;
        let out = self.node_object(map, level, path);
        self.depth -= 1;
        out
    }

    fn node_object(&mut self, map: &Map<String, Value>, level: usize, path: &str) -> Value {
        // A reference into `$defs`: inlined above the limit, left open at it, and left open when
        // it is already being inlined at this level (recursion that goes no level deeper, such
        // as a JSON value type whose arrays hold JSON values).
        if let Some(Value::String(r)) = map.get("$ref") {
            let Some((name, target)) = self.target(r) else {
                // `$defs` do not survive collapsing: a reference to anything else would dangle.
                return self.open(map, None, None, path);
            };
            let again = self.inlining.iter().any(|(n, l)| n == name && *l == level);
            if (level >= self.limit || again) && level > 0 {
                return self.open(map, Some(target), Some(name), path);
            }
            self.inlining.push((name.to_string(), level));
            let inlined = self.node(target, level, path);
            self.inlining.pop();
            let siblings = crate::defs::ref_siblings(map);
            if siblings.is_empty() {
                return inlined;
            }
            let rest = self.node(&Value::Object(siblings), level, path);
            let mut all = vec![inlined];
            let mut out = Map::new();
            if let Value::Object(rest) = rest {
                for (k, v) in rest {
                    match (k.as_str(), v) {
                        ("allOf", Value::Array(more)) => all.extend(more),
                        (_, v) => {
                            out.insert(k, v);
                        }
                    }
                }
            }
            out.insert("allOf".into(), Value::Array(all));
            return Value::Object(out);
        }
        if level >= self.limit && level > 0 && structured(map, 0) {
            return self.open(map, None, None, path);
        }
        let opened_before = self.collapsed.len();
        let mut out = Map::new();
        // Keywords under which something was left open. A wider subschema makes `not` and `if`
        // stricter, `oneOf` may then match twice, and `maxContains` may count more items: each
        // is relaxed below so the node as a whole only ever accepts more.
        let mut opened_in: Vec<&str> = Vec::new();
        for (k, v) in map {
            let key = k.as_str();
            if key == "$defs" {
                continue;
            }
            let before = self.collapsed.len();
            let value = if key == "description" {
                match v {
                    Value::String(d) => {
                        let short = first_sentence(d);
                        if short.len() < d.len() {
                            self.cuts.descriptions += 1;
                        }
                        Value::String(short)
                    }
                    other => other.clone(),
                }
            } else if key == "examples" {
                self.cuts.examples += 1;
                continue;
            } else if SAME_LEVEL_ONE.contains(&key) {
                self.node(v, level, path)
            } else if DEEPER_ONE.contains(&key) {
                self.node(v, level + 1, &join(path, "*"))
            } else if SAME_LEVEL_MANY.contains(&key) {
                match v {
                    Value::Array(items) => Value::Array(
                        items
                            .iter()
                            .map(|item| self.node(item, level, path))
                            .collect(),
                    ),
                    other => other.clone(),
                }
            } else if DEEPER_MAP.contains(&key) || SAME_LEVEL_MAP.contains(&key) {
                let deeper = usize::from(DEEPER_MAP.contains(&key));
                match v {
                    Value::Object(props) => Value::Object(
                        props
                            .iter()
                            .map(|(name, sub)| {
                                let at = if deeper == 1 {
                                    join(path, name)
                                } else {
                                    path.to_string()
                                };
                                (name.clone(), self.node(sub, level + deeper, &at))
                            })
                            .collect(),
                    ),
                    other => other.clone(),
                }
            } else {
                v.clone()
            };
            if self.collapsed.len() > before {
                opened_in.push(key);
            }
            out.insert(k.clone(), value);
        }
        for key in &opened_in {
            match *key {
                "not" | "propertyNames" => {
                    out.shift_remove(*key);
                }
                "if" => {
                    for k in ["if", "then", "else"] {
                        out.shift_remove(k);
                    }
                }
                "contains" => {
                    out.shift_remove("maxContains");
                }
                "oneOf" => {
                    if let Some(branches) = out.shift_remove("oneOf") {
                        if out.contains_key("anyOf") {
                            let wrapped = serde_json::json!({ "anyOf": branches });
                            match out.get_mut("allOf") {
                                Some(Value::Array(all)) => all.push(wrapped),
                                _ => {
                                    out.insert("allOf".into(), Value::Array(vec![wrapped]));
                                }
                            }
                        } else {
                            out.insert("anyOf".into(), branches);
                        }
                    }
                }
                _ => {}
            }
        }
        // What an opened subschema no longer declares, `unevaluated*` would now refuse.
        if self.collapsed.len() > opened_before {
            out.shift_remove("unevaluatedProperties");
            out.shift_remove("unevaluatedItems");
        }
        Value::Object(out)
    }

    /// The open schema that stands for a collapsed node.
    fn open(
        &mut self,
        here: &Map<String, Value>,
        target: Option<&Value>,
        def_name: Option<&str>,
        path: &str,
    ) -> Value {
        let shape = target.and_then(Value::as_object).unwrap_or(here);
        let mut out = Map::new();
        if let Some(t) = here.get("title").or_else(|| shape.get("title")) {
            out.insert("title".into(), t.clone());
        }
        if let Some(t) = shape.get("type") {
            out.insert("type".into(), t.clone());
        }
        let mut found = Names::default();
        property_names(shape, self.defs, 0, &mut found);
        let names = found.list;
        let mut text = here
            .get("description")
            .or_else(|| shape.get("description"))
            .and_then(Value::as_str)
            .map(first_sentence)
            .unwrap_or_default();
        if !text.is_empty() && !text.ends_with(['.', '!', '?', '…']) {
            text.push('.');
        }
        if !text.is_empty() {
            text.push(' ');
        }
        let what = match def_name {
            Some(n) => format!("a `{n}`"),
            None => "this value".to_string(),
        };
        if names.is_empty() {
            text.push_str(&format!(
                "Its full schema ({what}) is left out to keep the tool small; any value of this type is accepted."
            ));
        } else {
            text.push_str(&format!(
                "Fields of {what} not shown, to keep the tool small: {}; any value of this type is accepted.",
                name_list(&names, 8)
            ));
        }
        out.insert("description".into(), Value::String(text));
        self.collapsed.push(if path.is_empty() {
            "(root)".to_string()
        } else {
            path.to_string()
        });
        Value::Object(out)
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Whether a schema has structure below it (properties, references, objects in arrays or
/// combinations) rather than being a leaf such as a string or an enum.
fn structured(map: &Map<String, Value>, depth: usize) -> bool {
    if depth > 8 {
        return true;
    }
    if map.contains_key("$ref")
        || map.contains_key("properties")
        || map.contains_key("patternProperties")
    {
        return true;
    }
    if let Some(Value::Object(a)) = map.get("additionalProperties") {
        if !a.is_empty() {
            return true;
        }
    }
    for key in ["items", "contains"] {
        if let Some(Value::Object(sub)) = map.get(key) {
            if structured(sub, depth + 1) {
                return true;
            }
        }
    }
    SAME_LEVEL_MANY.iter().any(|k| {
        map.get(*k).and_then(Value::as_array).is_some_and(|items| {
            items
                .iter()
                .filter_map(Value::as_object)
                .any(|m| structured(m, depth + 1))
        })
    })
}

/// The property names a schema gives its values, through references and combinations.
fn property_names(map: &Map<String, Value>, defs: &SharedDefs, depth: usize, out: &mut Names) {
    if depth > 4 || out.list.len() >= 1_000 {
        return;
    }
    if let Some(Value::Object(props)) = map.get("properties") {
        for k in props.keys() {
            if out.seen.insert(k.clone()) {
                out.list.push(k.clone());
            }
        }
    }
    if let Some(Value::String(r)) = map.get("$ref") {
        let target = r
            .strip_prefix("#/$defs/")
            .and_then(|n| defs.get(n))
            .and_then(Value::as_object);
        if let Some(t) = target {
            property_names(t, defs, depth + 1, out);
        }
    }
    if let Some(Value::Object(items)) = map.get("items") {
        property_names(items, defs, depth + 1, out);
    }
    for k in SAME_LEVEL_MANY {
        if let Some(Value::Array(items)) = map.get(k) {
            for m in items.iter().filter_map(Value::as_object) {
                property_names(m, defs, depth + 1, out);
            }
        }
    }
}

/// Property names in the order found, each once.
#[derive(Default)]
struct Names {
    list: Vec<String>,
    seen: std::collections::HashSet<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn first_sentences() {
        assert_eq!(first_sentence("One. Two."), "One.");
        assert_eq!(
            first_sentence("See e.g. the docs. Then"),
            "See e.g. the docs."
        );
        assert_eq!(first_sentence("A line\n\nMore"), "A line");
        assert_eq!(first_sentence("Ends.\nNext"), "Ends.");
        assert_eq!(first_sentence("no end"), "no end");
        assert_eq!(first_sentence("v1.2 is out. Yes"), "v1.2 is out.");
        let long = "x".repeat(400);
        assert_eq!(first_sentence(&long).chars().count(), 300);
    }

    #[test]
    fn structure_is_told_from_leaves() {
        let leaf = json!({"type": "array", "items": {"type": "string", "enum": ["a", "b"]}});
        assert!(!structured(leaf.as_object().unwrap(), 0));
        let deep = json!({"type": "array", "items": {"type": "object", "properties": {}}});
        assert!(structured(deep.as_object().unwrap(), 0));
    }
}
