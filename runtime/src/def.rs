//! The compile-time definition of a capability.

use std::future::Future;
use std::pin::Pin;

use aifirst_capability::{Annotations, Effect, UndoPlan};
use schemars::Schema;
use serde_json::Value;

use crate::{Ctx, ToolError, UndoCall};

/// A boxed future of a call's result.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The entry point the macro generates: deserialise arguments, call the function, serialise.
pub type CallFn = for<'a> fn(&'a Ctx, Value) -> BoxFuture<'a, Result<Value, ToolError>>;

/// A compensating function declared with `undo = path::to::fn`: it receives the original call's
/// arguments and result.
pub type UndoFn = fn(&Ctx, &UndoCall) -> Result<(), ToolError>;

/// A check declared with `irreversible_when = path::to::fn`: given the call's (checked)
/// arguments, before anything runs or is recorded, `Some(why)` when this one call cannot be
/// undone (an SQL schema change). The policy then decides as for any irreversible call
/// ([`crate::Policy::decide_irreversible`]: confirmation by default); when it lets the call
/// run, the handler sees [`Ctx::irreversible_granted`] and the step is journaled irreversible.
/// An error refuses the call before anything is recorded or asked (run_command: a program that
/// is not allowed).
pub type IrreversibleWhen = fn(&Ctx, &Value) -> Result<Option<String>, ToolError>;

/// Where a capability is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLocation {
    pub file: &'static str,
    pub line: u32,
    pub module: &'static str,
}

impl std::fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{} ({})", self.file, self.line, self.module)
    }
}

/// Annotation overrides written on the capability; `None` keeps the derived hint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnnotationHints {
    pub read_only: Option<bool>,
    pub destructive: Option<bool>,
    pub idempotent: Option<bool>,
    pub open_world: Option<bool>,
}

