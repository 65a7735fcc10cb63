use aifirst::capability;

/// Teleports.
#[capability(effects(read, teleport))]
fn beam() -> u8 {
    1
}

fn main() {}
