//! The capability IR: what every front end produces and every back end consumes.

use std::collections::BTreeMap;
use std::sync::Arc;

use aifirst_capability::{Annotations, Effect, UndoPlan};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// The result of lowering one API description.
#[derive(Debug, Clone, Serialize)]
pub struct Ir {
    pub api: ApiInfo,
    pub capabilities: Vec<Capability>,
    /// Security schemes the description defines, by name.
    pub security_schemes: BTreeMap<String, SecurityScheme>,
}

/// What the description says about itself.
#[derive(Debug, Clone, Serialize)]
pub struct ApiInfo {
    pub title: String,
    pub version: String,
    /// The dialect it was written in: `swagger 2.0`, `openapi 3.0.3`, `openapi 3.1.0`.
    pub source_format: String,
    /// The root file, as the user named it.
    pub file: String,
}

/// One operation an agent can perform.
#[derive(Debug, Clone, Serialize)]
pub struct Capability {
    /// MCP-safe, unique, snake_case tool name.
    pub name: String,
    /// The operationId it came from, when there was one.
    pub operation_id: Option<String>,
    pub title: Option<String>,
    pub description: String,
    pub tags: Vec<String>,
    pub deprecated: bool,
    /// JSON Schema 2020-12, root `type: object`, self-contained.
    pub input_schema: Value,
    /// JSON Schema 2020-12 of the success response body, when the description gives one.
    /// Kept as compact JSON text: on large APIs the expanded response schemas are the biggest
    /// part of the IR, and nothing walks them deeply (see [`Capability::output_schema_value`]).
    /// Shared: operations with the very same schema hold one copy (Microsoft Graph: 22,361
    /// output schemas, 2,208 distinct, 73 MB of text as copies).
    pub output_schema: Option<Arc<RawValue>>,
    /// Side effects, filled in by inference; empty until then.
    pub effects: Vec<Effect>,
    pub annotations: Annotations,
    pub undo: Option<UndoPlan>,
    pub binding: Binding,
    /// Where the operation is defined.
    pub source: SourceRef,
    /// Effects, undo and annotations as the source declares them, which inference takes over
    /// its own; not part of the IR contract.
    #[serde(skip)]
    pub declared: Declared,
}

/// What a source says of an operation's effects, undo and annotations, as written: OpenAPI's
/// `x-aifirst-effects`, `x-aifirst-undo` and `x-mcp-annotations`.
#[derive(Debug, Clone, Default)]
pub struct Declared {
    pub effects: Option<Value>,
    pub undo: Option<Value>,
    pub annotations: Option<Value>,
}

impl Declared {
    pub fn any(&self) -> bool {
        self.effects.is_some() || self.undo.is_some() || self.annotations.is_some()
    }
}

/// Facts from an OpenAPI description that inference uses and the IR does not otherwise keep.
#[derive(Debug, Clone, Default)]
pub struct HttpHints {
    /// The success response has a `Location` header.
    pub location_header: bool,
    /// The operation's 2xx status codes, as written.
    pub statuses: Vec<String>,
    /// OpenAPI links of the success response: (target operationId, parameter → expression).
    pub links: Vec<(String, BTreeMap<String, aifirst_capability::Expr>)>,
}

impl Capability {
    /// The output schema as a value (parsed on each call).
    pub fn output_schema_value(&self) -> Option<Value> {
        self.output_schema
            .as_ref()
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
    }
}

/// Where an IR node came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRef {
    pub file: String,
    pub pointer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

/// How a capability is carried out.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Binding {
    Http(HttpBinding),
    Python(PythonBinding),
}

impl Binding {
    /// The HTTP operation, when the capability is one.
    pub fn http(&self) -> Option<&HttpBinding> {
        match self {
            Binding::Http(h) => Some(h),
            Binding::Python(_) => None,
        }
    }

    /// The Python function, when the capability is one.
    pub fn python(&self) -> Option<&PythonBinding> {
        match self {
            Binding::Python(p) => Some(p),
            Binding::Http(_) => None,
        }
    }

    /// Where the capability goes, in one line for tables: `GET /pets/{petId}`.
    pub fn route(&self) -> String {
        match self {
            Binding::Http(h) => format!("{} {}", h.method, h.path),
            Binding::Python(p) => format!("{}.{}()", p.module, p.function),
        }
    }
}

/// An HTTP operation.
#[derive(Debug, Clone, Serialize)]
pub struct HttpBinding {
    /// Upper-case method.
    pub method: String,
    /// Path template as written (`/pets/{petId}`).
    pub path: String,
    pub params: Vec<ParamBinding>,
    pub body: Option<BodyBinding>,
    pub servers: Vec<Server>,
    /// Alternatives: any one requirement satisfies the operation; an empty list means no auth.
    pub security: Vec<BTreeMap<String, Vec<String>>>,
    /// What inference reads besides the above; not part of the IR contract.
    #[serde(skip)]
    pub hints: HttpHints,
}

/// Where a parameter goes in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamLocation {
    Path,
    Query,
    Header,
    Cookie,
}

impl ParamLocation {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "path" => ParamLocation::Path,
            "query" => ParamLocation::Query,
            "header" => ParamLocation::Header,
            "cookie" => ParamLocation::Cookie,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ParamLocation::Path => "path",
            ParamLocation::Query => "query",
            ParamLocation::Header => "header",
            ParamLocation::Cookie => "cookie",
        }
    }
}

/// One parameter: the property it is in the input schema and its original name on the wire.
#[derive(Debug, Clone, Serialize)]
pub struct ParamBinding {
    /// Property name in the input schema.
    pub property: String,
    /// Name as the description spells it.
    pub name: String,
    #[serde(rename = "in")]
    pub location: ParamLocation,
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explode: Option<bool>,
    /// `allowReserved: true`: a path value may hold `/` between segments (the runtime still
    /// refuses `.`, `..` and empty segments); emitted as the template `{+name}`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_reserved: bool,
}

