//! Path shapes: segments, normalised keys, and lookups of sibling operations.

use std::collections::HashMap;

use crate::ir::Capability;

/// One path segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Lit(String),
    Var(String),
}

/// A path's segments. A segment with a variable in it (`{id}.json`) counts as that variable, and a
/// format extension (`groups.json`) is left out, so Rails-style paths line up with plain ones.
pub fn segments(path: &str) -> Vec<Seg> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if let (Some(open), Some(close)) = (s.find('{'), s.rfind('}')) {
                if open < close {
                    return Seg::Var(s[open + 1..close].to_string());
                }
            }
            let lit = [".json", ".xml"]
                .iter()
                .find_map(|e| s.strip_suffix(e))
                .unwrap_or(s);
            Seg::Lit(lit.to_string())
        })
        .collect()
}

/// The last literal segment of a path (`/repos/{o}/{r}/issues/{n}` → `issues`).
pub fn last_literal(segs: &[Seg]) -> Option<&str> {
    segs.iter().rev().find_map(|s| match s {
        Seg::Lit(l) => Some(l.as_str()),
        Seg::Var(_) => None,
    })
}

/// The singular of a collection's name, lower-case: `customers` → `customer`, `policies` → `policy`.
pub fn singular(collection: &str) -> String {
    let c = collection.to_ascii_lowercase();
    match c.strip_suffix("ies") {
        Some(stem) => format!("{stem}y"),
        None => c.strip_suffix('s').unwrap_or(&c).to_string(),
    }
}

/// `/pets/{petId}` → `/pets/{}`: paths that differ only in variable names match.
pub fn key(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        out.push('/');
        match s {
            Seg::Lit(l) => out.push_str(l),
            Seg::Var(_) => out.push_str("{}"),
        }
    }
    out
}

/// Every capability's path, indexed for sibling lookups.
pub struct Index {
    pub segs: Vec<Vec<Seg>>,
    pub keys: Vec<String>,
    by_key: HashMap<String, Vec<usize>>,
    methods: Vec<String>,
    /// Words of each path's last segment when it is a literal (`unarchive` → [unarchive]).
    pub last_words: Vec<Vec<String>>,
    /// Whether each operation answers by status alone: a `204` success and no body schema
    /// (`GET /user/following/{username}`: 204 when following, 404 when not).
    pub presence: Vec<bool>,
}

impl Index {
    pub fn new(caps: &[Capability]) -> Index {
        let mut segs = Vec::with_capacity(caps.len());
        let mut keys = Vec::with_capacity(caps.len());
        let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
        let mut methods = Vec::with_capacity(caps.len());
        for (i, c) in caps.iter().enumerate() {
            let h = super::http(c);
            let s = segments(&h.path);
            let k = key(&s);
            by_key.entry(k.clone()).or_default().push(i);
            segs.push(s);
            keys.push(k);
            methods.push(h.method.clone());
        }
        let last_words = segs
            .iter()
            .map(|s: &Vec<Seg>| match s.last() {
                Some(Seg::Lit(l)) => super::words(l),
                _ => Vec::new(),
            })
            .collect();
        let presence = caps
            .iter()
            .map(|c| c.output_schema.is_none() && c.hints.statuses.iter().any(|s| s == "204"))
            .collect();
        Index {
            segs,
            keys,
            by_key,
            methods,
            presence,
            last_words,
        }
    }

    /// The operation with `method` on the same (normalised) path as capability `i`.
    pub fn find(&self, i: usize, method: &str) -> Option<usize> {
        self.at(&self.keys[i], method)
    }

    /// The operation with `method` on a normalised path.
    pub fn at(&self, key: &str, method: &str) -> Option<usize> {
        self.by_key
            .get(key)?
            .iter()
            .copied()
            .find(|&j| self.methods[j] == method)
    }

    /// Every operation with `method`.
    pub fn with_method<'a>(&'a self, method: &'a str) -> impl Iterator<Item = usize> + 'a {
        (0..self.methods.len()).filter(move |&j| self.methods[j] == method)
    }

    /// `true` when any operation sits below capability `i`'s path (it is a container, not a switch).
    pub fn has_children(&self, i: usize) -> bool {
        let prefix = format!("{}/", self.keys[i]);
        self.by_key.keys().any(|k| k.starts_with(&prefix))
    }

    /// Collections of items directly inside item `i` (`/sites/{id}` → `deploys` when
    /// `/sites/{id}/deploys/{deploy_id}` exists), sorted.
    pub fn item_collections_below(&self, i: usize) -> Vec<String> {
        let prefix = format!("{}/", self.keys[i]);
        let mut out: Vec<String> = self
            .by_key
            .keys()
            .filter_map(|k| {
                let rest = k.strip_prefix(&prefix)?;
                let (name, tail) = rest.split_once('/')?;
                (tail == "{}" && name != "{}").then(|| name.to_string())
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// `true` when some operation sits on `path/{var}` below capability `i`'s path.
    pub fn has_item_child(&self, i: usize) -> bool {
        self.by_key.contains_key(&format!("{}/{{}}", self.keys[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_variable_names() {
        assert_eq!(key(&segments("/pets/{petId}/star")), "/pets/{}/star");
        assert_eq!(key(&segments("/pets/{id}/star")), "/pets/{}/star");
        assert_eq!(
            segments("/a/{b}"),
            vec![Seg::Lit("a".into()), Seg::Var("b".into())]
        );
    }
}
