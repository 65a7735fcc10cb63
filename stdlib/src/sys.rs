//! System tools: run an allowed program (`run_command`), the time tools of the official MCP
//! `time` server (`get_current_time`, `convert_time`: the same names, arguments and results), and
//! what a model needs to know about the machine (`system_info`, `list_processes`, `get_env`,
//! `which`).
//!
//! `run_command` starts only the programs the sandbox allows (airun.toml `allowed_commands`,
//! [`aifirst::Sandbox::commands`]): a bare name listed there is found on `PATH`, an absolute path
//! listed there runs exactly that file, and nothing else runs — no shell either, unless a shell
//! (`sh`) is itself listed, and then it is just another program. The program runs in a directory
//! inside the allowed roots, in its own process group, with a minimal environment; its output is
//! capped and has secrets replaced before the model sees it. It is stopped, with everything it
//! started, at its timeout, when it exits (what it left in the background), and when the call is
//! dropped.
//!
//! The roots bound where a program *starts*, not what it can touch: it runs with the server's
//! own permissions. Allowing a program allows everything it can do with any arguments (`find
//! -exec`, `git -c alias.x=!…`, an interpreter's `-c`): list only programs the model may run
//! freely. To make a call undoable, the model names the files it will change (`undo_paths`); the
//! engine snapshots them before the call (`undo = file_snapshot(...)`) and puts exactly those
//! back on undo. A call that names none cannot be undone, and policy decides whether it runs (by
//! default it asks to confirm).
//!
//! The process tools read `/proc` (Linux). Values that look like secrets — environment variables
//! named like one, tokens in command lines or output — are replaced before they are returned.

#![cfg(unix)]

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aifirst::fs::{EntryKind, Fs};
use aifirst::{capability, Ctx, Redactor, ToolError};
use jiff::civil::{Time, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ZonedDateTime};
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};
use schemars::JsonSchema;
use serde::Serialize;

/// stdout and stderr are each kept up to this many bytes; the rest is read and dropped.
const MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// run_command's timeout when none is given, and the longest one may ask for.
const DEFAULT_TIMEOUT_SECS: u64 = 60;
const MAX_TIMEOUT_SECS: u64 = 3600;
/// How long the output is still waited for once the program has ended and its group is
/// stopped (a process that left the group may hold the pipes open).
const OUTPUT_GRACE: Duration = Duration::from_secs(2);
/// The longest pause between two looks at whether the program has ended.
const MAX_POLL: Duration = Duration::from_millis(25);
/// list_processes returns this many processes unless asked, and never more than the maximum.
const DEFAULT_PROCESSES: u32 = 200;
const MAX_PROCESSES: u32 = 5000;
/// A process's command line is read up to this many bytes and shown up to this many characters.
const MAX_CMDLINE_BYTES: u64 = 64 * 1024;
const MAX_COMMAND_CHARS: usize = 500;
/// /proc and /etc files are read up to this size.
const MAX_SYSTEM_FILE_BYTES: u64 = 1024 * 1024;
/// Program names, arguments' count, paths and variable names are refused past these.
const MAX_NAME_BYTES: usize = 4096;
const MAX_ARGS: usize = 10_000;
/// `PATH` when the server has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The server's variables a program gets (the rest of its environment, secrets included, is
/// not passed on).
const PASSED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TZ",
    "TMPDIR",
];

// ---------------------------------------------------------------------------------------------
// Results

/// How a program ended and what it printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct CommandOutput {
    /// The file that ran (the allowed program, found on PATH when named bare).
    pub program: String,
    /// The exit code (0 usually means success); absent when a signal ended the program.
    pub exit_code: Option<i32>,
    /// The signal that ended the program (9: killed, as at the timeout), when one did.
    pub signal: Option<i32>,
    /// The program ran past its timeout and was killed, with everything it started.
    pub timed_out: bool,
    /// What it wrote to standard output (UTF-8, invalid bytes replaced; secrets replaced with
    /// `[REDACTED:…]`).
    pub stdout: String,
    /// What it wrote to standard error (the same way).
    pub stderr: String,
    /// stdout was longer than 1 MiB: only its first 1 MiB is here.
    pub stdout_truncated: bool,
    /// stderr was longer than 1 MiB: only its first 1 MiB is here.
    pub stderr_truncated: bool,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
}

/// A time in a time zone (the official `time` server's result).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TimeResult {
    /// The time zone, as given (`local`: this machine's zone, by its IANA name).
    pub timezone: String,
    /// ISO 8601 with the zone's UTC offset, to the second: `2025-06-01T14:30:00+02:00`.
    pub datetime: String,
    /// The day of the week there, in English: `Monday` … `Sunday`.
    pub day_of_week: String,
    /// Whether daylight saving time is in effect there at that moment.
    pub is_dst: bool,
}

/// A time converted between two time zones (the official `time` server's result).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TimeConversionResult {
    /// The time in the source zone (today there, at the given hour and minute).
    pub source: TimeResult,
    /// The same moment in the target zone.
    pub target: TimeResult,
    /// The target's offset minus the source's, in hours: `+9.0h`, `-4.5h`, `+5.75h`.
    pub time_difference: String,
}

