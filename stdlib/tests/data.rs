//! The data tools end to end: jq over inline JSON and files, CSV round trips, SQLite queries
//! with bound parameters, SQLite writes undone row by row from a new engine (and refused when a
//! row changed since), file hashes, diffs, and the sandbox — no path outside the root reaches a
//! tool.

#![cfg(feature = "data")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aifirst::{
    CallError, CallOptions, Ctx, Engine, Policy, Registry, Sandbox, ToolError, UndoDecl,
    UndoReport, Value,
};
use aifirst_stdlib as _;
use rusqlite::Connection;
use serde_json::json;

struct Bench {
    dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    ctx: Ctx,
    registry: Registry,
}

fn bench() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let ctx = Ctx::with_sandbox(Arc::new(
        Sandbox::new()
            .with_roots(std::slice::from_ref(&root))
            .unwrap(),
    ));
    Bench {
        dir,
        root,
        outside,
        ctx,
        registry: Registry::new().unwrap(),
    }
}

impl Bench {
    /// Invokes a tool directly, as a server would without the engine.
    async fn call(&self, tool: &str, args: Value) -> Result<Value, ToolError> {
        let def = self
            .registry
            .get(tool)
            .unwrap_or_else(|| panic!("`{tool}` is not registered"));
        def.invoke(&self.ctx, args).await
    }

    async fn ok(&self, tool: &str, args: Value) -> Value {
        match self.call(tool, args.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{tool} {args}: {e:?}"),
        }
    }

    async fn err(&self, tool: &str, args: Value) -> ToolError {
        match self.call(tool, args.clone()).await {
            Err(e) => e,
            Ok(v) => panic!("{tool} {args} succeeded: {v}"),
        }
    }

    /// A new engine on the same state directory: what a new process sees.
    fn engine(&self) -> Engine {
        self.engine_with(Policy::default())
    }

    fn engine_with(&self, policy: Policy) -> Engine {
        Engine::open(
            Registry::new().unwrap(),
            policy,
            &self.dir.path().join("state"),
        )
        .unwrap()
        .with_sandbox(
            Sandbox::new()
                .with_roots(std::slice::from_ref(&self.root))
                .unwrap(),
        )
    }

    /// Calls a tool through a new engine (journaled, undoable).
    async fn run(&self, tool: &str, args: Value) -> Result<Value, CallError> {
        self.engine()
            .call("s", tool, args, CallOptions::default())
            .await
    }

    /// Calls a tool through a new engine with `policy`, confirmed by the user or not.
    async fn run_with(
        &self,
        policy: Policy,
        confirmed: bool,
        tool: &str,
        args: Value,
    ) -> Result<Value, CallError> {
        let opts = CallOptions {
            confirmed,
            ..CallOptions::default()
        };
        self.engine_with(policy).call("s", tool, args, opts).await
    }

    /// Undoes the last `n` steps from a new engine.
    async fn undo(&self, n: usize) -> UndoReport {
        self.engine().undo("s", n).await.unwrap()
    }

    /// Writes a file below the root, bypassing the tools.
    fn put(&self, rel: &str, content: impl AsRef<[u8]>) {
        let p = self.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.join(rel)).unwrap()
    }

    /// The absolute path of `rel`, as the tools show it.
    fn p(&self, rel: &str) -> String {
        self.root.join(rel).display().to_string()
    }

    /// `shop.db` below the root: `items` (with a primary key) and `logs` (without).
    fn shop(&self) -> PathBuf {
        let path = self.root.join("shop.db");
        make_shop(&path);
        path
    }
}

fn make_shop(path: &Path) {
    open(path)
        .execute_batch(
            "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty REAL, data BLOB);
         INSERT INTO items VALUES (1, 'apple', 1.5, x'00ff'), (2, 'pear', 2.0, NULL),
                                  (3, 'fig', NULL, x'');
         CREATE TABLE logs(msg TEXT);",
        )
        .unwrap();
}

type Item = (i64, String, Option<f64>, Option<Vec<u8>>);

/// A connection of its own, as another program (or the user) would open the database.
fn open(db: &Path) -> Connection {
    Connection::open(db).unwrap()
}

/// Every row of `items`, read directly.
fn items(db: &Path) -> Vec<Item> {
    let c = open(db);
    let mut s = c
        .prepare("SELECT id, name, qty, data FROM items ORDER BY id")
        .unwrap();
    let mut out = Vec::new();
    for row in s
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
    {
        out.push(row.unwrap());
    }
    out
}

