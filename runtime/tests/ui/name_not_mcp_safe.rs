use aifirst::capability;

/// Has a bad name.
#[capability(name = "notes/create note", effects(read))]
fn create() -> u8 {
    1
}

fn main() {}
