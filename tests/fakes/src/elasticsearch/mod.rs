//! An Elasticsearch wire-compatible test server: exactly the REST endpoints tributary's
//! Elasticsearch sink and its Elastic connectors compatibility mode call, answering with the
//! status codes and JSON bodies Elasticsearch documents, state in memory.
//!
//! | endpoint | notes |
//! | --- | --- |
//! | `GET /` | cluster info (`version.number` 9.1.0) |
//! | `HEAD /{index}`, `PUT /{index}`, `DELETE /{index}`, `GET /{index}/_mapping` (`{index}` may hold `*` wildcards) | create answers 400 `resource_already_exists_exception` when it exists, 400 `invalid_index_name_exception` for names Elasticsearch refuses |
//! | `POST [/{index}]/_bulk` | NDJSON `index`/`create`/`update`/`delete` (`delete` honours `if_seq_no`/`if_primary_term`: 409 on a mismatch); per-item results; `errors: true` when any item failed |
//! | `GET/PUT/POST /{index}/_doc/{id}`, `POST /{index}/_doc`, `DELETE /{index}/_doc/{id}` | `if_seq_no` + `if_primary_term` → 409 `version_conflict_engine_exception`; `op_type=create` |
//! | `POST /{index}/_update/{id}` | `{"doc": …}` merged recursively (`detect_noop`), `doc_as_upsert`, optimistic concurrency as above, 404 `document_missing_exception` |
//! | `POST [/{index}]/_search` | `query` ([`query`] subset, fields resolved through the index's mappings), `sort`, `search_after`, `aggs` (`terms`), `size`, `from`, `_source`, `seq_no_primary_term`, `track_total_hits`, `highlight`, `pit`; unknown body keys → 400 |
//! | `POST [/{index}]/_search/template`, `POST /_render/template` | `{"source": …, "params": …}`: the [`template`] subset of mustache rendered, then searched (or returned as `template_output`) |
//! | `POST /{index}/_mget` | `{"ids": […]}` or `{"docs": [{"_id"}]}`, real-time, with `_seq_no`/`_primary_term`; `_source_includes` |
//! | `POST /{index}/_pit`, `DELETE /_pit` | point in time: a frozen copy of the searchable documents; `_shard_doc` sorts by position in it |
//! | `POST /{index}/_refresh`, `POST /{index}/_count` | |
//!
//! Every response carries `X-Elastic-Product: Elasticsearch`. Missing indexes answer 404
//! `index_not_found_exception` unless `ignore_unavailable=true`; a write to a missing index
//! creates it with empty (dynamic) mappings, as `action.auto_create_index` does by default —
//! [`FakeElasticsearch::auto_created`] tells tests whether that happened.
//!
//! # Near-real-time search
//!
//! As in Elasticsearch, `GET _doc` is real-time but searches see the documents as of the last
//! refresh: an explicit `_refresh`, a write with `refresh=true|wait_for`, or the periodic
//! refresh (1 s by default, as `index.refresh_interval`; evaluated lazily when a search
//! arrives). [`FakeElasticsearch::set_refresh_interval`]`(None)` turns the periodic refresh off
//! so a test proves the client refreshes itself.
//!
//! # Faults
//!
//! Whole requests: the [`FaultPlan`] (e.g. a 429 or 503 answer to `/_bulk`). Bulk items:
//! [`FakeElasticsearch::reject_items`] (429 `es_rejected_execution_exception` for the next *n*
//! items, as a full write thread pool queue answers) and [`FakeElasticsearch::fail_item`]
//! (any status/type/reason for one id). Fields whose mapping says `long`, `integer`, `double`
//! or `boolean` reject values of another type with 400 `mapper_parsing_exception`, the way a
//! real mapping conflict surfaces. [`FakeElasticsearch::set_bulk_delay`] slows every bulk
//! request, and [`FakeElasticsearch::bulk_stats`] reports how many ran at once.
//!
//! # Assumptions
//!
//! One shard, primary term 1, `_seq_no` per index increasing by one per write. Index aliases
//! are not modelled: `.elastic-connectors` and `.elastic-connectors-sync-jobs` are plain
//! indexes here (in Elasticsearch they are aliases of `…-v1` system indexes). Scores are not
//! BM25 (see [`query`]). Authentication: when [`FakeElasticsearch::require_api_key`] or
//! [`FakeElasticsearch::require_basic`] is set, other requests get 401 `security_exception`.

pub mod query;
pub mod template;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::{FakeServer, FaultPlan};
use query::{QueryError, SortKey};

/// A stored document.
#[derive(Clone, Debug)]
struct Doc {
    source: Value,
    seq_no: u64,
    version: u64,
}

#[derive(Debug)]
struct Index {
    mappings: Value,
    live: BTreeMap<String, Doc>,
    /// What searches see (as of the last refresh).
    visible: BTreeMap<String, Doc>,
    dirty: bool,
    last_refresh: Instant,
    seq_no: u64,
    uuid: String,
    auto_created: bool,
}

impl Index {
    fn new(mappings: Value, n: usize, auto_created: bool) -> Self {
        Self {
            mappings,
            live: BTreeMap::new(),
            visible: BTreeMap::new(),
            dirty: false,
            last_refresh: Instant::now(),
            seq_no: 0,
            uuid: format!("fakeuuid{n:014}"),
            auto_created,
        }
    }

    fn refresh(&mut self) {
        if self.dirty {
            self.visible = self.live.clone();
            self.dirty = false;
        }
        self.last_refresh = Instant::now();
    }

    fn next_seq(&mut self) -> u64 {
        let s = self.seq_no;
        self.seq_no += 1;
        s
    }
}

#[derive(Debug)]
struct Pit {
    index: String,
    docs: Arc<Vec<(String, Doc)>>,
}

/// A scripted per-item bulk failure.
#[derive(Clone, Debug)]
pub struct ItemFault {
    /// Only items with this `_id` (any item when `None`).
    pub id: Option<String>,
    /// Item status.
    pub status: u16,
    /// `error.type`.
    pub error_type: String,
    /// `error.reason`.
    pub reason: String,
    /// How many matching items fail.
    pub times: u32,
}

/// Bulk request statistics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BulkStats {
    /// Bulk requests handled (including faulted items, excluding whole-request faults).
    pub requests: usize,
    /// Items received in all.
    pub items: usize,
    /// Most bulk requests in progress at once.
    pub max_concurrent: usize,
    /// Items per request, in arrival order.
    pub sizes: Vec<usize>,
    /// Body bytes per request, in arrival order.
    pub bytes: Vec<usize>,
}

#[derive(Debug)]
struct Store {
    indices: BTreeMap<String, Index>,
    pits: HashMap<String, Pit>,
    item_faults: Vec<ItemFault>,
    refresh_interval: Option<Duration>,
    bulk_delay: Option<Duration>,
    bulk: BulkStats,
    next_id: u64,
    api_keys: Vec<String>,
    basic: Option<String>,
    /// (method and path, API key used) per request.
    auth_log: Vec<(String, Option<String>)>,
}

