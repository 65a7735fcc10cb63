//! The front end on the team's fixtures: committed IR snapshots plus the properties they must have.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::collections::BTreeSet;
use std::path::Path;

use aifirst_forge::diag::Severity;
use aifirst_forge::driver::{self, Lowered, Options};
use aifirst_forge::inspect::{report, Filter};
use aifirst_forge::naming::is_mcp_safe;
use serde_json::Value;

fn fixture(rel: &str) -> String {
    // Tests run in the crate directory; fixtures live at the workspace root.
    format!("../fixtures/{rel}")
}

fn lower(rel: &str) -> Lowered {
    driver::lower(Path::new(&fixture(rel)), &Options::default()).unwrap()
}

fn ir_json(rel: &str) -> Value {
    report(&lower(rel), &Filter::default()).to_json()
}

fn cap<'a>(ir: &'a Value, name: &str) -> &'a Value {
    ir["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no capability {name}"))
}

/// A capability's output schema, its `{"$ref": "#/schemas/N"}` followed.
fn output_of(ir: &Value, c: &Value) -> Value {
    match c["output_schema"]["$ref"].as_str() {
        Some(r) => ir
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{r} points at nothing"))
            .clone(),
        None => c["output_schema"].clone(),
    }
}

#[test]
fn output_schemas_used_twice_are_shared_and_only_those() {
    for rel in ALL {
        let ir = ir_json(rel);
        let shared = ir["schemas"].as_array().unwrap();
        let mut uses = vec![0usize; shared.len()];
        let mut inline = Vec::new();
        for c in ir["capabilities"].as_array().unwrap() {
            match c["output_schema"]["$ref"].as_str() {
                Some(r) => {
                    let i: usize = r.strip_prefix("#/schemas/").unwrap().parse().unwrap();
                    uses[i] += 1;
                }
                None if !c["output_schema"].is_null() => inline.push(c["output_schema"].clone()),
                None => {}
            }
        }
        assert!(uses.iter().all(|n| *n >= 2), "{rel}: {uses:?}");
        for (i, s) in inline.iter().enumerate() {
            assert!(
                !shared.contains(s),
                "{rel}: an inline schema is also shared"
            );
            assert!(
                !inline[i + 1..].contains(s),
                "{rel}: an inline schema twice"
            );
        }
    }
    // The petstore's two list operations return the same array of pets: one shared schema.
    let ir = ir_json("multifile/openapi.yaml");
    assert!(!ir["schemas"].as_array().unwrap().is_empty());
}

