//! The command line: `nexusml dag {run, check, plot, ops}`, `report`, `runs`, ….

mod classic;
mod cluster;
mod dag;
pub mod logging;
mod runs;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// What went wrong, for the binary's exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphError),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Plot(#[from] crate::graph::plot::PlotError),
    #[error(transparent)]
    Synth(#[from] crate::ml::synth::SynthError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Slurm(#[from] crate::cluster::slurm::SlurmError),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
    #[error("{0}")]
    Interrupted(String),
}

impl CliError {
    /// 2: the pipeline or the command line is wrong; 1: something failed while working.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Interrupted(_) => 130,
            CliError::Spec(_) | CliError::Graph(_) | CliError::Usage(_) => 2,
            CliError::Report(e) if e.is_usage() => 2,
            // A bad --jobs, or a picture too big to draw, is a command-line mistake.
            CliError::Plot(crate::graph::plot::PlotError::TooBig { .. }) => 2,
            CliError::Engine(
                crate::engine::EngineError::NoJobs | crate::engine::EngineError::TooManyJobs { .. },
            ) => 2,
            CliError::Engine(_)
            | CliError::Io { .. }
            | CliError::Plot(_)
            | CliError::Synth(_)
            | CliError::Store(_)
            | CliError::Slurm(_)
            | CliError::Report(_)
            | CliError::Failed(_) => 1,
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "nexusml",
    version,
    about = "Facility-equipment classification pipelines as a parallel DAG"
)]
pub struct Cli {
    /// Log level (also accepts the Python tool's WARNING and CRITICAL).
    #[arg(long, global = true, value_enum, default_value = "INFO", ignore_case = true)]
    pub log_level: logging::LogLevel,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pipelines: run, check, plot, list ops.
    #[command(subcommand)]
    Dag(DagCommand),
    /// Data utilities.
    #[command(subcommand)]
    Data(DataCommand),
    /// Train the classifier on an inventory (the classic entry point; runs dags/train.toml).
    Train(classic::TrainArgs),
    /// Classify an inventory with a saved model and write a predictions CSV.
    Predict(classic::PredictArgs),
    /// Evaluate a saved model on a labelled inventory.
    Evaluate(classic::EvaluateArgs),
    /// The artifact store: what it holds, and deleting what recent runs do not reach.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Write a run's self-contained report.html (again), from its directory's files.
    Report(runs::ReportArgs),
    /// The runs in a runs directory: list them, show one, compare two.
    #[command(subcommand)]
    Runs(runs::RunsCommand),
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Size, entries and runs of the store.
    Info(StoreOnlyArgs),
    /// Delete what the newest runs (and any run still going) do not reach.
    Gc(GcArgs),
}

#[derive(Debug, Args)]
pub struct StoreOnlyArgs {
    /// The artifact store (default: $NEXUSML_STORE, else .nexusml/store).
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub store: StoreOnlyArgs,
    /// Keep what the newest N run records reach.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub keep_runs: usize,
    /// Then drop older runs until what is kept fits, e.g. 500M, 2G.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_size: Option<u64>,
    /// Say what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `500M`, `2G`, `1024` (bytes), `10k`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                'B' => 1,
                _ => return Err(format!("`{text}`: unknown unit `{c}` (use K, M, G or T)")),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 500M, 2G)"))?;
    if n < 0.0 || !n.is_finite() {
        return Err(format!("`{text}` is not a size"));
    }
    Ok((n * mult as f64) as u64)
}

/// Which artifact store a command uses.
#[derive(Debug, Args, Default, Clone)]
pub struct StoreArgs {
    /// The artifact store (default: $NEXUSML_STORE, else .nexusml/store in the current directory).
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Run without the store: recompute every node and keep nothing.
    #[arg(long)]
    pub no_cache: bool,
}

use crate::store::resolve_dir as store_dir;

impl StoreArgs {
    /// The directory to use, or `None` with `--no-cache`.
    pub fn dir(&self) -> Option<PathBuf> {
        (!self.no_cache).then(|| store_dir(self.store.as_deref()))
    }

