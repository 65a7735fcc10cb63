//! The token budget of a tool (`--max-tool-tokens`): pruning on a fixture made to need it
//! (deep nesting, recursion, long descriptions, a long enum), snapshotted; and the property the
//! runtime relies on: whatever the full schema accepts, the pruned one accepts too. The runtime
//! validates arguments with `jsonschema::validator_for` on the schema forge emits, the same call
//! made here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::path::Path;

use aifirst_forge::budget::tool_tokens;
use aifirst_forge::diag::Diagnostic;
use aifirst_forge::driver::{self, Lowered, Options};
use aifirst_forge::ir::Capability;
use serde_json::{json, Value};

const FIXTURE: &str = "../fixtures/budget/openapi.json";

fn lower(max: Option<usize>) -> Lowered {
    let opts = Options {
        max_tool_tokens: max,
        ..Options::default()
    };
    driver::lower(Path::new(FIXTURE), &opts).unwrap()
}

fn cap<'a>(l: &'a Lowered, name: &str) -> &'a Capability {
    l.ir.capabilities
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no capability {name}"))
}

fn budget_diags(l: &Lowered) -> Vec<&Diagnostic> {
    l.diagnostics
        .iter()
        .filter(|d| d.code == "pruned-to-budget" || d.code == "over-tool-budget")
        .collect()
}

/// Arguments the full schema accepts: a deep planting site, a tree four nodes deep.
fn accepted_calls() -> Vec<Value> {
    let leaf = json!({"kind": "leaf", "length_cm": 3});
    let twig = json!({"kind": "twig", "children": [leaf.clone(), leaf]});
    let branch = json!({"kind": "branch", "length_cm": 120, "children": [twig.clone(), twig]});
    vec![
        json!({"species": "oak", "root": {"kind": "trunk"}}),
        json!({
            "species": "yew",
            "planted": {"at": "2026-12-02T10:00:00Z",
                        "site": {"name": "north field", "location": {"lat": 51.5, "lon": -0.1}}},
            "root": {"kind": "trunk", "length_cm": 800, "children": [branch.clone(), branch]},
            "labels": ["old", "protected"]
        }),
        // Extra fields are allowed by the description (no additionalProperties: false).
        json!({"species": "ash", "root": {"kind": "trunk", "note": "hollow"}, "extra": 1}),
    ]
}

fn accepts(schema: &Value, args: &Value) -> bool {
    jsonschema::validator_for(schema).unwrap().is_valid(args)
}

#[test]
fn a_tool_within_the_budget_is_left_alone() {
    let full = lower(None);
    let roomy = lower(Some(100_000));
    assert!(budget_diags(&roomy).is_empty());
    for c in &full.ir.capabilities {
        let same = cap(&roomy, &c.name);
        assert_eq!(c.input_schema, same.input_schema, "{}", c.name);
        assert_eq!(c.description, same.description, "{}", c.name);
    }
    // The recursive node is shared through $defs when it is kept.
    assert!(cap(&full, "create_tree").input_schema["$defs"]["Node"].is_object());
}

#[test]
fn an_oversized_tool_is_pruned_in_order_and_says_what_was_cut() {
    let full = lower(None);
    let full_tokens = tool_tokens(cap(&full, "create_tree"));
    // A budget the descriptions alone can meet, one that needs levels left open, one that
    // nothing can meet.
    let mut seen = Vec::new();
    for budget in [full_tokens - 60, 300, 100] {
        let l = lower(Some(budget));
        let c = cap(&l, "create_tree");
        let diags = budget_diags(&l);
        assert_eq!(diags.len(), 1, "budget {budget}: {diags:?}");
        let d = diags[0];
        assert!(d.message.starts_with("`create_tree`: ~"), "{}", d.message);
        if d.code == "pruned-to-budget" {
            assert!(
                tool_tokens(c) <= budget,
                "budget {budget}: {}",
                tool_tokens(c)
            );
        } else {
            assert!(tool_tokens(c) > budget);
            assert!(d
                .help
                .as_deref()
                .unwrap_or("")
                .contains("--toolset dynamic"));
        }
        // The long enum is never cut.
        assert_eq!(
            c.input_schema["properties"]["species"]["enum"]
                .as_array()
                .map(Vec::len),
            Some(25),
            "budget {budget}"
        );
        // The small tools are untouched.
        assert_eq!(
            cap(&l, "get_tree").input_schema,
            cap(&full, "get_tree").input_schema
        );
        seen.push(format!(
            "budget {budget} → {} tokens\n{}: {}\ninput schema: {}\ndescription: {}\n",
            tool_tokens(c),
            d.code,
            d.message,
            serde_json::to_string_pretty(&c.input_schema).unwrap(),
            c.description
        ));
    }
    insta::assert_snapshot!("budget_pruning", seen.join("\n"));
    assert!(seen[0].contains("pruned-to-budget") && !seen[0].contains("left open"));
    assert!(seen[1].contains("left open") && seen[1].contains("Fields of"));
    assert!(seen[2].contains("over-tool-budget"));
}

