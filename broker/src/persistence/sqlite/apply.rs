//! The SQL behind each [`Op`], and the start-up [`load`] that applies the restore rules
//! (expired sessions and messages deleted, orphans removed) and reads everything back.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use rusqlite::{params, Transaction};

use crate::persistence::encoding::{
    decode_message, decode_options, encode_message, encode_options,
};
use crate::persistence::record::{
    from_millis, to_millis, InflightState, RestoredSession, Snapshot, StoredInflight,
    StoredMessage, StoredSession, StoredSubscription, StoredWill,
};
use crate::persistence::store::{Op, StoreError};

use super::schema::map_err;

/// The tables holding per-client records, all keyed by `client_id`.
const CLIENT_TABLES: [&str; 5] = [
    "sessions",
    "subscriptions",
    "queued",
    "inflight",
    "inbound_qos2",
];

fn expires(m: &StoredMessage) -> Option<i64> {
    m.expires_at.map(to_millis)
}

fn seq_value(path: &Path, seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Other {
        path: path.to_path_buf(),
        detail: format!("queue sequence number {seq} is beyond 2^63"),
    })
}

/// Runs one op inside `tx`.
pub fn apply(tx: &Transaction<'_>, path: &Path, op: &Op) -> Result<(), StoreError> {
    let err = |e| map_err(path, e);
    match op {
        Op::SaveSession(s) => {
            let (will, will_expires, will_delay) = match &s.will {
                Some(w) => (
                    Some(encode_message(&w.message)),
                    expires(&w.message),
                    Some(i64::from(w.delay_secs)),
                ),
                None => (None, None, None),
            };
            tx.prepare_cached(
                "INSERT INTO sessions (client_id, expiry_interval, disconnected_at, will,
                     will_expires_at, will_delay) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (client_id) DO UPDATE SET expiry_interval = excluded.expiry_interval,
                     disconnected_at = excluded.disconnected_at, will = excluded.will,
                     will_expires_at = excluded.will_expires_at, will_delay = excluded.will_delay",
            )
            .and_then(|mut st| {
                st.execute(params![
                    s.client_id,
                    i64::from(s.expiry_interval),
                    s.disconnected_at.map(to_millis),
                    will,
                    will_expires,
                    will_delay
                ])
            })
            .map_err(err)?;
            tx.prepare_cached("DELETE FROM subscriptions WHERE client_id = ?1")
                .and_then(|mut st| st.execute([&s.client_id]))
                .map_err(err)?;
            for sub in &s.subscriptions {
                put_subscription(tx, path, &s.client_id, sub)?;
            }
        }
        Op::SetDisconnected { client_id, at } => {
            tx.prepare_cached("UPDATE sessions SET disconnected_at = ?2 WHERE client_id = ?1")
                .and_then(|mut st| st.execute(params![client_id, at.map(to_millis)]))
                .map_err(err)?;
        }
        Op::SetWill { client_id, will } => {
            let (blob, exp, delay) = match will {
                Some(w) => (
                    Some(encode_message(&w.message)),
                    expires(&w.message),
                    Some(i64::from(w.delay_secs)),
                ),
                None => (None, None, None),
            };
            tx.prepare_cached(
                "UPDATE sessions SET will = ?2, will_expires_at = ?3, will_delay = ?4
                 WHERE client_id = ?1",
            )
            .and_then(|mut st| st.execute(params![client_id, blob, exp, delay]))
            .map_err(err)?;
        }
        Op::DeleteSession { client_id } => delete_client(tx, path, client_id)?,
        Op::AddSubscription {
            client_id,
            subscription,
        } => put_subscription(tx, path, client_id, subscription)?,
        Op::RemoveSubscription { client_id, filter } => {
            tx.prepare_cached("DELETE FROM subscriptions WHERE client_id = ?1 AND filter = ?2")
                .and_then(|mut st| st.execute([client_id, filter]))
                .map_err(err)?;
        }
        Op::SetRetained(m) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO retained (topic, message, expires_at) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut st| st.execute(params![m.topic, encode_message(m), expires(m)]))
            .map_err(err)?;
        }
        Op::ClearRetained { topic } => {
            tx.prepare_cached("DELETE FROM retained WHERE topic = ?1")
                .and_then(|mut st| st.execute([topic]))
                .map_err(err)?;
        }
        Op::Enqueue {
            client_id,
            seq,
            message,
        } => {
            let seq = seq_value(path, *seq)?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO queued (client_id, seq, message, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    client_id,
                    seq,
                    encode_message(message),
                    expires(message)
                ])
            })
            .map_err(err)?;
        }
        Op::Dequeue { client_id, seq } => {
            let seq = seq_value(path, *seq)?;
            tx.prepare_cached("DELETE FROM queued WHERE client_id = ?1 AND seq = ?2")
                .and_then(|mut st| st.execute(params![client_id, seq]))
                .map_err(err)?;
        }
        Op::PutInflight { client_id, entry } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO inflight (client_id, packet_id, state, message, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    client_id,
                    entry.packet_id,
                    entry.state.as_i64(),
                    encode_message(&entry.message),
                    expires(&entry.message)
                ])
            })
            .map_err(err)?;
        }
        Op::SetInflightState {
            client_id,
            packet_id,
            state,
        } => {
            tx.prepare_cached(
                "UPDATE inflight SET state = ?3 WHERE client_id = ?1 AND packet_id = ?2",
            )
            .and_then(|mut st| st.execute(params![client_id, packet_id, state.as_i64()]))
            .map_err(err)?;
        }
        Op::RemoveInflight {
            client_id,
            packet_id,
        } => {
            tx.prepare_cached("DELETE FROM inflight WHERE client_id = ?1 AND packet_id = ?2")
                .and_then(|mut st| st.execute(params![client_id, packet_id]))
                .map_err(err)?;
        }
        Op::AddInboundQos2 {
            client_id,
            packet_id,
        } => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO inbound_qos2 (client_id, packet_id) VALUES (?1, ?2)",
            )
            .and_then(|mut st| st.execute(params![client_id, packet_id]))
            .map_err(err)?;
        }
        Op::RemoveInboundQos2 {
            client_id,
            packet_id,
        } => {
            tx.prepare_cached("DELETE FROM inbound_qos2 WHERE client_id = ?1 AND packet_id = ?2")
                .and_then(|mut st| st.execute(params![client_id, packet_id]))
                .map_err(err)?;
        }
    }
    Ok(())
}

