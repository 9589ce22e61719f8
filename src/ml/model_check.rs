//! Structural checks of a decoded model, run on every load.
//!
//! A model file's checksum proves only that the payload is intact; anyone can write a
//! file with a valid checksum around any payload. Prediction indexes arrays with the
//! numbers stored in the model (child nodes, features, classes, leaf entries, weights)
//! and walks each tree until it reaches a leaf, so a crafted model could make it panic,
//! loop forever or answer garbage. [`EquipmentModel::validate`] rules all of that out:
//! after it passes, every index prediction reads is in range, every tree walk ends, and a
//! linear model's weights, intercepts and calibrator are finite numbers of the shapes the
//! featurizer and the classes give.
//!
//! The trees are checked against the layout both learners produce: node 0 is the root,
//! each internal node's children come after it, and every other node is the child of
//! exactly one node. Children after their parent make cycles impossible (every step of a
//! walk goes to a higher index), and one parent per node makes each tree a tree (no
//! shared subtrees, so a recursive walk is linear). All checks are linear in the size of
//! the model.

use super::calibration::Calibrator;
use super::forest::{RandomForest, Tree};
use super::learner::Learned;
use super::linear::LinearModel;
use super::model::EquipmentModel;
use std::fmt;

/// Marks a leaf in [`super::forest::Node::feature`].
const LEAF: u32 = u32::MAX;

/// Where in a model a problem is: a target model (a forest or a linear model, and the
/// targets it answers), optionally a tree and a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// `forest` or `linear model`.
    pub kind: &'static str,
    pub forest: usize,
    pub targets: String,
    pub tree: Option<usize>,
    pub node: Option<usize>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.kind, self.forest, self.targets)?;
        if let Some(t) = self.tree {
            write!(f, ", tree {t}")?;
        }
        if let Some(n) = self.node {
            write!(f, ", node {n}")?;
        }
        Ok(())
    }
}

