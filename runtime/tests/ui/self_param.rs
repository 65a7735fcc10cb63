use aifirst::capability;

struct Store;

impl Store {
    /// Reads the store.
    #[capability(effects(read))]
    fn read(&self) -> u8 {
        1
    }
}

fn main() {}
