//! `waspmq-bench`: an MQTT load generator in the spirit of emqtt-bench, with its own minimal
//! client, for comparing WaspMQ against other brokers (see bench/README.md).

/// Prints a line to stdout, ignoring a closed pipe (e.g. `| head`) instead of panicking.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

mod client;
mod conn;
mod flow;
mod mqtt;
mod procfs;
mod stamp;
mod tally;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};

use crate::client::Target;
use crate::flow::{Plan, PublisherSpec, SubscriberSpec};

#[derive(Parser)]
#[command(version, about = "MQTT load generator (fanin, fanout, pairs, conn)")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// P publishers -> S subscribers on one topic, full speed.
    Fanin {
        #[arg(long, default_value_t = 10)]
        pubs: u32,
        #[arg(long, default_value_t = 1)]
        subs: u32,
        /// Messages per second per publisher (0 = as fast as the window allows).
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
        qos: u8,
        #[command(flatten)]
        flow: FlowArgs,
        #[command(flatten)]
        common: Common,
    },
    /// 1 publisher -> S subscribers on one topic, full speed.
    Fanout {
        #[arg(long, default_value_t = 100)]
        subs: u32,
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
        qos: u8,
        #[command(flatten)]
        flow: FlowArgs,
        #[command(flatten)]
        common: Common,
    },
    /// N publisher/subscriber pairs, each on its own topic at a fixed rate.
    Pairs {
        #[arg(long, default_value_t = 500)]
        pairs: u32,
        /// Messages per second per publisher.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=2))]
        qos: u8,
        #[command(flatten)]
        flow: FlowArgs,
        #[command(flatten)]
        common: Common,
    },
    /// N idle connections opened at a ramp rate; broker RSS per connection.
    Conn {
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// New connections per second.
        #[arg(long, default_value_t = 2000.0)]
        rate: f64,
        /// Seconds to hold all connections before reading the broker's RSS.
        #[arg(long, default_value_t = 2.0)]
        hold: f64,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args)]
struct FlowArgs {
    /// Payload bytes (at least the 24-byte stamp).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unacknowledged QoS 1/2 messages each publisher may have in flight.
    #[arg(long, default_value_t = 20)]
    window: usize,
    /// After publishing stops, wait for outstanding acks and deliveries until none arrived
    /// for this many seconds (or all arrived).
    #[arg(long, default_value_t = 3.0)]
    drain: f64,
    /// End-to-end window: messages each publisher may have sent that have not yet reached
    /// all its subscribers (0 = none, publish at full speed). Finds the sustainable rate of a
    /// broker that would otherwise just queue (QoS 0 has no acknowledgement to pace it).
    #[arg(long, default_value_t = 0)]
    e2e_window: u64,
    /// Upper bound in seconds on that wait.
    #[arg(long, default_value_t = 60.0)]
    drain_max: f64,
    /// Subscribers keep persistent sessions (3.1.1 Clean Session 0, 5.0 Session Expiry one
    /// hour), so a broker that persists stores what it queues for them.
    #[arg(long)]
    persistent: bool,
}

#[derive(Args)]
struct Common {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 1883)]
    port: u16,
    /// MQTT version: 3 (3.1.1) or 5 (5.0).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(3..=5))]
    mqtt: u8,
    /// Runtime worker threads (1 = current-thread runtime, pinnable to one core).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Broker process id, for RSS and CPU figures.
    #[arg(long)]
    broker_pid: Option<u32>,
    /// Keep alive in seconds sent in CONNECT (idle clients ping at half of it).
    #[arg(long, default_value_t = 60)]
    keepalive: u16,
    /// Broker name printed in the output (e.g. mosquitto, waspmq).
    #[arg(long, default_value = "broker")]
    label: String,
}

impl Common {
    fn target(&self) -> Result<Target> {
        let version = match self.mqtt {
            3 => mqtt::Version::V311,
            5 => mqtt::Version::V5,
            v => bail!("--mqtt {v}: use 3 (for 3.1.1) or 5"),
        };
        Ok(Target {
            host: self.host.clone(),
            port: self.port,
            version,
            keep_alive: self.keepalive,
            persistent: false,
        })
    }
}

fn secs(s: f64, what: &str) -> Result<Duration> {
    if !(s.is_finite() && s >= 0.0) {
        bail!("--{what} must be a non-negative number of seconds");
    }
    Ok(Duration::from_secs_f64(s))
}