/// A decoded model is not one nexusml can use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelCheckError {
    #[error("the model has no target models")]
    NoForests,
    /// The feature config's own check failed (its message says so).
    #[error("{0}")]
    Features(String),
    /// The TF-IDF settings' own check failed (its message says so).
    #[error("{0}")]
    TfidfConfig(String),
    #[error(
        "the featurizer reads text column `{featurizer}` but the feature config's model text is `{config}`"
    )]
    TextColumn { featurizer: String, config: String },
    #[error("the featurizer reads numeric columns {featurizer:?} but the feature config's model_numeric is {config:?}")]
    NumericColumns {
        featurizer: Vec<String>,
        config: Vec<String>,
    },
    #[error("the TF-IDF vocabulary has {terms} terms but {idf} idf weights")]
    IdfLength { terms: usize, idf: usize },
    #[error(
        "the TF-IDF vocabulary is not sorted: term {index} `{term}` comes after `{previous}` (a vocabulary \
         holds each term once, in sorted order)"
    )]
    VocabularyOrder {
        index: usize,
        previous: String,
        term: String,
    },
    #[error("the idf weight of term {index} (`{term}`) is {value}, not a finite number")]
    IdfValue { index: usize, term: String, value: f32 },
    #[error("the scaler has {len} {what} for {columns} numeric column{}", if *.columns == 1 { "" } else { "s" })]
    ScalerLength {
        what: &'static str,
        len: usize,
        columns: usize,
    },
    #[error(
        "the scaler's {what} for numeric column `{column}` is {value}; it must be a finite{positive} number"
    )]
    ScalerValue {
        what: &'static str,
        column: String,
        value: f64,
        positive: &'static str,
    },
    #[error("target model {forest} answers no target")]
    NoTargetsInForest { forest: usize },
    #[error("{place} answers `{target}`, which is not a target of the feature config")]
    UnknownTarget { place: Place, target: String },
    #[error("target `{target}` is answered by target model {first} and target model {second}")]
    DuplicateTarget {
        target: String,
        first: usize,
        second: usize,
    },
    #[error("target `{target}` has no model")]
    MissingForest { target: String },
    #[error("{place}: no classes (n_classes = 0)")]
    NoClasses { place: Place },
    #[error("{place}: n_classes is {n_classes} but {labels} class labels are stored")]
    ClassCount {
        place: Place,
        n_classes: usize,
        labels: usize,
    },
    #[error("{place}: the {} was trained on {forest} features but the featurizer makes {featurizer}", .place.kind)]
    FeatureCount {
        place: Place,
        forest: usize,
        featurizer: usize,
    },
    #[error("{place}: {len} feature importances for {n_features} features")]
    Importances {
        place: Place,
        len: usize,
        n_features: usize,
    },
    #[error("{place}: no trees")]
    NoTrees { place: Place },
    #[error("{place}: the tree has no nodes")]
    EmptyTree { place: Place },
    #[error("{place}: the leaf tables differ in length ({classes} classes, {probabilities} probabilities)")]
    LeafTables {
        place: Place,
        classes: usize,
        probabilities: usize,
    },
    #[error("{place}: leaf entry {entry} names class {class}, but the forest has {n_classes} classes")]
    LeafClass {
        place: Place,
        entry: usize,
        class: u32,
        n_classes: usize,
    },
    #[error("{place}: leaf entry {entry} has probability {probability}, outside [0, 1]")]
    LeafProbability {
        place: Place,
        entry: usize,
        probability: f32,
    },
    #[error("{place}: the leaf has no entries ({start}..{start}); a leaf answers at least one class")]
    EmptyLeaf { place: Place, start: u32 },
    #[error("{place}: the leaf's probabilities sum to {sum}, not 1")]
    LeafSum { place: Place, sum: f64 },
    #[error("{place}: leaf entries {start}..{end} are outside the leaf tables ({len} entries)")]
    LeafRange {
        place: Place,
        start: u32,
        end: u32,
        len: usize,
    },
    #[error("{place}: splits on feature {feature}, but the model has {n_features} features")]
    FeatureOutOfRange {
        place: Place,
        feature: u32,
        n_features: usize,
    },
    #[error("{place}: the split threshold is NaN")]
    NanThreshold { place: Place },
    #[error("{place}: {side} child {child} points back to node {node} or an earlier node")]
    ChildBackwards {
        place: Place,
        side: &'static str,
        child: u32,
        node: usize,
    },
    #[error("{place}: {side} child {child} is out of range (the tree has {n_nodes} nodes)")]
    ChildOutOfRange {
        place: Place,
        side: &'static str,
        child: u32,
        n_nodes: usize,
    },
    #[error("{place}: both children are node {child}")]
    SameChildren { place: Place, child: u32 },
    #[error("{place}: node {child} is a child of both node {first} and node {second}")]
    SharedChild {
        place: Place,
        child: usize,
        first: usize,
        second: usize,
    },
    #[error("{place}: node {node} is not reachable from the root (no node points to it)")]
    Unreachable { place: Place, node: usize },
    #[error("{place}: the alias for {targets} has {names} class names for {n_classes} classes")]
    AliasClasses {
        place: Place,
        targets: String,
        names: usize,
        n_classes: usize,
    },
    #[error("{place}: an alias answers no target")]
    EmptyAlias { place: Place },
    #[error("{place}: {len} {what} for {expected} ({} features × {} classes)", .shape.0, .shape.1)]
    LinearShape {
        place: Place,
        what: &'static str,
        len: usize,
        expected: usize,
        /// The model's (features, classes).
        shape: Box<(usize, usize)>,
    },
    #[error("{place}: {what} {index} is {value}, not a finite number")]
    LinearValue {
        place: Place,
        what: &'static str,
        index: usize,
        value: f64,
    },
    #[error("{place}: the softmax temperature is {t}; it must be a finite number > 0")]
    Temperature { place: Place, t: f64 },
    #[error("{place}: the Platt calibrator has {a} slopes and {b} offsets for {n_classes} classes")]
    PlattShape {
        place: Place,
        a: usize,
        b: usize,
        n_classes: usize,
    },
    #[error("the code book checks `{target}`, which is not a target of the feature config")]
    CodeTarget { target: String },
}

