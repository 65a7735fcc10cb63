//! Undo plans for HTTP capabilities.

use std::collections::{BTreeMap, BTreeSet};

use aifirst_capability::{Call, CapabilityRef, Confidence, Expr, Guard, Root, UndoKind, UndoPlan};
use serde_json::Value;

use super::paths::{key, last_literal, singular, Index, Seg};
use super::{bare, http, words, Class};
use crate::diag::push_token;
use crate::ir::{BodyShape, Capability, ParamLocation};

/// Verbs whose POST moves money.
pub(crate) const MONEY: [&str; 12] = [
    "capture",
    "refund",
    "refunds",
    "pay",
    "payout",
    "payouts",
    "transfer",
    "transfers",
    "charge",
    "charges",
    "payments",
    "finalize",
];
/// Verbs whose POST starts work or sends something out.
pub(crate) const DISPATCH: [&str; 17] = [
    "send",
    "resend",
    "notify",
    "dispatch",
    "dispatches",
    "trigger",
    "run",
    "rerun",
    "retry",
    "execute",
    "invoke",
    "deploy",
    "test",
    "ping",
    "redeliver",
    "submit",
    "generate",
];
/// Pairs of verbs that reverse each other (and any `x` / `unx`).
const PAIRS: [(&str, &str); 18] = [
    ("add", "remove"),
    ("insert", "delete"),
    ("lock", "unlock"),
    ("archive", "unarchive"),
    ("enable", "disable"),
    ("publish", "unpublish"),
    ("activate", "deactivate"),
    ("suspend", "unsuspend"),
    ("suspend", "resume"),
    ("pause", "resume"),
    ("start", "stop"),
    ("close", "reopen"),
    ("poweron", "poweroff"),
    ("attach", "detach"),
    ("hide", "unhide"),
    ("assign", "unassign"),
    ("block", "unblock"),
    ("follow", "unfollow"),
];

/// Shared, lazily filled state for planning every capability of one IR.
pub struct Planner<'a> {
    caps: &'a [Capability],
    index: &'a Index,
    classes: Vec<Class>,
    /// DELETEs of one item keyed by variables after their last literal (`DELETE
    /// /repos/{owner}/{repo}` under `repos`), by that literal; built on first use.
    deletes_by_literal: std::sync::OnceLock<BTreeMap<String, Vec<usize>>>,
}

impl<'a> Planner<'a> {
    pub fn new(caps: &'a [Capability], index: &'a Index, classes: Vec<Class>) -> Self {
        Planner {
            caps,
            index,
            classes,
            deletes_by_literal: std::sync::OnceLock::new(),
        }
    }

    pub fn plan(&self, i: usize) -> UndoPlan {
        let ctx = Ctx {
            caps: self.caps,
            index: self.index,
            classes: &self.classes,
            deletes_by_literal: &self.deletes_by_literal,
        };
        plan(i, &self.classes[i], &ctx)
    }
}

fn plan(i: usize, class: &Class, ctx: &Ctx<'_>) -> UndoPlan {
    match class {
        Class::Read => with(
            bare(UndoKind::None, Confidence::High),
            "reads only: nothing to undo",
        ),
        Class::ReadOnlyPost => with(
            bare(UndoKind::None, Confidence::Medium),
            "read-only by its name; nothing to undo if that is right",
        ),
        Class::Create => ctx.create(i),
        Class::ToggleOn => ctx.toggle(i, "DELETE", Guard::SnapshotAbsent),
        Class::Update => ctx.update(i),
        Class::Delete => ctx.delete(i),
        Class::Execute(verb) => ctx.execute(i, verb),
    }
}

fn with(mut p: UndoPlan, evidence: impl Into<String>) -> UndoPlan {
    p.evidence.push(evidence.into());
    p
}

fn irreversible(reason: impl Into<String>, c: Confidence) -> UndoPlan {
    UndoPlan::irreversible(reason, c)
}

/// [`irreversible`], boxed for `Err` positions.
fn nope(reason: impl Into<String>, c: Confidence) -> Box<UndoPlan> {
    Box::new(irreversible(reason, c))
}

fn cref(cap: &Capability) -> CapabilityRef {
    CapabilityRef {
        name: cap.name.clone(),
        operation_id: cap.operation_id.clone(),
    }
}

/// Top-level property names of a schema (through `allOf` and local `$defs` references);
/// the flag says the schema is an array.
pub(crate) fn top_level_props(schema: &Value) -> (bool, BTreeSet<String>) {
    let (is_array, props) = top_level_schemas(schema);
    (is_array, props.into_keys().map(str::to_string).collect())
}

/// Like [`top_level_props`], with each property's schema.
pub(crate) fn top_level_schemas(schema: &Value) -> (bool, BTreeMap<&str, &Value>) {
    fn walk<'v>(
        v: &'v Value,
        root: &'v Value,
        out: &mut BTreeMap<&'v str, &'v Value>,
        depth: usize,
    ) {
        if depth > 8 {
            return;
        }
        if let Some(r) = v.get("$ref").and_then(Value::as_str) {
            if let Some(name) = r.strip_prefix("#/$defs/") {
                if let Some(t) = root.get("$defs").and_then(|d| d.get(name)) {
                    walk(t, root, out, depth + 1);
                }
            }
        }
        if let Some(p) = v.get("properties").and_then(Value::as_object) {
            for (k, s) in p {
                out.entry(k.as_str()).or_insert(s);
            }
        }
        for m in v
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            walk(m, root, out, depth + 1);
        }
    }
    let is_array = schema.get("type").is_some_and(|t| {
        t == "array" || t.as_array().is_some_and(|a| a.iter().any(|x| x == "array"))
    });
    let mut out = BTreeMap::new();
    if !is_array {
        walk(schema, schema, &mut out, 0);
    }
    (is_array, out)
}

/// The scalar fields of a create's response that can name the new item, and the path prefix they sit
/// under: `{"domain": {"name": …}}` (DigitalOcean, Hetzner) gives the fields of `domain` and
/// `domain.`. The flag says the response is a list.
fn response_fields(v: Option<&Value>) -> Option<(bool, BTreeSet<String>, String)> {
    let (is_array, props) = top_level_schemas(v?);
    if is_array {
        return Some((true, BTreeSet::new(), String::new()));
    }
    let scalar = |s: &Value| types(s).is_none_or(|t| !t.contains("object") && !t.contains("array"));
    let wrappers: Vec<(&str, &Value)> = props
        .iter()
        .map(|(k, s)| (*k, *s))
        .filter(|(k, s)| {
            !["links", "meta", "_links", "pagination", "action", "actions"].contains(k)
                && types(s).is_some_and(|t| t.contains("object"))
                && !top_level_schemas(s).1.is_empty()
        })
        .collect();
    // A wrapper stands beside at most a couple of informational scalars (`message`,
    // `root_password`); a full resource (a campaign with a nested `created_by`) has many.
    let scalars = props.values().filter(|s| scalar(s)).count();
    if !props.contains_key("id") && scalars <= 2 {
        if let [(name, inner)] = wrappers[..] {
            let fields = top_level_schemas(inner)
                .1
                .into_iter()
                .filter(|(_, s)| scalar(s))
                .map(|(k, _)| k.to_string())
                .collect();
            return Some((false, fields, format!("{name}.")));
        }
    }
    let fields = props
        .into_iter()
        .filter(|(_, s)| scalar(s))
        .map(|(k, _)| k.to_string())
        .collect();
    Some((false, fields, String::new()))
}

fn out_props(v: Option<&Value>) -> Option<(bool, BTreeSet<String>)> {
    v.map(top_level_props)
}