#[test]
fn pruning_only_widens_what_a_call_may_send() {
    let full = lower(None);
    let full_schema = &cap(&full, "create_tree").input_schema;
    for args in accepted_calls() {
        assert!(
            accepts(full_schema, &args),
            "the full schema refuses {args}"
        );
    }
    // Refused by the full schema deep down (a node kind that does not exist, three levels in).
    let deep_bad = json!({"species": "oak",
        "root": {"kind": "trunk", "children": [{"kind": "branch", "children": [{"kind": "acorn"}]}]}});
    assert!(!accepts(full_schema, &deep_bad));
    let mut opened = false;
    for budget in [450, 400, 350, 300, 250, 100] {
        let l = lower(Some(budget));
        let schema = &cap(&l, "create_tree").input_schema;
        for args in accepted_calls() {
            assert!(
                accepts(schema, &args),
                "budget {budget}: the pruned schema refuses {args}\n{schema:#}"
            );
        }
        // Still required at the top, still typed where it was kept.
        assert!(!accepts(schema, &json!({"root": {"kind": "trunk"}})));
        assert!(!accepts(schema, &json!({"species": "palm", "root": {}})));
        opened |= accepts(schema, &deep_bad);
    }
    // Somewhere the deep level was left open, and the open node accepts what it cannot check.
    assert!(opened);
}

/// Keywords where a wider subschema makes the whole stricter (`not`, `if`, `oneOf`,
/// `maxContains`, `unevaluatedProperties`), `dependentSchemas` (same value, not a level down) and
/// recursion that goes no level deeper: at every budget, what the full schema accepts the
/// pruned one accepts, and pruning ends.
#[test]
fn pruning_widens_through_combinators_and_same_level_recursion() {
    let at = |max: Option<usize>| {
        let opts = Options {
            max_tool_tokens: max,
            ..Options::default()
        };
        driver::lower(Path::new("../fixtures/budget/combinators.json"), &opts).unwrap()
    };
    let cases: [(&str, Vec<Value>); 6] = [
        (
            "use_not",
            vec![json!({"filter": {}}), json!({"filter": {"legacy": false}})],
        ),
        (
            "use_if",
            vec![
                json!({"x": {"kind": "b"}}),
                json!({"x": {"kind": "a", "a_opts": 1}}),
            ],
        ),
        (
            "use_one_of",
            vec![json!({"spec": {"source": {"url": "u"}}})],
        ),
        (
            "use_unevaluated",
            vec![json!({"x": {"a": "1", "b": {"c": "2"}}}), json!({"x": {}})],
        ),
        (
            "use_recursion",
            vec![json!({"v": [["a", [1, true]], {"k": ["x", {"deeper": [[]]}]}]})],
        ),
        (
            "use_contains",
            vec![json!({"arr": [{"meta": {"tag": "x"}}, {"meta": {"tag": "y"}}]})],
        ),
    ];
    let full = at(None);
    for (name, calls) in &cases {
        for args in calls {
            assert!(
                accepts(&cap(&full, name).input_schema, args),
                "{name}: the full schema refuses {args}"
            );
        }
    }
    let mut pruned_somewhere = std::collections::BTreeSet::new();
    for budget in (40..=400).step_by(20) {
        let l = at(Some(budget));
        for (name, calls) in &cases {
            let c = cap(&l, name);
            if c.input_schema != cap(&full, name).input_schema {
                pruned_somewhere.insert(*name);
            }
            for args in calls {
                assert!(
                    accepts(&c.input_schema, args),
                    "{name} at budget {budget}: the pruned schema refuses {args}\n{:#}",
                    c.input_schema
                );
            }
        }
    }
    assert_eq!(pruned_somewhere.len(), cases.len(), "{pruned_somewhere:?}");
}
