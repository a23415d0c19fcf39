//! Plugin versions under the service: uploads (validated, kept on disk, remembered), activation
//! and rollback, the plugins-directory watcher, restoring kept versions on start, and the
//! refusals with their reasons.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Service, lock, store};
use crate::clock::unix_now;
use crate::plugin::LoadedPlugin;

/// A plugin file or upload that was refused, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Rejection {
    /// Where it came from.
    pub source: String,
    /// Why it was refused.
    pub reason: String,
    /// When, Unix seconds.
    pub at: i64,
}

impl Service {
    /// Loads uploaded plugin versions (inactive), then re-applies the remembered active ones.
    pub(super) async fn restore_plugins(&self) -> anyhow::Result<()> {
        for upload in self.store.uploads().await? {
            let loaded = match std::fs::read(&upload.path) {
                Ok(wasm) => self
                    .host
                    .add_plugin(wasm, &format!("upload:{}", &upload.digest[..12]), false)
                    .await
                    .map(|_| ()),
                Err(e) => Err(anyhow::anyhow!("reading {}: {e}", upload.path)),
            };
            if let Err(err) = loaded {
                tracing::error!(plugin = %upload.name, version = %upload.version, "kept plugin version not restored: {err:#}");
            }
        }
        for (name, digest) in self.store.active_plugins().await? {
            if let Err(err) = self.host.registry().set_active(&name, &digest) {
                tracing::warn!("the remembered active version of `{name}` is gone: {err:#}");
            }
        }
        Ok(())
    }

    /// Validates and keeps an uploaded plugin; with `activate`, new jobs use it. An invalid
    /// component is refused with the reason and changes nothing.
    pub async fn upload_plugin(
        &self,
        wasm: Vec<u8>,
        activate: bool,
    ) -> anyhow::Result<Arc<LoadedPlugin>> {
        let digest = hex::encode(Sha256::digest(&wasm));
        let source = format!("upload:{}", &digest[..12]);
        let plugin = match self.host.add_plugin(wasm.clone(), &source, false).await {
            Ok(p) => p,
            Err(err) => {
                self.reject(&source, &err);
                return Err(err);
            }
        };
        let dir = self.host.config().data_dir.join("plugins");
        let path = dir.join(format!(
            "{}-{}-{}.wasm",
            plugin.manifest.name,
            sanitize(&plugin.manifest.version),
            &digest[..12]
        ));
        crate::atomic_file::write_atomic(&path, &wasm)?;
        self.store
            .record_upload(&store::Upload {
                digest: digest.clone(),
                name: plugin.manifest.name.clone(),
                version: plugin.manifest.version.clone(),
                path: path.display().to_string(),
            })
            .await?;
        if activate {
            self.activate_plugin(&plugin.manifest.name, &digest).await?;
        }
        Ok(plugin)
    }

    /// Makes a kept version active (by version or digest prefix) and remembers the choice.
    pub async fn activate_plugin(
        &self,
        name: &str,
        selector: &str,
    ) -> anyhow::Result<Arc<LoadedPlugin>> {
        let plugin = self.host.registry().set_active(name, selector)?;
        self.store.set_active_plugin(name, &plugin.digest).await?;
        self.metrics.plugin_activated();
        tracing::info!(plugin = %plugin.label(), "activated");
        Ok(plugin)
    }

    /// Activates the version before the active one.
    pub async fn roll_back_plugin(&self, name: &str) -> anyhow::Result<Arc<LoadedPlugin>> {
        let plugin = self.host.registry().roll_back(name)?;
        self.store.set_active_plugin(name, &plugin.digest).await?;
        self.metrics.plugin_activated();
        tracing::info!(plugin = %plugin.label(), "rolled back");
        Ok(plugin)
    }

    /// Recently refused plugins.
    pub fn rejections(&self) -> Vec<Rejection> {
        lock(&self.rejected).clone()
    }

    fn reject(&self, source: &str, err: &anyhow::Error) {
        tracing::error!("plugin {source} refused: {err:#}");
        let mut rejected = lock(&self.rejected);
        rejected.push(Rejection {
            source: source.to_string(),
            reason: format!("{err:#}"),
            at: unix_now(),
        });
        let excess = rejected.len().saturating_sub(20);
        rejected.drain(..excess);
    }

    pub(super) async fn watch_loop(self: Arc<Self>, dir: PathBuf) {
        let mut stop = self.shutdown.subscribe();
        let every = Duration::from_secs(self.config.plugin_watch_seconds.max(1));
        // What Host::open already loaded counts as seen.
        let mut seen = std::mem::take(&mut *lock(&self.watched));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            let now = snapshot(&dir);
            for (path, stamp) in &now {
                if seen.get(path) == Some(stamp) {
                    continue;
                }
                let source = path.display().to_string();
                let loaded = match std::fs::read(path) {
                    Ok(wasm) => self.host.add_plugin(wasm, &source, true).await,
                    Err(e) => Err(anyhow::anyhow!("reading {source}: {e}")),
                };
                match loaded {
                    Ok(plugin) => {
                        if let Err(err) = self
                            .store
                            .set_active_plugin(&plugin.manifest.name, &plugin.digest)
                            .await
                        {
                            tracing::error!("remembering the active plugin failed: {err:#}");
                        }
                        self.metrics.plugin_activated();
                        tracing::info!(plugin = %plugin.label(), %source, "new plugin version from the plugins directory is active");
                    }
                    Err(err) => self.reject(&source, &err),
                }
            }
            seen = now;
        }
    }
}

/// The `.wasm` files of `dir` with their modification time and size: what the watcher compares
/// from one look to the next.
pub(super) fn snapshot(dir: &std::path::Path) -> HashMap<PathBuf, (Option<SystemTime>, u64)> {
    crate::plugin::registry::wasm_files(dir)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            let meta = std::fs::metadata(&p).ok()?;
            Some((p, (meta.modified().ok(), meta.len())))
        })
        .collect()
}

/// `s` with every character but ASCII letters, digits, `.` and `-` replaced by `_`, for a file
/// name.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
