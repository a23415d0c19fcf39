//! Where documents end up: the [`Sink`] trait and its backends, one file each.
//!
//! The embedded index ([`embedded::EmbeddedIndex`], tantivy under the data directory) is the
//! default and needs no set-up. Elasticsearch ([`elasticsearch::ElasticsearchSink`]) implements
//! the same trait. The sink is also the
//! source of truth for what is indexed: a full sync asks it for the ids and versions it holds, so
//! unchanged documents are skipped and vanished ones deleted, whatever the backend.
//! [`quota::QuotaSink`] wraps a sink to enforce a tenant's document quota (`tributary serve`).
//!
//! Reads never create anything: `search`, `get` and `versions` of an index that does not exist
//! answer empty, and [`Sink::indexes`] says which indexes of a tenant exist, so a search of an
//! unknown name is refused ([`UnknownIndex`]) instead of leaving an empty index behind.

use std::collections::HashMap;

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{Map, Value};

mod backlog;
pub mod elasticsearch;
pub mod embedded;
pub mod quota;

/// Names of access-control indexes start with this (as Elastic names them).
const ACL_INDEX_PREFIX: &str = ".search-acl-filter-";

/// An index of a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct IndexRef {
    /// Tenant id.
    pub tenant: String,
    /// Index name.
    pub name: String,
}

impl IndexRef {
    /// `name` of `tenant`.
    pub fn new(tenant: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            name: name.into(),
        }
    }

    /// The access-control index paired with this one (`.search-acl-filter-<name>`, as Elastic).
    pub fn acl(&self) -> Self {
        Self::new(
            self.tenant.clone(),
            format!("{ACL_INDEX_PREFIX}{}", self.name),
        )
    }

    /// Whether this is an access-control index (see [`IndexRef::acl`]).
    pub fn is_acl(&self) -> bool {
        self.name.starts_with(ACL_INDEX_PREFIX)
    }
}

impl std::fmt::Display for IndexRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.tenant, self.name)
    }
}

/// A search named an index the tenant does not have; the host returns this (found by type:
/// `tributary serve` answers 404, the CLI exits non-zero) instead of creating the index.
#[derive(Debug)]
pub struct UnknownIndex {
    /// The index asked for.
    pub index: IndexRef,
    /// The tenant's indexes that exist, sorted.
    pub existing: Vec<String>,
}

impl std::fmt::Display for UnknownIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = crate::text::truncate(&self.index.name, 100);
        if self.existing.is_empty() {
            write!(
                f,
                "no index `{name}`: tenant `{}` has no indexes yet",
                self.index.tenant
            )
        } else {
            write!(
                f,
                "no index `{name}`; the indexes of tenant `{}` are: {}",
                self.index.tenant,
                self.existing.join(", ")
            )
        }
    }
}

impl std::error::Error for UnknownIndex {}

/// A document as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SinkDocument {
    /// Id within the connector.
    pub id: String,
    /// The connector that produced it.
    pub connector: String,
    /// Version marker used to skip unchanged documents; `None` forces a refresh next time.
    pub version: Option<String>,
    /// Fields (a JSON object).
    pub fields: Map<String, Value>,
    /// Extracted or supplied text content.
    pub body: Option<String>,
}

/// A search.
#[derive(Clone, Debug, Default)]
pub struct SearchRequest {
    /// Query text (terms, "phrases", field:value, AND/OR/NOT).
    pub query: String,
    /// Most hits returned.
    pub limit: usize,
    /// Only documents of this connector.
    pub connector: Option<String>,
    /// Document-level security: only documents whose `_allow_access_control` holds one of these.
    pub identities: Option<Vec<String>>,
}

/// One hit.
#[derive(Clone, Debug, Serialize)]
pub struct SearchHit {
    /// Document id.
    pub id: String,
    /// Producing connector.
    pub connector: String,
    /// Relevance.
    pub score: f32,
    /// `title` or `name` field.
    pub title: Option<String>,
    /// A highlighted extract of the body (matches in `<b>`).
    pub snippet: Option<String>,
    /// Stored fields.
    pub fields: Map<String, Value>,
}

/// Search results.
#[derive(Clone, Debug, Serialize)]
pub struct SearchResults {
    /// Matching documents in all.
    pub total: usize,
    /// The best `limit` of them.
    pub hits: Vec<SearchHit>,
}

/// A document store.
pub trait Sink: Send + Sync + 'static {
    /// Backend name for logs ("embedded", "elasticsearch").
    fn kind(&self) -> &'static str;
    /// Adds or replaces documents (visible after [`Sink::commit`]).
    fn upsert(&self, index: IndexRef, docs: Vec<SinkDocument>)
    -> BoxFuture<'_, anyhow::Result<()>>;
    /// Removes documents of `connector` by id.
    fn delete(
        &self,
        index: IndexRef,
        connector: String,
        ids: Vec<String>,
    ) -> BoxFuture<'_, anyhow::Result<()>>;
    /// Makes writes durable and visible.
    fn commit(&self, index: IndexRef) -> BoxFuture<'_, anyhow::Result<()>>;
    /// Ids of `connector` in `index` and their versions.
    fn versions(
        &self,
        index: IndexRef,
        connector: String,
    ) -> BoxFuture<'_, anyhow::Result<HashMap<String, Option<String>>>>;
    /// Full-text search.
    fn search(
        &self,
        index: IndexRef,
        request: SearchRequest,
    ) -> BoxFuture<'_, anyhow::Result<SearchResults>>;
    /// The names of `tenant`'s indexes that exist (access-control indexes excluded), sorted.
    fn indexes(&self, tenant: String) -> BoxFuture<'_, anyhow::Result<Vec<String>>>;
    /// Fetches documents by id (ACL lookups, tests, admin).
    fn get(
        &self,
        index: IndexRef,
        connector: String,
        ids: Vec<String>,
    ) -> BoxFuture<'_, anyhow::Result<Vec<SinkDocument>>>;
}
