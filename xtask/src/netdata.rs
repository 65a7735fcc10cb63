//! `cargo xtask bench-net-data [--calls N] [--airun PATH] [--skip-peer]`: the `net` and `data`
//! standard library modules against their peers.
//!
//! 1. `fetch` of a 1 MiB HTML page served on 127.0.0.1 (Markdown out, the first 5,000
//!    characters, the official tool's defaults): ours (`airun serve`, allowed host named in its
//!    airun.toml, journaled and audited) against the official MCP fetch server
//!    (`mcp-server-fetch`, installed with pip into a venv under `target/bench-data` the first
//!    time; never committed; run with `--ignore-robots-txt`, which it would otherwise fetch
//!    first, and `--allow-private-ips`, without which it refuses 127.0.0.1). The servers take
//!    turns call by call. Medians and the ratio.
//! 2. `sqlite_execute` of an UPDATE of 1,000 rows, through the engine with its changeset undo
//!    (session attached, changeset inverted and journaled, audited), against the same SQL
//!    through the `sqlite3` command-line shell on the same kind of database, and against the same
//!    SQL run in this process with rusqlite (no undo, no audit). Medians and the ratios.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::stdlib::{airun_binary, Client};
use crate::{median, ms};

/// The official fetch server's version the benchmark installs.
const PEER_VERSION: &str = "2026.10.24";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A Python with `mcp-server-fetch` installed (a venv under target/bench-data).
fn fetch_server() -> Result<PathBuf> {
    let venv = repo().join("target/bench-data/mcp-fetch");
    let python = venv.join("bin/python");
    let ready = Command::new(&python)
        .args(["-c", "import mcp_server_fetch"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        eprintln!(
            "installing mcp-server-fetch=={PEER_VERSION} into {}",
            venv.display()
        );
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .context("python3 -m venv (Python 3 with venv is needed for the peer)")?;
        if !status.success() {
            bail!("could not make a venv for the official fetch server");
        }
        let status = Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "-q",
                &format!("mcp-server-fetch=={PEER_VERSION}"),
            ])
            .status()?;
        if !status.success() {
            bail!("pip could not install the official fetch server");
        }
    }
    Ok(python)
}

/// A 1 MiB HTML page: headings, paragraphs, links, a list and a table.
fn page() -> String {
    let mut html = String::from(
        "<!doctype html><html><head><title>Bench page</title><style>p{color:#333}</style>\
         <script>var x = 1;</script></head><body>\n",
    );
    let mut i = 0;
    while html.len() < 1 << 20 {
        html.push_str(&format!(
            "<h2>Section {i}</h2>\n<p>Lorem ipsum <b>dolor</b> sit amet, <a href=\"/s/{i}\">consectetur</a> \
             adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.</p>\n\
             <ul><li>one {i}</li><li>two</li><li>three</li></ul>\n\
             <table><tr><th>k</th><th>v</th></tr><tr><td>{i}</td><td>x</td></tr></table>\n"
        ));
        i += 1;
    }
    html.push_str("</body></html>\n");
    html
}

/// Serves `body` as text/html to every GET (robots.txt: 404), one thread per connection.
fn serve(body: Arc<String>) -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let body = Arc::clone(&body);
            std::thread::spawn(move || {
                let Ok(read_half) = stream.try_clone() else {
                    return;
                };
                let mut reader = BufReader::new(read_half);
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    return;
                }
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if line == "\r\n" || line == "\n" => break,
                        Ok(_) => {}
                    }
                }
                let (status, text): (&str, &str) = if first.contains("/robots.txt") {
                    ("404 Not Found", "")
                } else {
                    ("200 OK", body.as_str())
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    text.len()
                );
                let _ = stream.write_all(text.as_bytes());
                let _ = stream.flush();
            });
        }
    });
    Ok(port)
}

