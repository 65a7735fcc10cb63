//! Paths the `#[capability]` expansion uses. Not a public API: anything here may change.

pub use linkme;
pub use schemars;
pub use serde;
pub use serde_json::Value;

pub use crate::def::{BoxFuture, CallFn};
use crate::ToolError;

/// Every capability linked into the binary.
#[linkme::distributed_slice]
pub static CAPABILITIES: [crate::CapabilityDef];

/// Arguments → the generated params struct; errors name the field.
pub fn from_args<T: serde::de::DeserializeOwned>(args: Value) -> Result<T, ToolError> {
    let args = match args {
        Value::Null => Value::Object(Default::default()),
        other => other,
    };
    serde_json::from_value(args).map_err(|e| ToolError::InvalidArguments {
        message: e.to_string(),
    })
}

/// A handler's value → JSON.
pub fn to_output<T: serde::Serialize>(value: T) -> Result<Value, ToolError> {
    serde_json::to_value(value).map_err(|e| ToolError::Output {
        message: e.to_string(),
    })
}

/// The input schema of a params struct (JSON Schema 2020-12).
pub fn schema_of<T: schemars::JsonSchema>() -> schemars::Schema {
    let mut schema = schemars::SchemaGenerator::default().into_root_schema_for::<T>();
    // The hidden struct's name says nothing to a model; leave the title out.
    schema.remove("title");
    schema
}

/// [`schema_of`] as a [`crate::SchemaSource::Derived`] takes it.
pub fn derived_schema<T: schemars::JsonSchema>() -> Option<schemars::Schema> {
    Some(schema_of::<T>())
}

/// A schema given as JSON text (`input_schema = "…"`, which the macro checked is a JSON object,
/// or forge's). A text that is not one — a bug — fails closed: a schema no value meets, whose
/// description says so, never an open one that would let any arguments through.
pub fn schema_from_json(text: &str) -> schemars::Schema {
    serde_json::from_str::<serde_json::Map<String, Value>>(text)
        .map(schemars::Schema::from)
        .unwrap_or_else(|e| {
            let mut refuse = serde_json::Map::new();
            refuse.insert("not".into(), Value::Object(serde_json::Map::new()));
            refuse.insert(
                "description".into(),
                Value::String(format!(
                    "this capability's schema does not read back ({e}); report this as a bug"
                )),
            );
            schemars::Schema::from(refuse)
        })
}

/// Output schema only when the result type implements `JsonSchema` (autoref specialisation).
pub struct OutputProbe<T>(pub core::marker::PhantomData<T>);

pub trait HasOutputSchema {
    fn output_schema(&self) -> Option<schemars::Schema>;
}

// Method lookup on `&&OutputProbe<T>` tries the impl on `&OutputProbe<T>` first: that is the one
// that needs `T: JsonSchema`; otherwise it derefs once and finds the fallback.
impl<T: schemars::JsonSchema> HasOutputSchema for &OutputProbe<T> {
    fn output_schema(&self) -> Option<schemars::Schema> {
        Some(schema_of::<T>())
    }
}

pub trait NoOutputSchema {
    fn output_schema(&self) -> Option<schemars::Schema>;
}

impl<T> NoOutputSchema for OutputProbe<T> {
    fn output_schema(&self) -> Option<schemars::Schema> {
        None
    }
}

/// Handler errors → tool errors: a `ToolError` passes through unchanged (an HTTP 404 stays a 404),
/// anything else printable becomes `ToolError::Handler` (autoref specialisation again).
pub struct ErrWrap<E>(pub E);

pub trait ViaToolError {
    fn to_tool_error(&self) -> ToolError;
}

// Called as `(&&ErrWrap(e)).to_tool_error()`: this impl's receiver is `&&ErrWrap<ToolError>`, so
// it is found before the fallback, whose receiver is `&ErrWrap<E>`.
impl ViaToolError for &ErrWrap<ToolError> {
    fn to_tool_error(&self) -> ToolError {
        self.0.clone()
    }
}

pub trait ViaDisplay {
    fn to_tool_error(&self) -> ToolError;
}

impl<E: core::fmt::Display> ViaDisplay for ErrWrap<E> {
    fn to_tool_error(&self) -> ToolError {
        ToolError::handler(&self.0)
    }
}

/// An undo plan the `#[capability]` macro wrote as JSON (checked when it was written). Should
/// it not read back, the capability is treated as irreversible, with the reason — never a panic.
pub fn undo_plan(json: &str) -> crate::UndoPlan {
    serde_json::from_str(json).unwrap_or_else(|e| {
        crate::UndoPlan::irreversible(
            format!("its undo plan does not read back ({e}); report this as a bug"),
            crate::Confidence::Low,
        )
    })
}
