//! The undo journal: every mutating call is written ahead (`intended`) before its effect and
//! completed (`done`) after it; every compensation is claimed (`undoing`) before it runs.
//!
//! `journal.sqlite3` under the state directory, in WAL mode with `synchronous = NORMAL`: a
//! transition acknowledged to the caller survives the process being killed (not a power cut,
//! which `FULL` would add at a cost per call). The state directory is created `0700` and the
//! database files `0600`: the journal keeps, unredacted, the data compensations need.
//!
//! Step lifecycle: `intended → done → undoing → undone | failed`, plus `skipped` (a person gave
//! up on undoing it) and `error` (the call itself failed; nothing to undo). Schema in
//! docs/AUDIT_DB_SCHEMA.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What undoing a step takes. Values here are what the compensation needs, kept unredacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepUndo {
    /// Not known yet: the call has not finished (the step is `intended`).
    Pending,
    /// Call these capabilities with these arguments, in order (data: replayable anywhere).
    Calls { calls: Vec<Replay> },
    /// Call the capability's own compensating function with the original arguments and result.
    Function {
        capability: String,
        #[serde(default)]
        args: Value,
        #[serde(default)]
        result: Value,
    },
    /// Closures recorded by the handler; they died with the process that recorded them unless it
    /// is still this one. `calls` holds any data compensations recorded beside them.
    InProcess { calls: Vec<Replay> },
    /// Cannot be undone.
    Irreversible { reason: String },
    /// Write back the files a `file_snapshot` plan kept: `manifest` names (by SHA-256) the
    /// blob that records each path before and after the call ([`crate::snapshot::Manifest`]).
    Files {
        manifest: String,
        /// The paths it covers, as the sandbox shows them (for people; the manifest decides).
        paths: Vec<String>,
        /// Bytes of content kept from before the call.
        bytes: u64,
    },
}

/// SHA-256 of a compensation's journal text, hex.
fn digest_text(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl StepUndo {
    /// The text the journal stores.
    pub fn journal_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// SHA-256 of [`StepUndo::journal_text`]: what the audit log records beside a step, so that a
    /// compensation edited in the journal (values included) no longer matches.
    pub fn digest(&self) -> String {
        digest_text(&self.journal_text())
    }

    /// The kind's name, as serialised.
    pub fn kind(&self) -> &'static str {
        match self {
            StepUndo::Pending => "pending",
            StepUndo::Calls { .. } => "calls",
            StepUndo::Function { .. } => "function",
            StepUndo::InProcess { .. } => "in_process",
            StepUndo::Irreversible { .. } => "irreversible",
            StepUndo::Files { .. } => "files",
        }
    }
}

/// Something an undo recreated under a new identifier: calls of `capability` that name it by
/// `arg = old`, in steps older than `step`, mean `arg = new`.
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    pub old: Value,
    pub new: Value,
    /// The step whose undo recreated it.
    pub step: i64,
    /// `None` in journals written before aliases were scoped: any call, any argument.
    pub capability: Option<String>,
    pub arg: Option<String>,
}

/// One compensating call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replay {
    pub capability: String,
    pub args: Value,
    /// The declared expression each argument was resolved from (`id` → `$result.id`); the engine
    /// refuses a journaled compensation that its capability does not declare. Empty for
    /// compensations a handler recorded itself (`undo = custom`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exprs: BTreeMap<String, aifirst_capability::Expr>,
    /// What the resource looked like after the call (its result, or the snapshot), checked
    /// against a fresh read before a destructive compensation runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
}

/// A read to make before a compensation, and what it must find.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expect {
    /// The read-only capability to call.
    pub read: String,
    /// Its arguments.
    pub args: Value,
    /// The values the read must return for these fields (identity, and for restores the state
    /// the call left behind).
    pub fields: BTreeMap<String, Value>,
}

