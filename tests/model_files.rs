//! Crafted model files: each has a valid checksum (or is not a file at all), and each must
//! be refused with an error naming the problem: never a panic, a hang or a model that
//! answers garbage.

mod small_model;

use nexusml::ml::bundle::{self, BundleError, MAX_FILE_BYTES};
use nexusml::ml::model::{load_model_file, EquipmentModel, FORMAT_VERSION};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

/// The valid model every case starts from (trained once): 4 trees per forest.
fn base() -> &'static EquipmentModel {
    static MODEL: OnceLock<EquipmentModel> = OnceLock::new();
    MODEL.get_or_init(|| small_model::train(120, 4))
}

/// Load `path` on another thread: an error or a model within a few seconds, or fail.
fn load(path: &Path) -> Result<EquipmentModel, BundleError> {
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(load_model_file(&p));
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("loading {} hangs", path.display()),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("loading {} panics", path.display()),
    }
}

/// Write `bytes` as a model file and load it; the error's message.
fn load_bytes(name: &str, bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    match load(&path) {
        Ok(_) => panic!("{name}: a crafted model loaded"),
        Err(e) => e.to_string(),
    }
}

/// A copy of the valid model, changed by `edit`, encoded with a valid checksum, loaded.
fn crafted(name: &str, edit: impl FnOnce(&mut EquipmentModel)) -> String {
    let mut model = base().clone();
    edit(&mut model);
    load_bytes(name, &bundle::encode(&model, FORMAT_VERSION).unwrap())
}

fn assert_has(message: &str, parts: &[&str]) {
    for p in parts {
        assert!(message.contains(p), "expected `{p}` in: {message}");
    }
}

/// The first internal (split) node of a tree.
fn first_split(model: &EquipmentModel, forest: usize, tree: usize) -> usize {
    model.models[forest].forest().unwrap().trees[tree]
        .nodes
        .iter()
        .position(|n| n.feature != u32::MAX)
        .expect("the tree splits")
}

#[test]
fn the_valid_model_loads_and_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("good.nxm");
    bundle::save(base(), FORMAT_VERSION, &path).unwrap();
    let model = load(&path).unwrap();
    let answers = model.predict_record(&small_model::record());
    assert_eq!(answers.len(), model.features.targets.len());
    for a in &answers {
        assert!((0.0..=1.0).contains(&a.probability), "{a:?}");
    }
}

#[test]
fn a_tree_whose_root_points_to_itself() {
    let e = crafted("self_loop.nxm", |m| {
        assert_eq!(first_split(m, 0, 3), 0);
        m.models[0].forest_mut().unwrap().trees[3].nodes[0].left = 0;
    });
    assert_eq!(
        e.rsplit_once(" is not a valid model: ").unwrap().1,
        "forest 0 (category_name), tree 3, node 0: left child 0 points back to node 0 or an earlier node"
    );
}

#[test]
fn a_node_pointing_back_to_an_ancestor() {
    let mut at = 0;
    let e = crafted("cycle.nxm", |m| {
        let tree = &mut m.models[1].forest_mut().unwrap().trees[0];
        at = (1..tree.nodes.len())
            .find(|&j| tree.nodes[j].feature != u32::MAX)
            .expect("a split below the root");
        tree.nodes[at].right = 0;
    });
    assert_has(
        &e,
        &[&format!(
            "is not a valid model: forest 1 (uniformat_code), tree 0, node {at}: right child 0 points back to node {at} or an earlier node"
        )],
    );
}

#[test]
fn a_child_out_of_range() {
    let e = crafted("child_range.nxm", |m| {
        let tree = &mut m.models[0].forest_mut().unwrap().trees[1];
        tree.nodes[0].right = tree.nodes.len() as u32 + 5;
    });
    assert_has(
        &e,
        &[
            "forest 0 (category_name), tree 1, node 0: right child ",
            " is out of range (the tree has ",
        ],
    );
}

