//! Type hints → JSON Schema 2020-12.
//!
//! [`Schemas::hint`] converts one annotation. Names resolve through the module's imports, so
//! `t.Optional`, `Opt` (`from typing import Optional as Opt`) and `typing.Optional` are the
//! same thing; names of `typing`, `typing_extensions`, `collections.abc`, `collections`,
//! `builtins` and `types` are accepted with or without their module.
//!
//! | Hint | Schema |
//! |---|---|
//! | `int` / `float` / `str` / `bool` | `{"type": "integer"}` / `"number"` / `"string"` / `"boolean"` |
//! | `bytes`, `bytearray` | `{"type": "string", "contentEncoding": "base64"}` |
//! | `None`, `NoneType` | `{"type": "null"}` |
//! | `Any`, `object` | `{}` (open, no warning) |
//! | `list[T]`, `List`, `Sequence`, `MutableSequence`, `Iterable`, `Collection`, `Iterator`, `deque` | `{"type": "array", "items": T}` (bare: no `items`) |
//! | `set[T]`, `Set`, `frozenset`, `FrozenSet`, `AbstractSet`, `MutableSet` | the same plus `"uniqueItems": true` |
//! | `tuple[A, B]` | `{"type": "array", "prefixItems": [A, B], "items": false, "minItems": 2, "maxItems": 2}` |
//! | `tuple[T, ...]` / `tuple[()]` | array of `T` / `{"type": "array", "maxItems": 0}` |
//! | `dict[K, V]`, `Dict`, `Mapping`, `MutableMapping`, `OrderedDict`, `defaultdict` | `{"type": "object", "additionalProperties": V}` (the key type is not checked) |
//! | `Optional[T]`, `Union[T, None]`, `T \| None` | `{"type": ["<t>", "null"]}` when `T` is exactly `{"type": "<t>"}`, else `{"anyOf": [T, {"type": "null"}]}` |
//! | other unions | `{"anyOf": [...]}`, nested unions flattened, duplicates dropped; a member left open opens the whole union (`{}`) |
//! | `Literal[a, b]` / `Literal[a]` | `{"enum": [a, b]}` / `{"const": a}` (strings, numbers, bools, `None`, module enum members) |
//! | `Annotated[T, meta…]` | `T` plus `description` from the first string, `Doc("…")` or `Field(description=…)`; `Field(ge, le, gt, lt, multiple_of, min_length, max_length, pattern)` and `annotated_types.Ge/Gt/Le/Lt/MultipleOf/MinLen/MaxLen` → `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`, `minLength`/`minItems`/`minProperties`, `maxLength`/…, `pattern` |
//! | `Required[T]`, `NotRequired[T]`, `ReadOnly[T]`, `Final[T]`, `ClassVar[T]`, `InitVar[T]` | `T` (in class bodies they set requiredness; `ClassVar` fields are skipped) |
//! | `"T"` (string annotation) | parsed again and converted; counts toward the same depth |
//! | `pathlib.Path` (and the other path classes), `os.PathLike` | `{"type": "string", "format": "path"}` |
//! | `datetime.datetime` / `date` / `time` / `timedelta` | string, format `date-time` / `date` / `time` / `duration` |
//! | `uuid.UUID` | `{"type": "string", "format": "uuid"}` |
//! | `decimal.Decimal` | `{"type": "string", "format": "decimal"}`: a string keeps every digit (JSON numbers become binary floats on the way) |
//! | a module class | `{"$ref": "#/$defs/Name"}`, its definition stored once in `defs` |
//!
//! Module classes (module-level `class` statements, also inside module-level `if`/`try`; the
//! first definition of a name wins), each with `title` and the cleaned docstring as
//! `description`:
//! - `Enum`, `IntEnum`, `StrEnum`, `Flag`, `IntFlag` subclasses: `{"enum": [values]}` when every
//!   member's value is a literal (in a `StrEnum`, `auto()` is the lower-cased member name);
//!   otherwise (`auto()` in other enums, computed values) `{"enum": [member names]}` with the
//!   note "One of the member names of Name." in `description`. A default `Color.RED` becomes
//!   whichever of the two the schema lists.
//! - `TypedDict` (with `total=False`, `Required`/`NotRequired`), `@dataclass` classes,
//!   `NamedTuple` subclasses and pydantic `BaseModel` subclasses: `{"type": "object",
//!   "properties", "required"}` from the annotated class-level fields, inherited fields of
//!   module base classes first. Objects stay open (no `additionalProperties`). A field with a
//!   default (`= x`, `field(default=…)`, `default_factory`, `Field(x)`) is not required; a
//!   literal default becomes `default`; `Field(...)`/`Field()` is required; pydantic
//!   `Field(description=…, alias=…)` and constraints apply; pydantic `_private` fields,
//!   `ClassVar`s and `field(init=False)` are skipped. Other classes are not understood.
//!
//! A hint that is not understood gives `None` (the caller warns); a part of one that is not
//! understood is left open (`{}`, or an array/object without item schema) with a warning.
//! Hints nested more than 64 levels deep (string annotations included) are given up with a
//! warning; literal defaults over 64 KiB of JSON are not used.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use ruff_python_ast::{
    ExceptHandler, Expr, ExprAttribute, ExprCall, ExprSubscript, ModExpression, Number, Operator,
    Stmt, StmtClassDef, UnaryOp,
};
use ruff_python_parser::Parsed;
use serde_json::{json, Map, Value};

use super::imports::Imports;

/// How deeply hints (and literals, and enum values referring to each other) may nest.
const MAX_DEPTH: u32 = 64;
/// The largest literal default kept, as estimated JSON bytes.
const MAX_LITERAL: usize = 64 * 1024;
/// The largest total of one enum's member values.
const MAX_ENUM: usize = 256 * 1024;
/// The longest string annotation parsed again.
const MAX_STRING_HINT: usize = 4096;
/// Annotations and defaults of class fields deeper than this are not kept (cloning and dropping
/// them recurses).
const KEEP_DEPTH: u32 = 200;
/// Warnings stop being added past this many.
const MAX_WARNINGS: usize = 1000;

const DATACLASS: &[&str] = &[
    "dataclasses.dataclass",
    "dataclass",
    "pydantic.dataclasses.dataclass",
];
const DC_FIELD: &[&str] = &["dataclasses.field", "field"];
const PYDANTIC_FIELD: &[&str] = &["pydantic.Field", "pydantic.fields.Field", "Field"];
const AUTO: &[&str] = &["enum.auto", "auto"];
const KW_ONLY: &[&str] = &["dataclasses.KW_ONLY", "KW_ONLY"];
const DOC: &[&str] = &["typing_extensions.Doc", "typing.Doc", "Doc"];

/// The classes of a module that a hint can name.
#[derive(Debug, Default)]
pub(crate) struct Classes {
    classes: HashMap<String, ClassInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Enum { str_auto: bool },
    TypedDict,
    NamedTuple,
    Model,
    Dataclass,
}

fn rank(k: Kind) -> u8 {
    match k {
        Kind::Enum { .. } => 0,
        Kind::TypedDict => 1,
        Kind::NamedTuple => 2,
        Kind::Model => 3,
        Kind::Dataclass => 4,
        Kind::Plain => 5,
    }
}

fn is_object(k: Kind) -> bool {
    matches!(
        k,
        Kind::TypedDict | Kind::NamedTuple | Kind::Model | Kind::Dataclass
    )
}

#[derive(Debug)]
struct ClassInfo {
    name: String,
    kind: Kind,
    /// Whether the class's own annotations are fields (an undecorated subclass of a dataclass,
    /// or a subclass of a `NamedTuple` class, only inherits).
    own_fields: bool,
    /// Module classes among the bases that are object kinds, in order.
    module_bases: Vec<String>,
    /// `TypedDict` totality.
    total: bool,
    doc: Option<String>,
    fields: Vec<FieldInfo>,
    enum_vals: Option<EnumVals>,
}

#[derive(Debug)]
struct FieldInfo {
    name: String,
    /// `None` when the annotation nests too deeply to keep.
    ann: Option<Expr>,
    has_default: bool,
    /// The default expression, when there is one and it is shallow enough to keep.
    default: Option<Expr>,
    /// A pydantic `Field(…)` call: description and constraints.
    meta: Option<Expr>,
    alias: Option<String>,
}

/// The values of an enum's members, in order.
#[derive(Debug, Default)]
struct EnumVals {
    /// Name, value (the name itself when `by_name`), estimated JSON size.
    members: Vec<(String, Value, usize)>,
    index: HashMap<String, usize>,
    by_name: bool,
}

impl EnumVals {
    fn get(&self, name: &str, budget: &mut usize) -> Option<Value> {
        let i = *self.index.get(name)?;
        let (_, v, size) = self.members.get(i)?;
        charge(budget, *size)?;
        Some(v.clone())
    }
}

/// A class statement while collecting.
struct Raw<'b> {
    stmt: &'b StmtClassDef,
    /// Qualified names of the bases (`Generic[T]` counts as `Generic`).
    bases: Vec<String>,
    decorated: bool,
}

impl<'b> Raw<'b> {
    fn new(stmt: &'b StmtClassDef, imports: &Imports) -> Self {
        let bases = stmt
            .bases()
            .iter()
            .filter_map(|b| {
                let target = match b {
                    Expr::Subscript(s) => &*s.value,
                    other => other,
                };
                imports.qualify(target)
            })
            .collect();
        let decorated = stmt.decorator_list.iter().any(|d| {
            let target = match &d.expression {
                Expr::Call(c) => &*c.func,
                other => other,
            };
            imports
                .qualify(target)
                .is_some_and(|q| one_of(&q, DATACLASS))
        });
        Raw {
            stmt,
            bases,
            decorated,
        }
    }
}

