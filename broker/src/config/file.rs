//! Reading and checking the TOML file. Errors name the file, the key and the line, because a
//! broker that starts with a half-understood config is worse than one that refuses to start.

use std::path::Path;

use anyhow::Context;

use super::{Config, ListenerType};

/// Loads the config file (or the defaults when `path` is `None`), applies the environment and
/// checks the result.
pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    let mut config = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            let mut config = parse(&text)
                .map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))?;
            config.base_dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| ".".into());
            config
        }
        None => Config::default(),
    };
    super::env::apply(&mut config, &super::env::Environment::from_process())?;
    check(&config)?;
    Ok(config)
}

/// Parses config text. The error names the key and its line (toml reports the span).
pub fn parse(text: &str) -> Result<Config, String> {
    // Missing keys take their defaults; a file that lists listeners replaces the default pair.
    toml::from_str(text).map_err(|e| describe(text, &e))
}

fn describe(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().to_owned();
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let source = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("line {line}: {message} (`{source}`)")
        }
        None => message,
    }
}

/// Checks what serde cannot: combinations of keys and values.
fn check(config: &Config) -> anyhow::Result<()> {
    for (name, listener) in &config.listeners {
        let secure = matches!(listener.kind, ListenerType::Tls | ListenerType::Wss);
        if secure && (listener.certfile.is_none() || listener.keyfile.is_none()) {
            anyhow::bail!(
                "listeners.{name}: type = \"{}\" needs `certfile` and `keyfile`",
                listener.kind.as_str()
            );
        }
        if !secure && (listener.certfile.is_some() || listener.require_certificate) {
            anyhow::bail!(
                "listeners.{name}: `certfile` and `require_certificate` need type = \"tls\" or \"wss\""
            );
        }
        if listener.require_certificate && listener.cafile.is_none() {
            anyhow::bail!("listeners.{name}: `require_certificate = true` needs `cafile`");
        }
        if listener.max_connections == Some(0) {
            anyhow::bail!("listeners.{name}: `max_connections` must be at least 1");
        }
    }
    let limits = &config.limits;
    if limits.max_packet_size < 64 || limits.max_packet_size > 268_435_460 {
        anyhow::bail!("limits.max_packet_size must be between 64 and 268435460 bytes");
    }
    if limits.receive_maximum == 0 || limits.max_inflight == 0 {
        anyhow::bail!("limits.receive_maximum and limits.max_inflight must be at least 1");
    }
    let mut names = std::collections::HashSet::new();
    for plugin in &config.plugins {
        if !names.insert(plugin.name.as_str()) {
            anyhow::bail!("plugins: the name `{}` is used twice", plugin.name);
        }
        if plugin.timeout_ms == 0 || plugin.memory_mb == 0 {
            anyhow::bail!(
                "plugins.{}: `timeout_ms` and `memory_mb` must be at least 1",
                plugin.name
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_shaped_config_parses() {
        let config = parse(
            r#"
sys_interval = 10
max_keepalive = 60
[listeners.default]
type = "tcp"
bind = "0.0.0.0:1883"
max_connections = 10000
[auth]
allow_anonymous = false
"#,
        )
        .expect("parses");
        assert_eq!(config.sys_interval, 10);
        assert_eq!(config.max_keepalive, Some(60));
        assert!(!config.auth.allow_anonymous);
        assert_eq!(config.listeners.len(), 1);
        assert_eq!(config.listeners["default"].max_connections, Some(10000));
    }

    #[test]
    fn empty_file_gives_the_default_listeners() {
        let config = parse("").expect("parses");
        assert_eq!(config.listeners["default"].bind.port(), 1883);
        assert_eq!(config.listeners["ws"].bind.port(), 8080);
        assert_eq!(config.listeners["ws"].max_connections, Some(100));
        assert!(config.auth.allow_anonymous);
    }

    #[test]
    fn unknown_key_is_refused_with_its_name_and_line() {
        let error = parse("sys_interval = 5\n\n[auth]\nallow_anonymus = true\n").unwrap_err();
        assert!(error.contains("line 4"), "{error}");
        assert!(error.contains("allow_anonymus"), "{error}");
    }

    #[test]
    fn wrong_type_is_refused_with_its_line() {
        let error = parse("sys_interval = \"often\"\n").unwrap_err();
        assert!(error.starts_with("line 1"), "{error}");
    }

    #[test]
    fn bad_bind_address_is_refused() {
        let error = parse("[listeners.default]\ntype = \"tcp\"\nbind = \"nowhere\"\n").unwrap_err();
        assert!(error.contains("line 3"), "{error}");
    }

    #[test]
    fn tls_listener_without_certificate_is_refused() {
        let config =
            parse("[listeners.secure]\ntype = \"tls\"\nbind = \"0.0.0.0:8883\"\n").expect("parses");
        let error = check(&config).unwrap_err().to_string();
        assert!(error.contains("listeners.secure"), "{error}");
    }

    #[test]
    fn plugins_parse_in_order_with_their_config_tables() {
        let config = parse(
            r#"
[[plugins]]
name = "auth-anonymous"
path = "plugins/auth_anonymous.wasm"
on_error = "deny"
required = true
[plugins.config]
allow_anonymous = true

[[plugins]]
name = "sqlite-conn-log"
path = "plugins/sqlite_conn_log.wasm"
sql = { connections = "clients.db" }
"#,
        )
        .expect("parses");
        assert_eq!(config.plugins.len(), 2);
        assert_eq!(config.plugins[0].name, "auth-anonymous");
        assert!(config.plugins[0].required);
        assert_eq!(config.plugins[0].timeout_ms, 50);
        assert_eq!(
            config.plugins[1].sql["connections"].to_str(),
            Some("clients.db")
        );
        check(&config).expect("valid");
    }
}
