//! `cargo xtask bench-mcp [--bin PATH | --github] [--calls N] [--lists N]`: the MCP server over
//! stdio. `--github` imports GitHub's description and builds its crate in release first.
//!
//! - `tools/list` latency (median of `--lists` requests) for the binary's registry;
//! - `tools/call` round trip of the `noop` capability (median of `--calls`), when the binary has
//!   one, against a baseline measured in the same run: the same request line echoed back by
//!   `cat` over the same kind of pipes (the transport floor).
//!
//! Without `--bin` it builds and uses the release `notebook` example.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::median;

pub(crate) struct Peer {
    child: Child,
    stdin: Option<BufWriter<ChildStdin>>,
    stdout: BufReader<ChildStdout>,
    line: String,
}

impl Peer {
    pub(crate) fn spawn(mut cmd: Command) -> Result<Peer> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawning the server")?;
        let stdin = Some(BufWriter::new(child.stdin.take().context("stdin")?));
        let stdout = BufReader::new(child.stdout.take().context("stdout")?);
        Ok(Peer {
            child,
            stdin,
            stdout,
            line: String::new(),
        })
    }

    /// Sends one line and reads one line back.
    pub(crate) fn round_trip(&mut self, request: &str) -> Result<&str> {
        let stdin = self.stdin.as_mut().context("stdin closed")?;
        stdin.write_all(request.as_bytes())?;
        stdin.write_all(b"\n")?;
        stdin.flush()?;
        self.line.clear();
        if self.stdout.read_line(&mut self.line)? == 0 {
            bail!("the peer closed its stdout");
        }
        Ok(&self.line)
    }

    pub(crate) fn notify(&mut self, message: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().context("stdin closed")?;
        stdin.write_all(message.as_bytes())?;
        stdin.write_all(b"\n")?;
        Ok(stdin.flush()?)
    }
}

impl Drop for Peer {
    /// Closes the server's stdin (it ends, as an MCP server over stdio should, and a profiler
    /// wrapping it writes its report); killed if it has not ended within two seconds.
    fn drop(&mut self) {
        drop(self.stdin.take());
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(2) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Round trips of `line` through `cat`, a writer thread feeding it.
fn echo_times(line: &std::sync::Arc<String>, n: usize) -> Result<Vec<Duration>> {
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
    let (tx, rx) = std::sync::mpsc::channel::<std::sync::Arc<String>>();
    let writer = std::thread::spawn(move || {
        for l in rx {
            if stdin.write_all(l.as_bytes()).is_err() || stdin.write_all(b"\n").is_err() {
                break;
            }
        }
    });
    let mut buf = String::new();
    let times = timed(n, || {
        tx.send(std::sync::Arc::clone(line))?;
        buf.clear();
        if stdout.read_line(&mut buf)? == 0 {
            bail!("cat closed its stdout");
        }
        Ok(())
    });
    drop(tx);
    let _ = writer.join();
    let _ = child.kill();
    let _ = child.wait();
    times
}

fn timed(n: usize, mut f: impl FnMut() -> Result<()>) -> Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f()?;
        out.push(t.elapsed());
    }
    Ok(out)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub fn bench_mcp(args: &[String]) -> Result<()> {
    let mut bin: Option<PathBuf> = None;
    let mut calls = 5_000usize;
    let mut lists = 50usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bin" => bin = Some(PathBuf::from(it.next().context("--bin PATH")?)),
            "--github" => bin = Some(crate::import::github_release_binary()?),
            "--calls" => calls = it.next().context("--calls N")?.parse()?,
            "--lists" => lists = it.next().context("--lists N")?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    let bin = match bin {
        Some(b) => b,
        None => {
            let status = crate::cargo()
                .args(["build", "--release", "-q", "-p", "notebook"])
                .status()?;
            if !status.success() {
                bail!("building the notebook example failed");
            }
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/notebook")
        }
    };
    // The server runs in a scratch directory: name the binary absolutely.
    let bin = bin
        .canonicalize()
        .with_context(|| format!("no binary at {}", bin.display()))?;
    let work = tempfile::tempdir()?;
    let mut cmd = Command::new(&bin);
    cmd.arg("serve")
        .current_dir(work.path())
        .env("NOTEBOOK_DIR", work.path())
        .env("AIFIRST_ROOTS", work.path())
        .env("AIFIRST_STATE_DIR", work.path().join("state"));
    let mut server = Peer::spawn(cmd)?;
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-06-18","capabilities":{},
        "clientInfo":{"name":"bench","version":"0"}}});
    let answer: Value = serde_json::from_str(server.round_trip(&init.to_string())?)?;
    if answer.get("result").is_none() {
        bail!("initialize failed: {answer}");
    }
    server.notify(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string())?;

    let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}).to_string();
    let first: Value = serde_json::from_str(server.round_trip(&list)?)?;
    let tools = first["result"]["tools"].as_array().map_or(0, Vec::len);
    let bytes = server.line.len();
    let has_noop = first["result"]["tools"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["name"] == "noop"));
    let list_times = timed(lists, || server.round_trip(&list).map(|_| ()))?;
    // Baseline: the same response's bytes through `cat` over the same kind of pipes (written
    // from another thread: a line this long does not fit in a pipe's buffer).
    let reply = std::sync::Arc::new(server.line.trim_end().to_string());
    let echo_list = echo_times(&reply, lists)?;
    let (l, e) = (median(list_times), median(echo_list));
    println!(
        "tools/list: {tools} tools, {:.1} KiB: median {:.2} ms over {lists} requests ({})",
        bytes as f64 / 1024.0,
        us(l) / 1e3,
        bin.display()
    );
    println!(
        "  baseline, the same {:.1} KiB echoed by `cat`: median {:.2} ms ({:.1}×)",
        bytes as f64 / 1024.0,
        us(e) / 1e3,
        l.as_secs_f64() / e.as_secs_f64().max(1e-9)
    );
    if !has_noop {
        println!("no `noop` capability: tools/call round trip not measured");
        return Ok(());
    }

    let call = json!({"jsonrpc":"2.0","id":2,"method":"tools/call",
        "params":{"name":"noop","arguments":{}}})
    .to_string();
    let reply: Value = serde_json::from_str(server.round_trip(&call)?)?;
    if reply["result"]["isError"] != false {
        bail!("noop failed: {reply}");
    }
    timed(200, || server.round_trip(&call).map(|_| ()))?;
    let call_times = timed(calls, || server.round_trip(&call).map(|_| ()))?;

    let mut cat = Peer::spawn(Command::new("cat"))?;
    timed(200, || cat.round_trip(&call).map(|_| ()))?;
    let echo_times = timed(calls, || cat.round_trip(&call).map(|_| ()))?;

    let mut sorted = call_times.clone();
    sorted.sort();
    let p99 = sorted[sorted.len() * 99 / 100];
    let call_med = median(call_times);
    let echo_med = median(echo_times);
    println!(
        "tools/call noop over stdio: median {:.1} µs (p99 {:.1} µs) over {calls} calls, journaled and audited",
        us(call_med),
        us(p99)
    );
    println!(
        "baseline, the same line echoed by `cat` over pipes: median {:.1} µs; MCP adds {:.1} µs ({:.1}×)",
        us(echo_med),
        us(call_med.saturating_sub(echo_med)),
        call_med.as_secs_f64() / echo_med.as_secs_f64().max(1e-9)
    );
    Ok(())
}
