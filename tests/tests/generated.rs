//! The committed generated crates (forge's output for the petstore, hostile and notes.py
//! fixtures) register their capabilities as data: each one in the manifest forge wrote beside it
//! (capabilities.json) is in the registry, from that crate, with the same effects, annotations,
//! route and undo plan — the plan read back from the JSON text in the static, as the engine
//! reads it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::path::Path;

use aifirst::{Registry, UndoDecl};
use serde_json::Value;

use hostile as _;
use petstore as _;
use pynotes as _;

fn manifest(krate: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("generated")
        .join(krate)
        .join("capabilities.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["capabilities"].as_array().unwrap().clone()
}

/// A plan as the runtime resolves it: capability references by name only.
fn by_name(mut plan: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("operation_id");
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut plan);
    plan
}

#[test]
fn generated_capabilities_register_as_their_manifest_says() {
    let reg = Registry::new().unwrap();
    let mut plans = 0;
    for krate in ["petstore", "hostile", "pynotes"] {
        let caps = manifest(krate);
        assert!(caps.len() >= 9, "{krate}: {} capabilities", caps.len());
        let registered = reg
            .iter()
            .filter(|d| d.location.module.split("::").next() == Some(krate))
            .count();
        assert_eq!(registered, caps.len(), "{krate}: registered vs manifest");
        for c in &caps {
            let name = c["name"].as_str().unwrap();
            let def = reg
                .get(name)
                .unwrap_or_else(|| panic!("{krate}: {name} is not registered"));
            assert!(def.location.module.starts_with(krate), "{name}");
            let effects: Vec<&str> = def.effects.iter().map(|e| e.as_str()).collect();
            let want: Vec<&str> = c["effects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_str().unwrap())
                .collect();
            assert_eq!(effects, want, "{name}: effects");
            assert_eq!(
                serde_json::to_value(def.annotations()).unwrap(),
                c["annotations"],
                "{name}: annotations"
            );
            if let Some(http) = c.get("http") {
                let route = format!(
                    "{} {}",
                    http["method"].as_str().unwrap(),
                    http["path"].as_str().unwrap()
                );
                assert_eq!(def.route, Some(route.as_str()), "{name}: route");
            }
            assert_eq!(
                def.input_schema().as_value().get("type"),
                Some(&Value::from("object")),
                "{name}: input schema"
            );
            let kind = c["undo"]["kind"].as_str().unwrap_or("none");
            match def.undo {
                UndoDecl::Plan(_) => {
                    let plan = def.undo.plan().unwrap();
                    assert!(plan.reverses(), "{name}: {plan:?}");
                    let got = serde_json::to_value(&plan).unwrap();
                    let mut want = by_name(c["undo"].clone());
                    if kind == "file_snapshot" {
                        // A file snapshot is registered with its paths only, at high
                        // confidence (what `#[capability(undo = file_snapshot(…))]` writes).
                        assert_eq!(got["paths"], want["paths"], "{name}");
                        assert_eq!(got["kind"], "file_snapshot", "{name}");
                    } else {
                        if let Some(m) = want.as_object_mut() {
                            m.remove("reason");
                        }
                        assert_eq!(got, want, "{name}: the plan reads back as inferred");
                    }
                    plans += 1;
                }
                UndoDecl::Irreversible { reason } => {
                    assert!(!reason.is_empty(), "{name}");
                    assert!(
                        matches!(kind, "irreversible" | "none") || c["undo"].is_null(),
                        "{name}: irreversible in the crate, {kind} in the manifest"
                    );
                }
                UndoDecl::Undeclared => {
                    assert!(
                        matches!(kind, "none" | "irreversible") || c["undo"].is_null(),
                        "{name}: no plan in the crate, {kind} in the manifest"
                    );
                }
                other => panic!("{name}: forge does not write {other:?}"),
            }
        }
    }
    assert!(plans >= 8, "the fixtures carry plans ({plans})");
}
