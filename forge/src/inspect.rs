//! `forge inspect`: the IR as a table or as JSON, with a summary of what an MCP client would see.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{json, Map, Value};

use aifirst_capability::{Confidence, Effect};

use crate::diag::{Diagnostic, Location, Severity};
use crate::driver::{Lowered, Stats};
use crate::infer::Coverage;
use crate::ir::{Binding, Capability};

/// Which capabilities to show.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Keep only capabilities with at least one of these tags (empty: all).
    pub include_tags: Vec<String>,
    /// Drop capabilities with any of these tags.
    pub exclude_tags: Vec<String>,
    /// Keep only capabilities whose name or operationId matches one of these globs (`*`, `?`).
    pub ops: Vec<String>,
}

impl Filter {
    pub fn keeps(&self, cap: &Capability) -> bool {
        let has = |tags: &[String]| {
            cap.tags
                .iter()
                .any(|t| tags.iter().any(|x| x.eq_ignore_ascii_case(t)))
        };
        if !self.include_tags.is_empty() && !has(&self.include_tags) {
            return false;
        }
        if has(&self.exclude_tags) {
            return false;
        }
        if !self.ops.is_empty() {
            let id = cap.operation_id.as_deref().unwrap_or("");
            return self
                .ops
                .iter()
                .any(|p| glob(p, &cap.name) || (!id.is_empty() && glob(p, id)));
        }
        true
    }
}

/// Shell-style glob with `*` and `?`, case-sensitive.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A rough token count for JSON and prose: about four bytes a token.
pub fn approx_tokens(bytes: usize) -> usize {
    bytes.div_ceil(4)
}

/// The tool entry an MCP `tools/list` response carries for a capability. Output schemas are not
/// served by default (they cost context and do not help a model choose a tool); they are counted
/// separately in the summary.
pub fn mcp_tool(cap: &Capability) -> Value {
    let mut tool = Map::new();
    tool.insert("name".into(), json!(cap.name));
    if let Some(t) = &cap.title {
        tool.insert("title".into(), json!(t));
    }
    tool.insert("description".into(), json!(cap.description));
    tool.insert("inputSchema".into(), cap.input_schema.clone());
    let a = serde_json::to_value(&cap.annotations).unwrap_or(Value::Null);
    if let Value::Object(a) = a {
        let set: Map<String, Value> = a.into_iter().filter(|(_, v)| !v.is_null()).collect();
        if !set.is_empty() {
            tool.insert("annotations".into(), Value::Object(set));
        }
    }
    Value::Object(tool)
}

/// The size in bytes of [`mcp_tool`]'s JSON, without building it: the input schema is written
/// where it is (not cloned) into a writer that only counts. On Microsoft Graph the tools come to
/// 649 MB, which the clone-and-serialise way allocated twice over.
pub fn mcp_tool_bytes(cap: &Capability) -> usize {
    #[derive(Serialize)]
    struct ToolRef<'a> {
        name: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<&'a String>,
        description: &'a str,
        #[serde(rename = "inputSchema")]
        input_schema: &'a Value,
        #[serde(skip_serializing_if = "Map::is_empty")]
        annotations: Map<String, Value>,
    }
    let annotations = match serde_json::to_value(&cap.annotations) {
        Ok(Value::Object(a)) => a.into_iter().filter(|(_, v)| !v.is_null()).collect(),
        _ => Map::new(),
    };
    let tool = ToolRef {
        name: &cap.name,
        title: cap.title.as_ref(),
        description: &cap.description,
        input_schema: &cap.input_schema,
        annotations,
    };
    crate::defs::serialized_len(&tool)
}

/// The figures under the table.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    #[serde(flatten)]
    pub stats: Stats,
    /// Capabilities left after filters.
    pub shown: usize,
    pub errors: usize,
    pub warnings: usize,
    /// The MCP `tools/list` payload for the shown capabilities.
    pub tools_list_bytes: usize,
    pub tools_list_tokens: usize,
    /// What serving output schemas too would add.
    pub output_schema_bytes: usize,
    pub output_schema_tokens: usize,
    /// The five largest tools by payload size.
    pub largest: Vec<ToolSize>,
    /// Undo coverage of the shown mutating capabilities.
    pub undo: Coverage,
}

#[derive(Debug, Clone, Serialize)]
pub struct ToolSize {
    pub name: String,
    pub bytes: usize,
    pub tokens: usize,
}

