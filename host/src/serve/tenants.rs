//! What a tenant's quotas mean for one of its jobs: sandbox limits, storage limits and the
//! document-quota sink, each within the host's own limits; and removing what a tenant or a
//! connector owns.
//!
//! Invariants: a connector's documents are deleted wherever they are among its tenant's
//! indexes (scoped to the connector, never another connector's documents sharing an index);
//! a deleted tenant leaves nothing behind — no index, document, plugin state, job, queued job,
//! schedule mark or token — so a tenant created later with the same id starts empty.

use std::sync::Arc;

use anyhow::Context;

use super::{Service, TenantQuotas};
use crate::connector::ConnectorSpec;
use crate::limits::SandboxLimits;
use crate::sink::quota::QuotaSink;
use crate::sink::{IndexRef, Sink};

impl Service {
    /// The tenant's quotas with the service defaults filled in.
    pub async fn quotas(&self, tenant: &str) -> anyhow::Result<TenantQuotas> {
        let own = self
            .store
            .tenant(tenant)
            .await?
            .map(|t| t.quotas)
            .unwrap_or_default();
        Ok(own.over(&self.config.tenant_defaults))
    }

    /// The sandbox limits of a tenant's jobs: its own where set, never above the host's (the
    /// pooling allocator's slots are sized by the host's).
    pub(super) fn limits(&self, q: &TenantQuotas) -> SandboxLimits {
        let host = self.host.runtime().limits();
        SandboxLimits {
            memory_mib: q
                .memory_mib
                .map_or(host.memory_mib, |m| m.min(host.memory_mib)),
            cpu_seconds: q.cpu_seconds.unwrap_or(host.cpu_seconds),
            wall_seconds: q.wall_seconds.unwrap_or(host.wall_seconds),
        }
    }

    /// Storage limits of one connector's job: the host's, and no more than the tenant's storage
    /// quota leaves after its other connectors.
    pub(super) async fn storage_limits(
        &self,
        spec: &ConnectorSpec,
        q: &TenantQuotas,
    ) -> anyhow::Result<crate::kv::StorageLimits> {
        let mut limits = self.host.config().storage.clone();
        if let Some(max) = q.max_storage_bytes {
            let others: u64 = self
                .store
                .storage_usage(&spec.tenant)
                .await?
                .into_iter()
                .filter(|(c, _, _)| *c != spec.id)
                .map(|(_, _, bytes)| bytes)
                .sum();
            limits.max_total_bytes = limits.max_total_bytes.min(max.saturating_sub(others));
        }
        Ok(limits)
    }

    pub(super) async fn quota_sink(
        &self,
        spec: &ConnectorSpec,
        q: &TenantQuotas,
    ) -> anyhow::Result<Option<Arc<dyn Sink>>> {
        let Some(limit) = q.max_documents else {
            return Ok(None);
        };
        // Every connector's documents in every index of the tenant, not only its current
        // one: nothing the tenant holds escapes the count.
        let indexes = self.host.sink().indexes(spec.tenant.clone()).await?;
        let mut connectors = Vec::new();
        for c in self.store.connectors(&spec.tenant).await? {
            let mut names: Vec<String> = indexes.clone();
            names.push(c.index_name().to_string());
            names.sort();
            names.dedup();
            for name in names {
                connectors.push((IndexRef::new(c.tenant.clone(), name), c.id.clone()));
            }
        }
        let sink = QuotaSink::open(
            self.host.sink().clone(),
            connectors,
            IndexRef::new(spec.tenant.clone(), spec.index_name()),
            spec.id.clone(),
            limit,
        )
        .await
        .context("counting the tenant's documents")?;
        Ok(Some(Arc::new(sink)))
    }
}

