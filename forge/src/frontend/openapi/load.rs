//! Reading a description from disk: JSON or YAML into a `serde_json::Value`, and mapping JSON
//! pointers back to source lines for diagnostics.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Map, Number, Value};

use crate::diag::split_pointer;

/// Why a file could not be read as a document at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} is not valid YAML: {source}")]
    Yaml {
        path: PathBuf,
        #[source]
        source: serde_norway::Error,
    },
    #[error(
        "{path} is {size} bytes, more than the limit of {limit} (FORGE_MAX_SPEC_BYTES raises it)"
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{path} is nested deeper than {MAX_DEPTH} levels at line {line}, column {column}; no API description is")]
    TooDeep {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    #[error("{path}: YAML value at {at} cannot be represented as JSON: {why}")]
    YamlShape {
        path: PathBuf,
        at: String,
        why: String,
    },
}

/// The syntax a document was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Json,
    Yaml,
}

/// A parsed file: its text (kept for line lookups) and its value.
#[derive(Debug)]
pub struct Source {
    pub text: String,
    pub syntax: Syntax,
    pub value: Value,
    /// Pointer → (byte offset, line) of the nodes near the root, built on first lookup.
    index: OnceLock<HashMap<String, (usize, usize)>>,
}

/// The largest description read, unless `FORGE_MAX_SPEC_BYTES` says otherwise: a clear error
/// instead of an allocation that fails (the biggest real description, Microsoft Graph beta, is
/// 47 MB).
pub const MAX_SPEC_BYTES: u64 = 128 << 20;

/// How deeply a JSON document may nest (serde_json's own limit): deeper is an error, at once.
pub const MAX_DEPTH: usize = 128;

/// How deep the line index goes: `/paths/{path}/{method}` is three tokens.
const INDEX_DEPTH: usize = 3;

/// Reads and parses a file. JSON is detected by its first non-blank character; anything else is YAML.
pub fn load_file(path: &Path) -> Result<Source, LoadError> {
    let limit = std::env::var("FORGE_MAX_SPEC_BYTES")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(MAX_SPEC_BYTES);
    load_file_within(path, limit)
}

/// [`load_file`] with an explicit size limit in bytes.
pub fn load_file_within(path: &Path, limit: u64) -> Result<Source, LoadError> {
    let bytes = crate::frontend::read_regular(path, limit).map_err(|e| match e {
        crate::frontend::ReadError::Io(source) => LoadError::Io {
            path: path.to_path_buf(),
            source,
        },
        crate::frontend::ReadError::TooLarge(size) => LoadError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit,
        },
    })?;
    let text = String::from_utf8(bytes).map_err(|e| LoadError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
    })?;
    parse_text(text, path)
}

/// Parses text already in memory; `path` is only used in errors.
pub fn parse_text(text: String, path: &Path) -> Result<Source, LoadError> {
    let body = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let first = body.trim_start().chars().next();
    if matches!(first, Some('{') | Some('[')) {
        match serde_json::from_str::<Value>(body) {
            Ok(value) => {
                return Ok(Source {
                    text,
                    syntax: Syntax::Json,
                    value,
                    index: OnceLock::new(),
                })
            }
            // Nested past the limit: an error now, not a retry as YAML (which is slow on it).
            Err(e) if e.to_string().starts_with("recursion limit exceeded") => {
                return Err(LoadError::TooDeep {
                    path: path.to_path_buf(),
                    line: e.line(),
                    column: e.column(),
                });
            }
            // Obviously JSON (a quoted first key, or a parse that went far before failing):
            // the JSON error is the one to show; YAML would only be slow and confusing.
            Err(json_err) if obviously_json(body, &json_err) => {
                return Err(LoadError::Json {
                    path: path.to_path_buf(),
                    source: json_err,
                });
            }
            // Flow-style YAML also starts with `{`; fall back to YAML before giving up.
            Err(json_err) => {
                return match yaml_to_json(body, path) {
                    Ok(value) => Ok(Source {
                        text,
                        syntax: Syntax::Yaml,
                        value,
                        index: OnceLock::new(),
                    }),
                    Err(_) => Err(LoadError::Json {
                        path: path.to_path_buf(),
                        source: json_err,
                    }),
                };
            }
        }
    }
    let value = yaml_to_json(body, path)?;
    Ok(Source {
        text,
        syntax: Syntax::Yaml,
        value,
        index: OnceLock::new(),
    })
}