/// The machine: operating system, processors, memory, and the disks the allowed roots are on.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SystemInfo {
    /// The operating system family: `linux`, `macos`, …
    pub os: String,
    /// The distribution or release, e.g. `Ubuntu 24.04.1 LTS` (from /etc/os-release), when known.
    pub os_version: Option<String>,
    /// The kernel and its release, e.g. `Linux 6.8.0-45-generic`.
    pub kernel: String,
    /// The processor architecture: `x86_64`, `aarch64`, …
    pub arch: String,
    /// The machine's host name.
    pub hostname: Option<String>,
    /// Logical processors in the machine.
    pub cpus: usize,
    /// Logical processors this server may use (fewer under CPU limits or affinity).
    pub cpus_available: usize,
    /// Total memory, in bytes (Linux).
    pub memory_total_bytes: Option<u64>,
    /// Memory available to start new programs without swapping, in bytes (Linux).
    pub memory_available_bytes: Option<u64>,
    /// Seconds since the machine started (Linux).
    pub uptime_secs: Option<u64>,
    /// Each allowed directory and the space on its file system.
    pub roots: Vec<RootDisk>,
}

/// An allowed directory and the space on the file system it is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct RootDisk {
    /// The allowed directory, as configured.
    pub path: String,
    /// The file system's size, in bytes (absent when it cannot be asked).
    pub total_bytes: Option<u64>,
    /// The space this server's user may still write, in bytes.
    pub available_bytes: Option<u64>,
}

/// Running processes, by process id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ProcessList {
    /// The processes (at most `limit`), ordered by pid.
    pub processes: Vec<ProcessInfo>,
    /// How many processes matched (more than listed when `truncated`).
    pub matched: usize,
    /// Some matching processes were left out: narrow `filter` or raise `limit`.
    pub truncated: bool,
}

/// One process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ProcessInfo {
    pub pid: u32,
    /// The parent process's id.
    pub ppid: Option<u32>,
    /// The program's name (at most 15 characters, as the kernel keeps it).
    pub name: String,
    /// The command line, its arguments joined with spaces (secrets replaced; at most 500
    /// characters). `[name]` for a kernel thread.
    pub command: String,
    /// The user id it runs as.
    pub uid: Option<u32>,
    /// Memory it holds in RAM (resident set size), in bytes.
    pub rss_bytes: Option<u64>,
    /// `running`, `sleeping`, `disk sleep`, `stopped`, `zombie`, …
    pub state: String,
}

/// An environment variable of the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct EnvVar {
    pub name: String,
    /// Its value; absent when the variable is not set. `[REDACTED]` when it holds a secret.
    pub value: Option<String>,
    /// The value was withheld: the name or the value looks like a secret.
    pub redacted: bool,
}

/// Where a program is, and whether run_command may run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ProgramLocation {
    pub program: String,
    /// The executable file that would run; absent when none is found.
    pub path: Option<String>,
    /// Whether run_command may run it (it is in airun.toml `allowed_commands`).
    pub allowed: bool,
}

// ---------------------------------------------------------------------------------------------
// run_command

/// Run a program and wait for it to finish. No shell is involved: `program` is one of the
/// allowed programs (airun.toml `allowed_commands`; `which` tells whether a program is) and each
/// of `args` reaches it as it is, so `|`, `>`, `&&`, `*`, `~` and `$VAR` mean nothing — unless a
/// shell is itself allowed (then `program: "sh", args: ["-c", "…"]`). Runs in `cwd` (inside an
/// allowed directory; by default the first) with a minimal environment (PATH, HOME, USER, LANG,
/// TZ, TMPDIR, TERM=dumb, NO_COLOR=1) plus `env`. Returns the exit code (or the signal that ended
/// it), stdout and stderr (each up to 1 MiB — past that `stdout_truncated`/`stderr_truncated` —
/// with secrets replaced by `[REDACTED:…]`) and the time it took. It is killed, with everything it
/// started, after `timeout_secs` (default 60); anything it leaves running in the background is
/// stopped when it exits. The program can change any file its user can: to make the call
/// undoable, list in `undo_paths` the files or directories it will change — undo puts exactly
/// those back, nothing else. Without `undo_paths` the call cannot be undone, and the user may be
/// asked to confirm it.
#[capability(
    effects(execute, process, filesystem),
    open_world_hint = true,
    undo = file_snapshot(paths = ["$args.undo_paths"])
)]
#[allow(clippy::too_many_arguments)] // one per argument of the tool
pub async fn run_command(
    ctx: &Ctx,
    /// The program: a bare name such as `git` (found on PATH) or the absolute path listed in
    /// `allowed_commands`.
    program: String,
    /// Its arguments, each passed as it is (no shell: no quoting, globbing or variables).
    args: Option<Vec<String>>,
    /// The directory to run in: inside an allowed directory (absolute, or relative to the first
    /// allowed directory). Default: the first allowed directory.
    cwd: Option<String>,
    /// Environment variables to set, on top of the minimal environment (`LD_*` and `DYLD_*`
    /// are refused).
    env: Option<HashMap<String, String>>,
    /// Text to write to the program's standard input (then closed). Default: no input.
    stdin: Option<String>,
    /// Seconds before it is killed (default 60, at most 3600).
    timeout_secs: Option<u64>,
    /// Files or directories (inside allowed directories) the program will change: they are
    /// recorded before it runs, so undo can put them back. Only these are restored.
    undo_paths: Option<Vec<String>>,
) -> Result<CommandOutput, ToolError> {
    // The engine recorded `undo_paths` before the call; the handler only runs the program.
    let _ = undo_paths;
    let job = prepare(ctx, program, args, cwd, env, stdin, timeout_secs)?;
    let shown = job.path.display().to_string();

    let cancel = Arc::new(AtomicBool::new(false));
    let guard = StopOnDrop(Arc::clone(&cancel));
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("run_command".into())
        .spawn(move || {
            let _ = tx.send(job.run(&cancel));
        })
        .map_err(|e| failed(format!("could not start a thread to run {shown}: {e}")))?;
    let finished = rx.await.map_err(|_| {
        failed(format!(
            "running {shown} stopped unexpectedly; the program and everything it started were \
             stopped"
        ))
    })?;
    drop(guard);
    let done = finished?;

    let redactor = Redactor::default();
    let text = |bytes: &[u8]| redactor.redact_text(&String::from_utf8_lossy(bytes));
    Ok(CommandOutput {
        program: shown,
        exit_code: done.status.and_then(|s| s.code()),
        signal: done.status.and_then(|s| s.signal()),
        timed_out: done.timed_out,
        stdout: text(&done.stdout.bytes),
        stderr: text(&done.stderr.bytes),
        stdout_truncated: done.stdout.truncated,
        stderr_truncated: done.stderr.truncated,
        duration_ms: u64::try_from(done.elapsed.as_millis()).unwrap_or(u64::MAX),
    })
}

