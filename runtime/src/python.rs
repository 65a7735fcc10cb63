//! Running functions of a Python module: one persistent worker per module, a real `python3`
//! speaking JSON lines over pipes, the module imported once.
//!
//! - **Which Python:** [`configure`]'s interpreter (airun.toml `[python] interpreter`), else
//!   `AIFIRST_PYTHON` (a path, e.g. a venv's `bin/python`), else `python3` on `PATH`. Started
//!   isolated (`-I`: no user site, no `PYTHON*` variables), UTF-8 mode, unbuffered.
//! - **The module** is embedded in the binary ([`PyModule`]) and written, with the worker script,
//!   into a private directory (mode 0700) of the process, so the binary works wherever it is. The
//!   directory outlives the process; the next process to start a worker removes it.
//! - **Protocol** (see `python_worker.py`): a `ready` line after the import, then one request
//!   line `{"id", "function", "args"}` and one response line `{"id", "ok", "result" | "error"}` per
//!   call. The worker keeps the real stdout for the protocol and sends fd 1 to stderr, so the user
//!   code's `print()` never corrupts it.
//! - **One call at a time** per module: calls wait for the worker in turn.
//! - **Timeouts** ([`configure`], else `AIFIRST_PYTHON_TIMEOUT`, seconds, default 60): the worker's whole process
//!   group is killed and the call fails; the next call starts a new worker. A worker that exits
//!   is reported with its status and started again on the next call.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{json, Value};

use crate::{Ctx, ToolError};

/// The worker script, written beside the module.
const WORKER: &str = include_str!("python_worker.py");
/// How long a worker may take to import its module.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The default time one call may take.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest response line read.
const MAX_LINE: usize = 64 * 1024 * 1024 + 4096;

/// How workers are started, set once by the program (airun reads it from airun.toml).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The interpreter; `None`: `AIFIRST_PYTHON`, else `python3`.
    pub interpreter: Option<PathBuf>,
    /// The time one call may take; `None`: `AIFIRST_PYTHON_TIMEOUT`, else 60 s.
    pub timeout: Option<Duration>,
}

fn settings() -> &'static Mutex<Settings> {
    static SETTINGS: OnceLock<Mutex<Settings>> = OnceLock::new();
    SETTINGS.get_or_init(|| Mutex::new(Settings::default()))
}

/// Sets how workers start from now on (workers already running keep going).
pub fn configure(s: Settings) {
    *settings().lock().unwrap_or_else(|p| p.into_inner()) = s;
}

/// A Python module a crate carries: its dotted import name and its source files, relative to
/// the directory it is imported from (`tools.py`, or `pkg/__init__.py` and `pkg/files.py`).
#[derive(Debug)]
pub struct PyModule {
    pub name: &'static str,
    pub files: &'static [(&'static str, &'static str)],
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<std::io::Result<String>>,
    next_id: u64,
}

