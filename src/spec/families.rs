//! Node families: one node written once that stands for many similar ones.
//!
//! A node with `matrix = { axis = [values…], … }` is one member per combination of its
//! axes' values (row-major, the axes in the order written), named `<id>-<i>`; inside its
//! `with`, `"${matrix.<axis>}"` is that member's value (its type kept when it is the whole
//! string, spliced as text otherwise). An axis is an array, a count `N` (`0..N`), or a
//! `"${param}"` holding either. Each output artifact `name` of the family is one artifact
//! per member, `name-<i>`; another node reads them all with `in = { port = "name[*]" }`
//! (bound as ports `port-0`, `port-1`, … of an op that takes any number of inputs), and
//! `after = ["<id>"]` waits for every member. On a cluster, a family is one job array.

use super::params::{pieces, Piece};
use super::{NodeSpec, PipelineSpec};
use indexmap::IndexMap;
use toml::{Table, Value};

/// The most members one family may have.
pub const MAX_MEMBERS: usize = 10_000;

/// A member's place in its family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The family's id (the node as written).
    pub family: String,
    /// Its position, `0..members`.
    pub index: usize,
}

/// The id of member `i` of family `id`.
pub fn member_id(id: &str, i: usize) -> String {
    format!("{id}-{i}")
}

/// `name[*]` → `name`.
pub fn all_members(artifact: &str) -> Option<&str> {
    artifact.strip_suffix("[*]")
}

/// A family that cannot be expanded: the node and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyError {
    pub node: String,
    pub message: String,
}

fn error(node: &str, message: String) -> FamilyError {
    FamilyError {
        node: node.to_string(),
        message,
    }
}

/// The values of one axis.
fn axis_values(node: &str, axis: &str, value: &Value, params: &Table) -> Result<Vec<Value>, FamilyError> {
    let resolved = match value {
        Value::String(s) => match super::whole_reference(s) {
            Some(name) => params.get(name).cloned().ok_or_else(|| {
                error(
                    node,
                    format!("`matrix.{axis}` = `${{{name}}}` names no parameter"),
                )
            })?,
            None => {
                return Err(error(
                    node,
                    format!(
                        "`matrix.{axis}` must be an array, a count or \"${{param}}\", not the text \"{s}\""
                    ),
                ))
            }
        },
        other => other.clone(),
    };
    // An empty axis (`[]` or 0) makes a family of no members: the search of
    // `dags/train.toml` is off with `cv_folds = 0`.
    match resolved {
        Value::Array(items) => Ok(items),
        Value::Integer(n) if n >= 0 && (n as u64) <= MAX_MEMBERS as u64 => {
            Ok((0..n).map(Value::Integer).collect())
        }
        Value::Integer(n) => Err(error(
            node,
            format!("`matrix.{axis}` = {n}: a count must be 0 to {MAX_MEMBERS}"),
        )),
        other => Err(error(
            node,
            format!(
                "`matrix.{axis}` must be an array or a count, not {}",
                other.type_str()
            ),
        )),
    }
}

/// Every combination of the axes, row-major.
fn combinations(node: &str, axes: &[(String, Vec<Value>)]) -> Result<Vec<Table>, FamilyError> {
    if axes.iter().any(|(_, v)| v.is_empty()) {
        return Ok(Vec::new());
    }
    let total = axes.iter().try_fold(1usize, |acc, (_, v)| {
        acc.checked_mul(v.len()).filter(|&n| n <= MAX_MEMBERS)
    });
    let Some(total) = total else {
        return Err(error(
            node,
            format!("the matrix has more than {MAX_MEMBERS} combinations: a family may have at most {MAX_MEMBERS} members"),
        ));
    };
    let mut out = Vec::with_capacity(total);
    for mut i in 0..total {
        let mut row = Table::new();
        for (name, values) in axes.iter().rev() {
            row.insert(name.clone(), values[i % values.len()].clone());
            i /= values.len();
        }
        // Insertion order above was reversed: keep the axes in the order written.
        let ordered: Table = axes.iter().map(|(n, _)| (n.clone(), row[n].clone())).collect();
        out.push(ordered);
    }
    Ok(out)
}

