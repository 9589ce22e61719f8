//! `features.engineer`: derive the model's inputs and targets from an inventory.

use super::{FieldDoc, Op, OpConfig, OpError, OpSpec, PathField, Port, Registry};
use crate::ml::features::{FeatureConfig, Mode, BUILTIN_NAME};
use crate::op::NodeContext;
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Config {
    config: PathBuf,
    #[serde(default)]
    predict: bool,
    /// The column mapping the table was loaded with: each model column it names must be
    /// one this config reads (a typo is refused before anything runs).
    #[serde(default)]
    map: crate::ml::mapping::ColumnMap,
}

impl OpConfig for Config {
    const FIELDS: &'static [FieldDoc] = &[
        FieldDoc::required(
            "config",
            "string",
            "feature config TOML file, \"builtin\" for the one compiled in (dags/features.toml), or \"model\" for \
             the one stored in the `model` input",
        ),
        FieldDoc::optional("predict", "bool", "prediction: do not derive target columns"),
        FieldDoc::optional(
            "map",
            "table",
            "the load's column mapping, checked: every model column it names must be one this config reads",
        ),
    ];
}

pub(crate) fn register(r: &mut Registry) {
    r.register(
        OpSpec::new(
            "features.engineer",
            "Add text combinations, numeric columns, hierarchies, column mappings and classification codes \
             from a feature config (dags/features.toml).",
            |c: Config| {
                // Read at build time so a bad feature file fails `dag check`, not the run.
                let features = if c.config == std::path::Path::new(FROM_MODEL) {
                    None
                } else {
                    Some(FeatureConfig::open(&c.config).map_err(|e| e.to_string())?)
                };
                if let Some(f) = &features {
                    let known = crate::ml::mapping::known_columns(f);
                    c.map.check_known(&known).map_err(|e| e.to_string())?;
                }
                Ok(Engineer {
                    path: c.config.clone(),
                    features,
                    mode: if c.predict { Mode::Predict } else { Mode::Train },
                })
            },
        )
        .linter(|c: Config| {
            if c.config == std::path::Path::new(FROM_MODEL) {
                return Vec::new();
            }
            FeatureConfig::open(&c.config)
                .map(|f| f.lint())
                .unwrap_or_default()
        })
        // The built-in config is part of the key through this version: it changes when
        // the compiled-in text does.
        .version(
            builtin_version(),
            "a digest of the built-in feature config: a changed built-in config is a new version",
        )
        .path_field(PathField::new("config").except(&[BUILTIN_NAME, FROM_MODEL]))
        .input(Port::new::<DataFrame>("table", "the inventory"))
        .input(
            Port::new::<crate::ml::model::EquipmentModel>(
                "model",
                "with config = \"model\": the model whose stored feature config engineers the table",
            )
            .optional(),
        )
        .output(Port::new::<DataFrame>(
            "table",
            "the inventory with the engineered columns",
        ))
        .output(Port::new::<FeatureConfig>("features", "the feature config, for the model").optional()),
    );
}

/// 1, plus a digest of the built-in text (so a changed built-in config is a new key).
fn builtin_version() -> u32 {
    let d = blake3::hash(crate::ml::features::BUILTIN.as_bytes());
    u32::from_le_bytes([d.as_bytes()[0], d.as_bytes()[1], d.as_bytes()[2], 0]).max(1)
}

/// `config = "model"`: the feature config stored in the `model` input.
const FROM_MODEL: &str = "model";

#[derive(Debug, thiserror::Error)]
#[error("features.engineer: config = \"model\" reads the feature config of the `model` input, and none is connected")]
struct NoModel;

struct Engineer {
    path: PathBuf,
    /// `None`: the model's.
    features: Option<FeatureConfig>,
    mode: Mode,
}

impl Op for Engineer {
    fn reads(&self) -> Vec<PathBuf> {
        if self.path == std::path::Path::new(BUILTIN_NAME) || self.path == std::path::Path::new(FROM_MODEL) {
            Vec::new()
        } else {
            vec![self.path.clone()]
        }
    }

    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        let frame = ctx.input::<DataFrame>("table")?;
        let features = match &self.features {
            Some(f) => f.clone(),
            None => ctx
                .input_opt::<crate::ml::model::EquipmentModel>("model")?
                .ok_or(NoModel)?
                .features
                .clone(),
        };
        let (out, summary) = features.apply(&frame, self.mode)?;
        for (name, source, filled) in &summary.numeric {
            match source {
                Some(s) if *filled > 0 => tracing::info!(
                    "numeric `{name}` from `{s}`: {filled} empty or invalid cells filled with the configured value"
                ),
                Some(_) => {}
                None => tracing::warn!("numeric `{name}`: no source column present, filled entirely"),
            }
        }
        if !summary.optional_text_columns_absent.is_empty() {
            tracing::info!(
                "optional text columns absent: {}",
                summary.optional_text_columns_absent.join(", ")
            );
        }
        ctx.output("table", out)?;
        ctx.output("features", features)?;
        Ok(())
    }
}
