//! TF-IDF with scikit-learn's `TfidfVectorizer` semantics, so results compare one to one:
//! lower-case; tokens are runs of two or more word characters (`(?u)\b\w\w+\b`); word
//! n-grams joined by a space; `min_df`/`max_df` as counts or fractions; `max_features`
//! keeps the most frequent terms (by total count); vocabulary in alphabetical order; smooth
//! idf `ln((1+n)/(1+df)) + 1`; sublinear tf `1 + ln(tf)`; rows L2-normalised.

use super::sparse::Csr;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TextError {
    #[error("after pruning, no terms remain (min_df = {min_df}, max_df = {max_df}, {docs} documents); lower min_df or raise max_df")]
    EmptyVocabulary {
        min_df: String,
        max_df: String,
        docs: usize,
    },
    #[error("invalid TF-IDF settings: {0}")]
    Config(String),
    #[error("stopped before the vocabulary was counted (cancelled)")]
    Cancelled,
}

/// A document-frequency bound: a document count, or a fraction of the documents.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DocFreq {
    Count(usize),
    Fraction(f64),
}

impl std::fmt::Display for DocFreq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DocFreq::Count(c) => write!(f, "{c}"),
            DocFreq::Fraction(x) => write!(f, "{x}"),
        }
    }
}

impl DocFreq {
    /// The bound in documents, as scikit-learn computes it (a fraction times n, unrounded).
    fn limit(self, docs: usize) -> f64 {
        match self {
            DocFreq::Count(c) => c as f64,
            DocFreq::Fraction(x) => x * docs as f64,
        }
    }
}

/// TF-IDF settings (defaults: the Python NexusML model's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TfidfConfig {
    #[serde(default = "one")]
    pub ngram_min: usize,
    #[serde(default = "three")]
    pub ngram_max: usize,
    #[serde(default = "max_features")]
    pub max_features: Option<usize>,
    #[serde(default = "min_df")]
    pub min_df: DocFreq,
    #[serde(default = "max_df")]
    pub max_df: DocFreq,
    #[serde(default = "yes")]
    pub sublinear_tf: bool,
}

fn one() -> usize {
    1
}
fn three() -> usize {
    3
}
fn max_features() -> Option<usize> {
    Some(5000)
}
fn min_df() -> DocFreq {
    DocFreq::Count(2)
}
fn max_df() -> DocFreq {
    DocFreq::Fraction(0.9)
}
fn yes() -> bool {
    true
}

impl Default for TfidfConfig {
    fn default() -> Self {
        TfidfConfig {
            ngram_min: 1,
            ngram_max: 3,
            max_features: max_features(),
            min_df: min_df(),
            max_df: max_df(),
            sublinear_tf: true,
        }
    }
}

impl TfidfConfig {
    pub fn check(&self) -> Result<(), TextError> {
        if self.ngram_min == 0 || self.ngram_min > self.ngram_max {
            return Err(TextError::Config(format!(
                "n-gram range ({}, {}) must satisfy 1 <= min <= max",
                self.ngram_min, self.ngram_max
            )));
        }
        for (name, v) in [("min_df", self.min_df), ("max_df", self.max_df)] {
            if let DocFreq::Fraction(x) = v {
                if !(0.0..=1.0).contains(&x) {
                    return Err(TextError::Config(format!(
                        "{name} = {x}: a fraction must be within [0, 1]"
                    )));
                }
            }
        }
        if self.max_features == Some(0) {
            return Err(TextError::Config("max_features must be at least 1".into()));
        }
        Ok(())
    }
}

/// Lower-cased tokens of two or more word characters.
pub fn tokenize(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut tokens = Vec::new();
    let mut start = None;
    for (i, c) in lower.char_indices() {
        let word = c.is_alphanumeric() || c == '_';
        match (word, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                push_token(&lower[s..i], &mut tokens);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        push_token(&lower[s..], &mut tokens);
    }
    tokens
}

fn push_token(t: &str, tokens: &mut Vec<String>) {
    if t.chars().count() >= 2 {
        tokens.push(t.to_string());
    }
}

/// Call `f` with each n-gram of `tokens` (n in `lo..=hi`), reusing one buffer.
fn for_each_ngram(tokens: &[String], lo: usize, hi: usize, buf: &mut String, mut f: impl FnMut(&str)) {
    for n in lo..=hi {
        if n > tokens.len() {
            break;
        }
        for w in tokens.windows(n) {
            buf.clear();
            for (k, t) in w.iter().enumerate() {
                if k > 0 {
                    buf.push(' ');
                }
                buf.push_str(t);
            }
            f(buf);
        }
    }
}

/// A fitted vectorizer: vocabulary (term → column, alphabetical) and idf per column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tfidf {
    pub config: TfidfConfig,
    pub terms: Vec<String>,
    pub idf: Vec<f32>,
    #[serde(skip)]
    index: HashMap<String, u32>,
}

