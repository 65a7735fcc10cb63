//! Undo pairing, round 2: each category on a small fixture of its own (fixtures/undo-pairing).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::path::Path;

use aifirst_capability::{Confidence, UndoKind, UndoPlan};
use aifirst_forge::lower::{import_openapi, Lowered, Options};

fn lower(file: &str) -> Lowered {
    import_openapi(
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