#[test]
fn a_child_shared_by_two_nodes() {
    let (mut at, mut child) = (0, 0);
    let e = crafted("shared.nxm", |m| {
        let tree = &mut m.models[0].forest_mut().unwrap().trees[0];
        at = (1..tree.nodes.len())
            .find(|&j| tree.nodes[j].feature != u32::MAX)
            .expect("a split below the root");
        child = tree.nodes[at].left;
        tree.nodes[0].right = child;
    });
    assert_has(
        &e,
        &[&format!(
            "forest 0 (category_name), tree 0: node {child} is a child of both node 0 and node {at}"
        )],
    );
    let e = crafted("same.nxm", |m| {
        let root = &mut m.models[0].forest_mut().unwrap().trees[0].nodes[0];
        root.right = root.left;
    });
    assert_has(
        &e,
        &["forest 0 (category_name), tree 0, node 0: both children are node 1"],
    );
}

#[test]
fn a_node_no_node_points_to() {
    let mut n = 0;
    let e = crafted("orphan.nxm", |m| {
        let tree = &mut m.models[0].forest_mut().unwrap().trees[0];
        n = tree.nodes.len();
        tree.nodes.push(tree.nodes[n - 1]);
    });
    assert_has(
        &e,
        &[&format!(
            "forest 0 (category_name), tree 0: node {n} is not reachable from the root (no node points to it)"
        )],
    );
}

#[test]
fn a_feature_out_of_range() {
    let mut n_features = 0;
    let e = crafted("feature.nxm", |m| {
        n_features = m.featurizer.n_features();
        m.models[2].forest_mut().unwrap().trees[0].nodes[0].feature = n_features as u32 + 7;
    });
    assert_has(
        &e,
        &[&format!(
            "forest 2 (mcaa_system_category), tree 0, node 0: splits on feature {}, but the model has {n_features} features",
            n_features + 7
        )],
    );
}

#[test]
fn a_class_out_of_range() {
    let mut n = 0;
    let e = crafted("class.nxm", |m| {
        n = m.models[0].forest_mut().unwrap().n_classes;
        m.models[0].forest_mut().unwrap().trees[2].leaf_class[0] = n as u32;
    });
    assert_has(
        &e,
        &[&format!(
            "forest 0 (category_name), tree 2: leaf entry 0 names class {n}, but the forest has {n} classes"
        )],
    );
}

#[test]
fn a_leaf_out_of_range() {
    let e = crafted("leaf.nxm", |m| {
        let tree = &mut m.models[0].forest_mut().unwrap().trees[0];
        let leaf = tree.nodes.iter().position(|n| n.feature == u32::MAX).unwrap();
        tree.nodes[leaf].right = tree.leaf_class.len() as u32 + 1;
    });
    assert_has(
        &e,
        &[
            "forest 0 (category_name), tree 0, node ",
            "are outside the leaf tables (",
        ],
    );
}

#[test]
fn a_leaf_probability_that_is_nan() {
    let e = crafted("nan.nxm", |m| {
        m.models[0].forest_mut().unwrap().trees[0].leaf_prob[0] = f32::NAN
    });
    assert_has(&e, &["tree 0: leaf entry 0 has probability NaN, outside [0, 1]"]);
}

#[test]
fn an_empty_tree() {
    let e = crafted("empty_tree.nxm", |m| {
        m.models[3].forest_mut().unwrap().trees[1].nodes.clear()
    });
    assert_has(
        &e,
        &["forest 3 (Equipment_Type = System_Subtype), tree 1: the tree has no nodes"],
    );
}

#[test]
fn zero_classes() {
    let e = crafted("zero_classes.nxm", |m| {
        m.models[0].forest_mut().unwrap().n_classes = 0
    });
    assert_has(&e, &["forest 0 (category_name): no classes (n_classes = 0)"]);
    let e = crafted("no_labels.nxm", |m| m.models[0].classes.clear());
    assert_has(
        &e,
        &[
            "forest 0 (category_name): n_classes is ",
            " but 0 class labels are stored",
        ],
    );
}

#[test]
fn zero_trees() {
    let e = crafted("zero_trees.nxm", |m| {
        m.models[1].forest_mut().unwrap().trees.clear()
    });
    assert_has(&e, &["forest 1 (uniformat_code): no trees"]);
}

#[test]
fn no_forests() {
    let e = crafted("no_forests.nxm", |m| m.models.clear());
    assert_has(&e, &["is not a valid model: the model has no target models"]);
}

#[test]
fn a_target_without_a_forest() {
    let e = crafted("missing_forest.nxm", |m| {
        m.models.remove(1);
    });
    assert_has(&e, &["target `uniformat_code` has no model"]);
    let e = crafted("no_targets.nxm", |m| m.features.targets.clear());
    assert_has(&e, &["is not a valid model: feature config: `targets` is empty"]);
}

