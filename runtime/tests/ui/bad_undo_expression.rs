use aifirst::capability;

/// Creates a thing.
#[capability(effects(create), undo = inverse("delete_thing", id = "result.id"))]
fn create_thing() -> u8 {
    1
}

/// Creates another thing.
#[capability(effects(create), undo = rollback("delete_thing"))]
fn create_other() -> u8 {
    1
}

fn main() {}