fn prop_keys(schema: &Value) -> BTreeSet<String> {
    schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

macro_rules! snapshot {
    ($test:ident, $rel:literal) => {
        #[test]
        fn $test() {
            let json = serde_json::to_string_pretty(&ir_json($rel)).unwrap();
            insta::assert_snapshot!(stringify!($test), json);
        }
    };
}

snapshot!(ir_petstore_openapi30, "petstore/openapi.yaml");
snapshot!(ir_petstore_swagger20, "petstore/swagger.yaml");
snapshot!(ir_openapi31, "openapi31/openapi.yaml");
snapshot!(ir_multifile, "multifile/openapi.yaml");
snapshot!(ir_cyclic, "cyclic/openapi.json");
snapshot!(ir_hostile, "hostile/openapi.yaml");
snapshot!(ir_webhooks_only, "webhooks-only/openapi.yaml");

const ALL: [&str; 8] = [
    "inference/openapi.yaml",
    "petstore/openapi.yaml",
    "petstore/swagger.yaml",
    "openapi31/openapi.yaml",
    "multifile/openapi.yaml",
    "cyclic/openapi.json",
    "hostile/openapi.yaml",
    "webhooks-only/openapi.yaml",
];

#[test]
fn swagger20_and_openapi30_describe_the_same_api() {
    let v3 = ir_json("petstore/openapi.yaml");
    let v2 = ir_json("petstore/swagger.yaml");
    for c3 in v3["capabilities"].as_array().unwrap() {
        let name = c3["name"].as_str().unwrap();
        let c2 = cap(&v2, name);
        assert_eq!(c2["method"], c3["method"], "{name}");
        assert_eq!(c2["path"], c3["path"], "{name}");
        assert_eq!(
            prop_keys(&c2["input_schema"]),
            prop_keys(&c3["input_schema"]),
            "{name} input"
        );
        assert_eq!(
            c2["input_schema"]["required"], c3["input_schema"]["required"],
            "{name} required"
        );
        let out2 = |c: &Value| output_of(&v2, c);
        let out3 = |c: &Value| output_of(&v3, c);
        let (mut o2, o3) = (out2(c2), out3(c3));
        if name == "place_order" {
            // Swagger 2.0 has no `writeOnly`: its card number is in the output too.
            o2["properties"]
                .as_object_mut()
                .unwrap()
                .remove("card_number")
                .unwrap();
        }
        assert_eq!(o2, o3, "{name} output");
        let out = |c: &Value| c["output_schema"].clone();
        assert_eq!(
            out(c2).is_null(),
            out(c3).is_null(),
            "{name} output presence"
        );
    }
    // Swagger's `x-nullable` and OpenAPI 3.0's `nullable` mean the same thing.
    assert_eq!(
        cap(&v2, "create_pet")["input_schema"]["properties"]["tag"],
        cap(&v3, "create_pet")["input_schema"]["properties"]["tag"]
    );
    // Servers from host/basePath/schemes; formData becomes a multipart body.
    let list = cap(&v2, "list_pets");
    assert_eq!(
        list["binding"]["servers"][0]["url"],
        "http://127.0.0.1:8080/v1"
    );
    let upload = cap(&v2, "upload_photo");
    assert_eq!(
        upload["binding"]["body"]["media_type"],
        "multipart/form-data"
    );
    assert_eq!(
        upload["input_schema"]["properties"]["file"]["format"],
        "binary"
    );
    assert_eq!(
        upload["input_schema"]["required"],
        serde_json::json!(["petId", "file"])
    );
}

#[test]
fn petstore_schemas_follow_the_ir_rules() {
    let ir = ir_json("petstore/openapi.yaml");
    let create = cap(&ir, "create_pet");
    // Body flattened; readOnly `id` is not an input; original names kept in the binding.
    assert_eq!(create["input_schema"]["type"], "object");
    assert_eq!(
        prop_keys(&create["input_schema"]),
        ["name", "status", "tag"].map(String::from).into()
    );
    assert_eq!(create["binding"]["body"]["shape"], "flattened");
    assert_eq!(
        create["input_schema"]["properties"]["tag"]["type"],
        serde_json::json!(["string", "null"])
    );
    // writeOnly fields never appear in outputs.
    let order = cap(&ir, "place_order");
    let placed = output_of(&ir, order);
    assert!(placed["properties"].get("id").is_some(), "{placed}");
    assert!(placed["properties"].get("card_number").is_none());
    assert!(order["input_schema"]["properties"]
        .get("card_number")
        .is_some());
    // Path-level parameters reach every operation of the path; security is per operation.
    let delete = cap(&ir, "delete_pet");
    assert_eq!(
        delete["input_schema"]["required"],
        serde_json::json!(["petId"])
    );
    assert_eq!(
        order["binding"]["security"],
        serde_json::json!([{"bearer": []}])
    );
    // No `nullable` keyword survives anywhere.
    assert!(!ir["capabilities"].to_string().contains("\"nullable\""));
}

#[test]
fn multifile_references_are_followed_inside_the_tree() {
    let ir = ir_json("multifile/openapi.yaml");
    let create = cap(&ir, "create_pet");
    assert_eq!(
        create["input_schema"]["properties"]["owner"]["properties"]["email"]["format"],
        "email"
    );
    let list = cap(&ir, "list_pets");
    assert_eq!(list["input_schema"]["properties"]["limit"]["maximum"], 50);
    assert_eq!(
        list["source"]["file"],
        "../fixtures/multifile/paths/pets.yaml"
    );
    assert_eq!(ir["diagnostics"], serde_json::json!([]));
}

#[test]
fn cycles_are_kept_in_defs() {
    let ir = ir_json("cyclic/openapi.json");
    let tree = cap(&ir, "create_tree");
    let defs = &tree["input_schema"]["$defs"];
    assert_eq!(
        defs["TreeNode"]["properties"]["children"]["items"]["$ref"],
        "#/$defs/TreeNode"
    );
    // Every `$ref` in an input schema points into its own `$defs`.
    for c in ir["capabilities"].as_array().unwrap() {
        let text = c["input_schema"].to_string();
        for part in text.split("\"$ref\":\"").skip(1) {
            let target = part.split('"').next().unwrap();
            let name = target.strip_prefix("#/$defs/").expect(target);
            assert!(
                c["input_schema"]["$defs"].get(name).is_some(),
                "{} -> {target}",
                c["name"]
            );
        }
    }
    // The pure alias loop is a diagnostic, not a schema.
    let codes: Vec<&str> = ir["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["unresolved-ref"]);
}

#[test]
fn hostile_input_imports_what_it_can_and_reads_nothing_outside() {
    let lowered = lower("hostile/openapi.yaml");
    assert_eq!(lowered.stats.operations, 16);
    assert_eq!(lowered.stats.skipped, 3);
    let refused: Vec<&str> = lowered
        .diagnostics
        .iter()
        .filter(|d| d.code == "ref-refused")
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(refused.len(), 4, "{refused:?}");
    let json = report(&lowered, &Filter::default()).to_json().to_string();
    assert!(
        !json.contains("FORGE-MUST-NEVER-READ-THIS"),
        "read a file outside the spec's tree"
    );
    // Every skipped operation names its place with a line.
    for d in lowered
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
    {
        assert!(d.location.line.is_some(), "{d}");
        assert!(d.location.pointer.starts_with("/paths/"), "{d}");
    }
    // Collisions between locations keep every parameter, with its original name in the binding.
    let collide = lowered
        .ir
        .capabilities
        .iter()
        .find(|c| c.name == "collide")
        .unwrap();
    let http = collide.binding.http().unwrap();
    let names: Vec<(&str, &str, &str)> = http
        .params
        .iter()
        .map(|p| (p.property.as_str(), p.name.as_str(), p.location.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("id", "id", "path"),
            ("query_id", "id", "query"),
            ("header_id", "id", "header"),
            ("_expand", "$expand", "query")
        ]
    );
    // The body's `id` collides with a parameter, so the body is kept whole.
    assert!(collide.input_schema["properties"]["body"]["properties"]["id"].is_object());
}

#[test]
fn names_are_mcp_safe_unique_and_within_budget() {
    for rel in ALL {
        let lowered = lower(rel);
        let mut seen = BTreeSet::new();
        for c in &lowered.ir.capabilities {
            assert!(
                is_mcp_safe(&c.name) && c.name.len() <= 48,
                "{rel}: {}",
                c.name
            );
            assert!(seen.insert(c.name.clone()), "{rel}: duplicate {}", c.name);
            for key in prop_keys(&c.input_schema) {
                assert!(
                    key.len() <= 64
                        && key
                            .chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch)),
                    "{rel}: {} has property {key:?}",
                    c.name
                );
            }
        }
    }
    let short = driver::lower(
        Path::new(&fixture("hostile/openapi.yaml")),
        &Options {
            max_name_len: 20,
            ..Options::default()
        },
    )
    .unwrap();
    assert!(short.ir.capabilities.iter().all(|c| c.name.len() <= 20));
}

