//! Where the column mapping ([`crate::ml::mapping`]) meets a model: the mapping to use on
//! an input (the explicit one, then what the model recorded from its training data) and
//! the trained columns the input lacks.

use super::OpError;
use crate::ml::mapping::ColumnMap;
use crate::ml::model::EquipmentModel;
use crate::ml::provenance::{absent_inputs, AbsentInput};
use crate::ml::table::column_names;
use polars::prelude::DataFrame;

/// The mapping for `table`: `explicit` (its model columns among `known`), plus each
/// entry the model recorded whose model column is in `applicable`, whose input column
/// the table has and whose model column it lacks. Logs the recorded entries it applies.
pub(crate) fn with_recorded(
    model: &EquipmentModel,
    table: &DataFrame,
    explicit: &ColumnMap,
    applicable: &[String],
    known: &[String],
) -> Result<ColumnMap, OpError> {
    let recorded = model.provenance.map.restricted_to(applicable);
    let (map, used) = explicit.with_recorded(&recorded, &column_names(table));
    if !used.is_empty() {
        tracing::info!(
            "applying the column mapping the model was trained with: {}",
            used.iter().map(|m| map.label(m)).collect::<Vec<_>>().join(", ")
        );
    }
    map.check()?;
    map.check_known(known)?;
    Ok(map)
}

/// The raw columns the model reads or was trained on (its feature config's).
pub(crate) fn known_columns(model: &EquipmentModel) -> Vec<String> {
    crate::ml::mapping::known_columns(&model.features)
}

/// For `model.predict`: the mapping to apply, and the trained columns the (mapped) input
/// lacks. Columns the model cannot do without are left to its own error.
pub(crate) fn predict_inputs(
    model: &EquipmentModel,
    table: &DataFrame,
    explicit: &ColumnMap,
    id_column: &str,
) -> Result<(ColumnMap, Vec<AbsentInput>), OpError> {
    let mut reads = model.input_columns();
    if !reads.iter().any(|c| c == id_column) {
        reads.push(id_column.to_string());
    }
    // A mapping made for training may name the targets too: accepted, not needed here.
    let mut known = known_columns(model);
    known.extend(
        reads
            .iter()
            .filter(|c| !known.contains(c))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let map = with_recorded(model, table, explicit, &reads, &known)?.restricted_to(&reads);
    map.check_inputs_present(table)?;
    let mut present = column_names(table);
    present.extend(map.iter().map(|(m, _)| m.clone()));
    let required: Vec<&String> = (model.features.text_combinations.iter())
        .filter(|t| t.name == model.features.model_text)
        .flat_map(|t| t.columns.iter().filter(|c| !t.optional.contains(c)))
        .collect();
    let absent = absent_inputs(model, &present)
        .into_iter()
        .filter(|a| !required.contains(&&a.column))
        .collect();
    Ok((map, absent))
}
