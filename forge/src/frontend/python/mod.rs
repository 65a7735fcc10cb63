//! The Python front end: a module (or a package directory) becomes one capability per public
//! function, without ever running or importing it.
//!
//! [`imports`] resolves the module's names, [`types`] turns type hints into JSON Schema,
//! [`docstring`] reads Google, NumPy and Sphinx docstrings, and [`effects`] finds the calls with
//! known effects in each body (following calls into the module's own functions). Inference
//! ([`crate::infer`]) turns those facts into effects and undo plans.
//!
//! Which functions: module-level `def`/`async def` whose name does not start with `_`, or the
//! names `__all__` lists when it is a literal list or tuple; definitions inside module-level `if`
//! and `try` count too; a name bound more than once is not imported (a warning says where).
//! A function taking `*args` or `**kwargs` is skipped with a warning: a tool's arguments are
//! named.
//!
//! Ruff's parser grows its own stack, so no nesting overflows it; what forge does with the tree
//! (and dropping it) runs on a thread with a large stack, and each pass caps its own depth.

mod docstring;
mod effects;
mod imports;
mod stdlib_names;

/// The diagnostic of a module named as one of the standard library's, which `forge import`
/// refuses (the generated crate would run the library's functions, not the module's).
pub const STDLIB_NAME: &str = "stdlib-name";
mod types;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use aifirst_capability::Annotations;
use ruff_python_ast::{Expr, ModModule, Stmt, StmtFunctionDef};
use ruff_python_parser::Parsed;
use ruff_source_file::LineIndex;
use ruff_text_size::Ranged;
use serde_json::{json, Map, Value};

use crate::diag::{Diagnostic, Location, Severity};
use crate::driver::{Lowered, Options, Retained, Stats};
use crate::ir::{
    ApiInfo, Binding, Capability, Declared, Ir, PyParam, PythonBinding, PythonHints, SourceRef,
};
use crate::naming::Namer;

/// The largest module forge reads.
const MAX_MODULE_BYTES: u64 = 16 * 1024 * 1024;
/// The most modules a package import reads.
const MAX_MODULES: usize = 10_000;
/// The stack of the thread that walks the syntax trees.
const STACK_BYTES: usize = 512 * 1024 * 1024;

/// Whether `path` is for this front end: a `.py` file, or a directory (a package).
pub fn accepts(path: &Path) -> bool {
    path.is_dir() || path.extension().is_some_and(|e| e == "py" || e == "pyi")
}

/// One module to read.
struct Module {
    /// Dotted import name (`tools`, `pkg.files`).
    name: String,
    /// Path relative to what the user named, for display (`tools.py`, `pkg/files.py`).
    shown: String,
    path: PathBuf,
}

