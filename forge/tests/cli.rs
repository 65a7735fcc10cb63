//! The `forge` binary: exit codes, formats, filters, help.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use assert_cmd::Command;
use serde_json::Value;

fn forge() -> Command {
    Command::cargo_bin("forge").unwrap()
}

fn inspect(args: &[&str]) -> (i32, String, String) {
    let out = forge().arg("inspect").args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn names(json: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(json).unwrap();
    v["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn exit_codes() {
    assert_eq!(inspect(&["../fixtures/petstore/openapi.yaml"]).0, 0);
    assert_eq!(inspect(&["../fixtures/hostile/openapi.yaml"]).0, 1);
    assert_eq!(inspect(&["../fixtures/webhooks-only/openapi.yaml"]).0, 1);
    let (code, _, err) = inspect(&["../fixtures/not-openapi/config.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("error[not-openapi]"), "{err}");
    let (code, _, err) = inspect(&["../fixtures/nope.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("error[unreadable]"), "{err}");
}

#[test]
fn broken_syntax_is_an_error_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.yaml");
    std::fs::write(&path, "openapi: 3.0.0\npaths: [unclosed\n").unwrap();
    let (code, _, err) = inspect(&[path.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("broken.yaml") && err.contains("not valid YAML"),
        "{err}"
    );
}

#[test]
fn table_lists_every_capability_and_a_summary() {
    let (code, out, err) = inspect(&["../fixtures/petstore/openapi.yaml"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("NAME"), "{out}");
    for name in [
        "list_pets",
        "create_pet",
        "delete_pet",
        "star_pet",
        "place_order",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{out}"
        );
    }
    assert!(
        out.contains("10 operations: 10 imported, 0 skipped, 0 renamed; 10 shown"),
        "{out}"
    );
    assert!(out.contains("MCP tools/list:"), "{out}");
    assert!(out.contains("largest tools:"), "{out}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn json_is_the_documented_contract() {
    let (_, out, _) = inspect(&["../fixtures/petstore/openapi.yaml", "--format", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let c = &v["capabilities"][0];
    for key in [
        "name",
        "operation_id",
        "method",
        "path",
        "description",
        "input_schema",
        "output_schema",
        "effects",
        "annotations",
        "undo",
        "source",
    ] {
        assert!(c.get(key).is_some(), "capability lacks {key}");
    }
    for key in [
        "readOnlyHint",
        "destructiveHint",
        "idempotentHint",
        "openWorldHint",
    ] {
        assert!(
            c["annotations"].get(key).is_some(),
            "annotations lack {key}"
        );
    }
    assert!(v["diagnostics"].is_array());
    assert_eq!(v["summary"]["operations"], 10);
}

#[test]
fn filters_select_by_tag_and_pattern() {
    let petstore = "../fixtures/petstore/openapi.yaml";
    let (_, out, _) = inspect(&[petstore, "--format", "json", "--include-tag", "store"]);
    assert_eq!(names(&out), ["place_order"]);
    let (_, out, _) = inspect(&[petstore, "--format", "json", "--exclude-tag", "pets"]);
    assert_eq!(names(&out), ["place_order"]);
    let (_, out, _) = inspect(&[petstore, "--format", "json", "--ops", "list_*,*_order"]);
    assert_eq!(names(&out), ["list_pets", "place_order"]);
    // operationIds match too.
    let (_, out, _) = inspect(&[petstore, "--format", "json", "--ops", "createPet"]);
    assert_eq!(names(&out), ["create_pet"]);
}

#[test]
fn name_budget_is_validated_and_applied() {
    let (code, _, err) = inspect(&["../fixtures/petstore/openapi.yaml", "--max-name-len", "8"]);
    assert_eq!(code, 2);
    assert!(err.contains("--max-name-len"), "{err}");
    let (_, out, _) = inspect(&[
        "../fixtures/hostile/openapi.yaml",
        "--format",
        "json",
        "--max-name-len",
        "24",
    ]);
    assert!(names(&out).iter().all(|n| n.len() <= 24));
}

#[test]
fn help_teaches() {
    let out = forge().args(["inspect", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    insta::assert_snapshot!("inspect_help", help);
    let out = forge().arg("--help").output().unwrap();
    insta::assert_snapshot!("forge_help", String::from_utf8(out.stdout).unwrap());
}

/// A path holding an escape sequence (`\e[2J` clears the screen) reaches `inspect`'s table
/// and `check`'s violation header escaped: nothing printed can hide what came before it.
#[test]
fn names_from_the_description_print_no_escape_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("esc.yaml");
    std::fs::write(
        &spec,
        "openapi: 3.0.0\ninfo: {title: t, version: \"1\"}\npaths:\n  \"/x\\e[2J\\u202e\":\n    delete:\n      responses: {\"204\": {description: ok}}\n",
    )
    .unwrap();
    for args in [vec!["inspect"], vec!["check", "--deny", "delete"]] {
        let out = forge().args(&args).arg(&spec).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("\\u{1b}[2J"), "{args:?}: {text}");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{202e}'),
            "{args:?}: {text}"
        );
    }
}
