//! Effects from function bodies, statically (nothing is ever executed): what each module-level
//! function touches (files, processes, the network, mail, databases, the environment) and which of
//! its parameters name the target. The result drives undo plans, so where in doubt this errs
//! towards reporting a write.
//!
//! | Call (resolved through the imports)                                         | Fact                              | `params` from            |
//! |-----------------------------------------------------------------------------|-----------------------------------|--------------------------|
//! | `open`, `io.open`, `codecs.open`, `gzip/bz2/lzma/tarfile.open`, `zipfile.ZipFile`, `Path.open` | mode literal with `w a x +`, or non-literal: FileWrite; literal without them or absent: FileRead | the path |
//! | `os.open`                                                                   | FileWrite with `O_WRONLY/O_RDWR/O_CREAT/O_TRUNC/O_APPEND` or unknown flags, else FileRead | the path |
//! | `Path.write_text/write_bytes/touch/chmod`, `os.truncate/chmod/chown/utime`  | FileWrite                         | the path / receiver      |
//! | `shutil.copy/copy2/copyfile/copytree/copymode/copystat`                     | FileRead (src) + FileWrite (dst)  | src, dst                 |
//! | `os.remove/unlink`, `Path.unlink`                                           | FileDelete                        | the path                 |
//! | `os.rmdir`, `Path.rmdir`                                                    | DirDelete                         | the path                 |
//! | `shutil.rmtree`, `os.removedirs`                                            | TreeDelete                        | the path                 |
//! | `os.mkdir/makedirs`, `Path.mkdir`                                           | DirCreate                         | the path                 |
//! | `os.rename/replace/renames`, `shutil.move`, `Path.rename/replace`           | Move                              | source and destination   |
//! | `os.listdir/scandir/walk/stat`, `glob.glob/iglob`, `os.path.exists/getsize/isfile/isdir`, `Path.iterdir/glob/rglob/read_text/read_bytes/exists/stat/is_file/is_dir`, `linecache.getline`, `filecmp.cmp` (both), `fileinput.input` | FileRead | the path (a glob's pattern too) |
//! | `subprocess.*`, `os.system/popen/kill`, `os.exec*/spawn*/posix_spawn*`, `asyncio.create_subprocess_*` | Process | the command (`exec` forms: every argument) |
//! | `requests/httpx.get/head/options`, `urlopen` without data                   | NetRead                           | the URL                  |
//! | `requests/httpx.post/put/patch/delete`, `…request(method)` unless GET/HEAD/OPTIONS, `urlopen` with data or a `Request(data=/method=)`, sockets, `http.client`, `ftplib`, `telnetlib` | NetWrite | the URL / address |
//! | Methods of `requests.Session()`, `httpx.Client()/AsyncClient()`, `aiohttp.ClientSession()` locals | as the module functions (call `httpx.Client.post`) | the URL |
//! | `smtplib.SMTP/SMTP_SSL(...)`, `.sendmail/.send_message` on them             | Mail                              | the host                 |
//! | `.execute/.executemany/.executescript` (module imports `sqlite3` or a DB-API module, or the function connects) | SQL literal: SqlRead (`SELECT`, `WITH` without writes, `EXPLAIN`, `PRAGMA` without `=`), SqlWrite (DML, DDL, `PRAGMA x = y`), nothing for transaction control; otherwise SqlUnknown | the `connect(...)` path when the receiver comes from it |
//! | `os.environ[k] = v`, `del os.environ[k]`, `os.environ.update/pop/setdefault/clear`, `os.putenv/unsetenv` | EnvWrite             | the key / argument       |
//! | `.to_csv/.to_json/.to_parquet/…`, `.savefig`, `.save(path)`, `numpy.save*`, `torch.save`, `joblib.dump` | FileWrite       | the path argument        |
//! | a module function `helper(...)` (also passed as an argument, `submit(helper, p)`) | the callee's facts, `via` the callee (the deepest one kept), line of the call | callee params mapped through the arguments |
//! | a method of a module class: `C(...).m(...)`, `x.m(...)` with `x = C(...)` (local or global), `self.m(...)`, `C.m(...)`, `super().m(...)`, `getattr(x, "m")(...)`; `C(...)` itself (and `cls(...)` in a class method, `type(self)(...)`) runs `__new__`, `__init__`, `__post_init__` | as a module function (`via` `C.m`) | arguments from the method's second parameter on an instance |
//! | a module class named (`C(...)`, `C.m`, `C[x]`, `f = C`): its special methods and its metaclass's methods, which Python may call unseen (not those followed at that place: the constructor on `C(...)`, `__call__` on `C(...)(...)`, `__enter__`/`__exit__` on `with C(...):`; `C` as a value brings the constructor too) | as a module function, `via` the method | none |
//! | a class statement: the bases' `__init_subclass__`, the metaclass's `__prepare__`/`__new__`/`__init__` | as a module function | none |
//! | a function of another module of the package ([`Package`]: `from .helpers import zap`, `helpers.zap(p)`, `pkg.helpers.zap`, a `*` import); a class of one (its `__new__`/`__init__` with the arguments, its special methods); something else of one (a method of that name of any class of the package, as on an object forge cannot type) | as a module function, `via` it | as a module function |
//! | any call above reached through `from m import *`, an alias (`rm = os.remove`, `o = os`), `getattr(m, "literal")`, `__import__("m")`, `importlib.import_module("m")` | as the call it stands for | as the call |
//! | a function of an import used as a value, not called (`map(os.remove, ps)`, `target=shutil.rmtree`) | as the call, with no arguments | none (irreversible) |
//! | a call of an item of a module-level container ([`filled`]: `COMMANDS[k](p)`, `TABLE.get(op)(p)`, `for h in HANDLERS: h(p)`) | each function put into it (Unseen when one put in cannot be followed) | as a module function |
//! | a `functools.singledispatch` function (`@handle.register`); a function set on a module class after it (`C.__eq__ = f`) | the registered functions with the arguments; the function wherever the class is named | as a module function; none |
//! | `exec`/`eval`/`runpy`, `getattr` by a computed name on a module of [`EFFECT_MODULES`] or a namespace, an import by a computed name, `globals()[name](…)`; a module of [`EFFECT_MODULES`] held in a container or passed on (`[os]`, `helper(os)`) or a global holding one named; loading a pickle ([`Scope::unpickles`]); nesting past [`MAX_DEPTH`]; more than [`MAX_FACTS`] facts or a propagation cut short | Unseen | none |
//!
//! Parameter flow: a local derives from the union of the parameters named (through other
//! locals) by whatever was assigned to it, anywhere in the body (the body is walked twice, so
//! loops see later assignments; flows only grow). Nested `def`/`lambda`/`class` bodies are walked
//! for calls with their own parameters shadowing. Walks stop 200 levels deep; facts are capped at
//! 1,000 per function; propagation runs to a fixpoint (a round per function, within a budget).
//! Every one of those caps fails closed: what it cuts off is an Unseen fact.
//!
//! Escapes: a snapshot of the paths the parameters name covers the target only when the target
//! lies inside one of them. For the path effects (reads, writes, deletes, moves) `escapes` lists
//! the parameters for which that is not known. Containment is kept by `p` itself, `Path(p)`,
//! `str(p)`, `os.fspath(p)`, `p / s`, `os.path.join(p, s, …)`, `p.joinpath(s)`, `f"{p}/…"`,
//! `p.as_posix()`, `x or y`, `x if c else y`, and by what `Path(p).glob/rglob/iterdir()`,
//! `glob.glob(<pattern inside p>)`, `os.scandir(p)` (`entry.path`) and `os.walk(p)` (the
//! directory) yield, and by containers of paths (`for q in paths`, `sorted(...)`, `zip(...)`).
//! A bare name (`os.path.basename(p)`, `.name`, `.stem`, `os.listdir(p)`'s entries, also with
//! text without `/` or `..` around it: `f"{Path(p).stem}.bak"`) lies inside whatever it is joined
//! under, and nowhere known alone. Every other derivation escapes
//! (`os.path.dirname/abspath/realpath/normpath/expanduser`, `.parent`, `.parents[i]`,
//! `.with_suffix/with_name/with_stem/relative_to/resolve/absolute/expanduser()`, `+`, `%`,
//! `.format`, `.replace`, slicing, an f-string going on after `{p}` with anything but `/`, any
//! call not listed), and so does what is joined under a literal segment with `..` or an absolute
//! one (it discards what it is joined under), a segment joined under no parameter's path
//! (`os.path.join(BASE, name)`), and a target in which no parameter's path is the container (a bare
//! name or a flag alone). Through a call of a module function, what the caller binds to an
//! escaping callee parameter escapes, and so does an argument's own escaping derivation
//! (`helper(os.path.dirname(p))`) or a bare name passed on.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use ruff_python_ast::{
    Arguments, Comprehension, ConversionFlag, ExceptHandler, Expr, ExprCall, FStringPart,
    FStringValue, InterpolatedElement, InterpolatedStringElement, InterpolatedStringElements,
    Keyword, Number, Operator, Parameters, Pattern, Stmt, StmtFunctionDef,
};
use ruff_source_file::LineIndex;
use ruff_text_size::{Ranged, TextSize};

use super::imports::Imports;
use crate::ir::PyEffect as E;
use crate::ir::{PyEffect, PyFact};

/// Deepest module-level nesting (`if` in `if` …) read for definitions; past it every function
/// fails closed.
const MODULE_DEPTH: usize = 10_000;

/// Deepest statement/expression nesting the walks descend into.
const MAX_DEPTH: usize = 200;
/// Deepest nesting `kind_of` looks through (`Path(p).parent.with_suffix(...)`).
const KIND_DEPTH: usize = 64;
/// Facts kept per function.
const MAX_FACTS: usize = 1_000;
/// Rounds of callee → caller propagation.
const MAX_ROUNDS: usize = 50;
/// Parameters kept in one flow set (a hostile module could otherwise make them quadratic).
const MAX_FLOW: usize = 256;
/// Fact mappings the propagation may do in all (a backstop for hostile modules).
const PROPAGATION_BUDGET: usize = 10_000_000;
/// SQL texts longer than this are not scanned (SqlUnknown).
const MAX_SQL: usize = 32 * 1024;

/// Deepest nesting `derive` follows the path forms through; deeper, everything escapes.
const DERIVE_DEPTH: usize = 64;

/// Parameter indices (in the function's declaration order).
type Params = BTreeSet<u32>;

/// The parameters a value derives from, and how. Every set is a subset of `all`; a parameter
/// reaching the value along several routes is in several sets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Flow {
    /// Every parameter named (through the locals), as the target's `params`.
    all: Params,
    /// Those whose path the value lies inside (`p`, `Path(p) / "x"`, `f"{p}/x"`).
    inside: Params,
    /// Those reaching it through a derivation that can lead outside their path (`dirname`,
    /// `.parent`, `+ ".bak"`, an unknown call).
    esc: Params,
    /// Those reaching it as a bare name (`os.path.basename(p)`, `.name`, `os.listdir(p)`'s
    /// entries): inside whatever it is joined under, nowhere known alone.
    bare: Params,
    /// Those joined as segments under a parameter's path (`os.path.join(root, name)`: `name`):
    /// the value lies inside that path only if each is a relative path without `..`, which the
    /// runtime checks ([`aifirst_capability::UndoPlan::relative`]).
    segs: Params,
    /// Those reaching it as themselves with name text added (`name + ".md"`, `f"{key}.csv"`):
    /// alone a sibling of their path (they escape), joined under a parameter's path a segment
    /// like `name` itself (the text has no separator and no `..`).
    suffixed: Params,
    /// The value may also be one no parameter names (`q = p` and elsewhere
    /// `q = "/etc/x"`, `p or "/tmp/x"`, `[p, "/tmp/x"]`): flows only grow, so without this
    /// the literal would be forgotten and a snapshot of `p` taken for a change to `/etc/x`.
    foreign: bool,
}

impl Flow {
    fn new() -> Self {
        Self::default()
    }

    /// A parameter itself.
    fn param(p: u32) -> Self {
        let mut out = Self::default();
        out.all.insert(p);
        out.inside.insert(p);
        out
    }

    fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    fn union(&mut self, other: &Flow) {
        add(&mut self.all, &other.all);
        add(&mut self.inside, &other.inside);
        add(&mut self.esc, &other.esc);
        add(&mut self.bare, &other.bare);
        add(&mut self.segs, &other.segs);
        add(&mut self.suffixed, &other.suffixed);
        self.foreign |= other.foreign;
    }

    /// `self` with `foreign` set when `e`, the expression it was derived from, holds a value
    /// no parameter names (a literal path, a call's result) rather than nothing that could be
    /// a path (`None`, a number, an empty container).
    fn or_foreign(mut self, e: &Expr) -> Self {
        if self.all.is_empty() && foreignish(e) {
            self.foreign = true;
        }
        self
    }

    /// Through a derivation that can lead outside: everything escapes.
    fn escape(&mut self) {
        add(&mut self.esc, &self.all);
        self.inside.clear();
        self.bare.clear();
        self.segs.clear();
        self.suffixed.clear();
    }

    fn escaped(mut self) -> Self {
        self.escape();
        self
    }

    /// A bare name taken from the value (`os.path.basename`).
    fn bared(mut self) -> Self {
        add(&mut self.bare, &self.inside);
        add(&mut self.bare, &self.esc);
        add(&mut self.bare, &self.segs);
        add(&mut self.bare, &self.suffixed);
        self.inside.clear();
        self.esc.clear();
        self.segs.clear();
        self.suffixed.clear();
        self
    }

    /// The value joined with a segment (`self / seg`): under a parameter's path the segment's
    /// parameters keep only their escapes (a bare name is inside it); under none, they escape.
    fn join(&mut self, seg: &Flow) {
        add(&mut self.all, &seg.all);
        if self.inside.is_empty() {
            add(&mut self.esc, &seg.all);
        } else {
            add(&mut self.esc, &seg.esc);
            // A parameter itself as a segment may hold `..` or be absolute: inside only if
            // the runtime finds it is not.
            add(&mut self.segs, &seg.inside);
            add(&mut self.segs, &seg.segs);
            add(&mut self.segs, &seg.suffixed);
        }
    }

    /// Named without the value deriving from them (a flag, a condition, a `key=`).
    fn plain(&mut self, named: &Params) {
        add(&mut self.all, named);
    }

    /// The parameters a snapshot does not cover the value through: all of them when no
    /// parameter's path contains the value, else those that escape or are bare.
    fn escapes(&self) -> Vec<u32> {
        if self.inside.is_empty() {
            self.all.iter().copied().collect()
        } else {
            let mut out = self.esc.clone();
            add(&mut out, &self.bare);
            // A parameter with text added is its sibling, not inside it.
            add(&mut out, &self.suffixed);
            out.into_iter().collect()
        }
    }
}

/// The facts of every module-level function of `body`, by function name: its own calls with a
/// known effect and those reached through the module's other functions (to a fixpoint).
pub(crate) fn analyse<'a>(
    body: &'a [Stmt],
    src: &str,
    index: &LineIndex,
    imports: &Imports,
    package: &'a Package<'a>,
    module_name: &str,
) -> HashMap<String, Vec<PyFact>> {
    let here = package.here_of(module_name);
    let mut funcs = Vec::new();
    let mut by_name = HashMap::new();
    let mut again = HashMap::new();
    let whole = collect_functions(body, 0, &mut funcs, &mut by_name, &mut again);
    // What runs when the worker imports the module — module-level statements, class bodies,
    // decorators, default values — analysed as a function of its own (facts under
    // [`AT_IMPORT`]), with the calls it makes of the module's functions followed.
    let mut cut = false;
    let import_body = import_time(body, 0, &mut cut, main_guard_holds(src));
    let at_import = StmtFunctionDef {
        node_index: Default::default(),
        range: Default::default(),
        is_async: false,
        decorator_list: Default::default(),
        name: ruff_python_ast::Identifier::new(AT_IMPORT, Default::default()),
        type_params: None,
        parameters: Box::new(Parameters {
            range: Default::default(),
            node_index: Default::default(),
            posonlyargs: Default::default(),
            args: Default::default(),
            vararg: None,
            kwonlyargs: Default::default(),
            kwarg: None,
        }),
        returns: None,
        body: import_body.into_iter().collect(),
    };
    funcs.push(Func::new(&at_import));
    // The functions of the package's other modules this one may call, with what they do so far.
    let mut external: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut external_facts: HashMap<u32, &[PyFact]> = HashMap::new();
    let mut methods: HashMap<String, Vec<(u32, usize)>> = HashMap::new();
    for m in package.wanted(&here, module_name, src) {
        for (name, def, facts) in package.funcs.get(m).into_iter().flatten() {
            let i = idx(funcs.len());
            let mut f = Func::new(def);
            f.name = name.clone();
            funcs.push(f);
            external.entry(name.clone()).or_default().push(i);
            external_facts.insert(i, facts);
            // A method: found by name on an object forge cannot type.
            if let Some((owner, method)) = name.rsplit_once('.') {
                if package.classes.contains(owner) {
                    let is_static = decorated_by(def, "staticmethod");
                    methods
                        .entry(method.to_string())
                        .or_default()
                        .push((i, usize::from(!is_static)));
                }
            }
        }
    }
    let mut classes = Vec::new();
    let mut class_by_name = HashMap::new();
    collect_classes(
        body,
        0,
        &mut funcs,
        &mut classes,
        &mut class_by_name,
        true,
        "",
    );
    outside_registrations(&funcs, &mut classes, &class_by_name);
    // `class D(B.Inner)`: the class defined in `B`, by its path.
    let paths: HashMap<String, u32> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.path.clone(), idx(i)))
        .collect();
    for k in classes.iter_mut() {
        let ids: Vec<u32> = k
            .base_exprs
            .iter()
            .filter(|b| matches!(b, Expr::Attribute(_)))
            .filter_map(|b| paths.get(&sketch_dotted(b)?).copied())
            .collect();
        k.base_ids = ids;
    }
    patch_classes(body, index, &by_name, &class_by_name, &mut classes);
    // A `Protocol` in a return annotation describes, it does not make: what is returned may
    // be any class with those methods, so the object is one forge cannot type.
    // An abstract base likewise (`Base.register(Impl)` makes a class its virtual subclass).
    let protocol = |ci: u32| {
        classes.get(ci as usize).is_some_and(|c| {
            c.meta == Some("ABCMeta")
                || c.base_exprs.iter().any(|b| match b {
                    Expr::Name(n) => matches!(n.id.as_str(), "Protocol" | "ABC"),
                    Expr::Attribute(a) => matches!(a.attr.as_str(), "Protocol" | "ABC"),
                    _ => false,
                })
        })
    };
    let returns = funcs
        .iter()
        .enumerate()
        .filter_map(|(i, f)| Some((idx(i), returned_class(f.def, &class_by_name)?)))
        .filter(|&(_, ci)| !protocol(ci))
        .collect();
    let mut module = Module {
        imports,
        classes,
        class_by_name,
        returns,
        index,
        funcs,
        by_name,
        global_kinds: HashMap::new(),
        global_consts: HashMap::new(),
        global_aliases: HashMap::new(),
        holders: HashMap::new(),
        starred_over: starred_over(body),
        again,
        dispatch: HashMap::new(),
        dispatch_open: HashMap::new(),
        filled: HashMap::new(),
        contents: HashMap::new(),
        harmless: std::collections::HashSet::new(),
        valued: std::collections::HashSet::new(),
        item_getters: HashMap::new(),
        attr_code: AttrCode::default(),
        register_aliased: register_aliased(body),
        rebound: BTreeSet::new(),
        db: module_db(body, 0),
        external,
        methods,
        package,
        here,
    };
    let (global_kinds, global_consts, global_aliases, holders) = globals(&module, body);
    module.global_kinds = global_kinds;
    module.global_consts = global_consts;
    module.global_aliases = global_aliases;
    module.holders = holders;
    let stored = filled(&module, body, src, module_name);
    module.attr_code = attribute_code(&module, body);
    // What the package's other modules keep in attributes.
    for (attr, by) in &package.attr_stores {
        if let Some((m, line)) = by.iter().find(|(m, _)| m != module_name) {
            module
                .attr_code
                .open
                .entry(attr.clone())
                .or_insert_with(|| format!("`{m}` line {line}"));
        }
    }
    for (name, refs) in std::mem::take(&mut module.attr_code.globals) {
        module.global_aliases.entry(name).or_default().extend(refs);
    }
    // A container's items (its initial value's and what stores put in) count where it is
    // named other than harmlessly, and where an item is called ([`Scope::drawn_call`]).
    let mut contents = stored.refs;
    for g in stored.containers.keys() {
        if let Some(qs) = module.global_aliases.remove(g) {
            contents.entry(g.clone()).or_default().extend(qs);
        }
    }
    module.contents = contents;
    module.harmless = stored.harmless;
    module.valued = stored.valued;
    module.rebound = stored.rebound;
    let getters: HashMap<&str, String> = module
        .by_name
        .iter()
        .filter_map(|(&name, &fi)| {
            let f = module.funcs.get(fi as usize)?;
            Some((name, returned_item(f.def, &stored.containers)?))
        })
        .collect();
    module.item_getters = getters;
    module.filled = stored.containers;
    module.dispatch = stored.dispatch;
    module.dispatch_open = stored.dispatch_open;
    for (name, line) in stored.replaced {
        if let Some(k) = module
            .class_by_name
            .get(name)
            .and_then(|&ci| module.classes.get_mut(ci as usize))
        {
            k.replaced.get_or_insert(line);
        }
    }
    for (name, set) in stored.shadowed {
        if let Some(k) = module
            .class_by_name
            .get(name)
            .and_then(|&ci| module.classes.get_mut(ci as usize))
        {
            k.shadowed.extend(set);
        }
    }

    let mut facts: Vec<BTreeSet<Fact>> = Vec::with_capacity(module.funcs.len());
    let mut sites: Vec<Vec<CallSite>> = Vec::with_capacity(module.funcs.len());
    for (i, f) in module.funcs.iter().enumerate() {
        // A function of another module of the package: what it does, as analysed there (read
        // below, for those this module's functions call).
        if external_facts.contains_key(&idx(i)) {
            facts.push(BTreeSet::new());
            sites.push(Vec::new());
            continue;
        }
        let (mut own, calls) = analyse_function(&module, f);
        if f.name == AT_IMPORT {
            // What importing the package's other modules changes happens when this one is.
            for (m, list) in &package.imported {
                if m != module_name && package.imports_module(&module.here, imports, m) {
                    for x in list {
                        let mut x = external_fact(f, x);
                        if !x.call.contains(" (importing `") {
                            x.call = format!("{} (importing `{m}`)", x.call);
                        }
                        x.line = 1;
                        own.insert(x);
                    }
                }
            }
            let mut unseen = |line: usize, call: String| {
                own.insert(Fact {
                    line,
                    effect: E::Unseen,
                    call,
                    params: Vec::new(),
                    escapes: Vec::new(),
                    segs: Vec::new(),
                    via: None,
                });
            };
            if cut {
                unseen(
                    1,
                    format!("module-level code nested deeper than {MODULE_DEPTH} levels"),
                );
            }
            // Names bound to a module of the package or one that changes things.
            let replaced = |name: &str| {
                imports.get(name).is_some_and(|q| {
                    q == module_name
                        || whole_module(q)
                        || Package::absolute(&module.here, q)
                            .is_some_and(|a| package.modules.contains(&a))
                })
            };
            if let Some((at, how)) = rebinding(body, 0, &replaced, module_name) {
                unseen(
                    index.line_index(at).get(),
                    format!("the module rebinds its names at run time ({how})"),
                );
            }
        }
        if !whole {
            let line = module.index.line_index(f.def.start()).get();
            own.insert(Fact {
                line,
                effect: E::Unseen,
                call: format!("a module nested deeper than {MODULE_DEPTH} levels"),
                params: Vec::new(),
                escapes: Vec::new(),
                segs: Vec::new(),
                via: None,
            });
        }
        facts.push(own);
        sites.push(calls);
    }
    // The other modules' functions called here carry what they do; the rest are not reached
    // (they call nothing of this module), so building their facts would be wasted.
    let called: BTreeSet<u32> = sites.iter().flatten().map(|s| s.callee).collect();
    for i in called {
        if let (Some(known), Some(f), Some(slot)) = (
            external_facts.get(&i),
            module.funcs.get(i as usize),
            facts.get_mut(i as usize),
        ) {
            *slot = known.iter().map(|x| external_fact(f, x)).collect();
        }
    }
    propagate(&module, &mut facts, &sites);

    let mut lists: Vec<Option<Vec<PyFact>>> = Vec::with_capacity(module.funcs.len());
    for (i, (f, own)) in module.funcs.iter().zip(facts).enumerate() {
        if external_facts.contains_key(&idx(i)) {
            lists.push(None);
            continue;
        }
        let mut list: Vec<PyFact> = own
            .into_iter()
            .map(|x| {
                let params = names_of(f, &x.params);
                let escapes = names_of(f, &x.escapes);
                let segments = names_of(f, &x.segs);
                PyFact {
                    effect: x.effect,
                    call: x.call,
                    line: x.line,
                    params,
                    escapes,
                    segments,
                    via: x
                        .via
                        .and_then(|v| module.funcs.get(v as usize))
                        .map(|g| g.name.to_string()),
                }
            })
            .collect();
        list.dedup();
        lists.push(Some(list));
    }
    // Under each name, what every definition of it does (a method defined in two blocks of its
    // class's body, a `singledispatchmethod`'s registered implementations): another module
    // calling it binds its arguments to the first definition's parameters, so what another one
    // does to its own parameters is kept only when they are named alike; else it is a path no
    // parameter names (irreversible).
    let mut keys: Vec<String> = module.funcs.iter().map(|f| f.name.to_string()).collect();
    for k in &module.classes {
        for defs in k.alternates.values() {
            let Some(key) = defs.first().and_then(|&d| module.funcs.get(d as usize)) else {
                continue;
            };
            for &d in defs {
                if let Some(slot) = keys.get_mut(d as usize) {
                    *slot = key.name.to_string();
                }
            }
        }
    }
    let mut out: HashMap<String, Vec<PyFact>> = HashMap::with_capacity(module.funcs.len());
    let mut first: HashMap<String, &[&str]> = HashMap::new();
    for ((f, key), list) in module.funcs.iter().zip(keys).zip(lists) {
        let Some(list) = list else { continue };
        let params = first.entry(key.clone()).or_insert(f.params.as_slice());
        let alike = *params == f.params.as_slice();
        let list = list.into_iter().map(|mut x| {
            if !alike {
                x.params.clear();
                x.escapes.clear();
                x.segments.clear();
            }
            x
        });
        out.entry(key).or_default().extend(list);
    }
    out
}

/// The key of [`analyse`]'s facts for what runs when the module is imported (not a name Python
/// can give a function).
pub(crate) const AT_IMPORT: &str = "<import>";

/// The statements that run when a module is imported: its body with every function body left
/// out (a `def` runs its default values), class bodies kept (they run), and compound
/// statements' bodies likewise. `cut` is set when nesting passes [`MODULE_DEPTH`].
/// `main`: `if __name__ == "__main__":` bodies are left out (see [`main_guard_holds`]).
fn import_time(body: &[Stmt], depth: usize, cut: &mut bool, main: bool) -> Vec<Stmt> {
    // A compound statement's body, one level down, as its field's type.
    fn inner<T: FromIterator<Stmt>>(b: &[Stmt], depth: usize, cut: &mut bool, main: bool) -> T {
        import_time(b, depth + 1, cut, main).into_iter().collect()
    }
    let mut out = Vec::new();
    if depth > MODULE_DEPTH {
        *cut = true;
        return out;
    }
    let expr = |e: &Expr| {
        Stmt::Expr(ruff_python_ast::StmtExpr {
            node_index: Default::default(),
            range: e.range(),
            value: Box::new(e.clone()),
        })
    };
    for stmt in body {
        match stmt {
            // A `def` evaluates its default values (one that only names a function calls
            // nothing). Its decorators run then too, but what a decorator of the module does
            // is already each decorated function's (`analyse_function`).
            Stmt::FunctionDef(f) => {
                for pw in f.parameters.iter_non_variadic_params() {
                    if let Some(v) = pw.default().filter(|v| !inert(v, 0)) {
                        out.push(expr(v));
                    }
                }
            }
            Stmt::ClassDef(c) => {
                let mut c = c.clone();
                c.body = inner(&c.body, depth, cut, main);
                out.push(Stmt::ClassDef(c));
            }
            Stmt::If(x) => {
                let mut x = x.clone();
                // `if __name__ == "__main__":` does not run when the worker imports the module.
                x.body = if main && is_main_guard(&x.test) {
                    Default::default()
                } else {
                    inner(&x.body, depth, cut, main)
                };
                for c in x.elif_else_clauses.iter_mut() {
                    c.body = inner(&c.body, depth, cut, main);
                }
                out.push(Stmt::If(x));
            }
            Stmt::Try(x) => {
                let mut x = x.clone();
                x.body = inner(&x.body, depth, cut, main);
                for h in x.handlers.iter_mut() {
                    let ExceptHandler::ExceptHandler(h) = h;
                    h.body = inner(&h.body, depth, cut, main);
                }
                x.orelse = inner(&x.orelse, depth, cut, main);
                x.finalbody = inner(&x.finalbody, depth, cut, main);
                out.push(Stmt::Try(x));
            }
            Stmt::With(x) => {
                let mut x = x.clone();
                x.body = inner(&x.body, depth, cut, main);
                out.push(Stmt::With(x));
            }
            Stmt::For(x) => {
                let mut x = x.clone();
                x.body = inner(&x.body, depth, cut, main);
                x.orelse = inner(&x.orelse, depth, cut, main);
                out.push(Stmt::For(x));
            }
            Stmt::While(x) => {
                let mut x = x.clone();
                x.body = inner(&x.body, depth, cut, main);
                x.orelse = inner(&x.orelse, depth, cut, main);
                out.push(Stmt::While(x));
            }
            other => out.push(other.clone()),
        }
    }
    out
}

/// Whether `__name__` keeps the module's name when the worker imports it: every `__name__` in
/// the text (comments too) is compared with `==`/`!=`, is a call's last argument
/// (`getLogger(__name__)`), an attribute (`f.__name__`) or quoted (a namespace written through
/// by that key is [`rebinding`]'s). Anything else might bind it (`__name__ = "__main__"`, `for
/// __name__ in …`, `(__name__ := …)`), and then a `__main__` block may run at import.
fn main_guard_holds(src: &str) -> bool {
    const NAME: &str = "__name__";
    // `from x import *` may bind `__name__` (a module whose `__all__` names it).
    if src.contains("import *") {
        return false;
    }
    let mut from = 0;
    while let Some(at) = src.get(from..).and_then(|t| t.find(NAME)) {
        let start = from + at;
        let end = start + NAME.len();
        let before = src.get(..start).unwrap_or_default().trim_end();
        let after = src.get(end..).unwrap_or_default().trim_start();
        let compared = after.starts_with("==")
            || after.starts_with("!=")
            || before.ends_with("==")
            || before.ends_with("!=");
        let quoted = |c: char| c == '"' || c == '\'';
        let other = before.ends_with('.')
            || (before.ends_with(quoted) && after.starts_with(quoted))
            || after.starts_with(')');
        if !(compared || other) {
            return false;
        }
        from = end;
    }
    true
}

/// Module-level functions a `*` import later in the module (at its top level) may bind again.
fn starred_over(body: &[Stmt]) -> BTreeSet<&str> {
    let mut defined = Vec::new();
    let mut out = BTreeSet::new();
    for stmt in body {
        match stmt {
            Stmt::FunctionDef(f) => defined.push(f.name.as_str()),
            Stmt::ImportFrom(i) if i.names.iter().any(|a| a.name.as_str() == "*") => {
                out.extend(defined.iter().copied());
            }
            _ => {}
        }
    }
    out
}

/// `__name__ == "__main__"` (either way round).
fn is_main_guard(test: &Expr) -> bool {
    let Expr::Compare(c) = test else {
        return false;
    };
    let (Some(ruff_python_ast::CmpOp::Eq), [right]) = (c.ops.first(), &*c.comparators) else {
        return false;
    };
    let is = |a: &Expr, b: &Expr| {
        matches!(a, Expr::Name(n) if n.id.as_str() == "__name__")
            && matches!(b, Expr::StringLiteral(s) if s.value.to_str() == "__main__")
    };
    c.ops.len() == 1 && (is(&c.left, right) || is(right, &c.left))
}

/// Where the module rebinds names in a way no binding shows — `globals()[n] = …`,
/// `vars()[n] = …`, `sys.modules[…]`, `builtins.open = …`, `setattr`/`delattr`, `f.__code__ = …` (and the other
/// function attributes that change what a call runs), `__dict__[n] = …` — anywhere in it: the
/// function the worker looks up may then be another than the one read.
fn rebinding<'s>(
    body: impl IntoIterator<Item = &'s Stmt>,
    depth: usize,
    replaced: &dyn Fn(&str) -> bool,
    own: &str,
) -> Option<(TextSize, String)> {
    let body: Vec<&'s Stmt> = body.into_iter().collect();
    let all = body.clone();
    if depth > MODULE_DEPTH {
        return Some((TextSize::default(), "nesting too deep to read".into()));
    }
    const SWAPS: [&str; 6] = [
        "__code__",
        "__defaults__",
        "__kwdefaults__",
        "__globals__",
        "__call__",
        "__dict__",
    ];
    fn called(e: &Expr, names: &[&str]) -> bool {
        matches!(e, Expr::Call(c) if matches!(&*c.func, Expr::Name(n) if names.contains(&n.id.as_str())))
    }
    fn is_modules(e: &Expr) -> bool {
        matches!(e, Expr::Attribute(a) if a.attr.as_str() == "modules"
            && matches!(&*a.value, Expr::Name(n) if n.id.as_str() == "sys"))
    }
    let target = |t: &Expr| -> Option<String> {
        match t {
            Expr::Subscript(x) if called(&x.value, &["globals", "vars", "locals"]) => {
                Some("assigns to globals()/vars() by name".into())
            }
            Expr::Subscript(x) if is_modules(&x.value) => Some("assigns to sys.modules".into()),
            Expr::Subscript(x) if matches!(&*x.value, Expr::Attribute(a) if a.attr.as_str() == "__dict__") => {
                Some("assigns through a __dict__".into())
            }
            // `helpers.zap = os.remove`: another module's function (of the package, or one that
            // changes things) replaced for everyone who calls it.
            Expr::Attribute(a) if matches!(&*a.value, Expr::Name(n) if replaced(n.id.as_str())) => {
                Some(format!("replaces `{}` of another module", sketch(t)))
            }
            Expr::Attribute(a) if SWAPS.contains(&a.attr.as_str()) => {
                Some(format!("assigns a function's {}", a.attr.as_str()))
            }
            Expr::Attribute(a) if is_modules(&a.value) => Some("assigns to sys.modules".into()),
            // `sys.modules[__name__].H = …`.
            Expr::Attribute(a) if matches!(&*a.value, Expr::Subscript(x) if is_modules(&x.value)) => {
                Some("assigns to a module in sys.modules".into())
            }
            // `builtins.open = …`: every function's `open` is then that.
            Expr::Attribute(a) if matches!(&*a.value, Expr::Name(n) if matches!(n.id.as_str(), "builtins" | "__builtins__")) => {
                Some(format!("replaces builtins.{}", a.attr.as_str()))
            }
            Expr::Subscript(x) if matches!(&*x.value, Expr::Name(n) if n.id.as_str() == "__builtins__") => {
                Some("replaces a builtin".into())
            }
            _ => None,
        }
    };
    let mut found: Option<(TextSize, String)> = None;
    let mut note = |at: TextSize, how: String| {
        if found.is_none() {
            found = Some((at, how));
        }
    };
    for stmt in body {
        match stmt {
            Stmt::Assign(a) => {
                for t in &a.targets {
                    if let Some(how) = target(t) {
                        note(a.start(), how);
                    }
                }
            }
            Stmt::AugAssign(a) => {
                if let Some(how) = target(&a.target) {
                    note(a.start(), how);
                }
            }
            Stmt::AnnAssign(a) => {
                if let Some(how) = target(&a.target) {
                    note(a.start(), how);
                }
            }
            Stmt::Expr(e) if called(&e.value, &["setattr", "delattr"]) => {
                note(e.start(), "calls setattr/delattr".into());
            }
            // `import me` in a function of `me`, then `me.H = …`: its names set through it.
            Stmt::Import(x) if !own.is_empty() => {
                for a in x.names.iter().filter(|a| a.name.as_str() == own) {
                    let alias = a.asname.as_ref().map_or(a.name.as_str(), |n| n.as_str());
                    if writes_through(&all, alias) {
                        note(x.start(), "imports itself and sets its names".into());
                    }
                }
            }
            _ => {}
        }
        // `globals().update(H=…)`, `globals().__setitem__("H", …)`, `g = globals()` then
        // `g["H"] = …`: the namespace changed through a method or a name.
        let mut exprs: Vec<(&Expr, usize)> = Vec::new();
        match stmt {
            Stmt::Expr(e) => exprs.push((&e.value, 0)),
            Stmt::Assign(a) => {
                if called(&a.value, &["globals", "vars", "locals"])
                    && matches!(&*a.value, Expr::Call(c) if c.arguments.args.is_empty())
                    || is_modules(&a.value)
                {
                    // Only read through (`'x' in _globals`): nothing is rebound.
                    let written = a
                        .targets
                        .iter()
                        .any(|t| matches!(t, Expr::Name(n) if writes_through(&all, n.id.as_str())));
                    if written {
                        note(
                            a.start(),
                            "keeps globals()/sys.modules under a name it writes through".into(),
                        );
                    }
                }
                exprs.push((&a.value, 0));
            }
            _ => {}
        }
        while let Some((e, d)) = exprs.pop() {
            if d > KIND_DEPTH {
                break;
            }
            if let Expr::Call(c) = e {
                if let Expr::Attribute(a) = &*c.func {
                    // (`vars(obj)` and `obj.__dict__` are an object's: kept attribute code.)
                    let namespace = (called(&a.value, &["globals", "vars", "locals"])
                        && matches!(&*a.value, Expr::Call(g) if g.arguments.args.is_empty()))
                        || is_modules(&a.value);
                    if namespace
                        && matches!(
                            a.attr.as_str(),
                            "update"
                                | "__setitem__"
                                | "setdefault"
                                | "pop"
                                | "popitem"
                                | "__delitem__"
                                | "clear"
                        )
                    {
                        note(
                            e.start(),
                            format!("changes globals() through .{}", a.attr.as_str()),
                        );
                    }
                }
            }
            let mut kids = Vec::new();
            children(e, &mut kids);
            exprs.extend(kids.into_iter().map(|k| (k, d + 1)));
        }
        // What is inside: a compound statement's bodies ([`inner_statements`]), and a
        // function's, a class's and a `match`'s.
        let mut inner = Vec::new();
        inner_statements(stmt, &mut inner);
        match stmt {
            Stmt::FunctionDef(f) => inner.extend(f.body.iter()),
            Stmt::ClassDef(c) => inner.extend(c.body.iter()),
            Stmt::Match(m) => inner.extend(m.cases.iter().flat_map(|c| c.body.iter())),
            _ => {}
        }
        if let Some(hit) = rebinding(inner, depth + 1, replaced, own) {
            note(hit.0, hit.1);
        }
    }
    found
}

/// Anywhere in `stmts` (at any depth), something is set through the name `alias`: `alias.x =
/// …`, `alias[k] = …`, `del alias[k]`, `alias.update(…)`/`__setitem__`/`setdefault`/`pop`,
/// `setattr(alias, …)`.
fn writes_through(stmts: &[&Stmt], alias: &str) -> bool {
    let named = |e: &Expr| matches!(e, Expr::Name(n) if n.id.as_str() == alias);
    let target = |t: &Expr| match t {
        Expr::Attribute(a) => named(&a.value),
        Expr::Subscript(x) => named(&x.value),
        _ => false,
    };
    let mut stack: Vec<&Stmt> = stmts.to_vec();
    let mut seen = 0usize;
    while let Some(st) = stack.pop() {
        seen += 1;
        if seen > 1_000_000 {
            return true;
        }
        let mut exprs: Vec<&Expr> = Vec::new();
        match st {
            Stmt::Assign(a) => {
                if a.targets.iter().any(target) {
                    return true;
                }
                exprs.push(&a.value);
            }
            Stmt::AugAssign(a) => {
                if target(&a.target) {
                    return true;
                }
            }
            Stmt::AnnAssign(a) => {
                if target(&a.target) {
                    return true;
                }
            }
            Stmt::Delete(d) => {
                if d.targets.iter().any(target) {
                    return true;
                }
            }
            Stmt::Expr(e) => exprs.push(&e.value),
            Stmt::FunctionDef(f) => stack.extend(f.body.iter()),
            Stmt::ClassDef(c) => stack.extend(c.body.iter()),
            other => inner_statements(other, &mut stack),
        }
        let mut es: Vec<(&Expr, usize)> = exprs.into_iter().map(|e| (e, 0)).collect();
        while let Some((e, d)) = es.pop() {
            if d > MAX_DEPTH {
                return true;
            }
            if let Expr::Call(c) = e {
                match &*c.func {
                    Expr::Attribute(a)
                        if named(&a.value)
                            && matches!(
                                a.attr.as_str(),
                                "update"
                                    | "__setitem__"
                                    | "setdefault"
                                    | "pop"
                                    | "__delitem__"
                                    | "clear"
                                    | "popitem"
                            ) =>
                    {
                        return true;
                    }
                    Expr::Name(n)
                        if matches!(n.id.as_str(), "setattr" | "delattr")
                            && c.arguments.args.first().is_some_and(named) =>
                    {
                        return true;
                    }
                    _ => {}
                }
            }
            let mut kids = Vec::new();
            children(e, &mut kids);
            es.extend(kids.into_iter().map(|k| (k, d + 1)));
        }
    }
    false
}

/// `e` only names things — names, attributes, literals, lambdas, containers of them — and
/// calls nothing when evaluated.
fn inert(e: &Expr, depth: usize) -> bool {
    if depth > KIND_DEPTH {
        return false;
    }
    let all = |es: &[Expr]| es.iter().all(|x| inert(x, depth + 1));
    match e {
        Expr::Name(_)
        | Expr::Lambda(_)
        | Expr::StringLiteral(_)
        | Expr::BytesLiteral(_)
        | Expr::NumberLiteral(_)
        | Expr::BooleanLiteral(_)
        | Expr::NoneLiteral(_)
        | Expr::EllipsisLiteral(_) => true,
        Expr::Attribute(a) => inert(&a.value, depth + 1),
        Expr::Tuple(t) => all(&t.elts),
        Expr::List(l) => all(&l.elts),
        Expr::Set(x) => all(&x.elts),
        Expr::Dict(d) => d.items.iter().all(|i| {
            i.key.as_ref().is_none_or(|k| inert(k, depth + 1)) && inert(&i.value, depth + 1)
        }),
        _ => false,
    }
}

/// Parameter names for indices, in order, each once.
fn names_of(f: &Func<'_>, ids: &[u32]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for p in ids {
        if let Some(name) = f.params.get(*p as usize) {
            if !out.iter().any(|q| q == name) {
                out.push((*name).to_string());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Module-level structure
// ---------------------------------------------------------------------------------------------

/// One module-level function, or a method of a module-level class (named `Class.method`).
struct Func<'a> {
    name: String,
    def: &'a StmtFunctionDef,
    /// The class a method is defined in, and whether its first parameter is the instance (or
    /// the class): `self`/`cls` are not passed by position by a call through an instance.
    class: Option<(u32, bool)>,
    /// All parameter names in order: positional-only, regular, `*args`, keyword-only, `**kw`.
    params: Vec<&'a str>,
    /// How many of `params` can be passed by position (positional-only + regular).
    n_positional: usize,
    vararg: Option<u32>,
    kwarg: Option<u32>,
    /// Parameters that can be passed by keyword.
    by_keyword: HashMap<&'a str, u32>,
}

impl<'a> Func<'a> {
    fn new(def: &'a StmtFunctionDef) -> Self {
        let p = &*def.parameters;
        let mut params: Vec<&'a str> = Vec::new();
        let mut by_keyword: HashMap<&'a str, u32> = HashMap::new();
        for a in p.posonlyargs.iter() {
            params.push(a.name().as_str());
        }
        for a in p.args.iter() {
            by_keyword
                .entry(a.name().as_str())
                .or_insert(idx(params.len()));
            params.push(a.name().as_str());
        }
        let n_positional = params.len();
        let mut vararg = None;
        if let Some(v) = &p.vararg {
            vararg = Some(idx(params.len()));
            params.push(v.name.as_str());
        }
        for a in p.kwonlyargs.iter() {
            by_keyword
                .entry(a.name().as_str())
                .or_insert(idx(params.len()));
            params.push(a.name().as_str());
        }
        let mut kwarg = None;
        if let Some(k) = &p.kwarg {
            kwarg = Some(idx(params.len()));
            params.push(k.name.as_str());
        }
        Func {
            name: def.name.to_string(),
            def,
            class: None,
            params,
            n_positional,
            vararg,
            kwarg,
            by_keyword,
        }
    }
}

/// A module-level class: its methods (by name, to function indices) and the names of its bases.
struct Class<'a> {
    methods: HashMap<&'a str, u32>,
    /// Names bound in the class body to something else (`rm = os.remove`).
    attrs: HashMap<&'a str, &'a Expr>,
    /// `self.x = C(…)` in a method: the class named for each attribute.
    fields: HashMap<&'a str, &'a str>,
    bases: Vec<&'a str>,
    /// Every base as written (`Base`, `helpers.Base`, `Base[int]`'s `Base`): a class of another
    /// module of the package among them is found through these.
    base_exprs: Vec<&'a Expr>,
    /// `class C(metaclass=M)`: `M`, named.
    meta: Option<&'a str>,
    /// Functions of the module set on the class after its definition (`C.__eq__ = _eq`,
    /// `setattr(C, "save", _save)`): Python may call any wherever the class is named.
    patched: Vec<u32>,
    /// The line where a lambda or a `partial` is set on it (`C.__del__ = lambda self: …`):
    /// what it runs is not followed.
    replaced: Option<usize>,
    /// Names its methods bind on the instance (`self.go = self._alt`): a call of that method
    /// on an instance may run something else.
    shadowed: BTreeSet<&'a str>,
    /// Methods defined more than once where one is in a block of the body (`if …: def zap`):
    /// every definition, any of which the class may hold.
    alternates: HashMap<&'a str, Vec<u32>>,
    /// Its name from the module's top (`Outer.Inner` for a class defined in a class).
    path: String,
    /// Bases that are classes defined in classes (`class D(B.Inner)`), by index.
    base_ids: Vec<u32>,
}

struct Module<'a> {
    imports: &'a Imports,
    classes: Vec<Class<'a>>,
    class_by_name: HashMap<&'a str, u32>,
    /// Functions (by index) that return an instance of a class of the module.
    returns: HashMap<u32, u32>,
    index: &'a LineIndex,
    funcs: Vec<Func<'a>>,
    by_name: HashMap<&'a str, u32>,
    /// Module-level names bound to a known kind of object (`CLIENT = httpx.Client()`).
    global_kinds: HashMap<String, Kind>,
    /// Module-level names bound to one string literal (`SQL = "SELECT ..."`); `None`: several.
    global_consts: HashMap<String, Option<Rc<str>>>,
    /// Module-level names bound to a function or module of an import (`rm = os.remove`).
    global_aliases: Aliases,
    /// Module-level names bound to a container or value holding a module of an import that
    /// changes things (`_mods = [os]`): what is called through them cannot be followed.
    holders: HashMap<String, String>,
    /// Later definitions of a name `by_name` has the first of.
    again: HashMap<&'a str, Vec<u32>>,
    /// Functions registered on a `functools.singledispatch` function (`@handle.register`): a
    /// call of it may run each.
    dispatch: HashMap<&'a str, Vec<u32>>,
    /// Those whose implementations are also registered where forge does not follow.
    dispatch_open: HashMap<&'a str, usize>,
    /// Module-level containers (see [`filled`]), with the line of a store into them of a value
    /// forge cannot follow: a call of something taken out of one is then code forge cannot read.
    filled: HashMap<String, Option<usize>>,
    /// What each container holds that forge follows ([`FN`], [`ANY`] and qualified names).
    contents: Aliases,
    /// Where a container is named in a way that passes none of its items on (read, iterated,
    /// stored into), by offset: named anywhere else, what it holds counts as used there.
    harmless: std::collections::HashSet<TextSize>,
    /// Containers a value forge cannot follow may be in: named where their items may be used,
    /// that is code forge cannot read (a container only passed on holds what forge saw).
    valued: std::collections::HashSet<String>,
    /// Functions of the module that return an item of a container (`return G[k]`), by name.
    item_getters: HashMap<&'a str, String>,
    /// Code of the module kept in attributes, by the attribute's name (see [`AttrCode`]).
    attr_code: AttrCode,
    /// Some `register` of the module is bound to a name (`reg = C.m.register`): registrations
    /// through it are not followed.
    register_aliased: bool,
    /// Names of module functions also bound other than by a `def` (an assignment, a loop, an
    /// import, `global` in a function).
    rebound: BTreeSet<String>,
    /// Module-level functions a `*` import after them may bind again (`def rmtree` then `from
    /// shutil import *`).
    starred_over: BTreeSet<&'a str>,
    /// The DB-API module the module imports, if any (`sqlite3`).
    db: Option<&'static str>,
    /// Functions of the package's other modules, by absolute name (`pkg.helpers.zap`,
    /// `pkg.helpers.Store.wipe`), as indices into `funcs`.
    external: BTreeMap<String, Vec<u32>>,
    /// Methods of the package's other modules' classes by name, with how many of their
    /// parameters an instance call skips (`self`).
    methods: HashMap<String, Vec<(u32, usize)>>,
    package: &'a Package<'a>,
    /// The module's package, which its relative names start from (see [`Package::here_of`]).
    here: String,
}

/// What a module of a package sees of the others ([`analyse`]'s `package`): empty for a
/// module read alone.
#[derive(Default)]
pub(crate) struct Package<'a> {
    /// Every module of the package (`pkg`, `pkg.helpers`); empty for a module read alone.
    pub(crate) modules: BTreeSet<String>,
    /// Those that are packages (`__init__.py`: `pkg`, `pkg.sub`).
    pub(crate) packages: BTreeSet<String>,
    /// Module-level classes of the package's modules by absolute name (`pkg.helpers.Store`).
    pub(crate) classes: BTreeSet<String>,
    /// Their metaclasses (`class Thing(metaclass=Meta)`), by absolute name.
    pub(crate) metas: BTreeMap<String, String>,
    /// Their bases, by absolute name (classes of the package among them are followed).
    pub(crate) bases: BTreeMap<String, Vec<String>>,
    /// By module: its module-level functions and its classes' methods, by absolute name, with
    /// their facts as analysed so far.
    #[allow(clippy::type_complexity)]
    pub(crate) funcs: BTreeMap<String, Vec<(String, &'a StmtFunctionDef, Vec<PyFact>)>>,
    /// What importing each module changes (its import-time facts that change something).
    pub(crate) imported: BTreeMap<String, Vec<PyFact>>,
    /// Each module's imports: a name another module takes from it may be one it imported
    /// (`from .helpers import os`, an `__init__.py` re-exporting `zap`).
    pub(crate) imports: BTreeMap<String, Imports>,
    /// Why calls across modules are followed only in part (the package's modules call each
    /// other deeper than forge follows): each such call is then also Unseen.
    pub(crate) incomplete: Option<String>,
    /// Attributes each module keeps code of its own in (`box.BOX.fn = _wipe`, `Model.save =
    /// _wipe`, `Base.table["x"] = _wipe`, see [`stored_code_attrs`]), by name, with the module
    /// and line: in the other modules a call of such an attribute runs code forge does not
    /// follow there.
    pub(crate) attr_stores: BTreeMap<String, Vec<(String, usize)>>,
}

impl Package<'_> {
    /// The package module `own` is in, which its relative names start from: `pkg.sub` for
    /// `pkg.sub.tools` and for `pkg.sub` itself (`pkg/sub/__init__.py`); empty when read alone.
    pub(crate) fn here_of(&self, own: &str) -> String {
        if self.modules.is_empty() {
            return String::new();
        }
        if self.packages.contains(own) {
            return own.to_string();
        }
        own.rsplit_once('.')
            .map(|(p, _)| p.to_string())
            .unwrap_or_default()
    }

    /// `q` as an absolute name: relative names (`.helpers.zap`, `..util.f`) resolved against
    /// the importing module's package, `here`.
    pub(crate) fn absolute(here: &str, q: &str) -> Option<String> {
        let level = q.len() - q.trim_start_matches('.').len();
        if level == 0 {
            return Some(q.to_string());
        }
        if here.is_empty() {
            return None;
        }
        let parts: Vec<&str> = here.split('.').collect();
        let keep = parts.len().checked_sub(level - 1)?;
        if keep == 0 {
            return None;
        }
        let mut out = parts.get(..keep)?.join(".");
        let rest = q.get(level..).unwrap_or_default();
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        Some(out)
    }

    /// The names module `m` of the package binds at module level (its functions, classes and
    /// imports): what a `*` import of it may bind.
    pub(crate) fn names_of(&self, m: &str) -> BTreeSet<String> {
        let prefix = format!("{m}.");
        let mut out: BTreeSet<String> = self
            .funcs
            .get(m)
            .into_iter()
            .flatten()
            .filter_map(|(name, _, _)| name.strip_prefix(&prefix))
            .filter(|rest| !rest.contains('.'))
            .map(str::to_string)
            .collect();
        out.extend(
            self.classes
                .iter()
                .filter_map(|c| c.strip_prefix(&prefix))
                .filter(|rest| !rest.contains('.'))
                .map(str::to_string),
        );
        if let Some(imports) = self.imports.get(m) {
            out.extend(imports.names().map(str::to_string));
        }
        out
    }

    /// A class of the package and the classes of the package it derives from, each once.
    pub(crate) fn lineage(&self, class: &str) -> Vec<String> {
        let mut out = vec![class.to_string()];
        let mut i = 0;
        while let Some(c) = out.get(i).cloned() {
            i += 1;
            for b in self.bases.get(&c).into_iter().flatten() {
                if self.classes.contains(b) && !out.contains(b) && out.len() < 256 {
                    out.push(b.clone());
                }
            }
        }
        out
    }

    /// The metaclass of a class of the package (its own or a base's), when the package's.
    pub(crate) fn meta_of(&self, class: &str) -> Option<&String> {
        self.lineage(class)
            .iter()
            .find_map(|c| self.metas.get(c))
            .and_then(|m| self.classes.get(m))
    }

    /// The module of the package an absolute name lies in (the longest that is a prefix).
    fn module_of(&self, abs: &str) -> Option<&str> {
        longest_prefix(&self.modules, abs)
    }

    /// The class of the package an absolute name is or lies in (`pkg.helpers.Store.wipe`).
    fn class_of(&self, abs: &str) -> Option<&str> {
        longest_prefix(&self.classes, abs)
    }

    /// The other modules the module `own` may call into: those whose last name part is an
    /// identifier of its text, and its own packages (`from . import zap`). Leaving out the
    /// others only saves work.
    pub(crate) fn wanted<'s>(&'s self, here: &str, own: &str, src: &str) -> Vec<&'s String> {
        if self.modules.is_empty() {
            return Vec::new();
        }
        let words = identifiers(src);
        let mut out: BTreeSet<&'s String> = self
            .modules
            .iter()
            .filter(|m| m.as_str() != own)
            .filter(|m| {
                let last = m.rsplit('.').next().unwrap_or(m);
                words.contains(last) || here == m.as_str() || here.starts_with(&format!("{m}."))
            })
            .collect();
        // And what those import, on and on (`from . import word_count` re-exported by
        // `__init__.py` from `.core`): a name may be followed there.
        let mut todo: Vec<&'s String> = out.iter().copied().collect();
        while let Some(m) = todo.pop() {
            let Some(imports) = self.imports.get(m.as_str()) else {
                continue;
            };
            let there = self.here_of(m);
            for q in imports.targets() {
                let Some(a) = Package::absolute(&there, q) else {
                    continue;
                };
                let Some(j) = self.module_of(&a).and_then(|j| self.modules.get(j)) else {
                    continue;
                };
                if j.as_str() != own && out.insert(j) {
                    todo.push(j);
                }
            }
        }
        out.into_iter().collect()
    }

    /// Whether the module's own import statements (module level) import `m`: a name bound to
    /// it or to something in it, or a package that holds it (importing `pkg.sub.tools`
    /// imports `pkg` and `pkg.sub` first).
    fn imports_module(&self, here: &str, imports: &Imports, m: &str) -> bool {
        if here == m || here.starts_with(&format!("{m}.")) {
            return true;
        }
        imports
            .targets()
            .filter_map(|q| Package::absolute(here, q))
            .any(|q| q == m || q.starts_with(&format!("{m}.")))
    }
}

/// The longest of `set` that is `abs` or a dotted prefix of it.
fn longest_prefix<'s>(set: &'s BTreeSet<String>, abs: &str) -> Option<&'s str> {
    let mut end = abs.len();
    loop {
        let head = abs.get(..end)?;
        if let Some(found) = set.get(head) {
            return Some(found.as_str());
        }
        end = head.rfind('.')?;
    }
}

/// The identifiers a text holds (comments and strings too): what a module may name.
pub(crate) fn identifiers(src: &str) -> std::collections::HashSet<&str> {
    src.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect()
}

/// A fact of another module's function as one of `f`'s, its parameters by index.
fn external_fact(f: &Func<'_>, x: &PyFact) -> Fact {
    let ids = |names: &[String]| -> Vec<u32> {
        let mut out: Vec<u32> = names
            .iter()
            .filter_map(|n| f.params.iter().position(|p| p == n).map(idx))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    };
    Fact {
        line: x.line,
        effect: x.effect,
        call: x.call.clone(),
        params: ids(&x.params),
        escapes: ids(&x.escapes),
        segs: ids(&x.segments),
        via: None,
    }
}

/// An expression that may hold a path no parameter names, when no parameter flows into it:
/// anything but `None`, booleans, numbers, empty containers, comparisons and `not`.
fn foreignish(e: &Expr) -> bool {
    match e {
        Expr::NoneLiteral(_)
        | Expr::BooleanLiteral(_)
        | Expr::NumberLiteral(_)
        | Expr::EllipsisLiteral(_)
        | Expr::Compare(_)
        | Expr::Lambda(_) => false,
        Expr::UnaryOp(u) => !matches!(u.op, ruff_python_ast::UnaryOp::Not),
        Expr::List(x) => !x.elts.is_empty(),
        Expr::Tuple(x) => !x.elts.is_empty(),
        Expr::Set(x) => !x.elts.is_empty(),
        Expr::Dict(x) => !x.is_empty(),
        _ => true,
    }
}

/// A value an alias may be bound to: a name, an attribute chain, or a call that imports
/// (`importlib.import_module("os")`, `getattr(os, "remove")`); never a call's result in general.
fn aliasable(e: &Expr) -> bool {
    let mut cur = e;
    while let Expr::Attribute(a) = cur {
        cur = &a.value;
    }
    matches!(cur, Expr::Name(_) | Expr::Call(_))
}

/// An expression in short, for evidence: names and attributes as written, calls and subscripts
/// with their arguments left out (`sys.modules[…].__dict__[…]`, `globals()[…]`).
fn sketch(e: &Expr) -> String {
    let mut suffix: Vec<String> = Vec::new();
    let mut cur = e;
    for _ in 0..16 {
        match cur {
            Expr::Attribute(a) => {
                suffix.push(format!(".{}", a.attr.as_str()));
                cur = &a.value;
            }
            Expr::Subscript(x) => {
                suffix.push("[…]".to_string());
                cur = &x.value;
            }
            Expr::Call(c) => {
                let bare = c.arguments.args.is_empty() && c.arguments.keywords.is_empty();
                suffix.push(if bare { "()" } else { "(…)" }.to_string());
                cur = &c.func;
            }
            Expr::Name(n) => {
                return n.id.to_string() + &suffix.iter().rev().cloned().collect::<String>();
            }
            _ => break,
        }
    }
    "…".to_string() + &suffix.iter().rev().cloned().collect::<String>()
}

/// Modules (and packages) with functions forge knows to change something, besides the DB-API
/// drivers of [`DB_LIBS`]: a function of one picked by a name computed at run time may be any
/// of them.
const EFFECT_MODULES: [&str; 27] = [
    "os",
    "shutil",
    "subprocess",
    "pathlib",
    "socket",
    "requests",
    "httpx",
    "aiohttp",
    "urllib",
    "smtplib",
    "ftplib",
    "telnetlib",
    "http",
    "mysql",
    "builtins",
    "io",
    "codecs",
    "gzip",
    "bz2",
    "lzma",
    "tarfile",
    "zipfile",
    "asyncio",
    "pty",
    "runpy",
    "importlib",
    "ctypes",
];

/// `q` names a whole module that changes things (`os`, `os.path`, `shutil`), not a function.
fn whole_module(q: &str) -> bool {
    effect_module(q)
        && (!q.contains('.')
            || matches!(
                q,
                "os.path" | "urllib.request" | "http.client" | "asyncio.subprocess"
            ))
}

/// Whether a definition is decorated with the builtin `name` (`staticmethod`, `classmethod`).
fn decorated_by(def: &StmtFunctionDef, name: &str) -> bool {
    def.decorator_list
        .iter()
        .any(|d| matches!(&d.expression, Expr::Name(n) if n.id.as_str() == name))
}

/// A class statement's bases as named (`Base`, `helpers.Base`; `Base[int]` as `Base`).
pub(crate) fn class_bases(c: &ruff_python_ast::StmtClassDef) -> impl Iterator<Item = &Expr> {
    c.arguments
        .iter()
        .flat_map(|a| a.args.iter())
        .map(|b| match b {
            Expr::Subscript(x) => &*x.value,
            other => other,
        })
}

/// A property's getter, setter or deleter (`@property`, `@x.setter`, `@cached_property`):
/// Python calls it when the attribute is read, set or deleted.
fn is_property(def: &StmtFunctionDef) -> bool {
    def.decorator_list.iter().any(|d| match &d.expression {
        Expr::Name(n) => matches!(n.id.as_str(), "property" | "cached_property"),
        Expr::Attribute(a) => matches!(
            a.attr.as_str(),
            "setter" | "getter" | "deleter" | "cached_property"
        ),
        _ => false,
    })
}

/// A special method's name (`__eq__`): Python calls these itself.
fn special(name: &str) -> bool {
    name.len() > 4 && name.starts_with("__") && name.ends_with("__")
}

/// Constructor methods, followed where forge sees `C(…)` with its arguments.
const CTOR: [&str; 3] = ["__init__", "__new__", "__post_init__"];

/// A metaclass's methods that a class statement runs.
const CREATION: [&str; 3] = ["__prepare__", "__new__", "__init__"];

fn effect_module(q: &str) -> bool {
    let top = q.split('.').next().unwrap_or(q);
    EFFECT_MODULES.contains(&top) || db_lib_of(q).is_some()
}

/// Modules other modules import and so re-export (`shutil.os`, `glob.os`, `os.path.os`,
/// `subprocess.os`): a name reached through one is that module's name.
const REEXPORTED: [&str; 6] = ["os", "subprocess", "shutil", "socket", "sqlite3", "pathlib"];

/// The name a call is known by: `shutil.os.remove` is `os.remove`, `posix.system` (`nt`) is
/// `os.system`, `asyncio.subprocess.create_subprocess_shell` is
/// `asyncio.create_subprocess_shell`; a trailing `.__call__` is the call itself.
fn canonical_name(q: &str) -> String {
    let mut q = q;
    while let Some(inner) = q.strip_suffix(".__call__") {
        q = inner;
    }
    let parts: Vec<&str> = q.split('.').collect();
    let from = (1..parts.len().saturating_sub(1)).rev().find(|&i| {
        parts.get(i).is_some_and(|p| {
            REEXPORTED.contains(p) || p.strip_prefix('_').is_some_and(|q| REEXPORTED.contains(&q))
        })
    });
    let parts: Vec<&str> = match from {
        // `tempfile._os` is `os`.
        Some(i) => parts
            .get(i..)
            .map(|rest| {
                rest.iter()
                    .enumerate()
                    .map(|(j, p)| if j == 0 { p.trim_start_matches('_') } else { p })
                    .collect()
            })
            .unwrap_or_default(),
        None => parts,
    };
    let joined = parts.join(".");
    if let Some(rest) = joined
        .strip_prefix("posix.")
        .or_else(|| joined.strip_prefix("nt."))
    {
        return format!("os.{rest}");
    }
    if let Some(rest) = joined.strip_prefix("asyncio.subprocess.") {
        return format!("asyncio.{rest}");
    }
    joined
}

/// An alias that names a function of the module (`f = _helper`): calls of it are calls of that
/// function.
const FN: &str = "\u{1}fn:";
/// An alias that stands for a function of an import called with arguments forge cannot map
/// (`rm = lambda p: os.remove(p)` at module level).
const ANY: &str = "\u{1}any:";
/// Builtin containers a class may derive from and be filled through (`self[k] = f`).
const BUILTIN_CONTAINERS: &[&str] = &[
    "dict",
    "list",
    "set",
    "OrderedDict",
    "defaultdict",
    "UserDict",
    "UserList",
    "deque",
    "ChainMap",
    "Counter",
];

/// A reference standing for a binding forge does not follow (a name bound under `global` by a
/// `for`, an import, a `def`): a call through it is code forge cannot read, as the text says.
const UNSEEN: &str = "\u{1}unseen:";
/// The end of an [`UNSEEN`] reference (an attribute taken of the name adds text after it).
const UNSEEN_END: &str = "\u{2}";

/// A container named by an attribute the module keeps code in (see [`AttrCode`]), as
/// [`Scope::draws`] names it.
const ATTR: &str = "\u{1}attr:";
/// An alias that stands for a method of a class of the module, by its index among the
/// functions (kept in an attribute: `self.go = other.zap`).
const METHOD: &str = "\u{1}method:";

/// Methods of `str`, `bytes`, `list`, `dict`, `set` and file objects: an object forge cannot
/// type that is called with one of these is taken for one of those, not for an instance of a
/// class of the module that happens to define it.
const BUILTIN_METHODS: [&str; 52] = [
    "append",
    "capitalize",
    "clear",
    "close",
    "copy",
    "count",
    "decode",
    "discard",
    "encode",
    "endswith",
    "extend",
    "fileno",
    "find",
    "flush",
    "format",
    "get",
    "index",
    "insert",
    "intersection",
    "isdigit",
    "items",
    "join",
    "keys",
    "lower",
    "lstrip",
    "partition",
    "pop",
    "popitem",
    "read",
    "readline",
    "readlines",
    "remove",
    "replace",
    "reverse",
    "rfind",
    "rsplit",
    "rstrip",
    "seek",
    "setdefault",
    "sort",
    "split",
    "splitlines",
    "startswith",
    "strip",
    "tell",
    "truncate",
    "union",
    "update",
    "upper",
    "values",
    "write",
    "writelines",
];

/// The fact that says a function has more effects than were counted.
fn overflow_fact(line: usize) -> Fact {
    Fact {
        line,
        effect: E::Unseen,
        call: format!("more than {MAX_FACTS} calls with effects (forge stopped counting)"),
        params: Vec::new(),
        escapes: Vec::new(),
        segs: Vec::new(),
        via: None,
    }
}

fn idx(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// The statements that run at module level: `body`'s, and those of its `if`/`try` blocks (to
/// [`MODULE_DEPTH`]), in order.
fn module_statements(body: &[Stmt]) -> Vec<&Stmt> {
    let mut out = Vec::new();
    let mut stack: Vec<(std::slice::Iter<'_, Stmt>, usize)> = vec![(body.iter(), 0)];
    while let Some((it, depth)) = stack.last_mut() {
        let depth = *depth;
        let Some(s) = it.next() else {
            stack.pop();
            continue;
        };
        out.push(s);
        if depth >= MODULE_DEPTH {
            continue;
        }
        match s {
            Stmt::If(x) => {
                for c in x.elif_else_clauses.iter().rev() {
                    stack.push((c.body.iter(), depth + 1));
                }
                stack.push((x.body.iter(), depth + 1));
            }
            Stmt::Try(t) => {
                stack.push((t.finalbody.iter(), depth + 1));
                stack.push((t.orelse.iter(), depth + 1));
                for h in t.handlers.iter().rev() {
                    let ExceptHandler::ExceptHandler(h) = h;
                    stack.push((h.body.iter(), depth + 1));
                }
                stack.push((t.body.iter(), depth + 1));
            }
            _ => {}
        }
    }
    out
}

/// What module-level code sets on a class of the module after its definition: `C.attr = f` or
/// `setattr(C, "attr", f)` with `f` a function of the module is [`Class::patched`]; a lambda
/// or a `partial` set there is [`Class::replaced`].
fn patch_classes<'a>(
    body: &'a [Stmt],
    index: &LineIndex,
    by_name: &HashMap<&'a str, u32>,
    class_by_name: &HashMap<&'a str, u32>,
    classes: &mut [Class<'a>],
) {
    let set = |class: &Expr, value: &Expr, at: TextSize, classes: &mut [Class<'a>]| {
        let Expr::Name(c) = class else { return };
        let Some(&ci) = class_by_name.get(c.id.as_str()) else {
            return;
        };
        let Some(k) = classes.get_mut(ci as usize) else {
            return;
        };
        match value {
            Expr::Name(f) if by_name.contains_key(f.id.as_str()) => {
                if let Some(&fi) = by_name.get(f.id.as_str()) {
                    k.patched.push(fi);
                }
            }
            // A lambda or a partial: code the class's methods now run.
            Expr::Lambda(_) => {
                k.replaced.get_or_insert(index.line_index(at).get());
            }
            Expr::Call(c)
                if matches!(&*c.func, Expr::Name(n) if n.id.as_str() == "partial")
                    || matches!(&*c.func, Expr::Attribute(a) if a.attr.as_str() == "partial") =>
            {
                k.replaced.get_or_insert(index.line_index(at).get());
            }
            _ => {}
        }
    };
    for s in module_statements(body) {
        match s {
            Stmt::Assign(a) => {
                for t in &a.targets {
                    if let Expr::Attribute(x) = t {
                        set(&x.value, &a.value, s.start(), classes);
                    }
                }
            }
            Stmt::Expr(e) => {
                if let Expr::Call(c) = &*e.value {
                    if matches!(&*c.func, Expr::Name(n) if n.id.as_str() == "setattr") {
                        if let [class, _, value] = &c.arguments.args[..] {
                            set(class, value, s.start(), classes);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Module-level classes (where [`collect_functions`] looks for functions) and their methods,
/// which become functions named `Class.method`. A method named twice in a class: the last wins,
/// as in Python.
fn collect_classes<'a>(
    body: &'a [Stmt],
    depth: usize,
    out: &mut Vec<Func<'a>>,
    classes: &mut Vec<Class<'a>>,
    by_name: &mut HashMap<&'a str, u32>,
    named: bool,
    outer: &str,
) {
    if depth > MODULE_DEPTH {
        return;
    }
    for stmt in body {
        let nested: Vec<&'a [Stmt]> = match stmt {
            Stmt::ClassDef(c) => {
                let ci = idx(classes.len());
                let mut methods = HashMap::new();
                let mut attrs = HashMap::new();
                let mut fields = HashMap::new();
                // Every definition of a method, and those made in a block of the body (`if
                // os.name == "nt": def zap(…)` … `else: def zap(…)`): which one the class holds
                // is decided when it is made, so each may run.
                let first_method = out.len();
                let mut defs: HashMap<&str, Vec<u32>> = HashMap::new();
                let mut in_block: BTreeSet<&str> = BTreeSet::new();
                let mut stack: Vec<(&Stmt, bool)> =
                    c.body.iter().rev().map(|s| (s, false)).collect();
                let mut seen = 0usize;
                // Classes defined in its body (`class Outer: class Inner: …`): classes of the
                // module too, reached by their methods' names (`Outer.Inner().m(p)`).
                let mut inner_classes: Vec<&'a Stmt> = Vec::new();
                while let Some((s, nested)) = stack.pop() {
                    seen += 1;
                    if seen > 100_000 {
                        break;
                    }
                    if let Stmt::ClassDef(_) = s {
                        inner_classes.push(s);
                    }
                    if let Stmt::Assign(a) = s {
                        if let [Expr::Name(n)] = a.targets.as_slice() {
                            attrs.insert(n.id.as_str(), &*a.value);
                        }
                    }
                    if let Stmt::FunctionDef(f) = s {
                        ctor_fields(&f.body, &mut fields);
                        let is_static = decorated_by(f, "staticmethod");
                        let mut func = Func::new(f);
                        func.name = format!("{outer}{}.{}", c.name.as_str(), f.name.as_str());
                        func.class = Some((ci, !is_static));
                        methods.insert(f.name.as_str(), idx(out.len()));
                        defs.entry(f.name.as_str())
                            .or_default()
                            .push(idx(out.len()));
                        if nested {
                            in_block.insert(f.name.as_str());
                        }
                        out.push(func);
                    }
                    let mut inner = Vec::new();
                    inner_statements(s, &mut inner);
                    stack.extend(inner.into_iter().rev().map(|x| (x, true)));
                }
                // `@functools.singledispatchmethod def run(…)` and `@run.register def _(…)`:
                // calling `run` may run each implementation.
                let mut registered: Vec<(&str, u32)> = Vec::new();
                for (i, f) in out.iter().enumerate().skip(first_method) {
                    for d in f.def.decorator_list.iter() {
                        let on = match &d.expression {
                            Expr::Call(x) => &*x.func,
                            e => e,
                        };
                        if let Expr::Attribute(a) = on {
                            if let (Expr::Name(n), "register") = (&*a.value, a.attr.as_str()) {
                                if n.id.as_str() != f.def.name.as_str()
                                    && defs.contains_key(n.id.as_str())
                                {
                                    registered.push((n.id.as_str(), idx(i)));
                                }
                            }
                        }
                    }
                }
                let mut alternates: HashMap<&str, Vec<u32>> = defs
                    .into_iter()
                    .filter(|(name, d)| {
                        (d.len() > 1 && in_block.contains(name))
                            || registered.iter().any(|(r, _)| r == name)
                    })
                    .collect();
                for (name, i) in registered {
                    alternates.entry(name).or_default().push(i);
                }
                let base_exprs: Vec<&Expr> = class_bases(c).collect();
                let bases = base_exprs
                    .iter()
                    .filter_map(|b| match b {
                        Expr::Name(n) => Some(n.id.as_str()),
                        _ => None,
                    })
                    .collect();
                let meta = c.arguments.as_ref().and_then(|a| {
                    a.keywords.iter().find_map(|k| match (&k.arg, &k.value) {
                        (Some(arg), Expr::Name(n)) if arg.as_str() == "metaclass" => {
                            Some(n.id.as_str())
                        }
                        _ => None,
                    })
                });
                if named {
                    by_name.insert(c.name.as_str(), ci);
                }
                classes.push(Class {
                    methods,
                    attrs,
                    fields,
                    bases,
                    base_exprs,
                    meta,
                    patched: Vec::new(),
                    replaced: None,
                    shadowed: BTreeSet::new(),
                    alternates,
                    path: format!("{outer}{}", c.name.as_str()),
                    base_ids: Vec::new(),
                });
                let prefix = format!("{outer}{}.", c.name.as_str());
                for k in inner_classes {
                    collect_classes(
                        std::slice::from_ref(k),
                        depth + 1,
                        out,
                        classes,
                        by_name,
                        false,
                        &prefix,
                    );
                }
                Vec::new()
            }
            Stmt::With(w) => vec![&w.body[..]],
            Stmt::For(x) => vec![&x.body[..], &x.orelse[..]],
            Stmt::While(x) => vec![&x.body[..], &x.orelse[..]],
            Stmt::If(x) => std::iter::once(&x.body[..])
                .chain(x.elif_else_clauses.iter().map(|c| &c.body[..]))
                .collect(),
            Stmt::Try(t) => std::iter::once(&t.body[..])
                .chain(t.handlers.iter().map(|h| {
                    let ExceptHandler::ExceptHandler(h) = h;
                    &h.body[..]
                }))
                .chain([&t.orelse[..], &t.finalbody[..]])
                .collect(),
            _ => Vec::new(),
        };
        for b in nested {
            collect_classes(b, depth + 1, out, classes, by_name, named, outer);
        }
    }
}

/// `@C.run.register` outside `C`'s body (at module level, or in a subclass's body) on a
/// `singledispatchmethod`: the implementation runs when `run` is called, as one registered in
/// the body does ([`Class::alternates`]).
fn outside_registrations<'a>(
    funcs: &[Func<'a>],
    classes: &mut [Class<'a>],
    class_by_name: &HashMap<&'a str, u32>,
) {
    for (i, f) in funcs.iter().enumerate() {
        for d in f.def.decorator_list.iter() {
            let on = match &d.expression {
                Expr::Call(x) => &*x.func,
                e => e,
            };
            let Expr::Attribute(reg) = on else { continue };
            let Expr::Attribute(meth) = &*reg.value else {
                continue;
            };
            let Expr::Name(class) = &*meth.value else {
                continue;
            };
            if reg.attr.as_str() != "register" {
                continue;
            }
            let Some(&start) = class_by_name.get(class.id.as_str()) else {
                continue;
            };
            // The class defining the method: the named one or a base of it.
            let mut queue = std::collections::VecDeque::from([start]);
            let mut seen = BTreeSet::new();
            while let Some(c) = queue.pop_front() {
                if !seen.insert(c) {
                    continue;
                }
                let Some(k) = classes.get_mut(c as usize) else {
                    continue;
                };
                let name = meth.attr.as_str();
                if let Some(&primary) = k.methods.get(name) {
                    let list = k.alternates.entry(name).or_insert_with(|| vec![primary]);
                    list.push(idx(i));
                    break;
                }
                let bases: Vec<&str> = k.bases.clone();
                queue.extend(bases.iter().filter_map(|b| class_by_name.get(b).copied()));
            }
        }
    }
}

/// `self.x = C(…)` (any receiver named `self`) in a method body, at any nesting: `x` → `C`.
fn ctor_fields<'a>(body: &'a [Stmt], out: &mut HashMap<&'a str, &'a str>) {
    let mut stack: Vec<&'a Stmt> = body.iter().collect();
    let mut seen = 0usize;
    while let Some(s) = stack.pop() {
        seen += 1;
        if seen > 100_000 {
            return;
        }
        match s {
            Stmt::Assign(a) => {
                if let ([Expr::Attribute(t)], Expr::Call(ExprCall { func, .. })) =
                    (a.targets.as_slice(), &*a.value)
                {
                    if let (Expr::Name(recv), Expr::Name(class)) = (&*t.value, &**func) {
                        if recv.id.as_str() == "self" {
                            out.insert(t.attr.as_str(), class.id.as_str());
                        }
                    }
                }
            }
            other => inner_statements(other, &mut stack),
        }
    }
}

/// Code of the module kept in attributes, by attribute name, read from every store in the
/// module (module level, class bodies, every function and method): `BOX.fn = _wipe`,
/// `Reg.handlers["x"] = _wipe`, `self._h.append(f)` in a method `@REG.register` applies,
/// `handlers = {"x": _wipe}` in a class body, `setattr(obj, "fn", _wipe)`. What is kept is
/// known by the attribute's name only (which object holds it is not followed), so a call of
/// an attribute of that name, or of something taken out of it (`X.handlers[k](p)`, `for h in
/// self._h: h(p)`), may run any of it, with arguments forge does not map. Code forge cannot
/// name (a method taken as a value, a lambda calling one, what a method of the module is
/// registered with) makes such a call code forge cannot read.
#[derive(Default)]
struct AttrCode {
    /// What each attribute may hold that forge follows ([`ANY`] references).
    refs: HashMap<String, BTreeSet<String>>,
    /// Attributes holding code forge cannot follow, with where (`line 12`).
    open: HashMap<String, String>,
    /// Module-level names functions bind under `global`, with what forge follows of the values.
    globals: HashMap<String, BTreeSet<String>>,
}

/// The walk of [`attribute_code`].
struct AttrWalk<'m, 'a> {
    sc: Scope<'m, 'a>,
    frames: Vec<Frame<'a>>,
    depth: usize,
    out: AttrCode,
    /// A parameter stored into an attribute: the function whose parameter it is (or the one
    /// around it, for a decorator factory's inner function), whether that is a method,
    /// whether it is the inner function's, the parameter's position and name, the attribute.
    feeders: Vec<(&'a str, bool, bool, usize, &'a str, &'a str)>,
    /// The class of each feeder that is a method (`__init__` of `Entry` is fed by `Entry(f)`).
    feeder_class: Vec<Option<&'a str>>,
    /// Calls by the called name (`register(f)`, `REG.add("x", f)`), with their arguments.
    calls: Vec<(&'a str, bool, &'a ruff_python_ast::Arguments)>,
    /// Where a store was cut short (nesting too deep): every attribute is then unknown.
    cut: Option<usize>,
    /// Per function being walked: locals bound to an attribute (`h = Box.handlers`), and the
    /// names it declares `global`.
    locals: Vec<(HashMap<&'a str, &'a str>, BTreeSet<&'a str>)>,
    /// Module-level names a function binds under `global` (`global HANDLER; HANDLER = _wipe`),
    /// with the value.
    globals: Vec<(&'a str, &'a Expr)>,
    /// Those bound otherwise (`for`, `with`, a relative import, `def`), with the line.
    unseen_globals: Vec<(&'a str, usize)>,
    /// Those bound by an import (`global sh; import shutil as sh`), with what it names.
    global_imports: Vec<(&'a str, String)>,
}

impl<'a> AttrWalk<'_, 'a> {
    /// The attribute a store target keeps its value in: `X.a`, `X.a[k]`, `X.a[k][j]`; in a
    /// class body, a name of the body (`handlers[int] = _save`, `handlers = {…}`).
    fn target_attr(&self, t: &'a Expr) -> Option<&'a str> {
        let mut cur = t;
        for _ in 0..KIND_DEPTH {
            match cur {
                // `X.__dict__["fn"]`, `vars(X)["fn"]`: the attribute the key names.
                Expr::Subscript(x) if self_dict(&x.value) => {
                    return match &*x.slice {
                        Expr::StringLiteral(k) => Some(k.value.to_str()),
                        _ => None,
                    };
                }
                Expr::Attribute(a) => {
                    return (!self.sc.foreign(&a.value)).then_some(a.attr.as_str());
                }
                Expr::Subscript(x) => cur = &x.value,
                // `X.h.setdefault(k, [])`, `X.h.get(k)`: an item of `X.h`; `getattr(X, "h")`.
                Expr::Call(c) => match (&*c.func, &c.arguments.args[..]) {
                    (Expr::Name(g), [obj, Expr::StringLiteral(k), ..])
                        if g.id.as_str() == "getattr" && !self.sc.foreign(obj) =>
                    {
                        return Some(k.value.to_str());
                    }
                    (Expr::Attribute(a), _)
                        if matches!(
                            a.attr.as_str(),
                            "setdefault" | "get" | "pop" | "__getitem__"
                        ) =>
                    {
                        cur = &a.value;
                    }
                    _ => return None,
                },
                // A local bound to one (`h = Box.handlers; h["x"] = f`); the instance itself in
                // a method of a class made from a builtin container (`class Registry(dict)`:
                // `self[k] = f`), whose items are kept under the class's name; in a class body,
                // a name of the body.
                Expr::Name(n) => {
                    if let Some(class) = self.container_self(n.id.as_str()) {
                        return Some(class);
                    }
                    let alias = self
                        .locals
                        .last()
                        .and_then(|(l, _)| l.get(n.id.as_str()).copied());
                    if alias.is_some() {
                        return alias;
                    }
                    return matches!(self.frames.last(), Some(Frame::Class(_)))
                        .then_some(n.id.as_str());
                }
                _ => return None,
            }
        }
        None
    }

    /// `name` is the instance in a method of a class derived from a builtin container (`dict`,
    /// `list`, …): the class's name.
    fn container_self(&self, name: &str) -> Option<&'a str> {
        let n = self.frames.len();
        let (Some(Frame::Class(class)), Some(Frame::Func(f))) = (
            n.checked_sub(2).and_then(|i| self.frames.get(i)),
            self.frames.last(),
        ) else {
            return None;
        };
        let first = param_names(&f.parameters).first().copied()?;
        if first != name {
            return None;
        }
        let ci = self.sc.m.class_by_name.get(class)?;
        let k = self.sc.m.classes.get(*ci as usize)?;
        k.base_exprs
            .iter()
            .any(|b| {
                let n = match b {
                    Expr::Name(n) => n.id.as_str(),
                    Expr::Attribute(a) => a.attr.as_str(),
                    _ => return false,
                };
                BUILTIN_CONTAINERS.contains(&n)
            })
            .then_some(*class)
    }

    /// `global H, G` then `H, G = G, H` (or any target holding such names): each paired with
    /// its value, or with the whole value.
    fn global_targets(&mut self, t: &'a Expr, value: &'a Expr) {
        let declared = |w: &Self, n: &str| w.locals.last().is_some_and(|(_, g)| g.contains(n));
        match t {
            Expr::Name(n) if declared(self, n.id.as_str()) => {
                self.globals.push((n.id.as_str(), value));
            }
            Expr::Tuple(_) | Expr::List(_) => {
                for (x, v) in unpacked(t, value) {
                    self.global_targets(x, v.unwrap_or(value));
                }
            }
            Expr::Starred(x) => self.global_targets(&x.value, value),
            _ => {}
        }
    }

    /// `stmt` binds (directly, not in a nested function) a name the function declares global.
    fn binds_global(&self, stmt: &Stmt) -> bool {
        let Some((_, g)) = self.locals.last() else {
            return false;
        };
        !g.is_empty() && bound_names(stmt).iter().any(|n| g.contains(n))
    }

    /// `X.__dict__.update(fn=f)`, `vars(X).update({"fn": f})`: each attribute named.
    fn dict_update(&mut self, args: &'a ruff_python_ast::Arguments) {
        for k in args.keywords.iter() {
            if let Some(name) = &k.arg {
                self.store(name.as_str(), &k.value);
            }
        }
        for a in args.args.iter() {
            if let Expr::Dict(d) = a {
                for item in d.items.iter() {
                    if let Some(Expr::StringLiteral(k)) = &item.key {
                        self.store(k.value.to_str(), &item.value);
                    }
                }
            }
        }
    }

    /// `value` is kept in the attribute `attr`.
    fn store(&mut self, attr: &'a str, value: &'a Expr) {
        // `(name, f)`, `[f]`, `{"k": f}` kept as one item: each part.
        match value {
            Expr::Tuple(_) | Expr::List(_) | Expr::Set(_) => {
                for v in elts(value) {
                    self.store(attr, v);
                }
                return;
            }
            Expr::Dict(d) => {
                for i in d.items.iter() {
                    self.store(attr, &i.value);
                }
                return;
            }
            Expr::Starred(x) => return self.store(attr, &x.value),
            Expr::Named(x) => return self.store(attr, &x.value),
            _ => {}
        }
        if let Expr::Name(n) = value {
            let id = n.id.as_str();
            // A function defined in the function storing it (a decorator's `wrapper`): code
            // forge does not follow there.
            if let Some(Frame::Func(f)) = self.frames.last() {
                if nested_def(&f.body, id) {
                    let line = self.sc.line(value.start());
                    self.out
                        .open
                        .entry(attr.to_string())
                        .or_insert_with(|| format!("line {line}"));
                    return;
                }
            }
            for (level, f) in self.frames.iter().enumerate().rev() {
                let Frame::Func(d) = f else { continue };
                let names = param_names(&d.parameters);
                let Some(i) = names.iter().position(|p| *p == id) else {
                    continue;
                };
                // The function itself, or the one around a decorator factory's inner function.
                let (outer, inner) = match level.checked_sub(1).and_then(|l| self.frames.get(l)) {
                    Some(Frame::Func(o)) => (o, true),
                    _ => (d, false),
                };
                let is_method = self.frames.iter().any(|f| matches!(f, Frame::Class(_)));
                let pos = if inner { 0 } else { i };
                let class = self.frames.iter().rev().find_map(|f| match f {
                    Frame::Class(c) => Some(*c),
                    Frame::Func(_) => None,
                });
                self.feeders
                    .push((outer.name.as_str(), is_method, inner, pos, id, attr));
                self.feeder_class.push(class);
                // Also what calls of the function itself give it (`def inner(f): BOX.fn = f`,
                // then `inner(_wipe)`).
                if inner {
                    self.feeders
                        .push((d.name.as_str(), false, false, i, id, attr));
                    self.feeder_class.push(None);
                }
                // In a package, the other modules may apply or call it too.
                if !self.sc.m.package.modules.is_empty() {
                    let line = self.sc.line(value.start());
                    self.out.open.entry(attr.to_string()).or_insert_with(|| {
                        format!("line {line}, with what other modules of the package give it")
                    });
                }
                return;
            }
        }
        // A local of the function bound to something else (`h = _wipe`, then `self.h = h`):
        // what it was bound to.
        if let (Expr::Name(n), Some(Frame::Func(f))) = (value, self.frames.last()) {
            let id = n.id.as_str();
            if !self.sc.m.by_name.contains_key(id) {
                for v in assigned_in(&f.body, id) {
                    if !matches!(v, Expr::Name(x) if x.id.as_str() == id) {
                        let mut refs = value_refs(&mut self.sc, v);
                        refs.extend(self.method_refs(v));
                        if !refs.is_empty() {
                            let held = self.out.refs.entry(attr.to_string()).or_default();
                            for q in refs {
                                held.insert(if q.starts_with(ANY) {
                                    q
                                } else {
                                    format!("{ANY}{q}")
                                });
                            }
                        }
                    }
                }
            }
        }
        let mut refs = value_refs(&mut self.sc, value);
        refs.extend(self.method_refs(value));
        if !refs.is_empty() {
            let held = self.out.refs.entry(attr.to_string()).or_default();
            for q in refs {
                held.insert(if q.starts_with(ANY) {
                    q
                } else {
                    format!("{ANY}{q}")
                });
            }
        }
    }

    /// The methods of the module's classes `value` names as values (`self._alt`, `lock.zap`,
    /// a lambda calling one; in a class body, its functions by name: `table = {"rm": _rm}`):
    /// every method of that name, as [`METHOD`] references (which object's is not followed).
    fn method_refs(&self, value: &Expr) -> Vec<String> {
        let m = self.sc.m;
        let class = match self.frames.last() {
            Some(Frame::Class(c)) => m
                .class_by_name
                .get(c)
                .and_then(|&ci| m.classes.get(ci as usize)),
            _ => None,
        };
        let mut out = Vec::new();
        let mut stack = vec![(value, 0usize)];
        while let Some((x, d)) = stack.pop() {
            if d > MAX_DEPTH || out.len() > MAX_FACTS {
                break;
            }
            match (x, class) {
                (Expr::Name(n), Some(k)) => {
                    if let Some(&f) = k.methods.get(n.id.as_str()) {
                        out.push(format!("{ANY}{METHOD}{f}"));
                    }
                }
                (Expr::Attribute(a), _) if !self.sc.foreign(&a.value) => {
                    let name = a.attr.as_str();
                    if !(name.starts_with("__") && name.ends_with("__")) {
                        for k in &m.classes {
                            if let Some(&f) = k.methods.get(name) {
                                out.push(format!("{ANY}{METHOD}{f}"));
                            }
                        }
                    }
                }
                _ => {}
            }
            let mut kids = Vec::new();
            children(x, &mut kids);
            stack.extend(kids.into_iter().map(|k| (k, d + 1)));
        }
        out
    }

    /// Each value of a collection kept in `attr` (`extend([f, h])`, `update({"rm": f})`).
    fn store_all(&mut self, attr: &'a str, values: &'a Expr) {
        match values {
            Expr::List(l) => l.elts.iter().for_each(|v| self.store(attr, v)),
            Expr::Tuple(t) => t.elts.iter().for_each(|v| self.store(attr, v)),
            Expr::Set(x) => x.elts.iter().for_each(|v| self.store(attr, v)),
            Expr::Dict(d) => d.items.iter().for_each(|i| self.store(attr, &i.value)),
            other => self.store(attr, other),
        }
    }

    fn assigned(&mut self, target: &'a Expr, value: &'a Expr) {
        match target {
            Expr::Tuple(_) | Expr::List(_) => {
                for (t, v) in unpacked(target, value) {
                    self.assigned(t, v.unwrap_or(value));
                }
            }
            Expr::Starred(s) => self.assigned(&s.value, value),
            Expr::Name(_) if !matches!(self.frames.last(), Some(Frame::Class(_))) => {}
            t => {
                if let Some(attr) = self.target_attr(t) {
                    // A class body's plain names hold data or functions Python binds
                    // (`rm = os.remove` is read as a class attribute already): only
                    // containers and items are kept here.
                    let class_name = matches!(t, Expr::Name(_));
                    if !class_name || container_value(value) || matches!(value, Expr::Tuple(_)) {
                        self.store_all_or_one(attr, value, matches!(t, Expr::Subscript(_)));
                    }
                }
            }
        }
    }

    /// A display assigned keeps each of its items; anything else is kept itself.
    fn store_all_or_one(&mut self, attr: &'a str, value: &'a Expr, item: bool) {
        if !item && container_value(value) {
            self.store_all(attr, value);
        } else {
            self.store(attr, value);
        }
    }
}

impl<'a> ruff_python_ast::visitor::Visitor<'a> for AttrWalk<'_, 'a> {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        if self.depth > MAX_DEPTH {
            self.cut.get_or_insert(self.sc.line(stmt.start()));
            return;
        }
        self.depth += 1;
        match stmt {
            Stmt::FunctionDef(f) => {
                // `global H` then `def H(…)`: a binding forge does not follow as a value.
                if self
                    .locals
                    .last()
                    .is_some_and(|(_, g)| g.contains(f.name.as_str()))
                    && matches!(self.frames.last(), Some(Frame::Func(_)))
                {
                    let line = self.sc.line(stmt.start());
                    self.unseen_globals.push((f.name.as_str(), line));
                }
                self.frames.push(Frame::Func(f));
                self.locals.push(Default::default());
                ruff_python_ast::visitor::walk_stmt(self, stmt);
                self.locals.pop();
                self.frames.pop();
            }
            Stmt::ClassDef(c) => {
                if self
                    .locals
                    .last()
                    .is_some_and(|(_, g)| g.contains(c.name.as_str()))
                    && matches!(self.frames.last(), Some(Frame::Func(_)))
                {
                    let line = self.sc.line(stmt.start());
                    self.unseen_globals.push((c.name.as_str(), line));
                }
                self.frames.push(Frame::Class(c.name.as_str()));
                ruff_python_ast::visitor::walk_stmt(self, stmt);
                self.frames.pop();
            }
            Stmt::Global(g) => {
                if let Some((_, declared)) = self.locals.last_mut() {
                    declared.extend(g.names.iter().map(|n| n.as_str()));
                }
            }
            // Bound under `global` other than by `=`: what the name then is, forge does not
            // follow (`for H in …`, `with … as H`, `import x as H`, `def H`, `H += …`).
            Stmt::For(_)
            | Stmt::With(_)
            | Stmt::Import(_)
            | Stmt::ImportFrom(_)
            | Stmt::AugAssign(_)
            | Stmt::AnnAssign(_)
            | Stmt::Match(_)
            | Stmt::Try(_)
                if self.binds_global(stmt) =>
            {
                let line = self.sc.line(stmt.start());
                // `import shutil as sh`, `from os import remove as H`: what the import names.
                let imported: Vec<(&'a str, String)> = match stmt {
                    Stmt::Import(x) => x
                        .names
                        .iter()
                        .map(|a| match &a.asname {
                            Some(n) => (n.as_str(), a.name.to_string()),
                            None => {
                                let first = a.name.as_str().split('.').next().unwrap_or_default();
                                (first, first.to_string())
                            }
                        })
                        .collect(),
                    Stmt::ImportFrom(x) if x.level == 0 => x
                        .names
                        .iter()
                        .filter_map(|a| {
                            let m = x.module.as_ref()?;
                            let bound = a.asname.as_ref().map_or(a.name.as_str(), |n| n.as_str());
                            Some((bound, format!("{}.{}", m.as_str(), a.name.as_str())))
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                for name in bound_names(stmt) {
                    if self.locals.last().is_some_and(|(_, g)| g.contains(name)) {
                        match imported.iter().find(|(b, _)| *b == name) {
                            Some((_, q)) => self.global_imports.push((name, q.clone())),
                            None => self.unseen_globals.push((name, line)),
                        }
                    }
                }
                // Still read for attribute stores.
                match stmt {
                    Stmt::AugAssign(a) => {
                        if let Some(attr) = self.target_attr(&a.target) {
                            self.store_all(attr, &a.value);
                        }
                    }
                    Stmt::AnnAssign(a) => {
                        if let Some(v) = a.value.as_deref() {
                            self.assigned(&a.target, v);
                        }
                    }
                    _ => {}
                }
                ruff_python_ast::visitor::walk_stmt(self, stmt);
            }
            Stmt::Assign(a) => {
                for t in &a.targets {
                    self.assigned(t, &a.value);
                    // `global H, G; H, G = G, H`: each name with its value (the whole value
                    // when they do not pair).
                    if !matches!(t, Expr::Name(_)) {
                        self.global_targets(t, &a.value);
                    }
                    if let Expr::Name(n) = t {
                        let id = n.id.as_str();
                        // `global HANDLER; HANDLER = _wipe`: the module-level name.
                        if self.locals.last().is_some_and(|(_, g)| g.contains(id)) {
                            self.globals.push((id, &a.value));
                        } else {
                            // `h = Box.handlers`: a local standing for the attribute.
                            let attr = match &*a.value {
                                Expr::Attribute(_) | Expr::Subscript(_) | Expr::Call(_) => {
                                    self.target_attr(&a.value)
                                }
                                _ => None,
                            };
                            if let Some((l, _)) = self.locals.last_mut() {
                                match attr {
                                    Some(at) => {
                                        l.insert(id, at);
                                    }
                                    None => {
                                        l.remove(id);
                                    }
                                }
                            }
                        }
                    }
                }
                ruff_python_ast::visitor::walk_stmt(self, stmt);
            }
            Stmt::AnnAssign(a) => {
                if let Some(v) = a.value.as_deref() {
                    match (&*a.target, self.frames.last()) {
                        // `fn: Callable = _wipe` in a class body (a dataclass field's default).
                        (Expr::Name(n), Some(Frame::Class(_))) => {
                            self.store(n.id.as_str(), v);
                        }
                        _ => self.assigned(&a.target, v),
                    }
                }
                ruff_python_ast::visitor::walk_stmt(self, stmt);
            }
            Stmt::AugAssign(a) => {
                if let Some(attr) = self.target_attr(&a.target) {
                    self.store_all(attr, &a.value);
                }
                ruff_python_ast::visitor::walk_stmt(self, stmt);
            }
            _ => ruff_python_ast::visitor::walk_stmt(self, stmt),
        }
        self.depth -= 1;
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        if self.depth > MAX_DEPTH {
            self.cut.get_or_insert(self.sc.line(expr.start()));
            return;
        }
        self.depth += 1;
        // `global H` then `(H := _wipe)`.
        if let Expr::Named(w) = expr {
            if let Expr::Name(n) = &*w.target {
                if self
                    .locals
                    .last()
                    .is_some_and(|(_, g)| g.contains(n.id.as_str()))
                    && matches!(self.frames.last(), Some(Frame::Func(_)))
                {
                    self.globals.push((n.id.as_str(), &w.value));
                }
            }
        }
        if let Expr::Call(c) = expr {
            match &*c.func {
                Expr::Name(n) => {
                    self.calls.push((n.id.as_str(), false, &c.arguments));
                    // `setattr(obj, "fn", _wipe)`.
                    if n.id.as_str() == "setattr" {
                        if let [obj, name, value] = &c.arguments.args[..] {
                            if !self.sc.foreign(obj) {
                                if let Expr::StringLiteral(s) = name {
                                    self.store(s.value.to_str(), value);
                                }
                            }
                        }
                    }
                }
                Expr::Attribute(a) => {
                    self.calls.push((a.attr.as_str(), true, &c.arguments));
                    // `object.__setattr__(obj, "fn", f)`.
                    if a.attr.as_str() == "__setattr__" {
                        if let [obj, Expr::StringLiteral(k), value] = &c.arguments.args[..] {
                            if !self.sc.foreign(obj) {
                                self.store(k.value.to_str(), value);
                            }
                        }
                    }
                    // `X.__dict__.update(fn=f)`, `vars(X).update({"fn": f})`.
                    if a.attr.as_str() == "update" && self_dict(&a.value) {
                        self.dict_update(&c.arguments);
                    }
                    // `self._h.append(f)`, `Reg.handlers[k].add(f)`, `handlers.update(…)` in a
                    // class body.
                    if let Some(which) = store_method(a.attr.as_str()) {
                        if let Some(attr) = self.target_attr(&a.value) {
                            let args = &c.arguments.args;
                            match which {
                                Some(i) => {
                                    if let Some(v) = args.get(i) {
                                        self.store(attr, v);
                                    }
                                }
                                None => {
                                    for v in args.iter() {
                                        self.store_all(attr, v);
                                    }
                                    for k in c.arguments.keywords.iter() {
                                        self.store(attr, &k.value);
                                    }
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        ruff_python_ast::visitor::walk_expr(self, expr);
        self.depth -= 1;
    }
}

/// See [`AttrCode`].
fn attribute_code<'a>(m: &Module<'a>, body: &'a [Stmt]) -> AttrCode {
    let mut w = AttrWalk {
        sc: Scope::new(m),
        frames: Vec::new(),
        depth: 0,
        out: AttrCode::default(),
        feeders: Vec::new(),
        feeder_class: Vec::new(),
        calls: Vec::new(),
        cut: None,
        locals: vec![Default::default()],
        globals: Vec::new(),
        unseen_globals: Vec::new(),
        global_imports: Vec::new(),
    };
    for s in body {
        ruff_python_ast::visitor::Visitor::visit_stmt(&mut w, s);
    }
    let AttrWalk {
        mut sc,
        mut out,
        feeders,
        feeder_class,
        calls,
        cut,
        globals,
        unseen_globals,
        global_imports,
        ..
    } = w;
    // Names the module binds by assignment at its top level (`reg = REG.register`): a
    // decorator so named may be a method that keeps its parameter.
    let mut assigned_names: BTreeSet<&str> = BTreeSet::new();
    for st in module_statements(body) {
        let targets: Vec<&Expr> = match st {
            Stmt::Assign(a) => a.targets.iter().collect(),
            Stmt::AnnAssign(a) => vec![&*a.target],
            _ => Vec::new(),
        };
        for t in targets {
            let mut names = vec![t];
            while let Some(x) = names.pop() {
                match x {
                    Expr::Name(n) => {
                        assigned_names.insert(n.id.as_str());
                    }
                    Expr::Tuple(_) | Expr::List(_) => names.extend(elts(x).iter()),
                    Expr::Starred(st) => names.push(&st.value),
                    _ => {}
                }
            }
        }
    }
    // A parameter kept: what the function is applied to as a decorator (`@register`,
    // `@REG.register`, `@REG.command("z")`), and what calls give it (`REG.add("x", _wipe)`).
    for ((outer, is_method, inner, pos, param, attr), class) in
        feeders.into_iter().zip(feeder_class)
    {
        let mut held: Vec<String> = Vec::new();
        let mut unknown = None;
        for f in &m.funcs {
            for d in f.def.decorator_list.iter() {
                let (on, factory) = match &d.expression {
                    Expr::Call(x) => (&*x.func, true),
                    e => (e, false),
                };
                let named = match on {
                    Expr::Name(n) => !is_method && n.id.as_str() == outer,
                    Expr::Attribute(a) => is_method && a.attr.as_str() == outer,
                    _ => false,
                };
                // A method that keeps its parameter may also be applied through a name forge
                // does not follow (`reg = REG.register`, then `@reg`; `@REG` running
                // `__call__`).
                let maybe = is_method
                    && !named
                    && matches!(on, Expr::Name(n) if assigned_names.contains(n.id.as_str()));
                if maybe {
                    unknown.get_or_insert_with(|| format!("line {}", sc.line(d.start())));
                }
                if named && factory == inner {
                    if f.class.is_none() && m.by_name.contains_key(f.def.name.as_str()) {
                        held.push(format!("{ANY}{FN}{}", f.def.name.as_str()));
                    } else {
                        unknown.get_or_insert_with(|| format!("line {}", sc.line(d.start())));
                    }
                }
            }
        }
        if !inner {
            for (name, on_attr, args) in &calls {
                // `Entry(f)` runs `Entry.__init__(self, f)`.
                let constructed = outer == "__init__" && class == Some(*name) && !*on_attr;
                if !constructed && (*name != outer || *on_attr != is_method) {
                    continue;
                }
                // A method called on an instance or a class: its first parameter is bound.
                let at = if is_method {
                    pos.checked_sub(1)
                } else {
                    Some(pos)
                };
                let given = at
                    .and_then(|i| args.args.get(i))
                    .filter(|_| !args.args.iter().take(pos).any(Expr::is_starred_expr))
                    .or_else(|| {
                        args.keywords
                            .iter()
                            .find(|k| k.arg.as_ref().is_some_and(|a| a.as_str() == param))
                            .map(|k| &k.value)
                    });
                if let Some(v) = given {
                    // (A value forge does not follow here — a parameter of the caller — is what
                    // that caller is given: a function of the module given there is counted
                    // where it is given.)
                    for q in sc.tainted(v) {
                        held.push(if q.starts_with(ANY) {
                            q
                        } else {
                            format!("{ANY}{q}")
                        });
                    }
                }
            }
        }
        if !held.is_empty() {
            out.refs.entry(attr.to_string()).or_default().extend(held);
        }
        if let Some(at) = unknown {
            out.open.entry(attr.to_string()).or_insert(at);
        }
    }
    if let Some(line) = cut {
        for attr in out.refs.keys().cloned().collect::<Vec<_>>() {
            out.open
                .entry(attr)
                .or_insert_with(|| format!("code nested too deep to read, line {line}"));
        }
    }
    for (name, q) in global_imports {
        out.globals.entry(name.to_string()).or_default().insert(q);
    }
    for (name, line) in unseen_globals {
        out.globals
            .entry(name.to_string())
            .or_default()
            .insert(format!(
                "{UNSEEN}bound under `global` at line {line}{UNSEEN_END}"
            ));
    }
    // `global HANDLER; HANDLER = _wipe` in a function: what the name may be bound to.
    for (name, value) in globals {
        // A call's result is not the function called (`_cache = _load()`), but a partial is.
        let partial = |c: &ExprCall| match &*c.func {
            Expr::Name(n) => n.id.as_str() == "partial",
            Expr::Attribute(a) => a.attr.as_str() == "partial",
            _ => false,
        };
        if matches!(value, Expr::Call(c) if !partial(c)) {
            continue;
        }
        if value_refs(&mut sc, value).is_empty() && !plain_data(value, 0) {
            let line = sc.line(value.start());
            out.globals
                .entry(name.to_string())
                .or_default()
                .insert(format!("{UNSEEN}bound under `global` at line {line} to a value forge does not follow{UNSEEN_END}"));
            continue;
        }
        let refs: Vec<String> = value_refs(&mut sc, value)
            .into_iter()
            .map(|q| {
                if q.starts_with(ANY) {
                    q
                } else {
                    format!("{ANY}{q}")
                }
            })
            .collect();
        if !refs.is_empty() {
            out.globals
                .entry(name.to_string())
                .or_default()
                .extend(refs);
        }
    }
    out
}

/// What a name computed at run time is known to start with: `"do_" + cmd`, `f"do_{cmd}"`
/// (empty when nothing is known).
fn name_prefix(name: &Expr) -> String {
    match name {
        Expr::BinOp(b) if matches!(b.op, Operator::Add) => match &*b.left {
            Expr::StringLiteral(t) => t.value.to_str().to_string(),
            _ => String::new(),
        },
        Expr::FString(f) => f
            .value
            .elements()
            .next()
            .and_then(|el| el.as_literal())
            .map(|l| l.value.to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// The attributes a module keeps code of its own in, read from its text alone (for the other
/// modules of its package): a store into an attribute (`X.a = v`, `X.a[k] = v`,
/// `X.a.append(v)`, `setattr(X, "a", v)`) of a function the module defines at its top level, a
/// lambda or a `partial`, anywhere in it, and class-body containers of those. With the line.
pub(crate) fn stored_code_attrs(body: &[Stmt], text: &str) -> Vec<(String, usize)> {
    let mut defs: BTreeSet<&str> = BTreeSet::new();
    for st in body {
        if let Stmt::FunctionDef(f) = st {
            defs.insert(f.name.as_str());
        }
    }
    let code = |v: &Expr| -> bool {
        let mut stack = vec![(v, 0usize)];
        while let Some((x, d)) = stack.pop() {
            if d > MAX_DEPTH {
                return true;
            }
            match x {
                Expr::Name(n) if defs.contains(n.id.as_str()) => return true,
                Expr::Lambda(_) => return true,
                Expr::Call(c)
                    if matches!(&*c.func, Expr::Name(n) if n.id.as_str() == "partial")
                        || matches!(&*c.func, Expr::Attribute(a) if a.attr.as_str() == "partial") =>
                {
                    return true
                }
                Expr::Tuple(_)
                | Expr::List(_)
                | Expr::Set(_)
                | Expr::Dict(_)
                | Expr::Starred(_) => {
                    let mut kids = Vec::new();
                    children(x, &mut kids);
                    stack.extend(kids.into_iter().map(|k| (k, d + 1)));
                }
                _ => {}
            }
        }
        false
    };
    fn root(t: &Expr) -> Option<&str> {
        let mut cur = t;
        for _ in 0..KIND_DEPTH {
            match cur {
                Expr::Attribute(a) => return Some(a.attr.as_str()),
                Expr::Subscript(x) => cur = &x.value,
                Expr::Call(c) => match &*c.func {
                    Expr::Attribute(a) => cur = &a.value,
                    _ => return None,
                },
                _ => return None,
            }
        }
        None
    }
    let line = |at: TextSize| {
        text.get(..at.to_usize())
            .map_or(1, |t| t.bytes().filter(|b| *b == b'\n').count() + 1)
    };
    let mut out = Vec::new();
    let mut stack: Vec<(&Stmt, bool)> = body.iter().map(|x| (x, false)).collect();
    let mut seen = 0usize;
    while let Some((st, in_class)) = stack.pop() {
        seen += 1;
        if seen > 1_000_000 {
            break;
        }
        let mut exprs: Vec<&Expr> = Vec::new();
        match st {
            Stmt::Assign(a) => {
                for t in &a.targets {
                    let attr = match t {
                        Expr::Name(n) if in_class => Some(n.id.as_str()),
                        _ => root(t),
                    };
                    if let (Some(attr), true) = (attr, code(&a.value)) {
                        out.push((attr.to_string(), line(st.start())));
                    }
                }
                exprs.push(&a.value);
            }
            Stmt::AnnAssign(a) => {
                if let Some(v) = a.value.as_deref() {
                    let attr = match &*a.target {
                        Expr::Name(n) if in_class => Some(n.id.as_str()),
                        t => root(t),
                    };
                    if let (Some(attr), true) = (attr, code(v)) {
                        out.push((attr.to_string(), line(st.start())));
                    }
                    exprs.push(v);
                }
            }
            Stmt::AugAssign(a) => {
                if let (Some(attr), true) = (root(&a.target), code(&a.value)) {
                    out.push((attr.to_string(), line(st.start())));
                }
            }
            Stmt::Expr(e) => exprs.push(&e.value),
            Stmt::FunctionDef(f) => stack.extend(f.body.iter().map(|x| (x, false))),
            Stmt::ClassDef(c) => stack.extend(c.body.iter().map(|x| (x, true))),
            other => {
                let mut inner = Vec::new();
                inner_statements(other, &mut inner);
                stack.extend(inner.into_iter().map(|x| (x, in_class)));
            }
        }
        // Calls storing: `X.a.append(f)`, `setattr(X, "a", f)`.
        let mut es: Vec<(&Expr, usize)> = exprs.into_iter().map(|e| (e, 0)).collect();
        while let Some((e, d)) = es.pop() {
            if d > MAX_DEPTH {
                break;
            }
            if let Expr::Call(c) = e {
                let holds = c
                    .arguments
                    .args
                    .iter()
                    .chain(c.arguments.keywords.iter().map(|k| &k.value))
                    .any(&code);
                if holds {
                    match &*c.func {
                        Expr::Attribute(a) if store_method(a.attr.as_str()).is_some() => {
                            if let Some(attr) = root(&a.value) {
                                out.push((attr.to_string(), line(e.start())));
                            }
                        }
                        Expr::Name(n) if n.id.as_str() == "setattr" => {
                            if let Some(Expr::StringLiteral(k)) = c.arguments.args.get(1) {
                                out.push((k.value.to_str().to_string(), line(e.start())));
                            }
                        }
                        _ => {}
                    }
                }
            }
            let mut kids = Vec::new();
            children(e, &mut kids);
            es.extend(kids.into_iter().map(|k| (k, d + 1)));
        }
    }
    out
}

/// What a value kept somewhere may be called as: [`Scope::tainted`]'s references, and for a
/// module-level name bound to functions (`H = _rb`, a name rebound under `global`), those.
fn value_refs(sc: &mut Scope<'_, '_>, value: &Expr) -> Vec<String> {
    let mut out = sc.tainted(value);
    if let Expr::Name(n) = value {
        if let Some(qs) = sc.m.global_aliases.get(n.id.as_str()) {
            out.extend(qs.iter().map(|q| {
                if q.starts_with(ANY) {
                    q.clone()
                } else {
                    format!("{ANY}{q}")
                }
            }));
        }
    }
    out
}

/// A `.register` bound to a name anywhere at module level or in a class body (`reg =
/// C.m.register`, `reg = m.register`).
fn register_aliased(body: &[Stmt]) -> bool {
    let mut stack: Vec<&Stmt> = module_statements(body);
    let mut seen = 0usize;
    while let Some(st) = stack.pop() {
        seen += 1;
        if seen > 1_000_000 {
            return true;
        }
        match st {
            Stmt::Assign(a) => {
                if matches!(&*a.value, Expr::Attribute(x) if x.attr.as_str() == "register") {
                    return true;
                }
            }
            Stmt::ClassDef(c) => stack.extend(c.body.iter()),
            other => inner_statements(other, &mut stack),
        }
    }
    false
}

/// `a.b.c` as written, for names and attributes only.
fn sketch_dotted(e: &Expr) -> Option<String> {
    match e {
        Expr::Name(n) => Some(n.id.to_string()),
        Expr::Attribute(a) => Some(format!("{}.{}", sketch_dotted(&a.value)?, a.attr.as_str())),
        _ => None,
    }
}

/// `X.__dict__` or `vars(X)`: the namespace of an object's attributes.
fn self_dict(e: &Expr) -> bool {
    match e {
        Expr::Attribute(a) => a.attr.as_str() == "__dict__",
        Expr::Call(c) => match &*c.func {
            Expr::Name(n) if n.id.as_str() == "vars" => c.arguments.args.len() == 1,
            // `getattr(X, "__dict__")`.
            Expr::Name(n) if n.id.as_str() == "getattr" => matches!(
                c.arguments.args.get(1),
                Some(Expr::StringLiteral(k)) if k.value.to_str() == "__dict__"
            ),
            _ => false,
        },
        _ => false,
    }
}

/// `name` is a function defined in `body` (at any depth of its blocks, not in nested functions).
fn nested_def(body: &[Stmt], name: &str) -> bool {
    let mut stack: Vec<&Stmt> = body.iter().collect();
    let mut seen = 0usize;
    while let Some(s) = stack.pop() {
        seen += 1;
        if seen > 100_000 {
            return true;
        }
        match s {
            Stmt::FunctionDef(f) if f.name.as_str() == name => return true,
            other => inner_statements(other, &mut stack),
        }
    }
    false
}

/// The names a statement itself binds (not those of the blocks it holds, which are walked as
/// statements): `for`/`with` targets, imports, augmented and annotated targets, `match`
/// captures, `except … as`.
fn bound_names(stmt: &Stmt) -> Vec<&str> {
    let mut targets: Vec<&Expr> = Vec::new();
    let mut out: Vec<&str> = Vec::new();
    match stmt {
        Stmt::For(x) => targets.push(&x.target),
        Stmt::With(x) => targets.extend(x.items.iter().filter_map(|i| i.optional_vars.as_deref())),
        Stmt::AugAssign(x) => targets.push(&x.target),
        Stmt::AnnAssign(x) => targets.push(&x.target),
        Stmt::Import(x) => {
            for a in &x.names {
                let bound = a.asname.as_ref().map_or_else(
                    || a.name.as_str().split('.').next().unwrap_or_default(),
                    |n| n.as_str(),
                );
                out.push(bound);
            }
        }
        Stmt::ImportFrom(x) => {
            for a in &x.names {
                out.push(a.asname.as_ref().map_or(a.name.as_str(), |n| n.as_str()));
            }
        }
        Stmt::Try(t) => {
            for h in &t.handlers {
                let ExceptHandler::ExceptHandler(h) = h;
                if let Some(n) = &h.name {
                    out.push(n.as_str());
                }
            }
        }
        Stmt::Match(m) => {
            // Any name a pattern captures: taken from the text of its patterns' `as`/captures.
            for c in &m.cases {
                let mut stack = vec![&c.pattern];
                while let Some(p) = stack.pop() {
                    match p {
                        ruff_python_ast::Pattern::MatchAs(a) => {
                            if let Some(n) = &a.name {
                                out.push(n.as_str());
                            }
                            if let Some(q) = a.pattern.as_deref() {
                                stack.push(q);
                            }
                        }
                        ruff_python_ast::Pattern::MatchOr(o) => stack.extend(o.patterns.iter()),
                        ruff_python_ast::Pattern::MatchSequence(sq) => {
                            stack.extend(sq.patterns.iter())
                        }
                        ruff_python_ast::Pattern::MatchStar(st) => {
                            if let Some(n) = &st.name {
                                out.push(n.as_str());
                            }
                        }
                        ruff_python_ast::Pattern::MatchMapping(mm) => {
                            stack.extend(mm.patterns.iter());
                            if let Some(n) = &mm.rest {
                                out.push(n.as_str());
                            }
                        }
                        ruff_python_ast::Pattern::MatchClass(mc) => {
                            stack.extend(mc.arguments.patterns.iter());
                            stack.extend(mc.arguments.keywords.iter().map(|k| &k.pattern));
                        }
                        _ => {}
                    }
                }
            }
        }
        _ => {}
    }
    while let Some(t) = targets.pop() {
        match t {
            Expr::Name(n) => out.push(n.id.as_str()),
            Expr::Tuple(_) | Expr::List(_) => targets.extend(elts(t).iter()),
            Expr::Starred(x) => targets.push(&x.value),
            _ => {}
        }
    }
    out
}

/// The values a function's body (not its nested functions) assigns to `name`.
fn assigned_in<'a>(body: &'a [Stmt], name: &str) -> Vec<&'a Expr> {
    let mut out = Vec::new();
    let mut stack: Vec<&'a Stmt> = body.iter().collect();
    let mut seen = 0usize;
    while let Some(s) = stack.pop() {
        seen += 1;
        if seen > 100_000 {
            break;
        }
        match s {
            Stmt::Assign(a) => {
                for t in &a.targets {
                    let mut names = vec![t];
                    while let Some(x) = names.pop() {
                        match x {
                            Expr::Name(n) if n.id.as_str() == name => out.push(&*a.value),
                            Expr::Tuple(_) | Expr::List(_) => names.extend(elts(x).iter()),
                            Expr::Starred(st) => names.push(&st.value),
                            _ => {}
                        }
                    }
                }
            }
            Stmt::AnnAssign(a) => {
                if let (Expr::Name(n), Some(v)) = (&*a.target, a.value.as_deref()) {
                    if n.id.as_str() == name {
                        out.push(v);
                    }
                }
            }
            // `(g := _wipe)` in an expression statement.
            Stmt::Expr(e) => {
                let mut es = vec![(&*e.value, 0usize)];
                while let Some((x, d)) = es.pop() {
                    if d > MAX_DEPTH {
                        break;
                    }
                    if let Expr::Named(w) = x {
                        if matches!(&*w.target, Expr::Name(n) if n.id.as_str() == name) {
                            out.push(&w.value);
                        }
                    }
                    let mut kids = Vec::new();
                    children(x, &mut kids);
                    es.extend(kids.into_iter().map(|k| (k, d + 1)));
                }
            }
            other => inner_statements(other, &mut stack),
        }
    }
    out
}

/// [`inner_statements`], for the package's reading of class bodies.
pub(crate) fn block_statements<'a>(s: &'a Stmt, out: &mut Vec<&'a Stmt>) {
    inner_statements(s, out);
}

/// The statements directly inside a block statement (`if`, `with`, `try`, `for`, `while`).
fn inner_statements<'a>(s: &'a Stmt, out: &mut Vec<&'a Stmt>) {
    match s {
        Stmt::If(x) => {
            out.extend(x.body.iter());
            for c in &x.elif_else_clauses {
                out.extend(c.body.iter());
            }
        }
        Stmt::With(x) => out.extend(x.body.iter()),
        Stmt::Try(t) => {
            out.extend(t.body.iter());
            for h in &t.handlers {
                let ExceptHandler::ExceptHandler(h) = h;
                out.extend(h.body.iter());
            }
            out.extend(t.orelse.iter());
            out.extend(t.finalbody.iter());
        }
        Stmt::For(x) => {
            out.extend(x.body.iter());
            out.extend(x.orelse.iter());
        }
        Stmt::While(x) => {
            out.extend(x.body.iter());
            out.extend(x.orelse.iter());
        }
        _ => {}
    }
}

/// The class of the module a function returns an instance of: its return annotation
/// (`-> Cache`), else the class of a `return C(…)` in its body.
fn returned_class<'a>(f: &'a StmtFunctionDef, classes: &HashMap<&'a str, u32>) -> Option<u32> {
    if let Some(r) = f.returns.as_deref() {
        let named = match r {
            Expr::Name(n) => Some(n.id.as_str()),
            Expr::StringLiteral(s) => Some(s.value.to_str()),
            _ => None,
        };
        if let Some(c) = named.and_then(|n| classes.get(n)) {
            return Some(*c);
        }
    }
    let mut stack: Vec<&'a Stmt> = f.body.iter().collect();
    let mut seen = 0usize;
    while let Some(s) = stack.pop() {
        seen += 1;
        if seen > 100_000 {
            return None;
        }
        match s {
            Stmt::Return(r) => {
                if let Some(Expr::Call(c)) = r.value.as_deref() {
                    if let Expr::Name(n) = &*c.func {
                        if let Some(ci) = classes.get(n.id.as_str()) {
                            return Some(*ci);
                        }
                    }
                }
            }
            other => inner_statements(other, &mut stack),
        }
    }
    None
}

/// Module-level `def`s, also inside module-level `if`/`try`/`with`/`for`/`while`. `seen` gets
/// the first definition of each name, `again` every later one: which runs is decided when the
/// module is imported, so a call of the name may run any of them. `false` when the module nests
/// deeper than [`MODULE_DEPTH`] (what lies below was not read).
fn collect_functions<'a>(
    body: &'a [Stmt],
    depth: usize,
    out: &mut Vec<Func<'a>>,
    seen: &mut HashMap<&'a str, u32>,
    again: &mut HashMap<&'a str, Vec<u32>>,
) -> bool {
    if depth > MODULE_DEPTH {
        return false;
    }
    let mut whole = true;
    let mut sub = |b: &'a [Stmt],
                   out: &mut Vec<Func<'a>>,
                   seen: &mut HashMap<&'a str, u32>,
                   again: &mut HashMap<&'a str, Vec<u32>>| {
        whole &= collect_functions(b, depth + 1, out, seen, again);
    };
    for stmt in body {
        match stmt {
            Stmt::FunctionDef(f) => {
                let name = f.name.as_str();
                if name.is_empty() {
                    continue;
                }
                if seen.contains_key(name) {
                    again.entry(name).or_default().push(idx(out.len()));
                } else {
                    seen.insert(name, idx(out.len()));
                }
                out.push(Func::new(f));
            }
            Stmt::With(w) => sub(&w.body, out, seen, again),
            Stmt::For(x) => {
                sub(&x.body, out, seen, again);
                sub(&x.orelse, out, seen, again);
            }
            Stmt::While(x) => {
                sub(&x.body, out, seen, again);
                sub(&x.orelse, out, seen, again);
            }
            Stmt::If(s) => {
                sub(&s.body, out, seen, again);
                for c in &s.elif_else_clauses {
                    sub(&c.body, out, seen, again);
                }
            }
            Stmt::Try(t) => {
                sub(&t.body, out, seen, again);
                for h in &t.handlers {
                    let ExceptHandler::ExceptHandler(h) = h;
                    sub(&h.body, out, seen, again);
                }
                sub(&t.orelse, out, seen, again);
                sub(&t.finalbody, out, seen, again);
            }
            _ => {}
        }
    }
    whole
}

/// DB-API modules whose `execute` calls are classified.
const DB_LIBS: [&str; 8] = [
    "sqlite3",
    "aiosqlite",
    "psycopg2",
    "psycopg",
    "pymysql",
    "MySQLdb",
    "mysql.connector",
    "duckdb",
];

fn db_lib_of(module: &str) -> Option<&'static str> {
    DB_LIBS.iter().copied().find(|lib| {
        module == *lib
            || module
                .strip_prefix(*lib)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

fn db_connect(q: &str) -> Option<&'static str> {
    match q {
        "sqlite3.connect" => Some("sqlite3"),
        "aiosqlite.connect" => Some("aiosqlite"),
        "psycopg2.connect" => Some("psycopg2"),
        "psycopg.connect" | "psycopg.Connection.connect" | "psycopg.AsyncConnection.connect" => {
            Some("psycopg")
        }
        "pymysql.connect" => Some("pymysql"),
        "MySQLdb.connect" => Some("MySQLdb"),
        "mysql.connector.connect" => Some("mysql.connector"),
        "duckdb.connect" => Some("duckdb"),
        _ => None,
    }
}

/// The DB-API module imported at module level (also inside module-level `if`/`try`).
fn module_db(body: &[Stmt], depth: usize) -> Option<&'static str> {
    if depth > MAX_DEPTH {
        return None;
    }
    let d = depth + 1;
    for s in body {
        let found = match s {
            Stmt::Import(i) => i.names.iter().find_map(|a| db_lib_of(a.name.as_str())),
            Stmt::ImportFrom(i) if i.level == 0 => i.module.as_ref().and_then(|m| {
                let m = m.as_str();
                db_lib_of(m).or_else(|| {
                    i.names
                        .iter()
                        .find_map(|a| db_lib_of(&format!("{m}.{}", a.name.as_str())))
                })
            }),
            Stmt::If(x) => module_db(&x.body, d).or_else(|| {
                x.elif_else_clauses
                    .iter()
                    .find_map(|c| module_db(&c.body, d))
            }),
            Stmt::Try(t) => module_db(&t.body, d)
                .or_else(|| {
                    t.handlers.iter().find_map(|h| {
                        let ExceptHandler::ExceptHandler(h) = h;
                        module_db(&h.body, d)
                    })
                })
                .or_else(|| module_db(&t.orelse, d))
                .or_else(|| module_db(&t.finalbody, d)),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// Module-level names: their kinds, and their string constants.
type Globals = (
    HashMap<String, Kind>,
    HashMap<String, Option<Rc<str>>>,
    Aliases,
    HashMap<String, String>,
);

/// Names bound to a function or module of an import (`rm = os.remove`, `o = os`,
/// `m = importlib.import_module("shutil")`): every qualified name each was bound to. A name also
/// bound to something else may stand for any of them, so each is assumed.
type Aliases = HashMap<String, BTreeSet<String>>;

/// Kinds and string constants of module-level names.
fn globals(m: &Module<'_>, body: &[Stmt]) -> Globals {
    let mut sc = Scope::new(m);
    sc.scan_globals(body, 0);
    (sc.kinds, sc.consts, sc.aliases, sc.holders)
}

/// What the module's containers are filled with, and which functions a dispatcher may run.
#[derive(Default)]
struct Filled<'a> {
    /// Module-level containers (`HANDLERS = []`, `COMMANDS = {}`, `TABLE = {"rm": os.remove}`)
    /// with the line of a store of a value forge cannot follow into them, if any.
    containers: HashMap<String, Option<usize>>,
    /// What the stores put in them that forge can follow, as aliases ([`FN`], [`ANY`]).
    refs: Aliases,
    /// `@handle.register` (`functools.singledispatch`): a call of `handle` may run these.
    dispatch: HashMap<&'a str, Vec<u32>>,
    /// `singledispatch` functions with implementations registered where forge does not
    /// follow (inside a function, through an alias, by another module), with the line.
    dispatch_open: HashMap<&'a str, usize>,
    /// Classes of the module something sets attributes on outside their body and module
    /// level (a function, a class decorator of the module), with the line.
    replaced: HashMap<&'a str, usize>,
    /// Methods' names a class's methods bind on the instance (`self.go = self._alt`).
    shadowed: HashMap<&'a str, BTreeSet<&'a str>>,
    /// See [`Module::harmless`].
    harmless: std::collections::HashSet<TextSize>,
    /// Containers a value forge cannot follow may be in (see [`Module::valued`]).
    valued: std::collections::HashSet<String>,
    /// See [`Module::rebound`].
    rebound: BTreeSet<String>,
}

/// Method names that put values into a container: the positional argument that is the value
/// (`None`: every one, a collection of values for `extend`/`update`).
fn store_method(m: &str) -> Option<Option<usize>> {
    match m {
        "append" | "add" | "appendleft" => Some(Some(0)),
        "insert" | "setdefault" => Some(Some(1)),
        "extend" | "extendleft" | "update" | "__setitem__" => Some(None),
        _ => None,
    }
}

/// A value put into a container (or given to a decorator) is one forge follows: plain data, or
/// what refers to functions forge knows (`tainted`, from [`Scope::tainted`]) — not a call's
/// result (`swap(f)`, `_id(f)`: a function forge did not see made).
fn followed_value(e: &Expr, tainted: &[String]) -> bool {
    !matches!(e, Expr::Call(_)) && (!tainted.is_empty() || plain_data(e, 0))
}

/// `e` is data that calls nothing when called out of a container: literals, f-strings,
/// arithmetic on them, containers of them.
fn plain_data(e: &Expr, depth: usize) -> bool {
    if depth > KIND_DEPTH {
        return false;
    }
    let all = |es: &[Expr]| es.iter().all(|x| plain_data(x, depth + 1));
    match e {
        Expr::StringLiteral(_)
        | Expr::BytesLiteral(_)
        | Expr::NumberLiteral(_)
        | Expr::BooleanLiteral(_)
        | Expr::NoneLiteral(_)
        | Expr::EllipsisLiteral(_)
        | Expr::FString(_) => true,
        Expr::BinOp(b) => plain_data(&b.left, depth + 1) && plain_data(&b.right, depth + 1),
        Expr::UnaryOp(u) => plain_data(&u.operand, depth + 1),
        Expr::Tuple(t) => all(&t.elts),
        Expr::List(l) => all(&l.elts),
        Expr::Set(x) => all(&x.elts),
        Expr::Dict(d) => d.items.iter().all(|i| plain_data(&i.value, depth + 1)),
        _ => false,
    }
}

/// A value that is a container a module may fill with functions: a list, dict or set (display,
/// comprehension, or built by the builtin or `collections`).
fn container_value(e: &Expr) -> bool {
    match e {
        Expr::List(_)
        | Expr::Dict(_)
        | Expr::Set(_)
        | Expr::ListComp(_)
        | Expr::DictComp(_)
        | Expr::SetComp(_) => true,
        Expr::Call(c) => {
            let name = match &*c.func {
                Expr::Name(n) => n.id.as_str(),
                Expr::Attribute(a) => a.attr.as_str(),
                _ => return false,
            };
            matches!(
                name,
                "list"
                    | "dict"
                    | "set"
                    | "defaultdict"
                    | "OrderedDict"
                    | "deque"
                    | "ChainMap"
                    | "WeakValueDictionary"
                    | "fromkeys"
            )
        }
        _ => false,
    }
}

/// Which module-level containers hold what may be called, read from every store into them in
/// the whole module (module level and every function and method body): `G.append(f)`,
/// `G[k] = f`, `G.update(...)`, `G += [f]`. A value forge can follow is a function of the
/// module, a function of an import that changes something (`os.remove`, a lambda calling
/// one), or a parameter of a decorator of the module (`def register(f): HANDLERS.append(f)`:
/// every function decorated `@register` and what direct calls give it; of a decorator
/// factory's inner function, every one decorated `@command(...)`) in a module read alone (in a
/// package, its other modules may call the decorator too). Any other value (a local, a call's result, an attribute) is one
/// forge cannot follow: a call of something taken out of that container is then code forge
/// cannot read. Also the functions registered on a `functools.singledispatch` function.
fn filled<'a>(m: &Module<'a>, body: &'a [Stmt], src: &str, own: &str) -> Filled<'a> {
    let mut out = Filled::default();
    // Also a module importing itself (`import notes` in notes.py).
    let dynamic = reaches_own_names(src)
        || (!own.is_empty()
            && m.imports
                .targets()
                .any(|q| q == own || q.starts_with(&format!("{own}."))));
    containers_of(body, m.index, &m.class_by_name, &mut out.containers);
    // A name bound to a value made from a container (`H = G.copy()`, `ALL = BASE | EXTRA`,
    // `G = {"x": H}`): a container holding what forge did not follow item by item.
    let statements = module_statements(body);
    for _ in 0..8 {
        let before = out.containers.len();
        derived_containers(&statements, m.index, &mut out.containers);
        if out.containers.len() == before {
            break;
        }
    }
    let mut v = StoreWalk {
        sc: Scope::new(m),
        out,
        frames: Vec::new(),
        depth: 0,
        cut: false,
        pending: Vec::new(),
        calls: HashMap::new(),
        ok: std::collections::HashSet::new(),
        registered: std::collections::HashSet::new(),
        called: std::collections::HashSet::new(),
        alias_sets: Vec::new(),
        class_aliases: HashMap::new(),
        valued: std::collections::HashSet::new(),
        factory_calls: HashMap::new(),
        loose: std::collections::HashSet::new(),
        used_at_once: std::collections::HashSet::new(),
        kept_results: std::collections::HashSet::new(),
    };
    // Initial values forge does not follow item by item.
    let initially: Vec<String> = v
        .out
        .containers
        .iter()
        .filter(|(_, at)| at.is_some())
        .map(|(g, _)| g.clone())
        .collect();
    v.valued.extend(initially);
    for s in body {
        ruff_python_ast::visitor::Visitor::visit_stmt(&mut v, s);
    }
    let StoreWalk {
        mut sc,
        mut out,
        cut,
        pending,
        calls,
        alias_sets,
        class_aliases,
        ok,
        mut valued,
        factory_calls,
        loose,
        kept_results,
        ..
    } = v;
    out.harmless = ok;
    // `K = C`, then `K.go = _go` in a function: `C` is changed.
    for (name, line) in alias_sets {
        if let Some(&class) = class_aliases.get(name) {
            out.replaced.entry(class).or_insert(line);
        }
    }
    // A parameter of a decorator stored: what the decorator is applied to, and what the
    // decorator is called with directly.
    for (g, outer, inner, param, line) in pending {
        let mut known = true;
        let mut add = |q: String| {
            out.refs.entry(g.clone()).or_default().insert(q);
        };
        for f in &m.funcs {
            for d in f.def.decorator_list.iter() {
                let applied = match (&d.expression, inner) {
                    (Expr::Name(n), false) => n.id.as_str() == outer,
                    (Expr::Call(c), true) => {
                        matches!(&*c.func, Expr::Name(n) if n.id.as_str() == outer)
                    }
                    _ => false,
                };
                if applied {
                    // A method registered is called without its instance: not followed.
                    if f.class.is_some() || !m.by_name.contains_key(f.name.as_str()) {
                        known = false;
                    } else {
                        add(format!("{FN}{}", f.name));
                    }
                }
            }
        }
        // A class decorated with it is kept as itself: what calling it runs is not followed.
        // A decorator itself stored or passed on may be applied anywhere, and so may a factory's
        // result kept (`_cz = command("z")`, then `@_cz`).
        if decorates_a_class(body, 0, outer, inner)
            || loose.contains(outer)
            || (inner && kept_results.contains(outer))
        {
            known = false;
        }
        // `command("z")(f)`: the factory's result given a value directly.
        if inner {
            for args in factory_calls.get(outer).into_iter().flatten() {
                match args.first() {
                    Some(Expr::Name(n)) if m.by_name.contains_key(n.id.as_str()) => {
                        add(format!("{FN}{}", n.id.as_str()));
                    }
                    _ => known = false,
                }
            }
        }
        if !inner {
            for args in calls.get(outer).into_iter().flatten() {
                match args.get(param) {
                    Some(Expr::Name(n)) if m.by_name.contains_key(n.id.as_str()) => {
                        add(format!("{FN}{}", n.id.as_str()));
                    }
                    Some(e) => {
                        let t = sc.tainted(e);
                        if !followed_value(e, &t) {
                            known = false;
                        }
                        for q in t {
                            add(q);
                        }
                    }
                    None => known = false,
                }
            }
        }
        if !known {
            valued.insert(g.clone());
            out.containers.entry(g).or_default().get_or_insert(line);
        }
    }
    // A container also bound to an import (`from mylib import G` after it), or bound together
    // with another name (`G = H = {}`), is filled through that too.
    for (name, v) in out.containers.iter_mut() {
        if m.imports.get(name).is_some() {
            v.get_or_insert(1);
            valued.insert(name.clone());
        } else if m.imports.stars().next().is_some() {
            v.get_or_insert(1);
        }
    }
    // Past the depth read any store may have been missed; in a package, the other modules may
    // fill a module's containers; a module that reaches its own names at run time
    // (`globals()["G"]`, `sys.modules[__name__].G`, `exec`) may fill any.
    if cut || !m.package.modules.is_empty() || dynamic {
        for (g, v) in out.containers.iter_mut() {
            v.get_or_insert(1);
            // Stores forge did not read (cut short, another module's). What `globals()`
            // reaches makes items unfollowed where called, not where the container is named.
            if cut || !m.package.modules.is_empty() {
                valued.insert(g.clone());
            }
        }
        for (&name, &fi) in &m.by_name {
            let dispatcher = m.funcs.get(fi as usize).is_some_and(|f| dispatches(f.def));
            if dispatcher {
                out.dispatch_open.entry(name).or_insert(1);
            }
        }
    }
    // Imported under a module function's name as well.
    for &name in m.by_name.keys() {
        if m.imports.get(name).is_some() || m.global_aliases.contains_key(name) {
            out.rebound.insert(name.to_string());
        }
    }
    out.valued = valued;
    out
}

/// The text may reach the module's own names at run time, where no binding shows:
/// `globals()`, `vars()`, `locals()`, `sys.modules`, `__globals__`, a frame's globals, `exec`,
/// `eval`, an import by a computed name. A text check (comments and strings count too): it
/// only ever makes forge follow less.
fn reaches_own_names(src: &str) -> bool {
    [
        "globals(",
        "vars(",
        "locals(",
        "sys.modules",
        "__globals__",
        "_getframe",
        "currentframe",
        "f_globals",
        "exec(",
        "eval(",
        "__import__",
        "import_module",
    ]
    .iter()
    .any(|t| src.contains(t))
}

/// A decorator (`factory`: a decorator factory, whose inner function takes the function) that
/// calls the function it decorates only with the arguments its wrapper was given (`f(*a,
/// **kw)`), or not at all (it registers or returns it). Anything else it does with it — other
/// arguments, `partial(f, x)`, handing it on — may give it other values.
fn passes_through(d: &StmtFunctionDef, factory: bool) -> bool {
    let decorator = if factory {
        // The inner function taking the decorated one: the first nested def returned.
        let inner = d.body.iter().find_map(|s| match s {
            Stmt::FunctionDef(x) => Some(x),
            _ => None,
        });
        match inner {
            Some(x) => x,
            None => return false,
        }
    } else {
        d
    };
    let Some(param) = param_names(&decorator.parameters).first().copied() else {
        return true;
    };
    let mut walk = Through {
        param,
        ok: true,
        depth: 0,
        allowed: std::collections::HashSet::new(),
    };
    for s in &decorator.body {
        ruff_python_ast::visitor::Visitor::visit_stmt(&mut walk, s);
    }
    walk.ok
}

/// The walk of [`passes_through`].
struct Through<'p> {
    param: &'p str,
    ok: bool,
    depth: usize,
    /// Where the parameter is named harmlessly (called with `*a, **kw`, given to `wraps`,
    /// returned, stored), by offset.
    allowed: std::collections::HashSet<TextSize>,
}

impl<'a> ruff_python_ast::visitor::Visitor<'a> for Through<'_> {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        if self.depth > MAX_DEPTH {
            self.ok = false;
            return;
        }
        self.depth += 1;
        match stmt {
            Stmt::Return(r) => {
                if let Some(Expr::Name(n)) = r.value.as_deref() {
                    self.allowed.insert(n.start());
                }
            }
            Stmt::Assign(a) => {
                if let Expr::Name(n) = &*a.value {
                    if a.targets
                        .iter()
                        .all(|t| matches!(t, Expr::Subscript(_) | Expr::Attribute(_)))
                    {
                        self.allowed.insert(n.start());
                    }
                }
            }
            _ => {}
        }
        ruff_python_ast::visitor::walk_stmt(self, stmt);
        self.depth -= 1;
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        if self.depth > MAX_DEPTH {
            self.ok = false;
            return;
        }
        self.depth += 1;
        if let Expr::Call(c) = expr {
            match &*c.func {
                Expr::Name(n) if n.id.as_str() == self.param => {
                    self.allowed.insert(n.start());
                    let spread = c.arguments.args.iter().all(
                        |a| matches!(a, Expr::Starred(x) if matches!(&*x.value, Expr::Name(_))),
                    ) && c
                        .arguments
                        .keywords
                        .iter()
                        .all(|k| k.arg.is_none() && matches!(&k.value, Expr::Name(_)));
                    if !spread {
                        self.ok = false;
                    }
                }
                f => {
                    let name = match f {
                        Expr::Name(n) => n.id.as_str(),
                        Expr::Attribute(a) => a.attr.as_str(),
                        _ => "",
                    };
                    // `functools.wraps(f)`, `update_wrapper(w, f)`; `HANDLERS.append(f)`.
                    if matches!(name, "wraps" | "update_wrapper") || store_method(name).is_some() {
                        for a in c.arguments.args.iter() {
                            if let Expr::Name(n) = a {
                                self.allowed.insert(n.start());
                            }
                        }
                    }
                }
            }
        }
        // `f.__name__`, `f.__doc__`: read about it, not called.
        if let Expr::Attribute(a) = expr {
            if let Expr::Name(n) = &*a.value {
                if !matches!(a.attr.as_str(), "__call__" | "__get__" | "__func__") {
                    self.allowed.insert(n.start());
                }
            }
        }
        if let Expr::Name(n) = expr {
            if n.id.as_str() == self.param
                && n.ctx == ruff_python_ast::ExprContext::Load
                && !self.allowed.contains(&n.start())
            {
                self.ok = false;
            }
        }
        ruff_python_ast::visitor::walk_expr(self, expr);
        self.depth -= 1;
    }
}

/// `def` is a `functools.singledispatch` function (`@singledispatch`, `@functools.singledispatch`).
fn dispatches(def: &StmtFunctionDef) -> bool {
    def.decorator_list.iter().any(|d| match &d.expression {
        Expr::Name(x) => x.id.as_str() == "singledispatch",
        Expr::Attribute(x) => x.attr.as_str() == "singledispatch",
        _ => false,
    })
}

/// Module-level names bound to a container ([`container_value`]), at the module's top level
/// (and inside its `if`/`try` blocks), with the line of an initial value forge does not follow
/// item by item (a comprehension, `{**G}`, `dict(G)`, a container in it).
fn containers_of(
    body: &[Stmt],
    index: &LineIndex,
    classes: &HashMap<&str, u32>,
    out: &mut HashMap<String, Option<usize>>,
) {
    // An item forge follows: a name or attribute (a function; not a class of the module, which
    // a call would construct), a lambda, plain data.
    let item = |e: &Expr| {
        plain_data(e, 0)
            || matches!(e, Expr::Lambda(_) | Expr::Attribute(_))
            || matches!(e, Expr::Name(n) if !classes.contains_key(n.id.as_str()))
    };
    let followed = |v: &Expr| {
        match v {
            Expr::List(l) => l.elts.iter().all(|e| !e.is_starred_expr() && item(e)),
            Expr::Set(x) => x.elts.iter().all(|e| !e.is_starred_expr() && item(e)),
            Expr::Dict(d) => d.items.iter().all(|i| i.key.is_some() && item(&i.value)),
            // `dict()`, `defaultdict(list)`: empty.
            Expr::Call(c) => {
                let empty = |a: &Expr| matches!(a, Expr::Name(n) if matches!(n.id.as_str(), "list" | "dict" | "set" | "int" | "str"));
                c.arguments.args.iter().all(empty) && c.arguments.keywords.is_empty()
            }
            _ => false,
        }
    };
    for s in module_statements(body) {
        let line = || Some(index.line_index(s.start()).get());
        match s {
            // `G, H = {}, []`: each a container forge does not follow item by item.
            Stmt::Assign(a)
                if a.targets.len() == 1
                    && elts(&a.value).iter().any(container_value)
                    && a.targets.first().is_some_and(|t| !elts(t).is_empty()) =>
            {
                let ts = a.targets.first().map(elts).unwrap_or_default();
                for (t, v) in ts.iter().zip(elts(&a.value)) {
                    if let (Expr::Name(n), true) = (t, container_value(v)) {
                        out.insert(n.id.to_string(), line());
                    }
                }
            }
            Stmt::Assign(a) if container_value(&a.value) => {
                let at = if followed(&a.value) && a.targets.len() == 1 {
                    None
                } else {
                    line()
                };
                for t in &a.targets {
                    if let Expr::Name(n) = t {
                        out.insert(n.id.to_string(), at);
                    }
                }
            }
            Stmt::AnnAssign(a) if a.value.as_deref().is_some_and(container_value) => {
                let at = if a.value.as_deref().is_some_and(followed) {
                    None
                } else {
                    line()
                };
                if let Expr::Name(n) = &*a.target {
                    out.insert(n.id.to_string(), at);
                }
            }
            _ => {}
        }
    }
}

/// Module-level names bound to a value that names a container of `out` (see [`filled`]):
/// containers forge does not follow item by item.
fn derived_containers(
    statements: &[&Stmt],
    index: &LineIndex,
    out: &mut HashMap<String, Option<usize>>,
) {
    let names = |e: &Expr, out: &HashMap<String, Option<usize>>| {
        let mut stack = vec![(e, 0usize)];
        let mut seen = 0usize;
        while let Some((x, d)) = stack.pop() {
            seen += 1;
            if seen > 10_000 || d > MAX_DEPTH {
                return true;
            }
            if let Expr::Name(n) = x {
                if out.contains_key(n.id.as_str()) {
                    return true;
                }
            }
            let mut kids = Vec::new();
            children(x, &mut kids);
            stack.extend(kids.into_iter().map(|k| (k, d + 1)));
        }
        false
    };
    for &s in statements {
        let (targets, value): (Vec<&Expr>, &Expr) = match s {
            Stmt::Assign(a) => (a.targets.iter().collect(), &a.value),
            Stmt::AnnAssign(a) => match a.value.as_deref() {
                Some(v) => (vec![&*a.target], v),
                None => continue,
            },
            _ => continue,
        };
        if !names(value, out) {
            continue;
        }
        let line = index.line_index(s.start()).get();
        for t in targets {
            if let Expr::Name(n) = t {
                out.entry(n.id.to_string()).or_default().get_or_insert(line);
            }
        }
    }
}

/// A class of the module decorated `@outer` (or `@outer(...)` when `inner`).
fn decorates_a_class(body: &[Stmt], depth: usize, outer: &str, inner: bool) -> bool {
    if depth > MAX_DEPTH {
        return true;
    }
    body.iter().any(|s| match s {
        Stmt::ClassDef(c) => {
            c.decorator_list
                .iter()
                .any(|d| match (&d.expression, inner) {
                    (Expr::Name(n), false) => n.id.as_str() == outer,
                    (Expr::Call(x), true) => {
                        matches!(&*x.func, Expr::Name(n) if n.id.as_str() == outer)
                    }
                    _ => false,
                })
                || decorates_a_class(&c.body, depth + 1, outer, inner)
        }
        Stmt::If(x) => {
            decorates_a_class(&x.body, depth + 1, outer, inner)
                || x.elif_else_clauses
                    .iter()
                    .any(|c| decorates_a_class(&c.body, depth + 1, outer, inner))
        }
        Stmt::Try(t) => {
            decorates_a_class(&t.body, depth + 1, outer, inner)
                || decorates_a_class(&t.orelse, depth + 1, outer, inner)
                || decorates_a_class(&t.finalbody, depth + 1, outer, inner)
        }
        _ => false,
    })
}

/// A class or function body [`StoreWalk`] is inside.
enum Frame<'a> {
    Class(&'a str),
    Func(&'a StmtFunctionDef),
}

/// The walk of [`filled`]: every statement and expression of the module, to a bounded depth.
struct StoreWalk<'m, 'a> {
    sc: Scope<'m, 'a>,
    out: Filled<'a>,
    frames: Vec<Frame<'a>>,
    depth: usize,
    cut: bool,
    /// A decorator's parameter stored: the container, the decorator (a module function), whether
    /// the parameter is its inner function's (a decorator factory), the parameter's position,
    /// and the line.
    pending: Vec<(String, &'a str, bool, usize, usize)>,
    /// Direct calls of module functions (`register(f)`), with their positional arguments.
    calls: HashMap<&'a str, Vec<Vec<&'a Expr>>>,
    /// Where a container is named in a way that cannot fill it (read, iterated, stored into
    /// as seen), by the name's offset: named anywhere else (passed on, aliased) it may be
    /// filled with anything.
    ok: std::collections::HashSet<TextSize>,
    /// `handle.register` as a module-level function's decorator (followed), by offset.
    registered: std::collections::HashSet<TextSize>,
    /// Names of module functions where they are called or their `.register` read, by offset.
    called: std::collections::HashSet<TextSize>,
    /// Attributes set in a function on a name that is not a class of the module, with the line.
    alias_sets: Vec<(&'a str, usize)>,
    /// Containers a value forge cannot follow may be in (not only passed on).
    valued: std::collections::HashSet<String>,
    /// Calls of what a module function returns (`command("z")(f)`), with their arguments.
    factory_calls: HashMap<&'a str, Vec<Vec<&'a Expr>>>,
    /// Module functions named other than where called or as a decorator (stored, passed on):
    /// what they are given is not only what forge sees.
    loose: std::collections::HashSet<&'a str>,
    /// Calls that are a decorator or called at once (`@command("z")`, `command("z")(f)`), by
    /// offset; a module function's call elsewhere keeps its result (`kept_results`).
    used_at_once: std::collections::HashSet<TextSize>,
    kept_results: std::collections::HashSet<&'a str>,
    /// Names bound to a class of the module (`K = C`), anywhere.
    class_aliases: HashMap<&'a str, &'a str>,
}

/// The container a function of the module returns an item of (`return G[k]`, `G.get(k)`).
fn returned_item(
    f: &StmtFunctionDef,
    containers: &HashMap<String, Option<usize>>,
) -> Option<String> {
    fn root(e: &Expr, depth: usize) -> Option<&str> {
        if depth > KIND_DEPTH {
            return None;
        }
        let inner = match e {
            Expr::Subscript(x) => &*x.value,
            Expr::Call(c) => match &*c.func {
                Expr::Attribute(a) if matches!(a.attr.as_str(), "get" | "pop" | "setdefault") => {
                    &*a.value
                }
                _ => return None,
            },
            _ => return None,
        };
        match inner {
            Expr::Name(n) => Some(n.id.as_str()),
            other => root(other, depth + 1),
        }
    }
    let mut stack: Vec<&Stmt> = f.body.iter().collect();
    let mut seen = 0usize;
    while let Some(s) = stack.pop() {
        seen += 1;
        if seen > 100_000 {
            return None;
        }
        match s {
            Stmt::Return(r) => {
                if let Some(g) = r.value.as_deref().and_then(|v| root(v, 0)) {
                    if containers.contains_key(g) {
                        return Some(g.to_string());
                    }
                }
            }
            Stmt::If(x) => {
                stack.extend(x.body.iter());
                stack.extend(x.elif_else_clauses.iter().flat_map(|c| c.body.iter()));
            }
            Stmt::Try(t) => {
                stack.extend(t.body.iter());
                stack.extend(t.orelse.iter());
                stack.extend(t.finalbody.iter());
                for h in &t.handlers {
                    let ExceptHandler::ExceptHandler(h) = h;
                    stack.extend(h.body.iter());
                }
            }
            Stmt::With(w) => stack.extend(w.body.iter()),
            Stmt::For(x) => stack.extend(x.body.iter()),
            Stmt::While(x) => stack.extend(x.body.iter()),
            _ => {}
        }
    }
    None
}

impl<'a> StoreWalk<'_, 'a> {
    /// `name` is a module-level container here (no parameter of an enclosing function hides it).
    fn container(&self, name: &str) -> bool {
        self.out.containers.contains_key(name)
            && !self.frames.iter().any(|f| match f {
                Frame::Func(d) => param_names(&d.parameters).contains(&name),
                Frame::Class(_) => false,
            })
    }

    /// `value` is put into the container `g` at `at`.
    fn store(&mut self, g: &str, value: &'a Expr, at: TextSize) {
        let line = self.sc.line(at);
        if let Expr::Name(n) = value {
            let id = n.id.as_str();
            // A parameter of an enclosing function: what it is given.
            for (level, f) in self.frames.iter().enumerate().rev() {
                let Frame::Func(d) = f else { continue };
                let names = param_names(&d.parameters);
                let Some(i) = names.iter().position(|p| *p == id) else {
                    continue;
                };
                // The decorator itself, or a decorator factory's inner function: each a module
                // function (`def register(f)`, `def command(name): def deco(f)`).
                let outer = match (level, self.frames.first()) {
                    (0, _) => Some((d.name.as_str(), false)),
                    (1, Some(Frame::Func(o))) => Some((o.name.as_str(), true)),
                    _ => None,
                };
                // In a package, the package's other modules may call it too.
                match outer {
                    Some((o, inner))
                        if self.sc.m.by_name.contains_key(o)
                            && self.sc.m.package.modules.is_empty() =>
                    {
                        self.pending.push((g.to_string(), o, inner, i, line));
                    }
                    _ => self.unknown(g, line),
                }
                return;
            }
            if self.sc.m.by_name.contains_key(id) {
                self.out
                    .refs
                    .entry(g.to_string())
                    .or_default()
                    .insert(format!("{FN}{id}"));
                return;
            }
            if let Some(qs) = self.sc.m.global_aliases.get(id) {
                let qs = qs.clone();
                self.out.refs.entry(g.to_string()).or_default().extend(qs);
                return;
            }
        }
        let tainted = self.sc.tainted(value);
        if !followed_value(value, &tainted) {
            self.unknown(g, line);
        }
        if !tainted.is_empty() {
            self.out
                .refs
                .entry(g.to_string())
                .or_default()
                .extend(tainted);
        }
    }

    /// Each value of a collection put into `g` (`extend([f, h])`, `update({"rm": f})`).
    fn store_all(&mut self, g: &str, values: &'a Expr, at: TextSize) {
        match values {
            Expr::List(l) => l.elts.iter().for_each(|v| self.store(g, v, at)),
            Expr::Tuple(t) => t.elts.iter().for_each(|v| self.store(g, v, at)),
            Expr::Set(x) => x.elts.iter().for_each(|v| self.store(g, v, at)),
            Expr::Dict(d) => d.items.iter().for_each(|i| self.store(g, &i.value, at)),
            other => self.store(g, other, at),
        }
    }

    /// `obj.attr = …` inside a function: on a class of the module, what its methods are may
    /// change (`C.go = _go`); on a method's own instance, the method of that name is hidden
    /// (`self.go = self._alt`).
    fn set_attribute(&mut self, x: &'a ruff_python_ast::ExprAttribute, value: &Expr, at: TextSize) {
        let Expr::Name(n) = &*x.value else { return };
        let Some(Frame::Func(f)) = self.frames.last() else {
            return;
        };
        let id = n.id.as_str();
        // On another name (an alias of a class, `K = C`): decided once the aliases are known.
        if !self.sc.m.class_by_name.contains_key(id)
            && !plain_data(value, 0)
            && !param_names(&f.parameters).contains(&id)
        {
            let line = self.sc.line(at);
            self.alias_sets.push((id, line));
        }
        if let Some((&class, &ci)) = self.sc.m.class_by_name.get_key_value(id) {
            // What may then run instead of a method: a method's (or a special method's) name
            // rebound, or code of the module set under any name.
            let attr = x.attr.as_str();
            let method = special(attr) || self.sc.method_of(ci, attr).is_some();
            let code = self.module_code(value, None);
            if !param_names(&f.parameters).contains(&id)
                && (method || code)
                && !plain_data(value, 0)
            {
                let line = self.sc.line(at);
                self.out.replaced.entry(class).or_insert(line);
                return;
            }
        }
        let n_frames = self.frames.len();
        if let (Some(Frame::Class(class)), Some(first)) = (
            n_frames.checked_sub(2).and_then(|i| self.frames.get(i)),
            param_names(&f.parameters).first(),
        ) {
            // Code of the module put there: a function of it, a lambda, a method of the
            // instance, a partial (another object's method is as unknown as the object).
            // Also anything that names the instance or a function of the module
            // (`getattr(self, "_alt")`, `self._alt if fast else self.go`).
            let code = self.module_code(value, Some(first)) || self.names_code(value, first);
            if *first == id && code {
                self.out
                    .shadowed
                    .entry(class)
                    .or_default()
                    .insert(x.attr.as_str());
            }
        }
    }

    /// `value` is code of the module set as an attribute: a function of it, a lambda, a
    /// `partial`, or a method of the instance `own` (`self._alt`).
    fn module_code(&self, value: &Expr, own: Option<&str>) -> bool {
        match value {
            Expr::Name(v) => self.sc.m.by_name.contains_key(v.id.as_str()),
            Expr::Lambda(_) => true,
            Expr::Attribute(v) => {
                matches!((&*v.value, own), (Expr::Name(o), Some(own)) if o.id.as_str() == own)
            }
            Expr::Call(c) => {
                matches!(&*c.func, Expr::Name(f) if f.id.as_str() == "partial")
                    || matches!(&*c.func, Expr::Attribute(f) if f.attr.as_str() == "partial")
            }
            _ => false,
        }
    }

    /// `value` names `own` (the instance) or a function of the module anywhere in it.
    fn names_code(&self, value: &Expr, own: &str) -> bool {
        let mut stack = vec![(value, 0usize)];
        while let Some((x, d)) = stack.pop() {
            if d > MAX_DEPTH {
                return true;
            }
            if let Expr::Name(n) = x {
                let id = n.id.as_str();
                if id == own || self.sc.m.by_name.contains_key(id) {
                    return true;
                }
            }
            let mut kids = Vec::new();
            children(x, &mut kids);
            stack.extend(kids.into_iter().map(|k| (k, d + 1)));
        }
        false
    }

    /// The module-level container `e` is an item of (`G[k]`, `G.get(k)`, `G.setdefault(k, [])`).
    fn rooted_in(&self, e: &Expr) -> Option<String> {
        let mut cur = e;
        for _ in 0..KIND_DEPTH {
            cur = match cur {
                Expr::Subscript(x) => &x.value,
                Expr::Attribute(a) => &a.value,
                Expr::Call(c) => &c.func,
                Expr::Name(n) => {
                    let id = n.id.as_str();
                    return self.container(id).then(|| id.to_string());
                }
                _ => return None,
            };
        }
        None
    }

    /// `e`, if it names a container, does so where nothing can fill it.
    fn harmless(&mut self, e: &Expr) {
        if let Expr::Name(n) = e {
            self.ok.insert(n.start());
        }
    }

    /// A value forge cannot follow may be in `g`.
    fn unknown(&mut self, g: &str, line: usize) {
        self.valued.insert(g.to_string());
        self.open(g, line);
    }

    /// `g` may be filled where forge does not see (named where it is passed on).
    fn open(&mut self, g: &str, line: usize) {
        self.out
            .containers
            .entry(g.to_string())
            .or_default()
            .get_or_insert(line);
    }
}

impl<'a> ruff_python_ast::visitor::Visitor<'a> for StoreWalk<'_, 'a> {
    fn visit_comprehension(&mut self, c: &'a Comprehension) {
        self.harmless(&c.iter);
        ruff_python_ast::visitor::walk_comprehension(self, c);
    }

    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        if self.depth > MAX_DEPTH {
            self.cut = true;
            return;
        }
        self.depth += 1;
        match stmt {
            Stmt::FunctionDef(f) => {
                // `@handle.register` / `@handle.register(int)`: singledispatch.
                for d in f.decorator_list.iter() {
                    let on = match &d.expression {
                        Expr::Call(c) => &*c.func,
                        e => e,
                    };
                    if let Expr::Attribute(a) = on {
                        if let (Expr::Name(n), "register", true) =
                            (&*a.value, a.attr.as_str(), self.frames.is_empty())
                        {
                            if let Some((&name, _)) = self.sc.m.by_name.get_key_value(n.id.as_str())
                            {
                                if let Some(i) =
                                    self.sc.m.funcs.iter().position(|x| std::ptr::eq(x.def, f))
                                {
                                    self.out.dispatch.entry(name).or_default().push(idx(i));
                                    self.registered.insert(a.start());
                                }
                            }
                        }
                    }
                }
                for d in f.decorator_list.iter() {
                    match &d.expression {
                        Expr::Name(n) => {
                            self.called.insert(n.start());
                        }
                        Expr::Call(c) => {
                            self.used_at_once.insert(c.start());
                        }
                        _ => {}
                    }
                }
                self.frames.push(Frame::Func(f));
                ruff_python_ast::visitor::walk_stmt(self, stmt);
                self.frames.pop();
            }
            Stmt::ClassDef(c) => {
                // A decorator of the module (or one it makes) may set anything on the class.
                for d in c.decorator_list.iter() {
                    let on = match &d.expression {
                        Expr::Call(x) => &*x.func,
                        e => e,
                    };
                    if matches!(on, Expr::Name(n) if self.sc.m.by_name.contains_key(n.id.as_str()))
                    {
                        let line = self.sc.line(d.start());
                        self.out.replaced.entry(c.name.as_str()).or_insert(line);
                    }
                }
                for d in c.decorator_list.iter() {
                    match &d.expression {
                        Expr::Name(n) => {
                            self.called.insert(n.start());
                        }
                        Expr::Call(x) => {
                            self.used_at_once.insert(x.start());
                        }
                        _ => {}
                    }
                }
                self.frames.push(Frame::Class(c.name.as_str()));
                ruff_python_ast::visitor::walk_stmt(self, stmt);
                self.frames.pop();
            }
            Stmt::Assign(a) => {
                for t in &a.targets {
                    // `COMMANDS["z"], X = _evil, 1`: each item stored with its value.
                    if let Expr::Tuple(_) | Expr::List(_) = t {
                        for (e, v) in unpacked(t, &a.value) {
                            // Nested (`(X, (G["z"], Y)) = …`, `*G[k]`): not paired.
                            if !matches!(e, Expr::Subscript(_)) {
                                let mut inner = vec![e];
                                while let Some(x) = inner.pop() {
                                    match x {
                                        Expr::Tuple(_) | Expr::List(_) => inner.extend(elts(x)),
                                        Expr::Starred(s) => inner.push(&s.value),
                                        Expr::Subscript(sub) => {
                                            if let Some(g) = self.rooted_in(&sub.value) {
                                                let line = self.sc.line(stmt.start());
                                                self.unknown(&g, line);
                                            }
                                        }
                                        _ => {}
                                    }
                                }
                                continue;
                            }
                            let Expr::Subscript(x) = e else { continue };
                            let Some(g) = self.rooted_in(&x.value) else {
                                continue;
                            };
                            match (v, &*x.value) {
                                (Some(v), Expr::Name(_)) => self.store(&g, v, stmt.start()),
                                _ => {
                                    let line = self.sc.line(stmt.start());
                                    self.unknown(&g, line);
                                }
                            }
                        }
                    }
                    if let Expr::Subscript(x) = t {
                        if let Expr::Name(n) = &*x.value {
                            if self.container(n.id.as_str()) {
                                self.store(n.id.as_str(), &a.value, stmt.start());
                            }
                        } else if let Some(g) = self.rooted_in(&x.value) {
                            // `G["a"][k] = f`, `G.setdefault(k, {})[n] = f`: into an item.
                            let line = self.sc.line(stmt.start());
                            self.unknown(&g, line);
                        }
                    }
                    if let Expr::Attribute(x) = t {
                        self.set_attribute(x, &a.value, stmt.start());
                    }
                    if let (Expr::Name(alias), Expr::Name(v)) = (t, &*a.value) {
                        if let Some((&class, _)) =
                            self.sc.m.class_by_name.get_key_value(v.id.as_str())
                        {
                            self.class_aliases.insert(alias.id.as_str(), class);
                        }
                    }
                }
                ruff_python_ast::visitor::walk_stmt(self, stmt);
            }
            Stmt::AugAssign(a) => {
                if let Expr::Name(n) = &*a.target {
                    if self.container(n.id.as_str()) {
                        self.store_all(n.id.as_str(), &a.value, stmt.start());
                    }
                }
                ruff_python_ast::visitor::walk_stmt(self, stmt);
            }
            // `COMMANDS["z"]: object = _evil`.
            Stmt::AnnAssign(a) => {
                if let (Expr::Subscript(x), Some(v)) = (&*a.target, a.value.as_deref()) {
                    if let Some(g) = self.rooted_in(&x.value) {
                        if matches!(&*x.value, Expr::Name(_)) {
                            self.store(&g, v, stmt.start());
                        } else {
                            let line = self.sc.line(stmt.start());
                            self.unknown(&g, line);
                        }
                    }
                }
                ruff_python_ast::visitor::walk_stmt(self, stmt);
            }
            // `global G` in a function: it may bind another container to the name.
            Stmt::Global(g) => {
                let line = self.sc.line(stmt.start());
                // One bound to `None` at module level and to a dict here is a container too.
                let binds = |name: &str| {
                    let Some(Frame::Func(f)) = self.frames.last() else {
                        return false;
                    };
                    f.body.iter().any(|s| match s {
                        Stmt::Assign(a) => {
                            container_value(&a.value)
                                && a.targets
                                    .iter()
                                    .any(|t| matches!(t, Expr::Name(n) if n.id.as_str() == name))
                        }
                        _ => false,
                    })
                };
                for n in &g.names {
                    if self.sc.m.by_name.contains_key(n.as_str()) {
                        self.out.rebound.insert(n.to_string());
                    }
                }
                let bound: Vec<&str> = g
                    .names
                    .iter()
                    .map(|n| n.as_str())
                    .filter(|n| self.out.containers.contains_key(*n) || binds(n))
                    .collect();
                for n in bound {
                    self.unknown(n, line);
                }
            }
            Stmt::For(f) => {
                self.harmless(&f.iter);
                ruff_python_ast::visitor::walk_stmt(self, stmt);
            }
            // `if G:`, `while G:`: tested for being empty.
            Stmt::If(x) => {
                self.harmless(&x.test);
                for c in &x.elif_else_clauses {
                    if let Some(t) = &c.test {
                        self.harmless(t);
                    }
                }
                ruff_python_ast::visitor::walk_stmt(self, stmt);
            }
            Stmt::While(x) => {
                self.harmless(&x.test);
                ruff_python_ast::visitor::walk_stmt(self, stmt);
            }
            _ => ruff_python_ast::visitor::walk_stmt(self, stmt),
        }
        self.depth -= 1;
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        if self.depth > MAX_DEPTH {
            self.cut = true;
            return;
        }
        self.depth += 1;
        match expr {
            Expr::Subscript(x) => self.harmless(&x.value),
            Expr::UnaryOp(u) if u.op == ruff_python_ast::UnaryOp::Not => self.harmless(&u.operand),
            Expr::Compare(x) => {
                self.harmless(&x.left);
                x.comparators.iter().for_each(|e| self.harmless(e));
            }
            Expr::Call(c) => match &*c.func {
                Expr::Attribute(a)
                    if store_method(a.attr.as_str()).is_some()
                        || matches!(
                            a.attr.as_str(),
                            "get"
                                | "pop"
                                | "popitem"
                                | "popleft"
                                | "items"
                                | "values"
                                | "keys"
                                | "copy"
                                | "count"
                                | "index"
                                | "__getitem__"
                                | "__contains__"
                        ) =>
                {
                    self.harmless(&a.value);
                }
                Expr::Name(f)
                    if matches!(
                        f.id.as_str(),
                        "len"
                            | "sorted"
                            | "list"
                            | "tuple"
                            | "set"
                            | "frozenset"
                            | "dict"
                            | "iter"
                            | "next"
                            | "enumerate"
                            | "reversed"
                            | "bool"
                            | "any"
                            | "all"
                            | "print"
                            | "repr"
                            | "str"
                            | "isinstance"
                            | "id"
                    ) =>
                {
                    c.arguments.args.iter().for_each(|e| self.harmless(e));
                }
                _ => {}
            },
            Expr::Name(n) if n.ctx == ruff_python_ast::ExprContext::Load => {
                let id = n.id.as_str();
                if self.container(id) && !self.ok.contains(&n.start()) {
                    let line = self.sc.line(n.start());
                    self.open(id, line);
                }
            }
            // A module function's name bound other than by `def` at module level (`_ra = _rb`,
            // `for _ra in …`, `del _ra`).
            Expr::Name(n)
                if self.frames.is_empty() && self.sc.m.by_name.contains_key(n.id.as_str()) =>
            {
                self.out.rebound.insert(n.id.to_string());
            }
            // `handle.register` anywhere but as a module-level function's decorator: an
            // implementation forge does not follow.
            Expr::Attribute(a) if a.attr.as_str() == "register" => {
                if let Expr::Name(n) = &*a.value {
                    if let Some((&name, _)) = self.sc.m.by_name.get_key_value(n.id.as_str()) {
                        if !self.registered.contains(&a.start()) {
                            let line = self.sc.line(a.start());
                            self.out.dispatch_open.entry(name).or_insert(line);
                        }
                    }
                }
            }
            _ => {}
        }
        // A singledispatch function named other than called (`h = handle`, passed on): its
        // registrations may be made through that name.
        if let Expr::Name(n) = expr {
            if let Some((&name, &fi)) = self.sc.m.by_name.get_key_value(n.id.as_str()) {
                let dispatcher = self
                    .sc
                    .m
                    .funcs
                    .get(fi as usize)
                    .is_some_and(|f| dispatches(f.def));
                if dispatcher && !self.called.contains(&n.start()) {
                    let line = self.sc.line(n.start());
                    self.out.dispatch_open.entry(name).or_insert(line);
                }
            }
        }
        // `handle.register(int, _impl)` at module level: followed as the decorator is.
        if let (Expr::Call(c), true) = (expr, self.frames.is_empty()) {
            if let (Expr::Attribute(a), Some(Expr::Name(imp))) = (&*c.func, c.arguments.args.last())
            {
                if let (Expr::Name(n), "register") = (&*a.value, a.attr.as_str()) {
                    let m = self.sc.m;
                    if let (Some((&name, _)), Some(&fi)) = (
                        m.by_name.get_key_value(n.id.as_str()),
                        m.by_name.get(imp.id.as_str()),
                    ) {
                        self.out.dispatch.entry(name).or_default().push(fi);
                        self.registered.insert(a.start());
                    }
                }
            }
        }
        // Where a name is called, or `handle.register` read: not passed on.
        if let Expr::Call(c) = expr {
            if let Expr::Name(f) = &*c.func {
                self.called.insert(f.start());
            }
            if let Expr::Call(inner) = &*c.func {
                self.used_at_once.insert(inner.start());
                if let Expr::Name(f) = &*inner.func {
                    if let Some((&name, _)) = self.sc.m.by_name.get_key_value(f.id.as_str()) {
                        self.factory_calls
                            .entry(name)
                            .or_default()
                            .push(c.arguments.args.iter().collect());
                    }
                }
            }
        }
        // A module function's result kept rather than used at once.
        if let Expr::Call(c) = expr {
            if let Expr::Name(f) = &*c.func {
                if !self.used_at_once.contains(&c.start()) {
                    if let Some((&name, _)) = self.sc.m.by_name.get_key_value(f.id.as_str()) {
                        self.kept_results.insert(name);
                    }
                }
            }
        }
        // A module function named as a value (stored, passed on, aliased).
        if let Expr::Name(n) = expr {
            if n.ctx == ruff_python_ast::ExprContext::Load && !self.called.contains(&n.start()) {
                if let Some((&name, _)) = self.sc.m.by_name.get_key_value(n.id.as_str()) {
                    self.loose.insert(name);
                }
            }
        }
        if let Expr::Attribute(a) = expr {
            if a.attr.as_str() == "register" {
                if let Expr::Name(v) = &*a.value {
                    self.called.insert(v.start());
                }
            }
        }
        if let Expr::Call(c) = expr {
            match &*c.func {
                Expr::Attribute(a) => {
                    // `G[k].append(f)`: into an item of a container.
                    if store_method(a.attr.as_str()).is_some()
                        && !matches!(&*a.value, Expr::Name(_))
                    {
                        if let Some(g) = self.rooted_in(&a.value) {
                            let line = self.sc.line(expr.start());
                            self.unknown(&g, line);
                        }
                    }
                    if let (Expr::Name(n), Some(which)) = (&*a.value, store_method(a.attr.as_str()))
                    {
                        let g = n.id.as_str();
                        if self.container(g) {
                            match which {
                                Some(i) => {
                                    if let Some(v) = c.arguments.args.get(i) {
                                        self.store(g, v, expr.start());
                                    }
                                }
                                None => {
                                    for v in c.arguments.args.iter() {
                                        self.store_all(g, v, expr.start());
                                    }
                                }
                            }
                            for k in c.arguments.keywords.iter() {
                                self.store(g, &k.value, expr.start());
                            }
                        }
                    }
                }
                Expr::Name(n) => {
                    if let Some((&name, _)) = self.sc.m.by_name.get_key_value(n.id.as_str()) {
                        self.calls
                            .entry(name)
                            .or_default()
                            .push(c.arguments.args.iter().collect());
                    }
                }
                _ => {}
            }
        }
        ruff_python_ast::visitor::walk_expr(self, expr);
        self.depth -= 1;
    }
}

// ---------------------------------------------------------------------------------------------
// Facts and call sites
// ---------------------------------------------------------------------------------------------

/// A fact while analysing: params are indices into the function's parameters, `via` a function
/// index. Ordered by line, then effect.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Fact {
    line: usize,
    effect: PyEffect,
    call: String,
    params: Vec<u32>,
    /// Sorted; empty unless `effect` is a path effect.
    escapes: Vec<u32>,
    /// Sorted: parameters joined as segments under another's path (see `Flow::segs`).
    segs: Vec<u32>,
    via: Option<u32>,
}

/// A call of another module function: where the caller's parameters go.
struct CallSite {
    callee: u32,
    line: usize,
    /// Callee parameter → how the caller's parameters flow into it, for the arguments bound
    /// explicitly; sorted.
    bound: Vec<(u32, Flow)>,
    /// `*xs` at this positional index: later positional parameters get `star`.
    star_from: Option<usize>,
    star: Flow,
    /// `**kw` (or an indirect reference): every parameter not bound explicitly gets `rest`.
    rest: Flow,
}

/// A callee fact's parameters and escapes as the caller's (both sorted): whatever is bound to
/// an escaping callee parameter escapes; otherwise an argument's own escapes carry over, and all
/// of its parameters when no parameter's path contains it (a bare name, a flag).
fn map_params(site: &CallSite, callee: &Func<'_>, fact: &Fact) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    let mut out = Mapped::default();
    for &k in &fact.params {
        let escaped = fact.escapes.binary_search(&k).is_ok();
        let seg = fact.segs.binary_search(&k).is_ok();
        match site.bound.binary_search_by_key(&k, |(p, _)| *p) {
            Ok(i) => {
                if let Some((_, fl)) = site.bound.get(i) {
                    out.take(fl, escaped, seg);
                }
            }
            Err(_) => {
                let ku = k as usize;
                if let Some(from) = site.star_from {
                    if (ku < callee.n_positional && ku >= from) || Some(k) == callee.vararg {
                        out.take(&site.star, escaped, seg);
                    }
                }
                out.take(&site.rest, escaped, seg);
            }
        }
        if out.params.len() >= MAX_FLOW {
            break;
        }
    }
    let segs = out.segs.difference(&out.escapes).copied().collect();
    (
        out.params.into_iter().collect(),
        out.escapes.into_iter().collect(),
        segs,
    )
}

/// A callee fact's parameters as the caller's (see `map_params`).
#[derive(Default)]
struct Mapped {
    params: Params,
    escapes: Params,
    segs: Params,
}

impl Mapped {
    /// The caller's side of one callee parameter: `escaped`, the callee's path escapes it;
    /// `seg`, the callee joins it as a segment, so what the caller's parameters put in it must
    /// be relative too.
    fn take(&mut self, fl: &Flow, escaped: bool, seg: bool) {
        self.params.extend(fl.all.iter().copied());
        if escaped || fl.inside.is_empty() {
            self.escapes.extend(fl.all.iter().copied());
        } else {
            self.escapes.extend(fl.esc.iter().copied());
            self.escapes.extend(fl.bare.iter().copied());
            self.segs.extend(fl.segs.iter().copied());
            if seg {
                self.segs.extend(fl.inside.iter().copied());
                self.segs.extend(fl.suffixed.iter().copied());
            } else {
                // A parameter with text added (`b + ".bak"`) beside one inside: its sibling.
                self.escapes.extend(fl.suffixed.iter().copied());
            }
        }
    }
}

/// Copies callee facts to callers until nothing changes (at most one round per function, or
/// `MAX_ROUNDS`), only re-propagating what the previous round added.
fn propagate(m: &Module<'_>, facts: &mut [BTreeSet<Fact>], sites: &[Vec<CallSite>]) {
    let n = facts.len();
    let mut delta: Vec<Vec<Fact>> = facts.iter().map(|s| s.iter().cloned().collect()).collect();
    let mut budget = PROPAGATION_BUDGET;
    // A round carries facts one call further up: a chain of helpers as long as the module has
    // functions needs that many (with a fixed 50, a delete 60 calls down came out read-only).
    // Only what the last round added is carried, and the budget bounds the work.
    for _ in 0..MAX_ROUNDS.max(n + 1) {
        let mut next: Vec<Vec<Fact>> = vec![Vec::new(); n];
        let mut changed = false;
        for (caller, caller_sites) in sites.iter().enumerate() {
            for site in caller_sites {
                let Some(new) = delta.get(site.callee as usize) else {
                    continue;
                };
                if new.is_empty() {
                    continue;
                }
                let Some(callee) = m.funcs.get(site.callee as usize) else {
                    continue;
                };
                let Some(set) = facts.get_mut(caller) else {
                    continue;
                };
                for fact in new {
                    if budget == 0 {
                        // What was not carried up may be what matters: every function that
                        // calls another of the module fails closed.
                        for (f, s) in sites.iter().enumerate() {
                            if let (Some(first), Some(set)) = (s.first(), facts.get_mut(f)) {
                                set.insert(Fact {
                                    line: first.line,
                                    effect: E::Unseen,
                                    call: "calls too many for forge to follow (it stopped)"
                                        .to_string(),
                                    params: Vec::new(),
                                    escapes: Vec::new(),
                                    segs: Vec::new(),
                                    via: None,
                                });
                            }
                        }
                        return;
                    }
                    budget -= 1;
                    if set.len() >= MAX_FACTS {
                        if !set.iter().any(|f| f.effect == E::Unseen) {
                            set.insert(overflow_fact(site.line));
                        }
                        break;
                    }
                    let (params, mut escapes, mut segs) = map_params(site, callee, fact);
                    if !fact.effect.on_path() {
                        escapes.clear();
                        segs.clear();
                    }
                    let mapped = Fact {
                        line: site.line,
                        effect: fact.effect,
                        call: fact.call.clone(),
                        params,
                        escapes,
                        segs,
                        via: fact.via.or(Some(site.callee)),
                    };
                    if set.insert(mapped.clone()) {
                        if let Some(list) = next.get_mut(caller) {
                            list.push(mapped);
                            changed = true;
                        }
                    }
                }
            }
        }
        if !changed {
            break;
        }
        delta = next;
    }
}

fn analyse_function(m: &Module<'_>, f: &Func<'_>) -> (BTreeSet<Fact>, Vec<CallSite>) {
    let mut sc = Scope::new(m);
    sc.import_time = f.name == AT_IMPORT;
    for (i, name) in f.params.iter().enumerate() {
        union(
            sc.flow.entry((*name).to_string()).or_default(),
            &Flow::param(idx(i)),
        );
    }
    // A method's `self` (or `cls`) is an instance of its class: `self.helper(p)` is followed.
    if let (Some((ci, true)), Some(first)) = (f.class, f.params.first()) {
        sc.kinds.insert((*first).to_string(), Kind::Object(ci));
        // `cls(…)` in a class method (`__new__`, `__init_subclass__` and `__class_getitem__`
        // are ones implicitly) makes an instance.
        let method = f.def.name.as_str();
        let classmethod = decorated_by(f.def, "classmethod")
            || matches!(
                method,
                "__new__" | "__init_subclass__" | "__class_getitem__"
            );
        if classmethod {
            sc.cls_param = Some((*first).to_string());
        }
    }
    sc.class = f.class.map(|(ci, _)| ci);
    // `def clean(p, rm=os.remove)`: unless a caller passes another, `rm` is `os.remove`.
    for pw in f.def.parameters.iter_non_variadic_params() {
        if let Some(v) = pw.default() {
            let mut bound = if aliasable(v) {
                sc.refs_of(v)
            } else {
                Vec::new()
            };
            if let Expr::Name(n) = v {
                if m.by_name.contains_key(n.id.as_str()) {
                    bound.push(format!("{FN}{}", n.id.as_str()));
                }
            }
            for q in bound {
                sc.aliases
                    .entry(pw.parameter.name.to_string())
                    .or_default()
                    .insert(q);
            }
        }
    }
    // The first walk only learns flows, kinds and flags; the second records.
    sc.stmts(&f.def.body, 0);
    sc.record = true;
    sc.stmts(&f.def.body, 0);
    // A `singledispatchmethod` whose implementations may be registered where forge does not
    // follow: by another module of the package, or through a name (`reg = C.m.register`).
    let sdm = f.def.decorator_list.iter().any(|d| match &d.expression {
        Expr::Name(n) => n.id.as_str() == "singledispatchmethod",
        Expr::Attribute(a) => a.attr.as_str() == "singledispatchmethod",
        _ => false,
    });
    if sdm && (!m.package.modules.is_empty() || m.register_aliased) {
        let line = m.index.line_index(f.def.start()).get();
        sc.fact(
            E::Unseen,
            format!(
                "`{}`, a singledispatchmethod whose implementations may be registered where forge does not follow",
                f.def.name.as_str()
            ),
            line,
            Flow::new(),
        );
    }
    // A decorator of the module that calls the function with other arguments than its own
    // (`f(os.path.join(TMP, name))`, `f(b, a)`): what the function does to its parameters is
    // not what it does to the caller's, so its paths escape.
    let rewritten = f.def.decorator_list.iter().any(|dec| {
        let (e, factory) = match &dec.expression {
            Expr::Call(c) => (&*c.func, true),
            other => (other, false),
        };
        let Expr::Name(n) = e else { return false };
        let Some(d) = m
            .by_name
            .get(n.id.as_str())
            .and_then(|&i| m.funcs.get(i as usize))
        else {
            return false;
        };
        !passes_through(d.def, factory)
    });
    if rewritten {
        let facts = std::mem::take(&mut sc.facts);
        sc.facts = facts
            .into_iter()
            .map(|mut x| {
                if x.effect.on_path() {
                    x.escapes = x.params.clone();
                }
                x
            })
            .collect();
    }
    // A decorator of the module (`@_audit`, `@_retry(3)`) runs around the function: what it
    // does (or its wrapper does) happens when the function is called.
    for dec in f.def.decorator_list.iter() {
        let e = match &dec.expression {
            Expr::Call(c) => &*c.func,
            other => other,
        };
        let mut callees: Vec<u32> = Vec::new();
        if let Expr::Name(n) = e {
            callees.extend(m.by_name.get(n.id.as_str()).copied());
        }
        // A class as a decorator (`@Wrap`): it is constructed with the function, and its
        // instance is what runs when the function is called (`__call__`).
        if let Some(ci) = sc.module_class(e) {
            for name in ["__new__", "__init__", "__call__"] {
                callees.extend(sc.method_of(ci, name));
            }
        }
        if !m.package.modules.is_empty() {
            for q in sc.refs_of(e) {
                let Some(abs) = Package::absolute(&m.here, &q) else {
                    continue;
                };
                if m.package.classes.contains(&abs) {
                    for c in m.package.lineage(&abs) {
                        for name in ["__new__", "__init__", "__call__"] {
                            let key = format!("{c}.{name}");
                            callees.extend(m.external.get(&key).into_iter().flatten().copied());
                        }
                    }
                }
            }
        }
        // A decorator of another module of the package (`@deco.logged`, `from .deco import
        // logged`).
        if callees.is_empty() && !m.package.modules.is_empty() {
            for q in sc.refs_of(e) {
                if let Some(abs) = Package::absolute(&m.here, &q) {
                    callees.extend(m.external.get(&abs).into_iter().flatten().copied());
                }
            }
        }
        for callee in callees {
            sc.sites.push(CallSite {
                callee,
                line: sc.line(dec.start()),
                bound: Vec::new(),
                star_from: None,
                star: Flow::new(),
                rest: Flow::new(),
            });
        }
    }
    // A `functools.singledispatch` function runs the one registered for its first argument's
    // type (`@handle.register`), given the same arguments.
    if let (None, Some(at)) = (f.class, m.dispatch_open.get(f.def.name.as_str())) {
        let call = format!(
            "`{}`, a singledispatch function with implementations registered where forge does not follow (line {at})",
            f.def.name.as_str()
        );
        let line = sc.line(f.def.start());
        sc.fact(E::Unseen, call, line, Flow::new());
    }
    if f.class.is_none() {
        for &callee in m.dispatch.get(f.def.name.as_str()).into_iter().flatten() {
            let n = m.funcs.get(callee as usize).map_or(0, |c| c.n_positional);
            let bound = (0..f.n_positional.min(n))
                .map(|i| (idx(i), Flow::param(idx(i))))
                .collect();
            sc.sites.push(CallSite {
                callee,
                line: sc.line(f.def.start()),
                bound,
                star_from: None,
                star: Flow::new(),
                rest: Flow::new(),
            });
        }
    }
    (sc.facts, sc.sites)
}

// ---------------------------------------------------------------------------------------------
// Objects, arguments
// ---------------------------------------------------------------------------------------------

/// What a local (or an expression) is known to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Path,
    /// An HTTP client object; the prefix of its calls (`httpx.Client`).
    Http(&'static str),
    Socket,
    HttpConn,
    Ftp,
    Telnet,
    Smtp,
    DbConn(&'static str),
    DbCursor(&'static str),
    /// `urllib.request.Request(..., data=...)` or with a writing method.
    RequestWrite,
    /// `os.environ`.
    Environ,
    /// An entry `os.scandir` yields (`entry.path` lies inside what was scanned).
    DirEntry,
    /// An instance of a class of the module (`Store()`), or the class itself.
    Object(u32),
    /// A tar or zip archive (`tarfile.open(p)`, `zipfile.ZipFile(p)`).
    Archive,
}

enum Resolved {
    /// A dotted name through the imports (names not imported stay as written).
    Qualified(String),
    /// Rooted in a local variable.
    Local,
    /// Not a name or attribute chain.
    Unknown,
}

#[derive(Clone, Copy)]
struct Args<'e> {
    pos: &'e [Expr],
    kw: &'e [Keyword],
}

impl<'e> Args<'e> {
    fn of(a: &'e Arguments) -> Self {
        Args {
            pos: &a.args,
            kw: &a.keywords,
        }
    }

    /// The argument at position `i` (when no `*xs` comes before it) or the first keyword named
    /// in `names`.
    fn get(self, i: usize, names: &[&str]) -> Option<&'e Expr> {
        for (j, a) in self.pos.iter().enumerate() {
            if a.is_starred_expr() {
                break;
            }
            if j == i {
                return Some(a);
            }
        }
        self.keyword(names)
    }

    fn keyword(self, names: &[&str]) -> Option<&'e Expr> {
        self.kw
            .iter()
            .find(|k| k.arg.as_ref().is_some_and(|a| names.contains(&a.as_str())))
            .map(|k| &k.value)
    }

    fn has_dynamic(self) -> bool {
        self.pos.iter().any(Expr::is_starred_expr) || self.kw.iter().any(|k| k.arg.is_none())
    }
}

fn add(into: &mut Params, from: &Params) {
    for &p in from {
        if into.len() >= MAX_FLOW {
            break;
        }
        into.insert(p);
    }
}

fn union(into: &mut Flow, from: &Flow) {
    into.union(from);
}

/// Whether a literal joined under a path leads out of it: `..` anywhere, or, at its start, an
/// absolute path (`/x`, `\x`, `C:`), which discards what it is joined under.
fn leaves(text: &str, at_start: bool) -> bool {
    if text.contains("..") {
        return true;
    }
    if !at_start {
        return false;
    }
    let b = text.as_bytes();
    matches!(b.first().copied(), Some(b'/' | b'\\'))
        || (b.get(1) == Some(&b':') && b.first().is_some_and(u8::is_ascii_alphabetic))
}

/// Text that keeps a name a name: no separator, no `..`.
fn name_text(t: &str) -> bool {
    !t.contains(['/', '\\']) && !t.contains("..")
}

/// Text that, added to a path segment, keeps it one segment that is not `..`: no separator, no
/// `..`, not `.` alone.
fn suffix_text(t: &str) -> bool {
    name_text(t) && t != "." && !t.is_empty()
}

/// A parameter's path itself (through locals), or it with name text added, nothing else
/// derived from it.
fn raw_param(fl: &Flow) -> bool {
    (!fl.inside.is_empty() || !fl.suffixed.is_empty())
        && fl.esc.is_empty()
        && fl.bare.is_empty()
        && fl.segs.is_empty()
        && !fl.foreign
}

/// A piece of an f-string: literal text (adjacent pieces merged) or an interpolation.
enum Piece<'e> {
    Text(String),
    Value(&'e InterpolatedElement),
}

fn text_piece(pieces: &mut Vec<Piece<'_>>, t: &str) {
    if t.is_empty() {
        return;
    }
    if let Some(Piece::Text(s)) = pieces.last_mut() {
        s.push_str(t);
    } else {
        pieces.push(Piece::Text(t.to_string()));
    }
}

fn is_environ(q: &str) -> bool {
    q == "os.environ" || q == "os.environb"
}

fn env_method(m: &str) -> bool {
    matches!(
        m,
        "update" | "pop" | "setdefault" | "clear" | "popitem" | "__setitem__" | "__delitem__"
    )
}

fn is_sql_method(m: &str) -> bool {
    matches!(m, "execute" | "executemany" | "executescript")
}

/// `pathlib.Path.write_text` called unbound: the method name.
fn path_unbound(q: &str) -> Option<&str> {
    [
        "pathlib.Path.",
        "pathlib.PurePath.",
        "pathlib.PosixPath.",
        "pathlib.WindowsPath.",
    ]
    .iter()
    .find_map(|p| q.strip_prefix(*p))
}

/// Path methods that name nothing else: reported on any receiver, even an imported one.
const PATH_WRITES_ANYWHERE: [&str; 6] = [
    "write_text",
    "write_bytes",
    "touch",
    "unlink",
    "rmdir",
    "mkdir",
];

/// Methods of data objects that write their first argument (`df.to_csv(path)`).
fn data_writer(m: &str) -> bool {
    matches!(
        m,
        "to_csv"
            | "to_json"
            | "to_parquet"
            | "to_excel"
            | "to_pickle"
            | "to_feather"
            | "to_hdf"
            | "to_orc"
            | "to_stata"
            | "to_xml"
            | "savefig"
            | "save"
    )
}

fn is_write_flag(s: &str) -> bool {
    matches!(
        s,
        "O_WRONLY" | "O_RDWR" | "O_CREAT" | "O_TRUNC" | "O_APPEND" | "O_EXCL" | "O_TMPFILE"
    )
}

/// Whether `os.open` flags may write: any write flag, or anything not understood.
fn os_open_writes(e: &Expr, depth: usize) -> bool {
    if depth > 32 {
        return true;
    }
    match e {
        Expr::Attribute(a) => {
            let s = a.attr.as_str();
            is_write_flag(s) || !s.starts_with("O_")
        }
        Expr::Name(n) => {
            let s = n.id.as_str();
            is_write_flag(s) || !s.starts_with("O_")
        }
        Expr::BinOp(b) => os_open_writes(&b.left, depth + 1) || os_open_writes(&b.right, depth + 1),
        Expr::NumberLiteral(n) => match &n.value {
            // O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND on Linux.
            Number::Int(i) => i.as_u64().is_none_or(|v| v & 0o3103 != 0),
            _ => true,
        },
        _ => true,
    }
}

// ---------------------------------------------------------------------------------------------
// Expression children (every sub-expression, one level down)
// ---------------------------------------------------------------------------------------------

fn children<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::BoolOp(x) => out.extend(x.values.iter()),
        Expr::Named(x) => {
            out.push(&*x.target);
            out.push(&*x.value);
        }
        Expr::BinOp(x) => {
            out.push(&*x.left);
            out.push(&*x.right);
        }
        Expr::UnaryOp(x) => out.push(&*x.operand),
        Expr::Lambda(x) => {
            if let Some(p) = x.parameters.as_deref() {
                parameter_defaults(p, out);
            }
            out.push(&*x.body);
        }
        Expr::If(x) => {
            out.push(&*x.test);
            out.push(&*x.body);
            out.push(&*x.orelse);
        }
        Expr::Dict(x) => {
            for item in &x.items {
                if let Some(k) = &item.key {
                    out.push(k);
                }
                out.push(&item.value);
            }
        }
        Expr::Set(x) => out.extend(x.elts.iter()),
        Expr::ListComp(x) => {
            out.push(&*x.elt);
            comprehension_parts(&x.generators, out);
        }
        Expr::SetComp(x) => {
            out.push(&*x.elt);
            comprehension_parts(&x.generators, out);
        }
        Expr::Generator(x) => {
            out.push(&*x.elt);
            comprehension_parts(&x.generators, out);
        }
        Expr::DictComp(x) => {
            if let Some(k) = x.key.as_deref() {
                out.push(k);
            }
            out.push(&*x.value);
            comprehension_parts(&x.generators, out);
        }
        Expr::Await(x) => out.push(&*x.value),
        Expr::Yield(x) => {
            if let Some(v) = x.value.as_deref() {
                out.push(v);
            }
        }
        Expr::YieldFrom(x) => out.push(&*x.value),
        Expr::Compare(x) => {
            out.push(&*x.left);
            out.extend(x.comparators.iter());
        }
        Expr::Call(x) => {
            out.push(&*x.func);
            out.extend(x.arguments.args.iter());
            for k in x.arguments.keywords.iter() {
                out.push(&k.value);
            }
        }
        Expr::FString(x) => {
            for part in x.value.iter() {
                if let FStringPart::FString(f) = part {
                    interpolations(&f.elements, out);
                }
            }
        }
        Expr::TString(x) => {
            for t in x.value.iter() {
                interpolations(&t.elements, out);
            }
        }
        Expr::Attribute(x) => out.push(&*x.value),
        Expr::Subscript(x) => {
            out.push(&*x.value);
            out.push(&*x.slice);
        }
        Expr::Starred(x) => out.push(&*x.value),
        Expr::List(x) => out.extend(x.elts.iter()),
        Expr::Tuple(x) => out.extend(x.elts.iter()),
        Expr::Slice(x) => {
            for v in [x.lower.as_deref(), x.upper.as_deref(), x.step.as_deref()]
                .into_iter()
                .flatten()
            {
                out.push(v);
            }
        }
        _ => {}
    }
}

fn parameter_defaults<'e>(p: &'e Parameters, out: &mut Vec<&'e Expr>) {
    for pw in p.iter_non_variadic_params() {
        if let Some(d) = pw.default() {
            out.push(d);
        }
    }
}

fn comprehension_parts<'e>(gens: &'e [Comprehension], out: &mut Vec<&'e Expr>) {
    for g in gens {
        out.push(&g.target);
        out.push(&g.iter);
        out.extend(g.ifs.iter());
    }
}

/// The interpolated expressions of an f-/t-string, also those inside format specs.
fn interpolations<'e>(elements: &'e InterpolatedStringElements, out: &mut Vec<&'e Expr>) {
    let mut pending: Vec<&'e InterpolatedStringElements> = vec![elements];
    let mut specs = 0usize;
    while let Some(list) = pending.pop() {
        for el in list.iter() {
            if let InterpolatedStringElement::Interpolation(i) = el {
                out.push(&*i.expression);
                if let Some(spec) = &i.format_spec {
                    if specs < MAX_DEPTH {
                        specs += 1;
                        pending.push(&spec.elements);
                    }
                }
            }
        }
    }
}

/// Each item of a tuple or list target with the item of `value` it is bound to, when the two
/// pair up item by item (same length, nothing starred); else `None`, the item taking some part
/// of the whole value.
fn unpacked<'a>(
    target: &'a Expr,
    value: &'a Expr,
) -> impl Iterator<Item = (&'a Expr, Option<&'a Expr>)> {
    let (ts, vs) = (elts(target), elts(value));
    let paired = ts.len() == vs.len() && !ts.iter().chain(vs.iter()).any(Expr::is_starred_expr);
    ts.iter()
        .enumerate()
        .map(move |(i, t)| (t, vs.get(i).filter(|_| paired)))
}

fn elts(e: &Expr) -> &[Expr] {
    match e {
        Expr::Tuple(t) => t.elts.as_slice(),
        Expr::List(l) => l.elts.as_slice(),
        _ => &[],
    }
}

fn param_names(p: &Parameters) -> Vec<&str> {
    let mut out = Vec::new();
    for a in p.posonlyargs.iter() {
        out.push(a.name().as_str());
    }
    for a in p.args.iter() {
        out.push(a.name().as_str());
    }
    if let Some(v) = &p.vararg {
        out.push(v.name.as_str());
    }
    for a in p.kwonlyargs.iter() {
        out.push(a.name().as_str());
    }
    if let Some(k) = &p.kwarg {
        out.push(k.name.as_str());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// SQL
// ---------------------------------------------------------------------------------------------

/// The statements of a SQL text, comments dropped and quoted text blanked.
fn split_sql(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'-') => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
                cur.push(' ');
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = '\0';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
                cur.push(' ');
            }
            '\'' | '"' | '`' | '[' => {
                // Strings and quoted identifiers (`[x]` in SQLite and SQL Server): what is in
                // them is neither a comment nor a statement's end.
                let end = if c == '[' { ']' } else { c };
                for n in chars.by_ref() {
                    if n == end {
                        break;
                    }
                }
                cur.push_str(" '' ");
            }
            ';' => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// What a literal SQL text does; `None` for transaction control (or nothing at all).
fn classify_sql(text: &str) -> Option<PyEffect> {
    if text.len() > MAX_SQL {
        return Some(E::SqlUnknown);
    }
    let mut read = false;
    let mut unknown = false;
    for stmt in split_sql(text) {
        let mut words = stmt
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty());
        let Some(first) = words.next() else {
            continue;
        };
        let first = first.to_ascii_uppercase();
        match first.as_str() {
            "SELECT" | "EXPLAIN" | "VALUES" | "SHOW" | "DESCRIBE" | "DESC" => read = true,
            "WITH" => {
                let writes = words.any(|w| {
                    ["INSERT", "UPDATE", "DELETE", "REPLACE"]
                        .iter()
                        .any(|k| w.eq_ignore_ascii_case(k))
                });
                if writes {
                    return Some(E::SqlWrite);
                }
                read = true;
            }
            "PRAGMA" => {
                // `PRAGMA x = v` and `PRAGMA x(v)` set x; only the pragmas that take an argument
                // to look something up read with one (`table_info(t)`).
                let name = stmt
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .split('(')
                    .next()
                    .unwrap_or_default()
                    .rsplit('.')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let looks_up = [
                    "table_info",
                    "table_xinfo",
                    "index_info",
                    "index_xinfo",
                    "index_list",
                    "foreign_key_list",
                    "foreign_key_check",
                    "integrity_check",
                    "quick_check",
                    "table_list",
                ]
                .contains(&name.as_str());
                if stmt.contains('=') || (stmt.contains('(') && !looks_up) {
                    return Some(E::SqlWrite);
                }
                read = true;
            }
            "INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "UPSERT" | "MERGE" | "CREATE" | "DROP"
            | "ALTER" | "TRUNCATE" | "VACUUM" | "REINDEX" | "ANALYZE" | "ATTACH" | "DETACH"
            | "GRANT" | "REVOKE" | "COPY" | "LOAD" => return Some(E::SqlWrite),
            "BEGIN" | "COMMIT" | "END" | "ROLLBACK" | "SAVEPOINT" | "RELEASE" | "START" => {}
            _ => unknown = true,
        }
    }
    if unknown {
        Some(E::SqlUnknown)
    } else if read {
        Some(E::SqlRead)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// One function's walk
// ---------------------------------------------------------------------------------------------

struct Shadowed {
    name: String,
    flow: Option<Flow>,
    kind: Option<Kind>,
    konst: Option<Option<Rc<str>>>,
    alias: Option<BTreeSet<String>>,
}

struct Scope<'m, 'a> {
    m: &'m Module<'a>,
    /// Local (and parameter) → parameters it derives from.
    flow: HashMap<String, Flow>,
    kinds: HashMap<String, Kind>,
    /// Locals bound to one string literal; `None` once bound to anything else.
    consts: HashMap<String, Option<Rc<str>>>,
    /// Imports inside the function.
    local_imports: HashMap<String, String>,
    /// Locals bound to a function or module of an import (at module level: the globals).
    aliases: Aliases,
    /// Locals holding instances of a class of the module (`caches = [Cache(r) for r in rs]`).
    elem_kinds: HashMap<String, Kind>,
    /// More facts than [`MAX_FACTS`] were found: the marker saying so is kept.
    overflowed: bool,
    /// A DB-API module imported or connected to in the function.
    db: Option<&'static str>,
    /// Some `urllib.request.Request(...)` in the function sends data or a writing method.
    write_request: bool,
    record: bool,
    /// The statements are the module's import-time code ([`AT_IMPORT`]): binding a function to
    /// a name or a container (`rm, x = os.remove, None`, `{"rm": os.remove}`, a lambda) runs
    /// nothing then; what the functions later do with it is theirs.
    import_time: bool,
    /// The class whose method this is.
    class: Option<u32>,
    /// The first parameter of a class method (`cls`, or `__new__`'s): calling it makes an
    /// instance of the class or of a subclass.
    cls_param: Option<String>,
    /// Classes already mentioned, and how (see [`Scope::mention`]).
    mentioned: BTreeSet<(u32, Mention)>,
    /// The constructor call whose result is called at once (`Killer()(p)`): it runs
    /// `__call__` there, with those arguments.
    called_at_once: Option<TextSize>,
    /// A call whose result is only looked into (`getattr(C, name).__doc__`), by offset: what it
    /// gives is not kept or called.
    looked_into: Option<TextSize>,
    /// The constructor call that is a `with` item bound to no name (`with Lock(p):`): its
    /// `__enter__`/`__exit__` run there.
    entered: Option<TextSize>,
    /// While scanning the module's globals: names bound to a value holding a module.
    holders: HashMap<String, String>,
    /// How deep [`Scope::package_call`] is following names re-exported between modules.
    reexports: usize,
    /// [`Scope::reference`] is looking a value up (`x = helpers.ROOT`), not a call.
    referencing: bool,
    /// Locals holding something taken out of a module-level container (`for h in HANDLERS`,
    /// `f = COMMANDS.get(name)`), by the container's name.
    drawn: HashMap<String, String>,
    /// Those also bound to something else (`h = G[k]` then `h = _evil`): a call may run either.
    mixed: std::collections::HashSet<String>,
    facts: BTreeSet<Fact>,
    sites: Vec<CallSite>,
}

/// How code names a class of the module, which decides the methods Python may then call
/// without a call forge sees ([`Scope::implicit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Mention {
    /// As a value (`f = C`, `submit(C, p)`): anything, its constructor too, may run later.
    Value,
    /// As a receiver or a type (`C.m(…)`, `C[x]`, `isinstance(x, C)`, `except C`): no instance
    /// is made there.
    Receiver,
    /// Constructed (`C(…)`), the constructor followed with its arguments.
    Built,
    /// Constructed and called at once (`C()(p)`): `__call__` followed too.
    BuiltCalled,
    /// Constructed as a `with` item bound to no name: `__enter__`/`__exit__` followed too.
    BuiltEntered,
}

impl<'m, 'a> Scope<'m, 'a> {
    fn new(m: &'m Module<'a>) -> Self {
        Scope {
            m,
            flow: HashMap::new(),
            kinds: HashMap::new(),
            consts: HashMap::new(),
            local_imports: HashMap::new(),
            aliases: HashMap::new(),
            elem_kinds: HashMap::new(),
            overflowed: false,
            db: None,
            write_request: false,
            record: false,
            import_time: false,
            class: None,
            cls_param: None,
            mentioned: BTreeSet::new(),
            called_at_once: None,
            looked_into: None,
            entered: None,
            holders: HashMap::new(),
            reexports: 0,
            referencing: false,
            drawn: HashMap::new(),
            mixed: std::collections::HashSet::new(),
            facts: BTreeSet::new(),
            sites: Vec::new(),
        }
    }

    fn line(&self, at: TextSize) -> usize {
        self.m.index.line_index(at).get()
    }

    fn is_local(&self, name: &str) -> bool {
        self.flow.contains_key(name)
            || self.kinds.contains_key(name)
            || self.consts.contains_key(name)
    }

    fn fact(&mut self, effect: PyEffect, call: impl Into<String>, line: usize, params: Flow) {
        if !self.record {
            return;
        }
        if self.facts.len() >= MAX_FACTS {
            // What is not counted may be what matters: the function fails closed.
            if !self.overflowed {
                self.overflowed = true;
                self.facts.insert(overflow_fact(line));
            }
            return;
        }
        let escapes = if effect.on_path() {
            params.escapes()
        } else {
            Vec::new()
        };
        let call = call.into();
        if effect.on_path() && params.foreign && !params.all.is_empty() {
            // The target may also be a path no parameter names: that fact alone makes the
            // call irreversible.
            self.facts.insert(Fact {
                line,
                effect,
                call: call.clone(),
                params: Vec::new(),
                escapes: Vec::new(),
                segs: Vec::new(),
                via: None,
            });
        }
        let segs = if effect.on_path() {
            params.segs.iter().copied().collect()
        } else {
            Vec::new()
        };
        self.facts.insert(Fact {
            line,
            effect,
            call,
            params: params.all.into_iter().collect(),
            escapes,
            segs,
            via: None,
        });
    }

    // -- module level ------------------------------------------------------------------------

    fn scan_globals(&mut self, body: &[Stmt], depth: usize) {
        // As deep as the definitions are read ([`collect_functions`]): past it, every function
        // fails closed anyway.
        if depth > MODULE_DEPTH {
            return;
        }
        for s in body {
            match s {
                Stmt::Assign(a) => {
                    for t in &a.targets {
                        match t {
                            Expr::Name(n) => self.global_assign(n.id.as_str(), &a.value),
                            // `rm, x = os.remove, 1`
                            Expr::Tuple(_) | Expr::List(_) => {
                                let (ts, vs) = (elts(t), elts(&a.value));
                                if ts.len() == vs.len() {
                                    for (t, v) in ts.iter().zip(vs) {
                                        if let Expr::Name(n) = t {
                                            self.global_assign(n.id.as_str(), v);
                                        }
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                Stmt::AnnAssign(a) => {
                    if let (Expr::Name(n), Some(v)) = (&*a.target, a.value.as_deref()) {
                        self.global_assign(n.id.as_str(), v);
                    }
                }
                Stmt::If(x) => {
                    self.scan_globals(&x.body, depth + 1);
                    for c in &x.elif_else_clauses {
                        self.scan_globals(&c.body, depth + 1);
                    }
                }
                Stmt::Try(t) => {
                    self.scan_globals(&t.body, depth + 1);
                    for h in &t.handlers {
                        let ExceptHandler::ExceptHandler(h) = h;
                        self.scan_globals(&h.body, depth + 1);
                    }
                    self.scan_globals(&t.orelse, depth + 1);
                    self.scan_globals(&t.finalbody, depth + 1);
                }
                _ => {}
            }
        }
    }

    fn global_assign(&mut self, name: &str, value: &Expr) {
        let mut bound = if aliasable(value) {
            self.refs_of(value)
        } else {
            Vec::new()
        };
        if let Expr::Name(n) = value {
            if self.m.by_name.contains_key(n.id.as_str()) {
                bound.push(format!("{FN}{}", n.id.as_str()));
            }
        }
        if bound.is_empty() {
            // `rm = lambda p: os.remove(p)`, `rm = functools.partial(shutil.rmtree, x)`: a
            // call of `rm` does what they refer to, with arguments forge cannot map.
            bound = self.tainted(value);
            if let Some(q) = self.held_module(value) {
                self.holders.insert(name.to_string(), q);
            }
        }
        for q in bound {
            self.aliases.entry(name.to_string()).or_default().insert(q);
        }
        if let Some(k) = self.kind_of(value, 0) {
            self.kinds.insert(name.to_string(), k);
        }
        let lit = self.literal(value);
        self.set_const(name, lit);
    }

    // -- names -------------------------------------------------------------------------------

    fn resolve(&self, e: &Expr) -> Resolved {
        if let Some(q) = self.refs_of(e).into_iter().next() {
            return Resolved::Qualified(q);
        }
        let mut cur = e;
        loop {
            match cur {
                Expr::Attribute(a) => cur = &a.value,
                Expr::Name(n) => {
                    if self.is_local(n.id.as_str()) {
                        return Resolved::Local;
                    }
                    // Not imported: stays as written (`open`, a module function).
                    return self
                        .m
                        .imports
                        .qualify(e)
                        .map_or(Resolved::Unknown, Resolved::Qualified);
                }
                _ => return Resolved::Unknown,
            }
        }
    }

    /// Every qualified name a name or attribute chain may stand for when it is rooted in an
    /// import or an alias of one: `os.remove`, `rm` after `rm = os.remove`, `o.remove` after
    /// `o = os`, `__import__("os").remove`, `importlib.import_module("os").remove`,
    /// `getattr(os, "remove")`. Empty for anything else (a local value, a builtin, a literal).
    fn refs_of(&self, e: &Expr) -> Vec<String> {
        self.refs_at(e, 0)
    }

    fn refs_at(&self, e: &Expr, depth: usize) -> Vec<String> {
        if depth > KIND_DEPTH {
            return Vec::new();
        }
        let mut parts: Vec<&str> = Vec::new();
        let mut cur = e;
        let heads = loop {
            match cur {
                Expr::Attribute(a) => {
                    parts.push(a.attr.as_str());
                    cur = &a.value;
                }
                Expr::Name(n) => break self.heads(n.id.as_str()),
                Expr::Call(c) => break self.imported_by_call(c, depth + 1),
                Expr::Subscript(x) => break self.looked_up(x, depth + 1),
                _ => return Vec::new(),
            }
        };
        heads
            .into_iter()
            .map(|mut q| {
                for p in parts.iter().rev() {
                    q.push('.');
                    q.push_str(p);
                }
                q
            })
            .collect()
    }

    /// What a bare name stands for through the imports and aliases (see [`Scope::refs_of`]).
    fn heads(&self, name: &str) -> Vec<String> {
        if let Some(q) = self.local_imports.get(name) {
            return vec![q.clone()];
        }
        if let Some(qs) = self.aliases.get(name) {
            return qs.iter().cloned().collect();
        }
        if self.is_local(name) {
            return Vec::new();
        }
        if let Some(qs) = self.m.global_aliases.get(name) {
            return qs.iter().cloned().collect();
        }
        self.m
            .imports
            .get(name)
            .map(|q| vec![q.to_string()])
            .unwrap_or_default()
    }

    /// The module an import by a literal name returns (`__import__("os")`,
    /// `importlib.import_module("os.path")`), or what `getattr(<import>, "name")` is.
    fn imported_by_call(&self, c: &ExprCall, depth: usize) -> Vec<String> {
        let args = Args::of(&c.arguments);
        if self.builtin(&c.func, "__import__") {
            // `__import__("os.path")` returns the top package, `os`.
            return args
                .get(0, &["name"])
                .and_then(|a| self.literal(a))
                .map(|n| vec![n.split('.').next().unwrap_or_default().to_string()])
                .unwrap_or_default();
        }
        if self
            .refs_at(&c.func, depth)
            .iter()
            .any(|q| q == "importlib.import_module")
        {
            return args
                .get(0, &["name"])
                .and_then(|a| self.literal(a))
                // Relative (`import_module(".helpers", __package__)`): a module of the package.
                .filter(|n| !n.starts_with('.') || !self.m.package.modules.is_empty())
                .map(|n| vec![n.to_string()])
                .unwrap_or_default();
        }
        if self.builtin(&c.func, "getattr") {
            if let (Some(obj), Some(name)) = (args.get(0, &[]), args.get(1, &[])) {
                if let Some(attr) = self.literal(name) {
                    return self
                        .refs_at(obj, depth)
                        .into_iter()
                        .map(|q| format!("{q}.{attr}"))
                        .collect();
                }
            }
        }
        Vec::new()
    }

    /// What a module-level value that is not a plain alias refers to that changes something:
    /// functions of imports forge knows (as [`ANY`] names: called with arguments forge cannot
    /// map) and functions of the module (as [`FN`] names).
    fn tainted(&mut self, value: &Expr) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![(value, 0usize)];
        let mut seen = 0usize;
        let none = Args { pos: &[], kw: &[] };
        while let Some((e, d)) = stack.pop() {
            seen += 1;
            if seen > 10_000 || d > MAX_DEPTH {
                break;
            }
            match e {
                Expr::Name(n) if self.m.by_name.contains_key(n.id.as_str()) => {
                    // Inside a value (a lambda, a partial, a tuple): called with arguments
                    // forge cannot map.
                    out.push(format!("{ANY}{FN}{}", n.id.as_str()));
                }
                Expr::Name(_) | Expr::Attribute(_) => {
                    for q in self.refs_of(e) {
                        let before = self.facts.len();
                        let record = std::mem::replace(&mut self.record, true);
                        self.module_call(&q, none, 0);
                        self.record = record;
                        let changes = self
                            .facts
                            .iter()
                            .any(|f| !matches!(f.effect, E::FileRead | E::NetRead | E::SqlRead));
                        if self.facts.len() > before && changes {
                            out.push(format!("{ANY}{q}"));
                        }
                        self.facts.clear();
                    }
                    if let Expr::Attribute(a) = e {
                        stack.push((&a.value, d + 1));
                    }
                }
                _ => {
                    let mut kids = Vec::new();
                    children(e, &mut kids);
                    stack.extend(kids.into_iter().map(|k| (k, d + 1)));
                }
            }
        }
        out
    }

    /// A namespace entry by a literal key: `vars(os)["remove"]`, `os.__dict__["remove"]`,
    /// `sys.modules["os"]`, `globals()["os"]`.
    fn looked_up(&self, x: &ruff_python_ast::ExprSubscript, depth: usize) -> Vec<String> {
        let Some(key) = self.literal(&x.slice) else {
            return Vec::new();
        };
        match &*x.value {
            Expr::Call(c) if self.builtin(&c.func, "vars") => Args::of(&c.arguments)
                .get(0, &[])
                .map(|m| {
                    self.refs_at(m, depth)
                        .into_iter()
                        .map(|q| format!("{q}.{key}"))
                        .collect()
                })
                .unwrap_or_default(),
            Expr::Call(c) if self.builtin(&c.func, "globals") => {
                if self.m.by_name.contains_key(&*key) {
                    vec![format!("{FN}{key}")]
                } else {
                    self.heads(&key)
                }
            }
            Expr::Attribute(a) if a.attr.as_str() == "__dict__" => self
                .refs_at(&a.value, depth)
                .into_iter()
                .map(|q| format!("{q}.{key}"))
                .collect(),
            v if self.refs_at(v, depth).iter().any(|q| q == "sys.modules") => {
                vec![key.to_string()]
            }
            _ => Vec::new(),
        }
    }

    /// `e` is the builtin `name`: a bare name the module does not bind otherwise, or
    /// `builtins.name`.
    fn builtin(&self, e: &Expr, name: &str) -> bool {
        match e {
            Expr::Name(n) => n.id.as_str() == name && self.unbound(name),
            Expr::Attribute(a) if a.attr.as_str() == name => {
                self.refs_of(&a.value).iter().any(|q| q == "builtins")
            }
            _ => false,
        }
    }

    /// A bare name neither local, imported, aliased nor a function of the module.
    fn unbound(&self, name: &str) -> bool {
        !self.is_local(name)
            && !self.local_imports.contains_key(name)
            && !self.aliases.contains_key(name)
            && !self.m.global_aliases.contains_key(name)
            && self.m.imports.get(name).is_none()
            && !self.m.by_name.contains_key(name)
    }

    /// A namespace looked names up in at run time: `globals()`, `locals()`, `vars(…)`,
    /// `sys.modules` (and an entry of it), anything's `__dict__`.
    fn namespace(&self, e: &Expr) -> bool {
        let mut e = e;
        while let Expr::Subscript(x) = e {
            e = &x.value;
        }
        match e {
            Expr::Call(c) => ["globals", "locals", "vars"]
                .iter()
                .any(|n| self.builtin(&c.func, n)),
            Expr::Attribute(a) if a.attr.as_str() == "__dict__" => true,
            _ => self.refs_of(e).iter().any(|q| q == "sys.modules"),
        }
    }

    /// An imported module (or something imported from one) and attributes on it, also through
    /// an alias.
    fn module_ish(&self, e: &Expr) -> bool {
        !self.refs_of(e).is_empty()
    }

    /// `e` is something of an import from outside the package (`os`, `requests.session`), not
    /// an object another module of the package holds (`from .box import BOX`).
    fn foreign(&self, e: &Expr) -> bool {
        let refs = self.refs_of(e);
        !refs.is_empty() && !refs.iter().any(|q| self.in_package(q))
    }

    /// `e` names a class of the module (not shadowed by a local or an import).
    fn module_class(&self, e: &Expr) -> Option<u32> {
        let Expr::Name(n) = e else { return None };
        let name = n.id.as_str();
        if self.is_local(name) || self.local_imports.contains_key(name) {
            return None;
        }
        self.m.class_by_name.get(name).copied()
    }

    /// The method `m` of class `ci`, looked up in its bases that are classes of the module too.
    fn method_of(&self, ci: u32, m: &str) -> Option<u32> {
        self.in_hierarchy(ci, |c| c.methods.get(m).copied())
    }

    /// The first of class `ci` and its bases of the module (in the order Python looks, roughly:
    /// each class, then its bases left to right; cycles and any depth are fine) for which
    /// `find` finds something.
    fn in_hierarchy<T>(&self, ci: u32, find: impl Fn(&'m Class<'a>) -> Option<T>) -> Option<T> {
        let mut queue = std::collections::VecDeque::from([ci]);
        let mut seen = BTreeSet::new();
        while let Some(c) = queue.pop_front() {
            if !seen.insert(c) {
                continue;
            }
            let class = self.m.classes.get(c as usize)?;
            if let Some(found) = find(class) {
                return Some(found);
            }
            queue.extend(
                class
                    .bases
                    .iter()
                    .filter_map(|b| self.m.class_by_name.get(b).copied())
                    .chain(class.base_ids.iter().copied()),
            );
        }
        None
    }

    /// `recv.m(…)` on an object forge cannot type (`make().kill(p)`, `self.h.kill(p)`,
    /// `super().kill(p)`): when classes of the module define `m`, and `m` is not a method of
    /// the builtin types (`write`, `get`, `close` …, which such objects mostly are), each of
    /// them may be the one called.
    fn untyped_method(&mut self, m: &str, args: Args<'_>, line: usize) -> bool {
        if BUILTIN_METHODS.contains(&m) || (m.starts_with("__") && m.ends_with("__")) {
            return false;
        }
        let owners: Vec<u32> = (0..self.m.classes.len())
            .filter_map(|c| {
                let c = idx(c);
                self.m
                    .classes
                    .get(c as usize)
                    .is_some_and(|k| k.methods.contains_key(m))
                    .then_some(c)
            })
            .collect();
        for &c in &owners {
            self.method_site(c, m, args, line, true);
        }
        // And the methods of that name of the package's other modules' classes.
        let others = self.m.methods.get(m).cloned().unwrap_or_default();
        for &(c, skip) in &others {
            self.site_from(c, args, line, skip);
        }
        !owners.is_empty() || !others.is_empty()
    }

    /// Class `ci` and its bases of the module, each once, in the order Python looks (roughly).
    fn hierarchy(&self, ci: u32) -> Vec<u32> {
        let mut queue = std::collections::VecDeque::from([ci]);
        let mut out = Vec::new();
        while let Some(c) = queue.pop_front() {
            if out.contains(&c) {
                continue;
            }
            let Some(class) = self.m.classes.get(c as usize) else {
                continue;
            };
            out.push(c);
            queue.extend(
                class
                    .bases
                    .iter()
                    .filter_map(|b| self.m.class_by_name.get(b).copied())
                    .chain(class.base_ids.iter().copied()),
            );
        }
        out
    }

    /// Classes of the package's other modules that class `ci` or its bases derive from
    /// (`class Sub(helpers.Base)`), by absolute name.
    fn external_bases(&self, ci: u32) -> Vec<String> {
        let pkg = self.m.package;
        if pkg.modules.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for c in self.hierarchy(ci) {
            let Some(class) = self.m.classes.get(c as usize) else {
                continue;
            };
            for b in &class.base_exprs {
                if matches!(b, Expr::Name(n) if self.m.class_by_name.contains_key(n.id.as_str())) {
                    continue;
                }
                for q in self.refs_of(b) {
                    if let Some(a) = Package::absolute(&self.m.here, &q) {
                        if pkg.classes.contains(&a) {
                            for l in pkg.lineage(&a) {
                                if !out.contains(&l) {
                                    out.push(l);
                                }
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// The metaclass of class `ci` when it is a class of the module (its own or a base's).
    fn meta_of(&self, ci: u32) -> Option<u32> {
        self.in_hierarchy(ci, |c| c.meta)
            .and_then(|m| self.m.class_by_name.get(m).copied())
    }

    /// Classes of the module deriving from `ci`, through any of their bases.
    fn subclasses(&self, ci: u32) -> Vec<u32> {
        (0..self.m.classes.len())
            .map(idx)
            .filter(|&c| c != ci && self.hierarchy(c).contains(&ci))
            .collect()
    }

    /// The methods Python may call on class `ci` or its instances without a call forge sees
    /// once code has named the class: every special method (`__eq__`, `__iter__`,
    /// `__getitem__`, `__get__`, `__del__`, `__class_getitem__` …) of it and its bases but
    /// those in `skip`, and every method of its metaclass but the ones a class statement runs
    /// (`__getattr__` for `C.anything`, `__call__` for `C(…)`). `__init_subclass__` runs when
    /// a subclass is defined ([`Scope::class_statement`]).
    fn implicit(&self, ci: u32, skip: &[&str]) -> Vec<u32> {
        let mut out = Vec::new();
        for c in self.hierarchy(ci) {
            // Set on the class after its definition: whatever its name, it may be called
            // (a replaced `__init__` too, which the constructor forge follows does not see).
            if let Some(k) = self.m.classes.get(c as usize) {
                out.extend(k.patched.iter().copied());
            }
            // Every definition (a property's getter and setter share a name).
            for (f, func) in self.m.funcs.iter().enumerate() {
                if func.class.map(|(k, _)| k) != Some(c) {
                    continue;
                }
                let name = func.def.name.as_str();
                let implicit =
                    (special(name) && name != "__init_subclass__" && !skip.contains(&name))
                        || is_property(func.def);
                if implicit {
                    out.push(idx(f));
                }
            }
        }
        // Those of classes of other modules of the package it derives from, and their
        // metaclass's methods (but those a class statement runs).
        let external = self.external_bases(ci);
        if self.meta_of(ci).is_none() {
            if let Some(meta) = external
                .iter()
                .find_map(|b| self.m.package.meta_of(b).cloned())
            {
                let prefix = format!("{meta}.");
                for (k, v) in self.m.external.range(prefix.clone()..) {
                    let Some(name) = k.strip_prefix(&prefix) else {
                        break;
                    };
                    if !CREATION.contains(&name) && name != "__init_subclass__" {
                        out.extend(v.iter().copied());
                    }
                }
            }
        }
        for base in external {
            let prefix = format!("{base}.");
            for (k, v) in self.m.external.range(prefix.clone()..) {
                let Some(name) = k.strip_prefix(&prefix) else {
                    break;
                };
                for &f in v {
                    let property = self
                        .m
                        .funcs
                        .get(f as usize)
                        .is_some_and(|x| is_property(x.def));
                    if (special(name) && name != "__init_subclass__" && !skip.contains(&name))
                        || property
                    {
                        out.push(f);
                    }
                }
            }
        }
        if let Some(meta) = self.meta_of(ci) {
            for c in self.hierarchy(meta) {
                let Some(class) = self.m.classes.get(c as usize) else {
                    continue;
                };
                for (name, &f) in &class.methods {
                    if !CREATION.contains(name) && *name != "__init_subclass__" {
                        out.push(f);
                    }
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Code names class `ci` (`how`): the methods Python may then call implicitly count as
    /// called here, with no argument forge can map (their targets are not known).
    fn mention(&mut self, ci: u32, how: Mention, line: usize) {
        if !self.record || !self.mentioned.insert((ci, how)) {
            return;
        }
        let skip: &[&str] = match how {
            Mention::Value => &[],
            Mention::Receiver | Mention::Built => &CTOR,
            Mention::BuiltCalled => &["__init__", "__new__", "__post_init__", "__call__"],
            Mention::BuiltEntered => &[
                "__init__",
                "__new__",
                "__post_init__",
                "__enter__",
                "__exit__",
            ],
        };
        let none = Args { pos: &[], kw: &[] };
        for f in self.implicit(ci, skip) {
            self.site(f, none, line);
        }
        let replaced: Vec<(String, usize)> = self
            .hierarchy(ci)
            .into_iter()
            .filter_map(|c| {
                let k = self.m.classes.get(c as usize)?;
                let name = self.m.class_by_name.iter().find(|(_, &v)| v == c)?.0;
                Some((name.to_string(), k.replaced?))
            })
            .collect();
        for (name, at) in replaced {
            let call =
                format!("`{name}`, which line {at} sets something on that forge cannot follow");
            self.fact(E::Unseen, call, line, Flow::new());
        }
    }

    /// A class statement: the bases' `__init_subclass__` and the metaclass's `__prepare__`,
    /// `__new__` and `__init__` run (at import, for a class of the module); other bases and
    /// keywords are walked as expressions.
    fn class_statement(&mut self, c: &ruff_python_ast::StmtClassDef, d: usize) {
        let Some(args) = &c.arguments else {
            return;
        };
        let line = self.line(c.start());
        let none = Args { pos: &[], kw: &[] };
        let mut metas = Vec::new();
        for a in args.args.iter() {
            let (named, subscripted) = match a {
                Expr::Subscript(x) => (&*x.value, true),
                other => (other, false),
            };
            let Some(b) = self.module_class(named) else {
                // A class of another module of the package: its `__init_subclass__`.
                if let Some(class) = self.package_class(named) {
                    let key = format!("{class}.__init_subclass__");
                    for f in self.m.external.get(&key).cloned().unwrap_or_default() {
                        self.site(f, none, line);
                    }
                    continue;
                }
                // A class of an import (`subprocess.Popen`) is subclassed, not called.
                if matches!(named, Expr::Name(_) | Expr::Attribute(_))
                    && !self.refs_of(named).is_empty()
                {
                    if let Expr::Subscript(x) = a {
                        self.expr(&x.slice, d);
                    }
                    continue;
                }
                self.expr(a, d);
                continue;
            };
            if let Some(f) = self.method_of(b, "__init_subclass__") {
                self.site(f, none, line);
            }
            metas.extend(self.meta_of(b));
            if let (true, Expr::Subscript(x)) = (subscripted, a) {
                self.mention(b, Mention::Receiver, line);
                self.expr(&x.slice, d);
            }
        }
        for k in args.keywords.iter() {
            if k.arg.as_ref().is_some_and(|a| a.as_str() == "metaclass") {
                if let Some(m) = self.module_class(&k.value) {
                    metas.push(m);
                    continue;
                }
            }
            self.expr(&k.value, d);
        }
        for m in metas {
            for name in CREATION {
                if let Some(f) = self.method_of(m, name) {
                    self.site(f, none, line);
                }
            }
        }
    }

    /// `cls(…)` in a class method, `type(self)(…)`, `self.__class__(…)`: an instance of the
    /// method's class, or of one of its subclasses.
    fn constructs(&self, func: &Expr) -> Option<u32> {
        let ci = self.class?;
        let own = |e: &Expr| self.kind_of(e, 0) == Some(Kind::Object(ci));
        match func {
            Expr::Name(n) if self.cls_param.as_deref() == Some(n.id.as_str()) && own(func) => {
                Some(ci)
            }
            Expr::Call(t) if self.builtin(&t.func, "type") => {
                let args = Args::of(&t.arguments);
                match (args.pos, args.kw) {
                    ([x], []) if own(x) => Some(ci),
                    _ => None,
                }
            }
            Expr::Attribute(a) if a.attr.as_str() == "__class__" && own(&a.value) => Some(ci),
            _ => None,
        }
    }

    /// `super().m(…)` in a method: `m` of the class's bases of the module, special methods
    /// (`super().__init__(p)`) included.
    fn super_call(&mut self, func: &Expr, args: Args<'_>, line: usize) -> bool {
        let (Some(ci), Expr::Attribute(a)) = (self.class, func) else {
            return false;
        };
        let Expr::Call(sup) = &*a.value else {
            return false;
        };
        if !self.builtin(&sup.func, "super") {
            return false;
        }
        let bases: Vec<u32> = self
            .m
            .classes
            .get(ci as usize)
            .map(|c| {
                c.bases
                    .iter()
                    .filter_map(|b| self.m.class_by_name.get(b).copied())
                    .chain(c.base_ids.iter().copied())
                    .collect()
            })
            .unwrap_or_default();
        let mut known = false;
        for b in bases {
            known |= self.method_site(b, a.attr.as_str(), args, line, true);
        }
        // In an instance of a subclass, what follows this class in the order Python looks may
        // be another of that subclass's bases (`class C(Mixin, B)`: `super()` in `Mixin`
        // reaches `B`): each class there that defines the method.
        let subs = self.subclasses(ci);
        let mut after: BTreeSet<u32> = BTreeSet::new();
        for &sub in &subs {
            for k in self.hierarchy(sub) {
                if k != ci && !subs.contains(&k) && !self.hierarchy(ci).contains(&k) {
                    after.insert(k);
                }
            }
        }
        for k in after {
            if self
                .m
                .classes
                .get(k as usize)
                .is_some_and(|c| c.methods.contains_key(a.attr.as_str()))
            {
                known |= self.method_site(k, a.attr.as_str(), args, line, true);
            }
        }
        // A base of another module of the package.
        for base in self.external_bases(ci) {
            let key = format!("{base}.{}", a.attr.as_str());
            for c in self.m.external.get(&key).cloned().unwrap_or_default() {
                self.site_from(c, args, line, 1);
                known = true;
            }
        }
        // Nothing found, in a package: the class may be mixed into a class of another module,
        // whose next base's method runs (with these arguments, which may be anything).
        let m = a.attr.as_str();
        let dunder = m.starts_with("__") && m.ends_with("__");
        if !(known || self.m.package.modules.is_empty() || dunder) {
            let call = format!("`super().{m}` in a class other modules of the package may mix in");
            self.fact(E::Unseen, call, line, Flow::new());
            known = true;
        }
        known
    }

    /// A value holding a module that changes things (`[os]`, `{"x": shutil}`, `make(os)`), not
    /// as a receiver (`os.sep`) or an alias (`o = os`): the module it holds.
    fn held_module(&self, value: &Expr) -> Option<String> {
        let mut stack = vec![(value, 0usize)];
        let mut seen = 0usize;
        while let Some((e, d)) = stack.pop() {
            seen += 1;
            if seen > 10_000 || d > MAX_DEPTH {
                return None;
            }
            match e {
                Expr::Name(_) => {
                    if let Some(q) = self.refs_of(e).into_iter().find(|q| whole_module(q)) {
                        return Some(q);
                    }
                }
                // What can hold the module itself: a container, a choice between values.
                Expr::List(_)
                | Expr::Tuple(_)
                | Expr::Set(_)
                | Expr::Dict(_)
                | Expr::If(_)
                | Expr::BoolOp(_)
                | Expr::Named(_)
                | Expr::Starred(_) => {
                    let mut kids = Vec::new();
                    children(e, &mut kids);
                    stack.extend(kids.into_iter().map(|k| (k, d + 1)));
                }
                // A call's result (`hasattr(os, "x")`, `wrap(os)`) is walked where it runs.
                _ => {}
            }
        }
        None
    }

    /// `C(…)`: `__new__` and `__init__` with the call's arguments, then `__post_init__`.
    fn constructor(&mut self, ci: u32, args: Args<'_>, line: usize) {
        self.method_site(ci, "__new__", args, line, true);
        self.method_site(ci, "__init__", args, line, true);
        self.method_site(ci, "__post_init__", Args { pos: &[], kw: &[] }, line, true);
    }

    /// A call of method `m` on an instance (`skip_self`: the instance is not among `args`) or
    /// on the class itself (it is, for an instance method: `Store.wipe(s, p)`).
    fn method_site(
        &mut self,
        ci: u32,
        m: &str,
        args: Args<'_>,
        line: usize,
        on_instance: bool,
    ) -> bool {
        // Methods set or hidden outside the class body: the one called may be another.
        let mut around = self.hierarchy(ci);
        around.extend(self.subclasses(ci));
        let unsure: Option<String> = around.into_iter().find_map(|c| {
            let k = self.m.classes.get(c as usize)?;
            if let Some(at) = k.replaced {
                return Some(format!(
                    "a method of a class something sets methods on (line {at})"
                ));
            }
            // `delete = remove`, `rm = _rm`, `go = _go` in a class body (of it, a base or a
            // subclass): which function runs is not followed.
            if k.attrs.get(m).is_some_and(|v| {
                !plain_data(v, 0) && self.refs_of(v).is_empty() && self.module_class(v).is_none()
            }) {
                return Some(format!("`.{m}`, bound in a class body to another function"));
            }
            (on_instance && k.shadowed.contains(m))
                .then(|| format!("`.{m}`, which the instance's own attribute may hide"))
        });
        if let Some(call) = unsure {
            self.fact(E::Unseen, call, line, Flow::new());
        }
        let Some(callee) = self.method_of(ci, m) else {
            // `class C: rm = os.remove`, then `C.rm(p)` or `C().rm(p)`: a function of an
            // import as a class attribute is not bound to the instance.
            let refs: Vec<String> = self
                .in_hierarchy(ci, |c| c.attrs.get(m).copied())
                .map(|e| self.refs_of(e))
                .unwrap_or_default();
            let mut known = false;
            for q in &refs {
                known |= self.module_call(q, args, line);
            }
            // `_address_class = IPv4Address`, then `self._address_class(x)`: constructed.
            let class = self
                .in_hierarchy(ci, |c| c.attrs.get(m).copied())
                .and_then(|e| self.module_class(e));
            if let Some(k) = class {
                self.constructor(k, args, line);
                known = true;
            }
            // Inherited from a class of another module of the package.
            known |= self.external_method(ci, m, args, line, on_instance);
            return known;
        };
        let takes_self = self
            .m
            .funcs
            .get(callee as usize)
            .and_then(|f| f.class)
            .is_some_and(|(_, s)| s);
        let is_classmethod = self
            .m
            .funcs
            .get(callee as usize)
            .is_some_and(|f| decorated_by(f.def, "classmethod"));
        let skip = usize::from(takes_self && (on_instance || is_classmethod));
        self.site_from(callee, args, line, skip);
        // A base from another module of the package may come first in the order Python looks
        // (`class C(Mixin, B)`, `Mixin` imported): its method of that name may be the one.
        self.external_method(ci, m, args, line, on_instance);
        true
    }

    /// The methods named `m` of the bases of class `ci` that are classes of another module of
    /// the package, called; `true` when there is one.
    fn external_method(
        &mut self,
        ci: u32,
        m: &str,
        args: Args<'_>,
        line: usize,
        on_instance: bool,
    ) -> bool {
        let mut known = false;
        for base in self.external_bases(ci) {
            for c in self
                .m
                .external
                .get(&format!("{base}.{m}"))
                .cloned()
                .unwrap_or_default()
            {
                let is_static = self
                    .m
                    .funcs
                    .get(c as usize)
                    .is_some_and(|f| decorated_by(f.def, "staticmethod"));
                self.site_from(c, args, line, usize::from(on_instance && !is_static));
                known = true;
            }
        }
        known
    }

    fn module_function(&self, name: &str) -> Option<u32> {
        if self.is_local(name) || self.local_imports.contains_key(name) {
            return None;
        }
        self.m.by_name.get(name).copied()
    }

    /// A string literal, or a name bound to exactly one.
    fn literal(&self, e: &Expr) -> Option<Rc<str>> {
        match e {
            Expr::StringLiteral(s) => Some(Rc::from(s.value.to_str())),
            Expr::Name(n) => {
                let id = n.id.as_str();
                let slot = if self.is_local(id) {
                    self.consts.get(id)
                } else {
                    self.m.global_consts.get(id)
                };
                slot.and_then(|c| c.clone())
            }
            _ => None,
        }
    }

    fn set_const(&mut self, name: &str, konst: Option<Rc<str>>) {
        let next = match konst {
            Some(t) => match self.consts.get(name) {
                None => Some(t),
                Some(Some(old)) if **old == *t => return,
                Some(_) => None,
            },
            None => None,
        };
        self.consts.insert(name.to_string(), next);
    }

    /// The parameters an expression derives from (every name it mentions, through the
    /// locals), and how (`derive`); a name `derive` did not account for escapes.
    fn flow_of(&self, e: &Expr) -> Flow {
        let named = self.named(e);
        let mut out = self.derive(e, 0);
        for p in named {
            if !out.all.contains(&p) {
                if out.all.len() >= MAX_FLOW {
                    break;
                }
                out.all.insert(p);
                out.esc.insert(p);
            }
        }
        out
    }

    /// Every parameter an expression names, through the locals.
    fn named(&self, e: &Expr) -> Params {
        let mut out = Params::new();
        let mut stack: Vec<(&Expr, usize)> = vec![(e, 0)];
        let mut kids: Vec<&Expr> = Vec::new();
        while let Some((cur, d)) = stack.pop() {
            if let Expr::Name(n) = cur {
                if let Some(f) = self.flow.get(n.id.as_str()) {
                    add(&mut out, &f.all);
                }
                continue;
            }
            if d >= MAX_DEPTH {
                continue;
            }
            kids.clear();
            children(cur, &mut kids);
            for k in kids.drain(..) {
                stack.push((k, d + 1));
            }
        }
        out
    }

    /// Flow of the target argument; when it is not there, whatever `*xs`/`**kw` carry.
    fn arg_flow(&self, args: Args<'_>, i: usize, names: &[&str]) -> Flow {
        match args.get(i, names) {
            Some(e) => self.flow_of(e),
            None => self.dynamic_flow(args),
        }
    }

    fn dynamic_flow(&self, args: Args<'_>) -> Flow {
        let mut out = Flow::new();
        for a in args.pos {
            if let Expr::Starred(s) = a {
                union(&mut out, &self.flow_of(&s.value));
            }
        }
        for k in args.kw {
            if k.arg.is_none() {
                union(&mut out, &self.flow_of(&k.value));
            }
        }
        out
    }

    // -- path derivations --------------------------------------------------------------------

    /// Everything `e` names, escaping.
    fn escaped_flow(&self, e: &Expr) -> Flow {
        let all = self.named(e);
        Flow {
            esc: all.clone(),
            all,
            inside: Params::new(),
            bare: Params::new(),
            segs: Params::new(),
            suffixed: Params::new(),
            foreign: false,
        }
    }

    /// How a value derives from the parameters, for the forms that keep a path inside the one
    /// it comes from (see the module doc); anything else escapes.
    fn derive(&self, e: &Expr, depth: usize) -> Flow {
        if depth > DERIVE_DEPTH {
            return self.escaped_flow(e);
        }
        let d = depth + 1;
        match e {
            Expr::Name(n) => self.flow.get(n.id.as_str()).cloned().unwrap_or_default(),
            Expr::StringLiteral(_)
            | Expr::BytesLiteral(_)
            | Expr::NumberLiteral(_)
            | Expr::BooleanLiteral(_)
            | Expr::NoneLiteral(_)
            | Expr::EllipsisLiteral(_) => Flow::new(),
            Expr::Named(n) => {
                let mut out = self.derive(&n.value, d);
                out.plain(&self.named(&n.target));
                out
            }
            Expr::Await(a) => self.derive(&a.value, d),
            Expr::Starred(s) => self.derive(&s.value, d),
            // The value is one of them.
            Expr::BoolOp(b) => self.derive_all(&b.values, d),
            Expr::If(x) => {
                let mut out = self.derive(&x.body, d).or_foreign(&x.body);
                out.union(&self.derive(&x.orelse, d).or_foreign(&x.orelse));
                out.plain(&self.named(&x.test));
                out
            }
            // Containers of paths: their items (`for q in [a, b]`).
            Expr::List(x) => self.derive_all(&x.elts, d),
            Expr::Tuple(x) => self.derive_all(&x.elts, d),
            Expr::Set(x) => self.derive_all(&x.elts, d),
            Expr::ListComp(x) => self.derive_comp(&x.elt, &x.generators, d),
            Expr::SetComp(x) => self.derive_comp(&x.elt, &x.generators, d),
            Expr::Generator(x) => self.derive_comp(&x.elt, &x.generators, d),
            Expr::BinOp(b) if matches!(b.op, Operator::Div) => {
                let mut acc = self.derive(&b.left, d);
                self.add_segment(&mut acc, &b.right, d);
                acc
            }
            // `p + ".bak"` escapes; `os.path.basename(p) + ".bak"` is still a bare name.
            Expr::BinOp(b) if matches!(b.op, Operator::Add) => {
                let l = self.derive(&b.left, d);
                let r = self.derive(&b.right, d);
                let name_like = self.name_part(&b.left, &l) && self.name_part(&b.right, &r);
                // `name + ".md"`: the parameter itself with name text added.
                let suffix = |v: &Flow, text: &Expr| {
                    raw_param(v) && self.literal(text).is_some_and(|t| suffix_text(&t))
                };
                if suffix(&l, &b.right) || suffix(&r, &b.left) {
                    let mut out = Flow::new();
                    add(&mut out.all, &l.all);
                    add(&mut out.all, &r.all);
                    for side in [&l, &r] {
                        add(&mut out.suffixed, &side.inside);
                        add(&mut out.suffixed, &side.suffixed);
                    }
                    return out;
                }
                let mut out = l;
                out.union(&r);
                if !name_like {
                    out.escape();
                }
                out
            }
            Expr::FString(f) => self.derive_fstring(&f.value, d),
            Expr::Attribute(a) => match a.attr.as_str() {
                "name" | "stem" => self.derive(&a.value, d).bared(),
                "path" if self.kind_of(&a.value, 0) == Some(Kind::DirEntry) => {
                    self.derive(&a.value, d)
                }
                _ => self.escaped_flow(e),
            },
            Expr::Call(c) => self.derive_call(c, e, d),
            _ => self.escaped_flow(e),
        }
    }

    /// Whether an operand of a concatenation keeps a name a name: a literal without separators
    /// or `..`, or a value in which no parameter's path is (a bare name, no parameter at all).
    fn name_part(&self, e: &Expr, fl: &Flow) -> bool {
        match self.literal(e) {
            Some(t) => name_text(&t),
            None => fl.inside.is_empty() && fl.esc.is_empty(),
        }
    }

    fn derive_all(&self, items: &[Expr], d: usize) -> Flow {
        let mut out = Flow::new();
        for x in items {
            out.union(&self.derive(x, d).or_foreign(x));
        }
        out
    }

    /// `[elt for target in iter if cond]`: the element; the rest only steers.
    fn derive_comp(&self, elt: &Expr, gens: &[Comprehension], d: usize) -> Flow {
        let mut out = self.derive(elt, d);
        for g in gens {
            out.plain(&self.named(&g.target));
            out.plain(&self.named(&g.iter));
            for i in &g.ifs {
                out.plain(&self.named(i));
            }
        }
        out
    }

    /// Joins `seg` under `acc`: a literal in it with `..` or an absolute one escapes `acc`.
    fn add_segment(&self, acc: &mut Flow, seg: &Expr, d: usize) {
        if self.discards(seg) {
            acc.escape();
        }
        let s = self.derive(seg, d);
        acc.join(&s);
    }

    /// `base / s1 / s2 …`; without a base the first segment is it (`os.path.join(p, …)`).
    fn derive_join(&self, base: Option<&Expr>, segs: &[Expr], d: usize) -> Flow {
        let (mut acc, rest) = match base {
            Some(b) => (self.derive(b, d), segs),
            None => match segs.split_first() {
                Some((first, rest)) => (self.derive(first, d), rest),
                None => return Flow::new(),
            },
        };
        for s in rest {
            self.add_segment(&mut acc, s, d);
        }
        acc
    }

    /// Whether a segment may lead out of what it is joined under: a literal anywhere in it
    /// (also a name bound to one) with `..`, or one starting with an absolute path.
    fn discards(&self, seg: &Expr) -> bool {
        let mut stack: Vec<(&Expr, usize)> = vec![(seg, 0)];
        let mut kids: Vec<&Expr> = Vec::new();
        while let Some((cur, d)) = stack.pop() {
            match cur {
                Expr::StringLiteral(s) if leaves(s.value.to_str(), true) => return true,
                Expr::StringLiteral(_) => {}
                Expr::Name(_) if self.literal(cur).is_some_and(|t| leaves(&t, true)) => {
                    return true
                }
                Expr::Name(_) => {}
                Expr::FString(f) => {
                    let mut first = true;
                    for part in f.value.iter() {
                        match part {
                            FStringPart::Literal(s) => {
                                if leaves(&s.value, first) {
                                    return true;
                                }
                                first = false;
                            }
                            FStringPart::FString(x) => {
                                for el in x.elements.iter() {
                                    if let InterpolatedStringElement::Literal(l) = el {
                                        if leaves(&l.value, first) {
                                            return true;
                                        }
                                    }
                                    first = false;
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
            if d >= MAX_DEPTH {
                continue;
            }
            kids.clear();
            children(cur, &mut kids);
            for k in kids.drain(..) {
                stack.push((k, d + 1));
            }
        }
        false
    }

    /// `f"{p}/x"` keeps p's containment; an interpolation followed by anything but `/` (or the
    /// end), converted, formatted, or after text not ending in `/` (other than at the start)
    /// escapes; one after `/` is a segment of what comes before; text with `..` escapes all
    /// before it.
    fn derive_fstring(&self, value: &FStringValue, d: usize) -> Flow {
        let mut pieces: Vec<Piece<'_>> = Vec::new();
        for part in value.iter() {
            match part {
                FStringPart::Literal(s) => text_piece(&mut pieces, &s.value),
                FStringPart::FString(f) => {
                    for el in f.elements.iter() {
                        match el {
                            InterpolatedStringElement::Literal(l) => {
                                text_piece(&mut pieces, &l.value);
                            }
                            InterpolatedStringElement::Interpolation(i) => {
                                pieces.push(Piece::Value(i));
                            }
                        }
                    }
                }
            }
        }
        let flows: Vec<Flow> = pieces
            .iter()
            .map(|p| match p {
                Piece::Text(_) => Flow::new(),
                Piece::Value(v) => self.derive(&v.expression, d),
            })
            .collect();
        // A name made of a bare name (`f"{Path(p).stem}.bak"`) stays a bare name.
        let name_like = pieces.iter().zip(&flows).all(|(p, fl)| match p {
            Piece::Text(t) => name_text(t),
            Piece::Value(_) => fl.inside.is_empty() && fl.esc.is_empty(),
        });
        if name_like {
            let mut out = Flow::new();
            for fl in &flows {
                out.union(fl);
            }
            return out;
        }
        // `f"{key}.csv"`, `f"{a}_{b}.json"`: parameters themselves with name text between.
        let suffixed = pieces.iter().zip(&flows).all(|(p, fl)| match p {
            Piece::Text(t) => suffix_text(t),
            Piece::Value(v) => {
                raw_param(fl)
                    && v.debug_text.is_none()
                    && v.format_spec.is_none()
                    && matches!(v.conversion, ConversionFlag::None | ConversionFlag::Str)
            }
        }) && pieces.iter().any(|p| matches!(p, Piece::Text(_)));
        if suffixed {
            let mut out = Flow::new();
            for fl in &flows {
                add(&mut out.all, &fl.all);
                add(&mut out.suffixed, &fl.inside);
                add(&mut out.suffixed, &fl.suffixed);
            }
            return out;
        }
        let mut acc = Flow::new();
        for (i, (piece, mut fl)) in pieces.iter().zip(flows).enumerate() {
            let v = match piece {
                Piece::Text(t) => {
                    if t.contains("..") {
                        acc.escape();
                    }
                    continue;
                }
                Piece::Value(v) => *v,
            };
            let followed = match pieces.get(i + 1) {
                None => true,
                Some(Piece::Text(t)) => t.starts_with(['/', '\\']),
                Some(Piece::Value(_)) => false,
            };
            let as_is = v.debug_text.is_none()
                && v.format_spec.is_none()
                && matches!(v.conversion, ConversionFlag::None | ConversionFlag::Str);
            if !followed || !as_is {
                fl.escape();
            }
            match i.checked_sub(1).and_then(|j| pieces.get(j)) {
                None => acc.union(&fl),
                Some(Piece::Text(t)) if t.ends_with(['/', '\\']) => acc.join(&fl),
                Some(_) => {
                    fl.escape();
                    acc.union(&fl);
                }
            }
        }
        acc
    }

    fn derive_call(&self, c: &ExprCall, e: &Expr, d: usize) -> Flow {
        let args = Args::of(&c.arguments);
        if let Expr::Name(n) = &*c.func {
            if self.module_function(n.id.as_str()).is_some() {
                return self.escaped_flow(e);
            }
        }
        if let Resolved::Qualified(q) = self.resolve(&c.func) {
            if let Some(out) = self.derive_qualified(&q, args, d) {
                return out;
            }
        }
        if let Expr::Attribute(a) = &*c.func {
            if !self.module_ish(&a.value) {
                if let Some(out) = self.derive_method(&a.value, a.attr.as_str(), args, d) {
                    return out;
                }
            }
        }
        self.escaped_flow(e)
    }

    /// Calls by qualified name that keep a path inside (or take a bare name from it); `None`
    /// for anything else.
    fn derive_qualified(&self, q: &str, args: Args<'_>, d: usize) -> Option<Flow> {
        let fixed = !args.has_dynamic();
        match q {
            "pathlib.Path"
            | "pathlib.PurePath"
            | "pathlib.PosixPath"
            | "pathlib.WindowsPath"
            | "pathlib.PurePosixPath"
            | "pathlib.PureWindowsPath"
            | "anyio.Path"
            | "trio.Path"
            | "os.path.join"
            | "posixpath.join"
            | "ntpath.join" => {
                if !fixed || !args.kw.is_empty() {
                    return None;
                }
                Some(self.derive_join(None, args.pos, d))
            }
            "str" | "builtins.str" | "os.fspath" | "os.fsencode" | "os.fsdecode" => {
                match args.pos {
                    [x] if fixed && args.kw.is_empty() => Some(self.derive(x, d)),
                    _ => None,
                }
            }
            "os.path.basename" | "posixpath.basename" | "ntpath.basename" => match args.pos {
                [x] if fixed && args.kw.is_empty() => Some(self.derive(x, d).bared()),
                _ => None,
            },
            "os.listdir" | "os.scandir" => {
                if !fixed || args.pos.len() + args.kw.len() > 1 {
                    return None;
                }
                let out = match args.get(0, &["path"]) {
                    Some(x) => self.derive(x, d),
                    None => Flow::new(),
                };
                Some(if q == "os.listdir" { out.bared() } else { out })
            }
            "glob.glob" | "glob.iglob" => {
                if !fixed {
                    return None;
                }
                let mut out = match args.get(0, &["pathname"]) {
                    Some(x) => self.derive(x, d),
                    None => Flow::new(),
                };
                if let Some(r) = args.keyword(&["root_dir"]) {
                    // Relative to root_dir: bare names.
                    out.union(&self.derive(r, d));
                    out = out.bared();
                }
                self.plain_rest(&mut out, args, 1, &["pathname", "root_dir"]);
                Some(out)
            }
            "sorted" | "list" | "tuple" | "set" | "frozenset" | "reversed" | "iter"
            | "enumerate" | "zip" => {
                let mut out = self.derive_all(args.pos, d);
                self.plain_rest(&mut out, args, args.pos.len(), &[]);
                Some(out)
            }
            _ => None,
        }
    }

    /// Path methods that keep the receiver's containment; `None` for anything else.
    fn derive_method(&self, recv: &Expr, m: &str, args: Args<'_>, d: usize) -> Option<Flow> {
        match m {
            "joinpath" if !args.has_dynamic() && args.kw.is_empty() => {
                Some(self.derive_join(Some(recv), args.pos, d))
            }
            "glob" | "rglob" if !args.has_dynamic() => {
                let mut acc = self.derive(recv, d);
                if let Some(p) = args.get(0, &["pattern"]) {
                    self.add_segment(&mut acc, p, d);
                }
                self.plain_rest(&mut acc, args, 1, &["pattern"]);
                Some(acc)
            }
            "iterdir" | "as_posix" | "__fspath__" if args.pos.is_empty() && args.kw.is_empty() => {
                Some(self.derive(recv, d))
            }
            _ => None,
        }
    }

    /// Arguments that only steer a call (flags, `key=`): positional ones from `from` on, and
    /// keywords not in `skip`.
    fn plain_rest(&self, out: &mut Flow, args: Args<'_>, from: usize, skip: &[&str]) {
        for a in args.pos.iter().skip(from) {
            out.plain(&self.named(a));
        }
        for k in args.kw {
            if !k.arg.as_ref().is_some_and(|n| skip.contains(&n.as_str())) {
                out.plain(&self.named(&k.value));
            }
        }
    }

    /// `os.walk(p)`/`os.fwalk(p)`/`Path(p).walk()`: the flow of the directory walked, and the
    /// kind of the directories it yields.
    fn walk_root(&self, e: &Expr) -> Option<(Flow, Option<Kind>)> {
        let Expr::Call(c) = e else {
            return None;
        };
        let args = Args::of(&c.arguments);
        if let Resolved::Qualified(q) = self.resolve(&c.func) {
            if q == "os.walk" || q == "os.fwalk" {
                let top = match args.get(0, &["top"]) {
                    Some(x) => self.flow_of(x),
                    None => self.dynamic_flow(args).escaped(),
                };
                return Some((top, None));
            }
        }
        if let Expr::Attribute(a) = &*c.func {
            if a.attr.as_str() == "walk" && self.kind_of(&a.value, 0) == Some(Kind::Path) {
                return Some((self.flow_of(&a.value), Some(Kind::Path)));
            }
        }
        None
    }

    // -- kinds -------------------------------------------------------------------------------

    fn kind_of(&self, e: &Expr, depth: usize) -> Option<Kind> {
        if depth > KIND_DEPTH {
            return None;
        }
        let d = depth + 1;
        match e {
            Expr::Name(n) => {
                let id = n.id.as_str();
                if self.is_local(id) {
                    return self.kinds.get(id).copied();
                }
                if self.local_imports.contains_key(id) || self.m.imports.get(id).is_some() {
                    return match self.resolve(e) {
                        Resolved::Qualified(q) if is_environ(&q) => Some(Kind::Environ),
                        _ => None,
                    };
                }
                self.m.global_kinds.get(id).copied()
            }
            Expr::Attribute(a) => {
                if let Resolved::Qualified(q) = self.resolve(e) {
                    if is_environ(&q) {
                        return Some(Kind::Environ);
                    }
                }
                // `self.cache` where a method did `self.cache = Cache(…)`.
                if let Some(Kind::Object(ci)) = self.kind_of(&a.value, d) {
                    let attr = a.attr.as_str();
                    return self
                        .in_hierarchy(ci, |c| c.fields.get(attr).copied())
                        .and_then(|name| self.m.class_by_name.get(name))
                        .map(|c| Kind::Object(*c));
                }
                if a.attr.as_str() == "parent" && self.kind_of(&a.value, d) == Some(Kind::Path) {
                    return Some(Kind::Path);
                }
                None
            }
            Expr::Subscript(s) => match &*s.value {
                Expr::Attribute(a)
                    if a.attr.as_str() == "parents"
                        && self.kind_of(&a.value, d) == Some(Kind::Path) =>
                {
                    Some(Kind::Path)
                }
                _ => None,
            },
            Expr::Call(c) => {
                let args = Args::of(&c.arguments);
                if let Some(ci) = self.module_class(&c.func) {
                    return Some(Kind::Object(ci));
                }
                // `make()` / `Store.open(…)`: a function or method returning an instance.
                let made = match &*c.func {
                    Expr::Name(n) => self.module_function(n.id.as_str()),
                    Expr::Attribute(a) => match self.module_class(&a.value) {
                        Some(ci) => self.method_of(ci, a.attr.as_str()),
                        None => match self.kind_of(&a.value, d) {
                            Some(Kind::Object(ci)) => self.method_of(ci, a.attr.as_str()),
                            _ => None,
                        },
                    },
                    _ => None,
                };
                if let Some(ci) = made.and_then(|f| self.m.returns.get(&f)) {
                    return Some(Kind::Object(*ci));
                }
                // `CACHES.setdefault(k, Cache(r))`, `d.get(k, Cache(r))`: the default's kind.
                if let Expr::Attribute(a) = &*c.func {
                    if matches!(a.attr.as_str(), "setdefault" | "get" | "pop") {
                        if let Some(Kind::Object(ci)) =
                            args.get(1, &["default"]).and_then(|x| self.kind_of(x, d))
                        {
                            return Some(Kind::Object(ci));
                        }
                    }
                }
                if let Resolved::Qualified(q) = self.resolve(&c.func) {
                    if q == "contextlib.closing" {
                        return args.pos.first().and_then(|x| self.kind_of(x, d));
                    }
                    if let Some(k) = self.ctor_kind(&q, args) {
                        return Some(k);
                    }
                }
                if let Expr::Attribute(a) = &*c.func {
                    let rk = self.kind_of(&a.value, d);
                    return match (rk, a.attr.as_str()) {
                        (
                            Some(Kind::Path),
                            "with_suffix" | "with_name" | "with_stem" | "joinpath" | "resolve"
                            | "absolute" | "expanduser" | "relative_to" | "with_segments"
                            | "readlink",
                        ) => Some(Kind::Path),
                        (
                            Some(Kind::DbConn(l)),
                            "cursor" | "execute" | "executemany" | "executescript",
                        ) => Some(Kind::DbCursor(l)),
                        (Some(Kind::DbCursor(l)), "execute" | "executemany" | "executescript") => {
                            Some(Kind::DbCursor(l))
                        }
                        (_, "wrap_socket") => Some(Kind::Socket),
                        _ => None,
                    };
                }
                None
            }
            Expr::BinOp(b) if matches!(b.op, Operator::Div) => {
                if self.kind_of(&b.left, d) == Some(Kind::Path)
                    || self.kind_of(&b.right, d) == Some(Kind::Path)
                {
                    Some(Kind::Path)
                } else {
                    None
                }
            }
            Expr::Await(a) => self.kind_of(&a.value, d),
            Expr::Named(n) => self.kind_of(&n.value, d),
            // `s or Store(p)`, `a if c else Store(p)`: an instance of the module's class is
            // assumed when one of them is.
            Expr::BoolOp(b) => b.values.iter().find_map(|v| match self.kind_of(v, d) {
                Some(k @ Kind::Object(_)) => Some(k),
                _ => None,
            }),
            Expr::If(x) => {
                [&x.body, &x.orelse]
                    .into_iter()
                    .find_map(|v| match self.kind_of(v, d) {
                        Some(k @ Kind::Object(_)) => Some(k),
                        _ => None,
                    })
            }
            _ => None,
        }
    }

    fn ctor_kind(&self, q: &str, args: Args<'_>) -> Option<Kind> {
        Some(match q {
            "pathlib.Path"
            | "pathlib.PurePath"
            | "pathlib.PosixPath"
            | "pathlib.WindowsPath"
            | "pathlib.PurePosixPath"
            | "pathlib.PureWindowsPath"
            | "pathlib.Path.home"
            | "pathlib.Path.cwd"
            | "anyio.Path"
            | "trio.Path" => Kind::Path,
            "requests.Session" | "requests.session" | "requests.sessions.Session" => {
                Kind::Http("requests.Session")
            }
            "httpx.Client" => Kind::Http("httpx.Client"),
            "httpx.AsyncClient" => Kind::Http("httpx.AsyncClient"),
            "aiohttp.ClientSession" => Kind::Http("aiohttp.ClientSession"),
            "urllib3.PoolManager" => Kind::Http("urllib3.PoolManager"),
            "socket.socket" | "socket.create_connection" | "socket.fromfd" | "ssl.wrap_socket" => {
                Kind::Socket
            }
            "http.client.HTTPConnection" | "http.client.HTTPSConnection" => Kind::HttpConn,
            "ftplib.FTP" | "ftplib.FTP_TLS" => Kind::Ftp,
            "telnetlib.Telnet" => Kind::Telnet,
            "tarfile.open" | "tarfile.TarFile" | "tarfile.TarFile.open" | "zipfile.ZipFile" => {
                Kind::Archive
            }
            "smtplib.SMTP" | "smtplib.SMTP_SSL" | "smtplib.LMTP" => Kind::Smtp,
            "urllib.request.Request" => {
                return self.request_writes(args).then_some(Kind::RequestWrite);
            }
            _ => return db_connect(q).map(Kind::DbConn),
        })
    }

    /// `urllib.request.Request(url, data, ..., method=...)` sends something.
    fn request_writes(&self, args: Args<'_>) -> bool {
        let data = args
            .get(1, &["data"])
            .is_some_and(|e| !e.is_none_literal_expr());
        let method = args.get(5, &["method"]).is_some_and(|e| {
            !e.is_none_literal_expr()
                && !self.literal(e).is_some_and(|s| {
                    s.trim().eq_ignore_ascii_case("GET") || s.trim().eq_ignore_ascii_case("HEAD")
                })
        });
        data || method
    }

    /// `requests.request(method, ...)`: a literal GET/HEAD/OPTIONS reads, anything else writes.
    fn method_effect(&self, method: Option<&Expr>) -> PyEffect {
        match method.and_then(|e| self.literal(e)) {
            Some(s)
                if ["GET", "HEAD", "OPTIONS"]
                    .iter()
                    .any(|m| s.trim().eq_ignore_ascii_case(m)) =>
            {
                E::NetRead
            }
            _ => E::NetWrite,
        }
    }

    /// What `for x in <e>` binds x to (`p.iterdir()` yields paths).
    fn iter_kind(&self, e: &Expr) -> Option<Kind> {
        if let Expr::Call(c) = e {
            if let Expr::Attribute(a) = &*c.func {
                let m = a.attr.as_str();
                if matches!(m, "iterdir" | "glob" | "rglob")
                    && !self.module_ish(&a.value)
                    && (m != "glob" || self.kind_of(&a.value, 0) == Some(Kind::Path))
                {
                    return Some(Kind::Path);
                }
            }
            if let Resolved::Qualified(q) = self.resolve(&c.func) {
                if q == "os.scandir" {
                    return Some(Kind::DirEntry);
                }
            }
        }
        if let Expr::Name(n) = e {
            return self.elem_kinds.get(n.id.as_str()).copied();
        }
        // `for c in [Cache(a), Cache(b)]`, `for c in (Cache(r) for r in roots)`.
        let items: Vec<&Expr> = match e {
            Expr::List(x) => x.elts.iter().collect(),
            Expr::Tuple(x) => x.elts.iter().collect(),
            Expr::Set(x) => x.elts.iter().collect(),
            Expr::ListComp(x) => vec![&*x.elt],
            Expr::SetComp(x) => vec![&*x.elt],
            Expr::Generator(x) => vec![&*x.elt],
            _ => Vec::new(),
        };
        let kinds: Vec<Option<Kind>> = items.iter().map(|x| self.kind_of(x, 0)).collect();
        match kinds.first() {
            Some(Some(k @ Kind::Object(_))) if kinds.iter().all(|o| o.as_ref() == Some(k)) => {
                Some(*k)
            }
            _ => None,
        }
    }

    /// Whether an open mode may write: a literal with `w a x +`, or anything not a literal.
    fn mode_writes(&self, mode: Option<&Expr>, args: Args<'_>) -> bool {
        match mode {
            None => args.has_dynamic(),
            Some(e) => match self.literal(e) {
                Some(s) => s.len() > 16 || s.contains(['w', 'a', 'x', '+']),
                None => true,
            },
        }
    }

    // -- binding -----------------------------------------------------------------------------

    fn bind_name(&mut self, name: &str, fl: &Flow) {
        union(self.flow.entry(name.to_string()).or_default(), fl);
        self.set_const(name, None);
    }

    fn assign(&mut self, target: &Expr, value: &Expr, depth: usize) {
        let mut fl = self.flow_of(value);
        let (ts, vs) = (elts(target), elts(value));
        if !ts.is_empty()
            && ts.len() == vs.len()
            && !ts.iter().chain(vs.iter()).any(Expr::is_starred_expr)
        {
            // `a, b = Path(x), y`: kinds pair up; flows are the union (and each keeps whether
            // its own value may be a path no parameter names).
            for (t, v) in ts.iter().zip(vs.iter()) {
                if let Some(g) = self.draws(v, 0) {
                    self.mark_drawn(t, &g);
                }
                let k = self.kind_of(v, 0);
                let c = self.literal(v);
                let mut own = fl.clone();
                own.foreign = self.flow_of(v).or_foreign(v).foreign;
                self.bind(t, &own, k, c, depth + 1);
            }
            return;
        }
        fl = fl.or_foreign(value);
        let k = self.kind_of(value, 0);
        let c = self.literal(value);
        if let (Expr::Name(n), Some(elem @ Kind::Object(_))) = (target, self.iter_kind(value)) {
            self.elem_kinds.insert(n.id.to_string(), elem);
        }
        if self.draws(value, 0).is_none() {
            // Bound to something else too: a call of it is not only of an item.
            let mut names = vec![target];
            while let Some(t) = names.pop() {
                match t {
                    Expr::Name(n) => {
                        self.mixed.insert(n.id.to_string());
                    }
                    Expr::Tuple(_) | Expr::List(_) => names.extend(elts(t).iter()),
                    Expr::Starred(x) => names.push(&x.value),
                    _ => {}
                }
            }
        }
        if let Some(g) = self.draws(value, 0) {
            match target {
                // `fn, help_text = COMMANDS[k]`: each name may hold an item (or part of one).
                Expr::Name(_) | Expr::Tuple(_) | Expr::List(_) | Expr::Starred(_) => {
                    self.mark_drawn(target, &g)
                }
                // `self.h = G[k]`: kept where forge does not follow it.
                _ => {
                    let line = self.line(value.start());
                    self.mentioned_container(&g, line);
                }
            }
        }
        self.bind(target, &fl, k, c, depth);
    }

    fn bind(
        &mut self,
        target: &Expr,
        fl: &Flow,
        kind: Option<Kind>,
        konst: Option<Rc<str>>,
        depth: usize,
    ) {
        if depth > MAX_DEPTH {
            self.too_deep(target.start());
            return;
        }
        match target {
            Expr::Name(n) => {
                let id = n.id.as_str();
                union(self.flow.entry(id.to_string()).or_default(), fl);
                if let Some(k) = kind {
                    self.kinds.insert(id.to_string(), k);
                }
                self.set_const(id, konst);
            }
            Expr::Tuple(t) => {
                for e in &t.elts {
                    self.bind(e, fl, None, None, depth + 1);
                }
            }
            Expr::List(l) => {
                for e in &l.elts {
                    self.bind(e, fl, None, None, depth + 1);
                }
            }
            Expr::Starred(s) => self.bind(&s.value, fl, None, None, depth + 1),
            Expr::Subscript(s) => {
                if self.kind_of(&s.value, 0) == Some(Kind::Environ) {
                    let params = self.flow_of(&s.slice);
                    let line = self.line(target.start());
                    self.fact(E::EnvWrite, "os.environ.__setitem__", line, params);
                }
                self.absorb(&s.value, fl);
            }
            Expr::Attribute(a) => {
                if self.kind_of(target, 0) == Some(Kind::Environ) {
                    let line = self.line(target.start());
                    self.fact(E::EnvWrite, "os.environ", line, Flow::new());
                }
                self.absorb(&a.value, fl);
            }
            _ => {}
        }
    }

    /// `x op= v`: `x /= v` joins v under x, `xs += [...]` adds items, anything else
    /// (`p += ".bak"`) derives a new value from both.
    fn aug_flow(&self, target: &Expr, op: Operator, value: &Expr) -> Flow {
        let mut cur = match target {
            Expr::Name(n) => self.flow.get(n.id.as_str()).cloned().unwrap_or_default(),
            _ => Flow::new(),
        };
        let v = self.flow_of(value);
        match op {
            Operator::Div => {
                if self.discards(value) {
                    cur.escape();
                }
                cur.join(&v);
            }
            Operator::Add
                if matches!(
                    value,
                    Expr::List(_) | Expr::Tuple(_) | Expr::ListComp(_) | Expr::Generator(_)
                ) =>
            {
                cur.union(&v);
            }
            // `name += ".md"`: the parameter with name text added (as `name + ".md"`); what
            // the local held before stays possible too.
            Operator::Add
                if raw_param(&cur) && self.literal(value).is_some_and(|t| suffix_text(&t)) =>
            {
                let inside = cur.inside.clone();
                add(&mut cur.suffixed, &inside);
            }
            _ => {
                cur.union(&v);
                cur.escape();
            }
        }
        cur
    }

    /// `for target in iter`: the target gets what iter yields. `os.walk(p)` yields
    /// `(dirpath, dirnames, filenames)`: the first inside p, the others bare names.
    fn bind_iter(&mut self, target: &Expr, iter: &Expr, depth: usize) {
        // `for h in HANDLERS`, `for name, f in COMMANDS.items()`: each name may hold an item.
        if let Some(g) = self.draws(iter, 1) {
            self.mark_drawn(target, &g);
        }
        if let Some((mut base, kind)) = self.walk_root(iter) {
            let extra = self.named(iter);
            let mut names = base.clone().bared();
            base.plain(&extra);
            names.plain(&extra);
            let ts = elts(target);
            if !ts.is_empty() && !ts.iter().any(Expr::is_starred_expr) {
                for (i, t) in ts.iter().enumerate() {
                    if i == 0 {
                        self.bind(t, &base, kind, None, depth + 1);
                    } else {
                        self.bind(t, &names, None, None, depth + 1);
                    }
                }
            } else {
                base.union(&names);
                self.bind(target, &base, None, None, depth);
            }
            return;
        }
        let fl = self.flow_of(iter);
        let k = self.iter_kind(iter);
        self.bind(target, &fl, k, None, depth);
    }

    /// `d[k] = v`, `obj.attr = v`: the local container now derives from v too.
    fn absorb(&mut self, base: &Expr, fl: &Flow) {
        let mut cur = base;
        loop {
            match cur {
                Expr::Subscript(s) => cur = &s.value,
                Expr::Attribute(a) => cur = &a.value,
                Expr::Name(n) => {
                    if let Some(set) = self.flow.get_mut(n.id.as_str()) {
                        union(set, fl);
                    }
                    return;
                }
                _ => return,
            }
        }
    }

    /// Sub-expressions of an assignment target (`d[f(x)] = ...`). Setting an attribute of a
    /// class of the module (`C.__eq__ = _eq`) calls none of its methods.
    fn target_exprs(&mut self, t: &Expr, depth: usize) {
        if let Expr::Attribute(a) = t {
            if self.module_class(&a.value).is_some() {
                return;
            }
            // Set, not taken: the object is what is evaluated.
            if !matches!(&*a.value, Expr::Name(_)) {
                self.expr(&a.value, depth);
            }
            return;
        }
        // `COMMANDS[name] = f`: a store into a module-level container calls nothing in it.
        if let Expr::Subscript(x) = t {
            if matches!(&*x.value, Expr::Name(n) if self.draws(&x.value, 0).as_deref() == Some(n.id.as_str()))
            {
                self.expr(&x.slice, depth);
                return;
            }
        }
        if !matches!(t, Expr::Name(_)) {
            self.expr(t, depth);
        }
    }

    fn shadow(&mut self, params: Option<&Parameters>) -> Vec<Shadowed> {
        let mut saved = Vec::new();
        if let Some(p) = params {
            for name in param_names(p) {
                let flow = self.flow.insert(name.to_string(), Flow::new());
                let kind = self.kinds.remove(name);
                let konst = self.consts.remove(name);
                let alias = self.aliases.remove(name);
                saved.push(Shadowed {
                    name: name.to_string(),
                    flow,
                    kind,
                    konst,
                    alias,
                });
            }
        }
        saved
    }

    fn restore(&mut self, saved: Vec<Shadowed>) {
        for s in saved.into_iter().rev() {
            match s.flow {
                Some(f) => {
                    self.flow.insert(s.name.clone(), f);
                }
                None => {
                    self.flow.remove(&s.name);
                }
            }
            match s.kind {
                Some(k) => {
                    self.kinds.insert(s.name.clone(), k);
                }
                None => {
                    self.kinds.remove(&s.name);
                }
            }
            match s.alias {
                Some(a) => {
                    self.aliases.insert(s.name.clone(), a);
                }
                None => {
                    self.aliases.remove(&s.name);
                }
            }
            match s.konst {
                Some(c) => {
                    self.consts.insert(s.name, c);
                }
                None => {
                    self.consts.remove(&s.name);
                }
            }
        }
    }

    fn note_db(&mut self, module: &str) {
        if self.db.is_none() {
            self.db = db_lib_of(module);
        }
    }

    // -- statements --------------------------------------------------------------------------

    fn stmts(&mut self, body: &[Stmt], depth: usize) {
        if depth > MAX_DEPTH {
            if let Some(s) = body.first() {
                self.too_deep(s.start());
            }
            return;
        }
        for s in body {
            self.stmt(s, depth);
        }
    }

    fn stmt(&mut self, s: &Stmt, depth: usize) {
        let d = depth + 1;
        match s {
            Stmt::FunctionDef(f) => {
                for dec in f.decorator_list.iter() {
                    self.expr(&dec.expression, d);
                }
                for pw in f.parameters.iter_non_variadic_params() {
                    if let Some(v) = pw.default() {
                        self.expr(v, d);
                    }
                }
                self.bind_name(f.name.as_str(), &Flow::new());
                let saved = self.shadow(Some(&*f.parameters));
                self.stmts(&f.body, d);
                self.restore(saved);
            }
            Stmt::ClassDef(c) => {
                for dec in c.decorator_list.iter() {
                    self.expr(&dec.expression, d);
                }
                self.class_statement(c, d);
                // At import the class is the module's own, not a local shadowing it.
                if !self.import_time {
                    self.bind_name(c.name.as_str(), &Flow::new());
                }
                self.stmts(&c.body, d);
            }
            Stmt::Return(r) => {
                if let Some(v) = r.value.as_deref() {
                    self.expr(v, d);
                    // `return list(G)`, `return (G[k], 1)`: the caller gets items.
                    if let Some(g) = self.draws(v, 0) {
                        let line = self.line(v.start());
                        self.mentioned_container(&g, line);
                    }
                }
            }
            Stmt::Delete(x) => {
                for t in &x.targets {
                    // `del bz2`: unbinding a name passes nothing on.
                    if !matches!(t, Expr::Name(_)) {
                        self.expr(t, d);
                    }
                    if let Expr::Subscript(sub) = t {
                        if self.kind_of(&sub.value, 0) == Some(Kind::Environ) {
                            let params = self.flow_of(&sub.slice);
                            let line = self.line(t.start());
                            self.fact(E::EnvWrite, "os.environ.__delitem__", line, params);
                        }
                    }
                }
            }
            Stmt::Assign(a) => {
                match a.targets.as_slice() {
                    // `f = _helper`: calls of `f` are calls of `_helper`.
                    [Expr::Name(n)] if matches!(&*a.value, Expr::Name(v) if self.module_function(v.id.as_str()).is_some()) => {
                        if let Expr::Name(v) = &*a.value {
                            self.aliases
                                .entry(n.id.to_string())
                                .or_default()
                                .insert(format!("{FN}{}", v.id.as_str()));
                        }
                    }
                    // `rm = os.remove`: calls of `rm` are calls of `os.remove`.
                    [Expr::Name(n)] if aliasable(&a.value) && self.module_ish(&a.value) => {
                        for q in self.refs_of(&a.value) {
                            self.aliases.entry(n.id.to_string()).or_default().insert(q);
                        }
                        if let Expr::Call(c) = &*a.value {
                            self.expr_call(c, d, true);
                        }
                    }
                    _ if self.import_time && inert(&a.value, 0) => {}
                    _ => self.expr(&a.value, d),
                }
                for t in &a.targets {
                    self.target_exprs(t, d);
                    self.assign(t, &a.value, d);
                }
            }
            Stmt::AugAssign(a) => {
                self.expr(&a.value, d);
                self.target_exprs(&a.target, d);
                let fl = self.aug_flow(&a.target, a.op, &a.value);
                self.bind(&a.target, &fl, None, None, d);
            }
            Stmt::AnnAssign(a) => {
                self.target_exprs(&a.target, d);
                match a.value.as_deref() {
                    Some(v) => {
                        if !(self.import_time && inert(v, 0)) {
                            self.expr(v, d);
                        }
                        self.assign(&a.target, v, d);
                    }
                    None => {
                        if let Expr::Name(n) = &*a.target {
                            self.bind_name(n.id.as_str(), &Flow::new());
                        }
                    }
                }
            }
            Stmt::For(f) => {
                self.expr(&f.iter, d);
                self.target_exprs(&f.target, d);
                self.bind_iter(&f.target, &f.iter, d);
                self.stmts(&f.body, d);
                self.stmts(&f.orelse, d);
            }
            Stmt::While(w) => {
                self.expr(&w.test, d);
                self.stmts(&w.body, d);
                self.stmts(&w.orelse, d);
            }
            Stmt::If(i) => {
                self.expr(&i.test, d);
                self.stmts(&i.body, d);
                for c in &i.elif_else_clauses {
                    if let Some(t) = &c.test {
                        self.expr(t, d);
                    }
                    self.stmts(&c.body, d);
                }
            }
            Stmt::With(w) => {
                for item in &w.items {
                    if item.optional_vars.is_none() {
                        self.entered = Some(item.context_expr.start());
                    }
                    self.expr(&item.context_expr, d);
                    // `with Lock(p):` runs `__enter__` and `__exit__`.
                    if let Some(Kind::Object(ci)) = self.kind_of(&item.context_expr, 0) {
                        let line = self.line(item.context_expr.start());
                        let none = Args { pos: &[], kw: &[] };
                        self.method_site(ci, "__enter__", none, line, true);
                        self.method_site(ci, "__exit__", none, line, true);
                    }
                    if let Some(v) = item.optional_vars.as_deref() {
                        let fl = self.flow_of(&item.context_expr);
                        let k = self.kind_of(&item.context_expr, 0);
                        self.target_exprs(v, d);
                        self.bind(v, &fl, k, None, d);
                    }
                }
                self.stmts(&w.body, d);
            }
            Stmt::Match(m) => {
                self.expr(&m.subject, d);
                let fl = self.flow_of(&m.subject);
                for case in &m.cases {
                    self.pattern(&case.pattern, &fl, d);
                    if let Some(g) = case.guard.as_deref() {
                        self.expr(g, d);
                    }
                    self.stmts(&case.body, d);
                }
            }
            Stmt::Raise(r) => {
                for v in [r.exc.as_deref(), r.cause.as_deref()].into_iter().flatten() {
                    self.expr(v, d);
                }
            }
            Stmt::Try(t) => {
                self.stmts(&t.body, d);
                for h in &t.handlers {
                    let ExceptHandler::ExceptHandler(h) = h;
                    if let Some(ty) = h.type_.as_deref() {
                        self.types(ty, d);
                    }
                    if let Some(n) = &h.name {
                        self.bind_name(n.as_str(), &Flow::new());
                    }
                    self.stmts(&h.body, d);
                }
                self.stmts(&t.orelse, d);
                self.stmts(&t.finalbody, d);
            }
            Stmt::Assert(a) => {
                self.expr(&a.test, d);
                if let Some(m) = a.msg.as_deref() {
                    self.expr(m, d);
                }
            }
            Stmt::Import(i) => {
                for a in &i.names {
                    let full = a.name.as_str();
                    self.note_db(full);
                    match &a.asname {
                        Some(local) => {
                            self.local_imports
                                .insert(local.as_str().to_string(), full.to_string());
                        }
                        None => {
                            let first = full.split('.').next().unwrap_or(full);
                            self.local_imports
                                .insert(first.to_string(), first.to_string());
                        }
                    }
                }
            }
            Stmt::ImportFrom(i) => {
                let dots = ".".repeat(i.level as usize);
                let module = match &i.module {
                    Some(m) => format!("{dots}{}", m.as_str()),
                    None => dots,
                };
                if i.level == 0 {
                    self.note_db(&module);
                }
                for a in &i.names {
                    let name = a.name.as_str();
                    if name == "*" {
                        continue;
                    }
                    let full = if module.ends_with('.') {
                        format!("{module}{name}")
                    } else {
                        format!("{module}.{name}")
                    };
                    if i.level == 0 {
                        self.note_db(&full);
                    }
                    let local = a.asname.as_ref().map_or(name, |n| n.as_str());
                    self.local_imports.insert(local.to_string(), full);
                }
            }
            Stmt::Expr(x) => self.expr(&x.value, d),
            _ => {}
        }
    }

    fn pattern(&mut self, p: &Pattern, fl: &Flow, depth: usize) {
        if depth > MAX_DEPTH {
            self.too_deep(p.start());
            return;
        }
        let d = depth + 1;
        match p {
            Pattern::MatchValue(v) => self.expr(&v.value, d),
            Pattern::MatchSingleton(_) => {}
            Pattern::MatchSequence(s) => {
                for q in &s.patterns {
                    self.pattern(q, fl, d);
                }
            }
            Pattern::MatchMapping(m) => {
                for k in m.keys.iter() {
                    self.expr(k, d);
                }
                for q in m.patterns.iter() {
                    self.pattern(q, fl, d);
                }
                if let Some(r) = &m.rest {
                    self.bind_name(r.as_str(), fl);
                }
            }
            Pattern::MatchClass(c) => {
                self.expr(&c.cls, d);
                for q in c.arguments.patterns.iter() {
                    self.pattern(q, fl, d);
                }
                for k in &c.arguments.keywords {
                    self.pattern(&k.pattern, fl, d);
                }
            }
            Pattern::MatchStar(s) => {
                if let Some(n) = &s.name {
                    self.bind_name(n.as_str(), fl);
                }
            }
            Pattern::MatchAs(a) => {
                if let Some(q) = a.pattern.as_deref() {
                    self.pattern(q, fl, d);
                }
                if let Some(n) = &a.name {
                    self.bind_name(n.as_str(), fl);
                }
            }
            Pattern::MatchOr(o) => {
                for q in &o.patterns {
                    self.pattern(q, fl, d);
                }
            }
        }
    }

    // -- expressions -------------------------------------------------------------------------

    fn expr(&mut self, e: &Expr, depth: usize) {
        if depth > MAX_DEPTH {
            self.too_deep(e.start());
            return;
        }
        let d = depth + 1;
        match e {
            Expr::Call(c) => self.expr_call(c, d, false),
            // A function of an import used as a value (`rm = os.remove` passed on,
            // `map(os.remove, paths)`, `{"rm": shutil.rmtree}`): called later with arguments
            // forge does not see.
            Expr::Name(_) | Expr::Attribute(_) if self.reference(e) => {}
            Expr::Name(_) => self.name_value(e),
            // `C.x`, `os.sep`: the name is a receiver, not a value passed on. A method of the
            // module's classes taken as a value (`f = self.zap`, `callback=c.zap`) may be
            // called later, with any arguments.
            Expr::Attribute(a) if matches!(&*a.value, Expr::Name(_)) => {
                if !self.reference(&a.value) {
                    self.receiver(&a.value);
                    let line = self.line(e.start());
                    self.method_value(&a.value, a.attr.as_str(), line);
                }
            }
            // `C().zap`, `self.store.zap` as a value.
            Expr::Attribute(a) => {
                let line = self.line(e.start());
                self.method_value(&a.value, a.attr.as_str(), line);
                if let Expr::Call(c) = &*a.value {
                    self.looked_into = Some(c.start());
                }
                self.expr(&a.value, d);
            }
            // `vars(C)["go"]`, `C.__dict__["go"]` taken: that method, as a value.
            Expr::Subscript(x)
                if self_dict(&x.value) && matches!(&*x.slice, Expr::StringLiteral(_)) =>
            {
                if let Expr::StringLiteral(k) = &*x.slice {
                    let owner = match &*x.value {
                        Expr::Attribute(a) => Some(&*a.value),
                        Expr::Call(v) => v.arguments.args.first(),
                        _ => None,
                    };
                    if let Some(owner) = owner {
                        let line = self.line(e.start());
                        self.method_value(owner, k.value.to_str(), line);
                    }
                }
                self.expr(&x.value, d);
            }
            Expr::Subscript(x) if self.module_class(&x.value).is_some() => {
                self.receiver(&x.value);
                self.expr(&x.slice, d);
            }
            Expr::Named(n) => {
                self.expr(&n.value, d);
                self.assign(&n.target, &n.value, d);
            }
            Expr::Lambda(l) => {
                if let Some(p) = l.parameters.as_deref() {
                    for pw in p.iter_non_variadic_params() {
                        if let Some(v) = pw.default() {
                            self.expr(v, d);
                        }
                    }
                }
                let saved = self.shadow(l.parameters.as_deref());
                self.expr(&l.body, d);
                self.restore(saved);
            }
            Expr::ListComp(x) => {
                self.comprehensions(&x.generators, d);
                self.expr(&x.elt, d);
            }
            Expr::SetComp(x) => {
                self.comprehensions(&x.generators, d);
                self.expr(&x.elt, d);
            }
            Expr::Generator(x) => {
                self.comprehensions(&x.generators, d);
                self.expr(&x.elt, d);
            }
            Expr::DictComp(x) => {
                self.comprehensions(&x.generators, d);
                if let Some(k) = x.key.as_deref() {
                    self.expr(k, d);
                }
                self.expr(&x.value, d);
            }
            _ => {
                let mut kids = Vec::new();
                children(e, &mut kids);
                for k in kids {
                    self.expr(k, d);
                }
            }
        }
    }

    /// A call and what is inside it; `called`: its result is called at once (`getattr(os,
    /// "remove")(p)`, `__import__("os").remove(p)`), which the outer call resolves.
    fn expr_call(&mut self, c: &ExprCall, d: usize, called: bool) {
        if d > MAX_DEPTH {
            self.too_deep(c.start());
            return;
        }
        self.call(c, called);
        // The callee: an attribute chain holds no call but at its root.
        let mut root = &*c.func;
        while let Expr::Attribute(a) = root {
            root = &a.value;
        }
        match root {
            Expr::Name(_) => {
                let line = self.line(c.start());
                match self.module_class(root) {
                    // `C(…)`: the constructor is followed with its arguments (`call`).
                    Some(ci) if std::ptr::eq(root, &*c.func) => {
                        let how = if self.called_at_once == Some(c.start()) {
                            Mention::BuiltCalled
                        } else if self.entered == Some(c.start()) {
                            Mention::BuiltEntered
                        } else {
                            Mention::Built
                        };
                        self.mention(ci, how, line);
                    }
                    _ if !std::ptr::eq(root, &*c.func) => self.receiver(root),
                    _ => {}
                }
            }
            Expr::Call(inner) => {
                if std::ptr::eq(&*c.func, root) {
                    self.called_at_once = Some(inner.start());
                }
                self.expr_call(inner, d + 1, true);
            }
            other => self.expr(other, d),
        }
        let typed = self.builtin(&c.func, "isinstance") || self.builtin(&c.func, "issubclass");
        // `getattr(os, "remove")`, `vars(os)`: the module is looked into, not passed on.
        let looks_into = ["getattr", "hasattr", "vars", "dir"]
            .iter()
            .any(|n| self.builtin(&c.func, n));
        for (i, a) in c.arguments.args.iter().enumerate() {
            // A function of the module passed on: [`Scope::indirect`] followed it.
            if matches!(a, Expr::Name(n) if self.module_function(n.id.as_str()).is_some()) {
                continue;
            }
            if typed && i == 1 {
                self.types(a, d);
            } else if looks_into && i == 0 && matches!(a, Expr::Name(_)) {
                if !self.reference(a) {
                    self.receiver(a);
                }
            } else {
                self.expr(a, d);
            }
        }
        for k in c.arguments.keywords.iter() {
            // `shutil.copytree(src, dst, copy_function=shutil.copy2)`: the function given copies
            // within what the call itself is recorded to touch, not on arguments of its own.
            if k.arg
                .as_ref()
                .is_some_and(|a| a.as_str() == "copy_function")
                && matches!(&k.value, Expr::Name(_) | Expr::Attribute(_))
            {
                continue;
            }
            if matches!(&k.value, Expr::Name(n) if self.module_function(n.id.as_str()).is_some()) {
                continue;
            }
            self.expr(&k.value, d);
        }
    }

    /// Marks a function whose body nests deeper than the walks go: what lies below is not
    /// read, so it fails closed.
    fn too_deep(&mut self, at: TextSize) {
        let line = self.line(at);
        self.fact(
            E::Unseen,
            format!("code nested deeper than {MAX_DEPTH} levels"),
            line,
            Flow::new(),
        );
    }

    /// A bare name used as a value (not called, not a receiver): a class of the module passed
    /// on may be constructed or have its special methods called anywhere; a module that
    /// changes things passed on (`[os]`, `helper(shutil)`) or a global holding one may have
    /// anything called on it.
    fn name_value(&mut self, e: &Expr) {
        let Expr::Name(n) = e else {
            return;
        };
        let line = self.line(e.start());
        if let Some(ci) = self.module_class(e) {
            self.mention(ci, Mention::Value, line);
            return;
        }
        let name = n.id.as_str();
        if let Some(q) = self.refs_of(e).into_iter().find(|q| whole_module(q)) {
            self.fact(
                E::Unseen,
                format!("the module `{q}` passed on as a value"),
                line,
                Flow::new(),
            );
            return;
        }
        if !self.is_local(name) && !self.local_imports.contains_key(name) {
            if let Some(q) = self.m.holders.get(name) {
                let call = format!("`{name}`, which holds the module `{q}`");
                self.fact(E::Unseen, call, line, Flow::new());
            }
        }
    }

    /// A name as a receiver or a type (`C.m`, `C[x]`, `isinstance(x, C)`, `holder.get(…)`).
    fn receiver(&mut self, e: &Expr) {
        let line = self.line(e.start());
        if let Some(ci) = self.module_class(e) {
            self.mention(ci, Mention::Receiver, line);
            return;
        }
        if let Expr::Name(n) = e {
            let name = n.id.as_str();
            if !self.is_local(name) && !self.local_imports.contains_key(name) {
                if let Some(q) = self.m.holders.get(name) {
                    let call = format!("`{name}`, which holds the module `{q}`");
                    self.fact(E::Unseen, call, line, Flow::new());
                }
            }
        }
    }

    /// Types named by `isinstance`/`issubclass` or an `except` clause: receivers, no instance
    /// made.
    fn types(&mut self, e: &Expr, d: usize) {
        match e {
            Expr::Name(_) if self.module_class(e).is_some() => self.receiver(e),
            Expr::Tuple(t) => {
                for x in t.elts.iter() {
                    self.types(x, d + 1);
                }
            }
            other => self.expr(other, d),
        }
    }

    /// `e` (a name or attribute chain used as a value) is a function of an import forge knows:
    /// its effect is recorded with no parameter for its target (it gets whatever it is called
    /// with later). `exec`/`eval` so used run code forge cannot see.
    fn reference(&mut self, e: &Expr) -> bool {
        let before = std::mem::replace(&mut self.referencing, true);
        let known = self.reference_of(e);
        self.referencing = before;
        known
    }

    fn reference_of(&mut self, e: &Expr) -> bool {
        let line = self.line(e.start());
        let none = Args { pos: &[], kw: &[] };
        // A container of functions named where its items may be passed on (`helper(G)`,
        // `return G`): each may be called there, with arguments forge does not see.
        if let Expr::Name(n) = e {
            let id = n.id.as_str();
            if !self.is_local(id)
                && !self.local_imports.contains_key(id)
                && self.m.filled.contains_key(id)
                && !self.m.holders.contains_key(id)
            {
                if !self.m.harmless.contains(&n.start()) {
                    self.mentioned_container(id, line);
                }
                return true;
            }
        }
        let mut refs = self.refs_of(e);
        if refs.is_empty() {
            let Expr::Name(n) = e else {
                return false;
            };
            let name = n.id.as_str();
            // A function of the module used as a value (`{"x": _wipe}[k](p)`, `(_a if k else
            // _b)(p)`, `return _wipe`): it may be called anywhere later, with any arguments.
            // (Passed to a call, [`Scope::indirect`] follows it; bound to a name, it is an
            // alias.)
            if let Some(callee) = self.module_function(name) {
                self.site(callee, none, line);
                return true;
            }
            if !self.unbound(name) {
                return false;
            }
            if matches!(name, "exec" | "eval") {
                self.fact(E::Unseen, name, line, Flow::new());
                return true;
            }
            refs = self
                .m
                .imports
                .stars()
                .map(|m| format!("{m}.{name}"))
                .collect();
            for q in &refs {
                if self.module_call(q, none, line) {
                    return true;
                }
            }
            return false;
        }
        let mut known = false;
        // (A binding forge does not follow counts where the name is called, not named.)
        for q in refs.iter().filter(|q| !q.starts_with(UNSEEN)) {
            known |= self.use_ref(q, none, line);
        }
        known
    }

    fn comprehensions(&mut self, gens: &[Comprehension], d: usize) {
        for g in gens {
            self.expr(&g.iter, d);
            self.bind_iter(&g.target, &g.iter, d);
            for i in &g.ifs {
                self.expr(i, d);
            }
        }
    }

    // -- calls -------------------------------------------------------------------------------

    fn call(&mut self, c: &ExprCall, called: bool) {
        let line = self.line(c.start());
        let args = Args::of(&c.arguments);
        self.indirect(&c.func, args, line);
        if self.unseen_call(c, called, line) {
            return;
        }
        // `paths.append(x)`: the local container now holds x too.
        if let Expr::Attribute(a) = &*c.func {
            if let Expr::Name(n) = &*a.value {
                if self.flow.contains_key(n.id.as_str())
                    && matches!(
                        a.attr.as_str(),
                        "append"
                            | "extend"
                            | "insert"
                            | "add"
                            | "update"
                            | "appendleft"
                            | "extendleft"
                            | "setdefault"
                    )
                {
                    let mut fl = Flow::new();
                    for v in args.pos.iter().chain(args.kw.iter().map(|k| &k.value)) {
                        fl.union(&self.flow_of(v).or_foreign(v));
                    }
                    self.absorb(&a.value, &fl);
                }
            }
        }
        // `_w.__call__(a, b)`: `_w(a, b)`.
        if let Expr::Attribute(a) = &*c.func {
            if let (Expr::Name(n), "__call__") = (&*a.value, a.attr.as_str()) {
                if let Some(callee) = self.module_function(n.id.as_str()) {
                    self.site(callee, args, line);
                    return;
                }
            }
        }
        // `HANDLERS[k](p)`, `COMMANDS.get(name)(p)`, `h(p)` with `for h in HANDLERS`.
        let drawn = self.draws(&c.func, 0);
        // Code kept in an attribute: any of it may be what runs, and so may what else the
        // call resolves to (a method of that name).
        if let Some(g) = drawn.as_deref().filter(|g| g.starts_with(ATTR)) {
            let none = Args { pos: &[], kw: &[] };
            let g = g.to_string();
            self.drawn_call(&g, none, line);
        } else if let Some(g) = drawn {
            let mixed = matches!(&*c.func, Expr::Name(n) if self.mixed.contains(n.id.as_str()));
            if !mixed {
                self.drawn_call(&g, args, line);
                return;
            }
            // Also bound to something else: the item with arguments forge does not map, and
            // what else it may be, as any call.
            let none = Args { pos: &[], kw: &[] };
            self.drawn_call(&g, none, line);
        }
        // `G[k].__get__(None)(…)`, `G[k].__wrapped__(…)`: something of an item, called.
        if let Expr::Attribute(a) = &*c.func {
            if let Some(g) = self.draws(&a.value, 0).filter(|g| !g.starts_with(ATTR)) {
                // Not a method of the container itself (`HANDLERS.append(f)`, `G.get(k)`).
                if !matches!(&*a.value, Expr::Name(n) if n.id.as_str() == g) {
                    self.mentioned_container(&g, line);
                }
            }
        }
        // An item handed to a call (`swap(G[k])(a, b)`, `partial(G[k], x)`, `map(f,
        // G.values())`): it may be called there or later with other arguments.
        let keeps_items = [
            "len",
            "print",
            "repr",
            "str",
            "isinstance",
            "id",
            "bool",
            "hash",
            "type",
            "callable",
            "list",
            "tuple",
            "sorted",
            "reversed",
            "iter",
            "next",
            "dict",
            "set",
        ]
        .iter()
        .any(|b| self.builtin(&c.func, b))
            // (`sorted(G.values(), key=lambda f: f(p))` calls each item.)
            && args.kw.is_empty();
        if !keeps_items {
            for v in args.pos.iter().chain(args.kw.iter().map(|k| &k.value)) {
                let v = match v {
                    Expr::Starred(x) => &*x.value,
                    other => other,
                };
                if let Some(g) = self.draws(v, 0) {
                    self.mentioned_container(&g, line);
                }
            }
        }
        if let Expr::Name(n) = &*c.func {
            let name = n.id.as_str();
            if let Some(callee) = self.module_function(name) {
                self.site(callee, args, line);
                let m = self.m;
                for &other in m.again.get(name).into_iter().flatten() {
                    self.site(other, args, line);
                }
                for &other in m.dispatch.get(name).into_iter().flatten() {
                    self.site(other, args, line);
                }
                // `def rmtree` then `from shutil import *`: the import may bind it again.
                if m.starred_over.contains(name) {
                    let candidates: Vec<String> =
                        m.imports.stars().map(|st| format!("{st}.{name}")).collect();
                    for q in &candidates {
                        if !self.package_call(q, args, line, false) {
                            self.module_call(q, args, line);
                        }
                    }
                }
                // Also imported or assigned under that name (`def _h` then `from os import
                // remove as _h`): the binding that runs is the last, so each may.
                if m.imports.get(name).is_none() && !m.global_aliases.contains_key(name) {
                    return;
                }
            }
        }
        // `Store(p)` runs `Store.__init__(self, p)` (and `__new__`, a dataclass's
        // `__post_init__`).
        if let Some(ci) = self.module_class(&c.func) {
            self.constructor(ci, args, line);
            // Also rebound under `global` in a function (`global H; class H: …`): what else it
            // may be, below.
            let rebound = matches!(&*c.func, Expr::Name(n) if self.m.global_aliases.contains_key(n.id.as_str()));
            if !rebound {
                return;
            }
        }
        // `cls(p)` in a class method: the class's or a subclass's constructor.
        if let Some(ci) = self.constructs(&c.func) {
            for k in std::iter::once(ci).chain(self.subclasses(ci)) {
                self.constructor(k, args, line);
            }
            return;
        }
        if self.super_call(&c.func, args, line) {
            return;
        }
        // `getattr(c, "zap")` taken (not called at once): that method, as a value;
        // `getattr(self, "do_" + cmd)`: any it may name. `operator.methodcaller("zap", p)`
        // and `attrgetter("zap")` call or give the methods of that name of any object.
        if self.builtin(&c.func, "getattr") {
            if let (Some(obj), Some(attr)) = (args.get(0, &[]), args.get(1, &[])) {
                let literal = self.literal(attr);
                // `getattr(BOX, "fn")`: code kept in `.fn`.
                if let Some(m) = literal.as_deref() {
                    if self.attr_kept(m) && !self.foreign(obj) {
                        let none = Args { pos: &[], kw: &[] };
                        self.drawn_call(&format!("{ATTR}{m}"), none, line);
                    }
                }
                let looked_into = self.looked_into == Some(c.start());
                match literal {
                    Some(m) if !called && !looked_into => self.method_value(obj, &m, line),
                    Some(_) => {}
                    None if looked_into => {}
                    None => self.computed_method(Some(obj), &name_prefix(attr), line),
                }
            }
        }
        // `inspect.getmembers(obj)`: every method and attribute of it may be taken.
        if self
            .refs_of(&c.func)
            .iter()
            .any(|q| q == "inspect.getmembers" || q == "inspect.getmembers_static")
        {
            if let Some(obj) = args.get(0, &[]) {
                self.computed_method(Some(obj), "", line);
            }
        }
        let taker = self
            .refs_of(&c.func)
            .into_iter()
            .find(|q| matches!(q.as_str(), "operator.methodcaller" | "operator.attrgetter"));
        if let Some(q) = taker {
            // `methodcaller(name, *args)` names one method; `attrgetter(*names)` each.
            let names = if q.ends_with("methodcaller") {
                args.pos.get(..1).unwrap_or_default()
            } else {
                args.pos
            };
            let none = Args { pos: &[], kw: &[] };
            for a in names {
                match self.literal(a) {
                    // `attrgetter("store.zap")`: the last name is what is taken.
                    Some(m) => {
                        let last = m.rsplit('.').next().unwrap_or_default().to_string();
                        self.untyped_method(&last, none, line);
                        if self.attr_kept(&last) {
                            self.drawn_call(&format!("{ATTR}{last}"), none, line);
                        }
                    }
                    None => self.computed_method(None, &name_prefix(a), line),
                }
            }
        }
        // `C.__dict__["go"](obj, p)`, `vars(C)["go"](obj, p)`: the function kept under that name,
        // called as it is stored (unbound).
        if let Expr::Subscript(x) = &*c.func {
            if let (true, Expr::StringLiteral(k)) = (self_dict(&x.value), &*x.slice) {
                let owner = match &*x.value {
                    Expr::Attribute(a) => Some(&*a.value),
                    Expr::Call(v) => v.arguments.args.first(),
                    _ => None,
                };
                if let Some(owner) = owner {
                    if let Some(ci) = self.module_class(owner) {
                        self.method_site(ci, k.value.to_str(), args, line, false);
                    } else {
                        self.method_call(owner, k.value.to_str(), args, line);
                    }
                }
            }
        }
        // `getattr(Path(p), "unlink")()`: the method named, on that object.
        if let Expr::Call(g) = &*c.func {
            if self.builtin(&g.func, "getattr") {
                let ga = Args::of(&g.arguments);
                if let (Some(obj), Some(attr)) = (ga.get(0, &[]), ga.get(1, &[])) {
                    if let (true, Some(m)) = (self.refs_of(obj).is_empty(), self.literal(attr)) {
                        self.method_call(obj, &m, args, line);
                        return;
                    }
                }
            }
        }
        // `k(p)` on an instance runs `__call__`.
        if let Some(Kind::Object(ci)) = self.kind_of(&c.func, 0) {
            if self.method_site(ci, "__call__", args, line, true) {
                return;
            }
        }
        let refs = self.refs_of(&c.func);
        if refs.is_empty() {
            if let Resolved::Qualified(q) = self.resolve(&c.func) {
                if self.module_call(&q, args, line) {
                    return;
                }
            }
            if let Expr::Name(n) = &*c.func {
                if self.star_call(n.id.as_str(), args, line) {
                    return;
                }
            }
        } else {
            // An alias bound to several functions may call any of them.
            let mut known = false;
            for q in &refs {
                known |= self.use_ref(q, args, line);
            }
            if known {
                return;
            }
        }
        if let Expr::Attribute(a) = &*c.func {
            let m = a.attr.as_str();
            if self.module_ish(&a.value) {
                if PATH_WRITES_ANYWHERE.contains(&m) {
                    self.path_method(&a.value, None, m, args, line);
                } else if data_writer(m) {
                    self.data_write(m, args, line);
                }
            } else {
                self.method_call(&a.value, m, args, line);
            }
        }
    }

    /// The module-level container (see [`filled`]) `e` is taken out of: the container itself
    /// (not hidden by a local), an item of it (`G[k]`, `G.get(k)`, `G.pop()`), what iterating
    /// it gives (`G.values()`, `sorted(G)`), or a local holding one of those.
    fn draws(&self, e: &Expr, depth: usize) -> Option<String> {
        if depth > KIND_DEPTH {
            return None;
        }
        match e {
            Expr::Name(n) => {
                let id = n.id.as_str();
                if let Some(g) = self.drawn.get(id) {
                    return Some(g.clone());
                }
                // An instance of a class made from a builtin container that keeps code in its
                // items (`REG[k](p)`, `for h in HOOKS: h(p)`).
                if let Some(Kind::Object(ci)) = self.kind_of(e, 0) {
                    if let Some(g) = self.container_items(ci) {
                        return Some(g);
                    }
                }
                if !self.is_local(id)
                    && !self.local_imports.contains_key(id)
                    && self.m.filled.contains_key(id)
                {
                    return Some(id.to_string());
                }
                // An item of something another module of the package holds (`from .registry
                // import HOOKS`, then `HOOKS[k]`).
                self.held_by_package(e, depth)
            }
            // `G[k].__call__`: the item itself.
            Expr::Attribute(a) if a.attr.as_str() == "__call__" => self.draws(&a.value, depth + 1),
            // `X.handlers[k]`, `self.fn`: an attribute the module keeps code in ([`AttrCode`]);
            // called directly under a builtin type's method name on an object forge cannot
            // type (`x.remove(…)`), it is taken for that builtin's, as such calls are.
            Expr::Attribute(a)
                if (self.m.attr_code.refs.contains_key(a.attr.as_str())
                    || self.m.attr_code.open.contains_key(a.attr.as_str()))
                    && !self.foreign(&a.value)
                    && !(depth == 0
                        && BUILTIN_METHODS.contains(&a.attr.as_str())
                        && self.module_class(&a.value).is_none()
                        && !matches!(self.kind_of(&a.value, 0), Some(Kind::Object(_)))) =>
            {
                Some(format!("{ATTR}{}", a.attr.as_str()))
            }
            Expr::Attribute(_) => self.held_by_package(e, depth),
            // `vars(BOX)["fn"]`, `BOX.__dict__["fn"]`: the attribute named.
            Expr::Subscript(x) if self_dict(&x.value) => match &*x.slice {
                Expr::StringLiteral(k) if self.attr_kept(k.value.to_str()) => {
                    Some(format!("{ATTR}{}", k.value.to_str()))
                }
                _ => None,
            },
            Expr::Subscript(x) => self.draws(&x.value, depth + 1),
            // `(G[k], "help")`, `[G[k]]`, `[*G.values()]`: a display holding an item.
            Expr::Tuple(_) | Expr::List(_) => elts(e).iter().find_map(|x| self.draws(x, depth + 1)),
            Expr::Set(x) => x.elts.iter().find_map(|x| self.draws(x, depth + 1)),
            Expr::Starred(x) => self.draws(&x.value, depth + 1),
            // `(h := G[k])(a, b)`.
            Expr::Named(x) => self.draws(&x.value, depth + 1),
            // `{k: v for k, v in G.items()}`, `{f for f in G}`.
            Expr::DictComp(x) => self.draws_items(&x.value, &x.generators, depth),
            Expr::SetComp(x) => self.draws_items(&x.elt, &x.generators, depth),
            // `G.get(k) or _noop`, `G[k] if k else h`.
            Expr::BoolOp(b) => b.values.iter().find_map(|v| self.draws(v, depth + 1)),
            Expr::If(x) => self
                .draws(&x.body, depth + 1)
                .or_else(|| self.draws(&x.orelse, depth + 1)),
            // `[v for v in G.values()][0]`, `next(v for v in G.values())`.
            // Only where the items themselves are what it makes (not `[h(p) for h in G]`).
            Expr::ListComp(x) => self.draws_items(&x.elt, &x.generators, depth),
            Expr::Generator(x) => self.draws_items(&x.elt, &x.generators, depth),
            Expr::Call(c) => match &*c.func {
                Expr::Attribute(a)
                    if matches!(
                        a.attr.as_str(),
                        "get"
                            | "pop"
                            | "popitem"
                            | "popleft"
                            | "setdefault"
                            | "values"
                            | "items"
                            | "copy"
                            | "__getitem__"
                    ) =>
                {
                    self.draws(&a.value, depth + 1)
                }
                // `_lookup(k)`, returning `G[k]`.
                Expr::Name(n)
                    if self.module_function(n.id.as_str()).is_some()
                        && self.m.item_getters.contains_key(n.id.as_str()) =>
                {
                    self.m.item_getters.get(n.id.as_str()).cloned()
                }
                f if [
                    "list", "tuple", "sorted", "reversed", "iter", "next", "dict", "set",
                ]
                .iter()
                .any(|b| self.builtin(f, b)) =>
                {
                    c.arguments
                        .args
                        .first()
                        .and_then(|x| self.draws(x, depth + 1))
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// `e` names a value of another module of the package that is neither a module, a function
    /// nor a class there, reached through an item (`depth` > 0): a container forge does not
    /// follow, named as written.
    fn held_by_package(&self, e: &Expr, depth: usize) -> Option<String> {
        if depth == 0 {
            return None;
        }
        let pkg = self.m.package;
        self.refs_of(e).into_iter().find(|q| {
            self.in_package(q)
                && Package::absolute(&self.m.here, q).is_some_and(|a| {
                    !pkg.modules.contains(&a)
                        && !pkg.classes.contains(&a)
                        && !self.m.external.contains_key(&a)
                })
        })
    }

    /// A call through `q`, an alias's target ([`FN`]: a function of the module, every
    /// definition of the name; [`ANY`]: with arguments forge cannot map; else a qualified
    /// name), with `args`. `true` when it was recognised.
    fn use_ref(&mut self, q: &str, args: Args<'_>, line: usize) -> bool {
        let none = Args { pos: &[], kw: &[] };
        let (q, args) = match q.strip_prefix(ANY) {
            Some(rest) => (rest, none),
            None => (q, args),
        };
        if let Some(why) = q.strip_prefix(UNSEEN) {
            // The name itself called; an attribute of it (`_db.read(…)`) is not what was bound.
            let Some(why) = why.strip_suffix(UNSEEN_END) else {
                return false;
            };
            let call = format!("a name {why}");
            self.fact(E::Unseen, call, line, Flow::new());
            return true;
        }
        if let Some(i) = q.strip_prefix(METHOD) {
            let Ok(f) = i.parse::<u32>() else {
                return false;
            };
            self.site(f, none, line);
            return true;
        }
        if let Some(name) = q.strip_prefix(FN) {
            let m = self.m;
            let Some(&first) = m.by_name.get(name) else {
                return false;
            };
            // Bound again other than by a `def` (`_ra = swap(_ra)`, an import): what runs
            // gets arguments forge cannot map.
            let args = if m.rebound.contains(name) { none } else { args };
            self.site(first, args, line);
            for &other in m.again.get(name).into_iter().flatten() {
                self.site(other, args, line);
            }
            if let Some(q) = m.imports.get(name) {
                let q = q.to_string();
                self.module_call(&q, none, line);
            }
            return true;
        }
        self.module_call(q, args, line)
    }

    /// Every name `target` binds may hold an item of the container `g`.
    fn mark_drawn(&mut self, target: &Expr, g: &str) {
        let mut names = vec![target];
        let mut seen = 0usize;
        while let Some(t) = names.pop() {
            seen += 1;
            if seen > MAX_FACTS {
                break;
            }
            match t {
                Expr::Name(n) => {
                    self.drawn.insert(n.id.to_string(), g.to_string());
                }
                Expr::Tuple(_) | Expr::List(_) => names.extend(elts(t).iter()),
                Expr::Starred(x) => names.push(&x.value),
                _ => {}
            }
        }
    }

    /// The container `g` named where its items may be used (`helper(G)`, `return G`): what
    /// forge saw put in counts, with no arguments; a value it could not follow is code forge
    /// cannot read.
    fn mentioned_container(&mut self, g: &str, line: usize) {
        let none = Args { pos: &[], kw: &[] };
        let refs = self.contents_of(g);
        for q in &refs {
            self.use_ref(q, none, line);
        }
        // A container of data (a cache of results) holds no function forge saw put in: what it
        // could not follow is taken to be data there, and is followed where an item is called.
        if self.m.valued.contains(g) && !refs.is_empty() {
            let call = format!("`{g}`, holding values forge cannot follow, passed on");
            self.fact(E::Unseen, call, line, Flow::new());
        }
    }

    /// A comprehension making items of a container: its element is a name its first
    /// generator binds from one.
    fn draws_items(&self, elt: &Expr, gens: &[Comprehension], depth: usize) -> Option<String> {
        let g = gens.first()?;
        let Expr::Name(e) = elt else { return None };
        let mut names = vec![&g.target];
        let mut bound = false;
        while let Some(t) = names.pop() {
            match t {
                Expr::Name(n) => bound |= n.id == e.id,
                Expr::Tuple(_) | Expr::List(_) => names.extend(elts(t).iter()),
                Expr::Starred(x) => names.push(&x.value),
                _ => {}
            }
        }
        if bound {
            self.draws(&g.iter, depth + 1)
        } else {
            None
        }
    }

    /// What forge saw put into the container `g` (its initial value's and the stores'; a
    /// container's module-level aliases were moved here).
    fn contents_of(&self, g: &str) -> Vec<String> {
        if let Some(attr) = g.strip_prefix(ATTR) {
            return self
                .m
                .attr_code
                .refs
                .get(attr)
                .map(|qs| qs.iter().cloned().collect())
                .unwrap_or_default();
        }
        self.m
            .contents
            .get(g)
            .map(|qs| qs.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// A call of something taken out of the container `g`: each function forge saw put into
    /// it may run; a value it could not follow into it makes this code forge cannot read.
    fn drawn_call(&mut self, g: &str, args: Args<'_>, line: usize) {
        let none = Args { pos: &[], kw: &[] };
        // Kept in an attribute: which object holds what is not followed, so none of it gets
        // the call's arguments mapped.
        if let Some(attr) = g.strip_prefix(ATTR) {
            for q in &self.contents_of(g) {
                self.use_ref(q, none, line);
            }
            if let Some(at) = self.m.attr_code.open.get(attr) {
                let call = format!(
                    "code kept in an attribute `.{attr}` ({at}), which forge cannot follow"
                );
                self.fact(E::Unseen, call, line, Flow::new());
            }
            return;
        }
        // What else may be in it gets other arguments: only a container holding just what
        // forge saw put in passes them on mapped.
        let args = if self.m.filled.get(g) == Some(&None) {
            args
        } else {
            none
        };
        for q in &self.contents_of(g) {
            self.use_ref(q, args, line);
        }
        match self.m.filled.get(g) {
            Some(Some(at)) => {
                let call = format!(
                    "a function taken out of `{g}`, which line {at} fills with a value forge cannot follow"
                );
                self.fact(E::Unseen, call, line, Flow::new());
            }
            Some(None) => {}
            None => {
                let call = format!("a function taken out of `{g}` of another module");
                self.fact(E::Unseen, call, line, Flow::new());
            }
        }
    }

    /// Calls whose target forge cannot read: `exec`/`eval` (also of a literal), a module
    /// imported by a computed name, `getattr` on a module or a namespace by a computed name,
    /// a name looked up in `globals()`/`sys.modules`/`__dict__` and called. Each is an
    /// [`E::Unseen`] fact. `getattr(<import>, "name")` not called at once is a reference to
    /// that function ([`Scope::reference`]); called at once, the outer call resolves it.
    fn unseen_call(&mut self, c: &ExprCall, called: bool, line: usize) -> bool {
        let args = Args::of(&c.arguments);
        let f = &*c.func;
        let refs = self.refs_of(f);
        let runs = ["exec", "eval"].into_iter().find(|n| self.builtin(f, n));
        let runs = runs.map(str::to_string).or_else(|| {
            refs.iter()
                .find(|q| {
                    matches!(
                        q.as_str(),
                        "builtins.exec"
                            | "builtins.eval"
                            | "runpy.run_path"
                            | "runpy.run_module"
                            | "code.interact"
                            | "code.InteractiveInterpreter"
                            | "code.InteractiveConsole"
                    )
                })
                .cloned()
        });
        if let Some(name) = runs {
            self.fact(E::Unseen, name, line, Flow::new());
            return true;
        }
        // Unpickling runs whatever code the data names: a file an agent can write becomes code.
        if let Some(q) = refs.iter().find(|q| self.unpickles(q, args)) {
            let call = format!("{q} (loading a pickle runs code the data names)");
            self.fact(E::Unseen, call, line, Flow::new());
            // Still what it reads, from where.
            return false;
        }
        let import = if self.builtin(f, "__import__") {
            Some("__import__")
        } else if refs.iter().any(|q| q == "importlib.import_module") {
            Some("importlib.import_module")
        } else {
            None
        };
        if let Some(name) = import {
            if args
                .get(0, &["name"])
                .and_then(|a| self.literal(a))
                .is_none()
            {
                self.fact(E::Unseen, format!("{name}(…)"), line, Flow::new());
            }
            return true;
        }
        if self.builtin(f, "getattr") {
            let (Some(obj), Some(attr)) = (args.get(0, &[]), args.get(1, &[])) else {
                return false;
            };
            let roots = self.refs_of(obj);
            let literal = self.literal(attr);
            if let Some(a) = &literal {
                // `getattr(os, "remove")`: that function, resolved by the outer call when
                // called at once, else a reference to it.
                if !called && !roots.is_empty() {
                    let none = Args { pos: &[], kw: &[] };
                    for q in &roots {
                        self.module_call(&format!("{q}.{a}"), none, line);
                    }
                }
                return !roots.is_empty();
            }
            // A name computed at run time, of a module with functions that change things
            // (`getattr(os, op)`) or of a namespace (`getattr(sys.modules[m], name)`). Of
            // anything else (`getattr(row, field)`, `getattr(errno, code)`) it reads data.
            if roots.iter().any(|q| effect_module(q) || self.in_package(q)) || self.namespace(obj) {
                let what = roots.first().cloned().unwrap_or_else(|| sketch(obj));
                self.fact(E::Unseen, format!("getattr({what}, …)"), line, Flow::new());
                return true;
            }
            return false;
        }
        // `globals()[name](…)`, `sys.modules[m].__dict__[name](…)`, `sys.modules[m].run(…)`.
        let looked_up = match f {
            Expr::Attribute(a) => &*a.value,
            other => other,
        };
        if let Expr::Subscript(x) = looked_up {
            if self.namespace(&x.value) && self.literal(&x.slice).is_none() {
                self.fact(E::Unseen, sketch(f), line, Flow::new());
                return true;
            }
            // `helpers.TABLE["rm"](p)`: a container of another module of the package.
            let held = self.refs_of(&x.value);
            if held.iter().any(|q| self.in_package(q)) {
                self.fact(E::Unseen, sketch(f), line, Flow::new());
                return true;
            }
        }
        false
    }

    /// `q(args)` loads data in a format that can name code to run: pickle and the libraries
    /// built on it, `yaml.load` without a safe loader, `numpy.load(allow_pickle=True)`,
    /// `torch.load(weights_only=False)`.
    fn unpickles(&self, q: &str, args: Args<'_>) -> bool {
        const PICKLE: [&str; 15] = [
            "pickle.load",
            "pickle.loads",
            "shelve.open",
            "shelve.DbfilenameShelf",
            "pickle.Unpickler",
            "_pickle.load",
            "_pickle.loads",
            "_pickle.Unpickler",
            "dill.load",
            "dill.loads",
            "cloudpickle.load",
            "cloudpickle.loads",
            "joblib.load",
            "pandas.read_pickle",
            "jsonpickle.decode",
        ];
        let flag = |name: &str, want: bool| {
            args.keyword(&[name]).is_some_and(|v| {
                matches!(v, Expr::BooleanLiteral(b) if b.value == want)
                    || !matches!(v, Expr::BooleanLiteral(_))
            })
        };
        match q {
            _ if PICKLE.contains(&q) => true,
            "yaml.unsafe_load" | "yaml.unsafe_load_all" => true,
            "yaml.load" | "yaml.load_all" => {
                let safe = args.get(1, &["Loader"]).is_some_and(|l| {
                    self.refs_of(l).iter().any(|r| {
                        matches!(
                            r.rsplit('.').next(),
                            Some("SafeLoader" | "CSafeLoader" | "BaseLoader" | "CBaseLoader")
                        )
                    })
                });
                !safe
            }
            "numpy.load" => flag("allow_pickle", true),
            "torch.load" => flag("weights_only", false),
            _ => false,
        }
    }

    /// `name(…)` where the module imports `*` from modules forge knows (`from os import *`,
    /// then `remove(p)`): the last of them that has it.
    fn star_call(&mut self, name: &str, args: Args<'_>, line: usize) -> bool {
        if !self.unbound(name) {
            return false;
        }
        let candidates: Vec<String> = self
            .m
            .imports
            .stars()
            .map(|m| format!("{m}.{name}"))
            .collect();
        // A name of the package's module imported with `*`: that function (a builtin is not
        // one of its names).
        if candidates
            .iter()
            .any(|q| self.package_call(q, args, line, false))
        {
            return true;
        }
        let outside: Vec<&String> = candidates.iter().filter(|q| !self.in_package(q)).collect();
        outside.into_iter().any(|q| self.module_call(q, args, line))
    }

    /// `e` names a class of another module of the package: its absolute name.
    fn package_class(&self, e: &Expr) -> Option<String> {
        let pkg = self.m.package;
        if pkg.modules.is_empty() {
            return None;
        }
        self.refs_of(e)
            .into_iter()
            .filter_map(|q| Package::absolute(&self.m.here, &q))
            .find(|a| pkg.classes.contains(a))
    }

    /// `q` names something in one of the package's modules.
    fn in_package(&self, q: &str) -> bool {
        let pkg = self.m.package;
        !pkg.modules.is_empty()
            && Package::absolute(&self.m.here, q).is_some_and(|a| pkg.module_of(&a).is_some())
    }

    /// `q` (`.helpers.zap`, `pkg.helpers.Store`) names something in another module of the
    /// package: a function is followed with the call's arguments; a class brings all its
    /// methods, with arguments forge does not map; anything else there (an object, a name
    /// forge did not find) is code forge cannot read, unless `strict` is off (a `*` import:
    /// the name may be a builtin's).
    fn package_call(&mut self, q: &str, args: Args<'_>, line: usize, strict: bool) -> bool {
        let pkg = self.m.package;
        if pkg.modules.is_empty() {
            return false;
        }
        let Some(abs) = Package::absolute(&self.m.here, q) else {
            return false;
        };
        let Some(module) = pkg.module_of(&abs).map(str::to_string) else {
            return false;
        };
        if let Some(why) = &pkg.incomplete {
            self.fact(E::Unseen, format!("{abs} ({why})"), line, Flow::new());
        }
        if let Some(callees) = self.m.external.get(&abs).cloned() {
            for c in callees {
                self.site(c, args, line);
            }
            return true;
        }
        // A class (`pkg.helpers.Store(p)`, or passed on) is constructed: `__new__` and
        // `__init__` with the arguments; its special methods may run unseen, as for a class of
        // the module ([`Scope::implicit`]); other methods are found by name where called
        // ([`Scope::untyped_method`]). Something else of it (`Store.attr`): its special methods.
        let owner = pkg.class_of(&abs).map(str::to_string);
        if let Some(class) = owner {
            let none = Args { pos: &[], kw: &[] };
            let mut methods: Vec<(String, Vec<u32>)> = Vec::new();
            for c in pkg.lineage(&class) {
                let prefix = format!("{c}.");
                for (k, v) in self.m.external.range(prefix.clone()..) {
                    let Some(name) = k.strip_prefix(&prefix) else {
                        break;
                    };
                    // The nearest class's constructor, as Python finds it.
                    if CTOR.contains(&name) && methods.iter().any(|(n, _)| n == name) {
                        continue;
                    }
                    methods.push((name.to_string(), v.clone()));
                }
            }
            // Its metaclass's methods but those a class statement runs (`__call__` on
            // `Thing(p)`, `__getattr__` on `Thing.anything`).
            if let Some(meta) = pkg.meta_of(&class) {
                let prefix = format!("{meta}.");
                let of_meta: Vec<u32> = self
                    .m
                    .external
                    .range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .filter(|(k, _)| {
                        let name = k.get(prefix.len()..).unwrap_or_default();
                        !CREATION.contains(&name) && name != "__init_subclass__"
                    })
                    .flat_map(|(_, v)| v.iter().copied())
                    .collect();
                for c in of_meta {
                    self.site(c, none, line);
                }
            }
            for (name, callees) in methods {
                let constructed = abs == class;
                for c in callees {
                    let property = self
                        .m
                        .funcs
                        .get(c as usize)
                        .is_some_and(|f| is_property(f.def));
                    match name.as_str() {
                        "__new__" | "__init__" if constructed => self.site_from(c, args, line, 1),
                        "__new__" | "__init__" | "__init_subclass__" => {}
                        _ if special(&name) || property => self.site(c, none, line),
                        _ => {}
                    }
                }
            }
            return true;
        }
        if abs == module {
            return false;
        }
        // A name the module imported (`pkg.helpers.os.remove`, `pkg.public_zap` from
        // `__init__.py`'s `from .helpers import zap as public_zap`, or its `*` imports): what it
        // stands for there.
        if self.reexports < 8 {
            if let Some(rest) = abs
                .strip_prefix(module.as_str())
                .and_then(|r| r.strip_prefix('.'))
            {
                let (head, tail) = rest
                    .split_once('.')
                    .map_or((rest, None), |(h, t)| (h, Some(t)));
                let there = pkg.here_of(&module);
                let mut candidates: Vec<String> = Vec::new();
                if let Some(imports) = pkg.imports.get(&module) {
                    match imports.get(head) {
                        Some(q) => candidates.push(q.to_string()),
                        None => candidates.extend(imports.stars().map(|st| format!("{st}.{head}"))),
                    }
                }
                let mut known = false;
                for q in candidates {
                    let Some(q) = Package::absolute(&there, &q) else {
                        continue;
                    };
                    let full = tail.map_or(q.clone(), |t| format!("{q}.{t}"));
                    self.reexports += 1;
                    known = self.module_call(&full, args, line);
                    self.reexports -= 1;
                    if known {
                        break;
                    }
                }
                if known {
                    return true;
                }
            }
        }
        if !strict || self.referencing {
            return false;
        }
        // A module-level name there that is not a function, class or import, called
        // (`zap = _real`, `zap = lambda p: …`): code forge does not follow.
        let rest = abs.get(module.len() + 1..).unwrap_or_default();
        if !rest.contains('.') {
            self.fact(
                E::Unseen,
                format!("{abs} (bound in `{module}` to something forge does not follow)"),
                line,
                Flow::new(),
            );
            return true;
        }
        // Anything else there (`pkg.helpers.CLIENT.send(p)`, `pkg.charset.ALIASES.get(k)`):
        // an object forge cannot type, so a method of that name of any of the package's
        // classes, unless the name is a builtin type's ([`Scope::untyped_method`]).
        let m = abs.rsplit('.').next().unwrap_or_default().to_string();
        if BUILTIN_METHODS.contains(&m.as_str()) || special(&m) {
            return true;
        }
        self.untyped_method(&m, args, line);
        true
    }

    /// What an argument of a call of a module function carries into it: a value that may also
    /// be a path no parameter names escapes (the callee's snapshot of its parameter would not
    /// cover it).
    fn arg_to_helper(&self, e: &Expr) -> Flow {
        let fl = self.flow_of(e).or_foreign(e);
        if fl.foreign {
            fl.escaped()
        } else {
            fl
        }
    }

    /// A call of another function of the module.
    fn site(&mut self, callee: u32, args: Args<'_>, line: usize) {
        self.site_from(callee, args, line, 0);
    }

    /// [`Scope::site`] whose positional arguments bind from the callee's parameter `skip`
    /// (1 for a method called on an instance: `self` is not among them).
    fn site_from(&mut self, callee: u32, args: Args<'_>, line: usize, skip: usize) {
        if !self.record {
            return;
        }
        self.site_one(callee, args, line, skip);
        // A method defined in a block of its class's body: each definition may be the one.
        let m = self.m;
        let others = m
            .funcs
            .get(callee as usize)
            .and_then(|f| {
                let (ci, _) = f.class?;
                m.classes
                    .get(ci as usize)?
                    .alternates
                    .get(f.def.name.as_str())
            })
            .cloned()
            .unwrap_or_default();
        // Each binds its first parameter as Python binds it: a `staticmethod` implementation
        // of an instance method gets no instance (`@m.register` `@staticmethod def _(a, b)`),
        // an instance method alternative of a static one gets it.
        let binds = |f: u32| {
            m.funcs.get(f as usize).map(|x| {
                let takes_self = x.class.is_some_and(|(_, s)| s);
                let classmethod = decorated_by(x.def, "classmethod");
                (takes_self, classmethod)
            })
        };
        let called = binds(callee);
        for other in others {
            if other == callee {
                continue;
            }
            let skip_other = match (called, binds(other)) {
                // The call bound an instance (or class) to the one called: bound to this one if it
                // takes one.
                (Some((true, _)), Some((takes, classmethod))) => {
                    if skip > 0 {
                        usize::from(takes)
                    } else {
                        // An unbound call (`C.m(obj, p)`): a class method still binds its class.
                        usize::from(classmethod)
                    }
                }
                // A static one called (taken as called on an instance): one that takes an
                // instance or a class gets it.
                (Some((false, _)), Some((takes, _))) => usize::from(takes),
                _ => skip,
            };
            self.site_one(other, args, line, skip_other);
        }
    }

    /// One call site of [`Scope::site_from`].
    fn site_one(&mut self, callee: u32, args: Args<'_>, line: usize, skip: usize) {
        let m = self.m;
        let Some(f) = m.funcs.get(callee as usize) else {
            return;
        };
        let mut bound: BTreeMap<u32, Flow> = BTreeMap::new();
        let mut star_from = None;
        let mut star = Flow::new();
        let mut rest = Flow::new();
        let mut i = 0usize;
        for a in args.pos {
            if let Expr::Starred(s) = a {
                if star_from.is_none() {
                    star_from = Some(i);
                }
                union(&mut star, &self.arg_to_helper(&s.value));
                continue;
            }
            let fl = self.arg_to_helper(a);
            if star_from.is_some() {
                union(&mut star, &fl);
                continue;
            }
            let target = if i + skip < f.n_positional {
                Some(idx(i + skip))
            } else {
                f.vararg
            };
            if let Some(t) = target {
                union(bound.entry(t).or_default(), &fl);
            }
            i += 1;
        }
        for k in args.kw {
            let fl = self.arg_to_helper(&k.value);
            match &k.arg {
                Some(name) => {
                    let t = f.by_keyword.get(name.as_str()).copied().or(f.kwarg);
                    if let Some(t) = t {
                        union(bound.entry(t).or_default(), &fl);
                    }
                }
                None => union(&mut rest, &fl),
            }
        }
        // A parameter that gets a path no caller's parameter names besides theirs (`*paths`
        // given `p, "/etc/x"`): what the callee does with it is not covered by theirs.
        for fl in bound.values_mut().chain([&mut star, &mut rest]) {
            if fl.foreign {
                fl.escape();
            }
        }
        self.sites.push(CallSite {
            callee,
            line,
            bound: bound.into_iter().collect(),
            star_from,
            star,
            rest,
        });
    }

    /// Module functions passed as arguments (`pool.submit(_write, p)`, `Thread(target=_w)`):
    /// each of their parameters may get any of the other arguments. Only an API known to call
    /// the function with exactly those (`submit`, `map`, `Thread`, `run_in_executor`, a `key=`)
    /// keeps them inside their paths; any other call may keep the function and call it later
    /// with other values (`COMMANDS.get(cmd, _fallback)(path)`, `partial(_rm, a)(b)`), so what
    /// its parameters get there escapes. A store into a module-level container forge follows
    /// (`HANDLERS.append(_zap)`) or a `singledispatch` registration calls nothing.
    fn indirect(&mut self, func: &Expr, args: Args<'_>, line: usize) {
        if !self.record {
            return;
        }
        if let Expr::Attribute(a) = func {
            if store_method(a.attr.as_str()).is_some()
                && matches!(&*a.value, Expr::Name(n) if self.draws(&a.value, 0).as_deref() == Some(n.id.as_str()))
            {
                return;
            }
        }
        // `handle.register(int, _impl)`: an implementation of a singledispatch function, run
        // when it is called ([`filled`] tells whether that is followed).
        if let Expr::Attribute(a) = func {
            if a.attr.as_str() == "register"
                && matches!(&*a.value, Expr::Name(n) if self.module_function(n.id.as_str()).is_some())
            {
                return;
            }
        }
        let api = match func {
            Expr::Name(n) => n.id.as_str(),
            Expr::Attribute(a) => a.attr.as_str(),
            _ => "",
        };
        let exact = matches!(
            api,
            "submit"
                | "map"
                | "imap"
                | "imap_unordered"
                | "starmap"
                | "apply"
                | "apply_async"
                | "map_async"
                | "starmap_async"
                | "run_in_executor"
                | "to_thread"
                | "Thread"
                | "Process"
                | "Timer"
                | "call_soon"
                | "call_soon_threadsafe"
                | "call_later"
                | "call_at"
                | "filter"
                | "sorted"
                | "sort"
                | "min"
                | "max"
        );
        let values = || args.pos.iter().chain(args.kw.iter().map(|k| &k.value));
        let mut refs: Vec<u32> = Vec::new();
        for e in values() {
            if let Expr::Name(n) = e {
                if let Some(c) = self.module_function(n.id.as_str()) {
                    refs.push(c);
                }
            }
        }
        if refs.is_empty() {
            return;
        }
        let mut rest = Flow::new();
        for e in values() {
            if let Expr::Name(n) = e {
                if self.module_function(n.id.as_str()).is_some() {
                    continue;
                }
            }
            union(&mut rest, &self.arg_to_helper(e));
        }
        // Each parameter may get any of the values: one no caller's parameter names (a
        // constant, `b + ".bak"`) leaves the others' snapshot short.
        if !exact || rest.foreign || !rest.suffixed.is_empty() {
            rest.escape();
        }
        for callee in refs {
            self.sites.push(CallSite {
                callee,
                line,
                bound: Vec::new(),
                star_from: None,
                star: Flow::new(),
                rest: rest.clone(),
            });
        }
    }

    fn simple(&mut self, effect: PyEffect, q: &str, line: usize, target: Flow) {
        self.fact(effect, q, line, target);
    }

    /// Calls of module functions by qualified name; `true` when `q` was recognised.
    fn module_call(&mut self, q: &str, args: Args<'_>, line: usize) -> bool {
        if self.package_call(q, args, line, true) {
            return true;
        }
        let canonical = canonical_name(q);
        let q = canonical.as_str();
        match q {
            "open" | "io.open" | "builtins.open" | "codecs.open" | "gzip.open" | "bz2.open"
            | "lzma.open" | "tarfile.open" | "zipfile.ZipFile" => {
                let target = self.arg_flow(args, 0, &["file", "filename", "name"]);
                let writes = self.mode_writes(args.get(1, &["mode"]), args);
                let effect = if writes { E::FileWrite } else { E::FileRead };
                self.simple(effect, q, line, target);
            }
            "os.open" => {
                let target = self.arg_flow(args, 0, &["path"]);
                let writes = match args.get(1, &["flags"]) {
                    Some(e) => os_open_writes(e, 0),
                    None => args.has_dynamic(),
                };
                let effect = if writes { E::FileWrite } else { E::FileRead };
                self.simple(effect, q, line, target);
            }
            "shutil.copy" | "shutil.copy2" | "shutil.copyfile" | "shutil.copytree"
            | "shutil.copymode" | "shutil.copystat" => {
                let src = self.arg_flow(args, 0, &["src"]);
                let dst = self.arg_flow(args, 1, &["dst"]);
                self.simple(E::FileRead, q, line, src);
                self.simple(E::FileWrite, q, line, dst);
            }
            "os.link" | "os.symlink" => {
                let dst = self.arg_flow(args, 1, &["dst"]);
                self.simple(E::FileWrite, q, line, dst);
            }
            "shutil.make_archive" => {
                // It writes `base_name` + ".zip" (or another suffix): a sibling of the path named.
                let base = self.arg_flow(args, 0, &["base_name"]).escaped();
                self.simple(E::FileWrite, q, line, base);
                if let Some(root) = args.get(2, &["root_dir"]) {
                    let root = self.flow_of(root);
                    self.simple(E::FileRead, q, line, root);
                }
            }
            "shutil.unpack_archive" => {
                let archive = self.arg_flow(args, 0, &["filename"]);
                self.simple(E::FileRead, q, line, archive);
                let dst = self.arg_flow(args, 1, &["extract_dir"]);
                self.simple(E::FileWrite, q, line, dst);
            }
            "os.truncate" | "os.chmod" | "os.chown" | "os.lchown" | "os.lchmod" | "os.utime"
            | "os.chflags" | "os.lchflags" | "os.mkfifo" | "os.mknod" | "shutil.chown" => {
                let target = self.arg_flow(args, 0, &["path"]);
                self.simple(E::FileWrite, q, line, target);
            }
            "os.remove" | "os.unlink" => {
                let target = self.arg_flow(args, 0, &["path"]);
                self.simple(E::FileDelete, q, line, target);
            }
            "os.rmdir" => {
                let target = self.arg_flow(args, 0, &["path"]);
                self.simple(E::DirDelete, q, line, target);
            }
            "shutil.rmtree" => {
                let target = self.arg_flow(args, 0, &["path", "name"]);
                self.simple(E::TreeDelete, q, line, target);
            }
            // Also the parents it empties: outside the path named.
            "os.removedirs" => {
                let target = self.arg_flow(args, 0, &["name", "path"]).escaped();
                self.simple(E::TreeDelete, q, line, target);
            }
            // Makes the destination's parents and removes the source's emptied ones.
            "os.renames" => {
                let mut target = self.arg_flow(args, 0, &["old"]);
                union(&mut target, &self.arg_flow(args, 1, &["new"]));
                self.simple(E::Move, q, line, target.escaped());
            }
            // A file made inside `dir` (a snapshot of it covers that); elsewhere the system's
            // temporary directory, which is left out (most such files are removed again).
            "tempfile.mkstemp"
            | "tempfile.mkdtemp"
            | "tempfile.NamedTemporaryFile"
            | "tempfile.TemporaryDirectory" => {
                if let Some(d) = args.keyword(&["dir"]) {
                    let dir = self.flow_of(d);
                    self.simple(E::FileWrite, q, line, dir);
                }
            }
            "logging.FileHandler"
            | "logging.handlers.WatchedFileHandler"
            | "os.setxattr"
            | "os.removexattr" => {
                let target = self.arg_flow(args, 0, &["filename", "file", "path"]);
                self.simple(E::FileWrite, q, line, target);
            }
            // They write files named from the path, beside it (`p.db`, `p.dat`/`p.dir`/`p.bak`,
            // `p.1` on rollover), which a snapshot of the path does not hold.
            "logging.handlers.RotatingFileHandler"
            | "logging.handlers.TimedRotatingFileHandler"
            | "dbm.open"
            | "dbm.gnu.open"
            | "dbm.ndbm.open"
            | "dbm.dumb.open"
            | "shelve.open"
            | "shelve.DbfilenameShelf" => {
                let target = self.arg_flow(args, 0, &["filename", "file", "path"]);
                self.simple(E::FileWrite, q, line, target.escaped());
            }
            "logging.basicConfig" => {
                if let Some(f) = args.keyword(&["filename"]) {
                    let target = self.flow_of(f);
                    self.simple(E::FileWrite, q, line, target);
                }
            }
            "fileinput.input" | "fileinput.FileInput" => {
                let inplace = args
                    .keyword(&["inplace"])
                    .is_some_and(|e| !matches!(e, Expr::BooleanLiteral(b) if !b.value));
                let target = self.arg_flow(args, 0, &["files"]);
                let effect = if inplace { E::FileWrite } else { E::FileRead };
                self.simple(effect, q, line, target);
            }
            // Readers of a named file the table has no other way to see.
            "linecache.getline" | "linecache.getlines" | "linecache.updatecache" => {
                let target = self.arg_flow(args, 0, &["filename"]);
                self.simple(E::FileRead, q, line, target);
            }
            "filecmp.cmp" | "filecmp.dircmp" | "filecmp.cmpfiles" | "os.path.samefile" => {
                for (i, names) in [(0, ["f1", "a"]), (1, ["f2", "b"])] {
                    let target = self.arg_flow(args, i, &names);
                    self.simple(E::FileRead, q, line, target);
                }
                // `cmpfiles(a, b, common)`: each name is joined under both.
                if q == "filecmp.cmpfiles" {
                    let mut target = self.arg_flow(args, 0, &["a"]);
                    if let Some(common) = args.get(2, &["common"]) {
                        self.add_segment(&mut target, common, 0);
                    }
                    self.simple(E::FileRead, q, line, target);
                }
            }
            "webbrowser.open" | "webbrowser.open_new" | "webbrowser.open_new_tab" => {
                let target = self.arg_flow(args, 0, &["url"]);
                self.simple(E::Process, q, line, target);
            }
            "xmlrpc.client.ServerProxy" => {
                let target = self.arg_flow(args, 0, &["uri"]);
                self.simple(E::NetWrite, q, line, target);
            }
            // The worker's own state, for every call after this one.
            "os.chdir"
            | "os.fchdir"
            | "os.umask"
            | "os.setuid"
            | "os.setgid"
            | "os.seteuid"
            | "os.setegid"
            | "os.setgroups"
            | "os.chroot"
            | "os.nice"
            | "resource.setrlimit"
            | "sys.path.insert"
            | "sys.path.append"
            | "sys.path.extend"
            | "sys.setrecursionlimit"
            | "signal.signal" => {
                let target = self.arg_flow(args, 0, &[]);
                self.simple(E::EnvWrite, q, line, target);
            }
            // Code run from text or a library named at run time.
            "ctypes.CDLL"
            | "ctypes.PyDLL"
            | "ctypes.WinDLL"
            | "ctypes.OleDLL"
            | "ctypes.cdll.LoadLibrary"
            | "ctypes.pydll.LoadLibrary"
            | "timeit.timeit"
            | "timeit.repeat"
            | "cProfile.run"
            | "cProfile.runctx"
            | "profile.run"
            | "pdb.run"
            | "pdb.runeval" => {
                self.fact(E::Unseen, q, line, Flow::new());
            }
            "os.mkdir" | "os.makedirs" => {
                let target = self.arg_flow(args, 0, &["path", "name"]);
                self.simple(E::DirCreate, q, line, target);
            }
            "os.rename" | "os.replace" | "shutil.move" => {
                let src = self.arg_flow(args, 0, &["src", "old"]);
                let dst = self.arg_flow(args, 1, &["dst", "new"]);
                self.move_fact(q, line, src, dst);
            }
            "os.listdir" | "os.scandir" | "os.walk" | "os.fwalk" | "glob.glob" | "glob.iglob"
            | "os.path.exists" | "os.path.lexists" | "os.path.getsize" | "os.path.isfile"
            | "os.path.isdir" | "os.path.islink" | "os.path.getmtime" | "os.path.getatime"
            | "os.path.getctime" | "os.stat" | "os.lstat" | "os.access" | "os.readlink" => {
                let mut target = self.arg_flow(args, 0, &["path", "top", "pathname"]);
                if let Some(root) = args.keyword(&["root_dir"]) {
                    union(&mut target, &self.flow_of(root));
                }
                self.simple(E::FileRead, q, line, target);
            }
            "subprocess.run"
            | "subprocess.call"
            | "subprocess.check_call"
            | "subprocess.check_output"
            | "subprocess.Popen"
            | "subprocess.getoutput"
            | "subprocess.getstatusoutput"
            | "os.system"
            | "os.popen"
            | "os.kill"
            | "os.killpg"
            | "os.startfile"
            | "asyncio.create_subprocess_shell"
            | "pty.spawn" => {
                let target = self.arg_flow(args, 0, &["args", "cmd", "command"]);
                self.simple(E::Process, q, line, target);
            }
            _ if q == "asyncio.create_subprocess_exec"
                || q.starts_with("os.exec")
                || q.starts_with("os.spawn")
                || q.starts_with("os.posix_spawn") =>
            {
                // The program and its arguments come separately: every one is the command.
                let mut target = Flow::new();
                for a in args.pos {
                    union(&mut target, &self.flow_of(a));
                }
                for k in args.kw {
                    let named = k.arg.as_ref().map(|a| a.as_str());
                    if matches!(
                        named,
                        None | Some("path" | "file" | "args" | "argv" | "program")
                    ) {
                        union(&mut target, &self.flow_of(&k.value));
                    }
                }
                self.simple(E::Process, q, line, target);
            }
            "urllib.request.urlopen" => {
                let target = self.arg_flow(args, 0, &["url"]);
                let data = args
                    .get(1, &["data"])
                    .is_some_and(|e| !e.is_none_literal_expr());
                let request = args
                    .get(0, &["url"])
                    .is_some_and(|e| self.kind_of(e, 0) == Some(Kind::RequestWrite));
                let effect = if data || request || self.write_request {
                    E::NetWrite
                } else {
                    E::NetRead
                };
                self.simple(effect, q, line, target);
            }
            "urllib.request.urlretrieve" => {
                let url = self.arg_flow(args, 0, &["url"]);
                self.simple(E::NetRead, q, line, url);
                if let Some(file) = args.get(1, &["filename"]) {
                    let file = self.flow_of(file);
                    self.simple(E::FileWrite, q, line, file);
                }
            }
            "requests.get" | "requests.head" | "requests.options" | "httpx.get" | "httpx.head"
            | "httpx.options" => {
                let url = self.arg_flow(args, 0, &["url"]);
                self.simple(E::NetRead, q, line, url);
            }
            "requests.post" | "requests.put" | "requests.patch" | "requests.delete"
            | "httpx.post" | "httpx.put" | "httpx.patch" | "httpx.delete" => {
                let url = self.arg_flow(args, 0, &["url"]);
                self.simple(E::NetWrite, q, line, url);
            }
            "requests.request" | "httpx.request" | "httpx.stream" => {
                let effect = self.method_effect(args.get(0, &["method"]));
                let url = self.arg_flow(args, 1, &["url"]);
                self.simple(effect, q, line, url);
            }
            "socket.socket" | "socket.create_connection" => {
                let target = self.arg_flow(args, 0, &["address"]);
                self.simple(E::NetWrite, q, line, target);
            }
            "ftplib.FTP" | "ftplib.FTP_TLS" | "telnetlib.Telnet" => {
                let host = self.arg_flow(args, 0, &["host"]);
                self.simple(E::NetWrite, q, line, host);
            }
            "smtplib.SMTP" | "smtplib.SMTP_SSL" | "smtplib.LMTP" => {
                let host = self.arg_flow(args, 0, &["host"]);
                self.simple(E::Mail, q, line, host);
            }
            "os.putenv" | "os.unsetenv" => {
                let key = self.arg_flow(args, 0, &["key", "name"]);
                self.simple(E::EnvWrite, q, line, key);
            }
            "urllib.request.Request" => {
                if self.request_writes(args) {
                    self.write_request = true;
                }
            }
            "numpy.save"
            | "numpy.savetxt"
            | "numpy.savez"
            | "numpy.savez_compressed"
            | "numpy.ndarray.tofile"
            | "matplotlib.pyplot.savefig" => {
                let target = self.arg_flow(args, 0, &["file", "fname"]);
                self.simple(E::FileWrite, q, line, target);
            }
            "torch.save" | "joblib.dump" => {
                let target = self.arg_flow(args, 1, &["f", "filename"]);
                self.simple(E::FileWrite, q, line, target);
            }
            _ => return self.other_module_call(q, args, line),
        }
        true
    }

    fn other_module_call(&mut self, q: &str, args: Args<'_>, line: usize) -> bool {
        if let Some(lib) = db_connect(q) {
            if self.db.is_none() {
                self.db = Some(lib);
            }
            return true;
        }
        let env = ["os.environ.", "os.environb."]
            .iter()
            .find_map(|p| q.strip_prefix(*p));
        if let Some(m) = env {
            if env_method(m) {
                let target = self.arg_flow(args, 0, &[]);
                self.simple(E::EnvWrite, q, line, target);
                return true;
            }
            return false;
        }
        if let Some(m) = path_unbound(q) {
            if let Some((recv, rest)) = args.pos.split_first() {
                let rest = Args {
                    pos: rest,
                    kw: args.kw,
                };
                return self.path_method(recv, Some(Kind::Path), m, rest, line);
            }
        }
        false
    }

    /// A move touches both ends: one fact over both; and when one end comes from no parameter
    /// (`os.rename(p, "/tmp/x")`), a fact for that end alone, which no snapshot covers — the
    /// destination overwritten would not come back.
    fn move_fact(&mut self, q: &str, line: usize, src: Flow, dst: Flow) {
        let lone = if src.is_empty() || dst.is_empty() {
            Some(Flow::new())
        } else {
            None
        };
        let mut target = src;
        union(&mut target, &dst);
        self.simple(E::Move, q, line, target);
        if let Some(end) = lone {
            self.simple(E::Move, q, line, end);
        }
    }

    /// `recv.m(...)` where `recv` is not a module.
    /// Class `ci` (or a base of it) is a builtin container the module keeps code in the items of
    /// ([`AttrWalk::container_self`]): that container, as [`Scope::draws`] names it.
    fn container_items(&self, ci: u32) -> Option<String> {
        self.hierarchy(ci).into_iter().find_map(|c| {
            let name = self.m.class_by_name.iter().find(|(_, &i)| i == c)?.0;
            self.attr_kept(name).then(|| format!("{ATTR}{name}"))
        })
    }

    /// The module keeps code in attributes named `m` ([`AttrCode`]).
    fn attr_kept(&self, m: &str) -> bool {
        self.m.attr_code.refs.contains_key(m) || self.m.attr_code.open.contains_key(m)
    }

    /// `recv.m` taken as a value, not called (`f = self.zap`, `Button(command=c.zap)`,
    /// `getattr(c, "zap")`): a method of the module's classes of that name may be called
    /// later, anywhere, with any arguments — counted here, with none forge can map (as a
    /// function of the module used as a value is). A property's getter runs here, which is
    /// what this counts too.
    fn method_value(&mut self, recv: &Expr, m: &str, line: usize) {
        if m.starts_with("__") && m.ends_with("__") {
            return;
        }
        if self.module_ish(recv) {
            return;
        }
        let none = Args { pos: &[], kw: &[] };
        if let Some(ci) = self.module_class(recv) {
            if self.method_of(ci, m).is_some() {
                self.method_site(ci, m, none, line, false);
            }
            return;
        }
        match self.kind_of(recv, 0) {
            Some(Kind::Object(ci)) => {
                if self.method_of(ci, m).is_some() {
                    self.method_site(ci, m, none, line, true);
                }
                for k in self.subclasses(ci) {
                    if self
                        .m
                        .classes
                        .get(k as usize)
                        .is_some_and(|c| c.methods.contains_key(m))
                    {
                        self.method_site(k, m, none, line, true);
                    }
                }
            }
            None => {
                self.untyped_method(m, none, line);
            }
            Some(_) => {}
        }
    }

    /// `getattr(recv, name)` with a name computed at run time (`getattr(self, "do_" + cmd)`):
    /// any method of the classes `recv` may be an instance of whose name starts with what the
    /// name is known to start with may be taken, and called with any arguments.
    fn computed_method(&mut self, recv: Option<&Expr>, prefix: &str, line: usize) {
        if recv.is_some_and(|r| self.module_ish(r)) {
            return;
        }
        // Code kept in attributes of those names may be what is taken too.
        let attrs: Vec<String> = self
            .m
            .attr_code
            .refs
            .keys()
            .chain(self.m.attr_code.open.keys())
            .filter(|a| a.starts_with(prefix))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let none = Args { pos: &[], kw: &[] };
        for a in attrs {
            self.drawn_call(&format!("{ATTR}{a}"), none, line);
        }
        let (classes, on_instance): (Vec<u32>, bool) = match recv.and_then(|r| self.module_class(r))
        {
            Some(ci) => (self.hierarchy(ci), false),
            None => match recv.and_then(|r| self.kind_of(r, 0)) {
                Some(Kind::Object(ci)) => {
                    let mut all = self.hierarchy(ci);
                    all.extend(self.subclasses(ci));
                    (all, true)
                }
                None => ((0..self.m.classes.len()).map(idx).collect(), true),
                Some(_) => return,
            },
        };
        let none = Args { pos: &[], kw: &[] };
        let mut n = 0usize;
        for c in classes {
            let mut names: Vec<&str> = self
                .m
                .classes
                .get(c as usize)
                .map(|k| k.methods.keys().copied().collect())
                .unwrap_or_default();
            names.sort_unstable();
            for name in names {
                if name.starts_with(prefix) && !(name.starts_with("__") && name.ends_with("__")) {
                    n += 1;
                    if n > MAX_FACTS {
                        return;
                    }
                    self.method_site(c, name, none, line, on_instance);
                }
            }
        }
    }

    fn method_call(&mut self, recv: &Expr, m: &str, args: Args<'_>, line: usize) {
        // `Store.wipe(s, p)`, `Store.make(p)`: through the class itself.
        if let Some(ci) = self.module_class(recv) {
            self.method_site(ci, m, args, line, false);
            return;
        }
        match self.kind_of(recv, 0) {
            Some(Kind::Object(ci)) => {
                self.method_site(ci, m, args, line, true);
                // An object said to be of a class (a return annotation) may be of a subclass
                // that overrides the method.
                for k in self.subclasses(ci) {
                    if self
                        .m
                        .classes
                        .get(k as usize)
                        .is_some_and(|c| c.methods.contains_key(m))
                    {
                        self.method_site(k, m, args, line, true);
                    }
                }
            }
            // Members are written where their names say: `../` and absolute names included
            // (older Pythons, or `filter` not set), so the destination does not contain them.
            Some(Kind::Archive) if matches!(m, "extract" | "extractall" | "_extract_member") => {
                let dest = match m {
                    "extract" => self.arg_flow(args, 1, &["path"]),
                    _ => self.arg_flow(args, 0, &["path"]),
                };
                self.fact(
                    E::FileWrite,
                    format!("tarfile/zipfile.{m}"),
                    line,
                    dest.escaped(),
                );
            }
            // Writing into the archive: recorded where it was opened (its mode).
            Some(Kind::Archive) => {}
            Some(Kind::Http(prefix)) => self.http_method(prefix, m, args, line),
            Some(Kind::Socket) => {
                if matches!(
                    m,
                    "connect"
                        | "connect_ex"
                        | "send"
                        | "sendall"
                        | "sendto"
                        | "sendmsg"
                        | "sendfile"
                ) {
                    let target = if m.starts_with("connect") {
                        self.arg_flow(args, 0, &["address"])
                    } else {
                        self.flow_of(recv)
                    };
                    self.fact(E::NetWrite, format!("socket.socket.{m}"), line, target);
                }
            }
            Some(Kind::HttpConn) => {
                if matches!(
                    m,
                    "request" | "putrequest" | "send" | "endheaders" | "connect"
                ) {
                    let target = self.flow_of(recv);
                    self.fact(
                        E::NetWrite,
                        format!("http.client.HTTPConnection.{m}"),
                        line,
                        target,
                    );
                }
            }
            Some(Kind::Ftp) => {
                let target = self.flow_of(recv);
                self.fact(E::NetWrite, format!("ftplib.FTP.{m}"), line, target);
            }
            Some(Kind::Telnet) => {
                let target = self.flow_of(recv);
                self.fact(E::NetWrite, format!("telnetlib.Telnet.{m}"), line, target);
            }
            Some(Kind::Smtp) => {
                if matches!(m, "sendmail" | "send_message") {
                    let target = self.flow_of(recv);
                    self.fact(E::Mail, format!("smtplib.SMTP.{m}"), line, target);
                }
            }
            Some(Kind::DbConn(lib)) => {
                if is_sql_method(m) {
                    let params = self.flow_of(recv);
                    self.sql(format!("{lib}.Connection.{m}"), args, params, line);
                }
            }
            Some(Kind::DbCursor(lib)) => {
                if is_sql_method(m) {
                    let params = self.flow_of(recv);
                    self.sql(format!("{lib}.Cursor.{m}"), args, params, line);
                }
            }
            Some(Kind::Environ) => {
                if env_method(m) {
                    let target = self.arg_flow(args, 0, &[]);
                    self.fact(E::EnvWrite, format!("os.environ.{m}"), line, target);
                }
            }
            Some(Kind::RequestWrite) => {}
            Some(Kind::Path) => {
                self.path_method(recv, Some(Kind::Path), m, args, line);
            }
            None | Some(Kind::DirEntry) => {
                if self.untyped_method(m, args, line) {
                    return;
                }
                if is_sql_method(m) {
                    if let Some(lib) = self.db.or(self.m.db) {
                        self.sql(format!("{lib}.Cursor.{m}"), args, Flow::new(), line);
                        return;
                    }
                }
                if data_writer(m) {
                    self.data_write(m, args, line);
                    return;
                }
                self.path_method(recv, None, m, args, line);
            }
        }
    }

    /// `df.to_csv(path)`, `fig.savefig(path)`, `img.save(path)`: a write of the path argument
    /// (not when there is none: `to_csv()` returns text, `obj.save()` is an ORM save).
    fn data_write(&mut self, m: &str, args: Args<'_>, line: usize) {
        let names = [
            "path",
            "path_or_buf",
            "fname",
            "filename",
            "file",
            "excel_writer",
            "fp",
        ];
        let Some(target) = args.get(0, &names) else {
            return;
        };
        if matches!(
            target,
            Expr::BooleanLiteral(_) | Expr::NoneLiteral(_) | Expr::NumberLiteral(_)
        ) {
            return;
        }
        let params = self.flow_of(target);
        self.fact(E::FileWrite, format!("<object>.{m}"), line, params);
    }

    fn http_method(&mut self, prefix: &str, m: &str, args: Args<'_>, line: usize) {
        let (effect, url_at) = match m {
            "get" | "head" | "options" => (E::NetRead, 0),
            "post" | "put" | "patch" | "delete" | "send" | "ws_connect" => (E::NetWrite, 0),
            "request" | "stream" | "urlopen" => (self.method_effect(args.get(0, &["method"])), 1),
            _ => return,
        };
        let url = self.arg_flow(args, url_at, &["url", "request"]);
        self.fact(effect, format!("{prefix}.{m}"), line, url);
    }

    fn sql(&mut self, call: String, args: Args<'_>, params: Flow, line: usize) {
        let effect = match args.get(0, &["sql", "query", "sql_script", "operation"]) {
            Some(e) => match self.literal(e) {
                Some(text) => classify_sql(&text),
                None => Some(E::SqlUnknown),
            },
            None => Some(E::SqlUnknown),
        };
        if let Some(effect) = effect {
            self.fact(effect, call, line, params);
        }
    }

    /// `pathlib.Path` methods. On a receiver not known to be a path only the names no other
    /// common type has, plus `open`/`rename`/`replace`/`chmod` on a parameter-derived receiver
    /// called like the path method. `true` when `m` was recognised.
    fn path_method(
        &mut self,
        recv: &Expr,
        kind: Option<Kind>,
        m: &str,
        args: Args<'_>,
        line: usize,
    ) -> bool {
        let known = kind == Some(Kind::Path);
        let rflow = self.flow_of(recv);
        let from_params = !rflow.is_empty();
        let call = format!("pathlib.Path.{m}");
        let one_target = (args.pos.len() == 1
            && !args.pos.iter().any(Expr::is_starred_expr)
            && args.kw.is_empty())
            || (args.pos.is_empty()
                && args.kw.len() == 1
                && args
                    .kw
                    .first()
                    .and_then(|k| k.arg.as_ref())
                    .is_some_and(|a| a.as_str() == "target"));
        let effect = match m {
            "write_text" | "write_bytes" | "touch" | "symlink_to" | "hardlink_to" => E::FileWrite,
            "unlink" => E::FileDelete,
            "rmdir" => E::DirDelete,
            "mkdir" => E::DirCreate,
            "iterdir" | "rglob" | "read_text" | "read_bytes" | "is_file" | "is_dir" | "exists"
            | "glob" => E::FileRead,
            "chmod" | "lchmod" if known || (from_params && args.pos.len() == 1) => E::FileWrite,
            "stat" | "lstat" | "is_symlink" | "readlink" | "owner" | "group" | "samefile"
            | "walk"
                if known =>
            {
                E::FileRead
            }
            "open" if known || from_params => {
                if self.mode_writes(args.get(0, &["mode"]), args) {
                    E::FileWrite
                } else {
                    E::FileRead
                }
            }
            "rename" | "replace" if known || (from_params && one_target) => {
                let dst = self.arg_flow(args, 0, &["target"]);
                self.move_fact(&call, line, rflow, dst);
                return true;
            }
            "move" | "move_into" if known => {
                let dst = self.arg_flow(args, 0, &["target", "target_dir"]);
                self.move_fact(&call, line, rflow, dst);
                return true;
            }
            "copy" | "copy_into" if known => {
                let dst = self.arg_flow(args, 0, &["target", "target_dir"]);
                self.fact(E::FileRead, call.clone(), line, rflow);
                self.fact(E::FileWrite, call, line, dst);
                return true;
            }
            _ => return false,
        };
        // A glob's pattern is joined under the receiver: what it matches is read too (a
        // pattern `../x/*` lists outside it), so it is a parameter of the read.
        let target = match m {
            "glob" | "rglob" => self.derive_method(recv, m, args, 0).unwrap_or(rflow),
            _ => rflow,
        };
        self.fact(effect, call, line, target);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str) -> HashMap<String, Vec<PyFact>> {
        let parsed = ruff_python_parser::parse_module(src).unwrap();
        let index = LineIndex::from_source_text(src);
        let imports = Imports::collect(parsed.suite());
        analyse(
            parsed.suite(),
            src,
            &index,
            &imports,
            &Package::default(),
            "m",
        )
    }

    fn src(lines: &[&str]) -> String {
        let mut s = lines.join("\n");
        s.push('\n');
        s
    }

    fn fact(
        effect: PyEffect,
        call: &str,
        line: usize,
        params: &[&str],
        via: Option<&str>,
    ) -> PyFact {
        PyFact {
            effect,
            call: call.to_string(),
            line,
            params: params.iter().map(|p| p.to_string()).collect(),
            escapes: vec![],
            segments: vec![],
            via: via.map(str::to_string),
        }
    }

    fn escaping(mut f: PyFact, escapes: &[&str]) -> PyFact {
        f.escapes = escapes.iter().map(|p| p.to_string()).collect();
        f
    }

    /// `f` with `segments` joined under another parameter's path.
    fn joined(mut f: PyFact, segments: &[&str]) -> PyFact {
        f.segments = segments.iter().map(|p| p.to_string()).collect();
        f
    }

    #[test]
    fn open_modes() {
        let out = run(&src(&[
            "import io",
            "def modes(p, q, m):",
            "    open(p)",
            "    open(p, \"r\")",
            "    open(p, \"rb\")",
            "    open(p, \"w\")",
            "    open(p, mode=\"a\")",
            "    open(q, \"w+\")",
            "    open(p, m)",
            "    io.open(q, \"x\")",
        ]));
        assert_eq!(
            out["modes"],
            vec![
                fact(E::FileRead, "open", 3, &["p"], None),
                fact(E::FileRead, "open", 4, &["p"], None),
                fact(E::FileRead, "open", 5, &["p"], None),
                fact(E::FileWrite, "open", 6, &["p"], None),
                fact(E::FileWrite, "open", 7, &["p"], None),
                fact(E::FileWrite, "open", 8, &["q"], None),
                fact(E::FileWrite, "open", 9, &["p"], None),
                fact(E::FileWrite, "io.open", 10, &["q"], None),
            ]
        );
    }

    #[test]
    fn path_methods_through_locals() {
        let out = run(&src(&[
            "from pathlib import Path",
            "def save(root, name, text):",
            "    p = Path(root) / name",
            "    p.write_text(text)",
            "    p.with_suffix(\".bak\").unlink()",
            "    Path(root).mkdir(parents=True)",
            "    data = p.read_text()",
            "    p.rename(Path(root) / \"old\")",
            "    with p.open(\"a\") as f:",
            "        f.write(data)",
            "    return data.replace(\"a\", \"b\")",
        ]));
        assert_eq!(
            out["save"],
            vec![
                joined(
                    fact(
                        E::FileWrite,
                        "pathlib.Path.write_text",
                        4,
                        &["root", "name"],
                        None
                    ),
                    &["name"]
                ),
                escaping(
                    fact(
                        E::FileDelete,
                        "pathlib.Path.unlink",
                        5,
                        &["root", "name"],
                        None
                    ),
                    &["root", "name"]
                ),
                fact(E::DirCreate, "pathlib.Path.mkdir", 6, &["root"], None),
                joined(
                    fact(
                        E::FileRead,
                        "pathlib.Path.read_text",
                        7,
                        &["root", "name"],
                        None
                    ),
                    &["name"]
                ),
                joined(
                    fact(E::Move, "pathlib.Path.rename", 8, &["root", "name"], None),
                    &["name"]
                ),
                joined(
                    fact(
                        E::FileWrite,
                        "pathlib.Path.open",
                        9,
                        &["root", "name"],
                        None
                    ),
                    &["name"]
                ),
            ]
        );
    }

    #[test]
    fn joins_fstrings_and_aliases() {
        let out = run(&src(&[
            "import os",
            "import shutil as sh",
            "from os import remove as rm",
            "def clean(root, name, keep):",
            "    target = os.path.join(root, name)",
            "    rm(target)",
            "    sh.rmtree(f\"{root}/cache\")",
            "    os.makedirs(os.path.join(root, \"out\"), exist_ok=True)",
            "    os.rmdir(keep)",
        ]));
        assert_eq!(
            out["clean"],
            vec![
                joined(
                    fact(E::FileDelete, "os.remove", 6, &["root", "name"], None),
                    &["name"]
                ),
                fact(E::TreeDelete, "shutil.rmtree", 7, &["root"], None),
                fact(E::DirCreate, "os.makedirs", 8, &["root"], None),
                fact(E::DirDelete, "os.rmdir", 9, &["keep"], None),
            ]
        );
    }

    #[test]
    fn moves_and_copies_name_both_ends() {
        let out = run(&src(&[
            "import shutil, os",
            "def move(src, dst):",
            "    shutil.move(src, dst)",
            "def copy(a, b):",
            "    shutil.copy(a, dst=b)",
            "    os.rename(b, a)",
        ]));
        assert_eq!(
            out["move"],
            vec![fact(E::Move, "shutil.move", 3, &["src", "dst"], None)]
        );
        assert_eq!(
            out["copy"],
            vec![
                fact(E::FileRead, "shutil.copy", 5, &["a"], None),
                fact(E::FileWrite, "shutil.copy", 5, &["b"], None),
                fact(E::Move, "os.rename", 6, &["a", "b"], None),
            ]
        );
    }

    #[test]
    fn processes() {
        let out = run(&src(&[
            "import subprocess as sp",
            "import os",
            "def run(cmd, path):",
            "    sp.run([\"ls\", path], check=True)",
            "    os.system(f\"rm {cmd}\")",
            "    out = sp.check_output(args=cmd)",
            "    return out",
        ]));
        assert_eq!(
            out["run"],
            vec![
                fact(E::Process, "subprocess.run", 4, &["path"], None),
                fact(E::Process, "os.system", 5, &["cmd"], None),
                fact(E::Process, "subprocess.check_output", 6, &["cmd"], None),
            ]
        );
    }

    #[test]
    fn network_reads_and_writes() {
        let out = run(&src(&[
            "import requests",
            "import httpx",
            "from urllib.request import urlopen, Request",
            "def fetch(url):",
            "    return requests.get(url, timeout=5).json()",
            "def send(url, payload):",
            "    requests.post(url, json=payload)",
            "    with httpx.Client() as c:",
            "        c.get(url)",
            "        c.post(url, data=payload)",
            "def legacy(url, body):",
            "    urlopen(url)",
            "    urlopen(url, data=body)",
            "def legacy_req(url, body):",
            "    req = Request(url, data=body)",
            "    return urlopen(req)",
            "def generic(url):",
            "    requests.request(\"GET\", url)",
            "    requests.request(\"PUT\", url)",
        ]));
        assert_eq!(
            out["fetch"],
            vec![fact(E::NetRead, "requests.get", 5, &["url"], None)]
        );
        assert_eq!(
            out["send"],
            vec![
                fact(E::NetWrite, "requests.post", 7, &["url"], None),
                fact(E::NetRead, "httpx.Client.get", 9, &["url"], None),
                fact(E::NetWrite, "httpx.Client.post", 10, &["url"], None),
            ]
        );
        assert_eq!(
            out["legacy"],
            vec![
                fact(E::NetRead, "urllib.request.urlopen", 12, &["url"], None),
                fact(E::NetWrite, "urllib.request.urlopen", 13, &["url"], None),
            ]
        );
        assert_eq!(
            out["legacy_req"],
            vec![fact(
                E::NetWrite,
                "urllib.request.urlopen",
                16,
                &["url", "body"],
                None
            )]
        );
        assert_eq!(
            out["generic"],
            vec![
                fact(E::NetRead, "requests.request", 18, &["url"], None),
                fact(E::NetWrite, "requests.request", 19, &["url"], None),
            ]
        );
    }

    #[test]
    fn mail() {
        let out = run(&src(&[
            "import smtplib",
            "def mail(host, to, msg):",
            "    s = smtplib.SMTP(host)",
            "    s.login(\"u\", \"p\")",
            "    s.sendmail(\"me\", to, msg)",
            "    s.quit()",
        ]));
        assert_eq!(
            out["mail"],
            vec![
                fact(E::Mail, "smtplib.SMTP", 3, &["host"], None),
                fact(E::Mail, "smtplib.SMTP.sendmail", 5, &["host"], None),
            ]
        );
    }

    #[test]
    fn sqlite_statements() {
        let out = run(&src(&[
            "import sqlite3",
            "def query(db, name):",
            "    conn = sqlite3.connect(db)",
            "    cur = conn.cursor()",
            "    cur.execute(\"SELECT * FROM t WHERE name = ?\", (name,))",
            "    cur.execute(\"INSERT INTO t VALUES (?)\", (name,))",
            "    cur.execute(f\"DELETE FROM {name}\")",
            "    conn.executescript(\"\"\"",
            "        -- setup",
            "        CREATE TABLE IF NOT EXISTS t (x);",
            "        SELECT 1;",
            "    \"\"\")",
            "    conn.execute(\"  /* c */ with x as (select 1) select * from x\")",
            "    conn.commit()",
            "def other(c):",
            "    c.execute(\"BEGIN\")",
            "    c.execute(\"PRAGMA table_info(t)\")",
            "    c.execute(\"PRAGMA journal_mode = WAL\")",
            "    c.execute(\"SELECT 1; \" \"DELETE FROM t\")",
        ]));
        assert_eq!(
            out["query"],
            vec![
                fact(E::SqlRead, "sqlite3.Cursor.execute", 5, &["db"], None),
                fact(E::SqlWrite, "sqlite3.Cursor.execute", 6, &["db"], None),
                fact(E::SqlUnknown, "sqlite3.Cursor.execute", 7, &["db"], None),
                fact(
                    E::SqlWrite,
                    "sqlite3.Connection.executescript",
                    8,
                    &["db"],
                    None
                ),
                fact(E::SqlRead, "sqlite3.Connection.execute", 13, &["db"], None),
            ]
        );
        assert_eq!(
            out["other"],
            vec![
                fact(E::SqlRead, "sqlite3.Cursor.execute", 17, &[], None),
                fact(E::SqlWrite, "sqlite3.Cursor.execute", 18, &[], None),
                fact(E::SqlWrite, "sqlite3.Cursor.execute", 19, &[], None),
            ]
        );
    }

    #[test]
    fn sql_classifier() {
        assert_eq!(classify_sql("select 1"), Some(E::SqlRead));
        assert_eq!(
            classify_sql("  -- x\n  UPDATE t SET a = 1"),
            Some(E::SqlWrite)
        );
        assert_eq!(
            classify_sql("WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a"),
            Some(E::SqlWrite)
        );
        assert_eq!(classify_sql("SELECT 'DELETE; DROP'"), Some(E::SqlRead));
        assert_eq!(classify_sql("COMMIT"), None);
        assert_eq!(classify_sql("frobnicate"), Some(E::SqlUnknown));
    }

    #[test]
    fn environment_writes() {
        let out = run(&src(&[
            "import os",
            "from os import environ",
            "def env(key, value):",
            "    os.environ[key] = value",
            "    os.environ.update({\"A\": value})",
            "    del os.environ[\"B\"]",
            "    environ.setdefault(\"C\", \"1\")",
            "    os.putenv(key, value)",
            "    x = os.environ.get(\"D\")",
            "    return x",
        ]));
        assert_eq!(
            out["env"],
            vec![
                fact(E::EnvWrite, "os.environ.__setitem__", 4, &["key"], None),
                fact(E::EnvWrite, "os.environ.update", 5, &["value"], None),
                fact(E::EnvWrite, "os.environ.__delitem__", 6, &[], None),
                fact(E::EnvWrite, "os.environ.setdefault", 7, &[], None),
                fact(E::EnvWrite, "os.putenv", 8, &["key"], None),
            ]
        );
    }

    #[test]
    fn helper_chain_propagates_with_via() {
        let out = run(&src(&[
            "def backup(x):",
            "    save(x)",
            "def save(path):",
            "    _write(path)",
            "def _write(p):",
            "    with open(p, \"w\") as f:",
            "        f.write(\"x\")",
        ]));
        assert_eq!(
            out["_write"],
            vec![fact(E::FileWrite, "open", 6, &["p"], None)]
        );
        assert_eq!(
            out["save"],
            vec![fact(E::FileWrite, "open", 4, &["path"], Some("_write"))]
        );
        assert_eq!(
            out["backup"],
            vec![fact(E::FileWrite, "open", 2, &["x"], Some("_write"))]
        );
    }

    #[test]
    fn arguments_bind_by_position_keyword_and_default() {
        let out = run(&src(&[
            "import shutil",
            "def outer(a, b):",
            "    helper(b, dst=a)",
            "    helper(a)",
            "def helper(src, dst=\"x\"):",
            "    shutil.copy(src, dst)",
            "async def later(p):",
            "    await ahelper(p)",
            "async def ahelper(q):",
            "    shutil.rmtree(q)",
        ]));
        assert_eq!(
            out["outer"],
            vec![
                fact(E::FileRead, "shutil.copy", 3, &["b"], Some("helper")),
                fact(E::FileWrite, "shutil.copy", 3, &["a"], Some("helper")),
                fact(E::FileRead, "shutil.copy", 4, &["a"], Some("helper")),
                fact(E::FileWrite, "shutil.copy", 4, &[], Some("helper")),
            ]
        );
        assert_eq!(
            out["later"],
            vec![fact(
                E::TreeDelete,
                "shutil.rmtree",
                8,
                &["p"],
                Some("ahelper")
            )]
        );
    }

    #[test]
    fn mutual_recursion_terminates_and_every_definition_counts() {
        let out = run(&src(&[
            "import os",
            "def a(x):",
            "    os.remove(x)",
            "    b(x)",
            "def b(y):",
            "    a(y)",
            "if os.name == \"nt\":",
            "    def c(z):",
            "        c(z)",
            "else:",
            "    def c(z):",
            "        os.unlink(z)",
        ]));
        assert_eq!(
            out["a"],
            vec![
                fact(E::FileDelete, "os.remove", 3, &["x"], None),
                fact(E::FileDelete, "os.remove", 4, &["x"], Some("a")),
            ]
        );
        assert_eq!(
            out["b"],
            vec![fact(E::FileDelete, "os.remove", 6, &["y"], Some("a"))]
        );
        // Which `c` runs is decided at import: a call of `c` may run either (the first used to
        // win, and `c` came out read-only).
        assert!(
            out["c"]
                .iter()
                .any(|f| f.effect == E::FileDelete && f.call == "os.unlink" && f.params == ["z"]),
            "{:?}",
            out["c"]
        );
    }

    #[test]
    fn read_only_functions() {
        let out = run(&src(&[
            "import os, json",
            "def load(path):",
            "    with open(path) as f:",
            "        return json.load(f)",
            "def pure(x):",
            "    name = str(x).replace(\" \", \"_\")",
            "    return [i * 2 for i in range(x)], name",
        ]));
        assert_eq!(
            out["load"],
            vec![fact(E::FileRead, "open", 3, &["path"], None)]
        );
        assert!(out["pure"].is_empty());
    }

    #[test]
    fn named_file_readers_of_the_standard_library() {
        let out = run(&src(&[
            "import fileinput, filecmp, linecache",
            "from pathlib import Path",
            "def look(a, b, c, root, pattern):",
            "    linecache.getline(a, 1)",
            "    filecmp.cmp(a, b)",
            "    for line in fileinput.input(c):",
            "        pass",
            "    return list(Path(root).glob(pattern))",
        ]));
        let reads: Vec<(String, Vec<String>)> = out["look"]
            .iter()
            .map(|f| (f.call.clone(), f.params.clone()))
            .collect();
        let has = |call: &str, params: &[&str]| {
            reads
                .iter()
                .any(|(c, p)| c == call && p.iter().map(String::as_str).eq(params.iter().copied()))
        };
        assert!(
            out["look"].iter().all(|f| f.effect == E::FileRead),
            "{reads:?}"
        );
        assert!(has("linecache.getline", &["a"]), "{reads:?}");
        assert!(
            has("filecmp.cmp", &["a"]) && has("filecmp.cmp", &["b"]),
            "{reads:?}"
        );
        assert!(has("fileinput.input", &["c"]), "{reads:?}");
        assert!(has("pathlib.Path.glob", &["root", "pattern"]), "{reads:?}");
    }

    #[test]
    fn nested_defs_and_callbacks() {
        let out = run(&src(&[
            "import shutil, os",
            "from concurrent.futures import ThreadPoolExecutor",
            "def sync(src, dst):",
            "    def _copy(a):",
            "        shutil.copy(a, dst)",
            "    for name in os.listdir(src):",
            "        _copy(name)",
            "def pool(paths):",
            "    with ThreadPoolExecutor() as ex:",
            "        ex.map(_drop, paths)",
            "def _drop(p):",
            "    os.remove(p)",
        ]));
        assert_eq!(
            out["sync"],
            vec![
                fact(E::FileRead, "shutil.copy", 5, &[], None),
                fact(E::FileWrite, "shutil.copy", 5, &["dst"], None),
                fact(E::FileRead, "os.listdir", 6, &["src"], None),
            ]
        );
        assert_eq!(
            out["pool"],
            vec![fact(
                E::FileDelete,
                "os.remove",
                10,
                &["paths"],
                Some("_drop")
            )]
        );
    }

    #[test]
    fn derivations_that_can_lead_outside_escape() {
        let out = run(&src(&[
            "import os, shutil",
            "from pathlib import Path",
            "def esc(p):",
            "    os.makedirs(os.path.dirname(p))",
            "    shutil.rmtree(Path(p).parent)",
            "    Path(p).with_suffix(\".bak\").unlink()",
            "    os.remove(p + \".bak\")",
            "    os.remove(f\"{p}.bak\")",
            "    os.remove(f\"{p}_old/x\")",
            "    os.remove(os.path.join(p, \"..\", \"x\"))",
            "    os.remove(os.path.join(p, \"/etc/passwd\"))",
            "    os.remove(Path(p) / \"../x\")",
            "    os.remove(\"%s.bak\" % p)",
            "    os.remove(\"{}.bak\".format(p))",
            "    os.remove(os.path.abspath(p))",
            "    os.remove(Path(p).resolve())",
            "    os.remove(p[:-4])",
            "    os.remove(p.replace(\".txt\", \".bak\"))",
            "    os.remove(os.path.basename(p))",
            "    os.remove(\"/tmp/\" + p)",
            "    os.remove(os.path.join(\"/tmp\", p))",
            "def aug(p):",
            "    t = p",
            "    t += \".bak\"",
            "    os.remove(t)",
            "    u = Path(p)",
            "    u /= \"x\"",
            "    os.remove(u)",
        ]));
        let mut expected = vec![
            escaping(fact(E::DirCreate, "os.makedirs", 4, &["p"], None), &["p"]),
            escaping(
                fact(E::TreeDelete, "shutil.rmtree", 5, &["p"], None),
                &["p"],
            ),
            escaping(
                fact(E::FileDelete, "pathlib.Path.unlink", 6, &["p"], None),
                &["p"],
            ),
        ];
        for line in 7..=21 {
            expected.push(escaping(
                fact(E::FileDelete, "os.remove", line, &["p"], None),
                &["p"],
            ));
        }
        assert_eq!(out["esc"], expected);
        assert_eq!(
            out["aug"],
            vec![
                escaping(fact(E::FileDelete, "os.remove", 25, &["p"], None), &["p"]),
                fact(E::FileDelete, "os.remove", 28, &["p"], None),
            ]
        );
    }

    #[test]
    fn containment_preserving_forms_do_not_escape() {
        let out = run(&src(&[
            "import os, glob, shutil",
            "from pathlib import Path",
            "def inside(p, q):",
            "    os.remove(Path(p) / \"x\")",
            "    os.makedirs(os.path.join(p, \"a\", \"b\"))",
            "    os.remove(f\"{p}/x\")",
            "    for f in Path(p).glob(\"*.txt\"):",
            "        f.unlink()",
            "    for g in glob.glob(os.path.join(p, \"*.txt\")):",
            "        os.remove(g)",
            "    for n in os.listdir(p):",
            "        os.remove(os.path.join(p, n))",
            "    shutil.copy(p, os.path.join(q, os.path.basename(p)))",
            "    os.remove(str(Path(p).joinpath(\"a\", \"b\")))",
            "    os.remove(os.path.join(q, f\"{Path(p).stem}.json\"))",
            "    os.remove(Path(q) / (os.path.basename(p) + \".bak\"))",
        ]));
        assert_eq!(
            out["inside"],
            vec![
                fact(E::FileDelete, "os.remove", 4, &["p"], None),
                fact(E::DirCreate, "os.makedirs", 5, &["p"], None),
                fact(E::FileDelete, "os.remove", 6, &["p"], None),
                fact(E::FileRead, "pathlib.Path.glob", 7, &["p"], None),
                fact(E::FileDelete, "pathlib.Path.unlink", 8, &["p"], None),
                fact(E::FileRead, "glob.glob", 9, &["p"], None),
                fact(E::FileDelete, "os.remove", 10, &["p"], None),
                fact(E::FileRead, "os.listdir", 11, &["p"], None),
                fact(E::FileDelete, "os.remove", 12, &["p"], None),
                fact(E::FileRead, "shutil.copy", 13, &["p"], None),
                fact(E::FileWrite, "shutil.copy", 13, &["p", "q"], None),
                fact(E::FileDelete, "os.remove", 14, &["p"], None),
                fact(E::FileDelete, "os.remove", 15, &["p", "q"], None),
                fact(E::FileDelete, "os.remove", 16, &["p", "q"], None),
            ]
        );
    }

    #[test]
    fn walk_and_scandir_entries() {
        let out = run(&src(&[
            "import os",
            "def walk(root):",
            "    for d, dirs, files in os.walk(root):",
            "        for f in files:",
            "            os.remove(os.path.join(d, f))",
            "            os.remove(f)",
            "    for e in os.scandir(root):",
            "        os.remove(e.path)",
            "        os.remove(e.name)",
        ]));
        assert_eq!(
            out["walk"],
            vec![
                fact(E::FileRead, "os.walk", 3, &["root"], None),
                fact(E::FileDelete, "os.remove", 5, &["root"], None),
                escaping(
                    fact(E::FileDelete, "os.remove", 6, &["root"], None),
                    &["root"],
                ),
                fact(E::FileRead, "os.scandir", 7, &["root"], None),
                fact(E::FileDelete, "os.remove", 8, &["root"], None),
                escaping(
                    fact(E::FileDelete, "os.remove", 9, &["root"], None),
                    &["root"],
                ),
            ]
        );
    }

    #[test]
    fn archive_folder_beside_the_file_escapes() {
        let out = run(&src(&[
            "import os",
            "def archive(path, folder=None):",
            "    target = folder or os.path.join(os.path.dirname(path), \"archive\")",
            "    os.makedirs(target, exist_ok=True)",
            "    os.replace(path, os.path.join(target, os.path.basename(path)))",
        ]));
        assert_eq!(
            out["archive"],
            vec![
                escaping(
                    fact(E::DirCreate, "os.makedirs", 4, &["path", "folder"], None),
                    &["path"],
                ),
                escaping(
                    fact(E::Move, "os.replace", 5, &["path", "folder"], None),
                    &["path"],
                ),
            ]
        );
    }

    #[test]
    fn escapes_propagate_through_helpers() {
        let out = run(&src(&[
            "import os, shutil",
            "def save(path):",
            "    _save(os.path.dirname(path))",
            "    _save(path)",
            "def _save(p):",
            "    os.makedirs(p)",
            "def backup(x):",
            "    _bak(x)",
            "def _bak(q):",
            "    shutil.copy(q, q + \".bak\")",
            "def nameonly(r):",
            "    _save(os.path.basename(r))",
        ]));
        assert_eq!(
            out["_save"],
            vec![fact(E::DirCreate, "os.makedirs", 6, &["p"], None)]
        );
        assert_eq!(
            out["save"],
            vec![
                escaping(
                    fact(E::DirCreate, "os.makedirs", 3, &["path"], Some("_save")),
                    &["path"],
                ),
                fact(E::DirCreate, "os.makedirs", 4, &["path"], Some("_save")),
            ]
        );
        assert_eq!(
            out["_bak"],
            vec![
                fact(E::FileRead, "shutil.copy", 10, &["q"], None),
                escaping(fact(E::FileWrite, "shutil.copy", 10, &["q"], None), &["q"]),
            ]
        );
        assert_eq!(
            out["backup"],
            vec![
                fact(E::FileRead, "shutil.copy", 8, &["x"], Some("_bak")),
                escaping(
                    fact(E::FileWrite, "shutil.copy", 8, &["x"], Some("_bak")),
                    &["x"],
                ),
            ]
        );
        assert_eq!(
            out["nameonly"],
            vec![escaping(
                fact(E::DirCreate, "os.makedirs", 12, &["r"], Some("_save")),
                &["r"],
            )]
        );
    }

    #[test]
    fn deep_nesting_returns() {
        let handle = std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(|| {
                let deep = [
                    format!("{}1", "-".repeat(10_000)),
                    format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
                    format!("{}p{}", "f(".repeat(5_000), ")".repeat(5_000)),
                ];
                for inner in deep {
                    let text = format!("import os\ndef f(p):\n    x = {inner}\n    os.remove(p)\n");
                    let out = run(&text);
                    let facts = &out["f"];
                    assert!(facts.contains(&fact(E::FileDelete, "os.remove", 4, &["p"], None)));
                }
            })
            .unwrap();
        handle.join().unwrap();
    }
}
