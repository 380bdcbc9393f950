//! Environment overrides (to be completed: `.env` file support).

use super::Config;

pub fn apply(config: &mut Config) -> anyhow::Result<()> {
    let _ = config;
    Ok(())
}
