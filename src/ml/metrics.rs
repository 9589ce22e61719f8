//! Classification metrics, as scikit-learn computes them: labels are the union of those in
//! the truth and the predictions (sorted), and a class with no prediction or no support
//! scores 0 rather than failing (`zero_division=0`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Precision, recall, F1 and support of one class.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassReport {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

/// How the model does on the catch-all class ("Other"), when the labels have one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OtherAnalysis {
    pub label: String,
    /// Fraction of true "Other" rows predicted "Other".
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub false_positives: usize,
    pub false_negatives: usize,
    /// (true label, text) of rows wrongly predicted "Other" (first few).
    pub false_positive_examples: Vec<(String, String)>,
    /// (predicted label, text) of "Other" rows predicted as something else (first few).
    pub false_negative_examples: Vec<(String, String)>,
}

/// Everything measured for one target.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TargetMetrics {
    pub target: String,
    /// Rows scored: those with a label for this target.
    pub rows: usize,
    /// Rows left out of the scores because their label cell is empty (still predicted).
    #[serde(default)]
    pub unlabelled_rows: usize,
    /// Classes the model learned for this target (0 when not known).
    #[serde(default)]
    pub trained_classes: usize,
    /// What makes these numbers mean less than they seem (e.g. a single class).
    // Never `skip_serializing_if` in a stored type: MessagePack stores structs as
    // arrays, so a skipped field shifts the ones after it (ops/artifacts.rs tests this).
    #[serde(default)]
    pub warnings: Vec<String>,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub weighted_f1: f64,
    pub per_class: Vec<ClassReport>,
    /// Row = true label, column = predicted label, both in `labels` order.
    pub labels: Vec<String>,
    pub confusion: Vec<Vec<u64>>,
    pub other: Option<OtherAnalysis>,
    /// Whether the probabilities mean what they say (when the model gives them).
    #[serde(default)]
    pub calibration: Option<CalibrationReport>,
}

/// How well a target's top probability matches how often it is right.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CalibrationReport {
    /// How the probabilities are made (a calibrator, the forest's votes, …).
    pub method: String,
    /// Expected calibration error of the top label ([`crate::ml::calibration::ECE_BINS`] bins).
    pub ece: f64,
    /// Multi-class Brier score (0 perfect, 2 worst).
    pub brier: f64,
    /// Mean top probability.
    pub mean_confidence: f64,
    /// For thresholds 0.50 … 0.95: the share of rows at or above it and their accuracy.
    pub coverage: Vec<crate::ml::calibration::CoverageRow>,
}

/// How often the predicted codes contradict the predicted category (see
/// [`crate::ml::codes`]), on the rows labelled for the category and every code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CodeAgreement {
    pub category: String,
    pub codes: Vec<String>,
    pub rows: usize,
    /// Rows whose predicted codes are not among their predicted category's.
    pub disagreeing_rows: usize,
    pub share: f64,
    /// Of those rows, the share with the category and every code right.
    pub all_right_when_disagreeing: f64,
    /// Of the other rows, the share with the category and every code right.
    pub all_right_when_agreeing: f64,
    /// Rows whose true labels already contradict the training pairs (new pairs, or noise).
    pub true_labels_disagreeing: usize,
}

/// Every target's metrics, their means, and the terms each forest leans on most.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EvaluationReport {
    /// Rows of the evaluated table (each target scores its labelled ones).
    pub rows: usize,
    pub mean_accuracy: f64,
    pub mean_macro_f1: f64,
    pub targets: Vec<TargetMetrics>,
    /// Target → (term, importance), most important first.
    pub top_terms: Vec<(String, Vec<(String, f64)>)>,
    /// What makes the whole evaluation mean less (its rows are training rows).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The learner of the evaluated model (`linear_svc`, `logistic`, `forest`).
    #[serde(default)]
    pub learner: String,
    /// How often predicted codes contradict the predicted category (a model with a code
    /// book only).
    #[serde(default)]
    pub code_agreement: Option<CodeAgreement>,
}