/// A capability as `forge inspect --format json` shows it (a stable contract).
#[derive(Debug, Serialize)]
struct CapabilityView<'a> {
    name: &'a str,
    operation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    title: Option<&'a str>,
    description: &'a str,
    tags: &'a [String],
    deprecated: bool,
    input_schema: &'a Value,
    output_schema: Option<OutputSchema<'a>>,
    effects: &'a [aifirst_capability::Effect],
    annotations: Value,
    undo: Option<&'a aifirst_capability::UndoPlan>,
    binding: &'a Binding,
    tokens: usize,
    source: &'a crate::ir::SourceRef,
}

/// A capability's output schema: inline, or `{"$ref": "#/schemas/N"}` when several shown
/// capabilities have the very same one (Microsoft Graph: 22,361 output schemas, 2,208 distinct).
#[derive(Debug)]
enum OutputSchema<'a> {
    Inline(&'a serde_json::value::RawValue),
    Shared(usize),
}

impl Serialize for OutputSchema<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            OutputSchema::Inline(raw) => raw.serialize(s),
            OutputSchema::Shared(i) => {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("$ref", &format!("#/schemas/{i}"))?;
                m.end()
            }
        }
    }
}

#[derive(Serialize)]
struct Contract<'a> {
    capabilities: Views<'a>,
    /// Output schemas several capabilities share, referred to as `#/schemas/N`.
    schemas: &'a [&'a serde_json::value::RawValue],
    diagnostics: &'a [Diagnostic],
    summary: &'a Summary,
}

/// The shown capabilities, serialised one view at a time.
struct Views<'a>(&'a [(&'a Capability, usize)], &'a HashMap<&'a str, usize>);

impl Serialize for Views<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (cap, bytes) in self.0 {
            seq.serialize_element(&view(cap, *bytes, self.1))?;
        }
        seq.end()
    }
}

fn view<'a>(
    cap: &'a Capability,
    bytes: usize,
    shared: &HashMap<&str, usize>,
) -> CapabilityView<'a> {
    let http = cap.binding.http();
    let a = &cap.annotations;
    CapabilityView {
        name: &cap.name,
        operation_id: cap.operation_id.as_deref(),
        method: http.map(|h| h.method.as_str()),
        path: http.map(|h| h.path.as_str()),
        title: cap.title.as_deref(),
        description: &cap.description,
        tags: &cap.tags,
        deprecated: cap.deprecated,
        input_schema: &cap.input_schema,
        output_schema: cap
            .output_schema
            .as_deref()
            .map(|raw| match shared.get(raw.get()) {
                Some(i) => OutputSchema::Shared(*i),
                None => OutputSchema::Inline(raw),
            }),
        effects: &cap.effects,
        annotations: json!({
            "readOnlyHint": a.read_only_hint,
            "destructiveHint": a.destructive_hint,
            "idempotentHint": a.idempotent_hint,
            "openWorldHint": a.open_world_hint,
        }),
        undo: cap.undo.as_ref(),
        binding: &cap.binding,
        tokens: approx_tokens(bytes),
        source: &cap.source,
    }
}

/// Everything `inspect` prints, computed once.
pub struct Report<'a> {
    pub shown: Vec<(&'a Capability, usize)>,
    /// Output schemas of more than one shown capability, in order of first use.
    shared: Vec<&'a serde_json::value::RawValue>,
    /// Their index in `shared`, by their text.
    shared_index: HashMap<&'a str, usize>,
    pub diagnostics: &'a [Diagnostic],
    pub summary: Summary,
}

