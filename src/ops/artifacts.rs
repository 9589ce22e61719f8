//! How each artifact type the ops exchange is stored: tables as Arrow IPC, large
//! values as MessagePack, small reports as JSON.

use super::model::SavedModel;
use super::util::Token;
use crate::ml::features::FeatureConfig;
use crate::ml::metrics::EvaluationReport;
use crate::ml::model::{EquipmentModel, Featurizer, Prediction};
use crate::ml::search::{CvScore, SearchResult};
use crate::ml::sparse::Csr;
use crate::ml::split::SplitIndices;
use crate::ml::validate::ValidationReport;
use crate::op::{from_msgpack, to_msgpack, Artifact, CodecError};
use polars::prelude::*;

crate::serde_artifact! {
    msgpack: FeatureConfig, Csr, SplitIndices, CvScore, SearchResult;
    json: ValidationReport, SavedModel, Vec<Prediction>, serde_json::Value
}

/// The metrics as MessagePack with field names: some fields are left out when empty
/// (as `metrics.json` shows them), which positional MessagePack cannot decode. Earlier
/// positional blobs still decode.
impl Artifact for EvaluationReport {
    const FORMAT: &'static str = "msgpack-named/1";

    fn encode(&self) -> Result<Vec<u8>, CodecError> {
        rmp_serde::to_vec_named(self).map_err(|e| CodecError::Encode {
            ty: "EvaluationReport",
            format: Self::FORMAT,
            message: e.to_string(),
        })
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        from_msgpack(bytes)
    }
}

/// Tables as one Arrow IPC stream of a single chunk: the same rows give the same bytes
/// however the table was assembled. Chunking is not content, and neither is how polars
/// lays out strings in memory: its string views point into buffers that depend on the
/// table's history (rows taken from a table decoded from the store reference other
/// buffers than the same rows of a table computed in this run), so strings are written
/// in Arrow's oldest layout, offsets and one contiguous value buffer, which depends on the
/// values alone.
impl Artifact for DataFrame {
    const FORMAT: &'static str = "arrow-ipc/2";

    fn encode(&self) -> Result<Vec<u8>, CodecError> {
        let err = |e: PolarsError| CodecError::Encode {
            ty: "DataFrame",
            format: Self::FORMAT,
            message: e.to_string(),
        };
        let mut frame = self.clone();
        frame.rechunk_mut();
        let mut out = Vec::new();
        IpcWriter::new(&mut out)
            .with_compat_level(CompatLevel::oldest())
            .finish(&mut frame)
            .map_err(err)?;
        Ok(out)
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        IpcReader::new(std::io::Cursor::new(bytes))
            .finish()
            .map_err(|e| CodecError::Decode {
                ty: "DataFrame",
                format: Self::FORMAT,
                message: e.to_string(),
            })
    }
}

/// The fitted featurizer; its term index is rebuilt on decode.
impl Artifact for Featurizer {
    const FORMAT: &'static str = "msgpack/1";

    fn encode(&self) -> Result<Vec<u8>, CodecError> {
        to_msgpack(self)
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut f: Featurizer = from_msgpack(bytes)?;
        f.tfidf.build_index();
        Ok(f)
    }
}

/// The model, as in its file's payload (format 2); lookups are rebuilt on decode.
impl Artifact for EquipmentModel {
    const FORMAT: &'static str = "msgpack/2";

    fn encode(&self) -> Result<Vec<u8>, CodecError> {
        to_msgpack(self)
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut m: EquipmentModel = from_msgpack(bytes)?;
        m.restore();
        Ok(m)
    }
}

/// "This node ran": no bytes.
impl Artifact for Token {
    const FORMAT: &'static str = "token/1";

    fn encode(&self) -> Result<Vec<u8>, CodecError> {
        Ok(Vec::new())
    }

