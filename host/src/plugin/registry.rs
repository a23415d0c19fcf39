//! Loaded plugins: compiled components, their manifests, and which version of each is active.
//!
//! Loading a plugin compiles it (or takes it from the compile cache), type-checks its imports
//! against the host's capabilities (a component built for another `tributary:connector` version
//! or importing something the host does not offer is refused with the reason), instantiates it
//! once in an inert sandbox to read its manifest (unless the manifest is kept beside its
//! compile-cache entry), and checks the manifest. Only then does it become active; a broken
//! plugin never replaces a working one.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use anyhow::{Context, anyhow, bail};
use serde::Serialize;

use super::runtime::{Runtime, StoreState, digest_of};
use crate::bindings::ConnectorPre;
use crate::bindings::plugin::{FieldKind, PluginManifest};

/// A plugin ready to instantiate.
pub struct LoadedPlugin {
    /// What it says about itself.
    pub manifest: PluginManifest,
    /// Where it came from (`bundled` or a file path).
    pub source: String,
    /// SHA-256 of the component, hex.
    pub digest: String,
    /// Pre-linked component.
    pub pre: ConnectorPre<StoreState>,
}

/// A plugin as listed to operators.
#[derive(Clone, Debug, Serialize)]
pub struct PluginInfo {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// Display name.
    pub display_name: String,
    /// Description.
    pub description: String,
    /// Source.
    pub source: String,
    /// Digest prefix.
    pub digest: String,
    /// Whether this version is the active one.
    pub active: bool,
}

impl LoadedPlugin {
    /// `name@version`.
    pub fn label(&self) -> String {
        format!("{}@{}", self.manifest.name, self.manifest.version)
    }
}

/// Every loaded plugin version, and the active one per name.
#[derive(Default)]
pub struct Registry {
    plugins: RwLock<BTreeMap<String, Versions>>,
}

/// The kept versions of one plugin, oldest first, and which one new jobs use.
#[derive(Default)]
struct Versions {
    kept: Vec<Arc<LoadedPlugin>>,
    active: usize,
}

impl Registry {
    /// Registers a checked plugin; with `activate`, new jobs use it from now on.
    pub fn register(&self, plugin: Arc<LoadedPlugin>, activate: bool) -> anyhow::Result<()> {
        let mut plugins = self
            .plugins
            .write()
            .map_err(|_| anyhow!("plugin registry lock poisoned"))?;
        let versions = plugins.entry(plugin.manifest.name.clone()).or_default();
        let was_empty = versions.kept.is_empty();
        let active_digest = versions.kept.get(versions.active).map(|p| p.digest.clone());
        versions.kept.retain(|p| p.digest != plugin.digest);
        let digest = plugin.digest.clone();
        versions.kept.push(plugin);
        let target = if activate || was_empty {
            Some(digest)
        } else {
            active_digest
        };
        versions.active = target
            .and_then(|d| versions.kept.iter().position(|p| p.digest == d))
            .unwrap_or(versions.kept.len() - 1);
        Ok(())
    }

    /// Makes a kept version active: `selector` is a version string or a digest prefix (the newest
    /// match wins). Returns the newly active plugin.
    pub fn set_active(&self, name: &str, selector: &str) -> anyhow::Result<Arc<LoadedPlugin>> {
        let mut plugins = self
            .plugins
            .write()
            .map_err(|_| anyhow!("plugin registry lock poisoned"))?;
        let Some(versions) = plugins.get_mut(name) else {
            bail!("no plugin named `{name}` is loaded");
        };
        let found = versions.kept.iter().rposition(|p| {
            p.manifest.version == selector
                || (selector.len() >= 8 && p.digest.starts_with(selector))
        });
        let Some(index) = found else {
            let kept: Vec<String> = versions
                .kept
                .iter()
                .map(|p| {
                    format!(
                        "{} ({})",
                        p.manifest.version,
                        &p.digest[..12.min(p.digest.len())]
                    )
                })
                .collect();
            bail!(
                "plugin `{name}` has no kept version `{selector}` (kept: {})",
                kept.join(", ")
            );
        };
        versions.active = index;
        Ok(versions.kept[index].clone())
    }

    /// The version that was active before the current one (by load order), made active.
    pub fn roll_back(&self, name: &str) -> anyhow::Result<Arc<LoadedPlugin>> {
        let mut plugins = self
            .plugins
            .write()
            .map_err(|_| anyhow!("plugin registry lock poisoned"))?;
        let Some(versions) = plugins.get_mut(name) else {
            bail!("no plugin named `{name}` is loaded");
        };
        if versions.active == 0 {
            bail!("plugin `{name}` has no older version to roll back to");
        }
        versions.active -= 1;
        Ok(versions.kept[versions.active].clone())
    }

