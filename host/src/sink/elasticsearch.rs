//! The Elasticsearch sink: documents go to an Elasticsearch cluster through the official
//! `elasticsearch` client, in Elastic's document shapes (the `_id` is the document id, fields
//! as the plugin built them, extracted text in `body`, access-control documents in
//! `.search-acl-filter-<index>`).
//!
//! # Writing
//!
//! `upsert` and `delete` cut their operations into bulk requests bounded by count
//! (`bulk_max_docs`, 500 as Elastic) and bytes (`bulk_max_bytes`, 3 MiB), and send up to
//! `bulk_concurrency` (5) of them at once in the background. When that many are in flight the
//! call waits for a slot: that wait is the backpressure that slows the plugin down. A bulk
//! request that touches an id still in flight waits for it first, so two writes of one
//! document never race. `commit` waits for everything in flight and refreshes the index.
//!
//! Retries: a whole request answered 429 or 5xx, or lost on the network, is sent again; items
//! answered 429 or 503 (a full write queue, an unavailable shard) are sent again on their own.
//! Both back off exponentially (`retry_backoff_ms`, doubling, at most `retries` times). Any
//! other item error (a mapping conflict, say) is not retried: the next call on that index fails
//! with the document id and Elasticsearch's reason, which fails the job.
//!
//! # Reading
//!
//! `versions` lists a connector's ids and versions with a point in time and `search_after` on
//! `_shard_doc`: a consistent snapshot that pages through any number of documents without the
//! `from + size` window limit, needs no sortable id field (sorting on `_id` is refused since
//! 8.0) and, unlike scroll, holds no per-request search context between pages.
//!
//! Two fields of our own ride along in each document: `_tributary_connector` (which connector
//! wrote it) and `_tributary_version` (the version marker that lets full syncs skip unchanged
//! documents). Documents without them — written by Elastic's own connectors service before a
//! migration — count as the connector's with an unknown version, so the first full sync
//! rewrites them once and deletes those that vanished. Tenants are not part of index names:
//! give each tenant its own index names on a shared cluster.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::http::{Method, StatusCode, headers::HeaderMap};
use elasticsearch::indices::{IndicesCreateParts, IndicesExistsParts, IndicesRefreshParts};
use elasticsearch::{BulkParts, CountParts, Elasticsearch, OpenPointInTimeParts, SearchParts};
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::{IndexRef, SearchHit, SearchRequest, SearchResults, Sink, SinkDocument};

/// Field naming the connector that wrote a document.
pub const CONNECTOR_FIELD: &str = "_tributary_connector";
/// Field holding the version marker.
pub const VERSION_FIELD: &str = "_tributary_version";
/// Field holding extracted text (Elastic's name).
pub const BODY_FIELD: &str = "body";
/// Documents per page when listing versions.
const SCAN_PAGE: usize = 1000;

/// `[elasticsearch]` in `tributary.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElasticsearchConfig {
    /// Cluster URL, e.g. `https://es.example.com:9200`.
    pub host: String,
    /// An encoded API key (base64 of `id:secret`, as Kibana shows it).
    pub api_key: Option<String>,
    /// Basic authentication user (with `password`).
    pub username: Option<String>,
    /// Basic authentication password.
    pub password: Option<String>,
    /// PEM file with the CA certificate(s) the cluster's certificate is signed by.
    pub ca_file: Option<PathBuf>,
    /// Verify the server certificate (leave on outside experiments).
    pub verify_certs: bool,
    /// Most operations per bulk request.
    pub bulk_max_docs: usize,
    /// Most bytes per bulk request.
    pub bulk_max_bytes: usize,
    /// Most bulk requests in flight at once.
    pub bulk_concurrency: usize,
    /// Retries of a rejected bulk request or item.
    pub retries: u32,
    /// First retry delay in milliseconds (doubles per retry, at most 60 s).
    pub retry_backoff_ms: u64,
    /// Time limit of one request, in seconds.
    pub request_timeout_secs: u64,
}

impl Default for ElasticsearchConfig {
    fn default() -> Self {
        Self {
            host: "http://localhost:9200".into(),
            api_key: None,
            username: None,
            password: None,
            ca_file: None,
            verify_certs: true,
            bulk_max_docs: 500,
            bulk_max_bytes: 3 * 1024 * 1024,
            bulk_concurrency: 5,
            retries: 5,
            retry_backoff_ms: 1000,
            request_timeout_secs: 240,
        }
    }
}

