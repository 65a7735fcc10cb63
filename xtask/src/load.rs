//! `cargo xtask load-http [--clients N] [--calls N] [--bin PATH]`: the HTTP MCP server under a
//! bounded load. N clients (default 200), each its own MCP session over its own connections,
//! make M `tools/call`s each (default 50) of the notebook's thread-safe `tally` capability at
//! once. Then the server is stopped and the books are checked:
//!
//! - every call was acknowledged with a result (none failed, none lost): each client's counts
//!   came back exactly 1..=M;
//! - every acknowledged call is one `done` step in the journal and one `started` plus one `ok`
//!   record in the audit log, each step id once; the audit chain verifies.
//!
//! Reports p50/p99/max latency of a call and the throughput, against a baseline measured in the
//! same run: the same load of the read-only `noop` (no journal, audit or session lock). Without `--bin` it builds and uses
//! the release `notebook` example.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

struct Reply {
    status: u16,
    session: Option<String>,
    body: String,
}

/// One POST to /mcp on a fresh connection (the way many HTTP clients behave under load).
fn post(addr: &str, session: Option<&str>, body: &Value) -> Result<Reply> {
    let body = body.to_string();
    let mut s = TcpStream::connect(addr).context("connect")?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(id) = session {
        head.push_str(&format!(
            "Mcp-Session-Id: {id}\r\nMcp-Protocol-Version: 2025-06-18\r\n"
        ));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body.as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let out = String::from_utf8_lossy(&out).into_owned();
    let (headers, rest) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let session = headers.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("mcp-session-id")
            .then(|| v.trim().to_string())
    });
    Ok(Reply {
        status,
        session,
        body: rest.to_string(),
    })
}

/// Ends an MCP session (`DELETE /mcp`), as a well-behaved client does when it is done.
fn close(addr: &str, session: &str) -> Result<u16> {
    let mut s = TcpStream::connect(addr).context("connect")?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "DELETE /mcp HTTP/1.1\r\nHost: {addr}\r\nMcp-Session-Id: {session}\r\n\
         Mcp-Protocol-Version: 2025-06-18\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

/// The JSON-RPC response with `id` in an SSE (or plain JSON) body. Events without data (the
/// priming event) and chunk-size lines are skipped.
fn response(body: &str, id: i64) -> Option<Value> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data:").map(str::trim).or(Some(l.trim())))
        .filter(|d| d.starts_with('{'))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|v| v["id"] == id)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// One phase of the load: what came back.
struct Phase {
    acknowledged: usize,
    lat: Vec<Duration>,
    elapsed: Duration,
    failures: Vec<String>,
}