/// A program ready to run: everything checked.
struct Job {
    path: PathBuf,
    args: Vec<String>,
    cwd: PathBuf,
    env: BTreeMap<String, OsString>,
    stdin: Option<String>,
    timeout: Duration,
}

/// What the supervising thread hands back.
struct Finished {
    status: Option<ExitStatus>,
    timed_out: bool,
    stdout: Capture,
    stderr: Capture,
    elapsed: Duration,
}

#[derive(Default)]
struct Capture {
    bytes: Vec<u8>,
    truncated: bool,
}

/// Tells the supervising thread to stop the program when the call is dropped (a client that
/// cancelled, a server shutting down): the program does not outlive its call.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Checks the call's arguments against the sandbox, before anything runs. (Not async: nothing
/// borrowed from the context is held across the wait.)
fn prepare(
    ctx: &Ctx,
    program: String,
    args: Option<Vec<String>>,
    cwd: Option<String>,
    env: Option<HashMap<String, String>>,
    stdin: Option<String>,
    timeout_secs: Option<u64>,
) -> Result<Job, ToolError> {
    check_text(&program, "program")?;
    let args = args.unwrap_or_default();
    if args.len() > MAX_ARGS {
        return Err(invalid(format!(
            "`args` has {} arguments; at most {MAX_ARGS}",
            args.len()
        )));
    }
    if let Some(i) = args.iter().position(|a| a.contains('\0')) {
        return Err(invalid(format!(
            "`args[{i}]` contains a NUL byte, which no program argument can hold"
        )));
    }
    let timeout = timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
    if timeout == 0 || timeout > MAX_TIMEOUT_SECS {
        return Err(invalid(format!(
            "`timeout_secs` is {timeout}: give the seconds the program may run, 1 to \
             {MAX_TIMEOUT_SECS} (one hour; default {DEFAULT_TIMEOUT_SECS})"
        )));
    }
    // The program first: a program that may not run is refused whatever else the call says.
    let path = resolve_program(&program, ctx.sandbox().commands())?;
    let env = child_env(env.unwrap_or_default())?;
    let cwd = working_dir(ctx.fs(), cwd.as_deref())?;
    Ok(Job {
        path,
        args,
        cwd,
        env,
        stdin,
        timeout: Duration::from_secs(timeout),
    })
}

impl Job {
    /// Runs the program to its end (or its timeout, or the call's cancellation), on the calling
    /// thread, and collects its output.
    fn run(self, cancel: &AtomicBool) -> Result<Finished, ToolError> {
        let Job {
            path,
            args,
            cwd,
            env,
            stdin,
            timeout,
        } = self;
        let mut cmd = Command::new(&path);
        cmd.args(&args)
            .current_dir(&cwd)
            .env_clear()
            .envs(&env)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: the program and everything it starts are stopped together.
            .process_group(0);
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| failed(format!("could not start {}: {e}", path.display())))?;
        let pid = Pid::from_child(&child);

        let out = Arc::new(Mutex::new(Capture::default()));
        let err = Arc::new(Mutex::new(Capture::default()));
        let mut readers: Vec<JoinHandle<()>> = Vec::new();
        let mut trouble: Option<std::io::Error> = None;
        if let Some(pipe) = child.stdout.take() {
            match spawn_reader(pipe, Arc::clone(&out), "stdout") {
                Ok(h) => readers.push(h),
                Err(e) => trouble = Some(e),
            }
        }
        if let Some(pipe) = child.stderr.take() {
            match spawn_reader(pipe, Arc::clone(&err), "stderr") {
                Ok(h) => readers.push(h),
                Err(e) => trouble = Some(e),
            }
        }
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // Written on its own thread: a program that does not read its input must not hold
            // up the rest. Dropping the pipe closes it (end of input).
            let writer = std::thread::Builder::new()
                .name("run_command stdin".into())
                .spawn(move || {
                    let _ = pipe.write_all(text.as_bytes());
                });
            if let Err(e) = writer {
                trouble = Some(e);
            }
        }
        if let Some(e) = trouble {
            stop_group(pid);
            let _ = child.wait();
            return Err(failed(format!(
                "could not start a thread to collect the output of {}: {e}; the program was \
                 stopped",
                path.display()
            )));
        }

        let timed_out = wait_for_exit(pid, started + timeout, cancel);
        // The program has ended (not yet reaped, so its id still names its group) or is past
        // its time: stop everything in its group — what it left in the background too.
        stop_group(pid);
        let status = child.wait().ok();
        let elapsed = started.elapsed();

        // Everything in the group is gone, so the pipes close; a process that left the group
        // may still hold them, and is given a moment, not the call.
        let grace = Instant::now() + OUTPUT_GRACE;
        for reader in &readers {
            while !reader.is_finished() && Instant::now() < grace {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let take = |c: &Arc<Mutex<Capture>>| {
            c.lock()
                .map(|mut c| std::mem::take(&mut *c))
                .unwrap_or_default()
        };
        Ok(Finished {
            status,
            timed_out,
            stdout: take(&out),
            stderr: take(&err),
            elapsed,
        })
    }
}

