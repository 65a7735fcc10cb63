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

/// Long words and their usual short forms, for names over the budget.
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("administrative", "admin"),
    ("administrator", "admin"),
    ("application", "app"),
    ("applications", "apps"),
    ("attachment", "attach"),
    ("attachments", "attachs"),
    ("authentication", "auth"),
    ("authorization", "authz"),
    ("certificate", "cert"),
    ("certificates", "certs"),
    ("configuration", "config"),
    ("configurations", "configs"),
    ("definition", "def"),
    ("definitions", "defs"),
    ("deployment", "deploy"),
    ("deployments", "deploys"),
    ("description", "desc"),
    ("development", "dev"),
    ("directory", "dir"),
    ("directories", "dirs"),
    ("environment", "env"),
    ("environments", "envs"),
    ("identifier", "id"),
    ("information", "info"),
    ("management", "mgmt"),
    ("notification", "notif"),
    ("notifications", "notifs"),
    ("organization", "org"),
    ("organizations", "orgs"),
    ("permission", "perm"),
    ("permissions", "perms"),
    ("repository", "repo"),
    ("repositories", "repos"),
    ("subscription", "sub"),
    ("subscriptions", "subs"),
    ("synchronization", "sync"),
    ("temporary", "temp"),
    ("transaction", "txn"),
    ("transactions", "txns"),
];

/// Words that say what an operation does: kept when words are dropped from the middle.
const VERBS: &[&str] = &[
    "get",
    "list",
    "set",
    "create",
    "update",
    "delete",
    "remove",
    "add",
    "put",
    "patch",
    "replace",
    "upsert",
    "enable",
    "disable",
    "check",
    "start",
    "stop",
    "cancel",
    "approve",
    "reject",
    "accept",
    "decline",
    "download",
    "upload",
    "search",
    "find",
    "lock",
    "unlock",
    "archive",
    "unarchive",
    "restore",
    "send",
    "move",
    "copy",
    "rename",
    "run",
    "rerun",
    "review",
    "revoke",
    "grant",
    "assign",
    "unassign",
    "follow",
    "unfollow",
    "star",
    "unstar",
    "block",
    "unblock",
    "mark",
    "merge",
    "sync",
    "transfer",
    "invite",
    "redeliver",
    "ping",
    "test",
    "export",
    "import",
    "verify",
    "validate",
    "reset",
    "count",
    "delta",
    "invoke",
    "call",
    "post",
];

/// Words that carry no meaning in a tool name.
const FILLER: &[&str] = &["the", "a", "an", "of", "for", "by", "with", "and"];

/// `name` made to fit `budget` readably, or `None` when it cannot be: in order, later repeats of
/// a run of words are dropped (`device_management_device_management_update` →
/// `device_management_update`), filler words go, long words take their usual short forms, and
/// words are dropped from the middle (the first word and the last ones stay: what is acted on
/// and the action's object).
fn shorten_readably(name: &str, budget: usize) -> Option<String> {
    let words = prepared_words(name, budget)?;
    if words.join("_").len() <= budget {
        return Some(words.join("_"));
    }
    fit_middle(&words, budget, &[])
}

/// The verb after the head, when there is one (`groups_calendar_events_delete_…` → `delete`):
/// kept when words go from the middle, so what the operation does stays in its name.
fn verb_kept(words: &[String]) -> Vec<usize> {
    let head = head_len(words);
    words
        .iter()
        .enumerate()
        .skip(head)
        .rev()
        .skip(1)
        .find(|(_, w)| VERBS.contains(&w.as_str()))
        .map(|(i, _)| vec![i])
        .unwrap_or_default()
}