impl ElasticsearchConfig {
    /// A client for this cluster, with its authentication and TLS settings.
    pub fn client(&self) -> anyhow::Result<Elasticsearch> {
        let url = url::Url::parse(&self.host)
            .with_context(|| format!("elasticsearch host `{}` is not a URL", self.host))?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!(
                "elasticsearch host `{}` must be http:// or https://",
                self.host
            );
        }
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url))
            .timeout(Duration::from_secs(self.request_timeout_secs.max(1)));
        match (&self.api_key, &self.username, &self.password) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                bail!("elasticsearch: give either `api_key` or `username`/`password`, not both")
            }
            (Some(key), None, None) => {
                builder = builder.auth(Credentials::EncodedApiKey(key.clone()));
            }
            (None, Some(user), Some(password)) => {
                builder = builder.auth(Credentials::Basic(user.clone(), password.clone()));
            }
            (None, Some(_), None) | (None, None, Some(_)) => {
                bail!("elasticsearch: `username` and `password` go together")
            }
            (None, None, None) => {}
        }
        if !self.verify_certs {
            builder = builder.cert_validation(CertificateValidation::None);
        } else if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading the CA file {}", path.display()))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| anyhow!("the CA file {} is not PEM: {e}", path.display()))?;
            builder = builder.cert_validation(CertificateValidation::Full(cert));
        }
        let transport = builder
            .build()
            .map_err(|e| anyhow!("building the Elasticsearch client: {e}"))?;
        Ok(Elasticsearch::new(transport))
    }
}

/// One bulk operation, serialized once.
struct Op {
    id: String,
    action: Bytes,
    source: Option<Bytes>,
}

impl Op {
    fn len(&self) -> usize {
        self.action.len() + 1 + self.source.as_ref().map_or(0, |s| s.len() + 1)
    }
}

/// A bulk request in flight and the ids it writes.
struct InFlight {
    ids: HashSet<String>,
    handle: JoinHandle<anyhow::Result<()>>,
}

/// Counters of what the sink wrote.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Documents indexed (acknowledged by Elasticsearch).
    pub indexed: AtomicU64,
    /// Bytes of indexed document sources.
    pub indexed_bytes: AtomicU64,
    /// Documents deleted.
    pub deleted: AtomicU64,
    /// Bulk requests sent (retries included).
    pub requests: AtomicU64,
    /// Items retried after a 429/503.
    pub retried_items: AtomicU64,
}

/// The Elasticsearch sink.
pub struct ElasticsearchSink {
    client: Elasticsearch,
    config: ElasticsearchConfig,
    slots: Arc<Semaphore>,
    ensured: tokio::sync::Mutex<HashSet<String>>,
    in_flight: Mutex<HashMap<String, Vec<InFlight>>>,
    stats: Arc<SinkStats>,
}

impl ElasticsearchSink {
    /// A sink writing to the cluster `config` names (no request is sent yet).
    pub fn new(config: &ElasticsearchConfig) -> anyhow::Result<Self> {
        let client = config.client()?;
        let mut config = config.clone();
        config.bulk_max_docs = config.bulk_max_docs.clamp(1, 100_000);
        config.bulk_max_bytes = config.bulk_max_bytes.clamp(1024, 100 * 1024 * 1024);
        config.bulk_concurrency = config.bulk_concurrency.clamp(1, 64);
        Ok(Self {
            client,
            slots: Arc::new(Semaphore::new(config.bulk_concurrency)),
            config,
            ensured: tokio::sync::Mutex::default(),
            in_flight: Mutex::default(),
            stats: Arc::default(),
        })
    }

    /// The client (shared with the connectors compatibility mode).
    pub fn client(&self) -> &Elasticsearch {
        &self.client
    }

    /// What was written so far.
    pub fn stats(&self) -> &Arc<SinkStats> {
        &self.stats
    }

    /// Checks the cluster answers (and the credentials work): its version number.
    pub async fn ping(&self) -> anyhow::Result<String> {
        let response =
            self.client.info().send().await.map_err(|e| {
                anyhow!("Elasticsearch at {} is unreachable: {e}", self.config.host)
            })?;
        let body = read_json(response, "cluster info").await?;
        Ok(body
            .pointer("/version/number")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string())
    }

