//! Model files of format version 1 (forests only, no code book), as nexusml wrote them
//! before version 2: read, then converted to the current model. The field order is the
//! file's (MessagePack stores structs as arrays), so these types never change.

use super::codes::CodeBook;
use super::features::FeatureConfig;
use super::forest::{ForestConfig, RandomForest};
use super::learner::{Learned, LearnerConfig};
use super::model::{EquipmentModel, Featurizer, TargetModel, TrainingInfo};
use super::text::TfidfConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetForestV1 {
    pub targets: Vec<String>,
    pub classes: Vec<String>,
    pub forest: RandomForest,
    #[serde(default)]
    pub labelled_rows: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfoV1 {
    pub rows: usize,
    pub tfidf: TfidfConfig,
    pub forest: ForestConfig,
    pub nexusml_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EquipmentModelV1 {
    pub features: FeatureConfig,
    pub featurizer: Featurizer,
    pub forests: Vec<TargetForestV1>,
    pub training: TrainingInfoV1,
}

/// A version-1 model is a forest model without a code book: its predictions are the
/// same, and it checks no codes.
impl From<EquipmentModelV1> for EquipmentModel {
    fn from(v1: EquipmentModelV1) -> Self {
        EquipmentModel {
            features: v1.features,
            featurizer: v1.featurizer,
            models: v1
                .forests
                .into_iter()
                .map(|f| TargetModel {
                    targets: f.targets,
                    classes: f.classes,
                    aliases: Vec::new(),
                    learned: Learned::Forest(f.forest),
                    labelled_rows: f.labelled_rows,
                })
                .collect(),
            codes: CodeBook::default(),
            training: TrainingInfo {
                rows: v1.training.rows,
                tfidf: v1.training.tfidf,
                learner: LearnerConfig::Forest(v1.training.forest),
                nexusml_version: v1.training.nexusml_version,
            },
            provenance: Default::default(),
        }
    }
}
