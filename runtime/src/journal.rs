//! The undo journal: every undoable step, committed to SQLite before the call returns.
//!
//! One table of steps and one of checkpoints, in `journal.sqlite3` under the state directory,
//! in WAL mode with `synchronous = NORMAL`: a step acknowledged to the caller survives the
//! process being killed (not a power cut, which `FULL` would add at a cost per call).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What undoing a step takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepUndo {
    /// Call these capabilities with these arguments, in order (data: replayable anywhere).
    Calls { calls: Vec<Replay> },
    /// Call the capability's own compensating function with the original arguments and result.
    Function { capability: String },
    /// Closures recorded by the handler; they died with the process that recorded them unless it
    /// is still this one. `calls` holds any data compensations recorded beside them.
    InProcess { calls: Vec<Replay> },
    /// Cannot be undone.
    Irreversible { reason: String },
}

/// One compensating call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replay {
    pub capability: String,
    pub args: Value,
}

/// The state of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Done,
    Undone,
}

/// A journaled step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub id: i64,
    pub session: String,
    pub capability: String,
    pub args: Value,
    pub result: Value,
    pub undo: StepUndo,
    pub state: StepState,
    /// Written by this process (in-process compensations are still runnable).
    #[serde(skip)]
    pub pid: u32,
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
}

/// A `steps` row before its JSON columns are parsed.
type RawStep = (i64, String, String, String, String, String, String, u32);

/// The journal of one state directory.
pub struct Journal {
    conn: Mutex<Connection>,
    path: PathBuf,
}

const SCHEMA: &str = "
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
-- An undo that recreated something under a new identifier: older steps naming `old` mean `new`.
CREATE TABLE IF NOT EXISTS aliases (
    session TEXT    NOT NULL,
    old     TEXT    NOT NULL,
    new     TEXT    NOT NULL,
    step    INTEGER NOT NULL
);
";

/// Opens a runtime database the way the journal and the audit log both want it: WAL,
/// `synchronous = NORMAL` (a killed process loses no commit), and a 5 s busy timeout for other writers.
pub(crate) fn open_wal(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

impl Journal {
    /// Opens (or creates) `journal.sqlite3` in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Journal, JournalError> {
        std::fs::create_dir_all(state_dir).map_err(|source| JournalError::Dir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join("journal.sqlite3");
        let sql = |source| JournalError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = open_wal(&path).map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        Ok(Journal {
            conn: Mutex::new(conn),
            path,
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, JournalError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(|source| JournalError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    /// Appends a step; committed when this returns.
    pub fn record(
        &self,
        session: &str,
        capability: &str,
        args: &Value,
        result: &Value,
        undo: &StepUndo,
    ) -> Result<i64, JournalError> {
        let undo = serde_json::to_string(undo).unwrap_or_else(|_| "{}".into());
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO steps (session, capability, args, result, undo, pid) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![session, capability, args.to_string(), result.to_string(), undo, std::process::id()])?;
            Ok(c.last_insert_rowid())
        })
    }

    /// The steps of a session not yet undone, newest first.
    pub fn pending(&self, session: &str) -> Result<Vec<Step>, JournalError> {
        self.query(
            "WHERE session = ?1 AND state = 'done' ORDER BY id DESC",
            session,
        )
    }

    /// Every step of a session, oldest first.
    pub fn history(&self, session: &str) -> Result<Vec<Step>, JournalError> {
        self.query("WHERE session = ?1 ORDER BY id", session)
    }

    fn query(&self, tail: &str, session: &str) -> Result<Vec<Step>, JournalError> {
        let rows: Vec<RawStep> = self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT id, session, capability, args, result, undo, state, pid FROM steps {tail}"
            ))?;
            let rows = stmt
                .query_map(params![session], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        rows.into_iter()
            .map(
                |(id, session, capability, args, result, undo, state, pid)| {
                    let corrupt = |why: String| JournalError::Corrupt { id, why };
                    Ok(Step {
                        id,
                        session,
                        capability,
                        args: serde_json::from_str(&args).map_err(|e| corrupt(e.to_string()))?,
                        result: serde_json::from_str(&result)
                            .map_err(|e| corrupt(e.to_string()))?,
                        undo: serde_json::from_str(&undo).map_err(|e| corrupt(e.to_string()))?,
                        state: if state == "undone" {
                            StepState::Undone
                        } else {
                            StepState::Done
                        },
                        pid,
                    })
                },
            )
            .collect()
    }

    /// Marks a step undone; committed when this returns.
    pub fn mark_undone(&self, id: i64) -> Result<(), JournalError> {
        self.with(|c| {
            c.execute(
                "UPDATE steps SET state = 'undone' WHERE id = ?1",
                params![id],
            )
            .map(|_| ())
        })
    }

    /// Records that undoing `step` recreated `old` as `new` (JSON values).
    pub fn add_alias(
        &self,
        session: &str,
        old: &Value,
        new: &Value,
        step: i64,
    ) -> Result<(), JournalError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO aliases (session, old, new, step) VALUES (?1, ?2, ?3, ?4)",
                params![session, old.to_string(), new.to_string(), step],
            )
            .map(|_| ())
        })
    }

    /// The aliases of a session, oldest first.
    pub fn aliases(&self, session: &str) -> Result<Vec<(Value, Value)>, JournalError> {
        let rows: Vec<(String, String)> = self.with(|c| {
            let mut st =
                c.prepare_cached("SELECT old, new FROM aliases WHERE session = ?1 ORDER BY rowid")?;
            let rows = st.query_map(params![session], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(o, n)| {
                Some((
                    serde_json::from_str(&o).ok()?,
                    serde_json::from_str(&n).ok()?,
                ))
            })
            .collect())
    }

    /// Names the current position of a session.
    pub fn checkpoint(&self, session: &str, name: &str) -> Result<i64, JournalError> {
        self.with(|c| {
            let last: i64 = c.query_row(
                "SELECT COALESCE(MAX(id), 0) FROM steps WHERE session = ?1",
                params![session],
                |r| r.get(0),
            )?;
            c.execute(
                "INSERT INTO checkpoints (session, name, step) VALUES (?1, ?2, ?3)
                 ON CONFLICT (session, name) DO UPDATE SET step = excluded.step",
                params![session, name, last],
            )?;
            Ok(last)
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
}