fn count(db: &Path, table: &str) -> i64 {
    let c = open(db);
    c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

fn not_allowed(e: &ToolError) -> bool {
    matches!(e, ToolError::NotAllowed { .. })
}

fn invalid(e: &ToolError) -> bool {
    matches!(e, ToolError::InvalidArguments { .. })
}

#[test]
fn every_tool_is_registered_with_its_effects_and_undo() {
    let registry = Registry::new().unwrap();
    for name in [
        "query_json",
        "read_csv",
        "write_csv",
        "sqlite_query",
        "sqlite_execute",
        "sqlite_apply_changeset",
        "hash_file",
        "diff_text",
    ] {
        assert!(registry.get(name).is_some(), "{name} is missing");
    }
    for name in [
        "query_json",
        "read_csv",
        "sqlite_query",
        "hash_file",
        "diff_text",
    ] {
        let a = registry.get(name).unwrap().annotations();
        assert_eq!(a.read_only_hint, Some(true), "{name}");
    }
    for name in ["sqlite_execute", "sqlite_apply_changeset"] {
        let def = registry.get(name).unwrap();
        assert!(
            matches!(def.undo, UndoDecl::Custom),
            "{name}: {:?}",
            def.undo
        );
        assert_eq!(def.annotations().read_only_hint, Some(false), "{name}");
    }
    assert!(matches!(
        registry.get("write_csv").unwrap().undo,
        UndoDecl::Plan(_)
    ));
    // Schema changes make one call of sqlite_execute irreversible, decided before it runs.
    assert!(registry
        .get("sqlite_execute")
        .unwrap()
        .irreversible_when
        .is_some());
    assert!(registry
        .get("sqlite_apply_changeset")
        .unwrap()
        .irreversible_when
        .is_none());
}

// ---- query_json

#[tokio::test]
async fn query_json_filters_inline_values_and_files() {
    let b = bench();
    let out = b
        .ok(
            "query_json",
            json!({
                "filter": ".items[] | select(.price > 2) | .name",
                "value": {"items": [{"name": "a", "price": 1}, {"name": "b", "price": 3}]}
            }),
        )
        .await;
    assert_eq!(out, json!({"results": ["b"], "count": 1}));

    b.put("data.json", r#"{"a": [1, 2, 3], "s": "x"}"#);
    let out = b
        .ok(
            "query_json",
            json!({"filter": ".a | map(. * 10) | add", "path": "data.json"}),
        )
        .await;
    assert_eq!(out["results"], json!([60]));
    let out = b
        .ok(
            "query_json",
            json!({"filter": ".a[], .s, {n: (.a | length)}", "path": b.p("data.json")}),
        )
        .await;
    assert_eq!(out["results"], json!([1, 2, 3, "x", {"n": 3}]));
    assert_eq!(out["count"], 5);

    // Nothing out is an empty list, not an error.
    let out = b
        .ok("query_json", json!({"filter": "empty", "value": [1]}))
        .await;
    assert_eq!(out, json!({"results": [], "count": 0}));
}

#[tokio::test]
async fn query_json_errors_say_what_is_wrong() {
    let b = bench();
    let e = b
        .err("query_json", json!({"filter": ".a | map(", "value": {}}))
        .await;
    assert!(invalid(&e), "{e:?}");
    assert!(e.to_string().contains("does not parse"), "{e}");

    let e = b
        .err(
            "query_json",
            json!({"filter": "nosuchfilter(1)", "value": {}}),
        )
        .await;
    assert!(invalid(&e), "{e:?}");
    assert!(e.to_string().contains("nosuchfilter"), "{e}");

    // The server's environment (credentials) is not readable.
    let e = b
        .err("query_json", json!({"filter": "env", "value": 0}))
        .await;
    assert!(invalid(&e) && e.to_string().contains("env"), "{e:?}");

    let e = b
        .err(
            "query_json",
            json!({"filter": "error(\"boom\")", "value": 0}),
        )
        .await;
    assert!(e.to_string().contains("boom"), "{e}");

    let e = b.err("query_json", json!({"filter": "."})).await;
    assert!(invalid(&e), "{e:?}");
    b.put("x.json", "1");
    let e = b
        .err(
            "query_json",
            json!({"filter": ".", "value": 1, "path": "x.json"}),
        )
        .await;
    assert!(invalid(&e), "{e:?}");

    b.put("bad.json", "{\"a\": ");
    let e = b
        .err("query_json", json!({"filter": ".", "path": "bad.json"}))
        .await;
    assert!(e.to_string().contains("not valid JSON"), "{e}");
}

#[tokio::test]
async fn a_runaway_filter_is_stopped_at_the_cap() {
    let b = bench();
    let e = b
        .err("query_json", json!({"filter": "repeat(1)", "value": 0}))
        .await;
    assert!(e.to_string().contains("more than 10000"), "{e}");
    let e = b
        .err(
            "query_json",
            json!({"filter": "range(1e18)", "value": null, "path": null}),
        )
        .await;
    // `value: null` counts as not given.
    assert!(invalid(&e), "{e:?}");
    let e = b
        .err("query_json", json!({"filter": "range(1e18)", "value": 0}))
        .await;
    assert!(e.to_string().contains("more than 10000"), "{e}");
    // Bounded, the same filter is fine.
    let out = b
        .ok(
            "query_json",
            json!({"filter": "limit(3; repeat(1))", "value": 0}),
        )
        .await;
    assert_eq!(out["count"], 3);
}

// ---- CSV

#[tokio::test]
async fn write_csv_then_read_csv_round_trips_quoting() {
    let b = bench();
    let rows = json!([
        {"name": "Smith, J.", "note": "said \"hi\"\nbye", "n": 3, "tags": ["a", "b"], "none": null},
        {"name": "Ann", "note": "", "n": 4.5, "tags": [], "none": true}
    ]);
    let w = b
        .ok("write_csv", json!({"path": "out.csv", "rows": rows}))
        .await;
    assert_eq!(w["rows_written"], 2);
    assert_eq!(w["columns"], json!(["name", "note", "n", "tags", "none"]));
    let raw = b.read("out.csv");
    assert!(raw.starts_with("name,note,n,tags,none\n"), "{raw}");
    assert!(raw.contains("\"Smith, J.\""), "{raw}");
    assert!(raw.contains("\"said \"\"hi\"\"\nbye\""), "{raw}");

    let r = b.ok("read_csv", json!({"path": "out.csv"})).await;
    assert_eq!(r["columns"], json!(["name", "note", "n", "tags", "none"]));
    assert_eq!(
        r["rows"][0],
        json!({"name": "Smith, J.", "note": "said \"hi\"\nbye", "n": "3", "tags": "[\"a\",\"b\"]", "none": ""})
    );
    assert_eq!(
        r["rows"][1],
        json!({"name": "Ann", "note": "", "n": "4.5", "tags": "[]", "none": "true"})
    );
    assert_eq!(r["row_count_read"], 2);
    assert_eq!(r["truncated"], false);
    assert_eq!(r["path"], json!(b.p("out.csv")));
}

#[tokio::test]
async fn read_csv_without_header_with_tabs_and_a_row_limit() {
    let b = bench();
    b.put("t.tsv", "a\tb\n1\t2\t3\n");
    let r = b
        .ok(
            "read_csv",
            json!({"path": "t.tsv", "delimiter": "\t", "has_header": false}),
        )
        .await;
    assert_eq!(r["rows"], json!([["a", "b"], ["1", "2", "3"]]));
    assert_eq!(r["columns"], json!(["column_1", "column_2", "column_3"]));

    b.put("h.csv", "h,h,\n1,2,3\n4\n5\n");
    let r = b
        .ok("read_csv", json!({"path": "h.csv", "max_rows": 2}))
        .await;
    assert_eq!(r["columns"], json!(["h", "h_2", "column_3"]));
    assert_eq!(
        r["rows"],
        json!([{"h": "1", "h_2": "2", "column_3": "3"}, {"h": "4", "h_2": null, "column_3": null}])
    );
    assert_eq!(r["row_count_read"], 2);
    assert_eq!(r["truncated"], true);

    let e = b
        .err("read_csv", json!({"path": "h.csv", "delimiter": ";;"}))
        .await;
    assert!(invalid(&e), "{e:?}");
    let e = b
        .err("read_csv", json!({"path": "h.csv", "max_rows": 1_000_000}))
        .await;
    assert!(invalid(&e), "{e:?}");
}

#[tokio::test]
async fn write_csv_refuses_a_key_that_is_not_a_column_and_writes_nothing() {
    let b = bench();
    let e = b
        .err(
            "write_csv",
            json!({"path": "x.csv", "columns": ["a"], "rows": [{"a": 1, "b": 2}]}),
        )
        .await;
    assert!(invalid(&e) && e.to_string().contains("`b`"), "{e:?}");
    assert!(!b.root.join("x.csv").exists());
    let e = b
        .err("write_csv", json!({"path": "x.csv", "rows": [1]}))
        .await;
    assert!(invalid(&e), "{e:?}");
    assert!(!b.root.join("x.csv").exists());
    // Columns given: their order, missing keys empty; arrays as they are.
    b.ok(
        "write_csv",
        json!({"path": "x.csv", "columns": ["b", "a"], "rows": [{"a": 1}, ["p", "q"]], "delimiter": ";"}),
    )
    .await;
    assert_eq!(b.read("x.csv"), "b;a\n;1\np;q\n");
}

#[tokio::test]
async fn write_csv_is_undone_byte_exact_from_a_new_engine() {
    let b = bench();
    let original = b"old,content\r\n1,\"2\"\r\n".to_vec();
    b.put("keep.csv", &original);
    b.run(
        "write_csv",
        json!({"path": "keep.csv", "rows": [[1, 2, 3]]}),
    )
    .await
    .unwrap();
    assert_eq!(b.read("keep.csv"), "1,2,3\n");
    b.run("write_csv", json!({"path": "new.csv", "rows": [["x"]]}))
        .await
        .unwrap();
    assert!(b.root.join("new.csv").exists());
    let report = b.undo(2).await;
    assert_eq!(report.undone.len(), 2, "{report:?}");
    assert!(!b.root.join("new.csv").exists());
    assert_eq!(std::fs::read(b.root.join("keep.csv")).unwrap(), original);
}

// ---- SQLite

#[tokio::test]
async fn sqlite_query_binds_params_and_returns_typed_values() {
    let b = bench();
    b.shop();
    let out = b
        .ok(
            "sqlite_query",
            json!({
                "database": "shop.db",
                "sql": "SELECT id, name, qty, data FROM items WHERE id <= ?1 ORDER BY id",
                "params": [2]
            }),
        )
        .await;
    assert_eq!(out["columns"], json!(["id", "name", "qty", "data"]));
    assert_eq!(
        out["rows"],
        json!([[1, "apple", 1.5, {"base64": "AP8="}], [2, "pear", 2.0, null]])
    );
    assert_eq!(out["row_count"], 2);
    assert_eq!(out["truncated"], false);

    let out = b
        .ok(
            "sqlite_query",
            json!({"database": b.p("shop.db"), "sql": "SELECT id FROM items ORDER BY id", "max_rows": 2}),
        )
        .await;
    assert_eq!(out["rows"], json!([[1], [2]]));
    assert_eq!(out["truncated"], true);

    // Reading the schema is fine.
    let out = b
        .ok(
            "sqlite_query",
            json!({"database": "shop.db", "sql": "PRAGMA table_info(items)"}),
        )
        .await;
    assert_eq!(out["row_count"], 4);
}

#[tokio::test]
async fn sqlite_query_refuses_writes_several_statements_and_attach() {
    let b = bench();
    let db = b.shop();
    let before = items(&db);
    let e = b
        .err(
            "sqlite_query",
            json!({"database": "shop.db", "sql": "UPDATE items SET name = 'x'"}),
        )
        .await;
    assert!(e.to_string().contains("read-only"), "{e}");
    let e = b
        .err(
            "sqlite_query",
            json!({"database": "shop.db", "sql": "DELETE FROM items RETURNING id"}),
        )
        .await;
    assert!(e.to_string().contains("read-only"), "{e}");
    let e = b
        .err(
            "sqlite_query",
            json!({"database": "shop.db", "sql": "SELECT 1; DELETE FROM items"}),
        )
        .await;
    assert!(invalid(&e) || not_allowed(&e), "{e:?}");
    let e = b
        .err(
            "sqlite_query",
            json!({"database": "shop.db", "sql": "PRAGMA user_version = 7"}),
        )
        .await;
    assert!(not_allowed(&e) || invalid(&e), "{e:?}");
    let other = b.outside.join("other.db");
    make_shop(&other);
    let e = b
        .err(
            "sqlite_query",
            json!({
                "database": "shop.db",
                "sql": format!("ATTACH DATABASE '{}' AS other", other.display())
            }),
        )
        .await;
    assert!(not_allowed(&e), "{e:?}");
    assert!(e.to_string().contains("ATTACH"), "{e}");
    assert_eq!(items(&db), before);
    let e = b
        .err(
            "sqlite_query",
            json!({"database": "shop.db", "sql": "SELECT ?1, ?2", "params": [1]}),
        )
        .await;
    assert!(invalid(&e), "{e:?}");
}

#[tokio::test]
async fn params_are_bound_not_pasted() {
    let b = bench();
    let db = b.shop();
    let evil = "'; DROP TABLE items; --";
    let done = b
        .run(
            "sqlite_execute",
            json!({
                "database": "shop.db",
                "sql": "INSERT INTO items(id, name) VALUES (?1, ?2)",
                "params": [7, evil]
            }),
        )
        .await
        .unwrap();
    assert_eq!(done["rows_changed"], 1);
    assert_eq!(done["last_insert_rowid"], 7);
    let out = b
        .ok(
            "sqlite_query",
            json!({"database": "shop.db", "sql": "SELECT name FROM items WHERE id = ?1", "params": [7]}),
        )
        .await;
    assert_eq!(out["rows"], json!([[evil]]));
    assert_eq!(count(&db, "items"), 4);
}

#[tokio::test]
async fn inserts_updates_and_deletes_are_undone_row_exact_from_a_new_engine() {
    let b = bench();
    let db = b.shop();
    let before = items(&db);

    let first = b
        .run(
            "sqlite_execute",
            json!({
                "database": "shop.db",
                "sql": "INSERT INTO items(id, name, qty) VALUES (?1, ?2, ?3)",
                "params": [4, "kiwi", 0.25]
            }),
        )
        .await
        .unwrap();
    assert_eq!(first["statements"], 1);
    assert_eq!(first["rows_changed"], 1);
    assert_eq!(first["last_insert_rowid"], 4);
    assert_eq!(first["recorded_changes"], 1);
    assert_eq!(first["tables"], json!(["items"]));

    let second = b
        .run(
            "sqlite_execute",
            json!({
                "database": b.p("shop.db"),
                "sql": "UPDATE items SET name = 'PEAR', qty = qty * 2, data = x'01' WHERE id = 2;
                        -- and the fig goes
                        DELETE FROM items WHERE id = 3;"
            }),
        )
        .await
        .unwrap();
    assert_eq!(second["statements"], 2);
    assert_eq!(second["rows_changed"], 2);
    assert_eq!(second["recorded_changes"], 2);

    // Changing nothing records nothing, and is undone as a no-op.
    let none = b
        .run(
            "sqlite_execute",
            json!({"database": "shop.db", "sql": "UPDATE items SET name = 'x' WHERE id = 999"}),
        )
        .await
        .unwrap();
    assert_eq!(none["recorded_changes"], 0);

    let changed = items(&db);
    assert_ne!(changed, before);
    assert_eq!(changed.len(), 3);

    let report = b.undo(3).await;
    assert_eq!(report.undone.len(), 3, "{report:?}");
    assert!(report.failed.is_none(), "{report:?}");
    assert_eq!(items(&db), before, "every value, type and BLOB as it was");
}

#[tokio::test]
async fn undo_refuses_a_row_changed_since_and_keeps_the_newer_value() {
    let b = bench();
    let db = b.shop();
    b.run(
        "sqlite_execute",
        json!({
            "database": "shop.db",
            "sql": "UPDATE items SET name = ?1 WHERE id = 1",
            "params": ["agent"]
        }),
    )
    .await
    .unwrap();
    open(&db)
        .execute("UPDATE items SET name = 'user' WHERE id = 1", [])
        .unwrap();
    let report = b.undo(1).await;
    assert!(report.undone.is_empty(), "{report:?}");
    let (_, why) = report.failed.clone().expect("refused");
    assert!(why.contains("`items`"), "{why}");
    assert!(why.contains("changed since"), "{why}");
    assert!(why.contains("nothing was written"), "{why}");
    let name: String = open(&db)
        .query_row("SELECT name FROM items WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(name, "user");
}

#[tokio::test]
async fn undo_refuses_a_row_deleted_since() {
    let b = bench();
    let db = b.shop();
    b.run(
        "sqlite_execute",
        json!({"database": "shop.db", "sql": "INSERT INTO items(id, name) VALUES (9, 'new')"}),
    )
    .await
    .unwrap();
    open(&db)
        .execute("DELETE FROM items WHERE id = 9", [])
        .unwrap();
    // Someone else's row meanwhile: undo must not touch it either.
    open(&db)
        .execute("UPDATE items SET name = 'theirs' WHERE id = 2", [])
        .unwrap();
    let report = b.undo(1).await;
    let (_, why) = report.failed.clone().expect("refused");
    assert!(why.contains("`items`") && why.contains("gone"), "{why}");
    assert_eq!(count(&db, "items"), 3);
}

fn schema_objects(db: &Path) -> i64 {
    open(db)
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type IN ('table', 'index')",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn unrecordable_changes_need_confirmation_then_run_irreversible() {
    let b = bench();
    let db = b.shop();
    let before = items(&db);

    // What SQLite's session extension does not record (schema changes, rows of a table
    // without a primary key) cannot be undone: the engine asks first, and nothing runs.
    for (sql, named) in [
        (
            "CREATE TABLE t2(id INTEGER PRIMARY KEY)",
            "creates the table `t2`",
        ),
        ("DROP TABLE logs", "drops the table `logs`"),
        (
            "ALTER TABLE items ADD COLUMN extra TEXT",
            "alters the table `items`",
        ),
        (
            "CREATE INDEX items_name ON items(name)",
            "creates the index `items_name`",
        ),
        ("INSERT INTO logs VALUES ('x')", "`logs` has no PRIMARY KEY"),
        (
            "INSERT INTO items(id, name) VALUES (50, 'x'); INSERT INTO logs VALUES ('y');",
            "`logs` has no PRIMARY KEY",
        ),
        (
            "INSERT INTO items(id, name) VALUES (51, 'x'); CREATE TABLE t3(a)",
            "creates the table `t3`",
        ),
    ] {
        match b
            .run("sqlite_execute", json!({"database": "shop.db", "sql": sql}))
            .await
        {
            Err(CallError::NeedsConfirmation(why)) => {
                assert!(why.contains(named), "{sql}: {why}");
                assert!(why.contains("cannot be undone"), "{sql}: {why}");
            }
            other => panic!("{sql}: {other:?}"),
        }
    }
    assert_eq!(items(&db), before);
    assert_eq!(count(&db, "logs"), 0);
    assert_eq!(schema_objects(&db), 2, "items and logs, nothing else");
    assert!(
        b.engine().history("s").unwrap().is_empty(),
        "a call that did not run leaves no step"
    );

    // A policy that refuses irreversible calls refuses them outright.
    let deny = Policy {
        deny_irreversible: true,
        ..Policy::default()
    };
    let e = b
        .run_with(
            deny,
            true,
            "sqlite_execute",
            json!({"database": "shop.db", "sql": "DROP TABLE logs"}),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, CallError::Denied(_)), "{e:?}");
    assert_eq!(count(&db, "logs"), 0);

    // Confirmed, the call runs — all of it, in one transaction — and is journaled
    // irreversible with its reason; undo refuses it and changes nothing.
    let sql = "CREATE TABLE t2(id INTEGER PRIMARY KEY, v TEXT); \
               INSERT INTO t2 VALUES (1, 'a'); INSERT INTO logs VALUES ('z')";
    let out = b
        .run_with(
            Policy::default(),
            true,
            "sqlite_execute",
            json!({"database": "shop.db", "sql": sql}),
        )
        .await
        .unwrap();
    assert_eq!(out["statements"], 3, "{out}");
    assert_eq!(out["recorded_changes"], 0, "{out}");
    assert_eq!(count(&db, "t2"), 1);
    assert_eq!(count(&db, "logs"), 1);
    let history = b.engine().history("s").unwrap();
    assert_eq!(history.len(), 1);
    match &history[0].undo {
        aifirst::StepUndo::Irreversible { reason } => {
            assert!(reason.contains("creates the table `t2`"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let report = b.undo(1).await;
    assert!(report.undone.is_empty(), "{report:?}");
    let (_, why) = report
        .failed
        .clone()
        .expect("an irreversible step is not undone");
    assert!(
        why.contains("cannot be undone") || why.contains("irreversible"),
        "{why}"
    );
    assert_eq!(count(&db, "t2"), 1);

    // A confirmed call that fails changes nothing.
    let e = b
        .run_with(
            Policy::default(),
            true,
            "sqlite_execute",
            json!({"database": "shop.db", "sql": "CREATE TABLE t4(a); INSERT INTO items(id, name) VALUES (1, 'dup')"}),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("UNIQUE"), "{e}");
    assert!(e.to_string().contains("Nothing was changed"), "{e}");
    assert_eq!(schema_objects(&db), 3, "items, logs and t2: no t4");

    // Allowed by name, it runs without asking.
    let allow = Policy {
        capabilities: [("sqlite_execute".to_string(), aifirst::Rule::Allow)]
            .into_iter()
            .collect(),
        ..Policy::default()
    };
    b.run_with(
        allow,
        false,
        "sqlite_execute",
        json!({"database": "shop.db", "sql": "DROP TABLE t2"}),
    )
    .await
    .unwrap();
    assert_eq!(schema_objects(&db), 2);

    // Outside the engine nothing granted the exception: refused, as the handler always did.
    for (sql, said) in [
        ("CREATE TABLE t5(id INTEGER PRIMARY KEY)", "schema changes"),
        ("INSERT INTO logs VALUES ('x')", "PRIMARY KEY"),
    ] {
        let e = b
            .call("sqlite_execute", json!({"database": "shop.db", "sql": sql}))
            .await
            .unwrap_err();
        assert!(e.to_string().contains(said), "{sql}: {e}");
        assert!(e.to_string().contains("refused"), "{sql}: {e}");
    }
    assert_eq!(schema_objects(&db), 2);
    assert_eq!(count(&db, "logs"), 1);
    assert_eq!(items(&db), before);
}

#[tokio::test]
async fn refused_statements_roll_everything_back() {
    let b = bench();
    let db = b.shop();
    let before = items(&db);

    // Transactions, ATTACH and setting pragmas are the call's own business.
    for sql in [
        "BEGIN",
        "PRAGMA foreign_keys = OFF",
        "PRAGMA writable_schema = ON",
    ] {
        let e = b
            .run("sqlite_execute", json!({"database": "shop.db", "sql": sql}))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("refused"), "{sql}: {e}");
    }

    // A failing statement changes nothing.
    let e = b
        .run(
            "sqlite_execute",
            json!({"database": "shop.db", "sql": "INSERT INTO items(id, name) VALUES (60, 'x'); INSERT INTO items(id, name) VALUES (1, 'dup');"}),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("UNIQUE"), "{e}");
    assert!(e.to_string().contains("Nothing was changed"), "{e}");
    assert_eq!(items(&db), before);

    // Parameters need exactly one statement.
    let e = b
        .run(
            "sqlite_execute",
            json!({"database": "shop.db", "sql": "DELETE FROM items WHERE id = ?1; DELETE FROM items", "params": [1]}),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("one statement"), "{e}");
    assert_eq!(items(&db), before);
}

/// Calls sqlite_apply_changeset as the runtime replays a compensation.
async fn apply_as_undo(b: &Bench, args: Value) -> Result<Value, ToolError> {
    let ctx = Ctx::with_sandbox(Arc::clone(b.ctx.sandbox())).compensating();
    b.registry
        .get("sqlite_apply_changeset")
        .unwrap()
        .invoke(&ctx, args)
        .await
}

#[tokio::test]
async fn apply_changeset_refuses_input_that_is_not_a_changeset() {
    let b = bench();
    b.shop();
    let e = apply_as_undo(
        &b,
        json!({"database": "shop.db", "changeset": "not base64!"}),
    )
    .await
    .unwrap_err();
    assert!(invalid(&e), "{e:?}");
    let e = apply_as_undo(&b, json!({"database": "shop.db", "changeset": "AAAAAAAA"}))
        .await
        .unwrap_err();
    assert!(invalid(&e), "{e:?}");
}

/// The compensation a sqlite_execute call journaled: its arguments for sqlite_apply_changeset.
fn journaled_changeset(b: &Bench) -> Value {
    let step = b.engine().history("s").unwrap().pop().unwrap();
    let aifirst::StepUndo::Calls { calls } = step.undo else {
        panic!("{:?}", step.undo)
    };
    calls[0].args.clone()
}

#[tokio::test]
async fn an_agent_cannot_apply_a_changeset_itself() {
    let b = bench();
    let db = b.shop();
    // A real changeset (the inverse of a delete: it puts the row back).
    b.run(
        "sqlite_execute",
        json!({"database": "shop.db", "sql": "DELETE FROM items WHERE id = 1"}),
    )
    .await
    .unwrap();
    let args = journaled_changeset(&b);
    assert!(args["tables"]["items"]
        .as_str()
        .unwrap()
        .contains("id INTEGER key1"));
    // Through the engine, or directly: refused, nothing written.
    let e = b
        .run("sqlite_apply_changeset", args.clone())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("only as the undo"), "{e}");
    let e = b.err("sqlite_apply_changeset", args.clone()).await;
    assert!(matches!(e, ToolError::NotAllowed { .. }), "{e:?}");
    assert_eq!(count(&db, "items"), 2);
    // As a compensation it runs.
    apply_as_undo(&b, args).await.unwrap();
    assert_eq!(count(&db, "items"), 3);
}

#[tokio::test]
async fn undo_fires_no_trigger_and_breaks_no_foreign_key() {
    let b = bench();
    let path = b.root.join("crm.db");
    open(&path)
        .execute_batch(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT);
             CREATE TABLE orders(id INTEGER PRIMARY KEY,
                                 customer INTEGER REFERENCES customers(id) ON DELETE CASCADE);
             CREATE TABLE log(id INTEGER PRIMARY KEY, what TEXT);
             INSERT INTO customers VALUES (1, 'ada');",
        )
        .unwrap();
    // The agent adds a customer; the user then gives it an order.
    b.run(
        "sqlite_execute",
        json!({"database": "crm.db", "sql": "INSERT INTO customers VALUES (5, 'bob')"}),
    )
    .await
    .unwrap();
    open(&path)
        .execute_batch("PRAGMA foreign_keys = ON; INSERT INTO orders VALUES (100, 5);")
        .unwrap();
    // Undoing the insert would delete the customer and cascade to the user's order: refused,
    // nothing written.
    let report = b.undo(1).await;
    let (_, why) = report.failed.clone().expect("refused");
    assert!(
        why.contains("`orders`") && why.contains("`customers`"),
        "{why}"
    );
    assert_eq!(count(&path, "customers"), 2);
    assert_eq!(count(&path, "orders"), 1);

    // A trigger planted since (which would swallow the rows undo puts back, or write rows of
    // its own) does not fire when a change is undone.
    b.run(
        "sqlite_execute",
        json!({"database": "crm.db", "sql": "DELETE FROM log; INSERT INTO log VALUES (1, 'x'); DELETE FROM customers WHERE id = 1"}),
    )
    .await
    .unwrap();
    open(&path)
        .execute_batch(
            "CREATE TRIGGER swallow BEFORE INSERT ON customers BEGIN SELECT RAISE(IGNORE); END;
             CREATE TRIGGER noisy AFTER DELETE ON log BEGIN INSERT INTO log VALUES (99, 'noise'); END;",
        )
        .unwrap();
    let report = b.undo(1).await;
    assert_eq!(report.undone.len(), 1, "{report:?}");
    assert_eq!(count(&path, "customers"), 2, "ada is back");
    let logged: Vec<i64> = {
        let c = open(&path);
        let mut st = c.prepare("SELECT id FROM log ORDER BY id").unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert!(logged.is_empty(), "no trigger wrote: {logged:?}");
}

#[tokio::test]
async fn undo_refuses_a_table_whose_columns_changed_since() {
    let b = bench();
    let path = b.root.join("people.db");
    open(&path)
        .execute_batch(
            "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, ssn TEXT);
             INSERT INTO users VALUES (1, 'bob', '123-45-6789');",
        )
        .unwrap();
    b.run(
        "sqlite_execute",
        json!({"database": "people.db", "sql": "DELETE FROM users WHERE id = 1"}),
    )
    .await
    .unwrap();
    open(&path)
        .execute_batch(
            "ALTER TABLE users DROP COLUMN ssn; ALTER TABLE users ADD COLUMN public_note TEXT;",
        )
        .unwrap();
    let report = b.undo(1).await;
    let (_, why) = report.failed.clone().expect("refused");
    assert!(why.contains("no longer has the columns"), "{why}");
    assert_eq!(
        count(&path, "users"),
        0,
        "the number never lands in public_note"
    );
}

#[tokio::test]
async fn rows_the_session_cannot_record_make_the_call_irreversible() {
    let b = bench();
    let path = b.root.join("keys.db");
    open(&path)
        .execute_batch(
            "CREATE TABLE t(k TEXT PRIMARY KEY, v TEXT);
             INSERT INTO t VALUES ('a', '1');
             CREATE TABLE seq(id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);
             INSERT INTO seq(v) VALUES ('x');",
        )
        .unwrap();
    // A NULL key inserted into a key that may hold NULL is not recorded: refused, rolled back.
    let e = b
        .run(
            "sqlite_execute",
            json!({"database": "keys.db", "sql": "INSERT INTO t VALUES (NULL, 'n')"}),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NULL"), "{e}");
    assert_eq!(count(&path, "t"), 1);
    // Once such a row exists, changing the table cannot be recorded: the user is asked.
    open(&path)
        .execute_batch("INSERT INTO t VALUES (NULL, 'n')")
        .unwrap();
    for sql in [
        "DELETE FROM t WHERE k IS NULL",
        "DELETE FROM sqlite_sequence",
    ] {
        match b
            .run("sqlite_execute", json!({"database": "keys.db", "sql": sql}))
            .await
        {
            Err(CallError::NeedsConfirmation(why)) => assert!(
                why.contains("NULL") || why.contains("sqlite_sequence"),
                "{sql}: {why}"
            ),
            other => panic!("{sql}: {other:?}"),
        }
    }
    assert_eq!(count(&path, "t"), 2);
    assert_eq!(count(&path, "sqlite_sequence"), 1);
    // An ordinary insert still records (AUTOINCREMENT's own counter update is not a write
    // the caller made).
    b.run(
        "sqlite_execute",
        json!({"database": "keys.db", "sql": "INSERT INTO seq(v) VALUES ('y')"}),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn the_user_is_told_every_schema_change_and_only_those_run() {
    let b = bench();
    let db = b.shop();
    let sql = "CREATE INDEX items_name ON items(name); DROP TABLE logs; \
               CREATE TABLE notes(id INTEGER PRIMARY KEY)";
    match b
        .run("sqlite_execute", json!({"database": "shop.db", "sql": sql}))
        .await
    {
        Err(CallError::NeedsConfirmation(why)) => {
            for named in [
                "creates the index `items_name`",
                "drops the table `logs`",
                "creates the table `notes`",
                "none of the rows",
            ] {
                assert!(why.contains(named), "{named}: {why}");
            }
        }
        other => panic!("{other:?}"),
    }
    // A statement that cannot be checked beforehand (its table does not exist yet) may not
    // make a schema change nobody was told of: the confirmed call fails, nothing changed.
    let e = b
        .run_with(
            Policy::default(),
            true,
            "sqlite_execute",
            json!({"database": "shop.db", "sql": "CREATE TABLE t9(id INTEGER PRIMARY KEY); CREATE INDEX i9 ON t9(id)"}),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("creates the index `i9`"), "{e}");
    assert!(e.to_string().contains("not among"), "{e}");
    assert_eq!(schema_objects(&db), 2);
    // Virtual tables are refused, confirmed or not.
    let e = b
        .run_with(
            Policy::default(),
            true,
            "sqlite_execute",
            json!({"database": "shop.db", "sql": "CREATE VIRTUAL TABLE f USING fts5(body)"}),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("VIRTUAL TABLE"), "{e}");
    assert_eq!(schema_objects(&db), 2);
    // SQL SQLite prepares while a statement runs meets the same gate: `pragma_optimize`
    // cannot create statistics tables behind a call that looks reversible.
    let _ = b
        .run(
            "sqlite_execute",
            json!({"database": "shop.db", "sql": "SELECT * FROM pragma_optimize(0x10002)"}),
        )
        .await;
    let stats: i64 = open(&db)
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'sqlite_stat%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stats, 0);
}

#[cfg(unix)]
#[tokio::test]
async fn a_link_to_a_database_inside_the_root_is_followed() {
    let b = bench();
    b.shop();
    std::os::unix::fs::symlink("shop.db", b.root.join("alias.db")).unwrap();
    let out = b
        .ok(
            "sqlite_query",
            json!({"database": "alias.db", "sql": "SELECT count(*) FROM items"}),
        )
        .await;
    assert_eq!(out["rows"], json!([[3]]));
}

// ---- hashes and diffs

#[tokio::test]
async fn hash_file_matches_known_digests() {
    let b = bench();
    b.put("abc.txt", "abc");
    let h = b.ok("hash_file", json!({"path": "abc.txt"})).await;
    assert_eq!(
        h["hex"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(h["algorithm"], "sha256");
    assert_eq!(h["size"], 3);
    assert_eq!(h["path"], json!(b.p("abc.txt")));
    let h = b
        .ok(
            "hash_file",
            json!({"path": "abc.txt", "algorithm": "SHA-512"}),
        )
        .await;
    assert_eq!(
        h["hex"],
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
         2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
    );
    let e = b
        .err("hash_file", json!({"path": "abc.txt", "algorithm": "md5"}))
        .await;
    assert!(invalid(&e), "{e:?}");
    // Larger than one read: the whole file is hashed.
    b.put("big.bin", vec![7u8; 200_000]);
    let h = b.ok("hash_file", json!({"path": "big.bin"})).await;
    assert_eq!(h["size"], 200_000);
}

#[tokio::test]
async fn diff_text_shows_removed_and_added_lines() {
    let b = bench();
    let d = b
        .ok(
            "diff_text",
            json!({"old": "a\nold\nc\n", "new": "a\nnew\nc\n"}),
        )
        .await;
    let text = d["diff"].as_str().unwrap();
    assert!(text.contains("--- old\n+++ new\n"), "{text}");
    assert!(text.contains("-old\n") && text.contains("+new\n"), "{text}");
    assert!(text.contains(" a\n"), "context: {text}");
    assert_eq!(d["lines_added"], 1);
    assert_eq!(d["lines_removed"], 1);
    assert_eq!(d["identical"], false);

    b.put("x.txt", "one\n");
    b.put("y.txt", "two\n");
    let d = b
        .ok(
            "diff_text",
            json!({"old_path": "x.txt", "new_path": "y.txt"}),
        )
        .await;
    let text = d["diff"].as_str().unwrap();
    assert!(
        text.contains(&format!("--- {}\n+++ {}\n", b.p("x.txt"), b.p("y.txt"))),
        "{text}"
    );
    assert!(text.contains("-one\n+two\n"), "{text}");

    let d = b
        .ok("diff_text", json!({"old_path": "x.txt", "new": "one\n"}))
        .await;
    assert_eq!(d["identical"], true);
    assert_eq!(d["diff"], "");

    let e = b.err("diff_text", json!({"old": "a"})).await;
    assert!(invalid(&e), "{e:?}");
}

// ---- the sandbox

#[tokio::test]
async fn every_path_outside_the_root_is_refused() {
    let b = bench();
    std::fs::write(b.outside.join("data.json"), "{\"secret\": 1}").unwrap();
    std::fs::write(b.outside.join("t.csv"), "a,b\n1,2\n").unwrap();
    let other = b.outside.join("other.db");
    make_shop(&other);
    let o = |name: &str| b.outside.join(name).display().to_string();
    let cases = [
        ("query_json", json!({"filter": ".", "path": o("data.json")})),
        (
            "query_json",
            json!({"filter": ".", "path": "../outside/data.json"}),
        ),
        ("read_csv", json!({"path": o("t.csv")})),
        ("write_csv", json!({"path": o("new.csv"), "rows": [[1]]})),
        (
            "write_csv",
            json!({"path": "../outside/new.csv", "rows": [[1]]}),
        ),
        ("hash_file", json!({"path": o("t.csv")})),
        ("diff_text", json!({"old_path": o("t.csv"), "new": "x"})),
        (
            "diff_text",
            json!({"old": "x", "new_path": "../outside/t.csv"}),
        ),
        (
            "sqlite_query",
            json!({"database": o("other.db"), "sql": "SELECT * FROM items"}),
        ),
        (
            "sqlite_query",
            json!({"database": "../outside/other.db", "sql": "SELECT 1"}),
        ),
        (
            "sqlite_execute",
            json!({"database": o("other.db"), "sql": "DELETE FROM items"}),
        ),
        (
            "sqlite_apply_changeset",
            json!({"database": o("other.db"), "changeset": "AAAA"}),
        ),
    ];
    for (tool, args) in cases {
        let e = b.err(tool, args.clone()).await;
        assert!(not_allowed(&e), "{tool} {args}: {e:?}");
    }
    assert!(!b.outside.join("new.csv").exists());
    assert_eq!(count(&other, "items"), 3);

    #[cfg(unix)]
    {
        // Links inside the root that lead out: to the file, and through a directory.
        std::os::unix::fs::symlink(&other, b.root.join("door.db")).unwrap();
        std::os::unix::fs::symlink(&b.outside, b.root.join("dir")).unwrap();
        std::os::unix::fs::symlink("../outside/other.db", b.root.join("climb.db")).unwrap();
        for database in ["door.db", "dir/other.db", "climb.db"] {
            let e = b
                .err(
                    "sqlite_execute",
                    json!({"database": database, "sql": "DELETE FROM items"}),
                )
                .await;
            assert!(not_allowed(&e), "{database}: {e:?}");
            let e = b
                .err(
                    "sqlite_query",
                    json!({"database": database, "sql": "SELECT * FROM items"}),
                )
                .await;
            assert!(not_allowed(&e), "{database}: {e:?}");
        }
        let e = b.err("hash_file", json!({"path": "dir/t.csv"})).await;
        assert!(not_allowed(&e), "{e:?}");
        assert_eq!(count(&other, "items"), 3);
    }
}

#[tokio::test]
async fn no_roots_means_no_file_access() {
    let registry = Registry::new().unwrap();
    let ctx = Ctx::new();
    for (tool, args) in [
        ("read_csv", json!({"path": "/etc/hostname"})),
        ("hash_file", json!({"path": "/etc/hostname"})),
        (
            "sqlite_query",
            json!({"database": "/tmp/x.db", "sql": "SELECT 1"}),
        ),
    ] {
        let e = registry
            .get(tool)
            .unwrap()
            .invoke(&ctx, args)
            .await
            .unwrap_err();
        assert!(not_allowed(&e), "{tool}: {e:?}");
    }
    // Inline JSON needs no file.
    let out = registry
        .get("query_json")
        .unwrap()
        .invoke(&ctx, json!({"filter": ". + 1", "value": 1}))
        .await
        .unwrap();
    assert_eq!(out["results"], json!([2]));
}

// ---- Denial of service: costs bounded by the limits

#[tokio::test]
async fn read_csv_makes_thousands_of_equal_names_unique_quickly() {
    let b = bench();
    let header = vec!["a"; 5000].join(",");
    b.put("same.csv", format!("{header}\n1\n"));
    let started = std::time::Instant::now();
    let out = b.ok("read_csv", json!({"path": "same.csv"})).await;
    let elapsed = started.elapsed();
    let columns: Vec<&str> = out["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(columns.len(), 5000);
    let distinct: std::collections::HashSet<&str> = columns.iter().copied().collect();
    assert_eq!(distinct.len(), 5000, "the names are not distinct");
    assert_eq!(columns[0], "a");
    assert_eq!(columns[1], "a_2");
    assert_eq!(columns[4999], "a_5000");
    assert_eq!(out["rows"][0]["a"], "1");
    assert_eq!(out["rows"][0]["a_5000"], json!(null));
    // The cubic version took minutes for this header.
    assert!(
        elapsed < std::time::Duration::from_secs(30),
        "took {elapsed:?}"
    );
    // A name already in the header is skipped when suffixing.
    b.put("taken.csv", "a,a_2,a,,column_4\n");
    let out = b.ok("read_csv", json!({"path": "taken.csv"})).await;
    assert_eq!(
        out["columns"],
        json!(["a", "a_2", "a_3", "column_4", "column_4_2"])
    );
}

#[tokio::test]
async fn read_csv_refuses_a_row_of_more_than_max_columns() {
    let b = bench();
    // 10,001 empty cells in the third record.
    let wide = vec![""; 10_001].join(",");
    b.put("wide.csv", format!("a,b\n1,2\n{wide}\n"));
    let e = b.err("read_csv", json!({"path": "wide.csv"})).await;
    let text = e.to_string();
    assert!(text.contains("10000"), "{e}");
    assert!(text.contains("row 3"), "{e}");
    // Without a header, and in the header, alike.
    let e = b
        .err("read_csv", json!({"path": "wide.csv", "has_header": false}))
        .await;
    assert!(e.to_string().contains("10000"), "{e}");
    b.put("wide_header.csv", format!("{wide}\n1\n"));
    let e = b.err("read_csv", json!({"path": "wide_header.csv"})).await;
    assert!(e.to_string().contains("row 1"), "{e}");
    // 10,000 columns are fine.
    let header = vec!["x"; 10_000].join(",");
    b.put("ok.csv", format!("{header}\n1\n"));
    let out = b.ok("read_csv", json!({"path": "ok.csv"})).await;
    assert_eq!(out["columns"].as_array().unwrap().len(), 10_000);
}

/// A quoted field never closed, in a file of 40 MiB: the reader held the whole record (the
/// probe's 1 GB file took 2 GB). It stops once one record passes the 16 MiB all read_csv
/// returns, and says so; rows before it are no excuse to read on.
#[tokio::test]
async fn read_csv_stops_a_record_longer_than_it_may_return() {
    let b = bench();
    let mut text = String::from("a\n1\n\"");
    text.push_str(&"x".repeat(40 * 1024 * 1024));
    b.put("open_quote.csv", text);
    let e = b.err("read_csv", json!({"path": "open_quote.csv"})).await;
    assert!(e.to_string().contains("longer than 16 MiB"), "{e}");
    // A record under the limit is read and returned.
    b.put("long.csv", format!("a\n{}\n", "y".repeat(15 * 1024 * 1024)));
    let out = b.ok("read_csv", json!({"path": "long.csv"})).await;
    assert_eq!(out["row_count_read"], 1);
    assert_eq!(out["truncated"], false);
    assert_eq!(
        out["rows"][0]["a"].as_str().map(str::len),
        Some(15 * 1024 * 1024)
    );
}

#[tokio::test]
async fn read_csv_counts_every_column_of_every_row_against_the_budget() {
    let b = bench();
    // 2,000 columns, 10,000 rows of one short cell: a ~100 KB file whose rows, as objects with
    // every column (null when missing), would be about 700 MB of JSON.
    let header: Vec<String> = (1..=2000)
        .map(|i| format!("a_fairly_long_column_name_{i:04}"))
        .collect();
    let mut text = header.join(",");
    text.push('\n');
    for i in 0..10_000 {
        text.push_str(&format!("{i}\n"));
    }
    b.put("sparse.csv", text);
    let out = b
        .ok(
            "read_csv",
            json!({"path": "sparse.csv", "max_rows": 100_000}),
        )
        .await;
    let rows = out["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows.len() < 10_000, "{} rows", rows.len());
    assert_eq!(out["truncated"], true);
    assert_eq!(out["row_count_read"], rows.len());
    // Each row returned holds every column.
    assert_eq!(rows[0].as_object().unwrap().len(), 2000);
    assert_eq!(rows[0]["a_fairly_long_column_name_0001"], "0");
    assert_eq!(rows[0]["a_fairly_long_column_name_2000"], json!(null));
    // 16 MiB: read_csv's budget (MAX_ROW_BYTES).
    let size = serde_json::to_string(&out["rows"]).unwrap().len();
    assert!(size <= 16 * 1024 * 1024, "{size} bytes of rows");
}

#[tokio::test]
async fn sqlite_query_never_returns_a_huge_value() {
    let b = bench();
    b.shop();
    let started = std::time::Instant::now();
    // Over SQLite's length limit (64 MiB): refused by SQLite itself, before any copy.
    for sql in [
        "SELECT zeroblob(100000000)",
        "SELECT length(zeroblob(100000000))",
        "SELECT length(randomblob(100000000))",
    ] {
        let e = b
            .err("sqlite_query", json!({"database": "shop.db", "sql": sql}))
            .await;
        assert!(e.to_string().contains("too big"), "{sql}: {e}");
    }
    // Under it, but over the 16 MiB budget: not returned, `truncated`.
    for sql in [
        "SELECT 1, zeroblob(20000000)",
        "SELECT 1, CAST(zeroblob(20000000) AS TEXT)",
    ] {
        let out = b
            .ok("sqlite_query", json!({"database": "shop.db", "sql": sql}))
            .await;
        assert_eq!(out["truncated"], true, "{sql}: {}", clipped(&out));
        assert_eq!(out["row_count"], 0, "{sql}");
        assert!(out["rows"].as_array().unwrap().is_empty(), "{sql}");
    }
    // A value that fits is returned whole.
    let out = b
        .ok(
            "sqlite_query",
            json!({"database": "shop.db", "sql": "SELECT length(zeroblob(1000)), zeroblob(3)"}),
        )
        .await;
    assert_eq!(out["rows"], json!([[1000, {"base64": "AAAA"}]]));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

/// The first characters of a tool's output, for messages.
fn clipped(v: &Value) -> String {
    v.to_string().chars().take(300).collect()
}

#[tokio::test]
async fn no_statement_attaches_or_copies_the_database_elsewhere() {
    let b = bench();
    let db = b.shop();
    let before = items(&db);
    let target = b.outside.join("copy.db");
    for tool in ["sqlite_query", "sqlite_execute"] {
        for sql in [
            format!("VACUUM INTO '{}'", target.display()),
            format!("ATTACH DATABASE '{}' AS x", target.display()),
            "VACUUM".to_string(),
        ] {
            let e = b
                .err(tool, json!({"database": "shop.db", "sql": sql.as_str()}))
                .await;
            assert!(
                !target.exists(),
                "{tool} `{sql}` wrote {}: {e}",
                target.display()
            );
        }
    }
    assert!(!target.exists());
    assert_eq!(items(&db), before);
}