#[derive(Clone)]
struct Shared {
    store: Arc<Mutex<Store>>,
    in_flight: Arc<AtomicUsize>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running fake cluster.
pub struct FakeElasticsearch {
    server: FakeServer,
    shared: Shared,
    faults: FaultPlan,
}

impl FakeElasticsearch {
    /// Starts an empty cluster.
    pub async fn start() -> anyhow::Result<Self> {
        let shared = Shared {
            store: Arc::new(Mutex::new(Store {
                indices: BTreeMap::new(),
                pits: HashMap::new(),
                item_faults: Vec::new(),
                refresh_interval: Some(Duration::from_secs(1)),
                bulk_delay: None,
                bulk: BulkStats::default(),
                next_id: 0,
                api_keys: Vec::new(),
                basic: None,
                auth_log: Vec::new(),
            })),
            in_flight: Arc::default(),
        };
        let faults = FaultPlan::new();
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone())
            .layer(axum::middleware::from_fn_with_state(
                faults.clone(),
                FaultPlan::middleware,
            ));
        let server = FakeServer::start(router).await?;
        Ok(Self {
            server,
            shared,
            faults,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Whole-request faults and the request log.
    pub fn faults(&self) -> &FaultPlan {
        &self.faults
    }

    /// Requires `Authorization: ApiKey <encoded>` on every request.
    pub fn require_api_key(&self, encoded: &str) {
        self.shared.lock().api_keys = vec![encoded.to_string()];
    }

    /// Accepts any of these API keys (and nothing else).
    pub fn require_api_keys(&self, encoded: &[&str]) {
        self.shared.lock().api_keys = encoded.iter().map(|k| k.to_string()).collect();
    }

    /// The API key each request carried, as `("POST /index/_bulk", Some(key))`.
    pub fn auth_log(&self) -> Vec<(String, Option<String>)> {
        self.shared.lock().auth_log.clone()
    }

    /// Requires HTTP Basic authentication with these credentials.
    pub fn require_basic(&self, username: &str, password: &str) {
        self.shared.lock().basic = Some(base64(format!("{username}:{password}").as_bytes()));
    }

    /// The periodic refresh (`None`: only explicit refreshes make writes searchable).
    pub fn set_refresh_interval(&self, interval: Option<Duration>) {
        self.shared.lock().refresh_interval = interval;
    }

    /// Delays every bulk request (a busy cluster).
    pub fn set_bulk_delay(&self, delay: Option<Duration>) {
        self.shared.lock().bulk_delay = delay;
    }

    /// The next `n` bulk items (of any request) are rejected with 429
    /// `es_rejected_execution_exception`, as when the write thread pool queue is full.
    pub fn reject_items(&self, n: u32) {
        self.shared.lock().item_faults.push(ItemFault {
            id: None,
            status: 429,
            error_type: "es_rejected_execution_exception".into(),
            reason: "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1024, max_coordinating_and_primary_bytes=1024]".into(),
            times: n,
        });
    }

    /// Bulk items for `id` fail `times` times with this status, error type and reason.
    pub fn fail_item(&self, id: &str, status: u16, error_type: &str, reason: &str, times: u32) {
        self.shared.lock().item_faults.push(ItemFault {
            id: Some(id.to_string()),
            status,
            error_type: error_type.into(),
            reason: reason.into(),
            times,
        });
    }

    /// Bulk statistics so far.
    pub fn bulk_stats(&self) -> BulkStats {
        self.shared.lock().bulk.clone()
    }

    /// Forgets bulk statistics.
    pub fn reset_bulk_stats(&self) {
        self.shared.lock().bulk = BulkStats::default();
    }

    /// Every document of `index` (real-time), by id.
    pub fn documents(&self, index: &str) -> BTreeMap<String, Value> {
        self.shared
            .lock()
            .indices
            .get(index)
            .map(|i| {
                i.live
                    .iter()
                    .map(|(k, d)| (k.clone(), d.source.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One document's source.
    pub fn document(&self, index: &str, id: &str) -> Option<Value> {
        self.shared
            .lock()
            .indices
            .get(index)
            .and_then(|i| i.live.get(id).map(|d| d.source.clone()))
    }

    /// Whether `index` exists.
    pub fn exists(&self, index: &str) -> bool {
        self.shared.lock().indices.contains_key(index)
    }

    /// Whether `index` was created implicitly by a write (dynamic mappings) rather than by a
    /// create-index request.
    pub fn auto_created(&self, index: &str) -> Option<bool> {
        self.shared
            .lock()
            .indices
            .get(index)
            .map(|i| i.auto_created)
    }

    /// The mappings `index` was created with.
    pub fn mappings(&self, index: &str) -> Option<Value> {
        self.shared
            .lock()
            .indices
            .get(index)
            .map(|i| i.mappings.clone())
    }

    /// Writes a document directly (creating the index) and refreshes: what another client did.
    pub fn put(&self, index: &str, id: &str, source: Value) {
        let mut store = self.shared.lock();
        let n = store.indices.len();
        let ix = store
            .indices
            .entry(index.to_string())
            .or_insert_with(|| Index::new(json!({}), n, false));
        let seq = ix.next_seq();
        let version = ix.live.get(id).map(|d| d.version + 1).unwrap_or(1);
        ix.live.insert(
            id.to_string(),
            Doc {
                source,
                seq_no: seq,
                version,
            },
        );
        ix.dirty = true;
        ix.refresh();
    }

    /// Merges `partial` into a document directly and refreshes (another client's update, e.g.
    /// Kibana asking to cancel a job). Returns whether the document existed.
    pub fn update(&self, index: &str, id: &str, partial: Value) -> bool {
        let mut store = self.shared.lock();
        let Some(ix) = store.indices.get_mut(index) else {
            return false;
        };
        let Some(mut doc) = ix.live.get(id).cloned() else {
            return false;
        };
        merge(&mut doc.source, &partial);
        doc.seq_no = ix.next_seq();
        doc.version += 1;
        ix.live.insert(id.to_string(), doc);
        ix.dirty = true;
        ix.refresh();
        true
    }
}

/// Standard base64 (for Basic credentials).
pub fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Recursive merge of `patch` into `target`, as the update API merges `doc`.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        "x-elastic-product",
        axum::http::HeaderValue::from_static("Elasticsearch"),
    );
    response
}

fn es_error(status: StatusCode, kind: &str, reason: &str, extra: Value) -> Response {
    let mut cause = json!({"type": kind, "reason": reason});
    if let (Some(c), Value::Object(e)) = (cause.as_object_mut(), extra) {
        c.extend(e);
    }
    json_response(
        status,
        json!({"error": {"root_cause": [cause.clone()], "type": kind, "reason": reason, "caused_by": cause.get("caused_by").cloned()}, "status": status.as_u16()}),
    )
}

fn index_not_found(index: &str) -> Response {
    es_error(
        StatusCode::NOT_FOUND,
        "index_not_found_exception",
        &format!("no such index [{index}]"),
        json!({"resource.type": "index_or_alias", "resource.id": index, "index_uuid": "_na_", "index": index}),
    )
}

fn parse_error(reason: &str) -> Response {
    es_error(
        StatusCode::BAD_REQUEST,
        "parsing_exception",
        reason,
        json!({"line": 1, "col": 1}),
    )
}

fn shards() -> Value {
    json!({"total": 2, "successful": 1, "failed": 0})
}

fn version_conflict(index: &str, id: &str, want: (u64, u64), have: Option<&Doc>) -> Response {
    let reason = match have {
        Some(d) => format!(
            "[{id}]: version conflict, required seqNo [{}], primary term [{}]. current document has seqNo [{}] and primary term [1]",
            want.0, want.1, d.seq_no
        ),
        None => format!(
            "[{id}]: version conflict, required seqNo [{}], primary term [{}]. but no document was found",
            want.0, want.1
        ),
    };
    es_error(
        StatusCode::CONFLICT,
        "version_conflict_engine_exception",
        &reason,
        json!({"index_uuid": "fake", "shard": "0", "index": index}),
    )
}

/// Elasticsearch's index name rules.
fn invalid_index_name(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".into());
    }
    if name.chars().any(|c| c.is_uppercase()) {
        return Some("must be lowercase".into());
    }
    if name.starts_with(['_', '-', '+']) {
        return Some("must not start with '_', '-', or '+'".into());
    }
    if name == "." || name == ".." {
        return Some("must not be '.' or '..'".into());
    }
    if name.len() > 255 {
        return Some("index name is too long".into());
    }
    if name.contains(['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#', ':']) {
        return Some(
            "must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?]".into(),
        );
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Request plumbing

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn params(query: Option<&str>) -> HashMap<String, String> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

fn flag(params: &HashMap<String, String>, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|v| v.is_empty() || v == "true")
}

fn refresh_requested(params: &HashMap<String, String>) -> bool {
    params
        .get("refresh")
        .is_some_and(|v| v.is_empty() || v == "true" || v == "wait_for")
}

fn authorized(store: &Store, headers: &HeaderMap) -> bool {
    if store.api_keys.is_empty() && store.basic.is_none() {
        return true;
    }
    let header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    store
        .api_keys
        .iter()
        .any(|k| header == format!("ApiKey {k}"))
        || store
            .basic
            .as_ref()
            .is_some_and(|b| header == format!("Basic {b}"))
}

async fn handle(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, 512 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return es_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                "body too large",
                json!({}),
            );
        }
    };
    {
        let key = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|h| h.strip_prefix("ApiKey "))
            .map(str::to_string);
        shared
            .lock()
            .auth_log
            .push((format!("{} {}", parts.method, parts.uri.path()), key));
    }
    if !authorized(&shared.lock(), &parts.headers) {
        let mut r = es_error(
            StatusCode::UNAUTHORIZED,
            "security_exception",
            "unable to authenticate user for REST request [/]",
            json!({"header": {"WWW-Authenticate": ["Basic realm=\"security\", charset=\"UTF-8\"", "ApiKey"]}}),
        );
        r.headers_mut().insert(
            "www-authenticate",
            axum::http::HeaderValue::from_static("ApiKey"),
        );
        return r;
    }
    let params = params(parts.uri.query());
    let segments: Vec<String> = parts
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = parts.method.clone();
    if seg.first() == Some(&"_bulk") || seg.get(1) == Some(&"_bulk") {
        if method != Method::POST && method != Method::PUT {
            return method_not_allowed(&method, parts.uri.path());
        }
        let default_index = if seg.len() == 2 { Some(seg[0]) } else { None };
        return bulk(&shared, default_index, &params, &bytes).await;
    }
    let body_json = || -> Result<Value, Box<Response>> {
        if bytes.is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_slice::<Value>(&bytes).map_err(|e| {
            Box::new(es_error(
                StatusCode::BAD_REQUEST,
                "x_content_parse_exception",
                &format!("[1:1] failed to parse: {e}"),
                json!({}),
            ))
        })
    };
    let mut store = shared.lock();
    match (&method, seg.as_slice()) {
        (&Method::GET, []) | (&Method::HEAD, []) => json_response(
            StatusCode::OK,
            json!({
                "name": "fake-node-1",
                "cluster_name": "tributary-fake",
                "cluster_uuid": "fAkEcLuStErUuId000000",
                "version": {
                    "number": "9.1.0",
                    "build_flavor": "default",
                    "build_type": "docker",
                    "build_hash": "fake",
                    "build_date": "2025-07-01T00:00:00.000Z",
                    "build_snapshot": false,
                    "lucene_version": "10.2.2",
                    "minimum_wire_compatibility_version": "8.19.0",
                    "minimum_index_compatibility_version": "8.0.0"
                },
                "tagline": "You Know, for Search"
            }),
        ),
        (&Method::DELETE, ["_pit"]) => {
            let body = match body_json() {
                Ok(b) => b,
                Err(r) => return *r,
            };
            let id = body.get("id").and_then(Value::as_str).unwrap_or("");
            let freed = store.pits.remove(id).is_some();
            json_response(
                if freed {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                },
                json!({"succeeded": true, "num_freed": usize::from(freed)}),
            )
        }
        (&Method::GET | &Method::POST, ["_search"]) => {
            let body = match body_json() {
                Ok(b) => b,
                Err(r) => return *r,
            };
            search(&mut store, None, &params, &body)
        }
        (&Method::HEAD, [index]) => {
            if store.indices.contains_key(*index) {
                json_response(StatusCode::OK, json!({}))
            } else {
                let mut r = StatusCode::NOT_FOUND.into_response();
                r.headers_mut().insert(
                    "x-elastic-product",
                    axum::http::HeaderValue::from_static("Elasticsearch"),
                );
                r
            }
        }
        (&Method::PUT, [index]) => {
            let body = match body_json() {
                Ok(b) => b,
                Err(r) => return *r,
            };
            if let Some(why) = invalid_index_name(index) {
                return es_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_index_name_exception",
                    &format!("Invalid index name [{index}], {why}"),
                    json!({"index_uuid": "_na_", "index": index}),
                );
            }
            if let Some(existing) = store.indices.get(*index) {
                return es_error(
                    StatusCode::BAD_REQUEST,
                    "resource_already_exists_exception",
                    &format!("index [{index}/{}] already exists", existing.uuid),
                    json!({"index_uuid": existing.uuid, "index": index}),
                );
            }
            for key in body
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
            {
                if !matches!(key.as_str(), "mappings" | "settings" | "aliases") {
                    return parse_error(&format!("unknown key [{key}] for create index"));
                }
            }
            let n = store.indices.len();
            store.indices.insert(
                index.to_string(),
                Index::new(body.get("mappings").cloned().unwrap_or(json!({})), n, false),
            );
            json_response(
                StatusCode::OK,
                json!({"acknowledged": true, "shards_acknowledged": true, "index": index}),
            )
        }
        (&Method::DELETE, [index]) => match store.indices.remove(*index) {
            Some(_) => json_response(StatusCode::OK, json!({"acknowledged": true})),
            None => index_not_found(index),
        },
        (&Method::GET, [index, "_mapping"]) if index.contains('*') => {
            // A wildcard matches any run of characters; names starting with `.` only when the
            // pattern does (hidden, as Elasticsearch); no match is an empty object.
            let all: serde_json::Map<String, Value> = store
                .indices
                .iter()
                .filter(|(name, _)| wildcard_match(index, name))
                .filter(|(name, _)| !name.starts_with('.') || index.starts_with('.'))
                .map(|(name, ix)| (name.clone(), json!({"mappings": ix.mappings.clone()})))
                .collect();
            json_response(StatusCode::OK, Value::Object(all))
        }
        (&Method::GET, [index, "_mapping"]) => match store.indices.get(*index) {
            Some(ix) => json_response(
                StatusCode::OK,
                json!({ *index: {"mappings": with_dynamic(&ix.mappings, ix.visible.values().map(|d| &d.source))} }),
            ),
            None => index_not_found(index),
        },
        (&Method::POST | &Method::GET, [index, "_refresh"]) => {
            match store.indices.get_mut(*index) {
                Some(ix) => {
                    ix.refresh();
                    json_response(StatusCode::OK, json!({"_shards": shards()}))
                }
                None if flag(&params, "ignore_unavailable") => json_response(
                    StatusCode::OK,
                    json!({"_shards": {"total": 0, "successful": 0, "failed": 0}}),
                ),
                None => index_not_found(index),
            }
        }
        (&Method::POST | &Method::GET, [index, "_count"]) => {
            let body = match body_json() {
                Ok(b) => b,
                Err(r) => return *r,
            };
            let query = body
                .get("query")
                .cloned()
                .unwrap_or(json!({"match_all": {}}));
            let refresh_interval = store.refresh_interval;
            let Some(ix) = store.indices.get_mut(*index) else {
                if flag(&params, "ignore_unavailable") {
                    return json_response(StatusCode::OK, json!({"count": 0, "_shards": shards()}));
                }
                return index_not_found(index);
            };
            auto_refresh(ix, refresh_interval);
            let mut count = 0;
            for (id, doc) in &ix.visible {
                match query::score_in(&query, &ix.mappings, id, &doc.source) {
                    Ok(Some(_)) => count += 1,
                    Ok(None) => {}
                    Err(QueryError(e)) => return parse_error(&e),
                }
            }
            json_response(StatusCode::OK, json!({"count": count, "_shards": shards()}))
        }
        (&Method::POST | &Method::GET, [index, "_search"]) => {
            let body = match body_json() {
                Ok(b) => b,
                Err(r) => return *r,
            };
            search(&mut store, Some(index), &params, &body)
        }
        (&Method::POST | &Method::GET, ["_search", "template"]) => {
            let body = match body_json() {
                Ok(b) => b,
                Err(r) => return *r,
            };
            match render_template(&body) {
                Ok(rendered) => search(&mut store, None, &params, &rendered),
                Err(r) => *r,
            }
        }
        (&Method::POST | &Method::GET, [index, "_search", "template"]) => {
            let body = match body_json() {
                Ok(b) => b,
                Err(r) => return *r,
            };
            match render_template(&body) {
                Ok(rendered) => search(&mut store, Some(index), &params, &rendered),
                Err(r) => *r,
            }
        }
        (&Method::POST | &Method::GET, ["_render", "template"]) => {
            let body = match body_json() {
                Ok(b) => b,
                Err(r) => return *r,
            };
            match render_template(&body) {
                Ok(rendered) => json_response(StatusCode::OK, json!({"template_output": rendered})),
                Err(r) => *r,
            }
        }
        (&Method::POST | &Method::GET, [index, "_mget"]) => {
            let body = match body_json() {
                Ok(b) => b,
                Err(r) => return *r,
            };
            mget(&store, index, &params, &body)
        }
        (&Method::POST, [index, "_pit"]) => {
            if !params.contains_key("keep_alive") {
                return es_error(
                    StatusCode::BAD_REQUEST,
                    "action_request_validation_exception",
                    "Validation Failed: 1: [keep_alive] is not specified;",
                    json!({}),
                );
            }
            let refresh_interval = store.refresh_interval;
            let Some(ix) = store.indices.get_mut(*index) else {
                return index_not_found(index);
            };
            auto_refresh(ix, refresh_interval);
            let docs: Vec<(String, Doc)> = ix
                .visible
                .iter()
                .map(|(k, d)| (k.clone(), d.clone()))
                .collect();
            store.next_id += 1;
            let id = base64(format!("pit-{index}-{}", store.next_id).as_bytes());
            store.pits.insert(
                id.clone(),
                Pit {
                    index: index.to_string(),
                    docs: Arc::new(docs),
                },
            );
            json_response(StatusCode::OK, json!({"id": id, "_shards": shards()}))
        }
        (&Method::GET | &Method::HEAD, [index, "_doc", id]) => {
            let Some(ix) = store.indices.get(*index) else {
                return index_not_found(index);
            };
            match ix.live.get(*id) {
                Some(d) => json_response(
                    StatusCode::OK,
                    json!({"_index": index, "_id": id, "_version": d.version, "_seq_no": d.seq_no, "_primary_term": 1, "found": true, "_source": d.source}),
                ),
                None => json_response(
                    StatusCode::NOT_FOUND,
                    json!({"_index": index, "_id": id, "found": false}),
                ),
            }
        }
        (&Method::PUT | &Method::POST, [index, "_doc", id]) => {
            let body = match body_json() {
                Ok(b) => b,
                Err(r) => return *r,
            };
            let create = params.get("op_type").is_some_and(|o| o == "create");
            index_doc(&mut store, index, id, body, create, &params)
        }
        (&Method::PUT | &Method::POST, [index, "_create", id]) => {
            let body = match body_json() {
                Ok(b) => b,
                Err(r) => return *r,
            };
            index_doc(&mut store, index, id, body, true, &params)
        }
        (&Method::POST, [index, "_doc"]) => {
            let body = match body_json() {
                Ok(b) => b,
                Err(r) => return *r,
            };
            store.next_id += 1;
            let id = format!("auto{:016x}", store.next_id);
            index_doc(&mut store, index, &id, body, true, &params)
        }
        (&Method::DELETE, [index, "_doc", id]) => {
            let Some(ix) = store.indices.get_mut(*index) else {
                return index_not_found(index);
            };
            if let Some(resp) = check_occ(index, id, ix.live.get(*id), &params) {
                return resp;
            }
            let seq = ix.next_seq();
            let removed = ix.live.remove(*id);
            ix.dirty = true;
            if refresh_requested(&params) {
                ix.refresh();
            }
            let status = if removed.is_some() {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            json_response(
                status,
                json!({"_index": index, "_id": id, "_version": removed.map(|d| d.version + 1).unwrap_or(1), "result": if status == StatusCode::OK {"deleted"} else {"not_found"}, "_shards": shards(), "_seq_no": seq, "_primary_term": 1}),
            )
        }
        (&Method::POST, [index, "_update", id]) => {
            let body = match body_json() {
                Ok(b) => b,
                Err(r) => return *r,
            };
            update_doc(&mut store, index, id, &body, &params)
        }
        _ => method_not_allowed(&method, parts.uri.path()),
    }
}

fn method_not_allowed(method: &Method, path: &str) -> Response {
    // Elasticsearch answers an unknown endpoint with 400 "no handler found" (405 when the path
    // exists with other methods; the fake does not tell them apart).
    json_response(
        StatusCode::BAD_REQUEST,
        json!({"error": format!("no handler found for uri [{path}] and method [{method}]")}),
    )
}

fn auto_refresh(ix: &mut Index, interval: Option<Duration>) {
    if let Some(interval) = interval
        && ix.last_refresh.elapsed() >= interval
    {
        ix.refresh();
    }
}

fn check_occ(
    index: &str,
    id: &str,
    current: Option<&Doc>,
    params: &HashMap<String, String>,
) -> Option<Response> {
    let seq = params.get("if_seq_no").and_then(|s| s.parse::<u64>().ok());
    let term = params
        .get("if_primary_term")
        .and_then(|s| s.parse::<u64>().ok());
    match (seq, term) {
        (None, None) => None,
        (Some(s), Some(t)) => {
            let ok = current.is_some_and(|d| d.seq_no == s) && t == 1;
            (!ok).then(|| version_conflict(index, id, (s, t), current))
        }
        _ => Some(es_error(
            StatusCode::BAD_REQUEST,
            "action_request_validation_exception",
            "Validation Failed: 1: ifSeqNo is set, but primary term is [0];",
            json!({}),
        )),
    }
}

/// Type checks against explicit mappings (top-level `properties`), as a mapping conflict
/// surfaces in Elasticsearch.
fn mapping_error(mappings: &Value, source: &Value) -> Option<String> {
    let props = mappings.get("properties")?.as_object()?;
    let fields = source.as_object()?;
    for (name, value) in fields {
        if value.is_null() {
            continue;
        }
        let Some(kind) = props
            .get(name)
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        let ok = match kind {
            "long" | "integer" | "short" | "byte" => {
                value.is_i64()
                    || value.is_u64()
                    || value.as_str().is_some_and(|s| s.parse::<i64>().is_ok())
            }
            "double" | "float" => {
                value.is_number() || value.as_str().is_some_and(|s| s.parse::<f64>().is_ok())
            }
            "boolean" => {
                value.is_boolean() || matches!(value.as_str(), Some("true" | "false" | ""))
            }
            _ => true,
        };
        if !ok {
            return Some(format!(
                "failed to parse field [{name}] of type [{kind}] in document"
            ));
        }
    }
    None
}

fn index_doc(
    store: &mut Store,
    index: &str,
    id: &str,
    source: Value,
    create: bool,
    params: &HashMap<String, String>,
) -> Response {
    if let Some(why) = invalid_index_name(index) {
        return es_error(
            StatusCode::BAD_REQUEST,
            "invalid_index_name_exception",
            &format!("Invalid index name [{index}], {why}"),
            json!({"index": index}),
        );
    }
    let n = store.indices.len();
    let ix = store
        .indices
        .entry(index.to_string())
        .or_insert_with(|| Index::new(json!({}), n, true));
    if let Some(resp) = check_occ(index, id, ix.live.get(id), params) {
        return resp;
    }
    if create && ix.live.contains_key(id) {
        return es_error(
            StatusCode::CONFLICT,
            "version_conflict_engine_exception",
            &format!("[{id}]: version conflict, document already exists (current version [1])"),
            json!({"index": index, "shard": "0", "index_uuid": ix.uuid}),
        );
    }
    if let Some(reason) = mapping_error(&ix.mappings, &source) {
        return es_error(
            StatusCode::BAD_REQUEST,
            "document_parsing_exception",
            &format!("[1:1] {reason}"),
            json!({}),
        );
    }
    let (result, status, version) = write(ix, id, source);
    if refresh_requested(params) {
        ix.refresh();
    }
    let seq = ix.live.get(id).map(|d| d.seq_no).unwrap_or(0);
    json_response(
        status,
        json!({"_index": index, "_id": id, "_version": version, "result": result, "_shards": shards(), "_seq_no": seq, "_primary_term": 1}),
    )
}

fn write(ix: &mut Index, id: &str, source: Value) -> (&'static str, StatusCode, u64) {
    let seq = ix.next_seq();
    let previous = ix.live.get(id).map(|d| d.version);
    let version = previous.map(|v| v + 1).unwrap_or(1);
    ix.live.insert(
        id.to_string(),
        Doc {
            source,
            seq_no: seq,
            version,
        },
    );
    ix.dirty = true;
    match previous {
        Some(_) => ("updated", StatusCode::OK, version),
        None => ("created", StatusCode::CREATED, version),
    }
}

fn update_doc(
    store: &mut Store,
    index: &str,
    id: &str,
    body: &Value,
    params: &HashMap<String, String>,
) -> Response {
    let Some(obj) = body.as_object() else {
        return parse_error("request body is required");
    };
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "doc" | "doc_as_upsert" | "detect_noop" | "upsert" | "_source"
        ) {
            return parse_error(&format!("[UpdateRequest] unknown field [{key}]"));
        }
    }
    let Some(patch) = obj.get("doc") else {
        return es_error(
            StatusCode::BAD_REQUEST,
            "action_request_validation_exception",
            "Validation Failed: 1: script or doc is missing;",
            json!({}),
        );
    };
    let as_upsert = obj.get("doc_as_upsert").and_then(Value::as_bool) == Some(true);
    let n = store.indices.len();
    let Some(ix) = store.indices.get_mut(index) else {
        if !as_upsert {
            return index_not_found(index);
        }
        store
            .indices
            .insert(index.to_string(), Index::new(json!({}), n, true));
        return update_doc(store, index, id, body, params);
    };
    if let Some(resp) = check_occ(index, id, ix.live.get(id), params) {
        return resp;
    }
    let current = ix.live.get(id).cloned();
    let (result, status) = match current {
        None if !as_upsert => {
            return es_error(
                StatusCode::NOT_FOUND,
                "document_missing_exception",
                &format!("[{id}]: document missing"),
                json!({"index_uuid": ix.uuid, "shard": "0", "index": index}),
            );
        }
        None => {
            let (r, s, _) = write(ix, id, patch.clone());
            (r, s)
        }
        Some(doc) => {
            let mut merged = doc.source.clone();
            merge(&mut merged, patch);
            if merged == doc.source
                && obj.get("detect_noop").and_then(Value::as_bool) != Some(false)
            {
                ("noop", StatusCode::OK)
            } else {
                if let Some(reason) = mapping_error(&ix.mappings, &merged) {
                    return es_error(
                        StatusCode::BAD_REQUEST,
                        "document_parsing_exception",
                        &format!("[1:1] {reason}"),
                        json!({}),
                    );
                }
                let (r, s, _) = write(ix, id, merged);
                (r, s)
            }
        }
    };
    if refresh_requested(params) {
        ix.refresh();
    }
    let doc = ix.live.get(id);
    json_response(
        status,
        json!({"_index": index, "_id": id, "_version": doc.map(|d| d.version), "result": result, "_shards": shards(), "_seq_no": doc.map(|d| d.seq_no), "_primary_term": 1}),
    )
}

