//! Two crates of capabilities linked into one binary: the registry sees all of them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use aifirst::{Ctx, Effect, Registry, ToolError, UndoDecl, UndoKind};
use serde_json::{json, Value};

// Linking: the registry only sees crates that are part of the binary.
use aifirst_tests::block_on;
use caps_a as _;
use caps_b as _;

fn call(reg: &Registry, name: &str, args: Value) -> Result<Value, ToolError> {
    let ctx = Ctx::new();
    block_on(reg.get(name).unwrap().invoke(&ctx, args))
}

#[test]
fn registry_sees_both_crates_with_schemas_and_effects() {
    let reg = Registry::new().unwrap();
    let names: Vec<&str> = reg.iter().map(|d| d.name).collect();
    assert_eq!(
        names,
        [
            "caps_a_create_note",
            "caps_a_delete_note",
            "caps_a_get_note",
            "caps_a_rename_note",
            "caps_b_bump",
            "caps_b_get",
            "caps_b_set",
            "caps_b_shout",
            "quoted_undo_args",
            "raw_schema_echo"
        ]
    );

    let create = reg.get("caps_a_create_note").unwrap();
    assert_eq!(create.description, "Creates a note.");
    assert_eq!(create.effects, [Effect::Create]);
    let input = create.input_schema();
    let input = input.as_value();
    assert_eq!(
        input["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(input["type"], "object");
    assert_eq!(input["properties"]["title"]["type"], "string");
    assert_eq!(
        input["properties"]["title"]["description"],
        "The note's title."
    );
    assert_eq!(input["required"], json!(["title"]));
    let output = create.output_schema().expect("Note implements JsonSchema");
    assert!(output.as_value()["properties"].get("id").is_some());
    // The plan is the same typed value forge infers (aifirst_capability::UndoPlan).
    let (UndoDecl::Plan(_), Some(p)) = (create.undo, create.undo.plan()) else {
        panic!("{:?}", create.undo);
    };
    assert_eq!((p.guard, &p.when_absent, &p.check), (None, &None, &None));
    assert!(p.snapshot_args.is_empty() && p.evidence.is_empty());
    assert_eq!(
        p.confidence,
        aifirst::Confidence::High,
        "a person's plan, by default"
    );
    assert_eq!(p.kind, UndoKind::Inverse);
    assert_eq!(
        p.target.map(|t| t.name).as_deref(),
        Some("caps_a_delete_note")
    );
    assert!(p.snapshot.is_none());
    assert_eq!(
        p.args["id"], "$result.id",
        "parsed at compile time, read as text"
    );
    let annotations = create.annotations();
    assert_eq!(
        (annotations.read_only_hint, annotations.destructive_hint),
        (Some(false), Some(false))
    );

    let undo = reg.get("caps_a_rename_note").unwrap().undo;
    let (UndoDecl::Plan(_), Some(p)) = (undo, undo.plan()) else {
        panic!("a plan");
    };
    assert_eq!(p.kind, UndoKind::Restore);
    assert_eq!(
        p.snapshot.map(|s| s.name).as_deref(),
        Some("caps_a_get_note")
    );
    assert_eq!(p.args.len(), 2);
    assert_eq!(p.snapshot_args["id"], "$args.id");
    assert_eq!(p.confidence, aifirst::Confidence::Medium);
    assert_eq!(p.evidence, ["the title is all a note has"]);

    let delete = reg.get("caps_a_delete_note").unwrap();
    assert!(matches!(
        delete.undo,
        UndoDecl::Irreversible {
            reason: "deleted notes are not kept"
        }
    ));
    assert_eq!(delete.annotations().destructive_hint, Some(true));

    let shout = reg.get("caps_b_shout").unwrap();
    assert!(shout.output_schema().is_none(), "Shout has no JsonSchema");
    let input = shout.input_schema();
    assert_eq!(
        input.as_value()["required"],
        json!(["text"]),
        "Option<u8> and #[serde(default)] are optional"
    );
    assert_eq!(
        input.as_value()["properties"]["whisper"]["description"],
        "Whisper instead."
    );
    assert_eq!(shout.annotations().read_only_hint, Some(true));
    assert!(matches!(
        reg.get("caps_b_bump").unwrap().undo,
        UndoDecl::Function { path: "unbump", .. }
    ));
    assert!(matches!(
        reg.get("caps_b_set").unwrap().undo,
        UndoDecl::Custom
    ));
    assert!(reg
        .get("caps_a_create_note")
        .unwrap()
        .location
        .file
        .ends_with("caps-a/src/lib.rs"));
}

#[test]
fn every_declared_plan_reads_back() {
    // The macro writes each plan as JSON text; one that did not read back would make its
    // capability irreversible ("does not read back").
    let reg = Registry::new().unwrap();
    let mut plans = 0;
    for def in reg.iter() {
        if let Some(p) = def.undo.plan() {
            assert!(p.reverses(), "{}: {p:?}", def.name);
            plans += 1;
        }
    }
    assert!(plans >= 2, "caps-a declares plans");
}

#[test]
fn capabilities_can_be_registered_at_run_time() {
    let compiled = Registry::new().unwrap();
    let mut reg = Registry::from_defs([]).unwrap();
    assert!(reg.is_empty());
    let shout = compiled.get("caps_b_shout").unwrap();
    reg.register(shout).unwrap();
    assert_eq!(reg.len(), 1);
    let err = reg.register(shout).unwrap_err();
    assert_eq!(err.name, "caps_b_shout");
}

#[test]
fn calls_go_through_json_with_errors_that_name_the_field() {
    let reg = Registry::new().unwrap();
    let note = call(&reg, "caps_a_create_note", json!({"title": "milk"})).unwrap();
    assert_eq!(note["title"], "milk");
    let err = call(&reg, "caps_a_create_note", json!({"title": 3})).unwrap_err();
    assert!(
        matches!(&err, ToolError::InvalidArguments { message } if message.contains("invalid type")),
        "{err:?}"
    );
    let err = call(&reg, "caps_a_create_note", json!({})).unwrap_err();
    assert!(
        matches!(&err, ToolError::InvalidArguments { message } if message.contains("title")),
        "{err:?}"
    );
    let err = call(&reg, "caps_a_create_note", json!({"title": " "})).unwrap_err();
    assert_eq!(
        err,
        ToolError::Handler {
            message: "a note needs a title".into()
        }
    );
    assert_eq!(
        call(&reg, "caps_b_shout", json!({"text": "hi", "marks": 3})).unwrap(),
        json!({"text": "HI!!!"})
    );
    assert_eq!(
        call(&reg, "caps_b_shout", json!({"text": "Hi", "whisper": true})).unwrap(),
        json!({"text": "hi!"})
    );
}

#[test]
fn custom_and_function_undo_work() {
    let reg = Registry::new().unwrap();
    let ctx = Ctx::new();
    let set = reg.get("caps_b_set").unwrap();
    block_on(set.invoke(&ctx, json!({"key": "k", "value": 5}))).unwrap();
    block_on(set.invoke(&ctx, json!({"key": "k", "value": 7}))).unwrap();
    assert_eq!(
        call(&reg, "caps_b_get", json!({"key": "k"})).unwrap(),
        json!(7)
    );
    assert_eq!(ctx.run_undo_closures(), Ok(2));
    assert_eq!(
        call(&reg, "caps_b_get", json!({"key": "k"})).unwrap(),
        Value::Null
    );

    let bump = reg.get("caps_b_bump").unwrap();
    let args = json!({"key": "b"});
    let result = call(&reg, "caps_b_bump", args.clone()).unwrap();
    let UndoDecl::Function { call: undo, .. } = bump.undo else {
        panic!()
    };
    undo(&Ctx::new(), &aifirst::UndoCall { args, result }).unwrap();
    assert_eq!(
        call(&reg, "caps_b_get", json!({"key": "b"})).unwrap(),
        json!(0)
    );
}

/// A capability whose schema is given as JSON text, as `forge import` emits them.
#[aifirst::capability(
    name = "raw_schema_echo",
    description = "Echoes its arguments.",
    effects(read),
    input_schema = r#"{"type":"object","properties":{"q":{"type":"string","description":"What to echo."}},"required":["q"]}"#,
    output_schema = r#"{"type":"object","properties":{"q":{"type":"string"}}}"#
)]
async fn raw_schema_echo(args: aifirst::Value) -> Result<aifirst::Value, ToolError> {
    Ok(args)
}

