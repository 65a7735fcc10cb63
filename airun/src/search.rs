//! Finding capabilities by words, for a dynamic toolset's `search_capabilities`.
//!
//! Each capability is indexed once, at start-up, by the words of its name, tags, route (HTTP
//! method and path) and description. A query word matches a capability word that starts with
//! it, after both lose a plural `s` (`repos` finds `repo`, `issue` finds `issues`, `del` finds
//! `delete`). A capability's score adds, per query word, the weight of the best place it matched:
//! name 8, tag 4, route 4, description 1; a capability matching more of the query's words always
//! ranks above one matching fewer. Ties go by name, so results are stable.

use std::collections::HashMap;

use aifirst::CapabilityDef;

const NAME: u32 = 8;
const TAG: u32 = 4;
const ROUTE: u32 = 4;
const DESCRIPTION: u32 = 1;

/// The words of every capability, by where they were found.
pub struct Index {
    /// Capability name → (word → best weight).
    entries: Vec<(&'static str, HashMap<String, u32>)>,
}

/// Lower-case words of a text: split at anything not a letter or digit, and at camelCase humps.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if c.is_uppercase() && prev_lower && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
            cur.extend(c.to_lowercase());
        } else {
            prev_lower = false;
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out.into_iter().map(stem).collect()
}

/// A word without a plural ending (`repos` → `repo`, `policies` → `policy`).
fn stem(w: String) -> String {
    if w.len() > 4 && w.ends_with("ies") {
        format!("{}y", &w[..w.len() - 3])
    } else if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") {
        w[..w.len() - 1].to_string()
    } else {
        w
    }
}

impl Index {
    pub fn new(defs: impl Iterator<Item = &'static CapabilityDef>) -> Index {
        let mut entries = Vec::new();
        for def in defs {
            let mut map: HashMap<String, u32> = HashMap::new();
            let mut add = |text: &str, weight: u32| {
                for w in words(text) {
                    let e = map.entry(w).or_insert(0);
                    *e = (*e).max(weight);
                }
            };
            add(def.name, NAME);
            for t in def.tags {
                add(t, TAG);
            }
            if let Some(r) = def.route {
                add(r, ROUTE);
            }
            add(def.description, DESCRIPTION);
            entries.push((def.name, map));
        }
        entries.sort_by(|a, b| a.0.cmp(b.0));
        Index { entries }
    }

    /// The best `limit` capabilities for a query, best first: (name, score).
    pub fn search(&self, query: &str, limit: usize) -> Vec<(&'static str, u32)> {
        // A query is a few words: at most 32 of the first 1,000 characters count, so a hostile
        // one cannot make every search cost capabilities × thousands of words.
        let query: String = query.chars().take(1_000).collect();
        let mut q = words(&query);
        q.truncate(32);
        q.sort();
        q.dedup();
        if q.is_empty() {
            return Vec::new();
        }
        // (matched words, score) per capability.
        let mut hits: Vec<(usize, u32, &'static str)> = Vec::new();
        for (name, map) in &self.entries {
            let (mut matched, mut score) = (0usize, 0u32);
            for w in &q {
                let best = map
                    .iter()
                    .filter(|(k, _)| k.starts_with(w.as_str()))
                    .map(|(k, weight)| if k == w { weight * 2 } else { *weight })
                    .max();
                if let Some(b) = best {
                    matched += 1;
                    score += b;
                }
            }
            if matched > 0 {
                hits.push((matched, score, name));
            }
        }
        hits.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)));
        hits.into_iter()
            .take(limit)
            .map(|(_, s, n)| (n, s))
            .collect()
    }

    /// Names close to a mistyped one (sharing its words), at most five, best first.
    pub fn near(&self, name: &str) -> Vec<String> {
        self.search(name, 5)
            .into_iter()
            .map(|(n, _)| format!("`{n}`"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_and_lose_plurals() {
        assert_eq!(
            words("repos/createForAuthenticatedUser"),
            ["repo", "create", "for", "authenticated", "user"]
        );
        assert_eq!(
            words("GET /policies/{policy-id}"),
            ["get", "policy", "policy", "id"]
        );
        assert_eq!(words("access"), ["access"]);
    }
}
