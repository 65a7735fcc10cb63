//! Data tools: jq filters over JSON, CSV in and out, SQLite queries and row-level undoable
//! writes, file hashes and text diffs.
//!
//! Every file is reached through the engine's sandbox ([`aifirst::Ctx::fs`]), never through
//! `std::fs` with a path a model gave: beneath the allowed roots, no link leading out, no FIFO or
//! device opened.
//!
//! # Undo
//!
//! - `write_csv` declares a file snapshot, like the file tools: the engine puts the file back
//!   byte for byte.
//! - `sqlite_execute` is undone **row by row**. Before the caller's SQL runs, a session of
//!   SQLite's session extension is attached to every table; after it ran, the session's
//!   changeset (each row inserted, updated or deleted, with its values before and after) is
//!   inverted, and the call records `sqlite_apply_changeset {database, changeset}` as its
//!   compensation (data, journaled: any process can run it). That capability applies a
//!   changeset in one transaction and aborts on the first conflict — a row changed, deleted or
//!   inserted since — naming the table, the row and what happened, so undoing one agent's change
//!   never writes over a change made since. Nothing is written on a conflict. Applying records
//!   the inverse of what it applied as its own compensation.
//! - What sessions do not record makes the call **irreversible**, and the runtime's policy
//!   decides (by default the user confirms): schema changes (CREATE, DROP, ALTER, indexes,
//!   triggers, views), rows of tables without a PRIMARY KEY, and virtual tables. The capability
//!   declares `irreversible_when = sqlite_execute_irreversible`: before the engine runs (or
//!   journals) a call, its statements are prepared — not run — on a read-only connection, and
//!   SQLite's authorizer names each schema change and each table written. When the policy lets
//!   such a call run, the handler sees [`Ctx::irreversible_granted`], runs the statements
//!   without a session and records no compensation; the step is journaled irreversible with the
//!   reason. Without that grant (a direct call, or a write the check could not see, such as a
//!   foreign-key action on a table without a key), the same things are refused: the authorizer
//!   refuses schema changes as each statement is prepared, and the update hook's tables are
//!   checked after the statements ran; a refusal rolls everything back.
//! - Known gaps of the session extension, left as they are: a row whose (non-INTEGER) primary
//!   key holds NULL is not recorded; AUTOINCREMENT counters (`sqlite_sequence`) are not put
//!   back; triggers fire when a changeset is applied, as on any write.
//!
//! # Opening a database
//!
//! SQLite opens files by path, so the path it is given must be one the sandbox vouches for. The
//! database is first opened beneath its root by the sandbox (links followed only beneath the
//! root, FIFOs and devices refused); the kernel's name of that open file (`/proc/self/fd/N` on
//! Linux: a path with every link resolved) must lie beneath the root's real path and outside the
//! runtime's state directory; SQLite then opens that path with `SQLITE_OPEN_NOFOLLOW`, which
//! refuses a symbolic link anywhere in it (and SQLite opens its journal files with `O_NOFOLLOW`);
//! finally the file SQLite opened must be the one the sandbox opened (same device and inode).
//! Handing SQLite `/proc/self/fd/N` itself would not help: SQLite resolves that link to the same
//! path by itself (and cannot create its journal beside it). Writes refuse a file with several
//! hard links (another may be outside the roots), as the file tools do. URIs are off, so a path
//! is only ever a file name; `ATTACH` is refused, so a statement reaches no other file.
//!
//! # Limits
//!
//! `query_json` returns at most 10,000 values and 16 MiB of JSON (a filter producing more is
//! stopped there and refused), with a 64 MiB stack; `env` is withheld (the server's environment
//! holds credentials) and there is no `input`. The call waits for the filter at most 30 s,
//! then returns an error, and no executor thread is blocked meanwhile. jq itself has no step
//! limit, and jaq bounds neither recursion nor its stack use, so a filter runs in a worker
//! process ([`jq_worker_setup`], which the `airun` binary calls first thing): a filter still
//! running at 30 s is killed, and one that recurses without end (`def f: 1 + f; f`) overflows
//! the worker's stack, not the server's; either way the call says what happened. Without a
//! worker (a program that links this crate and does not call it), the filter runs on a thread of
//! this process: past 30 s it is abandoned and runs on until it ends, and deep recursion can
//! abort the process. At most 8 filters run at once, abandoned ones included; past that,
//! query_json is refused until one ends.
//!
//! `read_csv` reads at most 10,000 columns (a longer row is refused, naming the row), and stops
//! (`truncated`) once the rows it returns hold 16 MiB of JSON, each column of each row counted
//! (a missing cell's key and null too). `sqlite_query` stops (`truncated`) at 16 MiB of values,
//! a value's size checked before it is copied. SQLite's length limit is 64 MiB on every
//! connection: a string, BLOB or row larger than that cannot be read or written by these tools
//! ("string or blob too big"). No database can be attached (`SQLITE_LIMIT_ATTACHED` is 0, on top
//! of the authorizer's refusal), so ATTACH, VACUUM and VACUUM INTO fail ("too many attached
//! databases - max 0"). SQL statements are interrupted after 30 s.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{check_path, failed, invalid};
use aifirst::fs::{EntryKind, File, Fs, Located};
use aifirst::{capability, Ctx, ToolError};
use base64::Engine as _;
use rusqlite::config::DbConfig;
use rusqlite::fallible_iterator::FallibleIterator as _;
use rusqlite::fallible_streaming_iterator::FallibleStreamingIterator as _;
use rusqlite::hooks::{Action, AuthAction, AuthContext, Authorization};
use rusqlite::session::{ChangesetItem, ChangesetIter, ConflictAction, ConflictType, Session};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension as _, TransactionBehavior};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{json, Value};

const MIB: usize = 1024 * 1024;
/// query_json reads JSON files up to this size.
const MAX_JSON_FILE: u64 = 64 * MIB as u64;
/// A jq filter is at most this long.
const MAX_FILTER_BYTES: usize = 64 * 1024;
/// query_json returns at most this many values…
const MAX_RESULTS: usize = 10_000;
/// …and this much JSON (counted without escapes).
const MAX_RESULT_BYTES: usize = 16 * MIB;
/// Values nested deeper are refused (on the way in and out of jq).
const MAX_DEPTH: usize = 256;
/// The stack of the thread a jq filter runs on (recursive filters go deep).
const JQ_STACK: usize = 64 * MIB;
/// The memory (data: heap and private mappings, the stack above included) a jq worker may use,
/// on Linux. The costliest 64 MiB file, 22 million `{}`, takes 2.5 GiB in a worker.
const JQ_MEMORY: u64 = 4 * 1024 * MIB as u64;
/// query_json waits this long for a filter, then returns an error: a worker process running it
/// is killed; a filter run on a thread of this process (no worker set) is abandoned (a thread
/// cannot be killed: it ends when the filter does).
const JQ_TIME_LIMIT: Duration = Duration::from_secs(30);
/// At most this many filters run at once, abandoned ones included (each may keep a core
/// busy): past it query_json is refused until one ends.
const MAX_JQ_RUNNING: usize = 8;
/// jq builtins that are not offered: `env` reads the server's environment (credentials).
const WITHHELD: [&str; 1] = ["env"];
/// Names jq has that query_json does not define (only its one input is read).
const NOT_OFFERED: [&str; 5] = ["input", "inputs", "$ENV", "input_filename", "$__prog_args"];
/// Rows returned by default, and at most, by read_csv and sqlite_query.
const DEFAULT_ROWS: u64 = 1000;
const MAX_ROWS: u64 = 100_000;
/// read_csv and sqlite_query stop (`truncated`) past this much cell data.
const MAX_ROW_BYTES: usize = 16 * MIB;
/// read_csv refuses a file with a row (the header included) of more cells than this.
const MAX_COLUMNS: usize = 10_000;
/// SQLite's length limit on every connection: the largest string, BLOB or row (bytes).
const SQL_MAX_LENGTH: i32 = 64 * 1024 * 1024;
/// An SQL text is at most this long.
const MAX_SQL_BYTES: usize = MIB;
/// A statement running longer is interrupted.
const SQL_TIME_LIMIT: Duration = Duration::from_secs(30);
/// How long a call waits for another connection's lock on the database.
const BUSY_WAIT: Duration = Duration::from_secs(5);
/// The largest changeset kept for undo (or accepted by sqlite_apply_changeset).
const MAX_CHANGESET_BYTES: usize = 16 * MIB;
/// sqlite_execute: schema changes in one call at most (each is named when the user is asked).
const MAX_SCHEMA_CHANGES: usize = 50;
/// diff_text reads files up to this size.
const MAX_DIFF_BYTES: u64 = 16 * MIB as u64;
/// hash_file reads in chunks of this size.
const HASH_CHUNK: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Results

/// What a jq filter produced.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct JsonQuery {
    /// Every value the filter produced, in order.
    pub results: Vec<Value>,
    /// How many values (the length of `results`).
    pub count: usize,
}

/// The rows of a CSV file.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct CsvTable {
    /// The file, as the sandbox shows it.
    pub path: String,
    /// The column names: the header's (empty names become `column_N`, repeated ones get a
    /// suffix `_2`, `_3`…), or `column_1`… without a header.
    pub columns: Vec<String>,
    /// With a header: one object per row, keyed by column (a missing cell is null). Without:
    /// one array of strings per row.
    pub rows: Vec<Value>,
    /// How many rows were read (the length of `rows`).
    pub row_count_read: u64,
    /// True when the file has more rows than were returned (`max_rows`, or 16 MiB of JSON).
    pub truncated: bool,
}

/// What write_csv wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct CsvWritten {
    /// The file, as the sandbox shows it.
    pub path: String,
    /// The header written (empty when none was).
    pub columns: Vec<String>,
    /// Data rows written (the header not counted).
    pub rows_written: u64,
    /// The file's size in bytes.
    pub bytes: u64,
}

/// The rows a query returned.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SqlRows {
    /// The result columns, in order (names may repeat: `SELECT a, a`).
    pub columns: Vec<String>,
    /// One array per row, a value per column: INTEGER and REAL as numbers, TEXT as strings,
    /// NULL as null, BLOB as `{"base64": "…"}`.
    pub rows: Vec<Vec<Value>>,
    /// How many rows were returned (the length of `rows`).
    pub row_count: u64,
    /// True when the query has more rows than were returned (`max_rows`, or 16 MiB of values).
    pub truncated: bool,
}

/// What sqlite_execute changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SqlChange {
    /// The database, as the sandbox shows it.
    pub database: String,
    /// Rows inserted, updated or deleted by the statements themselves (rows changed by
    /// triggers are not counted here, but are recorded for undo).
    pub rows_changed: u64,
    /// The rowid of the last row inserted on this connection (0 when none was).
    pub last_insert_rowid: i64,
    /// How many statements ran.
    pub statements: u64,
    /// Row changes recorded for undo, net of each other (a row inserted and deleted again in
    /// the same call counts none). Zero: undo has nothing to put back.
    pub recorded_changes: u64,
    /// The tables those changes are in.
    pub tables: Vec<String>,
}

/// What sqlite_apply_changeset applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ChangesetApplied {
    /// The database, as the sandbox shows it.
    pub database: String,
    /// Row changes applied.
    pub changes: u64,
    /// The tables they are in.
    pub tables: Vec<String>,
}

/// A file's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct FileHash {
    /// The file, as the sandbox shows it.
    pub path: String,
    /// The algorithm: `sha256`, `sha224`, `sha384` or `sha512`.
    pub algorithm: String,
    /// The digest in lower-case hexadecimal.
    pub hex: String,
    /// The file's size in bytes (as many as were hashed).
    pub size: u64,
}

/// A unified diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TextDiffResult {
    /// The unified diff (`--- old`, `+++ new`, `@@` hunks, `-` and `+` lines); empty when the
    /// texts are the same.
    pub diff: String,
    /// True when the texts are the same.
    pub identical: bool,
    /// Lines only in the new text.
    pub lines_added: u64,
    /// Lines only in the old text.
    pub lines_removed: u64,
}

// ---------------------------------------------------------------------------------------------
// JSON

/// Run a jq filter over JSON and return every value it produces. The JSON is given inline
/// (`value`) or read from a file (`path`): exactly one of them. The filter language is jq's
/// (jaq's implementation): `.items[] | select(.price > 10) | .name`, `map(.x) | add`,
/// `to_entries`, `group_by(.k)`, `limit(5; .[])`… `env` and `input` are not available. At most
/// 10,000 values and 16 MiB of JSON are returned; a filter producing more is stopped and
/// refused (narrow it with `limit(n; f)`, `first(f)` or `.[0:n]`). A filter still running
/// after 30 s is stopped with an error.
#[capability(effects(read, filesystem))]
pub async fn query_json(
    ctx: &Ctx,
    /// The jq filter, e.g. `.` or `.items[] | {name, price}`.
    filter: String,
    /// The JSON to filter, inline (or give `path`; a JSON null here counts as not given).
    value: Option<Value>,
    /// A JSON file to filter instead: an absolute path inside an allowed directory, or one
    /// relative to the first.
    path: Option<String>,
) -> Result<JsonQuery, ToolError> {
    if filter.trim().is_empty() {
        return Err(invalid(
            "`filter` is empty: give a jq filter, such as `.` (the whole input) or `.items[].name`"
                .into(),
        ));
    }
    if filter.len() > MAX_FILTER_BYTES {
        return Err(invalid(format!(
            "`filter` is {} bytes long; filters are limited to {MAX_FILTER_BYTES} bytes",
            filter.len()
        )));
    }
    let input = match (value, path) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "give `value` (inline JSON) or `path` (a JSON file), not both".into(),
            ))
        }
        (None, None) => {
            return Err(invalid(
                "give the JSON to filter: `value` (inline JSON) or `path` (a JSON file)".into(),
            ))
        }
        (Some(v), None) => JqInput::Value(v),
        (None, Some(p)) => read_json_file(ctx.fs(), &p)?,
    };
    let results = run_jq(filter, input, JQ_TIME_LIMIT).await?;
    Ok(JsonQuery {
        count: results.len(),
        results,
    })
}

/// What a filter runs on: a value given inline, or a file's text, parsed where the filter runs
/// (a worker process: the server never holds a large file as values, which take up to 60 times
/// the text's size).
enum JqInput {
    Value(Value),
    File { text: Vec<u8>, shown: PathBuf },
}

impl JqInput {
    /// jaq's value; a file's text is parsed straight to it ([`parse_val`]).
    fn into_val(self) -> Result<jaq_json::Val, ToolError> {
        match self {
            JqInput::Value(v) => to_val(&v, 0).ok_or_else(|| invalid(too_deep_message())),
            JqInput::File { text, shown } => parse_val(&text).map_err(|e| match e {
                ParseVal::TooDeep => invalid(too_deep_message()),
                ParseVal::NotJson(e) => not_json(&shown, &e),
            }),
        }
    }
}

fn not_json(shown: &Path, e: &str) -> ToolError {
    failed(format!(
        "{} is not valid JSON: {e} (query_json reads one JSON value per file)",
        shown.display()
    ))
}

fn read_json_file(fs: &Fs, path: &str) -> Result<JqInput, ToolError> {
    check_path(path, "path")?;
    let shown = fs.locate(path)?.shown;
    let file = fs.open_regular(path)?;
    let text = read_capped(
        &shown,
        file,
        MAX_JSON_FILE,
        "query_json reads JSON files up to 64 MiB",
    )?;
    Ok(JqInput::File { text, shown })
}

