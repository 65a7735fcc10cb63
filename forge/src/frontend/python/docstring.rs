//! Docstrings in Google, NumPy and Sphinx/reST styles, recognised automatically section by
//! section: the summary, the text and type of each parameter, and the rest as a description.
//!
//! The raw text is first cleaned like Python's `inspect.cleandoc` (a tab counts as one column of
//! indentation). Sections start at lines with no indentation:
//!
//! - Google: `Args:`, `Arguments:`, `Parameters:`, `Params:`, `Keyword Args:`,
//!   `Keyword Arguments:`, `Other Parameters:`, `Returns:`, `Return:`, `Yields:`, `Raises:`,
//!   `Exceptions:`, `Note:`, `Notes:`, `Warning:`, `Warnings:`, `Example:`, `Examples:`,
//!   `Attributes:`, `See Also:`, `References:`, in any case. `Returns:`, `Yields:` and `Raises:`
//!   may carry text on the same line (not on the first line). The body is the indented lines
//!   that follow.
//! - NumPy: the same names without the colon, underlined with at least three `-`. Any other short
//!   underlined title (`Methods`) is a prose section. The body runs to the next section.
//! - Sphinx/reST fields: `:param [type] name:` (also `:parameter`, `:arg`, `:argument`, `:key`,
//!   `:keyword`), `:type name:`, `:kwtype name:`, `:returns:`, `:return:`, `:rtype:`, `:yields:`,
//!   `:yield:`, `:ytype:`, `:raises Exc:` (also `:raise`, `:except`, `:exception`); the body is
//!   the indented lines that follow. Other fields (`:ivar x:`, `:meta …:`) are dropped.
//!
//! The description is made of paragraphs separated by a blank line:
//!
//! 1. the summary (the first paragraph, when the docstring starts with prose), as one line;
//! 2. the other prose paragraphs, in order, lines joined by single spaces except list items
//!    (`- `, `* `, `+ `, `1. `, `1) `), doctest lines (`>>>`) and lines indented relative to the
//!    paragraph, which keep a line of their own; Note(s) and Warning(s) sections become
//!    paragraphs starting `Note: ` and `Warning: ` (another NumPy title `T` gives `T: `);
//! 3. `Returns: …` for all Returns and Yields entries of every style, `; `-separated, each
//!    `type: text`, `type` or `text` (a named NumPy entry: `name (type): text`); Sphinx
//!    `:returns: text` with `:rtype: int` gives `Returns: int: text`;
//! 4. `Raises: ValueError: text; KeyError: text`.
//!
//! In 3 and 4 an entry's final `.` is dropped before a `;`. Parameter sections go to `params` and
//! `param_types` only (a parameter without text is left out of `params`); types lose `, optional`,
//! `, default …`, reST roles and backquotes. Examples, See Also, References and Attributes are
//! dropped.

use std::collections::BTreeMap;

/// What a docstring says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Doc {
    /// The first paragraph, as one line.
    pub summary: String,
    /// The tool's description: the summary, the other paragraphs of prose, then the Returns and
    /// Raises sections rendered as `Returns: …` and `Raises: …` paragraphs. The parameter section
    /// is left out (its text goes to `params`).
    pub description: String,
    /// Each parameter's text, by name (without `*`), whitespace collapsed to single spaces.
    pub params: BTreeMap<String, String>,
    /// Each parameter's type as the docstring writes it, when it does.
    pub param_types: BTreeMap<String, String>,
}

/// Parses a docstring as it stands in the source (the literal's value, not yet dedented).
pub(crate) fn parse(raw: &str) -> Doc {
    let lines = clean(raw);
    let mut acc = Acc::default();
    let mut para: Vec<&str> = Vec::new();
    let mut i = 0;
    while let Some(&line) = lines.get(i) {
        if line.is_empty() {
            acc.flush(&mut para);
            i += 1;
            continue;
        }
        if is_rule(line) {
            i += 1;
            continue;
        }
        let Some(start) = header_at(&lines, i) else {
            para.push(line);
            i += 1;
            continue;
        };
        acc.flush(&mut para);
        acc.started = true;
        i = match start {
            Start::Google(kind, inline) => {
                let end = indented_end(&lines, i + 1);
                let body = lines.get(i + 1..end).unwrap_or_default();
                acc.section(&kind, false, inline, body);
                end
            }
            Start::Numpy(kind) => {
                let mut end = i + 2;
                while end < lines.len() && header_at(&lines, end).is_none() {
                    end += 1;
                }
                let body = lines.get(i + 2..end).unwrap_or_default();
                acc.section(&kind, true, "", body);
                end
            }
            Start::Field(f) => {
                let end = indented_end(&lines, i + 1);
                let body = lines.get(i + 1..end).unwrap_or_default();
                acc.field(&f, body);
                end
            }
        };
    }
    acc.flush(&mut para);
    acc.finish()
}

/// What a section is for.
enum Kind {
    Params,
    Returns,
    Raises,
    /// Kept as prose, the first paragraph prefixed with `label: `.
    Prose(String),
    Drop,
}