// ---------------------------------------------------------------------------------------------
// Search templates and multi-get

/// The search body a `{"source", "params"}` template request renders to.
fn render_template(body: &Value) -> Result<Value, Box<Response>> {
    for key in body.as_object().map(|o| o.keys()).into_iter().flatten() {
        if !matches!(key.as_str(), "source" | "params" | "explain" | "profile") {
            return Err(Box::new(parse_error(&format!(
                "[search_template] unknown field [{key}]"
            ))));
        }
    }
    let source = match body.get("source") {
        Some(Value::String(s)) => s.clone(),
        Some(other @ Value::Object(_)) => other.to_string(),
        _ => {
            return Err(Box::new(es_error(
                StatusCode::BAD_REQUEST,
                "action_request_validation_exception",
                "Validation Failed: 1: template's source must be specified;",
                json!({}),
            )));
        }
    };
    let params = body.get("params").cloned().unwrap_or(json!({}));
    let rendered = template::render(&source, &params).map_err(|e| {
        Box::new(es_error(
            StatusCode::BAD_REQUEST,
            "general_script_exception",
            &e,
            json!({}),
        ))
    })?;
    serde_json::from_str(&rendered).map_err(|e| {
        Box::new(es_error(
            StatusCode::BAD_REQUEST,
            "x_content_parse_exception",
            &format!("the rendered template is not JSON: {e}: {rendered}"),
            json!({}),
        ))
    })
}