/// Runs the filter in a worker process ([`set_jq_worker`]) or, without one, on a thread of its
/// own with a stack deep recursive filters can use, and waits for it at most `limit` without
/// blocking an async worker: a watcher thread waits for the worker (or the filter's thread) and
/// reports to this future through a oneshot channel (no timer of an executor is needed, so this
/// runs on any executor). Past `limit` a worker is killed; a filter's thread is abandoned
/// (detached: it cannot be killed, and ends when the filter does). A panic inside the jq
/// engine becomes an error instead of ending the server.
async fn run_jq(filter: String, input: JqInput, limit: Duration) -> Result<Vec<Value>, ToolError> {
    let slot = JqSlot::claim()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let worker = JQ_WORKER.get().cloned();
    std::thread::Builder::new()
        .name("aifirst-query-json-watch".into())
        .spawn(move || {
            let _ = tx.send(match worker {
                Some(program) => jq_in_worker(&program, filter, input, limit, slot),
                None => watch_jq(filter, input, limit, slot),
            });
        })
        .map_err(|e| failed(format!("could not start the filter: {e}")))?;
    rx.await.unwrap_or_else(|_| Err(jq_crashed()))
}

/// The environment variable (set to `1`) that, with [`JQ_WORKER_ARG`] as the first argument,
/// makes a program that calls [`jq_worker_main`] first thing (through [`jq_worker_setup`], as
/// the `airun` binary's `main` does) evaluate one jq filter from stdin instead of doing its
/// usual work. Either alone does nothing.
pub const JQ_WORKER_ENV: &str = "AIFIRST_JQ_WORKER";

/// The first argument of a jq worker (see [`JQ_WORKER_ENV`]).
pub const JQ_WORKER_ARG: &str = "--aifirst-jq-worker";

/// The program query_json runs filters in ([`set_jq_worker`]); unset, they run on a thread of
/// this process. On Linux [`jq_worker_setup`] gives `/proc/self/exe`: the program this process
/// runs, even when its file was replaced or removed since (an upgrade while a server runs).
static JQ_WORKER: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Runs query_json's filters in a process of `program` (normally this one), which must call
/// [`jq_worker_main`] first thing (see [`jq_worker_setup`]). A filter that recurses without end
/// then overflows the worker's stack, not the server's, and one past the time limit is killed
/// instead of left running. Unset, filters run on a thread.
pub fn set_jq_worker(program: std::path::PathBuf) {
    let _ = JQ_WORKER.set(program);
}

/// What a program that links this crate calls first thing in `main` (the `airun` binary does):
/// as a jq worker ([`JQ_WORKER_ENV`]), answers one filter and returns the exit code to end
/// with; otherwise makes this program query_json's worker ([`set_jq_worker`]) and returns
/// `None`. Without it, filters run on a thread of the process.
pub fn jq_worker_setup() -> Option<std::process::ExitCode> {
    if let Some(code) = jq_worker_main() {
        return Some(code);
    }
    // On Linux, the program this process runs even if its file was replaced since (an
    // upgrade while a server runs).
    let own = std::path::PathBuf::from("/proc/self/exe");
    if own.exists() {
        set_jq_worker(own);
    } else if let Ok(exe) = std::env::current_exe() {
        set_jq_worker(exe);
    }
    None
}

/// The worker's side of [`set_jq_worker`]: when [`JQ_WORKER_ENV`] is set, reads one request
/// from stdin (a line `{"filter": …}`, then the input's JSON text), writes the answer
/// (`{"ok": [values]}`, `{"invalid": message}`, `{"not_json": parser's message}` or
/// `{"failed": message}`) to stdout and returns `Some(exit code)`, for the program to exit
/// with; `None` (nothing read) when the variable is not set.
pub fn jq_worker_main() -> Option<std::process::ExitCode> {
    use std::io::{Read, Write};
    if std::env::var_os(JQ_WORKER_ENV).as_deref() != Some(std::ffi::OsStr::new("1"))
        || std::env::args_os().nth(1).as_deref() != Some(std::ffi::OsStr::new(JQ_WORKER_ARG))
    {
        return None;
    }
    let mut text = Vec::new();
    // The input is a file's text (at most MAX_JSON_FILE) or an inline value (an MCP argument)
    // written out again, which may be somewhat longer than it came (`1e5` is `100000.0`).
    let cap = 4 * MAX_JSON_FILE + (MAX_FILTER_BYTES + MIB) as u64;
    let read = std::io::stdin().take(cap).read_to_end(&mut text);
    // Parsed and run on a thread with the stack a filter gets in process: recursion past it
    // ends this process, which the server reports.
    let answer = match std::thread::Builder::new()
        .stack_size(JQ_STACK)
        .spawn(move || {
            // `{"filter": …}`, a newline (never inside compact JSON), then the input's text.
            let mut parts = text.splitn(2, |b| *b == b'\n');
            let filter = read.ok().and_then(|_| {
                let header = parse_unbounded(parts.next()?)?;
                Some(header.get("filter")?.as_str()?.to_string())
            });
            let (Some(filter), Some(input)) = (filter, parts.next()) else {
                return json!({"failed": "the jq worker was sent no request it could read"});
            };
            let input = match parse_val(input) {
                Ok(v) => v,
                Err(ParseVal::TooDeep) => return json!({"invalid": too_deep_message()}),
                Err(ParseVal::NotJson(e)) => return json!({"not_json": e}),
            };
            match jq_eval_val(&filter, input) {
                Ok(values) => json!({"ok": values}),
                Err(ToolError::InvalidArguments { message }) => json!({"invalid": message}),
                Err(e) => json!({"failed": e.to_string()}),
            }
        })
        .map(|h| h.join())
    {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => json!({"failed": jq_crashed().to_string()}),
        Err(e) => json!({"failed": format!("could not start the filter: {e}")}),
    };
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut out, &answer).is_ok() && out.flush().is_ok();
    Some(if written {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

/// JSON read without serde_json's nesting limit of 128: a worker's answer wraps values that
/// may be up to [`MAX_DEPTH`] deep (bounded on the way out of jq).
fn parse_unbounded(text: &[u8]) -> Option<Value> {
    use serde::Deserialize as _;
    let mut de = serde_json::Deserializer::from_slice(text);
    de.disable_recursion_limit();
    let v = Value::deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(v)
}

enum ParseVal {
    TooDeep,
    NotJson(String),
}

/// JSON text straight to jaq's value, as [`to_val`] would make it from the parsed JSON but
/// without building that first: half the memory or less (a 64 MiB file of `[1]`s took over
/// 8 GiB through serde_json's values, whose every array starts with room for four). The parser
/// recurses once per level, through [`ValSeed`], which stops past [`MAX_DEPTH`]: 64 MiB of `[`
/// cannot exhaust the stack.
fn parse_val(text: &[u8]) -> Result<jaq_json::Val, ParseVal> {
    use serde::de::DeserializeSeed as _;
    let mut de = serde_json::Deserializer::from_slice(text);
    de.disable_recursion_limit();
    let mut too_deep = false;
    let v = ValSeed {
        depth: 0,
        too_deep: &mut too_deep,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    match v {
        Ok(v) => Ok(v),
        Err(_) if too_deep => Err(ParseVal::TooDeep),
        Err(e) => Err(ParseVal::NotJson(e.to_string())),
    }
}

/// Builds one value at `depth` ([`to_val`]'s rules: numbers, strings, keys; past [`MAX_DEPTH`]
/// it fails, setting `too_deep`).
struct ValSeed<'a> {
    depth: usize,
    too_deep: &'a mut bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for ValSeed<'_> {
    type Value = jaq_json::Val;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if self.depth > MAX_DEPTH {
            *self.too_deep = true;
            return Err(serde::de::Error::custom(too_deep_message()));
        }
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ValSeed<'_> {
    type Value = jaq_json::Val;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(jaq_json::Val::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(jaq_json::Val::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Self::Value, E> {
        Ok(match isize::try_from(i) {
            Ok(i) => jaq_json::Val::from(i),
            Err(_) => jaq_json::Val::Num(jaq_json::Num::from_integral(i)),
        })
    }
    fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<Self::Value, E> {
        match i64::try_from(u) {
            Ok(i) => self.visit_i64(i),
            Err(_) => Ok(jaq_json::Val::Num(jaq_json::Num::from_integral(u))),
        }
    }
    fn visit_f64<E>(self, f: f64) -> Result<Self::Value, E> {
        Ok(jaq_json::Val::from(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(jaq_json::Val::from(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(jaq_json::Val::from(s))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(ValSeed {
            depth: self.depth + 1,
            too_deep: &mut *self.too_deep,
        })? {
            items.push(v);
        }
        items.shrink_to_fit();
        Ok(items.into_iter().collect())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut m = jaq_json::Map::default();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(ValSeed {
                depth: self.depth + 1,
                too_deep: &mut *self.too_deep,
            })?;
            m.insert(jaq_json::Val::from(k), v);
        }
        Ok(jaq_json::Val::obj(m))
    }
}

fn too_deep_message() -> String {
    format!("the input is nested deeper than {MAX_DEPTH} levels")
}

/// Runs the filter in a worker process of `program` and waits for its answer at most `limit`
/// (on the watcher thread); past it the worker is killed. An answer longer than any filter can
/// give is cut, and reported as unreadable.
fn jq_in_worker(
    program: &std::path::Path,
    filter: String,
    input: JqInput,
    limit: Duration,
    _slot: JqSlot,
) -> Result<Vec<Value>, ToolError> {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    use std::sync::mpsc::{sync_channel, RecvTimeoutError};
    let sending =
        |e: serde_json::Error| failed(format!("could not send the filter to its worker: {e}"));
    let mut header = serde_json::to_vec(&json!({ "filter": filter })).map_err(sending)?;
    header.push(b'\n');
    let (body, shown) = match input {
        JqInput::Value(v) => (serde_json::to_vec(&v).map_err(sending)?, None),
        JqInput::File { text, shown } => (text, Some(shown)),
    };
    // The worker needs no environment (jq's `env` is withheld anyway): the server's
    // credentials are not handed to it.
    let mut child = Command::new(program)
        .arg(JQ_WORKER_ARG)
        .env_clear()
        .env(JQ_WORKER_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            failed(format!(
                "could not start the jq worker ({}): {e}",
                program.display()
            ))
        })?;
    // The worker killed and reaped, and the call's error.
    let stop = |child: &mut std::process::Child, message: String| {
        let _ = child.kill();
        let _ = child.wait();
        failed(message)
    };
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(stop(&mut child, "the jq worker has no pipes".into()));
    };
    // Before the request is written, so before the filter runs: a filter that allocates
    // without end (`[range(1e12)]`) fails in its worker instead of taking the host's memory.
    let memory = match cap_memory(&child, JQ_MEMORY) {
        Ok(memory) => memory,
        Err(e) => {
            return Err(stop(
                &mut child,
                format!("could not limit the jq worker's memory: {e}"),
            ))
        }
    };
    // What the worker says as it dies (Rust's runtime names a failed allocation or an
    // overflowed stack, last), kept to its last KiB; all of it is read.
    let said = std::thread::spawn(move || {
        let (mut last, mut buf, mut stderr) = (Vec::new(), [0u8; 4096], stderr);
        while let Ok(n @ 1..) = stderr.read(&mut buf) {
            last.extend_from_slice(&buf[..n]);
            if last.len() > 2048 {
                last.drain(..last.len() - 1024);
            }
        }
        String::from_utf8_lossy(&last).into_owned()
    });
    // Written and read on threads of their own: a large input or answer fills a pipe.
    std::thread::spawn(move || {
        let _ = stdin
            .write_all(&header)
            .and_then(|_| stdin.write_all(&body));
    });
    let (tx, rx) = sync_channel(1);
    std::thread::spawn(move || {
        let mut out = Vec::new();
        // The answer is bounded by the filter's own limits; past twice that, something is wrong.
        let read = stdout
            .take(2 * MAX_RESULT_BYTES as u64 + MIB as u64)
            .read_to_end(&mut out);
        let _ = tx.send(read.map(|_| out));
    });
    let answer = match rx.recv_timeout(limit) {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            return Err(stop(
                &mut child,
                format!("could not read the jq worker's answer: {e}"),
            ))
        }
        Err(RecvTimeoutError::Timeout) => {
            return Err(stop(
                &mut child,
                format!(
                    "the filter ran longer than {} and was stopped; nothing was returned. jq has \
                     no step limit: bound the work (`limit(n; f)`, `first(f)`, `.[0:n]`, smaller \
                     `range`s) or filter less data",
                    show_duration(limit)
                ),
            ))
        }
        Err(RecvTimeoutError::Disconnected) => Vec::new(),
    };
    let status = child.wait();
    let said = said.join().unwrap_or_default();
    match parse_unbounded(&answer) {
        Some(Value::Object(mut m)) => {
            if let Some(Value::Array(values)) = m.remove("ok") {
                return Ok(values);
            }
            if let Some(Value::String(message)) = m.remove("invalid") {
                return Err(invalid(message));
            }
            if let Some(Value::String(message)) = m.remove("failed") {
                return Err(failed(message));
            }
            if let Some(Value::String(message)) = m.remove("not_json") {
                return Err(match &shown {
                    Some(shown) => not_json(shown, &message),
                    None => failed(format!("the input is not valid JSON: {message}")),
                });
            }
            Err(jq_crashed())
        }
        _ => match status.as_ref().ok().and_then(signal_of) {
            // SIGKILL unasked: the system's OOM killer, most likely.
            Some(signal) if said.contains("memory allocation of") || signal == 9 => {
                Err(failed(format!(
                    "the filter needed more than the {} and was stopped (signal {signal}); \
                     nothing was returned. Filter less data, or bound what the filter builds \
                     (`limit(n; f)`, `.[0:n]`, smaller `range`s and repeats)",
                    match memory {
                        Some(bytes) => format!("{} of memory a filter may use", show_bytes(bytes)),
                        None => "memory available".into(),
                    }
                )))
            }
            Some(signal) if said.contains("has overflowed its stack") => Err(failed(format!(
                "the filter ended its worker process (signal {signal}): its stack ran out, by \
                 recursing without end or by building a value nested too deep (tens of thousands \
                 of levels); nothing was returned. Give recursive definitions a base case, or \
                 bound them (`limit(n; f)`)"
            ))),
            Some(signal) => Err(failed(format!(
                "the filter ended its worker process (signal {signal}) without an answer; \
                 nothing was returned{}",
                last_line(&said)
            ))),
            None => Err(failed(format!(
                "the jq worker's answer could not be read ({} bytes; {}); nothing was returned",
                answer.len(),
                match &status {
                    Ok(s) => s.to_string(),
                    Err(e) => e.to_string(),
                }
            ))),
        },
    }
}

/// Limits the data (heap and private mappings) of the process `child` to `bytes`, or to the
/// lower limit it inherited from this process (raising one is not allowed); says which, `None`
/// where no limit holds.
#[cfg(target_os = "linux")]
fn cap_memory(child: &std::process::Child, bytes: u64) -> std::io::Result<Option<u64>> {
    use rustix::process::{getrlimit, prlimit, Pid, Resource, Rlimit};
    let pid = i32::try_from(child.id())
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| std::io::Error::other("the worker has no process id"))?;
    let own = getrlimit(Resource::Data);
    let lower = |inherited: Option<u64>| Some(inherited.map_or(bytes, |i| i.min(bytes)));
    let limit = Rlimit {
        current: lower(own.current),
        maximum: lower(own.maximum),
    };
    let current = limit.current;
    prlimit(Some(pid), Resource::Data, limit)?;
    Ok(current)
}

/// Elsewhere the worker runs without a memory limit (documented).
#[cfg(not(target_os = "linux"))]
fn cap_memory(_child: &std::process::Child, _bytes: u64) -> std::io::Result<Option<u64>> {
    Ok(None)
}

/// `: ` and the last line the worker wrote to stderr, if it wrote one.
fn last_line(said: &str) -> String {
    match said.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) => format!(": {}", capped_display(&line, 300)),
        None => String::new(),
    }
}

fn show_bytes(n: u64) -> String {
    const GIB: u64 = 1024 * 1024 * 1024;
    if n.is_multiple_of(GIB) {
        format!("{} GiB", n / GIB)
    } else {
        format!("{} MiB", n / MIB as u64)
    }
}

/// The signal that ended a process, if one did.
#[cfg(unix)]
fn signal_of(status: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt as _;
    status.signal()
}

#[cfg(not(unix))]
fn signal_of(_status: &std::process::ExitStatus) -> Option<i32> {
    None
}

/// Starts the filter's thread and waits for its answer at most `limit` (on the watcher thread).
fn watch_jq(
    filter: String,
    input: JqInput,
    limit: Duration,
    slot: JqSlot,
) -> Result<Vec<Value>, ToolError> {
    use std::sync::mpsc::{sync_channel, RecvTimeoutError};
    // Room for the one answer: a filter ending after the watcher gave up does not block.
    let (tx, rx) = sync_channel(1);
    std::thread::Builder::new()
        .name("aifirst-query-json".into())
        .stack_size(JQ_STACK)
        .spawn(move || {
            // Held until the filter ends, abandoned or not.
            let _slot = slot;
            let _ = tx.send(input.into_val().and_then(|v| jq_eval_val(&filter, v)));
        })
        .map_err(|e| failed(format!("could not start the filter: {e}")))?;
    match rx.recv_timeout(limit) {
        Ok(result) => result,
        Err(RecvTimeoutError::Timeout) => Err(failed(format!(
            "the filter ran longer than {} and was abandoned; nothing was returned. jq has no \
             step limit: bound the work (`limit(n; f)`, `first(f)`, `.[0:n]`, smaller \
             `range`s) or filter less data",
            show_duration(limit)
        ))),
        // The thread ended without an answer: it panicked.
        Err(RecvTimeoutError::Disconnected) => Err(jq_crashed()),
    }
}

/// Filters running now, abandoned ones included (see [`MAX_JQ_RUNNING`]).
static JQ_RUNNING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One of the [`MAX_JQ_RUNNING`] places for a running filter, given back when dropped (when
/// the filter's thread ends, or was never started).
struct JqSlot;

impl JqSlot {
    fn claim() -> Result<JqSlot, ToolError> {
        use std::sync::atomic::Ordering;
        JQ_RUNNING
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_JQ_RUNNING).then_some(n + 1)
            })
            .map(|_| JqSlot)
            .map_err(|_| {
                failed(format!(
                    "{MAX_JQ_RUNNING} jq filters are running already (a filter abandoned at the \
                     time limit runs on until it ends); try again later, with a filter that \
                     does less work"
                ))
            })
    }
}