pub fn report<'a>(lowered: &'a Lowered, filter: &Filter) -> Report<'a> {
    let mut shown = Vec::new();
    let mut total = 2usize; // `[` `]`
    let mut out_bytes = 0usize;
    let mut sizes = Vec::new();
    for cap in lowered.ir.capabilities.iter().filter(|c| filter.keeps(c)) {
        let bytes = mcp_tool_bytes(cap);
        total += bytes + 1;
        if let Some(o) = &cap.output_schema {
            out_bytes += o.get().len() + "\"outputSchema\":,".len();
        }
        sizes.push(ToolSize {
            name: cap.name.clone(),
            bytes,
            tokens: approx_tokens(bytes),
        });
        shown.push((cap, bytes));
    }
    let total = total + r#"{"tools":}"#.len();
    sizes.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
    sizes.truncate(5);
    let count = |s: Severity| {
        lowered
            .diagnostics
            .iter()
            .filter(|d| d.severity == s)
            .count()
    };
    let summary = Summary {
        stats: lowered.stats.clone(),
        shown: shown.len(),
        errors: count(Severity::Error),
        warnings: count(Severity::Warning),
        tools_list_bytes: total,
        tools_list_tokens: approx_tokens(total),
        output_schema_bytes: out_bytes,
        output_schema_tokens: approx_tokens(out_bytes),
        largest: sizes,
        undo: Coverage::of(shown.iter().map(|(c, _)| *c)),
    };
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for (cap, _) in &shown {
        if let Some(o) = &cap.output_schema {
            *uses.entry(o.get()).or_default() += 1;
        }
    }
    let mut shared = Vec::new();
    let mut shared_index = HashMap::new();
    for (cap, _) in &shown {
        if let Some(o) = &cap.output_schema {
            if uses.get(o.get()).copied().unwrap_or(0) > 1 && !shared_index.contains_key(o.get()) {
                shared_index.insert(o.get(), shared.len());
                shared.push(&**o);
            }
        }
    }
    Report {
        shown,
        shared,
        shared_index,
        diagnostics: &lowered.diagnostics,
        summary,
    }
}

impl Report<'_> {
    /// The JSON contract: `{"capabilities":[…],"diagnostics":[…],"summary":{…}}`.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.contract()).unwrap_or(Value::Null)
    }

    /// The same JSON written as it is made, compact (no tree of the whole IR is built: on
    /// Microsoft Graph that tree was gigabytes).
    pub fn write_json(&self, w: impl std::io::Write) -> serde_json::Result<()> {
        serde_json::to_writer(w, &self.contract())
    }

    fn contract(&self) -> Contract<'_> {
        Contract {
            capabilities: Views(&self.shown, &self.shared_index),
            schemas: &self.shared,
            diagnostics: self.diagnostics,
            summary: &self.summary,
        }
    }

    /// The human table, one row a capability, then the summary.
    pub fn to_table(&self) -> String {
        const PATH_MAX: usize = 56;
        let rows: Vec<[String; 6]> = self
            .shown
            .iter()
            .map(|(cap, bytes)| {
                let mut route = cap.binding.route();
                if route.chars().count() > PATH_MAX {
                    route = route.chars().take(PATH_MAX - 1).collect::<String>() + "…";
                }
                // Scopes (`network` for every HTTP capability) are in the JSON, not the table.
                let kinds: Vec<&str> = cap
                    .effects
                    .iter()
                    .filter(|e| !e.is_scope())
                    .map(|e| e.as_str())
                    .collect();
                let effects = if kinds.is_empty() {
                    "-".to_string()
                } else {
                    kinds.join(",")
                };
                let undo = match &cap.undo {
                    None => "-".to_string(),
                    Some(u) => {
                        let kind = serde_json::to_value(u.kind).ok();
                        let conf = serde_json::to_value(u.confidence).ok();
                        format!(
                            "{} ({})",
                            kind.as_ref().and_then(Value::as_str).unwrap_or("?"),
                            conf.as_ref().and_then(Value::as_str).unwrap_or("?")
                        )
                    }
                };
                let params = match cap.input_schema.get("properties") {
                    Some(Value::Object(p)) => p.len(),
                    _ => 0,
                };
                [
                    cap.name.clone(),
                    route,
                    params.to_string(),
                    effects,
                    undo,
                    approx_tokens(*bytes).to_string(),
                ]
            })
            .collect();
        let place = if self.shown.iter().all(|(c, _)| c.binding.python().is_some())
            && !self.shown.is_empty()
        {
            "FUNCTION"
        } else {
            "METHOD PATH"
        };
        let header = ["NAME", place, "PARAMS", "EFFECTS", "UNDO", "TOKENS"];
        let mut widths = header.map(|h| h.chars().count());
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r.iter()) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let line = |cells: [&str; 6], out: &mut String| {
            let mut l = String::new();
            for (i, (c, w)) in cells.iter().zip(widths.iter()).enumerate() {
                let pad = w.saturating_sub(c.chars().count());
                if i == 2 || i == 5 {
                    let _ = write!(l, "{}{}", " ".repeat(pad), c);
                } else {
                    let _ = write!(l, "{}{}", c, " ".repeat(pad));
                }
                if i < 5 {
                    l.push_str("  ");
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(header, &mut out);
        for r in &rows {
            line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]], &mut out);
        }
        let s = &self.summary;
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{} operations: {} imported, {} skipped, {} renamed; {} shown",
            s.stats.operations, s.stats.imported, s.stats.skipped, s.stats.renamed, s.shown
        );
        let _ = writeln!(
            out,
            "diagnostics: {} errors, {} warnings",
            s.errors, s.warnings
        );
        let u = &s.undo;
        let _ = writeln!(
            out,
            "undo: {} of {} mutating capabilities have a plan ({:.1}%): {} high, {} medium, {} low confidence; {} irreversible",
            u.reversible,
            u.mutating,
            u.percent(),
            u.high,
            u.medium,
            u.low,
            u.irreversible
        );
        let _ = writeln!(
            out,
            "MCP tools/list: {} bytes, ~{} tokens (output schemas would add {} bytes, ~{} tokens)",
            s.tools_list_bytes, s.tools_list_tokens, s.output_schema_bytes, s.output_schema_tokens
        );
        if !s.largest.is_empty() {
            let _ = writeln!(out, "largest tools:");
            for t in &s.largest {
                let _ = writeln!(
                    out,
                    "  {:<48}  {:>7} bytes  ~{} tokens",
                    t.name, t.bytes, t.tokens
                );
            }
        }
        out
    }
}

