//! Which calls may run: by capability name, then by effect; irreversible calls need explicit leave.

use std::collections::BTreeMap;

use aifirst_capability::{Confidence, Effect};
use serde::Deserialize;

use crate::def::{CapabilityDef, UndoDecl};
use crate::UndoPlan;

/// What a rule says about a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    Allow,
    Deny,
    /// Run only when the caller (a person, through MCP elicitation or a flag) confirms.
    Confirm,
}

/// The policy of an engine. The default allows everything, except that each irreversible call
/// needs the caller's confirmation (a person: `--yes` on the command line, MCP elicitation).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Rules by capability name; they win over effect rules and over `allow_irreversible`.
    #[serde(default)]
    pub capabilities: BTreeMap<String, Rule>,
    /// Rules by effect; the strictest rule among a capability's effects applies.
    #[serde(default)]
    pub effects: BTreeMap<Effect, Rule>,
    /// Let irreversible capabilities run without confirmation (subject to the other rules).
    #[serde(default)]
    pub allow_irreversible: bool,
    /// Refuse irreversible capabilities outright instead of asking for confirmation (unless
    /// allowed by name or with `allow_irreversible`).
    #[serde(default)]
    pub deny_irreversible: bool,
    /// Ask to confirm calls whose undo plan is less sure than this (`confirm_below = "medium"`:
    /// low-confidence plans need the user's yes, since their undo may not be right).
    #[serde(default)]
    pub confirm_below: Option<Confidence>,
}

/// The policy's answer for one capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny(String),
    Confirm(String),
}

impl Policy {
    /// The answer for one call of `def` that turned out not to be undoable (`why`), such as a
    /// file snapshot past `max_snapshot_bytes`: a rule naming the capability wins, then
    /// `allow_irreversible` / `deny_irreversible`; by default the caller must confirm.
    pub fn decide_irreversible(&self, def: &CapabilityDef, why: &str) -> Verdict {
        let why = format!("this call of `{}` cannot be undone ({why})", def.name);
        match self.capabilities.get(def.name) {
            Some(Rule::Allow) => Verdict::Allow,
            Some(Rule::Deny) => Verdict::Deny(format!("policy denies `{}`", def.name)),
            Some(Rule::Confirm) => Verdict::Confirm(why),
            None if self.allow_irreversible => Verdict::Allow,
            None if self.deny_irreversible => Verdict::Deny(format!(
                "{why}; allow it by name or with allow_irreversible"
            )),
            None => Verdict::Confirm(why),
        }
    }

    /// The answer for a call of `def`, whose data plan (if it declares one) is `plan`, parsed
    /// once by the caller (the engine keeps each capability's).
    pub fn decide(&self, def: &CapabilityDef, plan: Option<&UndoPlan>) -> Verdict {
        match self.capabilities.get(def.name) {
            Some(Rule::Allow) => return Verdict::Allow,
            Some(Rule::Deny) => return Verdict::Deny(format!("policy denies `{}`", def.name)),
            Some(Rule::Confirm) => {
                return Verdict::Confirm(format!("policy asks to confirm `{}`", def.name))
            }
            None => {}
        }
        let mut irreversible = None;
        if let UndoDecl::Irreversible { reason } = def.undo {
            if !self.allow_irreversible {
                let why = format!("`{}` cannot be undone ({reason})", def.name);
                if self.deny_irreversible {
                    return Verdict::Deny(format!(
                        "{why}; allow it by name or with allow_irreversible"
                    ));
                }
                irreversible = Some(why);
            }
        }
        let mut verdict = Verdict::Allow;
        if let (Some(floor), Some(plan)) = (self.confirm_below, plan) {
            if plan.confidence < floor {
                verdict = Verdict::Confirm(format!(
                    "the {} plan that would undo `{}` is only {} confidence (policy confirms below {})",
                    plan.kind.as_str(),
                    def.name,
                    plan.confidence.as_str(),
                    floor.as_str()
                ));
            }
        }
        for e in def.effects {
            match self.effects.get(e) {
                Some(Rule::Deny) => {
                    return Verdict::Deny(format!(
                        "policy denies the effect `{e}` of `{}`",
                        def.name
                    ))
                }
                Some(Rule::Confirm) => {
                    verdict = Verdict::Confirm(format!(
                        "policy asks to confirm the effect `{e}` of `{}`",
                        def.name
                    ))
                }
                _ => {}
            }
        }
        match irreversible {
            Some(why) => Verdict::Confirm(why),
            None => verdict,
        }
    }
}