/// Reads a Python module or package into the IR, before inference.
pub fn lower(path: &Path, opts: &Options) -> Result<Lowered, Box<Diagnostic>> {
    let display = path.display().to_string();
    let fatal = |code: &'static str, message: String, help: &str| {
        Box::new(
            Diagnostic::new(
                Severity::Error,
                code,
                message,
                Location {
                    file: display.clone(),
                    pointer: String::new(),
                    line: None,
                },
            )
            .with_help(help),
        )
    };
    let (modules, title) = if path.is_dir() {
        let title = path
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "package".to_string());
        let modules = package_modules(path, &title).map_err(|e| {
            fatal(
                "unreadable",
                format!("{display}: {e}"),
                "forge reads a directory as a package of .py files",
            )
        })?;
        if modules.is_empty() {
            return Err(fatal(
                "no-modules",
                format!("{display}: no .py files"),
                "name a .py file or a directory of them",
            ));
        }
        (modules, title)
    } else {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "module".to_string());
        let shown = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| display.clone());
        (
            vec![Module {
                name: stem.clone(),
                shown,
                path: path.to_path_buf(),
            }],
            stem,
        )
    };
    let single = !path.is_dir();
    let mut diags = Vec::new();
    // `helpers.py` beside a package directory `helpers/`: Python imports the directory.
    let mut modules = modules;
    let packages: BTreeSet<String> = modules
        .iter()
        .filter(|m| m.shown == "__init__.py" || m.shown.ends_with("/__init__.py"))
        .map(|m| m.name.clone())
        .collect();
    modules.retain(|m| {
        let shadowed = packages.contains(&m.name)
            && !(m.shown == "__init__.py" || m.shown.ends_with("/__init__.py"));
        if shadowed {
            diags.push(
                Diagnostic::new(
                    Severity::Warning,
                    "shadowed-module",
                    format!(
                        "{}: Python imports the package directory of the same name, `{}`, not this file: it is left out",
                        m.shown, m.name
                    ),
                    location(&m.shown, None),
                )
                .with_help("rename the file or the directory"),
            );
        }
        !shadowed
    });
    // The worker imports the module by this name: one the standard library has is taken. Shown
    // here (inspect, check); `forge import` refuses it (`STDLIB_NAME`).
    if stdlib_names::is_stdlib_module(&title) {
        let mut d = *fatal(
            STDLIB_NAME,
            format!(
                "{display}: `{title}` is the name of a module of Python's standard library: the \
                 worker would import that module, not this one, so the functions forge reads here \
                 would not be the ones that run"
            ),
            &format!("rename the file (or the package's directory), e.g. `my_{title}`"),
        );
        d.severity = Severity::Warning;
        diags.push(d);
    }
    let mut found: Vec<Found> = Vec::new();
    let mut inputs: Vec<Input> = Vec::new();
    for m in &modules {
        let text = match read_module(&m.path) {
            Ok(t) => t,
            Err(why) => {
                let msg = format!("{}: {why}", m.shown);
                if single {
                    return Err(fatal("unreadable", msg, "forge reads UTF-8 Python source"));
                }
                diags.push(Diagnostic::new(
                    Severity::Error,
                    "unreadable",
                    msg,
                    location(&m.shown, None),
                ));
                // Still a module of the package: a call into it is code forge cannot read,
                // not a call into nothing.
                inputs.push(Input {
                    name: m.name.clone(),
                    shown: m.shown.clone(),
                    text: String::new(),
                    package: true,
                });
                continue;
            }
        };
        inputs.push(Input {
            name: m.name.clone(),
            shown: m.shown.clone(),
            text,
            package: !single,
        });
    }
    // A module read alone is all the crate carries: a module beside it that it imports is not.
    let beside = if single {
        path.parent().map(Path::to_path_buf)
    } else {
        None
    };
    let read = std::thread::Builder::new()
        .name("forge-python".into())
        .stack_size(STACK_BYTES)
        .spawn(move || read_modules(&inputs, beside.as_deref()))
        .map_err(|e| fatal("thread", e.to_string(), "forge could not start a thread"))?
        .join();
    let Ok(results) = read else {
        return Err(fatal(
            "internal",
            format!("{display}: reading the modules failed"),
            "please report this module as a bug",
        ));
    };
    for result in results {
        match result {
            Ok((mut fns, mut d)) => {
                found.append(&mut fns);
                diags.append(&mut d);
            }
            Err(syntax) if single => return Err(syntax),
            Err(syntax) => diags.push(*syntax),
        }
    }

    // Names: the function's own, or `module_function` when two modules share one.
    // A decorator's `name=` that is another function's name would take that function's tool
    // name, and with it the project's `[operations.<name>]` in forge.toml (a deleting function
    // named `list_notes` got the operator's read-only entry for the real `list_notes`).
    let functions: BTreeSet<String> = found
        .iter()
        .map(|f| crate::naming::snake_case(&f.function))
        .collect();
    for f in &mut found {
        let Some(n) = &f.declared_name else { continue };
        let taken = crate::naming::snake_case(n);
        if taken != crate::naming::snake_case(&f.function) && functions.contains(&taken) {
            diags.push(Diagnostic::new(
                Severity::Warning,
                "bad-override",
                format!(
                    "`{}`: @capability(name=\"{}\") is the name of another function of the module, so it is ignored (its tool keeps the name `{}`)",
                    f.function, n, f.function
                ),
                location(&f.file, Some(f.line)),
            ));
            f.declared_name = None;
        }
    }
    let mut count: HashMap<&str, usize> = HashMap::new();
    for f in &found {
        *count.entry(f.function.as_str()).or_default() += 1;
    }
    let bases: Vec<String> = found
        .iter()
        .map(|f| {
            let base = match (&f.declared_name, count.get(f.function.as_str())) {
                (Some(n), _) => n.clone(),
                (None, Some(&n)) if n > 1 => {
                    format!("{}_{}", f.module.replace('.', "_"), f.function)
                }
                _ => f.function.clone(),
            };
            crate::naming::snake_case(&base)
        })
        .collect();
    let mut namer = Namer::new(opts.max_name_len);
    for b in &bases {
        namer.reserve(b);
    }
    let mut stats = Stats {
        operations: found.len(),
        ..Stats::default()
    };
    let mut capabilities = Vec::with_capacity(found.len());
    let empty = crate::defs::SharedDefs::default();
    for (f, base) in found.into_iter().zip(bases) {
        let (name, renamed) = namer.assign(&base);
        if renamed.is_some() {
            stats.renamed += 1;
        }
        let loc = location(&f.file, Some(f.line));
        let mut cap = Capability {
            name,
            operation_id: Some(f.function.clone()),
            title: None,
            description: f.description,
            tags: vec![f.module.clone()],
            deprecated: f.deprecated,
            input_schema: f.input_schema,
            output_schema: f
                .output_schema
                .and_then(|v| serde_json::value::to_raw_value(&v).ok())
                .map(std::sync::Arc::from),
            effects: Vec::new(),
            annotations: Annotations::default(),
            undo: None,
            binding: Binding::Python(PythonBinding {
                module: f.module,
                file: f.file.clone(),
                function: f.function,
                is_async: f.is_async,
                params: f.params,
                hints: PythonHints {
                    facts: f.facts,
                    opaque_defaults: f.opaque_defaults,
                },
            }),
            source: SourceRef {
                file: f.file,
                pointer: String::new(),
                line: Some(f.line),
            },
            declared: f.declared,
        };
        if let Some(d) =
            crate::budget::fit_reported(&mut cap, &empty, opts.max_tool_tokens, loc, &mut stats)
        {
            diags.push(d);
        }
        capabilities.push(cap);
    }
    stats.imported = capabilities.len();
    stats.skipped = diags
        .iter()
        .filter(|d| d.code == "skipped-function")
        .count();
    let ir = Ir {
        api: ApiInfo {
            title,
            version: String::new(),
            source_format: "python".to_string(),
            file: display,
        },
        capabilities,
        security_schemes: BTreeMap::new(),
    };
    Ok(Lowered {
        ir,
        diagnostics: diags,
        stats,
        retained: Retained::none(),
    })
}

/// The sources a crate of `path`'s functions carries, by path relative to the directory the
/// worker imports from: `tools.py` for a module, `pkg/…` for a package directory.
pub fn sources(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    if path.is_dir() {
        let package = path
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "package".to_string());
        for m in package_modules(path, &package).map_err(|e| e.to_string())? {
            let text = utf8_source(&m.path, &m.shown)?;
            out.insert(format!("{package}/{}", m.shown), text);
        }
    } else {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| format!("{}: not a file name", path.display()))?;
        let text = utf8_source(path, &name)?;
        out.insert(name, text);
    }
    Ok(out)
}

/// A module's text for a crate to carry: the crate embeds it as UTF-8, so a module written in
/// another declared encoding is refused (its declaration would then be wrong).
fn utf8_source(path: &Path, shown: &str) -> Result<String, String> {
    match read_module_declared(path).map_err(|e| format!("{shown}: {e}"))? {
        (text, None) => Ok(text),
        (_, Some(enc)) => Err(format!(
            "{shown}: declares the encoding `{enc}`; `forge import` copies modules as UTF-8, so save it as UTF-8 first (`forge inspect` reads it as it is)"
        )),
    }
}

fn location(file: &str, line: Option<usize>) -> Location {
    Location {
        file: file.to_string(),
        pointer: String::new(),
        line,
    }
}

/// The text of a module, at most [`MAX_MODULE_BYTES`]: UTF-8, or the encoding a PEP 263
/// declaration names (`# -*- coding: latin-1 -*-` on the first or second line).
fn read_module(path: &Path) -> Result<String, String> {
    read_module_declared(path).map(|(text, _)| text)
}

/// [`read_module`], and the encoding declared when it is not UTF-8.
fn read_module_declared(path: &Path) -> Result<(String, Option<String>), String> {
    let bytes = crate::frontend::read_regular(path, MAX_MODULE_BYTES).map_err(|e| match e {
        crate::frontend::ReadError::Io(e) => e.to_string(),
        crate::frontend::ReadError::TooLarge(_) => format!(
            "larger than {} MiB; forge reads modules up to that size",
            MAX_MODULE_BYTES >> 20
        ),
    })?;
    decode(bytes)
}

