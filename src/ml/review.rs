//! Predictions for an inventory with what a facility team needs to trust them: the
//! [`TOP_K`] most probable labels of every target, whether the predicted codes agree with
//! the predicted category, and a review queue of the rows to look at.
//!
//! The prediction table keeps the input's columns (or the id and the text used), then
//! per target `predicted_<t>`, `predicted_<t>_probability`, `predicted_<t>_2`,
//! `predicted_<t>_2_probability`, `predicted_<t>_3`, `predicted_<t>_3_probability`
//! (`<t>`, … with `keep = "id"`; a label past the classes, or at probability 0, is empty
//! with probability 0), then `codes_agree` (models with a code book) and `needs_review`.
//!
//! A row needs review when its confidence (the lowest top probability over the targets)
//! is below `review_below`, or its codes disagree. The review table holds exactly those
//! rows, least confident first (ties in input order), with `row` (1 = the first data
//! row), the id, `confidence`, the `reason`, each target's label and probability, and
//! the text the model read.

use super::model::{map_columns, EquipmentModel, Keep, ModelError, TargetAnswers, TOP_K};
use super::table::text_column;
use polars::prelude::*;
use std::path::{Path, PathBuf};

/// How an inventory is predicted and what goes to review.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewOptions {
    /// The input's id column (kept with [`Keep::Id`], and in the review table).
    pub id_column: String,
    pub keep: Keep,
    /// A row whose lowest top probability is below this goes to review (0: only rows
    /// whose codes disagree).
    pub review_below: f64,
}

/// An inventory's predictions, its review queue and their summary for the run's report.
pub struct Predicted {
    pub predictions: DataFrame,
    pub review: DataFrame,
    /// `predictions_summary.json`: per target the predicted classes and the rows under
    /// each of [`SUMMARY_THRESHOLDS`], the rows with any target under each, and the rows
    /// that went to review.
    pub summary: serde_json::Value,
}

/// The confidence thresholds of [`Predicted::summary`].
pub const SUMMARY_THRESHOLDS: [f64; 3] = [0.5, 0.7, 0.9];

/// See [`Predicted::summary`].
fn summary(
    answers: &[TargetAnswers<'_>],
    n: usize,
    review_rows: usize,
    review_below: f64,
) -> serde_json::Value {
    use serde_json::json;
    const T: usize = SUMMARY_THRESHOLDS.len();
    let mut any_below = vec![[false; T]; n];
    let mut targets = Vec::new();
    for a in answers {
        let mut counts: indexmap::IndexMap<&str, usize> = indexmap::IndexMap::new();
        let mut below = [0usize; T];
        for (i, row) in any_below.iter_mut().enumerate() {
            *counts.entry(label(a, i)).or_default() += 1;
            let p = a.ranked.best(i).1;
            for (k, &t) in SUMMARY_THRESHOLDS.iter().enumerate() {
                // In f32, as the probabilities are: 7 of 10 votes is not under 0.7.
                if p < t as f32 {
                    below[k] += 1;
                    row[k] = true;
                }
            }
        }
        counts.sort_by(|a, n, b, m| m.cmp(n).then(a.cmp(b)));
        targets.push(json!({
            "target": a.target,
            "classes": counts.iter().map(|(l, n)| json!({"label": l, "rows": n})).collect::<Vec<_>>(),
            "below": SUMMARY_THRESHOLDS.iter().zip(below).map(|(t, n)| json!({"probability": t, "rows": n})).collect::<Vec<_>>(),
        }));
    }
    let any: Vec<_> = (0..T)
        .map(|k| json!({"probability": SUMMARY_THRESHOLDS[k], "rows": any_below.iter().filter(|r| r[k]).count()}))
        .collect();
    json!({
        "rows": n,
        "targets": targets,
        "any_target_below": any,
        "review": {"below": review_below, "rows": review_rows},
    })
}

/// Where the review queue of a predictions file goes: beside it, named by it
/// (`out/predictions.csv` → `out/predictions_review.csv`).
pub fn review_path(predictions: &Path) -> PathBuf {
    let stem = predictions.file_stem().unwrap_or_default().to_string_lossy();
    predictions.with_file_name(format!("{stem}_review.csv"))
}

/// Row `i`'s most probable label.
fn label<'a>(a: &TargetAnswers<'a>, i: usize) -> &'a str {
    a.classes[a.ranked.best(i).0 as usize].as_str()
}

/// A column name not yet taken (`_` appended until it is free).
fn free(columns: &[Column], name: String) -> String {
    let mut name = name;
    while columns.iter().any(|c| c.name().as_str() == name) {
        name.push('_');
    }
    name
}

