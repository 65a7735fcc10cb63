//! What the module's names stand for: `import subprocess as sp`, `from pathlib import Path`,
//! `from os import path as osp` make `sp.run` `subprocess.run`, `Path` `pathlib.Path` and
//! `osp.join` `os.path.join`. Only module-level imports (also inside module-level `if`/`try`)
//! count; the first binding of a name wins, as for functions.

use std::collections::HashMap;

use ruff_python_ast::{Expr, Stmt};

/// Local name → fully qualified name.
#[derive(Debug, Default, Clone)]
pub(crate) struct Imports {
    names: HashMap<String, String>,
    /// Modules imported with `from m import *`, in order (a later one shadows an earlier one).
    stars: Vec<String>,
}

impl Imports {
    /// The imports of a module body.
    pub(crate) fn collect(body: &[Stmt]) -> Imports {
        let mut out = Imports::default();
        out.scan(body);
        out
    }

    fn bind(&mut self, local: &str, qualified: String) {
        self.names.entry(local.to_string()).or_insert(qualified);
    }

    fn scan(&mut self, body: &[Stmt]) {
        for stmt in body {
            match stmt {
                Stmt::Import(i) => {
                    for a in &i.names {
                        let full = a.name.as_str();
                        match &a.asname {
                            // `import os.path as osp`: osp is os.path.
                            Some(local) => self.bind(local.as_str(), full.to_string()),
                            // `import os.path`: binds `os`, and `os.path…` resolves through it.
                            None => {
                                let first = full.split('.').next().unwrap_or(full);
                                self.bind(first, first.to_string());
                            }
                        }
                    }
                }
                Stmt::ImportFrom(i) => {
                    // Relative imports name the package's own modules: kept as written, with
                    // their dots, so they never match a standard module.
                    let module = match &i.module {
                        Some(m) => format!("{}{}", ".".repeat(i.level as usize), m.as_str()),
                        None => ".".repeat(i.level as usize),
                    };
                    for a in &i.names {
                        let name = a.name.as_str();
                        if name == "*" {
                            if !self.stars.contains(&module) {
                                self.stars.push(module.clone());
                            }
                            continue;
                        }
                        let local = a.asname.as_ref().map_or(name, |n| n.as_str());
                        let full = if module.ends_with('.') {
                            format!("{module}{name}")
                        } else {
                            format!("{module}.{name}")
                        };
                        self.bind(local, full);
                    }
                }
                Stmt::If(s) => {
                    self.scan(&s.body);
                    for c in &s.elif_else_clauses {
                        self.scan(&c.body);
                    }
                }
                Stmt::Try(t) => {
                    self.scan(&t.body);
                    for h in &t.handlers {
                        let ruff_python_ast::ExceptHandler::ExceptHandler(h) = h;
                        self.scan(&h.body);
                    }
                    self.scan(&t.orelse);
                    self.scan(&t.finalbody);
                }
                _ => {}
            }
        }
    }

    /// The modules `from m import *` imports, last first (the order Python looks a name up in).
    pub(crate) fn stars(&self) -> impl Iterator<Item = &str> {
        self.stars.iter().rev().map(String::as_str)
    }

    /// Everything the module-level imports name: what each name is bound to, and the modules
    /// imported with `*`.
    pub(crate) fn targets(&self) -> impl Iterator<Item = &str> {
        self.names
            .values()
            .map(String::as_str)
            .chain(self.stars.iter().map(String::as_str))
    }

    /// The local names the imports bind.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(String::as_str)
    }

    /// What a local name stands for, when it was imported.
    pub(crate) fn get(&self, local: &str) -> Option<&str> {
        self.names.get(local).map(String::as_str)
    }

    /// The qualified name of a `Name` or a chain of attributes on one (`sp.run`,
    /// `os.path.join`), resolved through the imports; a name that was not imported stays as it
    /// is (`open`, a module function). `None` for anything else (a call's result, a subscript).
    pub(crate) fn qualify(&self, expr: &Expr) -> Option<String> {
        let mut parts: Vec<&str> = Vec::new();
        let mut e = expr;
        // Attribute chains are walked iteratively: a hostile module's 10,000-long chain costs
        // nothing but a vector.
        loop {
            match e {
                Expr::Attribute(a) => {
                    parts.push(a.attr.as_str());
                    e = &a.value;
                }
                Expr::Name(n) => {
                    let head = n.id.as_str();
                    let mut out = self.get(head).unwrap_or(head).to_string();
                    for p in parts.iter().rev() {
                        out.push('.');
                        out.push_str(p);
                    }
                    return Some(out);
                }
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qualify(src: &str, expr: &str) -> Option<String> {
        let parsed = ruff_python_parser::parse_module(src).unwrap();
        let imports = Imports::collect(parsed.suite());
        let e = ruff_python_parser::parse_expression(expr).unwrap();
        imports.qualify(e.expr())
    }

    #[test]
    fn resolves_aliases_and_from_imports() {
        let src = "import subprocess as sp\nimport os.path\nfrom pathlib import Path as P\nfrom os import path as osp\ntry:\n    import requests as rq\nexcept ImportError:\n    rq = None\nfrom . import sibling\n";
        assert_eq!(qualify(src, "sp.run").as_deref(), Some("subprocess.run"));
        assert_eq!(
            qualify(src, "os.path.join").as_deref(),
            Some("os.path.join")
        );
        assert_eq!(qualify(src, "P").as_deref(), Some("pathlib.Path"));
        assert_eq!(qualify(src, "osp.join").as_deref(), Some("os.path.join"));
        assert_eq!(qualify(src, "rq.post").as_deref(), Some("requests.post"));
        assert_eq!(qualify(src, "sibling.f").as_deref(), Some(".sibling.f"));
        assert_eq!(qualify(src, "open").as_deref(), Some("open"));
        assert_eq!(qualify(src, "f()").as_deref(), None);
    }
}
