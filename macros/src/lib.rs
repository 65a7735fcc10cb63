//! `#[capability]`: turns a free function into a registered, schema-typed capability.
//!
//! The expansion refers to the runtime only through `::aifirst::__private`, wraps its items in
//! `const _: () = { … };`, and reports every mistake at once, at the user's tokens, while still
//! emitting the user's function so one mistake does not cascade into others.

use aifirst_capability::{Effect, Expr as Expr2};
use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{
    Attribute, Expr, ExprLit, FnArg, GenericArgument, ItemFn, Lit, LitStr, Pat, PathArguments,
    ReturnType, Type,
};

/// Marks a free function (sync or async) as a capability. See the crate `aifirst` and
/// docs/HANDLER_DEVELOPER_GUIDE.md.
#[proc_macro_attribute]
pub fn capability(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr.into(), item.into()).into()
}

/// Mistakes found so far; all of them are reported together.
#[derive(Default)]
struct Errors(Vec<syn::Error>);

impl Errors {
    fn push(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.0.push(syn::Error::new(span, msg));
    }
    fn to_compile_errors(&self) -> TokenStream2 {
        self.0.iter().map(syn::Error::to_compile_error).collect()
    }
}

/// Argument name → expression, in the order written.
type ArgList = Vec<(String, Expr2)>;

enum Undo {
    Function(syn::Path),
    Plan {
        kind: String,
        target: LitStr,
        snapshot: Option<LitStr>,
        guard: Option<LitStr>,
        /// `when_absent = "x"`, or `when_absent("x", arg = "$args.…", …)` with its own arguments.
        when_absent: Option<(LitStr, Option<ArgList>)>,
        check: Option<LitStr>,
        args: Vec<(String, Expr2)>,
        /// The snapshot call's own arguments (`snapshot_args(...)`); absent: the plan's `$args`.
        snapshot_args: Option<Vec<(String, Expr2)>>,
        confidence: Option<LitStr>,
        evidence: Vec<LitStr>,
    },
    /// `file_snapshot(paths = ["$args.path", …])`: the runtime snapshots these paths.
    /// The paths kept, and the arguments joined under them that must stay relative.
    Files(Vec<Expr2>, Vec<Expr2>),
    Custom,
}

#[derive(Default)]
struct Attrs {
    name: Option<LitStr>,
    description: Option<LitStr>,
    effects: Option<(Span, Vec<(String, Span)>)>,
    idempotent: Option<Span>,
    hints: [Option<(bool, Span)>; 4],
    undo: Option<(Undo, Span)>,
    /// `undo = …` was written but could not be read (already reported).
    undo_unreadable: bool,
    irreversible: Option<LitStr>,
    /// `irreversible_when = path::to::check`: a function telling, before a call runs, whether
    /// that call cannot be undone (`fn(&Ctx, &Value) -> Result<Option<String>, ToolError>`).
    irreversible_when: Option<syn::Path>,
    /// A JSON Schema given as text: the function then takes the whole arguments object as one
    /// parameter (generated code uses this).
    input_schema: Option<LitStr>,
    output_schema: Option<LitStr>,
    /// Words to find the capability by (`tags = ["pets"]`), and what it does on the wire
    /// (`route = "GET /pets/{petId}"`): searched by a dynamic toolset, shown by `describe`.
    tags: Option<Vec<LitStr>>,
    route: Option<LitStr>,
}

const HINTS: [&str; 4] = [
    "read_only_hint",
    "destructive_hint",
    "idempotent_hint",
    "open_world_hint",
];