#[test]
fn output_is_a_pure_function_of_input() {
    for rel in ALL {
        let a = serde_json::to_string(&ir_json(rel)).unwrap();
        let b = serde_json::to_string(&ir_json(rel)).unwrap();
        assert_eq!(a, b, "{rel}");
    }
}

#[test]
fn a_description_without_operations_is_empty_with_a_diagnostic() {
    let lowered = lower("webhooks-only/openapi.yaml");
    assert!(lowered.ir.capabilities.is_empty());
    assert_eq!(lowered.diagnostics.len(), 1);
    assert_eq!(lowered.diagnostics[0].code, "no-operations");
    assert!(lowered.diagnostics[0].message.contains("webhooks"));
}

#[test]
fn non_descriptions_are_refused_whole() {
    let err = driver::lower(
        Path::new(&fixture("not-openapi/config.yaml")),
        &Options::default(),
    )
    .unwrap_err();
    assert_eq!(err.code, "not-openapi");
    let err = driver::lower(
        Path::new(&fixture("does-not-exist.yaml")),
        &Options::default(),
    )
    .unwrap_err();
    assert_eq!(err.code, "unreadable");
}

/// `$ref: "#"` names the whole description: as a schema it was inlined whole (the document,
/// with its own `$ref: "#"` now meaning the tool's schema). It is an unresolved reference now,
/// named, and the schema is open; as a path item or parameter, the operation is skipped saying
/// why. (A reference to another file's root, `pet.yaml`, is that file: the multifile fixture.)
#[test]
fn a_reference_to_the_whole_description_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("root.yaml");
    std::fs::write(
        &spec,
        r##"openapi: 3.0.0
info: {title: t, version: "1"}
paths:
  /a:
    post:
      operationId: doA
      requestBody:
        content:
          application/json:
            schema: {$ref: "#"}
      responses: {"200": {description: ok}}
  /b:
    $ref: "#"
  /c:
    get:
      operationId: doC
      parameters:
        - $ref: "#"
      responses: {"200": {description: ok}}
"##,
    )
    .unwrap();
    let ir = report(
        &driver::lower(&spec, &Options::default()).unwrap(),
        &Filter::default(),
    )
    .to_json();
    let a = cap(&ir, "do_a");
    assert_eq!(
        a["input_schema"]["properties"]["body"],
        serde_json::json!({})
    );
    assert!(!a["input_schema"].to_string().contains("openapi"), "{a}");
    let diags: Vec<String> = ir["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| format!("{} {}", d["code"], d["message"]))
        .collect();
    for code in [
        "unresolved-ref",
        "unresolved-path-item",
        "operation-skipped",
    ] {
        assert!(
            diags
                .iter()
                .any(|d| d.contains(code) && d.contains("whole description")),
            "{code}: {diags:?}"
        );
    }
}