/// `_mget`: real-time reads by id (a missing index answers per-document errors, as there).
fn mget(store: &Store, index: &str, params: &HashMap<String, String>, body: &Value) -> Response {
    let ids: Vec<String> = match (body.get("ids"), body.get("docs")) {
        (Some(Value::Array(ids)), _) => ids
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        (_, Some(Value::Array(docs))) => docs
            .iter()
            .filter_map(|d| d.get("_id").and_then(Value::as_str).map(str::to_string))
            .collect(),
        _ => {
            return es_error(
                StatusCode::BAD_REQUEST,
                "action_request_validation_exception",
                "Validation Failed: 1: no documents to get;",
                json!({}),
            );
        }
    };
    let includes: Option<Value> = params.get("_source_includes").map(|list| {
        Value::Array(
            list.split(',')
                .map(|f| Value::String(f.to_string()))
                .collect(),
        )
    });
    let ix = store.indices.get(index);
    let docs: Vec<Value> = ids
        .iter()
        .map(|id| match ix.map(|ix| ix.live.get(id)) {
            None => json!({"_index": index, "_id": id, "error": {"type": "index_not_found_exception", "reason": format!("no such index [{index}]"), "index": index}}),
            Some(None) => json!({"_index": index, "_id": id, "found": false}),
            Some(Some(d)) => {
                let mut hit = json!({"_index": index, "_id": id, "_version": d.version, "_seq_no": d.seq_no, "_primary_term": 1, "found": true});
                if let Some(source) = query::filter_source(&d.source, includes.as_ref()) {
                    hit["_source"] = source;
                }
                hit
            }
        })
        .collect();
    json_response(StatusCode::OK, json!({ "docs": docs }))
}

