//! A node's key: a digest of everything its result depends on, and the reasons a node
//! must run, found by comparing its key components with those it last had.
//!
//! The key covers the store schema, the op and its version (with nexusml's), the
//! resolved `with` table in canonical form (so comments and key order never matter),
//! the content digests of its inputs (so an upstream node that re-ran but produced the
//! same bytes changes nothing: early cutoff), the digests of the files it reads, and
//! the parameters when the op reads them all. Never a modification time.

use super::reason::Reason;
use crate::graph::{Node, NodeIx, Pipeline};
use crate::store::{Digest, SCHEMA};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A node's key, and what it is computed from (the components are built only when
/// needed: on a miss, to store them and to explain the next one).
pub struct KeyParts {
    pub key: Digest,
    inputs: Vec<Digest>,
    files: Vec<(PathBuf, Option<Digest>)>,
}

/// What a key was made of, by name: kept in the manifest to explain the next miss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyComponents {
    pub schema: u32,
    pub op: String,
    pub op_version: String,
    /// The resolved `with` table, canonical (sorted keys).
    pub config: Value,
    /// Input port → what flowed in.
    pub inputs: BTreeMap<String, InputComponent>,
    /// File read → its digest (hex), or `unreadable`.
    pub files: BTreeMap<String, String>,
    /// The node id, for ops whose result depends on it.
    #[serde(default)]
    pub node: Option<String>,
    /// All parameters, for ops that read them.
    #[serde(default)]
    pub params: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputComponent {
    pub artifact: String,
    pub producer: String,
    pub digest: String,
}

const UNREADABLE: &str = "unreadable";

/// `1 (nexusml 0.1.0)`: an op's behaviour version within this build.
pub fn op_version(version: u32) -> String {
    format!("{version} (nexusml {})", env!("CARGO_PKG_VERSION"))
}

/// TOML as JSON with sorted keys (serde_json's map is ordered by key).
pub fn canonical(value: &toml::Value) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Length-prefixed fields, so no two different sequences hash alike.
fn field(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    buf.extend_from_slice(bytes);
}

/// The key of node `v` given the digests of its inputs (by binding order) and of the
/// files it reads (`None`: unreadable; the op will say why when it runs). Only what
/// decides the result goes in: not node or artifact names.
pub fn node_key(
    pipeline: &Pipeline,
    v: NodeIx,
    inputs: &[Digest],
    files: &[(PathBuf, Option<Digest>)],
) -> Digest {
    let node = &pipeline.nodes[v];
    // One buffer, hashed once: many small hasher updates cost more than the copy.
    let mut buf = Vec::with_capacity(256 + node.canonical_with.len() + 48 * inputs.len());
    buf.extend_from_slice(&SCHEMA.to_le_bytes());
    field(&mut buf, node.op_name.as_bytes());
    field(&mut buf, op_version(node.op_version).as_bytes());
    field(&mut buf, node.canonical_with.as_bytes());
    for (b, d) in node.inputs.iter().zip(inputs) {
        field(&mut buf, b.port.as_bytes());
        buf.extend_from_slice(&d.0);
    }
    for (p, d) in files {
        field(&mut buf, p.as_os_str().as_encoded_bytes());
        field(&mut buf, d.as_ref().map_or(UNREADABLE.as_bytes(), |d| &d.0[..]));
    }
    if node.reads_params {
        field(
            &mut buf,
            canonical(&toml::Value::Table(pipeline.params.clone()))
                .to_string()
                .as_bytes(),
        );
    }
    if node.seeded_by_node {
        field(&mut buf, node.id.as_bytes());
    }
    Digest::of(&buf)
}

impl KeyParts {
    /// The key of node `v` (see [`node_key`]), kept with what it was computed from.
    pub fn new(
        pipeline: &Pipeline,
        v: NodeIx,
        inputs: Vec<Digest>,
        files: Vec<(PathBuf, Option<Digest>)>,
    ) -> KeyParts {
        KeyParts {
            key: node_key(pipeline, v, &inputs, &files),
            inputs,
            files,
        }
    }