#[test]
fn inconsistent_vocabulary_idf_and_scaler() {
    let mut terms = 0;
    let e = crafted("idf.nxm", |m| {
        terms = m.featurizer.tfidf.terms.len();
        m.featurizer.tfidf.idf.pop();
    });
    assert_has(
        &e,
        &[&format!(
            "the TF-IDF vocabulary has {terms} terms but {} idf weights",
            terms - 1
        )],
    );
    // Terms added without retraining: the forests no longer match the featurizer.
    let e = crafted("terms.nxm", |m| {
        m.featurizer.tfidf.terms.push("zzz".into());
        m.featurizer.tfidf.idf.push(1.0);
    });
    assert_has(
        &e,
        &[&format!(
            "forest 0 (category_name): the forest was trained on {} features but the featurizer makes {}",
            terms + 1,
            terms + 2
        )],
    );
    let e = crafted("scaler.nxm", |m| m.featurizer.scaler.mean.push(0.0));
    assert!(
        e.ends_with(": the scaler has 2 means for 1 numeric column"),
        "{e}"
    );
    let e = crafted("scale0.nxm", |m| m.featurizer.scaler.scale[0] = 0.0);
    assert_has(
        &e,
        &["the scaler's scale for numeric column `service_life` is 0; it must be a finite positive number"],
    );
    let e = crafted("ngram.nxm", |m| m.featurizer.tfidf.config.ngram_min = 0);
    assert_has(
        &e,
        &["is not a valid model: invalid TF-IDF settings: n-gram range (0, 3) must satisfy 1 <= min <= max"],
    );
}

#[test]
fn a_payload_length_near_two_to_the_64() {
    let good = bundle::encode(base(), FORMAT_VERSION).unwrap();
    for declared in [u64::MAX, u64::MAX - 19, u64::MAX - 52, 1 << 63, MAX_FILE_BYTES] {
        let mut bytes = good.clone();
        bytes[12..20].copy_from_slice(&declared.to_le_bytes());
        let e = load_bytes("huge_length.nxm", &bytes);
        assert_has(
            &e,
            &[&format!(
                "huge_length.nxm has an impossible payload length in its header: {declared} bytes (the file is {} bytes)",
                good.len()
            )],
        );
    }
    // A plausible length the file does not have is a truncation.
    let mut bytes = good.clone();
    bytes[12..20].copy_from_slice(&(good.len() as u64).to_le_bytes());
    let e = load_bytes("long.nxm", &bytes);
    assert_has(
        &e,
        &[&format!(
            "is truncated: {} bytes expected, {} present",
            good.len() + 52,
            good.len()
        )],
    );
}

#[test]
fn a_file_larger_than_the_limit_is_not_read() {
    // A sparse file: no disk space used, and it must be refused before any byte is read.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.nxm");
    std::fs::File::create(&path)
        .unwrap()
        .set_len(MAX_FILE_BYTES + 1)
        .unwrap();
    let e = load(&path).unwrap_err().to_string();
    assert_has(
        &e,
        &[&format!(
            "huge.nxm is {} bytes, more than a model file may be ({MAX_FILE_BYTES} bytes)",
            MAX_FILE_BYTES + 1
        )],
    );
}

#[test]
fn a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let e = load(dir.path()).unwrap_err().to_string();
    assert_has(
        &e,
        &["is not a regular file (a directory); a model must be a .nxm file"],
    );
}

#[cfg(unix)]
#[test]
fn dev_zero() {
    let e = load(Path::new("/dev/zero")).unwrap_err().to_string();
    assert_eq!(
        e,
        "/dev/zero is not a regular file (a character device); a model must be a .nxm file"
    );
}

#[cfg(unix)]
#[test]
fn a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let fifo: PathBuf = dir.path().join("model.nxm");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
    // Opening a FIFO for reading waits for a writer: the load must not get that far.
    let e = load(&fifo).unwrap_err().to_string();
    assert_has(
        &e,
        &["model.nxm is not a regular file (a FIFO); a model must be a .nxm file"],
    );
}

#[test]
fn a_missing_file() {
    let e = load(Path::new("no/such/model.nxm")).unwrap_err().to_string();
    assert_has(&e, &["cannot read model no/such/model.nxm: "]);
}

