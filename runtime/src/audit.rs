//! The audit log: one record per call and per undo, redacted before it is written, chained by
//! SHA-256 so that editing, deleting or reordering a record is detected. Schema in
//! docs/AUDIT_DB_SCHEMA.md; what it is for in docs/ENTERPRISE_AUDIT.md.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::engine::{CallEvent, Recorder};
use crate::journal::StepUndo;
use crate::redact::Redactor;
use crate::UndoDecl;

/// Largest stored text of arguments or result; longer ones are cut with a marker.
pub const MAX_FIELD_BYTES: usize = 16 * 1024;

/// The current schema version (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

const MIGRATIONS: [&str; 1] = ["
CREATE TABLE records (
    seq         INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL,   -- call | undo
    session     TEXT    NOT NULL,
    capability  TEXT    NOT NULL,
    started_at  TEXT    NOT NULL,   -- RFC 3339, UTC
    ended_at    TEXT    NOT NULL,
    duration_us INTEGER NOT NULL,
    effects     TEXT    NOT NULL,   -- JSON array
    annotations TEXT    NOT NULL,   -- JSON object (MCP hints)
    args        TEXT    NOT NULL,   -- redacted JSON, capped
    result      TEXT    NOT NULL,   -- redacted JSON, capped
    status      TEXT    NOT NULL,   -- ok | error | refused | undone | undo_failed
    error       TEXT,
    step        INTEGER,            -- journal step, when the call left one
    undo_plan   TEXT    NOT NULL,   -- declared plan kind
    undo_state  TEXT    NOT NULL,   -- available | in_process_only | irreversible | none | done | failed
    client      TEXT,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL
);
CREATE INDEX records_by_session ON records (session, seq);
"];

/// An audit log that could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "audit log {path} has schema version {found}, newer than this program's {SCHEMA_VERSION}"
    )]
    TooNew { path: PathBuf, found: i64 },
}

/// One audit record, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub kind: String,
    pub session: String,
    pub capability: String,
    pub started_at: String,
    pub ended_at: String,
    pub duration_us: i64,
    pub effects: Value,
    pub annotations: Value,
    pub args: String,
    pub result: String,
    pub status: String,
    pub error: Option<String>,
    pub step: Option<i64>,
    pub undo_plan: String,
    pub undo_state: String,
    pub client: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// The hash of this record's content chained to the previous record's hash.
    pub fn compute_hash(&self, prev_hash: &str) -> String {
        let content = json!([
            self.seq,
            self.kind,
            self.session,
            self.capability,
            self.started_at,
            self.ended_at,
            self.duration_us,
            self.effects,
            self.annotations,
            self.args,
            self.result,
            self.status,
            self.error,
            self.step,
            self.undo_plan,
            self.undo_state,
            self.client
        ]);
        let mut h = Sha256::new();
        h.update(prev_hash.as_bytes());
        h.update(b"\n");
        h.update(content.to_string().as_bytes());
        h.finalize()
            .iter()
            .fold(String::with_capacity(64), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
    }
}

/// The first record that breaks the chain, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub records: usize,
    /// (sequence number, what is wrong)
    pub first_bad: Option<(i64, String)>,
}

/// The first link's "previous hash".
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The audit log of one state directory (`audit.sqlite3`).
pub struct AuditLog {
    conn: Mutex<Connection>,
    path: PathBuf,
    redactor: Redactor,
}

