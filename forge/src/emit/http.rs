//! The handler of an HTTP capability: the operation's method, path template, parameters and
//! body as data, which the runtime's HTTP binding runs (`::aifirst::Handler::Http`).

use proc_macro2::TokenStream;
use quote::quote;
use serde_json::Value;

use super::{first_line, server_url, undo_words, Definition, EmitOptions};
use crate::ir::{BodyShape, Capability, HttpBinding, ParamLocation};

/// One capability's definition, with the operation as its handler.
pub(super) fn handler(
    c: &Capability,
    h: &HttpBinding,
    fn_name: &str,
    base_url: &str,
    opts: &EmitOptions,
) -> TokenStream {
    let description = if c.description.trim().is_empty() {
        format!("{} {}", h.method, h.path)
    } else {
        c.description.clone()
    };
    let output = opts
        .output_schemas
        .then_some(c.output_schema.as_ref())
        .flatten()
        .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
        .filter(Value::is_object)
        .map(|v| v.to_string());
    let mut text = format!(
        "{}\n\n`{} {}` — undo: {}.",
        first_line(&description),
        h.method,
        h.path,
        undo_words(c.undo.as_ref())
    );
    if c.deprecated {
        text.push_str("\n\nDeprecated by the API.");
    }
    let route = format!("{} {}", h.method, h.path);
    let method = h.method.as_str();
    // A path parameter that allows reserved characters becomes `{+name}` (reserved expansion):
    // the runtime then lets `/` separate its segments, each still checked.
    let mut path = h.path.clone();
    for p in h
        .params
        .iter()
        .filter(|p| p.allow_reserved && p.location == ParamLocation::Path)
    {
        path = path.replace(&format!("{{{}}}", p.name), &format!("{{+{}}}", p.name));
    }
    let path = path.as_str();
    let params = h.params.iter().map(|p| {
        let property = p.property.as_str();
        let wire = p.name.as_str();
        let loc = match p.location {
            ParamLocation::Path => quote!(::aifirst::http::In::Path),
            ParamLocation::Query => quote!(::aifirst::http::In::Query),
            ParamLocation::Header => quote!(::aifirst::http::In::Header),
            ParamLocation::Cookie => quote!(::aifirst::http::In::Cookie),
        };
        quote!(::aifirst::http::Param { property: #property, name: #wire, location: #loc })
    });
    let body = match &h.body {
        None => quote!(::aifirst::http::Body::None),
        Some(b) => {
            let media = b.media_type.as_str();
            match &b.shape {
                BodyShape::Flattened { fields } => {
                    let pairs = fields.iter().map(|(p, f)| quote!((#p, #f)));
                    quote!(::aifirst::http::Body::Fields { media_type: #media, fields: &[#(#pairs),*] })
                }
                BodyShape::Wrapped { property } => {
                    let p = property.as_str();
                    quote!(::aifirst::http::Body::Wrapped { media_type: #media, property: #p })
                }
            }
        }
    };
    // A server of its own (an upload host, say) when it is not the API's.
    let server = match server_url(c).filter(|u| u != base_url) {
        Some(u) => quote!(::core::option::Option::Some(#u)),
        None => quote!(::core::option::Option::None),
    };
    let handler = quote! {
        ::aifirst::Handler::Http {
            api: &crate::API,
            operation: &::aifirst::http::Operation {
                method: #method,
                path: #path,
                params: &[#(#params),*],
                body: #body,
                server: #server,
            },
        }
    };
    Definition {
        c,
        ident: fn_name,
        description: &description,
        doc: &text,
        output,
        handler,
        route: &route,
    }
    .tokens()
}
