//! The HTTP rules: what an operation does, judged from its method and path shape, and how it is
//! undone, from the operations beside it ([`undo`]) and the shape of the paths ([`paths`]).

mod paths;
mod undo;

use aifirst_capability::{Annotations, Effect};

use super::bare;
use crate::ir::{Capability, HttpBinding, HttpHints};
use paths::{Index, Seg};

/// What an operation does, judged from method and path shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    Read,
    /// A POST whose result is computed from the request alone (search, render, validate…).
    ReadOnlyPost,
    Create,
    /// PUT without a body that a DELETE on the same path reverses (star, follow, lock…).
    ToggleOn,
    Update,
    Delete,
    /// An action (`/charges/{id}/capture`, `/runs/{id}/cancel`, `/dispatches`); the verb matched.
    Execute(String),
}

/// Words that make a POST read-only when they name its last path segment or its operation.
const READ_ONLY_POST: [&str; 14] = [
    "search",
    "query",
    "render",
    "validate",
    "validation",
    "preview",
    "lookup",
    "estimate",
    "calculate",
    "simulate",
    "dryrun",
    "compare",
    "count",
    "explain",
];

/// Verbs that make a POST an action rather than a create.
pub(crate) const ACTION_VERBS: [&str; 97] = [
    "capture",
    "cancel",
    "refund",
    "refunds",
    "approve",
    "reject",
    "merge",
    "merges",
    "close",
    "reopen",
    "archive",
    "unarchive",
    "publish",
    "unpublish",
    "start",
    "stop",
    "restart",
    "reboot",
    "rerun",
    "retry",
    "run",
    "execute",
    "trigger",
    "dispatch",
    "dispatches",
    "send",
    "resend",
    "sync",
    "lock",
    "unlock",
    "pay",
    "void",
    "finalize",
    "confirm",
    "verify",
    "reset",
    "rotate",
    "transfer",
    "enable",
    "disable",
    "activate",
    "deactivate",
    "suspend",
    "unsuspend",
    "resume",
    "pause",
    "test",
    "ping",
    "deploy",
    "rollback",
    "revoke",
    "accept",
    "decline",
    "mark",
    "attach",
    "detach",
    "apply",
    "resolve",
    "invoke",
    "regenerate",
    "renew",
    "upgrade",
    "downgrade",
    "poweron",
    "poweroff",
    "shutdown",
    "rebuild",
    "resize",
    "migrate",
    "import",
    "export",
    "generate",
    "convert",
    "redeliver",
    "move",
    "follow",
    "unfollow",
    "star",
    "unstar",
    "mute",
    "unmute",
    "pin",
    "unpin",
    "block",
    "unblock",
    "subscribe",
    "unsubscribe",
    "hide",
    "unhide",
    "watch",
    "unwatch",
    "assign",
    "unassign",
    "notify",
    "submit",
    "complete",
    "expire",
];

/// Effects, annotations and an undo plan for every capability of `caps`, which are all HTTP
/// operations of one description.
pub(super) fn infer(caps: &mut [Capability]) {
    let index = Index::new(caps);
    let classified: Vec<(Class, String)> = caps
        .iter()
        .enumerate()
        .map(|(i, cap)| classify(i, cap, &index))
        .collect();
    let classes: Vec<Class> = classified.iter().map(|(c, _)| c.clone()).collect();
    let planner = undo::Planner::new(caps, &index, classes);
    let mut plans = Vec::with_capacity(caps.len());
    for (i, (class, why)) in classified.into_iter().enumerate() {
        let cap = &caps[i];
        let idempotent = matches!(
            class,
            Class::Read | Class::ReadOnlyPost | Class::ToggleOn | Class::Delete
        ) || (matches!(class, Class::Update) && http(cap).method == "PUT");
        let mut plan = planner.plan(i);
        plan.evidence.insert(0, why);
        plans.push((class, idempotent, plan));
    }
    drop(planner);
    add_checks(caps, &index, &mut plans);
    for (cap, (class, idempotent, plan)) in caps.iter_mut().zip(plans) {
        let mut effects = vec![
            match class {
                Class::Read | Class::ReadOnlyPost => Effect::Read,
                Class::Create | Class::ToggleOn => Effect::Create,
                Class::Update => Effect::Update,
                Class::Delete => Effect::Delete,
                Class::Execute(verb) => action_effect(&verb),
            },
            Effect::Network,
        ];
        effects.sort();
        cap.effects = effects;
        cap.annotations = Annotations::from_effects(&cap.effects, idempotent);
        cap.undo = Some(plan);
    }
}