/// The state of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Journaled before the call ran; not yet known to have finished.
    Intended,
    /// The call finished; its compensation is ready.
    Done,
    /// A compensation was claimed and is running (or its process died while it ran).
    Undoing,
    /// The compensation ran.
    Undone,
    /// The compensation failed; the step stays on the stack.
    Failed,
    /// A person gave up on undoing it; steps below it can be undone.
    Skipped,
    /// The call itself failed: there is nothing to undo.
    Error,
}

impl StepState {
    pub const ALL: [StepState; 7] = [
        StepState::Intended,
        StepState::Done,
        StepState::Undoing,
        StepState::Undone,
        StepState::Failed,
        StepState::Skipped,
        StepState::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Intended => "intended",
            StepState::Done => "done",
            StepState::Undoing => "undoing",
            StepState::Undone => "undone",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
            StepState::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<StepState> {
        StepState::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Still on the undo stack.
    pub fn pending(self) -> bool {
        matches!(
            self,
            StepState::Intended | StepState::Done | StepState::Undoing | StepState::Failed
        )
    }
}

/// A journaled step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub id: i64,
    pub session: String,
    pub capability: String,
    /// The call's arguments, redacted (for people; compensations use `undo`).
    pub args: Value,
    /// The call's result, redacted.
    pub result: Value,
    pub undo: StepUndo,
    pub state: StepState,
    /// Why the step failed, was skipped or errored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Written by this process (in-process compensations are still runnable).
    #[serde(skip)]
    pub pid: u32,
    /// SHA-256 of the compensation as the journal holds it ([`StepUndo::digest`]): the audit
    /// log records the same digest, so an edited compensation is found.
    #[serde(skip)]
    pub undo_digest: String,
    /// The compensation data was journaled unredacted (journal schema 4 on). For older steps
    /// the data may hold redaction markers, and undo refuses data that does.
    #[serde(skip)]
    pub faithful: bool,
}

/// A journal that could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot create the state directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("journal {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("journal entry {id} is unreadable: {why}")]
    Corrupt { id: i64, why: String },
    #[error(
        "journal {path} has schema version {found}, newer than this program's {JOURNAL_VERSION}"
    )]
    TooNew { path: PathBuf, found: i64 },
}

/// A `steps` row before its JSON columns are parsed.
type RawStep = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    u32,
    Option<String>,
    bool,
);

/// The journal of one state directory.
pub struct Journal {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// The audit chain's newest head not yet kept ([`Journal::note_audit_head`]): written by the
    /// next step write, or by [`Journal::flush_audit_head`]. Taken (and put back, should the
    /// write fail) only under `conn`'s lock, so a flush that finds it empty knows it was kept.
    pending_head: Mutex<Option<(i64, String)>>,
}

impl Drop for Journal {
    /// A head noted and not yet kept is kept now (a process that ends normally leaves none).
    fn drop(&mut self) {
        if let Err(e) = self.flush_audit_head() {
            eprintln!("aifirst: audit head not mirrored into the journal: {e}");
        }
    }
}

/// Small file-snapshot content, by SHA-256 (hex), to keep in the same transaction as the step
/// that needs it.
pub(crate) type Blobs = std::collections::HashMap<String, Vec<u8>>;

/// The current journal schema version (`PRAGMA user_version`).
pub const JOURNAL_VERSION: i64 = 6;