#[test]
fn every_leaf_range_empty() {
    // Every row would get one class with probability 0.0.
    let e = crafted("empty_leaves.nxm", |m| {
        for f in &mut m.models {
            for t in &mut f.forest_mut().unwrap().trees {
                for n in t.nodes.iter_mut().filter(|n| n.feature == u32::MAX) {
                    n.right = n.left;
                }
            }
        }
    });
    assert_has(
        &e,
        &[
            "is not a valid model: forest 0 (category_name), tree 0, node ",
            ": the leaf has no entries (",
            "); a leaf answers at least one class",
        ],
    );
}

#[test]
fn one_empty_leaf() {
    let mut leaf = 0;
    let e = crafted("one_empty_leaf.nxm", |m| {
        let tree = &mut m.models[2].forest_mut().unwrap().trees[3];
        leaf = tree.nodes.iter().rposition(|n| n.feature == u32::MAX).unwrap();
        tree.nodes[leaf].left = tree.nodes[leaf].right;
    });
    assert_has(
        &e,
        &[&format!(
            "forest 2 (mcaa_system_category), tree 3, node {leaf}: the leaf has no entries"
        )],
    );
}

#[test]
fn a_vocabulary_out_of_order() {
    let (mut first, mut second) = (String::new(), String::new());
    let e = crafted("unsorted.nxm", |m| {
        let t = &mut m.featurizer.tfidf;
        t.terms.swap(0, 1);
        t.idf.swap(0, 1);
        (first, second) = (t.terms[0].clone(), t.terms[1].clone());
    });
    assert_has(
        &e,
        &[&format!(
            "is not a valid model: the TF-IDF vocabulary is not sorted: term 1 `{second}` comes after `{first}` \
             (a vocabulary holds each term once, in sorted order)"
        )],
    );
    let e = crafted("repeated.nxm", |m| {
        let t = &mut m.featurizer.tfidf;
        t.terms[1] = t.terms[0].clone();
    });
    assert_has(&e, &["the TF-IDF vocabulary is not sorted: term 1 "]);
}

#[test]
fn format_version_zero() {
    let e = load_bytes("v0.nxm", &bundle::encode(base(), 0).unwrap());
    assert_has(
        &e,
        &["v0.nxm declares model format version 0, which no nexusml writes (versions start at 1)"],
    );
}

#[test]
fn a_large_file_of_something_else_is_refused_by_its_first_bytes() {
    // 2 GB (sparse: zeros, no disk used) within the size limit: its magic is read, not the file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zeros.nxm");
    std::fs::File::create(&path).unwrap().set_len(2 << 30).unwrap();
    let start = std::time::Instant::now();
    let e = load(&path).unwrap_err().to_string();
    assert!(
        e.ends_with("zeros.nxm is not a nexusml model file (no NEXUSML header)"),
        "{e}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "read whole: {:?}",
        start.elapsed()
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_beside_its_metadata() {
    // The metadata check hashes the model: it must not open a FIFO to do so.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("m.nxm");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    std::fs::write(dir.path().join("m_metadata.json"), r#"{"model_sha256": "00"}"#).unwrap();
    let e = load(&fifo).unwrap_err().to_string();
    assert!(
        e.ends_with("m.nxm is not a regular file (a FIFO); a model must be a .nxm file"),
        "{e}"
    );
}

#[test]
fn metadata_larger_than_its_limit_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.nxm");
    bundle::save(base(), FORMAT_VERSION, &path).unwrap();
    let meta = dir.path().join("m_metadata.json");
    std::fs::File::create(&meta).unwrap().set_len(3 << 30).unwrap();
    let start = std::time::Instant::now();
    let e = load(&path).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "cannot read the model's metadata {}: it is 3221225472 bytes, more than model metadata may be \
             (16777216 bytes = 16 MiB)",
            meta.display()
        )
    );
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_leaf_whose_probabilities_are_no_distribution() {
    let mut leaf = 0;
    let e = crafted("zero_probs.nxm", |m| {
        let tree = &mut m.models[0].forest_mut().unwrap().trees[1];
        leaf = tree.nodes.iter().position(|n| n.feature == u32::MAX).unwrap();
        let (start, end) = (tree.nodes[leaf].left as usize, tree.nodes[leaf].right as usize);
        for p in &mut tree.leaf_prob[start..end] {
            *p = 0.0;
        }
    });
    assert_has(
        &e,
        &[&format!(
            "forest 0 (category_name), tree 1, node {leaf}: the leaf's probabilities sum to 0, not 1"
        )],
    );
}