impl Drop for JqSlot {
    fn drop(&mut self) {
        JQ_RUNNING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn jq_crashed() -> ToolError {
    failed(
        "the filter stopped with an internal error of the jq engine; nothing was returned".into(),
    )
}

/// `30 s`, `200 ms`.
fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// A file's text parsed straight to jaq's value gives what parsing it to JSON and converting
/// gave (numbers of every kind, escapes, repeated keys, order), refuses at the same depth, and
/// the depth check without recursion is not fooled by brackets in strings.
#[cfg(test)]
#[test]
fn json_text_becomes_the_value_conversion_gave() {
    let via_json = |text: &str| -> Option<Value> {
        let v: Value = parse_unbounded(text.as_bytes()).unwrap();
        to_val(&v, 0).map(|v| from_val(&v, 0, &mut usize::MAX.clone()).ok().unwrap())
    };
    let direct = |text: &str| -> Result<Value, String> {
        match parse_val(text.as_bytes()) {
            Ok(v) => Ok(from_val(&v, 0, &mut usize::MAX.clone()).ok().unwrap()),
            Err(ParseVal::TooDeep) => Err("deep".into()),
            Err(ParseVal::NotJson(e)) => Err(e),
        }
    };
    for text in [
        "null",
        "true",
        "[0, -1, 1.5, -0.0, 1e300, 2.5e-8, 9223372036854775807, -9223372036854775808]",
        "[18446744073709551615, 18446744073709551616, 123456789012345678901234567890]",
        r#""a\"b\\c\n\u00e9\ud83d\ude00""#,
        r#"{"b": 1, "a": [2, {"c": null}], "b": 3, "": {}}"#,
        "[[], {}, [[]], [1], {\"x\": []}]",
        " \n [1 , 2 ] \t",
    ] {
        assert_eq!(direct(text), Ok(via_json(text).unwrap()), "{text}");
    }
    for bad in ["", "[1,", "{\"a\" 1}", "[1] 2", "nul", "'a'", "[1,]"] {
        assert!(
            matches!(direct(bad), Err(e) if e != "deep"),
            "{bad:?} is not JSON"
        );
    }
    // MAX_DEPTH levels below the top are the most a value may have, as with `to_val`.
    let nest = |n: usize, inner: &str| format!("{}{inner}{}", "[".repeat(n), "]".repeat(n));
    for (n, inner) in [(256, "1"), (257, ""), (257, "1"), (258, ""), (300, "1")] {
        let text = nest(n, inner);
        let converted = via_json(&text);
        let got = direct(&text);
        assert_eq!(
            converted.is_some(),
            got.is_ok(),
            "{n} levels around {inner:?}: {got:?}"
        );
        if converted.is_none() {
            assert_eq!(got, Err("deep".into()));
        }
    }
    assert_eq!(direct(&nest(1_000_000, "")), Err("deep".into()));
    // serde_json's values read an object with this one key as the raw JSON it holds; jq's values
    // keep the object as it is written.
    let magic = r#"{"$serde_json::private::RawValue": "[1]"}"#;
    assert_eq!(direct(magic).unwrap().to_string(), magic.replace(": ", ":"));
}

/// The parent's side of a worker, with stand-in workers (scripts): an answer is taken, a worker
/// that dies is reported, and one past the limit is killed and reaped before the call returns.
#[cfg(test)]
#[test]
fn a_worker_is_read_reported_or_killed() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let script = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    };
    let slot = || JqSlot::claim().unwrap();
    let limit = Duration::from_secs(20);
    // The filter `.` on `0`, in the worker `program`.
    let run =
        |program: &Path| jq_in_worker(program, ".".into(), JqInput::Value(json!(0)), limit, slot());
    // Run as a worker is: with one argument and an empty environment (so no PATH).
    let ok = script("ok", r#"/bin/cat >/dev/null; printf '{"ok": [1, "two"]}'"#);
    let got = run(&ok);
    assert_eq!(got.unwrap(), vec![json!(1), json!("two")]);
    let bad = script(
        "bad",
        r#"/bin/cat >/dev/null; printf '{"invalid": "no such function"}'"#,
    );
    let got = run(&bad);
    assert!(
        matches!(got, Err(ToolError::InvalidArguments { .. })),
        "{got:?}"
    );
    // What Rust's runtime says when a stack overflows, then aborts.
    let overflows = script(
        "overflows",
        "echo \"thread '<unnamed>' has overflowed its stack\" >&2; kill -ABRT $$",
    );
    let e = run(&overflows).unwrap_err().to_string();
    assert!(
        e.contains("(signal 6)") && e.contains("stack ran out") && e.contains("nested too deep"),
        "{e}"
    );
    // Another death is not blamed on recursion; its last word is passed on.
    let dies = script("dies", "echo 'something else' >&2; kill -ABRT $$");
    let e = run(&dies).unwrap_err().to_string();
    assert!(
        e.contains("(signal 6) without an answer")
            && e.contains("something else")
            && !e.contains("recursing"),
        "{e}"
    );
    // Killed from outside with no word: the OOM killer, most likely.
    let killed = script("killed", "kill -KILL $$");
    let e = run(&killed).unwrap_err().to_string();
    assert!(e.contains("(signal 9)") && e.contains("memory"), "{e}");
    // Rust's runtime says this last when an allocation fails (the memory limit), then aborts;
    // what was written before it does not hide it.
    let oom = script(
        "oom",
        "i=0; while [ $i -lt 100 ]; do echo 'a long panic message, line after line' >&2; \
         i=$((i+1)); done; echo 'memory allocation of 5000000000 bytes failed' >&2; kill -ABRT $$",
    );
    let e = run(&oom).unwrap_err().to_string();
    assert!(
        e.contains("more than the 4 GiB of memory a filter may use"),
        "{e}"
    );
    // The limit is in place before the worker has its request.
    let limits = script(
        "limits",
        r#"read -r header; l=$(/bin/grep 'Max data size' /proc/$$/limits); /bin/cat >/dev/null; printf '{"ok": ["%s"]}' "$l""#,
    );
    let got = run(&limits).unwrap();
    let line = got[0]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>();
    assert_eq!(
        line[3..5],
        ["4294967296", "4294967296"],
        "soft and hard data limits: {line:?}"
    );
    // A lower limit this process has is kept (raising it is not allowed), and named.
    {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let own = getrlimit(Resource::Data);
        let lowered = Rlimit {
            current: Some(3 << 30),
            maximum: own.maximum,
        };
        setrlimit(Resource::Data, lowered).unwrap();
        let got = run(&limits);
        let e = run(&oom);
        setrlimit(Resource::Data, own).unwrap();
        let got = got.unwrap();
        let line = got[0]
            .as_str()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>();
        assert_eq!(line[3..5], ["3221225472", "4294967296"], "{line:?}");
        let e = e.unwrap_err().to_string();
        assert!(e.contains("more than the 3 GiB of memory"), "{e}");
    }
    let garbled = script("garbled", r#"/bin/cat >/dev/null; printf '{"ok": [1,'"#);
    let e = run(&garbled).unwrap_err().to_string();
    assert!(e.contains("answer could not be read"), "{e}");
    let env = script(
        "env",
        r#"/bin/cat >/dev/null; printf '{"ok": ["%s", "%s", "%s"]}' "$1" "$AIFIRST_JQ_WORKER" "$HOME""#,
    );
    let got = run(&env).unwrap();
    assert_eq!(
        got,
        vec![json!(JQ_WORKER_ARG), json!("1"), json!("")],
        "no environment but the marker"
    );
    let pid_file = dir.path().join("pid");
    let hangs = script(
        "hangs",
        &format!("echo $$ > {}; exec /bin/sleep 1000", pid_file.display()),
    );
    let started = Instant::now();
    let got = jq_in_worker(
        &hangs,
        ".".into(),
        JqInput::Value(json!(0)),
        Duration::from_millis(300),
        slot(),
    );
    let e = got.unwrap_err().to_string();
    assert!(e.contains("ran longer than 300 ms and was stopped"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the worker {pid} was killed and reaped"
    );
    let missing = dir.path().join("no-such-program");
    let e = run(&missing).unwrap_err().to_string();
    assert!(e.contains("could not start the jq worker"), "{e}");
}

/// A filter that computes forever without producing a value is abandoned at the limit, and the
/// call returns (the filter's thread is left to run until the test process ends).
#[cfg(test)]
#[tokio::test]
async fn a_filter_running_past_the_limit_is_abandoned() {
    let started = Instant::now();
    let got = run_jq(
        "last(range(1e18))".into(),
        JqInput::Value(Value::Null),
        Duration::from_millis(200),
    )
    .await;
    assert!(
        matches!(&got, Err(e) if e.to_string().contains("ran longer than 200 ms")),
        "{got:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // A quick filter is unaffected by the limit.
    let got = run_jq(
        ". + 1".into(),
        JqInput::Value(json!(1)),
        Duration::from_secs(30),
    )
    .await;
    assert!(matches!(&got, Ok(v) if *v == vec![json!(2)]), "{got:?}");
}

fn jq_eval_val(code: &str, input: jaq_json::Val) -> Result<Vec<Value>, ToolError> {
    use jaq_core::data::JustLut;
    use jaq_core::load::{Arena, File as JqFile, Loader};
    use jaq_json::Val;

    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs().filter(|f| !WITHHELD.contains(&f.0)))
        .chain(jaq_json::funs());
    let arena = Arena::default();
    let modules = Loader::new(defs)
        .load(&arena, JqFile { code, path: () })
        .map_err(|errs| {
            invalid(format!(
                "the filter does not parse: {}",
                parse_errors(code, &errs)
            ))
        })?;
    let filter = jaq_core::Compiler::<_, JustLut<Val>>::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errs| {
            invalid(format!(
                "the filter does not compile: {}",
                compile_errors(&errs)
            ))
        })?;
    let ctx = jaq_core::Ctx::<JustLut<Val>>::new(&filter.lut, jaq_core::Vars::new([]));
    let mut out: Vec<Value> = Vec::new();
    let mut budget = MAX_RESULT_BYTES;
    for item in filter.id.run((ctx, input)) {
        match item {
            Ok(v) => {
                if out.len() >= MAX_RESULTS {
                    return Err(failed(format!(
                        "the filter produces more than {MAX_RESULTS} values and was stopped there; \
                         narrow it: `limit(100; f)`, `first(f)`, `.[0:100]`, or aggregate \
                         (`length`, `add`, `group_by`)"
                    )));
                }
                match from_val(&v, 0, &mut budget) {
                    Ok(json) => out.push(json),
                    Err(Overflow::Big) => {
                        return Err(failed(format!(
                            "the filter's results pass {} MiB of JSON (after {} value(s)); \
                             narrow it (select fewer fields or values, or aggregate)",
                            MAX_RESULT_BYTES / MIB,
                            out.len()
                        )))
                    }
                    Err(Overflow::Deep) => {
                        return Err(failed(format!(
                            "result {} is nested deeper than {MAX_DEPTH} levels",
                            out.len() + 1
                        )))
                    }
                }
            }
            Err(exn) => match exn.get_err() {
                Ok(err) => {
                    return Err(failed(format!(
                        "the filter failed after {} value(s): {}",
                        out.len(),
                        capped_display(&err, 2000)
                    )))
                }
                // `halt` ends the filter (jq would exit); jaq never exits the process here.
                Err(exn) => match exn.get_halt() {
                    Ok(0) => break,
                    Ok(code) => {
                        return Err(failed(format!(
                            "the filter halted with exit code {code} after {} value(s)",
                            out.len()
                        )))
                    }
                    Err(_) => {
                        return Err(failed(
                            "the filter ended in a state the jq engine does not expose (a \
                             `break` outside its `label`?)"
                                .into(),
                        ))
                    }
                },
            },
        }
    }
    Ok(out)
}

/// JSON → jaq's value; `None` past [`MAX_DEPTH`].
fn to_val(v: &Value, depth: usize) -> Option<jaq_json::Val> {
    use jaq_json::{Num, Val};
    if depth > MAX_DEPTH {
        return None;
    }
    Some(match v {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                match isize::try_from(i) {
                    Ok(i) => Val::from(i),
                    Err(_) => Val::Num(Num::from_integral(i)),
                }
            } else if let Some(u) = n.as_u64() {
                Val::Num(Num::from_integral(u))
            } else {
                Val::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => Val::from(s.clone()),
        Value::Array(a) => a
            .iter()
            .map(|x| to_val(x, depth + 1))
            .collect::<Option<Val>>()?,
        Value::Object(o) => Val::obj(
            o.iter()
                .map(|(k, x)| Some((Val::from(k.clone()), to_val(x, depth + 1)?)))
                .collect::<Option<jaq_json::Map>>()?,
        ),
    })
}

enum Overflow {
    Deep,
    Big,
}

/// jaq's value → JSON, spending `budget` bytes (JSON text without escapes). NaN and infinities
/// become null (as jq prints them); byte strings and invalid UTF-8 are read lossily; object keys
/// that are not strings become their JSON text.
fn from_val(v: &jaq_json::Val, depth: usize, budget: &mut usize) -> Result<Value, Overflow> {
    use jaq_json::Val;
    fn spend(budget: &mut usize, n: usize) -> Result<(), Overflow> {
        *budget = budget.checked_sub(n).ok_or(Overflow::Big)?;
        Ok(())
    }
    if depth > MAX_DEPTH {
        return Err(Overflow::Deep);
    }
    Ok(match v {
        Val::Null => {
            spend(budget, 4)?;
            Value::Null
        }
        Val::Bool(b) => {
            spend(budget, 5)?;
            Value::Bool(*b)
        }
        Val::Num(n) => {
            let json = num_to_json(n);
            spend(budget, 24)?;
            json
        }
        Val::TStr(b) | Val::BStr(b) => {
            spend(budget, b.len().saturating_add(2))?;
            Value::String(String::from_utf8_lossy(b).into_owned())
        }
        Val::Arr(a) => {
            spend(budget, 2)?;
            let mut out = Vec::with_capacity(a.len().min(4096));
            for x in a.iter() {
                spend(budget, 1)?;
                out.push(from_val(x, depth + 1, budget)?);
            }
            Value::Array(out)
        }
        Val::Obj(o) => {
            spend(budget, 2)?;
            let mut out = serde_json::Map::new();
            for (k, x) in o.iter() {
                let key = match k {
                    Val::TStr(b) | Val::BStr(b) => String::from_utf8_lossy(b).into_owned(),
                    other => capped_display(other, 1024),
                };
                spend(budget, key.len().saturating_add(4))?;
                let value = from_val(x, depth + 1, budget)?;
                out.insert(key, value);
            }
            Value::Object(out)
        }
    })
}

fn num_to_json(n: &jaq_json::Num) -> Value {
    use jaq_json::Num;
    match n {
        Num::Int(i) => Value::from(*i),
        Num::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        other => {
            let text = other.to_string();
            match serde_json::from_str::<serde_json::Number>(&text) {
                Ok(n) => Value::Number(n),
                Err(_) => text
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number),
            }
        }
    }
}

type JqLoadErrors<'s> = [(
    jaq_core::load::File<&'s str, ()>,
    jaq_core::load::Error<&'s str>,
)];