const MIGRATIONS: [&str; 6] = [
    "
CREATE TABLE IF NOT EXISTS steps (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session    TEXT    NOT NULL,
    capability TEXT    NOT NULL,
    args       TEXT    NOT NULL,
    result     TEXT    NOT NULL,
    undo       TEXT    NOT NULL,
    state      TEXT    NOT NULL DEFAULT 'done',
    pid        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS steps_by_session ON steps (session, state, id);
CREATE TABLE IF NOT EXISTS checkpoints (
    session TEXT    NOT NULL,
    name    TEXT    NOT NULL,
    step    INTEGER NOT NULL,
    PRIMARY KEY (session, name)
);
CREATE TABLE IF NOT EXISTS aliases (
    session TEXT    NOT NULL,
    old     TEXT    NOT NULL,
    new     TEXT    NOT NULL,
    step    INTEGER NOT NULL
);
",
    "
ALTER TABLE steps ADD COLUMN error TEXT;
-- The audit chain's head, kept here too so that truncating or replacing the audit log is found.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL
);
",
    "
-- Which calls an alias speaks of: calls of `capability`, argument `arg` (NULL: any, as before).
ALTER TABLE aliases ADD COLUMN capability TEXT;
ALTER TABLE aliases ADD COLUMN arg TEXT;
",
    "
-- 1: the step's compensation data was written unredacted (this version on). Older rows may hold
-- redaction markers in place of data; only for them is the data searched for markers.
ALTER TABLE steps ADD COLUMN faithful INTEGER NOT NULL DEFAULT 0;
",
    "
-- File-snapshot content up to 64 KiB, by SHA-256 (hex): one row instead of one file each, so a
-- snapshot of a small file costs no inode. Larger content stays in STATE_DIR/blobs.
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    data   BLOB NOT NULL
);
",
    "
-- What `redo` may re-apply in a session: each step as it is undone, newest undo last; emptied
-- by a completed call (the undone steps are left behind for good), a step leaving it when redone.
CREATE TABLE redo_stack (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT    NOT NULL,
    step    INTEGER NOT NULL
);
CREATE INDEX redo_stack_by_step ON redo_stack (step);
-- What an older journal could redo, oldest step redone first (as it did).
INSERT INTO redo_stack (session, step) SELECT session, id FROM steps WHERE state = 'undone' ORDER BY id DESC;
",
];

/// Creates `dir` (and its parents) `0700` where it does not exist yet.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Opens a runtime database the way the journal and the audit log both want it: the file `0600`,
/// WAL, `synchronous = NORMAL` (a killed process loses no commit), and a 5 s busy timeout for
/// other writers.
pub(crate) fn open_wal(path: &Path) -> rusqlite::Result<Connection> {
    private_file(path);
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// Creates `path` `0600` (or narrows an existing file to it) before SQLite opens it; SQLite gives
/// its `-wal` and `-shm` files the database file's mode.
fn private_file(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path);
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Runs `migrations` from the database's `user_version` on, in one IMMEDIATE transaction (two
/// processes opening a new database at once must not both run them).
pub(crate) fn migrate(
    conn: &mut Connection,
    migrations: &[&str],
) -> Result<(), (rusqlite::Error, Option<i64>)> {
    let latest = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| (e, None))?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| (e, None))?;
    if version > latest {
        return Err((rusqlite::Error::InvalidQuery, Some(version)));
    }
    for (i, m) in migrations
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        tx.execute_batch(m).map_err(|e| (e, None))?;
        tx.pragma_update(None, "user_version", i64::try_from(i + 1).unwrap_or(latest))
            .map_err(|e| (e, None))?;
    }
    tx.commit().map_err(|e| (e, None))
}

/// Keeps the audit head in `audit_head` (never moving it back: another process may have kept a
/// newer one).
fn keep_head(c: &Connection, seq: i64, hash: &str) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash
         WHERE excluded.seq >= audit_head.seq",
    )?
    .execute(params![seq, hash])
    .map(|_| ())
}

/// The journals this process has open, by state directory: the engine and the audit log share
/// one connection, so their writes queue on a mutex instead of on SQLite's sleeping busy handler.
static SHARED: std::sync::Mutex<Vec<(PathBuf, std::sync::Weak<Journal>)>> =
    std::sync::Mutex::new(Vec::new());