/// The valid linear model the linear cases start from.
fn linear_base() -> &'static EquipmentModel {
    static MODEL: OnceLock<EquipmentModel> = OnceLock::new();
    MODEL.get_or_init(|| small_model::train_linear(120))
}

fn crafted_linear(name: &str, edit: impl FnOnce(&mut EquipmentModel)) -> String {
    let mut model = linear_base().clone();
    edit(&mut model);
    load_bytes(name, &bundle::encode(&model, FORMAT_VERSION).unwrap())
}

#[test]
fn the_valid_linear_model_loads_and_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("linear.nxm");
    bundle::save(linear_base(), FORMAT_VERSION, &path).unwrap();
    let model = load(&path).unwrap();
    assert_eq!(&model, linear_base());
    let m = &model.models[0];
    assert_eq!(m.targets, ["category_name"]);
    assert_eq!(m.aliases[0].targets, ["Equipment_Type", "System_Subtype"]);
    for a in model.predict_record(&small_model::record()) {
        assert!(a.probability > 0.0 && a.probability <= 1.0, "{a:?}");
    }
}

#[test]
fn crafted_linear_models_are_refused() {
    let place = "linear model 0 (category_name = Equipment_Type = System_Subtype)";
    let e = crafted_linear("nan_weight.nxm", |m| {
        m.models[0].linear_mut().unwrap().weights[5] = f32::NAN
    });
    assert_has(&e, &[&format!("{place}: weight 5 is NaN, not a finite number")]);
    let e = crafted_linear("inf_intercept.nxm", |m| {
        m.models[1].linear_mut().unwrap().intercepts[0] = f32::INFINITY
    });
    assert_has(
        &e,
        &["linear model 1 (uniformat_code): intercept 0 is inf, not a finite number"],
    );
    let (mut n, mut k) = (0, 0);
    let e = crafted_linear("short_weights.nxm", |m| {
        let l = m.models[2].linear_mut().unwrap();
        (n, k) = (l.n_features, l.n_classes);
        l.weights.pop();
    });
    assert_has(
        &e,
        &[&format!(
            "linear model 2 (mcaa_system_category): {} weights for {} ({n} features × {k} classes)",
            n * k - 1,
            n * k
        )],
    );
    let e = crafted_linear("intercepts.nxm", |m| {
        m.models[2].linear_mut().unwrap().intercepts.push(0.0)
    });
    assert_has(&e, &[&format!("{} intercepts for {k} ", k + 1)]);
    for t in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let e = crafted_linear("temperature.nxm", |m| {
            m.models[0].linear_mut().unwrap().calibrator =
                nexusml::ml::calibration::Calibrator::Temperature { t }
        });
        assert_has(
            &e,
            &[&format!(
                "{place}: the softmax temperature is {t}; it must be a finite number > 0"
            )],
        );
    }
    let e = crafted_linear("platt.nxm", |m| {
        m.models[1].linear_mut().unwrap().calibrator = nexusml::ml::calibration::Calibrator::Platt {
            a: vec![1.0],
            b: vec![0.0],
        }
    });
    assert_has(
        &e,
        &["linear model 1 (uniformat_code): the Platt calibrator has 1 slopes and 1 offsets for "],
    );
    // Weights for another featurizer.
    let e = crafted_linear("features.nxm", |m| {
        let l = m.models[0].linear_mut().unwrap();
        l.n_features += 1;
        l.weights.extend(std::iter::repeat_n(0.0, l.n_classes));
    });
    assert_has(&e, &[&format!("{place}: the linear model was trained on ")]);
    let mut classes = 0;
    let e = crafted_linear("alias.nxm", |m| {
        classes = m.models[0].classes.len();
        m.models[0].aliases[0].classes.pop();
    });
    assert_has(
        &e,
        &[&format!(
            "{place}: the alias for Equipment_Type = System_Subtype has {} class names for {classes} classes",
            classes - 1
        )],
    );
    let e = crafted_linear("alias_twice.nxm", |m| {
        let again = m.models[0].aliases[0].clone();
        m.models[1].aliases.push(again);
    });
    assert_has(
        &e,
        &["target `Equipment_Type` is answered by target model 0 and target model 1"],
    );
    let e = crafted_linear("codes.nxm", |m| {
        m.codes.tables[0].target = "omniclass_code".into()
    });
    assert_has(
        &e,
        &["the code book checks `omniclass_code`, which is not a target of the feature config"],
    );
}