/// `value` with `${matrix.<axis>}` replaced by this member's values (other references
/// stay for interpolation).
fn substitute(node: &str, value: &Value, row: &Table) -> Result<Value, FamilyError> {
    Ok(match value {
        Value::String(s) if s.contains("${") => {
            if let Some(axis) = super::whole_reference(s).and_then(|n| n.strip_prefix("matrix.")) {
                return row
                    .get(axis)
                    .cloned()
                    .ok_or_else(|| unknown_axis(node, axis, row));
            }
            let mut text = String::with_capacity(s.len());
            for piece in pieces(s) {
                match piece {
                    Ok(Piece::Text(t)) => text.push_str(t),
                    Ok(Piece::Reference(name)) => match name.strip_prefix("matrix.") {
                        Some(axis) => match row.get(axis) {
                            Some(Value::String(v)) => text.push_str(v),
                            Some(Value::Integer(v)) => text.push_str(&v.to_string()),
                            Some(Value::Float(v)) => text.push_str(&v.to_string()),
                            Some(Value::Boolean(v)) => text.push_str(&v.to_string()),
                            Some(other) => {
                                return Err(error(
                                    node,
                                    format!(
                                        "`matrix.{axis}` is {} and cannot be spliced into \"{s}\"",
                                        other.type_str()
                                    ),
                                ))
                            }
                            None => return Err(unknown_axis(node, axis, row)),
                        },
                        None => {
                            text.push_str("${");
                            text.push_str(name);
                            text.push('}');
                        }
                    },
                    // Interpolation reports it, with the parameter rules.
                    Err(_) => return Ok(value.clone()),
                }
            }
            Value::String(text)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| substitute(node, v, row))
                .collect::<Result<_, _>>()?,
        ),
        Value::Table(t) => Value::Table(
            t.iter()
                .map(|(k, v)| Ok((k.clone(), substitute(node, v, row)?)))
                .collect::<Result<_, FamilyError>>()?,
        ),
        other => other.clone(),
    })
}

fn unknown_axis(node: &str, axis: &str, row: &Table) -> FamilyError {
    let axes: Vec<&str> = row.keys().map(String::as_str).collect();
    error(
        node,
        format!(
            "`${{matrix.{axis}}}` names no axis of this node's matrix (it has {})",
            axes.join(", ")
        ),
    )
}

