//! `forge import` and `forge new`: the committed generated crates are current, output is
//! deterministic, hostile descriptions cannot reach outside the output directory, `--update`
//! respects the user's files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aifirst_forge::emit::{plan_crate, record, write};
use assert_cmd::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn forge() -> Command {
    Command::cargo_bin("forge").unwrap()
}

/// Every file under `dir`, relative path → bytes (skipping `.forge/`).
/// Writes `text` as a description named `file` in a new temporary directory and imports it into
/// `<dir>/out`; returns the directory (kept alive by the caller) and the output path.
fn import_text(file: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join(file);
    std::fs::write(&spec, text).unwrap();
    let out = tmp.path().join("out");
    forge()
        .args([
            "import",
            spec.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .assert()
        .success();
    (tmp, out)
}

fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, at: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(at).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The crates under tests/generated are what forge emits today. `FORGE_BLESS=1` rewrites them;
/// review the diff like any snapshot.
#[test]
fn committed_generated_crates_are_current() {
    let dir = root().join("tests/generated");
    let bless = std::env::var_os("FORGE_BLESS").is_some();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let krate = entry.unwrap().path();
        let rec = record::read(&krate.join("forge.toml")).unwrap();
        let spec = krate.join(&rec.source);
        let planned = plan_crate(&spec, &krate, rec).unwrap();
        if bless {
            // As `forge import --update --force` would: the record of hashes stays true.
            write::write_crate(&krate, &planned.emitted.files, &planned.forge_toml, true).unwrap();
        }
        for (rel, content) in &planned.emitted.files {
            let path = krate.join(rel);
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            if on_disk != *content {
                {
                    let line = on_disk
                        .lines()
                        .zip(content.lines())
                        .position(|(a, b)| a != b)
                        .map_or(0, |i| i + 1);
                    panic!(
                        "{} differs from what forge emits (first at line {line}); \
                         rerun with FORGE_BLESS=1 and review the diff",
                        path.display()
                    );
                }
            }
        }
        // The record of what forge wrote matches the files, so `--update` would not refuse.
        let recorded = std::fs::read_to_string(krate.join(write::RECORD)).unwrap();
        for (rel, content) in &planned.emitted.files {
            let h = format!("{:016x}", aifirst_forge::naming::fnv1a(content.as_bytes()));
            assert!(
                recorded.contains(&format!("{h}  {rel}\n")),
                "{}: {rel} is not recorded with its hash; rerun with FORGE_BLESS=1",
                krate.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 2, "expected the petstore and hostile crates");
}

#[test]
fn generating_twice_gives_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = root().join("fixtures/petstore/openapi.yaml");
    for run in ["a", "b"] {
        forge()
            .args(["import", spec.to_str().unwrap(), "-o"])
            .arg(tmp.path().join(run).join("petstore"))
            .args(["--runtime-path", "../../runtime-checkout"])
            .assert()
            .success();
    }
    let a = tree(&tmp.path().join("a/petstore"));
    let b = tree(&tmp.path().join("b/petstore"));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    assert_eq!(a, b);
    assert!(a.contains_key("src/pets.rs") && a.contains_key("capabilities.json"));
    // The header, and nothing that depends on the machine.
    let lib = String::from_utf8(a["src/lib.rs"].clone()).unwrap();
    assert!(lib.starts_with("// @generated by forge — do not edit\n"));
    for (name, bytes) in &a {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.contains(tmp.path().to_str().unwrap()),
            "{name} has an absolute path"
        );
    }
}

#[test]
fn a_hostile_description_stays_inside_the_output_directory_and_injects_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("marker"), "x").unwrap();
    let out = tmp.path().join("crate");
    forge()
        .args(["import"])
        .arg(root().join("fixtures/hostile/openapi.yaml"))
        .arg("-o")
        .arg(&out)
        .assert()
        .code(1); // warnings: refused references, skipped operations
    let mut top: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["crate", "marker"]);
    let files = tree(&out);
    for (name, bytes) in &files {
        assert!(!name.contains(".."), "{name}");
        if name.ends_with(".rs") {
            let text = String::from_utf8(bytes.clone()).unwrap();
            let file = syn::parse_file(&text).unwrap();
            // The description's `fn injected() {}` is text in a doc comment and a literal, never
            // an item; no item but the handlers, `API` and the modules exists.
            for item in &file.items {
                if let syn::Item::Fn(f) = item {
                    assert_ne!(f.sig.ident, "injected", "{name}");
                    if name != "src/main.rs" {
                        assert_ne!(f.sig.ident, "main", "{name}: only src/main.rs has main");
                    }
                }
            }
            assert!(!text.contains("#![allow(warnings)]"), "{name}");
        }
    }
    // The secret file next to the fixtures' directory was never read into the crate.
    let marker = "FORGE-MUST-NEVER-READ-THIS";
    assert!(std::fs::read_to_string(root().join("fixtures/secret.yaml"))
        .unwrap()
        .contains(marker));
    for (name, bytes) in &files {
        assert!(
            !String::from_utf8_lossy(bytes).contains(marker),
            "{name} contains the secret"
        );
    }
}