/// The encoding a PEP 263 comment on one of the first two lines declares, lower-cased.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    for line in bytes.split(|&b| b == b'\n').take(2) {
        let line = String::from_utf8_lossy(line);
        let t = line.trim_start_matches([' ', '\t', '\x0c']);
        if !t.starts_with('#') {
            // A first line of code ends the search; a blank one does not.
            if t.trim().is_empty() {
                continue;
            }
            return None;
        }
        let Some(rest) = t
            .find("coding")
            .and_then(|at| t.get(at + 6..))
            .and_then(|r| r.strip_prefix([':', '=']))
        else {
            continue;
        };
        let name: String = rest
            .trim_start_matches([' ', '\t'])
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        if !name.is_empty() {
            return Some(name.to_ascii_lowercase().replace('_', "-"));
        }
    }
    None
}

fn decode(bytes: Vec<u8>) -> Result<(String, Option<String>), String> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let declared = declared_encoding(body);
    let utf8 = matches!(
        declared.as_deref(),
        None | Some("utf-8" | "utf8" | "utf-8-sig")
    );
    if utf8 {
        return std::str::from_utf8(body)
            .map(|t| (t.to_string(), None))
            .map_err(|e| {
                format!(
                    "not UTF-8 (byte {}), and no other encoding is declared (PEP 263)",
                    e.valid_up_to()
                )
            });
    }
    let name = declared.unwrap_or_default();
    // Python's names for the encodings the WHATWG tables (encoding_rs) know by other labels.
    let label = match name.as_str() {
        "latin-1" | "iso-latin-1" | "l1" => "latin1",
        "cp1252" => "windows-1252",
        "ascii" | "us-ascii" => "us-ascii",
        other => other,
    };
    let Some(enc) = encoding_rs::Encoding::for_label(label.as_bytes()) else {
        return Err(format!(
            "declares the encoding `{name}`, which forge cannot read; save it as UTF-8"
        ));
    };
    let (text, _, bad) = enc.decode(body);
    if bad {
        return Err(format!("is not valid `{name}` text, as it declares"));
    }
    Ok((text.into_owned(), Some(name)))
}

/// The `.py` files of a package directory, sorted, with their dotted names (the directory's
/// own name first: `pkg`, `pkg.files`). Hidden directories, `__pycache__`, virtual environments
/// and symbolic links are left out.
fn package_modules(root: &Path, package: &str) -> std::io::Result<Vec<Module>> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), Vec::<String>::new())];
    while let Some((dir, parts)) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let kind = e.file_type()?;
            if name.starts_with('.') || kind.is_symlink() {
                continue;
            }
            if kind.is_dir() {
                if name == "__pycache__"
                    || name == "venv"
                    || name == "node_modules"
                    || parts.len() > 32
                {
                    continue;
                }
                let mut p = parts.clone();
                p.push(name);
                stack.push((e.path(), p));
            } else if kind.is_file() && name.ends_with(".py") {
                let stem = name.trim_end_matches(".py");
                let mut dotted = vec![package.to_string()];
                dotted.extend(parts.iter().cloned());
                if stem != "__init__" {
                    dotted.push(stem.to_string());
                }
                let module = dotted.join(".");
                let mut shown = parts.join("/");
                if !shown.is_empty() {
                    shown.push('/');
                }
                shown.push_str(&name);
                out.push(Module {
                    name: module,
                    shown,
                    path: e.path(),
                });
                if out.len() > MAX_MODULES {
                    return Err(std::io::Error::other(format!(
                        "more than {MAX_MODULES} modules; import a smaller package"
                    )));
                }
            }
        }
    }
    out.sort_by(|a, b| a.shown.cmp(&b.shown));
    Ok(out)
}

/// One function found, before naming.
struct Found {
    module: String,
    file: String,
    function: String,
    declared_name: Option<String>,
    line: usize,
    is_async: bool,
    deprecated: bool,
    description: String,
    input_schema: Value,
    output_schema: Option<Value>,
    params: Vec<PyParam>,
    facts: Vec<crate::ir::PyFact>,
    /// Parameters whose default the schema cannot carry (see `PythonHints::opaque_defaults`).
    opaque_defaults: Vec<String>,
    declared: Declared,
}

/// One module's functions and diagnostics, or the syntax error that stopped it.
type ModuleRead = Result<(Vec<Found>, Vec<Diagnostic>), Box<Diagnostic>>;

/// A module to read: its dotted name, the path shown, its text, and whether it is one of a
/// package's.
struct Input {
    name: String,
    shown: String,
    text: String,
    package: bool,
}

/// How many times in all, per module, forge may read a package's modules again while
/// following calls across them; past it the calls across modules are also Unseen.
const PACKAGE_PASSES: usize = 8;

/// The functions of each module; `Err` is the syntax error that stopped one. The modules of
/// a package call each other (`from .helpers import zap`): what each function does is followed
/// across them ([`effects::Package`]). Modules are read those they name first; one whose
/// findings change makes those naming it be read again, until nothing changes (or the budget,
/// [`PACKAGE_PASSES`] reads per module, runs out: then every call across modules also counts
/// as code forge cannot read).
fn read_modules(inputs: &[Input], beside: Option<&Path>) -> Vec<ModuleRead> {
    let parsed: Vec<Result<Parsed<ModModule>, Box<Diagnostic>>> =
        inputs.iter().map(|i| parse(&i.text, &i.shown)).collect();
    let package = follow(inputs, &parsed, PACKAGE_PASSES);
    inputs
        .iter()
        .zip(&parsed)
        .map(|(input, p)| match p {
            Ok(p) => {
                let (found, mut diags) =
                    read_functions(p, &input.text, &input.name, &input.shown, &package)?;
                if let Some(dir) = beside {
                    diags.extend(uncarried_neighbours(p, &input.shown, dir));
                }
                if input.package {
                    diags.extend(absolute_siblings(p, input, &package));
                }
                Ok((found, diags))
            }
            Err(e) => Err(e.clone()),
        })
        .collect()
}

