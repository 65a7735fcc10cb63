//! `cargo xtask soak [--rounds N] [--seed S]`: crash consistency under `kill -9`.
//!
//! The `stepper` test binary makes real effects (it creates files in a data directory; each
//! compensation removes one and appends its path to `undo.log`). Each round starts either a burst
//! of calls or an undo, and kills it with SIGKILL after a random few milliseconds. After each kill
//! the soak looks at the journal and settles what the kill left half-done the way a person would
//! (`undo --resolve`): an `intended` call whose file exists took effect (`done`), otherwise it did
//! not (`skip`); an `undoing` step whose file still exists was not undone (`done`), otherwise it
//! was (`undone`). At the end it checks, then undoes everything:
//!
//! - every file on disk has exactly one journal step, and that step is `done`;
//! - every `done` step's file exists, every `undone` or `skipped` step's file does not;
//! - no compensation ran twice (`undo.log`), and the audit chain verifies against the journal
//!   (every step has its records, the head the journal kept is in the log);
//! - a full undo leaves the data directory empty and the chain intact.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aifirst::audit::AuditLog;
use aifirst::{Journal, StepState};
use anyhow::{bail, ensure, Context, Result};

use crate::SplitMix;

const SESSION: &str = "burst";

pub fn soak(args: &[String]) -> Result<()> {
    let (mut rounds, mut seed) = (80usize, 1u64);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => rounds = it.next().context("--rounds N")?.parse()?,
            "--seed" => seed = it.next().context("--seed S")?.parse()?,
            other => bail!("unknown argument {other} (soak [--rounds N] [--seed S])"),
        }
    }
    let status = crate::cargo()
        .args(["build", "-q", "-p", "aifirst-tests", "--bin", "stepper"])
        .status()?;
    ensure!(status.success(), "building the stepper test binary failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"));
    let stepper = target.join("debug/stepper");
    // The kill window follows how long a burst takes on this machine (a debug binary's start-up
    // alone can outlast a fixed window, and then nothing is killed mid-call): one burst of 10
    // calls, timed on a scratch directory, sets it (2.5 times that: some runs finish, most are
    // killed somewhere in their calls or undos).
    let window_ms = {
        let (st, da) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let t = Instant::now();
        let out = Command::new(&stepper)
            .args([
                "marks",
                &path_str(st.path())?,
                &path_str(da.path())?,
                "10",
                "0",
            ])
            .env("STEPPER_SLOW_MS", "2")
            .output()?;
        ensure!(
            out.status.success(),
            "the stepper's timing run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (t.elapsed().as_millis() as u64 * 5 / 2).max(80)
    };
    let state = tempfile::tempdir()?;
    let data = tempfile::tempdir()?;
    let (s, d) = (path_str(state.path())?, path_str(data.path())?);
    let mut rng = SplitMix(seed);
    let mut next = 0usize;
    let mut settled: BTreeMap<&'static str, usize> = BTreeMap::new();
    let (mut call_rounds, mut undo_rounds, mut killed) = (0, 0, 0);
    let started = Instant::now();
    for round in 0..rounds {
        let mut cmd = Command::new(&stepper);
        if !rng.next().is_multiple_of(3) {
            let n = 1 + (rng.next() % 20) as usize;
            cmd.args(["marks", &s, &d, &n.to_string(), &next.to_string()]);
            next += n;
            call_rounds += 1;
        } else {
            let k = 1 + rng.next() % 10;
            cmd.args(["undo", &s, SESSION, &k.to_string()]);
            undo_rounds += 1;
        }
        // A compensation that takes a moment widens the window between claim and outcome.
        cmd.env("STEPPER_SLOW_MS", "2")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn()?;
        std::thread::sleep(Duration::from_millis(rng.next() % window_ms));
        if child.try_wait()?.is_none() {
            child.kill()?; // SIGKILL: no destructors, no flush
            killed += 1;
        }
        child.wait()?;
        for (id, how) in settle(state.path())? {
            let out = Command::new(&stepper)
                .args(["resolve", &s, SESSION, &id.to_string(), how])
                .output()?;
            ensure!(
                out.status.success(),
                "resolve {id} {how}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            *settled.entry(how).or_default() += 1;
        }
        check(state.path(), data.path()).with_context(|| format!("after round {round}"))?;
    }
    let steps = check(state.path(), data.path())?;
    let out = Command::new(&stepper)
        .args(["undo", &s, SESSION, "1000000000"])
        .output()?;
    ensure!(
        out.status.success(),
        "the final undo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    ensure!(
        report["failed"].is_null(),
        "the final undo stopped: {report}"
    );
    let left: Vec<String> = std::fs::read_dir(data.path())?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "undo.log")
        .collect();
    ensure!(left.is_empty(), "the full undo left {left:?}");
    check(state.path(), data.path())?;
    println!(
        "soak (seed {seed}): {rounds} rounds ({call_rounds} call bursts, {undo_rounds} undos), {killed} killed with SIGKILL, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("  kill window 0-{window_ms} ms (2.5× one 10-call burst); calls asked for: {next}; journaled (the rest were killed first): {steps}; settled after kills: {settled:?}");
    println!(
        "  every file had one `done` step, no compensation ran twice, the audit chain verified against the journal, after every round; and the full undo ({} steps) left nothing",
        report["undone"].as_array().map(Vec::len).unwrap_or(0)
    );
    Ok(())
}

fn path_str(p: &Path) -> Result<String> {
    p.to_str()
        .map(str::to_string)
        .context("a temporary path that is not UTF-8")
}

/// What a person would say about each half-done step: (step, `done` | `undone` | `skip`).
fn settle(state: &Path) -> Result<Vec<(i64, &'static str)>> {
    let journal = Journal::open(state)?;
    let mut out = Vec::new();
    for st in journal.pending(SESSION)? {
        let exists = st.args["path"]
            .as_str()
            .is_some_and(|p| Path::new(p).exists());
        match (st.state, exists) {
            (StepState::Intended, true) | (StepState::Undoing, true) => out.push((st.id, "done")),
            (StepState::Intended, false) => out.push((st.id, "skip")),
            (StepState::Undoing, false) => out.push((st.id, "undone")),
            _ => {}
        }
    }
    Ok(out)
}

/// The invariants; returns the number of steps.
fn check(state: &Path, data: &Path) -> Result<usize> {
    let journal = Journal::open(state)?;
    let steps = journal.history(SESSION)?;
    let mut by_path: BTreeMap<String, Vec<(i64, StepState)>> = BTreeMap::new();
    for st in &steps {
        let path = st.args["path"].as_str().unwrap_or_default().to_string();
        by_path.entry(path).or_default().push((st.id, st.state));
    }
    for e in std::fs::read_dir(data)? {
        let p = e?.path();
        if p.file_name().is_some_and(|n| n == "undo.log") {
            continue;
        }
        let key = p.display().to_string();
        match by_path.get(&key).map(Vec::as_slice) {
            Some([(_, StepState::Done)]) => {}
            other => bail!("{key} exists, with steps {other:?} (want exactly one, `done`)"),
        }
    }
    for (path, list) in &by_path {
        for (id, st) in list {
            let exists = Path::new(path).exists();
            match st {
                StepState::Done => ensure!(exists, "step {id} is done but {path} is gone"),
                StepState::Undone | StepState::Skipped => {
                    ensure!(!exists, "step {id} is {st:?} but {path} exists")
                }
                StepState::Intended | StepState::Undoing | StepState::Failed => {
                    bail!("step {id} is still {st:?} after settling")
                }
                StepState::Error => {}
            }
        }
    }
    let log = std::fs::read_to_string(data.join("undo.log")).unwrap_or_default();
    let mut ran: BTreeMap<&str, usize> = BTreeMap::new();
    for line in log.lines().filter(|l| !l.starts_with("started ")) {
        *ran.entry(line).or_default() += 1;
    }
    if let Some((path, n)) = ran.iter().find(|(_, n)| **n > 1) {
        bail!("the compensation of {path} ran {n} times");
    }
    let v = AuditLog::verify_dir(state, None, None)?;
    ensure!(
        v.intact(),
        "audit: first bad {:?}, problems {:?}",
        v.first_bad,
        v.problems
    );
    Ok(steps.len())
}

#[cfg(test)]
mod tests {
    /// A short soak on every test run (the xtask runs longer ones: `--rounds 150`).
    #[test]
    fn a_short_soak_keeps_every_invariant() {
        let args: Vec<String> = ["--rounds", "40", "--seed", "7"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if let Err(e) = super::soak(&args) {
            panic!("{e:#}");
        }
    }
}
