//! Elastic connectors compatibility: `tributary connectors-service --config config.yml` does
//! the job of Elastic's Python connectors service for the connectors it lists — the plugins run
//! the sync jobs that Kibana and the `_connector` APIs create in Elasticsearch.
//! A top layer, like `serve`: nothing else in the crate imports it.
//!
//! Files: `config.rs` (Elastic's `config.yml`, [`CompatConfig`]), `protocol.rs` (the documents
//! and conditional writes of Elastic's indices), this file (polling, heartbeats, claiming),
//! `runner.rs` (one claimed job, run to its end), `schedule.rs` (scheduled jobs).
//!
//! Each round (every `service.idling` seconds): heartbeat the connectors (`last_seen`, every
//! `service.heartbeat`), fail jobs nobody has heartbeated for 5 minutes (every
//! `service.job_cleanup_interval`), create the jobs the connectors' `scheduling` made due
//! since the previous round (`schedule.rs`), then claim and start pending jobs while slots are
//! free (`max_concurrent_content_syncs`, `max_concurrent_access_control_syncs`).
//!
//! # Claiming: exactly one host runs a job
//!
//! Several hosts (tributary's or Elastic's own service) may poll one cluster. A job starts only
//! after two conditional writes, in Elastic's order:
//!
//! 1. the connector document: `last_sync_status` (or `last_access_control_sync_status`) must
//!    not be `in_progress`; it becomes `in_progress` with `if_seq_no`/`if_primary_term` of the
//!    copy just read — Elastic's `sync_starts`, which also keeps Elastic's own workers out;
//! 2. the job document: `status` `pending` → `in_progress` (with `started_at`, `last_seen`,
//!    `worker_hostname`) with the `if_seq_no`/`if_primary_term` of the search hit that found
//!    it.
//!
//! Whoever loses either write gets 409 `version_conflict_engine_exception` and leaves the job
//! alone (a loser of step 2 puts the connector's status back). Elastic's own `claim` writes
//! step 2 unconditionally; tributary makes it conditional too.
//!
//! # Running
//!
//! The job's snapshot of the connector gives the plugin configuration
//! (`configuration.<key>.value`, keys the plugin does not know are dropped with a warning),
//! the basic rules and the advanced rules (`filtering`), and the content index
//! (`index_name`). While it runs, a watcher re-reads the job every few seconds: `canceling`
//! (or the job gone or taken over) cancels it through `SyncOptions::cancel`; otherwise it
//! writes `last_seen` and the counts so far. At the end the job gets `completed`, `error`
//! (with the error) or `canceled`, its counts (`indexed_document_count`,
//! `deleted_document_count`, `indexed_document_volume` in MiB, `total_document_count`) and
//! `completed_at`; the connector gets `last_synced`, `last_sync_status`/`_error`, the counts,
//! and after a successful content sync `sync_cursor`: the plugin's stored state, so the next
//! incremental job continues from it on whichever host claims it. A job interrupted by
//! shutdown is marked `suspended` and claimed again later, as Elastic does.

pub mod config;
pub mod protocol;
mod runner;
pub mod schedule;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use serde_json::{Value, json};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::Host;
use crate::job::SyncKind;
pub use config::CompatConfig;
use protocol::{
    CONNECTORS_INDEX, IDLE_JOB_ERROR, IDLE_JOB_SECS, JOBS_INDEX, Protocol, Updated, Versioned,
    iso_now, parse_iso,
};
use runner::{Claimed, JobRunner};

/// Why a running job was stopped.
const STOP_NONE: u8 = 0;
const STOP_CANCELED: u8 = 1;
const STOP_GONE: u8 = 2;
const STOP_SUSPEND: u8 = 3;

/// How a job this host ran ended, as written to its document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobOutcome {
    /// Job id.
    pub job_id: String,
    /// `completed`, `error`, `canceled` or `suspended` (`None` when the job document vanished).
    pub status: Option<String>,
    /// The error written.
    pub error: Option<String>,
}

struct Running {
    cancel: Arc<AtomicBool>,
    stop: Arc<AtomicU8>,
}

