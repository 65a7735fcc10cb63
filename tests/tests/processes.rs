//! The journal across processes: undo from a new process, and nothing acknowledged lost to kill -9.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use aifirst::audit::AuditLog;
use aifirst::{Journal, Redactor, StepState};
use serde_json::Value;

const STEPPER: &str = env!("CARGO_BIN_EXE_stepper");

#[test]
fn a_new_process_undoes_what_another_did() {
    let state = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(STEPPER)
        .args([
            "burst",
            state.path().to_str().unwrap(),
            data.path().to_str().unwrap(),
            "5",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(data.path()).unwrap().count(), 5);

    let out = Command::new(STEPPER)
        .args(["undo", state.path().to_str().unwrap(), "burst", "3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["undone"].as_array().unwrap().len(), 3);
    assert!(report["failed"].is_null());
    let mut left: Vec<String> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["f0", "f1"], "the three newest files are gone");

    // A third process finishes the job.
    let out = Command::new(STEPPER)
        .args(["undo", state.path().to_str().unwrap(), "burst", "10"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["undone"].as_array().unwrap().len(), 2);
    assert_eq!(std::fs::read_dir(data.path()).unwrap().count(), 0);
}

#[test]
fn kill_9_loses_no_acknowledged_step() {
    let state = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(STEPPER)
        .args([
            "burst",
            state.path().to_str().unwrap(),
            data.path().to_str().unwrap(),
            "100000",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while acked.len() < 300 {
        let line = lines.next().unwrap().unwrap();
        acked.push(line.trim_start_matches("ack ").parse::<usize>().unwrap());
    }
    child.kill().unwrap(); // SIGKILL on Unix: no destructors, no flush
    child.wait().unwrap();

    let journal = Journal::open(state.path()).unwrap();
    let steps = journal.history("burst").unwrap();
    assert!(
        steps.len() >= acked.len(),
        "{} journaled < {} acknowledged",
        steps.len(),
        acked.len()
    );
    for i in &acked {
        let path = data.path().join(format!("f{i}"));
        assert!(
            steps
                .iter()
                .any(|s| s.args["path"] == path.to_str().unwrap() && s.state == StepState::Done),
            "acknowledged step {i} is missing from the journal"
        );
    }
    // The audit record of every acknowledged call was committed before the call returned, too,
    // and the chain is intact up to the kill.
    let audit = AuditLog::open(state.path(), Redactor::default()).unwrap();
    let records = audit.records(Some("burst"), None).unwrap();
    assert!(
        records.len() >= acked.len(),
        "{} audited < {} acknowledged",
        records.len(),
        acked.len()
    );
    assert_eq!(audit.verify().unwrap().first_bad, None);
}