fn parse_attrs(attr: TokenStream2, errors: &mut Errors) -> Attrs {
    let mut a = Attrs::default();
    let parser = syn::meta::parser(|meta| {
        let key = meta
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        let span = meta.path.span();
        let dup = |errors: &mut Errors, set: bool| {
            if set {
                errors.push(span, format!("duplicate attribute `{key}`"));
            }
        };
        match key.as_str() {
            "name" => {
                dup(errors, a.name.is_some());
                a.name = Some(meta.value()?.parse()?);
            }
            "description" => {
                dup(errors, a.description.is_some());
                a.description = Some(meta.value()?.parse()?);
            }
            "effects" => {
                dup(errors, a.effects.is_some());
                let mut list = Vec::new();
                meta.parse_nested_meta(|e| {
                    let name = e
                        .path
                        .get_ident()
                        .map(|i| i.to_string())
                        .unwrap_or_default();
                    list.push((name, e.path.span()));
                    Ok(())
                })?;
                a.effects = Some((span, list));
            }
            "idempotent" => {
                dup(errors, a.idempotent.is_some());
                a.idempotent = Some(span);
            }
            h if HINTS.contains(&h) => {
                let i = HINTS.iter().position(|x| *x == h).unwrap_or(0);
                dup(errors, a.hints[i].is_some());
                let v: syn::LitBool = meta.value()?.parse()?;
                a.hints[i] = Some((v.value, span));
            }
            "undo" => {
                dup(errors, a.undo.is_some());
                let expr: Expr = meta.value()?.parse()?;
                match parse_undo(&expr, errors) {
                    Some(u) => a.undo = Some((u, expr.span())),
                    None => a.undo_unreadable = true,
                }
            }
            "irreversible" => {
                dup(errors, a.irreversible.is_some());
                a.irreversible = Some(meta.value()?.parse()?);
            }
            "irreversible_when" => {
                dup(errors, a.irreversible_when.is_some());
                a.irreversible_when = Some(meta.value()?.parse()?);
            }
            "input_schema" => {
                dup(errors, a.input_schema.is_some());
                a.input_schema = Some(meta.value()?.parse()?);
            }
            "output_schema" => {
                dup(errors, a.output_schema.is_some());
                a.output_schema = Some(meta.value()?.parse()?);
            }
            "tags" => {
                dup(errors, a.tags.is_some());
                let list: syn::ExprArray = meta.value()?.parse()?;
                let mut tags = Vec::new();
                for e in list.elems {
                    match e {
                        Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(s),
                            ..
                        }) => tags.push(s),
                        other => errors.push(other.span(), "a tag is a string literal"),
                    }
                }
                a.tags = Some(tags);
            }
            "route" => {
                dup(errors, a.route.is_some());
                a.route = Some(meta.value()?.parse()?);
            }
            _ => {
                errors.push(
                    span,
                    format!(
                        "unknown attribute `{key}`; expected one of: name, description, effects(...), idempotent, \
                         undo = ..., irreversible = \"...\", irreversible_when = path::to::check, input_schema = \"{{...}}\", output_schema = \"{{...}}\", tags = [\"...\"], route = \"...\", {}",
                        HINTS.join(", ")
                    ),
                );
                // Skip its value, if any, so parsing can go on.
                if meta.input.peek(syn::Token![=]) {
                    let _: Expr = meta.value()?.parse()?;
                } else if meta.input.peek(syn::token::Paren) {
                    let _ = meta.parse_nested_meta(|m| {
                        let _ = m.value().and_then(|v| v.parse::<Expr>());
                        Ok(())
                    });
                }
            }
        }
        Ok(())
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, attr) {
        errors.0.push(e);
    }
    a
}