/// Where flow brackets (`[`, `{`) first nest deeper than `max`, outside quoted scalars and
/// comments: a YAML parser takes quadratic time on such text (20 s for 100,000 levels), so it is
/// refused before parsing. No real description nests a tenth as deep.
fn flow_too_deep(text: &str, max: usize) -> Option<(usize, usize)> {
    let (mut depth, mut line, mut col) = (0usize, 1usize, 0usize);
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut prev = ' ';
    for c in text.chars() {
        col += 1;
        if c == '\n' {
            line += 1;
            col = 0;
            comment = false;
            prev = c;
            continue;
        }
        if comment {
            continue;
        }
        match quote {
            Some(q) if c == q && !(q == '"' && prev == '\\') => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' if prev.is_whitespace() || "[{,:".contains(prev) => quote = Some(c),
                '#' if prev.is_whitespace() => comment = true,
                '[' | '{' => {
                    depth += 1;
                    if depth > max {
                        return Some((line, col));
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        prev = c;
    }
    None
}

/// Whether text that failed to parse as JSON is JSON all the same: its first key is quoted
/// (`{"openapi": …`), or it parsed past its first line before failing.
fn obviously_json(body: &str, err: &serde_json::Error) -> bool {
    let t = body.trim_start();
    let after = t[1..].trim_start();
    let quoted_key = t.starts_with('{') && after.starts_with('"');
    let array_of_objects = t.starts_with('[') && after.starts_with('{');
    quoted_key || array_of_objects || err.line() > 1
}

fn yaml_to_json(text: &str, path: &Path) -> Result<Value, LoadError> {
    if let Some((line, column)) = flow_too_deep(text, MAX_DEPTH) {
        return Err(LoadError::TooDeep {
            path: path.to_path_buf(),
            line,
            column,
        });
    }
    // Aliases repeat what their anchor holds: a few kilobytes of `*a` lines can stand for
    // gigabytes (within the parser's own limit on alias jumps). The nodes the text stands for
    // are counted first, without building them, and past the budget it is refused.
    let budget = (text.len() as u64).max(MIN_YAML_NODES);
    let counted = if !may_have_anchors(text) {
        Ok(())
    } else {
        serde::de::DeserializeSeed::deserialize(
            CountNodes {
                left: std::cell::Cell::new(budget),
            },
            serde_norway::Deserializer::from_str(text),
        )
    };
    if let Err(e) = counted {
        if e.to_string().contains(TOO_MANY_NODES) {
            return Err(LoadError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "its aliases (`*name`) stand for more than {budget} values, far more than \
                         the text holds; no API description repeats itself so much"
                    ),
                ),
            });
        }
        // Any other error is the parser's, reported by the parse below.
    }
    let mut yaml: serde_norway::Value =
        serde_norway::from_str(text).map_err(|source| LoadError::Yaml {
            path: path.to_path_buf(),
            source,
        })?;
    yaml.apply_merge().map_err(|source| LoadError::Yaml {
        path: path.to_path_buf(),
        source,
    })?;
    convert_yaml(yaml, path, &mut String::new())
}

