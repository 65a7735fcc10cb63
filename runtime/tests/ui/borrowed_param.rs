use aifirst::capability;

/// Borrows.
#[capability(effects(read))]
fn borrow(name: &str) -> usize {
    name.len()
}

fn main() {}