    /// What the key was made of, by name, for the manifest and for reasons.
    pub fn components(&self, pipeline: &Pipeline, v: NodeIx) -> KeyComponents {
        let node = &pipeline.nodes[v];
        let inputs = node
            .inputs
            .iter()
            .zip(&self.inputs)
            .map(|(b, d)| {
                let art = &pipeline.artifacts[b.artifact];
                (
                    b.port.clone(),
                    InputComponent {
                        artifact: art.name.clone(),
                        producer: pipeline.nodes[art.producer].id.clone(),
                        digest: d.hex(),
                    },
                )
            })
            .collect();
        let files = self
            .files
            .iter()
            .map(|(p, d)| {
                (
                    p.display().to_string(),
                    d.map_or_else(|| UNREADABLE.to_string(), |d| d.hex()),
                )
            })
            .collect();
        KeyComponents {
            schema: SCHEMA,
            op: node.op_name.clone(),
            op_version: op_version(node.op_version),
            config: canonical(&toml::Value::Table(node.with.clone())),
            inputs,
            files,
            node: node.seeded_by_node.then(|| node.id.clone()),
            params: node
                .reads_params
                .then(|| canonical(&toml::Value::Table(pipeline.params.clone()))),
        }
    }
}

impl KeyComponents {
    /// As stored in a manifest.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// From a manifest; `None` when it was written in a shape this build does not know.
    pub fn from_json(value: &Value) -> Option<KeyComponents> {
        KeyComponents::deserialize(value).ok()
    }
}

/// `with` fields written as exactly `"${name}"`, by dotted path: a change there is
/// reported as a change of parameter `name`.
fn param_refs(raw: &toml::Table) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack: Vec<(String, &toml::Value)> = raw.iter().map(|(k, v)| (k.clone(), v)).collect();
    while let Some((path, v)) = stack.pop() {
        match v {
            toml::Value::String(s) => {
                if let Some(name) = crate::spec::whole_reference(s) {
                    out.insert(path, name.to_string());
                }
            }
            toml::Value::Table(t) => stack.extend(t.iter().map(|(k, v)| (join(&path, k), v))),
            _ => {}
        }
    }
    out
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Leaf values of a JSON object by dotted path (iteratively: configs can nest deeply).
fn flatten(v: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(String::new(), v)];
    while let Some((prefix, v)) = stack.pop() {
        match v {
            Value::Object(m) if !m.is_empty() => {
                stack.extend(m.iter().map(|(k, v)| (join(&prefix, k), v)));
            }
            other => {
                out.insert(prefix, other.clone());
            }
        }
    }
    out
}

/// A value as a user wrote it: strings bare, tables and lists as TOML inline
/// (`{ description = "Asset Description" }`), absence as `(unset)`.
fn show(v: Option<&Value>) -> String {
    match v {
        None => "(unset)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(m)) if m.is_empty() => "{}".into(),
        Some(other) => match toml::Value::try_from(other) {
            Ok(t) => t.to_string(),
            Err(_) => other.to_string(),
        },
    }
}

/// The subtree of `v` at a dotted path.
fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

/// Why a node's current key differs from the one it last had, in words a user reads:
/// `param `trees` 200→300`, `input `train_set` changed (from `split`)`, `file data.csv
/// changed`, `op `model.train_forest` version changed`.
pub fn explain(node: &Node, now: &KeyComponents, last: &KeyComponents) -> Vec<Reason> {
    let mut out = Vec::new();
    if now.op != last.op {
        out.push(Reason::OpChanged {
            from: last.op.clone(),
            to: now.op.clone(),
        });
    } else if now.op_version != last.op_version {
        out.push(Reason::OpVersionChanged {
            op: node.op_name.clone(),
            from: last.op_version.clone(),
            to: now.op_version.clone(),
        });
    }
    if now.schema != last.schema {
        out.push(Reason::SchemaChanged);
    }
    config_changes(node, now, last, &mut out);
    for (port, cur) in &now.inputs {
        match last.inputs.get(port) {
            Some(prev) if prev.digest == cur.digest => {}
            Some(_) => out.push(Reason::InputChanged {
                artifact: cur.artifact.clone(),
                producer: cur.producer.clone(),
            }),
            None => out.push(Reason::InputAdded { port: port.clone() }),
        }
    }
    for port in last.inputs.keys().filter(|p| !now.inputs.contains_key(*p)) {
        out.push(Reason::InputRemoved { port: port.clone() });
    }
    for (path, d) in &now.files {
        match last.files.get(path) {
            Some(prev) if prev == d => {}
            Some(_) => out.push(Reason::FileChanged { path: path.clone() }),
            // A file path that replaced another (the data param changed) is said by the
            // param; only a read that appeared from nowhere is new.
            None if out.iter().any(|r| matches!(r, Reason::ParamChanged { .. })) => {}
            None => out.push(Reason::FileNew { path: path.clone() }),
        }
    }
    if out.is_empty() {
        out.push(Reason::KeyChanged);
    }
    out
}