impl Service {
    /// Deletes the documents `connector` of `tenant` wrote, in `only` or else in every index of
    /// the tenant (access-control indexes included). An index holding none of them is not
    /// touched (a delete never creates an index).
    pub(super) async fn purge_documents(
        &self,
        tenant: &str,
        connector: &str,
        only: Option<&str>,
    ) -> anyhow::Result<u64> {
        let sink = self.host.sink();
        let names = match only {
            Some(name) => vec![name.to_string()],
            None => sink.indexes(tenant.to_string()).await?,
        };
        let mut removed = 0u64;
        for name in names {
            let index = IndexRef::new(tenant, name);
            for target in [index.clone(), index.acl()] {
                let ids: Vec<String> = sink
                    .versions(target.clone(), connector.to_string())
                    .await?
                    .ids()
                    .map(str::to_owned)
                    .collect();
                if ids.is_empty() {
                    continue;
                }
                removed += ids.len() as u64;
                for chunk in ids.chunks(1000) {
                    sink.delete(target.clone(), connector.to_string(), chunk.to_vec())
                        .await?;
                }
                sink.commit(target).await?;
            }
        }
        Ok(removed)
    }

    /// Deletes a connector and everything it owns: its jobs are cancelled (a running one
    /// stopped and waited for), then its record, queued jobs, schedule marks and plugin state
    /// go, then its documents in every index of the tenant. `false` if there is no such
    /// connector.
    pub async fn delete_connector(&self, tenant: &str, connector: &str) -> anyhow::Result<bool> {
        if self.store.connector(tenant, connector).await?.is_none() {
            return Ok(false);
        }
        self.cancel_connector_jobs(tenant, connector, std::time::Duration::from_secs(30))
            .await?;
        self.store.delete_connector(tenant, connector).await?;
        let removed = self.purge_documents(tenant, connector, None).await?;
        tracing::info!(%tenant, %connector, documents = removed, "connector deleted");
        Ok(true)
    }

    /// Replaces `old` by `new`, a connector writing to another index: its jobs are stopped,
    /// the new record stored, its documents in the old index deleted (only this connector's:
    /// another connector sharing the index keeps its own), its plugin state forgotten (a
    /// cursor would make the next sync skip what the new index lacks), and a full sync queued
    /// to fill the new index.
    pub async fn move_connector(
        &self,
        old: &ConnectorSpec,
        new: &ConnectorSpec,
    ) -> anyhow::Result<()> {
        self.cancel_connector_jobs(&old.tenant, &old.id, std::time::Duration::from_secs(30))
            .await?;
        self.store.put_connector(new, None).await?;
        let removed = self
            .purge_documents(&old.tenant, &old.id, Some(old.index_name()))
            .await?;
        self.store.clear_storage(&old.tenant, &old.id).await?;
        tracing::info!(
            tenant = %old.tenant, connector = %old.id, from = %old.index_name(),
            to = %new.index_name(), documents = removed,
            "connector moved to another index; its documents in the old one were deleted"
        );
        if let super::Enqueued::Full(cap) = self
            .enqueue(
                new,
                crate::job::SyncKind::Full,
                super::store::QueueReason::Api,
            )
            .await?
        {
            tracing::warn!(
                tenant = %new.tenant, connector = %new.id,
                "no full sync queued after the index change: the tenant has {cap} jobs queued"
            );
        }
        Ok(())
    }

    /// Deletes a tenant and everything it owns: every connector's jobs are cancelled, then the
    /// records (tenant and token, connectors, queue, schedule marks, plugin state, job records
    /// and their progress) go in one transaction, then its documents and indexes. `false` if
    /// there is no such tenant.
    ///
    /// The records go first, so nothing new starts for the tenant meanwhile; a host that stops
    /// before the indexes are removed finds them at its next start without a tenant and refuses
    /// to start until they are removed (see `Service::open`).
    pub async fn delete_tenant(&self, tenant: &str) -> anyhow::Result<bool> {
        if self.store.tenant(tenant).await?.is_none() {
            return Ok(false);
        }
        let connectors = self.store.connectors(tenant).await?;
        for c in &connectors {
            self.cancel_connector_jobs(tenant, &c.id, std::time::Duration::from_secs(30))
                .await?;
        }
        if !self.store.delete_tenant(tenant).await? {
            return Ok(false);
        }
        // Documents by connector first: with a single-tenant Elasticsearch pattern the indexes
        // themselves stay.
        for c in &connectors {
            self.purge_documents(tenant, &c.id, None).await?;
        }
        self.host
            .sink()
            .drop_tenant(tenant.to_string())
            .await
            .with_context(|| format!("removing the indexes of deleted tenant `{tenant}`"))?;
        tracing::info!(%tenant, connectors = connectors.len(), "tenant deleted with everything it owned");
        Ok(true)
    }
}
