//! The `waspmq` binary: parse the command line, load the config, set up logging, start the
//! broker and its `$SYS` publisher, and serve until SIGINT/SIGTERM. SIGHUP reloads TLS
//! certificates and the plugin list without dropping a connection.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};
use waspmq::broker::{sys, Broker, RunningBroker};
use waspmq::config::{self, Config};
use waspmq::plugins::Hooks;

/// An MQTT 3.1 / 3.1.1 / 5.0 broker extended by sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "waspmq", version, about)]
struct Args {
    /// The TOML config file. Without it the broker runs on its defaults: TCP 0.0.0.0:1883,
    /// WebSocket 0.0.0.0:8080, anonymous clients allowed. MQTT_BIND_ADDRESS, MQTT_WS_BIND and
    /// ALLOW_ANONYMOUS (also read from ./.env) override the file.
    #[arg(short, long, env = "WASPMQ_CONFIG")]
    config: Option<PathBuf>,

    /// Worker threads of the runtime (default: one per CPU).
    #[arg(long, env = "WASPMQ_THREADS")]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match config::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("waspmq: {e:#}");
            return ExitCode::from(2);
        }
    };
    let _log = match waspmq::logging::init(&config.log) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("waspmq: {e:#}");
            return ExitCode::from(2);
        }
    };
    raise_file_limit(&config);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads.filter(|n| *n > 0) {
        builder.worker_threads(threads);
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("waspmq: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args.config, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config_path: Option<PathBuf>, config: Config) -> anyhow::Result<()> {
    let hooks = Hooks::load(&config).await.context("loading plugins")?;
    let sys_interval = config.sys_interval;
    let running = Broker::start(config, hooks.clone()).await?;
    let _sys = sys::spawn(running.broker.clone(), sys_interval);
    let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = hangup.recv() => reload(&running, &hooks, config_path.as_deref()).await,
        }
    }
    running.shutdown().await;
    Ok(())
}

/// SIGHUP: re-read TLS certificates and the plugin list; failures keep what is running.
async fn reload(running: &RunningBroker, hooks: &Hooks, config_path: Option<&Path>) {
    info!("SIGHUP: reloading certificates and plugins");
    for listener in running.bound_listeners() {
        if let Err(e) = listener.reload_certificates() {
            warn!(
                "listener {}: certificates not reloaded: {e:#}",
                listener.name()
            );
        }
    }
    match config::load(config_path) {
        Ok(config) => {
            if let Err(e) = hooks.reload(&config).await {
                warn!("plugins not reloaded: {e:#}");
            }
        }
        Err(e) => warn!("config not reloaded: {e:#}"),
    }
}

/// Raises the open-file limit to the hard limit (each connection is a descriptor) and warns
/// when even that leaves less room than the listeners' `max_connections` allow.
fn raise_file_limit(config: &Config) {
    let limit = match waspmq::fdlimit::raise_to_hard_limit() {
        Ok(limit) => limit,
        Err(e) => {
            warn!("cannot raise the open-file limit (RLIMIT_NOFILE): {e}");
            return;
        }
    };
    let allowed = waspmq::fdlimit::connections_allowed(&limit);
    if limit.soft != limit.was {
        info!(
            "Open-file limit raised from {} to {}",
            limit.was, limit.soft
        );
    }
    let configured: Option<u64> = config
        .listeners
        .values()
        .map(|l| l.max_connections.map(|n| n as u64))
        .sum();
    match configured {
        Some(max) if max <= allowed => {}
        Some(max) => warn!(
            "Open-file limit {} (hard limit) leaves room for about {allowed} connections, \
             below the listeners' max_connections total {max}",
            limit.soft
        ),
        None => info!(
            "Open-file limit {}: room for about {allowed} connections (a listener has no \
             max_connections)",
            limit.soft
        ),
    }
}