/// What a package's modules see of each other once calls across them are followed, reading
/// each module at most `passes` times (see [`read_modules`]); empty for a module read alone.
fn follow<'a>(
    inputs: &[Input],
    parsed: &'a [Result<Parsed<ModModule>, Box<Diagnostic>>],
    passes: usize,
) -> effects::Package<'a> {
    let mut package = effects::Package::default();
    if inputs.iter().any(|i| i.package) {
        package.modules = inputs.iter().map(|i| i.name.clone()).collect();
        package.packages = inputs
            .iter()
            .filter(|i| i.shown == "__init__.py" || i.shown.ends_with("/__init__.py"))
            .map(|i| i.name.clone())
            .collect();
        let index: HashMap<&str, usize> = inputs
            .iter()
            .enumerate()
            .map(|(k, i)| (i.name.as_str(), k))
            .collect();
        for (input, p) in inputs.iter().zip(parsed) {
            if let Ok(p) = p {
                package_entries(&mut package, input, p, &HashMap::new());
                for (attr, line) in effects::stored_code_attrs(p.suite(), &input.text) {
                    let by = package.attr_stores.entry(attr).or_default();
                    if !by.iter().any(|(m, _)| *m == input.name) {
                        by.push((input.name.clone(), line));
                    }
                }
            }
        }
        // Who names whom (as `Package::wanted` decides): only those can change what one finds.
        let deps: Vec<Vec<usize>> = inputs
            .iter()
            .map(|i| {
                let here = package.here_of(&i.name);
                package
                    .wanted(&here, &i.name, &i.text)
                    .into_iter()
                    .filter_map(|m| index.get(m.as_str()).copied())
                    .collect()
            })
            .collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); inputs.len()];
        for (i, d) in deps.iter().enumerate() {
            for &j in d {
                if let Some(list) = dependents.get_mut(j) {
                    list.push(i);
                }
            }
        }
        let order = named_first(&deps);
        let mut facts: Vec<HashMap<String, Vec<crate::ir::PyFact>>> =
            vec![HashMap::new(); inputs.len()];
        let mut dirty: Vec<bool> = vec![true; inputs.len()];
        let mut budget = passes.saturating_mul(inputs.len());
        let mut settled = false;
        while !settled {
            settled = true;
            for &i in &order {
                if dirty.get(i) != Some(&true) {
                    continue;
                }
                if budget == 0 {
                    settled = false;
                    break;
                }
                budget -= 1;
                if let Some(d) = dirty.get_mut(i) {
                    *d = false;
                }
                let (Some(Ok(p)), Some(input)) = (parsed.get(i), inputs.get(i)) else {
                    continue;
                };
                let now = module_facts(p, &input.text, &package, &input.name);
                if facts.get(i) == Some(&now) {
                    continue;
                }
                package_entries(&mut package, input, p, &now);
                if let Some(slot) = facts.get_mut(i) {
                    *slot = now;
                }
                for &k in dependents.get(i).into_iter().flatten() {
                    if let Some(d) = dirty.get_mut(k) {
                        *d = true;
                        settled = false;
                    }
                }
            }
            if budget == 0 && dirty.contains(&true) {
                package.incomplete = Some(format!(
                    "the package's modules call each other deeper than forge follows ({passes} reads of each)"
                ));
                break;
            }
        }
    }
    package
}

/// A module read alone imports a module that lies beside it (`helpers.py`, `helpers/`), or
/// imports relatively: a crate of the module carries that file only, so at run time Python
/// looks for the other among the installed packages (or fails), and forge follows no call
/// into it. Read the directory as a package instead.
fn uncarried_neighbours(parsed: &Parsed<ModModule>, file: &str, dir: &Path) -> Vec<Diagnostic> {
    let imports = imports::Imports::collect(parsed.suite());
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let own = Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    for q in imports.targets() {
        let top = q.split('.').next().unwrap_or(q);
        let relative = q.starts_with('.');
        if (!relative && (top == own || stdlib_names::is_stdlib_module(top)))
            || !seen.insert(if relative { "." } else { top })
        {
            continue;
        }
        let message = if relative {
            format!(
                "{file}: imports `{q}` relatively, but a module read alone has no package: the import fails when the worker loads it"
            )
        } else {
            let beside = [
                format!("{top}.py"),
                format!("{top}/__init__.py"),
                top.to_string(),
            ]
            .into_iter()
            .find(|c| dir.join(c).exists());
            let Some(found) = beside else { continue };
            format!(
                "{file}: imports `{top}`, and `{found}` lies beside it, but a crate of {file} carries that file only: at run time Python looks for `{top}` among the installed packages (or fails to import it), and forge follows no call into it"
            )
        };
        out.push(
            Diagnostic::new(Severity::Warning, "uncarried-import", message, location(file, None))
                .with_help(
                    "make the directory a package (an `__init__.py`) and give forge the directory: the crate then carries every module and forge follows calls between them",
                ),
        );
    }
    out
}

/// A module of a package importing a module of its own package by a bare name (`import
/// helpers` in `pkg/api.py` beside `pkg/helpers.py`): Python 3 looks for a top-level `helpers`,
/// not the package's, so the worker finds another module or none, and forge follows nothing.
fn absolute_siblings(
    parsed: &Parsed<ModModule>,
    input: &Input,
    package: &effects::Package<'_>,
) -> Vec<Diagnostic> {
    let imports = imports::Imports::collect(parsed.suite());
    let here = package.here_of(&input.name);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for q in imports.targets() {
        if q.starts_with('.') || here.is_empty() {
            continue;
        }
        let top = q.split('.').next().unwrap_or(q);
        let sibling = format!("{here}.{top}");
        // A standard module of that name (`import subprocess` in `asyncio/`) is meant.
        if package.modules.contains(top)
            || !package.modules.contains(&sibling)
            || top == "__main__"
            || stdlib_names::is_stdlib_module(top)
            || !seen.insert(top)
        {
            continue;
        }
        out.push(
            Diagnostic::new(
                Severity::Warning,
                "absolute-sibling-import",
                format!(
                    "{}: `import {top}` looks for a top-level module `{top}`, not the package's `{sibling}` beside it: the worker imports another module or none, and forge follows no call into it",
                    input.shown
                ),
                location(&input.shown, None),
            )
            .with_help(format!("import it relatively: `from . import {top}`")),
        );
    }
    out
}

/// The modules in an order that puts those a module names before it where they do not name
/// each other (a depth-first walk, each module after what it names).
fn named_first(deps: &[Vec<usize>]) -> Vec<usize> {
    let mut order = Vec::with_capacity(deps.len());
    let mut state = vec![0u8; deps.len()]; // 0 new, 1 on the walk, 2 done
    for start in 0..deps.len() {
        if state.get(start) != Some(&0) {
            continue;
        }
        // (module, next dependency to look at)
        let mut stack = vec![(start, 0usize)];
        if let Some(s) = state.get_mut(start) {
            *s = 1;
        }
        while let Some(&mut (m, ref mut next)) = stack.last_mut() {
            match deps.get(m).and_then(|d| d.get(*next)) {
                Some(&j) => {
                    *next += 1;
                    if state.get(j) == Some(&0) {
                        if let Some(s) = state.get_mut(j) {
                            *s = 1;
                        }
                        stack.push((j, 0));
                    }
                }
                None => {
                    if let Some(s) = state.get_mut(m) {
                        *s = 2;
                    }
                    order.push(m);
                    stack.pop();
                }
            }
        }
    }
    order
}