impl Worker {
    fn start(module: &PyModule) -> Result<Worker, ToolError> {
        let dir = materialize(module)?;
        let configured = settings()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .interpreter
            .clone();
        let python = configured
            .map(std::ffi::OsString::from)
            .or_else(|| std::env::var_os("AIFIRST_PYTHON").filter(|p| !p.is_empty()))
            .unwrap_or_else(|| "python3".into());
        let mut cmd = Command::new(&python);
        cmd.arg("-u")
            .arg("-I")
            .args(["-X", "utf8"])
            .arg(dir.join("aifirst_python_worker.py"))
            .arg(&dir)
            .arg(module.name)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            // Its own process group: a timeout kills what the function started, too.
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().map_err(|e| {
            ToolError::handler(format!(
                "cannot start the Python worker `{}` for module `{}`: {e} (name a Python 3.8+ interpreter in airun.toml `[python] interpreter` or AIFIRST_PYTHON)",
                Path::new(&python).display(),
                module.name
            ))
        })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            kill(&mut child);
            return Err(ToolError::handler("the Python worker has no pipes"));
        };
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("python-{}", module.name))
            .spawn(move || {
                let mut reader = BufReader::new(stdout);
                loop {
                    let mut line = Vec::new();
                    let read = std::io::Read::take(&mut reader, MAX_LINE as u64)
                        .read_until(b'\n', &mut line);
                    let sent = match read {
                        Ok(0) => break,
                        Ok(_) if !line.ends_with(b"\n") && line.len() >= MAX_LINE => {
                            let _ =
                                tx.send(Err(std::io::Error::other("a response line is too long")));
                            break;
                        }
                        Ok(_) => tx.send(Ok(String::from_utf8_lossy(&line).into_owned())),
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            break;
                        }
                    };
                    if sent.is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| ToolError::handler(format!("cannot start a reader thread: {e}")))?;
        let mut w = Worker {
            child,
            stdin,
            lines,
            next_id: 1,
        };
        let ready = match w.lines.recv_timeout(START_TIMEOUT) {
            Ok(Ok(line)) => serde_json::from_str::<Value>(&line).ok(),
            _ => None,
        };
        match ready {
            Some(v) if v["ready"] == true => Ok(w),
            Some(v) => {
                let why = describe_error(&v["error"]);
                w.stop();
                Err(ToolError::handler(format!(
                    "the Python module `{}` could not be imported: {why}",
                    module.name
                )))
            }
            None => {
                let status = w.stop();
                Err(ToolError::handler(format!(
                    "the Python worker for `{}` did not start ({status})",
                    module.name
                )))
            }
        }
    }

    /// Kills the worker's process group and reaps it; says how it ended.
    fn stop(&mut self) -> String {
        kill(&mut self.child);
        match self.child.wait() {
            Ok(s) => s.to_string(),
            Err(e) => e.to_string(),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn kill(child: &mut Child) {
    // The worker leads its own process group: whatever the function started goes too.
    if let Some(pid) = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill();
}

/// The private directory of this process where module sources and the worker script are
/// written, one subdirectory per module.
///
/// A static is never dropped, so the directory outlives the process. It holds a lock file
/// ([`LOCK_FILE`], locked while the process lives); the first process to start a worker after
/// one that ended removes that one's directory ([`sweep_abandoned`]).
fn materialize(module: &PyModule) -> Result<PathBuf, ToolError> {
    static ROOT: OnceLock<Result<(tempfile::TempDir, std::fs::File), String>> = OnceLock::new();
    let (root, _lock) = ROOT
        .get_or_init(|| {
            use std::os::unix::fs::PermissionsExt;
            let root = tempfile::Builder::new()
                .prefix(DIR_PREFIX)
                // Without it, the umask decides (0755 as a rule): private as documented.
                .permissions(std::fs::Permissions::from_mode(0o700))
                .tempdir()
                .map_err(|e| e.to_string())?;
            // Locked under another name, then renamed: a sweeper never finds the lock file
            // unlocked (without one, a directory this new is left alone).
            let unnamed = root.path().join(".aifirst-lock-new");
            let lock = std::fs::File::create(&unnamed)
                .and_then(|f| {
                    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive)?;
                    std::fs::rename(&unnamed, root.path().join(LOCK_FILE))?;
                    Ok(f)
                })
                .map_err(|e| e.to_string())?;
            if let Some(parent) = root.path().parent() {
                sweep_abandoned(parent, root.path());
            }
            Ok((root, lock))
        })
        .as_ref()
        .map_err(|e| {
            ToolError::handler(format!("cannot make a directory for Python modules: {e}"))
        })?;
    let dir = root.path().join(module.name);
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("aifirst_python_worker.py"), WORKER)?;
        for (rel, text) in module.files {
            let rel = Path::new(rel);
            // Only plain relative paths: the crate wrote them, but a path is still checked.
            if rel.is_absolute()
                || rel
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(std::io::Error::other(format!(
                    "`{}` is not a plain relative path",
                    rel.display()
                )));
            }
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, text)?;
        }
        Ok(())
    };
    write().map_err(|e| {
        ToolError::handler(format!(
            "cannot write the Python module `{}` for its worker: {e}",
            module.name
        ))
    })?;
    Ok(dir)
}

/// The name of each process's module directory starts with this, in the temporary directory.
const DIR_PREFIX: &str = "aifirst-python-";
/// The file in a module directory that its process keeps locked while it lives.
const LOCK_FILE: &str = ".aifirst-lock";
/// A module directory without a lock file (made before the lock existed) this old is abandoned.
const UNLOCKED_AGE: Duration = Duration::from_secs(3600);