/// A line that starts a section or field.
enum Start<'a> {
    /// A Google header and the text after its colon.
    Google(Kind, &'a str),
    Numpy(Kind),
    Field(Field<'a>),
}

/// `:name args: text`
struct Field<'a> {
    name: &'a str,
    args: &'a str,
    text: &'a str,
}

/// A Returns or Raises entry; for Raises, `ty` is the exception.
struct Entry {
    name: Option<String>,
    ty: Option<String>,
    text: String,
}

impl Entry {
    fn render(&self) -> String {
        let mut s = match (&self.name, &self.ty) {
            (Some(n), Some(t)) => format!("{n} ({t})"),
            (Some(n), None) => n.clone(),
            (None, Some(t)) => t.clone(),
            (None, None) => String::new(),
        };
        if !self.text.is_empty() {
            if !s.is_empty() {
                s.push_str(": ");
            }
            s.push_str(&self.text);
        }
        s
    }
}

/// A parameter entry: its names (several for NumPy `x, y : int`), type and text.
struct Param {
    names: Vec<String>,
    ty: Option<String>,
    text: String,
}

#[derive(Default)]
struct Acc {
    /// Whether the first paragraph or section has been seen (the summary is settled).
    started: bool,
    summary: String,
    paras: Vec<String>,
    params: BTreeMap<String, String>,
    types: BTreeMap<String, String>,
    rets: Vec<Entry>,
    raises: Vec<Entry>,
    /// The entries of `rets` that Sphinx `:returns:`/`:rtype:` and `:yields:`/`:ytype:` fill.
    sphinx_ret: Option<usize>,
    sphinx_yield: Option<usize>,
}

impl Acc {
    /// Ends a top-level prose paragraph.
    fn flush(&mut self, para: &mut Vec<&str>) {
        if para.is_empty() {
            return;
        }
        if self.started {
            self.paras.push(render_paragraph(para, 0));
        } else {
            let mut s = String::new();
            for l in para.iter() {
                push_words(&mut s, l);
            }
            self.summary.clone_from(&s);
            self.paras.push(s);
            self.started = true;
        }
        para.clear();
    }

    fn section(&mut self, kind: &Kind, numpy: bool, inline: &str, body: &[&str]) {
        match kind {
            Kind::Params => self.params_section(body, numpy),
            Kind::Returns if numpy => self.returns_numpy(body),
            Kind::Returns => self.returns_google(inline, body),
            Kind::Raises => self.raises_section(inline, body),
            Kind::Prose(label) => self.prose_section(label, body),
            Kind::Drop => {}
        }
    }

    fn params_section(&mut self, body: &[&str], numpy: bool) {
        let mut list: Vec<Param> = Vec::new();
        for (head, rest) in entries(body) {
            match param_head(head, numpy) {
                Some((names, ty, first)) => {
                    let mut text = String::new();
                    push_words(&mut text, first);
                    for l in &rest {
                        push_words(&mut text, l);
                    }
                    list.push(Param { names, ty, text });
                }
                None => {
                    // Not an entry: a wrapped line of the previous one.
                    if let Some(last) = list.last_mut() {
                        push_words(&mut last.text, head);
                        for l in &rest {
                            push_words(&mut last.text, l);
                        }
                    }
                }
            }
        }
        for p in list {
            for name in p.names {
                if let Some(t) = &p.ty {
                    self.types.entry(name.clone()).or_insert_with(|| t.clone());
                }
                if !p.text.is_empty() {
                    self.params.entry(name).or_insert_with(|| p.text.clone());
                }
            }
        }
    }

    /// Google Returns/Yields: `type: text` or text; a line with no type prefix continues.
    fn returns_google<'a>(&mut self, inline: &'a str, body: &[&'a str]) {
        let mut list = entries(body);
        if !inline.is_empty() {
            list.insert(0, (inline, Vec::new()));
        }
        let mut local: Vec<Entry> = Vec::new();
        for (head, rest) in list {
            let mut text = String::new();
            let typed = partition(head)
                .filter(|&(a, _)| looks_like_type(a))
                .and_then(|(a, b)| Some((clean_type(a)?, b)));
            let ty = match typed {
                Some((t, b)) => {
                    push_words(&mut text, b);
                    Some(t)
                }
                None => {
                    push_words(&mut text, head);
                    None
                }
            };
            for l in &rest {
                push_words(&mut text, l);
            }
            if ty.is_none() {
                if let Some(last) = local.last_mut() {
                    push_words(&mut last.text, &text);
                    continue;
                }
            }
            local.push(Entry {
                name: None,
                ty,
                text,
            });
        }
        self.rets.extend(local);
    }

