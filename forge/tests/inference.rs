//! Effect and undo inference on fixtures with known inverses and known traps.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::path::Path;

use aifirst_capability::{Confidence, Effect, Guard, UndoKind};
use aifirst_forge::driver::{self, Lowered, Options};
use aifirst_forge::infer::Overrides;
use aifirst_forge::ir::Capability;

const FIXTURE: &str = "../fixtures/inference/openapi.yaml";

fn lower_with(overrides: Overrides) -> Lowered {
    driver::lower(
        Path::new(FIXTURE),
        &Options {
            overrides,
            ..Options::default()
        },
    )
    .unwrap()
}

fn cap<'a>(l: &'a Lowered, name: &str) -> &'a Capability {
    l.ir.capabilities
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

/// One line a capability: effects, plan kind, confidence, target, bound arguments, guard, reason.
fn plan_table(l: &Lowered) -> String {
    let mut out = String::new();
    for c in &l.ir.capabilities {
        let u = c.undo.as_ref().unwrap();
        let effects: Vec<&str> = c.effects.iter().map(|e| e.as_str()).collect();
        let args: Vec<String> = u.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!(
            "{:<34} {:<16} {:?}/{:?} -> {} [{}]{}{}\n",
            c.name,
            effects.join(","),
            u.kind,
            u.confidence,
            u.target.as_ref().map(|t| t.name.as_str()).unwrap_or("-"),
            args.join(" "),
            u.guard.map(|g| format!(" guard={g:?}")).unwrap_or_default(),
            u.reason
                .as_ref()
                .map(|r| format!(" reason: {r}"))
                .unwrap_or_default(),
        ));
    }
    out
}

#[test]
fn plans_snapshot() {
    insta::assert_snapshot!(
        "inference_plans",
        plan_table(&lower_with(Overrides::default()))
    );
}

/// (capability, main effect, plan kind, confidence, compensating capability)
const EXPECTED: &[(&str, Effect, UndoKind, Confidence, Option<&str>)] = &[
    // Stripe style: POST on a collection creates, POST on the item updates.
    (
        "create_customer",
        Effect::Create,
        UndoKind::Inverse,
        Confidence::High,
        Some("delete_customer"),
    ),
    (
        "update_customer",
        Effect::Update,
        UndoKind::Restore,
        Confidence::High,
        Some("update_customer"),
    ),
    (
        "delete_customer",
        Effect::Delete,
        UndoKind::Recreate,
        Confidence::Medium,
        Some("create_customer"),
    ),
    // A read-only POST, said with lower confidence.
    (
        "search_customers",
        Effect::Read,
        UndoKind::None,
        Confidence::Medium,
        None,
    ),
    // Actions.
    (
        "capture_charge",
        Effect::Execute,
        UndoKind::Irreversible,
        Confidence::High,
        None,
    ),
    (
        "cancel_run",
        Effect::Execute,
        UndoKind::Irreversible,
        Confidence::Medium,
        None,
    ),
    (
        "create_dispatch_event",
        Effect::Execute,
        UndoKind::Irreversible,
        Confidence::High,
        None,
    ),
    (
        "merge_branch",
        Effect::Execute,
        UndoKind::Irreversible,
        Confidence::High,
        None,
    ),
    (
        "pause_subscription",
        Effect::Execute,
        UndoKind::Inverse,
        Confidence::Medium,
        Some("resume_subscription"),
    ),
    // Secrets cannot be read back.
    (
        "set_secret",
        Effect::Update,
        UndoKind::Irreversible,
        Confidence::High,
        None,
    ),
    (
        "delete_secret",
        Effect::Delete,
        UndoKind::Irreversible,
        Confidence::High,
        None,
    ),
    (
        "update_hook_config",
        Effect::Update,
        UndoKind::Restore,
        Confidence::Low,
        Some("update_hook_config"),
    ),
    // Toggles: guarded by a presence GET, unguarded (medium) with a state GET.
    (
        "star_repo",
        Effect::Create,
        UndoKind::Inverse,
        Confidence::High,
        Some("unstar_repo"),
    ),
    (
        "unstar_repo",
        Effect::Delete,
        UndoKind::Inverse,
        Confidence::High,
        Some("star_repo"),
    ),
    (
        "enable_automated_security_fixes",
        Effect::Create,
        UndoKind::Inverse,
        Confidence::Medium,
        Some("disable_automated_security_fixes"),
    ),
    // The item path sits elsewhere than under the collection.
    (
        "create_issue_comment",
        Effect::Create,
        UndoKind::Inverse,
        Confidence::Medium,
        Some("delete_issue_comment"),
    ),
    (
        "add_assignees",
        Effect::Create,
        UndoKind::Inverse,
        Confidence::Medium,
        Some("remove_assignees"),
    ),
    (
        "remove_assignees",
        Effect::Delete,
        UndoKind::Inverse,
        Confidence::Medium,
        Some("add_assignees"),
    ),
    (
        "create_widget",
        Effect::Create,
        UndoKind::Inverse,
        Confidence::Low,
        Some("delete_widget"),
    ),
    (
        "create_variable",
        Effect::Create,
        UndoKind::Inverse,
        Confidence::High,
        Some("delete_variable"),
    ),
    // GET and PUT disagree on a shape.
    (
        "set_protection",
        Effect::Update,
        UndoKind::Irreversible,
        Confidence::Medium,
        None,
    ),
    // Server-assigned ids: recreated through the collection, not the item's PUT.
    (
        "delete_review",
        Effect::Delete,
        UndoKind::Recreate,
        Confidence::Medium,
        Some("create_review"),
    ),
    // The description calls it a read: looser than inference, so refused (a description
    // cannot vouch for itself; forge.toml can).
    (
        "generate_report",
        Effect::Execute,
        UndoKind::Irreversible,
        Confidence::High,
        None,
    ),
    (
        "close_account",
        Effect::Delete,
        UndoKind::Irreversible,
        Confidence::High,
        None,
    ),
];

