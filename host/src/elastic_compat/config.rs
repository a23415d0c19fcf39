//! `config.yml` in the shape of Elastic's connectors service.
//!
//! ```yaml
//! elasticsearch.host: https://es.example.com:9200   # dotted keys, as Elastic's example file
//! elasticsearch.api_key: "…"                        # or username + password
//! connectors:
//!   - connector_id: my-dropbox
//!     service_type: dropbox
//!     api_key: "…"              # this connector's documents are written with this key
//! service:
//!   idling: 30                  # seconds between polls for pending jobs
//!   heartbeat: 300
//!   max_concurrent_content_syncs: 1
//!   max_concurrent_access_control_syncs: 1
//! ```
//!
//! Parsed as Elastic does: dotted keys are nested (`elasticsearch.host` ≡ `elasticsearch: {host}`),
//! `${VAR}` and `${VAR|default}` are replaced from the environment (EnvYAML), defaults are
//! Elastic's (including `elastic`/`changeme` Basic credentials when neither an API key nor a
//! username is given). Unknown keys: Elastic ignores them silently; tributary accepts every
//! key Elastic's configuration reference defines — using those it implements, logging those it
//! does not — and rejects any other key, naming it, so a typo never silently falls back to a
//! default. `sources` (Elastic's map of Python classes) is accepted and ignored.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::{Map, Value};

use crate::sink::elasticsearch::ElasticsearchConfig;

/// One configured connector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorEntry {
    /// Id of the connector document in `.elastic-connectors`.
    pub connector_id: String,
    /// Its service type (`dropbox`, `box`, …): the plugin that runs it.
    pub service_type: Option<String>,
    /// API key for writing its documents (replaces the service-wide credentials).
    pub api_key: Option<String>,
}

/// `service.*` limits.
#[derive(Clone, Debug)]
pub struct ServiceSettings {
    /// Between polls for pending jobs.
    pub idling: Duration,
    /// Between connector heartbeats (`last_seen`).
    pub heartbeat: Duration,
    /// Content (full, incremental) syncs running at once.
    pub max_concurrent_content_syncs: usize,
    /// Access-control syncs running at once.
    pub max_concurrent_access_control_syncs: usize,
    /// Between sweeps for jobs nobody heartbeats any more.
    pub job_cleanup_interval: Duration,
    /// Largest file downloaded, in bytes.
    pub max_file_download_size: Option<u64>,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            idling: Duration::from_secs(30),
            heartbeat: Duration::from_secs(300),
            max_concurrent_content_syncs: 1,
            max_concurrent_access_control_syncs: 1,
            job_cleanup_interval: Duration::from_secs(300),
            max_file_download_size: None,
        }
    }
}

/// A parsed `config.yml`.
#[derive(Clone, Debug)]
pub struct CompatConfig {
    /// The cluster (service-wide credentials) and bulk limits.
    pub elasticsearch: ElasticsearchConfig,
    /// Connectors this service runs jobs for.
    pub connectors: Vec<ConnectorEntry>,
    /// Service limits.
    pub service: ServiceSettings,
    /// `elasticsearch.bulk.concurrent_downloads`.
    pub concurrent_downloads: Option<u32>,
    /// `extraction_service.host`.
    pub extraction_service: Option<String>,
    /// Keys Elastic defines that tributary does not use (logged at start-up).
    pub ignored: Vec<String>,
}

