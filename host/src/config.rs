//! The operator's configuration file (`tributary.toml`): where data lives, limits, and the
//! connectors to run.
//!
//! ```toml
//! data_dir = "tributary-data"          # relative paths are relative to this file
//! plugins_dir = "plugins"              # extra .wasm plugins, loaded after the bundled ones
//!
//! [limits]
//! memory_mib = 256
//! cpu_seconds = 600
//!
//! [http]
//! allow_private = ["10.1.0.0/16", "127.0.0.1:9200"]   # non-public networks plugins may reach
//!                                      # (address, network or address:port; default none)
//!
//! [sink]
//! kind = "embedded"                    # or "elasticsearch" (then see [elasticsearch])
//! writer_memory = 157286400            # indexing memory all embedded-index writers share
//!
//! [elasticsearch]
//! host = "https://es.example.com:9200"
//! api_key = "…"                        # or username + password
//! ca_file = "ca.pem"
//! bulk_max_docs = 500                  # per bulk request (and bulk_max_bytes = 3 MiB)
//! bulk_concurrency = 5                 # bulk requests in flight
//!
//! [[connectors]]
//! id = "team-dropbox"
//! plugin = "dropbox"
//! tenant = "default"                   # default "default"
//! index = "dropbox"                    # default: the connector id
//! rules = [{ field = "name", rule = "ends_with", value = ".tmp", policy = "exclude" }]
//! [connectors.config]
//! app_key = "…"
//! ```
//!
//! Unknown keys anywhere are errors, reported with their location (`[service]` by the service
//! when it starts, which owns that section). Connector specifications are [`crate::connector`]'s.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::connector::{ConnectorSpec, valid_name};
use crate::extraction::ExtractConfig;
use crate::kv::StorageLimits;
use crate::limits::SandboxLimits;
use crate::net::HttpConfig;
use crate::pipeline::PipelineConfig;
use crate::plugin::runtime::RuntimeConfig;
use crate::sink::elasticsearch::ElasticsearchConfig;

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// State, indexes and caches live here.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Extra plugins (`*.wasm`), loaded after the bundled ones (a same-named plugin replaces the
    /// bundled one).
    #[serde(default)]
    pub plugins_dir: Option<PathBuf>,
    /// Compiled-plugin cache, shared by every data directory and command of this machine
    /// (default: `$TRIBUTARY_CACHE_DIR`, else `$XDG_CACHE_HOME/tributary/compiled`, else
    /// `~/.cache/tributary/compiled`, else `<data_dir>/cache`).
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Per-instance sandbox limits.
    #[serde(default)]
    pub limits: SandboxLimits,
    /// Engine settings.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// Outbound HTTP.
    #[serde(default)]
    pub http: HttpConfig,
    /// Plugin storage quotas.
    #[serde(default)]
    pub storage: StorageLimits,
    /// Document pipeline.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// Text extraction.
    #[serde(default)]
    pub extract: ExtractConfig,
    /// Which sink documents go to.
    #[serde(default)]
    pub sink: SinkConfig,
    /// The Elasticsearch sink's cluster and limits (used when `[sink] kind = "elasticsearch"`).
    #[serde(default)]
    pub elasticsearch: ElasticsearchConfig,
    /// `[service]`, kept raw: `tributary serve` reads its own section
    /// (`serve::ServeConfig::from_host`), so this module needs nothing of the service.
    #[serde(default)]
    pub service: toml::Table,
    /// Connectors.
    #[serde(default)]
    pub connectors: Vec<ConnectorSpec>,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            plugins_dir: None,
            cache_dir: None,
            limits: SandboxLimits::default(),
            runtime: RuntimeConfig::default(),
            http: HttpConfig::default(),
            storage: StorageLimits::default(),
            pipeline: PipelineConfig::default(),
            extract: ExtractConfig::default(),
            sink: SinkConfig::default(),
            elasticsearch: ElasticsearchConfig::default(),
            service: toml::Table::new(),
            connectors: Vec::new(),
        }
    }
}

/// `[sink]`: where documents go.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SinkConfig {
    /// `embedded` (the default tantivy index under the data directory) or `elasticsearch`.
    pub kind: SinkKind,
    /// Bytes of indexing memory all open writers of the embedded index share, whatever the
    /// number of tenants and indexes: each writer takes 50 MiB (48 of tantivy arena, 2 of queue),
    /// and an idle writer is committed and closed to make room for another index's. Default
    /// 150 MiB (three writers); at least 17 MB (one smaller writer).
    pub writer_memory: u64,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            kind: SinkKind::default(),
            writer_memory: crate::sink::embedded::DEFAULT_WRITER_MEMORY,
        }
    }
}

/// The sink backends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// The embedded tantivy index.
    #[default]
    Embedded,
    /// An Elasticsearch cluster (`[elasticsearch]`).
    Elasticsearch,
}

