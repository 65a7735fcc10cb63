//! The engine: validate, decide, journal ahead, run, complete; and undo, exactly once.
//!
//! A mutating call takes its session's lock, is journaled `intended` and audited (intent) before
//! it runs, and is completed (`done`, with its compensation) and audited (outcome) after. If the
//! journal or the audit log cannot take the intent, the call does not run. An undo takes the
//! session's lock, vets each compensation against what its capability declares and against
//! policy, checks that the target is still what the step left behind, claims the step
//! (`undoing`) and only then runs the compensation; `undone` or `failed` after.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::def::{CapabilityDef, UndoDecl};
use crate::expr::{resolve, Scope};
use crate::journal::{
    Alias, Blobs, Expect, Journal, JournalError, Replay, Step, StepState, StepUndo,
};
use crate::lock::{LockError, SessionLocks};
use crate::policy::{Policy, Verdict};
use crate::redact::{Redactor, MAX_JOURNALED_STRING, MAX_RECORDED_STRING};
use crate::sandbox::Sandbox;
use crate::snapshot::{self, FileAction, SnapError, Store};
use crate::{Ctx, Expr, Guard, Registry, Root, ToolError, UndoCall, UndoKind, UndoPlan};

/// The default of [`Engine::with_snapshot_limit`]: 256 MiB of file content per call.
pub const DEFAULT_SNAPSHOT_LIMIT: u64 = 256 * 1024 * 1024;

/// A file-snapshot call ready to run: its files locked and their state kept, or why it keeps
/// nothing.
enum PreparedFiles {
    Irreversible(String),
    Kept {
        _held: crate::lock::PathGuard,
        manifest: snapshot::Manifest,
        /// The manifest's blob (the state before the call).
        ahead: String,
        entries: Vec<String>,
        bytes: u64,
        /// Small content of the state before, journaled with the step ([`snapshot::before`]).
        staged: Blobs,
    },
}

impl PreparedFiles {
    /// The small content to journal with the step (taken: written once).
    fn take_staged(&mut self) -> Blobs {
        match self {
            PreparedFiles::Kept { staged, .. } => std::mem::take(staged),
            PreparedFiles::Irreversible(_) => Blobs::new(),
        }
    }

    /// The compensation journaled with the step before the call runs.
    fn undo_ahead(&self) -> StepUndo {
        match self {
            PreparedFiles::Irreversible(why) => StepUndo::Irreversible {
                reason: why.clone(),
            },
            PreparedFiles::Kept {
                ahead,
                entries,
                bytes,
                ..
            } => StepUndo::Files {
                manifest: ahead.clone(),
                paths: entries.clone(),
                bytes: *bytes,
            },
        }
    }
}

/// What a `file_snapshot` plan keeps for one call: its paths, or why it keeps nothing.
struct FilePlan {
    /// The paths to snapshot, as the sandbox shows them.
    entries: Vec<String>,
    /// Set when the snapshot would be too large: the call runs (if policy lets it) irreversible.
    irreversible: Option<String>,
}

/// What the snapshot before a call found.
enum Snapshot {
    None,
    Present(Value),
    /// The snapshot call answered 404: the resource did not exist.
    Absent,
}

/// Why a call did not run, or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("no capability `{0}`")]
    Unknown(String),
    #[error("invalid arguments at `{field}`: {message}")]
    InvalidArguments { field: String, message: String },
    /// The capability's own input schema is broken: calls are refused rather than unchecked.
    #[error("`{capability}` cannot be called: its input schema does not compile ({message}); fix the schema")]
    InvalidSchema { capability: String, message: String },
    #[error("refused: {0}")]
    Denied(String),
    #[error("needs confirmation: {0}")]
    NeedsConfirmation(String),
    #[error("could not take the snapshot undo needs, so the call is refused: {0}")]
    Snapshot(String),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Busy(#[from] LockError),
    /// The audit log could not take a record. Before the call: it did not run. After: it ran.
    #[error("{0}")]
    Audit(String),
    /// The call ran but its step could not be completed in the journal: it stays `intended`.
    #[error("`{capability}` ran, but step {step} could not be completed in the journal ({why}); it stays `intended`: check the effect, then `undo --resolve {step} done` or `undo --resolve {step} skip`")]
    Incomplete {
        capability: String,
        step: i64,
        why: String,
    },
    #[error("step {0} is not in this session")]
    NoStep(i64),
    #[error("no checkpoint `{0}` in this session (see `history`)")]
    NoCheckpoint(String),
    #[error("step {step} is `{state}`: {why}")]
    WrongState {
        step: i64,
        state: &'static str,
        why: String,
    },
}

impl CallError {
    /// How the audit log files this outcome.
    pub fn status(&self) -> CallStatus {
        match self {
            CallError::Denied(_)
            | CallError::NeedsConfirmation(_)
            | CallError::InvalidSchema { .. } => CallStatus::Refused,
            CallError::Unknown(_) | CallError::InvalidArguments { .. } => CallStatus::Invalid,
            _ => CallStatus::Error,
        }
    }
}

/// How a call is made.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// The user confirmed a call the policy wants confirmed.
    pub confirmed: bool,
    /// Who asked for the call (e.g. the MCP client's name and version); recorded in the audit log.
    pub client: Option<String>,
    /// A narrower sandbox for this call (the roots an MCP client offered,
    /// [`Sandbox::narrowed_to`]); the engine's own when `None`.
    pub sandbox: Option<Arc<Sandbox>>,
}

/// How an undo is made.
#[derive(Debug, Clone, Default)]
pub struct UndoOptions {
    /// Show each compensation, run nothing.
    pub dry_run: bool,
    /// Run a destructive compensation even when its target no longer matches what the step left.
    pub force: bool,
    /// Who asked (recorded in the audit log).
    pub client: Option<String>,
}

/// Which steps an undo reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoTarget {
    /// The newest N steps still on the stack.
    Steps(usize),
    /// Every step after this checkpoint.
    Checkpoint(String),
}

/// What a person decided about an interrupted step (`undo --resolve N …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The effect happened (an `intended` step), or the compensation did not (an `undoing`
    /// step): the step is `done` and can be undone.
    Done,
    /// The compensation did run (an `undoing` step): the step is `undone`.
    Undone,
    /// Give up on it: `skipped`, so the steps below it can be undone.
    Skip,
}

/// One compensation an undo would run (dry run) or ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    pub step: i64,
    pub capability: String,
    pub state: StepState,
    /// The compensating calls with resolved (and redacted) arguments, in the order they run.
    pub compensations: Vec<Replay>,
    /// The files it would write back or remove (file-snapshot steps).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileAction>,
    /// Why it would not run, when it would not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
}

/// What an undo did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UndoReport {
    /// Steps undone, newest first.
    pub undone: Vec<i64>,
    /// The step that could not be undone, and why; it and every older step stay on the stack.
    pub failed: Option<(i64, String)>,
    /// With `dry_run`: what would run, newest first (oldest first for a redo).
    pub planned: Vec<Planned>,
    /// Steps a redo re-applied, oldest first.
    pub redone: Vec<i64>,
}

/// How a call ended, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStatus {
    /// Written before the call runs (intent).
    Started,
    Ok,
    /// The handler, the snapshot, the journal or the audit failed.
    Error,
    /// Policy refused it or asked for a confirmation it did not get.
    Refused,
    /// Unknown capability or invalid arguments: nothing ran.
    Invalid,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Started => "started",
            CallStatus::Ok => "ok",
            CallStatus::Error => "error",
            CallStatus::Refused => "refused",
            CallStatus::Invalid => "invalid",
        }
    }
}

/// One call, before it runs (`Started`) or after, for the audit log.
#[derive(Debug)]
pub struct CallEvent<'a> {
    pub session: &'a str,
    pub capability: &'a str,
    /// The capability, when it exists.
    pub def: Option<&'static CapabilityDef>,
    pub args: &'a Value,
    /// The recorder's rendering of `args` (redacted, capped), kept between the intent and the
    /// outcome records of one call so that it is made once: the same arguments, the same
    /// recorder, the same text.
    pub args_record: &'a std::sync::OnceLock<String>,
    /// The engine's record text of `args` ([`Redactor::record_text`]) and the redactor that
    /// made it, when the engine made one (it journals it): a recorder with the same rules
    /// may use it instead of redacting the arguments again.
    pub args_text: Option<(&'a Redactor, &'a str)>,
    /// The kind of the capability's declared undo (`inverse`, `file_snapshot`, `function`,
    /// `none`, …), from the engine's parsed plan.
    pub plan_kind: &'static str,
    pub status: CallStatus,
    pub result: Option<&'a Value>,
    pub error: Option<String>,
    /// The journal step, when the call has one.
    pub step: Option<i64>,
    /// How the step is undone, once known.
    pub undo: Option<&'a StepUndo>,
    /// [`StepUndo::digest`] of the compensation the journal keeps for the step (outcome records).
    pub undo_digest: Option<String>,
    pub duration: Duration,
    /// Who asked for the call, when the caller said (`CallOptions::client`).
    pub client: Option<&'a str>,
}

/// What happened to a step during an undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoPhase {
    /// Claimed; the compensations are about to run.
    Started,
    Undone,
    Failed,
    /// Refused before anything ran (tampered, denied, target mismatch, interrupted step).
    Refused,
    /// A person skipped it.
    Skipped,
    /// A person resolved an interrupted step.
    Resolved,
    /// `redo` wrote an undone file-snapshot step's after-state back: the step is `done` again.
    Redone,
    /// `redo` is about to write a step's after-state back.
    RedoStarted,
}

impl UndoPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            UndoPhase::Started => "undo_started",
            UndoPhase::Undone => "undone",
            UndoPhase::Failed => "undo_failed",
            UndoPhase::Refused => "undo_refused",
            UndoPhase::Skipped => "skipped",
            UndoPhase::Resolved => "resolved",
            UndoPhase::Redone => "redone",
            UndoPhase::RedoStarted => "redo_started",
        }
    }
}

/// One undo of one step, for the audit log.
#[derive(Debug)]
pub struct UndoEvent<'a> {
    pub session: &'a str,
    pub step: i64,
    /// The capability the step called.
    pub capability: &'a str,
    pub phase: UndoPhase,
    /// The snapshot reads and compensating calls (the recorder redacts them).
    pub compensations: &'a [Replay],
    pub error: Option<&'a str>,
    /// A new compensation a person's resolution gave the step ([`StepUndo::digest`]).
    pub undo_digest: Option<String>,
    pub duration: Duration,
    pub client: Option<&'a str>,
}

/// Receives every call and every undo (the audit log implements this). An error before a call or
/// a compensation runs stops it: the audit log fails closed.
pub trait Recorder: Send + Sync {
    fn call(&self, event: &CallEvent<'_>) -> Result<(), String>;
    fn undo(&self, event: &UndoEvent<'_>) -> Result<(), String>;
    /// The digest of the compensation recorded for `step` ([`StepUndo::digest`]), if the
    /// recorder keeps one: the engine refuses a journaled compensation that does not match.
    fn undo_digest(&self, _step: i64) -> Result<Option<String>, String> {
        Ok(None)
    }
    /// Makes what was recorded so far as durable as the recorder makes it: the engine calls
    /// this after an intent (before the call or compensation runs) and before a call, an undo
    /// or a redo returns. The audit log keeps its chain's head in the journal here, unless a
    /// step's write already did.
    fn flush(&self) {}
}

/// See [`Engine::flushing`].
struct FlushOnDrop<'a>(Option<&'a dyn Recorder>);

impl Drop for FlushOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(r) = self.0 {
            r.flush();
        }
    }
}

