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
//! [sink]
//! kind = "embedded"                    # or "elasticsearch" (then see [elasticsearch])
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
//! Unknown keys anywhere are errors, reported with their location.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::extraction::ExtractConfig;
use crate::kv::StorageLimits;
use crate::limits::SandboxLimits;
use crate::net::HttpConfig;
use crate::pipeline::PipelineConfig;
use crate::plugin::runtime::RuntimeConfig;
use crate::rules::RuleSpec;
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
    /// Compiled-plugin cache (default `<data_dir>/cache`).
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
    /// `tributary serve`: admin token, concurrency and tenant quotas.
    #[serde(default)]
    pub service: crate::service::ServiceConfig,
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
            service: crate::service::ServiceConfig::default(),
            connectors: Vec::new(),
        }
    }
}

/// `[sink]`: where documents go.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SinkConfig {
    /// `embedded` (the default tantivy index under the data directory) or `elasticsearch`.
    pub kind: SinkKind,
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

fn default_data_dir() -> PathBuf {
    PathBuf::from("tributary-data")
}

fn default_tenant() -> String {
    "default".into()
}

/// One configured connector.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSpec {
    /// Unique within the tenant.
    pub id: String,
    /// Plugin name (see `tributary plugins`).
    pub plugin: String,
    /// Owning tenant.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Target index (default: the connector id).
    #[serde(default)]
    pub index: Option<String>,
    /// Settings checked against the plugin's schema.
    #[serde(default)]
    pub config: Map<String, Value>,
    /// Basic sync rules, applied in order.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    /// Advanced rules, in the plugin's own format (validated by the plugin).
    #[serde(default)]
    pub advanced_rules: Option<Value>,
    /// When `tributary serve` runs syncs of this connector.
    #[serde(default)]
    pub schedule: Schedule,
}

/// Sync intervals for `tributary serve`, in minutes; absent means never.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Full syncs.
    pub full_minutes: Option<u64>,
    /// Incremental syncs (a full sync runs first if none has succeeded yet).
    pub incremental_minutes: Option<u64>,
    /// Access-control syncs.
    pub access_control_minutes: Option<u64>,
    /// Full syncs, as a duration with a unit: `"30s"`, `"15m"`, `"2h"`, `"1d"` (instead of
    /// `full_minutes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_every: Option<String>,
    /// Incremental syncs, as a duration with a unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental_every: Option<String>,
    /// Access-control syncs, as a duration with a unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_control_every: Option<String>,
    /// Full syncs at the times of a five-field cron expression, UTC (e.g. `"30 2 * * *"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_cron: Option<String>,
    /// Incremental syncs on a cron expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental_cron: Option<String>,
    /// Access-control syncs on a cron expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_control_cron: Option<String>,
}

/// When a kind of sync runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Timing {
    /// Every so often.
    Every(std::time::Duration),
    /// At the times of a cron expression.
    Cron(crate::cron::Cron),
}

impl Schedule {
    /// When `kind` runs, if it is scheduled; an error names a malformed duration or cron
    /// expression, or a kind given more than one way.
    pub fn timing(&self, kind: crate::SyncKind) -> anyhow::Result<Option<Timing>> {
        let (cron, name) = match kind {
            crate::SyncKind::Full => (&self.full_cron, "full"),
            crate::SyncKind::Incremental => (&self.incremental_cron, "incremental"),
            crate::SyncKind::AccessControl => (&self.access_control_cron, "access_control"),
        };
        let every = self.interval(kind)?;
        match (cron, every) {
            (Some(_), Some(_)) => {
                anyhow::bail!("schedule: give `{name}` an interval or a `{name}_cron`, not both")
            }
            (Some(text), None) => crate::cron::Cron::parse(text)
                .map(|c| Some(Timing::Cron(c)))
                .map_err(|e| anyhow::anyhow!("schedule: `{name}_cron`: {e}")),
            (None, every) => Ok(every.map(Timing::Every)),
        }
    }

