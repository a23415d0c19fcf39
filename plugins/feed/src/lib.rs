//! Example connector: syncs a paginated JSON feed.
//!
//! The feed answers `GET {base_url}/items?limit=N[&page_token=T][&since=C]` with
//! `{"items": [{"id", "title", "updated_at", "body"?, "attachment_url"?, "deleted"?}],
//! "next_page_token": …, "cursor": …}`. A full sync pages through everything; the final `cursor`
//! is checkpointed and an incremental sync asks for changes `since` it, applying tombstones
//! (`"deleted": true`) as deletions. Attachments are handed to the host as content requests, so
//! their bytes never enter this plugin.

use serde::Deserialize;
use tributary_sdk::config::Config;
use tributary_sdk::docs::{Document, Emitter, Fetch};
use tributary_sdk::http::{Client, Request, RetryPolicy, host_of, join_url, url_encode};
use tributary_sdk::{
    ConfigField, Error, Features, FieldKind, Manifest, Plugin, Result, RuleError, SyncRequest,
    state,
};

const CURSOR_KEY: &str = "cursor";

struct Feed;

#[derive(Deserialize)]
struct Page {
    items: Vec<Item>,
    next_page_token: Option<String>,
    cursor: Option<String>,
}

#[derive(Deserialize)]
struct Item {
    id: String,
    #[serde(default)]
    title: String,
    updated_at: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    attachment_url: Option<String>,
    #[serde(default)]
    attachment_name: Option<String>,
    #[serde(default)]
    deleted: bool,
}

struct Settings {
    base_url: String,
    token: Option<String>,
    page_size: u64,
    client: Client,
}

impl Settings {
    fn from_json(json: &str) -> Result<Self> {
        let config = Config::parse(json)?;
        let base_url = config.str("base_url")?.to_string();
        host_of(&base_url)?;
        Ok(Self {
            token: config.opt_str("api_token").map(str::to_string),
            page_size: config.u64_or("page_size", 50).clamp(1, 1000),
            client: Client::new(RetryPolicy::with_retries(
                u32::try_from(config.u64_or("retry_count", 3)).unwrap_or(3),
            )),
            base_url,
        })
    }

    fn request(&self, url: String) -> Request {
        let request = Request::get(url).header("Accept", "application/json");
        match &self.token {
            Some(token) => request.bearer(token),
            None => request,
        }
    }

    fn page(&self, since: Option<&str>, page_token: Option<&str>) -> Result<Page> {
        let mut url = join_url(&self.base_url, &format!("items?limit={}", self.page_size));
        if let Some(since) = since {
            url.push_str(&format!("&since={}", url_encode(since)));
        }
        if let Some(token) = page_token {
            url.push_str(&format!("&page_token={}", url_encode(token)));
        }
        let response = self.client.send(&self.request(url))?;
        match response.status {
            200 => response.json(),
            401 | 403 => Err(Error::Auth(format!(
                "the feed refused the API token (HTTP {})",
                response.status
            ))),
            404 => Err(Error::NotFound(format!("no feed at {}", self.base_url))),
            status => Err(Error::Protocol(format!(
                "feed answered HTTP {status}: {}",
                response.snippet()
            ))),
        }
    }

    /// Pages through the feed from `since`, emitting documents; returns the final cursor.
    fn sync(&self, since: Option<&str>) -> Result<Option<String>> {
        let mut emitter = Emitter::default();
        let mut deleted = Vec::new();
        let mut page_token: Option<String> = None;
        let mut cursor = None;
        loop {
            let page = self.page(since, page_token.as_deref())?;
            for item in page.items {
                if item.deleted {
                    deleted.push(item.id);
                    continue;
                }
                emitter.emit(self.document(item))?;
            }
            cursor = page.cursor.or(cursor);
            match page.next_page_token {
                Some(token) if !token.is_empty() => page_token = Some(token),
                _ => break,
            }
        }
        emitter.flush()?;
        tributary_sdk::docs::delete(&deleted)?;
        tributary_sdk::info!(
            "feed: {} document(s) emitted, {} deletion(s)",
            emitter.emitted(),
            deleted.len()
        );
        Ok(cursor)
    }

    fn document(&self, item: Item) -> Document {
        let doc = Document::new(item.id)
            .timestamp(item.updated_at)
            .field("title", item.title)
            .field("type", "item");
        match (item.attachment_url, item.body) {
            (Some(url), _) => {
                let name = item
                    .attachment_name
                    .unwrap_or_else(|| "attachment.txt".into());
                let fetch = Fetch::new(name.clone(), None, 10 * 1024 * 1024);
                doc.field("attachment", name)
                    .fetch(&self.request(url), fetch)
            }
            (None, Some(body)) => doc.text(body),
            (None, None) => doc,
        }
    }
}