fn parse_errors(code: &str, errs: &JqLoadErrors<'_>) -> String {
    use jaq_core::load::Error as LoadError;
    let mut out: Vec<String> = Vec::new();
    for (_, e) in errs {
        match e {
            LoadError::Io(list) => {
                for (path, why) in list {
                    out.push(format!("module `{path}`: {why} (modules are not loaded)"));
                }
            }
            LoadError::Lex(list) => {
                for (want, found) in list {
                    let want = lex_expected(want);
                    out.push(format!("expected {want} {}", place(code, found)));
                }
            }
            LoadError::Parse(list) => {
                for (want, found) in list {
                    let want = want.as_str();
                    out.push(format!("expected {want} {}", place(code, found)));
                }
            }
        }
    }
    if out.is_empty() {
        "the parser gave no reason".into()
    } else {
        out.join("; ")
    }
}

/// What the lexer expected (jaq's own `as_str` has no text for some delimiters).
fn lex_expected(want: &jaq_core::load::lex::Expect<&str>) -> String {
    use jaq_core::load::lex::Expect;
    match want {
        Expect::Delim(d) => format!("the closing delimiter of `{d}`"),
        other => other.as_str().to_string(),
    }
}

/// Where in the filter `found` (a slice of it) starts: line and column, and what is there.
fn place(code: &str, found: &str) -> String {
    let base = code.as_ptr() as usize;
    let at = found.as_ptr() as usize;
    if at < base || at > base + code.len() {
        return format!("(found `{}`)", clip(found, 40));
    }
    let before = code.get(..at - base).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    if found.is_empty() {
        format!("at the end of the filter (line {line}, column {column})")
    } else {
        format!(
            "at line {line}, column {column} (found `{}`)",
            clip(found, 40)
        )
    }
}

type JqCompileErrors<'s> = [(
    jaq_core::load::File<&'s str, ()>,
    Vec<(&'s str, jaq_core::compile::Undefined)>,
)];

fn compile_errors(errs: &JqCompileErrors<'_>) -> String {
    use jaq_core::compile::Undefined;
    let mut out: Vec<String> = Vec::new();
    for (_, list) in errs {
        for (name, what) in list {
            let arity = match what {
                Undefined::Filter(n) => format!("/{n}"),
                _ => String::new(),
            };
            let hint = if WITHHELD.contains(name) || NOT_OFFERED.contains(name) {
                " (not available here: query_json reads only its input, not the environment or \
                 other inputs)"
            } else {
                ""
            };
            out.push(format!("undefined {} `{name}{arity}`{hint}", what.as_str()));
        }
    }
    if out.is_empty() {
        "the compiler gave no reason".into()
    } else {
        out.join("; ")
    }
}

/// Writes into a string and fails past `cap` bytes, so a huge (or deeply nested) value's text
/// is cut short instead of built whole.
struct Capped {
    out: String,
    cap: usize,
    full: bool,
}

impl fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.cap.saturating_sub(self.out.len());
        if s.len() <= room {
            self.out.push_str(s);
            return Ok(());
        }
        let mut end = room;
        while end > 0 && !s.is_char_boundary(end) {
            end -= 1;
        }
        self.out.push_str(s.get(..end).unwrap_or(""));
        self.full = true;
        Err(fmt::Error)
    }
}

fn capped_display(v: &impl fmt::Display, cap: usize) -> String {
    let mut w = Capped {
        out: String::new(),
        cap,
        full: false,
    };
    let _ = write!(w, "{v}");
    if w.full {
        w.out.push('…');
    }
    w.out
}

// ---------------------------------------------------------------------------------------------
// CSV

/// Read a CSV (or TSV, with `delimiter`) file. With a header (the default) each row is an
/// object keyed by column name; without, an array of strings. Cells are returned as text.
/// Quoted fields (with delimiters, quotes or line breaks inside) are read as one cell; rows may
/// have different lengths. Returns at most `max_rows` rows (default 1000, at most 100000) and
/// 16 MiB of JSON (every column of every row counted); `truncated` says when the file has more.
/// A row of more than 10000 cells is refused. Invalid UTF-8 is replaced by U+FFFD.
#[capability(effects(read, filesystem))]
pub fn read_csv(
    ctx: &Ctx,
    /// The file: an absolute path inside an allowed directory, or one relative to the first.
    path: String,
    /// The field delimiter, one ASCII character (default `,`; `\t` or `tab` for TSV).
    delimiter: Option<String>,
    /// Whether the first row names the columns (default true).
    has_header: Option<bool>,
    /// Rows to return at most (default 1000, at most 100000).
    max_rows: Option<u64>,
) -> Result<CsvTable, ToolError> {
    check_path(&path, "path")?;
    let delim = delimiter_of(delimiter.as_deref())?;
    let limit = row_limit(max_rows)?;
    let with_header = has_header.unwrap_or(true);
    let fs = ctx.fs();
    let shown = fs.locate(&path)?.shown;
    let file = fs.open_regular(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delim)
        .has_headers(false)
        .flexible(true)
        .from_reader(RecordBound {
            file,
            read: 0,
            start: 0,
            over: false,
        });
    let mut record = csv::ByteRecord::new();
    let mut names = Names::default();
    let mut columns: Vec<String> = Vec::new();
    // The budget counts what the result holds, as JSON without escapes: the column names, and
    // each row as it is returned (with a header: every column's key, and null for each missing
    // cell).
    let mut budget = MAX_ROW_BYTES;
    // With a header: what the keys of one row cost (every column is a key of every row).
    let mut keys_cost = 0usize;
    // Records read, the header included (for messages).
    let mut records = 0u64;
    if with_header && next_record(&mut reader, &mut record, &shown)? {
        records += 1;
        check_width(&record, records, &shown)?;
        columns = unique_names(
            record
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned()),
            &mut names,
        );
        keys_cost = columns
            .iter()
            .fold(0usize, |n, c| n.saturating_add(name_cost(c)));
        // The header's names, in `columns`.
        budget = budget.saturating_sub(keys_cost);
    }
    let mut rows: Vec<Value> = Vec::new();
    let mut truncated = false;
    let mut width = 0usize;
    while next_record(&mut reader, &mut record, &shown)? {
        records += 1;
        if rows.len() as u64 >= limit {
            truncated = true;
            break;
        }
        check_width(&record, records, &shown)?;
        let cells: Vec<String> = record
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        let cells_cost = cells
            .iter()
            .fold(0usize, |n, c| n.saturating_add(c.len().saturating_add(3)));
        // Columns this row adds: their names go into `columns` (and, with a header, are keys of
        // this row and every later one).
        let before = columns.len();
        let mut added = 0usize;
        if with_header {
            while columns.len() < cells.len() {
                let name = names.claim(format!("column_{}", columns.len() + 1));
                added = added.saturating_add(name_cost(&name));
                columns.push(name);
            }
        } else {
            for i in width + 1..=cells.len() {
                added = added.saturating_add(name_cost(&format!("column_{i}")));
            }
        }
        let row_cost = if with_header {
            let nulls = columns.len().saturating_sub(cells.len()).saturating_mul(4);
            keys_cost
                .saturating_add(added)
                .saturating_add(cells_cost)
                .saturating_add(nulls)
        } else {
            cells_cost
        };
        let cost = row_cost.saturating_add(added).saturating_add(3);
        match budget.checked_sub(cost) {
            Some(left) => budget = left,
            None => {
                // The names this row added are not returned either.
                columns.truncate(before);
                truncated = true;
                break;
            }
        }
        if with_header {
            keys_cost = keys_cost.saturating_add(added);
            let mut cells = cells.into_iter();
            let mut row = serde_json::Map::new();
            for name in &columns {
                row.insert(
                    name.clone(),
                    cells.next().map_or(Value::Null, Value::String),
                );
            }
            rows.push(Value::Object(row));
        } else {
            width = width.max(cells.len());
            rows.push(Value::Array(cells.into_iter().map(Value::String).collect()));
        }
    }
    if !with_header {
        columns = (1..=width).map(|i| format!("column_{i}")).collect();
    }
    Ok(CsvTable {
        path: shown.display().to_string(),
        columns,
        row_count_read: rows.len() as u64,
        rows,
        truncated,
    })
}

/// A file read for CSV, counting what one record takes: the reader holds a whole record in
/// memory, so one record longer than everything `read_csv` may return (a quoted field never
/// closed, in a file of a gigabyte) is stopped as it is read, not after.
struct RecordBound {
    file: File,
    /// Bytes read, and where the record being read began.
    read: u64,
    start: u64,
    over: bool,
}

impl std::io::Read for RecordBound {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // The reader's own buffer lies between what was read and what it parsed: a margin.
        if self.read - self.start > (MAX_ROW_BYTES + 64 * 1024) as u64 {
            self.over = true;
            return Err(std::io::Error::other("a record longer than 16 MiB"));
        }
        let n = self.file.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

fn next_record(
    reader: &mut csv::Reader<RecordBound>,
    record: &mut csv::ByteRecord,
    shown: &Path,
) -> Result<bool, ToolError> {
    let bound = reader.get_mut();
    bound.start = bound.read;
    reader.read_byte_record(record).map_err(|e| {
        if reader.get_ref().over {
            failed(format!(
                "{}: a record is longer than {} MiB, all read_csv returns at once (a quote never \
                 closed?); look at the file with read_text_file (head, tail)",
                shown.display(),
                MAX_ROW_BYTES / MIB
            ))
        } else {
            failed(format!("{}: {e}", shown.display()))
        }
    })
}

/// Refuses a record of more than [`MAX_COLUMNS`] cells (`n`: its number, the header being 1).
fn check_width(record: &csv::ByteRecord, n: u64, shown: &Path) -> Result<(), ToolError> {
    if record.len() <= MAX_COLUMNS {
        return Ok(());
    }
    let line = record
        .position()
        .map_or_else(String::new, |p| format!(" (line {})", p.line()));
    Err(failed(format!(
        "{}: row {n}{line} has {} cells; read_csv reads at most {MAX_COLUMNS} columns",
        shown.display(),
        record.len()
    )))
}

/// What a column name costs in the result: `"name",` in `columns`, or `"name":` and a comma
/// as a row's key.
fn name_cost(name: &str) -> usize {
    name.len().saturating_add(4)
}

/// Column names: empty ones become `column_N`, repeated ones get `_2`, `_3`…
fn unique_names(names: impl Iterator<Item = String>, taken: &mut Names) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, name) in names.enumerate() {
        let name = if name.trim().is_empty() {
            format!("column_{}", i + 1)
        } else {
            name
        };
        out.push(taken.claim(name));
    }
    out
}

/// The column names given so far, so that a new one is made unique in about constant time
/// (a header of k equal names costs about k suffixes tried, not k² comparisons each).
#[derive(Default)]
struct Names {
    taken: std::collections::HashSet<String>,
    /// For a name given more than once: the next suffix to try (every lower one is taken).
    next: std::collections::HashMap<String, usize>,
}

impl Names {
    /// `name` if it is not taken yet, else `name_N` with the lowest free N from 2; taken now.
    fn claim(&mut self, name: String) -> String {
        if self.taken.insert(name.clone()) {
            return name;
        }
        let n = self.next.entry(name.clone()).or_insert(2);
        loop {
            let candidate = format!("{name}_{n}");
            *n += 1;
            if self.taken.insert(candidate.clone()) {
                return candidate;
            }
        }
    }
}

/// Write rows to a CSV file (created, or replaced atomically). Rows are objects keyed by column
/// or arrays of cells. The header is `columns` when given, else the keys of the first object
/// row in their order (none when every row is an array). Strings are written as they are,
/// numbers and booleans as text, null as an empty cell, arrays and objects as JSON text; cells
/// with delimiters, quotes or line breaks are quoted. An object row with a key that is not a
/// column is refused (nothing is written). Undo puts the file back as it was.
#[capability(
    effects(create, update, filesystem),
    idempotent,
    undo = file_snapshot(paths = ["$args.path"])
)]
pub fn write_csv(
    ctx: &Ctx,
    /// The file to write: an absolute path inside an allowed directory, or one relative to the
    /// first. Its directory must exist.
    path: String,
    /// The rows: objects (keyed by column name) or arrays (cells in order).
    rows: Vec<Value>,
    /// The field delimiter, one ASCII character (default `,`; `\t` or `tab` for TSV).
    delimiter: Option<String>,
    /// The header, in order (default: the first object row's keys).
    columns: Option<Vec<String>>,
) -> Result<CsvWritten, ToolError> {
    check_path(&path, "path")?;
    let delim = delimiter_of(delimiter.as_deref())?;
    let header: Option<Vec<String>> = match columns {
        Some(c) => {
            if c.is_empty() {
                return Err(invalid(
                    "`columns` is empty: name the columns, or leave `columns` out to take them \
                     from the first object row"
                        .into(),
                ));
            }
            let mut seen = BTreeSet::new();
            if let Some(dup) = c.iter().find(|n| !seen.insert(n.as_str())) {
                return Err(invalid(format!(
                    "`columns` names `{dup}` twice: each column needs its own name"
                )));
            }
            Some(c)
        }
        None => rows
            .iter()
            .find_map(Value::as_object)
            .map(|o| o.keys().cloned().collect()),
    };
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delim)
        .flexible(true)
        .from_writer(Vec::new());
    let csv_failed = |e: csv::Error| failed(format!("could not write the CSV: {e}"));
    if let Some(h) = &header {
        writer.write_record(h).map_err(csv_failed)?;
    }
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = match row {
            Value::Object(o) => {
                let Some(h) = &header else {
                    return Err(invalid(format!(
                        "`rows[{i}]` is an object but there is no header: give `columns`"
                    )));
                };
                if let Some(k) = o.keys().find(|k| !h.contains(k)) {
                    return Err(invalid(format!(
                        "`rows[{i}]` has the key `{k}`, which is not a column ({}): add it to \
                         `columns`, or leave it out of the row. Nothing was written.",
                        h.join(", ")
                    )));
                }
                h.iter()
                    .map(|c| o.get(c).map(cell_text).unwrap_or_default())
                    .collect()
            }
            Value::Array(a) => a.iter().map(cell_text).collect(),
            other => {
                return Err(invalid(format!(
                    "`rows[{i}]` is {}: each row is an object (keyed by column) or an array \
                     (cells in order). Nothing was written.",
                    kind_of(other)
                )))
            }
        };
        writer.write_record(&cells).map_err(csv_failed)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| failed(format!("could not write the CSV: {}", e.error())))?;
    let fs = ctx.fs();
    let shown = fs.locate(&path)?.shown;
    refuse_special(fs, &path, &shown)?;
    fs.write(path, &bytes)?;
    Ok(CsvWritten {
        path: shown.display().to_string(),
        columns: header.unwrap_or_default(),
        rows_written: rows.len() as u64,
        bytes: bytes.len() as u64,
    })
}