// The keys Elastic's configuration reference defines, per section.
const ERROR_MONITOR: &[&str] = &[
    "enabled",
    "max_total_errors",
    "max_consecutive_errors",
    "max_error_rate",
    "error_window_size",
    "error_queue_size",
];
const BULK: &[&str] = &[
    "display_every",
    "queue_max_size",
    "queue_max_mem_size",
    "queue_refresh_interval",
    "queue_refresh_timeout",
    "chunk_max_mem_size",
    "max_text_document_size",
    "chunk_size",
    "max_concurrency",
    "concurrent_downloads",
    "max_retries",
    "retry_interval",
    "enable_operations_logging",
    "error_monitor",
];
const ELASTICSEARCH: &[&str] = &[
    "host",
    "api_key",
    "username",
    "password",
    "ssl",
    "verify_certs",
    "ca_certs",
    "retry_on_timeout",
    "request_timeout",
    "max_wait_duration",
    "initial_backoff_duration",
    "backoff_multiplier",
    "log_level",
    "max_retries",
    "retry_interval",
    "feature_use_connectors_api",
    "headers",
    "bulk",
];
const SERVICE: &[&str] = &[
    "worker_mode",
    "service_types",
    "idling",
    "heartbeat",
    "preflight_max_attempts",
    "preflight_idle",
    "max_errors",
    "max_errors_span",
    "max_concurrent_content_syncs",
    "max_concurrent_access_control_syncs",
    "max_concurrent_scheduling_tasks",
    "max_file_download_size",
    "job_cleanup_interval",
    "log_level",
    "fips_mode",
];
const EXTRACTION: &[&str] = &[
    "host",
    "timeout",
    "use_file_pointers",
    "stream_chunk_size",
    "shared_volume_dir",
];
const TOP: &[&str] = &[
    "connectors",
    "connector_id",
    "service_type",
    "elasticsearch",
    "service",
    "extraction_service",
    "sources",
];
/// Keys tributary implements; every other known key is logged as ignored.
const USED: &[&str] = &[
    "connectors",
    "connector_id",
    "service_type",
    "elasticsearch.host",
    "elasticsearch.api_key",
    "elasticsearch.username",
    "elasticsearch.password",
    "elasticsearch.ssl",
    "elasticsearch.verify_certs",
    "elasticsearch.ca_certs",
    "elasticsearch.request_timeout",
    "elasticsearch.bulk.chunk_size",
    "elasticsearch.bulk.chunk_max_mem_size",
    "elasticsearch.bulk.max_concurrency",
    "elasticsearch.bulk.max_retries",
    "elasticsearch.bulk.retry_interval",
    "elasticsearch.bulk.concurrent_downloads",
    "service.idling",
    "service.heartbeat",
    "service.max_concurrent_content_syncs",
    "service.max_concurrent_access_control_syncs",
    "service.job_cleanup_interval",
    "service.max_file_download_size",
    "service.worker_mode",
    "extraction_service.host",
    "sources",
];

/// Elastic's `_nest_configs`: `a.b.c: v` at the top level becomes `a: {b: {c: v}}`, merged
/// with any nested form of the same section.
fn nest(raw: Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in raw {
        // `a.b.c: v` → `{a: {b: {c: v}}}`, then merged like any nested section.
        let nested = key.rsplit('.').fold(value, |inner, part| {
            Value::Object(Map::from_iter([(part.to_string(), inner)]))
        });
        if let Value::Object(map) = nested {
            merge(&mut out, map);
        }
    }
    out
}

fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// EnvYAML's `${NAME}` and `${NAME|default}` in string values.
fn substitute(value: &mut Value, env: &dyn Fn(&str) -> Option<String>) {
    match value {
        Value::String(s) => {
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                match after.find('}') {
                    Some(end) => {
                        let spec = &after[..end];
                        let (name, default) = match spec.split_once('|') {
                            Some((n, d)) => (n, Some(d)),
                            None => (spec, None),
                        };
                        match env(name).or(default.map(str::to_string)) {
                            Some(v) => out.push_str(&v),
                            None => out.push_str(&rest[start..start + 3 + end]),
                        }
                        rest = &after[end + 1..];
                    }
                    None => {
                        out.push_str(&rest[start..]);
                        rest = "";
                    }
                }
            }
            out.push_str(rest);
            *s = out;
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, env)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute(v, env)),
        _ => {}
    }
}

fn check_keys(
    map: &Map<String, Value>,
    path: &str,
    allowed: &[&str],
    unknown: &mut Vec<String>,
    seen: &mut Vec<String>,
) {
    for key in map.keys() {
        let full = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        if allowed.contains(&key.as_str()) {
            seen.push(full);
        } else {
            unknown.push(full);
        }
    }
}

fn seconds(v: &Value, key: &str) -> anyhow::Result<Duration> {
    let secs = v
        .as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .ok_or_else(|| anyhow!("`{key}` must be a number of seconds, not {v}"))?;
    if !(0.0..=86_400.0 * 365.0).contains(&secs) {
        bail!("`{key}` is out of range: {secs}");
    }
    Ok(Duration::from_secs_f64(secs))
}