fn parse_undo(expr: &Expr, errors: &mut Errors) -> Option<Undo> {
    match expr {
        Expr::Path(p) if p.path.is_ident("custom") => Some(Undo::Custom),
        Expr::Path(p) => Some(Undo::Function(p.path.clone())),
        Expr::Call(call) => {
            let kind = match &*call.func {
                Expr::Path(p) => p.path.get_ident().map(|i| i.to_string()),
                _ => None,
            };
            if kind.as_deref() == Some("file_snapshot") {
                return parse_file_snapshot(call, errors);
            }
            let Some(kind) =
                kind.filter(|k| ["inverse", "restore", "recreate"].contains(&k.as_str()))
            else {
                errors.push(
                    call.func.span(),
                    "expected `inverse(...)`, `restore(...)`, `recreate(...)` or `file_snapshot(paths = [...])`",
                );
                return None;
            };
            let mut args = call.args.iter();
            let target = match args.next() {
                Some(Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                })) => s.clone(),
                other => {
                    let span = other.map(Spanned::span).unwrap_or_else(|| call.span());
                    errors.push(span, format!("`{kind}(...)` starts with the name of the capability that undoes this one, as a string"));
                    return None;
                }
            };
            if target.value().is_empty() {
                errors.push(target.span(), "the compensating capability's name is empty");
            }
            let mut out = Vec::new();
            let mut snapshot = None;
            let mut guard: Option<LitStr> = None;
            let mut when_absent: Option<(LitStr, Option<ArgList>)> = None;
            let mut check: Option<LitStr> = None;
            let mut snapshot_args: Option<Vec<(String, Expr2)>> = None;
            let mut confidence: Option<LitStr> = None;
            let mut evidence: Vec<LitStr> = Vec::new();
            for a in args {
                if let Expr::Call(inner) = a {
                    let which = match &*inner.func {
                        Expr::Path(p) if p.path.is_ident("snapshot_args") => "snapshot_args",
                        Expr::Path(p) if p.path.is_ident("when_absent") => "when_absent",
                        _ => {
                            errors.push(
                                inner.func.span(),
                                "the calls inside a plan are `snapshot_args(name = \"$args.x\", …)` and `when_absent(\"capability\", name = \"$args.x\", …)`",
                            );
                            continue;
                        }
                    };
                    let mut rest = inner.args.iter();
                    let absent_target = if which == "when_absent" {
                        match rest.next() {
                            Some(Expr::Lit(ExprLit {
                                lit: Lit::Str(t), ..
                            })) => Some(t.clone()),
                            _ => {
                                errors.push(
                                    inner.span(),
                                    "`when_absent(...)` starts with the capability's name, as a string",
                                );
                                continue;
                            }
                        }
                    } else {
                        None
                    };
                    let mut list = Vec::new();
                    for sa in rest {
                        match assignment(sa) {
                            Some((n, v, _)) => match Expr2::parse(&v.value()) {
                                Ok(e) if e.reads_args_only() => list.push((n, e)),
                                Ok(_) => errors.push(v.span(), "these arguments read only `$args.…` (the snapshot is taken before the call)"),
                                Err(e) => errors.push(v.span(), e),
                            },
                            None => errors.push(sa.span(), "expected `argument = \"$args.x\"`"),
                        }
                    }
                    match absent_target {
                        Some(t) => {
                            if kind != "restore" {
                                errors
                                    .push(t.span(), "`when_absent(...)` goes with `restore(...)`");
                            }
                            when_absent = Some((t, Some(list)));
                        }
                        None => snapshot_args = Some(list),
                    }
                    continue;
                }
                let Expr::Assign(_) = a else {
                    errors.push(a.span(), "expected `argument = \"$args.x\"` (or `$result.…`, `$snapshot…`, `$location.id`)");
                    continue;
                };
                let (name, value, quoted) = match assignment(a) {
                    Some((n, v, q)) => (Some(n), Some(v), q),
                    None => (None, None, false),
                };
                match (name, value) {
                    (Some(n), Some(v)) if n == "snapshot" && !quoted => snapshot = Some(v),
                    (Some(n), Some(v)) if n == "guard" && !quoted => {
                        if !["snapshot_absent", "snapshot_present"].contains(&v.value().as_str()) {
                            errors.push(
                                v.span(),
                                "`guard` is `\"snapshot_absent\"` or `\"snapshot_present\"`",
                            );
                        }
                        guard = Some(v);
                    }
                    (Some(n), Some(v)) if n == "check" && !quoted => {
                        if kind != "inverse" {
                            errors.push(v.span(), "`check = …` goes with `inverse(...)`; a restore checks with its snapshot");
                        }
                        check = Some(v);
                    }
                    (Some(n), Some(v)) if n == "confidence" && !quoted => {
                        if !["high", "medium", "low"].contains(&v.value().as_str()) {
                            errors.push(
                                v.span(),
                                "`confidence` is `\"high\"`, `\"medium\"` or `\"low\"`",
                            );
                        }
                        confidence = Some(v);
                    }
                    (Some(n), Some(v)) if n == "evidence" && !quoted => evidence.push(v),
                    (Some(n), Some(v)) if n == "when_absent" && !quoted => {
                        if kind != "restore" {
                            errors.push(v.span(), "`when_absent = …` goes with `restore(...)`");
                        }
                        when_absent = Some((v, None));
                    }
                    (Some(n), Some(v)) => match Expr2::parse(&v.value()) {
                        Ok(e) => out.push((n, e)),
                        Err(e) => errors.push(v.span(), e),
                    },
                    _ => errors.push(a.span(), "expected `argument = \"$args.x\"`"),
                }
            }
            if kind == "inverse" && snapshot.is_some() && guard.is_none() {
                errors.push(
                    call.span(),
                    "an `inverse(...)` with `snapshot = …` needs `guard = …`: when does it apply?",
                );
            }
            if let (Some(g), None) = (&guard, &snapshot) {
                errors.push(
                    g.span(),
                    "`guard = …` needs `snapshot = \"capability\"` to tell the state before",
                );
            }
            if snapshot_args.is_some() && snapshot.is_none() {
                errors.push(
                    call.span(),
                    "`snapshot_args(...)` needs `snapshot = \"capability\"`: the call they are for",
                );
            }
            if kind != "inverse" && snapshot.is_none() {
                errors.push(
                    call.span(),
                    format!("`{kind}(...)` needs `snapshot = \"capability\"`: the call that reads the state before"),
                );
            }
            Some(Undo::Plan {
                kind,
                target,
                snapshot,
                guard,
                when_absent,
                check,
                args: out,
                snapshot_args,
                confidence,
                evidence,
            })
        }
        other => {
            errors.push(other.span(), "expected a function path, `inverse(...)`, `restore(...)`, `recreate(...)`, `file_snapshot(paths = [...])` or `custom`");
            None
        }
    }
}

