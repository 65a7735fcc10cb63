use aifirst::capability;

/// A snapshot is taken before the call: it cannot read the result.
#[capability(effects(update, filesystem), undo = file_snapshot(paths = ["$result.path"]))]
fn write_a(path: String) -> String {
    path
}

/// No paths at all.
#[capability(effects(update, filesystem), undo = file_snapshot(paths = []))]
fn write_b(path: String) -> String {
    path
}

/// Paths are strings.
#[capability(effects(update, filesystem), undo = file_snapshot(paths = [path]))]
fn write_c(path: String) -> String {
    path
}

/// Something else than `paths`.
#[capability(effects(update, filesystem), undo = file_snapshot(files = ["$args.path"]))]
fn write_d(path: String) -> String {
    path
}

fn main() {}
