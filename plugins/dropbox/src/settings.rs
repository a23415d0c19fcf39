//! The connector's configuration: the manifest schema (labels, tooltips and defaults as in
//! Elastic's Dropbox connector, plus tributary's additions) and its typed, validated form.

use tributary_sdk::config::Config;
use tributary_sdk::http::{host_of, join_url};
use tributary_sdk::{ConfigField, Error, FieldDependency, FieldKind, Result};

/// Elastic's `MAX_FILE_SIZE`: bodies above 10 MiB are indexed without content.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 10 * 1024 * 1024;
const DEFAULT_API: &str = "https://api.dropboxapi.com/2/";
const DEFAULT_CONTENT: &str = "https://content.dropboxapi.com/2/";
const DEFAULT_OAUTH: &str = "https://api.dropboxapi.com/";
/// `files/list_folder` answers at most 2000 entries per page.
pub const MAX_PAGE: u64 = 2000;

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The folder to sync: `""` for the root, else `/a/b` (or `id:…`, `ns:…`) without a
    /// trailing slash, as `files/list_folder` wants it.
    pub path: String,
    pub app_key: String,
    pub app_secret: String,
    pub refresh_token: String,
    pub retry_count: u32,
    pub concurrent_downloads: u32,
    pub dls: bool,
    pub include_inherited: bool,
    pub max_file_size: u64,
    /// List from the account's root namespace (Elastic's behaviour, the default) rather than
    /// the member's home folder.
    pub team_folders: bool,
    /// The host reads this key itself; the plugin only uses it to lift the size cap, as
    /// Elastic does when its extraction service reads the content.
    pub extraction_service: bool,
    pub api_url: String,
    pub content_url: String,
    pub oauth_url: String,
    pub page_size: u64,
}

impl Settings {
    /// Largest file whose content is fetched: `max_file_size`, or no cap of the plugin's own
    /// with the extraction service (the host's download limit still applies).
    pub fn content_limit(&self) -> u64 {
        if self.extraction_service {
            u64::MAX
        } else {
            self.max_file_size
        }
    }

    /// Parses and checks the configuration the host hands to every export.
    pub fn parse(json: &str) -> Result<Self> {
        let c = Config::parse(json)?;
        let url = |key: &str, default: &str| -> Result<String> {
            let value = c.opt_str(key).unwrap_or(default).trim().to_string();
            host_of(&value).map_err(|e| e.context(format!("`{key}`")))?;
            Ok(value)
        };
        let settings = Settings {
            path: normalise_path(c.opt_str("path").unwrap_or("/"))?,
            app_key: c.str("app_key")?.trim().to_string(),
            app_secret: c.str("app_secret")?.trim().to_string(),
            refresh_token: c.str("refresh_token")?.trim().to_string(),
            retry_count: u32::try_from(c.u64_or("retry_count", 3).min(10)).unwrap_or(3),
            concurrent_downloads: u32::try_from(c.u64_or("concurrent_downloads", 100).max(1))
                .unwrap_or(100),
            dls: c.bool_or("use_document_level_security", false),
            include_inherited: c.bool_or("include_inherited_users_and_groups", false),
            max_file_size: c.u64_or("max_file_size", DEFAULT_MAX_FILE_SIZE),
            team_folders: c.bool_or("include_team_folders", true),
            extraction_service: c.bool_or("use_text_extraction_service", false),
            api_url: url("api_base_url", DEFAULT_API)?,
            content_url: url("content_base_url", DEFAULT_CONTENT)?,
            oauth_url: url("oauth_base_url", DEFAULT_OAUTH)?,
            page_size: c.u64_or("page_size", MAX_PAGE).clamp(1, MAX_PAGE),
        };
        Ok(settings)
    }