/// `file_snapshot(paths = ["$args.path", …])`: each path an expression over the arguments;
/// `relative = ["$args.name", …]`: arguments the handler joins under those paths, which the
/// runtime refuses when absolute or with a `..` component.
fn parse_file_snapshot(call: &syn::ExprCall, errors: &mut Errors) -> Option<Undo> {
    let usage = "expected `file_snapshot(paths = [\"$args.path\", …])` (and optionally `relative = [\"$args.name\", …]`)";
    let errors_before = errors.0.len();
    let mut paths = Vec::new();
    let mut relative = Vec::new();
    let mut seen = false;
    for a in &call.args {
        let Expr::Assign(assign) = a else {
            errors.push(a.span(), usage);
            continue;
        };
        let is_paths = matches!(&*assign.left, Expr::Path(p) if p.path.is_ident("paths"));
        let is_relative = matches!(&*assign.left, Expr::Path(p) if p.path.is_ident("relative"));
        let Expr::Array(list) = &*assign.right else {
            errors.push(assign.right.span(), usage);
            continue;
        };
        if !is_paths && !is_relative {
            errors.push(assign.left.span(), usage);
            continue;
        }
        seen |= is_paths;
        for item in &list.elems {
            match item {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => match Expr2::parse(&s.value()) {
                    Ok(e) if e.reads_args_only() && is_relative => relative.push(e),
                    Ok(e) if e.reads_args_only() => paths.push(e),
                    Ok(_) => errors.push(
                        s.span(),
                        "a snapshot path reads only `$args.…` (it is taken before the call)",
                    ),
                    Err(e) => errors.push(s.span(), e),
                },
                other => errors.push(other.span(), "each path is a string: `\"$args.path\"`"),
            }
        }
    }
    if !seen || paths.is_empty() {
        // Said once: not again after a more precise error about the same list.
        if errors.0.len() == errors_before {
            errors.push(
                call.span(),
                "`file_snapshot(...)` names at least one path: `paths = [\"$args.path\"]`",
            );
        }
        return None;
    }
    Some(Undo::Files(paths, relative))
}

/// `name = "…"`, or `"any-name" = "…"` for an argument whose name is not a Rust identifier (the
/// flag: quoted, so always an argument, never `snapshot`/`guard`/…).
fn assignment(e: &Expr) -> Option<(String, LitStr, bool)> {
    let Expr::Assign(assign) = e else {
        return None;
    };
    let (name, quoted) = match &*assign.left {
        Expr::Path(p) => (
            p.path
                .get_ident()
                .map(|i| i.to_string().trim_start_matches("r#").to_string())?,
            false,
        ),
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => (s.value(), true),
        _ => return None,
    };
    match &*assign.right {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some((name, s.clone(), quoted)),
        _ => None,
    }
}

