//! Undo pairing, round 2: each category on a small fixture of its own (fixtures/undo-pairing).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::path::Path;

use aifirst_capability::{Confidence, UndoKind, UndoPlan};
use aifirst_forge::driver::{self, Lowered, Options};

fn lower(file: &str) -> Lowered {
    driver::lower(
        Path::new(&format!("../fixtures/undo-pairing/{file}")),
        &Options::default(),
    )
    .unwrap()
}

fn plan<'a>(l: &'a Lowered, name: &str) -> &'a UndoPlan {
    l.ir.capabilities
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.undo.as_ref())
        .unwrap_or_else(|| panic!("no plan for {name}"))
}

fn args(p: &UndoPlan) -> Vec<String> {
    p.args.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// `POST /api/contents/{path}` makes `untitled.txt` inside the folder at `path`: undo deletes
/// what the response names, never the folder the call was made on.
#[test]
fn a_post_that_makes_a_child_is_undone_on_the_child() {
    let l = lower("jupyter-contents.yaml");
    let p = plan(&l, "create_contents");
    assert_eq!(p.kind, UndoKind::Inverse);
    assert_eq!(p.target.as_ref().unwrap().name, "delete_contents");
    assert_eq!(args(p), ["path=$result.path"]);
    assert!(!args(p).iter().any(|a| a.contains("$args.path")));
    // The runtime re-reads the target before deleting it.
    assert_eq!(p.check.as_ref().unwrap().name, "get_contents");
}

/// `PATCH /api/contents/{path}` with `{"path": new}` moves the file: undo is the same PATCH on
/// the new path with the old one, not a restore at the old path.
#[test]
fn a_patch_that_moves_is_undone_by_moving_back() {
    let l = lower("jupyter-contents.yaml");
    let p = plan(&l, "rename_contents");
    assert_eq!(p.kind, UndoKind::Inverse);
    assert_eq!(p.confidence, Confidence::Medium);
    assert_eq!(p.target.as_ref().unwrap().name, "rename_contents");
    assert_eq!(args(p), ["/body/path=$args.path", "path=$args.body.path"]);
    assert!(p.snapshot.is_none());
}

/// `POST /user/repos` creates what `DELETE /repos/{owner}/{repo}` removes: the DELETE's
/// variables bind from the response (`owner.login`, the repository's `name`).
#[test]
fn a_create_whose_delete_lives_elsewhere_binds_from_the_response() {
    let l = lower("create-elsewhere.yaml");
    let p = plan(&l, "create_repo");
    assert_eq!(p.kind, UndoKind::Inverse);
    assert_eq!(p.confidence, Confidence::Medium);
    assert_eq!(p.target.as_ref().unwrap().name, "delete_repo");
    assert_eq!(args(p), ["owner=$result.owner.login", "repo=$result.name"]);
}

/// A PUT whose GET answers 204/404 with no body: with nothing else to it (follow), a switch-on
/// undone by the DELETE only if it was not there before, and the DELETE by the PUT only if it
/// was. With options or a response body (GitHub's collaborator PUT: a permission, an
/// invitation) neither can be undone exactly — on an existing member the PUT changes the
/// permission, which the status check cannot see — so both are irreversible. No re-read check:
/// a bodiless GET cannot confirm identity.
#[test]
fn a_put_told_by_status_is_a_guarded_toggle_only_when_it_carries_nothing() {
    let l = lower("presence-put.yaml");
    let on = plan(&l, "follow");
    assert_eq!(on.kind, UndoKind::Inverse);
    assert_eq!(on.target.as_ref().unwrap().name, "unfollow");
    assert_eq!(on.guard, Some(aifirst_capability::Guard::SnapshotAbsent));
    assert_eq!(on.snapshot.as_ref().unwrap().name, "check_following");
    assert!(on.check.is_none());
    let off = plan(&l, "unfollow");
    assert_eq!(off.target.as_ref().unwrap().name, "follow");
    assert_eq!(off.guard, Some(aifirst_capability::Guard::SnapshotPresent));
    for name in ["add_collaborator", "remove_collaborator"] {
        let p = plan(&l, name);
        assert_eq!(p.kind, UndoKind::Irreversible, "{name}: {p:?}");
        assert_eq!(p.confidence, Confidence::Medium);
    }
}

/// A create-or-replace PUT with a DELETE on the same path: restore, or delete when nothing was
/// there before.
#[test]
fn a_create_or_replace_put_deletes_when_it_created() {
    let l = lower("create-or-replace.yaml");
    let p = plan(&l, "create_or_update_environment");
    assert_eq!(p.kind, UndoKind::Restore);
    assert_eq!(
        p.when_absent.as_ref().unwrap().capability.name,
        "delete_environment"
    );
}

/// The GET returns `assignee` as an object, the PATCH takes its login: written back through
/// the projection, at low confidence (an empty assignee is not cleared).
#[test]
fn an_object_snapshot_field_is_written_back_through_its_naming_scalar() {
    let l = lower("projection.yaml");
    let p = plan(&l, "update_issue");
    assert_eq!(p.kind, UndoKind::Restore);
    assert_eq!(p.confidence, Confidence::Low);
    assert!(args(p).contains(&"assignee=$snapshot.assignee.login".to_string()));
    assert!(args(p).contains(&"title=$snapshot.title".to_string()));
}
