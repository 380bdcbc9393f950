//! The plugin's `[plugins.config]` table, handed over by the broker as JSON.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// A plugin's configuration table.
#[derive(Debug, Clone)]
pub struct Config {
    table: Value,
}

impl Config {
    /// A config from its JSON text (the broker hands it over this way; use it in unit tests).
    pub fn from_json(json: &str) -> Result<Config, String> {
        Config::parse(json)
    }

    pub(crate) fn parse(json: &str) -> Result<Config, String> {
        let table: Value = if json.trim().is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_str(json).map_err(|e| format!("config is not JSON: {e}"))?
        };
        Ok(Config { table })
    }

    /// The whole table.
    pub fn raw(&self) -> &Value {
        &self.table
    }

    /// The table as your own `serde` type.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_value(self.table.clone()).map_err(|e| format!("bad config: {e}"))
    }

    /// A boolean key; `Ok(None)` when absent, an error when of another type.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.table.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(format!("`{key}` must be true or false, not {other}")),
        }
    }

    /// A string key; `Ok(None)` when absent.
    pub fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.table.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("`{key}` must be a string, not {other}")),
        }
    }

    /// A list of strings; empty when absent.
    pub fn strings(&self, key: &str) -> Result<Vec<String>, String> {
        match self.table.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(format!("`{key}` must list strings, found {other}")),
                })
                .collect(),
            Some(other) => Err(format!("`{key}` must be a list of strings, not {other}")),
        }
    }
}
