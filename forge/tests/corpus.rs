//! Every real-world description in the shared corpus imports without a panic.
//!
//! The corpus is not part of the repository: it sits at `../shared/corpus/openapi` beside the
//! checkout (or wherever `AIFIRST_CORPUS` points), so the test is ignored by default (a fresh
//! clone passes on its own, and says it did not run this) and fails when asked to run without
//! the corpus:
//!
//! ```sh
//! cargo test -p aifirst-forge --test corpus -- --ignored
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::path::PathBuf;

use aifirst_forge::driver::{lower, Options};

fn corpus_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("AIFIRST_CORPUS") {
        return Some(PathBuf::from(dir));
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/openapi");
    dir.is_dir().then_some(dir)
}

#[test]
#[ignore = "needs the shared corpus (../shared/corpus/openapi or AIFIRST_CORPUS): run with --ignored"]
fn corpus_imports_without_panics() {
    let dir = corpus_dir().unwrap_or_else(|| {
        panic!("no corpus: put it at ../shared/corpus/openapi beside the checkout or set AIFIRST_CORPUS")
    });
    let mut specs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("json" | "yaml" | "yml")
            )
        })
        .collect();
    specs.sort();
    assert!(!specs.is_empty(), "{} holds no specs", dir.display());
    for spec in specs {
        let lowered =
            lower(&spec, &Options::default()).unwrap_or_else(|d| panic!("{}: {d}", spec.display()));
        let name = spec.file_name().unwrap().to_string_lossy();
        eprintln!(
            "{name:<36} {:>5} operations {:>5} imported {:>3} skipped {:>4} renamed {:>3} diagnostics",
            lowered.stats.operations,
            lowered.stats.imported,
            lowered.stats.skipped,
            lowered.stats.renamed,
            lowered.diagnostics.len()
        );
        assert!(lowered.stats.imported > 0, "{name}: nothing imported");
        assert_eq!(
            lowered.stats.imported + lowered.stats.skipped,
            lowered.stats.operations,
            "{name}"
        );
    }
}