#[test]
fn update_follows_the_description_and_leaves_the_users_files_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("api.yaml");
    let original = std::fs::read_to_string(root().join("fixtures/petstore/openapi.yaml")).unwrap();
    std::fs::write(&spec, &original).unwrap();
    let dir = tmp.path().join("crate");
    forge()
        .args([
            "import",
            spec.to_str().unwrap(),
            "-o",
            dir.to_str().unwrap(),
        ])
        .args(["--runtime-path", "../repo", "--name", "shop"])
        .assert()
        .success();
    std::fs::write(dir.join("src/custom.rs"), "// mine\n").unwrap();
    let mut toml = std::fs::read_to_string(dir.join("forge.toml")).unwrap();
    toml.push_str("\n[operations.listPets]\nidempotent = true\n");
    std::fs::write(dir.join("forge.toml"), &toml).unwrap();

    // The description loses the store tag's operation.
    let cut = original.find("  /store/orders:").unwrap();
    let end = original[cut..].find("\ncomponents:").unwrap() + cut;
    std::fs::write(
        &spec,
        format!("{}{}", &original[..cut], &original[end + 1..]),
    )
    .unwrap();
    let out = forge()
        .args(["import", "--update", "-o", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !dir.join("src/store.rs").exists(),
        "a module no longer generated is removed"
    );
    assert!(!std::fs::read_to_string(dir.join("src/lib.rs"))
        .unwrap()
        .contains("mod store"));
    assert_eq!(
        std::fs::read_to_string(dir.join("src/custom.rs")).unwrap(),
        "// mine\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("forge.toml")).unwrap(),
        toml
    );
    assert!(std::fs::read_to_string(dir.join("Cargo.toml"))
        .unwrap()
        .contains("name = \"shop\""));

    // A generated file changed by hand stops the update, naming it; --force overwrites.
    std::fs::write(dir.join("src/pets.rs"), "// edited\n").unwrap();
    let out = forge()
        .args(["import", "--update", "-o", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("src/pets.rs"));
    assert_eq!(
        std::fs::read_to_string(dir.join("src/pets.rs")).unwrap(),
        "// edited\n"
    );
    forge()
        .args(["import", "--update", "--force", "-o", dir.to_str().unwrap()])
        .assert()
        .success();
    assert!(std::fs::read_to_string(dir.join("src/pets.rs"))
        .unwrap()
        .contains("list_pets"));
}

#[test]
fn filters_keep_what_undo_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = forge()
        .args(["import"])
        .arg(root().join("fixtures/petstore/openapi.yaml"))
        .args([
            "-o",
            tmp.path().join("c").to_str().unwrap(),
            "--ops",
            "create_pet",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("because undo plans call them: delete_pet"),
        "{stdout}"
    );
    let pets = std::fs::read_to_string(tmp.path().join("c/src/pets.rs")).unwrap();
    assert!(pets.contains("pub static create_pet:") && pets.contains("pub static delete_pet:"));
    assert!(!pets.contains("pub static list_pets:"));
}

#[test]
fn a_missing_python_module_is_an_error_naming_it_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = forge()
        .args([
            "import",
            "tools.py",
            "-o",
            tmp.path().join("x").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tools.py: No such file"), "{err}");
    assert!(err.contains("Python"), "{err}");
    assert!(!tmp.path().join("x").exists());
}

/// A module (or package) named as one of Python's standard library's would not be what the
/// worker imports: the library's function would run instead of the one forge read.
#[test]
fn a_python_module_named_as_a_standard_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = "def getoutput(cmd: str) -> str:\n    \"\"\"Return it.\"\"\"\n    return cmd\n";
    std::fs::write(tmp.path().join("subprocess.py"), src).unwrap();
    std::fs::create_dir(tmp.path().join("shutil")).unwrap();
    std::fs::write(tmp.path().join("shutil/tools.py"), src).unwrap();
    for input in ["subprocess.py", "shutil"] {
        let out = forge()
            .arg("import")
            .arg(tmp.path().join(input))
            .arg("-o")
            .arg(tmp.path().join("out"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{input}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("standard library") && err.contains("rename"),
            "{err}"
        );
        assert!(!tmp.path().join("out").exists());
    }
}

/// A module that is a FIFO would hold forge for ever (opening it waits for a writer).
#[cfg(unix)]
#[test]
fn a_python_module_that_is_a_fifo_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("tools.py");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let out = forge()
        .arg("inspect")
        .arg(&fifo)
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a regular file"), "{err}");
}

#[test]
fn import_and_new_help() {
    let out = forge().args(["import", "--help"]).output().unwrap();
    insta::assert_snapshot!("import_help", String::from_utf8(out.stdout).unwrap());
    let out = forge().args(["new", "--help"]).output().unwrap();
    insta::assert_snapshot!("new_help", String::from_utf8(out.stdout).unwrap());
}

#[test]
fn new_refuses_bad_names_and_existing_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let out = forge()
        .args([
            "new",
            "My Crate",
            "-o",
            tmp.path().join("a").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("try `my_crate`"));
    std::fs::write(tmp.path().join("file"), "x").unwrap();
    let out = forge()
        .args(["new", "tools", "-o", tmp.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
}

#[test]
fn an_operation_with_a_server_of_its_own_keeps_it() {
    let (_tmp, out) = import_text(
        "api.yaml",
        r#"openapi: 3.0.3
info: {title: Files, version: "1"}
servers: [{url: "https://api.example.test/2.0/"}]
paths:
  /files/{id}:
    get:
      operationId: getFile
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses: {"200": {description: ok}}
  /files/content:
    servers: [{url: "https://upload.example.test/api/2.0"}]
    post:
      operationId: uploadFile
      responses: {"201": {description: created}}
"#,
    );
    let lib = std::fs::read_to_string(out.join("src/lib.rs")).unwrap();
    assert!(
        lib.contains(r#"base_url: "https://api.example.test/2.0""#),
        "{lib}"
    );
    let ops = std::fs::read_to_string(out.join("src/untagged.rs")).unwrap();
    let upload = ops.split("pub static upload_file:").nth(1).unwrap();
    assert!(
        upload.contains(
            r#"server: ::core::option::Option::Some("https://upload.example.test/api/2.0")"#
        ),
        "{upload}"
    );
    let get = ops.split("pub static get_file:").nth(1).unwrap();
    assert!(get.contains("server: ::core::option::Option::None"));
}

/// A path parameter that declares `allowReserved` may carry `/` (a file path in a repository):
/// forge emits the template `{+name}`, which the runtime expands segment by segment. Any other
/// path parameter keeps `{name}`, where a `/` is refused.
#[test]
fn a_path_parameter_that_allows_reserved_characters_is_emitted_as_reserved_expansion() {
    let (_tmp, out) = import_text(
        "api.yaml",
        r#"openapi: 3.0.3
info: {title: Repo, version: "1"}
servers: [{url: "https://api.example.test"}]
paths:
  /repos/{repo}/contents/{path}:
    get:
      operationId: getContent
      parameters:
        - {name: repo, in: path, required: true, schema: {type: string}}
        - {name: path, in: path, required: true, allowReserved: true, schema: {type: string}}
      responses: {"200": {description: ok}}
"#,
    );
    let ops = std::fs::read_to_string(out.join("src/untagged.rs")).unwrap();
    assert!(
        ops.contains(r#"path: "/repos/{repo}/contents/{+path}""#),
        "{ops}"
    );
}

/// The runtime refuses every call of a capability whose input schema does not compile; forge
/// import compiles each emitted schema with the same validator and says so at the operation.
#[test]
fn a_schema_the_runtime_cannot_compile_is_an_error_at_its_operation() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("api.yaml");
    std::fs::write(
        &spec,
        "openapi: 3.0.3
info: {title: bad, version: '1'}
paths:
  /things:
    post:
      operationId: make_thing
      requestBody:
        content:
          application/json:
            schema: {type: object, properties: {code: {type: string, pattern: '(unclosed'}}}
      responses: {'201': {description: made}}
    get:
      operationId: list_things
      responses: {'200': {description: ok}}
",
    )
    .unwrap();
    let rec = record::ImportRecord {
        name: "bad".into(),
        max_name_len: 48,
        ..record::ImportRecord::default()
    };
    let planned = plan_crate(&spec, &dir.path().join("out"), rec).unwrap();
    let bad: Vec<_> = planned
        .lowered
        .diagnostics
        .iter()
        .filter(|d| d.code == "schema-does-not-compile")
        .collect();
    assert_eq!(bad.len(), 1, "{:?}", planned.lowered.diagnostics);
    assert!(
        bad[0].message.contains("`make_thing`"),
        "{}",
        bad[0].message
    );
    assert_eq!(bad[0].location.pointer, "/paths/~1things/post");
}

/// A tag with more operations than fit one file comfortably is split into `tag`, `tag_part2`, …
/// (each file formatted and compiled on its own), in description order.
#[test]
fn a_huge_tag_is_split_into_several_modules() {
    let mut paths = serde_json::Map::new();
    for i in 0..650 {
        paths.insert(
            format!("/things{i}"),
            serde_json::json!({"get": {"operationId": format!("getThing{i}"), "tags": ["things"],
                "responses": {"200": {"description": "ok"}}}}),
        );
    }
    let doc = serde_json::json!({"openapi": "3.0.3", "info": {"title": "Big", "version": "1"},
        "servers": [{"url": "https://api.example.test"}], "paths": paths});
    let (_tmp, out) = import_text("api.json", &doc.to_string());
    let count = |f: &str| {
        std::fs::read_to_string(out.join("src").join(f))
            .unwrap()
            .matches("pub static ")
            .count()
    };
    assert_eq!(count("things.rs"), 300);
    assert_eq!(count("things_part2.rs"), 300);
    assert_eq!(count("things_part3.rs"), 50);
    let lib = std::fs::read_to_string(out.join("src/lib.rs")).unwrap();
    for m in ["things", "things_part2", "things_part3"] {
        assert!(lib.contains(&format!("pub mod {m};")), "{lib}");
    }
    let first = std::fs::read_to_string(out.join("src/things.rs")).unwrap();
    assert!(first.contains("pub static get_thing0:"));
    assert!(!first.contains("pub static get_thing300:"));
}

/// A tag is a module and so a file name: a 300-character tag made `forge import` fail with
/// "File name too long". Long tags keep a readable head and a hash of the whole tag, so two
/// long tags that share their first 55 characters still get modules of their own.
#[test]
fn a_tag_too_long_for_a_file_name_gets_a_shorter_module() {
    let long = "t".repeat(300);
    let sibling = format!("{}x", "t".repeat(299));
    let doc = serde_json::json!({"openapi": "3.0.3", "info": {"title": "Long", "version": "1"},
    "servers": [{"url": "https://api.example.test"}], "paths": {
        "/a": {"get": {"operationId": "getA", "tags": [long], "responses": {"200": {"description": "ok"}}}},
        "/b": {"get": {"operationId": "getB", "tags": [sibling], "responses": {"200": {"description": "ok"}}}}
    }});
    let (_tmp, out) = import_text("api.json", &doc.to_string());
    let mut modules: Vec<String> = std::fs::read_dir(out.join("src"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('t'))
        .collect();
    modules.sort();
    assert_eq!(modules.len(), 2, "{modules:?}");
    for m in &modules {
        assert!(m.len() <= 64 + ".rs".len(), "{m}");
        assert!(
            m.starts_with("ttttttttttttttttttttttttttttttttttttttttttttttttttttttt_"),
            "{m}"
        );
    }
    let lib = std::fs::read_to_string(out.join("src/lib.rs")).unwrap();
    for m in &modules {
        assert!(
            lib.contains(&format!("pub mod {};", m.trim_end_matches(".rs"))),
            "{lib}"
        );
    }
}

/// Text from the description reaches doc comments (the title, a server's URL, a tag, a path);
/// a code block there would be compiled and run by `cargo test` as a doctest. No generated doc
/// line opens one, and the crate turns doctests off.
#[test]
fn description_text_opens_no_code_block_in_the_generated_docs() {
    let spec = r#"openapi: 3.0.0
info:
  title: "T1\n```\nfn main() { std::fs::write(\"/tmp/pwn\", \"x\").unwrap(); }\n```\n"
  version: "1\n\n    fn main() {}\n"
servers:
  - url: "https://example.com\n\n    fn main() { std::process::exit(3) }"
paths:
  "/x\n~~~\nfn main() {}\n~~~":
    get:
      operationId: getX
      tags: ["t\n\n    fn main() {}"]
      summary: "```rust"
      responses:
        "200":
          description: ok
"#;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("spec.yaml"), spec).unwrap();
    let out = tmp.path().join("out");
    // Findings (the odd path) exit 1; the crate is written all the same.
    let code = forge()
        .arg("import")
        .arg(tmp.path().join("spec.yaml"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap()
        .status
        .code();
    assert!(matches!(code, Some(0 | 1)), "{code:?}");
    let files = tree(&out);
    let cargo = String::from_utf8(files["Cargo.toml"].clone()).unwrap();
    assert!(cargo.contains("doctest = false"), "{cargo}");
    let mut docs = 0;
    for (path, bytes) in files.iter().filter(|(p, _)| p.ends_with(".rs")) {
        for line in String::from_utf8_lossy(bytes).lines() {
            let Some(text) = line
                .trim_start()
                .strip_prefix("//!")
                .or_else(|| line.trim_start().strip_prefix("///"))
            else {
                continue;
            };
            docs += 1;
            let text = text.strip_prefix(' ').unwrap_or(text);
            assert!(
                !text.starts_with(char::is_whitespace)
                    && !text.starts_with("```")
                    && !text.starts_with("~~~"),
                "{path}: `{line}` could open a code block"
            );
        }
    }
    assert!(docs > 0);
}