/// The request body and how it maps onto input properties.
#[derive(Debug, Clone, Serialize)]
pub struct BodyBinding {
    pub media_type: String,
    pub required: bool,
    #[serde(flatten)]
    pub shape: BodyShape,
}

/// Whether the body's properties were merged into the input's root or kept under one property.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "shape", rename_all = "snake_case")]
pub enum BodyShape {
    /// Each body property is a root property: `(input property, body field)` pairs.
    Flattened { fields: Vec<(String, String)> },
    /// The whole body is the value of one input property.
    Wrapped { property: String },
}

/// A server the operation may be sent to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Server {
    pub url: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
}

/// A way to authenticate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SecurityScheme {
    ApiKey {
        name: String,
        #[serde(rename = "in")]
        location: String,
    },
    Http {
        scheme: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        bearer_format: Option<String>,
    },
    Oauth2 {
        /// Flow names the description offers (`authorizationCode`, `clientCredentials`, …).
        flows: Vec<String>,
    },
    OpenIdConnect {
        url: String,
    },
    MutualTls,
}

/// A function of a Python module, run by a Python worker that imports the module once.
#[derive(Debug, Clone, Serialize)]
pub struct PythonBinding {
    /// The dotted name the worker imports (`tools`, `pkg.files`).
    pub module: String,
    /// The module's file, relative to what was imported (`tools.py`, `pkg/files.py`).
    pub file: String,
    pub function: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_async: bool,
    /// The parameters in order, as the function takes them.
    pub params: Vec<PyParam>,
    /// What inference reads besides the above; not part of the IR contract.
    #[serde(skip)]
    pub hints: PythonHints,
}

/// One parameter of a Python function; its input property has the same name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PyParam {
    pub name: String,
    /// Passed by position only (before `/`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub positional_only: bool,
}

/// What the Python front end found in a function's body, for inference.
#[derive(Debug, Clone, Default)]
pub struct PythonHints {
    /// Each call with a known effect, in the function or in the module's functions it calls.
    pub facts: Vec<PyFact>,
    /// Parameters whose default is neither `None` nor a literal the input schema carries
    /// (`p: str = DEFAULT_DIR`): a call that leaves one out uses a value the runtime cannot
    /// see, so a snapshot over it cannot be planned.
    pub opaque_defaults: Vec<String>,
}

/// One call with a known effect: `shutil.rmtree(root)` at line 12.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyFact {
    pub effect: PyEffect,
    /// The call as resolved through the module's imports (`shutil.rmtree`, `pathlib.Path.write_text`).
    pub call: String,
    /// 1-based line of the call in the module.
    pub line: usize,
    /// The function's parameters that flow into the path (or other target) argument, in order,
    /// each once; empty when the target does not come from a parameter.
    pub params: Vec<String>,
    /// The function's parameters that flow into the target path only through a derivation that
    /// can lead outside the path they name (dirname, parent, with_suffix, string
    /// concatenation, …); a snapshot of them does not cover what the call touches.
    pub escapes: Vec<String>,
    /// The function's parameters joined as segments under another parameter's path
    /// (`os.path.join(root, name)`: `name`): the target lies inside that path only when each is
    /// a relative path without `..`, which the runtime checks before the call
    /// (`UndoPlan::relative`).
    pub segments: Vec<String>,
    /// A function of the same module the effect was reached through (`save` → `_write`), if any.
    pub via: Option<String>,
}

/// The kinds of effects the Python front end recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PyEffect {
    /// Reads a file or lists a directory.
    FileRead,
    /// Creates or overwrites a file (`open(p, "w")`, `Path.write_text`, `shutil.copy` to it).
    FileWrite,
    /// Removes a file (`os.remove`, `Path.unlink`).
    FileDelete,
    /// Makes a directory.
    DirCreate,
    /// Removes an empty directory.
    DirDelete,
    /// Removes a whole tree (`shutil.rmtree`).
    TreeDelete,
    /// Renames or moves (`os.rename`, `shutil.move`, `Path.rename`): source and destination.
    Move,
    /// Runs a program (`subprocess`, `os.system`, `os.exec*`).
    Process,
    /// Reads over the network (`requests.get`, `urllib.request.urlopen` without data).
    NetRead,
    /// Writes over the network or anything else sent (`requests.post`, `socket.send`).
    NetWrite,
    /// Sends mail (`smtplib`).
    Mail,
    /// Reads a database (`SELECT`).
    SqlRead,
    /// Writes a database (`INSERT`, `UPDATE`, `DELETE`, DDL).
    SqlWrite,
    /// A database statement whose text is not a literal.
    SqlUnknown,
    /// Changes the process environment (`os.environ[...] = `, `os.putenv`).
    EnvWrite,
    /// Runs code forge cannot read: `exec`/`eval`, a function picked by a name computed at run
    /// time (`getattr(os, name)`), a module imported by a computed name, or a body too deep or
    /// too large for forge to follow whole. It may do anything, so it fails closed.
    Unseen,
}

impl PyEffect {
    /// An effect on a file or directory named by a path (reads, writes, deletes, moves): the
    /// ones whose escapes the front end works out, and whose parameters the runtime confines.
    pub fn on_path(self) -> bool {
        matches!(
            self,
            PyEffect::FileRead
                | PyEffect::FileWrite
                | PyEffect::FileDelete
                | PyEffect::DirCreate
                | PyEffect::DirDelete
                | PyEffect::TreeDelete
                | PyEffect::Move
        )
    }
}
