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
//! # Tenants and connectors
//!
//! Invariants: a tenant's index never shares an Elasticsearch index with another tenant's,
//! and `delete`, `versions`, `search` and `get` only ever see documents of the tenant (and
//! connector) they are asked for — the contract the embedded index keeps.
//!
//! - Index names: [`IndexPattern`] (`index_pattern`, default `tributary-{tenant}-{index}`)
//!   maps a tenant's index to one Elasticsearch index, in this one place; the access-control
//!   index of `X` is `.search-acl-filter-X`, as Elastic names it. A pattern without `{tenant}`
//!   needs `single_tenant = true` (Elastic compatibility mode and migrations from Elastic's own
//!   indexes). Each index the sink creates records its tenant and name in `_meta.tributary`,
//!   and with a `{tenant}` pattern an existing index recording another owner is refused, so two
//!   pairs that render to one name (`a-b`/`c` and `a`/`b-c`) cannot share it.
//! - Documents: three fields of our own ride along in each one — `_tributary_connector` and
//!   `_tributary_tenant` (who wrote it) and `_tributary_version` (the version marker that lets
//!   full syncs skip unchanged documents). Every read filters on the first two (a document
//!   with a connector but no tenant field predates the field and counts as the tenant's, so
//!   an upgrade loses nothing). The `_id` stays
//!   the document id (Elastic's shape), so a delete first reads the document's owner and
//!   sequence number (`_mget`, real-time) and deletes it only if it is still that owner's, with
//!   `if_seq_no`/`if_primary_term`; ids of other connectors are left alone. Two connectors
//!   emitting the *same* id into one index share that `_id`: the last write owns it.
//! - Documents without `_tributary_connector` — written by Elastic's own connectors service
//!   before a migration — count as the connector's with an unknown version, so the first full
//!   sync rewrites them once and deletes those that vanished.
//!
//! # Document-level security
//!
//! `_allow_access_control` is mapped as Elastic's dynamic mapping maps a string: `text` with a
//! `keyword` sub-field, which Elastic's access-control query template (and our own identity
//! filter) query as `_allow_access_control.keyword`.

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
use elasticsearch::indices::{
    IndicesCreateParts, IndicesExistsParts, IndicesGetMappingParts, IndicesRefreshParts,
};
use elasticsearch::{
    BulkParts, CountParts, Elasticsearch, MgetParts, OpenPointInTimeParts, SearchParts,
};
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::{IndexRef, SearchHit, SearchRequest, SearchResults, Sink, SinkDocument};

/// Field naming the connector that wrote a document.
pub const CONNECTOR_FIELD: &str = "_tributary_connector";
/// Field naming the tenant whose connector wrote a document.
pub const TENANT_FIELD: &str = "_tributary_tenant";
/// Field holding the version marker.
pub const VERSION_FIELD: &str = "_tributary_version";
/// Elastic's document-level security field: the identities that may see a document.
pub const ACL_FIELD: &str = "_allow_access_control";
/// Prefix of access-control indexes (Elastic's name).
const ACL_PREFIX: &str = ".search-acl-filter-";
/// The default [`ElasticsearchConfig::index_pattern`].
pub const DEFAULT_INDEX_PATTERN: &str = "tributary-{tenant}-{index}";
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
    /// The Elasticsearch index a tenant's index is written to: `{tenant}` and `{index}` are
    /// replaced by their names (default [`DEFAULT_INDEX_PATTERN`]). See [`IndexPattern`].
    pub index_pattern: String,
    /// Allows an `index_pattern` without `{tenant}`: one tenant per cluster (or per pattern),
    /// e.g. `index_pattern = "{index}"` to keep writing the indexes Elastic's service wrote.
    pub single_tenant: bool,
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
            index_pattern: DEFAULT_INDEX_PATTERN.into(),
            single_tenant: false,
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

/// How a tenant's index name becomes an Elasticsearch index name (`[elasticsearch]
/// index_pattern`), applied in this one place for every request the sink sends.
///
/// The pattern holds `{index}` once and `{tenant}` once (`{tenant}` may be left out only with
/// `single_tenant = true`); nothing else in braces. A rendered name must be one Elasticsearch
/// accepts — lowercase, none of `\ / * ? " < > | , # :` or spaces, not starting with `-`, `_`
/// or `+`, not `.`/`..`, at most 255 bytes — or the request fails naming the tenant, the index
/// and the reason before anything is sent. The access-control index of an index is
/// `.search-acl-filter-` + its rendered name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexPattern {
    pattern: String,
}

