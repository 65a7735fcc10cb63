//! The context a capability runs in.

use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use crate::fs::Fs;
use crate::http::Net;
use crate::sandbox::Sandbox;

/// A data-shaped compensation recorded during a call: journaled, replayable after a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct Compensation {
    pub capability: String,
    pub args: Value,
}

/// What a compensating function receives: the original call's arguments and result.
#[derive(Debug, Clone, PartialEq)]
pub struct UndoCall {
    pub args: Value,
    pub result: Value,
}

type UndoClosure = Box<dyn FnOnce() -> Result<(), String> + Send>;

/// The runtime context of one call. Handlers take it as an optional first parameter `ctx: &Ctx`.
pub struct Ctx {
    closures: Mutex<Vec<UndoClosure>>,
    compensations: Mutex<Vec<Compensation>>,
    location: Mutex<Option<String>>,
    sandbox: Arc<Sandbox>,
    /// Why this call cannot be undone, when the engine's policy let it run anyway.
    irreversible: Option<String>,
    /// The engine runs this call as a journaled compensation (an undo or a redo).
    compensating: bool,
    /// The engine checked this call's path arguments against the roots before journaling it
    /// ([`crate::python::check_paths`]), so invoking it need not again.
    paths_checked: bool,
}

impl Default for Ctx {
    fn default() -> Self {
        static CLOSED: OnceLock<Arc<Sandbox>> = OnceLock::new();
        Ctx::with_sandbox(CLOSED.get_or_init(|| Arc::new(Sandbox::default())).clone())
    }
}

impl Ctx {
    /// A context with the default sandbox: no file access, public hosts only.
    pub fn new() -> Self {
        Ctx::default()
    }

    /// A context whose file and network access go through `sandbox` (the engine passes its own).
    pub fn with_sandbox(sandbox: Arc<Sandbox>) -> Self {
        Ctx {
            closures: Mutex::default(),
            compensations: Mutex::default(),
            location: Mutex::default(),
            sandbox,
            irreversible: None,
            compensating: false,
            paths_checked: false,
        }
    }

    /// The same context, for the call whose arguments the engine has checked.
    pub(crate) fn with_paths_checked(mut self) -> Self {
        self.paths_checked = true;
        self
    }

    /// `true` when the engine checked the call's path arguments already.
    pub(crate) fn paths_checked(&self) -> bool {
        self.paths_checked
    }

    /// The same context, for a compensation the engine replays from the journal (a host that
    /// replays compensations itself, or a test, says so the same way).
    pub fn compensating(mut self) -> Self {
        self.compensating = true;
        self
    }

    /// `true` when the engine runs this call as a journaled compensation (undo or redo), not
    /// as a call an agent made: a capability that exists only to undo another
    /// (`sqlite_apply_changeset`) refuses to run otherwise.
    pub fn is_compensation(&self) -> bool {
        self.compensating
    }

    /// The same context, for a call the policy let run although it cannot be undone (`why`).
    pub(crate) fn granting_irreversible(mut self, why: Option<String>) -> Self {
        self.irreversible = why;
        self
    }

    /// `Some(why)` when the capability's `irreversible_when` check found this call cannot be
    /// undone and the policy let it run anyway: the handler may then do what it otherwise
    /// refuses for want of an undo (an SQL schema change). `None` outside the engine.
    pub fn irreversible_granted(&self) -> Option<&str> {
        self.irreversible.as_deref()
    }

    /// The sandbox this call runs in.
    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }

    /// Files beneath the allowed roots: the only way a capability should touch files.
    pub fn fs(&self) -> &Fs {
        self.sandbox.fs()
    }

    /// Records an in-process compensation. It cannot outlive the process; the journal marks it so.
    pub fn on_undo(&self, undo: impl FnOnce() -> Result<(), String> + Send + 'static) {
        if let Ok(mut c) = self.closures.lock() {
            c.push(Box::new(undo));
        }
    }

    /// Records a compensation as data: call `capability` with `args` to undo this call.
    pub fn compensate(&self, capability: impl Into<String>, args: Value) {
        if let Ok(mut c) = self.compensations.lock() {
            c.push(Compensation {
                capability: capability.into(),
                args,
            });
        }
    }

    /// The network half of the sandbox: allowed hosts, the guarded HTTP client for handlers that
    /// call APIs themselves, and the operation sender generated handlers use
    /// ([`crate::http::call_in`]).
    pub fn http(&self) -> &Net {
        self.sandbox.net()
    }

    /// Records the `Location` header of the call's response (undo plans read it as `$location.id`).
    /// [`crate::http::call_in`] does this for generated handlers.
    pub fn set_response_location(&self, location: impl Into<String>) {
        if let Ok(mut l) = self.location.lock() {
            *l = Some(location.into());
        }
    }

    /// The `Location` header recorded with [`Ctx::set_response_location`], if any.
    pub fn response_location(&self) -> Option<String> {
        self.location.lock().ok().and_then(|l| l.clone())
    }

    /// Takes the compensations recorded so far (newest last).
    pub fn take_compensations(&self) -> Vec<Compensation> {
        self.compensations
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }

    /// `true` when the handler recorded in-process compensations.
    pub fn has_closures(&self) -> bool {
        self.closures.lock().map(|c| !c.is_empty()).unwrap_or(false)
    }

    /// Runs and clears the in-process compensations, newest first; stops at the first failure.
    pub fn run_undo_closures(&self) -> Result<usize, String> {
        let closures = self
            .closures
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default();
        let mut done = 0;
        for f in closures.into_iter().rev() {
            f()?;
            done += 1;
        }
        Ok(done)
    }
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").finish_non_exhaustive()
    }
}