/// Reads a pipe to its end on a thread, keeping the first [`MAX_OUTPUT_BYTES`] and dropping the
/// rest (still reading it, so the program never blocks on a full pipe).
fn spawn_reader(
    mut pipe: impl Read + Send + 'static,
    into: Arc<Mutex<Capture>>,
    which: &str,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("run_command {which}"))
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match pipe.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                let Ok(mut c) = into.lock() else { break };
                let room = MAX_OUTPUT_BYTES.saturating_sub(c.bytes.len());
                let keep = n.min(room);
                c.bytes
                    .extend_from_slice(buf.get(..keep).unwrap_or_default());
                if keep < n {
                    c.truncated = true;
                }
            }
        })
}

/// Waits until the program exits, without reaping it (`WNOWAIT`: its id keeps naming its
/// group), the deadline passes (`true`), or the call is cancelled.
fn wait_for_exit(pid: Pid, deadline: Instant, cancel: &AtomicBool) -> bool {
    let mut pause = Duration::from_millis(1);
    loop {
        if cancel.load(Ordering::Relaxed) {
            return false;
        }
        match rustix::process::waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT,
        ) {
            Ok(Some(_)) => return false,
            Ok(None) => {}
            Err(e) if e == rustix::io::Errno::INTR => continue,
            // Not our child any more (cannot happen: only this thread waits for it).
            Err(_) => return false,
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(MAX_POLL);
    }
}

/// SIGKILL to the program's process group (the group may already be empty).
fn stop_group(pid: Pid) {
    let _ = rustix::process::kill_process_group(pid, Signal::KILL);
}

/// Where `program` is allowed to run from: a bare name listed bare (found on PATH), a bare name
/// whose listed absolute path ends in it, or an absolute path listed exactly.
enum Target {
    OnPath(String),
    File(PathBuf),
}

fn allowed_target(program: &str, allowed: &[String]) -> Option<Target> {
    if program.contains('/') {
        return (program.starts_with('/') && allowed.iter().any(|a| a == program))
            .then(|| Target::File(PathBuf::from(program)));
    }
    if allowed.iter().any(|a| a == program) {
        return Some(Target::OnPath(program.to_string()));
    }
    allowed
        .iter()
        .find(|a| {
            a.starts_with('/') && Path::new(a.as_str()).file_name() == Some(OsStr::new(program))
        })
        .map(|a| Target::File(PathBuf::from(a)))
}

/// The file run_command runs for `program`, or why it will not.
fn resolve_program(program: &str, allowed: &[String]) -> Result<PathBuf, ToolError> {
    match allowed_target(program, allowed) {
        None => Err(not_allowed_program(program, allowed)),
        Some(Target::File(path)) => {
            if is_executable(&path) {
                Ok(path)
            } else {
                Err(failed(format!(
                    "`{program}` is allowed, but {} is not an executable file; ask the user to \
                     fix its entry in `allowed_commands` (airun.toml)",
                    path.display()
                )))
            }
        }
        Some(Target::OnPath(name)) => find_on_path(&name).ok_or_else(|| {
            failed(format!(
                "`{name}` is allowed, but no executable `{name}` is on PATH ({}); it may not be \
                 installed here (`which` looks a program up)",
                search_path().to_string_lossy()
            ))
        }),
    }
}

fn not_allowed_program(program: &str, allowed: &[String]) -> ToolError {
    let listed = if allowed.is_empty() {
        "none is allowed yet".to_string()
    } else {
        format!("the allowed ones are: {}", allowed.join(", "))
    };
    let name = Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| program.to_string());
    let relative = if program.contains('/') && !program.starts_with('/') {
        " A relative path never runs."
    } else {
        ""
    };
    ToolError::NotAllowed {
        message: format!(
            "`{program}` is not a program run_command may start ({listed}).{relative} Use an \
             allowed program, or ask the user to add it to `allowed_commands` in airun.toml (a \
             bare name such as \"{name}\" is found on PATH; an absolute path runs exactly that \
             file) and restart the server. No shell runs unless one (\"sh\") is listed itself."
        ),
    }
}

/// The server's PATH (a default when it has none).
fn search_path() -> OsString {
    std::env::var_os("PATH")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| OsString::from(DEFAULT_PATH))
}