#[test]
fn a_newer_format_version_is_refused() {
    let bytes = bundle::encode(linear_base(), FORMAT_VERSION + 1).unwrap();
    let e = load_bytes("future.nxm", &bytes);
    assert_has(
        &e,
        &[&format!(
            "future.nxm is model format version {}, newer than this nexusml reads (up to {FORMAT_VERSION}); upgrade nexusml",
            FORMAT_VERSION + 1
        )],
    );
}

/// A table as text, whatever its columns' types: through CSV bytes.
fn as_text(frame: &polars::prelude::DataFrame) -> polars::prelude::DataFrame {
    let mut frame = frame.clone();
    let mut bytes = Vec::new();
    {
        use polars::prelude::SerWriter;
        polars::prelude::CsvWriter::new(&mut bytes).finish(&mut frame)
    }
    .unwrap();
    nexusml::ml::table::parse_csv(&bytes, Path::new("t.csv"), &Default::default())
        .unwrap()
        .frame
}

/// `tests/fixtures/model_v1/`: a model written in format version 1 by the build before
/// version 2, with the inventory it predicted and what it predicted.
fn v1(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/model_v1")
        .join(name)
}

#[test]
fn a_version_1_file_loads_as_the_forest_model_it_was() {
    use nexusml::ml::learner::LearnerKind;
    let bytes = std::fs::read(v1("model.nxm")).unwrap();
    assert_eq!(
        u32::from_le_bytes(bytes[8..12].try_into().unwrap()),
        1,
        "a version-1 file"
    );
    let model = load(&v1("model.nxm")).unwrap();
    assert_eq!(model.training.learner.kind(), LearnerKind::Forest);
    assert!(model.codes.is_empty(), "version 1 has no code book");
    assert!(model
        .models
        .iter()
        .all(|m| m.forest().is_some() && m.aliases.is_empty()));
    let raw = nexusml::ml::table::read_csv(&v1("inventory.csv"), &Default::default())
        .unwrap()
        .frame;
    let now = as_text(
        &model
            .predictions_table(
                &raw,
                "equipment_tag",
                &Default::default(),
                nexusml::ml::model::Keep::All,
            )
            .unwrap(),
    );
    let then = nexusml::ml::table::read_csv(&v1("predictions.csv"), &Default::default())
        .unwrap()
        .frame;
    // Every column the version-1 build wrote, with the same values.
    for c in then.columns() {
        let name = c.name().as_str();
        assert!(
            now.column(name).unwrap().equals_missing(c),
            "column {name} differs"
        );
    }
    assert!(now.column("codes_agree").is_err(), "no code book, no check");
}

#[test]
fn the_forest_learner_trains_the_version_1_model_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("data={}", v1("inventory.csv").display());
    let train = Path::new(env!("CARGO_MANIFEST_DIR")).join("dags/train.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nexusml"))
        .args([
            "dag",
            "run",
            train.to_str().unwrap(),
            "--no-cache",
            "--runs-dir",
            "runs",
        ])
        .args(["--set", &data, "--set", "learner=forest", "--set", "trees=2"])
        .args([
            "--set",
            "max_features=200",
            "--set",
            "ngram_max=1",
            "--set",
            "min_rows=20",
        ])
        .args(["--set", "output_dir=models"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut again = load(&dir.path().join("models/equipment_classifier_latest.nxm")).unwrap();
    let old = load(&v1("model.nxm")).unwrap();
    assert!(!again.codes.is_empty(), "model.train learns the code book");
    again.codes = Default::default();
    assert!(
        again.models == old.models,
        "the forests are the version-1 build's, tree for tree"
    );
    // What a model now records beyond the version-1 build: its training data's
    // provenance, and `max_features` left unset (the sparse forest's "sqrt").
    again.provenance = Default::default();
    if let (
        nexusml::ml::learner::LearnerConfig::Forest(now),
        nexusml::ml::learner::LearnerConfig::Forest(then),
    ) = (&mut again.training.learner, &old.training.learner)
    {
        assert_eq!(now.max_features, None);
        now.max_features = then.max_features;
    }
    assert_eq!(again, old);
}