impl EvaluationReport {
    /// The report over a table of `rows` rows; adds each target's warnings.
    pub fn new(
        rows: usize,
        mut targets: Vec<TargetMetrics>,
        top_terms: Vec<(String, Vec<(String, f64)>)>,
    ) -> Self {
        for t in &mut targets {
            t.warnings = t.warnings_found();
        }
        let n = targets.len().max(1) as f64;
        EvaluationReport {
            rows,
            mean_accuracy: targets.iter().map(|t| t.accuracy).sum::<f64>() / n,
            mean_macro_f1: targets.iter().map(|t| t.macro_f1).sum::<f64>() / n,
            targets,
            top_terms,
            warnings: Vec::new(),
            learner: String::new(),
            code_agreement: None,
        }
    }

    /// `target  accuracy  macro-F1  weighted-F1  classes` as a text table.
    pub fn table(&self) -> String {
        let w = self
            .targets
            .iter()
            .map(|t| t.target.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let mut s = format!(
            "{:<w$}  {:>8}  {:>8}  {:>11}  {:>6}  {:>6}  {:>7}  {:>6}\n",
            "target", "accuracy", "macro-F1", "weighted-F1", "ECE", "Brier", "classes", "scored"
        );
        let cal = |t: &TargetMetrics, f: fn(&CalibrationReport) -> f64| {
            t.calibration
                .as_ref()
                .map_or("-".to_string(), |c| format!("{:.4}", f(c)))
        };
        for t in &self.targets {
            s.push_str(&format!(
                "{:<w$}  {:>8.4}  {:>8.4}  {:>11.4}  {:>6}  {:>6}  {:>7}  {:>6}{}\n",
                t.target,
                t.accuracy,
                t.macro_f1,
                t.weighted_f1,
                cal(t, |c| c.ece),
                cal(t, |c| c.brier),
                t.labels.len(),
                t.rows,
                if t.unlabelled_rows > 0 {
                    format!(" (+{} unlabelled, not scored)", t.unlabelled_rows)
                } else {
                    String::new()
                }
            ));
        }
        s.push_str(&format!(
            "{:<w$}  {:>8.4}  {:>8.4}",
            "mean", self.mean_accuracy, self.mean_macro_f1
        ));
        s
    }
}

impl TargetMetrics {
    /// What a reader of these numbers must know: a model with a single class scores 1.0
    /// on rows of that class whatever they are; nothing scored means no number at all.
    fn warnings_found(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.trained_classes == 1 {
            w.push(format!(
                "target `{}`: the model learned a single class, so it predicts it for every row; \
                 its accuracy and F1 say nothing about the model",
                self.target
            ));
        }
        if self.rows == 0 {
            w.push(format!(
                "target `{}`: no evaluated row has a label; its scores are 0 by convention",
                self.target
            ));
        }
        w
    }
}

/// Compare predictions with the truth. `texts` (the model's input per row) feed the
/// "Other" examples.
pub fn evaluate(target: &str, truth: &[String], pred: &[String], texts: Option<&[String]>) -> TargetMetrics {
    assert_eq!(truth.len(), pred.len(), "truth and predictions differ in length");
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for l in truth.iter().chain(pred) {
        index.entry(l.as_str()).or_insert(0);
    }
    let labels: Vec<String> = index.keys().map(|s| s.to_string()).collect();
    for (i, v) in index.values_mut().enumerate() {
        *v = i;
    }
    let k = labels.len();
    let mut confusion = vec![vec![0u64; k]; k];
    for (t, p) in truth.iter().zip(pred) {
        confusion[index[t.as_str()]][index[p.as_str()]] += 1;
    }
    let n = truth.len();
    let correct: u64 = (0..k).map(|i| confusion[i][i]).sum();
    let per_class: Vec<ClassReport> = (0..k)
        .map(|c| {
            let tp = confusion[c][c] as f64;
            let support: u64 = confusion[c].iter().sum();
            let predicted: u64 = (0..k).map(|r| confusion[r][c]).sum();
            let precision = ratio(tp, predicted as f64);
            let recall = ratio(tp, support as f64);
            ClassReport {
                label: labels[c].clone(),
                precision,
                recall,
                f1: f1(precision, recall),
                support: support as usize,
            }
        })
        .collect();
    let macro_f1 = if k == 0 {
        0.0
    } else {
        per_class.iter().map(|c| c.f1).sum::<f64>() / k as f64
    };
    let weighted_f1 = ratio(per_class.iter().map(|c| c.f1 * c.support as f64).sum(), n as f64);
    let other = labels
        .iter()
        .position(|l| l.eq_ignore_ascii_case("other"))
        .map(|o| other_analysis(&labels[o], truth, pred, texts, &per_class[o]));
    TargetMetrics {
        target: target.to_string(),
        rows: n,
        unlabelled_rows: 0,
        trained_classes: 0,
        warnings: Vec::new(),
        accuracy: ratio(correct as f64, n as f64),
        macro_f1,
        weighted_f1,
        per_class,
        labels,
        confusion,
        other,
        calibration: None,
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        a / b
    }
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

fn other_analysis(
    label: &str,
    truth: &[String],
    pred: &[String],
    texts: Option<&[String]>,
    report: &ClassReport,
) -> OtherAnalysis {
    let text = |i: usize| texts.and_then(|t| t.get(i)).cloned().unwrap_or_default();
    let mut fp = Vec::new();
    let mut fn_ = Vec::new();
    let (mut n_fp, mut n_fn) = (0, 0);
    for (i, (t, p)) in truth.iter().zip(pred).enumerate() {
        if p == label && t != label {
            n_fp += 1;
            if fp.len() < 5 {
                fp.push((t.clone(), text(i)));
            }
        } else if t == label && p != label {
            n_fn += 1;
            if fn_.len() < 5 {
                fn_.push((p.clone(), text(i)));
            }
        }
    }
    OtherAnalysis {
        label: label.to_string(),
        accuracy: report.recall,
        precision: report.precision,
        recall: report.recall,
        f1: report.f1,
        false_positives: n_fp,
        false_negatives: n_fn,
        false_positive_examples: fp,
        false_negative_examples: fn_,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn matches_scikit_learn_on_a_small_case() {
        // scikit-learn 1.x prints: accuracy 0.6, macro F1 0.43333333333333335, weighted F1 0.52.
        let truth = s(&["a", "a", "b", "b", "c"]);
        let pred = s(&["a", "b", "b", "b", "a"]);
        let m = evaluate("t", &truth, &pred, None);
        assert!((m.accuracy - 0.6).abs() < 1e-12);
        // a: p=1/2 r=1/2 f=0.5; b: p=2/3 r=1 f=0.8; c: p=0 r=0 f=0.
        assert!((m.macro_f1 - 0.433_333_333_333_333_35).abs() < 1e-12);
        assert!((m.weighted_f1 - 0.52).abs() < 1e-12);
        assert_eq!(m.labels, ["a", "b", "c"]);
        assert_eq!(m.confusion, vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 0]]);
        assert_eq!(m.per_class[1].support, 2);
    }

    #[test]
    fn labels_only_predicted_count_in_macro_f1() {
        let m = evaluate("t", &s(&["a", "a"]), &s(&["a", "z"]), None);
        assert_eq!(m.labels, ["a", "z"]);
        // a: p=1 r=0.5 f=2/3; z: p=0 r=0 (no support) f=0. scikit-learn: 0.3333333333333333.
        assert!((m.macro_f1 - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn other_class_analysis() {
        let truth = s(&["Other", "Other", "Pump", "Fan"]);
        let pred = s(&["Other", "Pump", "Other", "Fan"]);
        let texts = s(&["misc", "odd pump", "chw pump", "ef-1"]);
        let m = evaluate("t", &truth, &pred, Some(&texts));
        let o = m.other.unwrap();
        assert_eq!(o.false_positives, 1);
        assert_eq!(o.false_negatives, 1);
        assert_eq!(
            o.false_positive_examples,
            [("Pump".to_string(), "chw pump".to_string())]
        );
        assert_eq!(
            o.false_negative_examples,
            [("Pump".to_string(), "odd pump".to_string())]
        );
        assert!((o.accuracy - 0.5).abs() < 1e-12);
        assert!(evaluate("t", &s(&["a"]), &s(&["a"]), None).other.is_none());
    }
}