    fn decode(_: &[u8]) -> Result<Self, CodecError> {
        Ok(Token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{ArtifactType, Dir, DirEntry, File};
    use std::collections::BTreeSet;

    /// One value of `T`, encoded, decoded, encoded again: the same bytes, and the value
    /// decoded through the erased codec the store uses is a `T`.
    fn round_trip<T: Artifact>(value: T) -> &'static str {
        let bytes = value.encode().unwrap();
        let back = T::decode(&bytes).unwrap();
        assert_eq!(back.encode().unwrap(), bytes, "{}", std::any::type_name::<T>());
        let erased = ArtifactType::of::<T>().codec().unwrap().decode(&bytes).unwrap();
        assert!(erased.downcast_ref::<T>().is_some());
        std::any::type_name::<T>()
    }

    #[test]
    fn every_type_that_flows_round_trips() {
        let (raw, features, engineered) = crate::ml::sample_inventory(200, 3);
        let (featurizer, x) =
            Featurizer::fit(&engineered, &features, &crate::ml::text::TfidfConfig::default()).unwrap();
        let forest = crate::ml::forest::ForestConfig {
            n_trees: 2,
            ..Default::default()
        };
        let model =
            EquipmentModel::fit(&engineered, &features, featurizer.clone(), &x, &forest, &|| {}).unwrap();
        let metrics = model.evaluation(&engineered, &[], 0).unwrap();
        let mut covered = BTreeSet::new();
        covered.insert(round_trip(raw));
        covered.insert(round_trip(features));
        covered.insert(round_trip(x));
        covered.insert(round_trip(featurizer));
        covered.insert(round_trip(model.predict_record(&Default::default())));
        covered.insert(round_trip(model));
        covered.insert(round_trip(metrics));
        covered.insert(round_trip(SplitIndices {
            train: vec![0, 2],
            test: vec![1],
            method: "random".into(),
            notes: vec![],
        }));
        covered.insert(round_trip(crate::ml::validate::validate(
            &engineered,
            &crate::ml::validate::ValidationRules::default(),
        )));
        covered.insert(round_trip(SavedModel {
            model: "m.nxm".into(),
            metadata: "m_metadata.json".into(),
            latest: "m_latest.nxm".into(),
        }));
        covered.insert(round_trip(serde_json::json!({ "a": [1, 2.5, "x", null] })));
        covered.insert(round_trip(Token));
        let score = CvScore {
            point: serde_json::json!({ "trees": 50 }),
            fold: 1,
            folds: 3,
            score: 0.8125,
            tfidf: serde_json::json!({}),
            train: serde_json::json!({ "n_trees": 50 }),
        };
        covered.insert(round_trip(crate::ml::search::select(std::slice::from_ref(
            &score,
        ))));
        covered.insert(round_trip(score));
        covered.insert(round_trip(File {
            bytes: vec![0, 255, 10],
        }));
        covered.insert(round_trip(Dir {
            entries: vec![
                DirEntry {
                    path: "a".into(),
                    bytes: None,
                },
                DirEntry {
                    path: "a/b.txt".into(),
                    bytes: Some(b"b".to_vec()),
                },
            ],
        }));
        // Every type a registered op's port (or a command node's kind) carries.
        let registry = crate::ops::builtin();
        let mut types = BTreeSet::new();
        for op in registry.iter() {
            let ports = op.inputs.iter().chain(&op.outputs).map(|p| p.ty);
            let rest = op.variadic_inputs.into_iter().chain(op.variadic_outputs);
            let kinds = op.node_ports.iter().flatten().map(|(_, t)| *t);
            for ty in ports.chain(rest).chain(kinds) {
                if ty.type_id().is_some() {
                    types.insert(ty.type_name());
                }
            }
        }
        let untested: Vec<&&str> = types.iter().filter(|t| !covered.contains(*t)).collect();
        assert!(untested.is_empty(), "no round trip for {untested:?}");
    }

    #[test]
    fn tables_round_trip_with_equal_bytes_for_any_chunking() {
        let a = df!("x" => ["a", "b"], "y" => [1.0, 2.0]).unwrap();
        let mut b = df!("x" => ["a"], "y" => [1.0]).unwrap();
        b.vstack_mut(&df!("x" => ["b"], "y" => [2.0]).unwrap()).unwrap();
        assert_eq!(a.encode().unwrap(), b.encode().unwrap());
        let back = DataFrame::decode(&a.encode().unwrap()).unwrap();
        assert!(back.equals(&a));
    }

    /// `data.split` of a table computed in this run and of the same table decoded from
    /// the store (a warm run) must give the same bytes, or everything after it re-runs.
    #[test]
    fn rows_taken_from_a_decoded_table_encode_as_from_the_computed_one() {
        let (_, _, engineered) = crate::ml::sample_inventory(300, 11);
        let decoded = DataFrame::decode(&engineered.encode().unwrap()).unwrap();
        assert!(decoded.equals_missing(&engineered));
        let split = crate::ml::split::split(
            engineered.height(),
            crate::ml::split::TestSize::Fraction(0.3),
            42,
            None,
        )
        .unwrap();
        for rows in [&split.train, &split.test] {
            let cold = crate::ml::table::take_rows(&engineered, rows).unwrap();
            let warm = crate::ml::table::take_rows(&decoded, rows).unwrap();
            assert_eq!(cold.encode().unwrap(), warm.encode().unwrap());
        }
        assert_eq!(decoded.encode().unwrap(), engineered.encode().unwrap());
    }

    /// One type's sample values, and the check that its serde form skips no field.
    struct Sample {
        values: Vec<Box<dyn std::any::Any + Send + Sync>>,
        no_skip: fn(&(dyn std::any::Any + Send + Sync)) -> Result<(), String>,
    }

    fn serde_sample<T: serde::Serialize + std::any::Any + Send + Sync>(
        values: Vec<T>,
    ) -> (&'static str, Sample) {
        let values = values
            .into_iter()
            .map(|v| Box::new(v) as Box<dyn std::any::Any + Send + Sync>)
            .collect();
        let no_skip = |v: &(dyn std::any::Any + Send + Sync)| {
            let v = v.downcast_ref::<T>().expect("sample of its own type");
            v.serialize(walk::Walk).map_err(|e| e.0)
        };
        (std::any::type_name::<T>(), Sample { values, no_skip })
    }

    /// A type without a serde form (its codec is its own).
    fn opaque_sample<T: std::any::Any + Send + Sync>(values: Vec<T>) -> (&'static str, Sample) {
        let values = values
            .into_iter()
            .map(|v| Box::new(v) as Box<dyn std::any::Any + Send + Sync>)
            .collect();
        (
            std::any::type_name::<T>(),
            Sample {
                values,
                no_skip: |_| Ok(()),
            },
        )
    }

    fn metrics(
        warnings: Vec<String>,
        other: Option<crate::ml::metrics::OtherAnalysis>,
    ) -> crate::ml::metrics::TargetMetrics {
        crate::ml::metrics::TargetMetrics {
            target: "category_name".into(),
            rows: 3,
            unlabelled_rows: 1,
            trained_classes: 2,
            warnings,
            accuracy: 2.0 / 3.0,
            macro_f1: 0.5,
            weighted_f1: 0.6,
            per_class: vec![crate::ml::metrics::ClassReport {
                label: "Pump".into(),
                precision: 1.0,
                recall: 0.5,
                f1: 2.0 / 3.0,
                support: 2,
            }],
            labels: vec!["Other".into(), "Pump".into()],
            confusion: vec![vec![1, 0], vec![1, 1]],
            other,
            calibration: None,
        }
    }

    /// Every value of every type an op's port carries, real and with empty or `None`
    /// fields: encode → decode → encode gives the same bytes, and no field is skipped
    /// when serializing (MessagePack stores structs as arrays: a skipped field shifts the
    /// ones after it, so what was stored no longer decodes, as `evaluate` twice did). The
    /// types come from the registry, so a new one cannot be forgotten: it fails here
    /// until it has a sample.
    #[test]
    fn every_registered_type_round_trips_byte_for_byte() {
        use crate::ml::forest::ForestConfig;
        use crate::ml::text::TfidfConfig;
        let (raw, features, engineered) = crate::ml::sample_inventory(200, 5);
        let (featurizer, x) = Featurizer::fit(&engineered, &features, &TfidfConfig::default()).unwrap();
        let cfg = ForestConfig {
            n_trees: 3,
            ..ForestConfig::default()
        };
        let model =
            EquipmentModel::fit(&engineered, &features, featurizer.clone(), &x, &cfg, &|| {}).unwrap();
        // A linear model: relabelled targets (aliases), a code book, a calibrator.
        let linear = EquipmentModel::train(
            &engineered,
            &features,
            featurizer.clone(),
            &x,
            &crate::ml::learner::LearnerConfig::Linear(Default::default()),
            &Default::default(),
            &|| {},
        )
        .unwrap();
        assert!(
            linear.models.iter().any(|m| !m.aliases.is_empty()) && !linear.codes.is_empty(),
            "the linear sample has the fields the forest leaves empty"
        );
        let evaluation = model.evaluation(&engineered, &[], 5).unwrap();
        let linear_evaluation = linear.evaluation(&engineered, &[], 5).unwrap();
        assert!(linear_evaluation.code_agreement.is_some());
        assert!(
            evaluation.targets.iter().any(|t| t.warnings.is_empty())
                && evaluation.targets.iter().all(|t| t.other.is_none()),
            "the real report has the fields that used to be skipped empty"
        );
        let other = crate::ml::metrics::OtherAnalysis {
            label: "Other".into(),
            accuracy: 0.5,
            precision: 1.0,
            recall: 0.5,
            f1: 2.0 / 3.0,
            false_positives: 0,
            false_negatives: 1,
            false_positive_examples: vec![],
            false_negative_examples: vec![("Pump".into(), "chilled water pump".into())],
        };
        let empty_report = EvaluationReport {
            rows: 0,
            mean_accuracy: 0.0,
            mean_macro_f1: 0.0,
            targets: vec![],
            top_terms: vec![],
            warnings: vec![],
            learner: String::new(),
            code_agreement: None,
        };
        let mixed_report = EvaluationReport {
            rows: 4,
            mean_accuracy: 0.5,
            mean_macro_f1: 0.5,
            targets: vec![
                metrics(vec![], None),
                metrics(vec!["a single class".into()], Some(other.clone())),
                metrics(vec![], Some(other)),
                metrics(vec!["w".into()], None),
            ],
            top_terms: vec![("category_name".into(), vec![("pump".into(), 0.25)])],
            warnings: vec!["12 of the 40 evaluated rows are training rows".into()],
            learner: "forest".into(),
            code_agreement: None,
        };
        let split =
            crate::ml::split::split(200, crate::ml::split::TestSize::Fraction(0.3), 42, None).unwrap();
        let rules: crate::ml::validate::ValidationRules =
            toml::from_str("numeric_columns = [\"service_life\"]\ntarget_columns = [\"category_name\"]")
                .unwrap();
        let validation = crate::ml::validate::validate(&raw, &rules);
        let empty_rules: crate::ml::validate::ValidationRules = toml::from_str("").unwrap();
        let record: std::collections::HashMap<String, String> =
            [("description".to_string(), "chilled water pump".to_string())].into();
        let minimal_features = FeatureConfig::parse(
            "model_text = \"t\"\ntargets = [\"a\"]\n[[text_combinations]]\nname = \"t\"\ncolumns = [\"d\"]",
            std::path::Path::new("f.toml"),
        )
        .unwrap();
        let samples: std::collections::HashMap<&'static str, Sample> = [
            opaque_sample(vec![
                engineered.clone(),
                engineered.head(Some(0)),
                DataFrame::empty(),
            ]),
            serde_sample(vec![features.clone(), minimal_features]),
            serde_sample(vec![x.clone(), crate::ml::sparse::Csr::new(0)]),
            serde_sample(vec![evaluation, linear_evaluation, empty_report, mixed_report]),
            serde_sample(vec![
                split,
                SplitIndices {
                    train: vec![],
                    test: vec![],
                    method: String::new(),
                    notes: vec![],
                },
            ]),
            serde_sample(vec![
                validation,
                crate::ml::validate::validate(&raw, &empty_rules),
            ]),
            serde_sample(vec![SavedModel {
                model: "out/m_20261201T000000Z.nxm".into(),
                metadata: "out/m_20261201T000000Z_metadata.json".into(),
                latest: "out/m_latest.nxm".into(),
            }]),
            serde_sample(vec![
                model.predict_record(&record),
                linear.predict_record(&record),
                Vec::new(),
            ]),
            serde_sample(vec![
                serde_json::json!({"a": [1, 2.5, null], "b": {}}),
                serde_json::Value::Null,
            ]),
            serde_sample(vec![featurizer]),
            serde_sample(vec![crate::ml::search::CvScore {
                point: serde_json::json!({ "trees": 5 }),
                fold: 1,
                folds: 3,
                score: 0.75,
                tfidf: serde_json::json!({}),
                train: serde_json::json!({ "n_trees": 5 }),
            }]),
            serde_sample(vec![
                crate::ml::search::select(&[crate::ml::search::CvScore {
                    point: serde_json::json!({ "trees": 5 }),
                    fold: 0,
                    folds: 2,
                    score: 0.5,
                    tfidf: serde_json::json!({ "ngram_max": 2 }),
                    train: serde_json::json!({}),
                }]),
                crate::ml::search::select(&[]),
            ]),
            serde_sample(vec![model, linear]),
            opaque_sample(vec![Token]),
            serde_sample(vec![String::from("text"), String::new()]),
            serde_sample(vec![0u64, u64::MAX]),
            serde_sample(vec![0i64, i64::MIN]),
            serde_sample(vec![0.0f64, -1.5e300]),
            serde_sample(vec![true, false]),
        ]
        .into_iter()
        .collect();

        let mut types: Vec<crate::op::ArtifactType> = Vec::new();
        for spec in crate::ops::builtin().iter() {
            let ports = spec.inputs.iter().chain(&spec.outputs).map(|p| p.ty);
            for ty in ports.chain(spec.variadic_inputs).chain(spec.variadic_outputs) {
                if ty.codec().is_some() && !types.iter().any(|t| t.type_name() == ty.type_name()) {
                    types.push(ty);
                }
            }
        }
        assert!(types.len() >= 10, "{types:?}");
        for ty in &types {
            let codec = ty.codec().unwrap();
            let sample = samples
                .get(ty.type_name())
                .unwrap_or_else(|| panic!("registered type {} has no sample here: add one", ty.type_name()));
            for (i, value) in sample.values.iter().enumerate() {
                (sample.no_skip)(&**value).unwrap_or_else(|e| panic!("{} (sample {i}): {e}", ty.name()));
                let bytes = codec.encode(&**value).unwrap();
                let back = codec
                    .decode(&bytes)
                    .unwrap_or_else(|e| panic!("{} (sample {i}) does not decode: {e}", ty.name()));
                let again = codec.encode(&*back).unwrap();
                assert!(
                    bytes == again,
                    "{} (sample {i}): re-encoding changes the bytes",
                    ty.name()
                );
            }
        }
    }

