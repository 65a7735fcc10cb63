use aifirst::capability;

/// Cannot decide.
#[capability(effects(delete), undo = custom, irreversible = "gone")]
fn undecided() -> u8 {
    1
}

fn main() {}
