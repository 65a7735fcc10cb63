//! Filesystem roots: paths outside them are refused, symbolic links followed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use aifirst::fs::{resolve, set_allowed_roots};
use aifirst::ToolError;

// One test: the roots are process-wide.
#[test]
fn paths_outside_the_roots_are_refused_links_followed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "x").unwrap();

    // No roots: anything goes.
    assert!(resolve(outside.join("secret")).is_ok());

    set_allowed_roots(std::slice::from_ref(&root)).unwrap();
    let real_root = root.canonicalize().unwrap();
    assert_eq!(
        resolve(root.join("sub/new.txt")).unwrap(),
        real_root.join("sub/new.txt")
    );
    assert!(resolve(root.join("a/b/c/not-yet.txt")).is_ok());
    let refused = |p: std::path::PathBuf| matches!(resolve(&p), Err(ToolError::NotAllowed { ref message }) if message.contains("outside the allowed roots"));
    assert!(refused(outside.join("secret")));
    assert!(refused(root.join("../outside/secret")));
    assert!(refused(root.join("sub/../../outside/secret")));
    #[cfg(unix)]
    {
        // A link inside the root that leads out, to a file or a directory, existing or not.
        std::os::unix::fs::symlink(&outside, root.join("door")).unwrap();
        assert!(refused(root.join("door/secret")));
        assert!(refused(root.join("door/new-file")));
        std::os::unix::fs::symlink(outside.join("secret"), root.join("file-link")).unwrap();
        assert!(refused(root.join("file-link")));
    }
    // A root that does not exist is a configuration error.
    assert!(set_allowed_roots(&[dir.path().join("missing")]).is_err());
    set_allowed_roots(&[]).unwrap();
}
