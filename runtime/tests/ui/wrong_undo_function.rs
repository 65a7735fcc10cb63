use aifirst::capability;

fn not_an_undo(x: u8) -> u8 {
    x
}

/// Bumps.
#[capability(effects(update), undo = not_an_undo)]
fn bump() -> u8 {
    1
}

fn main() {}
