//! Logging: `tracing` to the console and to `logs/broker_YYYYMMDD_HHMMSS.log`, in the seed
//! tutorial's line format (`2026-12-05 10:00:00,123 - waspmq::broker - INFO - message`), so the
//! tools people pointed at the seed's logs keep working.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;

use crate::config::LogConfig;

/// Keeps the file writer's background thread alive; dropping it flushes the log file.
pub struct LogGuard {
    _file: Option<tracing_appender::non_blocking::WorkerGuard>,
    /// The log file being written, if any.
    pub path: Option<PathBuf>,
}

/// Installs the global subscriber. `RUST_LOG` overrides `config.level`.
pub fn init(config: &LogConfig) -> anyhow::Result<LogGuard> {
    let filter = || {
        EnvFilter::try_from_default_env()
            .or_else(|_| EnvFilter::try_new(&config.level))
            .unwrap_or_else(|_| EnvFilter::new("info"))
    };
    let console = tracing_subscriber::fmt::layer()
        .event_format(SeedFormat)
        .with_writer(std::io::stderr)
        .with_filter(filter());
    let (file_layer, guard, path) = if config.file {
        let (path, file) = open_log_file(&config.dir)?;
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(false)
            .finish(file);
        let layer = tracing_subscriber::fmt::layer()
            .event_format(SeedFormat)
            .with_ansi(false)
            .with_writer(writer)
            .with_filter(filter());
        (Some(layer), Some(guard), Some(path))
    } else {
        (None, None, None)
    };
    tracing_subscriber::registry()
        .with(console)
        .with(file_layer)
        .try_init()
        .context("a logger is already installed")?;
    Ok(LogGuard { _file: guard, path })
}

fn open_log_file(dir: &Path) -> anyhow::Result<(PathBuf, std::fs::File)> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the log folder {}", dir.display()))?;
    let name = format!(
        "broker_{}.log",
        chrono::Local::now().format("%Y%m%d_%H%M%S")
    );
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open the log file {}", path.display()))?;
    Ok((path, file))
}

/// `%(asctime)s - %(name)s - %(levelname)s - %(message)s`, as Python's logging writes it.
struct SeedFormat;

impl<S, N> FormatEvent<S, N> for SeedFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        write!(
            writer,
            "{} - {} - {} - ",
            chrono::Local::now().format("%Y-%m-%d %H:%M:%S,%3f"),
            meta.target(),
            meta.level()
        )?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