/// A cell's text: strings as they are, null empty, other scalars as JSON, nested values as
/// JSON text.
fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn delimiter_of(given: Option<&str>) -> Result<u8, ToolError> {
    let Some(given) = given else {
        return Ok(b',');
    };
    let d = match given {
        "\\t" | "tab" | "TAB" | "Tab" => "\t",
        other => other,
    };
    let mut chars = d.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii() && !matches!(c, '"' | '\n' | '\r') => {
            u8::try_from(u32::from(c)).map_err(|_| bad_delimiter(given))
        }
        _ => Err(bad_delimiter(given)),
    }
}

fn bad_delimiter(given: &str) -> ToolError {
    invalid(format!(
        "`delimiter` is \"{}\": give one ASCII character other than a quote or a line break, \
         such as \",\", \";\", \"|\" or \"\\t\" (tab)",
        given.escape_debug()
    ))
}

fn row_limit(max_rows: Option<u64>) -> Result<u64, ToolError> {
    match max_rows {
        None => Ok(DEFAULT_ROWS),
        Some(0) => Err(invalid("`max_rows` is 0: ask for at least one row".into())),
        Some(n) if n > MAX_ROWS => Err(invalid(format!(
            "`max_rows` is {n}; at most {MAX_ROWS} rows are returned in one call (read the \
             rest with a narrower query)"
        ))),
        Some(n) => Ok(n),
    }
}

// ---------------------------------------------------------------------------------------------
// SQLite

/// Run one read-only SQL statement (SELECT, a read-only PRAGMA such as `table_info`, EXPLAIN)
/// on an SQLite database file and return its rows. Values are bound from `params` to `?`,
/// `?NNN` or `:name` placeholders in order — never paste values into `sql`. The database is
/// opened read-only; a statement that would change anything, ATTACH, and more than one
/// statement are refused. Returns at most `max_rows` rows (default 1000, at most 100000) and
/// 16 MiB of values; `truncated` says when there are more. INTEGER and REAL come back as
/// numbers, TEXT as strings, NULL as null, BLOB as `{"base64": "…"}`. A statement running
/// longer than 30 s is stopped.
#[capability(effects(read, database))]
pub fn sqlite_query(
    ctx: &Ctx,
    /// The database file: an absolute path inside an allowed directory, or one relative to the
    /// first.
    database: String,
    /// One SQL statement.
    sql: String,
    /// Values for the statement's placeholders, in order: strings, numbers, booleans (1/0),
    /// null, or `{"base64": "…"}` for a BLOB.
    params: Option<Vec<Value>>,
    /// Rows to return at most (default 1000, at most 100000).
    max_rows: Option<u64>,
) -> Result<SqlRows, ToolError> {
    check_sql(&sql)?;
    let limit = row_limit(max_rows)?;
    let values = bind_values(params.as_deref())?;
    let db = database_file(ctx.fs(), &database, false)?;
    let shown = db.shown.clone();
    let mut conn = open_db(&db, false)?;
    let gate = install_gate(&mut conn, Mode::Read).map_err(|e| sql_error(&shown, &e, None))?;
    set_judging(&gate, true);
    let mut stmt = conn.prepare(&sql).map_err(|e| match e {
        rusqlite::Error::MultipleStatement => {
            invalid("`sql` holds more than one statement: sqlite_query runs one per call".into())
        }
        rusqlite::Error::Empty => no_statement(),
        e => sql_error(&shown, &e, Some(&gate)),
    })?;
    if !stmt.readonly() {
        return Err(invalid(
            "the statement would change the database: sqlite_query runs read-only statements \
             (SELECT, read-only PRAGMA, EXPLAIN); change rows with sqlite_execute"
                .into(),
        ));
    }
    check_parameters(&stmt, &values, 1)?;
    let columns: Vec<String> = stmt.column_names().map(String::from).collect();
    let mut rows_out: Vec<Vec<Value>> = Vec::new();
    let mut budget = MAX_ROW_BYTES;
    let mut truncated = false;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(values.iter()))
        .map_err(|e| sql_error(&shown, &e, Some(&gate)))?;
    'rows: while let Some(row) = rows
        .next()
        .map_err(|e| sql_error(&shown, &e, Some(&gate)))?
    {
        if rows_out.len() as u64 >= limit {
            truncated = true;
            break;
        }
        let mut cells = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            let v = row
                .get_ref(i)
                .map_err(|e| sql_error(&shown, &e, Some(&gate)))?;
            // The value's size is checked against what is left before it is copied.
            let Some((cell, size)) = cell_json(v, budget) else {
                truncated = true;
                break 'rows;
            };
            budget = budget.saturating_sub(size);
            cells.push(cell);
        }
        rows_out.push(cells);
    }
    Ok(SqlRows {
        columns,
        row_count: rows_out.len() as u64,
        rows: rows_out,
        truncated,
    })
}

/// Change an SQLite database file: INSERT, UPDATE, DELETE (REPLACE, UPSERT, RETURNING
/// included), all in one transaction — if any statement fails, nothing is changed. With
/// `params`, `sql` is one statement and the values are bound to its placeholders (never paste
/// values into `sql`); without, `sql` may hold several statements separated by `;`. Undo puts
/// back exactly the rows this call changed, and refuses (changing nothing) when one of them was
/// changed again since. Schema changes (CREATE, DROP, ALTER, indexes, triggers, views) and
/// writes to tables without a PRIMARY KEY cannot be undone: such a call is irreversible, so it
/// runs only when the user confirms (or policy allows it). ATTACH, transaction statements and
/// pragmas that change settings are refused. A statement running longer than 30 s is stopped
/// (nothing is changed).
#[capability(
    effects(create, update, delete, database),
    undo = custom,
    irreversible_when = sqlite_execute_irreversible
)]
pub fn sqlite_execute(
    ctx: &Ctx,
    /// The database file (it must exist): an absolute path inside an allowed directory, or one
    /// relative to the first.
    database: String,
    /// The SQL: one statement with `params`, one or more without.
    sql: String,
    /// Values for the statement's placeholders, in order: strings, numbers, booleans (1/0),
    /// null, or `{"base64": "…"}` for a BLOB.
    params: Option<Vec<Value>>,
) -> Result<SqlChange, ToolError> {
    check_sql(&sql)?;
    let values = bind_values(params.as_deref())?;
    let db = database_file(ctx.fs(), &database, true)?;
    let shown = db.shown.clone();
    let mut conn = open_db(&db, true)?;
    // The engine's policy let this call run knowing it cannot be undone: what the session
    // extension does not record runs too, and nothing is recorded.
    let (mode, granted) = match ctx.irreversible_granted() {
        Some(why) => (Mode::Irreversible, why),
        None => (Mode::Write, ""),
    };
    let gate =
        install_gate_granting(&mut conn, mode, granted).map_err(|e| sql_error(&shown, &e, None))?;
    // Rows written by foreign-key actions are not named when statements are prepared; the
    // update hook sees every row written to a rowid table.
    let touched: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    if mode == Mode::Write {
        let touched = Arc::clone(&touched);
        conn.update_hook(Some(move |_: Action, db: &str, table: &str, _: i64| {
            if db == "main" {
                if let Ok(mut t) = touched.lock() {
                    if !t.contains(table) {
                        t.insert(table.to_string());
                    }
                }
            }
        }))
        .map_err(|e| sql_error(&shown, &e, None))?;
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| sql_error(&shown, &e, None))?;
    if mode == Mode::Irreversible {
        let ran = run_statements(&tx, &sql, &values, &gate, &shown).map_err(nothing_changed)?;
        let last_insert_rowid = tx.last_insert_rowid();
        tx.commit()
            .map_err(|e| nothing_changed(sql_error(&shown, &e, None)))?;
        return Ok(SqlChange {
            database: shown.display().to_string(),
            rows_changed: ran.rows_changed,
            last_insert_rowid,
            statements: ran.statements,
            recorded_changes: 0,
            tables: Vec::new(),
        });
    }
    let mut session = Session::new(&tx).map_err(|e| sql_error(&shown, &e, None))?;
    session
        .attach::<&str>(None)
        .map_err(|e| sql_error(&shown, &e, None))?;
    let ran = run_statements(&tx, &sql, &values, &gate, &shown).map_err(nothing_changed)?;
    let seen = touched.lock().map(|t| t.clone()).unwrap_or_default();
    check_recorded(&tx, &seen, &shown).map_err(nothing_changed)?;
    let mut changes: Vec<u8> = Vec::new();
    session
        .changeset_strm(&mut changes)
        .map_err(|e| nothing_changed(sql_error(&shown, &e, None)))?;
    drop(session);
    let (inverse, shapes) = if changes.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let shapes =
            changeset_shapes(&changes).map_err(|e| nothing_changed(sql_error(&shown, &e, None)))?;
        let inverse = invert(&changes).map_err(|e| nothing_changed(sql_error(&shown, &e, None)))?;
        (inverse, shapes)
    };
    if inverse.len() > MAX_CHANGESET_BYTES {
        return Err(failed(format!(
            "{}: the change is too large to keep for undo ({} MiB of row changes; at most {} MiB): \
             split it into smaller calls. Nothing was changed.",
            shown.display(),
            inverse.len() / MIB,
            MAX_CHANGESET_BYTES / MIB
        )));
    }
    let last_insert_rowid = tx.last_insert_rowid();
    let fingerprints =
        fingerprints(&tx, &shapes).map_err(|e| nothing_changed(sql_error(&shown, &e, None)))?;
    tx.commit()
        .map_err(|e| nothing_changed(sql_error(&shown, &e, None)))?;
    if !inverse.is_empty() {
        ctx.compensate(
            "sqlite_apply_changeset",
            json!({
                "database": shown.display().to_string(),
                "changeset": base64::engine::general_purpose::STANDARD.encode(&inverse),
                "tables": fingerprints,
            }),
        );
    }
    Ok(SqlChange {
        database: shown.display().to_string(),
        rows_changed: ran.rows_changed,
        last_insert_rowid,
        statements: ran.statements,
        recorded_changes: shapes.iter().map(|s| s.changes).sum(),
        tables: shapes.into_iter().map(|s| s.table).collect(),
    })
}

/// sqlite_execute's `irreversible_when`: before the engine runs a call, its statements are
/// prepared (never run) on a read-only connection; a schema change, or a write to a table whose
/// rows the session extension cannot record, makes the call irreversible (`Some(why)`), and the
/// policy decides. Anything this cannot tell (a statement that does not prepare, a database that
/// does not open) is left to the call itself, which reports it — or refuses, when it meets what
/// this did not see.
fn sqlite_execute_irreversible(ctx: &Ctx, args: &Value) -> Result<Option<String>, ToolError> {
    let (Some(database), Some(sql)) = (
        args.get("database").and_then(Value::as_str),
        args.get("sql").and_then(Value::as_str),
    ) else {
        return Ok(None);
    };
    if check_sql(sql).is_err() {
        return Ok(None);
    }
    let Ok(db) = database_file(ctx.fs(), database, false) else {
        return Ok(None);
    };
    let Ok(mut conn) = open_db(&db, false) else {
        return Ok(None);
    };
    let Ok(gate) = install_gate(&mut conn, Mode::Classify) else {
        return Ok(None);
    };
    // Every statement, so that the reason names everything the call would do that cannot be
    // undone: the user confirms that list, and the call may do nothing else of the kind.
    let mut unrecordable: Vec<String> = Vec::new();
    let mut unchecked = false;
    let mut batch = rusqlite::Batch::new(&conn, sql);
    loop {
        set_judging(&gate, true);
        let next = batch.next();
        set_judging(&gate, false);
        match next {
            Ok(Some(_)) => {}
            Ok(None) => break,
            // A statement that does not prepare yet (it may use a table an earlier one
            // creates): the call itself reports it, or runs it under the same gate.
            Err(_) => {
                unchecked = true;
                break;
            }
        }
        match unrecorded(&conn, &take_written(&gate)) {
            Ok(None) => {}
            Ok(Some(why)) if !unrecordable.contains(&why) => unrecordable.push(why),
            Ok(Some(_)) => {}
            Err(_) => return Ok(None),
        }
    }
    let changes = gate
        .lock()
        .map(|g| g.schema_changes.clone())
        .unwrap_or_default();
    if changes.len() > MAX_SCHEMA_CHANGES {
        return Err(invalid(format!(
            "the SQL makes {} schema changes; at most {MAX_SCHEMA_CHANGES} are made in one call \
             (each is named when the user is asked): split it into several calls",
            changes.len()
        )));
    }
    let mut parts = Vec::new();
    if !changes.is_empty() {
        parts.push(format!(
            "the SQL {} — SQLite's session extension, which records the rows a call changes so \
             that it can be undone, does not record schema changes",
            changes.join(", ")
        ));
    }
    if !unrecordable.is_empty() {
        parts.push(format!(
            "it writes rows that cannot be recorded: {}",
            unrecordable.join("; ")
        ));
    }
    if parts.is_empty() {
        return Ok(None);
    }
    if unchecked {
        parts.push(
            "statements after these could not be checked before the ones above run (they may \
             use what those create); they run too, and may make no other schema change"
                .into(),
        );
    }
    parts.push("none of the rows this call changes can be put back either".into());
    Ok(Some(parts.join("; ")))
}

