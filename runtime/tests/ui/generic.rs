use aifirst::capability;

/// Echoes anything.
#[capability(effects(read))]
fn echo<T: Clone>(value: T) -> T {
    value
}

fn main() {}
