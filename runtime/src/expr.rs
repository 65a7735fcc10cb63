//! Undo argument expressions: `$args.x`, `$result.a.b`, `$result.items[*].id`, `$snapshot`,
//! `$snapshot.f`, `$location.id`, resolved against a finished call.

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
pub fn resolve(expr: &str, scope: &Scope<'_>) -> Result<Value, ExprError> {
    let err = |why: &str| ExprError {
        expr: expr.to_string(),
        why: why.to_string(),
    };
    let (root, path) = match expr.split_once('.') {
        Some((r, p)) => (r, Some(p)),
        None => (expr, None),
    };
    let base = match root {
        "$args" => scope.args,
        "$result" => scope.result,
        "$snapshot" => scope.snapshot.ok_or_else(|| err("no snapshot was taken"))?,
        "$location" => {
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
        _ => {
            return Err(err(
                "unknown root (expected $args, $result, $snapshot or $location)",
            ))
        }
    };
    let Some(path) = path else {
        return Ok(base.clone());
    };
    walk(base, &path.split('.').collect::<Vec<_>>()).ok_or_else(|| err("no value at that path"))
}

fn walk(v: &Value, path: &[&str]) -> Option<Value> {
    let Some((head, rest)) = path.split_first() else {
        return Some(v.clone());
    };
    if let Some(field) = head.strip_suffix("[*]") {
        let list = v.get(field)?.as_array()?;
        return Some(Value::Array(
            list.iter().filter_map(|item| walk(item, rest)).collect(),
        ));
    }
    walk(v.get(*head)?, rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        assert!(resolve("$env.HOME", &s).is_err());
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