impl Classes {
    pub(crate) fn collect(body: &[Stmt], imports: &Imports) -> Classes {
        // Module-level class statements, also in `if`/`try` bodies, in source order; walked
        // with an explicit stack so deeply nested `if`s cost no native stack.
        let mut raws: BTreeMap<String, Raw<'_>> = BTreeMap::new();
        let mut stack: Vec<std::slice::Iter<'_, Stmt>> = vec![body.iter()];
        while let Some(it) = stack.last_mut() {
            let Some(stmt) = it.next() else {
                stack.pop();
                continue;
            };
            match stmt {
                Stmt::ClassDef(c) => {
                    let name = c.name.as_str();
                    if !name.is_empty() && !raws.contains_key(name) {
                        raws.insert(name.to_string(), Raw::new(c, imports));
                    }
                }
                Stmt::If(s) => {
                    for c in s.elif_else_clauses.iter().rev() {
                        stack.push(c.body.iter());
                    }
                    stack.push(s.body.iter());
                }
                Stmt::Try(t) => {
                    stack.push(t.finalbody.iter());
                    stack.push(t.orelse.iter());
                    for h in t.handlers.iter().rev() {
                        let ExceptHandler::ExceptHandler(h) = h;
                        stack.push(h.body.iter());
                    }
                    stack.push(t.body.iter());
                }
                _ => {}
            }
        }

        let mut kinds: BTreeMap<String, (Kind, bool)> = BTreeMap::new();
        let mut busy = BTreeSet::new();
        for name in raws.keys() {
            kind_of(name, &raws, &mut kinds, &mut busy, 0);
        }

        let mut resolver = Resolver {
            raws: &raws,
            kinds: &kinds,
            imports,
            done: BTreeMap::new(),
            busy: BTreeSet::new(),
        };
        for (name, (kind, _)) in kinds.iter() {
            if matches!(kind, Kind::Enum { .. }) {
                resolver.compute(name, 0);
            }
        }
        let mut enums = resolver.done;

        let mut classes = HashMap::new();
        for (name, raw) in &raws {
            let (kind, own_fields) = kinds.get(name).copied().unwrap_or((Kind::Plain, false));
            let module_bases = raw
                .bases
                .iter()
                .filter(|b| kinds.get(b.as_str()).is_some_and(|(k, _)| is_object(*k)))
                .cloned()
                .collect();
            let fields = if is_object(kind) && own_fields {
                fields_of(raw.stmt, kind, imports)
            } else {
                Vec::new()
            };
            let total = !raw.stmt.keywords().iter().any(|k| {
                k.arg.as_ref().is_some_and(|a| a.as_str() == "total")
                    && matches!(&k.value, Expr::BooleanLiteral(b) if !b.value)
            });
            classes.insert(
                name.clone(),
                ClassInfo {
                    name: name.clone(),
                    kind,
                    own_fields,
                    module_bases,
                    total,
                    doc: docstring(&raw.stmt.body),
                    fields,
                    enum_vals: enums.remove(name),
                },
            );
        }
        Classes { classes }
    }
}

/// What a class is, from its bases and decorators; memoised, cycles and deep chains are plain.
fn kind_of(
    name: &str,
    raws: &BTreeMap<String, Raw<'_>>,
    memo: &mut BTreeMap<String, (Kind, bool)>,
    busy: &mut BTreeSet<String>,
    depth: u32,
) -> (Kind, bool) {
    if let Some(k) = memo.get(name) {
        return *k;
    }
    let Some(raw) = raws.get(name) else {
        return (Kind::Plain, false);
    };
    if depth > MAX_DEPTH || !busy.insert(name.to_string()) {
        return (Kind::Plain, false);
    }
    let mut best = Kind::Plain;
    let mut direct = Kind::Plain;
    for b in &raw.bases {
        let (k, is_direct) = if raws.contains_key(b.as_str()) {
            (kind_of(b, raws, memo, busy, depth + 1).0, false)
        } else {
            (base_kind(b).unwrap_or(Kind::Plain), true)
        };
        if rank(k) < rank(best) {
            best = k;
        }
        if is_direct && rank(k) < rank(direct) {
            direct = k;
        }
    }
    if raw.decorated && rank(Kind::Dataclass) < rank(best) {
        best = Kind::Dataclass;
    }
    let own = match best {
        Kind::Dataclass => raw.decorated,
        Kind::NamedTuple => direct == Kind::NamedTuple,
        _ => true,
    };
    busy.remove(name);
    memo.insert(name.to_string(), (best, own));
    (best, own)
}

/// The kind a base class from outside the module gives.
fn base_kind(q: &str) -> Option<Kind> {
    if let Some(s) = short_name(q, &["enum"]) {
        match s {
            "Enum" | "IntEnum" | "Flag" | "IntFlag" | "ReprEnum" => {
                return Some(Kind::Enum { str_auto: false })
            }
            "StrEnum" => return Some(Kind::Enum { str_auto: true }),
            _ => {}
        }
    }
    if let Some(s) = short_name(q, &["typing", "typing_extensions"]) {
        match s {
            "TypedDict" => return Some(Kind::TypedDict),
            "NamedTuple" => return Some(Kind::NamedTuple),
            _ => {}
        }
    }
    match q {
        "pydantic.BaseModel"
        | "pydantic.main.BaseModel"
        | "BaseModel"
        | "pydantic_settings.BaseSettings"
        | "BaseSettings" => Some(Kind::Model),
        _ => None,
    }
}

/// The annotated fields a class body declares.
fn fields_of(c: &StmtClassDef, kind: Kind, imports: &Imports) -> Vec<FieldInfo> {
    let mut out: Vec<FieldInfo> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for s in c.body.iter() {
        let Stmt::AnnAssign(a) = s else { continue };
        let Expr::Name(n) = &*a.target else { continue };
        let name = n.id.as_str();
        if kind == Kind::Model && (name.starts_with('_') || name == "model_config") {
            continue;
        }
        if imports
            .qualify(&a.annotation)
            .is_some_and(|q| one_of(&q, KW_ONLY))
        {
            continue;
        }
        let mut f = FieldInfo {
            name: name.to_string(),
            ann: keep(&a.annotation),
            has_default: false,
            default: None,
            meta: None,
            alias: None,
        };
        if kind != Kind::TypedDict {
            if let Some(v) = a.value.as_deref() {
                if !default_of(v, imports, &mut f) {
                    continue;
                }
            }
        }
        // A name annotated twice keeps its first place and its last declaration.
        match index.get(name) {
            Some(&i) => {
                if let Some(slot) = out.get_mut(i) {
                    *slot = f;
                }
            }
            None => {
                index.insert(name.to_string(), out.len());
                out.push(f);
            }
        }
    }
    out
}

/// Reads a field's default; `false` when the field is not an `__init__` argument.
fn default_of(v: &Expr, imports: &Imports, f: &mut FieldInfo) -> bool {
    if let Some(call) = call_to(v, DC_FIELD, imports) {
        if matches!(kwarg(call, "init"), Some(Expr::BooleanLiteral(b)) if !b.value) {
            return false;
        }
        if let Some(d) = kwarg(call, "default") {
            f.has_default = true;
            f.default = keep(d);
        } else if kwarg(call, "default_factory").is_some() {
            f.has_default = true;
        }
        return true;
    }
    if let Some(call) = call_to(v, PYDANTIC_FIELD, imports) {
        f.meta = keep(v);
        match call
            .arguments
            .args
            .first()
            .or_else(|| kwarg(call, "default"))
        {
            Some(Expr::EllipsisLiteral(_)) => {}
            Some(d) => {
                f.has_default = true;
                f.default = keep(d);
            }
            None => f.has_default = kwarg(call, "default_factory").is_some(),
        }
        if let Some(Expr::StringLiteral(s)) = kwarg(call, "alias") {
            f.alias = Some(s.value.to_str().to_string());
        }
        return true;
    }
    f.has_default = true;
    f.default = keep(v);
    true
}

fn call_to<'e>(e: &'e Expr, names: &[&str], imports: &Imports) -> Option<&'e ExprCall> {
    match e {
        Expr::Call(c) if imports.qualify(&c.func).is_some_and(|q| one_of(&q, names)) => Some(c),
        _ => None,
    }
}

fn kwarg<'e>(call: &'e ExprCall, name: &str) -> Option<&'e Expr> {
    call.arguments.find_keyword(name).map(|k| &k.value)
}

fn one_of(q: &str, names: &[&str]) -> bool {
    names.contains(&q)
}

/// `q` without one of `modules` (or `q` itself when it has no dot), when what is left has no dot.
fn short_name<'q>(q: &'q str, modules: &[&str]) -> Option<&'q str> {
    if !q.contains('.') {
        return Some(q);
    }
    modules
        .iter()
        .find_map(|m| q.strip_prefix(*m)?.strip_prefix('.'))
        .filter(|r| !r.contains('.'))
}

/// A copy of `e` when it is shallow enough to clone and drop without deep recursion.
fn keep(e: &Expr) -> Option<Expr> {
    shallow(e, KEEP_DEPTH).then(|| e.clone())
}

fn shallow(e: &Expr, left: u32) -> bool {
    if left == 0 {
        return false;
    }
    let l = left - 1;
    match e {
        Expr::Name(_)
        | Expr::StringLiteral(_)
        | Expr::BytesLiteral(_)
        | Expr::NumberLiteral(_)
        | Expr::BooleanLiteral(_)
        | Expr::NoneLiteral(_)
        | Expr::EllipsisLiteral(_) => true,
        Expr::Attribute(a) => shallow(&a.value, l),
        Expr::Subscript(s) => shallow(&s.value, l) && shallow(&s.slice, l),
        Expr::Tuple(t) => t.elts.iter().all(|x| shallow(x, l)),
        Expr::List(t) => t.elts.iter().all(|x| shallow(x, l)),
        Expr::Set(t) => t.elts.iter().all(|x| shallow(x, l)),
        Expr::Dict(d) => d
            .items
            .iter()
            .all(|i| i.key.as_ref().is_none_or(|k| shallow(k, l)) && shallow(&i.value, l)),
        Expr::BinOp(b) => shallow(&b.left, l) && shallow(&b.right, l),
        Expr::UnaryOp(u) => shallow(&u.operand, l),
        Expr::Call(c) => {
            shallow(&c.func, l)
                && c.arguments.args.iter().all(|x| shallow(x, l))
                && c.arguments.keywords.iter().all(|k| shallow(&k.value, l))
        }
        _ => false,
    }
}

