//! Test-only: rewrites every PUBLISH under its `filters` (default `#`): the topic gets the
//! `prefix` (default "rewritten/") and the payload is upper-cased (unless `uppercase = false`:
//! the throughput benchmark keeps its binary stamps intact); topics under `drop/` are dropped. With `counter = "<kv grant>"` it counts the messages in that bucket and appends
//! `#<count>` (or `#<error>`) to the payload. Used by the host tests and the hook benchmark.

use waspmq_plugin_sdk::*;

struct Rewrite {
    filters: Vec<String>,
    prefix: String,
    uppercase: bool,
    counter: Option<String>,
}

impl Plugin for Rewrite {
    fn init(config: Config) -> Result<Self, String> {
        let mut filters = config.strings("filters")?;
        if filters.is_empty() {
            filters.push("#".to_owned());
        }
        let prefix = config
            .string("prefix")?
            .unwrap_or_else(|| "rewritten/".to_owned());
        let counter = config.string("counter")?;
        let uppercase = config.bool("uppercase")?.unwrap_or(true);
        Ok(Rewrite {
            filters,
            prefix,
            uppercase,
            counter,
        })
    }

    fn message_filters(&self) -> Vec<String> {
        self.filters.clone()
    }

    fn on_publish(
        &self,
        _client: &ClientInfo,
        topic: &str,
        payload: Vec<u8>,
        _qos: Qos,
        _retain: bool,
    ) -> Verdict {
        if topic.starts_with("drop/") {
            return Verdict::Drop;
        }
        let mut payload = match self.uppercase {
            true => payload.to_ascii_uppercase(),
            false => payload,
        };
        if let Some(bucket) = &self.counter {
            payload.extend_from_slice(count(bucket).as_bytes());
        }
        Verdict::Rewrite(Rewritten {
            topic: format!("{}{}", self.prefix, topic),
            payload,
        })
    }
}

/// Increments the `messages` counter in `bucket`; answers `#<count>` or `#<error>`.
fn count(bucket: &str) -> String {
    let current = match kv::get(bucket, "messages") {
        Ok(value) => value
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map_or(0, u64::from_le_bytes),
        Err(e) => return format!("#{e:?}"),
    };
    let next = current + 1;
    match kv::set(bucket, "messages", &next.to_le_bytes()) {
        Ok(()) => format!("#{next}"),
        Err(e) => format!("#{e:?}"),
    }
}

export_plugin!(Rewrite, hooks = [MESSAGE]);
