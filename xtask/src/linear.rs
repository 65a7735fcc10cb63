//! `cargo xtask bench-linear [--paths 400,4000,50000] [--runs N] [--forge PATH] [--out DIR]`
//! (`--out` keeps the generated files, for profiling): is `forge
//! inspect` linear in the size of a description? A synthetic description is generated per size
//! (each resource a collection and an item path with GET/POST and GET/PUT/DELETE: 2.5 operations
//! per path, as in real APIs; every tenth resource nested under the one before it), then timed
//! in a fresh process. Reports the time per operation at each size and the ratio of the largest
//! to the smallest (goal: within 2×), with a baseline measured in the same run: plain
//! `serde_json` parsing of the same file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{build_forge, median, ms, run_measured};

/// A description with `paths` paths (rounded to an even number), and its operation count.
pub fn synthetic(paths: usize) -> (String, usize) {
    let resources = paths.div_ceil(2).max(1);
    let mut s = String::with_capacity(paths * 600);
    s.push_str(
        r#"{"openapi":"3.0.3","info":{"title":"Synthetic","version":"1"},"servers":[{"url":"https://api.example.test"}],"paths":{"#,
    );
    let mut ops = 0;
    for r in 0..resources {
        // Every tenth resource lives under the previous one: nested collections, as in real APIs.
        let base = if r % 10 == 9 {
            format!("/r{}s/{{r{}_id}}/r{r}s", r - 1, r - 1)
        } else {
            format!("/r{r}s")
        };
        let item = format!("{base}/{{r{r}_id}}");
        let id_params = |p: &str| -> String {
            let mut out = String::new();
            for var in p.split('/').filter(|s| s.starts_with('{')) {
                let name = var.trim_matches(|c| c == '{' || c == '}');
                let _ = write!(
                    out,
                    r#"{{"name":"{name}","in":"path","required":true,"schema":{{"type":"string"}}}},"#
                );
            }
            out.trim_end_matches(',').to_string()
        };
        let schema = format!(
            r#"{{"type":"object","properties":{{"id":{{"type":"string"}},"name":{{"type":"string","description":"The name of resource {r}."}},"size":{{"type":"integer"}}}}}}"#
        );
        if r > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            r#""{base}":{{"get":{{"operationId":"list_r{r}","parameters":[{p1}],"responses":{{"200":{{"description":"ok","content":{{"application/json":{{"schema":{{"type":"array","items":{schema}}}}}}}}}}}}},"post":{{"operationId":"create_r{r}","parameters":[{p1}],"requestBody":{{"content":{{"application/json":{{"schema":{schema}}}}}}},"responses":{{"201":{{"description":"created","content":{{"application/json":{{"schema":{schema}}}}}}}}}}}}},"#,
            p1 = id_params(&base)
        );
        let _ = write!(
            s,
            r#""{item}":{{"get":{{"operationId":"get_r{r}","parameters":[{p2}],"responses":{{"200":{{"description":"ok","content":{{"application/json":{{"schema":{schema}}}}}}}}}}},"put":{{"operationId":"replace_r{r}","parameters":[{p2}],"requestBody":{{"content":{{"application/json":{{"schema":{schema}}}}}}},"responses":{{"200":{{"description":"ok"}}}}}},"delete":{{"operationId":"delete_r{r}","parameters":[{p2}],"responses":{{"204":{{"description":"gone"}}}}}}}}"#,
            p2 = id_params(&item)
        );
        ops += 5;
    }
    s.push_str("}}");
    (s, ops)
}

pub fn bench_linear(args: &[String]) -> Result<()> {
    let mut sizes = vec![400usize, 4_000, 50_000];
    let mut runs = 3usize;
    let mut forge: Option<PathBuf> = None;
    let mut out: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--paths" => {
                sizes = it
                    .next()
                    .context("--paths N,N,…")?
                    .split(',')
                    .map(|n| n.trim().parse())
                    .collect::<Result<_, _>>()?
            }
            "--runs" => runs = it.next().context("--runs N")?.parse()?,
            "--forge" => forge = Some(PathBuf::from(it.next().context("--forge PATH")?)),
            "--out" => out = Some(PathBuf::from(it.next().context("--out DIR")?)),
            other => bail!("unknown argument {other}"),
        }
    }
    let forge = match forge {
        Some(f) => f,
        None => build_forge()?,
    };
    let tmp = tempfile::tempdir()?;
    let dir = out.as_deref().unwrap_or(tmp.path());
    println!("forge inspect on synthetic descriptions, {runs} runs each, medians");
    println!(
        "  {:>7} {:>8} {:>8}  {:>10} {:>10} {:>9}  {:>10}",
        "paths", "ops", "MB", "parse ms", "inspect ms", "µs/op", "peak MB"
    );
    let mut per_op = Vec::new();
    for &paths in &sizes {
        let (text, ops) = synthetic(paths);
        let file = dir.join(format!("synthetic-{paths}.json"));
        std::fs::write(&file, &text)?;
        let parse = median(
            (0..runs)
                .map(|_| -> Result<Duration> {
                    let t = Instant::now();
                    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file)?)?;
                    std::hint::black_box(&v);
                    Ok(t.elapsed())
                })
                .collect::<Result<_>>()?,
        );
        let (took, peak) = inspect(&forge, &file, runs)?;
        let us = took.as_secs_f64() * 1e6 / ops as f64;
        per_op.push(us);
        println!(
            "  {paths:>7} {ops:>8} {:>8.1}  {:>10.1} {:>10.1} {us:>9.1}  {:>10.1}",
            text.len() as f64 / 1e6,
            ms(parse),
            ms(took),
            peak as f64 / 1_048_576.0
        );
    }
    if let (Some(first), Some(last)) = (per_op.first(), per_op.last()) {
        let worst = per_op.iter().cloned().fold(f64::MIN, f64::max);
        let best = per_op.iter().cloned().fold(f64::MAX, f64::min);
        println!(
            "  per-operation cost, largest / smallest size: {:.2}x (max/min over sizes {:.2}x; goal <= 2x)",
            last / first,
            worst / best
        );
    }
    Ok(())
}

fn inspect(forge: &Path, file: &Path, runs: usize) -> Result<(Duration, u64)> {
    let mut times = Vec::with_capacity(runs);
    let mut peak = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let (code, _, rss) = run_measured(Command::new(forge).arg("inspect").arg(file))?;
        times.push(t.elapsed());
        peak = peak.max(rss);
        if code == 2 || code < 0 {
            bail!("forge inspect failed on {}", file.display());
        }
    }
    Ok((median(times), peak))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// The generator makes a valid description of the size asked for.
    #[test]
    fn synthetic_descriptions_parse_and_have_the_operations_they_say() {
        let (text, ops) = super::synthetic(40);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let paths = v["paths"].as_object().unwrap();
        assert_eq!(paths.len(), 40);
        let counted: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(counted, ops);
        assert_eq!(ops, 100);
        assert!(paths.contains_key("/r8s/{r8_id}/r9s/{r9_id}"));
    }
}
