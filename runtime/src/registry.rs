//! Every capability linked into the binary.

use std::collections::BTreeMap;

use crate::def::{CapabilityDef, SourceLocation};

/// Two capabilities registered under one name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("capability `{name}` is defined twice: at {first} and at {second}")]
pub struct DuplicateCapability {
    pub name: &'static str,
    pub first: SourceLocation,
    pub second: SourceLocation,
}

/// The capabilities of this binary, by name.
#[derive(Debug)]
pub struct Registry {
    by_name: BTreeMap<&'static str, &'static CapabilityDef>,
}

impl Registry {
    /// Reads the compile-time registrations. Fails on the first name defined twice, naming both places.
    pub fn new() -> Result<Registry, DuplicateCapability> {
        Registry::from_defs(crate::__private::CAPABILITIES.iter())
    }

    /// A registry of the given definitions (tests, embedding).
    pub fn from_defs(
        defs: impl IntoIterator<Item = &'static CapabilityDef>,
    ) -> Result<Registry, DuplicateCapability> {
        let mut by_name: BTreeMap<&'static str, &'static CapabilityDef> = BTreeMap::new();
        for def in defs {
            if let Some(first) = by_name.insert(def.name, def) {
                // Report in a stable order: the earlier source location first.
                let (a, b) = if (first.location.file, first.location.line)
                    <= (def.location.file, def.location.line)
                {
                    (first.location, def.location)
                } else {
                    (def.location, first.location)
                };
                return Err(DuplicateCapability {
                    name: def.name,
                    first: a,
                    second: b,
                });
            }
        }
        Ok(Registry { by_name })
    }

    /// Adds a capability at run time (a plugin, a definition built from a loaded description).
    pub fn register(&mut self, def: &'static CapabilityDef) -> Result<(), DuplicateCapability> {
        if let Some(first) = self.by_name.get(def.name) {
            return Err(DuplicateCapability {
                name: def.name,
                first: first.location,
                second: def.location,
            });
        }
        self.by_name.insert(def.name, def);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&'static CapabilityDef> {
        self.by_name.get(name).copied()
    }

    /// All capabilities, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &'static CapabilityDef> + '_ {
        self.by_name.values().copied()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}
