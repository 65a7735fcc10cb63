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

use crate::engine::{CallEvent, CallStatus, Recorder, UndoEvent, UndoPhase};
use crate::journal::{Journal, StepState, StepUndo};
use crate::redact::Redactor;

/// Largest stored text of arguments or result; longer ones are cut with a marker.
pub const MAX_FIELD_BYTES: usize = 16 * 1024;

/// The current schema version (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 3;

const MIGRATIONS: [&str; 3] = ["
CREATE TABLE records (
    seq         INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL,   -- intent | call | undo
    session     TEXT    NOT NULL,
    capability  TEXT    NOT NULL,
    started_at  TEXT    NOT NULL,   -- RFC 3339, UTC
    ended_at    TEXT    NOT NULL,
    duration_us INTEGER NOT NULL,
    effects     TEXT    NOT NULL,   -- JSON array
    annotations TEXT    NOT NULL,   -- JSON object (MCP hints)
    args        TEXT    NOT NULL,   -- redacted JSON, capped
    result      TEXT    NOT NULL,   -- redacted JSON, capped
    status      TEXT    NOT NULL,   -- started | ok | error | refused | invalid | undo_started | undone | undo_failed | undo_refused | skipped | resolved | redo_started | redone
    error       TEXT,
    step        INTEGER,            -- journal step, when the call has one
    undo_plan   TEXT    NOT NULL,   -- declared plan kind
    undo_state  TEXT    NOT NULL,   -- available | in_process_only | irreversible | none | pending | done | failed
    client      TEXT,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL
);
CREATE INDEX records_by_session ON records (session, seq);
", "
-- Facts about the log itself: `keyed` = 1 when its chain is an HMAC under a key kept elsewhere.
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE INDEX records_by_step ON records (step);
", "
-- SHA-256 of the compensation the journal holds for the record's step (outcome records).
ALTER TABLE records ADD COLUMN undo_digest TEXT;
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
    #[error("{0}")]
    Journal(#[from] crate::journal::JournalError),
    #[error("audit log {path}: {why}")]
    Key { path: PathBuf, why: String },
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
    /// SHA-256 of the step's compensation as journaled (outcome and resolution records): the
    /// engine refuses to run a journaled compensation that does not match it.
    pub undo_digest: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// The hash of this record's content chained to the previous record's hash: SHA-256, or
    /// HMAC-SHA-256 under `key` for a keyed log.
    pub fn compute_hash(&self, prev_hash: &str, key: Option<&[u8]>) -> String {
        // `[seq, kind, …, client(, undo_digest)]` as compact JSON, written straight into the
        // message (the bytes `json!([...]).to_string()` makes, without copying every field).
        let mut msg =
            Vec::with_capacity(prev_hash.len() + 1 + 512 + self.args.len() + self.result.len());
        msg.extend_from_slice(prev_hash.as_bytes());
        msg.push(b'\n');
        let fields: [&dyn erased::Field; 17] = [
            &self.seq,
            &self.kind,
            &self.session,
            &self.capability,
            &self.started_at,
            &self.ended_at,
            &self.duration_us,
            &self.effects,
            &self.annotations,
            &self.args,
            &self.result,
            &self.status,
            &self.error,
            &self.step,
            &self.undo_plan,
            &self.undo_state,
            &self.client,
        ];
        msg.push(b'[');
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                msg.push(b',');
            }
            f.write_json(&mut msg);
        }
        // Records written before the digest existed hash as they always did.
        if let Some(d) = &self.undo_digest {
            msg.push(b',');
            erased::Field::write_json(d, &mut msg);
        }
        msg.push(b']');
        let digest = match key {
            Some(k) => hmac_sha256(k, &msg),
            None => Sha256::digest(&msg).into(),
        };
        hex(&digest)
    }
}

