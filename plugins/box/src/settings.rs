//! The connector's configuration: the manifest schema (what users fill in) and the typed
//! [`Settings`] every export parses from the validated JSON.
//!
//! Field names follow Elastic's Box connector (`is_enterprise`, `client_id`, `client_secret`,
//! `refresh_token`, `enterprise_id`, `concurrent_downloads`, `retry_count`,
//! `use_text_extraction_service`), so migrated configurations keep working.

use tributary_sdk::config::Config;
use tributary_sdk::http::{host_of, join_url};
use tributary_sdk::{ConfigField, Error, FieldDependency, FieldKind, Result, SelectOption};

/// Box's public API origin; the token endpoint is `<base>/oauth2/token`, the API `<base>/2.0`.
pub const DEFAULT_API_BASE: &str = "https://api.box.com";
/// Where `GET /files/{id}/content` redirects real downloads to.
pub const DEFAULT_DOWNLOAD_HOST: &str = "dl.boxcloud.com";

const FREE: &str = "box_free";
const ENTERPRISE: &str = "box_enterprise";
const MIB: u64 = 1024 * 1024;

/// Which Box account the connector authenticates as.
#[derive(Clone, Debug)]
pub enum Account {
    /// OAuth 2.0 user authentication: a (rotating) refresh token of one user.
    Free { refresh_token: String },
    /// Client credentials for the enterprise's service account, crawling every managed user.
    Enterprise { enterprise_id: String },
}

/// The parsed configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub account: Account,
    pub client_id: String,
    pub client_secret: String,
    /// `<base>/2.0`, no trailing slash.
    pub api_url: String,
    /// `<base>/oauth2/token`.
    pub token_url: String,
    pub allowed_hosts: Vec<String>,
    pub concurrent_downloads: u32,
    pub retry_count: u32,
    pub max_content_bytes: u64,
    pub dls: bool,
    /// The host extracts through Elastic's extraction service (which reads more formats).
    pub extraction_service: bool,
}

impl Settings {
    /// Largest file whose content is fetched: `max_content_size_mb`, or no cap of the plugin's
    /// own with the extraction service, as Elastic does (the host's download limit still applies).
    pub fn content_limit(&self) -> u64 {
        if self.extraction_service {
            u64::MAX
        } else {
            self.max_content_bytes
        }
    }