/// Apply an SQLite changeset (base64) to a database file, in one transaction. This is how a
/// sqlite_execute call is undone: its compensation applies the inverse of what it changed. On
/// the first conflict — a row changed since (its values are not the ones the changeset
/// expects), deleted since, inserted since with the same primary key, or a constraint or
/// foreign key that would break — nothing is written and the error names the table, the row and
/// the conflict: a newer change is never written over. Undo applies the inverse again.
#[capability(effects(create, update, delete, database), undo = custom)]
pub fn sqlite_apply_changeset(
    ctx: &Ctx,
    /// The database file: an absolute path inside an allowed directory, or one relative to the
    /// first.
    database: String,
    /// The changeset, base64-encoded (standard alphabet, padded), as SQLite's session extension
    /// writes it.
    changeset: String,
    /// Each table's columns and key as they were when the change was made (sqlite_execute
    /// records them): a table whose columns were renamed, dropped or added since is not written.
    tables: Option<BTreeMap<String, String>>,
) -> Result<ChangesetApplied, ToolError> {
    if !ctx.is_compensation() {
        return Err(ToolError::NotAllowed {
            message: "sqlite_apply_changeset runs only as the undo (or redo) of a \
                      sqlite_execute call, replayed by the runtime from its journal; change rows \
                      with sqlite_execute"
                .into(),
        });
    }
    if changeset.len() > MAX_CHANGESET_BYTES / 3 * 4 + 8 {
        return Err(invalid(format!(
            "`changeset` is {} bytes of base64; at most {} MiB of changes are applied in one call",
            changeset.len(),
            MAX_CHANGESET_BYTES / MIB
        )));
    }
    let db = database_file(ctx.fs(), &database, true)?;
    let shown = db.shown.clone();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(changeset.trim())
        .map_err(|e| invalid(format!("`changeset` is not base64: {e}")))?;
    if bytes.is_empty() {
        return Err(invalid(
            "`changeset` is empty: there is nothing to apply".into(),
        ));
    }
    let shapes = changeset_shapes(&bytes).map_err(|e| {
        invalid(format!(
            "`changeset` is not an SQLite changeset (as the session extension writes it): {e}"
        ))
    })?;
    let mut conn = open_db(&db, true)?;
    // The changeset holds every row the call wrote, its triggers' and foreign-key actions'
    // included: applied with triggers and foreign-key actions off, it writes those rows and
    // nothing else. Keys are checked after it is applied instead (below).
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)
        .and_then(|_| conn.execute_batch("PRAGMA foreign_keys = OFF"))
        .map_err(|e| sql_error(&shown, &e, None))?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| sql_error(&shown, &e, None))?;
    let broken_before = foreign_key_problems(&tx).map_err(|e| sql_error(&shown, &e, None))?;
    for s in &shapes {
        if s.table.len() >= 7
            && s.table[..7].eq_ignore_ascii_case("sqlite_")
            && !s.table.eq_ignore_ascii_case("sqlite_stat1")
        {
            return Err(ToolError::NotAllowed {
                message: format!(
                    "{}: the changeset writes SQLite's own table `{}`; refused. Nothing was \
                     written.",
                    shown.display(),
                    s.table
                ),
            });
        }
        if let Some(why) = unrecorded_rows(&tx, &BTreeSet::from([s.table.clone()]), false)
            .map_err(|e| sql_error(&shown, &e, None))?
        {
            return Err(ToolError::NotAllowed {
                message: format!(
                    "{}: the changeset writes where sqlite_execute records nothing ({why}); \
                     refused. Nothing was written.",
                    shown.display()
                ),
            });
        }
        if let Some(want) = tables.as_ref().and_then(|t| t.get(&s.table)) {
            let have = table_fingerprint(&tx, &s.table).map_err(|e| sql_error(&shown, &e, None))?;
            if have.as_deref() != Some(want.as_str()) {
                return Err(failed(format!(
                    "{}: the table `{}` no longer has the columns it had when the change was \
                     made (then: {want}; now: {}); its values would land in the wrong columns, \
                     so nothing was written.",
                    shown.display(),
                    s.table,
                    have.as_deref().unwrap_or("no such table")
                )));
            }
        }
        let have = table_pk_flags(&tx, &s.table).map_err(|e| sql_error(&shown, &e, None))?;
        match have {
            None => {
                return Err(failed(format!(
                    "{}: the table `{}` does not exist (any more); the changeset cannot be \
                     applied. Nothing was written.",
                    shown.display(),
                    s.table
                )))
            }
            Some(flags) if flags.len() != s.columns || flags != s.pk => {
                return Err(failed(format!(
                    "{}: the table `{}` no longer has the columns and primary key the changeset \
                     was recorded with (its schema changed since); it cannot be applied. Nothing \
                     was written.",
                    shown.display(),
                    s.table
                )))
            }
            Some(_) => {}
        }
    }
    let conflict: Arc<Mutex<Option<String>>> = Arc::default();
    let first = Arc::clone(&conflict);
    let mut input: &[u8] = &bytes;
    let applied = tx.apply_strm(
        &mut input,
        None::<fn(&str) -> bool>,
        move |kind: ConflictType, item: &ChangesetItem| -> ConflictAction {
            if let Ok(mut c) = first.lock() {
                if c.is_none() {
                    *c = Some(describe_conflict(&kind, item));
                }
            }
            ConflictAction::SQLITE_CHANGESET_ABORT
        },
    );
    if let Some(why) = conflict.lock().ok().and_then(|mut c| c.take()) {
        return Err(failed(format!(
            "{}: not applied, nothing was written: {why}. The database no longer holds what this \
             change expects (when undoing: the rows were changed since the call). Look at them \
             (sqlite_query) and settle it by hand; a newer change is never written over.",
            shown.display()
        )));
    }
    applied.map_err(|e| sql_error(&shown, &e, None))?;
    let broken_after = foreign_key_problems(&tx).map_err(|e| sql_error(&shown, &e, None))?;
    if let Some(p) = broken_after.difference(&broken_before).next() {
        return Err(failed(format!(
            "{}: not applied, nothing was written: a row of `{}` (rowid {}) would refer to a row \
             of `{}` that is not there. Rows were added since that depend on what this change \
             would remove; look at them (sqlite_query) and settle it by hand.",
            shown.display(),
            p.0,
            p.1.map(|r| r.to_string()).unwrap_or_else(|| "?".into()),
            p.2
        )));
    }
    let inverse = invert(&bytes).map_err(|e| sql_error(&shown, &e, None))?;
    let fingerprints = fingerprints(&tx, &shapes).map_err(|e| sql_error(&shown, &e, None))?;
    tx.commit().map_err(|e| sql_error(&shown, &e, None))?;
    ctx.compensate(
        "sqlite_apply_changeset",
        json!({
            "database": shown.display().to_string(),
            "changeset": base64::engine::general_purpose::STANDARD.encode(&inverse),
            "tables": fingerprints,
        }),
    );
    Ok(ChangesetApplied {
        database: shown.display().to_string(),
        changes: shapes.iter().map(|s| s.changes).sum(),
        tables: shapes.into_iter().map(|s| s.table).collect(),
    })
}

/// A database file beneath a root, as SQLite will open it (see the module documentation).
struct DbFile {
    /// The path as the caller sees it (messages, and the undo's `database`).
    shown: PathBuf,
    /// The file's real path: every link resolved, beneath the root's real path.
    real: PathBuf,
    /// (device, inode) of the file the sandbox opened, where the platform has them.
    id: Option<(u64, u64)>,
    /// The handle the sandbox opened, held until SQLite has the file open.
    _handle: std::fs::File,
}

fn database_file(fs: &Fs, path: &str, write: bool) -> Result<DbFile, ToolError> {
    check_path(path, "database")?;
    let at = fs.locate(path)?;
    let shown = at.shown.clone();
    let root = root_of(&at).ok_or_else(|| {
        failed(format!(
            "{}: cannot tell which allowed directory it is in",
            shown.display()
        ))
    })?;
    let handle = fs.open_regular(path)?.into_std();
    let meta = handle
        .metadata()
        .map_err(|e| failed(format!("{}: {e}", shown.display())))?;
    if write && hard_links(&meta) > 1 {
        return Err(ToolError::NotAllowed {
            message: format!(
                "{} has more than one hard link, and another may be outside the allowed roots; \
                 it is not written in place",
                shown.display()
            ),
        });
    }
    let real = real_path(&handle, &at.canonical).map_err(|e| {
        failed(format!(
            "{}: cannot tell the file's real path: {e}",
            shown.display()
        ))
    })?;
    if !real.starts_with(&root) {
        return Err(ToolError::NotAllowed {
            message: format!(
                "{} is {} once its links are resolved, outside the allowed directory {}",
                shown.display(),
                real.display(),
                root.display()
            ),
        });
    }
    if let Some(p) = fs.protected().iter().find(|p| real.starts_with(p)) {
        return Err(ToolError::NotAllowed {
            message: format!(
                "{} is inside the runtime's state directory ({}: the undo journal and audit \
                 log), which data tools never touch",
                shown.display(),
                p.display()
            ),
        });
    }
    Ok(DbFile {
        shown,
        real,
        id: identity(&meta),
        _handle: handle,
    })
}

/// The real path of the root `at` lies in (`canonical` is that root's real path joined with
/// `rel`).
fn root_of(at: &Located<'_>) -> Option<PathBuf> {
    let depth = at.rel.components().count();
    at.canonical.ancestors().nth(depth).map(Path::to_path_buf)
}

/// The path the kernel gives the opened file (every link resolved).
#[cfg(target_os = "linux")]
fn real_path(handle: &std::fs::File, fallback: &Path) -> std::io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    match std::fs::read_link(format!("/proc/self/fd/{}", handle.as_raw_fd())) {
        Ok(p) if p.is_absolute() => Ok(p),
        _ => std::fs::canonicalize(fallback),
    }
}

#[cfg(not(target_os = "linux"))]
fn real_path(_handle: &std::fs::File, fallback: &Path) -> std::io::Result<PathBuf> {
    std::fs::canonicalize(fallback)
}

#[cfg(unix)]
fn identity(m: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_m: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

#[cfg(unix)]
fn hard_links(m: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    m.nlink()
}

#[cfg(not(unix))]
fn hard_links(_m: &std::fs::Metadata) -> u64 {
    1
}

fn open_db(db: &DbFile, write: bool) -> Result<Connection, ToolError> {
    let access = if write {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    };
    // No SQLITE_OPEN_URI (the path is a file name, never a URI with options) and no
    // SQLITE_OPEN_CREATE (the file exists: the sandbox opened it).
    let flags = access | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let conn = Connection::open_with_flags(&db.real, flags).map_err(|e| {
        failed(format!(
            "{}: SQLite cannot open it ({e}); a symbolic link in its real path ({}) is refused",
            db.shown.display(),
            db.real.display()
        ))
    })?;
    // SQLite opened the file by path: it must still be the file the sandbox opened.
    if let Some(id) = db.id {
        let now = std::fs::metadata(&db.real).ok().as_ref().and_then(identity);
        if now != Some(id) {
            return Err(ToolError::NotAllowed {
                message: format!(
                    "{} was replaced or moved while it was being opened; nothing was done (try \
                     again)",
                    db.shown.display()
                ),
            });
        }
    }
    conn.busy_timeout(BUSY_WAIT)
        .map_err(|e| sql_error(&db.shown, &e, None))?;
    let settings = if write {
        "PRAGMA trusted_schema = OFF;"
    } else {
        "PRAGMA trusted_schema = OFF; PRAGMA query_only = ON;"
    };
    conn.execute_batch(settings)
        .map_err(|e| sql_error(&db.shown, &e, None))?;
    // No string, BLOB or row over 64 MiB is read or written ("string or blob too big"), and no
    // database can be attached (ATTACH, VACUUM and VACUUM INTO fail, whatever the authorizer
    // says): on every connection, ours and the caller's statements alike.
    {
        use rusqlite::limits::Limit;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
            .map_err(|e| sql_error(&db.shown, &e, None))?;
        conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, SQL_MAX_LENGTH)
            .map_err(|e| sql_error(&db.shown, &e, None))?;
        conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)
            .map_err(|e| sql_error(&db.shown, &e, None))?;
    }
    Ok(conn)
}

/// What the caller's SQL may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Mode {
    /// sqlite_query: nothing may be written.
    #[default]
    Read,
    /// sqlite_execute: rows may be written; what the session extension cannot record (a schema
    /// change) is refused.
    Write,
    /// sqlite_execute's check before the engine runs a call ([`sqlite_execute_irreversible`]):
    /// a schema change is noted, not refused; nothing runs.
    Classify,
    /// sqlite_execute when the policy let an irreversible call run: schema changes run too.
    Irreversible,
}

/// What the authorizer knows: whether the caller's SQL is being prepared, and what it found.
#[derive(Default)]
struct Gate {
    /// The caller's SQL is being prepared (our own statements are not judged).
    judging: bool,
    mode: Mode,
    /// Why a statement was refused (the first reason).
    refused: Option<String>,
    /// [`Mode::Classify`]: every schema change found, in order.
    schema_changes: Vec<String>,
    /// [`Mode::Irreversible`]: what the policy (the user) let run, as the classification said it;
    /// a schema change not named there is refused.
    granted: String,
    /// Tables of `main` the caller's SQL (its triggers included) writes, not yet checked.
    written: BTreeSet<String>,
}

type SharedGate = Arc<Mutex<Gate>>;

/// Installs the authorizer (what SQL may do) and the time limit.
fn install_gate(conn: &mut Connection, mode: Mode) -> Result<SharedGate, rusqlite::Error> {
    install_gate_granting(conn, mode, "")
}

/// [`install_gate`] for [`Mode::Irreversible`]: `granted` is the reason the policy allowed.
fn install_gate_granting(
    conn: &mut Connection,
    mode: Mode,
    granted: &str,
) -> Result<SharedGate, rusqlite::Error> {
    let gate: SharedGate = Arc::new(Mutex::new(Gate {
        mode,
        granted: granted.to_string(),
        ..Gate::default()
    }));
    let judged = Arc::clone(&gate);
    conn.authorizer(Some(move |c: AuthContext<'_>| -> Authorization {
        let Ok(mut g) = judged.lock() else {
            return Authorization::Deny;
        };
        if !g.judging {
            return Authorization::Allow;
        }
        if matches!(c.action, AuthAction::CreateVtable { .. }) && g.mode != Mode::Read {
            if g.refused.is_none() {
                g.refused = Some(
                    "CREATE VIRTUAL TABLE is refused: a virtual table's module decides what its \
                     rows are and where they live, beyond what these tools can check or undo"
                        .into(),
                );
            }
            return Authorization::Deny;
        }
        if let Some(what) = schema_change(&c.action) {
            match g.mode {
                // Only what the user was told of: the classification named every schema
                // change (`what` is a whole item of that list, see `schema_change`).
                Mode::Irreversible if g.granted.contains(&what) => return Authorization::Allow,
                Mode::Irreversible => {
                    if g.refused.is_none() {
                        g.refused = Some(format!(
                            "the SQL {what}, which is not among the schema changes this call \
                             was allowed to make (they were named when it was checked); nothing \
                             was changed"
                        ));
                    }
                    return Authorization::Deny;
                }
                Mode::Classify => {
                    if !g.schema_changes.contains(&what) {
                        g.schema_changes.push(what);
                    }
                    return Authorization::Allow;
                }
                Mode::Read | Mode::Write => {}
            }
        }
        match judge(&c, g.mode != Mode::Read) {
            Ok(None) => Authorization::Allow,
            Ok(Some(table)) => {
                g.written.insert(table);
                Authorization::Allow
            }
            Err(why) => {
                if g.refused.is_none() {
                    g.refused = Some(why);
                }
                Authorization::Deny
            }
        }
    }))?;
    let started = Instant::now();
    conn.progress_handler(10_000, Some(move || started.elapsed() > SQL_TIME_LIMIT))?;
    Ok(gate)
}

fn set_judging(gate: &SharedGate, on: bool) {
    if let Ok(mut g) = gate.lock() {
        g.judging = on;
    }
}

fn refusal(gate: &SharedGate) -> Option<String> {
    gate.lock().ok().and_then(|mut g| g.refused.take())
}

fn take_written(gate: &SharedGate) -> BTreeSet<String> {
    gate.lock()
        .map(|mut g| std::mem::take(&mut g.written))
        .unwrap_or_default()
}

/// Pragmas that take an argument (a table or index name, or a count) and only read.
const PRAGMAS_WITH_ARGUMENT: [&str; 10] = [
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "integrity_check",
    "quick_check",
];

/// Pragmas that read a setting when given no value (given one, they would change it).
const PRAGMAS_READ: [&str; 14] = [
    "user_version",
    "schema_version",
    "application_id",
    "data_version",
    "page_count",
    "page_size",
    "freelist_count",
    "encoding",
    "foreign_keys",
    "journal_mode",
    "database_list",
    "collation_list",
    "function_list",
    "compile_options",
];