/// Whether `text` may hold a YAML anchor (`&name` after white space or a flow indicator):
/// without one it has no alias to expand, and the count of [`CountNodes`] is skipped.
fn may_have_anchors(text: &str) -> bool {
    let b = text.as_bytes();
    b.windows(3).any(|w| {
        w[1] == b'&'
            && matches!(
                w[0],
                b' ' | b'\t' | b'\n' | b'[' | b'{' | b',' | b'-' | b':'
            )
            && !w[2].is_ascii_whitespace()
    })
}

/// Values a YAML text may stand for at least, whatever its length (see [`CountNodes`]).
const MIN_YAML_NODES: u64 = 2_000_000;
const TOO_MANY_NODES: &str = "aifirst: too many YAML values";

/// Counts the values a YAML document stands for, aliases expanded, without building them; an
/// error once more than `left` are met.
struct CountNodes {
    left: std::cell::Cell<u64>,
}

impl CountNodes {
    fn take<E: serde::de::Error>(&self) -> Result<(), E> {
        match self.left.get().checked_sub(1) {
            Some(n) => {
                self.left.set(n);
                Ok(())
            }
            None => Err(E::custom(TOO_MANY_NODES)),
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for &CountNodes {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for CountNodes {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(&self)
    }
}

impl<'de> serde::de::Visitor<'de> for &CountNodes {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.take()
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.take()
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.take()
    }
    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<(), E> {
        self.take()
    }
    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<(), E> {
        self.take()
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.take()
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        self.take()
    }
    fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<(), E> {
        self.take()
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.take()
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.take()
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.take()?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.take()?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        use serde::de::VariantAccess as _;
        self.take()?;
        let ((), variant) = data.variant_seed(self)?;
        variant.newtype_variant_seed(self)
    }
}

/// Converts YAML to JSON: non-string keys become their text (`200:` → `"200"`), tags are dropped.
fn convert_yaml(v: serde_norway::Value, path: &Path, at: &mut String) -> Result<Value, LoadError> {
    use serde_norway::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Number(i.into())
            } else if let Some(u) = n.as_u64() {
                Value::Number(u.into())
            } else {
                // NaN and infinities have no JSON form; they mean nothing in an API description.
                n.as_f64()
                    .and_then(Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let len = at.len();
                at.push('/');
                at.push_str(&i.to_string());
                out.push(convert_yaml(item, path, at)?);
                at.truncate(len);
            }
            Value::Array(out)
        }
        Y::Mapping(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    Y::Null => "null".to_string(),
                    other => {
                        return Err(LoadError::YamlShape {
                            path: path.to_path_buf(),
                            at: if at.is_empty() {
                                "/".into()
                            } else {
                                at.clone()
                            },
                            why: format!("a mapping key must be a scalar, found {other:?}"),
                        })
                    }
                };
                let len = at.len();
                at.push('/');
                at.push_str(&key);
                let value = convert_yaml(v, path, at)?;
                at.truncate(len);
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => convert_yaml(t.value, path, at)?,
    })
}

/// The 1-based line a JSON pointer points at; when the node itself cannot be found in the text
/// (flow-style YAML, say), the line of its nearest ancestor that can.
pub fn line_of(source: &Source, pointer: &str) -> Option<usize> {
    let mut p = pointer;
    loop {
        if let Some(line) = exact_line_of(source, p) {
            return Some(line);
        }
        match p.rsplit_once('/') {
            Some((parent, _)) if !parent.is_empty() => p = parent,
            _ => return None,
        }
    }
}

