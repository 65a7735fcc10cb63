//! The shared vocabulary of AI-First Runtime.
//!
//! These types are what the compiler (`forge`), the `#[capability]` macro and the runtime agree on.
//! The crate depends on `serde` only, so every other crate can use it without pulling in a runtime.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub mod expr;
pub mod path;
pub mod secret;
pub use expr::{Expr, ExprParseError, Root, Seg};

/// One side effect of a capability: what it does (`read` … `execute`) or where it reaches
/// (`network` … `database`). A capability's effects are a set of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Observes state without changing it.
    Read,
    /// Brings a new resource into existence.
    Create,
    /// Changes an existing resource.
    Update,
    /// Removes a resource.
    Delete,
    /// Triggers an action whose consequences are not a plain state change (send, run, charge…).
    Execute,
    /// Talks to another machine.
    Network,
    /// Touches the local filesystem.
    Filesystem,
    /// Starts or signals processes.
    Process,
    /// Reads or changes environment variables or host configuration.
    Environment,
    /// Talks to a database.
    Database,
}

impl Effect {
    /// Every effect, in canonical order.
    pub const ALL: [Effect; 10] = [
        Effect::Read,
        Effect::Create,
        Effect::Update,
        Effect::Delete,
        Effect::Execute,
        Effect::Network,
        Effect::Filesystem,
        Effect::Process,
        Effect::Environment,
        Effect::Database,
    ];

    /// The lower-case name used in manifests, attributes and CLI flags.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Read => "read",
            Effect::Create => "create",
            Effect::Update => "update",
            Effect::Delete => "delete",
            Effect::Execute => "execute",
            Effect::Network => "network",
            Effect::Filesystem => "filesystem",
            Effect::Process => "process",
            Effect::Environment => "environment",
            Effect::Database => "database",
        }
    }

    /// Parses a lower-case effect name.
    pub fn parse(s: &str) -> Option<Effect> {
        Effect::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// `true` for the "where it reaches" effects (`network`, `filesystem`, …).
    pub fn is_scope(self) -> bool {
        matches!(
            self,
            Effect::Network
                | Effect::Filesystem
                | Effect::Process
                | Effect::Environment
                | Effect::Database
        )
    }

    /// `true` for effects that change or remove what is there (MCP's `destructiveHint`): update,
    /// delete, execute. Creating is additive.
    pub fn is_destructive(self) -> bool {
        matches!(self, Effect::Update | Effect::Delete | Effect::Execute)
    }

    /// `true` for effects that change state.
    pub fn is_mutating(self) -> bool {
        matches!(
            self,
            Effect::Create | Effect::Update | Effect::Delete | Effect::Execute
        )
    }

    /// The variant's name as Rust code spells it (`Read`), for code that writes `Effect::Read`.
    pub fn variant_name(self) -> &'static str {
        match self {
            Effect::Read => "Read",
            Effect::Create => "Create",
            Effect::Update => "Update",
            Effect::Delete => "Delete",
            Effect::Execute => "Execute",
            Effect::Network => "Network",
            Effect::Filesystem => "Filesystem",
            Effect::Process => "Process",
            Effect::Environment => "Environment",
            Effect::Database => "Database",
        }
    }

    /// Whether a capability with these effects is idempotent: declared so, or it has effects and
    /// none of them changes state.
    pub fn idempotent(effects: &[Effect], declared: bool) -> bool {
        declared || (!effects.is_empty() && !effects.iter().any(|e| e.is_mutating()))
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// MCP `ToolAnnotations` hints. `None` means "not stated" (clients then assume the spec defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotations {
    pub read_only_hint: Option<bool>,
    pub destructive_hint: Option<bool>,
    pub idempotent_hint: Option<bool>,
    pub open_world_hint: Option<bool>,
}

/// How sure an inference is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    /// The lower-case name used in manifests, reports and CLI output (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