/// What a schema change does, in words (`None`: the action is not one).
fn schema_change(action: &AuthAction<'_>) -> Option<String> {
    // A name in backticks, its own backticks doubled: one item can never read as another.
    let q = |name: &str| format!("`{}`", name.replace('`', "``"));
    let what = match action {
        AuthAction::CreateIndex { index_name, .. }
        | AuthAction::CreateTempIndex { index_name, .. } => {
            format!("creates the index {}", q(index_name))
        }
        AuthAction::CreateTable { table_name } | AuthAction::CreateTempTable { table_name } => {
            format!("creates the table {}", q(table_name))
        }
        AuthAction::CreateTrigger { trigger_name, .. }
        | AuthAction::CreateTempTrigger { trigger_name, .. } => {
            format!("creates the trigger {}", q(trigger_name))
        }
        AuthAction::CreateView { view_name } | AuthAction::CreateTempView { view_name } => {
            format!("creates the view {}", q(view_name))
        }
        AuthAction::CreateVtable { table_name, .. } => {
            format!("creates the virtual table {}", q(table_name))
        }
        AuthAction::DropIndex { index_name, .. } | AuthAction::DropTempIndex { index_name, .. } => {
            format!("drops the index {}", q(index_name))
        }
        AuthAction::DropTable { table_name } | AuthAction::DropTempTable { table_name } => {
            format!("drops the table {}", q(table_name))
        }
        AuthAction::DropTrigger { trigger_name, .. }
        | AuthAction::DropTempTrigger { trigger_name, .. } => {
            format!("drops the trigger {}", q(trigger_name))
        }
        AuthAction::DropView { view_name } | AuthAction::DropTempView { view_name } => {
            format!("drops the view {}", q(view_name))
        }
        AuthAction::DropVtable { table_name, .. } => {
            format!("drops the virtual table {}", q(table_name))
        }
        AuthAction::AlterTable { table_name, .. } => format!("alters the table {}", q(table_name)),
        AuthAction::Analyze { table_name } => format!("analyzes {}", q(table_name)),
        AuthAction::Reindex { index_name } => format!("reindexes {}", q(index_name)),
        _ => return None,
    };
    Some(what)
}

/// What the caller's SQL may do. `Ok(Some(table))`: it writes rows of `table` (in `main`).
fn judge(c: &AuthContext<'_>, write: bool) -> Result<Option<String>, String> {
    let rows_of = |table: &str| -> Result<Option<String>, String> {
        if !write {
            return Err(format!(
                "the statement writes to `{table}`: sqlite_query runs read-only statements \
                 (change rows with sqlite_execute)"
            ));
        }
        // Temporary tables vanish with the connection; only `main` is kept (and undone).
        if c.database_name.is_some_and(|d| d != "main") {
            return Ok(None);
        }
        Ok(Some(table.to_string()))
    };
    match c.action {
        AuthAction::Select
        | AuthAction::Read { .. }
        | AuthAction::Function { .. }
        | AuthAction::Recursive => Ok(None),
        AuthAction::Insert { table_name } | AuthAction::Delete { table_name } => {
            rows_of(table_name)
        }
        AuthAction::Update { table_name, .. } => rows_of(table_name),
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => judge_pragma(pragma_name, pragma_value).map(|()| None),
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Err(
            "ATTACH and DETACH are refused: a statement reaches only the database named in \
             `database`"
                .into(),
        ),
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => Err(
            "transaction statements (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE) are refused: \
             each call already runs in one transaction, committed only when every statement \
             succeeds"
                .into(),
        ),
        AuthAction::CreateIndex { .. }
        | AuthAction::CreateTable { .. }
        | AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::CreateTempView { .. }
        | AuthAction::CreateTrigger { .. }
        | AuthAction::CreateView { .. }
        | AuthAction::CreateVtable { .. }
        | AuthAction::DropIndex { .. }
        | AuthAction::DropTable { .. }
        | AuthAction::DropTempIndex { .. }
        | AuthAction::DropTempTable { .. }
        | AuthAction::DropTempTrigger { .. }
        | AuthAction::DropTempView { .. }
        | AuthAction::DropTrigger { .. }
        | AuthAction::DropView { .. }
        | AuthAction::DropVtable { .. }
        | AuthAction::AlterTable { .. }
        | AuthAction::Analyze { .. }
        | AuthAction::Reindex { .. } => Err(if write {
            "schema changes (CREATE, DROP, ALTER, ANALYZE, REINDEX; tables, indexes, triggers, \
             views) cannot be undone (SQLite's session extension records rows, not the schema), \
             so sqlite_execute runs them only as an irreversible call the runtime's policy \
             allowed (by default with the user's confirmation); this call was not checked that \
             way, so it is refused"
                .to_string()
        } else {
            "schema changes are not read-only: sqlite_query runs read-only statements".to_string()
        }),
        _ => Err(
            "the statement does something these tools do not run (an action SQLite's \
                  authorizer reports as unknown)"
                .into(),
        ),
    }
}

fn judge_pragma(name: &str, value: Option<&str>) -> Result<(), String> {
    let lower = name.to_ascii_lowercase();
    if PRAGMAS_WITH_ARGUMENT.contains(&lower.as_str())
        || (value.is_none() && PRAGMAS_READ.contains(&lower.as_str()))
    {
        return Ok(());
    }
    let shown_value = value.map(|v| format!(" = {v}")).unwrap_or_default();
    Err(format!(
        "PRAGMA {name}{shown_value} is refused: only pragmas that read the schema or a setting \
         run here ({}; and {} without a value)",
        PRAGMAS_WITH_ARGUMENT.join(", "),
        PRAGMAS_READ.join(", ")
    ))
}

#[derive(Default)]
struct Ran {
    statements: u64,
    rows_changed: u64,
}

/// Runs the caller's statements in the open transaction: each is judged as it is prepared,
/// and the tables it writes are checked before it runs.
fn run_statements(
    conn: &Connection,
    sql: &str,
    values: &[SqlValue],
    gate: &SharedGate,
    shown: &Path,
) -> Result<Ran, ToolError> {
    let mut ran = Ran::default();
    if !values.is_empty() {
        set_judging(gate, true);
        let prepared = conn.prepare(sql);
        set_judging(gate, false);
        let mut stmt = prepared.map_err(|e| match e {
            rusqlite::Error::MultipleStatement => invalid(
                "with `params`, `sql` must be one statement (its placeholders take the values); \
                 run several statements without `params`, or one call per statement"
                    .into(),
            ),
            rusqlite::Error::Empty => no_statement(),
            e => sql_error(shown, &e, Some(gate)),
        })?;
        check_written(conn, gate, shown)?;
        run_one(conn, &mut stmt, values, gate, shown, &mut ran)?;
        return Ok(ran);
    }
    let mut batch = rusqlite::Batch::new(conn, sql);
    loop {
        set_judging(gate, true);
        let next = batch.next();
        set_judging(gate, false);
        let Some(mut stmt) = next.map_err(|e| sql_error(shown, &e, Some(gate)))? else {
            break;
        };
        check_written(conn, gate, shown)?;
        run_one(conn, &mut stmt, &[], gate, shown, &mut ran)?;
    }
    if ran.statements == 0 {
        return Err(no_statement());
    }
    Ok(ran)
}

/// Whether the gate is that of a call the policy let run irreversible ([`Mode::Irreversible`]).
fn runs_irreversible(gate: &SharedGate) -> bool {
    gate.lock()
        .map(|g| g.mode == Mode::Irreversible)
        .unwrap_or(false)
}

/// Checks the tables the statement just prepared writes, unless the call runs irreversible.
fn check_written(conn: &Connection, gate: &SharedGate, shown: &Path) -> Result<(), ToolError> {
    let tables = take_written(gate);
    if runs_irreversible(gate) {
        return Ok(());
    }
    check_recorded(conn, &tables, shown)
}

fn run_one(
    conn: &Connection,
    stmt: &mut rusqlite::Statement<'_>,
    values: &[SqlValue],
    gate: &SharedGate,
    shown: &Path,
    ran: &mut Ran,
) -> Result<(), ToolError> {
    check_parameters(stmt, values, ran.statements + 1)?;
    let readonly = stmt.readonly();
    // Judged while it runs too: SQL that SQLite prepares as a statement steps (`PRAGMA
    // optimize` run through `pragma_optimize(...)`, say) meets the same gate. Not in an
    // irreversible call, whose schema changes prepare SQLite's own statements as they run.
    set_judging(gate, !runs_irreversible(gate));
    let stepped = (|| {
        let mut rows = stmt.query(rusqlite::params_from_iter(values.iter()))?;
        while rows.next()?.is_some() {}
        Ok::<(), rusqlite::Error>(())
    })();
    set_judging(gate, false);
    stepped.map_err(|e| sql_error(shown, &e, Some(gate)))?;
    ran.statements += 1;
    if !readonly {
        ran.rows_changed += conn.changes();
    }
    Ok(())
}

fn check_parameters(
    stmt: &rusqlite::Statement<'_>,
    values: &[SqlValue],
    which: u64,
) -> Result<(), ToolError> {
    let expected = stmt.parameter_count();
    if expected == values.len() {
        return Ok(());
    }
    Err(invalid(if values.is_empty() {
        format!(
            "statement {which} has {expected} placeholder(s) (`?`, `?1`, `:name`) but no \
             `params` were given: pass the values in `params` (one statement per call then)"
        )
    } else {
        format!(
            "the statement has {expected} placeholder(s) and `params` has {} value(s): give one \
             value per placeholder",
            values.len()
        )
    }))
}

/// Refuses writes SQLite's session extension would not record (see [`unrecorded`]).
fn check_recorded(
    conn: &Connection,
    tables: &BTreeSet<String>,
    shown: &Path,
) -> Result<(), ToolError> {
    match unrecorded(conn, tables).map_err(|e| sql_error(shown, &e, None))? {
        None => Ok(()),
        Some(why) => Err(ToolError::NotAllowed {
            message: format!(
                "{}: {why}, so the change could not be undone; refused. Give the table a \
                 primary key (a migration), or change it in a call of its own, which then runs \
                 as an irreversible call (with confirmation)",
                shown.display()
            ),
        }),
    }
}

/// Why writes to `tables` would not be recorded by SQLite's session extension: rows of a table
/// without a PRIMARY KEY, of a virtual table or of its shadow tables. Views are passed (their
/// triggers' writes are judged themselves); `sqlite_sequence` (AUTOINCREMENT's counters, which
/// undo leaves as they are) and `sqlite_stat1` (recorded specially) too.
fn unrecorded(
    conn: &Connection,
    tables: &BTreeSet<String>,
) -> Result<Option<String>, rusqlite::Error> {
    unrecorded_rows(conn, tables, true)
}

