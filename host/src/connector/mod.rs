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

    /// Refuses a setting that is a URL of a scheme other than `http` or `https` (`file:`,
    /// `gopher://`, `ftp://`…): a string written `<scheme>://…`, or `<scheme>:…` in a setting
    /// whose name ends in `url` or `uri`. The error names the setting.
    pub fn check_url_schemes(&self) -> Result<(), String> {
        for (key, value) in &self.config {
            let Some(text) = value.as_str() else {
                continue;
            };
            let Some((scheme, rest)) = text.trim().split_once(':') else {
                continue;
            };
            let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
            let key_lower = key.to_ascii_lowercase();
            let url_key = key_lower.ends_with("url") || key_lower.ends_with("uri");
            if is_scheme
                && (rest.starts_with("//") || url_key)
                && !scheme.eq_ignore_ascii_case("http")
                && !scheme.eq_ignore_ascii_case("https")
            {
                return Err(format!(
                    "config `{key}`: only http and https URLs are allowed, not `{}:`",
                    crate::text::truncate(scheme, 32)
                ));
            }
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_http_and_https_urls_are_accepted() {
        let spec = |key: &str, value: &str| ConnectorSpec {
            id: "c".into(),
            plugin: "feed".into(),
            tenant: "t".into(),
            index: None,
            config: Map::from_iter([(key.to_string(), Value::String(value.into()))]),
            rules: Vec::new(),
            advanced_rules: None,
            schedule: Schedule::default(),
        };
        for (key, value) in [
            ("base_url", "file:///etc/passwd"),
            ("base_url", "file:/etc/passwd"),
            ("endpoint", "gopher://127.0.0.1:25/"),
            ("mirror", "FTP://example.com/x"),
            ("BaseURL", "javascript:alert(1)"),
        ] {
            let err = spec(key, value).check_url_schemes().unwrap_err();
            assert!(err.contains(&format!("config `{key}`")), "{err}");
        }
        for (key, value) in [
            ("base_url", "https://example.com"),
            ("base_url", "HTTP://example.com"),
            ("token", "user:secret"),
            ("query", "title:report"),
            ("path", "C:\\docs"),
        ] {
            assert!(
                spec(key, value).check_url_schemes().is_ok(),
                "{key}={value}"
            );
        }
    }
}
