//! Schema pieces every front end shares: `$defs` held once and shared between the schemas that
//! need them, and sizes measured without building the text.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

/// One converted definition, with its sizes measured once when first asked.
pub(crate) struct Memo {
    pub(crate) value: Value,
    pub(crate) size: usize,
    pub(crate) needs: BTreeSet<usize>,
    /// Serialised size, and serialised size with descriptions cut (see [`crate::budget`]),
    /// measured once when first asked.
    pub(crate) bytes: OnceLock<usize>,
    pub(crate) cut_bytes: OnceLock<usize>,
}

/// The `$defs` one root schema needs, shared with the builder's memo rather than copied: a
/// large API's operations need the same big definitions over and over, and copying them into
/// every operation is where Microsoft Graph's gigabytes went. [`SharedDefs::materialize`] copies
/// them when a schema keeps them.
#[derive(Default)]
pub struct SharedDefs(pub(crate) Vec<(String, Arc<Memo>)>);

impl SharedDefs {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The definition called `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| &self.0[i].1.value)
    }

    /// The bytes `"$defs":{…}` adds to a serialised schema; with `cut`, once descriptions are
    /// cut by `cut` (which must be the same function every time).
    pub fn bytes(&self, cut: Option<fn(&mut Value)>) -> usize {
        if self.0.is_empty() {
            return 0;
        }
        let mut total = 11; // `,"$defs":{}`
        for (name, m) in &self.0 {
            let body = match cut {
                None => *m.bytes.get_or_init(|| serialized_len(&m.value)),
                Some(f) => *m.cut_bytes.get_or_init(|| {
                    let mut v = m.value.clone();
                    f(&mut v);
                    serialized_len(&v)
                }),
            };
            total += name.len() + 4 + body; // `"name":body,`
        }
        total
    }

    /// The definitions as a `$defs` object.
    pub fn materialize(&self) -> Map<String, Value> {
        self.0
            .iter()
            .map(|(n, m)| (n.clone(), m.value.clone()))
            .collect()
    }
}

/// The keywords beside a `$ref`.
pub fn ref_siblings(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(k, _)| k.as_str() != "$ref")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The length of a value's compact JSON, without building it.
pub fn serialized_len<T: serde::Serialize + ?Sized>(v: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    match serde_json::to_writer(&mut n, v) {
        Ok(()) => n.0,
        Err(_) => 0,
    }
}