    /// How often `kind` runs by interval, if it is scheduled so; an error names a malformed
    /// duration or a kind given both ways.
    pub fn interval(&self, kind: crate::SyncKind) -> anyhow::Result<Option<std::time::Duration>> {
        let (minutes, every, name) = match kind {
            crate::SyncKind::Full => (self.full_minutes, &self.full_every, "full"),
            crate::SyncKind::Incremental => (
                self.incremental_minutes,
                &self.incremental_every,
                "incremental",
            ),
            crate::SyncKind::AccessControl => (
                self.access_control_minutes,
                &self.access_control_every,
                "access_control",
            ),
        };
        match (minutes, every) {
            (Some(_), Some(_)) => {
                anyhow::bail!("schedule: give `{name}_minutes` or `{name}_every`, not both")
            }
            (Some(0), None) => Ok(None),
            (Some(m), None) => Ok(Some(std::time::Duration::from_secs(m.saturating_mul(60)))),
            (None, Some(text)) => parse_every(text)
                .map(Some)
                .map_err(|e| anyhow::anyhow!("schedule: `{name}_every`: {e}")),
            (None, None) => Ok(None),
        }
    }

    /// Checks every interval.
    pub fn check(&self) -> anyhow::Result<()> {
        for kind in [
            crate::SyncKind::Full,
            crate::SyncKind::Incremental,
            crate::SyncKind::AccessControl,
        ] {
            self.timing(kind)?;
        }
        Ok(())
    }
}

/// Parses `"<n><unit>"` with unit `s`, `m`, `h` or `d` (at least one second).
pub fn parse_every(text: &str) -> anyhow::Result<std::time::Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| anyhow::anyhow!("`{text}` has no unit (s, m, h or d)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| anyhow::anyhow!("`{text}` does not start with a whole number"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => anyhow::bail!("unknown unit `{other}` in `{text}` (use s, m, h or d)"),
    };
    let secs = n.saturating_mul(scale);
    anyhow::ensure!(secs >= 1, "`{text}` is shorter than one second");
    Ok(std::time::Duration::from_secs(secs))
}

impl ConnectorSpec {
    /// The index documents go to.
    pub fn index_name(&self) -> &str {
        self.index.as_deref().unwrap_or(&self.id)
    }
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

    /// The compile cache directory.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("cache"))
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

/// Names used for tenants, connectors and indexes.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn schedule_intervals_take_minutes_or_a_unit() {
        use std::time::Duration;
        let s = Schedule {
            full_minutes: Some(2),
            incremental_every: Some("45s".into()),
            access_control_every: Some("1d".into()),
            ..Schedule::default()
        };
        assert_eq!(
            s.interval(crate::SyncKind::Full).unwrap(),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            s.interval(crate::SyncKind::Incremental).unwrap(),
            Some(Duration::from_secs(45))
        );
        assert_eq!(
            s.interval(crate::SyncKind::AccessControl).unwrap(),
            Some(Duration::from_secs(86_400))
        );
        for bad in ["10", "5x", "m", "0s", "-3m"] {
            assert!(parse_every(bad).is_err(), "{bad} was accepted");
        }
        let both = Schedule {
            full_minutes: Some(1),
            full_every: Some("1m".into()),
            ..Schedule::default()
        };
        let err = both.check().unwrap_err().to_string();
        assert!(err.contains("not both"), "{err}");
        let cron = Schedule {
            full_cron: Some("30 2 * * *".into()),
            ..Schedule::default()
        };
        assert!(matches!(
            cron.timing(crate::SyncKind::Full).unwrap(),
            Some(Timing::Cron(_))
        ));
        let bad = Schedule {
            incremental_cron: Some("61 * * * *".into()),
            ..Schedule::default()
        };
        let err = bad.check().unwrap_err().to_string();
        assert!(
            err.contains("incremental_cron") && err.contains("minute"),
            "{err}"
        );
    }

    #[test]
    fn defaults_match_an_empty_file() {
        let empty: HostConfig = toml::from_str("").unwrap();
        assert_eq!(empty.data_dir, HostConfig::default().data_dir);
        assert_eq!(
            HostConfig::default().data_dir,
            PathBuf::from("tributary-data")
        );
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
