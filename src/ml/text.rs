//! TF-IDF with scikit-learn's `TfidfVectorizer` semantics, so results compare one to one:
//! lower-case; with `analyzer = "word"`, tokens are runs of two or more word characters
//! (`(?u)\b\w\w+\b`) and n-grams are tokens joined by a space; with `"char_wb"`,
//! character n-grams inside each whitespace-separated word padded with a space (as
//! scikit-learn's `char_wb`); `min_df`/`max_df` as counts or fractions; `max_features`
//! keeps the most frequent terms (by total count); vocabulary in alphabetical order; smooth
//! idf `ln((1+n)/(1+df)) + 1`; sublinear tf `1 + ln(tf)`; rows L2-normalised.
//!
//! A `char_wb` block can also sit beside the main block (`char_wb = { … }`): a second
//! vocabulary fitted on the same documents with the same document-frequency settings,
//! its columns after the main block's, each block L2-normalised on its own (as
//! scikit-learn's `FeatureUnion` of two vectorizers).

use super::sparse::Csr;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The Fx hash (rustc's): a multiply and a rotate per 8 bytes. The vocabulary's keys are
/// short n-grams the program made itself, so a DoS-resistant hash buys nothing here, and
/// SipHash was most of the time of a term lookup.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A term → column map with the Fx hash.
type TermMap<V> = HashMap<String, V, BuildHasherDefault<FxHasher>>;
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

/// What the terms of a block are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Analyzer {
    /// Word n-grams (scikit-learn's `analyzer="word"`).
    #[default]
    Word,
    /// Character n-grams within space-padded words (scikit-learn's `analyzer="char_wb"`).
    CharWb,
}

/// A block of `char_wb` n-grams beside the main block; document-frequency pruning and
/// sublinear tf are the main block's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CharBlock {
    #[serde(default = "two")]
    pub ngram_min: usize,
    #[serde(default = "five")]
    pub ngram_max: usize,
    #[serde(default = "char_max_features")]
    pub max_features: Option<usize>,
    /// `false`: no block after all, so a pipeline can switch it with a parameter
    /// (`char_wb = { enabled = "${char_wb}", … }`). Last, so model files written before
    /// it existed still read (as enabled).
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for CharBlock {
    fn default() -> Self {
        CharBlock {
            ngram_min: 2,
            ngram_max: 5,
            max_features: char_max_features(),
            enabled: true,
        }
    }
}

/// Largest n in an n-gram range. Word 4-grams and character 6-grams are already nearly
/// unique per document on inventory text; 16 leaves room for any real use while keeping
/// one document's term count (and the fit's memory) proportional to its length.
pub const MAX_NGRAM: usize = 16;
/// Largest `max_features`: a million terms. Each term costs its string and idf, and a
/// weight per class in a linear model (84 classes × 4 bytes × 1 M = 336 MB), so more is
/// never useful on inventories; scikit-learn's hashing default (2²⁰) is the same size.
pub const MAX_FEATURES: usize = 1_000_000;

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
    /// The main block's terms. Last (with `char_wb`), so model files written before they
    /// existed still read (as `word`, no second block).
    #[serde(default)]
    pub analyzer: Analyzer,
    /// An optional `char_wb` block beside the main one.
    #[serde(default)]
    pub char_wb: Option<CharBlock>,
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
fn two() -> usize {
    2
}
fn five() -> usize {
    5
}
fn char_max_features() -> Option<usize> {
    Some(20_000)
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
            analyzer: Analyzer::Word,
            char_wb: None,
        }
    }
}

/// `lo..=hi` within `1..=MAX_NGRAM`, and `max_features` within `1..=MAX_FEATURES`.
fn check_block(what: &str, lo: usize, hi: usize, max_features: Option<usize>) -> Result<(), TextError> {
    if lo == 0 || lo > hi || hi > MAX_NGRAM {
        return Err(TextError::Config(format!(
            "{what}n-gram range ({lo}, {hi}) must satisfy 1 <= min <= max <= {MAX_NGRAM}"
        )));
    }
    if let Some(m) = max_features {
        if m == 0 || m > MAX_FEATURES {
            return Err(TextError::Config(format!(
                "{what}max_features = {m} must be within 1..={MAX_FEATURES}"
            )));
        }
    }
    Ok(())
}

