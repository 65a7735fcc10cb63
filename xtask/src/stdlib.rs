//! `cargo xtask bench-stdlib [--calls N] [--airun PATH] [--skip-peer] [--engine-only] [--mcp-only]`: the `fs` standard
//! library against the official MCP filesystem server, and what file snapshots cost.
//!
//! 1. MCP stdio round trips of `write_file` (4 KiB), `edit_file` and `read_text_file`: ours
//!    (`airun serve --root DIR`: journaled, snapshotted, audited) and the official server
//!    (`@modelcontextprotocol/server-filesystem`, installed with npm into `target/bench-data` the
//!    first time; never committed) doing the same calls on the same kind of directory, taking
//!    turns call by call. Medians and the ratio ours / theirs; the same file work done directly
//!    (an atomic write: temporary file, mode, rename; a read), which both servers pay, and each
//!    server's time above it; the same calls through the engine in one process (no MCP).
//! 2. The snapshot of a 100 MiB file: `append_file` of one line through the engine (snapshot
//!    before and after, journal, audit) against the handler alone.
//! 3. A 10,000-file tree: `delete_file` (recursive) plus `undo`, through the engine, against a
//!    plain `cp -a` of the same tree.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::mcp::Peer;
use crate::{median, ms};

/// The official server's version the benchmark installs.
const PEER_VERSION: &str = "2026.8.31";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn official_server() -> Result<PathBuf> {
    let dir = repo().join("target/bench-data/mcp-filesystem");
    let entry = dir.join("node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");
    if !entry.exists() {
        std::fs::create_dir_all(&dir)?;
        eprintln!(
            "installing @modelcontextprotocol/server-filesystem@{PEER_VERSION} into {}",
            dir.display()
        );
        let status = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg(format!(
                "@modelcontextprotocol/server-filesystem@{PEER_VERSION}"
            ))
            .status()
            .context("running npm (Node.js and npm are needed for the peer)")?;
        if !status.success() || !entry.exists() {
            bail!("npm could not install the official filesystem server");
        }
    }
    Ok(entry)
}

pub(crate) fn airun_binary(given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(b) = given {
        return b
            .canonicalize()
            .with_context(|| format!("no binary at {}", b.display()));
    }
    let status = crate::cargo()
        .args(["build", "--release", "-q", "-p", "airun"])
        .status()?;
    if !status.success() {
        bail!("building airun failed");
    }
    Ok(repo().join("target/release/airun").canonicalize()?)
}

/// An MCP client over stdio: initialize, then numbered `tools/call` requests.
pub(crate) struct Client {
    peer: Peer,
    id: u64,
}

impl Client {
    pub(crate) fn start(cmd: Command) -> Result<Client> {
        let mut peer = Peer::spawn(cmd)?;
        let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion":"2025-06-18","capabilities":{},
            "clientInfo":{"name":"bench-stdlib","version":"0"}}});
        let answer: Value = serde_json::from_str(peer.round_trip(&init.to_string())?)?;
        if answer.get("result").is_none() {
            bail!("initialize failed: {answer}");
        }
        peer.notify(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string())?;
        Ok(Client { peer, id: 1 })
    }

    pub(crate) fn call(&mut self, name: &str, args: Value) -> Result<Duration> {
        self.id += 1;
        let req = json!({"jsonrpc":"2.0","id":self.id,"method":"tools/call",
            "params":{"name":name,"arguments":args}})
        .to_string();
        let t = Instant::now();
        let line = self.peer.round_trip(&req)?;
        let took = t.elapsed();
        let reply: Value = serde_json::from_str(line)?;
        if reply["result"]["isError"] == true || reply.get("error").is_some() {
            bail!("{name} failed: {reply}");
        }
        Ok(took)
    }
}

/// The same calls on each server, taking turns: `calls` rounds of write, edit and read; the
/// medians per server, and the medians of the same file work done directly (`floor`): what
/// both servers' writes do (a temporary file, written, its mode set, renamed over the file) and
/// their reads (open, read, close).
fn round_trips(
    servers: &mut [(Client, PathBuf)],
    floor: &Path,
    calls: usize,
) -> Result<[[Duration; 3]; 3]> {
    use std::io::{Read, Write};
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut times: Vec<[Vec<Duration>; 3]> =
        (0..=servers.len()).map(|_| Default::default()).collect();
    let direct = floor.join("bench.txt");
    for i in 0..calls {
        let mut content = format!("round {i} marker-{i}\n");
        while content.len() < 4096 {
            content.push_str("lorem ipsum dolor sit amet, consectetur adipiscing elit\n");
        }
        content.truncate(4096);
        let edited = content.replace(&format!("marker-{i}\n"), &format!("edited-{i}\n"));
        for (k, (client, root)) in servers.iter_mut().enumerate() {
            let file = root.join("bench.txt").display().to_string();
            times[k][0].push(client.call("write_file", json!({"path": file, "content": content}))?);
        }
        for (k, (client, root)) in servers.iter_mut().enumerate() {
            let file = root.join("bench.txt").display().to_string();
            times[k][1].push(client.call(
                "edit_file",
                json!({"path": file, "edits": [{"oldText": format!("marker-{i}\n"), "newText": format!("edited-{i}\n")}]}),
            )?);
        }
        for (k, (client, root)) in servers.iter_mut().enumerate() {
            let file = root.join("bench.txt").display().to_string();
            times[k][2].push(client.call("read_text_file", json!({"path": file}))?);
        }
        let atomic_write = |text: &str| -> Result<Duration> {
            let t = Instant::now();
            let tmp = floor.join(format!(".bench-{i}.tmp"));
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
            drop(f);
            std::fs::rename(&tmp, &direct)?;
            Ok(t.elapsed())
        };
        let k = servers.len();
        times[k][0].push(atomic_write(&content)?);
        times[k][1].push(atomic_write(&edited)?);
        let t = Instant::now();
        let mut text = String::new();
        std::fs::File::open(&direct)?.read_to_string(&mut text)?;
        times[k][2].push(t.elapsed());
    }
    let mut out = [[Duration::ZERO; 3]; 3];
    let last = times.len() - 1;
    for (k, t) in times.into_iter().enumerate() {
        // Ours, theirs (when measured), the floor last.
        let slot = if k == last { 2 } else { k };
        let [a, b, c] = t;
        out[slot] = [median(a), median(b), median(c)];
    }
    Ok(out)
}