/// Removes the module directories in `parent` whose process has ended: this user's, a real
/// directory (a symbolic link is never followed), whose lock file can be locked, so no process
/// holds it. One without a lock file is removed once it is [`UNLOCKED_AGE`] old. Best effort:
/// what cannot be read or removed is left.
fn sweep_abandoned(parent: &Path, own: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let uid = rustix::process::getuid().as_raw();
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry.file_name().to_string_lossy().starts_with(DIR_PREFIX) || path == own {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != uid {
            continue;
        }
        match std::fs::File::open(path.join(LOCK_FILE)) {
            Ok(lock) => {
                // Held while the directory goes: a second sweeper waits for nothing, it fails.
                if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                    .is_ok()
                {
                    let _ = std::fs::remove_dir_all(&path);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let old = meta
                    .modified()
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|age| age > UNLOCKED_AGE);
                if old {
                    let _ = std::fs::remove_dir_all(&path);
                }
            }
            Err(_) => {}
        }
    }
}

fn timeout() -> Duration {
    if let Some(t) = settings().lock().unwrap_or_else(|p| p.into_inner()).timeout {
        return t;
    }
    std::env::var("AIFIRST_PYTHON_TIMEOUT")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// `ValueError: bad value` and the last frames, from a worker's error object.
fn describe_error(e: &Value) -> String {
    let kind = e["type"].as_str().unwrap_or("Error");
    let message = e["message"].as_str().unwrap_or("");
    let mut out = if message.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {message}")
    };
    if let Some(frames) = e["traceback"].as_array() {
        for f in frames.iter().filter_map(Value::as_str) {
            out.push_str("\n  at ");
            out.push_str(f);
        }
    }
    out
}

type Slot = Arc<Mutex<Option<Worker>>>;

fn slot(module: &'static PyModule) -> Slot {
    static SLOTS: OnceLock<Mutex<HashMap<&'static str, Slot>>> = OnceLock::new();
    let slots = SLOTS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = slots.lock().unwrap_or_else(|p| p.into_inner());
    Arc::clone(map.entry(module.name).or_default())
}