/// Predict every target of a raw inventory (see the module documentation). `map` names,
/// per column the model reads, the input column that holds it.
pub fn predict_inventory(
    model: &EquipmentModel,
    raw: &DataFrame,
    map: &indexmap::IndexMap<String, String>,
    options: &ReviewOptions,
) -> Result<Predicted, ModelError> {
    model.check_map(&options.id_column, map)?;
    let input = map_columns(raw, map)?;
    let (engineered, x) = model.prepare(&input)?;
    let ranked = model.rank(&x, TOP_K);
    let answers = model.answers(&ranked);
    let n = engineered.height();
    let id = raw
        .column(&options.id_column)
        .or_else(|e| map.get(&options.id_column).map_or(Err(e), |c| raw.column(c)))
        .ok()
        .cloned();
    let text_name = &model.featurizer.text_column;
    let texts = text_column(&engineered, text_name)?;
    let mut columns: Vec<Column> = Vec::new();
    match options.keep {
        Keep::All => columns.extend(raw.columns().iter().cloned()),
        Keep::Id => {
            // The id column under the user's name, found directly or through `map`.
            columns.extend(id.clone());
            columns.push(Column::new(text_name.as_str().into(), texts.clone()));
        }
    }
    // Beside the user's columns (which may hold the labels) a prediction is
    // `predicted_<target>`; in the id-only table, plainly `<target>`.
    let prefix = match options.keep {
        Keep::All => "predicted_",
        Keep::Id => "",
    };
    for a in &answers {
        for r in 0..TOP_K {
            let rank = if r == 0 {
                String::new()
            } else {
                format!("_{}", r + 1)
            };
            let (labels, probs): (Vec<&str>, Vec<f32>) =
                (0..n).map(|i| a.at(i, r).unwrap_or(("", 0.0))).unzip();
            let name = free(&columns, format!("{prefix}{}{rank}", a.target));
            columns.push(Column::new(name.as_str().into(), labels));
            let name = free(&columns, format!("{prefix}{}{rank}_probability", a.target));
            columns.push(Column::new(name.as_str().into(), probs));
        }
    }
    // Per row: what disagrees, its confidence and whether it goes to review.
    let disagreements: Vec<Vec<super::codes::Disagreement>> = (0..n)
        .map(|i| model.disagreements(|t| answers.iter().find(|a| a.target == t).map(|a| label(a, i))))
        .collect();
    let confidence: Vec<f32> = (0..n)
        .map(|i| answers.iter().map(|a| a.ranked.best(i).1).fold(1.0, f32::min))
        .collect();
    let needs_review: Vec<bool> = (0..n)
        .map(|i| f64::from(confidence[i]) < options.review_below || !disagreements[i].is_empty())
        .collect();
    if !model.codes.is_empty() {
        let agree: Vec<bool> = disagreements.iter().map(Vec::is_empty).collect();
        let name = free(&columns, "codes_agree".into());
        columns.push(Column::new(name.as_str().into(), agree));
    }
    let name = free(&columns, "needs_review".into());
    columns.push(Column::new(name.as_str().into(), needs_review.clone()));
    let predictions = DataFrame::new(n, columns)?;

    // The queue: least confident first, ties in input order.
    let mut queue: Vec<usize> = (0..n).filter(|&i| needs_review[i]).collect();
    queue.sort_by(|&a, &b| confidence[a].total_cmp(&confidence[b]).then(a.cmp(&b)));
    let reason = |i: usize| {
        let mut parts: Vec<String> = answers
            .iter()
            .filter(|a| f64::from(a.ranked.best(i).1) < options.review_below)
            .map(|a| {
                let (l, p) = a.at(i, 0).unwrap_or(("", 0.0));
                let next = a
                    .at(i, 1)
                    .map_or(String::new(), |(l2, p2)| format!(" (next: {l2} {p2:.2})"));
                format!("{} {l} {p:.2} < {:.2}{next}", a.target, options.review_below)
            })
            .collect();
        let category = model.codes.category.as_str();
        if let Some(c) = answers.iter().find(|a| a.target == category) {
            parts.extend(disagreements[i].iter().map(|d| d.describe(label(c, i))));
        }
        parts.join("; ")
    };
    let mut review: Vec<Column> = vec![Column::new(
        "row".into(),
        queue.iter().map(|&i| i as u64 + 1).collect::<Vec<u64>>(),
    )];
    if let Some(id) = &id {
        let idx = IdxCa::from_vec("".into(), queue.iter().map(|&i| i as IdxSize).collect());
        review.push(id.take(&idx)?);
    }
    review.push(Column::new(
        free(&review, "confidence".into()).as_str().into(),
        queue.iter().map(|&i| confidence[i]).collect::<Vec<f32>>(),
    ));
    review.push(Column::new(
        free(&review, "reason".into()).as_str().into(),
        queue.iter().map(|&i| reason(i)).collect::<Vec<String>>(),
    ));
    for a in &answers {
        let (labels, probs): (Vec<&str>, Vec<f32>) =
            queue.iter().map(|&i| (label(a, i), a.ranked.best(i).1)).unzip();
        let name = free(&review, a.target.to_string());
        review.push(Column::new(name.as_str().into(), labels));
        let name = free(&review, format!("{}_probability", a.target));
        review.push(Column::new(name.as_str().into(), probs));
    }
    review.push(Column::new(
        free(&review, text_name.clone()).as_str().into(),
        queue.iter().map(|&i| texts[i].as_str()).collect::<Vec<&str>>(),
    ));
    let review = DataFrame::new(queue.len(), review)?;
    let summary = summary(&answers, n, queue.len(), options.review_below);
    Ok(Predicted {
        predictions,
        review,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::features::{FeatureConfig, Mode};
    use crate::ml::learner::LearnerConfig;
    use crate::ml::model::Featurizer;
    use crate::ml::text::{DocFreq, TfidfConfig};

    /// Four categories, each named by one word; the first has code U1 (its rows also say
    /// "zeta"), the other three share U2, and their rows also say "wet" (which names U2,
    /// not a category).
    fn model() -> EquipmentModel {
        let features = FeatureConfig::parse(
            "model_text = \"text\"\ntargets = [\"category_name\", \"uniformat_code\"]\n\
             [[text_combinations]]\nname = \"text\"\ncolumns = [\"description\", \"equipment_tag\"]",
            Path::new("f.toml"),
        )
        .unwrap();
        let words = ["alpha", "beta", "gamma", "delta"];
        let mut description = Vec::new();
        let (mut category, mut code, mut tag) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..80 {
            let w = i % 4;
            description.push(if w == 0 {
                format!("{} zeta", words[w])
            } else {
                format!("{} wet", words[w])
            });
            tag.push(format!("t{i}"));
            category.push(format!("Cat{}", w + 1));
            code.push(if w == 0 { "U1" } else { "U2" }.to_string());
        }
        let raw = df!(
            "description" => description,
            "equipment_tag" => tag,
            "category_name" => category,
            "uniformat_code" => code
        )
        .unwrap();
        let (engineered, _) = features.apply(&raw, Mode::Train).unwrap();
        let tfidf = TfidfConfig {
            ngram_max: 1,
            min_df: DocFreq::Count(1),
            max_df: DocFreq::Fraction(1.0),
            ..TfidfConfig::default()
        };
        let (featurizer, x) = Featurizer::fit(&engineered, &features, &tfidf).unwrap();
        let codes = crate::ml::codes::CodesConfig {
            category: "category_name".into(),
            codes: vec!["uniformat_code".into()],
        };
        let learner = LearnerConfig::Linear(Default::default());
        EquipmentModel::train(&engineered, &features, featurizer, &x, &learner, &codes, &|| {}).unwrap()
    }

    fn inventory(descriptions: &[&str]) -> DataFrame {
        let tags: Vec<String> = (0..descriptions.len()).map(|i| format!("new-{i}")).collect();
        df!("description" => descriptions, "equipment_tag" => tags).unwrap()
    }

    fn column<'a>(frame: &'a DataFrame, name: &str) -> &'a Column {
        frame.column(name).unwrap_or_else(|_| panic!("no column {name}"))
    }

    fn bools(frame: &DataFrame, name: &str) -> Vec<bool> {
        let c = column(frame, name).bool().unwrap();
        (0..c.len()).map(|i| c.get(i).unwrap()).collect()
    }

    fn strs(frame: &DataFrame, name: &str) -> Vec<String> {
        let c = column(frame, name).str().unwrap();
        (0..c.len()).map(|i| c.get(i).unwrap().to_string()).collect()
    }

    /// A crafted row: Cat1's word, and "wet" three times. The category model has only
    /// one category's word to go by (Cat1); the code model weighs the repeated U2 word
    /// against one of the two U1 words, and says U2.
    #[test]
    fn a_row_whose_codes_contradict_its_category_is_flagged_and_queued() {
        let model = model();
        assert_eq!(
            model.codes.tables[0].allowed[0],
            ("Cat1".to_string(), vec!["U1".to_string()])
        );
        let raw = inventory(&["alpha zeta", "beta wet", "alpha wet wet wet"]);
        let options = ReviewOptions {
            id_column: "equipment_tag".into(),
            keep: Keep::All,
            review_below: 0.0,
        };
        let out = predict_inventory(&model, &raw, &Default::default(), &options).unwrap();
        let p = &out.predictions;
        let cat = column(p, "predicted_category_name").str().unwrap();
        let uni = column(p, "predicted_uniformat_code").str().unwrap();
        assert_eq!((cat.get(0), uni.get(0)), (Some("Cat1"), Some("U1")));
        assert_eq!((cat.get(1), uni.get(1)), (Some("Cat2"), Some("U2")));
        assert_eq!(
            (cat.get(2), uni.get(2)),
            (Some("Cat1"), Some("U2")),
            "the crafted row"
        );
        assert_eq!(bools(p, "codes_agree"), [true, true, false]);
        assert_eq!(bools(p, "needs_review"), [false, false, true]);
        // With review_below = 0 only the contradiction goes to review, with its reason.
        let q = &out.review;
        assert_eq!(q.height(), 1);
        assert_eq!(column(q, "row").u64().unwrap().get(0), Some(3));
        assert_eq!(column(q, "equipment_tag").str().unwrap().get(0), Some("new-2"));
        assert_eq!(
            column(q, "reason").str().unwrap().get(0),
            Some("uniformat_code U2 is not a code of Cat1 (training: U1)")
        );
        // Top-3 columns: the three most probable categories, most probable first.
        let second = column(p, "predicted_category_name_2_probability").f32().unwrap();
        let first = column(p, "predicted_category_name_probability").f32().unwrap();
        assert!((0..3).all(|i| first.get(i) >= second.get(i)));
        assert!(
            p.column("predicted_uniformat_code_3").is_ok(),
            "a 3rd rank even for 2 classes"
        );
        assert_eq!(
            column(p, "predicted_uniformat_code_3").str().unwrap().get(0),
            Some("")
        );
    }

    /// The queue holds exactly the rows below the threshold on some target (or with
    /// codes that disagree), least confident first.
    #[test]
    fn the_queue_holds_exactly_the_rows_under_the_threshold() {
        let model = model();
        let raw = inventory(&[
            "alpha",
            "beta gamma",
            "delta",
            "gamma delta beta",
            "nothing known here",
            "alpha beta",
        ]);
        for threshold in [0.0, 0.5, 0.7, 0.9, 1.0] {
            let options = ReviewOptions {
                id_column: "equipment_tag".into(),
                keep: Keep::Id,
                review_below: threshold,
            };
            let out = predict_inventory(&model, &raw, &Default::default(), &options).unwrap();
            let p = &out.predictions;
            let probs = |t: &str| -> Vec<f32> {
                column(p, &format!("{t}_probability"))
                    .f32()
                    .unwrap()
                    .into_no_null_iter()
                    .collect()
            };
            let (cat, uni) = (probs("category_name"), probs("uniformat_code"));
            let agree = bools(p, "codes_agree");
            let expected: Vec<u64> = (0..raw.height())
                .filter(|&i| f64::from(cat[i].min(uni[i])) < threshold || !agree[i])
                .map(|i| i as u64 + 1)
                .collect();
            let q = &out.review;
            let mut rows: Vec<u64> = column(q, "row").u64().unwrap().into_no_null_iter().collect();
            let confidence: Vec<f32> = column(q, "confidence")
                .f32()
                .unwrap()
                .into_no_null_iter()
                .collect();
            assert!(
                confidence.windows(2).all(|w| w[0] <= w[1]),
                "least confident first: {confidence:?}"
            );
            for (&r, &c) in rows.iter().zip(&confidence) {
                let i = r as usize - 1;
                assert_eq!(c, cat[i].min(uni[i]), "row {r}");
            }
            rows.sort_unstable();
            assert_eq!(rows, expected, "threshold {threshold}");
            let flagged = bools(p, "needs_review");
            assert_eq!(flagged.iter().filter(|&&f| f).count(), q.height());
            let reasons = strs(q, "reason");
            assert!(reasons.iter().all(|r| !r.is_empty()), "{reasons:?}");
            if threshold == 1.0 && q.height() > 0 {
                assert!(reasons[0].contains(" < 1.00"), "{}", reasons[0]);
            }
        }
    }

    #[test]
    fn the_review_file_sits_beside_the_predictions() {
        assert_eq!(
            review_path(Path::new("out/predictions.csv")),
            Path::new("out/predictions_review.csv")
        );
        assert_eq!(review_path(Path::new("preds")), Path::new("preds_review.csv"));
    }
}
