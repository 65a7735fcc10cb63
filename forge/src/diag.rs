//! Diagnostics: what forge tells the user about their input, always with a place.

use std::fmt;

use serde::Serialize;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing, changes nothing (a rename).
    Info,
    /// Something was dropped, guessed or refused, but the rest imported.
    Warning,
    /// An operation (or the whole input) could not be used.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// Where in the input a diagnostic points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The file, as the user named it (or relative to the spec for referenced files).
    pub file: String,
    /// JSON pointer into that file (`""` is the whole document).
    pub pointer: String,
    /// 1-based line, when the source could be mapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

/// `text` as a terminal should show it: control characters other than line breaks and tabs,
/// and bidirectional controls, written as `\u{…}` escapes. A description's names reach the
/// messages: raw, an escape sequence in one could retitle or clear the terminal, or hide the
/// warnings printed before it.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&terminal_safe(&self.file))?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.pointer.is_empty() {
            write!(f, " #{}", terminal_safe(&self.pointer))?;
        }
        Ok(())
    }
}

/// One finding about the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable, kebab-case identifier (`ref-outside-root`, `duplicate-operation-id`, …).
    pub code: &'static str,
    pub message: String,
    pub location: Location,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(
        severity: Severity,
        code: &'static str,
        message: impl Into<String>,
        location: Location,
    ) -> Self {
        Diagnostic {
            severity,
            code,
            message: message.into(),
            location,
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}[{}]: {}",
            self.severity,
            self.code,
            terminal_safe(&self.message)
        )?;
        write!(f, "  --> {}", self.location)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {}", terminal_safe(help))?;
        }
        Ok(())
    }
}

/// Appends one reference token to a JSON pointer, escaping `~` and `/` (RFC 6901).
pub fn push_token(pointer: &str, token: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + token.len() + 1);
    out.push_str(pointer);
    out.push('/');
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

/// The last reference token of a JSON pointer, unescaped (`""` for the whole document).
pub fn last_token(pointer: &str) -> String {
    pointer
        .rsplit_once('/')
        .map(|(_, t)| t.replace("~1", "/").replace("~0", "~"))
        .unwrap_or_default()
}

/// Splits a JSON pointer into unescaped reference tokens. `None` if it is not a pointer.
pub fn split_pointer(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_tokens_escape_and_round_trip() {
        let p = push_token(&push_token("", "paths"), "/pets/{id}");
        assert_eq!(p, "/paths/~1pets~1{id}");
        let p = push_token(&p, "a~b");
        assert_eq!(
            split_pointer(&p),
            Some(vec!["paths".into(), "/pets/{id}".into(), "a~b".into()])
        );
        assert_eq!(split_pointer("no-slash"), None);
    }

    #[test]
    fn diagnostic_display_names_the_place() {
        let d = Diagnostic::new(
            Severity::Error,
            "bad-thing",
            "it is bad",
            Location {
                file: "api.yaml".into(),
                pointer: "/paths/~1x".into(),
                line: Some(12),
            },
        )
        .with_help("make it good");
        assert_eq!(
            d.to_string(),
            "error[bad-thing]: it is bad\n  --> api.yaml:12 #/paths/~1x\n  help: make it good"
        );
    }
}

#[cfg(test)]
mod terminal_tests {
    use super::*;

    #[test]
    fn escape_sequences_in_messages_are_shown_not_obeyed() {
        let d = Diagnostic::new(
            Severity::Warning,
            "duplicate-operation-id",
            "operationId `x\u{1b}]0;PWNED\u{7}\u{1b}[2J` is used twice",
            Location {
                file: "a\u{202e}.json".into(),
                pointer: "/paths/\u{0}".into(),
                line: Some(3),
            },
        );
        let text = d.to_string();
        assert!(
            !text
                .chars()
                .any(|c| c == '\u{1b}' || c == '\u{7}' || c == '\u{0}' || c == '\u{202e}'),
            "{text:?}"
        );
        assert!(text.contains("x\\u{1b}]0;PWNED\\u{7}"), "{text}");
        assert_eq!(terminal_safe("plain\nlines\tok"), "plain\nlines\tok");
    }
}
