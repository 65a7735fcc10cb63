//! Undo argument expressions, typed: `$args.NAME`, `$result.a.b`, `$result.items[*].id`,
//! `$snapshot`, `$snapshot.f`, `$location.id`.
//!
//! One type for forge (which infers them), the `#[capability]` macro (which parses them at compile
//! time, so a bad one is a compile error) and the runtime (which resolves them against a finished
//! call). They serialise as their text, so manifests and the IR read as before. Paths are `Cow`s,
//! so the macro can build them as `static` data.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What an expression reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Root {
    /// The arguments of the original call.
    Args,
    /// Its result (the response body).
    Result,
    /// The snapshot taken before it.
    Snapshot,
    /// Its response's `Location` header (`$location.id`: the last path segment).
    Location,
}

impl Root {
    pub fn as_str(self) -> &'static str {
        match self {
            Root::Args => "$args",
            Root::Result => "$result",
            Root::Snapshot => "$snapshot",
            Root::Location => "$location",
        }
    }
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Seg {
    /// `.name`: a field.
    Field(Cow<'static, str>),
    /// `.name[*]`: every item of the array in a field.
    Each(Cow<'static, str>),
}

impl Seg {
    /// The field's name.
    pub fn name(&self) -> &str {
        match self {
            Seg::Field(n) | Seg::Each(n) => n,
        }
    }
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Expr {
    pub root: Root,
    pub path: Cow<'static, [Seg]>,
}

/// Why a text is not an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprParseError {
    pub text: String,
    pub why: &'static str,
}

impl fmt::Display for ExprParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad undo expression `{}`: {} (expected `$args.NAME`, `$result.PATH`, `$result.LIST[*].FIELD`, `$snapshot`, `$snapshot.PATH` or `$location.id`)",
            self.text, self.why
        )
    }
}

impl std::error::Error for ExprParseError {}

impl Expr {
    /// An expression from static parts (what the macro emits).
    pub const fn from_static(root: Root, path: &'static [Seg]) -> Expr {
        Expr {
            root,
            path: Cow::Borrowed(path),
        }
    }

    /// `$args.NAME`.
    pub fn args(name: &str) -> Expr {
        Expr::field_of(Root::Args, name)
    }

    /// `$snapshot` (the whole snapshot).
    pub fn snapshot() -> Expr {
        Expr::from_static(Root::Snapshot, &[])
    }

    /// `$location.id`.
    pub fn location_id() -> Expr {
        Expr {
            root: Root::Location,
            path: Cow::Owned(vec![Seg::Field(Cow::Borrowed("id"))]),
        }
    }

    /// `ROOT.NAME`: one field (a name with dots is one field, not a path).
    pub fn field_of(root: Root, name: &str) -> Expr {
        Expr {
            root,
            path: Cow::Owned(vec![Seg::Field(Cow::Owned(name.to_string()))]),
        }
    }

    /// `ROOT.a.b…`: the fields of a dotted path (`data.id`), each a field.
    pub fn path_of(root: Root, dotted: &str) -> Result<Expr, ExprParseError> {
        Expr::parse(&format!("{}.{dotted}", root.as_str()))
    }

    /// `ROOT.a.b…` from field names, each one plain field (no `.`, `[`, `]`, `$` or spaces).
    pub fn fields<S: AsRef<str>>(root: Root, names: &[S]) -> Result<Expr, ExprParseError> {
        let mut path = Vec::with_capacity(names.len());
        for n in names {
            let n = n.as_ref();
            if let Some(why) = bad_name(n) {
                return Err(ExprParseError {
                    text: format!("{}.{n}", root.as_str()),
                    why,
                });
            }
            path.push(Seg::Field(Cow::Owned(n.to_string())));
        }
        Ok(Expr {
            root,
            path: Cow::Owned(path),
        })
    }

    /// The same expression with segment `i` read as a list (`.name[*]`).
    pub fn each_at(mut self, i: usize) -> Expr {
        if let Some(seg) = self.path.to_mut().get_mut(i) {
            *seg = Seg::Each(Cow::Owned(seg.name().to_string()));
        }
        self
    }

