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

mod config;
mod dsl;
mod index_name;
mod operations;
mod request_builder;
mod retry;
mod service;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use anyhow::anyhow;
use elasticsearch::Elasticsearch;
use elasticsearch::indices::IndicesRefreshParts;
use futures::future::BoxFuture;
use tokio::sync::Semaphore;

pub use config::ElasticsearchConfig;
pub use index_name::IndexPattern;
pub use request_builder::index_definition;
use service::InFlight;
pub use service::{raw, read_json};

use super::{IndexRef, SearchRequest, SearchResults, Sink, SinkDocument, Versions};

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
    ) -> BoxFuture<'_, anyhow::Result<Versions>> {
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

    fn indexes(&self, tenant: String) -> BoxFuture<'_, anyhow::Result<Vec<String>>> {
        Box::pin(async move { self.indexes_of(&tenant).await })
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

    fn drop_tenant(&self, tenant: String) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move { self.drop_indexes_of(&tenant).await })
    }

    fn tenants(&self) -> BoxFuture<'_, anyhow::Result<Vec<String>>> {
        Box::pin(async move { self.owners().await })
    }
}
