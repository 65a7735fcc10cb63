//! System tools: run an allowed program (`run_command`), the time tools of the official MCP
//! `time` server (`get_current_time`, `convert_time`: the same names, arguments and results), and
//! what a model needs to know about the machine (`system_info`, `list_processes`, `get_env`,
//! `which`).
//!
//! `run_command` starts only the programs the sandbox allows (airun.toml `allowed_commands`,
//! [`aifirst::Sandbox::commands`]): a bare name listed there is found on `PATH`, an absolute path
//! listed there runs exactly that file, and nothing else runs — no shell either, unless a shell
//! (`sh`) is itself listed, and then it is just another program. A program is never run from
//! inside the allowed roots — not found on a PATH directory there, not listed by a path there,
//! not reached through a link there: the model can write there, so the file could be anything.
//! (Relative PATH directories are never used, and the program's own PATH leaves out the ones
//! inside the roots.)
//!
//! The program runs in a directory inside the allowed roots, in its own process group, with a
//! minimal environment. The call may add variables, but not `PATH` nor any that makes programs
//! load or run other code (`LD_PRELOAD`, `BASH_ENV`, `PYTHONPATH`, `NODE_OPTIONS`, `GIT_*`, …:
//! the list is `REFUSED_ENV` in this module's source), and only names made of letters, digits
//! and `_`. Its output is capped and has secrets replaced — by the operator's redaction rules
//! ([`aifirst::Sandbox::redactor`]) — before the model sees it. It is stopped, with everything
//! it started, at its timeout, when it exits (what it left in the background), and when the call
//! is dropped. A process that leaves the group (`setsid`) escapes that and keeps running; the
//! call does not wait for it: its output is read for a two-second grace, then the pipes are
//! closed, so `run_command` returns by its timeout plus that grace whatever the program does.
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
//! named like one, tokens in command lines or output, the values of options such as
//! `--password` or `--token` and the password in `-u user:pass`, anything the operator's
//! redaction rules name — are replaced before they are returned.

#![cfg(unix)]

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{failed, invalid};
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
/// stopped (a process that left the group may hold the pipes open); then the pipes are closed
/// and the call returns.
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
    /// Whether run_command may run it (it is in airun.toml `allowed_commands`, and it does not
    /// lie inside an allowed directory).
    pub allowed: bool,
}

// ---------------------------------------------------------------------------------------------
// run_command

/// Run a program and wait for it to finish. No shell is involved: `program` is one of the
/// allowed programs (airun.toml `allowed_commands`; `which` tells whether a program is) and each
/// of `args` reaches it as it is, so `|`, `>`, `&&`, `*`, `~` and `$VAR` mean nothing — unless a
/// shell is itself allowed (then `program: "sh", args: ["-c", "…"]`); a program inside an allowed
/// directory never runs. Runs in `cwd` (inside an allowed directory; by default the first) with
/// a minimal environment (PATH, HOME, USER, LANG, TZ, TMPDIR, TERM=dumb, NO_COLOR=1) plus `env`.
/// Returns the exit code (or the signal that ended it), stdout and stderr (each up to 1 MiB —
/// past that `stdout_truncated`/`stderr_truncated` — with secrets replaced by `[REDACTED:…]`)
/// and the time it took. It is killed, with everything it started, after `timeout_secs` (default
/// 60); anything it leaves running in the background is stopped when it exits (a process that
/// detaches itself with `setsid` is not, but the call returns without it). The program can
/// change any file its user can: to make the call undoable, list in `undo_paths` the files or
/// directories it will change — undo puts exactly those back, nothing else. Without `undo_paths`
/// the call cannot be undone, and the user may be asked to confirm it.
#[capability(
    effects(execute, process, filesystem),
    open_world_hint = true,
    undo = file_snapshot(paths = ["$args.undo_paths"]),
    irreversible_when = program_allowed
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
    /// Environment variables to set, on top of the minimal environment. Refused: `PATH`, and
    /// variables that make programs load or run other code (`LD_*`, `DYLD_*`, `BASH_ENV`, `ENV`,
    /// `PYTHONPATH`, `NODE_OPTIONS`, `PERL5OPT`, `RUBYOPT`, `GIT_*`, `SSH_*`, `HOME`, `EDITOR`,
    /// …); names are letters, digits and `_`.
    env: Option<HashMap<String, String>>,
    /// Text to write to the program's standard input (then closed). Default: no input.
    stdin: Option<String>,
    /// Seconds before it is killed (default 60, at most 3600).
    timeout_secs: Option<u64>,
    /// Files or directories (inside allowed directories: absolute, or relative to the first; with a
    /// `cwd` elsewhere, absolute only) the program will change: they are recorded before it runs,
    /// with what their links lead to, so undo can put them back. Only these are restored.
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

    let redactor = ctx.sandbox().redactor();
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

