use aifirst::capability;

/// Appends.
#[capability(effects(read))]
fn append(list: &mut Vec<u8>) -> usize {
    list.len()
}

fn main() {}
