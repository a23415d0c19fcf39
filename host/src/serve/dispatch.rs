//! The job lifecycle: queue → dispatcher (global and per-tenant concurrency, fairness between
//! tenants, one job per connector at a time) → a job in its own wasm store with its tenant's
//! limits → recorded report; cancelling and the live view of running jobs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Running, Service, lock, store};
use crate::SyncOptions;
use crate::clock::unix_now;
use crate::connector::ConnectorSpec;
use crate::job::SyncKind;
use crate::job::{Counters, CountsSnapshot};
use crate::job::{JobReport, JobStatus};
use crate::plugin::LoadedPlugin;

/// What queueing a sync did.
#[derive(Debug)]
pub enum Enqueued {
    /// A new job, queued.
    New(JobReport),
    /// The connector already had a job of that kind waiting; this is it (nothing new queued).
    Merged(JobReport),
    /// The tenant's queue is full (this many jobs waiting).
    Full(usize),
}

impl Enqueued {
    /// The job record, new or merged into; `None` when the queue was full.
    pub fn into_report(self) -> Option<JobReport> {
        match self {
            Enqueued::New(r) | Enqueued::Merged(r) => Some(r),
            Enqueued::Full(_) => None,
        }
    }
}

impl Service {
    /// Queues a sync of a connector. A connector and kind that already has a job waiting in
    /// the queue gets that job back ([`Enqueued::Merged`]) instead of a second one, as the
    /// scheduler does; a tenant with `max_queued_per_tenant` jobs waiting gets
    /// [`Enqueued::Full`].
    pub async fn enqueue(
        &self,
        spec: &ConnectorSpec,
        kind: SyncKind,
        reason: store::QueueReason,
    ) -> anyhow::Result<Enqueued> {
        let _serial = self.enqueuing.lock().await;
        let (existing, queued) = self.store.queued_for(&spec.tenant, &spec.id, kind).await?;
        if let Some(id) = existing
            && let Some(report) = self.job(&spec.tenant, &id).await?
        {
            return Ok(Enqueued::Merged(report));
        }
        let cap = self.config.max_queued_per_tenant.max(1) as usize;
        if queued >= cap {
            return Ok(Enqueued::Full(cap));
        }
        let report = JobReport {
            id: crate::job::new_job_id(),
            tenant: spec.tenant.clone(),
            connector: spec.id.clone(),
            kind,
            plugin: spec.plugin.clone(),
            plugin_version: String::new(),
            status: JobStatus::Queued,
            counts: CountsSnapshot::default(),
            error: None,
            warnings: Vec::new(),
            started_at: unix_now(),
            finished_at: None,
            duration_ms: 0,
        };
        // The record first: a job id handed out is always visible.
        self.host.jobs().save(&report).await?;
        self.store
            .enqueue(&report.id, &spec.tenant, &spec.id, kind, reason)
            .await?;
        self.wake.notify_one();
        Ok(Enqueued::New(report))
    }

    /// Cancels every job of a connector about to be deleted or moved: queued ones at once,
    /// running ones asked to stop and then waited for (up to `wait`; a job still running after
    /// that is aborted and recorded as cancelled). When this returns, no job of the connector
    /// holds a slot.
    pub async fn cancel_connector_jobs(
        &self,
        tenant: &str,
        connector: &str,
        wait: Duration,
    ) -> anyhow::Result<()> {
        for job in self.store.queue().await? {
            if job.tenant == tenant
                && job.connector == connector
                && job.state == store::QueueState::Queued
            {
                self.cancel(tenant, &job.job_id).await?;
            }
        }
        let mine = |r: &Running| r.tenant == tenant && r.connector == connector;
        let ids: Vec<String> = lock(&self.running)
            .iter()
            .filter(|(_, r)| mine(r))
            .map(|(id, r)| {
                r.cancel.store(true, Ordering::Relaxed);
                id.clone()
            })
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < deadline
            && ids.iter().any(|id| lock(&self.running).contains_key(id))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for id in ids {
            let Some(r) = lock(&self.running).remove(&id) else {
                continue;
            };
            if let Some(abort) = r.abort {
                abort.abort();
            }
            self.store.dequeue(&id).await?;
            if let Some(mut report) = self.host.jobs().get(tenant, &id).await? {
                report.status = JobStatus::Cancelled;
                report.finished_at = Some(unix_now());
                report.error = Some(crate::job::JobError::new(
                    crate::job::JobErrorKind::Cancelled,
                    "stopped: its connector was deleted or moved to another index",
                ));
                self.host.jobs().save(&report).await?;
            }
            tracing::warn!(job = %id, %tenant, %connector, "job did not stop when asked; aborted");
        }
        self.wake.notify_one();
        Ok(())
    }