impl EquipmentModel {
    /// Check that this decoded model is safe to predict with: every index in range,
    /// every tree walk finite, every target answered, every size consistent. See the
    /// module documentation.
    pub fn validate(&self) -> Result<(), ModelCheckError> {
        use ModelCheckError as E;
        self.features.check().map_err(|e| E::Features(e.to_string()))?;
        let fz = &self.featurizer;
        fz.tfidf
            .config
            .check()
            .map_err(|e| E::TfidfConfig(e.to_string()))?;
        if fz.text_column != self.features.model_text {
            return Err(E::TextColumn {
                featurizer: fz.text_column.clone(),
                config: self.features.model_text.clone(),
            });
        }
        if fz.numeric_columns != self.features.model_numeric {
            return Err(E::NumericColumns {
                featurizer: fz.numeric_columns.clone(),
                config: self.features.model_numeric.clone(),
            });
        }
        let (terms, idf) = (&fz.tfidf.terms, &fz.tfidf.idf);
        if terms.len() != idf.len() {
            return Err(E::IdfLength {
                terms: terms.len(),
                idf: idf.len(),
            });
        }
        // Sorted and unique, as fitting makes it: a crafted order would still index, but
        // it is not a vocabulary this build wrote.
        if let Some(index) = (1..terms.len()).find(|&i| terms[i - 1] >= terms[i]) {
            return Err(E::VocabularyOrder {
                index,
                previous: terms[index - 1].clone(),
                term: terms[index].clone(),
            });
        }
        if let Some((index, &value)) = idf.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(E::IdfValue {
                index,
                term: terms[index].clone(),
                value,
            });
        }
        let columns = fz.numeric_columns.len();
        for (what, values) in [("means", &fz.scaler.mean), ("scales", &fz.scaler.scale)] {
            if values.len() != columns {
                return Err(E::ScalerLength {
                    what,
                    len: values.len(),
                    columns,
                });
            }
        }
        for (c, column) in fz.numeric_columns.iter().enumerate() {
            let (mean, scale) = (fz.scaler.mean[c], fz.scaler.scale[c]);
            if !mean.is_finite() {
                return Err(E::ScalerValue {
                    what: "mean",
                    column: column.clone(),
                    value: mean,
                    positive: "",
                });
            }
            if !(scale.is_finite() && scale > 0.0) {
                return Err(E::ScalerValue {
                    what: "scale",
                    column: column.clone(),
                    value: scale,
                    positive: " positive",
                });
            }
        }

        if self.models.is_empty() {
            return Err(E::NoForests);
        }
        // Which model answers each target of the config.
        let targets = &self.features.targets;
        let mut answered_by: Vec<Option<usize>> = vec![None; targets.len()];
        for (k, m) in self.models.iter().enumerate() {
            if m.targets.is_empty() {
                return Err(E::NoTargetsInForest { forest: k });
            }
            for (t, _) in m.answers() {
                let Some(i) = targets.iter().position(|x| x == t) else {
                    return Err(E::UnknownTarget {
                        place: place(self, k, None, None),
                        target: t.clone(),
                    });
                };
                if let Some(first) = answered_by[i] {
                    return Err(E::DuplicateTarget {
                        target: t.clone(),
                        first,
                        second: k,
                    });
                }
                answered_by[i] = Some(k);
            }
        }
        if let Some(i) = answered_by.iter().position(Option::is_none) {
            return Err(E::MissingForest {
                target: targets[i].clone(),
            });
        }

        let n_features = fz.n_features();
        for (k, m) in self.models.iter().enumerate() {
            let at = |tree, node| place(self, k, tree, node);
            let n_classes = m.learned.n_classes();
            if n_classes == 0 {
                return Err(E::NoClasses {
                    place: at(None, None),
                });
            }
            if n_classes != m.classes.len() {
                return Err(E::ClassCount {
                    place: at(None, None),
                    n_classes,
                    labels: m.classes.len(),
                });
            }
            for alias in &m.aliases {
                if alias.targets.is_empty() {
                    return Err(E::EmptyAlias {
                        place: at(None, None),
                    });
                }
                if alias.classes.len() != n_classes {
                    return Err(E::AliasClasses {
                        place: at(None, None),
                        targets: alias.targets.join(" = "),
                        names: alias.classes.len(),
                        n_classes,
                    });
                }
            }
            if m.learned.n_features() != n_features {
                return Err(E::FeatureCount {
                    place: at(None, None),
                    forest: m.learned.n_features(),
                    featurizer: n_features,
                });
            }
            match &m.learned {
                Learned::Forest(forest) => {
                    if forest.importances.len() != n_features {
                        return Err(E::Importances {
                            place: at(None, None),
                            len: forest.importances.len(),
                            n_features,
                        });
                    }
                    if forest.trees.is_empty() {
                        return Err(E::NoTrees {
                            place: at(None, None),
                        });
                    }
                    for (t, tree) in forest.trees.iter().enumerate() {
                        check_tree(tree, forest, &|node| at(Some(t), node))?;
                    }
                }
                Learned::Linear(linear) => check_linear(linear, &at(None, None))?,
            }
        }
        for target in std::iter::once(&self.codes.category)
            .filter(|c| !c.is_empty() || !self.codes.tables.is_empty())
            .chain(self.codes.tables.iter().map(|t| &t.target))
        {
            if !targets.contains(target) {
                return Err(E::CodeTarget {
                    target: target.clone(),
                });
            }
        }
        Ok(())
    }
}