#[test]
fn known_inverses_and_traps() {
    let l = lower_with(Overrides::default());
    for (name, effect, kind, confidence, target) in EXPECTED {
        let c = cap(&l, name);
        let u = c.undo.as_ref().unwrap();
        assert!(
            c.effects.contains(effect),
            "{name}: effects {:?}",
            c.effects
        );
        assert!(
            c.effects.contains(&Effect::Network),
            "{name}: HTTP is network"
        );
        assert_eq!(
            (u.kind, u.confidence),
            (*kind, *confidence),
            "{name}: {u:#?}"
        );
        assert_eq!(
            u.target.as_ref().map(|t| t.name.as_str()),
            *target,
            "{name}"
        );
        assert!(!u.evidence.is_empty(), "{name}: a plan says why");
    }
}

#[test]
fn arguments_are_bound_where_they_come_from() {
    let l = lower_with(Overrides::default());
    let args = |n: &str| cap(&l, n).undo.as_ref().unwrap().args.clone();
    assert_eq!(args("create_customer")["customer"], "$result.id");
    assert_eq!(args("create_issue_comment")["comment_id"], "$result.id");
    assert_eq!(args("create_issue_comment")["owner"], "$args.owner");
    assert_eq!(args("create_widget")["widgetId"], "$location.id");
    assert_eq!(args("create_variable")["name"], "$args.name");
    assert_eq!(args("add_assignees")["assignees"], "$args.assignees");
    // The masked secret is never written back; the other fields are.
    let hook = args("update_hook_config");
    assert_eq!(hook["url"], "$snapshot.url");
    assert!(!hook.contains_key("secret"), "{hook:?}");
    // A guarded toggle snapshots with the presence GET.
    let star = cap(&l, "star_repo").undo.as_ref().unwrap();
    assert_eq!(star.guard, Some(Guard::SnapshotAbsent));
    assert_eq!(star.snapshot.as_ref().unwrap().name, "check_starred");
    assert!(cap(&l, "enable_automated_security_fixes")
        .undo
        .as_ref()
        .unwrap()
        .guard
        .is_none());
    // Stripe's POST update writes the snapshot back through itself.
    let upd = cap(&l, "update_customer").undo.as_ref().unwrap();
    assert_eq!(upd.snapshot.as_ref().unwrap().name, "get_customer");
    assert_eq!(upd.args["email"], "$snapshot.email");
}