/// The first executable `name` in a PATH directory. Relative PATH entries (the server's working
/// directory) are skipped.
fn find_on_path(name: &str) -> Option<PathBuf> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return None;
    }
    std::env::split_paths(&search_path())
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// A regular file (links followed) someone may execute.
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The program's environment: the server's harmless variables, TERM=dumb and NO_COLOR=1 (plain
/// output reads better), then the call's `env`.
fn child_env(extra: HashMap<String, String>) -> Result<BTreeMap<String, OsString>, ToolError> {
    let mut env: BTreeMap<String, OsString> = BTreeMap::new();
    for name in PASSED_ENV {
        if let Some(v) = std::env::var_os(name) {
            env.insert((*name).to_string(), v);
        }
    }
    env.insert("PATH".into(), search_path());
    env.insert("TERM".into(), "dumb".into());
    env.insert("NO_COLOR".into(), "1".into());
    for (name, value) in extra {
        check_env_name(&name, "env")?;
        if value.contains('\0') {
            return Err(invalid(format!(
                "`env.{name}` contains a NUL byte, which no environment variable can hold"
            )));
        }
        let upper = name.to_ascii_uppercase();
        if upper.starts_with("LD_") || upper.starts_with("DYLD_") {
            return Err(ToolError::NotAllowed {
                message: format!(
                    "`env.{name}` is not passed: variables that make the dynamic loader load other \
                     code (LD_*, DYLD_*) would let an allowed program run anything"
                ),
            });
        }
        env.insert(name, value.into());
    }
    Ok(env)
}

/// The directory to run in: `cwd` (or the first root) resolved beneath the roots, with every
/// link resolved, still inside a root and outside the runtime's state directory.
fn working_dir(fs: &Fs, cwd: Option<&str>) -> Result<PathBuf, ToolError> {
    let roots = fs.roots();
    let Some(first) = roots.first() else {
        return Err(ToolError::NotAllowed {
            message: "run_command runs programs inside an allowed directory, and none is \
                      configured: ask the user to set `allowed_roots` in airun.toml (or `--root \
                      DIR`, or AIFIRST_ROOTS)"
                .into(),
        });
    };
    let path: PathBuf = match cwd.map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) => {
            check_text(c, "cwd")?;
            PathBuf::from(c)
        }
        None => first.to_path_buf(),
    };
    let at = fs.locate(&path).map_err(|e| about("cwd", e))?;
    // Resolved beneath the root's handle: a link that leads out is refused here.
    let info = fs.info(&path, true).map_err(|e| about("cwd", e))?;
    if info.kind != EntryKind::Dir {
        return Err(failed(format!(
            "`cwd`: {} is not a directory",
            at.shown.display()
        )));
    }
    let real = at
        .canonical
        .canonicalize()
        .map_err(|e| failed(format!("`cwd`: {}: {e}", at.shown.display())))?;
    let inside = roots
        .iter()
        .filter_map(|r| r.canonicalize().ok())
        .any(|r| real.starts_with(&r));
    let in_state = fs.protected().iter().any(|p| real.starts_with(p));
    if !inside || in_state {
        return Err(ToolError::NotAllowed {
            message: format!(
                "`cwd`: {} is not inside an allowed directory ({})",
                at.shown.display(),
                roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    Ok(real)
}

// ---------------------------------------------------------------------------------------------
// Time (the official MCP `time` server's tools)

/// Get the current time in a specific time zone: its ISO 8601 date and time with the UTC offset,
/// the day of the week, and whether daylight saving time is in effect.
#[capability(effects(read))]
pub fn get_current_time(
    /// IANA time zone name (e.g. 'America/New_York', 'Europe/London', 'UTC'); 'local' for this
    /// machine's time zone.
    timezone: String,
) -> Result<TimeResult, ToolError> {
    let (tz, name) = zone(&timezone, "timezone")?;
    let now = Timestamp::now().to_zoned_datetime(tz);
    Ok(time_result(&now, name))
}

/// Convert a time between time zones: `time` (HH:MM, 24-hour) today in the source zone, the
/// same moment in the target zone, and the difference between their UTC offsets (`+9.0h`).
#[capability(effects(read))]
pub fn convert_time(
    /// Source IANA time zone name (e.g. 'America/New_York', 'Europe/London'); 'local' for this
    /// machine's time zone.
    source_timezone: String,
    /// Time to convert in 24-hour format (HH:MM).
    time: String,
    /// Target IANA time zone name (e.g. 'Asia/Tokyo', 'America/Los_Angeles'); 'local' for this
    /// machine's time zone.
    target_timezone: String,
) -> Result<TimeConversionResult, ToolError> {
    let (source_tz, source_name) = zone(&source_timezone, "source_timezone")?;
    let (target_tz, target_name) = zone(&target_timezone, "target_timezone")?;
    let Some((hour, minute)) = parse_hh_mm(&time) else {
        return Err(invalid(format!(
            "`time` is \"{}\": expected HH:MM in 24-hour format, e.g. \"09:30\" or \"17:05\"",
            time.escape_debug()
        )));
    };
    let clock =
        Time::new(hour, minute, 0, 0).map_err(|e| invalid(format!("`time` \"{time}\": {e}")))?;
    let today = Timestamp::now().to_zoned_datetime(source_tz.clone()).date();
    let ambiguous = source_tz.to_ambiguous_zoned_datetime(today.to_datetime(clock));
    if matches!(ambiguous.offset(), AmbiguousOffset::Gap { .. }) {
        return Err(invalid(format!(
            "Invalid time: {time} does not exist in {source_name} on {} (skipped by a clock \
             change); pick a time outside the change",
            iso_date(today.year(), today.month(), today.day())
        )));
    }
    // In a repeated hour (clocks going back) the first one, as the official server takes it.
    let source = ambiguous
        .compatible()
        .map_err(|e| failed(format!("{time} in {source_name}: {e}")))?;
    let target = source.with_time_zone(target_tz);
    let diff = target.offset().seconds() - source.offset().seconds();
    Ok(TimeConversionResult {
        source: time_result(&source, source_name),
        target: time_result(&target, target_name),
        time_difference: hours_difference(diff),
    })
}

/// The zone named `name`, and the name to show for it.
fn zone(name: &str, arg: &str) -> Result<(TimeZone, String), ToolError> {
    let n = name.trim();
    if n.is_empty() {
        return Err(invalid(format!(
            "`{arg}` is empty: give an IANA time zone name such as \"Europe/London\", \
             \"America/New_York\" or \"UTC\" (\"local\": this machine's zone)"
        )));
    }
    if n.len() > 256 || n.contains('\0') {
        return Err(invalid(format!(
            "`{arg}` is not a time zone name: give an IANA name such as \"Europe/London\""
        )));
    }
    if n.eq_ignore_ascii_case("local") {
        let tz = TimeZone::try_system().map_err(|e| {
            failed(format!(
                "this machine's time zone is not known ({e}); name one, such as \"UTC\" or \
                 \"Europe/London\""
            ))
        })?;
        let shown = tz.iana_name().unwrap_or("local").to_string();
        return Ok((tz, shown));
    }
    match TimeZone::get(n) {
        Ok(tz) => Ok((tz, n.to_string())),
        Err(_) => Err(invalid(format!(
            "`{arg}`: unknown time zone \"{}\": use an IANA time zone name such as \
             \"Europe/London\", \"America/New_York\", \"Asia/Tokyo\" or \"UTC\" (a region's \
             name, not an abbreviation like \"PST\" or an offset like \"+02:00\")",
            n.escape_debug()
        ))),
    }
}

fn time_result(at: &ZonedDateTime, timezone: String) -> TimeResult {
    let is_dst = at.time_zone().to_offset_info(at.timestamp()).dst().is_dst();
    TimeResult {
        timezone,
        datetime: iso_datetime(at),
        day_of_week: weekday_name(at.weekday()).to_string(),
        is_dst,
    }
}

/// `2025-06-01T14:30:00+02:00` (seconds in the offset only when it has them), as Python's
/// `isoformat(timespec="seconds")` writes it.
fn iso_datetime(at: &ZonedDateTime) -> String {
    let secs = at.offset().seconds();
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    let (h, m, s) = (a / 3600, a % 3600 / 60, a % 60);
    let offset = if s == 0 {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}:{m:02}:{s:02}")
    };
    format!(
        "{}T{:02}:{:02}:{:02}{offset}",
        iso_date(at.year(), at.month(), at.day()),
        at.hour(),
        at.minute(),
        at.second()
    )
}

fn iso_date(year: i16, month: i8, day: i8) -> String {
    format!("{year:04}-{month:02}-{day:02}")
}

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

/// `H:MM` or `HH:MM`, 24-hour.
fn parse_hh_mm(text: &str) -> Option<(i8, i8)> {
    let (h, m) = text.trim().split_once(':')?;
    let digits = |s: &str| (1..=2).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) {
        return None;
    }
    let (hour, minute): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    (hour <= 23 && minute <= 59).then_some((hour, minute))
}

/// An offset difference in hours as the official server writes it: `+9.0h` for whole hours,
/// else up to two decimals without trailing zeros (`+5.75h`, `-4.5h`).
fn hours_difference(seconds: i32) -> String {
    let hours = f64::from(seconds) / 3600.0;
    if seconds % 3600 == 0 {
        format!("{hours:+.1}h")
    } else {
        let two = format!("{hours:+.2}");
        format!("{}h", two.trim_end_matches('0').trim_end_matches('.'))
    }
}

// ---------------------------------------------------------------------------------------------
// The machine

/// Describe this machine: operating system and version, kernel, architecture, host name,
/// logical CPUs, total and available memory, uptime, and the total and free space of the disk
/// each allowed directory is on.
#[capability(effects(read, environment))]
pub fn system_info(ctx: &Ctx) -> SystemInfo {
    let uname = rustix::system::uname();
    let sysname = uname.sysname().to_string_lossy().into_owned();
    let release = uname.release().to_string_lossy().into_owned();
    let hostname = uname.nodename().to_string_lossy().into_owned();
    let available = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let cpus = cpuinfo_count().filter(|n| *n > 0).unwrap_or(available);
    let (memory_total_bytes, memory_available_bytes) = meminfo();
    let roots = ctx
        .fs()
        .roots()
        .into_iter()
        .map(|root| {
            let stat = rustix::fs::statvfs(root).ok();
            RootDisk {
                path: root.display().to_string(),
                total_bytes: stat.as_ref().map(|s| s.f_blocks.saturating_mul(s.f_frsize)),
                available_bytes: stat.as_ref().map(|s| s.f_bavail.saturating_mul(s.f_frsize)),
            }
        })
        .collect();
    SystemInfo {
        os: std::env::consts::OS.to_string(),
        os_version: os_release(),
        kernel: format!("{sysname} {release}").trim().to_string(),
        arch: std::env::consts::ARCH.to_string(),
        hostname: (!hostname.is_empty() && hostname != "(none)").then_some(hostname),
        cpus,
        cpus_available: available,
        memory_total_bytes,
        memory_available_bytes,
        uptime_secs: uptime(),
        roots,
    }
}

/// A small system file as text, invalid UTF-8 replaced (these are not FIFOs; a missing one is
/// `None`).
fn read_small(path: &str) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_SYSTEM_FILE_BYTES)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// `PRETTY_NAME` from os-release (else `NAME VERSION`).
fn os_release() -> Option<String> {
    let text = read_small("/etc/os-release").or_else(|| read_small("/usr/lib/os-release"))?;
    let mut fields: HashMap<&str, String> = HashMap::new();
    for line in text.lines() {
        if let Some((key, value)) = line.split_once('=') {
            let v = value.trim().trim_matches(|c| c == '"' || c == '\'');
            fields.insert(key.trim(), v.to_string());
        }
    }
    if let Some(pretty) = fields.get("PRETTY_NAME").filter(|p| !p.is_empty()) {
        return Some(pretty.clone());
    }
    let name = fields.get("NAME")?;
    Some(match fields.get("VERSION") {
        Some(v) => format!("{name} {v}"),
        None => name.clone(),
    })
}