    /// Parses and checks the configuration the host hands to every export.
    pub fn parse(json: &str) -> Result<Self> {
        let config = Config::parse(json)?;
        let kind = config.opt_str("is_enterprise").unwrap_or(FREE);
        let account = match kind {
            FREE => Account::Free {
                refresh_token: config
                    .opt_str("refresh_token")
                    .ok_or_else(|| {
                        Error::Config(
                            "`refresh_token` (Refresh Token) is required for a Box Free Account \
                             (`is_enterprise` = box_free)"
                                .into(),
                        )
                    })?
                    .trim()
                    .to_string(),
            },
            ENTERPRISE => {
                let id = config.opt_str("enterprise_id").ok_or_else(|| {
                    Error::Config(
                        "`enterprise_id` (Enterprise ID) is required for a Box Enterprise \
                         Account (`is_enterprise` = box_enterprise)"
                            .into(),
                    )
                })?;
                let id = id.trim();
                if !id.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Error::Config(format!(
                        "`enterprise_id` (Enterprise ID) must be the numeric id from the Box \
                         Admin Console, got {id:?}"
                    )));
                }
                Account::Enterprise {
                    enterprise_id: id.to_string(),
                }
            }
            other => {
                return Err(Error::Config(format!(
                    "`is_enterprise` (Box Account) must be {FREE} or {ENTERPRISE}, got {other:?}"
                )));
            }
        };
        let client_id = required(&config, "client_id", "Client ID")?;
        let client_secret = required(&config, "client_secret", "Client Secret")?;
        let base = config
            .opt_str("api_base_url")
            .unwrap_or(DEFAULT_API_BASE)
            .trim()
            .trim_end_matches('/')
            .to_string();
        let api_host = host_of(&base).map_err(|e| e.context("`api_base_url`"))?;
        if !base.starts_with("https://") && !base.starts_with("http://") {
            return Err(Error::Config(format!(
                "`api_base_url` must be an http(s) URL, got {base:?}"
            )));
        }
        let mut allowed_hosts = vec![api_host];
        let download_hosts = match config.get("download_hosts") {
            Some(_) => config.list("download_hosts"),
            None => vec![DEFAULT_DOWNLOAD_HOST.to_string()],
        };
        for host in download_hosts {
            let host = host.trim().to_ascii_lowercase();
            if !host.is_empty() && !allowed_hosts.contains(&host) {
                allowed_hosts.push(host);
            }
        }
        let int = |key: &str, default: u64, max: u64| config.u64_or(key, default).min(max);
        Ok(Self {
            account,
            client_id,
            client_secret,
            api_url: join_url(&base, "2.0").trim_end_matches('/').to_string(),
            token_url: join_url(&base, "oauth2/token"),
            allowed_hosts,
            concurrent_downloads: u32::try_from(int("concurrent_downloads", 15, 100).max(1))
                .unwrap_or(15),
            retry_count: u32::try_from(int("retry_count", 3, 10)).unwrap_or(3),
            max_content_bytes: int("max_content_size_mb", 10, 100).max(1) * MIB,
            dls: config.bool_or("use_document_level_security", false),
            extraction_service: config.bool_or("use_text_extraction_service", false),
        })
    }

    pub fn enterprise(&self) -> bool {
        matches!(self.account, Account::Enterprise { .. })
    }

    /// What the stored sync state depends on: when this changes, the state is stale and the
    /// next incremental sync lists everything again.
    pub fn scope(&self) -> String {
        let account = match &self.account {
            Account::Free { .. } => format!("free:{}", self.client_id),
            Account::Enterprise { enterprise_id } => format!("enterprise:{enterprise_id}"),
        };
        format!(
            "{account}|{}|dls={}|max={}|service={}",
            self.api_url, self.dls, self.max_content_bytes, self.extraction_service
        )
    }
}

fn required(config: &Config, key: &str, label: &str) -> Result<String> {
    config
        .opt_str(key)
        .map(|v| v.trim().to_string())
        .ok_or_else(|| Error::Config(format!("`{key}` ({label}) is required")))
}

fn field(key: &str, label: &str, kind: FieldKind) -> ConfigField {
    tributary_sdk::schema::bare(key, label, kind)
}

fn when_account(value: &str) -> Vec<FieldDependency> {
    vec![FieldDependency {
        field: "is_enterprise".into(),
        value: format!("\"{value}\""),
    }]
}