/// A linear model: weights and intercepts of the shapes its features and classes give,
/// finite, and a calibrator that makes probabilities.
fn check_linear(m: &LinearModel, at: &Place) -> Result<(), ModelCheckError> {
    use ModelCheckError as E;
    let shape = |what, len: usize, expected: usize| {
        if len == expected {
            Ok(())
        } else {
            Err(E::LinearShape {
                place: at.clone(),
                what,
                len,
                expected,
                shape: Box::new((m.n_features, m.n_classes)),
            })
        }
    };
    let expected = m.n_features.saturating_mul(m.n_classes);
    shape("weights", m.weights.len(), expected)?;
    shape("intercepts", m.intercepts.len(), m.n_classes)?;
    for (what, values) in [("weight", &m.weights), ("intercept", &m.intercepts)] {
        if let Some((index, &v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(E::LinearValue {
                place: at.clone(),
                what,
                index,
                value: f64::from(v),
            });
        }
    }
    match &m.calibrator {
        Calibrator::Sigmoid => {}
        Calibrator::Temperature { t } => {
            if !(t.is_finite() && *t > 0.0) {
                return Err(E::Temperature {
                    place: at.clone(),
                    t: *t,
                });
            }
        }
        Calibrator::Platt { a, b } => {
            if a.len() != m.n_classes || b.len() != m.n_classes {
                return Err(E::PlattShape {
                    place: at.clone(),
                    a: a.len(),
                    b: b.len(),
                    n_classes: m.n_classes,
                });
            }
            for (what, values) in [("Platt slope", a), ("Platt offset", b)] {
                if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                    return Err(E::LinearValue {
                        place: at.clone(),
                        what,
                        index,
                        value,
                    });
                }
            }
        }
    }
    Ok(())
}

fn place(model: &EquipmentModel, forest: usize, tree: Option<usize>, node: Option<usize>) -> Place {
    let m = &model.models[forest];
    Place {
        kind: match m.learned {
            Learned::Forest(_) => "forest",
            Learned::Linear(_) => "linear model",
        },
        forest,
        targets: m.names(),
        tree,
        node,
    }
}