fn count(v: &Value, key: &str) -> anyhow::Result<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .ok_or_else(|| anyhow!("`{key}` must be a non-negative integer, not {v}"))
}

fn text(v: &Value, key: &str) -> anyhow::Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => bail!("`{key}` must be a string, not {other}"),
    }
}

fn boolean(v: &Value, key: &str) -> anyhow::Result<bool> {
    v.as_bool()
        .or_else(|| match v.as_str() {
            Some("true" | "True" | "yes") => Some(true),
            Some("false" | "False" | "no") => Some(false),
            _ => None,
        })
        .ok_or_else(|| anyhow!("`{key}` must be true or false, not {v}"))
}

impl CompatConfig {
    /// Reads and checks a `config.yml`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let yaml =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut config = Self::parse(&yaml, &|name| std::env::var(name).ok())
            .with_context(|| format!("{}", path.display()))?;
        if let Some(ca) = config.elasticsearch.ca_file.as_mut()
            && ca.is_relative()
        {
            *ca = path.parent().unwrap_or(Path::new(".")).join(&*ca);
        }
        Ok(config)
    }

    /// Parses `config.yml` text; `env` looks up `${VAR}` substitutions.
    pub fn parse(yaml: &str, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let raw: Value = serde_yaml_ng::from_str(yaml).map_err(|e| anyhow!("invalid YAML: {e}"))?;
        let raw = match raw {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            other => bail!("the configuration must be a mapping, not {other}"),
        };
        let mut root = nest(raw);
        root.values_mut().for_each(|v| substitute(v, env));
        let empty = Map::new();
        let section = |name: &str| -> anyhow::Result<&Map<String, Value>> {
            match root.get(name) {
                None | Some(Value::Null) => Ok(&empty),
                Some(Value::Object(m)) => Ok(m),
                Some(other) => bail!("`{name}` must be a mapping, not {other}"),
            }
        };
        let (es, service, extraction) = (
            section("elasticsearch")?,
            section("service")?,
            section("extraction_service")?,
        );
        let bulk = match es.get("bulk") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(m)) => m,
            Some(other) => bail!("`elasticsearch.bulk` must be a mapping, not {other}"),
        };
        let monitor = match bulk.get("error_monitor") {
            Some(Value::Object(m)) => m,
            _ => &empty,
        };
        let (mut unknown, mut seen) = (Vec::new(), Vec::new());
        check_keys(&root, "", TOP, &mut unknown, &mut seen);
        check_keys(es, "elasticsearch", ELASTICSEARCH, &mut unknown, &mut seen);
        check_keys(bulk, "elasticsearch.bulk", BULK, &mut unknown, &mut seen);
        check_keys(
            monitor,
            "elasticsearch.bulk.error_monitor",
            ERROR_MONITOR,
            &mut unknown,
            &mut seen,
        );
        check_keys(service, "service", SERVICE, &mut unknown, &mut seen);
        check_keys(
            extraction,
            "extraction_service",
            EXTRACTION,
            &mut unknown,
            &mut seen,
        );
        if !unknown.is_empty() {
            bail!(
                "unknown setting(s): {} (see Elastic's config.yml reference for the known ones)",
                unknown.join(", ")
            );
        }
        let ignored: Vec<String> = seen
            .into_iter()
            .filter(|k| {
                !USED.contains(&k.as_str())
                    && !matches!(
                        k.as_str(),
                        "elasticsearch" | "service" | "extraction_service" | "elasticsearch.bulk"
                    )
            })
            .collect();

        let mut elasticsearch = ElasticsearchConfig::default();
        if let Some(v) = es.get("host") {
            elasticsearch.host = text(v, "elasticsearch.host")?.unwrap_or(elasticsearch.host);
        }
        let api_key = match es.get("api_key") {
            Some(v) => text(v, "elasticsearch.api_key")?,
            None => None,
        };
        let username = match es.get("username") {
            Some(v) => text(v, "elasticsearch.username")?,
            None => None,
        };
        let password = match es.get("password") {
            Some(v) => text(v, "elasticsearch.password")?,
            None => None,
        };
        // Elastic's precedence: an API key wins over Basic credentials, whose defaults are
        // elastic/changeme.
        if api_key.is_some() {
            elasticsearch.api_key = api_key;
        } else {
            elasticsearch.username = Some(username.unwrap_or_else(|| "elastic".into()));
            elasticsearch.password = Some(password.unwrap_or_else(|| "changeme".into()));
        }
        if let Some(v) = es.get("verify_certs") {
            elasticsearch.verify_certs = boolean(v, "elasticsearch.verify_certs")?;
        }
        if let Some(v) = es.get("ca_certs") {
            elasticsearch.ca_file = text(v, "elasticsearch.ca_certs")?.map(Into::into);
        }
        if let Some(v) = es.get("request_timeout") {
            elasticsearch.request_timeout_secs = seconds(v, "elasticsearch.request_timeout")?
                .as_secs()
                .max(1);
        }
        if let Some(v) = bulk.get("chunk_size") {
            elasticsearch.bulk_max_docs = count(v, "elasticsearch.bulk.chunk_size")? as usize;
        }
        if let Some(v) = bulk.get("chunk_max_mem_size") {
            // MiB, as Elastic.
            let mib = v.as_f64().ok_or_else(|| {
                anyhow!("`elasticsearch.bulk.chunk_max_mem_size` must be a number of MiB")
            })?;
            elasticsearch.bulk_max_bytes = (mib * 1024.0 * 1024.0) as usize;
        }
        if let Some(v) = bulk.get("max_concurrency") {
            elasticsearch.bulk_concurrency =
                count(v, "elasticsearch.bulk.max_concurrency")? as usize;
        }
        if let Some(v) = bulk.get("max_retries") {
            elasticsearch.retries = count(v, "elasticsearch.bulk.max_retries")? as u32;
        }
        if let Some(v) = bulk.get("retry_interval") {
            elasticsearch.retry_backoff_ms =
                seconds(v, "elasticsearch.bulk.retry_interval")?.as_millis() as u64;
        }
        let concurrent_downloads = match bulk.get("concurrent_downloads") {
            Some(v) => Some(count(v, "elasticsearch.bulk.concurrent_downloads")? as u32),
            None => None,
        };

        let mut settings = ServiceSettings::default();
        if let Some(v) = service.get("worker_mode")
            && boolean(v, "service.worker_mode")?
        {
            bail!(
                "`service.worker_mode: true` (discovering connectors by service type) is not supported: list them under `connectors`"
            );
        }
        if let Some(v) = service.get("idling") {
            settings.idling = seconds(v, "service.idling")?;
        }
        if let Some(v) = service.get("heartbeat") {
            settings.heartbeat = seconds(v, "service.heartbeat")?;
        }
        if let Some(v) = service.get("job_cleanup_interval") {
            settings.job_cleanup_interval = seconds(v, "service.job_cleanup_interval")?;
        }
        if let Some(v) = service.get("max_concurrent_content_syncs") {
            settings.max_concurrent_content_syncs =
                count(v, "service.max_concurrent_content_syncs")?.max(1) as usize;
        }
        if let Some(v) = service.get("max_concurrent_access_control_syncs") {
            settings.max_concurrent_access_control_syncs =
                count(v, "service.max_concurrent_access_control_syncs")?.max(1) as usize;
        }
        if let Some(v) = service.get("max_file_download_size") {
            settings.max_file_download_size = Some(count(v, "service.max_file_download_size")?);
        }

        let mut connectors = Vec::new();
        match root.get("connectors") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let Value::Object(entry) = item else {
                        bail!("connectors[{i}] must be a mapping");
                    };
                    for key in entry.keys() {
                        if !matches!(key.as_str(), "connector_id" | "service_type" | "api_key") {
                            bail!(
                                "connectors[{i}]: unknown setting `{key}` (known: connector_id, service_type, api_key)"
                            );
                        }
                    }
                    let id = entry
                        .get("connector_id")
                        .map(|v| text(v, "connector_id"))
                        .transpose()?
                        .flatten()
                        .ok_or_else(|| anyhow!("connectors[{i}]: `connector_id` is required"))?;
                    let service_type = entry
                        .get("service_type")
                        .map(|v| text(v, "service_type"))
                        .transpose()?
                        .flatten();
                    let api_key = entry
                        .get("api_key")
                        .map(|v| text(v, "api_key"))
                        .transpose()?
                        .flatten();
                    // Elastic keeps the later of two entries for one id; say so instead.
                    if connectors
                        .iter()
                        .any(|c: &ConnectorEntry| c.connector_id == id)
                    {
                        bail!("connector `{id}` is listed twice");
                    }
                    connectors.push(ConnectorEntry {
                        connector_id: id,
                        service_type,
                        api_key,
                    });
                }
            }
            Some(other) => bail!("`connectors` must be a list, not {other}"),
        }
        // The deprecated single-connector form, used only when the list is empty (as Elastic).
        if connectors.is_empty()
            && let (Some(id), Some(st)) = (root.get("connector_id"), root.get("service_type"))
        {
            connectors.push(ConnectorEntry {
                connector_id: text(id, "connector_id")?.unwrap_or_default(),
                service_type: text(st, "service_type")?,
                api_key: None,
            });
        }
        if connectors.is_empty() {
            bail!("no connectors configured: add `connectors: [{{connector_id, service_type}}]`");
        }
        let extraction_service = match extraction.get("host") {
            Some(v) => text(v, "extraction_service.host")?,
            None => None,
        };
        Ok(Self {
            elasticsearch,
            connectors,
            service: settings,
            concurrent_downloads,
            extraction_service,
            ignored,
        })
    }

    /// The cluster settings a connector's documents are written with: its own API key when it
    /// has one (Elastic's `_override_es_config`), and the index names Elastic's connector
    /// documents give, unprefixed.
    pub fn sink_config(&self, connector: &ConnectorEntry) -> ElasticsearchConfig {
        let mut config = self.elasticsearch.clone();
        config.index_pattern = "{index}".into();
        config.single_tenant = true;
        if let Some(key) = &connector.api_key {
            config.api_key = Some(key.clone());
            config.username = None;
            config.password = None;
        }
        config
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_elastic_shapes_and_rejects_typos() {
        let yml = r#"
elasticsearch.host: http://127.0.0.1:9200
elasticsearch.api_key: ${ES_KEY}
elasticsearch:
  bulk:
    chunk_size: 100
    chunk_max_mem_size: 1
    max_concurrency: 3
    error_monitor:
      max_total_errors: 5
connectors:
  - connector_id: abc
    service_type: dropbox
    api_key: ${CONNECTOR_KEY|fallback}
service.idling: 0.5
service:
  max_concurrent_content_syncs: 2
  log_level: DEBUG
sources:
  dropbox: connectors.sources.dropbox:DropboxDataSource
"#;
        let env = |name: &str| (name == "ES_KEY").then(|| "secret".to_string());
        let c = CompatConfig::parse(yml, &env).unwrap();
        assert_eq!(c.elasticsearch.host, "http://127.0.0.1:9200");
        assert_eq!(c.elasticsearch.api_key.as_deref(), Some("secret"));
        assert_eq!(c.elasticsearch.username, None);
        assert_eq!(
            (
                c.elasticsearch.bulk_max_docs,
                c.elasticsearch.bulk_max_bytes,
                c.elasticsearch.bulk_concurrency
            ),
            (100, 1024 * 1024, 3)
        );
        assert_eq!(c.connectors[0].api_key.as_deref(), Some("fallback"));
        assert_eq!(c.service.idling, Duration::from_millis(500));
        assert_eq!(c.service.max_concurrent_content_syncs, 2);
        assert!(
            c.ignored.contains(&"service.log_level".to_string()),
            "{:?}",
            c.ignored
        );
        assert!(
            c.ignored
                .contains(&"elasticsearch.bulk.error_monitor".to_string())
        );
        let sink = c.sink_config(&c.connectors[0]);
        assert_eq!(sink.api_key.as_deref(), Some("fallback"));

        let err = CompatConfig::parse(
            "elasticsearch.hots: x\nconnectors: [{connector_id: a}]\n",
            &env,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("elasticsearch.hots"), "{err}");
        let err = CompatConfig::parse("connectors: [{connector_id: a, service: box}]\n", &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`service`"), "{err}");
        let c = CompatConfig::parse("connector_id: a\nservice_type: box\n", &env).unwrap();
        assert_eq!(c.connectors[0].service_type.as_deref(), Some("box"));
        assert_eq!(
            c.elasticsearch.username.as_deref(),
            Some("elastic"),
            "Elastic's default"
        );
        assert!(CompatConfig::parse("service.worker_mode: true\nconnector_id: a\n", &env).is_err());
    }
}
