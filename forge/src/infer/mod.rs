//! Inference: side effects, MCP annotations and an undo plan for every capability. The rules of
//! each kind of binding live beside this shared core ([`http`]: methods, paths and pairing;
//! [`python`]: the calls the Python front end found, and create/delete pairs by name).
//!
//! Precision over coverage: a plan is only proposed when the description shows the operation that
//! reverses the call and where its arguments come from; otherwise the plan is `irreversible` with
//! the reason. Every plan says how sure it is and what it matched.
//!
//! Overrides, strongest first: project configuration (`forge.toml`, [`Overrides`]) > extensions on
//! the operation (`x-aifirst-effects`, `x-aifirst-undo`, `x-mcp-annotations`; a Python module's
//! decorator) > inference. The extensions are untrusted input: they may only make a capability
//! stricter (`overrides::vet_untrusted`).

mod http;
mod overrides;
mod python;

pub use overrides::{OpOverride, Overrides};

use aifirst_capability::{Confidence, UndoKind, UndoPlan};

use crate::diag::Diagnostic;
use crate::ir::{Capability, Ir};

/// Runs inference over every capability and applies overrides. Returns diagnostics about overrides.
pub fn infer(ir: &mut Ir, overrides: &Overrides) -> Vec<Diagnostic> {
    // One IR comes from one front end: its capabilities share a kind of binding, and the rules
    // of that kind judge them together (HTTP pairing looks across all operations).
    if ir.capabilities.iter().all(|c| c.binding.http().is_some()) {
        http::infer(&mut ir.capabilities);
    } else if ir.capabilities.iter().all(|c| c.binding.python().is_some()) {
        python::infer(&mut ir.capabilities);
    }
    let mut diags = Vec::new();
    let any_extension = ir.capabilities.iter().any(|c| c.declared.any());
    if overrides.operations.is_empty() && !any_extension {
        return diags;
    }
    let names = overrides::NameTable::new(&ir.capabilities);
    for i in 0..ir.capabilities.len() {
        let mut ext = overrides::from_extensions(&ir.capabilities[i], &mut diags);
        if let Some(o) = &mut ext {
            overrides::vet_untrusted(&ir.capabilities[i], o, &mut diags);
        }
        let project = overrides.for_capability(&ir.capabilities[i]).cloned();
        for o in [ext, project].into_iter().flatten() {
            overrides::apply(&mut ir.capabilities[i], &o, &names, &mut diags);
        }
    }
    diags
}

/// Share of mutating capabilities with a plan that reverses them, by confidence.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Coverage {
    pub mutating: usize,
    pub reversible: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub irreversible: usize,
}

impl Coverage {
    pub fn of<'a>(caps: impl IntoIterator<Item = &'a Capability>) -> Coverage {
        let mut c = Coverage::default();
        for cap in caps {
            if !cap.effects.iter().any(|e| e.is_mutating()) {
                continue;
            }
            c.mutating += 1;
            match &cap.undo {
                Some(p) if p.reverses() => {
                    c.reversible += 1;
                    match p.confidence {
                        Confidence::High => c.high += 1,
                        Confidence::Medium => c.medium += 1,
                        Confidence::Low => c.low += 1,
                    }
                }
                Some(p) if p.kind == UndoKind::Irreversible => c.irreversible += 1,
                _ => c.irreversible += 1,
            }
        }
        c
    }

    pub fn percent(&self) -> f64 {
        if self.mutating == 0 {
            100.0
        } else {
            self.reversible as f64 * 100.0 / self.mutating as f64
        }
    }
}

pub(crate) fn bare(kind: UndoKind, c: Confidence) -> UndoPlan {
    UndoPlan::bare(kind, c)
}