/// Writing one field of a record's hashed text.
mod erased {
    pub(super) trait Field {
        fn write_json(&self, out: &mut Vec<u8>);
    }
    impl<T: serde::Serialize> Field for T {
        fn write_json(&self, out: &mut Vec<u8>) {
            // Writing into a Vec cannot fail, nor can serialising these plain types.
            let _ = serde_json::to_writer(out, self);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// HMAC-SHA-256 (RFC 2104).
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Reads an audit key file: at least 16 bytes, kept outside the state directory.
pub fn read_key_file(path: &Path, state_dir: &Path) -> Result<Vec<u8>, String> {
    let key = std::fs::read(path)
        .map_err(|e| format!("cannot read the audit key file {}: {e}", path.display()))?;
    if key.len() < 16 {
        return Err(format!(
            "the audit key file {} holds {} bytes; use at least 16 random bytes (e.g. `head -c 32 /dev/urandom > FILE`)",
            path.display(),
            key.len()
        ));
    }
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if canon(path).starts_with(canon(state_dir)) {
        return Err(format!(
            "the audit key file {} is inside the state directory {}: whoever can rewrite the log could then rewrite it with the key; keep it elsewhere",
            path.display(),
            state_dir.display()
        ));
    }
    Ok(key)
}

/// The first record that breaks the chain, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub records: usize,
    /// (sequence number, what is wrong)
    pub first_bad: Option<(i64, String)>,
    /// The newest record's sequence number and hash, to witness elsewhere (`audit head`).
    pub head: Option<(i64, String)>,
    /// Everything else found wrong: a missing log or tail, a head the journal kept that the log
    /// no longer has, journal steps without records, a missing key.
    pub problems: Vec<String>,
}

impl Verification {
    /// Nothing was found wrong.
    pub fn intact(&self) -> bool {
        self.first_bad.is_none() && self.problems.is_empty()
    }
}

/// The first link's "previous hash".
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The audit log of one state directory (`audit.sqlite3`).
pub struct AuditLog {
    conn: Mutex<Connection>,
    path: PathBuf,
    redactor: Redactor,
    /// The HMAC key of a keyed log.
    key: Option<Vec<u8>>,
    /// The journal of the same state directory, which keeps the chain's head.
    journal: Option<std::sync::Arc<Journal>>,
    /// The log has the `undo_digest` column (schema 3; a log verified read-only may be older).
    has_digest: bool,
}

impl AuditLog {
    /// Opens (or creates) the log of `state_dir` for writing. The chain's head is kept in the
    /// state directory's journal too.
    pub fn open(state_dir: &Path, redactor: Redactor) -> Result<AuditLog, AuditError> {
        Self::open_keyed(state_dir, redactor, None)
    }

    /// Opens (or creates) a log whose chain is keyed: HMAC-SHA-256 under `key`, which must be
    /// kept outside the state directory. A log started without a key cannot take one later,
    /// and the other way round.
    pub fn open_keyed(
        state_dir: &Path,
        redactor: Redactor,
        key: Option<Vec<u8>>,
    ) -> Result<AuditLog, AuditError> {
        crate::journal::create_private_dir(state_dir).map_err(|source| AuditError::Dir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join("audit.sqlite3");
        let sql = |source| AuditError::Sqlite {
            path: path.clone(),
            source,
        };
        let mut conn = crate::journal::open_wal(&path).map_err(sql)?;
        crate::journal::migrate(&mut conn, &MIGRATIONS).map_err(|(e, newer)| match newer {
            Some(found) => AuditError::TooNew {
                path: path.clone(),
                found,
            },
            None => sql(e),
        })?;
        let keyed: Option<String> = conn
            .query_row("SELECT v FROM meta WHERE k = 'keyed'", [], |r| r.get(0))
            .optional()
            .map_err(sql)?;
        let records: i64 = conn
            .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
            .map_err(sql)?;
        match (keyed.as_deref(), key.is_some(), records) {
            (None, true, 0) => {
                conn.execute("INSERT INTO meta (k, v) VALUES ('keyed', '1')", [])
                    .map_err(sql)?;
            }
            (None, true, _) => {
                return Err(AuditError::Key {
                    path,
                    why: "it was started without a key; a key applies to a new log only (move the old one aside)".into(),
                })
            }
            (Some(_), false, _) => {
                return Err(AuditError::Key {
                    path,
                    why: "it is keyed: configure its key file (`[audit] key_file` in airun.toml)".into(),
                })
            }
            _ => {}
        }
        let journal = Journal::shared(state_dir)?;
        Ok(AuditLog {
            conn: Mutex::new(conn),
            path,
            redactor,
            key,
            journal: Some(journal),
            has_digest: true,
        })
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    fn capped(&self, v: &Value) -> String {
        cap_field(self.redactor.record_text(v))
    }

    /// Appends a record; committed when this returns, and the chain's new head kept in the
    /// journal. An error means the record may be missing: the engine then refuses (before a
    /// call) or reports it (after).
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
        rec.hash = rec.compute_hash(&prev, self.key.as_deref());
        tx.prepare_cached(
            "INSERT INTO records (seq, kind, session, capability, started_at, ended_at, duration_us, effects,
             annotations, args, result, status, error, step, undo_plan, undo_state, client, prev_hash, hash, undo_digest)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
        )
        .and_then(|mut st| {
            st.execute(params![
                rec.seq, rec.kind, rec.session, rec.capability, rec.started_at, rec.ended_at, rec.duration_us,
                rec.effects.to_string(), rec.annotations.to_string(), rec.args, rec.result, rec.status, rec.error,
                rec.step, rec.undo_plan, rec.undo_state, rec.client, rec.prev_hash, rec.hash, rec.undo_digest
            ])
        })
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        drop(conn);
        if let Some(j) = &self.journal {
            // The record is committed. Its head is kept by the journal's next write (a call's
            // step completing) or by the engine's flush before it returns ([`Recorder::flush`]).
            j.note_audit_head(rec.seq, &rec.hash);
        }
        Ok(())
    }