#[test]
fn schemas_given_as_json_text_are_used_verbatim() {
    let reg = Registry::new().unwrap();
    let def = reg.get("raw_schema_echo").unwrap();
    assert_eq!(
        def.input_schema().as_value(),
        &json!({"type":"object","properties":{"q":{"type":"string","description":"What to echo."}},"required":["q"]})
    );
    assert_eq!(
        def.output_schema().unwrap().as_value(),
        &json!({"type":"object","properties":{"q":{"type":"string"}}})
    );
    let v = block_on(def.invoke(&Ctx::new(), json!({"q": "hi", "extra": 1}))).unwrap();
    assert_eq!(v, json!({"q": "hi", "extra": 1}));
}

/// Undo arguments whose names are not Rust identifiers are quoted.
#[aifirst::capability(
    name = "quoted_undo_args",
    description = "Creates a thing.",
    effects(create),
    undo = inverse("raw_schema_echo", "pet-id" = "$result.id", "snapshot" = "$args.x"),
    input_schema = r#"{"type":"object"}"#
)]
async fn quoted_undo_args(args: aifirst::Value) -> Result<aifirst::Value, ToolError> {
    Ok(args)
}

#[test]
fn quoted_undo_argument_names_are_arguments() {
    let reg = Registry::new().unwrap();
    let undo = reg.get("quoted_undo_args").unwrap().undo;
    let (UndoDecl::Plan(_), Some(p)) = (undo, undo.plan()) else {
        panic!("a plan");
    };
    let names: Vec<&str> = p.args.keys().map(String::as_str).collect();
    assert_eq!(names, ["pet-id", "snapshot"]);
    assert!(p.snapshot.is_none());
}