impl AuditLog {
    pub fn open(state_dir: &Path, redactor: Redactor) -> Result<AuditLog, AuditError> {
        std::fs::create_dir_all(state_dir).map_err(|source| AuditError::Dir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join("audit.sqlite3");
        let sql = |source| AuditError::Sqlite {
            path: path.clone(),
            source,
        };
        let mut conn = crate::journal::open_wal(&path).map_err(sql)?;
        // One transaction, write lock first: two processes opening a new log at once must not
        // both run the migrations.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql)?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql)?;
        if version > SCHEMA_VERSION {
            return Err(AuditError::TooNew {
                path,
                found: version,
            });
        }
        for (i, m) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            tx.execute_batch(m).map_err(sql)?;
            tx.pragma_update(
                None,
                "user_version",
                i64::try_from(i + 1).unwrap_or(SCHEMA_VERSION),
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(AuditLog {
            conn: Mutex::new(conn),
            path,
            redactor,
        })
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    fn capped(&self, v: &Value) -> String {
        let text = self.redactor.redact(v).to_string();
        if text.len() <= MAX_FIELD_BYTES {
            return text;
        }
        let mut cut = MAX_FIELD_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}…[truncated {} bytes]", &text[..cut], text.len() - cut)
    }

    /// Appends a record; committed when this returns.
    #[allow(clippy::too_many_arguments)]
    fn append(&self, mut rec: AuditRecord) -> Result<(), AuditError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let sql = |source| AuditError::Sqlite {
            path: self.path.clone(),
            source,
        };
        // IMMEDIATE: take the write lock before reading the head, so another process appending
        // at the same time waits (busy timeout) instead of failing the upgrade from read to write.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql)?;
        // A read error must not restart the chain at GENESIS: only an empty table does.
        let (last_seq, prev): (i64, String) = tx
            .prepare_cached("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1")
            .and_then(|mut st| st.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(sql)?
            .unwrap_or_else(|| (0, GENESIS.to_string()));
        rec.seq = last_seq + 1;
        rec.prev_hash = prev.clone();
        rec.hash = rec.compute_hash(&prev);
        tx.prepare_cached(
            "INSERT INTO records (seq, kind, session, capability, started_at, ended_at, duration_us, effects,
             annotations, args, result, status, error, step, undo_plan, undo_state, client, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
        )
        .and_then(|mut st| {
            st.execute(params![
                rec.seq, rec.kind, rec.session, rec.capability, rec.started_at, rec.ended_at, rec.duration_us,
                rec.effects.to_string(), rec.annotations.to_string(), rec.args, rec.result, rec.status, rec.error,
                rec.step, rec.undo_plan, rec.undo_state, rec.client, rec.prev_hash, rec.hash
            ])
        })
        .map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Every record, in order, optionally of one session and from a time on (RFC 3339 prefix compare).
    pub fn records(
        &self,
        session: Option<&str>,
        since: Option<&str>,
    ) -> Result<Vec<AuditRecord>, AuditError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let sql = |source| AuditError::Sqlite {
            path: self.path.clone(),
            source,
        };
        let mut st = conn
            .prepare(
                "SELECT seq, kind, session, capability, started_at, ended_at, duration_us, effects, annotations,
                 args, result, status, error, step, undo_plan, undo_state, client, prev_hash, hash
                 FROM records WHERE (?1 IS NULL OR session = ?1) AND (?2 IS NULL OR started_at >= ?2) ORDER BY seq",
            )
            .map_err(sql)?;
        let rows = st
            .query_map(params![session, since], |r| {
                let effects: String = r.get(7)?;
                let annotations: String = r.get(8)?;
                Ok(AuditRecord {
                    seq: r.get(0)?,
                    kind: r.get(1)?,
                    session: r.get(2)?,
                    capability: r.get(3)?,
                    started_at: r.get(4)?,
                    ended_at: r.get(5)?,
                    duration_us: r.get(6)?,
                    effects: serde_json::from_str(&effects).unwrap_or(Value::Null),
                    annotations: serde_json::from_str(&annotations).unwrap_or(Value::Null),
                    args: r.get(9)?,
                    result: r.get(10)?,
                    status: r.get(11)?,
                    error: r.get(12)?,
                    step: r.get(13)?,
                    undo_plan: r.get(14)?,
                    undo_state: r.get(15)?,
                    client: r.get(16)?,
                    prev_hash: r.get(17)?,
                    hash: r.get(18)?,
                })
            })
            .map_err(sql)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql)?;
        Ok(rows)
    }

    /// Recomputes the chain; names the first record that was modified, deleted or reordered.
    pub fn verify(&self) -> Result<Verification, AuditError> {
        let records = self.records(None, None)?;
        let mut prev = GENESIS.to_string();
        for (expected_seq, r) in (1i64..).zip(records.iter()) {
            if r.seq != expected_seq {
                let why = if r.seq > expected_seq {
                    format!("record {expected_seq} is missing (deleted)")
                } else {
                    format!("record {} is out of order", r.seq)
                };
                return Ok(Verification {
                    records: records.len(),
                    first_bad: Some((expected_seq, why)),
                });
            }
            if r.prev_hash != prev {
                return Ok(Verification {
                    records: records.len(),
                    first_bad: Some((r.seq, "does not follow the previous record (reordered, or a record before it was deleted or changed)".into())),
                });
            }
            if r.compute_hash(&prev) != r.hash {
                return Ok(Verification {
                    records: records.len(),
                    first_bad: Some((r.seq, "its content was modified".into())),
                });
            }
            prev = r.hash.clone();
        }
        Ok(Verification {
            records: records.len(),
            first_bad: None,
        })
    }

    /// The self-contained HTML report of the records of `session` since `since`.
    pub fn report_html(
        &self,
        session: Option<&str>,
        since: Option<&str>,
    ) -> Result<String, AuditError> {
        let records = self.records(session, since)?;
        let v = self.verify()?;
        let integrity = match &v.first_bad {
            None => format!("intact ({} records, hash chain verified)", v.records),
            Some((seq, why)) => format!("BROKEN at record {seq}: {why}"),
        };
        Ok(crate::report::html(
            &records,
            &self.redactor.policy(),
            Some(&integrity),
        ))
    }

    /// One JSON object a line, with OpenTelemetry GenAI attribute names.
    pub fn export_jsonl(
        &self,
        session: Option<&str>,
        since: Option<&str>,
    ) -> Result<String, AuditError> {
        let mut out = String::new();
        for r in self.records(session, since)? {
            let line = json!({
                "time": r.started_at,
                "end_time": r.ended_at,
                "gen_ai.operation.name": if r.kind == "undo" { "undo_tool" } else { "execute_tool" },
                "gen_ai.tool.name": r.capability,
                "gen_ai.tool.call.id": r.seq.to_string(),
                "gen_ai.tool.call.arguments": r.args,
                "gen_ai.tool.call.result": r.result,
                "gen_ai.conversation.id": r.session,
                "duration_ms": r.duration_us as f64 / 1000.0,
                "error.type": r.error.as_ref().map(|_| r.status.clone()),
                "aifirst.status": r.status,
                "aifirst.effects": r.effects,
                "aifirst.annotations": r.annotations,
                "aifirst.undo.plan": r.undo_plan,
                "aifirst.undo.state": r.undo_state,
                "aifirst.step": r.step,
                "aifirst.client": r.client,
                "aifirst.hash": r.hash,
            });
            out.push_str(&line.to_string());
            out.push('\n');
        }
        Ok(out)
    }
}

/// RFC 3339 UTC with milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_millis()
    )
}

