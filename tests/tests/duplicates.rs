//! A name defined twice is found when the registry is first read, naming both places.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use aifirst::{capability, Registry};

mod one {
    use super::capability;

    /// First definition.
    #[capability(name = "twice", effects(read))]
    pub fn first() -> u8 {
        1
    }
}

mod two {
    use super::capability;

    /// Second definition.
    #[capability(name = "twice", effects(read))]
    pub fn second() -> u8 {
        2
    }
}

#[test]
fn duplicate_names_name_both_locations() {
    let err = Registry::new().unwrap_err();
    assert_eq!(err.name, "twice");
    assert_eq!((err.first.line, err.second.line), (12, 22));
    assert_eq!(err.first.module, "duplicates::one");
    assert_eq!(err.second.module, "duplicates::two");
    let text = err.to_string();
    assert!(
        text.contains("tests/duplicates.rs:12") && text.contains("tests/duplicates.rs:22"),
        "{text}"
    );
    // Both are still callable directly: the macro left the functions alone.
    assert_eq!(one::first() + two::second(), 3);
}
