use aifirst::capability;

/// Deletes everything.
#[capability(effects(delete, filesystem))]
fn wipe(path: String) -> bool {
    path.is_empty()
}

fn main() {}