/// The 1-based line of exactly this node, when it can be found in the source text.
fn exact_line_of(source: &Source, pointer: &str) -> Option<usize> {
    let index = source.index.get_or_init(|| build_index(source));
    if let Some(&(_, line)) = index.get(pointer) {
        return Some(line);
    }
    let tokens = split_pointer(pointer)?;
    match source.syntax {
        Syntax::Json => {
            // Resume from the deepest indexed ancestor instead of the top of the file.
            let bytes = source.text.as_bytes();
            // (offset, tokens consumed, line) of the deepest indexed ancestor.
            let mut start = (0usize, 0usize, 1usize);
            let mut prefix = String::new();
            for (depth, token) in tokens.iter().enumerate().take(INDEX_DEPTH) {
                prefix = crate::diag::push_token(&prefix, token);
                match index.get(&prefix) {
                    Some(&(offset, line)) => start = (offset, depth + 1, line),
                    None => break,
                }
            }
            let offset = json_offset_from(bytes, start.0, &tokens[start.1..])?;
            // Lines counted from that ancestor, not from the top: a description with thousands
            // of diagnostics would otherwise count its whole text for each one.
            Some(start.2 + line_at(&bytes[start.0..], offset.saturating_sub(start.0)) - 1)
        }
        Syntax::Yaml => yaml_line(&source.text, &tokens),
    }
}

fn line_at(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1
}

fn build_index(source: &Source) -> HashMap<String, (usize, usize)> {
    let mut out = HashMap::new();
    match source.syntax {
        Syntax::Json => {
            let bytes = source.text.as_bytes();
            let mut offsets = Vec::new();
            json_index(
                bytes,
                skip_ws(bytes, 0),
                &mut String::new(),
                0,
                &mut offsets,
            );
            // One pass over the text turns offsets (already increasing) into lines.
            let mut line = 1usize;
            let mut pos = 0usize;
            for (pointer, offset) in offsets {
                line += bytes[pos..offset].iter().filter(|&&b| b == b'\n').count();
                pos = offset;
                out.insert(pointer, (offset, line));
            }
        }
        Syntax::Yaml => yaml_index(&source.text, &mut out),
    }
    out
}

/// Records the offset of every node up to [`INDEX_DEPTH`] tokens deep; returns the index after the value.
fn json_index(
    b: &[u8],
    i: usize,
    at: &mut String,
    depth: usize,
    out: &mut Vec<(String, usize)>,
) -> Option<usize> {
    out.push((at.clone(), i));
    if depth == INDEX_DEPTH {
        return skip_value(b, i);
    }
    match b.get(i)? {
        b'{' => {
            let mut j = skip_ws(b, i + 1);
            if b.get(j)? == &b'}' {
                return Some(j + 1);
            }
            loop {
                let (key, after) = read_string(b, j)?;
                j = skip_ws(b, after);
                if b.get(j)? != &b':' {
                    return None;
                }
                j = skip_ws(b, j + 1);
                let len = at.len();
                *at = crate::diag::push_token(at, &key);
                j = skip_ws(b, json_index(b, j, at, depth + 1, out)?);
                at.truncate(len);
                match b.get(j)? {
                    b',' => j = skip_ws(b, j + 1),
                    b'}' => return Some(j + 1),
                    _ => return None,
                }
            }
        }
        b'[' => {
            let mut j = skip_ws(b, i + 1);
            if b.get(j)? == &b']' {
                return Some(j + 1);
            }
            let mut n = 0usize;
            loop {
                let len = at.len();
                at.push('/');
                at.push_str(&n.to_string());
                j = skip_ws(b, json_index(b, j, at, depth + 1, out)?);
                at.truncate(len);
                n += 1;
                match b.get(j)? {
                    b',' => j = skip_ws(b, j + 1),
                    b']' => return Some(j + 1),
                    _ => return None,
                }
            }
        }
        _ => skip_value(b, i),
    }
}

