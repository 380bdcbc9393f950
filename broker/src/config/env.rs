//! Environment overrides, as the seed tutorial had them: `MQTT_BIND_ADDRESS` (the `default`
//! listener's bind), `MQTT_WS_BIND` (the `ws` listener's bind) and `ALLOW_ANONYMOUS`. Variables
//! are also read from a `.env` file in the working directory; the real environment wins.

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::Context;

use super::{Config, ListenerConfig, ListenerType};

/// The variables that matter, captured once so tests need not touch the process environment.
#[derive(Debug, Default)]
pub struct Environment {
    vars: HashMap<String, String>,
}

const KEYS: [&str; 3] = ["MQTT_BIND_ADDRESS", "MQTT_WS_BIND", "ALLOW_ANONYMOUS"];

impl Environment {
    /// The process environment, completed by `./.env` where a variable is not set.
    pub fn from_process() -> Environment {
        let mut vars = HashMap::new();
        if let Ok(iter) = dotenvy::from_path_iter(".env") {
            for (key, value) in iter.flatten() {
                if KEYS.contains(&key.as_str()) {
                    vars.insert(key, value);
                }
            }
        }
        for key in KEYS {
            if let Ok(value) = std::env::var(key) {
                vars.insert(key.to_owned(), value);
            }
        }
        Environment { vars }
    }

    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Environment {
        Environment {
            vars: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}

pub fn apply(config: &mut Config, env: &Environment) -> anyhow::Result<()> {
    if let Some(bind) = env.get("MQTT_BIND_ADDRESS") {
        set_bind(
            config,
            "default",
            ListenerType::Tcp,
            bind,
            "MQTT_BIND_ADDRESS",
        )?;
    }
    if let Some(bind) = env.get("MQTT_WS_BIND") {
        set_bind(config, "ws", ListenerType::Ws, bind, "MQTT_WS_BIND")?;
    }
    if let Some(value) = env.get("ALLOW_ANONYMOUS") {
        config.auth.allow_anonymous = match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            other => anyhow::bail!("ALLOW_ANONYMOUS must be true or false, not `{other}`"),
        };
    }
    Ok(())
}

fn set_bind(
    config: &mut Config,
    listener: &str,
    kind: ListenerType,
    value: &str,
    variable: &str,
) -> anyhow::Result<()> {
    let addr: SocketAddr = value.trim().parse().with_context(|| {
        format!("{variable} must be an address such as 0.0.0.0:1883, not `{value}`")
    })?;
    match config.listeners.get_mut(listener) {
        Some(existing) => existing.bind = addr,
        None => {
            let mut new = ListenerConfig::new(kind, addr);
            if kind == ListenerType::Ws {
                new.max_connections = Some(100);
            }
            config.listeners.insert(listener.to_owned(), new);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_variables_override_the_listeners() {
        let mut config = Config::default();
        let env = Environment::from_pairs(&[
            ("MQTT_BIND_ADDRESS", "127.0.0.1:2883"),
            ("MQTT_WS_BIND", "127.0.0.1:9090"),
        ]);
        apply(&mut config, &env).expect("applies");
        assert_eq!(config.listeners["default"].bind.port(), 2883);
        assert_eq!(config.listeners["ws"].bind.port(), 9090);
    }

    #[test]
    fn allow_anonymous_false_refuses_anonymous() {
        let mut config = Config::default();
        apply(
            &mut config,
            &Environment::from_pairs(&[("ALLOW_ANONYMOUS", "False")]),
        )
        .expect("applies");
        assert!(!config.auth.allow_anonymous);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let mut config = Config::default();
        let error = apply(
            &mut config,
            &Environment::from_pairs(&[("MQTT_WS_BIND", "x")]),
        )
        .unwrap_err();
        assert!(error.to_string().contains("MQTT_WS_BIND"));
        let error = apply(
            &mut config,
            &Environment::from_pairs(&[("ALLOW_ANONYMOUS", "maybe")]),
        )
        .unwrap_err();
        assert!(error.to_string().contains("ALLOW_ANONYMOUS"));
    }
}
