//! What a tenant's quotas mean for one of its jobs: sandbox limits, storage limits and the
//! document-quota sink, each within the host's own limits.

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
        let connectors = self
            .store
            .connectors(&spec.tenant)
            .await?
            .iter()
            .map(|c| {
                (
                    IndexRef::new(c.tenant.clone(), c.index_name()),
                    c.id.clone(),
                )
            })
            .collect();
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