/// [`unrecorded`]; `null_keys`: also rows whose key holds NULL (not a question when applying a
/// changeset, which touches none).
fn unrecorded_rows(
    conn: &Connection,
    tables: &BTreeSet<String>,
    null_keys_too: bool,
) -> Result<Option<String>, rusqlite::Error> {
    for table in tables {
        if table.eq_ignore_ascii_case("sqlite_stat1") {
            continue;
        }
        // AUTOINCREMENT's own updates of its counters are not named to the authorizer; a
        // statement that writes the counters itself is.
        if table.eq_ignore_ascii_case("sqlite_sequence") {
            return Ok(Some(
                "it writes `sqlite_sequence` (AUTOINCREMENT's counters), which SQLite's session \
                 extension does not record"
                    .into(),
            ));
        }
        let kind: Option<String> = conn
            .query_row(
                "SELECT type FROM pragma_table_list \
                 WHERE schema = 'main' AND name = ?1 COLLATE NOCASE",
                [table.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        match kind.as_deref() {
            Some("table") => {
                let keys: i64 = conn.query_row(
                    "SELECT count(*) FROM pragma_table_info(?1, 'main') WHERE pk > 0",
                    [table.as_str()],
                    |r| r.get(0),
                )?;
                if keys == 0 {
                    return Ok(Some(format!(
                        "the table `{table}` has no PRIMARY KEY, so SQLite's session extension \
                         cannot record its rows"
                    )));
                }
                if null_keys_too && null_keys(conn, table)? {
                    return Ok(Some(format!(
                        "the table `{table}` has rows whose PRIMARY KEY is NULL (the key is not \
                         declared NOT NULL), and SQLite's session extension does not record \
                         such rows"
                    )));
                }
            }
            Some("view") | None => {}
            Some(other) => {
                return Ok(Some(format!(
                    "`{table}` is a {other} table, and SQLite's session extension does not \
                     record its rows"
                )))
            }
        }
    }
    Ok(None)
}

/// Whether `table` (an ordinary table of `main` with a primary key) holds a row whose key has
/// a NULL: possible where the key is not an INTEGER PRIMARY KEY (the rowid), the table is not
/// WITHOUT ROWID and a key column is not NOT NULL. The session extension skips such rows, so a
/// change to one could not be undone.
fn null_keys(conn: &Connection, table: &str) -> Result<bool, rusqlite::Error> {
    let without_rowid: i64 = conn.query_row(
        "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1 COLLATE NOCASE",
        [table],
        |r| r.get(0),
    )?;
    if without_rowid != 0 {
        return Ok(false);
    }
    let mut stmt = conn.prepare(
        "SELECT name, type, \"notnull\" FROM pragma_table_info(?1, 'main') WHERE pk > 0 \
         ORDER BY pk",
    )?;
    let keys = stmt
        .query_map([table], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    if let [(_, ty, _)] = &keys[..] {
        if ty.eq_ignore_ascii_case("INTEGER") {
            return Ok(false);
        }
    }
    let nullable: Vec<String> = keys
        .iter()
        .filter(|(_, _, not_null)| *not_null == 0)
        .map(|(name, _, _)| format!("\"{}\" IS NULL", name.replace('"', "\"\"")))
        .collect();
    if nullable.is_empty() {
        return Ok(false);
    }
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM main.\"{}\" WHERE {})",
        table.replace('"', "\"\""),
        nullable.join(" OR ")
    );
    conn.query_row(&sql, [], |r| r.get::<_, bool>(0))
}

/// A table's columns as undo relies on them: name, declared type and key position of each
/// column, in order, and whether it is WITHOUT ROWID. `None` when there is no such table.
fn table_fingerprint(conn: &Connection, table: &str) -> Result<Option<String>, rusqlite::Error> {
    let mut stmt = conn.prepare(
        "SELECT name, type, pk FROM pragma_table_xinfo(?1, 'main') WHERE hidden = 0 ORDER BY cid",
    )?;
    let cols = stmt
        .query_map([table], |r| {
            Ok(format!(
                "{} {}{}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                match r.get::<_, i64>(2)? {
                    0 => String::new(),
                    k => format!(" key{k}"),
                }
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    if cols.is_empty() {
        return Ok(None);
    }
    Ok(Some(cols.join(", ")))
}

/// The fingerprints of the tables a changeset touches.
fn fingerprints(
    conn: &Connection,
    shapes: &[Shape],
) -> Result<BTreeMap<String, String>, rusqlite::Error> {
    let mut out = BTreeMap::new();
    for s in shapes {
        if let Some(f) = table_fingerprint(conn, &s.table)? {
            out.insert(s.table.clone(), f);
        }
    }
    Ok(out)
}

/// A row whose foreign key refers to nothing: (table, rowid, parent table, constraint).
type KeyProblem = (String, Option<i64>, String, i64);

/// Every [`KeyProblem`] of the database.
fn foreign_key_problems(conn: &Connection) -> Result<BTreeSet<KeyProblem>, rusqlite::Error> {
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<BTreeSet<_>, _>>()?;
    Ok(rows)
}

/// The primary-key flags of a table's columns as the session extension sees them (one per
/// column that is not hidden, in order; 0 for a column outside the key); `None` when the table
/// does not exist.
fn table_pk_flags(conn: &Connection, table: &str) -> Result<Option<Vec<u8>>, rusqlite::Error> {
    if table.eq_ignore_ascii_case("sqlite_stat1") {
        let exists: Option<i64> = conn
            .query_row(
                "SELECT 1 FROM pragma_table_list WHERE schema = 'main' AND name = 'sqlite_stat1'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        return Ok(exists.map(|_| vec![1, 2, 0]));
    }
    let mut stmt = conn
        .prepare("SELECT pk FROM pragma_table_xinfo(?1, 'main') WHERE hidden = 0 ORDER BY cid")?;
    let flags = stmt
        .query_map([table], |r| r.get::<_, i64>(0))?
        .map(|r| r.map(|pk| pk as u8))
        .collect::<Result<Vec<u8>, _>>()?;
    Ok(if flags.is_empty() { None } else { Some(flags) })
}

/// One table's part of a changeset.
struct Shape {
    table: String,
    columns: usize,
    pk: Vec<u8>,
    changes: u64,
}

/// The tables a changeset touches, with their shape as recorded, and how many changes each.
fn changeset_shapes(bytes: &[u8]) -> Result<Vec<Shape>, rusqlite::Error> {
    let mut reader: &[u8] = bytes;
    let input: &mut dyn Read = &mut reader;
    let mut iter = ChangesetIter::start_strm(&input)?;
    let mut shapes: Vec<Shape> = Vec::new();
    while let Some(item) = iter.next()? {
        let op = item.op()?;
        let table = op.table_name();
        match shapes.iter_mut().find(|s| s.table == table) {
            // Every header of a table must agree: SQLite applies each change with its own
            // header, and one that disagrees with the checked one is not checked.
            Some(s)
                if s.columns != usize::try_from(op.number_of_columns()).unwrap_or(0)
                    || s.pk != item.pk()? =>
            {
                let why =
                    format!("the changeset describes the table `{table}` in two different ways");
                return Err(rusqlite::Error::ToSqlConversionFailure(why.into()));
            }
            Some(s) => s.changes += 1,
            None => shapes.push(Shape {
                table: table.to_string(),
                columns: usize::try_from(op.number_of_columns()).unwrap_or(0),
                pk: item.pk()?.to_vec(),
                changes: 1,
            }),
        }
    }
    Ok(shapes)
}

fn invert(changes: &[u8]) -> Result<Vec<u8>, rusqlite::Error> {
    let mut input: &[u8] = changes;
    let mut out: Vec<u8> = Vec::new();
    rusqlite::session::invert_strm(&mut input, &mut out)?;
    Ok(out)
}

/// The conflict, in words: the table, the row (by primary key) and what happened.
fn describe_conflict(kind: &ConflictType, item: &ChangesetItem) -> String {
    if *kind == ConflictType::SQLITE_CHANGESET_FOREIGN_KEY {
        return format!(
            "foreign key constraints would be broken ({} violation(s))",
            item.fk_conflicts().unwrap_or(0)
        );
    }
    let (table, code) = match item.op() {
        Ok(op) => (op.table_name().to_string(), Some(op.code())),
        Err(_) => ("?".to_string(), None),
    };
    let what = match kind {
        ConflictType::SQLITE_CHANGESET_DATA => {
            "the row was changed since: its values are not the ones the change expects"
        }
        ConflictType::SQLITE_CHANGESET_NOTFOUND => "the row is gone (deleted since)",
        ConflictType::SQLITE_CHANGESET_CONFLICT => {
            "a row with this primary key exists (inserted since)"
        }
        ConflictType::SQLITE_CHANGESET_CONSTRAINT => {
            "a constraint (UNIQUE, NOT NULL or CHECK) would be broken"
        }
        _ => "SQLite reported a conflict of a kind it does not name",
    };
    format!(
        "table `{table}`, row with primary key ({}): {what}",
        row_key(item, code)
    )
}

fn row_key(item: &ChangesetItem, code: Option<Action>) -> String {
    let Ok(pk) = item.pk() else {
        return "?".into();
    };
    let mut parts: Vec<String> = Vec::new();
    for (i, flag) in pk.iter().enumerate() {
        if *flag == 0 {
            continue;
        }
        let v = if code == Some(Action::SQLITE_INSERT) {
            item.new_value(i)
        } else {
            item.old_value(i)
        };
        parts.push(v.map_or_else(|_| "?".to_string(), show_value));
    }
    parts.join(", ")
}

fn show_value(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) => format!("'{}'", clip(&String::from_utf8_lossy(t), 60)),
        ValueRef::Blob(b) => format!("a BLOB of {} bytes", b.len()),
    }
}

/// A column value as JSON, and about how many bytes of JSON it is; `None` when that is more
/// than `room`. The size of a TEXT or BLOB is known from its length, and checked before the
/// value is copied or encoded.
fn cell_json(v: ValueRef<'_>, room: usize) -> Option<(Value, usize)> {
    let (value, size) = match v {
        ValueRef::Null => (Value::Null, 4),
        ValueRef::Integer(i) => (Value::from(i), 20),
        ValueRef::Real(f) => (
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
            24,
        ),
        ValueRef::Text(t) => {
            if t.len().saturating_add(2) > room {
                return None;
            }
            // Invalid UTF-8 grows (U+FFFD is 3 bytes): what is kept is counted below.
            let text = String::from_utf8_lossy(t).into_owned();
            let size = text.len().saturating_add(2);
            (Value::String(text), size)
        }
        ValueRef::Blob(b) => {
            // `{"base64":"…"}`: 4 characters for every 3 bytes, padded.
            let size = b.len().div_ceil(3).saturating_mul(4).saturating_add(14);
            if size > room {
                return None;
            }
            let text = base64::engine::general_purpose::STANDARD.encode(b);
            (json!({ "base64": text }), size)
        }
    };
    (size <= room).then_some((value, size))
}

/// `params` → SQLite values.
fn bind_values(params: Option<&[Value]>) -> Result<Vec<SqlValue>, ToolError> {
    params
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, v)| sql_value(i, v))
        .collect()
}

fn sql_value(i: usize, v: &Value) -> Result<SqlValue, ToolError> {
    Ok(match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => {
            if let Some(x) = n.as_i64() {
                SqlValue::Integer(x)
            } else if n.is_u64() {
                return Err(invalid(format!(
                    "`params[{i}]` is {n}, larger than SQLite's 64-bit integers: pass it as a \
                     string"
                )));
            } else if let Some(f) = n.as_f64() {
                SqlValue::Real(f)
            } else {
                return Err(invalid(format!(
                    "`params[{i}]` is a number SQLite cannot hold: {n}"
                )));
            }
        }
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Object(o) if o.len() == 1 && o.contains_key("base64") => match o.get("base64") {
            Some(Value::String(b)) => SqlValue::Blob(
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|e| invalid(format!("`params[{i}].base64` is not base64: {e}")))?,
            ),
            _ => {
                return Err(invalid(format!(
                    "`params[{i}].base64` must be a string of base64"
                )))
            }
        },
        other => {
            return Err(invalid(format!(
                "`params[{i}]` is {}: bind a string, number, boolean or null, or \
                 {{\"base64\": \"…\"}} for a BLOB (JSON goes in as a string, e.g. with \
                 `json(?)`)",
                kind_of(other)
            )))
        }
    })
}

fn check_sql(sql: &str) -> Result<(), ToolError> {
    if sql.trim().is_empty() {
        return Err(no_statement());
    }
    if sql.len() > MAX_SQL_BYTES {
        return Err(invalid(format!(
            "`sql` is {} bytes long; at most {MAX_SQL_BYTES} bytes in one call",
            sql.len()
        )));
    }
    if sql.contains('\0') {
        return Err(invalid("`sql` contains a NUL byte".into()));
    }
    Ok(())
}

fn no_statement() -> ToolError {
    invalid("`sql` holds no statement (only whitespace or comments)".into())
}

fn code_of(e: &rusqlite::Error) -> Option<ErrorCode> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        rusqlite::Error::SqlInputError { error, .. } => Some(error.code),
        _ => None,
    }
}

/// An SQLite error in words, naming the database; a statement the authorizer refused says why.
fn sql_error(shown: &Path, e: &rusqlite::Error, gate: Option<&SharedGate>) -> ToolError {
    if let Some(why) = gate.and_then(refusal) {
        return ToolError::NotAllowed { message: why };
    }
    let place = shown.display();
    match code_of(e) {
        Some(ErrorCode::OperationInterrupted) => failed(format!(
            "{place}: the statement ran longer than {} s and was stopped",
            SQL_TIME_LIMIT.as_secs()
        )),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => failed(format!(
            "{place}: the database is locked by another connection (waited {} s); try again when \
             it is free",
            BUSY_WAIT.as_secs()
        )),
        Some(ErrorCode::NotADatabase) => failed(format!("{place} is not an SQLite database")),
        Some(ErrorCode::ReadOnly) => failed(format!(
            "{place}: the database cannot be written ({e}); check the permissions of the file and \
             of its directory (SQLite writes a journal file beside it)"
        )),
        Some(ErrorCode::AuthorizationForStatementDenied) => ToolError::NotAllowed {
            message: format!("{place}: {e}"),
        },
        _ => match e {
            rusqlite::Error::SqlInputError { .. } => invalid(format!("{place}: {e}")),
            _ => failed(format!("{place}: {e}")),
        },
    }
}

/// Adds that nothing was changed (the transaction is rolled back when the error returns).
fn nothing_changed(e: ToolError) -> ToolError {
    const NOTE: &str = " Nothing was changed (the call runs in one transaction).";
    match e {
        ToolError::InvalidArguments { message } => ToolError::InvalidArguments {
            message: message + NOTE,
        },
        ToolError::Handler { message } => ToolError::Handler {
            message: message + NOTE,
        },
        ToolError::NotAllowed { message } => ToolError::NotAllowed {
            message: message + NOTE,
        },
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Hashes and diffs

/// Hash a file: its SHA-256 digest (or `sha224`, `sha384`, `sha512`) in hexadecimal, and its
/// size. The file is read in chunks, so any size works. Only works within allowed directories.
#[capability(effects(read, filesystem))]
pub fn hash_file(
    ctx: &Ctx,
    /// The file: an absolute path inside an allowed directory, or one relative to the first.
    path: String,
    /// `sha256` (the default), `sha224`, `sha384` or `sha512`.
    algorithm: Option<String>,
) -> Result<FileHash, ToolError> {
    check_path(&path, "path")?;
    let name = algorithm
        .as_deref()
        .unwrap_or("sha256")
        .trim()
        .to_ascii_lowercase()
        .replace('-', "");
    type Hasher = fn(File, &Path) -> Result<(String, u64), ToolError>;
    let hasher: Hasher = match name.as_str() {
        "sha256" => digest::<sha2::Sha256>,
        "sha224" => digest::<sha2::Sha224>,
        "sha384" => digest::<sha2::Sha384>,
        "sha512" => digest::<sha2::Sha512>,
        _ => {
            return Err(invalid(format!(
                "`algorithm` is \"{}\": give sha256 (the default), sha224, sha384 or sha512",
                algorithm.as_deref().unwrap_or_default().escape_debug()
            )))
        }
    };
    let fs = ctx.fs();
    let shown = fs.locate(&path)?.shown;
    let file = fs.open_regular(path)?;
    let (hex, size) = hasher(file, &shown)?;
    Ok(FileHash {
        path: shown.display().to_string(),
        algorithm: name,
        hex,
        size,
    })
}

fn digest<D: sha2::Digest>(mut file: File, shown: &Path) -> Result<(String, u64), ToolError> {
    let mut hasher = D::new();
    let mut buf = vec![0u8; HASH_CHUNK];
    let mut size: u64 = 0;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(failed(format!("{}: {e}", shown.display()))),
        };
        hasher.update(buf.get(..n).unwrap_or_default());
        size += n as u64;
    }
    let mut hex = String::new();
    for b in hasher.finalize().iter() {
        let _ = write!(hex, "{b:02x}");
    }
    Ok((hex, size))
}

/// Compare two texts line by line and return a unified diff (`-` lines only in the old text,
/// `+` lines only in the new, with `context_lines` unchanged lines around each change, 3 by
/// default). Each side is given as text (`old`, `new`) or as a file (`old_path`, `new_path`,
/// UTF-8, up to 16 MiB); the two may be mixed. Only works within allowed directories.
#[capability(effects(read, filesystem))]
pub fn diff_text(
    ctx: &Ctx,
    /// The old text (or give `old_path`).
    old: Option<String>,
    /// The new text (or give `new_path`).
    new: Option<String>,
    /// A file holding the old text: an absolute path inside an allowed directory, or one
    /// relative to the first.
    old_path: Option<String>,
    /// A file holding the new text.
    new_path: Option<String>,
    /// Unchanged lines shown around each change (default 3).
    context_lines: Option<u32>,
) -> Result<TextDiffResult, ToolError> {
    let fs = ctx.fs();
    let (old_name, old_text) = diff_side(fs, "old", old, old_path)?;
    let (new_name, new_text) = diff_side(fs, "new", new, new_path)?;
    let context = usize::try_from(context_lines.unwrap_or(3).min(100_000)).unwrap_or(3);
    let diff = similar::TextDiff::configure()
        .timeout(Duration::from_secs(2))
        .diff_lines(old_text.as_str(), new_text.as_str());
    let (mut added, mut removed) = (0u64, 0u64);
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    let mut unified = diff.unified_diff();
    unified.context_radius(context).header(&old_name, &new_name);
    Ok(TextDiffResult {
        diff: unified.to_string(),
        identical: added == 0 && removed == 0,
        lines_added: added,
        lines_removed: removed,
    })
}

/// One side of a diff: (its name in the header, its text).
fn diff_side(
    fs: &Fs,
    which: &str,
    text: Option<String>,
    path: Option<String>,
) -> Result<(String, String), ToolError> {
    match (text, path) {
        (Some(_), Some(_)) => Err(invalid(format!(
            "give `{which}` (the text) or `{which}_path` (a file), not both"
        ))),
        (None, None) => Err(invalid(format!(
            "give the {which} text: `{which}` (the text) or `{which}_path` (a file)"
        ))),
        (Some(t), None) => Ok((which.to_string(), t)),
        (None, Some(p)) => {
            check_path(&p, &format!("{which}_path"))?;
            let shown = fs.locate(&p)?.shown;
            let file = fs.open_regular(p)?;
            let bytes = read_capped(
                &shown,
                file,
                MAX_DIFF_BYTES,
                "diff_text compares files up to 16 MiB",
            )?;
            let text = String::from_utf8(bytes).map_err(|_| {
                failed(format!(
                    "{} is not UTF-8 text; diff_text compares text (compare binary files with \
                     hash_file)",
                    shown.display()
                ))
            })?;
            Ok((shown.display().to_string(), text))
        }
    }
}

/// Refuses to write over a FIFO, socket or device.
fn refuse_special(fs: &Fs, path: &str, shown: &Path) -> Result<(), ToolError> {
    match fs.info(path, true) {
        Ok(info) if info.kind == EntryKind::Other => Err(ToolError::NotAllowed {
            message: format!(
                "{} is not a regular file (a FIFO, socket or device); it is not written",
                shown.display()
            ),
        }),
        _ => Ok(()),
    }
}

/// A whole file, up to `cap` bytes.
fn read_capped(shown: &Path, file: File, cap: u64, hint: &str) -> Result<Vec<u8>, ToolError> {
    let too_big = |size: u64| failed(format!("{} is {size} bytes; {hint}", shown.display()));
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > cap {
        return Err(too_big(len));
    }
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(cap.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| failed(format!("{}: {e}", shown.display())))?;
    if buf.len() as u64 > cap {
        return Err(too_big(buf.len() as u64));
    }
    Ok(buf)
}

/// At most `max` characters of `s`, with `…` when cut.
fn clip(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// "an array", "a number"… for messages.
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