/// Block-style YAML keys up to [`INDEX_DEPTH`] deep, outside sequences.
fn yaml_index(text: &str, out: &mut HashMap<String, (usize, usize)>) {
    let mut stack: Vec<(usize, String)> = Vec::new(); // (indent, pointer)
    let mut offset = 0usize;
    for (n, raw) in text.split('\n').enumerate() {
        let line_offset = offset;
        offset += raw.len() + 1;
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
            continue;
        }
        let indent = raw.len() - trimmed.len();
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        if trimmed.starts_with('-') {
            // Inside a sequence: keys below are not indexed (the fallback scan finds them).
            stack.push((indent, String::from("\u{0}")));
            continue;
        }
        let Some(key) = yaml_key(trimmed) else {
            continue;
        };
        let parent = stack.last().map(|(_, p)| p.as_str()).unwrap_or("");
        if parent.contains('\u{0}') {
            stack.push((indent, String::from("\u{0}")));
            continue;
        }
        let pointer = crate::diag::push_token(parent, &key);
        if stack.len() < INDEX_DEPTH {
            out.entry(pointer.clone())
                .or_insert((line_offset + indent, n + 1));
        }
        stack.push((indent, pointer));
    }
}

/// The key of a `key: value` / `"key":` / `'key':` line.
fn yaml_key(trimmed: &str) -> Option<String> {
    if let Some(rest) = trimmed.strip_prefix('"') {
        let end = rest.find("\":")?;
        return serde_json::from_str::<String>(&format!("\"{}\"", &rest[..end])).ok();
    }
    if let Some(rest) = trimmed.strip_prefix('\'') {
        let end = rest.find("':")?;
        return Some(rest[..end].replace("''", "'"));
    }
    let end = trimmed
        .find(": ")
        .or_else(|| trimmed.strip_suffix(':').map(str::len))?;
    let key = &trimmed[..end];
    if key.starts_with(['{', '[', '&', '*', '!', '|', '>']) {
        return None;
    }
    Some(key.to_string())
}

// ---- JSON: a small scanner that walks the pointer without building values ----

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// Reads a JSON string starting at `i` (on the quote); returns (decoded, index after).
fn read_string(b: &[u8], i: usize) -> Option<(String, usize)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    let mut has_escape = false;
    while j < b.len() {
        match b[j] {
            b'\\' => {
                has_escape = true;
                j += 2;
            }
            b'"' => {
                let raw = &b[i..=j];
                let s = if has_escape {
                    serde_json::from_slice::<String>(raw).ok()?
                } else {
                    String::from_utf8(b[i + 1..j].to_vec()).ok()?
                };
                return Some((s, j + 1));
            }
            _ => j += 1,
        }
    }
    None
}

/// Skips a JSON string starting at `i` (on the quote) without decoding it.
fn skip_string(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// Skips one JSON value starting at `i`; returns the index after it.
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    let i = skip_ws(b, i);
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
            {
                j += 1;
            }
            Some(j)
        }
    }
}

fn json_offset_from(b: &[u8], start: usize, tokens: &[String]) -> Option<usize> {
    let mut i = skip_ws(b, start);
    for token in tokens {
        match b.get(i)? {
            b'{' => {
                i = skip_ws(b, i + 1);
                loop {
                    if b.get(i)? == &b'}' {
                        return None;
                    }
                    let (key, after) = read_string(b, i)?;
                    i = skip_ws(b, after);
                    if b.get(i)? != &b':' {
                        return None;
                    }
                    i = skip_ws(b, i + 1);
                    if &key == token {
                        break;
                    }
                    i = skip_ws(b, skip_value(b, i)?);
                    match b.get(i)? {
                        b',' => i = skip_ws(b, i + 1),
                        _ => return None,
                    }
                }
            }
            b'[' => {
                let index: usize = token.parse().ok()?;
                i = skip_ws(b, i + 1);
                for _ in 0..index {
                    i = skip_ws(b, skip_value(b, i)?);
                    if b.get(i)? != &b',' {
                        return None;
                    }
                    i = skip_ws(b, i + 1);
                }
            }
            _ => return None,
        }
    }
    Some(i)
}

// ---- YAML: block-style heuristic (flow style and odd quoting give `None`) ----