/// The user's compile cache, shared by every data directory: `$TRIBUTARY_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/tributary/compiled`, else `$HOME/.cache/tributary/compiled`. (Three
/// environment lookups; not worth a dependency.)
pub fn machine_cache_dir() -> Option<PathBuf> {
    let non_empty = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("TRIBUTARY_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = non_empty("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| non_empty("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("tributary/compiled"))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("tributary-data")
}

impl HostConfig {
    /// Reads a configuration file; relative paths in it are resolved against its directory.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut config: HostConfig =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.check()?;
        Ok(config)
    }

    /// Makes relative paths relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.data_dir);
        if let Some(p) = self.plugins_dir.as_mut() {
            fix(p);
        }
        if let Some(p) = self.cache_dir.as_mut() {
            fix(p);
        }
        if let Some(p) = self.elasticsearch.ca_file.as_mut() {
            fix(p);
        }
    }

    /// Structural checks that do not need plugins (ids unique, names sane).
    pub fn check(&self) -> anyhow::Result<()> {
        let mut seen = std::collections::HashSet::new();
        for c in &self.connectors {
            for (what, value) in [
                ("connector id", &c.id),
                ("tenant", &c.tenant),
                ("index", &c.index_name().to_string()),
            ] {
                if !valid_name(value) {
                    anyhow::bail!(
                        "{what} `{value}` must be 1-64 characters of letters, digits, `-`, `_` or `.`, not starting with `.`"
                    );
                }
            }
            c.schedule
                .check()
                .map_err(|e| anyhow::anyhow!("connector `{}`: {e}", c.id))?;
            if !seen.insert((c.tenant.clone(), c.id.clone())) {
                anyhow::bail!(
                    "connector `{}` is configured twice for tenant `{}`",
                    c.id,
                    c.tenant
                );
            }
        }
        Ok(())
    }

    /// The compile cache directory: the configured one, else the machine-wide one
    /// ([`machine_cache_dir`]), else `<data_dir>/cache`.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .or_else(machine_cache_dir)
            .unwrap_or_else(|| self.data_dir.join("cache"))
    }

    /// The engines plugin instances share — runtime (with the compile cache), HTTP client,
    /// extraction — built from these settings.
    pub fn engines(&self) -> anyhow::Result<crate::plugin::Engines> {
        let runtime = std::sync::Arc::new(crate::plugin::Runtime::new(
            self.limits.clone(),
            &self.runtime,
            Some(self.cache_dir()),
        )?);
        crate::plugin::Engines::new(
            runtime,
            &self.http,
            &self.extract,
            self.storage.clone(),
            self.pipeline.download_retry(),
        )
        .map(|e| e.with_download_budget(self.pipeline.max_host_download_bytes_in_flight))
    }

    /// A connector by id (any tenant when `tenant` is `None`).
    pub fn connector(&self, tenant: Option<&str>, id: &str) -> anyhow::Result<&ConnectorSpec> {
        let found: Vec<&ConnectorSpec> = self
            .connectors
            .iter()
            .filter(|c| c.id == id && tenant.is_none_or(|t| t == c.tenant))
            .collect();
        match found.as_slice() {
            [one] => Ok(one),
            [] => {
                let known: Vec<String> = self
                    .connectors
                    .iter()
                    .map(|c| format!("{}/{}", c.tenant, c.id))
                    .collect();
                anyhow::bail!(
                    "no connector `{id}` is configured (configured: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )
            }
            _ => anyhow::bail!("connector `{id}` exists in several tenants; pass --tenant"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_match_an_empty_file() {
        let empty: HostConfig = toml::from_str("").unwrap();
        assert_eq!(empty.data_dir, HostConfig::default().data_dir);
        assert_eq!(
            HostConfig::default().data_dir,
            PathBuf::from("tributary-data")
        );
    }

    #[tokio::test]
    async fn a_writer_memory_too_small_for_one_writer_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let config: HostConfig = toml::from_str("[sink]\nwriter_memory = 1000000\n").unwrap();
        assert_eq!(config.sink.writer_memory, 1_000_000);
        let config = HostConfig {
            data_dir: dir.path().join("data"),
            cache_dir: Some(dir.path().join("cache")),
            ..config
        };
        let err = format!("{:#}", crate::Host::open(config).await.err().unwrap());
        assert!(err.contains("[sink] writer_memory"), "{err}");
        assert!(!dir.path().join("data").exists(), "nothing created");
    }

    #[test]
    fn parses_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tributary.toml");
        std::fs::write(
            &path,
            r#"
            data_dir = "data"
            [limits]
            memory_mib = 64
            [[connectors]]
            id = "feed"
            plugin = "feed"
            rules = [{ field = "name", rule = "ends_with", value = ".tmp", policy = "exclude" }]
            [connectors.config]
            base_url = "http://127.0.0.1:1"
        "#,
        )
        .unwrap();
        let config = HostConfig::load(&path).unwrap();
        assert_eq!(config.data_dir, dir.path().join("data"));
        assert_eq!(config.limits.memory_mib, 64);
        assert_eq!(config.connectors[0].index_name(), "feed");
        assert_eq!(config.connectors[0].tenant, "default");
        assert!(
            config
                .connector(None, "nope")
                .unwrap_err()
                .to_string()
                .contains("configured: default/feed")
        );

        std::fs::write(&path, "[limits]\nmemory_mb = 1\n").unwrap();
        let err = HostConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("unknown field `memory_mb`"), "{err}");
        std::fs::write(&path, "[[connectors]]\nid = \"../x\"\nplugin = \"feed\"\n").unwrap();
        assert!(
            HostConfig::load(&path)
                .unwrap_err()
                .to_string()
                .contains("connector id `../x`")
        );
    }
}