    /// The active version of `name`.
    pub fn get(&self, name: &str) -> anyhow::Result<Arc<LoadedPlugin>> {
        let plugins = self
            .plugins
            .read()
            .map_err(|_| anyhow!("plugin registry lock poisoned"))?;
        match plugins.get(name).and_then(|v| v.kept.get(v.active)) {
            Some(p) => Ok(p.clone()),
            None => {
                let known: Vec<&String> = plugins.keys().collect();
                bail!("no plugin named `{name}` is loaded (loaded: {known:?})")
            }
        }
    }

    /// Every version of every plugin.
    pub fn list(&self) -> Vec<PluginInfo> {
        let Ok(plugins) = self.plugins.read() else {
            return Vec::new();
        };
        plugins
            .values()
            .flat_map(|versions| {
                let active = versions.active;
                versions
                    .kept
                    .iter()
                    .enumerate()
                    .map(move |(i, p)| PluginInfo {
                        name: p.manifest.name.clone(),
                        version: p.manifest.version.clone(),
                        display_name: p.manifest.display_name.clone(),
                        description: p.manifest.description.clone(),
                        source: p.source.clone(),
                        digest: p.digest[..12.min(p.digest.len())].to_string(),
                        active: i == active,
                    })
            })
            .collect()
    }
}

/// Compiles and pre-links `wasm` (the type check against the host's WIT happens here).
pub async fn prepare(
    runtime: &Arc<Runtime>,
    wasm: Vec<u8>,
    source: &str,
) -> anyhow::Result<(ConnectorPre<StoreState>, String)> {
    let digest = digest_of(&wasm);
    prepare_digested(runtime, wasm, digest, source).await
}

/// [`prepare`] for a component whose SHA-256 (hex) is known, such as an embedded one: when the
/// compile cache holds it, `wasm` is never read.
pub async fn prepare_digested(
    runtime: &Arc<Runtime>,
    wasm: impl AsRef<[u8]> + Send + 'static,
    digest: String,
    source: &str,
) -> anyhow::Result<(ConnectorPre<StoreState>, String)> {
    let rt = runtime.clone();
    let label = source.to_string();
    let key = digest.clone();
    let component =
        tokio::task::spawn_blocking(move || rt.compile_digested(wasm.as_ref(), &key, &label))
            .await
            .context("compile task failed")?
            .with_context(|| format!("{source} is not a valid WebAssembly component"))?;
    let pre = runtime
        .pre(&component)
        .map_err(|e| explain_link_error(source, e))?;
    Ok((pre, digest))
}

/// Turns a linker type-check failure into a message naming the version or import at fault.
fn explain_link_error(source: &str, err: anyhow::Error) -> anyhow::Error {
    let text = format!("{err:#}");
    let ours = "tributary:connector/";
    if let Some(pos) = text.find(ours) {
        let rest = &text[pos + ours.len()..];
        let import: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '`' && *c != '"')
            .collect();
        if let Some((_, version)) = import.split_once('@')
            && version != crate::WIT_VERSION
        {
            return anyhow!(
                "{source} was built for tributary:connector@{version}, but this host provides tributary:connector@{}; rebuild the plugin against this version",
                crate::WIT_VERSION
            );
        }
    }
    anyhow!("{source} cannot be linked against this host's capabilities: {text}")
}

/// Checks a manifest before its plugin may be activated.
pub fn check_manifest(m: &PluginManifest) -> anyhow::Result<()> {
    let name_ok = !m.name.is_empty()
        && m.name.len() <= 64
        && m.name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !name_ok {
        bail!(
            "plugin name {:?} must be 1-64 lowercase letters, digits or dashes",
            m.name
        );
    }
    if m.version.is_empty() || m.version.len() > 64 {
        bail!("plugin {}: version must be 1-64 characters", m.name);
    }
    let mut keys = std::collections::HashSet::new();
    for f in &m.config {
        let key_ok = !f.key.is_empty()
            && f.key.len() <= 64
            && f.key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !key_ok {
            bail!(
                "plugin {}: config key {:?} must be lowercase letters, digits or `_`",
                m.name,
                f.key
            );
        }
        if !keys.insert(f.key.as_str()) {
            bail!(
                "plugin {}: config key `{}` is declared twice",
                m.name,
                f.key
            );
        }
        if f.kind == FieldKind::Select && f.options.is_empty() {
            bail!("plugin {}: select field `{}` has no options", m.name, f.key);
        }
        if let Some(d) = &f.default_value {
            serde_json::from_str::<serde_json::Value>(d).map_err(|e| {
                anyhow!("plugin {}: default of `{}` is not JSON: {e}", m.name, f.key)
            })?;
        }
    }
    for f in &m.config {
        for dep in &f.depends_on {
            if !keys.contains(dep.field.as_str()) {
                bail!(
                    "plugin {}: `{}` depends on unknown field `{}`",
                    m.name,
                    f.key,
                    dep.field
                );
            }
        }
    }
    Ok(())
}

/// Reads every `*.wasm` in `dir`, sorted by name.
pub fn wasm_files(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading plugins directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    files.sort();
    Ok(files)
}