#[allow(clippy::too_many_arguments)]
fn flow_plan(
    scenario: &'static str,
    publishers: Vec<PublisherSpec>,
    subscribers: Vec<SubscriberSpec>,
    qos: u8,
    rate: f64,
    flow: &FlowArgs,
    common: &Common,
    prefix: String,
) -> Result<Plan> {
    if flow.payload < stamp::STAMP_LEN {
        bail!(
            "--payload {} is smaller than the {}-byte stamp every message carries",
            flow.payload,
            stamp::STAMP_LEN
        );
    }
    if !(rate.is_finite() && rate >= 0.0) {
        bail!("--rate must be >= 0");
    }
    if flow.window == 0 {
        bail!("--window must be at least 1");
    }
    Ok(Plan {
        scenario,
        publishers,
        subscribers,
        qos,
        payload: flow.payload,
        window: flow.window,
        rate,
        e2e_window: flow.e2e_window,
        persistent_subscribers: flow.persistent,
        duration: secs(flow.duration, "duration")?,
        drain: secs(flow.drain, "drain")?,
        drain_max: secs(flow.drain_max, "drain-max")?,
        client_prefix: prefix,
        label: common.label.clone(),
        broker_pid: common.broker_pid,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let nofile = procfs::raise_nofile_limit();
    let threads = match &cli.scenario {
        Scenario::Fanin { common, .. }
        | Scenario::Fanout { common, .. }
        | Scenario::Pairs { common, .. }
        | Scenario::Conn { common, .. } => common.threads.max(1),
    };
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let result = runtime
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run(cli, nofile)));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli, nofile: u64) -> Result<bool> {
    // Unique per process so concurrent or leftover sessions never cross-talk.
    let run_id = std::process::id();
    let prefix = format!("wb{run_id}-");
    let base = format!("waspmq-bench/{run_id}");
    let check_fds = |conns: u64| {
        if conns + 16 > nofile {
            eprintln!("warning: {conns} connections exceed RLIMIT_NOFILE {nofile} (raised to the hard limit)");
        }
    };
    match cli.scenario {
        Scenario::Fanin {
            pubs,
            subs,
            rate,
            qos,
            flow,
            common,
        } => {
            check_fds(u64::from(pubs + subs));
            let topic = format!("{base}/fanin");
            let publishers = (0..pubs)
                .map(|id| PublisherSpec {
                    id,
                    topic: topic.clone(),
                })
                .collect();
            let subscribers = (0..subs)
                .map(|_| SubscriberSpec {
                    filter: topic.clone(),
                    expects: (0..pubs).collect(),
                })
                .collect();
            let plan = flow_plan(
                "fanin",
                publishers,
                subscribers,
                qos,
                rate,
                &flow,
                &common,
                prefix,
            )?;
            flow::run(plan, common.target()?).await
        }
        Scenario::Fanout {
            subs,
            rate,
            qos,
            flow,
            common,
        } => {
            check_fds(u64::from(subs + 1));
            let topic = format!("{base}/fanout");
            let publishers = vec![PublisherSpec {
                id: 0,
                topic: topic.clone(),
            }];
            let subscribers = (0..subs)
                .map(|_| SubscriberSpec {
                    filter: topic.clone(),
                    expects: vec![0],
                })
                .collect();
            let plan = flow_plan(
                "fanout",
                publishers,
                subscribers,
                qos,
                rate,
                &flow,
                &common,
                prefix,
            )?;
            flow::run(plan, common.target()?).await
        }
        Scenario::Pairs {
            pairs,
            rate,
            qos,
            flow,
            common,
        } => {
            check_fds(u64::from(pairs) * 2);
            let publishers = (0..pairs)
                .map(|id| PublisherSpec {
                    id,
                    topic: format!("{base}/pair/{id}"),
                })
                .collect();
            let subscribers = (0..pairs)
                .map(|id| SubscriberSpec {
                    filter: format!("{base}/pair/{id}"),
                    expects: vec![id],
                })
                .collect();
            let plan = flow_plan(
                "pairs",
                publishers,
                subscribers,
                qos,
                rate,
                &flow,
                &common,
                prefix,
            )?;
            flow::run(plan, common.target()?).await
        }
        Scenario::Conn {
            count,
            rate,
            hold,
            common,
        } => {
            if !(rate.is_finite() && rate > 0.0) {
                bail!("--rate must be > 0");
            }
            let plan = conn::ConnPlan {
                count,
                rate,
                hold: secs(hold, "hold")?,
                client_prefix: prefix,
                label: common.label.clone(),
                broker_pid: common.broker_pid,
                nofile,
            };
            conn::run(plan, common.target()?).await
        }
    }
}