/// The `processor` lines of /proc/cpuinfo.
fn cpuinfo_count() -> Option<usize> {
    let text = read_small("/proc/cpuinfo")?;
    Some(
        text.lines()
            .filter(|l| {
                l.split_once(':')
                    .is_some_and(|(k, _)| k.trim() == "processor")
            })
            .count(),
    )
}

/// `MemTotal` and `MemAvailable` of /proc/meminfo, in bytes.
fn meminfo() -> (Option<u64>, Option<u64>) {
    let Some(text) = read_small("/proc/meminfo") else {
        return (None, None);
    };
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let (key, rest) = l.split_once(':')?;
            (key.trim() == name).then_some(())?;
            kib_bytes(rest)
        })
    };
    (field("MemTotal"), field("MemAvailable"))
}

/// `  1234 kB` → bytes.
fn kib_bytes(text: &str) -> Option<u64> {
    let n: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(n.saturating_mul(1024))
}

fn uptime() -> Option<u64> {
    let text = read_small("/proc/uptime")?;
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then_some(secs as u64)
}

/// List running processes, ordered by process id: pid, parent pid, name, command line (secrets
/// replaced; at most 500 characters), user id, memory in RAM and state. `filter` keeps those
/// whose name or command line contains it (ignoring case). Linux only.
#[capability(effects(read, process))]
pub fn list_processes(
    /// Only processes whose name or command line contains this text (ignoring case).
    filter: Option<String>,
    /// The most processes to return (default 200, at most 5000).
    limit: Option<u32>,
) -> Result<ProcessList, ToolError> {
    let limit = usize::try_from(limit.unwrap_or(DEFAULT_PROCESSES).clamp(1, MAX_PROCESSES))
        .unwrap_or(usize::MAX);
    let wanted = filter
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_lowercase);
    let all = read_processes()?;
    let matching: Vec<ProcessInfo> = all
        .into_iter()
        .filter(|p| {
            wanted.as_deref().is_none_or(|w| {
                p.name.to_lowercase().contains(w) || p.command.to_lowercase().contains(w)
            })
        })
        .collect();
    let matched = matching.len();
    let processes: Vec<ProcessInfo> = matching.into_iter().take(limit).collect();
    Ok(ProcessList {
        truncated: matched > processes.len(),
        processes,
        matched,
    })
}

