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
    msgpack: FeatureConfig, Csr, EvaluationReport, SplitIndices;
    json: ValidationReport, SavedModel, Vec<Prediction>, serde_json::Value
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