    pub fn open(&self) -> Result<Option<std::sync::Arc<crate::store::Store>>, CliError> {
        Ok(match self.dir() {
            Some(d) => Some(std::sync::Arc::new(crate::store::Store::open(d)?)),
            None => None,
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Generate a realistic synthetic equipment inventory (deterministic for a seed).
    Synth(SynthArgs),
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Number of rows.
    #[arg(long, default_value_t = 3000)]
    pub rows: usize,
    /// Seed: the same rows and seed give the same file, byte for byte.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output CSV file.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum DagCommand {
    /// Validate and run a pipeline.
    Run(RunArgs),
    /// Validate a pipeline and print its shape (nodes, edges, waves, critical path).
    Check(CheckArgs),
    /// Draw a pipeline as DOT, Mermaid, SVG or PNG.
    Plot(PlotArgs),
    /// For each node: FRESH (the store holds its result), STALE (with why) or MISSING.
    Status(StatusArgs),
    /// Write a cluster submission script: one job per node, edges as dependencies.
    Export(ExportArgs),
    /// List every op with its ports and configuration fields.
    Ops,
}

/// A pipeline file and the parameter overrides applied to it.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// The pipeline TOML file.
    pub file: PathBuf,
    /// Override a parameter: KEY=VALUE, the value read as TOML (numbers stay numbers). Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// A TOML file of parameter overrides, applied before --set.
    #[arg(long, value_name = "FILE")]
    pub params: Option<PathBuf>,
}

/// Which nodes to run.
#[derive(Debug, Args, Default)]
pub struct SelectArgs {
    /// Run only these nodes.
    #[arg(long, num_args = 1.., value_name = "NODE")]
    pub only: Vec<String>,
    /// Run this node and everything downstream of it.
    #[arg(long, value_name = "NODE")]
    pub from: Option<String>,
    /// Run this node and everything it depends on.
    #[arg(long, value_name = "NODE")]
    pub to: Option<String>,
    /// Run the nodes carrying any of these tags.
    #[arg(long, num_args = 1.., value_name = "TAG")]
    pub tags: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Worker threads (default: all cores).
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// After a failure, keep running every branch that does not depend on it.
    #[arg(long)]
    pub keep_going: bool,
    /// Print the plan (waves and critical path) without running anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Where run directories are created.
    #[arg(long, value_name = "DIR", default_value = "outputs/runs")]
    pub runs_dir: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Re-run stored nodes: every node, or the ones named (`--force train evaluate`).
    #[arg(long, num_args = 0.., value_name = "NODE")]
    pub force: Option<Vec<String>>,
    /// Where nodes run: here, or as one Slurm job each (with a store every job can reach).
    #[arg(long, value_enum, default_value = "local")]
    pub executor: Executor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Executor {
    Local,
    Slurm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportTarget {
    Slurm,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// The cluster scheduler to write a submission script for.
    #[arg(long, value_enum)]
    pub to: ExportTarget,
    /// The script to write.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: PathBuf,
    /// The shared artifact store the jobs use (default: $NEXUSML_STORE, else .nexusml/store).
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Where the jobs' run directories and logs go.
    #[arg(long, value_name = "DIR", default_value = "outputs/runs/jobs")]
    pub jobs_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// The artifact store (default: $NEXUSML_STORE, else .nexusml/store).
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub select: SelectArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlotFormat {
    Dot,
    Mermaid,
    Svg,
    Png,
}

#[derive(Debug, Args)]
pub struct PlotArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Output format (default: from the -o extension, else dot).
    #[arg(long, value_enum)]
    pub format: Option<PlotFormat>,
    /// A run directory: colour nodes by status and show durations from its report.json.
    #[arg(long, value_name = "DIR")]
    pub run: Option<PathBuf>,
    /// Write here instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Run the command line; the binary maps the result to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let run_log = logging::init(cli.log_level);
    let result = match cli.command {
        Command::Dag(DagCommand::Run(args)) => dag::run(args, &run_log),
        Command::Dag(DagCommand::Check(args)) => dag::check(args),
        Command::Dag(DagCommand::Plot(args)) => dag::plot(args),
        Command::Dag(DagCommand::Status(args)) => dag::status(args),
        Command::Dag(DagCommand::Export(args)) => cluster::export(args),
        Command::Cache(CacheCommand::Info(args)) => dag::cache_info(args),
        Command::Cache(CacheCommand::Gc(args)) => dag::cache_gc(args),
        Command::Dag(DagCommand::Ops) => dag::ops(),
        Command::Data(DataCommand::Synth(args)) => synth(args),
        Command::Train(args) => classic::train(args, &run_log),
        Command::Predict(args) => classic::predict(args, &run_log),
        Command::Evaluate(args) => classic::evaluate(args, &run_log),
        Command::Report(args) => runs::report(args),
        Command::Runs(command) => runs::runs(command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let chain = crate::engine::error_chain(&e);
            eprintln!("error: {}", chain[0]);
            for cause in &chain[1..] {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

fn synth(args: SynthArgs) -> Result<ExitCode, CliError> {
    if args.rows == 0 {
        return Err(CliError::Usage("--rows must be at least 1".into()));
    }
    let opts = crate::ml::synth::SynthOptions {
        rows: args.rows,
        seed: args.seed,
    };
    let s = crate::ml::synth::write_inventory(&opts, &args.output)?;
    tracing::info!(
        "wrote {} rows ({} categories, {} deliberately mislabelled) to {}",
        s.rows,
        s.categories,
        s.mislabelled,
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