#[cfg(target_os = "linux")]
fn read_processes() -> Result<Vec<ProcessInfo>, ToolError> {
    let entries = std::fs::read_dir("/proc").map_err(|e| {
        failed(format!(
            "cannot list /proc ({e}); is the proc file system mounted?"
        ))
    })?;
    let redactor = Redactor::default();
    let mut out: Vec<ProcessInfo> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        // A process that ends meanwhile is left out.
        .filter_map(|pid| read_process(pid, &redactor))
        .collect();
    out.sort_by_key(|p| p.pid);
    Ok(out)
}

#[cfg(not(target_os = "linux"))]
fn read_processes() -> Result<Vec<ProcessInfo>, ToolError> {
    Err(failed(format!(
        "list_processes reads /proc, which this system ({}) does not have",
        std::env::consts::OS
    )))
}

#[cfg(target_os = "linux")]
fn read_process(pid: u32, redactor: &Redactor) -> Option<ProcessInfo> {
    let status = read_small(&format!("/proc/{pid}/status"))?;
    let (mut name, mut state) = (String::new(), String::new());
    let (mut ppid, mut uid, mut rss_bytes) = (None, None, None);
    for line in status.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Name" => name = value.to_string(),
            // `S (sleeping)` → `sleeping`
            "State" => {
                state = value
                    .split_once('(')
                    .and_then(|(_, rest)| rest.strip_suffix(')'))
                    .unwrap_or(value)
                    .to_string()
            }
            "PPid" => ppid = value.parse().ok(),
            "Uid" => uid = value.split_whitespace().next().and_then(|u| u.parse().ok()),
            "VmRSS" => rss_bytes = kib_bytes(value),
            _ => {}
        }
    }
    let mut raw = Vec::new();
    if let Ok(file) = std::fs::File::open(format!("/proc/{pid}/cmdline")) {
        let _ = file.take(MAX_CMDLINE_BYTES).read_to_end(&mut raw);
    }
    let argv: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let command = if argv.is_empty() {
        format!("[{name}]")
    } else {
        // Redacted whole, then cut: a secret cut in two would no longer look like one.
        clip(&redactor.redact_text(&argv.join(" ")), MAX_COMMAND_CHARS)
    };
    Some(ProcessInfo {
        pid,
        ppid,
        name,
        command,
        uid,
        rss_bytes,
        state,
    })
}

/// Read one environment variable of the server. The value is withheld (`[REDACTED]`,
/// `redacted: true`) when the name says it is a secret (`…_TOKEN`, `…_PASSWORD`, `…_API_KEY`, …)
/// or the value looks like one (an API token, a URL with a password). `value` is absent when the
/// variable is not set.
#[capability(effects(read, environment))]
pub fn get_env(
    /// The variable's name, e.g. `PATH`, `HOME`, `LANG`.
    name: String,
) -> Result<EnvVar, ToolError> {
    check_env_name(&name, "name")?;
    let Some(raw) = std::env::var_os(&name) else {
        return Ok(EnvVar {
            name,
            value: None,
            redacted: false,
        });
    };
    let value = raw.to_string_lossy().into_owned();
    let secret = aifirst::is_secret_key(&name) || Redactor::default().redact_text(&value) != value;
    Ok(EnvVar {
        name,
        value: Some(if secret {
            aifirst::REDACTED.to_string()
        } else {
            value
        }),
        redacted: secret,
    })
}

