//! The one path from a source to an inferred IR: select the front end, run it, run inference.
//! `forge inspect` and `forge import` both come through here.

use std::path::Path;

use crate::diag::Diagnostic;
use crate::ir::Ir;
use crate::naming;

/// Knobs of the front end.
#[derive(Debug, Clone)]
pub struct Options {
    /// Longest capability name (default 48; clamped to 16..=64).
    pub max_name_len: usize,
    /// Project overrides of inferred effects, annotations and undo (`forge.toml`).
    pub overrides: crate::infer::Overrides,
    /// The token budget of one tool's `tools/list` entry (see [`crate::budget`]); `None`: no
    /// budget.
    pub max_tool_tokens: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_name_len: naming::DEFAULT_MAX_NAME_LEN,
            overrides: crate::infer::Overrides::default(),
            max_tool_tokens: Some(crate::budget::DEFAULT_MAX_TOOL_TOKENS),
        }
    }
}

/// What the front end produced.
pub struct Lowered {
    pub ir: Ir,
    pub diagnostics: Vec<Diagnostic>,
    pub stats: Stats,
    /// The parsed sources and schema memo the IR was built from. Dropping them frees tens of
    /// megabytes node by node on a large API; a command-line process can exit instead.
    pub retained: Retained,
}

/// Opaque: what a front end keeps behind an IR (the parsed documents and memoised schemas of a
/// description).
pub struct Retained {
    _kept: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl Retained {
    pub fn new(kept: impl std::any::Any + Send + Sync) -> Self {
        Retained {
            _kept: Some(Box::new(kept)),
        }
    }

    /// Nothing kept.
    pub fn none() -> Self {
        Retained { _kept: None }
    }
}

impl Lowered {
    /// Frees the parsed documents now, when more is to be built after lowering (`forge import`
    /// emits hundreds of megabytes of code for the largest APIs; the documents are as large).
    pub fn release_sources(&mut self) {
        self.retained._kept = None;
    }
}

impl std::fmt::Debug for Lowered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lowered")
            .field("ir", &self.ir)
            .field("diagnostics", &self.diagnostics)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Counts for the summary.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    /// Operations found in the description.
    pub operations: usize,
    /// Operations lowered to capabilities.
    pub imported: usize,
    /// Operations skipped because they could not be lowered.
    pub skipped: usize,
    /// Capabilities whose name was shortened or deduplicated.
    pub renamed: usize,
    /// Capabilities whose tool was pruned to the token budget.
    pub pruned: usize,
    /// Capabilities still over the token budget after pruning.
    pub over_budget: usize,
}

/// Reads `path` with the front end that fits it, then infers effects, annotations and undo
/// plans.
///
/// `Err` is a diagnostic saying why nothing at all could be used; everything else comes back as
/// diagnostics beside the IR.
pub fn lower(path: &Path, opts: &Options) -> Result<Lowered, Box<Diagnostic>> {
    let mut lowered = if crate::frontend::python::accepts(path) {
        crate::frontend::python::lower(path, opts)?
    } else {
        crate::frontend::openapi::lower(path, opts)?
    };
    let found = crate::infer::infer(&mut lowered.ir, &opts.overrides);
    lowered.diagnostics.extend(found);
    Ok(lowered)
}
