//! Hot swap trigger: watches the folders of the plugin files and, once a burst of changes has
//! settled, asks the chain to check its files. Deploy a new version by writing it next to the
//! old one and renaming it over it (atomic on one file system).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use parking_lot::RwLock;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::chain::{Chain, DEBOUNCE};

pub struct PluginWatcher {
    watcher: RecommendedWatcher,
    watched: Vec<PathBuf>,
    /// File names of the plugins: events about other files (a database next to them) are
    /// ignored.
    names: Arc<RwLock<Vec<OsString>>>,
}

impl PluginWatcher {
    /// Starts the watcher and the task that reacts to it; both end with the chain.
    pub fn start(chain: Weak<Chain>) -> anyhow::Result<PluginWatcher> {
        let (changed, mut changes) = mpsc::channel::<()>(1);
        let names: Arc<RwLock<Vec<OsString>>> = Arc::default();
        let plugin_names = names.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let relevant = match &event {
                Ok(e) => {
                    let names = plugin_names.read();
                    !e.kind.is_access()
                        && e.paths
                            .iter()
                            .any(|p| p.file_name().is_some_and(|n| names.iter().any(|x| x == n)))
                }
                Err(_) => true,
            };
            if relevant {
                // A full channel already holds a wake-up: nothing is lost.
                let _ = changed.try_send(());
            }
        })?;
        tokio::spawn(async move {
            while changes.recv().await.is_some() {
                // Let the burst of events of one deploy settle.
                tokio::time::sleep(DEBOUNCE).await;
                while changes.try_recv().is_ok() {}
                let Some(chain) = chain.upgrade() else { return };
                chain.check_files().await;
            }
        });
        Ok(PluginWatcher {
            watcher,
            watched: Vec::new(),
            names,
        })
    }

    /// Watches exactly the plugin `files` from now on (through their folders, so a file
    /// replaced by rename is still seen).
    pub fn watch(&mut self, files: &[&Path], dirs: &[PathBuf]) {
        *self.names.write() = files
            .iter()
            .filter_map(|f| f.file_name().map(OsString::from))
            .collect();
        for old in &self.watched {
            if !dirs.contains(old) {
                let _ = self.watcher.unwatch(old);
            }
        }
        for dir in dirs {
            if self.watched.contains(dir) {
                continue;
            }
            if let Err(e) = self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %dir.display(), "cannot watch plugin folder: {e}");
            }
        }
        self.watched = dirs.to_vec();
    }
}
