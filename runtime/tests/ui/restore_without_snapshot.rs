use aifirst::capability;

/// Renames.
#[capability(effects(update), undo = restore("rename", name = "$snapshot.name"))]
fn rename(name: String) -> String {
    name
}

fn main() {}
