//! The command line every capability binary shares.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use aifirst::audit::AuditLog;
use aifirst::{
    CallError, CallOptions, Engine, Policy, Redactor, Registry, Resolution, Rule, StepState,
    UndoOptions, UndoTarget,
};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use serde_json::{json, Value};

use crate::config::Config;
use crate::exit;
use crate::mcp::{McpServer, ServeOptions};
use crate::output::{describe, first_line, table, undo_summary};

/// Who the binary is: its name in help and in MCP `initialize`.
#[derive(Debug, Clone, Copy)]
pub struct App {
    pub name: &'static str,
    pub version: &'static str,
    pub about: &'static str,
}

const LONG_ABOUT: &str = "Every call goes through the engine: its arguments are validated against \
the capability's schema, the policy decides whether it may run, and it is written to the undo \
journal and the tamper-evident audit log in the state directory.";

/// Call, undo, audit and serve the capabilities linked into this binary.
///
/// Every call goes through the engine: its arguments are validated against the capability's
/// schema, the policy decides whether it may run, and it is written to the undo journal and the
/// tamper-evident audit log in the state directory.
#[derive(Debug, Parser)]
#[command(
    name = "airun",
    version,
    after_help = "Configuration: ./airun.toml (or --config) sets the policy, state directory, session, \
meta tools, redaction and allowed hosts; flags win over AIFIRST_STATE_DIR / AIFIRST_SESSION, which win \
over the file.\n\nExit codes: 0 done; 1 the call, undo or check failed or was refused; 2 the command \
line, configuration or arguments were wrong."
)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Global {
    /// Configuration file [default: ./airun.toml when it exists]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where the undo journal and audit log live [env: AIFIRST_STATE_DIR] [default: .aifirst, or
    /// ~/.local/state/aifirst/NAME when started in /]
    #[arg(long, global = true, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The session calls are journaled under; undo and history work per session [env:
    /// AIFIRST_SESSION] [default: default]
    #[arg(long, global = true, value_name = "NAME")]
    session: Option<String>,
    /// Print JSON on stdout instead of text
    #[arg(long, global = true)]
    json: bool,
    /// Allow this capability whatever its effects (repeatable)
    #[arg(long, global = true, value_name = "CAPABILITY")]
    allow: Vec<String>,
    /// Refuse this capability (repeatable)
    #[arg(long, global = true, value_name = "CAPABILITY")]
    deny: Vec<String>,
    /// Let capabilities that cannot be undone run
    #[arg(long, global = true)]
    allow_irreversible: bool,
    /// Confirm every call the policy asks to confirm
    #[arg(long, short = 'y', global = true)]
    yes: bool,
    /// A directory file capabilities may touch (repeatable; adds to `allowed_roots` in
    /// airun.toml) [env: AIFIRST_ROOTS, separated like PATH]. With none, no file access.
    #[arg(long = "root", global = true, value_name = "DIR")]
    roots: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the capabilities: name, effects, how each is undone
    List {
        /// Only capabilities with this effect (read, create, update, delete, network, …)
        #[arg(long, value_name = "EFFECT")]
        effect: Option<String>,
    },
    /// Show one capability: description, effects, annotations, undo plan and schemas
    Describe {
        /// The capability's name
        name: String,
    },
    /// Call a capability
    Call {
        /// The capability's name
        name: String,
        /// Arguments as a JSON object, or @FILE to read them from a file
        #[arg(long, value_name = "JSON|@FILE", default_value = "{}")]
        args: String,
    },
    /// Undo the last N calls of the session (default 1), or every call after a checkpoint
    #[command(
        after_help = "Each compensation runs exactly once: the step is claimed before it runs, \
and two undos of one session take turns. A step a crash left half-done (`intended`: the call was \
interrupted; `undoing`: its compensation was) stops the undo until you say what happened with \
--resolve; --skip gives up on a step so the ones below it can be undone.\n\nExamples:\n  \
undo --dry-run 3          show the compensations of the last 3 steps, run nothing\n  \
undo --to before-refactor\n  undo --resolve 12 done     step 12's call did take effect\n  \
undo --skip 12            give up on step 12"
    )]
    Undo {
        /// How many steps to undo
        #[arg(conflicts_with_all = ["to", "skip", "resolve"])]
        steps: Option<usize>,
        /// Undo every step after this checkpoint
        #[arg(long, value_name = "CHECKPOINT", conflicts_with_all = ["skip", "resolve"])]
        to: Option<String>,
        /// Show each compensation (capability and resolved arguments) and run nothing
        #[arg(long)]
        dry_run: bool,
        /// Run a compensation even when its target no longer matches what the step left behind
        #[arg(long)]
        force: bool,
        /// Give up on undoing step N (audited): it is marked skipped and the steps below it can be undone
        #[arg(long, value_name = "N", conflicts_with = "resolve")]
        skip: Option<i64>,
        /// Settle step N left half-done by a crash: `done` (the call took effect, or the
        /// compensation did not), `undone` (the compensation took effect) or `skip`
        #[arg(long, num_args = 2, value_names = ["N", "done|undone|skip"])]
        resolve: Vec<String>,
    },
    /// Re-apply the last undone file changes (they were kept when undone), oldest first
    #[command(
        after_help = "Only steps undone from a file snapshot can be redone (their state \
after the call was kept), and only until the session makes a new call. A path changed since the \
undo stops the redo, naming it, unless --force.\n\nExamples:\n  redo            re-apply the \
last undone step\n  redo 3 --dry-run  show what re-applying 3 steps would write"
    )]
    Redo {
        /// How many undone steps to re-apply (default 1)
        steps: Option<usize>,
        /// Show the files each step would write back, run nothing
        #[arg(long)]
        dry_run: bool,
        /// Re-apply even over files changed since the undo
        #[arg(long)]
        force: bool,
    },
    /// The calls of the session, oldest first, with their undo state
    History,
    /// Mark the current point of the session so `undo --to NAME` can return to it
    Checkpoint {
        /// The checkpoint's name (1 to 128 characters, no control characters)
        name: String,
        /// Move a checkpoint of that name to the newest step (without it, an existing name is
        /// refused)
        #[arg(long = "move")]
        move_it: bool,
    },
    /// Verify, report on and export the audit log
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Serve the capabilities over MCP: stdio by default, streamable HTTP with --http
    #[command(
        after_help = "Claude Desktop, Claude Code and Cursor start the binary with `serve`; see docs/INTEGRATION_GUIDE.md."
    )]
    Serve {
        /// Serve streamable HTTP at this address, path /mcp: `8080` (= 127.0.0.1:8080) or
        /// `ADDR:PORT`. Loopback only unless --allow-remote; see docs/INTEGRATION_GUIDE.md for
        /// the threat model
        #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
        http: Option<SocketAddr>,
        /// Let --http bind to a non-loopback address. Every request must then carry
        /// `Authorization: Bearer TOKEN`: AIFIRST_HTTP_TOKEN, or a token generated and printed
        /// once on stderr
        #[arg(long)]
        allow_remote: bool,
        /// Do not offer the undo, redo, history and checkpoint tools
        #[arg(long)]
        no_meta_tools: bool,
        /// How capabilities are offered: `all` (a tool each), `dynamic` (three tools —
        /// search_capabilities, describe_capability, call_capability — so an API of thousands of
        /// operations fits in any client's context; calls go through policy, undo and audit
        /// exactly as direct ones) or `auto`: dynamic above 128 capabilities
        /// (`[mcp] dynamic_above`). Default: `[mcp] toolset`, else auto
        #[arg(long, value_name = "MODE", value_parser = ["all", "dynamic", "auto"])]
        toolset: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain and cross-check it with the journal; names the first record that
    /// was modified, deleted or reordered, a missing tail or file, and steps without records
    Verify {
        /// A head printed earlier by `audit head` (and kept elsewhere): it must still be in the chain
        #[arg(long, value_name = "HASH")]
        expect_head: Option<String>,
    },
    /// Print the newest record's number and hash, to keep somewhere else as a witness
    Head,
    /// Write a self-contained HTML compliance report
    Report {
        /// The HTML file to write
        #[arg(long, value_name = "FILE")]
        html: PathBuf,
        /// Only records since this time (RFC 3339, e.g. 2026-11-24T00:00:00Z)
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
    },
    /// Export records as JSON lines with OpenTelemetry GenAI attribute names
    Export {
        /// JSON lines (the only format, and the default)
        #[arg(long)]
        jsonl: bool,
        /// Only records since this time (RFC 3339)
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Write to this file instead of stdout
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// A dry run that found a step the real run would stop at exits 1 (the plan says why), so a
/// script can tell before it runs.
fn would_stop(report: &aifirst::UndoReport, what: &str) -> Result<(), Fail> {
    match report.planned.iter().find(|p| p.blocked.is_some()) {
        Some(p) => Err(Fail::Failed(format!(
            "{what} would stop at step {} (the plan above says why); nothing was run",
            p.step
        ))),
        None => Ok(()),
    }
}

/// Why a command did not succeed, and with which exit code.
enum Fail {
    /// The command line, configuration or arguments were wrong (exit 2).
    Usage(String),
    /// The operation failed or was refused (exit 1).
    Failed(String),
    /// Failed (exit 1), and said so in the one JSON document `--json` already printed: the
    /// message goes to stderr only.
    Printed(String),
}

/// `--json`: the report with the failure (if any) in it, one document; the failure then only
/// goes to stderr.
fn print_report(
    json: bool,
    report: &aifirst::UndoReport,
    outcome: Result<(), Fail>,
) -> Result<(), Fail> {
    if !json {
        return outcome;
    }
    let mut v = crate::output::undo_report(report);
    match outcome {
        Ok(()) => {
            print_json(&v);
            Ok(())
        }
        Err(Fail::Failed(m) | Fail::Printed(m)) => {
            v["error"] = json!(m);
            v["exit_code"] = json!(exit::FAILED);
            print_json(&v);
            Err(Fail::Printed(m))
        }
        Err(other) => Err(other),
    }
}

impl From<CallError> for Fail {
    fn from(e: CallError) -> Fail {
        match e {
            CallError::Unknown(_)
            | CallError::InvalidArguments { .. }
            | CallError::NoCheckpoint(_) => Fail::Usage(e.to_string()),
            CallError::NeedsConfirmation(why) => Fail::Failed(format!(
                "needs confirmation: {why}; confirm this call with --yes, or allow it \
                 (--allow NAME, --allow-irreversible, or airun.toml)"
            )),
            CallError::Denied(why) => Fail::Failed(format!(
                "refused: {why} (on the command line: --allow NAME or --allow-irreversible)"
            )),
            other => Fail::Failed(other.to_string()),
        }
    }
}

/// `call --help`'s example, made from a capability this binary has: the binary's own ones before
/// the standard library's, a creating one first, its required arguments filled with placeholders
/// of their types.
fn call_example(bin: &str) -> String {
    let Ok(registry) = aifirst::Registry::new() else {
        return String::new();
    };
    let own = |d: &&aifirst::CapabilityDef| !d.location.module.starts_with("aifirst_stdlib");
    let creates = |d: &&aifirst::CapabilityDef| d.effects.contains(&aifirst::Effect::Create);
    let all: Vec<&aifirst::CapabilityDef> = registry.iter().collect();
    let pick = all
        .iter()
        .find(|d| own(d) && creates(d))
        .or_else(|| all.iter().find(|d| own(d)))
        .or_else(|| all.iter().find(|d| d.name == "write_file"))
        .or_else(|| all.first());
    let Some(def) = pick else {
        return format!("This {bin} has no capabilities linked in.");
    };
    let args = example_args(&def.input_schema());
    format!(
        "Example:\n  {bin} call {} --args '{}'\n\n`{bin} list` shows every capability; `{bin} describe NAME` its arguments.",
        def.name,
        args.replace('\'', "'\\''")
    )
}

/// The required properties of an input schema with a placeholder of each one's type (its
/// default, or first enum value, when it has one).
fn example_args(schema: &schemars::Schema) -> String {
    let v = schema.as_value();
    let mut out = serde_json::Map::new();
    let required = v["required"].as_array().cloned().unwrap_or_default();
    for name in required.iter().filter_map(Value::as_str) {
        let p = &v["properties"][name];
        let sample = if let Some(d) = p.get("default") {
            d.clone()
        } else if let Some(e) = p["enum"].as_array().and_then(|e| e.first()) {
            e.clone()
        } else {
            let ty = match &p["type"] {
                Value::String(t) => t.clone(),
                Value::Array(ts) => ts
                    .iter()
                    .filter_map(Value::as_str)
                    .find(|t| *t != "null")
                    .unwrap_or("string")
                    .to_string(),
                _ => "string".to_string(),
            };
            match ty.as_str() {
                "integer" | "number" => json!(1),
                "boolean" => json!(true),
                "array" => json!([]),
                "object" => json!({}),
                _ => json!("…"),
            }
        };
        out.insert(name.to_string(), sample);
    }
    Value::Object(out).to_string()
}

/// Runs the CLI with the process's arguments.
pub fn run(app: App) -> ExitCode {
    run_from(app, std::env::args_os())
}

/// Runs the CLI with these arguments (the first is the program name).
pub fn run_from<I, T>(app: App, args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let command = Cli::command()
        .name(app.name)
        .bin_name(app.name)
        .version(app.version)
        .about(app.about)
        .long_about(format!("{}\n\n{LONG_ABOUT}", app.about))
        .mut_subcommand("call", |c| c.after_help(call_example(app.name)));
    let cli = match command
        .try_get_matches_from(args)
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(exit::USAGE));
        }
    };
    let json = cli.global.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    match runtime.block_on(execute(app, cli)) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(fail) => {
            let (code, message) = match fail {
                Fail::Usage(m) => (exit::USAGE, m),
                Fail::Failed(m) => (exit::FAILED, m),
                Fail::Printed(m) => {
                    eprintln!("error: {m}");
                    return ExitCode::from(exit::FAILED);
                }
            };
            if json {
                outln!("{}", json!({"error": message, "exit_code": code}));
            }
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

/// What the configuration, the environment and the flags settle on.
struct Settings {
    state_dir: PathBuf,
    session: String,
    /// The session was named by a flag or the environment (audit commands filter on it then).
    session_given: bool,
    policy: Policy,
    redactor: Redactor,
    meta_tools: bool,
    /// The key of a keyed audit chain (`[audit] key_file`).
    audit_key: Option<Vec<u8>>,
    /// The session named by a flag, the environment or the file (MCP HTTP clients then share it).
    session_named: bool,
    /// `[mcp] shared_session`.
    shared_session: Option<String>,
    /// `allowed_roots`, `--root` and AIFIRST_ROOTS.
    roots: Vec<PathBuf>,
    /// `allowed_hosts`.
    hosts: Vec<String>,
    /// `allowed_commands`.
    commands: Vec<String>,
    /// `max_fetch_bytes`, `max_response_bytes`, `max_download_bytes`.
    net_limits: aifirst::NetLimits,
    /// `[http.headers]`, expanded; an error (a variable not set) stops only the commands that
    /// may send a request (`sandbox`), not `audit`, `history` or `list`.
    headers: Result<Vec<(String, String)>, String>,
    /// `[mcp]`: the HTTP server's limits.
    mcp: crate::config::Mcp,
    /// `max_snapshot_bytes`.
    snapshot_limit: u64,
}

/// Where state goes when nothing names a directory: `.aifirst` in the working directory, unless
/// that is `/` (desktop MCP clients start servers there, and it is not writable): then the user's
/// state directory, `$XDG_STATE_HOME/aifirst/NAME` or `~/.local/state/aifirst/NAME`.
fn default_state_dir(app: &str) -> PathBuf {
    let at_root = std::env::current_dir().is_ok_and(|d| d.parent().is_none());
    if !at_root {
        return PathBuf::from(".aifirst");
    }
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("XDG_STATE_HOME")
        .or_else(|| env("HOME").map(|h| h.join(".local/state")))
        .map(|base| base.join("aifirst").join(app))
        .unwrap_or_else(|| PathBuf::from(".aifirst"))
}

fn settle(g: &Global, app: &str) -> Result<Settings, Fail> {
    let (config, path) =
        Config::load(g.config.as_deref()).map_err(|e| Fail::Usage(e.to_string()))?;
    let redactor = config
        .redactor(
            path.as_deref()
                .unwrap_or(Path::new(crate::config::DEFAULT_FILE)),
        )
        .map_err(|e| Fail::Usage(e.to_string()))?;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let state_dir = g
        .state_dir
        .clone()
        .or_else(|| env("AIFIRST_STATE_DIR").map(PathBuf::from))
        .or(config.state_dir.clone())
        .unwrap_or_else(|| default_state_dir(app));
    let given = g.session.clone().or_else(|| env("AIFIRST_SESSION"));
    let session_given = given.is_some();
    let session_named = session_given || config.session.is_some();
    let session = given
        .or(config.session.clone())
        .unwrap_or_else(|| "default".to_string());
    let audit_key = match &config.audit.key_file {
        Some(k) => Some(
            aifirst::audit::read_key_file(k, &state_dir)
                .map_err(|e| Fail::Usage(format!("airun.toml [audit] key_file: {e}")))?,
        ),
        None => None,
    };
    let mut policy = config.policy.clone();
    for name in &g.allow {
        policy.capabilities.insert(name.clone(), Rule::Allow);
    }
    for name in &g.deny {
        policy.capabilities.insert(name.clone(), Rule::Deny);
    }
    policy.allow_irreversible |= g.allow_irreversible;
    let mut roots = config.allowed_roots.clone();
    roots.extend(g.roots.iter().cloned());
    if let Some(list) = std::env::var_os("AIFIRST_ROOTS").filter(|v| !v.is_empty()) {
        roots.extend(std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()));
    }
    let headers = config.headers().map_err(|e| format!("airun.toml {e}"));
    let net_limits = config
        .net_limits()
        .map_err(|e| Fail::Usage(format!("airun.toml: {e}")))?;
    aifirst::python::configure(aifirst::python::Settings {
        interpreter: config.python.interpreter.clone(),
        timeout: config
            .python
            .timeout_secs
            .map(std::time::Duration::from_secs_f64),
    });
    // A root that is not a directory is a configuration error for every command. One that
    // does not exist stops `call` and `serve` (see `sandbox`), not the commands that read or
    // undo the journal: a call may have removed it, and its undo puts it back.
    aifirst::fs::Fs::new_allowing_missing(&roots)
        .map_err(|e| Fail::Usage(format!("{e} (from allowed_roots, --root or AIFIRST_ROOTS)")))?;
    Ok(Settings {
        state_dir,
        session,
        session_given,
        policy,
        redactor,
        meta_tools: config.meta_tools.enabled,
        audit_key,
        session_named,
        shared_session: config.mcp.shared_session.clone(),
        roots,
        hosts: config.allowed_hosts.clone(),
        commands: config.allowed_commands.clone(),
        net_limits,
        headers,
        mcp: config.mcp.clone(),
        snapshot_limit: config
            .max_snapshot_bytes
            .unwrap_or(aifirst::DEFAULT_SNAPSHOT_LIMIT),
    })
}

