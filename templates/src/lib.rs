//! The non-Rust files forge writes, as minijinja templates embedded in this crate (so the
//! `aifirst-forge` package publishes without files outside its directory).
//!
//! Generated Rust is never templated: `forge import` builds handlers with `quote`, checks them
//! with `syn` and prints them with `prettyplease`. The only `.rs` templates are `forge new`'s
//! scaffold, fixed example code in which just the crate's name is filled in. What is here is text around data forge has already made safe — TOML
//! strings quoted by forge, Markdown cells escaped by forge — so templates hold no logic beyond
//! `if` and `for` and the environment is set for that:
//!
//! - **strict undefined**: a name the context lacks is an error, never an empty string;
//! - **no auto-escaping**: none of the outputs is HTML, and forge escapes per format itself;
//! - values that are printed are text forge made for the format (minijinja prints a boolean as
//!   Python does, `False`, which is not TOML), and booleans only steer `if`;
//! - `trim_blocks` and `lstrip_blocks`, so a block tag on its own line leaves no blank line, and
//!   the trailing newline of each file is kept.

use std::sync::OnceLock;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

/// One template: its name and text.
struct Template {
    name: &'static str,
    text: &'static str,
}

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(Template { name: $name, text: include_str!(concat!("../files/", $name, ".j2")) }),*]
    };
}

/// Every template, by the name [`render`] takes.
const TEMPLATES: &[Template] = templates![
    // A crate `forge import` generates.
    "crate/Cargo.toml",
    "crate/README.md",
    // Its `forge.toml` (written once; the user's afterwards).
    "forge.toml",
    // `forge new NAME`'s scaffold.
    "new/Cargo.toml",
    "new/lib.rs",
    "new/main.rs",
    "new/tests.rs",
    "new/README.md",
    "new/gitignore",
];

/// The names of every template, for tests and tools.
pub fn names() -> impl Iterator<Item = &'static str> {
    TEMPLATES.iter().map(|t| t.name)
}

/// Why a template did not render: which one and what the engine said (a missing value names
/// the line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub template: String,
    pub message: String,
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "template {}: {}", self.template, self.message)
    }
}

impl std::error::Error for TemplateError {}

fn environment() -> Result<&'static Environment<'static>, TemplateError> {
    static ENV: OnceLock<Result<Environment<'static>, TemplateError>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| error("(syntax)", &e))?;
        env.set_syntax(syntax);
        for t in TEMPLATES {
            env.add_template(t.name, t.text)
                .map_err(|e| error(t.name, &e))?;
        }
        Ok(env)
    })
    .as_ref()
    .map_err(Clone::clone)
}

fn error(template: &str, e: &minijinja::Error) -> TemplateError {
    let mut message = e.to_string();
    if let Some(line) = e.line() {
        if !message.contains("line") {
            message = format!("{message} (line {line})");
        }
    }
    TemplateError {
        template: template.to_string(),
        message,
    }
}

/// Renders template `name` with `context`, a struct whose fields are the template's names.
pub fn render<C: Serialize>(name: &str, context: &C) -> Result<String, TemplateError> {
    let env = environment()?;
    let template = env.get_template(name).map_err(|e| error(name, &e))?;
    template
        .render(Value::from(Serde(context)))
        .map_err(|e| error(name, &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_template_parses() {
        let env = environment();
        assert!(env.is_ok(), "{:?}", env.err());
        assert_eq!(names().count(), TEMPLATES.len());
    }

    #[test]
    fn a_missing_value_is_an_error_naming_the_template() {
        let err = render("forge.toml", &json!({ "source": "\"a.yaml\"" }));
        let err = err.err();
        assert!(
            err.as_ref()
                .is_some_and(|e| e.template == "forge.toml"
                    && e.message.to_lowercase().contains("undefined")),
            "{err:?}"
        );
    }

    #[test]
    fn an_unknown_template_is_an_error() {
        let err = render("nope", &json!({})).err();
        assert!(
            err.as_ref().is_some_and(|e| e.template == "nope"),
            "{err:?}"
        );
    }

    #[test]
    fn values_are_not_escaped_nor_interpreted() {
        // Text that looks like markup or template syntax comes out as it went in.
        let out = render("new/gitignore", &json!({}));
        assert_eq!(
            out.ok().as_deref(),
            Some("/target\n/.aifirst\n/todo.json\n")
        );
        let out =
            render("new/README.md", &json!({ "name": "<b>{{ x }}</b>&" })).unwrap_or_default();
        assert!(out.starts_with("# <b>{{ x }}</b>&\n"), "{out}");
    }

    #[test]
    fn a_block_on_its_own_line_leaves_no_blank_line() {
        let ctx = |ws: bool| {
            json!({
                "name": "\"demo\"",
                "description": "\"d\"",
                "dependencies": "aifirst = \"0.1\"\n",
                "own_workspace": ws,
            })
        };
        let with = render("crate/Cargo.toml", &ctx(true)).unwrap_or_default();
        let without = render("crate/Cargo.toml", &ctx(false)).unwrap_or_default();
        assert!(
            without.ends_with("[[bin]]\nname = \"demo\"\npath = \"src/main.rs\"\n"),
            "{without}"
        );
        assert!(
            with.ends_with("path = \"src/main.rs\"\n\n# A workspace of its own, so it builds wherever it is put.\n[workspace]\n"),
            "{with}"
        );
    }
}
