//! Codes that agree: which codes (Uniformat, MCAA system, …) each category takes in the
//! training rows, and whether a row's predicted codes are among its predicted category's.
//!
//! A model predicts each target on its own, so a row can come out as a chiller with a
//! plumbing Uniformat code. Such a row is wrong somewhere; the prediction table flags it
//! and the review queue says which code disagrees.

use serde::{Deserialize, Serialize};

/// Which target is the category and which targets are its codes (`model.train { codes }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodesConfig {
    /// The category target; empty: no check.
    #[serde(default = "category")]
    pub category: String,
    /// The code targets checked against it.
    #[serde(default = "codes")]
    pub codes: Vec<String>,
}

fn category() -> String {
    "category_name".into()
}
fn codes() -> Vec<String> {
    vec!["uniformat_code".into(), "mcaa_system_category".into()]
}

impl Default for CodesConfig {
    fn default() -> Self {
        CodesConfig {
            category: category(),
            codes: codes(),
        }
    }
}

/// The codes one code target takes per category in the training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeTable {
    /// The code target (`uniformat_code`).
    pub target: String,
    /// (category, the codes seen with it, sorted), sorted by category.
    pub allowed: Vec<(String, Vec<String>)>,
}

/// What [`CodeBook::check`] found for one row: the code target, the code predicted,
/// and the codes the predicted category takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    pub target: String,
    pub code: String,
    pub allowed: Vec<String>,
}

/// Every code table of a model, against one category target.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CodeBook {
    /// The category target; empty when there are no tables.
    pub category: String,
    pub tables: Vec<CodeTable>,
}

impl CodeBook {
    /// Learn from labelled rows: `category[i]` and, per code target, `codes[t][i]`. Rows
    /// with an empty category or code are left out of that pair.
    pub fn learn(category: &str, categories: &[String], codes: &[(String, Vec<String>)]) -> CodeBook {
        let tables = codes
            .iter()
            .map(|(target, values)| {
                let mut pairs: Vec<(&str, &str)> = categories
                    .iter()
                    .zip(values)
                    .filter(|(c, v)| !c.trim().is_empty() && !v.trim().is_empty())
                    .map(|(c, v)| (c.as_str(), v.as_str()))
                    .collect();
                pairs.sort_unstable();
                pairs.dedup();
                let mut allowed: Vec<(String, Vec<String>)> = Vec::new();
                for (c, v) in pairs {
                    match allowed.last_mut() {
                        Some((last, vs)) if last == c => vs.push(v.to_string()),
                        _ => allowed.push((c.to_string(), vec![v.to_string()])),
                    }
                }
                CodeTable {
                    target: target.clone(),
                    allowed,
                }
            })
            .collect();
        CodeBook {
            category: category.to_string(),
            tables,
        }
    }

    /// Whether the book checks anything.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The predicted codes (`code_of(target)`) that the predicted `category` never took in
    /// training. A category the book does not know (none can be predicted, but a crafted
    /// model could hold one) has no allowed codes, so every code disagrees.
    pub fn check<'a>(&self, category: &str, code_of: impl Fn(&str) -> Option<&'a str>) -> Vec<Disagreement> {
        let mut out = Vec::new();
        for table in &self.tables {
            let Some(code) = code_of(&table.target) else {
                continue;
            };
            let allowed = table
                .allowed
                .binary_search_by(|(c, _)| c.as_str().cmp(category))
                .map(|i| table.allowed[i].1.as_slice())
                .unwrap_or(&[]);
            if allowed.binary_search_by(|a| a.as_str().cmp(code)).is_err() {
                out.push(Disagreement {
                    target: table.target.clone(),
                    code: code.to_string(),
                    allowed: allowed.to_vec(),
                });
            }
        }
        out
    }
}

impl Disagreement {
    /// `uniformat_code D2020 is not a code of Chiller (training: D3030)`.
    pub fn describe(&self, category: &str) -> String {
        let seen = if self.allowed.is_empty() {
            "none in training".to_string()
        } else {
            format!("training: {}", self.allowed.join(", "))
        };
        format!(
            "{} {} is not a code of {category} ({seen})",
            self.target, self.code
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn learns_pairs_and_flags_a_contradiction() {
        let cats = s(&["Chiller", "Chiller", "Pump", "", "Pump"]);
        let uni = s(&["D3030", "D3030", "D2020", "D9999", "D3040"]);
        let book = CodeBook::learn("category_name", &cats, &[("uniformat_code".into(), uni)]);
        assert_eq!(
            book.tables[0].allowed,
            [
                ("Chiller".to_string(), s(&["D3030"])),
                ("Pump".to_string(), s(&["D2020", "D3040"]))
            ],
            "the unlabelled row's code is not learned"
        );
        assert!(book.check("Chiller", |_| Some("D3030")).is_empty());
        assert!(book.check("Pump", |_| Some("D3040")).is_empty());
        let bad = book.check("Chiller", |_| Some("D2020"));
        assert_eq!(bad.len(), 1);
        assert_eq!(
            bad[0].describe("Chiller"),
            "uniformat_code D2020 is not a code of Chiller (training: D3030)"
        );
        // A target without a prediction is not checked.
        assert!(book.check("Chiller", |_| None).is_empty());
        assert_eq!(
            book.check("Boiler", |_| Some("D3020"))[0].describe("Boiler"),
            "uniformat_code D3020 is not a code of Boiler (none in training)"
        );
    }
}