/// run_command's check before the engine journals, snapshots or asks anything: a program that
/// is not allowed is refused at once. Without it, a call naming no `undo_paths` (irreversible)
/// would first ask the user to confirm a call that is then refused anyway.
fn program_allowed(ctx: &Ctx, args: &aifirst::Value) -> Result<Option<String>, ToolError> {
    if let Some(program) = args.get("program").and_then(aifirst::Value::as_str) {
        let allowed = ctx.sandbox().commands();
        if allowed_target(program, allowed).is_none() {
            return Err(not_allowed_program(program, allowed));
        }
    }
    // Relative undo paths are taken from the first root, where the engine snapshots them: with
    // a `cwd` elsewhere they would name other files than the program changes, and undo would
    // put back the wrong ones.
    let cwd = args
        .get("cwd")
        .and_then(aifirst::Value::as_str)
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if let Some(cwd) = cwd {
        let relative: Vec<&str> = args
            .get("undo_paths")
            .and_then(aifirst::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(aifirst::Value::as_str)
            .filter(|p| !Path::new(p).is_absolute())
            .collect();
        if !relative.is_empty() {
            let first = working_dir(ctx.fs(), None)?;
            if working_dir(ctx.fs(), Some(cwd))? != first {
                return Err(ToolError::InvalidArguments {
                    message: format!(
                        "`undo_paths`: {} relative, and `cwd` is `{cwd}`: relative undo paths are taken from the first allowed directory ({}), not from `cwd`, so they would name other files than the program changes; give them as absolute paths",
                        relative
                            .iter()
                            .map(|p| format!("`{p}`"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        first.display()
                    ),
                });
            }
        }
    }
    Ok(None)
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
    let roots = canonical_roots(ctx.fs());
    let path = resolve_program(&program, ctx.sandbox().commands(), &roots, &search_path())?;
    let env = child_env(env.unwrap_or_default(), &roots)?;
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
    /// thread, and collects its output. Returns within `timeout` plus [`OUTPUT_GRACE`] (and a
    /// few polls), whatever the program or what it started does.
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

        let mut pipes = match Pipes::new(&mut child, stdin) {
            Ok(p) => p,
            Err(e) => {
                stop(pid);
                let _ = child.wait();
                return Err(failed(format!(
                    "could not set up the pipes to {}: {e}; the program was stopped",
                    path.display()
                )));
            }
        };

        // Running: its output is read and its input written on this thread, as they come.
        let deadline = started + timeout;
        let mut pause = Duration::from_millis(1);
        let timed_out = loop {
            if cancel.load(Ordering::Relaxed) {
                break false;
            }
            let moved = pipes.pump();
            if has_exited(pid) {
                break false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break true;
            }
            if moved {
                pause = Duration::from_millis(1);
            } else {
                std::thread::sleep(pause.min(left));
                pause = (pause * 2).min(MAX_POLL);
            }
        };
        // The program has ended (not yet reaped, so its id still names it and its group) or is
        // past its time: stop everything in its group — what it left in the background too.
        stop(pid);
        let status = child.wait().ok();
        let elapsed = started.elapsed();

        // Everything in the group is gone, so the pipes close once what is in them is read. A
        // process that left the group (`setsid`) may hold them open: it is given a moment, then
        // the pipes are closed on it and the call returns.
        pipes.close_input();
        let grace = Instant::now() + OUTPUT_GRACE;
        let mut pause = Duration::from_millis(1);
        while pipes.output_open() && !cancel.load(Ordering::Relaxed) {
            let left = grace.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if pipes.pump() {
                pause = Duration::from_millis(1);
            } else {
                std::thread::sleep(pause.min(left));
                pause = (pause * 2).min(MAX_POLL);
            }
        }
        let (stdout, stderr) = pipes.finish();
        Ok(Finished {
            status,
            timed_out,
            stdout,
            stderr,
            elapsed,
        })
    }
}

/// Reads of one pipe per turn of [`Pipes::pump`] at most: a stream that never pauses does not
/// hold up the other, or the look at the clock.
const READS_PER_TURN: usize = 16;

/// The program's pipes, none blocking, read and written by the supervising thread alone. No
/// thread is left behind holding one: when the call returns they are closed, even if a process
/// that escaped the group still has the other ends.
struct Pipes {
    stdout: Option<std::fs::File>,
    stderr: Option<std::fs::File>,
    out: Capture,
    err: Capture,
    stdin: Option<std::fs::File>,
    input: Vec<u8>,
    written: usize,
    buf: Vec<u8>,
}

impl Pipes {
    /// Takes the child's pipes and makes them non-blocking.
    fn new(child: &mut Child, stdin: Option<String>) -> std::io::Result<Pipes> {
        Ok(Pipes {
            stdout: child.stdout.take().map(nonblocking).transpose()?,
            stderr: child.stderr.take().map(nonblocking).transpose()?,
            out: Capture::default(),
            err: Capture::default(),
            stdin: child.stdin.take().map(nonblocking).transpose()?,
            input: stdin.map(String::into_bytes).unwrap_or_default(),
            written: 0,
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// Reads what the output pipes hold and writes what input the program will take now;
    /// `true` when anything moved (or a pipe closed).
    fn pump(&mut self) -> bool {
        let wrote = self.write_some();
        let out = read_some(&mut self.stdout, &mut self.out, &mut self.buf);
        let err = read_some(&mut self.stderr, &mut self.err, &mut self.buf);
        wrote || out || err
    }

    /// Writes the next part of the input; closes the pipe (end of input) once all is written or
    /// the program stopped reading.
    fn write_some(&mut self) -> bool {
        let Some(pipe) = self.stdin.as_mut() else {
            return false;
        };
        let rest = self.input.get(self.written..).unwrap_or_default();
        if rest.is_empty() {
            self.stdin = None;
            return true;
        }
        match pipe.write(rest) {
            Ok(0) => {
                self.stdin = None;
                true
            }
            Ok(n) => {
                self.written = self.written.saturating_add(n);
                if self.written >= self.input.len() {
                    self.stdin = None;
                }
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            // The program closed its input (it takes no more): not an error.
            Err(_) => {
                self.stdin = None;
                true
            }
        }
    }

    fn close_input(&mut self) {
        self.stdin = None;
    }

    /// Whether stdout or stderr may still bring something.
    fn output_open(&self) -> bool {
        self.stdout.is_some() || self.stderr.is_some()
    }

    /// What was read; the pipes are closed.
    fn finish(self) -> (Capture, Capture) {
        (self.out, self.err)
    }
}

/// The pipe as a non-blocking file.
fn nonblocking(pipe: impl Into<OwnedFd>) -> std::io::Result<std::fs::File> {
    let fd: OwnedFd = pipe.into();
    let file = std::fs::File::from(fd);
    let flags = rustix::fs::fcntl_getfl(&file)?;
    rustix::fs::fcntl_setfl(&file, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok(file)
}

/// Reads what `pipe` holds now into `into` (keeping the first [`MAX_OUTPUT_BYTES`], still
/// reading the rest so the program never blocks on a full pipe); closes it at its end. `true`
/// when anything was read or the pipe closed.
fn read_some(pipe: &mut Option<std::fs::File>, into: &mut Capture, buf: &mut [u8]) -> bool {
    let mut moved = false;
    for _ in 0..READS_PER_TURN {
        let Some(p) = pipe.as_mut() else { break };
        match p.read(buf) {
            Ok(0) => {
                *pipe = None;
                return true;
            }
            Ok(n) => {
                moved = true;
                into.keep(buf.get(..n).unwrap_or_default());
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(_) => {
                *pipe = None;
                return true;
            }
        }
    }
    moved
}

impl Capture {
    /// Appends `bytes` up to [`MAX_OUTPUT_BYTES`] in all; marks the rest as cut.
    fn keep(&mut self, bytes: &[u8]) {
        let room = MAX_OUTPUT_BYTES.saturating_sub(self.bytes.len());
        let keep = bytes.len().min(room);
        self.bytes
            .extend_from_slice(bytes.get(..keep).unwrap_or_default());
        if keep < bytes.len() {
            self.truncated = true;
        }
    }
}

/// Whether the program has exited, without reaping it (`WNOWAIT`: its id keeps naming it and
/// its group).
fn has_exited(pid: Pid) -> bool {
    loop {
        match rustix::process::waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT,
        ) {
            Ok(Some(_)) => return true,
            Ok(None) => return false,
            Err(e) if e == rustix::io::Errno::INTR => continue,
            // Not our child any more (cannot happen: only this thread waits for it).
            Err(_) => return true,
        }
    }
}

/// SIGKILL to the program's process group (which may already be empty), and to the program
/// itself, should it have moved to another group: `child.wait()` then returns. Not yet reaped,
/// its id cannot name another process.
fn stop(pid: Pid) {
    let _ = rustix::process::kill_process_group(pid, Signal::KILL);
    let _ = rustix::process::kill_process(pid, Signal::KILL);
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

/// The file run_command runs for `program`, or why it will not: it must be allowed, found (on
/// `search`, the PATH, for a bare name), and reached without passing through an allowed
/// directory (`roots`, canonical): a file there, or a link there on the way to it, can be
/// rewritten by the file tools, so running it would run whatever was written.
fn resolve_program(
    program: &str,
    allowed: &[String],
    roots: &[PathBuf],
    search: &OsStr,
) -> Result<PathBuf, ToolError> {
    match allowed_target(program, allowed) {
        None => Err(not_allowed_program(program, allowed)),
        Some(Target::File(path)) => {
            if !is_executable(&path) {
                return Err(failed(format!(
                    "`{program}` is allowed, but {} is not an executable file; ask the user to \
                     fix its entry in `allowed_commands` (airun.toml)",
                    path.display()
                )));
            }
            refuse_inside_roots(program, &path, true, roots)?;
            Ok(path)
        }
        Some(Target::OnPath(name)) => {
            let path = find_on_path(&name, search).ok_or_else(|| {
                failed(format!(
                    "`{name}` is allowed, but no executable `{name}` is on PATH ({}); it may not \
                     be installed here (`which` looks a program up)",
                    search.to_string_lossy()
                ))
            })?;
            refuse_inside_roots(program, &path, false, roots)?;
            Ok(path)
        }
    }
}

/// The most symbolic links followed from a program's path to its file (as the kernel does).
const MAX_LINK_HOPS: usize = 40;

/// Every place on the way from `file` to the file it names: `file` with its directory's links
/// resolved, then each symbolic link's target the same way, ending with the real file.
fn link_hops(file: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut hops = Vec::new();
    let mut at = file.to_path_buf();
    for _ in 0..MAX_LINK_HOPS {
        let here = match (at.parent(), at.file_name()) {
            (Some(dir), Some(name)) if !dir.as_os_str().is_empty() => {
                std::fs::canonicalize(dir)?.join(name)
            }
            _ => std::fs::canonicalize(&at)?,
        };
        hops.push(here.clone());
        if !std::fs::symlink_metadata(&here)?.file_type().is_symlink() {
            return Ok(hops);
        }
        let target = std::fs::read_link(&here)?;
        at = match here.parent() {
            Some(dir) if target.is_relative() => dir.join(target),
            _ => target,
        };
    }
    Err(std::io::Error::other(format!(
        "more than {MAX_LINK_HOPS} symbolic links lead from it to a file"
    )))
}

/// The allowed directory (canonical) `path` (canonical) lies in, if any.
fn root_holding<'a>(path: &Path, roots: &'a [PathBuf]) -> Option<&'a Path> {
    roots
        .iter()
        .find(|r| path.starts_with(r))
        .map(PathBuf::as_path)
}

/// Refuses to run `file` when it, its directory or a link on the way to it lies inside an
/// allowed directory: the model can write there, so it could put any code under an allowed
/// name. `listed`: the path is an `allowed_commands` entry (else it was found on PATH).
fn refuse_inside_roots(
    program: &str,
    file: &Path,
    listed: bool,
    roots: &[PathBuf],
) -> Result<(), ToolError> {
    let hops = link_hops(file).map_err(|e| {
        failed(format!(
            "`{program}`: cannot tell where {} leads ({e}), so it is not run",
            file.display()
        ))
    })?;
    let Some((hop, root)) = hops
        .iter()
        .find_map(|h| root_holding(h, roots).map(|r| (h, r)))
    else {
        return Ok(());
    };
    let how = if listed {
        format!("is listed in `allowed_commands` as {}", file.display())
    } else {
        format!(
            "is found on the server's PATH at {} (PATH directory {})",
            file.display(),
            file.parent().unwrap_or(file).display()
        )
    };
    let through = if hop.as_path() == file {
        String::new()
    } else {
        format!(" (through {})", hop.display())
    };
    Err(ToolError::NotAllowed {
        message: format!(
            "`{program}` {how}, which is inside the allowed directory {}{through}: files there \
             can be rewritten through the file tools, so a program there could be anything and \
             is not run. Ask the user to install it outside the allowed directories (or take \
             that directory off the server's PATH) and, if needed, to list its absolute path \
             there in `allowed_commands` (airun.toml).",
            root.display()
        ),
    })
}

/// The allowed directories with every link resolved (one that cannot be resolved holds
/// nothing and is left out).
fn canonical_roots(fs: &Fs) -> Vec<PathBuf> {
    fs.roots()
        .into_iter()
        .filter_map(|r| std::fs::canonicalize(r).ok())
        .collect()
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

/// The first executable `name` in a directory of `search` (a PATH). Relative entries (they
/// would name the server's working directory) are never used.
fn find_on_path(name: &str, search: &OsStr) -> Option<PathBuf> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return None;
    }
    std::env::split_paths(search)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// The PATH a program gets: the server's directories that exist, are absolute and are not
/// inside an allowed directory (what the program starts by name is not something the model
/// wrote either).
fn child_path(search: &OsStr, roots: &[PathBuf]) -> OsString {
    let keep = |search: &OsStr| -> Vec<PathBuf> {
        std::env::split_paths(search)
            .filter(|dir| dir.is_absolute())
            .filter(|dir| {
                std::fs::canonicalize(dir).is_ok_and(|real| root_holding(&real, roots).is_none())
            })
            .collect()
    };
    let mut dirs = keep(search);
    if dirs.is_empty() {
        dirs = keep(OsStr::new(DEFAULT_PATH));
    }
    match std::env::join_paths(dirs) {
        Ok(p) if !p.is_empty() => p,
        // No directory at all: nothing is found by name (an empty PATH would mean the working
        // directory to some shells).
        _ => OsString::from("/nonexistent"),
    }
}

/// A regular file (links followed) someone may execute.
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Variables a call's `env` may not set, compared without regard to case (`*` ends a prefix or
/// begins a suffix): each makes common programs load or run other code — the dynamic loader's (`LD_*`,
/// `DYLD_*`), the C library's (`GCONV_PATH`, `LOCPATH`, `MALLOC_*`, `HOSTALIASES`), shells'
/// startup files and hooks (`BASH_ENV`, `ENV`, `PS4`, `PROMPT_COMMAND`, `IFS`, …), interpreters'
/// module paths and options (Python, Node, Perl, Ruby, Lua, the JVM), git's and ssh's commands
/// and configuration (`GIT_*`, `SSH_*`), the editors, pagers and browsers programs start, and
/// `HOME`/`XDG_CONFIG_HOME` (where configuration, and the commands in it, is read from). By
/// their shape: every `…PATH`, `…_HOME`, `…_CONF`, `…_CONFIG`, `…_CONFIG_FILE`, `…_OPTIONS`,
/// `…_OPTS`, `…PAGER` and `…EDITOR` names where a program finds code or configuration that can
/// run code (`OPENSSL_CONF` loads a module, `KUBECONFIG` and `AWS_CONFIG_FILE` run credential
/// helpers, `JAVA_HOME` picks the java that runs). By tool: `PYTHON*` (`PYTHONUSERBASE`'s `.pth`
/// files run), `LESS*` (`LESSOPEN` runs a command), `MAN*`, `OPENSSL_*`, cargo's and rustc's,
/// npm's, yarn's, Ruby's gems and bundler's, Go's `GOFLAGS` (`-toolexec`), make's, the compiler
/// a build runs (`CC`, `CXX`), `SHELL`, vim's startup commands, `GLIBC_TUNABLES`, `TERMINFO`,
/// compilers' flags (`…FLAGS`: `RUSTFLAGS=-C linker=…`), pytest's, Jupyter's, .NET's start-up
/// hooks, PHP's and R's start-up files, pip's. A few a pattern takes are harmless and allowed
/// ([`HARMLESS_ENV`]: `PYTHONUNBUFFERED`, `CARGO_TERM_COLOR` …).
/// `PATH` is refused too (the program gets the server's). A denylist cannot be complete:
/// allowing a program still allows whatever it does.
const REFUSED_ENV: &[&str] = &[
    "PATH",
    "LD_*",
    "DYLD_*",
    "MALLOC_*",
    "GCONV_PATH",
    "LOCPATH",
    "HOSTALIASES",
    "BASH_ENV",
    "ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "IFS",
    "ZDOTDIR",
    "NODE_OPTIONS",
    "NODE_PATH",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PYTHONINSPECT",
    "PYTHONWARNINGS",
    "PERL5OPT",
    "PERL5LIB",
    "PERLLIB",
    "PERL5DB",
    "RUBYOPT",
    "RUBYLIB",
    "LUA_INIT*",
    "LUA_PATH*",
    "LUA_CPATH*",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    "GIT_*",
    "SSH_*",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "BROWSER",
    "HOME",
    "XDG_CONFIG_HOME",
    "*PATH",
    "*_HOME",
    "*_CONF",
    "*_CONFIG",
    "*_CONFIG_FILE",
    "*_OPTIONS",
    "*_OPTS",
    "*PAGER",
    "*EDITOR",
    "PYTHON*",
    "PERL*",
    "RUBY*",
    "LESS*",
    "MANPAGER",
    "MANOPT",
    "MANROFFOPT",
    "MANSECT",
    "OPENSSL_*",
    "RUSTC*",
    "RUSTDOC*",
    "CARGO*",
    "NPM_CONFIG_*",
    "YARN_*",
    "GEM_*",
    "BUNDLE_*",
    "GOFLAGS",
    "GOENV",
    "GOROOT",
    "GOTOOLCHAIN",
    "CC",
    "CXX",
    "CPP",
    "MAKEFLAGS",
    "MAKEFILES",
    "SHELL",
    "EXINIT",
    "VIMINIT",
    "MYVIMRC",
    "KUBECONFIG",
    "WGETRC",
    "CURL_HOME",
    "INPUTRC",
    "NLSPATH",
    "TCLLIBPATH",
    "TCL_LIBRARY",
    "GLIBC_TUNABLES",
    "TERMINFO",
    "TERMINFO_DIRS",
    "*FLAGS",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "IPYTHONDIR",
    "JUPYTER_*",
    "DOTNET_STARTUP_HOOKS",
    "DOTNET_ADDITIONAL_DEPS",
    "PHPRC",
    "PHP_INI_SCAN_DIR",
    "R_PROFILE*",
    "R_ENVIRON*",
    "PIP_*",
];

/// Variables a [`REFUSED_ENV`] pattern takes that change nothing a program runs: how Python
/// buffers and encodes, how cargo colours and parallelises.
const HARMLESS_ENV: &[&str] = &[
    "PYTHONUNBUFFERED",
    "PYTHONIOENCODING",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONHASHSEED",
    "PYTHONUTF8",
    "PYTHONFAULTHANDLER",
    "CARGO_TERM_COLOR",
    "CARGO_TERM_VERBOSE",
    "CARGO_TERM_PROGRESS_WHEN",
    "CARGO_INCREMENTAL",
    "CARGO_BUILD_JOBS",
];

/// The [`REFUSED_ENV`] entry `name` falls under, if any.
fn refused_env(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    if HARMLESS_ENV.contains(&upper.as_str()) {
        return None;
    }
    REFUSED_ENV.iter().copied().find(|entry| {
        if let Some(prefix) = entry.strip_suffix('*') {
            upper.starts_with(prefix)
        } else if let Some(suffix) = entry.strip_prefix('*') {
            upper.ends_with(suffix)
        } else {
            upper == *entry
        }
    })
}

/// A name a call may set: `[A-Za-z_][A-Za-z0-9_]*`.
fn plain_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The program's environment: the server's harmless variables, its PATH without directories
/// inside the roots ([`child_path`]), TERM=dumb and NO_COLOR=1 (plain output reads better), then
/// the call's `env` — none of the [`REFUSED_ENV`].
fn child_env(
    extra: HashMap<String, String>,
    roots: &[PathBuf],
) -> Result<BTreeMap<String, OsString>, ToolError> {
    let mut env: BTreeMap<String, OsString> = BTreeMap::new();
    for name in PASSED_ENV {
        if let Some(v) = std::env::var_os(name) {
            env.insert((*name).to_string(), v);
        }
    }
    env.insert("PATH".into(), child_path(&search_path(), roots));
    env.insert("TERM".into(), "dumb".into());
    env.insert("NO_COLOR".into(), "1".into());
    for (name, value) in extra {
        check_env_name(&name, "env")?;
        if !plain_env_name(&name) {
            return Err(invalid(format!(
                "`env`: \"{}\" is not a variable name a program may be given: letters, digits \
                 and `_`, not starting with a digit",
                name.escape_debug()
            )));
        }
        if value.contains('\0') {
            return Err(invalid(format!(
                "`env.{name}` contains a NUL byte, which no environment variable can hold"
            )));
        }
        match refused_env(&name) {
            None => {}
            Some("PATH") => {
                return Err(ToolError::NotAllowed {
                    message: format!(
                        "`env.{name}` is not passed: the program gets the server's PATH (without \
                         the allowed directories), so a name it runs cannot lead to a file the \
                         model wrote. Call the program by its allowed name; to run one from \
                         elsewhere, ask the user to list its absolute path in `allowed_commands` \
                         (airun.toml)"
                    ),
                });
            }
            Some(entry) => {
                return Err(ToolError::NotAllowed {
                    message: format!(
                        "`env.{name}` is not passed: {entry} makes programs load or run other \
                         code (a startup file, a module path, a command to run), which would let \
                         an allowed program run anything. Leave it out, or pass the setting as \
                         the program's own argument"
                    ),
                });
            }
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
/// replaced, the values of options such as `--password`/`--token` too; at most 500 characters),
/// user id, memory in RAM and state. `filter` keeps those whose name or command line contains it
/// (ignoring case). Linux only.
#[capability(effects(read, process))]
pub fn list_processes(
    ctx: &Ctx,
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
    let all = read_processes(ctx.sandbox().redactor())?;
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
fn read_processes(redactor: &Redactor) -> Result<Vec<ProcessInfo>, ToolError> {
    let entries = std::fs::read_dir("/proc").map_err(|e| {
        failed(format!(
            "cannot list /proc ({e}); is the proc file system mounted?"
        ))
    })?;
    let mut out: Vec<ProcessInfo> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        // A process that ends meanwhile is left out.
        .filter_map(|pid| read_process(pid, redactor))
        .collect();
    out.sort_by_key(|p| p.pid);
    Ok(out)
}

#[cfg(not(target_os = "linux"))]
fn read_processes(_redactor: &Redactor) -> Result<Vec<ProcessInfo>, ToolError> {
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
        // Options' secret values masked, the rest redacted whole, then cut: a secret cut in two
        // would no longer look like one.
        let shown = mask_secret_args(&argv).join(" ");
        clip(&redactor.redact_text(&shown), MAX_COMMAND_CHARS)
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

/// Option names (without their dashes, any case, `_` taken as `-`) whose value is a secret: the
/// name itself or a name ending in `-` and it (`--db-password`, `--access-token`), but not one
/// starting with `no-`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // used by list_processes, on Linux
const SECRET_OPTIONS: &[&str] = &["password", "passwd", "token", "secret", "api-key", "apikey"];
/// Long options whose value is `user:password` (curl's and wget's style): the part after the
/// colon is masked. (`-u`, and curl's `-U`, are handled too.)
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // used by list_processes, on Linux
const CREDENTIAL_OPTIONS: &[&str] = &["user", "proxy-user"];

/// A command line with the values of secret options replaced by `[REDACTED]`: `--password=x`,
/// `--token x`, `--api-key=x` (see [`SECRET_OPTIONS`]), and the password in `-u user:pass`,
/// `-uuser:pass` or `--user=user:pass`. (mysql's `-pSECRET` is left to the redactor: `-p` means
/// too many other things.)
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // used by list_processes, on Linux
fn mask_secret_args(argv: &[String]) -> Vec<String> {
    enum Next {
        Keep,
        Whole,
        Password,
    }
    let mut out = Vec::with_capacity(argv.len());
    let mut next = Next::Keep;
    for arg in argv {
        match std::mem::replace(&mut next, Next::Keep) {
            Next::Whole => {
                out.push(aifirst::REDACTED.to_string());
                continue;
            }
            Next::Password => {
                out.push(mask_password(arg));
                continue;
            }
            Next::Keep => {}
        }
        if let Some(option) = arg.strip_prefix("--") {
            let (name, value) = match option.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (option, None),
            };
            let normal = name.to_ascii_lowercase().replace('_', "-");
            if secret_option(&normal) {
                match value {
                    Some(_) => out.push(format!("--{name}={}", aifirst::REDACTED)),
                    None => {
                        out.push(arg.clone());
                        next = Next::Whole;
                    }
                }
                continue;
            }
            if CREDENTIAL_OPTIONS.contains(&normal.as_str()) {
                match value {
                    Some(v) => out.push(format!("--{name}={}", mask_password(v))),
                    None => {
                        out.push(arg.clone());
                        next = Next::Password;
                    }
                }
                continue;
            }
        } else if arg == "-u" || arg == "-U" {
            out.push(arg.clone());
            next = Next::Password;
            continue;
        } else if let Some(v) = arg.strip_prefix("-u").or_else(|| arg.strip_prefix("-U")) {
            out.push(format!(
                "{}{}",
                arg.get(..2).unwrap_or_default(),
                mask_password(v)
            ));
            continue;
        }
        out.push(arg.clone());
    }
    out
}

/// Whether an option's name (lowercase, `-` for `_`, no leading dashes) says its value is a
/// secret.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // used by list_processes, on Linux
fn secret_option(name: &str) -> bool {
    !name.starts_with("no-")
        && SECRET_OPTIONS.iter().any(|word| {
            name == *word
                || name
                    .strip_suffix(word)
                    .is_some_and(|head| head.ends_with('-'))
        })
}

/// `user:password` → `user:[REDACTED]`; text without a colon as it is.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // used by list_processes, on Linux
fn mask_password(value: &str) -> String {
    match value.split_once(':') {
        Some((user, _)) => format!("{user}:{}", aifirst::REDACTED),
        None => value.to_string(),
    }
}

/// Whether the operator's redaction rules (their secret keys, patterns and values, on top of the
/// built-in ones) would hide something in the variable `name` = `value`.
fn holds_secret(redactor: &Redactor, name: &str, value: &str) -> bool {
    let pair = serde_json::json!({ "name": name, "value": value });
    redactor.redact(&pair) != pair
}

/// Read one environment variable of the server. The value is withheld (`[REDACTED]`,
/// `redacted: true`) when the name says it is a secret (`…_TOKEN`, `…_PASSWORD`, `…_API_KEY`, …)
/// or the value looks like one (an API token, a URL with a password, a secret the user
/// configured). `value` is absent when the variable is not set.
#[capability(effects(read, environment))]
pub fn get_env(
    ctx: &Ctx,
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
    let secret =
        aifirst::is_secret_key(&name) || holds_secret(ctx.sandbox().redactor(), &name, &value);
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
/// whether run_command may run it (it is in airun.toml `allowed_commands`, and neither it nor
/// a link to it lies inside an allowed directory).
#[capability(effects(read))]
pub fn which(
    ctx: &Ctx,
    /// The program's name, e.g. `python3` (or an absolute path).
    program: String,
) -> Result<ProgramLocation, ToolError> {
    check_text(&program, "program")?;
    let commands = ctx.sandbox().commands();
    let search = search_path();
    let target = allowed_target(&program, commands);
    let path = match &target {
        Some(Target::File(p)) => is_executable(p).then(|| p.clone()),
        Some(Target::OnPath(name)) => find_on_path(name, &search),
        None if program.starts_with('/') => {
            let p = PathBuf::from(&program);
            is_executable(&p).then_some(p)
        }
        None => find_on_path(&program, &search),
    };
    // Allowed but refused where it is (inside an allowed directory): run_command would not
    // run it. Allowed but not installed stays allowed.
    let refused = target.is_some()
        && matches!(
            resolve_program(&program, commands, &canonical_roots(ctx.fs()), &search),
            Err(ToolError::NotAllowed { .. })
        );
    Ok(ProgramLocation {
        path: path.map(|p| p.display().to_string()),
        allowed: target.is_some() && !refused,
        program,
    })
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

    fn env_of(name: &str) -> Result<BTreeMap<String, OsString>, ToolError> {
        let mut env = HashMap::new();
        env.insert(name.to_string(), "x".to_string());
        child_env(env, &[])
    }

    #[test]
    fn variables_that_run_other_code_are_refused() {
        for name in [
            "LD_PRELOAD",
            "ld_library_path",
            "DYLD_INSERT_LIBRARIES",
            "PATH",
            "Path",
            "BASH_ENV",
            "ENV",
            "PS4",
            "PROMPT_COMMAND",
            "IFS",
            "NODE_OPTIONS",
            "PYTHONPATH",
            "PERL5OPT",
            "RUBYOPT",
            "GIT_SSH_COMMAND",
            "GIT_CONFIG_GLOBAL",
            "SSH_ASKPASS",
            "JAVA_TOOL_OPTIONS",
            "_JAVA_OPTIONS",
            "MALLOC_CHECK_",
            "GCONV_PATH",
            // Found by a fault probe: each made an allowed program run other code.
            "OPENSSL_CONF",
            "OPENSSL_ENGINES",
            "LESSOPEN",
            "lessclose",
            "MANPAGER",
            "PYTHONUSERBASE",
            "TCLLIBPATH",
            "WGETRC",
            "CURL_HOME",
            "NLSPATH",
            "GLIBC_TUNABLES",
            "RUSTC_WRAPPER",
            "CARGO_BUILD_RUSTC",
            "KUBECONFIG",
            "AWS_CONFIG_FILE",
            "DOCKER_CONFIG",
            "JAVA_HOME",
            "GOFLAGS",
            "NPM_CONFIG_SCRIPT_SHELL",
            "SHELL",
            "MAVEN_OPTS",
            // Found by review: compiler and test-runner flags, interpreters' start-up files.
            "RUSTFLAGS",
            "CFLAGS",
            "LDFLAGS",
            "CGO_LDFLAGS",
            "PYTEST_ADDOPTS",
            "PYTEST_PLUGINS",
            "DOTNET_STARTUP_HOOKS",
            "PHPRC",
            "R_PROFILE_USER",
            "PIP_INDEX_URL",
            "JUPYTER_CONFIG_DIR",
        ] {
            assert!(
                matches!(env_of(name), Err(ToolError::NotAllowed { .. })),
                "{name} was accepted"
            );
        }
        let Err(e) = env_of("PATH") else {
            panic!("PATH was accepted")
        };
        assert!(e.to_string().contains("allowed_commands"), "{e}");
        for name in ["A=B", "1X", "A-B", "A B", "É"] {
            assert!(
                matches!(env_of(name), Err(ToolError::InvalidArguments { .. })),
                "{name} was accepted"
            );
        }
        for name in [
            "GREETING",
            "NODE_ENV",
            "_x1",
            "RUST_LOG",
            "PATHS_TO_SCAN",
            "PYTHONUNBUFFERED",
            "pythonioencoding",
            "CARGO_TERM_COLOR",
            "MANIFEST_DIR",
            "MANAGER_URL",
        ] {
            let env = env_of(name).unwrap();
            assert_eq!(env.get(name).map(|v| v.as_os_str()), Some(OsStr::new("x")));
        }
        let env = child_env(HashMap::new(), &[]).unwrap();
        assert_eq!(
            env.get("TERM").map(|v| v.as_os_str()),
            Some(OsStr::new("dumb"))
        );
        assert!(env.contains_key("PATH"));
    }

    fn executable(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "#!/bin/sh\necho hi\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn a_program_inside_a_root_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let root = base.join("root");
        let outside = base.join("outside");
        executable(&root.join("bin/hello"));
        executable(&outside.join("bin/tool"));
        executable(&outside.join("bin/hello"));
        // Outside, but a link into the root: what runs is the root's file.
        std::os::unix::fs::symlink(root.join("bin/hello"), outside.join("bin/sneaky")).unwrap();
        // A link inside the root on the way to a file outside: the model can re-point it.
        std::os::unix::fs::symlink(root.join("relay"), outside.join("bin/relayed")).unwrap();
        std::os::unix::fs::symlink(outside.join("bin/tool"), root.join("relay")).unwrap();
        let roots = vec![root.clone()];
        let allowed: Vec<String> = ["hello", "tool", "sneaky", "relayed"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let refused = |program: &str, search: &OsStr, allowed: &[String]| match resolve_program(
            program, allowed, &roots, search,
        ) {
            Err(ToolError::NotAllowed { message }) => message,
            other => panic!("{program}: {other:?}"),
        };

        // A PATH directory inside the root comes first: refused, not skipped.
        let search = std::env::join_paths([root.join("bin"), outside.join("bin")]).unwrap();
        let m = refused("hello", &search, &allowed);
        assert!(
            m.contains("inside the allowed directory") && m.contains("PATH"),
            "{m}"
        );
        // The same name found outside first runs.
        let search = std::env::join_paths([outside.join("bin"), root.join("bin")]).unwrap();
        assert_eq!(
            resolve_program("hello", &allowed, &roots, &search).unwrap(),
            outside.join("bin/hello")
        );
        assert_eq!(
            resolve_program("tool", &allowed, &roots, &search).unwrap(),
            outside.join("bin/tool")
        );
        refused("sneaky", &search, &allowed);
        let m = refused("relayed", &search, &allowed);
        assert!(m.contains("through"), "{m}");

        // Listed by an absolute path inside the root: refused, by path or by name.
        let listed = vec![root.join("bin/hello").display().to_string()];
        let m = refused(&listed[0], &search, &listed);
        assert!(m.contains("allowed_commands"), "{m}");
        refused("hello", &search, &listed);

        // A relative PATH directory is never used.
        let e = resolve_program("tool", &allowed, &roots, OsStr::new("bin")).unwrap_err();
        assert!(matches!(e, ToolError::Handler { .. }), "{e:?}");

        // The program's own PATH leaves out the directories inside the roots.
        let search = std::env::join_paths([
            root.join("bin"),
            outside.join("bin"),
            PathBuf::from("relative"),
        ])
        .unwrap();
        assert_eq!(
            child_path(&search, &roots),
            outside.join("bin").into_os_string()
        );

        assert_eq!(
            root_holding(&root.join("bin/x"), &roots),
            Some(root.as_path())
        );
        assert_eq!(root_holding(&base.join("rootless/x"), &roots), None);
    }

    fn masked(line: &str) -> String {
        let argv: Vec<String> = line.split(' ').map(str::to_string).collect();
        mask_secret_args(&argv).join(" ")
    }

    #[test]
    fn secret_options_are_masked_in_command_lines() {
        assert_eq!(masked("app --password=x"), "app --password=[REDACTED]");
        assert_eq!(
            masked("app --password x -v"),
            "app --password [REDACTED] -v"
        );
        assert_eq!(masked("app --passwd=x"), "app --passwd=[REDACTED]");
        assert_eq!(masked("app --token abc"), "app --token [REDACTED]");
        assert_eq!(masked("app --secret=s"), "app --secret=[REDACTED]");
        assert_eq!(masked("app --api-key=k"), "app --api-key=[REDACTED]");
        assert_eq!(masked("app --API_KEY=k"), "app --API_KEY=[REDACTED]");
        assert_eq!(masked("app --apikey k"), "app --apikey [REDACTED]");
        assert_eq!(
            masked("app --db-password=x"),
            "app --db-password=[REDACTED]"
        );
        assert_eq!(
            masked("app --github-token x"),
            "app --github-token [REDACTED]"
        );
        assert_eq!(
            masked("curl -u user:pass https://x"),
            "curl -u user:[REDACTED] https://x"
        );
        assert_eq!(masked("curl -uuser:pass"), "curl -uuser:[REDACTED]");
        assert_eq!(masked("wget --user=me:pw"), "wget --user=me:[REDACTED]");
        assert_eq!(masked("curl --user me:pw"), "curl --user me:[REDACTED]");
        // Nothing secret: unchanged.
        for line in [
            "app --no-password db",
            "app --tokenizer x",
            "sort -u file",
            "app --user=me",
            "app --secret-file /x",
        ] {
            assert_eq!(masked(line), line);
        }
    }

    #[test]
    fn configured_secrets_are_withheld_from_the_environment() {
        let r = Redactor::default().with_secret("s3cr3t-value-xyz");
        assert!(holds_secret(&r, "PLAIN", "s3cr3t-value-xyz"));
        assert!(!holds_secret(
            &Redactor::default(),
            "PLAIN",
            "s3cr3t-value-xyz"
        ));
        assert!(holds_secret(
            &Redactor::default().with_key("zorg"),
            "ZORG",
            "hello"
        ));
        assert!(!holds_secret(&r, "GREETING", "hello"));
    }

    #[test]
    fn clip_cuts_at_characters() {
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(clip("hi", 5), "hi");
    }
}