fn checkpoint(cursor: Option<String>) -> Result<()> {
    let value = cursor.map(|c| state::encode(&c)).transpose()?;
    let failures = state::checkpoint(&[(CURSOR_KEY, value)])?;
    for failure in failures {
        tributary_sdk::warn!(
            "attachment of {} not indexed: {}",
            failure.id,
            failure.message
        );
    }
    Ok(())
}

fn field(key: &str, label: &str, kind: FieldKind) -> ConfigField {
    ConfigField {
        key: key.into(),
        label: label.into(),
        tooltip: None,
        kind,
        options: Vec::new(),
        default_value: None,
        required: false,
        sensitive: false,
        hidden: false,
        depends_on: Vec::new(),
        min: None,
        max: None,
    }
}

impl Plugin for Feed {
    fn manifest() -> Manifest {
        Manifest {
            name: "feed".into(),
            display_name: "JSON feed".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "A paginated JSON feed with incremental cursors (example plugin)".into(),
            config: vec![
                ConfigField {
                    required: true,
                    tooltip: Some("e.g. https://feed.example.com/v1".into()),
                    ..field("base_url", "Feed base URL", FieldKind::Text)
                },
                ConfigField {
                    sensitive: true,
                    ..field("api_token", "API token", FieldKind::Text)
                },
                ConfigField {
                    default_value: Some("50".into()),
                    min: Some(1),
                    max: Some(1000),
                    ..field("page_size", "Page size", FieldKind::Integer)
                },
                ConfigField {
                    default_value: Some("3".into()),
                    min: Some(0),
                    max: Some(10),
                    ..field("retry_count", "Retries per request", FieldKind::Integer)
                },
                ConfigField {
                    default_value: Some("10".into()),
                    min: Some(1),
                    max: Some(500),
                    ..field(
                        "concurrent_downloads",
                        "Concurrent downloads",
                        FieldKind::Integer,
                    )
                },
                ConfigField {
                    default_value: Some("false".into()),
                    tooltip: Some("Send attachments to the host's external extraction service".into()),
                    ..field(
                        "use_text_extraction_service",
                        "Use text extraction service",
                        FieldKind::Boolean,
                    )
                },
            ],
            features: Features::INCREMENTAL_SYNC,
        }
    }

    fn allowed_hosts(config: String) -> Result<Vec<String>> {
        let config = Config::parse(&config)?;
        Ok(vec![host_of(config.str("base_url")?)?])
    }

    fn validate_config(config: String) -> Result<()> {
        Settings::from_json(&config).map(|_| ())
    }

    fn ping(config: String) -> Result<()> {
        let settings = Settings::from_json(&config)?;
        let url = join_url(&settings.base_url, "items?limit=1");
        let response = settings.client.send(&settings.request(url))?;
        if response.is_success() {
            Ok(())
        } else {
            Err(Error::Transient(format!(
                "feed answered HTTP {}",
                response.status
            )))
        }
    }

    fn full_sync(request: SyncRequest) -> Result<()> {
        let settings = Settings::from_json(&request.config)?;
        let concurrency = Config::parse(&request.config)?.u64_or("concurrent_downloads", 10);
        tributary_sdk::docs::set_download_concurrency(u32::try_from(concurrency).unwrap_or(10));
        let cursor = settings.sync(None)?;
        checkpoint(cursor)
    }

    fn incremental_sync(request: SyncRequest) -> Result<()> {
        let Some(since) = state::get_json::<String>(CURSOR_KEY)? else {
            tributary_sdk::info!("no cursor stored yet: running a full listing");
            return Self::full_sync(request);
        };
        let settings = Settings::from_json(&request.config)?;
        let cursor = settings.sync(Some(&since))?;
        checkpoint(cursor.or(Some(since)))
    }

    fn access_control_sync(_request: SyncRequest) -> Result<()> {
        Err(Error::Config(
            "the feed connector has no access control".into(),
        ))
    }

    fn validate_advanced_rules(_config: String, _rules: String) -> Result<(), Vec<RuleError>> {
        Err(vec![RuleError {
            rule: None,
            message: "the feed connector has no advanced rules".into(),
        }])
    }
}

tributary_sdk::export_connector!(Feed);