fn put_subscription(
    tx: &Transaction<'_>,
    path: &Path,
    client_id: &str,
    sub: &StoredSubscription,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO subscriptions (client_id, filter, options, identifier)
         VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut st| {
        st.execute(params![
            client_id,
            sub.filter,
            encode_options(&sub.options),
            sub.identifier
        ])
    })
    .map_err(|e| map_err(path, e))?;
    Ok(())
}

fn delete_client(tx: &Transaction<'_>, path: &Path, client_id: &str) -> Result<(), StoreError> {
    for table in CLIENT_TABLES {
        tx.prepare_cached(&format!("DELETE FROM {table} WHERE client_id = ?1"))
            .and_then(|mut st| st.execute([client_id]))
            .map_err(|e| map_err(path, e))?;
    }
    Ok(())
}

fn corrupt(path: &Path, what: &str, detail: &str) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("{what}: {detail}"),
    }
}

fn message(
    path: &Path,
    what: &str,
    blob: &[u8],
    expires_at: Option<i64>,
) -> Result<StoredMessage, StoreError> {
    let mut m = decode_message(blob).map_err(|e| corrupt(path, what, e.0))?;
    m.expires_at = expires_at.map(from_millis);
    Ok(m)
}

fn u32_column(path: &Path, what: &str, v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| corrupt(path, what, "value out of range"))
}

