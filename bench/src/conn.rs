//! The `conn` scenario: open many idle connections at a fixed rate, hold them, and measure
//! the broker's resident memory per connection and the CONNACK latency.

use std::time::Duration;

use anyhow::Result;
use hdrhistogram::Histogram;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep, sleep_until, Instant};

use crate::client::{Client, Target};
use crate::mqtt::{self, Incoming};
use crate::procfs::{fmt_pct, rss_kib, CpuSnapshot};

pub struct ConnPlan {
    pub count: usize,
    pub rate: f64,
    /// Time to hold all connections open before measuring the broker's RSS.
    pub hold: Duration,
    pub client_prefix: String,
    pub label: String,
    pub broker_pid: Option<u32>,
    pub nofile: u64,
}

/// Keeps one connection open (answering nothing, pinging per keep-alive) until `stop`.
async fn hold(mut client: Client, mut stop: watch::Receiver<bool>, keep_alive: u16) {
    let every = Duration::from_secs(u64::from(keep_alive.max(2)) / 2);
    let mut ping = tokio::time::interval_at(Instant::now() + every, every);
    loop {
        tokio::select! {
            r = client.fill() => {
                if r.is_err() { return; }
                while let Ok(Some(p)) = client.try_decode() {
                    if let Incoming::Disconnect { .. } = p { return; }
                }
            }
            _ = ping.tick() => {
                mqtt::encode_pingreq(&mut client.wbuf);
                if client.flush().await.is_err() { return; }
            }
            _ = stop.changed() => break,
        }
    }
    client.disconnect().await;
}

pub async fn run(plan: ConnPlan, target: Target) -> Result<bool> {
    // Every connection costs this process one descriptor, plus a few for stdio etc.
    if plan.count as u64 + 16 > plan.nofile {
        eprintln!(
            "warning: {} connections exceed RLIMIT_NOFILE {} (soft limit already raised to the hard limit); \
             connections beyond it will fail",
            plan.count, plan.nofile
        );
    }
    let rss_before = plan.broker_pid.and_then(rss_kib);
    let cpu_start = CpuSnapshot::take(plan.broker_pid);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (res_tx, mut res_rx) = mpsc::unbounded_channel::<Result<Duration, String>>();
    let t0 = Instant::now();
    let mut handles = Vec::with_capacity(plan.count);
    let launcher = {
        let target = target.clone();
        let prefix = plan.client_prefix.clone();
        let (count, rate) = (plan.count, plan.rate);
        tokio::spawn(async move {
            for i in 0..count {
                let due = t0 + Duration::from_secs_f64(i as f64 / rate);
                if due > Instant::now() {
                    sleep_until(due).await;
                }
                let target = target.clone();
                let id = format!("{prefix}c{i}");
                let res = res_tx.clone();
                let stop = stop_rx.clone();
                handles.push(tokio::spawn(async move {
                    let began = Instant::now();
                    match Client::connect(&target, &id).await {
                        Ok(c) => {
                            let _ = res.send(Ok(began.elapsed()));
                            hold(c, stop, target.keep_alive).await;
                        }
                        Err(e) => {
                            let _ = res.send(Err(format!("{e:#}")));
                        }
                    }
                }));
            }
            handles
        })
    };
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
        .expect("constant histogram bounds are valid");
    let (mut ok, mut failed) = (0usize, 0usize);
    let mut first_error = None;
    while ok + failed < plan.count {
        match res_rx.recv().await {
            Some(Ok(d)) => {
                ok += 1;
                hist.saturating_record(d.as_nanos() as u64);
            }
            Some(Err(e)) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
            None => break,
        }
    }
    let connect_secs = t0.elapsed().as_secs_f64();
    sleep(plan.hold).await;
    let rss_after = plan.broker_pid.and_then(rss_kib);
    let (broker_cpu, gen_cpu) = CpuSnapshot::take(plan.broker_pid).percent_since(&cpu_start);
    let _ = stop_tx.send(true);
    for h in launcher.await? {
        let _ = h.await;
    }

    let per_conn = match (rss_before, rss_after) {
        (Some(b), Some(a)) if ok > 0 => Some((a.saturating_sub(b) * 1024) as f64 / ok as f64),
        _ => None,
    };
    let kb = |v: Option<u64>| v.map_or_else(|| "na".to_string(), |v| v.to_string());
    let q = |p: f64| hist.value_at_quantile(p) as f64 / 1e6;
    let bpc = per_conn.map_or_else(|| "na".to_string(), |v| format!("{v:.0}"));
    out!(
        "[{}] conn: {ok}/{} connected ({failed} failed) in {connect_secs:.2} s ({:.0}/s, target {:.0}/s), \
         CONNACK p50 {:.3} ms p99 {:.3} ms max {:.3} ms, broker RSS {} -> {} KiB = {bpc} B/connection, cpu broker {}% generator {}%",
        plan.label,
        plan.count,
        ok as f64 / connect_secs,
        plan.rate,
        q(0.5),
        q(0.99),
        q(1.0),
        kb(rss_before),
        kb(rss_after),
        fmt_pct(broker_cpu),
        fmt_pct(gen_cpu),
    );
    let passed = failed == 0;
    out!(
        "RESULT scenario=conn broker={} count={} connected={ok} failed={failed} conn_rate={:.0} p50_ms={:.3} p99_ms={:.3} \
         max_ms={:.3} rss_before_kb={} rss_after_kb={} bytes_per_conn={bpc} broker_cpu={} gen_cpu={} status={}",
        plan.label,
        plan.count,
        ok as f64 / connect_secs,
        q(0.5),
        q(0.99),
        q(1.0),
        kb(rss_before),
        kb(rss_after),
        fmt_pct(broker_cpu),
        fmt_pct(gen_cpu),
        if passed { "ok" } else { "fail" },
    );
    if let Some(e) = first_error {
        eprintln!("FAIL: {failed} connections failed; first error: {e}");
    }
    Ok(passed)
}