/// An inverse that DELETEs a path with a GET on the very same path template re-reads it first:
/// the runtime then refuses to delete something that is not what the call created (a folder
/// named by the create's argument, when the create made a file inside it).
fn add_checks(
    caps: &[Capability],
    index: &Index,
    plans: &mut [(Class, bool, aifirst_capability::UndoPlan)],
) {
    let by_name: std::collections::HashMap<&str, usize> = caps
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    for (_, _, plan) in plans.iter_mut() {
        if plan.kind != aifirst_capability::UndoKind::Inverse {
            continue;
        }
        let Some(&t) = plan
            .target
            .as_ref()
            .and_then(|t| by_name.get(t.name.as_str()))
        else {
            continue;
        };
        if http(&caps[t]).method != "DELETE" {
            continue;
        }
        let Some(g) = index.find(t, "GET") else {
            continue;
        };
        // A GET that answers by status alone (no body) cannot confirm what was created.
        if http(&caps[g]).path != http(&caps[t]).path || caps[g].output_schema.is_none() {
            continue;
        }
        plan.check = Some(aifirst_capability::CapabilityRef {
            name: caps[g].name.clone(),
            operation_id: caps[g].operation_id.clone(),
        });
        plan.evidence.push(format!(
            "before deleting, GET {} must still find what the call created",
            http(&caps[g]).path
        ));
    }
}

/// The capability's HTTP operation. These rules only ever see HTTP capabilities ([`infer`]
/// runs on a description's operations); anything else reads as an empty operation that matches
/// no rule.
pub(crate) fn http(cap: &Capability) -> &HttpBinding {
    static NONE: std::sync::LazyLock<HttpBinding> = std::sync::LazyLock::new(|| HttpBinding {
        method: String::new(),
        path: String::new(),
        params: Vec::new(),
        body: None,
        servers: Vec::new(),
        security: Vec::new(),
        hints: HttpHints::default(),
    });
    cap.binding.http().unwrap_or(&NONE)
}