#[test]
fn annotations_follow_effects_and_extensions() {
    let l = lower_with(Overrides::default());
    let a = |n: &str| cap(&l, n).annotations.clone();
    let create = a("create_customer");
    assert_eq!(
        (create.read_only_hint, create.destructive_hint),
        (Some(false), Some(false))
    );
    let delete = a("delete_customer");
    assert_eq!(
        (delete.destructive_hint, delete.idempotent_hint),
        (Some(true), Some(true))
    );
    let search = a("search_customers");
    assert_eq!(search.read_only_hint, Some(true));
    assert_eq!(a("capture_charge").open_world_hint, Some(true));
    // x-aifirst-effects would have made it read-only and x-mcp-annotations idempotent: both
    // looser than inference, so both refused, with a warning naming where they were written.
    let report = a("generate_report");
    assert_eq!(
        (report.read_only_hint, report.idempotent_hint),
        (Some(false), Some(false))
    );
    let warned = l
        .diagnostics
        .iter()
        .find(|d| d.code == "unsafe-override" && d.message.contains("generate_report"))
        .expect("an unsafe-override warning");
    assert!(
        warned.message.contains("effects and annotations"),
        "{}",
        warned.message
    );
    assert!(warned.location.line == Some(287), "{:?}", warned.location);
}

/// A hostile description's extensions: a DELETE called a read passes no gate, and an
/// irreversible call given a compensation of the description's choosing stays irreversible.
#[test]
fn a_description_cannot_loosen_its_own_operations() {
    let spec = r#"openapi: 3.0.0
info: {title: t, version: "1"}
paths:
  /accounts/{id}:
    delete:
      operationId: deleteAccount
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      x-aifirst-effects: [read, network, idempotent]
      x-mcp-annotations: {readOnlyHint: true, destructiveHint: false}
      responses: {"204": {description: ok}}
  /transfers:
    post:
      operationId: makeTransfer
      x-aifirst-undo: {kind: inverse, target: ping}
      responses: {"200": {description: ok}}
  /ping:
    get:
      operationId: ping
      responses: {"200": {description: ok}}
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, spec).unwrap();
    let l =
        aifirst_forge::driver::lower(&path, &aifirst_forge::driver::Options::default()).unwrap();
    let del = cap(&l, "delete_account");
    assert!(del.effects.contains(&Effect::Delete), "{:?}", del.effects);
    assert_eq!(del.annotations.read_only_hint, Some(false));
    assert_eq!(del.annotations.destructive_hint, Some(true));
    let transfer = cap(&l, "make_transfer");
    assert_ne!(
        transfer.undo.as_ref().map(|u| u.kind),
        Some(UndoKind::Inverse),
        "{:?}",
        transfer.undo
    );
    let warned = l
        .diagnostics
        .iter()
        .filter(|d| d.code == "unsafe-override")
        .count();
    assert_eq!(warned, 2);
}

#[test]
fn project_config_beats_extensions_beats_inference() {
    let toml = r#"
        [operations.closeAccount]
        undo = { kind = "recreate", target = "createCustomer", snapshot = "getCustomer", args = { email = "$snapshot.email" } }

        [operations.capture_charge]
        effects = ["execute", "network"]
        annotations = { destructiveHint = false }
        undo = "irreversible"

        [operations.createWidget]
        effects = ["create", "teleport"]
        undo = { kind = "inverse", target = "noSuchOperation" }
    "#;
    let overrides = Overrides::parse(toml, "forge.toml").unwrap();
    let l = lower_with(overrides);
    // forge.toml over the operation's own x-aifirst-undo.
    let close = cap(&l, "close_account").undo.as_ref().unwrap();
    assert_eq!(close.kind, UndoKind::Recreate);
    assert_eq!(close.target.as_ref().unwrap().name, "create_customer");
    assert_eq!(close.args["email"], "$snapshot.email");
    assert!(
        close.evidence[0].contains("forge.toml"),
        "{:?}",
        close.evidence
    );
    // Annotation override by name.
    assert_eq!(
        cap(&l, "capture_charge").annotations.destructive_hint,
        Some(false)
    );
    // Bad overrides are reported, and the rest of them still applies.
    let bad: Vec<&str> = l
        .diagnostics
        .iter()
        .filter(|d| d.code == "bad-override")
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad.iter().any(|m| m.contains("teleport")));
    assert!(bad.iter().any(|m| m.contains("noSuchOperation")));
    assert_eq!(
        cap(&l, "create_widget").undo.as_ref().unwrap().kind,
        UndoKind::Inverse,
        "inference kept"
    );
    assert!(l
        .diagnostics
        .iter()
        .filter(|d| d.code == "bad-override")
        .all(|d| d.location.file == "forge.toml"));
}