    /// Creates `index` with tributary's mappings unless it exists.
    pub async fn ensure_index(&self, index: &str) -> anyhow::Result<()> {
        let mut ensured = self.ensured.lock().await;
        if ensured.contains(index) {
            return Ok(());
        }
        let exists = self
            .client
            .indices()
            .exists(IndicesExistsParts::Index(&[index]))
            .send()
            .await
            .map_err(|e| anyhow!("checking whether index `{index}` exists: {e}"))?;
        match exists.status_code() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                let response = self
                    .client
                    .indices()
                    .create(IndicesCreateParts::Index(index))
                    .body(index_definition(index))
                    .send()
                    .await
                    .map_err(|e| anyhow!("creating index `{index}`: {e}"))?;
                let status = response.status_code();
                if !status.is_success() {
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    // Another writer created it meanwhile: fine.
                    if error_type(&body) != Some("resource_already_exists_exception") {
                        bail!(
                            "creating index `{index}`: HTTP {}: {}",
                            status.as_u16(),
                            error_reason(&body)
                        );
                    }
                }
                tracing::info!(%index, "created Elasticsearch index");
            }
            other => bail!(
                "checking whether index `{index}` exists: HTTP {}",
                other.as_u16()
            ),
        }
        ensured.insert(index.to_string());
        Ok(())
    }

    fn index_op(doc: &SinkDocument) -> anyhow::Result<(Op, usize)> {
        let mut source = doc.fields.clone();
        if let Some(body) = &doc.body {
            source.insert(BODY_FIELD.into(), Value::String(body.clone()));
        }
        source.insert(CONNECTOR_FIELD.into(), Value::String(doc.connector.clone()));
        match &doc.version {
            Some(v) => {
                source.insert(VERSION_FIELD.into(), Value::String(v.clone()));
            }
            None => {
                source.remove(VERSION_FIELD);
            }
        }
        let source = serde_json::to_vec(&Value::Object(source))?;
        let action = serde_json::to_vec(&json!({"index": {"_id": doc.id}}))?;
        let len = source.len();
        Ok((
            Op {
                id: doc.id.clone(),
                action: Bytes::from(action),
                source: Some(Bytes::from(source)),
            },
            len,
        ))
    }

    fn delete_op(id: &str) -> anyhow::Result<Op> {
        Ok(Op {
            id: id.to_string(),
            action: Bytes::from(serde_json::to_vec(&json!({"delete": {"_id": id}}))?),
            source: None,
        })
    }

    /// Cuts `ops` into bounded bulk requests and sends them, waiting for a free slot (and for
    /// in-flight writes of the same ids) before each.
    async fn submit(&self, index: &str, ops: Vec<Op>) -> anyhow::Result<()> {
        self.ensure_index(index).await?;
        let mut chunk: Vec<Op> = Vec::new();
        let mut bytes = 0;
        for op in ops {
            let len = op.len();
            if !chunk.is_empty()
                && (chunk.len() >= self.config.bulk_max_docs
                    || bytes + len > self.config.bulk_max_bytes)
            {
                self.send_chunk(index, std::mem::take(&mut chunk)).await?;
                bytes = 0;
            }
            bytes += len;
            chunk.push(op);
        }
        if !chunk.is_empty() {
            self.send_chunk(index, chunk).await?;
        }
        Ok(())
    }

    async fn send_chunk(&self, index: &str, chunk: Vec<Op>) -> anyhow::Result<()> {
        let ids: HashSet<String> = chunk.iter().map(|o| o.id.clone()).collect();
        // Finished requests, and requests writing the same ids, are awaited first: their errors
        // surface now, and a later write of an id never overtakes an earlier one.
        let waiting: Vec<JoinHandle<anyhow::Result<()>>> = {
            let mut map = self
                .in_flight
                .lock()
                .map_err(|_| anyhow!("sink lock poisoned"))?;
            let list = map.entry(index.to_string()).or_default();
            let (wait, keep): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(list)
                .into_iter()
                .partition(|f| f.handle.is_finished() || !f.ids.is_disjoint(&ids));
            *list = keep;
            wait.into_iter().map(|f| f.handle).collect()
        };
        join_all(waiting).await?;
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| anyhow!("the sink is shutting down"))?;
        let client = self.client.clone();
        let config = self.config.clone();
        let stats = self.stats.clone();
        let target = index.to_string();
        let handle = tokio::spawn(async move {
            let result = send_bulk(&client, &config, &stats, &target, chunk).await;
            drop(permit);
            result
        });
        self.in_flight
            .lock()
            .map_err(|_| anyhow!("sink lock poisoned"))?
            .entry(index.to_string())
            .or_default()
            .push(InFlight { ids, handle });
        Ok(())
    }

    /// Waits for every bulk request in flight for `index`.
    async fn drain(&self, index: &str) -> anyhow::Result<()> {
        let handles: Vec<JoinHandle<anyhow::Result<()>>> = self
            .in_flight
            .lock()
            .map_err(|_| anyhow!("sink lock poisoned"))?
            .remove(index)
            .unwrap_or_default()
            .into_iter()
            .map(|f| f.handle)
            .collect();
        join_all(handles).await
    }

    async fn search_raw(&self, index: &str, body: Value) -> anyhow::Result<Option<Value>> {
        let response = self
            .client
            .search(SearchParts::Index(&[index]))
            .body(body)
            .send()
            .await
            .map_err(|e| anyhow!("searching `{index}`: {e}"))?;
        if response.status_code() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        read_json(response, &format!("searching `{index}`"))
            .await
            .map(Some)
    }

    async fn versions_of(
        &self,
        index: &str,
        connector: &str,
    ) -> anyhow::Result<HashMap<String, Option<String>>> {
        let mut out = HashMap::new();
        let opened = self
            .client
            .open_point_in_time(OpenPointInTimeParts::Index(&[index]))
            .keep_alive("2m")
            .send()
            .await
            .map_err(|e| anyhow!("opening a point in time on `{index}`: {e}"))?;
        if opened.status_code() == StatusCode::NOT_FOUND {
            return Ok(out); // nothing indexed yet
        }
        let opened = read_json(opened, &format!("opening a point in time on `{index}`")).await?;
        let mut pit = opened
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("Elasticsearch returned no point-in-time id"))?
            .to_string();
        let scanned = async {
            let mut after: Option<Value> = None;
            loop {
                let mut body = json!({
                    "size": SCAN_PAGE,
                    "pit": {"id": pit, "keep_alive": "2m"},
                    "sort": [{"_shard_doc": "asc"}],
                    "query": owned_by(connector),
                    "_source": [VERSION_FIELD],
                    "track_total_hits": false,
                });
                if let Some(a) = after.take() {
                    body["search_after"] = a;
                }
                let response = self
                    .client
                    .search(SearchParts::None)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| anyhow!("listing `{index}`: {e}"))?;
                let page = read_json(response, &format!("listing `{index}`")).await?;
                if let Some(id) = page.get("pit_id").and_then(Value::as_str) {
                    pit = id.to_string();
                }
                let hits = page
                    .pointer("/hits/hits")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for hit in &hits {
                    let Some(id) = hit.get("_id").and_then(Value::as_str) else {
                        continue;
                    };
                    let version = hit
                        .pointer(&format!("/_source/{VERSION_FIELD}"))
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    out.insert(id.to_string(), version);
                }
                match hits.last().and_then(|h| h.get("sort")) {
                    Some(sort) if hits.len() == SCAN_PAGE => after = Some(sort.clone()),
                    _ => break,
                }
            }
            anyhow::Ok(())
        }
        .await;
        // Free the point in time whatever happened (it would expire on its own anyway).
        if let Err(e) = self
            .client
            .close_point_in_time()
            .body(json!({"id": pit}))
            .send()
            .await
        {
            tracing::debug!("closing a point in time: {e}");
        }
        scanned?;
        Ok(out)
    }

    async fn search_index(
        &self,
        index: &str,
        request: &SearchRequest,
    ) -> anyhow::Result<SearchResults> {
        let mut filter = Vec::new();
        if let Some(connector) = &request.connector {
            filter.push(owned_by(connector));
        }
        if let Some(identities) = &request.identities {
            filter.push(json!({"terms": {"_allow_access_control": identities}}));
        }
        let body = json!({
            "size": request.limit.clamp(1, 1000),
            "track_total_hits": true,
            "query": {"bool": {
                "must": [{"simple_query_string": {
                    "query": request.query,
                    "fields": ["title^2", "name^2", BODY_FIELD, "*"],
                    "default_operator": "and",
                    "lenient": true,
                }}],
                "filter": filter,
            }},
            "highlight": {
                "pre_tags": ["<b>"],
                "post_tags": ["</b>"],
                "fields": {BODY_FIELD: {"fragment_size": 200, "number_of_fragments": 1}},
            },
        });
        let Some(found) = self.search_raw(index, body).await? else {
            return Ok(SearchResults {
                total: 0,
                hits: Vec::new(),
            });
        };
        let total = found
            .pointer("/hits/total/value")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize;
        let hits = found
            .pointer("/hits/hits")
            .and_then(Value::as_array)
            .map(|hits| {
                hits.iter()
                    .map(|hit| {
                        let doc = from_hit(hit);
                        SearchHit {
                            title: ["title", "name"]
                                .iter()
                                .find_map(|k| doc.fields.get(*k).and_then(Value::as_str))
                                .map(str::to_string),
                            snippet: hit
                                .pointer(&format!("/highlight/{BODY_FIELD}/0"))
                                .and_then(Value::as_str)
                                .map(str::to_string),
                            score: hit.get("_score").and_then(Value::as_f64).unwrap_or(0.0) as f32,
                            id: doc.id,
                            connector: doc.connector,
                            fields: doc.fields,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(SearchResults { total, hits })
    }

    async fn get_docs(
        &self,
        index: &str,
        connector: &str,
        ids: &[String],
    ) -> anyhow::Result<Vec<SinkDocument>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(SCAN_PAGE) {
            let body = json!({
                "size": chunk.len(),
                "query": {"bool": {"filter": [{"ids": {"values": chunk}}, owned_by(connector)]}},
            });
            let Some(found) = self.search_raw(index, body).await? else {
                return Ok(out);
            };
            if let Some(hits) = found.pointer("/hits/hits").and_then(Value::as_array) {
                out.extend(hits.iter().map(from_hit));
            }
        }
        Ok(out)
    }

    /// Documents in `index` now (after a refresh).
    pub async fn count(&self, index: &str) -> anyhow::Result<u64> {
        let response = self
            .client
            .count(CountParts::Index(&[index]))
            .ignore_unavailable(true)
            .send()
            .await
            .map_err(|e| anyhow!("counting `{index}`: {e}"))?;
        let body = read_json(response, &format!("counting `{index}`")).await?;
        Ok(body.get("count").and_then(Value::as_u64).unwrap_or(0))
    }
}

/// Documents of `connector`, and documents no tributary connector wrote (Elastic's service).
fn owned_by(connector: &str) -> Value {
    json!({"bool": {
        "should": [
            {"term": {CONNECTOR_FIELD: connector}},
            {"bool": {"must_not": [{"exists": {"field": CONNECTOR_FIELD}}]}},
        ],
        "minimum_should_match": 1,
    }})
}

/// The document a search hit holds.
fn from_hit(hit: &Value) -> SinkDocument {
    let mut fields: Map<String, Value> = match hit.get("_source") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    let connector = match fields.remove(CONNECTOR_FIELD) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    let version = match fields.remove(VERSION_FIELD) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let body = match fields.remove(BODY_FIELD) {
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            fields.insert(BODY_FIELD.into(), other);
            None
        }
        None => None,
    };
    SinkDocument {
        id: hit
            .get("_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        connector,
        version,
        fields,
        body,
    }
}

/// Settings and mappings of an index the sink creates.
pub fn index_definition(index: &str) -> Value {
    let keyword = json!({"type": "keyword"});
    let text_with_keyword =
        json!({"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}});
    let mut properties = json!({
        CONNECTOR_FIELD: keyword,
        VERSION_FIELD: keyword,
        "id": keyword,
        "_allow_access_control": keyword,
        // Plugins' version markers are usually, not always, timestamps: keep the others.
        "_timestamp": {"type": "date", "ignore_malformed": true},
    });
    if index.starts_with(".search-acl-filter-") {
        // Access-control documents: who the identity is, and the query template Elastic's
        // document-level security applies — stored, never searched.
        properties["identity"] = json!({"type": "object", "dynamic": true});
        properties["query"] = json!({"type": "object", "enabled": false});
    } else {
        properties["title"] = text_with_keyword.clone();
        properties["name"] = text_with_keyword;
        properties[BODY_FIELD] = json!({"type": "text"});
        properties["url"] = keyword;
    }
    json!({"mappings": {"properties": properties}})
}

async fn join_all(handles: Vec<JoinHandle<anyhow::Result<()>>>) -> anyhow::Result<()> {
    let mut first = None;
    for handle in handles {
        let outcome = match handle.await {
            Ok(r) => r,
            Err(e) => Err(anyhow!("bulk task failed: {e}")),
        };
        if let Err(e) = outcome
            && first.is_none()
        {
            first = Some(e);
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn error_type(body: &Value) -> Option<&str> {
    body.pointer("/error/type").and_then(Value::as_str)
}

fn error_reason(body: &Value) -> String {
    match (
        error_type(body),
        body.pointer("/error/reason").and_then(Value::as_str),
    ) {
        (Some(t), Some(r)) => format!("{t}: {r}"),
        (Some(t), None) => t.to_string(),
        _ => crate::text::truncate(&body.to_string(), 300).to_string(),
    }
}

/// The JSON body of a successful response, or an error naming what failed and why.
pub async fn read_json(
    response: elasticsearch::http::response::Response,
    what: &str,
) -> anyhow::Result<Value> {
    let status = response.status_code();
    let text = response
        .text()
        .await
        .map_err(|e| anyhow!("{what}: reading the response: {e}"))?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        bail!("{what}: HTTP {}: {}", status.as_u16(), error_reason(&body));
    }
    Ok(body)
}

fn backoff(config: &ElasticsearchConfig, attempt: u32) -> Duration {
    let ms = config
        .retry_backoff_ms
        .saturating_mul(1u64 << attempt.min(16))
        .min(60_000);
    Duration::from_millis(ms)
}

/// Sends one bulk request, retrying the whole request (429/5xx/network) or its rejected items
/// (429/503) with exponential backoff; fails on the first item Elasticsearch refuses for good.
async fn send_bulk(
    client: &Elasticsearch,
    config: &ElasticsearchConfig,
    stats: &SinkStats,
    index: &str,
    mut ops: Vec<Op>,
) -> anyhow::Result<()> {
    let mut attempt = 0u32;
    loop {
        let mut lines = Vec::with_capacity(ops.len() * 2);
        for op in &ops {
            lines.push(op.action.clone());
            if let Some(source) = &op.source {
                lines.push(source.clone());
            }
        }
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let sent = client
            .bulk(BulkParts::Index(index))
            .body(lines)
            .send()
            .await;
        let retry_reason = match sent {
            Err(e) => format!("request failed: {e}"),
            Ok(response) => {
                let status = response.status_code();
                let code = status.as_u16();
                if code == 429 || (500..600).contains(&code) {
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    format!("HTTP {code}: {}", error_reason(&body))
                } else if !status.is_success() {
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    let hint = if code == 413 {
                        " (lower `bulk_max_bytes`)"
                    } else {
                        ""
                    };
                    bail!(
                        "bulk request to `{index}` refused: HTTP {code}: {}{hint}",
                        error_reason(&body)
                    );
                } else {
                    let body: Value = response
                        .json()
                        .await
                        .map_err(|e| anyhow!("bulk response from `{index}` unreadable: {e}"))?;
                    let items = body
                        .get("items")
                        .and_then(Value::as_array)
                        .ok_or_else(|| anyhow!("bulk response from `{index}` has no items"))?;
                    if items.len() != ops.len() {
                        bail!(
                            "bulk response from `{index}` has {} items for {} operations",
                            items.len(),
                            ops.len()
                        );
                    }
                    let mut retry = Vec::new();
                    let mut last = String::new();
                    for (op, item) in ops.into_iter().zip(items) {
                        let (kind, result) = match item.as_object().and_then(|o| o.iter().next()) {
                            Some((k, v)) => (k.as_str(), v),
                            None => bail!("bulk response from `{index}`: malformed item {item}"),
                        };
                        let status = result.get("status").and_then(Value::as_u64).unwrap_or(0);
                        let reason = || match (
                            result.pointer("/error/type").and_then(Value::as_str),
                            result.pointer("/error/reason").and_then(Value::as_str),
                        ) {
                            (Some(t), Some(r)) => format!("{t}: {r}"),
                            (Some(t), None) => t.to_string(),
                            _ => format!("status {status}"),
                        };
                        match status {
                            200..=299 => {
                                if kind == "delete" {
                                    stats.deleted.fetch_add(1, Ordering::Relaxed);
                                } else {
                                    stats.indexed.fetch_add(1, Ordering::Relaxed);
                                    let n = op.source.as_ref().map_or(0, |s| s.len()) as u64;
                                    stats.indexed_bytes.fetch_add(n, Ordering::Relaxed);
                                }
                            }
                            404 if kind == "delete" => {} // already gone
                            429 | 503 => {
                                last = format!("document `{}`: HTTP {status} {}", op.id, reason());
                                retry.push(op);
                            }
                            _ => bail!(
                                "Elasticsearch refused document `{}` in `{index}` (HTTP {status}): {}",
                                op.id,
                                reason()
                            ),
                        }
                    }
                    if retry.is_empty() {
                        return Ok(());
                    }
                    stats
                        .retried_items
                        .fetch_add(retry.len() as u64, Ordering::Relaxed);
                    ops = retry;
                    last
                }
            }
        };
        if attempt >= config.retries {
            bail!(
                "bulk write to `{index}` still failing after {} attempt(s): {retry_reason}",
                attempt + 1
            );
        }
        tracing::debug!(%index, attempt, "retrying bulk write: {retry_reason}");
        tokio::time::sleep(backoff(config, attempt)).await;
        attempt += 1;
    }
}

impl Sink for ElasticsearchSink {
    fn kind(&self) -> &'static str {
        "elasticsearch"
    }

    fn upsert(
        &self,
        index: IndexRef,
        docs: Vec<SinkDocument>,
    ) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let mut ops = Vec::with_capacity(docs.len());
            for doc in &docs {
                ops.push(Self::index_op(doc)?.0);
            }
            self.submit(&index.name, ops).await
        })
    }

    fn delete(
        &self,
        index: IndexRef,
        _connector: String,
        ids: Vec<String>,
    ) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let ops = ids
                .iter()
                .map(String::as_str)
                .map(Self::delete_op)
                .collect::<anyhow::Result<Vec<_>>>()?;
            self.submit(&index.name, ops).await
        })
    }

    fn commit(&self, index: IndexRef) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            self.drain(&index.name).await?;
            let response = self
                .client
                .indices()
                .refresh(IndicesRefreshParts::Index(&[&index.name]))
                .ignore_unavailable(true)
                .send()
                .await
                .map_err(|e| anyhow!("refreshing `{}`: {e}", index.name))?;
            read_json(response, &format!("refreshing `{}`", index.name)).await?;
            Ok(())
        })
    }

    fn versions(
        &self,
        index: IndexRef,
        connector: String,
    ) -> BoxFuture<'_, anyhow::Result<HashMap<String, Option<String>>>> {
        Box::pin(async move { self.versions_of(&index.name, &connector).await })
    }

    fn search(
        &self,
        index: IndexRef,
        request: SearchRequest,
    ) -> BoxFuture<'_, anyhow::Result<SearchResults>> {
        Box::pin(async move { self.search_index(&index.name, &request).await })
    }

    fn get(
        &self,
        index: IndexRef,
        connector: String,
        ids: Vec<String>,
    ) -> BoxFuture<'_, anyhow::Result<Vec<SinkDocument>>> {
        Box::pin(async move { self.get_docs(&index.name, &connector, &ids).await })
    }
}

/// Sends a request the typed API has no builder for (kept for the compatibility mode).
pub async fn raw(
    client: &Elasticsearch,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<elasticsearch::http::response::Response> {
    let body = body.map(elasticsearch::http::request::JsonBody::new);
    client
        .send(method, path, HeaderMap::new(), None::<&()>, body, None)
        .await
        .map_err(|e| anyhow!("{path}: {e}"))
}

#[cfg(test)]
mod tests;