// ---------------------------------------------------------------------------------------------
// Search

const SEARCH_KEYS: &[&str] = &[
    "query",
    "size",
    "from",
    "sort",
    "search_after",
    "_source",
    "seq_no_primary_term",
    "track_total_hits",
    "pit",
    "highlight",
    "version",
    "timeout",
    "aggs",
    "aggregations",
];

fn search(
    store: &mut Store,
    index: Option<&str>,
    params: &HashMap<String, String>,
    body: &Value,
) -> Response {
    let Some(obj) = body.as_object() else {
        return parse_error("request body must be an object");
    };
    for key in obj.keys() {
        if !SEARCH_KEYS.contains(&key.as_str()) {
            return parse_error(&format!("Unknown key for a START_OBJECT in [{key}]."));
        }
    }
    let pit = obj.get("pit");
    if pit.is_some() && index.is_some() {
        return es_error(
            StatusCode::BAD_REQUEST,
            "action_request_validation_exception",
            "Validation Failed: 1: [indices] cannot be used with point in time. Do not specify any index with point in time.;",
            json!({}),
        );
    }
    let (index_name, docs): (String, Arc<Vec<(String, Doc)>>) = match (index, pit) {
        (_, Some(pit)) => {
            let id = pit.get("id").and_then(Value::as_str).unwrap_or("");
            match store.pits.get(id) {
                Some(p) => (p.index.clone(), p.docs.clone()),
                None => {
                    return es_error(
                        StatusCode::NOT_FOUND,
                        "search_context_missing_exception",
                        "No search context found for id [1]",
                        json!({}),
                    );
                }
            }
        }
        (Some(index), None) => {
            let refresh_interval = store.refresh_interval;
            match store.indices.get_mut(index) {
                Some(ix) => {
                    auto_refresh(ix, refresh_interval);
                    (
                        index.to_string(),
                        Arc::new(
                            ix.visible
                                .iter()
                                .map(|(k, d)| (k.clone(), d.clone()))
                                .collect(),
                        ),
                    )
                }
                None if flag(params, "ignore_unavailable") => (index.to_string(), Arc::default()),
                None => return index_not_found(index),
            }
        }
        (None, None) => {
            return es_error(
                StatusCode::BAD_REQUEST,
                "action_request_validation_exception",
                "Validation Failed: 1: the fake needs an index or a point in time;",
                json!({}),
            );
        }
    };
    let query = obj
        .get("query")
        .cloned()
        .unwrap_or(json!({"match_all": {}}));
    let sort = match query::parse_sort(obj.get("sort")) {
        Ok(s) => s,
        Err(QueryError(e)) => return parse_error(&e),
    };
    if sort.iter().any(|k| k.field == "_shard_doc") && pit.is_none() {
        return es_error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "[_shard_doc] sort field cannot be used without [point in time]",
            json!({}),
        );
    }
    if sort.iter().any(|k| k.field == "_id") {
        // Since 8.0 `indices.id_field_data.enabled` is false: sorting on _id is refused.
        return es_error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "Fielddata access on the _id field is disallowed, you can re-enable it by updating the dynamic cluster setting: indices.id_field_data.enabled",
            json!({}),
        );
    }
    let size = obj
        .get("size")
        .and_then(Value::as_u64)
        .or_else(|| params.get("size").and_then(|s| s.parse().ok()))
        .unwrap_or(10) as usize;
    let from = obj.get("from").and_then(Value::as_u64).unwrap_or(0) as usize;
    if from + size > 10_000 {
        return es_error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            &format!(
                "Result window is too large, from + size must be less than or equal to: [10000] but was [{}].",
                from + size
            ),
            json!({}),
        );
    }
    let mappings = store
        .indices
        .get(&index_name)
        .map_or(Value::Null, |ix| ix.mappings.clone());
    let mut hits: Vec<(f64, usize, &String, &Doc)> = Vec::new();
    for (ordinal, (id, doc)) in docs.iter().enumerate() {
        match query::score_in(&query, &mappings, id, &doc.source) {
            Ok(Some(score)) => hits.push((score, ordinal, id, doc)),
            Ok(None) => {}
            Err(QueryError(e)) => return parse_error(&e),
        }
    }
    let sort_values =
        |score: f64, ordinal: usize, id: &str, doc: &Doc, keys: &[SortKey]| -> Vec<Value> {
            keys.iter()
                .map(|k| match k.field.as_str() {
                    "_score" => json!(score),
                    "_doc" | "_shard_doc" => json!(ordinal),
                    "_id" => json!(id),
                    // A `keyword` multi-field sorts by its parent's value.
                    f => match query::lookup(&doc.source, f).or_else(|| {
                        f.strip_suffix(".keyword")
                            .and_then(|p| query::lookup(&doc.source, p))
                    }) {
                        Some(Value::Array(a)) => a.first().cloned().unwrap_or(Value::Null),
                        Some(v) => v.clone(),
                        None => Value::Null,
                    },
                })
                .collect()
        };
    let effective_sort = if sort.is_empty() {
        vec![SortKey {
            field: "_score".into(),
            desc: true,
        }]
    } else {
        sort.clone()
    };
    hits.sort_by(|a, b| {
        let va = sort_values(a.0, a.1, a.2, a.3, &effective_sort);
        let vb = sort_values(b.0, b.1, b.2, b.3, &effective_sort);
        for ((x, y), key) in va.iter().zip(&vb).zip(&effective_sort) {
            let o = query::compare(x, y);
            // Missing values last whatever the direction (`missing: _last`, the default).
            let o = if key.desc && !x.is_null() && !y.is_null() {
                o.reverse()
            } else {
                o
            };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        a.1.cmp(&b.1)
    });
    // Totals and aggregations cover every match, whatever `search_after` skips.
    let total = hits.len();
    let aggregations = match obj.get("aggs").or_else(|| obj.get("aggregations")) {
        Some(aggs) => match terms_aggregations(aggs, &mappings, &hits) {
            Ok(a) => Some(a),
            Err(e) => return parse_error(&e),
        },
        None => None,
    };
    if let Some(after) = obj.get("search_after") {
        let Some(after) = after.as_array() else {
            return parse_error("[search_after] must be an array");
        };
        if after.len() != sort.len() {
            return es_error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                &format!(
                    "search_after has {} value(s) but sort has {}.",
                    after.len(),
                    sort.len()
                ),
                json!({}),
            );
        }
        hits.retain(|h| {
            let v = sort_values(h.0, h.1, h.2, h.3, &sort);
            for ((x, y), key) in v.iter().zip(after).zip(&sort) {
                let o = query::compare(x, y);
                let o = if key.desc && !x.is_null() && !y.is_null() {
                    o.reverse()
                } else {
                    o
                };
                match o {
                    std::cmp::Ordering::Greater => return true,
                    std::cmp::Ordering::Less => return false,
                    std::cmp::Ordering::Equal => {}
                }
            }
            false
        });
    }
    let with_seq = obj.get("seq_no_primary_term").and_then(Value::as_bool) == Some(true);
    let highlight = obj.get("highlight");
    let text_query = find_text_query(&query);
    let page: Vec<Value> = hits
        .iter()
        .skip(from)
        .take(size)
        .map(|(score, ordinal, id, doc)| {
            let mut hit = json!({"_index": index_name, "_id": id, "_score": if sort.is_empty() { json!(score) } else { Value::Null }});
            if let Some(source) = query::filter_source(&doc.source, obj.get("_source")) {
                hit["_source"] = source;
            }
            if !sort.is_empty() {
                hit["sort"] = Value::Array(sort_values(*score, *ordinal, id, doc, &sort));
            }
            if with_seq {
                hit["_seq_no"] = json!(doc.seq_no);
                hit["_primary_term"] = json!(1);
            }
            if let (Some(h), Some(q)) = (highlight, &text_query) {
                let pre = h.pointer("/pre_tags/0").and_then(Value::as_str).unwrap_or("<em>");
                let post = h.pointer("/post_tags/0").and_then(Value::as_str).unwrap_or("</em>");
                let mut out = Map::new();
                if let Some(fields) = h.get("fields").and_then(Value::as_object) {
                    for (field, spec) in fields {
                        let size = spec
                            .get("fragment_size")
                            .or_else(|| h.get("fragment_size"))
                            .and_then(Value::as_u64)
                            .unwrap_or(100) as usize;
                        if let Some(text) = query::lookup(&doc.source, field).and_then(Value::as_str)
                            && let Some(fragment) = query::highlight(text, q, pre, post, size)
                        {
                            out.insert(field.clone(), json!([fragment]));
                        }
                    }
                }
                if !out.is_empty() {
                    hit["highlight"] = Value::Object(out);
                }
            }
            hit
        })
        .collect();
    let max_score = hits
        .iter()
        .map(|h| h.0)
        .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
    let mut response = json!({
        "took": 1,
        "timed_out": false,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {"total": {"value": total, "relation": "eq"}, "max_score": if sort.is_empty() { json!(max_score) } else { Value::Null }, "hits": page}
    });
    if let Some(aggregations) = aggregations {
        response["aggregations"] = aggregations;
    }
    if let Some(pit) = pit {
        response["pit_id"] = pit.get("id").cloned().unwrap_or(Value::Null);
    }
    json_response(StatusCode::OK, response)
}