/// The JSON types a schema allows, when it says (`null` left out).
fn types(schema: &Value) -> Option<BTreeSet<String>> {
    // No `type` of its own: the union of its alternatives' (`oneOf: [string, integer]`), when
    // every one says.
    if schema.get("type").is_none() {
        let branches = schema
            .get("oneOf")
            .or_else(|| schema.get("anyOf"))
            .and_then(Value::as_array)?;
        let mut all = BTreeSet::new();
        for b in branches {
            b.get("type")?;
            all.extend(types(b)?);
        }
        return (!all.is_empty()).then_some(all);
    }
    let t = schema.get("type")?;
    let mut out: BTreeSet<String> = match t {
        Value::String(s) => [s.clone()].into(),
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => return None,
    };
    out.remove("null");
    if out.contains("number") {
        out.insert("integer".into());
    }
    Some(out)
}

/// How well a snapshot value fits what the target accepts.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
enum Fit {
    /// Same shape as far as the schemas say.
    Good,
    /// Same top-level type, but nested fields or enum values the target may reject.
    Doubtful,
    /// A different type altogether (`enforce_admins`: object in the GET, boolean in the PUT).
    Wrong,
}

fn fit(have: &Value, want: &Value, depth: usize) -> Fit {
    if depth > 4 {
        return Fit::Good;
    }
    if let (Some(w), Some(h)) = (types(want), types(have)) {
        if w.is_disjoint(&h) {
            return Fit::Wrong;
        }
    }
    let mut worst = Fit::Good;
    // Values the snapshot may hold that the target does not accept.
    if let (Some(Value::Array(we)), Some(Value::Array(he))) = (want.get("enum"), have.get("enum")) {
        if he.iter().any(|v| !v.is_null() && !we.contains(v)) {
            worst = Fit::Doubtful;
        }
    }
    let (hp, wp) = (top_level_schemas(have).1, top_level_schemas(want).1);
    // The target expects named fields; the snapshot's shape is not described: unknown fit.
    if hp.is_empty() && !wp.is_empty() && types(have).is_none_or(|t| t.contains("object")) {
        worst = worst.max(Fit::Doubtful);
    }
    if !hp.is_empty() && !wp.is_empty() {
        for (k, hs) in &hp {
            let nested = match wp.get(k) {
                None => Fit::Doubtful,
                Some(ws) => fit(hs, ws, depth + 1).min(Fit::Doubtful),
            };
            worst = worst.max(nested);
        }
    }
    if let (Some(hi), Some(wi)) = (have.get("items"), want.get("items")) {
        worst = worst.max(fit(hi, wi, depth + 1).min(Fit::Doubtful));
    }
    worst
}

/// Fields of `target`'s body whose snapshot value (from `get`'s output) does not fit:
/// (wrong type, doubtful).
fn misfits(
    target: &Capability,
    snapshot: Option<&Value>,
    fields: &[(String, String)],
) -> (Vec<String>, Vec<String>) {
    let Some(out) = snapshot else {
        return (Vec::new(), Vec::new());
    };
    let (_, snap) = top_level_schemas(out);
    let input = target.input_schema.get("properties");
    let (mut wrong, mut doubtful) = (Vec::new(), Vec::new());
    for (prop, field) in fields {
        let (Some(want), Some(have)) = (input.and_then(|i| i.get(prop)), snap.get(field.as_str()))
        else {
            continue;
        };
        match fit(have, want, 0) {
            Fit::Good => {}
            Fit::Doubtful => doubtful.push(field.clone()),
            Fit::Wrong => wrong.push(field.clone()),
        }
    }
    (wrong, doubtful)
}

/// The last path variable, when the path ends in one (`/pets/{petId}` → `petId`).
fn last_var(cap: &Capability) -> Option<&str> {
    http(cap)
        .path
        .rsplit('/')
        .next()?
        .strip_prefix('{')?
        .strip_suffix('}')
}

/// `true` when a PUT on this item can bring it into being: the client names the item (a name-like
/// last path variable: `environment_name`, `username`, `key`, `{owner}/{repo}`), or the PUT says it
/// may answer `201 Created`.
fn put_creates(cap: &Capability) -> bool {
    if super::http(cap).hints.statuses.iter().any(|s| s == "201") {
        return true;
    }
    let Some(var) = last_var(cap) else {
        return false;
    };
    let v = crate::naming::snake_case(var);
    const NAMED: [&str; 16] = [
        "name", "slug", "key", "username", "login", "email", "path", "ref", "repo", "owner", "org",
        "branch", "tag", "label", "sha", "code",
    ];
    !server_assigned_id(cap)
        && NAMED
            .iter()
            .any(|n| v == *n || v.ends_with(&format!("_{n}")))
}

/// `true` when the item's id (the last path variable) is assigned by the server (an integer), so a
/// PUT on the item can only update it, never bring it back.
fn server_assigned_id(cap: &Capability) -> bool {
    let Some(var) = last_var(cap) else {
        return false;
    };
    let Some(prop) = path_prop(cap, var) else {
        return false;
    };
    cap.input_schema
        .get("properties")
        .and_then(|p| p.get(prop))
        .and_then(types)
        .is_some_and(|t| t.contains("integer"))
}

/// `selected_repository_ids` / `team_ids` → `$snapshot.repositories[*].id` when the snapshot has a
/// list of objects with an `id` whose name starts like the field's stem.
fn id_projection(field: &str, snapshot: &Value) -> Option<Expr> {
    let base = field.strip_suffix("_ids")?;
    let base = base.strip_prefix("selected_").unwrap_or(base);
    let stem: String = base
        .chars()
        .take(base.len().saturating_sub(1).max(3))
        .collect();
    let (_, props) = top_level_schemas(snapshot);
    let (name, _) = props.iter().find(|(name, schema)| {
        name.starts_with(&stem)
            && types(schema).is_some_and(|t| t.contains("array"))
            && schema
                .get("items")
                .is_some_and(|it| top_level_props(it).1.contains("id"))
    })?;
    Some(Expr::fields(Root::Snapshot, &[name, "id"]).ok()?.each_at(0))
}

/// The scalar inside an object snapshot field that the target takes instead of the object:
/// `assignee` {login, id, …} → `$snapshot.assignee.login` where a login string is wanted.
fn scalar_projection(field: &str, have: &Value, want: &Value) -> Option<Expr> {
    let wanted = types(want)?;
    if wanted.contains("object") || wanted.contains("array") {
        return None;
    }
    let (_, inner) = top_level_schemas(have);
    let usable = |k: &&str| {
        inner
            .get(k)
            .and_then(|s| types(s))
            .is_some_and(|t| !t.is_disjoint(&wanted))
    };
    // The field the target's own text names first (`The \`number\` of the milestone`), then the
    // usual naming fields in order.
    let mut text = String::new();
    let mut collect = |v: &Value| {
        if let Some(d) = v.get("description").and_then(Value::as_str) {
            text.push_str(&d.to_ascii_lowercase());
            text.push(' ');
        }
    };
    collect(want);
    for k in ["oneOf", "anyOf"] {
        want.get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .for_each(&mut collect);
    }
    let named = |k: &&str| {
        text.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .any(|w| w == *k)
    };
    const NAMING: [&str; 7] = ["login", "ref", "name", "slug", "key", "id", "number"];
    NAMING
        .iter()
        .find(|k| named(k) && usable(k))
        .or_else(|| NAMING.iter().find(|k| usable(k)))
        .and_then(|k| Expr::fields(Root::Snapshot, &[field, k]).ok())
}

/// A schema that says it is a string, number, integer or boolean.
fn scalar_schema(s: &Value) -> bool {
    types(s).is_some_and(|t| !t.is_empty() && !t.contains("object") && !t.contains("array"))
}

/// `$result.PREFIXname`: a field of the response, under the wrapper `prefix` (`data.`) if any.
fn result_expr(prefix: &str, name: &str) -> Option<Expr> {
    Expr::path_of(Root::Result, &format!("{prefix}{name}")).ok()
}