impl Journal {
    /// The journal of `state_dir`, shared with everything else in this process that has it open.
    pub fn shared(state_dir: &Path) -> Result<std::sync::Arc<Journal>, JournalError> {
        create_private_dir(state_dir).map_err(|source| JournalError::Dir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let key = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
        let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        shared.retain(|(_, w)| w.strong_count() > 0);
        if let Some(j) = shared
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, w)| w.upgrade())
        {
            return Ok(j);
        }
        let j = std::sync::Arc::new(Journal::open(state_dir)?);
        shared.push((key, std::sync::Arc::downgrade(&j)));
        Ok(j)
    }

    /// Opens (or creates) `journal.sqlite3` in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Journal, JournalError> {
        create_private_dir(state_dir).map_err(|source| JournalError::Dir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join("journal.sqlite3");
        let sql = |source| JournalError::Sqlite {
            path: path.clone(),
            source,
        };
        let mut conn = open_wal(&path).map_err(sql)?;
        migrate(&mut conn, &MIGRATIONS).map_err(|(e, newer)| match newer {
            Some(found) => JournalError::TooNew {
                path: path.clone(),
                found,
            },
            None => sql(e),
        })?;
        Ok(Journal {
            conn: Mutex::new(conn),
            path,
            pending_head: Mutex::new(None),
        })
    }

    /// The journal's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, JournalError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(|source| JournalError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    /// Runs `f` in one IMMEDIATE transaction that also keeps the audit head noted since the last
    /// write ([`Journal::note_audit_head`]): the head costs no commit of its own.
    fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, JournalError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        self.write_locked(&mut conn, f)
    }

    /// [`Journal::write`] on the connection its caller has locked. The pending head is taken
    /// and, when the transaction fails, put back under that lock: whoever holds the lock next
    /// sees it either kept or still pending.
    fn write_locked<T>(
        &self,
        conn: &mut Connection,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, JournalError> {
        let head = self
            .pending_head
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let done = (|| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            if let Some((seq, hash)) = &head {
                keep_head(&tx, *seq, hash)?;
            }
            tx.commit()?;
            Ok(out)
        })();
        if done.is_err() {
            if let Some(h) = head {
                self.note_head(h);
            }
        }
        done.map_err(|source| JournalError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    fn note_head(&self, (seq, hash): (i64, String)) {
        let mut pending = self.pending_head.lock().unwrap_or_else(|p| p.into_inner());
        if pending.as_ref().is_none_or(|(s, _)| *s <= seq) {
            *pending = Some((seq, hash));
        }
    }

    /// Keeps `data` under its SHA-256 `sha256` (hex) in the journal's blob table; nothing is
    /// written when the table has it. Committed when this returns.
    pub(crate) fn put_blob(&self, sha256: &str, data: &[u8]) -> Result<(), JournalError> {
        self.with(|c| {
            c.prepare_cached("INSERT OR IGNORE INTO blobs (sha256, data) VALUES (?1, ?2)")?
                .execute(params![sha256, data])
                .map(|_| ())
        })
    }

    /// The content kept under `sha256` by [`Journal::put_blob`], if any.
    pub(crate) fn blob(&self, sha256: &str) -> Result<Option<Vec<u8>>, JournalError> {
        self.with(|c| {
            c.prepare_cached("SELECT data FROM blobs WHERE sha256 = ?1")?
                .query_row(params![sha256], |r| r.get(0))
                .optional()
        })
    }

    /// The size of the content kept under `sha256`, if any.
    pub(crate) fn blob_len(&self, sha256: &str) -> Result<Option<u64>, JournalError> {
        self.with(|c| {
            c.prepare_cached("SELECT length(data) FROM blobs WHERE sha256 = ?1")?
                .query_row(params![sha256], |r| r.get::<_, i64>(0))
                .optional()
                .map(|n| n.map(|n| u64::try_from(n).unwrap_or(0)))
        })
    }

    /// Writes a step ahead of its call: `intended`, with the arguments (redacted); committed when
    /// this returns.
    pub fn intend(
        &self,
        session: &str,
        capability: &str,
        args: &Value,
    ) -> Result<i64, JournalError> {
        self.intend_with(session, capability, args, &StepUndo::Pending)
    }

    /// [`Journal::intend`] with the compensation already known before the call runs (a file
    /// snapshot: the state before it was kept first).
    pub fn intend_with(
        &self,
        session: &str,
        capability: &str,
        args: &Value,
        undo: &StepUndo,
    ) -> Result<i64, JournalError> {
        self.intend_keeping(session, capability, &args.to_string(), undo, &Blobs::new())
    }

    /// [`Journal::intend_with`] of arguments already rendered, with the small snapshot content
    /// the compensation names kept in the same transaction (one commit for both).
    pub(crate) fn intend_keeping(
        &self,
        session: &str,
        capability: &str,
        args: &str,
        undo: &StepUndo,
        blobs: &Blobs,
    ) -> Result<i64, JournalError> {
        let undo = undo.journal_text();
        self.write(|c| {
            for (sha256, data) in blobs {
                c.prepare_cached("INSERT OR IGNORE INTO blobs (sha256, data) VALUES (?1, ?2)")?
                    .execute(params![sha256, data])?;
            }
            c.prepare_cached(
                "INSERT INTO steps (session, capability, args, result, undo, state, pid, faithful)
                 VALUES (?1, ?2, ?3, 'null', ?4, 'intended', ?5, 1)",
            )?
            .execute(params![session, capability, args, undo, std::process::id()])?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Completes an intended step: `done` with its result (redacted) and compensation.
    pub fn complete(&self, id: i64, result: &Value, undo: &StepUndo) -> Result<(), JournalError> {
        self.complete_text(id, &result.to_string(), undo)
    }

    /// [`Journal::complete`] with the result already rendered.
    pub(crate) fn complete_text(
        &self,
        id: i64,
        result: &str,
        undo: &StepUndo,
    ) -> Result<(), JournalError> {
        let undo = undo.journal_text();
        self.write(|c| {
            c.prepare_cached(
                "UPDATE steps SET state = 'done', result = ?2, undo = ?3 WHERE id = ?1 AND state = 'intended'",
            )?
            .execute(params![id, result, undo])?;
            // A new call closes the way back to what was undone before it, for good.
            c.prepare_cached(
                "DELETE FROM redo_stack WHERE session = (SELECT session FROM steps WHERE id = ?1)",
            )?
            .execute(params![id])
            .map(|_| ())
        })
    }

    /// Removes an intended step that has nothing to undo: its call never ran, or it left every
    /// file as it found it (the engine's no-op file calls). Ids are AUTOINCREMENT: never reused.
    pub fn forget(&self, id: i64) -> Result<(), JournalError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM steps WHERE id = ?1 AND state = 'intended'",
                params![id],
            )
            .map(|_| ())
        })
    }

    /// Appends a finished step in one go (`done`); committed when this returns. For callers that
    /// journal outside the engine; the engine writes ahead with [`Journal::intend`].
    pub fn record(
        &self,
        session: &str,
        capability: &str,
        args: &Value,
        result: &Value,
        undo: &StepUndo,
    ) -> Result<i64, JournalError> {
        let id = self.intend(session, capability, args)?;
        self.complete(id, result, undo)?;
        Ok(id)
    }

    /// The steps of a session still on the undo stack (intended, done, undoing, failed), newest first.
    pub fn pending(&self, session: &str) -> Result<Vec<Step>, JournalError> {
        self.query(
            "WHERE session = ?1 AND state IN ('intended', 'done', 'undoing', 'failed') ORDER BY id DESC",
            params![session],
        )
    }

    /// The undone steps of a session above its newest step still on the stack, the last one
    /// undone first: what `redo` can re-apply (`redo_stack`; a call completed after an undo
    /// empties it for good, so the steps undone before a call stay out of reach once that call
    /// is undone too).
    pub fn redoable(&self, session: &str) -> Result<Vec<Step>, JournalError> {
        self.query(
            "WHERE session = ?1 AND state = 'undone' AND id > COALESCE((SELECT MAX(id) FROM steps WHERE session = ?1 AND state IN ('intended', 'done', 'undoing', 'failed')), 0)
             AND id IN (SELECT step FROM redo_stack WHERE session = ?1)
             ORDER BY (SELECT MAX(seq) FROM redo_stack r WHERE r.step = steps.id) DESC",
            params![session],
        )
    }

    /// Every step of a session, oldest first.
    pub fn history(&self, session: &str) -> Result<Vec<Step>, JournalError> {
        self.query("WHERE session = ?1 ORDER BY id", params![session])
    }

    /// One step.
    pub fn step(&self, id: i64) -> Result<Option<Step>, JournalError> {
        Ok(self.query("WHERE id = ?1", params![id])?.pop())
    }

    /// Every step of every session, oldest first (for `audit verify`'s cross-check).
    pub fn all_steps(&self) -> Result<Vec<(i64, StepState)>, JournalError> {
        let rows: Vec<(i64, String)> = self.with(|c| {
            let mut st = c.prepare_cached("SELECT id, state FROM steps ORDER BY id")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        rows.into_iter()
            .map(|(id, s)| {
                StepState::parse(&s)
                    .map(|st| (id, st))
                    .ok_or_else(|| JournalError::Corrupt {
                        id,
                        why: format!("unknown state `{s}`"),
                    })
            })
            .collect()
    }

    fn query(&self, tail: &str, p: impl rusqlite::Params) -> Result<Vec<Step>, JournalError> {
        let rows: Vec<RawStep> = self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT id, session, capability, args, result, undo, state, pid, error, faithful FROM steps {tail}"
            ))?;
            let rows = stmt
                .query_map(p, |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                        r.get::<_, i64>(9)? != 0,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        rows.into_iter()
            .map(
                |(id, session, capability, args, result, undo, state, pid, error, faithful)| {
                    let corrupt = |why: String| JournalError::Corrupt { id, why };
                    Ok(Step {
                        id,
                        session,
                        capability,
                        args: serde_json::from_str(&args).map_err(|e| corrupt(e.to_string()))?,
                        result: serde_json::from_str(&result)
                            .map_err(|e| corrupt(e.to_string()))?,
                        undo_digest: digest_text(&undo),
                        // An unreadable compensation stops the undo at this step, saying so,
                        // instead of making the whole session unreadable: it can be skipped.
                        undo: serde_json::from_str(&undo).unwrap_or_else(|e| {
                            StepUndo::Irreversible {
                                reason: format!("its journaled compensation is unreadable ({e})"),
                            }
                        }),
                        state: StepState::parse(&state)
                            .ok_or_else(|| corrupt(format!("unknown state `{state}`")))?,
                        error,
                        pid,
                        faithful,
                    })
                },
            )
            .collect()
    }

    /// Moves a step from one of `from` to `to`, atomically; `false` when it was in none of them
    /// (another process claimed or finished it first). Committed when this returns.
    pub fn transition(
        &self,
        id: i64,
        from: &[StepState],
        to: StepState,
        error: Option<&str>,
    ) -> Result<bool, JournalError> {
        let from: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
        let sql = format!(
            "UPDATE steps SET state = ?2, error = ?3, pid = ?4 WHERE id = ?1 AND state IN ({})",
            from.join(", ")
        );
        self.write(|c| {
            let moved = c
                .prepare_cached(&sql)?
                .execute(params![id, to.as_str(), error, std::process::id()])?
                == 1;
            if moved {
                // Undone: on top of what redo re-applies; any other state: off it.
                c.prepare_cached("DELETE FROM redo_stack WHERE step = ?1")?
                    .execute(params![id])?;
                if to == StepState::Undone {
                    c.prepare_cached(
                        "INSERT INTO redo_stack (session, step) SELECT session, id FROM steps WHERE id = ?1",
                    )?
                    .execute(params![id])?;
                }
            }
            Ok(moved)
        })
    }

    /// Replaces a step's compensation (a person resolving an interrupted call).
    pub fn set_undo(&self, id: i64, undo: &StepUndo) -> Result<(), JournalError> {
        let undo = undo.journal_text();
        self.with(|c| {
            c.execute(
                "UPDATE steps SET undo = ?2 WHERE id = ?1",
                params![id, undo],
            )
            .map(|_| ())
        })
    }

    /// Records that undoing `step` recreated what calls of `capability` name by `arg = old` as
    /// `arg = new` (JSON values).
    pub fn add_alias(&self, session: &str, alias: &Alias) -> Result<(), JournalError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO aliases (session, old, new, step, capability, arg) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    session,
                    alias.old.to_string(),
                    alias.new.to_string(),
                    alias.step,
                    alias.capability,
                    alias.arg
                ],
            )
            .map(|_| ())
        })
    }

    /// The aliases of a session, oldest first.
    pub fn aliases(&self, session: &str) -> Result<Vec<Alias>, JournalError> {
        type Row = (String, String, i64, Option<String>, Option<String>);
        let rows: Vec<Row> = self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT old, new, step, capability, arg FROM aliases WHERE session = ?1 ORDER BY rowid",
            )?;
            let rows = st.query_map(params![session], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?;
            rows.collect()
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(o, n, step, capability, arg)| {
                Some(Alias {
                    old: serde_json::from_str(&o).ok()?,
                    new: serde_json::from_str(&n).ok()?,
                    step,
                    capability,
                    arg,
                })
            })
            .collect())
    }

    /// Marks the session's newest step with `name`; a checkpoint of that name already there is
    /// moved only when `replace` (else left where it is). Returns the step marked and the one the
    /// name marked before, if any.
    pub fn checkpoint_at(
        &self,
        session: &str,
        name: &str,
        replace: bool,
    ) -> Result<(i64, Option<i64>), JournalError> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            let last: i64 = tx.query_row(
                "SELECT COALESCE(MAX(id), 0) FROM steps WHERE session = ?1",
                params![session],
                |r| r.get(0),
            )?;
            let was: Option<i64> = tx
                .query_row(
                    "SELECT step FROM checkpoints WHERE session = ?1 AND name = ?2",
                    params![session, name],
                    |r| r.get(0),
                )
                .optional()?;
            if was.is_none() || replace {
                tx.execute(
                    "INSERT INTO checkpoints (session, name, step) VALUES (?1, ?2, ?3)
                     ON CONFLICT (session, name) DO UPDATE SET step = excluded.step",
                    params![session, name, last],
                )?;
            }
            tx.commit()?;
            Ok((last, was))
        })
    }

    /// The step a checkpoint points at.
    pub fn checkpoint_step(&self, session: &str, name: &str) -> Result<Option<i64>, JournalError> {
        self.with(|c| {
            c.query_row(
                "SELECT step FROM checkpoints WHERE session = ?1 AND name = ?2",
                params![session, name],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// Notes the audit chain's new head (its newest record's sequence number and hash, so a log
    /// that was truncated, deleted or rewritten no longer matches it), to be kept by the next
    /// write of a step (or [`Journal::flush_audit_head`]): a call's records cost no journal
    /// commit of their own.
    pub fn note_audit_head(&self, seq: i64, hash: &str) {
        self.note_head((seq, hash.to_string()));
    }

    /// Commits the head noted by [`Journal::note_audit_head`], if a write has not already; when
    /// this returns, every head noted before it is kept.
    pub fn flush_audit_head(&self) -> Result<(), JournalError> {
        // Looked at under the connection's lock, which every write holds from taking the head
        // to committing it (or putting it back): empty here means kept.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let pending = self
            .pending_head
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        if !pending {
            return Ok(());
        }
        self.write_locked(&mut conn, |_| Ok(()))
    }

    /// The audit chain's head as last kept, if any record was ever written.
    pub fn audit_head(&self) -> Result<Option<(i64, String)>, JournalError> {
        self.with(|c| {
            c.query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
        })
    }
}