/// A class's docstring, cleaned like `inspect.cleandoc`.
fn docstring(body: &[Stmt]) -> Option<String> {
    let Some(Stmt::Expr(s)) = body.first() else {
        return None;
    };
    let Expr::StringLiteral(lit) = &*s.value else {
        return None;
    };
    let doc = cleandoc(lit.value.to_str());
    (!doc.is_empty()).then_some(doc)
}

fn cleandoc(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let indent = lines
        .iter()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out: Vec<&str> = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        if i == 0 {
            out.push(l.trim());
        } else {
            out.push(l.get(indent..).unwrap_or_else(|| l.trim_start()).trim_end());
        }
    }
    let start = out.iter().position(|l| !l.is_empty()).unwrap_or(out.len());
    let end = out
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(start, |i| i + 1);
    out.get(start..end)
        .map(|s| s.join("\n"))
        .unwrap_or_default()
}

/// The members of an enum class body: `NAME = value` (and `NAME: T = value`), private names left out.
fn enum_members(c: &StmtClassDef) -> Vec<(&str, &Expr)> {
    let mut out = Vec::new();
    for s in c.body.iter() {
        match s {
            Stmt::Assign(a) => {
                for t in &a.targets {
                    if let Expr::Name(n) = t {
                        out.push((n.id.as_str(), &*a.value));
                    }
                }
            }
            Stmt::AnnAssign(a) => {
                if let (Expr::Name(n), Some(v)) = (&*a.target, a.value.as_deref()) {
                    out.push((n.id.as_str(), v));
                }
            }
            _ => {}
        }
    }
    out.retain(|(n, _)| !n.is_empty() && !n.starts_with('_'));
    out
}

/// Resolves `Color.RED` in literals: enum member values.
trait Members {
    fn member(&mut self, a: &ExprAttribute, depth: u32, budget: &mut usize) -> Option<Value>;
}

/// Computes enum values while collecting, each enum once (enums may refer to each other's
/// members; a cycle leaves the later one by name).
struct Resolver<'r, 'b> {
    raws: &'r BTreeMap<String, Raw<'b>>,
    kinds: &'r BTreeMap<String, (Kind, bool)>,
    imports: &'r Imports,
    done: BTreeMap<String, EnumVals>,
    busy: BTreeSet<String>,
}

impl Resolver<'_, '_> {
    fn compute(&mut self, name: &str, depth: u32) {
        if depth > MAX_DEPTH || self.done.contains_key(name) || self.busy.contains(name) {
            return;
        }
        let raws = self.raws;
        let Some(raw) = raws.get(name) else { return };
        let str_auto = matches!(
            self.kinds.get(name),
            Some((Kind::Enum { str_auto: true }, _))
        );
        self.busy.insert(name.to_string());
        let mut vals = EnumVals::default();
        let mut literal = true;
        let mut total = 0usize;
        for (member, value) in enum_members(raw.stmt) {
            if vals.index.contains_key(member) {
                continue;
            }
            let got = if !literal {
                None
            } else if call_to(value, AUTO, self.imports).is_some() {
                str_auto.then(|| {
                    let lower = member.to_lowercase();
                    let size = lower.len() + 2;
                    (Value::String(lower), size)
                })
            } else {
                let mut budget = MAX_LITERAL;
                lit_value(&mut *self, value, depth + 1, &mut budget)
                    .map(|v| (v, MAX_LITERAL.saturating_sub(budget)))
            };
            let got = got.filter(|(_, size)| total.saturating_add(*size) <= MAX_ENUM);
            vals.index.insert(member.to_string(), vals.members.len());
            match got {
                Some((v, size)) => {
                    total = total.saturating_add(size);
                    vals.members.push((member.to_string(), v, size));
                }
                None => {
                    literal = false;
                    vals.members.push((member.to_string(), Value::Null, 0));
                }
            }
        }
        if !literal {
            for m in vals.members.iter_mut() {
                m.1 = Value::String(m.0.clone());
                m.2 = m.0.len() + 2;
            }
        }
        vals.by_name = !literal;
        self.busy.remove(name);
        self.done.insert(name.to_string(), vals);
    }
}

impl Members for Resolver<'_, '_> {
    fn member(&mut self, a: &ExprAttribute, depth: u32, budget: &mut usize) -> Option<Value> {
        let cls = self.imports.qualify(&a.value)?;
        if !matches!(self.kinds.get(&cls), Some((Kind::Enum { .. }, _))) {
            return None;
        }
        self.compute(&cls, depth + 1);
        self.done.get(&cls)?.get(a.attr.as_str(), budget)
    }
}

/// Enum members once the classes are collected.
struct Lookup<'x> {
    classes: &'x Classes,
    imports: &'x Imports,
}

impl Members for Lookup<'_> {
    fn member(&mut self, a: &ExprAttribute, _depth: u32, budget: &mut usize) -> Option<Value> {
        let cls = self.imports.qualify(&a.value)?;
        self.classes
            .classes
            .get(&cls)?
            .enum_vals
            .as_ref()?
            .get(a.attr.as_str(), budget)
    }
}

fn charge(budget: &mut usize, n: usize) -> Option<()> {
    *budget = budget.checked_sub(n)?;
    Some(())
}

/// A literal as JSON, within `budget` estimated bytes and `MAX_DEPTH` levels.
fn lit_value<M: Members>(m: &mut M, e: &Expr, depth: u32, budget: &mut usize) -> Option<Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    match e {
        Expr::StringLiteral(s) => {
            let t = s.value.to_str();
            charge(budget, t.len().saturating_add(2))?;
            Some(Value::String(t.to_string()))
        }
        Expr::NumberLiteral(n) => number(&n.value, false, budget),
        Expr::UnaryOp(u) => match (u.op, &*u.operand) {
            (UnaryOp::USub, Expr::NumberLiteral(n)) => number(&n.value, true, budget),
            (UnaryOp::UAdd, Expr::NumberLiteral(n)) => number(&n.value, false, budget),
            _ => None,
        },
        Expr::BooleanLiteral(b) => {
            charge(budget, 5)?;
            Some(Value::Bool(b.value))
        }
        Expr::NoneLiteral(_) => {
            charge(budget, 4)?;
            Some(Value::Null)
        }
        Expr::Tuple(t) => seq(m, &t.elts, depth, budget),
        Expr::List(l) => seq(m, &l.elts, depth, budget),
        Expr::Dict(d) => {
            charge(budget, 2)?;
            let mut map = Map::new();
            for item in &d.items {
                let Some(Expr::StringLiteral(k)) = &item.key else {
                    return None;
                };
                let k = k.value.to_str();
                charge(budget, k.len().saturating_add(4))?;
                let v = lit_value(m, &item.value, depth + 1, budget)?;
                map.insert(k.to_string(), v);
            }
            Some(Value::Object(map))
        }
        Expr::Attribute(a) => m.member(a, depth + 1, budget),
        _ => None,
    }
}

fn seq<M: Members>(m: &mut M, elts: &[Expr], depth: u32, budget: &mut usize) -> Option<Value> {
    charge(budget, 2)?;
    if elts.len() > *budget {
        return None;
    }
    let mut out = Vec::with_capacity(elts.len());
    for x in elts {
        charge(budget, 1)?;
        out.push(lit_value(m, x, depth + 1, budget)?);
    }
    Some(Value::Array(out))
}

fn number(n: &Number, negative: bool, budget: &mut usize) -> Option<Value> {
    let v = match n {
        Number::Int(i) => {
            if negative {
                let u = i.as_u64()?;
                Value::from(i64::try_from(-i128::from(u)).ok()?)
            } else if let Some(x) = i.as_i64() {
                Value::from(x)
            } else {
                Value::from(i.as_u64()?)
            }
        }
        Number::Float(f) => Value::Number(serde_json::Number::from_f64(if negative {
            -*f
        } else {
            *f
        })?),
        Number::Complex { .. } => return None,
    };
    charge(budget, v.to_string().len())?;
    Some(v)
}

/// Why a hint gave nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    /// Not understood; nobody has warned yet.
    Unknown,
    /// Given up with a warning already pushed (too deep, too long): propagates to the top.
    Warned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrap {
    Required,
    NotRequired,
    ClassVar,
    Plain,
}

/// What a name in a hint stands for.
enum Known {
    Schema(Value),
    List,
    Set,
    Tuple,
    Dict,
    Optional,
    Union,
    Literal,
    Annotated,
    Wrapper(Wrap),
    Class(String),
}

fn known_name(q: &str) -> Option<Known> {
    let string = |format: &str| Some(Known::Schema(json!({"type": "string", "format": format})));
    match q {
        "pathlib.Path"
        | "pathlib.PurePath"
        | "pathlib.PosixPath"
        | "pathlib.WindowsPath"
        | "pathlib.PurePosixPath"
        | "pathlib.PureWindowsPath"
        | "os.PathLike" => return string("path"),
        "datetime.datetime" => return string("date-time"),
        "datetime.date" => return string("date"),
        "datetime.time" => return string("time"),
        "datetime.timedelta" => return string("duration"),
        "uuid.UUID" => return string("uuid"),
        "decimal.Decimal" => return string("decimal"),
        "dataclasses.InitVar" => return Some(Known::Wrapper(Wrap::Plain)),
        _ => {}
    }
    let short = short_name(
        q,
        &[
            "typing",
            "typing_extensions",
            "collections.abc",
            "collections",
            "builtins",
            "types",
        ],
    )?;
    Some(match short {
        "int" => Known::Schema(json!({"type": "integer"})),
        "float" => Known::Schema(json!({"type": "number"})),
        "str" | "Text" | "LiteralString" => Known::Schema(json!({"type": "string"})),
        "bool" => Known::Schema(json!({"type": "boolean"})),
        "bytes" | "bytearray" => {
            Known::Schema(json!({"type": "string", "contentEncoding": "base64"}))
        }
        "NoneType" => Known::Schema(json!({"type": "null"})),
        "Any" | "object" => Known::Schema(json!({})),
        "list" | "List" | "Sequence" | "MutableSequence" | "Iterable" | "Collection"
        | "Iterator" | "deque" | "Deque" => Known::List,
        "set" | "Set" | "frozenset" | "FrozenSet" | "AbstractSet" | "MutableSet" => Known::Set,
        "tuple" | "Tuple" => Known::Tuple,
        "dict" | "Dict" | "Mapping" | "MutableMapping" | "OrderedDict" | "defaultdict"
        | "DefaultDict" => Known::Dict,
        "Optional" => Known::Optional,
        "Union" => Known::Union,
        "Literal" => Known::Literal,
        "Annotated" => Known::Annotated,
        "Required" => Known::Wrapper(Wrap::Required),
        "NotRequired" => Known::Wrapper(Wrap::NotRequired),
        "ClassVar" => Known::Wrapper(Wrap::ClassVar),
        "Final" | "ReadOnly" | "InitVar" => Known::Wrapper(Wrap::Plain),
        _ => return None,
    })
}