fn yaml_line(text: &str, tokens: &[String]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    // The node being searched starts at `start`; when `item` is set, that line is a sequence item
    // whose `- ` counts as indentation (its first key sits on the dash's line).
    let mut start = 0usize;
    let mut parent_indent: isize = -1;
    let mut item = false;
    let mut found = None;
    for token in tokens {
        let want_index = token.parse::<usize>().ok();
        let mut child_indent: Option<usize> = None;
        let mut seq_index = 0usize;
        let mut hit = None;
        for (n, raw) in lines.iter().enumerate().skip(start) {
            let (mut indent, mut trimmed) = {
                let t = raw.trim_start();
                (raw.len() - t.len(), t)
            };
            if item && n == start {
                trimmed = trimmed.strip_prefix('-').unwrap_or(trimmed);
                let t = trimmed.trim_start();
                indent += raw.trim_start().len() - t.len();
                trimmed = t;
            }
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let is_seq = trimmed == "-" || trimmed.starts_with("- ");
            // A block sequence may sit at its key's own indentation.
            let inside = (indent as isize) > parent_indent
                || (is_seq && want_index.is_some() && indent as isize == parent_indent);
            if !inside {
                break;
            }
            let ci = *child_indent.get_or_insert(indent);
            if indent != ci {
                continue;
            }
            match want_index {
                Some(i) if is_seq => {
                    if seq_index == i {
                        hit = Some((n, indent, true));
                        break;
                    }
                    seq_index += 1;
                }
                _ if yaml_key_matches(trimmed, token) => {
                    hit = Some((n, indent, false));
                    break;
                }
                _ => {}
            }
        }
        let (n, indent, is_item) = hit?;
        found = Some(n);
        parent_indent = indent as isize;
        item = is_item;
        start = if is_item { n } else { n + 1 };
    }
    found.map(|n| n + 1)
}