    /// NumPy Returns/Yields: `type` or `name : type`, the text on the indented lines below.
    fn returns_numpy(&mut self, body: &[&str]) {
        let mut local: Vec<Entry> = Vec::new();
        for (head, rest) in entries(body) {
            let mut text = String::new();
            for l in &rest {
                push_words(&mut text, l);
            }
            let named = partition(head).and_then(|(a, b)| Some((param_name(a)?, clean_type(b))));
            let entry = if let Some((name, ty)) = named {
                Entry {
                    name: Some(name),
                    ty,
                    text,
                }
            } else if looks_like_type(head) {
                Entry {
                    name: None,
                    ty: clean_type(head),
                    text,
                }
            } else {
                let mut all = String::new();
                push_words(&mut all, head);
                push_words(&mut all, &text);
                if let Some(last) = local.last_mut() {
                    push_words(&mut last.text, &all);
                    continue;
                }
                Entry {
                    name: None,
                    ty: None,
                    text: all,
                }
            };
            local.push(entry);
        }
        self.rets.extend(local);
    }

    /// Google or NumPy Raises: `Exc: text` or `Exc` with the text below; other lines continue.
    fn raises_section<'a>(&mut self, inline: &'a str, body: &[&'a str]) {
        let mut list = entries(body);
        if !inline.is_empty() {
            list.insert(0, (inline, Vec::new()));
        }
        let mut local: Vec<Entry> = Vec::new();
        for (head, rest) in list {
            let mut text = String::new();
            let exc = match partition(head).filter(|&(a, _)| looks_like_exc(a)) {
                Some((a, b)) => {
                    push_words(&mut text, b);
                    Some(a)
                }
                None if looks_like_exc(head) => Some(head),
                None => {
                    push_words(&mut text, head);
                    None
                }
            };
            for l in &rest {
                push_words(&mut text, l);
            }
            if exc.is_none() {
                if let Some(last) = local.last_mut() {
                    push_words(&mut last.text, &text);
                    continue;
                }
            }
            local.push(Entry {
                name: None,
                ty: exc.and_then(clean_type),
                text,
            });
        }
        self.raises.extend(local);
    }

    fn prose_section(&mut self, label: &str, body: &[&str]) {
        let base = min_indent(body);
        let mut first = true;
        for chunk in body.split(|l| l.is_empty()) {
            let text = render_paragraph(chunk, base);
            if text.trim().is_empty() {
                continue;
            }
            if first {
                self.paras.push(format!("{label}: {}", text.trim_start()));
                first = false;
            } else {
                self.paras.push(text);
            }
        }
    }

    fn field(&mut self, f: &Field<'_>, body: &[&str]) {
        let mut text = String::new();
        push_words(&mut text, f.text);
        for l in body {
            push_words(&mut text, l);
        }
        match f.name.to_ascii_lowercase().as_str() {
            "param" | "parameter" | "arg" | "argument" | "key" | "keyword" => {
                let words: Vec<&str> = f.args.split_whitespace().collect();
                let Some((last, ty_words)) = words.split_last() else {
                    return;
                };
                let Some(name) = param_name(last) else {
                    return;
                };
                if let Some(t) = clean_type(&ty_words.join(" ")) {
                    self.types.entry(name.clone()).or_insert(t);
                }
                if !text.is_empty() {
                    self.params.entry(name).or_insert(text);
                }
            }
            "type" | "kwtype" => {
                let name = f.args.split_whitespace().next_back().and_then(param_name);
                if let (Some(name), Some(t)) = (name, clean_type(&text)) {
                    self.types.entry(name).or_insert(t);
                }
            }
            "returns" | "return" => self.add_sphinx_return(false, None, text),
            "rtype" => self.add_sphinx_return(false, clean_type(&text), String::new()),
            "yields" | "yield" => self.add_sphinx_return(true, None, text),
            "ytype" => self.add_sphinx_return(true, clean_type(&text), String::new()),
            "raises" | "raise" | "except" | "exception" => self.raises.push(Entry {
                name: None,
                ty: clean_type(f.args),
                text,
            }),
            _ => {}
        }
    }

    /// Adds Sphinx return text or type to the one Returns (or Yields) entry they share.
    fn add_sphinx_return(&mut self, yields: bool, ty: Option<String>, text: String) {
        let idx = if yields {
            self.sphinx_yield
        } else {
            self.sphinx_ret
        };
        if let Some(entry) = idx.and_then(|k| self.rets.get_mut(k)) {
            if entry.ty.is_none() {
                entry.ty = ty;
            }
            push_words(&mut entry.text, &text);
            return;
        }
        let k = self.rets.len();
        self.rets.push(Entry {
            name: None,
            ty,
            text,
        });
        if yields {
            self.sphinx_yield = Some(k);
        } else {
            self.sphinx_ret = Some(k);
        }
    }

