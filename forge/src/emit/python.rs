//! The handler body of a Python capability: a call into the runtime's Python worker, which
//! imports the module the crate carries (`python/`) once and calls the function by name.

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

use super::{doc_lines, first_line, shared_attrs, undo_words};
use crate::ir::{Capability, PythonBinding};

/// The static of the module a binding's function lives in (`PY_0`, `PY_1`, … in the order of
/// `modules`).
pub(super) fn module_static(modules: &[String], module: &str) -> Ident {
    let i = modules.iter().position(|m| m == module).unwrap_or(0);
    Ident::new(&format!("PY_{i}"), Span::call_site())
}

/// One handler: the `#[capability]` attribute and a call into the module's worker.
pub(super) fn handler(
    c: &Capability,
    p: &PythonBinding,
    fn_name: &str,
    modules: &[String],
) -> TokenStream {
    let fn_ident = Ident::new(fn_name, Span::call_site());
    let name = c.name.as_str();
    let route = format!("{}.{}()", p.module, p.function);
    let description = if c.description.trim().is_empty() {
        route.clone()
    } else {
        c.description.clone()
    };
    let shared = shared_attrs(c);
    let mut text = format!(
        "{}\n\n`{route}` — undo: {}.",
        first_line(&description),
        undo_words(c.undo.as_ref())
    );
    if c.deprecated {
        text.push_str("\n\nDeprecated.");
    }
    let doc = doc_lines(&text);
    let tags = c.tags.iter().map(String::as_str);
    let module = module_static(modules, &p.module);
    let function = p.function.as_str();
    quote! {
        #(#[doc = #doc])*
        #[::aifirst::capability(
            name = #name,
            description = #description,
            #shared
            tags = [#(#tags),*],
            route = #route,
        )]
        pub async fn #fn_ident(
            ctx: &::aifirst::Ctx,
            args: ::aifirst::Value,
        ) -> ::core::result::Result<::aifirst::Value, ::aifirst::ToolError> {
            ::aifirst::python::call(ctx, &crate::#module, #function, args).await
        }
    }
}
