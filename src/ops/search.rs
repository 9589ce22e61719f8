//! Search ops: `model.cv_score` (one grid point on one fold; written as a family with a
//! `matrix`, so every (point, fold) is a node of its own, cached, run in parallel, and
//! one job array on a cluster) and `model.select_best` (gathers them, writes
//! `search.json`). The chosen point reaches `text.tfidf` and the learner through their
//! optional `search` input.

use super::{FieldDoc, Op, OpConfig, OpError, OpSpec, Port, Registry};
use crate::ml::features::FeatureConfig;
use crate::ml::learner::LearnerConfig;
use crate::ml::search::{overlay, score_fold, select, CvScore, SearchResult};
use crate::ml::text::TfidfConfig;
use crate::op::{ArtifactType, NodeContext, RunDirWrite};
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

/// The most folds of a cross-validation.
pub const MAX_FOLDS: usize = 100;

/// The file `model.select_best` writes into the run directory.
pub const SEARCH_FILE: &str = "search.json";

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CvScoreConfig {
    /// The grid point, for the record: axis → value.
    #[serde(default)]
    pub point: toml::Table,
    pub fold: usize,
    pub folds: usize,
    pub seed: u64,
    /// TF-IDF settings of this point (over the defaults).
    #[serde(default)]
    pub tfidf: toml::Table,
    /// Learner settings of this point (over the defaults).
    #[serde(default)]
    pub train: toml::Table,
}

impl OpConfig for CvScoreConfig {
    const FIELDS: &'static [FieldDoc] = &[
        FieldDoc::optional(
            "point",
            "table",
            "the grid point (axis = value), recorded in search.json",
        ),
        FieldDoc::required("fold", "integer", "the held-out fold, 0 … folds - 1"),
        FieldDoc::required("folds", "integer", "folds of the cross-validation (2 … 100)"),
        FieldDoc::required("seed", "integer", "the folds' shuffle"),
        FieldDoc::optional("tfidf", "table", "text.tfidf settings of this point"),
        FieldDoc::optional(
            "train",
            "table",
            "the learner's settings of this point: model.train's table ({ learner, linear, forest, … }), or, with \
             none of those keys, model.train_forest's (a forest)",
        ),
    ];
}

fn to_json(t: &toml::Table) -> serde_json::Value {
    serde_json::to_value(t).unwrap_or(serde_json::Value::Null)
}

struct CvScoreOp {
    config: CvScoreConfig,
    tfidf: TfidfConfig,
    learner: LearnerConfig,
}

impl CvScoreOp {
    fn new(c: CvScoreConfig) -> Result<Self, String> {
        if !(2..=MAX_FOLDS).contains(&c.folds) {
            return Err(format!("`folds` = {}: give 2 to {MAX_FOLDS}", c.folds));
        }
        if c.fold >= c.folds {
            return Err(format!(
                "`fold` = {} is not one of the {} folds (0 … {})",
                c.fold,
                c.folds,
                c.folds - 1
            ));
        }
        let tfidf: TfidfConfig = overlay(&TfidfConfig::default(), &to_json(&c.tfidf))
            .map_err(|e| format!("`tfidf`: {e}"))?
            .normalized();
        tfidf.check().map_err(|e| format!("`tfidf`: {e}"))?;
        let learner =
            super::model::search_learner(&to_json(&c.train)).map_err(|e| format!("`train`: {e}"))?;
        Ok(CvScoreOp {
            config: c,
            tfidf,
            learner,
        })
    }
}

impl Op for CvScoreOp {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        let table = ctx.input::<DataFrame>("table")?;
        let features = ctx.input::<FeatureConfig>("features")?;
        let c = &self.config;
        let score = score_fold(
            &table,
            &features,
            &self.tfidf,
            &self.learner,
            c.folds,
            c.fold,
            c.seed,
            ctx.cancel_flag(),
        )?;
        tracing::info!(
            "fold {} of {} at {}: mean macro-F1 {score:.4}",
            c.fold + 1,
            c.folds,
            toml::Value::Table(c.point.clone())
        );
        ctx.output(
            "score",
            CvScore {
                point: to_json(&c.point),
                fold: c.fold,
                folds: c.folds,
                score,
                tfidf: to_json(&c.tfidf),
                train: to_json(&c.train),
            },
        )?;
        Ok(())
    }
}