/// Find a program on the server's PATH, like `which`: the executable file that would run, and
/// whether run_command may run it (it is in airun.toml `allowed_commands`).
#[capability(effects(read))]
pub fn which(
    ctx: &Ctx,
    /// The program's name, e.g. `python3` (or an absolute path).
    program: String,
) -> Result<ProgramLocation, ToolError> {
    check_text(&program, "program")?;
    let target = allowed_target(&program, ctx.sandbox().commands());
    let path = match &target {
        Some(Target::File(p)) => is_executable(p).then(|| p.clone()),
        Some(Target::OnPath(name)) => find_on_path(name),
        None if program.starts_with('/') => {
            let p = PathBuf::from(&program);
            is_executable(&p).then_some(p)
        }
        None => find_on_path(&program),
    };
    Ok(ProgramLocation {
        path: path.map(|p| p.display().to_string()),
        allowed: target.is_some(),
        program,
    })
}

// ---------------------------------------------------------------------------------------------
// Arguments and errors

fn invalid(message: String) -> ToolError {
    ToolError::InvalidArguments { message }
}

fn failed(message: String) -> ToolError {
    ToolError::Handler { message }
}

/// The sandbox's error about `arg`, saying which argument it is about.
fn about(arg: &str, e: ToolError) -> ToolError {
    match e {
        ToolError::NotAllowed { message } => ToolError::NotAllowed {
            message: format!("`{arg}`: {message}"),
        },
        ToolError::Handler { message } => failed(format!("`{arg}`: {message}")),
        other => other,
    }
}

/// Refuses a name or path no system call should see: empty, with a NUL byte, or overlong.
fn check_text(text: &str, arg: &str) -> Result<(), ToolError> {
    if text.trim().is_empty() {
        return Err(invalid(format!("`{arg}` is empty")));
    }
    if text.contains('\0') {
        return Err(invalid(format!(
            "`{arg}` contains a NUL byte, which no name can hold: \"{}\"",
            text.escape_debug()
        )));
    }
    if text.len() > MAX_NAME_BYTES {
        return Err(invalid(format!(
            "`{arg}` is {} bytes long; at most {MAX_NAME_BYTES}",
            text.len()
        )));
    }
    Ok(())
}

/// An environment variable's name: not empty, no `=` or NUL.
fn check_env_name(name: &str, arg: &str) -> Result<(), ToolError> {
    if name.is_empty() || name.contains('=') || name.contains('\0') || name.len() > MAX_NAME_BYTES {
        return Err(invalid(format!(
            "`{arg}`: \"{}\" is not an environment variable name (it must be non-empty, without \
             `=` or NUL)",
            name.escape_debug()
        )));
    }
    Ok(())
}

/// At most `max` characters of `text`, `…` marking a cut.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", text.get(..at).unwrap_or(text)),
        None => text.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion
mod tests {
    use super::*;

    #[test]
    fn hour_differences_read_like_the_official_server() {
        assert_eq!(hours_difference(9 * 3600), "+9.0h");
        assert_eq!(hours_difference(0), "+0.0h");
        assert_eq!(hours_difference(-5 * 3600), "-5.0h");
        assert_eq!(hours_difference(-(4 * 3600 + 1800)), "-4.5h");
        assert_eq!(hours_difference(5 * 3600 + 2700), "+5.75h");
        assert_eq!(hours_difference(13 * 3600), "+13.0h");
    }

    #[test]
    fn times_parse_as_hh_mm() {
        assert_eq!(parse_hh_mm("09:30"), Some((9, 30)));
        assert_eq!(parse_hh_mm("9:05"), Some((9, 5)));
        assert_eq!(parse_hh_mm("23:59"), Some((23, 59)));
        for bad in [
            "24:00", "12:60", "12", "12:00:00", "ab:cd", "-1:00", "", "123:00",
        ] {
            assert_eq!(parse_hh_mm(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_listed_programs_are_allowed() {
        let allowed = vec![
            "git".to_string(),
            "/opt/tools/fmt".to_string(),
            "sh".to_string(),
        ];
        assert!(matches!(
            allowed_target("git", &allowed),
            Some(Target::OnPath(n)) if n == "git"
        ));
        assert!(matches!(
            allowed_target("fmt", &allowed),
            Some(Target::File(p)) if p == Path::new("/opt/tools/fmt")
        ));
        assert!(matches!(
            allowed_target("/opt/tools/fmt", &allowed),
            Some(Target::File(_))
        ));
        // A path is allowed only as listed; a relative one never.
        assert!(allowed_target("/usr/bin/git", &allowed).is_none());
        assert!(allowed_target("./git", &allowed).is_none());
        assert!(allowed_target("bin/sh", &allowed).is_none());
        assert!(allowed_target("bash", &allowed).is_none());
        assert!(allowed_target("sh", &[]).is_none());
    }

    #[test]
    fn loader_variables_are_refused() {
        let mut env = HashMap::new();
        env.insert("LD_PRELOAD".to_string(), "/tmp/x.so".to_string());
        assert!(matches!(child_env(env), Err(ToolError::NotAllowed { .. })));
        let mut env = HashMap::new();
        env.insert("A=B".to_string(), "x".to_string());
        assert!(matches!(
            child_env(env),
            Err(ToolError::InvalidArguments { .. })
        ));
        let env = child_env(HashMap::new()).unwrap();
        assert_eq!(
            env.get("TERM").map(|v| v.as_os_str()),
            Some(OsStr::new("dumb"))
        );
        assert!(env.contains_key("PATH"));
    }

    #[test]
    fn clip_cuts_at_characters() {
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(clip("hi", 5), "hi");
    }
}
