//! Test-only: rewrites every PUBLISH under its `filters` (default `#`): the topic gets the
//! `prefix` (default "rewritten/") and the payload is upper-cased; topics under `drop/` are
//! dropped. Used by the host tests and the hook benchmark.

use waspmq_plugin_sdk::*;

struct Rewrite {
    filters: Vec<String>,
    prefix: String,
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
        Ok(Rewrite { filters, prefix })
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
        Verdict::Rewrite(Rewritten {
            topic: format!("{}{}", self.prefix, topic),
            payload: payload.to_ascii_uppercase(),
        })
    }
}

export_plugin!(Rewrite, hooks = [MESSAGE]);