/// Lower-case words of a path segment or operation id: `create-webhook` → [create, webhook].
pub(crate) fn words(s: &str) -> Vec<String> {
    crate::naming::snake_case(s)
        .split('_')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

pub(crate) fn classify(i: usize, cap: &Capability, index: &Index) -> (Class, String) {
    let h = http(cap);
    let segs = &index.segs[i];
    match h.method.as_str() {
        "GET" | "HEAD" | "OPTIONS" | "TRACE" => (Class::Read, format!("{} reads", h.method)),
        "DELETE" => (Class::Delete, "DELETE removes".into()),
        "PATCH" => (Class::Update, "PATCH changes an existing resource".into()),
        "PUT" => {
            let optional_body = h.body.as_ref().is_some_and(|b| !b.required)
                && h.params
                    .iter()
                    .all(|p| p.location == crate::ir::ParamLocation::Path)
                && cap
                    .input_schema
                    .get("required")
                    .and_then(|r| r.as_array())
                    .is_some_and(|r| {
                        r.iter().all(|x| {
                            h.params
                                .iter()
                                .any(|p| p.property == x.as_str().unwrap_or_default())
                        })
                    });
            let no_get = index.find(i, "GET").is_none();
            // A GET that returns the resource itself (not 204/404 presence) makes the PUT an update.
            // On an item, only a GET that answers by status (204/404) shows it is a relation that
            // is switched on and off; any other GET, or none, leaves the PUT an update.
            let resource_get = matches!(index.segs[i].last(), Some(Seg::Var(_)))
                && match index.find(i, "GET") {
                    Some(g) => !index.presence[g],
                    // No GET: the PUT itself must answer like a switch, 204 and no body.
                    None => !(index.presence[i]),
                };
            // A sub-resource like `/lock` or `/subscription`, not an item that a PUT may update.
            let optional_body = optional_body && matches!(index.segs[i].last(), Some(Seg::Lit(_)));
            // A toggle is named by its path alone: query or header parameters make it an update.
            // A switch has nothing beneath it (`/lock`, `/star`); `/addon` with `/addon/linkers` is a resource.
            let path_only = h
                .params
                .iter()
                .all(|p| p.location == crate::ir::ParamLocation::Path)
                && !index.has_children(i);
            if path_only
                && !resource_get
                && index.find(i, "DELETE").is_some()
                && (h.body.is_none() || (optional_body && no_get))
            {
                (
                    Class::ToggleOn,
                    "PUT without a required body, paired with DELETE on the same path: a toggle"
                        .into(),
                )
            } else {
                (
                    Class::Update,
                    "PUT creates or replaces the resource at its path".into(),
                )
            }
        }
        "POST" => classify_post(i, cap, segs, index),
        other => (
            Class::Execute(other.to_ascii_lowercase()),
            format!("{other} is not a standard method"),
        ),
    }
}

fn classify_post(i: usize, cap: &Capability, segs: &[Seg], index: &Index) -> (Class, String) {
    let last_lit = segs.iter().rev().find_map(|s| match s {
        Seg::Lit(l) => Some(l.as_str()),
        Seg::Var(_) => None,
    });
    let last_words = last_lit.map(words).unwrap_or_default();
    // Dotted RPC names (`admin.usergroups.addChannels`): the verb is in the last part.
    let action_words = last_lit
        .and_then(|l| l.rsplit_once('.').map(|(_, a)| words(a)))
        .unwrap_or_else(|| last_words.clone());
    let id_words = cap.operation_id.as_deref().map(words).unwrap_or_default();
    // Read-only POSTs: the last segment names the computation, or the operation id starts or ends with it.
    let ro = |w: &String| READ_ONLY_POST.contains(&w.as_str());
    let id_edge = [id_words.first(), id_words.last()];
    let joined_last: String = last_words.concat();
    if last_words.iter().any(ro)
        || id_edge.iter().flatten().any(|w| ro(w))
        || READ_ONLY_POST.contains(&joined_last.as_str())
    {
        let w = last_words
            .iter()
            .chain(id_words.iter())
            .find(|w| ro(w))
            .cloned()
            .unwrap_or(joined_last);
        return (
            Class::ReadOnlyPost,
            format!("POST named `{w}`: computed from the request, changes nothing (likely)"),
        );
    }
    if let Some(Seg::Var(var)) = segs.last() {
        let created = http(cap).hints.statuses.iter().any(|s| s == "201");
        if created && (index.find(i, "PUT").is_some() || index.find(i, "PATCH").is_some()) {
            return (
                Class::Create,
                "POST on an item path that PUT or PATCH updates: it creates the item at that path"
                    .into(),
            );
        }
        let singular = segs.iter().rev().nth(1).and_then(|s| match s {
            Seg::Lit(l) => Some(paths::singular(l)),
            Seg::Var(_) => None,
        });
        let v = crate::naming::snake_case(var);
        // `{customer}`, `{shipping_rate_token}` under `shipping_rates`, `{item}` under `subscription_items`.
        let names_item = singular.is_some_and(|s| {
            let (var, res) = (
                v.replace('_', ""),
                crate::naming::snake_case(&s).replace('_', ""),
            );
            var.starts_with(&res) || (var.len() >= 3 && res.ends_with(&var))
        }) || ["id", "uuid", "gid", "sid", "number", "key"]
            .iter()
            .any(|s| v == *s || v.ends_with(&format!("_{s}")));
        if names_item {
            return (
                Class::Update,
                "POST on an item path updates it (Stripe style)".into(),
            );
        }
        return (
            Class::Create,
            format!("POST under `{{{var}}}`, which scopes a collection rather than naming an item"),
        );
    }
    // Money moves when the action is a money verb (`/capture`, `/v1/refunds`), not when a noun
    // merely mentions it (`payoutSettings`, `addApplePayDomains`).
    let lead = action_words.first().map(String::as_str).unwrap_or("");
    let money = (action_words.len() == 1 && undo::MONEY.contains(&lead))
        || (undo::MONEY.contains(&lead) && !index.has_item_child(i));
    if money {
        return (
            Class::Execute(lead.to_string()),
            format!("POST on a money movement (`{lead}`)"),
        );
    }
    // Items beneath it make it a collection, whatever its name (`/deploy_keys`, `/check-runs`).
    if index.has_item_child(i) {
        return (
            Class::Create,
            "POST on a collection that has item paths beneath it".into(),
        );
    }
    // RPC style: the segment starts with a verb (`addFollowers`, `removeMembers`, `setMetric`).
    if let (Some(first), true) = (action_words.first(), action_words.len() > 1) {
        if RPC_VERBS.contains(&first.as_str()) || ACTION_VERBS.contains(&first.as_str()) {
            return (
                Class::Execute(first.clone()),
                format!("POST on an action named by a verb (`{first}`)"),
            );
        }
    }
    if let Some(verb) = last_words
        .iter()
        .find(|w| ACTION_VERBS.contains(&w.as_str()))
    {
        return (
            Class::Execute(verb.clone()),
            format!("POST on an action path (`{verb}`)"),
        );
    }
    if let Some(verb) = id_words
        .iter()
        .find(|w| undo::DISPATCH.contains(&w.as_str()))
    {
        return (
            Class::Execute(verb.clone()),
            format!("the operation id names an action (`{verb}`)"),
        );
    }
    if index.find(i, "GET").is_some() {
        return (
            Class::Create,
            "POST on a path that is also listed with GET: a collection".into(),
        );
    }
    match last_lit {
        Some(l) if l.ends_with('s') && !l.ends_with("ss") => (
            Class::Create,
            format!("POST on a plural noun (`{l}`): a collection"),
        ),
        Some(l) => (
            Class::Execute(l.to_string()),
            format!("POST on `{l}`, which is neither a collection nor an item"),
        ),
        None => (
            Class::Execute("post".into()),
            "POST on the root path".into(),
        ),
    }
}

/// Verbs that start RPC-style action segments (`addFollowers`, `removeMembers`).
const RPC_VERBS: [&str; 10] = [
    "add",
    "remove",
    "set",
    "unset",
    "insert",
    "delete",
    "duplicate",
    "instantiate",
    "reorder",
    "update",
];

/// The effect of an action verb: adding is a create, removing a delete, the rest execute.
fn action_effect(verb: &str) -> Effect {
    match verb {
        "add" | "insert" | "attach" | "assign" | "follow" | "star" | "subscribe" | "pin"
        | "watch" => Effect::Create,
        "remove" | "delete" | "detach" | "unassign" | "unfollow" | "unstar" | "unsubscribe"
        | "unpin" | "unwatch" => Effect::Delete,
        "set" | "unset" | "update" | "reorder" | "move" | "rename" => Effect::Update,
        _ => Effect::Execute,
    }
}
