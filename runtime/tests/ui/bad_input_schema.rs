use aifirst::{capability, Value};

/// Not JSON.
#[capability(effects(read), input_schema = "{not json")]
fn a(args: Value) -> Value {
    args
}

/// Not an object.
#[capability(effects(read), input_schema = "[1]", output_schema = "true")]
fn b(args: Value) -> Value {
    args
}

/// Two parameters with a raw schema.
#[capability(effects(read), input_schema = "{}")]
fn c(x: Value, y: Value) -> Value {
    let _ = y;
    x
}

fn main() {}