    /// The walker finds a skipped field wherever it is nested.
    #[test]
    fn the_walker_catches_a_skipped_field() {
        #[derive(serde::Serialize)]
        struct Inner {
            #[serde(skip_serializing_if = "Vec::is_empty")]
            warnings: Vec<String>,
        }
        #[derive(serde::Serialize)]
        struct Outer {
            inner: Vec<Inner>,
        }
        let full = Outer {
            inner: vec![Inner {
                warnings: vec!["w".into()],
            }],
        };
        assert!(serde::Serialize::serialize(&full, walk::Walk).is_ok());
        let skipping = Outer {
            inner: vec![Inner { warnings: vec![] }],
        };
        let e = serde::Serialize::serialize(&skipping, walk::Walk).unwrap_err();
        assert_eq!(
            e.0,
            "`Inner.warnings` is skipped when serializing (`skip_serializing_if`)"
        );
    }

    /// A serializer that writes nothing and fails on a skipped struct field.
    mod walk {
        use serde::ser::{self, Serialize};

        #[derive(Debug)]
        pub struct Skipped(pub String);
        impl std::fmt::Display for Skipped {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::error::Error for Skipped {}
        impl ser::Error for Skipped {
            fn custom<T: std::fmt::Display>(msg: T) -> Self {
                Skipped(msg.to_string())
            }
        }