impl IndexPattern {
    /// Checks `pattern` (see the type's documentation).
    pub fn parse(pattern: &str, single_tenant: bool) -> anyhow::Result<Self> {
        let count = |p: &str| pattern.matches(p).count();
        let why = if count("{index}") != 1 {
            Some("must contain `{index}` exactly once")
        } else if count("{tenant}") > 1 {
            Some("may contain `{tenant}` only once")
        } else if count("{tenant}") == 0 && !single_tenant {
            Some(
                "must contain `{tenant}` so tenants never share an index (set `single_tenant = true` to allow one tenant only)",
            )
        } else if pattern
            .replace("{index}", "")
            .replace("{tenant}", "")
            .contains(['{', '}'])
        {
            Some("knows only the placeholders `{tenant}` and `{index}`")
        } else {
            None
        };
        if let Some(why) = why {
            bail!("elasticsearch `index_pattern` `{pattern}` {why}");
        }
        let this = Self {
            pattern: pattern.to_string(),
        };
        // The fixed parts must be valid too (`Tributary-…`, `_x{index}`): say so now.
        let sample = this.render("t", "i");
        if let Err(why) = check_index_name(&sample) {
            bail!("elasticsearch `index_pattern` `{pattern}` makes invalid index names: {why}");
        }
        Ok(this)
    }

    /// Whether names carry the tenant (so an index of another tenant is a collision).
    fn has_tenant(&self) -> bool {
        self.pattern.contains("{tenant}")
    }

    fn render(&self, tenant: &str, index: &str) -> String {
        // One pass, so a name containing `{index}` is never substituted again.
        let mut out = String::new();
        let mut rest = self.pattern.as_str();
        while let Some(at) = rest.find('{') {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            if let Some(after) = tail.strip_prefix("{index}") {
                out.push_str(index);
                rest = after;
            } else if let Some(after) = tail.strip_prefix("{tenant}") {
                out.push_str(tenant);
                rest = after;
            } else {
                out.push('{');
                rest = &tail[1..];
            }
        }
        out.push_str(rest);
        out
    }

    /// The Elasticsearch index holding `index`, or why there can be none.
    pub fn resolve(&self, index: &IndexRef) -> anyhow::Result<String> {
        let name = match index.name.strip_prefix(ACL_PREFIX) {
            Some(content) => format!("{ACL_PREFIX}{}", self.render(&index.tenant, content)),
            None => self.render(&index.tenant, &index.name),
        };
        check_index_name(&name).map_err(|why| {
            anyhow!(
                "index `{}` of tenant `{}` would be the Elasticsearch index `{name}`, which Elasticsearch refuses: {why}",
                index.name,
                index.tenant
            )
        })?;
        Ok(name)
    }
}

/// Elasticsearch's rules for index names.
fn check_index_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name == "." || name == ".." {
        return Err("it must not be `.` or `..`".into());
    }
    if name.len() > 255 {
        return Err(format!("it is {} bytes long, more than 255", name.len()));
    }
    if name.starts_with(['-', '_', '+']) {
        return Err("it must not start with `-`, `_` or `+`".into());
    }
    if name.chars().any(char::is_uppercase) {
        return Err("it must be lowercase".into());
    }
    if let Some(c) = name.chars().find(|c| {
        matches!(
            c,
            '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ',' | '#' | ':' | ' '
        )
    }) {
        return Err(format!("it must not contain `{c}`"));
    }
    Ok(())
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
    pattern: IndexPattern,
    slots: Arc<Semaphore>,
    ensured: tokio::sync::Mutex<HashSet<String>>,
    in_flight: Mutex<HashMap<String, Vec<InFlight>>>,
    stats: Arc<SinkStats>,
}