/// One tree: see the module documentation for the layout it must have.
fn check_tree(
    tree: &Tree,
    forest: &RandomForest,
    at: &dyn Fn(Option<usize>) -> Place,
) -> Result<(), ModelCheckError> {
    use ModelCheckError as E;
    let n_nodes = tree.nodes.len();
    if n_nodes == 0 {
        return Err(E::EmptyTree { place: at(None) });
    }
    let entries = tree.leaf_class.len();
    if entries != tree.leaf_prob.len() {
        return Err(E::LeafTables {
            place: at(None),
            classes: entries,
            probabilities: tree.leaf_prob.len(),
        });
    }
    // Entries are checked once each, not per leaf naming them: a crafted tree could
    // have every leaf span the whole table.
    if let Some((entry, &class)) = tree
        .leaf_class
        .iter()
        .enumerate()
        .find(|(_, &c)| c as usize >= forest.n_classes)
    {
        return Err(E::LeafClass {
            place: at(None),
            entry,
            class,
            n_classes: forest.n_classes,
        });
    }
    if let Some((entry, &probability)) = tree
        .leaf_prob
        .iter()
        .enumerate()
        .find(|(_, &p)| !(0.0..=1.0).contains(&p))
    {
        return Err(E::LeafProbability {
            place: at(None),
            entry,
            probability,
        });
    }
    // Each leaf's probabilities sum to 1; prefix sums keep this linear however the
    // leaves' ranges overlap.
    let mut prefix = Vec::with_capacity(entries + 1);
    prefix.push(0.0f64);
    for &p in &tree.leaf_prob {
        prefix.push(prefix[prefix.len() - 1] + f64::from(p));
    }
    // parent[j]: the node pointing to node j (none for the root).
    let mut parent: Vec<Option<usize>> = vec![None; n_nodes];
    for (i, n) in tree.nodes.iter().enumerate() {
        if n.feature == LEAF {
            // Every row reaching an empty leaf would get a class with probability 0.
            if n.left == n.right {
                return Err(E::EmptyLeaf {
                    place: at(Some(i)),
                    start: n.left,
                });
            }
            if n.left > n.right || n.right as usize > entries {
                return Err(E::LeafRange {
                    place: at(Some(i)),
                    start: n.left,
                    end: n.right,
                    len: entries,
                });
            }
            // Otherwise a row reaching it gets probabilities that are not a distribution.
            let sum = prefix[n.right as usize] - prefix[n.left as usize];
            if (sum - 1.0).abs() > 1e-3 {
                return Err(E::LeafSum {
                    place: at(Some(i)),
                    sum,
                });
            }
            continue;
        }
        if n.feature as usize >= forest.n_features {
            return Err(E::FeatureOutOfRange {
                place: at(Some(i)),
                feature: n.feature,
                n_features: forest.n_features,
            });
        }
        if n.threshold.is_nan() {
            return Err(E::NanThreshold { place: at(Some(i)) });
        }
        if n.left == n.right {
            return Err(E::SameChildren {
                place: at(Some(i)),
                child: n.left,
            });
        }
        for (side, child) in [("left", n.left), ("right", n.right)] {
            let c = child as usize;
            if c >= n_nodes {
                return Err(E::ChildOutOfRange {
                    place: at(Some(i)),
                    side,
                    child,
                    n_nodes,
                });
            }
            if c <= i {
                return Err(E::ChildBackwards {
                    place: at(Some(i)),
                    side,
                    child,
                    node: i,
                });
            }
            if let Some(first) = parent[c] {
                return Err(E::SharedChild {
                    place: at(None),
                    child: c,
                    first,
                    second: i,
                });
            }
            parent[c] = Some(i);
        }
    }
    if let Some(node) = (1..n_nodes).find(|&j| parent[j].is_none()) {
        return Err(E::Unreachable {
            place: at(None),
            node,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::forest::{ForestConfig, Node};
    use crate::ml::model::Featurizer;
    use crate::ml::text::TfidfConfig;

    fn small_model() -> EquipmentModel {
        let (_, features, engineered) = crate::ml::sample_inventory(120, 7);
        let (featurizer, x) = Featurizer::fit(&engineered, &features, &TfidfConfig::default()).unwrap();
        let cfg = ForestConfig {
            n_trees: 3,
            ..ForestConfig::default()
        };
        EquipmentModel::fit(&engineered, &features, featurizer, &x, &cfg, &|| {}).unwrap()
    }

    #[test]
    fn trained_models_satisfy_the_layout() {
        let model = small_model();
        model.validate().unwrap();
        // The linfa learner converts its trees depth first: children after parents too.
        let (_, features, engineered) = crate::ml::sample_inventory(60, 3);
        let (featurizer, x) = Featurizer::fit(&engineered, &features, &TfidfConfig::default()).unwrap();
        let cfg = ForestConfig {
            n_trees: 2,
            learner: crate::ml::forest::Learner::LinfaTree,
            ..ForestConfig::default()
        };
        let linfa = EquipmentModel::fit(&engineered, &features, featurizer, &x, &cfg, &|| {}).unwrap();
        linfa.validate().unwrap();
    }

    #[test]
    fn names_the_place_of_a_bad_node() {
        let mut model = small_model();
        let tree = &mut model.models[0].forest_mut().unwrap().trees[0];
        let root = tree.nodes[0];
        assert_ne!(root.feature, LEAF, "a tree of 120 rows splits at its root");
        tree.nodes[0] = Node { left: 0, ..root };
        assert_eq!(
            model.validate().unwrap_err().to_string(),
            "forest 0 (category_name), tree 0, node 0: left child 0 points back to node 0 or an earlier node"
        );
    }
}
