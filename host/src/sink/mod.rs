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

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{Map, Value};

mod backlog;
#[cfg(test)]
pub(crate) mod conformance;
pub mod elasticsearch;
pub mod embedded;
pub mod query;
pub mod quota;
mod versions;
mod writers;

pub use query::{Cursor, FacetCount, Filter, InvalidQuery, Order, Sort, UnknownField};
pub use versions::Versions;

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

/// Most hits of one page (more are reached with [`SearchRequest::after`]); below
/// Elasticsearch's default result window (10,000), which the sink's one extra hit must fit in.
pub const MAX_PAGE: usize = 5_000;

/// A search (the language: [`query`]).
#[derive(Clone, Debug, Default)]
pub struct SearchRequest {
    /// Query text (terms, "phrases", field:value, ranges, AND/OR/NOT; `*` for everything).
    pub query: String,
    /// Most hits returned (1..=[`MAX_PAGE`]; page on with `after`).
    pub limit: usize,
    /// Only documents of this connector.
    pub connector: Option<String>,
    /// Document-level security: only documents whose `_allow_access_control` holds one of these
    /// (documents without identities are visible to all). Applied inside the query, so hidden
    /// documents are never counted in totals or facets.
    pub identities: Option<Vec<String>>,
    /// Exact-value filters, all of which must hold.
    pub filters: Vec<Filter>,
    /// Order of hits (default: relevance).
    pub sort: Option<Sort>,
    /// Start after this position (the `next` of the previous page).
    pub after: Option<Cursor>,
    /// Count only: no hits.
    pub count_only: bool,
    /// Fields to count values of among all matches (`_connector` for the connector).
    pub facets: Vec<String>,
    /// Return each hit's extracted text (`body`) too.
    pub with_body: bool,
}

impl SearchRequest {
    /// `query`, best `limit` hits, nothing else.
    pub fn new(query: impl Into<String>, limit: usize) -> Self {
        Self {
            query: query.into(),
            limit,
            ..Default::default()
        }
    }

    /// The page size to use: `limit` within 1..=[`MAX_PAGE`].
    pub fn page_size(&self) -> usize {
        self.limit.clamp(1, MAX_PAGE)
    }

    /// Every field the request names (query, filters, sort, facets), for [`UnknownField`].
    pub fn named_fields(&self, query: &query::Node) -> Vec<String> {
        let mut out: Vec<String> = query.fields().into_iter().map(str::to_string).collect();
        out.extend(self.filters.iter().map(|f| f.field.clone()));
        if let Some(sort) = self.sort.as_ref().filter(|s| !s.is_score()) {
            out.push(sort.field.clone());
        }
        out.extend(self.facets.iter().cloned());
        out.sort();
        out.dedup();
        out
    }
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
    /// Extracted text, when asked for ([`SearchRequest::with_body`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// Search results.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SearchResults {
    /// Matching documents in all (whatever the cursor).
    pub total: usize,
    /// The page: the first `limit` matches after the cursor, in order.
    pub hits: Vec<SearchHit>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
    /// Counts per value of each facet asked for, most frequent first.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub facets: BTreeMap<String, Vec<FacetCount>>,
}

/// Every match of `request` (whatever its `limit` and `after`), page by page in the request's
/// order: the export of an index. Each page is one search, so memory stays bounded by a page.
pub fn pages(
    sink: std::sync::Arc<dyn Sink>,
    index: IndexRef,
    mut request: SearchRequest,
) -> futures::stream::BoxStream<'static, anyhow::Result<Vec<SearchHit>>> {
    use futures::StreamExt;
    request.count_only = false;
    request.facets.clear();
    request.after = None;
    futures::stream::unfold(Some(request), move |state| {
        let (sink, index) = (sink.clone(), index.clone());
        async move {
            let mut request = state?;
            match sink.search(index, request.clone()).await {
                Ok(results) => {
                    let next = results.next.map(|cursor| {
                        request.after = Some(cursor);
                        request
                    });
                    Some((Ok(results.hits), next))
                }
                Err(e) => Some((Err(e), None)),
            }
        }
    })
    .boxed()
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
    ) -> BoxFuture<'_, anyhow::Result<Versions>>;
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
    /// Removes every index of `tenant` (access-control indexes included) with all their
    /// documents; a tenant without indexes is not an error. Nothing of another tenant is touched.
    fn drop_tenant(&self, tenant: String) -> BoxFuture<'_, anyhow::Result<()>>;
    /// The tenants that hold at least one index, sorted (the service checks them against its
    /// tenants at start).
    fn tenants(&self) -> BoxFuture<'_, anyhow::Result<Vec<String>>>;
}