/// `sends`: the command may send an HTTP request (a call, an undo's compensation, serving), so
/// a configured header it cannot fill is an error; `history` and `checkpoint` send none.
/// `journal_only`: the command only reads or undoes the journal (`undo`, `redo`, `history`,
/// `checkpoint`), so a root that is not there is kept as one to put back (a call may have
/// removed it); a call or a server stops at once on a root that is not there (mistyped).
fn sandbox(s: &Settings, sends: bool, journal_only: bool) -> Result<aifirst::Sandbox, Fail> {
    let headers = match &s.headers {
        Ok(h) => h.clone(),
        Err(e) if sends => return Err(Fail::Usage(e.clone())),
        Err(_) => Vec::new(),
    };
    let sandbox = if journal_only {
        aifirst::Sandbox::new().with_roots_allowing_missing(&s.roots)
    } else {
        aifirst::Sandbox::new().with_roots(&s.roots)
    };
    sandbox
        .map_err(|e| Fail::Usage(format!("{e} (from allowed_roots, --root or AIFIRST_ROOTS)")))
        .map(|sb| {
            sb.with_net(aifirst::http::Net::new(s.hosts.clone(), headers))
                .with_net_limits(s.net_limits)
                .with_commands(s.commands.clone())
                .with_redactor(s.redactor.clone())
        })
}