/// The compatibility service.
pub struct ConnectorsService {
    host: Arc<Host>,
    config: CompatConfig,
    protocol: Protocol,
    hostname: String,
    content_slots: Arc<Semaphore>,
    acl_slots: Arc<Semaphore>,
    running: Arc<Mutex<HashMap<String, Running>>>,
    last_heartbeat: Mutex<Option<Instant>>,
    last_cleanup: Mutex<Option<Instant>>,
    /// The end of the previous scheduling window (Unix seconds; Elastic's `last_wake_up_time`).
    last_wake_up: Mutex<i64>,
}

impl ConnectorsService {
    /// A service for `config` on `host` (whose sink is not used: each job gets a sink with its
    /// connector's credentials).
    pub fn new(host: Arc<Host>, config: CompatConfig, hostname: &str) -> anyhow::Result<Self> {
        // Connector configurations come from the cluster (anyone who can write them): tenants.
        host.config().http.require_operator_policy()?;
        let client = config.elasticsearch.client()?;
        for key in &config.ignored {
            tracing::info!("config.yml: `{key}` is accepted but not used by tributary");
        }
        Ok(Self {
            host,
            protocol: Protocol::new(client),
            hostname: hostname.to_string(),
            content_slots: Arc::new(Semaphore::new(config.service.max_concurrent_content_syncs)),
            acl_slots: Arc::new(Semaphore::new(
                config.service.max_concurrent_access_control_syncs,
            )),
            config,
            running: Arc::default(),
            last_heartbeat: Mutex::new(None),
            last_cleanup: Mutex::new(None),
            last_wake_up: Mutex::new(crate::clock::unix_now()),
        })
    }

    fn connector_ids(&self) -> Vec<String> {
        self.config
            .connectors
            .iter()
            .map(|c| c.connector_id.clone())
            .collect()
    }

