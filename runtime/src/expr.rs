//! Undo argument expressions: `$args.x`, `$result.a.b`, `$result.items[*].id`, `$snapshot`,
//! `$snapshot.f`, `$location.id`, resolved against a finished call.

use aifirst_capability::{Expr, Root, Seg};
use serde_json::Value;

/// What an expression may refer to.
pub struct Scope<'a> {
    pub args: &'a Value,
    pub result: &'a Value,
    pub snapshot: Option<&'a Value>,
    /// The response's `Location` header, when the handler recorded one.
    pub location: Option<&'a str>,
}

impl<'a> Scope<'a> {
    /// Only the call's arguments (before it ran, or when nothing else was kept).
    pub fn of_args(args: &'a Value) -> Self {
        Scope {
            args,
            result: &Value::Null,
            snapshot: None,
            location: None,
        }
    }
}

/// Why an expression has no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{expr}`: {why}")]
pub struct ExprError {
    pub expr: String,
    pub why: String,
}

/// Resolves one expression.
pub fn resolve(expr: &Expr, scope: &Scope<'_>) -> Result<Value, ExprError> {
    let err = |why: &str| ExprError {
        expr: expr.to_string(),
        why: why.to_string(),
    };
    let base = match expr.root {
        Root::Args => scope.args,
        Root::Result => scope.result,
        Root::Snapshot => scope.snapshot.ok_or_else(|| err("no snapshot was taken"))?,
        Root::Location => {
            // `$location.id` (the only form the parser takes): the last path segment.
            let loc = scope
                .location
                .ok_or_else(|| err("the response had no Location header"))?;
            let loc = loc
                .split(['?', '#'])
                .next()
                .unwrap_or(loc)
                .trim_end_matches('/');
            return Ok(Value::String(
                loc.rsplit('/').next().unwrap_or(loc).to_string(),
            ));
        }
    };
    walk(base, &expr.path).ok_or_else(|| err("no value at that path"))
}

fn walk(v: &Value, path: &[Seg]) -> Option<Value> {
    let Some((head, rest)) = path.split_first() else {
        return Some(v.clone());
    };
    match head {
        Seg::Each(field) => {
            let list = v.get(field.as_ref())?.as_array()?;
            Some(Value::Array(
                list.iter().filter_map(|item| walk(item, rest)).collect(),
            ))
        }
        Seg::Field(field) => walk(v.get(field.as_ref())?, rest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolve(text: &str, s: &Scope<'_>) -> Result<Value, ExprError> {
        super::resolve(&Expr::parse(text).unwrap(), s)
    }

    #[test]
    fn expressions() {
        let args = json!({"id": 7});
        let result = json!({"id": 9, "data": {"name": "x"}, "repos": [{"id": 1}, {"id": 2}]});
        let snap = json!({"title": "old"});
        let s = Scope {
            args: &args,
            result: &result,
            snapshot: Some(&snap),
            location: Some("https://api.example.test/v1/pets/42/?x=1"),
        };
        assert_eq!(resolve("$args.id", &s), Ok(json!(7)));
        assert_eq!(resolve("$result.data.name", &s), Ok(json!("x")));
        assert_eq!(resolve("$result.repos[*].id", &s), Ok(json!([1, 2])));
        assert_eq!(resolve("$snapshot", &s), Ok(snap.clone()));
        assert_eq!(resolve("$snapshot.title", &s), Ok(json!("old")));
        assert_eq!(resolve("$location.id", &s), Ok(json!("42")));
        assert!(resolve("$result.nope", &s).is_err());
        assert!(Expr::parse("$env.HOME").is_err(), "refused when parsed");
        let no_snap = Scope {
            args: &args,
            result: &result,
            snapshot: None,
            location: None,
        };
        assert!(resolve("$snapshot.title", &no_snap).is_err());
        assert!(resolve("$location.id", &no_snap).is_err());
    }
}
