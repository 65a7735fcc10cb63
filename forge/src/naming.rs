//! MCP-safe capability names: snake_case, `^[a-zA-Z0-9_-]{1,64}$`, unique, within a length budget.

use std::collections::HashSet;

/// The default name budget: leaves room for a client prefix such as `mcp__server__` within 64.
pub const DEFAULT_MAX_NAME_LEN: usize = 48;
/// MCP's hard limit.
pub const MCP_MAX_NAME_LEN: usize = 64;
/// The shortest budget that still leaves a readable prefix beside the hash.
pub const MIN_NAME_LEN: usize = 16;

/// `createNote` → `create_note`, `repos/create-webhook` → `repos_create_webhook`,
/// `getHTTPStatus` → `get_http_status`. Characters outside ASCII letters and digits separate words.
pub fn snake_case(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
            continue;
        }
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let boundary = prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower);
            if boundary && !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// A name for an operation without an operationId: `get /pets/{petId}` → `get_pets_pet_id`.
pub fn from_method_path(method: &str, path: &str) -> String {
    snake_case(&format!("{method}_{path}"))
}

/// Replaces every character outside `[A-Za-z0-9_.-]` with `_`.
pub fn safe_chars(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A property name clients accept (`^[a-zA-Z0-9_.-]{1,64}$`); the original name stays in the binding.
pub fn property_name(s: &str) -> String {
    let mut out = safe_chars(s);
    // `filter[name]` → `filter_name_`; drop trailing separators that carry no meaning.
    while out.len() > 1 && out.ends_with('_') {
        out.pop();
    }
    if out.is_empty() || out.chars().all(|c| c == '_') {
        out = format!("p_{:08x}", fnv1a(s.as_bytes()) as u32);
    }
    if out.len() > MCP_MAX_NAME_LEN {
        out = shorten(&out, MCP_MAX_NAME_LEN, s);
    }
    out
}

/// FNV-1a, 64 bit: stable across platforms and releases, which `std`'s hasher is not.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Cuts `name` to `budget` characters, ending in `_` + 8 hex digits of a hash of `key`.
fn shorten(name: &str, budget: usize, key: &str) -> String {
    let hash = format!("{:08x}", fnv1a(key.as_bytes()) as u32);
    let keep = budget.saturating_sub(hash.len() + 1);
    let mut prefix: String = name.chars().take(keep).collect();
    while prefix.ends_with('_') || prefix.ends_with('-') {
        prefix.pop();
    }
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}_{hash}")
    }
}

/// Why a name differs from the one its source suggested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rename {
    /// Longer than the budget; shortened with a hash.
    Shortened,
    /// Already taken by an earlier operation.
    Deduplicated,
}

/// Hands out unique names within a budget, deterministically in call order.
#[derive(Debug)]
pub struct Namer {
    budget: usize,
    used: HashSet<String>,
}

impl Namer {
    pub fn new(budget: usize) -> Self {
        Namer {
            budget: budget.clamp(MIN_NAME_LEN, MCP_MAX_NAME_LEN),
            used: HashSet::new(),
        }
    }

    /// Assigns a name for `base` (already snake_case); says why it changed, if it did.
    pub fn assign(&mut self, base: &str) -> (String, Option<Rename>) {
        let base = if base.is_empty() { "operation" } else { base };
        let mut reason = None;
        let mut name = base.to_string();
        if name.len() > self.budget {
            name = shorten(base, self.budget, base);
            reason = Some(Rename::Shortened);
        }
        if self.used.contains(&name) {
            reason = Some(Rename::Deduplicated);
            let mut i = 2usize;
            loop {
                let suffix = format!("_{i}");
                let candidate = if base.len() + suffix.len() <= self.budget {
                    format!("{base}{suffix}")
                } else {
                    let key = format!("{base}{suffix}");
                    shorten(base, self.budget - suffix.len(), &key) + &suffix
                };
                if !self.used.contains(&candidate) {
                    name = candidate;
                    break;
                }
                i += 1;
            }
        }
        self.used.insert(name.clone());
        (name, reason)
    }
}

/// `true` when `name` is a valid MCP tool name.
pub fn is_mcp_safe(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MCP_MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_examples() {
        assert_eq!(snake_case("createNote"), "create_note");
        assert_eq!(snake_case("repos/create-webhook"), "repos_create_webhook");
        assert_eq!(snake_case("getHTTPStatus"), "get_http_status");
        assert_eq!(snake_case("GetV2Users"), "get_v2_users");
        assert_eq!(snake_case("listPets"), "list_pets");
        assert_eq!(snake_case("already_snake"), "already_snake");
        assert_eq!(snake_case("  spaced  out!! "), "spaced_out");
        assert_eq!(snake_case("日本語"), "");
        assert_eq!(from_method_path("get", "/pets/{petId}"), "get_pets_pet_id");
    }

    #[test]
    fn budget_and_dedup_are_deterministic() {
        let long = "a_very_long_operation_name_that_goes_on_and_on_and_on_forever";
        let mut n = Namer::new(48);
        let (a, why) = n.assign(long);
        assert_eq!(why, Some(Rename::Shortened));
        assert!(a.len() <= 48 && is_mcp_safe(&a), "{a}");
        let (b, why) = n.assign(long);
        assert_eq!(why, Some(Rename::Deduplicated));
        assert_ne!(a, b);
        assert!(b.len() <= 48 && is_mcp_safe(&b), "{b}");
        let mut again = Namer::new(48);
        assert_eq!(again.assign(long).0, a);
        let (c, why) = n.assign("list_pets");
        assert_eq!((c.as_str(), why), ("list_pets", None));
        assert_eq!(n.assign("list_pets").0, "list_pets_2");
        assert_eq!(n.assign("list_pets").0, "list_pets_3");
    }

    #[test]
    fn property_names_are_client_safe() {
        assert_eq!(property_name("petId"), "petId");
        assert_eq!(property_name("filter[name]"), "filter_name");
        assert_eq!(property_name("X-Request-ID"), "X-Request-ID");
        assert_eq!(property_name("$expand"), "_expand");
        let odd = property_name("[]");
        assert!(odd.starts_with("p_"), "{odd}");
    }
}