    fn finish(mut self) -> Doc {
        let rets: Vec<String> = self
            .rets
            .iter()
            .map(Entry::render)
            .filter(|s| !s.is_empty())
            .collect();
        if !rets.is_empty() {
            self.paras.push(format!("Returns: {}", join_entries(&rets)));
        }
        let raises: Vec<String> = self
            .raises
            .iter()
            .map(Entry::render)
            .filter(|s| !s.is_empty())
            .collect();
        if !raises.is_empty() {
            self.paras
                .push(format!("Raises: {}", join_entries(&raises)));
        }
        let paras: Vec<&str> = self
            .paras
            .iter()
            .map(|p| p.trim_end())
            .filter(|p| !p.is_empty())
            .collect();
        let description = paras.join("\n\n").trim().to_string();
        Doc {
            summary: self.summary,
            description,
            params: self.params,
            param_types: self.types,
        }
    }
}

/// `inspect.cleandoc`: lines without trailing whitespace, the first line's leading whitespace
/// and the other lines' common indentation removed, no blank lines at either end.
fn clean(raw: &str) -> Vec<&str> {
    let lines: Vec<&str> = raw.split('\n').map(str::trim_end).collect();
    let margin = min_indent(lines.get(1..).unwrap_or_default());
    let lines: Vec<&str> = lines
        .iter()
        .copied()
        .enumerate()
        .map(|(k, l)| {
            if k == 0 {
                l.trim_start()
            } else {
                dedent(l, margin)
            }
        })
        .collect();
    let start = lines
        .iter()
        .position(|l| !l.is_empty())
        .unwrap_or(lines.len());
    let end = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(start, |e| e + 1);
    lines.get(start..end).unwrap_or_default().to_vec()
}

/// Leading whitespace, in characters.
fn indent(l: &str) -> usize {
    l.chars().take_while(|c| c.is_whitespace()).count()
}

/// The smallest indentation of the non-blank lines (0 when there are none).
fn min_indent(lines: &[&str]) -> usize {
    lines
        .iter()
        .filter(|l| !l.trim_start().is_empty())
        .map(|l| indent(l))
        .min()
        .unwrap_or(0)
}

/// `l` without its first `n` characters (all whitespace on a non-blank line); blank lines → "".
fn dedent(l: &str, n: usize) -> &str {
    if l.trim_start().is_empty() {
        return "";
    }
    match l.char_indices().nth(n) {
        Some((p, _)) => l.get(p..).unwrap_or(l),
        None => "",
    }
}

/// A NumPy underline: at least three `-`.
fn is_underline(l: &str) -> bool {
    let t = l.trim();
    t.len() >= 3 && t.bytes().all(|b| b == b'-')
}

/// A line of `-` or `=` only, dropped from prose.
fn is_rule(l: &str) -> bool {
    let t = l.trim();
    t.len() >= 3 && (t.bytes().all(|b| b == b'-') || t.bytes().all(|b| b == b'='))
}

/// The section or field that line `k` starts, if any; only unindented lines start one.
fn header_at<'a>(lines: &[&'a str], k: usize) -> Option<Start<'a>> {
    let line: &'a str = lines.get(k).copied()?;
    if line.is_empty() || line.starts_with(char::is_whitespace) {
        return None;
    }
    if lines.get(k + 1).is_some_and(|n| is_underline(n)) {
        if let Some(kind) = numpy_kind(line, k == 0) {
            return Some(Start::Numpy(kind));
        }
    }
    if let Some((kind, inline)) = google_header(line, k == 0) {
        return Some(Start::Google(kind, inline));
    }
    field(line).map(Start::Field)
}

/// The kind of a section named `name` (any case, spaces collapsed).
fn section_kind(name: &str) -> Option<Kind> {
    if name.len() > 30 {
        return None;
    }
    let norm = name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let kind = match norm.as_str() {
        "args" | "arguments" | "parameters" | "params" | "keyword args" | "keyword arguments"
        | "keyword parameters" | "other parameters" | "other params" | "other arguments" => {
            Kind::Params
        }
        "returns" | "return" | "yields" | "yield" => Kind::Returns,
        "raises" | "raise" | "exceptions" => Kind::Raises,
        "note" | "notes" => Kind::Prose("Note".to_string()),
        "warning" | "warnings" => Kind::Prose("Warning".to_string()),
        "example" | "examples" | "see also" | "references" | "attributes" => Kind::Drop,
        _ => return None,
    };
    Some(kind)
}

/// A NumPy title (the line above an underline); unknown short titles are prose sections.
fn numpy_kind(line: &str, first: bool) -> Option<Kind> {
    let t = line.trim().trim_end_matches(':');
    if let Some(kind) = section_kind(t) {
        return Some(kind);
    }
    if first || t.len() > 40 || t.split_whitespace().count() > 3 {
        return None;
    }
    let titled = t.chars().next().is_some_and(char::is_alphabetic)
        && t.chars().all(|c| c.is_alphabetic() || c == ' ');
    titled.then(|| Kind::Prose(t.to_string()))
}

/// `Name:` alone, or `Returns: text` / `Raises: text` after the first line.
fn google_header(line: &str, first: bool) -> Option<(Kind, &str)> {
    let (name, rest) = line.split_once(':')?;
    let kind = section_kind(name)?;
    let rest = rest.trim();
    if rest.is_empty() {
        return Some((kind, ""));
    }
    let inline = !first && matches!(kind, Kind::Returns | Kind::Raises) && !rest.starts_with(':');
    inline.then_some((kind, rest))
}

