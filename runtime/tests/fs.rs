//! File access beneath the sandbox's roots: no path, `..`, or symbolic link — dangling, absolute,
//! or swapped in while calls run — leads outside; hard links are not written through.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::path::{Path, PathBuf};

use aifirst::{Ctx, Sandbox, ToolError};

fn refused(r: Result<impl std::fmt::Debug, ToolError>) -> bool {
    matches!(r, Err(ToolError::NotAllowed { .. }))
}

struct Bench {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

fn bench() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "outside").unwrap();
    Bench {
        _dir: dir,
        root,
        outside,
    }
}

fn ctx(roots: &[PathBuf]) -> Ctx {
    Ctx::with_sandbox(std::sync::Arc::new(
        Sandbox::new().with_roots(roots).unwrap(),
    ))
}

#[test]
fn no_roots_means_no_file_access() {
    let b = bench();
    let ctx = Ctx::new();
    let e = ctx.fs().read(b.root.join("sub")).unwrap_err();
    assert!(
        e.to_string().contains("no allowed roots are configured"),
        "{e}"
    );
    assert!(refused(ctx.fs().write(b.root.join("x"), b"x")));
    assert!(!b.root.join("x").exists());
}

#[test]
fn paths_and_dots_outside_the_roots_are_refused() {
    let b = bench();
    let ctx = ctx(std::slice::from_ref(&b.root));
    let fs = ctx.fs();
    fs.write(b.root.join("sub/new.txt"), b"hi").unwrap();
    assert_eq!(std::fs::read(b.root.join("sub/new.txt")).unwrap(), b"hi");
    // Relative paths are taken from the first root.
    assert_eq!(fs.read("sub/new.txt").unwrap(), b"hi");
    fs.create_dir_all("a/b/c").unwrap();
    fs.write("a/b/c/deep.txt", b"d").unwrap();
    assert!(b.root.join("a/b/c/deep.txt").is_file());
    assert!(refused(fs.read(b.outside.join("secret"))));
    assert!(refused(fs.read(b.root.join("../outside/secret"))));
    assert!(refused(fs.read(b.root.join("sub/../../outside/secret"))));
    assert!(refused(fs.read("../outside/secret")));
    assert!(refused(fs.write("sub/../../outside/new", b"x")));
    assert!(!b.outside.join("new").exists());
    // A sibling whose name starts like the root is not inside it.
    let sibling = PathBuf::from(format!("{}2", b.root.display()));
    std::fs::create_dir_all(&sibling).unwrap();
    assert!(refused(fs.write(sibling.join("x"), b"x")));
    assert!(!sibling.join("x").exists());
}

#[cfg(unix)]
#[test]
fn no_symbolic_link_leads_outside() {
    use std::os::unix::fs::symlink;
    let b = bench();
    let ctx = ctx(std::slice::from_ref(&b.root));
    let fs = ctx.fs();
    // A link to a directory outside, used as a directory.
    symlink(&b.outside, b.root.join("door")).unwrap();
    assert!(refused(fs.read(b.root.join("door/secret"))));
    assert!(refused(fs.write(b.root.join("door/new-file"), b"x")));
    assert!(refused(fs.create_dir_all(b.root.join("door/made"))));
    assert!(!b.outside.join("new-file").exists());
    assert!(!b.outside.join("made").exists());
    // A link to a file outside.
    symlink(b.outside.join("secret"), b.root.join("file-link")).unwrap();
    assert!(refused(fs.read(b.root.join("file-link"))));
    assert!(fs.write(b.root.join("file-link"), b"x").is_err());
    assert!(refused(fs.append(b.root.join("file-link"), b"x")));
    assert_eq!(std::fs::read(b.outside.join("secret")).unwrap(), b"outside");
    // A dangling link to a file that does not exist yet outside: writing through it would
    // create that file. Neither write nor append may.
    symlink(b.outside.join("created"), b.root.join("dangling")).unwrap();
    assert!(fs.write(b.root.join("dangling"), b"x").is_err());
    assert!(refused(fs.append(b.root.join("dangling"), b"x")));
    assert!(
        refused(fs.open(
            b.root.join("dangling"),
            aifirst::fs::OpenOptions::new().write(true).create(true)
        )),
        "open with create through a dangling link"
    );
    assert!(!b.outside.join("created").exists());
    // A relative link that climbs out.
    symlink("../../outside", b.root.join("sub/up")).unwrap();
    assert!(refused(fs.read(b.root.join("sub/up/secret"))));
    // A link that stays inside the root works.
    std::fs::write(b.root.join("sub/real.txt"), "inside").unwrap();
    symlink("real.txt", b.root.join("sub/alias")).unwrap();
    assert_eq!(fs.read(b.root.join("sub/alias")).unwrap(), b"inside");
    assert!(refused(fs.exists(b.root.join("dangling"))));
    // A dangling link that stays inside: the file does not exist (yet).
    symlink("missing.txt", b.root.join("sub/inside-dangling")).unwrap();
    assert!(!fs.exists(b.root.join("sub/inside-dangling")).unwrap());
}