/// `clients` threads, each its own MCP session, `calls` calls of `tool` each, all at once.
fn run_clients(addr: &str, clients: usize, calls: usize, tool: &'static str) -> Phase {
    println!("{clients} clients × {calls} calls of `{tool}` over streamable HTTP ({addr})");
    let results: Arc<Mutex<Vec<(usize, ClientRun)>>> = Arc::default();
    let start = Instant::now();
    let mut failures = Vec::new();
    let mut threads = Vec::new();
    for n in 0..clients {
        let (addr, results) = (addr.to_string(), results.clone());
        let spawned = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let r = client(&addr, n, calls, tool);
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((n, r));
            });
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => failures.push(format!("thread {n}: {e}")),
        }
    }
    for t in threads {
        let _ = t.join();
    }
    let elapsed = start.elapsed();
    let results = std::mem::take(&mut *results.lock().unwrap_or_else(|p| p.into_inner()));
    let mut lat: Vec<Duration> = Vec::new();
    let mut acknowledged = 0usize;
    for (n, r) in &results {
        match r {
            Ok((counts, l)) => {
                acknowledged += counts.len();
                lat.extend(l);
                let want: Vec<u64> = (1..=calls as u64).collect();
                if *counts != want {
                    failures.push(format!("client {n} ({tool}): counts {counts:?}"));
                }
            }
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    if acknowledged != clients * calls {
        failures.push(format!(
            "{tool}: {} calls were not acknowledged",
            clients * calls - acknowledged
        ));
    }
    lat.sort();
    Phase {
        acknowledged,
        lat,
        elapsed,
        failures,
    }
}

/// What one client got: its counts and each call's latency, or its first failure.
type ClientRun = Result<(Vec<u64>, Vec<Duration>)>;

/// One client: initialize, then `calls` tallies of its own label. Returns the counts it got and
/// each call's latency, or the first failure.
fn client(addr: &str, n: usize, calls: usize, tool: &str) -> ClientRun {
    let init = post(
        addr,
        None,
        &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": format!("load-{n}"), "version": "1"}}}),
    )?;
    if init.status != 200 {
        bail!(
            "client {n}: initialize got HTTP {}: {}",
            init.status,
            init.body
        );
    }
    let session = init.session.context("no Mcp-Session-Id")?;
    let note = post(
        addr,
        Some(&session),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )?;
    if note.status >= 300 {
        bail!("client {n}: initialized got HTTP {}", note.status);
    }
    let mut counts = Vec::with_capacity(calls);
    let mut lat = Vec::with_capacity(calls);
    for i in 0..calls {
        let id = i as i64 + 1;
        let t = Instant::now();
        let r = post(
            addr,
            Some(&session),
            &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": if tool == "tally" {
                json!({"label": format!("client-{n}")})
            } else {
                json!({})
            }}}),
        )?;
        lat.push(t.elapsed());
        let v = response(&r.body, id).with_context(|| {
            format!(
                "client {n} call {id}: HTTP {} without a response: {:.300}",
                r.status, r.body
            )
        })?;
        let result = &v["result"];
        if result["isError"] == true || v.get("error").is_some() {
            bail!("client {n} call {id} failed: {v}");
        }
        if tool != "tally" {
            counts.push(i as u64 + 1);
            continue;
        }
        let got = result["structuredContent"]["n"]
            .as_u64()
            .or_else(|| {
                let text = result["content"][0]["text"].as_str()?;
                serde_json::from_str::<Value>(text).ok()?["n"].as_u64()
            })
            .with_context(|| format!("client {n} call {id}: no count in {result}"))?;
        counts.push(got);
    }
    let closed = close(addr, &session)?;
    if closed >= 300 {
        bail!("client {n}: closing the session got HTTP {closed}");
    }
    Ok((counts, lat))
}

