//! How each artifact type the ops exchange is stored: tables as Arrow IPC, large
//! values as MessagePack, small reports as JSON.

use super::model::SavedModel;
use super::util::Token;
use crate::ml::features::FeatureConfig;
use crate::ml::metrics::EvaluationReport;
use crate::ml::model::{EquipmentModel, Featurizer, Prediction};
use crate::ml::sparse::Csr;
use crate::ml::split::SplitIndices;
use crate::ml::validate::ValidationReport;
use crate::op::{from_msgpack, to_msgpack, Artifact, CodecError};
use polars::prelude::*;

crate::serde_artifact! {
    msgpack: FeatureConfig, Csr, SplitIndices;
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
/// however the table was assembled (chunking is not content).
impl Artifact for DataFrame {
    const FORMAT: &'static str = "arrow-ipc/1";

    fn encode(&self) -> Result<Vec<u8>, CodecError> {
        let err = |e: PolarsError| CodecError::Encode {
            ty: "DataFrame",
            format: Self::FORMAT,
            message: e.to_string(),
        };
        let mut frame = self.clone();
        frame.rechunk_mut();
        let mut out = Vec::new();
        IpcWriter::new(&mut out).finish(&mut frame).map_err(err)?;
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

/// The model, as in its file's payload; lookups are rebuilt on decode.
impl Artifact for EquipmentModel {
    const FORMAT: &'static str = "msgpack/1";

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
}