/// Puts a module's functions and its classes' methods, with the facts found for them, and
/// what importing it changes, into what the package's other modules see of it.
fn package_entries<'a>(
    package: &mut effects::Package<'a>,
    input: &Input,
    parsed: &'a Parsed<ModModule>,
    known: &HashMap<String, Vec<crate::ir::PyFact>>,
) {
    let body = parsed.suite();
    let mut defs: Vec<(String, &'a StmtFunctionDef)> = Vec::new();
    let mut top = Vec::new();
    module_functions(body, &mut top, 0);
    defs.extend(top.into_iter().map(|f| (f.name.to_string(), f)));
    let imports = imports::Imports::collect(body);
    let here = package.here_of(&input.name);
    for s in body {
        if let Stmt::ClassDef(c) = s {
            let class = format!("{}.{}", input.name, c.name.as_str());
            // Its metaclass, by absolute name (one of this module's classes, or an import).
            let meta = c.arguments.as_ref().and_then(|a| {
                a.keywords
                    .iter()
                    .find(|k| k.arg.as_ref().is_some_and(|n| n.as_str() == "metaclass"))
            });
            // A class named in this module, by absolute name (one of its own, or an import).
            let absolute_of = |e: &Expr| {
                let mut root = e;
                while let Expr::Attribute(a) = root {
                    root = &a.value;
                }
                let imported =
                    matches!(root, Expr::Name(n) if imports.get(n.id.as_str()).is_some());
                let q = imports.qualify(e)?;
                if imported {
                    effects::Package::absolute(&here, &q)
                } else {
                    Some(format!("{}.{q}", input.name))
                }
            };
            if let Some(abs) = meta.and_then(|k| absolute_of(&k.value)) {
                package.metas.insert(class.clone(), abs);
            }
            let bases: Vec<String> = effects::class_bases(c).filter_map(absolute_of).collect();
            if !bases.is_empty() {
                package.bases.insert(class.clone(), bases);
            }
            package.classes.insert(class);
            // Its methods, also those defined in a block of its body (`if …: def m`), and the
            // classes defined in it with theirs (`Outer.Inner.m`), as `effects` names them.
            let mut stack: Vec<(&'a Stmt, String)> = c
                .body
                .iter()
                .rev()
                .map(|x| (x, format!("{}.", c.name.as_str())))
                .collect();
            let mut seen = 0usize;
            while let Some((m, prefix)) = stack.pop() {
                seen += 1;
                if seen > 100_000 {
                    break;
                }
                match m {
                    Stmt::FunctionDef(f) => {
                        defs.push((format!("{prefix}{}", f.name.as_str()), f));
                    }
                    Stmt::ClassDef(inner) => {
                        let name = format!("{prefix}{}", inner.name.as_str());
                        package.classes.insert(format!("{}.{name}", input.name));
                        stack.extend(inner.body.iter().rev().map(|x| (x, format!("{name}."))));
                    }
                    other => {
                        let mut inner = Vec::new();
                        effects::block_statements(other, &mut inner);
                        stack.extend(inner.into_iter().rev().map(|x| (x, prefix.clone())));
                    }
                }
            }
        }
    }
    let mut entries: Vec<(String, &'a StmtFunctionDef, Vec<crate::ir::PyFact>)> = Vec::new();
    for (key, def) in defs {
        let name = format!("{}.{key}", input.name);
        if entries.iter().any(|(n, _, _)| *n == name) {
            continue;
        }
        let list = known.get(&key).cloned().unwrap_or_default();
        entries.push((name, def, list));
    }
    package.funcs.insert(input.name.clone(), entries);
    package.imports.insert(input.name.clone(), imports);
    let changes: Vec<crate::ir::PyFact> = known
        .get(effects::AT_IMPORT)
        .into_iter()
        .flatten()
        .filter(|f| !import_read(f.effect))
        .cloned()
        .collect();
    if changes.is_empty() {
        package.imported.remove(&input.name);
    } else {
        package.imported.insert(input.name.clone(), changes);
    }
}

/// What each function of a parsed module does, seen with the package's other modules.
fn module_facts(
    parsed: &Parsed<ModModule>,
    text: &str,
    package: &effects::Package<'_>,
    own: &str,
) -> HashMap<String, Vec<crate::ir::PyFact>> {
    let index = LineIndex::from_source_text(text);
    let body = parsed.suite();
    let imports = imports::Imports::collect(body);
    effects::analyse(body, text, &index, &imports, package, own)
}

/// Effects that what a module does at import may have without counting for its functions:
/// reads, and the worker's own environment.
fn import_read(e: crate::ir::PyEffect) -> bool {
    matches!(
        e,
        crate::ir::PyEffect::FileRead
            | crate::ir::PyEffect::NetRead
            | crate::ir::PyEffect::SqlRead
            | crate::ir::PyEffect::EnvWrite
    )
}

/// A module parsed, or the syntax error that stops it.
fn parse(text: &str, file: &str) -> Result<Parsed<ModModule>, Box<Diagnostic>> {
    ruff_python_parser::parse_module(text).map_err(|e| {
        let index = LineIndex::from_source_text(text);
        let offset = e.location.start().min(ruff_text_size::TextSize::of(text));
        let lc = index.line_column(offset, text);
        Box::new(
            Diagnostic::new(
                Severity::Error,
                "python-syntax",
                format!("{file}:{lc}: {}", e.error),
                location(file, Some(lc.line.get())),
            )
            .with_help("forge reads modules that Python itself can parse"),
        )
    })
}

/// The functions of one parsed module.
fn read_functions(
    parsed: &Parsed<ModModule>,
    text: &str,
    module: &str,
    file: &str,
    package: &effects::Package<'_>,
) -> Result<(Vec<Found>, Vec<Diagnostic>), Box<Diagnostic>> {
    let index = LineIndex::from_source_text(text);
    let body = parsed.suite();
    let line_of = |r: &dyn Ranged| index.line_index(r.start()).get();
    let mut diags = Vec::new();
    let exported = dunder_all(body);
    let mut defs: Vec<&StmtFunctionDef> = Vec::new();
    module_functions(body, &mut defs, 0);
    let mut seen: HashMap<&str, usize> = HashMap::new();
    // A name bound more than once (two `def`s, a `def` then `name = os.remove`, an import under
    // its name) is whatever its last binding is when the worker looks it up: not what one body
    // says. Such a name is not imported.
    let mut lines_of: HashMap<&str, Vec<usize>> = HashMap::new();
    for f in &defs {
        lines_of
            .entry(f.name.as_str())
            .or_default()
            .push(line_of(*f));
    }
    let mut rebound: HashMap<String, usize> = HashMap::new();
    module_bindings(body, &mut rebound, 0, &|r: &dyn Ranged| line_of(r));
    // `def rmtree(p)` then `from shutil import *`: the import may bind the name again (to what
    // its module exports), and then the worker calls that.
    // From another module of the package, only the names it binds can be.
    let here = package.here_of(module);
    let mut defined: Vec<&str> = Vec::new();
    for stmt in body {
        match stmt {
            Stmt::FunctionDef(f) => defined.push(f.name.as_str()),
            Stmt::ImportFrom(i) if i.names.iter().any(|a| a.name.as_str() == "*") => {
                let from = format!(
                    "{}{}",
                    ".".repeat(i.level as usize),
                    i.module.as_ref().map(|m| m.as_str()).unwrap_or_default()
                );
                let binds = effects::Package::absolute(&here, &from)
                    .filter(|m| package.modules.contains(m))
                    .map(|m| package.names_of(&m));
                for name in &defined {
                    if binds.as_ref().is_none_or(|b| b.contains(*name)) {
                        rebound
                            .entry((*name).to_string())
                            .or_insert_with(|| line_of(stmt));
                    }
                }
            }
            _ => {}
        }
    }
    let imports = imports::Imports::collect(body);
    let classes = types::Classes::collect(body, &imports);
    let facts = effects::analyse(body, text, &index, &imports, package, module);
    // What the module changes when the worker imports it happens before any call: every
    // function is taken to do it too. Reads (a configuration file, a GET) and the worker's own
    // environment change nothing outside it.
    let at_import: Vec<crate::ir::PyFact> = facts
        .get(effects::AT_IMPORT)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| !import_read(f.effect))
        .map(|mut f| {
            f.call = format!("{} (when the module is imported)", f.call);
            f.params.clear();
            f.escapes.clear();
            f.segments.clear();
            f
        })
        .collect();
    if let Some(first) = at_import.first() {
        diags.push(
            Diagnostic::new(
                Severity::Warning,
                "import-effects",
                format!(
                    "{file}: the module changes something when it is imported — {}{} at line {}{} — \
                     so every function it exports is taken to do it too",
                    first.call.trim_end_matches(" (when the module is imported)"),
                    first
                        .via
                        .as_deref()
                        .map(|v| format!(" through `{v}`"))
                        .unwrap_or_default(),
                    first.line,
                    if at_import.len() > 1 {
                        format!(", and {} more", at_import.len() - 1)
                    } else {
                        String::new()
                    }
                ),
                location(file, Some(first.line)),
            )
            .with_help("move that work into a function the tools call, or review it before serving the module"),
        );
    }
    let mut out = Vec::new();
    for f in defs {
        let fname = f.name.as_str();
        let line = line_of(f);
        if seen.contains_key(fname) {
            continue;
        }
        seen.insert(fname, line);
        let public = match &exported {
            Some(names) => names.contains(fname),
            None => !fname.starts_with('_'),
        };
        if !public {
            continue;
        }
        let defined: &[usize] = lines_of.get(fname).map(Vec::as_slice).unwrap_or(&[]);
        let also = rebound.get(fname).copied();
        if defined.len() > 1 || also.is_some() {
            let mut at: Vec<String> = defined.iter().map(|l| format!("line {l}")).collect();
            if let Some(l) = also {
                at.push(format!("line {l} (assigned or imported)"));
            }
            diags.push(
                Diagnostic::new(
                    Severity::Warning,
                    "redefined-function",
                    format!(
                        "`{fname}` is bound more than once ({}): the worker calls whatever the last \
                         binding is, which its effects and undo cannot be inferred from; it is not \
                         imported",
                        at.join(", ")
                    ),
                    location(file, Some(line)),
                )
                .with_help("give each function its own name"),
            );
            continue;
        }
        let p = &f.parameters;
        if p.vararg.is_some() || p.kwarg.is_some() {
            diags.push(
                Diagnostic::new(
                    Severity::Warning,
                    "skipped-function",
                    format!("`{fname}` takes *args or **kwargs; a tool's arguments are named, so it is not imported"),
                    location(file, Some(line)),
                )
                .with_help("give it named parameters, or wrap it in a function that has them"),
            );
            continue;
        }
        let doc = docstring_of(&f.body)
            .map(docstring::parse)
            .unwrap_or_default();
        let mut schemas = types::Schemas::new(&classes, &imports);
        let mut properties = Map::new();
        let mut required = Vec::new();
        let mut opaque_defaults = Vec::new();
        let mut params = Vec::new();
        let positional_only: BTreeSet<&str> =
            p.posonlyargs.iter().map(|a| a.name().as_str()).collect();
        for a in p.iter_non_variadic_params() {
            let pname = a.name().as_str();
            let mut schema = match a.annotation() {
                Some(ann) => match schemas.hint(ann) {
                    Some(s) => s,
                    None => {
                        diags.push(Diagnostic::new(
                            Severity::Warning,
                            "unknown-type",
                            format!(
                                "`{fname}`: the hint of parameter `{pname}` (`{}`) is not a type forge knows; any value is accepted",
                                clip(&text[ann.range()], 80)
                            ),
                            location(file, Some(line_of(ann))),
                        ));
                        json!({})
                    }
                },
                None => {
                    diags.push(Diagnostic::new(
                        Severity::Warning,
                        "missing-type",
                        format!("`{fname}`: parameter `{pname}` has no type hint; any value is accepted"),
                        location(file, Some(line_of(a))),
                    ).with_help("annotate it (`x: int`) so agents know what to send"));
                    json!({})
                }
            };
            if let Some(o) = schema.as_object_mut() {
                if let Some(text) = doc.params.get(pname) {
                    o.entry("description").or_insert_with(|| json!(text));
                }
                if let Some(d) = a.default() {
                    match schemas.literal(d) {
                        Some(v) => {
                            o.insert("default".into(), v);
                        }
                        None => opaque_defaults.push(pname.to_string()),
                    }
                }
            }
            if a.default().is_none() {
                required.push(json!(pname));
            }
            properties.insert(pname.to_string(), schema);
            params.push(PyParam {
                name: pname.to_string(),
                positional_only: positional_only.contains(pname),
            });
        }
        let mut input = Map::new();
        input.insert("type".into(), json!("object"));
        input.insert("properties".into(), Value::Object(properties));
        if !required.is_empty() {
            input.insert("required".into(), Value::Array(required));
        }
        input.insert("additionalProperties".into(), json!(false));
        let input_defs = std::mem::take(&mut schemas.defs);
        if !input_defs.is_empty() {
            input.insert(
                "$defs".into(),
                Value::Object(input_defs.into_iter().collect()),
            );
        }
        let output_schema = f.returns.as_deref().and_then(|r| {
            let s = schemas.hint(r)?;
            if s == json!({"type": "null"}) {
                return None;
            }
            let defs = std::mem::take(&mut schemas.defs);
            Some(crate::budget::with_defs(s, defs.into_iter().collect()))
        });
        for w in schemas.warnings.drain(..) {
            diags.push(Diagnostic::new(
                Severity::Warning,
                "unknown-type",
                format!("`{fname}`: {w}"),
                location(file, Some(line)),
            ));
        }
        let (declared, declared_name) = decorator_overrides(f, &imports, &mut diags, file, line);
        let description = if doc.description.is_empty() {
            format!("{fname}() from the Python module {module}")
        } else {
            doc.description.clone()
        };
        let deprecated = f.decorator_list.iter().any(|d| {
            imports
                .qualify(strip_call(&d.expression))
                .is_some_and(|q| q.ends_with("deprecated"))
        });
        out.push(Found {
            module: module.to_string(),
            file: file.to_string(),
            function: fname.to_string(),
            declared_name,
            line,
            is_async: f.is_async,
            deprecated,
            description,
            input_schema: Value::Object(input),
            output_schema,
            params,
            facts: {
                let mut own = facts.get(fname).cloned().unwrap_or_default();
                own.extend(at_import.iter().cloned());
                own
            },
            opaque_defaults,
            declared,
        });
    }
    Ok((out, diags))
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    s.chars().take(max).collect::<String>() + "…"
}

/// Module-level function definitions in order, also inside module-level `if` and `try`.
fn module_functions<'a>(body: &'a [Stmt], out: &mut Vec<&'a StmtFunctionDef>, depth: usize) {
    if depth > 64 {
        return;
    }
    for s in body {
        match s {
            Stmt::FunctionDef(f) => out.push(f),
            Stmt::If(i) => {
                module_functions(&i.body, out, depth + 1);
                for c in &i.elif_else_clauses {
                    module_functions(&c.body, out, depth + 1);
                }
            }
            Stmt::Try(t) => {
                module_functions(&t.body, out, depth + 1);
                for h in &t.handlers {
                    let ruff_python_ast::ExceptHandler::ExceptHandler(h) = h;
                    module_functions(&h.body, out, depth + 1);
                }
                module_functions(&t.orelse, out, depth + 1);
                module_functions(&t.finalbody, out, depth + 1);
            }
            _ => {}
        }
    }
}

/// Names bound at module level other than by `def` (assignments, imports, `for` and `with`
/// targets, classes), in the blocks [`module_functions`] looks into, with a line of each.
fn module_bindings(
    body: &[Stmt],
    out: &mut HashMap<String, usize>,
    depth: usize,
    line_of: &dyn Fn(&dyn Ranged) -> usize,
) {
    if depth > 64 {
        return;
    }
    fn names(e: &Expr, into: &mut Vec<String>) {
        match e {
            Expr::Name(n) => into.push(n.id.as_str().to_string()),
            Expr::Tuple(t) => t.elts.iter().for_each(|e| names(e, into)),
            Expr::List(l) => l.elts.iter().for_each(|e| names(e, into)),
            Expr::Starred(s) => names(&s.value, into),
            _ => {}
        }
    }
    for s in body {
        let mut bound = Vec::new();
        match s {
            Stmt::Assign(a) => a.targets.iter().for_each(|t| names(t, &mut bound)),
            Stmt::AnnAssign(a) if a.value.is_some() => names(&a.target, &mut bound),
            Stmt::AugAssign(a) => names(&a.target, &mut bound),
            Stmt::For(f) => names(&f.target, &mut bound),
            Stmt::With(w) => w
                .items
                .iter()
                .filter_map(|i| i.optional_vars.as_deref())
                .for_each(|v| names(v, &mut bound)),
            Stmt::ClassDef(c) => bound.push(c.name.as_str().to_string()),
            Stmt::Import(i) => i.names.iter().for_each(|a| {
                let n = a.asname.as_ref().unwrap_or(&a.name).as_str();
                bound.push(n.split('.').next().unwrap_or(n).to_string());
            }),
            Stmt::ImportFrom(i) => i.names.iter().for_each(|a| {
                bound.push(a.asname.as_ref().unwrap_or(&a.name).as_str().to_string())
            }),
            Stmt::If(i) => {
                module_bindings(&i.body, out, depth + 1, line_of);
                for c in &i.elif_else_clauses {
                    module_bindings(&c.body, out, depth + 1, line_of);
                }
            }
            Stmt::Try(t) => {
                module_bindings(&t.body, out, depth + 1, line_of);
                for h in &t.handlers {
                    let ruff_python_ast::ExceptHandler::ExceptHandler(h) = h;
                    module_bindings(&h.body, out, depth + 1, line_of);
                }
                module_bindings(&t.orelse, out, depth + 1, line_of);
                module_bindings(&t.finalbody, out, depth + 1, line_of);
            }
            _ => {}
        }
        for n in bound {
            out.entry(n).or_insert_with(|| line_of(s));
        }
    }
}

/// The names a literal `__all__` lists (`__all__ = [...]`, `(...)`, `+= [...]`).
fn dunder_all(body: &[Stmt]) -> Option<BTreeSet<String>> {
    let mut out: Option<BTreeSet<String>> = None;
    let strings = |e: &Expr| -> Vec<String> {
        let elts = match e {
            Expr::List(l) => &l.elts,
            Expr::Tuple(t) => &t.elts,
            _ => return Vec::new(),
        };
        elts.iter()
            .filter_map(|x| {
                x.as_string_literal_expr()
                    .map(|s| s.value.to_str().to_string())
            })
            .collect()
    };
    for s in body {
        match s {
            Stmt::Assign(a)
                if a.targets
                    .iter()
                    .any(|t| t.as_name_expr().is_some_and(|n| n.id.as_str() == "__all__")) =>
            {
                out = Some(strings(&a.value).into_iter().collect());
            }
            Stmt::AnnAssign(a)
                if a.target
                    .as_name_expr()
                    .is_some_and(|n| n.id.as_str() == "__all__") =>
            {
                if let Some(v) = &a.value {
                    out = Some(strings(v).into_iter().collect());
                }
            }
            Stmt::AugAssign(a)
                if a.target
                    .as_name_expr()
                    .is_some_and(|n| n.id.as_str() == "__all__") =>
            {
                out.get_or_insert_with(BTreeSet::new)
                    .extend(strings(&a.value));
            }
            _ => {}
        }
    }
    out
}

/// The docstring: the body's first statement when it is a string literal.
fn docstring_of(body: &[Stmt]) -> Option<&str> {
    let Stmt::Expr(e) = body.first()? else {
        return None;
    };
    Some(e.value.as_string_literal_expr()?.value.to_str())
}

/// `@d(...)` → `d`.
fn strip_call(e: &Expr) -> &Expr {
    match e {
        Expr::Call(c) => &c.func,
        other => other,
    }
}

/// A decorator named `capability` (from any module), read statically: `effects=[…]`, `undo=…`,
/// `name=…`, `irreversible=…`. Values must be literals; anything else is reported and ignored.
fn decorator_overrides(
    f: &StmtFunctionDef,
    imports: &imports::Imports,
    diags: &mut Vec<Diagnostic>,
    file: &str,
    line: usize,
) -> (Declared, Option<String>) {
    let mut declared = Declared::default();
    let mut name = None;
    for d in &f.decorator_list {
        let Expr::Call(call) = &d.expression else {
            continue;
        };
        let is_capability = imports
            .qualify(&call.func)
            .is_some_and(|q| q == "capability" || q.ends_with(".capability"));
        if !is_capability {
            continue;
        }
        let fname = f.name.as_str();
        let classes = types::Classes::default();
        let reader = types::Schemas::new(&classes, imports);
        for k in &call.arguments.keywords {
            let Some(arg) = k.arg.as_ref().map(|a| a.as_str()) else {
                continue;
            };
            let Some(v) = reader.literal(&k.value) else {
                diags.push(Diagnostic::new(
                    Severity::Warning,
                    "bad-override",
                    format!("`{fname}`: @capability({arg}=…) is not a literal; forge reads decorators without running them, so it is ignored"),
                    location(file, Some(line)),
                ));
                continue;
            };
            match arg {
                "effects" => declared.effects = Some(v),
                "undo" => declared.undo = Some(v),
                "name" => match v {
                    Value::String(s) if !s.is_empty() => name = Some(s),
                    _ => diags.push(Diagnostic::new(
                        Severity::Warning,
                        "bad-override",
                        format!("`{fname}`: @capability(name=…) must be a non-empty string"),
                        location(file, Some(line)),
                    )),
                },
                "irreversible" => match v {
                    Value::Bool(false) | Value::Null => {}
                    Value::String(reason) => {
                        declared.undo = Some(json!({"kind": "irreversible", "reason": reason}))
                    }
                    _ => {
                        declared.undo = Some(json!({"kind": "irreversible", "reason": format!("`{fname}` is declared irreversible")}))
                    }
                },
                "annotations" => declared.annotations = Some(v),
                other => diags.push(Diagnostic::new(
                    Severity::Warning,
                    "bad-override",
                    format!("`{fname}`: @capability({other}=…) is not a setting forge knows (effects, undo, name, irreversible, annotations)"),
                    location(file, Some(line)),
                )),
            }
        }
    }
    (declared, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Modules that call each other in a ring need reading again; past the budget what is
    /// followed is said to be partial (every call across modules then also counts as code
    /// forge cannot read), and within it it is not.
    #[test]
    fn following_a_package_stops_closed_past_its_budget() {
        let module = |name: &str, shown: &str, text: &str| Input {
            name: name.into(),
            shown: shown.into(),
            text: text.into(),
            package: true,
        };
        let inputs = vec![
            module("r", "__init__.py", ""),
            module("r.a", "a.py", "from . import b\ndef f(p):\n    b.f(p)\n"),
            module("r.b", "b.py", "from . import c\ndef f(p):\n    c.f(p)\n"),
            module(
                "r.c",
                "c.py",
                "import os\nfrom . import a\ndef f(p):\n    os.remove(p)\n    a.f(p)\n",
            ),
        ];
        let parsed: Vec<_> = inputs.iter().map(|i| parse(&i.text, &i.shown)).collect();
        assert!(follow(&inputs, &parsed, 1).incomplete.is_some());
        let settled = follow(&inputs, &parsed, PACKAGE_PASSES);
        assert!(settled.incomplete.is_none());
        let facts = settled
            .funcs
            .get("r.a")
            .and_then(|f| f.first())
            .map(|f| &f.2);
        assert!(
            facts.is_some_and(|f| f.iter().any(|x| x.call == "os.remove")),
            "{facts:?}"
        );
    }

    #[test]
    fn source_encodings_follow_pep_263() {
        let latin = b"# -*- coding: latin-1 -*-\ns = '\xe9'\n".to_vec();
        let (text, enc) = decode(latin).unwrap();
        assert!(text.contains('é'), "{text}");
        assert_eq!(enc.as_deref(), Some("latin-1"));
        let koi = b"#!/usr/bin/env python\n# coding: koi8-r\ns = '\xc1'\n".to_vec();
        let (text, enc) = decode(koi).unwrap();
        assert!(text.contains('а'), "{text}");
        assert_eq!(enc.as_deref(), Some("koi8-r"));
        // A BOM, UTF-8 declared or not.
        let (text, enc) = decode(b"\xEF\xBB\xBFx = 1\n".to_vec()).unwrap();
        assert_eq!((text.as_str(), enc), ("x = 1\n", None));
        // Undeclared non-UTF-8 is refused; a declaration on the third line does not count.
        assert!(decode(b"s = '\xe9'\n".to_vec()).is_err());
        assert!(decode(b"x = 1\ny = 2\n# coding: latin-1\ns = '\xe9'\n".to_vec()).is_err());
        assert!(decode(b"# coding: no-such-codec\n".to_vec())
            .unwrap_err()
            .contains("no-such-codec"));
    }
}
