use aifirst::capability;

/// Reads twice.
#[capability(name = "a", name = "b", effects(read))]
fn twice() -> u8 {
    1
}

fn main() {}