/// The mappings with the fields dynamic mapping adds for `docs` (as Elasticsearch reports
/// them): strings that parse as dates `date`, other strings `text` with a `keyword`
/// multi-field, integers `long`, other numbers `float`, booleans `boolean`, objects by their
/// fields. Declared fields are left as declared.
fn with_dynamic<'a>(mappings: &Value, docs: impl Iterator<Item = &'a Value>) -> Value {
    fn infer(props: &mut Map<String, Value>, source: &Map<String, Value>) {
        for (name, value) in source {
            let value = match value {
                Value::Array(items) => match items.iter().find(|v| !v.is_null()) {
                    Some(v) => v,
                    None => continue,
                },
                Value::Null => continue,
                v => v,
            };
            if let Value::Object(inner) = value {
                let entry = props
                    .entry(name.clone())
                    .or_insert_with(|| json!({"properties": {}}));
                if let Some(p) = entry.get_mut("properties").and_then(Value::as_object_mut) {
                    infer(p, inner);
                }
                continue;
            }
            if props.contains_key(name) {
                continue;
            }
            let mapping = match value {
                Value::String(s)
                    if s.len() >= 10
                        && s.as_bytes()[4] == b'-'
                        && s.as_bytes()[7] == b'-'
                        && s[..4].bytes().all(|b| b.is_ascii_digit()) =>
                {
                    json!({"type": "date"})
                }
                Value::String(_) => {
                    json!({"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}})
                }
                Value::Number(n) if n.is_i64() || n.is_u64() => json!({"type": "long"}),
                Value::Number(_) => json!({"type": "float"}),
                Value::Bool(_) => json!({"type": "boolean"}),
                _ => continue,
            };
            props.insert(name.clone(), mapping);
        }
    }
    let mut out = match mappings {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let mut props = match out.remove("properties") {
        Some(Value::Object(p)) => p,
        _ => Map::new(),
    };
    for source in docs {
        if let Some(source) = source.as_object() {
            infer(&mut props, source);
        }
    }
    out.insert("properties".into(), Value::Object(props));
    Value::Object(out)
}

/// `terms` aggregations (the only kind the fake knows): documents per value of `field` among
/// the matches, most frequent first, then by value; at most `size` (10) buckets.
fn terms_aggregations(
    aggs: &Value,
    mappings: &Value,
    hits: &[(f64, usize, &String, &Doc)],
) -> Result<Value, String> {
    let aggs = aggs.as_object().ok_or("[aggs] must be an object")?;
    let mut out = Map::new();
    for (name, spec) in aggs {
        let terms = spec
            .get("terms")
            .ok_or_else(|| format!("the fake only knows `terms` aggregations, not [{name}]"))?;
        let field = terms
            .get("field")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("[terms] aggregation [{name}] needs a field"))?;
        let size = terms.get("size").and_then(Value::as_u64).unwrap_or(10) as usize;
        let mut counts: Vec<(Value, u64)> = Vec::new();
        for (_, _, _, doc) in hits {
            let mut values = query::values_of(mappings, &doc.source, field);
            values.dedup();
            for v in values {
                match counts.iter_mut().find(|(k, _)| *k == v) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((v, 1)),
                }
            }
        }
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| query::compare(&a.0, &b.0)));
        counts.truncate(size);
        let buckets: Vec<Value> = counts
            .into_iter()
            .map(|(key, n)| json!({"key": key, "doc_count": n}))
            .collect();
        out.insert(name.clone(), json!({"buckets": buckets}));
    }
    Ok(Value::Object(out))
}