    /// The same expression, one field deeper.
    pub fn then(mut self, seg: Seg) -> Expr {
        self.path.to_mut().push(seg);
        self
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Expr, ExprParseError> {
        let bad = |why| ExprParseError {
            text: text.to_string(),
            why,
        };
        let (root, rest) = match text.split_once('.') {
            Some((r, p)) => (r, Some(p)),
            None => (text, None),
        };
        let root = match root {
            "$args" => Root::Args,
            "$result" => Root::Result,
            "$snapshot" => Root::Snapshot,
            "$location" => Root::Location,
            _ => return Err(bad("unknown root")),
        };
        let mut path = Vec::new();
        if let Some(rest) = rest {
            for part in rest.split('.') {
                let seg = match part.strip_suffix("[*]") {
                    Some(name) => Seg::Each(Cow::Owned(name.to_string())),
                    None => Seg::Field(Cow::Owned(part.to_string())),
                };
                if let Some(why) = bad_name(seg.name()) {
                    return Err(bad(why));
                }
                path.push(seg);
            }
        }
        if root == Root::Location && path != [Seg::Field(Cow::Borrowed("id"))] {
            return Err(bad("`$location` has one form, `$location.id`"));
        }
        Ok(Expr {
            root,
            path: Cow::Owned(path),
        })
    }

    /// `true` when the expression can be resolved before the call runs (it reads only arguments).
    pub fn reads_args_only(&self) -> bool {
        self.root == Root::Args
    }
}

/// Why a field name cannot stand in an expression, if it cannot.
fn bad_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("an empty field name")
    } else if name.contains(['.', '[', ']', '$']) || name.chars().any(char::is_whitespace) {
        Some("a field name with `.`, `[`, `]`, `$` or spaces")
    } else {
        None
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.root.as_str())?;
        for s in self.path.iter() {
            match s {
                Seg::Field(n) => write!(f, ".{n}")?,
                Seg::Each(n) => write!(f, ".{n}[*]")?,
            }
        }
        Ok(())
    }
}

/// Compares with the text form (`expr == "$result.id"`).
impl PartialEq<str> for Expr {
    fn eq(&self, other: &str) -> bool {
        Expr::parse(other).is_ok_and(|o| o == *self)
    }
}

impl PartialEq<&str> for Expr {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl std::str::FromStr for Expr {
    type Err = ExprParseError;
    fn from_str(s: &str) -> Result<Expr, ExprParseError> {
        Expr::parse(s)
    }
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Expr, D::Error> {
        let text = String::deserialize(d)?;
        Expr::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for text in [
            "$args.id",
            "$args.petId",
            "$result",
            "$result.data.id",
            "$result.repos[*].id",
            "$snapshot",
            "$snapshot.title",
            "$snapshot.repositories[*].id",
            "$location.id",
        ] {
            let e = Expr::parse(text).unwrap();
            assert_eq!(e.to_string(), text);
            assert_eq!(serde_json::to_value(&e).unwrap(), text);
            let back: Expr = serde_json::from_value(serde_json::json!(text)).unwrap();
            assert_eq!(back, e);
        }
        assert_eq!(Expr::args("petId"), Expr::parse("$args.petId").unwrap());
        assert_eq!(Expr::location_id(), Expr::parse("$location.id").unwrap());
        assert_eq!(
            Expr::path_of(Root::Result, "data.id").unwrap(),
            Expr::parse("$result.data.id").unwrap()
        );
    }

    #[test]
    fn bad_expressions_say_why() {
        for text in [
            "$env.HOME",
            "args.id",
            "$args.",
            "$result..id",
            "$location",
            "$location.href",
            "$result.a b",
            "$result.x[0]",
            "",
        ] {
            let e = Expr::parse(text).unwrap_err();
            assert!(e.to_string().contains("bad undo expression"), "{text}: {e}");
        }
        assert!(serde_json::from_value::<Expr>(serde_json::json!("$env.X")).is_err());
        assert!(Expr::fields(Root::Result, &["a.b"]).is_err());
        assert!(Expr::fields(Root::Result, &["x[*]"]).is_err());
        assert_eq!(
            Expr::fields(Root::Result, &["data", "id"])
                .unwrap()
                .to_string(),
            "$result.data.id"
        );
    }
}
