//! Message-flow scenarios (fanin, fanout, pairs): publishers with a bounded in-flight window,
//! subscribers that tally every stamped delivery, and the run's start / stop / drain phases.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, Instant, MissedTickBehavior};

use crate::client::{Client, Target};
use crate::mqtt::{self, Incoming};
use crate::procfs::{fmt_pct, CpuSnapshot};
use crate::stamp::{Clock, Stamp};
use crate::tally::{Delivery, Tally};

/// PUBLISH packets encoded per socket write when running at full speed.
const BATCH: usize = 64;
/// A publisher blocked on the end-to-end window this long writes its undelivered messages
/// off as lost (QoS 0 may drop them) instead of waiting forever.
const E2E_STALL: Duration = Duration::from_millis(500);

/// One publisher: its id (stamped in every payload) and topic.
pub struct PublisherSpec {
    pub id: u32,
    pub topic: String,
}

/// One subscriber: its filter and the publishers whose messages it must receive.
pub struct SubscriberSpec {
    pub filter: String,
    pub expects: Vec<u32>,
}

/// A complete flow scenario.
pub struct Plan {
    pub scenario: &'static str,
    pub publishers: Vec<PublisherSpec>,
    pub subscribers: Vec<SubscriberSpec>,
    pub qos: u8,
    pub payload: usize,
    pub window: usize,
    /// Messages per second per publisher; 0 = as fast as the window allows.
    pub rate: f64,
    /// See [`Shared::e2e_window`].
    pub e2e_window: u64,
    /// Subscribers connect with persistent sessions.
    pub persistent_subscribers: bool,
    pub duration: Duration,
    /// Drain ends once nothing arrived for this long (or everything arrived) ...
    pub drain: Duration,
    /// ... or at the latest this long after publishing stopped.
    pub drain_max: Duration,
    pub client_prefix: String,
    pub label: String,
    pub broker_pid: Option<u32>,
}

/// State shared by all tasks of a run.
struct Shared {
    clock: Clock,
    /// Messages sent so far per publisher id.
    sent: Vec<AtomicU64>,
    /// Stamped deliveries across all subscribers (duplicates included).
    received: AtomicU64,
    /// End-to-end window: messages a publisher may have sent that have not yet reached all
    /// of its subscribers (0 = no limit).
    e2e_window: u64,
    /// Deliveries so far of each publisher's messages, summed over subscribers
    /// (only maintained when `e2e_window` is set).
    delivered: Vec<AtomicU64>,
    /// Subscribers expecting each publisher's messages.
    fanout: Vec<u64>,
    /// Woken whenever subscribers made progress, for publishers waiting on the e2e window.
    progress: Notify,
}

/// Packet ids currently in flight for one publisher.
pub struct InflightWindow {
    in_use: Vec<bool>,
    next: u16,
    count: usize,
    limit: usize,
}

impl InflightWindow {
    pub fn new(limit: usize) -> Self {
        InflightWindow {
            in_use: vec![false; 65536],
            next: 0,
            count: 0,
            limit: limit.clamp(1, 65535),
        }
    }

    pub fn room(&self) -> usize {
        self.limit - self.count
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// A free non-zero packet id, if the window has room.
    pub fn acquire(&mut self) -> Option<u16> {
        if self.count >= self.limit {
            return None;
        }
        loop {
            self.next = self.next.wrapping_add(1).max(1);
            let slot = &mut self.in_use[usize::from(self.next)];
            if !*slot {
                *slot = true;
                self.count += 1;
                return Some(self.next);
            }
        }
    }

    /// Frees `id`; false if it was not in flight (a protocol error by the broker).
    pub fn release(&mut self, id: u16) -> bool {
        let slot = &mut self.in_use[usize::from(id)];
        if *slot {
            *slot = false;
            self.count -= 1;
            true
        } else {
            false
        }
    }
}

#[derive(Default)]
struct PubReport {
    sent: u64,
    unacked: u64,
    rejected: u64,
    unexpected_acks: u64,
}

struct PubLoop {
    client: Client,
    id: u32,
    topic: String,
    qos: u8,
    payload: Vec<u8>,
    window: InflightWindow,
    report: PubReport,
    shared: Arc<Shared>,
    /// Deliveries given up on after an e2e stall, counted as if they had arrived.
    written_off: u64,
}

impl PubLoop {
    fn encode_one(&mut self) {
        let packet_id = if self.qos > 0 {
            match self.window.acquire() {
                Some(id) => id,
                None => return,
            }
        } else {
            0
        };
        let stamp = Stamp {
            publisher: self.id,
            seq: self.report.sent,
            sent_ns: self.shared.clock.now_ns(),
        };
        stamp.write_into(&mut self.payload);
        mqtt::encode_publish(
            &mut self.client.wbuf,
            self.client.version,
            &self.topic,
            self.qos,
            packet_id,
            &self.payload,
        );
        self.report.sent += 1;
    }