fn plan_kind(undo: &UndoDecl) -> &'static str {
    match undo {
        UndoDecl::Undeclared => "none",
        UndoDecl::Function { .. } => "function",
        // `#[capability]` makes only inverse, restore and recreate plans.
        UndoDecl::Plan { kind, .. } => kind.as_str(),
        UndoDecl::Custom => "custom",
        UndoDecl::Irreversible { .. } => "irreversible",
    }
}

impl Recorder for AuditLog {
    fn call(&self, ev: &CallEvent<'_>) {
        let ended = SystemTime::now();
        let started = ended.checked_sub(ev.duration).unwrap_or(ended);
        let (status, error, result) = match &ev.outcome {
            Ok(v) => ("ok", None, self.capped(v)),
            Err(e) if e.starts_with("refused") || e.starts_with("needs confirmation") => (
                "refused",
                Some(self.redactor.redact_text(e)),
                "null".to_string(),
            ),
            Err(e) => (
                "error",
                Some(self.redactor.redact_text(e)),
                "null".to_string(),
            ),
        };
        let undo_state = match ev.step {
            Some((_, StepUndo::Calls { .. } | StepUndo::Function { .. })) => "available",
            Some((_, StepUndo::InProcess { .. })) => "in_process_only",
            Some((_, StepUndo::Irreversible { .. })) => "irreversible",
            None => "none",
        };
        let rec = AuditRecord {
            seq: 0,
            kind: "call".into(),
            session: ev.session.to_string(),
            capability: ev.capability.to_string(),
            started_at: rfc3339(started),
            ended_at: rfc3339(ended),
            duration_us: i64::try_from(ev.duration.as_micros()).unwrap_or(i64::MAX),
            effects: ev.def.map(|d| json!(d.effects)).unwrap_or(json!([])),
            annotations: ev.def.map(|d| json!(d.annotations())).unwrap_or(json!({})),
            args: self.capped(ev.args),
            result,
            status: status.into(),
            error,
            step: ev.step.map(|(id, _)| id),
            undo_plan: ev.def.map(|d| plan_kind(&d.undo)).unwrap_or("none").into(),
            undo_state: undo_state.into(),
            client: ev.client.map(|c| self.redactor.redact_text(c)),
            prev_hash: String::new(),
            hash: String::new(),
        };
        if let Err(e) = self.append(rec) {
            // The call already happened; losing its record must at least be loud.
            eprintln!("aifirst: audit record not written: {e}");
        }
    }

    fn undo(&self, session: &str, step: i64, outcome: Result<(), &str>) {
        let now = rfc3339(SystemTime::now());
        let rec = AuditRecord {
            seq: 0,
            kind: "undo".into(),
            session: session.to_string(),
            capability: format!("undo of step {step}"),
            started_at: now.clone(),
            ended_at: now,
            duration_us: 0,
            effects: json!([]),
            annotations: json!({}),
            args: json!({ "step": step }).to_string(),
            result: "null".into(),
            status: if outcome.is_ok() {
                "undone"
            } else {
                "undo_failed"
            }
            .into(),
            error: outcome.err().map(|e| self.redactor.redact_text(e)),
            step: Some(step),
            undo_plan: "none".into(),
            undo_state: if outcome.is_ok() { "done" } else { "failed" }.into(),
            client: None,
            prev_hash: String::new(),
            hash: String::new(),
        };
        if let Err(e) = self.append(rec) {
            eprintln!("aifirst: audit record not written: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(1_795_000_000_123)),
            "2026-11-18T11:06:40.123Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