impl ElasticsearchSink {
    /// A sink writing to the cluster `config` names (no request is sent yet).
    pub fn new(config: &ElasticsearchConfig) -> anyhow::Result<Self> {
        let client = config.client()?;
        let pattern = IndexPattern::parse(&config.index_pattern, config.single_tenant)?;
        let mut config = config.clone();
        config.bulk_max_docs = config.bulk_max_docs.clamp(1, 100_000);
        config.bulk_max_bytes = config.bulk_max_bytes.clamp(1024, 100 * 1024 * 1024);
        config.bulk_concurrency = config.bulk_concurrency.clamp(1, 64);
        Ok(Self {
            client,
            pattern,
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

    /// The Elasticsearch index holding `index` (see [`IndexPattern`]).
    pub fn index_name(&self, index: &IndexRef) -> anyhow::Result<String> {
        self.pattern.resolve(index)
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

    /// Creates `name` (the Elasticsearch index of `index`) with tributary's mappings unless it
    /// exists; an existing index recording another tenant's index as its owner is refused.
    async fn ensure_index(&self, name: &str, index: &IndexRef) -> anyhow::Result<()> {
        let mut ensured = self.ensured.lock().await;
        if ensured.contains(name) {
            return Ok(());
        }
        let exists = self
            .client
            .indices()
            .exists(IndicesExistsParts::Index(&[name]))
            .send()
            .await
            .map_err(|e| anyhow!("checking whether index `{name}` exists: {e}"))?;
        match exists.status_code() {
            StatusCode::OK if self.pattern.has_tenant() => self.check_owner(name, index).await?,
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                let response = self
                    .client
                    .indices()
                    .create(IndicesCreateParts::Index(name))
                    .body(index_definition(name, index))
                    .send()
                    .await
                    .map_err(|e| anyhow!("creating index `{name}`: {e}"))?;
                let status = response.status_code();
                if !status.is_success() {
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    // Another writer created it meanwhile: fine if it is ours.
                    if error_type(&body) != Some("resource_already_exists_exception") {
                        bail!(
                            "creating index `{name}`: HTTP {}: {}",
                            status.as_u16(),
                            error_reason(&body)
                        );
                    }
                    if self.pattern.has_tenant() {
                        self.check_owner(name, index).await?;
                    }
                }
                tracing::info!(index = %name, "created Elasticsearch index");
            }
            other => bail!(
                "checking whether index `{name}` exists: HTTP {}",
                other.as_u16()
            ),
        }
        ensured.insert(name.to_string());
        Ok(())
    }

    /// Fails when `name` records (in `_meta.tributary`) an owner other than `index`. Indexes
    /// without the record (made by Kibana or by hand) are accepted.
    async fn check_owner(&self, name: &str, index: &IndexRef) -> anyhow::Result<()> {
        let response = self
            .client
            .indices()
            .get_mapping(IndicesGetMappingParts::Index(&[name]))
            .send()
            .await
            .map_err(|e| anyhow!("reading the mappings of `{name}`: {e}"))?;
        let body = read_json(response, &format!("reading the mappings of `{name}`")).await?;
        let Some(owner) = body.pointer(&format!(
            "/{}/mappings/_meta/tributary",
            pointer_escape(name)
        )) else {
            return Ok(());
        };
        let owner_tenant = owner.get("tenant").and_then(Value::as_str).unwrap_or("");
        let owner_index = owner.get("index").and_then(Value::as_str).unwrap_or("");
        if owner_tenant != index.tenant || owner_index != index.name {
            bail!(
                "Elasticsearch index `{name}` holds index `{owner_index}` of tenant `{owner_tenant}`, not `{}` of tenant `{}`: change `index_pattern` so names cannot collide",
                index.name,
                index.tenant
            );
        }
        Ok(())
    }

    fn index_op(tenant: &str, doc: &SinkDocument) -> anyhow::Result<(Op, usize)> {
        let mut source = doc.fields.clone();
        if let Some(body) = &doc.body {
            source.insert(BODY_FIELD.into(), Value::String(body.clone()));
        }
        source.insert(CONNECTOR_FIELD.into(), Value::String(doc.connector.clone()));
        source.insert(TENANT_FIELD.into(), Value::String(tenant.to_string()));
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

    /// Deletes `id` only while it is still the copy read at `seq_no`/`primary_term`.
    fn delete_op(id: &str, seq_no: u64, primary_term: u64) -> anyhow::Result<Op> {
        let action =
            json!({"delete": {"_id": id, "if_seq_no": seq_no, "if_primary_term": primary_term}});
        Ok(Op {
            id: id.to_string(),
            action: Bytes::from(serde_json::to_vec(&action)?),
            source: None,
        })
    }

    /// Deletes those of `ids` in `name` that belong to `connector` of `index.tenant` (or to
    /// no tributary connector), leaving other connectors' documents alone.
    async fn delete_owned(
        &self,
        name: &str,
        index: &IndexRef,
        connector: &str,
        ids: Vec<String>,
    ) -> anyhow::Result<()> {
        // Our writes of these ids still in flight land first, so the owner read below is current.
        self.settle(name, &ids).await?;
        let mut ops = Vec::new();
        let fields = [CONNECTOR_FIELD, TENANT_FIELD];
        for chunk in ids.chunks(SCAN_PAGE) {
            let response = self
                .client
                .mget(MgetParts::Index(name))
                ._source_includes(&fields)
                .body(json!({ "ids": chunk }))
                .send()
                .await
                .map_err(|e| anyhow!("reading documents of `{name}` to delete: {e}"))?;
            if response.status_code() == StatusCode::NOT_FOUND {
                return Ok(()); // nothing indexed yet
            }
            let body = read_json(
                response,
                &format!("reading documents of `{name}` to delete"),
            )
            .await?;
            for doc in body
                .get("docs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (Some(id), Some(seq_no), Some(term)) = (
                    doc.get("_id").and_then(Value::as_str),
                    doc.get("_seq_no").and_then(Value::as_u64),
                    doc.get("_primary_term").and_then(Value::as_u64),
                ) else {
                    continue; // not found
                };
                let source = doc.get("_source").unwrap_or(&Value::Null);
                if owns(source, &index.tenant, connector) {
                    ops.push(Self::delete_op(id, seq_no, term)?);
                }
            }
        }
        if ops.is_empty() {
            return Ok(());
        }
        self.submit(name, index, ops).await
    }

    /// Cuts `ops` into bounded bulk requests and sends them, waiting for a free slot (and for
    /// in-flight writes of the same ids) before each.
    async fn submit(&self, index: &str, owner: &IndexRef, ops: Vec<Op>) -> anyhow::Result<()> {
        self.ensure_index(index, owner).await?;
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

    /// Waits for the bulk requests in flight for `index` that write one of `ids`.
    async fn settle(&self, index: &str, ids: &[String]) -> anyhow::Result<()> {
        let handles: Vec<JoinHandle<anyhow::Result<()>>> = {
            let mut map = self
                .in_flight
                .lock()
                .map_err(|_| anyhow!("sink lock poisoned"))?;
            let Some(list) = map.get_mut(index) else {
                return Ok(());
            };
            let (wait, keep): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(list)
                .into_iter()
                .partition(|f| f.handle.is_finished() || ids.iter().any(|id| f.ids.contains(id)));
            *list = keep;
            wait.into_iter().map(|f| f.handle).collect()
        };
        join_all(handles).await
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
        tenant: &str,
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
                    "query": owned_by(tenant, connector),
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
        tenant: &str,
        request: &SearchRequest,
    ) -> anyhow::Result<SearchResults> {
        let mut filter = vec![match &request.connector {
            Some(connector) => owned_by(tenant, connector),
            None => of_tenant(tenant),
        }];
        if let Some(identities) = &request.identities {
            filter.push(json!({"terms": {format!("{ACL_FIELD}.keyword"): identities}}));
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
        tenant: &str,
        connector: &str,
        ids: &[String],
    ) -> anyhow::Result<Vec<SinkDocument>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(SCAN_PAGE) {
            let body = json!({
                "size": chunk.len(),
                "query": {"bool": {"filter": [{"ids": {"values": chunk}}, owned_by(tenant, connector)]}},
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

/// Documents of `tenant`'s `connector`, and documents no tributary connector wrote (Elastic's
/// service). A document of the connector without a tenant field predates the field.
fn owned_by(tenant: &str, connector: &str) -> Value {
    json!({"bool": {
        "should": [
            {"bool": {"filter": [{"term": {CONNECTOR_FIELD: connector}}, of_tenant(tenant)]}},
            {"bool": {"must_not": [{"exists": {"field": CONNECTOR_FIELD}}]}},
        ],
        "minimum_should_match": 1,
    }})
}

/// Documents of `tenant` (and those written before documents named their tenant).
fn of_tenant(tenant: &str) -> Value {
    json!({"bool": {
        "should": [
            {"term": {TENANT_FIELD: tenant}},
            {"bool": {"must_not": [{"exists": {"field": TENANT_FIELD}}]}},
        ],
        "minimum_should_match": 1,
    }})
}

/// [`owned_by`] for one `_source` read back.
fn owns(source: &Value, tenant: &str, connector: &str) -> bool {
    match source.get(CONNECTOR_FIELD) {
        None | Some(Value::Null) => true,
        Some(c) => {
            c.as_str() == Some(connector)
                && match source.get(TENANT_FIELD) {
                    None | Some(Value::Null) => true,
                    Some(t) => t.as_str() == Some(tenant),
                }
        }
    }
}

/// `name` as one JSON pointer segment.
fn pointer_escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
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
    fields.remove(TENANT_FIELD);
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

/// Settings and mappings of the index `name` the sink creates for `owner`.
pub fn index_definition(name: &str, owner: &IndexRef) -> Value {
    let keyword = json!({"type": "keyword"});
    let text_with_keyword =
        json!({"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}});
    let mut properties = json!({
        CONNECTOR_FIELD: keyword,
        TENANT_FIELD: keyword,
        VERSION_FIELD: keyword,
        "id": keyword,
        // What Elastic's dynamic mapping makes of it, and what its query template queries
        // (`.keyword`). As there, an identity over 256 characters is not indexed: it grants
        // nothing.
        ACL_FIELD: text_with_keyword,
        // Plugins' version markers are usually, not always, timestamps: keep the others.
        "_timestamp": {"type": "date", "ignore_malformed": true},
    });
    if name.starts_with(ACL_PREFIX) {
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
    json!({"mappings": {
        "_meta": {"tributary": {"tenant": owner.tenant, "index": owner.name}},
        "properties": properties,
    }})
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
                            // Rewritten since its owner was read (by another connector, say):
                            // no longer the copy this delete was for.
                            409 if kind == "delete" => {}
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
            let name = self.index_name(&index)?;
            let mut ops = Vec::with_capacity(docs.len());
            for doc in &docs {
                ops.push(Self::index_op(&index.tenant, doc)?.0);
            }
            self.submit(&name, &index, ops).await
        })
    }

    fn delete(
        &self,
        index: IndexRef,
        connector: String,
        ids: Vec<String>,
    ) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let name = self.index_name(&index)?;
            self.delete_owned(&name, &index, &connector, ids).await
        })
    }

    fn commit(&self, index: IndexRef) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let name = self.index_name(&index)?;
            self.drain(&name).await?;
            let response = self
                .client
                .indices()
                .refresh(IndicesRefreshParts::Index(&[&name]))
                .ignore_unavailable(true)
                .send()
                .await
                .map_err(|e| anyhow!("refreshing `{name}`: {e}"))?;
            read_json(response, &format!("refreshing `{name}`")).await?;
            Ok(())
        })
    }

    fn versions(
        &self,
        index: IndexRef,
        connector: String,
    ) -> BoxFuture<'_, anyhow::Result<HashMap<String, Option<String>>>> {
        Box::pin(async move {
            let name = self.index_name(&index)?;
            self.versions_of(&name, &index.tenant, &connector).await
        })
    }

    fn search(
        &self,
        index: IndexRef,
        request: SearchRequest,
    ) -> BoxFuture<'_, anyhow::Result<SearchResults>> {
        Box::pin(async move {
            let name = self.index_name(&index)?;
            self.search_index(&name, &index.tenant, &request).await
        })
    }

    fn get(
        &self,
        index: IndexRef,
        connector: String,
        ids: Vec<String>,
    ) -> BoxFuture<'_, anyhow::Result<Vec<SinkDocument>>> {
        Box::pin(async move {
            let name = self.index_name(&index)?;
            self.get_docs(&name, &index.tenant, &connector, &ids).await
        })
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