pub fn bench_stdlib(args: &[String]) -> Result<()> {
    let mut calls = 200usize;
    let mut bin = None;
    let mut skip_peer = false;
    let mut engine_only = false;
    let mut mcp_only = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--calls" => calls = it.next().context("--calls N")?.parse()?,
            "--airun" => bin = Some(PathBuf::from(it.next().context("--airun PATH")?)),
            "--skip-peer" => skip_peer = true,
            "--engine-only" => engine_only = true,
            "--mcp-only" => mcp_only = true,
            other => bail!("unknown argument {other}"),
        }
    }
    if engine_only {
        return engine_in_process(calls);
    }
    let bin = airun_binary(bin)?;

    // 1. Round trips: the servers take turns call by call, so the machine's drift falls on both.
    let ours_dir = tempfile::tempdir()?;
    let root = ours_dir.path().join("root");
    std::fs::create_dir_all(&root)?;
    let mut cmd = Command::new(&bin);
    cmd.args(["serve", "--root"])
        .arg(&root)
        .current_dir(ours_dir.path())
        .env("AIFIRST_STATE_DIR", ours_dir.path().join("state"));
    let mut servers = vec![(Client::start(cmd)?, root)];
    let peer_dir = tempfile::tempdir()?;
    if !skip_peer {
        let entry = official_server()?;
        let peer_root = peer_dir.path().join("root");
        std::fs::create_dir_all(&peer_root)?;
        let peer_root = peer_root.canonicalize()?;
        let mut cmd = Command::new("node");
        cmd.arg(&entry).arg(&peer_root).current_dir(peer_dir.path());
        servers.push((Client::start(cmd)?, peer_root));
    }
    let floor_dir = tempfile::tempdir()?;
    let [ours, theirs, floor] = round_trips(&mut servers, floor_dir.path(), calls)?;
    let names = ["write_file (4 KiB)", "edit_file", "read_text_file"];
    println!(
        "MCP stdio round trip, median of {calls} calls each (the servers take turns call by call):"
    );
    for (i, n) in names.iter().enumerate() {
        let (o, f) = (ours[i], floor[i]);
        if skip_peer {
            println!(
                "  {n:<20} ours {:>7.3} ms   the file work alone {:>6.3} ms",
                ms(o),
                ms(f)
            );
            continue;
        }
        let t = theirs[i];
        let above = |x: Duration| x.saturating_sub(f);
        // A read is audited (one record); a change is also journaled and snapshotted.
        let what = if n.starts_with("read") {
            "audited"
        } else {
            "journaled, snapshotted, audited"
        };
        println!(
            "  {n:<20} ours {:>7.3} ms ({what})   official server {:>7.3} ms   ours/theirs {:.2}×",
            ms(o),
            ms(t),
            o.as_secs_f64() / t.as_secs_f64().max(1e-9)
        );
        println!(
            "  {:<20} the file work alone (both servers do it) {:.3} ms; above it: ours {:.3} ms, theirs {:.3} ms: {:.2}×",
            "",
            ms(f),
            ms(above(o)),
            ms(above(t)),
            above(o).as_secs_f64() / above(t).as_secs_f64().max(1e-9)
        );
    }

    engine_in_process(calls)?;
    if mcp_only {
        return Ok(());
    }

    // 2 and 3: through the engine in this process.
    use aifirst_stdlib as _;
    let scratch = tempfile::tempdir()?;
    let root = scratch.path().join("root");
    std::fs::create_dir_all(&root)?;
    let engine = aifirst::Engine::open(
        aifirst::Registry::new()?,
        aifirst::Policy::default(),
        &scratch.path().join("state"),
    )?
    .with_sandbox(aifirst::Sandbox::new().with_roots(std::slice::from_ref(&root))?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let big = root.join("big.bin");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big)?);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut chunk = vec![0u8; 1 << 20];
        for _ in 0..100 {
            for b in chunk.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            f.write_all(&chunk)?;
        }
    }
    let append = |args: Value| -> Result<Duration> {
        let t = Instant::now();
        rt.block_on(engine.call("bench", "append_file", args, Default::default()))?;
        Ok(t.elapsed())
    };
    let def = engine
        .registry()
        .get("append_file")
        .context("append_file is not linked")?;
    let ctx = aifirst::Ctx::with_sandbox(Arc::clone(engine.sandbox()));
    let mut with = Vec::new();
    let mut plain = Vec::new();
    for i in 0..5 {
        let args = json!({"path": big.display().to_string(), "content": format!("line {i}\n")});
        with.push(append(args.clone())?);
        let t = Instant::now();
        rt.block_on(def.invoke(&ctx, args))?;
        plain.push(t.elapsed());
    }
    let (w, p) = (median(with), median(plain));
    println!(
        "append_file to a 100 MiB file, median of 5: through the engine (snapshot before and after) {:.0} ms, the handler alone {:.1} ms",
        ms(w),
        ms(p)
    );

    let tree = root.join("tree");
    for d in 0..100 {
        let dir = tree.join(format!("d{d:03}"));
        std::fs::create_dir_all(&dir)?;
        for f in 0..100 {
            std::fs::write(
                dir.join(format!("f{f:03}.txt")),
                format!("file {d}/{f}\n").repeat(20),
            )?;
        }
    }
    let mut cp = Vec::new();
    let mut both = Vec::new();
    let mut deletes = Vec::new();
    let mut shell = Vec::new();
    for i in 0..3 {
        let copy = scratch.path().join(format!("copy{i}"));
        let t = Instant::now();
        let status = Command::new("cp")
            .arg("-a")
            .arg(&tree)
            .arg(&copy)
            .status()?;
        cp.push(t.elapsed());
        if !status.success() {
            bail!("cp -a failed");
        }
        let t = Instant::now();
        rt.block_on(engine.call(
            "bench",
            "delete_file",
            json!({"path": tree.display().to_string(), "recursive": true}),
            Default::default(),
        ))?;
        deletes.push(t.elapsed());
        let report = rt.block_on(engine.undo("bench", 1))?;
        both.push(t.elapsed());
        if report.undone.len() != 1 {
            bail!("the undo of the tree delete failed: {report:?}");
        }
        // The same work by hand: remove the tree, bring it back from a copy (ext4 makes
        // re-creating many just-deleted files slower than creating fresh ones; this pays it too).
        let t = Instant::now();
        std::fs::remove_dir_all(&tree)?;
        let status = Command::new("cp")
            .arg("-a")
            .arg(&copy)
            .arg(&tree)
            .status()?;
        shell.push(t.elapsed());
        if !status.success() {
            bail!("cp -a back failed");
        }
    }
    let (c, b, d, sh) = (median(cp), median(both), median(deletes), median(shell));
    println!(
        "10,000-file tree: delete_file + undo {:.0} ms (the delete {:.0} ms); plain `cp -a` {:.0} ms: {:.2}× (goal ≤ 3×); \
         `rm -rf` + `cp -a` back from a copy {:.0} ms: {:.2}×",
        ms(b),
        ms(d),
        ms(c),
        b.as_secs_f64() / c.as_secs_f64().max(1e-9),
        ms(sh),
        b.as_secs_f64() / sh.as_secs_f64().max(1e-9)
    );
    Ok(())
}