pub fn bench_net_data(args: &[String]) -> Result<()> {
    let mut calls = 30usize;
    let mut bin = None;
    let mut skip_peer = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--calls" => calls = it.next().context("--calls N")?.parse()?,
            "--airun" => bin = Some(PathBuf::from(it.next().context("--airun PATH")?)),
            "--skip-peer" => skip_peer = true,
            other => bail!("unknown argument {other}"),
        }
    }
    let bin = airun_binary(bin)?;

    // 1. fetch.
    let port = serve(Arc::new(page()))?;
    let url = format!("http://127.0.0.1:{port}/page.html");
    let ours_dir = tempfile::tempdir()?;
    std::fs::write(
        ours_dir.path().join("airun.toml"),
        format!("allowed_hosts = [\"127.0.0.1:{port}\"]\n"),
    )?;
    let mut cmd = Command::new(&bin);
    cmd.arg("serve")
        .current_dir(ours_dir.path())
        .env("AIFIRST_STATE_DIR", ours_dir.path().join("state"));
    let mut servers = vec![Client::start(cmd)?];
    if !skip_peer {
        let python = fetch_server()?;
        let mut cmd = Command::new(python);
        cmd.args([
            "-m",
            "mcp_server_fetch",
            "--ignore-robots-txt",
            "--allow-private-ips",
        ]);
        servers.push(Client::start(cmd)?);
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); servers.len()];
    for _ in 0..calls {
        for (k, s) in servers.iter_mut().enumerate() {
            times[k].push(s.call("fetch", json!({"url": url}))?);
        }
    }
    let mut medians = times.into_iter().map(median);
    let ours = medians.next().context("no measurement")?;
    println!("fetch of a 1 MiB HTML page on 127.0.0.1 (Markdown, first 5,000 characters), median of {calls}:");
    match medians.next() {
        Some(theirs) => println!(
            "  ours {:.1} ms (journaled, audited)   official fetch server {:.1} ms   ours/theirs {:.3}× (goal ≤ 0.5×)",
            ms(ours),
            ms(theirs),
            ours.as_secs_f64() / theirs.as_secs_f64().max(1e-9)
        ),
        None => println!("  ours {:.1} ms", ms(ours)),
    }

    // 2. sqlite_execute.
    use aifirst_stdlib as _;
    let scratch = tempfile::tempdir()?;
    let root = scratch.path().join("root");
    std::fs::create_dir_all(&root)?;
    let make_db = |name: &str| -> Result<PathBuf> {
        let path = root.join(name);
        let conn = rusqlite::Connection::open(&path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL);",
        )?;
        let tx = conn.unchecked_transaction()?;
        {
            let mut st = tx.prepare("INSERT INTO items (id, name, qty) VALUES (?1, ?2, 0)")?;
            for i in 0..10_000 {
                st.execute(rusqlite::params![i, format!("item {i}")])?;
            }
        }
        tx.commit()?;
        Ok(path)
    };
    let sql = |round: usize| {
        format!(
            "UPDATE items SET qty = qty + 1, name = 'round {round}' WHERE id % 10 = {}",
            round % 10
        )
    };
    let state = scratch.path().join("state");
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
    let ours_db = make_db("ours.db")?;
    let cli_db = make_db("cli.db")?;
    let direct_db = make_db("direct.db")?;
    let direct = rusqlite::Connection::open(&direct_db)?;
    let have_cli = Command::new("sqlite3").arg("-version").output().is_ok();
    let (mut t_ours, mut t_cli, mut t_direct) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..calls {
        let t = Instant::now();
        let out = rt.block_on(engine.call(
            "bench",
            "sqlite_execute",
            json!({"database": ours_db.display().to_string(), "sql": sql(round)}),
            Default::default(),
        ))?;
        t_ours.push(t.elapsed());
        if round == 0 {
            let changed = out["rows_changed"].as_u64().unwrap_or(0);
            if changed != 1000 {
                bail!("sqlite_execute changed {changed} rows, not 1,000: {out}");
            }
        }
        if have_cli {
            let t = Instant::now();
            let status = Command::new("sqlite3")
                .arg(&cli_db)
                .arg(sql(round))
                .status()?;
            t_cli.push(t.elapsed());
            if !status.success() {
                bail!("sqlite3 failed");
            }
        }
        let t = Instant::now();
        let tx = direct.unchecked_transaction()?;
        tx.execute(&sql(round), [])?;
        tx.commit()?;
        t_direct.push(t.elapsed());
    }
    let (o, d) = (median(t_ours), median(t_direct));
    println!("sqlite_execute of a 1,000-row UPDATE (10,000-row table), median of {calls}:");
    println!(
        "  ours {:.2} ms (session changeset inverted and journaled, audited)   the same SQL in-process with rusqlite {:.2} ms: {:.2}×",
        ms(o),
        ms(d),
        o.as_secs_f64() / d.as_secs_f64().max(1e-9)
    );
    if have_cli {
        let c = median(t_cli);
        println!(
            "  the same SQL through the sqlite3 shell (a process per statement) {:.2} ms: ours/sqlite3 {:.2}× (goal ≤ 2×)",
            ms(c),
            o.as_secs_f64() / c.as_secs_f64().max(1e-9)
        );
    } else {
        println!("  (no `sqlite3` shell on PATH: that comparison was skipped)");
    }
    // Undo of the last update, from the journal.
    let t = Instant::now();
    let report = rt.block_on(engine.undo("bench", 1))?;
    if report.undone.len() != 1 {
        bail!("the undo of the last update failed: {report:?}");
    }
    println!(
        "  its undo (the inverted changeset applied, conflict-checked): {:.2} ms",
        ms(t.elapsed())
    );
    Ok(())
}
