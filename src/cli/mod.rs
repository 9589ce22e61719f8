//! The command line: `nexusml dag {run, check, plot, ops}`, `report`, `runs`, ….

/// `println!` that stays quiet on a closed pipe (`nexusml dag status --json | head`): the
/// command goes on (a run still writes its report) and nothing panics.
macro_rules! say {
    () => {
        $crate::cli::emit(false, true, format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::emit(false, true, format_args!($($arg)*))
    };
}

/// `print!`, quiet on a closed pipe.
macro_rules! say_raw {
    ($($arg:tt)*) => {
        $crate::cli::emit(false, false, format_args!($($arg)*))
    };
}

/// `eprintln!`, quiet on a closed pipe (`nexusml dag run … 2>&1 | head -1`).
macro_rules! say_err {
    ($($arg:tt)*) => {
        $crate::cli::emit(true, true, format_args!($($arg)*))
    };
}

mod cache;
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
    Session(#[from] crate::engine::SessionError),
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
    /// 2: the pipeline or the command line is wrong; 1: something failed while working;
    /// 128 + the signal that stopped it.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Interrupted(_) => crate::engine::interrupt::exit_code(),
            CliError::Session(e) if e.is_usage() => 2,
            CliError::Session(_) => 1,
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
    Info(StoreDirArg),
    /// Delete what the newest runs (and any run still going) do not reach.
    Gc(GcArgs),
}

#[derive(Debug, Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub store: StoreDirArg,
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

/// The artifact store: `--store`, declared once for every command.
#[derive(Debug, Args, Default, Clone)]
pub struct StoreDirArg {
    /// The artifact store: a directory, file://DIR, or s3://bucket/prefix (a build with
    /// the s3 feature). Default: $NEXUSML_STORE, else .nexusml/store in the current directory.
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
}

impl StoreDirArg {
    pub fn dir(&self) -> PathBuf {
        crate::store::resolve_dir(self.store.as_deref())
    }

    pub fn open(&self) -> Result<crate::store::Store, CliError> {
        Ok(crate::store::Store::open(self.dir())?)
    }
}

/// The store of a command that runs nodes: `--store`, or `--no-cache` for none.
#[derive(Debug, Args, Default, Clone)]
pub struct StoreArgs {
    #[command(flatten)]
    pub dir: StoreDirArg,
    /// Run without the store: recompute every node and keep nothing.
    #[arg(long)]
    pub no_cache: bool,
}

impl StoreArgs {
    /// The store to use, or `None` with `--no-cache`.
    pub fn dir(&self) -> Option<PathBuf> {
        (!self.no_cache).then(|| self.dir.dir())
    }
}

/// `--runs-dir`, declared once for every command that makes run directories.
#[derive(Debug, Args, Clone)]
pub struct RunsDirArg {
    /// Where run directories are created.
    #[arg(long, value_name = "DIR", default_value = crate::engine::session::DEFAULT_RUNS_DIR)]
    pub runs_dir: PathBuf,
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

impl PipelineArgs {
    pub fn source(&self) -> crate::engine::Source {
        crate::engine::Source::File(self.file.clone())
    }

    pub fn overrides(&self) -> crate::spec::Overrides {
        crate::spec::Overrides {
            params_file: self.params.clone(),
            set: self.set.clone(),
            api: Default::default(),
        }
    }
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
    #[command(flatten)]
    pub runs_dir: RunsDirArg,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Re-run stored nodes: every node, or the ones named (`--force train evaluate`).
    #[arg(long, num_args = 0.., value_name = "NODE")]
    pub force: Option<Vec<String>>,
    /// Where nodes run: here, or as Slurm jobs (with a store every job can reach).
    #[arg(long, value_enum, default_value = "local")]
    pub executor: Executor,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// How nodes become cluster jobs (`--executor slurm`, `dag export`).
#[derive(Debug, Args, Clone, Default)]
pub struct ClusterArgs {
    /// `auto`: connected nodes that ask for no resources of their own share one job;
    /// `none`: one job per node. Families are job arrays either way.
    #[arg(long, value_enum, default_value = "auto")]
    pub group: GroupArg,
    /// The most jobs of this run queued or running at once (an array counts its throttle).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_jobs: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum GroupArg {
    #[default]
    Auto,
    None,
}

impl GroupArg {
    pub fn grouping(self) -> crate::cluster::Grouping {
        match self {
            GroupArg::Auto => crate::cluster::Grouping::Auto,
            GroupArg::None => crate::cluster::Grouping::None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Executor {
    Local,
    Slurm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportTarget {
    /// A bash script of `sbatch` calls.
    Slurm,
    /// An Airflow DAG file (Python).
    Airflow,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// What to write: a Slurm submission script, or an Airflow DAG.
    #[arg(long, value_enum)]
    pub to: ExportTarget,
    /// `auto`: connected nodes that ask for no resources of their own share one job/task;
    /// `none`: one per node.
    #[arg(long, value_enum, default_value = "auto")]
    pub group: GroupArg,
    /// The script to write.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: PathBuf,
    #[command(flatten)]
    pub store: StoreDirArg,
    /// Where the jobs' run directories and logs go.
    #[arg(long, value_name = "DIR", default_value = "outputs/runs/jobs")]
    pub jobs_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub store: StoreDirArg,
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

/// Write to stdout or stderr, ignoring a closed pipe (and any other write error: there is
/// nowhere left to report it).
pub(crate) fn emit(stderr: bool, newline: bool, args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    fn put(w: &mut dyn Write, newline: bool, args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
        w.write_fmt(args)?;
        if newline {
            w.write_all(b"\n")?;
        }
        Ok(())
    }
    let _ = if stderr {
        put(&mut std::io::stderr().lock(), newline, args)
    } else {
        put(&mut std::io::stdout().lock(), newline, args)
    };
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
        Command::Cache(CacheCommand::Info(args)) => cache::info(args),
        Command::Cache(CacheCommand::Gc(args)) => cache::gc(args),
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
            say_err!("error: {}", chain[0]);
            for cause in &chain[1..] {
                say_err!("  caused by: {cause}");
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