/// `true` when a GET tells presence by its status alone (204 / 404), not by a body.
fn presence_only(get: &Capability) -> bool {
    get.output_schema.is_none() && super::http(get).hints.statuses.iter().any(|s| s == "204")
}

fn normalised(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Whether an API will not give `field` back: it names a secret (the one list, shared with the
/// runtime's redactor) or holds something encrypted.
fn secret_like(field: &str) -> bool {
    aifirst_capability::secret::mentions_secret(field)
        || crate::naming::snake_case(field).contains("encrypted")
}

/// The input property of a path parameter named `var`.
fn path_prop<'a>(cap: &'a Capability, var: &str) -> Option<&'a str> {
    http(cap)
        .params
        .iter()
        .find(|p| p.location == ParamLocation::Path && p.name == var)
        .map(|p| p.property.as_str())
}

/// Body fields as (input property, field name), or the wrapping property.
enum Body<'a> {
    None,
    Fields(&'a [(String, String)]),
    Wrapped(&'a str),
}

fn body(cap: &Capability) -> Body<'_> {
    match &http(cap).body {
        None => Body::None,
        Some(b) => match &b.shape {
            BodyShape::Flattened { fields } => Body::Fields(fields),
            BodyShape::Wrapped { property } => Body::Wrapped(property),
        },
    }
}

fn required(cap: &Capability) -> BTreeSet<String> {
    cap.input_schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Body arguments that write a snapshot back, how faithfully, and why.
struct WriteBack {
    args: BTreeMap<String, Expr>,
    confidence: Confidence,
    notes: Vec<String>,
}

/// Arguments of a compensating call, how sure we are of them, and why.
type Binding = (BTreeMap<String, Expr>, Confidence, Vec<String>);

struct Ctx<'a> {
    caps: &'a [Capability],
    index: &'a Index,
    /// Each capability's class, computed once.
    classes: &'a [Class],
    deletes_by_literal: &'a std::sync::OnceLock<BTreeMap<String, Vec<usize>>>,
}