/// The same write and read through the engine in this process (journal, snapshot and audit, no
/// MCP): what the server spends on the protocol and the transport is the rest of its round trip.
/// `--engine-only` runs just this part, for profiling the engine (`perf record … --engine-only`).
fn engine_in_process(calls: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root)?;
    let state = dir.path().join("state");
    let audit = Arc::new(aifirst::audit::AuditLog::open(
        &state,
        aifirst::Redactor::default(),
    )?);
    let engine = aifirst::Engine::open(
        aifirst::Registry::new()?,
        aifirst::Policy::default(),
        &state,
    )?
    .with_recorder(audit)
    .with_sandbox(aifirst::Sandbox::new().with_roots(std::slice::from_ref(&root))?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let file = root.join("bench.txt").display().to_string();
    let mut t_write = Vec::new();
    let mut t_read = Vec::new();
    for i in 0..calls {
        let mut content = format!("round {i}\n");
        while content.len() < 4096 {
            content.push_str("lorem ipsum dolor sit amet, consectetur adipiscing elit\n");
        }
        content.truncate(4096);
        let t = Instant::now();
        rt.block_on(engine.call(
            "bench",
            "write_file",
            json!({"path": file, "content": content}),
            Default::default(),
        ))?;
        t_write.push(t.elapsed());
        let t = Instant::now();
        rt.block_on(engine.call(
            "bench",
            "read_text_file",
            json!({"path": file}),
            Default::default(),
        ))?;
        t_read.push(t.elapsed());
    }
    println!(
        "  through the engine in one process, no MCP: write_file {:.3} ms, read_text_file {:.3} ms",
        ms(median(t_write)),
        ms(median(t_read))
    );
    Ok(())
}
