use aifirst::capability;

/// Reads with the wrong context.
#[capability(effects(read))]
fn read(ctx: String, key: String) -> String {
    ctx + &key
}

fn main() {}