/// The arguments of a subscript: `X[a, b]` → `[a, b]`, `X[a]` → `[a]`, `X[()]` → `[]`.
fn slice_args(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Tuple(t) => t.elts.iter().collect(),
        other => vec![other],
    }
}

fn is_open(v: &Value) -> bool {
    v.as_object().is_some_and(|m| m.is_empty())
}

fn null_schema() -> Value {
    json!({"type": "null"})
}

fn array(items: Value) -> Value {
    if is_open(&items) {
        json!({"type": "array"})
    } else {
        json!({"type": "array", "items": items})
    }
}

fn unique(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.insert("uniqueItems".to_string(), Value::Bool(true));
    }
    v
}

fn object(values: Value) -> Value {
    if is_open(&values) {
        json!({"type": "object"})
    } else {
        json!({"type": "object", "additionalProperties": values})
    }
}

/// `v` or null.
fn nullable(v: Value) -> Value {
    let null = null_schema();
    if is_open(&v) || v == null {
        return v;
    }
    let only = |key: &str| match &v {
        Value::Object(m) if m.len() == 1 => m.get(key).cloned(),
        _ => None,
    };
    match (only("type"), only("anyOf")) {
        (Some(Value::String(t)), _) => json!({"type": [t, "null"]}),
        (Some(Value::Array(mut ts)), _) => {
            if !ts.iter().any(|x| x.as_str() == Some("null")) {
                ts.push(json!("null"));
            }
            json!({"type": ts})
        }
        (_, Some(Value::Array(mut alts))) => {
            if !alts.contains(&null) {
                alts.push(null);
            }
            json!({"anyOf": alts})
        }
        // (Not `null` inside `json!`: that is the JSON literal, not this schema.)
        _ => Value::Object(Map::from_iter([(
            "anyOf".to_string(),
            Value::Array(vec![v, null]),
        )])),
    }
}

/// The alternatives of a member schema (a nested union's).
fn alternatives(v: Value) -> Vec<Value> {
    if let Value::Object(o) = &v {
        if o.len() == 1 {
            if let Some(Value::Array(alts)) = o.get("anyOf") {
                return alts.clone();
            }
            if let Some(Value::Array(ts)) = o.get("type") {
                return ts.iter().map(|t| json!({ "type": t })).collect();
            }
        }
    }
    vec![v]
}

fn union_of(members: Vec<Value>) -> Value {
    let null = null_schema();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut has_null = false;
    for m in members.into_iter().flat_map(alternatives) {
        if is_open(&m) {
            return json!({});
        }
        if m == null {
            has_null = true;
            continue;
        }
        if seen.insert(m.to_string()) {
            out.push(m);
        }
    }
    if out.len() == 1 {
        if let Some(one) = out.pop() {
            return if has_null { nullable(one) } else { one };
        }
    }
    if out.is_empty() {
        return if has_null { null } else { json!({}) };
    }
    if has_null {
        out.push(null);
    }
    json!({ "anyOf": out })
}

#[derive(Clone, Copy)]
enum Want {
    Str,
    Num,
    Positive,
    Count,
}

fn wanted(v: &Value, w: Want) -> bool {
    match w {
        Want::Str => v.is_string(),
        Want::Num => v.is_number(),
        Want::Positive => v.as_f64().is_some_and(|x| x > 0.0),
        Want::Count => v.is_u64(),
    }
}

/// Whether a schema is for arrays, objects or anything else (strings), for length keywords.
fn shape(m: &Map<String, Value>) -> &'static str {
    let has = |t: &str| match m.get("type") {
        Some(Value::String(s)) => s.as_str() == t,
        Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(t)),
        _ => false,
    };
    if has("array") {
        "array"
    } else if has("object") {
        "object"
    } else {
        "string"
    }
}

/// Object classes reachable through module bases, bases first, each once.
fn ancestors<'c>(
    classes: &'c Classes,
    name: &str,
    depth: u32,
    seen: &mut HashSet<String>,
    out: &mut Vec<&'c ClassInfo>,
) {
    if depth > MAX_DEPTH || !seen.insert(name.to_string()) {
        return;
    }
    let Some(info) = classes.classes.get(name) else {
        return;
    };
    for b in &info.module_bases {
        ancestors(classes, b, depth + 1, seen, out);
    }
    out.push(info);
}

fn enum_def(info: &ClassInfo) -> Value {
    let mut def = Map::new();
    def.insert("title".to_string(), Value::String(info.name.clone()));
    let by_name = info.enum_vals.as_ref().is_some_and(|v| v.by_name);
    let mut desc = info.doc.clone();
    if by_name {
        let note = format!("One of the member names of {}.", info.name);
        desc = Some(match desc {
            Some(d) => format!("{d}\n\n{note}"),
            None => note,
        });
    }
    if let Some(d) = desc {
        def.insert("description".to_string(), Value::String(d));
    }
    let mut seen = HashSet::new();
    let mut values = Vec::new();
    if let Some(vals) = &info.enum_vals {
        for (_, v, _) in &vals.members {
            if seen.insert(v.to_string()) {
                values.push(v.clone());
            }
        }
    }
    def.insert("enum".to_string(), Value::Array(values));
    Value::Object(def)
}

fn unknown(e: &Expr) -> String {
    format!("`{}` is not a type forge knows; left open", render(e))
}

fn too_deep() -> String {
    format!("a type hint nests more than {MAX_DEPTH} levels deep; forge gave up on it")
}

/// A short rendering of an expression for warnings.
fn render(e: &Expr) -> String {
    let mut out = String::new();
    render_into(e, &mut out, 0);
    if out.chars().count() > 80 {
        let mut short: String = out.chars().take(79).collect();
        short.push('…');
        short
    } else {
        out
    }
}

fn render_into(e: &Expr, out: &mut String, depth: u32) {
    if depth > 8 || out.len() > 200 {
        out.push('…');
        return;
    }
    let d = depth + 1;
    match e {
        Expr::Name(n) => out.push_str(n.id.as_str()),
        Expr::Attribute(a) => {
            render_into(&a.value, out, d);
            out.push('.');
            out.push_str(a.attr.as_str());
        }
        Expr::Subscript(s) => {
            render_into(&s.value, out, d);
            out.push('[');
            render_into(&s.slice, out, d);
            out.push(']');
        }
        Expr::Tuple(t) => {
            if t.parenthesized {
                out.push('(');
            }
            render_list(&t.elts, out, d);
            if t.parenthesized {
                out.push(')');
            }
        }
        Expr::List(l) => {
            out.push('[');
            render_list(&l.elts, out, d);
            out.push(']');
        }
        Expr::BinOp(b) if b.op == Operator::BitOr => {
            render_into(&b.left, out, d);
            out.push_str(" | ");
            render_into(&b.right, out, d);
        }
        Expr::StringLiteral(s) => {
            out.push('"');
            out.extend(s.value.to_str().chars().take(60));
            out.push('"');
        }
        Expr::NumberLiteral(n) => match &n.value {
            Number::Int(i) => out.push_str(&i.to_string()),
            Number::Float(f) => out.push_str(&f.to_string()),
            Number::Complex { .. } => out.push('…'),
        },
        Expr::BooleanLiteral(b) => out.push_str(if b.value { "True" } else { "False" }),
        Expr::NoneLiteral(_) => out.push_str("None"),
        Expr::EllipsisLiteral(_) => out.push_str("..."),
        Expr::Call(c) => {
            render_into(&c.func, out, d);
            out.push_str("(…)");
        }
        Expr::UnaryOp(u) if u.op == UnaryOp::USub => {
            out.push('-');
            render_into(&u.operand, out, d);
        }
        _ => out.push('…'),
    }
}

fn render_list(items: &[Expr], out: &mut String, depth: u32) {
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if out.len() > 200 {
            out.push('…');
            break;
        }
        render_into(x, out, depth);
    }
}