impl Ctx<'_> {
    /// An output schema, parsed when asked for (they are small once the budget applied; keeping
    /// every one parsed was a fifth of Microsoft Graph's memory).
    fn output(&self, i: usize) -> Option<Value> {
        self.caps[i].output_schema_value()
    }

    fn vars(&self, i: usize) -> Vec<&str> {
        self.index.segs[i]
            .iter()
            .filter_map(|s| match s {
                Seg::Var(v) => Some(v.as_str()),
                Seg::Lit(_) => None,
            })
            .collect()
    }

    /// Path arguments of `to` taken from `from`'s arguments, variable by variable in order
    /// (the two paths have the same shape, or `to`'s is a prefix of `from`'s).
    fn positional(&self, from: usize, to: usize) -> Option<BTreeMap<String, Expr>> {
        let (fv, tv) = (self.vars(from), self.vars(to));
        if tv.len() > fv.len() {
            return None;
        }
        let mut args = BTreeMap::new();
        for (f, t) in fv.iter().zip(tv.iter()) {
            let fp = path_prop(&self.caps[from], f)?;
            let tp = path_prop(&self.caps[to], t)?;
            args.insert(tp.to_string(), Expr::args(fp));
        }
        Some(args)
    }

    fn create(&self, i: usize) -> UndoPlan {
        if let Some(p) = self.set_pair(i) {
            return p;
        }
        let out = response_fields(self.output(i).as_ref());
        if matches!(out, Some((true, _, _))) {
            return irreversible(
                "the response is a list: the call may create several items",
                Confidence::Medium,
            );
        }
        // Created at its own path (`POST /repositories/{workspace}/{repo_slug}`): DELETE the same path.
        let updated_here =
            self.index.find(i, "PUT").is_some() || self.index.find(i, "PATCH").is_some();
        if matches!(self.index.segs[i].last(), Some(Seg::Var(_))) && updated_here {
            if let Some(d) = self.index.find(i, "DELETE") {
                if let Some(mut args) = self.positional(i, d) {
                    let del = http(&self.caps[d]).path.clone();
                    // A POST to an item path may make a child with a name the server chooses
                    // (Jupyter: `POST /api/contents/{path}` → `d/untitled.txt`). When the response
                    // names the item, undo deletes what the response names — never the path the
                    // call was made on, which may be the folder it was made in.
                    let last = self.vars(d).last().map(|v| v.to_string());
                    let named = last.as_deref().and_then(|v| {
                        let (_, fields, prefix) = out.as_ref()?;
                        let l = v.to_ascii_lowercase();
                        let f = fields
                            .iter()
                            .find(|f| *f == v || normalised(f) == normalised(v))
                            .or_else(|| {
                                // `folder_id` on the path, the item's `id` in the response.
                                (l.ends_with("id") && fields.contains("id"))
                                    .then(|| fields.get("id"))
                                    .flatten()
                            })?;
                        Some((path_prop(&self.caps[d], v)?, result_expr(prefix, f)?, f))
                    });
                    if let Some((prop, expr, field)) = named {
                        args.insert(prop.to_string(), expr);
                        let mut p = bare(UndoKind::Inverse, Confidence::High);
                        p.target = Some(cref(&self.caps[d]));
                        p.args = args;
                        p.evidence.push(format!(
                            "DELETE {del} removes the item the response names (`{field}`): what \
                             the call created, whether at its own path or inside it, never the \
                             path it was called on"
                        ));
                        return p;
                    }
                    let mut p = bare(UndoKind::Inverse, Confidence::Medium);
                    p.target = Some(cref(&self.caps[d]));
                    p.args = args;
                    p.evidence.push(format!(
                        "assumed created at its own path; DELETE {del} removes it"
                    ));
                    p.evidence.push(
                        "the response does not say what was created: if the POST makes a child \
                         inside that path instead, this plan is wrong"
                            .into(),
                    );
                    return p;
                }
            }
            return irreversible("no DELETE on the path it creates", Confidence::Medium);
        }
        let item_key = format!("{}/{{}}", self.index.keys[i]);
        let mut candidates: Vec<(usize, Confidence, String)> = Vec::new();
        if let Some(d) = self.index.at(&item_key, "DELETE") {
            candidates.push((
                d,
                Confidence::High,
                format!("DELETE {} removes the item", http(&self.caps[d]).path),
            ));
        } else {
            // The item may live elsewhere: same literal segments, one more variable at the end.
            let mine = super::paths::literals(&self.index.segs[i]);
            if let [d] = *self.index.item_deletes_with_literals(&mine) {
                candidates.push((
                    d,
                    Confidence::Medium,
                    format!(
                        "DELETE {} names the same resource",
                        http(&self.caps[d]).path
                    ),
                ));
            }
        }
        if candidates.is_empty() {
            if let Some(p) = self.delete_elsewhere(i) {
                return p;
            }
        }
        let mut failures = Vec::new();
        for (d, base, why) in candidates {
            let prefix = out.as_ref().map(|o| o.2.as_str()).unwrap_or("");
            match self.bind_created(i, d, base, out.as_ref().map(|o| &o.1), prefix) {
                Ok((args, conf, how)) => {
                    let mut p = bare(UndoKind::Inverse, conf.min(base));
                    p.target = Some(cref(&self.caps[d]));
                    p.args = args;
                    p.evidence.push(why);
                    p.evidence.extend(how);
                    return p;
                }
                Err(e) => failures.push(format!("{why}, but {e}")),
            }
        }
        let mut p = irreversible(
            failures
                .first()
                .cloned()
                .unwrap_or_else(|| "no DELETE found that removes what this creates".into()),
            Confidence::Medium,
        );
        p.evidence.extend(failures);
        p
    }

    /// A create whose DELETE lives on another path keyed by fields of what it creates:
    /// `POST /user/repos` → `DELETE /repos/{owner}/{repo}` with `owner` = `$result.owner.login`
    /// and `repo` = `$result.name`. The DELETE's path ends in variables after the same collection
    /// name, and every variable binds from the response: a field of its name, the resource's
    /// own `name` (or `id`) for the variable that names the resource, or the naming field of an
    /// object of its name. Exactly one such DELETE, or none is proposed.
    fn delete_elsewhere(&self, i: usize) -> Option<UndoPlan> {
        let collection = last_literal(&self.index.segs[i])?.to_string();
        let by = self.deletes_by_literal.get_or_init(|| {
            let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            for (d, c) in self.caps.iter().enumerate() {
                if http(c).method != "DELETE" {
                    continue;
                }
                let segs = &self.index.segs[d];
                let Some(pos) = segs.iter().rposition(|s| matches!(s, Seg::Lit(_))) else {
                    continue;
                };
                if pos + 1 < segs.len() {
                    if let Some(Seg::Lit(l)) = segs.get(pos) {
                        m.entry(l.clone()).or_default().push(d);
                    }
                }
            }
            m
        });
        let schema = self.output(i)?;
        let (is_array, props) = top_level_schemas(&schema);
        if is_array {
            return None;
        }
        let resource = singular(&collection);
        let bind = |v: &str| -> Option<(Expr, String)> {
            let l = v.to_ascii_lowercase();
            // A field that may be null (a source not attached to a customer) names nothing.
            let nullable = |s: &Value| {
                s.get("type").is_some_and(|t| {
                    t == "null" || t.as_array().is_some_and(|a| a.iter().any(|x| x == "null"))
                })
            };
            if let Some((k, _)) = props.iter().find(|(k, s)| {
                (**k == v || normalised(k) == normalised(v)) && scalar_schema(s) && !nullable(s)
            }) {
                return Some((
                    Expr::field_of(Root::Result, k),
                    format!("`{v}` = response `{k}`"),
                ));
            }
            if normalised(v) == normalised(&resource) {
                let field = if l.ends_with("id") { "id" } else { "name" };
                if props.get(field).is_some_and(|s| scalar_schema(s)) {
                    return Some((
                        Expr::field_of(Root::Result, field),
                        format!("`{v}` names the resource: response `{field}`"),
                    ));
                }
            }
            let (k, obj) = props.iter().find(|(k, s)| {
                (**k == v || normalised(k) == normalised(v)) && !scalar_schema(s) && !nullable(s)
            })?;
            let (_, inner) = top_level_schemas(obj);
            let sub = ["login", "name", "slug", "key", "id"]
                .into_iter()
                .find(|f| inner.get(f).is_some_and(|s| scalar_schema(s)))?;
            Some((
                Expr::fields(Root::Result, &[k, sub]).ok()?,
                format!("`{v}` = response `{k}.{sub}`"),
            ))
        };
        // A body of alternative modes (add, move in, transfer in: Vercel's domains) creates in
        // some modes only; what the DELETE then removes was not made by this call.
        let c = &self.caps[i];
        let modes = |v: &Value| v.get("oneOf").is_some() || v.get("anyOf").is_some();
        let moded = modes(&c.input_schema)
            || match body(c) {
                Body::Wrapped(p) => c
                    .input_schema
                    .get("properties")
                    .and_then(|ps| ps.get(p))
                    .is_some_and(modes),
                _ => false,
            };
        if moded {
            return None;
        }
        let mine: BTreeSet<&str> = props.keys().copied().collect();
        let mut found: Vec<(usize, BTreeMap<String, Expr>, Vec<String>)> = Vec::new();
        for &d in by.get(&collection)? {
            if d == i {
                continue;
            }
            // The same kind of thing: a GET on the DELETE's own path returns what the create
            // returned (most of the same fields), not merely a collection of the same name
            // elsewhere in the API (Stripe's billing portal and terminal `configurations`).
            let Some(g) = self.index.find(d, "GET") else {
                continue;
            };
            let Some(read) = self.output(g) else {
                continue;
            };
            let theirs = top_level_props(&read).1;
            let both = theirs.iter().filter(|k| mine.contains(k.as_str())).count();
            let either = mine.len() + theirs.len() - both;
            if both < 3 || both * 5 < either * 4 {
                continue;
            }
            let mut args = BTreeMap::new();
            let mut how = Vec::new();
            let ok = self.vars(d).iter().all(|v| {
                let Some(prop) = path_prop(&self.caps[d], v) else {
                    return false;
                };
                // A variable the create was called with keeps its value (`{org}`).
                if let Some(cp) = path_prop(&self.caps[i], v) {
                    args.insert(prop.to_string(), Expr::args(cp));
                    return true;
                }
                match bind(v) {
                    Some((e, why)) => {
                        args.insert(prop.to_string(), e);
                        how.push(why);
                        true
                    }
                    None => false,
                }
            });
            if ok {
                found.push((d, args, how));
            }
        }
        let [(d, args, how)] = <[_; 1]>::try_from(found).ok()?;
        let mut p = bare(UndoKind::Inverse, Confidence::Medium);
        p.target = Some(cref(&self.caps[d]));
        p.args = args;
        p.evidence.push(format!(
            "DELETE {} removes a `{resource}` and is keyed by fields of what this returns",
            http(&self.caps[d]).path
        ));
        p.evidence.push(format!(
            "GET {} returns the same kind of object as this create",
            http(&self.caps[d]).path
        ));
        p.evidence.extend(how);
        Some(p)
    }

    /// Arguments of DELETE `d` that removes what create `i` made.
    fn bind_created(
        &self,
        i: usize,
        d: usize,
        base: Confidence,
        out: Option<&BTreeSet<String>>,
        prefix: &str,
    ) -> Result<Binding, String> {
        let (c, del) = (&self.caps[i], &self.caps[d]);
        let dvars = self.vars(d);
        let Some((id_var, others)) = dvars.split_last() else {
            return Err("it has no path variable".into());
        };
        let mut args = BTreeMap::new();
        let mut how = Vec::new();
        for v in others {
            let prop = path_prop(del, v).ok_or("its path parameters are not declared")?;
            if let Some(cp) = path_prop(c, v) {
                args.insert(prop.to_string(), Expr::args(cp));
            } else if out.is_some_and(|o| o.contains(*v)) {
                args.insert(
                    prop.to_string(),
                    result_expr(prefix, v)
                        .ok_or_else(|| format!("`{v}` is not a plain field name"))?,
                );
            } else {
                return Err(format!("`{v}` cannot be bound"));
            }
        }
        let id_prop = path_prop(del, id_var).ok_or("its path parameters are not declared")?;
        // 1. OpenAPI links on the create response.
        for (target, params) in &super::http(c).hints.links {
            let target_key = self
                .caps
                .iter()
                .position(|x| x.operation_id.as_deref() == Some(target))
                .map(|j| self.index.keys[j].clone());
            let expr = params.get(*id_var).or_else(|| {
                (target_key.as_deref() == Some(self.index.keys[d].as_str()) && params.len() == 1)
                    .then(|| params.values().next())
                    .flatten()
            });
            if let Some(e) = expr {
                args.insert(id_prop.to_string(), e.clone());
                how.push(format!(
                    "`{id_var}` from the response's OpenAPI link `{target}` ({e})"
                ));
                return Ok((args, Confidence::High, how));
            }
        }
        // 2. The caller chose the id: it is one of the create's own arguments.
        let own = c.input_schema.get("properties").and_then(Value::as_object);
        if let Some(k) = own.and_then(|p| {
            p.keys()
                .find(|k| *k == id_var || normalised(k) == normalised(id_var))
        }) {
            if !out.is_some_and(|o| o.contains(*id_var)) {
                args.insert(id_prop.to_string(), Expr::args(k));
                how.push(format!(
                    "`{id_var}` is chosen by the caller (argument `{k}`)"
                ));
                return Ok((args, Confidence::High, how));
            }
        }
        // 3. The response names the id.
        let lower = id_var.to_ascii_lowercase();
        let pick = |name: &str, conf: Confidence, why: &str| {
            Some((
                result_expr(prefix, name)?,
                conf,
                format!("`{id_var}` = response `{name}` ({why})"),
            ))
        };
        // The created resource, by its collection's name (`pets` → `pet`).
        let resource = last_literal(&self.index.segs[i])
            .map(singular)
            .unwrap_or_default();
        let bound = out.and_then(|o| {
            // Ids and numbers are canonical; other fields (a `ref`, a `name`) may be formatted
            // differently in the path than in the body, so an exact match is only medium.
            let canonical = lower == "id"
                || lower.ends_with("id")
                || lower.contains("number")
                || lower.ends_with("uuid");
            let same_name = if canonical {
                Confidence::High
            } else {
                Confidence::Medium
            };
            if o.contains(*id_var) {
                return pick(id_var, same_name, "same name");
            }
            if let Some(n) = o.iter().find(|n| normalised(n) == normalised(id_var)) {
                return pick(n, same_name, "same name, other spelling");
            }
            let on_item = base == Confidence::High;
            let strong = if on_item {
                Confidence::High
            } else {
                Confidence::Medium
            };
            if (lower == "id" || lower.ends_with("id")) && o.contains("id") {
                // `petId` under `/pets`, `hook_id` under `/hooks`: the id of this resource. A
                // qualified id (`encoded_id`, `external_id`) may be another identifier.
                let qualifier = normalised(
                    id_var
                        .strip_suffix("Id")
                        .or_else(|| id_var.strip_suffix("_id"))
                        .unwrap_or(""),
                );
                let resource = normalised(&resource);
                let names_resource = qualifier.is_empty()
                    || (!resource.is_empty()
                        && (qualifier.ends_with(&resource) || resource.ends_with(&qualifier)));
                let conf = if names_resource {
                    strong
                } else {
                    Confidence::Medium
                };
                return pick("id", conf, "the item's id");
            }
            // Stripe names the variable after the resource: `/v1/customers/{customer}`.
            if !resource.is_empty()
                && normalised(&resource) == normalised(id_var)
                && o.contains("id")
            {
                return pick("id", strong, "the variable names the resource; its id");
            }
            if lower.contains("number") && o.contains("number") {
                return pick("number", strong, "the item's number");
            }
            for suffix in [
                "name", "slug", "key", "sid", "uuid", "code", "login", "username",
            ] {
                if lower.ends_with(suffix) && o.contains(suffix) {
                    return pick(suffix, Confidence::Medium, "matching suffix");
                }
            }
            None
        });
        if let Some((expr, conf, why)) = bound {
            args.insert(id_prop.to_string(), expr);
            how.push(why);
            return Ok((args, conf, how));
        }
        if super::http(c).hints.location_header {
            args.insert(id_prop.to_string(), Expr::location_id());
            how.push(format!("`{id_var}` = last segment of the Location header"));
            return Ok((args, Confidence::Low, how));
        }
        Err(format!(
            "the response does not say the new item's `{id_var}`"
        ))
    }

    /// Add/remove pairs: POST and DELETE on the same path taking the same body fields
    /// (add assignees / remove assignees). Reverses with the same arguments.
    fn set_pair(&self, i: usize) -> Option<UndoPlan> {
        // Sets are collections (`/assignees`, `/me/albums`), not items.
        if !matches!(self.index.segs[i].last(), Some(Seg::Lit(_))) {
            return None;
        }
        let other = if http(&self.caps[i]).method == "DELETE" {
            ["POST", "PUT"]
                .into_iter()
                .find_map(|m| self.index.find(i, m))?
        } else {
            self.index.find(i, "DELETE")?
        };
        let j = other;
        // The adding side must add something (not check a token that shares the DELETE's fields).
        let adder = if http(&self.caps[i]).method == "DELETE" {
            j
        } else {
            i
        };
        let class = self.classes[adder].clone();
        if http(&self.caps[adder]).method == "POST" && class != Class::Create {
            return None;
        }
        // What names the set: body fields and query parameters, by their wire names.
        let members = |k: usize| -> Option<BTreeMap<String, String>> {
            let mut m = BTreeMap::new();
            match body(&self.caps[k]) {
                Body::Fields(f) => m.extend(f.iter().map(|(p, n)| (n.clone(), p.clone()))),
                Body::Wrapped(p) => {
                    m.insert("\u{0}body".into(), p.to_string());
                }
                Body::None => {}
            }
            for p in http(&self.caps[k])
                .params
                .iter()
                .filter(|p| p.location == ParamLocation::Query)
            {
                m.insert(p.name.clone(), p.property.clone());
            }
            Some(m)
        };
        let (mine, theirs) = (members(i)?, members(j)?);
        if mine.is_empty() || mine.keys().ne(theirs.keys()) {
            return None;
        }
        // The set's items must be named: a list (`ids`, `assignees`, `droplet_ids`), not one scalar
        // identifier (`?username=`), which names a resource that PUT updates and DELETE destroys.
        let listed = mine.iter().any(|(name, prop)| {
            let schema = self.caps[i]
                .input_schema
                .get("properties")
                .and_then(|p| p.get(prop));
            schema.and_then(types).is_some_and(|t| t.contains("array"))
                || (name.ends_with('s') && !name.ends_with("ss"))
                || name.starts_with('\u{0}')
        });
        if !listed {
            return None;
        }
        let mut args = self.positional(i, j)?;
        for (name, their_prop) in &theirs {
            args.insert(their_prop.clone(), Expr::args(mine.get(name)?));
        }
        let other = http(&self.caps[j]).method.as_str();
        let mut p = bare(UndoKind::Inverse, Confidence::Medium);
        p.target = Some(cref(&self.caps[j]));
        p.args = args;
        p.evidence.push(format!(
            "{other} {} takes the same items: it reverses this for exactly those",
            http(&self.caps[j]).path
        ));
        p.evidence.push(
            "items that were already there (or already gone) are reversed by undo too".into(),
        );
        Some(p)
    }

    /// A toggle reversed by `method` on the same path; `guard` says when the reversal applies.
    fn toggle(&self, i: usize, method: &str, guard: Guard) -> UndoPlan {
        let Some(j) = self.index.find(i, method) else {
            return irreversible(format!("no {method} on the same path"), Confidence::Medium);
        };
        let Some(args) = self.positional(i, j) else {
            return irreversible("path parameters are not declared", Confidence::Low);
        };
        let mut p = bare(UndoKind::Inverse, Confidence::High);
        p.target = Some(cref(&self.caps[j]));
        p.args = args;
        p.evidence
            .push(format!("{method} {} reverses it", http(&self.caps[j]).path));
        match self.index.find(i, "GET") {
            Some(g) if presence_only(&self.caps[g]) => {
                p.snapshot = Some(cref(&self.caps[g]));
                p.snapshot_args = self.positional(i, g).unwrap_or_default();
                p.guard = Some(guard);
                p.evidence.push(format!(
                    "GET {} tells by its status whether it was there, so undo only reverses a real change",
                    http(&self.caps[g]).path
                ));
            }
            Some(g) => {
                p.confidence = Confidence::Medium;
                p.evidence.push(format!(
                    "GET {} returns a state, not presence: undo reverses even if nothing changed",
                    http(&self.caps[g]).path
                ));
            }
            None => {
                p.confidence = Confidence::Medium;
                p.evidence.push(
                    "no GET tells the state before: undo reverses even if nothing changed".into(),
                );
            }
        }
        p
    }

    /// The body arguments that write a snapshot back through `target`, or why that cannot work.
    /// Secrets are never written back: APIs return them masked or not at all.
    fn write_back(
        &self,
        target: usize,
        get: usize,
        readable: &BTreeSet<String>,
    ) -> Result<WriteBack, Box<UndoPlan>> {
        let t = &self.caps[target];
        let method = http(t).method.as_str();
        let mut wb = WriteBack {
            args: BTreeMap::new(),
            confidence: Confidence::High,
            notes: Vec::new(),
        };
        let fields = match body(t) {
            Body::None => return Ok(wb),
            Body::Wrapped(prop) => {
                wb.args.insert(prop.to_string(), Expr::snapshot());
                wb.confidence = Confidence::Low;
                wb.notes.push(
                    "the body's fields are not known; the whole snapshot is written back".into(),
                );
                return Ok(wb);
            }
            Body::Fields(fields) => fields,
        };
        let req = required(t);
        if let Some((_, secret)) = fields
            .iter()
            .find(|(p, f)| secret_like(f) && req.contains(p))
        {
            let mut ir = irreversible(
                format!("needs `{secret}`, a secret the API never returns in clear, so the old value cannot be restored"),
                Confidence::High,
            );
            ir.evidence.push(format!(
                "`{secret}` is required by {method} {}",
                http(t).path
            ));
            return Err(Box::new(ir));
        }
        // `selected_repository_ids` written back from the snapshot's `repositories[*].id`.
        let snapshot_owned = self.output(get);
        let snapshot_schema = snapshot_owned.as_ref();
        let projections: BTreeMap<&str, Expr> = fields
            .iter()
            .filter(|(_, f)| !readable.contains(f))
            .filter_map(|(_, f)| Some((f.as_str(), id_projection(f, snapshot_schema?)?)))
            .collect();
        let restorable: Vec<(String, String)> = fields
            .iter()
            .filter(|(_, f)| readable.contains(f) && !secret_like(f))
            .cloned()
            .collect();
        if let Some((_, f)) = fields.iter().find(|(p, f)| {
            req.contains(p) && !readable.contains(f) && !projections.contains_key(f.as_str())
        }) {
            return Err(nope(
                format!("needs `{f}`, which the GET does not return"),
                Confidence::High,
            ));
        }
        if !projections.is_empty() {
            for (prop, field) in fields {
                if let Some(expr) = projections.get(field.as_str()) {
                    wb.args.insert(prop.clone(), expr.clone());
                    wb.notes.push(format!("`{field}` = {expr}"));
                }
            }
            wb.confidence = Confidence::Medium;
        }
        let (wrong, doubtful) = misfits(t, snapshot_schema, &restorable);
        // An object in the GET where the target takes a scalar (`assignee` object → `login`,
        // `base` object → `ref`): written back through the field that names it.
        let mut through: BTreeMap<String, Expr> = BTreeMap::new();
        for f in &wrong {
            let want = fields
                .iter()
                .find(|(_, w)| w == f)
                .and_then(|(p, _)| t.input_schema.get("properties")?.get(p));
            let have =
                snapshot_schema.and_then(|s| top_level_schemas(s).1.get(f.as_str()).copied());
            if let (Some(want), Some(have)) = (want, have) {
                if let Some(e) = scalar_projection(f, have, want) {
                    through.insert(f.clone(), e);
                }
            }
        }
        // Only when everything else fits: beside fields of doubtful shape a projection would
        // make a plan out of guesses.
        if !doubtful.is_empty() {
            through.clear();
        }
        let wrong: Vec<&String> = wrong.iter().filter(|f| !through.contains_key(*f)).collect();
        if let Some(f) = wrong.first() {
            return Err(nope(
                format!("the GET returns `{f}` in another shape than {method} accepts"),
                Confidence::Medium,
            ));
        }
        if restorable.is_empty() && projections.is_empty() {
            return Err(nope(
                "none of the fields it writes are returned by the GET",
                Confidence::Medium,
            ));
        }
        for (prop, field) in &restorable {
            let expr = through
                .get(field)
                .cloned()
                .unwrap_or_else(|| Expr::field_of(Root::Snapshot, field));
            wb.args.insert(prop.clone(), expr);
        }
        if !through.is_empty() {
            wb.confidence = Confidence::Low;
            for (f, e) in &through {
                wb.notes.push(format!(
                    "`{f}` is an object in the GET and a scalar in the {method}: written back as {e}; when it was empty (null) there is nothing to write back and the call is recorded as irreversible"
                ));
            }
        }
        let lost: Vec<&str> = fields
            .iter()
            .map(|(_, f)| f.as_str())
            .filter(|f| !restorable.iter().any(|(_, r)| r == f) && !projections.contains_key(f))
            .collect();
        if !lost.is_empty() {
            wb.confidence = Confidence::Low;
            wb.notes.push(format!(
                "not written back (not returned by the GET, or secret): {}",
                lost.join(", ")
            ));
        } else if !doubtful.is_empty() {
            wb.confidence = wb.confidence.min(Confidence::Medium);
            wb.notes.push(format!(
                "the GET's `{}` may hold values or fields {method} does not accept",
                doubtful.join("`, `")
            ));
        } else if projections.is_empty() && through.is_empty() {
            wb.notes
                .push("every field it writes is returned by the GET in a shape it accepts".into());
        }
        Ok(wb)
    }

    fn update(&self, i: usize) -> UndoPlan {
        let c = &self.caps[i];
        let method = http(c).method.as_str();
        // `PUT /me/albums?ids=…` adds to a set that `DELETE /me/albums?ids=…` takes away.
        if method == "PUT" {
            if let Some(p) = self.set_pair(i) {
                return p;
            }
        }
        if let Some(p) = self.rename(i) {
            return p;
        }
        // A PUT that adds something whose presence the GET tells by status alone (204 / 404:
        // `PUT /repos/{owner}/{repo}/collaborators/{username}`), with a DELETE on the same path:
        // a switch-on, undone by the DELETE only if it was not there before.
        if method == "PUT" {
            let presence = self
                .index
                .find(i, "GET")
                .is_some_and(|g| presence_only(&self.caps[g]));
            if presence && self.index.find(i, "DELETE").is_some() {
                if !matches!(body(c), Body::None) || c.output_schema.is_some() {
                    // GitHub's collaborator PUT changes an existing member's permission (the
                    // status check says "present", so undo would skip it and call that undone)
                    // or answers with an invitation the DELETE does not cancel.
                    let mut p = irreversible(
                        "the PUT carries options or answers with a body (a permission, an invitation): on something already there it changes them, which removing cannot restore, and what it creates may not be what the DELETE removes",
                        Confidence::Medium,
                    );
                    p.evidence.push(
                        "PUT adds what the GET answers for by status alone (present or not)".into(),
                    );
                    return p;
                }
                let mut p = self.toggle(i, "DELETE", Guard::SnapshotAbsent);
                p.evidence.insert(
                    0,
                    "PUT adds what the GET answers for by status alone (present or not), with nothing else to it".into(),
                );
                return p;
            }
        }
        let Some(g) = self.index.find(i, "GET") else {
            return irreversible(
                "no GET on the same path to snapshot the resource before changing it",
                Confidence::Medium,
            );
        };
        let Some(mut args) = self.positional(i, i) else {
            return irreversible("path parameters are not declared", Confidence::Low);
        };
        if matches!(body(c), Body::None) {
            return irreversible(
                format!("the {method} has no body to write a snapshot back through"),
                Confidence::Medium,
            );
        }
        let readable = match out_props(self.output(g).as_ref()) {
            Some((false, props)) => props,
            Some((true, _)) => return self.restore_list(i, g, args),
            None => {
                return irreversible(
                    "the GET response is not one object to restore from",
                    Confidence::Medium,
                )
            }
        };
        let wb = match self.write_back(i, g, &readable) {
            Ok(wb) => wb,
            Err(plan) => return *plan,
        };
        args.extend(wb.args);
        let mut p = bare(UndoKind::Restore, wb.confidence);
        p.evidence.push(format!(
            "GET {} snapshots it; {method} writes the snapshot back",
            http(&self.caps[g]).path
        ));
        p.evidence.extend(wb.notes);
        p.target = Some(cref(c));
        p.args = args;
        p.snapshot = Some(cref(&self.caps[g]));
        p.snapshot_args = self.positional(i, g).unwrap_or_default();
        if method == "PUT" && put_creates(c) {
            if let Some(d) = self.index.find(i, "DELETE") {
                p.when_absent = Some(Call {
                    capability: cref(&self.caps[d]),
                    args: self.positional(i, d).unwrap_or_default(),
                });
                p.evidence.push(
                    "if nothing was there before, the PUT created it: undo deletes it".into(),
                );
            }
        }
        p
    }

    /// A PATCH whose body moves the resource: it sets the field its last path variable names
    /// (`PATCH /api/contents/{path}` with `{"path": new}`). Afterwards the resource lives at the
    /// new value, so undo is the same PATCH on the new location with the old value; restoring a
    /// snapshot at the old path would find nothing there.
    fn rename(&self, i: usize) -> Option<UndoPlan> {
        let c = &self.caps[i];
        if http(c).method != "PATCH" {
            return None;
        }
        let var = self.vars(i).last()?.to_string();
        // Ids do not change (a body often repeats the item's id); names and paths do.
        let l = var.to_ascii_lowercase();
        if l.ends_with("id") || l.ends_with("uuid") || l.contains("number") {
            return None;
        }
        let path_p = path_prop(c, &var)?;
        // (the new value, where the old one goes in the undo's arguments, the field's name)
        let fields: Vec<(Expr, String, String)> = match body(c) {
            Body::Fields(f) => f
                .iter()
                .map(|(p, w)| (Expr::args(p), p.clone(), w.clone()))
                .collect(),
            Body::Wrapped(p) => {
                let schema = c.input_schema.get("properties")?.get(p)?;
                top_level_schemas(schema)
                    .1
                    .keys()
                    .filter_map(|w| {
                        Some((
                            Expr::fields(Root::Args, &[p, *w]).ok()?,
                            push_token(&push_token("", p), w),
                            w.to_string(),
                        ))
                    })
                    .collect()
            }
            Body::None => return None,
        };
        let (new_value, key, wire) = fields
            .iter()
            .find(|(_, _, w)| *w == var || normalised(w) == normalised(&var))?;
        if fields.len() > 1 {
            let mut p = irreversible(
                format!(
                    "the PATCH can move the resource (`{wire}`) and change other fields in the same \
                     call: moving it back would not restore those, and restoring at the old path \
                     would find nothing after a move"
                ),
                Confidence::Medium,
            );
            p.evidence.push(format!(
                "body field `{wire}` names the resource, like `{{{var}}}`"
            ));
            return Some(p);
        }
        let mut args = self.positional(i, i)?;
        args.insert(path_p.to_string(), new_value.clone());
        args.insert(key.clone(), Expr::args(path_p));
        let mut p = bare(UndoKind::Inverse, Confidence::Medium);
        p.target = Some(cref(c));
        p.args = args;
        p.evidence.push(format!(
            "its only body field `{wire}` names the resource, like `{{{var}}}`: the call moves it"
        ));
        p.evidence.push(format!(
            "undone by the same PATCH on the new `{wire}` with the old one (not by restoring the old path, where nothing is left)"
        ));
        Some(p)
    }

    /// The GET returns a list and the update's body is one list field: write the list back.
    fn restore_list(&self, i: usize, g: usize, mut args: BTreeMap<String, Expr>) -> UndoPlan {
        let c = &self.caps[i];
        let Body::Fields([(prop, field)]) = body(c) else {
            return irreversible(
                "the GET returns a list; the update takes more than that list",
                Confidence::Medium,
            );
        };
        let is_list = c
            .input_schema
            .get("properties")
            .and_then(|p| p.get(prop))
            .and_then(types)
            .is_some_and(|t| t.contains("array"));
        if !is_list {
            return irreversible(
                "the GET returns a list; the update does not take one",
                Confidence::Medium,
            );
        }
        args.insert(prop.clone(), Expr::snapshot());
        let mut p = bare(UndoKind::Restore, Confidence::Medium);
        p.evidence.push(format!(
            "GET {} returns the list that `{field}` replaces; the snapshot is written back",
            http(&self.caps[g]).path
        ));
        p.target = Some(cref(c));
        p.args = args;
        p.snapshot = Some(cref(&self.caps[g]));
        p.snapshot_args = self.positional(i, g).unwrap_or_default();
        p
    }

    fn delete(&self, i: usize) -> UndoPlan {
        if let Some(p) = self.set_pair(i) {
            return p;
        }
        // A toggle's off switch: PUT or POST on the same path that classifies as a toggle-on.
        for m in ["PUT", "POST"] {
            if let Some(j) = self.index.find(i, m) {
                let literal = matches!(self.index.segs[i].last(), Some(Seg::Lit(_)))
                    && !self.index.has_children(i);
                if self.classes[j] == Class::ToggleOn
                    || (m == "POST" && literal && http(&self.caps[j]).body.is_none())
                {
                    return self.toggle(i, m, Guard::SnapshotPresent);
                }
            }
        }
        // The off switch of a PUT whose presence the GET tells by status (see `update`): the PUT
        // puts it back, only if it was there. Options it had (a permission) are not restored.
        let presence = self
            .index
            .find(i, "GET")
            .is_some_and(|g| presence_only(&self.caps[g]));
        if presence {
            if let Some(j) = self.index.find(i, "PUT") {
                let put = &self.caps[j];
                if http(put).body.is_some() || put.output_schema.is_some() {
                    return irreversible(
                        "putting it back takes options the status check does not tell (a permission) or makes something else (an invitation)",
                        Confidence::Medium,
                    );
                }
                let mut p = self.toggle(i, "PUT", Guard::SnapshotPresent);
                p.target = Some(cref(put));
                return p;
            }
        }
        let is_item = matches!(self.index.segs[i].last(), Some(Seg::Var(_)));
        if is_item {
            if let Some(inner) = self.index.item_collections_below(i).first() {
                return irreversible(
                    format!("it contains `{inner}`; recreating it from a snapshot would not bring those back"),
                    Confidence::High,
                );
            }
        }
        let Some(g) = self.index.find(i, "GET") else {
            return irreversible("no GET to read it before deleting it", Confidence::Medium);
        };
        let Some((false, readable)) = out_props(self.output(g).as_ref()) else {
            return irreversible(
                "the GET response is not one object to recreate it from",
                Confidence::Medium,
            );
        };
        let not_action = |j: &usize| {
            let last = http(&self.caps[*j]).path.rsplit('/').next().unwrap_or("");
            !words(last)
                .iter()
                .any(|w| super::ACTION_VERBS.contains(&w.as_str()))
        };
        let with_body = |j: &usize| http(&self.caps[*j]).body.is_some();
        let segs = &self.index.segs[i];
        let (j, conf, why) = if is_item {
            // Prefer PUT on the item itself (same id), else POST on the collection (new id).
            let parent = key(&segs[..segs.len() - 1]);
            let via_put = self
                .index
                .find(i, "PUT")
                .filter(with_body)
                .filter(|&j| put_creates(&self.caps[j]));
            let via_post = self.index.at(&parent, "POST").filter(not_action);
            match (via_put, via_post) {
                (Some(j), _) => (
                    j,
                    Confidence::High,
                    "PUT on the item recreates it under the same id",
                ),
                (None, Some(j)) => (
                    j,
                    Confidence::Medium,
                    "POST on the collection recreates it, under a new id",
                ),
                (None, None) => {
                    return irreversible(
                        "no PUT on the item and no POST on its collection to recreate it",
                        Confidence::Medium,
                    )
                }
            }
        } else {
            // A setting or singleton: written again through the same path.
            let via_post = self
                .index
                .find(i, "POST")
                .filter(with_body)
                .filter(not_action);
            let via_put = self.index.find(i, "PUT").filter(with_body);
            match via_post.or(via_put) {
                Some(j) => (
                    j,
                    Confidence::Medium,
                    "a singleton: the same path's write operation sets it again from the snapshot",
                ),
                None => {
                    return irreversible(
                        "deletes something that is not one item, and nothing writes it back",
                        Confidence::Medium,
                    )
                }
            }
        };
        if is_item && http(&self.caps[j]).method == "POST" && http(&self.caps[j]).body.is_none() {
            return irreversible(
                "the collection's POST takes no body to recreate the item from",
                Confidence::Medium,
            );
        }
        let Some(mut args) = self.positional(i, j) else {
            return irreversible("path parameters are not declared", Confidence::Low);
        };
        let wb = match self.write_back(j, g, &readable) {
            Ok(wb) => wb,
            Err(plan) => return *plan,
        };
        args.extend(wb.args);
        let mut p = bare(UndoKind::Recreate, conf.min(wb.confidence));
        p.snapshot = Some(cref(&self.caps[g]));
        p.snapshot_args = self.positional(i, g).unwrap_or_default();
        p.target = Some(cref(&self.caps[j]));
        p.args = args;
        p.evidence
            .push(format!("GET {} snapshots it", http(&self.caps[g]).path));
        p.evidence.push(why.into());
        p.evidence.extend(wb.notes);
        p
    }

    /// Adds `j`'s body arguments from `i`'s own: the same fields pass through (`addFollowers`'
    /// `followers` to `removeFollowers`). `None` when `j` needs a body `i` does not have.
    fn pass_body(
        &self,
        i: usize,
        j: usize,
        mut args: BTreeMap<String, Expr>,
    ) -> Option<BTreeMap<String, Expr>> {
        match (body(&self.caps[i]), body(&self.caps[j])) {
            (_, Body::None) => Some(args),
            (Body::Fields(mine), Body::Fields(theirs)) => {
                let req = required(&self.caps[j]);
                for (their_prop, field) in theirs {
                    match mine.iter().find(|(_, f)| f == field) {
                        Some((my_prop, _)) => {
                            args.insert(their_prop.clone(), Expr::args(my_prop));
                        }
                        None if req.contains(their_prop) => return None,
                        None => {}
                    }
                }
                Some(args)
            }
            (Body::Wrapped(mine), Body::Wrapped(theirs)) => {
                args.insert(theirs.to_string(), Expr::args(mine));
                Some(args)
            }
            // `i` has nothing to pass; fine only if `j` needs nothing.
            (_, Body::Fields(theirs)) => {
                let req = required(&self.caps[j]);
                let needs = http(&self.caps[j])
                    .body
                    .as_ref()
                    .is_some_and(|b| b.required)
                    || theirs.iter().any(|(p, _)| req.contains(p));
                (!needs).then_some(args)
            }
            (_, _)
                if http(&self.caps[j])
                    .body
                    .as_ref()
                    .is_some_and(|b| b.required) =>
            {
                None
            }
            _ => Some(args),
        }
    }

    fn execute(&self, i: usize, verb: &str) -> UndoPlan {
        let segs = &self.index.segs[i];
        let my_words = segs
            .last()
            .map(|s| match s {
                Seg::Lit(l) => words(l),
                Seg::Var(_) => Vec::new(),
            })
            .unwrap_or_default();
        let parent = key(&segs[..segs.len().saturating_sub(1)]);
        // A sibling action whose name swaps one word for its opposite.
        let opposite = |w: &str| -> Vec<String> {
            let mut o: Vec<String> = PAIRS
                .iter()
                .filter_map(|(a, b)| {
                    if *a == w {
                        Some(b.to_string())
                    } else if *b == w {
                        Some(a.to_string())
                    } else {
                        None
                    }
                })
                .collect();
            match w.strip_prefix("un") {
                Some(rest) if !rest.is_empty() => o.push(rest.to_string()),
                _ => o.push(format!("un{w}")),
            }
            o
        };
        for (k, w) in my_words.iter().enumerate() {
            for opp in opposite(w) {
                let mut want = my_words.clone();
                want[k] = opp.clone();
                // Same parent key means the same number of segments.
                let found = self.index.siblings_with_words(i, &parent, &want).next();
                if let Some(j) = found {
                    if let Some(args) = self.positional(i, j).and_then(|a| self.pass_body(i, j, a))
                    {
                        let mut p = bare(UndoKind::Inverse, Confidence::Medium);
                        p.target = Some(cref(&self.caps[j]));
                        p.args = args;
                        p.evidence.push(format!(
                            "`{opp}` reverses `{w}`: {} {}",
                            http(&self.caps[j]).method,
                            http(&self.caps[j]).path
                        ));
                        p.evidence.push("the state before is not checked: undo reverses even if nothing changed".into());
                        return p;
                    }
                }
            }
        }
        if MONEY.contains(&verb) {
            return irreversible(format!("`{verb}` moves money"), Confidence::High);
        }
        if verb == "merge" || verb == "merges" {
            return irreversible("a merge cannot be taken back", Confidence::High);
        }
        if DISPATCH.contains(&verb) {
            return irreversible(
                format!("`{verb}` starts work or sends something that cannot be recalled"),
                Confidence::High,
            );
        }
        irreversible(
            format!("no operation reverses `{verb}`"),
            Confidence::Medium,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn top_level_properties_through_all_of_and_defs() {
        let s = json!({"allOf": [{"$ref": "#/$defs/Base"}, {"properties": {"b": {}}}],
                       "$defs": {"Base": {"properties": {"a": {}}}}});
        let (arr, props) = top_level_props(&s);
        assert!(!arr);
        assert_eq!(props.into_iter().collect::<Vec<_>>(), ["a", "b"]);
        assert!(top_level_props(&json!({"type": "array", "items": {}})).0);
    }

    #[test]
    fn id_lists_are_projected_from_object_lists() {
        let snap = json!({"type": "object", "properties": {
            "total_count": {"type": "integer"},
            "repositories": {"type": "array", "items": {"type": "object", "properties": {"id": {}, "name": {}}}}}});
        assert_eq!(
            id_projection("selected_repository_ids", &snap)
                .map(|e| e.to_string())
                .as_deref(),
            Some("$snapshot.repositories[*].id")
        );
        assert_eq!(id_projection("team_ids", &snap), None);
        assert_eq!(id_projection("repository", &snap), None);
    }

    #[test]
    fn snapshot_shapes_must_fit_the_target() {
        let want = json!({"type": "array", "items": {"type": "object", "properties": {"id": {"type": "integer"}, "value": {}}}});
        let described = json!({"type": "array", "items": {"type": "object", "properties": {"id": {"type": "integer"}}}});
        let undescribed =
            json!({"type": "array", "items": {"type": "object", "additionalProperties": true}});
        let extra = json!({"type": "array", "items": {"type": "object", "properties": {"id": {}, "name": {}}}});
        assert_eq!(fit(&described, &want, 0), Fit::Good);
        assert_eq!(fit(&undescribed, &want, 0), Fit::Doubtful);
        assert_eq!(fit(&extra, &want, 0), Fit::Doubtful);
        assert_eq!(
            fit(&json!({"type": "object"}), &json!({"type": "boolean"}), 0),
            Fit::Wrong
        );
        let states = json!({"type": "string", "enum": ["active", "pending"]});
        assert_eq!(
            fit(&states, &json!({"type": "string", "enum": ["active"]}), 0),
            Fit::Doubtful
        );
    }

    #[test]
    fn secrets_are_recognised() {
        for f in [
            "password",
            "encrypted_value",
            "clientSecret",
            "api_key",
            "accessToken",
        ] {
            assert!(secret_like(f), "{f}");
        }
        for f in ["name", "description", "key_id_hint"] {
            assert!(!secret_like(f), "{f}");
        }
    }
}
