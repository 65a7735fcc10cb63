use aifirst::capability;

struct Handle;

/// Uses a handle.
#[capability(effects(read))]
fn use_handle(handle: Handle) -> u8 {
    let _ = handle;
    1
}

fn main() {}