/// How a capability says it is undone.
#[derive(Debug, Clone, Copy)]
pub enum UndoDecl {
    /// Nothing declared: the capability changes nothing destructive.
    Undeclared,
    /// A compensating function.
    Function { path: &'static str, call: UndoFn },
    /// A data plan (`inverse(...)`, `restore(...)`, `recreate(...)`, `file_snapshot(...)`):
    /// journaled and replayable. The JSON text of the same typed [`UndoPlan`] forge infers,
    /// written and checked when the capability was compiled (registered items are `const`);
    /// [`UndoDecl::plan`] reads it back, and the engine does so once per capability.
    Plan(&'static str),
    /// The body records its own compensation with [`Ctx::on_undo`].
    Custom,
    /// Cannot be undone; policy must allow it.
    Irreversible { reason: &'static str },
}

impl UndoDecl {
    /// The data plan, read back from its JSON text (`None` for the other kinds). A text that
    /// does not read back — a bug, since it was checked when written — gives an irreversible
    /// plan naming the error, never a panic.
    pub fn plan(&self) -> Option<UndoPlan> {
        match self {
            UndoDecl::Plan(json) => Some(crate::__private::undo_plan(json)),
            _ => None,
        }
    }
}

/// A JSON Schema as the capability carries it.
#[derive(Debug, Clone, Copy)]
pub enum SchemaSource {
    /// JSON text written when the capability was compiled (forge's, or `input_schema = "…"`).
    /// A text that is not a JSON object (a bug) reads as a schema no value meets.
    Json(&'static str),
    /// Derived from a Rust type on demand (`None`: the type has no schema).
    Derived(fn() -> Option<Schema>),
    /// No schema (a result type without one).
    None,
}

impl SchemaSource {
    /// The schema, if there is one.
    pub fn get(&self) -> Option<Schema> {
        match self {
            SchemaSource::Json(text) => Some(crate::__private::schema_from_json(text)),
            SchemaSource::Derived(f) => f(),
            SchemaSource::None => None,
        }
    }
}

/// How a call runs.
#[derive(Clone, Copy)]
pub enum Handler {
    /// A Rust function (what `#[capability]` generates).
    Fn(CallFn),
    /// An HTTP operation, described as data and run by the runtime's HTTP binding (what forge
    /// generates: one static per operation and no code, so that a crate of thousands of
    /// operations compiles in seconds).
    Http {
        api: &'static crate::http::Api,
        operation: &'static crate::http::Operation,
    },
    /// A function of a Python module the crate carries, run by the module's worker (what forge
    /// generates from a Python module).
    Python {
        module: &'static crate::python::PyModule,
        function: &'static str,
        /// The arguments the function opens as paths (forge found them reaching a file it
        /// reads or changes): before the worker runs it, each value must lead inside the
        /// roots as the kernel will resolve it (`crate::python::check_paths`).
        paths: &'static [&'static str],
    },
}

/// Everything the runtime knows about a capability, as a `const`.
pub struct CapabilityDef {
    pub name: &'static str,
    pub description: &'static str,
    pub effects: &'static [Effect],
    pub idempotent: bool,
    pub hints: AnnotationHints,
    pub undo: UndoDecl,
    /// JSON Schema 2020-12 of the arguments (read with [`CapabilityDef::input_schema`]).
    pub input: SchemaSource,
    /// JSON Schema of the result, when there is one (read with
    /// [`CapabilityDef::output_schema`]).
    pub output: SchemaSource,
    pub call: Handler,
    pub location: SourceLocation,
    /// Words to find it by (an OpenAPI operation's tags), for a dynamic toolset's search.
    pub tags: &'static [&'static str],
    /// What it does on the wire (`GET /pets/{petId}`), when it is an HTTP operation.
    pub route: Option<&'static str>,
    /// Which calls cannot be undone although the capability usually can be
    /// (`irreversible_when = …`; see [`IrreversibleWhen`]).
    pub irreversible_when: Option<IrreversibleWhen>,
}

impl CapabilityDef {
    /// MCP annotations: derived from the effects, then the declared overrides.
    pub fn annotations(&self) -> Annotations {
        let mut a = Annotations::from_effects(self.effects, self.idempotent);
        let h = self.hints;
        a.read_only_hint = h.read_only.or(a.read_only_hint);
        a.destructive_hint = h.destructive.or(a.destructive_hint);
        a.idempotent_hint = h.idempotent.or(a.idempotent_hint);
        a.open_world_hint = h.open_world.or(a.open_world_hint);
        a
    }

    /// `true` for a Rust capability that only looks at this machine: effects `read` with at most
    /// `filesystem` and `environment`, and no undo declared. Nothing it does is seen outside the
    /// process until its result is returned, so its audit record is its outcome alone, written
    /// before the result is returned (no intent first). An HTTP operation reaches another
    /// machine; a Python function's effects are inferred, and may miss one: both keep their
    /// intent, as every call that changes something does.
    pub fn reads_locally(&self) -> bool {
        matches!(self.call, Handler::Fn(_))
            && matches!(self.undo, UndoDecl::Undeclared)
            && self.effects.contains(&Effect::Read)
            && self
                .effects
                .iter()
                .all(|e| matches!(e, Effect::Read | Effect::Filesystem | Effect::Environment))
    }

    /// `true` for a capability that opens the paths it is given itself rather than through the
    /// sandbox's directory handles: a Python function, or one that runs a program (`execute` or
    /// `process`, as `run_command` with `undo_paths`). Such a handler follows symbolic links and
    /// writes files in place, so its file snapshot also keeps where the links it is given lead
    /// (see [`crate::snapshot`]'s `reach`). A Rust handler goes through [`crate::Ctx::fs`], which
    /// never writes through a link.
    pub fn opens_paths_itself(&self) -> bool {
        matches!(self.call, Handler::Python { .. })
            || self
                .effects
                .iter()
                .any(|e| matches!(e, Effect::Execute | Effect::Process))
    }

    /// JSON Schema 2020-12 of the arguments (the open object schema when none was given).
    pub fn input_schema(&self) -> Schema {
        self.input
            .get()
            .unwrap_or_else(|| Schema::from(serde_json::Map::new()))
    }

    /// JSON Schema of the result, when there is one.
    pub fn output_schema(&self) -> Option<Schema> {
        self.output.get()
    }

    /// Calls the capability with JSON arguments.
    pub async fn invoke(&self, ctx: &Ctx, args: Value) -> Result<Value, ToolError> {
        match self.call {
            Handler::Fn(call) => call(ctx, args).await,
            Handler::Http { api, operation } => {
                crate::http::call_in(ctx, api, operation, &args).await
            }
            Handler::Python {
                module,
                function,
                paths,
            } => {
                if !ctx.paths_checked() {
                    crate::python::check_paths(ctx, function, paths, &args)?;
                }
                crate::python::call(ctx, module, function, args).await
            }
        }
    }
}

impl std::fmt::Debug for CapabilityDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CapabilityDef")
            .field("name", &self.name)
            .field("effects", &self.effects)
            .field("undo", &self.undo)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_text_that_does_not_read_back_refuses_every_value() {
        for bad in ["{not json", "[1]", "true", ""] {
            let schema = SchemaSource::Json(bad).get().unwrap();
            let v = jsonschema::validator_for(schema.as_value()).unwrap();
            assert!(!v.is_valid(&serde_json::json!({})), "{bad}");
            assert!(
                !v.is_valid(&serde_json::json!({"path": "/etc/passwd"})),
                "{bad}"
            );
        }
        let good = SchemaSource::Json(r#"{"type":"object"}"#).get().unwrap();
        let v = jsonschema::validator_for(good.as_value()).unwrap();
        assert!(v.is_valid(&serde_json::json!({"a": 1})));
    }

    #[test]
    fn a_plan_text_that_does_not_read_back_is_irreversible() {
        let plan = UndoDecl::Plan("{\"kind\":\"inverse\"").plan().unwrap();
        assert!(!plan.reverses());
        assert!(plan
            .reason
            .unwrap_or_default()
            .contains("does not read back"));
        assert!(UndoDecl::Undeclared.plan().is_none());
    }
}
