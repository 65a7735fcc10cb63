//! One compile-fail case per `#[capability]` diagnostic; the expected messages are in `ui/*.stderr`.

#[test]
fn capability_diagnostics() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
