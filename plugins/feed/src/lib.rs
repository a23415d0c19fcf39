//! Example connector: syncs a paginated JSON feed.
//!
//! The feed answers `GET {base_url}/items?limit=N[&page_token=T][&since=C]` with
//! `{"items": [{"id", "title", "updated_at", "body"?, "attachment_url"?, "deleted"?}],
//! "next_page_token": …, "cursor": …}`. A full sync pages through everything; the final `cursor`
//! is checkpointed and an incremental sync asks for changes `since` it, applying tombstones
//! (`"deleted": true`) as deletions. Attachments are handed to the host as content requests, so
//! their bytes never enter this plugin.
//!
//! Everything generic — schema, typed settings, retries, pagination, batching, checkpoints — is
//! the SDK's; what remains here is the feed's own shape.

use std::cell::RefCell;

use serde::{Deserialize, Serialize};
use tributary_sdk::checkpoint::{Checkpoint, warn_failures};
use tributary_sdk::docs::{self, Document, Fetch};
use tributary_sdk::http::{Client, Request, RetryPolicy, host_of, join_url, url_encode};
use tributary_sdk::outbox::Outbox;
use tributary_sdk::page::{self, Page};
use tributary_sdk::schema::{self, Schema, integer, text};
use tributary_sdk::{Error, Features, Manifest, Plugin, Result, RuleError, SyncRequest};

/// The change cursor of the last sync (version 1: the feed's cursor string).
const CURSOR: Checkpoint<String> = Checkpoint::new("cursor", 1);
/// Where an unfinished full listing of a job stands.
const RESUME: Checkpoint<Resume> = Checkpoint::new("resume", 1);

#[derive(Serialize, Deserialize)]
struct Resume {
    job: String,
    page_token: Option<String>,
    cursor: Option<String>,
}

struct Feed;

#[derive(Deserialize)]
struct Answer {
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

fn schema() -> Schema {
    Schema::new([
        text("base_url", "Feed base URL")
            .required()
            .tooltip("e.g. https://feed.example.com/v1"),
        text("api_token", "API token").sensitive(),
        integer("page_size", "Page size").default(50).range(1, 1000),
        schema::retry_count(3),
        schema::concurrent_downloads(10),
        schema::use_text_extraction_service(),
    ])
}

struct Settings {
    base_url: String,
    token: Option<String>,
    page_size: u32,
    concurrent_downloads: u32,
    client: Client,
}

impl Settings {
    fn from_json(json: &str) -> Result<Self> {
        let values = schema().read(json)?;
        Ok(Self {
            base_url: values.url("base_url")?,
            token: values.opt_str("api_token")?,
            page_size: values.u32("page_size")?,
            concurrent_downloads: values.u32("concurrent_downloads")?,
            client: Client::new(RetryPolicy::with_retries(values.u32("retry_count")?)),
        })
    }

    fn request(&self, url: String) -> Request {
        let request = Request::get(url).header("Accept", "application/json");
        match &self.token {
            Some(token) => request.bearer(token),
            None => request,
        }
    }

    fn page(&self, since: Option<&str>, page_token: Option<&String>) -> Result<Answer> {
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
    ///
    /// A full listing (`job` set) commits every [`COMMIT_EVERY`] documents together with where
    /// it is; when the same job runs again after a host crash it continues from there (the host
    /// restores the ids the first run produced, so none of them is deleted as vanished).
    fn sync(&self, since: Option<&str>, job: Option<&str>) -> Result<Option<String>> {
        let mut out = Outbox::new(100);
        let mut deleted = Vec::new();
        let resume = match job {
            Some(job) => RESUME.load()?.filter(|r| r.job == job),
            None => None,
        };
        if let Some(r) = &resume {
            tributary_sdk::info!(
                "resuming the listing of job {} at page {:?}",
                r.job,
                r.page_token
            );
        }
        // The change position when the listing began (kept from the first answer: a resumed
        // listing must not skip changes made to pages it already read).
        let cursor = RefCell::new(resume.as_ref().and_then(|r| r.cursor.clone()));
        let mut start = resume.and_then(|r| r.page_token);
        let current = RefCell::new(None::<String>);
        for item in page::cursor(|token: Option<&String>| {
            let token = token.cloned().or_else(|| start.take());
            let answer = self.page(since, token.as_ref())?;
            *current.borrow_mut() = token;
            let mut c = cursor.borrow_mut();
            if c.is_none() {
                *c = answer.cursor;
            }
            Ok(Page::from_token(answer.items, answer.next_page_token))
        }) {
            let item = item?;
            if item.deleted {
                deleted.push(item.id);
            } else {
                out.emit(self.document(item))?;
                // Commit now and then, with the page being read: a run interrupted later (a
                // host crash) continues from here instead of listing everything again.
                if out.emitted().is_multiple_of(COMMIT_EVERY) {
                    let state = match job {
                        Some(job) => vec![RESUME.entry(&Resume {
                            job: job.to_string(),
                            page_token: current.borrow().clone(),
                            cursor: cursor.borrow().clone(),
                        })?],
                        None => Vec::new(),
                    };
                    warn_failures(&out.checkpoint(state)?);
                }
            }
        }
        let cursor = cursor.into_inner();
        out.flush()?;
        out.delete(&deleted)?;
        tributary_sdk::info!(
            "feed: {} document(s) emitted, {} deletion(s)",
            out.emitted(),
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

/// Documents between intermediate commits of a listing.
const COMMIT_EVERY: u64 = 100;

/// The stored cursor; a bare string stored by plugin versions before the envelope still counts.
fn stored_cursor() -> Result<Option<String>> {
    CURSOR.load_or_migrate(|version, value| match (version, value) {
        (0, serde_json::Value::String(cursor)) => Some(cursor),
        _ => None,
    })
}

impl Plugin for Feed {
    fn manifest() -> Manifest {
        Manifest {
            name: "feed".into(),
            display_name: "JSON feed".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "A paginated JSON feed with incremental cursors (example plugin)".into(),
            config: schema().fields(),
            features: Features::INCREMENTAL_SYNC,
        }
    }

    fn allowed_hosts(config: String) -> Result<Vec<String>> {
        Ok(vec![host_of(&schema().read(&config)?.url("base_url")?)?])
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
        docs::set_download_concurrency(settings.concurrent_downloads);
        match settings.sync(None, Some(&request.job_id))? {
            Some(cursor) => CURSOR.save(&cursor)?,
            None => CURSOR.clear()?,
        };
        RESUME.clear()?;
        Ok(())
    }

    fn incremental_sync(request: SyncRequest) -> Result<()> {
        let Some(since) = stored_cursor()? else {
            tributary_sdk::info!("no cursor stored yet: running a full listing");
            return Self::full_sync(request);
        };
        let settings = Settings::from_json(&request.config)?;
        docs::set_download_concurrency(settings.concurrent_downloads);
        let cursor = settings.sync(Some(&since), None)?;
        CURSOR.save(&cursor.unwrap_or(since))?;
        Ok(())
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