    /// A job's record, with live counts while it runs.
    pub async fn job(&self, tenant: &str, id: &str) -> anyhow::Result<Option<JobReport>> {
        let Some(mut report) = self.host.jobs().get(tenant, id).await? else {
            return Ok(None);
        };
        self.overlay(&mut report);
        Ok(Some(report))
    }

    /// Marks a queued or stored job as running with its live counters if it holds a slot.
    pub fn overlay(&self, report: &mut JobReport) {
        let running = lock(&self.running);
        if let Some(r) = running.get(&report.id) {
            report.status = JobStatus::Running;
            if let Some(c) = lock(&r.counters).as_ref() {
                report.counts = c.snapshot();
            }
            let version = lock(&r.plugin_version).clone();
            if !version.is_empty() {
                report.plugin_version = version;
            }
        }
    }

    /// Cancels a queued job at once, or asks a running one to stop at its next index call.
    /// `None` if the tenant has no such job; otherwise the resulting status.
    pub async fn cancel(&self, tenant: &str, id: &str) -> anyhow::Result<Option<JobStatus>> {
        let Some(mut report) = self.host.jobs().get(tenant, id).await? else {
            return Ok(None);
        };
        if let Some(r) = lock(&self.running).get(id) {
            r.cancel.store(true, Ordering::Relaxed);
            return Ok(Some(JobStatus::Running));
        }
        if self.store.dequeue_if_queued(id).await? {
            report.status = JobStatus::Cancelled;
            report.finished_at = Some(unix_now());
            report.error = Some(crate::job::JobError::new(
                crate::job::JobErrorKind::Cancelled,
                "cancelled before it started",
            ));
            self.host.jobs().save(&report).await?;
            self.metrics.job_finished(&report);
            return Ok(Some(JobStatus::Cancelled));
        }
        Ok(Some(report.status))
    }

    /// `(running, queued)` jobs of a tenant (all tenants with `None`).
    pub async fn load(&self, tenant: Option<&str>) -> anyhow::Result<(usize, usize)> {
        let queue = self.store.queue().await?;
        let running = lock(&self.running)
            .values()
            .filter(|r| tenant.is_none_or(|t| t == r.tenant))
            .count();
        let queued = queue
            .iter()
            .filter(|q| {
                q.state == store::QueueState::Queued && tenant.is_none_or(|t| t == q.tenant)
            })
            .count();
        Ok((running, queued))
    }