    /// The newest record's sequence number and hash.
    pub fn head(&self) -> Result<Option<(i64, String)>, AuditError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.query_row(
            "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(|source| AuditError::Sqlite {
            path: self.path.clone(),
            source,
        })
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
        let digest = if self.has_digest {
            "undo_digest"
        } else {
            "NULL"
        };
        let mut st = conn
            .prepare(&format!(
                "SELECT seq, kind, session, capability, started_at, ended_at, duration_us, effects, annotations,
                 args, result, status, error, step, undo_plan, undo_state, client, prev_hash, hash, {digest}
                 FROM records WHERE (?1 IS NULL OR session = ?1) AND (?2 IS NULL OR started_at >= ?2) ORDER BY seq",
            ))
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
                    undo_digest: r.get(19)?,
                })
            })
            .map_err(sql)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql)?;
        Ok(rows)
    }

    /// Recomputes the chain; names the first record that was modified, deleted or reordered,
    /// and cross-checks the journal (its kept head, and a record for every step).
    pub fn verify(&self) -> Result<Verification, AuditError> {
        let records = self.records(None, None)?;
        let mut v = chain(&records, self.key.as_deref());
        if let Some(j) = &self.journal {
            cross_check(&mut v, &records, j)?;
        }
        Ok(v)
    }

    /// Verifies the log of `state_dir` without creating anything: a missing log is reported,
    /// not made anew. `key` for a keyed log; `expect_head`, a hash witnessed earlier (`audit
    /// head`), must still be in the chain.
    pub fn verify_dir(
        state_dir: &Path,
        key: Option<&[u8]>,
        expect_head: Option<&str>,
    ) -> Result<Verification, AuditError> {
        let path = state_dir.join("audit.sqlite3");
        let journal_path = state_dir.join("journal.sqlite3");
        let journal = if journal_path.is_file() {
            Some(Journal::open(state_dir)?)
        } else {
            None
        };
        let mut records = Vec::new();
        let sql = |source| AuditError::Sqlite {
            path: path.clone(),
            source,
        };
        // A file whose schema was never made (its first process was stopped between creating
        // the file and migrating it) holds no records: judged like a missing log, so a journal
        // that saw records, or has steps, still says the log is not intact.
        let made = if path.is_file() {
            let conn = Connection::open_with_flags(
                &path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(sql)?;
            let version: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(sql)?;
            (version > 0).then_some((conn, version))
        } else {
            None
        };
        let mut v = if let Some((conn, version)) = made {
            let keyed = version >= 2
                && conn
                    .query_row("SELECT v FROM meta WHERE k = 'keyed'", [], |r| {
                        r.get::<_, String>(0)
                    })
                    .optional()
                    .map_err(sql)?
                    .is_some();
            let log = AuditLog {
                conn: Mutex::new(conn),
                path: path.clone(),
                redactor: Redactor::default(),
                key: key.map(<[u8]>::to_vec),
                journal: None,
                has_digest: version >= 3,
            };
            records = log.records(None, None)?;
            let mut v = chain(&records, if keyed { key } else { None });
            match (keyed, key.is_some()) {
                (true, false) => v.problems.insert(
                    0,
                    "this log is keyed: verify it with its key (`[audit] key_file` in airun.toml)".into(),
                ),
                (false, true) => v.problems.insert(
                    0,
                    "a key was given but this log is not keyed: anyone could have rewritten it consistently".into(),
                ),
                _ => {}
            }
            if let Some(j) = &journal {
                cross_check(&mut v, &records, j)?;
            }
            v
        } else {
            let mut v = Verification {
                records: 0,
                first_bad: None,
                head: None,
                problems: Vec::new(),
            };
            if let Some(j) = &journal {
                let steps = j.all_steps()?.len();
                if let Some((seq, _)) = j.audit_head()? {
                    v.problems.push(format!(
                        "the audit log {} is missing or was never set up: the journal saw it reach record {seq}",
                        path.display()
                    ));
                } else if steps > 0 {
                    v.problems.push(format!(
                        "the audit log {} is missing or was never set up, but the journal has {steps} steps",
                        path.display()
                    ));
                }
            }
            v
        };
        if let Some(h) = expect_head {
            // Not only the newest: it must still be somewhere in the (verified) chain.
            let found = records.iter().any(|r| r.hash == h);
            if !found {
                v.problems.push(format!(
                    "the witnessed head {h} is not in the chain: the log was truncated before it or rewritten"
                ));
            }
        }
        Ok(v)
    }

    /// The self-contained HTML report of the records of `session` since `since`.
    pub fn report_html(
        &self,
        session: Option<&str>,
        since: Option<&str>,
    ) -> Result<String, AuditError> {
        let records = self.records(session, since)?;
        let v = self.verify()?;
        let integrity = match (&v.first_bad, v.problems.first()) {
            (None, None) => format!("intact ({} records, hash chain verified)", v.records),
            (Some((seq, why)), _) => format!("BROKEN at record {seq}: {why}"),
            (None, Some(p)) => format!("NOT INTACT: {p}"),
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
                "gen_ai.operation.name": if r.kind == "undo" || r.status == "undo_started" { "undo_tool" } else { "execute_tool" },
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

/// A record text cut to [`MAX_FIELD_BYTES`], with a marker.
fn cap_field(text: String) -> String {
    if text.len() <= MAX_FIELD_BYTES {
        return text;
    }
    let mut cut = MAX_FIELD_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…[truncated {} bytes]", &text[..cut], text.len() - cut)
}

/// Recomputes a chain of records.
fn chain(records: &[AuditRecord], key: Option<&[u8]>) -> Verification {
    let mut prev = GENESIS.to_string();
    let bad = |seq: i64, why: String| Verification {
        records: records.len(),
        first_bad: Some((seq, why)),
        head: records.last().map(|r| (r.seq, r.hash.clone())),
        problems: Vec::new(),
    };
    for (expected_seq, r) in (1i64..).zip(records.iter()) {
        if r.seq != expected_seq {
            let why = if r.seq > expected_seq {
                format!("record {expected_seq} is missing (deleted)")
            } else {
                format!("record {} is out of order", r.seq)
            };
            return bad(expected_seq, why);
        }
        if r.prev_hash != prev {
            return bad(r.seq, "does not follow the previous record (reordered, or a record before it was deleted or changed)".into());
        }
        if r.compute_hash(&prev, key) != r.hash {
            return bad(r.seq, "its content was modified".into());
        }
        prev = r.hash.clone();
    }
    Verification {
        records: records.len(),
        first_bad: None,
        head: records.last().map(|r| (r.seq, r.hash.clone())),
        problems: Vec::new(),
    }
}

/// What the journal knows that the log must agree with: the head it kept (a log that lost its
/// tail, or was rewritten, no longer has it) and a record for every step.
fn cross_check(
    v: &mut Verification,
    records: &[AuditRecord],
    journal: &Journal,
) -> Result<(), AuditError> {
    if let Some((seq, hash)) = journal.audit_head()? {
        match records.iter().find(|r| r.seq == seq) {
            None => {
                let last = records.last().map(|r| r.seq).unwrap_or(0);
                v.problems.push(format!(
                    "the log ends at record {last}, but the journal saw it reach record {seq}: records {}..={seq} were deleted",
                    last + 1
                ));
            }
            Some(r) if r.hash != hash => v.problems.push(format!(
                "record {seq} is not the one the journal saw (hash {} there, {hash} in the journal): the chain was rewritten",
                r.hash
            )),
            Some(_) => {}
        }
    }
    let mut recorded = std::collections::HashMap::<i64, Vec<(&str, &str)>>::new();
    for r in records {
        if let Some(step) = r.step {
            recorded
                .entry(step)
                .or_default()
                .push((r.kind.as_str(), r.status.as_str()));
        }
    }
    let mut missing = Vec::new();
    let mut no_outcome = Vec::new();
    let mut undone_unrecorded = Vec::new();
    for (id, state) in journal.all_steps()? {
        let recs = recorded.get(&id).map(Vec::as_slice).unwrap_or(&[]);
        let has = |kind: &str| recs.iter().any(|(k, _)| *k == kind);
        // An `intended` step with no record never ran: its intent record is written before
        // the call runs, so a process killed in between left nothing to audit.
        if recs.is_empty() {
            if state != StepState::Intended {
                missing.push(id);
            }
            continue;
        }
        // Every step past `intended` has its outcome: the call record (written before the
        // journal moves on), or a person's resolution of an interrupted call.
        let resolved = recs
            .iter()
            .any(|(k, st)| *k == "undo" && (*st == "resolved" || *st == "skipped"));
        if state != StepState::Intended && !has("call") && !resolved {
            no_outcome.push(id);
        }
        // Undone or skipped: an `undo` record says how (undone, resolved, skipped). An
        // `undoing` step may lack one: its process can die between the claim and the record.
        if matches!(state, StepState::Undone | StepState::Skipped) && !has("undo") {
            undone_unrecorded.push(id);
        }
    }
    let list = |ids: &[i64]| {
        let shown: Vec<String> = ids.iter().take(20).map(i64::to_string).collect();
        format!(
            "{}{}",
            shown.join(", "),
            if ids.len() > 20 { ", …" } else { "" }
        )
    };
    if !missing.is_empty() {
        v.problems.push(format!(
            "{} journal step(s) have no audit record: {}",
            missing.len(),
            list(&missing)
        ));
    }
    if !no_outcome.is_empty() {
        v.problems.push(format!(
            "{} journal step(s) have no outcome record: {}",
            no_outcome.len(),
            list(&no_outcome)
        ));
    }
    if !undone_unrecorded.is_empty() {
        v.problems.push(format!(
            "{} undone or skipped step(s) have no record of their undo: {}",
            undone_unrecorded.len(),
            list(&undone_unrecorded)
        ));
    }
    Ok(())
}

impl AuditLog {
    fn compensations(&self, calls: &[crate::journal::Replay]) -> Value {
        Value::Array(
            calls
                .iter()
                .map(|c| {
                    let mut o = json!({
                        "capability": c.capability,
                        "args": summarise_long_strings(self.redactor.redact(&c.args)),
                    });
                    if let Some(e) = &c.expect {
                        o["check"] =
                            json!({"capability": e.read, "args": self.redactor.redact(&e.args)});
                    }
                    o
                })
                .collect(),
        )
    }
}

/// A compensation's strings past this many bytes are recorded by size and digest.
const MAX_COMPENSATION_STRING: usize = 1024;

/// Long strings of a compensation's arguments as `[N bytes, sha256 …]`: the journal keeps the
/// data (and the record's undo digest covers it), the log says what ran. A changeset of row
/// values, a file's content or a request body is data the log should not copy, and base64 hides
/// secrets from redaction.
fn summarise_long_strings(v: Value) -> Value {
    match v {
        Value::String(s) if s.len() > MAX_COMPENSATION_STRING => {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(s.as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            Value::String(format!("[{} bytes, sha256 {hex}]", s.len()))
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(summarise_long_strings).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, summarise_long_strings(v)))
                .collect(),
        ),
        other => other,
    }
}

/// When something that took `duration` and ended now started and ended (RFC 3339), and how long
/// it took in microseconds.
fn timing(duration: std::time::Duration) -> (String, String, i64) {
    let ended = SystemTime::now();
    let started = ended.checked_sub(duration).unwrap_or(ended);
    (
        rfc3339(started),
        rfc3339(ended),
        i64::try_from(duration.as_micros()).unwrap_or(i64::MAX),
    )
}

impl Recorder for AuditLog {
    fn flush(&self) {
        if let Some(j) = &self.journal {
            // A head that could not be mirrored is said, not fatal (verify then sees the
            // journal's head lag behind, which it accepts).
            if let Err(e) = j.flush_audit_head() {
                eprintln!("aifirst: audit head not mirrored into the journal: {e}");
            }
        }
    }

    fn undo_digest(&self, step: i64) -> Result<Option<String>, String> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.prepare_cached(
            "SELECT undo_digest FROM records WHERE step = ?1 AND undo_digest IS NOT NULL ORDER BY seq DESC LIMIT 1",
        )
        .and_then(|mut st| st.query_row(params![step], |r| r.get(0)).optional())
        .map_err(|e| format!("audit log {}: {e}", self.path.display()))
    }

    fn call(&self, ev: &CallEvent<'_>) -> Result<(), String> {
        let (started_at, ended_at, duration_us) = timing(ev.duration);
        let undo_state = match (ev.status, ev.undo) {
            (CallStatus::Started, _) if ev.step.is_some() => "pending",
            (
                _,
                Some(StepUndo::Calls { .. } | StepUndo::Function { .. } | StepUndo::Files { .. }),
            ) => "available",
            (_, Some(StepUndo::InProcess { .. })) => "in_process_only",
            (_, Some(StepUndo::Irreversible { .. })) => "irreversible",
            _ => "none",
        };
        let rec = AuditRecord {
            seq: 0,
            kind: if ev.status == CallStatus::Started {
                "intent"
            } else {
                "call"
            }
            .into(),
            session: ev.session.to_string(),
            capability: ev.capability.to_string(),
            started_at,
            ended_at,
            duration_us,
            effects: ev.def.map(|d| json!(d.effects)).unwrap_or(json!([])),
            annotations: ev.def.map(|d| json!(d.annotations())).unwrap_or(json!({})),
            args: ev
                .args_record
                .get_or_init(|| match ev.args_text {
                    // The engine's text, made under the same rules.
                    Some((r, text)) if *r == self.redactor => cap_field(text.to_string()),
                    _ => self.capped(ev.args),
                })
                .clone(),
            result: ev
                .result
                .map(|v| self.capped(v))
                .unwrap_or_else(|| "null".into()),
            status: ev.status.as_str().into(),
            error: ev.error.as_deref().map(|e| self.redactor.redact_text(e)),
            step: ev.step,
            undo_plan: ev.plan_kind.into(),
            undo_state: undo_state.into(),
            client: ev.client.map(|c| self.redactor.redact_text(c)),
            undo_digest: ev.undo_digest.clone(),
            prev_hash: String::new(),
            hash: String::new(),
        };
        self.append(rec).map_err(|e| e.to_string())
    }

    fn undo(&self, ev: &UndoEvent<'_>) -> Result<(), String> {
        let (started_at, ended_at, duration_us) = timing(ev.duration);
        let rec = AuditRecord {
            seq: 0,
            kind: if matches!(ev.phase, UndoPhase::Started | UndoPhase::RedoStarted) {
                "intent"
            } else {
                "undo"
            }
            .into(),
            session: ev.session.to_string(),
            capability: ev.capability.to_string(),
            started_at,
            ended_at,
            duration_us,
            effects: json!([]),
            annotations: json!({}),
            args: json!({ "step": ev.step, "compensations": self.compensations(ev.compensations) })
                .to_string(),
            result: "null".into(),
            status: ev.phase.as_str().into(),
            error: ev.error.map(|e| self.redactor.redact_text(e)),
            step: Some(ev.step),
            undo_plan: "none".into(),
            undo_state: match ev.phase {
                UndoPhase::Undone => "done",
                UndoPhase::Failed | UndoPhase::Refused => "failed",
                UndoPhase::Started => "pending",
                UndoPhase::Skipped => "skipped",
                UndoPhase::Resolved => "resolved",
                UndoPhase::Redone => "redone",
                UndoPhase::RedoStarted => "pending",
            }
            .into(),
            client: ev.client.map(|c| self.redactor.redact_text(c)),
            undo_digest: ev.undo_digest.clone(),
            prev_hash: String::new(),
            hash: String::new(),
        };
        self.append(rec).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn long_compensation_strings_are_recorded_by_size_and_digest() {
        let long = "QUJD".repeat(1000);
        let v = summarise_long_strings(json!({
            "database": "/data/shop.db",
            "changeset": long,
            "nested": [{"body": "x".repeat(2000)}, "short"],
        }));
        assert_eq!(v["database"], "/data/shop.db");
        assert_eq!(v["nested"][1], "short");
        let c = v["changeset"].as_str().unwrap();
        assert!(c.starts_with("[4000 bytes, sha256 "), "{c}");
        assert!(!c.contains("QUJD"));
        assert!(v["nested"][0]["body"]
            .as_str()
            .unwrap()
            .starts_with("[2000 bytes"));
    }

    /// The hashed text is written field by field; it must be the bytes the first version hashed
    /// (`json!([...]).to_string()`), or every existing log would fail verification.
    #[test]
    fn the_hashed_text_is_unchanged() {
        fn old_hash(r: &AuditRecord, prev: &str, key: Option<&[u8]>) -> String {
            let mut content = json!([
                r.seq,
                r.kind,
                r.session,
                r.capability,
                r.started_at,
                r.ended_at,
                r.duration_us,
                r.effects,
                r.annotations,
                r.args,
                r.result,
                r.status,
                r.error,
                r.step,
                r.undo_plan,
                r.undo_state,
                r.client
            ]);
            if let (Some(d), Some(list)) = (&r.undo_digest, content.as_array_mut()) {
                list.push(json!(d));
            }
            let msg = format!("{prev}\n{content}");
            let digest = match key {
                Some(k) => hmac_sha256(k, msg.as_bytes()),
                None => Sha256::digest(msg.as_bytes()).into(),
            };
            hex(&digest)
        }
        let mut r = AuditRecord {
            seq: 7,
            kind: "call".into(),
            session: "s \"quoted\" ☃".into(),
            capability: "write_file".into(),
            started_at: "2026-12-03T10:00:00.000Z".into(),
            ended_at: "2026-12-03T10:00:00.001Z".into(),
            duration_us: -1,
            effects: json!(["write", "create"]),
            annotations: json!({"readOnlyHint": false, "z": [1, 2.5, null]}),
            args: r#"{"path":"a\nb","content":"\u0000 tab\t é"}"#.into(),
            result: "null".into(),
            status: "ok".into(),
            error: None,
            step: Some(3),
            undo_plan: "file_snapshot".into(),
            undo_state: "available".into(),
            client: Some("claude-code 1.0\u{7f}".into()),
            undo_digest: Some("ab".repeat(32)),
            prev_hash: String::new(),
            hash: String::new(),
        };
        for key in [None, Some(b"k3y".as_slice())] {
            assert_eq!(r.compute_hash("prev", key), old_hash(&r, "prev", key));
            r.undo_digest = None;
            r.error = Some("boom \u{1}".into());
            r.step = None;
            assert_eq!(r.compute_hash(GENESIS, key), old_hash(&r, GENESIS, key));
        }
    }

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