/// The kind of an undo plan; see [`UndoPlan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UndoKind {
    /// Read-only: nothing to undo.
    None,
    /// Call another capability with arguments taken from this call (`POST /pets` → `DELETE /pets/{id}`).
    Inverse,
    /// Snapshot before, write the snapshot back after (`PUT`/`PATCH` on an item).
    Restore,
    /// Snapshot before, create from the snapshot after (`DELETE` on an item).
    Recreate,
    /// Snapshot the files named by path arguments.
    FileSnapshot,
    /// A hand-written compensation.
    Custom,
    /// Cannot be undone; policy must allow it explicitly.
    Irreversible,
}

impl UndoKind {
    pub const ALL: [UndoKind; 7] = [
        UndoKind::None,
        UndoKind::Inverse,
        UndoKind::Restore,
        UndoKind::Recreate,
        UndoKind::FileSnapshot,
        UndoKind::Custom,
        UndoKind::Irreversible,
    ];

    /// The snake_case name used in manifests, attributes and reports (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            UndoKind::None => "none",
            UndoKind::Inverse => "inverse",
            UndoKind::Restore => "restore",
            UndoKind::Recreate => "recreate",
            UndoKind::FileSnapshot => "file_snapshot",
            UndoKind::Custom => "custom",
            UndoKind::Irreversible => "irreversible",
        }
    }

    /// The kind named by [`UndoKind::as_str`].
    pub fn parse(s: &str) -> Option<UndoKind> {
        UndoKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A reference to another capability, by its final name and the operation id it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
}

/// A call to make: a capability and its arguments as expressions.
///
/// Expressions: `$args.NAME` (an argument of the original call), `$result.PATH` (a dotted path into
/// its response body), `$location.id` (the last path segment of its `Location` response header),
/// `$snapshot` (the whole snapshot body) and `$snapshot.PATH`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub capability: CapabilityRef,
    #[serde(default)]
    pub args: BTreeMap<String, Expr>,
}

/// When a compensation applies, judged from the snapshot taken before the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guard {
    /// Only when the snapshot found nothing (the call brought the state into being: undo a star only if
    /// it was not starred before).
    SnapshotAbsent,
    /// Only when the snapshot found something (the call removed existing state).
    SnapshotPresent,
}

/// A data-shaped undo plan: everything in it can be journaled and replayed after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndoPlan {
    pub kind: UndoKind,
    pub confidence: Confidence,
    /// The capability that performs the compensation (inverse, restore or create call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<CapabilityRef>,
    /// Arguments of the compensating call, as expressions (see [`Call`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, Expr>,
    /// The capability that takes the snapshot before the call (restore, recreate, guarded inverses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<CapabilityRef>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub snapshot_args: BTreeMap<String, Expr>,
    /// When the compensation applies; absent means always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<Guard>,
    /// What to run instead when the snapshot found nothing (a create-or-replace that created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_absent: Option<Call>,
    /// A read-only capability that re-reads what an inverse targets (with the inverse's
    /// arguments): before the compensation runs, the runtime checks it still finds what the call
    /// created, and refuses otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CapabilityRef>,
    /// The paths a `file_snapshot` plan records before the call (expressions over `$args`; one
    /// that resolves to an array names each of its strings). The runtime keeps each path's
    /// content, mode and existence (directories recursively) and restores them on undo.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<Expr>,
    /// Arguments a `file_snapshot` call joins under one of its `paths` (`os.path.join(root,
    /// name)`): the snapshot of `root` covers what the call touches only if `name` stays inside
    /// it, so the runtime refuses the call unless each is a relative path without a `..`
    /// component (an absolute one would replace `root` altogether).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relative: Vec<Expr>,
    /// Why the plan is `irreversible`, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the inference matched, in words.
    #[serde(default)]
    pub evidence: Vec<String>,
}