/// The manifest's configuration schema.
pub fn schema() -> Vec<ConfigField> {
    vec![
        ConfigField {
            options: vec![
                SelectOption {
                    value: FREE.into(),
                    label: "Box Free Account".into(),
                },
                SelectOption {
                    value: ENTERPRISE.into(),
                    label: "Box Enterprise Account".into(),
                },
            ],
            default_value: Some(format!("\"{FREE}\"")),
            required: true,
            tooltip: Some(
                "Free: OAuth 2.0 user authentication with a refresh token. Enterprise: \
                 client credentials grant; every managed user's files are synced."
                    .into(),
            ),
            ..field("is_enterprise", "Box Account", FieldKind::Select)
        },
        ConfigField {
            required: true,
            ..field("client_id", "Client ID", FieldKind::Text)
        },
        ConfigField {
            required: true,
            sensitive: true,
            ..field("client_secret", "Client Secret", FieldKind::Text)
        },
        ConfigField {
            required: true,
            sensitive: true,
            depends_on: when_account(FREE),
            tooltip: Some(
                "Box rotates refresh tokens on every use; tributary stores each new one, so \
                 this value is only needed once."
                    .into(),
            ),
            ..field("refresh_token", "Refresh Token", FieldKind::Text)
        },
        ConfigField {
            required: true,
            depends_on: when_account(ENTERPRISE),
            ..field("enterprise_id", "Enterprise ID", FieldKind::Text)
        },
        ConfigField {
            default_value: Some("15".into()),
            min: Some(1),
            max: Some(100),
            ..field(
                "concurrent_downloads",
                "Maximum concurrent downloads",
                FieldKind::Integer,
            )
        },
        ConfigField {
            default_value: Some("3".into()),
            min: Some(0),
            max: Some(10),
            ..field(
                "retry_count",
                "Retries per request on errors",
                FieldKind::Integer,
            )
        },
        ConfigField {
            default_value: Some("10".into()),
            min: Some(1),
            max: Some(100),
            tooltip: Some("Larger files are indexed without their content.".into()),
            ..field(
                "max_content_size_mb",
                "Maximum file size to extract (MiB)",
                FieldKind::Integer,
            )
        },
        ConfigField {
            default_value: Some("false".into()),
            ..field(
                "use_text_extraction_service",
                "Use text extraction service",
                FieldKind::Boolean,
            )
        },
        ConfigField {
            default_value: Some("false".into()),
            tooltip: Some(
                "Restrict each document to its owner and collaborators (users and groups), \
                 inherited from parent folders."
                    .into(),
            ),
            ..field(
                "use_document_level_security",
                "Enable document level security",
                FieldKind::Boolean,
            )
        },
        ConfigField {
            hidden: true,
            default_value: Some(format!("\"{DEFAULT_API_BASE}\"")),
            tooltip: Some(
                "Token endpoint at <base>/oauth2/token, API at <base>/2.0 (tests only)".into(),
            ),
            ..field("api_base_url", "Box API base URL", FieldKind::Text)
        },
        ConfigField {
            hidden: true,
            default_value: Some(format!("[\"{DEFAULT_DOWNLOAD_HOST}\"]")),
            tooltip: Some("Hosts file downloads are redirected to".into()),
            ..field("download_hosts", "Download hosts", FieldKind::List)
        },
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(json: serde_json::Value) -> Result<Settings> {
        Settings::parse(&json.to_string())
    }

    #[test]
    fn each_account_type_names_its_missing_field() {
        let err = parse(serde_json::json!({"client_id": "a", "client_secret": "b"})).unwrap_err();
        assert!(
            matches!(&err, Error::Config(m) if m.contains("`refresh_token`") && m.contains("box_free")),
            "{err:?}"
        );
        let err = parse(serde_json::json!({"is_enterprise": "box_enterprise", "client_id": "a", "client_secret": "b"})).unwrap_err();
        assert!(
            matches!(&err, Error::Config(m) if m.contains("`enterprise_id`")),
            "{err:?}"
        );
        let err = parse(serde_json::json!({"is_enterprise": "box_enterprise", "enterprise_id": "12x", "client_id": "a", "client_secret": "b"})).unwrap_err();
        assert!(
            matches!(&err, Error::Config(m) if m.contains("numeric")),
            "{err:?}"
        );
        let err =
            parse(serde_json::json!({"refresh_token": "r", "client_secret": "b"})).unwrap_err();
        assert!(
            matches!(&err, Error::Config(m) if m.contains("`client_id`")),
            "{err:?}"
        );
    }

    #[test]
    fn urls_and_hosts_derive_from_the_base() {
        let s = parse(
            serde_json::json!({"refresh_token": "r", "client_id": "a", "client_secret": "b"}),
        )
        .unwrap();
        assert_eq!(s.api_url, "https://api.box.com/2.0");
        assert_eq!(s.token_url, "https://api.box.com/oauth2/token");
        assert_eq!(s.allowed_hosts, vec!["api.box.com", "dl.boxcloud.com"]);
        assert_eq!(
            (s.concurrent_downloads, s.retry_count, s.max_content_bytes),
            (15, 3, 10 * MIB)
        );
        let s = parse(serde_json::json!({
            "refresh_token": "r", "client_id": "a", "client_secret": "b",
            "api_base_url": "http://127.0.0.1:9000/box/", "download_hosts": [],
            "concurrent_downloads": 500,
        }))
        .unwrap();
        assert_eq!(s.api_url, "http://127.0.0.1:9000/box/2.0");
        assert_eq!(s.token_url, "http://127.0.0.1:9000/box/oauth2/token");
        assert_eq!(s.allowed_hosts, vec!["127.0.0.1:9000"]);
        assert_eq!(s.concurrent_downloads, 100, "clamped");
    }
}
