//! The `waspmq` binary: parse the command line, load the config, start the broker.

use std::path::PathBuf;

use clap::Parser;

/// An MQTT broker extended by sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "waspmq", version, about)]
struct Args {
    /// The TOML config file; without it the broker runs on its defaults
    /// (TCP 0.0.0.0:1883, WebSocket 0.0.0.0:8080, anonymous clients allowed).
    #[arg(short, long, env = "WASPMQ_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = waspmq::config::load(args.config.as_deref())?;
    println!("{config:?}");
    Ok(())
}