struct SelectBest;

impl Op for SelectBest {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        // Inputs are `scores-<member>`: gathered in member order.
        let mut inputs = ctx.inputs_untyped();
        let index = |port: &str| {
            port.rsplit('-')
                .next()
                .and_then(|i| i.parse::<usize>().ok())
                .unwrap_or(0)
        };
        inputs.sort_by_key(|(port, _, _)| index(port));
        let scores: Vec<CvScore> = inputs
            .iter()
            .filter_map(|(_, _, slot)| slot.value.downcast_ref::<CvScore>().cloned())
            .collect();
        let result = select(&scores);
        match &result.best {
            Some(b) => tracing::info!(
                "search: best of {} points over {} folds: {} (mean macro-F1 {:.4})",
                result.points.len(),
                result.folds,
                b.point,
                b.score
            ),
            None => tracing::info!("search: none (no grid points; `cv_folds = 0`)"),
        }
        let path = ctx.run_dir().join(SEARCH_FILE);
        ctx.write_file(&path, serde_json::to_vec_pretty(&result)?)?;
        ctx.output("search", result)?;
        Ok(())
    }
}

/// `base` tuned by the search a node reads on its optional `search` input, if any:
/// the chosen point's `pick` settings over the node's own.
pub(crate) fn tuned<C>(
    ctx: &NodeContext<'_>,
    base: &C,
    pick: fn(&crate::ml::search::Best) -> &serde_json::Value,
) -> Result<C, OpError>
where
    C: Clone + Serialize + for<'de> Deserialize<'de>,
{
    tuned_with(ctx, base, |best| pick(best).clone())
}

/// [`tuned`] with the chosen point's settings made by `pick` (e.g. read into another
/// shape).
pub(crate) fn tuned_with<C>(
    ctx: &NodeContext<'_>,
    base: &C,
    pick: impl Fn(&crate::ml::search::Best) -> serde_json::Value,
) -> Result<C, OpError>
where
    C: Clone + Serialize + for<'de> Deserialize<'de>,
{
    let Some(search) = ctx.input_opt::<SearchResult>("search")? else {
        return Ok(base.clone());
    };
    match &search.best {
        None => Ok(base.clone()),
        Some(best) => {
            let settings = pick(best);
            let c = overlay(base, &settings).map_err(|e| -> OpError { e.into() })?;
            tracing::info!("settings of the chosen point: {settings}");
            Ok(c)
        }
    }
}

pub(crate) fn register(r: &mut Registry) {
    r.register(
        OpSpec::new(
            "model.cv_score",
            "Score one grid point on one fold of the training rows (mean macro-F1 over targets); write it as a \
             family with a `matrix` over the grid and the folds.",
            CvScoreOp::new,
        )
        .stops_when_cancelled()
        .input(Port::new::<DataFrame>("table", "engineered training rows"))
        .input(Port::new::<FeatureConfig>("features", "the feature config"))
        .output(Port::new::<CvScore>("score", "the fold's score and the point's settings")),
    );
    r.register(
        OpSpec::new(
            "model.select_best",
            "Gather a search's scores (inputs `scores-<i>` of a family: `scores = \"cv_score[*]\"`), choose the best \
             point, write search.json.",
            |_: crate::op::NoConfig| Ok(SelectBest),
        )
        .any_inputs(ArtifactType::of::<CvScore>())
        .output(Port::new::<SearchResult>("search", "every point's score and the chosen point"))
        .writes_in_run_dir(|_: &crate::op::NoConfig| vec![RunDirWrite::file(SEARCH_FILE)]),
    );
}