/// Refuses a call whose path arguments lead outside the roots, before the worker runs it. A
/// Python function opens the paths it is given itself — links followed, `..` applied after them —
/// so each argument in `paths` (its value a string, or an array of strings) is located as every
/// file tool locates a path (no roots means no file access; relative to the first root) and
/// resolved the way the kernel will resolve it ([`crate::fs::resolve_physical`]), which must also
/// lie inside a root. Text a function may turn into another path before it opens it — a leading
/// `~`, `$NAME`, white space at either end — is refused. A path a call leaves out is the
/// function's default: the module's, not the agent's. What a function finds by listing a
/// directory (entries that are links out, a glob's matches) is its own code's: only the paths
/// it is given are checked.
pub fn check_paths(
    ctx: &Ctx,
    function: &str,
    paths: &[&str],
    args: &Value,
) -> Result<(), ToolError> {
    let fs = ctx.fs();
    // Each string: the argument's name, the text, and whether it is a path itself (a string, an
    // array's item, an object's key) rather than an object's value, which may be content.
    let mut found: Vec<(&str, &str, bool)> = Vec::new();
    for name in paths {
        let Some(value) = args.get(*name) else {
            continue;
        };
        let mut strings = Vec::new();
        if !strings_in(value, 0, true, &mut strings) {
            return Err(ToolError::NotAllowed {
                message: format!(
                    "`{function}`'s argument `{name}` holds more than {MAX_CHECKED} strings or nests deeper than {MAX_NESTING} levels: its paths cannot all be checked against the roots, so nothing was run"
                ),
            });
        }
        found.extend(strings.into_iter().map(|(s, own)| (*name, s, own)));
    }
    for &(name, v, own) in &found {
        let refused = |why: String| {
            ToolError::NotAllowed {
            message: format!(
                "`{function}`'s argument `{name}`: path `{}` {why}; the function opens it itself, so nothing was run",
                v.escape_debug()
            ),
        }
        };
        if own {
            // What a function may turn the text into before it opens it.
            if v.starts_with('~') {
                return Err(refused(
                    "starts with `~`, which the function may expand to a home directory outside the roots: give the path without it".into(),
                ));
            }
            if holds_variable(v) {
                return Err(refused(
                    "holds `$NAME`, which the function may expand to a place outside the roots: give the path itself".into(),
                ));
            }
            let loose = |c: char| c.is_whitespace() || c.is_control();
            if v.starts_with(loose) || v.ends_with(loose) {
                return Err(refused(
                    "starts or ends with white space or a control character, which the function may strip to name another path: give it without".into(),
                ));
            }
        }
        check_location(fs, v, &refused)?;
    }
    // One argument joined under another (`Path(root).glob(pattern)`, `os.path.join(base,
    // name)`): the joined path is what is opened, so it is checked too — every relative string
    // under every string of another argument, and under the other strings of its own argument
    // when that holds at most `MAX_SIBLINGS`. More than `MAX_JOINED` such pairs is refused,
    // never checked in part (absolute paths join under nothing).
    let own: Vec<(&str, &str)> = found.iter().filter(|f| f.2).map(|f| (f.0, f.1)).collect();
    let mut per_argument: HashMap<&str, usize> = HashMap::new();
    for (name, _) in &own {
        *per_argument.entry(name).or_default() += 1;
    }
    let pairs = |v_name: &str, base_name: &str| {
        v_name != base_name || per_argument.get(v_name).is_some_and(|&n| n <= MAX_SIBLINGS)
    };
    let relative: Vec<(&str, &str)> = own
        .iter()
        .copied()
        .filter(|(_, v)| !Path::new(v).is_absolute())
        .collect();
    let count: usize = relative
        .iter()
        .map(|(vn, _)| {
            let same = per_argument.get(vn).copied().unwrap_or(0);
            own.len() - same + if same <= MAX_SIBLINGS { same } else { 0 }
        })
        .sum();
    if count > MAX_JOINED {
        return Err(ToolError::NotAllowed {
            message: format!(
                "`{function}`'s path arguments hold {} relative paths, which could be joined under each other in {count} ways, more than the {MAX_JOINED} checked against the roots, so nothing was run: give absolute paths",
                relative.len()
            ),
        });
    }
    for &(name, v) in &relative {
        for &(base_name, base) in &own {
            if base == v || !pairs(name, base_name) {
                continue;
            }
            let joined = Path::new(base).join(v);
            let refused = |why: String| {
                ToolError::NotAllowed {
                message: format!(
                    "`{function}`'s argument `{name}`: path `{}` joined under `{}` {why}; the function opens it itself, so nothing was run",
                    v.escape_debug(),
                    base.escape_debug()
                ),
            }
            };
            match check_location(fs, &joined.to_string_lossy(), &refused) {
                // The join itself may not be a place (a file's name under another file's).
                Err(ToolError::NotAllowed { .. }) if fs.locate(&joined).is_err() => {
                    return Err(refused("is outside the allowed roots".into()))
                }
                Err(e) => return Err(e),
                Ok(()) => {}
            }
        }
    }
    Ok(())
}

/// Pairs of path strings [`check_paths`] checks joined, at most; and the strings of one
/// argument (a list) joined under each other, at most.
const MAX_JOINED: usize = 10_000;
const MAX_SIBLINGS: usize = 32;

/// Strings [`check_paths`] looks at, at most; and how deep in an argument.
const MAX_CHECKED: usize = 10_000;
const MAX_NESTING: usize = 16;

