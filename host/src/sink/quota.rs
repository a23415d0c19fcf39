//! A tenant's document quota, enforced as a [`Sink`] wrapper around the real sink for one job.
//!
//! At job start the wrapper counts the tenant's documents (every connector's ids in every
//! index it writes to) and keeps this connector's ids; an upsert that would add more new ids than
//! the quota leaves is refused before anything of it reaches the sink, and the job fails with a
//! `quota` error. Replacing a document that is already indexed costs nothing; deleting frees room.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use crate::sink::{IndexRef, SearchRequest, SearchResults, Sink, SinkDocument, Versions};

/// A tenant's document quota refused a write. The host classifies a job that fails with this
/// error (found by type, never by message text) as a `quota` failure.
#[derive(Debug)]
pub struct QuotaExceeded(pub String);

impl std::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "quota exceeded: {}", self.0)
    }
}

impl std::error::Error for QuotaExceeded {}

struct Count {
    /// This connector's ids in its main index.
    ids: HashSet<String>,
    /// The tenant's documents over all connectors.
    total: u64,
}

/// The quota-checking sink of one job.
pub struct QuotaSink {
    inner: Arc<dyn Sink>,
    main: IndexRef,
    connector: String,
    limit: u64,
    count: Mutex<Count>,
}

impl QuotaSink {
    /// Counts the tenant's documents: `connectors` lists every `(index, connector)` of the
    /// tenant; `main`/`connector` is the one this job writes.
    pub async fn open(
        inner: Arc<dyn Sink>,
        connectors: Vec<(IndexRef, String)>,
        main: IndexRef,
        connector: String,
        limit: u64,
    ) -> anyhow::Result<Self> {
        let mut ids = HashSet::new();
        let mut total = 0u64;
        for (index, id) in connectors {
            let versions = inner.versions(index.clone(), id.clone()).await?;
            total += versions.len() as u64;
            if index == main && id == connector {
                ids = versions.ids().map(str::to_owned).collect();
            }
        }
        Ok(Self {
            inner,
            main,
            connector,
            limit,
            count: Mutex::new(Count { ids, total }),
        })
    }

    /// Documents the tenant holds now (as this job sees them).
    pub fn total(&self) -> u64 {
        self.count.lock().map(|c| c.total).unwrap_or(0)
    }

    fn admit(&self, docs: &[SinkDocument]) -> anyhow::Result<()> {
        let mut count = self
            .count
            .lock()
            .map_err(|_| anyhow::anyhow!("quota counter lock poisoned"))?;
        let mut fresh: Vec<&str> = docs
            .iter()
            .filter(|d| d.connector == self.connector && !count.ids.contains(&d.id))
            .map(|d| d.id.as_str())
            .collect();
        fresh.sort_unstable();
        fresh.dedup();
        let after = count.total + fresh.len() as u64;
        if after > self.limit {
            return Err(QuotaExceeded(format!(
                "tenant `{}` may keep {} documents; it holds {} and this batch adds {} new",
                self.main.tenant,
                self.limit,
                count.total,
                fresh.len()
            ))
            .into());
        }
        for id in fresh {
            count.ids.insert(id.to_string());
        }
        count.total = after;
        Ok(())
    }

    fn release(&self, ids: &[String]) {
        if let Ok(mut count) = self.count.lock() {
            for id in ids {
                if count.ids.remove(id) {
                    count.total = count.total.saturating_sub(1);
                }
            }
        }
    }
}

impl Sink for QuotaSink {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn upsert(
        &self,
        index: IndexRef,
        docs: Vec<SinkDocument>,
    ) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            if index == self.main {
                self.admit(&docs)?;
            }
            self.inner.upsert(index, docs).await
        })
    }

    fn delete(
        &self,
        index: IndexRef,
        connector: String,
        ids: Vec<String>,
    ) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let counts = index == self.main && connector == self.connector;
            let released = counts.then(|| ids.clone());
            self.inner.delete(index, connector, ids).await?;
            if let Some(ids) = released {
                self.release(&ids);
            }
            Ok(())
        })
    }

    fn commit(&self, index: IndexRef) -> BoxFuture<'_, anyhow::Result<()>> {
        self.inner.commit(index)
    }

    fn versions(
        &self,
        index: IndexRef,
        connector: String,
    ) -> BoxFuture<'_, anyhow::Result<Versions>> {
        self.inner.versions(index, connector)
    }

    fn search(
        &self,
        index: IndexRef,
        request: SearchRequest,
    ) -> BoxFuture<'_, anyhow::Result<SearchResults>> {
        self.inner.search(index, request)
    }

    fn indexes(&self, tenant: String) -> BoxFuture<'_, anyhow::Result<Vec<String>>> {
        self.inner.indexes(tenant)
    }

    fn get(
        &self,
        index: IndexRef,
        connector: String,
        ids: Vec<String>,
    ) -> BoxFuture<'_, anyhow::Result<Vec<SinkDocument>>> {
        self.inner.get(index, connector, ids)
    }

    fn drop_tenant(&self, tenant: String) -> BoxFuture<'_, anyhow::Result<()>> {
        self.inner.drop_tenant(tenant)
    }

    fn tenants(&self) -> BoxFuture<'_, anyhow::Result<Vec<String>>> {
        self.inner.tenants()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sink::embedded::EmbeddedIndex;

    fn doc(id: &str, connector: &str) -> SinkDocument {
        SinkDocument {
            id: id.into(),
            connector: connector.into(),
            version: Some("1".into()),
            fields: serde_json::Map::new(),
            body: None,
        }
    }

    #[tokio::test]
    async fn counts_the_whole_tenant_and_refuses_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let inner: Arc<dyn Sink> = Arc::new(EmbeddedIndex::new(dir.path()));
        let a = IndexRef::new("t", "a");
        let b = IndexRef::new("t", "b");
        inner
            .upsert(b.clone(), vec![doc("x", "other"), doc("y", "other")])
            .await
            .unwrap();
        inner
            .upsert(a.clone(), vec![doc("1", "mine")])
            .await
            .unwrap();
        inner.commit(a.clone()).await.unwrap();
        inner.commit(b.clone()).await.unwrap();
        let connectors = vec![(a.clone(), "mine".into()), (b.clone(), "other".into())];
        let q = QuotaSink::open(inner.clone(), connectors, a.clone(), "mine".into(), 5)
            .await
            .unwrap();
        assert_eq!(q.total(), 3);
        // Re-writing an indexed document is free; two new ones fit exactly.
        q.upsert(
            a.clone(),
            vec![doc("1", "mine"), doc("2", "mine"), doc("3", "mine")],
        )
        .await
        .unwrap();
        assert_eq!(q.total(), 5);
        let err = q
            .upsert(a.clone(), vec![doc("4", "mine")])
            .await
            .unwrap_err();
        assert!(err.downcast_ref::<QuotaExceeded>().is_some(), "{err:#}");
        let err = err.to_string();
        assert!(
            err.contains("quota exceeded") && err.contains("may keep 5"),
            "{err}"
        );
        // The refused batch never reached the sink.
        q.commit(a.clone()).await.unwrap();
        let stored = inner.versions(a.clone(), "mine".into()).await.unwrap();
        assert!(!stored.contains("4"));
        // Deleting frees room.
        q.delete(a.clone(), "mine".into(), vec!["2".into()])
            .await
            .unwrap();
        q.upsert(a.clone(), vec![doc("4", "mine")]).await.unwrap();
        assert_eq!(q.total(), 5);
    }
}
