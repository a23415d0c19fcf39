//! `tributary serve`: the long-running, multi-tenant service.
//!
//! What it owns, file by file:
//! - `store.rs` — tenants (hashed API tokens, quotas), connectors, the durable job queue,
//!   schedule marks, uploaded plugin versions, in the host's SQLite database;
//! - `api.rs` — the admin and tenant HTTP API (axum), its authentication, `/metrics`;
//! - `openapi.rs` — the OpenAPI description of that API;
//! - `quota.rs` — the per-tenant document quota, as a sink wrapper;
//! - this file — the job lifecycle: queue → dispatcher (global and per-tenant concurrency,
//!   fairness between tenants, one job per connector at a time) → a job in its own wasm store
//!   with its tenant's limits → recorded report; the scheduler; the plugin-directory watcher.
//!
//! A queued or running job is a row in the `queue` table until its report is saved, so a host
//! that stops (even by SIGKILL) picks it up again on the next start with the same job id. A
//! retried job does not start from scratch: everything the plugin checkpointed is committed, a
//! full sync starts knowing the ids its interrupted run produced (`job_progress`), so a plugin
//! that checkpoints its listing position under the job id continues from there, and an
//! incremental sync continues from its last stored cursor.

pub mod api;
mod metrics;
mod openapi;
pub mod quota;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, watch};

use crate::config::{ConnectorSpec, Timing};
use crate::job::{Counters, CountsSnapshot, SyncKind};
use crate::job::{JobReport, JobStatus};
use crate::limits::SandboxLimits;
use crate::plugin::LoadedPlugin;
use crate::sink::{IndexRef, Sink};
use crate::util::unix_now;
use crate::{Host, SyncOptions};

pub use metrics::{Metrics, resident_bytes};
pub use store::{Store, TenantQuotas};

/// `[service]` in `tributary.toml`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// The admin API token. Without one (here or in `TRIBUTARY_ADMIN_TOKEN`), the service makes
    /// one and writes it to `<data_dir>/admin-token` (mode 0600).
    #[serde(skip_serializing)]
    pub admin_token: Option<String>,
    /// Syncs running at once, over all tenants.
    pub max_concurrent_syncs: u32,
    /// How often the dispatcher and the scheduler look for work when nothing wakes them, ms.
    pub tick_ms: u64,
    /// How often the plugins directory is checked for new or changed `.wasm` files, seconds
    /// (0: never).
    pub plugin_watch_seconds: u64,
    /// Largest plugin upload, MiB.
    pub max_upload_mib: u64,
    /// Quotas of tenants that set none of their own.
    pub tenant_defaults: TenantQuotas,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            admin_token: None,
            max_concurrent_syncs: 8,
            tick_ms: 1000,
            plugin_watch_seconds: 2,
            max_upload_mib: 64,
            tenant_defaults: TenantQuotas {
                max_connectors: Some(100),
                max_concurrent_syncs: Some(2),
                ..TenantQuotas::default()
            },
        }
    }
}

/// A job holding a slot.
struct Running {
    tenant: String,
    connector: String,
    kind: SyncKind,
    cancel: Arc<AtomicBool>,
    counters: Arc<Mutex<Option<Arc<Counters>>>>,
    plugin_version: Arc<Mutex<String>>,
    abort: Option<tokio::task::AbortHandle>,
}

/// A plugin file or upload that was refused, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Rejection {
    /// Where it came from.
    pub source: String,
    /// Why it was refused.
    pub reason: String,
    /// When, Unix seconds.
    pub at: i64,
}

/// The running service.
pub struct Service {
    host: Arc<Host>,
    store: Store,
    config: ServiceConfig,
    admin_hash: String,
    running: Mutex<HashMap<String, Running>>,
    wake: Notify,
    metrics: Metrics,
    rejected: Mutex<Vec<Rejection>>,
    shutdown: watch::Sender<bool>,
    /// The plugins directory as `Host::open` loaded it; the watcher starts from here.
    watched: Mutex<HashMap<PathBuf, (Option<SystemTime>, u64)>>,
}