fn registry() -> Result<Registry, Fail> {
    Registry::new().map_err(|e| Fail::Failed(e.to_string()))
}

fn open_audit(s: &Settings) -> Result<AuditLog, Fail> {
    AuditLog::open_keyed(&s.state_dir, s.redactor.clone(), s.audit_key.clone())
        .map_err(|e| Fail::Failed(e.to_string()))
}

fn open_engine(s: &Settings) -> Result<Engine, Fail> {
    engine_for(s, true, false)
}

/// The engine for `undo` and `redo`: a root that is not there may be one they put back.
fn open_engine_undoing(s: &Settings) -> Result<Engine, Fail> {
    engine_for(s, true, true)
}

/// The engine for a command that sends no request and runs no call ([`sandbox`]).
fn open_engine_quiet(s: &Settings) -> Result<Engine, Fail> {
    engine_for(s, false, true)
}

fn engine_for(s: &Settings, sends: bool, journal_only: bool) -> Result<Engine, Fail> {
    let audit = open_audit(s)?;
    let engine = Engine::open(registry()?, s.policy.clone(), &s.state_dir)
        .map_err(|e| Fail::Failed(e.to_string()))?;
    Ok(engine
        .with_redactor(s.redactor.clone())
        .with_sandbox(sandbox(s, sends, journal_only)?)
        .with_snapshot_limit(s.snapshot_limit)
        .with_recorder(Arc::new(audit)))
}

