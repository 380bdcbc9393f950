//! Reading the TOML file (to be written by the config task).

use std::path::Path;

use super::Config;

/// Loads the config file (or the defaults when `path` is `None`) and applies the environment.
pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    let mut config = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)?;
            let mut config: Config = toml::from_str(&text)?;
            config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            config
        }
        None => Config::default(),
    };
    super::env::apply(&mut config)?;
    Ok(config)
}
