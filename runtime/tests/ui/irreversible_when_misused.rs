use aifirst::capability;

fn check(_: &aifirst::Ctx, _: &aifirst::Value) -> Result<Option<String>, aifirst::ToolError> {
    Ok(None)
}

fn not_a_check(x: u8) -> u8 {
    x
}

/// Already irreversible: the check has nothing to add.
#[capability(effects(delete), irreversible = "gone", irreversible_when = check)]
fn twice() -> u8 {
    1
}

/// No undo for the calls the check lets through.
#[capability(effects(create), irreversible_when = check)]
fn no_undo() -> u8 {
    1
}

/// The check has the wrong shape.
#[capability(effects(delete), undo = custom, irreversible_when = not_a_check)]
fn wrong_shape() -> u8 {
    1
}

fn main() {}