    pub(super) async fn dispatch_loop(self: Arc<Self>) {
        let mut stop = self.shutdown.subscribe();
        let tick = Duration::from_millis(self.config.tick_ms.max(10));
        loop {
            if self.stopping() {
                return;
            }
            if let Err(err) = self.dispatch().await {
                tracing::error!("dispatching jobs failed: {err:#}");
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(tick) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Starts queued jobs while there are free slots. Among the jobs that may start (their
    /// connector idle, their tenant under its own limit), the tenant running the fewest jobs goes
    /// first, then queue order — so a tenant with a thousand queued jobs cannot starve one with
    /// a single job.
    async fn dispatch(self: &Arc<Self>) -> anyhow::Result<()> {
        let queue = self.store.queue().await?;
        let mut started: HashSet<String> = HashSet::new();
        let mut caps: HashMap<String, u32> = HashMap::new();
        loop {
            let (per_tenant, busy, total) = {
                let running = lock(&self.running);
                let mut per_tenant: HashMap<String, u32> = HashMap::new();
                let mut busy = HashSet::new();
                for r in running.values() {
                    *per_tenant.entry(r.tenant.clone()).or_default() += 1;
                    busy.insert((r.tenant.clone(), r.connector.clone()));
                }
                (per_tenant, busy, running.len())
            };
            if total >= self.config.max_concurrent_syncs.max(1) as usize {
                return Ok(());
            }
            let mut best: Option<(u32, i64, &store::QueuedJob)> = None;
            for job in queue
                .iter()
                .filter(|j| j.state == store::QueueState::Queued)
            {
                if started.contains(&job.job_id)
                    || busy.contains(&(job.tenant.clone(), job.connector.clone()))
                {
                    continue;
                }
                let cap = match caps.get(&job.tenant) {
                    Some(c) => *c,
                    None => {
                        let q = self.quotas(&job.tenant).await?;
                        let c = q.max_concurrent_syncs.unwrap_or(u32::MAX).max(1);
                        caps.insert(job.tenant.clone(), c);
                        c
                    }
                };
                let now = per_tenant.get(&job.tenant).copied().unwrap_or(0);
                if now >= cap {
                    continue;
                }
                if best.is_none_or(|(n, seq, _)| (now, job.seq) < (n, seq)) {
                    best = Some((now, job.seq, job));
                }
            }
            let Some((_, _, job)) = best else {
                return Ok(());
            };
            started.insert(job.job_id.clone());
            self.launch(job.clone()).await?;
        }
    }

    async fn launch(self: &Arc<Self>, job: store::QueuedJob) -> anyhow::Result<()> {
        if self.stopping() {
            return Ok(());
        }
        let running = Running {
            tenant: job.tenant.clone(),
            connector: job.connector.clone(),
            kind: job.kind,
            cancel: Arc::default(),
            counters: Arc::default(),
            plugin_version: Arc::default(),
            abort: None,
        };
        let (cancel, counters, version) = (
            running.cancel.clone(),
            running.counters.clone(),
            running.plugin_version.clone(),
        );
        lock(&self.running).insert(job.job_id.clone(), running);
        let marked = match self.store.mark_running(&job.job_id).await {
            Ok(()) => {
                self.host
                    .jobs()
                    .set_status(&job.job_id, JobStatus::Running)
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(err) = marked {
            lock(&self.running).remove(&job.job_id);
            return Err(err);
        }
        let me = self.clone();
        let id = job.job_id.clone();
        let handle = tokio::spawn(async move {
            let outcome = me.run(&job, cancel, counters, version).await;
            if let Err(err) = &outcome {
                tracing::error!(job = %job.job_id, "job could not run: {err:#}");
            }
            // Only a finished job leaves the queue; if the host dies before this line, the
            // job runs again (same id) on the next start.
            if let Err(err) = me.store.dequeue(&job.job_id).await {
                tracing::error!(job = %job.job_id, "removing the job from the queue failed: {err:#}");
            }
            lock(&me.running).remove(&job.job_id);
            me.wake.notify_one();
        });
        if let Some(r) = lock(&self.running).get_mut(&id) {
            r.abort = Some(handle.abort_handle());
        }
        Ok(())
    }

    async fn run(
        &self,
        job: &store::QueuedJob,
        cancel: Arc<AtomicBool>,
        counters: Arc<Mutex<Option<Arc<Counters>>>>,
        version: Arc<Mutex<String>>,
    ) -> anyhow::Result<()> {
        let Some(spec) = self.store.connector(&job.tenant, &job.connector).await? else {
            if let Some(mut report) = self.host.jobs().get(&job.tenant, &job.job_id).await? {
                report.status = JobStatus::Failed;
                report.finished_at = Some(unix_now());
                report.error = Some(crate::job::JobError::new(
                    crate::job::JobErrorKind::Config,
                    format!("connector `{}` was deleted", job.connector),
                ));
                self.host.jobs().save(&report).await?;
            }
            return Ok(());
        };
        let kind = if job.kind == SyncKind::Incremental && !self.has_succeeded_full(&spec).await {
            SyncKind::Full
        } else {
            job.kind
        };
        let quotas = self.quotas(&spec.tenant).await?;
        let options = SyncOptions {
            cancel,
            on_start: Some(Arc::new(move |c: Arc<Counters>| {
                *lock(&counters) = Some(c);
            })),
            sink: self.quota_sink(&spec, &quotas).await?,
            job_id: Some(job.job_id.clone()),
            limits: Some(self.limits(&quotas)),
            storage: Some(self.storage_limits(&spec, &quotas).await?),
            on_plugin: Some(Arc::new(move |p: &LoadedPlugin| {
                *lock(&version) = p.manifest.version.clone();
            })),
            resume: job.attempt > 0,
        };
        let mut report = self.host.sync_spec(&spec, kind, options).await?;
        if job.attempt > 0 {
            report.warnings.insert(
                0,
                format!(
                    "resumed after a host restart (attempt {}); work committed before it was kept",
                    job.attempt + 1
                ),
            );
            self.host.jobs().save(&report).await?;
        }
        if kind != job.kind {
            tracing::info!(job = %report.id, "no full sync has succeeded yet: ran a full sync instead of {}", job.kind);
        }
        self.metrics.job_finished(&report);
        // The service's one line per job (`Host::sync_spec` logs failures at debug only).
        if report.status == JobStatus::Failed {
            tracing::warn!("{report}");
        } else {
            tracing::info!("{report}");
        }
        Ok(())
    }

    async fn has_succeeded_full(&self, spec: &ConnectorSpec) -> bool {
        self.host
            .jobs()
            .has_succeeded(&spec.tenant, &spec.id, SyncKind::Full)
            .await
            .unwrap_or(false)
    }

    /// Live view of running jobs: `(job id, tenant, connector, kind)`.
    pub fn running(&self) -> Vec<(String, String, String, SyncKind)> {
        lock(&self.running)
            .iter()
            .map(|(id, r)| (id.clone(), r.tenant.clone(), r.connector.clone(), r.kind))
            .collect()
    }
}