impl TfidfConfig {
    /// The same settings with a switched-off `char_wb` block dropped (what a model stores).
    pub fn normalized(mut self) -> Self {
        if self.char_wb.as_ref().is_some_and(|b| !b.enabled) {
            self.char_wb = None;
        }
        self
    }

    pub fn check(&self) -> Result<(), TextError> {
        check_block("", self.ngram_min, self.ngram_max, self.max_features)?;
        if let Some(b) = self.char_wb.as_ref().filter(|b| b.enabled) {
            check_block("char_wb block: ", b.ngram_min, b.ngram_max, b.max_features)?;
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
        Ok(())
    }
}

/// Lower-cased tokens of two or more word characters.
pub fn tokenize(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut tokens = Vec::new();
    token_spans(&lower, &mut tokens);
    tokens.into_iter().map(str::to_string).collect()
}

/// The tokens of an already lower-cased text, as slices of it.
fn token_spans<'a>(lower: &'a str, tokens: &mut Vec<&'a str>) {
    let mut start = None;
    let mut push = |t: &'a str| {
        // Two or more characters: a one-byte token is one character.
        if t.len() >= 2 && (t.len() > 4 || t.chars().nth(1).is_some()) {
            tokens.push(t);
        }
    };
    for (i, c) in lower.char_indices() {
        let word = c.is_alphanumeric() || c == '_';
        match (word, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                push(&lower[s..i]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        push(&lower[s..]);
    }
}

/// Call `f` with each n-gram of `tokens` (n in `lo..=hi`), reusing one buffer.
fn for_each_ngram(tokens: &[&str], lo: usize, hi: usize, buf: &mut String, mut f: impl FnMut(&str)) {
    for n in lo..=hi {
        if n > tokens.len() {
            break;
        }
        if n == 1 {
            // A unigram is the token itself: no copy.
            tokens.iter().for_each(|t| f(t));
            continue;
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

/// Python's `str.split()` whitespace: Unicode White_Space plus the four ASCII
/// information separators (U+001C..U+001F), which Python also splits on.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Call `f` with each `char_wb` n-gram of `doc` (n in `lo..=hi`), as scikit-learn's
/// `_char_wb_ngrams`: lower-case, split on whitespace, pad each word with one space on
/// each side, and take its character n-grams. A padded word of at most n characters is
/// emitted once, whole, and larger n are skipped for it.
fn for_each_char_wb(doc: &str, lo: usize, hi: usize, buf: &mut String, mut f: impl FnMut(&str)) {
    let lower = doc.to_lowercase();
    let mut at: Vec<usize> = Vec::new();
    for word in lower.split(is_py_space).filter(|w| !w.is_empty()) {
        buf.clear();
        buf.push(' ');
        buf.push_str(word);
        buf.push(' ');
        at.clear();
        at.extend(buf.char_indices().map(|(i, _)| i));
        at.push(buf.len());
        let len = at.len() - 1;
        for n in lo..=hi {
            if n >= len {
                f(buf);
                break;
            }
            for start in 0..=len - n {
                f(&buf[at[start]..at[start + n]]);
            }
        }
    }
}

/// Call `f` with each term of `doc` the analyzer makes for n in `lo..=hi`.
fn for_each_term(analyzer: Analyzer, doc: &str, lo: usize, hi: usize, buf: &mut String, f: impl FnMut(&str)) {
    match analyzer {
        Analyzer::Word => {
            let lower = doc.to_lowercase();
            let mut tokens = Vec::new();
            token_spans(&lower, &mut tokens);
            for_each_ngram(&tokens, lo, hi, buf, f)
        }
        Analyzer::CharWb => for_each_char_wb(doc, lo, hi, buf, f),
    }
}

/// What one block's terms are made of.
#[derive(Clone, Copy)]
struct BlockSpec {
    analyzer: Analyzer,
    lo: usize,
    hi: usize,
    max_features: Option<usize>,
}

/// A fitted vectorizer: vocabulary (term → column, alphabetical within a block) and idf
/// per column. With a `char_wb` block, its terms follow the main block's in `terms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tfidf {
    pub config: TfidfConfig,
    pub terms: Vec<String>,
    pub idf: Vec<f32>,
    #[serde(skip)]
    index: TermMap<u32>,
    /// The first column of the `char_wb` block, when there is one. Last, so model files
    /// written before it existed still read (as one block).
    #[serde(default)]
    pub second_block: Option<usize>,
    #[serde(skip)]
    second_index: TermMap<u32>,
}

/// One block's vocabulary and idf, fitted on `docs`.
fn fit_block(
    docs: &[String],
    spec: BlockSpec,
    config: &TfidfConfig,
    stop: &AtomicBool,
) -> Result<(Vec<String>, Vec<f32>), TextError> {
    let n = docs.len();
    // Each distinct term once (its id), then per id: document frequency, total count, and
    // the last document it was counted in (so a document counts once in its df).
    let mut ids: TermMap<u32> = TermMap::default();
    let mut stats: Vec<(u32, u64, u32)> = Vec::new();
    let mut buf = String::new();
    for (d, doc) in docs.iter().enumerate() {
        if d % 1024 == 0 && stop.load(Ordering::Relaxed) {
            return Err(TextError::Cancelled);
        }
        let d = d as u32;
        for_each_term(spec.analyzer, doc, spec.lo, spec.hi, &mut buf, |g| {
            let id = match ids.get(g) {
                Some(&id) => id,
                None => {
                    let id = stats.len() as u32;
                    ids.insert(g.to_string(), id);
                    stats.push((0, 0, u32::MAX));
                    id
                }
            };
            let s = &mut stats[id as usize];
            s.1 += 1;
            if s.2 != d {
                s.0 += 1;
                s.2 = d;
            }
        });
    }
    let stats: Vec<(String, (u32, u64))> = ids
        .into_iter()
        .map(|(t, id)| {
            let (df, tf, _) = stats[id as usize];
            (t, (df, tf))
        })
        .collect();
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
    if let Some(limit) = spec.max_features {
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
    Ok((terms, idf))
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
        let (mut terms, mut idf) = fit_block(docs, Self::main_spec(config), config, stop)?;
        let mut second_block = None;
        if let Some(spec) = Self::second_spec(config) {
            let (t, i) = fit_block(docs, spec, config, stop)?;
            second_block = Some(terms.len());
            terms.extend(t);
            idf.extend(i);
        }
        let mut v = Tfidf {
            config: config.clone(),
            terms,
            idf,
            index: TermMap::default(),
            second_block,
            second_index: TermMap::default(),
        };
        v.build_index();
        Ok(v)
    }

    fn main_spec(config: &TfidfConfig) -> BlockSpec {
        BlockSpec {
            analyzer: config.analyzer,
            lo: config.ngram_min,
            hi: config.ngram_max,
            max_features: config.max_features,
        }
    }

    fn second_spec(config: &TfidfConfig) -> Option<BlockSpec> {
        config.char_wb.as_ref().filter(|b| b.enabled).map(|b| BlockSpec {
            analyzer: Analyzer::CharWb,
            lo: b.ngram_min,
            hi: b.ngram_max,
            max_features: b.max_features,
        })
    }

    /// The main block's columns, then the second block's.
    fn block_ranges(&self) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let split = self
            .second_block
            .unwrap_or(self.terms.len())
            .min(self.terms.len());
        (0..split, split..self.terms.len())
    }

    /// Rebuild the term lookups (after deserializing).
    pub fn build_index(&mut self) {
        let (main, second) = self.block_ranges();
        let lookup = |r: std::ops::Range<usize>| -> TermMap<u32> {
            r.map(|i| (self.terms[i].clone(), i as u32)).collect()
        };
        self.index = lookup(main);
        self.second_index = lookup(second);
    }

    pub fn n_features(&self) -> usize {
        self.terms.len()
    }

    /// One document's (column, value) pairs, sorted by column.
    pub fn transform_one(&self, doc: &str, buf: &mut String) -> Vec<(u32, f32)> {
        let mut row = self.block_row(doc, Self::main_spec(&self.config), &self.index, buf);
        if let Some(spec) = Self::second_spec(&self.config) {
            row.extend(self.block_row(doc, spec, &self.second_index, buf));
        }
        row
    }

    /// One block's (column, value) pairs for a document, sorted and L2-normalised.
    fn block_row(
        &self,
        doc: &str,
        spec: BlockSpec,
        index: &TermMap<u32>,
        buf: &mut String,
    ) -> Vec<(u32, f32)> {
        // The columns of the document's terms, sorted: each run is one term's count.
        let mut cols: Vec<u32> = Vec::new();
        for_each_term(spec.analyzer, doc, spec.lo, spec.hi, buf, |g| {
            if let Some(&c) = index.get(g) {
                cols.push(c);
            }
        });
        cols.sort_unstable();
        let mut row: Vec<(u32, f32)> = Vec::with_capacity(cols.len());
        for run in cols.chunk_by(|a, b| a == b) {
            let (c, tf) = (run[0], run.len());
            let tf = if self.config.sublinear_tf {
                1.0 + (tf as f64).ln()
            } else {
                tf as f64
            };
            row.push((c, (tf * self.idf[c as usize] as f64) as f32));
        }
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
            ..TfidfConfig::default()
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
            ..TfidfConfig::default()
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

    fn char_wb(lo: usize, hi: usize, min_df: usize) -> TfidfConfig {
        TfidfConfig {
            ngram_min: lo,
            ngram_max: hi,
            max_features: None,
            min_df: DocFreq::Count(min_df),
            max_df: DocFreq::Fraction(1.0),
            sublinear_tf: true,
            analyzer: Analyzer::CharWb,
            char_wb: None,
        }
    }

    #[test]
    fn char_wb_ngrams_are_scikit_learns() {
        // scikit-learn 1.9.1: TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5))
        // .build_analyzer()("a bc  déf"). " a " and " bc " are emitted once, at the first n
        // that covers the padded word, and not again for larger n.
        let mut got = Vec::new();
        for_each_char_wb("a bc  déf", 3, 5, &mut String::new(), |g| {
            got.push(g.to_string())
        });
        assert_eq!(
            got,
            [" a ", " bc", "bc ", " bc ", " dé", "déf", "éf ", " déf", "déf ", " déf "]
        );
        // Tabs, newlines and Python's information separators split words too.
        let mut got = Vec::new();
        for_each_char_wb("Ab\tC\u{1f}d", 2, 2, &mut String::new(), |g| {
            got.push(g.to_string())
        });
        assert_eq!(got, [" a", "ab", "b ", " c", "c ", " d", "d "]);
    }

    #[test]
    fn char_wb_vocabulary_and_weights_match_scikit_learn() {
        // scikit-learn 1.9.1: TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3),
        // min_df=2, max_df=1.0, sublinear_tf=True) on these four documents.
        let d = docs(&[
            "AHU-3  w/ VFD",
            "Pump P-1\tchilled water",
            "Café fan a",
            "pump FAN coil ahu",
        ]);
        let v = Tfidf::fit(&d, &char_wb(2, 3, 2)).unwrap();
        let want = [
            " a", " ah", " c", " f", " fa", " p", " pu", " w", "ah", "ahu", "an", "an ", "d ", "fa", "fan",
            "hu", "il", "mp", "mp ", "n ", "p ", "pu", "pum", "um", "ump",
        ];
        assert_eq!(v.terms, want);
        for (t, &idf) in v.terms.iter().zip(&v.idf) {
            let expected = if t == " a" || t == " c" {
                1.2231435513142097
            } else {
                1.5108256237659907
            };
            assert!((idf as f64 - expected).abs() < 1e-6, "{t}: {idf}");
        }
        let m = v.transform(&d);
        let col = |t: &str| want.iter().position(|w| *w == t).unwrap() as u32;
        for (row, term, weight) in [
            (0, " a", 0.31381596566960895),
            (0, "ahu", 0.3876251496164068),
            (0, "d ", 0.3876251496164068),
            (2, " a", 0.2808278117090961),
            (2, "an ", 0.3468782166576953),
            (2, "n ", 0.3468782166576953),
        ] {
            let got = m.get(row, col(term)) as f64;
            assert!(
                (got - weight).abs() < 1e-6,
                "row {row} {term:?}: {got} vs {weight}"
            );
        }
        assert_eq!(m.row(0).0.len(), 7, "row 0 has scikit-learn's 7 terms");
        assert_eq!(m.row(2).0.len(), 9, "row 2 has scikit-learn's 9 terms");
    }

    #[test]
    fn a_char_wb_block_beside_the_word_block() {
        let d = docs(&["chw pump pump", "chw pump", "hw pump", "fan"]);
        let word = TfidfConfig {
            ngram_max: 1,
            min_df: DocFreq::Count(1),
            max_df: DocFreq::Fraction(1.0),
            ..TfidfConfig::default()
        };
        let both = TfidfConfig {
            char_wb: Some(CharBlock {
                ngram_min: 2,
                ngram_max: 3,
                max_features: Some(6),
                enabled: true,
            }),
            ..word.clone()
        };
        // A block switched off is no block.
        let off = TfidfConfig {
            char_wb: Some(CharBlock {
                enabled: false,
                ..CharBlock::default()
            }),
            ..word.clone()
        };
        assert_eq!(
            Tfidf::fit(&d, &off).unwrap().terms,
            Tfidf::fit(&d, &word).unwrap().terms
        );
        assert_eq!(Tfidf::fit(&d, &off).unwrap().second_block, None);
        let (w, b) = (Tfidf::fit(&d, &word).unwrap(), Tfidf::fit(&d, &both).unwrap());
        let alone = Tfidf::fit(
            &d,
            &TfidfConfig {
                max_features: Some(6),
                ..char_wb(2, 3, 1)
            },
        )
        .unwrap();
        assert_eq!(b.second_block, Some(w.n_features()));
        assert_eq!(b.n_features(), w.n_features() + 6);
        assert_eq!(&b.terms[..w.n_features()], &w.terms[..]);
        assert_eq!(&b.terms[w.n_features()..], &alone.terms[..]);
        let (mw, mb, ma) = (w.transform(&d), b.transform(&d), alone.transform(&d));
        let shift = w.n_features() as u32;
        for i in 0..d.len() {
            // Each block is the lone vectorizer's row, normalised on its own.
            let (idx, vals) = mb.row(i);
            let split = idx.iter().position(|&c| c >= shift).unwrap_or(idx.len());
            assert_eq!((&idx[..split], &vals[..split]), mw.row(i));
            let right: Vec<u32> = idx[split..].iter().map(|c| c - shift).collect();
            assert_eq!((&right[..], &vals[split..]), (ma.row(i).0, ma.row(i).1));
        }
        // A stored vectorizer rebuilds both lookups.
        let mut back: Tfidf = rmp_serde::from_slice(&rmp_serde::to_vec(&b).unwrap()).unwrap();
        back.build_index();
        assert_eq!(back, b);
        assert_eq!(back.transform(&d), mb);
    }

    #[test]
    fn size_settings_are_bounded() {
        let d = TfidfConfig::default();
        for (cfg, want) in [
            (
                TfidfConfig {
                    ngram_max: 17,
                    ..d.clone()
                },
                "<= 16",
            ),
            (
                TfidfConfig {
                    ngram_min: 0,
                    ..d.clone()
                },
                "1 <= min",
            ),
            (
                TfidfConfig {
                    max_features: Some(0),
                    ..d.clone()
                },
                "1..=1000000",
            ),
            (
                TfidfConfig {
                    max_features: Some(1_000_001),
                    ..d.clone()
                },
                "1..=1000000",
            ),
            (
                TfidfConfig {
                    max_df: DocFreq::Fraction(f64::NAN),
                    ..d.clone()
                },
                "within [0, 1]",
            ),
            (
                TfidfConfig {
                    char_wb: Some(CharBlock {
                        ngram_max: 40,
                        ..CharBlock::default()
                    }),
                    ..d.clone()
                },
                "char_wb block: n-gram range (2, 40)",
            ),
            (
                TfidfConfig {
                    char_wb: Some(CharBlock {
                        max_features: Some(0),
                        ..CharBlock::default()
                    }),
                    ..d.clone()
                },
                "char_wb block: max_features = 0",
            ),
        ] {
            let e = cfg.check().unwrap_err().to_string();
            assert!(e.contains(want), "{e} should contain {want}");
        }
        TfidfConfig {
            ngram_max: MAX_NGRAM,
            max_features: Some(MAX_FEATURES),
            ..d
        }
        .check()
        .unwrap();
    }
}
