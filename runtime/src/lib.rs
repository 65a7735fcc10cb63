//! AI-First Runtime: the crate generated and hand-written capabilities run on.
//!
//! A capability is a function marked with [`capability`]. The macro registers a [`CapabilityDef`]
//! at compile time; [`Registry::new`] collects every definition linked into the binary.
//!
//! ```
//! use aifirst::{capability, Ctx};
//!
//! /// Adds two numbers.
//! #[capability(effects(read))]
//! fn add(
//!     /// The first number.
//!     a: i64,
//!     /// The second number.
//!     b: i64,
//! ) -> i64 {
//!     a + b
//! }
//!
//! let registry = aifirst::Registry::new().unwrap();
//! assert!(registry.get("add").is_some());
//! ```

pub mod audit;
mod ctx;
mod def;
mod engine;
mod error;
mod expr;
pub mod fs;
pub mod http;
mod journal;
mod lock;
mod policy;
pub mod python;
mod redact;
mod registry;
pub mod report;
mod sandbox;
pub mod snapshot;

pub use aifirst_capability::secret::is_secret_key;
pub use aifirst_capability::{
    Annotations, Call as PlanCall, CapabilityRef, Confidence, Effect, Expr, ExprParseError, Guard,
    Root, Seg, UndoKind, UndoPlan,
};
pub use aifirst_macros::capability;
pub use ctx::{Compensation, Ctx, UndoCall};
pub use def::{
    AnnotationHints, CapabilityDef, Handler, IrreversibleWhen, SchemaSource, SourceLocation,
    UndoDecl, UndoFn,
};
pub use engine::{
    default_state_dir, CallError, CallEvent, CallOptions, CallStatus, Engine, Planned, Recorder,
    Resolution, UndoEvent, UndoOptions, UndoPhase, UndoReport, UndoTarget, DEFAULT_SNAPSHOT_LIMIT,
};
pub use error::ToolError;
pub use expr::{resolve as resolve_expr, ExprError, Scope};
pub use http::NetLimits;
pub use journal::{
    Expect, Journal, JournalError, Replay, Step, StepState, StepUndo, JOURNAL_VERSION,
};
pub use lock::LockError;
pub use policy::{Policy, Rule, Verdict};
pub use redact::{
    RedactionPolicy, Redactor, MAX_JOURNALED_STRING, MAX_RECORDED_STRING, MAX_RECORDED_VALUE,
    REDACTED,
};
pub use registry::{DuplicateCapability, Registry};
pub use sandbox::Sandbox;
/// Arguments and results are JSON.
pub use serde_json::Value;

/// What the `#[capability]` macro expands to refers to; not a public API.
#[doc(hidden)]
pub mod __private;