        pub struct Walk;
        pub struct Compound(&'static str);
        type R = Result<(), Skipped>;

        impl ser::Serializer for Walk {
            type Ok = ();
            type Error = Skipped;
            type SerializeSeq = Compound;
            type SerializeTuple = Compound;
            type SerializeTupleStruct = Compound;
            type SerializeTupleVariant = Compound;
            type SerializeMap = Compound;
            type SerializeStruct = Compound;
            type SerializeStructVariant = Compound;
            fn serialize_bool(self, _: bool) -> R {
                Ok(())
            }
            fn serialize_i8(self, _: i8) -> R {
                Ok(())
            }
            fn serialize_i16(self, _: i16) -> R {
                Ok(())
            }
            fn serialize_i32(self, _: i32) -> R {
                Ok(())
            }
            fn serialize_i64(self, _: i64) -> R {
                Ok(())
            }
            fn serialize_u8(self, _: u8) -> R {
                Ok(())
            }
            fn serialize_u16(self, _: u16) -> R {
                Ok(())
            }
            fn serialize_u32(self, _: u32) -> R {
                Ok(())
            }
            fn serialize_u64(self, _: u64) -> R {
                Ok(())
            }
            fn serialize_f32(self, _: f32) -> R {
                Ok(())
            }
            fn serialize_f64(self, _: f64) -> R {
                Ok(())
            }
            fn serialize_char(self, _: char) -> R {
                Ok(())
            }
            fn serialize_str(self, _: &str) -> R {
                Ok(())
            }
            fn serialize_bytes(self, _: &[u8]) -> R {
                Ok(())
            }
            fn serialize_none(self) -> R {
                Ok(())
            }
            fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> R {
                v.serialize(Walk)
            }
            fn serialize_unit(self) -> R {
                Ok(())
            }
            fn serialize_unit_struct(self, _: &'static str) -> R {
                Ok(())
            }
            fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> R {
                Ok(())
            }
            fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, v: &T) -> R {
                v.serialize(Walk)
            }
            fn serialize_newtype_variant<T: ?Sized + Serialize>(
                self,
                _: &'static str,
                _: u32,
                _: &'static str,
                v: &T,
            ) -> R {
                v.serialize(Walk)
            }
            fn serialize_seq(self, _: Option<usize>) -> Result<Compound, Skipped> {
                Ok(Compound(""))
            }
            fn serialize_tuple(self, _: usize) -> Result<Compound, Skipped> {
                Ok(Compound(""))
            }
            fn serialize_tuple_struct(self, name: &'static str, _: usize) -> Result<Compound, Skipped> {
                Ok(Compound(name))
            }
            fn serialize_tuple_variant(
                self,
                name: &'static str,
                _: u32,
                _: &'static str,
                _: usize,
            ) -> Result<Compound, Skipped> {
                Ok(Compound(name))
            }
            fn serialize_map(self, _: Option<usize>) -> Result<Compound, Skipped> {
                Ok(Compound(""))
            }
            fn serialize_struct(self, name: &'static str, _: usize) -> Result<Compound, Skipped> {
                Ok(Compound(name))
            }
            fn serialize_struct_variant(
                self,
                name: &'static str,
                _: u32,
                _: &'static str,
                _: usize,
            ) -> Result<Compound, Skipped> {
                Ok(Compound(name))
            }
        }