/// SHA-256 of a token, hex (tokens are stored and compared only as hashes).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh API token: `trb_` and 64 hex digits from the OS random source.
pub fn new_token() -> anyhow::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom for a new token")?;
    Ok(format!("trb_{}", hex::encode(bytes)))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Service {
    /// Opens the service on `host`: imports the configuration file's connectors, restores
    /// uploaded plugin versions and the active choices, and puts jobs that were running when
    /// the host last stopped back in the queue. Call [`Service::start`] to run it.
    pub async fn open(host: Arc<Host>, admin_token: Option<String>) -> anyhow::Result<Arc<Self>> {
        let config = host.config().service.clone();
        let admin_token = match admin_token.or_else(|| config.admin_token.clone()) {
            Some(t) if t.len() >= 16 => t,
            Some(_) => anyhow::bail!("the admin token must be at least 16 characters"),
            None => {
                let path = host.config().data_dir.join("admin-token");
                match std::fs::read_to_string(&path) {
                    Ok(t) if t.trim().len() >= 16 => t.trim().to_string(),
                    _ => {
                        let t = new_token()?;
                        crate::fsutil::write_atomic(&path, t.as_bytes())?;
                        restrict(&path);
                        eprintln!("admin token written to {}", path.display());
                        t
                    }
                }
            }
        };
        let store = Store::new(host.db().clone());
        let (shutdown, _) = watch::channel(false);
        let watched = host
            .config()
            .plugins_dir
            .as_deref()
            .map(snapshot)
            .unwrap_or_default();
        let service = Arc::new(Self {
            store,
            config,
            admin_hash: token_hash(&admin_token),
            running: Mutex::default(),
            wake: Notify::new(),
            metrics: Metrics::default(),
            rejected: Mutex::default(),
            shutdown,
            watched: Mutex::new(watched),
            host,
        });
        service.import_config_connectors().await?;
        service.restore_plugins().await?;
        for job in service.store.requeue_running().await? {
            service
                .host
                .jobs()
                .set_status(&job.job_id, JobStatus::Queued)
                .await?;
            tracing::warn!(
                job = %job.job_id, tenant = %job.tenant, connector = %job.connector,
                "job was running when the host stopped; it is queued again (attempt {})",
                job.attempt + 1
            );
        }
        Ok(service)
    }

    /// The host.
    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }

    /// The control-plane records.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Counters for `/metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Starts the dispatcher, the scheduler and the plugin watcher.
    pub fn start(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move { me.dispatch_loop().await });
        let me = self.clone();
        tokio::spawn(async move { me.schedule_loop().await });
        if self.config.plugin_watch_seconds > 0
            && let Some(dir) = self.host.config().plugins_dir.clone()
        {
            let me = self.clone();
            tokio::spawn(async move { me.watch_loop(dir).await });
        }
    }

    /// Stops dispatching and drops running jobs where they are: they stay in the queue and
    /// resume on the next start, exactly as after a crash.
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
        for (_, job) in lock(&self.running).drain() {
            if let Some(abort) = job.abort {
                abort.abort();
            }
        }
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// The configuration file's connectors become service connectors (the file wins on every
    /// start); their tenants are created without a token (the admin issues one).
    async fn import_config_connectors(&self) -> anyhow::Result<()> {
        for spec in &self.host.config().connectors {
            self.store
                .create_tenant(&spec.tenant, None, &TenantQuotas::default())
                .await?;
            self.store.put_connector(spec, None).await?;
        }
        Ok(())
    }

    /// Loads uploaded plugin versions (inactive), then re-applies the remembered active ones.
    async fn restore_plugins(&self) -> anyhow::Result<()> {
        for upload in self.store.uploads().await? {
            let loaded = match std::fs::read(&upload.path) {
                Ok(wasm) => self
                    .host
                    .add_plugin(wasm, &format!("upload:{}", &upload.digest[..12]), false)
                    .await
                    .map(|_| ()),
                Err(e) => Err(anyhow::anyhow!("reading {}: {e}", upload.path)),
            };
            if let Err(err) = loaded {
                tracing::error!(plugin = %upload.name, version = %upload.version, "kept plugin version not restored: {err:#}");
            }
        }
        for (name, digest) in self.store.active_plugins().await? {
            if let Err(err) = self.host.registry().set_active(&name, &digest) {
                tracing::warn!("the remembered active version of `{name}` is gone: {err:#}");
            }
        }
        Ok(())
    }

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

    // ---- jobs ----

    /// Queues a sync of a connector and returns its job record (status `queued`).
    pub async fn enqueue(
        &self,
        spec: &ConnectorSpec,
        kind: SyncKind,
        reason: &str,
    ) -> anyhow::Result<JobReport> {
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
        Ok(report)
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
            self.metrics
                .job_finished(JobStatus::Cancelled, &report.counts);
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
            .filter(|q| q.state == "queued" && tenant.is_none_or(|t| t == q.tenant))
            .count();
        Ok((running, queued))
    }

    async fn dispatch_loop(self: Arc<Self>) {
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
            for job in queue.iter().filter(|j| j.state == "queued") {
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
        self.metrics.job_finished(report.status, &report.counts);
        tracing::info!("{}", crate::report::summary(&report));
        Ok(())
    }

    async fn has_succeeded_full(&self, spec: &ConnectorSpec) -> bool {
        self.host
            .jobs()
            .has_succeeded(&spec.tenant, &spec.id, SyncKind::Full)
            .await
            .unwrap_or(false)
    }

    /// The sandbox limits of a tenant's jobs: its own where set, never above the host's (the
    /// pooling allocator's slots are sized by the host's).
    fn limits(&self, q: &TenantQuotas) -> SandboxLimits {
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
    async fn storage_limits(
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

    async fn quota_sink(
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
        let sink = quota::QuotaSink::open(
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

    // ---- scheduler ----

    async fn schedule_loop(self: Arc<Self>) {
        let mut stop = self.shutdown.subscribe();
        let tick = Duration::from_millis(self.config.tick_ms.max(10));
        loop {
            if let Err(err) = self.schedule().await {
                tracing::error!("scheduling syncs failed: {err:#}");
            }
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Queues every scheduled sync that is due and not already queued or running.
    async fn schedule(&self) -> anyhow::Result<()> {
        let now = unix_now();
        let queue = self.store.queue().await?;
        let pending: HashSet<(String, String, String)> = queue
            .iter()
            .map(|q| (q.tenant.clone(), q.connector.clone(), q.kind.to_string()))
            .collect();
        let marks = self.store.schedule_marks().await?;
        for spec in self.store.all_connectors().await? {
            for kind in [
                SyncKind::Full,
                SyncKind::Incremental,
                SyncKind::AccessControl,
            ] {
                let Ok(Some(timing)) = spec.schedule.timing(kind) else {
                    continue;
                };
                let key = (spec.tenant.clone(), spec.id.clone(), kind.to_string());
                if pending.contains(&key) {
                    continue;
                }
                let last = marks.get(&key).copied();
                let due = match (&timing, last) {
                    (Timing::Every(_), None) => true,
                    (Timing::Every(every), Some(t)) => {
                        now.saturating_sub(t) >= every.as_secs() as i64
                    }
                    // A cron schedule waits for its next time, counted from when it was first
                    // seen (or last queued); fires missed while the host was down run once.
                    (Timing::Cron(_), None) => {
                        self.store
                            .mark_scheduled(&spec.tenant, &spec.id, kind, now)
                            .await?;
                        false
                    }
                    (Timing::Cron(cron), Some(t)) => cron.next_after(t).is_some_and(|n| n <= now),
                };
                if due {
                    self.store
                        .mark_scheduled(&spec.tenant, &spec.id, kind, now)
                        .await?;
                    self.enqueue(&spec, kind, "schedule").await?;
                }
            }
        }
        Ok(())
    }

    // ---- plugins ----

    /// Validates and keeps an uploaded plugin; with `activate`, new jobs use it. An invalid
    /// component is refused with the reason and changes nothing.
    pub async fn upload_plugin(
        &self,
        wasm: Vec<u8>,
        activate: bool,
    ) -> anyhow::Result<Arc<LoadedPlugin>> {
        let digest = hex::encode(Sha256::digest(&wasm));
        let source = format!("upload:{}", &digest[..12]);
        let plugin = match self.host.add_plugin(wasm.clone(), &source, false).await {
            Ok(p) => p,
            Err(err) => {
                self.reject(&source, &err);
                return Err(err);
            }
        };
        let dir = self.host.config().data_dir.join("plugins");
        let path = dir.join(format!(
            "{}-{}-{}.wasm",
            plugin.manifest.name,
            sanitize(&plugin.manifest.version),
            &digest[..12]
        ));
        crate::fsutil::write_atomic(&path, &wasm)?;
        self.store
            .record_upload(&store::Upload {
                digest: digest.clone(),
                name: plugin.manifest.name.clone(),
                version: plugin.manifest.version.clone(),
                path: path.display().to_string(),
            })
            .await?;
        if activate {
            self.activate_plugin(&plugin.manifest.name, &digest).await?;
        }
        Ok(plugin)
    }

    /// Makes a kept version active (by version or digest prefix) and remembers the choice.
    pub async fn activate_plugin(
        &self,
        name: &str,
        selector: &str,
    ) -> anyhow::Result<Arc<LoadedPlugin>> {
        let plugin = self.host.registry().set_active(name, selector)?;
        self.store.set_active_plugin(name, &plugin.digest).await?;
        self.metrics.plugin_activated();
        tracing::info!(plugin = %plugin.label(), "activated");
        Ok(plugin)
    }

    /// Activates the version before the active one.
    pub async fn roll_back_plugin(&self, name: &str) -> anyhow::Result<Arc<LoadedPlugin>> {
        let plugin = self.host.registry().roll_back(name)?;
        self.store.set_active_plugin(name, &plugin.digest).await?;
        self.metrics.plugin_activated();
        tracing::info!(plugin = %plugin.label(), "rolled back");
        Ok(plugin)
    }

    /// Recently refused plugins.
    pub fn rejections(&self) -> Vec<Rejection> {
        lock(&self.rejected).clone()
    }

    fn reject(&self, source: &str, err: &anyhow::Error) {
        tracing::error!("plugin {source} refused: {err:#}");
        let mut rejected = lock(&self.rejected);
        rejected.push(Rejection {
            source: source.to_string(),
            reason: format!("{err:#}"),
            at: unix_now(),
        });
        let excess = rejected.len().saturating_sub(20);
        rejected.drain(..excess);
    }

    async fn watch_loop(self: Arc<Self>, dir: PathBuf) {
        let mut stop = self.shutdown.subscribe();
        let every = Duration::from_secs(self.config.plugin_watch_seconds.max(1));
        // What Host::open already loaded counts as seen.
        let mut seen = std::mem::take(&mut *lock(&self.watched));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            let now = snapshot(&dir);
            for (path, stamp) in &now {
                if seen.get(path) == Some(stamp) {
                    continue;
                }
                let source = path.display().to_string();
                let loaded = match std::fs::read(path) {
                    Ok(wasm) => self.host.add_plugin(wasm, &source, true).await,
                    Err(e) => Err(anyhow::anyhow!("reading {source}: {e}")),
                };
                match loaded {
                    Ok(plugin) => {
                        if let Err(err) = self
                            .store
                            .set_active_plugin(&plugin.manifest.name, &plugin.digest)
                            .await
                        {
                            tracing::error!("remembering the active plugin failed: {err:#}");
                        }
                        self.metrics.plugin_activated();
                        tracing::info!(plugin = %plugin.label(), %source, "new plugin version from the plugins directory is active");
                    }
                    Err(err) => self.reject(&source, &err),
                }
            }
            seen = now;
        }
    }

    /// Live view of running jobs: `(job id, tenant, connector, kind)`.
    pub fn running(&self) -> Vec<(String, String, String, SyncKind)> {
        lock(&self.running)
            .iter()
            .map(|(id, r)| (id.clone(), r.tenant.clone(), r.connector.clone(), r.kind))
            .collect()
    }
}

fn snapshot(dir: &std::path::Path) -> HashMap<PathBuf, (Option<SystemTime>, u64)> {
    crate::plugin::registry::wasm_files(dir)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            let meta = std::fs::metadata(&p).ok()?;
            Some((p, (meta.modified().ok(), meta.len())))
        })
        .collect()
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(unix)]
fn restrict(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

#[cfg(not(unix))]
fn restrict(_path: &std::path::Path) {}

/// Serves until `shutdown` resolves: the API on `listener`, plus the service's loops.
pub async fn serve(
    service: Arc<Service>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    service.start();
    let router = api::router(service.clone());
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    service.stop();
    Ok(())
}