impl PipelineSpec {
    /// The pipeline with every family expanded into its members, and `name[*]` inputs and
    /// family ids in `after` bound to every member. Without families, nothing changes.
    pub fn expand_families(&self) -> Result<Option<PipelineSpec>, Vec<FamilyError>> {
        if self.nodes.values().all(|n| n.matrix.is_none()) {
            return Ok(None);
        }
        let mut errors = Vec::new();
        // Parameters a family reads, whether or not it has members (for the unused-parameter
        // warning): its matrix's and its `with`'s.
        let mut used = std::collections::BTreeSet::new();
        for node in self.nodes.values().filter(|n| n.matrix.is_some()) {
            let mut stack: Vec<&Value> = node.matrix.iter().flat_map(|m| m.values()).collect();
            stack.extend(node.with.values());
            while let Some(v) = stack.pop() {
                match v {
                    Value::String(s) => used.extend(
                        super::referenced_params(s)
                            .into_iter()
                            .filter(|n| !n.starts_with("matrix.")),
                    ),
                    Value::Array(a) => stack.extend(a),
                    Value::Table(t) => stack.extend(t.values()),
                    _ => {}
                }
            }
        }
        // Family id → its members' count, and family output artifact → the family.
        let mut members: IndexMap<String, usize> = IndexMap::new();
        let mut rows: IndexMap<String, Vec<Table>> = IndexMap::new();
        for (id, node) in &self.nodes {
            let Some(matrix) = &node.matrix else { continue };
            if matrix.is_empty() {
                errors.push(error(id, "`matrix` has no axis".into()));
                continue;
            }
            let axes: Result<Vec<(String, Vec<Value>)>, FamilyError> = matrix
                .iter()
                .map(|(axis, v)| Ok((axis.clone(), axis_values(id, axis, v, &self.params)?)))
                .collect();
            match axes.and_then(|axes| combinations(id, &axes)) {
                Ok(r) => {
                    members.insert(id.clone(), r.len());
                    rows.insert(id.clone(), r);
                }
                Err(e) => errors.push(e),
            }
        }
        let family_of_artifact: IndexMap<&str, &str> = self
            .nodes
            .iter()
            .filter(|(id, _)| members.contains_key(*id))
            .flat_map(|(id, n)| n.outputs.values().map(move |a| (a.as_str(), id.as_str())))
            .collect();
        let mut nodes: IndexMap<String, NodeSpec> = IndexMap::new();
        let mut add = |id: String, node: NodeSpec, errors: &mut Vec<FamilyError>| {
            if nodes.contains_key(&id) {
                errors.push(error(&id, "a family member has the id of another node".into()));
            } else {
                nodes.insert(id, node);
            }
        };
        for (id, node) in &self.nodes {
            let mut base = node.clone();
            base.matrix = None;
            base.inputs = bind_members(id, &node.inputs, &family_of_artifact, &members, &mut errors);
            base.after = node
                .after
                .iter()
                .flat_map(|a| match members.get(a) {
                    Some(&n) => (0..n).map(|i| member_id(a, i)).collect(),
                    None => vec![a.clone()],
                })
                .collect();
            match rows.get(id) {
                None => add(id.clone(), base, &mut errors),
                Some(rows) => {
                    for (i, row) in rows.iter().enumerate() {
                        let mut m = base.clone();
                        match substitute(id, &Value::Table(node.with.clone()), row) {
                            Ok(Value::Table(w)) => m.with = w,
                            Ok(_) => {}
                            Err(e) => {
                                errors.push(e);
                                break;
                            }
                        }
                        m.outputs = node
                            .outputs
                            .iter()
                            .map(|(p, a)| (p.clone(), member_id(a, i)))
                            .collect();
                        m.member = Some(Member {
                            family: id.clone(),
                            index: i,
                        });
                        add(member_id(id, i), m, &mut errors);
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Some(PipelineSpec {
            nodes,
            family_params: used,
            families: members,
            ..self.clone()
        }))
    }
}

/// A node's inputs with each `name[*]` bound as one port per member of the family that
/// produces `name`.
fn bind_members(
    id: &str,
    inputs: &IndexMap<String, String>,
    family_of_artifact: &IndexMap<&str, &str>,
    members: &IndexMap<String, usize>,
    errors: &mut Vec<FamilyError>,
) -> IndexMap<String, String> {
    let mut out = IndexMap::new();
    for (port, artifact) in inputs {
        match all_members(artifact) {
            Some(name) => match family_of_artifact.get(name) {
                Some(family) => {
                    for i in 0..members[*family] {
                        out.insert(member_id(port, i), member_id(name, i));
                    }
                }
                None => errors.push(error(
                    id,
                    format!("input `{port}` reads `{artifact}`, but `{name}` is no family's output"),
                )),
            },
            None => {
                if let Some(family) = family_of_artifact.get(artifact.as_str()) {
                    errors.push(error(
                        id,
                        format!(
                            "input `{port}` reads `{artifact}`, one artifact per member of family `{family}`: \
                             read `{artifact}[*]` (every member) or `{}` (one)",
                            member_id(artifact, 0)
                        ),
                    ));
                }
                out.insert(port.clone(), artifact.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn expand(text: &str) -> Result<Option<PipelineSpec>, Vec<FamilyError>> {
        PipelineSpec::parse(text, Path::new("f.toml"))
            .unwrap()
            .expand_families()
    }

    const GRID: &str = r#"
[pipeline]
name = "grid"
[params]
c = [0.5, 1.0]
folds = 3
[nodes.src]
op = "util.value"
with = { value = 1 }
out = { value = "data" }
[nodes.cv]
op = "util.value"
matrix = { c = "${c}", fold = "${folds}" }
with = { value = { c = "${matrix.c}", fold = "${matrix.fold}", label = "c=${matrix.c} fold ${matrix.fold} of ${folds}" } }
in = { data = "data" }
out = { value = "score" }
[nodes.best]
op = "util.digest"
in = { scores = "score[*]" }
after = ["cv"]
"#;

    #[test]
    fn a_matrix_becomes_one_member_per_combination() {
        let s = expand(GRID).unwrap().unwrap();
        let ids: Vec<&str> = s.nodes.keys().map(String::as_str).collect();
        assert_eq!(
            ids,
            ["src", "cv-0", "cv-1", "cv-2", "cv-3", "cv-4", "cv-5", "best"]
        );
        let m4 = &s.nodes["cv-4"];
        assert_eq!(
            m4.member,
            Some(Member {
                family: "cv".into(),
                index: 4
            })
        );
        let v = m4.with["value"].as_table().unwrap();
        // Row-major: c = 1.0 (second value), fold = 1.
        assert_eq!(v["c"], Value::Float(1.0));
        assert_eq!(v["fold"], Value::Integer(1));
        assert_eq!(v["label"].as_str(), Some("c=1 fold 1 of ${folds}"));
        assert_eq!(m4.outputs["value"], "score-4");
        assert_eq!(m4.inputs["data"], "data");
        let best = &s.nodes["best"];
        assert_eq!(best.inputs.len(), 6);
        assert_eq!(best.inputs["scores-5"], "score-5");
        assert_eq!(best.after.len(), 6);
        assert!(expand("[pipeline]\nname = \"x\"\n[nodes.a]\nop = \"o\"\n")
            .unwrap()
            .is_none());
    }

    #[test]
    fn bad_matrices_and_bindings_are_reported() {
        let bad = GRID
            .replace(r#"fold = "${folds}" }"#, r#"fold = "${nope}" }"#)
            .replace(r#"scores = "score[*]""#, r#"scores = "score""#);
        let e = expand(&bad).unwrap_err();
        let text: Vec<String> = e.iter().map(|e| format!("{}: {}", e.node, e.message)).collect();
        assert!(
            text.iter()
                .any(|t| t == "cv: `matrix.fold` = `${nope}` names no parameter"),
            "{text:?}"
        );
        let e = expand(&GRID.replace(r#"scores = "score[*]""#, r#"scores = "score""#)).unwrap_err();
        assert!(
            e[0].message
                .contains("read `score[*]` (every member) or `score-0` (one)"),
            "{e:?}"
        );
        let e = expand(&GRID.replace("folds = 3", "folds = 100000")).unwrap_err();
        assert!(e[0].message.contains("a count must be 0 to 10000"), "{e:?}");
        let e = expand(
            &GRID
                .replace(r#"c = [0.5, 1.0]"#, "c = [0.5, 1.0]\nbig = 5000")
                .replace(
                    r#"fold = "${folds}" }"#,
                    r#"fold = "${folds}", more = "${big}" }"#,
                ),
        )
        .unwrap_err();
        assert!(e[0].message.contains("more than 10000 combinations"), "{e:?}");
    }
}