impl Tfidf {
    /// Learn the vocabulary and idf from `docs`.
    pub fn fit(docs: &[String], config: &TfidfConfig) -> Result<Tfidf, TextError> {
        Self::fit_until(docs, config, &AtomicBool::new(false))
    }

    /// [`Self::fit`], stopping with [`TextError::Cancelled`] once `stop` is set (checked
    /// every 1,024 documents: a few milliseconds).
    pub fn fit_until(docs: &[String], config: &TfidfConfig, stop: &AtomicBool) -> Result<Tfidf, TextError> {
        config.check()?;
        let n = docs.len();
        // term → (document frequency, total count)
        let mut stats: HashMap<String, (u32, u64)> = HashMap::new();
        let mut seen: HashMap<String, ()> = HashMap::new();
        let mut buf = String::new();
        for (i, doc) in docs.iter().enumerate() {
            if i % 1024 == 0 && stop.load(Ordering::Relaxed) {
                return Err(TextError::Cancelled);
            }
            seen.clear();
            let tokens = tokenize(doc);
            for_each_ngram(&tokens, config.ngram_min, config.ngram_max, &mut buf, |g| {
                let first = !seen.contains_key(g);
                if first {
                    seen.insert(g.to_string(), ());
                }
                match stats.get_mut(g) {
                    Some(s) => {
                        s.0 += u32::from(first);
                        s.1 += 1;
                    }
                    None => {
                        stats.insert(g.to_string(), (1, 1));
                    }
                }
            });
        }
        let (lo, hi) = (config.min_df.limit(n), config.max_df.limit(n));
        if hi < lo {
            return Err(TextError::Config(format!(
                "max_df ({}) corresponds to fewer documents than min_df ({})",
                config.max_df, config.min_df
            )));
        }
        let mut kept: Vec<(String, u32, u64)> = stats
            .into_iter()
            .filter(|(_, (df, _))| (*df as f64) >= lo && (*df as f64) <= hi)
            .map(|(t, (df, tf))| (t, df, tf))
            .collect();
        if let Some(limit) = config.max_features {
            if kept.len() > limit {
                // Most frequent first; ties in alphabetical order (a stable sort of the
                // alphabetical vocabulary, as scikit-learn's intent).
                kept.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
                kept.truncate(limit);
            }
        }
        if kept.is_empty() {
            return Err(TextError::EmptyVocabulary {
                min_df: config.min_df.to_string(),
                max_df: config.max_df.to_string(),
                docs: n,
            });
        }
        kept.sort_by(|a, b| a.0.cmp(&b.0));
        let idf = kept
            .iter()
            .map(|(_, df, _)| (((1 + n) as f64 / (1 + *df) as f64).ln() + 1.0) as f32)
            .collect();
        let terms: Vec<String> = kept.into_iter().map(|(t, _, _)| t).collect();
        let mut v = Tfidf {
            config: config.clone(),
            terms,
            idf,
            index: HashMap::new(),
        };
        v.build_index();
        Ok(v)
    }

    /// Rebuild the term lookup (after deserializing).
    pub fn build_index(&mut self) {
        self.index = self
            .terms
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
    }

    pub fn n_features(&self) -> usize {
        self.terms.len()
    }

    /// One document's (column, value) pairs, sorted by column.
    pub fn transform_one(&self, doc: &str, buf: &mut String) -> Vec<(u32, f32)> {
        let tokens = tokenize(doc);
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for_each_ngram(&tokens, self.config.ngram_min, self.config.ngram_max, buf, |g| {
            if let Some(&c) = self.index.get(g) {
                *counts.entry(c).or_insert(0) += 1;
            }
        });
        let mut row: Vec<(u32, f32)> = counts
            .into_iter()
            .map(|(c, tf)| {
                let tf = if self.config.sublinear_tf {
                    1.0 + (tf as f64).ln()
                } else {
                    tf as f64
                };
                (c, (tf * self.idf[c as usize] as f64) as f32)
            })
            .collect();
        row.sort_unstable_by_key(|e| e.0);
        let norm = row.iter().map(|e| (e.1 as f64).powi(2)).sum::<f64>().sqrt();
        if norm > 0.0 {
            for e in &mut row {
                e.1 = (e.1 as f64 / norm) as f32;
            }
        }
        row
    }

