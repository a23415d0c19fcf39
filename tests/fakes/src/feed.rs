//! A fake paginated JSON feed with change cursors (the example plugin's source).
//!
//! `GET /items?limit=N[&page_token=T][&since=C]`: without `since`, every live item in id order;
//! with `since`, every item changed after cursor `C`, tombstones included. Each answer carries
//! `cursor` (the change position when the listing started) and `next_page_token` while more
//! pages remain. `GET /files/{name}` serves attachments. With a token configured, requests need
//! `Authorization: Bearer <token>`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{FakeServer, FaultPlan};

#[derive(Clone, Debug)]
struct Item {
    title: String,
    body: Option<String>,
    attachment: Option<String>,
    seq: u64,
    deleted: bool,
}

#[derive(Default, Debug)]
struct Feed {
    items: BTreeMap<String, Item>,
    files: BTreeMap<String, Vec<u8>>,
    seq: u64,
    token: Option<String>,
    base: String,
}

#[derive(Clone, Default)]
struct Shared {
    feed: Arc<Mutex<Feed>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Feed> {
        self.feed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running fake feed.
pub struct FakeFeed {
    server: FakeServer,
    shared: Shared,
    faults: FaultPlan,
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<usize>,
    page_token: Option<String>,
    since: Option<String>,
}

impl FakeFeed {
    /// Starts an empty feed; with `token`, requests must carry it as a bearer token.
    pub async fn start(token: Option<&str>) -> anyhow::Result<Self> {
        let shared = Shared::default();
        shared.lock().token = token.map(str::to_string);
        let faults = FaultPlan::new();
        let router = axum::Router::new()
            .route("/items", get(list))
            .route("/files/{name}", get(file))
            .with_state(shared.clone())
            .layer(axum::middleware::from_fn_with_state(
                faults.clone(),
                FaultPlan::middleware,
            ));
        let server = FakeServer::start(router).await?;
        shared.lock().base = server.url();
        Ok(Self {
            server,
            shared,
            faults,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.server.url()
    }

    /// Scripted faults.
    pub fn faults(&self) -> &FaultPlan {
        &self.faults
    }

    /// Adds or changes an item.
    pub fn upsert(&self, id: &str, title: &str, body: Option<&str>) {
        let mut feed = self.shared.lock();
        feed.seq += 1;
        let seq = feed.seq;
        let attachment = feed.items.get(id).and_then(|i| i.attachment.clone());
        feed.items.insert(
            id.into(),
            Item {
                title: title.into(),
                body: body.map(str::to_string),
                attachment,
                seq,
                deleted: false,
            },
        );
    }

    /// Adds or changes an item whose content is an attachment served at `/files/{name}`.
    pub fn upsert_with_attachment(&self, id: &str, title: &str, name: &str, bytes: &[u8]) {
        let mut feed = self.shared.lock();
        feed.seq += 1;
        let seq = feed.seq;
        feed.files.insert(name.into(), bytes.to_vec());
        feed.items.insert(
            id.into(),
            Item {
                title: title.into(),
                body: None,
                attachment: Some(name.into()),
                seq,
                deleted: false,
            },
        );
    }

    /// Deletes an item (a tombstone appears in change listings).
    pub fn delete(&self, id: &str) {
        let mut feed = self.shared.lock();
        feed.seq += 1;
        let seq = feed.seq;
        if let Some(item) = feed.items.get_mut(id) {
            item.deleted = true;
            item.seq = seq;
        }
    }

    /// The change position now (what a listing started now would return as `cursor`).
    pub fn cursor(&self) -> String {
        self.shared.lock().seq.to_string()
    }

    /// Live item ids.
    pub fn ids(&self) -> Vec<String> {
        self.shared
            .lock()
            .items
            .iter()
            .filter(|(_, i)| !i.deleted)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

fn timestamp(seq: u64) -> String {
    // A deterministic clock: one minute per change from 2024-01-01.
    let minutes = seq;
    format!(
        "2024-01-{:02}T{:02}:{:02}:00Z",
        1 + minutes / (24 * 60),
        (minutes / 60) % 24,
        minutes % 60
    )
}

async fn list(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let feed = shared.lock();
    if let Some(token) = &feed.token {
        let expected = format!("Bearer {token}");
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "bad token"})),
            )
                .into_response();
        }
    }
    let since = match q.since.as_deref().map(str::parse::<u64>) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(_)) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "bad cursor"})),
            )
                .into_response();
        }
    };
    let offset = match q.page_token.as_deref().map(str::parse::<usize>) {
        None => 0,
        Some(Ok(o)) => o,
        Some(Err(_)) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "bad page token"})),
            )
                .into_response();
        }
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let selected: Vec<(&String, &Item)> = feed
        .items
        .iter()
        .filter(|(_, i)| match since {
            None => !i.deleted,
            Some(s) => i.seq > s,
        })
        .collect();
    let page: Vec<Value> = selected
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(id, i)| {
            let mut v = json!({"id": id, "title": i.title, "updated_at": timestamp(i.seq)});
            if i.deleted {
                v["deleted"] = json!(true);
            }
            if let Some(body) = &i.body {
                v["body"] = json!(body);
            }
            if let Some(name) = &i.attachment {
                v["attachment_url"] = json!(format!("{}/files/{name}", feed.base));
                v["attachment_name"] = json!(name);
            }
            v
        })
        .collect();
    let next = (offset + limit < selected.len()).then(|| (offset + limit).to_string());
    Json(json!({"items": page, "next_page_token": next, "cursor": feed.seq.to_string()}))
        .into_response()
}

async fn file(State(shared): State<Shared>, Path(name): Path<String>) -> Response {
    match shared.lock().files.get(&name) {
        Some(bytes) => bytes.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