fn doc_text(attrs: &[Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => Some(s.value().trim().to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let text = lines.join("\n").trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn is_ctx_type(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) if r.mutability.is_none() => match &*r.elem {
            Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Ctx"),
            _ => false,
        },
        _ => false,
    }
}

/// The success type and whether the function returns `Result<T, E>`.
fn output_type(ret: &ReturnType) -> (Type, bool) {
    let ReturnType::Type(_, ty) = ret else {
        return (syn::parse_quote!(()), false);
    };
    if let Type::Path(p) = &**ty {
        if let Some(last) = p.path.segments.last() {
            if last.ident == "Result" {
                if let PathArguments::AngleBracketed(args) = &last.arguments {
                    let types: Vec<&Type> = args
                        .args
                        .iter()
                        .filter_map(|a| match a {
                            GenericArgument::Type(t) => Some(t),
                            _ => None,
                        })
                        .collect();
                    if types.len() == 2 {
                        return (types[0].clone(), true);
                    }
                }
            }
        }
    }
    ((**ty).clone(), false)
}

fn mcp_safe(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn expand(attr: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let mut errors = Errors::default();
    let mut func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let mut out = syn::Error::new(e.span(), "#[capability] goes on a free function")
                .to_compile_error();
            out.extend(item);
            return out;
        }
    };
    let attrs = parse_attrs(attr, &mut errors);

    // ---- signature
    let sig = &func.sig;
    if !sig.generics.params.is_empty() {
        errors.push(sig.generics.span(), "a capability cannot be generic: its arguments are deserialised from JSON into concrete types");
    }
    let mut uses_ctx = false;
    let mut fields: Vec<(syn::Ident, Type, Vec<Attribute>)> = Vec::new();
    for (i, arg) in sig.inputs.iter().enumerate() {
        match arg {
            FnArg::Receiver(r) => errors.push(
                r.span(),
                "a capability is a free function; `self` is not allowed",
            ),
            FnArg::Typed(pt) => {
                let ident = match &*pt.pat {
                    Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                        pi.ident.clone()
                    }
                    other => {
                        errors.push(
                            other.span(),
                            "capability parameters must be plain names (no patterns)",
                        );
                        continue;
                    }
                };
                if is_ctx_type(&pt.ty) {
                    if i != 0 {
                        errors.push(pt.ty.span(), "`&Ctx` must be the first parameter");
                    }
                    uses_ctx = true;
                    continue;
                }
                if ident == "ctx" {
                    errors.push(
                        pt.ty.span(),
                        "`ctx` must have type `&Ctx` (the runtime context)",
                    );
                    continue;
                }
                match &*pt.ty {
                    Type::Reference(r) if r.mutability.is_some() => {
                        errors.push(pt.ty.span(), "`&mut` parameters are not allowed: arguments arrive as JSON and are owned by the call");
                        continue;
                    }
                    Type::Reference(_) => {
                        errors.push(pt.ty.span(), "borrowed parameters cannot be deserialised; take an owned type (e.g. `String` for `&str`)");
                        continue;
                    }
                    Type::ImplTrait(_) => {
                        errors.push(
                            pt.ty.span(),
                            "`impl Trait` parameters are not allowed: name a concrete type",
                        );
                        continue;
                    }
                    _ => {}
                }
                fields.push((ident, (*pt.ty).clone(), pt.attrs.clone()));
            }
        }
    }

    // ---- attributes
    let name = attrs
        .name
        .as_ref()
        .map(LitStr::value)
        .unwrap_or_else(|| sig.ident.to_string());
    let name_span = attrs
        .name
        .as_ref()
        .map(LitStr::span)
        .unwrap_or_else(|| sig.ident.span());
    if !mcp_safe(&name) {
        errors.push(
            name_span,
            format!("capability name `{name}` is not MCP-safe: use 1 to 64 of `a-z A-Z 0-9 _ -`"),
        );
    }
    let description = attrs
        .description
        .as_ref()
        .map(LitStr::value)
        .or_else(|| doc_text(&func.attrs))
        .unwrap_or_default();
    if description.is_empty() {
        errors.push(
            sig.ident.span(),
            "a capability needs a description: write a `///` doc comment or `description = \"…\"`",
        );
    }
    let tags: Vec<String> = attrs
        .tags
        .as_ref()
        .map(|t| t.iter().map(LitStr::value).collect())
        .unwrap_or_default();
    let route = match &attrs.route {
        Some(r) => {
            let r = r.value();
            quote!(::core::option::Option::Some(#r))
        }
        None => quote!(::core::option::Option::None),
    };
    let mut effects: Vec<Effect> = Vec::new();
    match &attrs.effects {
        None => errors.push(
            sig.ident.span(),
            "declare what the capability does: `effects(read)`, `effects(create, network)`, …",
        ),
        Some((_, list)) => {
            for (e, span) in list {
                match Effect::parse(e) {
                    Some(effect) => {
                        if !effects.contains(&effect) {
                            effects.push(effect);
                        }
                    }
                    None => {
                        let all: Vec<&str> = Effect::ALL.iter().map(|e| e.as_str()).collect();
                        errors.push(
                            *span,
                            format!("unknown effect `{e}`; expected one of: {}", all.join(", ")),
                        );
                    }
                }
            }
        }
    }
    let destructive = effects.iter().any(|e| e.is_destructive());
    match (&attrs.undo, &attrs.irreversible) {
        (Some((_, span)), Some(_)) => errors.push(*span, "declare either `undo = …` or `irreversible = \"…\"`, not both"),
        (None, None) if destructive && !attrs.undo_unreadable => errors.push(
            attrs.effects.as_ref().map(|(s, _)| *s).unwrap_or_else(|| sig.ident.span()),
            "this capability changes or removes state (update, delete or execute) but declares no undo: \
             add `undo = …` or say `irreversible = \"why\"`",
        ),
        _ => {}
    }
    if let (Some(p), Some(_)) = (&attrs.irreversible_when, &attrs.irreversible) {
        errors.push(
            p.span(),
            "`irreversible_when` names the calls that cannot be undone, but `irreversible = \"…\"` \
             already says none can: keep one",
        );
    }
    if let (Some(p), None, None) = (&attrs.irreversible_when, &attrs.undo, &attrs.irreversible) {
        errors.push(
            p.span(),
            "`irreversible_when` marks some calls of an undoable capability irreversible: declare \
             how the others are undone with `undo = …`",
        );
    }
    let irreversible_when = match &attrs.irreversible_when {
        Some(p) => {
            quote_spanned!(p.span()=> ::core::option::Option::Some(#p as ::aifirst::IrreversibleWhen))
        }
        None => quote!(::core::option::Option::None),
    };
    if let Some(r) = &attrs.irreversible {
        if r.value().trim().is_empty() {
            errors.push(
                r.span(),
                "say why it is irreversible: `irreversible = \"moves money\"`",
            );
        }
    }

    for lit in [&attrs.input_schema, &attrs.output_schema]
        .into_iter()
        .flatten()
    {
        match serde_json::from_str::<serde_json::Value>(&lit.value()) {
            Ok(serde_json::Value::Object(_)) => {}
            Ok(_) => errors.push(lit.span(), "a JSON Schema must be a JSON object"),
            Err(e) => errors.push(lit.span(), format!("not valid JSON: {e}")),
        }
    }
    if attrs.input_schema.is_some() && fields.len() != 1 {
        errors.push(
            sig.ident.span(),
            "with `input_schema = \"…\"` the function takes the whole arguments object as its one \
             parameter (besides `ctx`), e.g. `args: aifirst::Value`",
        );
    }

    // Strip the parameter attributes (docs become field descriptions) from the emitted function.
    for arg in func.sig.inputs.iter_mut() {
        if let FnArg::Typed(pt) = arg {
            pt.attrs.clear();
        }
    }
    if !errors.0.is_empty() {
        let mut out = errors.to_compile_errors();
        out.extend(func.to_token_stream());
        return out;
    }

    // ---- expansion
    let fn_ident = &func.sig.ident;
    let field_idents: Vec<&syn::Ident> = fields.iter().map(|(i, _, _)| i).collect();
    let field_defs = fields
        .iter()
        .map(|(i, t, attrs)| quote! { #(#attrs)* #i: #t });
    let ctx_arg = uses_ctx.then(|| quote!(ctx,));
    let raw = attrs.input_schema.is_some();
    let call = if raw {
        quote! { #fn_ident(#ctx_arg p) }
    } else {
        quote! { #fn_ident(#ctx_arg #(p.#field_idents),*) }
    };
    let call = if func.sig.asyncness.is_some() {
        quote!(#call.await)
    } else {
        call
    };
    let (out_ty, is_result) = output_type(&func.sig.output);
    let produce = if is_result {
        quote! {
            match #call {
                ::core::result::Result::Ok(v) => ::aifirst::__private::to_output(v),
                ::core::result::Result::Err(e) => {
                    #[allow(unused_imports)]
                    use ::aifirst::__private::{ViaDisplay as _, ViaToolError as _};
                    ::core::result::Result::Err((&&::aifirst::__private::ErrWrap(e)).to_tool_error())
                }
            }
        }
    } else {
        quote! { ::aifirst::__private::to_output(#call) }
    };
    let effect_idents = effects.iter().map(|e| {
        let variant = format_ident!("{}", e.variant_name());
        quote!(::aifirst::Effect::#variant)
    });
    let idempotent = aifirst_capability::Effect::idempotent(&effects, attrs.idempotent.is_some());
    let hint = |i: usize| match attrs.hints[i] {
        Some((v, _)) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    };
    let (h0, h1, h2, h3) = (hint(0), hint(1), hint(2), hint(3));
    let undo = match (&attrs.undo, &attrs.irreversible) {
        (_, Some(reason)) => quote!(::aifirst::UndoDecl::Irreversible { reason: #reason }),
        (Some((Undo::Custom, _)), _) => quote!(::aifirst::UndoDecl::Custom),
        (Some((Undo::Files(paths, relative), _)), _) => {
            let mut p = aifirst_capability::UndoPlan::bare(
                aifirst_capability::UndoKind::FileSnapshot,
                aifirst_capability::Confidence::High,
            );
            p.paths = paths.clone();
            p.relative = relative.clone();
            let json = plan_json(&p);
            quote!(::aifirst::UndoDecl::Plan(#json))
        }
        (Some((Undo::Function(path), _)), _) => {
            let text = path.to_token_stream().to_string().replace(' ', "");
            quote!(::aifirst::UndoDecl::Function { path: #text, call: #path })
        }
        (
            Some((
                Undo::Plan {
                    kind,
                    target,
                    snapshot,
                    guard,
                    when_absent,
                    check,
                    args,
                    snapshot_args,
                    confidence,
                    evidence,
                },
                _,
            )),
            _,
        ) => {
            use aifirst_capability::{CapabilityRef, Confidence, UndoKind, UndoPlan};
            let cref = |name: &LitStr| CapabilityRef {
                name: name.value(),
                operation_id: None,
            };
            let map = |list: &[(String, Expr2)]| -> std::collections::BTreeMap<String, Expr2> {
                list.iter().cloned().collect()
            };
            let confidence = match confidence.as_ref().map(LitStr::value).as_deref() {
                Some("medium") => Confidence::Medium,
                Some("low") => Confidence::Low,
                _ => Confidence::High,
            };
            let mut p = UndoPlan::bare(
                UndoKind::parse(kind).unwrap_or(UndoKind::Inverse),
                confidence,
            );
            p.target = Some(cref(target));
            p.args = map(args);
            p.snapshot = snapshot.as_ref().map(cref);
            if let Some(a) = snapshot_args {
                p.snapshot_args = map(a);
            }
            p.guard = match guard.as_ref().map(LitStr::value).as_deref() {
                Some("snapshot_absent") => Some(aifirst_capability::Guard::SnapshotAbsent),
                Some("snapshot_present") => Some(aifirst_capability::Guard::SnapshotPresent),
                _ => None,
            };
            p.when_absent = when_absent.as_ref().map(|(w, a)| aifirst_capability::Call {
                capability: cref(w),
                args: a.as_deref().map(map).unwrap_or_default(),
            });
            p.check = check.as_ref().map(cref);
            p.evidence = evidence.iter().map(LitStr::value).collect();
            let json = plan_json(&p);
            quote!(::aifirst::UndoDecl::Plan(#json))
        }
        (None, None) => quote!(::aifirst::UndoDecl::Undeclared),
    };
    let line = quote_spanned!(fn_ident.span()=> ::core::line!());
    let (params, parse_args, input_schema) = match (&attrs.input_schema, fields.first()) {
        (Some(lit), Some((_, ty, _))) => (
            quote! {},
            quote! { let p: #ty = ::aifirst::__private::from_args(args)?; },
            quote!(::aifirst::SchemaSource::Json(#lit)),
        ),
        _ => (
            quote! {
                #[derive(::aifirst::__private::serde::Deserialize, ::aifirst::__private::schemars::JsonSchema)]
                #[serde(crate = "::aifirst::__private::serde")]
                #[schemars(crate = "::aifirst::__private::schemars")]
                struct __AifirstParams { #(#field_defs),* }
            },
            quote! { let p: __AifirstParams = ::aifirst::__private::from_args(args)?; },
            quote!(::aifirst::SchemaSource::Derived(
                ::aifirst::__private::derived_schema::<__AifirstParams>
            )),
        ),
    };
    // Handlers of the shape forge used to generate (`input_schema = "…"`, `async fn(ctx: &Ctx,
    // args: ::aifirst::Value) -> ::core::result::Result<::aifirst::Value, ::aifirst::ToolError>`)
    // already take and give what the shim would convert: their future is boxed as it is, with
    // no second state machine around it.
    let spelled = |t: &dyn ToTokens| t.to_token_stream().to_string().replace(' ', "");
    let passthrough = raw
        && uses_ctx
        && func.sig.asyncness.is_some()
        && fields
            .first()
            .is_some_and(|(_, ty, _)| spelled(ty) == "::aifirst::Value")
        && matches!(&func.sig.output, ReturnType::Type(_, t)
            if spelled(t) == "::core::result::Result<::aifirst::Value,::aifirst::ToolError>");
    let body = if passthrough {
        quote! { ::std::boxed::Box::pin(#fn_ident(ctx, args)) }
    } else {
        quote! {
            ::std::boxed::Box::pin(async move {
                #parse_args
                let _ = &p;
                #produce
            })
        }
    };
    let (output_items, output_schema) = match &attrs.output_schema {
        Some(lit) => (
            TokenStream2::new(),
            quote!(::aifirst::SchemaSource::Json(#lit)),
        ),
        None => (
            quote! {
                fn __aifirst_output_schema() -> ::core::option::Option<::aifirst::__private::schemars::Schema> {
                    #[allow(unused_imports)]
                    use ::aifirst::__private::{HasOutputSchema as _, NoOutputSchema as _};
                    (&&::aifirst::__private::OutputProbe::<#out_ty>(::core::marker::PhantomData)).output_schema()
                }
            },
            quote!(::aifirst::SchemaSource::Derived(__aifirst_output_schema)),
        ),
    };
    let expanded = quote! {
        #func

        #[doc(hidden)]
        const _: () = {
            #params

            fn __aifirst_call<'a>(
                ctx: &'a ::aifirst::Ctx,
                args: ::aifirst::__private::Value,
            ) -> ::aifirst::__private::BoxFuture<'a, ::core::result::Result<::aifirst::__private::Value, ::aifirst::ToolError>> {
                let _ = ctx;
                #body
            }

            #output_items

            #[::aifirst::__private::linkme::distributed_slice(::aifirst::__private::CAPABILITIES)]
            #[linkme(crate = ::aifirst::__private::linkme)]
            static __AIFIRST_DEF: ::aifirst::CapabilityDef = ::aifirst::CapabilityDef {
                name: #name,
                description: #description,
                effects: &[#(#effect_idents),*],
                idempotent: #idempotent,
                hints: ::aifirst::AnnotationHints { read_only: #h0, destructive: #h1, idempotent: #h2, open_world: #h3 },
                undo: #undo,
                input: #input_schema,
                output: #output_schema,
                call: ::aifirst::Handler::Fn(__aifirst_call),
                location: ::aifirst::SourceLocation { file: ::core::file!(), line: #line, module: ::core::module_path!() },
                tags: &[#(#tags),*],
                route: #route,
                irreversible_when: #irreversible_when,
            };
        };
    };
    expanded
}

/// The plan as JSON text, read back on first use (the engine reads a plan once per
/// capability): one string per capability instead of code that builds each string, map and
/// vector (on GitHub's 1,223 operations that code was a quarter of a generated crate's machine
/// code).
fn plan_json(p: &aifirst_capability::UndoPlan) -> String {
    serde_json::to_string(p).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pretty(attr: TokenStream2, item: TokenStream2) -> String {
        let out = expand(attr, item);
        let file: syn::File = syn::parse2(out).expect("expansion parses as a file");
        prettyplease::unparse(&file)
    }

    #[test]
    fn expands_a_sync_capability() {
        insta::assert_snapshot!(pretty(
            quote!(effects(read)),
            quote! {
                /// Adds two numbers.
                fn add(
                    /// The first number.
                    a: i64,
                    b: i64,
                ) -> i64 { a + b }
            }
        ));
    }

    #[test]
    fn expands_an_async_capability_with_ctx_and_result() {
        insta::assert_snapshot!(pretty(
            quote!(name = "fetch_note", effects(read, network), idempotent),
            quote! {
                /// Fetches a note.
                async fn fetch(ctx: &Ctx, id: String) -> Result<Note, std::io::Error> { todo!() }
            }
        ));
    }

    #[test]
    fn expands_a_generated_http_handler_without_a_second_future() {
        insta::assert_snapshot!(pretty(
            quote!(
                name = "get_pet",
                description = "Get a pet",
                effects(read, network),
                input_schema = "{\"type\":\"object\"}",
            ),
            quote! {
                pub async fn get_pet(
                    ctx: &::aifirst::Ctx,
                    args: ::aifirst::Value,
                ) -> ::core::result::Result<::aifirst::Value, ::aifirst::ToolError> {
                    todo!()
                }
            }
        ));
    }

    #[test]
    fn expands_an_undo_declaring_capability() {
        insta::assert_snapshot!(pretty(
            quote!(
                effects(create, filesystem),
                undo = inverse("delete_note", id = "$result.id")
            ),
            quote! {
                /// Creates a note.
                fn create_note(title: String) -> Result<Note, String> { todo!() }
            }
        ));
    }

    #[test]
    fn all_mistakes_are_reported_at_once_and_the_item_survives() {
        let out = expand(
            quote!(effects(teleport, delete), bogus = 1),
            quote! { fn f<T>(x: &mut T) {} },
        )
        .to_string();
        assert_eq!(out.matches("compile_error").count(), 6, "{out}");
        assert!(
            out.contains("fn f"),
            "the user's item is still emitted: {out}"
        );
    }
}