    /// Documents → sparse rows (parallel over documents; order kept).
    pub fn transform(&self, docs: &[String]) -> Csr {
        use rayon::prelude::*;
        let rows: Vec<Vec<(u32, f32)>> = docs
            .par_iter()
            .map_init(String::new, |buf, d| self.transform_one(d, buf))
            .collect();
        let mut m = Csr::new(self.n_features());
        for r in rows {
            m.push_row(r);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tokenizes_like_scikit_learn() {
        assert_eq!(
            tokenize("AHU-3 w/ VFD, 15,000 CFM a b"),
            ["ahu", "vfd", "15", "000", "cfm"]
        );
        assert_eq!(tokenize("Café_2 über"), ["café_2", "über"]);
    }

    #[test]
    fn values_match_hand_computation() {
        // Unigrams, no pruning, no sublinear tf: the textbook case.
        let cfg = TfidfConfig {
            ngram_min: 1,
            ngram_max: 1,
            max_features: None,
            min_df: DocFreq::Count(1),
            max_df: DocFreq::Fraction(1.0),
            sublinear_tf: false,
        };
        let d = docs(&["pump pump fan", "fan coil", "pump"]);
        let v = Tfidf::fit(&d, &cfg).unwrap();
        assert_eq!(v.terms, ["coil", "fan", "pump"]);
        // idf = ln(4 / (1 + df)) + 1
        let idf = |df: f64| (4.0f64 / (1.0 + df)).ln() + 1.0;
        assert!((v.idf[0] as f64 - idf(1.0)).abs() < 1e-6);
        assert!((v.idf[1] as f64 - idf(2.0)).abs() < 1e-6);
        let m = v.transform(&d);
        // Row 0: fan tf 1, pump tf 2 → (idf(2), 2 idf(2)) normalised.
        let (a, b) = (idf(2.0), 2.0 * idf(2.0));
        let norm = (a * a + b * b).sqrt();
        assert_eq!(m.row(0).0, [1, 2]);
        assert!((m.row(0).1[0] as f64 - a / norm).abs() < 1e-6);
        assert!((m.row(0).1[1] as f64 - b / norm).abs() < 1e-6);
        assert!((m.row(2).1[0] - 1.0).abs() < 1e-6, "a one-term row has norm 1");
    }

    #[test]
    fn sublinear_ngrams_and_pruning() {
        let d = docs(&["chw pump pump", "chw pump", "hw pump", "fan"]);
        let cfg = TfidfConfig {
            ngram_min: 1,
            ngram_max: 2,
            max_features: None,
            min_df: DocFreq::Count(2),
            max_df: DocFreq::Fraction(0.7),
            sublinear_tf: true,
        };
        let v = Tfidf::fit(&d, &cfg).unwrap();
        // df: chw 2, pump 3 (> 0.7 × 4 = 2.8: dropped), "chw pump" 2, hw 1, "pump pump" 1, fan 1.
        assert_eq!(v.terms, ["chw", "chw pump"]);
        let cfg = TfidfConfig {
            max_features: Some(1),
            max_df: DocFreq::Fraction(1.0),
            ..cfg
        };
        let v = Tfidf::fit(&d, &cfg).unwrap();
        assert_eq!(v.terms, ["pump"], "the most frequent term");
        // Sublinear: pump tf 2 in doc 0 → 1 + ln 2; a single term normalises to 1.
        assert!((v.transform(&d).row(0).1[0] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn empty_vocabulary_and_bad_settings_are_errors() {
        let e = Tfidf::fit(&docs(&["aa", "bb", "cc"]), &TfidfConfig::default()).unwrap_err();
        assert!(matches!(e, TextError::EmptyVocabulary { .. }), "{e}");
        let bad = TfidfConfig {
            ngram_min: 3,
            ngram_max: 1,
            ..TfidfConfig::default()
        };
        assert!(Tfidf::fit(&docs(&["x"]), &bad)
            .unwrap_err()
            .to_string()
            .contains("n-gram range"));
        let bad = TfidfConfig {
            max_df: DocFreq::Fraction(1.5),
            ..TfidfConfig::default()
        };
        assert!(Tfidf::fit(&docs(&["x"]), &bad)
            .unwrap_err()
            .to_string()
            .contains("within [0, 1]"));
    }
}
