//! `tributary serve`: the long-running, multi-tenant service. A top layer: nothing else in the
//! crate imports it.
//!
//! What it owns, file by file:
//! - `config.rs` — `[service]` of `tributary.toml` ([`ServeConfig`]);
//! - `store.rs` — tenants (hashed API tokens, quotas), connectors, the durable job queue,
//!   schedule marks, uploaded plugin versions, in the host's SQLite database;
//! - `api/` — the admin and tenant HTTP API (axum), its authentication, `/metrics`, its
//!   OpenAPI document (generated from the handlers) and `/docs`;
//! - `dispatch.rs` — the job lifecycle: queue → dispatcher (global and per-tenant concurrency,
//!   fairness between tenants, one job per connector at a time) → a job in its own wasm store
//!   with its tenant's limits → recorded report;
//! - `tenants.rs` — a tenant's quotas applied to its jobs (the document quota is
//!   [`crate::sink::quota::QuotaSink`]), and deleting a tenant or connector with everything it
//!   owns;
//! - `scheduler.rs` — interval and cron schedules, planned in memory between connector writes;
//! - `plugins.rs` — uploads, activation, rollback and the plugin-directory watcher;
//! - this file — opening the service (admin token, config connectors, refusing indexes of
//!   tenants the database does not know, requeueing interrupted jobs), starting and stopping
//!   its loops, and [`serve`].
//!
//! A queued or running job is a row in the `queue` table until its report is saved, so a host
//! that stops (even by SIGKILL) picks it up again on the next start with the same job id. A
//! retried job does not start from scratch: everything the plugin checkpointed is committed, a
//! full sync starts knowing the ids its interrupted run produced (`job_progress`), so a plugin
//! that checkpoints its listing position under the job id continues from there, and an
//! incremental sync continues from its last stored cursor.

pub mod api;
mod config;
mod dispatch;
mod metrics;
mod plugins;
mod scheduler;
pub mod store;
mod tenants;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Context;
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, watch};

use crate::Host;
use crate::job::Counters;
use crate::job::JobStatus;
use crate::job::SyncKind;

pub use config::ServeConfig;
pub use dispatch::Enqueued;
pub use metrics::{Metrics, resident_bytes};
pub use plugins::Rejection;
pub use store::{Store, TenantQuotas};

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

/// The running service.
pub struct Service {
    host: Arc<Host>,
    store: Store,
    config: ServeConfig,
    admin_hash: String,
    /// Where a generated admin token was written, if this start generated one.
    generated_admin_token: Option<PathBuf>,
    running: Mutex<HashMap<String, Running>>,
    /// Serialises queueing, so merging a trigger into a queued job and the tenant's queue cap
    /// are decided on a queue no other trigger changes meanwhile.
    enqueuing: tokio::sync::Mutex<()>,
    wake: Notify,
    /// Reads of the connectors table by the scheduler ([`Service::schedule_loads`]).
    schedule_loads: std::sync::atomic::AtomicU64,
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
    /// Opens the service on `host`: reads `[service]` of its configuration, imports the
    /// configuration file's connectors, restores uploaded plugin versions and the active
    /// choices, and puts jobs that were running when the host last stopped back in the queue.
    /// Call [`Service::start`] to run it.
    pub async fn open(host: Arc<Host>, admin_token: Option<String>) -> anyhow::Result<Arc<Self>> {
        let config = ServeConfig::from_host(host.config())?;
        host.config().http.require_operator_policy()?;
        let mut generated_admin_token = None;
        let admin_token = match admin_token.or_else(|| config.admin_token.clone()) {
            Some(t) if t.len() >= 16 => t,
            Some(_) => anyhow::bail!("the admin token must be at least 16 characters"),
            None => {
                let path = host.config().data_dir.join("admin-token");
                match std::fs::read_to_string(&path) {
                    Ok(t) if t.trim().len() >= 16 => t.trim().to_string(),
                    _ => {
                        let t = new_token()?;
                        crate::atomic_file::write_atomic(&path, t.as_bytes())?;
                        restrict(&path);
                        generated_admin_token = Some(path);
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
            .map(plugins::snapshot)
            .unwrap_or_default();
        let service = Arc::new(Self {
            store,
            config,
            admin_hash: token_hash(&admin_token),
            generated_admin_token,
            running: Mutex::default(),
            enqueuing: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
            schedule_loads: Default::default(),
            metrics: Metrics::default(),
            rejected: Mutex::default(),
            shutdown,
            watched: Mutex::new(watched),
            host,
        });
        service.import_config_connectors().await?;
        service.check_orphan_indexes().await?;
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

    /// Where this start wrote a newly generated admin token (mode 0600), for the operator to
    /// be told; `None` when the token came from the configuration, the environment or an
    /// earlier start.
    pub fn generated_admin_token(&self) -> Option<&std::path::Path> {
        self.generated_admin_token.as_deref()
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
}

impl Service {
    /// Indexes whose tenant the database does not know: refused (the error names them and the
    /// remedies), or removed one by one, loudly, with `remove_orphan_indexes`.
    async fn check_orphan_indexes(&self) -> anyhow::Result<()> {
        let known: std::collections::HashSet<String> = self
            .store
            .tenants()
            .await?
            .into_iter()
            .map(|t| t.id)
            .collect();
        let sink = self.host.sink();
        let orphans: Vec<String> = sink
            .tenants()
            .await
            .context("listing the tenants that hold indexes")?
            .into_iter()
            .filter(|t| !known.contains(t))
            .collect();
        if orphans.is_empty() {
            return Ok(());
        }
        if !self.config.remove_orphan_indexes {
            let shown: Vec<String> = orphans
                .iter()
                .take(20)
                .map(|t| format!("`{}`", crate::text::truncate(t, 64)))
                .collect();
            anyhow::bail!(
                "the {} index holds indexes of {} tenant(s) the database does not know: {}{}. \
                 A tenant created with such an id would see their documents. Remove them \
                 (set `remove_orphan_indexes = true` in [service] to have the service do it at \
                 start), or restore the database that knows these tenants",
                sink.kind(),
                orphans.len(),
                shown.join(", "),
                if orphans.len() > shown.len() {
                    ", …"
                } else {
                    ""
                }
            );
        }
        for tenant in orphans {
            tracing::warn!(
                %tenant,
                "removing the indexes of a tenant the database does not know (remove_orphan_indexes)"
            );
            sink.drop_tenant(tenant.clone())
                .await
                .with_context(|| format!("removing the indexes of unknown tenant `{tenant}`"))?;
        }
        Ok(())
    }
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