    /// `host[:port]` of every endpoint the configuration points at.
    pub fn hosts(&self) -> Result<Vec<String>> {
        let mut hosts = Vec::new();
        for url in [&self.api_url, &self.content_url, &self.oauth_url] {
            let host = host_of(url)?;
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        Ok(hosts)
    }

    /// The OAuth token endpoint.
    pub fn token_url(&self) -> String {
        join_url(&self.oauth_url, "oauth2/token")
    }

    /// The path as users wrote it, for messages (`/` for the root).
    pub fn path_for_humans(&self) -> &str {
        if self.path.is_empty() {
            "/"
        } else {
            &self.path
        }
    }
}

/// `/` and `""` are the root (`""` for Dropbox); other paths lose a trailing slash. Dropbox also
/// takes `id:…` and `ns:…` paths.
fn normalise_path(raw: &str) -> Result<String> {
    let path = raw.trim();
    if path.is_empty() || path == "/" {
        return Ok(String::new());
    }
    if path.starts_with("id:") || path.starts_with("ns:") {
        return Ok(path.trim_end_matches('/').to_string());
    }
    if !path.starts_with('/') {
        return Err(Error::Config(format!(
            "`path` (Path to fetch files/folders): {path:?} must start with `/` (e.g. `/Reports`)"
        )));
    }
    Ok(path.trim_end_matches('/').to_string())
}

fn field(key: &str, label: &str, kind: FieldKind) -> ConfigField {
    tributary_sdk::schema::bare(key, label, kind)
}

/// The manifest's configuration schema, in Elastic's order, then tributary's additions.
pub fn schema() -> Vec<ConfigField> {
    let secret = |key: &str, label: &str| ConfigField {
        required: true,
        sensitive: true,
        ..field(key, label, FieldKind::Text)
    };
    let hidden_url = |key: &str, label: &str, default: &str| ConfigField {
        hidden: true,
        default_value: Some(serde_json::Value::from(default).to_string()),
        tooltip: Some("Override for tests and proxies; may include a path.".into()),
        ..field(key, label, FieldKind::Text)
    };
    vec![
        ConfigField {
            default_value: Some("\"/\"".into()),
            tooltip: Some(
                "The folder to sync, e.g. /Reports. Path is ignored when Advanced Sync Rules are \
                 used."
                    .into(),
            ),
            ..field("path", "Path to fetch files/folders", FieldKind::Text)
        },
        secret("app_key", "App Key"),
        secret("app_secret", "App secret"),
        secret("refresh_token", "Refresh token"),
        ConfigField {
            default_value: Some("3".into()),
            min: Some(0),
            max: Some(10),
            tooltip: Some(
                "Retries after a failed request (network errors, HTTP 5xx and 429; 429 waits \
                 for Retry-After)."
                    .into(),
            ),
            ..field("retry_count", "Retries per request", FieldKind::Integer)
        },
        ConfigField {
            default_value: Some("100".into()),
            min: Some(1),
            max: Some(1000),
            tooltip: Some("Content downloads running at once (the host may cap it).".into()),
            ..field(
                "concurrent_downloads",
                "Maximum concurrent downloads",
                FieldKind::Integer,
            )
        },
        ConfigField {
            default_value: Some("false".into()),
            tooltip: Some(
                "Document level security ensures identities and permissions set in Dropbox are \
                 maintained in the index. This enables you to restrict and personalize read-access \
                 users and groups have to documents in this index. Access control syncs ensure \
                 this metadata is kept up to date in your documents."
                    .into(),
            ),
            ..field(
                "use_document_level_security",
                "Enable document level security",
                FieldKind::Boolean,
            )
        },
        ConfigField {
            default_value: Some("false".into()),
            tooltip: Some(
                "Requires a separate deployment of the Elastic Text Extraction Service (the host's \
                 `[extract] service_url`)."
                    .into(),
            ),
            ..field(
                "use_text_extraction_service",
                "Use text extraction service",
                FieldKind::Boolean,
            )
        },
        ConfigField {
            default_value: Some("false".into()),
            depends_on: vec![FieldDependency {
                field: "use_document_level_security".into(),
                value: "true".into(),
            }],
            tooltip: Some(
                "Include members who inherit access from a shared or team folder (and its \
                 groups) in each file's permissions. Costs one request per file."
                    .into(),
            ),
            ..field(
                "include_inherited_users_and_groups",
                "Include groups and inherited users",
                FieldKind::Boolean,
            )
        },
        ConfigField {
            default_value: Some(DEFAULT_MAX_FILE_SIZE.to_string()),
            min: Some(1),
            max: Some(1024 * 1024 * 1024),
            tooltip: Some(
                "Files larger than this (in bytes) are indexed without content. Default 10 MiB."
                    .into(),
            ),
            ..field("max_file_size", "Maximum file size to extract", FieldKind::Integer)
        },
        ConfigField {
            default_value: Some("true".into()),
            tooltip: Some(
                "On (the default, as Elastic's connector): list from the account's root \
                 namespace (Dropbox-API-Path-Root), so team folders are included and paths are \
                 relative to the team space, e.g. /Engineering or /<Member name>/Reports; for \
                 accounts without a team space this is the home folder. Off: only the member's \
                 home folder, with paths relative to it."
                    .into(),
            ),
            ..field(
                "include_team_folders",
                "Include team folders and team spaces",
                FieldKind::Boolean,
            )
        },
        hidden_url("api_base_url", "API base URL", DEFAULT_API),
        hidden_url("content_base_url", "Content API base URL", DEFAULT_CONTENT),
        hidden_url("oauth_base_url", "OAuth base URL", DEFAULT_OAUTH),
        ConfigField {
            hidden: true,
            default_value: Some(MAX_PAGE.to_string()),
            min: Some(1),
            max: Some(MAX_PAGE as i64),
            tooltip: Some("Entries per listing page (Dropbox allows at most 2000).".into()),
            ..field("page_size", "Page size", FieldKind::Integer)
        },
    ]
}