/// A reST field line `:name args: text` (not a role such as ``:class:`X` ``).
fn field(line: &str) -> Option<Field<'_>> {
    let rest = line.strip_prefix(':')?;
    let close = rest.find(':')?;
    let inner = rest.get(..close)?.trim();
    let after = rest.get(close + 1..)?;
    if after.starts_with('`') {
        return None;
    }
    let (name, args) = match inner.split_once(char::is_whitespace) {
        Some((n, a)) => (n, a.trim()),
        None => (inner, ""),
    };
    let word = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c == '_' || c == '-');
    word.then_some(Field {
        name,
        args,
        text: after.trim(),
    })
}

/// Where the indented body after line `from - 1` ends (trailing blank lines left out).
fn indented_end(lines: &[&str], from: usize) -> usize {
    let mut j = from;
    while lines
        .get(j)
        .is_some_and(|l| l.is_empty() || l.starts_with(char::is_whitespace))
    {
        j += 1;
    }
    while j > from && lines.get(j - 1).is_some_and(|l| l.is_empty()) {
        j -= 1;
    }
    j
}

/// Splits a section body into entries: each line at the body's least indentation starts one,
/// deeper lines continue it. Lines come back trimmed; blank lines are skipped.
fn entries<'a>(body: &[&'a str]) -> Vec<(&'a str, Vec<&'a str>)> {
    let base = min_indent(body);
    let mut out: Vec<(&'a str, Vec<&'a str>)> = Vec::new();
    for &l in body {
        let t = l.trim();
        if t.is_empty() {
            continue;
        }
        if indent(l) > base {
            if let Some(last) = out.last_mut() {
                last.1.push(t);
                continue;
            }
        }
        out.push((t, Vec::new()));
    }
    out
}

/// A parameter entry's first line: names, type and the text on that line.
/// Google: `name (type): text`, `name: text`, `name`. NumPy: `x, y : type`, `name`.
fn param_head(head: &str, numpy: bool) -> Option<(Vec<String>, Option<String>, &str)> {
    if numpy {
        let (names, ty) = match partition(head) {
            Some((a, b)) => (a, clean_type(b)),
            None => (head, None),
        };
        let names = names
            .split(',')
            .map(param_name)
            .collect::<Option<Vec<String>>>()?;
        return Some((names, ty, ""));
    }
    let end = head
        .find(|c: char| c.is_whitespace() || c == '(' || c == ':')
        .unwrap_or(head.len());
    let name = param_name(head.get(..end)?)?;
    let mut rest = head.get(end..)?.trim_start();
    let mut ty = None;
    if let Some(r) = rest.strip_prefix('(') {
        let close = matching_paren(r)?;
        ty = clean_type(r.get(..close)?);
        rest = r.get(close + 1..)?.trim_start();
    }
    let text = if rest.is_empty() {
        ""
    } else {
        rest.strip_prefix(':')?.trim()
    };
    Some((vec![name], ty, text))
}

/// A parameter name without `*`, `**` or reST escapes; `None` when not an identifier.
fn param_name(s: &str) -> Option<String> {
    let n = s.trim().trim_start_matches(['*', '\\']);
    let ok = n
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && n.chars().all(|c| c.is_alphanumeric() || c == '_');
    ok.then(|| n.to_string())
}

