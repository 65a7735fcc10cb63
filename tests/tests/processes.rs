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

fn stepper(args: &[&str]) -> std::process::Output {
    Command::new(STEPPER).args(args).output().unwrap()
}

fn undo_log(data: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(data.join("undo.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Found by the probe: two `undo` processes at once compensated 1–15 of 200 steps twice. Now
/// eight at once take turns on the session and claim each step: every compensation runs once.
#[test]
fn eight_processes_undoing_one_session_run_each_compensation_once() {
    let state = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (s, d) = (
        state.path().to_str().unwrap(),
        data.path().to_str().unwrap(),
    );
    let out = stepper(&["marks", s, d, "200"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let children: Vec<_> = (0..8)
        .map(|_| {
            Command::new(STEPPER)
                .args(["undo", s, "burst", "30"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut undone = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(report["failed"].is_null(), "{report}");
        undone += report["undone"].as_array().unwrap().len();
    }
    assert_eq!(undone, 200, "8 × 30 asked, 200 there");
    let log = undo_log(data.path());
    assert_eq!(log.len(), 200, "each compensation ran exactly once");
    let unique: std::collections::BTreeSet<&String> = log.iter().collect();
    assert_eq!(unique.len(), 200);
    // Newest first, across processes: the log is in exactly reverse creation order.
    let expected: Vec<String> = (0..200)
        .rev()
        .map(|i| data.path().join(format!("m{i}")).display().to_string())
        .collect();
    assert_eq!(log, expected, "undo order is effect order");
    let v = AuditLog::verify_dir(state.path(), None, None).unwrap();
    assert!(v.intact(), "{:?}", v.problems);
}

/// Found by the probe: kill -9 between a compensation and marking its step left a step that
/// every later undo ran again (and failed on). Now the step was claimed first: the next undo
/// refuses to run the compensation again, the user resolves it, and the rest undoes.
#[test]
fn kill_9_during_a_compensation_leaves_a_claimed_step_that_is_never_rerun() {
    let state = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (s, d) = (
        state.path().to_str().unwrap(),
        data.path().to_str().unwrap(),
    );
    assert!(stepper(&["marks", s, d, "3"]).status.success());
    let mut child = Command::new(STEPPER)
        .args(["undo", s, "burst", "3"])
        .env("STEPPER_SLOW_MS", "60000")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first compensation has started, then kill.
    let started = std::time::Instant::now();
    while !undo_log(data.path())
        .iter()
        .any(|l| l.starts_with("started"))
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let journal = Journal::open(state.path()).unwrap();
    let steps = journal.history("burst").unwrap();
    assert_eq!(steps[2].state, StepState::Undoing, "claimed before it ran");
    let out = stepper(&["undo", s, "burst", "3"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["undone"], serde_json::json!([]));
    let why = report["failed"].as_str().unwrap();
    assert!(why.contains("--resolve"), "{why}");
    assert_eq!(
        undo_log(data.path())
            .iter()
            .filter(|l| l.starts_with("started"))
            .count(),
        1,
        "the interrupted compensation was not run again"
    );
    // The user looks: the file is still there, so the compensation did not take effect.
    assert!(data.path().join("m2").exists());
    let id = steps[2].id.to_string();
    assert!(stepper(&["resolve", s, "burst", &id, "done"])
        .status
        .success());
    let out = stepper(&["undo", s, "burst", "3"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["undone"].as_array().unwrap().len(), 3, "{report}");
    assert_eq!(
        std::fs::read_dir(data.path()).unwrap().count(),
        1,
        "only undo.log is left"
    );
    let v = AuditLog::verify_dir(state.path(), None, None).unwrap();
    assert!(v.intact(), "{:?}", v.problems);
}
