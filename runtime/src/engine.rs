//! The engine: validate, decide, run, journal; and undo.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::def::{CapabilityDef, UndoDecl};
use crate::expr::{resolve, Scope};
use crate::journal::{Journal, JournalError, Replay, Step, StepUndo};
use crate::policy::{Policy, Verdict};
use crate::redact::Redactor;
use crate::{Ctx, Guard, Registry, ToolError, UndoCall};

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
    #[error("refused: {0}")]
    Denied(String),
    #[error("needs confirmation: {0}")]
    NeedsConfirmation(String),
    #[error("could not take the snapshot undo needs: {0}")]
    Snapshot(String),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// How a call is made.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// The user confirmed a call the policy wants confirmed.
    pub confirmed: bool,
    /// Who asked for the call (e.g. the MCP client's name and version); recorded in the audit log.
    pub client: Option<String>,
}

/// What an undo did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UndoReport {
    /// Steps undone, newest first.
    pub undone: Vec<i64>,
    /// The step that could not be undone, and why; it and every older step stay on the stack.
    pub failed: Option<(i64, String)>,
}

/// One finished call or undo, for the audit log.
#[derive(Debug)]
pub struct CallEvent<'a> {
    pub session: &'a str,
    pub capability: &'a str,
    /// The capability, when it exists.
    pub def: Option<&'static CapabilityDef>,
    pub args: &'a Value,
    pub outcome: Result<&'a Value, String>,
    /// The journal step and how it is undone, when the call left one.
    pub step: Option<(i64, &'a StepUndo)>,
    pub duration: Duration,
    /// Who asked for the call, when the caller said (`CallOptions::client`).
    pub client: Option<&'a str>,
}

/// Receives every call and every undo (the audit log implements this).
pub trait Recorder: Send + Sync {
    fn call(&self, event: &CallEvent<'_>);
    fn undo(&self, session: &str, step: i64, outcome: Result<(), &str>);
}

/// Executes capabilities with validation, policy and a durable undo journal.
pub struct Engine {
    registry: Registry,
    policy: Policy,
    journal: Journal,
    /// Per capability, built from its input schema on first use.
    checks: Mutex<HashMap<&'static str, Arc<ArgChecks>>>,
    /// In-process compensations by step: gone when this engine (process) is.
    closures: Mutex<HashMap<i64, Ctx>>,
    recorder: Option<Arc<dyn Recorder>>,
    redactor: Redactor,
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
        Ok(Engine {
            registry,
            policy,
            journal: Journal::open(state_dir)?,
            checks: Mutex::new(HashMap::new()),
            closures: Mutex::new(HashMap::new()),
            recorder: None,
            redactor: Redactor::default(),
        })
    }

    /// Opens the engine on the default state directory ([`default_state_dir`]).
    pub fn open_default(registry: Registry, policy: Policy) -> Result<Engine, JournalError> {
        Engine::open(registry, policy, &default_state_dir())
    }

