//! Path shapes: segments, normalised keys, and lookups of sibling operations.

use std::collections::{BTreeSet, HashMap, HashSet};

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
    /// Whether each operation answers by status alone: a `204` success and no body schema
    /// (`GET /user/following/{username}`: 204 when following, 404 when not).
    pub presence: Vec<bool>,
    /// Every key that has another key below it (`/a/{}` for `/a/{}/b`): `has_children` in O(1).
    parents: HashSet<String>,
    /// Per key `P`, the names `n` of item collections `P/n/{}` directly below it.
    item_collections: HashMap<String, BTreeSet<String>>,
    /// DELETEs of an item (last segment a variable), by their literal segments joined with `/`.
    deletes_by_literals: HashMap<String, Vec<usize>>,
    /// Operations by their parent's key and the words of their last segment (`/a/{}/archive`
    /// → (`/a/{}`, [archive])): sibling actions, found without a scan.
    by_parent_words: HashMap<(String, Vec<String>), Vec<usize>>,
}

/// Which keys have keys below them, and per key `P` the literal names `n` with a key `P/n/{}`.
fn tree<'a>(
    keys: impl Iterator<Item = &'a str>,
) -> (HashSet<String>, HashMap<String, BTreeSet<String>>) {
    let mut parents = HashSet::new();
    let mut item_collections: HashMap<String, BTreeSet<String>> = HashMap::new();
    for k in keys {
        let cuts: Vec<usize> = k.match_indices('/').map(|(at, _)| at).collect();
        for &at in &cuts {
            parents.insert(k[..at].to_string());
        }
        if let (true, [.., a, _]) = (k.ends_with("/{}"), cuts.as_slice()) {
            let name = &k[a + 1..k.len() - 3];
            if name != "{}" && !name.is_empty() {
                item_collections
                    .entry(k[..*a].to_string())
                    .or_default()
                    .insert(name.to_string());
            }
        }
    }
    (parents, item_collections)
}

/// A path's literal segments joined with `/` (`/repos/{o}/{r}/hooks/{id}` → `repos/hooks`).
pub fn literals(segs: &[Seg]) -> String {
    let lits: Vec<&str> = segs
        .iter()
        .filter_map(|s| match s {
            Seg::Lit(l) => Some(l.as_str()),
            Seg::Var(_) => None,
        })
        .collect();
    lits.join("/")
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
        let last_words: Vec<Vec<String>> = segs
            .iter()
            .map(|s: &Vec<Seg>| match s.last() {
                Some(Seg::Lit(l)) => super::words(l),
                _ => Vec::new(),
            })
            .collect();
        let presence = caps
            .iter()
            .map(|c| {
                c.output_schema.is_none()
                    && super::http(c).hints.statuses.iter().any(|s| s == "204")
            })
            .collect();
        // One pass over the keys instead of a scan of every key per capability (quadratic in
        // the number of paths: 70 s on 50,000 paths).
        let (parents, item_collections) = tree(by_key.keys().map(String::as_str));
        let mut deletes_by_literals: HashMap<String, Vec<usize>> = HashMap::new();
        for (j, s) in segs.iter().enumerate() {
            if methods[j] == "DELETE" && matches!(s.last(), Some(Seg::Var(_))) {
                deletes_by_literals.entry(literals(s)).or_default().push(j);
            }
        }
        let mut by_parent_words: HashMap<(String, Vec<String>), Vec<usize>> = HashMap::new();
        for (j, s) in segs.iter().enumerate() {
            let parent = key(&s[..s.len().saturating_sub(1)]);
            by_parent_words
                .entry((parent, last_words[j].clone()))
                .or_default()
                .push(j);
        }
        Index {
            segs,
            keys,
            by_key,
            methods,
            presence,
            parents,
            item_collections,
            deletes_by_literals,
            by_parent_words,
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

    /// `true` when any operation sits below capability `i`'s path (it is a container, not a switch).
    pub fn has_children(&self, i: usize) -> bool {
        self.parents.contains(&self.keys[i])
    }

    /// Collections of items directly inside item `i` (`/sites/{id}` → `deploys` when
    /// `/sites/{id}/deploys/{deploy_id}` exists), sorted.
    pub fn item_collections_below(&self, i: usize) -> Vec<String> {
        self.item_collections
            .get(&self.keys[i])
            .map(|names| names.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Operations other than `i` and not GETs whose parent path has key `parent` and whose last
    /// segment has the words `words`, in description order.
    pub fn siblings_with_words<'a>(
        &'a self,
        i: usize,
        parent: &str,
        words: &[String],
    ) -> impl Iterator<Item = usize> + 'a {
        self.by_parent_words
            .get(&(parent.to_string(), words.to_vec()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .copied()
            .filter(move |&j| j != i && self.methods[j] != "GET")
    }

    /// DELETEs of an item whose literal segments are `literals` (see [`literals`]).
    pub fn item_deletes_with_literals(&self, literals: &str) -> &[usize] {
        self.deletes_by_literals
            .get(literals)
            .map(Vec::as_slice)
            .unwrap_or(&[])
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
    fn children_and_item_collections_are_indexed() {
        let keys = [
            "/sites/{}",
            "/sites/{}/deploys/{}",
            "/sites/{}/deploys/{}/log",
            "/sites/{}/hooks/{}",
            "/sites/{}/{}/{}",
            "/pets",
            "/pets/{}",
        ];
        let (parents, cols) = tree(keys.into_iter());
        assert!(parents.contains("/sites/{}"));
        assert!(parents.contains("/pets"));
        assert!(parents.contains(""));
        assert!(!parents.contains("/pets/{}"));
        assert_eq!(
            cols["/sites/{}"].iter().collect::<Vec<_>>(),
            ["deploys", "hooks"]
        );
        assert_eq!(cols[""].iter().collect::<Vec<_>>(), ["pets", "sites"]);
        assert_eq!(
            literals(&segments("/repos/{o}/{r}/hooks/{id}")),
            "repos/hooks"
        );
    }

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