/// `with` and parameter changes; a change under a `${name}` field is said once, as a
/// change of parameter `name`, with the parameter's whole value.
fn config_changes(node: &Node, now: &KeyComponents, last: &KeyComponents, out: &mut Vec<Reason>) {
    let refs = param_refs(&node.raw_with);
    let (a, b) = (flatten(&last.config), flatten(&now.config));
    let mut seen_params = BTreeSet::new();
    let paths: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for path in paths {
        let (old, new) = (a.get(path), b.get(path));
        if old == new {
            continue;
        }
        // The `${…}` field this path is in, if any (a table param flattens into leaves).
        let owner = refs.iter().find(|(field, _)| {
            path == *field || path.starts_with(&format!("{field}.")) || field.starts_with(&format!("{path}."))
        });
        match owner {
            Some((field, param)) => {
                if seen_params.insert(param.clone()) {
                    out.push(Reason::ParamChanged {
                        name: param.clone(),
                        from: show(at(&last.config, field)),
                        to: show(at(&now.config, field)),
                    });
                }
            }
            None => out.push(Reason::ConfigChanged {
                path: path.clone(),
                from: show(old),
                to: show(new),
            }),
        }
    }
    if let (Some(pa), Some(pb)) = (&last.params, &now.params) {
        if pa != pb {
            let (a, b) = (pa.as_object(), pb.as_object());
            let keys: BTreeSet<&String> = a
                .into_iter()
                .flatten()
                .chain(b.into_iter().flatten())
                .map(|(k, _)| k)
                .collect();
            for k in keys {
                let (old, new) = (a.and_then(|m| m.get(k)), b.and_then(|m| m.get(k)));
                if old != new && !seen_params.contains(k.as_str()) {
                    seen_params.insert(k.clone());
                    out.push(Reason::ParamChanged {
                        name: k.clone(),
                        from: show(old),
                        to: show(new),
                    });
                }
            }
        }
    }
}

/// File digests, each file read once per run however many nodes read it.
#[derive(Default)]
pub struct FileDigests {
    seen: std::sync::Mutex<std::collections::HashMap<PathBuf, Option<Digest>>>,
}