impl UndoPlan {
    /// A plan of `kind` with no calls.
    pub fn bare(kind: UndoKind, confidence: Confidence) -> Self {
        UndoPlan {
            kind,
            confidence,
            target: None,
            args: BTreeMap::new(),
            snapshot: None,
            snapshot_args: BTreeMap::new(),
            guard: None,
            when_absent: None,
            check: None,
            paths: Vec::new(),
            relative: Vec::new(),
            reason: None,
            evidence: Vec::new(),
        }
    }

    /// An `irreversible` plan with its reason.
    pub fn irreversible(reason: impl Into<String>, confidence: Confidence) -> Self {
        let mut p = UndoPlan::bare(UndoKind::Irreversible, confidence);
        p.reason = Some(reason.into());
        p
    }

    /// `true` when the plan can actually undo something.
    pub fn reverses(&self) -> bool {
        !matches!(self.kind, UndoKind::Irreversible | UndoKind::None)
    }
}

impl Annotations {
    /// The MCP hints implied by a set of effects and idempotence.
    pub fn from_effects(effects: &[Effect], idempotent: bool) -> Self {
        let mutating = effects.iter().any(|e| e.is_mutating());
        // MCP: destructiveHint false means "only additive updates".
        let destructive = effects.iter().any(|e| e.is_destructive());
        let open_world = effects.iter().any(|e| matches!(e, Effect::Network));
        Annotations {
            read_only_hint: Some(!mutating),
            destructive_hint: Some(mutating && destructive),
            idempotent_hint: Some(!mutating || idempotent),
            open_world_hint: Some(open_world),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effect_variant_names_are_the_rust_names() {
        for e in Effect::ALL {
            assert_eq!(e.variant_name(), format!("{e:?}"));
        }
        assert!(Effect::idempotent(&[Effect::Read, Effect::Network], false));
        assert!(!Effect::idempotent(&[Effect::Create], false));
        assert!(Effect::idempotent(&[Effect::Update], true));
        assert!(!Effect::idempotent(&[], false));
    }

    #[test]
    fn undo_kind_and_confidence_names_are_the_serde_names() {
        for k in UndoKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
            assert_eq!(UndoKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(UndoKind::parse("rollback"), None);
        for c in [Confidence::Low, Confidence::Medium, Confidence::High] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }

    #[test]
    fn effect_names_round_trip() {
        for e in Effect::ALL {
            assert_eq!(Effect::parse(e.as_str()), Some(e));
        }
        assert_eq!(Effect::parse("write"), None);
    }

    #[test]
    fn scopes_are_not_mutations() {
        for e in Effect::ALL {
            assert!(!(e.is_scope() && e.is_mutating()), "{e}");
        }
        assert!(Effect::Delete.is_mutating());
        assert!(!Effect::Read.is_mutating());
    }

    #[test]
    fn annotations_follow_effects() {
        let read = Annotations::from_effects(&[Effect::Read, Effect::Network], false);
        assert_eq!(read.read_only_hint, Some(true));
        assert_eq!(read.destructive_hint, Some(false));
        assert_eq!(read.idempotent_hint, Some(true));
        assert_eq!(read.open_world_hint, Some(true));
        let create = Annotations::from_effects(&[Effect::Create, Effect::Network], false);
        assert_eq!(create.read_only_hint, Some(false));
        assert_eq!(create.destructive_hint, Some(false), "creating is additive");
        assert_eq!(create.idempotent_hint, Some(false));
        let delete = Annotations::from_effects(&[Effect::Delete, Effect::Network], true);
        assert_eq!(delete.destructive_hint, Some(true));
        assert_eq!(delete.idempotent_hint, Some(true));
        let local = Annotations::from_effects(&[Effect::Update, Effect::Filesystem], true);
        assert_eq!(local.open_world_hint, Some(false));
    }

    #[test]
    fn irreversible_plans_do_not_reverse() {
        assert!(!UndoPlan::irreversible("money", Confidence::High).reverses());
        assert!(!UndoPlan::bare(UndoKind::None, Confidence::High).reverses());
        assert!(UndoPlan::bare(UndoKind::Inverse, Confidence::Low).reverses());
    }
}