        impl ser::SerializeSeq for Compound {
            type Ok = ();
            type Error = Skipped;
            fn serialize_element<T: ?Sized + Serialize>(&mut self, v: &T) -> R {
                v.serialize(Walk)
            }
            fn end(self) -> R {
                Ok(())
            }
        }
        impl ser::SerializeTuple for Compound {
            type Ok = ();
            type Error = Skipped;
            fn serialize_element<T: ?Sized + Serialize>(&mut self, v: &T) -> R {
                v.serialize(Walk)
            }
            fn end(self) -> R {
                Ok(())
            }
        }
        impl ser::SerializeTupleStruct for Compound {
            type Ok = ();
            type Error = Skipped;
            fn serialize_field<T: ?Sized + Serialize>(&mut self, v: &T) -> R {
                v.serialize(Walk)
            }
            fn end(self) -> R {
                Ok(())
            }
        }
        impl ser::SerializeTupleVariant for Compound {
            type Ok = ();
            type Error = Skipped;
            fn serialize_field<T: ?Sized + Serialize>(&mut self, v: &T) -> R {
                v.serialize(Walk)
            }
            fn end(self) -> R {
                Ok(())
            }
        }
        impl ser::SerializeMap for Compound {
            type Ok = ();
            type Error = Skipped;
            fn serialize_key<T: ?Sized + Serialize>(&mut self, k: &T) -> R {
                k.serialize(Walk)
            }
            fn serialize_value<T: ?Sized + Serialize>(&mut self, v: &T) -> R {
                v.serialize(Walk)
            }
            fn end(self) -> R {
                Ok(())
            }
        }
        impl ser::SerializeStruct for Compound {
            type Ok = ();
            type Error = Skipped;
            fn serialize_field<T: ?Sized + Serialize>(&mut self, _: &'static str, v: &T) -> R {
                v.serialize(Walk)
            }
            fn skip_field(&mut self, key: &'static str) -> R {
                Err(Skipped(format!(
                    "`{}.{key}` is skipped when serializing (`skip_serializing_if`)",
                    self.0
                )))
            }
            fn end(self) -> R {
                Ok(())
            }
        }
        impl ser::SerializeStructVariant for Compound {
            type Ok = ();
            type Error = Skipped;
            fn serialize_field<T: ?Sized + Serialize>(&mut self, _: &'static str, v: &T) -> R {
                v.serialize(Walk)
            }
            fn skip_field(&mut self, key: &'static str) -> R {
                Err(Skipped(format!(
                    "`{}.{key}` is skipped when serializing (`skip_serializing_if`)",
                    self.0
                )))
            }
            fn end(self) -> R {
                Ok(())
            }
        }
    }
}
