//! A node's key: a digest of everything its result depends on, and the reasons a node
//! must run, found by comparing its key components with those it last ran with.
//!
//! The key covers the store schema, the op and its version (with nexusml's), the
//! resolved `with` table in canonical form (so comments and key order never matter),
//! the content digests of its inputs (so an upstream node that re-ran but produced the
//! same bytes changes nothing: early cutoff), the digests of the files it reads, and
//! the parameters when the op reads them all. Never a modification time.

use crate::graph::{Node, Pipeline};
use crate::store::{Digest, SCHEMA};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A node's key, and what it is computed from (built only when needed: on a miss, to
/// store it and to explain the next one).
pub struct KeyParts {
    pub key: Digest,
    inputs: Vec<Digest>,
    files: Vec<(PathBuf, Option<Digest>)>,
}

/// `1 (nexusml 0.1.0)`: an op's behaviour version within this build.
pub fn op_version(version: u32) -> String {
    format!("{version} (nexusml {})", env!("CARGO_PKG_VERSION"))
}

/// TOML as JSON with sorted keys (serde_json's map is ordered by key).
pub fn canonical(value: &toml::Value) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Length-prefixed fields, so no two different sequences hash alike.
fn field(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// The key of node `v` given the digests of its inputs (by binding order) and of the
/// files it reads (`None`: unreadable; the op will say why when it runs). Only what
/// decides the result goes in: not node or artifact names.
pub fn node_key(
    pipeline: &Pipeline,
    v: usize,
    inputs: &[Digest],
    files: &[(PathBuf, Option<Digest>)],
    reads_params: bool,
    op_version_number: u32,
) -> KeyParts {
    let node = &pipeline.nodes[v];
    let mut h = blake3::Hasher::new();
    h.update(&SCHEMA.to_le_bytes());
    field(&mut h, node.op_name.as_bytes());
    field(&mut h, op_version(op_version_number).as_bytes());
    field(&mut h, node.canonical_with.as_bytes());
    for (b, d) in node.inputs.iter().zip(inputs) {
        field(&mut h, b.port.as_bytes());
        h.update(&d.0);
    }
    for (p, d) in files {
        field(&mut h, p.as_os_str().as_encoded_bytes());
        field(&mut h, d.as_ref().map_or(&b"unreadable"[..], |d| &d.0[..]));
    }
    if reads_params {
        field(
            &mut h,
            canonical(&toml::Value::Table(pipeline.params.clone()))
                .to_string()
                .as_bytes(),
        );
    }
    if node.seeded_by_node {
        field(&mut h, node.id.as_bytes());
    }
    KeyParts {
        key: Digest(*h.finalize().as_bytes()),
        inputs: inputs.to_vec(),
        files: files.to_vec(),
    }
}

impl KeyParts {
    /// What the key was made of, by name, for the manifest and for reasons.
    pub fn components(&self, pipeline: &Pipeline, v: usize) -> Value {
        let node = &pipeline.nodes[v];
        let mut inputs = Map::new();
        for (b, d) in node.inputs.iter().zip(&self.inputs) {
            let art = &pipeline.artifacts[b.artifact];
            inputs.insert(
                b.port.clone(),
                json!({"artifact": art.name, "producer": pipeline.nodes[art.producer].id, "digest": d.hex()}),
            );
        }
        let files: Map<String, Value> = self
            .files
            .iter()
            .map(|(p, d)| {
                (
                    p.display().to_string(),
                    d.map_or(json!("unreadable"), |d| json!(d.hex())),
                )
            })
            .collect();
        json!({
            "schema": SCHEMA,
            "op": node.op_name,
            "op_version": op_version(node.op_version),
            "config": canonical(&toml::Value::Table(node.with.clone())),
            "inputs": inputs,
            "files": files,
            "node": if node.seeded_by_node { json!(node.id) } else { Value::Null },
            "params": if node.reads_params {
                canonical(&toml::Value::Table(pipeline.params.clone()))
            } else {
                Value::Null
            },
        })
    }
}

/// `with` fields written as exactly `"${name}"`, by dotted path: a change there is
/// reported as a change of parameter `name`.
fn param_refs(raw: &toml::Table) -> BTreeMap<String, String> {
    fn walk(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
        match v {
            toml::Value::String(s) => {
                if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                    if !name.contains("${") {
                        out.insert(prefix.to_string(), name.to_string());
                    }
                }
            }
            toml::Value::Table(t) => {
                for (k, v) in t {
                    walk(&join(prefix, k), v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    for (k, v) in raw {
        walk(k, v, &mut out);
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

/// Leaf values of a JSON object by dotted path.
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                flatten(&join(prefix, k), v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

fn show(v: Option<&Value>) -> String {
    match v {
        None => "(unset)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Why a node's current key differs from the one it last ran with, in words a user
/// reads: `param `trees` 200→300`, `input `train_set` changed (from `split`)`,
/// `file data.csv changed`, `op `model.train_forest` version changed`.
pub fn explain(node: &Node, now: &Value, last: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if now["op"] != last["op"] {
        out.push(format!(
            "op changed: {} → {}",
            show(Some(&last["op"])),
            show(Some(&now["op"]))
        ));
    } else if now["op_version"] != last["op_version"] {
        out.push(format!(
            "op `{}` version changed ({} → {})",
            node.op_name,
            show(Some(&last["op_version"])),
            show(Some(&now["op_version"]))
        ));
    }
    if now["schema"] != last["schema"] {
        out.push("store schema changed".into());
    }
    let refs = param_refs(&node.raw_with);
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten("", &last["config"], &mut a);
    flatten("", &now["config"], &mut b);
    let mut seen_params = std::collections::BTreeSet::new();
    for path in a
        .keys()
        .chain(b.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (old, new) = (a.get(path), b.get(path));
        if old == new {
            continue;
        }
        let top = path.split('.').next().unwrap_or(path);
        match refs.get(path.as_str()).or_else(|| refs.get(top)) {
            Some(param) => {
                if seen_params.insert(param.clone()) {
                    out.push(format!("param `{param}` {}→{}", show(old), show(new)));
                }
            }
            None => out.push(format!("`with.{path}` {}→{}", show(old), show(new))),
        }
    }
    let (pa, pb) = (&last["params"], &now["params"]);
    if pa != pb {
        let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
        flatten("", pa, &mut a);
        flatten("", pb, &mut b);
        for k in a
            .keys()
            .chain(b.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            if a.get(k) != b.get(k) && !seen_params.contains(k.as_str()) {
                out.push(format!("param `{k}` {}→{}", show(a.get(k)), show(b.get(k))));
            }
        }
    }
    let empty = Map::new();
    let ins_now = now["inputs"].as_object().unwrap_or(&empty);
    let ins_last = last["inputs"].as_object().unwrap_or(&empty);
    for (port, cur) in ins_now {
        match ins_last.get(port) {
            Some(prev) if prev["digest"] == cur["digest"] => {}
            Some(_) => out.push(format!(
                "input `{}` changed (from `{}`)",
                show(Some(&cur["artifact"])),
                show(Some(&cur["producer"]))
            )),
            None => out.push(format!("input `{port}` added")),
        }
    }
    for port in ins_last.keys().filter(|p| !ins_now.contains_key(*p)) {
        out.push(format!("input `{port}` removed"));
    }
    let files_now = now["files"].as_object().unwrap_or(&empty);
    let files_last = last["files"].as_object().unwrap_or(&empty);
    for (path, d) in files_now {
        match files_last.get(path) {
            Some(prev) if prev == d => {}
            Some(_) => out.push(format!("file {path} changed")),
            None => out.push(format!("file {path} is new to this node")),
        }
    }
    if out.is_empty() {
        out.push("key changed".into());
    }
    out
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
