//! A tiny agent process for the journal tests: it makes calls or undoes them, then exits (or is
//! killed). Its capabilities create and remove real files, so other processes can see the effect.
//!
//! ```text
//! stepper burst STATE_DIR DATA_DIR N     # N calls, printing `ack I` after each returns
//! stepper undo  STATE_DIR SESSION N      # undo N steps, print the report as JSON
//! stepper marks STATE_DIR DATA_DIR N [START]
//!                                        # N `mark` calls (mSTART…); each compensation appends its path to
//!                                        # DATA_DIR/undo.log (after `STEPPER_SLOW_MS` ms)
//! stepper resolve STATE_DIR SESSION N done|undone|skip
//! ```

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use aifirst::audit::AuditLog;
use aifirst::{capability, CallOptions, Engine, Policy, Redactor, Registry};
use aifirst_tests::block_on;
use serde_json::json;

/// Creates an empty file.
#[capability(effects(create, filesystem), undo = inverse("unlink", path = "$args.path"))]
fn touch(path: String) -> Result<String, std::io::Error> {
    std::fs::write(&path, b"")?;
    Ok(path)
}

/// Removes a file.
#[capability(
    effects(delete, filesystem),
    irreversible = "the file's content is not kept"
)]
fn unlink(path: String) -> Result<bool, std::io::Error> {
    std::fs::remove_file(path).map(|_| true)
}

/// Creates an empty file; undone by `unmark`.
#[capability(effects(create, filesystem), undo = inverse("unmark", path = "$args.path"))]
fn mark(path: String) -> Result<String, std::io::Error> {
    std::fs::write(&path, b"")?;
    Ok(path)
}

/// Removes a marked file and logs that it ran (one line per run, so a test can count them).
/// `STEPPER_SLOW_MS` makes it wait first, writing `started PATH` before: a window to kill in.
#[capability(
    effects(delete, filesystem),
    irreversible = "the file's content is not kept"
)]
fn unmark(path: String) -> Result<bool, std::io::Error> {
    let log = Path::new(&path).with_file_name("undo.log");
    let append = |line: String| -> Result<(), std::io::Error> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        f.write_all(line.as_bytes())
    };
    if let Some(ms) = std::env::var("STEPPER_SLOW_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        append(format!("started {path}\n"))?;
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    std::fs::remove_file(&path)?;
    append(format!("{path}\n"))?;
    Ok(true)
}

fn open(state: &str) -> Result<Engine, String> {
    let registry = Registry::new().map_err(|e| e.to_string())?;
    let audit = AuditLog::open(Path::new(state), Redactor::default()).map_err(|e| e.to_string())?;
    Ok(Engine::open(registry, Policy::default(), Path::new(state))
        .map_err(|e| e.to_string())?
        .with_recorder(Arc::new(audit)))
}

fn run(args: &[String]) -> Result<(), String> {
    if let [cmd, state, data, n, rest @ ..] = args {
        if cmd == "marks" && rest.len() <= 1 {
            let engine = open(state)?;
            let n: usize = n.parse().map_err(|_| "N must be a number")?;
            let start: usize = match rest.first() {
                Some(s) => s.parse().map_err(|_| "START must be a number")?,
                None => 0,
            };
            for i in start..start + n {
                let path = Path::new(data).join(format!("m{i}"));
                block_on(engine.call(
                    "burst",
                    "mark",
                    json!({ "path": path }),
                    CallOptions::default(),
                ))
                .map_err(|e| e.to_string())?;
            }
            return Ok(());
        }
    }
    if let [cmd, state, session, n, how] = args {
        if cmd == "resolve" {
            let engine = open(state)?;
            let how = match how.as_str() {
                "done" => aifirst::Resolution::Done,
                "undone" => aifirst::Resolution::Undone,
                _ => aifirst::Resolution::Skip,
            };
            let n: i64 = n.parse().map_err(|_| "N must be a number")?;
            return block_on(engine.resolve(session, n, how, Some("stepper")))
                .map_err(|e| e.to_string());
        }
    }
    let registry = Registry::new().map_err(|e| e.to_string())?;
    match args {
        [cmd, state, data, n] if cmd == "burst" => {
            let audit =
                AuditLog::open(Path::new(state), Redactor::default()).map_err(|e| e.to_string())?;
            let engine = Engine::open(registry, Policy::default(), Path::new(state))
                .map_err(|e| e.to_string())?
                .with_recorder(Arc::new(audit));
            let n: usize = n.parse().map_err(|_| "N must be a number")?;
            let mut out = std::io::stdout().lock();
            for i in 0..n {
                let path = Path::new(data).join(format!("f{i}"));
                block_on(engine.call(
                    "burst",
                    "touch",
                    json!({ "path": path }),
                    CallOptions::default(),
                ))
                .map_err(|e| e.to_string())?;
                // Acknowledged: the step is journaled before `call` returned.
                writeln!(out, "ack {i}")
                    .and_then(|_| out.flush())
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        [cmd, state, session, n] if cmd == "undo" => {
            drop(registry);
            let engine = open(state)?;
            let n: usize = n.parse().map_err(|_| "N must be a number")?;
            let report = block_on(engine.undo(session, n)).map_err(|e| e.to_string())?;
            println!(
                "{}",
                json!({ "undone": report.undone, "failed": report.failed.map(|f| f.1) })
            );
            Ok(())
        }
        _ => Err("usage: stepper burst STATE DATA N | marks STATE DATA N [START] | undo STATE SESSION N | resolve STATE SESSION N done|undone|skip".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stepper: {e}");
            ExitCode::from(2)
        }
    }
}