#[cfg(unix)]
#[test]
fn hard_links_are_not_written_through() {
    let b = bench();
    let ctx = ctx(std::slice::from_ref(&b.root));
    let fs = ctx.fs();
    std::fs::hard_link(b.outside.join("secret"), b.root.join("hard")).unwrap();
    assert!(refused(fs.append(b.root.join("hard"), b"more")));
    // A write replaces the link with a new file; the outside file keeps its content.
    fs.write(b.root.join("hard"), b"new").unwrap();
    assert_eq!(std::fs::read(b.outside.join("secret")).unwrap(), b"outside");
    assert_eq!(std::fs::read(b.root.join("hard")).unwrap(), b"new");
}

/// A directory swapped for a link to the outside while writes run: none lands outside.
#[cfg(unix)]
#[test]
fn a_directory_swapped_for_a_link_mid_flight_never_leads_outside() {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    let b = bench();
    let ctx = std::sync::Arc::new(ctx(std::slice::from_ref(&b.root)));
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let swaps = std::sync::Arc::new(AtomicU32::new(0));
    let swapper = {
        let (root, outside, stop, swaps) = (
            b.root.clone(),
            b.outside.clone(),
            stop.clone(),
            swaps.clone(),
        );
        std::thread::spawn(move || {
            let dir = root.join("work");
            while !stop.load(Ordering::Relaxed) {
                let _ = std::fs::remove_file(&dir);
                let _ = std::fs::create_dir(&dir);
                let _ = std::fs::remove_dir(&dir);
                let _ = std::os::unix::fs::symlink(&outside, &dir);
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // The writes start once the swapping has, and go on until both have run a while (on a busy
    // machine the swapper may be scheduled late).
    while swaps.load(Ordering::Relaxed) == 0 {
        std::thread::yield_now();
    }
    let mut ok = 0;
    let mut i = 0;
    while i < 400 || swaps.load(Ordering::Relaxed) < 400 {
        if ctx
            .fs()
            .write(b.root.join(format!("work/f{i}")), b"x")
            .is_ok()
        {
            ok += 1;
        }
        i += 1;
        if i > 200_000 {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(swaps.load(Ordering::Relaxed) >= 400);
    let escaped: Vec<_> = std::fs::read_dir(&b.outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "secret")
        .collect();
    assert!(
        escaped.is_empty(),
        "{} of {i} writes landed outside ({ok} succeeded): {escaped:?}",
        escaped.len()
    );
}

#[test]
fn two_engines_in_one_process_have_their_own_roots() {
    let a = bench();
    let b = bench();
    let ca = ctx(std::slice::from_ref(&a.root));
    let cb = ctx(std::slice::from_ref(&b.root));
    ca.fs().write(a.root.join("x"), b"a").unwrap();
    assert!(refused(cb.fs().write(a.root.join("y"), b"b")));
    assert!(refused(ca.fs().read(b.root.join("sub"))));
    assert_eq!(ca.fs().roots(), vec![a.root.as_path()]);
    // A root that does not exist is a configuration error naming it.
    let e = Sandbox::new()
        .with_roots(&[Path::new("/definitely/missing/root").to_path_buf()])
        .unwrap_err();
    assert!(e.to_string().contains("/definitely/missing/root"), "{e}");
}

#[test]
fn writes_are_atomic_and_leave_no_temporary_files() {
    let b = bench();
    let ctx = ctx(std::slice::from_ref(&b.root));
    for i in 0..20 {
        ctx.fs()
            .write(b.root.join("sub/file.txt"), format!("v{i}").as_bytes())
            .unwrap();
    }
    let names: Vec<_> = std::fs::read_dir(b.root.join("sub"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["file.txt"]);
    assert_eq!(ctx.fs().read_to_string("sub/file.txt").unwrap(), "v19");
}

#[cfg(unix)]
#[test]
fn writes_keep_modes_refuse_read_only_files_and_never_expose_content() {
    use std::os::unix::fs::PermissionsExt;
    let b = bench();
    let ctx = ctx(std::slice::from_ref(&b.root));
    let fs = ctx.fs();
    // A private file stays private; a new one is 0644.
    std::fs::write(b.root.join("private"), "old").unwrap();
    std::fs::set_permissions(
        b.root.join("private"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    fs.write(b.root.join("private"), b"new").unwrap();
    let mode = |p: &str| {
        std::fs::metadata(b.root.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("private"), 0o600);
    fs.write(b.root.join("fresh"), b"x").unwrap();
    assert_eq!(mode("fresh"), 0o644);
    // A read-only file is refused and left alone.
    std::fs::write(b.root.join("ro"), "keep").unwrap();
    std::fs::set_permissions(b.root.join("ro"), std::fs::Permissions::from_mode(0o444)).unwrap();
    let e = fs.write(b.root.join("ro"), b"clobber").unwrap_err();
    assert!(e.to_string().contains("read-only"), "{e}");
    assert_eq!(std::fs::read(b.root.join("ro")).unwrap(), b"keep");
    // A truncating open of a hard link to a file outside is refused before it truncates.
    std::fs::hard_link(b.outside.join("secret"), b.root.join("hard")).unwrap();
    let r = fs.open(
        b.root.join("hard"),
        aifirst::fs::OpenOptions::new().write(true).truncate(true),
    );
    assert!(refused(r));
    assert_eq!(std::fs::read(b.outside.join("secret")).unwrap(), b"outside");
}

#[test]
fn roots_a_client_offers_narrow_and_never_widen() {
    let b = bench();
    let sb = Sandbox::new()
        .with_roots(std::slice::from_ref(&b.root))
        .unwrap();
    // Inside a root: it becomes the root.
    let inner = sb.narrowed_to(&[b.root.join("sub")]);
    assert_eq!(
        inner.fs().roots(),
        vec![b.root.join("sub").canonicalize().unwrap()]
    );
    let ctx = Ctx::with_sandbox(std::sync::Arc::new(inner));
    assert!(refused(ctx.fs().write(b.root.join("top.txt"), b"x")));
    ctx.fs().write(b.root.join("sub/in.txt"), b"x").unwrap();
    // Wider than a root (`/`): the root stays as configured.
    let wide = sb.narrowed_to(&[PathBuf::from("/")]);
    assert_eq!(wide.fs().roots(), vec![b.root.canonicalize().unwrap()]);
    // Elsewhere: no file access at all.
    let none = sb.narrowed_to(std::slice::from_ref(&b.outside));
    assert!(none.fs().is_closed());
    assert!(sb.narrowed_to(&[]).fs().is_closed());
}
