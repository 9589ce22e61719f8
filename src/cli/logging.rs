//! Where log lines go: the terminal (with live progress bars when stderr is a terminal,
//! plain lines when it is piped) and, once a run has a directory, its `run.log`.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tracing_subscriber::filter::{filter_fn, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Log levels, accepting the Python tool's names too (`WARNING`, `CRITICAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum LogLevel {
    #[value(alias = "trace")]
    Trace,
    #[value(alias = "debug")]
    Debug,
    #[value(alias = "info")]
    Info,
    #[value(alias = "warn", alias = "warning", alias = "WARN")]
    Warning,
    #[value(alias = "error")]
    Error,
    #[value(alias = "critical")]
    Critical,
}

impl LogLevel {
    fn filter(self) -> LevelFilter {
        match self {
            LogLevel::Trace => LevelFilter::TRACE,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Warning => LevelFilter::WARN,
            LogLevel::Error | LogLevel::Critical => LevelFilter::ERROR,
        }
    }
}

/// The run's log file, attached once the run directory exists.
#[derive(Clone, Default)]
pub struct RunLog(Arc<Mutex<Option<File>>>);

impl RunLog {
    pub fn attach(&self, path: &Path) -> std::io::Result<()> {
        let file = File::create(path)?;
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
        Ok(())
    }
}

pub struct RunLogWriter(Arc<Mutex<Option<File>>>);

impl Write for RunLogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(f) => f.write(buf),
            None => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl<'a> MakeWriter<'a> for RunLog {
    type Writer = RunLogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        RunLogWriter(Arc::clone(&self.0))
    }
}

/// Whether live progress bars are drawn.
pub fn interactive() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// Install the global subscriber. Returns the run log handle.
pub fn init(level: LogLevel) -> RunLog {
    let run_log = RunLog::default();
    let level = level.filter();
    // The file keeps everything at the chosen level, without colours.
    let file_layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_target(false)
        .with_thread_names(true)
        .with_writer(run_log.clone())
        .with_filter(level);
    let registry = tracing_subscriber::registry().with(file_layer);
    if interactive() {
        let bars = tracing_indicatif::IndicatifLayer::new();
        let term = tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_writer(bars.get_stderr_writer())
            .with_filter(level);
        // Bars only for the run and its nodes; other spans stay plain context.
        let bars = bars.with_filter(filter_fn(|m| {
            m.is_span() && (m.name() == "run" || m.name() == "node")
        }));
        let _ = registry.with(term).with(bars).try_init();
    } else {
        let term = tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .with_filter(level);
        let _ = registry.with(term).try_init();
    }
    // A panicking op fails its node; say where it panicked through the log, not raw stderr.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!("panic{at}: {msg}");
    }));
    run_log
}
