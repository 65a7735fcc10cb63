//! The redactor against a corpus: every secret shape in `data/secrets.jsonl` must be gone from
//! the output, every look-alike in `data/lookalikes.jsonl` must come out byte-identical.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use aifirst::Redactor;
use serde_json::Value;

fn lines(name: &str) -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the corpus is part of the repository)",
            path.display()
        )
    });
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn every_secret_shape_is_removed() {
    let r = Redactor::default();
    let cases = lines("secrets.jsonl");
    assert!(cases.len() >= 100, "only {} secret cases", cases.len());
    let mut leaks = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let secrets: Vec<&str> = match &case["secrets"] {
            Value::Array(a) => a.iter().map(|s| s.as_str().unwrap()).collect(),
            _ => vec![case["secret"].as_str().unwrap()],
        };
        let input = serde_json::to_string(&case["input"]).unwrap();
        for s in &secrets {
            assert!(input.contains(s), "{name}: the secret is not in its input");
        }
        let out = serde_json::to_string(&r.redact(&case["input"])).unwrap();
        for s in secrets {
            if out.contains(s) {
                leaks.push(format!("{name}: {out}"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} of {} cases leak:\n{}",
        leaks.len(),
        cases.len(),
        leaks.join("\n")
    );
}

#[test]
fn look_alikes_survive_byte_for_byte() {
    let r = Redactor::default();
    let cases = lines("lookalikes.jsonl");
    assert!(cases.len() >= 100, "only {} look-alikes", cases.len());
    let mut changed = Vec::new();
    for case in &cases {
        let input = serde_json::to_string(&case["input"]).unwrap();
        let out = serde_json::to_string(&r.redact(&case["input"])).unwrap();
        if out != input {
            changed.push(format!("{}: {out}", case["name"]));
        }
    }
    assert!(
        changed.is_empty(),
        "{} of {} look-alikes changed:\n{}",
        changed.len(),
        cases.len(),
        changed.join("\n")
    );
}