/// The words of `name` after steps 1–3 of [`shorten_readably`] (each only if the name still does
/// not fit); `None` for an empty name.
fn prepared_words(name: &str, budget: usize) -> Option<Vec<String>> {
    let fits = |w: &[String]| w.join("_").len() <= budget;
    let mut words: Vec<String> = name
        .split('_')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    if words.is_empty() {
        return None;
    }
    // 1. Later repeats of a run of two or more words, longest runs first; a single word only
    //    when it repeats the word before it (`users_users`).
    for n in (1..=words.len() / 2).rev() {
        let mut i = n;
        while i + n <= words.len() {
            let run = &words[i..i + n];
            let earlier = if n == 1 {
                words[i - 1] == words[i]
            } else {
                (0..=i - n).any(|j| words[j..j + n] == *run)
            };
            if earlier {
                words.drain(i..i + n);
            } else {
                i += 1;
            }
        }
    }
    if fits(&words) {
        return Some(words);
    }
    // 2. Filler words (never the first).
    let mut kept = vec![words[0].clone()];
    kept.extend(
        words
            .iter()
            .skip(1)
            .filter(|w| !FILLER.contains(&w.as_str()))
            .cloned(),
    );
    words = kept;
    if fits(&words) {
        return Some(words);
    }
    // 3. Short forms.
    for w in &mut words {
        if let Some((_, short)) = ABBREVIATIONS.iter().find(|(long, _)| long == w) {
            *w = short.to_string();
        }
    }
    Some(words)
}

/// How many words make the head kept by [`fit_middle`]: the first word, and the words up to the
/// verb when one comes within the first three.
fn head_len(words: &[String]) -> usize {
    words
        .iter()
        .take(3)
        .position(|w| VERBS.contains(&w.as_str()))
        .map_or(1, |v| v + 1)
}

/// Step 4 of shortening: words from the middle. The head stays — the first word, and the words up to the verb when
/// one comes within the first three (`actions_get_…`, `users_user_list_…`), so `get` and `set`
/// twins stay apart — then the middle words at `keep` (indices, ascending), then as many of the
/// last words as fit (at least two, or one beside kept middle words).
fn fit_middle(words: &[String], budget: usize, keep: &[usize]) -> Option<String> {
    let head_len = head_len(words);
    if words.len() < head_len + 3 {
        return None;
    }
    let mut out: Vec<String> = words[..head_len].to_vec();
    out.extend(keep.iter().filter_map(|&i| words.get(i).cloned()));
    let after = keep.last().map_or(head_len, |&i| i + 1);
    let mut len = out.join("_").len();
    let mut tail: Vec<String> = Vec::new();
    for w in words[after.max(head_len)..].iter().rev() {
        if len + 1 + w.len() > budget {
            break;
        }
        len += 1 + w.len();
        tail.insert(0, w.clone());
    }
    let least = if keep.is_empty() { 2 } else { 1 };
    if tail.len() < least {
        return None;
    }
    out.extend(tail);
    let text = out.join("_");
    (text.len() <= budget).then_some(text)
}

/// Other readable shortenings of `name`, for when [`shorten_readably`]'s is taken: the same
/// head and tail with one word of the dropped middle kept (nearest the head first), then two,
/// and the last verb after the head always.
fn readable_variants(name: &str, budget: usize) -> Vec<String> {
    let Some(words) = prepared_words(name, budget) else {
        return Vec::new();
    };
    let head = head_len(&words);
    let verb = verb_kept(&words);
    // Nearest the head first: the words right after the verb say what it acts on.
    let middle: Vec<usize> = (head..words.len().saturating_sub(1))
        .filter(|i| !verb.contains(i))
        .collect();
    let keep = |extra: &[usize]| -> Vec<usize> {
        let mut k: Vec<usize> = verb.iter().chain(extra).copied().collect();
        k.sort_unstable();
        k
    };
    let mut out = Vec::new();
    for &m in &middle {
        out.extend(fit_middle(&words, budget, &keep(&[m])));
    }
    for (x, &m) in middle.iter().enumerate() {
        for &n in &middle[x + 1..] {
            out.extend(fit_middle(&words, budget, &keep(&[n, m])));
        }
    }
    out
}