    /// Replaces the default redaction of what the journal stores.
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    pub fn with_recorder(mut self, recorder: Arc<dyn Recorder>) -> Self {
        self.recorder = Some(recorder);
        self
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn checks(&self, def: &'static CapabilityDef) -> Arc<ArgChecks> {
        let mut cache = self.checks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.get(def.name) {
            return Arc::clone(c);
        }
        let schema = (def.input_schema)();
        let structured = schema
            .as_value()
            .get("properties")
            .and_then(Value::as_object)
            .map(|props| {
                props
                    .iter()
                    .filter(|(_, p)| {
                        let t = p.get("type").map(Value::to_string).unwrap_or_default();
                        t.contains("object") || t.contains("array")
                    })
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        let c = Arc::new(ArgChecks {
            validator: jsonschema::validator_for(schema.as_value()).ok(),
            structured,
        });
        cache.insert(def.name, Arc::clone(&c));
        c
    }

    /// Calls a capability in a session.
    pub async fn call(
        &self,
        session: &str,
        name: &str,
        args: Value,
        opts: CallOptions,
    ) -> Result<Value, CallError> {
        let started = Instant::now();
        let client = opts.client.clone();
        let outcome = self.call_inner(session, name, args.clone(), opts).await;
        if let Some(r) = &self.recorder {
            let (value, step) = match &outcome {
                Ok((v, s)) => (Ok(v), s.as_ref().map(|(id, u)| (*id, u))),
                Err(e) => (Err(e.to_string()), None),
            };
            r.call(&CallEvent {
                session,
                capability: name,
                def: self.registry.get(name),
                args: &args,
                outcome: value,
                step,
                duration: started.elapsed(),
                client: client.as_deref(),
            });
        }
        outcome.map(|(v, _)| v)
    }

    async fn call_inner(
        &self,
        session: &str,
        name: &str,
        args: Value,
        opts: CallOptions,
    ) -> Result<(Value, Option<(i64, StepUndo)>), CallError> {
        let def = self
            .registry
            .get(name)
            .ok_or_else(|| CallError::Unknown(name.to_string()))?;
        let checks = self.checks(def);
        let args = lenient(&checks.structured, args);
        if let Some(v) = &checks.validator {
            if let Some(e) = v.iter_errors(&args).next() {
                let field = e.instance_path().to_string();
                return Err(CallError::InvalidArguments {
                    field: if field.is_empty() { "/".into() } else { field },
                    message: e.to_string(),
                });
            }
        }
        match self.policy.decide(def) {
            Verdict::Allow => {}
            Verdict::Deny(why) => return Err(CallError::Denied(why)),
            Verdict::Confirm(why) if !opts.confirmed => {
                return Err(CallError::NeedsConfirmation(why))
            }
            Verdict::Confirm(_) => {}
        }
        // Snapshot before the call, for plans that write the old state back.
        // Snapshot before the call, for plans that write the old state back or are guarded.
        let snapshot = match def.undo {
            UndoDecl::Plan {
                snapshot: Some(snap),
                args: plan_args,
                ..
            } => {
                let scope = Scope {
                    args: &args,
                    result: &Value::Null,
                    snapshot: None,
                    location: None,
                };
                let mut snap_args = Map::new();
                for a in plan_args.iter().filter(|a| a.expr.starts_with("$args.")) {
                    if let Ok(v) = resolve(a.expr, &scope) {
                        snap_args.insert(a.name.to_string(), v);
                    }
                }
                let sdef = self
                    .registry
                    .get(snap)
                    .ok_or_else(|| CallError::Snapshot(format!("no capability `{snap}`")))?;
                match sdef.invoke(&Ctx::new(), Value::Object(snap_args)).await {
                    Ok(v) => Snapshot::Present(v),
                    Err(ToolError::Http { status: 404, .. }) => Snapshot::Absent,
                    Err(e) => return Err(CallError::Snapshot(e.to_string())),
                }
            }
            _ => Snapshot::None,
        };
        let ctx = Ctx::new();
        let result = def.invoke(&ctx, args.clone()).await?;
        let mutating = def.effects.iter().any(|e| e.is_mutating());
        let undo = match def.undo {
            UndoDecl::Undeclared if !mutating => return Ok((result, None)),
            UndoDecl::Undeclared => StepUndo::Irreversible {
                reason: "no undo declared".into(),
            },
            UndoDecl::Irreversible { reason } => StepUndo::Irreversible {
                reason: reason.into(),
            },
            UndoDecl::Function { .. } => StepUndo::Function {
                capability: def.name.to_string(),
            },
            UndoDecl::Plan {
                kind,
                target,
                args: plan_args,
                guard,
                when_absent,
                ..
            } => {
                let skip = matches!(
                    (guard, &snapshot),
                    (Some(Guard::SnapshotAbsent), Snapshot::Present(_))
                        | (Some(Guard::SnapshotPresent), Snapshot::Absent)
                );
                // A restore whose snapshot found nothing: the call created it, so undo removes it.
                let (target, use_snapshot) = match (when_absent, &snapshot) {
                    (Some(instead), Snapshot::Absent) => (instead, false),
                    _ => (target, true),
                };
                let snap_value = match &snapshot {
                    Snapshot::Present(v) if use_snapshot => Some(v),
                    _ => None,
                };
                let location = ctx.response_location();
                let scope = Scope {
                    args: &args,
                    result: &result,
                    snapshot: snap_value,
                    location: location.as_deref(),
                };
                let mut resolved = Map::new();
                let mut missing = None;
                for a in plan_args
                    .iter()
                    .filter(|a| use_snapshot || !a.expr.starts_with("$snapshot"))
                {
                    match resolve(a.expr, &scope) {
                        Ok(v) => {
                            resolved.insert(a.name.to_string(), v);
                        }
                        Err(e) => missing = Some(e.to_string()),
                    }
                }
                match (skip, missing) {
                    // Guarded: the call changed nothing the plan would reverse.
                    (true, _) => StepUndo::Calls { calls: Vec::new() },
                    (false, Some(why)) => StepUndo::Irreversible {
                        reason: format!("{kind:?} plan unusable: {why}"),
                    },
                    (false, None) => StepUndo::Calls {
                        calls: vec![Replay {
                            capability: target.to_string(),
                            args: Value::Object(resolved),
                        }],
                    },
                }
            }
            UndoDecl::Custom => {
                let calls: Vec<Replay> = ctx
                    .take_compensations()
                    .into_iter()
                    .map(|c| Replay {
                        capability: c.capability,
                        args: c.args,
                    })
                    .collect();
                if ctx.has_closures() {
                    StepUndo::InProcess { calls }
                } else {
                    StepUndo::Calls { calls }
                }
            }
        };
        // Secrets never reach the disk; a compensation that needed one fails honestly at undo time.
        let undo = redact_undo(&self.redactor, undo);
        let id = self.journal.record(
            session,
            name,
            &self.redactor.redact(&args),
            &self.redactor.redact(&result),
            &undo,
        )?;
        if matches!(undo, StepUndo::InProcess { .. }) {
            self.closures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, ctx);
        }
        Ok((result, Some((id, undo))))
    }

    /// Undoes the last `n` steps of a session, newest first. A step that cannot be undone stops the
    /// undo; it and the older steps stay on the stack.
    pub async fn undo(&self, session: &str, n: usize) -> Result<UndoReport, CallError> {
        let steps: Vec<Step> = self.journal.pending(session)?.into_iter().take(n).collect();
        self.undo_steps(session, steps).await
    }

    /// Undoes every step after a checkpoint.
    pub async fn undo_to(&self, session: &str, checkpoint: &str) -> Result<UndoReport, CallError> {
        let Some(mark) = self.journal.checkpoint_step(session, checkpoint)? else {
            return Err(CallError::Unknown(format!("checkpoint `{checkpoint}`")));
        };
        let steps: Vec<Step> = self
            .journal
            .pending(session)?
            .into_iter()
            .filter(|s| s.id > mark)
            .collect();
        self.undo_steps(session, steps).await
    }

    pub fn checkpoint(&self, session: &str, name: &str) -> Result<i64, CallError> {
        Ok(self.journal.checkpoint(session, name)?)
    }

    /// Every step of a session, oldest first.
    pub fn history(&self, session: &str) -> Result<Vec<Step>, CallError> {
        Ok(self.journal.history(session)?)
    }

    async fn undo_steps(&self, session: &str, steps: Vec<Step>) -> Result<UndoReport, CallError> {
        let mut report = UndoReport::default();
        // Things earlier undos recreated under new identifiers (a delete undone by a create).
        let mut aliases = self.journal.aliases(session)?;
        for mut step in steps {
            realias(&mut step.undo, &aliases);
            let outcome = match self.undo_one(&step).await {
                Ok(done) => {
                    for (old, new) in self.recreated(&step, &done) {
                        self.journal.add_alias(session, &old, &new, step.id)?;
                        aliases.push((old, new));
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            };
            if let Some(r) = &self.recorder {
                r.undo(
                    session,
                    step.id,
                    outcome.as_ref().map(|_| ()).map_err(String::as_str),
                );
            }
            match outcome {
                Ok(()) => {
                    self.journal.mark_undone(step.id)?;
                    report.undone.push(step.id);
                }
                Err(why) => {
                    report.failed = Some((step.id, why));
                    break;
                }
            }
        }
        Ok(report)
    }

    /// Runs a step's compensation; returns the data compensations it ran, with their results.
    async fn undo_one(&self, step: &Step) -> Result<Vec<Done>, String> {
        match &step.undo {
            StepUndo::Irreversible { reason } => {
                Err(format!("`{}` cannot be undone: {reason}", step.capability))
            }
            StepUndo::Calls { calls } => self.replay(calls).await,
            StepUndo::Function { capability } => {
                let def = self
                    .registry
                    .get(capability)
                    .ok_or_else(|| format!("no capability `{capability}` in this binary"))?;
                let UndoDecl::Function { call, .. } = def.undo else {
                    return Err(format!(
                        "`{capability}` no longer declares an undo function"
                    ));
                };
                call(
                    &Ctx::new(),
                    &UndoCall {
                        args: step.args.clone(),
                        result: step.result.clone(),
                    },
                )
                .map(|()| Vec::new())
                .map_err(|e| e.to_string())
            }
            StepUndo::InProcess { calls } => {
                let ctx = self
                    .closures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&step.id);
                let Some(ctx) = ctx else {
                    return Err(format!(
                        "`{}` recorded an in-process compensation, and the process that recorded it has ended",
                        step.capability
                    ));
                };
                if let Err(e) = ctx.run_undo_closures() {
                    // Keep what is left runnable for a retry.
                    self.closures
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(step.id, ctx);
                    return Err(e);
                }
                self.replay(calls).await
            }
        }
    }

    async fn replay(&self, calls: &[Replay]) -> Result<Vec<Done>, String> {
        let mut done = Vec::with_capacity(calls.len());
        for c in calls.iter().rev() {
            let def = self
                .registry
                .get(&c.capability)
                .ok_or_else(|| format!("no capability `{}`", c.capability))?;
            let ctx = Ctx::new();
            let result = def
                .invoke(&ctx, c.args.clone())
                .await
                .map_err(|e| format!("`{}` failed: {e}", c.capability))?;
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
    fn recreated(&self, step: &Step, done: &[Done]) -> Vec<(Value, Value)> {
        let mut out = Vec::new();
        for d in done {
            let UndoDecl::Plan {
                kind: crate::UndoKind::Inverse,
                target,
                args,
                ..
            } = d.def.undo
            else {
                continue;
            };
            if target != step.capability {
                continue;
            }
            let scope = Scope {
                args: &d.args,
                result: &d.result,
                snapshot: None,
                location: d.location.as_deref(),
            };
            for a in args {
                let (Some(old), Ok(new)) = (step.args.get(a.name), resolve(a.expr, &scope)) else {
                    continue;
                };
                let scalar = |v: &Value| matches!(v, Value::String(_) | Value::Number(_));
                if scalar(old) && scalar(&new) && *old != new {
                    out.push((old.clone(), new));
                }
            }
        }
        out
    }
}

fn redact_undo(r: &Redactor, undo: StepUndo) -> StepUndo {
    let calls = |calls: Vec<Replay>| -> Vec<Replay> {
        calls
            .into_iter()
            .map(|c| Replay {
                capability: c.capability,
                args: r.redact(&c.args),
            })
            .collect()
    };
    match undo {
        StepUndo::Calls { calls: c } => StepUndo::Calls { calls: calls(c) },
        StepUndo::InProcess { calls: c } => StepUndo::InProcess { calls: calls(c) },
        other => other,
    }
}

/// A data compensation that ran during an undo, with what it returned.
struct Done {
    def: &'static CapabilityDef,
    args: Value,
    result: Value,
    location: Option<String>,
}

/// Rewrites a step's compensation arguments that name something an earlier undo recreated under
/// a new identifier (top-level argument values, oldest alias first, so chains resolve).
fn realias(undo: &mut StepUndo, aliases: &[(Value, Value)]) {
    let (StepUndo::Calls { calls } | StepUndo::InProcess { calls }) = undo else {
        return;
    };
    for c in calls {
        let Value::Object(args) = &mut c.args else {
            continue;
        };
        for v in args.values_mut() {
            for (old, new) in aliases {
                if v == old {
                    *v = new.clone();
                }
            }
        }
    }
}

/// What the engine checks arguments with, built once per capability.
struct ArgChecks {
    validator: Option<jsonschema::Validator>,
    /// Properties whose schema wants an object or an array.
    structured: Vec<String>,
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