pub fn load_http(args: &[String]) -> Result<()> {
    let mut clients = 200usize;
    let mut calls = 50usize;
    let mut bin: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--clients" => clients = it.next().context("--clients N")?.parse()?,
            "--calls" => calls = it.next().context("--calls N")?.parse()?,
            "--bin" => bin = Some(PathBuf::from(it.next().context("--bin PATH")?)),
            other => bail!(
                "unknown argument {other} (see cargo xtask load-http --help in xtask/src/load.rs)"
            ),
        }
    }
    let bin = match bin {
        Some(b) => b,
        None => {
            let st = crate::cargo()
                .args(["build", "--release", "-q", "-p", "notebook"])
                .status()?;
            if !st.success() {
                bail!("building the notebook example failed");
            }
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/notebook")
        }
    };
    let work = tempfile::tempdir()?;
    std::fs::write(
        work.path().join("airun.toml"),
        format!("[mcp]\nmax_sessions = {}\n", clients + 16),
    )?;
    let mut child = Command::new(&bin)
        .args(["serve", "--http", "127.0.0.1:0"])
        .current_dir(work.path())
        .env("NOTEBOOK_DIR", work.path())
        .env("AIFIRST_ROOTS", work.path())
        .env("AIFIRST_STATE_DIR", work.path().join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the server")?;
    let mut stderr = BufReader::new(child.stderr.take().context("stderr")?);
    let mut line = String::new();
    stderr.read_line(&mut line)?;
    let addr = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .with_context(|| format!("no address in {line:?}"))?
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_string();
    std::thread::spawn(move || {
        let mut sink = String::new();
        let _ = stderr.read_to_string(&mut sink);
    });

    // The baseline, in the same run: the same load of the read-only `noop` (no journal, no
    // audit, no session lock), so the ratio is what journaling and auditing cost under load.
    let base = run_clients(&addr, clients, calls, "noop");
    let run = run_clients(&addr, clients, calls, "tally");
    let _ = child.kill();
    let _ = child.wait();
    let mut failures = base.failures.clone();
    failures.extend(run.failures.iter().cloned());
    let acknowledged = run.acknowledged;
    for (what, r) in [("noop (baseline)", &base), ("tally", &run)] {
        println!(
            "{what:<16} acknowledged {} of {} calls in {:.1} s: {:.0} calls/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            r.acknowledged,
            clients * calls,
            r.elapsed.as_secs_f64(),
            r.acknowledged as f64 / r.elapsed.as_secs_f64(),
            percentile(&r.lat, 0.5).as_secs_f64() * 1e3,
            percentile(&r.lat, 0.99).as_secs_f64() * 1e3,
            r.lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
    }
    println!(
        "tally / noop: p50 {:.2}x, throughput {:.2}x",
        percentile(&run.lat, 0.5).as_secs_f64()
            / percentile(&base.lat, 0.5).as_secs_f64().max(1e-9),
        (run.acknowledged as f64 / run.elapsed.as_secs_f64())
            / (base.acknowledged as f64 / base.elapsed.as_secs_f64()).max(1e-9)
    );

    // The books: journal and audit log.
    let state = work.path().join("state");
    let journal = aifirst::Journal::open(&state)?;
    let mut done = 0usize;
    let mut other_states = BTreeMap::new();
    for (id, st) in journal.all_steps()? {
        let Some(step) = journal.step(id)? else {
            continue;
        };
        if step.capability != "tally" {
            continue;
        }
        if st == aifirst::StepState::Done {
            done += 1;
        } else {
            *other_states.entry(st.as_str()).or_insert(0usize) += 1;
        }
    }
    let log = aifirst::audit::AuditLog::open(&state, aifirst::Redactor::default())?;
    let records = log.records(None, None)?;
    let mut started: BTreeMap<i64, usize> = BTreeMap::new();
    let mut ok: BTreeMap<i64, usize> = BTreeMap::new();
    for r in records.iter().filter(|r| r.capability == "tally") {
        let Some(step) = r.step else { continue };
        match r.status.as_str() {
            "started" => *started.entry(step).or_default() += 1,
            "ok" => *ok.entry(step).or_default() += 1,
            _ => {}
        }
    }
    let twice: BTreeSet<i64> = started
        .iter()
        .chain(ok.iter())
        .filter(|(_, n)| **n > 1)
        .map(|(s, _)| *s)
        .collect();
    let verified = log.verify()?;
    println!(
        "journal: {done} `tally` steps done, others {other_states:?}; audit: {} started, {} ok, {} step ids recorded twice; chain {}",
        started.len(),
        ok.len(),
        twice.len(),
        if verified.first_bad.is_none() { "intact" } else { "BROKEN" }
    );
    if done != acknowledged || ok.len() != acknowledged || started.len() != acknowledged {
        failures.push(format!(
            "acknowledged {acknowledged}, journal done {done}, audit started {} / ok {}",
            started.len(),
            ok.len()
        ));
    }
    if !twice.is_empty() || !other_states.is_empty() || verified.first_bad.is_some() {
        failures.push("the books do not balance".to_string());
    }
    if acknowledged != clients * calls {
        failures.push(format!(
            "{} calls were not acknowledged",
            clients * calls - acknowledged
        ));
    }
    if !failures.is_empty() {
        for f in failures.iter().take(20) {
            eprintln!("  {f}");
        }
        bail!("{} problems", failures.len());
    }
    println!("every acknowledged call journaled and audited exactly once; none lost");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]

    /// A small load in the test suite (the full one is `cargo xtask load-http`), on the debug
    /// build of the notebook example.
    #[test]
    fn a_small_load_balances_the_books() {
        let status = crate::cargo()
            .args(["build", "-q", "-p", "notebook"])
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "building notebook failed"
        );
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
        let bin = target.join("debug/notebook");
        let args: Vec<String> = ["--clients", "24", "--calls", "10", "--bin"]
            .iter()
            .map(|s| s.to_string())
            .chain([bin.display().to_string()])
            .collect();
        if let Err(e) = super::load_http(&args) {
            panic!("{e:#}");
        }
    }
}