/// Applies the restore rules inside `tx`, then reads everything (see `Store::load`).
pub fn load(tx: &Transaction<'_>, path: &Path, now: SystemTime) -> Result<Snapshot, StoreError> {
    let err = |e| map_err(path, e);
    let now_ms = to_millis(now);

    // Messages whose expiry passed are not delivered any more [MQTT-3.3.2-5]. In-flight ones
    // stay: their onward delivery had started.
    tx.execute(
        "DELETE FROM retained WHERE expires_at IS NOT NULL AND expires_at <= ?1",
        [now_ms],
    )
    .map_err(err)?;
    tx.execute(
        "DELETE FROM queued WHERE expires_at IS NOT NULL AND expires_at <= ?1",
        [now_ms],
    )
    .map_err(err)?;

    let mut sessions: BTreeMap<String, RestoredSession> = BTreeMap::new();
    let mut expired: Vec<String> = Vec::new();
    {
        let mut st = tx
            .prepare(
                "SELECT client_id, expiry_interval, disconnected_at, will, will_expires_at,
                     will_delay FROM sessions",
            )
            .map_err(err)?;
        let mut rows = st.query([]).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let client_id: String = row.get(0).map_err(err)?;
            let expiry: i64 = row.get(1).map_err(err)?;
            let disconnected_at: Option<i64> = row.get(2).map_err(err)?;
            let will_blob: Option<Vec<u8>> = row.get(3).map_err(err)?;
            let will_expires: Option<i64> = row.get(4).map_err(err)?;
            let will_delay: Option<i64> = row.get(5).map_err(err)?;
            let will = match will_blob {
                Some(blob) => Some(StoredWill {
                    message: message(path, "session will", &blob, will_expires)?,
                    delay_secs: u32_column(path, "will delay", will_delay.unwrap_or(0))?,
                }),
                None => None,
            };
            let session = StoredSession {
                client_id: client_id.clone(),
                expiry_interval: u32_column(path, "session expiry interval", expiry)?,
                disconnected_at: disconnected_at.map(from_millis),
                will,
                subscriptions: Vec::new(),
            };
            if session.is_expired(now) {
                expired.push(client_id);
            } else {
                sessions.insert(
                    client_id,
                    RestoredSession {
                        session,
                        ..RestoredSession::default()
                    },
                );
            }
        }
    }
    for client_id in &expired {
        delete_client(tx, path, client_id)?;
    }
    // Records of sessions that no longer exist (written after a session was deleted by a
    // batch racing with it) would never be read; drop them.
    for table in &CLIENT_TABLES[1..] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE client_id NOT IN (SELECT client_id FROM sessions)"),
            [],
        )
        .map_err(err)?;
    }
    // A session connected when the broker stopped lost its connection then; its expiry clock
    // starts now, the earliest moment the broker can know.
    tx.execute(
        "UPDATE sessions SET disconnected_at = ?1 WHERE disconnected_at IS NULL",
        [now_ms],
    )
    .map_err(err)?;
    for restored in sessions.values_mut() {
        if restored.session.disconnected_at.is_none() {
            restored.session.disconnected_at = Some(from_millis(now_ms));
        }
    }

    {
        let mut st = tx
            .prepare(
                "SELECT client_id, filter, options, identifier FROM subscriptions
                 ORDER BY client_id, filter",
            )
            .map_err(err)?;
        let mut rows = st.query([]).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let client_id: String = row.get(0).map_err(err)?;
            let options: i64 = row.get(2).map_err(err)?;
            let identifier: Option<i64> = row.get(3).map_err(err)?;
            let sub = StoredSubscription {
                filter: row.get(1).map_err(err)?,
                options: decode_options(options)
                    .map_err(|e| corrupt(path, "subscription options", e.0))?,
                identifier: identifier
                    .map(|v| u32_column(path, "subscription identifier", v))
                    .transpose()?,
            };
            if let Some(s) = sessions.get_mut(&client_id) {
                s.session.subscriptions.push(sub);
            }
        }
    }
    {
        let mut st = tx
            .prepare(
                "SELECT client_id, seq, message, expires_at FROM queued ORDER BY client_id, seq",
            )
            .map_err(err)?;
        let mut rows = st.query([]).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let client_id: String = row.get(0).map_err(err)?;
            let seq: i64 = row.get(1).map_err(err)?;
            let blob: Vec<u8> = row.get(2).map_err(err)?;
            let exp: Option<i64> = row.get(3).map_err(err)?;
            let seq =
                u64::try_from(seq).map_err(|_| corrupt(path, "queue sequence", "negative"))?;
            let m = message(path, "queued message", &blob, exp)?;
            if let Some(s) = sessions.get_mut(&client_id) {
                s.queued.push((seq, m));
            }
        }
    }
    {
        let mut st = tx
            .prepare(
                "SELECT client_id, packet_id, state, message, expires_at FROM inflight
                 ORDER BY client_id, packet_id",
            )
            .map_err(err)?;
        let mut rows = st.query([]).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let client_id: String = row.get(0).map_err(err)?;
            let packet_id: i64 = row.get(1).map_err(err)?;
            let state: i64 = row.get(2).map_err(err)?;
            let blob: Vec<u8> = row.get(3).map_err(err)?;
            let exp: Option<i64> = row.get(4).map_err(err)?;
            let entry = StoredInflight {
                packet_id: u16::try_from(packet_id)
                    .map_err(|_| corrupt(path, "in-flight packet id", "out of range"))?,
                state: InflightState::from_i64(state)
                    .ok_or_else(|| corrupt(path, "in-flight state", "unknown value"))?,
                message: message(path, "in-flight message", &blob, exp)?,
            };
            if let Some(s) = sessions.get_mut(&client_id) {
                s.inflight.push(entry);
            }
        }
    }
    {
        let mut st = tx
            .prepare("SELECT client_id, packet_id FROM inbound_qos2 ORDER BY client_id, packet_id")
            .map_err(err)?;
        let mut rows = st.query([]).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let client_id: String = row.get(0).map_err(err)?;
            let packet_id: i64 = row.get(1).map_err(err)?;
            let packet_id = u16::try_from(packet_id)
                .map_err(|_| corrupt(path, "inbound QoS 2 packet id", "out of range"))?;
            if let Some(s) = sessions.get_mut(&client_id) {
                s.inbound_qos2.push(packet_id);
            }
        }
    }
    let mut retained = Vec::new();
    {
        let mut st = tx
            .prepare("SELECT message, expires_at FROM retained ORDER BY topic")
            .map_err(err)?;
        let mut rows = st.query([]).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let blob: Vec<u8> = row.get(0).map_err(err)?;
            let exp: Option<i64> = row.get(1).map_err(err)?;
            retained.push(message(path, "retained message", &blob, exp)?);
        }
    }
    Ok(Snapshot {
        sessions: sessions.into_values().collect(),
        retained,
    })
}