/// Why a name differs from the one its source suggested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rename {
    /// Longer than the budget; shortened (readably when it can be, else with a hash).
    Shortened,
    /// Already taken by an earlier operation.
    Deduplicated,
}

/// Hands out unique names within a budget, deterministically in call order.
#[derive(Debug)]
pub struct Namer {
    budget: usize,
    used: HashSet<String>,
    /// The names asked for so far: the same name again is de-duplicated (`_2`), not re-shortened.
    asked: HashSet<String>,
    /// Natural (first-choice) names of every operation, given up front ([`Namer::reserve`]): a
    /// variant chosen to avoid a collision never takes one of them.
    reserved: HashSet<String>,
    /// Per name that had to be de-duplicated, the first suffix not yet tried: every one below it
    /// is taken (30,000 operations of one name took minutes when each tried `_2` on up).
    next_suffix: std::collections::HashMap<String, usize>,
}

impl Namer {
    pub fn new(budget: usize) -> Self {
        Namer {
            budget: budget.clamp(MIN_NAME_LEN, MCP_MAX_NAME_LEN),
            used: HashSet::new(),
            asked: HashSet::new(),
            reserved: HashSet::new(),
            next_suffix: std::collections::HashMap::new(),
        }
    }

    /// Notes the name `base` will naturally get, so collision variants leave it free.
    pub fn reserve(&mut self, base: &str) {
        let natural = if base.len() > self.budget {
            shorten_readably(base, self.budget)
        } else {
            Some(base.to_string())
        };
        if let Some(n) = natural {
            self.reserved.insert(n);
        }
    }

