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
/// its own body or a helper's — in declaration order: the runtime refuses a call that gives one
/// leading outside the roots (`::aifirst::python::check_paths`).
fn opened_paths(p: &PythonBinding) -> Vec<&str> {
    use crate::ir::PyEffect as E;
    p.params
        .iter()
        .map(|param| param.name.as_str())
        .filter(|name| {
            p.hints.facts.iter().any(|f| {
                matches!(
                    f.effect,
                    E::FileRead
                        | E::FileWrite
                        | E::FileDelete
                        | E::DirCreate
                        | E::DirDelete
                        | E::TreeDelete
                        | E::Move
                ) && f.params.iter().any(|q| q == name)
            })
        })
        .collect()
}
