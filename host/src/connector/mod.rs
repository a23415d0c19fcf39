//! What a connector is: its specification ([`ConnectorSpec`]: plugin, tenant, index, settings,
//! sync rules, schedule) and the pieces that interpret it — `schedule` (intervals and cron
//! times, with `cron`), `rules` (basic sync rules), `schema` (settings checked against the
//! plugin's config schema).
//!
//! Names of tenants, connectors and indexes are [`valid_name`]s: they end up in paths, index
//! names and URLs.

pub mod cron;
pub mod rules;
pub mod schedule;
pub mod schema;

use serde::Deserialize;
use serde_json::{Map, Value};

use rules::RuleSpec;
use schedule::Schedule;

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

impl ConnectorSpec {
    /// The index documents go to.
    pub fn index_name(&self) -> &str {
        self.index.as_deref().unwrap_or(&self.id)
    }
}

fn default_tenant() -> String {
    "default".into()
}

/// Names used for tenants, connectors and indexes.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