/// Where `v` leads: inside a root as written (`..` applied to the text, as a function that
/// normalises it first opens it), and as the kernel resolves it (links followed, `..` after
/// them) — both readings, neither a loop, a FIFO or a device. A pattern's matches are opened
/// too: the directories a wildcard reads must hold no link out of the roots.
fn check_location(
    fs: &crate::fs::Fs,
    v: &str,
    refused: &dyn Fn(String) -> ToolError,
) -> Result<(), ToolError> {
    let at = fs.locate(v)?;
    // As given (`..` not yet applied): what the kernel will be handed.
    let given = fs.joined(v).unwrap_or(at.shown);
    let readings = [
        Some(given.clone()),
        aifirst_capability::path::normalize(&given),
    ];
    for reading in readings.into_iter().flatten() {
        let real = crate::fs::resolve_physical(&reading).ok_or_else(|| {
            refused(format!(
                "leads through more than {} symbolic links (a loop, or a chain longer than the kernel follows)",
                crate::fs::MAX_LINKS
            ))
        })?;
        if fs.locate(&real).is_err() {
            return Err(refused(format!(
                "leads to `{}` through symbolic links, outside the allowed roots (or into the runtime's state directory)",
                real.display()
            )));
        }
        // A FIFO would hold the call (and the worker) until its timeout; a device or socket
        // is no file to give a function, as the file tools refuse it.
        #[cfg(unix)]
        if let Ok(m) = std::fs::metadata(&real) {
            use std::os::unix::fs::FileTypeExt;
            let t = m.file_type();
            if t.is_fifo() || t.is_socket() || t.is_char_device() || t.is_block_device() {
                return Err(refused(
                    "is a FIFO, socket or device, not a regular file or directory".into(),
                ));
            }
        }
    }
    // A glob: the directory its first wildcard reads (and, past it, what is below).
    if let Some((base, recursive)) = crate::fs::wildcard_base(v) {
        if let Some(dir) = fs
            .joined(&base)
            .and_then(|b| crate::fs::resolve_physical(&b))
        {
            if let Some(why) = fs.link_out_below(&dir, recursive) {
                return Err(refused(format!("matches through {why}")));
            }
        }
    }
    Ok(())
}

/// The strings in `v` (itself, an array's items, an object's keys and values), with whether
/// each is a path itself (`own`: not an object's value). `false` past [`MAX_CHECKED`] strings or
/// [`MAX_NESTING`] levels.
fn strings_in<'v>(v: &'v Value, depth: usize, own: bool, out: &mut Vec<(&'v str, bool)>) -> bool {
    if depth > MAX_NESTING || out.len() > MAX_CHECKED {
        return false;
    }
    match v {
        Value::String(s) => {
            out.push((s, own));
            true
        }
        Value::Array(items) => items.iter().all(|x| strings_in(x, depth + 1, own, out)),
        Value::Object(m) => m.iter().all(|(k, x)| {
            out.push((k, true));
            strings_in(x, depth + 1, false, out)
        }),
        _ => true,
    }
}

/// `$NAME` or `${NAME}` in `v`: what `os.path.expandvars` replaces (a name starts with a letter,
/// `_`, or any non-ASCII word character, as Python's `\w` allows).
fn holds_variable(v: &str) -> bool {
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' {
            if let Some(&n) = chars.peek() {
                if n.is_alphabetic() || n == '_' || n == '{' {
                    return true;
                }
            }
        }
    }
    false
}

/// Calls `function` of `module` with `args` (a JSON object of keyword arguments) and returns its
/// result as JSON. Errors name the Python exception and its last frames.
pub async fn call(
    ctx: &Ctx,
    module: &'static PyModule,
    function: &'static str,
    args: Value,
) -> Result<Value, ToolError> {
    let slot = slot(module);
    let limit = timeout();
    // The function runs in the first allowed root, so a relative path means to it what it
    // meant to the engine, which took it relative to that root when it checked and snapshotted
    // it ([`crate::fs::Fs::locate`]).
    let cwd = ctx
        .fs()
        .roots()
        .first()
        .map(|r| r.to_string_lossy().into_owned());
    tokio::task::spawn_blocking(move || call_blocking(&slot, module, function, args, cwd, limit))
        .await
        .map_err(|e| ToolError::handler(format!("the Python call was lost: {e}")))?
}