    /// Runs rounds until `shutdown` resolves; then stops running jobs (they become
    /// `suspended`) and waits for them.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let mut tasks: Vec<JoinHandle<JobOutcome>> = Vec::new();
        let mut errors = 0u32;
        loop {
            match self.poll_once().await {
                Ok(started) => {
                    errors = 0;
                    tasks.extend(started);
                }
                Err(e) => {
                    // Elastic tolerates `max_errors` in a row before giving up; so do we.
                    errors += 1;
                    tracing::error!("connectors service round failed: {e:#}");
                    if errors > 20 {
                        return Err(e.context("too many failed rounds in a row"));
                    }
                }
            }
            tasks.retain(|t| !t.is_finished());
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(self.config.service.idling) => {}
            }
        }
        for job in self.running.lock().await.values() {
            job.stop.store(STOP_SUSPEND, Ordering::SeqCst);
            job.cancel.store(true, Ordering::SeqCst);
        }
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!("job task failed: {e}");
            }
        }
        Ok(())
    }

    /// One round: heartbeat and clean up when due, then claim and start the pending jobs that
    /// fit in the free slots. Returns the started jobs.
    pub async fn poll_once(&self) -> anyhow::Result<Vec<JoinHandle<JobOutcome>>> {
        let ids = self.connector_ids();
        {
            let mut last = self.last_heartbeat.lock().await;
            if last.is_none_or(|t| t.elapsed() >= self.config.service.heartbeat) {
                for id in &ids {
                    let outcome = self
                        .protocol
                        .update(CONNECTORS_INDEX, id, json!({"last_seen": iso_now()}), None)
                        .await?;
                    if outcome == Updated::Missing {
                        tracing::warn!(connector = %id, "no such connector in {CONNECTORS_INDEX}");
                    }
                }
                *last = Some(Instant::now());
            }
        }
        {
            let mut last = self.last_cleanup.lock().await;
            if last.is_none_or(|t| t.elapsed() >= self.config.service.job_cleanup_interval) {
                self.fail_idle_jobs(&ids).await?;
                *last = Some(Instant::now());
            }
        }
        if let Err(e) = self.schedule_due(crate::clock::unix_now()).await {
            // Scheduling trouble never stops pending jobs from running.
            tracing::error!("scheduling sync jobs failed: {e:#}");
        }
        let mut started = Vec::new();
        for job in self.protocol.pending_jobs(&ids).await? {
            if self.running.lock().await.contains_key(&job.id) {
                continue;
            }
            let kind = match protocol::job_kind(&job.source) {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(job = %job.id, "skipping job: {e}");
                    continue;
                }
            };
            let slots = if kind == SyncKind::AccessControl {
                &self.acl_slots
            } else {
                &self.content_slots
            };
            // Elastic's `try_put`: a full pool leaves the job for a later round.
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                continue;
            };
            match self.claim(&job, kind).await {
                Ok(Some(claimed)) => started.push(self.start(claimed, permit).await),
                Ok(None) => {}
                Err(e) => tracing::error!(job = %job.id, "claiming failed: {e:#}"),
            }
        }
        Ok(started)
    }

    /// Creates the jobs that the connectors' `scheduling` made due since the previous call (or
    /// the service's start), up to `now` (Unix seconds); see [`schedule`].
    pub async fn schedule_due(&self, now: i64) -> anyhow::Result<Vec<schedule::Scheduled>> {
        let mut last = self.last_wake_up.lock().await;
        if now <= *last {
            return Ok(Vec::new());
        }
        let created =
            schedule::schedule_due(&self.protocol, &self.connector_ids(), *last, now).await?;
        *last = now;
        Ok(created)
    }

    /// Marks jobs of our connectors that nobody heartbeated for 5 minutes as failed.
    async fn fail_idle_jobs(&self, ids: &[String]) -> anyhow::Result<()> {
        let now = crate::clock::unix_now();
        for job in self.protocol.active_jobs(ids).await? {
            if self.running.lock().await.contains_key(&job.id) {
                continue;
            }
            let seen = job.str("last_seen").and_then(parse_iso);
            if seen.is_some_and(|t| now - t < IDLE_JOB_SECS) {
                continue;
            }
            let ts = iso_now();
            // Conditional, so a job that just heartbeated is left alone.
            let outcome = self
                .protocol
                .update(
                    JOBS_INDEX,
                    &job.id,
                    json!({"status": "error", "error": IDLE_JOB_ERROR, "completed_at": ts, "last_seen": ts}),
                    Some((job.seq_no, job.primary_term)),
                )
                .await?;
            if outcome == Updated::Yes {
                tracing::warn!(job = %job.id, "marked an idle job as failed");
                if let Some(connector) = job.str("connector.id") {
                    let kind = protocol::job_kind(&job.source).unwrap_or(SyncKind::Full);
                    self.connector_done(connector, kind, "error", Some(IDLE_JOB_ERROR), None, None)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Both conditional writes of the claiming protocol; `None` when another worker has it.
    async fn claim(&self, job: &Versioned, kind: SyncKind) -> anyhow::Result<Option<Claimed>> {
        let Some(connector_id) = job.str("connector.id").map(str::to_string) else {
            return Ok(None);
        };
        let Some(entry) = self
            .config
            .connectors
            .iter()
            .find(|c| c.connector_id == connector_id)
            .cloned()
        else {
            return Ok(None);
        };
        let Some(connector) = self.protocol.get(CONNECTORS_INDEX, &connector_id).await? else {
            tracing::error!(connector = %connector_id, job = %job.id, "couldn't find the connector of a pending job");
            return Ok(None);
        };
        if connector.source.get("deleted").and_then(Value::as_bool) == Some(true) {
            return Ok(None);
        }
        let plan = protocol::plan(&job.source, &connector.source)?;
        let service_type = plan
            .service_type
            .clone()
            .or_else(|| entry.service_type.clone())
            .ok_or_else(|| anyhow!("connector `{connector_id}` has no service type"))?;
        if self.host.plugin(&service_type).is_err() {
            // Another service may support it (Elastic leaves such jobs pending too).
            tracing::warn!(job = %job.id, "no plugin for service type `{service_type}`");
            return Ok(None);
        }
        let status_field = status_field(kind);
        let previous = connector
            .source
            .get(status_field)
            .cloned()
            .unwrap_or(Value::Null);
        if previous.as_str() == Some("in_progress") {
            tracing::debug!(connector = %connector_id, "a sync of this connector is running elsewhere");
            return Ok(None);
        }
        let error_field = error_field(kind);
        let started = self
            .protocol
            .update(
                CONNECTORS_INDEX,
                &connector_id,
                json!({"status": "connected", "error": null, status_field: "in_progress", error_field: null}),
                Some((connector.seq_no, connector.primary_term)),
            )
            .await?;
        if started != Updated::Yes {
            tracing::debug!(job = %job.id, "lost the race for the connector");
            return Ok(None);
        }
        let now = iso_now();
        let mut claim = json!({
            "status": "in_progress",
            "started_at": now,
            "last_seen": now,
            "worker_hostname": self.hostname,
        });
        if kind == SyncKind::Incremental {
            claim["connector"] = json!({"sync_cursor": connector.source.get("sync_cursor").cloned().unwrap_or(Value::Null)});
        }
        let claimed = self
            .protocol
            .update(
                JOBS_INDEX,
                &job.id,
                claim,
                Some((job.seq_no, job.primary_term)),
            )
            .await?;
        if claimed != Updated::Yes {
            tracing::debug!(job = %job.id, "lost the race for the job");
            // Put the connector back as it was (best effort, conditional on our own write).
            if let Some(now) = self.protocol.get(CONNECTORS_INDEX, &connector_id).await? {
                let _ = self
                    .protocol
                    .update(
                        CONNECTORS_INDEX,
                        &connector_id,
                        json!({status_field: previous}),
                        Some((now.seq_no, now.primary_term)),
                    )
                    .await;
            }
            return Ok(None);
        }
        tracing::info!(job = %job.id, connector = %connector_id, kind = %kind, "claimed a sync job");
        Ok(Some(Claimed {
            job_id: job.id.clone(),
            entry,
            connector,
            plan,
            service_type,
        }))
    }

    async fn start(
        &self,
        claimed: Claimed,
        permit: OwnedSemaphorePermit,
    ) -> JoinHandle<JobOutcome> {
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicU8::new(STOP_NONE));
        self.running.lock().await.insert(
            claimed.job_id.clone(),
            Running {
                cancel: cancel.clone(),
                stop: stop.clone(),
            },
        );
        let runner = JobRunner {
            host: self.host.clone(),
            protocol: self.protocol.clone(),
            sink_config: self.config.sink_config(&claimed.entry),
            check_every: self.config.service.idling.min(Duration::from_secs(5)),
            claimed,
            cancel,
            stop,
            warnings: Default::default(),
        };
        let running = self.running.clone();
        tokio::spawn(async move {
            let job_id = runner.claimed.job_id.clone();
            let outcome = runner.run().await;
            running.lock().await.remove(&job_id);
            drop(permit);
            outcome
        })
    }

    async fn connector_done(
        &self,
        connector: &str,
        kind: SyncKind,
        status: &str,
        error: Option<&str>,
        counts: Option<(u64, u64)>,
        cursor: Option<Value>,
    ) -> anyhow::Result<()> {
        connector_done(
            &self.protocol,
            connector,
            kind,
            status,
            error,
            counts,
            cursor,
        )
        .await
    }
}

fn status_field(kind: SyncKind) -> &'static str {
    if kind == SyncKind::AccessControl {
        "last_access_control_sync_status"
    } else {
        "last_sync_status"
    }
}

fn error_field(kind: SyncKind) -> &'static str {
    if kind == SyncKind::AccessControl {
        "last_access_control_sync_error"
    } else {
        "last_sync_error"
    }
}

/// Elastic's `Connector.sync_done`.
async fn connector_done(
    protocol: &Protocol,
    connector: &str,
    kind: SyncKind,
    status: &str,
    error: Option<&str>,
    counts: Option<(u64, u64)>,
    cursor: Option<Value>,
) -> anyhow::Result<()> {
    let mut doc = json!({
        "last_synced": iso_now(),
        "status": if status == "error" { "error" } else { "connected" },
        "error": error,
        status_field(kind): status,
        error_field(kind): error,
    });
    if let Some(cursor) = cursor {
        doc["sync_cursor"] = cursor;
    }
    if let Some((indexed, deleted)) = counts {
        doc["last_indexed_document_count"] = json!(indexed);
        doc["last_deleted_document_count"] = json!(deleted);
    }
    protocol
        .update(CONNECTORS_INDEX, connector, doc, None)
        .await?;
    Ok(())
}