/// What `forge check` enforces.
#[derive(Debug, Clone)]
pub struct CheckRules {
    /// Effects no capability may have.
    pub deny: Vec<Effect>,
    /// Every mutating capability needs a plan that reverses it.
    pub require_undo: bool,
    /// Plans below this confidence count as missing.
    pub min_confidence: Confidence,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub code: &'static str,
    pub capability: String,
    pub message: String,
    pub location: Location,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "violation[{}]: {}\n  --> {}",
            self.code, self.message, self.location
        )
    }
}

/// Every violation of `rules` among the capabilities `filter` keeps, in order.
pub fn check(lowered: &Lowered, filter: &Filter, rules: &CheckRules) -> Vec<Violation> {
    let mut out = Vec::new();
    for cap in lowered.ir.capabilities.iter().filter(|c| filter.keeps(c)) {
        let route = cap.binding.route();
        let location = Location {
            file: cap.source.file.clone(),
            pointer: cap.source.pointer.clone(),
            line: cap.source.line,
        };
        for e in cap.effects.iter().filter(|e| rules.deny.contains(e)) {
            out.push(Violation {
                code: "denied-effect",
                capability: cap.name.clone(),
                message: format!("`{}` ({route}) has denied effect `{e}`", cap.name),
                location: location.clone(),
            });
        }
        if rules.require_undo && cap.effects.iter().any(|e| e.is_mutating()) {
            let why = match &cap.undo {
                None => Some("has no undo plan".to_string()),
                Some(p) if !p.reverses() => Some(format!(
                    "is irreversible: {}",
                    p.reason.as_deref().unwrap_or("no reason given")
                )),
                Some(p) if p.confidence < rules.min_confidence => Some(format!(
                    "has an undo plan of {} confidence, below the required {}",
                    p.confidence.as_str(),
                    rules.min_confidence.as_str()
                )),
                Some(_) => None,
            };
            if let Some(why) = why {
                out.push(Violation {
                    code: "no-undo",
                    capability: cap.name.clone(),
                    message: format!("`{}` ({route}) {why}", cap.name),
                    location,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// The counted size is the size of the tool `tools/list` would carry, byte for byte.
    #[test]
    fn counted_tool_size_matches_the_serialised_tool() {
        for fixture in ["petstore", "openapi31", "hostile", "inference"] {
            let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fixtures")
                .join(fixture)
                .join("openapi.yaml");
            let lowered = crate::driver::lower(&spec, &crate::driver::Options::default()).unwrap();
            assert!(!lowered.ir.capabilities.is_empty(), "{fixture}");
            for cap in &lowered.ir.capabilities {
                let want = serde_json::to_vec(&mcp_tool(cap)).unwrap().len();
                assert_eq!(mcp_tool_bytes(cap), want, "{fixture}: {}", cap.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*", "anything"));
        assert!(glob("list_*", "list_pets"));
        assert!(!glob("list_*", "get_pet"));
        assert!(glob("*pet?", "get_pets"));
        assert!(glob("repos_*_issue*", "repos_create_issue_comment"));
        assert!(!glob("a?c", "abbc"));
    }

    #[test]
    fn token_estimate_rounds_up() {
        assert_eq!(approx_tokens(0), 0);
        assert_eq!(approx_tokens(1), 1);
        assert_eq!(approx_tokens(8), 2);
        assert_eq!(approx_tokens(9), 3);
    }
}