fn yaml_key_matches(trimmed: &str, token: &str) -> bool {
    for quote in ["", "\"", "'"] {
        let candidate = format!("{quote}{token}{quote}:");
        if let Some(rest) = trimmed.strip_prefix(&candidate) {
            if rest.is_empty() || rest.starts_with(' ') {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> Source {
        parse_text(text.to_string(), Path::new("t")).unwrap()
    }

    #[test]
    fn yaml_anchors_merge_keys_and_integer_keys() {
        let s = src("base: &b {type: string}\nx:\n  <<: *b\n  format: uuid\nresponses:\n  200: {description: ok}\n");
        assert_eq!(s.value["x"]["type"], "string");
        assert_eq!(s.value["x"]["format"], "uuid");
        assert_eq!(s.value["responses"]["200"]["description"], "ok");
    }

    #[test]
    fn json_pointer_lines() {
        let s = src("{\n  \"paths\": {\n    \"/a\": {\n      \"get\": {}\n    },\n    \"/b~c\": {\"post\": 1}\n  }\n}\n");
        assert_eq!(line_of(&s, "/paths/~1a/get"), Some(4));
        assert_eq!(line_of(&s, "/paths/~1b~0c/post"), Some(6));
        // A node that is not there points at its nearest ancestor that is.
        assert_eq!(line_of(&s, "/paths/~1zzz"), Some(2));
        assert_eq!(line_of(&s, "/nothing"), None);
    }

    #[test]
    fn yaml_pointer_lines() {
        let s = src("openapi: 3.0.0\npaths:\n  /a:\n    get:\n      parameters:\n        - name: x\n          in: query\n        - name: y\n          in: path\n  /b:\n    post: {}\n");
        assert_eq!(line_of(&s, "/paths/~1a/get"), Some(4));
        assert_eq!(line_of(&s, "/paths/~1a/get/parameters/1"), Some(8));
        assert_eq!(line_of(&s, "/paths/~1a/get/parameters/1/in"), Some(9));
        assert_eq!(line_of(&s, "/paths/~1b/post"), Some(11));
        assert_eq!(line_of(&s, "/paths/~1a/get/parameters/0/name"), Some(6));
    }

    #[test]
    fn deep_json_pointers_resume_from_the_index() {
        let s = src("{\"paths\": {\"/a\": {\"get\": {\n\"parameters\": [\n{\"name\": \"x\"},\n{\"name\": \"y\"}]}}}}");
        assert_eq!(line_of(&s, "/paths/~1a/get"), Some(1));
        assert_eq!(line_of(&s, "/paths/~1a/get/parameters/1"), Some(4));
        assert_eq!(line_of(&s, "/paths/~1a/get/parameters/1/name"), Some(4));
    }

    #[test]
    fn deep_or_broken_json_is_rejected_at_once_without_a_yaml_retry() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = parse_text(deep, Path::new("deep.json")).unwrap_err();
        assert!(matches!(e, LoadError::TooDeep { .. }), "{e}");
        assert!(e.to_string().contains("nested deeper than 128"), "{e}");
        let e = parse_text(
            "{\"openapi\": \"3.0.0\", \"paths\": {,}}".into(),
            Path::new("broken.json"),
        )
        .unwrap_err();
        assert!(matches!(e, LoadError::Json { .. }), "{e}");
        // Deep flow YAML is refused before the (quadratic) YAML parser sees it.
        let deep = format!("x: {}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = parse_text(deep, Path::new("deep.yaml")).unwrap_err();
        assert!(matches!(e, LoadError::TooDeep { line: 1, .. }), "{e}");
        // Brackets inside quotes and comments do not count.
        let quoted = format!(
            "x: '{}'\n# {}\ny: \"{}\"\n",
            "[".repeat(500),
            "{".repeat(500),
            "[".repeat(500)
        );
        assert!(parse_text(quoted, Path::new("q.yaml")).is_ok());
        // Flow-style YAML that is not JSON still loads.
        let s = parse_text(
            "{openapi: 3.0.0, info: {title: t}}".into(),
            Path::new("f.yaml"),
        )
        .unwrap();
        assert_eq!(s.value["info"]["title"], "t");
    }

    #[test]
    fn a_file_over_the_size_limit_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.json");
        std::fs::write(&p, format!("{{\"pad\": \"{}\"}}", "x".repeat(300))).unwrap();
        let e = load_file_within(&p, 100).unwrap_err();
        assert!(matches!(e, LoadError::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("FORGE_MAX_SPEC_BYTES"), "{e}");
    }

    /// A FIFO (a `$ref` to one would hold forge for ever) and a device (`/dev/zero` reports no
    /// size and never ends) are refused, not read.
    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_device_is_refused_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("spec.yaml");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        for p in [fifo.as_path(), Path::new("/dev/zero")] {
            let e = load_file_within(p, 1 << 20).unwrap_err();
            assert!(e.to_string().contains("not a regular file"), "{e}");
        }
    }

    /// An alias bomb small enough for the parser's limit on alias jumps (one anchor of 5,000
    /// values, repeated 1,000 times: 17 KB standing for 5 million values, a gigabyte built) is
    /// refused before anything is built; ordinary anchors load.
    #[test]
    fn yaml_aliases_that_stand_for_too_much_are_refused() {
        let mut text = String::from("openapi: 3.0.0\nx-big: &b [");
        text.push_str(&vec!["a"; 5000].join(","));
        text.push_str("]\nx-uses:\n");
        for _ in 0..1000 {
            text.push_str("  - *b\n");
        }
        let e = parse_text(text, Path::new("bomb.yaml")).unwrap_err();
        assert!(e.to_string().contains("stand for more than"), "{e}");
        let ok = parse_text("a: &x {k: 1}\nb: *x\nc: R&D\n".into(), Path::new("ok.yaml")).unwrap();
        assert_eq!(ok.value["b"]["k"], 1);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_text("{ not json".into(), Path::new("t")).is_err());
        assert!(parse_text("a: [unclosed".into(), Path::new("t")).is_err());
    }
}