/// The files a dry run would write back or remove.
fn print_files(p: &aifirst::Planned) {
    for f in &p.files {
        if f.action == "remove" {
            outln!("  remove {} (the call created it)", f.path);
        } else {
            outln!("  restore {}: {}", f.path, f.to);
        }
    }
}

fn print_json(v: &Value) {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

async fn execute(app: App, cli: Cli) -> Result<(), Fail> {
    let g = &cli.global;
    let s = settle(g, app.name)?;
    match cli.command {
        Command::List { effect } => list(g.json, effect.as_deref()),
        Command::Describe { name } => {
            let reg = registry()?;
            let def = reg
                .get(&name)
                .ok_or_else(|| Fail::Usage(unknown(&reg, &name)))?;
            let d = describe(def);
            if g.json {
                print_json(&d);
            } else {
                let mut out = format!("{}\n\n{}\n\n", def.name, def.description);
                let effects: Vec<String> = def.effects.iter().map(ToString::to_string).collect();
                out.push_str(&format!("effects:      {}\n", effects.join(", ")));
                out.push_str(&format!("annotations:  {}\n", d["annotations"]));
                out.push_str(&format!("undo:         {}\n", undo_summary(def)));
                if let Some((confidence, evidence)) = crate::output::plan_confidence(def) {
                    out.push_str(&format!("confidence:   {}\n", confidence.as_str()));
                    for e in evidence {
                        out.push_str(&format!("  because     {e}\n"));
                    }
                }
                out.push_str(&format!("defined at:   {}\n", def.location));
                out.push_str(&format!(
                    "arguments:\n{}\n",
                    serde_json::to_string_pretty(&d["input_schema"]).unwrap_or_default()
                ));
                out!("{out}");
            }
            Ok(())
        }
        Command::Call { name, args } => {
            let args = read_args(&args)?;
            let engine = open_engine(&s)?;
            if engine.registry().get(&name).is_none() {
                return Err(Fail::Usage(unknown(engine.registry(), &name)));
            }
            let opts = CallOptions {
                confirmed: g.yes,
                client: Some(format!("{} cli", app.name)),
                ..CallOptions::default()
            };
            let v = engine.call(&s.session, &name, args, opts).await?;
            if g.json {
                outln!("{v}");
            } else {
                print_json(&v);
            }
            Ok(())
        }
        Command::Undo {
            steps,
            to,
            dry_run,
            force,
            skip,
            resolve,
        } => {
            let engine = open_engine_undoing(&s)?;
            let client = Some(format!("{} cli", app.name));
            if let Some(id) = skip {
                engine.skip(&s.session, id, client.as_deref()).await?;
                return done_line(
                    g.json,
                    json!({"skipped": id}),
                    &format!("skipped step {id}"),
                );
            }
            if let [n, how] = resolve.as_slice() {
                let id: i64 = n
                    .parse()
                    .map_err(|_| Fail::Usage(format!("--resolve: `{n}` is not a step number")))?;
                let how = match how.as_str() {
                    "done" => Resolution::Done,
                    "undone" => Resolution::Undone,
                    "skip" => Resolution::Skip,
                    other => {
                        return Err(Fail::Usage(format!(
                            "--resolve {id} {other}: say `done`, `undone` or `skip`"
                        )))
                    }
                };
                engine
                    .resolve(&s.session, id, how, client.as_deref())
                    .await?;
                let state = engine
                    .journal()
                    .step(id)
                    .ok()
                    .flatten()
                    .map(|st| st.state.as_str())
                    .unwrap_or("?");
                return done_line(
                    g.json,
                    json!({"resolved": id, "state": state}),
                    &format!("step {id} is now {state}"),
                );
            }
            let target = match &to {
                Some(cp) => UndoTarget::Checkpoint(cp.clone()),
                None => UndoTarget::Steps(steps.unwrap_or(1)),
            };
            let opts = UndoOptions {
                dry_run,
                force,
                client,
            };
            let report = engine.undo_with(&s.session, target, opts).await?;
            if g.json {
                // One document, with the outcome: `print_report` below.
            } else if dry_run {
                if report.planned.is_empty() {
                    outln!("nothing to undo in session `{}`", s.session);
                }
                for p in &report.planned {
                    outln!("step {} ({}, {}):", p.step, p.capability, p.state.as_str());
                    if p.compensations.is_empty() && p.files.is_empty() {
                        outln!("  nothing to run");
                    }
                    for c in &p.compensations {
                        outln!("  {}({})", c.capability, c.args);
                        if let Some(e) = &c.expect {
                            outln!(
                                "    after checking with {}({}) that it still finds {}",
                                e.read,
                                e.args,
                                json!(e.fields)
                            );
                        }
                    }
                    print_files(p);
                    if let Some(why) = &p.blocked {
                        outln!("  would stop here: {why}");
                    }
                }
            } else if report.undone.is_empty() && report.failed.is_none() {
                outln!("nothing to undo in session `{}`", s.session);
            } else {
                for id in &report.undone {
                    outln!("undone step {id}");
                }
            }
            let outcome = match &report.failed {
                Some((step, why)) => Err(Fail::Failed(format!(
                    "step {step} could not be undone: {why}"
                ))),
                None => would_stop(&report, "undo"),
            };
            print_report(g.json, &report, outcome)
        }
        Command::Redo {
            steps,
            dry_run,
            force,
        } => {
            let engine = open_engine_undoing(&s)?;
            let opts = UndoOptions {
                dry_run,
                force,
                client: Some(format!("{} cli", app.name)),
            };
            let report = engine.redo(&s.session, steps.unwrap_or(1), opts).await?;
            if g.json {
                // One document, with the outcome: `print_report` below.
            } else if dry_run {
                if report.planned.is_empty() {
                    outln!("nothing to redo in session `{}`", s.session);
                }
                for p in &report.planned {
                    outln!("step {} ({}, {}):", p.step, p.capability, p.state.as_str());
                    print_files(p);
                    if let Some(why) = &p.blocked {
                        outln!("  would stop here: {why}");
                    }
                }
            } else if report.redone.is_empty() && report.failed.is_none() {
                outln!(
                    "nothing to redo in session `{}` (redo re-applies undone steps until a new call is made)",
                    s.session
                );
            } else {
                for id in &report.redone {
                    outln!("redone step {id}");
                }
            }
            let outcome = match &report.failed {
                Some((step, why)) => Err(Fail::Failed(format!(
                    "step {step} could not be redone: {why}"
                ))),
                None => would_stop(&report, "redo"),
            };
            print_report(g.json, &report, outcome)
        }
        Command::History => {
            let engine = open_engine_quiet(&s)?;
            let steps = engine.history(&s.session)?;
            if g.json {
                print_json(&serde_json::to_value(&steps).unwrap_or(Value::Null));
            } else if steps.is_empty() {
                outln!("no calls in session `{}`", s.session);
            } else {
                let mut rows = vec![vec![
                    "STEP".to_string(),
                    "STATE".to_string(),
                    "CAPABILITY".to_string(),
                    "UNDO".to_string(),
                    "NOTE".to_string(),
                ]];
                for st in &steps {
                    rows.push(vec![
                        st.id.to_string(),
                        st.state.as_str().to_string(),
                        st.capability.clone(),
                        st.undo.kind().to_string(),
                        st.error
                            .as_deref()
                            .map(|e| first_line(e, 60))
                            .unwrap_or_default(),
                    ]);
                }
                out!("{}", table(&rows));
                // A step still `intended` or `undoing` is either running now in the process
                // that wrote it, or was left half-done by one that stopped.
                let (running, stuck): (Vec<&aifirst::Step>, Vec<&aifirst::Step>) = steps
                    .iter()
                    .filter(|st| matches!(st.state, StepState::Intended | StepState::Undoing))
                    .partition(|st| st.pid != 0 && aifirst::fs::process_running(st.pid));
                let ids = |v: &[&aifirst::Step]| {
                    v.iter()
                        .map(|st| st.id.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                if !running.is_empty() {
                    eprintln!(
                        "note: step(s) {} are being run now by another process (pid {}); wait for it",
                        ids(&running),
                        running
                            .iter()
                            .map(|st| st.pid.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                if !stuck.is_empty() {
                    eprintln!(
                        "note: step(s) {} were left half-done by a process that stopped; see `undo --help` (--resolve, --skip)",
                        ids(&stuck)
                    );
                }
            }
            Ok(())
        }
        Command::Checkpoint { name, move_it } => {
            let engine = open_engine_quiet(&s)?;
            let (step, was) = engine.checkpoint_with(&s.session, &name, move_it)?;
            if g.json {
                print_json(&crate::output::checkpoint(&name, step));
            } else {
                match was {
                    Some(at) if at != step => {
                        outln!(
                            "checkpoint `{name}` moved from after step {at} to after step {step}"
                        )
                    }
                    _ => outln!("checkpoint `{name}` after step {step}"),
                }
            }
            Ok(())
        }
        Command::Audit(cmd) => audit(&s, g.json, cmd),
        Command::Serve {
            http,
            allow_remote,
            no_meta_tools,
            toolset,
        } => {
            let engine = open_engine(&s)?;
            let toolset = choose_toolset(
                toolset.as_deref().or(s.mcp.toolset.as_deref()),
                s.mcp.dynamic_above.unwrap_or(DYNAMIC_ABOVE),
                engine.registry().len(),
            )?;
            let touches_files = engine
                .registry()
                .iter()
                .any(|d| d.effects.contains(&aifirst::Effect::Filesystem));
            if touches_files && engine.sandbox().fs().is_closed() {
                eprintln!(
                    "note: no allowed roots are configured, so file capabilities are refused; \
                     add `--root DIR` or `allowed_roots` in airun.toml"
                );
            }
            let server = McpServer::new(
                engine,
                ServeOptions {
                    name: app.name.to_string(),
                    version: app.version.to_string(),
                    session: s
                        .shared_session
                        .clone()
                        .unwrap_or_else(|| s.session.clone()),
                    per_client_sessions: !s.session_named && s.shared_session.is_none(),
                    meta_tools: s.meta_tools && !no_meta_tools,
                    auto_confirm: g.yes,
                    toolset,
                },
            )
            .map_err(Fail::Usage)?;
            match http {
                None => crate::mcp::serve_stdio(server).await,
                Some(addr) => {
                    let mut o = crate::mcp::HttpOptions::new(addr);
                    o.allow_remote = allow_remote;
                    o.token = std::env::var("AIFIRST_HTTP_TOKEN")
                        .ok()
                        .filter(|t| !t.trim().is_empty());
                    o.allowed_origins = s.mcp.allowed_origins.clone();
                    o.allowed_hosts = s.mcp.allowed_hosts.clone();
                    if let Some(n) = s.mcp.max_sessions {
                        o.max_sessions = n;
                    }
                    if let Some(secs) = s.mcp.session_idle_secs {
                        o.session_idle = std::time::Duration::from_secs(secs);
                    }
                    if let Some(n) = s.mcp.max_body_bytes {
                        o.max_body_bytes = n;
                    }
                    crate::mcp::serve_http(server, o).await
                }
            }
            .map_err(Fail::Failed)
        }
    }
}

/// Above this many capabilities `--toolset auto` serves a dynamic toolset.
const DYNAMIC_ABOVE: usize = 128;

/// The toolset to serve, saying on stderr when `auto` chose the dynamic one.
fn choose_toolset(
    mode: Option<&str>,
    above: usize,
    count: usize,
) -> Result<crate::mcp::Toolset, Fail> {
    use crate::mcp::Toolset;
    match mode.unwrap_or("auto") {
        "all" => Ok(Toolset::All),
        "dynamic" => Ok(Toolset::Dynamic),
        "auto" if count > above => {
            eprintln!(
                "note: {count} capabilities are more than {above}, so they are served as a dynamic \
                 toolset (search_capabilities, describe_capability, call_capability); \
                 `--toolset all` serves a tool each"
            );
            Ok(Toolset::Dynamic)
        }
        "auto" => Ok(Toolset::All),
        other => Err(Fail::Usage(format!(
            "[mcp] toolset = \"{other}\" is not one of all, dynamic, auto"
        ))),
    }
}

/// `8080` → 127.0.0.1:8080; otherwise a socket address.
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().map_err(|_| {
        format!("`{text}` is not a port or ADDR:PORT (for example 8080 or 127.0.0.1:8080)")
    })
}

fn unknown(reg: &Registry, name: &str) -> String {
    let mut near: Vec<&str> = reg
        .iter()
        .map(|d| d.name)
        .filter(|n| n.contains(name) || name.contains(n))
        .take(5)
        .collect();
    near.sort_unstable();
    if near.is_empty() {
        format!("no capability `{name}` (see `list`)")
    } else {
        format!("no capability `{name}`; did you mean {}?", near.join(", "))
    }
}

fn read_args(text: &str) -> Result<Value, Fail> {
    let (text, from) = match text.strip_prefix('@') {
        Some(path) => (
            std::fs::read_to_string(path)
                .map_err(|e| Fail::Usage(format!("cannot read {path}: {e}")))?,
            path.to_string(),
        ),
        None => (text.to_string(), "--args".to_string()),
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        Fail::Usage(format!(
            "{from} is not JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    if !v.is_object() {
        return Err(Fail::Usage(format!("{from} must be a JSON object")));
    }
    Ok(v)
}

fn list(json_out: bool, effect: Option<&str>) -> Result<(), Fail> {
    let reg = registry()?;
    let mut defs: Vec<_> = reg
        .iter()
        .filter(|d| effect.is_none_or(|e| d.effects.iter().any(|x| x.to_string() == e)))
        .collect();
    defs.sort_by_key(|d| d.name);
    if json_out {
        let v: Vec<Value> = defs
            .iter()
            .map(|d| {
                json!({
                    "name": d.name,
                    "description": d.description,
                    "effects": d.effects,
                    "annotations": d.annotations(),
                    "undo": undo_summary(d),
                })
            })
            .collect();
        print_json(&Value::Array(v));
        return Ok(());
    }
    let mut rows = vec![vec![
        "CAPABILITY".to_string(),
        "EFFECTS".to_string(),
        "UNDO".to_string(),
        "DESCRIPTION".to_string(),
    ]];
    for d in &defs {
        let effects: Vec<String> = d.effects.iter().map(ToString::to_string).collect();
        rows.push(vec![
            d.name.to_string(),
            effects.join(","),
            first_line(&undo_summary(d), 40),
            first_line(d.description, 60),
        ]);
    }
    out!("{}", table(&rows));
    outln!("{} capabilities", defs.len());
    Ok(())
}

fn done_line(json_out: bool, v: Value, text: &str) -> Result<(), Fail> {
    if json_out {
        print_json(&v);
    } else {
        outln!("{text}");
    }
    Ok(())
}

fn audit(s: &Settings, json_out: bool, cmd: AuditCommand) -> Result<(), Fail> {
    let failed = |e: aifirst::audit::AuditError| Fail::Failed(e.to_string());
    let session = s.session_given.then_some(s.session.as_str());
    match cmd {
        AuditCommand::Verify { expect_head } => {
            // Never creates a log: a missing one is a finding.
            let v =
                AuditLog::verify_dir(&s.state_dir, s.audit_key.as_deref(), expect_head.as_deref())
                    .map_err(failed)?;
            if json_out {
                print_json(&json!({
                    "records": v.records,
                    "intact": v.intact(),
                    "head": v.head.as_ref().map(|(seq, hash)| json!({"seq": seq, "hash": hash})),
                    "first_bad": v.first_bad.as_ref().map(|(seq, why)| json!({"seq": seq, "reason": why})),
                    "problems": v.problems,
                }));
            }
            if v.intact() {
                if !json_out {
                    outln!(
                        "audit log intact: {} records, hash chain verified{}",
                        v.records,
                        if s.audit_key.is_some() {
                            " (keyed)"
                        } else {
                            ""
                        }
                    );
                }
                return Ok(());
            }
            let msg = match &v.first_bad {
                Some((seq, why)) => format!("audit log tampered with at record {seq}: {why}"),
                None => "audit log not intact".to_string(),
            };
            let mut text = msg;
            for p in &v.problems {
                text.push_str(&format!("\n  - {p}"));
            }
            Err(Fail::Failed(text))
        }
        AuditCommand::Head => {
            let v =
                AuditLog::verify_dir(&s.state_dir, s.audit_key.as_deref(), None).map_err(failed)?;
            match v.head {
                Some((seq, hash)) => done_line(
                    json_out,
                    json!({"seq": seq, "hash": hash}),
                    &format!("{seq} {hash}"),
                ),
                None => Err(Fail::Failed("the audit log has no records".into())),
            }
        }
        AuditCommand::Report { html, since } => {
            let page = open_audit(s)?
                .report_html(session, since.as_deref())
                .map_err(failed)?;
            std::fs::write(&html, page)
                .map_err(|e| Fail::Failed(format!("cannot write {}: {e}", html.display())))?;
            if json_out {
                print_json(&json!({"report": html}));
            } else {
                outln!("wrote {}", html.display());
            }
            Ok(())
        }
        AuditCommand::Export {
            jsonl: _,
            since,
            output,
        } => {
            let lines = open_audit(s)?
                .export_jsonl(session, since.as_deref())
                .map_err(failed)?;
            match output {
                Some(path) => std::fs::write(&path, lines)
                    .map_err(|e| Fail::Failed(format!("cannot write {}: {e}", path.display()))),
                None => std::io::stdout()
                    .write_all(lines.as_bytes())
                    .map_err(|e| Fail::Failed(e.to_string())),
            }
        }
    }
}