fn find_text_query(query: &Value) -> Option<String> {
    if let Some(q) = query
        .pointer("/simple_query_string/query")
        .and_then(Value::as_str)
    {
        return Some(q.to_string());
    }
    match query {
        Value::Object(map) => map.values().find_map(find_text_query),
        Value::Array(items) => items.iter().find_map(find_text_query),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Bulk

struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, AtomicOrdering::SeqCst);
    }
}

async fn bulk(
    shared: &Shared,
    default_index: Option<&str>,
    params: &HashMap<String, String>,
    body: &Bytes,
) -> Response {
    let now = shared.in_flight.fetch_add(1, AtomicOrdering::SeqCst) + 1;
    let _guard = InFlight(&shared.in_flight);
    let delay = {
        let mut store = shared.lock();
        store.bulk.max_concurrent = store.bulk.max_concurrent.max(now);
        store.bulk_delay
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(_) => return parse_error("bulk body is not UTF-8"),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        return es_error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "The bulk request must be terminated by a newline [\\n]",
            json!({}),
        );
    }
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let mut ops: Vec<(String, Map<String, Value>, Option<Value>)> = Vec::new();
    while let Some(line) = lines.next() {
        let action: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => return parse_error(&format!("Malformed action/metadata line: {e}")),
        };
        let Some((kind, meta)) = action.as_object().and_then(|o| o.iter().next()) else {
            return parse_error("Malformed action/metadata line, expected START_OBJECT");
        };
        let meta = meta.as_object().cloned().unwrap_or_default();
        let source = match kind.as_str() {
            "index" | "create" | "update" => {
                match lines.next().map(serde_json::from_str::<Value>) {
                    Some(Ok(v)) => Some(v),
                    _ => {
                        return parse_error(&format!(
                            "Validation Failed: 1: {kind} requires a source;"
                        ));
                    }
                }
            }
            "delete" => None,
            other => {
                return es_error(
                    StatusCode::BAD_REQUEST,
                    "illegal_argument_exception",
                    &format!(
                        "Malformed action/metadata line, expected one of [create, delete, index, update] but found [{other}]"
                    ),
                    json!({}),
                );
            }
        };
        ops.push((kind.clone(), meta, source));
    }
    if ops.is_empty() {
        return es_error(
            StatusCode::BAD_REQUEST,
            "action_request_validation_exception",
            "Validation Failed: 1: no requests added;",
            json!({}),
        );
    }
    let mut store = shared.lock();
    store.bulk.requests += 1;
    store.bulk.items += ops.len();
    store.bulk.sizes.push(ops.len());
    store.bulk.bytes.push(body.len());
    let mut items = Vec::with_capacity(ops.len());
    let mut errors = false;
    let mut touched = Vec::new();
    for (kind, meta, source) in ops {
        let index = meta
            .get("_index")
            .and_then(Value::as_str)
            .or(default_index)
            .unwrap_or("")
            .to_string();
        let id = match meta.get("_id").and_then(Value::as_str) {
            Some(id) => id.to_string(),
            None if kind == "index" || kind == "create" => {
                store.next_id += 1;
                format!("auto{:016x}", store.next_id)
            }
            None => {
                errors = true;
                items.push(json!({ kind.clone(): {"_index": index, "status": 400, "error": {"type": "action_request_validation_exception", "reason": "Validation Failed: 1: id is missing;"}} }));
                continue;
            }
        };
        let fault = store
            .item_faults
            .iter_mut()
            .find(|f| f.times > 0 && f.id.as_deref().is_none_or(|fid| fid == id));
        if let Some(f) = fault {
            f.times -= 1;
            errors = true;
            items.push(json!({ kind.clone(): {"_index": index, "_id": id, "status": f.status, "error": {"type": f.error_type, "reason": f.reason, "index": index, "shard": "0", "index_uuid": "fake"}} }));
            continue;
        }
        if let Some(why) = invalid_index_name(&index) {
            errors = true;
            items.push(json!({ kind.clone(): {"_index": index, "_id": id, "status": 400, "error": {"type": "invalid_index_name_exception", "reason": format!("Invalid index name [{index}], {why}")}} }));
            continue;
        }
        let n = store.indices.len();
        let ix = store
            .indices
            .entry(index.clone())
            .or_insert_with(|| Index::new(json!({}), n, true));
        touched.push(index.clone());
        let item = match (kind.as_str(), source) {
            ("delete", _)
                if meta.contains_key("if_seq_no")
                    && (meta.get("if_seq_no").and_then(Value::as_u64)
                        != ix.live.get(&id).map(|d| d.seq_no)
                        || meta.get("if_primary_term").and_then(Value::as_u64) != Some(1)) =>
            {
                errors = true;
                let want = meta.get("if_seq_no").and_then(Value::as_u64).unwrap_or(0);
                let reason = match ix.live.get(&id) {
                    Some(d) => format!(
                        "[{id}]: version conflict, required seqNo [{want}], primary term [1]. current document has seqNo [{}] and primary term [1]",
                        d.seq_no
                    ),
                    None => format!(
                        "[{id}]: version conflict, required seqNo [{want}], primary term [1]. but no document was found"
                    ),
                };
                json!({"_index": index, "_id": id, "status": 409, "error": {"type": "version_conflict_engine_exception", "reason": reason, "index": index, "shard": "0", "index_uuid": ix.uuid}})
            }
            ("delete", _) => {
                let seq = ix.next_seq();
                match ix.live.remove(&id) {
                    Some(d) => {
                        ix.dirty = true;
                        json!({"_index": index, "_id": id, "_version": d.version + 1, "result": "deleted", "_shards": shards(), "_seq_no": seq, "_primary_term": 1, "status": 200})
                    }
                    None => {
                        json!({"_index": index, "_id": id, "_version": 1, "result": "not_found", "_shards": shards(), "_seq_no": seq, "_primary_term": 1, "status": 404})
                    }
                }
            }
            ("create", Some(_)) if ix.live.contains_key(&id) => {
                errors = true;
                json!({"_index": index, "_id": id, "status": 409, "error": {"type": "version_conflict_engine_exception", "reason": format!("[{id}]: version conflict, document already exists (current version [1])"), "index": index, "shard": "0", "index_uuid": ix.uuid}})
            }
            ("update", Some(body)) => {
                let patch = body.get("doc").cloned().unwrap_or(json!({}));
                let as_upsert = body.get("doc_as_upsert").and_then(Value::as_bool) == Some(true);
                match ix.live.get(&id).cloned() {
                    None if !as_upsert => {
                        errors = true;
                        json!({"_index": index, "_id": id, "status": 404, "error": {"type": "document_missing_exception", "reason": format!("[{id}]: document missing"), "index": index, "shard": "0", "index_uuid": ix.uuid}})
                    }
                    current => {
                        let mut merged = current.map(|d| d.source).unwrap_or(json!({}));
                        merge(&mut merged, &patch);
                        match mapping_error(&ix.mappings, &merged) {
                            Some(reason) => {
                                errors = true;
                                json!({"_index": index, "_id": id, "status": 400, "error": {"type": "document_parsing_exception", "reason": format!("[1:1] {reason}")}})
                            }
                            None => {
                                let (result, status, version) = write(ix, &id, merged);
                                json!({"_index": index, "_id": id, "_version": version, "result": result, "_shards": shards(), "_seq_no": ix.seq_no - 1, "_primary_term": 1, "status": status.as_u16()})
                            }
                        }
                    }
                }
            }
            (_, Some(source)) => match mapping_error(&ix.mappings, &source) {
                Some(reason) => {
                    errors = true;
                    json!({"_index": index, "_id": id, "status": 400, "error": {"type": "document_parsing_exception", "reason": format!("[1:1] {reason}")}})
                }
                None => {
                    let (result, status, version) = write(ix, &id, source);
                    json!({"_index": index, "_id": id, "_version": version, "result": result, "_shards": shards(), "_seq_no": ix.seq_no - 1, "_primary_term": 1, "status": status.as_u16()})
                }
            },
            (_, None) => json!({"_index": index, "_id": id, "status": 400}),
        };
        items.push(json!({ kind: item }));
    }
    if refresh_requested(params) {
        for name in touched {
            if let Some(ix) = store.indices.get_mut(&name) {
                ix.refresh();
            }
        }
    }
    json_response(
        StatusCode::OK,
        json!({"took": 3, "errors": errors, "items": items}),
    )
}

#[cfg(test)]
mod tests;

/// Whether `name` matches `pattern`, where `*` is any run of characters.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}