    /// Deliveries of this publisher's messages that are still outstanding.
    fn undelivered(&self) -> u64 {
        let k = self
            .shared
            .fanout
            .get(self.id as usize)
            .copied()
            .unwrap_or(1);
        let delivered = self
            .shared
            .delivered
            .get(self.id as usize)
            .map_or(0, |d| d.load(Ordering::Relaxed));
        (self.report.sent * k).saturating_sub(delivered + self.written_off)
    }

    /// Messages that may still be sent under the end-to-end window.
    fn e2e_room(&self) -> usize {
        let window = self.shared.e2e_window;
        if window == 0 {
            return usize::MAX;
        }
        let k = self
            .shared
            .fanout
            .get(self.id as usize)
            .copied()
            .unwrap_or(1)
            .max(1);
        let outstanding = self.undelivered().div_ceil(k);
        usize::try_from(window.saturating_sub(outstanding)).unwrap_or(usize::MAX)
    }

    async fn send(&mut self, n: usize) -> Result<()> {
        for _ in 0..n {
            self.encode_one();
        }
        self.client.flush().await?;
        if let Some(s) = self.shared.sent.get(self.id as usize) {
            s.store(self.report.sent, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Handles every acknowledgement already read, queueing PUBRELs, then flushes.
    async fn handle_acks(&mut self) -> Result<()> {
        while let Some(p) = self.client.try_decode()? {
            match p {
                Incoming::PubAck { packet_id, code } | Incoming::PubComp { packet_id, code } => {
                    if !self.window.release(packet_id) {
                        self.report.unexpected_acks += 1;
                    }
                    if code >= 0x80 {
                        self.report.rejected += 1;
                    }
                }
                Incoming::PubRec { packet_id, code } if code >= 0x80 => {
                    self.report.rejected += 1;
                    self.window.release(packet_id);
                }
                Incoming::PubRec { packet_id, .. } => {
                    mqtt::encode_pubrel(&mut self.client.wbuf, packet_id)
                }
                Incoming::Disconnect { code } => {
                    bail!("broker sent DISCONNECT {code:#04x} to publisher")
                }
                _ => {}
            }
        }
        self.client.flush().await
    }

    async fn run(
        mut self,
        rate: f64,
        start: Instant,
        deadline: Instant,
        drain_end: Instant,
        drain_idle: Duration,
        phase: Duration,
    ) -> Result<PubReport> {
        let mut ticker = (rate > 0.0).then(|| {
            let mut t =
                tokio::time::interval_at(start + phase, Duration::from_secs_f64(1.0 / rate));
            t.set_missed_tick_behavior(MissedTickBehavior::Delay);
            t
        });
        let qos = self.qos;
        sleep_until(start).await;
        loop {
            if Instant::now() >= deadline {
                break;
            }
            match ticker.as_mut() {
                None => {
                    // Registered before checking the window so no wake-up is missed.
                    let shared = self.shared.clone();
                    let progress = shared.progress.notified();
                    tokio::pin!(progress);
                    progress.as_mut().enable();
                    let e2e_room = self.e2e_room();
                    let room = self.window.room().min(BATCH).min(e2e_room);
                    if room > 0 {
                        self.send(room).await?;
                    }
                    let e2e_blocked = e2e_room == 0;
                    if qos == 0 && !e2e_blocked {
                        // Let subscribers on the same runtime have their turn.
                        tokio::task::yield_now().await;
                        continue;
                    }
                    tokio::select! {
                        r = self.client.fill(), if qos > 0 => { r?; self.handle_acks().await?; }
                        _ = &mut progress, if e2e_blocked => {}
                        _ = sleep(E2E_STALL), if e2e_blocked => self.written_off += self.undelivered(),
                        _ = sleep_until(deadline) => break,
                    }
                }
                Some(t) => {
                    let can_send = self.window.room() > 0;
                    tokio::select! {
                        _ = t.tick(), if can_send => self.send(1).await?,
                        r = self.client.fill(), if qos > 0 => { r?; self.handle_acks().await?; }
                        _ = sleep_until(deadline) => break,
                    }
                }
            }
        }
        while self.window.len() > 0 {
            tokio::select! {
                r = self.client.fill() => { r?; self.handle_acks().await?; }
                _ = sleep(drain_idle) => break,
                _ = sleep_until(drain_end) => break,
            }
        }
        self.report.unacked = self.window.len() as u64;
        let report = std::mem::take(&mut self.report);
        self.client.disconnect().await;
        Ok(report)
    }
}

/// Per-publisher deliveries seen in one read batch, published to [`Shared::delivered`] for
/// the end-to-end window (a no-op when the window is off).
struct BatchCounts {
    counts: Vec<u64>,
    touched: Vec<u32>,
}

impl BatchCounts {
    fn new(shared: &Shared) -> Self {
        let n = if shared.e2e_window > 0 {
            shared.delivered.len()
        } else {
            0
        };
        BatchCounts {
            counts: vec![0; n],
            touched: Vec::new(),
        }
    }

    fn note(&mut self, from: Option<u32>) {
        let Some(p) = from else { return };
        if let Some(c) = self.counts.get_mut(p as usize) {
            if *c == 0 {
                self.touched.push(p);
            }
            *c += 1;
        }
    }

    fn publish(&mut self, shared: &Shared) {
        if self.touched.is_empty() {
            return;
        }
        for p in self.touched.drain(..) {
            if let (Some(c), Some(d)) = (
                self.counts.get_mut(p as usize),
                shared.delivered.get(p as usize),
            ) {
                d.fetch_add(std::mem::take(c), Ordering::Relaxed);
            }
        }
        shared.progress.notify_waiters();
    }
}

async fn run_subscriber(
    mut client: Client,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    keep_alive: u16,
) -> Result<Tally> {
    let mut tally = Tally::new();
    // QoS 2 packet ids received but not yet released: a resend of one of these is the same
    // message (spec-allowed), not an application-level duplicate.
    let mut awaiting_rel = vec![false; 65536];
    let mut batch = BatchCounts::new(&shared);
    let ping_every = Duration::from_secs(u64::from(keep_alive.max(2)) / 2);
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    loop {
        tokio::select! {
            biased;
            r = client.fill() => {
                r?;
                let now = shared.clock.now_ns();
                let before = tally.received;
                while let Some(p) = client.try_decode()? {
                    match p {
                        Incoming::Publish { qos, packet_id, payload } => match qos {
                            0 => batch.note(tally.record(&payload, now)),
                            1 => {
                                batch.note(tally.record(&payload, now));
                                mqtt::encode_puback(&mut client.wbuf, packet_id);
                            }
                            _ => {
                                let slot = &mut awaiting_rel[usize::from(packet_id)];
                                if !*slot {
                                    *slot = true;
                                    batch.note(tally.record(&payload, now));
                                }
                                mqtt::encode_pubrec(&mut client.wbuf, packet_id);
                            }
                        },
                        Incoming::PubRel { packet_id } => {
                            awaiting_rel[usize::from(packet_id)] = false;
                            mqtt::encode_pubcomp(&mut client.wbuf, packet_id);
                        }
                        Incoming::Disconnect { code } => bail!("broker sent DISCONNECT {code:#04x} to subscriber"),
                        _ => {}
                    }
                }
                shared.received.fetch_add(tally.received - before, Ordering::Relaxed);
                batch.publish(&shared);
                client.flush().await?;
            }
            _ = stop.changed() => break,
            _ = ping.tick() => {
                mqtt::encode_pingreq(&mut client.wbuf);
                client.flush().await?;
            }
        }
    }
    client.disconnect().await;
    Ok(tally)
}

/// Connects many clients, at most `parallel` handshakes at a time.
async fn connect_all(target: &Target, ids: Vec<String>) -> Result<Vec<Client>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(64) {
        let handles: Vec<JoinHandle<Result<Client>>> = chunk
            .iter()
            .map(|id| {
                let target = target.clone();
                let id = id.clone();
                tokio::spawn(async move {
                    Client::connect(&target, &id)
                        .await
                        .with_context(|| format!("client {id}"))
                })
            })
            .collect();
        for h in handles {
            out.push(h.await??);
        }
    }
    Ok(out)
}

/// Runs a plan; prints the human and RESULT lines; returns whether the run passed.
pub async fn run(plan: Plan, target: Target) -> Result<bool> {
    let shared = Arc::new(Shared {
        clock: Clock::new(),
        sent: (0..plan.publishers.len())
            .map(|_| AtomicU64::new(0))
            .collect(),
        received: AtomicU64::new(0),
        e2e_window: plan.e2e_window,
        delivered: (0..plan.publishers.len())
            .map(|_| AtomicU64::new(0))
            .collect(),
        fanout: (0..plan.publishers.len() as u32)
            .map(|p| {
                plan.subscribers
                    .iter()
                    .filter(|s| s.expects.contains(&p))
                    .count() as u64
            })
            .collect(),
        progress: Notify::new(),
    });

    // Subscribers first, all subscribed before anyone publishes.
    let sub_ids = (0..plan.subscribers.len())
        .map(|i| format!("{}s{i}", plan.client_prefix))
        .collect();
    let sub_target = Target {
        persistent: plan.persistent_subscribers,
        ..target.clone()
    };
    let mut sub_clients = connect_all(&sub_target, sub_ids)
        .await
        .context("connecting subscribers")?;
    for (c, spec) in sub_clients.iter_mut().zip(&plan.subscribers) {
        c.subscribe(&spec.filter, plan.qos).await?;
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let subs: Vec<JoinHandle<Result<Tally>>> = sub_clients
        .into_iter()
        .map(|c| {
            tokio::spawn(run_subscriber(
                c,
                shared.clone(),
                stop_rx.clone(),
                target.keep_alive,
            ))
        })
        .collect();

    let pub_ids = plan
        .publishers
        .iter()
        .map(|p| format!("{}p{}", plan.client_prefix, p.id))
        .collect();
    let pub_clients = connect_all(&target, pub_ids)
        .await
        .context("connecting publishers")?;
    let window = if plan.qos == 0 {
        usize::MAX
    } else {
        plan.window
    };
    let min_receive_max = pub_clients
        .iter()
        .map(|c| usize::from(c.receive_maximum))
        .min()
        .unwrap_or(65535);
    if plan.qos > 0 && window > min_receive_max {
        eprintln!(
            "note: broker's Receive Maximum {min_receive_max} caps the in-flight window {window}"
        );
    }

    let start = Instant::now() + Duration::from_millis(200);
    let deadline = start + plan.duration;
    let drain_end = deadline + plan.drain_max;
    let drain_idle = plan.drain;
    let n_pubs = plan.publishers.len().max(1) as f64;
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let pubs: Vec<JoinHandle<Result<PubReport>>> = pub_clients
        .into_iter()
        .zip(&plan.publishers)
        .map(|(client, spec)| {
            let limit = window.min(usize::from(client.receive_maximum));
            let mut payload = vec![0u8; plan.payload];
            payload
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b = (i % 251) as u8);
            let pl = PubLoop {
                window: InflightWindow::new(if plan.qos == 0 { 65535 } else { limit }),
                client,
                id: spec.id,
                topic: spec.topic.clone(),
                qos: plan.qos,
                payload,
                report: PubReport::default(),
                shared: shared.clone(),
                written_off: 0,
            };
            // Spread rate-limited publishers evenly over one period.
            let phase = if plan.rate > 0.0 {
                Duration::from_secs_f64(f64::from(spec.id) / n_pubs / plan.rate)
            } else {
                Duration::ZERO
            };
            let done = done_tx.clone();
            tokio::spawn(async move {
                let r = pl
                    .run(plan.rate, start, deadline, drain_end, drain_idle, phase)
                    .await;
                drop(done);
                r
            })
        })
        .collect();
    drop(done_tx);

    sleep_until(start).await;
    let start_ns = shared.clock.now_ns();
    let cpu_start = CpuSnapshot::take(plan.broker_pid);
    // Publishers finish at the deadline (plus waiting for their outstanding acks).
    while done_rx.recv().await.is_some() {}
    let mut errors = Vec::new();
    let mut pr = PubReport::default();
    for h in pubs {
        match h.await? {
            Ok(r) => {
                pr.sent += r.sent;
                pr.unacked += r.unacked;
                pr.rejected += r.rejected;
                pr.unexpected_acks += r.unexpected_acks;
            }
            Err(e) => errors.push(format!("publisher: {e:#}")),
        }
    }
    let sent_per_pub: Vec<u64> = shared
        .sent
        .iter()
        .map(|s| s.load(Ordering::Relaxed))
        .collect();
    let expected: u64 = plan
        .subscribers
        .iter()
        .flat_map(|s| s.expects.iter())
        .map(|&p| sent_per_pub.get(p as usize).copied().unwrap_or(0))
        .sum();
    // Drain: wait until everything expected arrived, or deliveries stalled for `drain`, or
    // the hard cap. A broker with a deep queue keeps delivering long after publishing stopped.
    let mut last_count = shared.received.load(Ordering::Relaxed);
    let mut last_progress = Instant::now();
    while last_count < expected
        && Instant::now() < drain_end
        && last_progress.elapsed() < plan.drain
    {
        sleep(Duration::from_millis(20)).await;
        let now_count = shared.received.load(Ordering::Relaxed);
        if now_count != last_count {
            last_count = now_count;
            last_progress = Instant::now();
        }
    }
    let (broker_cpu, gen_cpu) = CpuSnapshot::take(plan.broker_pid).percent_since(&cpu_start);
    let _ = stop_tx.send(true);

    let mut delivery = Delivery::default();
    let mut hist: Option<hdrhistogram::Histogram<u64>> = None;
    let mut last_ns = start_ns;
    let mut foreign = 0;
    for (h, spec) in subs.into_iter().zip(&plan.subscribers) {
        match h.await? {
            Ok(t) => {
                let exp: Vec<(u32, u64)> = spec
                    .expects
                    .iter()
                    .map(|&p| (p, sent_per_pub.get(p as usize).copied().unwrap_or(0)))
                    .collect();
                delivery += t.delivery(&exp);
                last_ns = last_ns.max(t.last_ns);
                foreign += t.foreign;
                match hist.as_mut() {
                    Some(all) => {
                        let _ = all.add(&t.latency);
                    }
                    None => hist = Some(t.latency),
                }
            }
            Err(e) => errors.push(format!("subscriber: {e:#}")),
        }
    }

    let secs = plan.duration.as_secs_f64();
    let deliver_secs = (last_ns.saturating_sub(start_ns) as f64 / 1e9).max(1e-9);
    let rate = if delivery.distinct > 0 {
        delivery.distinct as f64 / deliver_secs
    } else {
        0.0
    };
    let q = |p: f64| {
        hist.as_ref()
            .filter(|h| !h.is_empty())
            .map_or(0.0, |h| h.value_at_quantile(p) as f64 / 1e6)
    };
    let (p50, p99, p999, max) = (q(0.5), q(0.99), q(0.999), q(1.0));

    let mut failures = errors;
    if plan.qos >= 1 && delivery.lost > 0 {
        failures.push(format!("{} QoS {} messages lost", delivery.lost, plan.qos));
    }
    if plan.qos == 2 && delivery.duplicates > 0 {
        failures.push(format!(
            "{} QoS 2 messages delivered more than once",
            delivery.duplicates
        ));
    }
    if pr.unexpected_acks > 0 {
        failures.push(format!(
            "{} acknowledgements for packet ids not in flight",
            pr.unexpected_acks
        ));
    }
    let ok = failures.is_empty();

    out!(
        "[{label}] {sc} qos={qos} mqtt={v}: {np} pub -> {ns} sub, {pl} B, {secs:.0} s: sent {sent} ({srate:.0}/s), \
         delivered {del} ({rate:.0}/s), loss {lost}, dup {dup}, reorder {reo}, latency p50 {p50:.3} ms p99 {p99:.3} ms \
         p99.9 {p999:.3} ms max {max:.3} ms, cpu broker {bc}% generator {gc}%{extra}",
        label = plan.label,
        sc = plan.scenario,
        qos = plan.qos,
        v = if target.version == mqtt::Version::V5 { 5 } else { 3 },
        np = plan.publishers.len(),
        ns = plan.subscribers.len(),
        pl = plan.payload,
        sent = pr.sent,
        srate = pr.sent as f64 / secs,
        del = delivery.distinct,
        lost = delivery.lost,
        dup = delivery.duplicates,
        reo = delivery.reordered,
        bc = fmt_pct(broker_cpu),
        gc = fmt_pct(gen_cpu),
        extra = if pr.rejected + pr.unacked + foreign > 0 {
            format!(", rejected {} unacked {} foreign {}", pr.rejected, pr.unacked, foreign)
        } else {
            String::new()
        },
    );
    out!(
        "RESULT scenario={sc} broker={label} mqtt={v} qos={qos} pubs={np} subs={ns} payload={pl} duration={secs:.0} \
         sent={sent} delivered={del} rate={rate:.0} p50_ms={p50:.3} p99_ms={p99:.3} p999_ms={p999:.3} max_ms={max:.3} \
         loss={lost} dup={dup} reorder={reo} rejected={rej} unacked={una} broker_cpu={bc} gen_cpu={gc} status={st}",
        sc = plan.scenario,
        label = plan.label,
        v = if target.version == mqtt::Version::V5 { 5 } else { 3 },
        qos = plan.qos,
        np = plan.publishers.len(),
        ns = plan.subscribers.len(),
        pl = plan.payload,
        sent = pr.sent,
        del = delivery.distinct,
        lost = delivery.lost,
        dup = delivery.duplicates,
        reo = delivery.reordered,
        rej = pr.rejected,
        una = pr.unacked,
        bc = fmt_pct(broker_cpu),
        gc = fmt_pct(gen_cpu),
        st = if ok { "ok" } else { "fail" },
    );
    for f in &failures {
        eprintln!("FAIL: {f}");
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflight_window_bounds_and_recycles_packet_ids() {
        let mut w = InflightWindow::new(3);
        let ids: Vec<u16> = (0..3).filter_map(|_| w.acquire()).collect();
        assert_eq!(ids, vec![1, 2, 3]);
        assert_eq!(w.acquire(), None);
        assert!(w.release(2));
        assert!(!w.release(2), "releasing an id twice is reported");
        assert_eq!(w.room(), 1);
        assert_eq!(w.acquire(), Some(4));
    }

    #[test]
    fn inflight_window_never_hands_out_zero_or_a_busy_id_after_wrapping() {
        let mut w = InflightWindow::new(2);
        let first = w.acquire();
        assert_eq!(first, Some(1));
        for _ in 0..70_000 {
            let id = w.acquire().unwrap_or(0);
            assert!(id != 0 && id != 1);
            assert!(w.release(id));
        }
    }
}
