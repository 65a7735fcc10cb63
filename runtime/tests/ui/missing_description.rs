use aifirst::capability;

#[capability(effects(read))]
fn silent() -> u8 {
    1
}

fn main() {}