impl FileDigests {
    pub fn get(&self, path: &Path) -> Option<Digest> {
        if let Some(d) = self.lock().get(path) {
            return *d;
        }
        let d = crate::store::digest_file(path).ok();
        self.lock().insert(path.to_path_buf(), d);
        d
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<PathBuf, Option<Digest>>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn components(config: Value, data_digest: &str) -> KeyComponents {
        KeyComponents {
            schema: SCHEMA,
            op: "csv.load".into(),
            op_version: op_version(1),
            config,
            inputs: BTreeMap::new(),
            files: BTreeMap::from([("data.csv".to_string(), data_digest.to_string())]),
            node: None,
            params: None,
        }
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct ValueConfig {
        value: toml::Value,
    }
    impl Default for ValueConfig {
        fn default() -> Self {
            ValueConfig {
                value: toml::Value::Boolean(false),
            }
        }
    }
    impl crate::op::OpConfig for ValueConfig {
        const FIELDS: &'static [crate::op::FieldDoc] = &[crate::op::FieldDoc::required("value", "any", "")];
    }

    struct Nothing;
    impl crate::op::Op for Nothing {
        fn run(&self, _: &mut crate::op::NodeContext<'_>) -> Result<(), crate::op::OpError> {
            Ok(())
        }
    }

    /// A pipeline of one node whose `with.value` is written `value` (`engine` sits below
    /// `ops`: a registry of one op, not the built-in one).
    fn node(value: &str) -> Pipeline {
        let spec = crate::spec::PipelineSpec::parse(
            &format!(
                "[pipeline]\nname = \"t\"\n[params]\nmap = {{}}\ntrees = 1\ndata = \"a.csv\"\n\
                 [nodes.n]\nop = \"t.value\"\nwith = {{ value = {value} }}\n"
            ),
            Path::new("t.toml"),
        )
        .unwrap();
        let mut registry = crate::op::Registry::empty();
        registry.register(crate::op::OpSpec::new("t.value", "a value", |_: ValueConfig| {
            Ok(Nothing)
        }));
        Pipeline::build(&spec, &registry).unwrap()
    }

    #[test]
    fn a_table_param_is_said_whole() {
        let n = node(r#""${map}""#);
        let last = components(json!({ "value": {} }), "aa");
        let now = components(json!({ "value": { "description": "Asset Description" } }), "aa");
        let r = explain(&n.nodes[0], &now, &last);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(
            r[0].to_string(),
            r#"param `map` {}→{ description = "Asset Description" }"#
        );
    }

    #[test]
    fn a_reference_with_spaces_is_still_a_param() {
        let n = node(r#""${ trees }""#);
        let r = explain(
            &n.nodes[0],
            &components(json!({ "value": 300 }), "aa"),
            &components(json!({ "value": 200 }), "aa"),
        );
        assert_eq!(r[0].to_string(), "param `trees` 200→300");
    }

    #[test]
    fn a_changed_file_is_named_and_a_replaced_one_is_said_by_its_param() {
        let n = node(r#""${data}""#);
        let last = components(json!({ "value": "a.csv" }), "aa");
        let mut now = components(json!({ "value": "a.csv" }), "bb");
        assert_eq!(
            explain(&n.nodes[0], &now, &last)[0].to_string(),
            "file data.csv changed"
        );
        now.config = json!({ "value": "b.csv" });
        now.files = BTreeMap::from([("b.csv".to_string(), "cc".to_string())]);
        let r: Vec<String> = explain(&n.nodes[0], &now, &last)
            .iter()
            .map(Reason::to_string)
            .collect();
        assert_eq!(r, vec!["param `data` a.csv→b.csv"]);
    }

    #[test]
    fn components_survive_the_manifest() {
        let c = components(json!({ "x": [1, 2] }), "aa");
        assert_eq!(KeyComponents::from_json(&c.to_json()).unwrap(), c);
        assert!(KeyComponents::from_json(&json!({ "schema": "x" })).is_none());
    }

    #[test]
    fn a_key_is_the_digest_of_its_length_prefixed_fields() {
        // The layout stores depend on: a change here makes every stored result a miss.
        let p = node("1");
        let n = &p.nodes[0];
        let input = Digest::of(b"input");
        let mut expected = blake3::Hasher::new();
        expected.update(&SCHEMA.to_le_bytes());
        for text in [n.op_name.as_str(), &op_version(n.op_version), &n.canonical_with] {
            expected.update(&(text.len() as u64).to_le_bytes());
            expected.update(text.as_bytes());
        }
        let without_inputs = Digest(*expected.finalize().as_bytes());
        assert_eq!(node_key(&p, NodeIx(0), &[], &[]), without_inputs);
        let parts = KeyParts::new(&p, NodeIx(0), vec![input], vec![(PathBuf::from("a.csv"), None)]);
        // No input is bound, so the digest given for one is not hashed; the file is.
        expected.update(&5u64.to_le_bytes());
        expected.update(b"a.csv");
        expected.update(&(UNREADABLE.len() as u64).to_le_bytes());
        expected.update(UNREADABLE.as_bytes());
        assert_eq!(parts.key, Digest(*expected.finalize().as_bytes()));
    }
}