/// Executes capabilities with validation, policy and a durable undo journal.
pub struct Engine {
    registry: Registry,
    policy: Policy,
    journal: Arc<Journal>,
    locks: SessionLocks,
    /// Per capability, built from its input schema on first use.
    checks: Mutex<HashMap<&'static str, Arc<ArgChecks>>>,
    /// Per capability with a data plan, the plan, built on first use.
    plans: Mutex<HashMap<&'static str, Arc<UndoPlan>>>,
    /// In-process compensations by step: gone when this engine (process) is.
    closures: Mutex<HashMap<i64, Ctx>>,
    recorder: Option<Arc<dyn Recorder>>,
    redactor: Redactor,
    sandbox: Arc<Sandbox>,
    /// Content kept by file-snapshot steps.
    store: Store,
    /// Where the journal, the audit log and the store live: out of the file tools' reach.
    state_dir: PathBuf,
    snapshot_limit: u64,
}

/// The state directory: `AIFIRST_STATE_DIR`, else `.aifirst` in the working directory.
pub fn default_state_dir() -> PathBuf {
    std::env::var_os("AIFIRST_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".aifirst"))
}

impl Engine {
    pub fn open(
        registry: Registry,
        policy: Policy,
        state_dir: &Path,
    ) -> Result<Engine, JournalError> {
        let journal = Journal::shared(state_dir)?;
        Ok(Engine {
            registry,
            policy,
            store: Store::new(state_dir, Arc::clone(&journal)),
            journal,
            locks: SessionLocks::new(state_dir),
            checks: Mutex::new(HashMap::new()),
            plans: Mutex::new(HashMap::new()),
            closures: Mutex::new(HashMap::new()),
            recorder: None,
            redactor: Redactor::default(),
            sandbox: Arc::new(Sandbox::default()),
            state_dir: state_dir.to_path_buf(),
            snapshot_limit: DEFAULT_SNAPSHOT_LIMIT,
        })
    }

    /// The most file content one call's snapshot may keep (`max_snapshot_bytes`; default
    /// [`DEFAULT_SNAPSHOT_LIMIT`]). A call past it cannot be undone, so policy decides whether it
    /// runs ([`Policy::decide_irreversible`]: by default, with the caller's confirmation).
    pub fn with_snapshot_limit(mut self, bytes: u64) -> Self {
        self.snapshot_limit = bytes;
        self
    }

    /// Opens the engine on the default state directory ([`default_state_dir`]).
    pub fn open_default(registry: Registry, policy: Policy) -> Result<Engine, JournalError> {
        Engine::open(registry, policy, &default_state_dir())
    }

    /// Replaces the default redaction of what the journal shows (arguments and results; the
    /// compensation data is kept as it is, since undo needs it).
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// What capabilities may reach: allowed roots and hosts (default: no files, public hosts).
    pub fn with_sandbox(mut self, sandbox: Sandbox) -> Self {
        // The journal, audit log and snapshots are never reachable through file capabilities,
        // even when the state directory lies inside a root (`.aifirst` with `--root .`).
        self.sandbox = Arc::new(sandbox.protecting(&self.state_dir));
        self
    }

    /// The sandbox in force.
    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }

    /// A fresh context for one call, in this engine's sandbox.
    fn ctx(&self) -> Ctx {
        Ctx::with_sandbox(self.sandbox.clone())
    }

    pub fn with_recorder(mut self, recorder: Arc<dyn Recorder>) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// How long a call waits for its session's lock before failing as busy (default 60 s).
    pub fn with_lock_wait(mut self, wait: Duration) -> Self {
        self.locks.wait = wait;
        self
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    fn checks(&self, def: &'static CapabilityDef) -> Arc<ArgChecks> {
        let mut cache = self.checks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.get(def.name) {
            return Arc::clone(c);
        }
        let schema = def.input_schema();
        let props = schema
            .as_value()
            .get("properties")
            .and_then(Value::as_object);
        let structured = props
            .into_iter()
            .flatten()
            .filter(|(_, p)| {
                let t = p.get("type").map(Value::to_string).unwrap_or_default();
                t.contains("object") || t.contains("array")
            })
            .map(|(k, _)| k.clone())
            .collect();
        let defaults = props
            .into_iter()
            .flatten()
            .filter_map(|(k, p)| Some((k.clone(), p.get("default")?.clone())))
            .collect();
        let c = Arc::new(ArgChecks {
            validator: jsonschema::validator_for(schema.as_value()).map_err(|e| e.to_string()),
            structured,
            defaults,
        });
        cache.insert(def.name, Arc::clone(&c));
        c
    }

    /// The kind of `def`'s declared undo, as the audit log records it.
    fn plan_kind(&self, def: &'static CapabilityDef) -> &'static str {
        match &def.undo {
            UndoDecl::Undeclared => "none",
            UndoDecl::Function { .. } => "function",
            // A plan text that does not read back makes the capability irreversible.
            UndoDecl::Plan(_) => self.plan(def).map_or("irreversible", |p| p.kind.as_str()),
            UndoDecl::Custom => "custom",
            UndoDecl::Irreversible { .. } => "irreversible",
        }
    }

    /// The data plan of a capability that declares one (built once).
    fn plan(&self, def: &'static CapabilityDef) -> Option<Arc<UndoPlan>> {
        if !matches!(def.undo, UndoDecl::Plan(_)) {
            return None;
        }
        let mut cache = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = cache.get(def.name) {
            return Some(Arc::clone(p));
        }
        let plan = Arc::new(def.undo.plan()?);
        cache.insert(def.name, Arc::clone(&plan));
        Some(plan)
    }

    /// Flushes the recorder when dropped: whatever path an operation returns by, what it
    /// recorded is kept first ([`Recorder::flush`]).
    fn flushing(&self) -> FlushOnDrop<'_> {
        FlushOnDrop(self.recorder.as_deref())
    }

    /// Records a call. An intent is flushed at once ([`Recorder::flush`]): it is kept before
    /// the call runs, so a process killed while it runs leaves no record the journal does not
    /// vouch for. An outcome's head rides on the step's next write, or the flush on return.
    fn record_call(&self, ev: &CallEvent<'_>) -> Result<(), String> {
        match &self.recorder {
            Some(r) => {
                r.call(ev)?;
                if ev.status == CallStatus::Started {
                    r.flush();
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Records an undo's phase; an intent (before compensations run) is flushed at once, as a
    /// call's is.
    fn record_undo(&self, ev: &UndoEvent<'_>) -> Result<(), String> {
        match &self.recorder {
            Some(r) => {
                r.undo(ev)?;
                if matches!(ev.phase, UndoPhase::Started | UndoPhase::RedoStarted) {
                    r.flush();
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Calls a capability in a session.
    pub async fn call(
        &self,
        session: &str,
        name: &str,
        args: Value,
        opts: CallOptions,
    ) -> Result<Value, CallError> {
        let _flush = self.flushing();
        let started = Instant::now();
        let client = opts.client.as_deref();
        let args_record = std::sync::OnceLock::new();
        let args_text = std::sync::OnceLock::<String>::new();
        let plan_kind = self
            .registry
            .get(name)
            .map_or("none", |d| self.plan_kind(d));
        let event = |status, step, error: Option<String>| CallEvent {
            session,
            capability: name,
            def: self.registry.get(name),
            args: &args,
            args_record: &args_record,
            args_text: args_text.get().map(|t| (&self.redactor, t.as_str())),
            plan_kind,
            status,
            result: None,
            error,
            step,
            undo: None,
            undo_digest: None,
            duration: started.elapsed(),
            client,
        };
        let (def, args_checked) = match self.admit(name, args.clone(), &opts) {
            Ok(v) => v,
            Err(e) => {
                // Nothing ran; a refusal the audit log cannot take is still a refusal.
                let _ = self.record_call(&event(e.status(), None, Some(e.to_string())));
                return Err(e);
            }
        };
        let sandbox = opts
            .sandbox
            .clone()
            .unwrap_or_else(|| Arc::clone(&self.sandbox));
        let granted = match self.irreversible_call(def, &args_checked, &opts, &sandbox) {
            Ok(g) => g,
            Err(e) => {
                let _ = self.record_call(&event(e.status(), None, Some(e.to_string())));
                return Err(e);
            }
        };
        // A Python function opens its paths itself: each must lead inside the roots, checked
        // before anything is journaled (once: the handler's context says so; a caller without
        // an engine has them checked when it invokes).
        if let crate::Handler::Python {
            function, paths, ..
        } = def.call
        {
            let ctx = Ctx::with_sandbox(Arc::clone(&sandbox));
            if let Err(e) = crate::python::check_paths(&ctx, function, paths, &args_checked) {
                let e = CallError::Tool(e);
                let _ = self.record_call(&event(e.status(), None, Some(e.to_string())));
                return Err(e);
            }
        }
        let files = match self.file_plan(def, &args_checked, &opts, &sandbox) {
            // A call that is irreversible as a whole keeps no snapshot.
            Ok(Some(mut f)) if granted.is_some() => {
                f.irreversible = granted.clone();
                Some(f)
            }
            Ok(f) => f,
            Err(e) => {
                let _ = self.record_call(&event(e.status(), None, Some(e.to_string())));
                return Err(e);
            }
        };
        let mutating = def.effects.iter().any(|e| e.is_mutating())
            || !matches!(def.undo, UndoDecl::Undeclared);
        // Calls of one session run one at a time; read-only calls may overlap.
        let _guard = if mutating {
            Some(self.locks.lock(session).await?)
        } else {
            None
        };
        // A file-snapshot call: its files locked and their state kept before the step is
        // journaled, so the step's first record already says how to undo it.
        let mut prepared = match files {
            Some(fp) => match self.prepare_files(fp, &sandbox).await {
                Ok(p) => Some(p),
                Err(e) => {
                    let _ = self.record_call(&event(e.status(), None, Some(e.to_string())));
                    return Err(e);
                }
            },
            None => None,
        };
        // A file-snapshot step is undone from its manifest: the journal keeps its arguments and
        // result for people only, and shorter. Other steps may be rebuilt from theirs.
        let journaled_strings = if prepared.is_some() {
            MAX_JOURNALED_STRING
        } else {
            MAX_RECORDED_STRING
        };
        let step = if mutating {
            let ahead = match (&prepared, &granted) {
                (Some(p), _) => p.undo_ahead(),
                (None, Some(why)) => StepUndo::Irreversible {
                    reason: why.clone(),
                },
                (None, None) => StepUndo::Pending,
            };
            let blobs = prepared
                .as_mut()
                .map(PreparedFiles::take_staged)
                .unwrap_or_default();
            // Redacted once: the journal's display copy and (for the arguments as sent,
            // unchanged by the lenient decoding) the audit log's record are cut from it.
            let redacted = self.redactor.redact(&args_checked);
            if args_checked == args {
                let _ = args_text.set(Redactor::record_text_of(
                    redacted.clone(),
                    MAX_RECORDED_STRING,
                ));
            }
            let text = Redactor::record_text_of(redacted, journaled_strings);
            Some(
                self.journal
                    .intend_keeping(session, name, &text, &ahead, &blobs)?,
            )
        } else {
            None
        };
        // A call that only looks at this machine has its outcome alone, written before its
        // result is returned ([`CapabilityDef::reads_locally`]); any other has its intent first.
        let intent = if def.reads_locally() {
            Ok(())
        } else {
            self.record_call(&event(CallStatus::Started, step, None))
        };
        if let Err(why) = intent {
            if let Some(id) = step {
                self.journal.forget(id)?;
            }
            return Err(CallError::Audit(format!(
                "`{name}` was not run: its audit record could not be written ({why})"
            )));
        }
        let outcome = match prepared {
            Some(p) => {
                self.run_files(def, args_checked, p, &sandbox, granted)
                    .await
            }
            None => self.run(step, def, args_checked, &sandbox, granted).await,
        };
        // A file tool's call that left every path as it found it (an `edit_file` preview, a
        // `write_file` of the same content) changed nothing: its step is dropped rather than
        // completed, so that `undo` reverts the last change, not a no-op. A call that also runs
        // a program or reaches the network (`run_command` with `undo_paths`) keeps its step:
        // it did something, which history shows.
        let file_tool_only = !runs_more_than_files(def);
        let unchanged = match &outcome {
            Ok((_, StepUndo::Files { manifest, .. })) if file_tool_only => {
                self.store.manifest(manifest).is_ok_and(|m| {
                    m.entries
                        .iter()
                        .all(|e| e.after.as_ref() == Some(&e.before))
                })
            }
            _ => false,
        };
        // The audit outcome first, then the journal: a step the journal calls done (or error)
        // always has its outcome record; a process killed in between leaves `intended`.
        let recorded = self.record_call(&CallEvent {
            result: outcome.as_ref().ok().map(|(v, _)| v),
            undo: outcome.as_ref().ok().filter(|_| !unchanged).map(|(_, u)| u),
            undo_digest: match (&outcome, step) {
                (Ok((_, u)), Some(_)) if !unchanged => Some(u.digest()),
                _ => None,
            },
            ..event(
                if outcome.is_ok() {
                    CallStatus::Ok
                } else {
                    CallStatus::Error
                },
                step,
                outcome.as_ref().err().map(ToString::to_string),
            )
        });
        let completed = match (&outcome, step) {
            (Ok(_), Some(id)) if unchanged => {
                self.journal.forget(id).map_err(|e| CallError::Incomplete {
                    capability: name.to_string(),
                    step: id,
                    why: e.to_string(),
                })
            }
            (Ok((result, undo)), Some(id)) => self
                .journal
                .complete_text(
                    id,
                    &Redactor::record_text_of(self.redactor.redact(result), journaled_strings),
                    undo,
                )
                .map_err(|e| CallError::Incomplete {
                    capability: name.to_string(),
                    step: id,
                    why: e.to_string(),
                }),
            (Err(e), Some(id)) => self
                .journal
                .transition(
                    id,
                    &[StepState::Intended],
                    StepState::Error,
                    Some(&e.to_string()),
                )
                .map(|_| ())
                .map_err(CallError::from),
            (_, None) => Ok(()),
        };
        let (result, _) = outcome?;
        completed?;
        if let Err(why) = recorded {
            return Err(CallError::Audit(format!(
                "`{name}` ran{}, but its audit record could not be written ({why}){}",
                step.map(|s| format!(" (step {s})")).unwrap_or_default(),
                if step.is_none() {
                    "; what it returned is withheld"
                } else {
                    ""
                }
            )));
        }
        Ok(result)
    }

    /// Looks the capability up, checks the arguments and asks the policy.
    fn admit(
        &self,
        name: &str,
        args: Value,
        opts: &CallOptions,
    ) -> Result<(&'static CapabilityDef, Value), CallError> {
        let def = self
            .registry
            .get(name)
            .ok_or_else(|| CallError::Unknown(name.to_string()))?;
        let checks = self.checks(def);
        let args = lenient(&checks.structured, args);
        let validator = checks
            .validator
            .as_ref()
            .map_err(|message| CallError::InvalidSchema {
                capability: def.name.to_string(),
                message: message.clone(),
            })?;
        if let Some(e) = validator.iter_errors(&args).next() {
            let field = e.instance_path().to_string();
            // Masked: the offending value never reaches the audit log or a report (it may be
            // a secret sent under the wrong name); the agent knows what it sent.
            return Err(CallError::InvalidArguments {
                field: if field.is_empty() { "/".into() } else { field },
                message: e.masked_with("the value").to_string(),
            });
        }
        match self.policy.decide(def, self.plan(def).as_deref()) {
            Verdict::Allow => {}
            Verdict::Deny(why) => return Err(CallError::Denied(why)),
            Verdict::Confirm(why) if !opts.confirmed => {
                return Err(CallError::NeedsConfirmation(why))
            }
            Verdict::Confirm(_) => {}
        }
        Ok((def, args))
    }

    /// Asks the capability's `irreversible_when` check whether this one call cannot be undone
    /// and, when it cannot, the policy whether it may run anyway: `Some(why)` when it may.
    fn irreversible_call(
        &self,
        def: &'static CapabilityDef,
        args: &Value,
        opts: &CallOptions,
        sandbox: &Arc<Sandbox>,
    ) -> Result<Option<String>, CallError> {
        let Some(check) = def.irreversible_when else {
            return Ok(None);
        };
        let Some(why) = check(&Ctx::with_sandbox(Arc::clone(sandbox)), args)? else {
            return Ok(None);
        };
        self.may_run_irreversible(def, &why, opts)?;
        Ok(Some(why))
    }

    /// The policy's answer for one call of `def` that cannot be undone (`why`):
    /// [`Policy::decide_irreversible`], the caller's confirmation counted.
    fn may_run_irreversible(
        &self,
        def: &CapabilityDef,
        why: &str,
        opts: &CallOptions,
    ) -> Result<(), CallError> {
        match self.policy.decide_irreversible(def, why) {
            Verdict::Allow => Ok(()),
            Verdict::Deny(w) => Err(CallError::Denied(w)),
            Verdict::Confirm(w) if !opts.confirmed => Err(CallError::NeedsConfirmation(w)),
            Verdict::Confirm(_) => Ok(()),
        }
    }

    /// The paths a `file_snapshot` plan names for this call, checked against the sandbox and
    /// measured against the snapshot limit (past it, policy decides).
    fn file_plan(
        &self,
        def: &'static CapabilityDef,
        args: &Value,
        opts: &CallOptions,
        sandbox: &Sandbox,
    ) -> Result<Option<FilePlan>, CallError> {
        let Some(plan) = self.plan(def) else {
            return Ok(None);
        };
        if plan.kind != UndoKind::FileSnapshot {
            return Ok(None);
        }
        // An argument the call leaves out is its default to the handler (`def f(p, dst="out")`):
        // the plan's paths are read with the defaults in, so the snapshot and the `relative`
        // checks see the path the call will touch.
        let checks = self.checks(def);
        let filled;
        let args = match args {
            Value::Object(given) if checks.defaults.keys().any(|k| !given.contains_key(k)) => {
                let mut all = given.clone();
                for (k, v) in &checks.defaults {
                    all.entry(k.clone()).or_insert_with(|| v.clone());
                }
                filled = Value::Object(all);
                &filled
            }
            other => other,
        };
        let bad = |e: &Expr, message: &str| CallError::InvalidArguments {
            field: e.to_string(),
            message: message.to_string(),
        };
        // The strings an expression names: one, each of an array's, or none when absent.
        let named = |e: &Expr| -> Result<Vec<String>, CallError> {
            match resolve(e, &Scope::of_args(args)) {
                Ok(Value::String(p)) => Ok(vec![p]),
                Ok(Value::Array(items)) => items
                    .into_iter()
                    .map(|item| match item {
                        Value::String(p) => Ok(p),
                        _ => Err(bad(e, "each path must be a string")),
                    })
                    .collect(),
                Ok(Value::Null) | Err(_) => Ok(Vec::new()),
                Ok(_) => Err(bad(e, "a path must be a string")),
            }
        };
        let mut paths = Vec::new();
        for e in &plan.paths {
            paths.extend(named(e)?);
        }
        // A handler that opens its paths itself may take one as a pattern (`glob.glob(p)`, a
        // program's `rm d/*.tmp` with `undo_paths: ["d/*.tmp"]`): what it matches is no file
        // of that name but what lies in the directory its first wildcard lists, so that
        // directory is kept (a file whose name holds `*`, `?` or `[` is kept with its folder).
        if def.opens_paths_itself() {
            let listed: Vec<String> = paths
                .iter()
                .filter_map(|p| crate::fs::wildcard_base(p).map(|(base, _)| base))
                .collect();
            paths.extend(listed);
        }
        // What the call joins under a snapshotted path must stay inside it.
        for e in &plan.relative {
            for p in named(e)? {
                if let Some(why) = leaves_its_folder(&p) {
                    return Err(bad(
                        e,
                        &format!(
                            "{why}: the call joins it under {} and its undo keeps only that, so it must be a path relative to it without `..`; nothing was run",
                            plan.paths
                                .iter()
                                .map(|p| format!("`{p}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
        }
        let fs = sandbox.fs();
        let mut entries = snapshot::entry_paths(fs, &paths)?;
        // A handler that opens its paths itself can change what their links lead to: that is
        // kept too, or the call is refused (a named link out of the roots) or irreversible.
        let mut risks = Vec::new();
        if def.opens_paths_itself() && !entries.is_empty() {
            let deletes = def
                .effects
                .iter()
                .any(|e| matches!(e, aifirst_capability::Effect::Delete));
            let reach = snapshot::reach(fs, &paths, entries, deletes)?;
            entries = reach.entries;
            risks = reach.risks;
        }
        let measured = if entries.is_empty() {
            // Nothing named, nothing kept: the call cannot be undone (a `run_command` given no
            // `undo_paths`), so it is judged like any irreversible call.
            Err(format!(
                "the call names no path to snapshot ({}), so it cannot be undone",
                plan.paths
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        } else {
            match snapshot::measure(fs, &entries, self.snapshot_limit) {
                Ok(_) => Ok(()),
                Err(e @ (SnapError::TooLarge { .. } | SnapError::TooDeep { .. })) => {
                    Err(e.to_string())
                }
                Err(SnapError::Other(m)) => return Err(CallError::Snapshot(m)),
            }
        };
        let measured = match (measured, risks.len()) {
            (Ok(()), 0) => Ok(()),
            (Ok(()), n) => Err(format!(
                "{}{}",
                risks[..n.min(3)].join("; "),
                if n > 3 {
                    format!(" (and {} more)", n - 3)
                } else {
                    String::new()
                }
            )),
            (m, _) => m,
        };
        let irreversible = match measured {
            Ok(()) => None,
            Err(why) => {
                self.may_run_irreversible(def, &why, opts)?;
                Some(why)
            }
        };
        Ok(Some(FilePlan {
            entries,
            irreversible,
        }))
    }

    /// Locks the files and keeps their state before a file-snapshot call (nothing when the
    /// snapshot would be too large: the call is then irreversible).
    async fn prepare_files(
        &self,
        fp: FilePlan,
        sandbox: &Arc<Sandbox>,
    ) -> Result<PreparedFiles, CallError> {
        if let Some(why) = fp.irreversible {
            return Ok(PreparedFiles::Irreversible(why));
        }
        let held = self.locks.files().await?;
        let not_run = |e: String| CallError::Snapshot(format!("{e}; nothing was run"));
        let (manifest, staged) =
            snapshot::before(sandbox.fs(), &self.store, &fp.entries, self.snapshot_limit)
                .map_err(|e| not_run(e.to_string()))?;
        let ahead = self.store.put_manifest(&manifest).map_err(not_run)?;
        Ok(PreparedFiles::Kept {
            _held: held,
            bytes: manifest.entries.iter().map(|e| e.before.bytes()).sum(),
            manifest,
            ahead,
            entries: fp.entries,
            staged,
        })
    }

    /// Runs a prepared file-snapshot call and keeps the state it left (for conflict checks and
    /// redo). A call that fails leaves nothing: what it changed is written back before the
    /// error is returned.
    async fn run_files(
        &self,
        def: &'static CapabilityDef,
        args: Value,
        prepared: PreparedFiles,
        sandbox: &Arc<Sandbox>,
        granted: Option<String>,
    ) -> Result<(Value, StepUndo), CallError> {
        let ctx = Ctx::with_sandbox(Arc::clone(sandbox))
            .granting_irreversible(granted)
            .with_paths_checked();
        let (mut manifest, ahead, entries, bytes, held) = match prepared {
            PreparedFiles::Irreversible(why) => {
                let result = def.invoke(&ctx, args).await?;
                return Ok((result, StepUndo::Irreversible { reason: why }));
            }
            PreparedFiles::Kept {
                _held,
                manifest,
                ahead,
                entries,
                bytes,
                ..
            } => (manifest, ahead, entries, bytes, _held),
        };
        let fs = sandbox.fs();
        let undo = |manifest: String| StepUndo::Files {
            manifest,
            paths: entries.clone(),
            bytes,
        };
        let outcome = match def.invoke(&ctx, args).await {
            Ok(result) => {
                match snapshot::after(fs, &mut manifest) {
                    Ok(()) => {}
                    // A file tool whose result cannot be recorded (a tree deeper than snapshots
                    // go, a name that is not UTF-8) would be journaled as undoable while its undo
                    // could not check what it overwrites: it is written back instead, and fails
                    // saying why, as a call that cannot be undone should never run unasked.
                    Err(e) if !runs_more_than_files(def) => {
                        let why = e.to_string();
                        let back = snapshot::rollback(fs, &self.store, &manifest);
                        drop(held);
                        return Err(match back {
                            Ok(()) => CallError::Tool(ToolError::Handler {
                                message: format!(
                                    "`{}` was written back, so nothing changed: what it made could not be recorded for undo ({why})",
                                    def.name
                                ),
                            }),
                            Err(back) => CallError::Tool(ToolError::Handler {
                                message: format!(
                                    "what `{}` made could not be recorded for undo ({why}), and it could not all be written back ({back})",
                                    def.name
                                ),
                            }),
                        });
                    }
                    // A call that also runs a program or reaches the network did more than its
                    // files: kept, and its undo needs --force (nothing confirms what it would
                    // overwrite), saying why.
                    Err(e) => manifest.unrecorded = Some(e.to_string()),
                }
                let kept = self.store.keep_manifest(manifest);
                Ok((result, undo(kept.unwrap_or(ahead))))
            }
            Err(e) => match snapshot::rollback(fs, &self.store, &manifest) {
                Ok(()) => Err(e.into()),
                Err(why) => Err(CallError::Tool(ToolError::Handler {
                    message: format!("{e}; what it changed could not all be written back ({why})"),
                })),
            },
        };
        drop(held);
        outcome
    }

    /// Writes a file-snapshot step's before (undo) or after (redo) state back. The caller holds
    /// the files lock ([`SessionLocks::files`]) from its conflict check on.
    fn restore_files(
        &self,
        manifest: &str,
        towards_before: bool,
        force: bool,
    ) -> Result<(), String> {
        let m = self.store.manifest(manifest)?;
        let fs = self.sandbox.fs();
        if towards_before {
            // What the call wrote is kept now, for redo (see `snapshot::after`).
            snapshot::keep_after(fs, &self.store, &m, self.snapshot_limit);
        }
        snapshot::restore(fs, &self.store, &m, towards_before, force)
    }

    /// What a file-snapshot step's undo (or redo) would write, or why it cannot be told.
    fn file_actions(
        &self,
        undo: &StepUndo,
        towards_before: bool,
    ) -> Result<Vec<FileAction>, String> {
        match undo {
            StepUndo::Files { manifest, .. } => Ok(snapshot::actions(
                &*self.store.manifest(manifest)?,
                towards_before,
            )),
            _ => Ok(Vec::new()),
        }
    }

    /// Takes the snapshot, runs the handler and works out the step's compensation.
    async fn run(
        &self,
        step: Option<i64>,
        def: &'static CapabilityDef,
        args: Value,
        sandbox: &Arc<Sandbox>,
        granted: Option<String>,
    ) -> Result<(Value, StepUndo), CallError> {
        let in_sandbox = || Ctx::with_sandbox(Arc::clone(sandbox));
        if let Some(reason) = granted {
            // Irreversible as a whole: no snapshot, and whatever compensation the handler
            // recorded is not kept (it would undo part of the call).
            let ctx = in_sandbox()
                .granting_irreversible(Some(reason.clone()))
                .with_paths_checked();
            let result = def.invoke(&ctx, args).await?;
            return Ok((result, StepUndo::Irreversible { reason }));
        }
        // Snapshot before the call, for plans that write the old state back or are guarded.
        let plan = self.plan(def);
        let (snapshot, snap_args) = match plan.as_deref() {
            Some(
                p @ UndoPlan {
                    snapshot: Some(snap),
                    ..
                },
            ) => {
                let declared = if p.snapshot_args.is_empty() {
                    &p.args
                } else {
                    &p.snapshot_args
                };
                let snap_args = snapshot_args(declared, &args);
                let sdef = self
                    .registry
                    .get(&snap.name)
                    .ok_or_else(|| CallError::Snapshot(format!("no capability `{}`", snap.name)))?;
                let found = match sdef.invoke(&in_sandbox(), snap_args.clone()).await {
                    Ok(v) => Snapshot::Present(v),
                    Err(ToolError::Http { status: 404, .. }) => Snapshot::Absent,
                    Err(e) => return Err(CallError::Snapshot(e.to_string())),
                };
                (found, snap_args)
            }
            _ => (Snapshot::None, Value::Null),
        };
        let ctx = in_sandbox().with_paths_checked();
        let result = def.invoke(&ctx, args.clone()).await?;
        let mutating = def.effects.iter().any(|e| e.is_mutating());
        let undo = match def.undo {
            UndoDecl::Undeclared if !mutating => StepUndo::Calls { calls: Vec::new() },
            UndoDecl::Undeclared => StepUndo::Irreversible {
                reason: "no undo declared".into(),
            },
            UndoDecl::Irreversible { reason } => StepUndo::Irreversible {
                reason: reason.into(),
            },
            UndoDecl::Function { .. } => StepUndo::Function {
                capability: def.name.to_string(),
                args: args.clone(),
                result: result.clone(),
            },
            UndoDecl::Plan(_) => match plan.as_deref() {
                Some(p) => compensation(
                    p,
                    &Call {
                        args: &args,
                        result: &result,
                        location: ctx.response_location(),
                    },
                    &snapshot,
                    &snap_args,
                ),
                None => StepUndo::Irreversible {
                    reason: "the plan could not be built".into(),
                },
            },
            UndoDecl::Custom => {
                let calls: Vec<Replay> = ctx
                    .take_compensations()
                    .into_iter()
                    .map(|c| Replay {
                        capability: c.capability,
                        args: c.args,
                        exprs: BTreeMap::new(),
                        expect: None,
                    })
                    .collect();
                if ctx.has_closures() {
                    StepUndo::InProcess { calls }
                } else {
                    StepUndo::Calls { calls }
                }
            }
        };
        if let (StepUndo::InProcess { .. }, Some(id)) = (&undo, step) {
            self.closures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, ctx);
        }
        Ok((result, undo))
    }

    /// Undoes the last `n` steps of a session, newest first. A step that cannot be undone stops the
    /// undo; it and the older steps stay on the stack.
    pub async fn undo(&self, session: &str, n: usize) -> Result<UndoReport, CallError> {
        self.undo_with(session, UndoTarget::Steps(n), UndoOptions::default())
            .await
    }

    /// Undoes every step after a checkpoint.
    pub async fn undo_to(&self, session: &str, checkpoint: &str) -> Result<UndoReport, CallError> {
        self.undo_with(
            session,
            UndoTarget::Checkpoint(checkpoint.to_string()),
            UndoOptions::default(),
        )
        .await
    }

    pub fn checkpoint(&self, session: &str, name: &str) -> Result<i64, CallError> {
        self.checkpoint_with(session, name, false)
            .map(|(step, _)| step)
    }

    /// Marks the session's newest step `name`, for `undo --to`. A name already marking a step
    /// is refused unless `replace` (moved then; the step it marked before is returned): an
    /// agent re-using a user's checkpoint name would otherwise move it silently, and a later
    /// `undo --to` would undo less than the user meant. Names are 1 to 128 characters with no
    /// control characters (they are shown on one line).
    pub fn checkpoint_with(
        &self,
        session: &str,
        name: &str,
        replace: bool,
    ) -> Result<(i64, Option<i64>), CallError> {
        let bad = |message: &str| CallError::InvalidArguments {
            field: "name".into(),
            message: message.into(),
        };
        if name.trim().is_empty() {
            return Err(bad("a checkpoint needs a name"));
        }
        if name.chars().count() > 128 {
            return Err(bad("a checkpoint's name is at most 128 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(bad(
                "a checkpoint's name holds no control characters (line breaks, tabs, escapes)",
            ));
        }
        let (step, was) = self.journal.checkpoint_at(session, name, replace)?;
        match was {
            Some(at) if !replace => Err(bad(&format!(
                "checkpoint `{name}` already marks step {at}: choose another name (or move it: `airun checkpoint --move {name}`)"
            ))),
            _ => Ok((step, was)),
        }
    }

    /// Every step of a session, oldest first.
    /// Every step of a session, oldest first, redacted for people: the journal keeps what
    /// compensations need unredacted, and that must not reach a screen or an agent.
    pub fn history(&self, session: &str) -> Result<Vec<Step>, CallError> {
        let mut steps = self.journal.history(session)?;
        for st in &mut steps {
            st.undo = self.redacted_undo(&st.undo);
        }
        Ok(steps)
    }

    /// A step's compensation with its data redacted.
    fn redacted_undo(&self, undo: &StepUndo) -> StepUndo {
        match undo {
            StepUndo::Calls { .. } => StepUndo::Calls {
                calls: self.redacted_calls(undo),
            },
            StepUndo::InProcess { .. } => StepUndo::InProcess {
                calls: self.redacted_calls(undo),
            },
            StepUndo::Function {
                capability,
                args,
                result,
            } => StepUndo::Function {
                capability: capability.clone(),
                args: self.redactor.redact(args),
                result: self.redactor.redact(result),
            },
            other => other.clone(),
        }
    }

    /// Undoes steps of a session, newest first, each compensation exactly once.
    pub async fn undo_with(
        &self,
        session: &str,
        target: UndoTarget,
        opts: UndoOptions,
    ) -> Result<UndoReport, CallError> {
        let _flush = self.flushing();
        let _guard = self.locks.lock(session).await?;
        let pending = self.journal.pending(session)?;
        let steps: Vec<Step> = match &target {
            UndoTarget::Steps(n) => pending.into_iter().take(*n).collect(),
            UndoTarget::Checkpoint(cp) => {
                let Some(mark) = self.journal.checkpoint_step(session, cp)? else {
                    return Err(CallError::NoCheckpoint(cp.clone()));
                };
                pending.into_iter().filter(|s| s.id > mark).collect()
            }
        };
        let mut report = UndoReport::default();
        // What the steps a dry run has planned so far leave (see `snapshot::Planned`).
        let mut planned = snapshot::Planned::default();
        // Things earlier undos recreated under new identifiers (a delete undone by a create).
        let mut aliases = self.journal.aliases(session)?;
        for mut step in steps {
            if self.never_ran(&step) && !opts.dry_run {
                // Nothing happened: settled as an error (audited) and passed.
                let note = "never ran: its process stopped while the snapshot before it was taken";
                self.record_undo(&UndoEvent {
                    session,
                    step: step.id,
                    capability: &step.capability,
                    phase: UndoPhase::Resolved,
                    compensations: &[],
                    error: Some(note),
                    undo_digest: None,
                    duration: Duration::ZERO,
                    client: opts.client.as_deref(),
                })
                .map_err(|why| {
                    CallError::Audit(format!(
                        "step {} stays `intended`: its audit record could not be written ({why})",
                        step.id
                    ))
                })?;
                self.journal.transition(
                    step.id,
                    &[StepState::Intended],
                    StepState::Error,
                    Some(note),
                )?;
                continue;
            }
            realias(&mut step.undo, step.id, &aliases);
            let started = Instant::now();
            let vetted = self.vet(&step);
            if opts.dry_run {
                let (files, unreadable) = match self.file_actions(&step.undo, true) {
                    Ok(f) => (f, None),
                    Err(e) => (Vec::new(), Some(e)),
                };
                let mut blocked = vetted.err().or(unreadable);
                if blocked.is_none() && opts.force {
                    blocked = self.check_unforceable(&step.undo).err();
                }
                // A file step is checked against the files as the newer steps of this run leave
                // them (a path two steps wrote is not "changed since" the older one).
                let manifest = match &step.undo {
                    StepUndo::Files { manifest, .. } => self.store.manifest(manifest).ok(),
                    _ => None,
                };
                if blocked.is_none() && !opts.force {
                    blocked = self.check_targets_after(&step.undo, &planned).await.err();
                }
                if let Some(m) = &manifest {
                    planned.undo(m);
                }
                report.planned.push(Planned {
                    step: step.id,
                    capability: step.capability.clone(),
                    state: step.state,
                    compensations: self.redacted_calls(&step.undo),
                    files,
                    blocked,
                });
                continue;
            }
            let refuse = |why: String, report: &mut UndoReport| {
                let _ = self.record_undo(&UndoEvent {
                    session,
                    step: step.id,
                    capability: &step.capability,
                    phase: UndoPhase::Refused,
                    compensations: &[],
                    error: Some(&why),
                    undo_digest: None,
                    duration: started.elapsed(),
                    client: opts.client.as_deref(),
                });
                report.failed = Some((step.id, why));
            };
            let retry = match vetted {
                Ok(retry) => retry,
                Err(why) => {
                    refuse(why, &mut report);
                    break;
                }
            };
            // A file-snapshot step's files stay locked from its conflict check to its restore.
            let _files = match &step.undo {
                StepUndo::Files { .. } => Some(self.locks.files().await?),
                _ => None,
            };
            // A manifest that cannot be read cannot be restored from, forced or not.
            if let StepUndo::Files { manifest, .. } = &step.undo {
                if let Err(why) = self.store.manifest(manifest) {
                    refuse(
                        format!(
                            "{why}; nothing was run, and --force cannot restore from it either \
                             (`undo --skip {id}` passes over this step to the ones before it)",
                            id = step.id
                        ),
                        &mut report,
                    );
                    break;
                }
            }
            if opts.force {
                // What `--force` cannot write over is refused before the step is claimed, so
                // it stays as it was (not `failed`).
                if let Err(why) = self.check_unforceable(&step.undo) {
                    refuse(format!("{why}; nothing was run"), &mut report);
                    break;
                }
            } else if let Err(why) = self.check_targets(&step.undo).await {
                let why = if retry && matches!(step.undo, StepUndo::Files { .. }) {
                    // A file restore runs again from where it stopped: what stands in its way
                    // is named, and nothing says the step is undone until it is.
                    format!(
                        "{why}; an undo of it stopped part-way: once what is named is as the call or the undo left it, `undo` finishes it (`undo --force` writes over it)"
                    )
                } else if retry {
                    // The interrupted compensation may have done its work already.
                    format!(
                        "{why}; its interrupted compensation may already have taken effect: if so, `undo --resolve {id} undone` (otherwise `undo --force` runs it again)",
                        id = step.id
                    )
                } else if why.contains(snapshot::CANNOT_BE_CHECKED) {
                    format!("{why}; nothing was run")
                } else {
                    format!("{why}; nothing was run (undo --force runs it anyway)")
                };
                refuse(why, &mut report);
                break;
            }
            // Claim: from here on no other undo can run this step's compensation.
            let from: &[StepState] = if retry {
                &[StepState::Undoing]
            } else {
                &[StepState::Done, StepState::Failed]
            };
            if !self
                .journal
                .transition(step.id, from, StepState::Undoing, None)?
            {
                refuse(
                    "another undo claimed this step first".to_string(),
                    &mut report,
                );
                break;
            }
            let comps = self.redacted_calls(&step.undo);
            if let Err(why) = self.record_undo(&UndoEvent {
                session,
                step: step.id,
                capability: &step.capability,
                phase: UndoPhase::Started,
                compensations: &comps,
                error: None,
                undo_digest: None,
                duration: Duration::ZERO,
                client: opts.client.as_deref(),
            }) {
                // Fail closed: give the claim back; nothing ran.
                self.journal.transition(
                    step.id,
                    &[StepState::Undoing],
                    step.state,
                    step.error.as_deref(),
                )?;
                report.failed = Some((
                    step.id,
                    format!("not undone: its audit record could not be written ({why})"),
                ));
                break;
            }
            let outcome = self.undo_one(&step, opts.force).await;
            // A compensation that may have run in part is not `failed` (which a plain retry
            // would run again from the start): it stays `undoing`, for a person to settle.
            let outcome = outcome.map_err(|(why, partial)| {
                if partial {
                    (
                        format!(
                            "{why}; it may have taken effect in part, so it is not retried on its own: check, then `undo --resolve {id} undone` or `undo --resolve {id} done`",
                            id = step.id
                        ),
                        true,
                    )
                } else {
                    (why, false)
                }
            });
            let (phase, error) = match &outcome {
                Ok(_) => (UndoPhase::Undone, None),
                Err((why, _)) => (UndoPhase::Failed, Some(why.as_str())),
            };
            let new_state = match &outcome {
                Ok(_) => StepState::Undone,
                Err((_, true)) => StepState::Undoing,
                Err((_, false)) => StepState::Failed,
            };
            // The audit outcome first, then the journal: the journal never says more than the
            // log shows (a process killed in between leaves `undoing`, which a person resolves).
            let recorded = self.record_undo(&UndoEvent {
                session,
                step: step.id,
                capability: &step.capability,
                phase,
                compensations: &comps,
                error,
                undo_digest: None,
                duration: started.elapsed(),
                client: opts.client.as_deref(),
            });
            self.journal
                .transition(step.id, &[StepState::Undoing], new_state, error)?;
            if let Ok(done) = &outcome {
                for alias in self.recreated(&step, done) {
                    self.journal.add_alias(session, &alias)?;
                    aliases.push(alias);
                }
            }
            match outcome {
                Ok(_) => {
                    report.undone.push(step.id);
                    if let Err(why) = recorded {
                        report.failed = Some((
                            step.id,
                            format!("undone, but its audit record could not be written ({why}); stopping"),
                        ));
                        break;
                    }
                }
                Err((why, _)) => {
                    report.failed = Some((step.id, why));
                    break;
                }
            }
        }
        Ok(report)
    }

    /// Re-applies the oldest `n` undone steps above the session's undo stack (the newest
    /// undone first undone last: the order they were made). Only file-snapshot steps can be
    /// redone: their state after the call was kept. A path changed since the undo stops the
    /// redo unless `force`; a call made after the undo empties what can be redone.
    pub async fn redo(
        &self,
        session: &str,
        n: usize,
        opts: UndoOptions,
    ) -> Result<UndoReport, CallError> {
        let _flush = self.flushing();
        let _guard = self.locks.lock(session).await?;
        let steps: Vec<Step> = self
            .journal
            .redoable(session)?
            .into_iter()
            .take(n)
            .collect();
        let mut report = UndoReport::default();
        // What the steps a dry run lists before leave (a real redo writes them as it goes).
        let mut planned = snapshot::Planned::default();
        for step in steps {
            let started = Instant::now();
            let _files = if opts.dry_run {
                None
            } else {
                Some(self.locks.files().await?)
            };
            let mut blocked = match &step.undo {
                StepUndo::Files { .. } => self.vet(&step).err(),
                _ => Some(format!(
                    "step {} (`{}`) was undone by compensating calls; only file-snapshot steps can be redone (call it again instead)",
                    step.id, step.capability
                )),
            };
            let files = match self.file_actions(&step.undo, false) {
                Ok(f) => f,
                Err(e) => {
                    blocked = blocked.or(Some(e));
                    Vec::new()
                }
            };
            // What the call left must have been kept when it was undone, or there is nothing
            // to write back (`--force` cannot help).
            if blocked.is_none() {
                if let StepUndo::Files { manifest, .. } = &step.undo {
                    let unkept = self
                        .store
                        .manifest(manifest)
                        .map(|m| snapshot::unkept_after(&self.store, &m))
                        .unwrap_or_default();
                    if !unkept.is_empty() {
                        blocked = Some(format!(
                            "what the call left in {} was not kept when it was undone (larger than the snapshot limit, or changed or gone by then), so it cannot be redone: call it again instead. Redo goes oldest first, so the undone steps after it stay undone; call them again too",
                            unkept.join(", ")
                        ));
                    }
                }
            }
            if blocked.is_none() && opts.force {
                blocked = self
                    .check_unforceable(&step.undo)
                    .err()
                    .map(|why| format!("{why}; nothing was run"));
            }
            if blocked.is_none() && !opts.force {
                if let StepUndo::Files { manifest, .. } = &step.undo {
                    // A dry run checks each step against what the steps it redoes before leave.
                    let changed = match self.store.manifest(manifest) {
                        Ok(m) => {
                            let c =
                                snapshot::conflicts_after(self.sandbox.fs(), &m, false, &planned);
                            planned.redo(&m);
                            c
                        }
                        Err(e) => vec![e],
                    };
                    if !changed.is_empty() {
                        blocked = Some(format!(
                            "files changed since it was undone, and redoing it would overwrite that: {}; nothing was run (redo --force runs it anyway)",
                            changed.join("; ")
                        ));
                    }
                }
            }
            if opts.dry_run {
                report.planned.push(Planned {
                    step: step.id,
                    capability: step.capability.clone(),
                    state: step.state,
                    compensations: Vec::new(),
                    files,
                    blocked,
                });
                continue;
            }
            let record = |phase, error: Option<&str>| {
                self.record_undo(&UndoEvent {
                    session,
                    step: step.id,
                    capability: &step.capability,
                    phase,
                    compensations: &[],
                    error,
                    undo_digest: None,
                    duration: started.elapsed(),
                    client: opts.client.as_deref(),
                })
            };
            if let Some(why) = blocked {
                let _ = record(UndoPhase::Refused, Some(&why));
                report.failed = Some((step.id, why));
                break;
            }
            let StepUndo::Files { manifest, .. } = &step.undo else {
                break;
            };
            // Audited before it writes (fails closed), like an undo.
            if let Err(why) = record(UndoPhase::RedoStarted, None) {
                report.failed = Some((
                    step.id,
                    format!("not redone: its audit record could not be written ({why})"),
                ));
                break;
            }
            // Back on the stack before a file is written (write-ahead, as an undo is `undoing`
            // first): a redo killed part-way leaves a `done` step whose files are not all as
            // the call left them, which `undo` then names (and `undo --force` puts back as
            // before), never files no step accounts for.
            if !self
                .journal
                .transition(step.id, &[StepState::Undone], StepState::Done, None)?
            {
                let why = "it changed while the redo ran".to_string();
                let _ = record(UndoPhase::Failed, Some(&why));
                report.failed = Some((step.id, why));
                break;
            }
            if let Err(why) = self.restore_files(manifest, false, opts.force) {
                // What was written is taken back, so the step is undone again as it was.
                let why = match self.restore_files(manifest, true, opts.force) {
                    Ok(()) => {
                        self.journal.transition(
                            step.id,
                            &[StepState::Done],
                            StepState::Undone,
                            None,
                        )?;
                        format!("redo stopped: {why}; what it had written was taken back")
                    }
                    Err(back) => format!(
                        "redo stopped: {why}; what it had written could not all be taken back ({back}): the step is `done`, and `undo` puts back the state before it (it names what changed since; `--force` would write over that)"
                    ),
                };
                let _ = record(UndoPhase::Failed, Some(&why));
                report.failed = Some((step.id, why));
                break;
            }
            let recorded = record(UndoPhase::Redone, None);
            report.redone.push(step.id);
            if let Err(why) = recorded {
                report.failed = Some((
                    step.id,
                    format!("redone, but its audit record could not be written ({why}); stopping"),
                ));
                break;
            }
        }
        Ok(report)
    }

    /// Marks a step `skipped` (a person gives up on undoing it), so the steps below it can be
    /// undone. Audited.
    pub async fn skip(
        &self,
        session: &str,
        id: i64,
        client: Option<&str>,
    ) -> Result<(), CallError> {
        self.resolve(session, id, Resolution::Skip, client).await
    }

    /// Settles a step left `intended` or `undoing` (or, for `Skip`, any step still on the stack).
    pub async fn resolve(
        &self,
        session: &str,
        id: i64,
        how: Resolution,
        client: Option<&str>,
    ) -> Result<(), CallError> {
        let _flush = self.flushing();
        let _guard = self.locks.lock(session).await?;
        let step = self
            .journal
            .step(id)?
            .filter(|s| s.session == session)
            .ok_or(CallError::NoStep(id))?;
        let wrong = |why: &str| CallError::WrongState {
            step: id,
            state: step.state.as_str(),
            why: why.to_string(),
        };
        let mut new_digest = None;
        let (from, to, note): (&[StepState], StepState, &str) = match (how, step.state) {
            (Resolution::Skip, s) if s.pending() => (
                &[
                    StepState::Intended,
                    StepState::Done,
                    StepState::Undoing,
                    StepState::Failed,
                ],
                StepState::Skipped,
                "skipped by the user",
            ),
            (Resolution::Skip, _) => {
                return Err(wrong("only a step still on the undo stack can be skipped"))
            }
            (Resolution::Done, StepState::Intended) if self.never_ran(&step) => {
                return Err(wrong(
                    "its call never ran (its process stopped while the snapshot before it was taken); `undo` passes it, or `undo --resolve N skip`",
                ))
            }
            (Resolution::Done, StepState::Intended) => {
                // The call's effect happened but its compensation was never worked out: only a
                // plan that needs nothing but the arguments can be rebuilt.
                let undo = match &step.undo {
                    StepUndo::Files { .. } => self.files_after_interrupt(&step.undo).await,
                    _ => self.rebuild_from_args(&step),
                };
                self.journal.set_undo(id, &undo)?;
                new_digest = Some(undo.digest());
                (
                    &[StepState::Intended],
                    StepState::Done,
                    "resolved: the effect happened",
                )
            }
            (Resolution::Done, StepState::Undoing) => (
                &[StepState::Undoing],
                StepState::Done,
                "resolved: the compensation did not take effect",
            ),
            (Resolution::Undone, StepState::Undoing) => (
                &[StepState::Undoing],
                StepState::Undone,
                "resolved: the compensation took effect",
            ),
            (Resolution::Done, _) => {
                return Err(wrong("`done` resolves an `intended` or `undoing` step"))
            }
            (Resolution::Undone, _) => return Err(wrong("`undone` resolves an `undoing` step")),
        };
        let phase = if how == Resolution::Skip {
            UndoPhase::Skipped
        } else {
            UndoPhase::Resolved
        };
        // Audited first (fail closed), then settled in the journal.
        self.record_undo(&UndoEvent {
            session,
            step: id,
            capability: &step.capability,
            phase,
            compensations: &[],
            error: Some(note),
            undo_digest: new_digest,
            duration: Duration::ZERO,
            client,
        })
        .map_err(|why| {
            CallError::Audit(format!(
                "step {id} stays `{}`: its audit record could not be written ({why})",
                step.state.as_str()
            ))
        })?;
        if !self.journal.transition(id, from, to, Some(note))? {
            return Err(wrong("it changed while this ran"));
        }
        Ok(())
    }

    /// An `intended` file-snapshot step with nothing journaled beside it: its process stopped
    /// before the snapshot was complete, and the handler runs only after it is, so the call
    /// never ran.
    fn never_ran(&self, step: &Step) -> bool {
        step.state == StepState::Intended
            && step.undo == StepUndo::Pending
            && self
                .registry
                .get(&step.capability)
                .and_then(|d| self.plan(d))
                .is_some_and(|p| p.kind == UndoKind::FileSnapshot)
    }

    /// The compensation of an interrupted file-snapshot call: the state before was journaled
    /// ahead of it; the state it left is read now (the person says it took effect).
    async fn files_after_interrupt(&self, undo: &StepUndo) -> StepUndo {
        let StepUndo::Files {
            manifest,
            paths,
            bytes,
        } = undo
        else {
            return undo.clone();
        };
        let irreversible = |why: String| StepUndo::Irreversible {
            reason: format!("interrupted before it finished; {why}"),
        };
        let mut m = match self.store.manifest(manifest) {
            Ok(m) => Arc::unwrap_or_clone(m),
            Err(e) => return irreversible(e),
        };
        let _held = match self.locks.files().await {
            Ok(h) => h,
            Err(e) => return irreversible(e.to_string()),
        };
        match snapshot::after(self.sandbox.fs(), &mut m)
            .map_err(|e| e.to_string())
            .and_then(|()| self.store.put_manifest(&m))
        {
            Ok(hash) => StepUndo::Files {
                manifest: hash,
                paths: paths.clone(),
                bytes: *bytes,
            },
            Err(e) => irreversible(e),
        }
    }

    /// The compensation of an interrupted call, from its arguments alone (the journal kept them
    /// redacted for display, so only a plan over non-secret `$args` can be rebuilt faithfully).
    fn rebuild_from_args(&self, step: &Step) -> StepUndo {
        let irreversible = |why: &str| StepUndo::Irreversible {
            reason: format!("interrupted before it finished; {why}"),
        };
        let Some(def) = self.registry.get(&step.capability) else {
            return irreversible("its capability is not in this binary");
        };
        let Some(plan) = self.plan(def) else {
            return irreversible("its compensation needs the call's result or a snapshot");
        };
        let (Some(target), None) = (&plan.target, &plan.snapshot) else {
            return irreversible("its compensation needs the call's result or a snapshot");
        };
        if plan.args.values().any(|e| !e.reads_args_only()) {
            return irreversible("its compensation needs the call's result");
        }
        let r = resolve_args(&plan.args, &Scope::of_args(&step.args));
        if r.missing.is_some() || holds_redacted(&r.values) {
            return irreversible("an argument its compensation needs was not kept");
        }
        StepUndo::Calls {
            calls: vec![Replay {
                capability: target.name.clone(),
                args: r.values,
                exprs: r.exprs,
                expect: None,
            }],
        }
    }

    fn redacted_calls(&self, undo: &StepUndo) -> Vec<Replay> {
        let calls: Vec<Replay> = match undo {
            StepUndo::Calls { calls } | StepUndo::InProcess { calls } => calls.clone(),
            StepUndo::Function {
                capability, args, ..
            } => vec![Replay {
                capability: format!("{capability} (undo function)"),
                args: args.clone(),
                exprs: BTreeMap::new(),
                expect: None,
            }],
            _ => Vec::new(),
        };
        calls
            .into_iter()
            .map(|mut c| {
                c.args = self.redactor.redact(&c.args);
                if let Some(e) = &mut c.expect {
                    e.args = self.redactor.redact(&e.args);
                    e.fields = e
                        .fields
                        .iter()
                        .map(|(k, v)| (k.clone(), self.redactor.redact(v)))
                        .collect();
                }
                c
            })
            .collect()
    }

    /// Whether a journaled step may be undone as it stands: its state, a compensation its
    /// capability declares (a journal edited to call something else is refused as tampering),
    /// data that was kept faithfully, and policy. `Ok(true)`: an interrupted idempotent
    /// compensation that may simply run again.
    fn vet(&self, step: &Step) -> Result<bool, String> {
        let retry = match step.state {
            StepState::Intended => {
                return Err(format!(
                    "`{}` was interrupted before it finished (its process stopped): its effect may or may not have happened. Check, then `undo --resolve {id} done` (it happened) or `undo --resolve {id} skip`",
                    step.capability,
                    id = step.id
                ))
            }
            StepState::Undoing => {
                if !self.idempotent_compensation(&step.undo) {
                    return Err(format!(
                        "its undo was interrupted or ran only in part (see `history`), and the compensation is not idempotent, so it is not run again on its own. Check, then `undo --resolve {id} undone` (it took effect), `undo --resolve {id} done` (it did not; undo again) or `undo --skip {id}`",
                        id = step.id
                    ));
                }
                true
            }
            _ => false,
        };
        let def = self
            .registry
            .get(&step.capability)
            .ok_or_else(|| format!("no capability `{}` in this binary", step.capability))?;
        let tampered = |what: String| {
            Err(format!(
                "the journal's compensation for `{}` is not one it declares ({what}): refused as tampering",
                step.capability
            ))
        };
        // The audit log recorded a digest of the compensation when the call finished (or when a
        // person resolved it): a journal edited since, values included, no longer matches.
        if let Some(r) = &self.recorder {
            match r.undo_digest(step.id) {
                Ok(Some(d)) if d != step.undo_digest => {
                    return tampered(
                        "it differs from the compensation the audit log recorded for this step"
                            .to_string(),
                    )
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(format!(
                        "the audit log cannot be read to check this step's compensation ({e}); nothing was run"
                    ))
                }
            }
        }
        match (&step.undo, def.undo) {
            (StepUndo::Irreversible { reason }, _) => {
                return Err(format!("`{}` cannot be undone: {reason}", step.capability))
            }
            (StepUndo::Pending, _) => {
                return Err("the step has no compensation recorded".to_string())
            }
            (StepUndo::Function { capability, .. }, UndoDecl::Function { .. }) => {
                if capability != &step.capability {
                    return tampered(format!("the undo function of `{capability}`"));
                }
            }
            (StepUndo::Function { .. }, _) => {
                return tampered("an undo function it does not have".to_string())
            }
            (StepUndo::Calls { calls }, UndoDecl::Plan(_)) => {
                let Some(plan) = self.plan(def) else {
                    return Err("its plan could not be built".to_string());
                };
                let name = |r: &Option<aifirst_capability::CapabilityRef>| {
                    r.as_ref().map(|r| r.name.clone())
                };
                let absent = plan.when_absent.as_ref().map(|w| w.capability.name.clone());
                for c in calls {
                    let to_target = Some(&c.capability) == name(&plan.target).as_ref();
                    let to_absent = Some(&c.capability) == absent.as_ref();
                    if !to_target && !to_absent {
                        return tampered(format!("it calls `{}`", c.capability));
                    }
                    if !args_have_shape(&c.args, c.exprs.keys()) {
                        return tampered(
                            "its arguments do not come from the declared expressions".to_string(),
                        );
                    }
                    // The expressions of the call it makes: the plan's, or `when_absent`'s own.
                    let declared = match &plan.when_absent {
                        Some(w) if to_absent && !w.args.is_empty() => &w.args,
                        _ => &plan.args,
                    };
                    for (arg, expr) in &c.exprs {
                        if declared.get(arg) != Some(expr) {
                            return tampered(format!("`{arg} = {expr}`"));
                        }
                    }
                    // …and all of them (a `when_absent` without its own arguments leaves out
                    // the snapshot's).
                    let plain_absent =
                        to_absent && plan.when_absent.as_ref().is_some_and(|w| w.args.is_empty());
                    let expected = declared
                        .values()
                        .filter(|e| !(plain_absent && e.root == Root::Snapshot))
                        .count();
                    if c.exprs.len() != expected {
                        return tampered("it leaves out declared arguments".to_string());
                    }
                    if let Some(e) = &c.expect {
                        let by = Some(&e.read);
                        if by != name(&plan.check).as_ref() && by != name(&plan.snapshot).as_ref() {
                            return tampered(format!("it checks with `{}`", e.read));
                        }
                    }
                }
            }
            (StepUndo::Calls { calls } | StepUndo::InProcess { calls }, UndoDecl::Custom) => {
                if calls
                    .iter()
                    .any(|c| !c.exprs.is_empty() || c.expect.is_some())
                {
                    return tampered("a declared plan on a custom undo".to_string());
                }
            }
            (StepUndo::Files { .. }, UndoDecl::Plan(_)) => {
                if self.plan(def).map(|p| p.kind) != Some(UndoKind::FileSnapshot) {
                    return tampered(
                        "a file snapshot on a capability whose plan is another kind".to_string(),
                    );
                }
            }
            (StepUndo::Files { .. }, _) => {
                return tampered("a file snapshot it does not declare".to_string())
            }
            (StepUndo::Calls { calls }, _) if calls.is_empty() => {}
            (StepUndo::Calls { .. } | StepUndo::InProcess { .. }, _) => {
                return tampered("compensating calls it does not declare".to_string())
            }
        }
        if let StepUndo::InProcess { .. } = &step.undo {
            let here = self
                .closures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&step.id);
            if !here {
                return Err(format!(
                    "`{}` recorded an in-process compensation, and the process that recorded it has ended; undo it by hand, then `undo --skip {}`",
                    step.capability, step.id
                ));
            }
        }
        // Deny rules apply to compensations as to calls.
        for c in step_calls(&step.undo) {
            let cdef = self
                .registry
                .get(&c.capability)
                .ok_or_else(|| format!("no capability `{}` in this binary", c.capability))?;
            if let Verdict::Deny(why) = self.policy.decide(cdef, self.plan(cdef).as_deref()) {
                return Err(format!(
                    "the compensation `{}` is refused: {why}",
                    c.capability
                ));
            }
            if !step.faithful && holds_redacted(&c.args) {
                return Err(format!(
                    "the compensation `{}` would need data the journal kept only redacted (a journal written by an older version): it cannot be replayed faithfully",
                    c.capability
                ));
            }
        }
        if let StepUndo::Function { args, result, .. } = &step.undo {
            if !step.faithful && (holds_redacted(args) || holds_redacted(result)) {
                return Err(
                    "its undo function would need data the journal kept only redacted (a journal written by an older version)".to_string(),
                );
            }
        }
        Ok(retry)
    }

    fn idempotent_compensation(&self, undo: &StepUndo) -> bool {
        match undo {
            // Writing a kept state back twice leaves the same files.
            StepUndo::Files { .. } => true,
            StepUndo::Calls { calls } => calls.iter().all(|c| {
                self.registry
                    .get(&c.capability)
                    .is_some_and(|d| d.idempotent)
            }),
            _ => false,
        }
    }

    /// What `--force` cannot write over, for a file-snapshot step ([`snapshot::unforceable`]).
    fn check_unforceable(&self, undo: &StepUndo) -> Result<(), String> {
        let StepUndo::Files { manifest, .. } = undo else {
            return Ok(());
        };
        let m = self.store.manifest(manifest)?;
        let found = snapshot::unforceable(self.sandbox.fs(), &m);
        if found.is_empty() {
            Ok(())
        } else {
            Err(unforceable_why(&found))
        }
    }

    /// Before a destructive compensation runs: the thing it targets must still be what the step
    /// created or left behind.
    async fn check_targets(&self, undo: &StepUndo) -> Result<(), String> {
        self.check_targets_after(undo, &snapshot::Planned::default())
            .await
    }

    /// [`Engine::check_targets`], the files taken to be as `planned` (a dry run's newer steps)
    /// leaves them.
    async fn check_targets_after(
        &self,
        undo: &StepUndo,
        planned: &snapshot::Planned,
    ) -> Result<(), String> {
        if let StepUndo::Files { manifest, .. } = undo {
            let m = self.store.manifest(manifest)?;
            let changed = snapshot::conflicts_after(self.sandbox.fs(), &m, true, planned);
            // A path the roots in force do not reach is not a change `--force` could write over.
            let (unreachable, changed): (Vec<String>, Vec<String>) = changed
                .into_iter()
                .partition(|c| c.contains(snapshot::CANNOT_BE_CHECKED));
            if !unreachable.is_empty() {
                return Err(unforceable_why(&unreachable));
            }
            if !changed.is_empty() {
                return Err(format!(
                    "files changed since this step, and undoing it would overwrite that: {}",
                    changed.join("; ")
                ));
            }
            return Ok(());
        }
        for c in step_calls(undo) {
            let Some(expect) = &c.expect else { continue };
            let destructive = self
                .registry
                .get(&c.capability)
                .is_some_and(|d| d.effects.iter().any(|e| e.is_destructive()));
            if !destructive {
                continue;
            }
            let read = self.registry.get(&expect.read).ok_or_else(|| {
                format!("no capability `{}` to check the target with", expect.read)
            })?;
            let found = match read.invoke(&self.ctx(), expect.args.clone()).await {
                Ok(v) => v,
                Err(e) => {
                    return Err(format!(
                        "`{}` would act on something `{}` cannot find any more ({e})",
                        c.capability, expect.read
                    ))
                }
            };
            // A field the read does not return says nothing (APIs often answer a create with
            // more than a read shows); a field it returns with another value does. Values are
            // shown redacted (a restore compares every field, secrets included).
            let shown = |k: &str, v: &Value| {
                let one = self
                    .redactor
                    .redact(&Value::Object(Map::from_iter([(k.to_string(), v.clone())])));
                one.get(k).cloned().unwrap_or(Value::Null)
            };
            let mut compared = 0;
            let mut diffs = Vec::new();
            for (k, want) in &expect.fields {
                let Some(got) = found.get(k) else { continue };
                compared += 1;
                if got != want {
                    diffs.push(format!(
                        "`{k}` is {}, the step left {}",
                        shown(k, got),
                        shown(k, want)
                    ));
                }
            }
            if compared == 0 {
                return Err(format!(
                    "`{}` cannot confirm its target: `{}` returned none of the fields the step left ({})",
                    c.capability,
                    expect.read,
                    expect.fields.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            if !diffs.is_empty() {
                return Err(format!(
                    "`{}` targets something that is not what this step created or left behind: {}",
                    c.capability,
                    diffs.join("; ")
                ));
            }
        }
        Ok(())
    }

    /// Runs a step's compensation; returns the data compensations it ran, with their results.
    /// Runs a step's compensation. An error says why, and whether some of it may have taken
    /// effect (a later call failed, or a call failed in a way that does not say: no answer, 5xx).
    async fn undo_one(&self, step: &Step, force: bool) -> Result<Vec<Done>, (String, bool)> {
        match &step.undo {
            StepUndo::Irreversible { reason } => Err((
                format!("`{}` cannot be undone: {reason}", step.capability),
                false,
            )),
            StepUndo::Pending => Err(("the step has no compensation recorded".to_string(), false)),
            StepUndo::Calls { calls } => self.replay(calls).await,
            // Idempotent: a restore that stopped part-way may simply run again.
            StepUndo::Files { manifest, .. } => self
                .restore_files(manifest, true, force)
                .map(|()| Vec::new())
                .map_err(|e| (e, false)),
            StepUndo::Function {
                capability,
                args,
                result,
            } => {
                let def = self.registry.get(capability).ok_or_else(|| {
                    (
                        format!("no capability `{capability}` in this binary"),
                        false,
                    )
                })?;
                let UndoDecl::Function { call, .. } = def.undo else {
                    return Err((
                        format!("`{capability}` no longer declares an undo function"),
                        false,
                    ));
                };
                // Journals written before the data was kept beside the compensation.
                let pick =
                    |v: &Value, old: &Value| if v.is_null() { old.clone() } else { v.clone() };
                call(
                    &self.ctx(),
                    &UndoCall {
                        args: pick(args, &step.args),
                        result: pick(result, &step.result),
                    },
                )
                .map(|()| Vec::new())
                .map_err(|e| {
                    let unsure = ambiguous(&e);
                    (e.to_string(), unsure)
                })
            }
            StepUndo::InProcess { calls } => {
                let ctx = self
                    .closures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&step.id);
                let Some(ctx) = ctx else {
                    return Err((format!(
                        "`{}` recorded an in-process compensation, and the process that recorded it has ended",
                        step.capability
                    ), false));
                };
                // Closures before it may have run: say so.
                ctx.run_undo_closures().map_err(|e| (e, true))?;
                self.replay(calls).await
            }
        }
    }

    async fn replay(&self, calls: &[Replay]) -> Result<Vec<Done>, (String, bool)> {
        let mut done = Vec::with_capacity(calls.len());
        for c in calls.iter().rev() {
            let def = self.registry.get(&c.capability).ok_or_else(|| {
                (
                    format!("no capability `{}`", c.capability),
                    !done.is_empty(),
                )
            })?;
            let ctx = self.ctx().compensating();
            let result = def.invoke(&ctx, c.args.clone()).await.map_err(|e| {
                (
                    format!("`{}` failed: {e}", c.capability),
                    !done.is_empty() || ambiguous(&e),
                )
            })?;
            done.push(Done {
                def,
                args: c.args.clone(),
                result,
                location: ctx.response_location(),
            });
        }
        Ok(done)
    }

    /// What a compensation recreated under a new identifier: a compensation whose own undo is the
    /// inverse "call `step`'s capability with `name = <expr>`" brought back what the step
    /// removed; the step's argument `name` is the old identifier, `<expr>` on the compensation's
    /// result the new one.
    fn recreated(&self, step: &Step, done: &[Done]) -> Vec<Alias> {
        let mut out = Vec::new();
        for d in done {
            let Some(plan) = self.plan(d.def) else {
                continue;
            };
            if plan.kind != crate::UndoKind::Inverse
                || plan.target.as_ref().map(|t| t.name.as_str()) != Some(step.capability.as_str())
            {
                continue;
            }
            let scope = Scope {
                args: &d.args,
                result: &d.result,
                snapshot: None,
                location: d.location.as_deref(),
            };
            for (name, expr) in &plan.args {
                let (Some(old), Ok(new)) = (step.args.get(name), resolve(expr, &scope)) else {
                    continue;
                };
                let scalar = |v: &Value| matches!(v, Value::String(_) | Value::Number(_));
                if scalar(old) && scalar(&new) && *old != new {
                    out.push(Alias {
                        old: old.clone(),
                        new,
                        step: step.id,
                        capability: Some(step.capability.clone()),
                        arg: Some(name.clone()),
                    });
                }
            }
        }
        out
    }
}

/// What a finished call left for its plan to read.
struct Call<'a> {
    args: &'a Value,
    result: &'a Value,
    location: Option<String>,
}

/// A data plan's compensation for a finished call.
fn compensation(p: &UndoPlan, call: &Call<'_>, snapshot: &Snapshot, snap_args: &Value) -> StepUndo {
    let skip = matches!(
        (p.guard, snapshot),
        (Some(Guard::SnapshotAbsent), Snapshot::Present(_))
            | (Some(Guard::SnapshotPresent), Snapshot::Absent)
    );
    // A restore whose snapshot found nothing: the call created it, so undo removes it.
    let (target, use_snapshot, plan_args) = match (&p.when_absent, snapshot) {
        (Some(instead), Snapshot::Absent) if !instead.args.is_empty() => {
            (Some(&instead.capability), false, &instead.args)
        }
        (Some(instead), Snapshot::Absent) => (Some(&instead.capability), false, &p.args),
        _ => (p.target.as_ref(), true, &p.args),
    };
    let Some(target) = target else {
        return StepUndo::Irreversible {
            reason: format!("the {} plan names no capability", p.kind.as_str()),
        };
    };
    let snap_value = match snapshot {
        Snapshot::Present(v) if use_snapshot => Some(v),
        _ => None,
    };
    let scope = Scope {
        args: call.args,
        result: call.result,
        snapshot: snap_value,
        location: call.location.as_deref(),
    };
    let Resolved {
        values: resolved,
        exprs,
        missing,
    } = resolve_args(
        plan_args
            .iter()
            .filter(|(_, e)| use_snapshot || e.root != Root::Snapshot),
        &scope,
    );
    // What to re-read before the compensation runs, and what it must find.
    let expect = match (&p.check, &p.snapshot, use_snapshot, p.kind) {
        // An inverse: the thing the call created, by its identity.
        (Some(read), _, _, _) => fields_of(call.result, |k, v| {
            identity_key(k) && (v.is_string() || v.is_number())
        })
        .map(|fields| Expect {
            read: read.name.clone(),
            args: resolved.clone(),
            fields,
        }),
        // A restore: the state the call left behind has not changed since.
        (None, Some(read), true, crate::UndoKind::Restore) => {
            fields_of(call.result, |_, v| !v.is_object() && !v.is_array()).map(|fields| Expect {
                read: read.name.clone(),
                args: snap_args.clone(),
                fields,
            })
        }
        // A restore whose call created the thing (`when_absent` deletes it): re-read it with the
        // snapshot and check it is still what the call made.
        (None, Some(read), false, crate::UndoKind::Restore) => fields_of(call.result, |k, v| {
            identity_key(k) && (v.is_string() || v.is_number())
        })
        .map(|fields| Expect {
            read: read.name.clone(),
            args: snap_args.clone(),
            fields,
        }),
        _ => None,
    };
    match (skip, missing) {
        // Guarded: the call changed nothing the plan would reverse.
        (true, _) => StepUndo::Calls { calls: Vec::new() },
        (false, Some(why)) => StepUndo::Irreversible {
            reason: format!("{} plan unusable: {why}", p.kind.as_str()),
        },
        (false, None) => StepUndo::Calls {
            calls: vec![Replay {
                capability: target.name.clone(),
                args: resolved,
                exprs,
                expect,
            }],
        },
    }
}

/// An error that does not say whether the call took effect: no answer, or a server error.
/// Why `p`, joined under a folder, would lead out of it: absolute (it replaces the
/// folder: `os.path.join("/srv", "/etc/x")` is `/etc/x`), a drive or UNC prefix, a `..`
/// component, or a NUL. `None` when it stays inside.
/// A capability that runs a program or reaches the network: it does more than its files.
/// Why an undo or redo cannot write over `found` ([`snapshot::unforceable`]), with what to do.
fn unforceable_why(found: &[String]) -> String {
    // A folder on the way that leads elsewhere (or astray, through a link) now was moved or
    // replaced by a link since the call; a path no root reaches wants the call's roots.
    let (moved, unreached): (Vec<&String>, Vec<&String>) = found
        .iter()
        .partition(|c| c.contains(snapshot::WRITES_ONLY_WHERE) || c.contains("symbolic link"));
    let mut advice = Vec::new();
    if !moved.is_empty() {
        advice.push("put back what was moved, or remove the link, and run it again");
    }
    if !unreached.is_empty() {
        advice.push(
            "undo works within the roots the call ran with — give them (--root, allowed_roots, AIFIRST_ROOTS)",
        );
    }
    format!(
        "{}; {}; `--force` cannot write there either",
        found.join("; "),
        advice.join("; ")
    )
}

fn runs_more_than_files(def: &CapabilityDef) -> bool {
    def.effects.iter().any(|e| {
        matches!(
            e,
            aifirst_capability::Effect::Execute
                | aifirst_capability::Effect::Process
                | aifirst_capability::Effect::Network
        )
    })
}

fn leaves_its_folder(p: &str) -> Option<&'static str> {
    if p.contains('\0') {
        return Some("it holds a NUL byte");
    }
    if p.starts_with('/') || p.starts_with('\\') {
        return Some("it is absolute");
    }
    let mut chars = p.chars();
    if let (Some(d), Some(':')) = (chars.next(), chars.next()) {
        if d.is_ascii_alphabetic() {
            return Some("it names a drive");
        }
    }
    if p.split(['/', '\\']).any(|c| c == "..") {
        return Some("it has a `..` component");
    }
    None
}

fn ambiguous(e: &ToolError) -> bool {
    matches!(e, ToolError::Transport { .. })
        || matches!(e, ToolError::Http { status, .. } if *status >= 500)
}

/// The compensating calls of a step.
fn step_calls(undo: &StepUndo) -> &[Replay] {
    match undo {
        StepUndo::Calls { calls } | StepUndo::InProcess { calls } => calls,
        _ => &[],
    }
}

/// The arguments of the snapshot read: the plan's `$args` arguments.
fn snapshot_args(plan_args: &BTreeMap<String, Expr>, args: &Value) -> Value {
    resolve_args(
        plan_args.iter().filter(|(_, e)| e.reads_args_only()),
        &Scope::of_args(args),
    )
    .values
}

/// Plan arguments resolved against a finished (or interrupted) call.
struct Resolved {
    /// The arguments that have a value, by name (a JSON object).
    values: Value,
    /// The expression each of them came from.
    exprs: BTreeMap<String, Expr>,
    /// Why the last argument without a value has none.
    missing: Option<String>,
}

fn resolve_args<'p>(
    plan_args: impl IntoIterator<Item = (&'p String, &'p Expr)>,
    scope: &Scope<'_>,
) -> Resolved {
    let mut values = Map::new();
    let mut exprs = BTreeMap::new();
    let mut missing = None;
    for (name, expr) in plan_args {
        match resolve(expr, scope) {
            Ok(v) => {
                if name.starts_with('/') {
                    // A JSON pointer into the arguments (`/body/path`): the value goes inside an
                    // object argument, which is made when missing. (Argument names never start
                    // with `/`.)
                    if let Err(e) = insert_at(&mut values, name, v) {
                        missing = Some(e);
                        continue;
                    }
                } else {
                    values.insert(name.clone(), v);
                }
                exprs.insert(name.clone(), expr.clone());
            }
            Err(e) => missing = Some(e.to_string()),
        }
    }
    Resolved {
        values: Value::Object(values),
        exprs,
        missing,
    }
}

/// Whether recorded arguments hold exactly what their expressions' names make: a value per plain
/// name, and for JSON-pointer names (`/body/path`) the objects leading to each, nothing more.
fn args_have_shape<'k>(args: &Value, names: impl Iterator<Item = &'k String>) -> bool {
    #[derive(Default)]
    struct Tree(BTreeMap<String, Option<Tree>>);
    fn fits(v: &Value, t: &Tree) -> bool {
        let Some(m) = v.as_object() else {
            return false;
        };
        m.len() == t.0.len()
            && t.0.iter().all(|(k, sub)| match (m.get(k), sub) {
                (Some(_), None) => true,
                (Some(inner), Some(sub)) => fits(inner, sub),
                (None, _) => false,
            })
    }
    let mut tree = Tree::default();
    for name in names {
        if !name.starts_with('/') {
            if tree.0.insert(name.clone(), None).is_some() {
                return false;
            }
            continue;
        }
        let tokens = pointer_tokens(name);
        let Some((last, parents)) = tokens.split_last() else {
            return false;
        };
        let mut here = &mut tree;
        for t in parents {
            let slot = here
                .0
                .entry(t.clone())
                .or_insert_with(|| Some(Tree::default()));
            match slot {
                Some(sub) => here = sub,
                None => return false,
            }
        }
        if here.0.insert(last.clone(), None).is_some() {
            return false;
        }
    }
    fits(args, &tree)
}

/// The unescaped tokens of a JSON pointer (`/a~1b/c` → `a/b`, `c`; RFC 6901).
fn pointer_tokens(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// Puts `value` at a JSON pointer (`/body/path`) inside `root`, making objects on the way.
fn insert_at(root: &mut Map<String, Value>, pointer: &str, value: Value) -> Result<(), String> {
    let tokens = pointer_tokens(pointer);
    let Some((last, parents)) = tokens.split_last() else {
        return Err(format!("`{pointer}` names no argument"));
    };
    let mut here = root;
    for t in parents {
        let next = here
            .entry(t.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        here = next
            .as_object_mut()
            .ok_or_else(|| format!("`{pointer}`: `{t}` is not an object"))?;
    }
    here.insert(last.clone(), value);
    Ok(())
}

/// Field names that say which thing a result is.
fn identity_key(k: &str) -> bool {
    let l = k.to_ascii_lowercase();
    matches!(
        l.as_str(),
        "id" | "uuid" | "guid" | "key" | "name" | "path" | "type" | "kind" | "slug" | "number"
    ) || l.ends_with("_id")
        || (k.ends_with("Id") && k.len() > 2)
}

/// A result's top-level fields that `keep` accepts, when there are any.
fn fields_of(
    result: &Value,
    keep: impl Fn(&str, &Value) -> bool,
) -> Option<BTreeMap<String, Value>> {
    let fields: BTreeMap<String, Value> = result
        .as_object()?
        .iter()
        .filter(|(k, v)| keep(k, v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!fields.is_empty()).then_some(fields)
}

/// `true` when a value carries a redaction or truncation marker (data kept only for display,
/// or that an older journal did not keep).
fn holds_redacted(v: &Value) -> bool {
    match v {
        Value::String(s) => {
            s.starts_with(crate::REDACTED)
                || s.contains("[REDACTED:")
                || s.contains("…[truncated: ")
        }
        Value::Array(a) => a.iter().any(holds_redacted),
        Value::Object(m) => m.contains_key("$truncated") || m.values().any(holds_redacted),
        _ => false,
    }
}

/// A data compensation that ran during an undo, with what it returned.
struct Done {
    def: &'static CapabilityDef,
    args: Value,
    result: Value,
    location: Option<String>,
}

/// Rewrites a step's compensation arguments that name something a newer step's undo recreated
/// under a new identifier: only calls of the capability the alias speaks of, only its argument
/// (top-level values, oldest alias first, so chains resolve).
fn realias(undo: &mut StepUndo, step: i64, aliases: &[Alias]) {
    let (StepUndo::Calls { calls } | StepUndo::InProcess { calls }) = undo else {
        return;
    };
    for a in aliases.iter().filter(|a| step < a.step) {
        for c in calls.iter_mut() {
            if a.capability
                .as_ref()
                .is_some_and(|cap| *cap != c.capability)
            {
                continue;
            }
            let rewrite_args = |args: &mut Value| {
                let Value::Object(args) = args else { return };
                for (k, v) in args.iter_mut() {
                    if a.arg.as_ref().is_none_or(|arg| arg == k) && *v == a.old {
                        *v = a.new.clone();
                    }
                }
            };
            rewrite_args(&mut c.args);
            if let Some(e) = &mut c.expect {
                rewrite_args(&mut e.args);
                // The identity the check compares is that of the same thing.
                for v in e.fields.values_mut() {
                    if *v == a.old {
                        *v = a.new.clone();
                    }
                }
            }
        }
    }
}

/// What the engine checks arguments with, built once per capability.
struct ArgChecks {
    /// The compiled input schema, or why it does not compile (calls are then refused).
    validator: Result<jsonschema::Validator, String>,
    /// Properties whose schema wants an object or an array.
    structured: Vec<String>,
    /// Top-level properties with a `default`: what the handler uses when a call leaves one out
    /// (a Python function's literal default), so what its undo plan must see too.
    defaults: Map<String, Value>,
}

/// LLM clients often send objects and arrays as JSON strings: decode those where the schema wants one.
fn lenient(structured: &[String], args: Value) -> Value {
    let Value::Object(mut map) = args else {
        return args;
    };
    for k in structured {
        let Some(v) = map.get_mut(k) else { continue };
        let Value::String(text) = v else { continue };
        if let Ok(parsed @ (Value::Object(_) | Value::Array(_))) =
            serde_json::from_str::<Value>(text)
        {
            *v = parsed;
        }
    }
    Value::Object(map)
}