fn call_blocking(
    slot: &Mutex<Option<Worker>>,
    module: &'static PyModule,
    function: &str,
    args: Value,
    cwd: Option<String>,
    limit: Duration,
) -> Result<Value, ToolError> {
    let mut guard = slot.lock().unwrap_or_else(|p| p.into_inner());
    if guard.is_none() {
        *guard = Some(Worker::start(module)?);
    }
    let Some(w) = guard.as_mut() else {
        return Err(ToolError::handler("the Python worker is not running"));
    };
    let id = w.next_id;
    w.next_id += 1;
    let mut line = match cwd {
        Some(cwd) => json!({"id": id, "function": function, "args": args, "cwd": cwd}),
        None => json!({"id": id, "function": function, "args": args}),
    }
    .to_string();
    line.push('\n');
    let sent = w
        .stdin
        .write_all(line.as_bytes())
        .and_then(|()| w.stdin.flush());
    let answer = match sent {
        Ok(()) => w.lines.recv_timeout(limit),
        Err(_) => Err(RecvTimeoutError::Disconnected),
    };
    let text = match answer {
        Ok(Ok(text)) => text,
        Err(RecvTimeoutError::Timeout) => {
            if let Some(mut w) = guard.take() {
                w.stop();
            }
            return Err(ToolError::handler(format!(
                "`{}.{function}` did not finish within {:.0} s; its worker was stopped and the next call starts a new one (airun.toml `[python] timeout_secs` or AIFIRST_PYTHON_TIMEOUT sets the limit)",
                module.name,
                limit.as_secs_f64()
            )));
        }
        Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => {
            let status = guard.take().map(|mut w| w.stop()).unwrap_or_default();
            return Err(ToolError::handler(format!(
                "the Python worker of `{}` exited during `{function}` ({status}); the next call starts a new one",
                module.name
            )));
        }
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        ToolError::handler(format!(
            "the Python worker answered something that is not JSON: {e}"
        ))
    })?;
    if v["id"] != json!(id) {
        if let Some(mut w) = guard.take() {
            w.stop();
        }
        return Err(ToolError::handler(
            "the Python worker answered out of turn; it was stopped",
        ));
    }
    if v["ok"] == true {
        Ok(v.get("result").cloned().unwrap_or(Value::Null))
    } else {
        Err(ToolError::handler(describe_error(&v["error"])))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const SOURCE: &str = "import os, time\n\
             def pid() -> int:\n    return os.getpid()\n\
             def crash(code: int) -> None:\n    os._exit(code)\n\
             def echo(n: int, pause: float = 0.0) -> int:\n    print('noise', n)\n    time.sleep(pause)\n    return n\n";

    // One module per test: each test has its own slot, and a slot's lock is what keeps two
    // workers of one module from writing its directory at once.
    static CRASHING: PyModule = PyModule {
        name: "worker_probe",
        files: &[("worker_probe.py", SOURCE)],
    };
    static BUSY: PyModule = PyModule {
        name: "worker_probe_busy",
        files: &[("worker_probe_busy.py", SOURCE)],
    };

    /// Every string of a long list is checked joined under another argument (only the first
    /// 32 were); past the pairs it checks, the call is refused, and absolute paths pass.
    #[test]
    fn joined_arguments_are_checked_whole_or_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("folder")).unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("folder/door")).unwrap();
        let ctx = Ctx::with_sandbox(Arc::new(
            crate::Sandbox::new()
                .with_roots(std::slice::from_ref(&root))
                .unwrap(),
        ));
        let folder = root.join("folder").display().to_string();
        let mut patterns: Vec<String> = (0..40).map(|i| format!("n{i}.md")).collect();
        assert!(check_paths(
            &ctx,
            "f",
            &["root", "patterns"],
            &json!({"root": folder, "patterns": patterns})
        )
        .is_ok());
        patterns.push("door/*.md".into());
        let err = check_paths(
            &ctx,
            "f",
            &["root", "patterns"],
            &json!({"root": folder, "patterns": patterns}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`door/*.md` joined under"), "{err}");
        // Two lists of 150 relative paths: too many pairs to check, refused naming the fix.
        let names: Vec<String> = (0..150).map(|i| format!("a{i}.md")).collect();
        let err = check_paths(
            &ctx,
            "f",
            &["sources", "targets"],
            &json!({"sources": names, "targets": names}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("give absolute paths"), "{err}");
        let absolute: Vec<String> = names
            .iter()
            .map(|n| root.join(n).display().to_string())
            .collect();
        assert!(check_paths(
            &ctx,
            "f",
            &["sources", "targets"],
            &json!({"sources": absolute, "targets": absolute})
        )
        .is_ok());
    }

    #[test]
    fn module_directories_of_ended_processes_are_swept_and_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let make = |name: &str, lock: bool| {
            let dir = tmp.path().join(name);
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join("tools.py"), "x = 1\n").unwrap();
            if lock {
                std::fs::write(dir.join(LOCK_FILE), "").unwrap();
            }
            dir
        };
        let own = make("aifirst-python-own", true);
        let ended = make("aifirst-python-ended", true);
        let live = make("aifirst-python-live", true);
        let fresh = make("aifirst-python-fresh", false);
        let old = make("aifirst-python-old", false);
        let other = make("someone-else", true);
        // Another process's lock: a second open file description, as a live process holds it.
        let held = std::fs::File::open(live.join(LOCK_FILE)).unwrap();
        rustix::fs::flock(&held, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
        let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
        std::fs::File::open(&old)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
        // A link to an ended directory elsewhere is not followed.
        let elsewhere = tempfile::tempdir().unwrap();
        let target = elsewhere.path().join("aifirst-python-target");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join(LOCK_FILE), "").unwrap();
        std::os::unix::fs::symlink(&target, tmp.path().join("aifirst-python-link")).unwrap();

        sweep_abandoned(tmp.path(), &own);

        assert!(!ended.exists(), "an ended process's directory is removed");
        assert!(
            !old.exists(),
            "an unlocked directory an hour old is removed"
        );
        for kept in [&own, &live, &fresh, &other, &target] {
            assert!(kept.exists(), "{} is kept", kept.display());
        }
        assert!(tmp
            .path()
            .join("aifirst-python-link")
            .symlink_metadata()
            .is_ok());
        drop(held);
        sweep_abandoned(tmp.path(), &own);
        assert!(
            !live.exists(),
            "once its lock is released, the directory goes"
        );
        assert!(own.exists() && fresh.exists() && other.exists() && target.exists());
    }

    #[test]
    fn this_process_holds_its_module_directory_lock() {
        static LOCKED: PyModule = PyModule {
            name: "worker_probe_lock",
            files: &[("worker_probe_lock.py", "x = 1\n")],
        };
        let dir = materialize(&LOCKED).unwrap();
        let root = dir.parent().unwrap();
        assert!(root
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(DIR_PREFIX));
        use std::os::unix::fs::PermissionsExt;
        let mode = root.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "the module directory is private");
        let lock = std::fs::File::open(root.join(LOCK_FILE)).unwrap();
        assert!(
            rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err(),
            "a sweeper in another process would find the lock held"
        );
    }

    fn run_in(
        module: &'static PyModule,
        slot: &Mutex<Option<Worker>>,
        function: &str,
        args: Value,
    ) -> Result<Value, ToolError> {
        call_blocking(slot, module, function, args, None, Duration::from_secs(30))
    }

    fn run(slot: &Mutex<Option<Worker>>, function: &str, args: Value) -> Result<Value, ToolError> {
        run_in(&CRASHING, slot, function, args)
    }

    /// A module named as one of the standard library's is not the one imported (Python holds
    /// the name already): the worker refuses to start rather than run the library's function.
    #[test]
    fn a_module_named_as_a_standard_one_is_refused_not_shadowed() {
        static SHADOW: PyModule = PyModule {
            name: "subprocess",
            files: &[(
                "subprocess.py",
                "def getoutput(cmd: str) -> str:\n    return 'mine'\n",
            )],
        };
        let slot = Mutex::new(None);
        let err = run_in(&SHADOW, &slot, "getoutput", json!({"cmd": "echo theirs"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("rename it"), "{err}");
    }

    #[test]
    fn a_crashed_worker_fails_its_call_and_the_next_call_gets_a_new_one() {
        let slot = Mutex::new(None);
        let first = run(&slot, "pid", json!({})).unwrap();
        assert!(first.as_u64().is_some(), "{first}");
        let err = run(&slot, "crash", json!({"code": 3}))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("exited during `crash`") && err.contains("next call starts a new one"),
            "{err}"
        );
        assert!(slot.lock().unwrap().is_none(), "the dead worker is dropped");
        let second = run(&slot, "pid", json!({})).unwrap();
        assert!(second.as_u64().is_some(), "{second}");
        assert_ne!(first, second, "a new worker process answers");
        // And it keeps working.
        assert_eq!(run(&slot, "echo", json!({"n": 7})).unwrap(), json!(7));
    }

    #[test]
    fn concurrent_calls_do_not_interleave() {
        let slot = Arc::new(Mutex::new(None));
        let handles: Vec<_> = (0..8)
            .map(|n| {
                let slot = Arc::clone(&slot);
                std::thread::spawn(move || {
                    run_in(&BUSY, &slot, "echo", json!({"n": n, "pause": 0.01}))
                })
            })
            .collect();
        for (n, h) in handles.into_iter().enumerate() {
            assert_eq!(
                h.join().unwrap().unwrap(),
                json!(n),
                "call {n} got its own answer"
            );
        }
    }
}