/// The byte offset of the `)` closing a `(` just before `s`.
fn matching_paren(s: &str) -> Option<usize> {
    let mut depth = 1usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits at the first `:` that is followed by whitespace (or ends the text), outside brackets
/// and backquotes.
fn partition(s: &str) -> Option<(&str, &str)> {
    let mut depth = 0usize;
    let mut tick = false;
    for (i, c) in s.char_indices() {
        match c {
            '`' => tick = !tick,
            '(' | '[' | '{' if !tick => depth += 1,
            ')' | ']' | '}' if !tick => depth = depth.saturating_sub(1),
            ':' if !tick && depth == 0 => {
                let after = s.get(i + 1..).unwrap_or("");
                if after.chars().next().is_none_or(char::is_whitespace) {
                    return Some((s.get(..i).unwrap_or(""), after));
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether `s` reads as a type: `int`, `list[str]`, `int or None`, `A | B`, `KeyError, OSError`.
fn looks_like_type(s: &str) -> bool {
    let s = s.trim();
    if s.is_empty() || s.len() > 120 {
        return false;
    }
    let mut expect_type = true;
    for w in top_level_words(s) {
        if expect_type {
            let chars_ok = w.chars().all(|c| {
                c.is_alphanumeric() || c.is_whitespace() || "_.[](){},|`~'\"*:-".contains(c)
            });
            if !chars_ok || !w.chars().any(char::is_alphanumeric) {
                return false;
            }
            expect_type = w.ends_with(',');
        } else if w == "or" || w == "|" {
            expect_type = true;
        } else {
            return false;
        }
    }
    !expect_type
}

/// A type with a capital letter somewhere: `ValueError`, `os.error` is not one.
fn looks_like_exc(s: &str) -> bool {
    looks_like_type(s) && s.chars().any(char::is_uppercase)
}

/// Words split at whitespace outside brackets.
fn top_level_words(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start: Option<usize> = None;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if c.is_whitespace() && depth == 0 {
            if let Some(w) = start.take().and_then(|b| s.get(b..i)) {
                out.push(w);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(w) = start.and_then(|b| s.get(b..)) {
        out.push(w);
    }
    out
}

/// A type as the docstring writes it, tidied: roles (`:class:`), backquotes and `~` removed,
/// whitespace collapsed, and `optional` / `default …` parts dropped. `None` when nothing is left.
fn clean_type(s: &str) -> Option<String> {
    let mut flat = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c == ':' {
            if let Some(n) = role_len(rest) {
                rest = rest.get(n..).unwrap_or("");
                continue;
            }
        }
        let mut skip = c.len_utf8();
        if c == '`' {
            if rest.get(1..).is_some_and(|r| r.starts_with('~')) {
                skip += 1;
            }
        } else if c.is_whitespace() {
            if !flat.is_empty() && !flat.ends_with(' ') {
                flat.push(' ');
            }
        } else {
            flat.push(c);
        }
        rest = rest.get(skip..).unwrap_or("");
    }
    let mut parts: Vec<&str> = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in flat.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(flat.get(start..i).unwrap_or(""));
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(flat.get(start..).unwrap_or(""));
    let mut kept: Vec<&str> = Vec::new();
    for p in parts {
        let p = p.trim();
        if p.is_empty() || p.eq_ignore_ascii_case("optional") {
            continue;
        }
        if p.get(..7)
            .is_some_and(|d| d.eq_ignore_ascii_case("default"))
        {
            break;
        }
        kept.push(p);
    }
    let out = kept.join(", ");
    (!out.is_empty()).then_some(out)
}

/// The length of a reST role such as `:class:` or `:py:obj:` right before a backquote.
fn role_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut j = 1;
    while j < 40
        && b.get(j)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b':' || c == b'_' || c == b'-')
    {
        j += 1;
    }
    (j >= 3 && b.get(j - 1) == Some(&b':') && b.get(j) == Some(&b'`')).then_some(j)
}

/// Appends the words of `s` to `out`, single spaces between.
fn push_words(out: &mut String, s: &str) {
    for w in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
}

/// Entries joined by `; `, a final `.` dropped before each `;`.
fn join_entries(list: &[String]) -> String {
    let mut out = String::new();
    for (k, e) in list.iter().enumerate() {
        let mut e = e.as_str();
        if k + 1 < list.len() && !e.ends_with("..") {
            e = e.strip_suffix('.').unwrap_or(e);
        }
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(e);
    }
    out
}

/// The kind of the previous output line of a paragraph.
#[derive(Clone, Copy, PartialEq)]
enum Line {
    Start,
    Text,
    /// A list item whose text starts at this column.
    Item(usize),
    Code,
}

/// One paragraph: text lines joined by single spaces; list items, doctest lines and lines
/// indented beyond `base` on their own lines, keeping their indentation beyond `base`.
fn render_paragraph(lines: &[&str], base: usize) -> String {
    let mut out = String::new();
    let mut last = Line::Start;
    for &l in lines {
        let t = l.trim();
        if t.is_empty() {
            continue;
        }
        let ind = indent(l);
        let doctest =
            t.starts_with(">>>") || (last == Line::Code && (t == "..." || t.starts_with("... ")));
        let kind = if doctest {
            Line::Code
        } else if let Some(m) = list_marker(t) {
            Line::Item(ind + m)
        } else if ind > base {
            match last {
                Line::Item(col) if ind >= col => {
                    out.push(' ');
                    out.push_str(t);
                    continue;
                }
                _ => Line::Code,
            }
        } else {
            Line::Text
        };
        if kind == Line::Text && last == Line::Text {
            out.push(' ');
        } else {
            if !out.is_empty() {
                out.push('\n');
            }
            if kind != Line::Text {
                out.extend(std::iter::repeat_n(' ', ind.saturating_sub(base)));
            }
        }
        out.push_str(t);
        last = kind;
    }
    out
}

/// The length of a list marker (`- `, `* `, `+ `, `1. `, `1) `) starting `t`.
fn list_marker(t: &str) -> Option<usize> {
    if t.starts_with("- ") || t.starts_with("* ") || t.starts_with("+ ") {
        return Some(2);
    }
    let digits = t.bytes().take_while(|b| b.is_ascii_digit()).count();
    let after = t.get(digits..)?;
    ((1..=3).contains(&digits) && (after.starts_with(". ") || after.starts_with(") ")))
        .then_some(digits + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const GOOGLE: &str = r#"Fetch rows from the table.

        Rows are returned in primary-key order. The
        table must exist.

        Args:
            table (str): Name of the table.
            limit (int, optional): Maximum number of rows to
                return. Defaults to all rows.
            *columns: Columns to select.
            **options (dict): Extra options.

        Returns:
            list[dict]: The rows, one dict per row.

        Raises:
            KeyError: If the table does not exist.
            ValueError: If `limit` is negative.

        Note:
            Slow on large tables.

        Example:
            >>> fetch("users", limit=2)
            [{'id': 1}, {'id': 2}]
        "#;

    #[test]
    fn google() {
        let doc = parse(GOOGLE);
        assert_eq!(doc.summary, "Fetch rows from the table.");
        assert_eq!(
            doc.description,
            "Fetch rows from the table.\n\n\
             Rows are returned in primary-key order. The table must exist.\n\n\
             Note: Slow on large tables.\n\n\
             Returns: list[dict]: The rows, one dict per row.\n\n\
             Raises: KeyError: If the table does not exist; ValueError: If `limit` is negative."
        );
        assert_eq!(
            doc.params,
            map(&[
                ("table", "Name of the table."),
                (
                    "limit",
                    "Maximum number of rows to return. Defaults to all rows."
                ),
                ("columns", "Columns to select."),
                ("options", "Extra options."),
            ])
        );
        assert_eq!(
            doc.param_types,
            map(&[("table", "str"), ("limit", "int"), ("options", "dict")])
        );
    }

    const NUMPY: &str = "Compute the distance.

        Uses the Euclidean metric.

        Parameters
        ----------
        x, y : float
            Coordinates of the point.
        origin : tuple of float, optional
            Reference point. Defaults to
            ``(0, 0)``.
        scale : float, default 1.0

        Returns
        -------
        float
            The distance.

        Raises
        ------
        ValueError
            If a coordinate is NaN.
        TypeError
            If `x` is not a number.

        Notes
        -----
        Stable for large values.

        Examples
        --------
        >>> distance(3, 4)
        5.0
        ";

    #[test]
    fn numpy() {
        let doc = parse(NUMPY);
        assert_eq!(doc.summary, "Compute the distance.");
        assert_eq!(
            doc.description,
            "Compute the distance.\n\n\
             Uses the Euclidean metric.\n\n\
             Note: Stable for large values.\n\n\
             Returns: float: The distance.\n\n\
             Raises: ValueError: If a coordinate is NaN; TypeError: If `x` is not a number."
        );
        assert_eq!(
            doc.params,
            map(&[
                ("x", "Coordinates of the point."),
                ("y", "Coordinates of the point."),
                ("origin", "Reference point. Defaults to ``(0, 0)``."),
            ])
        );
        assert_eq!(
            doc.param_types,
            map(&[
                ("x", "float"),
                ("y", "float"),
                ("origin", "tuple of float"),
                ("scale", "float"),
            ])
        );
    }

    const SPHINX: &str = r"Read a file.

        Reads the whole file into memory.

        :param str path: Path of the file,
            relative to the working directory.
        :param n: Number of bytes to read.
        :type n: int
        :param \*\*kwargs: Passed to :func:`open`.
        :returns: The bytes read.
        :rtype: bytes
        :raises OSError: If the file cannot be opened.
        :raises ValueError: If `n` is negative.
        ";

    #[test]
    fn sphinx() {
        let doc = parse(SPHINX);
        assert_eq!(doc.summary, "Read a file.");
        assert_eq!(
            doc.description,
            "Read a file.\n\n\
             Reads the whole file into memory.\n\n\
             Returns: bytes: The bytes read.\n\n\
             Raises: OSError: If the file cannot be opened; ValueError: If `n` is negative."
        );
        assert_eq!(
            doc.params,
            map(&[
                (
                    "path",
                    "Path of the file, relative to the working directory."
                ),
                ("n", "Number of bytes to read."),
                ("kwargs", "Passed to :func:`open`."),
            ])
        );
        assert_eq!(doc.param_types, map(&[("path", "str"), ("n", "int")]));
    }

    #[test]
    fn sphinx_rtype_alone_and_roles_in_types() {
        let doc = parse(
            "Make it.\n\n:param x: The x.\n:type x: :class:`~pkg.Thing`, optional\n:rtype: int",
        );
        assert_eq!(doc.description, "Make it.\n\nReturns: int");
        assert_eq!(doc.param_types, map(&[("x", "pkg.Thing")]));
    }

    #[test]
    fn plain_one_liner() {
        let doc = parse("  Return the sum of two numbers.  ");
        assert_eq!(doc.summary, "Return the sum of two numbers.");
        assert_eq!(doc.description, "Return the sum of two numbers.");
        assert!(doc.params.is_empty());
        assert!(doc.param_types.is_empty());
        // A colon on the first line is not a section.
        let doc = parse("Returns: the answer.");
        assert_eq!(doc.summary, "Returns: the answer.");
        assert_eq!(doc.description, "Returns: the answer.");
    }

    #[test]
    fn plain_paragraphs_lists_and_code() {
        let doc = parse(
            "Convert units
            between systems.

            Supported units:
            - m
            - km
              (kilometres)

            Usage:

                convert(1, 'km')
            ",
        );
        assert_eq!(doc.summary, "Convert units between systems.");
        assert_eq!(
            doc.description,
            "Convert units between systems.\n\n\
             Supported units:\n- m\n- km (kilometres)\n\n\
             Usage:\n\n    convert(1, 'km')"
        );
        assert!(doc.params.is_empty());
    }

    #[test]
    fn indented_as_in_source() {
        let raw = "Add two numbers.\n\n        Args:\n            a: First.\n            \
                   b: Second.\n\n        Returns:\n            The sum.\n        ";
        let doc = parse(raw);
        assert_eq!(doc.summary, "Add two numbers.");
        assert_eq!(doc.description, "Add two numbers.\n\nReturns: The sum.");
        assert_eq!(doc.params, map(&[("a", "First."), ("b", "Second.")]));
        assert!(doc.param_types.is_empty());

        let doc = parse("\n    Summary here.\n\n    More.\n    ");
        assert_eq!(doc.summary, "Summary here.");
        assert_eq!(doc.description, "Summary here.\n\nMore.");
    }

    #[test]
    fn empty_and_whitespace() {
        assert_eq!(parse(""), Doc::default());
        assert_eq!(parse("   \n\t\n  \r\n"), Doc::default());
    }

    #[test]
    fn headers_without_entries() {
        let doc = parse("Do it.\n\n    Args:\n\n    Raises:\n        RuntimeError: Always.\n    ");
        assert_eq!(doc.summary, "Do it.");
        assert_eq!(doc.description, "Do it.\n\nRaises: RuntimeError: Always.");
        assert!(doc.params.is_empty());

        let doc = parse("Summary.\n\nParameters\n----------\n\nReturns\n-------\nint\n");
        assert_eq!(doc.description, "Summary.\n\nReturns: int");
        assert!(doc.params.is_empty());
    }

    #[test]
    fn first_entry_wins_and_inline_returns() {
        let doc = parse(
            "Do.\n\nArgs:\n    x (:obj:`int`, optional): First.\n\n:param x: Second.\n\
             :type x: str\n\nReturns: The count\n    of things.",
        );
        assert_eq!(doc.params, map(&[("x", "First.")]));
        assert_eq!(doc.param_types, map(&[("x", "int")]));
        assert_eq!(doc.description, "Do.\n\nReturns: The count of things.");
    }

    #[test]
    fn roles_are_not_fields() {
        let doc = parse("Make one.\n\n:class:`Foo` objects only.");
        assert_eq!(doc.description, "Make one.\n\n:class:`Foo` objects only.");
    }

    #[test]
    fn unicode() {
        let doc = parse(
            "Größe berechnen — schnell.\n\n    Args:\n        maß (float): Die Länge in µm.\n    \
             Returns:\n        float: Die Größe.\n    ",
        );
        assert_eq!(doc.summary, "Größe berechnen — schnell.");
        assert_eq!(
            doc.description,
            "Größe berechnen — schnell.\n\nReturns: float: Die Größe."
        );
        assert_eq!(doc.params, map(&[("maß", "Die Länge in µm.")]));
        assert_eq!(doc.param_types, map(&[("maß", "float")]));
    }

    #[test]
    fn odd_inputs_do_not_fail() {
        for raw in [
            ":",
            "::",
            ":param:",
            ":param",
            ":raises:",
            "Args:",
            "Parameters\n---",
            "Do.\n\nArgs:\n    x (int",
            "Do.\n\nReturns:\n    int:",
            "- \n* \n1.",
            "\r\n\r\n",
            "\t\tArgs:\n\t\t\tx (int): y",
            "\u{3000}é:\n\u{3000}\u{3000}ü\n\u{3000}",
            "Title\n=====\n\nText.",
        ] {
            let doc = parse(raw);
            assert!(!doc.summary.contains('\n'));
            assert_eq!(doc.description, doc.description.trim());
        }
        assert_eq!(parse("Title\n=====\n\nText.").description, "Title\n\nText.");
    }

    #[test]
    fn huge_inputs() {
        let big = "a".repeat(1 << 20);
        let doc = parse(&big);
        assert_eq!(doc.summary.len(), 1 << 20);

        let doc = parse(&"word\n".repeat(200_000));
        assert_eq!(doc.summary.len(), 200_000 * 5 - 1);

        let doc = parse(&format!(
            "Do.\n\nArgs:\n{}",
            "    x (int): y\n".repeat(50_000)
        ));
        assert_eq!(doc.params, map(&[("x", "y")]));

        let _ = parse(&":".repeat(1 << 20));
        let _ = parse(&format!("Do.\n\nArgs:\n    x ({}", "(".repeat(1 << 20)));
        let _ = parse(&format!("Do.\n\nRaises:\n    {}", "A, ".repeat(300_000)));
    }
}
