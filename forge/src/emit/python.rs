//! The handler of a Python capability: the module the crate carries (`python/`) and the
//! function's name, which the runtime's Python worker imports once and calls
//! (`::aifirst::Handler::Python`).

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

use super::{first_line, undo_words, Definition};
use crate::ir::{Capability, PythonBinding};

/// The static of the module a binding's function lives in (`PY_0`, `PY_1`, … in the order of
/// `modules`).
pub(super) fn module_static(modules: &[String], module: &str) -> Ident {
    let i = modules.iter().position(|m| m == module).unwrap_or(0);
    Ident::new(&format!("PY_{i}"), Span::call_site())
}

/// One capability's definition, with the module's function as its handler.
pub(super) fn handler(
    c: &Capability,
    p: &PythonBinding,
    fn_name: &str,
    modules: &[String],
) -> TokenStream {
    let route = format!("{}.{}()", p.module, p.function);
    let description = if c.description.trim().is_empty() {
        route.clone()
    } else {
        c.description.clone()
    };
    let mut text = format!(
        "{}\n\n`{route}` — undo: {}.",
        first_line(&description),
        undo_words(c.undo.as_ref())
    );
    if c.deprecated {
        text.push_str("\n\nDeprecated.");
    }
    let module = module_static(modules, &p.module);
    let function = p.function.as_str();
    let paths = opened_paths(p);
    let handler = quote! {
        ::aifirst::Handler::Python {
            module: &crate::#module,
            function: #function,
            paths: &[#(#paths),*],
        }
    };
    Definition {
        c,
        ident: fn_name,
        description: &description,
        doc: &text,
        output: None,
        handler,
        route: &route,
    }
    .tokens()
}

/// The parameters a function opens as paths — those reaching a file it reads or changes, in
/// its own body or a helper's, and an SQLite database's file — in declaration order: the
/// runtime refuses a call that gives one leading outside the roots
/// (`::aifirst::python::check_paths`).
fn opened_paths(p: &PythonBinding) -> Vec<&str> {
    use crate::ir::PyEffect as E;
    p.params
        .iter()
        .map(|param| param.name.as_str())
        .filter(|name| {
            p.hints.facts.iter().any(|f| {
                let opens = match f.effect {
                    // SQLite's statements carry the `connect(...)` path: a database file.
                    E::SqlRead | E::SqlWrite | E::SqlUnknown => f.call.starts_with("sqlite3."),
                    e => e.on_path(),
                };
                opens && f.params.iter().any(|q| q == name)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::opened_paths;
    use crate::ir::{PyEffect, PyFact, PyParam, PythonBinding, PythonHints};

    fn fact(effect: PyEffect, call: &str, params: &[&str]) -> PyFact {
        PyFact {
            effect,
            call: call.into(),
            line: 1,
            params: params.iter().map(|p| p.to_string()).collect(),
            escapes: Vec::new(),
            segments: Vec::new(),
            via: None,
        }
    }

    #[test]
    fn the_paths_a_function_opens_are_its_file_and_sqlite_parameters() {
        let binding = PythonBinding {
            module: "m".into(),
            file: "m.py".into(),
            function: "f".into(),
            is_async: false,
            params: ["db", "src", "url", "dsn", "flag"]
                .iter()
                .map(|n| PyParam {
                    name: n.to_string(),
                    positional_only: false,
                })
                .collect(),
            hints: PythonHints {
                facts: vec![
                    fact(PyEffect::SqlRead, "sqlite3.Cursor.execute", &["db"]),
                    fact(PyEffect::FileRead, "open", &["src"]),
                    fact(PyEffect::NetRead, "requests.get", &["url"]),
                    fact(PyEffect::SqlWrite, "psycopg2.Cursor.execute", &["dsn"]),
                ],
                opaque_defaults: Vec::new(),
            },
        };
        // In declaration order; a URL and another driver's connection string are not files.
        assert_eq!(opened_paths(&binding), ["db", "src"]);
    }
}