/// Largest bracket nesting of a string annotation's text (an upper bound of what parsing it
/// builds, checked before parsing).
fn nesting(text: &str) -> u32 {
    let mut depth: u32 = 0;
    let mut max = 0;
    for b in text.bytes() {
        match b {
            b'[' | b'(' | b'{' => {
                depth = depth.saturating_add(1);
                max = max.max(depth);
            }
            b']' | b')' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Converts the hints of one function; named classes it meets go to `defs`.
pub(crate) struct Schemas<'a> {
    pub classes: &'a Classes,
    pub imports: &'a Imports,
    /// `$defs` of the function's input (or output) schema, by class name.
    pub defs: BTreeMap<String, Value>,
    /// What could not be understood, each a short sentence naming the hint.
    pub warnings: Vec<String>,
}

impl<'a> Schemas<'a> {
    pub(crate) fn new(classes: &'a Classes, imports: &'a Imports) -> Self {
        Schemas {
            classes,
            imports,
            defs: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    /// The schema of a hint; `None` when the hint is not understood (the caller leaves the
    /// value open and warns).
    pub(crate) fn hint(&mut self, ann: &Expr) -> Option<Value> {
        self.conv(ann, 0).ok()
    }

    /// A default value written as a literal, as JSON; `None` for anything else.
    pub(crate) fn literal(&self, e: &Expr) -> Option<Value> {
        let mut lookup = Lookup {
            classes: self.classes,
            imports: self.imports,
        };
        let mut budget = MAX_LITERAL;
        lit_value(&mut lookup, e, 0, &mut budget)
    }

    fn warn(&mut self, msg: String) {
        if self.warnings.len() < MAX_WARNINGS && !self.warnings.contains(&msg) {
            self.warnings.push(msg);
        }
    }

    fn resolve(&self, e: &Expr) -> Option<Known> {
        let q = self.imports.qualify(e)?;
        if self.classes.classes.contains_key(&q) {
            return Some(Known::Class(q));
        }
        known_name(&q)
    }

    fn conv(&mut self, e: &Expr, depth: u32) -> Result<Value, Fail> {
        if depth > MAX_DEPTH {
            self.warn(too_deep());
            return Err(Fail::Warned);
        }
        match e {
            Expr::NoneLiteral(_) => Ok(null_schema()),
            Expr::StringLiteral(s) => {
                let parsed = self.parse_annotation(s.value.to_str(), depth)?;
                let out = self.conv(parsed.expr(), depth + 1);
                drop(parsed);
                out
            }
            Expr::Name(_) | Expr::Attribute(_) => self.named(e, depth),
            Expr::Subscript(s) => self.subscript(s, depth),
            Expr::BinOp(b) if b.op == Operator::BitOr => self.union(vec![e], depth),
            _ => Err(Fail::Unknown),
        }
    }

    /// An inner part: not understood → open, with a warning.
    fn inner(&mut self, e: &Expr, depth: u32) -> Result<Value, Fail> {
        match self.conv(e, depth) {
            Ok(v) => Ok(v),
            Err(Fail::Unknown) => {
                self.warn(unknown(e));
                Ok(json!({}))
            }
            Err(Fail::Warned) => Err(Fail::Warned),
        }
    }

    fn parse_annotation(&mut self, text: &str, depth: u32) -> Result<Parsed<ModExpression>, Fail> {
        let text = text.trim();
        if text.len() > MAX_STRING_HINT {
            self.warn(format!(
                "a string annotation of {} bytes is longer than forge reads ({MAX_STRING_HINT}); left open",
                text.len()
            ));
            return Err(Fail::Warned);
        }
        if depth.saturating_add(nesting(text)) > MAX_DEPTH {
            self.warn(too_deep());
            return Err(Fail::Warned);
        }
        ruff_python_parser::parse_expression(text).map_err(|_| Fail::Unknown)
    }

    fn named(&mut self, e: &Expr, depth: u32) -> Result<Value, Fail> {
        match self.resolve(e) {
            Some(Known::Schema(v)) => Ok(v),
            Some(Known::List | Known::Tuple) => Ok(json!({"type": "array"})),
            Some(Known::Set) => Ok(json!({"type": "array", "uniqueItems": true})),
            Some(Known::Dict) => Ok(json!({"type": "object"})),
            Some(Known::Class(name)) => self.class_ref(&name, depth),
            _ => Err(Fail::Unknown),
        }
    }

    fn subscript(&mut self, s: &ExprSubscript, depth: u32) -> Result<Value, Fail> {
        let known = self.resolve(&s.value).ok_or(Fail::Unknown)?;
        let args = slice_args(&s.slice);
        let next = depth + 1;
        match known {
            Known::List => match args.as_slice() {
                [t] => Ok(array(self.inner(t, next)?)),
                _ => Err(Fail::Unknown),
            },
            Known::Set => match args.as_slice() {
                [t] => Ok(unique(array(self.inner(t, next)?))),
                _ => Err(Fail::Unknown),
            },
            Known::Tuple => self.tuple(&args, next),
            Known::Dict => match args.as_slice() {
                [_, v] => Ok(object(self.inner(v, next)?)),
                _ => Err(Fail::Unknown),
            },
            Known::Optional => match args.as_slice() {
                [t] => Ok(nullable(self.inner(t, next)?)),
                _ => Err(Fail::Unknown),
            },
            Known::Union => self.union(args, depth),
            Known::Literal => self.literal_type(args),
            Known::Annotated => match args.split_first() {
                Some((t, meta)) if !meta.is_empty() => {
                    let mut v = self.inner(t, next)?;
                    for m in meta {
                        self.apply_meta(&mut v, m);
                    }
                    Ok(v)
                }
                _ => Err(Fail::Unknown),
            },
            Known::Wrapper(_) => match args.as_slice() {
                [t] => self.conv(t, next),
                _ => Err(Fail::Unknown),
            },
            Known::Schema(v) => Ok(v),
            Known::Class(name) => self.class_ref(&name, depth),
        }
    }

    fn tuple(&mut self, args: &[&Expr], depth: u32) -> Result<Value, Fail> {
        match args {
            [] => Ok(json!({"type": "array", "maxItems": 0})),
            [t, Expr::EllipsisLiteral(_)] => Ok(array(self.inner(t, depth)?)),
            _ => {
                let mut items = Vec::with_capacity(args.len());
                for a in args {
                    items.push(self.inner(a, depth)?);
                }
                let n = items.len();
                Ok(json!({
                    "type": "array",
                    "prefixItems": items,
                    "items": false,
                    "minItems": n,
                    "maxItems": n,
                }))
            }
        }
    }

    /// A union, flattened with a work list (a 10,000-member `a | b | …` chain costs no stack).
    fn union(&mut self, args: Vec<&Expr>, depth: u32) -> Result<Value, Fail> {
        enum Item<'e> {
            E(&'e Expr),
            Null,
        }
        let mut work: Vec<Item<'_>> = args.into_iter().rev().map(Item::E).collect();
        let mut members = Vec::new();
        while let Some(item) = work.pop() {
            let e = match item {
                Item::Null => {
                    members.push(null_schema());
                    continue;
                }
                Item::E(e) => e,
            };
            match e {
                Expr::BinOp(b) if b.op == Operator::BitOr => {
                    work.push(Item::E(&b.right));
                    work.push(Item::E(&b.left));
                    continue;
                }
                Expr::Subscript(s) => match self.resolve(&s.value) {
                    Some(Known::Union) => {
                        work.extend(slice_args(&s.slice).into_iter().rev().map(Item::E));
                        continue;
                    }
                    Some(Known::Optional) => {
                        if let [t] = slice_args(&s.slice).as_slice() {
                            work.push(Item::Null);
                            work.push(Item::E(t));
                            continue;
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
            members.push(self.inner(e, depth + 1)?);
        }
        Ok(union_of(members))
    }

    fn literal_type(&self, args: Vec<&Expr>) -> Result<Value, Fail> {
        let mut work = args;
        work.reverse();
        let mut seen = HashSet::new();
        let mut values = Vec::new();
        while let Some(e) = work.pop() {
            if let Expr::Subscript(s) = e {
                if matches!(self.resolve(&s.value), Some(Known::Literal)) {
                    let mut nested = slice_args(&s.slice);
                    nested.reverse();
                    work.extend(nested);
                    continue;
                }
            }
            let v = self.literal(e).ok_or(Fail::Unknown)?;
            if seen.insert(v.to_string()) {
                values.push(v);
            }
        }
        if values.len() == 1 {
            if let Some(v) = values.pop() {
                return Ok(json!({ "const": v }));
            }
        }
        if values.is_empty() {
            return Err(Fail::Unknown);
        }
        Ok(json!({ "enum": values }))
    }

    /// `Annotated` metadata and pydantic `Field(…)` calls: description and constraints.
    fn apply_meta(&self, schema: &mut Value, meta: &Expr) {
        let Value::Object(m) = schema else { return };
        match meta {
            Expr::StringLiteral(s) => {
                m.entry("description")
                    .or_insert_with(|| Value::String(s.value.to_str().to_string()));
            }
            Expr::Call(c) => {
                let Some(q) = self.imports.qualify(&c.func) else {
                    return;
                };
                if one_of(&q, PYDANTIC_FIELD) {
                    for k in c.arguments.keywords.iter() {
                        if let Some(arg) = &k.arg {
                            self.constraint(m, arg.as_str(), &k.value);
                        }
                    }
                } else if one_of(&q, DOC) {
                    if let Some(Expr::StringLiteral(s)) = c.arguments.args.first() {
                        m.entry("description")
                            .or_insert_with(|| Value::String(s.value.to_str().to_string()));
                    }
                } else if let Some(short) = q.strip_prefix("annotated_types.") {
                    let key = match short {
                        "Ge" => "ge",
                        "Gt" => "gt",
                        "Le" => "le",
                        "Lt" => "lt",
                        "MultipleOf" => "multiple_of",
                        "MinLen" => "min_length",
                        "MaxLen" => "max_length",
                        _ => return,
                    };
                    if let Some(v) = c.arguments.args.first() {
                        self.constraint(m, key, v);
                    }
                }
            }
            _ => {}
        }
    }

    fn constraint(&self, m: &mut Map<String, Value>, key: &str, e: &Expr) {
        let shape = shape(m);
        let length =
            |for_array: &'static str, for_object: &'static str, other: &'static str| match shape {
                "array" => for_array,
                "object" => for_object,
                _ => other,
            };
        let (name, want) = match key {
            "description" => ("description", Want::Str),
            "ge" => ("minimum", Want::Num),
            "le" => ("maximum", Want::Num),
            "gt" => ("exclusiveMinimum", Want::Num),
            "lt" => ("exclusiveMaximum", Want::Num),
            "multiple_of" => ("multipleOf", Want::Positive),
            "min_length" => (
                length("minItems", "minProperties", "minLength"),
                Want::Count,
            ),
            "max_length" => (
                length("maxItems", "maxProperties", "maxLength"),
                Want::Count,
            ),
            "pattern" => ("pattern", Want::Str),
            _ => return,
        };
        let Some(v) = self.literal(e) else { return };
        if wanted(&v, want) {
            m.entry(name).or_insert(v);
        }
    }

    /// `{"$ref": …}` to a module class, converting it into `defs` the first time.
    fn class_ref(&mut self, name: &str, depth: u32) -> Result<Value, Fail> {
        let classes: &'a Classes = self.classes;
        let info = classes.classes.get(name).ok_or(Fail::Unknown)?;
        if info.kind == Kind::Plain {
            return Err(Fail::Unknown);
        }
        let reference = json!({ "$ref": format!("#/$defs/{name}") });
        if self.defs.contains_key(name) {
            return Ok(reference);
        }
        let def = match info.kind {
            Kind::Enum { .. } => enum_def(info),
            _ => {
                // A placeholder first, so that self-references end at the `$ref`.
                self.defs.insert(name.to_string(), json!({}));
                self.object_def(info, depth)
            }
        };
        self.defs.insert(name.to_string(), def);
        Ok(reference)
    }

    fn object_def(&mut self, info: &'a ClassInfo, depth: u32) -> Value {
        let classes: &'a Classes = self.classes;
        let mut chain = Vec::new();
        let mut seen = HashSet::new();
        ancestors(classes, &info.name, 0, &mut seen, &mut chain);
        let mut props: Vec<(String, Value, bool)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for c in chain {
            if !c.own_fields {
                continue;
            }
            for f in &c.fields {
                let Some(prop) = self.field_prop(c, f, depth) else {
                    continue;
                };
                match index.get(&prop.0) {
                    Some(&i) => {
                        if let Some(slot) = props.get_mut(i) {
                            *slot = prop;
                        }
                    }
                    None => {
                        index.insert(prop.0.clone(), props.len());
                        props.push(prop);
                    }
                }
            }
        }
        let mut properties = Map::new();
        let mut required = Vec::new();
        for (k, v, r) in props {
            if r {
                required.push(Value::String(k.clone()));
            }
            properties.insert(k, v);
        }
        let mut def = Map::new();
        def.insert("type".to_string(), json!("object"));
        def.insert("title".to_string(), Value::String(info.name.clone()));
        if let Some(d) = &info.doc {
            def.insert("description".to_string(), Value::String(d.clone()));
        }
        def.insert("properties".to_string(), Value::Object(properties));
        if !required.is_empty() {
            def.insert("required".to_string(), Value::Array(required));
        }
        Value::Object(def)
    }

    /// One property: name, schema, required. `None` for fields that are not properties.
    fn field_prop(
        &mut self,
        c: &ClassInfo,
        f: &FieldInfo,
        depth: u32,
    ) -> Option<(String, Value, bool)> {
        let (mut schema, mark) = match &f.ann {
            Some(ann) => self.field_hint(ann, depth + 1)?,
            None => {
                self.warn(format!(
                    "the annotation of `{}.{}` nests too deeply; left open",
                    c.name, f.name
                ));
                (json!({}), None)
            }
        };
        if let Some(meta) = &f.meta {
            self.apply_meta(&mut schema, meta);
        }
        if let Some(d) = &f.default {
            if let Some(v) = self.literal(d) {
                if let Value::Object(m) = &mut schema {
                    m.insert("default".to_string(), v);
                }
            }
        }
        let required = match c.kind {
            Kind::TypedDict => mark.unwrap_or(c.total),
            _ => !f.has_default,
        };
        let key = f.alias.clone().unwrap_or_else(|| f.name.clone());
        Some((key, schema, required))
    }

    /// A field annotation: its schema and `Required`/`NotRequired` mark; `None` for a
    /// `ClassVar`.
    fn field_hint(&mut self, ann: &Expr, depth: u32) -> Option<(Value, Option<bool>)> {
        let parsed = match ann {
            Expr::StringLiteral(s) => match self.parse_annotation(s.value.to_str(), depth) {
                Ok(p) => Some(p),
                Err(Fail::Unknown) => {
                    self.warn(unknown(ann));
                    return Some((json!({}), None));
                }
                Err(Fail::Warned) => return Some((json!({}), None)),
            },
            _ => None,
        };
        let mut e: &Expr = match &parsed {
            Some(p) => p.expr(),
            None => ann,
        };
        let mut required: Option<bool> = None;
        for _ in 0..16 {
            let Expr::Subscript(s) = e else { break };
            let Some(Known::Wrapper(w)) = self.resolve(&s.value) else {
                break;
            };
            match w {
                Wrap::ClassVar => return None,
                Wrap::Required => {
                    required.get_or_insert(true);
                }
                Wrap::NotRequired => {
                    required.get_or_insert(false);
                }
                Wrap::Plain => {}
            }
            e = &*s.slice;
        }
        if matches!(self.resolve(e), Some(Known::Wrapper(Wrap::ClassVar))) {
            return None;
        }
        let schema = match self.conv(e, depth + 1) {
            Ok(v) => v,
            Err(Fail::Unknown) => {
                self.warn(unknown(e));
                json!({})
            }
            Err(Fail::Warned) => json!({}),
        };
        Some((schema, required))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruff_python_ast::ModModule;

    struct Out {
        hints: BTreeMap<String, Option<Value>>,
        defaults: BTreeMap<String, Option<Value>>,
        defs: BTreeMap<String, Value>,
        warnings: Vec<String>,
    }

    impl Out {
        fn hint(&self, name: &str) -> Option<Value> {
            self.hints[name].clone()
        }
        fn default(&self, name: &str) -> Option<Value> {
            self.defaults[name].clone()
        }
    }

    fn parse(src: &str) -> Parsed<ModModule> {
        ruff_python_parser::parse_module(src).unwrap()
    }

    /// Converts every annotation and default of the module's function `f`.
    fn run(src: &str) -> Out {
        let parsed = parse(src);
        let body = parsed.suite();
        let imports = Imports::collect(body);
        let classes = Classes::collect(body, &imports);
        let mut s = Schemas::new(&classes, &imports);
        let f = body
            .iter()
            .find_map(|st| match st {
                Stmt::FunctionDef(f) if f.name.as_str() == "f" => Some(f),
                _ => None,
            })
            .unwrap();
        let mut hints = BTreeMap::new();
        let mut defaults = BTreeMap::new();
        for p in f.parameters.iter_non_variadic_params() {
            let name = p.name().as_str().to_string();
            if let Some(a) = p.annotation() {
                hints.insert(name.clone(), s.hint(a));
            }
            if let Some(d) = p.default() {
                defaults.insert(name, s.literal(d));
            }
        }
        Out {
            hints,
            defaults,
            defs: s.defs,
            warnings: s.warnings,
        }
    }

    /// Runs `check` with the schemas of a module and a parsed expression.
    fn with_expr<R>(
        module: &str,
        expr: &str,
        check: impl FnOnce(&mut Schemas<'_>, &Expr) -> R,
    ) -> R {
        let parsed = parse(module);
        let imports = Imports::collect(parsed.suite());
        let classes = Classes::collect(parsed.suite(), &imports);
        let mut s = Schemas::new(&classes, &imports);
        let e = ruff_python_parser::parse_expression(expr).unwrap();
        check(&mut s, e.expr())
    }

    fn lit(expr: &str) -> Option<Value> {
        with_expr("", expr, |s, e| s.literal(e))
    }

    fn int() -> Value {
        json!({"type": "integer"})
    }
    fn string() -> Value {
        json!({"type": "string"})
    }

    #[test]
    fn builtins_and_typing_names() {
        let o = run(r#"
import types, os, datetime, uuid, decimal
from typing import Any, List, Dict, FrozenSet, Tuple, Sequence, Iterable, Mapping, MutableMapping, MutableSequence, AbstractSet
from collections.abc import Sequence as ASeq
from pathlib import Path
from datetime import date

def f(a: int, b: float, c: str, d: bool, e: bytes, g: bytearray, h: None, i: Any, j: object,
      k: list[int], l: List[str], m: list, n: Sequence[int], o: Iterable[int], p: MutableSequence[int],
      q: ASeq[str], r: set[int], s: FrozenSet[str], t: frozenset, u: AbstractSet[int],
      v: tuple[int, str], w: tuple[int, ...], x: Tuple[()], y: dict[str, int], z: Dict[str, float],
      aa: Mapping[str, bool], ab: MutableMapping[str, list[int]], ac: dict, ad: Path, ae: os.PathLike,
      af: datetime.datetime, ag: date, ah: uuid.UUID, ai: decimal.Decimal, aj: types.NoneType,
      ak: tuple, al: os.PathLike[str]):
    pass
"#);
        let b64 = json!({"type": "string", "contentEncoding": "base64"});
        let arr = |items: Value| json!({"type": "array", "items": items});
        let set = |items: Value| json!({"type": "array", "items": items, "uniqueItems": true});
        let path = json!({"type": "string", "format": "path"});
        let expected = [
            ("a", int()),
            ("b", json!({"type": "number"})),
            ("c", string()),
            ("d", json!({"type": "boolean"})),
            ("e", b64.clone()),
            ("g", b64),
            ("h", json!({"type": "null"})),
            ("i", json!({})),
            ("j", json!({})),
            ("k", arr(int())),
            ("l", arr(string())),
            ("m", json!({"type": "array"})),
            ("n", arr(int())),
            ("o", arr(int())),
            ("p", arr(int())),
            ("q", arr(string())),
            ("r", set(int())),
            ("s", set(string())),
            ("t", json!({"type": "array", "uniqueItems": true})),
            ("u", set(int())),
            (
                "v",
                json!({"type": "array", "prefixItems": [int(), string()], "items": false, "minItems": 2, "maxItems": 2}),
            ),
            ("w", arr(int())),
            ("x", json!({"type": "array", "maxItems": 0})),
            (
                "y",
                json!({"type": "object", "additionalProperties": int()}),
            ),
            (
                "z",
                json!({"type": "object", "additionalProperties": {"type": "number"}}),
            ),
            (
                "aa",
                json!({"type": "object", "additionalProperties": {"type": "boolean"}}),
            ),
            (
                "ab",
                json!({"type": "object", "additionalProperties": arr(int())}),
            ),
            ("ac", json!({"type": "object"})),
            ("ad", path.clone()),
            ("ae", path.clone()),
            ("af", json!({"type": "string", "format": "date-time"})),
            ("ag", json!({"type": "string", "format": "date"})),
            ("ah", json!({"type": "string", "format": "uuid"})),
            ("ai", json!({"type": "string", "format": "decimal"})),
            ("aj", json!({"type": "null"})),
            ("ak", json!({"type": "array"})),
            ("al", path),
        ];
        for (name, want) in expected {
            assert_eq!(o.hint(name), Some(want), "parameter {name}");
        }
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
        assert!(o.defs.is_empty());
    }

    #[test]
    fn optional_and_unions() {
        let o = run(r#"
from typing import Optional, Union
import typing as t
def f(a: Optional[int], b: Union[int, None], c: int | None, d: None | str,
      e: Optional[list[int]], g: t.Optional[int], h: Union[int, str, float],
      i: int | str | None, j: Union[int, Union[str, bytes]], k: Optional[Union[int, str]],
      l: Union[int, int], m: int | (str | None)):
    pass
"#);
        let nint = json!({"type": ["integer", "null"]});
        assert_eq!(o.hint("a"), Some(nint.clone()));
        assert_eq!(o.hint("b"), Some(nint.clone()));
        assert_eq!(o.hint("c"), Some(nint.clone()));
        assert_eq!(o.hint("g"), Some(nint));
        assert_eq!(o.hint("d"), Some(json!({"type": ["string", "null"]})));
        assert_eq!(
            o.hint("e"),
            Some(json!({"anyOf": [{"type": "array", "items": int()}, {"type": "null"}]}))
        );
        assert_eq!(
            o.hint("h"),
            Some(json!({"anyOf": [int(), string(), {"type": "number"}]}))
        );
        assert_eq!(
            o.hint("i"),
            Some(json!({"anyOf": [int(), string(), {"type": "null"}]}))
        );
        assert_eq!(
            o.hint("j"),
            Some(
                json!({"anyOf": [int(), string(), {"type": "string", "contentEncoding": "base64"}]})
            )
        );
        assert_eq!(
            o.hint("k"),
            Some(json!({"anyOf": [int(), string(), {"type": "null"}]}))
        );
        assert_eq!(o.hint("l"), Some(int()));
        assert_eq!(
            o.hint("m"),
            Some(json!({"anyOf": [int(), string(), {"type": "null"}]}))
        );
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    }

    #[test]
    fn literals() {
        let o = run(r#"
from typing import Literal
import enum
class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"
def f(a: Literal["a", "b", 1], b: Literal["x"], c: Literal[None, True, -1],
      d: Literal["a", Literal["b", "a"]], e: Literal[Color.RED]):
    pass
"#);
        assert_eq!(o.hint("a"), Some(json!({"enum": ["a", "b", 1]})));
        assert_eq!(o.hint("b"), Some(json!({"const": "x"})));
        assert_eq!(o.hint("c"), Some(json!({"enum": [null, true, -1]})));
        assert_eq!(o.hint("d"), Some(json!({"enum": ["a", "b"]})));
        assert_eq!(o.hint("e"), Some(json!({"const": "red"})));
    }

    #[test]
    fn annotated() {
        let o = run(r#"
from typing import Annotated
import pydantic
from pydantic import Field
def f(a: Annotated[int, "count"],
      b: Annotated[str, Field(description="name", min_length=1, max_length=5)],
      c: Annotated[int, pydantic.Field(ge=0, lt=10)],
      d: Annotated[list[int], Field(max_length=3), "items"],
      e: Annotated[Unknown, "doc"]):
    pass
"#);
        assert_eq!(
            o.hint("a"),
            Some(json!({"type": "integer", "description": "count"}))
        );
        assert_eq!(
            o.hint("b"),
            Some(json!({"type": "string", "description": "name", "minLength": 1, "maxLength": 5}))
        );
        assert_eq!(
            o.hint("c"),
            Some(json!({"type": "integer", "minimum": 0, "exclusiveMaximum": 10}))
        );
        assert_eq!(
            o.hint("d"),
            Some(json!({"type": "array", "items": int(), "maxItems": 3, "description": "items"}))
        );
        assert_eq!(o.hint("e"), Some(json!({"description": "doc"})));
        assert_eq!(
            o.warnings,
            vec!["`Unknown` is not a type forge knows; left open".to_string()]
        );
    }

    #[test]
    fn string_annotations_and_forward_refs() {
        let o = run(r#"
from typing import Optional
from pathlib import Path
from dataclasses import dataclass
def f(a: "int", b: "Optional[Path]", c: "Node", d: list["int"], e: "Optional['int']",
      g: "not valid [", h: " list[str] "):
    pass
@dataclass
class Node:
    name: str
"#);
        assert_eq!(o.hint("a"), Some(int()));
        assert_eq!(
            o.hint("b"),
            Some(json!({"anyOf": [{"type": "string", "format": "path"}, {"type": "null"}]}))
        );
        assert_eq!(o.hint("c"), Some(json!({"$ref": "#/$defs/Node"})));
        assert_eq!(o.hint("d"), Some(json!({"type": "array", "items": int()})));
        assert_eq!(o.hint("e"), Some(json!({"type": ["integer", "null"]})));
        assert_eq!(o.hint("g"), None);
        assert_eq!(
            o.hint("h"),
            Some(json!({"type": "array", "items": string()}))
        );
        assert_eq!(
            o.defs["Node"],
            json!({"type": "object", "title": "Node", "properties": {"name": string()}, "required": ["name"]})
        );
    }

    #[test]
    fn enums() {
        let o = run(r#"
import enum
from enum import Enum, auto, StrEnum
class Color(Enum):
    """Colours."""
    RED = "red"
    GREEN = "green"
    _ignore_ = ["x"]
    def describe(self):
        return self.value
class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2
class Mode(Enum):
    FAST = auto()
    SLOW = auto()
class Tag(StrEnum):
    A = auto()
    B = auto()
def f(c: Color, l: Level, m: Mode, t: Tag, d: Color = Color.GREEN, e: Mode = Mode.SLOW,
      g: Level = Level.HIGH, h: Tag = Tag.B):
    pass
"#);
        assert_eq!(o.hint("c"), Some(json!({"$ref": "#/$defs/Color"})));
        assert_eq!(o.hint("m"), Some(json!({"$ref": "#/$defs/Mode"})));
        assert_eq!(
            o.defs["Color"],
            json!({"title": "Color", "description": "Colours.", "enum": ["red", "green"]})
        );
        assert_eq!(o.defs["Level"], json!({"title": "Level", "enum": [1, 2]}));
        assert_eq!(
            o.defs["Mode"],
            json!({"title": "Mode", "description": "One of the member names of Mode.", "enum": ["FAST", "SLOW"]})
        );
        assert_eq!(o.defs["Tag"], json!({"title": "Tag", "enum": ["a", "b"]}));
        assert_eq!(o.default("d"), Some(json!("green")));
        assert_eq!(o.default("e"), Some(json!("SLOW")));
        assert_eq!(o.default("g"), Some(json!(2)));
        assert_eq!(o.default("h"), Some(json!("b")));
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    }

    #[test]
    fn enums_referring_to_each_other_and_conditional_classes() {
        let o = run(r#"
try:
    from enum import Enum
except ImportError:
    pass
if True:
    class A(Enum):
        X = 1
else:
    class A(Enum):
        Y = 2
class B(Enum):
    P = A.X
class C(Enum):
    Q = D.R
class D(Enum):
    R = C.Q
def f(a: A, b: B, c: C, d: D):
    pass
"#);
        assert_eq!(o.defs["A"], json!({"title": "A", "enum": [1]}));
        assert_eq!(o.defs["B"], json!({"title": "B", "enum": [1]}));
        // The cycle ends in names rather than looping.
        assert!(o.defs.contains_key("C"));
        assert!(o.defs.contains_key("D"));
    }

    #[test]
    fn typed_dicts() {
        let o = run(r#"
from typing import TypedDict, Required
from typing_extensions import NotRequired
class Base(TypedDict):
    id: int
class Movie(Base, total=False):
    """A film."""
    title: Required[str]
    year: int
class Item(TypedDict):
    name: str
    note: NotRequired["str"]
    "note text"
def f(m: Movie, i: Item):
    pass
"#);
        assert_eq!(
            o.defs["Movie"],
            json!({
                "type": "object", "title": "Movie", "description": "A film.",
                "properties": {"id": int(), "title": string(), "year": int()},
                "required": ["id", "title"],
            })
        );
        assert_eq!(
            o.defs["Item"],
            json!({
                "type": "object", "title": "Item",
                "properties": {"name": string(), "note": string()},
                "required": ["name"],
            })
        );
        assert!(!o.defs.contains_key("Base"));
    }

    #[test]
    fn dataclasses() {
        let o = run(r#"
from dataclasses import dataclass, field
import dataclasses
from typing import ClassVar
@dataclass(frozen=True)
class Point:
    """A point.

    With more text.
    """
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)
    scale: float = field(default=1.5)
    kind: ClassVar[str] = "p"
    hidden: int = field(default=0, init=False)
@dataclasses.dataclass
class Box:
    p: Point
    label: str = "box"
def f(b: Box):
    pass
"#);
        assert_eq!(o.hint("b"), Some(json!({"$ref": "#/$defs/Box"})));
        assert_eq!(
            o.defs["Box"],
            json!({
                "type": "object", "title": "Box",
                "properties": {"p": {"$ref": "#/$defs/Point"}, "label": {"type": "string", "default": "box"}},
                "required": ["p"],
            })
        );
        assert_eq!(
            o.defs["Point"],
            json!({
                "type": "object", "title": "Point", "description": "A point.\n\nWith more text.",
                "properties": {
                    "x": int(),
                    "y": {"type": "integer", "default": 0},
                    "tags": {"type": "array", "items": string()},
                    "scale": {"type": "number", "default": 1.5},
                },
                "required": ["x"],
            })
        );
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    }

    #[test]
    fn named_tuples() {
        let o = run(r#"
from typing import NamedTuple
class P(NamedTuple):
    x: int
    y: int = 0
def f(p: P):
    pass
"#);
        assert_eq!(
            o.defs["P"],
            json!({
                "type": "object", "title": "P",
                "properties": {"x": int(), "y": {"type": "integer", "default": 0}},
                "required": ["x"],
            })
        );
    }

    #[test]
    fn pydantic_models() {
        let o = run(r#"
from typing import Optional
from pydantic import BaseModel, Field
class User(BaseModel):
    """A user."""
    name: str = Field(..., description="Full name")
    age: int = Field(default=3, description="Age", ge=0)
    tags: list[str] = Field(default_factory=list)
    nick: Optional[str] = None
    _secret: str = "x"
class Admin(User):
    level: int = Field(description="Rank")
    key: str = Field("k", alias="apiKey")
def f(u: User, a: Admin):
    pass
"#);
        let user_props = json!({
            "name": {"type": "string", "description": "Full name"},
            "age": {"type": "integer", "description": "Age", "minimum": 0, "default": 3},
            "tags": {"type": "array", "items": string()},
            "nick": {"type": ["string", "null"], "default": null},
        });
        assert_eq!(
            o.defs["User"],
            json!({
                "type": "object", "title": "User", "description": "A user.",
                "properties": user_props, "required": ["name"],
            })
        );
        let mut admin_props = user_props.as_object().unwrap().clone();
        admin_props.insert(
            "level".into(),
            json!({"type": "integer", "description": "Rank"}),
        );
        admin_props.insert("apiKey".into(), json!({"type": "string", "default": "k"}));
        assert_eq!(
            o.defs["Admin"],
            json!({
                "type": "object", "title": "Admin",
                "properties": admin_props, "required": ["name", "level"],
            })
        );
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    }

    #[test]
    fn self_referencing_dataclass() {
        let o = run(r#"
from dataclasses import dataclass, field
from typing import Optional
@dataclass
class Node:
    name: str
    children: list["Node"] = field(default_factory=list)
    parent: Optional["Node"] = None
def f(n: Node, m: list[Node]):
    pass
"#);
        let r = json!({"$ref": "#/$defs/Node"});
        assert_eq!(o.hint("n"), Some(r.clone()));
        assert_eq!(
            o.hint("m"),
            Some(json!({"type": "array", "items": r.clone()}))
        );
        assert_eq!(
            o.defs["Node"],
            json!({
                "type": "object", "title": "Node",
                "properties": {
                    "name": string(),
                    "children": {"type": "array", "items": r.clone()},
                    "parent": {"anyOf": [r, {"type": "null"}], "default": null},
                },
                "required": ["name"],
            })
        );
        assert_eq!(o.defs.len(), 1);
    }

    #[test]
    fn typing_imported_as_t() {
        let o = run(r#"
import typing as t
def f(a: t.Optional[int], b: t.List[t.Dict[str, int]], c: t.Literal["x", "y"], d: t.Any):
    pass
"#);
        assert_eq!(o.hint("a"), Some(json!({"type": ["integer", "null"]})));
        assert_eq!(
            o.hint("b"),
            Some(
                json!({"type": "array", "items": {"type": "object", "additionalProperties": int()}})
            )
        );
        assert_eq!(o.hint("c"), Some(json!({"enum": ["x", "y"]})));
        assert_eq!(o.hint("d"), Some(json!({})));
    }

    #[test]
    fn unknown_parts_are_left_open() {
        let o = run(r#"
from typing import Optional
class Plain:
    x: int
def f(a: list[Foo], b: Foo, c: Optional[Foo], d: dict[str, Foo], e: Plain, g: len(3)):
    pass
"#);
        assert_eq!(o.hint("a"), Some(json!({"type": "array"})));
        assert_eq!(o.hint("b"), None);
        assert_eq!(o.hint("c"), Some(json!({})));
        assert_eq!(o.hint("d"), Some(json!({"type": "object"})));
        assert_eq!(o.hint("e"), None);
        assert_eq!(o.hint("g"), None);
        assert_eq!(
            o.warnings,
            vec!["`Foo` is not a type forge knows; left open".to_string()]
        );
    }

    #[test]
    fn literal_defaults() {
        assert_eq!(lit("-1"), Some(json!(-1)));
        assert_eq!(lit("+2"), Some(json!(2)));
        assert_eq!(lit("1.5"), Some(json!(1.5)));
        assert_eq!(lit("-2.5"), Some(json!(-2.5)));
        assert_eq!(lit("True"), Some(json!(true)));
        assert_eq!(lit("None"), Some(Value::Null));
        assert_eq!(lit("'a' 'b'"), Some(json!("ab")));
        assert_eq!(
            lit("{'a': [1, (2, 3)], 'b': None}"),
            Some(json!({"a": [1, [2, 3]], "b": null}))
        );
        assert_eq!(lit("-9223372036854775808"), Some(json!(i64::MIN)));
        assert_eq!(lit("18446744073709551615"), Some(json!(u64::MAX)));
        assert_eq!(lit("1180591620717411303424"), None);
        assert_eq!(lit("2**70"), None);
        assert_eq!(lit("x"), None);
        assert_eq!(lit("{1: 2}"), None);
        assert_eq!(lit("{**x}"), None);
        assert_eq!(lit("f()"), None);
        assert_eq!(lit("1j"), None);
    }

    #[test]
    fn huge_literal_is_refused() {
        let huge = format!("[{}]", vec!["0"; 100_000].join(", "));
        assert_eq!(lit(&huge), None);
        let fine = format!("[{}]", vec!["0"; 1000].join(", "));
        assert_eq!(lit(&fine), Some(Value::Array(vec![json!(0); 1000])));
    }

    #[test]
    fn hostile_nesting_stops_at_the_depth_limit() {
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(|| {
                let deep = format!("{}int{}", "list[".repeat(10_000), "]".repeat(10_000));
                let (got, warnings) = with_expr("", &deep, |s, e| (s.hint(e), s.warnings.clone()));
                assert_eq!(got, None);
                assert!(warnings.iter().any(|w| w.contains("64")), "{warnings:?}");

                let ok = format!("{}int{}", "list[".repeat(60), "]".repeat(60));
                let got = with_expr("", &ok, |s, e| s.hint(e));
                assert!(got.is_some());

                let over = format!("{}int{}", "list[".repeat(70), "]".repeat(70));
                assert_eq!(with_expr("", &over, |s, e| s.hint(e)), None);

                // As a string annotation: too long, and too deep though short.
                let quoted = format!("'{deep}'");
                let (got, warnings) = with_expr("", &quoted, |s, e| (s.hint(e), s.warnings.clone()));
                assert_eq!(got, None);
                assert_eq!(warnings.len(), 1);
                let short = format!("'{}int{}'", "list[".repeat(100), "]".repeat(100));
                let (got, warnings) = with_expr("", &short, |s, e| (s.hint(e), s.warnings.clone()));
                assert_eq!(got, None);
                assert!(warnings.iter().any(|w| w.contains("64")), "{warnings:?}");

                // A 10,000-member union chain is flattened without recursion.
                let chain = format!("{}str", "int | ".repeat(10_000));
                let got = with_expr("", &chain, |s, e| s.hint(e));
                assert_eq!(got, Some(json!({"anyOf": [int(), string()]})));

                // Deep literals and long attribute chains.
                let deep_lit = format!("{}0{}", "[".repeat(10_000), "]".repeat(10_000));
                assert_eq!(lit(&deep_lit), None);
                let attrs = format!("a{}", ".b".repeat(10_000));
                assert_eq!(with_expr("", &attrs, |s, e| s.hint(e)), None);
                let wrapped = format!("list[a{}]", ".b".repeat(10_000));
                let (got, warnings) = with_expr("", &wrapped, |s, e| (s.hint(e), s.warnings.clone()));
                assert_eq!(got, Some(json!({"type": "array"})));
                assert!(warnings.iter().all(|w| w.chars().count() < 200), "{warnings:?}");

                // A field annotation too deep to keep.
                let src = format!("from dataclasses import dataclass\n@dataclass\nclass K:\n    x: {deep}\ndef f(k: K): pass\n");
                let o = run(&src);
                assert_eq!(o.hint("k"), Some(json!({"$ref": "#/$defs/K"})));
                assert_eq!(o.defs["K"]["properties"]["x"], json!({}));
                assert!(!o.warnings.is_empty());
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn long_class_chains_stop_at_the_depth_limit() {
        let mut src = String::from("from dataclasses import dataclass\n");
        for i in 0..300 {
            src.push_str(&format!(
                "@dataclass\nclass C{i}:\n    next: \"C{}\"\n",
                i + 1
            ));
        }
        src.push_str("@dataclass\nclass C300:\n    x: int\n");
        // Inheritance chains, diamonds included, are visited once per class.
        for i in 0..300 {
            src.push_str(&format!(
                "@dataclass\nclass L{}(L{i}, R{i}):\n    l{i}: int\n@dataclass\nclass R{}(L{i}, R{i}):\n    r{i}: int\n",
                i + 1,
                i + 1
            ));
        }
        src.push_str("@dataclass\nclass L0:\n    a: int\n@dataclass\nclass R0:\n    b: int\n");
        src.push_str("def f(c: C0, l: L300):\n    pass\n");
        let o = run(&src);
        assert_eq!(o.hint("c"), Some(json!({"$ref": "#/$defs/C0"})));
        assert!(o.defs.len() < 100);
        assert!(
            o.warnings.iter().any(|w| w.contains("64")),
            "{:?}",
            o.warnings
        );
        assert_eq!(o.hint("l"), Some(json!({"$ref": "#/$defs/L300"})));
        assert!(o.defs["L300"]["properties"]["l299"].is_object());
    }
}