    /// Assigns a name for `base` (already snake_case); says why it changed, if it did. A name
    /// over the budget is shortened readably when it can be ([`shorten_readably`]), with a hash
    /// otherwise; a name already given gets `_2`, `_3`, … within the budget.
    pub fn assign(&mut self, base: &str) -> (String, Option<Rename>) {
        let base = if base.is_empty() { "operation" } else { base };
        let mut reason = None;
        let mut name = base.to_string();
        if name.len() > self.budget {
            name = shorten_readably(base, self.budget)
                .unwrap_or_else(|| shorten(base, self.budget, base));
            // Two long names can shorten alike (they differ only in the words dropped): the
            // later one keeps its readable form with 4 hex digits of its full name's hash — stable
            // whatever else the description holds, unlike `_2`.
            if self.used.contains(&name) && !self.asked.contains(base) {
                // First another readable form that keeps a word the other dropped
                // (`users_calendar_view_event_forward` beside `users_events_event_forward`).
                match readable_variants(base, self.budget)
                    .into_iter()
                    .find(|v| !self.used.contains(v) && !self.reserved.contains(v))
                {
                    Some(v) => name = v,
                    None => {
                        let tag = format!("{:04x}", fnv1a(base.as_bytes()) as u16);
                        name = shorten_readably(base, self.budget - 5)
                            .map(|r| format!("{r}_{tag}"))
                            .unwrap_or_else(|| shorten(base, self.budget, base));
                    }
                }
            }
            reason = Some(Rename::Shortened);
        }
        if self.used.contains(&name) {
            reason = Some(Rename::Deduplicated);
            let mut i = self.next_suffix.get(&name).copied().unwrap_or(2);
            let wanted = name.clone();
            loop {
                let suffix = format!("_{i}");
                let room = self.budget - suffix.len();
                let candidate = if name.len() <= room {
                    format!("{name}{suffix}")
                } else if let Some(r) = shorten_readably(base, room) {
                    format!("{r}{suffix}")
                } else {
                    let key = format!("{base}{suffix}");
                    shorten(base, room, &key) + &suffix
                };
                if !self.used.contains(&candidate) {
                    name = candidate;
                    break;
                }
                i += 1;
            }
            self.next_suffix.insert(wanted, i + 1);
        }
        self.used.insert(name.clone());
        self.asked.insert(base.to_string());
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

    /// The same name many times: `_2`, `_3` … in order, each tried once (it was quadratic), and
    /// a suffix another name already holds is still skipped.
    #[test]
    fn duplicates_take_the_next_free_suffix() {
        let mut n = Namer::new(48);
        assert_eq!(n.assign("same_3").0, "same_3");
        let names: Vec<String> = (0..2000).map(|_| n.assign("same").0).collect();
        assert_eq!(names[0], "same");
        assert_eq!(names[1], "same_2");
        assert_eq!(names[2], "same_4", "same_3 was taken");
        assert_eq!(names[1999], "same_2001");
        let unique: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), 2000);
    }

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
    fn twins_that_shorten_alike_keep_a_word_that_tells_them_apart() {
        let mut n = Namer::new(48);
        let all = "actions_remove_all_custom_labels_from_self_hosted_runner_for_repo";
        let one = "actions_remove_custom_label_from_self_hosted_runner_for_repo";
        let later = "actions_remove_custom_labels_from_self_hosted_runner_for_repo";
        // The later twin's natural name is reserved up front: no variant may take it.
        for b in [all, one, later] {
            n.reserve(b);
        }
        let (a, _) = n.assign(all);
        let (b, _) = n.assign(one);
        let (c, _) = n.assign(later);
        assert_eq!(a, "actions_remove_from_self_hosted_runner_repo");
        assert_eq!(b, "actions_remove_custom_self_hosted_runner_repo");
        assert!(c.len() <= 48 && c != a && c != b, "{c}");
        // No hash while a readable form is free.
        for name in [&a, &b] {
            let tail = name.rsplit('_').next().unwrap_or("");
            assert!(
                !(tail.len() == 4 && tail.chars().all(|ch| ch.is_ascii_hexdigit())),
                "{name}"
            );
        }
        // The same again is deterministic.
        let mut m = Namer::new(48);
        for b in [all, one, later] {
            m.reserve(b);
        }
        assert_eq!(m.assign(all).0, a);
        assert_eq!(m.assign(one).0, b);
        assert_eq!(m.assign(later).0, c);
    }

    #[test]
    fn long_names_are_shortened_readably_before_a_hash() {
        // A repeated run of words goes, then `management` takes its short form.
        assert_eq!(
            shorten_readably(
                "device_management_device_management_update_device_compliance_policies",
                48
            )
            .as_deref(),
            Some("device_mgmt_update_device_compliance_policies")
        );
        // Filler words go.
        assert_eq!(
            shorten_readably("list_the_members_of_the_group_with_the_given_name", 40).as_deref(),
            Some("list_members_group_given_name")
        );
        // Words from the middle: the head up to the verb and the last ones stay, so twins
        // that differ only in their verb stay apart.
        assert_eq!(
            shorten_readably(
                "users_list_windows_information_protection_device_registrations",
                40
            )
            .as_deref(),
            Some("users_list_device_registrations")
        );
        let get = shorten_readably(
            "actions_get_fork_pr_contributor_approval_permissions_organization",
            40,
        );
        let set = shorten_readably(
            "actions_set_fork_pr_contributor_approval_permissions_organization",
            40,
        );
        assert_ne!(get, set);
        assert!(
            get.as_deref()
                .is_some_and(|g| g.starts_with("actions_get_")),
            "{get:?}"
        );
        // Too little left to keep a meaning: none, and the namer hashes.
        assert_eq!(
            shorten_readably("averyveryveryverylongsingleword_x", 16),
            None
        );
        let mut n = Namer::new(48);
        let long = "device_management_device_management_update_device_compliance_policies";
        let (a, why) = n.assign(long);
        assert_eq!(
            (a.as_str(), why),
            (
                "device_mgmt_update_device_compliance_policies",
                Some(Rename::Shortened)
            )
        );
        // The same long name again: taken, so deduplicated within the budget.
        let (b, why) = n.assign(long);
        assert_eq!(why, Some(Rename::Deduplicated));
        assert_ne!(a, b);
        assert!(b.len() <= 48 && is_mcp_safe(&b), "{b}");
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