#[test]
fn malformed_project_config_is_an_error_naming_the_file() {
    let err =
        Overrides::parse("[operations.x]\nundo = 3\nbogus = true\n", "forge.toml").unwrap_err();
    assert!(err.to_string().contains("forge.toml"), "{err}");
}

#[test]
fn check_cli_lists_every_violation_with_exit_1() {
    use assert_cmd::Command;
    let run = |args: &[&str]| {
        let out = Command::cargo_bin("forge")
            .unwrap()
            .arg("check")
            .arg(FIXTURE)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
        )
    };
    let (code, out) = run(&["--deny", "execute"]);
    assert_eq!(code, 1);
    for name in [
        "capture_charge",
        "cancel_run",
        "merge_branch",
        "pause_subscription",
    ] {
        assert!(out.contains(&format!("`{name}`")), "{name} missing:\n{out}");
    }
    let (code, out) = run(&[
        "--require-undo",
        "--min-confidence",
        "high",
        "--ops",
        "star_repo,unstar_repo,create_customer",
    ]);
    assert_eq!(
        (code, out.trim_end().lines().last().unwrap()),
        (0, "0 violations in 3 capabilities"),
        "{out}"
    );
    let (code, out) = run(&["--require-undo", "--ops", "set_secret"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("violation[no-undo]") && out.contains("secret"),
        "{out}"
    );
    let out = Command::cargo_bin("forge")
        .unwrap()
        .args(["check", FIXTURE, "--deny", "teleport"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::cargo_bin("forge")
        .unwrap()
        .args(["check", FIXTURE, "--config", "/nonexistent/forge.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad-config"));
}

/// Jupyter Server's contents API, reduced: `POST /api/contents/{path}` makes a new file *inside*
/// the directory `path`, and its inverse deletes `path` itself. The plan must re-read the target
/// first (`check`), so the runtime refuses to delete a folder the call never created.
#[test]
fn an_inverse_delete_rereads_its_target_first() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("contents.yaml");
    let item = "{type: object, properties: {name: {type: string}, path: {type: string}, type: {type: string}}}";
    std::fs::write(
        &spec,
        format!(
            "openapi: 3.0.3
info: {{title: contents, version: '1'}}
paths:
  /api/contents/{{path}}:
    parameters:
      - {{name: path, in: path, required: true, schema: {{type: string}}}}
    get:
      operationId: get_contents
      responses: {{'200': {{description: ok, content: {{application/json: {{schema: {item}}}}}}}}}
    post:
      operationId: create_contents
      responses: {{'201': {{description: made, content: {{application/json: {{schema: {item}}}}}}}}}
    patch:
      operationId: rename_contents
      requestBody: {{content: {{application/json: {{schema: {{type: object, properties: {{path: {{type: string}}}}}}}}}}}}
      responses: {{'200': {{description: ok, content: {{application/json: {{schema: {item}}}}}}}}}
    delete:
      operationId: delete_contents
      responses: {{'204': {{description: gone}}}}
"
        ),
    )
    .unwrap();
    let l = driver::lower(&spec, &Options::default()).unwrap();
    let u = cap(&l, "create_contents").undo.clone().unwrap();
    assert_eq!(u.kind, UndoKind::Inverse, "{u:?}");
    assert_eq!(u.target.unwrap().name, "delete_contents");
    assert_eq!(u.check.map(|c| c.name).as_deref(), Some("get_contents"));
    assert!(u.evidence.iter().any(|e| e.contains("must still find")));
}

/// An undo expression in forge.toml is parsed where it is read: a bad one is a diagnostic naming
/// it (it used to reach the generated attribute and fail the crate's build), and inference stays.
#[test]
fn a_bad_expression_in_an_override_is_reported_and_inference_kept() {
    let toml = r#"
        [operations.closeAccount]
        undo = { kind = "recreate", target = "createCustomer", snapshot = "getCustomer", args = { email = "$snapshot.e mail" } }
    "#;
    let l = lower_with(Overrides::parse(toml, "forge.toml").unwrap());
    let bad: Vec<&str> = l
        .diagnostics
        .iter()
        .filter(|d| d.code == "bad-override")
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(
        bad[0].contains("bad undo expression `$snapshot.e mail`"),
        "{}",
        bad[0]
    );
    assert!(!cap(&l, "close_account")
        .undo
        .as_ref()
        .unwrap()
        .args
        .contains_key("email"));
}
